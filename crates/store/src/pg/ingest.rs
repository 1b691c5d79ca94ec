//! Writing on PostgreSQL: batches, and the heads they move.
//!
//! A batch is one transaction on the store's writer connection
//! ([`Writer`]), of two statements over arrays (`unnest`) whatever its size,
//! and more only off the common path:
//! 1. lock (and create) the head rows of its chains, in the order of
//!    (room, author) bytes that every instance uses, read their marks, and
//!    then insert the rows, `ON CONFLICT DO NOTHING`, returning the ids
//!    stored (one statement: the insert waits for the locks);
//! 2. only if some were skipped, look up who holds their positions: the
//!    same id (duplicate) or another (conflict);
//! 3. outbox entries of our own new messages, then the heads' new marks
//!    and accounting.
//!
//! Holding the head rows from step 1 to the commit is what makes this safe
//! with many writers: nobody else stores into those chains meanwhile, so the
//! marks computed in step 3 follow from rows nobody else is changing.
//!
//! Most batches take a **fast path** first: one statement in its own
//! transaction, one round trip ([`fast_path`]). It serves a batch of
//! others' envelopes whose seqs run without a hole in each chain, into
//! chains without a gap: the heads' new marks then follow from the locked
//! rows and the batch alone, and are written by the statement that locks
//! them. Anything else it meets (seqs the chain has seen, a chain with a
//! gap, an envelope skipped as a duplicate or a conflict) rolls it back,
//! and the batch takes the transaction above.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use festival_core::sync::{Snapshot, SnapshotHead};
use festival_core::{MessageId, PeerId, RoomId, SignedEnvelope};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use super::{with_retries, PgStore, ACQUIRE_TIMEOUT};
use crate::error::{corrupt, from_sql, message_id_from_sql, peer_from_sql, room_from_sql, to_sql, Result, StoreError};
use crate::heads::fast_marks;
use crate::{HeadRow, Inserted};

/// A chain's key in lock order: room bytes, then author bytes.
type Key = (RoomId, PeerId);

/// An item checked and converted for SQL.
struct Row<'a> {
    index: usize,
    env: &'a SignedEnvelope,
    hops: i64,
    seq: i64,
    created_at: i64,
    recipient: Option<Vec<u8>>,
}

fn check(index: usize, env: &SignedEnvelope, hops: u8) -> Result<Row<'_>> {
    let recipient = crate::ingest::recipient(env)?.map(|r| r.as_bytes().to_vec());
    Ok(Row {
        index,
        env,
        hops: i64::from(hops),
        seq: to_sql("seq", env.seq())?,
        created_at: to_sql("created_at", env.created_at())?,
        recipient,
    })
}

