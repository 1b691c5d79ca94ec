//! The store's error type, and the checked conversions between Rust values and
//! SQLite columns. Everything read from disk goes through these helpers, so a
//! damaged or hand-edited file yields [`StoreError::Corrupt`], never a panic.

use festival_core::{MessageId, PeerId, RoomId};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// A different message already holds this position in the author's chain:
    /// the author signed two messages with the same seq (equivocation).
    #[error("seq {seq} of {author:?} in {room} is already held by another message")]
    Conflict { room: RoomId, author: PeerId, seq: u64 },
    #[error("this store already has an identity")]
    AlreadyInitialised,
    #[error("this store has no identity yet")]
    NoIdentity,
    #[error("invalid name: {0}")]
    BadName(festival_core::BodyError),
    /// An envelope whose body does not parse (only possible for one rebuilt
    /// with `from_stored`, which skips the checks).
    #[error("invalid envelope: {0}")]
    Envelope(#[from] festival_core::EnvelopeError),
    /// SQLite integers are signed 64-bit; a value above `i64::MAX` (only a
    /// hostile or broken author sends one) cannot be stored in order.
    #[error("{field} {value} does not fit in a SQLite integer")]
    OutOfRange { field: &'static str, value: u64 },
    #[error("message {0:?} is not in the outbox")]
    NotInOutbox(MessageId),
    #[error("room {0} has not been joined")]
    NotJoined(RoomId),
    /// A search query with nothing to search for, or too long.
    #[error("search: {0}")]
    BadQuery(String),
    /// The list of people muted or blocked is full.
    #[error("at most {max} people can be muted or blocked")]
    TooManyChoices { max: u64 },
    /// Two envelopes offered as an equivocation proof are not one: they
    /// differ in author, room or seq, or are the same message.
    #[error("not an equivocation: the envelopes are not two messages at one position")]
    NotAnEquivocation,
    /// A PostgreSQL schema could not be brought up to date.
    #[error("cannot migrate the database: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    /// Data on disk does not decode. Holds where, and why.
    #[error("corrupt {table} row: {detail}")]
    Corrupt { table: &'static str, detail: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn corrupt(table: &'static str, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt { table, detail: detail.into() }
}

/// A u64 from the protocol, as a SQLite integer.
pub(crate) fn to_sql(field: &'static str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { field, value })
}

/// A SQLite integer read back as a u64. Negative values were never written.
pub(crate) fn from_sql(table: &'static str, value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| corrupt(table, format!("negative integer {value}")))
}

/// A 0/1 flag column (`CHECK (x IN (0, 1))`) as a bool.
pub(crate) fn flag_from_sql(table: &'static str, what: &str, value: i64) -> Result<bool> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(corrupt(table, format!("{what} flag {other}"))),
    }
}

pub(crate) fn opt_from_sql(table: &'static str, value: Option<i64>) -> Result<Option<u64>> {
    value.map(|v| from_sql(table, v)).transpose()
}

pub(crate) fn peer_from_sql(table: &'static str, bytes: &[u8]) -> Result<PeerId> {
    PeerId::try_from(bytes).map_err(|e| corrupt(table, format!("peer id: {e}")))
}

pub(crate) fn message_id_from_sql(table: &'static str, bytes: &[u8]) -> Result<MessageId> {
    MessageId::try_from(bytes).map_err(|e| corrupt(table, format!("message id: {e}")))
}

pub(crate) fn room_from_sql(table: &'static str, text: String) -> Result<RoomId> {
    RoomId::try_from(text).map_err(|e| corrupt(table, format!("room id: {e}")))
}

pub(crate) fn hops_from_sql(table: &'static str, value: i64) -> Result<u8> {
    u8::try_from(value).map_err(|_| corrupt(table, format!("hop count {value}")))
}

/// A history cursor or a seq bound above what SQLite can hold still means
/// "everything": clamp instead of failing a read for an absurd argument.
pub(crate) fn clamp_to_sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
