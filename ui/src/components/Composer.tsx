import { toApiError } from "../api";
import { useContext, useEffect, useId, useLayoutEffect, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { completeMention, mentionQuery, suggestions } from "../logic/mentions";
import { MentionContext } from "./Mentions";
import { checkMessage, MAX_TEXT_BYTES, utf8Bytes } from "../logic/validate";
import { PinIcon, SendIcon } from "./Icons";

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
}

export function Composer({ value, onChange, onSend, placeholder, onMeetup }: ComposerProps) {
  const ref = useRef<HTMLTextAreaElement>(null);
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
      <div className={`composer-box${over ? " over" : ""}`}>
        {onMeetup && (
          <button type="button" className="icon-btn composer-tool" onClick={onMeetup} aria-label="New meet-up" title="Meet-up: a place and a time, answered with one tap">
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
        />
        {bytes >= COUNTER_FROM && (
          <span className={`counter${over ? " over" : ""}`} aria-live="polite">
            {bytes}/{MAX_TEXT_BYTES}
          </span>
        )}
        <button type="submit" className="send-btn" disabled={busy || value.trim() === ""} aria-label="Send" title="Send (Enter)">
          <SendIcon />
        </button>
      </div>
    </form>
  );
}
