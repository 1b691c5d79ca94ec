//! Which path traffic takes, and the upgrade from the relay to a direct
//! data channel.
//!
//! - Counters per path: our messages by the path they first left on, frame
//!   bytes sent on LAN links and on the relay, direct dials and how many
//!   opened (the P2P success rate), round-trip times per path.
//! - Upgrades: authors whose messages reach us through the relay are peers
//!   we could talk to directly. While the relay is slow (its round trip
//!   above [`SLOW_RELAY`]), the node offers them a data channel through
//!   relayed signaling; the ICE checks then find a direct path if the two
//!   networks allow one. A peer that cannot be reached is retried with
//!   backoff, from [`RETRY_MIN`] doubling to [`RETRY_MAX`].

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use festival_core::{MessageId, PeerId};
use std::time::Instant;

use super::events::PathStats;

/// Above this round trip the relay is slow and direct links are sought.
pub const SLOW_RELAY: Duration = Duration::from_millis(200);
/// Round-trip samples kept per path.
const SAMPLES: usize = 32;
/// An author seen through the relay stays a candidate this long.
const SEEN_FOR: Duration = Duration::from_secs(600);
/// Authors remembered at most (the oldest is forgotten first).
const MAX_SEEN: usize = 4096;
/// Our messages on the relay waiting for its `Stored` (their send times).
const MAX_PENDING_ACKS: usize = 1024;
pub const RETRY_MIN: Duration = Duration::from_secs(30);
pub const RETRY_MAX: Duration = Duration::from_secs(600);

/// The middle value (the upper one of an even count); `None` for none.
pub fn median(mut v: Vec<Duration>) -> Option<Duration> {
    v.sort();
    v.get(v.len() / 2).copied()
}

/// The last [`SAMPLES`] round trips of one path.
#[derive(Default)]
pub struct Rtt {
    samples: VecDeque<Duration>,
}

impl Rtt {
    pub fn add(&mut self, d: Duration) {
        if self.samples.len() == SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(d);
    }

    pub fn median(&self) -> Option<Duration> {
        median(self.samples.iter().copied().collect())
    }

    pub fn clear(&mut self) {
        self.samples.clear();
    }
}

#[derive(Default)]
pub struct Paths {
    pub relay_rtt: Rtt,
    /// Our messages handed to the relay, by when: their `Stored` acks time
    /// the relay's round trip for a message, its commit included.
    acks: HashMap<MessageId, Instant>,
    sent_lan: u64,
    sent_relay: u64,
    bytes_lan: u64,
    bytes_relay: u64,
    dials: u64,
    opened: u64,
    upgrade_dials: u64,
    upgrades: u64,
    /// Authors whose messages came through the relay, and when.
    seen: HashMap<PeerId, Instant>,
    /// Per peer: the earliest next upgrade attempt and the failures so far.
    retry: HashMap<PeerId, (Instant, u32)>,
    /// Our address as the relay's STUN saw it.
    pub reflexive: Option<std::net::SocketAddr>,
}

impl Paths {
    pub fn sent_message(&mut self, id: MessageId, relay: bool, now: Instant) {
        if relay {
            self.sent_relay += 1;
            if self.acks.len() >= MAX_PENDING_ACKS {
                // Acks that never came (a session that ended): forget them.
                self.acks.retain(|_, at| now.duration_since(*at) < Duration::from_secs(60));
            }
            if self.acks.len() < MAX_PENDING_ACKS {
                self.acks.insert(id, now);
            }
        } else {
            self.sent_lan += 1;
        }
    }

    /// The relay committed these of our envelopes.
    pub fn stored(&mut self, ids: &[MessageId], now: Instant) {
        for id in ids {
            if let Some(at) = self.acks.remove(id) {
                self.relay_rtt.add(now.duration_since(at));
            }
        }
    }

    /// The relay session ended: its samples describe a connection gone.
    pub fn relay_down(&mut self) {
        self.relay_rtt.clear();
        self.acks.clear();
    }

    pub fn frame_out(&mut self, bytes: usize, relay: bool) {
        if relay {
            self.bytes_relay += bytes as u64;
        } else {
            self.bytes_lan += bytes as u64;
        }
    }

    pub fn dialed(&mut self, upgrade: bool) {
        self.dials += 1;
        self.upgrade_dials += u64::from(upgrade);
    }

    pub fn opened(&mut self, peer: PeerId, upgrade: bool) {
        self.opened += 1;
        if upgrade {
            self.upgrades += 1;
            self.retry.remove(&peer);
        }
    }

    /// An upgrade to `peer` failed (unreachable, refused, ICE gave up).
    pub fn upgrade_failed(&mut self, peer: PeerId, now: Instant, jitter: f64) {
        let e = self.retry.entry(peer).or_insert((now, 0));
        e.1 = e.1.saturating_add(1);
        let wait = crate::relay::client::backoff(e.1, RETRY_MIN, RETRY_MAX, jitter);
        e.0 = now + wait;
    }

    /// Note the authors of envelopes that came through the relay.
    pub fn seen_via_relay(&mut self, authors: impl IntoIterator<Item = PeerId>, now: Instant) {
        for a in authors {
            self.seen.insert(a, now);
        }
        if self.seen.len() > MAX_SEEN {
            self.seen.retain(|_, at| now.duration_since(*at) < SEEN_FOR);
            while self.seen.len() > MAX_SEEN {
                let oldest = self.seen.iter().min_by_key(|(_, at)| **at).map(|(p, _)| *p);
                if let Some(p) = oldest {
                    self.seen.remove(&p);
                }
            }
        }
    }

