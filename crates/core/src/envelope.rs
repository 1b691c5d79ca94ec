//! The signed envelope: the unit that is stored, synced and forwarded.
//!
//! Wire form (postcard, see docs/protocol.md): `version u8 | author [32] |
//! seq varint | room string | kind varint | created_at varint | body bytes |
//! signature [64]`. The signature covers `DOMAIN || every byte before it`, and
//! the [`MessageId`] is BLAKE3 over the whole encoding, signature included.
//! Decoding is strict: one canonical encoding per envelope, so an id names
//! exactly one byte string.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::body::{Body, BodyError};
use crate::identity::{self, Identity, SignatureError};
use crate::ids::{MessageId, PeerId, RoomId};

/// Envelope format version this code writes and accepts.
pub const ENVELOPE_VERSION: u8 = 1;
/// Largest body: a 4,000-byte text sealed with room to spare; keeps one envelope
/// well under an SCTP message and a relay frame.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Largest encoded envelope: the body plus generous room for the header fields.
pub const MAX_ENVELOPE_BYTES: usize = MAX_BODY_BYTES + 512;
/// Domain tag for envelope signatures (handshakes use another).
pub const ENVELOPE_DOMAIN: &[u8] = b"festival-chat/envelope/v1\0";

/// What the body holds. Unknown kinds fail to decode: a new kind is a new version.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Kind {
    /// UTF-8 text for the room.
    Text,
    /// Delivery or read receipt for a list of message ids.
    Receipt,
    /// A direct message sealed to one recipient.
    SealedDm,
    /// The author's display name.
    Profile,
    /// Delivery or read receipt for DMs, sealed to their author.
    SealedReceipt,
    /// The organiser's announcement to everyone, in the festival room, with
    /// the time it stops being shown and carried.
    Announcement,
    /// "Meet at PLACE at TIME", in a room: shown as a card until a while
    /// after its time (see [`crate::body::MEETUP_GRACE_MS`]).
    Meetup,
    /// An answer to a meet-up ("coming" / "can't"), in the meet-up's room;
    /// a person's latest answer counts.
    MeetupReply,
    /// A private group's message, sealed to each member (see
    /// [`crate::group`]), in the DM mailbox.
    GroupMessage,
    /// A photo's header (see [`crate::photo`]): size, hash, thumbnail and
    /// caption, in a room; its chunks follow it in the author's chain.
    Photo,
    /// A piece of a photo's JPEG, right after its header or the piece
    /// before it in the author's chain.
    PhotoChunk,
}

impl Kind {
    pub const fn code(self) -> u8 {
        match self {
            Kind::Text => 0,
            Kind::Receipt => 1,
            Kind::SealedDm => 2,
            Kind::Profile => 3,
            Kind::SealedReceipt => 4,
            Kind::Announcement => 5,
            Kind::Meetup => 6,
            Kind::MeetupReply => 7,
            Kind::GroupMessage => 8,
            Kind::Photo => 9,
            Kind::PhotoChunk => 10,
        }
    }
    pub fn from_code(c: u8) -> Option<Kind> {
        Some(match c {
            0 => Kind::Text,
            1 => Kind::Receipt,
            2 => Kind::SealedDm,
            3 => Kind::Profile,
            4 => Kind::SealedReceipt,
            5 => Kind::Announcement,
            6 => Kind::Meetup,
            7 => Kind::MeetupReply,
            8 => Kind::GroupMessage,
            9 => Kind::Photo,
            10 => Kind::PhotoChunk,
            _ => return None,
        })
    }
}

/// 64 signature bytes, encoded as a fixed tuple (no length prefix).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sig(pub [u8; 64]);

impl Serialize for Sig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(64)?;
        for b in &self.0 {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for Sig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Sig;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Sig, A::Error> {
                let mut out = [0u8; 64];
                for (i, b) in out.iter_mut().enumerate() {
                    *b = seq.next_element()?.ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(Sig(out))
            }
        }
        d.deserialize_tuple(64, V)
    }
}

impl std::fmt::Debug for Sig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sig({}..)", hex::encode(&self.0[..4]))
    }
}

/// The decoded fields of an envelope.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Envelope {
    pub version: u8,
    pub author: PeerId,
    /// Position in the author's chain for this room: 1, 2, 3 ...
    pub seq: u64,
    pub room: RoomId,
    pub kind: Kind,
    /// Author's wall clock, milliseconds since the Unix epoch.
    pub created_at: u64,
    pub body: Vec<u8>,
    pub signature: Sig,
}

