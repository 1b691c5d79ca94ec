// How one of our messages stands, in words and for the book of all of them.
//
// The state machine is the node's (festival_node::runtime::Delivery): saved
// -> sent (LAN / relay) -> at the relay -> delivered -> read, and for a DM a
// "not delivered yet" after a timeout, with the reason. The node computes it
// from its store and sends the whole of it with every message and in every
// `delivery` event; the UI only keeps the latest it heard of (by `as_of`:
// the store only learns more, so a later view never knows less) and says it
// in words.

import type { Delivery, NotDelivered, Waiting } from "../model";

export type { Delivery };

export type DeliveryBook = Readonly<Record<string, Delivery>>;

/** The later of two views of one message (the first on a tie: what is shown stays). */
export function later(a: Delivery | undefined, b: Delivery): Delivery {
  return a !== undefined && a.as_of >= b.as_of ? a : b;
}

/** Keep `d` for `id` if it is newer than what the book has. */
export function recordDelivery(book: DeliveryBook, id: string, d: Delivery): DeliveryBook {
  const before = book[id];
  const next = later(before, d);
  return next === before ? book : { ...book, [id]: next };
}

const WAITING: Record<Waiting, string> = {
  no_one_nearby: "no one in reach yet",
  connecting: "connecting to people nearby",
  sending: "goes out with the next exchange",
};

/** The node's waiting reason in words. */
export function waitingText(w: Waiting | null | undefined): string {
  return w ? WAITING[w] : "waiting for someone in reach";
}

const NOT_DELIVERED: Record<NotDelivered, string> = {
  not_sent: "it has not left this device",
  handed_on: "devices nearby carry it, but they have not confirmed it reached them",
  at_relay: "the relay keeps it for them; they have not fetched it yet",
};

/** Why a DM is not delivered yet, in words. */
export function notDeliveredText(d: Delivery, to = "them"): string {
  if (!d.not_delivered) return "";
  const why = NOT_DELIVERED[d.not_delivered].replace("them", to).replace("they have", to === "them" ? "they have" : `${to} has`);
  return d.not_delivered === "not_sent" ? `${why} (${waitingText(d.waiting)})` : why;
}

function via(d: Delivery): string {
  return d.path ? ` via ${d.path === "lan" ? "LAN" : "relay"}` : "";
}

/** Short words for the state, as shown under a bubble (the full ones in its title). */
export function describeDelivery(d: Delivery, opts: { direct?: boolean } = {}): string {
  if (d.not_delivered) return "Not delivered yet";
  switch (d.state) {
    case "saved":
      return d.waiting ? `Saved · ${waitingText(d.waiting)}` : "Saved on this device";
    case "sent":
      return `Sent${via(d)}`;
    case "at_relay":
      return "Stored at the relay";
    case "delivered":
      return opts.direct || d.delivered_to <= 1 ? `Delivered${via(d)}` : `Delivered to ${d.delivered_to}${via(d)}`;
    case "read":
      return opts.direct || d.read_by <= 1 ? "Read" : `Read by ${d.read_by}`;
  }
}

/** The label next to the time; a waiting or "not delivered yet" reason is shown on its own line. */
export function shortDelivery(d: Delivery, opts: { direct?: boolean } = {}): string {
  if (d.not_delivered) return "Not delivered yet";
  return d.state === "saved" ? "Saved" : describeDelivery(d, opts);
}
