//! The node's WebSocket to a relay: connect, authenticate, carry frames both
//! ways, reconnect with backoff and jitter.
//!
//! Two layers:
//! - [`RelayConnection::connect`]: one authenticated socket, no retries
//!   (tests, the benchmark's synthetic nodes).
//! - [`RelayClient::spawn`]: a task that keeps a connection up and turns it
//!   into [`RelayEvent`]s; the node's actor holds the cheap [`RelayHandle`].
//!
//! The WebSocket crate is tokio-tungstenite: it is the WebSocket
//! implementation axum itself uses (so the relay and the node share one
//! stack and one version), it is maintained alongside tungstenite, has no
//! runtime of its own besides tokio. `wss://` is rustls on aws-lc-rs; the
//! node opens the TCP socket and does the TLS handshake itself and hands the
//! stream to tokio-tungstenite (why, and which roots it trusts: [`super::tls`]).

use std::time::Duration;

use festival_core::{Identity, MessageId, PeerId};
use futures_util::{SinkExt, StreamExt};
use rand_core::{OsRng, RngCore};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::tls::{self, RelayStream};
use super::wire::{close, AuthProof, RelayMsg, Welcome, WireError, MAX_MESSAGE_BYTES, RELAY_PATH, RELAY_VERSION};
use crate::runtime::sendq::SendQueue;
use crate::signaling::SignalMsg;

/// Frames and signals queued for the socket. A relay link carries sync
/// batches (up to 256 KiB) and pushes; 256 of them is seconds of traffic.
/// When it is full the caller's frame is dropped and sync repairs the loss,
/// as on a data channel whose buffer is full.
pub const COMMAND_QUEUE: usize = 256;
/// Events queued for the actor. The client waits when it is full, so a busy
/// actor slows the relay socket down (TCP backpressure) instead of losing frames.
pub const EVENT_QUEUE: usize = 256;
/// A session that lasted this long counts as a success: the next failure
/// starts again from the shortest backoff.
const STABLE_SESSION: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct RelayClientConfig {
    /// `wss://host[:port]` or `ws://host:port` (the path defaults to
    /// `/v1/relay`, the port to 443 and 80).
    pub url: String,
    /// Other instances of the festival's relay, tried in turn after `url`
    /// (see [`RelayClient::spawn`]).
    pub fallbacks: Vec<String>,
    /// Sent in the proof; a relay may serve only one festival.
    pub festival: String,
    /// Refuse a relay whose identity is not this one (pinned from a QR code
    /// or the festival's config). `None`: any relay that proves its key.
    pub relay_id: Option<PeerId>,
    /// WebSocket ping interval (also bounded by a third of the relay's idle
    /// timeout). Three intervals without a byte from the relay end the session.
    pub keepalive: Duration,
    /// TCP connect + WebSocket upgrade + authentication, all together.
    pub connect_timeout: Duration,
    /// First retry after a failure; doubles per failure up to `backoff_max`.
    pub backoff_min: Duration,
    /// Longest wait: a relay that restarts with thousands of nodes attached
    /// is not hammered, and a node finds it again within this.
    pub backoff_max: Duration,
    /// Certificates (DER) trusted for `wss://` on top of the compiled-in
    /// roots: the CA of a self-hosted relay (see [`super::tls`];
    /// [`super::tls::read_pem_certs`] reads them from a PEM file).
    pub extra_roots: Vec<Vec<u8>>,
}

impl RelayClientConfig {
    pub fn new(url: impl Into<String>, festival: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            fallbacks: Vec::new(),
            festival: festival.into(),
            relay_id: None,
            keepalive: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(10),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            extra_roots: Vec::new(),
        }
    }

    /// The first of several URLs, separated by commas or whitespace, and
    /// the others as fallbacks (each once, in order).
    pub fn several(urls: &str, festival: impl Into<String>) -> Self {
        let mut list: Vec<String> = relay_urls(urls).into_iter().map(str::to_owned).collect();
        let first = if list.is_empty() { String::new() } else { list.remove(0) };
        RelayClientConfig { fallbacks: list, ..RelayClientConfig::new(first, festival) }
    }

    /// Every URL, `url` first.
    pub fn urls(&self) -> Vec<String> {
        std::iter::once(self.url.clone()).chain(self.fallbacks.iter().cloned()).collect()
    }

    /// The URL with the default path if it had none.
    pub fn endpoint(&self) -> String {
        endpoint_of(&self.url)
    }
}

