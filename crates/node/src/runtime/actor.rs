//! The node's event loop. One task owns everything mutable; it waits on its
//! inbox, the UDP socket, the signaling listener, signaling results, mDNS
//! events and the next timer (core or WebRTC), then drives what became due.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use festival_core::body::Body;
use festival_core::mesh::{self, Mesh, Output as MeshOut, Refusal, Via};
use festival_core::policy::{Limits, PowerState};
use festival_core::sync::{Config, Content, Input, LinkKind};
use festival_core::{Identity, LinkId, MessageId, PeerId, RoomId};
use festival_store::Store;
use rand_core::{OsRng, RngCore};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinSet;

use super::config::{check_festival, NodeConfig, PowerConfig, StartError};
use super::events::{
    AnnouncementView, DeliveryState, LinkPath, MessageBody, MessageView, NodeEvent, PeerView, PowerMode, RelayState,
    Status, Waiting,
};
use super::handle::{NodeError, RETRY_MIN_GAP_MS};
use super::paths::{median, Paths, RelayPath};
use super::relay_route::{RelayRoute, RouteAction, RELAY_BREAKER};
use super::sendq::{Admit, SendQueue};
use super::signal_io::{self, SignalEvent};
use super::status;
use crate::clock::now_ms;
use crate::discovery::{Advert, Discovery, DiscoveryEvent, MdnsHub};
use crate::engine::{Effect, Engine};
use crate::local::{LocalError, LocalNode};
use crate::names::Names;
use crate::power::{FixedPower, PowerSource, POLL_INTERVAL};
use crate::relay::{RelayClient, RelayClientConfig, RelayEvent, RelayHandle, RelaySendError, SessionId};
use crate::retention::RetentionTask;
use crate::signaling::{verify_answer, Answer, Offer, OfferCheck, SignalError, SignalMsg, SIGNAL_VERSION};
use crate::webrtc::{self, ConnId, Endpoint, EndpointConfig, EndpointEvent, InterfaceFilter};

/// Signaling results waiting for the actor.
const SIGNAL_QUEUE: usize = 256;
/// Inbound signaling connections handled at once; more are refused, so a
/// flood of half-open connections cannot exhaust tasks or file descriptors.
const MAX_INBOUND_SIGNALING: usize = 64;
/// Inbound signaling connections at once from one address: one host cannot
/// take every slot.
const MAX_INBOUND_PER_SOURCE: usize = 8;
/// How long the names (verified marks, lookalike flags) shown with messages
/// may be stale: they are reloaded at most this often while messages flow.
const NAMES_FRESH: Duration = Duration::from_secs(2);

pub enum Command {
    Send { room: RoomId, content: Content, reply: oneshot::Sender<Result<MessageId, NodeError>> },
    Join { room: RoomId, name: String, reply: oneshot::Sender<Result<RoomId, NodeError>> },
    MarkRead { room: RoomId, ids: Vec<MessageId>, reply: oneshot::Sender<Result<(), NodeError>> },
    Block { peer: PeerId, blocked: bool, reply: oneshot::Sender<Result<(), NodeError>> },
    Retry { id: MessageId, reply: oneshot::Sender<Result<(), NodeError>> },
    Rename { name: String, reply: oneshot::Sender<Result<(), NodeError>> },
    Peers { reply: oneshot::Sender<Vec<PeerView>> },
    Status { reply: oneshot::Sender<Status> },
    Shutdown,
}

/// A STUN binding request from the WebRTC socket to the relay's STUN port:
/// its answer is our server-reflexive address, a candidate for direct links
/// across a NAT. Sent again after 500 ms, doubling, [`STUN_TRIES`] times.
struct StunQuery {
    server: SocketAddr,
    tid: [u8; 12],
    next_send: Instant,
    tries: u32,
}

const STUN_TRIES: u32 = 4;

/// Core links of relay sessions are numbered from here; the mesh numbers
/// direct links from 1, so the two never meet.
const RELAY_LINKS: u64 = 1 << 62;

/// What carries a core link: a direct link's WebRTC connection (the mesh
/// numbers those links), or the relay session (numbered apart, from
/// [`RELAY_LINKS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Lan(ConnId),
    Relay(SessionId),
}

/// A direct link's WebRTC connection. Who links to whom is the mesh's.
struct Conn {
    /// The mesh's (and the core's) link it carries.
    link: LinkId,
    peer: PeerId,
    /// The nonce of our offer, while we wait for the answer.
    nonce: Option<[u8; 16]>,
    /// Signaled through the relay: an upgrade from the relay path.
    upgrade: bool,
    open: bool,
    /// Frames waiting for room in the send buffer, most urgent first.
    queue: SendQueue,
}

/// The relay side of the actor: the client, its session as a core link,
/// the route's circuit breaker and what the status shows.
struct Relay {
    cfg: RelayClientConfig,
    route: RelayRoute,
    handle: Option<RelayHandle>,
    /// The session up now: its core link and the relay's identity.
    session: Option<(SessionId, LinkId, PeerId)>,
    state: RelayState,
}

pub struct Actor {
    engine: Engine,
    store: Store,
    me: PeerId,
    name: String,
    festival: String,
    /// The relay route, when a relay is configured.
    relay: Option<Relay>,
    /// Events of the running relay client (none while the breaker is open).
    relay_rx: Option<mpsc::Receiver<RelayEvent>>,
    rx: mpsc::Receiver<Command>,
    events: broadcast::Sender<NodeEvent>,
    socket: UdpSocket,
    listener: TcpListener,
    endpoint: Endpoint,
    discovery: Discovery,
    discovery_open: bool,
    signal_tx: mpsc::Sender<SignalEvent>,
    signal_rx: mpsc::Receiver<SignalEvent>,
    tasks: JoinSet<()>,
    offers: OfferCheck,
    /// Who links to whom (festival_core::mesh); the actor only does its IO.
    mesh: Mesh,
    /// Direct links' transports, by mesh link.
    conns: HashMap<ConnId, Conn>,
    /// Relay sessions' core links, numbered apart from the mesh's.
    next_relay_link: u64,
    /// The transport of every core link (LAN connection or relay session).
    transports: BTreeMap<LinkId, Transport>,
    /// WebRTC connections are numbered by the actor, apart from links.
    next_conn: u64,
    engine_wake: Option<u64>,
    power: Box<dyn PowerSource>,
    power_state: PowerState,
    limits: Limits,
    peer_limit: Option<usize>,
    next_power_read: Instant,
    rejected: BTreeMap<String, u64>,
    inbound: HashMap<std::net::IpAddr, usize>,
    /// Links we dropped ourselves, for the core to hear about (async).
    pending_down: Vec<LinkId>,
    /// Traffic per path; upgrades from the relay to direct links.
    paths: Paths,
    /// Our STUN binding request to the relay, while it waits for an answer.
    stun: Option<StunQuery>,
    buf: Vec<u8>,
    /// Expiry and the store's budget, beside the event loop.
    _retention: RetentionTask,
    /// Names for the messages we show, and when they were loaded.
    names: Option<(Instant, Names)>,
    /// Our DMs not acknowledged yet, by when they turn "not delivered yet"
    /// (wall ms): a `delivery` event goes out then. At most
    /// [`MAX_OVERDUE_WATCH`], the soonest kept.
    overdue: BTreeSet<(u64, MessageId)>,
    /// See [`NodeConfig::delivery_timeout_ms`].
    delivery_timeout_ms: u64,
    /// When the last retries were made (wall ms), at most
    /// [`MAX_RETRIES_PER_MINUTE`] within a minute.
    retries: std::collections::VecDeque<u64>,
}

/// Group messages opened per delivered one (the queue is drained in order,
/// so a catch-up of many is spread over the deliveries).
const GROUP_INDEX_STEP: u32 = 64;

/// Retries of any of our DMs within a minute (each pushes to every link in
/// reach).
const MAX_RETRIES_PER_MINUTE: usize = 10;

/// Most of our DMs watched for their "not delivered yet" moment (ours only,
/// so a peer cannot grow it; the cap bounds a person who writes in bulk).
const MAX_OVERDUE_WATCH: usize = 4_096;

