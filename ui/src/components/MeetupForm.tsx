import { useId, useRef, useState } from "react";
import { toApiError } from "../api";
import { defaultTime, nextAt, placeProblem, whenText } from "../logic/meetup";
import { clockTime } from "../logic/format";
import { PinIcon } from "./Icons";

export interface MeetupFormProps {
  /** Post it: "meet at `place` at `at`" (ms since the epoch). */
  onPost: (place: string, at: number) => Promise<unknown>;
  onClose: () => void;
  now?: () => number;
}

/**
 * "Meet at PLACE at TIME", above the composer: a place (one line) and a
 * time of day, the next such moment. Enter posts, Escape closes; errors
 * (the node's too) are shown in place and nothing typed is lost.
 */
export function MeetupForm({ onPost, onClose, now = Date.now }: MeetupFormProps) {
  const [place, setPlace] = useState("");
  const [time, setTime] = useState(() => defaultTime(now()));
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const placeRef = useRef<HTMLInputElement>(null);
  const id = useId();
  const shownAt = nextAt(time, now());
  const submit = async (e?: React.FormEvent) => {
    e?.preventDefault();
    if (busy) return;
    // The time as of posting: a form left open past "21:30" means tomorrow's.
    const at = nextAt(time, now());
    const problem = placeProblem(place) ?? (at === null ? "Pick a time." : null);
    if (problem || at === null) {
      setError(problem);
      placeRef.current?.focus();
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await onPost(place.trim(), at);
      onClose();
    } catch (err) {
      setError(toApiError(err).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form
      className="meetup-form"
      aria-label="New meet-up"
      onSubmit={submit}
      noValidate
      onKeyDown={(e) => {
        if (e.key === "Escape") {
          e.preventDefault();
          onClose();
        }
      }}
    >
      <PinIcon width={16} height={16} />
      <label className="sr-only" htmlFor={`${id}-place`}>
        Where
      </label>
      <input
        ref={placeRef}
        id={`${id}-place`}
        className="input meetup-place"
        placeholder="Meet at… (the big wheel)"
        autoFocus
        value={place}
        maxLength={200}
        aria-invalid={error !== null || undefined}
        aria-describedby={error ? `${id}-error` : undefined}
        onChange={(e) => {
          setPlace(e.target.value);
          setError(null);
        }}
      />
      <label className="sr-only" htmlFor={`${id}-time`}>
        At
      </label>
      <input id={`${id}-time`} className="input meetup-time" type="time" value={time} required onChange={(e) => setTime(e.target.value)} />
      <span className="muted tiny meetup-hint">{shownAt !== null ? `${clockTime(shownAt)}, ${whenText(shownAt, now())}` : ""}</span>
      <button type="submit" className="btn btn-sm" disabled={busy}>
        {busy ? "Posting…" : "Post"}
      </button>
      <button type="button" className="btn btn-sm btn-ghost" onClick={onClose}>
        Cancel
      </button>
      {error && (
        <p className="form-error meetup-error" id={`${id}-error`} role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
