//! Per-room, per-author and per-link bookkeeping of the sync engine.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::frame::Head;
use crate::ids::{LinkId, MessageId, PeerId, RoomId};

use super::caps;
use super::recon::{HeadSet, Node};
use super::refusals::RefusalWindow;
use super::{LinkKind, Load};

/// Photos per author chain whose missing pieces delivery goes past at
/// once (an author sends a few at a time; beyond, the furthest run waits
/// for its pieces as any gap does).
pub(crate) const MAX_PIECE_RUNS: usize = 4;

/// The all-zero id: "the sender no longer holds the message at its max".
pub(crate) const NO_TIP: MessageId = MessageId::from_bytes([0; 32]);

/// What this node holds of one author's chain in one room.
#[derive(Default, Debug, Clone)]
pub(crate) struct AuthorState {
    /// Every seq in 1..=contiguous is stored, or was and is gone (expired,
    /// evicted, or given up on when no peer could serve it any more).
    pub contiguous: u64,
    /// Stored seqs above a gap, with their ids (delivered once the gap fills).
    pub above: BTreeMap<u64, MessageId>,
    /// Seqs handed to the store and not yet confirmed.
    pub pending: BTreeSet<u64>,
    /// The id of the message at `max()`, when we know it.
    pub tip: Option<MessageId>,
    /// Delivered up to here (never below `contiguous`): past `contiguous`
    /// over seqs that a held photo's header says are its pieces, which
    /// travel behind text and may come later (see `pieces`). A piece that
    /// comes at or below it is delivered as it comes.
    pub shown: u64,
    /// Runs of seqs `(first, last)` that held photo headers say are their
    /// pieces, above `contiguous` (at most [`MAX_PIECE_RUNS`], the latest):
    /// delivery goes past them, so an author's text after a photo is shown
    /// without waiting for the photo's pieces.
    pub pieces: Vec<(u64, u64)>,
    /// This head as the room's fingerprint counts it.
    counted: Option<HeadPos>,
    /// The room's change number when this head last changed: a delta
    /// summary to a link carries the heads changed since the number it was
    /// last told ([`RoomState::heads_since`]).
    changed: u64,
}

/// A head without its author, for maps keyed by the author: 48 bytes a
/// head where a [`Head`] takes 80 (one per author, per room, per link).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeadPos {
    pub contiguous: u64,
    pub max: u64,
    pub tip: MessageId,
}

impl HeadPos {
    pub fn of(h: &Head) -> Self {
        HeadPos { contiguous: h.contiguous, max: h.max, tip: h.tip }
    }

    pub fn head(self, author: PeerId) -> Head {
        Head { author, contiguous: self.contiguous, max: self.max, tip: self.tip }
    }
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

    /// Move `contiguous` up over everything held above it; returns the
    /// (seq, id) of each message that became contiguous, in order.
    pub fn advance(&mut self) -> Vec<(u64, MessageId)> {
        let mut out = Vec::new();
        while let Some(next) = self.above.remove(&(self.contiguous + 1)) {
            self.contiguous += 1;
            // What was shown past a photo's pieces is not shown again.
            if self.contiguous > self.shown {
                out.push((self.contiguous, next));
            }
        }
        self.shown = self.shown.max(self.contiguous);
        // Past the pieces of held photos that are still on their way.
        loop {
            let next = self.shown + 1;
            if let Some(id) = self.above.get(&next) {
                out.push((next, *id));
                self.shown = next;
            } else if self.pieces.iter().any(|(first, last)| *first <= next && next <= *last) {
                // A piece still on its way: one seq at a time, so what is
                // held further in the run is delivered as it is passed.
                self.shown = next;
            } else {
                break;
            }
        }
        let shown = self.shown;
        self.pieces.retain(|(_, last)| *last > shown);
        self.shrink();
        out
    }

