//! festival-lab: Festival Chat's multi-process network lab. Real
//! `festival-node run --json` processes, each in its own network namespace
//! (a "host"), joined by a bridge that lives in a namespace of its own: real
//! mDNS, real TCP signaling, real WebRTC over veth pairs, real SQLite files.
//!
//! # Layout
//! - [`lan`]: [`Lan`], the bridge and hosts of one test (unique names and
//!   subnet per instance), link cuts, impairments (netem where the kernel has
//!   it, random loss through nftables, rate limits through tbf), client
//!   isolation and dropped multicast (nftables), hosts behind a home router
//!   that does NAT ([`Lan::add_behind_nat`]), probes run
//!   from inside a host ([`Lan::in_host`]), and the cleanup that also runs
//!   on panic.
//! - [`node`]: [`NodeProc`], one festival-node process: stdin commands, a
//!   reader thread that parses its JSON lines into a [`Log`], waits with
//!   deadlines, SIGKILL, restart on the same data dir, `/quit`.
//! - [`log`]: [`Log`] and [`Line`]: what a node printed, and the questions
//!   tests ask of it (who is linked, which messages arrived how often).
//! - [`probe`]: hand-made traffic for a node's signaling port and data
//!   channel (garbage, forged offers, floods, an intruder on a real link).
//! - [`proxy`]: [`DelayProxy`], a TCP forwarder on a host that delays
//!   both directions: a slow path to the relay ([`Lan::slow_path`]).
//! - [`relay`]: [`RelayProc`], one festival-relay process on a host
//!   ([`Lan::spawn_relay`]), SIGKILL and restart on the same port and data dir.
//! - [`flood`]: a flood of fresh identities (maximum-size sealed DMs, one
//!   key each) written into a stopped node's store, for it to serve.
//! - [`sys`]: finding the `festival-node` (and `festival-relay`) binary, the lab lock, running `ip`.
//! - [`app`]: the desktop app under WebDriver for the E2E test: Xvfb,
//!   tauri-driver, screenshots and the blank-window check.
//!
//! # Running
//! As root (namespaces need it), after building the binary in the same
//! profile: `cargo build -p festival-node && cargo test -p festival-lab`.
//! Works from the machine's own namespace and from inside `unshare --net`
//! (scripts/test): `ip netns` makes namespaces of its own either way, and
//! nothing a node opens can reach beyond the lab's bridge.
//!
//! Cleanup: dropping a [`NodeProc`] kills its process, dropping a [`Lan`]
//! kills what is left in its hosts and deletes the namespaces, also while a
//! failed test unwinds. If the test process itself is killed, its nodes die
//! with it (`PR_SET_PDEATHSIG`) and the next [`Lan::new`] removes the
//! namespaces and temp dirs it left.
//!
//! Scenarios take turns through a file lock ([`sys::LabLock`], held by every
//! [`Lan`]), so they never compete for the two CPUs whatever the test
//! threads or runner. Set `FESTIVAL_LAB_LOG` to change the nodes' `RUST_LOG`
//! (their stderr is shown when a wait times out).

pub mod app;
pub mod flood;
pub mod lan;
pub mod log;
pub mod node;
pub mod probe;
pub mod proxy;
pub mod relay;
pub mod sys;

use std::time::{Duration, Instant};

pub use lan::Lan;
pub use log::{Line, Log};
pub use node::NodeProc;
pub use proxy::DelayProxy;
pub use relay::RelayProc;

/// `Instant::now() + secs`: a deadline shared by several waits.
pub fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

/// Waits until `done` holds for every node's log, all by one deadline.
/// Conditions on a log are monotonic in practice (lines are only added), so
/// checking the nodes one after the other is the same as checking together.
pub fn wait_all<'a>(
    nodes: impl IntoIterator<Item = &'a NodeProc>,
    what: &str,
    by: Instant,
    done: impl Fn(&Log) -> bool,
) {
    for n in nodes {
        n.wait_until(what, by, |log| done(log).then_some(()));
    }
}

/// Asserts that each of `ids` was shown exactly once on each node (all
/// incarnations of the node counted together).
pub fn assert_each_once<'a>(nodes: impl IntoIterator<Item = &'a NodeProc>, ids: &[String]) {
    for n in nodes {
        let counts = n.log().message_counts();
        for id in ids {
            let c = counts.get(id).copied().unwrap_or(0);
            assert_eq!(c, 1, "{}: message {} shown {c} times\n{}", n.name, &id[..12], n.diagnostics());
        }
    }
}

/// Prints a timing line to the test output (`--nocapture` shows it).
pub fn phase(start: Instant, what: &str) {
    eprintln!("[{:>7.2}s] {what}", start.elapsed().as_secs_f64());
}

/// Lets time pass, for asserting that something does NOT happen (a late
/// duplicate). Never for waiting on something: use the `wait_*` calls.
pub fn settle(span: Duration) {
    std::thread::sleep(span);
}
