//! Every stored message is found by its id, whichever part of the id index
//! holds its entry (the recent part in memory, or the main one after a
//! merge), before and after reopening the store, also after a crash; a
//! deleted message never is, even when SQLite gives its rowid to a newer
//! message; and the recent part stays small however the store is used.

use crate::common;

use std::path::Path;

use common::{identity, room, temp_store, text};
use festival_core::{Identity, RoomId, SignedEnvelope};
use festival_store::{Budget, Store, MERGE_SLICES, MERGE_STEP};

/// Messages `start..start + n` of `room`, in turn from each of `authors`
/// (so each author's seqs follow on from one call to the next), message
/// `i` created at `at0 + i`.
fn messages(authors: &[Identity], room: &RoomId, start: u64, n: u64, at0: u64) -> Vec<SignedEnvelope> {
    let k = authors.len() as u64;
    (start..start + n).map(|i| text(&authors[(i % k) as usize], room, i / k + 1, at0 + i, "x")).collect()
}

async fn insert_in_batches(store: &Store, all: &[SignedEnvelope], batch: usize) {
    for chunk in all.chunks(batch) {
        let items: Vec<(SignedEnvelope, u8)> = chunk.iter().map(|e| (e.clone(), 1)).collect();
        let outcomes = store.insert_batch(&items, 1, false).await.unwrap();
        assert!(outcomes.iter().all(|o| o.is_ok()));
    }
}

async fn assert_all_found(store: &Store, all: &[SignedEnvelope], step: usize, when: &str) {
    for env in all.iter().step_by(step).chain(all.last()) {
        let found = store.get(&env.id()).await.unwrap().map(|m| m.envelope);
        assert_eq!(found.as_ref(), Some(env), "{when}");
    }
}

/// (messages whose entry is not in the main part yet, entries in the main
/// part) of the id index, read straight from the file.
async fn entries(path: &Path) -> (u64, u64) {
    festival_store::configure_sqlite();
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options).await.unwrap();
    let (recent, main): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM messages m WHERE NOT EXISTS
                     (SELECT 1 FROM message_ids i WHERE i.id_prefix = m.id_prefix AND i.pk = m.pk)),
                (SELECT count(*) FROM message_ids)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    sqlx::Connection::close(conn).await.unwrap();
    (recent as u64, main as u64)
}

#[tokio::test]
async fn messages_are_found_by_id_in_either_part_of_the_index_and_deleted_ones_are_not() {
    let (dir, store) = temp_store().await;
    let db = dir.path().join("festival.db");
    let authors: Vec<_> = (0..50).map(identity).collect();
    let (a, b) = (room("stage-a"), room("stage-b"));

    // A few hundred: every entry still waits in the recent part.
    let old = messages(&authors, &b, 0, 300, 1);
    insert_in_batches(&store, &old, 100).await;
    assert_eq!(entries(&db).await, (300, 0), "nothing merged yet");
    assert_eq!(store.recent_ids(), 300, "all in memory");
    assert_all_found(&store, &old, 1, "found through the recent part").await;

    // Enough for many slice merges: entries are in both parts now.
    let new = messages(&authors, &a, 0, 12 * MERGE_STEP, 10_000);
    insert_in_batches(&store, &new, 1_000).await;
    let (recent, main) = entries(&db).await;
    assert!(recent > 0 && main > 0, "both parts hold entries: {recent} recent, {main} merged");
    assert_eq!(recent + main, 300 + 12 * MERGE_STEP, "one entry per message");
    assert_eq!(store.recent_ids() as u64, recent, "memory holds exactly what is not merged");
    assert_all_found(&store, &old, 1, "old messages, merged or not").await;
    assert_all_found(&store, &new, 7, "new messages, merged or not").await;
    assert!(store.get(&text(&authors[0], &a, 99_999, 1, "never stored").id()).await.unwrap().is_none());

    // Expire stage-b (the only messages created before 1,000): gone at
    // once, though their entries stay until the merge of their slice.
    assert_eq!(store.expire(1_000, u64::MAX).await.unwrap(), 300);
    for env in &old {
        assert!(store.get(&env.id()).await.unwrap().is_none(), "an expired message is not found");
    }
    let receipts = store.receipt_targets(&[old[0].id(), new[0].id(), new[5_000].id()]).await.unwrap();
    assert_eq!(receipts.len(), 2, "receipt targets go through the index too: {receipts:?}");
    assert!(receipts.contains_key(&new[5_000].id()));

    // A full merge leaves exactly one entry per stored message, all merged.
    store.merge_ids().await.unwrap();
    assert_eq!(entries(&db).await, (0, store.message_count().await.unwrap()));
    assert_all_found(&store, &new, 7, "after a full merge").await;
    for env in &old {
        assert!(store.get(&env.id()).await.unwrap().is_none());
    }
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
}

