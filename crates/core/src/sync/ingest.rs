//! Envelopes coming in: checked, handed to the store, delivered and
//! forwarded once it confirmed them; receipts; announcements; equivocation.

use std::collections::BTreeMap;

use crate::body::{self, Body, ReceiptBody, ReceiptStatus, MAX_RECEIPT_IDS};
use crate::envelope::{Kind, SignedEnvelope};
use crate::frame::{Frame, Item, MsgRef, MAX_HOPS, MAX_REFS};
use crate::ids::{LinkId, MessageId, PeerId, RoomId};

use super::caps::{MAX_ANNOUNCERS, MAX_AUTHORS_PER_ROOM, MAX_EQUIVOCATORS, MAX_MISSING, MAX_MISSING_PER_LINK};
use super::{LinkKind, Millis, Missing, Node, Output, Pending, PersistError, Reject};

/// How a new envelope reached us.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Via {
    Push,
    Sync,
}

impl Node {
    /// Check a received envelope and, if it is new, hand it to the store.
    /// Returns the (room, author) it belongs to when it was valid.
    pub(super) fn incoming(
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
            self.reject(link, Reject::RateLimited, now, out);
            return None;
        }
        self.counters(peer).envelopes_in += 1;
        let env = match SignedEnvelope::decode(&item.envelope) {
            Ok(e) => e,
            Err(e) => {
                self.reject(link, e.into(), now, out);
                return None;
            }
        };
        let room_id = env.room().clone();
        let (author, seq) = (env.author(), env.seq());
        if !self.rooms.contains_key(&room_id) {
            self.reject(link, Reject::NotCarried(room_id), now, out);
            return None;
        }
        // Dates against the wall clock (see `Now`).
        let wall = self.wall;
        if env.created_at() > wall + self.cfg.max_clock_skew_ms {
            let ahead_ms = env.created_at() - wall;
            self.reject(link, Reject::FromFuture { ahead_ms }, now, out);
            return None;
        }
        // An announcement only from the organiser key (a carrier with
        // another festival's settings may pass one on: not its fault).
        if env.kind() == Kind::Announcement && self.cfg.organiser != Some(author) {
            self.reject(link, Reject::NotOrganiser, now, out);
            return None;
        }
        // A DM of someone blocked here: not stored, asked for or passed on.
        if !self.takes_author(&room_id, &author) {
            self.stats.blocked_dropped += 1;
            return None;
        }
        let room = self.rooms.get(&room_id).expect("checked above");
        let state = room.authors.get(&author);
        let known = state.is_some();
        // An announcement whose end lies past the festival's lifetime (and
        // the clock skew allowed): no honest organiser's node writes one
        // (shown, it would stay pinned until the store dropped it), but a
        // venue box set to a longer lifetime than ours might.
        let latest_end =
            env.created_at().saturating_add(self.cfg.message_lifetime_ms).saturating_add(self.cfg.max_clock_skew_ms);
        let end_too_far = body_end(&env).is_some_and(|until| until > latest_end);
        if end_too_far || self.expired(&env) {
            // Not taken; if it is the next one we need, we never will take
            // it: go past it rather than ask for it again and again. (Also
            // the first of the organiser's chain, whose announcements may
            // all have ended before we met anyone: its author is checked
            // above.)
            let first_announcement = env.kind() == Kind::Announcement && seq == 1;
            if state.map_or(first_announcement, |a| seq == a.contiguous + 1 && !a.pending.contains(&seq)) {
                self.give_up_expired(&room_id, author, seq, out);
            }
            let why = match (end_too_far, env.kind()) {
                (false, _) => Reject::Expired,
                (true, Kind::Announcement) => Reject::AnnouncementEnd,
                (true, _) => Reject::MeetupEnd,
            };
            self.reject(link, why, now, out);
            return None;
        }
        if let Some(a) = state.filter(|a| a.has(seq)) {
            let pos = (room_id.clone(), author, seq);
            let ours = self.recent.get(&pos).copied().or(if a.max() == seq { a.tip } else { None });
            self.counters(peer).duplicates += 1;
            if ours.is_some_and(|id| id != env.id()) {
                if !self.equivocators.contains(&author) {
                    out.push(Output::RecordProof { held: None, other: env });
                }
            } else if via == Via::Push {
                // A tree link pushes whatever duplicates arrive.
                let pinned = self.rooms.get(&room_id).is_some_and(|r| r.tree.pinned.contains(&link));
                if !pinned {
                    let was_eager = self.rooms.get_mut(&room_id).is_some_and(|r| r.make_lazy(link));
                    let capable = self.tree_capable(link);
                    // Fetching live, any peer that pushes us what we hold is
                    // told so (an older one pushes along its own tree).
                    if was_eager || capable || self.pulls_live(&room_id, now) {
                        self.send_frame(link, &Frame::Prune { room: room_id.clone() }, out);
                    }
                    if capable && !self.pulls_live(&room_id, now) {
                        // The peer pushes to us as part of a tree we do not
                        // see it in: one of us missed an advert. (Fetching
                        // live, a duplicate is the answer to a second ask.)
                        self.tree_mismatch(link, &room_id, now, out);
                    }
                }
            }
            return Some((room_id, author));
        }
        let contiguous = state.map_or(0, |a| a.contiguous);
        let authors = room.authors.len();
        if seq > contiguous + self.cfg.max_seq_ahead {
            self.reject(link, Reject::SeqTooFarAhead { seq, contiguous }, now, out);
            return None;
        }
        if !known && author != self.my_id {
            if authors >= MAX_AUTHORS_PER_ROOM {
                self.reject(link, Reject::AuthorsFull(room_id), now, out);
                return None;
            }
            if !self.links.get_mut(&link).is_some_and(|l| l.new_authors.take(now)) {
                self.reject(link, Reject::NewAuthorsLimited, now, out);
                return None;
            }
        }
        // Charged for what comes live: catching up on the announcements
        // still running (a late joiner) is paced by sync itself.
        if env.kind() == Kind::Announcement && via == Via::Push && !self.announcements.take(now) {
            self.reject(link, Reject::AnnouncementsLimited, now, out);
            return None;
        }
        let room = self.rooms.get_mut(&room_id).expect("checked above");
        room.author(author).pending.insert(seq);
        let pos = (room_id.clone(), author, seq);
        let answered = self.missing.get(&pos).is_some_and(|m| m.asked.is_some_and(|(l, _)| l == link));
        self.forget_missing(&pos);
        if answered {
            // It answered what we asked of it: trusted again (`on_ihave`).
            if let Some(l) = self.links.get_mut(&link) {
                l.unanswered = 0;
            }
        }
        out.push(Output::Persist { envelope: env.clone(), hops: item.hops, local: false });
        let fresh = wall.saturating_sub(env.created_at()) < self.cfg.live_window_ms;
        let live = via == Via::Push || fresh;
        // Whether the tree's parent pushed is only asked while pushes are
        // expected: not from a parent that fetches live while we do.
        let parent_fetches = self.pulls_live(&room_id, now)
            && self
                .rooms
                .get(&room_id)
                .and_then(|r| r.tree.parent)
                .is_some_and(|p| self.fetches_live(p, &room_id, now));
        if live && !parent_fetches {
            self.tree_first_copy(&room_id, author, link, via == Via::Push, now, out);
        }
        self.pending
            .insert(env.id(), Pending { envelope: env, hops: item.hops, from: Some(link), sibling: false, live });
        Some((room_id, author))
    }

    /// An envelope another instance of our relay cluster committed to the
    /// shared store (see `Input::Committed`): no `Persist` (it is stored),
    /// straight to what follows a commit.
    pub(super) fn on_committed(&mut self, env: SignedEnvelope, hops: u8, now: Millis, out: &mut Vec<Output>) {
        let (room_id, author, seq) = (env.room().clone(), env.author(), env.seq());
        let Some(room) = self.rooms.get(&room_id) else { return };
        let state = room.authors.get(&author);
        if state.is_some_and(|a| a.has(seq)) {
            return;
        }
        if state.is_none() && room.authors.len() >= MAX_AUTHORS_PER_ROOM {
            return;
        }
        if self.expired(&env) {
            return;
        }
        let wall = self.wall;
        self.rooms.get_mut(&room_id).expect("checked above").author(author).pending.insert(seq);
        self.forget_missing(&(room_id, author, seq));
        let id = env.id();
        let live = wall.saturating_sub(env.created_at()) < self.cfg.live_window_ms;
        // It goes on with the hops the other instance gives it: both are one
        // relay, one hop. (Another's message never has 0; see `forward`.)
        let hops = hops.max(1);
        self.pending.insert(id, Pending { envelope: env, hops, from: None, sibling: true, live });
        self.on_persisted(id, Ok(()), now, out);
    }

    /// Whether `author`'s messages in `room` are taken at all: in the
    /// announcements room, only the organiser's; in the DM mailbox, nobody's
    /// who is blocked here. Others' heads, refs and chains there are not
    /// asked for (a carrier with other settings may claim them; we would
    /// refuse or drop every one it serves).
    pub(super) fn takes_author(&self, room: &RoomId, author: &PeerId) -> bool {
        if room.is_announcements() {
            return self.cfg.organiser == Some(*author);
        }
        !(room.is_direct() && self.blocked.contains(author))
    }

    /// Past the festival's message lifetime, or an announcement past its end:
    /// neither taken nor passed on.
    pub(super) fn expired(&self, env: &SignedEnvelope) -> bool {
        env.created_at().saturating_add(self.cfg.message_lifetime_ms) <= self.wall
            || body_end(env).is_some_and(|until| until <= self.wall)
    }

    /// An expired message at the end of our chain: nobody serves it, go past.
    fn give_up_expired(&mut self, room: &RoomId, author: PeerId, seq: u64, out: &mut Vec<Output>) {
        let Some(a) = self.rooms.get_mut(room).map(|r| r.author(author)) else { return };
        let shown = a.skip_through(seq);
        let through = a.contiguous;
        self.stats.skipped += 1;
        out.push(Output::Skip { room: room.clone(), author, through });
        for (seq, id) in shown {
            out.push(Output::Deliver { id, room: room.clone(), author, seq });
        }
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
        a.shrink();
        match result {
            Err(PersistError::Conflict) => {
                // Another message holds this position: the author signed
                // both. Not the carrier's fault; keep both as proof.
                if !self.equivocators.contains(&author) {
                    out.push(Output::RecordProof { held: None, other: env });
                }
                return;
            }
            Err(PersistError::Failed(_)) => return,
            Ok(()) => {}
        }
        if seq >= a.max() {
            a.tip = Some(id);
        }
        // A photo's header: what follows its pieces is shown without
        // waiting for them. A piece that comes after what followed it was
        // shown is delivered now.
        let pieces = photo_pieces(&env);
        a.note_pieces(seq, pieces);
        let late = seq > a.contiguous && seq <= a.shown;
        a.above.insert(seq, id);
        if late {
            out.push(Output::Deliver { id, room: room_id.clone(), author, seq });
            if author != self.my_id {
                self.stats.delivered += 1;
            }
        }
        for (seq, next) in a.advance() {
            out.push(Output::Deliver { id: next, room: room_id.clone(), author, seq });
            if author != self.my_id {
                self.stats.delivered += 1;
            }
        }
        self.recent.insert((room_id.clone(), author, seq), id);
        let local = p.from.is_none() && !p.sibling;
        if local {
            self.unsent.insert(id);
        }
        // A photo counts once, as its header: its pieces (at their places
        // after a header pushed) neither make the node busy nor spend their
        // author's push budget (see `forward`); anything else of the kind
        // counts as any message.
        let free_piece = self.piece_of_pushed_photo(&env);
        if p.live && !free_piece {
            self.crowd_count(now);
        }
        if p.live && (local || self.limits.relay_for_others) {
            self.forward(&env, p.hops, p.from, PhotoPart { pieces, free_piece }, now, out);
        } else if !p.live {
            self.announce.insert(room_id.clone());
            self.announce_due.get_or_insert(now + self.cfg.graft_timeout_ms);
        }
        if !local {
            if p.hops > self.cfg.room_receipts_max_hops {
                if let Some(r) = self.rooms.get_mut(&room_id) {
                    r.far = true;
                }
            }
            self.receipt_for(&env, now);
        }
    }

    /// Push along the room's tree, announce to the rest (see `crowd` for
    /// what a busy crowd and an author over its budget change).
    fn forward(
        &mut self,
        env: &SignedEnvelope,
        hops: u8,
        from: Option<LinkId>,
        photo: PhotoPart,
        now: Millis,
        out: &mut Vec<Output>,
    ) {
        let room_id = env.room().clone();
        let Some(room) = self.rooms.get(&room_id) else { return };
        // Another's message that came with hops 0 (no honest sender writes
        // it) goes on as if it had crossed one link: hops 1 on a push means
        // "the author's own", which links send first.
        let next_hops = if from.is_some() { hops.max(1) } else { hops }.saturating_add(1);
        let mut eager: Vec<LinkId> = room.eager.iter().copied().filter(|l| Some(*l) != from).collect();
        let mut lazy: Vec<LinkId> = room.lazy.iter().copied().filter(|l| Some(*l) != from).collect();
        // A peer of an older protocol is told nothing of a kind it would
        // refuse, neither pushed it nor announced it (it would graft it and
        // wait out the graft's timeout): it hears the message is gone when
        // its sync asks for it (see `MEETUPS_VERSION`).
        let kind = env.kind();
        let speaks = |l: &LinkId| self.link_takes(*l, kind);
        eager.retain(speaks);
        lazy.retain(speaks);
        // Links told of it at once whatever the crowd: held-back pushes.
        let mut told = Vec::new();
        let limit = if self.busy_at(now) { self.cfg.busy_max_hops.min(MAX_HOPS) } else { MAX_HOPS };
        if room_id.is_announcements() {
            // The organiser's (a few an hour, `Config::announcements_per_hour`):
            // pushed to every link of the room, tree or not, so none waits
            // for an announcement and a graft.
            eager.append(&mut lazy);
        } else if next_hops > limit {
            // No push goes further: announce it to every link instead, and
            // whoever lacks it grafts it (a chain of phones at a low peer
            // limit can be longer than that).
            lazy.append(&mut eager);
        } else if self.pulls_live(&room_id, now) {
            let live = |l: &LinkId| self.fetches_live(*l, &room_id, now);
            if env.author() == self.my_id {
                // Our own goes at once to every link that fetches live too
                // (and the eager ones): the first hop needs no asking.
                let (mut fetching, rest): (Vec<LinkId>, Vec<LinkId>) = lazy.into_iter().partition(live);
                eager.append(&mut fetching);
                lazy = rest;
            } else {
                // Others' are announced to every link that fetches live,
                // tree or not, and asked for by whoever lacks them (see
                // `on_ihave`); relay sessions and older peers keep their
                // pushes.
                let (mut fetching, rest): (Vec<LinkId>, Vec<LinkId>) = eager.into_iter().partition(live);
                eager = rest;
                lazy.append(&mut fetching);
                // The author's push budget is spent as if pushed: over it,
                // a graft for the message is served behind the link's
                // catch-up (`on_graft`), so a flood is slowed while the
                // crowd is quiet too.
                if !photo.free_piece && !self.within_push_budget(env, &photo, now) {
                    (told, eager) = eager.into_iter().partition(|l| self.is_lan(*l));
                }
            }
        } else if eager.iter().any(|l| self.is_lan(*l))
            && !photo.free_piece
            && !self.within_push_budget(env, &photo, now)
        {
            // Its author is over its push budget: announced, not pushed,
            // on direct links (they graft it, paced by their asking).
            (told, eager) = eager.into_iter().partition(|l| self.is_lan(*l));
        }
        // Direct links first: a message leaves by a data channel when there
        // is one, and by the relay otherwise (its path is the first link).
        eager.sort_by_key(|l| self.links.get(l).map(|x| x.kind == LinkKind::Relay));
        let push = Frame::Push(Item { hops: next_hops, envelope: env.bytes().to_vec() });
        let push_bytes = push.encode();
        for link in eager {
            out.push(Output::Send { link, bytes: push_bytes.clone() });
            if let Some(kind) = self.links.get(&link).map(|l| l.kind) {
                self.note_sent(env.id(), link, kind, out);
            }
        }
        let r = MsgRef { room: room_id, author: env.author(), seq: env.seq(), id: env.id() };
        if !told.is_empty() {
            self.announce_now(told, r.clone(), out);
        }
        if !lazy.is_empty() {
            self.announce_to(lazy, r, now, out);
        }
    }

    /// Spend `env`'s author's push budget on it: one message, and for a
    /// photo's header one more per four pieces, whose pieces then go
    /// without a charge of their own (only then: a header held back frees
    /// none). Over the budget: held back (counted, and remembered for
    /// `on_graft`).
    fn within_push_budget(&mut self, env: &SignedEnvelope, photo: &PhotoPart, now: Millis) -> bool {
        if self.push_budget_n(env.author(), 1 + photo.pieces / 4, now) {
            if photo.pieces > 0 {
                self.remember_pushed_photo(env, photo.pieces);
            }
            return true;
        }
        self.stats.held_back += 1;
        self.held_back_ids.insert(env.id(), ());
        false
    }

    /// One of our own messages again (see `Input::Resend`): pushed to the
    /// room's tree links and relay sessions, announced (`IHave`) to its
    /// other links, as a first push would be but whatever the crowd, so
    /// the push tree is not pruned for a copy its peers may hold already.
    /// Returns how many links were told.
    pub(super) fn resend(&mut self, env: &SignedEnvelope, out: &mut Vec<Output>) -> usize {
        if env.author() != self.my_id {
            return 0;
        }
        let Some(room) = self.rooms.get(env.room()) else { return 0 };
        let kind = env.kind();
        let is_relay = |l: &LinkId| self.links.get(l).is_some_and(|x| x.kind == LinkKind::Relay);
        let (mut push, mut tell): (Vec<LinkId>, Vec<LinkId>) = (Vec::new(), Vec::new());
        for l in room.eager.iter().chain(room.lazy.iter()).copied().filter(|l| self.link_takes(*l, kind)) {
            if room.eager.contains(&l) || is_relay(&l) {
                push.push(l);
            } else {
                tell.push(l);
            }
        }
        push.sort_by_key(|l| (is_relay(l), *l));
        push.dedup();
        tell.sort();
        tell.dedup();
        let told = push.len() + tell.len();
        let bytes = Frame::Push(Item { hops: 1, envelope: env.bytes().to_vec() }).encode();
        for link in push {
            out.push(Output::Send { link, bytes: bytes.clone() });
            if let Some(kind) = self.links.get(&link).map(|l| l.kind) {
                self.note_sent(env.id(), link, kind, out);
            }
        }
        if !tell.is_empty() {
            let r = MsgRef { room: env.room().clone(), author: env.author(), seq: env.seq(), id: env.id() };
            self.announce_now(tell, r, out);
        }
        told
    }

    fn is_lan(&self, link: LinkId) -> bool {
        self.links.get(&link).is_some_and(|l| l.kind == LinkKind::Lan)
    }

    pub(super) fn note_sent(&mut self, id: MessageId, link: LinkId, kind: LinkKind, out: &mut Vec<Output>) {
        if self.unsent.remove(&id) {
            out.push(Output::Sent { id, link, kind });
        }
    }

    /// "Delivered" for what we can read: a DM to us that opens (one that
    /// does not will never be shown, so it was not delivered), a message in
    /// a small room (few authors, and no message from far away, this one
    /// included).
    fn receipt_for(&mut self, env: &SignedEnvelope, now: Millis) {
        if self.blocked.contains(&env.author()) {
            return;
        }
        let room = env.room().clone();
        match env.parsed_body() {
            Body::SealedDm(s)
                if self.cfg.dm_receipts && s.recipient == self.my_id && body::open(&self.me, env).is_ok() =>
            {
                self.queue_receipt(room, ReceiptStatus::Delivered, Some(env.author()), env.id(), now);
            }
            Body::SealedGroup(g)
                if self.cfg.dm_receipts
                    && g.members.binary_search(&self.my_id).is_ok()
                    && crate::group::open(&self.me, env).is_ok() =>
            {
                self.queue_receipt(room, ReceiptStatus::Delivered, Some(env.author()), env.id(), now);
            }
            Body::Text(_) | Body::Meetup(_) | Body::Photo(_)
                if self.rooms.get(&room).is_some_and(|r| self.is_small(r)) =>
            {
                self.queue_receipt(room, ReceiptStatus::Delivered, None, env.id(), now);
            }
            _ => {}
        }
    }

    /// Send the queued receipts: in a room as they are, for DMs sealed to
    /// each DM's author.
    /// `open`: the rooms' open receipts (dropped for a room that is no
    /// longer small, see `Config::room_receipt_delay_ms`); else the sealed.
    pub(super) fn flush_receipts(&mut self, open: bool, out: &mut Vec<Output>) {
        let (due, keep): (BTreeMap<_, _>, BTreeMap<_, _>) =
            std::mem::take(&mut self.receipts).into_iter().partition(|((_, _, to), _)| to.is_none() == open);
        self.receipts = keep;
        for ((room, status, to), ids) in due {
            if to.is_none() && !self.rooms.get(&room).is_some_and(|r| self.is_small(r)) {
                self.stats.room_receipts_dropped += ids.len() as u64;
                continue;
            }
            for chunk in ids.chunks(MAX_RECEIPT_IDS) {
                let receipt = ReceiptBody { status, ids: chunk.to_vec() };
                let body = match to {
                    Some(author) => match body::seal_receipt(&self.me, &author, receipt, &mut self.rng) {
                        Ok(sealed) => Body::SealedReceipt(sealed),
                        Err(_) => continue,
                    },
                    None => Body::Receipt(receipt),
                };
                if let Ok(env) = self.author(room.clone(), body) {
                    out.push(Output::Persist { envelope: env, hops: 0, local: true });
                }
            }
        }
    }

    /// Announcements: what we lack is remembered with its announcers and
    /// asked for when no push brought it in time; fetching live (on a
    /// direct link, [`super::Config::live_pull`]) the first announcer is
    /// asked at once, since its announcement came by the quickest path.
    pub(super) fn on_ihave(&mut self, link: LinkId, refs: Vec<MsgRef>, now: Millis, out: &mut Vec<Output>) {
        // A link whose last asks went unanswered is not asked first.
        let trusted = self.links.get(&link).is_some_and(|l| l.trusted(now));
        let mut ask = Vec::new();
        for r in refs {
            if !self.takes_author(&r.room, &r.author) {
                continue;
            }
            let Some(room) = self.rooms.get(&r.room) else { continue };
            if room.authors.get(&r.author).is_some_and(|a| a.has(r.seq)) {
                continue;
            }
            // Far beyond what we hold: nothing we would take (a made-up
            // position costs the announcer nothing, an entry costs us).
            let contiguous = room.authors.get(&r.author).map_or(0, |a| a.contiguous);
            if r.seq > contiguous.saturating_add(self.cfg.max_seq_ahead) {
                continue;
            }
            let at_once = trusted && self.fetches_live(link, &r.room, now);
            let pos = (r.room, r.author, r.seq);
            if let Some(m) = self.missing.get_mut(&pos) {
                if m.announcers.contains(&link) {
                    continue;
                }
                let links = &self.links;
                let trusts = |l: &LinkId| links.get(l).is_some_and(|x| x.trusted(now));
                if m.announcers.len() >= MAX_ANNOUNCERS {
                    // Full: an announcer asked before the one awaited makes
                    // room, else one not yet asked that is not trusted (a
                    // few that never answer must not keep the others out).
                    if m.tried >= 2 {
                        m.announcers.remove(0);
                        m.tried -= 1;
                    } else if let Some(j) = (m.tried..m.announcers.len()).find(|&j| !trusts(&m.announcers[j])) {
                        m.announcers.remove(j);
                    }
                }
                if m.announcers.len() >= MAX_ANNOUNCERS {
                    continue;
                }
                // Nobody is being asked, or one that is not trusted: this
                // one is asked now (a liar's announcement first must not
                // make the honest ones wait out a graft timeout).
                let idle = m.asked.is_none_or(|(l, _)| !trusts(&l));
                if at_once && idle {
                    m.announcers.insert(m.tried, link);
                    m.tried += 1;
                    m.asked = Some((link, now));
                    m.deadline = now + self.cfg.graft_timeout_ms;
                    ask.push(MsgRef { room: pos.0.clone(), author: pos.1, seq: pos.2, id: r.id });
                    let deadline = m.deadline;
                    self.timer_at(deadline);
                } else {
                    m.announcers.push(link);
                }
                continue;
            }
            let r = MsgRef { room: pos.0.clone(), author: pos.1, seq: pos.2, id: r.id };
            let Some(l) = self.links.get_mut(&link) else { return };
            if self.missing.len() >= MAX_MISSING || l.missing >= MAX_MISSING_PER_LINK {
                // Too much awaited already: sync brings whatever this
                // announced, if it exists; fetching live, it is asked for
                // all the same, only not remembered (no second announcer),
                // so announcements made up to fill the map do not stop
                // the live path (once per position a graft timeout).
                let recent = self.asked_unremembered.get(&pos).is_some_and(|t| now < t + self.cfg.graft_timeout_ms);
                if at_once && !recent {
                    self.asked_unremembered.insert(pos, now);
                    ask.push(r);
                }
                continue;
            }
            l.missing += 1;
            if at_once {
                ask.push(r.clone());
            }
            let deadline = now + self.cfg.graft_timeout_ms;
            let tried = usize::from(at_once);
            let asked = at_once.then_some((link, now));
            self.missing.insert(pos, Missing { id: r.id, first: link, announcers: vec![link], deadline, tried, asked });
            self.timer_at(deadline);
        }
        for refs in ask.chunks(MAX_REFS) {
            self.send_frame(link, &Frame::Graft { refs: refs.to_vec() }, out);
        }
    }

    /// Stop waiting for an announced message.
    pub(super) fn forget_missing(&mut self, pos: &(RoomId, PeerId, u64)) {
        if let Some(m) = self.missing.remove(pos) {
            if let Some(l) = self.links.get_mut(&m.first) {
                l.missing = l.missing.saturating_sub(1);
            }
        }
    }

    /// A peer's proof that an author equivocated: both envelopes must be
    /// valid, by one author, for one position, and differ.
    pub(super) fn on_proof(&mut self, link: LinkId, a: &[u8], b: &[u8], now: Millis, out: &mut Vec<Output>) {
        let (Ok(a), Ok(b)) = (SignedEnvelope::decode(a), SignedEnvelope::decode(b)) else {
            return self.reject(link, Reject::BadProof, now, out);
        };
        if a.author() != b.author() || a.room() != b.room() || a.seq() != b.seq() || a.id() == b.id() {
            return self.reject(link, Reject::BadProof, now, out);
        }
        if !self.equivocators.contains(&a.author()) {
            out.push(Output::RecordProof { held: Some(a), other: b });
        }
    }

    /// The store keeps a proof: mark the author, tell the user, pass the
    /// proof on to every link (once per author).
    pub(super) fn on_proved(&mut self, a: SignedEnvelope, b: SignedEnvelope, out: &mut Vec<Output>) {
        let author = a.author();
        if self.equivocators.len() >= MAX_EQUIVOCATORS || !self.equivocators.insert(author) {
            return;
        }
        self.stats.equivocations += 1;
        // Its heads are now told without their tip (`RoomState::settle`).
        for r in self.rooms.values_mut().filter(|r| r.authors.contains_key(&author)) {
            r.author(author);
        }
        out.push(Output::Equivocator { author });
        let proof = Frame::Proof { a: a.bytes().to_vec(), b: b.bytes().to_vec() }.encode();
        // Not to a peer of an older protocol that cannot decode the kind:
        // it would refuse the proof as invalid, a fault of ours, and a
        // flood of such proofs would make it drop honest links.
        for (link, _) in self.live_links().collect::<Vec<_>>() {
            if self.link_takes(link, a.kind()) {
                out.push(Output::Send { link, bytes: proof.clone() });
            }
        }
    }
}

