import type { MessageView } from "../model";
import { toMs } from "./format";

// What a picked picture must be before it goes to the node, which checks
// again (crates/photo): the answer before a round trip of megabytes.

/** The kinds of picture the node opens (festival-photo: JPEG, PNG, WebP, GIF). */
export const PICTURE_TYPES = ["image/jpeg", "image/png", "image/webp", "image/gif"] as const;
/** The largest file the node takes (festival_photo::MAX_INPUT_BYTES). */
export const MAX_PICTURE_BYTES = 40 * 1024 * 1024;
/** A photo's caption at most (festival_core::photo::MAX_CAPTION_BYTES). */
export const MAX_CAPTION_BYTES = 1000;

/** Why `file` cannot be sent as a photo, in words for the person; null if it can. */
export function checkPicture(file: { type: string; size: number }): string | null {
  if (!(PICTURE_TYPES as readonly string[]).includes(file.type)) {
    return file.type.startsWith("image/")
      ? "That kind of picture cannot be sent: JPEG, PNG, WebP or GIF can."
      : "That file is not a picture: pick a photo (JPEG, PNG, WebP or GIF).";
  }
  if (file.size > MAX_PICTURE_BYTES) return "That picture is too big to send: pick one under 40 MB.";
  if (file.size === 0) return "That file is empty.";
  return null;
}

/**
 * A photo's pieces that have not all come this long after its header did
 * are not "coming" any more: they were lost on the way or nobody near
 * holds them now (they may still come later, and then it is shown).
 */
export const PHOTO_STALL_MS = 10 * 60_000;

/** Whether `m` is a photo whose pieces stopped coming, at `now`. */
export function photoStalled(m: MessageView, now: number): boolean {
  return m.body.type === "photo" && !m.body.complete && now - toMs(m.received_at) > PHOTO_STALL_MS;
}

/** When the next incomplete photo of `messages` stops "coming", after `now`: when the list must re-draw. */
export function nextPhotoStall(messages: readonly MessageView[], now: number): number | null {
  let next: number | null = null;
  for (const m of messages) {
    if (m.body.type !== "photo" || m.body.complete) continue;
    const at = toMs(m.received_at) + PHOTO_STALL_MS;
    if (at > now && (next === null || at < next)) next = at;
  }
  return next;
}
