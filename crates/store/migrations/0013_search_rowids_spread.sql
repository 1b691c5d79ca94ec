-- Festival Chat store, thirteenth schema: the search index keys a message
-- by its pk times 997 instead of by its pk.
--
-- FTS5 (contentless_delete) records a deleted row in a per-segment hash of
-- "tombstones" with linear probing, whose slot is (rowid / pages) % slots.
-- Eviction and expiry delete the oldest messages, consecutive pks, so
-- their tombstones filled consecutive slots: one long run per page, and
-- every lookup of a live row that hashed into the run walked it. A merge
-- looks up every entry it copies, so evicting ~96,000 indexed messages at
-- once took 348 s (`festival-bench store`, `search_evict_s`), holding the
-- writer in steps. Spaced 997 apart, consecutive pks land 13 slots apart
-- (997 is -13 modulo both slot counts of a 4,050-byte FTS5 page), and a
-- simulation of the hash at half load gave 0.8 probes per lookup instead
-- of 123. The order is kept (search lists by rowid, newest first), and
-- 997 leaves room for 9 * 10^15 pks before the product leaves 63 bits.
--
-- The index is rebuilt: every message it held is queued again, and the
-- node indexes the queue as it does anything new (src/search.rs).
DROP TABLE message_search;
CREATE VIRTUAL TABLE message_search USING fts5(
    text,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- The kinds as a bit mask, not an IN list (evaluated for every row deleted;
-- see 0012): 0, 2, 6 and 9.
DROP TRIGGER messages_search_gone;
CREATE TRIGGER messages_search_gone AFTER DELETE ON messages
WHEN (581 >> old.kind) & 1
BEGIN
    DELETE FROM search_pending WHERE pk = old.pk;
    DELETE FROM message_search WHERE rowid = old.pk * 997;
END;

INSERT OR IGNORE INTO search_pending (pk)
SELECT pk FROM messages
WHERE kind IN (0, 6, 9)
   OR (kind = 2 AND (recipient = (SELECT peer_id FROM identity)
                     OR author = (SELECT peer_id FROM identity)));
