//! Reading messages: by id, by chain position, a room's history page by page,
//! and a chain's range for sync.
//!
//! Envelopes are rebuilt with `SignedEnvelope::from_stored`, which checks the
//! structure but not the signature (verified once, on the way in): a page of
//! history costs microseconds, not 50 signature checks. The rebuilt id is
//! compared with the stored one, which catches a damaged `raw` for the price
//! of the BLAKE3 hash `from_stored` computes anyway.

use festival_core::{MessageId, PeerId, RoomId, SignedEnvelope};

use crate::error::{clamp_to_sql, corrupt, from_sql, hops_from_sql, message_id_from_sql, Result};
use crate::ids::{recent_pks, GET_BY_ID};
use crate::ingest::id_prefix;
use crate::open::Store;

/// A message as stored, with what we know about its arrival.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    pub envelope: SignedEnvelope,
    /// Links it crossed before reaching us (0 for our own).
    pub hops: u8,
    /// When it reached this device, ms since the Unix epoch (our clock).
    pub received_at: u64,
}

impl StoredMessage {
    /// The cursor that continues history before this message.
    pub fn cursor(&self) -> HistoryCursor {
        HistoryCursor {
            created_at: self.envelope.created_at(),
            author: self.envelope.author(),
            seq: self.envelope.seq(),
        }
    }
}

/// A position in a room's history: ordered by the author's `created_at`,
/// then author, then the author's seq (the order the app shows), so every
/// message has one place, pages never overlap, and one author's messages
/// of one millisecond come in the order they were written. Serializable:
/// the app hands it to its UI and takes it back for the next page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct HistoryCursor {
    pub created_at: u64,
    pub author: PeerId,
    pub seq: u64,
}

/// Rows fetched per query by [`Store::load_range`]: at most ~1 MiB of
/// envelopes even at the maximum envelope size, while a typical sync reply
/// (a few dozen small messages) still takes a single query.
pub(crate) const RANGE_CHUNK: i64 = 64;

/// How long history leaves out a message held above a gap in its chain:
/// ten minutes, then it is shown anyway.
pub const GAP_WAIT_MS: u64 = 600_000;

/// A history cursor as bound to SQL: (created_at, author, seq). No cursor,
/// or one beyond what SQLite holds, is after every message: the largest
/// time, and an author above all.
pub(crate) fn after_or_end(before: Option<HistoryCursor>) -> (i64, Vec<u8>, i64) {
    match before {
        Some(c) if i64::try_from(c.created_at).is_ok() => {
            (clamp_to_sql(c.created_at), c.author.as_bytes().to_vec(), clamp_to_sql(c.seq))
        }
        _ => (i64::MAX, vec![0xff; 33], i64::MAX),
    }
}

/// Messages held above a gap that arrived at or before this (ms, this
/// device's clock) are shown anyway ([`GAP_WAIT_MS`]).
pub(crate) fn gap_cutoff() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    clamp_to_sql(now.saturating_sub(GAP_WAIT_MS))
}

/// `id, raw, hops, received_at`, the columns every message query selects.
pub(crate) type MessageRow = (Vec<u8>, Vec<u8>, i64, i64);

pub(crate) fn rebuild(id: &[u8], raw: &[u8]) -> Result<SignedEnvelope> {
    let envelope = SignedEnvelope::from_stored(raw).map_err(|e| corrupt("messages", format!("raw envelope: {e}")))?;
    let id = message_id_from_sql("messages", id)?;
    if envelope.id() != id {
        return Err(corrupt("messages", format!("raw bytes of {id:?} hash to {:?}", envelope.id())));
    }
    Ok(envelope)
}

pub(crate) fn stored((id, raw, hops, received_at): MessageRow) -> Result<StoredMessage> {
    Ok(StoredMessage {
        envelope: rebuild(&id, &raw)?,
        hops: hops_from_sql("messages", hops)?,
        received_at: from_sql("messages", received_at)?,
    })
}

