import { Fragment, useEffect, useLayoutEffect, useRef, useState, type ReactNode } from "react";
import type { Author, MeetupAnswer, MessageView } from "../model";
import { cardUp, nextCardEnd } from "../logic/meetup";
import { nextPhotoStall } from "../logic/photo";
import type { Delivery } from "../logic/delivery";
import { dayLabel, sameDay, toMs } from "../logic/format";
import { MessageItem } from "./MessageItem";

/** Messages by one author closer than this share one header. */
const GROUP_GAP_MS = 5 * 60_000;
/** Start loading older messages this close to the top. */
const LOAD_MARGIN_PX = 160;
/** Counts as "at the bottom" for following new messages. */
const STICK_PX = 80;

export interface MessageListProps {
  messages: readonly MessageView[];
  loading: boolean;
  hasOlder: boolean;
  error?: string | undefined;
  startLabel: ReactNode;
  /** Who wrote a message, as its name is shown. */
  authorOf: (m: MessageView) => Author | undefined;
  deliveryOf: (m: MessageView) => Delivery | null;
  direct: boolean;
  onLoadOlder: () => void;
  onAuthor?: ((peer: string) => void) | undefined;
  /** A message to scroll to and mark (a search result), once it is in the list. */
  focusId?: string | undefined;
  /** Answer a meet-up card. */
  onAnswer?: ((id: string, answer: MeetupAnswer) => Promise<unknown>) | undefined;
  /** Send one of ours again ("not delivered yet"). */
  onRetry?: ((id: string) => Promise<unknown>) | undefined;
  now?: () => number;
}

