//! Typed bodies for each envelope kind, and sealing of direct messages.
//!
//! A DM is sealed with crypto_box (X25519 + XChaCha20-Poly1305, RustCrypto)
//! from the author's static key to the recipient's, both derived from their
//! Ed25519 identities. The box authenticates the author, so a carrier cannot
//! re-wrap someone else's ciphertext (the box key needs the author's or the
//! recipient's secret).

use crypto_box::aead::{Aead, AeadCore};
use crypto_box::ChaChaBox;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use crate::envelope::Kind;
use crate::identity::{self, Identity};
use crate::ids::{MessageId, PeerId};

/// Longest text message, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 4000;
/// Longest display name, in bytes of UTF-8.
pub const MAX_NAME_BYTES: usize = 48;
/// Most message ids one receipt may acknowledge.
pub const MAX_RECEIPT_IDS: usize = 64;
const SEAL_NONCE_BYTES: usize = 24;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("text is empty")]
    EmptyText,
    #[error("text of {len} bytes exceeds the {max}-byte limit")]
    TextTooLong { len: usize, max: usize },
    #[error("text is not valid UTF-8")]
    NotUtf8,
    #[error("name must be 1 to {max} bytes", max = MAX_NAME_BYTES)]
    BadName,
    #[error("receipt must acknowledge 1 to {max} ids", max = MAX_RECEIPT_IDS)]
    BadReceipt,
    #[error("malformed {0:?} body")]
    Malformed(Kind),
    #[error("sealed message cannot be opened by this identity")]
    NotForMe,
    #[error("sealed message failed to open (tampered or wrong key)")]
    OpenFailed,
    #[error("recipient key is not a valid Ed25519 point")]
    BadRecipient,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum ReceiptStatus {
    Delivered,
    Read,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ReceiptBody {
    pub status: ReceiptStatus,
    pub ids: Vec<MessageId>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SealedBody {
    pub recipient: PeerId,
    pub nonce: [u8; SEAL_NONCE_BYTES],
    pub ciphertext: Vec<u8>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ProfileBody {
    pub name: String,
}

/// The plaintext inside a sealed DM.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
struct DmPlain {
    text: String,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Body {
    Text(String),
    Receipt(ReceiptBody),
    SealedDm(SealedBody),
    Profile(ProfileBody),
}

pub fn check_text(text: &str) -> Result<(), BodyError> {
    if text.trim().is_empty() {
        return Err(BodyError::EmptyText);
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(BodyError::TextTooLong { len: text.len(), max: MAX_TEXT_BYTES });
    }
    Ok(())
}

pub fn check_name(name: &str) -> Result<(), BodyError> {
    if name.trim().is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(BodyError::BadName);
    }
    Ok(())
}

fn strict<'a, T: Deserialize<'a>>(kind: Kind, bytes: &'a [u8]) -> Result<T, BodyError> {
    match postcard::take_from_bytes(bytes) {
        Ok((v, [])) => Ok(v),
        _ => Err(BodyError::Malformed(kind)),
    }
}

impl Body {
    /// Parse and check a body against its kind's rules.
    pub fn parse(kind: Kind, bytes: &[u8]) -> Result<Body, BodyError> {
        match kind {
            Kind::Text => {
                let text = std::str::from_utf8(bytes).map_err(|_| BodyError::NotUtf8)?;
                check_text(text)?;
                Ok(Body::Text(text.to_owned()))
            }
            Kind::Receipt => {
                let r: ReceiptBody = strict(kind, bytes)?;
                if r.ids.is_empty() || r.ids.len() > MAX_RECEIPT_IDS {
                    return Err(BodyError::BadReceipt);
                }
                Ok(Body::Receipt(r))
            }
            Kind::SealedDm => Ok(Body::SealedDm(strict(kind, bytes)?)),
            Kind::Profile => {
                let p: ProfileBody = strict(kind, bytes)?;
                check_name(&p.name)?;
                Ok(Body::Profile(p))
            }
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Body::Text(_) => Kind::Text,
            Body::Receipt(_) => Kind::Receipt,
            Body::SealedDm(_) => Kind::SealedDm,
            Body::Profile(_) => Kind::Profile,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        match self {
            Body::Text(t) => t.as_bytes().to_vec(),
            Body::Receipt(r) => postcard::to_stdvec(r).expect("in-memory encode"),
            Body::SealedDm(s) => postcard::to_stdvec(s).expect("in-memory encode"),
            Body::Profile(p) => postcard::to_stdvec(p).expect("in-memory encode"),
        }
    }
}

/// Seal `text` from `me` to `to`.
pub fn seal_dm(me: &Identity, to: &PeerId, text: &str, rng: &mut impl CryptoRngCore) -> Result<SealedBody, BodyError> {
    check_text(text)?;
    let their = identity::x25519_public(to).map_err(|_| BodyError::BadRecipient)?;
    let cbox = ChaChaBox::new(&their, &me.x25519_secret());
    let nonce = ChaChaBox::generate_nonce(rng);
    let plain = postcard::to_stdvec(&DmPlain { text: text.to_owned() }).expect("in-memory encode");
    let ciphertext = cbox.encrypt(&nonce, plain.as_slice()).map_err(|_| BodyError::OpenFailed)?;
    Ok(SealedBody { recipient: *to, nonce: nonce.into(), ciphertext })
}

/// Open a sealed DM that `from` sent to `me`.
pub fn open_dm(me: &Identity, from: &PeerId, sealed: &SealedBody) -> Result<String, BodyError> {
    if sealed.recipient != me.peer_id() {
        return Err(BodyError::NotForMe);
    }
    let theirs = identity::x25519_public(from).map_err(|_| BodyError::OpenFailed)?;
    let cbox = ChaChaBox::new(&theirs, &me.x25519_secret());
    let plain =
        cbox.decrypt(sealed.nonce.as_ref().into(), sealed.ciphertext.as_slice()).map_err(|_| BodyError::OpenFailed)?;
    let p: DmPlain = strict(Kind::SealedDm, &plain).map_err(|_| BodyError::OpenFailed)?;
    Ok(p.text)
}

/// Open a DM that `me` sent: the box key is symmetric, so the author can read
/// its own sent messages back from the store.
pub fn open_own_dm(me: &Identity, sealed: &SealedBody) -> Result<String, BodyError> {
    let theirs = identity::x25519_public(&sealed.recipient).map_err(|_| BodyError::OpenFailed)?;
    let cbox = ChaChaBox::new(&theirs, &me.x25519_secret());
    let plain =
        cbox.decrypt(sealed.nonce.as_ref().into(), sealed.ciphertext.as_slice()).map_err(|_| BodyError::OpenFailed)?;
    let p: DmPlain = strict(Kind::SealedDm, &plain).map_err(|_| BodyError::OpenFailed)?;
    Ok(p.text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn only_the_recipient_opens_a_sealed_dm() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let (a, b, c) = (Identity::generate(&mut rng), Identity::generate(&mut rng), Identity::generate(&mut rng));
        let sealed = seal_dm(&a, &b.peer_id(), "meet at the bar", &mut rng).unwrap();
        assert_eq!(open_dm(&b, &a.peer_id(), &sealed).unwrap(), "meet at the bar");
        assert_eq!(open_own_dm(&a, &sealed).unwrap(), "meet at the bar");
        assert_eq!(open_dm(&c, &a.peer_id(), &sealed), Err(BodyError::NotForMe));
        // A carrier who claims to be the author cannot: the box is bound to A's key.
        assert_eq!(open_dm(&b, &c.peer_id(), &sealed), Err(BodyError::OpenFailed));
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert_eq!(open_dm(&b, &a.peer_id(), &tampered), Err(BodyError::OpenFailed));
    }

    #[test]
    fn bodies_are_checked_per_kind() {
        assert_eq!(Body::parse(Kind::Text, b"  "), Err(BodyError::EmptyText));
        assert_eq!(Body::parse(Kind::Text, &[0xff, 0xfe]), Err(BodyError::NotUtf8));
        assert!(matches!(Body::parse(Kind::Text, &vec![b'a'; MAX_TEXT_BYTES + 1]), Err(BodyError::TextTooLong { .. })));
        assert_eq!(Body::parse(Kind::Receipt, &[1, 2, 3]), Err(BodyError::Malformed(Kind::Receipt)));
        let empty = Body::Receipt(ReceiptBody { status: ReceiptStatus::Read, ids: vec![] }).encode();
        assert_eq!(Body::parse(Kind::Receipt, &empty), Err(BodyError::BadReceipt));
        let name = Body::Profile(ProfileBody { name: "Ana".into() }).encode();
        assert!(Body::parse(Kind::Profile, &name).is_ok());
    }
}
