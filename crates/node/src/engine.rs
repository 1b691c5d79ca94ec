//! The engine: a core `Node` plus its `Store`. It carries out every output
//! that touches the disk and hands back the rest as effects, so the same code
//! serves the CLI, the networked runtime and tests.

use festival_core::body::Body;
use festival_core::policy::PowerState;
use festival_core::sync::{Config, Content, Input, LinkKind, Node, Output, PersistError, Reject, SendError, Snapshot};
use festival_core::{LinkId, MessageId, PeerId, RoomId};
use festival_store::{Inserted, Store, StoreError};

use crate::clock::now_ms;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("this data dir has no identity yet: run `festival-node init --name NAME`")]
    NoIdentity,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Send(#[from] SendError),
    #[error("the message could not be saved: {0}")]
    NotSaved(String),
}

/// What the engine cannot do itself: put bytes on a link, tell the user.
#[derive(Clone, Debug)]
pub enum Effect {
    Send {
        link: LinkId,
        bytes: Vec<u8>,
    },
    /// A message is stored and ready to show, in per-author order.
    Delivered {
        id: MessageId,
        room: RoomId,
        author: PeerId,
        seq: u64,
    },
    /// One of our messages left on a link for the first time.
    Sent {
        id: MessageId,
        link: LinkId,
        kind: LinkKind,
    },
    Rejected {
        link: LinkId,
        peer: PeerId,
        reason: Reject,
    },
    Limits(festival_core::policy::Limits),
    WakeAt(u64),
    /// The store failed; the message will come again through sync.
    StoreFailed {
        id: MessageId,
        error: String,
    },
}

pub struct Engine {
    node: Node,
    store: Store,
}

