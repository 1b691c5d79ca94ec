//! Hand-made traffic for a node's signaling port and data channel: garbage,
//! forged or stale offers, floods, and an intruder that completes a real
//! WebRTC handshake under its own key and then sends what it likes.
//!
//! Run these inside a host with [`crate::Lan::in_host`], so the sockets live
//! in that host's namespace; async ones in [`runtime`]'s `block_on`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use festival_core::{Identity, PeerId};
use festival_node::signaling::{read_msg, write_msg, Offer, SignalError, SignalMsg, SIGNAL_VERSION};
use festival_node::webrtc::driver::{pump, DATAGRAM_BUF};
use festival_node::webrtc::{ConnId, Endpoint, EndpointConfig, EndpointEvent, SendError};
use rand_core::{OsRng, RngCore};
use tokio::net::UdpSocket;

/// How long a probe waits for the node's side of a TCP exchange: longer
/// than the node's own 5 s signaling timeout, so the node always ends first.
pub const REPLY_WAIT: Duration = Duration::from_secs(8);
/// From the signed offer to an open data channel on a LAN.
pub const OPEN_WAIT: Duration = Duration::from_secs(10);

/// A single-threaded tokio runtime for async probes on the current thread.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime")
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_millis() as u64
}

/// A fresh identity (an intruder, a forger).
pub fn identity() -> Identity {
    Identity::generate(&mut OsRng)
}

/// An offer from `from` to `to` with a fresh nonce, sent now: change fields
/// before signing to make it wrong in one way.
pub fn offer(from: PeerId, to: PeerId, festival: &str, sdp: String) -> Offer {
    let mut nonce = [0u8; 16];
    OsRng.fill_bytes(&mut nonce);
    Offer { version: SIGNAL_VERSION, festival: festival.to_owned(), from, to, nonce, sent_at: now_ms(), sdp }
}

/// Connects, writes `bytes`, half-closes, and returns whatever the node
/// sends back before it closes (or [`REPLY_WAIT`] passes). The node may
/// close (even reset) before all is written: that is a refusal, not an error.
pub fn send_raw(to: SocketAddr, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&to, REPLY_WAIT)?;
    s.set_read_timeout(Some(REPLY_WAIT))?;
    let closed = |e: &std::io::Error| {
        use std::io::ErrorKind::*;
        matches!(e.kind(), ConnectionReset | BrokenPipe | NotConnected | ConnectionAborted)
    };
    let mut reply = Vec::new();
    if let Err(e) = s.write_all(bytes).and_then(|()| s.shutdown(Shutdown::Write)) {
        return if closed(&e) { Ok(reply) } else { Err(e) };
    }
    match s.read_to_end(&mut reply) {
        Err(e) if !closed(&e) => Err(e),
        _ => Ok(reply),
    }
}

/// Opens `n` connections that say nothing, and returns them (still open):
/// sockets stay in the namespace they were made in after the thread ends.
pub fn hold_silent(to: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n).map(|_| TcpStream::connect_timeout(&to, REPLY_WAIT).expect("connect for the flood")).collect()
}

/// One signaling exchange: send `msg`, read the node's one reply.
pub async fn exchange(to: SocketAddr, msg: &SignalMsg) -> Result<SignalMsg, SignalError> {
    let mut s = tokio::net::TcpStream::connect(to).await?;
    write_msg(&mut s, msg).await?;
    read_msg(&mut s).await
}

/// A peer that signs its own honest-looking offer, opens a real data
/// channel to the node, and then sends arbitrary frames on it.
pub struct Intruder {
    pub me: Identity,
    ep: Endpoint,
    sock: UdpSocket,
    conn: ConnId,
    buf: Vec<u8>,
}

impl Intruder {
    /// Links with the node at `to` (its signaling address) whose PeerId is
    /// `peer`, from `local` (this host's address). `max_message_bytes` is
    /// what this side will send: raise it to try oversized frames.
    pub async fn link(
        local: Ipv4Addr,
        to: SocketAddr,
        peer: PeerId,
        festival: &str,
        max_message_bytes: usize,
    ) -> Result<Intruder, String> {
        let sock = UdpSocket::bind((local, 0)).await.map_err(|e| e.to_string())?;
        let addr = sock.local_addr().map_err(|e| e.to_string())?;
        let config = EndpointConfig { local_addrs: vec![addr], max_message_bytes, ..EndpointConfig::default() };
        let mut ep = Endpoint::new(config).map_err(|e| e.to_string())?;
        let conn = ConnId(1);
        let sdp = ep.create_offer(conn, Instant::now()).map_err(|e| e.to_string())?;
        let me = identity();
        let msg = offer(me.peer_id(), peer, festival, sdp).sign(&me);
        let answer = match exchange(to, &msg).await.map_err(|e| e.to_string())? {
            SignalMsg::Answer { answer, .. } => answer,
            other => return Err(format!("no answer: {other:?}")),
        };
        ep.accept_answer(conn, &answer.sdp, Instant::now()).map_err(|e| e.to_string())?;
        let mut me = Intruder { me, ep, sock, conn, buf: vec![0; DATAGRAM_BUF] };
        let by = Instant::now() + OPEN_WAIT;
        while !me.ep.is_open(conn) {
            if Instant::now() > by {
                return Err("the data channel did not open".into());
            }
            me.step().await.map_err(|e| e.to_string())?;
        }
        Ok(me)
    }

    async fn step(&mut self) -> std::io::Result<Vec<EndpointEvent>> {
        pump(&mut self.ep, &self.sock, &mut self.buf, Duration::from_millis(50)).await
    }

    /// Sends each frame (waiting out backpressure), then keeps the link
    /// going until the node has acknowledged everything or `within` passes.
    /// Returns each frame's send result and whether the link is still open.
    pub async fn send_frames(&mut self, frames: &[Vec<u8>], within: Duration) -> (Vec<Result<(), String>>, bool) {
        let by = Instant::now() + within;
        let mut results = Vec::new();
        for f in frames {
            let r = loop {
                match self.ep.send(self.conn, f) {
                    Err(SendError::Full(_)) if Instant::now() < by => {
                        let _ = self.step().await;
                    }
                    r => break r.map_err(|e| e.to_string()),
                }
            };
            results.push(r);
        }
        while Instant::now() < by && self.ep.buffered_amount(self.conn).is_some_and(|n| n > 0) {
            let _ = self.step().await;
        }
        (results, self.ep.is_open(self.conn))
    }
}