/// Why bytes are not a valid envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("envelope of {len} bytes exceeds the {max}-byte limit")]
    Oversized { len: usize, max: usize },
    #[error("envelope version {0} is not supported")]
    UnsupportedVersion(u8),
    #[error("malformed envelope: {0}")]
    Malformed(String),
    #[error("envelope has {0} trailing bytes")]
    TrailingBytes(usize),
    #[error("envelope is not in canonical encoding")]
    NonCanonical,
    #[error("sequence number 0 is not allowed")]
    SeqZero,
    #[error("body of {len} bytes exceeds the {max}-byte limit")]
    BodyTooLarge { len: usize, max: usize },
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("invalid body: {0}")]
    Body(#[from] BodyError),
    #[error("{0} is out of range")]
    OutOfRange(&'static str),
    #[error("a {kind:?} message cannot be posted in room {room}")]
    WrongRoom { kind: Kind, room: RoomId },
}

impl EnvelopeError {
    /// Stable short name, used as a counter label.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Oversized { .. } => "envelope_oversized",
            Self::UnsupportedVersion(_) => "envelope_version",
            Self::Malformed(_) | Self::TrailingBytes(_) | Self::NonCanonical => "envelope_malformed",
            Self::SeqZero => "envelope_seq_zero",
            Self::OutOfRange(_) => "envelope_out_of_range",
            Self::BodyTooLarge { .. } => "envelope_body_too_large",
            Self::Signature(SignatureError::BadKey) => "envelope_bad_key",
            Self::Signature(SignatureError::BadSignature) => "envelope_bad_signature",
            Self::Body(_) => "envelope_bad_body",
            Self::WrongRoom { .. } => "envelope_wrong_room",
        }
    }
}

/// Bounds on the header fields. Seqs and times above `i64::MAX` are refused
/// so every store (SQLite integers are signed) can keep what we accept.
fn check_fields(seq: u64, created_at: u64, body_len: usize) -> Result<(), EnvelopeError> {
    if seq == 0 {
        return Err(EnvelopeError::SeqZero);
    }
    if seq > i64::MAX as u64 {
        return Err(EnvelopeError::OutOfRange("seq"));
    }
    if created_at > i64::MAX as u64 {
        return Err(EnvelopeError::OutOfRange("created_at"));
    }
    if body_len > MAX_BODY_BYTES {
        return Err(EnvelopeError::BodyTooLarge { len: body_len, max: MAX_BODY_BYTES });
    }
    Ok(())
}

/// Which kinds each room takes: the DM mailbox carries only sealed DMs and
/// their sealed receipts, which go nowhere else (a receipt in clear there
/// would tell every carrier who read which DM); profiles go to the
/// festival room.
fn check_room(kind: Kind, room: &RoomId) -> Result<(), EnvelopeError> {
    let ok = match kind {
        Kind::SealedDm | Kind::SealedReceipt | Kind::GroupMessage => room.is_direct(),
        Kind::Receipt => !room.is_direct() && !room.is_announcements(),
        Kind::Text | Kind::Meetup | Kind::MeetupReply | Kind::Photo | Kind::PhotoChunk => {
            !room.is_direct() && !room.is_announcements()
        }
        Kind::Profile => room.as_str() == RoomId::FESTIVAL,
        Kind::Announcement => room.is_announcements(),
    };
    if ok {
        Ok(())
    } else {
        Err(EnvelopeError::WrongRoom { kind, room: room.clone() })
    }
}

/// An envelope whose signature has been checked (or that we signed), with its
/// exact wire bytes and id. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignedEnvelope {
    envelope: Arc<Envelope>,
    bytes: Arc<[u8]>,
    id: MessageId,
}

/// The fields an author chooses; [`SignedEnvelope::sign`] adds the rest.
#[derive(Clone, Debug)]
pub struct Draft {
    pub seq: u64,
    pub room: RoomId,
    pub kind: Kind,
    pub created_at: u64,
    pub body: Vec<u8>,
}

