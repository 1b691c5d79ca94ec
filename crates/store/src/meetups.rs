//! Meet-ups' answers: each person's latest answer to each meet-up, kept by
//! ingest (see migrations/0008_meetups.sql) so a card is one index range.

use festival_core::body::{Body, MeetupAnswer};
use festival_core::{Kind, MessageId, PeerId, RoomId};
use sqlx::AssertSqlSafe;

use crate::error::{corrupt, from_sql, peer_from_sql, Result};
use crate::ingest::{placeholders, Row};
use crate::open::Store;
use crate::script::Script;

fn answer_code(a: MeetupAnswer) -> i64 {
    match a {
        MeetupAnswer::Coming => 0,
        MeetupAnswer::Cant => 1,
    }
}

fn answer_from_code(code: i64) -> Result<MeetupAnswer> {
    match code {
        0 => Ok(MeetupAnswer::Coming),
        1 => Ok(MeetupAnswer::Cant),
        other => Err(corrupt("meetup_replies", format!("answer {other}"))),
    }
}

/// Record the answers among newly stored rows, in the insert's
/// transaction: a person's answer replaces their earlier one (a higher
/// seq of the same room), never a later one that arrived first.
pub(crate) fn replies_script(script: &mut Script, rows: &[&Row<'_>]) {
    let replies: Vec<_> = rows
        .iter()
        .filter(|row| row.env.kind() == Kind::MeetupReply)
        // Parsed again (not `parsed_body`, which panics on a bad body):
        // an envelope rebuilt from damaged bytes is left out, not a crash.
        .filter_map(|row| match Body::parse(Kind::MeetupReply, row.env.body()) {
            Ok(Body::MeetupReply(r)) => Some((row, r)),
            _ => None,
        })
        .collect();
    for part in replies.chunks(crate::ingest::ROWS_PER_STATEMENT) {
        script.sql(&format!(
            "INSERT INTO meetup_replies (meetup, author, room, seq, answer) VALUES {}
             ON CONFLICT (meetup, room, author) DO UPDATE SET seq = excluded.seq, answer = excluded.answer
             WHERE excluded.seq > meetup_replies.seq;",
            placeholders(5, part.len())
        ));
        for (row, r) in part {
            script
                .bind(r.meetup.as_bytes().to_vec())
                .bind(row.env.author().as_bytes().to_vec())
                .bind(row.env.room().as_str())
                .bind(row.seq)
                .bind(answer_code(r.answer));
        }
    }
}

/// A meet-up's answers as a card shows them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeetupTally {
    /// People whose latest answer is "coming" / "can't".
    pub coming: u64,
    pub cant: u64,
    /// Our own latest answer.
    pub mine: Option<MeetupAnswer>,
    /// Who answered, us first, then by key; at most the `max_people` asked.
    pub people: Vec<(PeerId, MeetupAnswer)>,
}

impl Store {
    /// The answers to the meet-up `meetup` of `room` (the caller has the
    /// meet-up: answers posted in another room name it in vain), each
    /// person's latest, leaving out people blocked here: complete counts,
    /// and at most `max_people` of them by name. Reads only the meet-up's
    /// own rows of the tally (its key's first column), however busy the
    /// room.
    pub async fn meetup_tally(
        &self,
        meetup: &MessageId,
        room: &RoomId,
        me: &PeerId,
        max_people: u32,
    ) -> Result<MeetupTally> {
        const NOT_BLOCKED: &str = "author NOT IN (SELECT peer_id FROM people_choices WHERE blocked = 1)";
        let counts: Vec<(i64, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT answer, count(*) FROM meetup_replies WHERE meetup = ?1 AND room = ?2 AND {NOT_BLOCKED}
             GROUP BY answer"
        )))
        .bind(&meetup.as_bytes()[..])
        .bind(room.as_str())
        .fetch_all(&self.reader)
        .await?;
        let mut tally = MeetupTally::default();
        for (answer, n) in counts {
            let n = from_sql("meetup_replies", n)?;
            match answer_from_code(answer)? {
                MeetupAnswer::Coming => tally.coming = n,
                MeetupAnswer::Cant => tally.cant = n,
            }
        }
        let rows: Vec<(Vec<u8>, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT author, answer FROM meetup_replies WHERE meetup = ?1 AND room = ?2 AND {NOT_BLOCKED}
             ORDER BY author = ?3 DESC, author LIMIT ?4"
        )))
        .bind(&meetup.as_bytes()[..])
        .bind(room.as_str())
        .bind(&me.as_bytes()[..])
        .bind(i64::from(max_people))
        .fetch_all(&self.reader)
        .await?;
        for (author, answer) in rows {
            let (peer, answer) = (peer_from_sql("meetup_replies", &author)?, answer_from_code(answer)?);
            if peer == *me {
                tally.mine = Some(answer);
            }
            tally.people.push((peer, answer));
        }
        Ok(tally)
    }
}

impl Store {
    /// How many answers the tally holds: one per person and meet-up, never
    /// more than the answers stored (a row goes with its message).
    pub async fn meetup_reply_rows(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM meetup_replies").fetch_one(&self.reader).await?;
        crate::error::from_sql("meetup_replies", n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schemas_kind_literals_match_the_core() {
        assert_eq!(Kind::Meetup.code(), 6);
        assert_eq!(Kind::MeetupReply.code(), 7);
    }
}
