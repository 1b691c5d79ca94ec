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
//!
//! A node that starts just after its higher neighbour announced may not hear
//! that neighbour for a second (mDNS multicasts a record at most once a
//! second per interface, so the answer to its query waits), while the
//! neighbour hears the newcomer's own announcement at once. So the higher
//! node knocks: [`KNOCK_DELAY`] after a lower peer appears, if that peer
//! has not dialed it, it dials the peer once itself. Slots count links by
//! direction (toward a higher or a lower id), not by who dialed, so a
//! knock takes exactly the slots the lower peer's own dial would have
//! taken, and the argument above holds: the lower peer accepts a knock
//! only while it could still have dialed us itself.
//!
//! The other outbound slots go to the most useful peers: stable ones (no
//! recent failures) first, then nodes on mains power (TXT `pw`: venue boxes
//! stay up and relay for others). When a node is full it still improves its
//! links, one move at a time, each strictly better than before so the moves
//! settle: a nearer higher peer takes the place of the least useful link
//! (which restores the chain above), and a powered peer takes the place of
//! an unpowered link other than the one to the nearest higher peer. The
//! least useful link is the unpowered one sharing the fewest rooms with us,
//! the farthest first.
//!
//! The argument needs every node but the highest to find a slot upward, and
//! a node whose slots all went to lower nodes' dials has none for its own
//! dial up: the nodes above it were cut off (five nodes at a limit of 2 split
//! so in CI). So a node without a link upward accepts lower nodes' dials
//! into all but the last slot while a higher peer it could dial is
//! announced, and a node that is full of lower links anyway (it had no
//! higher peer when they came) drops the least useful of them when a higher
//! peer appears, and dials it. The dropped node redials and, finding us
//! full, moves on to the next higher node.

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
/// How long a peer whose link we dropped for misbehaving is neither dialed
/// nor accepted: long enough that a flood costs it its place, short enough
/// that a buggy but honest device comes back within the hour.
pub const MISBEHAVING_BAN: Duration = Duration::from_secs(300);
/// How long a node waits for a peer with a lower id that just appeared to
/// dial it, before knocking (dialing that peer itself, once). A peer that
/// already knows us dials within a few tens of milliseconds of starting; one
/// that does not would wait ~1 s for our record.
pub const KNOCK_DELAY: Duration = Duration::from_millis(150);
/// The shortest time between two knocks on one peer: a record that says
/// goodbye and comes back (anyone can multicast one) cannot have every node
/// knock again and again.
pub const KNOCK_REARM: Duration = Duration::from_secs(60);
/// Peers remembered as banned at once: a node links to a handful of peers,
/// and each ban is earned on a link, so a few hundred is plenty; the oldest
/// is forgotten beyond it.
const MAX_BANNED: usize = 256;

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
    /// Claims mains power in its mDNS record.
    pub powered: bool,
    /// For a lower peer that just appeared: when to knock if it has not
    /// dialed us by then. Cleared by the knock and by a link opening.
    pub knock_at: Option<Instant>,
    /// When we last knocked on it (see [`KNOCK_REARM`]).
    pub knocked_at: Option<Instant>,
}

impl PeerEntry {
    /// Knock after [`KNOCK_DELAY`], unless we knocked within [`KNOCK_REARM`].
    fn arm_knock(&mut self, now: Instant) {
        if self.knocked_at.is_none_or(|at| now.saturating_duration_since(at) >= KNOCK_REARM) {
            self.knock_at = Some(now + KNOCK_DELAY);
        }
    }
}

#[derive(Default)]
pub struct Links {
    pub peers: HashMap<PeerId, PeerEntry>,
    /// Peers dropped for misbehaving, until when.
    banned: HashMap<PeerId, Instant>,
}

