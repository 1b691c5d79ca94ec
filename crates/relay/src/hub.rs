//! The hub: the one task that owns the relay's node (festival-node's
//! `Engine`: core + store). Every authenticated WebSocket is a link of kind
//! `LinkKind::Relay`; connection tasks hand it frames and signals through
//! its inbox, and it answers through each connection's bounded queue.
//!
//! Besides driving the engine it does the relay's own jobs:
//! - joins the rooms its nodes name in their hellos, so it carries every room
//!   somebody uses through it: up to `max_rooms`, at most
//!   `rooms_per_identity_per_hour` new ones for any one identity and
//!   `rooms_created_per_minute` in all, and leaves
//!   rooms nobody named or wrote in for `room_idle_hours`. Its hello to each
//!   node names only the rooms that node named (the core's
//!   `hello_shared_only`), so no node ever sees more rooms than it sent, and
//!   a join re-hellos only the nodes that named the room;
//! - keeps its store within its budget and the festival's message lifetime
//!   (festival-node's retention task);
//! - enforces the per-author storage quota before an envelope reaches the core;
//! - after the engine returns (the store has committed, `Persist` ->
//!   `Persisted`), acknowledges each envelope of the frame that is in the
//!   store with `Stored`: nothing is acknowledged that a crash could lose;
//! - forwards signaling between connected nodes.
//!
//! A commit of frames' envelopes runs in a task of its own
//! (`Engine::handle_many_deferred`): while it waits on the store the hub
//! goes on with what other instances committed (on a queue of their own),
//! signaling and new connections; frames, and connections closing after
//! them, wait for it, at most `commits_per_sec` commits a second.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::body::Bytes;
use festival_core::frame::{Frame, Item};
use festival_core::sync::{Config, Input, LinkKind};
use festival_core::{Identity, LinkId, MessageId, PeerId, RoomId, SignedEnvelope};
use festival_engine::clock::now_ms;
use festival_engine::engine::{CommitDone, Effect, Engine};
use festival_engine::wire::relay::{close, RelayMsg, MAX_SIGNAL_BYTES};
use festival_engine::wire::signaling::SignalMsg;
use festival_store::pg::{PgStore, RoomAllowance};
use festival_store::{AnyStore, MessageStore, Store, StoreError};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::cluster::{BusKey, Cluster};
use crate::config::RelayConfig;
use crate::metrics::Metrics;
use crate::RelayError;

/// The rooms every node carries and the relay with them: the festival room
/// and the DM mailbox, and the announcements with an organiser key.
fn everyones(cfg: &RelayConfig) -> u64 {
    2 + u64::from(cfg.organiser_key().is_some())
}

/// Refusal notices sent to one connection per second at most: a flooding
/// node must not make the relay flood it back.
const NOTICES_PER_SEC: u32 = 5;

/// Inbox messages taken in one turn of the hub. Frames among them share a
/// commit; the bound keeps one turn short (a frame is at most 256 KiB, and
/// most are one message).
const MAX_INPUTS_PER_TURN: usize = 256;

/// An envelope of a frame on its way to the core: its id, its author (read
/// unverified from the envelope) and whether the store held it already.
/// An envelope of a frame: its id, its author (unverified), whether the
/// store held it before, and (when it did not) its bytes and hops, for the
/// cluster's bus once it is committed.
type Incoming = (MessageId, Option<PeerId>, bool, Option<(Vec<u8>, u8)>);

/// How often idle rooms are looked for.
const ROOM_SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Identities remembered for the room-creation limit; beyond it, windows
/// that ended are forgotten (they hold no allowance worth keeping).
const MAX_ROOM_CREATORS: usize = 50_000;
/// Whether a new room may be joined now.
#[derive(Clone, Copy)]
enum Creation {
    Allowed,
    /// The identity made us join its hourly allowance already.
    IdentitySpent,
    /// The relay-wide budget is spent for now.
    RelaySpent,
}

/// Rooms waiting for the relay-wide budget (see `Hub::waiting`).
const MAX_ROOMS_WAITING: usize = 1_024;
/// How long an instance of a cluster trusts its count of an author's
/// messages before it reads the shared store's again: other instances
/// store that author's messages too, and the quota is the relay's, not an
/// instance's.
const AUTHOR_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Authors whose counts an instance remembers having read; the memory is
/// cleared when full (the next message of each is read again).
const MAX_AUTHORS_CHECKED: usize = 50_000;

/// Messages per author the store holds, for the storage quota. `max` over-counts
/// an author with gaps: the quota errs on the safe side.
async fn quota_counts<S: MessageStore>(store: &S) -> festival_store::Result<HashMap<PeerId, u64>> {
    let mut per_author: HashMap<PeerId, u64> = HashMap::new();
    for h in store.heads().await? {
        *per_author.entry(h.author).or_default() += h.max;
    }
    Ok(per_author)
}

/// A commit of frames' envelopes running beside the hub: its task, its
/// envelopes, and what to acknowledge to whom once it is over.
struct Flight {
    task: tokio::task::JoinHandle<CommitDone>,
    ids: Vec<MessageId>,
    incoming: Vec<(LinkId, Vec<Incoming>)>,
}

/// The outcome of the commit in flight; pending while there is none.
async fn join(flight: &mut Option<Flight>) -> Result<CommitDone, tokio::task::JoinError> {
    match flight {
        Some(f) => (&mut f.task).await,
        None => std::future::pending().await,
    }
}

/// What the hub serves as it comes, also while a commit of frames is in
/// flight or gathers: what other instances committed, signaling, and
/// connections opening (a link that is opening has no frames waiting; one
/// that replaces a session whose frames wait goes after them, see
/// `Hub::replaces_waiting_link`), and a session replaced at another
/// instance (what its frames here brought is not acknowledged, and comes
/// again there). Frames wait (one commit of them at a time, in order), and
/// so do connections closing, which go after the frames they sent.
fn beside_commit(m: &HubIn) -> bool {
    match m {
        HubIn::Committed { .. }
        | HubIn::Missing { .. }
        | HubIn::RemoteSignal { .. }
        | HubIn::Unreachable { .. }
        | HubIn::Signal { .. }
        | HubIn::Open { .. }
        | HubIn::Replaced { .. } => true,
        HubIn::Frame { .. } | HubIn::Closed { .. } => false,
    }
}

/// The cluster's queue into the hub, in messages of up to a few hundred
/// envelopes each (its reader tasks wait when it is full).
const BUS_QUEUE: usize = 256;

