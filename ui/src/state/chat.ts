// The whole chat as the screen shows it, and how node replies and events
// change it. A pure reducer: the controller (useChat) does the calls.

import type { AnnouncementView, Author, GroupView, HistoryCursor, MessageView, NodeEvent, PeerView, PersonChoiceView, RoomView, Status } from "../model";
import { addAnnouncement } from "../logic/announcements";
import { conversationOf, dmKey, dmPeer, DM_ROOM, FESTIVAL_ROOM, groupOf, type ConversationKey } from "../logic/conversation";
import { recordDelivery, type Delivery, type DeliveryBook } from "../logic/delivery";
import { addLatest, addLive, addPage, emptyTimeline, pageFailed, replaceMessage, startLoading, type Timeline } from "../logic/timeline";
import { EMPTY_UNREAD, fromRoomCounts, markSeen, onMessage, onOpen, takeToMark, type UnreadState } from "../logic/unread";
import { toMs } from "../logic/format";
import { compareMessages } from "../logic/order";
import { authorFromPeer, mergeAuthor } from "../logic/person";

type Tl = Timeline<MessageView, HistoryCursor>;

export interface ChatState {
  rooms: readonly RoomView[];
  /**
   * Per conversation: a room id, or "dm:<peer>" for one DM conversation
   * (paged with dm_history). "dm" itself is the mailbox overview (its newest
   * page plus live DMs), which lists the DM conversations.
   */
  timelines: Readonly<Record<string, Tl>>;
  deliveries: DeliveryBook;
  unread: UnreadState;
  peers: Readonly<Record<string, PeerView>>;
  /**
   * Authors as their messages carry them (name, short fingerprint, trust
   * flags), for peers not in the people list yet.
   */
  names: Readonly<Record<string, Author>>;
  /** Peers proven to have signed two messages for one place (sticky). */
  equivocators: readonly string[];
  /** People a DM was started with before any message. */
  dmStarted: readonly string[];
  status: Status | null;
  open: ConversationKey;
  /** The window is visible: messages in the open conversation are read. */
  visible: boolean;
  /** The organiser's announcements, newest first (ended ones are hidden as they end). */
  announcements: readonly AnnouncementView[];
  /** People muted or blocked here (`people_choices`), also those never in the people list. */
  choices: Readonly<Record<string, { muted: boolean; blocked: boolean }>>;
  /** A message to bring into view (a search result): its conversation pages back until it is loaded. */
  focus: { key: ConversationKey; id: string } | null;
  /** Private groups I am (or was) in, the latest active first (`groups`). */
  groups: readonly GroupView[];
}

export const initialChat: ChatState = {
  rooms: [],
  timelines: {},
  deliveries: {},
  unread: EMPTY_UNREAD,
  peers: {},
  names: {},
  equivocators: [],
  dmStarted: [],
  status: null,
  open: FESTIVAL_ROOM,
  visible: true,
  announcements: [],
  choices: {},
  focus: null,
  groups: [],
};

export type ChatAction =
  | { type: "rooms"; rooms: readonly RoomView[] }
  | { type: "room_joined"; room: RoomView }
  | { type: "page_start"; key: ConversationKey }
  | { type: "page"; key: ConversationKey; messages: readonly MessageView[]; next: HistoryCursor | null }
  /** The newest page again (after missed events or link changes): newer copies win, the cursor stays. */
  | { type: "latest"; key: ConversationKey; messages: readonly MessageView[]; next: HistoryCursor | null }
  | { type: "page_failed"; key: ConversationKey; error: string }
  | { type: "event"; event: NodeEvent }
  | { type: "own_message"; message: MessageView }
  | { type: "open"; key: ConversationKey }
  | { type: "visible"; visible: boolean }
  | { type: "peers"; peers: readonly PeerView[] }
  | { type: "announcements"; announcements: readonly AnnouncementView[] }
  | { type: "peer"; peer: PeerView }
  | { type: "groups"; groups: readonly GroupView[] }
  | { type: "group"; group: GroupView }
  | { type: "status"; status: Status }
  | { type: "start_dm"; peer: string }
  /**
   * A person was blocked (their messages leave every timeline at once) or
   * unblocked (every timeline is read again: the node kept what they wrote).
   */
  | { type: "blocked"; peer: string; blocked: boolean }
  /** The node's list of people muted or blocked. */
  | { type: "choices"; choices: readonly PersonChoiceView[] }
  /** Bring a message into view (null: done, or given up). */
  | { type: "focus"; focus: { key: ConversationKey; id: string } | null }
  /** The ids queued for a conversation were reported read. */
  | { type: "marked"; key: ConversationKey };

