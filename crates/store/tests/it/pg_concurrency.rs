//! The PostgreSQL store under two instances at once, one storing and one
//! evicting: no operation fails, the accounting the budgets read stays
//! equal to the rows, and the marks do not go down. (Both lock a batch's
//! chains in one order; this test does not show that no deadlock happens,
//! since a deadlock would be rolled back and retried: with the eviction's
//! lock taken out it passes too.)

use crate::common;

use common::{identity, room, text};
use festival_core::SignedEnvelope;
use festival_store::pg::{PgStore, TempServer};
use festival_store::Budget;

const T0: u64 = 1_750_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storing_and_evicting_at_once_neither_fails_nor_skews_the_accounting() {
    let server = TempServer::start(false).await.expect("start PostgreSQL");
    let url = server.create_database("concurrency").await.unwrap();
    let (writer, evictor) = (PgStore::connect(&url).await.unwrap(), PgStore::connect(&url).await.unwrap());
    let authors: Vec<_> = (0..12).map(|i| identity(100 + i)).collect();
    let camp = room("camp");
    let body = "x".repeat(500);

    let write = async {
        for round in 0..40u64 {
            // Every chain in every batch, in an order that changes.
            let mut batch: Vec<(SignedEnvelope, u8)> = authors
                .iter()
                .flat_map(|a| (1..=5).map(move |k| (a, round * 5 + k)))
                .map(|(a, seq)| (text(a, &camp, seq, T0 + seq, &body), 1))
                .collect();
            let turn = (round as usize * 7) % batch.len();
            batch.rotate_left(turn);
            let out = writer.insert_batch(&batch, T0, false).await.expect("a batch never fails");
            assert!(out.iter().all(Result::is_ok), "{out:?}");
        }
    };
    let evict = async {
        // A per-room budget the writer keeps going over.
        let budget = Budget { disk_bytes: u64::MAX / 4, per_author_bytes: u64::MAX / 4, per_room_bytes: 200_000 };
        let mut evicted = 0;
        for _ in 0..200 {
            evicted += evictor.evict(&budget, T0).await.expect("eviction never fails").messages;
            tokio::task::yield_now().await;
        }
        evicted
    };
    let ((), evicted) = tokio::join!(write, evict);
    assert!(evicted > 0, "the eviction really ran alongside");

    // The sums the budgets read are the rows that are left.
    let usage = writer.usage().await.unwrap();
    let mut left = 0;
    for a in &authors {
        left += writer.load_range(&camp, &a.peer_id(), 1, 200, usize::MAX, 0).await.unwrap().len() as u64;
    }
    assert_eq!(usage.messages, left);
    assert_eq!(writer.message_count().await.unwrap(), left);
    let heads = writer.heads().await.unwrap();
    assert!(heads.iter().all(|h| (h.contiguous, h.max) == (200, 200)), "marks never go down: {heads:?}");
}
