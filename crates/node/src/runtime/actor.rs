//! The node's event loop. One task owns everything mutable; it waits on its
//! inbox, the UDP socket, the signaling listener, signaling results, mDNS
//! events and the next timer (core or WebRTC), then drives what became due.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use festival_core::body::Body;
use festival_core::policy::{Limits, PowerState};
use festival_core::sync::{Config, Content, Input, LinkKind};
use festival_core::{Identity, LinkId, MessageId, PeerId, RoomId};
use festival_store::Store;
use rand_core::{OsRng, RngCore};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinSet;

use super::config::{check_festival, NodeConfig, PowerConfig, StartError};
use super::events::{DeliveryState, LinkPath, NodeEvent, PeerPath, PeerView, PowerMode, RelayState, Status, Waiting};
use super::handle::NodeError;
use super::links::Links;
use super::paths::{median, Paths};
use super::relay_route::{RelayRoute, RouteAction, RELAY_BREAKER};
use super::signal_io::{self, SignalEvent};
use crate::clock::now_ms;
use crate::discovery::{Advert, Discovery, DiscoveryEvent, MdnsHub};
use crate::engine::{Effect, Engine};
use crate::local::{LocalError, LocalNode};
use crate::names::Names;
use crate::power::{FixedPower, PowerSource, POLL_INTERVAL};
use crate::relay::client::jitter;
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
/// Frames queued per link while its send buffer is full, in each of its two
/// queues (live frames, sync batches: ~16 MiB each at worst); beyond it
/// frames are dropped and sync repairs the loss.
const MAX_QUEUED_FRAMES: usize = 64;
/// How long the names (verified marks, lookalike flags) shown with messages
/// may be stale: they are reloaded at most this often while messages flow.
const NAMES_FRESH: Duration = Duration::from_secs(2);

