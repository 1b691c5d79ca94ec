-- Festival Chat store, fifth schema: history is ordered by (created_at,
-- author, seq), the order the app shows, instead of (created_at, id): one
-- author's messages of one millisecond come in the order they were
-- written, not in the order of their hashes. The history index (also the
-- order eviction and expiry walk a room in) follows; same size, one index.
DROP INDEX messages_history;
CREATE INDEX messages_history ON messages (room, created_at, author, seq);
