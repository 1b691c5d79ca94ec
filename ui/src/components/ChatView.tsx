import { useCallback } from "react";
import type { AnnouncementView, Author, HistoryCursor, MessageView, PeerView, RoomView } from "../model";
import { dmPeer, FESTIVAL_ROOM, type ConversationKey } from "../logic/conversation";
import type { Delivery } from "../logic/delivery";
import { plainName } from "../logic/person";
import { hasOlder, type Timeline } from "../logic/timeline";
import { AnnouncementBanner } from "./AnnouncementBanner";
import { Avatar } from "./Avatar";
import { Composer } from "./Composer";
import { BackIcon, HashIcon, LockIcon, UsersIcon } from "./Icons";
import { MessageList } from "./MessageList";
import { PathChip, pathOf } from "./PeoplePanel";
import { PersonName, PersonWarnings } from "./PersonName";

export interface ChatViewProps {
  convKey: ConversationKey;
  room: RoomView | undefined;
  peer: PeerView | undefined;
  messages: readonly MessageView[];
  timeline: Timeline<MessageView, HistoryCursor> | undefined;
  /** Who wrote a message, as names are shown. */
  authorOf: (m: MessageView) => Author | undefined;
  /** Who a peer is (the other side of a DM). */
  personOf: (peer: string) => Author | undefined;
  deliveryOf: (m: MessageView) => Delivery;
  draft: string;
  onDraft: (text: string) => void;
  onSend: (text: string) => Promise<unknown>;
  onLoadOlder: () => void;
  onBack: () => void;
  onPeople: () => void;
  onAuthor: (peer: string) => void;
  nearby: number;
  /** The organiser's announcements, pinned above every conversation. */
  announcements?: readonly AnnouncementView[];
}

export function ChatView(p: ChatViewProps) {
  const other = dmPeer(p.convKey);
  const person = other !== undefined ? p.personOf(other) : undefined;
  const title = other !== undefined ? plainName(person, other) : p.convKey === FESTIVAL_ROOM ? "Festival" : (p.room?.name ?? p.convKey);
  const { onLoadOlder } = p;
  const loadOlder = useCallback(() => onLoadOlder(), [onLoadOlder]);

  return (
    <section className="chat" aria-label={title}>
      <header className="chat-head">
        <button type="button" className="icon-btn back-btn" onClick={p.onBack} aria-label="Back to conversations">
          <BackIcon />
        </button>
        {other !== undefined ? (
          <Avatar id={other} name={person?.name ?? "?"} />
        ) : (
          <span className={`room-icon big${p.convKey === FESTIVAL_ROOM ? " festival" : ""}`}>{p.convKey === FESTIVAL_ROOM ? "✦" : <HashIcon />}</span>
        )}
        <div className="chat-title">
          <h1>{other !== undefined ? <PersonName author={person} peer={other} /> : title}</h1>
          {other !== undefined ? (
            <span className="chat-sub">
              <LockIcon width={12} height={12} /> Sealed: only you two can read this
              {p.peer && (
                <>
                  {" · "}
                  <PathChip kind={pathOf(p.peer)} />
                </>
              )}
            </span>
          ) : (
            <span className="chat-sub">{p.convKey === FESTIVAL_ROOM ? "Everyone at the festival" : `#${p.convKey}`}</span>
          )}
        </div>
        <button type="button" className="btn btn-ghost people-toggle" onClick={p.onPeople} title="People nearby">
          <UsersIcon width={18} height={18} /> {p.nearby}
        </button>
      </header>
      <AnnouncementBanner announcements={p.announcements ?? []} />
      {other !== undefined && <PersonWarnings author={person} fingerprint={p.peer?.fingerprint} />}
      <MessageList
        messages={p.messages}
        loading={p.timeline?.loading ?? true}
        hasOlder={p.timeline ? hasOlder(p.timeline) : true}
        error={p.timeline?.error}
        startLabel={
          other !== undefined ? (
            <>
              This is the start of your sealed conversation with <PersonName author={person} peer={other} />.
            </>
          ) : (
            `This is the start of ${title}.`
          )
        }
        authorOf={p.authorOf}
        deliveryOf={p.deliveryOf}
        direct={other !== undefined}
        onLoadOlder={loadOlder}
        onAuthor={other === undefined ? p.onAuthor : undefined}
      />
      <Composer value={p.draft} onChange={p.onDraft} onSend={p.onSend} placeholder={other !== undefined ? "Write a sealed message" : `Message ${title}`} />
    </section>
  );
}
