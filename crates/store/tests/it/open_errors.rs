//! Opening a store: a missing directory is created, and a file that is not a
//! Festival Chat database is refused with a typed error, untouched.

use festival_store::{OpenError, Store};
use sqlx::Connection;

#[tokio::test]
async fn missing_parent_directories_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c/festival.db");
    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
    store.close().await;
    assert!(path.exists());
    // And it opens again, with nothing left to migrate.
    Store::open(&path).await.unwrap().close().await;
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("festival.db");
    let junk = b"this is a shopping list, not a database. milk, eggs, glow sticks.".repeat(100);
    std::fs::write(&path, &junk).unwrap();

    let err = Store::open(&path).await.unwrap_err();
    assert!(matches!(err, OpenError::NotADatabase { .. }), "got {err:?}");
    assert_eq!(std::fs::read(&path).unwrap(), junk);
}

#[tokio::test]
async fn another_applications_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    festival_store::configure_sqlite();
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
    sqlx::query("CREATE TABLE recipes (name TEXT)").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();

    let err = Store::open(&path).await.unwrap_err();
    assert!(matches!(err, OpenError::NotFestival { application_id: 0, .. }), "got {err:?}");
}

#[tokio::test]
async fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("festival.db");
    Store::open(&path).await.unwrap().close().await;
    // Pretend a future build applied a migration this one does not know.
    festival_store::configure_sqlite();
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (9999, 'from the future', true, x'00', 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    let err = Store::open(&path).await.unwrap_err();
    assert!(matches!(err, OpenError::TooNew { version: 9999, .. }), "got {err:?}");
}

#[tokio::test]
async fn a_directory_in_the_way_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = Store::open(&file.join("festival.db")).await.unwrap_err();
    assert!(matches!(err, OpenError::CreateDir { .. }), "got {err:?}");
}
