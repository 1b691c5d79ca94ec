-- Festival Chat store, second schema: storage that lasts a festival and no
-- longer. Accounting per chain and per room (so budgets are checked without
-- scanning messages), the expiry mark, and proofs of equivocation.
-- See src/usage.rs, src/evict.rs and src/equivocation.rs.

-- Per chain: the raw bytes and the number of its messages still stored.
-- Written by the ingest transaction (once per chain touched per batch, with
-- the heads) and by the trigger below when a message is deleted. The bytes a
-- budget compares add a fixed per-row overhead (ROW_OVERHEAD_BYTES in
-- src/usage.rs), kept out of the table so the estimate can change without a
-- migration.
ALTER TABLE heads ADD COLUMN raw_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE heads ADD COLUMN messages INTEGER NOT NULL DEFAULT 0;

UPDATE heads SET
    raw_bytes = (SELECT coalesce(sum(length(m.raw)), 0) FROM messages m
                 WHERE m.room = heads.room AND m.author = heads.author),
    messages = (SELECT count(*) FROM messages m
                WHERE m.room = heads.room AND m.author = heads.author);

-- "How much does this author hold, in every room": the per-author budget
-- and Store::author_usage. Only inserting a new chain writes this index;
-- the per-batch updates of existing chains change no indexed column.
CREATE INDEX heads_author ON heads (author);

-- The same sums per room: a handful of rows, so the total (Store::usage)
-- and each room's share are read without a scan.
CREATE TABLE room_usage (
    room      TEXT    PRIMARY KEY,
    raw_bytes INTEGER NOT NULL,
    messages  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

INSERT INTO room_usage (room, raw_bytes, messages)
SELECT room, sum(raw_bytes), sum(messages) FROM heads GROUP BY room;

-- Deleting a message (eviction and expiry are the only deletes) takes its
-- bytes off its chain and its room in the same statement, whichever code
-- path deletes it, so the sums cannot drift from the rows. Heads' contiguous
-- and max_seq are deliberately left alone: they mean "seen up to", and sync
-- must not ask for what we chose to drop.
CREATE TRIGGER messages_deleted_usage AFTER DELETE ON messages BEGIN
    UPDATE heads SET raw_bytes = raw_bytes - length(old.raw), messages = messages - 1
    WHERE room = old.room AND author = old.author;
    UPDATE room_usage SET raw_bytes = raw_bytes - length(old.raw), messages = messages - 1
    WHERE room = old.room;
END;

-- The expiry cutoff last applied (created_at below it has expired), so that
-- eviction's first class (expired messages) uses the node's lifetime without
-- being told it again. Only rises.
CREATE TABLE retention (
    singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
    expire_before INTEGER NOT NULL
) STRICT;

INSERT INTO retention (singleton, expire_before) VALUES (1, 0);

-- Proof that an author signed two different envelopes for one (room, author,
-- seq): both exact signed byte strings, which anyone can verify. One proof
-- per author is enough (UNIQUE); the first kept wins. A rowid table because
-- each raw is up to ~16 KiB. The number of rows and their bytes are capped
-- in src/equivocation.rs (a peer can make many keys equivocate), dropping
-- the oldest by `at`.
CREATE TABLE equivocations (
    pk     INTEGER PRIMARY KEY,
    author BLOB    NOT NULL UNIQUE CHECK (length(author) = 32),
    room   TEXT    NOT NULL,
    seq    INTEGER NOT NULL CHECK (seq >= 1),
    at     INTEGER NOT NULL,
    first  BLOB    NOT NULL,
    second BLOB    NOT NULL
) STRICT;

CREATE INDEX equivocations_at ON equivocations (at);
