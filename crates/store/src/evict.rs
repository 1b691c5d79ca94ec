//! Budgets and eviction: what a phone keeps when hostile or merely chatty
//! peers send more than it can hold.
//!
//! [`Store::evict`] enforces a [`Budget`] in three passes, each deleting
//! oldest first (by `created_at`) in short transactions (see `victims`):
//! 1. per author: an author (never me) holding more than `per_author_bytes`
//!    over all rooms loses its oldest messages, down to the budget;
//! 2. per room: a room holding more than `per_room_bytes` loses its oldest
//!    evictable messages (in `dm`, that is other people's mail);
//! 3. disk: the budget is on the real files (database, WAL, shared memory).
//!    The WAL gets a share ([`Budget::wal_bytes`]) and checkpoints early
//!    enough to stay in it; the database gets the rest
//!    ([`Budget::data_bytes`]). When the pages SQLite has in use come
//!    within [`Budget::headroom_bytes`] of that, measured on the file (the
//!    per-message estimate of [`crate::usage`] misses index pages left
//!    part-full), messages go by class until they are twice the headroom
//!    under it: expired ones, then others' mail for others and rooms I
//!    have left, then others' messages in rooms I am in. Freed pages stay
//!    in the file for the next messages, unless the file is over its share;
//!    if the files are still over the budget (a reader kept the WAL from
//!    starting over), the WAL is truncated and more go.
//!
//! Never deleted: messages by me, sealed DMs to me, unsent outbox entries.
//! Heads never go down (see [`crate::heads`]).

use festival_core::{PeerId, RoomId};

use crate::error::{clamp_to_sql, peer_from_sql, room_from_sql, Result};
use std::sync::atomic::Ordering;

use crate::files::DiskUsage;
use crate::open::{Store, WAL_CHECKPOINT_PAGES};
use crate::usage::ROW_OVERHEAD_BYTES;
use crate::victims::{delete_oldest, Merge, Source};

pub use crate::victims::Evicted;

const MIB: u64 = 1024 * 1024;

/// What the WAL and its shared-memory index may take on disk, at most: a
/// commit checkpoints once the WAL passes `WAL_CHECKPOINT_PAGES` (20,000
/// pages of 4 KiB plus a 24-byte frame header each: 82.4 MB), the commit
/// that crosses it adds its own pages (a batch of 1,000 messages from 1,000
/// chains dirties ~700, 3 MB), and the index is ~200 KiB. A budget below
/// four times this gives the WAL a quarter of itself instead, and eviction
/// makes the WAL checkpoint early enough to stay in it (see
/// [`Budget::checkpoint_pages`]).
pub const WAL_RESERVE_BYTES: u64 = 96 * MIB;

/// Room the WAL's share keeps for the commit that crosses the checkpoint
/// threshold: several batches' worth of pages.
const COMMIT_MARGIN_BYTES: u64 = 8 * MIB;

/// The fewest WAL pages between checkpoints, however small the budget:
/// each checkpoint costs an fsync of the database.
const MIN_CHECKPOINT_PAGES: u64 = 256;

/// A WAL frame: a page and its 24-byte header.
const WAL_FRAME_BYTES: u64 = 4_096 + 24;

/// Bounds on what the store keeps. All sizes are bytes as
/// [`crate::Usage`] counts them, except `disk_bytes`, which bounds the real
/// files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Database + WAL + shared memory on disk, after eviction.
    pub disk_bytes: u64,
    /// One author, all rooms together (this device's identity is exempt).
    pub per_author_bytes: u64,
    /// One room, all authors together.
    pub per_room_bytes: u64,
}

impl Default for Budget {
    /// Fits a phone: 512 MiB is what a messaging app can take without the
    /// user noticing. Per author 4 MiB: 256 maximum-size sealed DMs, or some
    /// 6,000 text messages of a few hundred bytes, far beyond what a person
    /// writes in a festival, while one hostile key can fill 1/128 of the disk
    /// at most. Per room 256 MiB: half the disk, so one flooded room cannot
    /// push every other room (or the DM mailbox) out.
    fn default() -> Budget {
        Budget { disk_bytes: 512 * MIB, per_author_bytes: 4 * MIB, per_room_bytes: 256 * MIB }
    }
}

