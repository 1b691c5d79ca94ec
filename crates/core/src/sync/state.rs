//! Per-room, per-author and per-link bookkeeping of the sync engine.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::Hash;

use crate::frame::Head;
use crate::ids::{LinkId, MessageId, PeerId, RoomId};

use super::LinkKind;

/// What this node holds of one author's chain in one room.
#[derive(Default, Debug, Clone)]
pub(crate) struct AuthorState {
    /// Every seq in 1..=contiguous is stored.
    pub contiguous: u64,
    /// Stored seqs above a gap, with their ids (delivered once the gap fills).
    pub above: BTreeMap<u64, MessageId>,
    /// Seqs handed to the store and not yet confirmed.
    pub pending: BTreeSet<u64>,
}

impl AuthorState {
    pub fn max(&self) -> u64 {
        self.above.keys().next_back().copied().unwrap_or(0).max(self.contiguous)
    }

    /// Held or on its way into the store.
    pub fn has(&self, seq: u64) -> bool {
        seq <= self.contiguous || self.above.contains_key(&seq) || self.pending.contains(&seq)
    }

    /// Highest seq known to be on its way or stored, pending included.
    pub fn max_known(&self) -> u64 {
        self.pending.iter().next_back().copied().unwrap_or(0).max(self.max())
    }

    /// The first run of seqs we lack above `contiguous`, capped at `limit`:
    /// `(from, to)` where `to` stops before the next seq we already have.
    pub fn first_gap(&self, limit: u64, chunk: u64) -> Option<(u64, u64)> {
        let mut from = self.contiguous + 1;
        while self.has(from) {
            from += 1;
        }
        if from > limit {
            return None;
        }
        let mut to = from;
        while to < limit && to - from + 1 < chunk && !self.has(to + 1) {
            to += 1;
        }
        Some((from, to))
    }
}

#[derive(Default, Debug)]
pub(crate) struct RoomState {
    pub authors: HashMap<PeerId, AuthorState>,
    /// Links this room pushes new messages to at once (the broadcast tree).
    pub eager: BTreeSet<LinkId>,
    /// Links this room only announces new messages to.
    pub lazy: BTreeSet<LinkId>,
    digest: Option<[u8; 32]>,
}

impl RoomState {
    pub fn author(&mut self, a: PeerId) -> &mut AuthorState {
        self.digest = None;
        self.authors.entry(a).or_default()
    }

    pub fn heads(&self) -> Vec<Head> {
        let mut heads: Vec<Head> = self
            .authors
            .iter()
            .filter(|(_, s)| s.max() > 0)
            .map(|(a, s)| Head { author: *a, contiguous: s.contiguous, max: s.max() })
            .collect();
        heads.sort_by_key(|h| h.author);
        heads
    }

    /// BLAKE3 over the sorted heads: equal digests mean equal holdings.
    pub fn digest(&mut self) -> [u8; 32] {
        if let Some(d) = self.digest {
            return d;
        }
        let d = digest_of(self.heads().iter().map(|h| (&h.author, h.contiguous, h.max)));
        self.digest = Some(d);
        d
    }

    pub fn make_eager(&mut self, link: LinkId) {
        self.lazy.remove(&link);
        self.eager.insert(link);
    }

    pub fn make_lazy(&mut self, link: LinkId) -> bool {
        let was = self.eager.remove(&link);
        self.lazy.insert(link);
        was
    }

    pub fn drop_link(&mut self, link: LinkId) {
        self.eager.remove(&link);
        self.lazy.remove(&link);
    }

    /// Authors who posted here: receipts are only worth it in small rooms.
    pub fn members(&self) -> usize {
        self.authors.len()
    }
}

/// The digest of a room's heads, given sorted by author (entries with max 0
/// are skipped, as a summary never lists them).
pub(crate) fn digest_of<'a>(heads: impl Iterator<Item = (&'a PeerId, u64, u64)>) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for (author, contiguous, max) in heads.filter(|h| h.2 > 0) {
        h.update(author.as_bytes());
        h.update(&contiguous.to_le_bytes());
        h.update(&max.to_le_bytes());
    }
    *h.finalize().as_bytes()
}

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: f64,
    last_ms: u64,
    rate: f64,
    burst: f64,
}

impl TokenBucket {
    pub fn new(rate: u32, burst: u32, now: u64) -> Self {
        Self { tokens: burst as f64, last_ms: now, rate: rate as f64, burst: burst as f64 }
    }

    pub fn take(&mut self, now: u64) -> bool {
        let elapsed = now.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.last_ms = self.last_ms.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug)]
pub(crate) struct LinkState {
    pub peer: PeerId,
    pub kind: LinkKind,
    pub hello_received: bool,
    /// The peer confirmed it has our hello.
    pub hello_acked: bool,
    pub hello_sent_at: u64,
    pub peer_rooms: BTreeSet<RoomId>,
    pub peer_relays: bool,
    pub peer_powered: bool,
    /// What the peer's summaries said it holds, per room and author: (contiguous, max).
    pub peer_heads: BTreeMap<RoomId, BTreeMap<PeerId, (u64, u64)>>,
    /// What we last told the peer we hold: summaries after the first carry
    /// only what changed since.
    pub told: HashMap<RoomId, HashMap<PeerId, (u64, u64)>>,
    /// Wants that came back empty; not asked again until the next summary.
    pub exhausted: HashSet<(RoomId, PeerId)>,
    pub frames: TokenBucket,
    pub envelopes: TokenBucket,
}

impl LinkState {
    pub fn peer_head(&self, room: &RoomId, author: &PeerId) -> Option<(u64, u64)> {
        self.peer_heads.get(room).and_then(|m| m.get(author)).copied()
    }

    /// Digest of what we believe the peer holds in `room`; it matches the
    /// peer's own digest unless a summary of theirs was lost.
    pub fn view_digest(&self, room: &RoomId) -> [u8; 32] {
        match self.peer_heads.get(room) {
            Some(m) => digest_of(m.iter().map(|(a, (c, x))| (a, *c, *x))),
            None => digest_of(std::iter::empty()),
        }
    }
}

/// A map that forgets its oldest entries beyond a capacity.
#[derive(Debug)]
pub(crate) struct BoundedMap<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
    cap: usize,
}

impl<K: Hash + Eq + Clone, V> BoundedMap<K, V> {
    pub fn new(cap: usize) -> Self {
        Self { map: HashMap::new(), order: VecDeque::new(), cap }
    }
    pub fn insert(&mut self, k: K, v: V) {
        if self.map.insert(k.clone(), v).is_none() {
            self.order.push_back(k);
            while self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }
    pub fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_gap_skips_what_is_held_or_pending() {
        let mut a = AuthorState { contiguous: 2, ..Default::default() };
        a.above.insert(5, MessageId::from_bytes([0; 32]));
        a.pending.insert(3);
        assert_eq!(a.first_gap(10, 100), Some((4, 4)));
        a.pending.insert(4);
        assert_eq!(a.first_gap(10, 100), Some((6, 10)));
        assert_eq!(a.first_gap(10, 2), Some((6, 7)));
        assert_eq!(a.first_gap(5, 100), None);
        assert_eq!(a.max(), 5);
        assert_eq!(a.max_known(), 5);
    }

    #[test]
    fn bucket_refills_at_its_rate_up_to_burst() {
        let mut b = TokenBucket::new(10, 2, 0);
        assert!(b.take(0) && b.take(0));
        assert!(!b.take(0));
        assert!(!b.take(50));
        assert!(b.take(100));
        assert!(b.take(10_000) && b.take(10_000) && !b.take(10_000));
    }
}
