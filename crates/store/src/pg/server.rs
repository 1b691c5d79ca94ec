//! A private PostgreSQL server for tests and benchmarks: its own data
//! directory in a fresh temporary directory, listening only on a Unix socket
//! there (no TCP port, so nothing leaves the machine and two servers never
//! collide), stopped and removed when dropped.
//!
//! It runs Debian's PostgreSQL binaries (`/usr/lib/postgresql/<version>/bin`,
//! the newest found, or the directory in `FESTIVAL_PG_BIN`). PostgreSQL
//! refuses to run as root, so under root (CI) the server runs as the
//! `postgres` user the Debian package creates, via `setpriv`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// How long the server may take to accept connections after it starts.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// How long a stopping server may take before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(20);

/// The database role tests connect as (a superuser, trusted on the socket).
const USER: &str = "festival";

/// Why a server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("no PostgreSQL binaries found (looked in FESTIVAL_PG_BIN and /usr/lib/postgresql/*/bin)")]
    NoBinaries,
    #[error("running as root and there is no `postgres` user to run PostgreSQL as")]
    NoPostgresUser,
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{command} failed: {output}")]
    Failed { command: String, output: String },
    #[error("the server did not accept connections within {0:?}: {1}")]
    NotReady(Duration, String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// A running server; dropped, it stops and its directory is removed.
#[derive(Debug)]
pub struct TempServer {
    dir: PathBuf,
    child: Option<Child>,
    port: u16,
    bin: PathBuf,
    user: Option<(u32, u32)>,
    durable: bool,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
    let what = what.into();
    move |source| ServerError::Io { what, source }
}

/// The directory of `initdb` and `postgres`.
fn binaries() -> Result<PathBuf, ServerError> {
    if let Some(dir) = std::env::var_os("FESTIVAL_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| ServerError::NoBinaries)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).ok_or(ServerError::NoBinaries)
}

/// `(uid, gid)` of the `postgres` user, from /etc/passwd.
fn postgres_user() -> Result<(u32, u32), ServerError> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(io("reading /etc/passwd"))?;
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() > 3 && fields[0] == "postgres")
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
        .ok_or(ServerError::NoPostgresUser)
}

fn is_root() -> bool {
    // The owner of a file this process just created is its effective uid.
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false)
}

/// A command that runs `program` as the server's user.
fn as_server_user(program: &Path, user: Option<(u32, u32)>) -> Command {
    match user {
        Some((uid, gid)) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={uid}")).arg(format!("--regid={gid}")).arg("--clear-groups").arg("--").arg(program);
            c
        }
        None => Command::new(program),
    }
}

fn run(mut command: Command) -> Result<(), ServerError> {
    let shown = format!("{command:?}");
    let out = command.stdin(Stdio::null()).output().map_err(io(format!("running {shown}")))?;
    if out.status.success() {
        return Ok(());
    }
    let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Err(ServerError::Failed { command: shown, output })
}

