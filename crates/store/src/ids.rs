//! Lookups by message id, through an index kept in two parts so that random
//! ids do not cost a random page write per message (see
//! migrations/0003_id_index.sql and 0004_recent_ids_in_memory.sql).
//!
//! The main part is the table `message_ids`. The recent part is in memory:
//! the (id prefix, rowid) of every message stored since its slice of the key
//! space (1/[`MERGE_SLICES`] of it) was last merged. Each time [`MERGE_STEP`]
//! more entries have come in, the ingest transaction also merges one slice,
//! the one merged longest ago (so slices take turns): its waiting entries go
//! into `message_ids` in key order, the entries of deleted messages in that
//! slice leave it (`dead_ids`, filled by the delete trigger), and
//! `id_merges` records that every entry of the slice up to the highest rowid
//! now stored is merged. Ingest writes nothing else for the index: no page
//! of a recent table to dirty per message, no row to read back.
//!
//! SQLite gives a new row the highest rowid + 1, so after the newest rows
//! were deleted (eviction) it gives their rowids again, below marks already
//! written: a batch that stores rows at or below a mark lowers that mark
//! below its first row, in its own transaction, so a mark never claims a row
//! whose entry is not merged.
//!
//! Memory is lost with the process, the file is not: at open, the rows above
//! each slice's merge mark are read back into memory (at most about
//! `MERGE_SLICES * MERGE_STEP` of them: slices take turns). A commit that
//! lands without its entries reaching memory (the process died right after)
//! is covered the same way.
//!
//! A lookup asks memory for the rowids of its prefix and probes the main
//! part, and keeps only a row whose whole id matches, so a stale entry (its
//! message deleted, or its rowid given by SQLite to a newer message) is never
//! returned. A merge removes an entry only if it is stale when the merge
//! runs, so a message deleted and stored again under the same rowid keeps
//! its entry.
//!
//! Another `Store` on the same file (a second process, a test peeking in)
//! writes rows this one's memory does not hold. Lookups therefore also read
//! the rows above the highest rowid this instance knows of (a rowid range,
//! empty unless someone else wrote), and ingest reads the recent part back
//! from the file again when the writer's `data_version` says another
//! connection committed, so its merges take those rows in too.

use std::sync::{Arc, Mutex, MutexGuard};

use sqlx::SqliteConnection;

use crate::error::Result;
use crate::ingest::placeholders;
use crate::open::Store;
use crate::script::Script;

/// Slices of the key space merged one at a time. A merge writes the pages of
/// one slice of `message_ids` (~4,500 pages at a million messages, so ~140
/// at 32) for the ~1,000 entries that gathered in it; more slices mean
/// fewer pages per merge, more entries waiting in memory (16 bytes each,
/// `MERGE_SLICES * MERGE_STEP` at most in steady use) and more rows to read
/// back at open.
pub const MERGE_SLICES: usize = 32;

/// Bits of the id prefix that name its slice.
const SLICE_BITS: u32 = MERGE_SLICES.trailing_zeros();

/// New entries between two slice merges: about one batch of sync. Each
/// slice then gathers ~1,000 entries between its merges, whatever the
/// batch size, so a merge writes each page of its slice once for several
/// entries even when messages arrive one at a time.
pub const MERGE_STEP: u64 = 1_024;

/// Rows of one multi-row insert of a merge (two values each). A merge's
/// entries go in statements of this many rows, then of the powers of two
/// below it that make up the rest, so a handful of statement shapes stay
/// in sqlx's statement cache instead of a new shape per merge evicting the
/// others (ingest's own among them).
const MERGE_ROWS_PER_STATEMENT: usize = 256;

/// Sizes of the statements for `n` rows: as many full ones as fit, then
/// the binary digits of the rest, largest first.
fn statement_sizes(n: usize) -> impl Iterator<Item = usize> {
    let full = std::iter::repeat_n(MERGE_ROWS_PER_STATEMENT, n / MERGE_ROWS_PER_STATEMENT);
    let rest = n % MERGE_ROWS_PER_STATEMENT;
    let digits = (0..usize::BITS).rev().map(|b| 1usize << b).filter(move |d| rest & d != 0);
    full.chain(digits)
}

/// The query of [`Store::get`]: the main part of the index, the rowids
/// memory holds for the prefix (`?3`, a JSON array), the rows above the
/// highest rowid this instance knows (`?4`), then the row.
pub(crate) const GET_BY_ID: &str = "SELECT id, raw, hops, received_at FROM messages
     WHERE pk IN (SELECT pk FROM message_ids WHERE id_prefix = ?1
                  UNION ALL SELECT value FROM json_each(?3)
                  UNION ALL SELECT pk FROM messages WHERE pk > ?4 AND id_prefix = ?1)
       AND id = ?2";

