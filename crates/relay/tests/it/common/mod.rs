//! Shared test harness: a relay in-process or as a child process, raw and
//! authenticated WebSockets, `/metrics` over plain HTTP, and a small node
//! (Engine + RelayClient) wired the way the node's actor will wire it.
//!
//! Everything here binds 127.0.0.1 only; run the tests inside
//! `unshare --net` (see scripts/test). Waits poll a condition until a
//! deadline; whatever a test starts is stopped when its guard drops.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use festival_core::sync::{Content, Input, LinkKind};
use festival_core::{Identity, LinkId, MessageId, PeerId, RoomId};
use festival_node::engine::{Effect, Engine};
use festival_node::local::LocalNode;
use festival_node::relay::wire::{AuthProof, Challenge, RelayMsg, RELAY_VERSION};
use festival_node::relay::{RelayClient, RelayClientConfig, RelayEvent, RelayHandle};
use festival_relay::RelayConfig;
use futures_util::{SinkExt, StreamExt};
use rand_core::OsRng;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// TLS settings of a test client of the relay's HTTP side (`/healthz`,
/// `/metrics`): `None` for plain HTTP.
pub type HttpTls = Option<Arc<rustls::ClientConfig>>;

pub const FESTIVAL: &str = "testfest";
/// Every wait in these tests gives up after this long.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Small limits so tests reach them quickly.
pub fn test_config(dir: &Path) -> RelayConfig {
    RelayConfig {
        data_dir: dir.to_owned(),
        festival: Some(FESTIVAL.into()),
        auth_timeout_secs: 1,
        idle_timeout_secs: 3,
        ..RelayConfig::default()
    }
}

/// A relay running in this process. Dropping it shuts it down.
pub struct TestRelay {
    pub addr: SocketAddr,
    pub stun: SocketAddr,
    /// Set when the relay terminates TLS: how this harness reaches its HTTP side.
    pub tls: HttpTls,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), festival_relay::RelayError>>>,
}

impl TestRelay {
    pub async fn start(cfg: RelayConfig) -> TestRelay {
        Self::start_with(cfg, None).await
    }

    /// A relay with `cfg.tls_cert`/`tls_key` set; the harness trusts `ca`.
    pub async fn start_tls(cfg: RelayConfig, ca: &TestCa) -> TestRelay {
        assert!(cfg.tls_cert.is_some() && cfg.tls_key.is_some(), "a TLS relay needs tls_cert and tls_key");
        Self::start_with(cfg, Some(ca.client_config())).await
    }

    async fn start_with(cfg: RelayConfig, tls: HttpTls) -> TestRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (addr, stun) = (listener.local_addr().unwrap(), udp.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(festival_relay::run(listener, Some(udp), cfg, async move {
            let _ = rx.await;
        }));
        let relay = TestRelay { addr, stun, tls, stop: Some(tx), task: Some(task) };
        let url = relay.http("/healthz");
        eventually("the relay answers /healthz", || async {
            get(&url, &relay.tls).await.is_some_and(|(s, _)| s == 200)
        })
        .await;
        relay
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn http(&self, path: &str) -> String {
        format!("{}{}", self.addr, path)
    }

    pub async fn metric(&self, line_prefix: &str) -> u64 {
        metric_via(self.addr, line_prefix, &self.tls).await
    }

    pub async fn rejections(&self, reason: &str) -> u64 {
        self.metric(&format!("festival_relay_rejections_total{{reason=\"{reason}\"}}")).await
    }

    /// Shut down and wait until the store is closed.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(DEADLINE, t).await.expect("relay stops").unwrap().unwrap();
        }
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// The festival-relay binary as a child process (killed when dropped).
pub struct RelayProcess {
    pub addr: SocketAddr,
    child: tokio::process::Child,
}

impl RelayProcess {
    pub async fn start(dir: &Path) -> RelayProcess {
        Self::start_with(dir, &[], None).await
    }

