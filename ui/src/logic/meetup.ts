// Meet-ups: "meet at PLACE at TIME" cards in a room, answered with one tap.
// The node tallies the answers (each person's latest); the UI shows the card
// until it ends (`until`: its time plus half an hour) and picks the time a
// person types.

import type { MessageBody, MessageView } from "../model";
import { clockTime, toMs } from "./format";

export type MeetupBody = Extract<MessageBody, { type: "meetup" }>;

export function meetupOf(m: MessageView): MeetupBody | null {
  return m.body.type === "meetup" ? m.body : null;
}

/** Whether a card is still up at `now`. */
export function cardUp(m: MessageView, now: number): boolean {
  const c = meetupOf(m);
  return c === null || toMs(c.until) > now;
}

/** The soonest end among the cards, after `now`: when the list must re-draw. */
export function nextCardEnd(messages: readonly MessageView[], now: number): number | null {
  let next: number | null = null;
  for (const m of messages) {
    const c = meetupOf(m);
    if (!c) continue;
    const end = toMs(c.until);
    if (end > now && (next === null || end < next)) next = end;
  }
  return next;
}

/** A message's words, for a one-line preview (the sidebar, search, notifications). */
export function bodyText(body: MessageBody): string {
  switch (body.type) {
    case "text":
    case "direct":
      return body.text;
    case "meetup":
      return `Meet-up: ${body.place}, ${clockTime(body.at)}`;
    case "group":
      return body.text;
    case "group_members":
      return `Members of “${body.name}”: ${body.members.length}`;
    case "group_added":
      return `Added ${body.added.length} ${body.added.length === 1 ? "person" : "people"} to “${body.name}”`;
    case "group_left":
      return "Left the group";
    case "photo":
      return body.caption ? `Photo: ${body.caption}` : "Photo";
  }
}

/** "in 40 min", "now", "started 10 min ago", "in 2 h". */
export function whenText(at: number, now: number): string {
  const min = Math.round((at - now) / 60_000);
  if (Math.abs(min) <= 1) return "now";
  if (min < 0) return `started ${-min} min ago`;
  if (min < 60) return `in ${min} min`;
  const h = Math.round(min / 60);
  if (h < 36) return `in ${h} h`;
  return `in ${Math.round(h / 24)} d`;
}

/**
 * The time a person picked in the form ("HH:MM", local) as the next such
 * moment after `now`: "21:30" at 22:00 means tomorrow's. Null if it does
 * not parse.
 */
export function nextAt(hhmm: string, now: number): number | null {
  const m = /^(\d{1,2}):(\d{2})$/.exec(hhmm.trim());
  if (!m) return null;
  const h = Number(m[1]);
  const min = Number(m[2]);
  if (h > 23 || min > 59) return null;
  const d = new Date(now);
  d.setHours(h, min, 0, 0);
  let at = d.getTime();
  if (at <= now) {
    const next = new Date(now);
    next.setDate(next.getDate() + 1);
    next.setHours(h, min, 0, 0);
    at = next.getTime();
  }
  return at;
}

/** The time field's first value: the next quarter hour at least 15 minutes ahead, "HH:MM". */
export function defaultTime(now: number): string {
  const d = new Date(now + 15 * 60_000);
  const q = Math.ceil(d.getMinutes() / 15) * 15;
  d.setMinutes(q, 0, 0);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

/** Longest place, in bytes of UTF-8 (the node's MAX_PLACE_BYTES). */
export const MAX_PLACE_BYTES = 200;

// Direction marks and overrides, which could make a place read backwards:
// the node refuses them (core body.rs `check_place`).
const DIRECTION_MARKS: ReadonlySet<number> = new Set([0x200e, 0x200f, 0x061c, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069]);

/** Why a place cannot be sent, or null. */
export function placeProblem(place: string): string | null {
  if (!place.trim()) return "Say where to meet.";
  if (new TextEncoder().encode(place).length > MAX_PLACE_BYTES) return "That place is too long.";
  const control = [...place].some((c) => {
    const n = c.codePointAt(0) ?? 0;
    return n < 0x20 || (n >= 0x7f && n <= 0x9f) || n === 0x2028 || n === 0x2029 || DIRECTION_MARKS.has(n);
  });
  if (control) return "Keep the place to one line.";
  return null;
}
