//! Range-based reconciliation of a room's heads (protocol 4): two nodes find
//! the heads they hold differently at a cost that grows with the number of
//! differences, not with the size of the room.
//!
//! The set reconciled is a room's heads, one per author ([`Head`]: highest
//! contiguous seq, highest seq, the id at that seq). Authors are placed in a
//! 16-ary trie by the nibbles of their id (an Ed25519 key: uniformly spread,
//! and a key whose first nibbles are chosen costs 2^(4·nibbles) tries). A
//! trie [`Node`] is a prefix of up to [`MAX_DEPTH`] nibbles; its
//! [`Fingerprint`] is the sum of a BLAKE3 term per head under it, so equal
//! fingerprints mean equal heads below, and a node's fingerprint is cheap to
//! keep up to date as heads change.
//!
//! An exchange is stateless: every [`Part`] of a `Recon` frame says what
//! the sender holds under one node, and the answer to each is computed from
//! it and the receiver's own heads alone ([`answer`]):
//!
//! - `Fingerprint` of a node: equal to ours, done. Else we describe our
//!   side of it: a `Split` (the fingerprints of its 16 children) when we
//!   hold more than [`LEAF`] heads there, else `Hashes` (a short hash of
//!   each of our heads there).
//! - `Split`: each child compared as above; a child the sender holds
//!   nothing under gets our heads there outright, one where we hold
//!   nothing gets an empty `Hashes`.
//! - `Hashes`: the sender's whole list for the node. Our heads whose hash
//!   is not in it go back as heads; hashes we do not hold go back as a
//!   `Need`.
//! - `Need`: our heads with those hashes.
//!
//! Heads travel in ordinary `Summary` frames, which the receiver merges
//! into what it knows of the sender and asks for what it lacks. Each node
//! is at most [`MAX_DEPTH`] levels deep, so an exchange ends; two nodes in
//! sync exchange one fingerprint; d differing heads in a room of n cost
//! about d·log16(n) splits (`festival-bench sync`, docs/benchmarks.md).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use serde::{Deserialize, Serialize};

use crate::frame::{Frame, Head, Recon, Summary, MAX_SUMMARY_HEADS};
use crate::ids::{PeerId, RoomId};

/// Children of a trie node: one per nibble.
pub const BRANCH: usize = 16;
/// Deepest trie node: 16 nibbles, the first 8 bytes of an author id. A
/// node this deep is always listed (two keys sharing 64 bits cost 2^64).
pub const MAX_DEPTH: u8 = 16;
/// A node where we hold at most this many heads is listed by hash rather
/// than split: below ~2·[`BRANCH`] a list of 8-byte hashes costs no more
/// than 16 fingerprints and ends the exchange a round sooner.
pub const LEAF: usize = 32;
/// Parts in one `Recon` frame.
pub const MAX_PARTS: usize = 256;
/// Hashes in one `Hashes` or `Need` part: a node is listed only when it
/// holds at most [`LEAF`] heads (twice that leaves room, never needed).
pub const MAX_HASHES: usize = 2 * LEAF;

/// A short fingerprint or head hash: 8 bytes of BLAKE3.
pub type Short = [u8; 8];

/// A trie node: the authors whose id starts with the `depth` nibbles of
/// `path` (right-aligned: the node `a3` is depth 2, path 0xa3). The root
/// is depth 0, path 0: every author.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct Node {
    pub depth: u8,
    pub path: u64,
}

impl Node {
    pub const ROOT: Node = Node { depth: 0, path: 0 };

    /// At most [`MAX_DEPTH`] nibbles, and a path that fits in them.
    pub fn valid(self) -> bool {
        self.depth <= MAX_DEPTH && (self.depth == MAX_DEPTH || self.path >> (4 * self.depth) == 0)
    }

    /// The `i`th child (`i < 16`).
    pub fn child(self, i: usize) -> Node {
        debug_assert!(self.depth < MAX_DEPTH && i < BRANCH);
        Node { depth: self.depth + 1, path: (self.path << 4) | i as u64 }
    }

    fn prefix(a: &PeerId) -> u64 {
        u64::from_be_bytes(a.as_bytes()[..8].try_into().expect("8 bytes"))
    }