/// The connection batches are stored on, beside the pool. sqlx's pool
/// sends a connection a round trip of its own when it lends it and again
/// when it comes back; around a batch of one statement that tripled the
/// round trips, each a wake-up of a PostgreSQL backend. This connection is
/// used one batch at a time (a relay stores one batch at a time anyway),
/// kept while it works and dropped when it fails: the next batch opens a
/// new one. A batch whose kept connection turns out gone at its first
/// round trip (PostgreSQL was restarted since) is tried once more on a new
/// one (see [`PgStore::ingest`]).
#[derive(Clone)]
pub(crate) struct Writer {
    options: Arc<PgConnectOptions>,
    pub(super) conn: Arc<tokio::sync::Mutex<Option<PgConnection>>>,
    /// Batches stored by the fast path, and refused by it.
    paths: Arc<[AtomicU64; 2]>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl Writer {
    pub(crate) fn new(options: PgConnectOptions) -> Writer {
        Writer { options: Arc::new(options), conn: Arc::new(tokio::sync::Mutex::new(None)), paths: Arc::default() }
    }

    async fn connect(&self) -> Result<PgConnection> {
        match tokio::time::timeout(ACQUIRE_TIMEOUT, PgConnection::connect_with(&self.options)).await {
            Ok(conn) => Ok(conn?),
            Err(_) => Err(StoreError::Db(sqlx::Error::PoolTimedOut)),
        }
    }

    pub(crate) async fn close(&self) {
        if let Some(conn) = self.conn.lock().await.take() {
            let _ = conn.close().await;
        }
    }
}

/// Whether the connection an error came from may serve the next batch:
/// only after an error known to end just the transaction (rolled back on
/// the connection's next use), which comes with PostgreSQL's answer: a
/// deadlock or serialisation failure (40P01, 40001), a constraint (class
/// 23), a statement timeout (57014), or one of ours about what came back.
/// Anything else (the socket, the protocol, a server shutting down or
/// ending the session, which sends a FATAL error before it closes:
/// 57P01..57P05, class 08) drops it.
fn keeps_connection(e: &StoreError) -> bool {
    match e {
        StoreError::Db(sqlx::Error::Database(db)) => {
            let code = db.code().unwrap_or_default();
            matches!(code.as_ref(), "40P01" | "40001" | "57014" | FAST_PATH_REFUSED) || code.starts_with("23")
        }
        StoreError::Db(_) => false,
        _ => true,
    }
}

/// Whether an error says the connection itself is gone (the socket, or
/// the server ending the session: class 08, 57P01..57P05), so that a batch
/// may be begun again on a new one.
fn connection_gone(e: &StoreError) -> bool {
    match e {
        StoreError::Db(sqlx::Error::Io(_)) => true,
        StoreError::Db(sqlx::Error::Database(db)) => {
            let code = db.code().unwrap_or_default();
            code.starts_with("08") || code.starts_with("57P")
        }
        _ => false,
    }
}

/// The SQLSTATE of `festival_fast_path_refused`
/// (migrations-pg/0004_ingest_fast_path.sql).
const FAST_PATH_REFUSED: &str = "FC001";

fn refused(e: &StoreError) -> bool {
    matches!(e, StoreError::Db(sqlx::Error::Database(db)) if db.code().as_deref() == Some(FAST_PATH_REFUSED))
}

/// One chain of a batch the fast path may take: its key, the lowest and
/// highest seq of the batch in it (every seq between is there once), and
/// the bytes and rows it adds.
struct Run<'a> {
    room: &'a str,
    author: [u8; 32],
    first: i64,
    last: i64,
    bytes: i64,
    rows: i64,
}

/// The batch's chains in lock order, if the fast path may take it: not our
/// own envelopes (those also go to the outbox), and in each chain seqs
/// that run without a hole or a repeat.
fn runs<'a>(rows: &'a [Row<'a>], local: bool) -> Option<Vec<Run<'a>>> {
    if local {
        return None;
    }
    // Per chain in lock order (room bytes, author bytes): its seqs, bytes.
    type Seqs = (Vec<i64>, i64);
    let mut chains: BTreeMap<(&[u8], [u8; 32]), Seqs> = BTreeMap::new();
    for r in rows {
        let chain = chains.entry((r.env.room().as_str().as_bytes(), *r.env.author().as_bytes())).or_default();
        chain.0.push(r.seq);
        chain.1 += i64::try_from(r.env.bytes().len()).ok()?;
    }
    chains
        .into_iter()
        .map(|((room, author), (mut seqs, bytes))| {
            seqs.sort_unstable();
            let (first, last) = (*seqs.first()?, *seqs.last()?);
            let rows = i64::try_from(seqs.len()).ok()?;
            (last - first + 1 == rows && seqs.windows(2).all(|w| w[1] == w[0] + 1)).then_some(Run {
                room: std::str::from_utf8(room).ok()?,
                author,
                first,
                last,
                bytes,
                rows,
            })
        })
        .collect()
}

/// A batch's rows as the columns its insert takes (`unnest` of arrays),
/// in input order.
struct Columns<'a> {
    ids: Vec<Vec<u8>>,
    rooms: Vec<&'a str>,
    authors: Vec<Vec<u8>>,
    seqs: Vec<i64>,
    kinds: Vec<i64>,
    created: Vec<i64>,
    hops: Vec<i64>,
    recipients: Vec<Option<Vec<u8>>>,
    raws: Vec<&'a [u8]>,
}

impl<'a> Columns<'a> {
    fn of(rows: &'a [Row<'a>]) -> Columns<'a> {
        Columns {
            ids: rows.iter().map(|r| r.env.id().as_bytes().to_vec()).collect(),
            rooms: rows.iter().map(|r| r.env.room().as_str()).collect(),
            authors: rows.iter().map(|r| r.env.author().as_bytes().to_vec()).collect(),
            seqs: rows.iter().map(|r| r.seq).collect(),
            kinds: rows.iter().map(|r| i64::from(r.env.kind().code())).collect(),
            created: rows.iter().map(|r| r.created_at).collect(),
            hops: rows.iter().map(|r| r.hops).collect(),
            recipients: rows.iter().map(|r| r.recipient.clone()).collect(),
            raws: rows.iter().map(|r| r.env.bytes()).collect(),
        }
    }

    /// The nine arrays, bound in that order as the query's next parameters.
    fn bind<'q, O>(
        &'q self,
        query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
        query
            .bind(&self.ids)
            .bind(&self.rooms)
            .bind(&self.authors)
            .bind(&self.seqs)
            .bind(&self.kinds)
            .bind(&self.created)
            .bind(&self.hops)
            .bind(&self.recipients)
            .bind(&self.raws)
    }
}