    /// With extra flags; `tls`: how to reach its HTTP side if they turn TLS on.
    pub async fn start_with(dir: &Path, extra: &[&std::ffi::OsStr], tls: HttpTls) -> RelayProcess {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_festival-relay"))
            .args(["--listen", "127.0.0.1:0", "--no-stun", "--festival", FESTIVAL, "--data-dir"])
            .arg(dir)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("festival-relay starts");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        tokio::time::timeout(DEADLINE, BufReader::new(stdout).read_line(&mut line))
            .await
            .expect("the relay prints its address")
            .unwrap();
        let addr = line.split('"').nth(3).expect("listen address").parse().unwrap();
        assert!(line.contains(&format!("\"tls\":{}", tls.is_some())), "TLS as asked: {line}");
        let p = RelayProcess { addr, child };
        let url = format!("{addr}/healthz");
        eventually("the relay process answers /healthz", || async {
            get(&url, &tls).await.is_some_and(|(s, _)| s == 200)
        })
        .await;
        p
    }

    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// SIGKILL: no shutdown path runs.
    pub async fn kill9(mut self) {
        self.child.start_kill().unwrap();
        let _ = self.child.wait().await;
    }
}

/// Poll `cond` until it holds; panic after [`DEADLINE`].
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !cond().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// GET over plain HTTP/1.1: (status, body).
pub async fn http_get(addr_path: &str) -> Option<(u16, String)> {
    get(addr_path, &None).await
}

/// GET over HTTP/1.1, in TLS if `tls` is set (the relay's name: 127.0.0.1).
pub async fn get(addr_path: &str, tls: &HttpTls) -> Option<(u16, String)> {
    let (addr, path) = addr_path.split_at(addr_path.find('/').unwrap());
    let tcp = TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n");
    let mut buf = Vec::new();
    match tls {
        None => {
            let mut s = tcp;
            s.write_all(request.as_bytes()).await.ok()?;
            tokio::time::timeout(DEADLINE, s.read_to_end(&mut buf)).await.ok()?.ok()?;
        }
        Some(cfg) => {
            let name = rustls::pki_types::ServerName::IpAddress(tcp.peer_addr().ok()?.ip().into());
            let mut s = tokio_rustls::TlsConnector::from(cfg.clone()).connect(name, tcp).await.ok()?;
            s.write_all(request.as_bytes()).await.ok()?;
            // What arrived counts even if the server's close skips close_notify.
            let _ = tokio::time::timeout(DEADLINE, s.read_to_end(&mut buf)).await.ok()?;
        }
    }
    let buf = String::from_utf8(buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((status, body))
}

/// The value of the metric line starting with `line_prefix` (0 if absent).
pub async fn metric(addr: SocketAddr, line_prefix: &str) -> u64 {
    metric_via(addr, line_prefix, &None).await
}

pub async fn metric_via(addr: SocketAddr, line_prefix: &str, tls: &HttpTls) -> u64 {
    let (_, body) = get(&format!("{addr}/metrics"), tls).await.expect("/metrics answers");
    body.lines().find_map(|l| l.strip_prefix(line_prefix).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0)
}

/// A CA of our own and a relay certificate for 127.0.0.1 signed by it, as
/// PEM files (the relay's `tls_cert`, `tls_key`; the node's `--relay-ca`).
pub struct TestCa {
    /// The CA certificate (DER): a node's extra root.
    pub ca_der: Vec<u8>,
    pub ca_pem: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestCa {
    pub fn new() -> TestCa {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "Festival Chat test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        leaf.distinguished_name.push(DnType::CommonName, "festival-relay test");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = leaf.signed_by(&leaf_key, &ca).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("ca.pem"), ca.pem()).unwrap();
        std::fs::write(path("relay.pem"), leaf.pem()).unwrap();
        std::fs::write(path("relay.key"), leaf_key.serialize_pem()).unwrap();
        TestCa {
            ca_der: ca.der().to_vec(),
            ca_pem: path("ca.pem"),
            cert: path("relay.pem"),
            key: path("relay.key"),
            _dir: dir,
        }
    }

    /// `cfg` with this CA's relay certificate and key.
    pub fn relay_config(&self, cfg: RelayConfig) -> RelayConfig {
        RelayConfig { tls_cert: Some(self.cert.clone()), tls_key: Some(self.key.clone()), ..cfg }
    }

    /// A rustls client that trusts this CA (and the compiled-in roots), as
    /// the node builds it.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        festival_node::relay::tls::client_config(std::slice::from_ref(&self.ca_der)).unwrap()
    }
}

pub fn identity() -> Identity {
    Identity::generate(&mut OsRng)
}

pub fn client_config(url: &str) -> RelayClientConfig {
    let mut cfg = RelayClientConfig::new(url, FESTIVAL);
    cfg.backoff_min = Duration::from_millis(50);
    cfg.backoff_max = Duration::from_millis(500);
    cfg.keepalive = Duration::from_millis(500);
    cfg
}

/// A WebSocket that has received the relay's challenge and said nothing yet.
pub async fn raw(relay_addr: SocketAddr) -> (Ws, Challenge) {
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{relay_addr}/v1/relay")).await.expect("websocket opens");
    match next_msg(&mut ws).await {
        Some(RelayMsg::Challenge(c)) => (ws, c),
        other => panic!("expected a challenge, got {other:?}"),
    }
}

/// A WebSocket from the source address `from` (any 127.x.y.z reaches a
/// relay on 127.0.0.1 over loopback, so one test plays several hosts): its
/// challenge, or the HTTP status the relay refused it with.
pub async fn raw_from(relay_addr: SocketAddr, from: std::net::IpAddr) -> Result<(Ws, Challenge), u16> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).expect("bind a loopback source address");
    let tcp = socket.connect(relay_addr).await.expect("tcp connects");
    let url = format!("ws://{relay_addr}/v1/relay");
    match tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp)).await {
        Ok((mut ws, _)) => match next_msg(&mut ws).await {
            Some(RelayMsg::Challenge(c)) => Ok((ws, c)),
            other => panic!("expected a challenge, got {other:?}"),
        },
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("websocket from {from} failed: {e}"),
    }
}

