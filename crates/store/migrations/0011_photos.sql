-- Photos (kind 9: the header a person sees; kind 10: its chunks, never
-- shown on their own). Unread counts and room activity take photos: the
-- partial index they use names the kinds (0 text, 2 sealed DM, 6 meet-up,
-- 9 photo), and src/rooms.rs repeats its WHERE clause verbatim.
DROP INDEX messages_unread;
CREATE INDEX messages_unread ON messages (room, received_at) WHERE kind IN (0, 2, 6, 9);

-- Search takes photos' captions and meet-ups' places (kinds 9 and 6) beside
-- texts and DMs to or from us; src/search.rs reads the words of each.
DROP TRIGGER messages_search_pending;
CREATE TRIGGER messages_search_pending AFTER INSERT ON messages
WHEN new.kind IN (0, 6, 9)
  OR (new.kind = 2 AND (new.recipient = (SELECT peer_id FROM identity)
                        OR new.author = (SELECT peer_id FROM identity)))
BEGIN
    INSERT INTO search_pending (pk) VALUES (new.pk);
END;

DROP TRIGGER messages_search_gone;
CREATE TRIGGER messages_search_gone AFTER DELETE ON messages
WHEN old.kind IN (0, 2, 6, 9)
BEGIN
    DELETE FROM search_pending WHERE pk = old.pk;
    DELETE FROM message_search WHERE rowid = old.pk;
END;

-- Meet-ups stored before this schema are indexed too.
INSERT INTO search_pending (pk) SELECT pk FROM messages WHERE kind = 6;
