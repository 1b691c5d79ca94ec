//! Crowd density: what a node pushes and announces when the crowd around it
//! is busy, and how much of the live path one sender may take.
//!
//! At a festival the failure to avoid is a busy channel that every node
//! makes busier (Meshtastic's at Hamvention: every packet rebroadcast until
//! the air was full). Here pushes follow a tree, so each node sends each
//! message to few links already; what grows with the crowd is the rest:
//!
//! - **Announcements.** Each message is announced (`IHave`) to every lazy
//!   link, one frame per message per link. A node counts the live messages
//!   it takes each second; at [`Config::busy_messages_per_sec`] or more it
//!   is *busy*: it announces each message to at most
//!   [`Config::busy_lazy_fanout`] lazy links (drawn at random, so that the
//!   announcements of a room spread over all of them) and sends them as one
//!   `IHave` per link every [`Config::busy_announce_ms`]. Pushes along the
//!   tree are unchanged, and what an announcement no longer reaches, the
//!   next reconciliation does. The hop limit is kept (measured: a lower one
//!   saves nothing, since what is not pushed is grafted, and is slower).
//! - **Per-sender budgets.** Each author's messages are pushed on direct
//!   links at most [`Config::author_push_rate`] a second (with a burst);
//!   beyond that they are stored, delivered and announced like any other,
//!   but only announced (to every link they would have been pushed to):
//!   those links graft them, and the graft's batch waits behind live
//!   traffic, so a sender that floods gets its own messages slowed, not
//!   the crowd's airtime. A graft of a held-back message does not make the
//!   link eager. Own messages are never held back, nor pushes on relay
//!   links (the relay's bandwidth, limited per identity by the relay
//!   itself). Budgets are kept for at most [`caps::MAX_PUSH_BUDGETS`]
//!   authors (the oldest forgotten).
//!
//! Priorities between classes of frames (own messages and DMs before room
//! traffic, catch-up last) are the transport's: a link's send queue orders
//! by [`crate::frame::Frame::priority`].
//!
//! [`Config::busy_messages_per_sec`]: super::Config::busy_messages_per_sec
//! [`Config::busy_lazy_fanout`]: super::Config::busy_lazy_fanout
//! [`Config::busy_announce_ms`]: super::Config::busy_announce_ms
//! [`Config::author_push_rate`]: super::Config::author_push_rate

use std::collections::BTreeMap;

use crate::frame::{Frame, MsgRef, MAX_REFS};
use crate::ids::{LinkId, PeerId, RoomId};

use super::caps;
use super::state::{BoundedMap, TokenBucket};
use super::{Millis, Node, Output};

/// The length of one counting window.
const WINDOW_MS: Millis = 1_000;

pub(crate) struct Crowd {
    window_start: Millis,
    /// Live messages taken in the current window.
    count: u64,
    /// Busy as of the last full window.
    pub busy: bool,
    budgets: BoundedMap<PeerId, TokenBucket>,
    /// Announcements waiting, per link (busy only), each link's list at
    /// most [`MAX_REFS`] long.
    pub waiting: BTreeMap<LinkId, Vec<MsgRef>>,
    pub due: Option<Millis>,
}

impl Crowd {
    pub fn new(now: Millis) -> Self {
        Crowd {
            window_start: now,
            count: 0,
            busy: false,
            budgets: BoundedMap::new(caps::MAX_PUSH_BUDGETS),
            waiting: BTreeMap::new(),
            due: None,
        }
    }
}

impl Node {
    /// Count one live message taken; roll the window.
    pub(super) fn crowd_count(&mut self, now: Millis) {
        let c = &mut self.crowd;
        if now >= c.window_start + WINDOW_MS {
            // A window with nothing in between counts as quiet.
            let full = now < c.window_start + 2 * WINDOW_MS;
            c.busy = full && c.count >= self.cfg.busy_messages_per_sec;
            c.window_start = now;
            c.count = 0;
        }
        c.count += 1;
    }

    /// Whether `author`'s next message may be pushed (takes from its budget).
    /// Whether `author` may have a message that costs `n` pushed now (1,
    /// or more for a photo's header), taking it from its budget if so.
    pub(super) fn push_budget_n(&mut self, author: PeerId, n: u64, now: Millis) -> bool {
        if author == self.my_id {
            return true;
        }
        let (rate, burst) = self.cfg.author_push_rate;
        self.crowd.budgets.get_or_insert_with(author, || TokenBucket::new(rate, burst, now)).take_n(n, now)
    }

    /// Whether `author`'s budget is spent (takes nothing).
    pub(super) fn over_push_budget(&mut self, author: &PeerId, now: Millis) -> bool {
        self.crowd.budgets.get_mut(author).is_some_and(|b| !b.has(1, now))
    }

    /// Whether others' messages of `room` reach direct links by announcement
    /// and fetch ([`Config::live_pull`]) rather than by pushes along the
    /// room's tree: not in a busy crowd (a busy node announces to few
    /// links, so only the tree reaches everyone), nor in the announcements
    /// room (pushed to every link).
    ///
    /// [`Config::live_pull`]: super::Config::live_pull
    pub(super) fn pulls_live(&self, room: &RoomId, now: Millis) -> bool {
        self.cfg.live_pull && !self.busy_at(now) && !room.is_announcements()
    }

    /// Whether others' messages of `room` are announced to `link` and asked
    /// of it at once: we fetch live, and it is a direct link to a peer that
    /// does too ([`super::LIVE_FETCH_VERSION`]); an older peer keeps its
    /// pushes (it waits for them before it asks).
    pub(super) fn fetches_live(&self, link: LinkId, room: &RoomId, now: Millis) -> bool {
        self.pulls_live(room, now)
            && self.links.get(&link).is_some_and(|l| {
                l.kind == super::LinkKind::Lan && l.hello_received && l.peer_version >= super::LIVE_FETCH_VERSION
            })
    }

