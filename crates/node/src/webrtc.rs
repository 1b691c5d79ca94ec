//! WebRTC data channels over str0m: one UDP socket per node, many peers.
//!
//! [`Endpoint`] is a deterministic state machine around one `str0m::Rtc` per
//! peer connection. It never reads a clock or a socket: the node's actor owns
//! the UDP socket, hands every datagram to [`Endpoint::handle_receive`], and
//! calls [`Endpoint::poll`] after any input (and when
//! [`Endpoint::next_timeout`] is due) to get datagrams to send and what
//! happened on the links ([`EndpointEvent`]).
//!
//! Each connection carries ONE reliable, ordered, binary data channel labelled
//! [`CHANNEL_LABEL`]. The offer side ([`Endpoint::create_offer`] then
//! [`Endpoint::accept_answer`]) and the answer side
//! ([`Endpoint::accept_offer`]) exchange SDP through the signaling layer,
//! which signs it with the node's identity key. The SDP carries the DTLS
//! certificate fingerprint ([`Endpoint::local_fingerprint`]), and str0m
//! refuses a DTLS handshake whose certificate does not match the remote SDP,
//! so the signed SDP binds the channel to the identity.
//!
//! # Layout
//! - [`endpoint`]: `Endpoint`: set-up, demultiplexing, sending, timers.
//! - `conn`: one connection's str0m `Rtc` and the drain that maps its
//!   outputs to events.
//! - [`interfaces`]: local interface addresses and the host candidates made
//!   from them.
//! - [`driver`]: a small tokio loop (`pump`) that moves datagrams between an
//!   `Endpoint` and a `tokio::net::UdpSocket`.
//! - [`error`]: `RtcError` and `SendError`.

pub mod bundle;
mod conn;
pub mod driver;
pub mod endpoint;
pub mod error;
pub mod interfaces;

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

pub use endpoint::{Endpoint, EndpointStats};
pub use error::{RtcError, SendError};
pub use interfaces::{host_candidates, local_interfaces, select_host_ips, InterfaceAddr, InterfaceFilter};
pub use str0m::config::Fingerprint;

/// The time to give str0m (which takes `std` instants): tokio's clock, the
/// one every other timer of the node runs on, so that `tokio::time::pause`
/// moves the data channels' timers with the rest.
pub fn rtc_now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Label of the one data channel per connection. The answer side ignores and
/// closes channels with any other label.
pub const CHANNEL_LABEL: &str = "festival";

/// Largest message the channel carries: exactly the largest link frame, so a
/// frame never has to be split, and a peer cannot make us reassemble more.
pub const MAX_MESSAGE_BYTES: usize = festival_core::frame::MAX_FRAME_BYTES;

/// Unacknowledged bytes per connection before [`Endpoint::send`] pushes
/// back: str0m's default. Every small message leaves as its own datagram, so
/// this bounds the datagrams in flight; at 256 KiB a flood of 200-byte
/// messages (some 1300 datagrams) overflowed the receiver's socket buffer and
/// fell to under 1k msg/s on SCTP's retransmission timer, against about 42k
/// msg/s at 128 KiB (the network lab saw the same collapse). A single larger
/// frame (up to [`MAX_MESSAGE_BYTES`]) is still taken into an empty buffer.
pub const SEND_BUFFER_BYTES: usize = 128 * 1024;

/// Unacknowledged bytes under which bulk traffic (sync batches, photos'
/// pieces: `Priority::Bulk`) still enters the channel
/// ([`Endpoint::send_bulk`]). The channel delivers in order, so a text or
/// DM sent meanwhile waits behind what is in it, not behind what waits in
/// the node's send queue: with 128 KiB of a photo in flight, a text beside
/// it took 7-13 ms at p99 on loopback, with 32 KiB under 2 ms, the photo no
/// slower (docs/benchmarks.md, "A photo beside texts"). On a link with a
/// round trip of 5 ms this still carries 6 MB/s of bulk.
pub const BULK_BUFFER_BYTES: usize = 32 * 1024;

