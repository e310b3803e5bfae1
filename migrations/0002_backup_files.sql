-- Database files of each backup (msdb.dbo.backupfile), which restore scripts need for
-- MOVE clauses, and the record of backups deleted by retention.

CREATE TABLE backup_files (
    backup_id     INTEGER NOT NULL REFERENCES backups(id),
    file_number   INTEGER NOT NULL,
    logical_name  TEXT NOT NULL,
    physical_name TEXT NOT NULL,
    file_type     TEXT NOT NULL,              -- msdb file_type: D data, L log, F full-text
    size_bytes    INTEGER,                    -- msdb file_size
    PRIMARY KEY (backup_id, file_number)
);

-- A backup that retention deletes. The row is written before the store file is deleted,
-- so from that moment the backup no longer counts as restorable; file_deleted_at is set
-- once the file is gone. A row without file_deleted_at is a prune that stopped half-way,
-- and the next prune finishes it. The backups row stays, so history remains visible.
CREATE TABLE pruned_backups (
    backup_id       INTEGER PRIMARY KEY REFERENCES backups(id),
    reason          TEXT NOT NULL,
    pruned_at       TEXT NOT NULL,
    file_deleted_at TEXT
);
