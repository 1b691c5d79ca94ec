//! The test server itself, where benchmarks rely on it: its WAL brought to
//! a running server's state.

use festival_store::pg::TempServer;
use sqlx::{Connection, Executor};

/// WAL segment files in the server's `pg_wal`.
fn segments(server: &TempServer) -> usize {
    std::fs::read_dir(server.dir().join("data/pg_wal"))
        .expect("pg_wal")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.len() == 24 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recycled_wal_segments_are_written_into_not_created() {
    let server = TempServer::start(false).await.expect("start PostgreSQL");
    let fresh = segments(&server);
    let ahead = server.recycle_wal().await.expect("recycle the WAL");
    assert!(ahead >= 4, "{ahead} segments ahead (a fresh cluster has {fresh} in all)");
    let files = segments(&server);
    let before = server.wal_bytes().await.unwrap();
    // Three segments' worth of WAL: written into those ahead, no new file.
    let mut conn = sqlx::PgConnection::connect_with(&server.options("postgres")).await.unwrap();
    for _ in 0..3 {
        conn.execute("SELECT txid_current()").await.unwrap();
        conn.execute("SELECT pg_switch_wal()").await.unwrap();
    }
    conn.close().await.unwrap();
    assert_eq!(segments(&server), files, "the writes took recycled segments");
    // What `wal_bytes` says was written: the three segments, from within
    // the one it started in.
    let written = server.wal_bytes().await.unwrap() - before;
    let segment = 16 << 20;
    assert!(written > 2 * segment && written <= 3 * segment, "{written} bytes of WAL");
}
