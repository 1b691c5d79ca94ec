//! Why an input from a peer was refused, the per-peer counters, and the
//! per-link window that turns thousands of refusals into one report a
//! second (and a misbehaving link into a dropped one).

use std::collections::{BTreeMap, BTreeSet};

use crate::envelope::EnvelopeError;
use crate::frame::FrameError;
use crate::ids::{PeerId, RoomId};

use super::caps::{MISBEHAVING_REFUSALS, MISBEHAVING_WINDOW_MS, REFUSAL_REPORT_MS};
use super::Millis;

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
    #[error("expired: created more than the festival's message lifetime ago")]
    Expired,
    #[error("too many new authors from this link; try again later")]
    NewAuthorsLimited,
    #[error("room {0} tracks as many authors as it may")]
    AuthorsFull(RoomId),
    #[error("this link claims more heads than we keep per link")]
    ClaimsOverCap,
    #[error("this link has more requests queued than it may")]
    ServeQueueFull,
    #[error("an equivocation proof that proves nothing")]
    BadProof,
    #[error("reconciliation asked for faster than we answer; try at the next sync")]
    ReconBusy,
    #[error("an announcement not signed by the festival's organiser key")]
    NotOrganiser,
    #[error("more of the organiser's announcements than an hour allows")]
    AnnouncementsLimited,
    #[error("an announcement that ends beyond the festival's message lifetime")]
    AnnouncementEnd,
    #[error("a meet-up (or an answer to one) that ends beyond the festival's message lifetime")]
    MeetupEnd,
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
            Reject::Expired => "expired",
            Reject::NewAuthorsLimited => "new_authors_limited",
            Reject::AuthorsFull(_) => "room_authors_full",
            Reject::ClaimsOverCap => "claims_over_cap",
            Reject::ServeQueueFull => "serve_queue_full",
            Reject::BadProof => "proof_invalid",
            Reject::ReconBusy => "recon_busy",
            Reject::NotOrganiser => "announcement_not_organiser",
            Reject::AnnouncementsLimited => "announcements_limited",
            Reject::AnnouncementEnd => "announcement_end",
            Reject::MeetupEnd => "meetup_end",
        }
    }

    /// Whether an honest peer could never have sent it: bytes it made up or
    /// mangled, and floods. Only these count towards dropping the link. An
    /// honest carrier may hand on what its own clock, budget or rooms let
    /// through and ours do not (expired, from the future, a room we left).
    /// A full serve queue is not a fault either: an honest asker gives a
    /// request up after its timeout and asks for the next, while a server
    /// slower than that timeout still holds the old one queued.
    pub fn peer_fault(&self) -> bool {
        matches!(
            self,
            Reject::Frame(_) | Reject::Envelope(_) | Reject::RateLimited | Reject::Version(_) | Reject::BadProof
        )
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

/// Counters of the whole node.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Per peer, for at most [`MAX_PEER_COUNTERS`] peers.
    ///
    /// [`MAX_PEER_COUNTERS`]: super::caps::MAX_PEER_COUNTERS
    pub peers: BTreeMap<PeerId, PeerCounters>,
    /// Counters of the peers folded away from `peers`.
    pub departed: PeerCounters,
    /// Messages delivered to this node's user (own messages excluded).
    pub delivered: u64,
    /// Positions found to hold two different messages of one author.
    pub equivocations: u64,
    /// Seqs given up on because no peer could serve them any more.
    pub skipped: u64,
    /// Links our own messages were sent to again on the person's retry
    /// (`Input::Resend`).
    pub resent_to: u64,
    /// Messages of others announced only, not pushed: their author was
    /// over its push budget (`crowd`).
    pub held_back: u64,
    /// Open room receipts not sent: the room stopped being small while
    /// they waited (`Config::room_receipt_delay_ms`).
    pub room_receipts_dropped: u64,
    /// DMs of people blocked here, dropped unstored (not the carrier's
    /// fault, so not a refusal).
    pub blocked_dropped: u64,
    /// Every peer in `peers` had a link when last looked at, and no link
    /// went down since: a new peer counts into `departed` without another
    /// look (a relay with thousands of links would otherwise walk them for
    /// every frame of a peer beyond the cap).
    full_of_live: bool,
}

impl PeerCounters {
    fn absorb(&mut self, other: PeerCounters) {
        self.frames_in += other.frames_in;
        self.envelopes_in += other.envelopes_in;
        self.duplicates += other.duplicates;
        for (code, n) in other.rejected {
            *self.rejected.entry(code).or_default() += n;
        }
    }
}

