import { describe, expect, it } from "vitest";
import {
  SAVED,
  applyDeliveryEvent,
  describeDelivery,
  forRecipient,
  mergeDelivery,
  onReceipt,
  onSent,
  recordDelivery,
  type DeliveryBook,
} from "./delivery";

describe("delivery state of own messages", () => {
  it("walks saved -> sent -> delivered -> read", () => {
    let d = SAVED;
    expect(d.stage).toBe("saved");
    d = onSent(d, "lan");
    expect(d.stage).toBe("sent");
    expect(d.paths).toEqual(["lan"]);
    d = onReceipt(d, "peerB", "delivered");
    expect(d.stage).toBe("delivered");
    d = onReceipt(d, "peerB", "read");
    expect(d.stage).toBe("read");
    expect(describeDelivery(d)).toBe("Read");
  });

  it("never moves backwards when a late sent event follows a receipt", () => {
    const d = onSent(onReceipt(SAVED, "p", "read"), "relay");
    expect(d.stage).toBe("read");
    expect(d.paths).toEqual(["relay"]);
  });

  it("a read receipt alone counts as delivered to that peer", () => {
    const d = onReceipt(SAVED, "p", "read");
    expect(d.deliveredTo).toEqual(["p"]);
    expect(d.readBy).toEqual(["p"]);
  });

  it("shows why a saved message waits, and forgets it once sent", () => {
    const w = { ...SAVED, waiting: "connecting" };
    expect(describeDelivery(w)).toBe("Saved · connecting to people nearby");
    const s = onSent(w, "relay");
    expect(s.waiting).toBeUndefined();
    expect(describeDelivery(s)).toBe("Sent via relay");
  });

  it("a waiting reason cannot pull a sent message back", () => {
    expect(mergeDelivery(onSent(SAVED, "lan"), { ...SAVED, waiting: "connecting" }).stage).toBe("sent");
  });

  it("counts receipts from the node and from events without counting a peer twice", () => {
    // The node says 2 peers had it before; one of them sends another receipt now.
    let d = mergeDelivery(SAVED, { ...SAVED, stage: "delivered", deliveredCount: 2 });
    d = onReceipt(d, "a", "delivered");
    expect(describeDelivery(d)).toBe("Delivered to 2");
    d = onReceipt(onReceipt(d, "b", "delivered"), "c", "delivered");
    expect(describeDelivery(d)).toBe("Delivered to 3");
  });

  it("records both paths when a message left by LAN and relay", () => {
    const d = onSent(onSent(SAVED, "lan"), "relay");
    expect(describeDelivery(d)).toBe("Sent via LAN + relay");
  });

  it("counts room receipts per peer, once each", () => {
    let d = onSent(SAVED, "lan");
    d = onReceipt(d, "a", "delivered");
    d = onReceipt(d, "a", "delivered");
    d = onReceipt(d, "b", "delivered");
    expect(describeDelivery(d)).toBe("Delivered to 2 via LAN");
    expect(describeDelivery(d, { direct: true })).toBe("Delivered via LAN");
  });

  it("ignores an unknown path rather than inventing one", () => {
    expect(onSent(SAVED, "carrier-pigeon").paths).toEqual([]);
  });

  it("merge is order independent", () => {
    const a = onReceipt(SAVED, "x", "delivered");
    const b = onSent(SAVED, "lan");
    expect(mergeDelivery(a, b)).toEqual(mergeDelivery(b, a));
  });
});

describe("delivery book", () => {
  it("keeps a receipt that arrives before the message is loaded", () => {
    let book: DeliveryBook = {};
    book = applyDeliveryEvent(book, { event: "receipt", from: "p", status: "delivered", ids: ["m1", "m2"] });
    expect(book["m1"]?.stage).toBe("delivered");
    // The history page later says it was only saved: the receipt still wins.
    book = recordDelivery(book, "m1", SAVED);
    expect(book["m1"]?.stage).toBe("delivered");
  });

  it("applies sent events by id", () => {
    const book = applyDeliveryEvent({}, { event: "sent", id: "m", path: "relay" });
    expect(book["m"]?.stage).toBe("sent");
    expect(book["m"]?.paths).toEqual(["relay"]);
  });

  it("returns the same book for an empty receipt", () => {
    const book: DeliveryBook = {};
    expect(applyDeliveryEvent(book, { event: "receipt", from: "p", status: "read", ids: [] })).toBe(book);
  });
});

describe("a DM's state comes from its recipient only", () => {
  it("drops receipts from anyone else, and the stage they claimed", () => {
    const d = onReceipt(onReceipt(onSent(SAVED, "relay"), "carrier", "delivered"), "liar", "read");
    expect(d.stage).toBe("read");
    const mine = forRecipient(d, "ana");
    expect(mine).toMatchObject({ stage: "sent", deliveredTo: [], readBy: [], paths: ["relay"] });
    expect(describeDelivery(mine, { direct: true })).toBe("Sent via relay");
  });

  it("keeps the recipient's receipts", () => {
    const d = onReceipt(onReceipt(onSent(SAVED, "lan"), "liar", "read"), "ana", "delivered");
    expect(forRecipient(d, "ana")).toMatchObject({ stage: "delivered", deliveredTo: ["ana"], readBy: [] });
    expect(forRecipient(onReceipt(d, "ana", "read"), "ana").stage).toBe("read");
  });

  it("keeps what the node itself reported", () => {
    const reported = mergeDelivery(SAVED, { ...SAVED, stage: "delivered", reported: "delivered", deliveredCount: 1 });
    expect(forRecipient(onReceipt(reported, "liar", "read"), "ana").stage).toBe("delivered");
  });

  it("returns the same object when every receipt is the recipient's", () => {
    const d = onReceipt(SAVED, "ana", "read");
    expect(forRecipient(d, "ana")).toBe(d);
  });
});