    /// A photo's header held at `seq` says its pieces are the next `n`
    /// seqs: delivery may go past them (see `shown`).
    pub fn note_pieces(&mut self, seq: u64, n: u64) {
        let run = (seq.saturating_add(1), seq.saturating_add(n));
        if n == 0 || run.1 <= self.shown || self.pieces.contains(&run) {
            return;
        }
        // Runs delivery has passed are of no more use; past the cap, the
        // furthest run is the one that waits (delivery reaches the nearer
        // ones first).
        let shown = self.shown;
        self.pieces.retain(|(_, last)| *last > shown);
        self.pieces.push(run);
        if self.pieces.len() > MAX_PIECE_RUNS {
            self.pieces.sort_unstable();
            self.pieces.pop();
        }
    }

    /// Frees the node an emptied map keeps (a `BTreeMap` keeps its root leaf
    /// when its last entry goes): ~570 bytes an author, times every author
    /// of every room, on a node that is in sync.
    pub fn shrink(&mut self) {
        if self.above.is_empty() {
            self.above = BTreeMap::new();
        }
        if self.pending.is_empty() {
            self.pending = BTreeSet::new();
        }
        if self.pieces.is_empty() && self.pieces.capacity() > 0 {
            self.pieces = Vec::new();
        }
    }

    /// Treat `1..=through` as gone: nobody can serve it any more.
    pub fn skip_through(&mut self, through: u64) -> Vec<(u64, MessageId)> {
        let mut out = Vec::new();
        if through <= self.contiguous {
            return out;
        }
        // Held messages inside the skipped run are still shown (once).
        let below: Vec<u64> = self.above.range(..=through).map(|(s, _)| *s).collect();
        for s in below {
            if let Some(id) = self.above.remove(&s) {
                if s > self.shown {
                    out.push((s, id));
                }
            }
        }
        self.contiguous = through;
        out.extend(self.advance());
        out
    }

    /// Our head as summaries, digests and reconciliation tell it: without
    /// its tip for a proven equivocator.
    fn head_as_told(&self, author: PeerId, eq: &BTreeSet<PeerId>) -> Option<Head> {
        let h = self.head(author)?;
        Some(if eq.contains(&author) { Head { tip: NO_TIP, ..h } } else { h })
    }

    fn head(&self, author: PeerId) -> Option<Head> {
        let max = self.max();
        (max > 0).then(|| Head { author, contiguous: self.contiguous, max, tip: self.tip.unwrap_or(NO_TIP) })
    }
}

pub(crate) use super::recon::Fingerprint;

/// The digest of a list of heads, computed from scratch (tests and docs:
/// equal to the incremental one).
pub fn digest_of(heads: &[Head]) -> [u8; 32] {
    let mut fp = Fingerprint::default();
    heads.iter().filter(|h| h.max > 0).for_each(|h| fp.add(h));
    fp.digest()
}

#[derive(Default, Debug)]
pub(crate) struct RoomState {
    pub authors: BTreeMap<PeerId, AuthorState>,
    /// Links this room pushes new messages to at once (the broadcast tree).
    pub eager: BTreeSet<LinkId>,
    /// Links this room only announces new messages to.
    pub lazy: BTreeSet<LinkId>,
    /// A message came from further than `Config::room_receipts_max_hops`:
    /// the room spans a crowd, and gets no receipts.
    pub far: bool,
    /// The room's shallow tree over direct links (protocol 3).
    pub tree: super::tree::Tree,
    /// Fingerprint of the heads, up to date except for `dirty` authors.
    fp: Fingerprint,
    /// The same per first nibble of the author id: the root's children in
    /// reconciliation, read without a pass over the room.
    level1: [Fingerprint; super::recon::BRANCH],
    /// Authors changed since `fp` was last brought up to date.
    dirty: BTreeSet<PeerId>,
    /// Heads changed so far: numbers each change, so that what a link was
    /// last told is one number per room, not a copy of every head.
    changes: u64,
}

impl RoomState {
    /// An author's state, for changing it (marks its head for the digest).
    pub fn author(&mut self, a: PeerId) -> &mut AuthorState {
        self.dirty.insert(a);
        self.authors.entry(a).or_default()
    }

    #[cfg(test)]
    pub fn heads(&self) -> Vec<Head> {
        let mut heads: Vec<Head> = self.authors.iter().filter_map(|(a, s)| s.head(*a)).collect();
        heads.sort_by_key(|h| h.author);
        heads
    }

