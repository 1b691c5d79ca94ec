//! Opening a store: the file, the connection settings, the pools, migrations.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};

use crate::chains::KnownChains;
use crate::error::{from_sql, Result};
use crate::files;
use crate::ids::SharedIdIndex;

/// `PRAGMA application_id` of a Festival Chat database: "FEST" in ASCII.
/// Must match the value set in `migrations/0001_init.sql`.
pub const FESTIVAL_APPLICATION_ID: i32 = 0x4645_5354;

/// SQLite's result code for "file is not a database".
const SQLITE_NOTADB: &str = "26";

/// How long a statement waits for a lock held by another connection before
/// failing with SQLITE_BUSY. In-process writers queue in the writer pool, so
/// this only covers WAL checkpoints and outside tools (a `sqlite3` shell
/// during debugging); five seconds is long enough for those and short enough
/// that a real deadlock surfaces as an error rather than a hang.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Page cache of the writer, in KiB (SQLite's negative `cache_size`). At a
/// million messages the id and position indexes are tens of MiB and every
/// batch touches pages all over them; with the default 2 MiB the writer
/// re-reads pages it evicted moments ago. 16 MiB holds their upper levels
/// and the hot leaves. Readers keep the default: a history page touches a
/// few dozen pages.
const WRITER_CACHE_KIB: i64 = 16 * 1024;

/// WAL pages (4 KiB each) after which a commit checkpoints the WAL into the
/// database file; SQLite's default is 1,000. A checkpoint writes each page
/// once however many commits changed it, and ingest keeps changing the same
/// index pages, so checkpointing less often writes much less: measured at a
/// million messages on a 2-core machine, batched ingest went from ~33,000 to
/// over 50,000 messages a second. The cost is a WAL file of up to ~80 MiB
/// during heavy sync; it is removed when the store closes.
pub(crate) const WAL_CHECKPOINT_PAGES: u32 = 20_000;

/// One writer connection. SQLite allows one writer at a time; a second writer
/// connection would not write in parallel, it would sit in the busy handler
/// polling the file lock. Queueing in the pool instead is fair, wakes at once,
/// and keeps every write transaction free of SQLITE_BUSY surprises.
const WRITER_CONNECTIONS: u32 = 1;

/// Readers run beside the writer thanks to WAL. Four covers the UI (history,
/// room list) and a few sync links reading ranges at once; more would not help
/// on a 2-core phone and each connection carries its own page cache.
const READER_CONNECTIONS: u32 = 4;

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create directory {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    /// The database holds the secret key: a file or directory whose mode
    /// cannot be made private is not used.
    #[error("cannot make {path} private: {source}")]
    Permissions { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a SQLite database")]
    NotADatabase { path: PathBuf },
    #[error("{path} is a SQLite database of another application (application_id {application_id:#x})")]
    NotFestival { path: PathBuf, application_id: i32 },
    /// The file was written by a newer version of Festival Chat (it has a
    /// migration this build does not know). Opening it could corrupt it.
    #[error("{path} was written by a newer version (unknown migration {version})")]
    TooNew { path: PathBuf, version: i64 },
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("cannot migrate {path}: {source}")]
    Migrate { path: PathBuf, source: sqlx::migrate::MigrateError },
}

/// The Festival Chat store. Cheap to clone: clones share the pools.
#[derive(Clone, Debug)]
pub struct Store {
    /// Every write goes through here; see [`WRITER_CONNECTIONS`].
    pub(crate) writer: SqlitePool,
    /// Reads only (enforced with `query_only`).
    pub(crate) reader: SqlitePool,
    /// The database file; its `-wal` and `-shm` siblings are beside it.
    pub(crate) path: Arc<PathBuf>,
    /// What ingest knows of the id index (see [`crate::ids`]).
    pub(crate) ids: SharedIdIndex,
    /// Chains the writer remembers between batches (see [`crate::chains`]).
    pub(crate) chains: KnownChains,
    /// The writer's `wal_autocheckpoint`, as eviction last set it for its
    /// budget (see [`crate::evict`]).
    pub(crate) wal_pages: Arc<AtomicU32>,
    /// Ingest queues texts for search (always, but for one benchmark that
    /// measures what the queue costs: `stop_search_queue_for_bench`).
    pub(crate) search_queue: Arc<AtomicBool>,
}

fn base_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new().filename(path).create_if_missing(true).foreign_keys(true).busy_timeout(BUSY_TIMEOUT)
}

