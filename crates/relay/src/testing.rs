//! A private Redis server for tests and benchmarks of a relay cluster (the
//! PostgreSQL one is `festival_store::pg::TempServer`): its own temporary
//! directory, a Unix socket only (no TCP port), append-only persistence on
//! so a restart keeps the streams and consumer groups as a deployment's
//! would; stopped and removed when dropped. Runs Debian's `redis-server`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to answer after it starts.
const START_DEADLINE: Duration = Duration::from_secs(30);

pub struct TempRedis {
    dir: PathBuf,
    child: Option<Child>,
}

impl TempRedis {
    pub async fn start() -> std::io::Result<TempRedis> {
        // Tests start servers in parallel threads of one process, within
        // the clock's resolution of each other: a counter keeps them apart.
        static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let unique = format!(
            "festival-redis-{}-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
        );
        let dir = std::env::temp_dir().join(unique);
        std::fs::create_dir(&dir)?;
        let mut r = TempRedis { dir, child: None };
        r.run().await?;
        Ok(r)
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    /// `redis+unix://` and the socket's path.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    /// The server's process, for CPU figures.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    async fn run(&mut self) -> std::io::Result<()> {
        let _ = std::fs::remove_file(self.socket());
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(self.socket())
            .args(["--unixsocketperm", "700", "--save", "", "--appendonly", "yes", "--dir"])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        self.child = Some(child);
        let client = redis::Client::open(self.url()).map_err(std::io::Error::other)?;
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await {
                if redis::cmd("PING").query_async::<String>(&mut c).await.is_ok() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::other("redis-server did not answer in time"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kill it (SIGKILL, as a crash).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same directory and socket.
    pub async fn restart(&mut self) -> std::io::Result<()> {
        self.kill();
        self.run().await
    }
}

impl Drop for TempRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