    /// Equal digests mean equal holdings; see [`Fingerprint`].
    pub fn digest(&mut self, eq: &BTreeSet<PeerId>) -> [u8; 32] {
        self.settle(eq);
        self.fp.digest()
    }

    /// The change number now (see [`RoomState::heads_since`]).
    pub fn changes(&mut self, eq: &BTreeSet<PeerId>) -> u64 {
        self.settle(eq);
        self.changes
    }

    /// Brings the fingerprints and the change numbers up to date with the
    /// authors changed since the last call; reconciliation reads the room
    /// as a [`HeadSet`] after it. The heads of authors in `eq` (proven
    /// equivocators) count without their tip: two nodes that hold either of
    /// their two messages at one position agree, and reconcile nothing.
    pub fn settle(&mut self, eq: &BTreeSet<PeerId>) {
        for a in std::mem::take(&mut self.dirty) {
            let Some(s) = self.authors.get_mut(&a) else { continue };
            let new = s.head_as_told(a, eq).map(|h| HeadPos::of(&h));
            if new == s.counted {
                continue;
            }
            let nibble = Node::ROOT.child_of(&a);
            if let Some(old) = s.counted {
                self.fp.remove(&old.head(a));
                self.level1[nibble].remove(&old.head(a));
            }
            if let Some(new) = new {
                self.fp.add(&new.head(a));
                self.level1[nibble].add(&new.head(a));
            }
            s.counted = new;
            self.changes += 1;
            s.changed = self.changes;
        }
    }

    /// The heads that changed after change number `since` (0: all of them),
    /// by author, and the number to pass next time.
    pub fn heads_since(&mut self, since: u64, eq: &BTreeSet<PeerId>) -> (Vec<Head>, u64) {
        self.settle(eq);
        let heads = self
            .authors
            .iter()
            .filter(|(_, s)| s.changed > since)
            .filter_map(|(a, s)| s.head_as_told(*a, eq))
            .collect();
        (heads, self.changes)
    }

    pub fn make_eager(&mut self, link: LinkId) {
        self.lazy.remove(&link);
        self.eager.insert(link);
    }

    /// Moves `link` to the lazy set, unless it is one of the tree's links
    /// (those push whatever duplicates arrive). Whether it was eager.
    pub fn make_lazy(&mut self, link: LinkId) -> bool {
        if self.tree.pinned.contains(&link) {
            return false;
        }
        let was = self.eager.remove(&link);
        self.lazy.insert(link);
        was
    }

    pub fn drop_link(&mut self, link: LinkId) {
        self.eager.remove(&link);
        self.lazy.remove(&link);
        self.tree.drop_link(link);
    }

    /// Authors who posted here: receipts are only worth it in small rooms.
    pub fn members(&self) -> usize {
        self.authors.len()
    }
}

/// A settled room's heads, as counted in its fingerprints.
impl HeadSet for RoomState {
    fn under(&self, node: Node) -> Vec<Head> {
        let counted = |(a, s): (&PeerId, &AuthorState)| s.counted.map(|p| p.head(*a));
        self.authors.range(node.bounds()).filter_map(counted).collect()
    }

    fn kept_fingerprint(&self, node: Node) -> Option<Fingerprint> {
        match node.depth {
            0 => Some(self.fp),
            1 => Some(self.level1[node.path as usize]),
            _ => None,
        }
    }

    fn kept_children(&self, node: Node) -> Option<[Fingerprint; super::recon::BRANCH]> {
        (node.depth == 0).then_some(self.level1)
    }
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

    /// `rate` tokens an hour, at most `burst` saved up.
    pub fn per_hour((rate, burst): (u32, u32), now: u64) -> Self {
        Self { tokens: burst as f64, last_ms: now, rate: rate as f64 / 3600.0, burst: burst as f64 }
    }

    fn refill(&mut self, now: u64) {
        let elapsed = now.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.last_ms = self.last_ms.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
    }

    pub fn take(&mut self, now: u64) -> bool {
        self.take_n(1, now)
    }

    pub fn take_n(&mut self, n: u64, now: u64) -> bool {
        self.refill(now);
        if self.tokens >= n as f64 {
            self.tokens -= n as f64;
            true
        } else {
            false
        }
    }

