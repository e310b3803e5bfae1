-- Backups whose stored file failed a later check against the catalogue: `bakfleet verify`
-- or "verify now" found it missing, of another size or SHA-256, unreadable or damaged.
-- Such a backup stays catalogued, so its history and finding remain visible, but it no
-- longer counts as a good backup: restore plans, drills, retention and the newest-backup
-- summaries leave it out. A check that finds the file good again deletes the row.
--
-- A table of its own rather than a column on backups, for the same reasons as
-- pruned_backups: the few marked backups are found through its primary key, and setting
-- a mark does not rewrite the backups row, whose update triggers sum a chart interval
-- again.
CREATE TABLE backup_verification_failures (
    backup_id  INTEGER PRIMARY KEY REFERENCES backups(id),
    finding    TEXT NOT NULL
               CHECK (finding IN ('missing', 'size_mismatch', 'hash_mismatch', 'unreadable')),
    detail     TEXT NOT NULL,   -- the finding as verify printed it
    found_at   TEXT NOT NULL,   -- the first check that found the problem
    checked_at TEXT NOT NULL    -- the last check that found it still there
);

-- A mark on the newest backup of a type makes the next newest unpruned, unmarked one the
-- newest.
CREATE TRIGGER latest_backups_after_verification_failure
AFTER INSERT ON backup_verification_failures
BEGIN
    DELETE FROM latest_backups WHERE backup_id = NEW.backup_id;
    INSERT INTO latest_backups (instance, database, backup_type, backup_id, finished_at)
    SELECT b.instance, b.database, b.backup_type, b.id, b.finished_at
    FROM backups marked
    JOIN backups b ON b.instance = marked.instance
                  AND b.database = marked.database
                  AND b.backup_type = marked.backup_type
    WHERE marked.id = NEW.backup_id
      AND b.id NOT IN (SELECT backup_id FROM pruned_backups)
      AND b.id NOT IN (SELECT backup_id FROM backup_verification_failures)
      AND NOT EXISTS (SELECT 1 FROM latest_backups l
                      WHERE l.instance = marked.instance
                        AND l.database = marked.database
                        AND l.backup_type = marked.backup_type)
    ORDER BY b.finished_at DESC, b.id DESC
    LIMIT 1;
END;

-- A cleared mark makes the backup count again, as the newest when it is newer.
CREATE TRIGGER latest_backups_after_verification_cleared
AFTER DELETE ON backup_verification_failures
BEGIN
    INSERT INTO latest_backups (instance, database, backup_type, backup_id, finished_at)
    SELECT instance, database, backup_type, id, finished_at
    FROM backups
    WHERE id = OLD.backup_id
      AND id NOT IN (SELECT backup_id FROM pruned_backups)
    ON CONFLICT (instance, database, backup_type) DO UPDATE
        SET backup_id = excluded.backup_id, finished_at = excluded.finished_at
        WHERE excluded.finished_at > latest_backups.finished_at
           OR (excluded.finished_at = latest_backups.finished_at
               AND excluded.backup_id > latest_backups.backup_id);
END;

-- The prune triggers of 0007, which must not make a marked backup the newest.
DROP TRIGGER latest_backups_after_prune;
CREATE TRIGGER latest_backups_after_prune AFTER INSERT ON pruned_backups
BEGIN
    DELETE FROM latest_backups WHERE backup_id = NEW.backup_id;
    INSERT INTO latest_backups (instance, database, backup_type, backup_id, finished_at)
    SELECT b.instance, b.database, b.backup_type, b.id, b.finished_at
    FROM backups pruned
    JOIN backups b ON b.instance = pruned.instance
                  AND b.database = pruned.database
                  AND b.backup_type = pruned.backup_type
    WHERE pruned.id = NEW.backup_id
      AND b.id NOT IN (SELECT backup_id FROM pruned_backups)
      AND b.id NOT IN (SELECT backup_id FROM backup_verification_failures)
      AND NOT EXISTS (SELECT 1 FROM latest_backups l
                      WHERE l.instance = pruned.instance
                        AND l.database = pruned.database
                        AND l.backup_type = pruned.backup_type)
    ORDER BY b.finished_at DESC, b.id DESC
    LIMIT 1;
END;

DROP TRIGGER latest_backups_after_unprune;
CREATE TRIGGER latest_backups_after_unprune AFTER DELETE ON pruned_backups
BEGIN
    INSERT INTO latest_backups (instance, database, backup_type, backup_id, finished_at)
    SELECT instance, database, backup_type, id, finished_at
    FROM backups
    WHERE id = OLD.backup_id
      AND id NOT IN (SELECT backup_id FROM backup_verification_failures)
    ON CONFLICT (instance, database, backup_type) DO UPDATE
        SET backup_id = excluded.backup_id, finished_at = excluded.finished_at
        WHERE excluded.finished_at > latest_backups.finished_at
           OR (excluded.finished_at = latest_backups.finished_at
               AND excluded.backup_id > latest_backups.backup_id);
END;

-- The overview's kept reads (0016) are read again after any change to a mark, also one
-- on a backup that is not the newest of its type.
CREATE TRIGGER overview_generation_verification_failures_insert
AFTER INSERT ON backup_verification_failures
BEGIN
    UPDATE overview_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER overview_generation_verification_failures_update
AFTER UPDATE ON backup_verification_failures
BEGIN
    UPDATE overview_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER overview_generation_verification_failures_delete
AFTER DELETE ON backup_verification_failures
BEGIN
    UPDATE overview_generation SET value = value + 1 WHERE id = 1;
END;
