import { toApiError } from "../api";
import { useContext, useEffect, useId, useLayoutEffect, useMemo, useRef, useState, type ClipboardEvent, type FormEvent, type KeyboardEvent } from "react";
import { completeMention, mentionQuery, suggestions } from "../logic/mentions";
import { MentionContext } from "./Mentions";
import { checkMessage, MAX_TEXT_BYTES, utf8Bytes } from "../logic/validate";
import { CloseIcon, ImageIcon, PinIcon, SendIcon } from "./Icons";
import { checkPicture, MAX_CAPTION_BYTES, PICTURE_TYPES } from "../logic/photo";

/** Show the byte counter from here on. */
const COUNTER_FROM = MAX_TEXT_BYTES - 500;
/** The box grows with the text up to this height, then scrolls. */
const MAX_HEIGHT_PX = 180;

/** With a mouse and keyboard, opening a conversation puts the cursor in the box; on touch screens that would pop the keyboard up. */
function finePointer(): boolean {
  return typeof window !== "undefined" && typeof window.matchMedia === "function" && window.matchMedia("(pointer: fine)").matches;
}

export interface ComposerProps {
  /** The draft for this conversation; owned by the caller so it survives switching. */
  value: string;
  onChange: (text: string) => void;
  /**
   * Resolves when the node has the message (the caller then clears the
   * draft it was sent from); rejects with the reason, and the text stays.
   */
  onSend: (text: string) => Promise<unknown>;
  placeholder: string;
  /** Rooms: open the meet-up form. */
  onMeetup?: (() => void) | undefined;
  /**
   * Rooms: send a photo (the picked file's bytes) with the text as its
   * caption; resolves when the node has it (the caller clears the draft).
   */
  onPhoto?: ((picture: Uint8Array, caption: string) => Promise<unknown>) | undefined;
  /** The picture picked (or dropped on the conversation), shown above the box until sent or removed. */
  picture?: File | null | undefined;
  onPicture?: ((file: File | null) => void) | undefined;
}

