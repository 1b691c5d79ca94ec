//! What a running node tells the people using it. Serializable: the CLI
//! prints these as JSON lines, the app sends them to its UI.

use std::collections::BTreeMap;

use festival_core::policy::{Limits, PowerState};
use festival_core::{MessageId, PeerId, ReceiptStatus, RoomId};
use serde::Serialize;

/// A message as a person sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MessageView {
    pub id: MessageId,
    pub room: RoomId,
    pub author: PeerId,
    pub author_name: Option<String>,
    pub seq: u64,
    pub created_at: u64,
    pub received_at: u64,
    pub body: MessageBody,
    /// Links it crossed to reach us (0: ours).
    pub hops: u8,
    pub mine: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MessageBody {
    Text {
        text: String,
    },
    /// A direct message we can read (to us, or sent by us).
    Direct {
        to: PeerId,
        text: String,
    },
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum NodeEvent {
    /// A message is stored here and ready to show (per-author order).
    Message(MessageView),
    /// One of our messages left the device.
    Sent {
        id: MessageId,
        path: &'static str,
    },
    Receipt {
        from: PeerId,
        status: ReceiptStatus,
        ids: Vec<MessageId>,
    },
    PeerName {
        peer: PeerId,
        name: String,
    },
    Discovered {
        peer: PeerId,
    },
    Lost {
        peer: PeerId,
    },
    LinkUp {
        peer: PeerId,
        path: &'static str,
    },
    LinkDown {
        peer: PeerId,
        reason: String,
    },
    /// Something a peer sent was refused (and counted).
    Rejected {
        peer: Option<PeerId>,
        code: String,
    },
    Power {
        state: PowerState,
        limits: Limits,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct PeerView {
    pub peer: PeerId,
    pub fingerprint: String,
    pub name: Option<String>,
    pub verified: bool,
    /// A data channel is open to it now.
    pub linked: bool,
    /// Seen on the LAN via mDNS.
    pub discovered: bool,
    pub last_seen: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub peer: PeerId,
    pub fingerprint: String,
    pub festival: String,
    pub links: usize,
    pub discovered: usize,
    pub power: PowerState,
    pub limits: Limits,
    /// Peer limit in force (policy or override).
    pub peer_limit: usize,
    pub signaling_port: u16,
    pub udp_port: u16,
    /// Refused inputs by reason: signaling, frames and envelopes.
    pub rejected: BTreeMap<String, u64>,
}
