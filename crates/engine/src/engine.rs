//! The engine: a core `Node` plus its `Store`. It carries out every output
//! that touches the disk and hands back the rest as effects, so the same code
//! serves the CLI, the networked runtime, the relay and tests.
//!
//! Store reads for peers (`Output::Load`) never run inside the caller's
//! event loop: each runs in a task of its own and comes back through
//! [`Engine::loaded`], which the caller's `select!` waits on beside its
//! other inputs. The core caps reads in flight per link, so these tasks are
//! bounded too.

use festival_core::body::Body;
use festival_core::policy::PowerState;
use festival_core::sync::{
    drain, drain_deferring, Config, Content, Host, Input, LinkKind, Load, Node, Now, Output, PersistError,
    RefusalReport, SendError, ToPersist,
};
use festival_core::{LinkId, MessageId, PeerId, RoomId, SignedEnvelope};
use festival_store::{Inserted, MessageStore, Store, StoreError};
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::retention::{self, Retention, RetentionTask, RetentionTrigger};

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
    /// What one link's peer sent that was refused in the last second.
    Refused {
        link: LinkId,
        peer: PeerId,
        report: RefusalReport,
    },
    /// The link keeps sending what no honest peer sends: close it and back
    /// off from the peer.
    Misbehaving {
        link: LinkId,
        peer: PeerId,
    },
    /// An author is newly known to have signed two messages for one position.
    Equivocator {
        author: PeerId,
    },
    /// A receipt counted for these messages of ours (only what the
    /// protocol's rule lets count: see `festival_core::receipt`).
    Receipt {
        from: PeerId,
        status: festival_core::ReceiptStatus,
        ids: Vec<MessageId>,
    },
    Limits(festival_core::policy::Limits),
    /// Call [`Engine::handle`] with `Input::Tick` at this time of the
    /// engine's monotonic clock ([`Clock::mono`]).
    WakeAt(u64),
    /// The envelope is in the store after this call's commit: `new` when
    /// this call stored it, not when it was there already (another writer
    /// of a shared store put it there).
    Stored {
        id: MessageId,
        new: bool,
    },
    /// The store failed; the message will come again through sync.
    StoreFailed {
        id: MessageId,
        error: String,
    },
}

/// The engine on a store: a device's SQLite file unless said otherwise
/// (a relay cluster runs it on PostgreSQL).
pub struct Engine<S: MessageStore = Store> {
    node: Node,
    io: Io<S>,
    /// Answers of reads running beside the event loop.
    loaded_rx: mpsc::UnboundedReceiver<Input>,
}

/// The engine's side of [`drain`]: the store and what goes with it.
struct Io<S: MessageStore> {
    store: S,
    loaded_tx: mpsc::UnboundedSender<Input>,
    /// Wakes the retention task after enough has been committed.
    retention: Option<RetentionTrigger>,
    /// Both clocks: the core's timers on the monotonic one, dates (store
    /// times, `created_at`) on the wall clock.
    clock: Clock,
    /// What the outputs carried out so far leave for the caller.
    effects: Vec<Effect>,
}

impl<S: MessageStore> Engine<S> {
    /// Build the core from what the store holds (heads, gaps, the outbox,
    /// equivocation proofs).
    pub async fn boot(store: S, cfg: Config, power: PowerState) -> Result<Engine<S>, EngineError> {
        Engine::boot_with_clock(store, cfg, power, Clock::system()).await
    }