    /// Which child of this node `a` falls under (`a` must be under it).
    pub fn child_of(self, a: &PeerId) -> usize {
        debug_assert!(self.depth < MAX_DEPTH);
        ((Self::prefix(a) >> (60 - 4 * self.depth as u32)) & 0xf) as usize
    }

    pub fn contains(self, a: &PeerId) -> bool {
        self.depth == 0 || Self::prefix(a) >> (64 - 4 * self.depth as u32) == self.path
    }

    /// The author ids under this node, as bounds of a `BTreeMap` range
    /// (ids order as their bytes).
    pub fn bounds(self) -> (Bound<PeerId>, Bound<PeerId>) {
        if self.depth == 0 {
            return (Bound::Unbounded, Bound::Unbounded);
        }
        let shift = 64 - 4 * self.depth as u32;
        let id = |p: u64| {
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&p.to_be_bytes());
            PeerId::from_bytes(b)
        };
        let low = self.path << shift;
        let last = if self.depth == MAX_DEPTH { self.path == u64::MAX } else { self.path + 1 == 1 << (4 * self.depth) };
        // The last node of its depth runs to the end of the id space.
        let high = if last { Bound::Unbounded } else { Bound::Excluded(id((self.path + 1) << shift)) };
        (Bound::Included(id(low)), high)
    }
}

/// Whether no node is another's or under another: the ranges of author
/// prefixes they cover do not overlap.
pub fn disjoint(nodes: impl Iterator<Item = Node>) -> bool {
    let mut spans: Vec<(u128, u128)> = nodes
        .map(|n| {
            let width = 1u128 << (64 - 4 * u32::from(n.depth.min(MAX_DEPTH)));
            let low = if n.depth == 0 { 0 } else { u128::from(n.path) * width };
            (low, low + width)
        })
        .collect();
    spans.sort_unstable();
    spans.windows(2).all(|w| w[0].1 <= w[1].0)
}

/// An order-independent fingerprint of a set of heads that can be updated
/// one head at a time: lane-wise sums (mod 2^64) of BLAKE3 over each head,
/// and their count. Adding and removing a head are O(1), so neither a
/// room's fingerprint nor a view of a peer's is ever recomputed whole.
/// What goes on the wire is a hash of the sums: finding heads whose terms
/// add up to a chosen sum (Wagner's k-sum) does not forge it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fingerprint {
    lanes: [u64; 4],
    count: u64,
}

/// BLAKE3 of one head, as four lanes.
pub fn term(h: &Head) -> [u64; 4] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(h.author.as_bytes());
    hasher.update(&h.contiguous.to_le_bytes());
    hasher.update(&h.max.to_le_bytes());
    hasher.update(h.tip.as_bytes());
    let d = hasher.finalize();
    let b = d.as_bytes();
    std::array::from_fn(|i| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes")))
}

/// A head's short hash in `Hashes` and `Need` parts: its term's first lane.
pub fn short_hash(h: &Head) -> Short {
    term(h)[0].to_le_bytes()
}

impl Fingerprint {
    pub fn add(&mut self, h: &Head) {
        self.add_term(term(h));
    }

    fn add_term(&mut self, t: [u64; 4]) {
        for (l, x) in self.lanes.iter_mut().zip(t) {
            *l = l.wrapping_add(x);
        }
        self.count += 1;
    }

    pub fn remove(&mut self, h: &Head) {
        for (l, x) in self.lanes.iter_mut().zip(term(h)) {
            *l = l.wrapping_sub(x);
        }
        self.count -= 1;
    }

    /// Heads counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The 32 bytes a `Digest` frame carries (protocol 2 and 3).
    pub fn digest(&self) -> [u8; 32] {
        self.hashed(b"festival-chat/digest/v2\0")
    }

    /// The 8 bytes a `Recon` frame carries for a node.
    pub fn short(&self) -> Short {
        let d = self.hashed(b"festival-chat/recon/v4\0");
        d[..8].try_into().expect("8 bytes")
    }

    fn hashed(&self, domain: &[u8]) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(domain);
        for l in self.lanes {
            h.update(&l.to_le_bytes());
        }
        h.update(&self.count.to_le_bytes());
        *h.finalize().as_bytes()
    }
}

/// The short fingerprint of no heads at all: a node the sender holds
/// nothing under.
pub fn empty() -> Short {
    Fingerprint::default().short()
}

