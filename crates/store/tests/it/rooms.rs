//! The room list: joining is idempotent, and the unread count is what a
//! person would expect: text and DMs to me, written by others, that arrived
//! after I last read the room.

use crate::common;

use common::{identity, profile, receipt, room, sealed, sealed_receipt, temp_store, text};
use festival_core::RoomId;
use festival_store::{RoomRecord, StoreError};

#[tokio::test]
async fn joining_twice_keeps_the_first_join_and_leaving_forgets_the_room() {
    let (_dir, store) = temp_store().await;
    let stage = room("main-stage");
    assert!(store.join_room(&stage, "Main Stage", 100).await.unwrap());
    assert!(!store.join_room(&stage, "Renamed", 200).await.unwrap());
    assert_eq!(
        store.rooms().await.unwrap(),
        vec![RoomRecord {
            room: stage.clone(),
            name: "Main Stage".into(),
            joined_at: 100,
            last_read_at: 100,
            unread: 0,
            muted: false,
            last_activity: None,
        }]
    );
    assert!(store.leave_room(&stage).await.unwrap());
    assert!(!store.leave_room(&stage).await.unwrap());
    assert!(store.rooms().await.unwrap().is_empty());
    assert!(matches!(store.mark_room_read(&stage, 5).await, Err(StoreError::NotJoined(r)) if r == stage));
}

#[tokio::test]
async fn unread_counts_text_and_my_dms_from_others_since_last_read() {
    let (_dir, store) = temp_store().await;
    let (me, ana, ben) = (identity(1), identity(2), identity(3));
    store.create_identity(&me, "Me", 1).await.unwrap();
    // Profiles only go to the festival room, so that is the room to test.
    let stage = RoomId::festival();
    let dm = RoomId::direct();
    store.join_room(&stage, "Festival", 1_000).await.unwrap();
    store.join_room(&dm, "Direct messages", 1_001).await.unwrap();

    let first = text(&ana, &stage, 1, 10, "hi all");
    let received = [
        (first.clone(), 1_100),
        (text(&ana, &stage, 2, 20, "hello"), 1_200),
        (text(&me, &stage, 1, 30, "my own words"), 1_300),
        (profile(&ben, &stage, 1, 40, "Ben"), 1_400),
        (receipt(&ben, &stage, 2, 50, &[first.id()]), 1_500),
        (sealed_receipt(&ben, &ana.peer_id(), 1, 55, &[first.id()]), 1_550),
        (sealed(&ana, &me.peer_id(), 1, 60, "psst"), 1_600),
        (sealed(&ana, &ben.peer_id(), 2, 70, "not for you"), 1_700),
    ];
    for (env, at) in &received {
        store.insert(env, 1, *at, false).await.unwrap();
    }
    let unread = |rooms: Vec<RoomRecord>| rooms.into_iter().map(|r| (r.room, r.unread)).collect::<Vec<_>>();
    assert_eq!(unread(store.rooms().await.unwrap()), vec![(stage.clone(), 2), (dm.clone(), 1)]);

    store.mark_room_read(&stage, 1_200).await.unwrap();
    assert_eq!(unread(store.rooms().await.unwrap()), vec![(stage.clone(), 0), (dm.clone(), 1)]);
    store.mark_room_read(&stage, 500).await.unwrap();
    assert_eq!(store.rooms().await.unwrap()[0].last_read_at, 1_200, "the read mark never moves back");

    store.insert(&text(&ben, &stage, 3, 5, "an old clock, but news to me"), 1, 1_800, false).await.unwrap();
    assert_eq!(unread(store.rooms().await.unwrap()), vec![(stage, 1), (dm, 1)]);
}
