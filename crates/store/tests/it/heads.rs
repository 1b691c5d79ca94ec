//! Heads follow the stored chain exactly: contiguous is the end of the
//! unbroken run from seq 1, max the highest seq held, whatever order the
//! messages arrive in, and per room.

use crate::common;

use common::{identity, room, temp_store, text};
use festival_core::SignedEnvelope;
use festival_store::{Budget, HeadRow};

#[tokio::test]
async fn gaps_filled_out_of_order_advance_contiguous() {
    let (_dir, store) = temp_store().await;
    let ana = identity(1);
    let festival = room("festival");
    let me = ana.peer_id();
    let head = |contiguous, max| vec![HeadRow { room: festival.clone(), author: me, contiguous, max }];
    let msg = |seq: u64| text(&ana, &festival, seq, seq, &format!("message {seq}"));

    assert_eq!(store.next_seq(&festival, &me).await.unwrap(), 1);
    for seq in [3, 5] {
        store.insert(&msg(seq), 0, 1, false).await.unwrap();
    }
    assert_eq!(store.heads().await.unwrap(), head(0, 5), "seq 1 missing: nothing contiguous");
    store.insert(&msg(1), 0, 1, false).await.unwrap();
    assert_eq!(store.heads().await.unwrap(), head(1, 5));
    let held: Vec<u64> = store.held_above(&festival, &me, 1).await.unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(held, vec![3, 5]);
    assert_eq!(store.held_above(&festival, &me, 3).await.unwrap(), vec![(5, msg(5).id())]);

    store.insert(&msg(2), 0, 1, false).await.unwrap();
    assert_eq!(store.heads().await.unwrap(), head(3, 5), "filling 2 joins the held 3");
    store.insert(&msg(4), 0, 1, false).await.unwrap();
    assert_eq!(store.heads().await.unwrap(), head(5, 5));
    assert_eq!(store.next_seq(&festival, &me).await.unwrap(), 6);
    assert!(store.held_above(&festival, &me, 5).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_shuffled_batch_with_gaps_gives_the_same_heads_as_a_scan() {
    let (_dir, store) = temp_store().await;
    let (ana, ben) = (identity(1), identity(2));
    let festival = room("festival");
    // Ana: 1..=40 without 17; Ben: 2..=10 (seq 1 never arrives).
    let mut items: Vec<(SignedEnvelope, u8)> = (1..=40u64)
        .filter(|&s| s != 17)
        .map(|s| (text(&ana, &festival, s, s, "a"), 0))
        .chain((2..=10u64).map(|s| (text(&ben, &festival, s, s, "b"), 0)))
        .collect();
    items.reverse();
    items.swap(3, 30);

    store.insert_batch(&items, 1, false).await.unwrap();

    let mut heads = store.heads().await.unwrap();
    heads.sort_by_key(|h| h.author != ana.peer_id());
    assert_eq!(
        heads,
        vec![
            HeadRow { room: festival.clone(), author: ana.peer_id(), contiguous: 16, max: 40 },
            HeadRow { room: festival.clone(), author: ben.peer_id(), contiguous: 0, max: 10 },
        ]
    );
    store.insert(&text(&ana, &festival, 17, 17, "the missing one"), 0, 1, false).await.unwrap();
    let ana_head = store.heads().await.unwrap().into_iter().find(|h| h.author == ana.peer_id()).unwrap();
    assert_eq!((ana_head.contiguous, ana_head.max), (40, 40));
}

#[tokio::test]
async fn seqs_are_numbered_per_room() {
    let (_dir, store) = temp_store().await;
    let ana = identity(1);
    let (a, b) = (room("stage-a"), room("stage-b"));
    for seq in 1..=3 {
        store.insert(&text(&ana, &a, seq, seq, "a"), 0, 1, false).await.unwrap();
    }
    store.insert(&text(&ana, &b, 1, 1, "b"), 0, 1, false).await.unwrap();
    assert_eq!(store.next_seq(&a, &ana.peer_id()).await.unwrap(), 4);
    assert_eq!(store.next_seq(&b, &ana.peer_id()).await.unwrap(), 2);
    assert_eq!(store.next_seq(&room("stage-c"), &ana.peer_id()).await.unwrap(), 1);
}

/// Evict everything evictable: a budget nothing fits in.
fn nothing_fits() -> Budget {
    Budget { disk_bytes: 0, per_author_bytes: u64::MAX, per_room_bytes: u64::MAX }
}

#[tokio::test]
async fn heads_do_not_go_down_when_their_messages_are_evicted() {
    let (_dir, store) = temp_store().await;
    let ben = identity(2);
    let festival = room("festival");
    // 1..=5 and 8: contiguous 5, max 8.
    let items: Vec<(SignedEnvelope, u8)> =
        [1, 2, 3, 4, 5, 8].iter().map(|&s| (text(&ben, &festival, s, s, "hello"), 1)).collect();
    store.insert_batch(&items, 1, false).await.unwrap();
    let head = |contiguous, max| vec![HeadRow { room: festival.clone(), author: ben.peer_id(), contiguous, max }];
    assert_eq!(store.heads().await.unwrap(), head(5, 8));

    let evicted = store.evict(&nothing_fits(), 100).await.unwrap();
    assert_eq!(evicted.messages, 6);
    assert_eq!(store.message_count().await.unwrap(), 0);
    assert_eq!(store.heads().await.unwrap(), head(5, 8), "seen up to stays seen up to");
    assert_eq!(store.next_seq(&festival, &ben.peer_id()).await.unwrap(), 9);

    // New messages continue from the marks, not from what is stored.
    store.insert(&text(&ben, &festival, 6, 6, "six"), 1, 2, false).await.unwrap();
    assert_eq!(store.heads().await.unwrap(), head(6, 8));
    // An evicted message coming back changes nothing.
    store.insert(&items[0].0, 1, 3, false).await.unwrap();
    assert_eq!(store.heads().await.unwrap(), head(6, 8));
    // 7 joins 6 to the 8 that was seen (and evicted): contiguous climbs
    // over stored messages only, so it stops at 7.
    store.insert(&text(&ben, &festival, 7, 7, "seven"), 1, 4, false).await.unwrap();
    assert_eq!(store.heads().await.unwrap(), head(7, 8));
}

#[tokio::test]
async fn advance_contiguous_skips_what_no_peer_holds_and_climbs_over_what_is_stored() {
    let (_dir, store) = temp_store().await;
    let ben = identity(2);
    let festival = room("festival");
    // 1..=3 and 6..=8: 4 and 5 are lost for good.
    let items: Vec<(SignedEnvelope, u8)> =
        [1, 2, 3, 6, 7, 8].iter().map(|&s| (text(&ben, &festival, s, s, "hello"), 1)).collect();
    store.insert_batch(&items, 1, false).await.unwrap();
    let head = |contiguous, max| vec![HeadRow { room: festival.clone(), author: ben.peer_id(), contiguous, max }];
    assert_eq!(store.heads().await.unwrap(), head(3, 8));

    store.advance_contiguous(&festival, &ben.peer_id(), 4).await.unwrap();
    assert_eq!(store.heads().await.unwrap(), head(4, 8), "5 is still missing");
    store.advance_contiguous(&festival, &ben.peer_id(), 5).await.unwrap();
    assert_eq!(store.heads().await.unwrap(), head(8, 8), "then 6..=8 are stored");
    store.advance_contiguous(&festival, &ben.peer_id(), 2).await.unwrap();
    assert_eq!(store.heads().await.unwrap(), head(8, 8), "never lowers");
    store.advance_contiguous(&festival, &ben.peer_id(), 12).await.unwrap();
    assert_eq!(store.heads().await.unwrap(), head(12, 12), "max at least as high");
    assert_eq!(store.next_seq(&festival, &ben.peer_id()).await.unwrap(), 13);

    // A chain never seen: its head starts at the mark.
    let cat = identity(3);
    store.advance_contiguous(&festival, &cat.peer_id(), 3).await.unwrap();
    let cats = store.heads().await.unwrap().into_iter().find(|h| h.author == cat.peer_id()).unwrap();
    assert_eq!((cats.contiguous, cats.max), (3, 3));
    store.insert(&text(&cat, &festival, 4, 4, "four"), 1, 2, false).await.unwrap();
    let cats = store.heads().await.unwrap().into_iter().find(|h| h.author == cat.peer_id()).unwrap();
    assert_eq!((cats.contiguous, cats.max), (4, 4));
}

/// The writer remembers chains between batches; another store on the same
/// file writing in between must not leave it with stale marks.
#[tokio::test]
async fn heads_stay_right_when_another_store_writes_the_same_file_in_between() {
    let (dir, first) = temp_store().await;
    let second = festival_store::Store::open(&dir.path().join("festival.db")).await.unwrap();
    let ana = identity(1);
    let festival = room("festival");
    let msg = |seq: u64| text(&ana, &festival, seq, seq, &format!("message {seq}"));
    let head = |contiguous, max| vec![HeadRow { room: festival.clone(), author: ana.peer_id(), contiguous, max }];

    first.insert_batch(&[(msg(1), 0), (msg(2), 0)], 1, false).await.unwrap();
    second.insert_batch(&[(msg(3), 0), (msg(4), 0)], 1, false).await.unwrap();
    // The first store remembers the chain at 2; the file holds 4.
    first.insert(&msg(5), 0, 1, false).await.unwrap();
    assert_eq!(first.heads().await.unwrap(), head(5, 5), "seq 5 follows on from 4");
    second.insert(&msg(7), 0, 1, false).await.unwrap();
    first.insert(&msg(6), 0, 1, false).await.unwrap();
    assert_eq!(first.heads().await.unwrap(), head(7, 7), "seq 6 joins the 7 the other store wrote");
    second.close().await;
}