/// What one `Recon` part says about the sender's heads under a node.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Part {
    /// The fingerprint of everything the sender holds under `node`.
    Fingerprint { node: Node, fp: Short },
    /// The fingerprints of `node`'s children: bit `i` of `present` is set
    /// when the sender holds something under child `i`, and `fps` has one
    /// fingerprint per set bit, in order.
    Split { node: Node, present: u16, fps: Vec<Short> },
    /// The short hash of every head the sender holds under `node`, in
    /// author order (empty: it holds nothing there).
    Hashes { node: Node, hashes: Vec<Short> },
    /// After the receiver's `Hashes` for `node`: "send me your heads with
    /// these hashes; I do not hold them as they are".
    Need { node: Node, hashes: Vec<Short> },
}

impl Part {
    pub fn node(&self) -> Node {
        match self {
            Part::Fingerprint { node, .. }
            | Part::Split { node, .. }
            | Part::Hashes { node, .. }
            | Part::Need { node, .. } => *node,
        }
    }

    /// Whether it keeps the bounds an honest sender keeps.
    pub fn valid(&self) -> bool {
        let node = self.node();
        node.valid()
            && match self {
                Part::Fingerprint { .. } => true,
                Part::Split { node, present, fps } => {
                    node.depth < MAX_DEPTH && fps.len() == present.count_ones() as usize
                }
                Part::Hashes { hashes, .. } | Part::Need { hashes, .. } => hashes.len() <= MAX_HASHES,
            }
    }
}

/// One side's heads, as reconciliation reads them.
pub trait HeadSet {
    /// Every head whose author is under `node`, in author order.
    fn under(&self, node: Node) -> Vec<Head>;

    /// The fingerprint of the heads under `node`, when the set keeps it up
    /// to date (no pass over them); `None`: computed from [`HeadSet::under`].
    fn kept_fingerprint(&self, _node: Node) -> Option<Fingerprint> {
        None
    }

    /// The fingerprints of `node`'s 16 children, when kept up to date.
    fn kept_children(&self, _node: Node) -> Option<[Fingerprint; BRANCH]> {
        None
    }
}

/// The fingerprint of the heads under `node`, and the heads read for it.
fn fingerprint_of(set: &impl HeadSet, node: Node) -> (Fingerprint, usize) {
    if let Some(fp) = set.kept_fingerprint(node) {
        return (fp, 0);
    }
    let mut fp = Fingerprint::default();
    set.under(node).iter().for_each(|h| fp.add(h));
    (fp, fp.count as usize)
}

/// The fingerprints of `node`'s children (`node` above [`MAX_DEPTH`]), and
/// the heads read for them.
fn children_of(set: &impl HeadSet, node: Node) -> ([Fingerprint; BRANCH], usize) {
    if let Some(children) = set.kept_children(node) {
        return (children, 0);
    }
    let mut out = [Fingerprint::default(); BRANCH];
    let heads = set.under(node);
    for h in &heads {
        out[node.child_of(&h.author)].add(h);
    }
    (out, heads.len())
}

/// Heads by author: the tests' and the benchmark's set.
impl HeadSet for BTreeMap<PeerId, Head> {
    fn under(&self, node: Node) -> Vec<Head> {
        self.range(node.bounds()).map(|(_, h)| *h).collect()
    }
}

/// The first part of an exchange: our fingerprint of the whole room.
pub fn start(set: &impl HeadSet) -> Part {
    Part::Fingerprint { node: Node::ROOT, fp: fingerprint_of(set, Node::ROOT).0.short() }
}

/// What to send back for a `Recon` frame's parts.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Answer {
    /// Parts of the `Recon` frame(s) in answer (none: this exchange ends).
    pub parts: Vec<Part>,
    /// Our heads the sender lacks or holds otherwise: sent as `Summary`.
    pub heads: Vec<Head>,
    /// Heads read to compute it: what the answer cost us.
    pub read: usize,
}

