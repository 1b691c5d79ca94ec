-- Festival Chat store, twelfth schema: ingest queues messages for search
-- and for opening group mail itself (src/ingest.rs, `queues_script`), in
-- the same transaction, instead of these AFTER INSERT triggers.
--
-- A table with an insert trigger makes SQLite copy every row of a
-- multi-row INSERT into a temporary table before inserting any, and run
-- the trigger's program once per row (a frame, and the `kind IN (..)`
-- list built again each time): with both triggers, a batch of 1,000
-- messages ran 2,000 trigger programs. Ingest knows the kinds it stored
-- and their rowids (every row above the transaction's first mark is its
-- own), so one statement per queue does the same work.
--
-- What the triggers queued is unchanged: search takes texts, meet-ups and
-- photos (kinds 0, 6, 9) and the sealed DMs (2) to or from this device's
-- identity; group mail (8) waits to be opened. The delete triggers stay:
-- eviction and expiry delete in their own statements.
DROP TRIGGER messages_search_pending;
DROP TRIGGER messages_group_pending;

-- The unread index's condition, `kind IN (0, 2, 6, 9)`, cost ingest more
-- than the index itself: SQLite evaluates a partial index's WHERE for every
-- row inserted, and an IN list there measured ~3 times the cost of the same
-- index without a condition. The same set as a bit mask (bits 0, 2, 6 and
-- 9: 1 + 4 + 64 + 512 = 581) is two integer operations. Queries repeat it
-- verbatim (src/rooms.rs), as SQLite only uses a partial index whose
-- condition it sees the query implies.
DROP INDEX messages_unread;
CREATE INDEX messages_unread ON messages (room, received_at) WHERE (581 >> kind) & 1;
