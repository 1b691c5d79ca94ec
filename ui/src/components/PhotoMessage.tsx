import { useEffect, useRef, useState } from "react";
import { toApiError } from "../api";
import { useApi } from "../ApiContext";
import type { PhotoView } from "../model";
import { Dialog } from "./Dialog";
import { MentionText } from "./Mentions";

/**
 * Photos' JPEGs as object URLs, shared by every place that shows one (a
 * conversation, search results) and fetched once however many ask at a
 * time. A URL in use is never let go; of those not in use, the latest
 * [`MAX_IDLE_PHOTO_URLS`] stay (scrolling back does not fetch them again)
 * and older ones are revoked.
 */
export const MAX_IDLE_PHOTO_URLS = 48;
interface Entry {
  url: Promise<string>;
  users: number;
  /** Resolved, for showing it without a wait. */
  ready: string | null;
}
const photoUrls = new Map<string, Entry>();

function trimIdle() {
  const idle = [...photoUrls.entries()].filter(([, e]) => e.users === 0 && e.ready);
  for (const [id, e] of idle.slice(0, Math.max(0, idle.length - MAX_IDLE_PHOTO_URLS))) {
    photoUrls.delete(id);
    URL.revokeObjectURL(e.ready!);
  }
}

/** Take a photo's URL (fetching it if no one has); give it back with the returned function. */
function takePhotoUrl(id: string, fetch: () => Promise<ArrayBuffer>): { url: Promise<string>; release: () => void } {
  let e = photoUrls.get(id);
  if (!e) {
    const entry: Entry = { users: 0, ready: null, url: Promise.resolve("") };
    entry.url = fetch().then(
      (bytes) => (entry.ready = URL.createObjectURL(new Blob([bytes], { type: "image/jpeg" }))),
      (err) => {
        // Not kept: the next one to show it asks again.
        if (photoUrls.get(id) === entry) photoUrls.delete(id);
        throw err;
      },
    );
    e = entry;
  } else {
    // Most recently used last.
    photoUrls.delete(id);
  }
  photoUrls.set(id, e);
  e.users += 1;
  const taken = e;
  let released = false;
  return {
    url: taken.url,
    release: () => {
      if (released) return;
      released = true;
      taken.users -= 1;
      trimIdle();
    },
  };
}

/** For tests: forget every photo fetched. */
export function forgetPhotos() {
  for (const e of photoUrls.values()) if (e.ready) URL.revokeObjectURL(e.ready);
  photoUrls.clear();
}

/**
 * The photo's JPEG as an object URL once it is whole here and the photo is
 * near the screen (a long history does not fetch every photo it holds);
 * the thumbnail until then.
 */
function usePhotoUrl(id: string, photo: PhotoView, visible: boolean): { url: string | null; error: string | null } {
  const api = useApi();
  const [got, setGot] = useState<{ id: string; url: string | null; error: string | null } | null>(null);
  useEffect(() => {
    if (!photo.complete || !visible) return;
    let live = true;
    const taken = takePhotoUrl(id, () => api.photo(id));
    taken.url.then(
      (url) => live && setGot({ id, url, error: null }),
      (e) => live && setGot({ id, url: null, error: toApiError(e).message }),
    );
    return () => {
      live = false;
      taken.release();
    };
  }, [api, id, photo.complete, visible]);
  const mine = got?.id === id ? got : null;
  return { url: mine?.url ?? null, error: mine?.error ?? null };
}

/** Whether `el` is near the screen (always, where the browser cannot tell). */
function useNearScreen(el: React.RefObject<HTMLElement | null>): boolean {
  const [near, setNear] = useState(() => typeof IntersectionObserver === "undefined");
  useEffect(() => {
    const node = el.current;
    if (!node || typeof IntersectionObserver === "undefined") return;
    const seen = new IntersectionObserver((entries) => entries.some((x) => x.isIntersecting) && setNear(true), { rootMargin: "600px 0px" });
    seen.observe(node);
    return () => seen.disconnect();
  }, [el]);
  return near;
}

function sizeLabel(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / (1024 * 1024)).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

/**
 * A photo in a conversation: its thumbnail at once, the photo itself when
 * all its pieces are here, opened full size in a dialog (Enter or a click;
 * Escape closes it). The caption below, with mentions marked.
 */
export function PhotoMessage({ id, photo, stalled = false }: { id: string; photo: PhotoView; stalled?: boolean }) {
  const [open, setOpen] = useState(false);
  const button = useRef<HTMLButtonElement>(null);
  const near = useNearScreen(button);
  const { url, error } = usePhotoUrl(id, photo, near || open);
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
        aria-label={`${what}. ${stalled ? "Not all of it came: the preview is all there is for now." : coming ? "Still coming: the preview for now." : "Open it full size."}`}
        style={{ aspectRatio: `${photo.width} / ${photo.height}` }}
      >
        <img src={url ?? photo.thumb} alt="" width={photo.width} height={photo.height} draggable={false} />
        {coming && (
          <span className="photo-coming" role="status">
            {stalled ? "Not all of it came" : "Coming…"}
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
            {coming && (stalled ? " · not all of it came: this is the preview" : " · still coming: this is the preview")}
          </p>
        </Dialog>
      )}
    </figure>
  );
}