impl Links {
    /// Record a discovery; returns whether a known peer moved or restarted
    /// (its port changed or one of its addresses is gone).
    pub fn found(&mut self, peer: PeerId, addrs: Vec<IpAddr>, port: u16, powered: bool, now: Instant) -> bool {
        let e = self.peers.entry(peer).or_insert_with(|| PeerEntry {
            addrs: Vec::new(),
            port,
            discovered: true,
            conn: None,
            failures: 0,
            next_attempt: now,
            powered,
            knock_at: Some(now + KNOCK_DELAY),
            knocked_at: None,
        });
        e.powered = powered;
        // Moved or restarted: a new port, or an address gone. A record that
        // only gains addresses (a node just started announces them one by
        // one) leaves a dial under way alone.
        let moved = e.port != port || !e.addrs.iter().all(|a| addrs.contains(a));
        e.addrs = addrs;
        e.port = port;
        if moved && e.conn.is_none() {
            // Restarted without saying goodbye: a new appearance.
            e.arm_knock(now);
        }
        if !e.discovered {
            // Back after being lost: try at once.
            e.discovered = true;
            e.failures = 0;
            e.next_attempt = now;
            e.arm_knock(now);
        }
        moved
    }

    pub fn lost(&mut self, peer: &PeerId) {
        if let Some(e) = self.peers.get_mut(peer) {
            e.discovered = false;
        }
    }

    /// Peers we should dial now, best first, at most `room` of them: the
    /// nearest higher peer while we have no link to it, then stable peers,
    /// powered ones first, then by id for determinism.
    pub fn due(&self, me: &PeerId, now: Instant, room: usize) -> Vec<PeerId> {
        let mut due: Vec<(&PeerId, &PeerEntry)> = self
            .peers
            .iter()
            .filter(|(p, e)| me < *p && e.discovered && e.conn.is_none() && e.next_attempt <= now)
            .collect();
        due.sort_by_key(|(p, e)| (e.failures, !e.powered, **p));
        if let Some(next) = self.nearest_due(me, now) {
            if let Some(i) = due.iter().position(|(p, _)| **p == next) {
                let first = due.remove(i);
                due.insert(0, first);
            }
        }
        due.into_iter().take(room).map(|(p, _)| *p).collect()
    }

    /// The nearest higher peer, if it is due and has never failed, and no
    /// nearer one is linked: the link that keeps the chain unbroken.
    pub fn nearest_due(&self, me: &PeerId, now: Instant) -> Option<PeerId> {
        let (peer, e) = self
            .peers
            .iter()
            .filter(|(p, e)| me < *p && (e.discovered || e.conn.is_some()))
            .min_by_key(|(p, _)| **p)?;
        (e.conn.is_none() && e.discovered && e.failures == 0 && e.next_attempt <= now).then_some(*peer)
    }

