//! Writing messages: one at a time or in batches, with `heads`, the outbox,
//! the accounting and the id index kept in the same transaction so a crash
//! can never leave them disagreeing.
//!
//! Batches are the hot path (a sync pulls thousands of messages), so a batch
//! is one transaction of a few round trips to SQLite:
//! 1. one query for the chains of the batch (see `heads::find_chains`) and
//!    the highest rowid, the mark above which rows are this transaction's;
//! 2. multi-row `INSERT .. ON CONFLICT DO NOTHING`s, whose row counts say
//!    whether everything was new (the common case, which needs nothing more);
//!    the only constraint they can hit is the (chain, seq) position, which
//!    also catches a stored id (see `insert_rows`);
//! 3. only for a statement that skipped rows, one lookup of who holds its
//!    positions, which tells new, duplicate and conflict apart;
//! 4. one script (see `script`) with everything that follows from what was
//!    stored: outbox entries of our own new messages, the heads of the
//!    chains touched, the rooms' sums, the id index.
//!
//! sqlx runs SQLite on a worker thread and every statement, and every row a
//! statement returns, is a hop to it and back. Per-row statements, or an
//! `INSERT .. RETURNING` that sends back every new id, spend more time in
//! those hops than in SQLite (measured: RETURNING alone doubled the insert
//! time). Statements are prepared once per connection and reused through
//! sqlx's statement cache, so a batch pays only for binding and stepping.

use std::collections::{BTreeMap, HashMap, HashSet};

use festival_core::{Body, Kind, MessageId, PeerId, RoomId, SignedEnvelope};
use sqlx::{AssertSqlSafe, Connection, SqliteConnection};

use crate::error::{corrupt, message_id_from_sql, to_sql, Result, StoreError};
use crate::heads::{find_chains, heads_script, Touched};
use crate::ids::{apply as apply_ids, ids_script};
use crate::open::Store;
use crate::script::Script;
use crate::usage::{raw_len, room_usage_script};

/// What happened to a message handed to the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// Stored for the first time.
    New,
    /// The same message (same id) was already stored; nothing changed.
    Duplicate,
}

/// Rows per multi-row statement. At most 12 values are bound per row, so
/// 1,024 rows is under 12,300 variables, below SQLite's limit of 32,766: a
/// batch of 1,000 is one statement, one round trip to sqlx's worker thread.
/// A shape not seen before is prepared once per connection (a few hundred
/// microseconds at this size, against ~10 ms to insert the rows).
pub(crate) const ROWS_PER_STATEMENT: usize = 1_024;

/// `(?,?,?),(?,?,?)`: `rows` groups of `columns` placeholders. The text
/// depends only on the shape, so sqlx's statement cache reuses the prepared
/// statement for every batch of that shape.
pub(crate) fn placeholders(columns: usize, rows: usize) -> String {
    let one = format!("({})", vec!["?"; columns].join(","));
    vec![one; rows].join(",")
}

/// The key of the id index (see [`crate::ids`]): the id's first 8 bytes as
/// a big-endian `i64`. Ids are BLAKE3 hashes, so 8 bytes tell messages apart
/// all but always, and lookups also compare the whole id. See
/// migrations/0001_init.sql.
pub(crate) fn id_prefix(id: &MessageId) -> i64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&id.as_bytes()[..8]);
    i64::from_be_bytes(first)
}

/// An item whose fields have been checked and converted for SQLite.
pub(crate) struct Row<'a> {
    /// Position in the caller's slice, where its outcome goes.
    index: usize,
    pub(crate) env: &'a SignedEnvelope,
    hops: u8,
    /// `heads.chain` of the envelope's (room, author); set inside the
    /// transaction, by `resolve_chains`.
    chain: i64,
    pub(crate) seq: i64,
    created_at: i64,
    recipient: Option<PeerId>,
}

/// A sealed DM's recipient (`None` for other kinds). Parsed again (not
/// `parsed_body`, which panics on a bad body) so an envelope rebuilt from
/// damaged bytes is refused, not a crash.
pub(crate) fn recipient(env: &SignedEnvelope) -> Result<Option<PeerId>> {
    match env.kind() {
        Kind::SealedDm => match Body::parse(Kind::SealedDm, env.body()) {
            Ok(Body::SealedDm(sealed)) => Ok(Some(sealed.recipient)),
            Ok(_) => Ok(None),
            Err(e) => Err(StoreError::Envelope(e.into())),
        },
        _ => Ok(None),
    }
}

