//! Chain heads: per (room, author), how far the stored chain is complete.
//!
//! Sync compares heads between peers to find what is missing, so reading them
//! must be cheap: they live in their own table, updated by the ingest
//! transaction, instead of being recomputed from `messages` on every summary.

use festival_core::sync::{Snapshot, SnapshotHead};
use festival_core::{MessageId, PeerId, RoomId, SignedEnvelope};
use sqlx::{AssertSqlSafe, SqliteConnection};

use crate::chains::KnownChains;
use crate::error::{corrupt, from_sql, message_id_from_sql, peer_from_sql, room_from_sql, to_sql, Result};
use crate::ingest::placeholders;
use crate::open::Store;
use crate::script::Script;

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

impl HeadRow {
    /// From a row of `room, author, contiguous, max_seq`.
    pub(crate) fn from_row((room, author, contiguous, max): (String, Vec<u8>, i64, i64)) -> Result<HeadRow> {
        Ok(HeadRow {
            room: room_from_sql("heads", room)?,
            author: peer_from_sql("heads", &author)?,
            contiguous: from_sql("heads", contiguous)?,
            max: from_sql("heads", max)?,
        })
    }
}

/// Chains one statement looks up or writes: a batch of 1,000 messages from
/// as many chains takes one statement (three values bound per chain here,
/// six at most below, far under SQLite's limit of 32,766), since every
/// statement is a round trip to sqlx's worker thread.
const CHAINS_PER_STATEMENT: usize = 1_024;

/// A chain's marks: (contiguous, max_seq).
pub(crate) type Marks = (i64, i64);

/// A chain as the ingest transaction found it: its id, and its marks before
/// the transaction ((0, 0) for a chain the transaction creates, `new`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Chain {
    pub id: i64,
    pub marks: Marks,
    pub new: bool,
}

/// One chain touched by a transaction: the seqs it newly stored (ascending)
/// and what they added to the chain's accounting (see [`crate::usage`]).
pub(crate) struct Touched<'a> {
    pub room: &'a RoomId,
    pub author: PeerId,
    pub chain: Chain,
    pub fresh_seqs: Vec<i64>,
    pub added_bytes: i64,
}

