-- The first catalogue schema. LSNs are SQL Server numeric(25,0) values, which do not fit
-- in a 64-bit integer; they are stored as 25-digit zero-padded decimal text so that text
-- order is numeric order. Times are UTC, RFC 3339 text with milliseconds.

CREATE TABLE instances (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    host          TEXT NOT NULL,
    port          INTEGER NOT NULL,
    product_version TEXT,
    edition       TEXT,
    engine_edition INTEGER,
    server_name   TEXT,
    last_seen_at  TEXT
);

CREATE TABLE databases (
    id             INTEGER PRIMARY KEY,
    instance_id    INTEGER NOT NULL REFERENCES instances(id),
    name           TEXT NOT NULL,
    recovery_model TEXT,
    state          TEXT,
    last_seen_at   TEXT,
    UNIQUE (instance_id, name)
);

-- One attempt to back up one database with one backup type.
CREATE TABLE runs (
    id             INTEGER PRIMARY KEY,
    instance       TEXT NOT NULL,
    database       TEXT NOT NULL,
    backup_type    TEXT NOT NULL CHECK (backup_type IN ('full', 'diff', 'log')),
    trigger        TEXT NOT NULL,             -- 'schedule', 'manual', 'demo'
    status         TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'skipped', 'interrupted')),
    phase          TEXT NOT NULL,             -- last phase reached: connect, preflight, backup, ...
    error          TEXT,
    note           TEXT,                      -- a change of course, e.g. compression left out on Express
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    duration_ms    INTEGER,
    bytes          INTEGER,
    throughput_bps REAL,
    host           TEXT NOT NULL,
    pid            INTEGER NOT NULL
);
CREATE INDEX runs_by_database ON runs (instance, database, started_at);
CREATE INDEX runs_by_start ON runs (started_at);

-- A backup file in the central store. A row exists only for a file that was verified,
-- fetched, hashed and made durable.
CREATE TABLE backups (
    id                    INTEGER PRIMARY KEY,
    run_id                INTEGER NOT NULL REFERENCES runs(id),
    instance              TEXT NOT NULL,
    database              TEXT NOT NULL,
    backup_type           TEXT NOT NULL CHECK (backup_type IN ('full', 'diff', 'log')),
    status                TEXT NOT NULL CHECK (status IN ('verified')),
    store_path            TEXT NOT NULL UNIQUE,   -- relative to the store root
    staged_path           TEXT NOT NULL,          -- where the instance wrote it
    size_bytes            INTEGER NOT NULL,
    sha256                TEXT NOT NULL,
    first_lsn             TEXT NOT NULL,
    last_lsn              TEXT NOT NULL,
    checkpoint_lsn        TEXT NOT NULL,
    database_backup_lsn   TEXT NOT NULL,
    differential_base_lsn TEXT,
    backup_set_guid       TEXT,
    database_guid         TEXT,
    backup_start          TEXT NOT NULL,          -- server local time as msdb stores it
    backup_finish         TEXT NOT NULL,
    finished_at           TEXT NOT NULL,          -- backup_finish in UTC; the fetch time when time_zone is unknown
    time_zone             INTEGER,                -- msdb time_zone: 15-minute steps from UTC
    server_version        TEXT,
    recovery_model        TEXT,
    has_checksums         INTEGER NOT NULL,
    is_copy_only          INTEGER NOT NULL,
    compressed            INTEGER NOT NULL,
    backup_size           INTEGER,                -- msdb backup_size
    compressed_size       INTEGER,                -- msdb compressed_backup_size
    fetched_at            TEXT NOT NULL,
    fetch_ms              INTEGER NOT NULL
);
CREATE INDEX backups_by_database ON backups (instance, database, backup_type, finished_at);

-- Leases keep one job per database at a time, across processes: the holder renews
-- expires_at; another process may take a lease over only after it expired.
CREATE TABLE job_leases (
    instance    TEXT NOT NULL,
    database    TEXT NOT NULL,
    holder_host TEXT NOT NULL,
    holder_pid  INTEGER NOT NULL,
    holder_id   TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    PRIMARY KEY (instance, database)
);
