//! Storage that lasts a festival and no longer: a task beside the event loop
//! that deletes expired messages and keeps the store within its budget
//! (festival-store's `expire` and `evict`, each a series of short
//! transactions, so ingest never waits long behind them).
//!
//! It runs every [`SWEEP_EVERY`], and sooner when the engine has committed
//! [`Retention::wake_bytes`] since the last run: a flood cannot push the
//! store far past its budget between two runs. And while anything is being
//! committed it looks at the store's size every [`CHECK_EVERY`], and runs
//! if the store is over its budget: the last commits of a burst, too small
//! to wake it, would otherwise keep the store over its budget for a minute
//! (small transactions grow the WAL by several times their messages' bytes).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use festival_store::{Budget, MessageStore};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::clock::now_ms;

/// How often expiry and the budget are checked without a wake-up: expiry
/// is a matter of hours, so a minute late is nothing.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// How often the task looks at the store's size while commits come in
/// (see the module docs): two cheap reads (sums per room, file sizes).
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Rows one expiry transaction deletes (10-20 ms of the write lock at a
/// million messages, measured by festival-store).
const EXPIRE_ROWS: u64 = 1_000;

/// What to keep and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub budget: Budget,
    /// Messages created longer ago are deleted (the festival's lifetime;
    /// the core refuses and does not serve them either).
    pub lifetime_ms: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { budget: Budget::default(), lifetime_ms: festival_core::sync::DEFAULT_MESSAGE_LIFETIME_MS }
    }
}

impl Retention {
    /// A disk budget in MiB (per author and per room scaled from the
    /// default phone budget: 1/128 and 1/2 of it) and a lifetime in hours.
    pub fn with_limits(disk_budget_mb: u64, lifetime_hours: u64) -> Retention {
        const MIB: u64 = 1024 * 1024;
        let disk = disk_budget_mb.saturating_mul(MIB);
        Retention {
            budget: Budget { disk_bytes: disk, per_author_bytes: (disk / 128).max(MIB), per_room_bytes: disk / 2 },
            lifetime_ms: lifetime_hours.saturating_mul(3_600_000),
        }
    }

    /// Bytes committed that wake the task early: 1/64 of the budget (8 MiB
    /// of 512 MiB), so the store overshoots its budget by about that much.
    pub fn wake_bytes(&self) -> u64 {
        (self.budget.disk_bytes / 64).max(1)
    }
}

/// The engine's side of the task: counts what it commits, wakes the task.
#[derive(Clone)]
pub struct RetentionTrigger {
    committed: Arc<AtomicU64>,
    wake: Arc<Notify>,
    threshold: u64,
}

impl RetentionTrigger {
    pub fn committed(&self, bytes: u64) {
        if self.committed.fetch_add(bytes, Relaxed) + bytes >= self.threshold {
            self.committed.store(0, Relaxed);
            self.wake.notify_one();
        }
    }
}

/// The running task; aborted when dropped.
pub struct RetentionTask {
    handle: JoinHandle<()>,
}

impl Drop for RetentionTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Start the task on `store`.
pub fn start<S: MessageStore>(store: S, r: Retention) -> (RetentionTask, RetentionTrigger) {
    let wake = Arc::new(Notify::new());
    let committed = Arc::new(AtomicU64::new(0));
    let trigger = RetentionTrigger { committed: committed.clone(), wake: wake.clone(), threshold: r.wake_bytes() };
    let handle = tokio::spawn(async move {
        loop {
            // What is committed from here on is for the next run.
            committed.store(0, Relaxed);
            sweep(&store, &r).await;
            wait_for_next_run(&store, &r, &wake, &committed).await;
        }
    });
    (RetentionTask { handle }, trigger)
}

/// Whether eviction would delete now (the store's pages or files at or
/// over the budget); a store that cannot be read is left to the next run.
async fn over_budget<S: MessageStore>(store: &S, r: &Retention) -> bool {
    store.over_budget(&r.budget).await.unwrap_or(false)
}