/// Envelopes other instances committed at positions pending in this
/// instance's commit, kept until it ends (see `Hub::on_committed`). Beyond
/// it they are counted (`cluster_kept_full`) and left to the store's tail,
/// which cannot read past the open commit and asks for each after it.
const MAX_AFTER_FLIGHT: usize = 4_096;

/// Envelopes other instances committed at positions pending in this
/// instance's commit in flight, kept until it ends (see
/// `Hub::on_committed`): at most [`MAX_AFTER_FLIGHT`].
#[derive(Default)]
struct KeptAside(Vec<(SignedEnvelope, u8)>);

impl KeptAside {
    /// Keep one; `false`, keeping nothing, when full.
    fn keep(&mut self, item: (SignedEnvelope, u8)) -> bool {
        if self.0.len() >= MAX_AFTER_FLIGHT {
            return false;
        }
        self.0.push(item);
        true
    }

    fn take(&mut self) -> Vec<(SignedEnvelope, u8)> {
        std::mem::take(&mut self.0)
    }
}

/// How often waiting rooms are looked at.
const ROOM_RETRY_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// What connection tasks tell the hub.
pub enum HubIn {
    Open {
        peer: PeerId,
        out: mpsc::Sender<Bytes>,
        kill: oneshot::Sender<u16>,
        reply: oneshot::Sender<LinkId>,
    },
    Frame {
        link: LinkId,
        bytes: Vec<u8>,
    },
    Signal {
        link: LinkId,
        to: PeerId,
        msg: Vec<u8>,
    },
    Closed {
        link: LinkId,
    },
    /// Envelopes other instances of the cluster committed (from the bus or
    /// the shared store's tail; see `crate::cluster`).
    Committed {
        items: Vec<(festival_core::SignedEnvelope, u8)>,
    },
    /// Where envelopes committed in the cluster are (the store's tail while
    /// the bus runs): which of them this instance does not hold.
    Missing {
        refs: Vec<festival_store::pg::CommittedRef>,
        reply: oneshot::Sender<Vec<MessageId>>,
    },
    /// An offer or answer from a node of another instance.
    RemoteSignal {
        from: PeerId,
        to: PeerId,
        msg: Vec<u8>,
    },
    /// A signal of this link's node found its addressee nowhere.
    Unreachable {
        link: LinkId,
        to: PeerId,
    },
    /// This node's session on `link` has been replaced by one at another
    /// instance.
    Replaced {
        peer: PeerId,
        link: LinkId,
    },
}

struct Conn {
    peer: PeerId,
    /// Encoded `RelayMsg`s for the socket (shared, not copied, when one
    /// push goes to many nodes).
    out: mpsc::Sender<Bytes>,
    /// Tells the connection task to close with a code.
    kill: Option<oneshot::Sender<u16>>,
    notice_window: Instant,
    notices: u32,
    /// The rooms its latest hello named (at most the protocol's 256).
    rooms: BTreeSet<RoomId>,
}

pub struct Hub {
    engine: Engine<AnyStore>,
    store: AnyStore,
    cfg: RelayConfig,
    metrics: Arc<Metrics>,
    conns: HashMap<LinkId, Conn>,
    by_peer: HashMap<PeerId, LinkId>,
    next_link: u64,
    rooms: HashSet<RoomId>,
    /// When each room was last named in a hello or written in.
    room_used: HashMap<RoomId, Instant>,
    /// Rooms each identity made us join in its current hour: (start, count).
    creators: HashMap<PeerId, (Instant, u32)>,
    /// The relay-wide budget of new rooms: tokens (up to
    /// `rooms_created_per_minute`, refilled at that rate) and when counted.
    created: (f64, Instant),
    /// In a cluster, what the shared store last said was spent, so that
    /// hellos naming new rooms do not each cost it a transaction: each
    /// identity whose hourly allowance is spent, until its hour ends (at
    /// most [`MAX_ROOM_CREATORS`]), and when the relay's budget has its
    /// next creation.
    spent_until: HashMap<PeerId, Instant>,
    budget_until: Option<Instant>,
    /// Rooms refused only for the relay-wide budget, oldest first, with the
    /// identity that named them: joined as the budget refills while that
    /// node is connected and still names them (a node names its rooms in a hello
    /// and does not repeat it). At most [`MAX_ROOMS_WAITING`].
    waiting: VecDeque<(RoomId, PeerId)>,
    /// Expiry and the budget; stops with the hub.
    _retention: festival_engine::retention::RetentionTask,
    /// Messages held per author: the storage quota.
    per_author: HashMap<PeerId, u64>,
    /// When the engine wants a tick (ms since the epoch).
    wake: Option<u64>,
    /// Links dropped while applying effects; the engine hears of it next.
    down: Vec<LinkId>,
    /// The other instances, when this is one of a cluster.
    cluster: Option<Cluster>,
    /// When each author's count was last read from the shared store.
    author_checked: HashMap<PeerId, Instant>,
    /// The commit of frames in flight, if any.
    flight: Option<Flight>,
    /// Inputs waiting for it to end, in arrival order (see `beside_commit`):
    /// up to about two turns' worth, [`MAX_INPUTS_PER_TURN`] each, since
    /// the inbox is not read while a turn's worth waits.
    held: VecDeque<HubIn>,
    /// Commits of frames allowed per second (`commits_per_sec`).
    commit_budget: CommitBudget,
    /// When the budget has a commit again for the frames that wait.
    gather_until: Option<Instant>,
    /// Shutting down: what waits is committed without the budget.
    closing: bool,
    /// What other instances committed at positions pending in the commit
    /// in flight.
    after_flight: KeptAside,
    /// The cluster's inputs (`Committed`, `Missing`, signals from other
    /// instances), on a queue of their own: read even while a turn's worth
    /// of frames waits for a commit. Its sender is kept here, the cluster
    /// holds it weakly.
    bus_rx: mpsc::Receiver<HubIn>,
    _bus_tx: mpsc::Sender<HubIn>,
}

/// A token bucket of commits: up to `commits_per_sec`, with a tenth of a
/// second's worth (at least one) to spend at once. Below the rate every
/// frame's commit starts as soon as the one before it ends, as without a
/// budget; above it, frames wait for the next commit and share it, so that
/// an instance's transactions per second stay bounded whatever the rate of
/// messages (each costs the database about as much as a few messages in
/// it: see docs/benchmarks.md, "Commits shared under load").
struct CommitBudget {
    per_sec: f64,
    cap: f64,
    tokens: f64,
    at: Instant,
}

impl CommitBudget {
    fn new(per_sec: u32, now: Instant) -> CommitBudget {
        let per_sec = f64::from(per_sec.max(1));
        let cap = (per_sec / 10.0).max(1.0);
        CommitBudget { per_sec, cap, tokens: cap, at: now }
    }