impl Budget {
    /// What the WAL (with its shared-memory index) may take:
    /// [`WAL_RESERVE_BYTES`], or a quarter of a budget below 384 MiB, so a
    /// small budget still keeps data.
    pub fn wal_bytes(&self) -> u64 {
        WAL_RESERVE_BYTES.min(self.disk_bytes / 4)
    }

    /// What the database file may take: the disk budget less the WAL's
    /// share. Eviction holds it against the file's real size.
    pub fn data_bytes(&self) -> u64 {
        self.disk_bytes.saturating_sub(self.wal_bytes())
    }

    /// WAL pages after which a commit checkpoints, so that the WAL stays in
    /// its share (leaving [`COMMIT_MARGIN_BYTES`] for the commit that
    /// crosses the threshold): the store's usual 20,000 pages under a
    /// budget of 384 MiB or more, fewer under a smaller one.
    pub fn checkpoint_pages(&self) -> u32 {
        let pages = self.wal_bytes().saturating_sub(COMMIT_MARGIN_BYTES) / WAL_FRAME_BYTES;
        let pages = pages.clamp(MIN_CHECKPOINT_PAGES, u64::from(WAL_CHECKPOINT_PAGES));
        u32::try_from(pages).unwrap_or(WAL_CHECKPOINT_PAGES)
    }

    /// How far below [`Budget::data_bytes`] eviction keeps the pages in
    /// use: a pass starts when they come within this of it and evicts to
    /// twice this below it. Ingest between two passes fills the pages freed
    /// before the file grows, so the file itself stays under the budget and
    /// the space of evicted messages is reused in place (giving it back to
    /// the file system and growing again would rewrite pages for nothing).
    /// 1/32 of the share: 13 MiB of 416, ~25,000 messages.
    pub fn headroom_bytes(&self) -> u64 {
        self.data_bytes() / 32
    }
}

/// Rounds of "give back free pages, truncate the WAL, evict the rest" when
/// the files are still over the budget after eviction by estimate. Each
/// round evicts the measured excess, so two or three suffice; the bound
/// stops a store that holds only protected messages from looping.
const FIT_ROUNDS: usize = 8;

impl Store {
    /// Whether [`Store::evict`] would delete for the disk budget now: the
    /// database's pages in use within [`Budget::headroom_bytes`] of
    /// [`Budget::data_bytes`], or the files over `disk_bytes`. Two cheap
    /// reads, for a task that decides whether to run eviction early.
    pub async fn over_budget(&self, budget: &Budget) -> Result<bool> {
        let pages = self.pages().await?;
        if pages.used_bytes() > budget.data_bytes().saturating_sub(budget.headroom_bytes()) {
            return Ok(true);
        }
        Ok(self.disk_usage().await?.total() > budget.disk_bytes)
    }

    /// Delete until `budget` holds; see the module docs for the order.
    /// `now_ms` caps the expiry cutoff recorded by [`Store::expire`], so a
    /// clock that once ran ahead cannot make the present count as expired.
    pub async fn evict(&self, budget: &Budget, now_ms: u64) -> Result<Evicted> {
        self.fit_wal(budget).await?;
        let mut done = Evicted::default();
        for (author, over) in self.authors_over(budget.per_author_bytes).await? {
            let chains = self.chains_of(&author).await?;
            let mut merge = Merge::new(chains.into_iter().map(Source::chain).collect());
            done.add(delete_oldest(self, &mut merge, over).await?);
        }
        for (room, over) in self.rooms_over(budget.per_room_bytes).await? {
            let mut merge = Merge::new(vec![Source::room(room, None)]);
            done.add(delete_oldest(self, &mut merge, over).await?);
        }
        let expired_before = clamp_to_sql(self.expire_before().await?.min(now_ms));
        done.add(self.fit_data(budget, expired_before).await?);
        done.add(self.fit_files(budget, expired_before).await?);
        if done.messages > 0 {
            tracing::debug!(messages = done.messages, bytes = done.bytes, "evicted");
        }
        Ok(done)
    }

