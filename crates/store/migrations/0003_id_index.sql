-- Festival Chat store, third schema: lookups by id through an index in two
-- parts (src/ids.rs), instead of one index on messages.
--
-- Ids are random, so an index on them takes every new message to a random
-- leaf: at a million messages a batch of 1,000 dirtied ~1,000 of its pages
-- (4 KiB each, for a 17-byte entry), about half of all the pages a batch
-- wrote, and eviction did the same again. Now new entries go to
-- recent_ids, a B-tree a few hundred KiB large, where a batch dirties at
-- most its ~100 pages. Every batch also moves one slice of the key space
-- (1/MERGE_SLICES of it) from recent_ids into message_ids, in key order:
-- the entries of ~32 batches land together on each page of that slice,
-- so a page of message_ids is written once per ~32 batches instead of
-- once per entry. Deleted messages are noted in dead_ids by the delete
-- trigger, and their entries leave message_ids with the same slice. Until
-- then a stale entry is harmless: every lookup compares the whole id with
-- the row the entry points to, so an entry whose row is gone, or whose
-- rowid SQLite gave to a newer message, finds nothing.
--
-- Keys are (id_prefix, pk): see 0001 for the prefix. WITHOUT ROWID: the key
-- is the whole entry, stored once.
DROP INDEX messages_id;

CREATE TABLE message_ids (
    id_prefix INTEGER NOT NULL,
    pk        INTEGER NOT NULL,
    PRIMARY KEY (id_prefix, pk)
) STRICT, WITHOUT ROWID;

CREATE TABLE recent_ids (
    id_prefix INTEGER NOT NULL,
    pk        INTEGER NOT NULL,
    PRIMARY KEY (id_prefix, pk)
) STRICT, WITHOUT ROWID;

CREATE TABLE dead_ids (
    id_prefix INTEGER NOT NULL,
    pk        INTEGER NOT NULL,
    PRIMARY KEY (id_prefix, pk)
) STRICT, WITHOUT ROWID;

INSERT INTO message_ids (id_prefix, pk) SELECT id_prefix, pk FROM messages ORDER BY id_prefix, pk;

-- The trigger of 0002, which now also notes the deleted message's id entry.
DROP TRIGGER messages_deleted_usage;
CREATE TRIGGER messages_deleted_usage AFTER DELETE ON messages BEGIN
    INSERT OR IGNORE INTO dead_ids (id_prefix, pk) VALUES (old.id_prefix, old.pk);
    UPDATE heads SET raw_bytes = raw_bytes - length(old.raw), messages = messages - 1
    WHERE room = old.room AND author = old.author;
    UPDATE room_usage SET raw_bytes = raw_bytes - length(old.raw), messages = messages - 1
    WHERE room = old.room;
END;
