-- Festival Chat store, tenth schema: private groups this device is in.
--
-- A group message (kind 8, Kind::GroupMessage) travels sealed in the DM
-- mailbox, which every node carries; only its members can open it. Ingest
-- only notes each one's pk here (opening needs the key, which does not
-- belong in the ingest transaction); the node opens what is queued
-- (src/groups.rs) and keeps, for the groups it is in, which messages are
-- whose (`group_messages`, for a group's history) and what each group is
-- as its latest message says (`groups`: no group state is synced, every
-- message carries the whole membership).
CREATE TABLE group_pending (
    pk INTEGER PRIMARY KEY
) STRICT;

CREATE TRIGGER messages_group_pending AFTER INSERT ON messages
WHEN new.kind = 8
BEGIN
    INSERT INTO group_pending (pk) VALUES (new.pk);
END;

CREATE TABLE groups (
    group_id   BLOB    PRIMARY KEY CHECK (length(group_id) = 16),
    name       TEXT    NOT NULL,
    -- The members, 32-byte keys one after the other, sorted (us included
    -- unless we left).
    members    BLOB    NOT NULL,
    -- created_at of the message that said so (the latest wins).
    updated_at INTEGER NOT NULL,
    -- We left it (our own "left" message is the latest).
    left_group INTEGER NOT NULL DEFAULT 0 CHECK (left_group IN (0, 1)),
    -- The latest message's received_at: the list's order.
    last_activity INTEGER NOT NULL,
    -- No notifications from it (the person's choice).
    muted      INTEGER NOT NULL DEFAULT 0 CHECK (muted IN (0, 1))
) STRICT, WITHOUT ROWID;

CREATE TABLE group_messages (
    group_id   BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    pk         INTEGER NOT NULL,
    PRIMARY KEY (group_id, created_at, pk)
) STRICT, WITHOUT ROWID;

CREATE INDEX group_messages_pk ON group_messages (pk);

-- A message deleted (expiry, eviction) leaves the queue and its group's
-- history; the group itself stays as its latest message said.
CREATE TRIGGER messages_group_gone AFTER DELETE ON messages
WHEN old.kind = 8
BEGIN
    DELETE FROM group_pending WHERE pk = old.pk;
    DELETE FROM group_messages WHERE pk = old.pk;
END;
