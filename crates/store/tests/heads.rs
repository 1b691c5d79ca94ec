//! Heads follow the stored chain exactly: contiguous is the end of the
//! unbroken run from seq 1, max the highest seq held, whatever order the
//! messages arrive in, and per room.

mod common;

use common::{identity, room, temp_store, text};
use festival_core::SignedEnvelope;
use festival_store::HeadRow;

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
