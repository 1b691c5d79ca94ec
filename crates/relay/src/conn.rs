//! One node's WebSocket: challenge, proof, welcome; then frames and signals
//! in (rate-limited per identity) and the hub's messages out, until the node
//! leaves, goes idle, misbehaves or the relay shuts down.
//!
//! Every refusal closes with a code from `festival_engine::wire::relay::close`
//! and counts in `/metrics` under that code's label.

use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use festival_core::frame::Frame;
use festival_core::{LinkId, PeerId};
use festival_engine::wire::relay::{close, AuthProof, Challenge, RelayMsg, Welcome, WireError, RELAY_VERSION};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use rand_core::{OsRng, RngCore};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::Instrument;

use crate::hub::HubIn;
use crate::limits::{Admit, SlotGuard};
use crate::Shared;

/// After sending a close frame, read (and drop) what the node still sends
/// for this long, so the close reaches it before the TCP connection goes:
/// closing a socket with unread data makes the kernel reset it, and a reset
/// can destroy the close frame before the node reads it.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

type Tx = SplitSink<WebSocket, Message>;
type Rx = SplitStream<WebSocket>;

/// Serve one upgraded socket. `_slot` holds its connection slot until the
/// end, `unauthenticated` its unauthenticated slot until the welcome is sent
/// or the socket is refused, which is within `auth_timeout_secs`.
pub async fn serve(socket: WebSocket, ip: IpAddr, _slot: SlotGuard, unauthenticated: SlotGuard, shared: Arc<Shared>) {
    shared.metrics.connections_total.fetch_add(1, Relaxed);
    let (mut tx, mut rx) = socket.split();
    // One deadline for all of it: a socket that never reads the challenge,
    // or never reads the welcome, is held no longer than a silent one.
    let authenticated = tokio::time::timeout(shared.cfg.auth_timeout(), handshake(&mut tx, &mut rx, &shared)).await;
    drop(unauthenticated);
    let peer = match authenticated {
        Ok(Ok(peer)) => peer,
        Ok(Err(code)) => return refuse(tx, rx, code, &shared).await,
        Err(_) => return refuse(tx, rx, close::AUTH_REQUIRED, &shared).await,
    };
    shared.metrics.authenticated_total.fetch_add(1, Relaxed);
    // A debug span: an enabled one is entered and left at every poll of the
    // connection (every frame), ~1 % of an instance's CPU at 1,500 msgs/s.
    // What is logged at info names the node itself (the refusal below).
    let span = tracing::debug_span!("node", peer = %peer.short(), %ip);
    serve_authenticated(tx, rx, peer, ip, shared).instrument(span).await
}

async fn serve_authenticated(mut tx: Tx, mut rx: Rx, peer: PeerId, ip: IpAddr, shared: Arc<Shared>) {
    let (out_tx, mut out_rx) = mpsc::channel(shared.cfg.outbound_queue);
    let (kill_tx, mut kill_rx) = oneshot::channel();
    let (reply_tx, reply_rx) = oneshot::channel();
    let open = HubIn::Open { peer, out: out_tx, kill: kill_tx, reply: reply_tx };
    let link = match shared.hub.send(open).await {
        Ok(()) => match reply_rx.await {
            Ok(link) => link,
            Err(_) => return close_with(tx, rx, close::GOING_AWAY).await,
        },
        Err(_) => return close_with(tx, rx, close::GOING_AWAY).await,
    };
    tracing::debug!(?link, "node connected");
    let end = session(&mut tx, &mut rx, &mut out_rx, &mut kill_rx, peer, link, &shared).await;
    let _ = shared.hub.send(HubIn::Closed { link }).await;
    match end {
        End::Close(code) if code == close::GOING_AWAY => close_with(tx, rx, code).await,
        End::Close(code) => {
            let span = tracing::info_span!("node", peer = %peer.short(), %ip);
            refuse(tx, rx, code, &shared).instrument(span).await
        }
        End::Gone => {}
    }
}

enum End {
    Close(u16),
    /// The node closed or the socket broke: nothing to say.
    Gone,
}

