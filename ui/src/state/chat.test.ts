import { describe, expect, it } from "vitest";
import type { MessageView, NodeEvent, PeerView, RoomView } from "../model";
import { chatReducer, conversationMessages, deliveryOf, displayName, dmConversations, initialChat, sortedRooms, unreadIds, type ChatAction } from "./chat";

let seq = 0;
function msg(over: Partial<MessageView> = {}): MessageView {
  seq += 1;
  return {
    id: `id${seq}`,
    room: "festival",
    author: "bob",
    author_name: "Bob",
    seq,
    created_at: 1_000 + seq,
    received_at: 1_000 + seq,
    body: { type: "text", text: `hello ${seq}` },
    hops: 1,
    mine: false,
    state: null,
    path: null,
    waiting: null,
    delivered_to: 0,
    read_by: 0,
    ...over,
  };
}
const ev = (event: NodeEvent): ChatAction => ({ type: "event", event });
const live = (m: MessageView): ChatAction => ev({ event: "message", ...m });
const run = (...actions: ChatAction[]) => actions.reduce(chatReducer, initialChat);
const room = (id: string, unread = 0, last: number | null = null): RoomView => ({ id, name: id, unread, last_activity: last, joined_at: 0 });

describe("chat state", () => {
  it("shows a message once when the live event and the history page both carry it", () => {
    const m = msg();
    const s = run(live(m), { type: "page", key: "festival", messages: [m], next: null });
    expect(conversationMessages(s, "festival")).toHaveLength(1);
  });

  it("counts unread in rooms that are not open, and clears on open", () => {
    let s = run(live(msg({ room: "main-stage" })), live(msg({ room: "main-stage" })));
    expect(s.unread.counts["main-stage"]).toBe(2);
    s = chatReducer(s, { type: "open", key: "main-stage" });
    expect(s.unread.counts["main-stage"]).toBe(0);
  });

  it("counts messages in the open room while the window is hidden", () => {
    const s = run({ type: "visible", visible: false }, live(msg()));
    expect(s.unread.counts["festival"]).toBe(1);
    expect(chatReducer(s, { type: "visible", visible: true }).unread.counts["festival"]).toBe(0);
  });

  it("takes unread counts from the room list but not for the room on screen", () => {
    const s = run({ type: "rooms", rooms: [room("festival", 4), room("camp", 2)] });
    expect(s.unread.counts).toEqual({ camp: 2 });
  });

  it("moves an own message from saved to read through events", () => {
    const mine = msg({ author: "me", mine: true, state: "saved", waiting: "no_one_nearby" });
    let s = run({ type: "own_message", message: mine });
    expect(deliveryOf(s, mine)).toMatchObject({ stage: "saved", waiting: "no_one_nearby" });
    s = chatReducer(s, ev({ event: "sent", id: mine.id, path: "relay" }));
    expect(deliveryOf(s, mine)).toMatchObject({ stage: "sent", paths: ["relay"], waiting: undefined });
    s = chatReducer(s, ev({ event: "receipt", from: "bob", status: "Read", ids: [mine.id] }));
    expect(deliveryOf(s, mine).stage).toBe("read");
  });

  it("a send reply that is older than the events does not undo them", () => {
    const mine = msg({ mine: true, state: "saved" });
    const s = run(ev({ event: "sent", id: mine.id, path: "lan" }), { type: "own_message", message: mine });
    expect(deliveryOf(s, mine).stage).toBe("sent");
  });

  it("splits the DM mailbox into one conversation per person", () => {
    const fromAna = msg({ room: "dm", author: "ana", body: { type: "direct", to: "me", text: "hi" } });
    const toAna = msg({ room: "dm", author: "me", mine: true, body: { type: "direct", to: "ana", text: "hey" } });
    const fromBo = msg({ room: "dm", author: "bo", body: { type: "direct", to: "me", text: "yo" } });
    const s = run(live(fromAna), live(toAna), live(fromBo));
    expect(conversationMessages(s, "dm:ana").map((m) => m.id)).toEqual([fromAna.id, toAna.id]);
    expect(dmConversations(s).map((d) => d.peer)).toEqual(["bo", "ana"]);
    expect(s.unread.counts).toEqual({ "dm:ana": 1, "dm:bo": 1 });
  });

  it("names a DM conversation after the other person even when the last word was ours", () => {
    const fromAna = msg({ room: "dm", author: "ana", author_name: "Ana", body: { type: "direct", to: "me", text: "hi" } });
    const toAna = msg({ room: "dm", author: "me", author_name: "Me", mine: true, body: { type: "direct", to: "ana", text: "hey" } });
    const s = run({ type: "page", key: "dm", messages: [fromAna, toAna], next: null });
    expect(displayName(s, "ana")).toBe("Ana");
    expect(displayName(s, "me")).toBeUndefined();
  });

  it("lists a started DM before it has messages", () => {
    const s = run({ type: "start_dm", peer: "cy" }, { type: "start_dm", peer: "cy" });
    expect(dmConversations(s)).toEqual([{ key: "dm:cy", peer: "cy", last: undefined }]);
  });

  it("keeps the festival room first, then the most recently active", () => {
    let s = run({ type: "rooms", rooms: [room("a", 0, 10), room("dm", 0, 30), room("b", 0, 20), room("festival", 0, 1)] });
    expect(sortedRooms(s).map((r) => r.id)).toEqual(["festival", "b", "a"]);
    s = chatReducer(s, live(msg({ room: "a", created_at: 99 })));
    expect(sortedRooms(s).map((r) => r.id)).toEqual(["festival", "a", "b"]);
  });

  it("applies link and name events to the people list", () => {
    const p: PeerView = { peer: "ana", fingerprint: "AAAA", name: null, verified: false, path: "via_others", linked: false, discovered: true, last_seen: null };
    let s = run({ type: "peers", peers: [p] }, ev({ event: "link_up", peer: "ana", path: "lan" }), ev({ event: "peer_name", peer: "ana", name: "Ana" }));
    expect(s.peers["ana"]).toMatchObject({ linked: true, path: "lan", name: "Ana" });
    s = chatReducer(s, ev({ event: "link_down", peer: "ana", reason: "timeout" }));
    expect(s.peers["ana"]?.linked).toBe(false);
  });

  it("picks the newest unread messages of others to report read", () => {
    const a = msg(), b = msg(), mine = msg({ mine: true }), c = msg();
    const s = run({ type: "page", key: "festival", messages: [a, b, mine, c], next: null });
    expect(unreadIds(s, "festival", 2)).toEqual([b.id, c.id]);
    expect(unreadIds(s, "festival", 0)).toEqual([]);
  });

  it("ignores events it does not know and messages it cannot draw", () => {
    const s = run(live(msg()));
    const odd = { event: "from_the_future", x: 1 } as unknown as NodeEvent;
    expect(chatReducer(s, ev(odd))).toBe(s);
    const broken = { event: "message", id: "x", room: "festival" } as unknown as NodeEvent;
    expect(chatReducer(s, ev(broken))).toBe(s);
    const page = chatReducer(s, { type: "page", key: "festival", messages: [{ id: "y" } as unknown as MessageView, msg()], next: null });
    expect(conversationMessages(page, "festival")).toHaveLength(2);
  });

  it("keeps the messages shown when an older page fails", () => {
    const s = run({ type: "page", key: "festival", messages: [msg()], next: { created_at: 1, id: "c" } }, { type: "page_start", key: "festival" }, { type: "page_failed", key: "festival", error: "busy" });
    expect(conversationMessages(s, "festival")).toHaveLength(1);
    expect(s.timelines["festival"]?.error).toBe("busy");
  });
});
