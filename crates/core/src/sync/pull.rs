//! Asking for what we lack: one range request per (room, author) at a
//! time, to the best link that claims it; timeouts, `Gone` answers,
//! demotion of links that claim and do not serve, and giving up on runs
//! that nobody can serve any more.
//!
//! A link takes [`MAX_WANTS_PER_LINK`] requests at a time. What could not
//! be asked for because every link claiming it was that busy waits in the
//! backlog and is asked for as soon as a request ends: a catch-up of
//! thousands of authors with one message each (a big room, the DM mailbox)
//! goes as fast as the links answer, not 64 authors per sync interval.

use std::collections::BTreeSet;

use crate::frame::{Frame, Item, Want};
use crate::ids::{LinkId, PeerId, RoomId};

use super::caps::{MAX_BACKLOG, MAX_WANTS, MAX_WANTS_PER_LINK};
use super::{LinkKind, Millis, Node, Output, WantInFlight};

/// A link that can serve a gap: (link, rank, range to ask for).
type Candidate = (LinkId, (bool, bool, bool, bool, u64), (u64, u64));

impl Node {
    /// If someone holds more of `author` in `room` than we do and nobody is
    /// already fetching it, ask the best such link for the first gap. If
    /// nobody can serve the gap any more (the links that claimed it
    /// answered `Gone`), give it up.
    pub(super) fn request_missing(&mut self, room: &RoomId, author: PeerId, now: Millis, out: &mut Vec<Output>) {
        if !self.takes_author(room, &author) {
            return;
        }
        let key = (room.clone(), author);
        if let Some(w) = self.wants.get(&key).filter(|w| w.deadline > now) {
            // Out to a link that only claims something above the gap (it may
            // lack the same message) while another now claims the gap's
            // start: ask that one at once rather than after the timeout.
            let holds = |l: &super::state::LinkState| {
                !l.dropped
                    && (l.peer_relays || l.peer == author)
                    && l.peer_head(room, &author).is_some_and(|h| h.contiguous >= w.from)
            };
            let asked_holds = self.links.get(&w.link).is_some_and(holds);
            if asked_holds || !self.links.iter().any(|(id, l)| *id != w.link && holds(l)) {
                return;
            }
        }
        self.take_want(&key);
        let (candidates, busy) = self.servers(room, author, None);
        let Some(top) = candidates.iter().map(|c| c.1).max() else {
            if let Some((from, to)) = self.gone_everywhere(room, author) {
                if self.give_up(room, author, from, to, out) {
                    // What lies above the run we gave up on may be served.
                    self.request_missing(room, author, now, out);
                }
            } else if busy {
                self.defer(key);
            }
            return;
        };
        if self.wants.len() >= MAX_WANTS {
            self.defer(key);
            return;
        }
        let mut candidates = candidates;
        candidates.retain(|c| c.1 == top);
        let pick = (rand_core::RngCore::next_u32(&mut self.rng) as usize) % candidates.len();
        let (link, _, (from, to)) = candidates[pick];
        let f = Frame::Want(Want { room: room.clone(), author, from, to });
        self.send_frame(link, &f, out);
        let deadline = now + self.cfg.want_timeout_ms;
        self.wants.insert(key, WantInFlight { link, from, to, deadline });
        self.timer_at(deadline);
        if let Some(l) = self.links.get_mut(&link) {
            l.wants_out += 1;
        }
    }

    /// Forget a request in flight (answered, timed out or replaced).
    pub(super) fn take_want(&mut self, key: &(RoomId, PeerId)) -> Option<WantInFlight> {
        let w = self.wants.remove(key)?;
        if let Some(l) = self.links.get_mut(&w.link) {
            l.wants_out -= 1;
        }
        Some(w)
    }

    /// Links that can serve our first gap of `author` in `room`, with their
    /// rank and the range to ask each for. Prefer links that serve what
    /// they claim, then those that claim the gap's start without a gap of
    /// their own before it, LAN over relay, powered peers, then the most complete
    /// for the next chunk (a claim beyond it buys nothing, so an invented
    /// claim of 2^62 does not make a link first choice).
    fn candidates(&self, room: &RoomId, author: PeerId, except: Option<LinkId>) -> Vec<Candidate> {
        self.servers(room, author, except).0
    }