fn check<'a>(index: usize, env: &'a SignedEnvelope, hops: u8) -> Result<Row<'a>> {
    let recipient = recipient(env)?;
    Ok(Row {
        index,
        env,
        hops,
        chain: 0,
        seq: to_sql("seq", env.seq())?,
        created_at: to_sql("created_at", env.created_at())?,
        recipient,
    })
}

impl Store {
    /// Store one verified envelope that travelled `hops` links to reach us.
    /// `local` marks a message this device authored: it also joins the outbox.
    ///
    /// Fails with [`StoreError::Conflict`] when a different message already
    /// holds the same (room, author, seq).
    pub async fn insert(&self, env: &SignedEnvelope, hops: u8, received_at: u64, local: bool) -> Result<Inserted> {
        let mut outcomes = self.ingest(&[(env, hops)], received_at, local).await?;
        outcomes.pop().expect("ingest returns one outcome per item")
    }

    /// Store many envelopes in one transaction. The outer error is a failure
    /// of the whole batch (nothing was stored); otherwise each item has its
    /// own outcome, in input order, and a conflict in one item does not stop
    /// the others. Within a batch the first of two items for the same
    /// position wins, as if they had been inserted one by one.
    pub async fn insert_batch(
        &self,
        items: &[(SignedEnvelope, u8)],
        received_at: u64,
        local: bool,
    ) -> Result<Vec<Result<Inserted>>> {
        let items: Vec<(&SignedEnvelope, u8)> = items.iter().map(|(env, hops)| (env, *hops)).collect();
        self.ingest(&items, received_at, local).await
    }

