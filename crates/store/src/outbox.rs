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
}
