import { describe, expect, it } from "vitest";
import type { Author, MessageView, NodeEvent, PeerView, RoomView } from "../model";
import { dl, status } from "../test/stubApi";
import { authorOf, chatReducer, conversationMessages, deliveryOf, dmConversations, initialChat, sortedRooms, unreadIds, type ChatAction } from "./chat";

const BOB: Author = { name: "Bob", short_fingerprint: "B0B1", verified: false, name_clash: false, equivocated: false };
const author = (name: string, over: Partial<Author> = {}): Author => ({ ...BOB, name, ...over });
const ME_SENDER: Author = { name: null, short_fingerprint: "AAAA", verified: true, name_clash: false, equivocated: false };

let seq = 0;
function msg(over: Partial<MessageView> = {}): MessageView {
  seq += 1;
  return {
    id: `id${seq}`,
    room: "festival",
    author: "bob",
    sender: over.mine ? ME_SENDER : BOB,
    seq,
    created_at: 1_000 + seq,
    received_at: 1_000 + seq,
    body: { type: "text", text: `hello ${seq}` },
    hops: 1,
    mine: false,
    delivery: null,
    ...over,
  };
}
const ev = (event: NodeEvent): ChatAction => ({ type: "event", event });
const live = (m: MessageView): ChatAction => ev({ event: "message", ...m });
const run = (...actions: ChatAction[]) => actions.reduce(chatReducer, initialChat);
const room = (id: string, unread = 0, last: number | null = null): RoomView => ({ id, name: id, unread, last_activity: last, joined_at: 0, muted: false });
const peerView = (over: Partial<PeerView> = {}): PeerView => ({
  peer: "ana",
  fingerprint: "3F2A-91C4-7B0E-55D1",
  name: "Ana",
  verified: false,
  name_clash: false,
  equivocated: false,
  path: "lan",
  linked: true,
  discovered: true,
  last_seen: 1,
  muted: false,
  blocked: false,
  ...over,
});

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

  it("moves an own message from saved to read through the node's delivery events", () => {
    const mine = msg({ author: "me", mine: true, delivery: dl({ state: "saved", waiting: "no_one_nearby", as_of: 1 }) });
    let s = run({ type: "own_message", message: mine });
    expect(deliveryOf(s, mine)).toMatchObject({ state: "saved", waiting: "no_one_nearby" });
    s = chatReducer(s, ev({ event: "delivery", id: mine.id, delivery: dl({ state: "sent", path: "relay", as_of: 2 }) }));
    expect(deliveryOf(s, mine)).toMatchObject({ state: "sent", path: "relay", waiting: null });
    s = chatReducer(s, ev({ event: "delivery", id: mine.id, delivery: dl({ state: "read", read_by: 1, delivered_to: 1, as_of: 3 }) }));
    expect(deliveryOf(s, mine)?.state).toBe("read");
  });

  it("a view older than what was heard since does not undo it (the later as_of wins)", () => {
    const mine = msg({ mine: true, delivery: dl({ state: "saved", as_of: 1 }) });
    const s = run(ev({ event: "delivery", id: mine.id, delivery: dl({ state: "sent", as_of: 5 }) }), { type: "own_message", message: mine });
    expect(deliveryOf(s, mine)?.state).toBe("sent");
    // A page read later knows more, and wins over the event.
    const later = { ...mine, delivery: dl({ state: "at_relay", at_relay: true, as_of: 9 }) };
    const s2 = chatReducer(s, { type: "page", key: "festival", messages: [later], next: null });
    expect(deliveryOf(s2, later)?.state).toBe("at_relay");
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
    const fromAna = msg({ room: "dm", author: "ana", sender: author("Ana"), body: { type: "direct", to: "me", text: "hi" } });
    const toAna = msg({ room: "dm", author: "me", mine: true, body: { type: "direct", to: "ana", text: "hey" } });
    const s = run({ type: "page", key: "dm", messages: [fromAna, toAna], next: null });
    expect(authorOf(s, "ana")?.name).toBe("Ana");
    expect(authorOf(s, "me")).toBeUndefined();
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
    const p = peerView({ name: null, path: "via_others", linked: false, discovered: true, last_seen: null });
    let s = run({ type: "peers", peers: [p] }, ev({ event: "link_up", peer: "ana", path: "lan" }), ev({ event: "peer_name", peer: "ana", name: "Ana" }));
    expect(s.peers["ana"]).toMatchObject({ linked: true, path: "lan", name: "Ana" });
    s = chatReducer(s, ev({ event: "link_down", peer: "ana", reason: "timeout" }));
    expect(s.peers["ana"]?.linked).toBe(false);
  });

  it("keeps the organiser's announcements from events and reads, each once, newest first", () => {
    const until = Date.now() + 3_600_000;
    const first = { id: "1".repeat(64), text: "Gates open", created_at: 100, until };
    const second = { id: "2".repeat(64), text: "Rain at 18:00", created_at: 200, until };
    let s = run(ev({ event: "announcement", ...first }));
    s = chatReducer(s, { type: "announcements", announcements: [second, first] });
    s = chatReducer(s, ev({ event: "announcement", ...second }));
    expect(s.announcements.map((a) => a.text)).toEqual(["Rain at 18:00", "Gates open"]);
    // A read of the node's list replaces what was kept (a new organiser key).
    s = chatReducer(s, { type: "announcements", announcements: [second] });
    expect(s.announcements.map((a) => a.text)).toEqual(["Rain at 18:00"]);
    const broken = { event: "announcement", id: 5 } as unknown as NodeEvent;
    expect(chatReducer(s, ev(broken))).toBe(s);
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
    const s = run({ type: "page", key: "festival", messages: [msg()], next: { created_at: 1, author: "c", seq: 1 } }, { type: "page_start", key: "festival" }, { type: "page_failed", key: "festival", error: "busy" });
    expect(conversationMessages(s, "festival")).toHaveLength(1);
    expect(s.timelines["festival"]?.error).toBe("busy");
  });
});