#[tokio::test]
async fn a_rowid_reused_after_a_delete_does_not_answer_for_the_deleted_id() {
    let (_dir, store) = temp_store().await;
    let (ben, cat) = (identity(2), identity(3));
    let (a, b) = (room("stage-a"), room("stage-b"));
    store.insert(&text(&ben, &a, 1, 1, "stays"), 1, 1, false).await.unwrap();
    // The newest row, alone in its room: the per-room budget deletes it.
    let gone = text(&cat, &b, 1, 2, "goes");
    store.insert(&gone, 1, 1, false).await.unwrap();
    let budget = Budget { disk_bytes: u64::MAX, per_author_bytes: u64::MAX, per_room_bytes: 1 };
    store.evict(&budget, 1).await.unwrap();
    assert_eq!(store.message_count().await.unwrap(), 0, "both rooms were over a one-byte budget");

    // SQLite gives the next row the highest rowid + 1: the deleted rows'.
    let first = text(&ben, &a, 2, 3, "new one");
    let second = text(&ben, &a, 3, 4, "new two");
    store.insert(&first, 1, 1, false).await.unwrap();
    store.insert(&second, 1, 1, false).await.unwrap();
    for when in ["before a merge", "after a merge"] {
        assert!(store.get(&gone.id()).await.unwrap().is_none(), "a stale entry never answers ({when})");
        assert_eq!(store.get(&first.id()).await.unwrap().unwrap().envelope, first, "{when}");
        assert_eq!(store.get(&second.id()).await.unwrap().unwrap().envelope, second, "{when}");
        store.merge_ids().await.unwrap();
    }
}

#[tokio::test]
async fn a_message_deleted_and_stored_again_under_its_old_rowid_keeps_its_entry_through_a_merge() {
    let (dir, store) = temp_store().await;
    let (ben, cat) = (identity(2), identity(3));
    let (a, b) = (room("stage-a"), room("stage-b"));
    store.insert(&text(&ben, &a, 1, 1, "stays"), 1, 1, false).await.unwrap();
    // Larger than the per-room budget below, unlike the message in stage-a.
    let again = text(&cat, &b, 1, 2, &"back again ".repeat(80));
    store.insert(&again, 1, 1, false).await.unwrap();
    // Merged, so its entry is in the main part when it is deleted.
    store.merge_ids().await.unwrap();
    let per_room = Budget { disk_bytes: u64::MAX, per_author_bytes: u64::MAX, per_room_bytes: 1_000 };
    assert_eq!(store.evict(&per_room, 1).await.unwrap().messages, 1, "stage-b was over");
    assert!(store.get(&again.id()).await.unwrap().is_none());

    // A peer sends it again: same id, and the highest rowid + 1 is its old
    // one, so its entry is the very entry noted as dead.
    store.insert(&again, 1, 1, false).await.unwrap();
    store.merge_ids().await.unwrap();
    assert_eq!(store.get(&again.id()).await.unwrap().unwrap().envelope, again, "found after the merge");
    assert_eq!(entries(&dir.path().join("festival.db")).await, (0, 2));
}

#[tokio::test]
async fn the_recent_part_stays_small_across_many_short_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("festival.db");
    let authors: Vec<_> = (0..50).map(identity).collect();
    let stage = room("stage-a");
    // Each session stores fewer entries than one merge step, so only what
    // the store restores at open can make it merge.
    let per_session = MERGE_STEP / 2;
    let sessions = MERGE_SLICES as u64 + 8;
    let mut all = Vec::new();
    for session in 0..sessions {
        let store = Store::open(&db).await.unwrap();
        let batch = messages(&authors, &stage, session * per_session, per_session, 1);
        insert_in_batches(&store, &batch, 256).await;
        all.extend(batch);
        if session == sessions - 1 {
            assert_all_found(&store, &all, 13, "after many reopenings").await;
        }
        store.close().await;
    }
    let (recent, main) = entries(&db).await;
    assert_eq!(recent + main, sessions * per_session, "one entry per message");
    let bound = MERGE_SLICES as u64 * MERGE_STEP / 2 + 2 * MERGE_STEP;
    assert!(recent <= bound, "{recent} entries wait in the recent part (at most {bound})");
}