impl<'a> Touched<'a> {
    /// Nothing added yet.
    pub(crate) fn new(room: &'a RoomId, author: PeerId, chain: Chain) -> Touched<'a> {
        Touched { room, author, chain, fresh_seqs: Vec::new(), added_bytes: 0 }
    }

    pub(crate) fn added_messages(&self) -> i64 {
        i64::try_from(self.fresh_seqs.len()).unwrap_or(i64::MAX)
    }
}

/// What [`find_chains`] found.
pub(crate) struct Found {
    /// The highest rowid of `messages` (0 when empty).
    pub last_pk: i64,
    /// The file's `data_version` on this connection: it changes when
    /// another connection commits.
    pub data_version: i64,
    /// Per key, in order.
    pub chains: Vec<Chain>,
}

/// The id and marks of each listed chain (room, author), in order. A chain
/// not seen before gets the next free id, marks (0, 0) and `new`; nothing
/// is written: ingest writes new chains with its head updates
/// ([`heads_script`]), others call [`create_chains`]. Call inside the
/// transaction that writes their messages, before writing them: messages
/// name their chain by id.
///
/// Chains the writer remembers (see [`crate::chains`]) are not looked up,
/// unless the file changed under the memory. Also returns the highest
/// message rowid, which ingest needs at the same moment: a subquery costs
/// far less than another round trip.
pub(crate) async fn find_chains(
    conn: &mut SqliteConnection,
    keys: &[(&RoomId, PeerId)],
    known: &KnownChains,
) -> Result<Found> {
    let (mut found, _) = known.recall(keys);
    let recalled = found.iter().any(Option::is_some);
    let mut last = lookup(conn, keys, &mut found).await?;
    if !known.check(last.data_version) && recalled {
        // Another connection wrote since: what was recalled may be stale.
        found = vec![None; keys.len()];
        last = lookup(conn, keys, &mut found).await?;
    }
    let mut next = last.chain;
    let chains = found
        .into_iter()
        .map(|c| {
            c.unwrap_or_else(|| {
                next += 1;
                Chain { id: next, marks: (0, 0), new: true }
            })
        })
        .collect();
    Ok(Found { last_pk: last.pk, data_version: last.data_version, chains })
}

/// The file's `data_version`, highest message rowid and highest chain id.
struct Last {
    data_version: i64,
    pk: i64,
    chain: i64,
}

/// Fill the empty slots of `found` (one per key) with the chains `heads`
/// holds. Rows come back as one text, since every row sqlx returns is a
/// message from its worker thread, and a thousand of them cost more than
/// the lookups.
async fn lookup(conn: &mut SqliteConnection, keys: &[(&RoomId, PeerId)], found: &mut [Option<Chain>]) -> Result<Last> {
    let missing: Vec<usize> = (0..keys.len()).filter(|&i| found[i].is_none()).collect();
    let mut last = None;
    // At least one query, for the marks, even with nothing to look up.
    let parts: Vec<&[usize]> =
        if missing.is_empty() { vec![&[]] } else { missing.chunks(CHAINS_PER_STATEMENT).collect() };
    for part in parts {
        let lookups = if part.is_empty() {
            "NULL".to_owned()
        } else {
            format!(
                "(SELECT group_concat(v.column1 || ' ' || h.chain || ' ' || h.contiguous || ' ' || h.max_seq, ' ')
                  FROM (VALUES {}) AS v JOIN heads h ON h.room = v.column2 AND h.author = v.column3)",
                placeholders(3, part.len())
            )
        };
        let sql = format!(
            "SELECT (SELECT data_version FROM pragma_data_version()), (SELECT coalesce(max(pk), 0) FROM messages),
                    (SELECT coalesce(max(chain), 0) FROM heads), {lookups}"
        );
        let mut query = sqlx::query_as::<_, (i64, i64, i64, Option<String>)>(AssertSqlSafe(sql));
        for &i in part {
            let (room, author) = &keys[i];
            query = query.bind(i as i64).bind(room.as_str()).bind(&author.as_bytes()[..]);
        }
        let (data_version, pk, chain, rows) = query.fetch_one(&mut *conn).await?;
        last = Some(Last { data_version, pk, chain });
        let numbers: Vec<i64> = match rows {
            Some(text) => text
                .split_ascii_whitespace()
                .map(|n| n.parse().map_err(|_| corrupt("heads", "chain lookup")))
                .collect::<Result<_>>()?,
            None => Vec::new(),
        };
        for row in numbers.chunks(4) {
            let &[i, id, contiguous, max_seq] = row else {
                return Err(corrupt("heads", "chain lookup row"));
            };
            let slot = usize::try_from(i).ok().and_then(|i| found.get_mut(i));
            *slot.ok_or_else(|| corrupt("heads", "chain lookup index"))? =
                Some(Chain { id, marks: (contiguous, max_seq), new: false });
        }
    }
    last.ok_or_else(|| corrupt("heads", "no chain lookup ran"))
}

/// Write the head rows of the `new` chains among `chains` (found for `keys`
/// by [`find_chains`]), at (0, 0) with nothing accounted.
pub(crate) async fn create_chains(
    conn: &mut SqliteConnection,
    keys: &[(&RoomId, PeerId)],
    chains: &[Chain],
) -> Result<()> {
    let mut script = Script::default();
    for (&(room, author), chain) in keys.iter().zip(chains).filter(|(_, c)| c.new) {
        script
            .sql("INSERT INTO heads (room, author, chain, contiguous, max_seq) VALUES (?, ?, ?, 0, 0);")
            .bind(room.as_str())
            .bind(author.as_bytes().to_vec())
            .bind(chain.id);
    }
    script.run(conn).await
}

