import { useEffect, useState } from "react";
import { toApiError } from "../api";
import { useApi } from "../ApiContext";
import type { Author, MessageView } from "../model";
import { conversationOf, dmPeer, FESTIVAL_ROOM, type ConversationKey } from "../logic/conversation";
import { messageTime } from "../logic/format";
import { PersonName } from "./PersonName";
import { highlightWords } from "../logic/search";
import { bodyText } from "../logic/meetup";

/** Wait this long after the last key before asking the node. */
const DEBOUNCE_MS = 250;
/** Results asked for. */
const LIMIT = 50;

export interface SearchProps {
  /** The search box's text; owned by the sidebar, which shows results instead of its lists while it is set. */
  query: string;
  onQuery: (q: string) => void;
  /** Open a result's conversation at the message. */
  onJump: (key: ConversationKey, id: string) => void;
  personOf: (peer: string, fallback?: Author) => Author | undefined;
  roomName: (id: string) => string;
}

export function SearchBox({ query, onQuery }: Pick<SearchProps, "query" | "onQuery">) {
  return (
    <div className="search-box">
      <input
        type="search"
        value={query}
        placeholder="Search messages"
        aria-label="Search messages"
        maxLength={200}
        onChange={(e) => onQuery(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Escape" && query) {
            e.stopPropagation();
            onQuery("");
          }
        }}
      />
    </div>
  );
}

/** What the node found for the query, newest first; a click opens the message in its conversation. */
export function SearchResults({ query, onJump, personOf, roomName }: SearchProps) {
  const api = useApi();
  const [found, setFound] = useState<{ q: string; messages: readonly MessageView[]; pending: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const q = query.trim();

  useEffect(() => {
    if (!q) return;
    let live = true;
    const t = setTimeout(() => {
      api.search(q, LIMIT).then(
        (r) => {
          if (!live) return;
          setError(null);
          setFound({ q, messages: r.messages, pending: r.pending });
        },
        (e) => live && setError(toApiError(e).message),
      );
    }, DEBOUNCE_MS);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [api, q]);

  const words = q.split(/\s+/).filter(Boolean);
  const current = found && found.q === q ? found : null;
  return (
    <section className="search-results" aria-label="Search results" aria-busy={!current && !error}>
      {error && (
        <p className="form-error small" role="alert">
          {error}
        </p>
      )}
      {current && (
        <p className="muted small" role="status">
          {current.messages.length === 0 ? "Nothing found." : current.messages.length === 1 ? "1 message" : `${current.messages.length} messages`}
          {current.pending > 0 && ` · ${current.pending} more still being indexed`}
        </p>
      )}
      <ul className="conv-list">
        {current?.messages.map((m) => {
          const key = conversationOf(m);
          const peer = dmPeer(key);
          const room = key === FESTIVAL_ROOM ? "Festival" : `#${roomName(key)}`;
          return (
            <li key={m.id}>
              <button type="button" className="conv search-hit" onClick={() => onJump(key, m.id)}>
                <span className="conv-name">
                  <span className="search-where">
                    {peer !== undefined ? (
                      // A DM: the person it is with, and "You" for what I wrote.
                      <>
                        <PersonName author={personOf(peer)} peer={peer} compact />
                        {m.mine && (
                          <>
                            {" · "}
                            <PersonName me />
                          </>
                        )}
                      </>
                    ) : (
                      <>
                        {room}
                        {" · "}
                        {m.mine ? <PersonName me /> : <PersonName author={personOf(m.author, m.sender)} peer={m.author} compact />}
                      </>
                    )}
                  </span>
                  <span className="conv-sub">
                    {highlightWords(bodyText(m.body), words).map((part, i) => (part.hit ? <mark key={i}>{part.text}</mark> : <span key={i}>{part.text}</span>))}
                  </span>
                </span>
                <span className="conv-meta">
                  <span className="muted tiny">{messageTime(m.created_at)}</span>
                </span>
              </button>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
