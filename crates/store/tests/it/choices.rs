//! People muted or blocked, rooms muted: kept until undone, bounded, and a
//! blocked person's messages leave history and unread counts while they stay
//! stored (they are still carried for the room's other members).

use crate::common;

use common::{identity, profile, room, sealed, temp_store, text};
use festival_core::RoomId;
use festival_store::{PersonChoice, StoreError};

#[tokio::test]
async fn choices_are_kept_until_undone_newest_first() {
    let (_dir, store) = temp_store().await;
    let (ana, ben) = (identity(1).peer_id(), identity(2).peer_id());
    assert!(store.people_choices().await.unwrap().is_empty());

    store.set_person_muted(&ana, true, 100).await.unwrap();
    store.set_person_blocked(&ben, true, 200).await.unwrap();
    assert_eq!(
        store.people_choices().await.unwrap(),
        vec![
            PersonChoice { peer: ben, muted: false, blocked: true, since: 200 },
            PersonChoice { peer: ana, muted: true, blocked: false, since: 100 },
        ]
    );
    // Changing a choice moves it to the top and keeps the other flag;
    // undoing both drops it.
    store.set_person_blocked(&ana, true, 300).await.unwrap();
    assert_eq!(
        store.people_choices().await.unwrap()[0],
        PersonChoice { peer: ana, muted: true, blocked: true, since: 300 }
    );
    store.set_person_muted(&ana, false, 400).await.unwrap();
    assert_eq!(store.person_choice(&ana).await.unwrap().map(|c| (c.muted, c.blocked)), Some((false, true)));
    store.set_person_blocked(&ana, false, 500).await.unwrap();
    assert_eq!(store.person_choice(&ana).await.unwrap(), None);
    assert_eq!(store.person_choice(&ben).await.unwrap().map(|c| c.blocked), Some(true));
}

#[tokio::test]
async fn the_list_is_capped_but_changing_or_undoing_always_works() {
    let (_dir, store) = temp_store().await;
    let max = 5;
    for i in 0..max {
        store.set_person_blocked_within(&identity(i).peer_id(), true, i, max).await.unwrap();
    }
    let one_more = identity(99).peer_id();
    let refused = store.set_person_blocked_within(&one_more, true, 9, max).await;
    assert!(matches!(refused, Err(StoreError::TooManyChoices { max: 5 })), "{refused:?}");
    assert_eq!(store.people_choices().await.unwrap().len(), 5);
    // Someone on the list can still be changed, and undone to make room.
    store.set_person_blocked_within(&identity(0).peer_id(), true, 10, max).await.unwrap();
    store.set_person_blocked_within(&identity(1).peer_id(), false, 11, max).await.unwrap();
    store.set_person_blocked_within(&one_more, true, 12, max).await.unwrap();
    assert_eq!(store.people_choices().await.unwrap().len(), 5);
}

#[tokio::test]
async fn a_blocked_persons_messages_leave_history_and_unread_but_stay_stored() {
    let (_dir, store) = temp_store().await;
    let (me, ana, spam) = (identity(1), identity(2), identity(3));
    store.create_identity(&me, "Me", 1).await.unwrap();
    let stage = room("main-stage");
    store.join_room(&stage, "Main Stage", 10).await.unwrap();
    store.join_room(&RoomId::direct(), "dm", 10).await.unwrap();
    let hers = text(&ana, &stage, 1, 1_000, "see you at the front");
    let junk = text(&spam, &stage, 1, 1_001, "buy tokens");
    let junk_dm = sealed(&spam, &me.peer_id(), 1, 1_002, "click this");
    for env in [&hers, &junk, &junk_dm] {
        store.insert(env, 1, 2_000, false).await.unwrap();
    }
    let unread =
        |rooms: Vec<festival_store::RoomRecord>, r: &RoomId| rooms.iter().find(|x| &x.room == r).unwrap().unread;
    assert_eq!(unread(store.rooms().await.unwrap(), &stage), 2);
    assert_eq!(unread(store.rooms().await.unwrap(), &RoomId::direct()), 1);

    store.set_person_blocked(&spam.peer_id(), true, 3_000).await.unwrap();
    let page = store.history(&stage, None, 50).await.unwrap();
    assert_eq!(page.iter().map(|m| m.envelope.id()).collect::<Vec<_>>(), vec![hers.id()]);
    assert!(store.dm_history(&me.peer_id(), &spam.peer_id(), None, 50).await.unwrap().is_empty());
    let rooms = store.rooms().await.unwrap();
    assert_eq!((unread(rooms.clone(), &stage), unread(rooms, &RoomId::direct())), (1, 0));
    // Still stored: the room's other members may want it from us.
    assert!(store.get(&junk.id()).await.unwrap().is_some());

    // Muting is not blocking: it hides nothing.
    store.set_person_muted(&spam.peer_id(), true, 4_000).await.unwrap();
    store.set_person_blocked(&spam.peer_id(), false, 4_000).await.unwrap();
    assert_eq!(store.history(&stage, None, 50).await.unwrap().len(), 2);
    assert_eq!(store.dm_history(&me.peer_id(), &spam.peer_id(), None, 50).await.unwrap().len(), 1);
}

#[tokio::test]
async fn rooms_can_be_muted_only_once_joined() {
    let (_dir, store) = temp_store().await;
    let stage = room("main-stage");
    assert!(matches!(store.set_room_muted(&stage, true).await, Err(StoreError::NotJoined(_))));
    store.join_room(&stage, "Main Stage", 10).await.unwrap();
    store.set_room_muted(&stage, true).await.unwrap();
    assert!(store.rooms().await.unwrap()[0].muted);
    store.set_room_muted(&stage, false).await.unwrap();
    assert!(!store.rooms().await.unwrap()[0].muted);
}

#[tokio::test]
async fn pruning_peers_keeps_the_names_of_people_muted_or_blocked() {
    let (_dir, store) = temp_store().await;
    let festival = RoomId::festival();
    let (ana, ben) = (identity(1), identity(2));
    for (i, who) in [&ana, &ben].into_iter().enumerate() {
        store
            .insert(&profile(who, &festival, 1, 1_000, if i == 0 { "Ana" } else { "Ben" }), 1, 2_000, false)
            .await
            .unwrap();
        store.set_peer_name(&who.peer_id(), if i == 0 { "Ana" } else { "Ben" }).await.unwrap();
    }
    store.set_person_blocked(&ben.peer_id(), true, 3_000).await.unwrap();
    assert_eq!(store.prune_peers(0).await.unwrap(), 1);
    assert_eq!(store.peer(&ana.peer_id()).await.unwrap(), None);
    assert_eq!(store.peer(&ben.peer_id()).await.unwrap().and_then(|p| p.name).as_deref(), Some("Ben"));
}
