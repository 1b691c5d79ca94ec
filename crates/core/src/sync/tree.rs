//! A shallow broadcast tree per room (protocol 3).
//!
//! Its pushes carry others' messages while the crowd is busy (and with
//! `Config::live_pull` off); a quiet node fetches them live instead (the
//! first announcer is asked, see `sync`), which gives shorter paths than
//! any one tree can. The tree is kept up either way, so a crowd that turns
//! busy has it at once; a made-up root (below) is noticed only while busy,
//! when the tree carries something.
//!
//! Plumtree alone builds one tree per room from the order in which pushes
//! arrive: a duplicate prunes its link, a graft after a loss adds one. With
//! many authors that tree drifts towards a random spanning tree, whose paths
//! are long (`festival-bench sim`: at 1,000 nodes the shortest paths over
//! the mesh were 6 hops at p99 and the tree's 23). So the nodes of a room
//! agree on a root and each keeps the link to its neighbour nearest that
//! root as its parent, as a spanning-tree protocol does: the tree is a
//! breadth-first one, and a path between any two nodes is at most the sum
//! of their depths.
//!
//! - Root: the best-ranked node the room's direct links lead to, by (on
//!   mains power, id). Every node starts as its own root; better ranks
//!   spread by the adverts.
//! - The root beacons every [`TREE_BEACON_MS`] (its epoch: beacons since
//!   the Unix epoch by its clock). Each node takes as parent the neighbour
//!   that advertises the best root at the least depth (among adverts of
//!   the root's latest or previous epoch, never a child's), and tells every
//!   neighbour its root, its parent's epoch and its depth, and whether it
//!   is that neighbour's child: a loop left behind by a lost link gets no
//!   newer epoch and goes stale. A root whose epoch does not advance for
//!   [`TREE_STALE_MS`] is gone: its adverts are ignored until a newer epoch.
//! - The tree's links (parent and children) are the room's eager links and
//!   are not pruned by duplicates; other direct links to peers that speak
//!   the tree are lazy (a graft makes one eager until a duplicate prunes it,
//!   as in Plumtree). Links to peers of protocol 2 and relay links keep
//!   plain Plumtree.
//!
//! The tree only chooses which links push: every message still goes out as
//! an announcement (`IHave`) on the other links, and a node that is not
//! pushed a message grafts it. A neighbour that lies about the root (a
//! made-up best rank, to draw the tree through itself and drop pushes) costs
//! latency (the graft timeout per cut), not delivery, and only until its
//! children notice that their messages come by grafts, not from it
//! ([`TREE_PARENT_MISSES`]) and pass it over. A root's rank is a claim (an
//! id can be ground, mains power is said, not shown): a node that outranks
//! everyone and forwards honestly is simply the root.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::frame::{Frame, TreeAdvert, MAX_TREE_DEPTH};
use crate::ids::{LinkId, PeerId, RoomId};
use crate::policy::PowerState;

use super::{LinkKind, Millis, Node, Output};

/// How often a root beacons (a new epoch), and so how often every node
/// tells its neighbours where it stands.
pub const TREE_BEACON_MS: Millis = 5_000;
/// A root whose epoch has not advanced for this long is gone.
pub const TREE_STALE_MS: Millis = 12_000;
/// A parent that pushed the first copy of none of this many new messages,
/// while at least an eighth of them came by grafts or by links outside the
/// tree, is not taken as parent for [`TREE_SHUN_MS`]: a neighbour that
/// draws the tree through itself with a made-up root and then pushes
/// nothing is routed around. An honest parent pushes everything that does
/// not come up our own side of the tree first, but for the one push in
/// twenty a very lossy link loses. (At 8 or 16 with messages from children
/// not counted, honest parents were passed over in the attack bench's
/// baseline, or the hijack's neighbours never noticed it: their children
/// grafted first.)
pub const TREE_PARENT_MISSES: u32 = 32;
/// How long a parent that did not push is passed over.
pub const TREE_SHUN_MS: Millis = 120_000;
/// Links passed over at once per room (a node has a few links; the oldest
/// is forgotten beyond this).
const MAX_SHUNNED: usize = 64;
/// Silent roots remembered per room: an advert can name any root, so the
/// list is bounded; the longest silent is forgotten first.
const MAX_DEAD_ROOTS: usize = 16;
/// The shortest time between two adverts to one link (also when one is
/// repeated because the two ends disagree on the tree).
pub const TREE_RESEND_MS: Millis = 500;
/// How far ahead of our own clock's beacon count an advert's epoch may be
/// (the festival's clock skew allowance, 10 minutes, and two beacons):
/// further is a forgery that would make the real root look dead.
const MAX_EPOCH_AHEAD: u32 = (600_000 / TREE_BEACON_MS as u32) + 2;
/// The first protocol version that speaks the tree.
pub const TREE_VERSION: u8 = 3;

