//! Delivery and read receipts, per message and peer.

use festival_core::{MessageId, PeerId, ReceiptStatus};

use crate::error::{corrupt, from_sql, peer_from_sql, to_sql, Result};
use crate::open::Store;

pub(crate) fn status_code(status: ReceiptStatus) -> i64 {
    match status {
        ReceiptStatus::Delivered => 0,
        ReceiptStatus::Read => 1,
    }
}

pub(crate) fn status_from_code(code: i64) -> Result<ReceiptStatus> {
    match code {
        0 => Ok(ReceiptStatus::Delivered),
        1 => Ok(ReceiptStatus::Read),
        other => Err(corrupt("receipts", format!("receipt status {other}"))),
    }
}

impl Store {
    /// Record that `from` reports `status` for each of `ids`, at `at`.
    /// Idempotent: a receipt heard again (gossip repeats them) keeps the
    /// earliest time, which is when it really happened.
    pub async fn add_receipts(&self, from: PeerId, status: ReceiptStatus, ids: &[MessageId], at: u64) -> Result<()> {
        let at = to_sql("at", at)?;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        for id in ids {
            sqlx::query(
                "INSERT INTO receipts (message_id, peer_id, status, at) VALUES (?, ?, ?, ?)
                 ON CONFLICT DO UPDATE SET at = min(at, excluded.at)",
            )
            .bind(&id.as_bytes()[..])
            .bind(&from.as_bytes()[..])
            .bind(status_code(status))
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every receipt for one message, earliest first.
    pub async fn receipts_for(&self, id: &MessageId) -> Result<Vec<(PeerId, ReceiptStatus, u64)>> {
        let rows: Vec<(Vec<u8>, i64, i64)> = sqlx::query_as(
            "SELECT peer_id, status, at FROM receipts WHERE message_id = ? ORDER BY at, peer_id, status",
        )
        .bind(&id.as_bytes()[..])
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|(peer, status, at)| {
                Ok((peer_from_sql("receipts", &peer)?, status_from_code(status)?, from_sql("receipts", at)?))
            })
            .collect()
    }
}
