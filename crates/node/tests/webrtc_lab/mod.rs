//! A lab of WebRTC endpoints on loopback UDP sockets, driven by one task.
//!
//! Each step polls every endpoint, sends its datagrams, waits for any socket
//! to become readable or the earliest timer (never a bare sleep), and feeds
//! what arrived. Tests wait on conditions with deadlines through
//! [`Lab::until`]. Must run inside a private network namespace.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::task::Poll;
use std::time::{Duration, Instant};

use festival_node::webrtc::driver::{receive_ready, send_transmits, DATAGRAM_BUF};
use festival_node::webrtc::{CloseReason, ConnId, Endpoint, EndpointConfig, EndpointEvent, SendError};
use tokio::net::UdpSocket;

/// Longest a step waits when no timer is due sooner; keeps connect
/// deadlines (checked between steps) responsive.
const MAX_STEP_WAIT: Duration = Duration::from_millis(20);

/// Datagrams one node sends before every node reads what has arrived. One
/// thread stands in for separate processes, whose receivers drain their
/// sockets while a sender is still sending; without this a burst of a few
/// hundred datagrams overflows the receiver's socket buffer (about 90
/// datagrams at the default 208 KiB), which separate hosts on a real link
/// would not see.
const SEND_BURST: usize = 16;

pub struct Node {
    pub ep: Endpoint,
    pub sock: UdpSocket,
    pub addr: SocketAddr,
    pub opened: Vec<ConnId>,
    pub closed: Vec<(ConnId, CloseReason)>,
    pub writable: Vec<ConnId>,
    /// Received messages, kept only while `keep_data` is set.
    pub inbox: Vec<(ConnId, Vec<u8>)>,
    pub keep_data: bool,
    pub rx_msgs: u64,
    pub rx_bytes: u64,
    /// Datagrams this node has sent.
    pub tx_datagrams: u64,
}

impl Node {
    fn record(&mut self, events: Vec<EndpointEvent>) {
        for event in events {
            match event {
                EndpointEvent::Open(c) => self.opened.push(c),
                EndpointEvent::Closed(c, why) => self.closed.push((c, why)),
                EndpointEvent::Writable(c) => self.writable.push(c),
                EndpointEvent::Data(c, bytes) => {
                    self.rx_msgs += 1;
                    self.rx_bytes += bytes.len() as u64;
                    if self.keep_data {
                        self.inbox.push((c, bytes));
                    }
                }
                EndpointEvent::Transmit { .. } => unreachable!("send_transmits keeps no transmits"),
            }
        }
    }

    pub fn is_open(&self, conn: ConnId) -> bool {
        self.opened.contains(&conn)
    }

    pub fn received_from(&self, conn: ConnId) -> Vec<&[u8]> {
        self.inbox.iter().filter(|(c, _)| *c == conn).map(|(_, b)| b.as_slice()).collect()
    }
}

pub struct Lab {
    pub nodes: Vec<Node>,
    buf: Vec<u8>,
}

/// A socket on 127.0.0.1 and an endpoint whose one host candidate is it.
pub async fn loopback_node(tune: &dyn Fn(&mut EndpointConfig)) -> Node {
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = sock.local_addr().unwrap();
    let mut config = EndpointConfig { local_addrs: vec![addr], ..Default::default() };
    tune(&mut config);
    node_on(sock, config)
}