/// Relay URLs separated by commas or whitespace, each once, in order.
pub fn relay_urls(urls: &str) -> Vec<&str> {
    let mut list: Vec<&str> = Vec::new();
    for u in urls.split(|c: char| c == ',' || c.is_whitespace()).filter(|u| !u.is_empty()) {
        if !list.contains(&u) {
            list.push(u);
        }
    }
    list
}

/// `url` with the default path if it had none.
fn endpoint_of(url: &str) -> String {
    let url = url.trim_end_matches('/');
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    if after_scheme.contains('/') {
        url.to_owned()
    } else {
        format!("{url}{RELAY_PATH}")
    }
}

/// One place to try: a relay URL, and one of the addresses its host name
/// resolved to (`None`: not resolved, let the connect resolve it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub url: String,
    pub addr: Option<std::net::SocketAddr>,
    /// The URL's host resolved to more than this address.
    shared: bool,
}

impl Candidate {
    /// `url` as it is: its name resolved by the connect.
    fn unresolved(url: String) -> Candidate {
        Candidate { url, addr: None, shared: false }
    }

    /// What the status shows: the URL, and the address when its name
    /// stands for several.
    pub fn label(&self) -> String {
        match self.addr {
            Some(a) if self.shared => format!("{} ({a})", self.url),
            _ => self.url.clone(),
        }
    }
}

/// Addresses of one relay name tried as instances of their own.
pub const MAX_ADDRS_PER_NAME: usize = 4;

/// The places to try, in order: each URL, and for a host name that
/// resolves to several addresses each of them (a name for several
/// instances counts as several).
pub async fn candidates(cfg: &RelayClientConfig) -> Vec<Candidate> {
    let mut out = Vec::new();
    for url in cfg.urls() {
        let Ok((_, _, host, port)) = target(&url) else {
            out.push(Candidate::unresolved(url));
            continue;
        };
        let mut addrs: Vec<std::net::SocketAddr> = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![(ip, port).into()],
            Err(_) => tokio::net::lookup_host((host.as_str(), port)).await.map(|a| a.collect()).unwrap_or_default(),
        };
        addrs.dedup();
        // A name for a few instances, not a CDN's many addresses (nor a
        // dual-stack name's every address): the first few, as resolved.
        addrs.truncate(MAX_ADDRS_PER_NAME);
        if addrs.is_empty() {
            out.push(Candidate::unresolved(url));
        } else {
            let shared = addrs.len() > 1;
            out.extend(addrs.into_iter().map(|a| Candidate { url: url.clone(), addr: Some(a), shared }));
        }
    }
    out
}

/// A URL's WebSocket request, whether it is `wss`, its host (bare, for TCP
/// and TLS) and port.
fn target(
    url: &str,
) -> Result<(tokio_tungstenite::tungstenite::handshake::client::Request, bool, String, u16), RelayError> {
    let bad = |why: &str| RelayError::Url(format!("{url}: {why}"));
    let endpoint = endpoint_of(url);
    if !(endpoint.starts_with("ws://") || endpoint.starts_with("wss://")) {
        return Err(bad("must start with wss:// (or ws://)"));
    }
    let request = endpoint.as_str().into_client_request().map_err(|e| bad(&e.to_string()))?;
    let uri = request.uri();
    let secure = uri.scheme_str() == Some("wss");
    let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(|| bad("no host"))?;
    // An IPv6 literal comes bracketed; TCP and TLS want the bare address.
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    Ok((request, secure, host, port))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// Not a `ws://` or `wss://` URL with a host.
    #[error("unusable relay URL: {0}")]
    Url(String),
    /// TLS with the relay failed: its certificate is not trusted (unknown
    /// CA, expired, for another name), it sent a TLS alert, or it does not
    /// speak TLS. Not a connection problem: retrying will not fix it.
    #[error("TLS with the relay failed: {0}")]
    Tls(String),
    #[error("cannot reach the relay: {0}")]
    Connect(String),
    #[error("the relay refused the connection (HTTP {0})")]
    Http(u16),
    #[error("no answer from the relay within {0:?}")]
    Timeout(Duration),
    #[error("the relay closed the connection: {code} {reason}")]
    Closed { code: u16, reason: String },
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("unexpected message from the relay")]
    Unexpected,
    #[error("relay is {got:?}, expected {expected:?}")]
    WrongRelay { expected: PeerId, got: PeerId },
    #[error("relay connection lost: {0}")]
    Io(String),
}

