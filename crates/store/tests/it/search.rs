//! Search: room texts and DMs to or from me are found by their words (the
//! last typed word as a prefix), newest first; other people's sealed mail is
//! never indexed; a message deleted by expiry leaves the index; blocked
//! people's messages are not found; FTS5 syntax typed by a person is text.

use crate::common;

use common::{identity, profile, room, sealed, temp_store, text};
use festival_core::RoomId;
use festival_store::StoreError;

#[tokio::test]
async fn texts_and_my_dms_are_found_newest_first_and_others_mail_never_indexed() {
    let (_dir, store) = temp_store().await;
    let (me, ana, ben) = (identity(1), identity(2), identity(3));
    store.create_identity(&me, "Me", 1).await.unwrap();
    let stage = room("main-stage");
    let old = text(&ana, &stage, 1, 1_000, "Fireworks at the lake at midnight");
    let new = text(&ben, &stage, 1, 2_000, "the fireworks were late");
    let other = text(&ana, &stage, 2, 3_000, "tacos by the gate");
    let to_me = sealed(&ana, &me.peer_id(), 1, 4_000, "secret fireworks spot");
    let from_me = sealed(&me, &ana.peer_id(), 1, 5_000, "see you at the FIREWORKS");
    let not_mine = sealed(&ana, &ben.peer_id(), 2, 6_000, "fireworks for Ben only");
    let name = profile(&ana, &RoomId::festival(), 3, 7_000, "Fireworks Fan");
    for env in [&old, &new, &other, &to_me, &from_me, &not_mine, &name] {
        store.insert(env, 1, 10_000, false).await.unwrap();
    }
    // Queued: the three texts and my two DMs; not Ben's mail, not a profile.
    assert_eq!(store.search_pending().await.unwrap(), 5);
    assert_eq!(store.index_pending(&me, 1_000).await.unwrap(), 5);
    assert_eq!(store.search_pending().await.unwrap(), 0);

    let ids = |found: Vec<festival_store::StoredMessage>| found.iter().map(|m| m.envelope.id()).collect::<Vec<_>>();
    // Any letter case and accents aside; newest stored first; the last word a prefix.
    assert_eq!(ids(store.search("fire", 10).await.unwrap()), [from_me.id(), to_me.id(), new.id(), old.id()]);
    assert_eq!(ids(store.search("lake fireworks", 10).await.unwrap()), [old.id()]);
    assert_eq!(ids(store.search("FIREWORKS   sp", 10).await.unwrap()), [to_me.id()]);
    assert_eq!(ids(store.search("fire", 2).await.unwrap()), [from_me.id(), to_me.id()]);
    assert!(store.search("ben only", 10).await.unwrap().is_empty(), "others' sealed mail is not searchable");
    // FTS5 syntax is text, not an error or a trick.
    assert!(store.search("tacos OR fireworks", 10).await.unwrap().is_empty());
    assert_eq!(ids(store.search("\"tacos\" (gate", 10).await.unwrap()), [other.id()]);
    assert!(matches!(store.search("  \"\" * ", 10).await, Err(StoreError::BadQuery(_))));
    assert!(matches!(store.search(&"x".repeat(201), 10).await, Err(StoreError::BadQuery(_))));

    // Blocked: not found; unblocked: found again.
    store.set_person_blocked(&ben.peer_id(), true, 11_000).await.unwrap();
    assert_eq!(ids(store.search("fireworks late", 10).await.unwrap()), []);
    store.set_person_blocked(&ben.peer_id(), false, 12_000).await.unwrap();
    assert_eq!(ids(store.search("fireworks late", 10).await.unwrap()), [new.id()]);
}

#[tokio::test]
async fn expired_messages_leave_the_index_and_the_queue() {
    let (_dir, store) = temp_store().await;
    let (me, ana) = (identity(1), identity(2));
    store.create_identity(&me, "Me", 1).await.unwrap();
    let stage = room("main-stage");
    let gone = text(&ana, &stage, 1, 1_000, "old news about the stage");
    let queued = text(&ana, &stage, 2, 1_500, "old queued news");
    let kept = text(&ana, &stage, 3, 9_000, "fresh news about the stage");
    store.insert(&gone, 1, 10_000, false).await.unwrap();
    store.index_pending(&me, 10).await.unwrap();
    store.insert(&queued, 1, 10_000, false).await.unwrap();
    store.insert(&kept, 1, 10_000, false).await.unwrap();
    assert_eq!(store.search_pending().await.unwrap(), 2);

    assert_eq!(store.expire(2_000, 100).await.unwrap(), 2);
    assert_eq!(store.search_pending().await.unwrap(), 1, "the expired one left the queue");
    store.index_pending(&me, 10).await.unwrap();
    let found = store.search("news", 10).await.unwrap();
    assert_eq!(found.iter().map(|m| m.envelope.id()).collect::<Vec<_>>(), [kept.id()]);
}

