// The controller: calls the node through the Api, feeds replies and events to
// the chat reducer, and reports reads. Components get state and actions from
// here and never call the Api for chat themselves.

import { useCallback, useEffect, useLayoutEffect, useMemo, useReducer, useRef, useState } from "react";
import type { Api } from "../api";
import { toApiError } from "../api";
import type { GroupView, HistoryCursor, HistoryPage, MessageView, NodeEvent, PeerView, RoomView, MeetupAnswer } from "../model";
import { DM_ROOM, dmPeer, groupOf, type ConversationKey } from "../logic/conversation";
import { hasOlder } from "../logic/timeline";
import { batches, loadReadLog, record, saveReadLog, unreported, type ReadLog } from "../logic/readLog";
import { chatReducer, conversationMessages, initialChat, unreadIds, type ChatState } from "./chat";

const storage = typeof localStorage === "undefined" ? undefined : localStorage;

/** Messages per history page: a screenful or two. */
export const PAGE_SIZE = 50;
/** Peer and status lists are refreshed this often for "last seen" and counts. */
const REFRESH_MS = 10_000;
/** Pages loaded at most to bring a search result into view. */
const REVEAL_PAGES = 20;
/** Bursts of link events cause one refresh. */
const EVENT_REFRESH_DEBOUNCE_MS = 300;

/**
 * Events after which peers, status and the waiting reasons of saved messages
 * are read again. `peer_name` and `equivocation` also change how a person is
 * marked (a lookalike name, conflicting messages): the people list has it.
 */
const REACH_EVENTS: ReadonlySet<string> = new Set(["discovered", "lost", "link_up", "link_down", "peer_name", "equivocation", "power"]);

export interface ChatActions {
  open(key: ConversationKey): void;
  loadOlder(key: ConversationKey): void;
  send(key: ConversationKey, text: string): Promise<MessageView>;
  /** Post a meet-up card to a room. */
  sendMeetup(room: string, place: string, at: number): Promise<MessageView>;
  sendPhoto(room: string, picture: Uint8Array, caption: string): Promise<MessageView>;
  /** Answer a meet-up card; the card with the answer counted replaces the one shown. */
  answerMeetup(id: string, answer: MeetupAnswer): Promise<MessageView>;
  /** Send one of ours again ("not delivered yet"); its delivery as it then stands is shown. */
  retry(id: string): Promise<MessageView>;
  /** Make a private group of me and `members` (peer ids or contact codes). */
  createGroup(name: string, members: readonly string[]): Promise<GroupView>;
  inviteToGroup(group: string, members: readonly string[]): Promise<GroupView>;
  leaveGroup(group: string): Promise<GroupView>;
  joinRoom(name: string): Promise<RoomView>;
  verify(code: string): Promise<PeerView>;
  startDm(peer: string): void;
  /** Mute a conversation (or undo it): no notifications from it. */
  mute(key: ConversationKey, muted: boolean): Promise<void>;
  /** Block a person (or undo it). */
  block(peer: string, blocked: boolean): Promise<void>;
  /** Open a conversation at one of its messages (a search result). */
  reveal(key: ConversationKey, id: string): void;
  refresh(): void;
}

/** One page of a conversation: a room's history, one DM conversation, or a group's. */
function page(api: Api, key: ConversationKey, before: HistoryCursor | null): Promise<HistoryPage> {
  const peer = dmPeer(key);
  if (peer !== undefined) return api.dmHistory(peer, before, PAGE_SIZE);
  const group = groupOf(key);
  if (group !== undefined) return api.groupHistory(group, before, PAGE_SIZE);
  return api.history(key, before, PAGE_SIZE);
}

