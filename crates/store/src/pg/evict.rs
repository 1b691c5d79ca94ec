//! Expiry and budgets on PostgreSQL, in the SQLite store's order (see
//! [`crate::evict`]): per author, per room, then the total by class
//! (expired; others' mail and rooms left; the rest), oldest first; never
//! the relay's own messages, sealed DMs to it, or unsent outbox entries.
//!
//! The total is the accounted bytes ([`crate::Usage`]), since the database
//! is shared and its files are not the store's to measure: eviction starts
//! when they come within 1/32 of [`Budget::disk_bytes`] and goes on to
//! twice that below it. Each step deletes at most [`STEP_ROWS`] rows in its
//! own short transaction, so ingest on other connections waits little.

use festival_core::{PeerId, RoomId};

use super::{with_retries, PgStore};
use crate::error::{clamp_to_sql, from_sql, peer_from_sql, room_from_sql, Result};
use crate::usage::ROW_OVERHEAD_BYTES;
use crate::{Budget, Evicted, STEP_ROWS};

/// Rows that may be deleted, as an SQL condition on `messages AS m`.
const EVICTABLE: &str = "NOT EXISTS (SELECT 1 FROM identity i WHERE i.peer_id = m.author OR i.peer_id = m.recipient)
     AND NOT EXISTS (SELECT 1 FROM outbox o
                     WHERE o.room = m.room AND o.author = m.author AND o.seq = m.seq AND o.sent_at IS NULL)";

/// Delete the messages `ids` that are still evictable and created before
/// `before`, in `tx`; the raw sizes of those deleted. The head rows of
/// their chains are locked first, in the order ingest locks them (room,
/// then author, bytewise), so the delete trigger's updates of the heads
/// cannot deadlock with an ingest holding some of them.
async fn delete_in(tx: &mut sqlx::PgConnection, ids: &[Vec<u8>], before: i64) -> Result<Vec<(i64,)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query(
        "SELECT 1 FROM heads h
         WHERE (h.room, h.author) IN (SELECT DISTINCT room, author FROM messages WHERE id = ANY($1))
         ORDER BY h.room, h.author FOR UPDATE",
    )
    .bind(ids)
    .execute(&mut *tx)
    .await?;
    let delete = format!(
        "DELETE FROM messages m WHERE m.id = ANY($1) AND m.created_at < $2 AND {EVICTABLE}
         RETURNING length(m.raw)::bigint"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(delete)).bind(ids).bind(before).fetch_all(&mut *tx).await?)
}

/// The advisory lock one instance of a cluster holds while it evicts: the
/// others skip their pass, or each would delete the whole excess.
const EVICT_LOCK: i64 = 0x4645_5354_4556_4943; // "FESTEVIC"

/// Which messages a pass deletes from.
enum Scope {
    Author(PeerId),
    Room(RoomId),
    Rooms(Vec<RoomId>),
    /// Every room (expiry, and eviction's expired class).
    All,
}

/// How far below the total budget eviction keeps the accounted bytes.
fn headroom(budget: &Budget) -> u64 {
    budget.disk_bytes / 32
}

fn accounted(raw: i64, messages: u64) -> Result<u64> {
    Ok(from_sql("messages", raw)?.saturating_add(messages.saturating_mul(ROW_OVERHEAD_BYTES)))
}

impl PgStore {
    /// Whether [`PgStore::evict`] would delete for the total budget now.
    pub async fn over_budget(&self, budget: &Budget) -> Result<bool> {
        Ok(self.usage().await?.bytes > budget.disk_bytes.saturating_sub(headroom(budget)))
    }

