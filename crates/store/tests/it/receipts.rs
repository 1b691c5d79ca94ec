//! Receipts are idempotent: hearing the same receipt again (gossip repeats
//! them) changes nothing, and the earliest time is kept.

use crate::common;

use common::{identity, room, temp_store, text};
use festival_core::{MessageId, ReceiptStatus};

#[tokio::test]
async fn receipts_are_recorded_once_per_peer_and_status() {
    let (_dir, store) = temp_store().await;
    let (ana, ben) = (identity(1).peer_id(), identity(2).peer_id());
    let msg = text(&identity(3), &room("festival"), 1, 100, "did you get this?");
    store.insert(&msg, 0, 100, true).await.unwrap();
    let other = MessageId::from_bytes([7; 32]);

    store.add_receipts(ana, ReceiptStatus::Delivered, &[msg.id(), other], 1_000).await.unwrap();
    store.add_receipts(ana, ReceiptStatus::Delivered, &[msg.id()], 1_500).await.unwrap();
    store.add_receipts(ana, ReceiptStatus::Delivered, &[msg.id()], 900).await.unwrap();
    store.add_receipts(ana, ReceiptStatus::Read, &[msg.id()], 2_000).await.unwrap();
    store.add_receipts(ben, ReceiptStatus::Delivered, &[msg.id()], 1_200).await.unwrap();
    store.add_receipts(ben, ReceiptStatus::Delivered, &[msg.id()], 1_200).await.unwrap();

    assert_eq!(
        store.receipts_for(&msg.id()).await.unwrap(),
        vec![
            (ana, ReceiptStatus::Delivered, 900),
            (ben, ReceiptStatus::Delivered, 1_200),
            (ana, ReceiptStatus::Read, 2_000),
        ]
    );
    // A receipt may arrive before its message; it is kept all the same.
    assert_eq!(store.receipts_for(&other).await.unwrap(), vec![(ana, ReceiptStatus::Delivered, 1_000)]);
    assert!(store.receipts_for(&MessageId::from_bytes([0; 32])).await.unwrap().is_empty());
    store.add_receipts(ben, ReceiptStatus::Read, &[], 1).await.unwrap();
}
