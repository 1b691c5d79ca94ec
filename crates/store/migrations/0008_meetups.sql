-- Festival Chat store, eighth schema: meet-ups.
--
-- A meet-up (kind 6, Kind::Meetup) is a message of its room like a text: it
-- counts as unread and as the room's activity. Its answers (kind 7,
-- Kind::MeetupReply) are messages too; what a card shows (who is coming, who
-- cannot) is each person's latest answer, kept here by ingest in the
-- insert's transaction, so a card reads one index range instead of parsing
-- every answer of the room. A row stands for one stored answer message, so
-- the table holds at most as many rows as the store holds answers, within
-- the store's budgets; when that message goes (expiry, eviction), its row
-- goes with it. The key names the answer's room: an answer counts only in
-- the meet-up's own room, and seqs compare only within one chain (room,
-- author), so an answer posted elsewhere can neither replace nor block one
-- posted in the room.
CREATE TABLE meetup_replies (
    meetup BLOB    NOT NULL CHECK (length(meetup) = 32),
    author BLOB    NOT NULL CHECK (length(author) = 32),
    -- The answer message's position: its room and seq.
    room   TEXT    NOT NULL,
    seq    INTEGER NOT NULL,
    -- 0: coming, 1: can't (Kind::MeetupReply's MeetupAnswer).
    answer INTEGER NOT NULL CHECK (answer IN (0, 1)),
    PRIMARY KEY (meetup, room, author)
) STRICT, WITHOUT ROWID;

CREATE INDEX meetup_replies_message ON meetup_replies (author, room, seq);

CREATE TRIGGER meetup_replies_gone AFTER DELETE ON messages
WHEN old.kind = 7
BEGIN
    DELETE FROM meetup_replies WHERE author = old.author AND room = old.room AND seq = old.seq;
END;

-- Unread counts and room activity take meet-ups: the partial index they use
-- names the kinds (0 text, 2 sealed DM, 6 meet-up), and src/rooms.rs repeats
-- its WHERE clause verbatim.
DROP INDEX messages_unread;
CREATE INDEX messages_unread ON messages (room, received_at) WHERE kind IN (0, 2, 6);