/// One room's tree, as this node sees it.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    /// The root we follow and its newest epoch we heard, with when it
    /// arrived; `None`: we are the root.
    following: Option<Following>,
    /// Roots that went silent, with their last epoch, in the order they
    /// went ([`MAX_DEAD_ROOTS`]; one slot let a root two deaths back come
    /// back to life from adverts still going round a loop of nodes).
    dead: VecDeque<(PeerId, u32)>,
    /// The roots we weighed lately, each with its newest epoch and when
    /// that arrived (as many as `dead`).
    tracked: VecDeque<Following>,
    pub parent: Option<LinkId>,
    pub depth: u8,
    /// The tree's links, which push and are never pruned.
    pub pinned: BTreeSet<LinkId>,
    /// Per link: new messages that came while it was our parent and did
    /// not push them, and how many of those came by grafts (reset when it
    /// pushes; `tree_first_copy`).
    unpushed: BTreeMap<LinkId, (u32, u32)>,
    /// Peers not taken as parent (nor their adverts heard) until the time
    /// given: each once a parent that did not push ([`TREE_PARENT_MISSES`]).
    /// By peer, so a link closed and opened again does not clear it.
    shunned: BTreeMap<PeerId, Millis>,
    /// The advert each link last got from us, and when.
    told: BTreeMap<LinkId, (TreeAdvert, Millis)>,
}

#[derive(Debug, Clone, Copy)]
struct Following {
    root: PeerId,
    powered: bool,
    epoch: u32,
    since: Millis,
}

impl Tree {
    pub fn drop_link(&mut self, link: LinkId) {
        self.pinned.remove(&link);
        self.told.remove(&link);
        self.unpushed.remove(&link);
        if self.parent == Some(link) {
            self.parent = None;
        }
    }
}

/// A neighbour's advert and when it came.
#[derive(Debug, Clone)]
pub(crate) struct Heard {
    pub advert: TreeAdvert,
    pub at: Millis,
}

/// Where a node stands in a room's tree (for status and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeView {
    /// The root it follows (itself when it is the root).
    pub root: PeerId,
    /// The root's latest beacon heard.
    pub epoch: u32,
    pub depth: u8,
    pub parent: Option<PeerId>,
    /// The peers it pushes the room's messages to because of the tree.
    pub tree_peers: Vec<PeerId>,
    /// Peers passed over as parent (they did not push).
    pub passed_over: Vec<PeerId>,
}

impl Node {
    /// This node's place in `room`'s tree, if it carries the room.
    pub fn tree_view(&self, room: &RoomId) -> Option<TreeView> {
        let t = &self.rooms.get(room)?.tree;
        let peer = |l: &LinkId| self.links.get(l).map(|l| l.peer);
        Some(TreeView {
            root: t.following.map_or(self.my_id, |f| f.root),
            epoch: t.following.map_or(self.own_epoch(), |f| f.epoch),
            depth: t.depth,
            parent: t.parent.as_ref().and_then(peer),
            tree_peers: t.pinned.iter().filter_map(peer).collect(),
            passed_over: t.shunned.keys().copied().collect(),
        })
    }

    /// Whether `link` takes part in the trees: a direct link to a peer that
    /// speaks protocol 3 (a relay keeps plain Plumtree).
    pub(super) fn tree_capable(&self, link: LinkId) -> bool {
        !self.cfg.hello_shared_only
            && self
                .links
                .get(&link)
                .is_some_and(|l| l.kind == LinkKind::Lan && l.hello_received && l.peer_version >= TREE_VERSION)
    }

    /// Whether the room's tree decides the pushes on `link` (the peer
    /// told us its place in it): a graft there asks for messages only, and
    /// the tree, which mends itself when a link goes, stays as it is.
    pub(super) fn follows_tree(&self, link: LinkId, room: &RoomId) -> bool {
        self.links.get(&link).is_some_and(|l| l.trees.contains_key(room)) && self.tree_capable(link)
    }

    /// A push came on a link that is not in our tree, or a prune on one
    /// that is: the two ends see the tree differently (an advert was lost,
    /// or is on its way). Tell the peer where we stand again (at most every
    /// [`TREE_RESEND_MS`] per link), so that the end with the stale view
    /// mends it within a round trip instead of at the next beacon.
    pub(super) fn tree_mismatch(&mut self, link: LinkId, room: &RoomId, now: Millis, out: &mut Vec<Output>) {
        let Some(r) = self.rooms.get_mut(room) else { return };
        if r.tree.told.get(&link).is_some_and(|(_, at)| now < at + TREE_RESEND_MS) {
            return;
        }
        // Forget what it was told (its gap is over): the update sends it.
        r.tree.told.remove(&link);
        self.tree_update(room, now, out);
    }

