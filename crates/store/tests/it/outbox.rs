//! Messages this device writes are queued in the outbox by the same insert
//! that stores them, stay queued across restarts, and are marked sent once:
//! the first path that carried a message is the one remembered. The relay's
//! acknowledgement marks only ours that left; retries are kept.

use crate::common;

use common::{identity, room, temp_store, text};
use festival_core::MessageId;
use festival_store::{OutboxRow, OutboxState, Store, StoreError};

#[tokio::test]
async fn our_messages_wait_in_the_outbox_until_sent_even_across_a_restart() {
    let (dir, store) = temp_store().await;
    let me = identity(1);
    let festival = room("festival");
    let mine = text(&me, &festival, 1, 100, "on my way");
    let theirs = text(&identity(2), &festival, 1, 100, "see you");
    let batch_mine = [(text(&me, &festival, 2, 200, "two"), 0), (text(&me, &festival, 3, 300, "three"), 0)];

    store.insert(&mine, 0, 1_000, true).await.unwrap();
    store.insert(&theirs, 2, 1_001, false).await.unwrap();
    store.insert_batch(&batch_mine, 1_002, true).await.unwrap();
    // Re-inserting our own message (it came back to us over sync) does not
    // queue it twice.
    store.insert(&mine, 3, 1_003, true).await.unwrap();

    let unsent = store.unsent().await.unwrap();
    assert_eq!(unsent[0], OutboxRow { id: mine.id(), room: festival.clone(), seq: 1, queued_at: 1_000 });
    assert_eq!(unsent.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(store.outbox_state(&theirs.id()).await.unwrap(), None, "not ours");

    store.close().await;
    let store = Store::open(&dir.path().join("festival.db")).await.unwrap();
    assert_eq!(store.unsent().await.unwrap(), unsent, "the outbox survives a restart");

    assert!(store.mark_sent(&mine.id(), "lan", 2_000).await.unwrap());
    assert!(!store.mark_sent(&mine.id(), "relay", 2_500).await.unwrap(), "first mark wins");
    assert_eq!(
        store.outbox_state(&mine.id()).await.unwrap(),
        Some(OutboxState::Sent { queued_at: 1_000, sent_at: 2_000, path: "lan".into() })
    );
    assert_eq!(
        store.outbox_state(&batch_mine[0].0.id()).await.unwrap(),
        Some(OutboxState::Queued { queued_at: 1_002 })
    );
    assert_eq!(store.unsent().await.unwrap().len(), 2);
}

#[tokio::test]
async fn marking_a_message_that_is_not_ours_is_an_error() {
    let (_dir, store) = temp_store().await;
    let stranger = MessageId::from_bytes([9; 32]);
    assert!(matches!(store.mark_sent(&stranger, "lan", 1).await, Err(StoreError::NotInOutbox(id)) if id == stranger));
}

#[tokio::test]
async fn the_relays_mark_and_retries_are_kept_for_our_sent_messages_only() {
    let (_dir, store) = temp_store().await;
    let me = identity(1);
    let festival = room("festival");
    let friend = identity(2).peer_id();
    let sent = common::sealed(&me, &friend, 1, 10_000, "at the gate?");
    let unsent = common::sealed(&me, &friend, 2, 10_001, "hello?");
    let receipt = common::sealed_receipt(&me, &friend, 3, 10_002, &[MessageId::from_bytes([4; 32])]);
    let theirs = text(&identity(3), &festival, 1, 10_000, "not mine");
    for env in [&sent, &unsent, &receipt] {
        store.insert(env, 0, 10_005, true).await.unwrap();
    }
    store.insert(&theirs, 1, 10_005, false).await.unwrap();
    assert!(store.mark_sent(&sent.id(), "relay", 10_010).await.unwrap());

    // The relay names all four: only ours that left are marked, once.
    let ids = [sent.id(), unsent.id(), theirs.id(), MessageId::from_bytes([9; 32])];
    assert_eq!(store.mark_relay_stored(&ids, 10_020).await.unwrap(), vec![sent.id()]);
    assert!(store.mark_relay_stored(&ids, 10_030).await.unwrap().is_empty(), "marked already");
    let marks = store.outbox_marks(&sent.id()).await.unwrap().expect("ours");
    assert_eq!((marks.relay_stored_at, marks.sent), (Some(10_020), Some((10_010, "relay".to_owned()))));
    assert_eq!(store.outbox_marks(&unsent.id()).await.unwrap().unwrap().relay_stored_at, None);
    assert_eq!(store.outbox_marks(&theirs.id()).await.unwrap(), None);

    // The DMs whose "not delivered yet" may still come: ours, not the
    // receipt we sealed into the same room; a retry restarts one's clock.
    let mut recent = store.recent_undelivered_dms(9_000, 10).await.unwrap();
    recent.sort();
    let mut want = vec![(sent.id(), 10_000), (unsent.id(), 10_001)];
    want.sort();
    assert_eq!(recent, want);
    store.mark_retried(&unsent.id(), 50_000).await.unwrap();
    assert_eq!(store.recent_undelivered_dms(40_000, 10).await.unwrap(), vec![(unsent.id(), 50_000)]);
    assert!(matches!(store.mark_retried(&theirs.id(), 1).await, Err(StoreError::NotInOutbox(_))));
    // Acknowledged by anyone: no longer waited for.
    store.add_receipts(friend, festival_core::ReceiptStatus::Delivered, &[unsent.id()], 60_000).await.unwrap();
    assert!(store.recent_undelivered_dms(40_000, 10).await.unwrap().is_empty());
}