    /// [`Engine::boot`] on `clock` (a test's, whose wall clock jumps).
    pub async fn boot_with_clock(
        store: S,
        mut cfg: Config,
        power: PowerState,
        clock: Clock,
    ) -> Result<Engine<S>, EngineError> {
        let local = store.identity().await?.ok_or(EngineError::NoIdentity)?;
        let snapshot = store.snapshot().await?;
        for r in store.rooms().await? {
            if !cfg.rooms.contains(&r.room) {
                cfg.rooms.push(r.room);
            }
        }
        if cfg.rng_seed == [0; 32] {
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut cfg.rng_seed);
        }
        let node = Node::new(local.identity, cfg, snapshot, power, clock.now());
        let (loaded_tx, loaded_rx) = mpsc::unbounded_channel();
        Ok(Engine { node, io: Io { store, loaded_tx, retention: None, clock, effects: Vec::new() }, loaded_rx })
    }

    /// Keep the store within `r` from now on (see [`crate::retention`]);
    /// the task stops when the returned handle is dropped.
    pub fn start_retention(&mut self, r: Retention) -> RetentionTask {
        let (task, trigger) = retention::start(self.io.store.clone(), r);
        self.io.retention = Some(trigger);
        task
    }

    pub fn node(&self) -> &Node {
        &self.node
    }
    pub fn store(&self) -> &S {
        &self.io.store
    }
    /// The clocks the core runs on; [`Effect::WakeAt`] is on its
    /// monotonic one.
    pub fn clock(&self) -> &Clock {
        &self.io.clock
    }
    pub fn peer_id(&self) -> PeerId {
        self.node.peer_id()
    }

    /// The next answer of a store read for a peer: feed it to
    /// [`Engine::handle`]. Pending forever while none is running.
    pub async fn loaded(&mut self) -> Input {
        match self.loaded_rx.recv().await {
            Some(input) => input,
            // The engine holds a sender, so the channel never closes.
            None => std::future::pending().await,
        }
    }

    /// Feed one input and carry out everything that follows.
    pub async fn handle(&mut self, input: Input) -> Vec<Effect> {
        let out = self.node.handle(input, self.io.clock.now());
        self.apply(out).await
    }

    /// Author a message: it is committed before this returns.
    pub async fn send(&mut self, room: RoomId, content: Content) -> Result<(MessageId, Vec<Effect>), EngineError> {
        let (id, out) = self.node.send(room, content, self.io.clock.now())?;
        let effects = self.apply(out).await;
        if let Some(Effect::StoreFailed { error, .. }) =
            effects.iter().find(|e| matches!(e, Effect::StoreFailed { id: f, .. } if *f == id))
        {
            return Err(EngineError::NotSaved(error.clone()));
        }
        Ok((id, effects))
    }

    /// Send one of our own stored messages again to the links of its room
    /// (the person's "retry", see `Input::Resend`). Returns how many links
    /// were told (0: not ours, not stored, or nobody in reach).
    pub async fn resend(&mut self, id: &MessageId) -> Result<(usize, Vec<Effect>), EngineError> {
        let Some(m) = self.io.store.get(id).await? else { return Ok((0, Vec::new())) };
        if m.envelope.author() != self.node.identity().peer_id() {
            return Ok((0, Vec::new()));
        }
        let before = self.node.stats().resent_to;
        let effects = self.handle(Input::Resend { envelope: m.envelope }).await;
        let told = self.node.stats().resent_to.saturating_sub(before);
        Ok((usize::try_from(told).unwrap_or(usize::MAX), effects))
    }

    /// The user has seen these messages of `room`: read receipts go to
    /// their authors (for DMs, sealed to each).
    pub async fn mark_read(&mut self, room: RoomId, ids: &[MessageId]) -> Vec<Effect> {
        let mut messages = Vec::with_capacity(ids.len());
        for id in ids {
            match self.io.store.get(id).await {
                Ok(Some(m)) if *m.envelope.room() == room => messages.push((*id, m.envelope.author())),
                Ok(_) => {}
                Err(e) => tracing::warn!(%e, "looking up a message read failed"),
            }
        }
        self.handle(Input::MarkRead { room, messages }).await
    }

    /// Feed several inputs (frames that arrived together, say) and carry
    /// out everything that follows: the envelopes they bring are committed
    /// in one transaction, one fsync for all of them instead of one each.
    pub async fn handle_many(&mut self, inputs: impl IntoIterator<Item = Input>) -> Vec<Effect> {
        let now = self.io.clock.now();
        let mut out = Vec::new();
        for input in inputs {
            out.extend(self.node.handle(input, now));
        }
        self.apply(out).await
    }

    /// [`Engine::handle_many`] that leaves the commit to the caller:
    /// everything else is carried out now, and the envelopes to commit come
    /// back as a [`Commit`] (`None`: nothing to commit). The caller runs it
    /// where it likes ([`Commit::run`] holds its own handle on the store)
    /// while it goes on feeding the engine other inputs, and hands its
    /// outcome to [`Engine::committed`], which carries out what follows,
    /// as `handle_many` would have. Until then the envelopes are pending
    /// in the core: a copy arriving meanwhile is not taken again. Commit
    /// them one [`Commit`] at a time, in the order they came. Other calls
    /// meanwhile ([`Engine::handle`]) commit what they bring themselves,
    /// inline, beside the deferred one (a shared store serialises them).
    pub async fn handle_many_deferred(
        &mut self,
        inputs: impl IntoIterator<Item = Input>,
    ) -> (Vec<Effect>, Option<Commit<S>>) {
        let now = self.io.clock.now();
        let mut out = Vec::new();
        for input in inputs {
            out.extend(self.node.handle(input, now));
        }
        let persists = drain_deferring(&mut self.node, out, &mut self.io).await;
        let effects = std::mem::take(&mut self.io.effects);
        let commit =
            (!persists.is_empty()).then(|| Commit { store: self.io.store.clone(), persists, at: self.io.clock.wall() });
        (effects, commit)
    }

    /// What follows a [`Commit`] the caller ran: `Stored` (or
    /// `StoreFailed`) for each envelope, then everything the core does
    /// with them (deliveries, forwards).
    pub async fn committed(&mut self, done: CommitDone) -> Vec<Effect> {
        let results = self.io.settle(&self.node, &done.persists, done.outcomes, done.at).await;
        self.answer(done.persists.iter().map(|p| p.envelope.id()).zip(results).collect()).await
    }

    /// A [`Commit`] that never gave an outcome (its task died), by its
    /// [`Commit::ids`]: each envelope is answered as not stored, so the
    /// core stops waiting for it and takes it again when it comes again.
    pub async fn commit_lost(&mut self, ids: &[MessageId], why: &str) -> Vec<Effect> {
        for id in ids {
            tracing::error!(error = why, ?id, "store failed");
            self.io.effects.push(Effect::StoreFailed { id: *id, error: why.to_owned() });
        }
        let results = ids.iter().map(|id| (*id, Err(PersistError::Failed(why.to_owned()))));
        self.answer(results.collect()).await
    }

    async fn answer(&mut self, results: Vec<(MessageId, Result<(), PersistError>)>) -> Vec<Effect> {
        let now = self.io.clock.now();
        let mut out = Vec::new();
        for (id, result) in results {
            out.extend(self.node.handle(Input::Persisted { id, result }, now));
        }
        self.apply(out).await
    }

    async fn apply(&mut self, out: Vec<Output>) -> Vec<Effect> {
        drain(&mut self.node, out, &mut self.io).await;
        std::mem::take(&mut self.io.effects)
    }
}