/// The insert of a batch's rows ([`Columns`], bound from parameter
/// `$first` on, the time received after them) as a CTE `stored`, once every
/// head lock is held (it reads the count of the CTE `locked` first: a count
/// reads all of it, an `EXISTS` would stop at the first), returning
/// `returning`. Rows go in input order, so of two rows for one position the
/// first is stored and the second skipped, as if inserted one by one.
fn insert_rows(first: usize, returning: &str) -> String {
    let p: Vec<String> = (first..first + 10).map(|n| format!("${n}")).collect();
    format!(
        "stored AS (
             INSERT INTO messages (id, room, author, seq, kind, created_at, received_at, hops, recipient, raw)
             SELECT id, room, author, seq, kind, created_at, {}, hops, recipient, raw
             FROM unnest({}::bytea[], {}::text[], {}::bytea[], {}::bigint[], {}::bigint[], {}::bigint[],
                         {}::bigint[], {}::bytea[], {}::bytea[]) WITH ORDINALITY
                  AS u(id, room, author, seq, kind, created_at, hops, recipient, raw, n)
             WHERE (SELECT count(*) FROM locked) > 0
             ORDER BY n
             ON CONFLICT DO NOTHING
             RETURNING {returning}
         )",
        p[9], p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8]
    )
}

/// [`fast_path`]'s statement: the runs ($1..$6), the rows ($7..$15), the
/// time received ($16) and the number of rows ($17).
static FAST_PATH_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH batch AS (
             SELECT * FROM unnest($1::text[], $2::bytea[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
                 WITH ORDINALITY AS c(room, author, first, last, bytes, n, k)
         ), locked AS (
             INSERT INTO heads AS h (room, author, contiguous, max_seq, raw_bytes, messages)
             SELECT room, author, CASE WHEN first = 1 THEN last ELSE 0 END, last, bytes, n FROM batch ORDER BY k
             ON CONFLICT (room, author) DO UPDATE SET
                 contiguous = CASE
                     WHEN h.max_seq > h.contiguous THEN festival_fast_path_refused('a chain with a gap')
                     WHEN excluded.max_seq - excluded.messages < h.max_seq
                         THEN festival_fast_path_refused('seqs seen before')
                     WHEN excluded.max_seq - excluded.messages = h.contiguous THEN excluded.max_seq
                     ELSE h.contiguous END,
                 max_seq = greatest(h.max_seq, excluded.max_seq),
                 raw_bytes = h.raw_bytes + excluded.raw_bytes,
                 messages = h.messages + excluded.messages
             RETURNING 1
         ), {stored}
         SELECT CASE WHEN (SELECT count(*) FROM stored) = $17 THEN 0
                     ELSE festival_fast_path_refused('an envelope skipped') END",
        stored = insert_rows(7, "1")
    )
});

/// [`lock_and_insert`]'s statement: the chains ($1, $2), the rows ($3..$11)
/// and the time received ($12).
static LOCK_AND_INSERT_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH locked AS (
             INSERT INTO heads (room, author)
             SELECT room, author FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY AS u(room, author, n) ORDER BY n
             ON CONFLICT (room, author) DO UPDATE SET contiguous = heads.contiguous
             RETURNING room, author, contiguous, max_seq
         ), {stored}
         SELECT room, author, contiguous, max_seq, NULL::bytea FROM locked
         UNION ALL
         SELECT NULL, NULL, NULL, NULL, id FROM stored",
        stored = insert_rows(3, "id")
    )
});