/** The room a conversation's messages live in (for mark_read): DMs and groups are in the mailbox. */
export function roomOf(key: ConversationKey): string {
  return dmPeer(key) !== undefined || groupOf(key) !== undefined ? DM_ROOM : key;
}

function timeline(s: ChatState, room: string): Tl {
  return s.timelines[room] ?? emptyTimeline<MessageView, HistoryCursor>();
}

function withTimeline(s: ChatState, key: string, t: Tl): ChatState {
  return t === s.timelines[key] ? s : { ...s, timelines: { ...s.timelines, [key]: t } };
}

/** Where a message shows: its conversation, and for a DM the mailbox overview too. */
function keysOf(m: MessageView): string[] {
  const key = conversationOf(m);
  return key === m.room ? [key] : [key, m.room];
}

function addToTimelines(s: ChatState, m: MessageView, how: "live" | "replace" | "update"): ChatState {
  let next = s;
  for (const key of keysOf(m)) {
    const t = timeline(next, key);
    if (how === "update") {
      // Only a message shown already: an update brings nothing new in.
      if (t.messages.some((x) => x.id === m.id)) next = withTimeline(next, key, replaceMessage(t, m));
      continue;
    }
    next = withTimeline(next, key, how === "live" ? addLive(t, m) : replaceMessage(t, m));
  }
  return next;
}

function openKey(s: ChatState): ConversationKey | null {
  return s.visible ? s.open : null;
}

function recordOwn(book: DeliveryBook, m: MessageView): DeliveryBook {
  return m.mine && m.delivery ? recordDelivery(book, m.id, m.delivery) : book;
}

function isDelivery(d: unknown): d is Delivery {
  if (typeof d !== "object" || d === null) return false;
  const o = d as Record<string, unknown>;
  return typeof o["state"] === "string" && typeof o["as_of"] === "number";
}

function touchRoom(rooms: readonly RoomView[], m: MessageView): readonly RoomView[] {
  if (m.room === DM_ROOM) return rooms;
  const at = toMs(m.created_at);
  return rooms.map((r) => (r.id === m.room && (r.last_activity === null || toMs(r.last_activity) < at) ? { ...r, last_activity: at } : r));
}

function isAuthor(a: unknown): a is Author {
  if (typeof a !== "object" || a === null) return false;
  const o = a as Record<string, unknown>;
  return (o["name"] === null || typeof o["name"] === "string") && typeof o["short_fingerprint"] === "string";
}

/** Authors as their messages carry them, for people not in the peer list. Our own are not learnt. */
function learnNames(s: ChatState, messages: readonly MessageView[]): ChatState {
  let names: Record<string, Author> | null = null;
  for (const m of messages) {
    if (m.mine || !isAuthor(m.sender)) continue;
    const known = (names ?? s.names)[m.author];
    const next = mergeAuthor(known, m.sender);
    if (next !== known) {
      names ??= { ...s.names };
      names[m.author] = next;
    }
  }
  return names ? { ...s, names } : s;
}

/** `peer_name`: the new name, on what is known of the peer (flags follow with the next people list). */
function renamed(s: ChatState, peer: string, name: string): ChatState {
  const known = s.names[peer];
  const next = known && known.name !== name ? { ...s, names: { ...s.names, [peer]: { ...known, name } } } : s;
  return patchPeer(next, peer, { name });
}

/** `equivocation`: the mark goes on the person everywhere, and stays. */
function equivocated(s: ChatState, peer: string): ChatState {
  const known = s.names[peer];
  let next = s.equivocators.includes(peer) ? s : { ...s, equivocators: [...s.equivocators, peer] };
  if (known && !known.equivocated) next = { ...next, names: { ...next.names, [peer]: { ...known, equivocated: true } } };
  return patchPeer(next, peer, { equivocated: true });
}