impl Actor {
    pub async fn build(
        cfg: NodeConfig,
        rx: mpsc::Receiver<Command>,
        events: broadcast::Sender<NodeEvent>,
    ) -> Result<(Actor, Store, PeerId), StartError> {
        check_festival(&cfg.festival)?;
        let relay_roots = match &cfg.relay_ca {
            Some(path) => crate::relay::tls::read_pem_certs(path).map_err(StartError::RelayCa)?,
            None => Vec::new(),
        };
        let local = LocalNode::open(&cfg.data_dir).await?;
        let name = match (local.store.identity().await.map_err(LocalError::from)?, &cfg.name) {
            (None, None) => return Err(StartError::NeedName),
            (None, Some(name)) => {
                local.init(name).await?;
                name.clone()
            }
            (Some(me), Some(name)) if &me.name != name => {
                local.store.set_name(name).await.map_err(LocalError::from)?;
                let mut engine = local.engine().await?;
                engine.send(RoomId::festival(), Content::Profile(name.clone())).await?;
                name.clone()
            }
            (Some(me), _) => me.name,
        };
        let mut power: Box<dyn PowerSource> = match cfg.power {
            PowerConfig::Fixed(p) => Box::new(FixedPower(p)),
            #[cfg(not(any(target_os = "android", target_os = "ios")))]
            PowerConfig::Auto => Box::new(crate::power::BatteryPower::new()),
            #[cfg(any(target_os = "android", target_os = "ios"))]
            PowerConfig::Auto => Box::new(FixedPower(PowerState::Mains)),
        };
        let power_state = power.read();
        let core =
            Config { message_lifetime_ms: cfg.retention.lifetime_ms, organiser: cfg.organiser, ..Config::default() };
        let mut engine = Engine::boot_with_clock(local.store.clone(), core, power_state, cfg.clock.clone()).await?;
        let retention = engine.start_retention(cfg.retention);
        let me = engine.peer_id();
        let limits = engine.node().limits();

        let socket = webrtc::driver::bind_udp((std::net::Ipv4Addr::UNSPECIFIED, cfg.udp_port).into())
            .map_err(|source| StartError::Bind { what: "the WebRTC UDP socket", source })?;
        let udp_port = socket.local_addr().map_err(|source| StartError::Bind { what: "UDP", source })?.port();
        let listener = signal_io::bind(cfg.signaling_port)
            .await
            .map_err(|source| StartError::Bind { what: "the signaling port", source })?;
        let tcp_port = listener.local_addr().map_err(|source| StartError::Bind { what: "TCP", source })?.port();
        let filter = InterfaceFilter { include_loopback: cfg.loopback_candidates, only: cfg.interfaces.clone() };
        let local_addrs = webrtc::host_candidates(udp_port, &filter)
            .map_err(|source| StartError::Bind { what: "interface addresses", source })?;
        let mut endpoint = Endpoint::new(EndpointConfig { local_addrs, ..EndpointConfig::default() })?;
        endpoint.set_ice_timing(Duration::from_millis(limits.keepalive_ms), webrtc::ICE_MAX_RETRANSMITS);
        let hub = match cfg.mdns {
            Some(h) => h,
            None => MdnsHub::shared(&cfg.interfaces)?,
        };
        let powered = !matches!(power_state, PowerState::Battery { .. });
        let discovery = hub.register(Advert { peer: me, festival: cfg.festival.clone(), port: tcp_port, powered })?;
        let (signal_tx, signal_rx) = mpsc::channel(SIGNAL_QUEUE);
        tracing::info!(peer = %me.short(), udp_port, tcp_port, festival = %cfg.festival, "node started");
        let store = local.store.clone();
        let mut seed = [0u8; 32];
        OsRng.fill_bytes(&mut seed);
        let actor = Actor {
            engine,
            store: store.clone(),
            me,
            name,
            offers: OfferCheck::new(me, cfg.festival.clone()),
            festival: cfg.festival.clone(),
            relay: cfg.relay_url.as_ref().map(|url| Relay {
                cfg: RelayClientConfig {
                    extra_roots: relay_roots,
                    relay_id: cfg.relay_id,
                    ..RelayClientConfig::several(url, cfg.festival.clone())
                },
                route: RelayRoute::new(RELAY_BREAKER),
                handle: None,
                session: None,
                state: RelayState::Connecting { url: url.clone() },
            }),
            relay_rx: None,
            rx,
            events,
            socket,
            listener,
            endpoint,
            discovery,
            discovery_open: true,
            signal_tx,
            signal_rx,
            tasks: JoinSet::new(),
            mesh: Mesh::new(me, cfg.peer_limit.unwrap_or(limits.max_peers), seed),
            conns: HashMap::new(),
            next_relay_link: RELAY_LINKS,
            transports: BTreeMap::new(),
            next_conn: 1,
            engine_wake: Some(0),
            power,
            power_state,
            limits,
            peer_limit: cfg.peer_limit,
            next_power_read: Instant::now() + POLL_INTERVAL,
            rejected: BTreeMap::new(),
            inbound: HashMap::new(),
            pending_down: Vec::new(),
            paths: Paths::default(),
            stun: None,
            buf: vec![0; webrtc::driver::DATAGRAM_BUF],
            _retention: retention,
            names: None,
            overdue: BTreeSet::new(),
            delivery_timeout_ms: cfg.delivery_timeout_ms,
            retries: std::collections::VecDeque::new(),
        };
        let mut actor = actor;
        // Our DMs whose "not delivered yet" moment lies ahead (written or
        // retried within the timeout): watched again after a restart.
        let timeout = actor.delivery_timeout_ms;
        let since = actor.engine.clock().wall().saturating_sub(timeout);
        let recent = store.recent_undelivered_dms(since, MAX_OVERDUE_WATCH as u32).await.map_err(LocalError::from)?;
        for (id, start) in recent {
            actor.watch_overdue(id, start.saturating_add(timeout));
        }
        Ok((actor, store, me))
    }

    /// Watch one of our DMs for its "not delivered yet" moment.
    fn watch_overdue(&mut self, id: MessageId, due: u64) {
        self.overdue.retain(|(_, x)| *x != id);
        self.overdue.insert((due, id));
        while self.overdue.len() > MAX_OVERDUE_WATCH {
            self.overdue.pop_last();
        }
    }

    /// The person asked to send one of our DMs again (see
    /// [`NodeHandle::retry`](super::NodeHandle::retry)).
    async fn retry(&mut self, id: MessageId) -> Result<(), NodeError> {
        let now = self.engine.clock().wall();
        let Some(m) = self.store.get(&id).await? else { return Err(NodeError::NotOurs) };
        let dm = m.envelope.kind() == festival_core::Kind::SealedDm;
        let marks = self.store.outbox_marks(&id).await?;
        let Some(marks) = marks.filter(|_| dm && m.envelope.author() == self.me) else {
            return Err(NodeError::NotOurs);
        };
        let d = crate::view::delivery(&self.store, &m.envelope, now, self.delivery_timeout_ms).await?;
        if d.state >= DeliveryState::Delivered {
            // It arrived: nothing to send again.
            return Ok(());
        }
        // A second press soon after (the clock set back counts as not soon).
        let last = marks.retried_at.unwrap_or(0);
        if now >= last && now - last < RETRY_MIN_GAP_MS {
            return Err(NodeError::RetryTooSoon);
        }
        // And a cap on all of them: each pushes to every link in reach.
        while self.retries.front().is_some_and(|t| now.saturating_sub(*t) >= 60_000 || *t > now) {
            self.retries.pop_front();
        }
        if self.retries.len() >= MAX_RETRIES_PER_MINUTE {
            return Err(NodeError::RetryTooSoon);
        }
        let (pushed, eff) = self.engine.resend(&id).await?;
        self.apply(eff).await;
        if pushed == 0 {
            // Nobody to send it to: the clock goes on, the reason stays.
            return Err(NodeError::NoOneInReach);
        }
        self.retries.push_back(now);
        self.store.mark_retried(&id, now).await?;
        self.emit_delivery(id).await;
        Ok(())
    }