impl RelayError {
    /// Counter label.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Url(_) => "url",
            Self::Tls(_) => "tls",
            Self::Connect(_) => "connect",
            Self::Http(_) => "http",
            Self::Timeout(_) => "timeout",
            Self::Closed { code, .. } => close::label(*code),
            Self::Wire(_) => "wire",
            Self::Unexpected => "unexpected",
            Self::WrongRelay { .. } => "wrong_relay",
            Self::Io(_) => "io",
        }
    }

    /// Retrying with the same settings cannot succeed (wrong key, festival
    /// or relay, a certificate we do not trust); the client still retries,
    /// at its longest backoff (a relay's certificate may get fixed).
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Closed { code, .. } => close::is_permanent(*code),
            Self::Url(_) | Self::Tls(_) | Self::WrongRelay { .. } | Self::Wire(WireError::Version(_)) => true,
            _ => false,
        }
    }
}

fn ws_error(e: tokio_tungstenite::tungstenite::Error) -> RelayError {
    use tokio_tungstenite::tungstenite::Error as E;
    match e {
        E::Http(resp) => RelayError::Http(resp.status().as_u16()),
        E::Io(e) => RelayError::Io(e.to_string()),
        E::ConnectionClosed | E::AlreadyClosed => RelayError::Io("closed".into()),
        other => RelayError::Connect(other.to_string()),
    }
}

type Ws = WebSocketStream<RelayStream>;

/// One authenticated WebSocket to a relay.
pub struct RelayConnection {
    /// The relay's identity, proven by its signed welcome.
    pub relay: PeerId,
    /// The relay's address as this socket reached it (TCP peer address).
    pub relay_addr: Option<std::net::SocketAddr>,
    pub welcome: Welcome,
    ws: Ws,
    /// When anything (a pong included) last arrived from the relay.
    last_heard: Instant,
    /// The ping in flight: its payload and when it left.
    ping: Option<(u64, Instant)>,
    next_ping: u64,
}

impl RelayConnection {
    /// Connect and authenticate, within `cfg.connect_timeout`.
    pub async fn connect(cfg: &RelayClientConfig, me: &Identity) -> Result<RelayConnection, RelayError> {
        Self::connect_to(cfg, &Candidate::unresolved(cfg.url.clone()), me).await
    }

    /// [`RelayConnection::connect`] to one of the config's candidates.
    pub async fn connect_to(
        cfg: &RelayClientConfig,
        at: &Candidate,
        me: &Identity,
    ) -> Result<RelayConnection, RelayError> {
        tokio::time::timeout(cfg.connect_timeout, Self::connect_inner(cfg, at, me))
            .await
            .map_err(|_| RelayError::Timeout(cfg.connect_timeout))?
    }

    async fn connect_inner(
        cfg: &RelayClientConfig,
        at: &Candidate,
        me: &Identity,
    ) -> Result<RelayConnection, RelayError> {
        let ws = open(cfg, at).await?;
        let relay_addr = match ws.get_ref() {
            RelayStream::Plain(s) => s.peer_addr().ok(),
            RelayStream::Tls(s) => s.get_ref().0.peer_addr().ok(),
        };
        let mut conn = RelayConnection {
            relay: PeerId::from_bytes([0; 32]),
            relay_addr,
            welcome: placeholder_welcome(),
            ws,
            last_heard: Instant::now(),
            ping: None,
            next_ping: 1,
        };
        let challenge = match conn.recv().await? {
            Some(RelayMsg::Challenge(c)) => c,
            Some(_) => return Err(RelayError::Unexpected),
            None => return Err(RelayError::Io("closed before the challenge".into())),
        };
        if challenge.version != RELAY_VERSION {
            return Err(WireError::Version(challenge.version).into());
        }
        if let Some(expected) = cfg.relay_id.filter(|r| *r != challenge.relay) {
            return Err(RelayError::WrongRelay { expected, got: challenge.relay });
        }
        let mut client_nonce = [0u8; 32];
        OsRng.fill_bytes(&mut client_nonce);
        let proof = AuthProof {
            version: RELAY_VERSION,
            peer: me.peer_id(),
            relay: challenge.relay,
            nonce: challenge.nonce,
            festival: cfg.festival.clone(),
            client_nonce,
        };
        conn.send(&proof.clone().sign(me)).await?;
        match conn.recv().await? {
            Some(RelayMsg::Welcome { welcome, sig }) => {
                welcome.verify(&sig, &proof)?;
                conn.relay = welcome.relay;
                conn.welcome = welcome;
                Ok(conn)
            }
            Some(_) => Err(RelayError::Unexpected),
            None => Err(RelayError::Io("closed during authentication".into())),
        }
    }

