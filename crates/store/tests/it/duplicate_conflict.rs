//! Storing the same message twice is harmless (a duplicate), but a second,
//! different message at the same (room, author, seq) is equivocation: it is
//! refused with a typed conflict and the first message stays.

use crate::common;

use common::{identity, room, temp_store, text};
use festival_store::{HeadRow, Inserted, StoreError};

#[tokio::test]
async fn the_same_message_twice_is_a_duplicate() {
    let (_dir, store) = temp_store().await;
    let ana = identity(1);
    let env = text(&ana, &room("festival"), 1, 100, "hi");

    assert_eq!(store.insert(&env, 0, 1_000, false).await.unwrap(), Inserted::New);
    assert_eq!(store.insert(&env, 4, 2_000, false).await.unwrap(), Inserted::Duplicate);

    let got = store.get(&env.id()).await.unwrap().unwrap();
    assert_eq!((got.hops, got.received_at), (0, 1_000), "the duplicate changed nothing");
    assert_eq!(store.message_count().await.unwrap(), 1);
}

#[tokio::test]
async fn a_different_message_at_a_taken_position_is_a_conflict() {
    let (_dir, store) = temp_store().await;
    let ana = identity(1);
    let festival = room("festival");
    let first = text(&ana, &festival, 1, 100, "the bar is open");
    let liar = text(&ana, &festival, 1, 100, "the bar is closed");
    assert_ne!(first.id(), liar.id());

    store.insert(&first, 0, 1_000, false).await.unwrap();
    let err = store.insert(&liar, 0, 1_001, false).await.unwrap_err();
    match err {
        StoreError::Conflict { room, author, seq } => {
            assert_eq!((room, author, seq), (festival.clone(), ana.peer_id(), 1));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }

    assert_eq!(store.get_at(&festival, &ana.peer_id(), 1).await.unwrap().unwrap().envelope, first);
    assert!(store.get(&liar.id()).await.unwrap().is_none());
    assert_eq!(
        store.heads().await.unwrap(),
        vec![HeadRow { room: festival, author: ana.peer_id(), contiguous: 1, max: 1 }]
    );
}

#[tokio::test]
async fn the_same_seq_in_another_room_is_not_a_conflict() {
    let (_dir, store) = temp_store().await;
    let ana = identity(1);
    let a = text(&ana, &room("stage-a"), 1, 100, "hello a");
    let b = text(&ana, &room("stage-b"), 1, 100, "hello b");
    assert_eq!(store.insert(&a, 0, 1, false).await.unwrap(), Inserted::New);
    assert_eq!(store.insert(&b, 0, 1, false).await.unwrap(), Inserted::New);
}
