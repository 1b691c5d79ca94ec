//! One `festival-node run --json` process on a lab host.
//!
//! A reader thread parses stdout into the node's [`Log`] and wakes waiters
//! through a condvar; stderr goes to a file per run (shown on failure). The
//! data dir outlives the process, so [`NodeProc::restart`] brings the same
//! node (identity, messages, outbox) back.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::lan::Children;
use crate::log::{Line, Log};
use crate::sys;

/// From spawn to the `ready` line: opening SQLite, binding, starting mDNS.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// A command's reply (`saved`, `/status`) comes from the node's own loop.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// `/quit` closes links, says goodbye on mDNS (up to 2 s) and closes the store.
pub const QUIT_TIMEOUT: Duration = Duration::from_secs(15);
/// The nodes' log filter unless `FESTIVAL_LAB_LOG` is set.
const DEFAULT_LOG: &str = "festival_node=info,warn";

#[derive(Default)]
struct Shared {
    log: Mutex<Log>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct NodeProc {
    pub name: String,
    pub host: usize,
    ns: String,
    extra: Vec<String>,
    bin: PathBuf,
    dir: TempDir,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    reader: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    children: Children,
    /// This node's PeerId (hex), from its `ready` line.
    pub peer: String,
    /// Ports of the current run, from its `ready` line.
    pub signaling_port: u16,
    pub udp_port: u16,
}

impl NodeProc {
    pub(crate) fn start(ns: String, host: usize, name: &str, extra: &[&str], children: Children) -> NodeProc {
        let mut node = NodeProc {
            name: name.to_owned(),
            host,
            ns,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            bin: sys::node_binary(),
            dir: tempfile::Builder::new().prefix(&sys::temp_prefix(std::process::id())).tempdir().expect("temp dir"),
            child: None,
            stdin: None,
            reader: None,
            shared: Arc::default(),
            children,
            peer: String::new(),
            signaling_port: 0,
            udp_port: 0,
        };
        node.launch(0);
        node
    }