    /// Whether `n` tokens are there (takes nothing; a charge may have
    /// left the bucket below zero, where even `n = 0` is not there).
    pub fn has(&mut self, n: u64, now: u64) -> bool {
        self.refill(now);
        self.tokens >= n as f64
    }

    /// Take `n` after the fact: the bucket may go below zero, and stays
    /// empty (`has(0)` fails) until it has refilled past it.
    pub fn charge(&mut self, n: u64, now: u64) {
        self.refill(now);
        self.tokens -= n as f64;
    }

    /// Give back what a reservation did not use.
    pub fn refund(&mut self, n: u64) {
        self.tokens = (self.tokens + n as f64).min(self.burst);
    }

    /// When `n` tokens will be there (now, if they are).
    pub fn ready_at(&self, n: u64) -> u64 {
        let short = n as f64 - self.tokens;
        if short <= 0.0 {
            self.last_ms
        } else {
            self.last_ms + (short / self.rate * 1000.0).ceil() as u64
        }
    }
}

/// What a peer's summaries said it holds in one room, and the fingerprint
/// of that, kept up to date claim by claim.
#[derive(Debug, Default)]
pub(crate) struct PeerView {
    pub heads: BTreeMap<PeerId, HeadPos>,
    fp: Fingerprint,
}

impl PeerView {
    /// Record a claim; `false` when it is a new author and `room_left` is 0.
    pub fn claim(&mut self, h: Head, room_left: usize) -> bool {
        match self.heads.get_mut(&h.author) {
            Some(old) => {
                self.fp.remove(&old.head(h.author));
                *old = HeadPos::of(&h);
            }
            None if room_left == 0 => return false,
            None => {
                self.heads.insert(h.author, HeadPos::of(&h));
            }
        }
        self.fp.add(&h);
        true
    }

    pub fn digest(&self) -> [u8; 32] {
        self.fp.digest()
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
    /// The protocol version of the peer's hello (0 before it).
    pub peer_version: u8,
    /// Its latest tree advert per room we share (at most one per room).
    pub trees: BTreeMap<RoomId, super::tree::Heard>,
    /// What the peer's summaries said it holds, per room.
    pub peer_heads: BTreeMap<RoomId, PeerView>,
    /// Claims over all rooms in `peer_heads` (capped: [`caps::MAX_CLAIMS_PER_LINK`]).
    pub claims: usize,
    /// The room's change number ([`RoomState::heads_since`]) as of the
    /// last summary we sent it: summaries after the first carry only the
    /// heads changed since.
    pub told: BTreeMap<RoomId, u64>,
    /// When we last sent it a full summary of a room on its request (one
    /// entry per room we share).
    pub full_sent: BTreeMap<RoomId, u64>,
    /// Wants that came back empty; not asked again until the next summary.
    pub exhausted: BTreeSet<(RoomId, PeerId)>,
    /// Chains whose seqs up to the mark it told us (`Gone`) it cannot serve.
    pub gone: BTreeMap<(RoomId, PeerId), u64>,
    /// Our wants in flight to it.
    pub wants_out: usize,
    /// Wants of ours it let time out since it last served one.
    pub strikes: u32,
    pub frames: TokenBucket,
    pub envelopes: TokenBucket,
    /// New authors it may still introduce.
    pub new_authors: TokenBucket,
    /// Bytes we may still serve it.
    pub serve: TokenBucket,
    /// Heads we may still read to answer its reconciliation.
    pub recon: TokenBucket,
    /// Its requests waiting for a load slot or for budget, oldest first.
    pub serve_queue: VecDeque<Load>,
    /// Reads of ours for it that the store has not answered yet.
    pub loads: Vec<Load>,
    /// Missing-message entries it created (capped: [`caps::MAX_MISSING_PER_LINK`]).
    pub missing: usize,
    /// Asks of it that went unanswered ([`caps::ANNOUNCER_STRIKES`]), and
    /// until when they count ([`caps::STRIKE_MEMORY_MS`]).
    pub unanswered: u32,
    pub struck_until: u64,
    /// When it last sent us envelopes or said it has none (`Push`, `Batch`,
    /// `Gone`): an ask it answered in any way gets no strike.
    pub heard_at: u64,
    pub refusals: RefusalWindow,
    /// Reported as misbehaving: the runtime is closing it.
    pub dropped: bool,
}

impl LinkState {
    /// Whether the link has timer work of its own: a hello to send again,
    /// refusals to report, or loads waiting for serving budget.
    pub fn needs_timer(&self) -> bool {
        !self.hello_acked || self.refusals.due_at().is_some() || !self.serve_queue.is_empty()
    }

