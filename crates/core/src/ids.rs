//! Identifier newtypes. Every id that crosses a boundary has its own type, so a
//! `PeerId` can never be passed where a `MessageId` is meant.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a textual id did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("expected {expected} hex characters, got {got}")]
    Length { expected: usize, got: usize },
    #[error("not hexadecimal")]
    NotHex,
    #[error("room id must be 1 to {max} characters of a-z, 0-9, '-', '_', '.', ':'", max = RoomId::MAX_LEN)]
    BadRoom,
    #[error("the room id `{0}` is reserved")]
    ReservedRoom(String),
}

fn parse_hex32(s: &str) -> Result<[u8; 32], IdError> {
    let s = s.trim();
    if s.len() != 64 {
        return Err(IdError::Length { expected: 64, got: s.len() });
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|_| IdError::NotHex)?;
    Ok(out)
}

macro_rules! hash_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "string"))]
        pub struct $name([u8; 32]);

        // Hex in human-readable formats (JSON for the UI and logs); the 32
        // raw bytes, without a length, in binary ones (postcard on the wire).
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&self.to_hex())
                } else {
                    self.0.serialize(s)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = String::deserialize(d)?;
                    s.parse().map_err(serde::de::Error::custom)
                } else {
                    <[u8; 32]>::deserialize(d).map(Self)
                }
            }
        }

        impl $name {
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
            /// First 8 hex characters: enough to tell ids apart in logs.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                parse_hex32(s).map(Self)
            }
        }

        impl TryFrom<&[u8]> for $name {
            type Error = IdError;
            fn try_from(b: &[u8]) -> Result<Self, IdError> {
                let arr: [u8; 32] = b
                    .try_into()
                    .map_err(|_| IdError::Length { expected: 32, got: b.len() })?;
                Ok(Self(arr))
            }
        }
    };
}

hash_id!(
    /// A device's identity: its Ed25519 public key. Whoever holds the matching
    /// secret key is this peer; nothing else (names, TXT records) proves it.
    PeerId
);
hash_id!(
    /// BLAKE3 hash of a signed envelope's wire bytes.
    MessageId
);

impl PeerId {
    /// Human-comparable fingerprint: 16 hex digits of BLAKE3(key), in groups of
    /// four. Two people read these to each other to verify in person.
    pub fn fingerprint(&self) -> String {
        let h = blake3::hash(&self.0);
        let hex = hex::encode_upper(&h.as_bytes()[..8]);
        let groups: Vec<&str> = (0..4).map(|i| &hex[i * 4..i * 4 + 4]).collect();
        groups.join("-")
    }
}

/// A room: the unit of membership and of sync. A short, normalised name such as
/// `festival`, `main-stage` or `camp.b12`. Three reserved ids exist: the festival-wide
/// room, the DM mailbox that carries sealed direct messages for everyone, and
/// the organiser's announcements. Every node carries all three and leaves none.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "string"))]
pub struct RoomId(String);

impl RoomId {
    pub const MAX_LEN: usize = 64;
    /// The room everybody at the festival is in.
    pub const FESTIVAL: &'static str = "festival";
    /// The mailbox room: sealed DMs and their receipts, carried by every node.
    pub const DIRECT: &'static str = "dm";
    /// The organiser's announcements (protocol 5), carried by every node.
    pub const ANNOUNCEMENTS: &'static str = "announcements";

    pub fn festival() -> Self {
        Self(Self::FESTIVAL.to_owned())
    }
    pub fn direct() -> Self {
        Self(Self::DIRECT.to_owned())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn is_direct(&self) -> bool {
        self.0 == Self::DIRECT
    }
    pub fn announcements() -> Self {
        Self(Self::ANNOUNCEMENTS.to_owned())
    }
    pub fn is_announcements(&self) -> bool {
        self.0 == Self::ANNOUNCEMENTS
    }
    /// One of the rooms every node carries and nobody leaves: the festival
    /// room, the DM mailbox and the announcements.
    pub fn is_everyones(&self) -> bool {
        matches!(self.0.as_str(), Self::FESTIVAL | Self::DIRECT | Self::ANNOUNCEMENTS)
    }
    /// The rooms every node carries ([`RoomId::is_everyones`]).
    pub fn everyones() -> [RoomId; 3] {
        [Self::festival(), Self::direct(), Self::announcements()]
    }

    /// Turn a name a person typed ("Main Stage") into a room id ("main-stage").
    /// Refuses the reserved DM and announcement rooms, which are never
    /// joined by name.
    pub fn from_display_name(name: &str) -> Result<Self, IdError> {
        let mut s = String::new();
        for c in name.trim().chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':') {
                s.push(c);
            } else if (c.is_whitespace() || c == '-') && !s.ends_with('-') {
                s.push('-');
            }
        }
        let s = s.trim_matches('-').to_owned();
        if s == Self::DIRECT || s == Self::ANNOUNCEMENTS {
            return Err(IdError::ReservedRoom(s));
        }
        Self::try_from(s)
    }
}

impl TryFrom<String> for RoomId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.' | b':'));
        if ok {
            Ok(Self(s))
        } else {
            Err(IdError::BadRoom)
        }
    }
}

impl FromStr for RoomId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::try_from(s.to_owned())
    }
}

impl From<RoomId> for String {
    fn from(r: RoomId) -> String {
        r.0
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A transport link as the runtime numbers it. One peer may have several links
/// (a LAN data channel and the relay); the core keeps state per link.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct LinkId(pub u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_normalise() {
        assert_eq!(RoomId::from_display_name(" Main  Stage ").unwrap().as_str(), "main-stage");
        assert_eq!(RoomId::from_display_name("Camp B12").unwrap().as_str(), "camp-b12");
        assert!(RoomId::from_display_name("   ").is_err());
        assert!(matches!(RoomId::from_display_name("DM"), Err(IdError::ReservedRoom(_))));
        assert!(RoomId::try_from("UPPER".to_owned()).is_err());
        assert!(RoomId::try_from("x".repeat(65)).is_err());
    }

    #[test]
    fn hex_ids_round_trip_and_reject_garbage() {
        let id = PeerId::from_bytes([7; 32]);
        assert_eq!(id.to_hex().parse::<PeerId>().unwrap(), id);
        assert_eq!("zz".parse::<PeerId>(), Err(IdError::Length { expected: 64, got: 2 }));
        assert_eq!("g".repeat(64).parse::<PeerId>(), Err(IdError::NotHex));
        assert_eq!(id.fingerprint().len(), 19);
    }
}