pub fn node_on(sock: UdpSocket, config: EndpointConfig) -> Node {
    let addr = sock.local_addr().unwrap();
    Node {
        ep: Endpoint::new(config).expect("endpoint"),
        sock,
        addr,
        opened: Vec::new(),
        closed: Vec::new(),
        writable: Vec::new(),
        inbox: Vec::new(),
        keep_data: true,
        rx_msgs: 0,
        tx_datagrams: 0,
        rx_bytes: 0,
    }
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_log() {
    let filter = tracing_subscriber::EnvFilter::from_default_env();
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

impl Lab {
    pub async fn new(count: usize) -> Lab {
        Self::with_config(count, |_| {}).await
    }

    pub async fn with_config(count: usize, tune: impl Fn(&mut EndpointConfig)) -> Lab {
        let mut nodes = Vec::new();
        for _ in 0..count {
            nodes.push(loopback_node(&tune).await);
        }
        Lab::of(nodes)
    }

    pub fn of(nodes: Vec<Node>) -> Lab {
        init_log();
        Lab { nodes, buf: vec![0; DATAGRAM_BUF] }
    }

    /// Offer from `a`, answer from `b`, both sides calling the link `conn`.
    /// Returns the offer and answer SDP.
    pub fn connect(&mut self, a: usize, b: usize, conn: ConnId) -> (String, String) {
        let now = Instant::now();
        let offer = self.nodes[a].ep.create_offer(conn, now).expect("offer");
        let answer = self.nodes[b].ep.accept_offer(conn, &offer, now).expect("answer");
        self.nodes[a].ep.accept_answer(conn, &answer, now).expect("answer accepted");
        (offer, answer)
    }

    /// Connects `a` and `b` as `conn` and waits until both sides are open.
    pub async fn open(&mut self, a: usize, b: usize, conn: ConnId) {
        self.connect(a, b, conn);
        self.until("channel opens on both sides", Duration::from_secs(5), |lab| {
            lab.nodes[a].ep.is_open(conn) && lab.nodes[b].ep.is_open(conn)
        })
        .await;
    }

    /// One round: poll and send everywhere, wait for input or a timer
    /// (unless something happened that the caller may be waiting for), read.
    pub async fn step(&mut self) {
        let mut news = false;
        for i in 0..self.nodes.len() {
            let (transmits, rest): (Vec<_>, Vec<_>) = self.nodes[i]
                .ep
                .poll(Instant::now())
                .into_iter()
                .partition(|e| matches!(e, EndpointEvent::Transmit { .. }));
            news |= !rest.is_empty();
            self.nodes[i].record(rest);
            self.nodes[i].tx_datagrams += transmits.len() as u64;
            let mut transmits = transmits.into_iter().peekable();
            while transmits.peek().is_some() {
                let burst: Vec<_> = transmits.by_ref().take(SEND_BURST).collect();
                send_transmits(&self.nodes[i].sock, burst).await;
                self.read_all();
            }
        }
        let now = Instant::now();
        let cap = now + MAX_STEP_WAIT;
        let wake = self.nodes.iter().filter_map(|n| n.ep.next_timeout()).fold(cap, Instant::min);
        if !news && wake > now {
            let sockets: Vec<&UdpSocket> = self.nodes.iter().map(|n| &n.sock).collect();
            let any_readable = poll_fn(|cx| {
                if sockets.iter().any(|s| s.poll_recv_ready(cx).is_ready()) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            });
            let _ = tokio::time::timeout_at(wake.into(), any_readable).await;
        }
        self.read_all();
    }

    fn read_all(&mut self) {
        for node in &mut self.nodes {
            receive_ready(&mut node.ep, &node.sock, &mut self.buf).expect("socket readable");
        }
    }

    /// Steps until `done` holds; panics with `what` after `limit`.
    pub async fn until(&mut self, what: &str, limit: Duration, mut done: impl FnMut(&mut Lab) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out after {limit:?} waiting until: {what}");
            self.step().await;
        }
    }

    /// Sends `messages` in order from node `from` on `conn`, offering each
    /// again after `Full` (backpressure), and steps until node `to` has
    /// received `messages.len()` more messages.
    pub async fn send_all(&mut self, from: usize, to: usize, conn: ConnId, messages: &[Vec<u8>], limit: Duration) {
        let deadline = Instant::now() + limit;
        let target = self.nodes[to].rx_msgs + messages.len() as u64;
        let mut next = 0;
        while self.nodes[to].rx_msgs < target {
            assert!(Instant::now() < deadline, "timed out after {limit:?}: {next} of {} sent", messages.len());
            while next < messages.len() {
                match self.nodes[from].ep.send(conn, &messages[next]) {
                    Ok(()) => next += 1,
                    Err(SendError::Full(_)) => break,
                    Err(e) => panic!("send failed: {e}"),
                }
            }
            self.step().await;
        }
    }
}
