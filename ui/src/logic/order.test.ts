import { describe, expect, it } from "vitest";
import { compareMessages, mergeMessages, type Ordered } from "./order";

const m = (id: string, created_at: number, author = "a", seq = 1): Ordered => ({ id, created_at, author, seq });
const ids = (list: readonly Ordered[]) => list.map((x) => x.id);

describe("message order", () => {
  it("orders by time, then author, then seq", () => {
    const list = [m("z", 20, "a", 3), m("y", 10, "b", 1), m("x", 10, "a", 2), m("w", 10, "a", 1)];
    expect(ids([...list].sort(compareMessages))).toEqual(["w", "x", "y", "z"]);
  });

  it("compares u64 fields given as bigint or number alike", () => {
    const a = { id: "a", created_at: 10n, author: "p", seq: 2n };
    const b = { id: "b", created_at: 10, author: "p", seq: 1 };
    expect(compareMessages(a, b)).toBeGreaterThan(0);
  });
});

describe("merging pages and live events", () => {
  it("drops a live message already loaded with the history page", () => {
    const page = [m("1", 1), m("2", 2)];
    const merged = mergeMessages(page, [m("2", 2)]);
    expect(merged).toBe(page);
  });

  it("puts an older page before what is shown", () => {
    const shown = [m("3", 3), m("4", 4)];
    expect(ids(mergeMessages(shown, [m("1", 1), m("2", 2)]))).toEqual(["1", "2", "3", "4"]);
  });

  it("appends live messages after the newest one", () => {
    expect(ids(mergeMessages([m("1", 1)], [m("2", 2)]))).toEqual(["1", "2"]);
  });

  it("slots a late message from a slow peer into its place", () => {
    const shown = [m("1", 1), m("3", 3)];
    expect(ids(mergeMessages(shown, [m("2", 2, "b")]))).toEqual(["1", "2", "3"]);
  });

  it("dedups within the incoming batch too", () => {
    expect(ids(mergeMessages([], [m("1", 1), m("1", 1), m("0", 0)]))).toEqual(["0", "1"]);
  });

  it("keeps the object already shown for a known id", () => {
    const first = m("1", 1);
    const merged = mergeMessages([first], [{ ...first }, m("2", 2)]);
    expect(merged[0]).toBe(first);
  });

  it("converges to one order whatever the arrival order", () => {
    const all = [m("a", 5, "x", 1), m("b", 5, "y", 1), m("c", 1, "x", 2), m("d", 9, "z", 7), m("e", 5, "x", 3)];
    const want = ids([...all].sort(compareMessages));
    for (let rot = 0; rot < all.length; rot++) {
      const arrival = [...all.slice(rot), ...all.slice(0, rot)];
      let shown: readonly Ordered[] = [];
      for (const x of arrival) shown = mergeMessages(shown, [x]);
      expect(ids(shown)).toEqual(want);
    }
  });
});
