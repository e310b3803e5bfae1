-- Summaries for the fleet overview: the newest run of each database, and the newest
-- backup of each type that retention has not pruned. Triggers keep them current, so the
-- overview reads one row per database and type instead of ranking every run and backup,
-- which took seconds per page with a million backups (docs/BENCHMARKS.md).
-- Newest means the latest started_at (runs) or finished_at (backups), then the highest id,
-- the order the overview used before. Times are fixed-width UTC text, so text order is
-- time order.

CREATE TABLE latest_runs (
    instance   TEXT NOT NULL,
    database   TEXT NOT NULL,
    run_id     INTEGER NOT NULL REFERENCES runs(id),
    started_at TEXT NOT NULL,
    PRIMARY KEY (instance, database)
);

INSERT INTO latest_runs (instance, database, run_id, started_at)
SELECT instance, database, id, started_at
FROM (SELECT r.instance, r.database, r.id, r.started_at,
             ROW_NUMBER() OVER (PARTITION BY r.instance, r.database
                                ORDER BY r.started_at DESC, r.id DESC) AS rank
      FROM runs r)
WHERE rank = 1;

-- Runs are never deleted and their start time never changes, so an insert is the only
-- event that can change the newest run.
CREATE TRIGGER latest_runs_after_insert AFTER INSERT ON runs
BEGIN
    INSERT INTO latest_runs (instance, database, run_id, started_at)
    VALUES (NEW.instance, NEW.database, NEW.id, NEW.started_at)
    ON CONFLICT (instance, database) DO UPDATE
        SET run_id = excluded.run_id, started_at = excluded.started_at
        WHERE excluded.started_at > latest_runs.started_at
           OR (excluded.started_at = latest_runs.started_at
               AND excluded.run_id > latest_runs.run_id);
END;

CREATE TABLE latest_backups (
    instance    TEXT NOT NULL,
    database    TEXT NOT NULL,
    backup_type TEXT NOT NULL,
    backup_id   INTEGER NOT NULL REFERENCES backups(id),
    finished_at TEXT NOT NULL,
    PRIMARY KEY (instance, database, backup_type)
);
CREATE INDEX latest_backups_by_backup ON latest_backups (backup_id);

INSERT INTO latest_backups (instance, database, backup_type, backup_id, finished_at)
SELECT instance, database, backup_type, id, finished_at
FROM (SELECT b.instance, b.database, b.backup_type, b.id, b.finished_at,
             ROW_NUMBER() OVER (PARTITION BY b.instance, b.database, b.backup_type
                                ORDER BY b.finished_at DESC, b.id DESC) AS rank
      FROM backups b
      WHERE b.id NOT IN (SELECT backup_id FROM pruned_backups))
WHERE rank = 1;

CREATE TRIGGER latest_backups_after_insert AFTER INSERT ON backups
BEGIN
    INSERT INTO latest_backups (instance, database, backup_type, backup_id, finished_at)
    VALUES (NEW.instance, NEW.database, NEW.backup_type, NEW.id, NEW.finished_at)
    ON CONFLICT (instance, database, backup_type) DO UPDATE
        SET backup_id = excluded.backup_id, finished_at = excluded.finished_at
        WHERE excluded.finished_at > latest_backups.finished_at
           OR (excluded.finished_at = latest_backups.finished_at
               AND excluded.backup_id > latest_backups.backup_id);
END;

-- Pruning the newest backup of a type makes the next newest unpruned one the newest.
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
      AND NOT EXISTS (SELECT 1 FROM latest_backups l
                      WHERE l.instance = pruned.instance
                        AND l.database = pruned.database
                        AND l.backup_type = pruned.backup_type)
    ORDER BY b.finished_at DESC, b.id DESC
    LIMIT 1;
END;

-- bakfleet never deletes a pruned_backups row, but a backup restored to the catalogue by
-- hand that way counts again.
CREATE TRIGGER latest_backups_after_unprune AFTER DELETE ON pruned_backups
BEGIN
    INSERT INTO latest_backups (instance, database, backup_type, backup_id, finished_at)
    SELECT instance, database, backup_type, id, finished_at
    FROM backups
    WHERE id = OLD.backup_id
    ON CONFLICT (instance, database, backup_type) DO UPDATE
        SET backup_id = excluded.backup_id, finished_at = excluded.finished_at
        WHERE excluded.finished_at > latest_backups.finished_at
           OR (excluded.finished_at = latest_backups.finished_at
               AND excluded.backup_id > latest_backups.backup_id);
END;

-- Run listings look up each run's backup by run_id. Without this index every run row
-- scanned the whole backups table, and a database page timed out at a million backups.
CREATE INDEX backups_by_run ON backups (run_id);