    /// A commit taken and not made.
    fn refund(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.cap);
    }

    /// Take a commit: `None` if there was one, or how long until there is.
    fn take(&mut self, now: Instant) -> Option<std::time::Duration> {
        self.tokens = (self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * self.per_sec).min(self.cap);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            None
        } else {
            Some(std::time::Duration::from_secs_f64((1.0 - self.tokens) / self.per_sec))
        }
    }
}

impl Hub {
    /// Open (or create) the relay's store and identity and boot its node.
    /// Returns the hub and a copy of the relay's identity for the handshake.
    pub async fn open(
        cfg: &RelayConfig,
        metrics: Arc<Metrics>,
        instance: String,
    ) -> Result<(Hub, Identity), RelayError> {
        let store_err = |e: StoreError| RelayError::Store(e.to_string());
        let store = match &cfg.store {
            Some(url) => AnyStore::Postgres(PgStore::connect(url).await.map_err(store_err)?),
            None => {
                // Owner-only (0700), as a node's: it holds the relay's identity key.
                festival_engine::datadir::create_private_dir(&cfg.data_dir)?;
                let path = cfg.data_dir.join(festival_engine::datadir::DB_FILE);
                AnyStore::Sqlite(Store::open(&path).await.map_err(|e| RelayError::Store(e.to_string()))?)
            }
        };
        if store.identity().await.map_err(store_err)?.is_none() {
            let id = Identity::generate(&mut rand_core::OsRng);
            match store.create_identity(&id, "festival-relay", now_ms()).await {
                // Another instance of the cluster created it first: its
                // identity is the relay's, read below by the engine.
                Ok(()) | Err(StoreError::AlreadyInitialised) => {}
                Err(e) => return Err(store_err(e)),
            }
        }
        // In a cluster, the tail of the shared store starts here: what
        // commits after this is read again, what commits before it is in
        // the state the engine boots from.
        let horizon = match &store {
            AnyStore::Postgres(pg) => Some(pg.commit_horizon().await.map_err(store_err)?),
            AnyStore::Sqlite(_) => None,
        };
        let per_author = quota_counts(&store).await.map_err(store_err)?;
        let rooms: HashSet<RoomId> = store.rooms().await.map_err(store_err)?.into_iter().map(|r| r.room).collect();
        metrics.mailbox_messages.store(store.message_count().await.map_err(store_err)?, Relaxed);
        metrics.rooms.store(rooms.len() as u64 + everyones(cfg), Relaxed);
        let retention = cfg.retention();
        let core = Config {
            // The relay is no member of any room: it sends no receipts of
            // its own, or every small room would see "delivered" from it.
            room_receipts_max_members: 0,
            // Nor for DMs to it: it writes nothing of its own (see
            // `Config::dm_receipts`: cluster instances share its key).
            dm_receipts: false,
            hello_shared_only: true,
            recent_ids_allocated: true,
            message_lifetime_ms: retention.lifetime_ms,
            organiser: cfg.organiser_key(),
            ..Config::default()
        };
        let mut engine = Engine::boot(store.clone(), core, festival_core::policy::PowerState::Mains)
            .await
            .map_err(|e| RelayError::Store(e.to_string()))?;
        let retention_task = engine.start_retention(retention);
        let identity = Identity::from_secret_bytes(&engine.node().identity().secret_bytes());
        let (bus_tx, bus_rx) = mpsc::channel(BUS_QUEUE);
        let cluster = match (&store, horizon) {
            (AnyStore::Postgres(pg), Some(horizon)) => {
                metrics.clustered.store(true, Relaxed);
                tracing::info!(%instance, bus = cfg.bus.is_some(), "relay cluster instance");
                let bus = cfg.bus.clone().map(|url| (url, BusKey::of(&identity)));
                let c = Cluster::start(pg.clone(), horizon, bus, instance, &bus_tx, metrics.clone())
                    .map_err(|e| RelayError::Store(format!("bus: {e}")))?;
                Some(c)
            }
            _ => None,
        };
        tracing::info!(relay = %engine.peer_id(), "relay node ready");
        let hub = Hub {
            engine,
            store,
            cfg: cfg.clone(),
            metrics,
            conns: HashMap::new(),
            by_peer: HashMap::new(),
            // From a random place, not 1: a link number names a session in
            // the cluster's presence notes and `Replaced` words, and one
            // from before a restart must not name a session after it.
            next_link: rand_core::RngCore::next_u64(&mut rand_core::OsRng) >> 2,
            room_used: rooms.iter().map(|r| (r.clone(), Instant::now())).collect(),
            rooms,
            creators: HashMap::new(),
            spent_until: HashMap::new(),
            budget_until: None,
            created: (f64::from(cfg.rooms_created_per_minute), Instant::now()),
            waiting: VecDeque::new(),
            _retention: retention_task,
            per_author,
            wake: None,
            down: Vec::new(),
            cluster,
            author_checked: HashMap::new(),
            flight: None,
            held: VecDeque::new(),
            commit_budget: CommitBudget::new(cfg.commits_per_sec, Instant::now()),
            gather_until: None,
            closing: false,
            after_flight: KeptAside::default(),
            bus_rx,
            _bus_tx: bus_tx,
        };
        Ok((hub, identity))
    }

