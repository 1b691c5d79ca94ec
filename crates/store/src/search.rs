//! Full-text search over what a person can read here: room texts, meet-ups'
//! places, photos' captions, and DMs to or from us (SQLite FTS5,
//! `migrations/0007_search.sql`, `0011_photos.sql`, `0013_search_rowids_spread.sql`).
//!
//! Ingest only queues a message (it writes its pk to `search_pending`
//! in the same transaction, `ingest::queues_script`); [`Store::index_pending`] opens DMs and indexes the
//! queue in batches, outside the ingest transaction. A message deleted by
//! expiry or eviction leaves the index and the queue with it (a trigger).
//! Blocked people's messages stay indexed and are left out of results.

use festival_core::body::{open_dm, Body};
use festival_core::{Identity, SignedEnvelope};
use sqlx::AssertSqlSafe;

use crate::error::{Result, StoreError};
use crate::open::Store;
use crate::read::{stored, MessageRow};
use crate::StoredMessage;

/// Messages indexed per transaction.
pub const INDEX_BATCH: u32 = 512;
/// Results per search at most.
pub const MAX_SEARCH_RESULTS: u32 = 100;
/// A query longer than this (in characters) is refused: nobody types it.
pub const MAX_QUERY_CHARS: usize = 200;
/// Words of a query at most.
pub const MAX_QUERY_TERMS: usize = 8;
/// A message's rowid in the search index is its pk times this (see
/// migrations/0013_search_rowids_spread.sql, whose delete trigger repeats
/// the number): eviction deletes consecutive pks, and FTS5's tombstone hash
/// probes linearly, so consecutive rowids made long runs every lookup
/// walked. Keeps the order: newest first is still by rowid.
pub(crate) const SEARCH_ROWID_STRIDE: i64 = 997;

/// The search index's rowid of a message's pk; `None` past 63 bits (a pk
/// above 9 * 10^15, which no store reaches).
fn search_rowid(pk: i64) -> Option<i64> {
    pk.checked_mul(SEARCH_ROWID_STRIDE)
}

/// The FTS5 query for what a person typed: every word must appear (in any
/// order), the last one as a prefix ("fire" finds "fireworks" as it is
/// typed). Words are quoted, so FTS5's own syntax (`OR`, `NEAR`, `-`,
/// `col:`, quotes) is plain text here. `None` when nothing searchable is
/// left.
pub fn fts_query(typed: &str) -> Option<String> {
    let words: Vec<String> = typed
        .split_whitespace()
        .map(|w| w.replace('"', ""))
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .take(MAX_QUERY_TERMS)
        .collect();
    let last = words.len().checked_sub(1)?;
    let terms: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, w)| if i == last { format!("\"{w}\"*") } else { format!("\"{w}\"") })
        .collect();
    Some(terms.join(" "))
}

/// The text a person reads in `env`, if it is one of ours to read.
fn readable_text(me: &Identity, env: &SignedEnvelope) -> Option<String> {
    match env.parsed_body() {
        Body::Text(t) => Some(t),
        Body::SealedDm(_) => open_dm(me, env).ok(),
        Body::Meetup(m) => Some(m.place),
        Body::Photo(p) if !p.caption.is_empty() => Some(p.caption),
        _ => None,
    }
}

