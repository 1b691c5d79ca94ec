//! The sync and routing state machine: `Node::handle(input, now) -> outputs`.
//!
//! One `Node` is one device. The runtime (or the simulator) feeds it link
//! events, frames, store confirmations and ticks, and carries out what it
//! returns: frames to send, envelopes to persist, ranges to load, deliveries
//! to show, and when to wake it next.
//!
//! How messages spread (docs/protocol.md has the wire view):
//! - Live, while the crowd is not busy ([`Config::live_pull`]): an author
//!   pushes its new message to every link of the room; everyone else, once
//!   it holds a message, announces it by id (`IHave`) to its other direct
//!   links, and a node that lacks it asks (`Graft`) the first announcer at
//!   once, the next one after [`Config::graft_timeout_ms`]. The first
//!   announcement comes over the quickest path, so each message travels
//!   about the shortest path from its author and each node fetches one copy
//!   (bitcoin's inv/getdata, gossipsub's IHAVE/IWANT). Measured against the
//!   tree below (`festival-bench sim --lan --hear 60 --nodes 10000`): hops
//!   p99 9 instead of 23, copies per delivery 1.04 instead of 1.28, for
//!   two more one-way delays per hop (docs/benchmarks.md "Live fetch").
//! - Live in a busy crowd (and on relay links, and towards peers older
//!   than [`LIVE_FETCH_VERSION`]): a new message is pushed at once along a per-room broadcast tree
//!   (the "eager" links) and announced by id to the other ("lazy") links, in
//!   the manner of Plumtree. A duplicate push prunes that link to lazy; an
//!   announcement of a message that does not arrive in time grafts the link
//!   back. So after a few messages each node gets about one copy of each.
//!   Between protocol-3 nodes on direct links the eager links are instead
//!   a breadth-first tree from a root the room's nodes agree on (`tree`):
//!   Plumtree's own tree drifts, with many authors, into one with long paths.
//!   A busy node announces to few links (`crowd`), so pushes along the tree
//!   are what reaches everyone then.
//! - Anti-entropy: on link-up and every sync interval the two sides compare
//!   per-room summaries (per author: highest contiguous seq, highest seq). The
//!   side that lacks messages asks for them in bounded ranges, oldest first,
//!   one request per (room, author) at a time, so two neighbours never send
//!   the same catch-up twice. This gives store-and-forward over any number of
//!   hops and repairs whatever loss and partitions did to the live path.
//! - Nothing is forwarded, delivered or acknowledged before the store has
//!   confirmed it (`Output::Persist` then `Input::Persisted`).
//! - Messages live for the festival's message lifetime: older ones are not
//!   taken, not served, and a run nobody can serve any more (expired or
//!   evicted everywhere, answered with `Gone`) is given up on, so what is
//!   held above it is still shown.
//! - Time comes with every input on two clocks ([`Now`]): timers on a
//!   monotonic one, dates (`created_at`, clock skew, lifetime) on the wall
//!   clock, so a clock set back or forward neither stalls nor rushes the
//!   node (tests/it/clock.rs).
//! - Everything a peer can make us remember is capped ([`caps`]); refusals
//!   are reported once a second per link, and a link that keeps sending what
//!   no honest peer sends is reported for dropping.
//!
//! # Layout
//! - this file: config, inputs and outputs, the `Node` and its entry points.
//! - `state`: per room, author and link; fingerprints; token buckets.
//! - `caps`: the bounds on per-peer state, each with its reason.
//! - `link`: hellos, summaries, digests, frame dispatch.
//! - `pull`: asking for what we lack (wants, gone runs, demotion).
//! - `serve`: answering wants and grafts within a per-link budget.
//! - `ingest`: checking, persisting, delivering and forwarding envelopes;
//!   receipts; equivocation.
//! - `refusals`: reasons, counters, the per-link report window.
//! - `tick`: timers.
//! - `tree`: the room trees of protocol 3 (root, parent, adverts).
//! - `drain`: the loop every host (engine, simulator, tests) carries out
//!   outputs with: persists committed together, the rest in order.

pub mod caps;
mod crowd;
pub mod drain;
mod ingest;
mod link;
mod pull;
pub mod recon;
mod refusals;
mod serve;
mod state;
mod tick;
mod tree;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use crate::body::{
    self, AnnouncementBody, Body, BodyError, MeetupAnswer, MeetupBody, MeetupReplyBody, ProfileBody, ReceiptStatus,
};
use crate::envelope::{Draft, EnvelopeError, SignedEnvelope};
use crate::identity::Identity;
use crate::ids::{LinkId, MessageId, PeerId, RoomId};
use crate::policy::{limits, Limits, PowerState};

pub use drain::{drain, drain_deferring, drain_now, Host, ToPersist};
pub use refusals::{PeerCounters, RefusalReport, Reject, Stats};
pub use state::digest_of;
use state::{BoundedMap, LinkState, RoomState, TokenBucket};

