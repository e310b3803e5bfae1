-- The media families of a striped backup: one BACKUP written over several files (DISK =
-- 'a', DISK = 'b', ...), all of which RESTORE needs ("Media Sets, Media Families, and
-- Backup Sets (SQL Server)").
--
-- A backup with rows here is striped: each family is a file in the store with its own
-- size and SHA-256, and family 1 is also the backups row's store_path and sha256. For a
-- striped backup, backups.size_bytes is the sum of the families' sizes. A backup without
-- rows here is one file, which its backups row describes.
CREATE TABLE backup_families (
    backup_id     INTEGER NOT NULL REFERENCES backups(id),
    family_number INTEGER NOT NULL,           -- msdb family_sequence_number, from 1
    store_path    TEXT NOT NULL UNIQUE,       -- relative to the store root
    staged_path   TEXT NOT NULL,              -- where the instance wrote it
    size_bytes    INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    PRIMARY KEY (backup_id, family_number)
);

-- A differential backup's base: the backup_set_guid of the full it applies to, as
-- sys.master_files.differential_base_guid reported just before BACKUP. NULL for fulls,
-- logs, imported backups and rows written before this column existed.
ALTER TABLE backups ADD COLUMN differential_base_guid TEXT;