async fn session(
    tx: &mut Tx,
    rx: &mut Rx,
    out_rx: &mut mpsc::Receiver<Bytes>,
    kill_rx: &mut oneshot::Receiver<u16>,
    peer: PeerId,
    link: LinkId,
    shared: &Shared,
) -> End {
    let idle = shared.cfg.idle_timeout();
    let mut stop = shared.shutdown.clone();
    let mut last_heard = Instant::now();
    let mut hellos = HelloBudget::new(Instant::now());
    // The newest hello past the budget: it names the node's rooms as they
    // are now (a node re-hellos when they change and stops once one is
    // acknowledged), so it is handed on when the budget allows, not lost.
    let mut held_hello: Option<Vec<u8>> = None;
    // A refused message costs a pause of a quarter of what it would take
    // of the rate (frames or bytes, whichever binds): a socket past its
    // rate is read at four times the rate, not at wire speed (TCP holds the
    // sender back), and still reaches the flood close.
    let frame_pause = 0.25 / f64::from(shared.cfg.frames_per_sec.max(1));
    let byte_pause = 0.25 / (shared.cfg.bytes_per_sec.max(1) as f64);
    let refused_pause = |len: usize| Duration::from_secs_f64(frame_pause.max(byte_pause * len as f64));
    loop {
        tokio::select! {
            // The hub drops a connection's queue and sends its close code at
            // the same moment: the code must win, or the node would see its
            // socket reset instead of the reason.
            biased;
            _ = crate::stopped(&mut stop) => return End::Close(close::GOING_AWAY),
            code = &mut *kill_rx => return code.map_or(End::Gone, End::Close),
            _ = tokio::time::sleep_until(hellos.next_at()), if held_hello.is_some() => {
                if hellos.take(Instant::now()) {
                    let bytes = held_hello.take().expect("held");
                    if shared.hub.send(HubIn::Frame { link, bytes }).await.is_err() {
                        return End::Close(close::GOING_AWAY);
                    }
                }
            }
            out = out_rx.recv() => {
                let Some(bytes) = out else {
                    return kill_rx.try_recv().map_or(End::Gone, End::Close);
                };
                if write_batch(tx, out_rx, bytes, shared).await.is_err() {
                    return End::Gone;
                }
            }
            msg = tokio::time::timeout_at(last_heard + idle, rx.next()) => {
                let msg = match msg {
                    Err(_) => return End::Close(close::IDLE),
                    Ok(None) => return End::Gone,
                    Ok(Some(Err(e))) => return read_error(e, shared),
                    Ok(Some(Ok(m))) => m,
                };
                last_heard = Instant::now();
                let bytes = match msg {
                    Message::Binary(b) => b,
                    Message::Text(_) => return End::Close(close::UNSUPPORTED_DATA),
                    Message::Close(_) => return End::Gone,
                    Message::Ping(_) | Message::Pong(_) => continue,
                };
                shared.metrics.bytes_in.fetch_add(bytes.len() as u64, Relaxed);
                if bytes.len() > shared.max_message {
                    return End::Close(close::TOO_BIG);
                }
                let (to_hub, len) = match RelayMsg::decode(&bytes) {
                    Ok(RelayMsg::Frame(f)) => {
                        let n = f.len();
                        (HubIn::Frame { link, bytes: f }, n)
                    }
                    Ok(RelayMsg::Signal { peer: to, msg }) => {
                        let n = msg.len();
                        (HubIn::Signal { link, to, msg }, n)
                    }
                    // Handshake messages again, or what only a relay sends.
                    Ok(_) | Err(_) => return End::Close(close::MALFORMED),
                };
                match shared.rates.admit(peer, len, Instant::now()) {
                    Admit::Yes => {}
                    Admit::No => {
                        shared.metrics.reject("rate_limited");
                        tokio::time::sleep(refused_pause(len)).await;
                        continue;
                    }
                    Admit::Flood => return End::Close(close::RATE_LIMITED),
                }
                // A node says hello once, and again when its rooms change;
                // more is a flood that would cost the hub a look at up to
                // 256 rooms each. Held here: only the newest goes on, when
                // the budget allows.
                let to_hub = match to_hub {
                    HubIn::Frame { bytes, .. } if Frame::is_hello(&bytes) && !hellos.take(Instant::now()) => {
                        shared.metrics.reject("hello_rate");
                        held_hello = Some(bytes);
                        continue;
                    }
                    other => other,
                };
                let frame = matches!(to_hub, HubIn::Frame { .. });
                if shared.hub.send(to_hub).await.is_err() {
                    return End::Close(close::GOING_AWAY);
                }
                // Counted once in the hub's queue (a test orders on it).
                if frame {
                    shared.metrics.frames_in.fetch_add(1, Relaxed);
                }
            }
        }
    }
}

/// Hellos one connection may send: [`HELLO_BURST`] at once, then one per
/// [`HELLO_EVERY`] (a node re-hellos when it joins or leaves a room).
const HELLO_BURST: f64 = 4.0;
const HELLO_EVERY: Duration = Duration::from_secs(1);

struct HelloBudget {
    tokens: f64,
    at: Instant,
}

impl HelloBudget {
    fn new(now: Instant) -> Self {
        HelloBudget { tokens: HELLO_BURST, at: now }
    }