    pub fn new(peer: PeerId, kind: LinkKind, cfg: &super::Config, now: u64) -> Self {
        let (fr, fb) = cfg.frame_rate;
        let (er, eb) = cfg.envelope_rate;
        LinkState {
            peer,
            kind,
            hello_received: false,
            hello_acked: false,
            hello_sent_at: now,
            peer_rooms: BTreeSet::new(),
            peer_relays: false,
            peer_powered: false,
            peer_version: 0,
            trees: BTreeMap::new(),
            peer_heads: BTreeMap::new(),
            claims: 0,
            told: BTreeMap::new(),
            full_sent: BTreeMap::new(),
            exhausted: BTreeSet::new(),
            gone: BTreeMap::new(),
            wants_out: 0,
            strikes: 0,
            frames: TokenBucket::new(fr, fb, now),
            envelopes: TokenBucket::new(er, eb, now),
            new_authors: TokenBucket::new(caps::NEW_AUTHORS_PER_SEC, caps::NEW_AUTHORS_BURST, now),
            serve: TokenBucket::new(caps::SERVE_BYTES_PER_SEC, caps::SERVE_BYTES_BURST, now),
            recon: TokenBucket::new(caps::RECON_READS_PER_SEC, caps::RECON_READS_BURST, now),
            serve_queue: VecDeque::new(),
            loads: Vec::new(),
            missing: 0,
            unanswered: 0,
            struck_until: 0,
            heard_at: 0,
            refusals: RefusalWindow::new(now),
            dropped: false,
        }
    }

    pub fn peer_head(&self, room: &RoomId, author: &PeerId) -> Option<Head> {
        self.peer_heads.get(room).and_then(|v| v.heads.get(author)).map(|p| p.head(*author))
    }

    /// Digest of what we believe the peer holds in `room`; it matches the
    /// peer's own digest unless a summary of theirs was lost.
    pub fn view_digest(&self, room: &RoomId) -> [u8; 32] {
        match self.peer_heads.get(room) {
            Some(v) => v.digest(),
            None => Fingerprint::default().digest(),
        }
    }

    /// Asked last: it let our requests time out.
    /// Asked first when it announces: fewer than
    /// [`caps::ANNOUNCER_STRIKES`] strikes, or none lately.
    pub fn trusted(&self, now: u64) -> bool {
        self.unanswered < caps::ANNOUNCER_STRIKES || now >= self.struck_until
    }

    /// An ask made at `asked_at` that nothing from it answered: a strike.
    pub fn strike(&mut self, asked_at: u64, now: u64) {
        if self.heard_at >= asked_at {
            return;
        }
        if now >= self.struck_until {
            self.unanswered = 0;
        }
        self.unanswered = self.unanswered.saturating_add(1);
        self.struck_until = now + caps::STRIKE_MEMORY_MS;
    }