/// The rowids the index holds for the id prefix `prefix` (an SQL
/// expression), with the rowids memory holds for it in `recent` (an SQL
/// expression for a JSON array) and the rows above `known` (an SQL
/// expression), as a subquery: `m.pk IN ({})`.
pub(crate) fn pks_of(prefix: &str, recent: &str, known: &str) -> String {
    format!(
        "SELECT pk FROM message_ids WHERE id_prefix = {prefix}
         UNION ALL SELECT value FROM json_each({recent})
         UNION ALL SELECT pk FROM messages WHERE pk > {known} AND id_prefix = {prefix}"
    )
}

/// Drop the stale entries noted in `dead_ids` for one key range from
/// `message_ids`, and the notes. Each statement binds the range's bounds.
const DEAD_SQL: &str = "
    DELETE FROM message_ids WHERE (id_prefix, pk) IN (
        SELECT d.id_prefix, d.pk FROM dead_ids d
        WHERE d.id_prefix BETWEEN ? AND ?
          AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.pk = d.pk AND m.id_prefix = d.id_prefix));
    DELETE FROM dead_ids WHERE id_prefix BETWEEN ? AND ?;";

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

/// The recent part of the index, and when each slice was last merged.
#[derive(Debug)]
pub(crate) struct IdIndex {
    /// Per slice: (id prefix, rowid) of the rows stored above `through`.
    recent: Vec<Vec<(i64, i64)>>,
    /// Per slice: every row up to this rowid has its entry in `message_ids`.
    through: [i64; MERGE_SLICES],
    /// Entries added since the last slice merge.
    since_merge: u64,
    /// The highest rowid this instance has seen stored: rows above it were
    /// written by another connection, and lookups read them directly.
    known_max: i64,
    /// The writer's `data_version` when memory last matched the file.
    data_version: Option<i64>,
}

impl Default for IdIndex {
    fn default() -> IdIndex {
        IdIndex {
            recent: vec![Vec::new(); MERGE_SLICES],
            through: [0; MERGE_SLICES],
            since_merge: 0,
            known_max: 0,
            data_version: None,
        }
    }
}

impl IdIndex {
    /// The rowids memory holds for `prefix`, as a JSON array (`[]` mostly).
    fn pks_json(&self, prefix: i64) -> String {
        let pks: Vec<String> =
            self.recent[slice_of(prefix)].iter().filter(|(p, _)| *p == prefix).map(|(_, pk)| pk.to_string()).collect();
        format!("[{}]", pks.join(","))
    }

    /// Entries waiting in memory.
    fn waiting(&self) -> usize {
        self.recent.iter().map(Vec::len).sum()
    }
}

/// Shared by a store's clones; held only between awaits.
pub(crate) type SharedIdIndex = Arc<Mutex<IdIndex>>;

fn lock(index: &SharedIdIndex) -> MutexGuard<'_, IdIndex> {
    // Every change is made whole under the lock: what a panicking thread
    // left is consistent.
    index.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Memory's rowids for `prefix`, as a JSON array for [`GET_BY_ID`] and
/// [`pks_of`]. Read before the query that uses them starts: an entry that
/// leaves memory does so after the merge that put it in `message_ids`
/// committed, so the query sees it there.
pub(crate) fn recent_pks(index: &SharedIdIndex, prefix: i64) -> (String, i64) {
    let index = lock(index);
    (index.pks_json(prefix), index.known_max)
}

/// The recent part as the file says it is, at open: the merge marks, and
/// the rows above them.
pub(crate) async fn load(conn: &mut SqliteConnection) -> Result<SharedIdIndex, sqlx::Error> {
    Ok(Arc::new(Mutex::new(read_back(conn).await?)))
}

/// Read the recent part again (another connection wrote): on the writer,
/// inside the ingest transaction, before planning its merges.
pub(crate) async fn reload(conn: &mut SqliteConnection, index: &SharedIdIndex, data_version: i64) -> Result<()> {
    let mut fresh = read_back(conn).await?;
    fresh.data_version = Some(data_version);
    *lock(index) = fresh;
    Ok(())
}

/// Whether memory was read at this `data_version` of the writer (nobody
/// else committed since).
pub(crate) fn current(index: &SharedIdIndex, data_version: i64) -> bool {
    lock(index).data_version == Some(data_version)
}

