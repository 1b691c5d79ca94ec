//! Choosing and deleting messages for eviction and expiry: the part both
//! share.
//!
//! Candidates are read on a reader connection, so looking for them (and
//! skipping what may never go) does not hold the write lock; each step then
//! deletes at most [`STEP_ROWS`] rows in one short write transaction that
//! checks every row again: a message is deleted only if it is still the one
//! chosen (same rowid *and* id prefix, since SQLite reuses the highest rowid
//! after a delete) and still evictable.
//!
//! "Oldest first" over several rooms (or several chains of one author) is a
//! k-way merge: each [`Source`] walks an index in order, a page at a time,
//! and the merge always takes the oldest head. Each source keeps its place
//! (a cursor), so rows that may never go (mine) are walked past once per
//! pass, not once per step.

use std::collections::VecDeque;

use festival_core::RoomId;

use crate::error::{from_sql, Result};
use crate::open::Store;
use crate::usage::ROW_OVERHEAD_BYTES;

/// Rows deleted per write transaction. Measured at a million messages on the
/// 2-core machine: deleting 1,000 oldest messages (six index entries each,
/// the usage trigger, the outbox check) holds the write lock ~10-20 ms, about
/// what one ingest batch of 1,000 takes, so ingest waits at most one batch.
pub const STEP_ROWS: usize = 1_000;

/// Candidates read per query from one source. Small enough that a merge over
/// a dozen rooms reads little beyond what it deletes, large enough that a
/// step over one room takes a few queries.
const PAGE_ROWS: i64 = 256;

/// Rows that may be deleted by eviction or expiry, as an SQL condition on
/// `messages AS m`: not written by this device's identity, not a sealed DM
/// addressed to it, not a message of a private group it is in (kept as its
/// DMs are), and not waiting in the outbox. Before an identity exists
/// nothing is "mine", and the first test is true.
pub(crate) const EVICTABLE: &str = "NOT EXISTS (SELECT 1 FROM identity i
         WHERE i.peer_id = m.author OR i.peer_id = m.recipient)
     AND NOT EXISTS (SELECT 1 FROM group_messages g INDEXED BY group_messages_pk WHERE g.pk = m.pk)
     AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.chain = m.chain AND o.seq = m.seq AND o.sent_at IS NULL)";

/// A message that may be deleted, as read by a [`Source`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Candidate {
    pk: i64,
    id_prefix: i64,
    created_at: i64,
    /// Bytes as budgets count them (raw + per-row overhead).
    bytes: u64,
}

/// Where a pass looks for what to delete, oldest first.
pub(crate) enum Source {
    /// The evictable messages of one room, by (created_at, author, seq)
    /// through the history index; only those created before `before`, if
    /// set (expiry).
    Room { room: RoomId, before: Option<i64>, after: Option<(i64, Vec<u8>, i64)> },
    /// The messages of one chain (an author in one room), lowest seq first
    /// through the position index: within one chain seq order is the
    /// author's own order of writing.
    Chain { chain: i64, after_seq: i64 },
}

impl Source {
    pub(crate) fn room(room: RoomId, before: Option<i64>) -> Source {
        Source::Room { room, before, after: None }
    }

    pub(crate) fn chain(chain: i64) -> Source {
        Source::Chain { chain, after_seq: 0 }
    }

    /// The next page of candidates, moving the cursor past them.
    async fn page(&mut self, store: &Store) -> Result<Vec<Candidate>> {
        type Row = (i64, i64, i64, i64, Vec<u8>, i64);
        let rows: Vec<Row> = match self {
            Source::Room { room, before, after } => {
                // Before every author: an empty blob sorts below them all.
                let (at, author, seq) = after.clone().unwrap_or((i64::MIN, Vec::new(), 0));
                let sql = format!(
                    "SELECT m.pk, m.id_prefix, m.created_at, length(m.raw), m.author, m.seq FROM messages AS m
                     WHERE m.room = ?1 AND (m.created_at, m.author, m.seq) > (?2, ?3, ?4) AND m.created_at < ?5
                       AND {EVICTABLE}
                     ORDER BY m.created_at, m.author, m.seq LIMIT ?6"
                );
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(room.as_str())
                    .bind(at)
                    .bind(author)
                    .bind(seq)
                    .bind(before.unwrap_or(i64::MAX))
                    .bind(PAGE_ROWS)
                    .fetch_all(&store.reader)
                    .await?
            }
            Source::Chain { chain, after_seq } => {
                let sql = format!(
                    "SELECT m.pk, m.id_prefix, m.created_at, length(m.raw), x'', m.seq FROM messages AS m
                     WHERE m.chain = ?1 AND m.seq > ?2 AND {EVICTABLE}
                     ORDER BY m.seq LIMIT ?3"
                );
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(*chain)
                    .bind(*after_seq)
                    .bind(PAGE_ROWS)
                    .fetch_all(&store.reader)
                    .await?
            }
        };
        if let Some((_, _, created_at, _, author, seq)) = rows.last() {
            match self {
                Source::Room { after, .. } => *after = Some((*created_at, author.clone(), *seq)),
                Source::Chain { after_seq, .. } => *after_seq = *seq,
            }
        }
        rows.into_iter()
            .map(|(pk, id_prefix, created_at, raw_len, _, _)| {
                let bytes = from_sql("messages", raw_len)?.saturating_add(ROW_OVERHEAD_BYTES);
                Ok(Candidate { pk, id_prefix, created_at, bytes })
            })
            .collect()
    }
}