/// What `forward` needs to know of a photo: how many pieces a header says
/// follow it (0 for anything else), and whether a piece is one of a pushed
/// header's (`piece_of_pushed_photo`), each worked out once per envelope.
#[derive(Clone, Copy)]
struct PhotoPart {
    pieces: u64,
    free_piece: bool,
}

/// How many pieces a photo's header says follow it; 0 for anything else.
fn photo_pieces(env: &SignedEnvelope) -> u64 {
    match env.kind() {
        Kind::Photo => match env.parsed_body() {
            Body::Photo(p) => p.chunks() as u64,
            _ => 0,
        },
        _ => 0,
    }
}

/// When an announcement, a meet-up or an answer to one ends (see
/// [`Body::end`]); `None` for every other kind (whose body is not parsed
/// for it).
pub(super) fn body_end(env: &SignedEnvelope) -> Option<u64> {
    match env.kind() {
        Kind::Announcement | Kind::Meetup | Kind::MeetupReply => env.parsed_body().end(),
        _ => None,
    }
}

/// Whether `kind` travels to a peer speaking `version`: a kind newer than
/// the peer's protocol would be refused as malformed (see
/// [`super::ANNOUNCEMENTS_VERSION`], [`super::MEETUPS_VERSION`]).
pub(super) fn kind_travels_to(kind: Kind, version: u8) -> bool {
    match kind {
        Kind::Announcement => version >= super::ANNOUNCEMENTS_VERSION,
        Kind::Meetup | Kind::MeetupReply => version >= super::MEETUPS_VERSION,
        Kind::GroupMessage => version >= super::GROUPS_VERSION,
        Kind::Photo | Kind::PhotoChunk => version >= super::PHOTOS_VERSION,
        Kind::Text | Kind::Receipt | Kind::SealedDm | Kind::Profile | Kind::SealedReceipt => true,
    }
}

