//! festival-sim: a deterministic simulator for festival-core.
//!
//! Virtual time, a seeded RNG, N nodes with in-memory stores, links with
//! latency, jitter and loss, partitions, and nodes that go offline and come
//! back (rebuilt from their store, as after an app restart). Every frame is
//! really encoded, decoded and verified; only the sockets and the disk are
//! simulated. The same seed gives the same run, byte for byte: every frame
//! put on a link, with its time and ends, goes into [`Sim::trace_hash`],
//! and `tests/it/deterministic.rs` runs one seed twice and compares the hashes.
//! Nothing that decides an output may iterate a `HashMap` (its order differs
//! per process): clippy's `disallowed-types` refuses them here and in the
//! core (`clippy.toml` of each crate).
//!
//! # Layout
//! - [`store`]: `MemStore`, the in-memory stand-in for festival-store.
//! - [`attacks`]: hostile nodes (floods, invented claims, forged receipts).
//! - [`host`]: one node's outputs that stay in the node (store, budget,
//!   receipts), shared with nodes run in another process.
//! - [`net`]: link specs and the random graph builder.
//! - [`lan`]: LAN mode: discovery, and links chosen by each node's
//!   `festival_core::mesh`.
//! - [`Sim`] (this file): the event loop and the test/bench API.
//! - [`report`]: delivery ratio, redundancy, hops and latency.

pub mod attacks;
pub mod host;
pub mod lan;
pub mod net;
pub mod report;
pub mod store;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};

use festival_core::frame::Frame;
use festival_core::policy::PowerState;
use festival_core::sync::{Config, Content, Input, LinkKind, Node, Output, SendError};
use festival_core::{Identity, LinkId, MessageId, PeerId, RoomId, SignedEnvelope};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use lan::{Hearing, LanCfg};
pub use net::{random_graph, LinkSpec};
pub use report::Report;
pub use store::MemStore;

/// Virtual clock at the start of every run (a plausible wall time, in ms).
pub const EPOCH_MS: u64 = 1_750_000_000_000;

/// A message as one node's user saw it arrive.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub id: MessageId,
    pub room: RoomId,
    pub author: PeerId,
    pub seq: u64,
    pub at: u64,
    pub hops: u8,
}

pub struct SimNode {
    secret: [u8; 32],
    peer: PeerId,
    rooms: Vec<RoomId>,
    pub core: Option<Node>,
    pub store: MemStore,
    pub delivered: Vec<Delivery>,
    /// Envelope copies received, over all incarnations of this node.
    pub envelopes_in: u64,
    pub rejected: u64,
    wake_at: Option<u64>,
    power: PowerState,
    /// False for a node that claims and never serves: its batches and
    /// `Gone` answers are dropped on the way out.
    pub serves: bool,
    /// False for a node that drops its own pushes on the way out.
    pub pushes: bool,
    /// A black hole: it sends nothing at all on its links (a Sybil that
    /// takes links to cut nodes off).
    pub silent: bool,
    /// Refusal reports its core made, and links it reported misbehaving.
    pub refusal_reports: u64,
    pub misbehaving: Vec<usize>,
    /// Bytes its store held at most (after each eviction).
    pub peak_bytes: u64,
    /// When set, the node runs elsewhere (see [`Sim::set_remote`]).
    pub remote: Option<Box<dyn Remote>>,
}

/// A node whose core and store run outside the simulator.
pub trait Remote {
    /// Handle one input at virtual time `now`; return what leaves the node.
    fn handle(&mut self, input: Input, now: u64) -> Vec<Output>;
}

impl SimNode {
    pub fn peer_id(&self) -> PeerId {
        self.peer
    }
    pub fn online(&self) -> bool {
        self.core.is_some()
    }
    /// Envelope copies received by the current incarnation.
    fn core_envelopes_in(&self) -> u64 {
        self.core.as_ref().map_or(0, |c| c.stats().envelopes_in())
    }
}

