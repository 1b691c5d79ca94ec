// A test double for the node: every call resolves with something empty
// unless a test overrides it. Events are pushed with `emit`.
import { vi } from "vitest";
import type { Api } from "../api";
import type { Author, Delivery, GroupView, MessageBody, MessageView, NodeEvent, PeerView, RoomView, Settings, Status } from "../model";
import { ApiError } from "../api";

export const ME = "a".repeat(64);
export const ANA = "b".repeat(64);

export const status: Status = {
  peer: ME,
  fingerprint: "AAAA-BBBB-CCCC-DDDD",
  name: "Mia",
  festival: "testfest",
  p2p: true,
  links: 1,
  discovered: 2,
  relay: { state: "not_configured" },
  power: { battery: null, low: false, limits: { max_peers: 8, sync_interval_ms: 5000, relay_for_others: true, background_sync: true, keepalive_ms: 2000 }, saving: [] },
  peer_limit: 8,
  signaling_port: 0,
  udp_port: 0,
  rejected: {},
  blocked_dropped: 0,
  paths: {
    sent_lan: 0,
    sent_relay: 0,
    bytes_lan: 0,
    bytes_relay: 0,
    off_relay_share: null,
    p2p_attempts: 0,
    p2p_opened: 0,
    p2p_success_rate: null,
    upgrade_attempts: 0,
    upgrades: 0,
    lan_rtt_ms: null,
    relay_rtt_ms: null,
    relay_slow: false,
    reflexive_addr: null,
  },
};

export const settings: Settings = {
  name: "Mia",
  festival: "testfest",
  relay_url: null,
  relay_id: null,
  organiser: null,
  peer_limit: null,
  interfaces: [],
  storage_mb: null,
  message_lifetime_hours: null,
};

/** Ana as the node describes her: unverified, so shown with her short fingerprint. */
export const ANA_AUTHOR: Author = { name: "Ana", short_fingerprint: "3F2A", verified: false, name_clash: false, equivocated: false };
/** How the node describes us as a sender. */
export const ME_AUTHOR: Author = { name: null, short_fingerprint: "AAAA", verified: true, name_clash: false, equivocated: false };

export function peer(over: Partial<PeerView> = {}): PeerView {
  return {
    peer: ANA,
    fingerprint: "3F2A-91C4-7B0E-55D1",
    name: "Ana",
    verified: false,
    name_clash: false,
    equivocated: false,
    path: "lan",
    linked: true,
    discovered: true,
    last_seen: Date.now(),
    muted: false,
    blocked: false,
    ...over,
  };
}

export function room(id: string, over: Partial<RoomView> = {}): RoomView {
  return { id, name: id, unread: 0, last_activity: null, joined_at: 0, muted: false, ...over };
}

let n = 0;
export function message(over: Partial<MessageView> = {}): MessageView {
  n += 1;
  return {
    id: `m${n}`.padEnd(64, "0"),
    room: "festival",
    author: ANA,
    sender: over.mine ? ME_AUTHOR : ANA_AUTHOR,
    seq: n,
    created_at: Date.now() - 60_000 + n,
    received_at: Date.now(),
    body: { type: "text", text: `message ${n}` },
    hops: 1,
    mine: false,
    delivery: null,
    ...over,
  };
}

export const GROUP = "ab".repeat(16);

/** A private group as the node reports it; `members`: peer ids (ME is "You"). */
export function group(over: Partial<Omit<GroupView, "members">> & { members?: readonly string[] } = {}): GroupView {
  const ids = over.members ?? [ME, ANA];
  return {
    id: GROUP,
    name: "Camp crew",
    left: false,
    muted: false,
    last_activity: Date.now(),
    ...over,
    members: ids.map((peer) => ({ peer, me: peer === ME, who: peer === ME ? ME_AUTHOR : ANA_AUTHOR })),
  };
}

/** A 1x1 JPEG's data URL: a photo's thumbnail. */
export const THUMB = "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AKp//2Q==";

