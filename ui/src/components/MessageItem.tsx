import { memo, useContext } from "react";
import type { Author, MeetupAnswer, MessageView } from "../model";
import { bodyText, meetupOf } from "../logic/meetup";
import { MeetupCard } from "./MeetupCard";
import { describeDelivery, shortDelivery, waitingText, type Delivery } from "../logic/delivery";
import { clockTime, toMs } from "../logic/format";
import { plainName, sameAuthor } from "../logic/person";
import { mentions } from "../logic/mentions";
import { MentionContext, MentionText } from "./Mentions";
import { Avatar } from "./Avatar";
import { CheckCheckIcon, CheckIcon, ClockIcon } from "./Icons";
import { PersonName } from "./PersonName";

function StateIcon({ d }: { d: Delivery }) {
  const props = { width: 15, height: 15 };
  switch (d.stage) {
    case "saved":
      return <ClockIcon {...props} />;
    case "sent":
      return <CheckIcon {...props} />;
    case "delivered":
    case "read":
      return <CheckCheckIcon {...props} />;
  }
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
  /** The time the list was drawn at (a card's "in 10 min"). */
  now?: number | undefined;
}

function sameDelivery(a: Delivery | null, b: Delivery | null): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  return a.stage === b.stage && a.waiting === b.waiting && describeDelivery(a) === describeDelivery(b);
}

// Delivery objects are rebuilt on every change of the chat state; compare
// what they show so a receipt re-draws one bubble, not the whole room.
function sameWho(a: Author | undefined, b: Author | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && sameAuthor(a, b));
}

export const MessageItem = memo(function MessageItem({ m, author, head, delivery, direct, onAuthor, onAnswer, now }: MessageItemProps) {
  const time = clockTime(m.created_at);
  const full = new Date(Number(m.created_at)).toLocaleString();
  const hops = !m.mine && m.hops > 1 ? `${m.hops} hops` : null;
  const { me } = useContext(MentionContext);
  const card = meetupOf(m);
  const mentioned = !m.mine && card === null && mentions(bodyText(m.body), me);
  return (
    <li className={`msg ${m.mine ? "mine" : "theirs"}${head ? " head" : ""}${mentioned ? " mentioned" : ""}`} data-id={m.id}>
      {!m.mine && <div className="msg-avatar">{head && <Avatar id={m.author} name={author?.name ?? "?"} size="sm" />}</div>}
      <div className="msg-col">
        {head &&
          !m.mine &&
          (onAuthor ? (
            <button type="button" className="msg-author" onClick={() => onAuthor(m.author)} title={`Message ${plainName(author, m.author)} directly`}>
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
          ) : (
            <p className="msg-text">
              <MentionText text={bodyText(m.body)} />
            </p>
          )}
          <span className="msg-meta" title={full}>
            {hops && <span className="hops" title="Links it crossed to reach you">{hops} · </span>}
            <time dateTime={new Date(Number(m.created_at)).toISOString()}>{time}</time>
            {delivery && (
              <span className={`state state-${delivery.stage}`} title={describeDelivery(delivery, { direct })}>
                <StateIcon d={delivery} />
                <span className="state-label">{shortDelivery(delivery, { direct })}</span>
              </span>
            )}
          </span>
        </div>
        {delivery?.stage === "saved" && (
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
  // A card's "in 10 min" moves with the clock; a text does not.
  (a.m.body.type !== "meetup" || a.now === b.now) &&
  sameDelivery(a.delivery, b.delivery));