/// Turn off SQLite's memory statistics, once per process, before its first
/// connection. Kept on (SQLite's default), every allocation and free SQLite
/// makes takes one process-wide mutex to count it: measured at ~9 % of the
/// writer thread's CPU in batched ingest (`pthread_mutex_lock` / `unlock`
/// under `sqlite3Malloc`), and it serialises the readers' allocations with
/// the writer's. Nothing here reads the statistics (`sqlite3_memory_used`,
/// soft heap limits), and SQLite recommends the same at compile time
/// (`SQLITE_DEFAULT_MEMSTATUS=0`). `sqlite3_config` works only before the
/// library initialises, which its first connection does: every
/// [`Store::open`] calls this before connecting. Returns whether the
/// statistics are off.
///
/// Anything else in the process that opens a SQLite connection of its own
/// (the store's tests do, to look at a file) must call this first.
pub fn configure_sqlite() -> bool {
    static OFF: OnceLock<bool> = OnceLock::new();
    *OFF.get_or_init(|| {
        // SAFETY: sqlite3_config must not run while another thread is in
        // SQLite. In the node, the relay and the app every connection is
        // opened by a Store, and every Store::open (and every test that
        // opens a connection of its own) calls this first, so the OnceLock
        // makes them all wait for it: no SQLite call can be running
        // before it returns. Once SQLite has started, the call only
        // returns SQLITE_MISUSE and changes nothing.
        let rc = unsafe {
            libsqlite3_sys::sqlite3_config(libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS, std::ffi::c_int::from(0u8))
        };
        if rc != libsqlite3_sys::SQLITE_OK {
            tracing::warn!(rc, "SQLite was started before the store: its memory statistics stay on");
        }
        rc == libsqlite3_sys::SQLITE_OK
    })
}

impl Store {
    /// Open (creating if needed) the store at `path`, and bring its schema up
    /// to date.
    pub async fn open(path: &Path) -> Result<Store, OpenError> {
        configure_sqlite();
        files::prepare(path)?;
        check_ownership(path).await?;
        files::tighten(path)?;

        let open_err = |source: sqlx::Error| classify(path, source);
        let write_options = base_options(path)
            // WAL: readers never block the writer and the writer never blocks
            // readers, so history stays responsive during a large sync.
            .journal_mode(SqliteJournalMode::Wal)
            // A phone whose battery dies is a power loss, not a process crash.
            // WAL with NORMAL survives a crash but can lose the last commits on
            // power loss, and a lost commit here is a message the user saw as
            // sent. FULL fsyncs the WAL on every commit; batching many messages
            // per transaction (insert_batch) amortises that cost.
            .synchronous(SqliteSynchronous::Full)
            // Eviction gives the space of deleted messages back to the file
            // system (`incremental_vacuum`), so the disk budget bounds the
            // real file; without it the file only ever grows. Takes effect
            // on a new file (before the first table); older files are
            // converted once below.
            .auto_vacuum(SqliteAutoVacuum::Incremental)
            .pragma("cache_size", (-WRITER_CACHE_KIB).to_string())
            .pragma("wal_autocheckpoint", WAL_CHECKPOINT_PAGES.to_string())
            // A multi-row INSERT inside a transaction keeps a statement
            // journal (to undo just that statement); past 64 KiB SQLite
            // spills it to a temporary file, which a 128-row statement always
            // does. Kept in memory (at most a few MiB for one statement),
            // batched ingest measured ~20% faster.
            .pragma("temp_store", "memory");
        let writer = SqlitePoolOptions::new()
            .max_connections(WRITER_CONNECTIONS)
            .min_connections(WRITER_CONNECTIONS)
            // Keep the writer open: closing the last connection checkpoints
            // and removes the WAL, and reopening costs more than it saves.
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(write_options)
            .await
            .map_err(open_err)?;

        let migrated = sqlx::migrate!("./migrations").run(&writer).await;
        if let Err(source) = migrated {
            writer.close().await;
            return Err(match source {
                sqlx::migrate::MigrateError::VersionMissing(version) => {
                    OpenError::TooNew { path: path.to_owned(), version }
                }
                source => OpenError::Migrate { path: path.to_owned(), source },
            });
        }

        if let Err(source) = ensure_incremental_vacuum(&writer).await {
            writer.close().await;
            return Err(OpenError::Open { path: path.to_owned(), source });
        }
        // Entries waiting to be merged into the id index (see crate::ids).
        let ids = match load_ids(&writer).await {
            Ok(ids) => ids,
            Err(source) => {
                writer.close().await;
                return Err(OpenError::Open { path: path.to_owned(), source });
            }
        };

        // WAL is a property of the file, set by the writer above; readers
        // commit nothing, so synchronous does not matter to them.
        let read_options = base_options(path)
            // A reader that tries to write is a bug in this crate; make it an
            // error rather than a second writer.
            .pragma("query_only", "ON");
        let reader = match SqlitePoolOptions::new().max_connections(READER_CONNECTIONS).connect_with(read_options).await
        {
            Ok(reader) => reader,
            Err(e) => {
                writer.close().await;
                return Err(open_err(e));
            }
        };
        tracing::debug!(path = %path.display(), "store opened");
        Ok(Store {
            writer,
            reader,
            path: Arc::new(path.to_owned()),
            ids,
            chains: KnownChains::default(),
            wal_pages: Arc::new(AtomicU32::new(WAL_CHECKPOINT_PAGES)),
            search_queue: Arc::new(AtomicBool::new(true)),
        })
    }

