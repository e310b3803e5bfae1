-- Time spent in each phase and bytes moved, summed per phase and backup type, for the
-- Prometheus counters. A run adds its time in a phase when it leaves that phase, so a
-- scrape reads a few rows however many runs the catalogue holds.
ALTER TABLE runs ADD COLUMN phase_started_at TEXT;

CREATE TABLE phase_totals (
    phase         TEXT NOT NULL,
    backup_type   TEXT NOT NULL,
    runs          INTEGER NOT NULL DEFAULT 0,   -- times a run left this phase
    milliseconds  INTEGER NOT NULL DEFAULT 0,
    bytes         INTEGER NOT NULL DEFAULT 0,   -- backup: bytes BACKUP wrote; fetch: bytes fetched
    PRIMARY KEY (phase, backup_type)
);
