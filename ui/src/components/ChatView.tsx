import { useCallback } from "react";
import type { HistoryCursor, MessageView, PeerView, RoomView } from "../model";
import { dmPeer, FESTIVAL_ROOM, type ConversationKey } from "../logic/conversation";
import type { Delivery } from "../logic/delivery";
import { shortId } from "../logic/format";
import { hasOlder, type Timeline } from "../logic/timeline";
import { Avatar } from "./Avatar";
import { Composer } from "./Composer";
import { BackIcon, HashIcon, LockIcon, UsersIcon } from "./Icons";
import { MessageList } from "./MessageList";
import { PathChip, VerifiedBadge, pathOf } from "./PeoplePanel";

export interface ChatViewProps {
  convKey: ConversationKey;
  room: RoomView | undefined;
  peer: PeerView | undefined;
  messages: readonly MessageView[];
  timeline: Timeline<MessageView, HistoryCursor> | undefined;
  nameOf: (m: MessageView) => string;
  peerName: (peer: string) => string | undefined;
  deliveryOf: (m: MessageView) => Delivery;
  draft: string;
  onDraft: (text: string) => void;
  onSend: (text: string) => Promise<unknown>;
  onLoadOlder: () => void;
  onBack: () => void;
  onPeople: () => void;
  onAuthor: (peer: string) => void;
  nearby: number;
}

export function ChatView(p: ChatViewProps) {
  const other = dmPeer(p.convKey);
  const title = other !== undefined ? (p.peerName(other) ?? shortId(other)) : p.convKey === FESTIVAL_ROOM ? "Festival" : (p.room?.name ?? p.convKey);
  const { onLoadOlder } = p;
  const loadOlder = useCallback(() => onLoadOlder(), [onLoadOlder]);

  return (
    <section className="chat" aria-label={title}>
      <header className="chat-head">
        <button type="button" className="icon-btn back-btn" onClick={p.onBack} aria-label="Back to conversations">
          <BackIcon />
        </button>
        {other !== undefined ? (
          <Avatar id={other} name={title} />
        ) : (
          <span className={`room-icon big${p.convKey === FESTIVAL_ROOM ? " festival" : ""}`}>{p.convKey === FESTIVAL_ROOM ? "✦" : <HashIcon />}</span>
        )}
        <div className="chat-title">
          <h1>{title}</h1>
          {other !== undefined ? (
            <span className="chat-sub">
              <LockIcon width={12} height={12} /> Sealed: only you two can read this
              {p.peer && (
                <>
                  {" · "}
                  <VerifiedBadge verified={p.peer.verified} /> <PathChip kind={pathOf(p.peer)} />
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
      <MessageList
        messages={p.messages}
        loading={p.timeline?.loading ?? true}
        hasOlder={p.timeline ? hasOlder(p.timeline) : true}
        error={p.timeline?.error}
        startLabel={other !== undefined ? `This is the start of your sealed conversation with ${title}.` : `This is the start of ${title}.`}
        nameOf={p.nameOf}
        deliveryOf={p.deliveryOf}
        direct={other !== undefined}
        onLoadOlder={loadOlder}
        onAuthor={other === undefined ? p.onAuthor : undefined}
      />
      <Composer value={p.draft} onChange={p.onDraft} onSend={p.onSend} placeholder={other !== undefined ? `Message ${title} (sealed)` : `Message ${title}`} />
    </section>
  );
}
