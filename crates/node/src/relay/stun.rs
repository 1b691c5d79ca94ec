//! The STUN binding query a node sends to learn its server-reflexive
//! address from a relay; the codec is `festival_engine::wire::stun`, shared
//! with the relay's responder.

use std::net::SocketAddr;
use std::time::Duration;

pub use festival_engine::wire::stun::*;
use tokio::net::UdpSocket;

/// Ask `server` for our reflexive address from `socket`, retransmitting
/// (RFC 5389: 500 ms, doubling) until `timeout`.
pub async fn query(socket: &UdpSocket, server: SocketAddr, timeout: Duration) -> Result<SocketAddr, StunError> {
    let mut tid = [0u8; 12];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut tid);
    let req = binding_request(&tid);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut rto = Duration::from_millis(500);
    let mut buf = [0u8; MAX_STUN_BYTES + 1];
    loop {
        socket.send_to(&req, server).await.map_err(|e| StunError::Io(e.to_string()))?;
        let resend = (tokio::time::Instant::now() + rto).min(deadline);
        loop {
            match tokio::time::timeout_at(resend, socket.recv_from(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) => return Err(StunError::Io(e.to_string())),
                // Stray datagrams (another transaction, another sender) are skipped.
                Ok(Ok((n, from))) if from == server => {
                    if let Ok(addr) = parse_binding_success(&buf[..n], &tid) {
                        return Ok(addr);
                    }
                }
                Ok(Ok(_)) => {}
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(StunError::Timeout(timeout));
        }
        rto *= 2;
    }
}