/// Protocol version spoken in hellos. 2: heads carry the tip id, digests
/// are fingerprints over heads, `Gone` and `Proof` frames, sealed DMs name
/// their sender and recipient, DM receipts are sealed. 3: `Tree` adverts
/// (a shallow broadcast tree per room, see `tree`). 4: `Recon` frames
/// (range-based reconciliation of heads, see `recon`) instead of full
/// summaries and digests. 5: the announcements room. 6: meet-ups and
/// their answers (`Kind::Meetup`, `Kind::MeetupReply`). 7: private groups'
/// messages (`Kind::GroupMessage`). 8: photos (`Kind::Photo`,
/// `Kind::PhotoChunk`). 9: live fetch (no new frames: a quiet node
/// announces others' messages to peers of this version instead of pushing
/// them, and asks the first announcer at once; see `LIVE_FETCH_VERSION`).
pub const PROTOCOL_VERSION: u8 = 9;
/// The first version that carries the announcements room: an older peer
/// would refuse its envelopes' kind, so it gets none of it.
pub const ANNOUNCEMENTS_VERSION: u8 = 5;
/// The first version that takes meet-ups and their answers. They travel
/// in rooms an older peer carries too, among an author's other messages,
/// so the older peer is not kept out of the room: it is not told of them,
/// and when it asks for one it hears the message is gone (`Gone`) and goes
/// past it, as past an expired message.
pub const MEETUPS_VERSION: u8 = 6;
/// The first version that takes private groups' messages (in the DM
/// mailbox), kept from older peers as meet-ups are.
pub const GROUPS_VERSION: u8 = 7;
/// The first version that takes photos (their headers and chunks), kept
/// from older peers as meet-ups are.
pub const PHOTOS_VERSION: u8 = 8;
/// The first version that fetches live (see the module docs): announced
/// to instead of pushed while the crowd is quiet, and asking the first
/// announcer at once. An older peer keeps the pushes it waits for.
pub const LIVE_FETCH_VERSION: u8 = 9;
/// The oldest version still spoken: a peer that says hello with it gets
/// our hellos in its version, and no frames it does not know.
pub const MIN_PROTOCOL_VERSION: u8 = 2;
pub use tick::SYNC_SLICE_LINKS;
pub use tree::{TreeView, TREE_BEACON_MS, TREE_STALE_MS};

/// A week: a long festival weekend with its build-up and departures. A
/// festival sets its own (`Config::message_lifetime_ms`).
pub const DEFAULT_MESSAGE_LIFETIME_MS: u64 = 7 * 24 * 3_600_000;

/// Milliseconds. On [`Now::mono`] (every timer) a monotonic count; on
/// [`Now::wall`] (dates) since the Unix epoch. The simulator's virtual
/// clock is both.
pub type Millis = u64;

/// The time of an input, on two clocks. Every timer of the core (syncs,
/// retries, wants, receipts, rate buckets) runs on `mono`, which never
/// jumps; the wall clock is read only for dates: a message's `created_at`,
/// the check that an incoming one is not from the future (clock skew), and
/// the festival's message lifetime. So setting a phone's clock back an hour
/// does not stall the mesh for an hour, and setting it forward does not fire
/// every timer at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub mono: Millis,
    pub wall: Millis,
}

impl From<Millis> for Now {
    /// One clock for both (the simulator, tests): `mono` and `wall` equal.
    fn from(t: Millis) -> Now {
        Now { mono: t, wall: t }
    }
}

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
    /// Wait this long for an announced message to arrive before asking for
    /// it; fetching live ([`Config::live_pull`]), for an asked one before
    /// asking the next announcer.
    pub graft_timeout_ms: u64,
    /// While the crowd is not busy, others' room messages are announced to
    /// every direct link and fetched from the first announcer rather than
    /// pushed along the room's tree (see the module docs). Off: the tree
    /// pushes whatever the crowd, as a busy node does.
    pub live_pull: bool,
    /// Give a range request this long before asking someone else.
    pub want_timeout_ms: u64,
    /// A message created less than this long ago that arrives by sync (the
    /// repair of a push lost on the way) goes on by push, as if it came
    /// live: else every hop after one lost frame waits for a summary and a
    /// request. Older ones (catch-up) are only announced in summaries.
    /// Covers the longest sync interval, after which a loss is noticed.
    pub live_window_ms: u64,
    /// Resend an unanswered hello this often (lossy links).
    pub hello_retry_ms: u64,
    /// Collect receipts this long, then send them as one envelope.
    pub receipt_delay_ms: u64,
    /// A room's open receipts (not sealed to one author) wait a time drawn
    /// from this range instead, and are dropped if meanwhile the room
    /// stopped being small (see [`Config::room_receipts_max_hops`]): in a
    /// crowd, every device near an author answered the room's first
    /// message at once, each answer flooding the crowd (about 130 of them
    /// at 10,000 devices); waiting, most hear another's answer from
    /// further off first and send none.
    pub room_receipt_delay_ms: (u64, u64),
    /// Send delivery receipts for sealed DMs addressed to this node. A
    /// relay does not: nobody reads its DMs, and the instances of a relay
    /// cluster share one key but not their seq counters, so two of them
    /// writing would sign two messages for one position.
    pub dm_receipts: bool,
    /// Rooms with more authors than this get no receipts for room messages:
    /// in the festival room, thousands of receipts per message would drown it.
    pub room_receipts_max_members: usize,
    /// Nor does a room where a message came from further than this many
    /// hops (a crowd, not a group of friends), nor a message that did.
    /// Counting authors alone, every device in a crowd of thousands saw one
    /// author when the festival room's first message came, and answered it
    /// with a receipt that then went to every device: a receipt storm.
    pub room_receipts_max_hops: u8,
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
    /// Allocate room for all `recent_ids` at the start instead of growing
    /// into it: for a relay, which fills it within minutes and whose every
    /// delivery would wait while it grows (each doubling hashes every
    /// remembered position again), at ~9 MB more than the grown map (see
    /// `BoundedMap::allocated`); a phone's stays small while it holds few.
    pub recent_ids_allocated: bool,
    /// Messages created longer ago than this are expired: not taken, not
    /// served, deleted by the runtime (the festival's setting).
    pub message_lifetime_ms: u64,
    /// A hello to a link names only the rooms it shares with that link
    /// (besides the festival room and DMs): what a relay does, whose rooms
    /// are the sum of everyone's and would not fit in one hello.
    pub hello_shared_only: bool,
    /// Live messages taken per second at which the crowd around us is
    /// busy (`crowd`): announcements then go to fewer links, batched.
    pub busy_messages_per_sec: u64,
    /// Busy: lazy links each message is announced to.
    pub busy_lazy_fanout: usize,
    /// Busy: announcements wait this long to go as one frame per link.
    pub busy_announce_ms: u64,
    /// Busy: hops a message is pushed; beyond them it is announced. The
    /// default keeps the hop limit ([`crate::frame::MAX_HOPS`]): measured
    /// in a busy crowd, a lower one saves no bytes (what it does not push
    /// is grafted) and adds latency (festival-sim's `crowd` test).
    pub busy_max_hops: u8,
    /// Pushes per second of one author's messages, and the burst; beyond
    /// it they are only announced (own messages are always pushed).
    pub author_push_rate: (u32, u32),
    /// The festival's organiser key: the only author whose announcements
    /// (`Kind::Announcement`) are taken, carried and shown. None: no
    /// announcement is taken.
    pub organiser: Option<PeerId>,
    /// The organiser's announcements taken per hour, and the burst: a key
    /// that leaked cannot flood the festival.
    pub announcements_per_hour: (u32, u32),
}

