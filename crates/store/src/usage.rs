//! Accounting: how many messages, and how many bytes, each chain, room and
//! author holds, kept exact in the transactions that change them.
//!
//! `heads` carries per-chain sums (written once per chain per batch by the
//! ingest transaction), `room_usage` the same per room; deletes subtract
//! through a trigger (migrations/0003_id_index.sql). The per-author and
//! per-room budgets compare [`Usage::bytes`]: the raw envelope bytes plus
//! [`ROW_OVERHEAD_BYTES`] per message, an estimate of what a row really
//! costs on disk. The disk budget is held against the real file instead
//! (see [`crate::evict`]).

use festival_core::{PeerId, RoomId, SignedEnvelope};

use crate::error::{from_sql, Result};
use crate::heads::Touched;
use crate::ingest::placeholders;
use crate::open::Store;
use crate::script::Script;

/// Disk cost of one stored message beyond its raw bytes: the row header and
/// small columns, the entries of the indexes on `messages` (position,
/// history, unread) and of the id index, its share of `heads`, and the
/// slack of B-tree pages that are not full. Measured on a real file at 100,000
/// messages shaped like `festival-bench store` (1,000 authors, 10 rooms,
/// 175-byte envelopes): 43.2 MB of database, 432 bytes a row, of which 256
/// beyond the raw bytes. Deletes leave pages part-empty, so after eviction a
/// row can cost more; the disk budget is why eviction measures the file.
/// Reproduce with
/// `cargo test -p festival-store --release --test it -- --ignored perf::row_overhead --nocapture`.
pub const ROW_OVERHEAD_BYTES: u64 = 256;

/// How much is stored: messages, and bytes as the budgets count them (raw
/// envelope bytes plus [`ROW_OVERHEAD_BYTES`] a message).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub messages: u64,
}

impl Usage {
    pub(crate) fn from_sums(table: &'static str, raw_bytes: i64, messages: i64) -> Result<Usage> {
        let (raw, messages) = (from_sql(table, raw_bytes)?, from_sql(table, messages)?);
        Ok(Usage { bytes: accounted(raw, messages), messages })
    }
}

/// Bytes as budgets count them.
pub(crate) fn accounted(raw_bytes: u64, messages: u64) -> u64 {
    raw_bytes.saturating_add(messages.saturating_mul(ROW_OVERHEAD_BYTES))
}

/// The raw size of an envelope as a SQLite integer (at most ~16.5 KiB).
pub(crate) fn raw_len(env: &SignedEnvelope) -> i64 {
    i64::try_from(env.bytes().len()).unwrap_or(i64::MAX)
}

/// Add to `script` what a batch stored, to its rooms' sums; for the ingest
/// transaction.
pub(crate) fn room_usage_script(script: &mut Script, chains: &[Touched<'_>]) {
    // Rooms per batch are few (one, in a sync reply): sum per room here and
    // write one row each.
    let mut rooms: Vec<(&RoomId, i64, i64)> = Vec::new();
    for chain in chains.iter().filter(|c| !c.fresh_seqs.is_empty()) {
        match rooms.iter_mut().find(|(room, _, _)| *room == chain.room) {
            Some(sums) => {
                sums.1 += chain.added_bytes;
                sums.2 += chain.added_messages();
            }
            None => rooms.push((chain.room, chain.added_bytes, chain.added_messages())),
        }
    }
    for part in rooms.chunks(crate::ingest::ROWS_PER_STATEMENT) {
        script.sql(&format!(
            "INSERT INTO room_usage (room, raw_bytes, messages) VALUES {}
             ON CONFLICT (room) DO UPDATE SET
                 raw_bytes = raw_bytes + excluded.raw_bytes, messages = messages + excluded.messages;",
            placeholders(3, part.len())
        ));
        for (room, bytes, messages) in part {
            script.bind(room.as_str()).bind(*bytes).bind(*messages);
        }
    }
}

impl Store {
    /// Everything stored. Sums one row per room: no scan of the messages.
    pub async fn usage(&self) -> Result<Usage> {
        let (raw, messages): (i64, i64) =
            sqlx::query_as("SELECT coalesce(sum(raw_bytes), 0), coalesce(sum(messages), 0) FROM room_usage")
                .fetch_one(&self.reader)
                .await?;
        Usage::from_sums("room_usage", raw, messages)
    }

    /// What one room holds (all authors).
    pub async fn room_usage(&self, room: &RoomId) -> Result<Usage> {
        let row: Option<(i64, i64)> = sqlx::query_as("SELECT raw_bytes, messages FROM room_usage WHERE room = ?")
            .bind(room.as_str())
            .fetch_optional(&self.reader)
            .await?;
        row.map_or(Ok(Usage::default()), |(raw, messages)| Usage::from_sums("room_usage", raw, messages))
    }

    /// What one author holds, in every room (one `heads` row per room).
    pub async fn author_usage(&self, author: &PeerId) -> Result<Usage> {
        let (raw, messages): (i64, i64) = sqlx::query_as(
            "SELECT coalesce(sum(raw_bytes), 0), coalesce(sum(messages), 0) FROM heads WHERE author = ?",
        )
        .bind(&author.as_bytes()[..])
        .fetch_one(&self.reader)
        .await?;
        Usage::from_sums("heads", raw, messages)
    }

    /// What one chain (an author in one room) holds.
    pub async fn chain_usage(&self, room: &RoomId, author: &PeerId) -> Result<Usage> {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT raw_bytes, messages FROM heads WHERE room = ? AND author = ?")
                .bind(room.as_str())
                .bind(&author.as_bytes()[..])
                .fetch_optional(&self.reader)
                .await?;
        row.map_or(Ok(Usage::default()), |(raw, messages)| Usage::from_sums("heads", raw, messages))
    }
}