function patchPeer(s: ChatState, peer: string, patch: Partial<PeerView>): ChatState {
  const p = s.peers[peer];
  if (!p) return s;
  return { ...s, peers: { ...s.peers, [peer]: { ...p, ...patch } } };
}

/**
 * A message from the node is drawn only if it has what drawing needs; a
 * newer node with a different shape must not take the screen down.
 */
export function isShowable(m: unknown): m is MessageView {
  if (typeof m !== "object" || m === null) return false;
  const o = m as Record<string, unknown>;
  const body = o["body"] as Record<string, unknown> | null | undefined;
  return (
    typeof o["id"] === "string" &&
    typeof o["room"] === "string" &&
    typeof o["author"] === "string" &&
    (typeof o["created_at"] === "number" || typeof o["created_at"] === "bigint") &&
    typeof body === "object" &&
    body !== null &&
    (typeof body["text"] === "string" ||
      (body["type"] === "group_members" && typeof body["group"] === "string" && Array.isArray(body["members"])) ||
      (body["type"] === "group_added" && typeof body["group"] === "string" && Array.isArray(body["added"])) ||
      (body["type"] === "group_left" && typeof body["group"] === "string") ||
      (body["type"] === "photo" && typeof body["caption"] === "string" && typeof body["thumb"] === "string" && typeof body["complete"] === "boolean") ||
      (body["type"] === "meetup" && typeof body["place"] === "string" && typeof body["at"] === "number" && typeof body["until"] === "number" && Array.isArray(body["people"])))
  );
}

function onEvent(s: ChatState, e: NodeEvent): ChatState {
  switch (e.event) {
    case "message": {
      const { event: _tag, ...m } = e;
      if (!isShowable(m)) return s;
      const msg: MessageView = m;
      let next = addToTimelines(s, msg, "live");
      next = {
        ...next,
        unread: onMessage(next.unread, msg, openKey(next)),
        deliveries: recordOwn(next.deliveries, msg),
        rooms: touchRoom(next.rooms, msg),
      };
      return learnNames(next, [msg]);
    }
    case "meetup_changed": {
      // A card's answers changed: the card as it stands replaces the one
      // shown (and shows nothing that is not: no card comes in this way).
      const { event: _tag, ...m } = e;
      if (!isShowable(m) || m.body.type !== "meetup") return s;
      return addToTimelines(s, m, "update");
    }
    case "photo_ready": {
      // All of a photo's pieces came: the photo replaces its thumbnail
      // (only where the message is shown; none comes in this way).
      const { event: _tag, ...m } = e;
      if (!isShowable(m) || m.body.type !== "photo") return s;
      return addToTimelines(s, m, "update");
    }
    case "delivery":
      // The node's whole view of one of our messages: the later one wins.
      return typeof e.id === "string" && isDelivery(e.delivery) ? { ...s, deliveries: recordDelivery(s.deliveries, e.id, e.delivery) } : s;
    case "sent":
    case "receipt":
      // What they change comes as `delivery` events (the node counts receipts).
      return s;
    case "peer_name":
      return typeof e.name === "string" ? renamed(s, e.peer, e.name) : s;
    case "discovered":
      return patchPeer(s, e.peer, { discovered: true, last_seen: Date.now() });
    case "lost":
      return patchPeer(s, e.peer, { discovered: false });
    case "link_up":
      return patchPeer(s, e.peer, { linked: true, path: e.path, last_seen: Date.now() });
    case "link_down":
      return patchPeer(s, e.peer, { linked: false });
    case "power":
      return s.status && e.mode ? { ...s, status: { ...s.status, power: e.mode } } : s;
    case "equivocation":
      return typeof e.peer === "string" ? equivocated(s, e.peer) : s;
    case "rejected": {
      // One event stands for `count` refusals (the node reports at most one
      // a second per link): the status' counters move by that many until
      // the next status read replaces them with the node's own totals.
      if (!s.status || typeof e.code !== "string") return s;
      const n = typeof e.count === "number" && Number.isFinite(e.count) && e.count > 0 ? e.count : 1;
      const rejected = { ...s.status.rejected, [e.code]: (s.status.rejected[e.code] ?? 0) + n };
      return { ...s, status: { ...s.status, rejected } };
    }
    case "announcement": {
      const { event: _tag, ...a } = e;
      return typeof a.text === "string" && typeof a.id === "string" ? { ...s, announcements: addAnnouncement(s.announcements, a) } : s;
    }
    case "lagged":
      return s;
    default:
      // An event this UI does not know (a newer node): ignore it.
      return s;
  }
}

