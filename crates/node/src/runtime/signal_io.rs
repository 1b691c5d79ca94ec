//! The TCP side of signaling, in short-lived tasks so a slow or hostile peer
//! never stalls the actor: the actor makes and checks the SDPs, these tasks
//! only move the signed messages.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use festival_core::PeerId;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::signaling::{read_msg, write_msg, SignalError, SignalMsg};
use crate::webrtc::ConnId;

/// Per address tried when dialing.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The actor answers an offer at once; this only bounds a stuck actor.
const ANSWER_WAIT: Duration = Duration::from_secs(5);

pub enum SignalEvent {
    /// The answer (or refusal) to an offer we sent.
    Dialed { conn: ConnId, peer: PeerId, result: Result<SignalMsg, SignalError> },
    /// Someone sent us an offer; reply through `reply`.
    Incoming { msg: SignalMsg, from: SocketAddr, reply: oneshot::Sender<SignalMsg> },
    /// An inbound signaling connection failed before a valid message.
    BadInbound { from: SocketAddr, error: SignalError },
    /// An inbound signaling connection is finished (its slot is free).
    Done { from: SocketAddr },
}

pub async fn dial(
    conn: ConnId,
    peer: PeerId,
    addrs: Vec<IpAddr>,
    port: u16,
    offer: SignalMsg,
    tx: mpsc::Sender<SignalEvent>,
) {
    let mut result = Err(SignalError::Io(std::io::Error::other("no address to dial")));
    for ip in addrs {
        let attempt = async {
            let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((ip, port)))
                .await
                .map_err(|_| SignalError::Timeout(CONNECT_TIMEOUT))??;
            write_msg(&mut stream, &offer).await?;
            read_msg(&mut stream).await
        };
        result = attempt.await;
        if result.is_ok() {
            break;
        }
    }
    let _ = tx.send(SignalEvent::Dialed { conn, peer, result }).await;
}

pub async fn serve(mut stream: TcpStream, from: SocketAddr, tx: mpsc::Sender<SignalEvent>) {
    let msg = match read_msg(&mut stream).await {
        Ok(msg) => msg,
        Err(error) => {
            let _ = tx.send(SignalEvent::BadInbound { from, error }).await;
            return;
        }
    };
    let (reply, rx) = oneshot::channel();
    if tx.send(SignalEvent::Incoming { msg, from, reply }).await.is_err() {
        return;
    }
    if let Ok(Ok(answer)) = tokio::time::timeout(ANSWER_WAIT, rx).await {
        let _ = write_msg(&mut stream, &answer).await;
    }
}

pub async fn bind(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, port)).await
}
