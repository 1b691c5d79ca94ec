//! Reading what instances committed, in the order of their transactions:
//! the fallback behind a relay cluster's bus (see
//! migrations-pg/0002_committed_order.sql for why transaction ids and not a
//! sequence).

use std::sync::atomic::Ordering::Relaxed;

use festival_core::{MessageId, PeerId, RoomId, SignedEnvelope};

use super::PgStore;
use crate::error::{from_sql, hops_from_sql, message_id_from_sql, peer_from_sql, room_from_sql, Result};
use crate::read::rebuild;

/// Where a committed envelope is, without its bytes
/// ([`PgStore::committed_refs_after`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedRef {
    pub id: MessageId,
    pub room: RoomId,
    pub author: PeerId,
    pub seq: u64,
}

/// A place in the committed order: after every row of transactions below
/// `tx`, and of `tx` itself up to `id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitCursor {
    tx: i64,
    id: Vec<u8>,
}

/// A row's envelope (its bytes checked against its id) and hops.
fn envelope_row(id: &[u8], raw: &[u8], hops: i64) -> Result<(SignedEnvelope, u8)> {
    Ok((rebuild(id, raw)?, hops_from_sql("messages", hops)?))
}

impl PgStore {
    /// A cursor before everything that may still commit: every transaction
    /// below the current snapshot's xmin has ended. Take it before reading
    /// the state a reader starts from (`snapshot`), and tail from it: what
    /// commits later is read by [`PgStore::committed_after`]; what both the
    /// state and the tail hold is read twice, never missed.
    pub async fn commit_horizon(&self) -> Result<CommitCursor> {
        let (xmin,): (i64,) = sqlx::query_as("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            .fetch_one(&self.pool)
            .await?;
        Ok(CommitCursor { tx: xmin - 1, id: vec![0xff; 33] })
    }

    /// Up to `limit` envelopes (with their hops) committed after `cursor`
    /// by transactions that have all ended, in the committed order, and the
    /// cursor after them. Fewer than `limit`: nothing more has committed yet,
    /// or rows among them could not be read (skipped and counted:
    /// [`PgStore::unreadable_rows`]).
    pub async fn committed_after(
        &self,
        cursor: &CommitCursor,
        limit: u32,
    ) -> Result<(Vec<(SignedEnvelope, u8)>, CommitCursor)> {
        let rows: Vec<(i64, Vec<u8>, Vec<u8>, i64)> = self.committed_rows("raw, hops", cursor, limit).await?;
        let mut next = cursor.clone();
        let mut out = Vec::with_capacity(rows.len());
        for (tx, id, raw, hops) in rows {
            match envelope_row(&id, &raw, hops) {
                Ok(item) => out.push(item),
                Err(e) => self.unreadable_row(&id, &e),
            }
            next = CommitCursor { tx, id };
        }
        Ok((out, next))
    }

    /// As [`PgStore::committed_after`], where each envelope is and not its
    /// bytes: for a reader that holds most of what commits already (a relay
    /// instance while the cluster's bus runs) and fetches the rest by id
    /// ([`PgStore::committed_by_id`]).
    pub async fn committed_refs_after(
        &self,
        cursor: &CommitCursor,
        limit: u32,
    ) -> Result<(Vec<CommittedRef>, CommitCursor)> {
        // tx, id, room, author, seq.
        type RefRow = (i64, Vec<u8>, String, Vec<u8>, i64);
        let rows: Vec<RefRow> = self.committed_rows("room, author, seq", cursor, limit).await?;
        let mut next = cursor.clone();
        let mut out = Vec::with_capacity(rows.len());
        for (tx, id, room, author, seq) in rows {
            let read = || -> Result<CommittedRef> {
                Ok(CommittedRef {
                    id: message_id_from_sql("messages", &id)?,
                    room: room_from_sql("messages", room)?,
                    author: peer_from_sql("messages", &author)?,
                    seq: from_sql("messages", seq)?,
                })
            };
            match read() {
                Ok(r) => out.push(r),
                Err(e) => self.unreadable_row(&id, &e),
            }
            next = CommitCursor { tx, id };
        }
        Ok((out, next))
    }

    /// Up to `limit` rows committed after `cursor` by transactions that
    /// have all ended (below the snapshot's xmin), in the committed order:
    /// `tx, id` and then `columns`.
    async fn committed_rows<R>(&self, columns: &'static str, cursor: &CommitCursor, limit: u32) -> Result<Vec<R>>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        let sql = format!(
            "SELECT tx, id, {columns} FROM messages
             WHERE (tx, id) > ($1, $2) AND tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
             ORDER BY tx, id LIMIT $3"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(cursor.tx)
            .bind(&cursor.id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?)
    }

    /// The envelopes (with their hops) of those of `ids` still stored, in
    /// the committed order.
    pub async fn committed_by_id(&self, ids: &[MessageId]) -> Result<Vec<(SignedEnvelope, u8)>> {
        let ids: Vec<Vec<u8>> = ids.iter().map(|id| id.as_bytes().to_vec()).collect();
        let rows: Vec<(Vec<u8>, Vec<u8>, i64)> =
            sqlx::query_as("SELECT id, raw, hops FROM messages WHERE id = ANY($1) ORDER BY tx, id")
                .bind(&ids)
                .fetch_all(&self.pool)
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, raw, hops) in rows {
            match envelope_row(&id, &raw, hops) {
                Ok(item) => out.push(item),
                Err(e) => self.unreadable_row(&id, &e),
            }
        }
        Ok(out)
    }

    /// Rows of `messages` that the committed order's readers could not read
    /// and went past, since this store was opened.
    pub fn unreadable_rows(&self) -> u64 {
        self.unreadable.load(Relaxed)
    }

    /// A row this store did not write as it is (its bytes are not the
    /// envelope its id names, or a column is out of range: a hand's edit, a
    /// damaged page, another program): the readers go past it, so one row
    /// does not stop an instance's fan-out; counted and logged.
    fn unreadable_row(&self, id: &[u8], e: &crate::StoreError) {
        self.unreadable.fetch_add(1, Relaxed);
        let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
        tracing::warn!(%id, %e, "an unreadable row of messages is skipped");
    }
}
