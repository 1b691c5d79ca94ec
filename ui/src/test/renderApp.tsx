import { render } from "@testing-library/react";
import { ApiProvider } from "../ApiContext";
import { App } from "../App";
import { stubApi } from "./stubApi";

/** The whole app over a stub node, as the tests drive it. */
export function renderApp<A extends ReturnType<typeof stubApi>>(api: A = stubApi() as A): A {
  render(
    <ApiProvider api={api}>
      <App />
    </ApiProvider>,
  );
  return api;
}