impl Stats {
    /// `p`'s counters; a new peer beyond the cap first folds away those of
    /// a peer that `live` says has no link now (the lowest id of them), or
    /// if every one has a link, counts into `departed` itself.
    /// `live` gives the peers that have a link now; it is asked at most
    /// once per call, and not again until [`Stats::link_went_down`].
    pub(crate) fn peer<L: FnOnce() -> BTreeSet<PeerId>>(&mut self, p: PeerId, live: L) -> &mut PeerCounters {
        if !self.peers.contains_key(&p) && self.peers.len() >= super::caps::MAX_PEER_COUNTERS {
            if self.full_of_live {
                return &mut self.departed;
            }
            let live = live();
            let gone = self.peers.keys().find(|q| !live.contains(q)).copied();
            match gone.and_then(|q| self.peers.remove(&q)) {
                Some(c) => self.departed.absorb(c),
                None => {
                    self.full_of_live = true;
                    return &mut self.departed;
                }
            }
        }
        self.peers.entry(p).or_default()
    }

    /// A link went down: a counted peer may have no link now.
    pub(crate) fn link_went_down(&mut self) {
        self.full_of_live = false;
    }
    pub fn envelopes_in(&self) -> u64 {
        self.departed.envelopes_in + self.peers.values().map(|c| c.envelopes_in).sum::<u64>()
    }
    pub fn rejected_total(&self) -> u64 {
        self.departed.rejected_total() + self.peers.values().map(|c| c.rejected_total()).sum::<u64>()
    }
}

/// One link's refusals since its last report, and its faults in the
/// current misbehaviour window.
#[derive(Debug, Clone)]
pub(crate) struct RefusalWindow {
    report_since: Millis,
    counts: BTreeMap<&'static str, u64>,
    first: Option<Reject>,
    fault_since: Millis,
    faults: u64,
}

/// What one link's refusals amount to, to report once a second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalReport {
    /// Refusals per label since the last report.
    pub counts: Vec<(&'static str, u64)>,
    /// The first of them, in full, for the log.
    pub first: Reject,
}

impl RefusalReport {
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|(_, n)| n).sum()
    }
}

impl RefusalWindow {
    pub fn new(now: Millis) -> Self {
        RefusalWindow { report_since: now, counts: BTreeMap::new(), first: None, fault_since: now, faults: 0 }
    }

    /// Count one refusal; `true` when the link has now misbehaved enough
    /// to be dropped.
    pub fn count(&mut self, reason: Reject, now: Millis) -> bool {
        if self.counts.is_empty() {
            self.report_since = now;
        }
        *self.counts.entry(reason.code()).or_default() += 1;
        let fault = reason.peer_fault();
        self.first.get_or_insert(reason);
        if !fault {
            return false;
        }
        if now.saturating_sub(self.fault_since) >= MISBEHAVING_WINDOW_MS {
            self.fault_since = now;
            self.faults = 0;
        }
        self.faults += 1;
        self.faults >= MISBEHAVING_REFUSALS
    }

    /// When the pending report is due, if there is one.
    pub fn due_at(&self) -> Option<Millis> {
        (!self.counts.is_empty()).then_some(self.report_since + REFUSAL_REPORT_MS)
    }

    /// The report, if one is due at `now` (or `force`d, when the link goes).
    pub fn take(&mut self, now: Millis, force: bool) -> Option<RefusalReport> {
        let due = self.due_at()?;
        if !force && now < due {
            return None;
        }
        let counts = std::mem::take(&mut self.counts).into_iter().collect();
        let first = self.first.take()?;
        Some(RefusalReport { counts, first })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_reported_once_a_second_as_counts() {
        let mut w = RefusalWindow::new(0);
        for i in 0..50 {
            w.count(Reject::RateLimited, 10 + i);
        }
        w.count(Reject::Expired, 20);
        assert_eq!(w.take(500, false), None, "not due yet");
        let r = w.take(1_010, false).expect("due a second after the first");
        assert_eq!(r.counts, vec![("expired", 1), ("rate_limited", 50)]);
        assert_eq!(r.first, Reject::RateLimited);
        assert_eq!(r.total(), 51);
        assert_eq!(w.take(5_000, false), None, "nothing new");
    }

    #[test]
    fn only_faults_make_a_link_misbehaving_and_only_within_the_window() {
        let mut w = RefusalWindow::new(0);
        assert!((0..1_000).all(|_| !w.count(Reject::Expired, 1)), "an honest carrier's expired mail");
        assert!((0..MISBEHAVING_REFUSALS - 1).all(|_| !w.count(Reject::RateLimited, 2)));
        // The window ended: the count starts again.
        assert!(!w.count(Reject::RateLimited, 2 + MISBEHAVING_WINDOW_MS));
        assert!((0..MISBEHAVING_REFUSALS - 2).all(|_| !w.count(Reject::RateLimited, 3 + MISBEHAVING_WINDOW_MS)));
        assert!(w.count(Reject::RateLimited, 4 + MISBEHAVING_WINDOW_MS));
    }
}
