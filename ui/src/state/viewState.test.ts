import { describe, expect, it } from "vitest";
import { deliveryFromView } from "./viewState";

describe("state of an own message as the node reports it", () => {
  it.each([
    ["saved", "saved", []],
    ["sent_lan", "sent", ["lan"]],
    [{ sent: { path: "relay" } }, "sent", ["relay"]],
    [{ sent: "lan" }, "sent", ["lan"]],
    [{ type: "sent", path: "relay" }, "sent", ["relay"]],
    ["Delivered", "delivered", []],
    ["read", "read", []],
  ])("%j", (state, stage, paths) => {
    const d = deliveryFromView(state, null);
    expect(d.stage).toBe(stage);
    expect(d.paths).toEqual(paths);
  });

  it("carries the waiting reason only while saved", () => {
    expect(deliveryFromView("saved", "no peers in reach").waiting).toBe("no peers in reach");
    expect(deliveryFromView("read", "stale").waiting).toBeUndefined();
  });

  it("treats a missing or unknown state as saved", () => {
    expect(deliveryFromView(undefined, undefined).stage).toBe("saved");
    expect(deliveryFromView({ weird: 1 }, undefined).stage).toBe("saved");
  });
});
