//! Chain heads: per (room, author), how far the stored chain is complete.
//!
//! Sync compares heads between peers to find what is missing, so reading them
//! must be cheap: they live in their own table, updated by the ingest
//! transaction, instead of being recomputed from `messages` on every summary.

use festival_core::{MessageId, PeerId, RoomId};
use sqlx::{AssertSqlSafe, SqliteConnection};

use crate::error::{from_sql, message_id_from_sql, peer_from_sql, room_from_sql, to_sql, Result};
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

/// One chain touched by a transaction, and what it added to the chain's
/// accounting (see [`crate::usage`]): raw bytes and messages newly stored.
pub(crate) struct Touched<'a> {
    pub room: &'a RoomId,
    pub author: PeerId,
    pub added_bytes: i64,
    pub added_messages: i64,
}

/// Recompute the heads of the listed chains from the messages themselves.
/// For each chain, start from the old contiguous mark and probe `seq + 1`
/// through the (room, author, seq) index until a gap. Only newly filled seqs
/// are probed, so an in-order batch costs one index lookup per message, and
/// filling a gap costs one per held message above it, once. The max comes
/// from the same index, but never goes below the old max.
///
/// Neither mark ever goes down: they mean "seen up to", and eviction deletes
/// messages sync must not fetch again. Deriving them from the rows (instead
/// of adjusting them by arithmetic on the batch) means they cannot drift
/// from the rows, whatever order seqs arrive in. The accounting columns are
/// sums, so they are added: the batch knows what it stored.
fn update_heads_sql(chains: usize) -> String {
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

/// Bring the heads (and the accounting) of these chains up to date; call
/// inside the transaction that inserted their messages. Each chain should
/// appear once.
pub(crate) async fn update_heads(conn: &mut SqliteConnection, chains: &[Touched<'_>]) -> Result<()> {
    for part in chains.chunks(CHAINS_PER_STATEMENT) {
        let mut query = sqlx::query(AssertSqlSafe(update_heads_sql(part.len())));
        for chain in part {
            query = query
                .bind(chain.room.as_str())
                .bind(&chain.author.as_bytes()[..])
                .bind(chain.added_bytes)
                .bind(chain.added_messages);
        }
        query.execute(&mut *conn).await?;
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
        let chain = Touched { room, author: *author, added_bytes: 0, added_messages: 0 };
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
