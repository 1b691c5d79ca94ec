//! The servers a relay cluster needs, private to one test: PostgreSQL
//! (`festival_store::pg::TempServer`) and Redis ([`TempRedis`]), each in a
//! temporary directory of its own, listening on a Unix socket only, stopped
//! when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::DEADLINE;

/// A Redis server with its own directory; append-only persistence on, so a
/// restart keeps the streams (and consumer groups) as a deployment's would.
pub struct TempRedis {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl TempRedis {
    pub async fn start() -> TempRedis {
        let mut r = TempRedis { dir: tempfile::tempdir().unwrap(), child: None };
        r.run().await;
        r
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    async fn run(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(self.socket())
            .args(["--unixsocketperm", "700", "--save", "", "--appendonly", "yes", "--dir"])
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server runs (scripts/deps installs it)");
        self.child = Some(child);
        let client = redis::Client::open(self.url()).unwrap();
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await {
                if redis::cmd("PING").query_async::<String>(&mut c).await.is_ok() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not answer in time");
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
    pub async fn restart(&mut self) {
        self.kill();
        self.run().await;
    }
}

impl Drop for TempRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