    /// A new message of `room` by `author` came first from `link`
    /// (`pushed`: by push; else as the answer to our graft or want). Our
    /// parent pushes every message that does not come up our side of the
    /// tree first, so when a link, while our parent, pushed the first copy
    /// of none of [`TREE_PARENT_MISSES`] new messages, and at least an
    /// eighth of them came by a way outside the tree (asked of the parent,
    /// or from a link that is not a tree link), it is not pushing: pass it
    /// over. Messages that all came from our children say only that our
    /// side of the tree is busy (a root at the edge of the crowd pushes
    /// only its own). Only a first copy pushed by a link clears its count
    /// (a liar that echoes a duplicate now and then is still counted). A
    /// message whose author is the peer that brought it counts for nothing:
    /// a neighbour sending its own messages only to us must not make our
    /// parent look idle. Counted per link, not reset by a change of parent:
    /// a liar whose adverts make us switch back and forth is still counted.
    pub(super) fn tree_first_copy(
        &mut self,
        room: &RoomId,
        author: PeerId,
        link: LinkId,
        pushed: bool,
        now: Millis,
        out: &mut Vec<Output>,
    ) {
        if self.links.get(&link).is_none_or(|l| l.peer == author) {
            return;
        }
        let Some(t) = self.rooms.get_mut(room).map(|r| &mut r.tree) else { return };
        if pushed {
            t.unpushed.remove(&link);
        }
        let Some(parent) = t.parent else { return };
        if link == parent && pushed {
            return;
        }
        // Came by a way the tree did not give: asked of the parent, or
        // from a link outside the tree (from a child, it came up our own
        // side of the tree, or the child grafted it first).
        let grafted = link == parent || !t.pinned.contains(&link);
        let (unpushed, grafts) = t.unpushed.entry(parent).or_default();
        *unpushed += 1;
        *grafts += u32::from(grafted);
        if *unpushed < TREE_PARENT_MISSES || *grafts < TREE_PARENT_MISSES / 8 {
            return;
        }
        t.unpushed.remove(&parent);
        if t.shunned.len() >= MAX_SHUNNED {
            let oldest = t.shunned.iter().min_by_key(|(_, until)| **until).map(|(p, _)| *p);
            oldest.map(|p| t.shunned.remove(&p));
        }
        let Some(peer) = self.links.get(&parent).map(|l| l.peer) else { return };
        let Some(t) = self.rooms.get_mut(room).map(|r| &mut r.tree) else { return };
        t.shunned.insert(peer, now + TREE_SHUN_MS);
        self.tree_update(room, now, out);
    }

    pub(super) fn on_tree(&mut self, link: LinkId, advert: TreeAdvert, now: Millis, out: &mut Vec<Output>) {
        let room = advert.room.clone();
        let shared = self.links.get(&link).is_some_and(|l| l.peer_rooms.contains(&room));
        if !self.rooms.contains_key(&room) || !shared || !self.tree_capable(link) {
            return;
        }
        let Some(l) = self.links.get_mut(&link) else { return };
        let first = l.trees.insert(room.clone(), Heard { advert, at: now }).is_none();
        if first {
            // A peer that speaks the tree: no pushes on this link unless
            // the tree puts it there.
            if let Some(r) = self.rooms.get_mut(&room) {
                if !r.tree.pinned.contains(&link) {
                    r.make_lazy(link);
                }
            }
        }
        self.tree_update(&room, now, out);
    }

    /// A root's epoch: the beacons since the Unix epoch by its wall clock,
    /// so a root that restarts goes on where it was, and an epoch far
    /// ahead of ours is seen to be made up.
    fn own_epoch(&self) -> u32 {
        (self.wall / TREE_BEACON_MS) as u32
    }

    /// Every beacon: a new epoch where we are the root, and every room's
    /// tree checked for a root that went silent.
    pub(super) fn tree_tick(&mut self, now: Millis, out: &mut Vec<Output>) {
        if now < self.tree_due || self.cfg.hello_shared_only {
            return;
        }
        self.tree_due = now + TREE_BEACON_MS;
        let rooms: Vec<RoomId> = self.rooms.keys().cloned().collect();
        for room in rooms {
            self.tree_update(&room, now, out);
        }
    }

