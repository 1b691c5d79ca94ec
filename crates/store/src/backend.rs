//! One interface over the two stores: [`MessageStore`].
//!
//! A node keeps everything in one SQLite file ([`Store`]); the relays of a
//! cluster share one PostgreSQL database ([`crate::pg::PgStore`], with the
//! `postgres` feature). The engine that drives the sync core, its retention
//! task and the relay are written against this trait, and one conformance
//! suite (`tests/it/conformance.rs`) holds both implementations to the same
//! behaviour: what ingest answers, how heads move, ranges, history pages,
//! receipts, budgets and expiry.
//!
//! The methods mean what the SQLite store's methods of the same names mean
//! (see their docs); where the backends differ, the PostgreSQL store says
//! so. Every future is `Send`, so callers can spawn them.

use std::collections::HashMap;
use std::future::Future;

use festival_core::receipt::Target;
use festival_core::sync::Snapshot;
use festival_core::{Identity, MessageId, PeerId, ReceiptStatus, RoomId, SignedEnvelope};

use crate::{
    Budget, Evicted, HeadRow, HistoryCursor, Inserted, LocalIdentity, Result, RoomRecord, Store, StoredMessage, Usage,
};

/// What the engine, its retention task and the relay need of a store.
pub trait MessageStore: Clone + Send + Sync + 'static {
    /// The device's (or the relay's) identity, if created.
    fn identity(&self) -> impl Future<Output = Result<Option<LocalIdentity>>> + Send;
    /// Create the identity; fails with `AlreadyInitialised` if there is one.
    fn create_identity(&self, identity: &Identity, name: &str, now: u64) -> impl Future<Output = Result<()>> + Send;
    /// What the sync core starts from.
    fn snapshot(&self) -> impl Future<Output = Result<Snapshot>> + Send;
    /// Every chain's head.
    fn heads(&self) -> impl Future<Output = Result<Vec<HeadRow>>> + Send;
    /// Rooms joined, with unread counts.
    fn rooms(&self) -> impl Future<Output = Result<Vec<RoomRecord>>> + Send;
    /// Join a room; `false` if already joined.
    fn join_room(&self, room: &RoomId, display_name: &str, at: u64) -> impl Future<Output = Result<bool>> + Send;
    /// Leave a room; `false` if not joined.
    fn leave_room(&self, room: &RoomId) -> impl Future<Output = Result<bool>> + Send;
    /// The message with this id.
    fn get(&self, id: &MessageId) -> impl Future<Output = Result<Option<StoredMessage>>> + Send;
    /// Which of `ids` are stored (one round trip on PostgreSQL).
    fn held(&self, ids: &[MessageId]) -> impl Future<Output = Result<std::collections::HashSet<MessageId>>> + Send;
    /// The message at a chain position.
    fn get_at(
        &self,
        room: &RoomId,
        author: &PeerId,
        seq: u64,
    ) -> impl Future<Output = Result<Option<StoredMessage>>> + Send;
    /// Store verified envelopes in one transaction; one outcome per item.
    fn insert_batch(
        &self,
        items: &[(SignedEnvelope, u8)],
        received_at: u64,
        local: bool,
    ) -> impl Future<Output = Result<Vec<Result<Inserted>>>> + Send;
    /// A chain's messages `from..=to` within `max_bytes`, none created
    /// before `not_before`.
    fn load_range(
        &self,
        room: &RoomId,
        author: &PeerId,
        from: u64,
        to: u64,
        max_bytes: usize,
        not_before: u64,
    ) -> impl Future<Output = Result<Vec<(SignedEnvelope, u8)>>> + Send;
    /// A page of a room's history, oldest first.
    fn history(
        &self,
        room: &RoomId,
        before: Option<HistoryCursor>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<StoredMessage>>> + Send;
    /// Our message has left on `path`.
    fn mark_sent(&self, id: &MessageId, path: &str, at: u64) -> impl Future<Output = Result<bool>> + Send;
    /// Count a chain's seqs up to `through` as seen.
    fn advance_contiguous(
        &self,
        room: &RoomId,
        author: &PeerId,
        through: u64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Keep two envelopes as proof of equivocation.
    fn record_equivocation(
        &self,
        a: &SignedEnvelope,
        b: &SignedEnvelope,
        at: u64,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Remember a peer's announced name.
    fn set_peer_name(&self, peer: &PeerId, name: &str) -> impl Future<Output = Result<()>> + Send;
    /// What each stored id of `ids` refers to.
    fn receipt_targets(&self, ids: &[MessageId]) -> impl Future<Output = Result<HashMap<MessageId, Target>>> + Send;
    /// Whether `author` has written in `room`.
    fn is_member(&self, author: &PeerId, room: &RoomId) -> impl Future<Output = Result<bool>> + Send;
    /// Record receipts; the earliest time of each stays.
    fn add_receipts(
        &self,
        from: PeerId,
        status: ReceiptStatus,
        ids: &[MessageId],
        at: u64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Every receipt of one message, earliest first.
    fn receipts_for(&self, id: &MessageId) -> impl Future<Output = Result<Vec<(PeerId, ReceiptStatus, u64)>>> + Send;
    /// What every room holds, as budgets count it.
    fn usage(&self) -> impl Future<Output = Result<Usage>> + Send;
    /// What one room holds.
    fn room_usage(&self, room: &RoomId) -> impl Future<Output = Result<Usage>> + Send;
    /// What one author holds over all rooms.
    fn author_usage(&self, author: &PeerId) -> impl Future<Output = Result<Usage>> + Send;
    /// Whether [`MessageStore::evict`] would delete for the total budget now.
    fn over_budget(&self, budget: &Budget) -> impl Future<Output = Result<bool>> + Send;
    /// Delete up to `max_rows` expired messages; records the cutoff.
    fn expire(&self, cutoff_created_at_ms: u64, max_rows: u64) -> impl Future<Output = Result<u64>> + Send;
    /// The cutoff of the latest expiry.
    fn expire_before(&self) -> impl Future<Output = Result<u64>> + Send;
    /// Delete until `budget` holds.
    fn evict(&self, budget: &Budget, now_ms: u64) -> impl Future<Output = Result<Evicted>> + Send;
    /// How many messages are stored.
    fn message_count(&self) -> impl Future<Output = Result<u64>> + Send;
    /// Close the connections.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// Implements [`MessageStore`] by calling a type's inherent methods of the
/// same names (which take precedence over the trait's in method calls).
macro_rules! inherent_message_store {
    ($ty:ty) => {
        impl $crate::backend::MessageStore for $ty {
            async fn identity(&self) -> $crate::Result<Option<$crate::LocalIdentity>> {
                self.identity().await
            }
            async fn create_identity(&self, i: &festival_core::Identity, name: &str, now: u64) -> $crate::Result<()> {
                self.create_identity(i, name, now).await
            }
            async fn snapshot(&self) -> $crate::Result<festival_core::sync::Snapshot> {
                self.snapshot().await
            }
            async fn heads(&self) -> $crate::Result<Vec<$crate::HeadRow>> {
                self.heads().await
            }
            async fn rooms(&self) -> $crate::Result<Vec<$crate::RoomRecord>> {
                self.rooms().await
            }
            async fn join_room(&self, room: &festival_core::RoomId, name: &str, at: u64) -> $crate::Result<bool> {
                self.join_room(room, name, at).await
            }
            async fn leave_room(&self, room: &festival_core::RoomId) -> $crate::Result<bool> {
                self.leave_room(room).await
            }
            async fn get(&self, id: &festival_core::MessageId) -> $crate::Result<Option<$crate::StoredMessage>> {
                self.get(id).await
            }
            async fn held(
                &self,
                ids: &[festival_core::MessageId],
            ) -> $crate::Result<std::collections::HashSet<festival_core::MessageId>> {
                self.held(ids).await
            }
            async fn get_at(
                &self,
                room: &festival_core::RoomId,
                author: &festival_core::PeerId,
                seq: u64,
            ) -> $crate::Result<Option<$crate::StoredMessage>> {
                self.get_at(room, author, seq).await
            }
            async fn insert_batch(
                &self,
                items: &[(festival_core::SignedEnvelope, u8)],
                received_at: u64,
                local: bool,
            ) -> $crate::Result<Vec<$crate::Result<$crate::Inserted>>> {
                self.insert_batch(items, received_at, local).await
            }
            async fn load_range(
                &self,
                room: &festival_core::RoomId,
                author: &festival_core::PeerId,
                from: u64,
                to: u64,
                max_bytes: usize,
                not_before: u64,
            ) -> $crate::Result<Vec<(festival_core::SignedEnvelope, u8)>> {
                self.load_range(room, author, from, to, max_bytes, not_before).await
            }
            async fn history(
                &self,
                room: &festival_core::RoomId,
                before: Option<$crate::HistoryCursor>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::StoredMessage>> {
                self.history(room, before, limit).await
            }
            async fn mark_sent(&self, id: &festival_core::MessageId, path: &str, at: u64) -> $crate::Result<bool> {
                self.mark_sent(id, path, at).await
            }
            async fn advance_contiguous(
                &self,
                room: &festival_core::RoomId,
                author: &festival_core::PeerId,
                through: u64,
            ) -> $crate::Result<()> {
                self.advance_contiguous(room, author, through).await
            }
            async fn record_equivocation(
                &self,
                a: &festival_core::SignedEnvelope,
                b: &festival_core::SignedEnvelope,
                at: u64,
            ) -> $crate::Result<bool> {
                self.record_equivocation(a, b, at).await
            }
            async fn set_peer_name(&self, peer: &festival_core::PeerId, name: &str) -> $crate::Result<()> {
                self.set_peer_name(peer, name).await
            }
            async fn receipt_targets(
                &self,
                ids: &[festival_core::MessageId],
            ) -> $crate::Result<std::collections::HashMap<festival_core::MessageId, festival_core::receipt::Target>>
            {
                self.receipt_targets(ids).await
            }
            async fn is_member(
                &self,
                author: &festival_core::PeerId,
                room: &festival_core::RoomId,
            ) -> $crate::Result<bool> {
                self.is_member(author, room).await
            }
            async fn add_receipts(
                &self,
                from: festival_core::PeerId,
                status: festival_core::ReceiptStatus,
                ids: &[festival_core::MessageId],
                at: u64,
            ) -> $crate::Result<()> {
                self.add_receipts(from, status, ids, at).await
            }
            async fn receipts_for(
                &self,
                id: &festival_core::MessageId,
            ) -> $crate::Result<Vec<(festival_core::PeerId, festival_core::ReceiptStatus, u64)>> {
                self.receipts_for(id).await
            }
            async fn usage(&self) -> $crate::Result<$crate::Usage> {
                self.usage().await
            }
            async fn room_usage(&self, room: &festival_core::RoomId) -> $crate::Result<$crate::Usage> {
                self.room_usage(room).await
            }
            async fn author_usage(&self, author: &festival_core::PeerId) -> $crate::Result<$crate::Usage> {
                self.author_usage(author).await
            }
            async fn over_budget(&self, budget: &$crate::Budget) -> $crate::Result<bool> {
                self.over_budget(budget).await
            }
            async fn expire(&self, cutoff_created_at_ms: u64, max_rows: u64) -> $crate::Result<u64> {
                self.expire(cutoff_created_at_ms, max_rows).await
            }
            async fn expire_before(&self) -> $crate::Result<u64> {
                self.expire_before().await
            }
            async fn evict(&self, budget: &$crate::Budget, now_ms: u64) -> $crate::Result<$crate::Evicted> {
                self.evict(budget, now_ms).await
            }
            async fn message_count(&self) -> $crate::Result<u64> {
                self.message_count().await
            }
            async fn close(&self) {
                self.close().await
            }
        }
    };
}
// Used again by the PostgreSQL store.
#[cfg_attr(not(feature = "postgres"), allow(unused_imports))]
pub(crate) use inherent_message_store;

inherent_message_store!(Store);
