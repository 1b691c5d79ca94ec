// One conversation's messages as the screen shows them: history pages loaded
// backwards (older on scroll up) merged with live events, in one order, each
// message once.

import { mergeMessages, type Ordered } from "./order";

export interface Timeline<M extends Ordered, C = unknown> {
  messages: readonly M[];
  /** Cursor for the next older page; null when the start is reached, undefined before the first page. */
  next: C | null | undefined;
  /** A page was asked for and has not come back. */
  loading: boolean;
  /** The newest page has arrived at least once. */
  loaded: boolean;
  error?: string | undefined;
}

export function emptyTimeline<M extends Ordered, C = unknown>(): Timeline<M, C> {
  return { messages: [], next: undefined, loading: false, loaded: false };
}

export function hasOlder<M extends Ordered, C>(t: Timeline<M, C>): boolean {
  return !t.loaded || (t.next !== null && t.next !== undefined);
}

export function startLoading<M extends Ordered, C>(t: Timeline<M, C>): Timeline<M, C> {
  return { ...t, loading: true, error: undefined };
}

/** A page came back (oldest first, as the node returns them); `next` continues further back. */
export function addPage<M extends Ordered, C>(t: Timeline<M, C>, messages: readonly M[], next: C | null | undefined): Timeline<M, C> {
  return { messages: mergeMessages(t.messages, messages), next: next ?? null, loading: false, loaded: true, error: undefined };
}

/**
 * The newest page asked for again (events were missed, or own messages'
 * states moved): the node's copies replace the ones shown, new ones join,
 * and the cursor for older pages stays where paging left it.
 */
export function addLatest<M extends Ordered, C>(t: Timeline<M, C>, messages: readonly M[], next: C | null | undefined): Timeline<M, C> {
  if (!t.loaded) return addPage(t, messages, next);
  const fresh = new Map(messages.map((m) => [m.id, m]));
  const replaced = t.messages.map((m) => fresh.get(m.id) ?? m);
  return { ...t, messages: mergeMessages(replaced, messages), error: undefined };
}

export function pageFailed<M extends Ordered, C>(t: Timeline<M, C>, error: string): Timeline<M, C> {
  return { ...t, loading: false, error };
}

/** A live message (or our own send reply). */
export function addLive<M extends Ordered, C>(t: Timeline<M, C>, m: M): Timeline<M, C> {
  const messages = mergeMessages(t.messages, [m]);
  return messages === t.messages ? t : { ...t, messages };
}

/** Replace a message by id (e.g. the node's reply with a newer state). */
export function replaceMessage<M extends Ordered, C>(t: Timeline<M, C>, m: M): Timeline<M, C> {
  const i = t.messages.findIndex((x) => x.id === m.id);
  if (i < 0) return addLive(t, m);
  const messages = [...t.messages];
  messages[i] = m;
  return { ...t, messages };
}