impl Store {
    /// The message with this id, if stored.
    pub async fn get(&self, id: &MessageId) -> Result<Option<StoredMessage>> {
        // Through both parts of the id index; see crate::ids. Memory first,
        // then the query.
        let prefix = id_prefix(id);
        let (recent, known) = recent_pks(&self.ids, prefix);
        let row: Option<MessageRow> = sqlx::query_as(GET_BY_ID)
            .bind(prefix)
            .bind(&id.as_bytes()[..])
            .bind(recent)
            .bind(known)
            .fetch_optional(&self.reader)
            .await?;
        row.map(stored).transpose()
    }

    /// Which of `ids` are stored: a lookup each, in this process.
    pub async fn held(&self, ids: &[MessageId]) -> Result<std::collections::HashSet<MessageId>> {
        let mut out = std::collections::HashSet::with_capacity(ids.len());
        for id in ids {
            if self.get(id).await?.is_some() {
                out.insert(*id);
            }
        }
        Ok(out)
    }

    /// The message at a chain position, if stored.
    pub async fn get_at(&self, room: &RoomId, author: &PeerId, seq: u64) -> Result<Option<StoredMessage>> {
        let Ok(seq) = i64::try_from(seq) else {
            return Ok(None);
        };
        let row: Option<MessageRow> = sqlx::query_as(
            "SELECT id, raw, hops, received_at FROM messages
                 WHERE chain = (SELECT chain FROM heads WHERE room = ? AND author = ?) AND seq = ?",
        )
        .bind(room.as_str())
        .bind(&author.as_bytes()[..])
        .bind(seq)
        .fetch_optional(&self.reader)
        .await?;
        row.map(stored).transpose()
    }

    /// The latest `limit` messages of `room` strictly before `before` (or the
    /// very latest, with `None`), returned oldest first, ready to display.
    /// Pass the first message's [`StoredMessage::cursor`] to get the page
    /// before it. A message held above a gap in its author's chain is left
    /// out until the gap fills (or is given up on), as the node delivers it
    /// only then: a later message is not shown before an earlier one of the
    /// same author that is still on its way. It waits at most
    /// [`GAP_WAIT_MS`] after it arrived (by this device's clock): a gap
    /// nobody around can fill does not hide the rest of a chain for the
    /// whole festival. Messages of people blocked here are left out (they
    /// stay stored: the room's other members may want them from us), and so
    /// are photos' chunks (kind 10, shown with their photo).
    pub async fn history(
        &self,
        room: &RoomId,
        before: Option<HistoryCursor>,
        limit: u32,
    ) -> Result<Vec<StoredMessage>> {
        // The query walks the (room, created_at, author, seq) index
        // backwards from the cursor and stops after `limit` rows: the cost
        // depends on the page size, not on how many messages the room or
        // the store holds.
        let (at, author, seq) = after_or_end(before);
        let rows: Vec<MessageRow> = sqlx::query_as(
            "SELECT m.id, m.raw, m.hops, m.received_at FROM messages m
             JOIN heads h ON h.chain = m.chain
             WHERE m.room = ?1 AND (m.created_at, m.author, m.seq) < (?2, ?3, ?4)
               AND m.kind <> 10
               AND (m.seq <= h.contiguous OR m.received_at <= ?5)
               AND m.author NOT IN (SELECT peer_id FROM people_choices WHERE blocked = 1)
             ORDER BY m.created_at DESC, m.author DESC, m.seq DESC LIMIT ?6",
        )
        .bind(room.as_str())
        .bind(at)
        .bind(author)
        .bind(seq)
        .bind(gap_cutoff())
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        let mut page = rows.into_iter().map(stored).collect::<Result<Vec<_>>>()?;
        page.reverse();
        Ok(page)
    }