    pub async fn send(&mut self, msg: &RelayMsg) -> Result<(), RelayError> {
        self.send_raw(msg.encode()).await
    }

    /// Send an already encoded `RelayMsg` (see [`RelayMsg::encode_frame`]).
    pub async fn send_raw(&mut self, bytes: Vec<u8>) -> Result<(), RelayError> {
        self.ws.send(Message::Binary(bytes.into())).await.map_err(ws_error)
    }

    /// The next relay message; `None` when the socket closed cleanly. A close
    /// with a code other than "normal" is an error carrying the code.
    pub async fn recv(&mut self) -> Result<Option<RelayMsg>, RelayError> {
        loop {
            match self.recv_or_pong().await? {
                Received::Msg(m) => return Ok(Some(m)),
                Received::Closed => return Ok(None),
                Received::Pong(_) => {}
            }
        }
    }

    /// Like [`Self::recv`], but also returns when a pong answers our ping.
    pub async fn recv_or_pong(&mut self) -> Result<Received, RelayError> {
        loop {
            let Some(msg) = self.ws.next().await else { return Ok(Received::Closed) };
            self.last_heard = Instant::now();
            match msg.map_err(ws_error)? {
                Message::Binary(b) => return Ok(Received::Msg(RelayMsg::decode(&b)?)),
                Message::Close(Some(f)) if u16::from(f.code) != 1000 => {
                    return Err(RelayError::Closed { code: f.code.into(), reason: f.reason.to_string() })
                }
                Message::Close(_) => return Ok(Received::Closed),
                Message::Pong(p) => {
                    if let Some((_, at)) = self.ping.filter(|(n, _)| p.as_ref() == n.to_be_bytes()) {
                        self.ping = None;
                        return Ok(Received::Pong(at.elapsed()));
                    }
                }
                Message::Ping(_) | Message::Frame(_) => {}
                Message::Text(_) => return Err(RelayError::Unexpected),
            }
        }
    }

    /// Where the relay answers STUN: its address with the welcome's port.
    pub fn stun_addr(&self) -> Option<std::net::SocketAddr> {
        Some(std::net::SocketAddr::new(self.relay_addr?.ip(), self.welcome.stun_port?))
    }

    /// When anything (a pong included) last arrived from the relay.
    pub fn last_heard(&self) -> Instant {
        self.last_heard
    }

    /// Send a ping; [`Self::recv_or_pong`] returns the round trip when its
    /// pong comes.
    pub async fn ping(&mut self) -> Result<(), RelayError> {
        let n = self.next_ping;
        self.next_ping += 1;
        self.ping = Some((n, Instant::now()));
        self.ws.send(Message::Ping(n.to_be_bytes().to_vec().into())).await.map_err(ws_error)
    }

    /// Close with "normal closure".
    pub async fn close(mut self) {
        let frame = CloseFrame { code: CloseCode::Normal, reason: "bye".into() };
        let _ = self.ws.close(Some(frame)).await;
    }
}

/// TCP, then TLS for `wss://`, then the WebSocket upgrade.
async fn open(cfg: &RelayClientConfig, at: &Candidate) -> Result<Ws, RelayError> {
    let (request, secure, host, port) = target(&at.url)?;
    // Settings first: a bad extra certificate is reported before any packet.
    let tls_cfg = if secure { Some(tls::client_config(&cfg.extra_roots)?) } else { None };
    let tcp = match at.addr {
        Some(addr) => TcpStream::connect(addr).await,
        None => TcpStream::connect((host.as_str(), port)).await,
    }
    .map_err(|e| RelayError::Connect(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let stream = match tls_cfg {
        // The name, not the address: the certificate is for the name.
        Some(tls_cfg) => RelayStream::Tls(Box::new(tls::handshake(tls_cfg, &host, tcp).await?)),
        None => RelayStream::Plain(tcp),
    };
    let ws_cfg = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
        .read_buffer_size(festival_engine::wire::relay::WS_CLIENT_READ_BUFFER);
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(ws_cfg)).await.map_err(ws_error)?;
    Ok(ws)
}

fn placeholder_welcome() -> Welcome {
    Welcome {
        version: RELAY_VERSION,
        relay: PeerId::from_bytes([0; 32]),
        peer: PeerId::from_bytes([0; 32]),
        client_nonce: [0; 32],
        max_frame: 0,
        idle_timeout_ms: 0,
        stun_port: None,
    }
}

/// What [`RelayConnection::recv_or_pong`] got. Returned by value and
/// taken apart at once: boxing the message would cost an allocation per
/// message for nothing.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Received {
    Msg(RelayMsg),
    /// The round trip of our latest ping.
    Pong(Duration),
    /// The relay closed the socket cleanly.
    Closed,
}

