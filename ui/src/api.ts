// Every call into the node goes through here: Tauri commands and the event
// Channel. The rest of the UI gets an `Api` from context (see ApiContext), so
// tests hand it a stub and never touch Tauri.

import { Channel, invoke } from "@tauri-apps/api/core";
import type {
  AnnouncementView,
  AppState,
  HistoryCursor,
  HistoryPage,
  MessageView,
  MyCode,
  NodeEvent,
  PeerView,
  PersonChoiceView,
  RoomView,
  SearchResults,
  Settings,
  Status,
} from "./model";

export interface Api {
  appState(): Promise<AppState>;
  onboard(name: string): Promise<Status>;
  myCode(): Promise<MyCode>;
  rooms(): Promise<RoomView[]>;
  joinRoom(name: string): Promise<RoomView>;
  /** A room's history, newest page first; pass a page's `next` for older ones. */
  history(room: string, before: HistoryCursor | null, limit: number): Promise<HistoryPage>;
  /** One DM conversation (`peer`: PeerId or contact code), paged like history. */
  dmHistory(peer: string, before: HistoryCursor | null, limit: number): Promise<HistoryPage>;
  send(room: string, text: string): Promise<MessageView>;
  sendDm(to: string, text: string): Promise<MessageView>;
  markRead(room: string, ids: readonly string[]): Promise<void>;
  peers(): Promise<PeerView[]>;
  /** Mute a conversation (a room id, or "dm:<peer>": the person) or undo it: no notifications from it. */
  mute(conversation: string, muted: boolean): Promise<void>;
  /** Block a person or undo it: their messages hidden, their DMs not kept, no receipts to them. */
  block(peer: string, blocked: boolean): Promise<void>;
  /** Everyone muted or blocked, the latest first: the list to undo it. */
  peopleChoices(): Promise<PersonChoiceView[]>;
  /** Messages I can read holding every word of `query` (the last as a prefix), newest first. */
  search(query: string, limit: number): Promise<SearchResults>;
  /** The conversation on screen: it raises no notification while the window has the focus. */
  viewing(conversation: string | null): Promise<void>;
  /** The organiser's announcements still running, newest first. */
  announcements(): Promise<AnnouncementView[]>;
  verify(code: string): Promise<PeerView>;
  status(): Promise<Status>;
  settings(): Promise<Settings>;
  saveSettings(settings: Settings): Promise<Settings>;
  /** Start the event stream; resolves once the node listens. */
  subscribe(onEvent: (e: NodeEvent) => void): Promise<void>;
}

/** An error as the node reports it: `{ code, message }`. */
export class ApiError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "ApiError";
    this.code = code;
  }
}

/** Whatever a command rejected with, as an ApiError. */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (typeof e === "object" && e !== null) {
    const o = e as { code?: unknown; message?: unknown };
    if (typeof o.message === "string") return new ApiError(typeof o.code === "string" ? o.code : "error", o.message);
  }
  if (typeof e === "string") return new ApiError("error", e);
  return new ApiError("error", "Something went wrong talking to the node.");
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    throw toApiError(e);
  }
}

export const tauriApi: Api = {
  appState: () => call("app_state"),
  onboard: (name) => call("onboard", { name }),
  myCode: () => call("my_code"),
  rooms: () => call("rooms"),
  joinRoom: (name) => call("join_room", { name }),
  history: (room, before, limit) => call("history", { room, before, limit }),
  dmHistory: (peer, before, limit) => call("dm_history", { peer, before, limit }),
  send: (room, text) => call("send", { room, text }),
  sendDm: (to, text) => call("send_dm", { to, text }),
  markRead: (room, ids) => call("mark_read", { room, ids }),
  peers: () => call("peers"),
  mute: (conversation, muted) => call("mute", { conversation, muted }),
  block: (peer, blocked) => call("block", { peer, blocked }),
  peopleChoices: () => call("people_choices"),
  viewing: (conversation) => call("viewing", { conversation }),
  search: (query, limit) => call("search", { query, limit }),
  announcements: () => call("announcements"),
  verify: (code) => call("verify", { code }),
  status: () => call("status"),
  settings: () => call("settings"),
  saveSettings: (settings) => call("save_settings", { settings }),
  subscribe: async (onEvent) => {
    const channel = new Channel<NodeEvent>();
    channel.onmessage = onEvent;
    await call("subscribe", { onEvent: channel });
  },
};