    /// The direct messages between `me` and `with` (either way), a page as
    /// [`Store::history`] gives one: the latest `limit` before `before`,
    /// oldest first, none above a gap in its author's chain. Walks the DM
    /// mailbox's history index and skips other people's mail, so a page
    /// costs more where the mailbox carries much mail for others. Nothing a
    /// blocked person wrote is shown; what we wrote to them is.
    pub async fn dm_history(
        &self,
        me: &PeerId,
        with: &PeerId,
        before: Option<HistoryCursor>,
        limit: u32,
    ) -> Result<Vec<StoredMessage>> {
        // 2 is Kind::SealedDm (checked in rooms.rs's tests).
        let (at, author, seq) = after_or_end(before);
        let rows: Vec<MessageRow> = sqlx::query_as(
            "SELECT m.id, m.raw, m.hops, m.received_at FROM messages m
             JOIN heads h ON h.chain = m.chain
             WHERE m.room = ?1 AND m.kind = 2 AND (m.created_at, m.author, m.seq) < (?2, ?3, ?4)
               AND ((m.author = ?5 AND m.recipient = ?6) OR (m.author = ?6 AND m.recipient = ?5))
               AND (m.seq <= h.contiguous OR m.received_at <= ?7)
               AND m.author NOT IN (SELECT peer_id FROM people_choices WHERE blocked = 1)
             ORDER BY m.created_at DESC, m.author DESC, m.seq DESC LIMIT ?8",
        )
        .bind(RoomId::DIRECT)
        .bind(at)
        .bind(author)
        .bind(seq)
        .bind(&me.as_bytes()[..])
        .bind(&with.as_bytes()[..])
        .bind(gap_cutoff())
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        let mut page = rows.into_iter().map(stored).collect::<Result<Vec<_>>>()?;
        page.reverse();
        Ok(page)
    }

    /// How many of one chain's messages with `from <= seq <= to` are
    /// stored (a photo's chunks: see `festival_core::photo`).
    pub async fn count_range(&self, room: &RoomId, author: &PeerId, from: u64, to: u64) -> Result<u64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM messages
             WHERE chain = (SELECT chain FROM heads WHERE room = ? AND author = ?) AND seq >= ? AND seq <= ?",
        )
        .bind(room.as_str())
        .bind(&author.as_bytes()[..])
        .bind(clamp_to_sql(from))
        .bind(clamp_to_sql(to))
        .fetch_one(&self.reader)
        .await?;
        Ok(n.max(0) as u64)
    }

    /// The stored messages of one chain with `from <= seq <= to`, lowest
    /// first, with their hop counts: the reply to a peer's want. Stops before
    /// the raw bytes would exceed `max_bytes`, but always returns at least one
    /// message when any is stored, so progress is made even if one envelope
    /// is larger than the budget. Seqs missing from the range are skipped,
    /// and so are messages created before `not_before`: expired ones are not
    /// served (pass 0 for all).
    pub async fn load_range(
        &self,
        room: &RoomId,
        author: &PeerId,
        from: u64,
        to: u64,
        max_bytes: usize,
        not_before: u64,
    ) -> Result<Vec<(SignedEnvelope, u8)>> {
        // Seqs start at 1, so "above from - 1" is "from and up".
        let (mut after, to) = (clamp_to_sql(from.saturating_sub(1)), clamp_to_sql(to));
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while after < to {
            let rows: Vec<(i64, Vec<u8>, Vec<u8>, i64)> = sqlx::query_as(
                "SELECT seq, id, raw, hops FROM messages
                 WHERE chain = (SELECT chain FROM heads WHERE room = ? AND author = ?)
                   AND seq > ? AND seq <= ? AND created_at >= ?
                 ORDER BY seq LIMIT ?",
            )
            .bind(room.as_str())
            .bind(&author.as_bytes()[..])
            .bind(after)
            .bind(to)
            .bind(clamp_to_sql(not_before))
            .bind(RANGE_CHUNK)
            .fetch_all(&self.reader)
            .await?;
            let exhausted = rows.len() < RANGE_CHUNK as usize;
            for (seq, id, raw, hops) in rows {
                if !out.is_empty() && bytes.saturating_add(raw.len()) > max_bytes {
                    return Ok(out);
                }
                bytes = bytes.saturating_add(raw.len());
                out.push((rebuild(&id, &raw)?, hops_from_sql("messages", hops)?));
                after = seq;
            }
            if exhausted {
                break;
            }
        }
        Ok(out)
    }
}
