// The organiser's announcements as the banner shows them: newest first,
// each until its end, at most MAX_SHOWN (the node's MAX_ANNOUNCEMENTS).

import type { AnnouncementView } from "../model";
import { toMs } from "./format";

export const MAX_SHOWN = 8;

/**
 * `list` with `a` in its place (newest first), once, at most MAX_SHOWN of
 * those still running at `now`: ended ones never push out a running one.
 */
export function addAnnouncement(list: readonly AnnouncementView[], a: AnnouncementView, now: number = Date.now()): readonly AnnouncementView[] {
  const rest = list.filter((x) => x.id !== a.id);
  return running([...rest, a], now)
    .slice()
    .sort((x, y) => toMs(y.created_at) - toMs(x.created_at))
    .slice(0, MAX_SHOWN);
}

/** Those still running at `now` (ms since the Unix epoch). */
export function running(list: readonly AnnouncementView[], now: number): readonly AnnouncementView[] {
  return list.filter((a) => toMs(a.until) > now);
}

/** When the next of them ends, or null when none runs. */
export function nextEnd(list: readonly AnnouncementView[], now: number): number | null {
  const ends = running(list, now).map((a) => toMs(a.until));
  return ends.length ? Math.min(...ends) : null;
}