/// Store a batch in one statement, in its own transaction: lock (or
/// create) each chain's head, in lock order, writing its new marks and
/// accounting at once, then insert the rows. A head with a gap (max_seq
/// above contiguous) or a run that starts at or below max_seq (seqs that
/// may be stored: a resend, a sibling's copy; nothing is stored above
/// max_seq, and the head is locked) refuses it ([`FAST_PATH_REFUSED`])
/// before a row is written; a row skipped all the same refuses it after.
/// Either way the statement is rolled back whole. Otherwise every row is
/// new, and the marks are those [`crate::heads::fast_marks`] gives: the run
/// [first, last] (first = last - rows + 1, above max_seq = contiguous)
/// continues the chain if it starts right above the contiguous mark.
async fn fast_path(conn: &mut PgConnection, runs: &[Run<'_>], columns: &Columns<'_>, received_at: i64) -> Result<()> {
    let count = i64::try_from(columns.ids.len()).unwrap_or(i64::MAX);
    // The proposed head row is a new chain's (marks from 0: contiguous is
    // `last` if the run starts at 1; raw_bytes and messages what the run
    // adds); for an existing one the update finds the run's first seq in
    // it (max_seq - messages + 1). The insert waits for every lock (a count
    // reads all of `locked`); the last line refuses the batch if a row was
    // skipped, so nothing of it stays.
    let query = sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(FAST_PATH_SQL.as_str()))
        .bind(runs.iter().map(|r| r.room).collect::<Vec<_>>())
        .bind(runs.iter().map(|r| r.author.to_vec()).collect::<Vec<_>>())
        .bind(runs.iter().map(|r| r.first).collect::<Vec<_>>())
        .bind(runs.iter().map(|r| r.last).collect::<Vec<_>>())
        .bind(runs.iter().map(|r| r.bytes).collect::<Vec<_>>())
        .bind(runs.iter().map(|r| r.rows).collect::<Vec<_>>());
    columns
        .bind(query)
        .bind(received_at)
        .bind(count)
        // All of it: the statement's transaction commits before PostgreSQL
        // says it is ready, and an error at the commit comes before that.
        .fetch_all(&mut *conn)
        .await?;
    Ok(())
}

/// Longest a batch may take, round trips and all, before its connection is
/// given up (a path to PostgreSQL that went silent: no reset, so the
/// socket would wait for TCP's own timeout, minutes, while the relay's
/// event loop waits on the batch): the server's statement timeout and a
/// margin.
const BATCH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(12);

/// Back to a plan per execution for the rest of the transaction, once.
async fn custom_plans(conn: &mut PgConnection, done: &mut bool) -> Result<()> {
    if !*done {
        sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan").execute(&mut *conn).await?;
        *done = true;
    }
    Ok(())
}

/// Lock (creating at (0, 0) where missing) the head rows of `keys`, which
/// must be in lock order, and return their marks in that order.
async fn lock_heads(conn: &mut PgConnection, keys: &[Key]) -> Result<Vec<(i64, i64)>> {
    let rooms: Vec<&str> = keys.iter().map(|(r, _)| r.as_str()).collect();
    let authors: Vec<Vec<u8>> = keys.iter().map(|(_, a)| a.as_bytes().to_vec()).collect();
    // The no-op update locks an existing row (and waits for a writer that
    // holds it); RETURNING then gives its committed marks.
    let rows: Vec<(String, Vec<u8>, i64, i64)> = sqlx::query_as(
        "INSERT INTO heads (room, author)
         SELECT room, author FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY AS u(room, author, n) ORDER BY n
         ON CONFLICT (room, author) DO UPDATE SET contiguous = heads.contiguous
         RETURNING room, author, contiguous, max_seq",
    )
    .bind(&rooms)
    .bind(&authors)
    .fetch_all(&mut *conn)
    .await?;
    let mut marks: HashMap<(String, Vec<u8>), (i64, i64)> =
        rows.into_iter().map(|(room, author, c, m)| ((room, author), (c, m))).collect();
    keys.iter()
        .map(|(room, author)| {
            marks
                .remove(&(room.as_str().to_owned(), author.as_bytes().to_vec()))
                .ok_or_else(|| corrupt("heads", "a locked chain came back without its row"))
        })
        .collect()
}

