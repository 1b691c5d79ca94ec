//! Private groups this device is in (see migrations/0010_groups.sql and
//! `festival_core::group`): the queue of group messages to open, each
//! group's messages, and each group as its latest message says.

use festival_core::group::{self, GroupContent, GroupId};
use festival_core::{Identity, PeerId, SignedEnvelope};

use crate::error::{corrupt, from_sql, peer_from_sql, to_sql, Result};
use crate::open::Store;
use crate::read::{after_or_end, stored, HistoryCursor, MessageRow, StoredMessage};

/// Most groups this device keeps: anyone can seal a message to us naming
/// a new group, so a thousand fresh keys could otherwise grow the list
/// without end. A message of a group past the cap is carried, not shown.
pub const MAX_GROUPS: u64 = 1_000;
/// Group messages opened per transaction.
const OPEN_BATCH: u32 = 256;

/// A group as its latest message says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRecord {
    pub id: GroupId,
    pub name: String,
    /// Sorted; us included unless we left.
    pub members: Vec<PeerId>,
    /// `created_at` of the message that said so.
    pub updated_at: u64,
    /// We left it.
    pub left: bool,
    /// When its latest message reached us.
    pub last_activity: u64,
}

fn members_to_sql(members: &[PeerId]) -> Vec<u8> {
    members.iter().flat_map(|p| p.as_bytes().to_vec()).collect()
}

fn members_from_sql(bytes: &[u8]) -> Result<Vec<PeerId>> {
    if !bytes.len().is_multiple_of(32) {
        return Err(corrupt("groups", "members not a multiple of 32 bytes"));
    }
    bytes.chunks(32).map(|c| peer_from_sql("groups", c)).collect()
}

fn group_from_sql(bytes: &[u8]) -> Result<GroupId> {
    Ok(GroupId(bytes.try_into().map_err(|_| corrupt("groups", "group id of 16 bytes"))?))
}

type GroupRow = (Vec<u8>, String, Vec<u8>, i64, i64, i64);

fn record((id, name, members, updated_at, left, last): GroupRow) -> Result<GroupRecord> {
    Ok(GroupRecord {
        id: group_from_sql(&id)?,
        name,
        members: members_from_sql(&members)?,
        updated_at: from_sql("groups", updated_at)?,
        left: crate::error::flag_from_sql("groups", "left_group", left)?,
        last_activity: from_sql("groups", last)?,
    })
}

