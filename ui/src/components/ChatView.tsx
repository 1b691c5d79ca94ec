import { useCallback, useState, type DragEvent } from "react";
import { toApiError } from "../api";
import type { AnnouncementView, Author, GroupView, HistoryCursor, MeetupAnswer, MessageView, PeerView, RoomView } from "../model";
import { dmPeer, FESTIVAL_ROOM, type ConversationKey } from "../logic/conversation";
import type { Delivery } from "../logic/delivery";
import { plainName } from "../logic/person";
import { checkPicture } from "../logic/photo";
import { hasOlder, type Timeline } from "../logic/timeline";
import { AnnouncementBanner } from "./AnnouncementBanner";
import { Avatar } from "./Avatar";
import { Composer } from "./Composer";
import { BackIcon, BanIcon, BellIcon, BellOffIcon, HashIcon, LeaveIcon, LockIcon, PlusIcon, UsersIcon } from "./Icons";
import { MessageList } from "./MessageList";
import { MeetupForm } from "./MeetupForm";
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
  deliveryOf: (m: MessageView) => Delivery | null;
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
  /** No notifications from this conversation (a room, or the person of a DM). */
  muted?: boolean;
  onMute?: (muted: boolean) => Promise<void>;
  /** DMs: the person is blocked. */
  blocked?: boolean;
  onBlock?: (blocked: boolean) => Promise<void>;
  /** A message to bring into view (a search result). */
  focusId?: string | undefined;
  /** Rooms: send a photo (a picked, dropped or pasted picture's bytes) with a caption. */
  onPhoto?: ((picture: Uint8Array, caption: string) => Promise<unknown>) | undefined;
  /** Rooms: post a meet-up card. */
  onMeetup?: ((place: string, at: number) => Promise<unknown>) | undefined;
  /** Answer a meet-up card ("coming" / "cant"). */
  onAnswer?: ((id: string, answer: MeetupAnswer) => Promise<unknown>) | undefined;
  /** Send one of ours again ("not delivered yet"). */
  onRetry?: ((id: string) => Promise<unknown>) | undefined;
  /** A private group's conversation: the group as it stands. */
  group?: GroupView | undefined;
  /** Add people to the group (opens the picker). */
  onInvite?: (() => void) | undefined;
  onLeave?: (() => Promise<unknown>) | undefined;
}

