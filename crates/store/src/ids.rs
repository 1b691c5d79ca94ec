//! Lookups by message id, through an index kept in two parts so that random
//! ids do not cost a random page write per message (see
//! migrations/0003_id_index.sql for the tables and why).
//!
//! Ingest adds the new messages' entries to `recent_ids`, in its own
//! transaction. Each time [`MERGE_STEP`] more entries have come in, the
//! same transaction also moves one slice of the key space (1/[`MERGE_SLICES`]
//! of it: the slice holding the most waiting entries, so slices take turns)
//! into `message_ids`, in key order, and removes the entries of deleted
//! messages in that slice (`dead_ids`, filled by the delete trigger). The
//! work is the same in every batch, and needs no transaction (or fsync) of
//! its own.
//!
//! A lookup probes both parts and keeps only a row whose whole id matches,
//! so a stale entry (its message deleted, or its rowid given by SQLite to a
//! newer message) is never returned. A merge removes an entry only if it is
//! stale when the merge runs, so a message deleted and stored again under
//! the same rowid keeps its entry.

use std::sync::{Arc, Mutex, MutexGuard};

use sqlx::SqliteConnection;

use crate::error::Result;
use crate::open::Store;
use crate::script::Script;

/// Slices of the key space merged one at a time. The cost of a batch of
/// 1,000 is what it dirties in `recent_ids` (which holds ~MERGE_SLICES / 2
/// batches of entries, ~14 bytes each: ~55 pages at 32) plus the pages of
/// one slice of `message_ids` (~4,500 pages at a million messages, so ~140
/// at 32): about 200 pages, against ~1,000 for a plain index. Fewer
/// slices make `recent_ids` smaller and each merge larger; at a million
/// messages the sum is lowest between 32 and 64.
pub const MERGE_SLICES: usize = 32;

/// Bits of the id prefix that name its slice.
const SLICE_BITS: u32 = MERGE_SLICES.trailing_zeros();

/// New entries between two slice merges: about one batch of sync. Each
/// slice then gathers ~1,000 entries between its merges, whatever the
/// batch size, so a merge writes each page of its slice once for several
/// entries even when messages arrive one at a time.
pub const MERGE_STEP: u64 = 1_024;

/// The query of [`Store::get`]: both parts of the index, then the row.
pub(crate) const GET_BY_ID: &str = "SELECT id, raw, hops, received_at FROM messages
     WHERE pk IN (SELECT pk FROM message_ids WHERE id_prefix = ?1
                  UNION ALL SELECT pk FROM recent_ids WHERE id_prefix = ?1)
       AND id = ?2";

/// The rowids the index holds for the id prefix `prefix` (an SQL
/// expression), as a subquery: `m.pk IN ({})`.
pub(crate) fn pks_of(prefix: &str) -> String {
    format!(
        "SELECT pk FROM message_ids WHERE id_prefix = {prefix}
         UNION ALL SELECT pk FROM recent_ids WHERE id_prefix = {prefix}"
    )
}

/// Move the entries of one key range from `recent_ids` to `message_ids`,
/// and drop the stale entries noted in `dead_ids` for it. Each of the four
/// statements binds the range's bounds.
const MERGE_SQL: &str = "
    INSERT OR IGNORE INTO message_ids (id_prefix, pk)
        SELECT id_prefix, pk FROM recent_ids WHERE id_prefix BETWEEN ? AND ?;
    DELETE FROM recent_ids WHERE id_prefix BETWEEN ? AND ?;
    DELETE FROM message_ids WHERE (id_prefix, pk) IN (
        SELECT d.id_prefix, d.pk FROM dead_ids d
        WHERE d.id_prefix BETWEEN ? AND ?
          AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.pk = d.pk AND m.id_prefix = d.id_prefix));
    DELETE FROM dead_ids WHERE id_prefix BETWEEN ? AND ?;";

fn merge_range(script: &mut Script, (low, high): (i64, i64)) {
    script.sql(MERGE_SQL);
    for _ in 0..4 {
        script.bind(low).bind(high);
    }
}

/// The slice of an id prefix: its top bits, as the big-endian bytes of the
/// id read them (the prefix is their signed reading; see `id_prefix`).
fn slice_of(prefix: i64) -> usize {
    // The shift leaves SLICE_BITS bits: below MERGE_SLICES.
    ((prefix as u64) >> (64 - SLICE_BITS)) as usize
}

/// The prefixes of one slice, as SQLite compares them (signed). Each slice
/// is one range of unsigned prefixes, and the sign bit is a slice boundary,
/// so it is one range of signed ones too.
fn slice_range(slice: usize) -> (i64, i64) {
    let low = (slice as u64) << (64 - SLICE_BITS);
    let high = low | (u64::MAX >> SLICE_BITS);
    (low as i64, high as i64)
}