impl Default for Config {
    fn default() -> Self {
        Self {
            rng_seed: [0; 32],
            rooms: Vec::new(),
            graft_timeout_ms: 250,
            live_pull: true,
            want_timeout_ms: 3_000,
            live_window_ms: 60_000,
            hello_retry_ms: 1_000,
            receipt_delay_ms: 300,
            room_receipt_delay_ms: (300, 3_000),
            dm_receipts: true,
            room_receipts_max_members: 32,
            room_receipts_max_hops: 3,
            max_clock_skew_ms: 10 * 60_000,
            max_seq_ahead: 4096,
            frame_rate: (2_000, 8_000),
            envelope_rate: (10_000, 40_000),
            batch_bytes: 192 * 1024,
            want_chunk: 256,
            recent_ids: 65_536,
            recent_ids_allocated: false,
            message_lifetime_ms: DEFAULT_MESSAGE_LIFETIME_MS,
            hello_shared_only: false,
            busy_messages_per_sec: 20,
            busy_lazy_fanout: 2,
            busy_announce_ms: 100,
            busy_max_hops: crate::frame::MAX_HOPS,
            // A person types a few messages a minute; a burst of ten
            // covers a quick exchange.
            author_push_rate: (2, 10),
            organiser: None,
            announcements_per_hour: (30, 10),
        }
    }
}

/// One chain's head as the store keeps it.
#[derive(Clone, Debug)]
pub struct SnapshotHead {
    pub room: RoomId,
    pub author: PeerId,
    pub contiguous: u64,
    pub max: u64,
    /// The id of the message at `max`, if it is still held.
    pub tip: Option<MessageId>,
}

/// What the store held when the node started.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub heads: Vec<SnapshotHead>,
    /// Stored messages above a gap: (room, author, seq, id).
    pub held_above: Vec<(RoomId, PeerId, u64, MessageId)>,
    /// Own messages not yet handed to any link.
    pub unsent: Vec<MessageId>,
    /// Authors with an equivocation proof in the store.
    pub equivocators: Vec<PeerId>,
    /// People the person using this device blocked (see [`Input::Block`]).
    pub blocked: Vec<PeerId>,
    /// Photo headers held near a gap (room, author, seq, pieces): what
    /// follows their pieces was shown before, and is not held again.
    pub photos: Vec<(RoomId, PeerId, u64, u64)>,
}