export function ChatView(p: ChatViewProps) {
  const other = dmPeer(p.convKey);
  const person = other !== undefined ? p.personOf(other) : undefined;
  const title =
    other !== undefined ? plainName(person, other) : p.group ? p.group.name : p.convKey === FESTIVAL_ROOM ? "Festival" : (p.room?.name ?? p.convKey);
  const { onLoadOlder } = p;
  const loadOlder = useCallback(() => onLoadOlder(), [onLoadOlder]);
  const [actionError, setActionError] = useState<string | null>(null);
  const [confirmBlock, setConfirmBlock] = useState(false);
  const [meetupOpen, setMeetupOpen] = useState(false);
  const [confirmLeave, setConfirmLeave] = useState(false);
  // A picture picked or dropped for this conversation, until sent or removed.
  const [picked, setPicked] = useState<{ key: ConversationKey; file: File } | null>(null);
  const picture = picked?.key === p.convKey ? picked.file : null;
  // Cleared only for its own conversation (a photo sent from one after
  // switching to another leaves the other's picture alone).
  const convKey = p.convKey;
  const setPicture = useCallback(
    (file: File | null) => setPicked((cur) => (file ? { key: convKey, file } : cur?.key === convKey ? null : cur)),
    [convKey],
  );
  const [dragging, setDragging] = useState(false);
  const carriesFiles = (e: DragEvent) => p.onPhoto !== undefined && [...e.dataTransfer.types].includes("Files");
  const drop = {
    onDragOver: (e: DragEvent) => {
      if (!carriesFiles(e)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = "copy";
      setDragging(true);
    },
    onDragLeave: (e: DragEvent) => {
      if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setDragging(false);
    },
    onDrop: (e: DragEvent) => {
      if (!carriesFiles(e)) return;
      e.preventDefault();
      setDragging(false);
      const file = e.dataTransfer.files[0];
      if (!file) return;
      // Checked as a picked one is, before a byte of it is read.
      const problem = checkPicture(file);
      setActionError(problem);
      if (!problem) setPicture(file);
    },
  };
  const g = p.group;
  const act = (f: (() => Promise<void>) | undefined) => {
    if (!f) return;
    setActionError(null);
    f().catch((e) => setActionError(toApiError(e).message));
  };
  const who = other !== undefined ? plainName(person, other) : title;
  const shortWho = person?.name ?? "this person";

  return (
    <section className={`chat${dragging ? " dropping" : ""}`} aria-label={title} {...drop}>
      <header className="chat-head">
        <button type="button" className="icon-btn back-btn" onClick={p.onBack} aria-label="Back to conversations">
          <BackIcon />
        </button>
        {other !== undefined ? (
          <Avatar id={other} name={person?.name ?? "?"} />
        ) : g ? (
          <span className="room-icon big group-icon">
            <UsersIcon />
          </span>
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
          ) : g ? (
            <span className="chat-sub" title={g.members.map((m) => (m.me ? "You" : plainName(m.who, m.peer))).join(", ")}>
              <LockIcon width={12} height={12} /> Sealed to its {g.members.length} members:{" "}
              {g.members.map((m, i) => (
                <span key={m.peer}>
                  {i > 0 && ", "}
                  {m.me ? <PersonName me /> : <PersonName author={m.who} peer={m.peer} compact />}
                </span>
              ))}
            </span>
          ) : (
            <span className="chat-sub">{p.convKey === FESTIVAL_ROOM ? "Everyone at the festival" : `#${p.convKey}`}</span>
          )}
        </div>
        <div className="chat-actions">
          {g && !g.left && p.onInvite && (
            <button type="button" className="icon-btn" aria-label={`Add people to ${g.name}`} title="Add people" onClick={p.onInvite}>
              <PlusIcon width={18} height={18} />
            </button>
          )}
          {g && !g.left && p.onLeave && (
            <button type="button" className="icon-btn" aria-label={`Leave ${g.name}`} title="Leave the group" onClick={() => setConfirmLeave(true)}>
              <LeaveIcon width={18} height={18} />
            </button>
          )}
          {p.onMute && (
            <button
              type="button"
              className="icon-btn"
              aria-pressed={p.muted ?? false}
              aria-label={p.muted ? `Unmute ${who}` : `Mute ${who}`}
              title={p.muted ? "Muted: no notifications. Click to unmute." : "Mute: no notifications from here"}
              onClick={() => act(() => p.onMute!(!p.muted))}
            >
              {p.muted ? <BellOffIcon width={18} height={18} /> : <BellIcon width={18} height={18} />}
            </button>
          )}
          {other !== undefined && p.onBlock && (
            <button
              type="button"
              className="icon-btn"
              aria-pressed={p.blocked ?? false}
              aria-label={p.blocked ? `Unblock ${who}` : `Block ${who}`}
              title={p.blocked ? "Blocked. Click to unblock." : "Block: hide what they write, keep none of their DMs, send them no receipts"}
              onClick={() => (p.blocked ? act(() => p.onBlock!(false)) : setConfirmBlock(true))}
            >
              <BanIcon width={18} height={18} />
            </button>
          )}
        </div>
        <button type="button" className="btn btn-ghost people-toggle" onClick={p.onPeople} title="People nearby">
          <UsersIcon width={18} height={18} /> {p.nearby}
        </button>
      </header>
      <AnnouncementBanner announcements={p.announcements ?? []} />
      {actionError && (
        <p className="form-error composer-error" role="alert">
          {actionError}
        </p>
      )}
      {g && confirmLeave && !g.left && (
        <div className="blocked-note" role="alertdialog" aria-label={`Leave ${g.name}?`}>
          <span>Leave {g.name}? Its members are told; you keep what was said, and read nothing new.</span>
          <button
            type="button"
            className="btn btn-sm"
            onClick={() => {
              setConfirmLeave(false);
              act(async () => {
                await p.onLeave!();
              });
            }}
          >
            Leave
          </button>
          <button type="button" className="btn btn-sm btn-ghost" autoFocus onClick={() => setConfirmLeave(false)}>
            Cancel
          </button>
        </div>
      )}
      {g?.left && (
        <div className="blocked-note" role="status">
          <span>You left this group: you read what was said until then.</span>
        </div>
      )}
      {other !== undefined && confirmBlock && !p.blocked && (
        <div className="blocked-note" role="alertdialog" aria-label={`Block ${who}?`}>
          <span>
            Block {shortWho}? You will not see what they write, their DMs are not kept, and they get no receipts from you. Settings lists whom you
            blocked, to undo it.
          </span>
          <button
            type="button"
            className="btn btn-sm"
            autoFocus
            onClick={() => {
              setConfirmBlock(false);
              act(() => p.onBlock!(true));
            }}
          >
            Block
          </button>
          <button type="button" className="btn btn-sm btn-ghost" onClick={() => setConfirmBlock(false)}>
            Cancel
          </button>
        </div>
      )}
      {other !== undefined && p.blocked && (
        <div className="blocked-note" role="status">
          <span>
            <BanIcon width={16} height={16} /> You blocked {shortWho}: nothing they write is shown, their DMs are not kept.
          </span>
          <button type="button" className="btn btn-sm btn-ghost" onClick={() => act(() => p.onBlock!(false))}>
            Unblock
          </button>
        </div>
      )}
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
        focusId={p.focusId}
        onAnswer={p.onAnswer}
        onRetry={p.onRetry}
      />
      {meetupOpen && p.onMeetup && (
        <MeetupForm
          onPost={p.onMeetup}
          onClose={() => {
            setMeetupOpen(false);
            // Back to the button that opened it (it returns with the form gone).
            requestAnimationFrame(() => document.querySelector<HTMLButtonElement>(".meetup-tool")?.focus());
          }}
        />
      )}
      {!g?.left && <Composer value={p.draft} onChange={p.onDraft} onSend={p.onSend} placeholder={other !== undefined || g ? "Write a sealed message" : `Message ${title}`}
        onMeetup={p.onMeetup && !meetupOpen ? () => setMeetupOpen(true) : undefined}
        onPhoto={p.onPhoto}
        picture={picture}
        onPicture={setPicture}
      />}
    </section>
  );
}
