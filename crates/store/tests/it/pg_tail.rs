//! The committed order of the PostgreSQL store: a reader that tails it
//! misses nothing, even when transactions commit in another order than they
//! began (which a sequence number would get wrong).

use crate::common;

use common::{identity, room, text};
use festival_store::pg::{PgStore, TempServer};
use sqlx::{Connection, Executor};
use std::time::Duration;

const T0: u64 = 1_750_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_misses_nothing_that_commits_out_of_order() {
    let server = TempServer::start(false).await.expect("start PostgreSQL");
    let url = server.create_database("tail").await.unwrap();
    let store = PgStore::connect(&url).await.unwrap();
    let (alice, bob, camp) = (identity(1), identity(2), room("camp"));

    let mut cursor = store.commit_horizon().await.unwrap();
    let before = text(&alice, &camp, 1, T0, "before");
    store.insert_batch(&[(before.clone(), 1)], T0, false).await.unwrap();
    let (got, next) = store.committed_after(&cursor, 100).await.unwrap();
    assert_eq!(got.iter().map(|(e, h)| (e.id(), *h)).collect::<Vec<_>>(), vec![(before.id(), 1)]);
    cursor = next;

    // A transaction begins (and takes its id) first, and writes a message;
    // a batch begins after it and commits first.
    let slow_msg = text(&bob, &camp, 1, T0, "slow");
    let mut slow = sqlx::PgConnection::connect(&url).await.unwrap();
    slow.execute("BEGIN").await.unwrap();
    sqlx::query(
        "INSERT INTO messages (id, room, author, seq, kind, created_at, received_at, hops, raw)
         VALUES ($1, 'camp', $2, 1, 0, $3, $3, 4, $4)",
    )
    .bind(&slow_msg.id().as_bytes()[..])
    .bind(&bob.peer_id().as_bytes()[..])
    .bind(T0 as i64)
    .bind(slow_msg.bytes())
    .execute(&mut slow)
    .await
    .unwrap();
    let fast = text(&alice, &camp, 2, T0, "fast");
    store.insert_batch(&[(fast.clone(), 1)], T0, false).await.unwrap();
    // The fast one is committed, but an earlier transaction is still open:
    // the tail waits rather than step past the slow one's place.
    let (got, same) = store.committed_after(&cursor, 100).await.unwrap();
    assert!(got.is_empty(), "nothing is read past a transaction still open");
    assert_eq!(same, cursor);
    let (refs, same) = store.committed_refs_after(&cursor, 100).await.unwrap();
    assert!(refs.is_empty(), "where they are neither");
    assert_eq!(same, cursor);
    slow.execute("COMMIT").await.unwrap();
    let (got, next) = store.committed_after(&cursor, 100).await.unwrap();
    let ids: Vec<_> = got.iter().map(|(e, _)| e.id()).collect();
    assert_eq!(ids, vec![slow_msg.id(), fast.id()], "both, in the order their transactions began");
    assert_eq!(got[0].1, 4);
    // The same read without the envelopes: where each is, in the same
    // order, to the same cursor; and the envelopes fetched by id.
    let (refs, next_too) = store.committed_refs_after(&cursor, 100).await.unwrap();
    assert_eq!(next_too, next);
    let at: Vec<_> = refs.iter().map(|r| (r.id, r.room.clone(), r.author, r.seq)).collect();
    assert_eq!(
        at,
        vec![(slow_msg.id(), camp.clone(), bob.peer_id(), 1), (fast.id(), camp.clone(), alice.peer_id(), 2)]
    );
    // In the committed order, whatever the order asked; one never stored
    // is not there.
    let never = text(&bob, &camp, 9, T0, "never stored").id();
    let fetched = store.committed_by_id(&[fast.id(), never, slow_msg.id()]).await.unwrap();
    let fetched: Vec<_> = fetched.iter().map(|(e, h)| (e.id(), *h)).collect();
    assert_eq!(fetched, vec![(slow_msg.id(), 4), (fast.id(), 1)]);
    // Read once: the cursor is past them, and pages by `limit`.
    assert!(store.committed_after(&next, 100).await.unwrap().0.is_empty());
    let batch: Vec<_> = (3..=12).map(|seq| (text(&alice, &camp, seq, T0, "more"), 1)).collect();
    store.insert_batch(&batch, T0, false).await.unwrap();
    let (page, after) = store.committed_after(&next, 4).await.unwrap();
    assert_eq!(page.len(), 4);
    let (rest, _) = store.committed_after(&after, 100).await.unwrap();
    assert_eq!(rest.len(), 6);
}

/// A row whose bytes are not the envelope its id names, or whose room is
/// no room (nothing this store writes; a hand's edit, a damaged page) does
/// not stop a tail: it is skipped, counted, and what follows is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_goes_past_a_row_it_cannot_read() {
    let server = TempServer::start(false).await.expect("start PostgreSQL");
    let url = server.create_database("unreadable").await.unwrap();
    let store = PgStore::connect(&url).await.unwrap();
    let (alice, camp) = (identity(1), room("camp"));
    let cursor = store.commit_horizon().await.unwrap();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    for (id, room, raw) in [([7u8; 32], "camp", &b"not an envelope"[..]), ([9u8; 32], "Not A Room!", &b"x"[..])] {
        sqlx::query(
            "INSERT INTO messages (id, room, author, seq, kind, created_at, received_at, hops, raw)
             VALUES ($1, $2, $3, 1, 0, $4, $4, 1, $5)",
        )
        .bind(&id[..])
        .bind(room)
        .bind(&id[..])
        .bind(T0 as i64)
        .bind(raw)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let good = text(&alice, &camp, 1, T0, "after them");
    store.insert_batch(&[(good.clone(), 1)], T0, false).await.unwrap();

    let (got, next) = store.committed_after(&cursor, 100).await.unwrap();
    assert_eq!(got.iter().map(|(e, _)| e.id()).collect::<Vec<_>>(), vec![good.id()]);
    assert_eq!(store.unreadable_rows(), 2, "both bodies unreadable");
    assert!(store.committed_after(&next, 100).await.unwrap().0.is_empty(), "past all three");
    // Where they are: the one whose room is no room is skipped; the other
    // reads (its bytes are not read here), and fetching it skips it.
    let (refs, next_too) = store.committed_refs_after(&cursor, 100).await.unwrap();
    assert_eq!(next_too, next);
    assert_eq!(refs.len(), 2);
    assert_eq!(store.unreadable_rows(), 3);
    let ids: Vec<_> = refs.iter().map(|r| r.id).collect();
    let fetched = store.committed_by_id(&ids).await.unwrap();
    assert_eq!(fetched.iter().map(|(e, _)| e.id()).collect::<Vec<_>>(), vec![good.id()]);
    assert_eq!(store.unreadable_rows(), 4);
    store.close().await;
}

