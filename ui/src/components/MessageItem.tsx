import { memo, useContext, useId, useRef, useState } from "react";
import { toApiError } from "../api";
import type { Author, MeetupAnswer, MessageView } from "../model";
import { bodyText, meetupOf } from "../logic/meetup";
import { MeetupCard } from "./MeetupCard";
import { PhotoMessage } from "./PhotoMessage";
import { photoStalled } from "../logic/photo";
import { describeDelivery, notDeliveredText, shortDelivery, waitingText, type Delivery } from "../logic/delivery";
import { clockTime, toMs } from "../logic/format";
import { plainName, sameAuthor } from "../logic/person";
import { mentions } from "../logic/mentions";
import { MentionContext, MentionText } from "./Mentions";
import { Avatar } from "./Avatar";
import { AlertIcon, CheckCheckIcon, CheckIcon, ClockIcon, CloudIcon } from "./Icons";
import { PersonName } from "./PersonName";

function StateIcon({ d }: { d: Delivery }) {
  const props = { width: 15, height: 15 };
  if (d.not_delivered) return <AlertIcon {...props} />;
  switch (d.state) {
    case "saved":
      return <ClockIcon {...props} />;
    case "sent":
      return <CheckIcon {...props} />;
    case "at_relay":
      return <CloudIcon {...props} />;
    case "delivered":
    case "read":
      return <CheckCheckIcon {...props} />;
  }
}

/**
 * "Not delivered yet", why, and a way to send it again. Not a live region
 * (a history of them would be read out at once); the label beside the time
 * says it, and the button's error is tied to it.
 */
function NotDeliveredNote({ d, id, onRetry }: { d: Delivery; id: string; onRetry?: ((id: string) => Promise<unknown>) | undefined }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const errorId = useId();
  const ref = useRef<HTMLDivElement>(null);
  const retry = async () => {
    if (!onRetry || busy) return;
    setBusy(true);
    setError(null);
    // The note goes once it is sent again: the focus moves to its message.
    const li = ref.current?.closest("li");
    try {
      await onRetry(id);
      if (li instanceof HTMLElement) {
        li.tabIndex = -1;
        li.focus({ preventScroll: true });
      }
    } catch (e) {
      setError(toApiError(e).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="not-delivered" ref={ref}>
      <AlertIcon width={13} height={13} />
      <span>Not delivered yet: {notDeliveredText(d)}.</span>
      {onRetry && (
        <button type="button" className="link-btn" aria-disabled={busy} aria-describedby={error ? errorId : undefined} onClick={() => void retry()}>
          {busy ? "Sending again…" : "Try again"}
        </button>
      )}
      {error && (
        <span className="form-error" id={errorId} role="alert">
          {error}
        </span>
      )}
    </div>
  );
}

export interface MessageItemProps {
  m: MessageView;
  /** Who wrote it (undefined: not known yet); ours show as "You". */
  author: Author | undefined;
  /** First of a run by the same author: show name and avatar. */
  head: boolean;
  delivery: Delivery | null;
  direct: boolean;
  /** Open a DM with the author (rooms only). */
  onAuthor?: ((peer: string) => void) | undefined;
  /** Answer a meet-up card. */
  onAnswer?: ((id: string, answer: MeetupAnswer) => Promise<unknown>) | undefined;
  /** Send one of ours again ("not delivered yet"). */
  onRetry?: ((id: string) => Promise<unknown>) | undefined;
  /** The time the list was drawn at (a card's "in 10 min"). */
  now?: number | undefined;
}

function sameDelivery(a: Delivery | null, b: Delivery | null): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  return a.state === b.state && a.waiting === b.waiting && a.not_delivered === b.not_delivered && describeDelivery(a) === describeDelivery(b);
}

// Delivery objects are rebuilt on every change of the chat state; compare
// what they show so a receipt re-draws one bubble, not the whole room.
function sameWho(a: Author | undefined, b: Author | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && sameAuthor(a, b));
}