impl Engine {
    /// Build the core from what the store holds (heads, gaps, the outbox).
    pub async fn boot(store: Store, mut cfg: Config, power: PowerState) -> Result<Engine, EngineError> {
        let local = store.identity().await?.ok_or(EngineError::NoIdentity)?;
        let mut snapshot = Snapshot::default();
        for h in store.heads().await? {
            if h.max > h.contiguous {
                for (seq, id) in store.held_above(&h.room, &h.author, h.contiguous).await? {
                    snapshot.held_above.push((h.room.clone(), h.author, seq, id));
                }
            }
            snapshot.heads.push((h.room, h.author, h.contiguous, h.max));
        }
        snapshot.unsent = store.unsent().await?.into_iter().map(|r| r.id).collect();
        for r in store.rooms().await? {
            if !cfg.rooms.contains(&r.room) {
                cfg.rooms.push(r.room);
            }
        }
        if cfg.rng_seed == [0; 32] {
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut cfg.rng_seed);
        }
        let node = Node::new(local.identity, cfg, snapshot, power, now_ms());
        Ok(Engine { node, store })
    }

    pub fn node(&self) -> &Node {
        &self.node
    }
    pub fn store(&self) -> &Store {
        &self.store
    }
    pub fn peer_id(&self) -> PeerId {
        self.node.peer_id()
    }

    /// Feed one input and carry out everything that follows.
    pub async fn handle(&mut self, input: Input) -> Vec<Effect> {
        let out = self.node.handle(input, now_ms());
        self.apply(out).await
    }

    /// Author a message: it is committed before this returns.
    pub async fn send(&mut self, room: RoomId, content: Content) -> Result<(MessageId, Vec<Effect>), EngineError> {
        let (id, out) = self.node.send(room, content, now_ms())?;
        let effects = self.apply(out).await;
        if let Some(Effect::StoreFailed { error, .. }) =
            effects.iter().find(|e| matches!(e, Effect::StoreFailed { id: f, .. } if *f == id))
        {
            return Err(EngineError::NotSaved(error.clone()));
        }
        Ok((id, effects))
    }

    /// Feed several inputs (frames that arrived together, say) and carry
    /// out everything that follows: the envelopes they bring are committed
    /// in one transaction, one fsync for all of them instead of one each.
    pub async fn handle_many(&mut self, inputs: impl IntoIterator<Item = Input>) -> Vec<Effect> {
        let now = now_ms();
        let mut out = Vec::new();
        for input in inputs {
            out.extend(self.node.handle(input, now));
        }
        self.apply(out).await
    }

    async fn apply(&mut self, out: Vec<Output>) -> Vec<Effect> {
        let mut effects = Vec::new();
        let mut work: std::collections::VecDeque<Output> = out.into();
        while !work.is_empty() {
            // Every `Persist` waiting in the queue is committed together (the
            // core tracks each as pending, so the order of its answers does
            // not matter); everything else is carried out in order.
            let (persists, rest): (Vec<Output>, Vec<Output>) =
                work.drain(..).partition(|o| matches!(o, Output::Persist { .. }));
            let mut follow: Vec<Input> = Vec::new();
            if !persists.is_empty() {
                follow.extend(self.persist(persists, &mut effects).await);
            }
            for o in rest {
                if let Some(input) = self.carry_out(o, &mut effects).await {
                    follow.push(input);
                }
            }
            let now = now_ms();
            for input in follow {
                work.extend(self.node.handle(input, now));
            }
        }
        effects
    }

    /// Commit envelopes, ours and others' in a transaction each, and answer
    /// each with `Persisted`.
    async fn persist(&mut self, persists: Vec<Output>, effects: &mut Vec<Effect>) -> Vec<Input> {
        let now = now_ms();
        let mut answers = Vec::with_capacity(persists.len());
        // Ours (which also join the outbox) and others', a transaction each.
        let (mut ours, mut others) = (Vec::new(), Vec::new());
        for o in persists {
            if let Output::Persist { envelope, hops, local } = o {
                if local { &mut ours } else { &mut others }.push((envelope, hops));
            }
        }
        for (local, batch) in [(true, ours), (false, others)] {
            if batch.is_empty() {
                continue;
            }
            // The outer error fails the whole transaction: nothing was stored.
            let outcomes: Vec<Result<(), PersistError>> = match self.store.insert_batch(&batch, now, local).await {
                Ok(outcomes) => outcomes
                    .into_iter()
                    .map(|o| match o {
                        Ok(Inserted::New | Inserted::Duplicate) => Ok(()),
                        Err(StoreError::Conflict { .. }) => Err(PersistError::Conflict),
                        Err(e) => Err(PersistError::Failed(e.to_string())),
                    })
                    .collect(),
                Err(e) => batch.iter().map(|_| Err(PersistError::Failed(e.to_string()))).collect(),
            };
            for ((envelope, _), result) in batch.iter().zip(outcomes) {
                let id = envelope.id();
                if let Err(PersistError::Failed(error)) = &result {
                    tracing::error!(%error, ?id, "store failed");
                    effects.push(Effect::StoreFailed { id, error: error.clone() });
                }
                if result.is_ok() {
                    self.after_commit(envelope, now).await;
                }
                answers.push(Input::Persisted { id, result });
            }
        }
        answers
    }

    /// One output other than `Persist`; returns the input it leads to.
    async fn carry_out(&mut self, o: Output, effects: &mut Vec<Effect>) -> Option<Input> {
        let now = now_ms();
        match o {
            Output::Persist { .. } => unreachable!("persists are committed in batches"),
            Output::Send { link, bytes } => {
                effects.push(Effect::Send { link, bytes });
                None
            }
            Output::Load { link, room, author, from, to, max_bytes } => {
                let items = self.store.load_range(&room, &author, from, to, max_bytes, 0).await.unwrap_or_else(|e| {
                    tracing::error!(%e, "loading a range failed");
                    Vec::new()
                });
                Some(Input::Loaded { link, items })
            }
            Output::Deliver { id, room, author, seq } => {
                effects.push(Effect::Delivered { id, room, author, seq });
                None
            }
            Output::Sent { id, link, kind } => {
                let path = match kind {
                    LinkKind::Lan => "lan",
                    LinkKind::Relay => "relay",
                };
                if let Err(e) = self.store.mark_sent(&id, path, now).await {
                    tracing::warn!(%e, "marking sent failed");
                }
                effects.push(Effect::Sent { id, link, kind });
                None
            }
            Output::Rejected { link, peer, reason } => {
                tracing::warn!(?peer, code = reason.code(), %reason, "refused input from peer");
                effects.push(Effect::Rejected { link, peer, reason });
                None
            }
            Output::Limits(l) => {
                effects.push(Effect::Limits(l));
                None
            }
            Output::WakeAt(t) => {
                effects.push(Effect::WakeAt(t));
                None
            }
        }
    }

    /// Side tables that follow from a newly stored message: names from
    /// profiles, receipts for our messages.
    async fn after_commit(&self, env: &festival_core::SignedEnvelope, now: u64) {
        let r = match env.parsed_body() {
            Body::Profile(p) => self.store.set_peer_name(&env.author(), &p.name).await,
            Body::Receipt(r) => self.store.add_receipts(env.author(), r.status, &r.ids, now).await,
            Body::Text(_) | Body::SealedDm(_) => Ok(()),
        };
        if let Err(e) = r {
            tracing::warn!(%e, "updating side tables failed");
        }
    }
}
