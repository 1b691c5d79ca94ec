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

    async fn apply(&mut self, out: Vec<Output>) -> Vec<Effect> {
        let mut effects = Vec::new();
        let mut work: std::collections::VecDeque<Output> = out.into();
        while let Some(o) = work.pop_front() {
            let now = now_ms();
            let follow = match o {
                Output::Send { link, bytes } => {
                    effects.push(Effect::Send { link, bytes });
                    None
                }
                Output::Persist { envelope, hops, local } => {
                    let id = envelope.id();
                    let result = match self.store.insert(&envelope, hops, now, local).await {
                        Ok(Inserted::New | Inserted::Duplicate) => Ok(()),
                        Err(StoreError::Conflict { .. }) => Err(PersistError::Conflict),
                        Err(e) => {
                            tracing::error!(%e, ?id, "store failed");
                            effects.push(Effect::StoreFailed { id, error: e.to_string() });
                            Err(PersistError::Failed(e.to_string()))
                        }
                    };
                    if result.is_ok() {
                        self.after_commit(&envelope, now).await;
                    }
                    Some(Input::Persisted { id, result })
                }
                Output::Load { link, room, author, from, to, max_bytes } => {
                    let items = self.store.load_range(&room, &author, from, to, max_bytes).await.unwrap_or_else(|e| {
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
            };
            if let Some(input) = follow {
                work.extend(self.node.handle(input, now));
            }
        }
        effects
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
