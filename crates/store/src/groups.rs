//! Private groups this device is in (see migrations/0010_groups.sql and
//! `festival_core::group`): the queue of group messages to open, each
//! group's messages, and each group as its latest message says.

use festival_core::group::{self, GroupContent, GroupId};
use festival_core::{Identity, PeerId, SignedEnvelope};

use sqlx::AssertSqlSafe;

use crate::error::{corrupt, from_sql, peer_from_sql, to_sql, Result};
use crate::open::Store;
use crate::read::{after_or_end, stored, HistoryCursor, MessageRow, StoredMessage};

/// Most groups this device keeps: anyone can seal a message to us naming
/// a new group, so a thousand fresh keys could otherwise grow the list
/// without end. Past it, the group longest quiet that we never wrote in is
/// forgotten for the new one; when we wrote in all of them, the new one is
/// carried, not shown.
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
    /// No notifications from it.
    pub muted: bool,
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

type GroupRow = (Vec<u8>, String, Vec<u8>, i64, i64, i64, i64);

/// The columns of a [`GroupRow`].
const GROUP_COLUMNS: &str = "group_id, name, members, updated_at, left_group, last_activity, muted";

fn record((id, name, members, updated_at, left, last, muted): GroupRow) -> Result<GroupRecord> {
    Ok(GroupRecord {
        id: group_from_sql(&id)?,
        name,
        members: members_from_sql(&members)?,
        updated_at: from_sql("groups", updated_at)?,
        left: crate::error::flag_from_sql("groups", "left_group", left)?,
        last_activity: from_sql("groups", last)?,
        muted: crate::error::flag_from_sql("groups", "muted", muted)?,
    })
}

/// Room for one more group: under [`MAX_GROUPS`], or by forgetting the
/// group longest quiet that we never wrote in (groups anyone can seal to us
/// cannot crowd out those we take part in; its messages stay stored, and
/// come back if it speaks again). `false`: every group is one we wrote in.
async fn make_room(tx: &mut sqlx::SqliteConnection) -> Result<bool> {
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM groups").fetch_one(&mut *tx).await?;
    if from_sql("groups", count)? < MAX_GROUPS {
        return Ok(true);
    }
    let quiet: Option<(Vec<u8>,)> = sqlx::query_as(
        "SELECT g.group_id FROM groups g
         WHERE NOT EXISTS (SELECT 1 FROM group_messages gm JOIN messages m ON m.pk = gm.pk
                           WHERE gm.group_id = g.group_id AND m.author = (SELECT peer_id FROM identity))
         ORDER BY g.last_activity LIMIT 1",
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id,)) = quiet else { return Ok(false) };
    sqlx::query("DELETE FROM group_messages WHERE group_id = ?").bind(&id).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM groups WHERE group_id = ?").bind(&id).execute(&mut *tx).await?;
    Ok(true)
}

impl Store {
    /// Open the group messages stored since the last call (up to `max`):
    /// those for `me` join their group's history and change the group as
    /// they say: the first one heard makes it; later ones are heard only
    /// from a current member; `Added` adds people, `Left` takes its author
    /// out (us too: then it is read-only until someone adds us again); a
    /// text changes no one's place. Returns how many were looked at. Cheap
    /// for the others' group mail that every node carries: one look at the
    /// member list.
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
                let known: Option<GroupRow> =
                    sqlx::query_as(AssertSqlSafe(format!("SELECT {GROUP_COLUMNS} FROM groups WHERE group_id = ?")))
                        .bind(gid)
                        .fetch_optional(&mut *tx)
                        .await?;
                let created = to_sql("created_at", *created_at)?;
                let (name, mut members, mut left, mut last) = match known.map(record).transpose()? {
                    // Only a current member speaks in a group (or changes
                    // it): one who left, or was never in it, is not heard.
                    Some(g) if !g.members.contains(author) => continue,
                    Some(g) => (g.name, g.members, g.left, g.last_activity),
                    None => {
                        if !make_room(&mut tx).await? {
                            continue;
                        }
                        (plain.name.clone(), plain.members.clone(), false, 0)
                    }
                };
                match &plain.content {
                    // A text changes no one's place in the group.
                    GroupContent::Text(_) | GroupContent::Members => {}
                    GroupContent::Added(added) => {
                        for p in added {
                            if let Err(at) = members.binary_search(p) {
                                members.insert(at, *p);
                            }
                            if *p == my_id {
                                left = false;
                            }
                        }
                        members.truncate(group::MAX_GROUP_MEMBERS);
                    }
                    GroupContent::Left => {
                        members.retain(|p| p != author);
                        if *author == my_id {
                            left = true;
                        }
                    }
                }
                last = last.max(u64::try_from(*received_at).unwrap_or(0));
                sqlx::query(
                    "INSERT INTO groups (group_id, name, members, updated_at, left_group, last_activity)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (group_id) DO UPDATE SET members = excluded.members,
                        updated_at = max(groups.updated_at, excluded.updated_at),
                        left_group = excluded.left_group, last_activity = excluded.last_activity",
                )
                .bind(gid)
                .bind(&name)
                .bind(members_to_sql(&members))
                .bind(created)
                .bind(i64::from(left))
                .bind(to_sql("last_activity", last)?)
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

    /// The group a stored message was heard in: `None` for others' group
    /// mail, for one whose author was not a member when it came, or not
    /// opened yet (see [`Store::index_groups`]).
    pub async fn group_of_message(&self, id: &festival_core::MessageId) -> Result<Option<GroupId>> {
        let prefix = crate::ingest::id_prefix(id);
        let (recent, known) = crate::ids::recent_pks(&self.ids, prefix);
        // Through both parts of the id index (see crate::ids), as `get`.
        let sql = format!(
            "SELECT g.group_id FROM group_messages g INDEXED BY group_messages_pk
             WHERE g.pk IN (SELECT pk FROM messages WHERE pk IN ({}) AND id = ?2)",
            crate::ids::pks_of("?1", "?3", "?4")
        );
        let row: Option<(Vec<u8>,)> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(prefix)
            .bind(&id.as_bytes()[..])
            .bind(recent)
            .bind(known)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|(g,)| group_from_sql(&g)).transpose()
    }

    /// The groups we are (or were) in, the latest active first.
    pub async fn groups(&self) -> Result<Vec<GroupRecord>> {
        let rows: Vec<GroupRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {GROUP_COLUMNS} FROM groups ORDER BY last_activity DESC, group_id"
        )))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(record).collect()
    }

    /// One group, if we are (or were) in it.
    pub async fn group(&self, id: &GroupId) -> Result<Option<GroupRecord>> {
        let row: Option<GroupRow> =
            sqlx::query_as(AssertSqlSafe(format!("SELECT {GROUP_COLUMNS} FROM groups WHERE group_id = ?")))
                .bind(&id.0[..])
                .fetch_optional(&self.reader)
                .await?;
        row.map(record).transpose()
    }

    /// Group messages stored but not opened yet (everyone's group mail is
    /// queued; a row goes with its message, so the queue holds at most what
    /// the store does).
    pub async fn group_pending(&self) -> Result<u64> {
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM group_pending").fetch_one(&self.reader).await?;
        from_sql("group_pending", n)
    }

    /// Mute a group (no notifications from it) or undo it; `false` if no
    /// such group is kept here.
    pub async fn set_group_muted(&self, id: &GroupId, muted: bool) -> Result<bool> {
        let done = sqlx::query("UPDATE groups SET muted = ? WHERE group_id = ?")
            .bind(i64::from(muted))
            .bind(&id.0[..])
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
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