    /// Busy as of `now`: the flag is rolled only when a message is taken,
    /// so after a busy spell and silence it would stay set; a window that
    /// ended is judged by its own count, and an empty one after it is quiet.
    pub(super) fn busy_at(&self, now: Millis) -> bool {
        let c = &self.crowd;
        if now < c.window_start + WINDOW_MS {
            c.busy
        } else if now < c.window_start + 2 * WINDOW_MS {
            c.count >= self.cfg.busy_messages_per_sec
        } else {
            false
        }
    }

    /// Announce `r` to each of `links` now, one frame for all.
    pub(super) fn announce_now(&self, links: Vec<LinkId>, r: MsgRef, out: &mut Vec<Output>) {
        let ihave = Frame::IHave { refs: vec![r] }.encode();
        out.extend(links.into_iter().map(|link| Output::Send { link, bytes: ihave.clone() }));
    }

    /// Announce `r` to `lazy`: at once to each, or (busy) to a few of them,
    /// batched.
    pub(super) fn announce_to(&mut self, mut lazy: Vec<LinkId>, r: MsgRef, now: Millis, out: &mut Vec<Output>) {
        if !self.busy_at(now) {
            return self.announce_now(lazy, r, out);
        }
        // A partial Fisher-Yates draw of `busy_lazy_fanout` links.
        let k = self.cfg.busy_lazy_fanout.min(lazy.len());
        for i in 0..k {
            let j = i + (rand_core::RngCore::next_u32(&mut self.rng) as usize) % (lazy.len() - i);
            lazy.swap(i, j);
        }
        for link in lazy.into_iter().take(k) {
            let refs = self.crowd.waiting.entry(link).or_default();
            refs.push(r.clone());
            if refs.len() >= MAX_REFS {
                let refs = std::mem::take(refs);
                self.send_frame(link, &Frame::IHave { refs }, out);
            }
        }
        self.crowd.due.get_or_insert(now + self.cfg.busy_announce_ms);
    }

    /// Send the announcements that waited.
    pub(super) fn flush_announcements(&mut self, out: &mut Vec<Output>) {
        self.crowd.due = None;
        for (link, refs) in std::mem::take(&mut self.crowd.waiting) {
            if !refs.is_empty() && self.links.contains_key(&link) {
                self.send_frame(link, &Frame::IHave { refs }, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PowerState;
    use crate::sync::{Config, Snapshot};
    use crate::Identity;

    #[test]
    fn a_stream_of_fresh_authors_grows_the_budgets_no_further_than_the_cap() {
        let me = Identity::from_secret_bytes(&[1; 32]);
        let mut node = Node::new(me, Config::default(), Snapshot::default(), PowerState::Mains, 0);
        let author = |i: u32| {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&i.to_be_bytes());
            PeerId::from_bytes(b)
        };
        for i in 0..caps::MAX_PUSH_BUDGETS as u32 + 500 {
            assert!(node.push_budget_n(author(i), 1, 0), "a fresh author has its burst");
        }
        assert_eq!(node.crowd.budgets.len(), caps::MAX_PUSH_BUDGETS);
        // The newest are kept: the last one's budget is spent as it spends it.
        let last = author(caps::MAX_PUSH_BUDGETS as u32 + 499);
        let burst = Config::default().author_push_rate.1;
        for _ in 1..burst {
            assert!(node.push_budget_n(last, 1, 0));
        }
        assert!(!node.push_budget_n(last, 1, 0) && node.over_push_budget(&last, 0));
    }

    #[test]
    fn the_photos_whose_pieces_go_free_are_remembered_no_further_than_the_cap() {
        use crate::body::Body;
        use crate::envelope::{Draft, SignedEnvelope};
        use crate::photo::{cut, frame_only_jpeg, PhotoChunkBody};
        let me = Identity::from_secret_bytes(&[1; 32]);
        let mut node = Node::new(me, Config::default(), Snapshot::default(), PowerState::Mains, 0);
        let ana = Identity::from_secret_bytes(&[2; 32]);
        let room = crate::ids::RoomId::festival();
        let sign = |seq: u64, body: Body| {
            let draft = Draft { seq, room: room.clone(), kind: body.kind(), created_at: 1, body: body.encode() };
            SignedEnvelope::sign(&ana, draft).unwrap()
        };
        let c = cut(&frame_only_jpeg(100, 8, 8), 8, 8, String::new(), frame_only_jpeg(50, 4, 4)).unwrap();
        // One more photo than the cap, each a header and its one piece.
        let photos: Vec<(SignedEnvelope, SignedEnvelope)> = (0..caps::MAX_PUSHED_PHOTOS as u64 + 1)
            .map(|i| {
                let header = sign(2 * i + 1, Body::Photo(c.header.clone()));
                let piece = PhotoChunkBody { photo: header.id(), index: 0, data: c.chunks[0].clone() };
                (header.clone(), sign(2 * i + 2, Body::PhotoChunk(piece)))
            })
            .collect();
        for (header, _) in &photos {
            node.remember_pushed_photo(header, 1);
        }
        assert_eq!(node.pushed_photos.len(), caps::MAX_PUSHED_PHOTOS);
        // The oldest is forgotten (its piece is charged as any message), the newest kept.
        assert!(!node.piece_of_pushed_photo(&photos[0].1));
        assert!(node.piece_of_pushed_photo(&photos[caps::MAX_PUSHED_PHOTOS].1));
    }
}
