//! Timer work: hello retransmission, request timeouts, grafts, receipts,
//! change announcements and the periodic summary exchange.

use std::collections::BTreeMap;

use crate::body::{Body, ReceiptBody, MAX_RECEIPT_IDS};
use crate::frame::{Frame, MsgRef, MAX_REFS};
use crate::ids::{LinkId, RoomId};

use super::engine::SummaryKind;
use super::{Millis, Node, Output};

impl Node {
    pub(super) fn on_tick(&mut self, now: Millis, out: &mut Vec<Output>) {
        self.retry_hellos(now, out);
        self.expire_wants(now, out);
        self.graft_missing(now, out);
        if self.receipts_due.is_some_and(|t| t <= now) {
            self.flush_receipts(now, out);
        }
        if self.announce_due.is_some_and(|t| t <= now) {
            self.announce_due = None;
            let rooms: Vec<RoomId> = std::mem::take(&mut self.announce).into_iter().collect();
            self.sync_links(&rooms, false, out);
        }
        if now >= self.next_sync {
            if self.foreground || self.limits.background_sync {
                let rooms: Vec<RoomId> = self.rooms.keys().cloned().collect();
                self.sync_links(&rooms, true, out);
                self.retry_lacking(now, out);
            }
            // 10 % jitter so neighbours don't all sync in the same instant.
            let interval = self.limits.sync_interval_ms;
            let jitter = rand_core::RngCore::next_u64(&mut self.rng) % (interval / 10).max(1);
            self.next_sync = now + interval - interval / 20 + jitter;
        }
    }

    /// Forget which peers came back empty-handed and ask again for whatever
    /// some peer is known to hold beyond us (its summaries only repeat a head
    /// when it changes, so a failed request must be retried from our side).
    fn retry_lacking(&mut self, now: Millis, out: &mut Vec<Output>) {
        let mut lacking = std::collections::BTreeSet::new();
        for l in self.links.values_mut() {
            l.exhausted.clear();
            for (room, heads) in &l.peer_heads {
                let Some(r) = self.rooms.get(room) else { continue };
                for (author, &(_, their_max)) in heads {
                    if their_max > r.authors.get(author).map_or(0, |a| a.contiguous) {
                        lacking.insert((room.clone(), *author));
                    }
                }
            }
        }
        for (room, author) in lacking {
            self.request_missing(&room, author, now, out);
        }
    }

    fn retry_hellos(&mut self, now: Millis, out: &mut Vec<Output>) {
        let due: Vec<(LinkId, bool)> = self
            .links
            .iter()
            .filter(|(_, l)| !l.hello_acked && l.hello_sent_at + self.cfg.hello_retry_ms <= now)
            .map(|(id, l)| (*id, l.hello_received))
            .collect();
        for (link, ack) in due {
            let f = self.hello(ack);
            self.send_frame(link, &f, out);
            if let Some(l) = self.links.get_mut(&link) {
                l.hello_sent_at = now;
            }
        }
    }

    fn expire_wants(&mut self, now: Millis, out: &mut Vec<Output>) {
        let expired: Vec<_> = self.wants.iter().filter(|(_, w)| w.deadline <= now).map(|(k, _)| k.clone()).collect();
        for key in expired {
            if let Some(w) = self.wants.remove(&key) {
                if let Some(l) = self.links.get_mut(&w.link) {
                    l.exhausted.insert(key.clone());
                }
            }
            self.request_missing(&key.0, key.1, now, out);
        }
    }

    /// Announced messages that did not arrive by push: ask an announcer for
    /// them, and make that link part of the room's tree again.
    fn graft_missing(&mut self, now: Millis, out: &mut Vec<Output>) {
        let due: Vec<_> = self.missing.iter().filter(|(_, m)| m.deadline <= now).map(|(k, _)| k.clone()).collect();
        let mut grafts: BTreeMap<LinkId, Vec<MsgRef>> = BTreeMap::new();
        for pos in due {
            let (room, author, seq) = pos.clone();
            let held = self.rooms.get(&room).and_then(|r| r.authors.get(&author)).is_some_and(|a| a.has(seq));
            let Some(m) = self.missing.get_mut(&pos) else { continue };
            if held || m.tried >= m.announcers.len() {
                // Held now, or nobody left to ask: anti-entropy takes over.
                self.missing.remove(&pos);
                continue;
            }
            let link = m.announcers[m.tried];
            m.tried += 1;
            m.deadline = now + self.cfg.want_timeout_ms;
            grafts.entry(link).or_default().push(MsgRef { room: room.clone(), author, seq, id: m.id });
            if let Some(r) = self.rooms.get_mut(&room) {
                r.make_eager(link);
            }
        }
        for (link, refs) in grafts {
            for chunk in refs.chunks(MAX_REFS) {
                self.send_frame(link, &Frame::Graft { refs: chunk.to_vec() }, out);
            }
        }
    }

    fn flush_receipts(&mut self, now: Millis, out: &mut Vec<Output>) {
        self.receipts_due = None;
        for ((room, status), ids) in std::mem::take(&mut self.receipts) {
            for chunk in ids.chunks(MAX_RECEIPT_IDS) {
                let body = Body::Receipt(ReceiptBody { status, ids: chunk.to_vec() });
                if let Ok(env) = self.author(room.clone(), body, now) {
                    out.push(Output::Persist { envelope: env, hops: 0, local: true });
                }
            }
        }
    }

    /// Send each live link what changed in our holdings of `rooms`; with
    /// `digest`, follow it with the digest of all we hold, so a peer that
    /// missed a summary notices and asks for the whole of it.
    fn sync_links(&mut self, rooms: &[RoomId], digest: bool, out: &mut Vec<Output>) {
        let links: Vec<(LinkId, Vec<RoomId>)> = self
            .links
            .iter()
            .filter(|(_, l)| l.hello_received)
            .map(|(id, l)| (*id, rooms.iter().filter(|r| l.peer_rooms.contains(*r)).cloned().collect()))
            .collect();
        for (link, shared) in links {
            for room in shared {
                self.send_summary(link, &room, SummaryKind::Delta, out);
                if digest {
                    let Some(r) = self.rooms.get_mut(&room) else { continue };
                    let digest = r.digest();
                    self.send_frame(link, &Frame::Digest { room, digest }, out);
                }
            }
        }
    }
}