/// A read of `from..=to` of an author's chain for a link: at most
/// `max_bytes`, only messages created at or after `not_before` (the rest
/// are expired). Answered with `Input::Loaded` carrying it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Load {
    pub link: LinkId,
    pub room: RoomId,
    pub author: PeerId,
    pub from: u64,
    pub to: u64,
    pub max_bytes: usize,
    pub not_before: Millis,
    /// For a graft (the live path), not a want (catch-up): read before the
    /// link's queued wants.
    pub live: bool,
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
    /// The store's answer to `Output::Load` (the load, handed back).
    Loaded {
        load: Load,
        items: Vec<(SignedEnvelope, u8)>,
    },
    /// The store now keeps a proof that `a` and `b` (two valid envelopes
    /// of one author at one position) were both signed.
    Proved {
        a: SignedEnvelope,
        b: SignedEnvelope,
    },
    /// An envelope another instance of this relay cluster verified and
    /// committed to the store they share (it came over the cluster's bus):
    /// taken as stored, delivered and forwarded to our links as if it had
    /// reached us over one more link (`hops` as that instance received it).
    /// Dropped when its room is not carried, it is held already, or it has
    /// expired. The caller verified it (`SignedEnvelope::decode`).
    Committed {
        envelope: SignedEnvelope,
        hops: u8,
    },
    Tick,
    Power(PowerState),
    /// The app is in the foreground (false: background, on a phone).
    Foreground(bool),
    JoinRoom(RoomId),
    LeaveRoom(RoomId),
    /// The user has seen these messages of `room`, with their authors
    /// (read receipts; a DM's goes sealed to its author).
    MarkRead {
        room: RoomId,
        messages: Vec<(MessageId, PeerId)>,
    },
    /// The person using this device blocked `peer` (or undid it): their
    /// DMs are no longer taken, asked for or carried, and they get no
    /// receipt from us. Their room messages are still carried for the
    /// room's other members (not showing them is the app's part). At most
    /// [`caps::MAX_BLOCKED`] people; past it a block is ignored.
    Block {
        peer: PeerId,
        blocked: bool,
    },
    /// The person asked to send one of our own stored messages again
    /// ("not delivered yet", retry): pushed at once to the room's tree
    /// links and relay sessions, announced to its other links (counted in
    /// [`Stats::resent_to`]). Anything not ours, or of a room not carried,
    /// is ignored.
    Resend {
        envelope: SignedEnvelope,
    },
}

#[derive(Clone, Debug)]
pub enum Output {
    /// Send an encoded frame on a link.
    Send { link: LinkId, bytes: Vec<u8> },
    /// Commit this envelope, then answer with `Input::Persisted`.
    Persist { envelope: SignedEnvelope, hops: u8, local: bool },
    /// Read from the store, beside the event loop, then answer with
    /// `Input::Loaded`.
    Load(Load),
    /// A message is ready for the user, in per-author order.
    Deliver { id: MessageId, room: RoomId, author: PeerId, seq: u64 },
    /// An own message left on a link for the first time.
    Sent { id: MessageId, link: LinkId, kind: LinkKind },
    /// What a peer sent that we refused, in the last second: at most one a
    /// second per link (each refusal is counted in `Stats` at once).
    Refused { link: LinkId, peer: PeerId, report: RefusalReport },
    /// The link keeps sending what no honest peer sends: close it and back
    /// off from the peer.
    Misbehaving { link: LinkId, peer: PeerId },
    /// Nobody can serve `..=through` of this chain any more: the store
    /// marks it as seen so it is not asked for again.
    Skip { room: RoomId, author: PeerId, through: u64 },
    /// Two messages claim one position: keep both as proof (`held` is
    /// `None` when it is the one in the store at `other`'s position), then
    /// answer with `Input::Proved`.
    RecordProof { held: Option<SignedEnvelope>, other: SignedEnvelope },
    /// An author is newly known to have equivocated.
    Equivocator { author: PeerId },
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
    /// The organiser's announcement to everyone, shown until `until`
    /// (milliseconds since the Unix epoch); only the organiser key
    /// ([`Config::organiser`]) may send one.
    Announcement {
        text: String,
        until: u64,
    },
    /// "Meet at `place` at `at`" (ms since the Unix epoch), in the room.
    Meetup {
        place: String,
        at: u64,
    },
    /// A private group's message (see [`crate::group`]): sealed to
    /// `members` (sorted, us included: [`crate::group::member_list`]),
    /// in the DM mailbox.
    Group {
        group: crate::group::GroupId,
        name: String,
        members: Vec<PeerId>,
        content: crate::group::GroupContent,
    },
    /// A photo in the room: `jpeg` (at most
    /// [`crate::photo::MAX_PHOTO_BYTES`], `width` x `height` pixels), a
    /// caption ("" for none) and a thumbnail. Its header is the message;
    /// its chunks follow it in our chain (see [`crate::photo`]).
    Photo {
        jpeg: Vec<u8>,
        width: u16,
        height: u16,
        caption: String,
        thumb: Vec<u8>,
    },
    /// Our answer to the meet-up `meetup` of the room, which ends at `until`
    /// (its time plus [`body::MEETUP_GRACE_MS`]): the caller has the
    /// meet-up and copies its end.
    MeetupReply {
        meetup: MessageId,
        answer: MeetupAnswer,
        until: u64,
    },
}

