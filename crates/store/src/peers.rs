//! Peers we know of, and when we last synced each room with them.

use festival_core::{PeerId, RoomId};

use crate::error::{flag_from_sql, from_sql, opt_from_sql, peer_from_sql, to_sql, Result};
use crate::open::Store;

/// What we know about a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRecord {
    pub peer: PeerId,
    /// Their display name, from their latest profile message.
    pub name: Option<String>,
    /// Fingerprints compared in person.
    pub verified: bool,
    /// `None` for a peer known only through relayed messages, never met on a
    /// link.
    pub first_seen: Option<u64>,
    pub last_seen: Option<u64>,
}

type PeerRow = (Vec<u8>, Option<String>, i64, Option<i64>, Option<i64>);

fn record((peer, name, verified, first_seen, last_seen): PeerRow) -> Result<PeerRecord> {
    Ok(PeerRecord {
        peer: peer_from_sql("peers", &peer)?,
        name,
        verified: flag_from_sql("peers", "verified", verified)?,
        first_seen: opt_from_sql("peers", first_seen)?,
        last_seen: opt_from_sql("peers", last_seen)?,
    })
}

impl Store {
    /// We are in contact with `peer` at `at`. Seen times only widen: an
    /// event reported late does not move last_seen backwards.
    pub async fn peer_seen(&self, peer: &PeerId, at: u64) -> Result<()> {
        let at = to_sql("at", at)?;
        // Scalar min/max return NULL if either side is NULL, hence coalesce
        // for a peer that was known before it was seen.
        sqlx::query(
            "INSERT INTO peers (peer_id, first_seen, last_seen) VALUES (?1, ?2, ?2)
             ON CONFLICT (peer_id) DO UPDATE SET
                 first_seen = coalesce(min(first_seen, excluded.first_seen), excluded.first_seen),
                 last_seen = coalesce(max(last_seen, excluded.last_seen), excluded.last_seen)",
        )
        .bind(&peer.as_bytes()[..])
        .bind(at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Set a peer's display name, creating the record if needed.
    pub async fn set_peer_name(&self, peer: &PeerId, name: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO peers (peer_id, name) VALUES (?, ?)
             ON CONFLICT (peer_id) DO UPDATE SET name = excluded.name",
        )
        .bind(&peer.as_bytes()[..])
        .bind(name)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Mark a peer verified (or not), creating the record if needed.
    pub async fn set_peer_verified(&self, peer: &PeerId, verified: bool) -> Result<()> {
        sqlx::query(
            "INSERT INTO peers (peer_id, verified) VALUES (?, ?)
             ON CONFLICT (peer_id) DO UPDATE SET verified = excluded.verified",
        )
        .bind(&peer.as_bytes()[..])
        .bind(i64::from(verified))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Every known peer, most recently seen first.
    pub async fn peers(&self) -> Result<Vec<PeerRecord>> {
        let rows: Vec<PeerRow> = sqlx::query_as(
            "SELECT peer_id, name, verified, first_seen, last_seen FROM peers
             ORDER BY last_seen DESC NULLS LAST, peer_id",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(record).collect()
    }

    pub async fn peer(&self, peer: &PeerId) -> Result<Option<PeerRecord>> {
        let row: Option<PeerRow> =
            sqlx::query_as("SELECT peer_id, name, verified, first_seen, last_seen FROM peers WHERE peer_id = ?")
                .bind(&peer.as_bytes()[..])
                .fetch_optional(&self.reader)
                .await?;
        row.map(record).transpose()
    }

    /// A sync of `room` with `peer` completed at `at`. Only moves forward.
    pub async fn record_sync(&self, peer: &PeerId, room: &RoomId, at: u64) -> Result<()> {
        sqlx::query(
            "INSERT INTO peer_sync (peer_id, room, last_synced_at) VALUES (?, ?, ?)
             ON CONFLICT (peer_id, room) DO UPDATE SET
                 last_synced_at = max(last_synced_at, excluded.last_synced_at)",
        )
        .bind(&peer.as_bytes()[..])
        .bind(room.as_str())
        .bind(to_sql("at", at)?)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// When `room` was last synced with `peer`, if ever.
    pub async fn last_synced(&self, peer: &PeerId, room: &RoomId) -> Result<Option<u64>> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT last_synced_at FROM peer_sync WHERE peer_id = ? AND room = ?")
            .bind(&peer.as_bytes()[..])
            .bind(room.as_str())
            .fetch_optional(&self.reader)
            .await?;
        row.map(|(at,)| from_sql("peer_sync", at)).transpose()
    }
}
