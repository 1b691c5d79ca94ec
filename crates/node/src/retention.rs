//! Storage that lasts a festival and no longer: a task beside the event loop
//! that deletes expired messages and keeps the store within its budget
//! (festival-store's `expire` and `evict`, each a series of short
//! transactions, so ingest never waits long behind them).
//!
//! It runs every [`SWEEP_EVERY`], and sooner when the engine has committed
//! [`Retention::wake_bytes`] since the last run: a flood cannot push the
//! store far past its budget between two runs.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use festival_store::{Budget, Store};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::clock::now_ms;

/// How often expiry and the budget are checked without a wake-up: expiry
/// is a matter of hours, so a minute late is nothing.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

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
pub fn start(store: Store, r: Retention) -> (RetentionTask, RetentionTrigger) {
    let wake = Arc::new(Notify::new());
    let trigger =
        RetentionTrigger { committed: Arc::new(AtomicU64::new(0)), wake: wake.clone(), threshold: r.wake_bytes() };
    let handle = tokio::spawn(async move {
        loop {
            sweep(&store, &r).await;
            tokio::select! {
                _ = tokio::time::sleep(SWEEP_EVERY) => {}
                _ = wake.notified() => {}
            }
        }
    });
    (RetentionTask { handle }, trigger)
}

/// One run: expired messages first, then the budget.
pub async fn sweep(store: &Store, r: &Retention) {
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
}
