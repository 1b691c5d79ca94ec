//! Upgrades from the relay path to a direct data channel: the authors whose
//! messages reach us through the relay are peers we could talk to
//! directly. While the relay is slow (its median round trip above
//! [`SLOW_RELAY`]), the mesh offers them a data channel through relayed
//! signaling, and the ICE checks find a direct path if the two networks
//! allow one. A peer that cannot be reached is tried again after a backoff,
//! from [`RETRY_MIN`] doubling to [`RETRY_MAX`].
//!
//! Everything here is a peer's to grow (any author on the relay is "seen",
//! any of them can fail an upgrade), so both tables are capped.

use std::collections::{BTreeMap, VecDeque};

use crate::sync::Millis;
use crate::PeerId;

/// Above this median round trip the relay is slow and direct links are sought.
pub const SLOW_RELAY: Millis = 200;
/// Round-trip samples kept.
const SAMPLES: usize = 32;
/// An author heard through the relay stays a candidate this long.
pub const SEEN_FOR: Millis = 600_000;
/// Authors remembered at once (those heard longest ago are forgotten first).
pub const MAX_SEEN: usize = 4096;
/// First wait after a failed upgrade; doubles per failure up to [`RETRY_MAX`].
pub const RETRY_MIN: Millis = 30_000;
pub const RETRY_MAX: Millis = 600_000;
/// Peers whose failed upgrades are remembered at once (beyond it the one
/// due soonest is forgotten, also as heard: it is tried again only once
/// its messages come through the relay again).
pub const MAX_RETRY: usize = 1024;

#[derive(Debug, Default)]
pub(super) struct Upgrades {
    /// The relay's identity while a session is up.
    pub relay: Option<PeerId>,
    /// The last [`SAMPLES`] round trips of the relay.
    rtt: VecDeque<Millis>,
    /// Authors heard through the relay, and when last.
    seen: BTreeMap<PeerId, Millis>,
    /// Per peer: the earliest next attempt, and the failures so far.
    retry: BTreeMap<PeerId, (Millis, u32)>,
}

impl Upgrades {
    pub fn relay_down(&mut self) {
        self.relay = None;
        // The samples describe a connection gone.
        self.rtt.clear();
    }

    pub fn round_trip(&mut self, ms: Millis) {
        if self.rtt.len() == SAMPLES {
            self.rtt.pop_front();
        }
        self.rtt.push_back(ms);
    }

    /// The median round trip (the upper middle of an even count).
    pub fn relay_rtt(&self) -> Option<Millis> {
        let mut v: Vec<Millis> = self.rtt.iter().copied().collect();
        v.sort_unstable();
        v.get(v.len() / 2).copied()
    }

    /// A session is up and its median round trip is above [`SLOW_RELAY`].
    pub fn slow(&self) -> bool {
        self.relay.is_some() && self.relay_rtt().is_some_and(|ms| ms > SLOW_RELAY)
    }

    pub fn heard(&mut self, authors: impl IntoIterator<Item = PeerId>, now: Millis) {
        for a in authors {
            self.seen.insert(a, now);
        }
        if self.seen.len() > MAX_SEEN {
            self.seen.retain(|_, at| now.saturating_sub(*at) < SEEN_FOR);
        }
        while self.seen.len() > MAX_SEEN {
            let oldest = self.seen.iter().min_by_key(|(p, at)| (**at, **p)).map(|(p, _)| *p);
            if let Some(p) = oldest {
                self.seen.remove(&p);
            }
        }
    }

    /// Messages of `peer` came through the relay within [`SEEN_FOR`].
    pub fn heard_lately(&self, peer: &PeerId, now: Millis) -> bool {
        self.seen.get(peer).is_some_and(|at| now.saturating_sub(*at) < SEEN_FOR)
    }

    /// An upgrade to `peer` failed (unreachable, refused, no direct path);
    /// `jitter` in [0, 1) spreads the wait over its upper half.
    pub fn failed(&mut self, peer: PeerId, now: Millis, jitter: f64) {
        let e = self.retry.entry(peer).or_insert((now, 0));
        e.1 = e.1.saturating_add(1);
        let base = RETRY_MIN.saturating_mul(1 << e.1.saturating_sub(1).min(16)).min(RETRY_MAX);
        e.0 = now + (base as f64 * (0.5 + 0.5 * jitter.clamp(0.0, 1.0))) as Millis;
        // Beyond the cap the wait due soonest goes, never the one just
        // set, and its peer is forgotten as heard too: a peer without a
        // wait would be a candidate again at once (a failure that comes at
        // once, a relay queue full, would redial it without end).
        while self.retry.len() > MAX_RETRY {
            let soonest =
                self.retry.iter().filter(|(p, _)| **p != peer).min_by_key(|(p, (at, _))| (*at, **p)).map(|(p, _)| *p);
            if let Some(p) = soonest {
                self.retry.remove(&p);
                self.seen.remove(&p);
            }
        }
    }

    /// An upgraded link served longer than the first wait: its backoff is
    /// forgotten.
    pub fn opened(&mut self, peer: &PeerId) {
        self.retry.remove(peer);
    }