export function chatReducer(s: ChatState, a: ChatAction): ChatState {
  switch (a.type) {
    case "rooms": {
      const known = new Set(a.rooms.map((r) => r.id));
      // Keep rooms joined meanwhile that the list did not have yet.
      const rooms = [...a.rooms, ...s.rooms.filter((r) => !known.has(r.id))];
      return { ...s, rooms, unread: fromRoomCounts(s.unread, a.rooms.filter((r) => r.id !== s.open || !s.visible)) };
    }
    case "room_joined":
      return s.rooms.some((r) => r.id === a.room.id) ? s : { ...s, rooms: [...s.rooms, a.room] };
    case "page_start":
      return withTimeline(s, a.key, startLoading(timeline(s, a.key)));
    case "page":
    case "latest": {
      const messages = a.messages.filter(isShowable);
      const t = timeline(s, a.key);
      const next = withTimeline(s, a.key, a.type === "page" ? addPage(t, messages, a.next) : addLatest(t, messages, a.next));
      let deliveries = next.deliveries;
      for (const m of messages) deliveries = recordOwn(deliveries, m);
      return { ...learnNames(next, messages), deliveries, unread: markSeen(next.unread, messages.map((m) => m.id)) };
    }
    case "page_failed":
      return withTimeline(s, a.key, pageFailed(timeline(s, a.key), a.error));
    case "event":
      return typeof a.event === "object" && a.event !== null ? onEvent(s, a.event) : s;
    case "own_message": {
      const m = a.message;
      const next = addToTimelines(s, m, "replace");
      return {
        ...next,
        deliveries: recordOwn(next.deliveries, m),
        unread: markSeen(next.unread, [m.id]),
        rooms: touchRoom(next.rooms, m),
      };
    }
    case "open":
      return { ...s, open: a.key, unread: s.visible ? onOpen(s.unread, a.key) : s.unread };
    case "visible":
      return { ...s, visible: a.visible, unread: a.visible ? onOpen(s.unread, s.open) : s.unread };
    case "announcements": {
      // The node's list is the whole truth (a new organiser key drops the
      // old key's); what an event brought meanwhile is in it too.
      const now = Date.now();
      return { ...s, announcements: a.announcements.reduce<readonly AnnouncementView[]>((l, x) => addAnnouncement(l, x, now), []) };
    }
    case "peers": {
      const peers: Record<string, PeerView> = {};
      for (const p of a.peers) peers[p.peer] = p;
      return { ...s, peers };
    }
    case "peer":
      return { ...s, peers: { ...s.peers, [a.peer.peer]: a.peer } };
    case "groups":
      return { ...s, groups: a.groups };
    case "group":
      return { ...s, groups: [a.group, ...s.groups.filter((g) => g.id !== a.group.id)] };
    case "status":
      return { ...s, status: a.status };
    case "start_dm":
      return s.dmStarted.includes(a.peer) ? s : { ...s, dmStarted: [...s.dmStarted, a.peer] };
    case "marked":
      return { ...s, unread: takeToMark(s.unread, a.key)[0] };
    case "focus":
      return { ...s, focus: a.focus };
    case "choices": {
      const choices: Record<string, { muted: boolean; blocked: boolean }> = {};
      for (const c of a.choices) choices[c.peer] = { muted: c.muted, blocked: c.blocked };
      return { ...s, choices };
    }
    case "blocked": {
      const known = s.peers[a.peer];
      const peers = known ? { ...s.peers, [a.peer]: { ...known, blocked: a.blocked } } : s.peers;
      const was = s.choices[a.peer] ?? { muted: false, blocked: false };
      s = { ...s, choices: { ...s.choices, [a.peer]: { ...was, blocked: a.blocked } } };
      if (!a.blocked) return { ...s, peers, timelines: {} };
      const timelines: Record<string, Tl> = {};
      for (const [k, t] of Object.entries(s.timelines)) {
        const messages = t.messages.filter((m) => m.mine || m.author !== a.peer);
        timelines[k] = messages.length === t.messages.length ? t : { ...t, messages };
      }
      return { ...s, peers, timelines };
    }
  }
}