/// Until [`SWEEP_EVERY`] has passed or the engine wakes the task, or,
/// looked at every [`CHECK_EVERY`] once anything has been committed, the
/// store is over its budget.
async fn wait_for_next_run<S: MessageStore>(store: &S, r: &Retention, wake: &Notify, committed: &AtomicU64) {
    let until = tokio::time::Instant::now() + SWEEP_EVERY;
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(left.min(CHECK_EVERY)) => {}
            _ = wake.notified() => return,
        }
        if committed.load(Relaxed) > 0 && over_budget(store, r).await {
            return;
        }
    }
}

/// One run: expired messages first, then the budget.
pub async fn sweep<S: MessageStore>(store: &S, r: &Retention) {
    let now = now_ms();
    let cutoff = now.saturating_sub(r.lifetime_ms);
    let mut expired = 0;
    loop {
        match store.expire(cutoff, EXPIRE_ROWS).await {
            Ok(n) => {
                expired += n;
                if n < EXPIRE_ROWS {
                    break;
                }
                // Let queued ingest take the write lock between transactions.
                tokio::task::yield_now().await;
            }
            Err(e) => {
                tracing::warn!(%e, "expiring messages failed");
                break;
            }
        }
    }
    match store.evict(&r.budget, now).await {
        Ok(e) if e.messages > 0 || expired > 0 => {
            tracing::info!(expired, evicted = e.messages, freed = e.bytes, "store kept within its budget")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(%e, "evicting for the budget failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_defaults_are_the_phone_defaults() {
        assert_eq!(Retention::with_limits(512, 168), Retention::default());
        assert_eq!(Retention::default().wake_bytes(), 8 * 1024 * 1024);
    }

    /// The last commits of a burst are smaller than a wake-up, yet they take
    /// a store at its budget over it: it is back under within seconds, not
    /// at the next minute's run.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_taken_over_its_budget_by_a_small_commit_is_back_under_it_within_seconds() {
        use festival_core::{Draft, Identity, Kind, RoomId, SignedEnvelope};
        const MIB: u64 = 1024 * 1024;
        let dir = tempfile::tempdir().unwrap();
        let store = festival_store::Store::open(&dir.path().join("festival.db")).await.unwrap();
        let r = Retention {
            budget: Budget { disk_bytes: 4 * MIB, per_author_bytes: 4 * MIB, per_room_bytes: 4 * MIB },
            lifetime_ms: 3_600_000,
        };
        let (_task, trigger) = start(store.clone(), r);
        let author = Identity::generate(&mut rand_core::OsRng);
        let mut seq = 0;
        let mut put = |n: usize| {
            let now = now_ms();
            let items: Vec<(SignedEnvelope, u8)> = (0..n)
                .map(|_| {
                    seq += 1;
                    let body = format!("{seq} {}", "x".repeat(3_990)).into_bytes();
                    let draft = Draft { seq, room: RoomId::festival(), kind: Kind::Text, created_at: now, body };
                    (SignedEnvelope::sign(&author, draft).unwrap(), 1)
                })
                .collect();
            items
        };
        let over = || async { store.over_budget(&r.budget).await.unwrap() };
        // Twice the budget, each batch a wake-up's worth (so nothing is
        // left over towards the next one).
        for _ in 0..40 {
            store.insert_batch(&put(50), now_ms(), false).await.unwrap();
            trigger.committed(r.wake_bytes());
        }
        let by = tokio::time::Instant::now() + Duration::from_secs(20);
        while over().await {
            assert!(tokio::time::Instant::now() < by, "the flood is evicted as it comes");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Commits of ten messages (40 KiB, less than a wake-up: 64 KiB)
        // until one takes the store over its budget again.
        let mut commits = 0;
        loop {
            store.insert_batch(&put(10), now_ms(), false).await.unwrap();
            trigger.committed(1);
            commits += 1;
            if over().await {
                break;
            }
            assert!(commits < 100, "4 MiB of small commits never took the store over its budget");
        }
        let since = tokio::time::Instant::now();
        while over().await {
            assert!(since.elapsed() < Duration::from_secs(10), "still over its budget after 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        store.close().await;
    }
}