/// Envelopes to commit that [`Engine::handle_many_deferred`] handed out.
#[must_use = "its envelopes stay pending in the core until its outcome is fed to `Engine::committed`"]
pub struct Commit<S: MessageStore> {
    store: S,
    persists: Vec<ToPersist>,
    /// Received at: a date.
    at: u64,
}

impl<S: MessageStore> Commit<S> {
    /// Commit them (ours and others' a transaction each); the engine is
    /// not needed for it.
    pub async fn run(self) -> CommitDone {
        let outcomes = store_batches(&self.store, &self.persists, self.at).await;
        CommitDone { persists: self.persists, outcomes, at: self.at }
    }

    /// The envelopes it commits, for [`Engine::commit_lost`].
    pub fn ids(&self) -> Vec<MessageId> {
        self.persists.iter().map(|p| p.envelope.id()).collect()
    }
}

/// A [`Commit`] carried out, for [`Engine::committed`].
pub struct CommitDone {
    persists: Vec<ToPersist>,
    /// Per envelope: stored by this commit (`true`) or there already.
    outcomes: Vec<Result<bool, PersistError>>,
    at: u64,
}

/// Commit envelopes, ours (which also join the outbox) and others' in a
/// transaction each; one outcome per envelope in the order given: whether
/// this commit stored it (`Ok(false)`: it was there already).
async fn store_batches<S: MessageStore>(
    store: &S,
    persists: &[ToPersist],
    now: u64,
) -> Vec<Result<bool, PersistError>> {
    let mut answers: Vec<Option<Result<bool, PersistError>>> = vec![None; persists.len()];
    for local in [true, false] {
        let (places, batch): (Vec<usize>, Vec<(SignedEnvelope, u8)>) = persists
            .iter()
            .enumerate()
            .filter(|(_, p)| p.local == local)
            .map(|(i, p)| (i, (p.envelope.clone(), p.hops)))
            .unzip();
        if batch.is_empty() {
            continue;
        }
        // The outer error fails the whole transaction: nothing was stored.
        let mut outcomes: Vec<Result<bool, PersistError>> = match store.insert_batch(&batch, now, local).await {
            Ok(outcomes) => outcomes
                .into_iter()
                .map(|o| match o {
                    Ok(inserted) => Ok(matches!(inserted, Inserted::New)),
                    Err(StoreError::Conflict { .. }) => Err(PersistError::Conflict),
                    Err(e) => Err(PersistError::Failed(e.to_string())),
                })
                .collect(),
            Err(e) => batch.iter().map(|_| Err(PersistError::Failed(e.to_string()))).collect(),
        };
        // A store that answered short did not commit the rest.
        outcomes.resize(batch.len(), Err(PersistError::Failed("the store gave no answer for it".into())));
        for (place, outcome) in places.into_iter().zip(outcomes) {
            answers[place] = Some(outcome);
        }
    }
    answers.into_iter().map(|a| a.expect("each envelope is ours or another's")).collect()
}