export function Composer({ value, onChange, onSend, placeholder, onMeetup, onPhoto, picture, onPicture }: ComposerProps) {
  const ref = useRef<HTMLTextAreaElement>(null);
  const fileRef = useRef<HTMLInputElement>(null);
  const photo = onPhoto ? (picture ?? null) : null;
  // The picked picture's preview, let go when it changes.
  const preview = useMemo(() => (photo ? URL.createObjectURL(photo) : null), [photo]);
  useEffect(() => () => void (preview && URL.revokeObjectURL(preview)), [preview]);
  const choose = (file: File | null | undefined) => {
    if (!file || !onPicture) return;
    const problem = checkPicture(file);
    if (problem) {
      setError(problem);
      return;
    }
    setError(null);
    onPicture(file);
    ref.current?.focus();
  };
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // "@" completion: where the caret is, the suggestion picked, dismissed by Escape.
  const [caret, setCaret] = useState(0);
  const [pick, setPick] = useState(0);
  const [dismissed, setDismissed] = useState<number | null>(null);
  const { names, me } = useContext(MentionContext);
  const listId = useId();
  const query = mentionQuery(value, caret);
  const options = query && dismissed !== query.start ? suggestions(query.query, names, me) : [];
  const picked = options.length ? Math.min(pick, options.length - 1) : -1;

  const placeCaret = useRef<number | null>(null);
  const complete = (name: string) => {
    if (!query) return;
    const next = completeMention(value, query.start, caret, name);
    onChange(next.text);
    setCaret(next.caret);
    setPick(0);
    placeCaret.current = next.caret;
  };
  // The caret goes after the completed name as soon as React has put the text in.
  useLayoutEffect(() => {
    if (placeCaret.current === null) return;
    ref.current?.setSelectionRange(placeCaret.current, placeCaret.current);
    placeCaret.current = null;
  }, [value]);

  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    el.style.height = "auto";
    el.style.height = `${Math.min(el.scrollHeight, MAX_HEIGHT_PX)}px`;
  }, [value]);

  const bytes = utf8Bytes(value);
  const over = bytes > MAX_TEXT_BYTES;

  const submit = async (e?: FormEvent) => {
    e?.preventDefault();
    if (busy) return;
    if (photo && onPhoto) return sendPhoto(photo, onPhoto);
    const c = checkMessage(value);
    if (!c.ok) {
      setError(c.error);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await onSend(value);
    } catch (err) {
      // Keep the text: nothing typed is lost.
      setError(`Not sent: ${toApiError(err).message}`);
    } finally {
      setBusy(false);
      ref.current?.focus();
    }
  };

  const sendPhoto = async (file: File, send: (picture: Uint8Array, caption: string) => Promise<unknown>) => {
    if (utf8Bytes(value.trim()) > MAX_CAPTION_BYTES) {
      setError(`A caption is at most ${MAX_CAPTION_BYTES.toLocaleString()} bytes: make it shorter, or send the text on its own.`);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await send(new Uint8Array(await file.arrayBuffer()), value);
      onPicture?.(null);
    } catch (err) {
      // Keep the picture and the caption: try again, or remove it.
      setError(`Photo not sent: ${toApiError(err).message}`);
    } finally {
      setBusy(false);
      ref.current?.focus();
    }
  };

  const onPaste = (e: ClipboardEvent<HTMLTextAreaElement>) => {
    if (!onPhoto) return;
    const file = [...e.clipboardData.files].find((f) => f.type.startsWith("image/"));
    if (file) {
      e.preventDefault();
      choose(file);
    }
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (options.length > 0 && !e.nativeEvent.isComposing) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const step = e.key === "ArrowDown" ? 1 : options.length - 1;
        setPick((picked + step) % options.length);
        return;
      }
      if ((e.key === "Enter" || e.key === "Tab") && !e.shiftKey) {
        e.preventDefault();
        complete(options[picked] ?? options[0]!);
        return;
      }
      if (e.key === "Escape") {
        // Close the list, not the dialog or panel around the composer.
        e.preventDefault();
        e.stopPropagation();
        setDismissed(query?.start ?? null);
        return;
      }
    }
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void submit();
    }
  };

  return (
    <form className="composer" onSubmit={submit} noValidate>
      {error && (
        <p className="form-error composer-error" role="alert">
          {error}
        </p>
      )}
      {options.length > 0 && (
        <ul className="mention-list" role="listbox" id={listId} aria-label="People to mention">
          {options.map((n, i) => (
            <li
              key={n}
              id={`${listId}-${i}`}
              role="option"
              aria-selected={i === picked}
              className={i === picked ? "picked" : undefined}
              // mousedown, so the text box keeps the focus.
              onMouseDown={(e) => {
                e.preventDefault();
                complete(n);
              }}
            >
              @{n}
            </li>
          ))}
        </ul>
      )}
      {photo && preview && (
        <div className="photo-tray">
          <img src={preview} alt="" />
          <span className="photo-tray-name">
            Photo: {photo.name || "picture"}
            <span className="muted small">{busy ? " · making it fit and sending…" : " · sent smaller, without its location. What you type is its caption."}</span>
          </span>
          <button type="button" className="icon-btn" aria-label="Remove the photo" title="Remove the photo" disabled={busy} onClick={() => { onPicture?.(null); ref.current?.focus(); }}>
            <CloseIcon width={16} height={16} />
          </button>
        </div>
      )}
      <div className={`composer-box${over && !photo ? " over" : ""}`}>
        {onPhoto && (
          <>
            <input
              ref={fileRef}
              type="file"
              accept={PICTURE_TYPES.join(",")}
              className="sr-only"
              tabIndex={-1}
              aria-hidden="true"
              data-testid="photo-input"
              onChange={(e) => {
                choose(e.target.files?.[0]);
                e.target.value = "";
              }}
            />
            <button type="button" className="icon-btn composer-tool" onClick={() => fileRef.current?.click()} aria-label="Add a photo" title="Photo: pick one, or drop or paste it here">
              <ImageIcon width={18} height={18} />
            </button>
          </>
        )}
        {onMeetup && (
          <button type="button" className="icon-btn composer-tool meetup-tool" onClick={onMeetup} aria-label="New meet-up" title="Meet-up: a place and a time, answered with one tap">
            <PinIcon width={18} height={18} />
          </button>
        )}
        <textarea
          ref={ref}
          rows={1}
          autoFocus={finePointer()}
          value={value}
          placeholder={placeholder}
          aria-label="Message"
          aria-invalid={over || undefined}
          aria-autocomplete="list"
          aria-controls={options.length > 0 ? listId : undefined}
          aria-activedescendant={picked >= 0 ? `${listId}-${picked}` : undefined}
          onChange={(e) => {
            onChange(e.target.value);
            setCaret(e.target.selectionStart ?? e.target.value.length);
            if (error) setError(null);
          }}
          onSelect={(e) => setCaret(e.currentTarget.selectionStart ?? 0)}
          onKeyDown={onKeyDown}
          onPaste={onPaste}
        />
        {bytes >= COUNTER_FROM && (
          <span className={`counter${over ? " over" : ""}`} aria-live="polite">
            {bytes}/{MAX_TEXT_BYTES}
          </span>
        )}
        <button type="submit" className="send-btn" disabled={busy || (value.trim() === "" && !photo)} aria-label={photo ? "Send the photo" : "Send"} title="Send (Enter)">
          <SendIcon />
        </button>
      </div>
    </form>
  );
}
