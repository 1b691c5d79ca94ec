import { toApiError } from "../api";
import { useEffect, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { checkMessage, MAX_TEXT_BYTES, utf8Bytes } from "../logic/validate";
import { SendIcon } from "./Icons";

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
}

export function Composer({ value, onChange, onSend, placeholder }: ComposerProps) {
  const ref = useRef<HTMLTextAreaElement>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

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
      <div className={`composer-box${over ? " over" : ""}`}>
        <textarea
          ref={ref}
          rows={1}
          autoFocus={finePointer()}
          value={value}
          placeholder={placeholder}
          aria-label="Message"
          aria-invalid={over || undefined}
          onChange={(e) => {
            onChange(e.target.value);
            if (error) setError(null);
          }}
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
