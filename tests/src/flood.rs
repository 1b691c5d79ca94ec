//! A flood of fresh identities for a real node to serve: sealed DMs, each
//! the first and only message of a key made for it, written into a node's
//! store while the node is stopped. Started again, the node offers them to
//! everyone it links with through normal sync (every node carries the `dm`
//! mailbox), as a device that made thousands of keys would.
//!
//! Each body is as large as an envelope may carry ([`MAX_BODY_BYTES`]).
//! Its ciphertext is random bytes: only a DM's recipient can open the box,
//! so to every carrier it is indistinguishable from a sealed text, and a
//! flooder gains nothing by sealing for real (an honest `seal_dm` caps the
//! text at 4,000 bytes, a quarter of what a flooder can put in a body).

use std::path::Path;

use festival_core::body::SealedBody;
use festival_core::envelope::MAX_BODY_BYTES;
use festival_core::{Body, Draft, Identity, Kind, RoomId, SignedEnvelope};
use festival_store::{DiskUsage, Inserted, Store};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Envelopes stored per transaction while preloading.
const BATCH: usize = 500;

/// `n` sealed DMs in `dm`, each seq 1 of a fresh identity, to a fresh
/// recipient (no node in the lab), with a body of exactly
/// [`MAX_BODY_BYTES`]. Message `i` was created at `created_at(i)`. The
/// same `seed` gives the same keys and bodies.
pub fn fresh_identity_dms(n: usize, seed: u64, created_at: impl Fn(usize) -> u64) -> Vec<SignedEnvelope> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let ciphertext_len = largest_ciphertext();
    (0..n)
        .map(|i| {
            let author = Identity::generate(&mut rng);
            let recipient = Identity::generate(&mut rng).peer_id();
            let mut nonce = [0u8; 24];
            rng.fill_bytes(&mut nonce);
            let mut ciphertext = vec![0u8; ciphertext_len];
            rng.fill_bytes(&mut ciphertext);
            let body = Body::SealedDm(SealedBody { recipient, nonce, ciphertext }).encode();
            debug_assert_eq!(body.len(), MAX_BODY_BYTES);
            let draft = Draft { seq: 1, room: RoomId::direct(), kind: Kind::SealedDm, created_at: created_at(i), body };
            SignedEnvelope::sign(&author, draft).expect("a body of the largest allowed size signs")
        })
        .collect()
}

/// The ciphertext length that makes a sealed body exactly
/// [`MAX_BODY_BYTES`] long (the encoding's length prefix included).
fn largest_ciphertext() -> usize {
    let encoded = |len: usize| {
        let sealed = SealedBody {
            recipient: Identity::generate(&mut ChaCha20Rng::seed_from_u64(0)).peer_id(),
            nonce: [0; 24],
            ciphertext: vec![0; len],
        };
        Body::SealedDm(sealed).encode().len()
    };
    let mut len = MAX_BODY_BYTES;
    while encoded(len) > MAX_BODY_BYTES {
        len -= 1;
    }
    assert_eq!(encoded(len), MAX_BODY_BYTES, "a sealed body can be made exactly the largest size");
    len
}

/// Writes `envelopes` into the store at `db` (a stopped node's
/// `festival.db`) as messages received from a peer, and returns the
/// store's files' sizes afterwards. Panics if any is not stored as new.
pub fn preload(db: &Path, envelopes: &[SignedEnvelope]) -> DiskUsage {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    rt.block_on(async {
        let store = Store::open(db).await.expect("open the stopped node's store");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as u64;
        for chunk in envelopes.chunks(BATCH) {
            let items: Vec<(SignedEnvelope, u8)> = chunk.iter().map(|e| (e.clone(), 1)).collect();
            let outcomes = store.insert_batch(&items, now, false).await.expect("store a batch of the flood");
            for outcome in outcomes {
                assert!(matches!(outcome, Ok(Inserted::New)), "flood message not stored as new: {outcome:?}");
            }
        }
        let files = store.disk_usage().await.expect("the store's file sizes");
        store.close().await;
        files
    })
}

/// Database + WAL + shared memory of the store in `data_dir`, as the file
/// system sees them now: what a node's disk budget bounds.
pub fn store_files_bytes(data_dir: &Path) -> u64 {
    let db = data_dir.join(festival_node::datadir::DB_FILE);
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut p = db.clone().into_os_string();
            p.push(suffix);
            std::fs::metadata(p).map_or(0, |m| m.len())
        })
        .sum()
}