/// A read receipt waiting to be sent.
type ReceiptKey = (RoomId, ReceiptStatus, Option<PeerId>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("you are not in room {0}")]
    NotInRoom(RoomId),
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("only the festival's organiser key may send announcements")]
    NotOrganiser,
    #[error("an announcement must end in the future, within the festival's message lifetime")]
    AnnouncementEnd,
    #[error("more announcements than the festival's budget allows for now (10 at once, 30 an hour)")]
    AnnouncementsLimited,
    #[error("a meet-up's time must lie ahead, within the festival's message lifetime")]
    MeetupTime,
    #[error("that meet-up is over")]
    MeetupOver,
    #[error(transparent)]
    Group(#[from] crate::group::GroupError),
    #[error(transparent)]
    Photo(#[from] crate::photo::PhotoError),
}

struct Pending {
    envelope: SignedEnvelope,
    hops: u8,
    /// The link it came from; `None` for our own and for what another
    /// instance of a relay cluster committed (`sibling`).
    from: Option<LinkId>,
    sibling: bool,
    /// Arrived by live push (forwarded by push) rather than by sync.
    live: bool,
}

struct WantInFlight {
    link: LinkId,
    from: u64,
    to: u64,
    deadline: Millis,
}

struct Missing {
    id: MessageId,
    /// The link whose announcement created the entry (it is counted there).
    first: LinkId,
    announcers: Vec<LinkId>,
    deadline: Millis,
    /// How many of `announcers` (the first ones) were asked.
    tried: usize,
    /// The announcer asked last, and when, while its answer is awaited.
    asked: Option<(LinkId, Millis)>,
}

/// The size of the node's per-peer maps (see [`caps`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateSizes {
    /// Heads claimed by the link that claims the most.
    pub claims: usize,
    pub wants: usize,
    pub exhausted: usize,
    pub missing: usize,
    pub backlog: usize,
    pub serve_queue: usize,
    pub loads: usize,
    /// Authors of the room with the most.
    pub authors: usize,
    pub pending: usize,
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
    /// Links that may have timer work of their own: a hello not yet
    /// acknowledged, refusals to report, loads waiting for serving budget
    /// ([`LinkState::needs_timer`]). Every such link is in it (checked
    /// against a walk of all links in debug builds); the wake-up time and
    /// the tick walk these, not every link: a relay holds thousands of
    /// links and computes its wake-up after every input.
    attention: BTreeSet<LinkId>,
    pending: BTreeMap<MessageId, Pending>,
    wants: BTreeMap<(RoomId, PeerId), WantInFlight>,
    /// Chains to ask for as soon as a want ends, oldest first, and the
    /// same as a set (capped: [`caps::MAX_BACKLOG`]).
    backlog: VecDeque<(RoomId, PeerId)>,
    backlogged: BTreeSet<(RoomId, PeerId)>,
    missing: BTreeMap<(RoomId, PeerId, u64), Missing>,
    recent: BoundedMap<(RoomId, PeerId, u64), MessageId>,
    unsent: BTreeSet<MessageId>,
    /// Receipts to send; for DMs, keyed by the author they go (sealed) to.
    receipts: BTreeMap<ReceiptKey, Vec<MessageId>>,
    equivocators: BTreeSet<PeerId>,
    /// Photos whose header was pushed: (room, author, first and last seq
    /// of its pieces), see `piece_of_pushed_photo`.
    pushed_photos: BoundedMap<MessageId, (RoomId, PeerId, u64, u64)>,
    /// People blocked here ([`Input::Block`]).
    blocked: BTreeSet<PeerId>,
    /// The earliest deadline of a want or an announced message, or earlier:
    /// kept as they are set and recomputed when the timers run, so the next
    /// wake-up costs nothing however many are waiting (an IHave flood fills
    /// thousands).
    timers_due: Option<Millis>,
    receipts_due: Option<Millis>,
    /// Positions asked for while the awaited map was full, and when.
    asked_unremembered: BoundedMap<(RoomId, PeerId, u64), Millis>,
    /// Messages announced, not pushed, for their author's push budget.
    held_back_ids: BoundedMap<MessageId, ()>,
    /// When the queued open room receipts go (`Config::room_receipt_delay_ms`).
    room_receipts_due: Option<Millis>,
    /// Rooms whose holdings changed through sync: tell the neighbours.
    announce: BTreeSet<RoomId>,
    announce_due: Option<Millis>,
    /// Density and per-sender budgets (`crowd`).
    crowd: crowd::Crowd,
    /// The organiser's announcements still to be taken this hour
    /// ([`Config::announcements_per_hour`]).
    announcements: TokenBucket,
    /// When the next slice of the periodic sync round is due (`tick`).
    next_sync: Millis,
    /// The last link the round in progress synced; `None` between rounds.
    sync_cursor: Option<LinkId>,
    /// When the round in progress began, and the links each of its slices
    /// takes (`tick`).
    sync_round: (Millis, usize),
    /// The next tree beacon (`tree`).
    tree_due: Millis,
    last_created_at: Millis,
    /// The wall clock of the latest input: dates only (see [`Now`]).
    wall: Millis,
    stats: Stats,
}