    /// [`Self::candidates`], and whether a link that could serve the gap
    /// was left out only because it has its share of wants out.
    fn servers(&self, room: &RoomId, author: PeerId, except: Option<LinkId>) -> (Vec<Candidate>, bool) {
        let key = (room.clone(), author);
        let Some(r) = self.rooms.get(room) else { return (Vec::new(), false) };
        let empty = Default::default();
        let state = r.authors.get(&author).unwrap_or(&empty);
        let chunk_end = state.contiguous.saturating_add(self.cfg.want_chunk);
        let mut candidates = Vec::new();
        // Links asked already that claim the gap's start without a gap of
        // their own: asked again when nobody else can serve it (an answer
        // lost on a lossy link), instead of waiting for the next sync.
        let mut again = Vec::new();
        let mut busy_only = false;
        for (id, l) in &self.links {
            let Some(head) = l.peer_head(room, &author) else { continue };
            if Some(*id) == except || !(l.peer_relays || l.peer == author) || l.dropped {
                continue;
            }
            let Some((from, to)) = state.first_gap(head.max, self.cfg.want_chunk) else { continue };
            if l.exhausted.contains(&key) {
                if head.contiguous >= from && l.wants_out < MAX_WANTS_PER_LINK && !l.gone.contains_key(&key) {
                    again.push((*id, (!l.demoted(), true, l.kind == LinkKind::Lan, l.peer_powered, 0), (from, to)));
                }
                continue;
            }
            if l.gone.get(&key).is_some_and(|g| *g >= from) {
                continue;
            }
            if l.wants_out >= MAX_WANTS_PER_LINK {
                busy_only = true;
                continue;
            }
            // A link whose run without gaps reaches the gap surely holds its
            // start; one that only holds something above it may not (it
            // lacks the same message: a chain of peers that all got a
            // later receipt by push and the text by nobody).
            let holds = head.contiguous >= from;
            let rank = (!l.demoted(), holds, l.kind == LinkKind::Lan, l.peer_powered, head.max.min(chunk_end));
            candidates.push((*id, rank, (from, to)));
        }
        if candidates.is_empty() && !busy_only {
            candidates = again;
        }
        (candidates, busy_only)
    }

    /// Keep a chain to ask for when a want ends (the next sync's
    /// `retry_lacking` finds it too, if the backlog is full).
    fn defer(&mut self, key: (RoomId, PeerId)) {
        if self.backlog.len() < MAX_BACKLOG && self.backlogged.insert(key.clone()) {
            self.backlog.push_back(key);
        }
    }

    /// Wants ended: ask for backlogged chains, oldest first, while some
    /// link has room for a want. A chain whose links are all still busy
    /// goes to the back; at most [`MAX_WANTS_PER_LINK`] chains are looked
    /// at per call, so a backlog of chains that only a stalling link claims
    /// costs little and holds up nobody else's.
    pub(super) fn ask_backlog(&mut self, now: Millis, out: &mut Vec<Output>) {
        for _ in 0..MAX_WANTS_PER_LINK {
            let room_for_one = self.links.values().any(|l| !l.dropped && l.wants_out < MAX_WANTS_PER_LINK);
            if !room_for_one || self.wants.len() >= MAX_WANTS {
                break;
            }
            let Some(key) = self.backlog.pop_front() else { break };
            self.backlogged.remove(&key);
            self.request_missing(&key.0, key.1, now, out);
        }
    }

    /// The start of our first gap, if links told us they no longer hold it
    /// (and so nobody left can serve it): the run to give up on.
    fn gone_everywhere(&self, room: &RoomId, author: PeerId) -> Option<(u64, u64)> {
        let key = (room.clone(), author);
        let a = self.rooms.get(room)?.authors.get(&author)?;
        let (from, to) = a.first_gap(u64::MAX, self.cfg.want_chunk)?;
        let gone = self.links.values().filter_map(|l| l.gone.get(&key)).copied().max()?;
        (gone >= from).then_some((from, to.min(gone)))
    }