/// A socket from `from` past authentication.
pub async fn authed_from(relay_addr: SocketAddr, from: std::net::IpAddr, me: &Identity) -> Result<Ws, u16> {
    let (mut ws, c) = raw_from(relay_addr, from).await?;
    send(&mut ws, &proof(me, &c, FESTIVAL)).await;
    match next_msg(&mut ws).await {
        Some(RelayMsg::Welcome { .. }) => Ok(ws),
        other => panic!("expected a welcome, got {other:?}"),
    }
}

pub fn proof(me: &Identity, challenge: &Challenge, festival: &str) -> RelayMsg {
    AuthProof {
        version: RELAY_VERSION,
        peer: me.peer_id(),
        relay: challenge.relay,
        nonce: challenge.nonce,
        festival: festival.into(),
        client_nonce: [1; 32],
    }
    .sign(me)
}

/// A raw socket past authentication.
pub async fn authed(relay_addr: SocketAddr, me: &Identity) -> Ws {
    let (mut ws, c) = raw(relay_addr).await;
    send(&mut ws, &proof(me, &c, FESTIVAL)).await;
    match next_msg(&mut ws).await {
        Some(RelayMsg::Welcome { .. }) => ws,
        other => panic!("expected a welcome, got {other:?}"),
    }
}

pub async fn send(ws: &mut Ws, msg: &RelayMsg) {
    ws.send(Message::Binary(msg.encode().into())).await.expect("send");
}

/// The next relay message (skipping pings), or `None` on close/error.
pub async fn next_msg(ws: &mut Ws) -> Option<RelayMsg> {
    loop {
        match tokio::time::timeout(DEADLINE, ws.next()).await.expect("a message in time")? {
            Ok(Message::Binary(b)) => return Some(RelayMsg::decode(&b).expect("relay messages decode")),
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            _ => return None,
        }
    }
}

