//! Timer work: hello retransmission, request timeouts, grafts, receipts,
//! refusal reports, serving that waited for budget, change announcements
//! and the periodic summary exchange.

use std::collections::BTreeMap;

use crate::frame::{Frame, MsgRef, MAX_REFS};
use crate::ids::{LinkId, RoomId};

use super::link::SummaryKind;
use super::{Millis, Node, Output};

/// Links a slice of the periodic sync round syncs at most (see
/// `Node::periodic_sync`): a node with up to this many live links syncs
/// them all in one turn, once per `sync_interval_ms`.
pub const SYNC_SLICE_LINKS: usize = 64;

impl Node {
    pub(super) fn on_tick(&mut self, now: Millis, out: &mut Vec<Output>) {
        self.retry_hellos(now, out);
        if self.timers_due.is_some_and(|t| t <= now) {
            self.expire_wants(now, out);
            self.graft_missing(now, out);
            let wants = self.wants.values().map(|w| w.deadline);
            self.timers_due = wants.chain(self.missing.values().map(|m| m.deadline)).min();
        }
        self.report_refusals(now, out);
        self.tree_tick(now, out);
        self.pump_all(now, out);
        if self.receipts_due.is_some_and(|t| t <= now) {
            self.receipts_due = None;
            self.flush_receipts(false, out);
        }
        if self.room_receipts_due.is_some_and(|t| t <= now) {
            self.room_receipts_due = None;
            self.flush_receipts(true, out);
        }
        if self.crowd.due.is_some_and(|t| t <= now) {
            self.flush_announcements(out);
        }
        if self.announce_due.is_some_and(|t| t <= now) {
            self.announce_due = None;
            let rooms: Vec<RoomId> = std::mem::take(&mut self.announce).into_iter().collect();
            self.sync_links(&rooms, false, out);
        }
        if now >= self.next_sync {
            self.periodic_sync(now, out);
        }
    }

    /// The periodic round: every live link once per `sync_interval_ms`,
    /// in slices of equal size, at most [`SYNC_SLICE_LINKS`] links each,
    /// spread evenly over the interval. A node with a few links syncs them
    /// all at once (one wake-up an interval, as before slices); a relay
    /// with thousands does a slice a turn instead of holding everything
    /// else up while it builds thousands of summaries. Each round begins an
    /// interval after the one before began (with 10 % jitter, so
    /// neighbours don't all sync in the same instant), whatever links came
    /// and went during it; what is left of a round is spread over what is
    /// left of its interval.
    fn periodic_sync(&mut self, now: Millis, out: &mut Vec<Output>) {
        use std::ops::Bound::{Excluded, Unbounded};
        let interval = self.limits.sync_interval_ms;
        if self.sync_cursor.is_none() {
            let live = self.links.values().filter(|l| l.hello_received).count();
            let slices = live.div_ceil(SYNC_SLICE_LINKS).max(1);
            self.sync_round = (now, live.div_ceil(slices).max(1));
        }
        if self.foreground || self.limits.background_sync {
            self.sync_slice(now, out);
        } else {
            self.sync_cursor = None;
        }
        let (began, per_slice) = self.sync_round;
        let round_end = began + interval;
        self.next_sync = match self.sync_cursor {
            None => {
                let jitter = rand_core::RngCore::next_u64(&mut self.rng) % (interval / 10).max(1);
                (round_end - interval / 20 + jitter).max(now + 1)
            }
            Some(last) => {
                let left = self.links.range((Excluded(last), Unbounded)).filter(|(_, l)| l.hello_received).count();
                let slices_left = left.div_ceil(per_slice) as u64;
                // The next round's first slice takes the last share.
                now + (round_end.saturating_sub(now) / (slices_left + 1)).max(1)
            }
        };
    }

    /// The next slice of the round: up to the round's slice of live links
    /// after the last one synced, by id; each is told what changed and
    /// reconciles (or gets a digest) in every room both keep, and what its
    /// peer holds beyond us is asked for again. The round ends (and the
    /// next one starts from the lowest id) when a slice reaches the last
    /// live link.
    fn sync_slice(&mut self, now: Millis, out: &mut Vec<Output>) {
        use std::ops::Bound::{Excluded, Unbounded};
        let per_slice = self.sync_round.1;
        let from = self.sync_cursor.map_or(Unbounded, Excluded);
        let mut slice: Vec<LinkId> = Vec::with_capacity(per_slice);
        let mut more = false;
        for (id, _) in self.links.range((from, Unbounded)).filter(|(_, l)| l.hello_received) {
            if slice.len() == per_slice {
                more = true;
                break;
            }
            slice.push(*id);
        }
        self.sync_cursor = if more { slice.last().copied() } else { None };
        for &link in &slice {
            let Some(l) = self.links.get(&link) else { continue };
            let shared: Vec<RoomId> = l.peer_rooms.iter().filter(|r| self.rooms.contains_key(*r)).cloned().collect();
            self.sync_link(link, &shared, true, out);
        }
        self.retry_lacking(&slice, now, out);
    }

