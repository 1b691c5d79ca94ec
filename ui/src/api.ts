// Every call into the node goes through here: Tauri commands and the event
// Channel. The rest of the UI gets an `Api` from context (see ApiContext), so
// tests hand it a stub and never touch Tauri.

import { Channel, invoke, type InvokeArgs } from "@tauri-apps/api/core";
import type {
  AnnouncementView,
  AppState,
  ErrorCode,
  GroupView,
  HistoryCursor,
  MeetupAnswer,
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
  /** Post "meet at `place` at `at`" (ms since the epoch) to a room: a card until half an hour after `at`. */
  sendMeetup(room: string, place: string, at: number): Promise<MessageView>;
  /**
   * Send a photo to a room: the picked file's bytes (JPEG, PNG, WebP or GIF), made to fit by the
   * node (at most 1600 px, a JPEG of at most 256 KiB, no EXIF); `caption` may be "".
   */
  sendPhoto(room: string, picture: Uint8Array, caption: string): Promise<MessageView>;
  /** A photo's JPEG bytes (`photo_incomplete` while some of its pieces are on their way). */
  photo(id: string): Promise<ArrayBuffer>;
  /** Answer a meet-up ("coming" / "cant"); resolves to its card with the answer counted. */
  answerMeetup(meetup: string, answer: MeetupAnswer): Promise<MessageView>;
  /** Send one of my messages again ("not delivered yet"); resolves to it with its delivery as it stands. */
  retry(id: string): Promise<MessageView>;
  /** Make a private group of me and `members` (peer ids or contact codes). */
  createGroup(name: string, members: readonly string[]): Promise<GroupView>;
  /** The private groups I am (or was) in, the latest active first. */
  groups(): Promise<GroupView[]>;
  sendGroup(group: string, text: string): Promise<MessageView>;
  inviteToGroup(group: string, members: readonly string[]): Promise<GroupView>;
  leaveGroup(group: string): Promise<GroupView>;
  /** A group's history, paged like history. */
  groupHistory(group: string, before: HistoryCursor | null, limit: number): Promise<HistoryPage>;
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

/**
 * What the UI branches on: the node's `ErrorCode`, or "error" for what did
 * not come from the node (Tauri's own refusals, a dropped connection).
 */
export type ApiErrorCode = ErrorCode | "error";

// Every code, once: a Record over the generated type, so the compiler
// fails when the node gains a code this list lacks (or loses one it has).
const ERROR_CODES: Record<ErrorCode, true> = {
  not_a_photo: true,
  photo_too_large: true,
  no_such_photo: true,
  photo_incomplete: true,
  photo_damaged: true,
  not_onboarded: true,
  already_onboarded: true,
  invalid_name: true,
  invalid_room: true,
  not_joined: true,
  empty_message: true,
  message_too_long: true,
  invalid_code: true,
  own_code: true,
  invalid_peer: true,
  invalid_festival: true,
  invalid_relay_url: true,
  invalid_relay_id: true,
  invalid_organiser: true,
  invalid_peer_limit: true,
  invalid_interface: true,
  invalid_storage: true,
  network: true,
  storage: true,
  too_many_choices: true,
  invalid_search: true,
  invalid_place: true,
  invalid_meetup_time: true,
  meetup_over: true,
  no_such_meetup: true,
  not_your_message: true,
  invalid_group_members: true,
  invalid_group_name: true,
  not_in_group: true,
  retry_too_soon: true,
  no_one_in_reach: true,
  node_stopped: true,
  internal: true,
};

/** A code from the node as the UI knows it; anything else is "error". */
export function asErrorCode(code: unknown): ApiErrorCode {
  return typeof code === "string" && Object.hasOwn(ERROR_CODES, code) ? (code as ErrorCode) : "error";
}

/** An error as the node reports it: `{ code, message }`. */
export class ApiError extends Error {
  readonly code: ApiErrorCode;
  constructor(code: ApiErrorCode, message: string) {
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
    if (typeof o.message === "string") return new ApiError(asErrorCode(o.code), o.message);
  }
  if (typeof e === "string") return new ApiError("error", e);
  return new ApiError("error", "Something went wrong talking to the node.");
}

/**
 * `send_photo`'s raw body (src-tauri/commands.rs reads it): a 4-byte
 * little-endian length, that many bytes of JSON `{ room, caption }`, then
 * the picture. Raw, since a picture of megabytes as a JSON array of numbers
 * would be ten times its size.
 */
export function photoBody(room: string, caption: string, picture: Uint8Array): Uint8Array {
  const header = new TextEncoder().encode(JSON.stringify({ room, caption }));
  const body = new Uint8Array(4 + header.length + picture.length);
  new DataView(body.buffer).setUint32(0, header.length, true);
  body.set(header, 4);
  body.set(picture, 4 + header.length);
  return body;
}

async function call<T>(cmd: string, args?: InvokeArgs): Promise<T> {
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
  sendMeetup: (room, place, at) => call("send_meetup", { room, place, at }),
  answerMeetup: (meetup, answer) => call("answer_meetup", { meetup, answer }),
  sendPhoto: (room, picture, caption) => call("send_photo", photoBody(room, caption, picture)),
  photo: (id) => call("photo", { id }),
  retry: (id) => call("retry", { id }),
  createGroup: (name, members) => call("create_group", { name, members }),
  groups: () => call("groups"),
  sendGroup: (group, text) => call("send_group", { group, text }),
  inviteToGroup: (group, members) => call("invite_to_group", { group, members }),
  leaveGroup: (group) => call("leave_group", { group }),
  groupHistory: (group, before, limit) => call("group_history", { group, before, limit }),
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