impl<S: MessageStore> Host for Io<S> {
    fn now(&self) -> Now {
        self.clock.now()
    }

    /// Commit envelopes, ours and others' in a transaction each, and answer
    /// each with `Persisted`.
    async fn persist(&mut self, node: &Node, persists: Vec<ToPersist>) -> Vec<Result<(), PersistError>> {
        // Received at: a date.
        let now = self.clock.wall();
        let outcomes = store_batches(&self.store, &persists, now).await;
        self.settle(node, &persists, outcomes, now).await
    }

    /// One output other than `Persist`; returns the input it leads to.
    async fn carry_out(&mut self, _node: &Node, o: Output) -> Option<Input> {
        // Store dates (sent at, proofs).
        let now = self.clock.wall();
        let effects = &mut self.effects;
        match o {
            Output::Persist { .. } => unreachable!("persists are committed in batches"),
            Output::Send { link, bytes } => {
                effects.push(Effect::Send { link, bytes });
                None
            }
            Output::Load(load) => {
                self.spawn_load(load);
                None
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
            Output::Refused { link, peer, report } => {
                tracing::warn!(
                    peer = %peer.short(),
                    refused = report.total(),
                    first = %report.first,
                    counts = ?report.counts,
                    "refused input from a peer in the last second"
                );
                effects.push(Effect::Refused { link, peer, report });
                None
            }
            Output::Misbehaving { link, peer } => {
                tracing::warn!(peer = %peer.short(), "peer misbehaving: dropping its link");
                effects.push(Effect::Misbehaving { link, peer });
                None
            }
            Output::Skip { room, author, through } => {
                if let Err(e) = self.store.advance_contiguous(&room, &author, through).await {
                    tracing::warn!(%e, "recording a skipped run failed");
                }
                None
            }
            Output::RecordProof { held, other } => self.record_proof(held, other, now).await,
            Output::Equivocator { author } => {
                tracing::warn!(author = %author.short(), "author signed two messages for one position");
                effects.push(Effect::Equivocator { author });
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
}

impl<S: MessageStore> Io<S> {
    /// What follows a commit in the engine: `Stored` or `StoreFailed` for
    /// each envelope, the retention task told, side tables written; the
    /// answers for the core.
    async fn settle(
        &mut self,
        node: &Node,
        persists: &[ToPersist],
        outcomes: Vec<Result<bool, PersistError>>,
        now: u64,
    ) -> Vec<Result<(), PersistError>> {
        if let Some(t) = &self.retention {
            t.committed(persists.iter().map(|p| p.envelope.bytes().len() as u64).sum());
        }
        let mut answers = Vec::with_capacity(persists.len());
        for (p, outcome) in persists.iter().zip(outcomes) {
            let id = p.envelope.id();
            match &outcome {
                Ok(new) => self.effects.push(Effect::Stored { id, new: *new }),
                Err(PersistError::Failed(error)) => {
                    tracing::error!(%error, ?id, "store failed");
                    self.effects.push(Effect::StoreFailed { id, error: error.clone() });
                }
                Err(PersistError::Conflict) => {}
            }
            if outcome.is_ok() {
                self.after_commit(node, &p.envelope, now).await;
            }
            answers.push(outcome.map(|_| ()));
        }
        answers
    }

    /// Read for a peer beside the event loop; the answer comes back
    /// through [`Engine::loaded`].
    fn spawn_load(&self, load: Load) {
        let store = self.store.clone();
        let tx = self.loaded_tx.clone();
        tokio::spawn(async move {
            let items = store
                .load_range(&load.room, &load.author, load.from, load.to, load.max_bytes, load.not_before)
                .await
                .unwrap_or_else(|e| {
                    tracing::error!(%e, "loading a range failed");
                    Vec::new()
                });
            let _ = tx.send(Input::Loaded { load, items });
        });
    }

    /// Keep both envelopes of an equivocation; `Proved` when the store has
    /// them (and did not before).
    async fn record_proof(&mut self, held: Option<SignedEnvelope>, other: SignedEnvelope, now: u64) -> Option<Input> {
        let held = match held {
            Some(h) => h,
            None => match self.store.get_at(other.room(), &other.author(), other.seq()).await {
                Ok(Some(m)) => m.envelope,
                Ok(None) => return None,
                Err(e) => {
                    tracing::warn!(%e, "looking up an equivocation failed");
                    return None;
                }
            },
        };
        if held.id() == other.id() {
            return None;
        }
        match self.store.record_equivocation(&held, &other, now).await {
            Ok(true) => Some(Input::Proved { a: held, b: other }),
            Ok(false) => None,
            Err(e) => {
                tracing::warn!(%e, "keeping an equivocation proof failed");
                None
            }
        }
    }

    /// Side tables that follow from a newly stored message: names from
    /// profiles, receipts for our messages (only those the protocol's rule
    /// lets count: see `festival_core::receipt`).
    async fn after_commit(&mut self, node: &Node, env: &SignedEnvelope, now: u64) {
        let r = match env.parsed_body() {
            Body::Profile(p) => self.store.set_peer_name(&env.author(), &p.name).await,
            Body::Receipt(_) | Body::SealedReceipt(_) => self.count_receipt(node, env, now).await,
            Body::Text(_)
            | Body::SealedDm(_)
            | Body::Announcement(_)
            | Body::Meetup(_)
            | Body::SealedGroup(_)
            | Body::Photo(_)
            | Body::PhotoChunk(_) => Ok(()),
            // Tallied by the store in the insert's transaction (see `festival_store::meetups`).
            Body::MeetupReply(_) => Ok(()),
        };
        if let Err(e) = r {
            tracing::warn!(%e, "updating side tables failed");
        }
    }

    async fn count_receipt(&mut self, node: &Node, env: &SignedEnvelope, now: u64) -> Result<(), StoreError> {
        let ids = match env.parsed_body() {
            Body::Receipt(r) => r.ids,
            Body::SealedReceipt(_) => match festival_core::body::open(node.identity(), env) {
                Ok(festival_core::body::DmContent::Receipt(r)) => r.ids,
                _ => return Ok(()),
            },
            _ => return Ok(()),
        };
        let targets = self.store.receipt_targets(&ids).await?;
        let member = self.store.is_member(&env.author(), env.room()).await?;
        let counted =
            festival_core::receipt::counted(node.identity(), env, |id| targets.get(id).cloned(), |_, _| member);
        match counted {
            Some((status, ids)) if !ids.is_empty() => {
                self.store.add_receipts(env.author(), status, &ids, now).await?;
                self.effects.push(Effect::Receipt { from: env.author(), status, ids });
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