    /// Tell the UI where one of our messages stands now.
    async fn emit_delivery(&mut self, id: MessageId) {
        let Ok(Some(m)) = self.store.get(&id).await else { return };
        // Only what is shown: not the receipts and profiles we write.
        let shown = matches!(
            m.envelope.kind(),
            festival_core::Kind::Text | festival_core::Kind::SealedDm | festival_core::Kind::Meetup
        );
        if m.envelope.author() != self.me || !shown {
            return;
        }
        let now = self.engine.clock().wall();
        match crate::view::delivery(&self.store, &m.envelope, now, self.delivery_timeout_ms).await {
            Ok(mut delivery) => {
                if delivery.state == DeliveryState::Saved {
                    delivery.waiting = Some(self.waiting());
                }
                if let Some(due) = delivery.overdue_at {
                    self.watch_overdue(id, due);
                }
                self.emit(NodeEvent::Delivery { id, delivery });
            }
            Err(e) => tracing::warn!(%e, "reading a message's delivery failed"),
        }
    }

    /// Why our saved messages wait, from who is in reach now.
    fn waiting(&self) -> Waiting {
        let relay = usize::from(self.relay_link().is_some());
        let open = self.conns.values().filter(|c| c.open).count() + relay;
        Waiting::from_reach(open, self.discovered())
    }

    /// DMs whose "not delivered yet" moment has come: their state, once.
    async fn overdue_due(&mut self) {
        let now = self.engine.clock().wall();
        while let Some(&(due, id)) = self.overdue.first() {
            if due > now {
                break;
            }
            self.overdue.pop_first();
            self.emit_delivery(id).await;
        }
    }

    fn identity(&self) -> &Identity {
        self.engine.node().identity()
    }

    fn peer_limit(&self) -> usize {
        self.peer_limit.unwrap_or(self.limits.max_peers)
    }

    fn emit(&self, e: NodeEvent) {
        let _ = self.events.send(e);
    }

    fn count(&mut self, code: &str) {
        *self.rejected.entry(code.to_owned()).or_default() += 1;
    }

    fn next_wake(&self) -> Instant {
        let now = Instant::now();
        let mut t = now + Duration::from_secs(1);
        // The engine's and the route's timers run on the engine's monotonic
        // clock (see crate::clock), never the wall clock.
        let mono = self.engine.clock().mono();
        if let Some(ms) = self.engine_wake {
            t = t.min(now + Duration::from_millis(ms.saturating_sub(mono)));
        }
        if let Some(rtc) = self.endpoint.next_timeout() {
            t = t.min(Instant::from_std(rtc));
        }
        if let Some(ms) = self.mesh.next_wake() {
            t = t.min(now + Duration::from_millis(ms.saturating_sub(mono)));
        }
        if !self.pending_down.is_empty() {
            t = now;
        }
        if let Some(q) = &self.stun {
            t = t.min(q.next_send.max(now));
        }
        if let Some(r) = &self.relay {
            let mut route = r.route.clone();
            if let Some(ms) = route.trial_at(mono, &RELAY_BREAKER) {
                t = t.min(now + Duration::from_millis(ms.saturating_sub(mono)));
            }
        }
        t.min(self.next_power_read)
    }

