//! A device identity: one Ed25519 key pair. The secret half signs envelopes and
//! handshakes; its X25519 form opens sealed DMs.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::ids::PeerId;

/// Why a signature check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the author's key is not a valid Ed25519 point")]
    BadKey,
    #[error("signature does not verify")]
    BadSignature,
}

pub struct Identity {
    key: SigningKey,
}

impl Identity {
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self { key: SigningKey::generate(rng) }
    }

    pub fn from_secret_bytes(bytes: &[u8; 32]) -> Self {
        Self { key: SigningKey::from_bytes(bytes) }
    }

    /// The 32 secret bytes, for the store only. Wiped when dropped.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes())
    }

    pub fn peer_id(&self) -> PeerId {
        PeerId::from_bytes(self.key.verifying_key().to_bytes())
    }

    /// Sign `msg` under a domain tag, so a signature made for one purpose
    /// (an envelope) can never be replayed as another (a handshake).
    pub fn sign(&self, domain: &[u8], msg: &[u8]) -> [u8; 64] {
        let mut buf = Vec::with_capacity(domain.len() + msg.len());
        buf.extend_from_slice(domain);
        buf.extend_from_slice(msg);
        self.key.sign(&buf).to_bytes()
    }

    pub(crate) fn x25519_secret(&self) -> crypto_box::SecretKey {
        crypto_box::SecretKey::from_bytes(self.key.to_scalar_bytes())
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("peer", &self.peer_id()).finish_non_exhaustive()
    }
}

/// Whether `peer` is a usable public key: a point on the curve and not of
/// small order (whose X25519 shared secret with anyone is all zero, so a DM
/// "sealed" to it is readable by all). What a pasted or scanned contact
/// code must be before anyone trusts it.
pub fn is_valid_key(peer: &PeerId) -> bool {
    VerifyingKey::from_bytes(peer.as_bytes()).is_ok_and(|k| !k.is_weak())
}

/// Verify `sig` by `peer` over `domain || msg` (strict: rejects malleable and
/// small-order forms).
pub fn verify(peer: &PeerId, domain: &[u8], msg: &[u8], sig: &[u8; 64]) -> Result<(), SignatureError> {
    let key = VerifyingKey::from_bytes(peer.as_bytes()).map_err(|_| SignatureError::BadKey)?;
    let mut buf = Vec::with_capacity(domain.len() + msg.len());
    buf.extend_from_slice(domain);
    buf.extend_from_slice(msg);
    key.verify_strict(&buf, &Signature::from_bytes(sig)).map_err(|_| SignatureError::BadSignature)
}

/// The X25519 form of a peer's key, for sealing. Keys of small order are
/// refused, and so is any key whose shared secret with a fixed test scalar
/// comes out all zero (a second check of the same property, independent of
/// ed25519-dalek's `is_weak`).
pub(crate) fn x25519_public(peer: &PeerId) -> Result<crypto_box::PublicKey, SignatureError> {
    let key = VerifyingKey::from_bytes(peer.as_bytes()).map_err(|_| SignatureError::BadKey)?;
    let mont = key.to_montgomery();
    if key.is_weak() || mont.mul_clamped([0x5a; 32]).to_bytes() == [0; 32] {
        return Err(SignatureError::BadKey);
    }
    Ok(crypto_box::PublicKey::from(mont))
}
