-- Room creations allowed to the relay, shared by every instance of a
-- cluster. Each instance counted its own before, so an identity that moved
-- between N instances (one session at a time) got N hourly allowances, and
-- fresh keys N times the relay's budget per minute. See
-- PgStore::take_room_allowance.

-- Per identity: the rooms it made the relay join in the hour that began at
-- window_start (wall time, ms). Rows whose hour ended are pruned; fresh keys
-- can add at most the relay's budget per minute of them in an hour.
CREATE TABLE room_allowances (
    peer_id      bytea   PRIMARY KEY CHECK (length(peer_id) = 32),
    window_start bigint  NOT NULL,
    created      integer NOT NULL CHECK (created >= 0)
);

CREATE INDEX room_allowances_window ON room_allowances (window_start);

-- The relay's budget: a token bucket of rooms_created_per_minute, refilled
-- at that rate; `at` is when it was last refilled (wall time, ms).
CREATE TABLE room_budget (
    singleton smallint         PRIMARY KEY CHECK (singleton = 1),
    tokens    double precision NOT NULL,
    at        bigint           NOT NULL
);