    pub async fn run(mut self) {
        loop {
            let wake = self.next_wake();
            tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    None | Some(Command::Shutdown) => break,
                    Some(cmd) => self.on_command(cmd).await,
                },
                r = self.socket.readable() => {
                    if r.is_ok() {
                        // A STUN answer for us is taken before the endpoint sees it.
                        let query = self.stun.as_ref().map(|q| (q.server, q.tid));
                        let mut reflexive = None;
                        let take = |from: SocketAddr, bytes: &[u8]| match query {
                            Some((server, tid)) if from == server => {
                                reflexive = crate::relay::stun::parse_binding_success(bytes, &tid).ok();
                                reflexive.is_some()
                            }
                            _ => false,
                        };
                        let got = webrtc::driver::receive_ready_with(&mut self.endpoint, &self.socket, &mut self.buf, take);
                        if let Err(e) = got {
                            tracing::warn!(error = %e, "UDP receive failed");
                        }
                        if let Some(addr) = reflexive {
                            self.on_reflexive(addr);
                        }
                    }
                }
                accepted = self.listener.accept() => {
                    if let Ok((stream, from)) = accepted {
                        let mine = self.inbound.get(&from.ip()).copied().unwrap_or(0);
                        if self.tasks.len() >= MAX_INBOUND_SIGNALING || mine >= MAX_INBOUND_PER_SOURCE {
                            self.count("signaling_busy");
                        } else {
                            *self.inbound.entry(from.ip()).or_default() += 1;
                            let tx = self.signal_tx.clone();
                            self.tasks.spawn(async move {
                                signal_io::serve(stream, from, tx.clone()).await;
                                let _ = tx.send(SignalEvent::Done { from }).await;
                            });
                        }
                    }
                }
                Some(ev) = self.signal_rx.recv() => self.on_signal(ev).await,
                input = self.engine.loaded() => {
                    let eff = self.engine.handle(input).await;
                    self.apply(eff).await;
                }
                Some(ev) = relay_recv(self.relay_rx.as_mut()) => self.on_relay(ev).await,
                ev = self.discovery.recv(), if self.discovery_open => match ev {
                    Some(ev) => self.on_discovery(ev),
                    None => self.discovery_open = false,
                },
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
            self.drive().await;
        }
        self.stop().await;
    }

    /// Everything that may have become due: power, core timers, dials, and
    /// the WebRTC endpoint's output.
    async fn drive(&mut self) {
        for link in std::mem::take(&mut self.pending_down) {
            let eff = self.engine.handle(Input::LinkDown { link }).await;
            self.apply(eff).await;
        }
        let now = Instant::now();
        if now >= self.next_power_read {
            self.next_power_read = now + POLL_INTERVAL;
            let p = self.power.read();
            if p != self.power_state {
                self.power_state = p;
                if let Err(e) = self.discovery.set_powered(!matches!(p, PowerState::Battery { .. })) {
                    tracing::warn!(error = %e, "could not re-announce our power state");
                }
                let eff = self.engine.handle(Input::Power(p)).await;
                self.apply(eff).await;
            }
        }
        if self.engine_wake.is_some_and(|t| t <= self.engine.clock().mono()) {
            self.engine_wake = None;
            let eff = self.engine.handle(Input::Tick).await;
            self.apply(eff).await;
        }
        if self.mesh.next_wake().is_some_and(|t| t <= self.engine.clock().mono()) {
            self.mesh_input(mesh::Input::Tick);
        }
        self.stun_due().await;
        self.overdue_due().await;
        self.relay_due();
        self.pump_endpoint().await;
    }

    /// Start the relay client when the route allows it (at start, and for
    /// the half-open trial after the breaker opened).
    fn relay_due(&mut self) {
        let mono = self.engine.clock().mono();
        let Some(r) = self.relay.as_mut() else { return };
        if r.route.poll(mono) != RouteAction::Start {
            return;
        }
        let me = Identity::from_secret_bytes(&self.engine.node().identity().secret_bytes());
        let (handle, rx) = RelayClient::spawn(r.cfg.clone(), me);
        tracing::info!(url = %r.cfg.url, "connecting to the relay");
        r.handle = Some(handle);
        r.state = RelayState::Connecting { url: r.cfg.url.clone() };
        self.relay_rx = Some(rx);
    }

    async fn on_relay(&mut self, ev: RelayEvent) {
        // Dates on the wall clock; the route's timers on the monotonic one.
        let (now, mono) = (now_ms(), self.engine.clock().mono());
        let Some(r) = self.relay.as_mut() else { return };
        match ev {
            RelayEvent::Connected { session, relay, stun, via, .. } => {
                r.route.connected(mono);
                if let Some(server) = stun {
                    let mut tid = [0u8; 12];
                    OsRng.fill_bytes(&mut tid);
                    self.stun = Some(StunQuery { server, tid, next_send: Instant::now(), tries: 0 });
                }
                let r = self.relay.as_mut().expect("checked above");
                let link = LinkId(self.next_relay_link);
                self.next_relay_link += 1;
                r.session = Some((session, link, relay));
                self.transports.insert(link, Transport::Relay(session));
                tracing::info!(relay = %relay.short(), link = link.0, via = %via, "relay link up");
                r.state = RelayState::Connected { url: via };
                self.mesh_input(mesh::Input::RelayUp { relay });
                let _ = self.store.peer_seen(&relay, now).await;
                self.emit(NodeEvent::LinkUp { peer: relay, path: LinkPath::Relay });
                let eff = self.engine.handle(Input::LinkUp { link, peer: relay, kind: LinkKind::Relay }).await;
                self.apply(eff).await;
            }
            RelayEvent::Frame { session, bytes } => {
                if let Some((s, link, _)) = r.session {
                    if s == session {
                        let eff = self.engine.handle(Input::Frame { link, bytes }).await;
                        // Authors whose messages reached us through the relay:
                        // peers we could link to directly.
                        let authors: Vec<PeerId> = eff
                            .iter()
                            .filter_map(|e| match e {
                                Effect::Delivered { author, .. } => Some(*author),
                                _ => None,
                            })
                            .collect();
                        if !authors.is_empty() {
                            self.mesh_input(mesh::Input::HeardViaRelay { authors });
                        }
                        self.apply(eff).await;
                    }
                }
            }
            RelayEvent::Disconnected { session, error, retry_in, round_over, via } => {
                let ended = match (session, r.session) {
                    (Some(s), Some((cur, link, relay))) if s == cur => {
                        r.session = None;
                        Some((link, relay))
                    }
                    _ => None,
                };
                let url = if via.is_empty() { r.cfg.url.clone() } else { via };
                let r = self.relay.as_mut().expect("checked above");
                match retry_in {
                    // The client stopped (shutdown): nothing to retry.
                    None => {
                        r.state = RelayState::Offline { url, reason: error.to_string() };
                    }
                    // Moving on to the next instance is no failure of the
                    // route: the breaker counts rounds over all of them.
                    Some(wait) if !round_over => {
                        r.state = RelayState::Offline {
                            url,
                            reason: format!("{error}; trying the next relay in {:.1}s", wait.as_secs_f64()),
                        };
                    }
                    Some(wait) => {
                        if r.route.failed(mono) == RouteAction::Stop {
                            // The breaker opened: no more attempts until its trial.
                            r.handle = None;
                            self.relay_rx = None;
                            let trial = Duration::from_millis(RELAY_BREAKER.open_ms);
                            tracing::info!(error = %error, ?trial, "relay circuit open");
                            r.state = RelayState::Offline {
                                url,
                                reason: format!("{error}; too many failures, next try in {}s", trial.as_secs()),
                            };
                        } else {
                            r.state = RelayState::Offline {
                                url,
                                reason: format!("{error}; retrying in {:.1}s", wait.as_secs_f64()),
                            };
                        }
                    }
                }
                if let Some((link, relay)) = ended {
                    self.transports.remove(&link);
                    self.paths.relay_down();
                    self.mesh_input(mesh::Input::RelayDown);
                    tracing::info!(relay = %relay.short(), link = link.0, error = %error, "relay link down");
                    let _ = self.store.peer_seen(&relay, now).await;
                    self.emit(NodeEvent::LinkDown { peer: relay, reason: error.to_string() });
                    let eff = self.engine.handle(Input::LinkDown { link }).await;
                    self.apply(eff).await;
                }
            }
            RelayEvent::Stored { ids, .. } => {
                tracing::debug!(n = ids.len(), "the relay stored our envelopes");
                for rtt in self.paths.stored(&ids, Instant::now()) {
                    self.mesh_input(mesh::Input::RelayRoundTrip { ms: rtt.as_millis() as u64 });
                }
                // Ours among them now wait at the relay (a relay's ids that
                // are not ours mark nothing).
                match self.store.mark_relay_stored(&ids, self.engine.clock().wall()).await {
                    Ok(marked) => {
                        for id in marked {
                            self.emit_delivery(id).await;
                        }
                    }
                    Err(e) => tracing::warn!(%e, "marking what the relay stored failed"),
                }
            }
            RelayEvent::Rtt { session, rtt } => {
                if r.session.is_some_and(|(s, _, _)| s == session) {
                    self.mesh_input(mesh::Input::RelayRoundTrip { ms: rtt.as_millis() as u64 });
                }
            }
            RelayEvent::Refused { code } => {
                let label = relay_refusal_label(&code, &self.rejected);
                self.count(&label);
            }
            RelayEvent::Signal { from, msg } => self.on_relayed_signal(from, msg).await,
            RelayEvent::Unreachable { peer } => {
                if let Some(conn) = self.pending_upgrade(peer) {
                    let gone = SignalError::Io(std::io::Error::other("the peer is not on the relay"));
                    self.on_dialed(conn, peer, Err(gone)).await;
                }
            }
        }
    }

    /// An offer, answer or refusal from another node, through the relay
    /// (which authenticated `from`). Checked exactly like LAN signaling.
    async fn on_relayed_signal(&mut self, from: PeerId, msg: SignalMsg) {
        match msg {
            SignalMsg::Offer { ref offer, .. } => {
                if offer.from != from {
                    self.count("signaling_spoofed");
                    return;
                }
                // Anyone on the relay can offer: the mesh gives a slot only
                // to an upgrade of ours, someone heard through the relay,
                // or someone met or verified (which the store knows).
                let met = matches!(self.store.peer(&from).await, Ok(Some(p)) if p.verified || p.first_seen.is_some());
                let answer = self.on_offer(msg, "the relay", Via::Relay { met });
                if let Some(handle) = self.relay.as_ref().and_then(|r| r.handle.as_ref()) {
                    let _ = handle.send_signal(from, &answer);
                }
            }
            SignalMsg::Answer { .. } | SignalMsg::Reject { .. } => match self.pending_upgrade(from) {
                Some(conn) => self.on_dialed(conn, from, Ok(msg)).await,
                None => self.count("signaling_unexpected"),
            },
        }
    }

    /// Our offer to `peer` through the relay that waits for its answer.
    fn pending_upgrade(&self, peer: PeerId) -> Option<ConnId> {
        self.conns.iter().find(|(_, c)| c.peer == peer && c.upgrade && c.nonce.is_some()).map(|(id, _)| *id)
    }

    /// Send (or send again) our STUN binding request when it is due.
    async fn stun_due(&mut self) {
        let Some(q) = self.stun.as_mut() else { return };
        let now = Instant::now();
        if now < q.next_send {
            return;
        }
        if q.tries >= STUN_TRIES {
            tracing::info!(server = %q.server, "no STUN answer from the relay: host candidates only");
            self.stun = None;
            return;
        }
        q.tries += 1;
        q.next_send = now + Duration::from_millis(500) * (1 << (q.tries - 1));
        let req = crate::relay::stun::binding_request(&q.tid);
        if let Err(e) = self.socket.send_to(&req, q.server).await {
            tracing::debug!(error = %e, "STUN request not sent");
        }
    }

    /// Our address as the relay saw it: offered as a server-reflexive
    /// candidate from now on (unless it is a host address: no NAT).
    fn on_reflexive(&mut self, addr: SocketAddr) {
        self.stun = None;
        self.paths.reflexive = Some(addr);
        if self.endpoint.add_reflexive(addr) {
            tracing::info!(%addr, "server-reflexive candidate from the relay's STUN");
        } else {
            tracing::debug!(%addr, "the relay sees our host address: no NAT in between");
        }
    }

    /// The relay link's core link id, while a session is up.
    fn relay_link(&self) -> Option<(SessionId, LinkId, PeerId)> {
        self.relay.as_ref().and_then(|r| r.session)
    }

    fn send_relay(&mut self, session: SessionId, bytes: Vec<u8>) {
        let Some(handle) = self.relay.as_ref().and_then(|r| r.handle.as_ref()) else { return };
        match handle.send_frame(session, bytes) {
            Ok(()) => {}
            Err(RelaySendError::Full) => {
                tracing::warn!("relay queue full; frame dropped (sync will repair)");
                self.count("relay_queue_full");
            }
            Err(RelaySendError::Stopped) => {}
        }
    }

    async fn pump_endpoint(&mut self) {
        loop {
            let events = self.endpoint.poll(webrtc::rtc_now());
            if events.is_empty() {
                return;
            }
            // Frames that arrived together go to the engine together: the
            // envelopes among them are committed in one transaction.
            let mut frames = Vec::new();
            for e in webrtc::driver::send_transmits(&self.socket, events).await {
                match e {
                    EndpointEvent::Data(conn, bytes) if self.conns.get(&conn).is_some_and(|c| c.open) => {
                        frames.push(Input::Frame { link: self.conns[&conn].link, bytes });
                    }
                    other => {
                        self.frames_in(std::mem::take(&mut frames)).await;
                        self.on_endpoint(other).await;
                    }
                }
            }
            self.frames_in(frames).await;
        }
    }

    async fn frames_in(&mut self, frames: Vec<Input>) {
        if !frames.is_empty() {
            let eff = self.engine.handle_many(frames).await;
            self.apply(eff).await;
        }
    }

    async fn on_endpoint(&mut self, e: EndpointEvent) {
        match e {
            EndpointEvent::Transmit { .. } => {}
            EndpointEvent::Open(conn) => {
                let Some(c) = self.conns.get_mut(&conn) else { return };
                c.open = true;
                let (link, peer, upgrade) = (c.link, c.peer, c.upgrade);
                if self.mesh.link(link).is_some_and(|l| l.outbound) {
                    self.paths.opened(upgrade);
                }
                self.mesh_input(mesh::Input::Opened { link });
                let _ = self.store.peer_seen(&peer, now_ms()).await;
                tracing::info!(peer = %peer.short(), %conn, "link up");
                self.emit(NodeEvent::LinkUp { peer, path: LinkPath::Lan });
                let eff = self.engine.handle(Input::LinkUp { link, peer, kind: LinkKind::Lan }).await;
                self.apply(eff).await;
            }
            EndpointEvent::Data(conn, bytes) => {
                if let Some(link) = self.conns.get(&conn).filter(|c| c.open).map(|c| c.link) {
                    let eff = self.engine.handle(Input::Frame { link, bytes }).await;
                    self.apply(eff).await;
                }
            }
            EndpointEvent::Writable(conn) => self.flush(conn),
            EndpointEvent::Closed(conn, reason) => {
                let Some(c) = self.forget_conn(conn) else { return };
                tracing::info!(peer = %c.peer.short(), %conn, ?reason, "link closed");
                self.mesh_input(mesh::Input::Closed { link: c.link });
                if c.open {
                    let _ = self.store.peer_seen(&c.peer, now_ms()).await;
                    self.emit(NodeEvent::LinkDown { peer: c.peer, reason: format!("{reason:?}") });
                    let eff = self.engine.handle(Input::LinkDown { link: c.link }).await;
                    self.apply(eff).await;
                }
            }
        }
    }

    /// The median ICE round trip of the open data channels.
    fn lan_rtt(&self) -> Option<Duration> {
        median(self.conns.iter().filter(|(_, c)| c.open).filter_map(|(id, _)| self.endpoint.rtt(*id)).collect())
    }

    fn discovered(&self) -> usize {
        self.mesh.discovered()
    }

    /// Feed the mesh one input and carry out what it asks for. Our own
    /// failures in doing so (an offer we cannot create or send) go back in
    /// as inputs, in turn.
    fn mesh_input(&mut self, input: mesh::Input) -> Vec<MeshOut> {
        let mut answers = Vec::new();
        let mut inputs = VecDeque::from([input]);
        while let Some(input) = inputs.pop_front() {
            // What the sync layer knows of each open link, for choosing the
            // one to give up.
            let values: Vec<(LinkId, bool, usize)> = self
                .conns
                .iter()
                .filter(|(_, c)| c.open)
                .filter_map(|(_, c)| self.engine.node().link_value(c.link).map(|v| (c.link, v.powered, v.shared_rooms)))
                .collect();
            for (link, powered, rooms) in values {
                self.mesh.set_value(link, powered, rooms);
            }
            let mono = self.engine.clock().mono();
            for out in self.mesh.handle(input, mono) {
                match out {
                    MeshOut::Dial { link, peer, addrs, port, upgrade } => {
                        if let Err(again) = self.dial(link, peer, addrs, port, upgrade) {
                            inputs.push_back(again);
                        }
                    }
                    MeshOut::Close { link, peer, why, .. } => {
                        if let Some(Transport::Lan(conn)) = self.transports.get(&link).copied() {
                            self.drop_conn(conn, peer, why);
                        }
                    }
                    MeshOut::Accept { .. } | MeshOut::Refuse { .. } => answers.push(out),
                    // Read back through `Mesh::next_wake`.
                    MeshOut::WakeAt(_) => {}
                }
            }
        }
        answers
    }

    /// Offer `peer` a data channel on mesh link `link`: over TCP to its
    /// advertised signaling port, or (`upgrade`) through the relay. What
    /// failed at once comes back as the mesh's input.
    fn dial(
        &mut self,
        link: LinkId,
        peer: PeerId,
        addrs: Vec<std::net::IpAddr>,
        port: u16,
        upgrade: bool,
    ) -> Result<(), mesh::Input> {
        let conn = self.new_conn();
        let failed = mesh::Input::DialFailed { link, busy: false };
        let sdp = match self.endpoint.create_offer(conn, webrtc::rtc_now()) {
            Ok(sdp) => sdp,
            Err(e) => {
                tracing::warn!(error = %e, "cannot create an offer");
                return Err(failed);
            }
        };
        let mut nonce = [0u8; 16];
        OsRng.fill_bytes(&mut nonce);
        let offer = Offer {
            version: SIGNAL_VERSION,
            festival: self.festival.clone(),
            from: self.me,
            to: peer,
            nonce,
            sent_at: now_ms(),
            sdp,
        }
        .sign(self.identity());
        let c = Conn { link, peer, nonce: Some(nonce), upgrade, open: false, queue: SendQueue::default() };
        self.add_conn(conn, c);
        self.paths.dialed(upgrade);
        if upgrade {
            tracing::info!(peer = %peer.short(), %conn, "offering a direct link through the relay");
            let sent = self.relay.as_ref().and_then(|r| r.handle.as_ref()).map(|h| h.send_signal(peer, &offer));
            if !matches!(sent, Some(Ok(()))) {
                self.forget_conn(conn);
                let _ = self.endpoint.close(conn);
                return Err(failed);
            }
            return Ok(());
        }
        tracing::debug!(peer = %peer.short(), %conn, "dialing");
        self.tasks.spawn(signal_io::dial(conn, peer, addrs, port, offer, self.signal_tx.clone()));
        Ok(())
    }

    async fn on_signal(&mut self, ev: SignalEvent) {
        match ev {
            SignalEvent::Dialed { conn, peer, result } => self.on_dialed(conn, peer, result).await,
            SignalEvent::Incoming { msg, from, reply } => {
                let answer = self.on_offer(msg, from, Via::Lan);
                let _ = reply.send(answer);
            }
            SignalEvent::Done { from } => {
                if let std::collections::hash_map::Entry::Occupied(mut e) = self.inbound.entry(from.ip()) {
                    *e.get_mut() -= 1;
                    if *e.get() == 0 {
                        e.remove();
                    }
                }
            }
            SignalEvent::BadInbound { from, error } => {
                tracing::debug!(%from, %error, "bad signaling connection");
                self.count(&format!("signaling_{}", error.code()));
                self.emit(NodeEvent::Rejected { peer: None, code: format!("signaling_{}", error.code()), count: 1 });
            }
        }
    }

    /// The answer (or refusal, or failure) to an offer we sent, over TCP
    /// or through the relay.
    async fn on_dialed(&mut self, conn: ConnId, peer: PeerId, result: Result<SignalMsg, SignalError>) {
        let Some((nonce, upgrade, link)) = self.conns.get(&conn).and_then(|c| Some((c.nonce?, c.upgrade, c.link)))
        else {
            return;
        };
        let outcome = match result {
            Ok(SignalMsg::Answer { answer, sig }) => {
                verify_answer(&answer, &sig, &self.me, &peer, &nonce).and_then(|()| {
                    self.endpoint
                        .accept_answer(conn, &answer.sdp, webrtc::rtc_now())
                        .map_err(|_| SignalError::Malformed)
                })
            }
            Ok(SignalMsg::Reject { reason }) => Err(SignalError::Rejected(reason)),
            Ok(_) => Err(SignalError::Unexpected),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.nonce = None;
                }
                self.mesh_input(mesh::Input::Answered { link });
            }
            Err(e) => {
                tracing::debug!(peer = %peer.short(), error = %e, upgrade, "dial failed");
                if !matches!(e, SignalError::Rejected(_) | SignalError::Io(_)) {
                    self.count(&format!("signaling_{}", e.code()));
                }
                self.forget_conn(conn);
                let _ = self.endpoint.close(conn);
                let busy = matches!(&e, SignalError::Rejected(r) if r.contains(Refusal::Full.reason()));
                self.mesh_input(mesh::Input::DialFailed { link, busy });
            }
        }
    }

    /// A peer's offer, over TCP or through the relay: checked (signature,
    /// festival, freshness), then the mesh decides whether it gets a slot.
    fn on_offer(&mut self, msg: SignalMsg, from: impl std::fmt::Display, via: Via) -> SignalMsg {
        let SignalMsg::Offer { offer, sig } = msg else {
            self.count("signaling_unexpected");
            return SignalMsg::Reject { reason: "expected an offer".into() };
        };
        if let Err(e) = self.offers.verify(&offer, &sig, now_ms()) {
            tracing::info!(%from, error = %e, "offer refused");
            self.count(&format!("signaling_{}", e.code()));
            // Until the signature verified, `from` is only a claim: blame nobody.
            let verified = !matches!(e, SignalError::Version(_) | SignalError::BadSignature);
            let peer = verified.then_some(offer.from);
            self.emit(NodeEvent::Rejected { peer, code: format!("signaling_{}", e.code()), count: 1 });
            return SignalMsg::Reject { reason: e.to_string() };
        }
        let peer = offer.from;
        let answer = self.mesh_input(mesh::Input::Offer { peer, sent_at: offer.sent_at, via });
        let link = match answer
            .into_iter()
            .find(|o| matches!(o, MeshOut::Accept { peer: p, .. } | MeshOut::Refuse { peer: p, .. } if *p == peer))
        {
            Some(MeshOut::Accept { link, .. }) => link,
            Some(MeshOut::Refuse { why, .. }) => {
                if matches!(why, Refusal::Banned | Refusal::Superseded | Refusal::Stranger) {
                    self.count(&format!("signaling_{}", why.code()));
                }
                return SignalMsg::Reject { reason: why.reason().into() };
            }
            _ => unreachable!("the mesh answers every offer"),
        };
        let conn = self.new_conn();
        match self.endpoint.accept_offer(conn, &offer.sdp, webrtc::rtc_now()) {
            Ok(sdp) => {
                let c = Conn { link, peer, nonce: None, upgrade: false, open: false, queue: SendQueue::default() };
                self.add_conn(conn, c);
                Answer { version: SIGNAL_VERSION, from: self.me, to: peer, nonce: offer.nonce, sdp }
                    .sign(self.identity())
            }
            Err(e) => {
                self.count("signaling_bad_sdp");
                self.mesh_input(mesh::Input::Closed { link });
                SignalMsg::Reject { reason: e.to_string() }
            }
        }
    }

    /// End a connection the mesh closed (the endpoint reports no `Closed`
    /// for those) and tell the core and the user if it was open.
    fn drop_conn(&mut self, conn: ConnId, peer: PeerId, why: &str) {
        let _ = self.endpoint.close(conn);
        let Some(c) = self.forget_conn(conn) else { return };
        tracing::debug!(peer = %peer.short(), %conn, why, "closing a link");
        if c.open {
            self.emit(NodeEvent::LinkDown { peer: c.peer, reason: why.to_owned() });
            self.pending_down.push(c.link);
        }
    }

    /// A number for a new WebRTC connection.
    fn new_conn(&mut self) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        conn
    }

    fn add_conn(&mut self, conn: ConnId, c: Conn) {
        self.transports.insert(c.link, Transport::Lan(conn));
        self.conns.insert(conn, c);
    }

    /// A connection ended or was given up: it carries its link no more.
    fn forget_conn(&mut self, conn: ConnId) -> Option<Conn> {
        let c = self.conns.remove(&conn)?;
        if self.transports.get(&c.link) == Some(&Transport::Lan(conn)) {
            self.transports.remove(&c.link);
        }
        Some(c)
    }

    fn on_discovery(&mut self, ev: DiscoveryEvent) {
        match ev {
            DiscoveryEvent::Found { peer, addrs, port, powered, .. } => {
                self.mesh_input(mesh::Input::Discovered { peer, addrs, port, powered });
                self.emit(NodeEvent::Discovered { peer });
            }
            // A new address or port. A record is a claim anyone on the LAN
            // can make, so the mesh never drops an open link (DTLS with the
            // key it claims, then a signed handshake) for one.
            DiscoveryEvent::Updated { peer, addrs, port, powered, .. } => {
                self.mesh_input(mesh::Input::Discovered { peer, addrs, port, powered });
            }
            DiscoveryEvent::Lost { peer } => {
                self.mesh_input(mesh::Input::Lost { peer });
                self.emit(NodeEvent::Lost { peer });
            }
        }
    }

    /// Send a frame on a direct link, or queue it while the link's send
    /// buffer is full, by urgency (`sendq`): a DM or a new message of ours
    /// never waits behind the crowd's messages, nor anything behind
    /// megabytes of catch-up (a flood of others' mail, say).
    fn send_conn(&mut self, conn: ConnId, bytes: Vec<u8>) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        let admitted = match c.queue.admit(&bytes) {
            Admit::SendNow => match send_frame(&mut self.endpoint, conn, &bytes) {
                Ok(()) => return,
                Err(webrtc::SendError::Full { .. }) => c.queue.enqueue(bytes),
                Err(e) => {
                    tracing::debug!(%conn, error = %e, "frame not sent");
                    return;
                }
            },
            other => other,
        };
        if admitted == Admit::Dropped {
            tracing::warn!(%conn, "send queue full; frame dropped (sync will repair)");
        }
    }

    /// The send buffer has room again: the most urgent frames first.
    fn flush(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        while let Some(bytes) = c.queue.front() {
            match send_frame(&mut self.endpoint, conn, bytes) {
                Ok(()) => {
                    c.queue.pop_front();
                }
                Err(webrtc::SendError::Full { .. }) => return,
                Err(_) => {
                    c.queue.pop_front();
                }
            }
        }
    }

    async fn apply(&mut self, effects: Vec<Effect>) {
        // Meet-ups whose answers changed: one card each, however many
        // answers the batch held (a catch-up of a crowd's answers is one
        // event per card, not one per answer).
        let mut cards = std::collections::BTreeSet::new();
        // Photos some of whose chunks came: looked at once each per batch;
        // `shown`: messages shown in this batch (a photo shown whole needs
        // no second event).
        let (mut photos, mut shown) = (BTreeSet::new(), BTreeSet::new());
        // Our messages whose delivery moved: one event each per batch (a
        // receipt names up to 64; a batch may hold many receipts).
        let mut moved = BTreeSet::new();
        for e in effects {
            match e {
                Effect::Send { link, bytes } => match self.transports.get(&link).copied() {
                    Some(Transport::Relay(session)) => {
                        self.paths.frame_out(bytes.len(), true);
                        self.send_relay(session, bytes)
                    }
                    Some(Transport::Lan(conn)) => {
                        self.paths.frame_out(bytes.len(), false);
                        self.send_conn(conn, bytes)
                    }
                    // The link is gone (the core hears of it next).
                    None => {}
                },
                Effect::Delivered { id, .. } => match self.delivered(id).await {
                    Some(Changed::Card(meetup, room)) => {
                        cards.insert((meetup, room));
                    }
                    Some(Changed::Photo(photo, room, author, seq)) => {
                        photos.insert((photo, room, author, seq));
                    }
                    Some(Changed::Shown) => {
                        shown.insert(id);
                    }
                    None => {}
                },
                Effect::Sent { id, kind, .. } => {
                    self.paths.sent_message(id, kind == LinkKind::Relay, Instant::now());
                    let path = match kind {
                        LinkKind::Lan => LinkPath::Lan,
                        LinkKind::Relay => LinkPath::Relay,
                    };
                    self.emit(NodeEvent::Sent { id, path });
                    moved.insert(id);
                }
                Effect::Refused { peer, report, .. } => {
                    for (code, n) in &report.counts {
                        *self.rejected.entry((*code).to_owned()).or_default() += n;
                    }
                    let code = report.first.code().to_owned();
                    self.emit(NodeEvent::Rejected { peer: Some(peer), code, count: report.total() });
                }
                Effect::Misbehaving { link, peer } => self.misbehaving(link, peer),
                Effect::Equivocator { author } => {
                    self.names = None;
                    self.emit(NodeEvent::Equivocation { peer: author });
                }
                Effect::Receipt { from, status, ids } => {
                    moved.extend(ids.iter().copied());
                    self.emit(NodeEvent::Receipt { from, status, ids });
                }
                Effect::Limits(l) => {
                    self.limits = l;
                    self.mesh_input(mesh::Input::SetLimit(self.peer_limit()));
                    self.endpoint.set_ice_timing(Duration::from_millis(l.keepalive_ms), webrtc::ICE_MAX_RETRANSMITS);
                    self.emit(NodeEvent::Power { mode: PowerMode::new(self.power_state, l) });
                }
                Effect::WakeAt(t) => self.engine_wake = Some(t),
                Effect::Stored { .. } => {}
                Effect::StoreFailed { id, error } => tracing::error!(?id, %error, "could not store a message"),
            }
        }
        for (meetup, room) in cards {
            self.meetup_changed(meetup, room).await;
        }
        for (photo, room, author, seq) in photos {
            if !shown.contains(&photo) {
                self.photo_changed(photo, &room, author, seq).await;
            }
        }
        for id in moved {
            self.emit_delivery(id).await;
        }
    }

    /// A meet-up's card as it stands after new answers: only a meet-up of
    /// the answers' room (an answer names any id it likes), by someone not
    /// blocked here, still up.
    async fn meetup_changed(&mut self, id: MessageId, room: RoomId) {
        let Ok(Some(m)) = self.store.get(&id).await else { return };
        let env = &m.envelope;
        if env.room() != &room
            || env.kind() != festival_core::Kind::Meetup
            || self.engine.node().is_blocked(&env.author())
        {
            return;
        }
        if let Some(v) = self.view_now(&m).await {
            self.emit(NodeEvent::MeetupChanged(v));
        }
    }

    /// A stored message as it is shown now (names fresh), if it is shown.
    async fn view_now(&mut self, m: &festival_store::StoredMessage) -> Option<MessageView> {
        self.refresh_names().await;
        let (_, names) = self.names.as_ref()?;
        let now = self.engine.clock().wall();
        crate::view::view(&self.store, self.engine.node().identity(), names, m, now, self.delivery_timeout_ms)
            .await
            .ok()
            .flatten()
    }

    /// A photo some of whose pieces came: its message, once they are all
    /// here. A piece names any id it likes: only a photo it is a piece of
    /// counts (by the same author, in the same room, the header at the seq
    /// the piece's place implies), by someone not blocked here.
    async fn photo_changed(&mut self, id: MessageId, room: &RoomId, author: PeerId, seq: u64) {
        let Ok(Some(m)) = self.store.get(&id).await else { return };
        let env = &m.envelope;
        if env.room() != room
            || env.author() != author
            || env.seq() != seq
            || env.kind() != festival_core::Kind::Photo
            || self.engine.node().is_blocked(&env.author())
        {
            return;
        }
        if let Some(v) = self.view_now(&m).await {
            if matches!(&v.body, MessageBody::Photo(p) if p.complete) {
                self.emit(NodeEvent::PhotoReady(v));
            }
        }
    }

    /// Reload the names shown with messages when they are stale.
    async fn refresh_names(&mut self) {
        let stale = self.names.as_ref().is_none_or(|(at, _)| at.elapsed() > NAMES_FRESH);
        if stale {
            match Names::load(&self.store, self.me, &self.name).await {
                Ok(n) => self.names = Some((Instant::now(), n)),
                Err(e) => tracing::warn!(%e, "loading names failed"),
            }
        }
    }

    /// A link sent what no honest peer sends, again and again: close it,
    /// and neither dial nor accept the peer for a while.
    fn misbehaving(&mut self, link: LinkId, peer: PeerId) {
        self.count("link_misbehaving");
        if self.relay_link().is_some_and(|(_, l, _)| l == link) {
            // The relay speaks for many; its session stays (its own limits
            // police its nodes), but this is counted and logged.
            tracing::warn!(relay = %peer.short(), "the relay sent what no honest node sends");
            return;
        }
        tracing::info!(peer = %peer.short(), link = link.0, "dropping a link that misbehaved");
        self.mesh_input(mesh::Input::Misbehaved { link });
    }

    /// Show a newly stored message; an answer to a meet-up returns the
    /// meet-up's (id, room) instead, for `apply` to show the card once, and
    /// a photo's chunk the photo's.
    async fn delivered(&mut self, id: MessageId) -> Option<Changed> {
        let Ok(Some(m)) = self.store.get(&id).await else { return None };
        let env = &m.envelope;
        match env.parsed_body() {
            // Shown as they count (Effect::Receipt), not as they arrive.
            Body::Receipt(_) | Body::SealedReceipt(_) => None,
            Body::Profile(p) => {
                self.names = None;
                self.emit(NodeEvent::PeerName { peer: env.author(), name: p.name });
                None
            }
            Body::Announcement(a) => {
                // Only the organiser's are taken (the core checks the key).
                if a.until > self.engine.clock().wall() {
                    self.emit(NodeEvent::Announcement(AnnouncementView::new(env, a)));
                }
                None
            }
            // Someone blocked here: kept for others, not shown.
            Body::Text(_)
            | Body::SealedDm(_)
            | Body::Meetup(_)
            | Body::MeetupReply(_)
            | Body::SealedGroup(_)
            | Body::Photo(_)
            | Body::PhotoChunk(_)
                if self.engine.node().is_blocked(&env.author()) =>
            {
                None
            }
            // An answer changes its meet-up's card (the store has tallied
            // it): shown once per batch of effects (see `apply`).
            Body::MeetupReply(r) => Some(Changed::Card(r.meetup, env.room().clone())),
            Body::PhotoChunk(c) => Some(Changed::Photo(
                c.photo,
                env.room().clone(),
                env.author(),
                env.seq().saturating_sub(1 + u64::from(c.index)),
            )),
            Body::Text(_) | Body::SealedDm(_) | Body::Meetup(_) | Body::SealedGroup(_) | Body::Photo(_) => {
                let for_me =
                    matches!(env.parsed_body(), Body::SealedGroup(g) if g.members.binary_search(&self.me).is_ok());
                if for_me {
                    // Its group's history and state (the store opens what
                    // ingest queued; others' group mail is only carried).
                    if let Err(e) = self.store.index_groups(self.engine.node().identity(), GROUP_INDEX_STEP).await {
                        tracing::warn!(%e, "opening group messages failed");
                    }
                }
                if let Some(mut v) = self.view_now(&m).await {
                    let waiting = self.waiting();
                    if let Some(d) = v.delivery.as_mut() {
                        if d.state == DeliveryState::Saved {
                            d.waiting = Some(waiting);
                        }
                        if let Some(due) = d.overdue_at {
                            self.watch_overdue(v.id, due);
                        }
                    }
                    let complete = matches!(&v.body, MessageBody::Photo(p) if p.complete);
                    self.emit(NodeEvent::Message(v));
                    if complete {
                        return Some(Changed::Shown);
                    }
                }
                None
            }
        }
    }

    async fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Send { room, content, reply } => {
                let r = self.engine.send(room, content).await;
                let r = match r {
                    Ok((id, eff)) => {
                        self.apply(eff).await;
                        Ok(id)
                    }
                    Err(e) => Err(NodeError::from(e)),
                };
                let _ = reply.send(r);
            }
            Command::Join { room, name, reply } => {
                let r = self.store.join_room(&room, &name, now_ms()).await;
                if r.is_ok() {
                    let eff = self.engine.handle(Input::JoinRoom(room.clone())).await;
                    self.apply(eff).await;
                }
                let _ = reply.send(r.map(|_| room).map_err(NodeError::from));
            }
            Command::MarkRead { room, ids, reply } => {
                // The DM mailbox is not a joined room: its read state is the receipts.
                let r = if room.is_direct() { Ok(()) } else { self.store.mark_room_read(&room, now_ms()).await };
                let eff = self.engine.mark_read(room, &ids).await;
                self.apply(eff).await;
                let _ = reply.send(r.map_err(NodeError::from));
            }
            Command::Block { peer, blocked, reply } => {
                // Kept first: a block that is not kept is not applied.
                let r = self.store.set_person_blocked(&peer, blocked, self.engine.clock().wall()).await;
                if r.is_ok() {
                    let eff = self.engine.handle(Input::Block { peer, blocked }).await;
                    self.apply(eff).await;
                }
                let _ = reply.send(r.map_err(NodeError::from));
            }
            Command::Retry { id, reply } => {
                let r = self.retry(id).await;
                let _ = reply.send(r);
            }
            Command::Rename { name, reply } => {
                let r: Result<(), NodeError> = async {
                    festival_core::body::check_name(&name).map_err(festival_core::sync::SendError::from)?;
                    self.store.set_name(&name).await?;
                    let (_, eff) = self.engine.send(RoomId::festival(), Content::Profile(name.clone())).await?;
                    self.apply(eff).await;
                    self.name = name;
                    Ok(())
                }
                .await;
                let _ = reply.send(r);
            }
            Command::Peers { reply } => {
                let linked: BTreeSet<PeerId> = self.conns.values().filter(|c| c.open).map(|c| c.peer).collect();
                let via_relay = self.relay_link().map(|(_, _, relay)| relay);
                let known = self.store.peers().await.unwrap_or_default();
                self.names = None;
                self.refresh_names().await;
                let names = self.names.as_ref().map(|(_, n)| n);
                let mesh = &self.mesh;
                let out = status::peer_views(self.me, known, &linked, via_relay, names, |p| mesh.is_discovered(p));
                let _ = reply.send(out);
            }
            Command::Status { reply } => {
                let bad_bundles = self.endpoint.stats().malformed_bundles;
                let rejected =
                    status::rejected(&self.rejected, self.discovery.ignored(), bad_bundles, self.mesh.forgotten());
                let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
                let relay = self.relay.as_ref().map_or(RelayState::NotConfigured, |r| r.state.clone());
                let _ = reply.send(Status {
                    peer: self.me,
                    fingerprint: self.me.fingerprint(),
                    name: self.name.clone(),
                    festival: self.festival.clone(),
                    p2p: self.discovery_open,
                    links: count(self.conns.values().filter(|c| c.open).count()),
                    discovered: count(self.discovered()),
                    relay,
                    power: PowerMode::new(self.power_state, self.limits),
                    peer_limit: count(self.peer_limit()),
                    signaling_port: self.listener.local_addr().map_or(0, |a| a.port()),
                    udp_port: self.socket.local_addr().map_or(0, |a| a.port()),
                    rejected,
                    blocked_dropped: self.engine.node().stats().blocked_dropped,
                    paths: self.paths.view(
                        self.lan_rtt(),
                        RelayPath {
                            rtt: self.mesh.relay_rtt().map(Duration::from_millis),
                            slow: self.mesh.relay_slow(),
                        },
                    ),
                });
            }
            Command::Shutdown => {}
        }
    }

    async fn stop(mut self) {
        if let Some(handle) = self.relay.as_mut().and_then(|r| r.handle.take()) {
            // Close the socket cleanly; the relay notices the link down.
            let _ = tokio::time::timeout(Duration::from_secs(2), handle.shutdown()).await;
        }
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for c in conns {
            let _ = self.endpoint.close(c);
        }
        // Let the close notifications leave before the socket goes.
        let events = self.endpoint.poll(webrtc::rtc_now());
        let _ = webrtc::driver::send_transmits(&self.socket, events).await;
        self.tasks.shutdown().await;
        if let Err(e) = self.discovery.shutdown().await {
            tracing::debug!(error = %e, "mDNS goodbye failed");
        }
        self.store.close().await;
        tracing::info!(peer = %self.me.short(), "node stopped");
    }
}