    /// When the next hello may pass.
    fn next_at(&self) -> Instant {
        let missing = (1.0 - self.tokens).max(0.0);
        self.at + HELLO_EVERY.mul_f64(missing)
    }

    fn take(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() / HELLO_EVERY.as_secs_f64();
        self.tokens = (self.tokens + refill).min(HELLO_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Messages written before one flush: under fan-out a node's queue holds
/// many, and one write per batch costs far fewer syscalls than one per message.
const WRITE_BATCH: usize = 64;

/// Write `first` and whatever else is already queued (up to a batch), then flush.
async fn write_batch(
    tx: &mut Tx,
    out_rx: &mut mpsc::Receiver<Bytes>,
    first: Bytes,
    shared: &Shared,
) -> Result<(), axum::Error> {
    let mut next = Some(first);
    let mut n = 0;
    while let Some(bytes) = next.take() {
        shared.metrics.bytes_out.fetch_add(bytes.len() as u64, Relaxed);
        tx.feed(Message::Binary(bytes)).await?;
        n += 1;
        if n < WRITE_BATCH {
            next = out_rx.try_recv().ok();
        }
    }
    tx.flush().await
}

/// A read error: a message over the hard size cap ends the socket (the
/// stream is mid-message, no close frame can follow); anything else is a
/// broken connection.
fn read_error(e: axum::Error, shared: &Shared) -> End {
    let text = e.to_string();
    if text.contains("too long") || text.contains("Space limit exceeded") || text.contains("capacity") {
        shared.metrics.reject(close::label(close::TOO_BIG));
    }
    tracing::debug!(error = %text, "socket read failed");
    End::Gone
}

/// Challenge, proof, welcome. On failure: the close code to send.
async fn handshake(tx: &mut Tx, rx: &mut Rx, shared: &Shared) -> Result<PeerId, u16> {
    let mut nonce = [0u8; 32];
    OsRng.fill_bytes(&mut nonce);
    let challenge = Challenge { version: RELAY_VERSION, relay: shared.relay_id, nonce };
    let hello = RelayMsg::Challenge(challenge.clone()).encode();
    tx.send(Message::Binary(hello.into())).await.map_err(|_| close::GOING_AWAY)?;
    // The caller's deadline bounds this wait.
    let bytes = match rx.next().await {
        None | Some(Err(_)) => return Err(close::AUTH_REQUIRED),
        Some(Ok(Message::Binary(b))) => b,
        Some(Ok(Message::Text(_))) => return Err(close::UNSUPPORTED_DATA),
        Some(Ok(_)) => return Err(close::AUTH_REQUIRED),
    };
    if bytes.len() > shared.max_message {
        return Err(close::TOO_BIG);
    }
    let (proof, sig) = match RelayMsg::decode(&bytes) {
        Ok(RelayMsg::Auth { proof, sig }) => (proof, sig),
        Ok(_) => return Err(close::AUTH_REQUIRED),
        Err(_) => return Err(close::MALFORMED),
    };
    proof.verify(&sig, &challenge).map_err(|e| match e {
        WireError::Version(_) => close::VERSION,
        WireError::BadSignature => close::BAD_SIGNATURE,
        WireError::WrongChallenge | WireError::Malformed(_) => close::WRONG_CHALLENGE,
    })?;
    if proof.peer == shared.relay_id {
        return Err(close::WRONG_CHALLENGE);
    }
    if shared.cfg.festival.as_ref().is_some_and(|f| *f != proof.festival) {
        return Err(close::WRONG_FESTIVAL);
    }
    let welcome = welcome_for(&proof, shared);
    tx.send(Message::Binary(welcome.encode().into())).await.map_err(|_| close::GOING_AWAY)?;
    Ok(proof.peer)
}

fn welcome_for(proof: &AuthProof, shared: &Shared) -> RelayMsg {
    Welcome {
        version: RELAY_VERSION,
        relay: shared.relay_id,
        peer: proof.peer,
        client_nonce: proof.client_nonce,
        max_frame: shared.cfg.max_frame_bytes as u32,
        idle_timeout_ms: shared.cfg.idle_timeout().as_millis() as u64,
        stun_port: shared.stun_port,
    }
    .sign(&shared.identity)
}

/// Close for a refusal: counted under the code's label.
async fn refuse(tx: Tx, rx: Rx, code: u16, shared: &Shared) {
    shared.metrics.reject(close::label(code));
    tracing::info!(code, reason = close::label(code), "closing a relay socket");
    close_with(tx, rx, code).await;
}

async fn close_with(mut tx: Tx, mut rx: Rx, code: u16) {
    let frame = CloseFrame { code, reason: close::label(code).into() };
    if tx.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        while let Some(Ok(m)) = rx.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}
