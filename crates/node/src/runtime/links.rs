//! Which peers to dial and when: the lower PeerId dials (no glare), failed
//! or dropped links are retried with exponential backoff and jitter, and no
//! more links are opened than the peer limit allows.
//!
//! With a low peer limit the lower-id rule alone can split a LAN for good:
//! nodes with low ids fill up with each other and nobody with room may dial
//! them. So a node opens at most `limit - 1` links itself and keeps the last
//! slot for a lower node's dial. Then every node but the highest links to a
//! higher one (it retries the next higher peer when one is full), and
//! following those links upwards always ends at the highest node: the LAN
//! stays one connected mesh under any limit >= 2.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use festival_core::PeerId;

use crate::webrtc::ConnId;

/// First retry after a failure; doubles per failure up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// Longest wait between attempts: a peer that comes back is found within this.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Retry period for a peer that refused us because it was full.
pub const BUSY_RETRY: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct PeerEntry {
    pub addrs: Vec<IpAddr>,
    pub port: u16,
    /// Still announced on mDNS.
    pub discovered: bool,
    /// Our connection to it, dialing or open.
    pub conn: Option<ConnId>,
    pub failures: u32,
    pub next_attempt: Instant,
}

#[derive(Default)]
pub struct Links {
    pub peers: HashMap<PeerId, PeerEntry>,
}

impl Links {
    /// Record a discovery; returns whether a known peer's address or port changed.
    pub fn found(&mut self, peer: PeerId, addrs: Vec<IpAddr>, port: u16, now: Instant) -> bool {
        let e = self.peers.entry(peer).or_insert_with(|| PeerEntry {
            addrs: Vec::new(),
            port,
            discovered: true,
            conn: None,
            failures: 0,
            next_attempt: now,
        });
        let moved = e.addrs != addrs || e.port != port;
        e.addrs = addrs;
        e.port = port;
        if !e.discovered {
            // Back after being lost: try at once.
            e.discovered = true;
            e.failures = 0;
            e.next_attempt = now;
        }
        moved
    }

    pub fn lost(&mut self, peer: &PeerId) {
        if let Some(e) = self.peers.get_mut(peer) {
            e.discovered = false;
        }
    }

    /// Peers we should dial now, best first, at most `room` of them.
    pub fn due(&self, me: &PeerId, now: Instant, room: usize) -> Vec<PeerId> {
        let mut due: Vec<(&PeerId, &PeerEntry)> = self
            .peers
            .iter()
            .filter(|(p, e)| me < *p && e.discovered && e.conn.is_none() && e.next_attempt <= now)
            .collect();
        // Peers that never failed first (stable links), then by id for determinism.
        due.sort_by_key(|(p, e)| (e.failures, **p));
        due.into_iter().take(room).map(|(p, _)| *p).collect()
    }

    pub fn failed(&mut self, peer: &PeerId, now: Instant, jitter: f64) {
        if let Some(e) = self.peers.get_mut(peer) {
            e.conn = None;
            e.failures = e.failures.saturating_add(1);
            e.next_attempt = now + backoff(e.failures, jitter);
        }
    }

    /// The peer refused us because it is full: its room depends on other
    /// links changing, not on our patience, so retry on a short fixed period
    /// (trying peers that never refused first).
    pub fn busy(&mut self, peer: &PeerId, now: Instant, jitter: f64) {
        if let Some(e) = self.peers.get_mut(peer) {
            e.conn = None;
            e.failures = e.failures.max(1);
            e.next_attempt = now + BUSY_RETRY.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0));
        }
    }

    pub fn opened(&mut self, peer: &PeerId) {
        if let Some(e) = self.peers.get_mut(peer) {
            e.failures = 0;
        }
    }

    pub fn next_attempt(&self, me: &PeerId) -> Option<Instant> {
        self.peers
            .iter()
            .filter(|(p, e)| me < *p && e.discovered && e.conn.is_none())
            .map(|(_, e)| e.next_attempt)
            .min()
    }
}

/// `BACKOFF_MIN * 2^(failures-1)`, capped, spread by `jitter` in [0, 1) over
/// +-20 % so peers that failed together do not retry together.
pub fn backoff(failures: u32, jitter: f64) -> Duration {
    let base = BACKOFF_MIN.saturating_mul(1u32 << failures.saturating_sub(1).min(16)).min(BACKOFF_MAX);
    base.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        assert_eq!(backoff(1, 0.5), BACKOFF_MIN);
        assert_eq!(backoff(2, 0.5), BACKOFF_MIN * 2);
        assert_eq!(backoff(30, 0.5), BACKOFF_MAX);
        assert!(backoff(3, 0.0) < backoff(3, 0.99));
    }

    #[test]
    fn only_the_lower_id_dials_and_the_limit_holds() {
        let me = PeerId::from_bytes([5; 32]);
        let (lower, higher, higher2) =
            (PeerId::from_bytes([1; 32]), PeerId::from_bytes([9; 32]), PeerId::from_bytes([8; 32]));
        let now = Instant::now();
        let mut l = Links::default();
        for p in [lower, higher, higher2] {
            l.found(p, vec![], 1, now);
        }
        assert_eq!(l.due(&me, now, 10), vec![higher2, higher]);
        assert_eq!(l.due(&me, now, 1).len(), 1);
        l.failed(&higher, now, 0.5);
        assert_eq!(l.due(&me, now, 10), vec![higher2]);
        assert_eq!(l.due(&me, now + BACKOFF_MIN, 10).len(), 2);
    }
}