/// The new marks of a chain when they follow from the old ones and the
/// batch alone, without looking at the rows: when nothing was stored above
/// `contiguous` before (max_seq == contiguous; a new chain is (0, 0)), the
/// seqs stored above it now are exactly the fresh ones, so contiguous climbs
/// through the unbroken run of fresh seqs that starts right above it.
/// `None` when older messages are held above a gap, which only a probe of
/// the rows can settle.
pub(crate) fn fast_marks((contiguous, max_seq): Marks, fresh: &[i64]) -> Option<Marks> {
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

/// Recompute the marks of chains that [`fast_marks`] cannot derive, from
/// the messages themselves: start from the old contiguous mark and probe
/// `seq + 1` through the (chain, seq) index until a gap. Filling a gap costs
/// one probe per held message above it, once. The max comes from the same
/// index, but never goes below the old max. Also adds the accounting, like
/// [`write_sql`].
fn probe_sql(chains: usize) -> String {
    let values = placeholders(3, chains);
    format!(
        "WITH RECURSIVE
            touched(chain, added_bytes, added_messages) AS (VALUES {values}),
            run(chain, s, added_bytes, added_messages) AS (
                SELECT t.chain, h.contiguous, t.added_bytes, t.added_messages
                FROM touched t JOIN heads h ON h.chain = t.chain
                UNION ALL
                SELECT run.chain, run.s + 1, run.added_bytes, run.added_messages FROM run
                WHERE EXISTS (SELECT 1 FROM messages m WHERE m.chain = run.chain AND m.seq = run.s + 1)
            )
        UPDATE heads SET
            contiguous = r.contiguous,
            max_seq = max(max_seq, r.contiguous, coalesce(r.stored_max, 0)),
            raw_bytes = raw_bytes + r.added_bytes,
            messages = messages + r.added_messages
        FROM (SELECT chain, max(s) AS contiguous,
                     (SELECT max(seq) FROM messages m WHERE m.chain = run.chain) AS stored_max,
                     max(added_bytes) AS added_bytes, max(added_messages) AS added_messages
              FROM run GROUP BY chain) AS r
        WHERE heads.chain = r.chain"
    )
}

/// Write marks computed by [`fast_marks`] and add the accounting, creating
/// the chains that are new: one upsert, keyed by (room, author), the
/// table's own key, so each chain costs one probe of it (an `UPDATE ..
/// FROM` first copies its values and then the rows to change into two
/// temporary tables). Neither mark goes down (max() guards against a
/// caller's mistake as well); the chain id of an existing row is left as
/// it is.
fn write_sql(chains: usize) -> String {
    format!(
        "INSERT INTO heads (room, author, chain, contiguous, max_seq, raw_bytes, messages) VALUES {}
         ON CONFLICT (room, author) DO UPDATE SET
             contiguous = max(contiguous, excluded.contiguous),
             max_seq = max(max_seq, excluded.max_seq),
             raw_bytes = raw_bytes + excluded.raw_bytes,
             messages = messages + excluded.messages;",
        placeholders(7, chains)
    )
}

/// Add to `script` what brings the heads (and the accounting) of these
/// chains up to date, and creates the new ones; for the transaction that
/// inserted their messages, with the marks [`find_chains`] found. Each
/// chain should appear once. Every new chain must be listed, even one that
/// stored nothing: its row is written here.
///
/// Neither mark ever goes down: they mean "seen up to", and eviction deletes
/// messages that sync must not fetch again. Marks follow from the rows (or,
/// in the common case, from the old marks and the seqs this transaction
/// stored, which is the same thing: see [`fast_marks`]), never from
/// arithmetic on what a peer claims, so they cannot drift from the rows
/// whatever order seqs arrive in. The common case costs one write per
/// chain; only chains with messages held above a gap are probed.
///
/// Returns each chain's marks as the script leaves them, `None` where SQL
/// computes them (for [`KnownChains::remember`]).
pub(crate) fn heads_script<'a>(
    script: &mut Script,
    chains: &[Touched<'a>],
) -> Vec<(&'a RoomId, PeerId, i64, Option<Marks>)> {
    let mut fast: Vec<(&Touched, Marks)> = Vec::new();
    let mut slow = Vec::new();
    for chain in chains {
        match fast_marks(chain.chain.marks, &chain.fresh_seqs) {
            Some(marks) => fast.push((chain, marks)),
            // A new chain has nothing above a gap: fast_marks always applies.
            None => slow.push(chain),
        }
    }
    for part in fast.chunks(CHAINS_PER_STATEMENT) {
        script.sql(&write_sql(part.len()));
        for (chain, (contiguous, max_seq)) in part {
            script
                .bind(chain.room.as_str())
                .bind(chain.author.as_bytes().to_vec())
                .bind(chain.chain.id)
                .bind(*contiguous)
                .bind(*max_seq)
                .bind(chain.added_bytes)
                .bind(chain.added_messages());
        }
    }
    for part in slow.chunks(CHAINS_PER_STATEMENT) {
        script.sql(&probe_sql(part.len())).sql(";");
        for chain in part {
            script.bind(chain.chain.id).bind(chain.added_bytes).bind(chain.added_messages());
        }
    }
    let known = fast.iter().map(|(c, marks)| (c.room, c.author, c.chain.id, Some(*marks)));
    known.chain(slow.iter().map(|c| (c.room, c.author, c.chain.id, None))).collect()
}

impl Store {
    /// What the sync core starts from (`festival_core::sync::Node::new`):
    /// every chain's head with its tip id, the seqs held above each gap,
    /// the messages not yet sent, the equivocators proven and the people
    /// blocked here.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        let mut snapshot = Snapshot::default();
        let tips = self.tips().await?;
        for h in self.heads().await? {
            if h.max > h.contiguous {
                for (seq, id) in self.held_above(&h.room, &h.author, h.contiguous).await? {
                    snapshot.held_above.push((h.room.clone(), h.author, seq, id));
                }
                for (seq, pieces) in self.photos_near_gap(&h.room, &h.author, h.contiguous, h.max).await? {
                    snapshot.photos.push((h.room.clone(), h.author, seq, pieces));
                }
            }
            let tip = tips.get(&(h.room.clone(), h.author)).copied();
            snapshot.heads.push(SnapshotHead {
                room: h.room,
                author: h.author,
                contiguous: h.contiguous,
                max: h.max,
                tip,
            });
        }
        snapshot.unsent = self.unsent().await?.into_iter().map(|r| r.id).collect();
        snapshot.equivocators = self.equivocators().await?;
        snapshot.blocked = self.people_choices().await?.into_iter().filter(|c| c.blocked).map(|c| c.peer).collect();
        Ok(snapshot)
    }

    /// The photo headers (seq, pieces) of one chain whose pieces may reach
    /// above `contiguous`: from `MAX_CHUNKS` below it up to `max` (what the
    /// core needs to go past missing pieces after a restart as before).
    async fn photos_near_gap(
        &self,
        room: &RoomId,
        author: &PeerId,
        contiguous: u64,
        max: u64,
    ) -> Result<Vec<(u64, u64)>> {
        let from = contiguous.saturating_sub(festival_core::photo::MAX_CHUNKS as u64);
        let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
            "SELECT raw FROM messages
             WHERE chain = (SELECT chain FROM heads WHERE room = ? AND author = ?)
               AND kind = 9 AND seq > ? AND seq <= ? ORDER BY seq",
        )
        .bind(room.as_str())
        .bind(&author.as_bytes()[..])
        .bind(crate::error::clamp_to_sql(from))
        .bind(crate::error::clamp_to_sql(max))
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(raw,)| SignedEnvelope::from_stored(&raw).ok())
            .filter_map(|e| match e.parsed_body() {
                festival_core::Body::Photo(p) => Some((e.seq(), p.chunks() as u64)),
                _ => None,
            })
            .collect())
    }

    /// The head of every chain in every room.
    pub async fn heads(&self) -> Result<Vec<HeadRow>> {
        let rows: Vec<(String, Vec<u8>, i64, i64)> =
            sqlx::query_as("SELECT room, author, contiguous, max_seq FROM heads ORDER BY room, author")
                .fetch_all(&self.reader)
                .await?;
        rows.into_iter().map(HeadRow::from_row).collect()
    }

    /// The seqs (and ids) stored above `contiguous` in one chain, lowest
    /// first: what we hold beyond the gap, so a peer need not resend it.
    pub async fn held_above(&self, room: &RoomId, author: &PeerId, contiguous: u64) -> Result<Vec<(u64, MessageId)>> {
        let Ok(above) = i64::try_from(contiguous) else {
            // Nothing above i64::MAX can be stored.
            return Ok(Vec::new());
        };
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT seq, id FROM messages
                 WHERE chain = (SELECT chain FROM heads WHERE room = ? AND author = ?) AND seq > ? ORDER BY seq",
        )
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
        let keys = [(room, *author)];
        let found = find_chains(&mut tx, &keys, &self.chains).await?;
        // Its marks are about to change in SQL.
        self.chains.forget_chain(room, *author);
        create_chains(&mut tx, &keys, &found.chains).await?;
        let [chain] = found.chains[..] else {
            return Err(corrupt("heads", "one chain asked, not one found"));
        };
        let (contiguous, max_seq) = chain.marks;
        let marks = (contiguous.max(through), max_seq.max(through));
        sqlx::query("UPDATE heads SET contiguous = ?, max_seq = ? WHERE chain = ?")
            .bind(marks.0)
            .bind(marks.1)
            .bind(chain.id)
            .execute(&mut *tx)
            .await?;
        // Then climb over what is stored above the new mark: the probe of
        // update_heads, adding nothing to the accounting.
        sqlx::query(AssertSqlSafe(probe_sql(1))).bind(chain.id).bind(0i64).bind(0i64).execute(&mut *tx).await?;
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
