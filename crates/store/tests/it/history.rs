//! Messages come back byte for byte, and history pages backwards through a
//! room with cursors: newest page first, each page oldest first, no overlap,
//! no gaps, even when many messages share a timestamp; in the order the app
//! shows, (created_at, author, seq); nothing above a gap in its chain.

use crate::common;

use common::{identity, room, temp_store, text};
use festival_core::{MessageId, SignedEnvelope};
use festival_store::StoredMessage;

#[tokio::test]
async fn a_stored_message_comes_back_with_its_exact_bytes() {
    let (_dir, store) = temp_store().await;
    let ana = identity(1);
    let stage = room("main-stage");
    let env = text(&ana, &stage, 1, 1_000, "hello festival");

    store.insert(&env, 3, 2_000, false).await.unwrap();

    let got = store.get(&env.id()).await.unwrap().expect("stored");
    assert_eq!(got.envelope.bytes(), env.bytes());
    assert_eq!(got.envelope.id(), env.id());
    assert_eq!((got.hops, got.received_at), (3, 2_000));
    // The bytes still verify: what we hand out is what the author signed.
    assert_eq!(SignedEnvelope::decode(got.envelope.bytes()).unwrap(), env);
    assert_eq!(store.get_at(&stage, &ana.peer_id(), 1).await.unwrap(), Some(got));
    assert_eq!(store.get_at(&stage, &ana.peer_id(), 2).await.unwrap(), None);
    assert_eq!(store.get_at(&room("other"), &ana.peer_id(), 1).await.unwrap(), None);
    assert_eq!(store.get_at(&stage, &ana.peer_id(), u64::MAX).await.unwrap(), None);

    // The id index holds only the first 8 bytes of an id; the rest must
    // still be compared.
    let mut near = *env.id().as_bytes();
    near[31] ^= 1;
    let near = MessageId::try_from(&near[..]).unwrap();
    assert_eq!(store.get(&near).await.unwrap(), None);
}

#[tokio::test]
async fn history_pages_backwards_without_overlap_or_gaps() {
    let (_dir, store) = temp_store().await;
    let authors = [identity(1), identity(2), identity(3)];
    let stage = room("main-stage");
    let mut all = Vec::new();
    for seq in 1..=42u64 {
        for (i, author) in authors.iter().enumerate() {
            // Groups of messages share a timestamp, so the tie-break matters.
            let created_at = 10_000 + (seq / 4) * 100;
            let env = text(author, &stage, seq, created_at, &format!("{i} says {seq}"));
            all.push(env.clone());
            store.insert(&env, 1, 50_000, false).await.unwrap();
        }
        // Noise in another room must never show up.
        store.insert(&text(&authors[0], &room("camp"), seq, 10_000, "elsewhere"), 1, 50_000, false).await.unwrap();
    }
    all.sort_by_key(|e| (e.created_at(), e.author(), e.seq()));

    let mut pages: Vec<Vec<StoredMessage>> = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.history(&stage, cursor, 50).await.unwrap();
        if page.is_empty() {
            break;
        }
        let keys: Vec<_> = page.iter().map(|m| m.cursor()).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "each page is oldest first");
        cursor = Some(page[0].cursor());
        pages.push(page);
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![50, 50, 26]);

    let seen: Vec<SignedEnvelope> = pages.into_iter().rev().flatten().map(|m| m.envelope).collect();
    assert_eq!(seen, all, "pages put together are the whole room in order");
}

#[tokio::test]
async fn history_of_an_empty_or_unknown_room_is_empty() {
    let (_dir, store) = temp_store().await;
    assert!(store.history(&room("nowhere"), None, 50).await.unwrap().is_empty());
}

