//! Frame handling: hellos, summaries, wants, batches, push and announcements.

use crate::body::{Body, ReceiptStatus};
use crate::envelope::SignedEnvelope;
use crate::frame::{Frame, Head, Hello, Item, MsgRef, Summary, Want, MAX_HOPS, MAX_SUMMARY_HEADS};
use crate::ids::{LinkId, MessageId, PeerId, RoomId};

use super::state::{LinkState, TokenBucket};
use super::{LinkKind, Millis, Missing, Node, Output, Pending, PersistError, Reject, WantInFlight, PROTOCOL_VERSION};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum SummaryKind {
    /// Every head: on link-up and when the peer asks.
    Full,
    /// Only heads changed since we last told this link.
    Delta,
}

/// How a new envelope reached us.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    Push,
    Sync,
}

impl Node {
    pub(super) fn send_frame(&mut self, link: LinkId, frame: &Frame, out: &mut Vec<Output>) {
        out.push(Output::Send { link, bytes: frame.encode() });
    }

    pub(super) fn hello(&self, ack: bool) -> Frame {
        Frame::Hello(Hello {
            version: PROTOCOL_VERSION,
            ack,
            rooms: self.rooms.keys().cloned().collect(),
            relays: self.limits.relay_for_others,
            powered: !matches!(self.power, crate::policy::PowerState::Battery { .. }),
        })
    }

    /// Re-announce our rooms and role to every link (after a join, leave or power change).
    pub(super) fn hello_all(&mut self, now: Millis, out: &mut Vec<Output>) {
        let links: Vec<(LinkId, bool)> = self.links.iter().map(|(id, l)| (*id, l.hello_received)).collect();
        for (link, ack) in links {
            let f = self.hello(ack);
            self.send_frame(link, &f, out);
            if let Some(l) = self.links.get_mut(&link) {
                l.hello_sent_at = now;
            }
        }
    }

    pub(super) fn on_link_up(
        &mut self,
        link: LinkId,
        peer: PeerId,
        kind: LinkKind,
        now: Millis,
        out: &mut Vec<Output>,
    ) {
        let (fr, fb) = self.cfg.frame_rate;
        let (er, eb) = self.cfg.envelope_rate;
        self.links.insert(
            link,
            LinkState {
                peer,
                kind,
                hello_received: false,
                hello_acked: false,
                hello_sent_at: now,
                peer_rooms: Default::default(),
                peer_relays: false,
                peer_powered: false,
                peer_heads: Default::default(),
                told: Default::default(),
                exhausted: Default::default(),
                frames: TokenBucket::new(fr, fb, now),
                envelopes: TokenBucket::new(er, eb, now),
            },
        );
        let f = self.hello(false);
        self.send_frame(link, &f, out);
    }

    pub(super) fn on_link_down(&mut self, link: LinkId, now: Millis) {
        if self.links.remove(&link).is_none() {
            return;
        }
        for room in self.rooms.values_mut() {
            room.drop_link(link);
        }
        // Whatever we were waiting for from that link, ask someone else now.
        for w in self.wants.values_mut().filter(|w| w.link == link) {
            w.deadline = now;
        }
        for m in self.missing.values_mut() {
            m.announcers.retain(|l| *l != link);
        }
    }

    fn reject(&mut self, link: LinkId, reason: Reject, out: &mut Vec<Output>) {
        let Some(peer) = self.links.get(&link).map(|l| l.peer) else { return };
        *self.stats.peer(peer).rejected.entry(reason.code()).or_default() += 1;
        out.push(Output::Rejected { link, peer, reason });
    }

