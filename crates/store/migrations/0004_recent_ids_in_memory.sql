-- Festival Chat store, fourth schema: the recent part of the id index moves
-- into memory (src/ids.rs). Writing it to a table cost every batch a page of
-- that table per few entries (its keys are random) and a read-back of the
-- rows just stored; measured, the two-part index was the largest single
-- cost of ingest left (docs/benchmarks.md). What it held goes into the
-- main part now.
INSERT OR IGNORE INTO message_ids (id_prefix, pk) SELECT id_prefix, pk FROM recent_ids;
DROP TABLE recent_ids;

-- Per slice of the key space (MERGE_SLICES in src/ids.rs; 32): every row
-- up to through_pk has its entry in message_ids. At open, the rows above
-- each slice's mark are read back into memory. A table with another number
-- of rows is read conservatively (the lowest mark for every slice).
CREATE TABLE id_merges (
    slice      INTEGER PRIMARY KEY,
    through_pk INTEGER NOT NULL
) STRICT;

WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < 31)
INSERT INTO id_merges (slice, through_pk) SELECT n, (SELECT coalesce(max(pk), 0) FROM messages) FROM s;