/// Batches are stored on a connection of their own, kept between them: a
/// restart of PostgreSQL kills it, or the server ends its session, and the
/// next batch is stored on a new one (not failed), while a batch with
/// PostgreSQL away fails at once and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_stored_across_a_restart_of_postgres() {
    let mut server = TempServer::start(false).await.expect("start PostgreSQL");
    let store = PgStore::connect(&server.create_database("restart").await.unwrap()).await.unwrap();
    let (alice, camp) = (identity(1), room("camp"));
    let first = text(&alice, &camp, 1, T0, "before");
    store.insert_batch(&[(first.clone(), 1)], T0, false).await.unwrap();

    server.stop();
    let away = text(&alice, &camp, 2, T0, "while away");
    assert!(store.insert_batch(&[(away.clone(), 1)], T0, false).await.is_err());
    server.resume().await.unwrap();
    let after = text(&alice, &camp, 3, T0, "after");
    let out = store.insert_batch(&[(after.clone(), 1)], T0, false).await.unwrap();
    assert!(matches!(out[..], [Ok(festival_store::Inserted::New)]), "{out:?}");

    // Restarted again while the writer holds a connection that worked.
    let again = text(&alice, &camp, 4, T0, "again");
    server.resume().await.unwrap();
    let out = store.insert_batch(&[(again.clone(), 1)], T0, false).await.unwrap();
    assert!(matches!(out[..], [Ok(festival_store::Inserted::New)]), "{out:?}");
    // The server ends the writer's session (an administrator, or
    // `idle_session_timeout`): it says so (a FATAL error) and closes.
    let ended = text(&alice, &camp, 5, T0, "after its session ended");
    let mut admin = sqlx::PgConnection::connect(&server.url("restart")).await.unwrap();
    let (terminated,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1) t",
    )
    .bind(festival_store::pg::WRITER_NAME)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(terminated, 1, "the writer holds one connection between batches");
    let out = store.insert_batch(&[(ended.clone(), 1)], T0, false).await.unwrap();
    assert!(matches!(out[..], [Ok(festival_store::Inserted::New)]), "{out:?}");

    assert!(store.get(&away.id()).await.unwrap().is_none());
    for stored in [&first, &after, &again, &ended] {
        assert!(store.get(&stored.id()).await.unwrap().is_some());
    }
    let heads = store.heads().await.unwrap();
    assert_eq!((heads[0].contiguous, heads[0].max, heads.len()), (1, 5, 1));
    assert_eq!(store.author_usage(&alice.peer_id()).await.unwrap().messages, 4);
    store.close().await;
}

/// A batch whose connection stops answering (a path gone silent: here its
/// backend is stopped) gives that connection up once the batch's deadline
/// has passed, instead of waiting for TCP's own timeout: its first round
/// trip found the kept connection gone, so it is stored on a new one, and
/// so is the next batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_gets_no_answer_gives_up_at_its_deadline() {
    /// Lets the stopped backend go on, whatever the test's outcome.
    struct Stopped(i32);
    impl Drop for Stopped {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill").arg("-CONT").arg(self.0.to_string()).status();
        }
    }
    let server = TempServer::start(false).await.expect("start PostgreSQL");
    let url = server.create_database("silent").await.unwrap();
    let store = PgStore::connect(&url).await.unwrap();
    let (alice, camp) = (identity(1), room("camp"));
    store.insert_batch(&[(text(&alice, &camp, 1, T0, "answered"), 1)], T0, false).await.unwrap();
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    let (pid,): (i32,) = sqlx::query_as("SELECT pid FROM pg_stat_activity WHERE application_name = $1")
        .bind(festival_store::pg::WRITER_NAME)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    let stopped = Stopped(pid);
    assert!(std::process::Command::new("kill").arg("-STOP").arg(pid.to_string()).status().unwrap().success());
    // Well within 40 s (the deadline is 12), the batch is stored, not hung.
    let silent = text(&alice, &camp, 2, T0, "no answer");
    let batch = [(silent, 1)];
    let stored = tokio::time::timeout(Duration::from_secs(40), store.insert_batch(&batch, T0, false)).await;
    let stored = stored.expect("the batch did not wait on the silent connection").unwrap();
    assert!(matches!(stored[..], [Ok(festival_store::Inserted::New)]), "{stored:?}");
    drop(stopped);
    let next = text(&alice, &camp, 3, T0, "on a new connection");
    let out = store.insert_batch(&[(next.clone(), 1)], T0, false).await.unwrap();
    assert!(matches!(out[..], [Ok(festival_store::Inserted::New)]), "{out:?}");
    store.close().await;
}
