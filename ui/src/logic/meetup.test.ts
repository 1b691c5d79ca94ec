import { describe, expect, it } from "vitest";
import type { MessageView } from "../model";
import { bodyText, cardUp, defaultTime, nextAt, nextCardEnd, placeProblem, whenText } from "./meetup";

const MIN = 60_000;
// A fixed local moment: 5 Dec 2026, 20:10 local time.
const NOW = new Date(2026, 11, 5, 20, 10, 0, 0).getTime();

function card(at: number, extra: Partial<MessageView> = {}): MessageView {
  return {
    id: `m${at}`,
    room: "camp",
    author: "ana",
    sender: { name: "Ana", short_fingerprint: "3F2A", verified: false, name_clash: false, equivocated: false },
    seq: 1,
    created_at: NOW - 10 * MIN,
    received_at: NOW - 10 * MIN,
    body: { type: "meetup", place: "the big wheel", at, until: at + 30 * MIN, coming: 2, cant: 0, mine: null, people: [] },
    hops: 1,
    mine: false,
    delivery: null,
    ...extra,
  };
}

describe("meet-ups", () => {
  it("a card is up until half an hour after its time, then gone", () => {
    const m = card(NOW + 10 * MIN);
    expect(cardUp(m, NOW)).toBe(true);
    expect(cardUp(m, NOW + 39 * MIN)).toBe(true);
    expect(cardUp(m, NOW + 40 * MIN)).toBe(false);
    const text = { ...m, body: { type: "text" as const, text: "hi" } };
    expect(cardUp(text, NOW + 1e9)).toBe(true);
  });

  it("the list re-draws at the soonest end still ahead", () => {
    const list = [card(NOW - 40 * MIN), card(NOW + 50 * MIN), card(NOW + 5 * MIN)];
    expect(nextCardEnd(list, NOW)).toBe(NOW + 35 * MIN);
    expect(nextCardEnd([], NOW)).toBeNull();
  });

  it("a time of day is the next such moment: earlier than now means tomorrow", () => {
    expect(nextAt("21:30", NOW)).toBe(new Date(2026, 11, 5, 21, 30).getTime());
    expect(nextAt("19:00", NOW)).toBe(new Date(2026, 11, 6, 19, 0).getTime());
    expect(nextAt("20:10", NOW)).toBe(new Date(2026, 11, 6, 20, 10).getTime());
    expect(nextAt("25:00", NOW)).toBeNull();
    expect(nextAt("soon", NOW)).toBeNull();
  });

  it("the form starts at the next quarter hour at least 15 minutes ahead", () => {
    expect(defaultTime(NOW)).toBe("20:30");
    expect(defaultTime(new Date(2026, 11, 5, 23, 50).getTime())).toBe("00:15");
  });

  it("says when in words", () => {
    expect(whenText(NOW + 40 * MIN, NOW)).toBe("in 40 min");
    expect(whenText(NOW, NOW)).toBe("now");
    expect(whenText(NOW - 10 * MIN, NOW)).toBe("started 10 min ago");
    expect(whenText(NOW + 3 * 60 * MIN, NOW)).toBe("in 3 h");
  });

  it("a place is one line, not empty, at most 200 bytes", () => {
    expect(placeProblem("the big wheel")).toBeNull();
    expect(placeProblem("  ")).toMatch(/where/);
    expect(placeProblem("gate\nB")).toMatch(/one line/);
    expect(placeProblem("é".repeat(101))).toMatch(/too long/);
    expect(placeProblem("é".repeat(100))).toBeNull();
  });

  it("previews name the place", () => {
    expect(bodyText(card(NOW).body)).toMatch(/^Meet-up: the big wheel, /);
    expect(bodyText({ type: "text", text: "hi" })).toBe("hi");
  });
});
