import { describe, expect, it } from "vitest";
import { describeDelivery } from "../logic/delivery";
import { deliveryFromView } from "./viewState";

const view = (over: Partial<Parameters<typeof deliveryFromView>[0]> = {}) => ({ state: null, path: null, waiting: null, delivered_to: 0, read_by: 0, ...over });

describe("state of an own message as the node reports it", () => {
  it("saved with a reason", () => {
    const d = deliveryFromView(view({ state: "saved", waiting: "no_one_nearby" }));
    expect(d).toMatchObject({ stage: "saved", waiting: "no_one_nearby" });
    expect(describeDelivery(d)).toBe("Saved · no one in reach yet");
  });

  it("sent with its path", () => {
    const d = deliveryFromView(view({ state: "sent", path: "relay" }));
    expect(d).toMatchObject({ stage: "sent", paths: ["relay"] });
    expect(describeDelivery(d)).toBe("Sent via relay");
  });

  it("carries the node's receipt counts", () => {
    const d = deliveryFromView(view({ state: "delivered", path: "lan", delivered_to: 3 }));
    expect(describeDelivery(d)).toBe("Delivered to 3 via LAN");
    expect(describeDelivery(deliveryFromView(view({ state: "read", delivered_to: 4, read_by: 2 })))).toBe("Read by 2");
  });

  it("drops a waiting reason once the message left", () => {
    expect(deliveryFromView(view({ state: "read", waiting: "connecting" })).waiting).toBeUndefined();
  });

  it("treats a missing state as saved", () => {
    expect(deliveryFromView(view()).stage).toBe("saved");
  });
});
