//! Chain heads: per (room, author), how far the stored chain is complete.
//!
//! Sync compares heads between peers to find what is missing, so reading them
//! must be cheap: they live in their own table, updated by the ingest
//! transaction, instead of being recomputed from `messages` on every summary.

use festival_core::{MessageId, PeerId, RoomId};
use sqlx::{AssertSqlSafe, SqliteConnection};

use crate::error::{corrupt, from_sql, message_id_from_sql, peer_from_sql, room_from_sql, to_sql, Result};
use crate::ingest::placeholders;
use crate::open::Store;

/// One chain's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadRow {
    pub room: RoomId,
    pub author: PeerId,
    /// Highest seq `s` such that every one of `1..=s` is stored (0 if seq 1 is
    /// missing).
    pub contiguous: u64,
    /// Highest seq stored. Above `contiguous` there are gaps.
    pub max: u64,
}

/// Chains whose heads one statement recomputes: the same budget as message
/// rows, so a batch of ~1,000 messages from as many chains takes eight
/// statements instead of a thousand round trips to sqlx's worker thread.
const CHAINS_PER_STATEMENT: usize = crate::ingest::ROWS_PER_STATEMENT;

/// One chain touched by a transaction: the seqs it newly stored (ascending)
/// and what they added to the chain's accounting (see [`crate::usage`]).
pub(crate) struct Touched<'a> {
    pub room: &'a RoomId,
    pub author: PeerId,
    pub fresh_seqs: Vec<i64>,
    pub added_bytes: i64,
}

impl Touched<'_> {
    pub(crate) fn added_messages(&self) -> i64 {
        i64::try_from(self.fresh_seqs.len()).unwrap_or(i64::MAX)
    }
}

/// A chain's marks before the transaction: (contiguous, max_seq).
type Marks = (i64, i64);

/// The new marks of a chain when they follow from the old ones and the
/// batch alone, without looking at the rows: when nothing was stored above
/// `contiguous` before (max_seq == contiguous; a new chain is (0, 0)), the
/// seqs stored above it now are exactly the fresh ones, so contiguous climbs
/// through the unbroken run of fresh seqs that starts right above it.
/// `None` when older messages are held above a gap, which only a probe of
/// the rows can settle.
fn fast_marks((contiguous, max_seq): Marks, fresh: &[i64]) -> Option<Marks> {
    if max_seq > contiguous {
        return None;
    }
    let mut top = contiguous;
    for &seq in fresh.iter().skip_while(|&&s| s <= contiguous) {
        if seq != top + 1 {
            break;
        }
        top = seq;
    }
    Some((top, max_seq.max(fresh.last().copied().unwrap_or(0))))
}

/// Recompute the heads of chains whose marks [`fast_marks`] cannot derive,
/// from the messages themselves: start from the old contiguous mark and
/// probe `seq + 1` through the (room, author, seq) index until a gap.
/// Filling a gap costs one probe per held message above it, once. The max
/// comes from the same index, but never goes below the old max. Also adds
/// the accounting, like [`upsert_sql`].
fn probe_sql(chains: usize) -> String {
    let values = placeholders(4, chains);
    format!(
        "WITH RECURSIVE
            touched(room, author, added_bytes, added_messages) AS (VALUES {values}),
            run(room, author, s, added_bytes, added_messages) AS (
                SELECT t.room, t.author, coalesce(h.contiguous, 0), t.added_bytes, t.added_messages
                FROM touched t LEFT JOIN heads h ON h.room = t.room AND h.author = t.author
                UNION ALL
                SELECT run.room, run.author, run.s + 1, run.added_bytes, run.added_messages FROM run
                WHERE EXISTS (SELECT 1 FROM messages m
                              WHERE m.room = run.room AND m.author = run.author AND m.seq = run.s + 1)
            )
        INSERT INTO heads (room, author, contiguous, max_seq, raw_bytes, messages)
        SELECT room, author, max(s),
               max(max(s), coalesce((SELECT max(seq) FROM messages m
                                     WHERE m.room = run.room AND m.author = run.author), 0)),
               max(added_bytes), max(added_messages)
        FROM run GROUP BY room, author
        ON CONFLICT (room, author) DO UPDATE SET
            contiguous = excluded.contiguous,
            max_seq = max(max_seq, excluded.max_seq),
            raw_bytes = raw_bytes + excluded.raw_bytes,
            messages = messages + excluded.messages"
    )
}

/// Write marks computed by [`fast_marks`] and add the accounting. Neither
/// mark goes down (max() guards against a caller's mistake as well).
fn upsert_sql(chains: usize) -> String {
    format!(
        "INSERT INTO heads (room, author, contiguous, max_seq, raw_bytes, messages) VALUES {}
         ON CONFLICT (room, author) DO UPDATE SET
             contiguous = max(contiguous, excluded.contiguous),
             max_seq = max(max_seq, excluded.max_seq),
             raw_bytes = raw_bytes + excluded.raw_bytes,
             messages = messages + excluded.messages",
        placeholders(6, chains)
    )
}

