import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { status } from "../test/stubApi";
import { StatusBar, powerText, rejectedText, relayText } from "./StatusBar";

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

  it("a slow relay says so, with round trips and the share kept direct", () => {
    const paths = { ...status.paths, relay_rtt_ms: 312.4, lan_rtt_ms: 0.4, off_relay_share: 0.8, upgrades: 1, relay_slow: true };
    const r = relayText({ state: "connected", url: "wss://r" }, paths);
    expect(r).toMatchObject({ label: "Relay: slow", tone: "wait" });
    expect(r.title).toBe("wss://r: slow, looking for direct paths · relay round trip 312 ms · direct < 1 ms · 80% of traffic direct · 1 moved off the relay");
    expect(relayText({ state: "connected", url: "wss://r" }, { ...paths, relay_slow: false }).label).toBe("Relay: connected");
    expect(relayText({ state: "connected", url: "wss://r" }, status.paths).title).toBe("wss://r");
  });

  it("shows P2P, links, relay and power", () => {
    render(<StatusBar status={{ ...status, links: 2, discovered: 5 }} />);
    const bar = screen.getByRole("status");
    expect(bar).toHaveTextContent("P2P active");
    expect(bar).toHaveTextContent("2 links · 5 nearby");
    expect(bar).toHaveTextContent("Relay: off");
    expect(bar).toHaveTextContent("On power · full speed");
  });

  it("counts what other devices sent that was refused, and says nothing while nothing was", () => {
    expect(rejectedText({})).toBeNull();
    expect(rejectedText({ envelope_bad_sig: 0 })).toBeNull();
    const r = rejectedText({ signaling_bad_offer: 2, envelope_bad_sig: 40 });
    expect(r?.label).toBe("42 refused");
    expect(r?.title).toMatch(/envelope bad sig: 40, signaling bad offer: 2/);
    render(<StatusBar status={{ ...status, rejected: { envelope_bad_sig: 40 } }} />);
    expect(screen.getByRole("status")).toHaveTextContent("40 refused");
  });
});
