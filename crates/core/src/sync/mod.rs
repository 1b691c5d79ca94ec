//! The sync and routing state machine: `Node::handle(input, now) -> outputs`.
//!
//! One `Node` is one device. The runtime (or the simulator) feeds it link
//! events, frames, store confirmations and ticks, and carries out what it
//! returns: frames to send, envelopes to persist, ranges to load, deliveries
//! to show, and when to wake it next.
//!
//! How messages spread (docs/protocol.md has the wire view):
//! - Live: a new message is pushed at once along a per-room broadcast tree
//!   (the "eager" links) and announced by id to the other ("lazy") links, in
//!   the manner of Plumtree. A duplicate push prunes that link to lazy; an
//!   announcement of a message that does not arrive in time grafts the link
//!   back. So after a few messages each node gets about one copy of each.
//! - Anti-entropy: on link-up and every sync interval the two sides compare
//!   per-room summaries (per author: highest contiguous seq, highest seq). The
//!   side that lacks messages asks for them in bounded ranges, oldest first,
//!   one request per (room, author) at a time, so two neighbours never send
//!   the same catch-up twice. This gives store-and-forward over any number of
//!   hops and repairs whatever loss and partitions did to the live path.
//! - Nothing is forwarded, delivered or acknowledged before the store has
//!   confirmed it (`Output::Persist` then `Input::Persisted`).

mod engine;
mod reject;
mod state;
mod tick;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use crate::body::{self, Body, BodyError, ProfileBody, ReceiptStatus};
use crate::envelope::{Draft, EnvelopeError, SignedEnvelope};
use crate::identity::Identity;
use crate::ids::{LinkId, MessageId, PeerId, RoomId};
use crate::policy::{limits, Limits, PowerState};

pub use reject::{PeerCounters, Reject, Stats};
use state::{BoundedMap, LinkState, RoomState};

/// Protocol version spoken in hellos.
pub const PROTOCOL_VERSION: u8 = 1;

/// Milliseconds since the Unix epoch (the simulator's virtual clock counts the same way).
pub type Millis = u64;

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum LinkKind {
    /// A WebRTC data channel on the local network.
    Lan,
    /// The WebSocket to a relay server.
    Relay,
}

#[derive(Clone, Debug)]
pub struct Config {
    /// Seed of the node's RNG (nonces, jitter, tie-breaks).
    pub rng_seed: [u8; 32],
    /// Rooms carried besides the festival room and the DM mailbox.
    pub rooms: Vec<RoomId>,
    /// Wait this long for an announced message to arrive before asking for it.
    pub graft_timeout_ms: u64,
    /// Give a range request this long before asking someone else.
    pub want_timeout_ms: u64,
    /// Resend an unanswered hello this often (lossy links).
    pub hello_retry_ms: u64,
    /// Collect receipts this long, then send them as one envelope.
    pub receipt_delay_ms: u64,
    /// Rooms with more authors than this get no receipts for room messages:
    /// in the festival room, thousands of receipts per message would drown it.
    pub room_receipts_max_members: usize,
    /// Messages dated further ahead than this are refused (clock skew allowance).
    pub max_clock_skew_ms: u64,
    /// Refuse seqs this far beyond what we hold contiguously (memory bound).
    pub max_seq_ahead: u64,
    /// Frames per second per link, and the burst allowed.
    pub frame_rate: (u32, u32),
    /// Envelopes per second per link, and the burst allowed.
    pub envelope_rate: (u32, u32),
    /// Byte budget of one sync batch.
    pub batch_bytes: usize,
    /// Seqs asked for in one want.
    pub want_chunk: u64,
    /// Positions whose ids are remembered to detect equivocation.
    pub recent_ids: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            rng_seed: [0; 32],
            rooms: Vec::new(),
            graft_timeout_ms: 250,
            want_timeout_ms: 3_000,
            hello_retry_ms: 1_000,
            receipt_delay_ms: 300,
            room_receipts_max_members: 32,
            max_clock_skew_ms: 10 * 60_000,
            max_seq_ahead: 4096,
            frame_rate: (2_000, 8_000),
            envelope_rate: (10_000, 40_000),
            batch_bytes: 192 * 1024,
            want_chunk: 256,
            recent_ids: 65_536,
        }
    }
}