/// Numbers the connections a client makes: frames are sent for one session
/// and never leak into the next (the core has a new link per session).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

/// What the relay client tells its owner.
#[derive(Clone, Debug)]
pub enum RelayEvent {
    /// Authenticated. Owner: a new link, `Input::LinkUp { peer: relay, kind: LinkKind::Relay }`.
    Connected {
        session: SessionId,
        relay: PeerId,
        max_frame: usize,
        stun: Option<std::net::SocketAddr>,
        /// Which of the relays this session is with ([`Candidate::label`]).
        via: String,
    },
    /// A core frame from the relay. Owner: `Input::Frame` on the session's link.
    Frame { session: SessionId, bytes: Vec<u8> },
    /// The relay committed these envelopes of ours (or already held them).
    Stored { session: SessionId, ids: Vec<MessageId> },
    /// A signaling message from another node, relayed; `from` is the
    /// identity the relay authenticated. Verify it like a LAN offer/answer.
    Signal { from: PeerId, msg: SignalMsg },
    /// A signal we sent could not be delivered: the peer is not connected.
    Unreachable { peer: PeerId },
    /// The relay dropped something we sent (a counter label).
    Refused { code: String },
    /// The round trip of a WebSocket ping to the relay.
    Rtt { session: SessionId, rtt: Duration },
    /// The session ended or an attempt failed. Owner: `Input::LinkDown`
    /// for `session` if there was one. `retry_in` is `None` after `shutdown`.
    Disconnected {
        session: Option<SessionId>,
        error: RelayError,
        retry_in: Option<Duration>,
        /// Every instance has now failed once in a row (with a single
        /// relay: every failure): what the owner's circuit breaker counts,
        /// so that moving on to the next instance is not a failure of the
        /// route.
        round_over: bool,
        /// The instance it was ([`Candidate::label`]).
        via: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelaySendError {
    #[error("the relay queue is full; the frame was dropped")]
    Full,
    #[error("the relay client has stopped")]
    Stopped,
}

enum Command {
    Frame { session: SessionId, bytes: Vec<u8> },
    Signal { to: PeerId, msg: Vec<u8> },
    Shutdown,
}

/// The actor's side of the relay client: cheap to clone.
#[derive(Clone)]
pub struct RelayHandle {
    tx: mpsc::Sender<Command>,
}

impl RelayHandle {
    /// Queue a core frame for `session`. Never waits: when the queue is full
    /// the frame is dropped (`Full`) and sync repairs it, like a full data
    /// channel. A frame for a session that has ended is dropped silently.
    pub fn send_frame(&self, session: SessionId, bytes: Vec<u8>) -> Result<(), RelaySendError> {
        self.try_send(Command::Frame { session, bytes })
    }

    /// Send a signaling message to `to` through the relay (a signed offer or
    /// answer; the relay adds our authenticated id as the sender).
    pub fn send_signal(&self, to: PeerId, msg: &SignalMsg) -> Result<(), RelaySendError> {
        let msg = postcard::to_stdvec(msg).expect("in-memory encode");
        self.try_send(Command::Signal { to, msg })
    }

    /// Close the socket and stop; the last event is `Disconnected { retry_in: None }`.
    pub async fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown).await;
    }

    fn try_send(&self, cmd: Command) -> Result<(), RelaySendError> {
        self.tx.try_send(cmd).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => RelaySendError::Full,
            mpsc::error::TrySendError::Closed(_) => RelaySendError::Stopped,
        })
    }
}

pub struct RelayClient;

impl RelayClient {
    /// Start the client task. It connects at once, and again after every
    /// failure, until [`RelayHandle::shutdown`] or until the event receiver
    /// is dropped.
    pub fn spawn(cfg: RelayClientConfig, me: Identity) -> (RelayHandle, mpsc::Receiver<RelayEvent>) {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
        tokio::spawn(run(cfg, me, rx, ev_tx));
        (RelayHandle { tx }, ev_rx)
    }
}