/** A photo's body as the node reports it (complete unless told). */
export function photoBody(over: Partial<Omit<MessageBody & { type: "photo" }, "type">> = {}): MessageBody {
  return { type: "photo", caption: "", width: 1600, height: 1200, bytes: 180_000, thumb: THUMB, complete: true, ...over };
}

/** One of our messages' delivery as the node reports it (`as_of`: now, unless given). */
export function dl(over: Partial<Delivery> = {}): Delivery {
  return {
    state: "saved",
    path: null,
    at_relay: false,
    delivered_to: 0,
    read_by: 0,
    waiting: null,
    not_delivered: null,
    overdue_at: null,
    as_of: Date.now(),
    ...over,
  };
}

export function stubApi(over: Partial<Api> = {}): Api & { emit: (e: NodeEvent) => void } {
  let listener: (e: NodeEvent) => void = () => {};
  const api: Api = {
    appState: vi.fn(async () => ({ onboarded: true, status, settings, error: null })),
    onboard: vi.fn(async () => status),
    myCode: vi.fn(async () => ({ peer: ME, name: "Mia", code: `festival:${ME}`, fingerprint: status.fingerprint, qr_svg: '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><path d="M0 0h1v1H0z"/></svg>' })),
    rooms: vi.fn(async () => [room("festival")]),
    joinRoom: vi.fn(async (name: string) => room(name.toLowerCase(), { name })),
    history: vi.fn(async () => ({ messages: [], next: null })),
    dmHistory: vi.fn(async () => ({ messages: [], next: null })),
    send: vi.fn(async (room: string, text: string) => message({ room, author: ME, mine: true, body: { type: "text", text }, delivery: dl() })),
    sendDm: vi.fn(async (to: string, text: string) => message({ room: "dm", author: ME, mine: true, body: { type: "direct", to, text }, delivery: dl() })),
    createGroup: vi.fn(async (name: string, members: readonly string[]) => group({ name, members: [ME, ...members] })),
    groups: vi.fn(async () => []),
    sendGroup: vi.fn(async (g: string, text: string) =>
      message({ room: "dm", author: ME, mine: true, body: { type: "group", group: g, name: "Camp crew", text }, delivery: dl() }),
    ),
    inviteToGroup: vi.fn(async (g: string, members: readonly string[]) => group({ id: g, members: [ME, ANA, ...members] })),
    leaveGroup: vi.fn(async (g: string) => group({ id: g, left: true })),
    groupHistory: vi.fn(async () => ({ messages: [], next: null })),
    retry: vi.fn(async () => {
      throw new ApiError("not_your_message", "that is not one of your messages stored here");
    }),
    sendMeetup: vi.fn(async (room: string, place: string, at: number) =>
      message({ room, author: ME, mine: true, body: { type: "meetup", place, at, until: at + 1_800_000, coming: 0, cant: 0, mine: null, people: [] }, delivery: dl() }),
    ),
    sendPhoto: vi.fn(async (room: string, picture: Uint8Array, caption: string) =>
      message({ room, author: ME, mine: true, body: photoBody({ caption, bytes: picture.length }), delivery: dl() }),
    ),
    photo: vi.fn(async () => new Uint8Array([0xff, 0xd8, 0xff, 0xe0]).buffer),
    answerMeetup: vi.fn(async () => {
      throw new ApiError("no_such_meetup", "no meet-up with that id is stored here");
    }),
    markRead: vi.fn(async () => {}),
    peers: vi.fn(async () => []),
    mute: vi.fn(async () => {}),
    block: vi.fn(async () => {}),
    peopleChoices: vi.fn(async () => []),
    viewing: vi.fn(async () => {}),
    search: vi.fn(async () => ({ messages: [], pending: 0 })),
    announcements: vi.fn(async () => []),
    verify: vi.fn(async () => {
      throw { code: "bad_code", message: "not a Festival Chat code" };
    }),
    status: vi.fn(async () => status),
    settings: vi.fn(async () => settings),
    saveSettings: vi.fn(async (s) => s),
    subscribe: vi.fn(async (onEvent: (e: NodeEvent) => void) => {
      listener = onEvent;
    }),
    ...over,
  };
  return { ...api, emit: (e) => listener(e) };
}