    /// Serve until every sender of `rx` is gone, then close the store.
    pub async fn run(mut self, mut rx: mpsc::Receiver<HubIn>) {
        self.metrics.hub_up.store(true, Relaxed);
        let fx = self.engine.handle(Input::Tick).await;
        self.apply(fx);
        let mut sweep = tokio::time::interval(ROOM_SWEEP_EVERY);
        let mut retry = tokio::time::interval(ROOM_RETRY_EVERY);
        // A retry that waited on the store is not made up for in a burst.
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // The core's timers run on the engine's monotonic clock.
            let mono = self.engine.clock().mono();
            let wake = self.wake.map(|t| Instant::now() + std::time::Duration::from_millis(t.saturating_sub(mono)));
            tokio::select! {
                // Store reads for nodes, done beside this loop.
                input = self.engine.loaded() => {
                    let fx = self.engine.handle(input).await;
                    self.apply(fx);
                }
                _ = sweep.tick() => self.leave_idle_rooms().await,
                _ = retry.tick(), if !self.waiting.is_empty() => self.join_waiting_rooms().await,
                // The cluster's queue is never full of frames: what other
                // instances committed is delivered whatever waits here.
                Some(m) = self.bus_rx.recv() => self.on(m).await,
                _ = tokio::time::sleep_until(self.gather_until.unwrap_or_else(Instant::now)), if self.gather_until.is_some() && self.flight.is_none() => {
                    self.pump().await;
                }
                done = join(&mut self.flight), if self.flight.is_some() => {
                    let flight = self.flight.take().expect("a commit was in flight");
                    self.finish_frames(flight, done).await;
                    self.pump().await;
                }
                msg = rx.recv(), if self.held.len() < MAX_INPUTS_PER_TURN => match msg {
                    Some(m) => {
                        // Whatever else is already waiting is taken too, so
                        // the frames among it share one commit.
                        let mut batch = vec![m];
                        while batch.len() < MAX_INPUTS_PER_TURN {
                            match rx.try_recv() {
                                Ok(m) => batch.push(m),
                                Err(_) => break,
                            }
                        }
                        for m in batch {
                            if beside_commit(&m) && !self.replaces_waiting_link(&m) {
                                self.on(m).await;
                            } else {
                                self.held.push_back(m);
                            }
                        }
                        self.pump().await;
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {
                    self.wake = None;
                    let fx = self.engine.handle(Input::Tick).await;
                    self.apply(fx);
                }
            }
            while let Some(link) = self.down.pop() {
                let fx = self.engine.handle(Input::LinkDown { link }).await;
                self.apply(fx);
            }
        }
        // What is in flight and what waited for it are still settled, at
        // once.
        self.closing = true;
        loop {
            self.pump().await;
            let Some(mut flight) = self.flight.take() else { break };
            let done = (&mut flight.task).await;
            self.finish_frames(flight, done).await;
        }
        self.metrics.hub_up.store(false, Relaxed);
        self.store.close().await;
        tracing::info!("relay store closed");
    }

    /// Serve what waited: every frame waiting (up to a turn's worth), in
    /// arrival order, in one engine call and one commit when the budget has
    /// one (else gather until it has), then the links that closed
    /// meanwhile, after their frames; until nothing waits or a commit is in
    /// flight.
    async fn pump(&mut self) {
        while self.flight.is_none() && !self.held.is_empty() {
            let mut debited = false;
            if self.held.iter().any(|m| matches!(m, HubIn::Frame { .. })) {
                self.gather_until = None;
                match self.commit_budget.take(Instant::now()) {
                    None => debited = true,
                    // A turn's worth waiting (the inbox is not read past
                    // it), or shutting down: now.
                    Some(wait) if self.held.len() < MAX_INPUTS_PER_TURN && !self.closing => {
                        self.gather_until = Some(Instant::now() + wait);
                        return;
                    }
                    Some(_) => {}
                }
            }
            // Up to the turn's last frame; a closing among them waits for
            // the frames before it.
            let mut cut = self.held.len();
            let mut taken = 0;
            for (i, m) in self.held.iter().enumerate() {
                if matches!(m, HubIn::Frame { .. }) {
                    taken += 1;
                    if taken == MAX_INPUTS_PER_TURN {
                        cut = i + 1;
                        break;
                    }
                }
            }
            let (mut frames, mut rest) = (Vec::new(), Vec::new());
            for m in self.held.drain(..cut) {
                match m {
                    HubIn::Frame { link, bytes } => frames.push((link, bytes)),
                    other => rest.push(other),
                }
            }
            self.on_frames(frames).await;
            if debited && self.flight.is_none() {
                // Nothing to commit after all (hellos, copies held already).
                self.commit_budget.refund();
            }
            for m in rest {
                self.on(m).await;
            }
        }
    }

    /// A node opening a new session while frames of its current one wait:
    /// the opening waits after them (it closes that session, and its
    /// frames would be dropped unacknowledged).
    fn replaces_waiting_link(&self, m: &HubIn) -> bool {
        let HubIn::Open { peer, .. } = m else { return false };
        let Some(old) = self.by_peer.get(peer) else { return false };
        self.held.iter().any(|h| matches!(h, HubIn::Frame { link, .. } if link == old))
    }

    async fn on(&mut self, msg: HubIn) {
        match msg {
            HubIn::Open { peer, out, kill, reply } => {
                if let Some(old) = self.by_peer.get(&peer).copied() {
                    // The node came back on a new socket: the old one is dead or dying.
                    self.drop_conn(old, Some(close::REPLACED));
                }
                let link = LinkId(self.next_link);
                self.next_link += 1;
                let now = Instant::now();
                let conn = Conn { peer, out, kill: Some(kill), notice_window: now, notices: 0, rooms: BTreeSet::new() };
                self.conns.insert(link, conn);
                self.by_peer.insert(peer, link);
                self.metrics.connections.store(self.conns.len() as i64, Relaxed);
                if let Some(c) = &self.cluster {
                    c.arrived(peer, link);
                }
                if reply.send(link).is_err() {
                    self.drop_conn(link, None);
                    return;
                }
                let fx = self.engine.handle(Input::LinkUp { link, peer, kind: LinkKind::Relay }).await;
                self.apply(fx);
            }
            HubIn::Closed { link } => self.drop_conn(link, None),
            // Frames wait their turn (`pump`).
            frame @ HubIn::Frame { .. } => self.held.push_back(frame),
            HubIn::Signal { link, to, msg } => self.on_signal(link, to, msg),
            HubIn::Committed { items } => self.on_committed(items).await,
            HubIn::Missing { refs, reply } => {
                // A position pending in this instance's own commit is not
                // held yet: if that commit fails, the sibling's copy is
                // what this instance must take (see `on_committed`).
                let node = self.engine.node();
                let held = |r: &festival_store::pg::CommittedRef| {
                    node.holds(&r.room, &r.author, r.seq) && !node.pending_at(&r.room, &r.author, r.seq)
                };
                let missing = refs.into_iter().filter(|r| !held(r)).map(|r| r.id);
                let _ = reply.send(missing.collect());
            }
            HubIn::RemoteSignal { from, to, msg } => {
                if let Some(dest) = self.by_peer.get(&to).copied() {
                    self.metrics.signals_forwarded.fetch_add(1, Relaxed);
                    self.send(dest, RelayMsg::Signal { peer: from, msg }.encode().into());
                }
            }
            HubIn::Unreachable { link, to } => self.send(link, RelayMsg::Unreachable { peer: to }.encode().into()),
            // The node opened a session at another instance: one session
            // per identity in the whole cluster, as within one instance.
            HubIn::Replaced { peer, link } => {
                if self.by_peer.get(&peer) == Some(&link) {
                    self.drop_conn(link, Some(close::REPLACED));
                }
            }
        }
    }

    /// Forget a connection; tell its task to close with `code` if given.
    fn drop_conn(&mut self, link: LinkId, code: Option<u16>) {
        let Some(mut c) = self.conns.remove(&link) else { return };
        if self.by_peer.get(&c.peer) == Some(&link) {
            self.by_peer.remove(&c.peer);
            if let Some(cluster) = &self.cluster {
                cluster.left(c.peer, link);
            }
        }
        if let (Some(code), Some(kill)) = (code, c.kill.take()) {
            let _ = kill.send(code);
        }
        self.metrics.connections.store(self.conns.len() as i64, Relaxed);
        self.down.push(link);
    }

    /// Frames from any links, handled in one engine call: the envelopes
    /// they carry are committed in one transaction, then each is
    /// acknowledged to the link it came from.
    async fn on_frames(&mut self, frames: Vec<(LinkId, Vec<u8>)>) {
        if frames.is_empty() {
            return;
        }
        // One commit of frames at a time: only `pump` calls this, and only
        // with none in flight.
        debug_assert!(self.flight.is_none());
        // New envelopes count against their author at once, across all of
        // these frames: a batch of 256 must not slip past a quota of 5.
        let mut admitted: HashMap<PeerId, u64> = HashMap::new();
        let mut inputs = Vec::with_capacity(frames.len());
        // Per frame: its link and (id, author, already held) of each envelope.
        let mut incoming: Vec<(LinkId, Vec<Incoming>)> = Vec::new();
        for (link, mut bytes) in frames {
            if !self.conns.contains_key(&link) {
                continue;
            }
            // A look at the frame before the core sees it: rooms to join,
            // and envelopes to check against the quota and to acknowledge
            // later. The core decodes it again and refuses anything malformed.
            let mut notes = Vec::new();
            match Frame::decode(&bytes) {
                Ok(Frame::Hello(h)) => self.join_rooms(link, h.rooms).await,
                Ok(Frame::Push(item)) => match self.admit_items(link, vec![item], &mut notes, &mut admitted).await {
                    Some(mut kept) if kept.len() == 1 => bytes = Frame::Push(kept.remove(0)).encode(),
                    Some(_) => continue,
                    None => {}
                },
                Ok(Frame::Batch { items }) => match self.admit_items(link, items, &mut notes, &mut admitted).await {
                    Some(kept) if kept.is_empty() => continue,
                    Some(kept) => bytes = Frame::Batch { items: kept }.encode(),
                    None => {}
                },
                _ => {}
            }
            inputs.push(Input::Frame { link, bytes });
            if !notes.is_empty() {
                incoming.push((link, notes));
            }
        }
        let (fx, commit) = self.engine.handle_many_deferred(inputs).await;
        self.apply(fx);
        match commit {
            // Committed beside the hub, which meanwhile goes on delivering
            // what other instances committed (see `Hub::run`).
            Some(commit) => {
                let ids = commit.ids();
                self.metrics.commits.fetch_add(1, Relaxed);
                self.flight = Some(Flight { task: tokio::spawn(commit.run()), ids, incoming });
            }
            None => self.acknowledge(incoming, Vec::new()).await,
        }
    }

    /// The commit of frames' envelopes is over: what follows it in the
    /// engine, then the acknowledgements.
    async fn finish_frames(&mut self, flight: Flight, done: Result<CommitDone, tokio::task::JoinError>) {
        let fx = match done {
            Ok(done) => self.engine.committed(done).await,
            Err(e) => {
                let why = format!("the commit's task ended without an outcome: {e}");
                self.engine.commit_lost(&flight.ids, &why).await
            }
        };
        self.acknowledge(flight.incoming, fx).await;
        let siblings = self.after_flight.take();
        if !siblings.is_empty() {
            self.on_committed(siblings).await;
        }
    }

    /// Acknowledge what frames brought that is in the store now, given the
    /// effects of their commit, and carry out the effects.
    async fn acknowledge(&mut self, incoming: Vec<(LinkId, Vec<Incoming>)>, fx: Vec<Effect>) {
        // The engine has run Persist -> Persisted: whatever is in the store
        // now is committed (synchronous=FULL) and may be acknowledged. The
        // engine says what its commit stored (`new`) or found there already
        // (a sibling instance's); what else of the batch was new is looked
        // up, in one read: the core drops an envelope it holds, and a
        // sibling's copy may have reached it while the frame waited.
        let stored_now: HashMap<MessageId, bool> = fx
            .iter()
            .filter_map(|e| match e {
                Effect::Stored { id, new } => Some((*id, *new)),
                _ => None,
            })
            .collect();
        let asked: Vec<MessageId> = incoming
            .iter()
            .flat_map(|(_, notes)| notes.iter().filter(|n| !n.2 && !stored_now.contains_key(&n.0)).map(|n| n.0))
            .collect();
        let found = self.lookup_held(&asked).await;
        let mut accepted = Vec::new();
        for (link, notes) in incoming {
            let mut stored = Vec::new();
            for (id, author, held_before, bytes) in notes {
                if !(held_before || stored_now.contains_key(&id) || found.contains(&id)) {
                    continue;
                }
                let new = !held_before && stored_now.get(&id) == Some(&true);
                // Only what this instance stored counts against its author
                // here and goes on the bus; a sibling's copy went from there.
                if new {
                    self.metrics.mailbox_messages.fetch_add(1, Relaxed);
                    if let Some(a) = author {
                        *self.per_author.entry(a).or_default() += 1;
                    }
                    accepted.extend(bytes);
                }
                stored.push(id);
            }
            if !stored.is_empty() {
                self.metrics.stored_acks.fetch_add(stored.len() as u64, Relaxed);
                self.send(link, RelayMsg::Stored { ids: stored }.encode().into());
            }
        }
        // Committed: the other instances may hear of it now.
        if let Some(c) = &self.cluster {
            c.accepted(accepted);
        }
        self.apply(fx);
    }

    /// What other instances committed: rooms are the cluster's, so one
    /// another instance carries is joined here too (within `max_rooms`).
    async fn on_committed(&mut self, items: Vec<(festival_core::SignedEnvelope, u8)>) {
        let mut inputs = Vec::with_capacity(items.len());
        for (envelope, hops) in items {
            // Its position is pending in this instance's own commit: the
            // core would take it as held. Kept until that commit ends, and
            // taken then if it failed (or was another envelope for the
            // position). At most what one commit holds, bounded.
            if self.flight.is_some()
                && self.engine.node().pending_at(envelope.room(), &envelope.author(), envelope.seq())
            {
                if self.after_flight.keep((envelope, hops)) {
                    self.metrics.cluster_kept.fetch_add(1, Relaxed);
                } else {
                    // The store's tail, which cannot read past this
                    // instance's open transaction, asks for it after.
                    self.metrics.reject("cluster_kept_full");
                }
                continue;
            }
            let room = envelope.room().clone();
            let carried = room.is_everyones() || self.rooms.contains(&room);
            if !carried {
                if self.rooms.len() >= self.cfg.max_rooms {
                    continue;
                }
                self.join_room(room, Instant::now()).await;
            }
            inputs.push(Input::Committed { envelope, hops });
        }
        let fx = self.engine.handle_many(inputs).await;
        self.apply(fx);
    }

    /// Check envelopes against the storage quota. Returns the items to keep
    /// when some were dropped (`None`: keep the frame as it is), and notes
    /// (id, author, already held) of each kept one.
    async fn admit_items(
        &mut self,
        link: LinkId,
        items: Vec<Item>,
        incoming: &mut Vec<Incoming>,
        admitted: &mut HashMap<PeerId, u64>,
    ) -> Option<Vec<Item>> {
        let mut kept = Vec::with_capacity(items.len());
        let mut dropped = false;
        let ids: Vec<MessageId> = items.iter().map(|i| SignedEnvelope::id_of(&i.envelope)).collect();
        // Only an envelope whose position the core holds may be in the
        // store already: those are looked up (one read). The rest are new
        // to this instance; one a sibling stored meanwhile is a duplicate
        // at the commit, and acknowledged then.
        let node = self.engine.node();
        let maybe: Vec<MessageId> = items
            .iter()
            .zip(&ids)
            .filter(|(i, _)| {
                SignedEnvelope::claimed_position(&i.envelope).is_some_and(|(r, a, s)| node.holds(&r, &a, s))
            })
            .map(|(_, id)| *id)
            .collect();
        let held_now = self.lookup_held(&maybe).await;
        for (item, id) in items.into_iter().zip(ids) {
            // The author is bytes 1..33. Unverified here: the core verifies.
            let author = item.envelope.get(1..33).and_then(|b| PeerId::try_from(b).ok());
            let held = held_now.contains(&id);
            if let (false, Some(a)) = (held, author) {
                self.recount(a).await;
            }
            let count =
                |a: &PeerId| self.per_author.get(a).copied().unwrap_or(0) + admitted.get(a).copied().unwrap_or(0);
            if !held && author.is_some_and(|a| count(&a) >= self.cfg.max_messages_per_author) {
                dropped = true;
                self.metrics.reject("storage_quota");
                self.notice(link, "storage_quota");
                continue;
            }
            if let (false, Some(a)) = (held, author) {
                *admitted.entry(a).or_default() += 1;
            }
            let bytes = (!held).then(|| (item.envelope.clone(), item.hops));
            incoming.push((id, author, held, bytes));
            kept.push(item);
        }
        dropped.then_some(kept)
    }

    /// Which of `ids` the store holds, in one lookup; none when the store
    /// is not to be asked now (see [`Hub::store_answers`]) or fails.
    async fn lookup_held(&self, ids: &[MessageId]) -> HashSet<MessageId> {
        if ids.is_empty() || !self.store_answers() {
            return HashSet::new();
        }
        self.store.held(ids).await.unwrap_or_else(|e| {
            tracing::warn!(%e, "looking up what the store holds failed");
            HashSet::new()
        })
    }

    /// Whether to ask the store now: an instance of a cluster whose shared
    /// store is away (its tail says so) skips the lookups around a batch,
    /// each of which would hold this loop for the pool's timeout; nothing
    /// is acknowledged meanwhile, since nothing is committed.
    fn store_answers(&self) -> bool {
        self.cluster.is_none() || self.metrics.store_up.load(Relaxed)
    }

    /// In a cluster, read an author's count from the shared store if it
    /// was not read within [`AUTHOR_CHECK_EVERY`] and this instance's count
    /// is a quarter of the way to the quota (other instances store the
    /// author too; an author far below it, or a made-up one, costs no read).
    async fn recount(&mut self, author: PeerId) {
        if self.cluster.is_none() || !self.metrics.store_up.load(Relaxed) {
            return;
        }
        if self.per_author.get(&author).copied().unwrap_or(0) < self.cfg.max_messages_per_author / 4 {
            return;
        }
        let now = Instant::now();
        if self.author_checked.get(&author).is_some_and(|t| now.duration_since(*t) < AUTHOR_CHECK_EVERY) {
            return;
        }
        if self.author_checked.len() >= MAX_AUTHORS_CHECKED {
            self.author_checked.clear();
        }
        self.author_checked.insert(author, now);
        match self.store.author_usage(&author).await {
            Ok(usage) => {
                let count = self.per_author.entry(author).or_default();
                *count = (*count).max(usage.messages);
            }
            Err(e) => tracing::warn!(%e, "reading an author's count failed"),
        }
    }

    /// Join the rooms a node names, within the caps: `max_rooms` in all,
    /// `rooms_per_identity_per_hour` new ones per identity (what a person
    /// joins in an hour is a handful; a client naming hundreds gets its
    /// first few and a refusal for the rest) and `rooms_created_per_minute`
    /// new ones in all (fresh keys each have an allowance of their own).
    async fn join_rooms(&mut self, link: LinkId, rooms: Vec<RoomId>) {
        let Some(peer) = self.conns.get(&link).map(|c| c.peer) else { return };
        let now = Instant::now();
        let named: BTreeSet<RoomId> = rooms.iter().cloned().collect();
        // Once this hello has spent an allowance, the rest of its new
        // rooms get the same answer without asking again (in a cluster,
        // each asking is a transaction on the shared store).
        let mut spent = None;
        for room in rooms {
            if room.is_everyones() {
                continue;
            }
            if self.rooms.contains(&room) {
                self.room_used.insert(room, now);
                continue;
            }
            if self.rooms.len() >= self.cfg.max_rooms {
                self.refuse(link, "room_limit");
                continue;
            }
            let creation = match spent {
                Some(c) => c,
                None => self.may_create_room(peer, &room, now).await,
            };
            if !matches!(creation, Creation::Allowed) {
                spent = Some(creation);
            }
            match creation {
                Creation::Allowed => self.join_room(room, now).await,
                Creation::IdentitySpent => self.refuse(link, "room_creation_limit"),
                Creation::RelaySpent => {
                    self.refuse(link, "room_creation_limit");
                    if self.waiting.len() < MAX_ROOMS_WAITING && !self.waiting.iter().any(|(r, _)| *r == room) {
                        self.waiting.push_back((room, peer));
                    }
                }
            }
        }
        if let Some(c) = self.conns.get_mut(&link) {
            c.rooms = named;
        }
    }

    async fn join_room(&mut self, room: RoomId, now: Instant) {
        if let Err(e) = self.store.join_room(&room, room.as_str(), now_ms()).await {
            tracing::warn!(%e, %room, "joining a room failed");
            return;
        }
        self.rooms.insert(room.clone());
        self.room_used.insert(room.clone(), now);
        self.metrics.rooms.store(self.rooms.len() as u64 + everyones(&self.cfg), Relaxed);
        let fx = self.engine.handle(Input::JoinRoom(room)).await;
        self.apply(fx);
    }

    /// Join waiting rooms as the relay-wide budget allows, oldest first,
    /// each while the node that named it is connected and still names it;
    /// that identity pays from its hourly allowance then.
    async fn join_waiting_rooms(&mut self) {
        let now = Instant::now();
        while let Some((room, peer)) = self.waiting.front().cloned() {
            // Still named by the node that named it (one look, whatever
            // the number of connections).
            let named =
                self.by_peer.get(&peer).and_then(|l| self.conns.get(l)).is_some_and(|c| c.rooms.contains(&room));
            if !named || self.rooms.contains(&room) {
                self.waiting.pop_front();
                continue;
            }
            if self.rooms.len() >= self.cfg.max_rooms {
                return;
            }
            match self.may_create_room(peer, &room, now).await {
                Creation::Allowed => {
                    self.waiting.pop_front();
                    self.join_room(room, now).await;
                }
                Creation::IdentitySpent => {
                    self.waiting.pop_front();
                }
                Creation::RelaySpent => return,
            }
        }
    }

    /// Count one room creation against the relay's budget (a token bucket
    /// of `rooms_created_per_minute`, refilled at that rate) and `peer`'s
    /// hourly allowance. An instance of a cluster counts in the shared
    /// store, for all instances at once: an identity that moves between
    /// them, or fresh keys spread over them, get one allowance, not one
    /// per instance, and a room the cluster carries already (another
    /// instance joined it) costs none. What the store said was spent is
    /// remembered until it refills (`spent_until`, `budget_until`), so a
    /// stream of hellos costs it no transaction each; an identity whose
    /// hour is spent is then refused even a room the cluster carries, until
    /// its hour ends. While the store does not answer, nothing is created
    /// and it is not asked (the rooms wait, as for a spent budget).
    async fn may_create_room(&mut self, peer: PeerId, room: &RoomId, now: Instant) -> Creation {
        if let (AnyStore::Postgres(pg), Some(_)) = (&self.store, &self.cluster) {
            if !self.store_answers() || self.budget_until.is_some_and(|t| now < t) {
                return Creation::RelaySpent;
            }
            if self.spent_until.get(&peer).is_some_and(|t| now < *t) {
                return Creation::IdentitySpent;
            }
            let (per_hour, per_minute) = (self.cfg.rooms_per_identity_per_hour, self.cfg.rooms_created_per_minute);
            let ms = std::time::Duration::from_millis;
            return match pg.take_room_allowance(&peer, room, per_hour, per_minute, None).await {
                Ok(RoomAllowance::Known | RoomAllowance::Allowed) => Creation::Allowed,
                Ok(RoomAllowance::IdentitySpent { for_ms }) => {
                    if self.spent_until.len() >= MAX_ROOM_CREATORS {
                        self.spent_until.retain(|_, until| now < *until);
                    }
                    if self.spent_until.len() < MAX_ROOM_CREATORS {
                        self.spent_until.insert(peer, now + ms(for_ms));
                    }
                    Creation::IdentitySpent
                }
                Ok(RoomAllowance::RelaySpent { for_ms }) => {
                    self.budget_until = Some(now + ms(for_ms));
                    Creation::RelaySpent
                }
                Err(e) => {
                    tracing::warn!(%e, "the shared room allowances did not answer");
                    Creation::RelaySpent
                }
            };
        }
        const HOUR: std::time::Duration = std::time::Duration::from_secs(3600);
        let per_minute = f64::from(self.cfg.rooms_created_per_minute);
        let (tokens, at) = self.created;
        let tokens = (tokens + now.duration_since(at).as_secs_f64() * per_minute / 60.0).min(per_minute);
        self.created = (tokens, now);
        if tokens < 1.0 {
            return Creation::RelaySpent;
        }
        if self.creators.len() >= MAX_ROOM_CREATORS {
            self.creators.retain(|_, (start, _)| now.duration_since(*start) < HOUR);
        }
        let (start, n) = self.creators.entry(peer).or_insert((now, 0));
        if now.duration_since(*start) >= HOUR {
            *start = now;
            *n = 0;
        }
        if *n >= self.cfg.rooms_per_identity_per_hour {
            return Creation::IdentitySpent;
        }
        *n += 1;
        self.created.0 -= 1.0;
        Creation::Allowed
    }

    /// Leave rooms that no connected node names and nobody used for
    /// `room_idle_hours`: what one client made us join does not stay for
    /// good. Their messages become others' mail in a room we left, the
    /// first to go when the store is over its budget.
    async fn leave_idle_rooms(&mut self) {
        if let (AnyStore::Postgres(pg), Some(_), true) = (&self.store, &self.cluster, self.store_answers()) {
            // Allowances whose hour is over: any instance's sweep does.
            if let Err(e) = pg.prune_room_allowances(None).await {
                tracing::warn!(%e, "pruning the shared room allowances failed");
            }
        }
        let idle = std::time::Duration::from_secs(self.cfg.room_idle_hours.saturating_mul(3600));
        let named: HashSet<&RoomId> = self.conns.values().flat_map(|c| c.rooms.iter()).collect();
        let now = Instant::now();
        let gone: Vec<RoomId> = self
            .rooms
            .iter()
            .filter(|r| !named.contains(r) && self.room_used.get(*r).is_none_or(|t| now.duration_since(*t) >= idle))
            .cloned()
            .collect();
        for room in gone {
            // In a cluster the rooms are every instance's: this one stops
            // carrying it, and leaves the row to the others.
            if self.cluster.is_none() {
                if let Err(e) = self.store.leave_room(&room).await {
                    tracing::warn!(%e, %room, "leaving an idle room failed");
                    continue;
                }
            }
            tracing::info!(%room, "left an idle room");
            self.rooms.remove(&room);
            self.room_used.remove(&room);
            let fx = self.engine.handle(Input::LeaveRoom(room)).await;
            self.apply(fx);
        }
        self.metrics.rooms.store(self.rooms.len() as u64 + everyones(&self.cfg), Relaxed);
    }

    fn on_signal(&mut self, link: LinkId, to: PeerId, msg: Vec<u8>) {
        let Some(from) = self.conns.get(&link).map(|c| c.peer) else { return };
        let decoded = (msg.len() <= MAX_SIGNAL_BYTES).then(|| postcard::from_bytes::<SignalMsg>(&msg).ok()).flatten();
        let signer = match &decoded {
            None => return self.refuse(link, "signal_malformed"),
            Some(SignalMsg::Offer { offer, .. }) => Some(offer.from),
            Some(SignalMsg::Answer { answer, .. }) => Some(answer.from),
            Some(SignalMsg::Reject { .. }) => None,
        };
        // The addressee checks the signature; the relay only refuses what is
        // plainly not from the node it authenticated.
        if signer.is_some_and(|s| s != from) {
            return self.refuse(link, "signal_spoofed");
        }
        match self.by_peer.get(&to).copied() {
            Some(dest) if dest != link => {
                self.metrics.signals_forwarded.fetch_add(1, Relaxed);
                self.send(dest, RelayMsg::Signal { peer: from, msg }.encode().into());
            }
            Some(_) => self.send(link, RelayMsg::Unreachable { peer: to }.encode().into()),
            // Perhaps at another instance of the cluster, which answers
            // `Unreachable` itself when nobody has the peer.
            None => {
                if !self.cluster.as_ref().is_some_and(|c| c.signal(link, from, to, msg)) {
                    self.send(link, RelayMsg::Unreachable { peer: to }.encode().into());
                }
            }
        }
    }

    fn refuse(&mut self, link: LinkId, code: &'static str) {
        self.metrics.reject(code);
        self.notice(link, code);
    }

    /// Tell a node what was refused, a few times a second at most.
    fn notice(&mut self, link: LinkId, code: &'static str) {
        let Some(c) = self.conns.get_mut(&link) else { return };
        let now = Instant::now();
        if now.duration_since(c.notice_window) >= std::time::Duration::from_secs(1) {
            c.notice_window = now;
            c.notices = 0;
        }
        if c.notices < NOTICES_PER_SEC {
            c.notices += 1;
            self.send(link, RelayMsg::Refused { code: code.to_owned() }.encode().into());
        }
    }

    /// Queue an encoded message for a node. A node whose queue is full is
    /// not reading: it is closed (it syncs again when it reconnects) rather
    /// than let the relay buffer without bound or stall everyone else.
    fn send(&mut self, link: LinkId, msg: Bytes) {
        let Some(c) = self.conns.get(&link) else { return };
        if let Err(mpsc::error::TrySendError::Full(_)) = c.out.try_send(msg) {
            // Counted as `too_slow` by the connection task when it closes.
            self.drop_conn(link, Some(close::TOO_SLOW));
        }
    }

    fn apply(&mut self, effects: Vec<Effect>) {
        // A push to many links comes as one `Send` per link with equal bytes:
        // encode it once and share the buffer.
        let mut last: Option<(Vec<u8>, Bytes)> = None;
        for e in effects {
            match e {
                Effect::Send { link, bytes } => {
                    self.metrics.frames_out.fetch_add(1, Relaxed);
                    let msg = match &last {
                        Some((raw, msg)) if *raw == bytes => msg.clone(),
                        _ => {
                            let msg = Bytes::from(RelayMsg::encode_frame(&bytes));
                            last = Some((bytes, msg.clone()));
                            msg
                        }
                    };
                    self.send(link, msg);
                }
                Effect::Refused { link, report, .. } => {
                    for (code, n) in &report.counts {
                        self.metrics.reject_n(code, *n);
                    }
                    self.notice(link, report.first.code());
                }
                // Counted under `misbehaving` when the socket closes.
                Effect::Misbehaving { link, .. } => self.drop_conn(link, Some(close::MISBEHAVING)),
                Effect::Equivocator { .. } => {
                    self.metrics.equivocators.fetch_add(1, Relaxed);
                }
                Effect::WakeAt(t) => self.wake = Some(t),
                Effect::StoreFailed { .. } => self.metrics.reject("store_failed"),
                Effect::Delivered { room, .. } => {
                    self.room_used.insert(room, Instant::now());
                }
                Effect::Sent { .. } | Effect::Limits(_) | Effect::Receipt { .. } | Effect::Stored { .. } => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Copies kept aside while a commit is pending stop at the cap, and
    /// taking them empties it for the next commit.
    #[test]
    fn what_is_kept_aside_is_bounded() {
        let author = Identity::generate(&mut rand_core::OsRng);
        let draft = festival_core::Draft {
            seq: 1,
            room: festival_core::RoomId::festival(),
            kind: festival_core::Kind::Text,
            created_at: 1_750_000_000_000,
            body: festival_core::body::Body::Text("kept".into()).encode(),
        };
        let env = SignedEnvelope::sign(&author, draft).unwrap();
        let mut kept = KeptAside::default();
        for _ in 0..MAX_AFTER_FLIGHT {
            assert!(kept.keep((env.clone(), 1)));
        }
        assert!(!kept.keep((env.clone(), 1)), "one past the cap is refused");
        assert_eq!(kept.take().len(), MAX_AFTER_FLIGHT);
        assert!(kept.keep((env, 1)), "room again after the commit ended");
    }

    #[test]
    fn the_commit_budget_spends_a_tenth_of_a_second_at_once_then_refills_at_its_rate() {
        let t0 = Instant::now();
        let mut b = CommitBudget::new(100, t0);
        for _ in 0..10 {
            assert_eq!(b.take(t0), None);
        }
        let wait = b.take(t0).expect("spent");
        assert!((wait.as_secs_f64() - 0.010).abs() < 1e-9, "{wait:?}");
        // Half-way: still waiting, for the other half.
        let wait = b.take(t0 + Duration::from_millis(5)).expect("not yet");
        assert!((wait.as_secs_f64() - 0.005).abs() < 1e-9, "{wait:?}");
        assert_eq!(b.take(t0 + Duration::from_millis(10)), None);
        // A refund gives back what was taken; never past the cap.
        b.refund();
        assert_eq!(b.take(t0 + Duration::from_millis(10)), None);
        assert_eq!(b.take(t0 + Duration::from_secs(60)), None);
        assert_eq!(b.tokens, 9.0, "refilled to its cap of 10, one taken");
        // A budget below ten a second still spends one at once.
        let mut slow = CommitBudget::new(2, t0);
        assert_eq!(slow.take(t0), None);
        assert_eq!(slow.take(t0), Some(Duration::from_millis(500)));
    }
}