/// Lock the head rows of `keys` (in lock order, as [`lock_heads`]), then
/// insert `rows`: the marks of the chains in the order of `keys`, and the
/// ids stored. One statement: its insert reads the count of the locked
/// rows first, so it begins once every lock is held (a count reads them
/// all; an `EXISTS` would stop at the first), and its result lists the
/// locked rows first (an `Append` runs its branches in order).
async fn lock_and_insert(
    conn: &mut PgConnection,
    keys: &[Key],
    columns: &Columns<'_>,
    received_at: i64,
) -> Result<(Vec<(i64, i64)>, HashSet<MessageId>)> {
    let chain_rooms: Vec<&str> = keys.iter().map(|(r, _)| r.as_str()).collect();
    let chain_authors: Vec<Vec<u8>> = keys.iter().map(|(_, a)| a.as_bytes().to_vec()).collect();
    // The no-op update locks an existing head row (and waits for a writer
    // that holds it); RETURNING then gives its committed marks. Rows go in
    // input order, so of two rows for one position the first is stored and
    // the second skipped, as if inserted one by one.
    type Out = (Option<String>, Option<Vec<u8>>, Option<i64>, Option<i64>, Option<Vec<u8>>);
    let query =
        sqlx::query_as(sqlx::AssertSqlSafe(LOCK_AND_INSERT_SQL.as_str())).bind(&chain_rooms).bind(&chain_authors);
    let out: Vec<Out> = columns.bind(query).bind(received_at).fetch_all(&mut *conn).await?;
    let mut marks: HashMap<(String, Vec<u8>), (i64, i64)> = HashMap::with_capacity(keys.len());
    let mut fresh = HashSet::with_capacity(columns.ids.len());
    for row in out {
        match row {
            (Some(room), Some(author), Some(c), Some(m), None) => {
                marks.insert((room, author), (c, m));
            }
            (None, None, None, None, Some(id)) => {
                fresh.insert(message_id_from_sql("messages", &id)?);
            }
            _ => return Err(corrupt("heads", "a batch's statement returned a row of neither kind")),
        }
    }
    let before = keys
        .iter()
        .map(|(room, author)| {
            marks
                .remove(&(room.as_str().to_owned(), author.as_bytes().to_vec()))
                .ok_or_else(|| corrupt("heads", "a locked chain came back without its row"))
        })
        .collect::<Result<_>>()?;
    Ok((before, fresh))
}

/// Climb a chain's contiguous mark over the seqs stored above it, from the
/// rows; the max is the highest seq stored, never below `max_seq`.
async fn probe_marks(conn: &mut PgConnection, key: &Key, (contiguous, max_seq): (i64, i64)) -> Result<(i64, i64)> {
    let seqs: Vec<(i64,)> =
        sqlx::query_as("SELECT seq FROM messages WHERE room = $1 AND author = $2 AND seq > $3 ORDER BY seq")
            .bind(key.0.as_str())
            .bind(&key.1.as_bytes()[..])
            .bind(contiguous)
            .fetch_all(&mut *conn)
            .await?;
    let mut top = contiguous;
    for &(seq,) in &seqs {
        if seq != top + 1 {
            break;
        }
        top = seq;
    }
    let stored_max = seqs.last().map_or(0, |&(s,)| s);
    Ok((top, max_seq.max(top).max(stored_max)))
}

