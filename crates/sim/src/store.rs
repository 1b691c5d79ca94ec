//! In-memory store with festival-store's semantics: unique id, unique
//! (room, author, seq), per-author heads.

use std::collections::{BTreeMap, HashMap};

use festival_core::sync::Snapshot;
use festival_core::{MessageId, PeerId, RoomId, SignedEnvelope};

#[derive(Debug, PartialEq, Eq)]
pub struct Conflict;

#[derive(Default)]
pub struct MemStore {
    by_id: HashMap<MessageId, (SignedEnvelope, u8)>,
    by_pos: BTreeMap<(RoomId, PeerId, u64), MessageId>,
}

impl MemStore {
    /// Insert; a second copy of the same message is fine, another message at
    /// the same position is a conflict.
    pub fn insert(&mut self, env: SignedEnvelope, hops: u8, _now: u64) -> Result<(), Conflict> {
        let pos = (env.room().clone(), env.author(), env.seq());
        match self.by_pos.get(&pos) {
            Some(id) if *id == env.id() => Ok(()),
            Some(_) => Err(Conflict),
            None => {
                self.by_pos.insert(pos, env.id());
                self.by_id.insert(env.id(), (env, hops));
                Ok(())
            }
        }
    }

    pub fn contains(&self, id: &MessageId) -> bool {
        self.by_id.contains_key(id)
    }

    pub fn get(&self, id: &MessageId) -> Option<&SignedEnvelope> {
        self.by_id.get(id).map(|(e, _)| e)
    }

    pub fn hops(&self, id: &MessageId) -> u8 {
        self.by_id.get(id).map_or(0, |(_, h)| *h)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn range(
        &self,
        room: &RoomId,
        author: &PeerId,
        from: u64,
        to: u64,
        max_bytes: usize,
    ) -> Vec<(SignedEnvelope, u8)> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for (_, id) in self.by_pos.range((room.clone(), *author, from)..=(room.clone(), *author, to)) {
            let (env, hops) = &self.by_id[id];
            if !out.is_empty() && bytes + env.bytes().len() > max_bytes {
                break;
            }
            bytes += env.bytes().len();
            out.push((env.clone(), *hops));
        }
        out
    }

    /// What festival-store would hand the node at start-up.
    pub fn snapshot(&self, _me: &PeerId) -> Snapshot {
        let mut snap = Snapshot::default();
        let mut chains: BTreeMap<(RoomId, PeerId), Vec<(u64, MessageId)>> = BTreeMap::new();
        for ((room, author, seq), id) in &self.by_pos {
            chains.entry((room.clone(), *author)).or_default().push((*seq, *id));
        }
        for ((room, author), seqs) in chains {
            let mut contiguous = 0;
            for (seq, _) in &seqs {
                if *seq == contiguous + 1 {
                    contiguous = *seq;
                } else {
                    break;
                }
            }
            let max = seqs.last().map_or(0, |s| s.0);
            for (seq, id) in seqs.iter().filter(|(s, _)| *s > contiguous) {
                snap.held_above.push((room.clone(), author, *seq, *id));
            }
            snap.heads.push((room, author, contiguous, max));
        }
        snap
    }
}