export function MessageList(p: MessageListProps) {
  const ref = useRef<HTMLDivElement>(null);
  // Meet-up cards go at their end: re-draw then (and every minute while
  // one is up, for its "in 10 min").
  const now = p.now ?? Date.now;
  const [, setTick] = useState(0);
  const t = now();
  const end = nextCardEnd(p.messages, t);
  // And when a photo's pieces stop coming: it says so then.
  const stall = nextPhotoStall(p.messages, t);
  const wake = end === null ? stall : stall === null ? end : Math.min(end, stall);
  useEffect(() => {
    if (wake === null) return;
    const id = setTimeout(() => setTick((n) => n + 1), Math.min(60_000, Math.max(0, wake - now()) + 50));
    return () => clearTimeout(id);
  });
  const messages = end === null && !p.messages.some((m) => m.body.type === "meetup") ? p.messages : p.messages.filter((m) => cardUp(m, t));
  const prev = useRef<{ first?: string; last?: string; height: number; top: number; atBottom: boolean }>({ height: 0, top: 0, atBottom: true });

  const first = messages[0]?.id;
  const last = messages[messages.length - 1];

  // Keep the view steady when older messages are put on top, and follow the
  // conversation when something new arrives while at the bottom (or is ours).
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const before = prev.current;
    if (before.first === undefined || before.last === undefined) {
      el.scrollTop = el.scrollHeight;
    } else if (first !== before.first && last?.id === before.last) {
      el.scrollTop = el.scrollHeight - before.height + before.top;
    } else if (last && last.id !== before.last && (before.atBottom || last.mine)) {
      el.scrollTop = el.scrollHeight;
    }
    prev.current = { first, last: last?.id, height: el.scrollHeight, top: el.scrollTop, atBottom: el.scrollHeight - el.scrollTop - el.clientHeight < STICK_PX };
  }, [first, last]);

  // The list shrinks when the composer grows (long text, an error line):
  // stay at the bottom if we were there.
  useEffect(() => {
    const el = ref.current;
    if (!el || typeof ResizeObserver === "undefined") return;
    const ro = new ResizeObserver(() => {
      if (prev.current.atBottom) el.scrollTop = el.scrollHeight;
    });
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  // A search result: scrolled to the middle, marked, and given the focus
  // (keyboard and screen reader users land on it).
  const { focusId } = p;
  const shown = focusId !== undefined && messages.some((m) => m.id === focusId);
  useEffect(() => {
    if (!shown || !ref.current) return;
    const li = ref.current.querySelector<HTMLLIElement>(`li[data-id="${CSS.escape(focusId)}"]`);
    if (!li) return;
    li.scrollIntoView?.({ block: "center" });
    li.classList.add("found");
    li.tabIndex = -1;
    li.focus({ preventScroll: true });
    prev.current = { ...prev.current, atBottom: false };
  }, [focusId, shown]);

  // A short first page may not fill the screen: then there is no scroll to
  // trigger the next one.
  const { hasOlder, loading, onLoadOlder, error } = p;
  useEffect(() => {
    const el = ref.current;
    if (el && hasOlder && !loading && !error && el.scrollHeight <= el.clientHeight + LOAD_MARGIN_PX) onLoadOlder();
  }, [hasOlder, loading, onLoadOlder, error, messages.length]);

  const onScroll = () => {
    const el = ref.current;
    if (!el) return;
    prev.current = { ...prev.current, height: el.scrollHeight, top: el.scrollTop, atBottom: el.scrollHeight - el.scrollTop - el.clientHeight < STICK_PX };
    if (el.scrollTop < LOAD_MARGIN_PX && hasOlder && !loading && !error) onLoadOlder();
  };

  // The keyboard: the list is one Tab stop; the arrows move between its
  // messages (Home, End: the first, the last), Enter on someone's message in
  // a room opens a DM with them, Escape goes back to the list.
  const onKeyDown = (e: React.KeyboardEvent<HTMLDivElement>) => {
    const el = ref.current;
    if (!el) return;
    const items = [...el.querySelectorAll<HTMLLIElement>("li.msg")];
    if (items.length === 0) return;
    const active = document.activeElement;
    const at = items.findIndex((li) => li === active);
    const go = (i: number) => {
      const li = items[Math.max(0, Math.min(items.length - 1, i))];
      if (!li) return;
      e.preventDefault();
      li.tabIndex = -1;
      li.focus();
      li.scrollIntoView?.({ block: "nearest" });
    };
    if (e.target !== el && at < 0) return; // a control inside a message keeps its keys
    switch (e.key) {
      case "ArrowUp":
        return go(at < 0 ? items.length - 1 : at - 1);
      case "ArrowDown":
        return at < 0 ? go(items.length - 1) : go(at + 1);
      case "Home":
        return go(0);
      case "End":
        return go(items.length - 1);
      case "Escape":
        if (at >= 0) {
          e.preventDefault();
          el.focus();
        }
        return;
      case "Enter": {
        const author = at >= 0 ? items[at]?.dataset["author"] : undefined;
        if (author && p.onAuthor) {
          e.preventDefault();
          p.onAuthor(author);
        }
        return;
      }
    }
  };

  return (
    <div
      className="messages"
      ref={ref}
      onScroll={onScroll}
      onKeyDown={onKeyDown}
      role="log"
      aria-live="polite"
      aria-busy={loading}
      aria-label={p.onAuthor ? "Messages: arrows move between them, Enter on one messages its author" : "Messages: arrows move between them"}
      tabIndex={0}
    >
      <div className="history-edge">
        {loading && <span className="spinner" aria-label="Loading older messages" />}
        {!loading && error && (
          <span className="form-error">
            Could not load older messages: {error}{" "}
            <button type="button" className="link-btn" onClick={onLoadOlder}>
              Try again
            </button>
          </span>
        )}
        {!loading && !error && !hasOlder && <span className="muted small">{p.startLabel}</span>}
      </div>
      <ol className="msg-list">
        {messages.map((m, i) => {
          const before = i > 0 ? messages[i - 1] : undefined;
          const newDay = !before || !sameDay(before.created_at, m.created_at);
          const head = newDay || !before || before.author !== m.author || toMs(m.created_at) - toMs(before.created_at) > GROUP_GAP_MS;
          return (
            <Fragment key={m.id}>
              {newDay && (
                <li className="day-sep" role="separator">
                  <span>{dayLabel(m.created_at)}</span>
                </li>
              )}
              <MessageItem m={m} author={m.mine ? undefined : p.authorOf(m)} head={head} delivery={m.mine ? p.deliveryOf(m) : null} direct={p.direct} onAuthor={p.onAuthor} onAnswer={p.onAnswer} onRetry={p.onRetry} now={t} />
            </Fragment>
          );
        })}
      </ol>
    </div>
  );
}
