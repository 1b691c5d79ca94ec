import { act, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { ApiProvider } from "../ApiContext";
import { App } from "../App";
import { ApiError } from "../api";
import { ANA, dl, ME, message, stubApi } from "../test/stubApi";

beforeEach(() => localStorage.clear());

const hello = message({ room: "dm", body: { type: "direct", to: ME, text: "hi, where are you?" }, created_at: 1 });

function dmToAna(delivery = dl({ state: "sent", path: "lan", not_delivered: "handed_on", as_of: 1 })) {
  return message({ room: "dm", author: ME, mine: true, body: { type: "direct", to: ANA, text: "at the gate?" }, delivery });
}

async function openAna(api: ReturnType<typeof stubApi>) {
  render(
    <ApiProvider api={api}>
      <App />
    </ApiProvider>,
  );
  await userEvent.setup().click(await within(await screen.findByRole("navigation")).findByRole("button", { name: /Ana/ }));
  await screen.findByText("at the gate?");
}

describe("honest delivery states", () => {
  it("a DM not delivered yet says why, and Try again sends it again with its state as the node then tells", async () => {
    const m = dmToAna();
    const retried = { ...m, delivery: dl({ state: "sent", path: "lan", overdue_at: Date.now() + 120_000, as_of: 2 }) };
    const api = stubApi({
      history: async (r) => ({ messages: r === "dm" ? [hello, m] : [], next: null }),
      dmHistory: async () => ({ messages: [hello, m], next: null }),
      retry: vi.fn(async () => retried),
    });
    await openAna(api);
    expect(screen.getByText(/Not delivered yet: devices nearby carry it/)).toBeInTheDocument();
    expect(screen.getAllByText("Not delivered yet").length).toBeGreaterThan(0);
    await userEvent.setup().click(screen.getByRole("button", { name: "Try again" }));
    expect(api.retry).toHaveBeenCalledWith(m.id);
    await waitFor(() => expect(screen.queryByText(/Not delivered yet: /)).not.toBeInTheDocument());
    expect(screen.getByText("Sent via LAN")).toBeInTheDocument();
    // The note went with its button: the focus is on the message, not lost.
    expect(document.activeElement?.getAttribute("data-id")).toBe(m.id);
  });

  it("a retry that fails says why in place; the node's later event still wins", async () => {
    const m = dmToAna(dl({ state: "at_relay", path: "relay", at_relay: true, not_delivered: "at_relay", as_of: 1 }));
    const api = stubApi({
      history: async (r) => ({ messages: r === "dm" ? [hello, m] : [], next: null }),
      dmHistory: async () => ({ messages: [hello, m], next: null }),
      retry: vi.fn(async () => {
        throw new ApiError("node_stopped", "Festival Chat is not running right now; try again in a moment.");
      }),
    });
    await openAna(api);
    expect(screen.getByText(/the relay keeps it for them/)).toBeInTheDocument();
    await userEvent.setup().click(screen.getByRole("button", { name: "Try again" }));
    expect(await screen.findByText(/not running right now/)).toBeInTheDocument();
    act(() => api.emit({ event: "delivery", id: m.id, delivery: dl({ state: "delivered", delivered_to: 1, at_relay: true, as_of: 5 }) }));
    await waitFor(() => expect(screen.queryByText(/Not delivered yet: /)).not.toBeInTheDocument());
    expect(screen.getByText("Delivered")).toBeInTheDocument();
  });
});
