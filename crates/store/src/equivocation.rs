//! Proofs of equivocation: two different envelopes an author signed for the
//! same (room, author, seq). Both signed byte strings are kept, so the proof
//! can be shown to anyone (the UI, or a peer) and verified without trusting
//! us. One proof per author is enough; the first one kept wins.
//!
//! A peer can mint keys and make each equivocate, so the table is capped in
//! rows and in bytes, dropping the oldest proofs (by the time recorded).

use festival_core::{PeerId, SignedEnvelope};

use crate::error::{corrupt, peer_from_sql, to_sql, Result, StoreError};
use crate::open::Store;

/// Proofs kept at most. An honest festival has none; ten thousand is more
/// equivocating keys than the UI can usefully show, and, at a few hundred
/// bytes a proof of typical messages, ~5 MB.
pub const MAX_EQUIVOCATION_PROOFS: i64 = 10_000;

/// Bytes of proofs kept at most (both envelopes of every proof). Two
/// maximum-size envelopes make a 33 KiB proof, so without this ten thousand
/// proofs could take 330 MB; 16 MiB is ~500 such proofs, and 3% of the
/// default disk budget.
pub const MAX_EQUIVOCATION_BYTES: i64 = 16 * 1024 * 1024;

fn rebuild(raw: &[u8]) -> Result<SignedEnvelope> {
    SignedEnvelope::from_stored(raw).map_err(|e| corrupt("equivocations", format!("raw envelope: {e}")))
}

impl Store {
    /// Keep `a` and `b` as proof that their author equivocated (recorded at
    /// `at`). Both must be verified envelopes at the same (room, author,
    /// seq) with different ids, or [`StoreError::NotAnEquivocation`].
    /// Returns whether this is a new proof: `false` when one is already kept
    /// for the author (the first stays; recording again changes nothing).
    pub async fn record_equivocation(&self, a: &SignedEnvelope, b: &SignedEnvelope, at: u64) -> Result<bool> {
        if a.author() != b.author() || a.room() != b.room() || a.seq() != b.seq() || a.id() == b.id() {
            return Err(StoreError::NotAnEquivocation);
        }
        // The same pair in either order is the same proof.
        let (first, second) = if a.id().as_bytes() <= b.id().as_bytes() { (a, b) } else { (b, a) };
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(
            "INSERT INTO equivocations (author, room, seq, at, first, second) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (author) DO NOTHING",
        )
        .bind(&a.author().as_bytes()[..])
        .bind(a.room().as_str())
        .bind(to_sql("seq", a.seq())?)
        .bind(to_sql("at", at)?)
        .bind(first.bytes())
        .bind(second.bytes())
        .execute(&mut *tx)
        .await?;
        let new = done.rows_affected() == 1;
        if new {
            // Oldest first out, by rows, then by bytes: the running sum from
            // the newest marks every proof beyond the byte cap.
            sqlx::query(
                "DELETE FROM equivocations WHERE pk IN (
                     SELECT pk FROM equivocations ORDER BY at, pk
                     LIMIT max(0, (SELECT count(*) FROM equivocations) - ?))",
            )
            .bind(MAX_EQUIVOCATION_PROOFS)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "DELETE FROM equivocations WHERE pk IN (
                     SELECT pk FROM (
                         SELECT pk, sum(length(first) + length(second))
                                OVER (ORDER BY at DESC, pk DESC) AS newer_bytes
                         FROM equivocations)
                     WHERE newer_bytes > ?)",
            )
            .bind(MAX_EQUIVOCATION_BYTES)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(new)
    }

    /// Every author with a proof kept, earliest recorded first.
    pub async fn equivocators(&self) -> Result<Vec<PeerId>> {
        let rows: Vec<(Vec<u8>,)> =
            sqlx::query_as("SELECT author FROM equivocations ORDER BY at, pk").fetch_all(&self.reader).await?;
        rows.into_iter().map(|(author,)| peer_from_sql("equivocations", &author)).collect()
    }

    /// The two envelopes proving that `author` equivocated, if kept.
    /// Rebuilt from the stored bytes (verified when they were recorded).
    pub async fn equivocation_proof(&self, author: &PeerId) -> Result<Option<(SignedEnvelope, SignedEnvelope)>> {
        let row: Option<(Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT first, second FROM equivocations WHERE author = ?")
                .bind(&author.as_bytes()[..])
                .fetch_optional(&self.reader)
                .await?;
        let Some((first, second)) = row else { return Ok(None) };
        let (first, second) = (rebuild(&first)?, rebuild(&second)?);
        if first.author() != *author || second.author() != *author {
            return Err(corrupt("equivocations", "a proof is signed by another author"));
        }
        Ok(Some((first, second)))
    }
}
