//! Expiry runs in the background, in short transactions, while ingest goes
//! on: it takes exactly the expired messages of others, oldest first, and
//! never a message that is not expired, nor my own history, nor mail to me.
//! Expired messages are not served to sync any more.

use crate::common;

use std::collections::HashSet;

use common::{identity, room, sealed, temp_store, text};
use festival_core::{MessageId, SignedEnvelope};

/// Messages older than this have expired (the node's `now - lifetime`).
const CUTOFF: u64 = 10_000;
const OLD_PER_AUTHOR: u64 = 300;
const BATCHES: u64 = 40;
const BATCH: u64 = 50;
/// Rows per expire call: small, so the test sees many calls interleave
/// with the inserts.
const EXPIRE_ROWS: u64 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_in_the_background_takes_only_expired_messages_while_ingest_goes_on() {
    let (_dir, store) = temp_store().await;
    let me = identity(1);
    store.create_identity(&me, "me", 1).await.unwrap();
    let (ben, cat) = (identity(2), identity(3));
    let (festival, stage) = (room("festival"), room("main-stage"));

    // Old: others' messages in two rooms (interleaved), mine, and DMs to me.
    let mut old: Vec<(SignedEnvelope, u8)> = Vec::new();
    for s in 1..=OLD_PER_AUTHOR {
        old.push((text(&ben, &festival, s, s * 2, "old festival"), 1));
        old.push((text(&cat, &stage, s, s * 2 + 1, "old stage"), 1));
    }
    store.insert_batch(&old, 1, false).await.unwrap();
    let mine: Vec<(SignedEnvelope, u8)> = (1..=20).map(|s| (text(&me, &festival, s, s, "my old"), 0)).collect();
    store.insert_batch(&mine, 1, true).await.unwrap();
    let to_me: Vec<(SignedEnvelope, u8)> =
        (1..=20).map(|s| (sealed(&ben, &me.peer_id(), s, s, "old but mine to keep"), 1)).collect();
    store.insert_batch(&to_me, 1, false).await.unwrap();

    // New messages arrive in batches while expiry runs.
    let writer = {
        let store = store.clone();
        // The same seeded identities (Identity is not Clone).
        let (ben, cat) = (identity(2), identity(3));
        let (festival, stage) = (festival.clone(), stage.clone());
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for b in 0..BATCHES {
                let batch: Vec<(SignedEnvelope, u8)> = (0..BATCH)
                    .map(|k| {
                        let seq = OLD_PER_AUTHOR + b * BATCH + k + 1;
                        let at = CUTOFF + seq;
                        if k % 2 == 0 {
                            (text(&ben, &festival, seq, at, "new festival"), 1)
                        } else {
                            (text(&cat, &stage, seq, at, "new stage"), 1)
                        }
                    })
                    .collect();
                let outcomes = store.insert_batch(&batch, 2, false).await.unwrap();
                assert!(outcomes.iter().all(|o| o.is_ok()));
                acknowledged.extend(batch.into_iter().map(|(e, _)| e.id()));
            }
            acknowledged
        })
    };
    // Expire until the writer is done and nothing expired is left.
    let mut calls = 0u64;
    let mut expired = 0u64;
    loop {
        let writer_done = writer.is_finished();
        let n = store.expire(CUTOFF, EXPIRE_ROWS).await.unwrap();
        assert!(n <= EXPIRE_ROWS, "one call takes at most max_rows");
        calls += 1;
        expired += n;
        if writer_done && n == 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    let acknowledged = writer.await.unwrap();

    assert_eq!(expired, 2 * OLD_PER_AUTHOR, "every old message of others, once");
    assert!(calls > 2 * OLD_PER_AUTHOR / EXPIRE_ROWS, "many short calls: {calls}");
    for (env, _) in &old {
        assert!(store.get(&env.id()).await.unwrap().is_none(), "expired {} went", env.created_at());
    }
    for (env, _) in mine.iter().chain(&to_me) {
        assert!(store.get(&env.id()).await.unwrap().is_some(), "my history and mail to me stay");
    }
    let acknowledged: HashSet<MessageId> = acknowledged.into_iter().collect();
    assert_eq!(acknowledged.len() as u64, BATCHES * BATCH);
    for id in &acknowledged {
        assert!(store.get(id).await.unwrap().is_some(), "an acknowledged, unexpired insert is lost");
    }
    assert_eq!(store.message_count().await.unwrap(), BATCHES * BATCH + 40);
    assert_eq!(store.expire_before().await.unwrap(), CUTOFF);
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
}

#[tokio::test]
async fn expiry_takes_the_oldest_first_across_rooms_and_the_cutoff_only_rises() {
    let (_dir, store) = temp_store().await;
    let (ben, cat) = (identity(2), identity(3));
    let (a, b) = (room("stage-a"), room("stage-b"));
    // created_at 1..=10 alternating between rooms.
    let items: Vec<(SignedEnvelope, u8)> =
        (1..=10u64)
            .map(|t| {
                if t % 2 == 1 {
                    (text(&ben, &a, t.div_ceil(2), t, "a"), 1)
                } else {
                    (text(&cat, &b, t / 2, t, "b"), 1)
                }
            })
            .collect();
    store.insert_batch(&items, 1, false).await.unwrap();

    assert_eq!(store.expire(8, 3).await.unwrap(), 3);
    let left: Vec<u64> = {
        let mut left = Vec::new();
        for (env, _) in &items {
            if store.get(&env.id()).await.unwrap().is_some() {
                left.push(env.created_at());
            }
        }
        left
    };
    assert_eq!(left, vec![4, 5, 6, 7, 8, 9, 10], "the three oldest, from both rooms");
    assert_eq!(store.expire(8, 100).await.unwrap(), 4, "4..=7: below the cutoff");
    assert_eq!(store.expire(8, 100).await.unwrap(), 0);
    assert_eq!(store.expire_before().await.unwrap(), 8);
    store.expire(5, 100).await.unwrap();
    assert_eq!(store.expire_before().await.unwrap(), 8, "the cutoff never goes back");
    assert_eq!(store.message_count().await.unwrap(), 3);
}

#[tokio::test]
async fn load_range_does_not_serve_messages_created_before_not_before() {
    let (_dir, store) = temp_store().await;
    let ben = identity(2);
    let stage = room("stage-a");
    let items: Vec<(SignedEnvelope, u8)> = (1..=10u64).map(|s| (text(&ben, &stage, s, s * 100, "x"), 1)).collect();
    store.insert_batch(&items, 1, false).await.unwrap();
    let seqs = |v: Vec<(SignedEnvelope, u8)>| v.into_iter().map(|(e, _)| e.seq()).collect::<Vec<_>>();

    let all = store.load_range(&stage, &ben.peer_id(), 1, 10, usize::MAX, 0).await.unwrap();
    assert_eq!(seqs(all), (1..=10).collect::<Vec<_>>());
    let fresh = store.load_range(&stage, &ben.peer_id(), 1, 10, usize::MAX, 500).await.unwrap();
    assert_eq!(seqs(fresh), (5..=10).collect::<Vec<_>>(), "created_at >= 500 only");
    let none = store.load_range(&stage, &ben.peer_id(), 1, 4, usize::MAX, 500).await.unwrap();
    assert!(none.is_empty());
}