impl Node {
    pub fn new(me: Identity, cfg: Config, snapshot: Snapshot, power: PowerState, now: impl Into<Now>) -> Self {
        let Now { mono: now, wall } = now.into();
        let mut rooms = BTreeMap::new();
        // The announcements room only with an organiser key: without one
        // every announcement would be refused, so none is asked for.
        let everyones = RoomId::everyones().into_iter().filter(|r| !r.is_announcements() || cfg.organiser.is_some());
        for r in everyones.chain(cfg.rooms.iter().cloned()) {
            rooms.insert(r, RoomState::default());
        }
        for h in snapshot.heads {
            let a = rooms.entry(h.room).or_default().author(h.author);
            a.contiguous = h.contiguous;
            // What it held was shown before (see below for past pieces).
            a.shown = h.contiguous;
            a.tip = h.tip;
        }
        for (room, author, seq, id) in snapshot.held_above {
            rooms.entry(room).or_default().author(author).above.insert(seq, id);
        }
        // Delivery goes past photos' pieces as it did before (what it
        // passed was shown then: nothing is delivered again).
        for (room, author, seq, n) in snapshot.photos {
            let a = rooms.entry(room).or_default().author(author);
            a.note_pieces(seq, n);
            let _shown_before = a.advance();
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
            attention: BTreeSet::new(),
            pending: BTreeMap::new(),
            wants: BTreeMap::new(),
            backlog: VecDeque::new(),
            backlogged: BTreeSet::new(),
            missing: BTreeMap::new(),
            recent: if cfg.recent_ids_allocated {
                BoundedMap::allocated(cfg.recent_ids)
            } else {
                BoundedMap::new(cfg.recent_ids)
            },
            unsent: snapshot.unsent.into_iter().collect(),
            receipts: BTreeMap::new(),
            equivocators: snapshot.equivocators.into_iter().take(caps::MAX_EQUIVOCATORS).collect(),
            pushed_photos: BoundedMap::new(caps::MAX_PUSHED_PHOTOS),
            blocked: snapshot.blocked.into_iter().take(caps::MAX_BLOCKED).collect(),
            timers_due: None,
            receipts_due: None,
            asked_unremembered: BoundedMap::new(caps::MAX_ASKED_UNREMEMBERED),
            held_back_ids: BoundedMap::new(caps::MAX_HELD_BACK_IDS),
            room_receipts_due: None,
            announce: BTreeSet::new(),
            announce_due: None,
            crowd: crowd::Crowd::new(now),
            announcements: TokenBucket::per_hour(cfg.announcements_per_hour, now),
            next_sync: now + limits.sync_interval_ms,
            sync_cursor: None,
            sync_round: (now, tick::SYNC_SLICE_LINKS),
            tree_due: now + TREE_BEACON_MS,
            last_created_at: 0,
            wall,
            stats: Stats::default(),
            cfg,
        }
    }

    pub fn peer_id(&self) -> PeerId {
        self.my_id
    }
    /// Blocked here ([`Input::Block`]).
    pub fn is_blocked(&self, peer: &PeerId) -> bool {
        self.blocked.contains(peer)
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
        // The festival room and the mailbox are everyone's: not counted.
        let common = |r: &RoomId| r.is_everyones();
        let shared_rooms = l.peer_rooms.iter().filter(|r| !common(r) && self.rooms.contains_key(*r)).count();
        Some(LinkValue { powered: l.peer_powered, shared_rooms })
    }
    /// (contiguous, max) held of `author` in `room`.
    pub fn head(&self, room: &RoomId, author: &PeerId) -> (u64, u64) {
        self.rooms.get(room).and_then(|r| r.authors.get(author)).map_or((0, 0), |a| (a.contiguous, a.max()))
    }
    /// Whether the position is on its way into the store (a `Persist`
    /// not answered yet): held if that commit succeeds, free again if not.
    pub fn pending_at(&self, room: &RoomId, author: &PeerId, seq: u64) -> bool {
        self.rooms.get(room).and_then(|r| r.authors.get(author)).is_some_and(|a| a.pending.contains(&seq))
    }
    /// Whether the position is held, or on its way into the store.
    pub fn holds(&self, room: &RoomId, author: &PeerId, seq: u64) -> bool {
        self.rooms.get(room).and_then(|r| r.authors.get(author)).is_some_and(|a| a.has(seq))
    }
    /// Whether `author` is known to have signed two messages for one position.
    pub fn is_equivocator(&self, author: &PeerId) -> bool {
        self.equivocators.contains(author)
    }
    /// The size of every per-peer map, to check the caps hold.
    pub fn state_sizes(&self) -> StateSizes {
        StateSizes {
            claims: self.links.values().map(|l| l.claims).max().unwrap_or(0),
            wants: self.wants.len(),
            backlog: self.backlog.len(),
            exhausted: self.links.values().map(|l| l.exhausted.len()).max().unwrap_or(0),
            missing: self.missing.len(),
            serve_queue: self.links.values().map(|l| l.serve_queue.len()).max().unwrap_or(0),
            loads: self.links.values().map(|l| l.loads.len()).max().unwrap_or(0),
            authors: self.rooms.values().map(|r| r.authors.len()).max().unwrap_or(0),
            pending: self.pending.len(),
        }
    }

