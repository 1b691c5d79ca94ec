//! Answering wants and grafts. Requests queue per link (deduplicated,
//! capped), become store reads (`Output::Load`, run beside the event loop)
//! a few at a time and within the link's byte budget, and are answered with
//! a `Batch`, preceded by `Gone` for the start of the range when we no
//! longer hold it.
//!
//! A graft repairs the live path (an announced message did not come), so it
//! is latency, not catch-up: it goes ahead of the wants the link has queued,
//! pushing the oldest out if the queue is full (the asker asks again after
//! its timeout). Its answer is a batch when pushes follow the room's tree:
//! as pushes, a copy that a second announcer also sent would prune that
//! link, and in the lab the eager trees then thrashed (three times the
//! grafts, slower delivery). While we fetch live on a direct link
//! ([`super::Config::live_pull`]) the answer *is* the live path, and goes
//! as pushes: room traffic in the link's queue, not bulk behind catch-up.

use std::collections::{BTreeMap, BTreeSet};

use crate::envelope::SignedEnvelope;
use crate::frame::{Frame, Item, MsgRef, Want, MAX_BATCH_ITEMS, MAX_HOPS};
use crate::ids::{LinkId, PeerId, RoomId};

use super::caps::{MAX_GRAFT_REFS_SERVED, MAX_LOADS_PER_LINK, MAX_SERVE_QUEUE};
use super::{Load, Millis, Node, Output, Reject};

/// A live graft's answer of at most this many messages goes as pushes;
/// more (a run asked at once) as a batch.
const MAX_PUSHED_ANSWER: usize = 4;

impl Node {
    pub(super) fn on_want(&mut self, link: LinkId, w: Want, now: Millis, out: &mut Vec<Output>) {
        if !self.rooms.contains_key(&w.room) || !self.shares_announcements(link, &w.room) {
            return self.reject(link, Reject::NotCarried(w.room), now, out);
        }
        self.queue_serve(link, w.room, w.author, w.from, w.to, false, now, out);
    }

    /// "Send me these, and push to me from now on": the link becomes eager
    /// in each room (unless the room's tree decides its pushes), and the
    /// refs, deduplicated and joined into runs per chain, are served (at
    /// most [`MAX_GRAFT_REFS_SERVED`] of them).
    pub(super) fn on_graft(&mut self, link: LinkId, refs: Vec<MsgRef>, now: Millis, out: &mut Vec<Output>) {
        let mut wanted: BTreeMap<(RoomId, PeerId, bool), BTreeSet<u64>> = BTreeMap::new();
        for r in refs {
            if !self.shares_announcements(link, &r.room) {
                continue;
            }
            // A graft of a message we held back (its author over its push
            // budget) asks for that message, not for pushes from now on; so
            // does one on a direct link while we fetch live (we push nobody
            // else's messages then).
            let over_budget = self.over_push_budget(&r.author, now);
            let fetching = self.fetches_live(link, &r.room, now);
            let tree = self.follows_tree(link, &r.room) || over_budget || fetching;
            let Some(room) = self.rooms.get_mut(&r.room) else { continue };
            if !tree {
                room.make_eager(link);
            }
            // Fetching live, a graft is the live path, but not for a
            // message held back for its author's push budget (decided when
            // it went on, `forward`): served behind the catch-up.
            let live = !(fetching && self.held_back_ids.get(&r.id).is_some());
            wanted.entry((r.room, r.author, live)).or_default().insert(r.seq);
        }
        let mut served = 0;
        for ((room, author, live), seqs) in wanted {
            let mut runs: Vec<(u64, u64)> = Vec::new();
            for s in seqs.into_iter().take(MAX_GRAFT_REFS_SERVED - served) {
                served += 1;
                match runs.last_mut() {
                    Some((_, to)) if *to + 1 == s => *to = s,
                    _ => runs.push((s, s)),
                }
            }
            for (from, to) in runs {
                self.queue_serve(link, room.clone(), author, from, to, live, now, out);
            }
            if served >= MAX_GRAFT_REFS_SERVED {
                break;
            }
        }
    }

    /// Whether `room`, if it is the announcements room, is shared with
    /// `link`: never with a peer of an older protocol, which would refuse
    /// their kind (see `ANNOUNCEMENTS_VERSION`), whatever it asks for.
    fn shares_announcements(&self, link: LinkId, room: &RoomId) -> bool {
        !room.is_announcements() || self.links.get(&link).is_some_and(|l| l.peer_rooms.contains(room))
    }

