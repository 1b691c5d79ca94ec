//! Links: hellos, frame dispatch, summaries and digests, refusals.

use crate::frame::{Frame, Head, Hello, Recon, Summary, Want, MAX_HELLO_ROOMS, MAX_SUMMARY_HEADS};
use crate::ids::{LinkId, PeerId, RoomId};

use super::caps::{MAX_CLAIMS_PER_LINK, MAX_TIP_PROBES};
use super::recon;
use super::state::{LinkState, NO_TIP};
use super::{LinkKind, Millis, Node, Output, Reject, ANNOUNCEMENTS_VERSION, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum SummaryKind {
    /// Every head: on link-up and when the peer asks.
    Full,
    /// Only heads changed since we last told this link.
    Delta,
}

impl Node {
    pub(super) fn send_frame(&mut self, link: LinkId, frame: &Frame, out: &mut Vec<Output>) {
        out.push(Output::Send { link, bytes: frame.encode() });
    }

    /// Our hello to `link`: every room we carry, or (`hello_shared_only`,
    /// a relay) the festival room, DMs and the rooms the link named.
    fn hello(&self, link: LinkId, ack: bool) -> Frame {
        let common = RoomId::everyones();
        let peer_rooms = self.links.get(&link).map(|l| &l.peer_rooms);
        // A peer known to speak an older protocol is not told of rooms it
        // would not understand (`ANNOUNCEMENTS_VERSION`).
        let older = self.links.get(&link).is_some_and(|l| l.hello_received && l.peer_version < ANNOUNCEMENTS_VERSION);
        let rooms = self
            .rooms
            .keys()
            .filter(|r| !(older && r.is_announcements()))
            .filter(|r| !self.cfg.hello_shared_only || common.contains(r) || peer_rooms.is_some_and(|p| p.contains(*r)))
            .take(MAX_HELLO_ROOMS)
            .cloned()
            .collect();
        // Ours, or the peer's when it spoke an older one we also speak.
        let version = self
            .links
            .get(&link)
            .filter(|l| l.hello_received)
            .map_or(PROTOCOL_VERSION, |l| l.peer_version.min(PROTOCOL_VERSION));
        Frame::Hello(Hello {
            version,
            ack,
            rooms,
            relays: self.limits.relay_for_others,
            powered: !matches!(self.power, crate::policy::PowerState::Battery { .. }),
        })
    }

    pub(super) fn send_hello(&mut self, link: LinkId, now: Millis, out: &mut Vec<Output>) {
        let ack = self.links.get(&link).is_some_and(|l| l.hello_received);
        self.send_hello_acking(link, ack, now, out);
    }

    fn send_hello_acking(&mut self, link: LinkId, ack: bool, now: Millis, out: &mut Vec<Output>) {
        let f = self.hello(link, ack);
        self.send_frame(link, &f, out);
        if let Some(l) = self.links.get_mut(&link) {
            l.hello_sent_at = now;
        }
    }

    /// Re-announce our rooms and role to every link (after a power change).
    pub(super) fn hello_all(&mut self, now: Millis, out: &mut Vec<Output>) {
        let links: Vec<LinkId> = self.links.keys().copied().collect();
        for link in links {
            self.send_hello(link, now, out);
        }
    }

    /// We joined or left `room`: tell the links that need to know. With
    /// `hello_shared_only` only those that named it (a relay joining a room
    /// for one node does not re-hello every node).
    pub(super) fn hello_rooms_changed(&mut self, room: &RoomId, now: Millis, out: &mut Vec<Output>) {
        let links: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, l)| !self.cfg.hello_shared_only || l.peer_rooms.contains(room))
            .map(|(id, _)| *id)
            .collect();
        for link in links {
            self.send_hello(link, now, out);
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
        self.links.insert(link, LinkState::new(peer, kind, &self.cfg, now));
        self.attention.insert(link);
        self.send_hello(link, now, out);
    }

    pub(super) fn on_link_down(&mut self, link: LinkId, now: Millis, out: &mut Vec<Output>) {
        let Some(mut l) = self.links.remove(&link) else { return };
        self.stats.link_went_down();
        if let Some(report) = l.refusals.take(now, true) {
            out.push(Output::Refused { link, peer: l.peer, report });
        }
        let mut trees = Vec::new();
        for (id, room) in self.rooms.iter_mut() {
            // The parent is one of the tree's links.
            if room.tree.pinned.contains(&link) {
                trees.push(id.clone());
            }
            room.drop_link(link);
        }
        for room in trees {
            self.tree_update(&room, now, out);
        }
        // Whatever we were waiting for from that link, ask someone else now.
        for w in self.wants.values_mut().filter(|w| w.link == link) {
            w.deadline = now;
            self.timers_due = Some(now);
        }
        for m in self.missing.values_mut() {
            if let Some(i) = m.announcers.iter().position(|l| *l == link) {
                m.announcers.remove(i);
                if i < m.tried {
                    m.tried -= 1;
                }
            }
            if m.asked.is_some_and(|(l, _)| l == link) {
                // The one asked went away: ask the next now.
                m.asked = None;
                m.deadline = now;
                self.timers_due = Some(now);
            }
        }
        self.crowd.waiting.remove(&link);
    }

    /// Count a refusal against the link's peer; report it with the link's
    /// others once a second; report the link when it misbehaves.
    pub(super) fn reject(&mut self, link: LinkId, reason: Reject, now: Millis, out: &mut Vec<Output>) {
        let Some(peer) = self.links.get(&link).map(|l| l.peer) else { return };
        *self.counters(peer).rejected.entry(reason.code()).or_default() += 1;
        let Some(l) = self.links.get_mut(&link) else { return };
        self.attention.insert(link);
        if l.refusals.count(reason, now) && !l.dropped {
            l.dropped = true;
            out.push(Output::Misbehaving { link, peer });
        }
        if let Some(report) = l.refusals.take(now, false) {
            out.push(Output::Refused { link, peer, report });
        }
    }

    pub(super) fn on_frame(&mut self, link: LinkId, bytes: &[u8], now: Millis, out: &mut Vec<Output>) {
        let Some(l) = self.links.get_mut(&link) else { return };
        if l.dropped {
            return;
        }
        let peer = l.peer;
        if !l.frames.take(now) {
            return self.reject(link, Reject::RateLimited, now, out);
        }
        self.counters(peer).frames_in += 1;
        let frame = match Frame::decode(bytes) {
            Ok(f) => f,
            Err(e) => return self.reject(link, e.into(), now, out),
        };
        let hello_received = self.links.get(&link).is_some_and(|l| l.hello_received);
        if matches!(frame, Frame::Push(_) | Frame::Batch { .. } | Frame::Gone { .. }) {
            if let Some(l) = self.links.get_mut(&link) {
                l.heard_at = now;
            }
        }
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
            Frame::Want(w) => self.on_want(link, w, now, out),
            Frame::Batch { items } => self.on_batch(link, items, now, out),
            Frame::Push(item) => {
                self.incoming(link, item, super::ingest::Via::Push, now, out);
            }
            Frame::IHave { refs } => self.on_ihave(link, refs, now, out),
            Frame::Graft { refs } => self.on_graft(link, refs, now, out),
            Frame::Prune { room } => {
                let pinned = self.rooms.get(&room).is_some_and(|r| r.tree.pinned.contains(&link));
                if pinned {
                    // A tree link stays; the peer does not see it as one.
                    self.tree_mismatch(link, &room, now, out);
                } else if let Some(r) = self.rooms.get_mut(&room) {
                    r.make_lazy(link);
                }
            }
            Frame::Gone { room, author, from, to } => self.on_gone(link, room, author, from, to, now, out),
            Frame::Proof { a, b } => self.on_proof(link, &a, &b, now, out),
            Frame::Tree(advert) => self.on_tree(link, advert, now, out),
            Frame::Recon(r) => self.on_recon(link, r, now, out),
        }
    }

    fn on_hello(&mut self, link: LinkId, h: Hello, now: Millis, out: &mut Vec<Output>) {
        if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&h.version) {
            return self.reject(link, Reject::Version(h.version), now, out);
        }
        let Some(l) = self.links.get_mut(&link) else { return };
        let first = !l.hello_received;
        // An older peer refused our hello: say it again in its version.
        let older = h.version < PROTOCOL_VERSION && l.peer_version != h.version;
        l.peer_version = h.version;
        l.hello_received = true;
        let acked = h.ack && !l.hello_acked;
        l.hello_acked |= h.ack;
        l.peer_relays = h.relays;
        l.peer_powered = h.powered;
        // An older peer does not know announcements (see
        // `ANNOUNCEMENTS_VERSION`): whatever it names, that room is not shared.
        let rooms = h.rooms.into_iter().filter(|r| h.version >= ANNOUNCEMENTS_VERSION || !r.is_announcements());
        let before = std::mem::replace(&mut l.peer_rooms, rooms.collect());
        // A relay's hello depends on ours: answer when ours changes too.
        let ours_changed = self.cfg.hello_shared_only && before != self.links[&link].peer_rooms;
        if older {
            // It refused our first hello, so it has none to ack: say hello
            // in its version without an ack, so that it answers with one.
            self.send_hello_acking(link, false, now, out);
        } else if !h.ack || ours_changed {
            self.send_hello(link, now, out);
        }
        let peer_rooms = self.links[&link].peer_rooms.clone();
        let capable = self.tree_capable(link);
        for room in self.rooms.keys().cloned().collect::<Vec<_>>() {
            let shared = peer_rooms.contains(&room);
            let r = self.rooms.get_mut(&room).expect("listed above");
            if !shared {
                r.drop_link(link);
                self.forget_claims(link, &room);
                if let Some(l) = self.links.get_mut(&link) {
                    l.trees.remove(&room);
                }
                if before.contains(&room) {
                    self.tree_update(&room, now, out);
                }
            } else if first || !before.contains(&room) {
                if capable {
                    // The tree decides this link's pushes: a peer that
                    // speaks it sends its advert once it has our hello. Till
                    // then (and for good from a peer that never sends one)
                    // messages are announced to it, and it grafts them.
                    r.make_lazy(link);
                } else {
                    r.make_eager(link);
                }
                self.link_up_sync(link, &room, out);
                // Where we stand in the room's tree, if the peer speaks it.
                self.tree_update(&room, now, out);
            } else if acked {
                self.tree_update(&room, now, out);
                // Our hello has arrived: the exchange can start now.
                self.first_recon(link, &room, out);
            }
        }
    }

    /// Drop what a link claimed in a room it no longer shares with us.
    fn forget_claims(&mut self, link: LinkId, room: &RoomId) {
        if let Some(l) = self.links.get_mut(&link) {
            if let Some(v) = l.peer_heads.remove(room) {
                l.claims -= v.heads.len();
            }
        }
    }

    /// The peer reconciles heads (protocol 4): no full summaries, no
    /// digests; `Recon` exchanges instead.
    pub(super) fn reconciles(&self, link: LinkId) -> bool {
        self.links.get(&link).is_some_and(|l| l.peer_version >= 4)
    }

    /// A room newly shared with a link: tell it what we hold. A peer of
    /// protocol 4 reconciles: the side with the lower id starts (so one
    /// exchange runs, not two), once the peer has confirmed our hello (a
    /// frame before that would be dropped); older ones get every head.
    fn link_up_sync(&mut self, link: LinkId, room: &RoomId, out: &mut Vec<Output>) {
        if !self.reconciles(link) {
            return self.send_summary(link, room, SummaryKind::Full, out);
        }
        // Reconciliation covers what we hold now: summaries after it
        // carry what changes from here.
        let (Some(r), Some(l)) = (self.rooms.get_mut(room), self.links.get_mut(&link)) else { return };
        l.told.insert(room.clone(), r.changes(&self.equivocators));
        self.first_recon(link, room, out);
    }

    /// The exchange of a newly shared room starts from the side with the
    /// lower id, once the peer has confirmed our hello.
    fn first_recon(&mut self, link: LinkId, room: &RoomId, out: &mut Vec<Output>) {
        let starts = self.links.get(&link).is_some_and(|l| l.peer_version >= 4 && l.hello_acked && self.my_id < l.peer);
        if starts {
            self.start_recon(link, room, out);
        }
    }

    /// Our fingerprint of all of `room`: the first part of an exchange.
    pub(super) fn start_recon(&mut self, link: LinkId, room: &RoomId, out: &mut Vec<Output>) {
        let Some(r) = self.rooms.get_mut(room) else { return };
        r.settle(&self.equivocators);
        let f = Frame::Recon(Recon { room: room.clone(), parts: vec![recon::start(&*r)] });
        self.send_frame(link, &f, out);
    }

    /// Answer a peer's reconciliation: the parts that go on, in `Recon`
    /// frames, and our heads it lacks, in summaries (which it merges).
    fn on_recon(&mut self, link: LinkId, rec: Recon, now: Millis, out: &mut Vec<Output>) {
        let shared = self.links.get(&link).is_some_and(|l| l.peer_rooms.contains(&rec.room));
        if !shared || !self.reconciles(link) {
            return;
        }
        let Some(r) = self.rooms.get_mut(&rec.room) else { return };
        let Some(l) = self.links.get_mut(&link) else { return };
        // Answering costs CPU (heads read) and bandwidth (what we send,
        // from the link's serving budget, shared with its wants): a peer
        // that asks before both have refilled is refused. An honest one
        // asks once per sync interval and then only what differs; it is
        // no fault, and the next sync asks again.
        if !l.recon.has(0, now) || !l.serve.has(0, now) {
            return self.reject(link, Reject::ReconBusy, now, out);
        }
        r.settle(&self.equivocators);
        let answer = recon::answer(&*r, &rec.parts);
        l.recon.charge(answer.read as u64, now);
        let frames: Vec<Vec<u8>> = recon::frames(&rec.room, &answer).iter().map(Frame::encode).collect();
        l.serve.charge(frames.iter().map(|f| f.len() as u64).sum(), now);
        out.extend(frames.into_iter().map(|bytes| Output::Send { link, bytes }));
    }

    /// Tell a link our heads in `room`: all of them, or only those changed
    /// since we last told it (nothing is sent when nothing changed).
    pub(super) fn send_summary(&mut self, link: LinkId, room: &RoomId, kind: SummaryKind, out: &mut Vec<Output>) {
        let (Some(r), Some(l)) = (self.rooms.get_mut(room), self.links.get_mut(&link)) else { return };
        let told = l.told.entry(room.clone()).or_default();
        let since = if kind == SummaryKind::Full { 0 } else { *told };
        let (heads, now_at) = r.heads_since(since, &self.equivocators);
        *told = now_at;
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
        let shared = self.links.get(&link).is_some_and(|l| l.peer_rooms.contains(&s.room));
        if !self.rooms.contains_key(&s.room) || !shared {
            return;
        }
        // A head with max 0 holds nothing: no digest counts one, so the
        // view leaves it out too (else it would never match again). Heads
        // of authors we do not take (someone else's announcements, a
        // blocked person's DMs) are kept in the view, so it matches the
        // peer's digest, but nothing is asked for or adopted from them.
        let heads: Vec<_> = s.heads.iter().filter(|h| h.max > 0).copied().collect();
        let Some(l) = self.links.get_mut(&link) else { return };
        let mut over_cap = false;
        let mut claimed = Vec::with_capacity(heads.len());
        for h in &heads {
            let left = MAX_CLAIMS_PER_LINK - l.claims;
            let view = l.peer_heads.entry(s.room.clone()).or_default();
            let known = view.heads.contains_key(&h.author);
            if view.claim(*h, left) {
                l.claims += usize::from(!known);
                l.exhausted.remove(&(s.room.clone(), h.author));
                claimed.push(*h);
            } else {
                over_cap = true;
            }
        }
        if over_cap {
            self.reject(link, Reject::ClaimsOverCap, now, out);
        }
        let mut probes = 0;
        for h in claimed {
            if !self.takes_author(&s.room, &h.author) {
                continue;
            }
            self.adopt_tip(&s.room, &h);
            let (contiguous, _) = self.head(&s.room, &h.author);
            // Cheap pre-check; request_missing finds the exact gap.
            if h.max > contiguous {
                self.request_missing(&s.room, h.author, now, out);
            } else if probes < MAX_TIP_PROBES && h.tip != NO_TIP && self.tip_differs(&s.room, &h) {
                // Same position, another message: fetch theirs, and the
                // duplicate check finds the equivocation.
                probes += 1;
                let f = Frame::Want(Want { room: s.room.clone(), author: h.author, from: h.max, to: h.max });
                self.send_frame(link, &f, out);
            }
        }
        // A full summary can be large (a head per author) and the request
        // for it is a few bytes: answered once per half sync interval per
        // room, so asking again and again amplifies nothing.
        let gap = self.limits.sync_interval_ms / 2;
        let Some(l) = self.links.get_mut(&link) else { return };
        let last = l.full_sent.get(&s.room).copied();
        if s.reply && last.is_none_or(|t| now >= t + gap) {
            l.full_sent.insert(s.room.clone(), now);
            self.send_summary(link, &s.room, SummaryKind::Full, out);
        }
    }

    /// We hold this author to the same marks but no longer know the id at
    /// its max (evicted before a restart): take the peer's, so that our
    /// heads and fingerprints agree with those who still hold it (else
    /// every reconciliation would find the difference again). If it is
    /// not the real one, the next holder's head differs from it and we
    /// ask that holder for the message, which sets it right.
    fn adopt_tip(&mut self, room: &RoomId, h: &Head) {
        if h.tip == NO_TIP || self.equivocators.contains(&h.author) {
            return;
        }
        let Some(r) = self.rooms.get_mut(room) else { return };
        let same = r
            .authors
            .get(&h.author)
            .is_some_and(|a| a.tip.is_none() && a.contiguous == h.contiguous && a.max() == h.max);
        if same {
            r.author(h.author).tip = Some(h.tip);
        }
    }

    /// Whether we know another id than `h.tip` at `h.max`.
    fn tip_differs(&self, room: &RoomId, h: &Head) -> bool {
        let pos = (room.clone(), h.author, h.max);
        let ours = self.recent.get(&pos).copied().or_else(|| {
            let a = self.rooms.get(room)?.authors.get(&h.author)?;
            (a.max() == h.max).then_some(a.tip).flatten()
        });
        ours.is_some_and(|id| id != h.tip) && !self.equivocators.contains(&h.author)
    }
}