// ---- Selectors -------------------------------------------------------------

/** Festival room first, then by latest activity. The DM mailbox is not a room to show. */
export function sortedRooms(s: ChatState): RoomView[] {
  return s.rooms.filter((r) => r.id !== DM_ROOM).sort((a, b) => {
    if (a.id === FESTIVAL_ROOM) return -1;
    if (b.id === FESTIVAL_ROOM) return 1;
    return toMs(b.last_activity ?? 0) - toMs(a.last_activity ?? 0) || a.name.localeCompare(b.name);
  });
}

const NONE: readonly MessageView[] = [];

/** The messages of one conversation, in order. */
export function conversationMessages(s: ChatState, key: ConversationKey): readonly MessageView[] {
  return s.timelines[key]?.messages ?? NONE;
}

export interface DmSummary {
  key: ConversationKey;
  peer: string;
  last: MessageView | undefined;
}

/** DM conversations, newest first; started ones without messages at the top. */
export function dmConversations(s: ChatState): DmSummary[] {
  const byPeer = new Map<string, MessageView>();
  const consider = (m: MessageView | undefined) => {
    if (!m) return;
    const peer = dmPeer(conversationOf(m));
    if (peer === undefined) return;
    const had = byPeer.get(peer);
    if (!had || compareMessages(had, m) < 0) byPeer.set(peer, m);
  };
  for (const m of s.timelines[DM_ROOM]?.messages ?? []) consider(m);
  for (const [key, t] of Object.entries(s.timelines)) if (dmPeer(key) !== undefined) consider(t.messages[t.messages.length - 1]);
  const out: DmSummary[] = [...byPeer].map(([peer, last]) => ({ key: dmKey(peer), peer, last }));
  for (const peer of s.dmStarted) if (!byPeer.has(peer)) out.push({ key: dmKey(peer), peer, last: undefined });
  return out.sort((a, b) => (b.last ? toMs(b.last.created_at) : Infinity) - (a.last ? toMs(a.last.created_at) : Infinity));
}

/**
 * Who a peer is, as every name on screen shows it: the people list first
 * (it is refreshed), then what their messages said, then `fallback` (the
 * message being drawn). An equivocation seen this session marks them even
 * before the list catches up. `undefined`: nothing known yet.
 */
export function authorOf(s: ChatState, peer: string, fallback?: Author | null): Author | undefined {
  const p = s.peers[peer];
  const said = s.names[peer] ?? (isAuthor(fallback) ? fallback : undefined);
  let base = p ? authorFromPeer(p) : said;
  if (!base) return undefined;
  // The list may not have a name its messages already carried.
  if (base.name === null && said?.name) base = { ...base, name: said.name };
  const marked = base.equivocated || s.equivocators.includes(peer) || s.names[peer]?.equivocated === true;
  return marked === base.equivocated ? base : { ...base, equivocated: marked };
}

/** The delivery state to show for one of our messages: the latest the node told. */
export function deliveryOf(s: ChatState, m: MessageView): Delivery | null {
  const known = s.deliveries[m.id];
  if (!m.delivery) return known ?? null;
  return known ? (known.as_of >= m.delivery.as_of ? known : m.delivery) : m.delivery;
}

/** Ids to report read when a conversation with `count` unread is opened. */
export function unreadIds(s: ChatState, key: ConversationKey, count: number): string[] {
  if (count <= 0) return [];
  const theirs = conversationMessages(s, key).filter((m) => !m.mine);
  return theirs.slice(-count).map((m) => m.id);
}