    /// Delete up to `max_rows` of the oldest messages created before the
    /// cutoff (except the relay's own, DMs to it and unsent ones), in one
    /// transaction, and record the cutoff (it only rises).
    pub async fn expire(&self, cutoff_created_at_ms: u64, max_rows: u64) -> Result<u64> {
        let cutoff = clamp_to_sql(cutoff_created_at_ms);
        let max_rows = clamp_to_sql(max_rows);
        let choose = format!(
            "SELECT m.id FROM messages m WHERE m.created_at < $1 AND {EVICTABLE} ORDER BY m.created_at LIMIT $2"
        );
        with_retries(|| async {
            let mut tx = self.pool.begin().await?;
            let ids: Vec<(Vec<u8>,)> = sqlx::query_as(sqlx::AssertSqlSafe(choose.clone()))
                .bind(cutoff)
                .bind(max_rows)
                .fetch_all(&mut *tx)
                .await?;
            let ids: Vec<Vec<u8>> = ids.into_iter().map(|(id,)| id).collect();
            let gone = delete_in(&mut tx, &ids, cutoff).await?;
            sqlx::query("UPDATE retention SET expire_before = $1 WHERE singleton = 1 AND expire_before < $1")
                .bind(cutoff)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(gone.len() as u64)
        })
        .await
    }

    /// The cutoff of the latest [`PgStore::expire`]; 0 before the first.
    pub async fn expire_before(&self) -> Result<u64> {
        let (before,): (i64,) =
            sqlx::query_as("SELECT expire_before FROM retention WHERE singleton = 1").fetch_one(&self.pool).await?;
        from_sql("retention", before)
    }

    /// Delete until `budget` holds; see the module docs for the order. In
    /// a cluster one instance evicts at a time: while another holds the
    /// eviction lock this returns at once, having deleted nothing.
    pub async fn evict(&self, budget: &Budget, now_ms: u64) -> Result<Evicted> {
        let mut lock = self.pool.acquire().await?;
        let (held,): (bool,) =
            sqlx::query_as("SELECT pg_try_advisory_lock($1)").bind(EVICT_LOCK).fetch_one(&mut *lock).await?;
        if !held {
            return Ok(Evicted::default());
        }
        let done = self.evict_holding_the_lock(budget, now_ms).await;
        sqlx::query("SELECT pg_advisory_unlock($1)").bind(EVICT_LOCK).execute(&mut *lock).await?;
        done
    }

    async fn evict_holding_the_lock(&self, budget: &Budget, now_ms: u64) -> Result<Evicted> {
        let mut done = Evicted::default();
        let authors: Vec<(Vec<u8>, i64)> = sqlx::query_as(
            "SELECT author, (sum(raw_bytes) + sum(messages) * $1)::bigint AS bytes FROM heads
             WHERE author NOT IN (SELECT peer_id FROM identity)
             GROUP BY author HAVING sum(raw_bytes) + sum(messages) * $1 > $2 ORDER BY author",
        )
        .bind(clamp_to_sql(ROW_OVERHEAD_BYTES))
        .bind(clamp_to_sql(budget.per_author_bytes))
        .fetch_all(&self.pool)
        .await?;
        for (author, bytes) in authors {
            let over = from_sql("heads", bytes)?.saturating_sub(budget.per_author_bytes);
            done.add(self.delete_oldest(&Scope::Author(peer_from_sql("heads", &author)?), None, over).await?);
        }
        let rooms: Vec<(String, i64)> = sqlx::query_as(
            "SELECT room, (sum(raw_bytes) + sum(messages) * $1)::bigint FROM heads
             GROUP BY room HAVING sum(raw_bytes) + sum(messages) * $1 > $2 ORDER BY room",
        )
        .bind(clamp_to_sql(ROW_OVERHEAD_BYTES))
        .bind(clamp_to_sql(budget.per_room_bytes))
        .fetch_all(&self.pool)
        .await?;
        for (room, bytes) in rooms {
            let over = from_sql("heads", bytes)?.saturating_sub(budget.per_room_bytes);
            done.add(self.delete_oldest(&Scope::Room(room_from_sql("heads", room)?), None, over).await?);
        }

        let used = self.usage().await?.bytes;
        if used <= budget.disk_bytes.saturating_sub(headroom(budget)) {
            return Ok(done);
        }
        let mut need = used.saturating_sub(budget.disk_bytes.saturating_sub(2 * headroom(budget)));
        let expired_before = clamp_to_sql(self.expire_before().await?.min(now_ms));
        if expired_before > 0 {
            let more = self.delete_oldest(&Scope::All, Some(expired_before), need).await?;
            need = need.saturating_sub(more.bytes);
            done.add(more);
        }
        let stored: Vec<(String,)> = sqlx::query_as("SELECT DISTINCT room FROM heads WHERE messages > 0 ORDER BY room")
            .fetch_all(&self.pool)
            .await?;
        let joined: Vec<(String,)> = sqlx::query_as("SELECT room_id FROM rooms").fetch_all(&self.pool).await?;
        let (mut others, mut mine) = (Vec::new(), Vec::new());
        for (room,) in stored {
            let stays =
                room == RoomId::FESTIVAL || room == RoomId::ANNOUNCEMENTS || joined.iter().any(|(j,)| *j == room);
            let room = room_from_sql("heads", room)?;
            if room.is_direct() || !stays {
                others.push(room);
            } else {
                mine.push(room);
            }
        }
        for rooms in [others, mine] {
            if need == 0 || rooms.is_empty() {
                continue;
            }
            let more = self.delete_oldest(&Scope::Rooms(rooms), None, need).await?;
            need = need.saturating_sub(more.bytes);
            done.add(more);
        }
        if done.messages > 0 {
            tracing::debug!(messages = done.messages, bytes = done.bytes, "evicted");
        }
        Ok(done)
    }