impl Store {
    /// Index up to `max` queued messages (opening DMs with `me`), oldest
    /// first, [`INDEX_BATCH`] per transaction. Returns how many left the
    /// queue (a DM that does not open leaves it unindexed).
    pub async fn index_pending(&self, me: &Identity, max: u32) -> Result<u64> {
        let mut left = max;
        while left > 0 {
            let batch = INDEX_BATCH.min(left);
            let rows: Vec<(i64, Vec<u8>, Vec<u8>)> = sqlx::query_as(
                "SELECT p.pk, m.id, m.raw FROM search_pending p JOIN messages m ON m.pk = p.pk
                 ORDER BY p.pk LIMIT ?",
            )
            .bind(i64::from(batch))
            .fetch_all(&self.reader)
            .await?;
            if rows.is_empty() {
                break;
            }
            let texts: Vec<(i64, Vec<u8>, Option<String>)> = rows
                .into_iter()
                .map(|(pk, id, raw)| {
                    (pk, id, SignedEnvelope::from_stored(&raw).ok().and_then(|e| readable_text(me, &e)))
                })
                .collect();
            // Read on a reader, written here: between the two the message
            // may have been deleted and its pk given to a newer message
            // (SQLite reuses the highest pk once its row is gone), queued
            // in its turn. Only the message read, still at its pk and still
            // queued, is indexed; a queue row is taken out unless it is now
            // another message's.
            let mut tx = self.writer.begin().await?;
            for (pk, id, text) in &texts {
                if let (Some(text), Some(rowid)) = (text, search_rowid(*pk)) {
                    sqlx::query(
                        "INSERT INTO message_search (rowid, text)
                         SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM search_pending WHERE pk = ?3)
                                         AND EXISTS (SELECT 1 FROM messages WHERE pk = ?3 AND id = ?4)",
                    )
                    .bind(rowid)
                    .bind(text)
                    .bind(pk)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(
                    "DELETE FROM search_pending
                     WHERE pk = ?1 AND NOT EXISTS (SELECT 1 FROM messages WHERE pk = ?1 AND id IS NOT ?2)",
                )
                .bind(pk)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            // At most `batch` rows came back.
            left -= u32::try_from(texts.len()).unwrap_or(batch);
        }
        Ok(u64::from(max - left))
    }

    /// `festival-bench store --no-search-index`: ingest without queueing
    /// texts for search, to measure what the queueing costs. Never used by
    /// a node (search would miss what arrives afterwards).
    #[doc(hidden)]
    pub fn stop_search_queue_for_bench(&self) {
        self.search_queue.store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// Merge the index's segments into one, dropping what deleted messages
    /// left in them (FTS5 `optimize`). After many deletions (eviction,
    /// expiry) a search otherwise reads past their tombstones.
    pub async fn optimize_search_index(&self) -> Result<()> {
        sqlx::query("INSERT INTO message_search (message_search) VALUES ('optimize')").execute(&self.writer).await?;
        Ok(())
    }

    /// Messages stored but not indexed yet.
    pub async fn search_pending(&self) -> Result<u64> {
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM search_pending").fetch_one(&self.reader).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The indexed messages holding every word of `typed` (the last as a
    /// prefix), newest first (by arrival here), at most `limit` (clamped to
    /// [`MAX_SEARCH_RESULTS`]); nothing by people blocked here.
    /// [`StoreError::BadQuery`] for a query with no word in it or longer
    /// than [`MAX_QUERY_CHARS`].
    pub async fn search(&self, typed: &str, limit: u32) -> Result<Vec<StoredMessage>> {
        if typed.chars().count() > MAX_QUERY_CHARS {
            return Err(StoreError::BadQuery(format!("at most {MAX_QUERY_CHARS} characters")));
        }
        let query = fts_query(typed).ok_or_else(|| StoreError::BadQuery("type a word to search for".into()))?;
        let sql = format!(
            "SELECT m.id, m.raw, m.hops, m.received_at FROM message_search s
             JOIN messages m ON m.pk = s.rowid / {SEARCH_ROWID_STRIDE}
             WHERE message_search MATCH ?1
               AND m.author NOT IN (SELECT peer_id FROM people_choices WHERE blocked = 1)
             ORDER BY s.rowid DESC LIMIT ?2"
        );
        let rows: Vec<MessageRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(query)
            .bind(i64::from(limit.clamp(1, MAX_SEARCH_RESULTS)))
            .fetch_all(&self.reader)
            .await?;
        rows.into_iter().map(stored).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::fts_query;
    use festival_core::Kind;

    #[test]
    fn the_queues_kind_literals_match_the_core() {
        // The search queue's statement in ingest::queues_script names kinds
        // by their codes; the delete trigger (migration 0013) by the mask
        // checked in the_delete_trigger_spreads_rowids_as_indexing_does.
        assert_eq!(Kind::Text.code(), 0);
        assert_eq!(Kind::SealedDm.code(), 2);
        assert_eq!(Kind::Meetup.code(), 6);
        assert_eq!(Kind::Photo.code(), 9);
        // The history query leaves photos' chunks out by their code.
        assert_eq!(Kind::PhotoChunk.code(), 10);
    }

    /// The delete trigger (migration 0013) names the index's rowid as
    /// ingest writes it.
    #[tokio::test]
    async fn the_delete_trigger_spreads_rowids_as_indexing_does() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(&dir.path().join("s.db")).await.unwrap();
        let (sql,): (String,) =
            sqlx::query_as("SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND name = 'messages_search_gone'")
                .fetch_one(&store.reader)
                .await
                .unwrap();
        assert!(sql.contains(&format!("rowid = old.pk * {}", super::SEARCH_ROWID_STRIDE)), "{sql}");
        // Its kinds: texts, sealed DMs, meet-ups and photos, as a bit mask.
        let mask: u32 = crate::rooms::READ_KINDS.iter().map(|k| 1 << k.code()).sum();
        assert!(sql.contains(&format!("WHEN ({mask} >> old.kind) & 1")), "{sql}");
        assert_eq!(super::search_rowid(3), Some(3 * 997));
        assert_eq!(super::search_rowid(i64::MAX / 2), None);
        store.close().await;
    }

    #[test]
    fn typed_words_become_quoted_terms_the_last_a_prefix() {
        assert_eq!(fts_query("fire works").as_deref(), Some("\"fire\" \"works\"*"));
        assert_eq!(fts_query("  taco  ").as_deref(), Some("\"taco\"*"));
        // FTS5 syntax is text here.
        assert_eq!(fts_query("a OR \"b\" NEAR(c) -d").as_deref(), Some("\"a\" \"OR\" \"b\" \"NEAR(c)\" \"-d\"*"));
        assert_eq!(fts_query("\"\" - *"), None);
        assert_eq!(fts_query(""), None);
        assert_eq!(fts_query(&"w ".repeat(50)).map(|q| q.matches('"').count()), Some(16), "at most 8 terms");
    }
}