/// Write the marks (never lower) and add to the accounting of these chains.
async fn write_heads(conn: &mut PgConnection, heads: &[(&Key, (i64, i64), i64, i64)]) -> Result<()> {
    if heads.is_empty() {
        return Ok(());
    }
    let rooms: Vec<&str> = heads.iter().map(|(k, ..)| k.0.as_str()).collect();
    let authors: Vec<Vec<u8>> = heads.iter().map(|(k, ..)| k.1.as_bytes().to_vec()).collect();
    let contiguous: Vec<i64> = heads.iter().map(|(_, m, ..)| m.0).collect();
    let max_seq: Vec<i64> = heads.iter().map(|(_, m, ..)| m.1).collect();
    let bytes: Vec<i64> = heads.iter().map(|h| h.2).collect();
    let messages: Vec<i64> = heads.iter().map(|h| h.3).collect();
    // An upsert on the table's key rather than an `UPDATE .. FROM unnest`:
    // the rows exist (locked), and a statement without a join has one plan,
    // so ingest's connection can reuse it (see `Writer`).
    sqlx::query(
        "INSERT INTO heads AS h (room, author, contiguous, max_seq, raw_bytes, messages)
         SELECT * FROM unnest($1::text[], $2::bytea[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
         ON CONFLICT (room, author) DO UPDATE SET
             contiguous = greatest(h.contiguous, excluded.contiguous),
             max_seq = greatest(h.max_seq, excluded.max_seq),
             raw_bytes = h.raw_bytes + excluded.raw_bytes,
             messages = h.messages + excluded.messages",
    )
    .bind(&rooms)
    .bind(&authors)
    .bind(&contiguous)
    .bind(&max_seq)
    .bind(&bytes)
    .bind(&messages)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl PgStore {
    /// Store verified envelopes in one transaction, as
    /// [`crate::Store::insert_batch`] does: one outcome per item in input
    /// order, the first of two items for one position wins, and a second
    /// copy of a stored envelope (also one another instance is storing at
    /// the same moment) is a [`Inserted::Duplicate`].
    pub async fn insert_batch(
        &self,
        items: &[(SignedEnvelope, u8)],
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
            let stored = with_retries(|| self.ingest(&rows, received_at, local)).await?;
            for (index, outcome) in stored {
                outcomes[index] = Some(outcome);
            }
        }
        Ok(outcomes.into_iter().map(|o| o.expect("every item is either checked out or inserted")).collect())
    }

    /// Batches stored by the fast path (one statement), and tries it
    /// refused (the batch then stored by the transaction of several; a
    /// batch tried again after a deadlock counts again), since this store
    /// was opened.
    pub fn fast_path_counts(&self) -> (u64, u64) {
        (self.writer.paths[0].load(Relaxed), self.writer.paths[1].load(Relaxed))
    }

    /// One try of a batch on the writer's connection: each row's outcome by
    /// its index. The fast path first where it may serve, else (or when it
    /// refuses) the transaction. A kept connection found gone at the
    /// batch's first round trip (PostgreSQL restarted since, or ended the
    /// session) is replaced and that round trip made again; past it nothing
    /// is tried again. The first round trip may be the fast path's whole
    /// statement: if it committed and only its answer was lost, the second
    /// try finds the rows there and the batch's outcome is duplicates, as a
    /// node's resend would be. A connection that a batch broke, or left
    /// mid-way (a cancelled call, a deadline), is not kept. Each path has
    /// [`BATCH_DEADLINE`].
    async fn ingest(&self, rows: &[Row<'_>], received_at: i64, local: bool) -> Result<Vec<(usize, Result<Inserted>)>> {
        let mut slot = self.writer.conn.lock().await;
        let (mut conn, mut kept) = match slot.take() {
            Some(conn) => (conn, true),
            None => self.writer.connect().await.map(|c| (c, false))?,
        };
        // The rows' columns, for whichever statement stores them.
        let columns = Columns::of(rows);
        if let Some(runs) = runs(rows, local) {
            let mut tried = within(fast_path(&mut conn, &runs, &columns, received_at)).await;
            if kept && tried.as_ref().is_err_and(connection_gone) {
                tracing::debug!("the writer's connection was gone; storing on a new one");
                conn = self.writer.connect().await?;
                tried = within(fast_path(&mut conn, &runs, &columns, received_at)).await;
            }
            match tried {
                Ok(()) => {
                    self.writer.paths[0].fetch_add(1, Relaxed);
                    *slot = Some(conn);
                    return Ok(rows.iter().map(|r| (r.index, Ok(Inserted::New))).collect());
                }
                Err(e) if refused(&e) => {
                    self.writer.paths[1].fetch_add(1, Relaxed);
                    // It answered just now.
                    kept = false;
                }
                Err(e) if keeps_connection(&e) => {
                    *slot = Some(conn);
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
        let transaction = async {
            match sqlx::raw_sql("BEGIN").execute(&mut conn).await.map_err(StoreError::from) {
                Err(e) if kept && connection_gone(&e) => {
                    tracing::debug!(%e, "the writer's connection was gone; storing on a new one");
                    conn = self.writer.connect().await?;
                    sqlx::raw_sql("BEGIN").execute(&mut conn).await?;
                }
                Err(e) => return Err(e),
                Ok(_) => {}
            }
            match ingest_in(&mut conn, rows, &columns, received_at, local).await {
                Ok(done) => Ok(Ok(done)),
                Err(e) if keeps_connection(&e) => {
                    // Ended with the transaction still open (an error of
                    // ours, or a statement's): rolled back here, before
                    // the connection serves the next batch.
                    sqlx::raw_sql("ROLLBACK").execute(&mut conn).await?;
                    Ok(Err(e))
                }
                Err(e) => Err(e),
            }
        };
        let done = within(transaction).await?;
        *slot = Some(conn);
        done
    }
}

/// `f`, or an error once [`BATCH_DEADLINE`] has passed (the connection it
/// used is then not to be kept: it may be mid-statement).
async fn within<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(BATCH_DEADLINE, f).await.unwrap_or_else(|_| {
        Err(StoreError::Db(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "PostgreSQL did not answer a batch in time",
        ))))
    })
}

/// A batch's transaction, begun on the writer's connection `tx`, whose
/// statements reuse generic plans, up to its commit.
async fn ingest_in(
    tx: &mut PgConnection,
    rows: &[Row<'_>],
    columns: &Columns<'_>,
    received_at: i64,
    local: bool,
) -> Result<Vec<(usize, Result<Inserted>)>> {
    // Statements off the common path (a skipped row, a gap) join or
    // range over messages: planned for their arguments again.
    let mut custom = false;
    let keys: Vec<Key> = {
        let set: BTreeMap<(&[u8], [u8; 32]), Key> = rows
            .iter()
            .map(|r| {
                let (room, author) = (r.env.room(), r.env.author());
                ((room.as_str().as_bytes(), *author.as_bytes()), (room.clone(), author))
            })
            .collect();
        set.into_values().collect()
    };
    let (before, mut fresh_ids) = lock_and_insert(tx, &keys, columns, received_at).await?;

    let held = if fresh_ids.len() < rows.len() {
        custom_plans(tx, &mut custom).await?;
        holders(tx, rows).await?
    } else {
        HashMap::new()
    };
    let mut outcomes = Vec::with_capacity(rows.len());
    let mut fresh: Vec<&Row> = Vec::with_capacity(fresh_ids.len());
    for row in rows {
        let id = row.env.id();
        let outcome = if fresh_ids.remove(&id) {
            fresh.push(row);
            Ok(Inserted::New)
        } else {
            match held.get(&(row.env.room().clone(), row.env.author(), row.seq)) {
                Some(holder) if *holder == id => Ok(Inserted::Duplicate),
                Some(_) => Err(StoreError::Conflict {
                    room: row.env.room().clone(),
                    author: row.env.author(),
                    seq: row.env.seq(),
                }),
                None => return Err(corrupt("messages", format!("{id:?} was skipped but nothing holds its position"))),
            }
        };
        outcomes.push((row.index, outcome));
    }

    if local && !fresh.is_empty() {
        outbox(tx, &fresh, received_at).await?;
    }
    // Per chain: the fresh seqs (ascending) and what they added.
    let mut gained: BTreeMap<&Key, (Vec<i64>, i64, i64)> = BTreeMap::new();
    let index: HashMap<(&RoomId, PeerId), &Key> = keys.iter().map(|k| ((&k.0, k.1), k)).collect();
    for row in &fresh {
        let key = index[&(row.env.room(), row.env.author())];
        let entry = gained.entry(key).or_default();
        entry.0.push(row.seq);
        entry.1 += i64::try_from(row.env.bytes().len()).unwrap_or(i64::MAX);
        entry.2 += 1;
    }
    let marks_before: HashMap<&Key, (i64, i64)> = keys.iter().zip(before).collect();
    let mut heads = Vec::with_capacity(gained.len());
    for (key, (mut seqs, bytes, messages)) in gained {
        seqs.sort_unstable();
        let old = marks_before[key];
        let marks = match fast_marks(old, &seqs) {
            Some(marks) => marks,
            None => {
                custom_plans(tx, &mut custom).await?;
                probe_marks(tx, key, old).await?
            }
        };
        heads.push((key, marks, bytes, messages));
    }
    write_heads(tx, &heads).await?;
    sqlx::raw_sql("COMMIT").execute(&mut *tx).await?;
    tracing::debug!(items = rows.len(), new = fresh.len(), chains = keys.len(), "batch stored");
    Ok(outcomes)
}

impl PgStore {
    /// Count a chain's seqs up to `through` as seen, as
    /// [`crate::Store::advance_contiguous`] does.
    pub async fn advance_contiguous(&self, room: &RoomId, author: &PeerId, through: u64) -> Result<()> {
        let through = to_sql("through", through)?;
        let key: Key = (room.clone(), *author);
        with_retries(|| async {
            let mut tx = self.pool.begin().await?;
            let [(contiguous, max_seq)] = lock_heads(&mut tx, std::slice::from_ref(&key)).await?[..] else {
                return Err(corrupt("heads", "one chain asked, not one found"));
            };
            let marks = probe_marks(&mut tx, &key, (contiguous.max(through), max_seq.max(through))).await?;
            write_heads(&mut tx, &[(&key, marks, 0, 0)]).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// The head of every chain in every room.
    pub async fn heads(&self) -> Result<Vec<HeadRow>> {
        let rows: Vec<(String, Vec<u8>, i64, i64)> =
            sqlx::query_as("SELECT room, author, contiguous, max_seq FROM heads ORDER BY room, author")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(HeadRow::from_row).collect()
    }

    /// What the sync core starts from, as [`crate::Store::snapshot`].
    pub async fn snapshot(&self) -> Result<Snapshot> {
        let mut snapshot = Snapshot::default();
        let tips: Vec<(String, Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT h.room, h.author, m.id FROM heads h
             JOIN messages m ON m.room = h.room AND m.author = h.author AND m.seq = h.max_seq",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut tip_of = HashMap::with_capacity(tips.len());
        for (room, author, id) in tips {
            tip_of.insert(
                (room_from_sql("heads", room)?, peer_from_sql("heads", &author)?),
                message_id_from_sql("messages", &id)?,
            );
        }
        let above: Vec<(String, Vec<u8>, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT m.room, m.author, m.seq, m.id FROM heads h
             JOIN messages m ON m.room = h.room AND m.author = h.author AND m.seq > h.contiguous
             WHERE h.max_seq > h.contiguous ORDER BY m.room, m.author, m.seq",
        )
        .fetch_all(&self.pool)
        .await?;
        for (room, author, seq, id) in above {
            snapshot.held_above.push((
                room_from_sql("messages", room)?,
                peer_from_sql("messages", &author)?,
                from_sql("messages", seq)?,
                message_id_from_sql("messages", &id)?,
            ));
        }
        for h in self.heads().await? {
            let tip = tip_of.get(&(h.room.clone(), h.author)).copied();
            snapshot.heads.push(SnapshotHead {
                room: h.room,
                author: h.author,
                contiguous: h.contiguous,
                max: h.max,
                tip,
            });
        }
        let unsent: Vec<(Vec<u8>,)> =
            sqlx::query_as("SELECT message_id FROM outbox WHERE sent_at IS NULL ORDER BY queued_at, room, seq")
                .fetch_all(&self.pool)
                .await?;
        snapshot.unsent = unsent.into_iter().map(|(id,)| message_id_from_sql("outbox", &id)).collect::<Result<_>>()?;
        snapshot.equivocators = self.equivocators().await?;
        Ok(snapshot)
    }
}

/// Who holds the positions of `rows`: (room, author, seq) -> id.
async fn holders(conn: &mut PgConnection, rows: &[Row<'_>]) -> Result<HashMap<(RoomId, PeerId, i64), MessageId>> {
    let rooms: Vec<&str> = rows.iter().map(|r| r.env.room().as_str()).collect();
    let authors: Vec<Vec<u8>> = rows.iter().map(|r| r.env.author().as_bytes().to_vec()).collect();
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    let found: Vec<(String, Vec<u8>, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT m.room, m.author, m.seq, m.id FROM unnest($1::text[], $2::bytea[], $3::bigint[]) AS u(room, author, seq)
         JOIN messages m ON m.room = u.room AND m.author = u.author AND m.seq = u.seq",
    )
    .bind(&rooms)
    .bind(&authors)
    .bind(&seqs)
    .fetch_all(&mut *conn)
    .await?;
    found
        .into_iter()
        .map(|(room, author, seq, id)| {
            Ok((
                (room_from_sql("messages", room)?, peer_from_sql("messages", &author)?, seq),
                message_id_from_sql("messages", &id)?,
            ))
        })
        .collect()
}

/// Queue our own new messages for sending, in the insert's transaction.
async fn outbox(conn: &mut PgConnection, fresh: &[&Row<'_>], queued_at: i64) -> Result<()> {
    let ids: Vec<Vec<u8>> = fresh.iter().map(|r| r.env.id().as_bytes().to_vec()).collect();
    let rooms: Vec<&str> = fresh.iter().map(|r| r.env.room().as_str()).collect();
    let authors: Vec<Vec<u8>> = fresh.iter().map(|r| r.env.author().as_bytes().to_vec()).collect();
    let seqs: Vec<i64> = fresh.iter().map(|r| r.seq).collect();
    sqlx::query(
        "INSERT INTO outbox (message_id, room, author, seq, queued_at)
         SELECT id, room, author, seq, $5 FROM unnest($1::bytea[], $2::text[], $3::bytea[], $4::bigint[])
             AS u(id, room, author, seq)",
    )
    .bind(&ids)
    .bind(&rooms)
    .bind(&authors)
    .bind(&seqs)
    .bind(queued_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