/// Read until the relay closes; the close code (panics if none comes).
pub async fn close_code(ws: &mut Ws) -> u16 {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.expect("the relay closes in time");
        match msg {
            Some(Ok(Message::Close(Some(f)))) => return f.code.into(),
            Some(Ok(Message::Close(None))) => panic!("closed without a code"),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("socket failed before a close frame: {e}"),
            None => panic!("socket ended without a close frame"),
        }
    }
}

enum NodeCmd {
    Send { room: RoomId, text: String, reply: oneshot::Sender<MessageId> },
    Dm { to: PeerId, text: String, reply: oneshot::Sender<MessageId> },
}

/// A node with its own store, linked only through a relay: an `Engine`
/// driven by a `RelayClient`, exactly as the actor will do it.
pub struct TestNode {
    pub id: PeerId,
    pub store: festival_store::Store,
    /// Ids the relay acknowledged as committed (`Stored`).
    pub stored: Arc<Mutex<Vec<MessageId>>>,
    pub connected: Arc<Mutex<u32>>,
    /// The identity of the relay it last connected to.
    pub relay_id: Arc<Mutex<Option<PeerId>>>,
    pub relay: RelayHandle,
    cmd: mpsc::Sender<NodeCmd>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestNode {
    pub async fn start(dir: &Path, name: &str, url: &str) -> TestNode {
        Self::start_with(dir, name, client_config(url)).await
    }

    pub async fn start_with(dir: &Path, name: &str, cfg: RelayClientConfig) -> TestNode {
        let local = LocalNode::open(dir).await.unwrap();
        if local.store.identity().await.unwrap().is_none() {
            local.init(name).await.unwrap();
        }
        let me = local.store.identity().await.unwrap().unwrap().identity;
        let id = me.peer_id();
        let engine = local.engine().await.unwrap();
        let (relay, events) = RelayClient::spawn(cfg, me);
        let (cmd_tx, cmd_rx) = mpsc::channel(16);
        let stored = Arc::new(Mutex::new(Vec::new()));
        let connected = Arc::new(Mutex::new(0));
        let relay_id = Arc::new(Mutex::new(None));
        let watch = (stored.clone(), connected.clone(), relay_id.clone());
        let task = tokio::spawn(drive(engine, relay.clone(), events, cmd_rx, watch));
        TestNode { id, store: local.store.clone(), stored, connected, relay_id, relay, cmd: cmd_tx, task: Some(task) }
    }

    pub async fn send(&self, room: &str, text: &str) -> MessageId {
        let (reply, rx) = oneshot::channel();
        let room = room.parse().unwrap();
        self.cmd.send(NodeCmd::Send { room, text: text.into(), reply }).await.unwrap();
        rx.await.unwrap()
    }

    pub async fn dm(&self, to: PeerId, text: &str) -> MessageId {
        let (reply, rx) = oneshot::channel();
        self.cmd.send(NodeCmd::Dm { to, text: text.into(), reply }).await.unwrap();
        rx.await.unwrap()
    }

    pub async fn has(&self, id: &MessageId) -> bool {
        matches!(self.store.get(id).await, Ok(Some(_)))
    }

    pub fn acked(&self, id: &MessageId) -> bool {
        self.stored.lock().unwrap().contains(id)
    }

    pub async fn stop(mut self) {
        self.relay.shutdown().await;
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(DEADLINE, t).await;
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// What a test watches of a node: ids acknowledged, connections made, the
/// relay connected to.
type Watch = (Arc<Mutex<Vec<MessageId>>>, Arc<Mutex<u32>>, Arc<Mutex<Option<PeerId>>>);

async fn drive(
    mut engine: Engine,
    relay: RelayHandle,
    mut events: mpsc::Receiver<RelayEvent>,
    mut cmds: mpsc::Receiver<NodeCmd>,
    (stored, connected, relay_id): Watch,
) {
    // session -> link; one relay session at a time.
    let mut current: Option<(festival_node::relay::SessionId, LinkId)> = None;
    let mut wake: Option<u64> = None;
    loop {
        let sleep = wake.map(|t| Duration::from_millis(t.saturating_sub(festival_node::clock::now_ms())));
        let fx = tokio::select! {
            ev = events.recv() => match ev {
                None => return,
                Some(RelayEvent::Connected { session, relay: peer, .. }) => {
                    let link = LinkId(session.0);
                    current = Some((session, link));
                    *connected.lock().unwrap() += 1;
                    *relay_id.lock().unwrap() = Some(peer);
                    engine.handle(Input::LinkUp { link, peer, kind: LinkKind::Relay }).await
                }
                Some(RelayEvent::Frame { session, bytes }) => match current {
                    Some((s, link)) if s == session => engine.handle(Input::Frame { link, bytes }).await,
                    _ => Vec::new(),
                },
                Some(RelayEvent::Stored { ids, .. }) => {
                    stored.lock().unwrap().extend(ids);
                    Vec::new()
                }
                Some(RelayEvent::Disconnected { session: Some(s), retry_in, .. }) => {
                    let mut fx = Vec::new();
                    if let Some((cur, link)) = current.filter(|(cur, _)| *cur == s) {
                        let _ = cur;
                        current = None;
                        fx = engine.handle(Input::LinkDown { link }).await;
                    }
                    if retry_in.is_none() {
                        return;
                    }
                    fx
                }
                Some(RelayEvent::Disconnected { retry_in: None, .. }) => return,
                Some(_) => Vec::new(),
            },
            cmd = cmds.recv() => match cmd {
                None => return,
                Some(NodeCmd::Send { room, text, reply }) => {
                    let mut fx = Vec::new();
                    if !engine.node().rooms().any(|r| *r == room) {
                        engine.store().join_room(&room, room.as_str(), festival_node::clock::now_ms()).await.unwrap();
                        fx = engine.handle(Input::JoinRoom(room.clone())).await;
                    }
                    let (id, more) = engine.send(room, Content::Text(text)).await.expect("message saved");
                    fx.extend(more);
                    let _ = reply.send(id);
                    fx
                }
                Some(NodeCmd::Dm { to, text, reply }) => {
                    let (id, fx) = engine.send(RoomId::direct(), Content::Direct { to, text }).await.expect("dm saved");
                    let _ = reply.send(id);
                    fx
                }
            },
            input = engine.loaded() => engine.handle(input).await,
            _ = tokio::time::sleep(sleep.unwrap_or(Duration::from_secs(3600))), if sleep.is_some() => {
                wake = None;
                engine.handle(Input::Tick).await
            }
        };
        for e in fx {
            match e {
                Effect::Send { link, bytes } => {
                    if let Some((session, l)) = current {
                        if l == link {
                            let _ = relay.send_frame(session, bytes);
                        }
                    }
                }
                Effect::WakeAt(t) => wake = Some(t),
                _ => {}
            }
        }
    }
}

/// A signed offer from `from` to `to`, as a node sends one.
pub fn offer(from: &Identity, to: PeerId) -> festival_node::signaling::SignalMsg {
    festival_node::signaling::Offer {
        version: 1,
        festival: FESTIVAL.into(),
        from: from.peer_id(),
        to,
        nonce: [3; 16],
        sent_at: festival_node::clock::now_ms(),
        sdp: "v=0 offer".into(),
    }
    .sign(from)
}

/// The client's next signal or unreachable notice.
pub async fn next_signal(events: &mut mpsc::Receiver<RelayEvent>) -> RelayEvent {
    loop {
        let ev = tokio::time::timeout(DEADLINE, events.recv()).await.expect("an event in time").expect("client runs");
        if matches!(ev, RelayEvent::Signal { .. } | RelayEvent::Unreachable { .. }) {
            return ev;
        }
    }
}

/// Wait until the client is connected.
pub async fn connected(events: &mut mpsc::Receiver<RelayEvent>) {
    loop {
        match tokio::time::timeout(DEADLINE, events.recv()).await.expect("connects in time").unwrap() {
            RelayEvent::Connected { .. } => return,
            RelayEvent::Disconnected { error, .. } => panic!("{error}"),
            _ => {}
        }
    }
}