    pub fn demoted(&self) -> bool {
        self.strikes >= caps::STRIKES_TO_DEMOTE
    }
}

/// A map that forgets its oldest entries beyond a capacity.
///
/// On a hash map: a relay's engine looks up and inserts here for every
/// envelope it commits (the `recent` ids, keyed by room, author and seq),
/// and a B-tree of up to 65,536 such keys spent ~2.5 % of a relay instance's
/// CPU comparing room names. The hash map's per-process order never shows:
/// this type has no iteration, and what it forgets goes by `order`. It
/// costs more memory when full: 65,536 such ids with their order, 22 MB
/// against the B-tree's 19 (counted by an allocator, after 3x churn).
#[derive(Debug)]
pub(crate) struct BoundedMap<K, V> {
    #[allow(clippy::disallowed_types)] // never iterated; see above
    map: std::collections::HashMap<K, V>,
    order: VecDeque<K>,
    cap: usize,
}

impl<K: std::hash::Hash + Eq + Clone, V> BoundedMap<K, V> {
    pub fn new(cap: usize) -> Self {
        Self { map: Default::default(), order: VecDeque::new(), cap }
    }
    /// Room for all `cap` entries from the start: it never grows, so never
    /// pauses to move every entry to a larger table (which hashes every key
    /// again). For a map that fills soon (a relay's recent ids); a sparse
    /// one spreads its few entries over all its pages. Room for twice
    /// `cap`: the hash map clears the marks its forgotten entries leave by
    /// rehashing in place while it is at most half full, and by moving to a
    /// table twice the size past that. It costs more memory than one made
    /// with `new` and grown: the relay's 65,536 recent ids take ~31 MB
    /// (262,144 slots of 96 bytes and the order) against ~22 MB.
    #[allow(clippy::disallowed_types)] // see the type's doc
    pub fn allocated(cap: usize) -> Self {
        Self {
            map: std::collections::HashMap::with_capacity(2 * cap + 1),
            order: VecDeque::with_capacity(cap + 1),
            cap,
        }
    }
    #[cfg(test)]
    pub fn room(&self) -> (usize, usize) {
        (self.map.capacity(), self.order.capacity())
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
    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        self.map.get_mut(k)
    }
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// The entry of `k`, inserted with `make` if there is none (which may
    /// forget the oldest).
    pub fn get_or_insert_with(&mut self, k: K, make: impl FnOnce() -> V) -> &mut V {
        if !self.map.contains_key(&k) {
            self.insert(k.clone(), make());
        }
        self.map.get_mut(&k).expect("just inserted, and the newest is never the one forgotten")
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
    fn skipping_a_gone_run_shows_what_is_held_above_it() {
        let id = |b| MessageId::from_bytes([b; 32]);
        let mut a = AuthorState { contiguous: 2, ..Default::default() };
        a.above.insert(6, id(6));
        a.above.insert(7, id(7));
        a.above.insert(9, id(9));
        assert_eq!(a.skip_through(5), vec![(6, id(6)), (7, id(7))]);
        assert_eq!(a.contiguous, 7);
        assert_eq!(a.skip_through(3), vec![], "never goes back");
    }

    #[test]
    fn bucket_refills_at_its_rate_up_to_burst() {
        let mut b = TokenBucket::new(10, 2, 0);
        assert!(b.take(0) && b.take(0));
        assert!(!b.take(0));
        assert!(!b.take(50));
        assert!(b.take(100));
        assert!(b.take(10_000) && b.take(10_000) && !b.take(10_000));
        let mut bytes = TokenBucket::new(1000, 4000, 0);
        assert!(bytes.take_n(4000, 0) && !bytes.take_n(1, 0));
        assert_eq!(bytes.ready_at(500), 500);
        bytes.refund(300);
        assert!(bytes.take_n(300, 0));
    }

    #[test]
    fn incremental_fingerprints_equal_the_fingerprint_from_scratch() {
        let head = |a: u8, c, m| Head { author: PeerId::from_bytes([a; 32]), contiguous: c, max: m, tip: NO_TIP };
        let mut room = RoomState::default();
        let mut view = PeerView::default();
        for (a, c, m) in [(1, 3, 3), (2, 1, 4), (3, 7, 7)] {
            let s = room.author(PeerId::from_bytes([a; 32]));
            s.contiguous = c;
            if m > c {
                s.above.insert(m, NO_TIP);
            }
            room.digest(&BTreeSet::new());
            assert!(view.claim(head(a, c, m), 10));
        }
        // Change one, in both.
        room.author(PeerId::from_bytes([2; 32])).contiguous = 4;
        room.author(PeerId::from_bytes([2; 32])).above.clear();
        assert!(view.claim(head(2, 4, 4), 0), "updates need no room");
        let scratch = digest_of(&room.heads());
        assert_eq!(room.digest(&BTreeSet::new()), scratch);
        assert_eq!(view.digest(), scratch);
        assert!(!view.claim(head(9, 1, 1), 0), "a new author needs room");
    }

    /// The reading budget's figure (`caps::RECON_READS_PER_SEC`): ten
    /// differences in a room of 100,000 authors cost each side tens of
    /// thousands of heads read, not the room, as the kept fingerprints of
    /// the root and its children are read for free.
    #[test]
    fn reconciling_ten_differences_in_a_big_room_reads_a_fraction_of_it() {
        let n = 100_000u32;
        let none = BTreeSet::new();
        let mut rooms = [RoomState::default(), RoomState::default()];
        for i in 0..n {
            let a = PeerId::from_bytes(*blake3::hash(&i.to_le_bytes()).as_bytes());
            for (k, room) in rooms.iter_mut().enumerate() {
                let s = room.author(a);
                s.contiguous = 5 - u64::from(k == 1 && i % (n / 10) == 0);
                s.tip = Some(MessageId::from_bytes([s.contiguous as u8; 32]));
            }
        }
        let [x, y] = &mut rooms;
        x.settle(&none);
        y.settle(&none);
        let ex = super::super::recon::exchange(&RoomId::festival(), &*x, &*y);
        assert_eq!((ex.to_a.len(), ex.to_b.len()), (10, 10));
        // Measured: 67,325 and 67,111 (a sixteenth of the room per
        // differing branch at the second level, 10 branches over 7 or 8
        // of the 16).
        assert!(ex.read.0 < 75_000 && ex.read.1 < 75_000, "read {:?} of {n}", ex.read);
    }

    #[test]
    fn a_proven_equivocators_heads_count_without_their_tip() {
        let (a, b) = (PeerId::from_bytes([1; 32]), PeerId::from_bytes([2; 32]));
        // Two nodes each hold one of a's two messages at seq 3.
        let mut rooms = [RoomState::default(), RoomState::default()];
        for (i, room) in rooms.iter_mut().enumerate() {
            room.author(a).contiguous = 3;
            room.author(a).tip = Some(MessageId::from_bytes([10 + i as u8; 32]));
            room.author(b).contiguous = 1;
        }
        let none = BTreeSet::new();
        let [x, y] = &mut rooms;
        assert_ne!(x.digest(&none), y.digest(&none), "they differ while a is not known to equivocate");
        let eq: BTreeSet<PeerId> = [a].into();
        x.author(a);
        y.author(a);
        assert_eq!(x.digest(&eq), y.digest(&eq), "and agree once it is");
        let (heads, _) = x.heads_since(0, &eq);
        assert_eq!(heads.iter().find(|h| h.author == a).map(|h| h.tip), Some(NO_TIP));
    }
}

#[cfg(test)]
mod bounded_map_tests {
    use super::BoundedMap;

