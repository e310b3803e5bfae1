-- Restore drills: the latest chain of a database restored under a new name on a sandbox
-- instance, checked with DBCC CHECKDB, then dropped. Each drill names the backups it
-- restored, so every backup shows whether a drill proved it restorable.

CREATE TABLE drills (
    id            INTEGER PRIMARY KEY,
    instance      TEXT NOT NULL,
    database      TEXT NOT NULL,
    sandbox       TEXT NOT NULL,             -- the instance the chain was restored on
    restored_as   TEXT NOT NULL,             -- the database name used on the sandbox
    trigger       TEXT NOT NULL,             -- 'schedule' or 'manual'
    status        TEXT NOT NULL CHECK (status IN ('running', 'passed', 'failed', 'interrupted')),
    phase         TEXT NOT NULL,             -- last phase reached: plan, connect, restore, checkdb, drop, done
    error         TEXT,
    drop_error    TEXT,                      -- set when the restored copy could not be dropped
    stop_at       TEXT,                      -- restore target, UTC; NULL for the latest point
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    duration_ms   INTEGER,
    host          TEXT NOT NULL,
    pid           INTEGER NOT NULL
);
CREATE INDEX drills_by_database ON drills (instance, database, started_at);

-- The backups a drill restored, in restore order.
CREATE TABLE drill_backups (
    drill_id   INTEGER NOT NULL REFERENCES drills(id),
    backup_id  INTEGER NOT NULL REFERENCES backups(id),
    position   INTEGER NOT NULL,
    PRIMARY KEY (drill_id, backup_id)
);
CREATE INDEX drill_backups_by_backup ON drill_backups (backup_id);
