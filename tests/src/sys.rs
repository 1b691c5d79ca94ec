//! The machine side of the lab: the binary under test, the lock that makes
//! scenarios take turns, and running `ip`.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// Overrides where the `festival-node` binary is looked for.
pub const BIN_ENV: &str = "FESTIVAL_NODE_BIN";
/// Scenarios take turns on this lock: each runs several nodes with real
/// timers, and two at once on two cores would make their deadlines flaky.
const LOCK_PATH: &str = "/tmp/festival-lab.lock";

/// The `festival-node` binary built in the same profile as this test:
/// `target/<profile>/festival-node`, found from the test executable
/// (`target/<profile>/deps/<test>-<hash>`). Cargo builds another package's
/// binary only when asked, so this panics with the command to run.
pub fn node_binary() -> PathBuf {
    let bin = built_binary("festival-node", BIN_ENV, "cargo build -p festival-node");
    static CHECKED: std::sync::Once = std::sync::Once::new();
    CHECKED.call_once(|| warn_if_stale(&bin));
    bin
}

/// A binary of this workspace built in the same profile as this test:
/// `$env_var` if set, else `target/<profile>/<name>` beside the test
/// executable's `deps/`; panics with `build` (the command that makes it).
pub fn built_binary(name: &str, env_var: &str, build: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env_var) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("test executable under target/<profile>/deps");
    let bin = profile_dir.join(name);
    assert!(
        bin.is_file(),
        "{} not found: build it first with `{build}` (same profile as the tests), or set {env_var}",
        bin.display()
    );
    bin
}

/// A binary older than the node's sources tests old code: say so (not fail:
/// others may be editing the sources while a lab run goes on).
fn warn_if_stale(bin: &Path) {
    let Ok(built) = bin.metadata().and_then(|m| m.modified()) else { return };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let newest = ["crates/node/src", "crates/core/src", "crates/store/src", "crates/store/migrations"]
        .iter()
        .filter_map(|d| newest_mtime(&root.join(d)))
        .max();
    if newest.is_some_and(|n| n > built) {
        eprintln!(
            "warning: {} is older than the node's sources; run `cargo build -p festival-node` to test them",
            bin.display()
        );
    }
}

fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let t = if path.is_dir() { newest_mtime(&path) } else { entry.metadata().ok()?.modified().ok() };
        newest = newest.max(t);
    }
    newest
}

/// An exclusive `flock` on [`LOCK_PATH`], released on drop (or when the
/// process dies, so a crashed run never blocks the next one).
pub struct LabLock {
    _file: File,
}

impl LabLock {
    pub fn take() -> LabLock {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK_PATH)
            .unwrap_or_else(|e| panic!("open {LOCK_PATH}: {e}"));
        // SAFETY: flock on a descriptor we own; blocks until it is ours.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(r, 0, "flock {LOCK_PATH}: {}", std::io::Error::last_os_error());
        LabLock { _file: file }
    }
}

/// Runs `ip ARGS`, panicking with its stderr on failure.
pub fn ip(args: &[&str]) -> String {
    run("ip", args)
}

/// Runs a command to completion, panicking with its stderr on failure.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run `{program}` ({e}): the lab needs iproute2 and root (network namespaces)")
    });
    assert!(
        out.status.success(),
        "`{program} {}` failed ({}): {}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr),
        if unsafe { libc::geteuid() } != 0 { " (the lab must run as root)" } else { "" }
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Like [`run`], the failure as `Err` (a tool or kernel feature missing).
pub fn try_run(program: &str, args: &[&str]) -> Result<(), String> {
    match Command::new(program).args(args).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!("`{program} {}`: {}", args.join(" "), String::from_utf8_lossy(&o.stderr).trim())),
        Err(e) => Err(format!("cannot run `{program}`: {e}")),
    }
}

/// Like [`run`] but only reports failure: for cleanup, which must go on.
pub fn run_quiet(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).output().map(|o| o.status.success()).unwrap_or(false)
}

/// SIGKILL by process id.
pub fn kill9(pid: u32) {
    // SAFETY: kill(2) with a pid we started; a gone pid only yields ESRCH.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

pub fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Per-node temp dirs are named `festival-lab-<pid>-...`, so that a later run
/// can remove those of a run that was killed (see [`clean_stale_dirs`]).
pub fn temp_prefix(pid: u32) -> String {
    format!("festival-lab-{pid}-")
}

/// Removes the temp dirs of lab processes that are gone.
pub fn clean_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name.strip_prefix("festival-lab-").and_then(|r| r.split('-').next()).and_then(|p| p.parse().ok());
        if pid.is_some_and(|pid| !pid_alive(pid)) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The child gets SIGKILL when the thread that spawned it ends, so nodes
/// never outlive a test process that was itself killed (Drop guards cannot
/// run then). It survives `ip netns exec`'s exec. Spawn nodes from the test's
/// own thread, not from a helper thread that ends early.
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Overrides where the `festival-relay` binary is looked for.
pub const RELAY_BIN_ENV: &str = "FESTIVAL_RELAY_BIN";

/// The `festival-relay` binary built in the same profile as this test (see
/// [`node_binary`]); panics with the command to build it.
pub fn relay_binary() -> PathBuf {
    built_binary("festival-relay", RELAY_BIN_ENV, "cargo build -p festival-relay")
}