#[tokio::test]
async fn load_range_respects_the_byte_budget_but_always_makes_progress() {
    let (_dir, store) = temp_store().await;
    let ana = identity(1);
    let stage = room("main-stage");
    let mut sizes = Vec::new();
    for seq in 1..=200u64 {
        if seq == 7 {
            continue; // a gap: skipped, not an error
        }
        let env = text(&ana, &stage, seq, seq, &"x".repeat(100));
        sizes.push(env.bytes().len());
        store.insert(&env, (seq % 5) as u8, 1, false).await.unwrap();
    }

    let all = store.load_range(&stage, &ana.peer_id(), 1, 200, usize::MAX, 0).await.unwrap();
    let seqs: Vec<u64> = all.iter().map(|(e, _)| e.seq()).collect();
    assert_eq!(seqs, (1..=200).filter(|&s| s != 7).collect::<Vec<_>>());
    assert!(all.iter().all(|(e, hops)| *hops == (e.seq() % 5) as u8));

    let budget = sizes[0] * 3 + 1;
    let some = store.load_range(&stage, &ana.peer_id(), 5, 200, budget, 0).await.unwrap();
    assert_eq!(some.iter().map(|(e, _)| e.seq()).collect::<Vec<_>>(), vec![5, 6, 8]);

    let one = store.load_range(&stage, &ana.peer_id(), 10, 20, 1, 0).await.unwrap();
    assert_eq!(one.len(), 1, "at least one message even over budget");
    assert!(store.load_range(&stage, &ana.peer_id(), 7, 7, 1 << 20, 0).await.unwrap().is_empty());
    assert!(store.load_range(&stage, &ana.peer_id(), 300, u64::MAX, 1 << 20, 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn one_authors_messages_keep_their_order_and_none_shows_above_a_gap_for_long() {
    let (_dir, store) = temp_store().await;
    let ana = identity(1);
    let stage = room("main-stage");
    // One millisecond, five messages: their ids sort in some other order.
    let same_ms: Vec<_> = (1..=5).map(|seq| text(&ana, &stage, seq, 7_000, &format!("burst {seq}"))).collect();
    let mut by_id = same_ms.clone();
    by_id.sort_by_key(|e| e.id());
    assert_ne!(by_id, same_ms, "the ids alone would scramble them (else this test proves nothing)");
    for e in &same_ms {
        store.insert(e, 1, 8_000, false).await.unwrap();
    }
    // Seq 7 arrives before 6: it waits, as the node waits to deliver it.
    let (six, seven) = (text(&ana, &stage, 6, 7_500, "six"), text(&ana, &stage, 7, 7_600, "seven"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    store.insert(&seven, 1, now, false).await.unwrap();
    // Bo's seq 3 came above a gap eleven minutes ago: shown, gap or not;
    // Cy's, nine minutes ago: still waiting (the queries wait as long as
    // GAP_WAIT_MS says).
    let bo = identity(2);
    let late = text(&bo, &stage, 3, 7_700, "bo three");
    store.insert(&late, 1, now - festival_store::GAP_WAIT_MS - 60_000, false).await.unwrap();
    let cy = identity(3);
    store
        .insert(&text(&cy, &stage, 3, 7_800, "cy three"), 1, now - festival_store::GAP_WAIT_MS + 60_000, false)
        .await
        .unwrap();
    let shown = |page: Vec<StoredMessage>| page.into_iter().map(|m| m.envelope.seq()).collect::<Vec<_>>();
    assert_eq!(shown(store.history(&stage, None, 50).await.unwrap()), vec![1, 2, 3, 4, 5, 3]);
    // Paging from inside the burst goes on in seq order.
    let from_four =
        store.history(&stage, Some(StoredMessage::cursor(&store.get(&same_ms[3].id()).await.unwrap().unwrap())), 2);
    assert_eq!(shown(from_four.await.unwrap()), vec![2, 3]);
    store.insert(&six, 1, 8_000, false).await.unwrap();
    assert_eq!(shown(store.history(&stage, None, 50).await.unwrap()), vec![1, 2, 3, 4, 5, 6, 7, 3]);
}