/// `min * 2^(failures-1)`, capped at `max`, then spread over [50 %, 100 %]:
/// when a relay restarts, its thousands of nodes come back spread out over
/// half a backoff rather than all in the same instant.
pub fn backoff(failures: u32, min: Duration, max: Duration, jitter: f64) -> Duration {
    let base = min.saturating_mul(1u32 << failures.saturating_sub(1).min(16)).min(max);
    base.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// A random fraction in [0, 1): spreads retries apart.
pub(crate) fn jitter() -> f64 {
    (OsRng.next_u32() as f64) / (u32::MAX as f64 + 1.0)
}

enum SessionEnd {
    Failed(RelayError),
    Shutdown,
}

async fn run(cfg: RelayClientConfig, me: Identity, mut rx: mpsc::Receiver<Command>, events: mpsc::Sender<RelayEvent>) {
    let mut failures = 0u32;
    let mut next_session = 1u64;
    let Some(mut places) = resolve_or_stop(&cfg, &mut rx).await else { return finish(&events, None).await };
    let mut at = 0usize;
    // Whether every failure of this round was one retrying cannot fix.
    let mut all_permanent = true;
    loop {
        let place = places[at % places.len()].clone();
        let connect = RelayConnection::connect_to(&cfg, &place, &me);
        tokio::pin!(connect);
        let attempt = loop {
            tokio::select! {
                r = &mut connect => break Some(r),
                stop = drain_until_stopped(&mut rx) => if stop { break None },
            }
        };
        let (session, error) = match attempt {
            None => return finish(&events, None).await,
            Some(Err(e)) => (None, e),
            Some(Ok(conn)) => {
                let session = SessionId(next_session);
                next_session += 1;
                let started = Instant::now();
                let stun = conn.stun_addr();
                let up = RelayEvent::Connected {
                    session,
                    relay: conn.relay,
                    max_frame: conn.welcome.max_frame as usize,
                    stun,
                    via: place.label(),
                };
                if events.send(up).await.is_err() {
                    return conn.close().await;
                }
                match run_session(&cfg, conn, session, &mut rx, &events).await {
                    SessionEnd::Shutdown => return finish(&events, Some(session)).await,
                    SessionEnd::Failed(e) => {
                        if started.elapsed() >= STABLE_SESSION {
                            failures = 0;
                        }
                        (Some(session), e)
                    }
                }
            }
        };
        // The next place: another instance at once (spread by a short
        // jittered wait, so that the nodes of an instance that died do not
        // all land on the next one in the same instant); once every one
        // has failed, the backoff, and the names resolved again.
        at += 1;
        all_permanent &= error.is_permanent();
        let round_done = at.is_multiple_of(places.len());
        let wait = if !round_done {
            backoff(1, cfg.backoff_min, cfg.backoff_max, jitter())
        } else {
            failures = failures.saturating_add(1);
            if std::mem::replace(&mut all_permanent, true) {
                cfg.backoff_max
            } else {
                backoff(failures, cfg.backoff_min, cfg.backoff_max, jitter())
            }
        };
        tracing::info!(error = %error, relay = %place.label(), retry_in = ?wait, "relay link down");
        let down = RelayEvent::Disconnected {
            session,
            error,
            retry_in: Some(wait),
            round_over: round_done,
            via: place.label(),
        };
        if events.send(down).await.is_err() {
            return;
        }
        let until = Instant::now() + wait;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break,
                stop = drain_until_stopped(&mut rx) => if stop { return finish(&events, None).await },
            }
        }
        if round_done {
            let Some(fresh) = resolve_or_stop(&cfg, &mut rx).await else { return finish(&events, None).await };
            places = fresh;
            at = 0;
        }
    }
}

/// [`candidates`], within the connect timeout, while honouring a shutdown
/// (`None`). A name that does not resolve in time is tried by the connect.
async fn resolve_or_stop(cfg: &RelayClientConfig, rx: &mut mpsc::Receiver<Command>) -> Option<Vec<Candidate>> {
    let resolve = tokio::time::timeout(cfg.connect_timeout, candidates(cfg));
    tokio::pin!(resolve);
    loop {
        tokio::select! {
            r = &mut resolve => {
                return Some(r.unwrap_or_else(|_| {
                    cfg.urls().into_iter().map(Candidate::unresolved).collect()
                }));
            }
            stop = drain_until_stopped(rx) => if stop { return None },
        }
    }
}

async fn finish(events: &mpsc::Sender<RelayEvent>, session: Option<SessionId>) {
    let error = RelayError::Closed { code: 1000, reason: "shut down".into() };
    let _ = events
        .send(RelayEvent::Disconnected { session, error, retry_in: None, round_over: true, via: String::new() })
        .await;
}

