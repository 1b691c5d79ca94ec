//! The node runtime: one actor owns the engine (core + store), the UDP socket
//! and WebRTC endpoint, the signaling listener and the mDNS registration;
//! callers hold a cheap, cloneable [`NodeHandle`].
//!
//! - [`config`]: `NodeConfig` and start-up errors.
//! - [`events`]: what the node tells its users (`NodeEvent`, `MessageView`,
//!   `PeerView`, `Status`).
//! - [`handle`]: `NodeHandle`, the one API the CLI, the app and tests call.
//! - [`actor`]: the event loop, which turns the outputs of the mesh
//!   (`festival_core::mesh`: who to dial, backoff, peer limit) and of the
//!   sync core into IO; [`signal_io`]: the TCP side of signaling, in
//!   short-lived tasks; [`status`]: the `/peers` and `/status` views.

mod actor;
pub mod config;
pub mod events;
mod handle;
mod paths;
mod relay_route;
pub mod sendq;
mod signal_io;
mod status;

pub use config::{NodeConfig, PowerConfig, StartError};
pub use events::{
    AnnouncementView, Delivery, DeliveryState, GroupMember, GroupView, HistoryPage, LinkPath, MeetupPerson, MeetupView,
    MessageBody, MessageView, NodeEvent, NotDelivered, PathStats, PeerPath, PeerView, PersonChoiceView, PhotoView,
    PowerMode, RelayState, RoomView, Saving, SearchResults, Status, Waiting, DELIVERY_TIMEOUT_MS,
};
pub use handle::{
    NodeError, NodeHandle, GROUP_INDEX_BUDGET, MAX_ANNOUNCEMENTS, MAX_HISTORY_PAGE, RETRY_MIN_GAP_MS,
    SEARCH_INDEX_BUDGET,
};
