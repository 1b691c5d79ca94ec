// One conversation's messages as the screen shows them: history pages loaded
// backwards (older on scroll up) merged with live events, in one order, each
// message once.

import { mergeMessages, type Ordered } from "./order";

export interface Timeline<M extends Ordered> {
  messages: readonly M[];
  /** Cursor for the next older page; null when the start is reached. */
  next: unknown;
  /** A page was asked for and has not come back. */
  loading: boolean;
  /** The newest page has arrived at least once. */
  loaded: boolean;
  error?: string | undefined;
}

export function emptyTimeline<M extends Ordered>(): Timeline<M> {
  return { messages: [], next: undefined, loading: false, loaded: false };
}

export function hasOlder(t: Timeline<Ordered>): boolean {
  return !t.loaded || (t.next !== null && t.next !== undefined);
}

export function startLoading<M extends Ordered>(t: Timeline<M>): Timeline<M> {
  return { ...t, loading: true, error: undefined };
}

/** A page came back (oldest first, as the node returns them). */
export function addPage<M extends Ordered>(t: Timeline<M>, messages: readonly M[], next: unknown): Timeline<M> {
  return {
    messages: mergeMessages(t.messages, messages),
    // Only the first page decides the cursor for a fresh timeline; later pages
    // move it further back.
    next: next ?? null,
    loading: false,
    loaded: true,
    error: undefined,
  };
}

export function pageFailed<M extends Ordered>(t: Timeline<M>, error: string): Timeline<M> {
  return { ...t, loading: false, error };
}

/** A live message (or our own send reply). */
export function addLive<M extends Ordered>(t: Timeline<M>, m: M): Timeline<M> {
  const messages = mergeMessages(t.messages, [m]);
  return messages === t.messages ? t : { ...t, messages };
}

/** Replace a message by id (e.g. the node's reply with a newer state). */
export function replaceMessage<M extends Ordered>(t: Timeline<M>, m: M): Timeline<M> {
  const i = t.messages.findIndex((x) => x.id === m.id);
  if (i < 0) return addLive(t, m);
  const messages = [...t.messages];
  messages[i] = m;
  return { ...t, messages };
}