    async fn ingest(
        &self,
        items: &[(&SignedEnvelope, u8)],
        received_at: u64,
        local: bool,
    ) -> Result<Vec<Result<Inserted>>> {
        let received_at = to_sql("received_at", received_at)?;
        let mut outcomes: Vec<Option<Result<Inserted>>> = items.iter().map(|_| None).collect();
        let mut rows = Vec::with_capacity(items.len());
        for (index, (env, hops)) in items.iter().enumerate() {
            match check(index, env, *hops) {
                Ok(row) => rows.push(row),
                Err(e) => outcomes[index] = Some(Err(e)),
            }
        }

        if !rows.is_empty() {
            // IMMEDIATE takes the write lock now, where the busy timeout
            // applies, instead of at the first write, where a lock upgrade
            // can fail at once with SQLITE_BUSY. Holding it throughout also
            // means no other writer can add rows above the pk mark below.
            // The connection is held until the chains it wrote are
            // remembered (see crate::chains), so no other write starts
            // in between.
            let mut conn = self.writer.acquire().await?;
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
            // Rows name their chain by id: find (or number) every chain of
            // the batch, once, with its marks before this transaction.
            let mut keys: BTreeMap<(&RoomId, PeerId), usize> = BTreeMap::new();
            for row in &rows {
                let next = keys.len();
                keys.entry((row.env.room(), row.env.author())).or_insert(next);
            }
            let mut ordered: Vec<(&RoomId, PeerId)> = vec![(rows[0].env.room(), rows[0].env.author()); keys.len()];
            for (&key, &i) in &keys {
                ordered[i] = key;
            }
            let found = find_chains(&mut tx, &ordered, &self.chains).await?;
            // SQLite gives a new row the rowid max + 1 (until rowids reach
            // 2^63, which no phone will see), so every row this transaction
            // inserts has a pk above this mark: that is how a row we find in
            // place is told apart from one that was there before.
            let (before, chains) = (found.last_pk, found.chains);
            // Another connection committed since memory last matched the
            // file: read the recent part of the id index back, so the
            // merges below take its rows in too (see crate::ids).
            if !crate::ids::current(&self.ids, found.data_version) {
                crate::ids::reload(&mut tx, &self.ids, found.data_version).await?;
            }
            for row in &mut rows {
                row.chain = chains[keys[&(row.env.room(), row.env.author())]].id;
            }
            // Ids stored by this batch, so a second copy is a duplicate.
            let mut claimed: HashSet<MessageId> = HashSet::with_capacity(rows.len());
            let mut fresh: Vec<&Row> = Vec::with_capacity(rows.len());
            // (id prefix, rowid) of each row stored, for the id index.
            let mut entries: Vec<(i64, i64)> = Vec::with_capacity(rows.len());
            let mut last_pk = before;
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let (stored, last) = insert_rows(&mut tx, chunk, received_at).await?;
                if stored == chunk.len() {
                    // The common case: all new, and no lookup needed. A
                    // statement's rows take consecutive rowids, in order,
                    // ending at the last one inserted (see `before`).
                    let first = last - (stored as i64 - 1);
                    if first <= last_pk {
                        return Err(corrupt("messages", format!("rowids {first}..={last} after {last_pk}")));
                    }
                    last_pk = last;
                    for (k, row) in chunk.iter().enumerate() {
                        claimed.insert(row.env.id());
                        entries.push((id_prefix(&row.env.id()), first + k as i64));
                        fresh.push(row);
                        outcomes[row.index] = Some(Ok(Inserted::New));
                    }
                    continue;
                }
                // Some rows hit the position constraint (the only one: ids
                // are not indexed UNIQUE, see insert_rows). Whoever holds
                // each position now tells which: our row (new, or a second
                // copy of one), an older copy (duplicate), or another id
                // (conflict; within a statement the first row wins).
                let held = holders(&mut tx, chunk).await?;
                for (i, row) in chunk.iter().enumerate() {
                    let id = row.env.id();
                    let outcome = match held.get(&i) {
                        Some(&(pk, holder)) if holder == id && pk > before && claimed.insert(id) => {
                            entries.push((id_prefix(&id), pk));
                            last_pk = last_pk.max(pk);
                            fresh.push(row);
                            Ok(Inserted::New)
                        }
                        Some(&(_, holder)) if holder == id => Ok(Inserted::Duplicate),
                        Some(_) => Err(StoreError::Conflict {
                            room: row.env.room().clone(),
                            author: row.env.author(),
                            seq: row.env.seq(),
                        }),
                        None => {
                            return Err(corrupt(
                                "messages",
                                format!("{id:?} was skipped but nothing holds its position"),
                            ))
                        }
                    };
                    outcomes[row.index] = Some(outcome);
                }
            }
            // Once per chain, not per row, with what each chain and room
            // gained (the accounting budgets are checked against). New
            // chains are listed even without a fresh row: their head row
            // is written with the others.
            let mut touched: BTreeMap<(&RoomId, PeerId), Touched> = BTreeMap::new();
            for (&(room, author), &i) in &keys {
                if chains[i].new {
                    touched.insert((room, author), Touched::new(room, author, chains[i]));
                }
            }
            for row in &fresh {
                let (room, author) = (row.env.room(), row.env.author());
                let chain = touched
                    .entry((room, author))
                    .or_insert_with(|| Touched::new(room, author, chains[keys[&(room, author)]]));
                chain.fresh_seqs.push(row.seq);
                chain.added_bytes += raw_len(row.env);
            }
            // Chains of the batch that stored nothing keep the marks found.
            let mut unchanged = Vec::new();
            for (&(room, author), &i) in &keys {
                if !touched.contains_key(&(room, author)) {
                    unchanged.push((room, author, chains[i].id, Some(chains[i].marks)));
                }
            }
            let mut chains: Vec<Touched> = touched.into_values().collect();
            for chain in &mut chains {
                chain.fresh_seqs.sort_unstable();
            }
            let mut script = Script::default();
            if local {
                outbox_script(&mut script, &fresh, received_at);
            }
            crate::meetups::replies_script(&mut script, &fresh);
            queues_script(&mut script, &fresh, before, self.search_queue.load(std::sync::atomic::Ordering::Relaxed));
            let mut marks = heads_script(&mut script, &chains);
            marks.extend(unchanged);
            room_usage_script(&mut script, &chains);
            let ids = ids_script(&mut script, &self.ids, entries, last_pk);
            script.run(&mut tx).await?;
            let unsure = self.chains.unsure();
            tx.commit().await?;
            self.chains.remember(marks);
            apply_ids(&self.ids, ids);
            unsure.resolved();
            drop(conn);
            tracing::debug!(items = items.len(), new = fresh.len(), chains = chains.len(), "batch stored");
        }

        Ok(outcomes.into_iter().map(|o| o.expect("every item is either checked out or inserted")).collect())
    }
}