/// Sources merged oldest first.
pub(crate) struct Merge {
    sources: Vec<(Source, VecDeque<Candidate>, bool)>,
}

impl Merge {
    pub(crate) fn new(sources: Vec<Source>) -> Merge {
        Merge { sources: sources.into_iter().map(|s| (s, VecDeque::new(), false)).collect() }
    }

    /// Take up to `max_rows` candidates, oldest first, stopping once their
    /// bytes reach `max_bytes`. Empty when every source is exhausted.
    pub(crate) async fn take(&mut self, store: &Store, max_rows: usize, max_bytes: u64) -> Result<Vec<Candidate>> {
        let mut out = Vec::new();
        let mut bytes = 0u64;
        while out.len() < max_rows && bytes < max_bytes {
            for (source, buffer, exhausted) in &mut self.sources {
                if buffer.is_empty() && !*exhausted {
                    let page = source.page(store).await?;
                    *exhausted = page.len() < PAGE_ROWS as usize;
                    buffer.extend(page);
                }
            }
            let oldest = self
                .sources
                .iter_mut()
                .filter_map(|(_, buffer, _)| buffer.front().map(|c| (c.created_at, c.pk)).zip(Some(buffer)))
                .min_by_key(|(key, _)| *key);
            let Some((_, buffer)) = oldest else { break };
            let candidate = buffer.pop_front().expect("the buffer had a front");
            bytes = bytes.saturating_add(candidate.bytes);
            out.push(candidate);
        }
        Ok(out)
    }
}

/// What a deletion removed, as budgets count it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Evicted {
    pub messages: u64,
    pub bytes: u64,
}

impl Evicted {
    pub(crate) fn add(&mut self, other: Evicted) {
        self.messages += other.messages;
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

/// Delete from `merge`, oldest first, until `need` bytes are gone or nothing
/// is left to take; [`STEP_ROWS`] at most per transaction.
pub(crate) async fn delete_oldest(store: &Store, merge: &mut Merge, need: u64) -> Result<Evicted> {
    let mut done = Evicted::default();
    while done.bytes < need {
        let victims = merge.take(store, STEP_ROWS, need - done.bytes).await?;
        if victims.is_empty() {
            break;
        }
        done.add(delete(store, &victims, None).await?);
    }
    Ok(done)
}

/// One write transaction deleting these candidates, each only if it is still
/// the row chosen and still evictable. With `expired_before`, also only if
/// it was created before that, and the cutoff is recorded in the same
/// transaction (see [`Store::expire`]). Returns what was really deleted,
/// measured by the usage sums, which the delete trigger keeps exact.
pub(crate) async fn delete(store: &Store, victims: &[Candidate], expired_before: Option<i64>) -> Result<Evicted> {
    let pairs: Vec<String> = victims.iter().map(|c| format!("[{},{}]", c.pk, c.id_prefix)).collect();
    let json = format!("[{}]", pairs.join(","));
    // The chosen rows, found by rowid (one probe each), kept only if their
    // id prefix still matches and they may still go.
    let sql = format!(
        "DELETE FROM messages WHERE pk IN (
             SELECT m.pk FROM json_each(?1) AS v JOIN messages AS m
                 ON m.pk = v.value ->> 0 AND m.id_prefix = v.value ->> 1
             WHERE m.created_at < ?2 AND {EVICTABLE})"
    );
    let totals = "SELECT coalesce(sum(raw_bytes), 0), coalesce(sum(messages), 0) FROM room_usage";
    let mut tx = store.writer.begin_with("BEGIN IMMEDIATE").await?;
    let (raw_before, n_before): (i64, i64) = sqlx::query_as(totals).fetch_one(&mut *tx).await?;
    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(json).bind(expired_before.unwrap_or(i64::MAX)).execute(&mut *tx).await?;
    if let Some(cutoff) = expired_before {
        // Only a rise is written: an unchanged row would still dirty a page
        // (and cost an fsync) on every background call.
        sqlx::query("UPDATE retention SET expire_before = ?1 WHERE singleton = 1 AND expire_before < ?1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?;
    }
    let (raw_after, n_after): (i64, i64) = sqlx::query_as(totals).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    // The deleted messages' search entries stay as tombstones in the
    // index's segments until FTS5's own merges (as new messages are
    // indexed) drop them; with the rowids spread (migration 0013) a search
    // reads past them cheaply. An explicit merge after each step was tried:
    // same search times, and evicting 96,000 indexed messages took 127 s
    // instead of 6.5 s (docs/benchmarks.md).
    let messages = from_sql("room_usage", n_before - n_after)?;
    let raw = from_sql("room_usage", raw_before - raw_after)?;
    Ok(Evicted { messages, bytes: raw.saturating_add(messages.saturating_mul(ROW_OVERHEAD_BYTES)) })
}
