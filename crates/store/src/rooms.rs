//! Joined rooms and their unread counts.

use festival_core::{Kind, RoomId};

use crate::error::{flag_from_sql, from_sql, opt_from_sql, room_from_sql, to_sql, Result, StoreError};
use crate::open::Store;

/// A joined room, for the room list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomRecord {
    pub room: RoomId,
    pub name: String,
    pub joined_at: u64,
    pub last_read_at: u64,
    /// Messages a person would read (text, and sealed DMs addressed to us),
    /// written by someone else, received after `last_read_at`.
    pub unread: u64,
    /// No notifications for its messages (mentions of me included).
    pub muted: bool,
    /// When the latest message a person reads (text or sealed DM, anyone's)
    /// reached us; `None` for a room with none yet.
    pub last_activity: Option<u64>,
}

/// The kinds a person reads (counted unread, searched): texts, sealed DMs,
/// meet-ups and photos. SQL names them by a literal bit mask, bit `k` for
/// kind code `k`: `(581 >> kind) & 1` (a partial index needs the query to
/// repeat its condition verbatim; tests check the mask against this list).
pub(crate) const READ_KINDS: [Kind; 4] = [Kind::Text, Kind::SealedDm, Kind::Meetup, Kind::Photo];

/// Unread: kinds a person reads, not by us, received after the read mark.
/// A sealed DM counts only if it is addressed to us: the DM room carries
/// everyone's mail, and other people's is not ours to read. Uses the partial
/// index `messages_unread`, whose WHERE clause this query repeats verbatim
/// (SQLite only uses a partial index when it can see the query implies it).
/// The kinds are a literal bit mask for that reason (`(581 >> kind) & 1`,
/// cheaper at every insert than an IN list; see migration 0012): bits 0
/// (`Kind::Text`), 2 (`Kind::SealedDm`), 6 (`Kind::Meetup`) and 9
/// (`Kind::Photo`), checked by a test below. The last activity walks the
/// same index backwards and stops at the first row: O(log n) per room.
const ROOMS: &str = "
    SELECT r.room_id, r.name, r.joined_at, r.last_read_at,
        (SELECT count(*) FROM messages m
         WHERE m.room = r.room_id AND (581 >> m.kind) & 1 AND m.received_at > r.last_read_at
           AND m.author IS NOT (SELECT peer_id FROM identity)
           AND (m.kind <> 2 OR m.recipient = (SELECT peer_id FROM identity))
           AND m.author NOT IN (SELECT peer_id FROM people_choices WHERE blocked = 1)),
        (SELECT m.received_at FROM messages m
         WHERE m.room = r.room_id AND (581 >> m.kind) & 1
           AND m.author NOT IN (SELECT peer_id FROM people_choices WHERE blocked = 1)
         ORDER BY m.received_at DESC LIMIT 1),
        r.muted
    FROM rooms r ORDER BY r.joined_at, r.room_id";

/// A room list row: (room, name, joined_at, last_read_at, unread, last
/// activity, muted).
pub(crate) type RoomRow = (String, String, i64, i64, i64, Option<i64>, i64);

pub(crate) fn room_record(
    (room, name, joined_at, last_read_at, unread, last_activity, muted): RoomRow,
) -> Result<RoomRecord> {
    Ok(RoomRecord {
        room: room_from_sql("rooms", room)?,
        name,
        joined_at: from_sql("rooms", joined_at)?,
        last_read_at: from_sql("rooms", last_read_at)?,
        unread: from_sql("rooms", unread)?,
        muted: flag_from_sql("rooms", "muted", muted)?,
        last_activity: opt_from_sql("rooms", last_activity)?,
    })
}

impl Store {
    /// Join a room. Joining again changes nothing (the first name and join
    /// time stay). Returns whether the room was newly joined.
    pub async fn join_room(&self, room: &RoomId, display_name: &str, at: u64) -> Result<bool> {
        let at = to_sql("at", at)?;
        // Reading starts at the join: what was said before is history, not
        // news.
        let done = sqlx::query(
            "INSERT INTO rooms (room_id, name, joined_at, last_read_at) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (room_id) DO NOTHING",
        )
        .bind(room.as_str())
        .bind(display_name)
        .bind(at)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Leave a room. Its messages stay stored (other peers may still want
    /// them from us); pruning is a separate decision. Returns whether the
    /// room was joined.
    pub async fn leave_room(&self, room: &RoomId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM rooms WHERE room_id = ?").bind(room.as_str()).execute(&self.writer).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every joined room, in the order they were joined, with unread counts.
    pub async fn rooms(&self) -> Result<Vec<RoomRecord>> {
        let rows: Vec<RoomRow> = sqlx::query_as(ROOMS).fetch_all(&self.reader).await?;
        rows.into_iter().map(room_record).collect()
    }

    /// Everything received up to `at` has been read. The mark only moves
    /// forward, so a late call from a stale screen cannot resurrect unread
    /// messages.
    pub async fn mark_room_read(&self, room: &RoomId, at: u64) -> Result<()> {
        let done = sqlx::query("UPDATE rooms SET last_read_at = max(last_read_at, ?) WHERE room_id = ?")
            .bind(to_sql("at", at)?)
            .bind(room.as_str())
            .execute(&self.writer)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotJoined(room.clone()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unread_query_kind_mask_matches_the_core() {
        let mask: u32 = super::READ_KINDS.iter().map(|k| 1 << k.code()).sum();
        assert_eq!(mask, 581);
        assert!(super::ROOMS.contains(&format!("({mask} >> m.kind) & 1")));
    }

    /// Both subqueries of the room list search the partial index (SQLite
    /// would scan every message of the room if the condition differed).
    #[tokio::test]
    async fn the_room_list_uses_the_unread_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(&dir.path().join("s.db")).await.unwrap();
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", super::ROOMS)))
                .fetch_all(&store.reader)
                .await
                .unwrap();
        let uses = plan.iter().filter(|(.., detail)| detail.contains("USING INDEX messages_unread")).count();
        let scans = plan.iter().filter(|(.., detail)| detail.starts_with("SCAN m")).count();
        assert_eq!((uses, scans), (2, 0), "{plan:?}");
        store.close().await;
    }
}
