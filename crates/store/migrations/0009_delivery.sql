-- Festival Chat store, ninth schema: what the sender shows of its own
-- messages beyond "sent". The relay's acknowledgement that it committed one
-- (`Stored`: it survives the relay's crash and waits there for the
-- recipient), and when the person last asked to send it again (the "not
-- delivered yet" clock starts again then). Both ours only, on the outbox
-- row, which lives as long as the message does.
ALTER TABLE outbox ADD COLUMN relay_stored_at INTEGER;
ALTER TABLE outbox ADD COLUMN retried_at INTEGER;
