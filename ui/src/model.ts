// The shapes the node hands the UI.
//
// STOPGAP: these are to come from the Rust types through ts-rs in
// ui/src/bindings/ (the shell's folder). Until that lands this file holds the
// contract as agreed (crates/node/src/runtime/events.rs plus the app API),
// and the rest of the UI imports only from here, so switching to the
// generated types is a change to this one file.

export type PeerId = string;
export type MessageId = string;
export type RoomId = string;

export type MessageBody = { type: "text"; text: string } | { type: "direct"; to: PeerId; text: string };

/** Where one of our messages is: saved -> sent(lan|relay) -> delivered -> read. */
export type MessageState =
  | "saved"
  | "delivered"
  | "read"
  | { sent: { path: string } }
  | { type: string; path?: string };

export interface MessageView {
  id: MessageId;
  room: RoomId;
  author: PeerId;
  author_name: string | null;
  seq: number;
  created_at: number;
  received_at: number;
  body: MessageBody;
  hops: number;
  mine: boolean;
  state?: MessageState | null;
  waiting?: string | null;
}

export interface HistoryPage {
  messages: MessageView[];
  next?: unknown;
}

export interface RoomView {
  id: RoomId;
  name: string;
  unread: number;
  last_activity: number | null;
}

export type PowerState = "Mains" | { Battery: { percent: number } };

export interface Limits {
  max_peers: number;
  sync_interval_ms: number;
  relay_for_others: boolean;
  background_sync: boolean;
  keepalive_ms: number;
}

export interface Status {
  peer: PeerId;
  fingerprint: string;
  festival: string;
  p2p?: boolean;
  links: number;
  discovered: number;
  relay?: string | null;
  power: PowerState;
  limits: Limits;
  peer_limit: number;
}

export interface PeerView {
  peer: PeerId;
  fingerprint: string;
  name: string | null;
  verified: boolean;
  linked: boolean;
  discovered: boolean;
  path?: string | null;
  last_seen: number | null;
}

export interface Settings {
  name: string;
  festival: string;
  relay_url: string | null;
  peer_limit: number | null;
  interfaces: string[];
}

export interface AppState {
  onboarded: boolean;
  status?: Status | null;
  settings: Settings;
}

export interface MyCode {
  code: string;
  fingerprint: string;
  qr_svg: string;
}

export type NodeEvent =
  | ({ event: "message" } & MessageView)
  | { event: "sent"; id: MessageId; path: string }
  | { event: "receipt"; from: PeerId; status: "Delivered" | "Read"; ids: MessageId[] }
  | { event: "peer_name"; peer: PeerId; name: string }
  | { event: "discovered"; peer: PeerId }
  | { event: "lost"; peer: PeerId }
  | { event: "link_up"; peer: PeerId; path: string }
  | { event: "link_down"; peer: PeerId; reason: string }
  | { event: "rejected"; peer: PeerId | null; code: string }
  | { event: "power"; state: PowerState; limits: Limits };
