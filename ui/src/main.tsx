import { createRoot } from "react-dom/client";
import { ApiProvider } from "./ApiContext";
import { tauriApi } from "./api";
import { App } from "./App";
import "./styles.css";

// No StrictMode: its double effects would open a second event Channel.
createRoot(document.getElementById("root")!).render(
  <ApiProvider api={tauriApi}>
    <App />
  </ApiProvider>,
);
