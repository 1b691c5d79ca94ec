-- The committed order: how relay instances that missed the bus (Redis away,
-- or an instance that died between its commit and its XADD) still learn of
-- every envelope another instance stored. See src/pg/tail.rs.
--
-- A sequence would not do: numbers are taken when a row is inserted, and a
-- transaction holding 5 can commit after one holding 6, so a reader that has
-- seen 6 would skip 5. The id of the inserting transaction (xid8, 64 bits,
-- never wraps) is read together with the snapshot's xmin, below which every
-- transaction has ended: rows of transactions below it can no longer
-- appear, so a reader that stops there misses nothing.
ALTER TABLE messages ADD COLUMN tx bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);

CREATE INDEX messages_committed ON messages (tx, id);
