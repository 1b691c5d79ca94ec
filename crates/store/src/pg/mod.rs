//! The store on PostgreSQL: the mailbox that the relay instances of a
//! cluster share (`festival-relay --store postgres://...`).
//!
//! It keeps what the SQLite store keeps (see [`crate::MessageStore`]) in
//! one database that many instances write at once:
//! - **Ingest** is one transaction per batch. It first upserts the head
//!   rows of the batch's chains, in one order every instance uses, which
//!   locks them: two instances storing into one chain take turns, and a
//!   second copy of an envelope (from another instance at the same moment)
//!   waits for the first to commit, then finds it and is a duplicate. A
//!   commit that returned is durable (PostgreSQL's `synchronous_commit`
//!   is on by default); an ack sent after it cannot be lost by a crash of
//!   the instance or the database.
//! - Deadlocks (an ingest and an eviction locking heads in different
//!   orders) and serialisation failures roll the transaction back whole;
//!   it is retried a few times ([`RETRIES`]).
//! - **Budgets**: the database is shared and its files are not ours to
//!   measure, so [`crate::Budget::disk_bytes`] bounds the bytes the store
//!   accounts ([`crate::Usage`]: raw envelopes plus a fixed per-row
//!   overhead), with the same headroom and the same eviction order as the
//!   SQLite store: per author, per room, then expired, others' mail and
//!   rooms left, then the rest; never the relay's own messages, DMs to it,
//!   or unsent outbox entries.
//! - What only a device needs (DM history pages, unread counts beyond the
//!   room list, per-peer sync times, the peers list) is not here.
//!
//! The schema lives in `migrations-pg/`, numbered; instances that start at
//! once migrate under sqlx's advisory lock.

mod evict;
mod ingest;
mod read;
pub mod server;
mod tail;

use std::sync::Arc;
use std::time::Duration;

use festival_core::body::check_name;
use festival_core::{Identity, MessageId, PeerId, ReceiptStatus, RoomId, SignedEnvelope};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::error::{from_sql, peer_from_sql, to_sql, Result, StoreError};
use crate::identity::local_identity;
use crate::receipts::{status_code, status_from_code};
use crate::rooms::room_record;
use crate::{LocalIdentity, RoomRecord, Usage, MAX_EQUIVOCATION_BYTES, MAX_EQUIVOCATION_PROOFS};

pub use server::TempServer;
pub use tail::{CommitCursor, CommittedRef};

/// Times a transaction that PostgreSQL rolled back for a deadlock or a
/// serialisation failure is tried again before the error is returned.
pub const RETRIES: usize = 5;

/// Connections per instance. Ingest batches, sync reads and the retention
/// task each hold one for a transaction at a time; PostgreSQL's default of
/// 100 connections serves ten instances.
const CONNECTIONS: u32 = 8;

/// How long to wait for a connection from the pool (and so for the
/// database to answer) before failing the operation: short, since a relay's
/// event loop waits on it, and a node sends again what was not
/// acknowledged.
pub(crate) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// The `application_name` of the connection batches are stored on (in
/// `pg_stat_activity`).
pub const WRITER_NAME: &str = "festival-store writer";

/// Longest a statement may run on the server before it is cancelled.
const STATEMENT_TIMEOUT: &str = "10s";

/// The store in one PostgreSQL database. Cheap to clone: clones share the
/// pool.
#[derive(Clone, Debug)]
pub struct PgStore {
    pub(crate) pool: PgPool,
    /// Where batches are stored (see `ingest.rs`).
    writer: ingest::Writer,
    /// Rows of `messages` the committed order's readers went past because
    /// they could not be read (see `tail.rs`).
    unreadable: Arc<std::sync::atomic::AtomicU64>,
}

/// Whether PostgreSQL rolled the transaction back for something a retry can
/// fix: a deadlock (40P01) or a serialisation failure (40001).
pub(crate) fn retryable(e: &StoreError) -> bool {
    match e {
        StoreError::Db(sqlx::Error::Database(db)) => matches!(db.code().as_deref(), Some("40P01" | "40001")),
        _ => false,
    }
}

/// Run `op` (one transaction) until it succeeds, fails for another reason,
/// or has been rolled back [`RETRIES`] times.
pub(crate) async fn with_retries<T, F, Fut>(mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut tries = 0;
    loop {
        match op().await {
            Err(e) if retryable(&e) && tries < RETRIES => {
                tries += 1;
                tracing::debug!(error = %e, tries, "transaction rolled back, trying again");
            }
            other => return other,
        }
    }
}

