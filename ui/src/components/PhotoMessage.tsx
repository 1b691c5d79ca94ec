import { useEffect, useRef, useState } from "react";
import { toApiError } from "../api";
import { useApi } from "../ApiContext";
import type { PhotoView } from "../model";
import { Dialog } from "./Dialog";
import { MentionText } from "./Mentions";

/**
 * Photos' JPEGs as object URLs, the latest opened kept (a room scrolled
 * back and forth does not fetch them again); the oldest is let go past
 * this many (its URL revoked: a few MB of memory each at most).
 */
export const MAX_PHOTO_URLS = 48;
const urls = new Map<string, string>();

function remember(id: string, url: string) {
  urls.delete(id);
  urls.set(id, url);
  while (urls.size > MAX_PHOTO_URLS) {
    const [oldest, old] = urls.entries().next().value as [string, string];
    urls.delete(oldest);
    URL.revokeObjectURL(old);
  }
}

/** For tests: forget every photo fetched. */
export function forgetPhotos() {
  for (const url of urls.values()) URL.revokeObjectURL(url);
  urls.clear();
}

/** The photo's JPEG as an object URL once it is whole here; the thumbnail until then. */
function usePhotoUrl(id: string, photo: PhotoView): { url: string | null; error: string | null } {
  const api = useApi();
  // What was fetched for which photo (a list re-uses the component).
  const [fetched, setFetched] = useState<{ id: string; error: string | null } | null>(null);
  const cached = urls.get(id);
  useEffect(() => {
    if (!photo.complete || urls.has(id)) return;
    let live = true;
    api
      .photo(id)
      .then((bytes) => {
        const made = URL.createObjectURL(new Blob([bytes], { type: "image/jpeg" }));
        remember(id, made);
        if (live) setFetched({ id, error: null });
      })
      .catch((e) => live && setFetched({ id, error: toApiError(e).message }));
    return () => {
      live = false;
    };
  }, [api, id, photo.complete]);
  const mine = fetched?.id === id ? fetched : null;
  // From the cache only: a URL let go (the oldest of many) shows the
  // thumbnail again rather than nothing.
  return { url: cached ?? null, error: cached ? null : (mine?.error ?? null) };
}

function sizeLabel(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / (1024 * 1024)).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

/**
 * A photo in a conversation: its thumbnail at once, the photo itself when
 * all its pieces are here, opened full size in a dialog (Enter or a click;
 * Escape closes it). The caption below, with mentions marked.
 */
export function PhotoMessage({ id, photo }: { id: string; photo: PhotoView }) {
  const { url, error } = usePhotoUrl(id, photo);
  const [open, setOpen] = useState(false);
  const button = useRef<HTMLButtonElement>(null);
  const full = useRef<HTMLDivElement>(null);
  // Opened: the focus goes into the dialog; closed: back to the photo.
  useEffect(() => {
    if (open) full.current?.focus();
  }, [open]);
  const close = () => {
    setOpen(false);
    requestAnimationFrame(() => button.current?.focus());
  };
  const what = photo.caption ? `Photo: ${photo.caption}` : "Photo";
  const coming = !photo.complete;
  return (
    <figure className={`photo${coming ? " coming" : ""}`}>
      <button
        type="button"
        ref={button}
        className="photo-open"
        onClick={() => setOpen(true)}
        aria-label={`${what}. ${coming ? "Still coming: the preview for now." : "Open it full size."}`}
        style={{ aspectRatio: `${photo.width} / ${photo.height}` }}
      >
        <img src={url ?? photo.thumb} alt="" width={photo.width} height={photo.height} draggable={false} />
        {coming && (
          <span className="photo-coming" role="status">
            Coming…
          </span>
        )}
      </button>
      {error && (
        <span className="form-error" role="alert">
          The photo could not be opened: {error}
        </span>
      )}
      {photo.caption && (
        <figcaption className="msg-text">
          <MentionText text={photo.caption} />
        </figcaption>
      )}
      {open && (
        <Dialog title={photo.caption || "Photo"} onClose={close} wide>
          <div className="photo-frame" ref={full} tabIndex={-1}>
            <img className="photo-full" src={url ?? photo.thumb} alt={photo.caption || "Photo"} />
          </div>
          <p className="photo-facts">
            {photo.width} × {photo.height} · {sizeLabel(photo.bytes)}
            {coming && " · still coming: this is the preview"}
          </p>
        </Dialog>
      )}
    </figure>
  );
}