/// While no session is up, commands are for a session that is gone: drop
/// them. Returns true on shutdown (or when every handle is gone), false
/// after dropping one command.
async fn drain_until_stopped(rx: &mut mpsc::Receiver<Command>) -> bool {
    !matches!(rx.recv().await, Some(Command::Frame { .. } | Command::Signal { .. }))
}

async fn run_session(
    cfg: &RelayClientConfig,
    mut conn: RelayConnection,
    session: SessionId,
    rx: &mut mpsc::Receiver<Command>,
    events: &mpsc::Sender<RelayEvent>,
) -> SessionEnd {
    let idle = Duration::from_millis(conn.welcome.idle_timeout_ms.max(3_000));
    let period = cfg.keepalive.min(idle / 3);
    // The first ping leaves at once: the node learns the relay's round trip
    // as soon as the session is up.
    let mut ping = tokio::time::interval_at(Instant::now(), period);
    loop {
        let result = tokio::select! {
            cmd = rx.recv() => match cmd {
                None | Some(Command::Shutdown) => {
                    conn.close().await;
                    return SessionEnd::Shutdown;
                }
                Some(Command::Frame { session: s, bytes }) if s == session => {
                    match send_by_urgency(&mut conn, session, bytes, rx).await {
                        Ok(true) => {
                            conn.close().await;
                            return SessionEnd::Shutdown;
                        }
                        Ok(false) => Ok(()),
                        Err(e) => Err(e),
                    }
                }
                Some(Command::Frame { .. }) => Ok(()),
                Some(Command::Signal { to, msg }) => conn.send(&RelayMsg::Signal { peer: to, msg }).await,
            },
            msg = conn.recv_or_pong() => {
                match msg {
                    Ok(Received::Pong(rtt)) => {
                        let _ = events.try_send(RelayEvent::Rtt { session, rtt });
                        Ok(())
                    }
                    Ok(Received::Msg(m)) => match to_event(session, m) {
                        Ok(Some(ev)) => {
                            if events.send(ev).await.is_err() {
                                conn.close().await;
                                return SessionEnd::Shutdown;
                            }
                            Ok(())
                        }
                        Ok(None) => Ok(()),
                        Err(e) => Err(e),
                    },
                    Ok(Received::Closed) => Err(RelayError::Closed { code: 1000, reason: "closed by the relay".into() }),
                    Err(e) => Err(e),
                }
            }
            _ = ping.tick() => {
                if conn.last_heard().elapsed() >= period * 3 {
                    Err(RelayError::Timeout(period * 3))
                } else {
                    conn.ping().await
                }
            }
        };
        if let Err(e) = result {
            return SessionEnd::Failed(e);
        }
    }
}

/// Frames taken from the channel at once by [`send_by_urgency`].
const URGENCY_BURST: usize = 32;

/// Send `first` and the frames already waiting behind it (up to
/// [`URGENCY_BURST`] in all), most urgent first (`runtime::sendq`: control, own messages and DMs, room traffic,
/// batches): what queued while the socket was busy goes out by urgency,
/// not by arrival, as on a data channel. A signal or shutdown met on the
/// way is carried out after the frames before it. True: shut down (the
/// caller closes the socket).
async fn send_by_urgency(
    conn: &mut RelayConnection,
    session: SessionId,
    first: Vec<u8>,
    rx: &mut mpsc::Receiver<Command>,
) -> Result<bool, RelayError> {
    let mut queue = SendQueue::bounded(URGENCY_BURST);
    queue.enqueue(first);
    let mut after = None;
    // A bounded burst: the session's loop reads (pongs, frames) between
    // bursts, and what stays in the channel keeps its backpressure.
    for _ in 1..URGENCY_BURST {
        let Ok(cmd) = rx.try_recv() else { break };
        match cmd {
            Command::Frame { session: s, bytes } if s == session => {
                queue.enqueue(bytes);
            }
            Command::Frame { .. } => {}
            other => {
                after = Some(other);
                break;
            }
        }
    }
    let shutdown = matches!(after, Some(Command::Shutdown));
    while let Some(bytes) = queue.pop_front() {
        if let Err(e) = conn.send_raw(RelayMsg::encode_frame(&bytes)).await {
            // A shutdown taken from the channel is not lost with the socket.
            return if shutdown { Ok(true) } else { Err(e) };
        }
    }
    match after {
        Some(Command::Signal { to, msg }) => conn.send(&RelayMsg::Signal { peer: to, msg }).await.map(|()| false),
        Some(Command::Shutdown) => Ok(true),
        _ => Ok(false),
    }
}

