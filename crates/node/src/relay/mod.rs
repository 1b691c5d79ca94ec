//! The relay link, node side: a WebSocket to a festival-relay server that
//! carries the same core frames as a data channel, plus relayed signaling
//! and a STUN query for the node's server-reflexive address.
//!
//! # Layout
//! - [`wire`]: the relay messages, the challenge/proof/welcome handshake and
//!   the close codes (`festival_engine::wire::relay`, shared with
//!   festival-relay; docs/protocol.md, "Relay").
//! - [`client`]: [`RelayConnection`] (one authenticated socket) and
//!   [`RelayClient`] (a task that keeps one up, with backoff and jitter).
//! - [`tls`]: `wss://`: rustls on aws-lc-rs, the trusted roots, the stream.
//! - [`stun`]: [`stun::query`] over the RFC 5389 binding codec of
//!   `festival_engine::wire::stun`.
//!
//! # Owning the relay link from the node's actor
//! The client is a transport like a WebRTC connection; the actor owns it the
//! same way (`runtime/actor.rs`, `on_relay`). The route's
//! circuit breaker (`runtime/relay_route.rs`) stops the client while open:
//! 1. When `NodeConfig::relay_url` is set, `RelayClient::spawn(cfg, identity)`
//!    (a copy of the identity: `Identity::from_secret_bytes(&id.secret_bytes())`)
//!    gives a [`RelayHandle`] and an event receiver; add the receiver to the
//!    actor's `select!`. No relay is contacted unless one is configured.
//! 2. [`RelayEvent::Connected`] `{ session, relay }`: allocate a `LinkId`,
//!    remember `session -> link`, and feed
//!    `Input::LinkUp { link, peer: relay, kind: LinkKind::Relay }`.
//! 3. [`RelayEvent::Frame`] `{ session, bytes }`: `Input::Frame { link, bytes }`.
//! 4. `Effect::Send { link, bytes }` on that link:
//!    `handle.send_frame(session, bytes)`; `Err(Full)` means dropped (count
//!    it; sync repairs it, as with a full data channel).
//! 5. [`RelayEvent::Disconnected`] `{ session: Some(s), error, retry_in }`:
//!    `Input::LinkDown { link }`; status "relay offline: error, retrying in ...".
//!    The client reconnects by itself; the next `Connected` is a new link.
//! 6. [`RelayEvent::Stored`] `{ ids }`: the relay's store committed these of
//!    our envelopes; they are safe in its mailbox even if the relay crashes.
//! 7. [`RelayEvent::Signal`] `{ from, msg }`: an offer or answer from another
//!    node, relayed; check it exactly like LAN signaling (`OfferCheck`,
//!    `verify_answer`: `from` must match the signer) and answer with
//!    `handle.send_signal(from, &answer)`. [`RelayEvent::Unreachable`]: the
//!    peer is not on the relay; give up that dial.
//! 8. On shutdown: `handle.shutdown().await`.

pub mod client;
pub mod stun;
pub mod tls;
/// The relay's wire format (shared with festival-relay).
pub use festival_engine::wire::relay as wire;

pub use client::{
    relay_urls, Received, RelayClient, RelayClientConfig, RelayConnection, RelayError, RelayEvent, RelayHandle,
    RelaySendError, SessionId,
};
pub use wire::{RelayMsg, RELAY_PATH, RELAY_VERSION};
