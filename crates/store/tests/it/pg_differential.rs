//! The PostgreSQL store's ingest (its one-statement fast path, and the
//! transaction it falls back to) against the SQLite store's, on the same
//! seeded random batches: runs, holes, resends, conflicts, repeats within a
//! batch, the store's own envelopes and chains given up on. Every outcome,
//! head and author's accounting must be the same after every batch.

use crate::common;

use common::{identity, room, text};
use festival_core::SignedEnvelope;
use festival_store::pg::{PgStore, TempServer};
use festival_store::{Inserted, Store};
use rand::{Rng, SeedableRng};

const T0: u64 = 1_750_000_000_000;

fn outcome(o: &festival_store::Result<Inserted>) -> String {
    match o {
        Ok(i) => format!("{i:?}"),
        Err(festival_store::StoreError::Conflict { seq, .. }) => format!("Conflict({seq})"),
        Err(e) => format!("Err({e})"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_ingest_agrees_with_sqlite_on_random_batches() {
    let seed = 12;
    let server = TempServer::start(false).await.expect("start PostgreSQL");
    let pg = PgStore::connect(&server.create_database("differential").await.unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lite = Store::open(&dir.path().join("festival.db")).await.unwrap();
    let authors: Vec<_> = (0..3).map(|i| identity(70 + i)).collect();
    let rooms = [room("camp"), room("stage")];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    // Per chain, the seq after the highest sent: most batches go on from
    // there, as a node's do; the rest resend, skip ahead or fill in.
    let mut next = std::collections::HashMap::new();
    for round in 0..150u64 {
        let mut batch: Vec<(SignedEnvelope, u8)> = Vec::new();
        for _ in 0..rng.gen_range(1..=2) {
            let (ai, ri) = (rng.gen_range(0..authors.len()), rng.gen_range(0..rooms.len()));
            let (a, r) = (&authors[ai], &rooms[ri]);
            let going_on = next.entry((ai, ri)).or_insert(1u64);
            let start = if rng.gen_bool(0.85) { *going_on } else { rng.gen_range(1..=*going_on + 3) };
            let len = rng.gen_range(1..=4u64);
            *going_on = (*going_on).max(start + len);
            for seq in start..start + len {
                // Now and then a hole in the run, or another text at the
                // seq (a conflict if the first is stored).
                if rng.gen_bool(0.02) {
                    continue;
                }
                let body = if rng.gen_bool(0.05) { format!("other {round}") } else { format!("{seq}") };
                batch.push((text(a, r, seq, T0 + seq, &body), rng.gen_range(0..3)));
            }
        }
        if batch.is_empty() {
            continue;
        }
        if rng.gen_bool(0.1) {
            let again = batch[0].clone();
            batch.push(again);
        }
        let local = rng.gen_bool(0.1);
        let p = pg.insert_batch(&batch, T0 + round, local).await.unwrap();
        let l = lite.insert_batch(&batch, T0 + round, local).await.unwrap();
        let (p, l): (Vec<_>, Vec<_>) = (p.iter().map(outcome).collect(), l.iter().map(outcome).collect());
        assert_eq!(p, l, "round {round}: outcomes");
        if rng.gen_bool(0.05) {
            let (a, r) = (&authors[rng.gen_range(0..authors.len())], &rooms[rng.gen_range(0..rooms.len())]);
            let through = rng.gen_range(1..=20);
            pg.advance_contiguous(r, &a.peer_id(), through).await.unwrap();
            lite.advance_contiguous(r, &a.peer_id(), through).await.unwrap();
        }
        let (mut ph, mut lh) = (pg.heads().await.unwrap(), lite.heads().await.unwrap());
        ph.sort_by(|x, y| (x.room.as_str(), x.author).cmp(&(y.room.as_str(), y.author)));
        lh.sort_by(|x, y| (x.room.as_str(), x.author).cmp(&(y.room.as_str(), y.author)));
        assert_eq!(ph, lh, "round {round}: heads");
        for a in &authors {
            let id = a.peer_id();
            assert_eq!(pg.author_usage(&id).await.unwrap(), lite.author_usage(&id).await.unwrap(), "round {round}");
        }
    }
    let (fast, refused) = pg.fast_path_counts();
    assert!(fast >= 20 && refused >= 20, "both paths taken: {fast} fast, {refused} refused");
    pg.close().await;
}