/// A process that dies leaves its recent entries only in the file's rows:
/// the next open reads them back, from each slice's merge mark, and finds
/// every message.
#[tokio::test]
async fn after_a_crash_the_recent_part_is_read_back_from_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("festival.db");
    let authors: Vec<_> = (0..50).map(identity).collect();
    let stage = room("stage-a");
    let all = messages(&authors, &stage, 0, 5 * MERGE_STEP + 77, 1);
    {
        let store = Store::open(&db).await.unwrap();
        insert_in_batches(&store, &all, 500).await;
        let (recent, _) = entries(&db).await;
        assert!(recent > 0 && store.recent_ids() as u64 == recent, "some wait in memory: {recent}");
        // No close: as if the process died (the WAL holds the commits).
        std::mem::forget(store);
    }
    let store = Store::open(&db).await.unwrap();
    let (recent, main) = entries(&db).await;
    assert_eq!(store.recent_ids() as u64, recent, "read back: exactly the rows not merged");
    assert_eq!(recent + main, all.len() as u64);
    assert_all_found(&store, &all, 1, "after reopening").await;
    // And merging goes on from there: more batches, all found.
    let more = messages(&authors, &stage, all.len() as u64, 3 * MERGE_STEP, 1);
    insert_in_batches(&store, &more, 1_000).await;
    assert_all_found(&store, &more, 1, "stored after reopening").await;
    let (recent, main) = entries(&db).await;
    assert_eq!(recent + main, (all.len() + more.len()) as u64);
    assert_eq!(store.recent_ids() as u64, recent);
}

/// SQLite gives the rowid of a deleted newest row again. A message stored
/// under such a rowid, below a slice's merge mark, must still be read back
/// after a crash: its batch lowered the mark.
#[tokio::test]
async fn a_rowid_given_again_below_a_merge_mark_is_read_back_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("festival.db");
    let (ben, cat) = (identity(2), identity(3));
    let (a, b) = (room("stage-a"), room("stage-b"));
    let again = text(&ben, &a, 2, 3, "takes the deleted row's rowid");
    {
        let store = Store::open(&db).await.unwrap();
        store.insert(&text(&ben, &a, 1, 1, "stays"), 1, 1, false).await.unwrap();
        // The newest row, larger than stage-b's budget below.
        store.insert(&text(&cat, &b, 1, 2, &"goes ".repeat(300)), 1, 1, false).await.unwrap();
        store.merge_ids().await.unwrap();
        let per_room = Budget { disk_bytes: u64::MAX, per_author_bytes: u64::MAX, per_room_bytes: 1_000 };
        assert_eq!(store.evict(&per_room, 1).await.unwrap().messages, 1);
        store.insert(&again, 1, 1, false).await.unwrap();
        assert!(store.get(&again.id()).await.unwrap().is_some());
        std::mem::forget(store);
    }
    let store = Store::open(&db).await.unwrap();
    assert_eq!(store.get(&again.id()).await.unwrap().map(|m| m.envelope), Some(again), "read back after the crash");
}

/// Two `Store`s on one file (a second process, a test peeking in): each
/// finds what the other stored before any merge, and merges take the other's
/// rows in, so a later open finds everything.
#[tokio::test]
async fn a_second_store_on_the_same_file_finds_and_merges_what_the_first_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("festival.db");
    let authors: Vec<_> = (0..50).map(identity).collect();
    let stage = room("stage-a");
    let (a, b) = (Store::open(&db).await.unwrap(), Store::open(&db).await.unwrap());
    let first = messages(&authors, &stage, 0, 300, 1);
    insert_in_batches(&a, &first, 100).await;
    assert_all_found(&b, &first, 1, "b finds a's rows, none merged").await;
    let second = messages(&authors, &stage, 300, 300, 1);
    insert_in_batches(&b, &second, 100).await;
    assert_all_found(&a, &second, 1, "a finds b's rows").await;
    let third = messages(&authors, &stage, 600, 5 * MERGE_STEP, 1);
    insert_in_batches(&a, &third, 1_000).await;
    let all: Vec<SignedEnvelope> = first.iter().chain(&second).chain(&third).cloned().collect();
    assert_all_found(&a, &all, 1, "a, after merging").await;
    assert_all_found(&b, &all, 1, "b, after a merged").await;
    insert_in_batches(&b, &messages(&authors, &stage, 600 + 5 * MERGE_STEP, 10, 1), 10).await;
    a.merge_ids().await.unwrap();
    assert_eq!(entries(&db).await.0, 0, "a full merge by a took in b's rows too");
    a.close().await;
    b.close().await;
    let store = Store::open(&db).await.unwrap();
    assert_all_found(&store, &all, 1, "after reopening").await;
}
