//! Reading on PostgreSQL: by id or position, history pages, sync ranges and
//! the lookups around receipts, each meaning what the SQLite store's does.

use std::collections::HashMap;

use festival_core::receipt::Target;
use festival_core::{MessageId, PeerId, RoomId, SignedEnvelope};

use super::PgStore;
use crate::error::{clamp_to_sql, hops_from_sql, message_id_from_sql, Result};
use crate::read::{after_or_end, gap_cutoff, rebuild, stored, MessageRow, RANGE_CHUNK};
use crate::{HistoryCursor, StoredMessage};

impl PgStore {
    pub async fn get(&self, id: &MessageId) -> Result<Option<StoredMessage>> {
        let row: Option<MessageRow> = sqlx::query_as("SELECT id, raw, hops, received_at FROM messages WHERE id = $1")
            .bind(&id.as_bytes()[..])
            .fetch_optional(&self.pool)
            .await?;
        row.map(stored).transpose()
    }

    pub async fn get_at(&self, room: &RoomId, author: &PeerId, seq: u64) -> Result<Option<StoredMessage>> {
        let Ok(seq) = i64::try_from(seq) else {
            return Ok(None);
        };
        let row: Option<MessageRow> = sqlx::query_as(
            "SELECT id, raw, hops, received_at FROM messages WHERE room = $1 AND author = $2 AND seq = $3",
        )
        .bind(room.as_str())
        .bind(&author.as_bytes()[..])
        .bind(seq)
        .fetch_optional(&self.pool)
        .await?;
        row.map(stored).transpose()
    }

    /// A page of a room's history, as [`crate::Store::history`]: the latest
    /// `limit` before `before`, oldest first, none held above a gap for
    /// less than [`crate::GAP_WAIT_MS`].
    pub async fn history(
        &self,
        room: &RoomId,
        before: Option<HistoryCursor>,
        limit: u32,
    ) -> Result<Vec<StoredMessage>> {
        let (at, author, seq) = after_or_end(before);
        let rows: Vec<MessageRow> = sqlx::query_as(
            "SELECT m.id, m.raw, m.hops, m.received_at FROM messages m
             JOIN heads h ON h.room = m.room AND h.author = m.author
             WHERE m.room = $1 AND (m.created_at, m.author, m.seq) < ($2, $3, $4)
               AND m.kind <> 10
               AND (m.seq <= h.contiguous OR m.received_at <= $5)
             ORDER BY m.created_at DESC, m.author DESC, m.seq DESC LIMIT $6",
        )
        .bind(room.as_str())
        .bind(at)
        .bind(author)
        .bind(seq)
        .bind(gap_cutoff())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut page = rows.into_iter().map(stored).collect::<Result<Vec<_>>>()?;
        page.reverse();
        Ok(page)
    }

    /// A chain's messages for a peer's want, as [`crate::Store::load_range`].
    pub async fn load_range(
        &self,
        room: &RoomId,
        author: &PeerId,
        from: u64,
        to: u64,
        max_bytes: usize,
        not_before: u64,
    ) -> Result<Vec<(SignedEnvelope, u8)>> {
        let (mut after, to) = (clamp_to_sql(from.saturating_sub(1)), clamp_to_sql(to));
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while after < to {
            let rows: Vec<(i64, Vec<u8>, Vec<u8>, i64)> = sqlx::query_as(
                "SELECT seq, id, raw, hops FROM messages
                 WHERE room = $1 AND author = $2 AND seq > $3 AND seq <= $4 AND created_at >= $5
                 ORDER BY seq LIMIT $6",
            )
            .bind(room.as_str())
            .bind(&author.as_bytes()[..])
            .bind(after)
            .bind(to)
            .bind(clamp_to_sql(not_before))
            .bind(RANGE_CHUNK)
            .fetch_all(&self.pool)
            .await?;
            let exhausted = rows.len() < RANGE_CHUNK as usize;
            for (seq, id, raw, hops) in rows {
                if !out.is_empty() && bytes.saturating_add(raw.len()) > max_bytes {
                    return Ok(out);
                }
                bytes = bytes.saturating_add(raw.len());
                out.push((rebuild(&id, &raw)?, hops_from_sql("messages", hops)?));
                after = seq;
            }
            if exhausted {
                break;
            }
        }
        Ok(out)
    }

    /// Which of `ids` are stored.
    pub async fn held(&self, ids: &[MessageId]) -> Result<std::collections::HashSet<MessageId>> {
        let ids: Vec<Vec<u8>> = ids.iter().map(|id| id.as_bytes().to_vec()).collect();
        let rows: Vec<(Vec<u8>,)> =
            sqlx::query_as("SELECT id FROM messages WHERE id = ANY($1)").bind(&ids).fetch_all(&self.pool).await?;
        rows.into_iter().map(|(id,)| message_id_from_sql("messages", &id)).collect()
    }

    /// What each stored id of `ids` refers to.
    pub async fn receipt_targets(&self, ids: &[MessageId]) -> Result<HashMap<MessageId, Target>> {
        let ids: Vec<Vec<u8>> = ids.iter().map(|id| id.as_bytes().to_vec()).collect();
        let sql = format!("SELECT {} FROM messages m WHERE m.id = ANY($1)", crate::lookup::TARGET_COLUMNS);
        let rows: Vec<crate::lookup::TargetRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(&ids).fetch_all(&self.pool).await?;
        rows.into_iter().map(crate::lookup::target_from_row).collect()
    }

    /// Whether `author` has written a text, posted or answered a meet-up in
    /// `room`, or announced a name.
    pub async fn is_member(&self, author: &PeerId, room: &RoomId) -> Result<bool> {
        let row: Option<(i32,)> = sqlx::query_as(
            "SELECT 1 FROM messages WHERE room = $1 AND author = $2 AND kind IN ($3, $4, $5, $6, $7) LIMIT 1",
        )
        .bind(room.as_str())
        .bind(&author.as_bytes()[..])
        .bind(crate::lookup::MEMBER_KINDS[0])
        .bind(crate::lookup::MEMBER_KINDS[1])
        .bind(crate::lookup::MEMBER_KINDS[2])
        .bind(crate::lookup::MEMBER_KINDS[3])
        .bind(crate::lookup::MEMBER_KINDS[4])
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }
}