impl Node {
    /// Whether `env` is one of the pieces of a photo whose header was
    /// pushed (within its author's budget): at its own place after that
    /// header, by its author, in its room. Such a piece is pushed without
    /// spending the budget again: its header paid for it (see `forward`),
    /// and the author's texts after the photo are still pushed.
    pub(super) fn piece_of_pushed_photo(&self, env: &SignedEnvelope) -> bool {
        if env.kind() != Kind::PhotoChunk {
            return false;
        }
        let Body::PhotoChunk(c) = env.parsed_body() else { return false };
        self.pushed_photos.get(&c.photo).is_some_and(|(room, author, first, last)| {
            room == env.room()
                && *author == env.author()
                && env.seq() == first + u64::from(c.index)
                && env.seq() <= *last
        })
    }

    /// A photo's header pushed within its author's budget: its pieces will
    /// be too (the latest [`super::caps::MAX_PUSHED_PHOTOS`] remembered).
    pub(super) fn remember_pushed_photo(&mut self, env: &SignedEnvelope, pieces: u64) {
        let (first, last) = (env.seq().saturating_add(1), env.seq().saturating_add(pieces));
        self.pushed_photos.insert(env.id(), (env.room().clone(), env.author(), first, last));
    }

    /// Whether `link`'s peer takes envelopes of `kind` (a link whose hello
    /// has not come yet is given the benefit of the doubt: nothing but a
    /// hello reaches a peer before its own hello anyway).
    pub(super) fn link_takes(&self, link: LinkId, kind: Kind) -> bool {
        self.links.get(&link).is_none_or(|x| !x.hello_received || kind_travels_to(kind, x.peer_version))
    }
}
