//! festival-store: everything a Festival Chat node keeps on disk, in one
//! SQLite file through sqlx; and, with the `postgres` feature, the same on
//! PostgreSQL for a cluster of relays ([`pg`]). [`MessageStore`] is the
//! interface both implement.
//!
//! The store persists verified [`festival_core::SignedEnvelope`]s with their
//! exact signed bytes, the chain heads that sync compares, the outbox of
//! messages this device wrote, receipts, peers, joined rooms, and the device
//! identity. The file runs in WAL mode with `synchronous = FULL`, so a commit
//! that returned survives a crash and a power loss; see [`open`].
//!
//! # Layout
//! - [`open`]: [`Store::open`], connection settings, the writer and reader
//!   pools, migrations, [`OpenError`]; integrity check and counts.
//! - [`files`]: the files on disk: created private (directory 0700, file
//!   0600, since the secret key is inside), their real sizes
//!   ([`DiskUsage`]), giving free pages back, truncating the WAL.
//! - [`error`]: [`StoreError`], and checked conversions between Rust values
//!   and SQLite columns (data from disk never panics).
//! - [`identity`]: the single device identity; the secret key leaves only as
//!   a `festival_core::Identity`.
//! - [`ingest`]: `insert` and `insert_batch`, the hot path; heads, outbox,
//!   accounting and the id index are written in the same transaction, in a
//!   few round trips.
//! - `script` (private): several statements and their values sent to SQLite
//!   in one round trip.
//! - [`heads`]: per-chain contiguous/max marks for sync; they never go down,
//!   even when messages are deleted.
//! - `chains` (private): the writer's memory of chain ids and marks between
//!   batches, trusted only while no other connection writes the file.
//! - [`lookup`]: chain tips, what receipts refer to, room membership.
//! - [`ids`]: lookups by id, through an index in two parts (a recent one
//!   in memory, merged into the table a slice of the key space at a time,
//!   and read back at open) so random ids do not cost a page write each.
//! - [`usage`]: accounting per chain, room and author ([`Usage`]), kept
//!   exact by ingest and a delete trigger.
//! - [`evict`]: [`Budget`] and [`Store::evict`]: per author, per room, then
//!   the disk, by class, oldest first; never my messages or DMs to me.
//! - [`expire`]: [`Store::expire`], deleting messages past the festival's
//!   lifetime in short background transactions.
//! - `victims` (private): choosing the oldest evictable rows on a reader and
//!   deleting them in bounded transactions, shared by the two above.
//! - [`equivocation`]: proofs that an author signed two messages for one
//!   position, capped.
//! - [`read`]: get by id or position, history pages, ranges for sync.
//! - [`groups`]: private groups this device is in, opened from a queue
//!   ingest fills; each group's messages and latest state.
//! - [`meetups`]: each person's latest answer to each meet-up, kept by
//!   ingest in the insert's transaction.
//! - [`receipts`], [`outbox`], [`peers`] (and per-peer sync times),
//!   [`rooms`] (and unread counts): one table each.
//!
//! The schema lives in `migrations/`, numbered, embedded at compile time.
//!
//! # Two backends, one trait, and still none in festival-core
//! [`MessageStore`] (in [`backend`]) is what the engine, its retention task
//! and the relay call; [`Store`] (SQLite, a device's file) and
//! [`pg::PgStore`] (PostgreSQL, a relay cluster's shared mailbox) implement
//! it, and `tests/it/conformance.rs` runs one suite against both. A relay picks
//! its backend at start-up ([`AnyStore`]). The SQLite store keeps its wider
//! API (DM history, peers, unread counts) for the app.
//!
//! The core stays sans-IO: `Node::handle(input, now) -> outputs` never calls
//! a store; it asks for what it needs in its outputs and receives the
//! answers as inputs. The simulator keeps its state in memory the same way,
//! without pretending to be a store.

#[cfg(feature = "postgres")]
mod any;
pub mod backend;
mod chains;
pub mod choices;
pub mod equivocation;
pub mod error;
pub mod evict;
pub mod expire;
pub mod files;
pub mod groups;
pub mod heads;
pub mod identity;
pub mod ids;
pub mod ingest;
pub mod lookup;
pub mod meetups;
pub mod open;
pub mod outbox;
pub mod peers;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod read;
pub mod receipts;
pub mod rooms;
mod script;
pub mod search;
pub mod usage;
mod victims;

#[cfg(feature = "postgres")]
pub use any::AnyStore;
pub use backend::MessageStore;
pub use choices::{PersonChoice, MAX_PEOPLE_CHOICES};
pub use equivocation::{MAX_EQUIVOCATION_BYTES, MAX_EQUIVOCATION_PROOFS};
pub use error::{Result, StoreError};
pub use evict::{Budget, Evicted, WAL_RESERVE_BYTES};
pub use files::DiskUsage;
pub use groups::{GroupRecord, MAX_GROUPS};
pub use heads::HeadRow;
pub use identity::LocalIdentity;
pub use ids::{MERGE_SLICES, MERGE_STEP};
pub use ingest::Inserted;
pub use meetups::MeetupTally;
pub use open::{configure_sqlite, OpenError, Store, FESTIVAL_APPLICATION_ID};
pub use outbox::{OutboxMarks, OutboxRow, OutboxState};
pub use peers::PeerRecord;
pub use read::{HistoryCursor, StoredMessage, GAP_WAIT_MS};
pub use rooms::RoomRecord;
pub use search::{MAX_QUERY_CHARS, MAX_SEARCH_RESULTS};
pub use usage::{Usage, ROW_OVERHEAD_BYTES};
pub use victims::STEP_ROWS;
