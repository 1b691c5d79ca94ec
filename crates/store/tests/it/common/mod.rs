//! Helpers shared by the integration tests: seeded identities, signed
//! envelopes, and stores on real files in temporary directories.

// Each test binary compiles this module and uses a different subset.
#![allow(dead_code)]

use festival_core::body::{seal_dm, seal_receipt, ProfileBody, ReceiptBody};
use festival_core::{Body, Draft, Identity, Kind, MessageId, PeerId, ReceiptStatus, RoomId, SignedEnvelope};
use festival_store::Store;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub fn identity(seed: u64) -> Identity {
    Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed))
}

pub fn room(name: &str) -> RoomId {
    name.parse().expect("valid room id")
}

pub fn sign(author: &Identity, room: &RoomId, seq: u64, kind: Kind, created_at: u64, body: Vec<u8>) -> SignedEnvelope {
    SignedEnvelope::sign(author, Draft { seq, room: room.clone(), kind, created_at, body }).expect("valid draft")
}

/// A text message; `created_at` defaults to a function of seq so order is
/// predictable.
pub fn text(author: &Identity, room: &RoomId, seq: u64, created_at: u64, text: &str) -> SignedEnvelope {
    sign(author, room, seq, Kind::Text, created_at, text.as_bytes().to_vec())
}

pub fn receipt(author: &Identity, room: &RoomId, seq: u64, created_at: u64, ids: &[MessageId]) -> SignedEnvelope {
    let body = Body::Receipt(ReceiptBody { status: ReceiptStatus::Read, ids: ids.to_vec() }).encode();
    sign(author, room, seq, Kind::Receipt, created_at, body)
}

pub fn profile(author: &Identity, room: &RoomId, seq: u64, created_at: u64, name: &str) -> SignedEnvelope {
    let body = Body::Profile(ProfileBody { name: name.to_owned() }).encode();
    sign(author, room, seq, Kind::Profile, created_at, body)
}

pub fn sealed(author: &Identity, to: &PeerId, seq: u64, created_at: u64, text: &str) -> SignedEnvelope {
    let sealed = seal_dm(author, to, text, &mut ChaCha20Rng::seed_from_u64(seq)).expect("seal");
    sign(author, &RoomId::direct(), seq, Kind::SealedDm, created_at, Body::SealedDm(sealed).encode())
}

/// A read receipt sealed to `to`, as DMs' receipts travel.
pub fn sealed_receipt(author: &Identity, to: &PeerId, seq: u64, created_at: u64, ids: &[MessageId]) -> SignedEnvelope {
    let receipt = ReceiptBody { status: ReceiptStatus::Read, ids: ids.to_vec() };
    let sealed = seal_receipt(author, to, receipt, &mut ChaCha20Rng::seed_from_u64(seq)).expect("seal");
    sign(author, &RoomId::direct(), seq, Kind::SealedReceipt, created_at, Body::SealedReceipt(sealed).encode())
}

/// A store on a real file; keep the directory alive as long as the store.
pub async fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("festival.db")).await.expect("open store");
    (dir, store)
}