    /// Whether messages of `peer` came through the relay within [`SEEN_FOR`].
    pub fn heard_via_relay(&self, peer: &PeerId, now: Instant) -> bool {
        self.seen.get(peer).is_some_and(|at| now.duration_since(*at) < SEEN_FOR)
    }

    /// The relay is slow: its median round trip is above [`SLOW_RELAY`].
    pub fn relay_slow(&self) -> bool {
        self.relay_rtt.median().is_some_and(|d| d > SLOW_RELAY)
    }

    /// Peers worth an upgrade attempt now, most recently heard first.
    /// `skip` says which peers are linked or being dialed already.
    pub fn upgrade_candidates(&self, now: Instant, skip: impl Fn(&PeerId) -> bool) -> Vec<PeerId> {
        let mut v: Vec<(Instant, PeerId)> = self
            .seen
            .iter()
            .filter(|(p, at)| now.duration_since(**at) < SEEN_FOR && !skip(p))
            .filter(|(p, _)| self.retry.get(p).is_none_or(|(next, _)| now >= *next))
            .map(|(p, at)| (*at, *p))
            .collect();
        v.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
        v.into_iter().map(|(_, p)| p).collect()
    }

    /// When the next upgrade attempt may start, if one waits for backoff.
    pub fn next_retry(&self) -> Option<Instant> {
        self.retry.values().map(|(t, _)| *t).min()
    }

    pub fn view(&self, lan_rtt: Option<Duration>) -> PathStats {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let total = self.bytes_lan + self.bytes_relay;
        PathStats {
            sent_lan: self.sent_lan,
            sent_relay: self.sent_relay,
            bytes_lan: self.bytes_lan,
            bytes_relay: self.bytes_relay,
            off_relay_share: (total > 0).then(|| self.bytes_lan as f64 / total as f64),
            p2p_attempts: self.dials,
            p2p_opened: self.opened,
            p2p_success_rate: (self.dials > 0).then(|| self.opened.min(self.dials) as f64 / self.dials as f64),
            upgrade_attempts: self.upgrade_dials,
            upgrades: self.upgrades,
            lan_rtt_ms: lan_rtt.map(ms),
            relay_rtt_ms: self.relay_rtt.median().map(ms),
            relay_slow: self.relay_slow(),
            reflexive_addr: self.reflexive.map(|a| a.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(b: u8) -> PeerId {
        PeerId::from_bytes([b; 32])
    }

    #[test]
    fn the_relay_is_slow_when_its_median_round_trip_is() {
        let mut p = Paths::default();
        assert!(!p.relay_slow(), "no samples: not slow");
        for ms in [50, 300, 310, 320, 40] {
            p.relay_rtt.add(Duration::from_millis(ms));
        }
        assert!(p.relay_slow());
        for _ in 0..5 {
            p.relay_rtt.add(Duration::from_millis(20));
        }
        assert!(!p.relay_slow(), "one slow burst does not outvote the rest");
        p.relay_down();
        assert_eq!(p.view(None).relay_rtt_ms, None);
    }

    #[test]
    fn stored_acks_time_the_relay() {
        let mut p = Paths::default();
        let t0 = Instant::now();
        let id = MessageId::from_bytes([7; 32]);
        p.sent_message(id, true, t0);
        p.stored(&[id, MessageId::from_bytes([8; 32])], t0 + Duration::from_millis(250));
        assert_eq!(p.relay_rtt.median(), Some(Duration::from_millis(250)));
        p.stored(&[id], t0 + Duration::from_secs(9));
        assert_eq!(p.relay_rtt.median(), Some(Duration::from_millis(250)), "one ack times one send");
        let v = p.view(None);
        assert_eq!((v.sent_relay, v.sent_lan), (1, 0));
    }

    #[test]
    fn candidates_skip_linked_peers_and_wait_out_their_backoff() {
        let mut p = Paths::default();
        let t0 = Instant::now();
        p.seen_via_relay([peer(1)], t0);
        p.seen_via_relay([peer(2)], t0 + Duration::from_secs(1));
        let now = t0 + Duration::from_secs(2);
        assert_eq!(p.upgrade_candidates(now, |_| false), vec![peer(2), peer(1)], "latest first");
        assert_eq!(p.upgrade_candidates(now, |q| *q == peer(2)), vec![peer(1)]);
        p.upgrade_failed(peer(1), now, 0.5);
        assert_eq!(p.upgrade_candidates(now, |_| false), vec![peer(2)]);
        let next = p.next_retry().unwrap();
        assert!(next >= now + RETRY_MIN / 2 && next <= now + RETRY_MIN);
        assert_eq!(p.upgrade_candidates(next, |_| false).len(), 2);
        p.opened(peer(1), true);
        assert_eq!(p.next_retry(), None, "success clears the backoff");
        assert!(p.upgrade_candidates(t0 + SEEN_FOR + Duration::from_secs(5), |_| false).is_empty(), "stale");
    }

    #[test]
    fn shares_and_rates() {
        let mut p = Paths::default();
        assert_eq!(p.view(None).off_relay_share, None);
        assert_eq!(p.view(None).p2p_success_rate, None);
        p.frame_out(300, false);
        p.frame_out(100, true);
        p.dialed(false);
        p.dialed(true);
        p.opened(peer(3), false);
        let v = p.view(Some(Duration::from_micros(500)));
        assert_eq!(v.off_relay_share, Some(0.75));
        assert_eq!(v.p2p_success_rate, Some(0.5));
        assert_eq!((v.upgrade_attempts, v.upgrades), (1, 0));
        assert_eq!(v.lan_rtt_ms, Some(0.5));
    }
}