fn to_event(session: SessionId, msg: RelayMsg) -> Result<Option<RelayEvent>, RelayError> {
    Ok(Some(match msg {
        RelayMsg::Frame(bytes) => RelayEvent::Frame { session, bytes },
        RelayMsg::Stored { ids } => RelayEvent::Stored { session, ids },
        RelayMsg::Signal { peer, msg } => match postcard::from_bytes::<SignalMsg>(&msg) {
            Ok(msg) => RelayEvent::Signal { from: peer, msg },
            // Another node's garbage: not the relay's fault, not ours.
            Err(_) => return Ok(None),
        },
        RelayMsg::Unreachable { peer } => RelayEvent::Unreachable { peer },
        RelayMsg::Refused { code } => RelayEvent::Refused { code },
        RelayMsg::Challenge(_) | RelayMsg::Auth { .. } | RelayMsg::Welcome { .. } => {
            return Err(RelayError::Unexpected)
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_spreads() {
        let (min, max) = (Duration::from_millis(500), Duration::from_secs(60));
        assert_eq!(backoff(1, min, max, 1.0), min);
        assert_eq!(backoff(2, min, max, 1.0), min * 2);
        assert_eq!(backoff(40, min, max, 1.0), max);
        assert_eq!(backoff(40, min, max, 0.0), max / 2);
        assert!(backoff(3, min, max, 0.1) < backoff(3, min, max, 0.9));
    }

    #[tokio::test]
    async fn a_name_with_several_addresses_counts_as_several_places() {
        let cfg = RelayClientConfig::several("ws://localhost:9 ws://127.0.0.1:10", "f");
        let places = candidates(&cfg).await;
        let named: Vec<std::net::SocketAddr> =
            tokio::net::lookup_host(("localhost", 9)).await.map(|a| a.collect()).unwrap_or_default();
        let local: Vec<&Candidate> = places.iter().filter(|c| c.url == "ws://localhost:9").collect();
        assert_eq!(local.len(), named.len().max(1), "one place per address of the name");
        assert_eq!(local.iter().filter_map(|c| c.addr).collect::<Vec<_>>(), named);
        if named.len() > 1 {
            assert!(local.iter().all(|c| c.label().contains(&c.addr.unwrap().to_string())), "the label says which");
        }
        // An address in the URL is one place, shown as the URL.
        let last = places.last().unwrap();
        assert_eq!((last.label(), last.addr), ("ws://127.0.0.1:10".to_owned(), Some(([127, 0, 0, 1], 10).into())));
    }

    #[test]
    fn the_default_path_is_added_once() {
        let c = |u: &str| RelayClientConfig::new(u, "f").endpoint();
        assert_eq!(c("ws://10.0.0.1:8443"), "ws://10.0.0.1:8443/v1/relay");
        assert_eq!(c("ws://10.0.0.1:8443/"), "ws://10.0.0.1:8443/v1/relay");
        assert_eq!(c("ws://relay.example/custom"), "ws://relay.example/custom");
    }

    #[tokio::test]
    async fn a_url_this_build_cannot_use_is_a_permanent_error() {
        let me = Identity::generate(&mut OsRng);
        // Refused before any lookup or packet.
        for url in ["http://relay.example", "relay.example", "wss://", "wss:///v1/relay"] {
            let err = RelayConnection::connect(&RelayClientConfig::new(url, "f"), &me).await.err().unwrap();
            assert!(matches!(err, RelayError::Url(_)) && err.is_permanent(), "{url}: {err:?}");
            assert_eq!(err.code(), "url");
        }
        // wss:// is usable: it gets as far as the TCP connect (loopback, a
        // port where nothing listens), which is not permanent.
        for url in ["wss://127.0.0.1:1", "ws://127.0.0.1:1"] {
            let err = RelayConnection::connect(&RelayClientConfig::new(url, "f"), &me).await.err().unwrap();
            assert!(matches!(err, RelayError::Connect(_)) && !err.is_permanent(), "{url}: {err:?}");
        }
    }

    #[tokio::test]
    async fn an_unusable_extra_root_is_a_permanent_tls_error() {
        let mut cfg = RelayClientConfig::new("wss://127.0.0.1:1", "f");
        cfg.extra_roots = vec![b"not a certificate".to_vec()];
        let err = RelayConnection::connect(&cfg, &Identity::generate(&mut OsRng)).await.err().unwrap();
        assert!(matches!(err, RelayError::Tls(_)) && err.is_permanent(), "{err:?}");
        assert_eq!(err.code(), "tls");
    }
}
