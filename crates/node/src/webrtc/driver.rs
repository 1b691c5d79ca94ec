//! Moving datagrams between an [`Endpoint`] and a tokio UDP socket.
//!
//! The pieces are separate so that an actor can `select!` over its inbox,
//! [`UdpSocket::readable`] and `sleep_until(endpoint.next_timeout())`, and
//! then call [`receive_ready`] and [`send_transmits`]. [`pump`] strings them
//! together for code that has nothing else to wait on (tests, benchmarks).

use std::io;
use std::time::Duration;

use tokio::time::Instant;

use tokio::net::UdpSocket;
use tracing::{debug, trace};

use super::{Endpoint, EndpointEvent};

/// Datagrams read per [`receive_ready`] call: bounds how long a flood on the
/// socket can hold back timers and our own sending.
pub const RECV_BATCH: usize = 64;

/// Receive buffer size: the largest UDP payload, so no datagram is ever
/// truncated into garbage.
pub const DATAGRAM_BUF: usize = 65_536;

/// Sends every [`EndpointEvent::Transmit`] in `events` and returns the other
/// events. A datagram the OS refuses (no route, interface down) is dropped:
/// ICE and SCTP retransmit, exactly as for a datagram lost on the air.
pub async fn send_transmits(socket: &UdpSocket, events: Vec<EndpointEvent>) -> Vec<EndpointEvent> {
    let mut rest = Vec::new();
    for event in events {
        match event {
            EndpointEvent::Transmit { destination, bytes, .. } => {
                if let Err(e) = socket.send_to(&bytes, destination).await {
                    debug!(error = %e, "datagram not sent");
                }
            }
            other => rest.push(other),
        }
    }
    rest
}

/// Hands the datagrams already waiting on `socket` (at most [`RECV_BATCH`])
/// to `endpoint`, without waiting. Returns how many were read. Datagrams the
/// endpoint drops are only counted there; only a socket failure is an error.
pub fn receive_ready(endpoint: &mut Endpoint, socket: &UdpSocket, buf: &mut [u8]) -> io::Result<usize> {
    receive_ready_with(endpoint, socket, buf, |_, _| false)
}

/// [`receive_ready`], offering each datagram to `take` first: one it
/// returns true for (a STUN answer for the node itself, say) does not reach
/// the endpoint.
pub fn receive_ready_with(
    endpoint: &mut Endpoint,
    socket: &UdpSocket,
    buf: &mut [u8],
    mut take: impl FnMut(std::net::SocketAddr, &[u8]) -> bool,
) -> io::Result<usize> {
    let local = socket.local_addr()?;
    let mut read = 0;
    while read < RECV_BATCH {
        match socket.try_recv_from(buf) {
            Ok((len, source)) => {
                read += 1;
                if take(source, &buf[..len]) {
                    continue;
                }
                if let Err(e) = endpoint.handle_receive(super::rtc_now(), source, local, &buf[..len]) {
                    trace!(error = %e, "datagram dropped");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            // Some systems report an ICMP error for an earlier send here;
            // it says nothing about the datagrams still queued.
            Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused) => {
                read += 1;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(read)
}

/// One turn of a simple event loop: send what is due, wait for a datagram or
/// the endpoint's next timer (at most `max_wait`), read what arrived, send
/// the replies. Returns the events other than `Transmit`, at once if some
/// were already waiting. Call it in a loop.
pub async fn pump(
    endpoint: &mut Endpoint,
    socket: &UdpSocket,
    buf: &mut [u8],
    max_wait: Duration,
) -> io::Result<Vec<EndpointEvent>> {
    let events = send_transmits(socket, endpoint.poll(super::rtc_now())).await;
    if !events.is_empty() {
        return Ok(events);
    }
    let now = Instant::now();
    let wake = endpoint.next_timeout().map_or(now + max_wait, |at| Instant::from_std(at).min(now + max_wait));
    if wake > now {
        // Timing out only means the timer is due, which the poll below handles.
        let _ = tokio::time::timeout_at(wake, socket.readable()).await;
    }
    receive_ready(endpoint, socket, buf)?;
    Ok(send_transmits(socket, endpoint.poll(super::rtc_now())).await)
}

/// Socket buffers we ask for. A burst of small SCTP packets (one per
/// message) overflows the default ~208 KiB receive buffer and SCTP then
/// stalls on its retransmission timer; the kernel caps the request at
/// `net.core.rmem_max` (x2), so this is "as large as allowed".
pub const SOCKET_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// Bind the node's one UDP socket with enlarged buffers.
pub fn bind_udp(addr: std::net::SocketAddr) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: a smaller buffer still works, just with less headroom.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}
