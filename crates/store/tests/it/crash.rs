//! A commit that returned survives the process being killed at any moment.
//!
//! The test binary runs itself as the child (`crash_child`, which does
//! nothing unless `FESTIVAL_CRASH_DB` is set). The child inserts messages in a
//! loop, single inserts and small shuffled batches, and prints
//! `committed <id>` only after each commit returns. The parent kills it with
//! SIGKILL at a random moment, reopens the file and checks that every printed
//! id is there with bytes that still verify, that outbox rows exist for the
//! local ones, that heads agree with a scan of the messages, and that SQLite
//! finds the file sound. Many rounds on the same file.
//!
//! A second scenario kills the child while it evicts: `crash_evict_child`
//! stores messages that may never be evicted (mine, DMs to me) and others
//! that may, prints each commit, then evicts everything it may, pass after
//! pass, storing more in between. After each kill the parent checks that
//! the file is sound, that every acknowledged message that was not
//! evictable is there, that heads never went down and cover what is
//! stored, and that the usage sums still equal a scan.
//!
//! SIGKILL is a process crash. A power loss is stronger (the OS cache is lost
//! too) and cannot be simulated here; `synchronous = FULL` is what covers it.

use crate::common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use common::{identity, room, sealed, text};
use festival_core::{MessageId, PeerId, RoomId, SignedEnvelope};
use festival_store::{Budget, Inserted, Store, StoreError, ROW_OVERHEAD_BYTES};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

const DB_ENV: &str = "FESTIVAL_CRASH_DB";
const SEED_ENV: &str = "FESTIVAL_CRASH_SEED";
/// Test names as the harness knows them: `module::function` (this file is a
/// module of the `it` test binary).
const CHILD_TEST: &str = "crash::crash_child";
const ROUNDS: u64 = 24;
/// Kill this long after the first commit of a round: long enough for tens of
/// commits, short enough that kills land in every phase of the loop.
const KILL_AFTER_MS: std::ops::RangeInclusive<u64> = 5..=150;
/// The child has to start a process and open the store; on a loaded 2-core
/// machine that can take seconds, and a hang should still fail, not stall CI.
const FIRST_COMMIT_DEADLINE: Duration = Duration::from_secs(60);
/// After SIGKILL the pipe closes as soon as the kernel reaps the process.
const PIPE_CLOSE_DEADLINE: Duration = Duration::from_secs(10);
const AUTHORS: u64 = 3;
const MARK: &str = "committed ";
const EVICT_CHILD_TEST: &str = "crash::crash_evict_child";
const EVICT_ROUNDS: u64 = 12;
/// Printed before each eviction pass; the kill comes after the first.
const EVICTING: &str = "evicting";
/// Printed after each eviction pass returns.
const EVICTED: &str = "evicted";
/// Evictable messages stored before the first eviction pass, and between
/// later ones. The first pass takes several delete transactions (see
/// `festival_store::STEP_ROWS`) and ~150 ms in a debug build, longer than
/// the parent can lag behind the child's output on a loaded machine.
const EVICTABLE_FIRST: u64 = 6_000;
const EVICTABLE_PER_PASS: u64 = 1_500;
/// When to kill, after the first pass starts.
const KILL_IN_PASS_MS: std::ops::RangeInclusive<u64> = 0..=100;

/// The child half. Returns at once in a normal test run.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(DB_ENV) else {
        return;
    };
    let seed = std::env::var(SEED_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(write_until_killed(Path::new(&path), seed));
}

async fn write_until_killed(path: &Path, seed: u64) {
    let store = Store::open(path).await.expect("child opens the store");
    // The same authors every round, so chains continue across crashes.
    let authors: Vec<_> = (0..AUTHORS).map(identity).collect();
    let rooms = [room("festival"), room("camp")];
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let stdout = std::io::stdout();
    let mut clock = 1_700_000_000_000u64 + seed * 1_000_000;
    loop {
        let author = &authors[rng.gen_range(0..authors.len())];
        let room = &rooms[rng.gen_range(0..rooms.len())];
        let next = store.next_seq(room, &author.peer_id()).await.unwrap();
        // Now and then skip a seq, so some chains have gaps that never fill.
        let first = if rng.gen_bool(0.05) { next + 1 } else { next };
        let count = if rng.gen_bool(0.5) { 1 } else { rng.gen_range(2..=8) };
        clock += 1;
        let mut items: Vec<(SignedEnvelope, u8)> = (first..first + count)
            .map(|seq| (text(author, room, seq, clock, &format!("crash test {seed} {seq}")), rng.gen_range(0..4)))
            .collect();
        items.shuffle(&mut rng);
        let local = rng.gen_bool(0.3);
        if let [(env, hops)] = items.as_slice() {
            assert_eq!(store.insert(env, *hops, clock, local).await.unwrap(), Inserted::New);
        } else {
            let outcomes = store.insert_batch(&items, clock, local).await.unwrap();
            assert!(outcomes.iter().all(|o| matches!(o, Ok(Inserted::New))));
        }
        // Only now is it committed: say so, and make sure it left the process.
        let mut out = stdout.lock();
        for (env, _) in &items {
            writeln!(out, "{MARK}{} {}", env.id().to_hex(), if local { "local" } else { "remote" }).unwrap();
        }
        out.flush().unwrap();
    }
}

