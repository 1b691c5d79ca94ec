//! The relay wire protocol, shared by the node-side client and festival-relay.
//!
//! One WebSocket (binary messages only) per node. Every message is one
//! postcard [`RelayMsg`], decoded strictly (no trailing bytes). The relay
//! speaks first with a [`Challenge`]; the node answers with a signed
//! [`AuthProof`]; the relay answers with a signed [`Welcome`] or closes the
//! socket with one of the [`close`] codes. After that both sides send core
//! frames (`RelayMsg::Frame`, exactly the bytes a data channel would carry as
//! one bundle record) and forwarded signaling. docs/protocol.md ("Relay") is
//! the normative text; this module is the reference encoder.

use festival_core::envelope::Sig;
use festival_core::frame::MAX_FRAME_BYTES;
use festival_core::identity::{self, Identity};
use festival_core::{MessageId, PeerId};
use serde::{Deserialize, Serialize};

/// Version of the relay handshake and message set.
pub const RELAY_VERSION: u8 = 1;
/// The WebSocket endpoint on a relay server.
pub const RELAY_PATH: &str = "/v1/relay";
/// Domain tag of the node's signature over its [`AuthProof`].
pub const AUTH_DOMAIN: &[u8] = b"festival-chat/relay-auth/v1\0";
/// Domain tag of the relay's signature over its [`Welcome`].
pub const WELCOME_DOMAIN: &[u8] = b"festival-chat/relay-welcome/v1\0";
/// What a `RelayMsg` adds around a frame: a tag byte and a length varint of
/// at most 3 bytes for 256 KiB; 16 bytes leaves room and is still a bound.
pub const MSG_OVERHEAD: usize = 16;
/// Largest WebSocket message either side sends: one maximal core frame.
pub const MAX_MESSAGE_BYTES: usize = MAX_FRAME_BYTES + MSG_OVERHEAD;
/// Largest signaling payload carried (the same bound as LAN signaling).
pub const MAX_SIGNAL_BYTES: usize = super::signaling::MAX_SIGNAL_BYTES;
/// The relay's WebSocket read buffer per connection, and the most one read
/// asks the socket for. tungstenite's default (128 KiB) is held by every
/// connection and zero-filled before every read, also one that finds
/// nothing: a relay with thousands of sockets spent a sixth of its CPU in
/// `memset` and ~128 KiB of RSS per idle connection, and at 8 KiB still
/// ~3 % at 1,500 msgs/s. Frames are mostly a few hundred bytes; a larger
/// one grows the buffer to its length and is read 2 KiB per call.
pub const WS_READ_BUFFER: usize = 2 * 1024;
/// A node's read buffer for its one relay connection: what a catch-up
/// brings (batches up to [`MAX_MESSAGE_BYTES`]) in fewer reads.
pub const WS_CLIENT_READ_BUFFER: usize = 8 * 1024;
/// Message ids in one `Stored` acknowledgement: one per item of a maximal batch.
pub const MAX_STORED_IDS: usize = festival_core::frame::MAX_BATCH_ITEMS;

/// Sent by the relay as soon as the socket opens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub version: u8,
    /// The relay's own identity (it is a node too).
    pub relay: PeerId,
    /// Fresh per connection: a proof made for one connection is worthless on
    /// any other, so a captured proof cannot be replayed.
    pub nonce: [u8; 32],
}

/// What the node signs to prove it holds its identity key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthProof {
    pub version: u8,
    pub peer: PeerId,
    /// The relay the proof is for (from the challenge).
    pub relay: PeerId,
    /// The challenge's nonce.
    pub nonce: [u8; 32],
    /// The festival the node belongs to; a relay may serve only one.
    pub festival: String,
    /// Fresh from the node: the relay signs it back in its welcome, which
    /// proves the relay holds the key of the id it claimed.
    pub client_nonce: [u8; 32],
}

/// The relay's answer to a good proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub version: u8,
    pub relay: PeerId,
    pub peer: PeerId,
    pub client_nonce: [u8; 32],
    /// Largest core frame the relay accepts from this node.
    pub max_frame: u32,
    /// The relay closes a socket silent for this long (ms); send pings sooner.
    pub idle_timeout_ms: u64,
    /// The relay answers STUN binding requests on this UDP port of the
    /// address the node reached it at (`None`: no STUN).
    pub stun_port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayMsg {
    /// 0, relay -> node, first message.
    Challenge(Challenge),
    /// 1, node -> relay, the answer to the challenge.
    Auth { proof: AuthProof, sig: Sig },
    /// 2, relay -> node: authenticated.
    Welcome { welcome: Welcome, sig: Sig },
    /// 3, both ways: one core frame (version byte + postcard `Frame`).
    Frame(Vec<u8>),
    /// 4, both ways: a signaling message (postcard `SignalMsg`) for another
    /// node. Node -> relay: `peer` is the addressee; relay -> node: `peer` is
    /// the authenticated sender.
    Signal { peer: PeerId, msg: Vec<u8> },
    /// 5, relay -> node: a `Signal` could not be delivered (addressee offline).
    Unreachable { peer: PeerId },
    /// 6, relay -> node: these envelopes from you are committed to the
    /// relay's store (duplicates it already held included). The relay says it
    /// only after its store confirmed the commit, so they survive its crash.
    Stored { ids: Vec<MessageId> },
    /// 7, relay -> node: something you sent was dropped, with a counter
    /// label (`rate_limited`, `storage_quota`, `frame_malformed`, ...).
    /// Informational; rate-limited to a few a second.
    Refused { code: String },
}