    /// A node in this process's own network namespace (no lab host), e.g.
    /// beside the desktop app in the E2E test. The caller makes sure that
    /// namespace is a private one.
    pub fn spawn_here(name: &str, extra: &[&str]) -> NodeProc {
        NodeProc::start(String::new(), 0, name, extra, Children::default())
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn stderr_path(&self, epoch: u32) -> PathBuf {
        self.dir.path().join(format!("stderr.{epoch}.log"))
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts run `epoch` of the process and waits for its `ready` line.
    fn launch(&mut self, epoch: u32) {
        let stderr = File::create(self.stderr_path(epoch)).expect("stderr file");
        let mut cmd = if self.ns.is_empty() {
            Command::new(&self.bin)
        } else {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &self.ns]).arg(&self.bin);
            c
        };
        cmd.arg("--data-dir").arg(self.data_dir());
        cmd.args(["run", "--name", &self.name, "--json"]);
        if !self.extra.iter().any(|a| a.starts_with("--power")) {
            cmd.args(["--power", "mains"]);
        }
        cmd.args(&self.extra)
            .env("RUST_LOG", std::env::var("FESTIVAL_LAB_LOG").unwrap_or_else(|_| DEFAULT_LOG.into()))
            .env("RUST_BACKTRACE", "1")
            .env("NO_COLOR", "1")
            .env_remove("FESTIVAL_DATA_DIR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr);
        {
            let mut log = self.shared.lock();
            log.epoch = epoch;
            log.closed = false;
        }
        sys::die_with_parent(&mut cmd);
        // `ip netns exec` execs the binary: the child's pid is the node's.
        let mut child = cmd.spawn().expect("spawn ip netns exec festival-node");
        self.children.lock().unwrap_or_else(|e| e.into_inner()).insert(child.id());
        self.stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let shared = self.shared.clone();
        self.reader = Some(std::thread::spawn(move || read_lines(stdout, shared, epoch)));
        self.child = Some(child);

        let ready = self.wait_for("the ready line", READY_TIMEOUT, |log| log.events_now("ready").next().cloned());
        self.peer = ready["peer"].as_str().expect("ready.peer").to_owned();
        self.signaling_port = ready["signaling_port"].as_u64().expect("ready.signaling_port") as u16;
        self.udp_port = ready["udp_port"].as_u64().expect("ready.udp_port") as u16;
    }

    /// A snapshot of everything printed so far.
    pub fn log(&self) -> Log {
        self.shared.lock().clone()
    }

    /// Waits up to `within` until `f` returns `Some`; panics with the node's
    /// recent output otherwise, or as soon as the process has exited.
    pub fn wait_for<T>(&self, what: &str, within: Duration, f: impl FnMut(&Log) -> Option<T>) -> T {
        self.wait_until(what, Instant::now() + within, f)
    }

    /// [`Self::wait_for`] with an absolute deadline, to share one between waits.
    pub fn wait_until<T>(&self, what: &str, by: Instant, f: impl FnMut(&Log) -> Option<T>) -> T {
        self.try_wait_until(by, f)
            .unwrap_or_else(|why| panic!("{}: {why} waiting for {what}\n{}", self.name, self.diagnostics()))
    }

    /// Waits until `f` returns `Some`, or says why not: the deadline passed
    /// or the process exited (no more lines will come).
    pub fn try_wait_until<T>(&self, by: Instant, mut f: impl FnMut(&Log) -> Option<T>) -> Result<T, &'static str> {
        let mut log = self.shared.lock();
        loop {
            if let Some(t) = f(&log) {
                return Ok(t);
            }
            let now = Instant::now();
            if log.closed {
                return Err("the process exited");
            }
            if now >= by {
                return Err("timed out");
            }
            log = self.shared.changed.wait_timeout(log, by - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// The last lines of stdout and of the current run's stderr.
    pub fn diagnostics(&self) -> String {
        let log = self.shared.lock();
        let stderr = std::fs::read_to_string(self.stderr_path(log.epoch)).unwrap_or_default();
        let lines: Vec<&str> = stderr.lines().collect();
        let err_tail = lines[lines.len().saturating_sub(40)..].join("\n  ");
        format!(
            "--- {} (host {}, peer {}) stdout, last lines:\n{}--- stderr, last lines:\n  {err_tail}",
            self.name,
            self.host,
            self.peer.get(..12).unwrap_or("?"),
            log.tail(25)
        )
    }

    /// Writes one line to the node's stdin (a message or a command).
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap_or_else(|| panic!("{} is not running", self.name));
        writeln!(stdin, "{line}").and_then(|()| stdin.flush()).expect("write to the node's stdin");
    }

    /// Posts `text` to the current room; returns the message id from the
    /// `saved` line. Panics if the node answers with an error.
    pub fn say(&mut self, text: &str) -> String {
        self.try_say(text).unwrap_or_else(|e| panic!("{}: {text:?} refused: {e}", self.name))
    }

    /// Like [`Self::say`], the node's `error` line as `Err`.
    pub fn try_say(&mut self, text: &str) -> Result<String, String> {
        let from = self.shared.lock().lines.len();
        self.send_line(text);
        self.wait_for(&format!("`saved` for {text:?}"), COMMAND_TIMEOUT, |log| {
            log.lines[from..].iter().find_map(|l| match l.event() {
                Some("saved") => Some(Ok(l.json.as_ref()?["id"].as_str()?.to_owned())),
                Some("error") => Some(Err(l.json.as_ref()?["message"].to_string())),
                _ => None,
            })
        })
    }

    /// The node's `/status` (JSON `Status`).
    pub fn status(&mut self) -> Value {
        let from = self.shared.lock().lines.len();
        self.send_line("/status");
        self.wait_for("the /status reply", COMMAND_TIMEOUT, |log| {
            log.lines[from..].iter().filter_map(|l| l.json.as_ref()).find(|j| j.get("rejected").is_some()).cloned()
        })
    }

    /// The node's `/storage`: its store's files, messages and bytes against
    /// its budget, per room (see festival-node's `run.rs`). The `storage`
    /// object of the reply.
    pub fn storage(&mut self) -> Value {
        let from = self.shared.lock().lines.len();
        self.send_line("/storage");
        self.wait_for("the /storage reply", COMMAND_TIMEOUT, |log| {
            log.lines[from..].iter().filter_map(|l| l.json.as_ref()).find_map(|j| j.get("storage")).cloned()
        })
    }

    /// Asks `/status` until `f` returns `Some` (every 50 ms), or panics at
    /// `by` with the last status and the node's output.
    pub fn wait_status<T>(&mut self, what: &str, by: Instant, mut f: impl FnMut(&Value) -> Option<T>) -> T {
        loop {
            let st = self.status();
            if let Some(t) = f(&st) {
                return t;
            }
            assert!(Instant::now() < by, "{}: timed out waiting for {what}: {st}\n{}", self.name, self.diagnostics());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Posts numbered messages (`{text} 0`, `{text} 1`, ...) until one
    /// leaves by `path` (`lan`, `relay`), each once its `sent` line came;
    /// panics at `by`. Returns the ids of all it posted.
    pub fn say_until_sent_by(&mut self, text: &str, path: &str, by: Instant) -> Vec<String> {
        let mut ids = Vec::new();
        for i in 0.. {
            let id = self.say(&format!("{text} {i}"));
            let went = self.wait_for("the message sent", COMMAND_TIMEOUT, |l| l.sent_path(&id));
            ids.push(id);
            if went == path {
                break;
            }
            assert!(Instant::now() < by, "{}: messages still leave by {went}\n{}", self.name, self.diagnostics());
        }
        ids
    }

    /// One counter of `/status` `rejected` (0 when absent).
    pub fn rejected(&mut self, code: &str) -> u64 {
        self.status()["rejected"][code].as_u64().unwrap_or(0)
    }

    /// SIGKILL: no goodbye, no clean close; the data dir stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.children.lock().unwrap_or_else(|e| e.into_inner()).remove(&child.id());
        }
        self.stdin = None;
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }

    /// `/quit` and a clean exit within [`QUIT_TIMEOUT`].
    pub fn quit(&mut self) {
        self.send_line("/quit");
        let by = Instant::now() + QUIT_TIMEOUT;
        let mut log = self.shared.lock();
        while !log.closed && Instant::now() < by {
            log = self.shared.changed.wait_timeout(log, by - Instant::now()).unwrap_or_else(|e| e.into_inner()).0;
        }
        let closed = log.closed;
        drop(log);
        assert!(closed, "{}: still running {QUIT_TIMEOUT:?} after /quit\n{}", self.name, self.diagnostics());
        let mut child = self.child.take().expect("running");
        let status = child.wait().expect("wait for the node");
        self.children.lock().unwrap_or_else(|e| e.into_inner()).remove(&child.id());
        self.stdin = None;
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        assert!(status.success(), "{}: exited with {status} after /quit\n{}", self.name, self.diagnostics());
    }

    /// Starts the node again on the same data dir (after [`Self::kill`] or
    /// [`Self::quit`]) and waits for `ready`. Its log goes on, one epoch up.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "{}: restart needs the process stopped first", self.name);
        let epoch = self.shared.lock().epoch + 1;
        self.launch(epoch);
    }

    /// Runs an offline subcommand (`send`, `history` ...) on this node's data
    /// dir while it is stopped, inside its host; returns stdout.
    pub fn offline(&self, args: &[&str]) -> String {
        assert!(self.child.is_none(), "{}: offline commands need the node stopped", self.name);
        let data = self.data_dir();
        let mut all = vec!["netns", "exec", &self.ns, path_str(&self.bin), "--data-dir", path_str(&data)];
        all.extend_from_slice(args);
        sys::run("ip", &all)
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn read_lines(stdout: ChildStdout, shared: Arc<Shared>, epoch: u32) {
    for raw in BufReader::new(stdout).lines() {
        let Ok(raw) = raw else { break };
        let json = serde_json::from_str(&raw).ok();
        shared.lock().lines.push(Line { epoch, at: Instant::now(), raw, json });
        shared.changed.notify_all();
    }
    let mut log = shared.lock();
    if log.epoch == epoch {
        log.closed = true;
    }
    drop(log);
    shared.changed.notify_all();
}
