import { useState } from "react";
import type { MeetupAnswer } from "../model";
import { toApiError } from "../api";
import { clockTime, toMs } from "../logic/format";
import { whenText, type MeetupBody } from "../logic/meetup";
import { PinIcon } from "./Icons";
import { PersonName } from "./PersonName";

export interface MeetupCardProps {
  id: string;
  card: MeetupBody;
  /** Answer it; undefined where no answer can be given. */
  onAnswer?: ((id: string, answer: MeetupAnswer) => Promise<unknown>) | undefined;
  /** The time the list was drawn at. */
  now: number;
}

/** Names listed on a card before "and N more". */
const LISTED = 6;

/**
 * "Meet at PLACE at TIME" with who is coming, and two buttons for one-tap
 * answers (pressed: our answer). A person's latest answer counts; the card
 * goes half an hour after its time.
 */
export function MeetupCard({ id, card, onAnswer, now }: MeetupCardProps) {
  const [busy, setBusy] = useState<MeetupAnswer | null>(null);
  const [error, setError] = useState<string | null>(null);
  const at = toMs(card.at);
  const answer = async (a: MeetupAnswer) => {
    // The answer given already: nothing to sign and send again.
    if (!onAnswer || busy || card.mine === a) return;
    setBusy(a);
    setError(null);
    try {
      await onAnswer(id, a);
    } catch (e) {
      setError(toApiError(e).message);
    } finally {
      setBusy(null);
    }
  };
  const coming = card.people.filter((p) => p.answer === "coming");
  const more = card.coming - Math.min(coming.length, LISTED);
  const titleId = `meetup-${id}`;
  return (
    <div className="meetup" role="group" aria-labelledby={titleId}>
      <p className="meetup-title" id={titleId}>
        <PinIcon width={16} height={16} />
        <span>
          Meet at <strong>{card.place}</strong>
        </span>
      </p>
      <p className="meetup-when">
        <time dateTime={new Date(at).toISOString()}>{clockTime(at)}</time> · {whenText(at, now)}
      </p>
      <p className="meetup-count">
        {card.coming} coming{card.cant > 0 ? ` · ${card.cant} can't` : ""}
      </p>
      {coming.length > 0 && (
        <p className="meetup-people">
          {coming.slice(0, LISTED).map((p, i) => (
            <span key={p.peer}>
              {i > 0 && ", "}
              {p.me ? <PersonName me /> : <PersonName author={p.who} peer={p.peer} compact />}
            </span>
          ))}
          {more > 0 && ` and ${more} more`}
        </p>
      )}
      {onAnswer && (
        <div className="meetup-answers">
          {/* aria-disabled, not disabled: the button keeps the focus while it saves. */}
          <button type="button" className="btn btn-sm" aria-pressed={card.mine === "coming"} aria-disabled={busy !== null} onClick={() => void answer("coming")}>
            {busy === "coming" ? "Saving…" : "Coming"}
          </button>
          <button type="button" className="btn btn-sm btn-ghost" aria-pressed={card.mine === "cant"} aria-disabled={busy !== null} onClick={() => void answer("cant")}>
            {busy === "cant" ? "Saving…" : "Can't"}
          </button>
        </div>
      )}
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
