//! The store's files on disk: who may read them, and how big they are.
//!
//! The database holds the device's secret key, so the directory is created
//! 0700 and the file 0600 before SQLite first opens it; SQLite gives the
//! `-wal` and `-shm` files the main file's mode. Sizes are what the disk
//! budget bounds: database + WAL + shared memory, as the file system sees
//! them.

use std::path::{Path, PathBuf};

use crate::error::{from_sql, Result};
use crate::open::{OpenError, Store};

/// Pages given back to the file system per `incremental_vacuum` transaction:
/// 8 MiB. Each page moved from the end of the file into a free slot is
/// rewritten with its parent and pointer-map entry, so a step is ~6,000 page
/// writes, a few tens of ms holding the write lock.
const VACUUM_STEP_PAGES: u64 = 2_048;

/// The store's files and their sizes in bytes (0 for a file that does not
/// exist).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskUsage {
    pub db_bytes: u64,
    pub wal_bytes: u64,
    pub shm_bytes: u64,
    /// Of `db_bytes`, pages on the free list: reused by the next inserts, or
    /// given back by eviction.
    pub free_bytes: u64,
}

impl DiskUsage {
    /// What the disk budget bounds.
    pub fn total(&self) -> u64 {
        self.db_bytes.saturating_add(self.wal_bytes).saturating_add(self.shm_bytes)
    }
}

/// The database's pages as SQLite counts them, in the latest committed
/// state (what the file holds once the WAL is checkpointed).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pages {
    size: u64,
    count: u64,
    free: u64,
}

impl Pages {
    /// The file's size.
    pub(crate) fn file_bytes(&self) -> u64 {
        self.size.saturating_mul(self.count)
    }

    /// Pages on the free list, reused by the next inserts.
    pub(crate) fn free_bytes(&self) -> u64 {
        self.size.saturating_mul(self.free)
    }

    /// Pages holding rows and indexes.
    pub(crate) fn used_bytes(&self) -> u64 {
        self.file_bytes().saturating_sub(self.free_bytes())
    }
}

/// `<db>-wal` and `<db>-shm`, beside the database.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

impl Store {
    /// The database's pages, on a reader.
    pub(crate) async fn pages(&self) -> Result<Pages> {
        let (size, count, free): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT page_size FROM pragma_page_size()), (SELECT page_count FROM pragma_page_count()),
                    (SELECT freelist_count FROM pragma_freelist_count())",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(Pages {
            size: from_sql("pragma", size)?,
            count: from_sql("pragma", count)?,
            free: from_sql("pragma", free)?,
        })
    }

    /// The real size of the store's files.
    pub async fn disk_usage(&self) -> Result<DiskUsage> {
        let (page_size,): (i64,) = sqlx::query_as("PRAGMA page_size").fetch_one(&self.reader).await?;
        let (free_pages,): (i64,) = sqlx::query_as("PRAGMA freelist_count").fetch_one(&self.reader).await?;
        Ok(DiskUsage {
            db_bytes: file_len(&self.path),
            wal_bytes: file_len(&sibling(&self.path, "-wal")),
            shm_bytes: file_len(&sibling(&self.path, "-shm")),
            free_bytes: from_sql("pragma", page_size)?.saturating_mul(from_sql("pragma", free_pages)?),
        })
    }

    /// Move pages from the end of the file into free slots and truncate it,
    /// until `bytes` are given back or the free list is empty; in steps of
    /// [`VACUUM_STEP_PAGES`], one transaction each, so ingest waits at most
    /// one step.
    pub(crate) async fn give_back(&self, bytes: u64) -> Result<()> {
        let (page_size,): (i64,) = sqlx::query_as("PRAGMA page_size").fetch_one(&self.reader).await?;
        let mut pages = bytes.div_ceil(from_sql("pragma", page_size)?.max(1));
        while pages > 0 {
            let step = pages.min(VACUUM_STEP_PAGES);
            sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA incremental_vacuum({step})")))
                .execute(&self.writer)
                .await?;
            pages -= step;
        }
        Ok(())
    }

    /// Checkpoint the whole WAL into the database and truncate it to zero
    /// bytes. Waits (up to the busy timeout) for readers to leave the WAL;
    /// if one does not, the WAL keeps its size until the next call.
    pub(crate) async fn truncate_wal(&self) -> Result<()> {
        let (busy, _, _): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(&self.writer).await?;
        if busy != 0 {
            tracing::debug!("WAL checkpoint could not complete: a reader is still in the WAL");
        }
        Ok(())
    }
}

/// Create the store's directory (0700) and the database file (0600) before
/// SQLite opens it. On an existing directory nothing changes here: see
/// [`tighten`], which runs once the file is known to be ours.
pub(crate) fn prepare(path: &Path) -> Result<(), OpenError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Something else in the way (a file) fails here, as CreateDir.
        if !dir.is_dir() {
            create_private_dir(dir).map_err(|source| OpenError::CreateDir { path: dir.to_owned(), source })?;
        }
    }
    if !path.exists() {
        // An empty file is an empty database to SQLite. Creating it here is
        // what fixes its mode: SQLite would create it 0644 (umask allowing).
        match create_private_file(path) {
            // Created meanwhile by someone else: its mode is for tighten.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            other => other.map_err(|source| OpenError::Permissions { path: path.to_owned(), source })?,
        }
    }
    Ok(())
}

/// Once the file is known to be a Festival Chat store: make the database,
/// its WAL and shared memory 0600, and the directory 0700 if it is the
/// store's own (it holds nothing but the store's files). A directory shared
/// with other things (a home directory, `/tmp`) is left alone: its mode is
/// not ours to change.
pub(crate) fn tighten(path: &Path) -> Result<(), OpenError> {
    let err = |path: &Path| {
        let path = path.to_owned();
        move |source| OpenError::Permissions { path, source }
    };
    for file in [path.to_owned(), sibling(path, "-wal"), sibling(path, "-shm")] {
        if file.exists() {
            set_mode(&file, 0o600).map_err(err(&file))?;
        }
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if only_store_files(dir, path).map_err(err(dir))? {
            set_mode(dir, 0o700).map_err(err(dir))?;
        }
    }
    Ok(())
}

/// Whether every entry of `dir` is the database at `path` or one of
/// SQLite's files beside it.
fn only_store_files(dir: &Path, path: &Path) -> std::io::Result<bool> {
    let Some(name) = path.file_name() else { return Ok(false) };
    let ours: Vec<std::ffi::OsString> = ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| {
            let mut n = name.to_owned();
            n.push(suffix);
            n
        })
        .collect();
    for entry in std::fs::read_dir(dir)? {
        if !ours.contains(&entry?.file_name()) {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map(drop)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new().write(true).create_new(true).open(path).map(drop)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current == mode {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}