impl RelayMsg {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("in-memory encode")
    }

    /// Strict decode: the whole message, nothing left over.
    pub fn decode(bytes: &[u8]) -> Result<RelayMsg, WireError> {
        match postcard::take_from_bytes::<RelayMsg>(bytes) {
            Ok((msg, [])) => Ok(msg),
            Ok((_, rest)) => Err(WireError::Malformed(format!("{} trailing bytes", rest.len()))),
            Err(e) => Err(WireError::Malformed(e.to_string())),
        }
    }

    /// Encode a core frame for the relay without copying it twice.
    pub fn encode_frame(frame: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(frame.len() + MSG_OVERHEAD);
        out.push(3); // RelayMsg::Frame
        let mut n = frame.len();
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
        out.extend_from_slice(frame);
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("malformed relay message: {0}")]
    Malformed(String),
    #[error("relay protocol version {0} is not supported")]
    Version(u8),
    #[error("signature does not verify")]
    BadSignature,
    #[error("the proof answers another challenge")]
    WrongChallenge,
}

impl AuthProof {
    pub fn sign(self, me: &Identity) -> RelayMsg {
        let sig = Sig(me.sign(AUTH_DOMAIN, &postcard::to_stdvec(&self).expect("in-memory encode")));
        RelayMsg::Auth { proof: self, sig }
    }

    /// Check a proof against the challenge this connection issued.
    pub fn verify(&self, sig: &Sig, challenge: &Challenge) -> Result<(), WireError> {
        if self.version != RELAY_VERSION {
            return Err(WireError::Version(self.version));
        }
        let bytes = postcard::to_stdvec(self).expect("in-memory encode");
        identity::verify(&self.peer, AUTH_DOMAIN, &bytes, &sig.0).map_err(|_| WireError::BadSignature)?;
        if self.nonce != challenge.nonce || self.relay != challenge.relay {
            return Err(WireError::WrongChallenge);
        }
        Ok(())
    }
}

impl Welcome {
    pub fn sign(self, relay: &Identity) -> RelayMsg {
        let sig = Sig(relay.sign(WELCOME_DOMAIN, &postcard::to_stdvec(&self).expect("in-memory encode")));
        RelayMsg::Welcome { welcome: self, sig }
    }

    /// Check the relay's welcome against what we sent it.
    pub fn verify(&self, sig: &Sig, proof: &AuthProof) -> Result<(), WireError> {
        if self.version != RELAY_VERSION {
            return Err(WireError::Version(self.version));
        }
        let bytes = postcard::to_stdvec(self).expect("in-memory encode");
        identity::verify(&self.relay, WELCOME_DOMAIN, &bytes, &sig.0).map_err(|_| WireError::BadSignature)?;
        if self.relay != proof.relay || self.peer != proof.peer || self.client_nonce != proof.client_nonce {
            return Err(WireError::WrongChallenge);
        }
        Ok(())
    }
}

/// WebSocket close codes the relay uses (4000-4999 is the private range of
/// RFC 6455). Every refusal also counts in the relay's `/metrics` under the
/// label [`label`] gives.
pub mod close {
    /// The relay is shutting down (standard).
    pub const GOING_AWAY: u16 = 1001;
    /// A text message: the protocol is binary only (standard).
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// A message larger than the relay accepts (standard).
    pub const TOO_BIG: u16 = 1009;
    /// No (or no timely) authentication, or another message before it.
    pub const AUTH_REQUIRED: u16 = 4001;
    /// The proof's signature does not verify.
    pub const BAD_SIGNATURE: u16 = 4002;
    /// The proof answers another challenge (a replay, or meant for another relay).
    pub const WRONG_CHALLENGE: u16 = 4003;
    /// The relay serves another festival.
    pub const WRONG_FESTIVAL: u16 = 4004;
    /// Unsupported relay protocol version.
    pub const VERSION: u16 = 4005;
    /// A message that does not decode, or one a node may not send.
    pub const MALFORMED: u16 = 4006;
    /// The identity kept sending far beyond its rate limit.
    pub const RATE_LIMITED: u16 = 4008;
    /// The node did not read what the relay sent it fast enough.
    pub const TOO_SLOW: u16 = 4009;
    /// Nothing received for the idle timeout.
    pub const IDLE: u16 = 4010;
    /// The same identity connected again; this older socket is closed.
    pub const REPLACED: u16 = 4011;
    /// The node kept sending frames no honest node sends (malformed, badly
    /// signed): its core reported it misbehaving.
    pub const MISBEHAVING: u16 = 4012;