/// The hour an identity's room allowance counts in, ms.
const ROOM_ALLOWANCE_WINDOW_MS: i64 = 3_600_000;

/// How long a room creation waits for another instance's lock on the
/// allowances before it gives up (an error: the room waits and is tried
/// again): the hub waits for it.
const ROOM_ALLOWANCE_LOCK_TIMEOUT: &str = "500ms";

/// What [`PgStore::take_room_allowance`] gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomAllowance {
    /// The cluster carries the room already: joining it costs nothing.
    Known,
    Allowed,
    /// The identity's hourly allowance is spent, for this many ms more.
    IdentitySpent {
        for_ms: u64,
    },
    /// The relay's budget is spent; its next creation is due in this many ms.
    RelaySpent {
        for_ms: u64,
    },
}

impl PgStore {
    /// Connect to the database at `url` (`postgres://user@host/db`, or a
    /// socket directory as `?host=/path`) and bring its schema up to date.
    pub async fn connect(url: &str) -> Result<PgStore> {
        let options: PgConnectOptions = url.parse()?;
        PgStore::connect_with(options).await
    }

    /// [`PgStore::connect`] with options built by the caller.
    pub async fn connect_with(options: PgConnectOptions) -> Result<PgStore> {
        let options = options.options([("statement_timeout", STATEMENT_TIMEOUT)]);
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone().options([
                // sqlx prepares every statement once per connection, and
                // PostgreSQL then reuses a generic plan, made without the
                // arguments. For the lookups by a list of ids that cost 3.7
                // ms a lookup at 30,000 rows in the relay-cluster benchmark
                // (PostgreSQL's CPU was what saturated); with a plan for
                // each execution, 0.03 ms. Planning these small statements
                // costs less than that.
                ("plan_cache_mode", "force_custom_plan"),
            ]))
            .await?;
        sqlx::migrate!("./migrations-pg").run(&pool).await.map_err(StoreError::Migrate)?;
        // Ingest's statements have one plan whatever their arguments, and
        // planning them each time was ~45 % of their cost in PostgreSQL
        // (`pg_stat_statements` under `festival-bench relay-cluster`): its
        // connection reuses generic plans (see `ingest.rs`).
        let writer = ingest::Writer::new(
            options.application_name(WRITER_NAME).options([("plan_cache_mode", "force_generic_plan")]),
        );
        Ok(PgStore { pool, writer, unreadable: Arc::default() })
    }

    /// Take one room creation, for every instance of a cluster at once
    /// (migrations-pg/0003_room_allowances.sql): nothing if the cluster
    /// carries `room` already ([`RoomAllowance::Known`]); else one from
    /// `peer`'s allowance of `per_hour` in its current hour and one from
    /// the relay's budget (a token bucket of `per_minute`, refilled at that
    /// rate), both or neither. Times are PostgreSQL's clock, the one clock
    /// every instance shares (`at` overrides it, for tests); a time stored
    /// ahead of it (a clock set back since) is not waited for. The
    /// identity's row is locked before the budget's in every path; a
    /// refusal for the budget writes nothing; waiting for a lock ends
    /// after [`ROOM_ALLOWANCE_LOCK_TIMEOUT`] with an error.
    pub async fn take_room_allowance(
        &self,
        peer: &PeerId,
        room: &RoomId,
        per_hour: u32,
        per_minute: u32,
        at: Option<u64>,
    ) -> Result<RoomAllowance> {
        let at = at.map(|t| to_sql("at", t)).transpose()?;
        let cap = f64::from(per_minute);
        with_retries(|| async {
            let mut tx = self.pool.begin().await?;
            let (_, known, db_now): (String, bool, i64) = sqlx::query_as(
                "SELECT set_config('lock_timeout', $2, true),
                        EXISTS (SELECT 1 FROM rooms WHERE room_id = $1),
                        (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
            )
            .bind(room.as_str())
            .bind(ROOM_ALLOWANCE_LOCK_TIMEOUT)
            .fetch_one(&mut *tx)
            .await?;
            if known {
                tx.commit().await?;
                return Ok(RoomAllowance::Known);
            }
            let now = at.unwrap_or(db_now);
            // The identity's hour, locked: a new one once it has ended, or
            // if it would begin after now.
            let (created, window_start): (i32, i64) = sqlx::query_as(
                "INSERT INTO room_allowances AS a (peer_id, window_start, created) VALUES ($1, $2, 0)
                 ON CONFLICT (peer_id) DO UPDATE SET
                     window_start = CASE WHEN $2 - a.window_start >= $3 OR a.window_start > $2
                                         THEN $2 ELSE a.window_start END,
                     created = CASE WHEN $2 - a.window_start >= $3 OR a.window_start > $2
                                    THEN 0 ELSE a.created END
                 RETURNING created, window_start",
            )
            .bind(peer.as_bytes().as_slice())
            .bind(now)
            .bind(ROOM_ALLOWANCE_WINDOW_MS)
            .fetch_one(&mut *tx)
            .await?;
            if i64::from(created) >= i64::from(per_hour) {
                tx.commit().await?;
                let left = (window_start + ROOM_ALLOWANCE_WINDOW_MS - now).max(0);
                return Ok(RoomAllowance::IdentitySpent { for_ms: left.unsigned_abs() });
            }
            // The relay's bucket, locked and refilled to now; a time stored
            // more than a minute ahead of now is taken as now.
            let (tokens,): (f64,) = sqlx::query_as(
                "INSERT INTO room_budget AS b (singleton, tokens, at) VALUES (1, $1, $2)
                 ON CONFLICT (singleton) DO UPDATE SET
                     tokens = least($1, b.tokens + greatest(0, $2 - b.at) * $1 / 60000.0),
                     at = CASE WHEN b.at > $2 + 60000 THEN $2 ELSE greatest(b.at, $2) END
                 RETURNING tokens",
            )
            .bind(cap)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            if tokens < 1.0 {
                tx.rollback().await?;
                // When the next token is due at this rate.
                let for_ms = if cap > 0.0 { ((1.0 - tokens) * 60_000.0 / cap).ceil() as u64 } else { 60_000 };
                return Ok(RoomAllowance::RelaySpent { for_ms });
            }
            sqlx::query(
                "WITH taken AS (UPDATE room_budget SET tokens = tokens - 1 WHERE singleton = 1)
                 UPDATE room_allowances SET created = created + 1 WHERE peer_id = $1",
            )
            .bind(peer.as_bytes().as_slice())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(RoomAllowance::Allowed)
        })
        .await
    }

    /// Forget the allowances of identities whose hour has ended by
    /// PostgreSQL's clock (or `at`, for tests): they would start a new one
    /// anyway. Returns how many.
    pub async fn prune_room_allowances(&self, at: Option<u64>) -> Result<u64> {
        let at = at.map(|t| to_sql("at", t)).transpose()?;
        let done = sqlx::query(
            "DELETE FROM room_allowances
             WHERE window_start <= coalesce($1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint) - $2",
        )
        .bind(at)
        .bind(ROOM_ALLOWANCE_WINDOW_MS)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Whether the database answers now (for a health check).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    pub async fn identity(&self) -> Result<Option<LocalIdentity>> {
        let row: Option<(Vec<u8>, Vec<u8>, String, i64)> =
            sqlx::query_as("SELECT secret, peer_id, name, created_at FROM identity WHERE singleton = 1")
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(secret, peer_id, name, created_at)| local_identity(&secret, &peer_id, name, created_at)).transpose()
    }

    pub async fn create_identity(&self, identity: &Identity, name: &str, now: u64) -> Result<()> {
        check_name(name).map_err(StoreError::BadName)?;
        let done = sqlx::query(
            "INSERT INTO identity (singleton, secret, peer_id, name, created_at) VALUES (1, $1, $2, $3, $4)
             ON CONFLICT (singleton) DO NOTHING",
        )
        .bind(&identity.secret_bytes()[..])
        .bind(&identity.peer_id().as_bytes()[..])
        .bind(name)
        .bind(to_sql("created_at", now)?)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::AlreadyInitialised);
        }
        Ok(())
    }

    /// A peer's display name, as a verified profile announced it.
    pub async fn set_peer_name(&self, peer: &PeerId, name: &str) -> Result<()> {
        sqlx::query("INSERT INTO peers (peer_id, name) VALUES ($1, $2) ON CONFLICT (peer_id) DO UPDATE SET name = $2")
            .bind(&peer.as_bytes()[..])
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn join_room(&self, room: &RoomId, display_name: &str, at: u64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO rooms (room_id, name, joined_at, last_read_at) VALUES ($1, $2, $3, $3)
             ON CONFLICT (room_id) DO NOTHING",
        )
        .bind(room.as_str())
        .bind(display_name)
        .bind(to_sql("at", at)?)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn leave_room(&self, room: &RoomId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM rooms WHERE room_id = $1").bind(room.as_str()).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Rooms joined, as [`crate::Store::rooms`] lists them (unread: texts
    /// and DMs to me by others since `last_read_at`, by receive time). A
    /// relay mutes nothing and blocks nobody.
    pub async fn rooms(&self) -> Result<Vec<RoomRecord>> {
        let rows: Vec<crate::rooms::RoomRow> = sqlx::query_as(
            "SELECT r.room_id, r.name, r.joined_at, r.last_read_at,
                 (SELECT count(*) FROM messages m
                  WHERE m.room = r.room_id AND m.kind IN (0, 2, 6, 9) AND m.received_at > r.last_read_at
                    AND m.author IS DISTINCT FROM (SELECT peer_id FROM identity)
                    AND (m.kind <> 2 OR m.recipient = (SELECT peer_id FROM identity))),
                 (SELECT max(m.received_at) FROM messages m WHERE m.room = r.room_id AND m.kind IN (0, 2, 6, 9)),
                 0::bigint
             FROM rooms r ORDER BY r.joined_at, r.room_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(room_record).collect()
    }

    pub async fn mark_sent(&self, id: &MessageId, path: &str, at: u64) -> Result<bool> {
        let done = sqlx::query("UPDATE outbox SET sent_at = $1, path = $2 WHERE message_id = $3 AND sent_at IS NULL")
            .bind(to_sql("sent_at", at)?)
            .bind(path)
            .bind(&id.as_bytes()[..])
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 1 {
            return Ok(true);
        }
        let held: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM outbox WHERE message_id = $1")
            .bind(&id.as_bytes()[..])
            .fetch_optional(&self.pool)
            .await?;
        match held {
            Some(_) => Ok(false),
            None => Err(StoreError::NotInOutbox(*id)),
        }
    }

    /// Receipts, as [`crate::Store::add_receipts`]: the earliest time of
    /// each stays. One statement for all of `ids`.
    pub async fn add_receipts(&self, from: PeerId, status: ReceiptStatus, ids: &[MessageId], at: u64) -> Result<()> {
        let at = to_sql("at", at)?;
        // One row per id: a statement may not update one row twice.
        let mut unique: Vec<Vec<u8>> = ids.iter().map(|id| id.as_bytes().to_vec()).collect();
        unique.sort_unstable();
        unique.dedup();
        with_retries(|| async {
            sqlx::query(
                "INSERT INTO receipts (message_id, peer_id, status, at)
                 SELECT id, $2, $3, $4 FROM unnest($1::bytea[]) AS u(id)
                 ON CONFLICT (message_id, peer_id, status) DO UPDATE SET at = least(receipts.at, excluded.at)",
            )
            .bind(&unique)
            .bind(&from.as_bytes()[..])
            .bind(status_code(status))
            .bind(at)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await
    }

    pub async fn receipts_for(&self, id: &MessageId) -> Result<Vec<(PeerId, ReceiptStatus, u64)>> {
        let rows: Vec<(Vec<u8>, i64, i64)> = sqlx::query_as(
            "SELECT peer_id, status, at FROM receipts WHERE message_id = $1 ORDER BY at, peer_id, status",
        )
        .bind(&id.as_bytes()[..])
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(peer, status, at)| {
                Ok((peer_from_sql("receipts", &peer)?, status_from_code(status)?, from_sql("receipts", at)?))
            })
            .collect()
    }

    /// Keep two envelopes as proof, as [`crate::Store::record_equivocation`]
    /// does, with the same caps.
    pub async fn record_equivocation(&self, a: &SignedEnvelope, b: &SignedEnvelope, at: u64) -> Result<bool> {
        if a.author() != b.author() || a.room() != b.room() || a.seq() != b.seq() || a.id() == b.id() {
            return Err(StoreError::NotAnEquivocation);
        }
        let (first, second) = if a.id().as_bytes() <= b.id().as_bytes() { (a, b) } else { (b, a) };
        let (seq, at) = (to_sql("seq", a.seq())?, to_sql("at", at)?);
        with_retries(|| async {
            let mut tx = self.pool.begin().await?;
            let done = sqlx::query(
                "INSERT INTO equivocations (author, room, seq, at, first, second) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (author) DO NOTHING",
            )
            .bind(&a.author().as_bytes()[..])
            .bind(a.room().as_str())
            .bind(seq)
            .bind(at)
            .bind(first.bytes())
            .bind(second.bytes())
            .execute(&mut *tx)
            .await?;
            let new = done.rows_affected() == 1;
            if new {
                sqlx::query(
                    "DELETE FROM equivocations WHERE pk IN (
                         SELECT pk FROM (
                             SELECT pk, row_number() OVER (ORDER BY at DESC, pk DESC) AS newer,
                                    sum(length(first) + length(second)) OVER (ORDER BY at DESC, pk DESC) AS newer_bytes
                             FROM equivocations) AS ranked
                         WHERE newer > $1 OR newer_bytes > $2)",
                )
                .bind(MAX_EQUIVOCATION_PROOFS)
                .bind(MAX_EQUIVOCATION_BYTES)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(new)
        })
        .await
    }

    pub async fn equivocators(&self) -> Result<Vec<PeerId>> {
        let rows: Vec<(Vec<u8>,)> =
            sqlx::query_as("SELECT author FROM equivocations ORDER BY at, pk").fetch_all(&self.pool).await?;
        rows.into_iter().map(|(author,)| peer_from_sql("equivocations", &author)).collect()
    }

    /// What every room holds, summed over the chains.
    pub async fn usage(&self) -> Result<Usage> {
        let (raw, messages): (i64, i64) =
            sqlx::query_as("SELECT coalesce(sum(raw_bytes), 0)::bigint, coalesce(sum(messages), 0)::bigint FROM heads")
                .fetch_one(&self.pool)
                .await?;
        Usage::from_sums("heads", raw, messages)
    }

    pub async fn room_usage(&self, room: &RoomId) -> Result<Usage> {
        let (raw, messages): (i64, i64) = sqlx::query_as(
            "SELECT coalesce(sum(raw_bytes), 0)::bigint, coalesce(sum(messages), 0)::bigint FROM heads WHERE room = $1",
        )
        .bind(room.as_str())
        .fetch_one(&self.pool)
        .await?;
        Usage::from_sums("heads", raw, messages)
    }

    pub async fn author_usage(&self, author: &PeerId) -> Result<Usage> {
        let (raw, messages): (i64, i64) = sqlx::query_as(
            "SELECT coalesce(sum(raw_bytes), 0)::bigint, coalesce(sum(messages), 0)::bigint FROM heads
             WHERE author = $1",
        )
        .bind(&author.as_bytes()[..])
        .fetch_one(&self.pool)
        .await?;
        Usage::from_sums("heads", raw, messages)
    }

    /// How many messages are stored: the chains' exact counts, summed (a
    /// `count(*)` would scan the table).
    pub async fn message_count(&self) -> Result<u64> {
        Ok(self.usage().await?.messages)
    }
}

crate::backend::inherent_message_store!(PgStore);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection of the pool plans each statement for its arguments
    /// (see `connect_with`): checked on connections the pool opened itself.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_connection_plans_each_execution() {
        let server = server::TempServer::start(false).await.expect("start PostgreSQL");
        let store = PgStore::connect(&server.create_database("plans").await.unwrap()).await.unwrap();
        all_connections_plan_each_execution(&store).await;
        store.close().await;
    }

    /// Every connection the pool holds (all of them at once, so each is
    /// looked at) plans each statement for its arguments.
    async fn all_connections_plan_each_execution(store: &PgStore) {
        let mut held = Vec::new();
        for _ in 0..CONNECTIONS {
            held.push(store.pool.acquire().await.unwrap());
        }
        for conn in &mut held {
            let (mode,): (String,) = sqlx::query_as("SHOW plan_cache_mode").fetch_one(&mut **conn).await.unwrap();
            assert_eq!(mode, "force_custom_plan");
        }
    }

    /// Room allowances taken at once from several connections (as several
    /// instances would) never give more than the identity's hourly
    /// allowance nor more than the relay's budget; a new hour gives a new
    /// allowance, and pruning forgets only hours that are over.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn room_allowances_hold_under_concurrent_instances() {
        let server = server::TempServer::start(false).await.expect("start PostgreSQL");
        let store = PgStore::connect(&server.create_database("allowances").await.unwrap()).await.unwrap();
        let t0 = 1_790_000_000_000u64;
        let take = |peer: PeerId, now: u64, per_hour: u32, per_minute: u32| {
            let store = store.clone();
            let room: RoomId = "new-room".parse().unwrap();
            tokio::spawn(async move {
                store.take_room_allowance(&peer, &room, per_hour, per_minute, Some(now)).await.unwrap()
            })
        };
        let count = |got: &[RoomAllowance], what: fn(&RoomAllowance) -> bool| got.iter().filter(|g| what(g)).count();
        // One identity, ten at once: three of them.
        let mallory = PeerId::from_bytes([7; 32]);
        let tasks: Vec<_> = (0..10).map(|_| take(mallory, t0, 3, 100)).collect();
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap());
        }
        assert_eq!(count(&got, |g| *g == RoomAllowance::Allowed), 3, "{got:?}");
        // Spent for the rest of the hour.
        assert_eq!(count(&got, |g| *g == RoomAllowance::IdentitySpent { for_ms: 3_600_000 }), 7, "{got:?}");
        // Ten fresh identities, with the relay's budget now 4 a minute (the
        // bucket is capped at that): four of them.
        let tasks: Vec<_> = (0..10u8).map(|i| take(PeerId::from_bytes([i + 20; 32]), t0, 3, 4)).collect();
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap());
        }
        assert_eq!(count(&got, |g| *g == RoomAllowance::Allowed), 4, "{got:?}");
        // The next token in 15 s (4 a minute).
        assert_eq!(count(&got, |g| *g == RoomAllowance::RelaySpent { for_ms: 15_000 }), 6, "{got:?}");
        // 15 s later one more token (4 a minute).
        let later = take(PeerId::from_bytes([50; 32]), t0 + 15_000, 3, 4).await.unwrap();
        assert_eq!(later, RoomAllowance::Allowed);
        // Mallory's hour is over an hour later: a new allowance.
        assert_eq!(take(mallory, t0 + 3_600_000, 3, 100).await.unwrap(), RoomAllowance::Allowed);
        // Pruning at t0 + 1 h forgets the hours begun at t0 (the four fresh
        // identities that got a room; those refused for the budget never
        // had one), not Mallory's new hour nor the one begun 15 s later.
        assert_eq!(store.prune_room_allowances(Some(t0 + 3_600_000)).await.unwrap(), 4);
        let (left,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM room_allowances").fetch_one(&store.pool).await.unwrap();
        assert_eq!(left, 2);

        // A room the cluster carries costs nothing, even to a spent identity.
        let known: RoomId = "carried".parse().unwrap();
        store.join_room(&known, "carried", t0).await.unwrap();
        for _ in 0..5 {
            let got = store.take_room_allowance(&mallory, &known, 0, 0, Some(t0 + 3_600_001)).await.unwrap();
            assert_eq!(got, RoomAllowance::Known);
        }

        // Times stored ahead of the clock (an instance whose clock was ahead,
        // or a clock set back since) are not waited for: the bucket and a
        // new identity's hour work at once.
        let years = 10 * 365 * 24 * 3_600_000;
        let ahead = take(PeerId::from_bytes([60; 32]), t0 + years, 3, 100).await.unwrap();
        assert_eq!(ahead, RoomAllowance::Allowed);
        assert_eq!(take(PeerId::from_bytes([60; 32]), t0 + 20_000, 3, 100).await.unwrap(), RoomAllowance::Allowed);
        assert_eq!(take(PeerId::from_bytes([61; 32]), t0 + 20_000, 3, 100).await.unwrap(), RoomAllowance::Allowed);

        // By PostgreSQL's own clock (no override).
        let room: RoomId = "by-the-database".parse().unwrap();
        let got = store.take_room_allowance(&PeerId::from_bytes([70; 32]), &room, 3, 100, None).await.unwrap();
        assert_eq!(got, RoomAllowance::Allowed);
        store.close().await;
    }

    /// Fresh runs into chains without a gap are stored in one statement;
    /// a duplicate, a conflict or a chain with a gap is refused by it and
    /// stored by the transaction, which the store's own envelopes always
    /// take. The marks and accounting come out the same either way.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_fast_path_stores_fresh_runs_and_refuses_the_rest() {
        use crate::Inserted::{Duplicate, New};
        use festival_core::{Draft, Kind};
        let server = server::TempServer::start(false).await.expect("start PostgreSQL");
        let store = PgStore::connect(&server.create_database("fast").await.unwrap()).await.unwrap();
        let (alice, bob) = (Identity::generate(&mut rand::rngs::OsRng), Identity::generate(&mut rand::rngs::OsRng));
        let room = RoomId::festival();
        let env = |who: &Identity, seq: u64, body: &str| {
            let draft = Draft { seq, room: room.clone(), kind: Kind::Text, created_at: 1_000 + seq, body: body.into() };
            (SignedEnvelope::sign(who, draft).unwrap(), 0u8)
        };
        let outcomes = |out: Vec<crate::Result<crate::Inserted>>| -> Vec<String> {
            out.into_iter().map(|o| format!("{o:?}")).collect()
        };
        let marks = |store: PgStore, who: PeerId| async move {
            let heads = store.heads().await.unwrap();
            let h = heads.iter().find(|h| h.author == who).unwrap();
            let usage = store.author_usage(&who).await.unwrap();
            (h.contiguous, h.max, usage.messages)
        };
        // Two new chains, runs from 1 (out of order in the batch): fast.
        let batch = vec![env(&alice, 2, "a2"), env(&bob, 1, "b1"), env(&alice, 1, "a1")];
        assert_eq!(outcomes(store.insert_batch(&batch, 1, false).await.unwrap()), ["Ok(New)"; 3]);
        assert_eq!(store.fast_path_counts(), (1, 0));
        assert_eq!(marks(store.clone(), alice.peer_id()).await, (2, 2, 2));
        // A run continuing the chain: fast.
        store.insert_batch(&[env(&alice, 3, "a3"), env(&alice, 4, "a4")], 2, false).await.unwrap();
        assert_eq!(store.fast_path_counts(), (2, 0));
        assert_eq!(marks(store.clone(), alice.peer_id()).await, (4, 4, 4));
        // A run above a hole: fast, and it leaves a gap (contiguous 1, max 5).
        store.insert_batch(&[env(&bob, 4, "b4"), env(&bob, 5, "b5")], 3, false).await.unwrap();
        assert_eq!(store.fast_path_counts(), (3, 0));
        assert_eq!(marks(store.clone(), bob.peer_id()).await, (1, 5, 3));
        // Into that gap: refused (the chain has a gap), stored by the
        // transaction, which climbs over what is held above.
        let out = store.insert_batch(&[env(&bob, 2, "b2"), env(&bob, 3, "b3")], 4, false).await.unwrap();
        assert!(matches!(out[..], [Ok(New), Ok(New)]), "{out:?}");
        assert_eq!(store.fast_path_counts(), (3, 1));
        assert_eq!(marks(store.clone(), bob.peer_id()).await, (5, 5, 5));
        // A duplicate with a new one: refused, nothing of the statement
        // stays, and the transaction answers each.
        let out = store.insert_batch(&[env(&alice, 4, "a4"), env(&alice, 5, "a5")], 5, false).await.unwrap();
        assert!(matches!(out[..], [Ok(Duplicate), Ok(New)]), "{out:?}");
        assert_eq!(store.fast_path_counts(), (3, 2));
        assert_eq!(marks(store.clone(), alice.peer_id()).await, (5, 5, 5));
        // A conflict (another envelope at a held seq): refused likewise.
        let out = store.insert_batch(&[env(&alice, 6, "a6"), env(&alice, 5, "another a5")], 6, false).await.unwrap();
        assert!(matches!(out[..], [Ok(New), Err(crate::StoreError::Conflict { seq: 5, .. })]), "{out:?}");
        assert_eq!(store.fast_path_counts(), (3, 3));
        assert_eq!(marks(store.clone(), alice.peer_id()).await, (6, 6, 6));
        // Not a run (a hole inside the batch's seqs), and our own: the
        // transaction at once.
        store.insert_batch(&[env(&alice, 7, "a7"), env(&alice, 9, "a9")], 7, false).await.unwrap();
        store.insert_batch(&[env(&alice, 8, "a8")], 8, true).await.unwrap();
        assert_eq!(store.fast_path_counts(), (3, 3));
        assert_eq!(marks(store.clone(), alice.peer_id()).await, (9, 9, 9));
        // A new chain whose run starts above 1: fast, nothing contiguous.
        let carol = Identity::generate(&mut rand::rngs::OsRng);
        let (c3, c4) = (env(&carol, 3, "c3"), env(&carol, 4, "carol's fourth"));
        store.insert_batch(&[c4.clone(), c3.clone()], 9, false).await.unwrap();
        assert_eq!(store.fast_path_counts(), (4, 3));
        assert_eq!(marks(store.clone(), carol.peer_id()).await, (0, 4, 2));
        let bytes = (c3.0.bytes().len() + c4.0.bytes().len()) as u64 + 2 * crate::usage::ROW_OVERHEAD_BYTES;
        assert_eq!(store.author_usage(&carol.peer_id()).await.unwrap().bytes, bytes);
        // Given up on 1..=2, the chain climbs over 3 and 4; 5 then follows
        // on the fast path, and 2 arriving late (seen: at or below max_seq)
        // is refused by it and stored by the transaction, marks unchanged.
        store.advance_contiguous(&room, &carol.peer_id(), 2).await.unwrap();
        assert_eq!(marks(store.clone(), carol.peer_id()).await, (4, 4, 2));
        store.insert_batch(&[env(&carol, 5, "c5")], 10, false).await.unwrap();
        assert_eq!(store.fast_path_counts(), (5, 3));
        assert_eq!(marks(store.clone(), carol.peer_id()).await, (5, 5, 3));
        let out = store.insert_batch(&[env(&carol, 2, "c2")], 11, false).await.unwrap();
        assert!(matches!(out[..], [Ok(New)]), "{out:?}");
        assert_eq!(store.fast_path_counts(), (5, 4));
        assert_eq!(marks(store.clone(), carol.peer_id()).await, (5, 5, 4));
        // A batch on the fast path is one write transaction (what the
        // benchmark's `postgres_write_xacts_per_sec` counts); reading the
        // counter, and reading the store, take none.
        let before = server.next_xid("fast").await.unwrap();
        store.heads().await.unwrap();
        assert_eq!(server.next_xid("fast").await.unwrap(), before);
        store.insert_batch(&[env(&carol, 6, "c6"), env(&carol, 7, "c7")], 12, false).await.unwrap();
        assert_eq!(store.fast_path_counts(), (6, 4));
        assert_eq!(server.next_xid("fast").await.unwrap(), before + 1);
        store.close().await;
    }

    /// Ingest's statements reuse generic plans, and only they: its
    /// connection plans generically, the pool's for each execution; the
    /// rare statements of a batch (a skipped row's holder, a gap's probe)
    /// are planned for their arguments within their transaction only.
    /// Checked after real batches (new rows, a duplicate, a gap).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ingest_alone_reuses_plans() {
        use festival_core::{Draft, Kind};
        let server = server::TempServer::start(false).await.expect("start PostgreSQL");
        let store = PgStore::connect(&server.create_database("generic").await.unwrap()).await.unwrap();
        let me = Identity::generate(&mut rand::rngs::OsRng);
        let room = RoomId::festival();
        let env = |seq| {
            let draft =
                Draft { seq, room: room.clone(), kind: Kind::Text, created_at: 1_000 + seq, body: b"hi".to_vec() };
            SignedEnvelope::sign(&me, draft).unwrap()
        };
        // New rows; then a duplicate (the skipped-row path) and a gap
        // (seq 5 above 1..=3: the probe path).
        let first: Vec<_> = (1..=3).map(|s| (env(s), 0u8)).collect();
        let outcomes = store.insert_batch(&first, 1, false).await.unwrap();
        assert!(outcomes.iter().all(|o| matches!(o, Ok(crate::Inserted::New))), "{outcomes:?}");
        let again = vec![(env(3), 0u8), (env(5), 0u8)];
        let outcomes = store.insert_batch(&again, 2, false).await.unwrap();
        assert!(matches!(outcomes[..], [Ok(crate::Inserted::Duplicate), Ok(crate::Inserted::New)]), "{outcomes:?}");
        let heads = store.heads().await.unwrap();
        assert_eq!((heads[0].contiguous, heads[0].max), (3, 5));
        all_connections_plan_each_execution(&store).await;
        let writer = store.writer.conn.lock().await.take();
        let mut writer = writer.expect("the writer's connection is kept between batches");
        let (mode,): (String,) = sqlx::query_as("SHOW plan_cache_mode").fetch_one(&mut writer).await.unwrap();
        assert_eq!(mode, "force_generic_plan");
        store.close().await;
    }
}