/// What the store held when the node started.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// (room, author, contiguous, max) per author and room.
    pub heads: Vec<(RoomId, PeerId, u64, u64)>,
    /// Stored messages above a gap: (room, author, seq, id).
    pub held_above: Vec<(RoomId, PeerId, u64, MessageId)>,
    /// Own messages not yet handed to any link.
    pub unsent: Vec<MessageId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PersistError {
    /// A different message already holds this (room, author, seq).
    Conflict,
    /// The store failed (disk full, I/O): the message may come again later.
    Failed(String),
}

#[derive(Clone, Debug)]
pub enum Input {
    LinkUp {
        link: LinkId,
        peer: PeerId,
        kind: LinkKind,
    },
    LinkDown {
        link: LinkId,
    },
    Frame {
        link: LinkId,
        bytes: Vec<u8>,
    },
    /// The store's answer to `Output::Persist`.
    Persisted {
        id: MessageId,
        result: Result<(), PersistError>,
    },
    /// The store's answer to `Output::Load`.
    Loaded {
        link: LinkId,
        items: Vec<(SignedEnvelope, u8)>,
    },
    Tick,
    Power(PowerState),
    /// The app is in the foreground (false: background, on a phone).
    Foreground(bool),
    JoinRoom(RoomId),
    LeaveRoom(RoomId),
    /// The user has seen these messages of `room` (read receipts).
    MarkRead {
        room: RoomId,
        ids: Vec<MessageId>,
    },
}

#[derive(Clone, Debug)]
pub enum Output {
    /// Send an encoded frame on a link.
    Send { link: LinkId, bytes: Vec<u8> },
    /// Commit this envelope, then answer with `Input::Persisted`.
    Persist { envelope: SignedEnvelope, hops: u8, local: bool },
    /// Read `from..=to` of an author's chain (at most `max_bytes`), then
    /// answer with `Input::Loaded`.
    Load { link: LinkId, room: RoomId, author: PeerId, from: u64, to: u64, max_bytes: usize },
    /// A message is ready for the user, in per-author order.
    Deliver { id: MessageId, room: RoomId, author: PeerId, seq: u64 },
    /// An own message left on a link for the first time.
    Sent { id: MessageId, link: LinkId, kind: LinkKind },
    /// A peer sent something we refused.
    Rejected { link: LinkId, peer: PeerId, reason: Reject },
    /// The power policy changed what the node may do.
    Limits(Limits),
    /// Call `handle(Input::Tick, t)` at `t` (the latest one replaces earlier ones).
    WakeAt(Millis),
}

/// What a user can send.
#[derive(Clone, Debug)]
pub enum Content {
    Text(String),
    /// Sealed so only `to` can read it; travels in the DM mailbox room.
    Direct {
        to: PeerId,
        text: String,
    },
    /// Our display name, announced in the festival room.
    Profile(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("you are not in room {0}")]
    NotInRoom(RoomId),
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
}

struct Pending {
    envelope: SignedEnvelope,
    hops: u8,
    from: Option<LinkId>,
    /// Arrived by live push (forwarded by push) rather than by sync.
    live: bool,
}

struct WantInFlight {
    link: LinkId,
    deadline: Millis,
}

struct Missing {
    id: MessageId,
    announcers: Vec<LinkId>,
    deadline: Millis,
    tried: usize,
}

/// How useful a link is, for choosing which links to keep under a peer limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkValue {
    pub powered: bool,
    pub shared_rooms: usize,
}

pub struct Node {
    cfg: Config,
    me: Identity,
    my_id: PeerId,
    rng: ChaCha20Rng,
    power: PowerState,
    limits: Limits,
    foreground: bool,
    rooms: BTreeMap<RoomId, RoomState>,
    links: BTreeMap<LinkId, LinkState>,
    pending: HashMap<MessageId, Pending>,
    wants: HashMap<(RoomId, PeerId), WantInFlight>,
    missing: BTreeMap<(RoomId, PeerId, u64), Missing>,
    recent: BoundedMap<(RoomId, PeerId, u64), MessageId>,
    unsent: HashSet<MessageId>,
    receipts: BTreeMap<(RoomId, ReceiptStatus), Vec<MessageId>>,
    receipts_due: Option<Millis>,
    /// Rooms whose holdings changed through sync: tell the neighbours.
    announce: BTreeSet<RoomId>,
    announce_due: Option<Millis>,
    next_sync: Millis,
    last_created_at: Millis,
    stats: Stats,
}

