import { toApiError } from "../api";
import { useState, type FormEvent } from "react";
import type { Author, GroupView, RoomView } from "../model";
import { dmKey, FESTIVAL_ROOM, groupKey, type ConversationKey } from "../logic/conversation";
import { messageTime } from "../logic/format";
import { SHORT_FINGERPRINT_LEN } from "../logic/person";
import { checkRoomName, roomIdPreview } from "../logic/validate";
import type { DmSummary } from "../state/chat";
import { Avatar } from "./Avatar";
import { BellOffIcon, CloseIcon, HashIcon, LockIcon, PlusIcon, QrIcon, SettingsIcon, UsersIcon } from "./Icons";
import { FingerprintChip, PersonName } from "./PersonName";
import { SearchBox, SearchResults } from "./Search";
import { bodyText } from "../logic/meetup";

export interface SidebarProps {
  /** Ourselves; `fingerprint` once the node runs ("5E6F-7A8B-..."). */
  me: { id: string; name: string; fingerprint?: string | undefined };
  rooms: readonly RoomView[];
  dms: readonly DmSummary[];
  unread: Readonly<Record<string, number>>;
  open: ConversationKey;
  nearby: number;
  /** Who a peer is; `fallback`: what their last message said. */
  personOf: (peer: string, fallback?: Author) => Author | undefined;
  onOpen: (key: ConversationKey) => void;
  onJoin: (name: string) => Promise<unknown>;
  onPeople: () => void;
  onSettings: () => void;
  onMyCode: () => void;
  /** Conversations muted (rooms by id, people as "dm:<peer>"). */
  muted?: ReadonlySet<string>;
  /** Open a search result's conversation at the message. */
  onJump?: (key: ConversationKey, id: string) => void;
  /** Private groups I am (or was) in. */
  groups?: readonly GroupView[];
  onNewGroup?: () => void;
}

function Muted() {
  return (
    <span className="room-muted" title="Muted: no notifications">
      <BellOffIcon width={14} height={14} aria-label="muted" aria-hidden={false} role="img" />
    </span>
  );
}

function Badge({ n }: { n: number }) {
  if (!n) return null;
  return (
    <span className="badge" aria-label={`${n} unread`}>
      {n > 99 ? "99+" : n}
    </span>
  );
}