/// Distinct `relay_refused_*` labels kept: the relay names the code, and a
/// relay that sends a new string each time must not grow the counters.
const MAX_RELAY_REFUSAL_LABELS: usize = 32;

/// The counter label for a refusal the relay reported: `relay_refused_<code>`
/// for a code that looks like one (1 to 40 of `a-z _`) while fewer than
/// [`MAX_RELAY_REFUSAL_LABELS`] are kept, else `relay_refused_other`.
fn relay_refusal_label(code: &str, counted: &BTreeMap<String, u64>) -> String {
    let label = format!("relay_refused_{code}");
    let plain = (1..=40).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    let kept = counted.keys().filter(|k| k.starts_with("relay_refused_")).count();
    if plain && (counted.contains_key(&label) || kept < MAX_RELAY_REFUSAL_LABELS) {
        label
    } else {
        "relay_refused_other".to_owned()
    }
}

/// The next event of the relay client, if one runs; never otherwise.
async fn relay_recv(rx: Option<&mut mpsc::Receiver<RelayEvent>>) -> Option<RelayEvent> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// What a stored message changed besides itself (see `Actor::apply`).
enum Changed {
    /// A meet-up's card (id, room): an answer to it came.
    Card(MessageId, RoomId),
    /// A photo (its header's id), and the room, author and header seq its
    /// piece implies: one of its pieces came.
    Photo(MessageId, RoomId, PeerId, u64),
    /// The message was shown whole (a photo with all its chunks).
    Shown,
}

