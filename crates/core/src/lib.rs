//! festival-core: the Festival Chat protocol, sans-IO.
//!
//! No sockets, no tokio, no clock and no randomness of its own: time comes in
//! with every input and randomness from a seed in the config. That is what lets
//! `festival-sim` run hundreds of nodes faster than real time, and what makes
//! every behaviour reproducible from a seed.
//!
//! # Layout
//! - [`ids`]: `PeerId`, `MessageId`, `RoomId`, `LinkId` newtypes.
//! - [`identity`]: the Ed25519 identity; domain-separated signing and verifying.
//! - [`envelope`]: the signed, versioned envelope and its strict codec.
//! - [`body`]: typed bodies per kind; sealing and opening DMs and their receipts.
//! - [`photo`]: photos as a header and signed chunks; putting them together.
//! - [`name`]: the rules a display name keeps, and lookalike skeletons.
//! - [`receipt`]: which receipts may mark which messages.
//! - [`frame`]: link frames (hello, summaries, wants, batches, push/announce).
//! - [`sync`]: the node state machine, `Node::handle(input, now) -> outputs`.
//! - [`mesh`]: who links to whom: dialing, peer limits, knocks, moves, bans.
//! - [`policy`]: power state to limits; the circuit breaker.

pub mod body;
pub mod envelope;
pub mod frame;
pub mod group;
pub mod identity;
pub mod ids;
pub mod mesh;
pub mod name;
pub mod photo;
pub mod policy;
pub mod receipt;
pub mod sync;

pub use body::{Body, BodyError, ReceiptStatus};
pub use envelope::{Draft, EnvelopeError, Kind, SignedEnvelope};
pub use frame::{Frame, FrameError};
pub use identity::Identity;
pub use ids::{IdError, LinkId, MessageId, PeerId, RoomId};