export const MessageItem = memo(function MessageItem({ m, author, head, delivery, direct, onAuthor, onAnswer, onRetry, now }: MessageItemProps) {
  const time = clockTime(m.created_at);
  const full = new Date(Number(m.created_at)).toLocaleString();
  const hops = !m.mine && m.hops > 1 ? `${m.hops} hops` : null;
  const { me } = useContext(MentionContext);
  const card = meetupOf(m);
  const mentioned = !m.mine && card === null && mentions(bodyText(m.body), me);
  if (m.body.type === "group_members" || m.body.type === "group_added" || m.body.type === "group_left") {
    // A group's changes, said in the group as a line of its own.
    const who = m.mine ? "You" : (author?.name ?? m.sender.name ?? "Someone");
    const people = (n: number) => `${n} ${n === 1 ? "person" : "people"}`;
    const what =
      m.body.type === "group_left"
        ? `${who} left the group`
        : m.body.type === "group_added"
          ? `${who} added ${people(m.body.added.length)}`
          : `${who} made “${m.body.name}” with ${people(m.body.members.length)}`;
    return (
      <li className="msg-sys" data-id={m.id}>
        <span>{what}</span> <time dateTime={new Date(Number(m.created_at)).toISOString()}>{time}</time>
      </li>
    );
  }
  return (
    <li className={`msg ${m.mine ? "mine" : "theirs"}${head ? " head" : ""}${mentioned ? " mentioned" : ""}`} data-id={m.id} data-author={m.mine ? undefined : m.author}>
      {!m.mine && <div className="msg-avatar">{head && <Avatar id={m.author} name={author?.name ?? "?"} size="sm" />}</div>}
      <div className="msg-col">
        {head &&
          !m.mine &&
          (onAuthor ? (
            // Out of the Tab order (a long room would be dozens of stops): with
            // the keyboard, Enter on the message does it (see MessageList).
            <button type="button" className="msg-author" tabIndex={-1} onClick={() => onAuthor(m.author)} title={`Message ${plainName(author, m.author)} directly`}>
              <PersonName author={author} peer={m.author} />
            </button>
          ) : (
            <div className="msg-author">
              <PersonName author={author} peer={m.author} />
            </div>
          ))}
        <div className="bubble">
          {card ? (
            <MeetupCard id={m.id} card={card} onAnswer={onAnswer} now={now ?? toMs(m.created_at)} />
          ) : m.body.type === "photo" ? (
            <PhotoMessage id={m.id} photo={m.body} stalled={photoStalled(m, now ?? toMs(m.created_at))} />
          ) : (
            <p className="msg-text">
              <MentionText text={bodyText(m.body)} />
            </p>
          )}
          <span className="msg-meta" title={full}>
            {hops && <span className="hops" title="Links it crossed to reach you">{hops} · </span>}
            <time dateTime={new Date(Number(m.created_at)).toISOString()}>{time}</time>
            {delivery && (
              <span className={`state state-${delivery.not_delivered ? "not-delivered" : delivery.state}`} title={describeDelivery(delivery, { direct })}>
                <StateIcon d={delivery} />
                <span className="state-label">{shortDelivery(delivery, { direct })}</span>
              </span>
            )}
          </span>
        </div>
        {delivery?.not_delivered && <NotDeliveredNote d={delivery} id={m.id} onRetry={onRetry} />}
        {delivery?.state === "saved" && !delivery.not_delivered && (
          <div className="waiting" role="status">
            <ClockIcon width={13} height={13} />
            Waiting: {waitingText(delivery.waiting)}. It leaves on its own.
          </div>
        )}
      </div>
    </li>
  );
},
(a, b) =>
  a.m === b.m &&
  sameWho(a.author, b.author) &&
  a.head === b.head &&
  a.direct === b.direct &&
  a.onAuthor === b.onAuthor &&
  a.onAnswer === b.onAnswer &&
  a.onRetry === b.onRetry &&
  // A card's "in 10 min" moves with the clock, and so does whether a
  // photo's pieces are still coming; a text does not.
  ((a.m.body.type !== "meetup" && !(a.m.body.type === "photo" && !a.m.body.complete)) || a.now === b.now) &&
  sameDelivery(a.delivery, b.delivery));
