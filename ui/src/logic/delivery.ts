// The state of one of our own messages as the person who sent it sees it:
// saved (on this device) -> sent (left via LAN or relay) -> delivered -> read.
//
// Events arrive in any order (a receipt can overtake the `sent` event, a
// history page can be older than the events already seen), so the state only
// ever moves forward: every update is a merge that keeps the furthest stage.

export type Stage = "saved" | "sent" | "delivered" | "read";
export type Path = "lan" | "relay";

const RANK: Record<Stage, number> = { saved: 0, sent: 1, delivered: 2, read: 3 };

export interface Delivery {
  stage: Stage;
  /** How it left this device (it may leave by both). */
  paths: readonly Path[];
  /** Peers that confirmed they have it / have read it. */
  deliveredTo: readonly string[];
  readBy: readonly string[];
  /** Why it has not left yet, while saved. */
  waiting?: string | undefined;
}

export const SAVED: Delivery = { stage: "saved", paths: [], deliveredTo: [], readBy: [] };

function union<T>(a: readonly T[], b: readonly T[]): readonly T[] {
  if (b.every((x) => a.includes(x))) return a;
  return [...a, ...b.filter((x) => !a.includes(x))];
}

function further(a: Stage, b: Stage): Stage {
  return RANK[a] >= RANK[b] ? a : b;
}

/** Both pieces of knowledge at once; never moves a message backwards. */
export function mergeDelivery(a: Delivery, b: Delivery): Delivery {
  const stage = further(a.stage, b.stage);
  return {
    stage,
    paths: union(a.paths, b.paths),
    deliveredTo: union(a.deliveredTo, b.deliveredTo),
    readBy: union(a.readBy, b.readBy),
    // A reason to wait means nothing once it left.
    waiting: stage === "saved" ? (b.waiting ?? a.waiting) : undefined,
  };
}

export function asPath(p: string): Path | undefined {
  const s = p.toLowerCase();
  return s === "lan" || s === "relay" ? s : undefined;
}

/** `sent { id, path }`: it left this device. */
export function onSent(d: Delivery, path: string): Delivery {
  const p = asPath(path);
  return mergeDelivery(d, { stage: "sent", paths: p ? [p] : [], deliveredTo: [], readBy: [] });
}

/** `receipt { from, status }`: a peer has it (Delivered) or has read it (Read). */
export function onReceipt(d: Delivery, from: string, status: string): Delivery {
  const read = status.toLowerCase() === "read";
  // A read receipt implies delivery to that peer.
  return mergeDelivery(d, {
    stage: read ? "read" : "delivered",
    paths: [],
    deliveredTo: [from],
    readBy: read ? [from] : [],
  });
}

/** The node says the message waits, and why. Ignored once it has left. */
export function onWaiting(d: Delivery, reason: string): Delivery {
  return mergeDelivery(d, { ...SAVED, waiting: reason });
}

/** Events that move delivery state, as the node sends them. */
export type DeliveryEvent =
  | { event: "sent"; id: string; path: string }
  | { event: "receipt"; from: string; status: string; ids: readonly string[] };

export type DeliveryBook = Readonly<Record<string, Delivery>>;

/**
 * Apply an event to the states of all our messages, keyed by id. A receipt
 * for a message not loaded yet is kept, and shows once the message does.
 */
export function applyDeliveryEvent(book: DeliveryBook, e: DeliveryEvent): DeliveryBook {
  if (e.event === "sent") {
    return { ...book, [e.id]: onSent(book[e.id] ?? SAVED, e.path) };
  }
  if (e.ids.length === 0) return book;
  const next: Record<string, Delivery> = { ...book };
  for (const id of e.ids) next[id] = onReceipt(next[id] ?? SAVED, e.from, e.status);
  return next;
}

/** Merge what a history page or a send reply says into the book. */
export function recordDelivery(book: DeliveryBook, id: string, d: Delivery): DeliveryBook {
  const before = book[id];
  return { ...book, [id]: before ? mergeDelivery(before, d) : d };
}

/** Short words for the state, as shown under a bubble. */
export function describeDelivery(d: Delivery, opts: { direct?: boolean } = {}): string {
  const via = d.paths.length ? ` via ${d.paths.map((p) => (p === "lan" ? "LAN" : "relay")).join(" + ")}` : "";
  switch (d.stage) {
    case "saved":
      return d.waiting ? `Saved · waiting: ${d.waiting}` : "Saved on this device";
    case "sent":
      return `Sent${via}`;
    case "delivered":
      return opts.direct || d.deliveredTo.length <= 1 ? `Delivered${via}` : `Delivered to ${d.deliveredTo.length}${via}`;
    case "read":
      return opts.direct || d.readBy.length <= 1 ? "Read" : `Read by ${d.readBy.length}`;
  }
}

/** The label next to the time; a waiting reason is shown on its own line. */
export function shortDelivery(d: Delivery, opts: { direct?: boolean } = {}): string {
  return d.stage === "saved" ? "Saved" : describeDelivery(d, opts);
}