    /// Choose root and parent from the adverts of `room`'s links, pin the
    /// tree's links, and tell each link what changed.
    pub(super) fn tree_update(&mut self, room: &RoomId, now: Millis, out: &mut Vec<Output>) {
        if self.cfg.hello_shared_only {
            // A relay keeps no trees (its links are relay links).
            return;
        }
        // A node that does not forward others' messages is nobody's root
        // or parent: it ranks below everyone and its peers skip it.
        let me = (!matches!(self.power, PowerState::Battery { .. }) && self.limits.relay_for_others, self.my_id);
        let own_epoch = self.own_epoch();
        let Some(r) = self.rooms.get_mut(room) else { return };
        r.tree.shunned.retain(|_, until| *until > now);
        let r = self.rooms.get(room).expect("just seen");
        // Adverts that count: recent, from links in the room that speak
        // the tree and forward, not naming us as root, not from our
        // children (a node that lost its parent must not take its own
        // child: a loop), not of a root known dead, not too deep, and not
        // from an epoch further ahead than any clock could be.
        let mut heard: Vec<(LinkId, TreeAdvert)> = Vec::new();
        for (id, l) in &self.links {
            let Some(h) = l.trees.get(room) else { continue };
            let a = &h.advert;
            let dead = r.tree.dead.iter().any(|&(root, epoch)| root == a.root && a.epoch <= epoch);
            let forged = a.epoch > own_epoch.saturating_add(MAX_EPOCH_AHEAD);
            let stale = now.saturating_sub(h.at) > TREE_STALE_MS;
            if stale || a.root == self.my_id || a.parent || dead || forged || a.depth >= MAX_TREE_DEPTH {
                continue;
            }
            let usable = l.peer_relays && !r.tree.shunned.contains_key(&l.peer);
            if l.peer_rooms.contains(room) && self.tree_capable(*id) && usable {
                heard.push((*id, a.clone()));
            }
        }
        let mut dead = r.tree.dead.clone();
        let mut tracked = r.tree.tracked.clone();
        let mut following: Option<Following>;
        let (parent, depth) = loop {
            let best = heard.iter().map(|(_, a)| (a.powered, a.root)).max();
            let Some(best) = best.filter(|b| *b > me) else {
                following = None;
                break (None, 0);
            };
            let newest = heard.iter().filter(|(_, a)| a.root == best.1).map(|(_, a)| a.epoch).max().unwrap_or(0);
            // When each root's epoch last advanced, kept also while we do
            // not follow it: a node pushed out of a loop of stale adverts
            // (too deep) and back into it must not see an old epoch as new.
            let f = match tracked.iter().find(|f| f.root == best.1) {
                Some(f) if newest <= f.epoch => *f,
                _ => Following { root: best.1, powered: best.0, epoch: newest, since: now },
            };
            tracked.retain(|t| t.root != f.root);
            if tracked.len() >= MAX_DEAD_ROOTS {
                tracked.pop_front();
            }
            tracked.push_back(f);
            if now.saturating_sub(f.since) > TREE_STALE_MS {
                // No new beacon for too long: that root is gone.
                dead.retain(|(root, _)| *root != f.root);
                if dead.len() >= MAX_DEAD_ROOTS {
                    dead.pop_front();
                }
                dead.push_back((f.root, f.epoch));
                heard.retain(|(_, a)| a.root != f.root || a.epoch > f.epoch);
                continue;
            }
            // The nearest neighbour to the root among those that heard one
            // of its last two beacons; the current parent on a tie. We say
            // the parent's epoch, not the newest we heard: a loop cut off
            // from the root then gets no newer one and goes stale.
            let current = r.tree.parent;
            let parent = heard
                .iter()
                .filter(|(_, a)| a.root == f.root && a.epoch.saturating_add(1) >= f.epoch)
                .min_by_key(|(l, a)| (a.depth, Some(*l) != current, *l))
                .map(|(l, a)| (*l, a.depth + 1, a.epoch));
            following = Some(Following { epoch: parent.map_or(f.epoch, |p| p.2), ..f });
            match parent {
                Some((l, d, _)) => break (Some(l), d),
                None => {
                    following = None;
                    break (None, 0);
                }
            }
        };
        let (root, powered, epoch) = match following {
            Some(f) => (f.root, f.powered, f.epoch),
            None => (self.my_id, me.0, own_epoch),
        };
        // Children: links whose fresh advert names us their parent in the
        // same tree.
        let children: BTreeSet<LinkId> = heard_children(self, room, root, now);
        let mut tree: BTreeSet<LinkId> = children;
        tree.extend(parent);
        let capable: Vec<LinkId> = self
            .links
            .iter()
            // Only once the peer has our hello: it drops frames before it.
            .filter(|(id, l)| l.peer_rooms.contains(room) && l.hello_acked && self.tree_capable(**id))
            .map(|(id, _)| *id)
            .collect();
        let r = self.rooms.get_mut(room).expect("checked above");
        r.tree.dead = dead;
        r.tree.tracked = tracked;
        r.tree.following = following;
        r.tree.parent = parent;
        r.tree.depth = depth;
        for &l in &tree {
            r.make_eager(l);
        }
        let before = std::mem::replace(&mut r.tree.pinned, tree);
        for l in before {
            if !r.tree.pinned.contains(&l) {
                r.make_lazy(l);
            }
        }
        // At most one advert per link per [`TREE_RESEND_MS`]: a neighbour
        // whose adverts flap (a liar alternating roots) would otherwise make
        // every node of the room re-advertise at its frame rate. A change
        // that has to wait goes out at the tick when its time comes.
        let mut sends = Vec::new();
        let mut wait: Option<Millis> = None;
        for link in capable {
            let advert = TreeAdvert { room: room.clone(), root, powered, epoch, depth, parent: parent == Some(link) };
            match r.tree.told.get(&link) {
                Some((a, _)) if *a == advert => {}
                Some((_, at)) if now < at + TREE_RESEND_MS => {
                    wait = Some(wait.map_or(at + TREE_RESEND_MS, |w| w.min(at + TREE_RESEND_MS)));
                }
                _ => {
                    r.tree.told.insert(link, (advert.clone(), now));
                    sends.push((link, advert));
                }
            }
        }
        if let Some(t) = wait {
            self.tree_due = self.tree_due.min(t);
        }
        for (link, advert) in sends {
            self.send_frame(link, &Frame::Tree(advert), out);
        }
    }
}

