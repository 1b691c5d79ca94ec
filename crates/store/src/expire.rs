//! Expiry: messages live as long as the festival says, then go.
//!
//! The node knows the lifetime and calls [`Store::expire`] with the cutoff
//! (`now - lifetime`) in the background, again and again: each call deletes
//! a bounded number of the oldest expired messages in one short transaction,
//! so ingest never waits long. A person's own history stays: messages by
//! me and sealed DMs to me never expire here (the node stops forwarding
//! them), nor does anything still in the outbox. The cutoff is recorded, and
//! eviction's first class is "expired by the last cutoff" (see
//! [`crate::evict`]).

use crate::error::{clamp_to_sql, from_sql, Result};
use crate::open::Store;
use crate::victims::{delete, Merge, Source};

impl Store {
    /// Delete up to `max_rows` of the oldest messages created before
    /// `cutoff_created_at_ms` (except mine, DMs to me and unsent ones), in
    /// one transaction. Returns how many went; fewer than `max_rows` means
    /// nothing expired is left. The cutoff is remembered (it only rises).
    ///
    /// The search runs on a reader, so the write lock is held only for the
    /// delete itself: about 10-20 ms per 1,000 rows at a million messages
    /// (see [`crate::victims::STEP_ROWS`]), so callers pass about that.
    pub async fn expire(&self, cutoff_created_at_ms: u64, max_rows: u64) -> Result<u64> {
        let cutoff = clamp_to_sql(cutoff_created_at_ms);
        let rooms = self.rooms_with_messages().await?;
        let mut merge = Merge::new(rooms.into_iter().map(|room| Source::room(room, Some(cutoff))).collect());
        let max_rows = usize::try_from(max_rows).unwrap_or(usize::MAX);
        let victims = merge.take(self, max_rows, u64::MAX).await?;
        // Even with nothing to delete, this records the cutoff.
        Ok(delete(self, &victims, Some(cutoff)).await?.messages)
    }

    /// The cutoff of the latest [`Store::expire`]: messages created before
    /// it have expired. 0 before the first call.
    pub async fn expire_before(&self) -> Result<u64> {
        let (before,): (i64,) =
            sqlx::query_as("SELECT expire_before FROM retention WHERE singleton = 1").fetch_one(&self.reader).await?;
        from_sql("retention", before)
    }
}