impl Node {
    pub fn new(me: Identity, cfg: Config, snapshot: Snapshot, power: PowerState, now: Millis) -> Self {
        let mut rooms = BTreeMap::new();
        for r in [RoomId::festival(), RoomId::direct()].into_iter().chain(cfg.rooms.iter().cloned()) {
            rooms.insert(r, RoomState::default());
        }
        for (room, author, contiguous, _max) in snapshot.heads {
            rooms.entry(room).or_default().author(author).contiguous = contiguous;
        }
        for (room, author, seq, id) in snapshot.held_above {
            rooms.entry(room).or_default().author(author).above.insert(seq, id);
        }
        let limits = limits(power);
        let rng = ChaCha20Rng::from_seed(cfg.rng_seed);
        Node {
            my_id: me.peer_id(),
            me,
            rng,
            power,
            limits,
            foreground: true,
            rooms,
            links: BTreeMap::new(),
            pending: HashMap::new(),
            wants: HashMap::new(),
            missing: BTreeMap::new(),
            recent: BoundedMap::new(cfg.recent_ids),
            unsent: snapshot.unsent.into_iter().collect(),
            receipts: BTreeMap::new(),
            receipts_due: None,
            announce: BTreeSet::new(),
            announce_due: None,
            next_sync: now + limits.sync_interval_ms,
            last_created_at: 0,
            stats: Stats::default(),
            cfg,
        }
    }