impl Store {
    /// Open the group messages stored since the last call (up to `max`):
    /// those for `me` join their group's history, and their group becomes
    /// what the latest of its messages says. Returns how many were looked
    /// at. Cheap for the others' group mail that every node carries: one
    /// look at the member list.
    pub async fn index_groups(&self, me: &Identity, max: u32) -> Result<u64> {
        let my_id = me.peer_id();
        let mut left = max;
        while left > 0 {
            let batch = OPEN_BATCH.min(left);
            let rows: Vec<(i64, Vec<u8>, i64)> = sqlx::query_as(
                "SELECT p.pk, m.raw, m.received_at FROM group_pending p JOIN messages m ON m.pk = p.pk
                 ORDER BY p.pk LIMIT ?",
            )
            .bind(i64::from(batch))
            .fetch_all(&self.reader)
            .await?;
            if rows.is_empty() {
                break;
            }
            let n = rows.len();
            let mut opened = Vec::new();
            for (pk, raw, received_at) in &rows {
                let Ok(env) = SignedEnvelope::from_stored(raw) else { continue };
                if let Ok(plain) = group::open(me, &env) {
                    opened.push((*pk, env.created_at(), *received_at, env.author(), plain));
                }
            }
            let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
            for (pk, created_at, received_at, author, plain) in &opened {
                // Still queued: its message was not deleted meanwhile.
                let queued: Option<(i64,)> = sqlx::query_as("SELECT pk FROM group_pending WHERE pk = ?")
                    .bind(pk)
                    .fetch_optional(&mut *tx)
                    .await?;
                if queued.is_none() {
                    continue;
                }
                let gid = &plain.group.0[..];
                let known: Option<(i64,)> = sqlx::query_as("SELECT updated_at FROM groups WHERE group_id = ?")
                    .bind(gid)
                    .fetch_optional(&mut *tx)
                    .await?;
                if known.is_none() {
                    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM groups").fetch_one(&mut *tx).await?;
                    if from_sql("groups", count)? >= MAX_GROUPS {
                        continue;
                    }
                }
                // After a "left" message its author is out; we are out if
                // we wrote it.
                let leaving = plain.content == GroupContent::Left;
                let members: Vec<PeerId> =
                    plain.members.iter().copied().filter(|p| !(leaving && p == author)).collect();
                let we_left = leaving && *author == my_id;
                let (created, received) = (to_sql("created_at", *created_at)?, *received_at);
                sqlx::query(
                    "INSERT INTO groups (group_id, name, members, updated_at, left_group, last_activity)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (group_id) DO UPDATE SET
                        name = CASE WHEN excluded.updated_at > groups.updated_at THEN excluded.name ELSE groups.name END,
                        members = CASE WHEN excluded.updated_at > groups.updated_at THEN excluded.members ELSE groups.members END,
                        left_group = CASE WHEN excluded.updated_at > groups.updated_at THEN excluded.left_group ELSE groups.left_group END,
                        updated_at = max(groups.updated_at, excluded.updated_at),
                        last_activity = max(groups.last_activity, excluded.last_activity)",
                )
                .bind(gid)
                .bind(&plain.name)
                .bind(members_to_sql(&members))
                .bind(created)
                .bind(i64::from(we_left))
                .bind(received)
                .execute(&mut *tx)
                .await?;
                sqlx::query("INSERT OR IGNORE INTO group_messages (group_id, created_at, pk) VALUES (?, ?, ?)")
                    .bind(gid)
                    .bind(created)
                    .bind(pk)
                    .execute(&mut *tx)
                    .await?;
            }
            for (pk, _, _) in &rows {
                sqlx::query("DELETE FROM group_pending WHERE pk = ?").bind(pk).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            left -= u32::try_from(n).unwrap_or(batch);
        }
        Ok(u64::from(max - left))
    }

    /// The groups we are (or were) in, the latest active first.
    pub async fn groups(&self) -> Result<Vec<GroupRecord>> {
        let rows: Vec<GroupRow> = sqlx::query_as(
            "SELECT group_id, name, members, updated_at, left_group, last_activity FROM groups
             ORDER BY last_activity DESC, group_id",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(record).collect()
    }

    /// One group, if we are (or were) in it.
    pub async fn group(&self, id: &GroupId) -> Result<Option<GroupRecord>> {
        let row: Option<GroupRow> = sqlx::query_as(
            "SELECT group_id, name, members, updated_at, left_group, last_activity FROM groups WHERE group_id = ?",
        )
        .bind(&id.0[..])
        .fetch_optional(&self.reader)
        .await?;
        row.map(record).transpose()
    }

    /// A page of a group's messages, the latest `limit` before `before`,
    /// oldest first (leaving out blocked people's).
    pub async fn group_history(
        &self,
        id: &GroupId,
        before: Option<HistoryCursor>,
        limit: u32,
    ) -> Result<Vec<StoredMessage>> {
        let (at, author, seq) = after_or_end(before);
        let rows: Vec<MessageRow> = sqlx::query_as(
            "SELECT m.id, m.raw, m.hops, m.received_at FROM group_messages g JOIN messages m ON m.pk = g.pk
             WHERE g.group_id = ?1 AND (m.created_at, m.author, m.seq) < (?2, ?3, ?4)
               AND m.author NOT IN (SELECT peer_id FROM people_choices WHERE blocked = 1)
             ORDER BY m.created_at DESC, m.author DESC, m.seq DESC LIMIT ?5",
        )
        .bind(&id.0[..])
        .bind(at)
        .bind(author)
        .bind(seq)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        let mut page = rows.into_iter().map(stored).collect::<Result<Vec<_>>>()?;
        page.reverse();
        Ok(page)
    }
}