impl TempServer {
    /// Create a cluster in a new temporary directory and start it. `durable`
    /// keeps PostgreSQL's fsyncs (for benchmarks that measure commits);
    /// without it the server skips them, as a test server may: what it
    /// committed survives a crash of the server, not of the machine.
    pub async fn start(durable: bool) -> Result<TempServer, ServerError> {
        let bin = binaries()?;
        let user = if is_root() { Some(postgres_user()?) } else { None };
        let base = std::env::temp_dir();
        // Tests start servers in parallel threads of one process, within
        // the clock's resolution of each other: a counter keeps them apart.
        static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let unique = format!(
            "festival-pg-{}-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
        );
        let dir = base.join(unique);
        std::fs::create_dir(&dir).map_err(io(format!("creating {}", dir.display())))?;
        // From here on, Drop removes the directory whatever fails.
        let mut server = TempServer { dir, child: None, port: 5432, bin: bin.clone(), user, durable };
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&server.dir, Some(uid), Some(gid)).map_err(io("chown of the server directory"))?;
        }
        let mut initdb = as_server_user(&bin.join("initdb"), user);
        initdb.args(["--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync", "-U", USER, "-D"]);
        initdb.arg(server.dir.join("data"));
        run(initdb)?;
        server.spawn().await?;
        Ok(server)
    }

    /// Start `postgres` on the data directory and wait until it answers.
    async fn spawn(&mut self) -> Result<(), ServerError> {
        let mut postgres = as_server_user(&self.bin.join("postgres"), self.user);
        postgres
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-k")
            .arg(&self.dir)
            .args(["-c", "listen_addresses=", "-p"])
            .arg(self.port.to_string())
            .args(["-c", "max_connections=200", "-c", "shared_buffers=64MB"]);
        if std::env::var_os("FESTIVAL_PG_STAT_STATEMENTS").is_some() {
            // For profiling a benchmark: `CREATE EXTENSION pg_stat_statements`
            // in its database, then read the view while it runs.
            postgres.args([
                "-c",
                "shared_preload_libraries=pg_stat_statements",
                "-c",
                "pg_stat_statements.track_planning=on",
            ]);
        }
        if !self.durable {
            // Commits still wait for the WAL to reach the kernel, so a
            // crash of the server (not of the machine) loses nothing that
            // was committed: tests that restart it rely on that.
            postgres.args(["-c", "fsync=off", "-c", "full_page_writes=off"]);
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .map_err(io("opening the server log"))?;
        let log2 = log.try_clone().map_err(io("cloning the server log"))?;
        self.child =
            Some(postgres.stdin(Stdio::null()).stdout(log).stderr(log2).spawn().map_err(io("starting postgres"))?);
        self.wait_ready().await
    }

    /// Stop the server at once (an immediate shutdown: what a crash leaves,
    /// recovered from the WAL at the next start). [`TempServer::resume`]
    /// starts it again on the same data.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-QUIT").arg(child.id().to_string()).status();
            let deadline = Instant::now() + STOP_DEADLINE;
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }

    /// Start a stopped server again.
    pub async fn resume(&mut self) -> Result<(), ServerError> {
        self.stop();
        self.spawn().await
    }

    async fn wait_ready(&mut self) -> Result<(), ServerError> {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            match self.options("postgres").connect().await {
                Ok(conn) => {
                    let _ = conn.close().await;
                    return Ok(());
                }
                Err(e) => {
                    if let Some(child) = self.child.as_mut() {
                        if let Ok(Some(status)) = child.try_wait() {
                            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                            return Err(ServerError::Failed { command: format!("postgres ({status})"), output: log });
                        }
                    }
                    if Instant::now() > deadline {
                        return Err(ServerError::NotReady(START_DEADLINE, e.to_string()));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Options to connect to `database` on this server.
    pub fn options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new().socket(&self.dir).port(self.port).username(USER).database(database)
    }

    /// A URL for `database` on this server (its socket directory as `host`).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{USER}@localhost:{}/{database}?host={}", self.port, self.dir.display())
    }

    /// Create a new empty database and return its URL.
    pub async fn create_database(&self, name: &str) -> Result<String, ServerError> {
        let mut conn = self.options("postgres").connect().await?;
        // Names come from tests; quoting keeps any of them one identifier.
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}"))).execute(&mut conn).await?;
        conn.close().await?;
        Ok(self.url(name))
    }

    /// The id the server's next write transaction will get: the difference
    /// between two readings is how many transactions wrote in between (a
    /// read-only one takes no id, and this reading takes none either).
    pub async fn next_xid(&self, database: &str) -> Result<u64, ServerError> {
        let mut conn = self.options(database).connect().await?;
        let (xid,): (i64,) =
            sqlx::query_as("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint").fetch_one(&mut conn).await?;
        conn.close().await?;
        Ok(xid as u64)
    }

    /// Bring the WAL to the state of a server that has run through a
    /// checkpoint: WAL segments recycled ahead of where it writes, so
    /// writes reuse them. A fresh cluster has none: every 16 MB of WAL it
    /// creates a segment (zero-filled and, when durable, synced), and
    /// every commit waits for that meanwhile. It fills six segments and
    /// checkpoints; how many the checkpoint keeps ahead depends on
    /// `min_wal_size` (80 MB) and its estimate of the WAL written between
    /// checkpoints. For benchmarks of a running deployment's commits:
    /// compare what is ahead with [`TempServer::wal_bytes`] over the run.
    /// Returns the segments now ahead.
    pub async fn recycle_wal(&self) -> Result<usize, ServerError> {
        let mut conn = self.options("postgres").connect().await?;
        for _ in 0..6 {
            // A write (a transaction id's commit record), then the next
            // segment: a segment with no new WAL is not switched away from.
            sqlx::query("SELECT txid_current()").execute(&mut conn).await?;
            sqlx::query("SELECT pg_switch_wal()").execute(&mut conn).await?;
        }
        // The checkpoint renames the segments behind it into ones ahead.
        sqlx::query("CHECKPOINT").execute(&mut conn).await?;
        let (current,): (String,) =
            sqlx::query_as("SELECT pg_walfile_name(pg_current_wal_insert_lsn())").fetch_one(&mut conn).await?;
        conn.close().await?;
        let wal = std::fs::read_dir(self.dir.join("data/pg_wal")).map_err(io("reading pg_wal"))?;
        let ahead = wal
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| name.len() == 24 && name.bytes().all(|b| b.is_ascii_hexdigit()) && *name > current)
            .count();
        Ok(ahead)
    }

    /// Bytes of WAL the server has written since it was created (its
    /// insert position): the difference between two readings is the WAL
    /// written in between.
    pub async fn wal_bytes(&self) -> Result<u64, ServerError> {
        let mut conn = self.options("postgres").connect().await?;
        let (bytes,): (i64,) = sqlx::query_as("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint")
            .fetch_one(&mut conn)
            .await?;
        conn.close().await?;
        Ok(bytes as u64)
    }

    /// The directory holding the data, the socket and the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The PostgreSQL process, for tests that stop it abruptly.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for TempServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