    pub fn peer_id(&self) -> PeerId {
        self.my_id
    }
    pub fn identity(&self) -> &Identity {
        &self.me
    }
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    pub fn limits(&self) -> Limits {
        self.limits
    }
    pub fn rooms(&self) -> impl Iterator<Item = &RoomId> {
        self.rooms.keys()
    }
    /// Links whose peer has said hello, with the peer's id.
    pub fn live_links(&self) -> impl Iterator<Item = (LinkId, PeerId)> + '_ {
        self.links.iter().filter(|(_, l)| l.hello_received).map(|(id, l)| (*id, l.peer))
    }
    /// What makes a link worth keeping, from the peer's hello: whether it
    /// runs on mains power, and how many of our rooms besides the festival
    /// room and DMs (which everyone shares) it also follows. `None` before
    /// its hello.
    pub fn link_value(&self, link: LinkId) -> Option<LinkValue> {
        let l = self.links.get(&link).filter(|l| l.hello_received)?;
        let common = [RoomId::festival(), RoomId::direct()];
        let shared_rooms = l.peer_rooms.iter().filter(|r| !common.contains(r) && self.rooms.contains_key(*r)).count();
        Some(LinkValue { powered: l.peer_powered, shared_rooms })
    }
    /// (contiguous, max) held of `author` in `room`.
    pub fn head(&self, room: &RoomId, author: &PeerId) -> (u64, u64) {
        self.rooms.get(room).and_then(|r| r.authors.get(author)).map_or((0, 0), |a| (a.contiguous, a.max()))
    }

    /// Feed one input; carry out the returned outputs in order.
    pub fn handle(&mut self, input: Input, now: Millis) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::LinkUp { link, peer, kind } => self.on_link_up(link, peer, kind, now, &mut out),
            Input::LinkDown { link } => self.on_link_down(link, now),
            Input::Frame { link, bytes } => self.on_frame(link, &bytes, now, &mut out),
            Input::Persisted { id, result } => self.on_persisted(id, result, now, &mut out),
            Input::Loaded { link, items } => self.on_loaded(link, items, &mut out),
            Input::Tick => self.on_tick(now, &mut out),
            Input::Power(p) => {
                self.power = p;
                let l = limits(p);
                if l != self.limits {
                    let relays_changed = l.relay_for_others != self.limits.relay_for_others;
                    self.limits = l;
                    self.next_sync = self.next_sync.min(now + l.sync_interval_ms);
                    out.push(Output::Limits(l));
                    if relays_changed {
                        self.hello_all(now, &mut out);
                    }
                }
            }
            Input::Foreground(f) => self.foreground = f,
            Input::JoinRoom(room) => {
                if let std::collections::btree_map::Entry::Vacant(e) = self.rooms.entry(room) {
                    e.insert(RoomState::default());
                    self.hello_all(now, &mut out);
                }
            }
            Input::LeaveRoom(room) => {
                if room != RoomId::festival() && !room.is_direct() && self.rooms.remove(&room).is_some() {
                    self.hello_all(now, &mut out);
                }
            }
            Input::MarkRead { room, ids } => {
                let small = self.rooms.get(&room).is_some_and(|r| r.members() <= self.cfg.room_receipts_max_members);
                if room.is_direct() || small {
                    self.queue_receipts(room, ReceiptStatus::Read, ids, now);
                }
            }
        }
        self.push_wake(&mut out);
        out
    }

    /// Author, sign and hand a message to the store. Returns its id; the
    /// outputs carry `Persist` and, once confirmed, the rest follows.
    pub fn send(&mut self, room: RoomId, content: Content, now: Millis) -> Result<(MessageId, Vec<Output>), SendError> {
        let (room, body) = match content {
            Content::Text(text) => {
                body::check_text(&text)?;
                (room, Body::Text(text))
            }
            Content::Direct { to, text } => {
                let sealed = body::seal_dm(&self.me, &to, &text, &mut self.rng)?;
                (RoomId::direct(), Body::SealedDm(sealed))
            }
            Content::Profile(name) => {
                body::check_name(&name)?;
                (RoomId::festival(), Body::Profile(ProfileBody { name }))
            }
        };
        let env = self.author(room, body, now)?;
        let id = env.id();
        let mut out = vec![Output::Persist { envelope: env, hops: 0, local: true }];
        self.push_wake(&mut out);
        Ok((id, out))
    }

    fn author(&mut self, room: RoomId, body: Body, now: Millis) -> Result<SignedEnvelope, SendError> {
        let me = self.my_id;
        let state = self.rooms.get_mut(&room).ok_or_else(|| SendError::NotInRoom(room.clone()))?;
        let seq = state.author(me).max_known() + 1;
        // Own timestamps never go backwards, so per-author order and time agree.
        let created_at = now.max(self.last_created_at);
        self.last_created_at = created_at;
        let env = SignedEnvelope::sign(
            &self.me,
            Draft { seq, room: room.clone(), kind: body.kind(), created_at, body: body.encode() },
        )?;
        state.author(me).pending.insert(seq);
        self.pending.insert(env.id(), Pending { envelope: env.clone(), hops: 0, from: None, live: true });
        Ok(env)
    }

    fn queue_receipts(&mut self, room: RoomId, status: ReceiptStatus, ids: Vec<MessageId>, now: Millis) {
        if ids.is_empty() || !self.rooms.contains_key(&room) {
            return;
        }
        self.receipts.entry((room, status)).or_default().extend(ids);
        self.receipts_due.get_or_insert(now + self.cfg.receipt_delay_ms);
    }

    fn push_wake(&self, out: &mut Vec<Output>) {
        if let Some(t) = self.next_deadline() {
            out.push(Output::WakeAt(t));
        }
    }

    fn next_deadline(&self) -> Option<Millis> {
        let mut t = self.next_sync;
        for l in self.links.values().filter(|l| !l.hello_acked) {
            t = t.min(l.hello_sent_at + self.cfg.hello_retry_ms);
        }
        for w in self.wants.values() {
            t = t.min(w.deadline);
        }
        if let Some(m) = self.missing.values().map(|m| m.deadline).min() {
            t = t.min(m);
        }
        for d in [self.receipts_due, self.announce_due].into_iter().flatten() {
            t = t.min(d);
        }
        Some(t)
    }
}
