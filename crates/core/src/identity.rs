//! A device identity: one Ed25519 key pair. The secret half signs envelopes and
//! handshakes; its X25519 form opens sealed DMs.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Mutex;

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
///
/// A check that passed is remembered (see [`VERIFIED_MEMO`]): the same
/// message arrives once per neighbour that forwards it, and the relay sees
/// one message from many clients, and each copy would cost another ~50 us
/// of curve arithmetic for an answer already known. Only successes are
/// remembered, keyed by a hash of everything the check read, so a copy
/// that differs in any byte is checked in full.
pub fn verify(peer: &PeerId, domain: &[u8], msg: &[u8], sig: &[u8; 64]) -> Result<(), SignatureError> {
    let key = memo_key(peer, domain, msg, sig);
    if VERIFIED.lock().unwrap_or_else(|e| e.into_inner()).contains(&key) {
        return Ok(());
    }
    let vk = VerifyingKey::from_bytes(peer.as_bytes()).map_err(|_| SignatureError::BadKey)?;
    let mut buf = Vec::with_capacity(domain.len() + msg.len());
    buf.extend_from_slice(domain);
    buf.extend_from_slice(msg);
    vk.verify_strict(&buf, &Signature::from_bytes(sig)).map_err(|_| SignatureError::BadSignature)?;
    VERIFIED.lock().unwrap_or_else(|e| e.into_inner()).insert(key);
    Ok(())
}

/// Signature checks that passed, remembered per process: the newest this
/// many. Copies of one message arrive within seconds of each other, so a
/// few thousand messages' worth is plenty; 32 bytes (and a little
/// bookkeeping) each.
pub const VERIFIED_MEMO: usize = 16_384;

/// The checks [`verify`] remembers, oldest first out.
struct Memo {
    set: BTreeSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

impl Memo {
    fn contains(&self, key: &[u8; 32]) -> bool {
        self.set.contains(key)
    }

    fn insert(&mut self, key: [u8; 32]) {
        if !self.set.insert(key) {
            return;
        }
        self.order.push_back(key);
        while self.order.len() > VERIFIED_MEMO {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }
}

static VERIFIED: Mutex<Memo> = Mutex::new(Memo { set: BTreeSet::new(), order: VecDeque::new() });

/// Everything a check reads, hashed: key, signature, domain (with its
/// length, so domain and message cannot trade bytes) and message.
fn memo_key(peer: &PeerId, domain: &[u8], msg: &[u8], sig: &[u8; 64]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("festival-chat verified signature memo v1");
    h.update(peer.as_bytes());
    h.update(sig);
    h.update(&(domain.len() as u64).to_le_bytes());
    h.update(domain);
    h.update(msg);
    *h.finalize().as_bytes()
}

/// Signature checks remembered now (for tests of the bound).
pub fn verified_memo_len() -> usize {
    VERIFIED.lock().unwrap_or_else(|e| e.into_inner()).order.len()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(seed: u8, msg: &[u8]) -> (PeerId, [u8; 64]) {
        let id = Identity::from_secret_bytes(&[seed; 32]);
        (id.peer_id(), id.sign(b"test-domain", msg))
    }

    #[test]
    fn a_remembered_success_is_never_taken_for_a_changed_copy() {
        let (peer, sig) = signed(1, b"hello");
        assert_eq!(verify(&peer, b"test-domain", b"hello", &sig), Ok(()));
        // Remembered now; every input the check read still counts.
        assert_eq!(verify(&peer, b"test-domain", b"hello", &sig), Ok(()));
        assert_eq!(verify(&peer, b"test-domain", b"hellO", &sig), Err(SignatureError::BadSignature));
        assert_eq!(verify(&peer, b"test-domaiN", b"hello", &sig), Err(SignatureError::BadSignature));
        let mut bad = sig;
        bad[0] ^= 1;
        assert_eq!(verify(&peer, b"test-domain", b"hello", &bad), Err(SignatureError::BadSignature));
        let (other, _) = signed(2, b"hello");
        assert_eq!(verify(&other, b"test-domain", b"hello", &sig), Err(SignatureError::BadSignature));
        // Domain and message trading a byte are another check.
        assert_ne!(memo_key(&peer, b"test-domainh", b"ello", &sig), memo_key(&peer, b"test-domain", b"hello", &sig));
    }

    #[test]
    fn the_memo_is_bounded() {
        let id = Identity::from_secret_bytes(&[3; 32]);
        for i in 0..VERIFIED_MEMO + 100 {
            let msg = (i as u64).to_le_bytes();
            let sig = id.sign(b"bound", &msg);
            verify(&id.peer_id(), b"bound", &msg, &sig).expect("verifies");
        }
        assert_eq!(verified_memo_len(), VERIFIED_MEMO);
    }
}