function JoinRoom({ onJoin, onClose }: { onJoin: (name: string) => Promise<unknown>; onClose: () => void }) {
  const [name, setName] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const c = checkRoomName(name);
    if (!c.ok) return setError(c.error);
    setBusy(true);
    setError(null);
    try {
      await onJoin(name.trim());
      onClose();
    } catch (err) {
      setError(toApiError(err).message);
    } finally {
      setBusy(false);
    }
  };
  const preview = roomIdPreview(name);
  return (
    <form className="join-room" onSubmit={submit} noValidate>
      <input
        autoFocus
        value={name}
        onChange={(e) => {
          setName(e.target.value);
          setError(null);
        }}
        onKeyDown={(e) => e.key === "Escape" && onClose()}
        placeholder="Main Stage, Camp B12…"
        aria-label="Room name"
        aria-invalid={error ? true : undefined}
      />
      <div className="join-room-row">
        <span className="hint">{preview ? `#${preview}` : "Stage, camp or meeting point"}</span>
        <button type="button" className="btn btn-ghost btn-sm" onClick={onClose}>
          Cancel
        </button>
        <button type="submit" className="btn btn-primary btn-sm" disabled={busy}>
          Join
        </button>
      </div>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

export function Sidebar(p: SidebarProps) {
  const [joining, setJoining] = useState(false);
  const [query, setQuery] = useState("");
  const searching = query.trim() !== "" && p.onJump !== undefined;
  const roomName = (id: string) => p.rooms.find((r) => r.id === id)?.name ?? id;
  return (
    <nav className="sidebar" aria-label="Conversations">
      <header className="sidebar-head">
        <Avatar id={p.me.id} name={p.me.name} />
        <div className="me">
          <strong>{p.me.name}</strong>
          {p.me.fingerprint ? (
            <span className="muted small me-sub">
              Fingerprint{" "}
              <FingerprintChip
                fingerprint={p.me.fingerprint.slice(0, SHORT_FINGERPRINT_LEN)}
                title="The start of your fingerprint: people who have not verified you see it beside your name."
              />
            </span>
          ) : (
            <span className="muted small">Festival Chat</span>
          )}
        </div>
        <button type="button" className="icon-btn" onClick={p.onMyCode} title="My code" aria-label="My code">
          <QrIcon />
        </button>
        <button type="button" className="icon-btn" onClick={p.onSettings} title="Settings" aria-label="Settings">
          <SettingsIcon />
        </button>
      </header>

      {p.onJump && <SearchBox query={query} onQuery={setQuery} />}
      <div className="sidebar-scroll">
        {searching && p.onJump && (
          <SearchResults
            query={query}
            onQuery={setQuery}
            onJump={p.onJump}
            personOf={p.personOf}
            roomName={roomName}
          />
        )}
        <div className="conv-lists" hidden={searching}>
        <div className="section-head">
          <span>Rooms</span>
          <button type="button" className="icon-btn icon-btn-sm" onClick={() => setJoining((j) => !j)} title="Join or create a room" aria-label="Join or create a room">
            {joining ? <CloseIcon width={16} height={16} /> : <PlusIcon width={16} height={16} />}
          </button>
        </div>
        {joining && <JoinRoom onJoin={p.onJoin} onClose={() => setJoining(false)} />}
        <ul className="conv-list">
          {p.rooms.map((r) => (
            <li key={r.id}>
              <button type="button" className={`conv${p.open === r.id ? " active" : ""}`} onClick={() => p.onOpen(r.id)} aria-current={p.open === r.id ? "page" : undefined}>
                <span className={`room-icon${r.id === FESTIVAL_ROOM ? " festival" : ""}`}>{r.id === FESTIVAL_ROOM ? "✦" : <HashIcon width={16} height={16} />}</span>
                <span className="conv-name">
                  {r.id === FESTIVAL_ROOM ? "Festival" : r.name}
                  {r.muted && <Muted />}
                </span>
                <Badge n={p.unread[r.id] ?? 0} />
              </button>
            </li>
          ))}
        </ul>

        <div className="section-head">
          <span>Groups</span>
          {p.onNewGroup && (
            <button type="button" className="icon-btn icon-btn-sm" onClick={p.onNewGroup} title="New private group" aria-label="New private group">
              <PlusIcon width={16} height={16} />
            </button>
          )}
        </div>
        <ul className="conv-list">
          {(p.groups ?? []).length === 0 && <li className="muted small empty-hint">A private group: only its members can read it.</li>}
          {(p.groups ?? []).map((g) => {
            const key = groupKey(g.id);
            return (
              <li key={key}>
                <button type="button" className={`conv${p.open === key ? " active" : ""}`} onClick={() => p.onOpen(key)} aria-current={p.open === key ? "page" : undefined}>
                  <span className="room-icon group-icon">
                    <UsersIcon width={16} height={16} />
                  </span>
                  <span className="conv-name">
                    {g.name}
                    <span className="conv-sub">{g.left ? "You left" : `${g.members.length} members`}</span>
                  </span>
                  <span className="conv-meta">
                    {p.muted?.has(key) && <Muted />}
                    <Badge n={p.unread[key] ?? 0} />
                  </span>
                </button>
              </li>
            );
          })}
        </ul>

        <div className="section-head">
          <span>Direct messages</span>
        </div>
        <ul className="conv-list">
          {p.dms.length === 0 && <li className="muted small empty-hint">Open “People nearby” to message someone.</li>}
          {p.dms.map((d) => {
            const who = p.personOf(d.peer, d.last && !d.last.mine ? d.last.sender : undefined);
            const key = dmKey(d.peer);
            return (
              <li key={key}>
                <button type="button" className={`conv${p.open === key ? " active" : ""}`} onClick={() => p.onOpen(key)} aria-current={p.open === key ? "page" : undefined}>
                  <Avatar id={d.peer} name={who?.name ?? "?"} size="sm" />
                  <span className="conv-name">
                    <PersonName author={who} peer={d.peer} compact />
                    {d.last && (
                      <span className="conv-sub">
                        {d.last.mine && (
                          <>
                            <PersonName me />:{" "}
                          </>
                        )}
                        {bodyText(d.last.body)}
                      </span>
                    )}
                  </span>
                  <span className="conv-meta">
                    {d.last && <span className="muted tiny">{messageTime(d.last.created_at)}</span>}
                    {p.muted?.has(key) && <Muted />}
                    <Badge n={p.unread[key] ?? 0} />
                  </span>
                </button>
              </li>
            );
          })}
        </ul>
        </div>
      </div>

      <button type="button" className="people-btn" onClick={p.onPeople}>
        <UsersIcon />
        <span>People nearby</span>
        <span className="pill">{p.nearby}</span>
      </button>
      <p className="sidebar-foot muted tiny">
        <LockIcon width={12} height={12} /> DMs are sealed end to end
      </p>
    </nav>
  );
}