/// Kills the child when dropped, so a failed assertion never leaves it
/// running.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One printed commit: the id, and whether it was our own (outboxed).
fn parse(line: &str) -> Option<(MessageId, bool)> {
    // With --nocapture libtest may put "test crash_child ... " before our
    // first line, so look for the mark anywhere.
    let rest = &line[line.find(MARK)? + MARK.len()..];
    let mut words = rest.split_whitespace();
    let id = words.next()?.parse().ok()?;
    Some((id, words.next()? == "local"))
}

/// Complete lines from the child, read on a thread so the parent can wait
/// with deadlines. A line cut short by the kill has no newline and is
/// dropped: it was never fully printed.
fn lines(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(n) if n > 0 && line.ends_with('\n') => {
                    if tx.send(line).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    });
    rx
}

/// Run `child_test` on the store at `path`, wait until it prints a line for
/// which `armed` holds, let it run `kill_after` more, SIGKILL it, and return
/// every complete line it printed (including those still in the pipe when
/// it died: they were printed after their commit returned).
fn run_and_kill(path: &Path, child_test: &str, round: u64, armed: &str, kill_after: Duration) -> Vec<String> {
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", child_test, "--nocapture", "--test-threads=1"])
        .env(DB_ENV, path)
        .env(SEED_ENV, round.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let mut child = ChildGuard(child);
    let rx = lines(child.0.stdout.take().unwrap());
    let mut printed = Vec::new();

    let started = Instant::now();
    loop {
        let left = FIRST_COMMIT_DEADLINE.saturating_sub(started.elapsed());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(armed);
                printed.push(line);
                if found {
                    break;
                }
            }
            Err(RecvTimeoutError::Timeout) => panic!("round {round}: no {armed:?} within {FIRST_COMMIT_DEADLINE:?}"),
            Err(RecvTimeoutError::Disconnected) => {
                panic!("round {round}: child exited before {armed:?}: {:?}", child.0.wait())
            }
        }
    }
    let kill_at = Instant::now() + kill_after;
    loop {
        match rx.recv_timeout(kill_at.saturating_duration_since(Instant::now())) {
            Ok(line) => printed.push(line),
            Err(RecvTimeoutError::Timeout) => break,
            Err(RecvTimeoutError::Disconnected) => panic!("round {round}: child died on its own: {:?}", child.0.wait()),
        }
    }
    child.0.kill().expect("SIGKILL the child");
    child.0.wait().expect("reap the child");
    let drained = Instant::now();
    loop {
        match rx.recv_timeout(PIPE_CLOSE_DEADLINE.saturating_sub(drained.elapsed())) {
            Ok(line) => printed.push(line),
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => panic!("round {round}: the child's stdout never closed"),
        }
    }
    printed
}

#[test]
fn committed_messages_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("festival.db");
    let mut rng = ChaCha20Rng::seed_from_u64(0xF357);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut committed: Vec<(MessageId, bool)> = Vec::new();

    for round in 0..ROUNDS {
        // Wait for the first commit, then let it run a random while.
        let kill_after = Duration::from_millis(rng.gen_range(KILL_AFTER_MS));
        let printed = run_and_kill(&path, CHILD_TEST, round, MARK, kill_after);
        committed.extend(printed.iter().filter_map(|line| parse(line)));
        runtime.block_on(check_after_crash(&path, &committed, round));
    }
    println!("{} commits survived {ROUNDS} kills", committed.len());
    assert!(committed.len() as u64 > ROUNDS, "each round committed something");
}