    /// No peer can serve `from..=to` any more: if it is where our chain
    /// stops, treat it as seen, so what we hold above it is shown and it is
    /// not asked for again.
    fn give_up(&mut self, room: &RoomId, author: PeerId, from: u64, to: u64, out: &mut Vec<Output>) -> bool {
        let Some(r) = self.rooms.get_mut(room) else { return false };
        let a = r.author(author);
        if from != a.contiguous + 1 || (from..=to).any(|s| a.pending.contains(&s)) {
            return false;
        }
        let shown = a.skip_through(to);
        let through = a.contiguous;
        self.stats.skipped += to - from + 1;
        out.push(Output::Skip { room: room.clone(), author, through });
        for (seq, id) in shown {
            out.push(Output::Deliver { id, room: room.clone(), author, seq });
            if author != self.my_id {
                self.stats.delivered += 1;
            }
        }
        true
    }

    /// The link we asked says it cannot serve `from..=to` of our request.
    /// If that is all we asked, ask elsewhere; if the rest follows in a
    /// batch, give the run up now when nobody else can serve it, so the
    /// batch is shown when it lands.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_gone(
        &mut self,
        link: LinkId,
        room: RoomId,
        author: PeerId,
        from: u64,
        to: u64,
        now: Millis,
        out: &mut Vec<Output>,
    ) {
        let key = (room.clone(), author);
        // Only an answer to what we asked that link counts.
        let Some(w) = self.wants.get(&key).filter(|w| w.link == link && w.from == from) else { return };
        let whole = to >= w.to;
        let Some(l) = self.links.get_mut(&link) else { return };
        // Bounded like `exhausted`: only keys we asked this link about.
        let mark = l.gone.entry(key.clone()).or_default();
        *mark = (*mark).max(to);
        l.strikes = 0;
        if whole {
            self.take_want(&key);
            self.request_missing(&room, author, now, out);
            self.ask_backlog(now, out);
        } else if self.candidates(&room, author, Some(link)).is_empty() {
            self.give_up(&room, author, from, to, out);
        }
    }

    pub(super) fn on_batch(&mut self, link: LinkId, items: Vec<Item>, now: Millis, out: &mut Vec<Output>) {
        let mut touched = BTreeSet::new();
        for item in items {
            if let Some(key) = self.incoming(link, item, super::ingest::Via::Sync, now, out) {
                touched.insert(key);
            }
        }
        for (room, author) in touched {
            if self.wants.get(&(room.clone(), author)).is_some_and(|w| w.link == link) {
                self.take_want(&(room.clone(), author));
                if let Some(l) = self.links.get_mut(&link) {
                    l.strikes = 0;
                }
                self.request_missing(&room, author, now, out);
            }
        }
        self.ask_backlog(now, out);
    }

    pub(super) fn expire_wants(&mut self, now: Millis, out: &mut Vec<Output>) {
        let expired: Vec<_> = self.wants.iter().filter(|(_, w)| w.deadline <= now).map(|(k, _)| k.clone()).collect();
        for key in expired {
            if let Some(w) = self.take_want(&key) {
                if let Some(l) = self.links.get_mut(&w.link) {
                    // A strike only for what it claimed to hold without a gap.
                    let claimed = l.peer_head(&key.0, &key.1).is_some_and(|h| h.contiguous >= w.from);
                    l.exhausted.insert(key.clone());
                    if claimed {
                        l.strikes = l.strikes.saturating_add(1);
                    }
                }
            }
            self.request_missing(&key.0, key.1, now, out);
        }
        self.ask_backlog(now, out);
    }

    /// Forget which peers came back empty-handed and ask again for whatever
    /// some peer is known to hold beyond us (its summaries only repeat a head
    /// when it changes, so a failed request must be retried from our side).
    /// Done for the links of `links` (a slice of the periodic round).
    pub(super) fn retry_lacking(&mut self, links: &[LinkId], now: Millis, out: &mut Vec<Output>) {
        let mut lacking = BTreeSet::new();
        for id in links {
            let Some(l) = self.links.get_mut(id) else { continue };
            l.exhausted.clear();
            l.gone.clear();
            for (room, view) in &l.peer_heads {
                let Some(r) = self.rooms.get(room) else { continue };
                for (author, head) in &view.heads {
                    if head.max > r.authors.get(author).map_or(0, |a| a.contiguous) {
                        lacking.insert((room.clone(), *author));
                    }
                }
            }
        }
        for (room, author) in lacking {
            if self.wants.len() >= MAX_WANTS {
                break;
            }
            self.request_missing(&room, author, now, out);
        }
    }
}
