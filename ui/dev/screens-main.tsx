// DEV ONLY entry for screenshots: the real App over a pretend node.
import { createRoot } from "react-dom/client";
import { ApiProvider } from "../src/ApiContext";
import { App } from "../src/App";
import "../src/styles.css";
import { fakeApi } from "./fake-api";

const scene = new URLSearchParams(location.search).get("scene") ?? "chat";
createRoot(document.getElementById("root")!).render(
  <ApiProvider api={fakeApi(scene)}>
    <App />
  </ApiProvider>,
);
