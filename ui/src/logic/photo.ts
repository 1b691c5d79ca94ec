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
