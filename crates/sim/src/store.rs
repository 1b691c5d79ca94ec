//! In-memory store with festival-store's semantics: unique id, unique
//! (room, author, seq), per-author heads that never go down, a byte budget
//! with the same eviction order, expiry, equivocation proofs and receipts.

use std::collections::{BTreeMap, BTreeSet};

use festival_core::body::{Body, ReceiptStatus};
use festival_core::receipt::Target;
use festival_core::sync::{Snapshot, SnapshotHead};
use festival_core::{Kind, MessageId, PeerId, RoomId, SignedEnvelope};

#[derive(Debug, PartialEq, Eq)]
pub struct Conflict;

/// Bytes a stored message costs beyond its envelope (index entries, row
/// header), as festival-store counts it.
pub const ROW_OVERHEAD: u64 = 200;

struct Row {
    env: SignedEnvelope,
    hops: u8,
    received_at: u64,
}

#[derive(Default)]
pub struct MemStore {
    by_id: BTreeMap<MessageId, Row>,
    by_pos: BTreeMap<(RoomId, PeerId, u64), MessageId>,
    /// Chains seen up to a seq, whatever was deleted or given up on since.
    seen: BTreeMap<(RoomId, PeerId), u64>,
    bytes: u64,
    proofs: BTreeMap<PeerId, (SignedEnvelope, SignedEnvelope)>,
    /// Receipts for our own messages, by message and peer.
    pub receipts: BTreeMap<MessageId, BTreeMap<PeerId, ReceiptStatus>>,
    /// Messages deleted for the budget or by expiry.
    pub evicted: u64,
    /// (room, author) of every text (or profile) stored: the room's members.
    members: BTreeSet<(RoomId, PeerId)>,
    /// Authors with a message stored outside the DM mailbox (a profile, a
    /// text): not strangers.
    present: BTreeSet<PeerId>,
}

impl MemStore {
    /// Insert; a second copy of the same message is fine, another message at
    /// the same position is a conflict.
    pub fn insert(&mut self, env: SignedEnvelope, hops: u8, now: u64) -> Result<(), Conflict> {
        let pos = (env.room().clone(), env.author(), env.seq());
        match self.by_pos.get(&pos) {
            Some(id) if *id == env.id() => Ok(()),
            Some(_) => Err(Conflict),
            None => {
                if matches!(env.kind(), Kind::Text | Kind::Profile | Kind::Meetup | Kind::MeetupReply) {
                    self.members.insert((env.room().clone(), env.author()));
                }
                if !env.room().is_direct() {
                    self.present.insert(env.author());
                }
                self.by_pos.insert(pos, env.id());
                self.bytes += env.bytes().len() as u64 + ROW_OVERHEAD;
                self.by_id.insert(env.id(), Row { env, hops, received_at: now });
                Ok(())
            }
        }
    }

    pub fn contains(&self, id: &MessageId) -> bool {
        self.by_id.contains_key(id)
    }

    pub fn get(&self, id: &MessageId) -> Option<&SignedEnvelope> {
        self.by_id.get(id).map(|r| &r.env)
    }

    pub fn get_at(&self, room: &RoomId, author: &PeerId, seq: u64) -> Option<&SignedEnvelope> {
        self.by_pos.get(&(room.clone(), *author, seq)).and_then(|id| self.get(id))
    }

    pub fn hops(&self, id: &MessageId) -> u8 {
        self.by_id.get(id).map_or(0, |r| r.hops)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Bytes held, as the budget counts them.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    #[allow(clippy::too_many_arguments)]
    pub fn range(
        &self,
        room: &RoomId,
        author: &PeerId,
        from: u64,
        to: u64,
        max_bytes: usize,
        not_before: u64,
    ) -> Vec<(SignedEnvelope, u8)> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for (_, id) in self.by_pos.range((room.clone(), *author, from)..=(room.clone(), *author, to)) {
            let r = &self.by_id[id];
            if r.env.created_at() < not_before {
                continue;
            }
            if !out.is_empty() && bytes + r.env.bytes().len() > max_bytes {
                break;
            }
            bytes += r.env.bytes().len();
            out.push((r.env.clone(), r.hops));
        }
        out
    }

    /// The node gave up on `..=through` of a chain (nobody serves it).
    pub fn skip(&mut self, room: &RoomId, author: &PeerId, through: u64) {
        let s = self.seen.entry((room.clone(), *author)).or_default();
        *s = (*s).max(through);
    }