    /// The metrics label of a close code.
    pub fn label(code: u16) -> &'static str {
        match code {
            GOING_AWAY => "going_away",
            UNSUPPORTED_DATA => "unsupported_data",
            TOO_BIG => "frame_oversized",
            AUTH_REQUIRED => "auth_required",
            BAD_SIGNATURE => "bad_signature",
            WRONG_CHALLENGE => "wrong_challenge",
            WRONG_FESTIVAL => "wrong_festival",
            VERSION => "relay_version",
            MALFORMED => "relay_malformed",
            RATE_LIMITED => "rate_limited",
            TOO_SLOW => "too_slow",
            IDLE => "idle",
            REPLACED => "replaced",
            MISBEHAVING => "misbehaving",
            _ => "other",
        }
    }

    /// Codes after which reconnecting with the same settings cannot help
    /// (the client keeps trying, at its longest backoff).
    pub fn is_permanent(code: u16) -> bool {
        matches!(code, BAD_SIGNATURE | WRONG_FESTIVAL | VERSION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn frame_messages_encode_like_postcard() {
        for len in [0usize, 1, 127, 128, 300, 16_384, MAX_FRAME_BYTES] {
            let frame = vec![7u8; len];
            let fast = RelayMsg::encode_frame(&frame);
            assert_eq!(fast, RelayMsg::Frame(frame.clone()).encode(), "len {len}");
            assert!(fast.len() <= MAX_MESSAGE_BYTES);
            assert_eq!(RelayMsg::decode(&fast).unwrap(), RelayMsg::Frame(frame));
        }
    }

    #[test]
    fn decoding_is_strict() {
        let mut bytes = RelayMsg::Unreachable { peer: PeerId::from_bytes([1; 32]) }.encode();
        bytes.push(0);
        assert!(matches!(RelayMsg::decode(&bytes), Err(WireError::Malformed(_))));
        assert!(RelayMsg::decode(&[]).is_err());
        assert!(RelayMsg::decode(&[200]).is_err());
        // A length that claims more than is there.
        assert!(RelayMsg::decode(&[3, 0x80, 0x80, 0x01]).is_err());
    }

    #[test]
    fn a_proof_is_bound_to_its_challenge_and_key() {
        let (node, relay, other) =
            (Identity::generate(&mut OsRng), Identity::generate(&mut OsRng), Identity::generate(&mut OsRng));
        let challenge = Challenge { version: 1, relay: relay.peer_id(), nonce: [9; 32] };
        let proof = AuthProof {
            version: 1,
            peer: node.peer_id(),
            relay: relay.peer_id(),
            nonce: challenge.nonce,
            festival: "fest".into(),
            client_nonce: [4; 32],
        };
        let RelayMsg::Auth { proof, sig } = proof.sign(&node) else { unreachable!() };
        proof.verify(&sig, &challenge).unwrap();

        let fresh = Challenge { nonce: [8; 32], ..challenge.clone() };
        assert_eq!(proof.verify(&sig, &fresh), Err(WireError::WrongChallenge), "replayed on another connection");
        let elsewhere = Challenge { relay: other.peer_id(), ..challenge.clone() };
        assert_eq!(proof.verify(&sig, &elsewhere), Err(WireError::WrongChallenge), "meant for another relay");

        let forged = AuthProof { peer: other.peer_id(), ..proof.clone() };
        assert_eq!(forged.verify(&sig, &challenge), Err(WireError::BadSignature));
        let RelayMsg::Auth { sig: wrong_key, .. } = proof.clone().sign(&other) else { unreachable!() };
        assert_eq!(proof.verify(&wrong_key, &challenge), Err(WireError::BadSignature));

        let welcome = Welcome {
            version: 1,
            relay: relay.peer_id(),
            peer: node.peer_id(),
            client_nonce: proof.client_nonce,
            max_frame: 1,
            idle_timeout_ms: 1,
            stun_port: Some(3478),
        };
        let RelayMsg::Welcome { welcome, sig } = welcome.sign(&relay) else { unreachable!() };
        welcome.verify(&sig, &proof).unwrap();
        let RelayMsg::Welcome { sig: by_other, .. } = welcome.clone().sign(&other) else { unreachable!() };
        assert_eq!(welcome.verify(&by_other, &proof), Err(WireError::BadSignature));
        let other_nonce = AuthProof { client_nonce: [5; 32], ..proof };
        assert_eq!(welcome.verify(&sig, &other_nonce), Err(WireError::WrongChallenge));
    }
}
