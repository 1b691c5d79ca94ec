//! What can go wrong at the WebRTC boundary. Every failure that input from
//! the network or from a signaling peer can cause is one of these; none of
//! them panics.

use std::net::SocketAddr;

use thiserror::Error;

use super::ConnId;

/// A failed endpoint operation (set-up, signaling, an incoming datagram).
#[derive(Debug, Error)]
pub enum RtcError {
    #[error("the crypto provider could not generate a DTLS certificate")]
    Certificate,
    #[error("no local address: the endpoint needs at least one host candidate")]
    NoLocalAddress,
    #[error("{0} cannot be a host candidate (wildcard, link-local, broadcast or multicast)")]
    BadLocalAddress(SocketAddr),
    #[error("invalid endpoint configuration: {0}")]
    Config(&'static str),
    #[error("connection {0} already exists")]
    DuplicateConn(ConnId),
    #[error("no connection {0}")]
    UnknownConn(ConnId),
    #[error("connection {0} has no offer waiting for an answer")]
    NoPendingOffer(ConnId),
    #[error("unparseable SDP")]
    Sdp(#[source] str0m::error::SdpError),
    #[error("SDP rejected")]
    SdpRejected(#[source] str0m::RtcError),
    #[error("datagram is not STUN, DTLS, RTP or RTCP")]
    Malformed(#[source] str0m::error::NetError),
    #[error("datagram belongs to no connection")]
    UnknownPeer,
    #[error("connection {conn} refused the datagram")]
    Input {
        conn: ConnId,
        #[source]
        source: str0m::RtcError,
    },
    #[error("str0m panicked while handling connection {0}; the connection was dropped")]
    Panicked(ConnId),
    #[error("str0m misbehaved: {0}")]
    Internal(&'static str),
}

/// A message that was not accepted for sending.
#[derive(Debug, Error)]
pub enum SendError {
    #[error("no connection {0}")]
    UnknownConn(ConnId),
    #[error("the data channel of connection {0} is not open")]
    NotOpen(ConnId),
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    /// The send buffer has no room for this message now. Keep it and try
    /// again after [`super::EndpointEvent::Writable`] for this connection.
    #[error("send buffer of connection {0} is full")]
    Full(ConnId),
    #[error("empty messages are not sent")]
    Empty,
}