impl SignedEnvelope {
    /// Sign a draft. Fails only if the body breaks the limits.
    pub fn sign(identity: &Identity, draft: Draft) -> Result<Self, EnvelopeError> {
        check_fields(draft.seq, draft.created_at, draft.body.len())?;
        Body::parse(draft.kind, &draft.body)?;
        check_room(draft.kind, &draft.room)?;
        let mut env = Envelope {
            version: ENVELOPE_VERSION,
            author: identity.peer_id(),
            seq: draft.seq,
            room: draft.room,
            kind: draft.kind,
            created_at: draft.created_at,
            body: draft.body,
            signature: Sig([0; 64]),
        };
        let mut bytes = postcard::to_stdvec(&env).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        let signed_len = bytes.len() - 64;
        let sig = identity.sign(ENVELOPE_DOMAIN, &bytes[..signed_len]);
        bytes[signed_len..].copy_from_slice(&sig);
        env.signature = Sig(sig);
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(EnvelopeError::Oversized { len: bytes.len(), max: MAX_ENVELOPE_BYTES });
        }
        let id = Self::id_of(&bytes);
        Ok(Self { envelope: Arc::new(env), bytes: bytes.into(), id })
    }

    /// Decode and verify wire bytes: size, version, strict encoding, signature,
    /// and the body's structure for its kind.
    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(EnvelopeError::Oversized { len: bytes.len(), max: MAX_ENVELOPE_BYTES });
        }
        // The version is the first byte, so a future layout is reported as such
        // rather than as garbage.
        match bytes.first() {
            None => return Err(EnvelopeError::Malformed("empty".into())),
            Some(&v) if v != ENVELOPE_VERSION => return Err(EnvelopeError::UnsupportedVersion(v)),
            Some(_) => {}
        }
        let (env, rest): (Envelope, &[u8]) =
            postcard::take_from_bytes(bytes).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(EnvelopeError::TrailingBytes(rest.len()));
        }
        check_fields(env.seq, env.created_at, env.body.len())?;
        let again = postcard::to_stdvec(&env).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        if again != bytes {
            return Err(EnvelopeError::NonCanonical);
        }
        identity::verify(&env.author, ENVELOPE_DOMAIN, &bytes[..bytes.len() - 64], &env.signature.0)?;
        Body::parse(env.kind, &env.body)?;
        check_room(env.kind, &env.room)?;
        let id = Self::id_of(bytes);
        Ok(Self { envelope: Arc::new(env), bytes: bytes.into(), id })
    }

    /// The id of an envelope's bytes: their BLAKE3 hash (docs/protocol.md),
    /// whether or not they are a valid envelope.
    pub fn id_of(bytes: &[u8]) -> MessageId {
        MessageId::from_bytes(*blake3::hash(bytes).as_bytes())
    }

    /// The position (room, author, seq) the bytes claim, read without
    /// checking anything else: a quick look before [`SignedEnvelope::decode`]
    /// verifies them. `None` when they do not even parse.
    pub fn claimed_position(bytes: &[u8]) -> Option<(RoomId, PeerId, u64)> {
        let (env, _): (Envelope, _) = postcard::take_from_bytes(bytes).ok()?;
        Some((env.room, env.author, env.seq))
    }

    /// Rebuild an envelope from bytes this node stored after verifying them.
    /// Checks structure and body but skips the signature (about 50 us each),
    /// so reading a page of history stays far below a millisecond. Never use
    /// it on bytes from the network, unless they come sealed by a party
    /// that verified them before storing them (a relay cluster's bus: an
    /// instance seals an entry after its commit, under a key Redis never
    /// holds).
    pub fn from_stored(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let env: Envelope = match postcard::take_from_bytes(bytes) {
            Ok((env, [])) => env,
            Ok((_, rest)) => return Err(EnvelopeError::TrailingBytes(rest.len())),
            Err(e) => return Err(EnvelopeError::Malformed(e.to_string())),
        };
        check_fields(env.seq, env.created_at, env.body.len())?;
        // After this, `parsed_body` cannot fail, even for damaged bytes on disk.
        Body::parse(env.kind, &env.body)?;
        let id = Self::id_of(bytes);
        Ok(Self { envelope: Arc::new(env), bytes: bytes.into(), id })
    }

    pub fn id(&self) -> MessageId {
        self.id
    }
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    pub fn shared_bytes(&self) -> Arc<[u8]> {
        self.bytes.clone()
    }
    pub fn author(&self) -> PeerId {
        self.envelope.author
    }
    pub fn seq(&self) -> u64 {
        self.envelope.seq
    }
    pub fn room(&self) -> &RoomId {
        &self.envelope.room
    }
    pub fn kind(&self) -> Kind {
        self.envelope.kind
    }
    pub fn created_at(&self) -> u64 {
        self.envelope.created_at
    }
    pub fn body(&self) -> &[u8] {
        &self.envelope.body
    }
    /// The parsed body. Cannot fail for a `SignedEnvelope`: every constructor
    /// (`sign`, `decode`, `from_stored`) checked it.
    pub fn parsed_body(&self) -> Body {
        Body::parse(self.envelope.kind, &self.envelope.body).expect("body checked at construction")
    }
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }
}
