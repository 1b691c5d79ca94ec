-- Festival Chat store, first schema.
--
-- Every table is STRICT so a wrong type is refused on write instead of being
-- discovered on read. Times are milliseconds since the Unix epoch. Ids are the
-- 32 raw bytes of festival_core's newtypes; rooms are their normalised text.

-- Marks the file as ours ("FEST"), so opening some other application's
-- SQLite file fails with a typed error instead of migrating into it.
-- Must match FESTIVAL_APPLICATION_ID in src/open.rs.
PRAGMA application_id = 1178948436;

-- The device identity: exactly one row. The secret key is read back only as a
-- festival_core::Identity; no API of the store returns the raw bytes.
-- peer_id is derivable from the secret, but storing it lets SQL say "by
-- others" (unread counts) without a round trip, and lets the loader detect a
-- damaged secret by re-deriving and comparing.
CREATE TABLE identity (
    singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
    secret     BLOB    NOT NULL CHECK (length(secret) = 32),
    peer_id    BLOB    NOT NULL CHECK (length(peer_id) = 32),
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- Everyone we have heard of. A peer can be known by name (from a relayed
-- profile message) before we have ever seen it on a link, so the seen times
-- are nullable.
CREATE TABLE peers (
    peer_id    BLOB    PRIMARY KEY CHECK (length(peer_id) = 32),
    name       TEXT,
    verified   INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1)),
    first_seen INTEGER,
    last_seen  INTEGER
) STRICT, WITHOUT ROWID;

-- Rooms this device has joined. last_read_at is compared with messages'
-- received_at (our clock), never created_at (the author's clock, which may be
-- wrong), so a message with a skewed clock still shows up as unread.
CREATE TABLE rooms (
    room_id      TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL,
    joined_at    INTEGER NOT NULL,
    last_read_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Every stored envelope. A rowid table (not WITHOUT ROWID) because raw is up to
-- ~16 KiB and WITHOUT ROWID tables are slow with large rows. raw is the last
-- column so reading the small columns never touches its overflow pages.
CREATE TABLE messages (
    pk          INTEGER PRIMARY KEY,
    -- BLAKE3 of raw: one id names exactly one byte string. Deliberately not
    -- UNIQUE; see messages_id below.
    id          BLOB    NOT NULL CHECK (length(id) = 32),
    -- The first 8 bytes of id, big-endian, as a signed integer: the key of
    -- messages_id. Written by the store from id (src/ingest.rs, id_prefix).
    id_prefix   INTEGER NOT NULL,
    room        TEXT    NOT NULL,
    author      BLOB    NOT NULL CHECK (length(author) = 32),
    seq         INTEGER NOT NULL CHECK (seq >= 1),
    kind        INTEGER NOT NULL,          -- festival_core::Kind::code()
    created_at  INTEGER NOT NULL,          -- author's clock
    received_at INTEGER NOT NULL,          -- our clock
    hops        INTEGER NOT NULL,
    recipient   BLOB,                      -- sealed DMs only
    raw         BLOB    NOT NULL,          -- the exact signed bytes
    -- Seqs are numbered per author *within a room*: a room is the unit of
    -- sync, and an author's chain in one room says nothing about another. So
    -- the position (room, author, seq) is unique, and a second id at the same
    -- position is equivocation, reported as a conflict.
    --
    -- This also makes ids unique: room, author and seq are read from raw, so
    -- one id (one byte string) has one position, and a second copy of a
    -- stored message is refused here, as a duplicate of the row holding its
    -- position.
    UNIQUE (room, author, seq)
) STRICT;

-- Lookups by id (get, which the node calls for every message delivered), as
-- `WHERE id_prefix = ? AND id = ?`: one probe of this index, then the whole
-- id is compared on the row. Ids are random, so nearly every message of a
-- batch lands on its own leaf of this index, and this is the index that
-- dirties the most pages per commit. It used to be a UNIQUE index on the
-- 32-byte id: 41 bytes an entry, 46 MB at a million messages. An 8-byte
-- integer and the rowid take 17 bytes, 19 MB: fewer pages split, more of
-- the index stays in the writer's cache, and checkpoints write fewer
-- distinct pages. Measured back to back at a million messages in the
-- sync-shaped batches of 1,000 of tests/perf.rs, on a 2-core machine: 4.9 MB
-- of WAL per commit instead of 5.8 MB, the writer thread's CPU down by a
-- quarter (11 s instead of 15 s), and ingest 69,000-70,000 messages a second
-- instead of 56,000-61,000.
--
-- Uniqueness is not lost (see the UNIQUE above). An equal prefix only costs
-- reading one more row, and grinding BLAKE3 for 8 equal bytes is not
-- feasible.
CREATE INDEX messages_id ON messages (id_prefix);

-- "The latest N messages of a room", paged by the (created_at, id) cursor.
CREATE INDEX messages_history ON messages (room, created_at, id);

-- Unread counts: only the kinds a person reads, by our receive time.
CREATE INDEX messages_unread ON messages (room, received_at) WHERE kind IN (0, 2);

-- Per (room, author): contiguous = highest s with all of 1..=s stored,
-- max_seq = highest stored. Written in the same transaction as the messages
-- it summarises, so it can never disagree with them after a crash.
CREATE TABLE heads (
    room       TEXT    NOT NULL,
    author     BLOB    NOT NULL,
    contiguous INTEGER NOT NULL,
    max_seq    INTEGER NOT NULL,
    PRIMARY KEY (room, author)
) STRICT, WITHOUT ROWID;

-- Delivery (0) and read (1) receipts. No foreign key to messages: a receipt
-- can arrive before the message it acknowledges.
CREATE TABLE receipts (
    message_id BLOB    NOT NULL,
    peer_id    BLOB    NOT NULL,
    status     INTEGER NOT NULL CHECK (status IN (0, 1)),
    at         INTEGER NOT NULL,
    PRIMARY KEY (message_id, peer_id, status)
) STRICT, WITHOUT ROWID;

-- Messages this device authored, and whether they have left it yet. Survives
-- restarts, so unsent work resumes at start-up. The message is referenced by
-- its position, whose UNIQUE constraint is the key a foreign key needs
-- (messages.id has no unique index). SQLite looks for an outbox row through
-- the outbox's own UNIQUE on the position whenever a message is deleted or
-- inserted by a multi-row statement (every batch); without it, each of those
-- messages would scan the outbox.
CREATE TABLE outbox (
    message_id BLOB    PRIMARY KEY,
    room       TEXT    NOT NULL,
    author     BLOB    NOT NULL,
    seq        INTEGER NOT NULL,
    queued_at  INTEGER NOT NULL,
    sent_at    INTEGER,
    path       TEXT,
    CHECK ((sent_at IS NULL) = (path IS NULL)),
    UNIQUE (room, author, seq),
    FOREIGN KEY (room, author, seq) REFERENCES messages (room, author, seq) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE INDEX outbox_unsent ON outbox (queued_at) WHERE sent_at IS NULL;

-- When we last completed a sync of a room with a peer.
CREATE TABLE peer_sync (
    peer_id        BLOB    NOT NULL,
    room           TEXT    NOT NULL,
    last_synced_at INTEGER NOT NULL,
    PRIMARY KEY (peer_id, room)
) STRICT, WITHOUT ROWID;