    /// Lower peers to knock on now (see the module docs), by id: they
    /// appeared at least [`KNOCK_DELAY`] ago, are still announced, have not
    /// linked to us, and no dial to them failed.
    pub fn knock_due(&self, me: &PeerId, now: Instant) -> Vec<PeerId> {
        let mut due: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(p, e)| {
                *p < me && e.discovered && e.conn.is_none() && e.failures == 0 && e.knock_at.is_some_and(|t| t <= now)
            })
            .map(|(p, _)| *p)
            .collect();
        due.sort_unstable();
        due
    }

    /// We knocked on `peer` (or chose not to): once per appearance.
    pub fn knocked(&mut self, peer: &PeerId, now: Instant) {
        if let Some(e) = self.peers.get_mut(peer) {
            e.knock_at = None;
            e.knocked_at = Some(now);
        }
    }

    /// A higher peer we could link to: announced, and no dial to it failed
    /// or was refused. While there is one, a node without a link upward
    /// keeps a slot for it (see the module docs).
    pub fn upward_possible(&self, me: &PeerId, now: Instant) -> bool {
        self.peers.iter().any(|(p, e)| me < p && e.discovered && e.failures == 0 && !self.is_banned(p, now))
    }

    /// The best due peer that is powered and never failed, if any.
    pub fn powered_due(&self, me: &PeerId, now: Instant) -> Option<PeerId> {
        self.peers
            .iter()
            .filter(|(p, e)| {
                me < *p && e.discovered && e.conn.is_none() && e.next_attempt <= now && e.failures == 0 && e.powered
            })
            .map(|(p, _)| *p)
            .min()
    }

    pub fn is_powered(&self, peer: &PeerId) -> bool {
        self.peers.get(peer).is_some_and(|e| e.powered)
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

    /// The peer's link was dropped for misbehaving: leave it alone for
    /// [`MISBEHAVING_BAN`].
    pub fn ban(&mut self, peer: &PeerId, now: Instant) {
        self.banned.retain(|_, until| *until > now);
        if self.banned.len() >= MAX_BANNED {
            if let Some(oldest) = self.banned.iter().min_by_key(|(_, t)| **t).map(|(p, _)| *p) {
                self.banned.remove(&oldest);
            }
        }
        self.banned.insert(*peer, now + MISBEHAVING_BAN);
        if let Some(e) = self.peers.get_mut(peer) {
            e.conn = None;
            e.next_attempt = now + MISBEHAVING_BAN;
        }
    }

    pub fn is_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.banned.get(peer).is_some_and(|until| *until > now)
    }

    pub fn opened(&mut self, peer: &PeerId) {
        if let Some(e) = self.peers.get_mut(peer) {
            e.failures = 0;
            e.knock_at = None;
        }
    }

    /// When the next dial or knock falls due, after `after`. One already
    /// due is left out: the caller dialed what it had room for, and the
    /// rest waits for a slot to free (an event), not a timer that would
    /// fire at once, again and again.
    pub fn next_attempt(&self, me: &PeerId, after: Instant) -> Option<Instant> {
        let dial =
            self.peers.iter().filter(|(p, e)| me < *p && e.discovered && e.conn.is_none()).map(|(_, e)| e.next_attempt);
        let knock = self
            .peers
            .iter()
            .filter(|(p, e)| *p < me && e.discovered && e.conn.is_none())
            .filter_map(|(_, e)| e.knock_at);
        dial.chain(knock).filter(|t| *t > after).min()
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
            l.found(p, vec![], 1, false, now);
        }
        assert_eq!(l.due(&me, now, 10), vec![higher2, higher]);
        assert_eq!(l.due(&me, now, 1).len(), 1);
        l.failed(&higher, now, 0.5);
        assert_eq!(l.due(&me, now, 10), vec![higher2]);
        assert_eq!(l.due(&me, now + BACKOFF_MIN, 10).len(), 2);
    }

    #[test]
    fn the_successor_comes_first_then_powered_peers() {
        let me = PeerId::from_bytes([5; 32]);
        let id = |b: u8| PeerId::from_bytes([b; 32]);
        let now = Instant::now();
        let mut l = Links::default();
        l.found(id(6), vec![], 1, false, now);
        l.found(id(7), vec![], 1, false, now);
        l.found(id(9), vec![], 1, true, now);
        l.found(id(1), vec![], 1, true, now);
        // 6 keeps the chain; 9 is powered; a lower peer (1) is never dialed.
        assert_eq!(l.due(&me, now, 10), vec![id(6), id(9), id(7)]);
        assert_eq!(l.nearest_due(&me, now), Some(id(6)));
        assert_eq!(l.powered_due(&me, now), Some(id(9)));
        // Linked to the successor: the rest by usefulness.
        l.peers.get_mut(&id(6)).unwrap().conn = Some(ConnId(1));
        assert_eq!(l.nearest_due(&me, now), None);
        assert_eq!(l.due(&me, now, 10), vec![id(9), id(7)]);
        // A powered peer that refused us is not chased.
        l.busy(&id(9), now, 0.5);
        assert_eq!(l.powered_due(&me, now + BUSY_RETRY * 2), None);
        // The record says the power changed.
        l.found(id(7), vec![], 1, true, now);
        assert!(l.is_powered(&id(7)));
        assert_eq!(l.powered_due(&me, now), Some(id(7)));
    }

    #[test]
    fn a_lower_peer_that_appears_is_knocked_on_once_unless_it_links_first() {
        let me = PeerId::from_bytes([5; 32]);
        let id = |b: u8| PeerId::from_bytes([b; 32]);
        let now = Instant::now();
        let mut l = Links::default();
        l.found(id(1), vec![], 1, false, now);
        l.found(id(2), vec![], 1, false, now);
        l.found(id(9), vec![], 1, false, now);
        assert_eq!(l.knock_due(&me, now), vec![], "the lower peers get time to dial first");
        let before = now - Duration::from_millis(1);
        assert_eq!(l.next_attempt(&me, before), Some(now), "the higher peer is due at once");
        assert_eq!(l.next_attempt(&me, now), Some(now + KNOCK_DELAY), "what is due already wakes nobody");
        l.peers.get_mut(&id(9)).unwrap().conn = Some(ConnId(1));
        assert_eq!(l.next_attempt(&me, before), Some(now + KNOCK_DELAY), "the knock wakes us");
        // 2 dialed us meanwhile.
        l.peers.get_mut(&id(2)).unwrap().conn = Some(ConnId(2));
        l.opened(&id(2));
        assert_eq!(l.knock_due(&me, now + KNOCK_DELAY), vec![id(1)], "never a higher peer, nor one linked");
        l.knocked(&id(1), now + KNOCK_DELAY);
        assert_eq!(l.knock_due(&me, now + KNOCK_DELAY * 10), vec![], "once");
        // 2's link drops: no knock for an old appearance.
        l.peers.get_mut(&id(2)).unwrap().conn = None;
        assert_eq!(l.knock_due(&me, now + KNOCK_DELAY * 10), vec![]);
        // 1 says goodbye and comes back at once: no knock storm.
        l.lost(&id(1));
        l.found(id(1), vec![], 1, false, now + KNOCK_DELAY * 2);
        assert_eq!(l.knock_due(&me, now + KNOCK_DELAY * 10), vec![], "not again within KNOCK_REARM");
        // Back much later: a new appearance, a new knock.
        l.lost(&id(1));
        let later = now + KNOCK_DELAY + KNOCK_REARM;
        l.found(id(1), vec![], 1, false, later);
        assert_eq!(l.knock_due(&me, later + KNOCK_DELAY), vec![id(1)]);
        // A peer restarted on a new port without a goodbye is one too.
        l.found(id(3), vec![], 1, false, later);
        l.knocked(&id(3), later);
        l.found(id(3), vec![], 2, false, later + KNOCK_REARM);
        assert_eq!(l.knock_due(&me, later + KNOCK_REARM + KNOCK_DELAY), vec![id(1), id(3)]);
        // A peer whose dial failed is not knocked on.
        l.failed(&id(3), later, 0.5);
        assert_eq!(l.knock_due(&me, later + KNOCK_REARM + KNOCK_DELAY), vec![id(1)]);
    }

    #[test]
    fn a_slot_is_kept_upward_only_for_a_higher_peer_we_could_dial() {
        let me = PeerId::from_bytes([5; 32]);
        let id = |b: u8| PeerId::from_bytes([b; 32]);
        let now = Instant::now();
        let mut l = Links::default();
        l.found(id(1), vec![], 1, false, now);
        assert!(!l.upward_possible(&me, now), "only lower peers: nothing to keep a slot for");
        l.found(id(9), vec![], 1, false, now);
        assert!(l.upward_possible(&me, now));
        l.failed(&id(9), now, 0.5);
        assert!(!l.upward_possible(&me, now), "a higher peer that failed is not waited for");
        l.found(id(8), vec![], 1, false, now);
        l.ban(&id(8), now);
        assert!(!l.upward_possible(&me, now), "nor one we banned");
        l.found(id(7), vec![], 1, false, now);
        l.lost(&id(7));
        assert!(!l.upward_possible(&me, now), "nor one that said goodbye");
    }

    #[test]
    fn a_peer_moved_when_its_port_changes_or_an_address_goes() {
        let (p, now) = (PeerId::from_bytes([9; 32]), Instant::now());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let mut l = Links::default();
        l.found(p, vec![a], 7000, false, now);
        assert!(!l.found(p, vec![a, b], 7000, false, now), "an added address is no move");
        assert!(!l.found(p, vec![a, b], 7000, true, now), "nor is plugging in");
        assert!(l.found(p, vec![b], 7000, false, now), "an address gone");
        assert!(l.found(p, vec![b], 7001, false, now), "a new port: restarted");
    }
}
