import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { status } from "../test/stubApi";
import { StatusBar, powerText, relayText } from "./StatusBar";

describe("status bar", () => {
  it("says what is saved on battery", () => {
    const text = powerText({
      battery: 18,
      low: true,
      limits: status.power.limits,
      saving: [{ kind: "fewer_links", max: 3 }, { kind: "slower_sync", every_s: 30 }, { kind: "no_relay_for_others" }, { kind: "no_background_sync" }],
    });
    expect(text).toBe("18% · saving: max 3 links, sync every 30 s, not relaying for others, no background sync");
  });

  it("relay states in words", () => {
    expect(relayText({ state: "not_configured" }).label).toBe("Relay: off");
    expect(relayText({ state: "offline", url: "wss://r", reason: "refused" })).toMatchObject({ label: "Relay: offline", title: "wss://r: refused" });
  });

  it("shows P2P, links, relay and power", () => {
    render(<StatusBar status={{ ...status, links: 2, discovered: 5 }} />);
    const bar = screen.getByRole("status");
    expect(bar).toHaveTextContent("P2P active");
    expect(bar).toHaveTextContent("2 links · 5 nearby");
    expect(bar).toHaveTextContent("Relay: off");
    expect(bar).toHaveTextContent("On power · full speed");
  });
});
