import { createRoot } from "react-dom/client";
import { ApiProvider } from "./ApiContext";
import { tauriApi } from "./api";
import { App } from "./App";
import "./styles.css";

// A file dropped anywhere but on a conversation that takes photos is
// refused here: the WebView would otherwise open it in place of the app.
for (const type of ["dragover", "drop"] as const) {
  window.addEventListener(type, (e) => e.preventDefault());
}

// No StrictMode: its double effects would open a second event Channel.
createRoot(document.getElementById("root")!).render(
  <ApiProvider api={tauriApi}>
    <App />
  </ApiProvider>,
);
