//! One node's own side of the simulation: its core's outputs that touch its
//! store (persist, load, skip, proofs, receipts, budget) are carried out
//! here; what must leave the node (frames, wake-ups, deliveries) comes back.
//! The simulator runs one per node; `festival-bench attack` runs one in a
//! process of its own, to measure a victim's real memory.

use std::collections::BTreeSet;

use festival_core::sync::{drain_now, Host, Input, Node, Now, Output, PersistError, ToPersist};
use festival_core::{Identity, Kind, RoomId, SignedEnvelope};

use crate::store::MemStore;

/// What a node keeps besides its core.
pub struct HostCfg {
    /// Its store's budget in bytes (`None`: unlimited).
    pub budget: Option<u64>,
    pub lifetime_ms: u64,
    /// Rooms it is in besides the festival room (for the eviction order).
    pub rooms: BTreeSet<RoomId>,
}

/// Feed `input` to `core` at `now` and carry out everything that stays in
/// the node; return the outputs that leave it, in order.
pub fn handle(
    core: &mut Node,
    store: &mut MemStore,
    cfg: &HostCfg,
    input: Input,
    now: u64,
    peak_bytes: &mut u64,
) -> Vec<Output> {
    let first = core.handle(input, now);
    carry_out(core, store, cfg, first, now, peak_bytes)
}

/// Carry out `outputs` (and what follows from them) for one node, with the
/// loop the product's engine runs ([`drain`]: persists waiting together
/// are committed together, the rest in order).
pub fn carry_out(
    core: &mut Node,
    store: &mut MemStore,
    cfg: &HostCfg,
    outputs: Vec<Output>,
    now: u64,
    peak_bytes: &mut u64,
) -> Vec<Output> {
    let mut io = Io { store, now, external: Vec::new() };
    drain_now(core, outputs, &mut io);
    let Io { store, external, .. } = io;
    if let Some(budget) = cfg.budget {
        if store.bytes() > budget {
            let mut rooms = cfg.rooms.clone();
            rooms.insert(RoomId::festival());
            // Down to 90 %, so a full store does not evict on every message.
            store.evict(budget / 10 * 9, &core.peer_id(), &rooms, now, cfg.lifetime_ms);
        }
    }
    *peak_bytes = (*peak_bytes).max(store.bytes());
    external
}

/// A node's store as [`drain`] sees it: in memory, so nothing waits.
struct Io<'a> {
    store: &'a mut MemStore,
    now: u64,
    /// What leaves the node, in order.
    external: Vec<Output>,
}

impl Host for Io<'_> {
    fn now(&self) -> Now {
        self.now.into()
    }

    async fn persist(&mut self, node: &Node, batch: Vec<ToPersist>) -> Vec<Result<(), PersistError>> {
        let mut results = Vec::with_capacity(batch.len());
        for p in batch {
            let result = self.store.insert(p.envelope.clone(), p.hops, self.now).map_err(|_| PersistError::Conflict);
            if result.is_ok() {
                count_receipt(node.identity(), self.store, &p.envelope);
            }
            results.push(result);
        }
        results
    }

    async fn carry_out(&mut self, _: &Node, output: Output) -> Option<Input> {
        match output {
            Output::Load(load) => {
                let store = &self.store;
                let items = store.range(&load.room, &load.author, load.from, load.to, load.max_bytes, load.not_before);
                Some(Input::Loaded { load, items })
            }
            Output::Skip { room, author, through } => {
                self.store.skip(&room, &author, through);
                None
            }
            Output::RecordProof { held, other } => {
                self.store.record_proof(held, other).map(|(a, b)| Input::Proved { a, b })
            }
            other => {
                self.external.push(other);
                None
            }
        }
    }
}

/// Receipts for our own messages, counted by the protocol's rule.
fn count_receipt(me: &Identity, store: &mut MemStore, env: &SignedEnvelope) {
    if !matches!(env.kind(), Kind::Receipt | Kind::SealedReceipt) {
        return;
    }
    let counted = festival_core::receipt::counted(me, env, |id| store.target(id), |a, r| store.is_member(a, r));
    if let Some((status, ids)) = counted {
        for id in ids {
            let e = store.receipts.entry(id).or_default().entry(env.author()).or_insert(status);
            *e = (*e).max(status);
        }
    }
}