    /// Free `need` bytes, class by class, oldest first within a class.
    async fn evict_by_class(&self, need: u64, expired_before: i64) -> Result<Evicted> {
        let stored = self.rooms_with_messages().await?;
        let joined: Vec<RoomId> = sqlx::query_as::<_, (String,)>("SELECT room_id FROM rooms")
            .fetch_all(&self.reader)
            .await?
            .into_iter()
            .map(|(room,)| room_from_sql("rooms", room))
            .collect::<Result<_>>()?;
        let class_of = |room: &RoomId| {
            let stays = room.as_str() == RoomId::FESTIVAL || room.is_announcements() || joined.contains(room);
            if room.is_direct() || !stays {
                1
            } else {
                2
            }
        };
        let mut done = Evicted::default();
        // Class 0: expired, in every room.
        if expired_before > 0 {
            let sources = stored.iter().map(|room| Source::room(room.clone(), Some(expired_before))).collect();
            done.add(delete_oldest(self, &mut Merge::new(sources), need).await?);
        }
        // Class 1: others' mail for others (the DM room holds nothing else
        // that may go) and rooms I have left; class 2: rooms I am in.
        for class in [1, 2] {
            if done.bytes >= need {
                break;
            }
            let sources =
                stored.iter().filter(|room| class_of(room) == class).map(|room| Source::room(room.clone(), None));
            done.add(delete_oldest(self, &mut Merge::new(sources.collect()), need - done.bytes).await?);
        }
        Ok(done)
    }

    /// Keep the database's pages in use [`Budget::headroom_bytes`] under
    /// [`Budget::data_bytes`], measured on the file (what the rows and
    /// their indexes really take, not [`ROW_OVERHEAD_BYTES`]' estimate), and
    /// the file itself under `data_bytes`.
    async fn fit_data(&self, budget: &Budget, expired_before: i64) -> Result<Evicted> {
        let (limit, headroom) = (budget.data_bytes(), budget.headroom_bytes());
        let mut done = Evicted::default();
        let mut target = limit.saturating_sub(headroom);
        for _ in 0..FIT_ROUNDS {
            let pages = self.pages().await?;
            if pages.used_bytes() <= target {
                break;
            }
            // Once over, down to twice the headroom below, so passes do not
            // evict a few messages each. Deleting frees fewer pages than
            // the rows' share (index pages are left part-full), so the
            // excess is converted to accounted bytes at the measured ratio
            // and measured again.
            target = limit.saturating_sub(2 * headroom);
            let usage = self.usage().await?.bytes;
            let excess = pages.used_bytes() - target;
            let need = u64::try_from(u128::from(excess) * u128::from(usage) / u128::from(pages.used_bytes().max(1)))
                .unwrap_or(u64::MAX)
                .max(1);
            let more = self.evict_by_class(need, expired_before).await?;
            if more.messages == 0 {
                tracing::warn!(used = pages.used_bytes(), limit, "database over its budget with nothing left to evict");
                break;
            }
            done.add(more);
        }
        // Only pages beyond the limit go back to the file system: the rest
        // are reused by the next messages.
        let pages = self.pages().await?;
        if pages.file_bytes() > limit && pages.free_bytes() > 0 {
            self.give_back((pages.file_bytes() - limit).min(pages.free_bytes())).await?;
        }
        Ok(done)
    }

    /// Make the writer checkpoint early enough for the WAL to stay in its
    /// share of `budget`, and truncate the WAL file to that share whenever
    /// it starts over. Set once per budget.
    async fn fit_wal(&self, budget: &Budget) -> Result<()> {
        let pages = budget.checkpoint_pages();
        if self.wal_pages.load(Ordering::Relaxed) == pages {
            return Ok(());
        }
        let script = format!(
            "PRAGMA wal_autocheckpoint = {pages}; PRAGMA journal_size_limit = {};",
            clamp_to_sql(budget.wal_bytes())
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(script)).execute(&self.writer).await?;
        // Noted once set: a failed PRAGMA is tried again at the next pass.
        self.wal_pages.store(pages, Ordering::Relaxed);
        Ok(())
    }