struct LinkInfo {
    spec: LinkSpec,
    /// Configured and not cut by a partition.
    enabled: bool,
    /// Bumped whenever the link goes down: frames of an older generation are lost.
    gen: u64,
    /// Last scheduled arrival per direction (links deliver in order).
    last_arrival: [u64; 2],
}

enum Event {
    Frame { to: usize, from: usize, gen: u64, bytes: Vec<u8> },
    Wake { node: usize },
    Lan(lan::LanEvent),
}

struct Scheduled {
    at: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, o: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest first.
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

pub struct Sim {
    pub now: u64,
    pub rng: ChaCha8Rng,
    pub nodes: Vec<SimNode>,
    links: BTreeMap<(usize, usize), LinkInfo>,
    queue: BinaryHeap<Scheduled>,
    seq: u64,
    pub frames_sent: u64,
    pub frames_lost: u64,
    /// Frames sent, by the frame's variant index (its second byte: every
    /// variant index is below 128, one varint byte).
    pub frames_by_kind: BTreeMap<u8, u64>,
    /// Bytes sent, by the same index.
    pub bytes_by_kind: BTreeMap<u8, u64>,
    pub config: Config,
    /// Each node's store budget in bytes (`None`: unlimited).
    pub budget: Option<u64>,
    /// Every frame put on a link, in order: (time, from, to, length, bytes),
    /// and in LAN mode every link opened and closed.
    trace: blake3::Hasher,
    /// LAN mode (see [`lan`]), once enabled.
    lan: Option<lan::LanState>,
}

fn key(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

impl Sim {
    pub fn new(seed: u64) -> Self {
        Sim {
            now: EPOCH_MS,
            rng: ChaCha8Rng::seed_from_u64(seed),
            nodes: Vec::new(),
            links: BTreeMap::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            frames_sent: 0,
            frames_lost: 0,
            frames_by_kind: BTreeMap::new(),
            bytes_by_kind: BTreeMap::new(),
            config: Config::default(),
            budget: None,
            trace: blake3::Hasher::new(),
            lan: None,
        }
    }

    /// Add an online node carrying `rooms` (besides the festival and DM rooms).
    pub fn add_node(&mut self, rooms: Vec<RoomId>) -> usize {
        let secret: [u8; 32] = self.rng.gen();
        self.add_node_with_secret(secret, rooms)
    }

    /// Add an online node whose store already holds `held` (messages of
    /// earlier in the day), as festival-store would after a restart.
    pub fn add_node_holding(&mut self, rooms: Vec<RoomId>, held: impl IntoIterator<Item = SignedEnvelope>) -> usize {
        let secret: [u8; 32] = self.rng.gen();
        let now = self.now;
        self.add_node_inner(secret, rooms, |store| {
            for env in held {
                store.insert(env, 1, now).expect("one message per position");
            }
        })
    }

    /// Add an online node with the key `secret` (an attacker's chosen key).
    pub fn add_node_with_secret(&mut self, secret: [u8; 32], rooms: Vec<RoomId>) -> usize {
        self.add_node_inner(secret, rooms, |_| {})
    }

    fn add_node_inner(&mut self, secret: [u8; 32], rooms: Vec<RoomId>, fill: impl FnOnce(&mut MemStore)) -> usize {
        let peer = Identity::from_secret_bytes(&secret).peer_id();
        self.nodes.push(SimNode {
            secret,
            peer,
            rooms,
            core: None,
            store: MemStore::default(),
            delivered: Vec::new(),
            envelopes_in: 0,
            rejected: 0,
            wake_at: None,
            power: PowerState::Mains,
            serves: true,
            pushes: true,
            silent: false,
            refusal_reports: 0,
            misbehaving: Vec::new(),
            peak_bytes: 0,
            remote: None,
        });
        let i = self.nodes.len() - 1;
        fill(&mut self.nodes[i].store);
        self.start(i);
        i
    }

    fn start(&mut self, i: usize) {
        let n = &self.nodes[i];
        let mut cfg = self.config.clone();
        cfg.rooms = n.rooms.clone();
        cfg.rng_seed = self.rng.gen();
        let core = Node::new(Identity::from_secret_bytes(&n.secret), cfg, n.store.snapshot(&n.peer), n.power, self.now);
        self.nodes[i].core = Some(core);
        self.nodes[i].wake_at = None;
        self.feed(i, Input::Tick);
        self.lan_start(i);
    }

    pub fn peer_id(&self, i: usize) -> PeerId {
        self.nodes[i].peer
    }

    /// Node `i`'s secret key (to run it in another process).
    pub fn node_secret(&self, i: usize) -> [u8; 32] {
        self.nodes[i].secret
    }

    fn link_up(&self, a: usize, b: usize) -> bool {
        self.links.get(&key(a, b)).is_some_and(|l| l.enabled) && self.nodes[a].online() && self.nodes[b].online()
    }

    pub fn connect(&mut self, a: usize, b: usize, spec: LinkSpec) {
        assert_ne!(a, b);
        let was_up = self.link_up(a, b);
        let entry =
            self.links.entry(key(a, b)).or_insert(LinkInfo { spec, enabled: true, gen: 0, last_arrival: [0; 2] });
        entry.spec = spec;
        entry.enabled = true;
        if !was_up && self.link_up(a, b) {
            self.raise(a, b);
        }
    }

    pub fn disconnect(&mut self, a: usize, b: usize) {
        let was_up = self.link_up(a, b);
        if let Some(l) = self.links.get_mut(&key(a, b)) {
            l.enabled = false;
        }
        if was_up {
            self.drop_link(a, b);
        }
    }

    /// Cut every link between `side` and the rest.
    pub fn partition(&mut self, side: &[usize]) {
        let inside: std::collections::BTreeSet<usize> = side.iter().copied().collect();
        let cut: Vec<(usize, usize)> =
            self.links.keys().copied().filter(|(a, b)| inside.contains(a) != inside.contains(b)).collect();
        for (a, b) in cut {
            self.disconnect(a, b);
        }
    }

    /// Re-enable every configured link.
    pub fn heal(&mut self) {
        let all: Vec<((usize, usize), LinkSpec)> =
            self.links.iter().filter(|(_, l)| !l.enabled).map(|(k, l)| (*k, l.spec)).collect();
        for ((a, b), spec) in all {
            self.connect(a, b, spec);
        }
    }

    fn raise(&mut self, a: usize, b: usize) {
        self.feed(a, Input::LinkUp { link: LinkId(b as u64), peer: self.nodes[b].peer, kind: LinkKind::Lan });
        self.feed(b, Input::LinkUp { link: LinkId(a as u64), peer: self.nodes[a].peer, kind: LinkKind::Lan });
    }

    fn drop_link(&mut self, a: usize, b: usize) {
        if let Some(l) = self.links.get_mut(&key(a, b)) {
            l.gen += 1;
        }
        for (x, y) in [(a, b), (b, a)] {
            if self.nodes[x].online() {
                self.feed(x, Input::LinkDown { link: LinkId(y as u64) });
            }
        }
    }

    /// Take a node off the air (app closed): its links drop, its store stays.
    /// Back online, it restarts from its store.
    pub fn set_online(&mut self, i: usize, online: bool) {
        if online == self.nodes[i].online() {
            return;
        }
        let peers: Vec<usize> = self
            .links
            .iter()
            .filter(|(_, l)| l.enabled)
            .filter_map(|(&(a, b), _)| {
                if a == i {
                    Some(b)
                } else if b == i {
                    Some(a)
                } else {
                    None
                }
            })
            .filter(|&p| self.nodes[p].online())
            .collect();
        if online {
            self.start(i);
            for p in peers {
                self.raise(i, p);
            }
        } else {
            for &p in &peers {
                self.drop_link(i, p);
            }
            let n = &mut self.nodes[i];
            n.envelopes_in += n.core_envelopes_in();
            n.rejected += n.core.as_ref().map_or(0, |c| c.stats().rejected_total());
            n.core = None;
            n.wake_at = None;
            if self.lan.is_some() {
                // Its links are gone for good: a new incarnation dials anew.
                self.links.retain(|&(a, b), _| a != i && b != i);
                self.lan_stop(i);
            }
        }
    }

    pub fn set_power(&mut self, i: usize, power: PowerState) {
        self.nodes[i].power = power;
        if self.nodes[i].online() {
            self.feed(i, Input::Power(power));
        }
    }

    pub fn send(&mut self, i: usize, room: RoomId, content: Content) -> Result<MessageId, SendError> {
        let now = self.now;
        let core = self.nodes[i].core.as_mut().expect("node is online");
        let (id, outputs) = core.send(room, content, now)?;
        self.apply(i, outputs);
        Ok(id)
    }

    pub fn send_text(&mut self, i: usize, room: &str, text: &str) -> MessageId {
        self.send(i, room.parse().expect("room id"), Content::Text(text.to_owned())).expect("send")
    }

    /// Feed one input to node `i` and carry out everything that follows.
    pub fn feed(&mut self, i: usize, input: Input) {
        let now = self.now;
        if let Some(remote) = self.nodes[i].remote.as_mut() {
            let external = remote.handle(input, now);
            self.external(i, external);
            return;
        }
        let Some(core) = self.nodes[i].core.as_mut() else { return };
        let outputs = core.handle(input, now);
        self.apply(i, outputs);
    }

    /// Run node `i` elsewhere (another process, say): its inputs go to
    /// `remote`, which answers with what leaves the node. Its core here
    /// stays only to say that it is online.
    pub fn set_remote(&mut self, i: usize, remote: Box<dyn Remote>) {
        self.nodes[i].remote = Some(remote);
    }

    fn apply(&mut self, i: usize, outputs: Vec<Output>) {
        let now = self.now;
        let cfg = self.host_cfg(i);
        let n = &mut self.nodes[i];
        let Some(core) = n.core.as_mut() else { return };
        let external = host::carry_out(core, &mut n.store, &cfg, outputs, now, &mut n.peak_bytes);
        self.external(i, external);
    }

    fn host_cfg(&self, i: usize) -> host::HostCfg {
        host::HostCfg {
            budget: self.budget,
            lifetime_ms: self.config.message_lifetime_ms,
            rooms: self.nodes[i].rooms.iter().cloned().collect(),
        }
    }

    /// What left node `i`: frames onto links, wake-ups, deliveries.
    fn external(&mut self, i: usize, outputs: Vec<Output>) {
        let now = self.now;
        for o in outputs {
            match o {
                Output::Send { link, bytes } => self.transmit(i, link.0 as usize, bytes),
                Output::Deliver { id, room, author, seq } => {
                    let hops = self.nodes[i].store.hops(&id);
                    self.nodes[i].delivered.push(Delivery { id, room, author, seq, at: now, hops });
                }
                Output::WakeAt(t) if self.nodes[i].wake_at != Some(t) => {
                    self.nodes[i].wake_at = Some(t);
                    self.schedule(t.max(now), Event::Wake { node: i });
                }
                Output::Refused { .. } => self.nodes[i].refusal_reports += 1,
                Output::Misbehaving { link, .. } => {
                    let peer = link.0 as usize;
                    self.nodes[i].misbehaving.push(peer);
                    self.disconnect(i, peer);
                }
                _ => {}
            }
        }
    }

    /// Put raw bytes on the link from `from` to `to`, as if `from` sent
    /// them (a hostile node's frames).
    pub fn inject(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        self.transmit(from, to, bytes);
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Scheduled { at, seq: self.seq, event });
    }

    fn transmit(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        if !self.link_up(from, to) || self.nodes[from].silent {
            return;
        }
        if !self.nodes[from].serves && matches!(Frame::decode(&bytes), Ok(Frame::Batch { .. } | Frame::Gone { .. })) {
            return;
        }
        if !self.nodes[from].pushes && matches!(Frame::decode(&bytes), Ok(Frame::Push(_))) {
            return;
        }
        self.frames_sent += 1;
        for n in [self.now, from as u64, to as u64, bytes.len() as u64] {
            self.trace.update(&n.to_le_bytes());
        }
        self.trace.update(&bytes);
        let kind = bytes.get(1).copied().unwrap_or(255);
        *self.frames_by_kind.entry(kind).or_default() += 1;
        *self.bytes_by_kind.entry(kind).or_default() += bytes.len() as u64;
        let k = key(from, to);
        let dir = usize::from(from > to);
        let l = self.links.get_mut(&k).expect("link is up");
        if l.spec.loss > 0.0 && self.rng.gen_bool(l.spec.loss) {
            self.frames_lost += 1;
            return;
        }
        let jitter = if l.spec.jitter_ms > 0 { self.rng.gen_range(0..=l.spec.jitter_ms) } else { 0 };
        let at = (self.now + l.spec.latency_ms + jitter).max(l.last_arrival[dir]);
        l.last_arrival[dir] = at;
        let gen = l.gen;
        self.schedule(at, Event::Frame { to, from, gen, bytes });
    }

    /// Process events up to and including virtual time `t`.
    pub fn run_until(&mut self, t: u64) {
        while self.queue.peek().is_some_and(|s| s.at <= t) {
            let s = self.queue.pop().expect("peeked");
            self.now = s.at;
            match s.event {
                Event::Frame { to, from, gen, bytes } => {
                    let current = self.links.get(&key(from, to)).map(|l| l.gen);
                    if current == Some(gen) && self.link_up(from, to) {
                        self.feed(to, Input::Frame { link: LinkId(from as u64), bytes });
                    }
                }
                Event::Wake { node } => {
                    if self.nodes[node].wake_at == Some(s.at) {
                        self.nodes[node].wake_at = None;
                        self.feed(node, Input::Tick);
                    }
                }
                Event::Lan(ev) => self.on_lan(ev),
            }
        }
        self.now = self.now.max(t);
    }

    pub fn run_for(&mut self, ms: u64) {
        self.run_until(self.now + ms);
    }

    /// Run until `done` holds or `limit_ms` of virtual time pass; checks every
    /// `step_ms`. Returns whether `done` held.
    pub fn run_until_cond(&mut self, limit_ms: u64, step_ms: u64, mut done: impl FnMut(&Sim) -> bool) -> bool {
        let end = self.now + limit_ms;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.run_until((self.now + step_ms).min(end));
        }
        done(self)
    }

    /// A hash of every frame put on a link so far (lost ones too), with its
    /// virtual time and ends: two runs are the same run when it is equal.
    pub fn trace_hash(&self) -> String {
        self.trace.finalize().to_hex().to_string()
    }

    /// Has node `i` delivered message `id`?
    pub fn has(&self, i: usize, id: &MessageId) -> bool {
        self.nodes[i].store.contains(id) && self.nodes[i].delivered.iter().any(|d| d.id == *id)
    }

    /// Has node `i`'s user seen message `id` (whether or not its store
    /// still holds it)?
    pub fn saw(&self, i: usize, id: &MessageId) -> bool {
        self.nodes[i].delivered.iter().any(|d| d.id == *id)
    }

    /// Envelope copies node `i` received in all its incarnations.
    pub fn envelopes_in(&self, i: usize) -> u64 {
        self.nodes[i].envelopes_in + self.nodes[i].core_envelopes_in()
    }
}
