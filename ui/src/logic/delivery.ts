// The state of one of our own messages as the person who sent it sees it:
// saved (on this device) -> sent (left via LAN or relay) -> delivered -> read.
//
// Events arrive in any order (a receipt can overtake the `sent` event, a
// history page can be older than the events already seen), so the state only
// ever moves forward: every update is a merge that keeps the furthest stage.

import type { ReceiptStatus } from "../model";

export type Stage = "saved" | "sent" | "delivered" | "read";
export type Path = "lan" | "relay";

const RANK: Record<Stage, number> = { saved: 0, sent: 1, delivered: 2, read: 3 };

export interface Delivery {
  stage: Stage;
  /**
   * The furthest stage known without the receipts in `deliveredTo` /
   * `readBy`: what the node reported and `sent` events. Kept apart so a
   * DM's state can be told from its recipient's receipts alone.
   */
  reported: Stage;
  /** How it left this device (it may leave by both). */
  paths: readonly Path[];
  /** Peers whose receipts arrived as events. */
  deliveredTo: readonly string[];
  readBy: readonly string[];
  /** Counts the node reported (history, send reply): receipts from before this session. */
  deliveredCount: number;
  readCount: number;
  /** Why it has not left yet, while saved (the node's code, e.g. "no_one_nearby"). */
  waiting?: string | undefined;
}

export const SAVED: Delivery = { stage: "saved", reported: "saved", paths: [], deliveredTo: [], readBy: [], deliveredCount: 0, readCount: 0 };

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
    reported: further(a.reported, b.reported),
    paths: union(a.paths, b.paths),
    deliveredTo: union(a.deliveredTo, b.deliveredTo),
    readBy: union(a.readBy, b.readBy),
    deliveredCount: Math.max(a.deliveredCount, b.deliveredCount),
    readCount: Math.max(a.readCount, b.readCount),
    // A reason to wait means nothing once it left.
    waiting: stage === "saved" ? (b.waiting ?? a.waiting) : undefined,
  };
}

export function asPath(p: string | null | undefined): Path | undefined {
  const s = (p ?? "").toLowerCase();
  return s === "lan" || s === "relay" ? s : undefined;
}

/** `sent { id, path }`: it left this device. */
export function onSent(d: Delivery, path: string): Delivery {
  const p = asPath(path);
  return mergeDelivery(d, { ...SAVED, stage: "sent", reported: "sent", paths: p ? [p] : [] });
}

/** `receipt { from, status }`: a peer has it (Delivered) or has read it (Read). */
export function onReceipt(d: Delivery, from: string, status: ReceiptStatus): Delivery {
  const read = status === "read";
  // A read receipt implies delivery to that peer.
  return mergeDelivery(d, { ...SAVED, stage: read ? "read" : "delivered", deliveredTo: [from], readBy: read ? [from] : [] });
}

/**
 * A DM as far as its recipient's receipts go. Only the person it is for can
 * have it delivered or read: a receipt from anyone else (a device that
 * carried the sealed message, or one that lies) moves nothing. The node
 * counts it so too; the UI keeps to it in its own state.
 */
export function forRecipient(d: Delivery, to: string): Delivery {
  const deliveredTo = d.deliveredTo.filter((p) => p === to);
  const readBy = d.readBy.filter((p) => p === to);
  if (deliveredTo.length === d.deliveredTo.length && readBy.length === d.readBy.length) return d;
  const fromReceipts: Stage = readBy.length ? "read" : deliveredTo.length ? "delivered" : "saved";
  const stage = further(d.reported, fromReceipts);
  return { ...d, stage, deliveredTo, readBy, waiting: stage === "saved" ? d.waiting : undefined };
}

/** Events that move delivery state, as the node sends them. */
export type DeliveryEvent =
  | { event: "sent"; id: string; path: string }
  | { event: "receipt"; from: string; status: ReceiptStatus; ids: readonly string[] };

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

export function deliveredCount(d: Delivery): number {
  return Math.max(d.deliveredCount, d.deliveredTo.length, readCount(d));
}

export function readCount(d: Delivery): number {
  return Math.max(d.readCount, d.readBy.length);
}

const WAITING: Record<string, string> = {
  no_one_nearby: "no one in reach yet",
  connecting: "connecting to people nearby",
  sending: "goes out with the next exchange",
};

/** The node's waiting code in words. */
export function waitingText(code: string | undefined): string {
  if (!code) return "waiting for someone in reach";
  return WAITING[code] ?? code.replace(/_/g, " ");
}

/** Short words for the state, as shown under a bubble. */
export function describeDelivery(d: Delivery, opts: { direct?: boolean } = {}): string {
  const via = d.paths.length ? ` via ${d.paths.map((p) => (p === "lan" ? "LAN" : "relay")).join(" + ")}` : "";
  switch (d.stage) {
    case "saved":
      return d.waiting ? `Saved · ${waitingText(d.waiting)}` : "Saved on this device";
    case "sent":
      return `Sent${via}`;
    case "delivered": {
      const n = deliveredCount(d);
      return opts.direct || n <= 1 ? `Delivered${via}` : `Delivered to ${n}${via}`;
    }
    case "read": {
      const n = readCount(d);
      return opts.direct || n <= 1 ? "Read" : `Read by ${n}`;
    }
  }
}

/** The label next to the time; a waiting reason is shown on its own line. */
export function shortDelivery(d: Delivery, opts: { direct?: boolean } = {}): string {
  return d.stage === "saved" ? "Saved" : describeDelivery(d, opts);
}