/// Answers `parts` from `set` (see the module docs): parts about disjoint
/// nodes, as the frame decoder checks ([`disjoint`]). Invalid parts are
/// skipped (the decoder refuses them first).
pub fn answer(set: &impl HeadSet, parts: &[Part]) -> Answer {
    let mut a = Answer::default();
    for part in parts.iter().filter(|p| p.valid()) {
        match part {
            Part::Fingerprint { node, fp } => {
                let (mine, read) = fingerprint_of(set, *node);
                a.read += read;
                if mine.short() == *fp {
                    continue;
                }
                if *fp == empty() {
                    a.give_all(set, *node);
                } else {
                    a.describe(set, *node, mine.count);
                }
            }
            Part::Split { node, present, fps } => {
                let (mine, read) = children_of(set, *node);
                a.read += read;
                let mut theirs = fps.iter();
                for (i, m) in mine.iter().enumerate() {
                    let child = node.child(i);
                    let fp = if present & (1 << i) != 0 { theirs.next().copied() } else { None };
                    match fp {
                        None if m.count == 0 => {}
                        None => a.give_all(set, child),
                        Some(f) if f == m.short() => {}
                        Some(_) => a.describe(set, child, m.count),
                    }
                }
            }
            Part::Hashes { node, hashes } => {
                let theirs: BTreeSet<Short> = hashes.iter().copied().collect();
                let mine = set.under(*node);
                a.read += mine.len();
                let mut held = BTreeSet::new();
                for h in mine {
                    let s = short_hash(&h);
                    held.insert(s);
                    if !theirs.contains(&s) {
                        a.heads.push(h);
                    }
                }
                let need: Vec<Short> = hashes.iter().filter(|s| !held.contains(*s)).copied().collect();
                if !need.is_empty() {
                    a.parts.push(Part::Need { node: *node, hashes: need });
                }
            }
            Part::Need { node, hashes } => {
                let want: BTreeSet<&Short> = hashes.iter().collect();
                let mine = set.under(*node);
                a.read += mine.len();
                a.heads.extend(mine.into_iter().filter(|h| want.contains(&short_hash(h))));
            }
        }
    }
    a
}

/// The frames that carry an answer: its parts in `Recon` frames, its heads
/// in summaries (which the peer merges).
pub fn frames(room: &RoomId, answer: &Answer) -> Vec<Frame> {
    let recons =
        answer.parts.chunks(MAX_PARTS).map(|parts| Frame::Recon(Recon { room: room.clone(), parts: parts.to_vec() }));
    let summaries = answer
        .heads
        .chunks(MAX_SUMMARY_HEADS)
        .map(|heads| Frame::Summary(Summary { room: room.clone(), heads: heads.to_vec(), reply: false }));
    recons.chain(summaries).collect()
}

/// A whole exchange between two sets, as two nodes run it over a link:
/// what it cost and what each side learned.
#[derive(Debug, Default)]
pub struct Exchange {
    /// Encoded frames, both ways (version byte included).
    pub bytes: usize,
    pub frames: usize,
    /// Sends one way, then the other, until one side has nothing to add:
    /// `(flights + 1) / 2` round trips.
    pub flights: usize,
    /// Heads `a` received from `b`, and `b` from `a`, in order.
    pub to_a: Vec<Head>,
    pub to_b: Vec<Head>,
    /// Heads each side read to answer ([`Answer::read`]): `a`'s, `b`'s.
    pub read: (usize, usize),
}

/// Runs an exchange that `a` starts (`a` sends its fingerprint of the
/// room; each side answers what the other sent) through the codec, until
/// an answer is empty. The benchmark's and the property tests' driver:
/// the same functions and frames a node uses.
pub fn exchange(room: &RoomId, a: &impl HeadSet, b: &impl HeadSet) -> Exchange {
    let mut x = Exchange::default();
    let mut parts = vec![start(a)];
    let first = Frame::Recon(Recon { room: room.clone(), parts: parts.clone() }).encode();
    x.bytes += first.len();
    x.frames += 1;
    x.flights += 1;
    for turn in 0.. {
        // `b` answers first (what `a` sent), then `a`, and so on.
        let (ans, heads_to) =
            if turn % 2 == 0 { (answer(b, &parts), &mut x.to_a) } else { (answer(a, &parts), &mut x.to_b) };
        if turn % 2 == 0 {
            x.read.1 += ans.read;
        } else {
            x.read.0 += ans.read;
        }
        if ans.parts.is_empty() && ans.heads.is_empty() {
            break;
        }
        parts.clear();
        for f in frames(room, &ans) {
            let bytes = f.encode();
            x.bytes += bytes.len();
            x.frames += 1;
            match Frame::decode(&bytes).expect("our own frames decode") {
                Frame::Recon(r) => parts.extend(r.parts),
                Frame::Summary(s) => heads_to.extend(s.heads),
                other => unreachable!("{other:?}"),
            }
        }
        x.flights += 1;
        if parts.is_empty() {
            break;
        }
    }
    x
}

