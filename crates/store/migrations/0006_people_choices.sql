-- Festival Chat store, sixth schema: what the person using this device
-- chose about others. A muted person or room raises no notification; a
-- blocked person's messages are not shown, their DMs are not carried and
-- they get no receipts from us. Kept apart from `peers`, which is pruned
-- (names of fresh keys come and go): a choice stays until it is undone.
CREATE TABLE people_choices (
    peer_id BLOB    PRIMARY KEY CHECK (length(peer_id) = 32),
    muted   INTEGER NOT NULL DEFAULT 0 CHECK (muted IN (0, 1)),
    blocked INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
    -- When it was last changed (our clock, ms): the list shows newest first.
    since   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

ALTER TABLE rooms ADD COLUMN muted INTEGER NOT NULL DEFAULT 0 CHECK (muted IN (0, 1));
