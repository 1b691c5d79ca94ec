//! Why an input from a peer was refused, and the per-peer counters.

use std::collections::{BTreeMap, HashMap};

use crate::envelope::EnvelopeError;
use crate::frame::FrameError;
use crate::ids::{PeerId, RoomId};

/// A refused frame or envelope. Never stored, never forwarded; counted against
/// the peer whose link it came in on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("rate limit exceeded")]
    RateLimited,
    #[error("protocol version {0} is not supported")]
    Version(u8),
    #[error("room {0} is not carried here")]
    NotCarried(RoomId),
    #[error("created {ahead_ms} ms in the future")]
    FromFuture { ahead_ms: u64 },
    #[error("seq {seq} is too far ahead of {contiguous}")]
    SeqTooFarAhead { seq: u64, contiguous: u64 },
    #[error("two different messages claim {room} / {author:?} / seq {seq}")]
    Equivocation { room: RoomId, author: PeerId, seq: u64 },
}

impl Reject {
    /// Stable counter label.
    pub fn code(&self) -> &'static str {
        match self {
            Reject::Frame(e) => e.code(),
            Reject::Envelope(e) => e.code(),
            Reject::RateLimited => "rate_limited",
            Reject::Version(_) => "protocol_version",
            Reject::NotCarried(_) => "room_not_carried",
            Reject::FromFuture { .. } => "from_future",
            Reject::SeqTooFarAhead { .. } => "seq_out_of_range",
            Reject::Equivocation { .. } => "equivocation",
        }
    }
}

/// Counters for one peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerCounters {
    pub frames_in: u64,
    /// Envelope copies received (pushes and batch items).
    pub envelopes_in: u64,
    /// Of those, copies of messages already held.
    pub duplicates: u64,
    pub rejected: BTreeMap<&'static str, u64>,
}

impl PeerCounters {
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub peers: HashMap<PeerId, PeerCounters>,
    /// Messages delivered to this node's user (own messages excluded).
    pub delivered: u64,
}

impl Stats {
    pub fn peer(&mut self, p: PeerId) -> &mut PeerCounters {
        self.peers.entry(p).or_default()
    }
    pub fn envelopes_in(&self) -> u64 {
        self.peers.values().map(|c| c.envelopes_in).sum()
    }
    pub fn rejected_total(&self) -> u64 {
        self.peers.values().map(|c| c.rejected_total()).sum()
    }
}
