//! Small lookups the node needs around sync: each chain's tip id (for
//! summaries that show equivocation), what a receipt refers to, and who
//! counts as a member of a room.

use std::collections::HashMap;

use festival_core::body::Body;
use festival_core::receipt::Target;
use festival_core::{Kind, MessageId, PeerId, RoomId, SignedEnvelope};
use sqlx::AssertSqlSafe;

use crate::error::{corrupt, message_id_from_sql, peer_from_sql, room_from_sql, Result};
use crate::ids::{pks_of, recent_pks};
use crate::ingest::{id_prefix, placeholders};
use crate::open::Store;

/// A row of `id, room, author, kind, recipient, raw` (`raw` only for a
/// private group's message: see [`TARGET_COLUMNS`]).
pub(crate) type TargetRow = (Vec<u8>, String, Vec<u8>, i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// The columns of a [`TargetRow`], of `messages` aliased `m`: the envelope's
/// bytes only for a group message (kind 8), whose members are in its body.
pub(crate) const TARGET_COLUMNS: &str =
    "m.id, m.room, m.author, m.kind, m.recipient, CASE WHEN m.kind = 8 THEN m.raw END";

/// What a receipt for the message of this row refers to.
pub(crate) fn target_from_row((id, room, author, kind, recipient, raw): TargetRow) -> Result<(MessageId, Target)> {
    let recipient = match recipient {
        Some(r) if kind == i64::from(Kind::SealedDm.code()) => Some(peer_from_sql("messages", &r)?),
        _ => None,
    };
    let members = match raw {
        Some(raw) if kind == i64::from(Kind::GroupMessage.code()) => {
            let env = SignedEnvelope::from_stored(&raw).map_err(|e| corrupt("messages", e.to_string()))?;
            match Body::parse(Kind::GroupMessage, env.body()) {
                Ok(Body::SealedGroup(g)) => g.members,
                _ => Vec::new(),
            }
        }
        _ => Vec::new(),
    };
    let target = Target {
        room: room_from_sql("messages", room)?,
        author: peer_from_sql("messages", &author)?,
        recipient,
        members,
    };
    Ok((message_id_from_sql("messages", &id)?, target))
}

/// Ids looked up per statement (four values bound each).
const IDS_PER_STATEMENT: usize = 256;

/// The kinds whose author is a member of the room they are in (whose room
/// receipts count): texts, photos, meet-ups and answers to them, and (the festival
/// room's) profiles. Both stores' membership queries bind these.
pub(crate) const MEMBER_KINDS: [i64; 5] = [
    Kind::Text.code() as i64,
    Kind::Photo.code() as i64,
    Kind::Profile.code() as i64,
    Kind::Meetup.code() as i64,
    Kind::MeetupReply.code() as i64,
];

impl Store {
    /// The id of the message at each chain's `max_seq`, for the chains
    /// that still hold it: one pass over `heads` joined with the position index.
    pub async fn tips(&self) -> Result<HashMap<(RoomId, PeerId), MessageId>> {
        let rows: Vec<(String, Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT h.room, h.author, m.id FROM heads h
             JOIN messages m ON m.chain = h.chain AND m.seq = h.max_seq",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|(room, author, id)| {
                Ok((
                    (room_from_sql("heads", room)?, peer_from_sql("heads", &author)?),
                    message_id_from_sql("messages", &id)?,
                ))
            })
            .collect()
    }

    /// What each of `ids` that is stored refers to: its room, author and,
    /// for a sealed DM, its recipient; for a group message, its members.
    pub async fn receipt_targets(&self, ids: &[MessageId]) -> Result<HashMap<MessageId, Target>> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            // Through both parts of the id index (see crate::ids): memory's
            // rowids for each id, then one probe of the main part per id.
            let sql = format!(
                "SELECT {TARGET_COLUMNS} FROM (VALUES {}) AS v
                 JOIN messages m ON m.pk IN ({}) AND m.id = v.column2",
                placeholders(4, chunk.len()),
                pks_of("v.column1", "v.column3", "v.column4")
            );
            let mut q = sqlx::query_as::<_, TargetRow>(AssertSqlSafe(sql));
            for id in chunk {
                let prefix = id_prefix(id);
                let (recent, known) = recent_pks(&self.ids, prefix);
                q = q.bind(prefix).bind(id.as_bytes().to_vec()).bind(recent).bind(known);
            }
            for row in q.fetch_all(&self.reader).await? {
                let (id, target) = target_from_row(row)?;
                out.insert(id, target);
            }
        }
        Ok(out)
    }

    /// Whether `author` has written a text, posted a photo, or posted or
    /// answered a meet-up in `room`, or (the festival room) announced a name there: a member,
    /// whose room receipts count.
    pub async fn is_member(&self, author: &PeerId, room: &RoomId) -> Result<bool> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT 1 FROM heads h JOIN messages m ON m.chain = h.chain
                 WHERE h.room = ? AND h.author = ? AND m.kind IN (?, ?, ?, ?, ?) LIMIT 1",
        )
        .bind(room.as_str())
        .bind(&author.as_bytes()[..])
        .bind(MEMBER_KINDS[0])
        .bind(MEMBER_KINDS[1])
        .bind(MEMBER_KINDS[2])
        .bind(MEMBER_KINDS[3])
        .bind(MEMBER_KINDS[4])
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.is_some())
    }
}

impl Store {
    /// Keep the peers table to about `keep` rows: forget unverified peers,
    /// those never met on a link or seen longest ago first (their messages
    /// then show with a fingerprint and no name). Names arrive with every
    /// profile of every key, so a stream of fresh keys would otherwise grow
    /// the table without end. People muted or blocked keep their names (the
    /// list to undo it shows them). Returns how many were forgotten.
    pub async fn prune_peers(&self, keep: u64) -> Result<u64> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let done = sqlx::query(
            "DELETE FROM peers WHERE peer_id IN (
                 SELECT peer_id FROM peers WHERE verified = 0
                     AND peer_id NOT IN (SELECT peer_id FROM people_choices)
                 ORDER BY coalesce(last_seen, 0), peer_id
                 LIMIT max(0, (SELECT count(*) FROM peers) - ?))",
        )
        .bind(keep)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }
}
