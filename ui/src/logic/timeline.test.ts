import { describe, expect, it } from "vitest";
import { addLatest, addLive, addPage, emptyTimeline, hasOlder, pageFailed, startLoading } from "./timeline";
import type { Ordered } from "./order";

const m = (n: number): Ordered => ({ id: `m${n}`, created_at: n, author: "a", seq: n });
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => m(a + i));
const ids = (t: { messages: readonly Ordered[] }) => t.messages.map((x) => x.id);

describe("timeline paging", () => {
  it("loads the newest page, then older pages before it", () => {
    let t = emptyTimeline<Ordered>();
    expect(hasOlder(t)).toBe(true);
    t = addPage(startLoading(t), range(6, 10), "cursor-6");
    expect(ids(t)).toEqual(["m6", "m7", "m8", "m9", "m10"]);
    expect(hasOlder(t)).toBe(true);
    t = addPage(startLoading(t), range(1, 5), null);
    expect(ids(t)[0]).toBe("m1");
    expect(t.messages).toHaveLength(10);
    expect(hasOlder(t)).toBe(false);
  });

  it("keeps live messages that arrived before the first page, once", () => {
    let t = emptyTimeline<Ordered>();
    t = addLive(t, m(10));
    t = addLive(t, m(11));
    t = addPage(t, range(8, 10), null);
    expect(ids(t)).toEqual(["m8", "m9", "m10", "m11"]);
  });

  it("keeps what is shown when a page fails, and says why", () => {
    let t = addPage(emptyTimeline<Ordered>(), range(5, 6), "c");
    t = pageFailed(startLoading(t), "store busy");
    expect(ids(t)).toEqual(["m5", "m6"]);
    expect(t.error).toBe("store busy");
    expect(t.loading).toBe(false);
    expect(hasOlder(t)).toBe(true);
  });

  it("the newest page again updates what is shown and keeps the paging cursor", () => {
    type V = Ordered & { v?: number };
    let t = addPage<V, string>(emptyTimeline<V, string>(), range(6, 10), "cursor-6");
    t = addPage(t, range(1, 5), "cursor-1");
    const newest: V[] = [...range(8, 10).map((x) => (x.id === "m9" ? { ...x, v: 2 } : x)), m(11)];
    t = addLatest(t, newest, "cursor-8");
    expect(t.next).toBe("cursor-1");
    expect(ids(t)).toEqual(["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9", "m10", "m11"]);
    expect(t.messages.find((x) => x.id === "m9")?.v).toBe(2);
  });

  it("a repeated live event changes nothing", () => {
    const t = addLive(emptyTimeline<Ordered>(), m(1));
    expect(addLive(t, m(1))).toBe(t);
  });
});
