//! What the person using this device chose about others: people muted or
//! blocked, rooms muted. A choice is kept until it is undone; the peers
//! table may forget a name, the choice stays.

use festival_core::{PeerId, RoomId};

use crate::error::{flag_from_sql, from_sql, peer_from_sql, to_sql, Result, StoreError};
use crate::open::Store;

/// People a person may mute or block at once. Spammers who cycle keys are
/// blocked one key at a time by hand, so this is far above what anyone
/// taps, and still a bound on the table.
pub const MAX_PEOPLE_CHOICES: u64 = 10_000;

/// One person muted or blocked, or both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonChoice {
    pub peer: PeerId,
    /// No notifications for their messages.
    pub muted: bool,
    /// Their messages are not shown, their DMs not carried, no receipts
    /// from us.
    pub blocked: bool,
    /// When the choice was last changed (our clock, ms).
    pub since: u64,
}

#[derive(Clone, Copy)]
enum Flag {
    Muted,
    Blocked,
}

type ChoiceRow = (Vec<u8>, i64, i64, i64);

fn choice((peer, muted, blocked, since): ChoiceRow) -> Result<PersonChoice> {
    Ok(PersonChoice {
        peer: peer_from_sql("people_choices", &peer)?,
        muted: flag_from_sql("people_choices", "muted", muted)?,
        blocked: flag_from_sql("people_choices", "blocked", blocked)?,
        since: from_sql("people_choices", since)?,
    })
}

impl Store {
    /// Mute `peer` (or undo it), leaving a block as it is. Refused with
    /// [`StoreError::TooManyChoices`] past [`MAX_PEOPLE_CHOICES`] people;
    /// undoing always works.
    pub async fn set_person_muted(&self, peer: &PeerId, muted: bool, at: u64) -> Result<()> {
        self.set_person_flag(peer, Flag::Muted, muted, at, MAX_PEOPLE_CHOICES).await
    }

    /// Block `peer` (or undo it), leaving a mute as it is; capped as
    /// [`Store::set_person_muted`].
    pub async fn set_person_blocked(&self, peer: &PeerId, blocked: bool, at: u64) -> Result<()> {
        self.set_person_flag(peer, Flag::Blocked, blocked, at, MAX_PEOPLE_CHOICES).await
    }

    /// [`Store::set_person_blocked`] with a smaller cap, for tests of the cap.
    #[doc(hidden)]
    pub async fn set_person_blocked_within(&self, peer: &PeerId, blocked: bool, at: u64, max: u64) -> Result<()> {
        self.set_person_flag(peer, Flag::Blocked, blocked, at, max).await
    }

    /// One flag set or cleared in one transaction; a person with neither
    /// flag leaves the list.
    async fn set_person_flag(&self, peer: &PeerId, flag: Flag, on: bool, at: u64, max: u64) -> Result<()> {
        let key = &peer.as_bytes()[..];
        let at = to_sql("at", at)?;
        let mut tx = self.writer.begin().await?;
        let (count, present): (i64, i64) =
            sqlx::query_as("SELECT count(*), coalesce(sum(peer_id = ?), 0) FROM people_choices")
                .bind(key)
                .fetch_one(&mut *tx)
                .await?;
        if on && present == 0 && u64::try_from(count).unwrap_or(u64::MAX) >= max {
            return Err(StoreError::TooManyChoices { max });
        }
        let upsert = match flag {
            Flag::Muted => {
                "INSERT INTO people_choices (peer_id, muted, since) VALUES (?1, ?2, ?3)
                 ON CONFLICT (peer_id) DO UPDATE SET muted = excluded.muted, since = excluded.since"
            }
            Flag::Blocked => {
                "INSERT INTO people_choices (peer_id, blocked, since) VALUES (?1, ?2, ?3)
                 ON CONFLICT (peer_id) DO UPDATE SET blocked = excluded.blocked, since = excluded.since"
            }
        };
        sqlx::query(upsert).bind(key).bind(i64::from(on)).bind(at).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM people_choices WHERE peer_id = ? AND muted = 0 AND blocked = 0")
            .bind(key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Everyone muted or blocked, the latest choice first.
    pub async fn people_choices(&self) -> Result<Vec<PersonChoice>> {
        let rows: Vec<ChoiceRow> =
            sqlx::query_as("SELECT peer_id, muted, blocked, since FROM people_choices ORDER BY since DESC, peer_id")
                .fetch_all(&self.reader)
                .await?;
        rows.into_iter().map(choice).collect()
    }

    /// The choice about one person; `None`: neither muted nor blocked.
    pub async fn person_choice(&self, peer: &PeerId) -> Result<Option<PersonChoice>> {
        let row: Option<ChoiceRow> =
            sqlx::query_as("SELECT peer_id, muted, blocked, since FROM people_choices WHERE peer_id = ?")
                .bind(&peer.as_bytes()[..])
                .fetch_optional(&self.reader)
                .await?;
        row.map(choice).transpose()
    }

    /// Mute a joined room (or undo it). [`StoreError::NotJoined`] if it is
    /// not joined.
    pub async fn set_room_muted(&self, room: &RoomId, muted: bool) -> Result<()> {
        let done = sqlx::query("UPDATE rooms SET muted = ? WHERE room_id = ?")
            .bind(i64::from(muted))
            .bind(room.as_str())
            .execute(&self.writer)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotJoined(room.clone()));
        }
        Ok(())
    }
}