/// For each row of a chunk (by index) whose position is held, the pk and id
/// holding it. Joining the positions against the (chain, seq) index costs
/// one index probe per row.
async fn holders(conn: &mut SqliteConnection, chunk: &[Row<'_>]) -> Result<HashMap<usize, (i64, MessageId)>> {
    let sql = format!(
        "SELECT v.column1, m.pk, m.id FROM (VALUES {}) AS v
         JOIN messages m ON m.chain = v.column2 AND m.seq = v.column3",
        placeholders(3, chunk.len())
    );
    let mut query = sqlx::query_as::<_, (i64, i64, Vec<u8>)>(AssertSqlSafe(sql));
    for (i, row) in chunk.iter().enumerate() {
        // Chunk indexes are below ROWS_PER_STATEMENT.
        query = query.bind(i as i64).bind(row.chain).bind(row.seq);
    }
    let mut held = HashMap::with_capacity(chunk.len());
    for (index, pk, id) in query.fetch_all(&mut *conn).await? {
        let index = usize::try_from(index).map_err(|_| corrupt("messages", "position lookup index"))?;
        held.insert(index, (pk, message_id_from_sql("messages", &id)?));
    }
    Ok(held)
}

/// Insert rows, skipping any whose position is already stored. That covers a
/// stored id too: an id names one byte string, whose room, author and seq are
/// one position. Returns how many were stored, and the rowid of the last.
async fn insert_rows(conn: &mut SqliteConnection, rows: &[Row<'_>], received_at: i64) -> Result<(usize, i64)> {
    let sql = format!(
        "INSERT INTO messages
             (id, id_prefix, room, author, chain, seq, kind, created_at, received_at, hops, recipient, raw)
         VALUES {} ON CONFLICT DO NOTHING",
        placeholders(12, rows.len())
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for row in rows {
        let env = row.env;
        let id = env.id();
        query = query
            .bind(id.as_bytes().to_vec())
            .bind(id_prefix(&id))
            .bind(env.room().as_str())
            .bind(env.author().as_bytes().to_vec())
            .bind(row.chain)
            .bind(row.seq)
            .bind(i64::from(env.kind().code()))
            .bind(row.created_at)
            .bind(received_at)
            .bind(i64::from(row.hops))
            .bind(row.recipient.map(|r| r.as_bytes().to_vec()))
            .bind(env.bytes());
    }
    let done = query.execute(&mut *conn).await?;
    let stored = usize::try_from(done.rows_affected()).map_err(|_| corrupt("messages", "row count"))?;
    Ok((stored, done.last_insert_rowid()))
}

/// Queue our own new messages for sending, in the insert's transaction.
fn outbox_script(script: &mut Script, rows: &[&Row<'_>], queued_at: i64) {
    for part in rows.chunks(ROWS_PER_STATEMENT) {
        script.sql(&format!(
            "INSERT INTO outbox (message_id, room, author, chain, seq, queued_at) VALUES {};",
            placeholders(6, part.len())
        ));
        for row in part {
            script
                .bind(row.env.id().as_bytes().to_vec())
                .bind(row.env.room().as_str())
                .bind(row.env.author().as_bytes().to_vec())
                .bind(row.chain)
                .bind(row.seq)
                .bind(queued_at);
        }
    }
}

/// Queue the new rows of this transaction (every rowid above `before`) for
/// what the node does with them later, outside ingest: texts, meet-ups,
/// photos and the sealed DMs to or from this device for search
/// (`crate::search`, when `search`), group mail to open (`crate::groups`).
/// Triggers did this before migration 0012, at the price of a temporary
/// copy of each batch and one trigger program per row (see there). One
/// statement per queue, and none for a queue the batch gives nothing: the
/// kinds are known here. The DM condition stays in SQL, next to the
/// identity it compares with, as the trigger had it.
fn queues_script(script: &mut Script, fresh: &[&Row<'_>], before: i64, search: bool) {
    let any = |kinds: &[Kind]| fresh.iter().any(|row| kinds.contains(&row.env.kind()));
    if search && any(&crate::rooms::READ_KINDS) {
        // The read kinds' mask (see `rooms::READ_KINDS`); a sealed DM only
        // to or from us.
        script
            .sql(
                "INSERT INTO search_pending (pk) SELECT pk FROM messages
                 WHERE pk > ? AND (581 >> kind) & 1
                   AND (kind <> 2 OR recipient = (SELECT peer_id FROM identity)
                                  OR author = (SELECT peer_id FROM identity));",
            )
            .bind(before);
    }
    if any(&[Kind::GroupMessage]) {
        script.sql("INSERT INTO group_pending (pk) SELECT pk FROM messages WHERE pk > ? AND kind = 8;").bind(before);
    }
}
