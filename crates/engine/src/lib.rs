//! What a Festival Chat node and a relay share that opens no socket.
//!
//! The relay runs the same sync core over the same store as a node, but has
//! no use for mDNS, WebRTC or the relay client; this crate is the part of a
//! node it needs, so `festival-relay` builds without any of them.
//!
//! # Layout
//! - [`engine`]: the core (`festival_core::sync::Node`) over a
//!   `festival_store::Store`: persists before it answers, loads off the
//!   loop, turns outputs into [`engine::Effect`]s for the transport.
//! - [`clock`]: the two clocks the core takes (timers, dates).
//! - [`retention`]: expiry and eviction in the background.
//! - [`datadir`]: where a node keeps its data, made private.
//! - [`wire`]: the byte formats spoken over sockets others open: relay
//!   messages and handshake ([`wire::relay`]), LAN signaling
//!   ([`wire::signaling`]) and the STUN binding codec ([`wire::stun`]).

pub mod clock;
pub mod datadir;
pub mod engine;
pub mod retention;
pub mod wire;

pub use engine::{Commit, CommitDone, Effect, Engine, EngineError};
