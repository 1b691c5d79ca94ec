-- Festival Chat store, seventh schema: full-text search over what a person
-- can read here (room texts, and DMs to or from us), with SQLite's FTS5.
--
-- The index is contentless (it keeps the terms, not the text: the text is
-- in the envelope, and a DM's only once opened) with deletes, so a row can
-- go with its message. Its rowid is the message's pk.
CREATE VIRTUAL TABLE message_search USING fts5(
    text,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- Messages to index: a DM is opened (X25519) to be indexed, which does not
-- belong in the ingest transaction, so ingest only notes the pk here and the
-- node's indexer (src/search.rs) drains it. Kinds: 0 is Kind::Text, 2 is
-- Kind::SealedDm (checked by a test in src/search.rs).
CREATE TABLE search_pending (
    pk INTEGER PRIMARY KEY
) STRICT;

CREATE TRIGGER messages_search_pending AFTER INSERT ON messages
WHEN new.kind = 0
  OR (new.kind = 2 AND (new.recipient = (SELECT peer_id FROM identity)
                        OR new.author = (SELECT peer_id FROM identity)))
BEGIN
    INSERT INTO search_pending (pk) VALUES (new.pk);
END;

-- A message deleted (expiry, eviction) leaves the index and the queue.
CREATE TRIGGER messages_search_gone AFTER DELETE ON messages
WHEN old.kind IN (0, 2)
BEGIN
    DELETE FROM search_pending WHERE pk = old.pk;
    DELETE FROM message_search WHERE rowid = old.pk;
END;

-- What was stored before this schema is indexed too.
INSERT INTO search_pending (pk)
SELECT pk FROM messages
WHERE kind = 0
   OR (kind = 2 AND (recipient = (SELECT peer_id FROM identity) OR author = (SELECT peer_id FROM identity)));