    /// Keep a proof of equivocation (one per author). `held` is looked up
    /// at `other`'s position when `None`. Returns the pair when it is new.
    pub fn record_proof(
        &mut self,
        held: Option<SignedEnvelope>,
        other: SignedEnvelope,
    ) -> Option<(SignedEnvelope, SignedEnvelope)> {
        let held = held.or_else(|| self.get_at(other.room(), &other.author(), other.seq()).cloned())?;
        if held.id() == other.id() || self.proofs.contains_key(&other.author()) {
            return None;
        }
        self.proofs.insert(other.author(), (held.clone(), other.clone()));
        Some((held, other))
    }

    /// What a receipt may refer to.
    pub fn target(&self, id: &MessageId) -> Option<Target> {
        let env = self.get(id)?;
        let (recipient, members) = match env.parsed_body() {
            Body::SealedDm(s) => (Some(s.recipient), Vec::new()),
            Body::SealedGroup(g) => (None, g.members),
            _ => (None, Vec::new()),
        };
        Some(Target { room: env.room().clone(), author: env.author(), recipient, members })
    }

    /// Whether `author` posted a text (or a profile) in `room`.
    pub fn is_member(&self, author: &PeerId, room: &RoomId) -> bool {
        self.members.contains(&(room.clone(), *author))
    }

    /// Delete until `bytes()` is at most `target`, in festival-store's
    /// order: expired first (all of them), then others' mail for others (DMs
    /// neither by nor to `me`, rooms not in `rooms`), strangers' first
    /// (authors with nothing stored outside the DM mailbox: fresh keys),
    /// then others' messages in our rooms; oldest first within each; never
    /// `me`'s messages or DMs to `me`.
    pub fn evict(&mut self, target: u64, me: &PeerId, rooms: &BTreeSet<RoomId>, now: u64, lifetime: u64) {
        let budget = target;
        let mut victims: Vec<(u8, u64, MessageId)> = Vec::new();
        for (id, r) in &self.by_id {
            let env = &r.env;
            let to_me = env.parsed_body().sealed().is_some_and(|s| s.recipient == *me);
            if env.author() == *me || to_me {
                continue;
            }
            let class = if env.created_at().saturating_add(lifetime) <= now {
                0
            } else if env.room().is_direct() && !self.present.contains(&env.author()) {
                1
            } else if env.room().is_direct() || !rooms.contains(env.room()) {
                2
            } else {
                3
            };
            victims.push((class, env.created_at(), *id));
        }
        victims.sort();
        for (class, _, id) in victims {
            if class > 0 && self.bytes <= budget {
                break;
            }
            self.delete(&id);
        }
    }

    fn delete(&mut self, id: &MessageId) {
        let Some(r) = self.by_id.remove(id) else { return };
        let key = (r.env.room().clone(), r.env.author());
        let contiguous = self.contiguous_of(&key);
        let s = self.seen.entry(key).or_default();
        *s = (*s).max(contiguous);
        self.by_pos.remove(&(r.env.room().clone(), r.env.author(), r.env.seq()));
        self.bytes -= r.env.bytes().len() as u64 + ROW_OVERHEAD;
        self.evicted += 1;
        let _ = r.received_at;
    }

    /// Highest s with 1..=s stored or seen.
    fn contiguous_of(&self, key: &(RoomId, PeerId)) -> u64 {
        let mut c = self.seen.get(key).copied().unwrap_or(0);
        while self.by_pos.contains_key(&(key.0.clone(), key.1, c + 1)) {
            c += 1;
        }
        c
    }

    /// What festival-store would hand the node at start-up.
    pub fn snapshot(&self, _me: &PeerId) -> Snapshot {
        let mut snap = Snapshot::default();
        let mut chains: BTreeSet<(RoomId, PeerId)> = self.seen.keys().cloned().collect();
        chains.extend(self.by_pos.keys().map(|(r, a, _)| (r.clone(), *a)));
        for key in chains {
            let contiguous = self.contiguous_of(&key);
            let held: Vec<(u64, MessageId)> = self
                .by_pos
                .range((key.0.clone(), key.1, contiguous + 1)..=(key.0.clone(), key.1, u64::MAX))
                .map(|((_, _, s), id)| (*s, *id))
                .collect();
            let max = held.last().map_or(contiguous, |h| h.0);
            for (seq, id) in &held {
                snap.held_above.push((key.0.clone(), key.1, *seq, *id));
            }
            let tip = self.by_pos.get(&(key.0.clone(), key.1, max)).copied();
            snap.heads.push(SnapshotHead { room: key.0, author: key.1, contiguous, max, tip });
        }
        snap.equivocators = self.proofs.keys().copied().collect();
        snap
    }
}
