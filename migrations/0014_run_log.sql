-- Each run's own log: the events bakfleet logged inside the run's job, kept beside the
-- run so the site can show what happened without the operator searching log files.
-- seq numbers a run's lines from 0 in the order they were logged.
CREATE TABLE run_log (
    run_id   INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    at       TEXT NOT NULL,                    -- UTC, as the other times of the catalogue
    level    TEXT NOT NULL,                    -- ERROR, WARN, INFO or DEBUG
    target   TEXT NOT NULL,                    -- the module that logged the line
    message  TEXT NOT NULL,                    -- the message and its fields as key=value
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