async fn read_back(conn: &mut SqliteConnection) -> Result<IdIndex, sqlx::Error> {
    let marks: Vec<(i64, i64)> =
        sqlx::query_as("SELECT slice, through_pk FROM id_merges").fetch_all(&mut *conn).await?;
    let mut index = IdIndex::default();
    let complete =
        marks.len() == MERGE_SLICES && marks.iter().all(|(s, _)| usize::try_from(*s).is_ok_and(|s| s < MERGE_SLICES));
    if complete {
        for (slice, through) in marks {
            index.through[slice as usize] = through;
        }
    } else {
        // Written with another number of slices (or damaged): the lowest
        // mark holds for every slice. Entries read back twice are merged
        // with OR IGNORE.
        let low = marks.iter().map(|(_, t)| *t).min().unwrap_or(0);
        index.through = [low; MERGE_SLICES];
    }
    let low = index.through.iter().copied().min().unwrap_or(0);
    let rows: Vec<(i64, i64)> = sqlx::query_as("SELECT id_prefix, pk FROM messages WHERE pk > ? ORDER BY pk")
        .bind(low)
        .fetch_all(&mut *conn)
        .await?;
    for (prefix, pk) in rows {
        let slice = slice_of(prefix);
        if pk > index.through[slice] {
            index.recent[slice].push((prefix, pk));
        }
    }
    // In steady use about half the slices' worth of steps wait. Whatever
    // waits beyond that (a store used in short sessions, each adding less
    // than a step) counts as due, so the recent part cannot grow without
    // bound across restarts.
    let waiting = index.waiting() as u64;
    index.since_merge = waiting.saturating_sub(MERGE_SLICES as u64 * MERGE_STEP / 2);
    let (max, data_version): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT coalesce(max(pk), 0) FROM messages), (SELECT data_version FROM pragma_data_version())",
    )
    .fetch_one(&mut *conn)
    .await?;
    index.known_max = max;
    index.data_version = Some(data_version);
    Ok(index)
}

/// What an ingest transaction does to the index, for [`IdIndex`] once it
/// has committed ([`apply`]).
#[derive(Debug, Default)]
pub(crate) struct IdsPlan {
    /// (id prefix, rowid) of the rows it stored.
    fresh: Vec<(i64, i64)>,
    /// Marks at or above this rowid came down to just below it (rowids
    /// given again; see the module docs).
    lowered_to: Option<i64>,
    /// Slices it merged, up to `last_pk`.
    merged: Vec<usize>,
    last_pk: i64,
}

/// Add to `script` (run in the ingest transaction, after its inserts) the
/// slice merges that are due, given the entries of the rows it stored
/// (`fresh`: id prefix and rowid; `last_pk`, the highest rowid now).
/// Memory is not touched: call [`apply`] with the plan once committed.
pub(crate) fn ids_script(script: &mut Script, index: &SharedIdIndex, fresh: Vec<(i64, i64)>, last_pk: i64) -> IdsPlan {
    let index = lock(index);
    // Rowids given again, below a mark: that mark must not claim them.
    let first = fresh.iter().map(|(_, pk)| *pk).min();
    let lowered_to = first.filter(|first| index.through.iter().any(|t| t >= first)).map(|first| first - 1);
    if let Some(to) = lowered_to {
        script.sql("UPDATE id_merges SET through_pk = ? WHERE through_pk > ?;").bind(to).bind(to);
    }
    let through = lowered(index.through, lowered_to);
    let mut due = index.since_merge + fresh.len() as u64;
    let mut merged: Vec<usize> = Vec::new();
    while due >= MERGE_STEP && merged.len() < MERGE_SLICES {
        // The slice merged longest ago (lowest mark; the lowest slice of
        // equals), so every slice takes its turn.
        let Some(slice) = (0..MERGE_SLICES).filter(|s| !merged.contains(s)).min_by_key(|&s| (through[s], s)) else {
            break;
        };
        let mut entries: Vec<(i64, i64)> = index.recent[slice].clone();
        entries.extend(fresh.iter().copied().filter(|(p, _)| slice_of(*p) == slice));
        merge_slice(script, slice, &mut entries, last_pk);
        merged.push(slice);
        due -= MERGE_STEP;
    }
    IdsPlan { fresh, lowered_to, merged, last_pk }
}

/// The merge marks, none above `to` (rowids given again below them).
fn lowered(through: [i64; MERGE_SLICES], to: Option<i64>) -> [i64; MERGE_SLICES] {
    through.map(|t| to.map_or(t, |to| t.min(to)))
}

/// Put a committed plan into memory.
pub(crate) fn apply(index: &SharedIdIndex, plan: IdsPlan) {
    let mut index = lock(index);
    index.known_max = index.known_max.max(plan.last_pk);
    index.through = lowered(index.through, plan.lowered_to);
    let mut due = index.since_merge + plan.fresh.len() as u64;
    for &slice in &plan.merged {
        index.recent[slice].clear();
        index.through[slice] = plan.last_pk;
        due = due.saturating_sub(MERGE_STEP);
    }
    for (prefix, pk) in plan.fresh {
        let slice = slice_of(prefix);
        if !plan.merged.contains(&slice) {
            index.recent[slice].push((prefix, pk));
        }
    }
    index.since_merge = if plan.merged.len() == MERGE_SLICES { 0 } else { due };
}

