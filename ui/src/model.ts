// The node's shapes: generated from the Rust types by ts-rs into
// ui/src/bindings/ (the shell's folder; regenerate with scripts/bindings).
// The rest of the UI imports them from here.

export type {
  AnnouncementView,
  AppError,
  AppState,
  Author,
  DeliveryState,
  ErrorCode,
  HistoryCursor,
  HistoryPage,
  Limits,
  LinkPath,
  MessageBody,
  MessageId,
  MessageView,
  MyCode,
  PathStats,
  NodeEvent,
  PeerId,
  PeerPath,
  PeerView,
  PowerMode,
  ReceiptStatus,
  RelayState,
  RoomId,
  RoomView,
  Saving,
  Settings,
  Status,
  Waiting,
} from "./bindings";
