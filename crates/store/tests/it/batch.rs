//! A batch is one transaction with an outcome per item: new, duplicate,
//! conflict or refused, in input order. One bad item never costs the others.

use crate::common;

use common::{identity, room, temp_store, text};
use festival_core::SignedEnvelope;
use festival_store::{Inserted, StoreError};

#[tokio::test]
async fn a_batch_reports_each_item_and_stores_the_good_ones() {
    let (_dir, store) = temp_store().await;
    let (ana, ben) = (identity(1), identity(2));
    let festival = room("festival");
    let old = text(&ana, &festival, 1, 100, "already here");
    store.insert(&old, 0, 1, false).await.unwrap();

    let fresh = text(&ana, &festival, 2, 200, "new");
    let clash_with_old = text(&ana, &festival, 1, 100, "rewritten history");
    let ben_first = text(&ben, &festival, 1, 300, "ben one");
    let ben_rival = text(&ben, &festival, 1, 300, "ben one, other version");
    let items: Vec<(SignedEnvelope, u8)> = vec![
        (fresh.clone(), 1),
        (old.clone(), 1),
        (clash_with_old, 1),
        (ben_first.clone(), 2),
        (ben_first.clone(), 2),
        (ben_rival, 2),
    ];

    let outcomes = store.insert_batch(&items, 5_000, false).await.unwrap();

    assert_eq!(outcomes.len(), items.len());
    assert!(matches!(outcomes[0], Ok(Inserted::New)));
    assert!(matches!(outcomes[1], Ok(Inserted::Duplicate)));
    assert!(matches!(outcomes[2], Err(StoreError::Conflict { seq: 1, .. })));
    assert!(matches!(outcomes[3], Ok(Inserted::New)));
    assert!(matches!(outcomes[4], Ok(Inserted::Duplicate)), "a second copy in the same batch");
    assert!(matches!(outcomes[5], Err(StoreError::Conflict { seq: 1, .. })), "the first in the batch wins");

    assert_eq!(store.message_count().await.unwrap(), 3);
    assert_eq!(store.get(&fresh.id()).await.unwrap().unwrap().received_at, 5_000);
    assert_eq!(store.get(&ben_first.id()).await.unwrap().unwrap().hops, 2);
}

#[tokio::test]
async fn a_large_batch_spanning_many_statements_keeps_outcomes_in_order() {
    let (_dir, store) = temp_store().await;
    let authors: Vec<_> = (0..7).map(identity).collect();
    let festival = room("festival");
    let mut items = Vec::new();
    for seq in 1..=150u64 {
        for a in &authors {
            items.push((text(a, &festival, seq, seq * 10, &format!("seq {seq}")), 0u8));
        }
    }
    // A copy of the very first item far later in the batch, in another
    // statement, and a rival for the last position.
    items.push(items[0].clone());
    let last = authors.last().unwrap();
    items.push((text(last, &festival, 150, 1_500, "rival"), 0));

    let outcomes = store.insert_batch(&items, 1, false).await.unwrap();

    let n = items.len();
    assert!(outcomes[..n - 2].iter().all(|o| matches!(o, Ok(Inserted::New))));
    assert!(matches!(outcomes[n - 2], Ok(Inserted::Duplicate)));
    assert!(matches!(outcomes[n - 1], Err(StoreError::Conflict { seq: 150, .. })));
    assert_eq!(store.message_count().await.unwrap(), 150 * 7);
    let heads = store.heads().await.unwrap();
    assert_eq!(heads.len(), 7);
    assert!(heads.iter().all(|h| h.contiguous == 150 && h.max == 150));

    // The same batch again: all duplicates (or the same conflict), nothing new.
    let again = store.insert_batch(&items, 2, false).await.unwrap();
    assert!(again[..n - 1].iter().all(|o| matches!(o, Ok(Inserted::Duplicate))));
    assert!(matches!(again[n - 1], Err(StoreError::Conflict { .. })));
    assert_eq!(store.message_count().await.unwrap(), 150 * 7);
}

#[tokio::test]
async fn an_empty_batch_or_one_of_only_conflicts_is_fine() {
    let (_dir, store) = temp_store().await;
    assert!(store.insert_batch(&[], 1, false).await.unwrap().is_empty());
    let ana = identity(1);
    let first = text(&ana, &room("festival"), 1, 10, "first");
    store.insert(&first, 0, 1, false).await.unwrap();
    // Seqs or times beyond SQLite's range can no longer be signed or decoded
    // (festival-core refuses them), so a conflict is the refusal left to test.
    let rival = text(&ana, &room("festival"), 1, 10, "rival");
    let outcomes = store.insert_batch(&[(rival, 0)], 1, false).await.unwrap();
    assert!(matches!(outcomes[0], Err(StoreError::Conflict { .. })));
    assert_eq!(store.message_count().await.unwrap(), 1);
}
