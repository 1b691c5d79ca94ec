//! One `festival-relay` process on a lab host: started on a fixed port so a
//! restart (after SIGKILL) is found at the same URL, with its data dir (its
//! identity and mailbox) kept across restarts.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tempfile::TempDir;

use crate::lan::Children;
use crate::sys;

/// From spawn to the line with the bound address.
pub const RELAY_READY_TIMEOUT: Duration = Duration::from_secs(20);
/// The relay answers STUN here, on all its host's addresses.
pub const STUN_PORT: u16 = 3478;

pub struct RelayProc {
    pub host: usize,
    pub ip: Ipv4Addr,
    pub port: u16,
    ns: String,
    bin: PathBuf,
    dir: TempDir,
    child: Option<Child>,
    children: Children,
    epoch: u32,
}

impl RelayProc {
    pub(crate) fn start(ns: String, host: usize, ip: Ipv4Addr, port: u16, children: Children) -> RelayProc {
        let mut r = RelayProc {
            host,
            ip,
            port,
            ns,
            bin: sys::relay_binary(),
            dir: tempfile::Builder::new().prefix(&sys::temp_prefix(std::process::id())).tempdir().expect("temp dir"),
            child: None,
            children,
            epoch: 0,
        };
        r.launch();
        r
    }

    /// `ws://ip:port` (the client adds `/v1/relay`).
    pub fn url(&self) -> String {
        format!("ws://{}:{}", self.ip, self.port)
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.path().join(format!("relay-stderr.{}.log", self.epoch))
    }

    fn launch(&mut self) {
        let stderr = File::create(self.stderr_path()).expect("stderr file");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns])
            .arg(&self.bin)
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(["--listen", &format!("0.0.0.0:{}", self.port)])
            .args(["--stun", &format!("0.0.0.0:{STUN_PORT}")])
            .env("RUST_LOG", std::env::var("FESTIVAL_LAB_LOG").unwrap_or_else(|_| "info".into()))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        sys::die_with_parent(&mut cmd);
        let mut child = cmd.spawn().expect("spawn ip netns exec festival-relay");
        self.children.lock().unwrap_or_else(|e| e.into_inner()).insert(child.id());
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        self.child = Some(child);
        match rx.recv_timeout(RELAY_READY_TIMEOUT) {
            Ok(line) if line.contains("listen") => {}
            other => panic!("festival-relay did not start ({other:?})\n{}", self.diagnostics()),
        }
    }

    /// The last lines of the current run's stderr.
    pub fn diagnostics(&self) -> String {
        let stderr = std::fs::read_to_string(self.stderr_path()).unwrap_or_default();
        let lines: Vec<&str> = stderr.lines().collect();
        format!(
            "--- relay (host {}) stderr, last lines:\n  {}",
            self.host,
            lines[lines.len().saturating_sub(30)..].join("\n  ")
        )
    }

    /// SIGKILL; the data dir stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.children.lock().unwrap_or_else(|e| e.into_inner()).remove(&child.id());
        }
    }

    /// Starts it again on the same port and data dir.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "relay restart needs the process stopped first");
        self.epoch += 1;
        self.launch();
    }
}

impl Drop for RelayProc {
    fn drop(&mut self) {
        self.kill();
    }
}
