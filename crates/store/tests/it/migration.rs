//! A store written before budgets existed (only migration 0001) opens with
//! its messages intact, its accounting computed from them, and the file
//! converted to incremental auto-vacuum so eviction can shrink it.

use crate::common;

use common::{identity, room, text};
use festival_store::{Budget, HeadRow, Store, Usage, ROW_OVERHEAD_BYTES};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

#[tokio::test]
async fn a_store_from_before_retention_gains_accounting_and_can_shrink() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("festival.db");
    // Migration 0001 alone, as an older build would have run it.
    let old_migrations = dir.path().join("migrations");
    std::fs::create_dir(&old_migrations).unwrap();
    let init = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/0001_init.sql");
    std::fs::copy(init, old_migrations.join("0001_init.sql")).unwrap();
    festival_store::configure_sqlite();
    let options =
        SqliteConnectOptions::new().filename(&path).create_if_missing(true).journal_mode(SqliteJournalMode::Wal);
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
    sqlx::migrate::Migrator::new(old_migrations.as_path()).await.unwrap().run(&pool).await.unwrap();

    // Two chains as the old ingest wrote them: messages and heads.
    let (ben, cat) = (identity(2), identity(3));
    let festival = room("festival");
    let envs = [
        text(&ben, &festival, 1, 10, "one"),
        text(&ben, &festival, 2, 20, "two"),
        text(&cat, &festival, 1, 30, "three"),
    ];
    for env in &envs {
        let id = env.id();
        let prefix = i64::from_be_bytes(id.as_bytes()[..8].try_into().unwrap());
        sqlx::query(
            "INSERT INTO messages (id, id_prefix, room, author, seq, kind, created_at, received_at, hops, raw)
             VALUES (?, ?, 'festival', ?, ?, 0, ?, 1, 1, ?)",
        )
        .bind(&id.as_bytes()[..])
        .bind(prefix)
        .bind(&env.author().as_bytes()[..])
        .bind(env.seq() as i64)
        .bind(env.created_at() as i64)
        .bind(env.bytes())
        .execute(&pool)
        .await
        .unwrap();
    }
    for (author, max) in [(ben.peer_id(), 2), (cat.peer_id(), 1)] {
        sqlx::query("INSERT INTO heads (room, author, contiguous, max_seq) VALUES ('festival', ?, ?, ?)")
            .bind(&author.as_bytes()[..])
            .bind(max)
            .bind(max)
            .execute(&pool)
            .await
            .unwrap();
    }
    let (auto_vacuum,): (i64,) = sqlx::query_as("PRAGMA auto_vacuum").fetch_one(&pool).await.unwrap();
    assert_eq!(auto_vacuum, 0, "an old file has no auto-vacuum");
    pool.close().await;

    let store = Store::open(&path).await.unwrap();
    let cost = |i: usize| envs[i].bytes().len() as u64 + ROW_OVERHEAD_BYTES;
    assert_eq!(store.usage().await.unwrap(), Usage { bytes: cost(0) + cost(1) + cost(2), messages: 3 });
    assert_eq!(store.author_usage(&ben.peer_id()).await.unwrap(), Usage { bytes: cost(0) + cost(1), messages: 2 });
    assert_eq!(store.room_usage(&festival).await.unwrap().messages, 3);
    let mut heads = store.heads().await.unwrap();
    heads.sort_by_key(|h| h.author != ben.peer_id());
    assert_eq!(
        heads,
        vec![
            HeadRow { room: festival.clone(), author: ben.peer_id(), contiguous: 2, max: 2 },
            HeadRow { room: festival.clone(), author: cat.peer_id(), contiguous: 1, max: 1 },
        ]
    );
    assert_eq!(store.get(&envs[2].id()).await.unwrap().unwrap().envelope, envs[2]);
    store.close().await;

    festival_store::configure_sqlite();
    let pool = SqlitePoolOptions::new().connect_with(SqliteConnectOptions::new().filename(&path)).await.unwrap();
    let (auto_vacuum,): (i64,) = sqlx::query_as("PRAGMA auto_vacuum").fetch_one(&pool).await.unwrap();
    assert_eq!(auto_vacuum, 2, "converted to incremental once");
    pool.close().await;

    let store = Store::open(&path).await.unwrap();
    let per_author = Budget { disk_bytes: u64::MAX, per_author_bytes: cost(1) + 10, per_room_bytes: u64::MAX };
    assert_eq!(store.evict(&per_author, 100).await.unwrap().messages, 1, "Ben's oldest");
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
}

/// Migration 0013 rebuilds the search index with spread rowids: what a
/// store indexed before it is queued again and found after indexing.
#[tokio::test]
async fn the_search_index_is_rebuilt_from_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("festival.db");
    let old_migrations = dir.path().join("migrations");
    std::fs::create_dir(&old_migrations).unwrap();
    let all = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    for entry in std::fs::read_dir(all).unwrap() {
        let name = entry.unwrap().file_name();
        if name.to_str().unwrap() < "0013" {
            std::fs::copy(std::path::Path::new(all).join(&name), old_migrations.join(&name)).unwrap();
        }
    }
    festival_store::configure_sqlite();
    let options =
        SqliteConnectOptions::new().filename(&path).create_if_missing(true).journal_mode(SqliteJournalMode::Wal);
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
    sqlx::migrate::Migrator::new(old_migrations.as_path()).await.unwrap().run(&pool).await.unwrap();
    // A text stored and indexed as schema 0012 did it: rowid = pk.
    let ben = identity(2);
    let env = text(&ben, &room("festival"), 1, 10, "lanterns by the river");
    let id = env.id();
    let prefix = i64::from_be_bytes(id.as_bytes()[..8].try_into().unwrap());
    sqlx::query("INSERT INTO heads (room, author, chain, contiguous, max_seq) VALUES ('festival', ?, 1, 1, 1)")
        .bind(&ben.peer_id().as_bytes()[..])
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO messages (pk, id, id_prefix, room, author, chain, seq, kind, created_at, received_at, hops, raw)
         VALUES (1, ?, ?, 'festival', ?, 1, 1, 0, 10, 1, 1, ?)",
    )
    .bind(&id.as_bytes()[..])
    .bind(prefix)
    .bind(&ben.peer_id().as_bytes()[..])
    .bind(env.bytes())
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO message_search (rowid, text) VALUES (1, 'lanterns by the river')")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.search_pending().await.unwrap(), 1, "queued again by the migration");
    assert!(store.search("lanterns", 10).await.unwrap().is_empty(), "the old index is gone");
    let me = identity(1);
    assert_eq!(store.index_pending(&me, 10).await.unwrap(), 1);
    let found = store.search("lanterns", 10).await.unwrap();
    assert_eq!(found.iter().map(|m| m.envelope.id()).collect::<Vec<_>>(), [id]);
    store.close().await;
}