/// The statements that merge one slice: its entries (sorted here) into
/// `message_ids`, its dead entries out, and its mark.
fn merge_slice(script: &mut Script, slice: usize, entries: &mut [(i64, i64)], last_pk: i64) {
    entries.sort_unstable();
    // OR IGNORE: an entry read back twice (see `load`), or one whose row
    // was deleted and stored again under the same rowid.
    let mut rest: &[(i64, i64)] = entries;
    for size in statement_sizes(rest.len()) {
        let (part, tail) = rest.split_at(size);
        rest = tail;
        script.sql(&format!("INSERT OR IGNORE INTO message_ids (id_prefix, pk) VALUES {};", placeholders(2, size)));
        for &(prefix, pk) in part {
            script.bind(prefix).bind(pk);
        }
    }
    let (low, high) = slice_range(slice);
    script.sql(DEAD_SQL).bind(low).bind(high).bind(low).bind(high);
    script
        .sql("INSERT INTO id_merges (slice, through_pk) VALUES (?, ?) ON CONFLICT (slice) DO UPDATE SET through_pk = excluded.through_pk;")
        .bind(slice as i64)
        .bind(last_pk);
}

impl Store {
    /// Merge every slice of the recent part into `message_ids` and drop
    /// every stale entry, in one transaction. Ingest merges a slice at a
    /// time on its own; this is for tests, and for a node that wants the
    /// index compact (after a large eviction, say).
    pub async fn merge_ids(&self) -> Result<()> {
        let mut conn = self.writer.acquire().await?;
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
        let (last_pk, data_version): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT coalesce(max(pk), 0) FROM messages), (SELECT data_version FROM pragma_data_version())",
        )
        .fetch_one(&mut *tx)
        .await?;
        // Another connection wrote: merge its rows too (see the module docs).
        if !current(&self.ids, data_version) {
            reload(&mut tx, &self.ids, data_version).await?;
        }
        let (script, plan) = {
            let index = lock(&self.ids);
            let mut script = Script::default();
            for slice in 0..MERGE_SLICES {
                let mut entries = index.recent[slice].clone();
                merge_slice(&mut script, slice, &mut entries, last_pk);
            }
            (script, IdsPlan { fresh: Vec::new(), lowered_to: None, merged: (0..MERGE_SLICES).collect(), last_pk })
        };
        script.run(&mut tx).await?;
        tx.commit().await?;
        apply(&self.ids, plan);
        Ok(())
    }

    /// Entries of the id index waiting in memory (for tests and status).
    pub fn recent_ids(&self) -> usize {
        lock(&self.ids).waiting()
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

    #[test]
    fn merge_statements_come_in_few_sizes_that_add_up() {
        for n in [0, 1, 5, 255, 256, 257, 1_000, 1_024, 4_097] {
            let sizes: Vec<usize> = statement_sizes(n).collect();
            assert_eq!(sizes.iter().sum::<usize>(), n, "{n}: {sizes:?}");
            assert!(sizes.iter().all(|s| s.is_power_of_two() && *s <= MERGE_ROWS_PER_STATEMENT), "{n}: {sizes:?}");
        }
    }

    #[test]
    fn a_committed_plan_moves_merged_slices_out_of_memory_and_keeps_the_rest() {
        let index: SharedIdIndex = Arc::new(Mutex::new(IdIndex::default()));
        let prefix = |slice: usize, n: i64| slice_range(slice).0.wrapping_add(n);
        let fresh: Vec<(i64, i64)> = (0..MERGE_STEP as i64).map(|i| (prefix(i as usize % 4, i), i + 1)).collect();
        let mut script = Script::default();
        let plan = ids_script(&mut script, &index, fresh, MERGE_STEP as i64);
        assert_eq!(plan.merged, vec![0], "one step: one slice, the lowest of equal marks");
        apply(&index, plan);
        let i = lock(&index);
        assert_eq!(i.through[0], MERGE_STEP as i64);
        assert!(i.recent[0].is_empty());
        assert_eq!(i.waiting(), (MERGE_STEP as usize) * 3 / 4, "slices 1-3 wait");
        assert_eq!(i.since_merge, 0);
        assert_eq!(i.pks_json(prefix(1, 1)), "[2]");
        assert_eq!(i.pks_json(prefix(0, 0)), "[]", "merged: the table has it");
    }
}
