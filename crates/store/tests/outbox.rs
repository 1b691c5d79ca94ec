//! Messages this device writes are queued in the outbox by the same insert
//! that stores them, stay queued across restarts, and are marked sent once:
//! the first path that carried a message is the one remembered.

mod common;

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
