import { describe, expect, it } from "vitest";
import { EMPTY_UNREAD, fromRoomCounts, markSeen, onMessage, onOpen, takeToMark, totalUnread, type Unreadable } from "./unread";

const msg = (id: string, room = "festival", extra: Partial<Unreadable> = {}): Unreadable => ({
  id,
  room,
  author: "them",
  mine: false,
  body: { type: "text" },
  ...extra,
});

describe("unread counts", () => {
  it("starts from the node's room list", () => {
    const s = fromRoomCounts(EMPTY_UNREAD, [{ id: "festival", unread: 3 }, { id: "main-stage", unread: 0n }]);
    expect(s.counts).toEqual({ festival: 3, "main-stage": 0 });
  });

  it("counts a message in a closed room once, however often it arrives", () => {
    let s = onMessage(EMPTY_UNREAD, msg("a"), "main-stage");
    s = onMessage(s, msg("a"), "main-stage");
    expect(s.counts["festival"]).toBe(1);
  });

  it("does not count own messages", () => {
    expect(onMessage(EMPTY_UNREAD, msg("a", "festival", { mine: true }), null).counts).toEqual({});
  });

  it("does not count messages in the open room but queues them to be marked read", () => {
    let s = onMessage(EMPTY_UNREAD, msg("a"), "festival");
    expect(s.counts["festival"]).toBeUndefined();
    let ids: readonly string[];
    [s, ids] = takeToMark(s, "festival");
    expect(ids).toEqual(["a"]);
    [, ids] = takeToMark(s, "festival");
    expect(ids).toEqual([]);
  });

  it("clears a room when opened", () => {
    let s = onMessage(EMPTY_UNREAD, msg("a"), null);
    s = onMessage(s, msg("b"), null);
    expect(s.counts["festival"]).toBe(2);
    s = onOpen(s, "festival");
    expect(s.counts["festival"]).toBe(0);
  });

  it("counts DMs per person", () => {
    let s = onMessage(EMPTY_UNREAD, msg("a", "dm", { author: "ana", body: { type: "direct", to: "me" } }), null);
    s = onMessage(s, msg("b", "dm", { author: "bo", body: { type: "direct", to: "me" } }), null);
    s = onMessage(s, msg("c", "dm", { author: "ana", body: { type: "direct", to: "me" } }), null);
    expect(s.counts).toEqual({ "dm:ana": 2, "dm:bo": 1 });
    expect(totalUnread(s, ["dm:ana", "dm:bo"])).toBe(3);
  });

  it("does not count a message already seen in a history page", () => {
    let s = markSeen(EMPTY_UNREAD, ["a"]);
    s = onMessage(s, msg("a"), null);
    expect(s.counts["festival"]).toBeUndefined();
  });
});