    pub(super) fn on_frame(&mut self, link: LinkId, bytes: &[u8], now: Millis, out: &mut Vec<Output>) {
        let Some(l) = self.links.get_mut(&link) else { return };
        let peer = l.peer;
        if !l.frames.take(now) {
            return self.reject(link, Reject::RateLimited, out);
        }
        self.stats.peer(peer).frames_in += 1;
        let frame = match Frame::decode(bytes) {
            Ok(f) => f,
            Err(e) => return self.reject(link, e.into(), out),
        };
        let hello_received = self.links.get(&link).is_some_and(|l| l.hello_received);
        match frame {
            Frame::Hello(h) => self.on_hello(link, h, now, out),
            // Before the hello (lost on a lossy link) we cannot know the peer's
            // rooms; its hello is being retransmitted, so drop the rest for now.
            _ if !hello_received => {}
            Frame::Summary(s) => self.on_summary(link, s, now, out),
            Frame::Digest { room, digest } => {
                // The peer's digest of its holdings; if our picture of them
                // differs, a summary of theirs went missing: ask for all of it.
                let stale = self.links.get(&link).is_some_and(|l| l.view_digest(&room) != digest);
                if stale && self.rooms.contains_key(&room) {
                    let f = Frame::Summary(Summary { room, heads: Vec::new(), reply: true });
                    self.send_frame(link, &f, out);
                }
            }
            Frame::Want(w) => self.on_want(link, w, out),
            Frame::Batch { items } => {
                let mut touched = Vec::new();
                for item in items {
                    if let Some(key) = self.incoming(link, item, Via::Sync, now, out) {
                        touched.push(key);
                    }
                }
                touched.sort();
                touched.dedup();
                for (room, author) in touched {
                    if self.wants.get(&(room.clone(), author)).is_some_and(|w| w.link == link) {
                        self.wants.remove(&(room.clone(), author));
                        self.request_missing(&room, author, now, out);
                    }
                }
            }
            Frame::Push(item) => {
                self.incoming(link, item, Via::Push, now, out);
            }
            Frame::IHave { refs } => self.on_ihave(link, refs, now),
            Frame::Graft { refs } => {
                for r in refs {
                    let Some(room) = self.rooms.get_mut(&r.room) else { continue };
                    room.make_eager(link);
                    self.serve(link, r.room, r.author, r.seq, r.seq, out);
                }
            }
            Frame::Prune { room } => {
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.make_lazy(link);
                }
            }
        }
    }

    /// Ask the store for `from..=to` of `author` in `room`, for `link`: always
    /// for our own messages, for others' only while the power policy lets us
    /// work for others.
    fn serve(&self, link: LinkId, room: RoomId, author: PeerId, from: u64, to: u64, out: &mut Vec<Output>) {
        if author == self.my_id || self.limits.relay_for_others {
            out.push(Output::Load { link, room, author, from, to, max_bytes: self.cfg.batch_bytes });
        }
    }

    fn on_hello(&mut self, link: LinkId, h: Hello, now: Millis, out: &mut Vec<Output>) {
        if h.version != PROTOCOL_VERSION {
            return self.reject(link, Reject::Version(h.version), out);
        }
        let Some(l) = self.links.get_mut(&link) else { return };
        let first = !l.hello_received;
        l.hello_received = true;
        l.hello_acked |= h.ack;
        l.peer_relays = h.relays;
        l.peer_powered = h.powered;
        let before = std::mem::replace(&mut l.peer_rooms, h.rooms.into_iter().collect());
        if !h.ack {
            let f = self.hello(true);
            self.send_frame(link, &f, out);
            if let Some(l) = self.links.get_mut(&link) {
                l.hello_sent_at = now;
            }
        }
        let peer_rooms = self.links[&link].peer_rooms.clone();
        for room in self.rooms.keys().cloned().collect::<Vec<_>>() {
            let shared = peer_rooms.contains(&room);
            let r = self.rooms.get_mut(&room).expect("listed above");
            if !shared {
                r.drop_link(link);
            } else if first || !before.contains(&room) {
                r.make_eager(link);
                self.send_summary(link, &room, SummaryKind::Full, out);
            }
        }
    }

    /// Tell a link our heads in `room`: all of them, or only those changed
    /// since we last told it (nothing is sent when nothing changed).
    pub(super) fn send_summary(&mut self, link: LinkId, room: &RoomId, kind: SummaryKind, out: &mut Vec<Output>) {
        let (Some(r), Some(l)) = (self.rooms.get(room), self.links.get_mut(&link)) else { return };
        let told = l.told.entry(room.clone()).or_default();
        let heads: Vec<Head> = r
            .heads()
            .into_iter()
            .filter(|h| kind == SummaryKind::Full || told.get(&h.author) != Some(&(h.contiguous, h.max)))
            .collect();
        for h in &heads {
            told.insert(h.author, (h.contiguous, h.max));
        }
        if heads.is_empty() && kind == SummaryKind::Delta {
            return;
        }
        let chunks: Vec<Vec<Head>> = if heads.is_empty() {
            vec![Vec::new()]
        } else {
            heads.chunks(MAX_SUMMARY_HEADS).map(<[_]>::to_vec).collect()
        };
        for heads in chunks {
            let f = Frame::Summary(Summary { room: room.clone(), heads, reply: false });
            self.send_frame(link, &f, out);
        }
    }

    fn on_summary(&mut self, link: LinkId, s: Summary, now: Millis, out: &mut Vec<Output>) {
        if !self.rooms.contains_key(&s.room) {
            return;
        }
        let Some(l) = self.links.get_mut(&link) else { return };
        let view = l.peer_heads.entry(s.room.clone()).or_default();
        for h in &s.heads {
            view.insert(h.author, (h.contiguous, h.max));
            l.exhausted.remove(&(s.room.clone(), h.author));
        }
        for h in &s.heads {
            // Cheap pre-check; request_missing finds the exact gap.
            if h.max > self.head(&s.room, &h.author).0 {
                self.request_missing(&s.room, h.author, now, out);
            }
        }
        if s.reply {
            self.send_summary(link, &s.room, SummaryKind::Full, out);
        }
    }

    /// If someone holds more of `author` in `room` than we do and nobody is
    /// already fetching it, ask the best such link for the first gap.
    pub(super) fn request_missing(&mut self, room: &RoomId, author: PeerId, now: Millis, out: &mut Vec<Output>) {
        let key = (room.clone(), author);
        if self.wants.get(&key).is_some_and(|w| w.deadline > now) {
            return;
        }
        self.wants.remove(&key);
        let Some(r) = self.rooms.get(room) else { return };
        let empty = Default::default();
        let state = r.authors.get(&author).unwrap_or(&empty);
        // Candidates: links whose peer holds beyond our first gap and will
        // serve it. Prefer LAN over relay, powered peers, then the most complete.
        // (link, rank, range to ask for)
        type Candidate = (LinkId, (bool, bool, u64), (u64, u64));
        let mut candidates: Vec<Candidate> = Vec::new();
        for (id, l) in &self.links {
            let Some((_, their_max)) = l.peer_head(room, &author) else { continue };
            if l.exhausted.contains(&key) || !(l.peer_relays || l.peer == author) {
                continue;
            }
            if let Some(range) = state.first_gap(their_max, self.cfg.want_chunk) {
                candidates.push((*id, (l.kind == LinkKind::Lan, l.peer_powered, their_max), range));
            }
        }
        let Some(top) = candidates.iter().map(|c| c.1).max() else { return };
        candidates.retain(|c| c.1 == top);
        let pick = (rand_core::RngCore::next_u32(&mut self.rng) as usize) % candidates.len();
        let (link, _, (from, to)) = candidates[pick];
        let f = Frame::Want(Want { room: room.clone(), author, from, to });
        self.send_frame(link, &f, out);
        self.wants.insert(key, WantInFlight { link, deadline: now + self.cfg.want_timeout_ms });
    }

    fn on_want(&mut self, link: LinkId, w: Want, out: &mut Vec<Output>) {
        if !self.rooms.contains_key(&w.room) {
            return self.reject(link, Reject::NotCarried(w.room), out);
        }
        self.serve(link, w.room, w.author, w.from, w.to, out);
    }

    pub(super) fn on_loaded(&mut self, link: LinkId, items: Vec<(SignedEnvelope, u8)>, out: &mut Vec<Output>) {
        let Some(kind) = self.links.get(&link).map(|l| l.kind) else { return };
        let mut batch = Vec::with_capacity(items.len());
        for (env, hops) in items {
            self.note_sent(env.id(), link, kind, out);
            batch.push(Item { hops: hops.saturating_add(1).min(MAX_HOPS), envelope: env.bytes().to_vec() });
        }
        // Nothing held in that range: say nothing; the asker's timeout moves it
        // on to another peer (this only happens when holdings changed).
        if !batch.is_empty() {
            self.send_frame(link, &Frame::Batch { items: batch }, out);
        }
    }

    fn note_sent(&mut self, id: MessageId, link: LinkId, kind: LinkKind, out: &mut Vec<Output>) {
        if self.unsent.remove(&id) {
            out.push(Output::Sent { id, link, kind });
        }
    }

    fn on_ihave(&mut self, link: LinkId, refs: Vec<MsgRef>, now: Millis) {
        for r in refs {
            let Some(room) = self.rooms.get(&r.room) else { continue };
            if room.authors.get(&r.author).is_some_and(|a| a.has(r.seq)) {
                continue;
            }
            let m = self.missing.entry((r.room, r.author, r.seq)).or_insert_with(|| Missing {
                id: r.id,
                announcers: Vec::new(),
                deadline: now + self.cfg.graft_timeout_ms,
                tried: 0,
            });
            if !m.announcers.contains(&link) {
                m.announcers.push(link);
            }
        }
    }

    /// Check a received envelope and, if it is new, hand it to the store.
    /// Returns the (room, author) it belongs to when it was valid.
    fn incoming(
        &mut self,
        link: LinkId,
        item: Item,
        via: Via,
        now: Millis,
        out: &mut Vec<Output>,
    ) -> Option<(RoomId, PeerId)> {
        let l = self.links.get_mut(&link)?;
        let peer = l.peer;
        if !l.envelopes.take(now) {
            self.reject(link, Reject::RateLimited, out);
            return None;
        }
        self.stats.peer(peer).envelopes_in += 1;
        let env = match SignedEnvelope::decode(&item.envelope) {
            Ok(e) => e,
            Err(e) => {
                self.reject(link, e.into(), out);
                return None;
            }
        };
        let room_id = env.room().clone();
        let (author, seq) = (env.author(), env.seq());
        let Some(room) = self.rooms.get_mut(&room_id) else {
            self.reject(link, Reject::NotCarried(room_id), out);
            return None;
        };
        if env.created_at() > now + self.cfg.max_clock_skew_ms {
            let ahead_ms = env.created_at() - now;
            self.reject(link, Reject::FromFuture { ahead_ms }, out);
            return None;
        }
        let a = room.authors.entry(author).or_default();
        if a.has(seq) {
            self.stats.peer(peer).duplicates += 1;
            let pos = (room_id.clone(), author, seq);
            if self.recent.get(&pos).is_some_and(|id| *id != env.id()) {
                self.reject(link, Reject::Equivocation { room: room_id.clone(), author, seq }, out);
            } else if via == Via::Push && self.rooms.get_mut(&room_id).is_some_and(|r| r.make_lazy(link)) {
                self.send_frame(link, &Frame::Prune { room: room_id.clone() }, out);
            }
            return Some((room_id, author));
        }
        if seq > a.contiguous + self.cfg.max_seq_ahead {
            let contiguous = a.contiguous;
            self.reject(link, Reject::SeqTooFarAhead { seq, contiguous }, out);
            return None;
        }
        a.pending.insert(seq);
        room.author(author); // invalidates the digest cache
        self.missing.remove(&(room_id.clone(), author, seq));
        out.push(Output::Persist { envelope: env.clone(), hops: item.hops, local: false });
        self.pending
            .insert(env.id(), Pending { envelope: env, hops: item.hops, from: Some(link), live: via == Via::Push });
        Some((room_id, author))
    }

    pub(super) fn on_persisted(
        &mut self,
        id: MessageId,
        result: Result<(), PersistError>,
        now: Millis,
        out: &mut Vec<Output>,
    ) {
        let Some(p) = self.pending.remove(&id) else { return };
        let env = p.envelope;
        let (room_id, author, seq) = (env.room().clone(), env.author(), env.seq());
        let Some(room) = self.rooms.get_mut(&room_id) else { return };
        let a = room.author(author);
        a.pending.remove(&seq);
        match result {
            Err(PersistError::Conflict) => {
                if let Some(link) = p.from {
                    self.reject(link, Reject::Equivocation { room: room_id, author, seq }, out);
                }
                return;
            }
            Err(PersistError::Failed(_)) => return,
            Ok(()) => {}
        }
        a.above.insert(seq, id);
        while let Some(next) = a.above.remove(&(a.contiguous + 1)) {
            a.contiguous += 1;
            out.push(Output::Deliver { id: next, room: room_id.clone(), author, seq: a.contiguous });
            if author != self.my_id {
                self.stats.delivered += 1;
            }
        }
        self.recent.insert((room_id.clone(), author, seq), id);
        let local = p.from.is_none();
        if local {
            self.unsent.insert(id);
        }
        if p.live && (local || self.limits.relay_for_others) {
            self.forward(&env, p.hops, p.from, out);
        } else if !p.live {
            self.announce.insert(room_id.clone());
            self.announce_due.get_or_insert(now + self.cfg.graft_timeout_ms);
        }
        if !local {
            self.receipt_for(&env, now);
        }
    }

    /// Push along the room's tree, announce to the rest.
    fn forward(&mut self, env: &SignedEnvelope, hops: u8, from: Option<LinkId>, out: &mut Vec<Output>) {
        let room_id = env.room().clone();
        let Some(room) = self.rooms.get(&room_id) else { return };
        let next_hops = hops.saturating_add(1);
        if next_hops > MAX_HOPS {
            return;
        }
        let mut eager: Vec<LinkId> = room.eager.iter().copied().filter(|l| Some(*l) != from).collect();
        // Direct links first: a message leaves by a data channel when there
        // is one, and by the relay otherwise (its path is the first link).
        eager.sort_by_key(|l| self.links.get(l).map(|x| x.kind == LinkKind::Relay));
        let lazy: Vec<LinkId> = room.lazy.iter().copied().filter(|l| Some(*l) != from).collect();
        let push = Frame::Push(Item { hops: next_hops, envelope: env.bytes().to_vec() });
        let push_bytes = push.encode();
        for link in eager {
            out.push(Output::Send { link, bytes: push_bytes.clone() });
            if let Some(kind) = self.links.get(&link).map(|l| l.kind) {
                self.note_sent(env.id(), link, kind, out);
            }
        }
        if !lazy.is_empty() {
            let r = MsgRef { room: room_id, author: env.author(), seq: env.seq(), id: env.id() };
            let ihave = Frame::IHave { refs: vec![r] }.encode();
            for link in lazy {
                out.push(Output::Send { link, bytes: ihave.clone() });
            }
        }
    }

    fn receipt_for(&mut self, env: &SignedEnvelope, now: Millis) {
        let room = env.room().clone();
        let wanted = match env.parsed_body() {
            Body::SealedDm(s) => s.recipient == self.my_id,
            Body::Text(_) => self.rooms.get(&room).is_some_and(|r| r.members() <= self.cfg.room_receipts_max_members),
            Body::Receipt(_) | Body::Profile(_) => false,
        };
        if wanted {
            self.queue_receipts(room, ReceiptStatus::Delivered, vec![env.id()], now);
        }
    }
}
