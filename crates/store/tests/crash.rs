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
//! SIGKILL is a process crash. A power loss is stronger (the OS cache is lost
//! too) and cannot be simulated here; `synchronous = FULL` is what covers it.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use common::{identity, room, text};
use festival_core::{MessageId, PeerId, SignedEnvelope};
use festival_store::{Inserted, Store};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

const DB_ENV: &str = "FESTIVAL_CRASH_DB";
const SEED_ENV: &str = "FESTIVAL_CRASH_SEED";
const CHILD_TEST: &str = "crash_child";
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

#[test]
fn committed_messages_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("festival.db");
    let mut rng = ChaCha20Rng::seed_from_u64(0xF357);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut committed: Vec<(MessageId, bool)> = Vec::new();

    for round in 0..ROUNDS {
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
            .env(DB_ENV, &path)
            .env(SEED_ENV, round.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the child");
        let mut child = ChildGuard(child);
        let rx = lines(child.0.stdout.take().unwrap());
        let before = committed.len();

        // Wait for the first commit, then let it run a random while.
        let started = Instant::now();
        while committed.len() == before {
            let left = FIRST_COMMIT_DEADLINE.saturating_sub(started.elapsed());
            match rx.recv_timeout(left) {
                Ok(line) => committed.extend(parse(&line)),
                Err(RecvTimeoutError::Timeout) => panic!("round {round}: no commit within {FIRST_COMMIT_DEADLINE:?}"),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("round {round}: child exited before committing: {:?}", child.0.wait())
                }
            }
        }
        let kill_at = Instant::now() + Duration::from_millis(rng.gen_range(KILL_AFTER_MS));
        loop {
            match rx.recv_timeout(kill_at.saturating_duration_since(Instant::now())) {
                Ok(line) => committed.extend(parse(&line)),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("round {round}: child died on its own: {:?}", child.0.wait())
                }
            }
        }
        child.0.kill().expect("SIGKILL the child");
        child.0.wait().expect("reap the child");
        // Lines already in the pipe when it died were printed after their
        // commit returned: they count too.
        let drained = Instant::now();
        loop {
            match rx.recv_timeout(PIPE_CLOSE_DEADLINE.saturating_sub(drained.elapsed())) {
                Ok(line) => committed.extend(parse(&line)),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("round {round}: the child's stdout never closed"),
            }
        }

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