#[tokio::test]
async fn indexing_goes_in_batches_and_stops_at_the_limit() {
    let (_dir, store) = temp_store().await;
    let (me, ana) = (identity(1), identity(2));
    store.create_identity(&me, "Me", 1).await.unwrap();
    let stage = room("main-stage");
    let batch: Vec<_> = (1..=1_200u64)
        .map(|seq| (text(&ana, &stage, seq, 1_000 + seq, &format!("line {seq} of the set")), 1u8))
        .collect();
    store.insert_batch(&batch, 10_000, false).await.unwrap();
    assert_eq!(store.index_pending(&me, 1_000).await.unwrap(), 1_000);
    assert_eq!(store.search_pending().await.unwrap(), 200);
    assert_eq!(store.index_pending(&me, 1_000).await.unwrap(), 200);
    assert_eq!(store.search("set", 100).await.unwrap().len(), 100, "clamped to MAX_SEARCH_RESULTS");
    assert_eq!(store.search("1200", 5).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_batch_queues_what_one_by_one_queues_and_copies_queue_nothing_again() {
    let (_dir, store) = temp_store().await;
    let (me, ana, ben) = (identity(1), identity(2), identity(3));
    store.create_identity(&me, "Me", 1).await.unwrap();
    let stage = room("main-stage");
    // Something stored before, so the batch's rows are not the first rowids.
    store.insert(&text(&ben, &stage, 1, 500, "earlier"), 1, 10_000, false).await.unwrap();
    store.index_pending(&me, 10).await.unwrap();
    let batch: Vec<_> = [
        text(&ana, &stage, 1, 1_000, "batch text one"),
        sealed(&ana, &me.peer_id(), 1, 2_000, "batch dm to me"),
        profile(&ana, &RoomId::festival(), 2, 3_000, "batch name"),
        sealed(&ana, &ben.peer_id(), 3, 4_000, "batch dm for ben"),
        sealed(&me, &ana.peer_id(), 1, 5_000, "batch dm from me"),
        text(&ana, &stage, 2, 6_000, "batch text two"),
    ]
    .into_iter()
    .map(|e| (e, 1u8))
    .collect();
    store.insert_batch(&batch, 10_000, false).await.unwrap();
    // The two texts and my two DMs; not Ben's mail, not a profile.
    assert_eq!(store.search_pending().await.unwrap(), 4);
    // The same batch again, with one new text: only the new one is queued.
    let mut again = batch.clone();
    again.push((text(&ana, &stage, 3, 7_000, "batch text three"), 1));
    store.insert_batch(&again, 10_000, false).await.unwrap();
    assert_eq!(store.search_pending().await.unwrap(), 5);
    assert_eq!(store.index_pending(&me, 100).await.unwrap(), 5);
    assert_eq!(store.search("batch", 10).await.unwrap().len(), 5);
}

/// The index forgets a deleted message's words (the delete trigger and the
/// index agree on its rowid): otherwise a later message given the same pk
/// (SQLite hands out max + 1 again once the newest row is gone) would be
/// found by words it does not hold.
#[tokio::test]
async fn a_deleted_message_leaves_no_word_behind_even_when_its_pk_is_reused() {
    let (_dir, store) = temp_store().await;
    let (me, ana, ben) = (identity(1), identity(2), identity(3));
    store.create_identity(&me, "Me", 1).await.unwrap();
    let stage = room("main-stage");
    let gone = text(&ana, &stage, 1, 1_000, "zebra crossing at gate two");
    store.insert(&gone, 1, 10_000, false).await.unwrap();
    assert_eq!(store.index_pending(&me, 10).await.unwrap(), 1);
    assert_eq!(store.search("zebra", 10).await.unwrap().len(), 1);
    assert_eq!(store.expire(2_000, 100).await.unwrap(), 1);
    // The only message is gone: the next one takes its pk.
    let next = text(&ben, &stage, 1, 9_000, "nothing about animals");
    store.insert(&next, 1, 10_000, false).await.unwrap();
    assert!(store.search("zebra", 10).await.unwrap().is_empty());
    assert_eq!(store.index_pending(&me, 10).await.unwrap(), 1);
    let found = store.search("animals", 10).await.unwrap();
    assert_eq!(found.iter().map(|m| m.envelope.id()).collect::<Vec<_>>(), [next.id()]);
    assert!(store.search("zebra", 10).await.unwrap().is_empty());
}