    /// Queue a read of `from..=to` for `link`: always for our own messages,
    /// for others' only while the power policy lets us work for others.
    /// `live` (a graft) goes ahead of the queued wants.
    #[allow(clippy::too_many_arguments)]
    fn queue_serve(
        &mut self,
        link: LinkId,
        room: RoomId,
        author: PeerId,
        from: u64,
        to: u64,
        live: bool,
        now: Millis,
        out: &mut Vec<Output>,
    ) {
        if author != self.my_id && !self.limits.relay_for_others {
            return;
        }
        // A date: against the wall clock (see `Now`).
        let not_before = self.wall.saturating_sub(self.cfg.message_lifetime_ms);
        let max_bytes = self.cfg.batch_bytes;
        let Some(l) = self.links.get_mut(&link) else { return };
        // A request for a range that is already queued or being read starts
        // inside it: asked again after a timeout, or a graft for a want.
        let covered = |q: &Load| q.room == room && q.author == author && q.from <= from && from <= q.to;
        if l.loads.iter().any(covered) {
            return;
        }
        if let Some(i) = l.serve_queue.iter().position(covered) {
            if !live || l.serve_queue[i].live {
                return;
            }
            // A graft for what a want already queued: the graft goes ahead,
            // the want stays (its batch tells the asker what else it
            // lacks; a graft's answer may be pushes, which do not).
        }
        let mut refused = false;
        if l.serve_queue.len() >= MAX_SERVE_QUEUE {
            let oldest_want = l.serve_queue.iter().position(|q| !q.live);
            match oldest_want.filter(|_| live) {
                Some(i) => {
                    l.serve_queue.remove(i);
                    refused = true;
                }
                None => return self.reject(link, Reject::ServeQueueFull, now, out),
            }
        }
        let load = Load { link, room, author, from, to, max_bytes, not_before, live };
        self.attention.insert(link);
        if live {
            // Behind the grafts already queued, ahead of every want.
            let at = l.serve_queue.iter().position(|q| !q.live).unwrap_or(l.serve_queue.len());
            l.serve_queue.insert(at, load);
        } else {
            l.serve_queue.push_back(load);
        }
        if refused {
            self.reject(link, Reject::ServeQueueFull, now, out);
        }
        self.pump_serve(link, now, out);
    }

    /// Start the queued reads of `link` that have a slot and budget.
    pub(super) fn pump_serve(&mut self, link: LinkId, now: Millis, out: &mut Vec<Output>) {
        let Some(l) = self.links.get_mut(&link) else { return };
        while l.loads.len() < MAX_LOADS_PER_LINK {
            let Some(next) = l.serve_queue.front() else { break };
            if !l.serve.take_n(next.max_bytes as u64, now) {
                break;
            }
            let load = l.serve_queue.pop_front().expect("front exists");
            l.loads.push(load.clone());
            out.push(Output::Load(load));
        }
    }

    pub(super) fn on_loaded(
        &mut self,
        load: Load,
        mut items: Vec<(SignedEnvelope, u8)>,
        now: Millis,
        out: &mut Vec<Output>,
    ) {
        // One batch carries at most [`MAX_BATCH_ITEMS`]: the oldest go, the
        // asker asks for the rest (a want of another implementation may
        // span more seqs than that, and a bigger batch is refused).
        items.truncate(MAX_BATCH_ITEMS);
        // Announcements and meet-ups past their end are not passed on (the
        // store keeps them until the lifetime), nor meet-ups to a peer of an
        // older protocol: the asker hears they are gone.
        let link = load.link;
        let version = self.links.get(&link).map_or(0, |l| l.peer_version);
        // A few at most: a push each, in a class whose queue is bounded.
        let as_pushes = load.live && items.len() <= MAX_PUSHED_ANSWER && self.fetches_live(link, &load.room, now);
        items.retain(|(e, _)| {
            super::ingest::kind_travels_to(e.kind(), version)
                && !(super::ingest::body_end(e).is_some() && self.expired(e))
        });
        let Some(l) = self.links.get_mut(&link) else { return };
        if let Some(i) = l.loads.iter().position(|x| *x == load) {
            l.loads.swap_remove(i);
        }
        let used: usize = items.iter().map(|(e, _)| e.bytes().len()).sum();
        l.serve.refund(load.max_bytes.saturating_sub(used) as u64);
        let kind = l.kind;
        // The start of the range is not held though we had it (expired,
        // evicted, or given up on: it lies within our contiguous run): say
        // so, so the asker looks elsewhere or gives it up. What we never
        // had is not gone; the asker's timeout moves it on.
        let contiguous = self.head(&load.room, &load.author).0;
        let first = items.first().map(|(e, _)| e.seq());
        let lacking_to = match first {
            None => Some(load.to),
            Some(s) if s > load.from => Some(s - 1),
            Some(_) => None,
        };
        if let Some(to) = lacking_to.map(|t| t.min(contiguous)).filter(|t| *t >= load.from) {
            let f = Frame::Gone { room: load.room.clone(), author: load.author, from: load.from, to };
            self.send_frame(link, &f, out);
        }
        let mut batch = Vec::with_capacity(items.len());
        for (env, hops) in items {
            self.note_sent(env.id(), link, kind, out);
            // Another's message never goes on with hops 1, which means
            // "the author's own" (one stored with 0 came so from a peer).
            let hops = if env.author() == self.my_id { hops } else { hops.max(1) };
            batch.push(Item { hops: hops.saturating_add(1).min(MAX_HOPS), envelope: env.bytes().to_vec() });
        }
        if as_pushes {
            for item in batch {
                self.send_frame(link, &Frame::Push(item), out);
            }
        } else if !batch.is_empty() {
            self.send_frame(link, &Frame::Batch { items: batch }, out);
        }
        self.pump_serve(link, now, out);
    }

    /// Reads waiting for budget that may start now (from the timer).
    pub(super) fn pump_all(&mut self, now: Millis, out: &mut Vec<Output>) {
        let links = &self.links;
        let waiting: Vec<LinkId> = self
            .attention
            .iter()
            .filter(|id| links.get(id).is_some_and(|l| !l.serve_queue.is_empty()))
            .copied()
            .collect();
        for link in waiting {
            self.pump_serve(link, now, out);
        }
    }
}