    /// Feed one input; carry out the returned outputs in order.
    pub fn handle(&mut self, input: Input, now: impl Into<Now>) -> Vec<Output> {
        let now = self.clock(now.into());
        let mut out = Vec::new();
        match input {
            Input::LinkUp { link, peer, kind } => self.on_link_up(link, peer, kind, now, &mut out),
            Input::LinkDown { link } => self.on_link_down(link, now, &mut out),
            Input::Frame { link, bytes } => self.on_frame(link, &bytes, now, &mut out),
            Input::Persisted { id, result } => self.on_persisted(id, result, now, &mut out),
            Input::Loaded { load, items } => self.on_loaded(load, items, now, &mut out),
            Input::Proved { a, b } => self.on_proved(a, b, &mut out),
            Input::Committed { envelope, hops } => self.on_committed(envelope, hops, now, &mut out),
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
                    // Our rank as a root may have changed.
                    for room in self.rooms.keys().cloned().collect::<Vec<_>>() {
                        self.tree_update(&room, now, &mut out);
                    }
                }
            }
            Input::Foreground(f) => self.foreground = f,
            Input::JoinRoom(room) => {
                if let std::collections::btree_map::Entry::Vacant(e) = self.rooms.entry(room.clone()) {
                    e.insert(RoomState::default());
                    self.hello_rooms_changed(&room, now, &mut out);
                }
            }
            Input::LeaveRoom(room) => {
                if !room.is_everyones() && self.rooms.remove(&room).is_some() {
                    for l in self.links.values_mut() {
                        l.trees.remove(&room);
                        l.told.remove(&room);
                    }
                    self.hello_rooms_changed(&room, now, &mut out);
                }
            }
            Input::Block { peer, blocked } => self.on_block(peer, blocked, now, &mut out),
            Input::Resend { envelope } => {
                let told = self.resend(&envelope, &mut out);
                self.stats.resent_to += told as u64;
            }
            Input::MarkRead { room, messages } => {
                let small = self.rooms.get(&room).is_some_and(|r| self.is_small(r));
                let me = self.my_id;
                // Nothing read goes back to someone blocked here.
                let messages: Vec<_> = messages.into_iter().filter(|(_, a)| !self.blocked.contains(a)).collect();
                if room.is_direct() {
                    for (id, author) in messages.into_iter().filter(|(_, a)| *a != me) {
                        self.queue_receipt(room.clone(), ReceiptStatus::Read, Some(author), id, now);
                    }
                } else if small {
                    for (id, _) in messages {
                        self.queue_receipt(room.clone(), ReceiptStatus::Read, None, id, now);
                    }
                }
            }
        }
        self.push_wake(&mut out);
        out
    }

    fn on_block(&mut self, peer: PeerId, blocked: bool, now: Millis, out: &mut Vec<Output>) {
        if !blocked {
            // What peers claimed of their DMs meanwhile is in our views of
            // them (it matched their digests, so they will not say it
            // again): ask for it now.
            if self.blocked.remove(&peer) {
                self.request_missing(&RoomId::direct(), peer, now, out);
            }
            return;
        }
        if self.blocked.len() >= caps::MAX_BLOCKED && !self.blocked.contains(&peer) {
            return;
        }
        self.blocked.insert(peer);
        // Receipts already queued for them stay unsent.
        self.receipts.retain(|(_, _, to), _| *to != Some(peer));
        // Nothing more of their DMs is waited for: an answer would be
        // dropped, and the link that owes it must not be blamed for that.
        let dm = RoomId::direct();
        self.take_want(&(dm.clone(), peer));
        let waiting: Vec<_> =
            self.missing.range((dm.clone(), peer, 0)..=(dm, peer, u64::MAX)).map(|(pos, _)| pos.clone()).collect();
        for pos in waiting {
            self.forget_missing(&pos);
        }
    }

    /// Author, sign and hand a message to the store. Returns its id; the
    /// outputs carry `Persist` and, once confirmed, the rest follows.
    pub fn send(
        &mut self,
        room: RoomId,
        content: Content,
        now: impl Into<Now>,
    ) -> Result<(MessageId, Vec<Output>), SendError> {
        let now = self.clock(now.into());
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
            Content::Announcement { text, until } => {
                if self.cfg.organiser != Some(self.my_id) {
                    return Err(SendError::NotOrganiser);
                }
                body::check_text(&text)?;
                if until <= self.wall || until > self.wall.saturating_add(self.cfg.message_lifetime_ms) {
                    return Err(SendError::AnnouncementEnd);
                }
                // Within the budget every node keeps for them, so that none
                // refuses an honest organiser's push.
                if !self.announcements.take(now) {
                    return Err(SendError::AnnouncementsLimited);
                }
                (RoomId::announcements(), Body::Announcement(AnnouncementBody { text, until }))
            }
            Content::Meetup { place, at } => {
                body::check_place(&place)?;
                // Its card lasts until `at` plus the grace: within the
                // lifetime every carrier keeps, or carriers refuse it.
                let end = at.saturating_add(body::MEETUP_GRACE_MS);
                if at <= self.wall || end > self.wall.saturating_add(self.cfg.message_lifetime_ms) {
                    return Err(SendError::MeetupTime);
                }
                (room, Body::Meetup(MeetupBody { place, at }))
            }
            Content::Group { group, name, members, content } => {
                let sealed = crate::group::seal(&self.me, group, &name, members, content, &mut self.rng)?;
                (RoomId::direct(), Body::SealedGroup(sealed))
            }
            Content::MeetupReply { meetup, answer, until } => {
                if until <= self.wall {
                    return Err(SendError::MeetupOver);
                }
                let until = until.min(self.wall.saturating_add(self.cfg.message_lifetime_ms));
                (room, Body::MeetupReply(MeetupReplyBody { meetup, answer, until }))
            }
            Content::Photo { jpeg, width, height, caption, thumb } => {
                let cut = crate::photo::cut(&jpeg, width, height, caption, thumb)?;
                let header = self.author(room.clone(), Body::Photo(cut.header))?;
                let id = header.id();
                let mut out = vec![Output::Persist { envelope: header, hops: 0, local: true }];
                for (i, data) in cut.chunks.into_iter().enumerate() {
                    // At most MAX_CHUNKS (18): fits in u16.
                    let chunk = crate::photo::PhotoChunkBody { photo: id, index: i as u16, data };
                    let env = self.author(room.clone(), Body::PhotoChunk(chunk))?;
                    out.push(Output::Persist { envelope: env, hops: 0, local: true });
                }
                self.push_wake(&mut out);
                return Ok((id, out));
            }
        };
        let env = self.author(room, body)?;
        let id = env.id();
        let mut out = vec![Output::Persist { envelope: env, hops: 0, local: true }];
        self.push_wake(&mut out);
        Ok((id, out))
    }

    /// Note the wall clock of an input; its monotonic time, which every
    /// timer uses.
    /// A peer's counters (see [`caps::MAX_PEER_COUNTERS`]).
    fn counters(&mut self, peer: PeerId) -> &mut refusals::PeerCounters {
        let links = &self.links;
        self.stats.peer(peer, || links.values().map(|l| l.peer).collect())
    }

    fn clock(&mut self, now: Now) -> Millis {
        self.wall = now.wall;
        now.mono
    }

    fn author(&mut self, room: RoomId, body: Body) -> Result<SignedEnvelope, SendError> {
        let me = self.my_id;
        let state = self.rooms.get_mut(&room).ok_or_else(|| SendError::NotInRoom(room.clone()))?;
        let seq = state.author(me).max_known() + 1;
        // Dated by the wall clock. Own timestamps do not go backwards (a
        // clock set back a little keeps the last date until it catches up),
        // so per-author order and time agree; but a clock set back by more
        // than half the skew others allow (one that ran ahead and was
        // corrected) dates by the wall again, or peers would refuse our
        // messages as from the future until it caught up.
        let ahead = self.last_created_at.saturating_sub(self.wall);
        let created_at =
            if ahead > self.cfg.max_clock_skew_ms / 2 { self.wall } else { self.wall.max(self.last_created_at) };
        self.last_created_at = created_at;
        let env = SignedEnvelope::sign(
            &self.me,
            Draft { seq, room: room.clone(), kind: body.kind(), created_at, body: body.encode() },
        )?;
        state.author(me).pending.insert(seq);
        self.pending
            .insert(env.id(), Pending { envelope: env.clone(), hops: 0, from: None, sibling: false, live: true });
        Ok(env)
    }

    /// Queue a receipt: for a DM, `to` is its author, who alone gets it.
    /// A room small enough for receipts (see
    /// [`Config::room_receipts_max_members`] and
    /// [`Config::room_receipts_max_hops`]).
    fn is_small(&self, r: &RoomState) -> bool {
        r.members() <= self.cfg.room_receipts_max_members && !r.far
    }

    fn queue_receipt(&mut self, room: RoomId, status: ReceiptStatus, to: Option<PeerId>, id: MessageId, now: Millis) {
        if !self.rooms.contains_key(&room) {
            return;
        }
        self.receipts.entry((room, status, to)).or_default().push(id);
        if to.is_none() {
            let (least, most) = self.cfg.room_receipt_delay_ms;
            let spread = most.saturating_sub(least);
            let wait = least + if spread > 0 { rand_core::RngCore::next_u64(&mut self.rng) % (spread + 1) } else { 0 };
            self.room_receipts_due.get_or_insert(now + wait);
        } else {
            self.receipts_due.get_or_insert(now + self.cfg.receipt_delay_ms);
        }
    }

    /// A want or announced message now waits until `t`.
    fn timer_at(&mut self, t: Millis) {
        self.timers_due = Some(self.timers_due.map_or(t, |d| d.min(t)));
    }

    fn push_wake(&mut self, out: &mut Vec<Output>) {
        let links = &self.links;
        self.attention.retain(|id| links.get(id).is_some_and(LinkState::needs_timer));
        debug_assert!(
            self.links.iter().all(|(id, l)| !l.needs_timer() || self.attention.contains(id)),
            "a link with timer work is missing from `attention`"
        );
        if let Some(t) = self.next_deadline() {
            out.push(Output::WakeAt(t));
        }
    }

    fn next_deadline(&self) -> Option<Millis> {
        let mut t = self.next_sync.min(self.tree_due);
        for l in self.attention.iter().filter_map(|id| self.links.get(id)) {
            if !l.hello_acked {
                t = t.min(l.hello_sent_at + self.cfg.hello_retry_ms);
            }
            if let Some(due) = l.refusals.due_at() {
                t = t.min(due);
            }
            if let Some(next) = l.serve_queue.front() {
                t = t.min(l.serve.ready_at(next.max_bytes as u64));
            }
        }
        let dues = [self.receipts_due, self.room_receipts_due, self.announce_due, self.timers_due, self.crowd.due];
        for d in dues.into_iter().flatten() {
            t = t.min(d);
        }
        Some(t)
    }
}