    /// Peers worth an attempt now, heard most lately first; `skip` says who
    /// is linked, being dialed, or on the LAN already.
    pub fn candidates(&self, now: Millis, skip: impl Fn(&PeerId) -> bool) -> Vec<PeerId> {
        let mut v: Vec<(Millis, PeerId)> = self
            .seen
            .iter()
            .filter(|(p, at)| now.saturating_sub(**at) < SEEN_FOR && !skip(p))
            .filter(|(p, _)| self.retry.get(p).is_none_or(|(next, _)| now >= *next))
            .map(|(p, at)| (*at, *p))
            .collect();
        v.sort_by_key(|(at, p)| (std::cmp::Reverse(*at), *p));
        v.into_iter().map(|(_, p)| p).collect()
    }

    /// When the next attempt that waits out a backoff may start, while the
    /// relay is slow (else nothing is due).
    pub fn next_retry(&self, now: Millis) -> Option<Millis> {
        if !self.slow() {
            return None;
        }
        self.retry.iter().filter(|(p, _)| self.heard_lately(p, now)).map(|(_, (t, _))| *t).filter(|t| *t > now).min()
    }

    #[cfg(test)]
    pub fn sizes(&self) -> (usize, usize) {
        (self.seen.len(), self.retry.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u16) -> PeerId {
        let mut b = [0; 32];
        b[..2].copy_from_slice(&n.to_be_bytes());
        PeerId::from_bytes(b)
    }

    #[test]
    fn the_relay_is_slow_when_its_median_round_trip_is() {
        let mut u = Upgrades { relay: Some(peer(9)), ..Default::default() };
        assert!(!u.slow(), "no samples: not slow");
        for ms in [50, 300, 310, 320, 40] {
            u.round_trip(ms);
        }
        assert!(u.slow());
        for _ in 0..5 {
            u.round_trip(20);
        }
        assert!(!u.slow(), "one slow burst does not outvote the rest");
        u.round_trip(900);
        u.relay_down();
        assert_eq!(u.relay_rtt(), None, "a session gone takes its samples");
        assert!(!u.slow());
    }

    #[test]
    fn candidates_skip_the_linked_and_wait_out_their_backoff() {
        let mut u = Upgrades { relay: Some(peer(9)), ..Default::default() };
        u.round_trip(500);
        let t0 = 1_000_000;
        u.heard([peer(1)], t0);
        u.heard([peer(2)], t0 + 1000);
        let now = t0 + 2000;
        assert_eq!(u.candidates(now, |_| false), vec![peer(2), peer(1)], "latest first");
        assert_eq!(u.candidates(now, |q| *q == peer(2)), vec![peer(1)]);
        u.failed(peer(1), now, 0.5);
        assert_eq!(u.candidates(now, |_| false), vec![peer(2)]);
        let next = u.next_retry(now).unwrap();
        assert!(next >= now + RETRY_MIN / 2 && next <= now + RETRY_MIN);
        assert_eq!(u.candidates(next, |_| false).len(), 2);
        u.failed(peer(1), next, 0.5);
        let again = u.next_retry(next).unwrap();
        assert!(again - next > next - now, "the wait doubles");
        u.opened(&peer(1));
        assert_eq!(u.next_retry(now), None, "success clears the backoff");
        assert!(u.candidates(t0 + SEEN_FOR + 5000, |_| false).is_empty(), "stale");
    }

    #[test]
    fn a_crowd_of_fresh_authors_on_the_relay_grows_neither_table_past_its_cap() {
        let mut u = Upgrades { relay: Some(peer(9)), ..Default::default() };
        u.round_trip(500);
        let t0 = 1_000_000;
        // All within SEEN_FOR: expiry alone would keep them all.
        for n in 0..(MAX_SEEN as u16 + 500) {
            u.heard([peer(n)], t0 + u64::from(n));
            u.failed(peer(n), t0 + u64::from(n), 0.0);
        }
        assert_eq!(u.sizes().1, MAX_RETRY);
        assert!(u.sizes().0 <= MAX_SEEN);
        let last = peer(MAX_SEEN as u16 + 499);
        assert!(u.heard_lately(&last, t0 + 10_000), "the latest are kept");
        assert!(!u.heard_lately(&peer(0), t0 + 10_000), "the oldest went first");
        // With the wait table full, a fresh failure still waits, and the
        // peer whose wait made room is no candidate either (every wait
        // still runs: the first is due at t0 + RETRY_MIN / 2).
        let now = t0 + 5_000;
        u.heard([peer(60_000)], now);
        u.failed(peer(60_000), now, 0.0);
        assert_eq!(u.sizes().1, MAX_RETRY);
        let soon = u.candidates(now + 1, |_| false);
        assert!(!soon.contains(&peer(60_000)), "the new wait was kept");
        assert!(soon.is_empty(), "no peer without a wait is offered again at once: {}", soon.len());
        assert!(u.next_retry(now).is_some_and(|t| t > now));
    }
}