async fn check_after_crash(path: &Path, committed: &[(MessageId, bool)], round: u64) {
    let store = Store::open(path).await.unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
    assert_eq!(store.integrity_check().await.unwrap(), "ok", "round {round}");

    for (id, local) in committed {
        let stored = store.get(id).await.unwrap().unwrap_or_else(|| panic!("round {round}: committed {id:?} is lost"));
        let verified = SignedEnvelope::decode(stored.envelope.bytes())
            .unwrap_or_else(|e| panic!("round {round}: {id:?} no longer verifies: {e}"));
        assert_eq!(verified.id(), *id);
        if *local {
            assert!(store.outbox_state(id).await.unwrap().is_some(), "round {round}: {id:?} lost its outbox row");
        }
    }

    // Heads must be exactly what a scan of the messages says.
    let mut scanned: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    festival_store::configure_sqlite();
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options).await.unwrap();
    let rows: Vec<(String, Vec<u8>, i64)> =
        sqlx::query_as("SELECT room, author, seq FROM messages ORDER BY room, author, seq")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    sqlx::Connection::close(conn).await.unwrap();
    for (room, author, seq) in rows {
        let seq = seq as u64;
        let author = PeerId::try_from(author.as_slice()).unwrap().to_hex();
        let (contiguous, max) = scanned.entry((room, author)).or_insert((0, 0));
        if seq == *contiguous + 1 && *contiguous == *max {
            *contiguous = seq;
        }
        *max = seq;
    }
    let heads: BTreeMap<(String, String), (u64, u64)> = store
        .heads()
        .await
        .unwrap()
        .into_iter()
        .map(|h| ((h.room.to_string(), h.author.to_hex()), (h.contiguous, h.max)))
        .collect();
    assert_eq!(heads, scanned, "round {round}: heads disagree with the messages");
    store.close().await;
}

/// The child of the eviction scenario. Returns at once in a normal run.
#[test]
fn crash_evict_child() {
    let Ok(path) = std::env::var(DB_ENV) else {
        return;
    };
    let seed = std::env::var(SEED_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(evict_until_killed(Path::new(&path), seed));
}

async fn evict_until_killed(path: &Path, seed: u64) {
    let store = Store::open(path).await.expect("child opens the store");
    let (me, ben, cat) = (identity(1), identity(2), identity(3));
    match store.create_identity(&me, "me", 1).await {
        Ok(()) | Err(StoreError::AlreadyInitialised) => {}
        Err(e) => panic!("identity: {e}"),
    }
    let (festival, left, dm) = (room("festival"), room("old-stage"), RoomId::direct());
    let mut clock = 1_700_000_000_000u64 + seed * 1_000_000;
    let stdout = std::io::stdout();
    let print = |envs: &[(SignedEnvelope, u8)], kept: bool| {
        let mut out = stdout.lock();
        for (env, _) in envs {
            writeln!(out, "{MARK}{} {}", env.id().to_hex(), if kept { "kept" } else { "evictable" }).unwrap();
        }
        out.flush().unwrap();
    };

    // What may never go: a few of mine (queued in the outbox) and DMs to me.
    let first = store.next_seq(&festival, &me.peer_id()).await.unwrap();
    let mine: Vec<(SignedEnvelope, u8)> =
        (first..first + 5).map(|s| (text(&me, &festival, s, clock + s, "mine, to keep"), 0)).collect();
    store.insert_batch(&mine, clock, true).await.unwrap();
    print(&mine, true);
    let first = store.next_seq(&dm, &ben.peer_id()).await.unwrap();
    let to_me: Vec<(SignedEnvelope, u8)> =
        (first..first + 5).map(|s| (sealed(&ben, &me.peer_id(), s, clock + s, "for me, to keep"), 1)).collect();
    store.insert_batch(&to_me, clock, false).await.unwrap();
    print(&to_me, true);

    let budget = Budget { disk_bytes: 0, per_author_bytes: 1, per_room_bytes: 1 };
    let mut per_chain = EVICTABLE_FIRST / 3;
    loop {
        clock += 100_000;
        let n = std::mem::replace(&mut per_chain, EVICTABLE_PER_PASS / 3);
        let mut others = Vec::new();
        for (author, room) in [(&ben, &festival), (&cat, &left)] {
            let first = store.next_seq(room, &author.peer_id()).await.unwrap();
            others.extend((first..first + n).map(|s| (text(author, room, s, clock + s, "evictable"), 1)));
        }
        let first = store.next_seq(&dm, &ben.peer_id()).await.unwrap();
        others.extend((first..first + n).map(|s| (sealed(&ben, &cat.peer_id(), s, clock + s, "for cat"), 1)));
        store.insert_batch(&others, clock, false).await.unwrap();
        print(&others, false);
        println!("{EVICTING}");
        let evicted = store.evict(&budget, clock).await.unwrap();
        println!("{EVICTED} {}", evicted.messages);
    }
}

/// What the parent remembers between rounds.
#[derive(Default)]
struct Seen {
    /// Acknowledged messages that may never be evicted.
    kept: Vec<MessageId>,
    /// Heads after the previous round, by (room, author).
    heads: BTreeMap<(String, String), (u64, u64)>,
}

fn parse_evict(line: &str) -> Option<(MessageId, bool)> {
    let rest = &line[line.find(MARK)? + MARK.len()..];
    let mut words = rest.split_whitespace();
    let id = words.next()?.parse().ok()?;
    Some((id, words.next()? == "kept"))
}

#[test]
fn nothing_acknowledged_that_eviction_may_not_take_is_lost_to_sigkill_during_eviction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("festival.db");
    let mut rng = ChaCha20Rng::seed_from_u64(0xE71C);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut seen = Seen::default();
    let mut evictable = 0usize;
    let mut killed_evicting = 0u64;

    for round in 0..EVICT_ROUNDS {
        let kill_after = Duration::from_millis(rng.gen_range(KILL_IN_PASS_MS));
        let printed = run_and_kill(&path, EVICT_CHILD_TEST, round, EVICTING, kill_after);
        // Killed mid-pass when the last line is the announcement of a pass.
        let last = printed.iter().rev().find(|l| l.contains(EVICTING) || l.contains(EVICTED));
        killed_evicting += u64::from(last.is_some_and(|l| l.contains(EVICTING)));
        for (id, kept) in printed.iter().filter_map(|line| parse_evict(line)) {
            if kept {
                seen.kept.push(id);
            } else {
                evictable += 1;
            }
        }
        runtime.block_on(check_after_eviction_crash(&path, &mut seen, round));
    }
    println!(
        "{} kept and {evictable} evictable messages over {EVICT_ROUNDS} kills, {killed_evicting} during a pass",
        seen.kept.len()
    );
    assert_eq!(seen.kept.len() as u64, 10 * EVICT_ROUNDS, "each round stored its kept messages first");
    assert!(killed_evicting >= EVICT_ROUNDS / 4, "only {killed_evicting} kills landed inside an eviction pass");
}