describe("names people can trust", () => {
  it("keeps each author's name with its short fingerprint and trust flags, from pages and live messages", () => {
    const clash = author("Ana", { short_fingerprint: "9C1D", name_clash: true });
    const s = run(live(msg({ author: "mallory", sender: clash })), { type: "page", key: "festival", messages: [msg()], next: null });
    expect(authorOf(s, "mallory")).toEqual(clash);
    expect(authorOf(s, "bob")).toEqual(BOB);
  });

  it("takes the name from the sender, never from our own messages", () => {
    const s = run(live(msg({ author: "me", mine: true })));
    expect(authorOf(s, "me")).toBeUndefined();
  });

  it("prefers the people list, which is refreshed, over what older messages said", () => {
    const s = run(live(msg({ author: "ana", sender: author("Ana") })), { type: "peers", peers: [peerView({ verified: true })] });
    expect(authorOf(s, "ana")).toEqual({ name: "Ana", short_fingerprint: "3F2A", verified: true, name_clash: false, equivocated: false });
  });

  it("keeps a name its messages carried when the people list has none yet", () => {
    const s = run(live(msg({ author: "ana", sender: author("Ana") })), { type: "peers", peers: [peerView({ name: null, name_clash: true })] });
    expect(authorOf(s, "ana")).toMatchObject({ name: "Ana", short_fingerprint: "3F2A", name_clash: true });
  });

  it("falls back to the message's own sender for someone not known otherwise", () => {
    expect(authorOf(initialChat, "zed", author("Zed"))?.name).toBe("Zed");
    expect(authorOf(initialChat, "zed")).toBeUndefined();
  });

  it("a new name keeps the fingerprint and flags already known", () => {
    const s = run(live(msg({ author: "ana", sender: author("Ana", { equivocated: true }) })), ev({ event: "peer_name", peer: "ana", name: "Ana B" }));
    expect(authorOf(s, "ana")).toMatchObject({ name: "Ana B", short_fingerprint: "B0B1", equivocated: true });
  });

  it("an equivocation marks the person in the people list and on their messages", () => {
    const s = run({ type: "peers", peers: [peerView()] }, live(msg({ author: "ana", sender: author("Ana") })), ev({ event: "equivocation", peer: "ana" }));
    expect(s.peers["ana"]?.equivocated).toBe(true);
    expect(authorOf(s, "ana")?.equivocated).toBe(true);
  });

  it("the equivocation mark stays when a people list or page read earlier does not have it yet", () => {
    const s = run(
      ev({ event: "equivocation", peer: "ana" }),
      { type: "peers", peers: [peerView()] },
      { type: "page", key: "festival", messages: [msg({ author: "ana", sender: author("Ana") })], next: null },
    );
    expect(authorOf(s, "ana")?.equivocated).toBe(true);
    // Someone known only from a message later is marked too.
    const t = run(ev({ event: "equivocation", peer: "eve" }), live(msg({ author: "eve", sender: author("Eve") })));
    expect(authorOf(t, "eve")?.equivocated).toBe(true);
  });

  it("a message without a sender (another node version) is still drawn, and names nobody", () => {
    const odd = { ...msg({ author: "zed" }), sender: undefined } as unknown as MessageView;
    const s = run(live(odd));
    expect(conversationMessages(s, "festival")).toHaveLength(1);
    expect(authorOf(s, "zed")).toBeUndefined();
  });
});