/// Hand a frame to a direct link's channel: bulk (sync batches, photos'
/// pieces) under the lower soft limit, so what is more urgent waits behind
/// little of it (see [`webrtc::BULK_BUFFER_BYTES`]).
fn send_frame(endpoint: &mut webrtc::Endpoint, conn: ConnId, bytes: &[u8]) -> Result<(), webrtc::SendError> {
    if festival_core::Frame::priority(bytes) == festival_core::frame::Priority::Bulk {
        endpoint.send_bulk(conn, bytes)
    } else {
        endpoint.send(conn, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relay_cannot_grow_the_refusal_labels() {
        let mut counted = BTreeMap::new();
        assert_eq!(relay_refusal_label("storage_quota", &counted), "relay_refused_storage_quota");
        assert_eq!(relay_refusal_label("Storage Quota!", &counted), "relay_refused_other");
        assert_eq!(relay_refusal_label(&"a".repeat(41), &counted), "relay_refused_other");
        for i in 0..1000 {
            let code: String = format!("x{i}").chars().map(|c| if c.is_ascii_digit() { 'a' } else { c }).collect();
            let code = format!("{code}_{}", "b".repeat(i % 30));
            let label = relay_refusal_label(&code, &counted);
            *counted.entry(label).or_insert(0u64) += 1;
        }
        assert!(counted.len() <= MAX_RELAY_REFUSAL_LABELS + 1, "{} labels", counted.len());
        assert!(counted.contains_key("relay_refused_other"));
        // One already counted keeps its own label.
        let first = counted.keys().find(|k| *k != "relay_refused_other").unwrap().clone();
        let code = first.trim_start_matches("relay_refused_").to_owned();
        assert_eq!(relay_refusal_label(&code, &counted), first);
    }
}