export function useChat(api: Api): { state: ChatState; actions: ChatActions; streamError: string | null } {
  const [state, dispatch] = useReducer(chatReducer, initialChat);
  // Actions run from event handlers and read the latest committed state.
  const stateRef = useRef(state);
  useLayoutEffect(() => {
    stateRef.current = state;
  });
  const pendingMark = useRef<{ key: ConversationKey; count: number } | null>(null);
  const [streamError, setStreamError] = useState<string | null>(null);

  const refresh = useCallback(() => {
    api.peers().then((peers) => dispatch({ type: "peers", peers }), () => {});
    api.status().then((status) => dispatch({ type: "status", status }), () => {});
    api.announcements().then((announcements) => dispatch({ type: "announcements", announcements }), () => {});
    api.peopleChoices().then((choices) => dispatch({ type: "choices", choices }), () => {});
    api.groups().then((groups) => dispatch({ type: "groups", groups }), () => {});
  }, [api]);

  const refreshRooms = useCallback(() => {
    api.rooms().then(
      (rooms) => {
        const s = stateRef.current;
        const count = rooms.find((r) => r.id === s.open)?.unread ?? 0;
        if (count > 0 && s.visible) pendingMark.current = { key: s.open, count };
        dispatch({ type: "rooms", rooms });
      },
      () => {},
    );
  }, [api]);

  /** One page of a conversation into its timeline, from `before` (null: the newest). */
  const fetchPage = useCallback(
    (key: ConversationKey, before: HistoryCursor | null) => {
      dispatch({ type: "page_start", key });
      page(api, key, before).then(
        (p) => dispatch({ type: "page", key, messages: p.messages, next: p.next ?? null }),
        (e) => dispatch({ type: "page_failed", key, error: toApiError(e).message }),
      );
    },
    [api],
  );

  const loadOlder = useCallback(
    (key: ConversationKey) => {
      const t = stateRef.current.timelines[key];
      if (t && (t.loading || !hasOlder(t))) return;
      fetchPage(key, t?.next ?? null);
    },
    [fetchPage],
  );

  /** The newest page of what is on screen again, for states and waiting reasons that moved. */
  const reloadLatest = useCallback(() => {
    const key = stateRef.current.open;
    if (!stateRef.current.timelines[key]?.loaded) return;
    page(api, key, null).then(
      (p) => dispatch({ type: "latest", key, messages: p.messages, next: p.next ?? null }),
      () => {},
    );
  }, [api]);

  // Start: subscribe first so nothing falls between the lists and the stream
  // (overlap is harmless: everything dedups by id).
  const started = useRef(false);
  const refreshTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(() => {
    if (started.current) return;
    started.current = true;
    const onEvent = (event: NodeEvent) => {
      dispatch({ type: "event", event });
      if (event.event === "lagged") {
        // Missed events: read everything shown again.
        refreshRooms();
        refresh();
        reloadLatest();
        return;
      }
      // A group made, joined or left: the list of groups again.
      const known = (g: string) => stateRef.current.groups.some((x) => x.id === g);
      if (
        event.event === "message" &&
        (event.body?.type === "group_members" ||
          event.body?.type === "group_added" ||
          event.body?.type === "group_left" ||
          (event.body?.type === "group" && !known(event.body.group)))
      ) {
        api.groups().then((groups) => dispatch({ type: "groups", groups }), () => {});
      }
      if (REACH_EVENTS.has(event.event) && refreshTimer.current === null) {
        refreshTimer.current = setTimeout(() => {
          refreshTimer.current = null;
          refresh();
          reloadLatest();
        }, EVENT_REFRESH_DEBOUNCE_MS);
      }
    };
    api.subscribe(onEvent).catch((e) => setStreamError(toApiError(e).message));
    refreshRooms();
    refresh();
    loadOlder(stateRef.current.open);
    // The mailbox overview lists the DM conversations.
    loadOlder(DM_ROOM);
  }, [api, refresh, refreshRooms, loadOlder, reloadLatest]);

  useEffect(() => {
    const id = setInterval(refresh, REFRESH_MS);
    return () => clearInterval(id);
  }, [refresh]);

  // A message to bring into view: page back through its conversation until
  // it is loaded (at most REVEAL_PAGES pages), then the list scrolls to it.
  const revealPages = useRef(0);
  useEffect(() => {
    const f = state.focus;
    if (!f) return;
    const t = state.timelines[f.key];
    if (!t || t.loading || t.error) return;
    if (t.messages.some((m) => m.id === f.id)) return;
    if (!hasOlder(t) || revealPages.current >= REVEAL_PAGES) {
      dispatch({ type: "focus", focus: null });
      return;
    }
    revealPages.current += 1;
    loadOlder(f.key);
  }, [state.focus, state.timelines, loadOlder]);

  // The conversation on screen raises no notification while it is seen.
  useEffect(() => {
    api.viewing(state.visible ? state.open : null).catch(() => {});
  }, [api, state.open, state.visible]);

  useEffect(() => {
    const onVisible = () => {
      const visible = document.visibilityState !== "hidden";
      if (visible) {
        const s = stateRef.current;
        const count = s.unread.counts[s.open] ?? 0;
        if (count > 0) pendingMark.current = { key: s.open, count };
      }
      dispatch({ type: "visible", visible });
    };
    document.addEventListener("visibilitychange", onVisible);
    return () => document.removeEventListener("visibilitychange", onVisible);
  }, []);

  // Report reads. Rooms: the node keeps a read mark, so report when a room
  // with unread messages is opened (once its page is in) and what arrives
  // while it stays open. DMs: their read state is the receipts, so every DM
  // of the other person shown on screen is reported once (see readLog).
  const readLog = useRef<ReadLog | null>(null);
  useEffect(() => {
    const key = state.open;
    const live = state.unread.toMark[key];
    if (live && live.length && state.visible) dispatch({ type: "marked", key });

    // DMs and groups: their read state is the receipts, sealed to each
    // message's author, in the mailbox.
    if (dmPeer(key) !== undefined || groupOf(key) !== undefined) {
      if (!state.visible || !state.timelines[key]?.loaded) return;
      const theirs = conversationMessages(state, key).filter((m) => !m.mine).map((m) => m.id);
      readLog.current ??= loadReadLog(storage);
      const fresh = unreported(readLog.current, theirs);
      if (fresh.length === 0) return;
      readLog.current = record(readLog.current, fresh);
      saveReadLog(storage, readLog.current);
      for (const ids of batches(fresh)) api.markRead(DM_ROOM, ids).catch(() => {});
      return;
    }

    const p = pendingMark.current;
    if (p && p.key === key && state.timelines[key]?.loaded) {
      pendingMark.current = null;
      // The call moves the room's read mark even without ids.
      api.markRead(key, unreadIds(state, key, p.count)).catch(() => {});
    }
    if (live && live.length && state.visible) api.markRead(key, live).catch(() => {});
  }, [api, state]);

  const actions = useMemo<ChatActions>(() => {
    const open = (key: ConversationKey) => {
      const s = stateRef.current;
      const count = s.unread.counts[key] ?? 0;
      pendingMark.current = count > 0 ? { key, count } : null;
      dispatch({ type: "open", key });
      if (!s.timelines[key]?.loaded) loadOlder(key);
    };
    return {
      open,
      loadOlder,
      async send(key, text) {
        const peer = dmPeer(key);
        const group = groupOf(key);
        try {
          const m =
            peer !== undefined ? await api.sendDm(peer, text) : group !== undefined ? await api.sendGroup(group, text) : await api.send(key, text);
          dispatch({ type: "own_message", message: m });
          return m;
        } catch (e) {
          throw toApiError(e);
        }
      },
      async sendMeetup(room, place, at) {
        try {
          const m = await api.sendMeetup(room, place, at);
          dispatch({ type: "own_message", message: m });
          return m;
        } catch (e) {
          throw toApiError(e);
        }
      },
      async sendPhoto(room, picture, caption) {
        try {
          const m = await api.sendPhoto(room, picture, caption);
          dispatch({ type: "own_message", message: m });
          return m;
        } catch (e) {
          throw toApiError(e);
        }
      },
      async answerMeetup(id, answer) {
        try {
          const m = await api.answerMeetup(id, answer);
          dispatch({ type: "event", event: { event: "meetup_changed", ...m } });
          return m;
        } catch (e) {
          throw toApiError(e);
        }
      },
      async createGroup(name, members) {
        try {
          const g = await api.createGroup(name, members);
          dispatch({ type: "group", group: g });
          return g;
        } catch (e) {
          throw toApiError(e);
        }
      },
      async inviteToGroup(group, members) {
        try {
          const g = await api.inviteToGroup(group, members);
          dispatch({ type: "group", group: g });
          reloadLatest();
          return g;
        } catch (e) {
          throw toApiError(e);
        }
      },
      async leaveGroup(group) {
        try {
          const g = await api.leaveGroup(group);
          dispatch({ type: "group", group: g });
          reloadLatest();
          return g;
        } catch (e) {
          throw toApiError(e);
        }
      },
      async retry(id) {
        try {
          const m = await api.retry(id);
          if (m.delivery) dispatch({ type: "event", event: { event: "delivery", id, delivery: m.delivery } });
          return m;
        } catch (e) {
          throw toApiError(e);
        }
      },
      async joinRoom(name) {
        try {
          const room = await api.joinRoom(name);
          dispatch({ type: "room_joined", room });
          return room;
        } catch (e) {
          throw toApiError(e);
        }
      },
      async verify(code) {
        try {
          const peer = await api.verify(code);
          dispatch({ type: "peer", peer });
          return peer;
        } catch (e) {
          throw toApiError(e);
        }
      },
      startDm(peer) {
        dispatch({ type: "start_dm", peer });
      },
      async mute(key, muted) {
        try {
          await api.mute(key, muted);
        } catch (e) {
          throw toApiError(e);
        }
        refreshRooms();
        refresh();
      },
      async block(peer, blocked) {
        try {
          await api.block(peer, blocked);
        } catch (e) {
          throw toApiError(e);
        }
        dispatch({ type: "blocked", peer, blocked });
        if (!blocked) {
          // Every timeline was dropped: the newest page of what is on
          // screen and of the mailbox again (what they wrote was kept).
          const open = stateRef.current.open;
          for (const key of open === DM_ROOM ? [open] : [open, DM_ROOM]) fetchPage(key, null);
        }
        refreshRooms();
        refresh();
      },
      reveal(key, id) {
        revealPages.current = 0;
        open(key);
        dispatch({ type: "focus", focus: { key, id } });
      },
      refresh,
    };
  }, [api, fetchPage, loadOlder, refresh, refreshRooms, reloadLatest]);

  return { state, actions, streamError };
}
