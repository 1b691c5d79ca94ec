import { describe, expect, it } from "vitest";
import { dl } from "../test/stubApi";
import { describeDelivery, later, notDeliveredText, recordDelivery, shortDelivery, waitingText } from "./delivery";

describe("an own message's delivery, in words", () => {
  it("says each stage the node reports", () => {
    expect(describeDelivery(dl({ state: "saved", waiting: "no_one_nearby" }))).toBe("Saved · no one in reach yet");
    expect(describeDelivery(dl({ state: "saved" }))).toBe("Saved on this device");
    expect(describeDelivery(dl({ state: "sent", path: "relay" }))).toBe("Sent via relay");
    expect(describeDelivery(dl({ state: "at_relay", path: "relay", at_relay: true }))).toBe("Stored at the relay");
    expect(describeDelivery(dl({ state: "delivered", path: "lan", delivered_to: 3 }))).toBe("Delivered to 3 via LAN");
    expect(describeDelivery(dl({ state: "delivered", path: "lan", delivered_to: 3 }), { direct: true })).toBe("Delivered via LAN");
    expect(describeDelivery(dl({ state: "read", delivered_to: 4, read_by: 2 }))).toBe("Read by 2");
    expect(describeDelivery(dl({ state: "read", read_by: 1 }))).toBe("Read");
  });

  it("the short label keeps a waiting reason for its own line", () => {
    expect(shortDelivery(dl({ state: "saved", waiting: "connecting" }))).toBe("Saved");
    expect(waitingText("connecting")).toBe("connecting to people nearby");
    expect(waitingText(null)).toBe("waiting for someone in reach");
  });

  it("\"not delivered yet\" names the reason", () => {
    const handed = dl({ state: "sent", not_delivered: "handed_on" });
    expect(shortDelivery(handed)).toBe("Not delivered yet");
    expect(describeDelivery(handed)).toBe("Not delivered yet");
    expect(notDeliveredText(handed)).toMatch(/devices nearby carry it/);
    expect(notDeliveredText(dl({ state: "at_relay", not_delivered: "at_relay" }))).toMatch(/relay keeps it/);
    expect(notDeliveredText(dl({ state: "saved", not_delivered: "not_sent", waiting: "no_one_nearby" }))).toBe(
      "it has not left this device (no one in reach yet)",
    );
    expect(notDeliveredText(dl({ state: "sent" }))).toBe("");
  });
});

describe("the book of deliveries", () => {
  it("keeps the later view of each message, whatever order they come in", () => {
    const early = dl({ state: "sent", as_of: 1 });
    const late = dl({ state: "read", read_by: 1, as_of: 2 });
    expect(later(early, late)).toBe(late);
    expect(later(late, early)).toBe(late);
    expect(later(undefined, early)).toBe(early);
    let book = recordDelivery({}, "m", late);
    const same = recordDelivery(book, "m", early);
    expect(same).toBe(book);
    book = recordDelivery(book, "m", dl({ state: "read", read_by: 2, as_of: 3 }));
    expect(book["m"]?.read_by).toBe(2);
  });
});