    /// Close every connection, waiting for operations in flight. The last
    /// connection to close checkpoints the WAL into the main file.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// Run SQLite's `PRAGMA integrity_check`: `"ok"` when the file is sound,
    /// otherwise one line per problem found.
    pub async fn integrity_check(&self) -> Result<String> {
        let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check").fetch_all(&self.reader).await?;
        Ok(rows.into_iter().map(|(line,)| line).collect::<Vec<_>>().join("\n"))
    }

    /// How many messages are stored, in every room.
    pub async fn message_count(&self) -> Result<u64> {
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM messages").fetch_one(&self.reader).await?;
        from_sql("messages", n)
    }
}

async fn load_ids(writer: &SqlitePool) -> Result<SharedIdIndex, sqlx::Error> {
    let mut conn = writer.acquire().await?;
    crate::ids::load(&mut conn).await
}

/// A file created before eviction existed has `auto_vacuum = NONE`, and the
/// mode can only change by rebuilding the file: VACUUM once, here. It
/// rewrites the whole database (through the WAL, so it needs as much free
/// space again, once); files created since never need it.
async fn ensure_incremental_vacuum(writer: &SqlitePool) -> Result<(), sqlx::Error> {
    /// `PRAGMA auto_vacuum` reads 2 for INCREMENTAL.
    const INCREMENTAL: i64 = 2;
    let (mode,): (i64,) = sqlx::query_as("PRAGMA auto_vacuum").fetch_one(writer).await?;
    if mode != INCREMENTAL {
        tracing::info!(mode, "converting the store to incremental auto-vacuum (once)");
        let mut conn = writer.acquire().await?;
        sqlx::query("PRAGMA auto_vacuum = INCREMENTAL").execute(&mut *conn).await?;
        sqlx::query("VACUUM").execute(&mut *conn).await?;
    }
    Ok(())
}

/// Before anything writes to the file (switching to WAL is a write), make sure
/// it is empty or already ours: never migrate into another application's data.
async fn check_ownership(path: &Path) -> Result<(), OpenError> {
    let mut conn = base_options(path).connect().await.map_err(|e| classify(path, e))?;
    let probe: Result<(i32, i64), sqlx::Error> = async {
        let (app_id,): (i32,) = sqlx::query_as("PRAGMA application_id").fetch_one(&mut conn).await?;
        let (objects,): (i64,) = sqlx::query_as("SELECT count(*) FROM sqlite_schema").fetch_one(&mut conn).await?;
        Ok((app_id, objects))
    }
    .await;
    // Closing a connection that never read a valid header can fail too; the
    // probe's own result is the informative one.
    let _ = conn.close().await;
    let (application_id, objects) = probe.map_err(|e| classify(path, e))?;
    let fresh = application_id == 0 && objects == 0;
    if fresh || application_id == FESTIVAL_APPLICATION_ID {
        Ok(())
    } else {
        Err(OpenError::NotFestival { path: path.to_owned(), application_id })
    }
}

fn classify(path: &Path, source: sqlx::Error) -> OpenError {
    let not_a_db = source.as_database_error().and_then(|e| e.code()).is_some_and(|c| c == SQLITE_NOTADB);
    if not_a_db {
        OpenError::NotADatabase { path: path.to_owned() }
    } else {
        OpenError::Open { path: path.to_owned(), source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite counts nothing once a store is open: no allocation took the
    /// statistics mutex (the count stays at zero however much was stored).
    #[tokio::test]
    async fn sqlite_memory_statistics_are_off() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).await.unwrap();
        assert!(configure_sqlite(), "the first Store::open came before SQLite started");
        sqlx::query("CREATE TEMP TABLE t (x BLOB)").execute(&store.writer).await.unwrap();
        sqlx::query("INSERT INTO t VALUES (zeroblob(100000))").execute(&store.writer).await.unwrap();
        // SAFETY: a plain read of SQLite's counter, safe from any thread.
        let used = unsafe { libsqlite3_sys::sqlite3_memory_used() };
        assert_eq!(used, 0, "SQLite still counts its memory");
        store.close().await;
    }
}
