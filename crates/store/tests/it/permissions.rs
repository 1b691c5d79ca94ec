//! The database holds the secret key: only its owner may read it. A new
//! store's directory is 0700 and its files (database, WAL, shared memory)
//! 0600; an existing store's own directory and files are tightened to that.
#![cfg(unix)]

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{identity, room, text};
use festival_store::Store;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Open, write (so the WAL and shared memory exist), and check every file
/// while the store is open.
async fn open_and_check(path: &Path) -> Store {
    let store = Store::open(path).await.unwrap();
    let me = identity(1);
    store.create_identity(&me, "me", 1).await.unwrap();
    store.insert(&text(&me, &room("festival"), 1, 1, "hi"), 0, 1, true).await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let file = Path::new(&format!("{}{suffix}", path.display())).to_owned();
        assert!(file.exists(), "{} exists while the store is open", file.display());
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    store
}

#[tokio::test]
async fn a_new_store_is_private_to_its_owner() {
    let parent = tempfile::tempdir().unwrap();
    // The process umask would usually make these 0755 and 0644.
    let dir = parent.path().join("festival-data");
    let path = dir.join("festival.db");
    let store = open_and_check(&path).await;
    assert_eq!(mode(&dir), 0o700);
    store.close().await;
}

#[tokio::test]
async fn an_existing_store_and_its_own_directory_are_tightened() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("festival-data");
    let path = dir.join("festival.db");
    Store::open(&path).await.unwrap().close().await;
    set_mode(&dir, 0o755);
    set_mode(&path, 0o644);

    let store = open_and_check(&path).await;
    assert_eq!(mode(&dir), 0o700, "the directory holds only the store's files");
    store.close().await;
}

#[tokio::test]
async fn a_shared_directory_keeps_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    set_mode(dir.path(), 0o755);
    std::fs::write(dir.path().join("notes.txt"), b"not ours").unwrap();
    let path = dir.path().join("festival.db");

    let store = open_and_check(&path).await;
    assert_eq!(mode(dir.path()), 0o755, "a directory with other files is not ours to change");
    store.close().await;
}