async fn check_after_eviction_crash(path: &Path, seen: &mut Seen, round: u64) {
    let store = Store::open(path).await.unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
    assert_eq!(store.integrity_check().await.unwrap(), "ok", "round {round}");
    for id in &seen.kept {
        let stored = store.get(id).await.unwrap().unwrap_or_else(|| panic!("round {round}: kept {id:?} is lost"));
        SignedEnvelope::decode(stored.envelope.bytes()).unwrap();
    }
    let me = identity(1).peer_id();
    assert_eq!(store.unsent().await.unwrap().len() as u64, 5 * (round + 1), "round {round}: my outbox");

    // What is stored, per chain: seqs and bytes, straight from the file.
    festival_store::configure_sqlite();
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options).await.unwrap();
    let rows: Vec<(String, Vec<u8>, i64, i64)> =
        sqlx::query_as("SELECT room, author, seq, length(raw) FROM messages ORDER BY room, author, seq")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    sqlx::Connection::close(conn).await.unwrap();
    let mut stored: BTreeMap<(String, String), (Vec<u64>, u64)> = BTreeMap::new();
    for (room, author, seq, len) in rows {
        let author = PeerId::try_from(author.as_slice()).unwrap().to_hex();
        let chain = stored.entry((room, author)).or_default();
        chain.0.push(seq as u64);
        chain.1 += len as u64;
    }

    let heads: BTreeMap<(String, String), (u64, u64)> = store
        .heads()
        .await
        .unwrap()
        .into_iter()
        .map(|h| ((h.room.to_string(), h.author.to_hex()), (h.contiguous, h.max)))
        .collect();
    for (chain, &(contiguous, max)) in &heads {
        let (old_contiguous, old_max) = seen.heads.get(chain).copied().unwrap_or((0, 0));
        assert!(contiguous >= old_contiguous && max >= old_max, "round {round}: {chain:?} went down");
        assert!(contiguous <= max, "round {round}: {chain:?}");
        let (seqs, bytes) = stored.get(chain).cloned().unwrap_or_default();
        assert!(seqs.last().is_none_or(|&top| top <= max), "round {round}: {chain:?} holds above its max");
        let room: RoomId = chain.0.parse().unwrap();
        let author: PeerId = chain.1.parse().unwrap();
        let usage = store.chain_usage(&room, &author).await.unwrap();
        assert_eq!(usage.messages, seqs.len() as u64, "round {round}: {chain:?} message count");
        assert_eq!(usage.bytes, bytes + seqs.len() as u64 * ROW_OVERHEAD_BYTES, "round {round}: {chain:?} bytes");
        if chain.1 == me.to_hex() {
            // Mine are never evicted and were written without gaps.
            assert_eq!((contiguous, max), (seqs.len() as u64, seqs.len() as u64), "round {round}: my chain");
        }
    }
    assert!(stored.keys().all(|chain| heads.contains_key(chain)), "round {round}: a chain without a head");
    let total: u64 = stored.values().map(|(seqs, _)| seqs.len() as u64).sum();
    assert_eq!(store.usage().await.unwrap().messages, total, "round {round}: usage");
    seen.heads = heads;
    store.close().await;
}
