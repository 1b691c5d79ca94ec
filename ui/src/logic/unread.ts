// Unread counts per conversation. The node's room list is the truth at start;
// live messages add to it until the person opens the conversation. Each
// message counts once, however often it arrives (sync can deliver a message
// again, and a history page can overlap the live stream).

import { conversationOf, type ConversationKey, type Routed } from "./conversation";

export interface UnreadState {
  counts: Readonly<Record<ConversationKey, number>>;
  /** Ids already counted or already seen by the person. */
  seen: ReadonlySet<string>;
  /** Ids shown while the conversation was open, not yet reported read. */
  toMark: Readonly<Record<ConversationKey, readonly string[]>>;
}

export const EMPTY_UNREAD: UnreadState = { counts: {}, seen: new Set(), toMark: {} };

/** Counts as the node's room list reports them. */
export function fromRoomCounts(state: UnreadState, rooms: readonly { id: string; unread: number | bigint }[]): UnreadState {
  const counts: Record<string, number> = { ...state.counts };
  for (const r of rooms) counts[r.id] = Number(r.unread);
  return { ...state, counts };
}

export type Unreadable = Routed & { id: string };

/**
 * A message arrived (live or in a page). `open` is the conversation the
 * person is looking at now, if any.
 */
export function onMessage(state: UnreadState, m: Unreadable, open: ConversationKey | null): UnreadState {
  if (m.mine || state.seen.has(m.id)) return state;
  const key = conversationOf(m);
  const seen = new Set(state.seen).add(m.id);
  if (key === open) {
    return { ...state, seen, toMark: { ...state.toMark, [key]: [...(state.toMark[key] ?? []), m.id] } };
  }
  return { ...state, seen, counts: { ...state.counts, [key]: (state.counts[key] ?? 0) + 1 } };
}

/** Messages already on screen (history pages) are not news. */
export function markSeen(state: UnreadState, ids: readonly string[]): UnreadState {
  if (ids.every((id) => state.seen.has(id))) return state;
  const seen = new Set(state.seen);
  for (const id of ids) seen.add(id);
  return { ...state, seen };
}

/** The person opened a conversation: nothing in it is unread any more. */
export function onOpen(state: UnreadState, key: ConversationKey): UnreadState {
  if (!state.counts[key]) return state;
  return { ...state, counts: { ...state.counts, [key]: 0 } };
}

/** Take the ids waiting to be reported read for a conversation. */
export function takeToMark(state: UnreadState, key: ConversationKey): [UnreadState, readonly string[]] {
  const ids = state.toMark[key] ?? [];
  if (ids.length === 0) return [state, ids];
  const toMark = { ...state.toMark };
  delete toMark[key];
  return [{ ...state, toMark }, ids];
}

export function totalUnread(state: UnreadState, keys?: readonly ConversationKey[]): number {
  const all = keys ?? Object.keys(state.counts);
  return all.reduce((n, k) => n + (state.counts[k] ?? 0), 0);
}