impl Answer {
    /// The sender holds nothing under `node`: all of ours.
    fn give_all(&mut self, set: &impl HeadSet, node: Node) {
        let mine = set.under(node);
        self.read += mine.len();
        self.heads.extend(mine);
    }

    /// Our side of a node whose fingerprints differ: its children's
    /// fingerprints, or the list of our heads there when short (or at the
    /// deepest level).
    fn describe(&mut self, set: &impl HeadSet, node: Node, count: u64) {
        if count as usize > LEAF && node.depth < MAX_DEPTH {
            let (children, read) = children_of(set, node);
            self.read += read;
            let mut present = 0u16;
            let mut fps = Vec::new();
            for (i, f) in children.iter().enumerate().filter(|(_, f)| f.count > 0) {
                present |= 1 << i;
                fps.push(f.short());
            }
            self.parts.push(Part::Split { node, present, fps });
        } else {
            let mine = set.under(node);
            self.read += mine.len();
            // Only at the deepest level can a node hold more than LEAF:
            // authors sharing their first 8 bytes, each costing 2^64
            // tries. Those beyond the list are not reconciled.
            let hashes = mine.iter().take(MAX_HASHES).map(short_hash).collect();
            self.parts.push(Part::Hashes { node, hashes });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(first: [u8; 8]) -> PeerId {
        let mut b = [0xee; 32];
        b[..8].copy_from_slice(&first);
        PeerId::from_bytes(b)
    }

    #[test]
    fn nodes_hold_exactly_the_ids_with_their_prefix() {
        let a = id([0xa3, 0x71, 0, 0, 0, 0, 0, 0]);
        let node = Node { depth: 2, path: 0xa3 };
        assert!(node.valid() && node.contains(&a));
        assert!(!Node { depth: 2, path: 0xa4 }.contains(&a));
        assert_eq!(node.child_of(&a), 7);
        assert_eq!(node.child(7), Node { depth: 3, path: 0xa37 });
        assert!(node.child(7).contains(&a));
        assert!(!Node { depth: 2, path: 0x1a3 }.valid(), "path wider than its depth");
        assert!(!Node { depth: 17, path: 0 }.valid());
        let deepest = Node { depth: 16, path: u64::from_be_bytes([0xa3, 0x71, 0, 0, 0, 0, 0, 0]) };
        assert!(deepest.valid() && deepest.contains(&a));
        // Bounds agree with `contains`, including at both ends of the space.
        let ids = [
            a,
            id([0; 8]),
            id([0xff; 8]),
            id([0xa3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            id([0xa4, 0, 0, 0, 0, 0, 0, 0]),
            PeerId::from_bytes([0xff; 32]),
            PeerId::from_bytes([0; 32]),
        ];
        let nodes = [
            Node::ROOT,
            node,
            deepest,
            Node { depth: 1, path: 0xf },
            Node { depth: 1, path: 0 },
            Node { depth: 16, path: u64::MAX },
            Node { depth: 3, path: 0xfff },
        ];
        for n in nodes {
            for x in ids {
                assert_eq!(n.contains(&x), std::ops::RangeBounds::contains(&n.bounds(), &x), "{n:?} {x:?}");
            }
        }
    }

    #[test]
    fn equal_sets_answer_nothing_and_differing_ones_split() {
        let head = |i: u8| {
            let author = PeerId::from_bytes(*blake3::hash(&[i]).as_bytes());
            (author, Head { author, contiguous: 1, max: 1, tip: crate::ids::MessageId::from_bytes([i; 32]) })
        };
        let set: BTreeMap<PeerId, Head> = (0..100).map(head).collect();
        assert_eq!(answer(&set, &[start(&set)]).parts, vec![]);
        let mut other = set.clone();
        other.remove(&head(5).0);
        let a = answer(&set, &[start(&other)]);
        assert!(matches!(a.parts.as_slice(), [Part::Split { node: Node::ROOT, .. }]), "{a:?}");
        // The sender holds nothing: it gets every head at once.
        let empty = BTreeMap::<PeerId, Head>::new();
        assert_eq!(answer(&set, &[start(&empty)]).heads.len(), 100);
    }
}