    fn retry_hellos(&mut self, now: Millis, out: &mut Vec<Output>) {
        let retry = self.cfg.hello_retry_ms;
        let links = &self.links;
        let due: Vec<LinkId> = self
            .attention
            .iter()
            .filter(|id| links.get(id).is_some_and(|l| !l.hello_acked && l.hello_sent_at + retry <= now))
            .copied()
            .collect();
        for link in due {
            self.send_hello(link, now, out);
        }
    }

    /// Each link's refusals of the last second, as one report.
    fn report_refusals(&mut self, now: Millis, out: &mut Vec<Output>) {
        for link in &self.attention {
            let Some(l) = self.links.get_mut(link) else { continue };
            if let Some(report) = l.refusals.take(now, false) {
                out.push(Output::Refused { link: *link, peer: l.peer, report });
            }
        }
    }

    /// Announced messages that did not arrive by push (or, fetching live,
    /// from the announcer asked): ask the next announcer for them, and make
    /// that link part of the room's tree again (not when fetching live:
    /// nobody pushes others' messages then).
    fn graft_missing(&mut self, now: Millis, out: &mut Vec<Output>) {
        let due: Vec<_> = self.missing.iter().filter(|(_, m)| m.deadline <= now).map(|(k, _)| k.clone()).collect();
        let mut grafts: BTreeMap<LinkId, Vec<MsgRef>> = BTreeMap::new();
        // At most one strike per link a tick: one slow answer to a graft of
        // many refs is one unanswered ask, not many.
        let mut struck = std::collections::BTreeSet::new();
        for pos in due {
            let (room, author, seq) = pos.clone();
            let held = self.rooms.get(&room).and_then(|r| r.authors.get(&author)).is_some_and(|a| a.has(seq));
            let Some(m) = self.missing.get_mut(&pos) else { continue };
            // The one asked did not answer in time (nothing at all came
            // from it since): a strike.
            if let Some((asked, at)) = m.asked.take().filter(|_| !held) {
                if struck.insert(asked) {
                    if let Some(l) = self.links.get_mut(&asked) {
                        l.strike(at, now);
                    }
                }
            }
            if held || m.tried >= m.announcers.len() {
                // Held now, or nobody left to ask: anti-entropy takes over.
                self.forget_missing(&pos);
                continue;
            }
            // The next announcer, a trusted one first.
            let links = &self.links;
            let trusted = |l: &LinkId| links.get(l).is_some_and(|x| x.trusted(now));
            if let Some(j) = (m.tried..m.announcers.len()).find(|&j| trusted(&m.announcers[j])) {
                m.announcers.swap(m.tried, j);
            }
            let link = m.announcers[m.tried];
            m.tried += 1;
            m.asked = Some((link, now));
            let pulls = self.fetches_live(link, &room, now);
            let Some(m) = self.missing.get_mut(&pos) else { continue };
            m.deadline = now + if pulls { self.cfg.graft_timeout_ms } else { self.cfg.want_timeout_ms };
            grafts.entry(link).or_default().push(MsgRef { room: room.clone(), author, seq, id: m.id });
            let tree = pulls || self.follows_tree(link, &room);
            if let Some(r) = self.rooms.get_mut(&room).filter(|_| !tree) {
                r.make_eager(link);
            }
        }
        for (link, refs) in grafts {
            for chunk in refs.chunks(MAX_REFS) {
                self.send_frame(link, &Frame::Graft { refs: chunk.to_vec() }, out);
            }
        }
    }

    /// Send each live link what changed in our holdings of `rooms`; with
    /// `digest`, follow it with the fingerprint of all we hold: a peer of
    /// protocol 4 reconciles when it differs from its own, an older one
    /// (a digest) asks for the whole summary when it differs from what we
    /// told it.
    fn sync_links(&mut self, rooms: &[RoomId], digest: bool, out: &mut Vec<Output>) {
        let links: Vec<(LinkId, Vec<RoomId>)> = self
            .links
            .iter()
            .filter(|(_, l)| l.hello_received)
            .map(|(id, l)| (*id, rooms.iter().filter(|r| l.peer_rooms.contains(*r)).cloned().collect()))
            .collect();
        for (link, shared) in links {
            self.sync_link(link, &shared, digest, out);
        }
    }

    /// Tell `link` what changed in our holdings of `rooms` (rooms it
    /// keeps); with `digest`, follow each with the fingerprint of all we
    /// hold (see [`Self::sync_links`]).
    fn sync_link(&mut self, link: LinkId, rooms: &[RoomId], digest: bool, out: &mut Vec<Output>) {
        for room in rooms {
            self.send_summary(link, room, SummaryKind::Delta, out);
            if digest && self.reconciles(link) {
                self.start_recon(link, room, out);
            } else if digest {
                let Some(r) = self.rooms.get_mut(room) else { continue };
                let digest = r.digest(&self.equivocators);
                self.send_frame(link, &Frame::Digest { room: room.clone(), digest }, out);
            }
        }
    }
}