    /// The caps built on it (push budgets, held-back ids, positions asked
    /// unremembered) hold because it never keeps more than its capacity,
    /// forgetting the oldest first.
    #[test]
    fn it_keeps_at_most_its_capacity_and_forgets_the_oldest() {
        let mut m = BoundedMap::new(3);
        for k in 0..10u32 {
            m.insert(k, k * 10);
            assert!(m.len() <= 3);
        }
        assert_eq!((m.get(&6), m.get(&7), m.get(&9)), (None, Some(&70), Some(&90)));
        // A key inserted again takes the new value and adds nothing.
        m.insert(9, 1);
        assert_eq!((m.len(), m.get(&9)), (3, Some(&1)));
    }

    /// `allocated` is a promise of no growth: it fills to its capacity in
    /// the room it started with, and never has more (forgetting past it).
    #[test]
    fn an_allocated_map_never_grows() {
        let mut m = BoundedMap::allocated(10_000);
        let room = m.room();
        assert!(room.0 > 10_000 && room.1 > 10_000, "{room:?}");
        for k in 0..10_000u32 {
            m.insert(k, k);
        }
        assert_eq!(m.room(), room, "filled without growing");
        for k in 10_000..40_000u32 {
            m.insert(k, k);
            assert!(m.room().0 <= room.0 && m.room().1 == room.1, "{:?} after {k}", m.room());
        }
        assert_eq!(m.len(), 10_000);
        // One made with `new` grows as it fills.
        let mut grown = BoundedMap::new(10_000);
        let small = grown.room();
        for k in 0..10_000u32 {
            grown.insert(k, k);
        }
        assert!(grown.room().0 > small.0);
    }
}