pub enum Command {
    Send { room: RoomId, content: Content, reply: oneshot::Sender<Result<MessageId, NodeError>> },
    Join { room: RoomId, name: String, reply: oneshot::Sender<Result<RoomId, NodeError>> },
    MarkRead { room: RoomId, ids: Vec<MessageId>, reply: oneshot::Sender<Result<(), NodeError>> },
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

struct Conn {
    peer: PeerId,
    /// We dialed it (counts against the outbound share of the limit).
    outbound: bool,
    /// The nonce of our offer, while we wait for the answer.
    nonce: Option<[u8; 16]>,
    /// For a connection the peer dialed: its offer's `sent_at`. Two offers
    /// from one peer can arrive out of order (a redial while the first was
    /// in flight); the older one must not replace the newer.
    offered_at: Option<u64>,
    /// Signaled through the relay: an upgrade from the relay path.
    upgrade: bool,
    open: bool,
    /// Frames waiting for room in the send buffer: everything but sync
    /// batches, which wait in `bulk` and go only when this is empty.
    queue: VecDeque<Vec<u8>>,
    bulk: VecDeque<Vec<u8>>,
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
    links: Links,
    conns: HashMap<ConnId, Conn>,
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
}

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
        let core = Config { message_lifetime_ms: cfg.retention.lifetime_ms, ..Config::default() };
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
                    ..RelayClientConfig::new(url.clone(), cfg.festival.clone())
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
            links: Links::default(),
            conns: HashMap::new(),
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
        };
        Ok((actor, store, me))
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
            t = t.min(rtc);
        }
        if let Some(dial) = self.links.next_attempt(&self.me, now) {
            t = t.min(dial);
        }
        if let Some(q) = &self.stun {
            t = t.min(q.next_send.max(now));
        }
        if let Some(retry) = self.paths.next_retry().filter(|_| self.paths.relay_slow()) {
            t = t.min(retry.max(now));
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
                _ = tokio::time::sleep_until(wake.into()) => {}
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
        self.dial_due().await;
        self.stun_due().await;
        self.upgrade_due();
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
            RelayEvent::Connected { session, relay, stun, .. } => {
                r.route.connected(mono);
                if let Some(server) = stun {
                    let mut tid = [0u8; 12];
                    OsRng.fill_bytes(&mut tid);
                    self.stun = Some(StunQuery { server, tid, next_send: Instant::now(), tries: 0 });
                }
                let r = self.relay.as_mut().expect("checked above");
                let link = LinkId(self.next_conn);
                self.next_conn += 1;
                r.session = Some((session, link, relay));
                r.state = RelayState::Connected { url: r.cfg.url.clone() };
                tracing::info!(relay = %relay.short(), link = link.0, "relay link up");
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
                        let authors = eff.iter().filter_map(|e| match e {
                            Effect::Delivered { author, .. } => Some(*author),
                            _ => None,
                        });
                        self.paths.seen_via_relay(authors, Instant::now());
                        self.apply(eff).await;
                    }
                }
            }
            RelayEvent::Disconnected { session, error, retry_in } => {
                let ended = match (session, r.session) {
                    (Some(s), Some((cur, link, relay))) if s == cur => {
                        r.session = None;
                        Some((link, relay))
                    }
                    _ => None,
                };
                let url = r.cfg.url.clone();
                let r = self.relay.as_mut().expect("checked above");
                match retry_in {
                    // The client stopped (shutdown): nothing to retry.
                    None => {
                        r.state = RelayState::Offline { url, reason: error.to_string() };
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
                    self.paths.relay_down();
                    tracing::info!(relay = %relay.short(), link = link.0, error = %error, "relay link down");
                    let _ = self.store.peer_seen(&relay, now).await;
                    self.emit(NodeEvent::LinkDown { peer: relay, reason: error.to_string() });
                    let eff = self.engine.handle(Input::LinkDown { link }).await;
                    self.apply(eff).await;
                }
            }
            RelayEvent::Stored { ids, .. } => {
                tracing::debug!(n = ids.len(), "the relay stored our envelopes");
                self.paths.stored(&ids, Instant::now());
            }
            RelayEvent::Rtt { session, rtt } => {
                if r.session.is_some_and(|(s, _, _)| s == session) {
                    self.paths.relay_rtt.add(rtt);
                }
            }
            RelayEvent::Refused { code } => self.count(&format!("relay_refused_{code}")),
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
                let answer = self.on_offer(msg, "the relay");
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

    /// While the relay is slow, offer a direct link, through relayed
    /// signaling, to peers whose messages reach us through it.
    fn upgrade_due(&mut self) {
        let Some((_, _, relay)) = self.relay_link() else { return };
        if !self.paths.relay_slow() {
            return;
        }
        let room = self.peer_limit().saturating_sub(self.open_links());
        if room == 0 {
            return;
        }
        let me = self.me;
        let candidates = self.paths.upgrade_candidates(Instant::now(), |p| {
            *p == me
                || *p == relay
                || self.conns.values().any(|c| c.peer == *p)
                // On the LAN: the LAN dial takes care of it.
                || self.links.peers.get(p).is_some_and(|e| e.discovered)
        });
        for peer in candidates.into_iter().take(room) {
            self.dial(peer, true);
        }
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
            let events = self.endpoint.poll(Instant::now());
            if events.is_empty() {
                return;
            }
            // Frames that arrived together go to the engine together: the
            // envelopes among them are committed in one transaction.
            let mut frames = Vec::new();
            for e in webrtc::driver::send_transmits(&self.socket, events).await {
                match e {
                    EndpointEvent::Data(conn, bytes) if self.conns.get(&conn).is_some_and(|c| c.open) => {
                        frames.push(Input::Frame { link: LinkId(conn.0), bytes });
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
                let peer = c.peer;
                if c.outbound {
                    let upgrade = c.upgrade;
                    self.paths.opened(peer, upgrade);
                }
                self.links.opened(&peer);
                let _ = self.store.peer_seen(&peer, now_ms()).await;
                tracing::info!(peer = %peer.short(), %conn, "link up");
                self.emit(NodeEvent::LinkUp { peer, path: LinkPath::Lan });
                let eff = self.engine.handle(Input::LinkUp { link: LinkId(conn.0), peer, kind: LinkKind::Lan }).await;
                self.apply(eff).await;
            }
            EndpointEvent::Data(conn, bytes) => {
                if self.conns.get(&conn).is_some_and(|c| c.open) {
                    let eff = self.engine.handle(Input::Frame { link: LinkId(conn.0), bytes }).await;
                    self.apply(eff).await;
                }
            }
            EndpointEvent::Writable(conn) => self.flush(conn),
            EndpointEvent::Closed(conn, reason) => {
                let Some(c) = self.conns.remove(&conn) else { return };
                tracing::info!(peer = %c.peer.short(), %conn, ?reason, "link closed");
                if c.upgrade && !c.open {
                    // The ICE checks found no direct path.
                    self.paths.upgrade_failed(c.peer, Instant::now(), jitter());
                }
                if self.links.peers.get(&c.peer).is_some_and(|e| e.conn == Some(conn)) {
                    self.links.failed(&c.peer, Instant::now(), jitter());
                }
                if c.open {
                    let _ = self.store.peer_seen(&c.peer, now_ms()).await;
                    self.emit(NodeEvent::LinkDown { peer: c.peer, reason: format!("{reason:?}") });
                    let eff = self.engine.handle(Input::LinkDown { link: LinkId(conn.0) }).await;
                    self.apply(eff).await;
                }
            }
        }
    }

    /// The median ICE round trip of the open data channels.
    fn lan_rtt(&self) -> Option<Duration> {
        median(self.conns.iter().filter(|(_, c)| c.open).filter_map(|(id, _)| self.endpoint.rtt(*id)).collect())
    }

    fn open_links(&self) -> usize {
        self.conns.len()
    }

    fn discovered(&self) -> usize {
        self.links.peers.values().filter(|e| e.discovered).count()
    }

    /// Links toward higher ids (see links.rs), whoever dialed: ours, and a
    /// higher peer's knock.
    fn upward_links(&self) -> usize {
        self.conns.values().filter(|c| c.peer > self.me).count()
    }

    /// Whether to refuse a lower peer's dial to keep our last slot for our
    /// own dial upward (see links.rs).
    fn keep_slot_upward(&self, now: Instant) -> bool {
        self.upward_links() == 0
            && self.open_links() + 1 >= self.peer_limit()
            && self.links.upward_possible(&self.me, now)
    }

    /// Links toward higher ids we may have: all but the last slot, kept for
    /// a lower node's dial (see links.rs).
    fn upward_cap(&self) -> usize {
        self.peer_limit().saturating_sub(1).max(1)
    }

    async fn dial_due(&mut self) {
        self.dial_upward();
        self.knock();
    }

    /// Knock on lower peers that appeared and have not dialed us (see
    /// links.rs): one at a time, and only while two slots are free, so that
    /// records anyone can multicast (low ids at dead addresses) never take
    /// the last slot from a real lower node's dial. The link takes the slot
    /// the lower peer's own dial would have.
    fn knock(&mut self) {
        let now = Instant::now();
        let me = self.me;
        for peer in self.links.knock_due(&me, now) {
            let knocking = self.conns.values().any(|c| c.outbound && !c.upgrade && !c.open && c.peer < me);
            if knocking || self.open_links() + 2 > self.peer_limit() {
                return;
            }
            self.links.knocked(&peer, now);
            if self.links.is_banned(&peer, now) || self.conns.values().any(|c| c.peer == peer) {
                continue;
            }
            tracing::debug!(peer = %peer.short(), "knocking: a lower peer appeared and has not dialed");
            self.dial(peer, false);
        }
    }

    fn dial_upward(&mut self) {
        // Keep the last slot for a lower node's dial (see links.rs).
        let limit = self.peer_limit();
        let outbound_cap = self.upward_cap();
        let outbound = self.upward_links();
        let mut room = limit.saturating_sub(self.open_links()).min(outbound_cap.saturating_sub(outbound));
        if room == 0 && outbound == 0 && self.links.nearest_due(&self.me, Instant::now()).is_some() {
            // Full of lower nodes' links, and a higher peer appeared: the
            // least useful of them makes room for our link up (see links.rs).
            let open: Vec<(ConnId, PeerId)> =
                self.conns.iter().filter(|(_, c)| c.peer < self.me && c.open).map(|(id, c)| (*id, c.peer)).collect();
            if let Some((conn, _)) = self.least_useful(&open, None) {
                self.drop_conn(conn, "making room for a link to a higher peer");
                room = 1;
            }
        } else if room == 0 && outbound >= outbound_cap {
            // Full: improve one link at a time (see links.rs). A nearer
            // higher peer that never refused us takes the least useful
            // link's place; this ends with every node linked to its
            // successor, which keeps a LAN connected even at a limit of 2.
            // Else a powered peer takes an unpowered link's place, never the
            // successor's.
            let now = Instant::now();
            let open: Vec<(ConnId, PeerId)> =
                self.conns.iter().filter(|(_, c)| c.peer > self.me && c.open).map(|(id, c)| (*id, c.peer)).collect();
            let successor = open.iter().map(|(_, p)| *p).min();
            let victim = if self.links.nearest_due(&self.me, now).is_some() {
                self.least_useful(&open, None).map(|v| (v, "moving to a nearer peer"))
            } else if self.links.powered_due(&self.me, now).is_some() {
                self.least_useful(&open, successor)
                    .filter(|(_, peer)| !self.is_powered(*peer))
                    .map(|v| (v, "moving to a powered peer"))
            } else {
                None
            };
            if let Some(((conn, _), why)) = victim {
                self.drop_conn(conn, why);
                room = 1;
            }
        }
        if room == 0 {
            return;
        }
        for peer in self.links.due(&self.me, Instant::now(), room) {
            // Linked already through its dial to us.
            if let Some((id, _)) = self.conns.iter().find(|(_, c)| c.peer == peer) {
                let id = *id;
                if let Some(e) = self.links.peers.get_mut(&peer) {
                    e.conn = Some(id);
                }
                continue;
            }
            self.dial(peer, false);
        }
    }

    /// Offer `peer` a data channel: over TCP to its advertised signaling
    /// port, or (`upgrade`) through the relay.
    fn dial(&mut self, peer: PeerId, upgrade: bool) {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let sdp = match self.endpoint.create_offer(conn, Instant::now()) {
            Ok(sdp) => sdp,
            Err(e) => {
                tracing::warn!(error = %e, "cannot create an offer");
                if upgrade {
                    self.paths.upgrade_failed(peer, Instant::now(), 0.5);
                } else {
                    self.links.failed(&peer, Instant::now(), 0.5);
                }
                return;
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
        let c = Conn {
            peer,
            outbound: true,
            nonce: Some(nonce),
            offered_at: None,
            upgrade,
            open: false,
            queue: VecDeque::new(),
            bulk: VecDeque::new(),
        };
        self.conns.insert(conn, c);
        self.paths.dialed(upgrade);
        if upgrade {
            tracing::info!(peer = %peer.short(), %conn, "offering a direct link through the relay");
            let sent = self.relay.as_ref().and_then(|r| r.handle.as_ref()).map(|h| h.send_signal(peer, &offer));
            if !matches!(sent, Some(Ok(()))) {
                self.conns.remove(&conn);
                let _ = self.endpoint.close(conn);
                self.paths.upgrade_failed(peer, Instant::now(), 0.5);
            }
            return;
        }
        let entry = self.links.peers.get_mut(&peer).expect("due peers exist");
        entry.conn = Some(conn);
        let (addrs, port) = (entry.addrs.clone(), entry.port);
        tracing::debug!(peer = %peer.short(), %conn, "dialing");
        self.tasks.spawn(signal_io::dial(conn, peer, addrs, port, offer, self.signal_tx.clone()));
    }

    async fn on_signal(&mut self, ev: SignalEvent) {
        match ev {
            SignalEvent::Dialed { conn, peer, result } => self.on_dialed(conn, peer, result).await,
            SignalEvent::Incoming { msg, from, reply } => {
                let answer = self.on_offer(msg, from);
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
        let Some((nonce, upgrade)) = self.conns.get(&conn).and_then(|c| Some((c.nonce?, c.upgrade))) else {
            return;
        };
        let outcome = match result {
            Ok(SignalMsg::Answer { answer, sig }) => {
                verify_answer(&answer, &sig, &self.me, &peer, &nonce).and_then(|()| {
                    self.endpoint.accept_answer(conn, &answer.sdp, Instant::now()).map_err(|_| SignalError::Malformed)
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
            }
            Err(e) => {
                tracing::debug!(peer = %peer.short(), error = %e, upgrade, "dial failed");
                if !matches!(e, SignalError::Rejected(_) | SignalError::Io(_)) {
                    self.count(&format!("signaling_{}", e.code()));
                }
                self.conns.remove(&conn);
                let _ = self.endpoint.close(conn);
                let jitter = jitter();
                if upgrade {
                    self.paths.upgrade_failed(peer, Instant::now(), jitter);
                } else if matches!(&e, SignalError::Rejected(r) if r.contains("peer limit")) {
                    self.links.busy(&peer, Instant::now(), jitter);
                } else {
                    self.links.failed(&peer, Instant::now(), jitter);
                }
            }
        }
    }

    fn on_offer(&mut self, msg: SignalMsg, from: impl std::fmt::Display) -> SignalMsg {
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
        if self.links.is_banned(&peer, Instant::now()) {
            self.count("signaling_banned");
            return SignalMsg::Reject { reason: "backing off: your link misbehaved".into() };
        }
        // Both sides dialing at once (a peer that broke the lower-dials rule):
        // the lower id's dial wins.
        // Also when our dial was answered or is open: a higher peer's knock
        // that crossed our dial (see links.rs) must not replace it.
        let dialing = self.conns.values().any(|c| c.peer == peer && (c.nonce.is_some() || (c.outbound && !c.upgrade)));
        if dialing && self.me < peer {
            return SignalMsg::Reject { reason: "glare: my dial to you is under way".into() };
        }
        // A verified offer from a peer we are linked to means it restarted or
        // lost the link: the new connection replaces the old one.
        let old: Vec<ConnId> = self.conns.iter().filter(|(_, c)| c.peer == peer).map(|(id, _)| *id).collect();
        if old.iter().any(|id| self.conns[id].offered_at.is_some_and(|at| at >= offer.sent_at)) {
            self.count("signaling_superseded");
            return SignalMsg::Reject { reason: "superseded by a newer offer of yours".into() };
        }
        if old.is_empty() && self.open_links() >= self.peer_limit() {
            return SignalMsg::Reject { reason: "peer limit reached".into() };
        }
        // A higher peer's dial (a knock, see links.rs) is a link we could
        // have dialed ourselves: only while we still could, so the last slot
        // stays for a lower node.
        if old.is_empty() && peer > self.me && self.upward_links() >= self.upward_cap() {
            return SignalMsg::Reject { reason: "peer limit reached".into() };
        }
        // A lower peer's dial: not into the slot we keep for our own dial up.
        if old.is_empty() && peer < self.me && self.keep_slot_upward(Instant::now()) {
            return SignalMsg::Reject { reason: "peer limit reached".into() };
        }
        for c in old {
            self.drop_conn(c, "replaced by a new connection");
        }
        if let Some(e) = self.links.peers.get_mut(&peer) {
            e.conn = None;
        }
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        match self.endpoint.accept_offer(conn, &offer.sdp, Instant::now()) {
            Ok(sdp) => {
                let c = Conn {
                    peer,
                    outbound: false,
                    nonce: None,
                    offered_at: Some(offer.sent_at),
                    upgrade: false,
                    open: false,
                    queue: VecDeque::new(),
                    bulk: VecDeque::new(),
                };
                self.conns.insert(conn, c);
                if let Some(e) = self.links.peers.get_mut(&peer) {
                    e.conn = Some(conn);
                }
                Answer { version: SIGNAL_VERSION, from: self.me, to: peer, nonce: offer.nonce, sdp }
                    .sign(self.identity())
            }
            Err(e) => {
                self.count("signaling_bad_sdp");
                SignalMsg::Reject { reason: e.to_string() }
            }
        }
    }

    /// The open link least worth keeping, other than the one to `keep`: an
    /// unpowered peer before a powered one, then the fewest rooms shared
    /// with us, then the farthest id (the highest above us, the lowest
    /// below).
    fn least_useful(&self, open: &[(ConnId, PeerId)], keep: Option<PeerId>) -> Option<(ConnId, PeerId)> {
        open.iter()
            .filter(|(_, peer)| Some(*peer) != keep)
            .min_by_key(|(conn, peer)| {
                let rooms = self.engine.node().link_value(LinkId(conn.0)).map_or(0, |v| v.shared_rooms);
                let above = *peer > self.me;
                (self.is_powered(*peer), rooms, above.then_some(std::cmp::Reverse(*peer)), (!above).then_some(*peer))
            })
            .copied()
    }

    /// On mains power by its mDNS record or its hello.
    fn is_powered(&self, peer: PeerId) -> bool {
        self.links.is_powered(&peer)
            || self.conns.iter().any(|(conn, c)| {
                c.peer == peer && self.engine.node().link_value(LinkId(conn.0)).is_some_and(|v| v.powered)
            })
    }

    /// Forget a connection we end ourselves (the endpoint reports no
    /// `Closed` for those) and tell the core and the user if it was open.
    fn drop_conn(&mut self, conn: ConnId, why: &str) {
        let _ = self.endpoint.close(conn);
        let Some(c) = self.conns.remove(&conn) else { return };
        if let Some(e) = self.links.peers.get_mut(&c.peer) {
            if e.conn == Some(conn) {
                e.conn = None;
            }
        }
        if c.open {
            self.emit(NodeEvent::LinkDown { peer: c.peer, reason: why.to_owned() });
            self.pending_down.push(LinkId(conn.0));
        }
    }

    fn on_discovery(&mut self, ev: DiscoveryEvent) {
        match ev {
            DiscoveryEvent::Found { peer, addrs, port, powered, .. } => {
                self.links.found(peer, addrs, port, powered, Instant::now());
                self.emit(NodeEvent::Discovered { peer });
            }
            DiscoveryEvent::Updated { peer, addrs, port, powered, .. } => {
                // New address or port. A record is a claim anyone on the LAN
                // can make, so an open link (DTLS with the key it claims,
                // then a signed handshake) is never dropped for one: the
                // new address is dialed when that link fails (ICE notices a
                // peer that moved or restarted; a restarted peer also dials
                // us). Only our own dials still opening start over at the
                // new address.
                if self.links.found(peer, addrs, port, powered, Instant::now()) {
                    let (open, opening) = self.conns_of(peer);
                    if open.is_empty() {
                        for c in opening {
                            self.drop_conn(c, "peer moved or restarted");
                        }
                        if let Some(e) = self.links.peers.get_mut(&peer) {
                            e.next_attempt = Instant::now();
                        }
                    } else {
                        tracing::debug!(peer = %peer.short(), "new address announced; keeping the open link");
                    }
                }
            }
            DiscoveryEvent::Lost { peer } => {
                self.links.lost(&peer);
                self.emit(NodeEvent::Lost { peer });
            }
        }
    }

    /// The connections to `peer`: (open, our own dials still opening). A
    /// dial the peer made to us is left out of the second: its offer was
    /// signed by the peer, so no record of anyone's can call it stale.
    fn conns_of(&self, peer: PeerId) -> (Vec<ConnId>, Vec<ConnId>) {
        let mut ours: Vec<(ConnId, bool, bool)> =
            self.conns.iter().filter(|(_, c)| c.peer == peer).map(|(id, c)| (*id, c.open, c.outbound)).collect();
        ours.sort_unstable_by_key(|(id, ..)| id.0);
        let open = ours.iter().filter(|(_, open, _)| *open).map(|(id, ..)| *id).collect();
        let dialing = ours.iter().filter(|(_, open, outbound)| !*open && *outbound).map(|(id, ..)| *id).collect();
        (open, dialing)
    }

    /// Send a frame on a direct link, or queue it while the link's send
    /// buffer is full. Sync batches queue behind everything else: a new
    /// message, a want or an announcement never waits behind megabytes of
    /// catch-up (a flood of others' mail, say) queued before it.
    fn send_conn(&mut self, conn: ConnId, bytes: Vec<u8>) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        let bulk = festival_core::Frame::is_batch(&bytes);
        let behind = c.queue.len() + if bulk { c.bulk.len() } else { 0 };
        if behind == 0 {
            match self.endpoint.send(conn, &bytes) {
                Ok(()) => return,
                Err(webrtc::SendError::Full { .. }) => {}
                Err(e) => {
                    tracing::debug!(%conn, error = %e, "frame not sent");
                    return;
                }
            }
        }
        let queue = if bulk { &mut c.bulk } else { &mut c.queue };
        if queue.len() >= MAX_QUEUED_FRAMES {
            tracing::warn!(%conn, bulk, "send queue full; frame dropped (sync will repair)");
            return;
        }
        queue.push_back(bytes);
    }

    /// The send buffer has room again: live frames first, then batches.
    fn flush(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        for queue in [&mut c.queue, &mut c.bulk] {
            while let Some(bytes) = queue.front() {
                match self.endpoint.send(conn, bytes) {
                    Ok(()) => {
                        queue.pop_front();
                    }
                    Err(webrtc::SendError::Full { .. }) => return,
                    Err(_) => {
                        queue.pop_front();
                    }
                }
            }
        }
    }

    async fn apply(&mut self, effects: Vec<Effect>) {
        for e in effects {
            match e {
                Effect::Send { link, bytes } => match self.relay_link() {
                    Some((session, relay_link, _)) if relay_link == link => {
                        self.paths.frame_out(bytes.len(), true);
                        self.send_relay(session, bytes)
                    }
                    _ => {
                        self.paths.frame_out(bytes.len(), false);
                        self.send_conn(ConnId(link.0), bytes)
                    }
                },
                Effect::Delivered { id, .. } => self.delivered(id).await,
                Effect::Sent { id, kind, .. } => {
                    self.paths.sent_message(id, kind == LinkKind::Relay, Instant::now());
                    let path = match kind {
                        LinkKind::Lan => LinkPath::Lan,
                        LinkKind::Relay => LinkPath::Relay,
                    };
                    self.emit(NodeEvent::Sent { id, path });
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
                Effect::Receipt { from, status, ids } => self.emit(NodeEvent::Receipt { from, status, ids }),
                Effect::Limits(l) => {
                    self.limits = l;
                    self.endpoint.set_ice_timing(Duration::from_millis(l.keepalive_ms), webrtc::ICE_MAX_RETRANSMITS);
                    self.emit(NodeEvent::Power { mode: PowerMode::new(self.power_state, l) });
                }
                Effect::WakeAt(t) => self.engine_wake = Some(t),
                Effect::StoreFailed { id, error } => tracing::error!(?id, %error, "could not store a message"),
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
        self.links.ban(&peer, Instant::now());
        self.drop_conn(ConnId(link.0), "dropped: it kept sending what no honest peer sends");
    }

    async fn delivered(&mut self, id: MessageId) {
        let Ok(Some(m)) = self.store.get(&id).await else { return };
        let env = &m.envelope;
        match env.parsed_body() {
            // Shown as they count (Effect::Receipt), not as they arrive.
            Body::Receipt(_) | Body::SealedReceipt(_) => {}
            Body::Profile(p) => {
                self.names = None;
                self.emit(NodeEvent::PeerName { peer: env.author(), name: p.name })
            }
            Body::Text(_) | Body::SealedDm(_) => {
                self.refresh_names().await;
                let Some((_, names)) = &self.names else { return };
                let view = crate::view::view(&self.store, self.engine.node().identity(), names, &m).await;
                if let Ok(Some(mut v)) = view {
                    if v.state == Some(DeliveryState::Saved) {
                        let relay = usize::from(self.relay_link().is_some());
                        let open = self.conns.values().filter(|c| c.open).count() + relay;
                        v.waiting = Some(Waiting::from_reach(open, self.discovered()));
                    }
                    self.emit(NodeEvent::Message(v));
                }
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
                let mut out = Vec::new();
                let linked: Vec<PeerId> = self.conns.values().filter(|c| c.open).map(|c| c.peer).collect();
                let via_relay = self.relay_link().map(|(_, _, relay)| relay);
                let known = self.store.peers().await.unwrap_or_default();
                self.names = None;
                self.refresh_names().await;
                for p in known {
                    if p.peer == self.me {
                        continue;
                    }
                    let who = self.names.as_ref().map(|(_, n)| n.author(&p.peer));
                    let is_linked = linked.contains(&p.peer);
                    let is_relay = via_relay == Some(p.peer);
                    out.push(PeerView {
                        fingerprint: p.peer.fingerprint(),
                        path: if is_linked {
                            PeerPath::Lan
                        } else if is_relay {
                            PeerPath::Relay
                        } else {
                            PeerPath::ViaOthers
                        },
                        linked: is_linked || is_relay,
                        discovered: self.links.peers.get(&p.peer).is_some_and(|e| e.discovered),
                        name: p.name,
                        verified: p.verified,
                        name_clash: who.as_ref().is_some_and(|w| w.name_clash),
                        equivocated: who.as_ref().is_some_and(|w| w.equivocated),
                        last_seen: p.last_seen,
                        peer: p.peer,
                    });
                }
                let _ = reply.send(out);
            }
            Command::Status { reply } => {
                let mut rejected = self.rejected.clone();
                for (code, n) in self.discovery.ignored().iter() {
                    *rejected.entry(format!("mdns_{code:?}")).or_default() += n;
                }
                // Data-channel messages that were not a valid bundle.
                let bad_bundles = self.endpoint.stats().malformed_bundles;
                if bad_bundles > 0 {
                    rejected.insert("bundle_malformed".to_owned(), bad_bundles);
                }
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
                    paths: self.paths.view(self.lan_rtt()),
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
        let events = self.endpoint.poll(Instant::now());
        let _ = webrtc::driver::send_transmits(&self.socket, events).await;
        self.tasks.shutdown().await;
        if let Err(e) = self.discovery.shutdown().await {
            tracing::debug!(error = %e, "mDNS goodbye failed");
        }
        self.store.close().await;
        tracing::info!(peer = %self.me.short(), "node stopped");
    }
}

/// The next event of the relay client, if one runs; never otherwise.
async fn relay_recv(rx: Option<&mut mpsc::Receiver<RelayEvent>>) -> Option<RelayEvent> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