/// The marks of the listed chains before this transaction, by index in
/// `chains`; chains without a head are absent.
async fn old_marks(conn: &mut SqliteConnection, chains: &[Touched<'_>]) -> Result<Vec<Option<Marks>>> {
    let sql = format!(
        "SELECT v.column1, h.contiguous, h.max_seq FROM (VALUES {}) AS v
         JOIN heads h ON h.room = v.column2 AND h.author = v.column3",
        placeholders(3, chains.len())
    );
    let mut query = sqlx::query_as::<_, (i64, i64, i64)>(AssertSqlSafe(sql));
    for (i, chain) in chains.iter().enumerate() {
        // Indexes are below CHAINS_PER_STATEMENT.
        query = query.bind(i as i64).bind(chain.room.as_str()).bind(&chain.author.as_bytes()[..]);
    }
    let mut marks = vec![None; chains.len()];
    for (i, contiguous, max_seq) in query.fetch_all(&mut *conn).await? {
        let slot = usize::try_from(i).ok().and_then(|i| marks.get_mut(i));
        *slot.ok_or_else(|| corrupt("heads", "marks lookup index"))? = Some((contiguous, max_seq));
    }
    Ok(marks)
}

/// Bring the heads (and the accounting) of these chains up to date; call
/// inside the transaction that inserted their messages. Each chain should
/// appear once.
///
/// Neither mark ever goes down: they mean "seen up to", and eviction deletes
/// messages that sync must not fetch again. Marks follow from the rows (or,
/// in the common case, from the old marks and the seqs this transaction
/// stored, which is the same thing: see [`fast_marks`]), never from
/// arithmetic on what a peer claims, so they cannot drift from the rows
/// whatever order seqs arrive in. The common case costs one lookup of the
/// old marks and one write per chain; reading them first instead of probing
/// the position index halved the cost of heads for batches of 1,000 chains
/// (`festival-bench store`).
pub(crate) async fn update_heads(conn: &mut SqliteConnection, chains: &[Touched<'_>]) -> Result<()> {
    for part in chains.chunks(CHAINS_PER_STATEMENT) {
        let marks = old_marks(conn, part).await?;
        let mut fast = Vec::with_capacity(part.len());
        let mut slow = Vec::new();
        for (chain, old) in part.iter().zip(marks) {
            match fast_marks(old.unwrap_or((0, 0)), &chain.fresh_seqs) {
                Some(new) => fast.push((chain, new)),
                None => slow.push(chain),
            }
        }
        if !fast.is_empty() {
            let mut query = sqlx::query(AssertSqlSafe(upsert_sql(fast.len())));
            for (chain, (contiguous, max_seq)) in fast {
                query = query
                    .bind(chain.room.as_str())
                    .bind(&chain.author.as_bytes()[..])
                    .bind(contiguous)
                    .bind(max_seq)
                    .bind(chain.added_bytes)
                    .bind(chain.added_messages());
            }
            query.execute(&mut *conn).await?;
        }
        if !slow.is_empty() {
            let mut query = sqlx::query(AssertSqlSafe(probe_sql(slow.len())));
            for chain in slow {
                query = query
                    .bind(chain.room.as_str())
                    .bind(&chain.author.as_bytes()[..])
                    .bind(chain.added_bytes)
                    .bind(chain.added_messages());
            }
            query.execute(&mut *conn).await?;
        }
    }
    Ok(())
}

impl Store {
    /// The head of every chain in every room.
    pub async fn heads(&self) -> Result<Vec<HeadRow>> {
        let rows: Vec<(String, Vec<u8>, i64, i64)> =
            sqlx::query_as("SELECT room, author, contiguous, max_seq FROM heads ORDER BY room, author")
                .fetch_all(&self.reader)
                .await?;
        rows.into_iter()
            .map(|(room, author, contiguous, max)| {
                Ok(HeadRow {
                    room: room_from_sql("heads", room)?,
                    author: peer_from_sql("heads", &author)?,
                    contiguous: from_sql("heads", contiguous)?,
                    max: from_sql("heads", max)?,
                })
            })
            .collect()
    }

    /// The seqs (and ids) stored above `contiguous` in one chain, lowest
    /// first: what we hold beyond the gap, so a peer need not resend it.
    pub async fn held_above(&self, room: &RoomId, author: &PeerId, contiguous: u64) -> Result<Vec<(u64, MessageId)>> {
        let Ok(above) = i64::try_from(contiguous) else {
            // Nothing above i64::MAX can be stored.
            return Ok(Vec::new());
        };
        let rows: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT seq, id FROM messages WHERE room = ? AND author = ? AND seq > ? ORDER BY seq")
                .bind(room.as_str())
                .bind(&author.as_bytes()[..])
                .bind(above)
                .fetch_all(&self.reader)
                .await?;
        rows.into_iter()
            .map(|(seq, id)| Ok((from_sql("messages", seq)?, message_id_from_sql("messages", &id)?)))
            .collect()
    }

    /// Sync gave up on the seqs up to `through` of this chain (no peer holds
    /// them any more): count them as seen. Contiguous becomes at least
    /// `through` (and max at least as high), then climbs over what is
    /// stored above it, as after an insert. Never lowers either mark.
    pub async fn advance_contiguous(&self, room: &RoomId, author: &PeerId, through: u64) -> Result<()> {
        let through = to_sql("through", through)?;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO heads (room, author, contiguous, max_seq) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (room, author) DO UPDATE SET
                 contiguous = max(contiguous, excluded.contiguous),
                 max_seq = max(max_seq, excluded.contiguous)",
        )
        .bind(room.as_str())
        .bind(&author.as_bytes()[..])
        .bind(through)
        .execute(&mut *tx)
        .await?;
        let chain = Touched { room, author: *author, fresh_seqs: Vec::new(), added_bytes: 0 };
        update_heads(&mut tx, &[chain]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The seq the next message of this chain should carry: one above the
    /// highest stored, 1 for a new chain.
    pub async fn next_seq(&self, room: &RoomId, author: &PeerId) -> Result<u64> {
        let max: Option<(i64,)> = sqlx::query_as("SELECT max_seq FROM heads WHERE room = ? AND author = ?")
            .bind(room.as_str())
            .bind(&author.as_bytes()[..])
            .fetch_optional(&self.reader)
            .await?;
        match max {
            Some((max,)) => Ok(from_sql("heads", max)?.saturating_add(1)),
            None => Ok(1),
        }
    }
}
