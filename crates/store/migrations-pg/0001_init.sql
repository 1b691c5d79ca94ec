-- Festival Chat store on PostgreSQL, first schema: the mailbox the relays of
-- a cluster share (see docs/relay-cluster.md and src/pg/mod.rs).
--
-- The same data as the SQLite store (migrations/), laid out for many writers
-- at once instead of one: no chain numbers handed out by the writer (each
-- instance would number on its own), no in-memory id index, no per-room sum
-- that every ingest would update (one hot row per room would serialise
-- every instance's ingest). Times are milliseconds since the Unix epoch; ids
-- are the 32 raw bytes of festival_core's newtypes; rooms are their
-- normalised text, compared byte by byte (COLLATE "C") as SQLite does.

-- The relay's identity: exactly one row, shared by every instance, so they
-- are one relay to the nodes.
CREATE TABLE identity (
    singleton  smallint PRIMARY KEY CHECK (singleton = 1),
    secret     bytea    NOT NULL CHECK (length(secret) = 32),
    peer_id    bytea    NOT NULL CHECK (length(peer_id) = 32),
    name       text     NOT NULL,
    created_at bigint   NOT NULL
);

CREATE TABLE peers (
    peer_id    bytea   PRIMARY KEY CHECK (length(peer_id) = 32),
    name       text,
    verified   boolean NOT NULL DEFAULT false,
    first_seen bigint,
    last_seen  bigint
);

CREATE TABLE rooms (
    room_id      text COLLATE "C" PRIMARY KEY,
    name         text   NOT NULL,
    joined_at    bigint NOT NULL,
    last_read_at bigint NOT NULL
);

-- Every stored envelope, with its exact signed bytes. The id is BLAKE3 of
-- raw, so it is unique; the position (room, author, seq) is unique too, and
-- a second id at a position is equivocation, reported as a conflict.
CREATE TABLE messages (
    id          bytea  PRIMARY KEY CHECK (length(id) = 32),
    room        text   COLLATE "C" NOT NULL,
    author      bytea  NOT NULL CHECK (length(author) = 32),
    seq         bigint NOT NULL CHECK (seq >= 1),
    kind        bigint NOT NULL,          -- festival_core::Kind::code()
    created_at  bigint NOT NULL,          -- author's clock
    received_at bigint NOT NULL,          -- the first instance's clock
    hops        bigint NOT NULL,
    recipient   bytea,                    -- sealed DMs only
    raw         bytea  NOT NULL,
    UNIQUE (room, author, seq)
);

-- History pages, walked backwards from a cursor; eviction per room, oldest
-- first.
CREATE INDEX messages_history ON messages (room, created_at, author, seq);
-- Expiry and eviction's expired class, oldest first over every room.
CREATE INDEX messages_created ON messages (created_at);

-- Per (room, author): contiguous = highest s with all of 1..=s seen,
-- max_seq = highest seen, and what the chain holds now (raw bytes and
-- messages, for the budgets). Written in the transaction that stores the
-- messages, with the row locked: concurrent instances storing into one
-- chain take turns, so the marks always follow from the rows.
CREATE TABLE heads (
    room       text   COLLATE "C" NOT NULL,
    author     bytea  NOT NULL,
    contiguous bigint NOT NULL DEFAULT 0,
    max_seq    bigint NOT NULL DEFAULT 0,
    raw_bytes  bigint NOT NULL DEFAULT 0,
    messages   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (room, author)
);

CREATE INDEX heads_author ON heads (author);

CREATE TABLE receipts (
    message_id bytea  NOT NULL,
    peer_id    bytea  NOT NULL,
    status     bigint NOT NULL CHECK (status IN (0, 1)),
    at         bigint NOT NULL,
    PRIMARY KEY (message_id, peer_id, status)
);

CREATE TABLE outbox (
    message_id bytea  PRIMARY KEY,
    room       text   COLLATE "C" NOT NULL,
    author     bytea  NOT NULL,
    seq        bigint NOT NULL,
    queued_at  bigint NOT NULL,
    sent_at    bigint,
    path       text,
    CHECK ((sent_at IS NULL) = (path IS NULL)),
    UNIQUE (room, author, seq),
    FOREIGN KEY (room, author, seq) REFERENCES messages (room, author, seq) ON DELETE CASCADE
);

CREATE TABLE retention (
    singleton     smallint PRIMARY KEY CHECK (singleton = 1),
    expire_before bigint   NOT NULL
);

INSERT INTO retention (singleton, expire_before) VALUES (1, 0);

CREATE TABLE equivocations (
    pk     bigserial PRIMARY KEY,
    author bytea  NOT NULL UNIQUE CHECK (length(author) = 32),
    room   text   COLLATE "C" NOT NULL,
    seq    bigint NOT NULL CHECK (seq >= 1),
    at     bigint NOT NULL,
    first  bytea  NOT NULL,
    second bytea  NOT NULL
);

CREATE INDEX equivocations_at ON equivocations (at);

-- Deleting messages (eviction and expiry are the only deletes) takes their
-- bytes off their chains in the same statement, whichever code path deletes
-- them. Once per statement, over the deleted rows grouped by chain. The
-- marks are left alone: they mean "seen up to".
CREATE FUNCTION messages_deleted_usage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE heads h SET raw_bytes = h.raw_bytes - g.bytes, messages = h.messages - g.n
    FROM (SELECT room, author, sum(length(raw))::bigint AS bytes, count(*) AS n
          FROM gone GROUP BY room, author) AS g
    WHERE h.room = g.room AND h.author = g.author;
    RETURN NULL;
END
$$;

CREATE TRIGGER messages_deleted_usage AFTER DELETE ON messages
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION messages_deleted_usage();
