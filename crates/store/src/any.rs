//! [`AnyStore`]: the backend a relay chose at start-up, SQLite or
//! PostgreSQL, behind [`MessageStore`].

use std::collections::HashMap;

use festival_core::receipt::Target;
use festival_core::sync::Snapshot;
use festival_core::{Identity, MessageId, PeerId, ReceiptStatus, RoomId, SignedEnvelope};

use crate::pg::PgStore;
use crate::{
    Budget, Evicted, HeadRow, HistoryCursor, Inserted, LocalIdentity, MessageStore, Result, RoomRecord, Store,
    StoredMessage, Usage,
};

/// One of the two stores.
#[derive(Clone, Debug)]
pub enum AnyStore {
    Sqlite(Store),
    Postgres(PgStore),
}

/// The same call on whichever store it is.
macro_rules! both {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Sqlite($s) => $call,
            AnyStore::Postgres($s) => $call,
        }
    };
}

impl MessageStore for AnyStore {
    async fn identity(&self) -> Result<Option<LocalIdentity>> {
        both!(self, s => s.identity().await)
    }
    async fn create_identity(&self, identity: &Identity, name: &str, now: u64) -> Result<()> {
        both!(self, s => s.create_identity(identity, name, now).await)
    }
    async fn snapshot(&self) -> Result<Snapshot> {
        both!(self, s => s.snapshot().await)
    }
    async fn heads(&self) -> Result<Vec<HeadRow>> {
        both!(self, s => s.heads().await)
    }
    async fn rooms(&self) -> Result<Vec<RoomRecord>> {
        both!(self, s => s.rooms().await)
    }
    async fn join_room(&self, room: &RoomId, display_name: &str, at: u64) -> Result<bool> {
        both!(self, s => s.join_room(room, display_name, at).await)
    }
    async fn leave_room(&self, room: &RoomId) -> Result<bool> {
        both!(self, s => s.leave_room(room).await)
    }
    async fn get(&self, id: &MessageId) -> Result<Option<StoredMessage>> {
        both!(self, s => s.get(id).await)
    }
    async fn held(&self, ids: &[MessageId]) -> Result<std::collections::HashSet<MessageId>> {
        both!(self, s => s.held(ids).await)
    }
    async fn get_at(&self, room: &RoomId, author: &PeerId, seq: u64) -> Result<Option<StoredMessage>> {
        both!(self, s => s.get_at(room, author, seq).await)
    }
    async fn insert_batch(
        &self,
        items: &[(SignedEnvelope, u8)],
        received_at: u64,
        local: bool,
    ) -> Result<Vec<Result<Inserted>>> {
        both!(self, s => s.insert_batch(items, received_at, local).await)
    }
    async fn load_range(
        &self,
        room: &RoomId,
        author: &PeerId,
        from: u64,
        to: u64,
        max_bytes: usize,
        not_before: u64,
    ) -> Result<Vec<(SignedEnvelope, u8)>> {
        both!(self, s => s.load_range(room, author, from, to, max_bytes, not_before).await)
    }
    async fn history(&self, room: &RoomId, before: Option<HistoryCursor>, limit: u32) -> Result<Vec<StoredMessage>> {
        both!(self, s => s.history(room, before, limit).await)
    }
    async fn mark_sent(&self, id: &MessageId, path: &str, at: u64) -> Result<bool> {
        both!(self, s => s.mark_sent(id, path, at).await)
    }
    async fn advance_contiguous(&self, room: &RoomId, author: &PeerId, through: u64) -> Result<()> {
        both!(self, s => s.advance_contiguous(room, author, through).await)
    }
    async fn record_equivocation(&self, a: &SignedEnvelope, b: &SignedEnvelope, at: u64) -> Result<bool> {
        both!(self, s => s.record_equivocation(a, b, at).await)
    }
    async fn set_peer_name(&self, peer: &PeerId, name: &str) -> Result<()> {
        both!(self, s => s.set_peer_name(peer, name).await)
    }
    async fn receipt_targets(&self, ids: &[MessageId]) -> Result<HashMap<MessageId, Target>> {
        both!(self, s => s.receipt_targets(ids).await)
    }
    async fn is_member(&self, author: &PeerId, room: &RoomId) -> Result<bool> {
        both!(self, s => s.is_member(author, room).await)
    }
    async fn add_receipts(&self, from: PeerId, status: ReceiptStatus, ids: &[MessageId], at: u64) -> Result<()> {
        both!(self, s => s.add_receipts(from, status, ids, at).await)
    }
    async fn receipts_for(&self, id: &MessageId) -> Result<Vec<(PeerId, ReceiptStatus, u64)>> {
        both!(self, s => s.receipts_for(id).await)
    }
    async fn usage(&self) -> Result<Usage> {
        both!(self, s => s.usage().await)
    }
    async fn room_usage(&self, room: &RoomId) -> Result<Usage> {
        both!(self, s => s.room_usage(room).await)
    }
    async fn author_usage(&self, author: &PeerId) -> Result<Usage> {
        both!(self, s => s.author_usage(author).await)
    }
    async fn over_budget(&self, budget: &Budget) -> Result<bool> {
        both!(self, s => s.over_budget(budget).await)
    }
    async fn expire(&self, cutoff_created_at_ms: u64, max_rows: u64) -> Result<u64> {
        both!(self, s => s.expire(cutoff_created_at_ms, max_rows).await)
    }
    async fn expire_before(&self) -> Result<u64> {
        both!(self, s => s.expire_before().await)
    }
    async fn evict(&self, budget: &Budget, now_ms: u64) -> Result<Evicted> {
        both!(self, s => s.evict(budget, now_ms).await)
    }
    async fn message_count(&self) -> Result<u64> {
        both!(self, s => s.message_count().await)
    }
    async fn close(&self) {
        both!(self, s => s.close().await)
    }
}
