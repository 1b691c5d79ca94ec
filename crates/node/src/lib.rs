//! festival-node: the runtime that drives festival-core against the store,
//! and the headless `festival-node` binary.
//!
//! # Layout
//! - [`paths`]: where a node keeps its data (platform data dir, `--data-dir`).
//! - [`clock`]: wall-clock milliseconds, the only clock the core ever sees.
//! - [`engine`]: `Engine`, which owns a core `Node` and the `Store` and
//!   carries out the core's outputs that touch the disk (persist, load, mark
//!   sent, names from profiles, receipts); what must leave the process
//!   (frames, events) comes back as [`engine::Effect`]s for the caller.
//! - [`names`]: names people can trust: verified marks, short
//!   fingerprints, lookalike and equivocation flags.
//! - [`local`]: opening a data dir, first-run identity, and the offline
//!   commands (`init`, `whoami`, `send`, `history`).
//! - [`relay`]: the relay link: wire protocol shared with festival-relay,
//!   the reconnecting WebSocket client, and a STUN query.
//! - [`retention`]: the background task that expires messages and keeps the
//!   store within its budget.

pub mod discovery;
pub mod local;
pub mod names;
pub use festival_photo as photo;
pub mod netns;
pub mod power;
pub mod relay;
pub mod runtime;
pub mod view;
pub mod webrtc;

// The engine, clocks, retention and wire formats live in festival-engine
// (shared with the relay, which needs no network stack of a node's).
pub use festival_engine::wire::signaling;
pub use festival_engine::{clock, datadir, engine, retention};
pub use festival_engine::{Effect, Engine, EngineError};
pub use local::{LocalError, LocalNode};
pub use runtime::{NodeConfig, NodeEvent, NodeHandle};
