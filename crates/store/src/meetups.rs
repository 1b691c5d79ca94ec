//! Meet-ups' answers: each person's latest answer to each meet-up, kept by
//! ingest (see migrations/0008_meetups.sql) so a card is one index range.

use festival_core::body::{Body, MeetupAnswer};
use festival_core::{Kind, MessageId, PeerId};

use crate::error::{corrupt, peer_from_sql, Result};
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
             ON CONFLICT (meetup, author) DO UPDATE SET room = excluded.room, seq = excluded.seq,
                 answer = excluded.answer
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

impl Store {
    /// Each person's latest answer to `meetup`, of the meet-up's own room
    /// only (an answer posted elsewhere names it in vain), leaving out
    /// people blocked here; ordered by key (the caller sorts by name).
    /// Empty while the meet-up itself is not stored.
    pub async fn meetup_replies(&self, meetup: &MessageId) -> Result<Vec<(PeerId, MeetupAnswer)>> {
        let rows: Vec<(Vec<u8>, i64)> = sqlx::query_as(
            "SELECT r.author, r.answer FROM meetup_replies r
             JOIN messages m ON m.id_prefix = ?2 AND m.id = ?1 AND m.room = r.room AND m.kind = 6
             WHERE r.meetup = ?1
               AND r.author NOT IN (SELECT peer_id FROM people_choices WHERE blocked = 1)
             ORDER BY r.author",
        )
        .bind(&meetup.as_bytes()[..])
        .bind(crate::ingest::id_prefix(meetup))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|(author, answer)| Ok((peer_from_sql("meetup_replies", &author)?, answer_from_code(answer)?)))
            .collect()
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
