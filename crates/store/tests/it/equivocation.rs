//! Proofs of equivocation are kept across restarts, one per author, and the
//! table stays bounded however many keys equivocate.

use crate::common;

use std::path::Path;

use common::{identity, room, temp_store, text};
use festival_store::{Store, StoreError, MAX_EQUIVOCATION_BYTES, MAX_EQUIVOCATION_PROOFS};
use sqlx::Connection;

#[tokio::test]
async fn a_proof_survives_a_restart_and_the_first_one_kept_wins() {
    let (dir, store) = temp_store().await;
    let ben = identity(2);
    let festival = room("festival");
    let one = text(&ben, &festival, 7, 100, "I was at the main stage");
    let other = text(&ben, &festival, 7, 100, "I was never at the main stage");
    let third = text(&ben, &festival, 7, 100, "a third story");

    assert!(store.record_equivocation(&one, &other, 1_000).await.unwrap());
    assert!(!store.record_equivocation(&other, &one, 1_001).await.unwrap(), "the same pair, either order");
    assert!(!store.record_equivocation(&one, &third, 1_002).await.unwrap(), "one proof per author");
    store.close().await;

    let store = Store::open(&dir.path().join("festival.db")).await.unwrap();
    assert_eq!(store.equivocators().await.unwrap(), vec![ben.peer_id()]);
    let (a, b) = store.equivocation_proof(&ben.peer_id()).await.unwrap().expect("kept");
    let mut got = [a.id(), b.id()];
    got.sort();
    let mut want = [one.id(), other.id()];
    want.sort();
    assert_eq!(got, want);
    // The proof verifies on its own: both are Ben's signatures at seq 7.
    for env in [a, b] {
        let verified = festival_core::SignedEnvelope::decode(env.bytes()).unwrap();
        assert_eq!((verified.author(), verified.seq()), (ben.peer_id(), 7));
    }
    assert_eq!(store.equivocation_proof(&identity(3).peer_id()).await.unwrap(), None);
}

#[tokio::test]
async fn two_envelopes_that_are_not_an_equivocation_are_refused() {
    let (_dir, store) = temp_store().await;
    let (ben, cat) = (identity(2), identity(3));
    let festival = room("festival");
    let a = text(&ben, &festival, 1, 1, "one");
    let cases = [
        (a.clone(), a.clone()),
        (a.clone(), text(&ben, &festival, 2, 1, "next seq")),
        (a.clone(), text(&cat, &festival, 1, 1, "another author")),
        (a.clone(), text(&ben, &room("stage"), 1, 1, "another room")),
    ];
    for (x, y) in cases {
        assert!(matches!(store.record_equivocation(&x, &y, 1).await, Err(StoreError::NotAnEquivocation)));
    }
    assert!(store.equivocators().await.unwrap().is_empty());
}

/// Fill the table to its row cap directly (signing 20,000 envelopes would
/// take the test a minute), as proofs recorded at times 1..=cap by keys
/// that are not real.
async fn fill(path: &Path, rows: i64, raw_len: usize) {
    festival_store::configure_sqlite();
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    for i in 0..rows {
        let mut author = [0u8; 32];
        author[..8].copy_from_slice(&i.to_be_bytes());
        sqlx::query(
            "INSERT INTO equivocations (author, room, seq, at, first, second) VALUES (?, 'festival', 1, ?, ?, ?)",
        )
        .bind(&author[..])
        .bind(i + 1)
        .bind(vec![1u8; raw_len])
        .bind(vec![2u8; raw_len])
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    conn.close().await.unwrap();
}

async fn count(store: &Store) -> i64 {
    store.equivocators().await.unwrap().len() as i64
}

#[tokio::test]
async fn the_proof_table_keeps_at_most_its_row_cap_dropping_the_oldest() {
    let (dir, store) = temp_store().await;
    fill(&dir.path().join("festival.db"), MAX_EQUIVOCATION_PROOFS, 100).await;
    assert_eq!(count(&store).await, MAX_EQUIVOCATION_PROOFS);
    let oldest = store.equivocators().await.unwrap()[0];

    let ben = identity(2);
    let festival = room("festival");
    let (a, b) = (text(&ben, &festival, 1, 1, "yes"), text(&ben, &festival, 1, 1, "no"));
    assert!(store.record_equivocation(&a, &b, i64::MAX as u64).await.unwrap());
    assert_eq!(count(&store).await, MAX_EQUIVOCATION_PROOFS, "still at the cap");
    let kept = store.equivocators().await.unwrap();
    assert!(!kept.contains(&oldest), "the oldest proof was dropped");
    assert_eq!(kept.last(), Some(&ben.peer_id()), "the new one is kept");
}

#[tokio::test]
async fn the_proof_table_keeps_at_most_its_byte_cap_dropping_the_oldest() {
    let (dir, store) = temp_store().await;
    // Proofs of two maximum-size envelopes, ~33 KiB each, filling the cap
    // to within a kilobyte.
    let rows = MAX_EQUIVOCATION_BYTES / (2 * 16_896);
    let half = (MAX_EQUIVOCATION_BYTES / rows / 2) as usize;
    fill(&dir.path().join("festival.db"), rows, half).await;

    let ben = identity(2);
    let festival = room("festival");
    let big = |t: &str| text(&ben, &festival, 1, 1, &t.repeat(3_900));
    let (a, b) = (big("a"), big("b"));
    assert!(store.record_equivocation(&a, &b, i64::MAX as u64).await.unwrap());
    assert_eq!(count(&store).await, rows, "one old proof made room for the new one");
    assert_eq!(store.equivocators().await.unwrap().last(), Some(&ben.peer_id()));
    festival_store::configure_sqlite();
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("festival.db"));
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
    let (bytes,): (i64,) = sqlx::query_as("SELECT sum(length(first) + length(second)) FROM equivocations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(bytes <= MAX_EQUIVOCATION_BYTES, "{bytes} bytes of proofs");
}