describe("refusals", () => {
  it("adds a rejected event's count to the status' counters", () => {
    let s = run({ type: "status", status: { ...status, rejected: { envelope_bad_sig: 2 } } });
    s = chatReducer(s, ev({ event: "rejected", peer: "mallory", code: "envelope_bad_sig", count: 40 }));
    s = chatReducer(s, ev({ event: "rejected", peer: null, code: "signaling_bad_offer", count: 1 }));
    expect(s.status?.rejected).toEqual({ envelope_bad_sig: 42, signaling_bad_offer: 1 });
  });

  it("ignores a rejected event before the status is known", () => {
    const s = run(ev({ event: "rejected", peer: null, code: "x", count: 3 }));
    expect(s).toBe(initialChat);
  });
});

describe("delivery is the node's", () => {
  const toAna = () => msg({ room: "dm", author: "me", mine: true, delivery: dl({ state: "sent", path: "lan", as_of: 1 }), body: { type: "direct", to: "ana", text: "psst" } });

  it("a receipt event moves nothing: the node judges receipts and sends the state", () => {
    const m = toAna();
    const s = run({ type: "own_message", message: m }, ev({ event: "receipt", from: "mallory", status: "read", ids: [m.id] }));
    expect(deliveryOf(s, m)).toMatchObject({ state: "sent", read_by: 0, delivered_to: 0 });
  });

  it("a delivery event that arrives before the DM is loaded shows once it is", () => {
    const m = toAna();
    const s = run(ev({ event: "delivery", id: m.id, delivery: dl({ state: "delivered", delivered_to: 1, as_of: 4 }) }), { type: "page", key: "dm", messages: [m], next: null });
    expect(deliveryOf(s, m)?.state).toBe("delivered");
  });

  it("\"not delivered yet\" comes and goes as the node says", () => {
    const m = toAna();
    let s = run({ type: "own_message", message: m });
    s = chatReducer(s, ev({ event: "delivery", id: m.id, delivery: dl({ state: "sent", not_delivered: "handed_on", as_of: 2 }) }));
    expect(deliveryOf(s, m)?.not_delivered).toBe("handed_on");
    s = chatReducer(s, ev({ event: "delivery", id: m.id, delivery: dl({ state: "sent", overdue_at: 99, as_of: 3 }) }));
    expect(deliveryOf(s, m)?.not_delivered).toBeNull();
  });

  it("ignores a malformed delivery event", () => {
    const m = toAna();
    const s = run({ type: "own_message", message: m });
    expect(chatReducer(s, ev({ event: "delivery", id: m.id, delivery: { state: "read" } } as unknown as NodeEvent))).toBe(s);
  });

  it("blocking takes a person's messages out of every timeline; unblocking reads them all again", () => {
    const theirs = msg({ author: "bob" });
    const other = msg({ author: "cy" });
    const mine = msg({ author: "me", mine: true, delivery: dl({ state: "sent" }) });
    let s = run({ type: "peers", peers: [peerView({ peer: "bob", name: "Bob" })] }, { type: "page", key: "festival", messages: [theirs, other, mine], next: null });
    s = chatReducer(s, { type: "blocked", peer: "bob", blocked: true });
    expect(conversationMessages(s, "festival").map((m) => m.id)).toEqual([other.id, mine.id]);
    expect(s.peers["bob"]?.blocked).toBe(true);
    s = chatReducer(s, { type: "blocked", peer: "bob", blocked: false });
    expect(s.timelines).toEqual({});
    expect(s.peers["bob"]?.blocked).toBe(false);
  });

  it("knows who is muted or blocked also for people never in the people list", () => {
    const sender = { name: "Zed", short_fingerprint: "ZZZZ", verified: false, name_clash: false, equivocated: false };
    let s = run({ type: "choices", choices: [{ peer: "zed", sender, muted: true, blocked: false, since: 1 }] });
    expect(s.choices["zed"]).toEqual({ muted: true, blocked: false });
    s = chatReducer(s, { type: "blocked", peer: "zed", blocked: true });
    expect(s.choices["zed"]).toEqual({ muted: true, blocked: true });
    expect(s.peers["zed"]).toBeUndefined();
  });
});