fn heard_children(node: &Node, room: &RoomId, root: PeerId, now: Millis) -> BTreeSet<LinkId> {
    node.links
        .iter()
        .filter(|(id, l)| {
            l.trees
                .get(room)
                .is_some_and(|h| h.advert.parent && h.advert.root == root && now.saturating_sub(h.at) <= TREE_STALE_MS)
                && node.tree_capable(**id)
        })
        .map(|(id, _)| *id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Hello;
    use crate::identity::Identity;
    use crate::sync::{Config, Input, Snapshot};

    /// A neighbour naming a new made-up root in every advert and letting
    /// each go silent: the roots a node remembers stay within their caps.
    #[test]
    fn made_up_roots_without_end_fill_no_more_than_the_caps() {
        let me = Identity::from_secret_bytes(&[1; 32]);
        let mut now: Millis = 1_000_000_000;
        let mut node = Node::new(me, Config::default(), Snapshot::default(), PowerState::Battery { percent: 80 }, now);
        let link = LinkId(1);
        let peer = Identity::from_secret_bytes(&[2; 32]).peer_id();
        node.handle(Input::LinkUp { link, peer, kind: LinkKind::Lan }, now);
        let rooms = vec![RoomId::festival(), RoomId::direct()];
        let hello = Hello { version: TREE_VERSION, ack: true, rooms, relays: true, powered: true };
        node.handle(Input::Frame { link, bytes: Frame::Hello(hello).encode() }, now);
        for i in 0..200u32 {
            let mut root = [0xf0; 32];
            root[..4].copy_from_slice(&i.to_be_bytes());
            let advert = TreeAdvert {
                room: RoomId::festival(),
                root: PeerId::from_bytes(root),
                powered: true,
                epoch: (now / TREE_BEACON_MS) as u32,
                depth: 0,
                parent: false,
            };
            let bytes = Frame::Tree(advert).encode();
            node.handle(Input::Frame { link, bytes: bytes.clone() }, now);
            assert_eq!(node.tree_view(&RoomId::festival()).unwrap().root, PeerId::from_bytes(root), "advert {i} taken");
            // The same epoch again past staleness: that root is dead.
            now += TREE_STALE_MS + 1;
            node.handle(Input::Frame { link, bytes }, now);
        }
        let t = &node.rooms[&RoomId::festival()].tree;
        assert!(
            t.dead.len() <= MAX_DEAD_ROOTS && t.tracked.len() <= MAX_DEAD_ROOTS,
            "{} {}",
            t.dead.len(),
            t.tracked.len()
        );
        assert_eq!(t.dead.len(), MAX_DEAD_ROOTS, "the caps were reached, not just approached");
        assert!(node.links[&link].trees.len() <= 2, "one advert per room the link shares");
    }
}