    /// Bring the real files under the disk budget: free pages back to the
    /// file system, the WAL truncated, and more messages evicted if still
    /// over (a reader kept the WAL from starting over, say).
    ///
    /// A WAL past its share ([`Budget::wal_bytes`]) is truncated even when
    /// the files fit: a checkpoint copies its pages into the database before
    /// the WAL shrinks, so the files briefly take both. Left to grow (a
    /// reader held it while the writer's threshold passed), a WAL of 50 MiB
    /// made the files of a 64 MiB store reach 88 MiB during that checkpoint.
    async fn fit_files(&self, budget: &Budget, expired_before: i64) -> Result<Evicted> {
        let disk_bytes = budget.disk_bytes;
        if self.disk_usage().await?.wal_bytes > budget.wal_bytes() {
            self.truncate_wal().await?;
        }
        let mut done = Evicted::default();
        for _ in 0..FIT_ROUNDS {
            let files = self.disk_usage().await?;
            if files.total() <= disk_bytes {
                break;
            }
            let over = files.total() - disk_bytes;
            if files.free_bytes > 0 {
                self.give_back(files.free_bytes.min(over)).await?;
            }
            self.truncate_wal().await?;
            let files: DiskUsage = self.disk_usage().await?;
            if files.total() <= disk_bytes {
                break;
            }
            let more = self.evict_by_class(files.total() - disk_bytes, expired_before).await?;
            if more.messages == 0 {
                tracing::warn!(total = files.total(), disk_bytes, "over the disk budget with nothing left to evict");
                break;
            }
            done.add(more);
        }
        Ok(done)
    }

    /// Authors other than me whose messages in all rooms exceed `budget`,
    /// with by how much. One pass over `heads` (one row per chain), on a
    /// reader.
    async fn authors_over(&self, budget: u64) -> Result<Vec<(PeerId, u64)>> {
        let rows: Vec<(Vec<u8>, i64)> = sqlx::query_as(
            "SELECT author, sum(raw_bytes) + sum(messages) * ?1 AS bytes FROM heads
             WHERE author NOT IN (SELECT peer_id FROM identity)
             GROUP BY author HAVING bytes > ?2",
        )
        .bind(clamp_to_sql(ROW_OVERHEAD_BYTES))
        .bind(clamp_to_sql(budget))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(|(author, bytes)| Ok((peer_from_sql("heads", &author)?, over(bytes, budget)))).collect()
    }

    /// Rooms whose messages exceed `budget`, with by how much.
    async fn rooms_over(&self, budget: u64) -> Result<Vec<(RoomId, u64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT room, raw_bytes + messages * ?1 AS bytes FROM room_usage WHERE bytes > ?2 ORDER BY room",
        )
        .bind(clamp_to_sql(ROW_OVERHEAD_BYTES))
        .bind(clamp_to_sql(budget))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(|(room, bytes)| Ok((room_from_sql("room_usage", room)?, over(bytes, budget)))).collect()
    }

    /// The chains (one per room) where `author` has messages stored.
    async fn chains_of(&self, author: &PeerId) -> Result<Vec<i64>> {
        let rows: Vec<(i64,)> =
            sqlx::query_as("SELECT chain FROM heads WHERE author = ? AND messages > 0 ORDER BY chain")
                .bind(&author.as_bytes()[..])
                .fetch_all(&self.reader)
                .await?;
        Ok(rows.into_iter().map(|(chain,)| chain).collect())
    }

    /// Every room with messages stored.
    pub(crate) async fn rooms_with_messages(&self) -> Result<Vec<RoomId>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT room FROM room_usage WHERE messages > 0 ORDER BY room")
            .fetch_all(&self.reader)
            .await?;
        rows.into_iter().map(|(room,)| room_from_sql("room_usage", room)).collect()
    }
}

/// How far a sum read from SQLite is over a budget (sums are never negative).
fn over(bytes: i64, budget: u64) -> u64 {
    u64::try_from(bytes).unwrap_or(0).saturating_sub(budget)
}
