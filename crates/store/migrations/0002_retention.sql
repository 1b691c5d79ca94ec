-- Festival Chat store, second schema: storage that lasts a festival and no
-- longer. Accounting per chain and per room (so budgets are checked without
-- scanning messages), the expiry mark, and proofs of equivocation.
-- See src/usage.rs, src/evict.rs and src/equivocation.rs.

-- Per chain: a small integer id, and the raw bytes and the number of its
-- messages still stored. The accounting is written by the ingest
-- transaction (once per chain touched per batch, with the heads) and by the
-- trigger below when a message is deleted. The bytes a budget compares add a
-- fixed per-row overhead (ROW_OVERHEAD_BYTES in src/usage.rs), kept out of
-- the table so the estimate can change without a migration.
ALTER TABLE heads ADD COLUMN chain INTEGER NOT NULL DEFAULT 0;
ALTER TABLE heads ADD COLUMN raw_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE heads ADD COLUMN messages INTEGER NOT NULL DEFAULT 0;

UPDATE heads SET chain = numbered.n
FROM (SELECT room, author, row_number() OVER (ORDER BY room, author) AS n FROM heads) AS numbered
WHERE numbered.room = heads.room AND numbered.author = heads.author;

UPDATE heads SET
    raw_bytes = (SELECT coalesce(sum(length(m.raw)), 0) FROM messages m
                 WHERE m.room = heads.room AND m.author = heads.author),
    messages = (SELECT count(*) FROM messages m
                WHERE m.room = heads.room AND m.author = heads.author);

-- New chains take max(chain) + 1 (src/heads.rs), found through this index.
CREATE UNIQUE INDEX heads_chain ON heads (chain);

-- The position of a message becomes (chain, seq) instead of (room, author,
-- seq). The position index is written at one place per chain for every
-- message stored (and erased for every message evicted); keyed by a 40-byte
-- room and author it took ~60 bytes an entry and a batch from 1,000 chains
-- dirtied ~1,000 of its pages. Keyed by a small integer it takes ~12 bytes,
-- chains first seen together sit together, and the same batch dirties a few
-- hundred (measured in `festival-bench store`: see docs/benchmarks.md).
-- SQLite cannot change a table's UNIQUE constraint, so messages (and the
-- outbox, whose foreign key names the position) are rebuilt. The outbox is
-- rebuilt first and pointed at the new table, so dropping the old messages
-- cascades into nothing.
CREATE TABLE messages_new (
    pk          INTEGER PRIMARY KEY,
    id          BLOB    NOT NULL CHECK (length(id) = 32),
    id_prefix   INTEGER NOT NULL,
    room        TEXT    NOT NULL,
    author      BLOB    NOT NULL CHECK (length(author) = 32),
    -- heads.chain of (room, author).
    chain       INTEGER NOT NULL,
    seq         INTEGER NOT NULL CHECK (seq >= 1),
    kind        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    hops        INTEGER NOT NULL,
    recipient   BLOB,
    raw         BLOB    NOT NULL,
    -- One message per position; see 0001 for why this also makes ids unique.
    UNIQUE (chain, seq)
) STRICT;

INSERT INTO messages_new
    (pk, id, id_prefix, room, author, chain, seq, kind, created_at, received_at, hops, recipient, raw)
SELECT m.pk, m.id, m.id_prefix, m.room, m.author, h.chain, m.seq, m.kind, m.created_at, m.received_at,
       m.hops, m.recipient, m.raw
FROM messages m JOIN heads h ON h.room = m.room AND h.author = m.author;

CREATE TABLE outbox_new (
    message_id BLOB    PRIMARY KEY,
    room       TEXT    NOT NULL,
    author     BLOB    NOT NULL,
    chain      INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    queued_at  INTEGER NOT NULL,
    sent_at    INTEGER,
    path       TEXT,
    CHECK ((sent_at IS NULL) = (path IS NULL)),
    UNIQUE (chain, seq),
    FOREIGN KEY (chain, seq) REFERENCES messages_new (chain, seq) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

INSERT INTO outbox_new (message_id, room, author, chain, seq, queued_at, sent_at, path)
SELECT o.message_id, o.room, o.author, h.chain, o.seq, o.queued_at, o.sent_at, o.path
FROM outbox o JOIN heads h ON h.room = o.room AND h.author = o.author;

DROP TABLE outbox;
DROP TABLE messages;
-- Renaming also renames outbox_new's reference to it.
ALTER TABLE messages_new RENAME TO messages;
ALTER TABLE outbox_new RENAME TO outbox;

-- The indexes of 0001, dropped with the old tables; see 0001 for each.
CREATE INDEX messages_id ON messages (id_prefix);
CREATE INDEX messages_history ON messages (room, created_at, id);
CREATE INDEX messages_unread ON messages (room, received_at) WHERE kind IN (0, 2);
CREATE INDEX outbox_unsent ON outbox (queued_at) WHERE sent_at IS NULL;

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
