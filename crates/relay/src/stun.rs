//! The STUN responder: answers RFC 5389 binding requests on the relay's UDP
//! port with the sender's address as seen from here (XOR-MAPPED-ADDRESS), so
//! a node learns its server-reflexive address. The codec is festival-node's
//! (`relay::stun`), the same one the node's query uses.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use festival_engine::wire::stun::{binding_success, parse_binding_request, MAX_STUN_BYTES};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::metrics::Metrics;

/// Answers per second, all senders together. A response is 32 bytes for a
/// 20-byte request; the cap keeps the port from being much use to anyone
/// reflecting traffic at a spoofed address. Honest nodes ask once per
/// network change.
const ANSWERS_PER_SEC: u32 = 2_000;

pub async fn serve(socket: UdpSocket, metrics: Arc<Metrics>, mut stop: watch::Receiver<bool>) {
    let mut buf = [0u8; MAX_STUN_BYTES + 1];
    let mut window = Instant::now();
    let mut answered = 0u32;
    loop {
        let (n, from) = tokio::select! {
            _ = crate::stopped(&mut stop) => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                // ICMP errors from earlier sends surface here on Linux; the
                // socket itself is fine.
                Err(e) => {
                    tracing::debug!(%e, "stun recv");
                    continue;
                }
            },
        };
        let Ok(tid) = parse_binding_request(&buf[..n]) else {
            metrics.reject("stun_malformed");
            continue;
        };
        let now = Instant::now();
        if now.duration_since(window).as_secs() >= 1 {
            window = now;
            answered = 0;
        }
        if answered >= ANSWERS_PER_SEC {
            metrics.reject("stun_rate_limited");
            continue;
        }
        answered += 1;
        if socket.send_to(&binding_success(&tid, from), from).await.is_ok() {
            metrics.stun_requests.fetch_add(1, Relaxed);
        }
    }
}