/// How long a new connection may take to open its channel. On a LAN the
/// host pairs answer in milliseconds; ten seconds leaves room for three DTLS
/// flight retransmissions (1 s, 2 s, 4 s) on a lossy Wi-Fi before we give
/// the circuit breaker a failure to count.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often an open connection re-checks its ICE pair (a STUN binding
/// request). str0m's default; the power policy may lengthen it on battery.
pub const ICE_KEEPALIVE: Duration = Duration::from_secs(3);

/// Unanswered ICE checks before a connection counts as gone. str0m's
/// default: with the keepalive above a silent peer is noticed after about
/// 20 s (checks speed up while unanswered). Never sooner than 15 s after the
/// peer's last check reached us, whatever these two settings: str0m keeps a
/// pair alive that long after a remote binding request (is-0.12
/// `RECENT_BINDING_REQUEST`). A peer that says goodbye ([`Endpoint::close`])
/// is noticed at once.
pub const ICE_MAX_RETRANSMITS: usize = 9;

/// Caller-chosen identifier of one peer connection on an [`Endpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// Settings of an [`Endpoint`].
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// The bound socket's address on each usable interface (see
    /// [`host_candidates`]). Each becomes a host candidate; no STUN or TURN
    /// candidates are ever gathered.
    pub local_addrs: Vec<SocketAddr>,
    /// Largest message sent or received; also what we advertise in SDP as
    /// `a=max-message-size`.
    pub max_message_bytes: usize,
    /// Unacknowledged bytes per connection before `send` says `Full`. A
    /// message larger than this is accepted only into an empty buffer.
    /// (str0m's own buffer is set to the larger of this and
    /// `max_message_bytes`, since it refuses any message it cannot hold.)
    pub send_buffer_bytes: usize,
    /// A connection whose channel is not open by then is closed.
    pub connect_timeout: Duration,
    /// ICE keepalive interval (str0m's maximum STUN RTO). Applies to
    /// connections created after it is set.
    pub ice_keepalive: Duration,
    /// Unanswered ICE checks before the connection is declared gone.
    pub ice_max_retransmits: usize,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            local_addrs: Vec::new(),
            max_message_bytes: MAX_MESSAGE_BYTES,
            send_buffer_bytes: SEND_BUFFER_BYTES,
            connect_timeout: CONNECT_TIMEOUT,
            ice_keepalive: ICE_KEEPALIVE,
            ice_max_retransmits: ICE_MAX_RETRANSMITS,
        }
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer shut the connection down (DTLS close_notify).
    RemoteClosed,
    /// The data channel was closed.
    ChannelClosed,
    /// ICE checks went unanswered: the peer left or the path broke.
    IceDisconnected,
    /// The channel did not open within `connect_timeout`.
    ConnectTimeout,
    /// The peer's DTLS certificate did not match the fingerprint in its SDP:
    /// someone other than the signing identity answered. Text for logs.
    Authentication(String),
    /// Any other failure inside str0m. Text for logs.
    Failed(String),
}

/// What [`Endpoint::poll`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointEvent {
    /// Send `bytes` to `destination` from the socket (bound to `source`).
    Transmit { source: SocketAddr, destination: SocketAddr, bytes: Vec<u8> },
    /// The data channel of this connection is open for [`Endpoint::send`].
    Open(ConnId),
    /// A binary message arrived, whole and in order.
    Data(ConnId, Vec<u8>),
    /// A send refused with [`SendError::Full`] now fits.
    Writable(ConnId),
    /// The connection is gone and forgotten; its id may be reused.
    Closed(ConnId, CloseReason),
}

/// The DTLS fingerprints (`a=fingerprint:` lines) in an SDP, so that the
/// signaling layer can check which certificate a signed SDP vouches for.
/// Unparseable lines are skipped.
pub fn sdp_fingerprints(sdp: &str) -> Vec<Fingerprint> {
    sdp.lines()
        .filter_map(|line| line.trim_end().strip_prefix("a=fingerprint:"))
        .filter_map(|value| value.parse::<Fingerprint>().ok())
        .collect()
}