    /// Delete the oldest evictable messages of `scope` (created before
    /// `before`, if set) until `need` bytes are gone or none is left, at
    /// most [`STEP_ROWS`] per transaction.
    async fn delete_oldest(&self, scope: &Scope, before: Option<i64>, need: u64) -> Result<Evicted> {
        let filter = match scope {
            Scope::Author(_) => "m.author = $1",
            Scope::Room(_) => "m.room = $1",
            Scope::Rooms(_) => "m.room = ANY($1)",
            Scope::All => "$1::bigint IS NULL",
        };
        let choose = format!(
            "SELECT m.id, length(m.raw)::bigint FROM messages m
             WHERE {filter} AND m.created_at < $2 AND {EVICTABLE}
             ORDER BY m.created_at, m.author, m.seq LIMIT $3"
        );
        let before = before.unwrap_or(i64::MAX);
        let mut done = Evicted::default();
        while done.bytes < need {
            let query = sqlx::query_as::<_, (Vec<u8>, i64)>(sqlx::AssertSqlSafe(choose.clone()));
            let query = match scope {
                Scope::Author(author) => query.bind(author.as_bytes().to_vec()),
                Scope::Room(room) => query.bind(room.as_str().to_owned()),
                Scope::Rooms(rooms) => query.bind(rooms.iter().map(|r| r.as_str().to_owned()).collect::<Vec<_>>()),
                Scope::All => query.bind(None::<i64>),
            };
            let candidates = query.bind(before).bind(STEP_ROWS as i64).fetch_all(&self.pool).await?;
            let mut ids = Vec::with_capacity(candidates.len());
            let mut bytes = 0u64;
            for (id, raw) in candidates {
                if done.bytes.saturating_add(bytes) >= need {
                    break;
                }
                bytes = bytes.saturating_add(accounted(raw, 1)?);
                ids.push(id);
            }
            if ids.is_empty() {
                break;
            }
            let gone = with_retries(|| async {
                let mut tx = self.pool.begin().await?;
                let gone = delete_in(&mut tx, &ids, before).await?;
                tx.commit().await?;
                Ok(gone)
            })
            .await?;
            if gone.is_empty() {
                // Everything chosen became unevictable meanwhile.
                break;
            }
            let raw = gone.iter().map(|&(r,)| r).sum::<i64>();
            done.add(Evicted { messages: gone.len() as u64, bytes: accounted(raw, gone.len() as u64)? });
        }
        Ok(done)
    }
}
