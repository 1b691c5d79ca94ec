//! Reading what instances committed, in the order of their transactions:
//! the fallback behind a relay cluster's bus (see
//! migrations-pg/0002_committed_order.sql for why transaction ids and not a
//! sequence).

use festival_core::SignedEnvelope;

use super::PgStore;
use crate::error::{hops_from_sql, Result};
use crate::read::rebuild;

/// A place in the committed order: after every row of transactions below
/// `tx`, and of `tx` itself up to `id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitCursor {
    tx: i64,
    id: Vec<u8>,
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
    /// cursor after them. Fewer than `limit`: nothing more has committed yet.
    pub async fn committed_after(
        &self,
        cursor: &CommitCursor,
        limit: u32,
    ) -> Result<(Vec<(SignedEnvelope, u8)>, CommitCursor)> {
        let rows: Vec<(i64, Vec<u8>, Vec<u8>, i64)> = sqlx::query_as(
            "SELECT tx, id, raw, hops FROM messages
             WHERE (tx, id) > ($1, $2) AND tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
             ORDER BY tx, id LIMIT $3",
        )
        .bind(cursor.tx)
        .bind(&cursor.id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut next = cursor.clone();
        let mut out = Vec::with_capacity(rows.len());
        for (tx, id, raw, hops) in rows {
            out.push((rebuild(&id, &raw)?, hops_from_sql("messages", hops)?));
            next = CommitCursor { tx, id };
        }
        Ok((out, next))
    }
}
