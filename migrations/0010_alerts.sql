-- Alerts of `serve`: the open problem per database and kind, so that a restart neither
-- re-sends an alert nor forgets a recovery, and a log of every alert with one delivery row
-- per target, so that a failed send is retried at the next pass.

-- One row per (instance, database, kind, backup_type) that was ever alerted. `kind` is
-- the problem: 'failure' keys on the run's backup type, 'rpo' on the whole database with
-- backup_type ''.
CREATE TABLE alert_states (
    instance     TEXT NOT NULL,
    database     TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('failure', 'rpo')),
    backup_type  TEXT NOT NULL,
    open         INTEGER NOT NULL,        -- 1 from the problem's alert until its recovery
    last_sent_at TEXT,                    -- time of the newest alert of the problem
    suppressed   INTEGER NOT NULL DEFAULT 0, -- repeats held back since that alert
    problem_since TEXT,                   -- first pass that saw the problem; NULL when ok
    PRIMARY KEY (instance, database, kind, backup_type)
);

-- The finished runs up to this time were evaluated. A single row.
CREATE TABLE alert_cursor (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    finished_at TEXT NOT NULL
);

CREATE TABLE alert_log (
    id          INTEGER PRIMARY KEY,
    created_at  TEXT NOT NULL,
    event       TEXT NOT NULL CHECK (event IN ('failure', 'rpo', 'recovery')),
    instance    TEXT NOT NULL,
    database    TEXT NOT NULL,
    backup_type TEXT NOT NULL,            -- '' for a database-wide RPO alert
    run_id      INTEGER,
    message     TEXT NOT NULL
);
CREATE INDEX alert_log_by_time ON alert_log (created_at);

-- One row per alert and target ('webhook:N' in file order, or 'email').
CREATE TABLE alert_deliveries (
    alert_id    INTEGER NOT NULL REFERENCES alert_log(id),
    target      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    sent_at     TEXT,
    PRIMARY KEY (alert_id, target)
);
CREATE INDEX alert_deliveries_pending ON alert_deliveries (status) WHERE status = 'pending';