/// What ingest needs to know to choose the next slice to merge: an
/// estimate (a rolled-back batch leaves it off by that batch, which only
/// shifts a merge), restored from `recent_ids` when the store opens.
#[derive(Debug, Default)]
pub(crate) struct IdIndex {
    /// Entries waiting in `recent_ids`, per slice.
    waiting: [u64; MERGE_SLICES],
    /// Entries added since the last slice merge.
    since_merge: u64,
}

/// Shared by a store's clones; ingest holds the lock only between awaits.
pub(crate) type SharedIdIndex = Arc<Mutex<IdIndex>>;

fn lock(index: &SharedIdIndex) -> MutexGuard<'_, IdIndex> {
    // The state is an estimate: whatever a panicking thread left is usable.
    index.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The per-slice counts of `recent_ids`, for [`IdIndex`] at open.
pub(crate) async fn load(conn: &mut SqliteConnection) -> Result<SharedIdIndex, sqlx::Error> {
    let sql = format!(
        "SELECT (id_prefix >> {}) & {}, count(*) FROM recent_ids GROUP BY 1",
        64 - SLICE_BITS,
        MERGE_SLICES - 1
    );
    let rows: Vec<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *conn).await?;
    let mut index = IdIndex::default();
    let mut waiting = 0;
    for (slice, n) in rows {
        if let (Ok(slice), Ok(n)) = (usize::try_from(slice), u64::try_from(n)) {
            if let Some(count) = index.waiting.get_mut(slice) {
                *count = n;
                waiting += n;
            }
        }
    }
    // In steady use about half the slices' worth of steps wait. Whatever
    // waits beyond that (a store used in short sessions, each adding less
    // than a step) counts as due, so the recent part cannot grow without
    // bound across restarts.
    index.since_merge = waiting.saturating_sub(MERGE_SLICES as u64 * MERGE_STEP / 2);
    Ok(Arc::new(Mutex::new(index)))
}

/// Add to `script` (run in the ingest transaction, after its inserts): the
/// entries of the rows above `before` (this transaction's, whose id
/// prefixes are `prefixes`), and as many slice merges as are due.
pub(crate) fn ids_script(script: &mut Script, index: &SharedIdIndex, before: i64, prefixes: &[i64]) {
    if prefixes.is_empty() {
        return;
    }
    // In key order, so consecutive inserts land on the same page. OR IGNORE:
    // an entry of a deleted message may still wait with the same key.
    script
        .sql(
            "INSERT OR IGNORE INTO recent_ids (id_prefix, pk)
             SELECT id_prefix, pk FROM messages WHERE pk > ? ORDER BY id_prefix;",
        )
        .bind(before);
    let mut index = lock(index);
    for &prefix in prefixes {
        index.waiting[slice_of(prefix)] += 1;
    }
    index.since_merge += prefixes.len() as u64;
    let mut merged = 0;
    while index.since_merge >= MERGE_STEP && merged < MERGE_SLICES {
        let fullest = (0..MERGE_SLICES).max_by_key(|&s| index.waiting[s]).unwrap_or(0);
        merge_range(script, slice_range(fullest));
        index.waiting[fullest] = 0;
        index.since_merge -= MERGE_STEP;
        merged += 1;
    }
    if merged == MERGE_SLICES {
        // Everything was merged: nothing is due any more.
        index.since_merge = 0;
    }
}

impl Store {
    /// Merge all of `recent_ids` into `message_ids` and drop every stale
    /// entry, in one transaction. Ingest merges a slice at a time on its
    /// own; this is for tests, and for a node that wants the index compact
    /// (after a large eviction, say).
    pub async fn merge_ids(&self) -> Result<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut script = Script::default();
        merge_range(&mut script, (i64::MIN, i64::MAX));
        script.run(&mut tx).await?;
        tx.commit().await?;
        *lock(&self.ids) = IdIndex::default();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_the_prefixes_in_order_without_overlap() {
        let mut next = i64::MIN;
        // Signed order: the slices of negative prefixes (top bit set) first.
        let order = (MERGE_SLICES / 2..MERGE_SLICES).chain(0..MERGE_SLICES / 2);
        for slice in order {
            let (low, high) = slice_range(slice);
            assert_eq!(low, next, "slice {slice} starts where the previous ended");
            assert!(low < high);
            assert_eq!((slice_of(low), slice_of(high)), (slice, slice));
            next = high.wrapping_add(1);
        }
        assert_eq!(next, i64::MIN, "the last slice ends at i64::MAX");
    }
}
