//! The outbox: messages this device authored, until they have left it.
//!
//! Rows are added by the ingest transaction (`insert(.., local = true)`), so
//! a message is never stored without being queued. The outbox survives
//! restarts: the node resumes [`Store::unsent`] at start-up.

use festival_core::{MessageId, RoomId};

use crate::error::{from_sql, message_id_from_sql, opt_from_sql, room_from_sql, to_sql, Result, StoreError};
use crate::open::Store;

/// A queued message not yet sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: MessageId,
    pub room: RoomId,
    pub seq: u64,
    pub queued_at: u64,
}

/// Where one of our messages stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutboxState {
    Queued {
        queued_at: u64,
    },
    /// Left the device at `sent_at` over `path` (a free-form label from the
    /// runtime, such as "lan" or "relay").
    Sent {
        queued_at: u64,
        sent_at: u64,
        path: String,
    },
}

/// Everything the outbox knows of one of our messages, for its delivery
/// state (see `festival_node::view`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxMarks {
    pub queued_at: u64,
    /// When and how it first left the device.
    pub sent: Option<(u64, String)>,
    /// When the relay first acknowledged it committed (`Stored`).
    pub relay_stored_at: Option<u64>,
    /// When the person last asked to send it again.
    pub retried_at: Option<u64>,
}

impl Store {
    /// Every unsent message, oldest first (the order they should go out).
    pub async fn unsent(&self) -> Result<Vec<OutboxRow>> {
        let rows: Vec<(Vec<u8>, String, i64, i64)> = sqlx::query_as(
            "SELECT message_id, room, seq, queued_at FROM outbox WHERE sent_at IS NULL
             ORDER BY queued_at, room, seq",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|(id, room, seq, queued_at)| {
                Ok(OutboxRow {
                    id: message_id_from_sql("outbox", &id)?,
                    room: room_from_sql("outbox", room)?,
                    seq: from_sql("outbox", seq)?,
                    queued_at: from_sql("outbox", queued_at)?,
                })
            })
            .collect()
    }

    /// Record that a message left the device. The first mark wins: a later
    /// one (the same message also going out another way) changes nothing.
    /// Returns whether this call was the first.
    pub async fn mark_sent(&self, id: &MessageId, path: &str, at: u64) -> Result<bool> {
        let done = sqlx::query("UPDATE outbox SET sent_at = ?, path = ? WHERE message_id = ? AND sent_at IS NULL")
            .bind(to_sql("sent_at", at)?)
            .bind(path)
            .bind(&id.as_bytes()[..])
            .execute(&self.writer)
            .await?;
        if done.rows_affected() == 1 {
            return Ok(true);
        }
        match self.outbox_state(id).await? {
            Some(_) => Ok(false),
            None => Err(StoreError::NotInOutbox(*id)),
        }
    }

    /// Where one of our messages stands; `None` if it is not ours.
    pub async fn outbox_state(&self, id: &MessageId) -> Result<Option<OutboxState>> {
        let row: Option<(i64, Option<i64>, Option<String>)> =
            sqlx::query_as("SELECT queued_at, sent_at, path FROM outbox WHERE message_id = ?")
                .bind(&id.as_bytes()[..])
                .fetch_optional(&self.reader)
                .await?;
        let Some((queued_at, sent_at, path)) = row else {
            return Ok(None);
        };
        let queued_at = from_sql("outbox", queued_at)?;
        Ok(Some(match (opt_from_sql("outbox", sent_at)?, path) {
            (Some(sent_at), Some(path)) => OutboxState::Sent { queued_at, sent_at, path },
            // The table's CHECK keeps sent_at and path both set or both
            // unset; treat a half-marked row as still queued.
            _ => OutboxState::Queued { queued_at },
        }))
    }

    /// Everything the outbox knows of one of our messages; `None` if it is
    /// not ours (or from before the outbox).
    pub async fn outbox_marks(&self, id: &MessageId) -> Result<Option<OutboxMarks>> {
        type Row = (i64, Option<i64>, Option<String>, Option<i64>, Option<i64>);
        let row: Option<Row> = sqlx::query_as(
            "SELECT queued_at, sent_at, path, relay_stored_at, retried_at FROM outbox WHERE message_id = ?",
        )
        .bind(&id.as_bytes()[..])
        .fetch_optional(&self.reader)
        .await?;
        let Some((queued_at, sent_at, path, relay_stored_at, retried_at)) = row else { return Ok(None) };
        let sent = match (opt_from_sql("outbox", sent_at)?, path) {
            (Some(at), Some(path)) => Some((at, path)),
            _ => None,
        };
        Ok(Some(OutboxMarks {
            queued_at: from_sql("outbox", queued_at)?,
            sent,
            relay_stored_at: opt_from_sql("outbox", relay_stored_at)?,
            retried_at: opt_from_sql("outbox", retried_at)?,
        }))
    }

    /// The relay acknowledged it committed these envelopes (`Stored`): mark
    /// those of them that are ours and have left this device, the first
    /// time. Returns the ids newly marked (a relay's ids that are not ours,
    /// not sent yet, or marked already are left alone: a relay cannot mark
    /// what we did not write, nor make an unsent message look stored).
    pub async fn mark_relay_stored(&self, ids: &[MessageId], at: u64) -> Result<Vec<MessageId>> {
        let at = to_sql("relay_stored_at", at)?;
        let mut marked = Vec::new();
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        for id in ids {
            let done = sqlx::query(
                "UPDATE outbox SET relay_stored_at = ?
                 WHERE message_id = ? AND relay_stored_at IS NULL AND sent_at IS NOT NULL",
            )
            .bind(at)
            .bind(&id.as_bytes()[..])
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                marked.push(*id);
            }
        }
        tx.commit().await?;
        Ok(marked)
    }

    /// The person asked to send one of our messages again, at `at`.
    pub async fn mark_retried(&self, id: &MessageId, at: u64) -> Result<()> {
        let done = sqlx::query("UPDATE outbox SET retried_at = ? WHERE message_id = ?")
            .bind(to_sql("retried_at", at)?)
            .bind(&id.as_bytes()[..])
            .execute(&self.writer)
            .await?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::NotInOutbox(*id))
        }
    }

    /// Our DMs (kind `SealedDm`: not the receipts we send, which travel in
    /// the DM room too) written or retried since `since` (ms, our clock),
    /// not yet acknowledged by anyone, newest first, at most `limit`, with
    /// when their "not delivered yet" clock started (written or last
    /// retried): those whose moment may still come. Reads the outbox, which
    /// holds only what this device wrote.
    pub async fn recent_undelivered_dms(&self, since: u64, limit: u32) -> Result<Vec<(MessageId, u64)>> {
        let rows: Vec<(Vec<u8>, i64)> = sqlx::query_as(
            "SELECT o.message_id, max(m.created_at, coalesce(o.retried_at, 0)) AS start
             FROM outbox o JOIN messages m ON m.chain = o.chain AND m.seq = o.seq
             WHERE o.room = 'dm' AND m.kind = 2 AND (m.created_at >= ?1 OR o.retried_at >= ?1)
               AND NOT EXISTS (SELECT 1 FROM receipts r WHERE r.message_id = o.message_id)
             ORDER BY start DESC LIMIT ?2",
        )
        .bind(to_sql("since", since)?)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|(id, start)| Ok((message_id_from_sql("outbox", &id)?, from_sql("outbox", start)?)))
            .collect()
    }
}
