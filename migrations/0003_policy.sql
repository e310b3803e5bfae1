-- Backup policies: what a run was asked for, what it took and why, and the schedule slot
-- it serves. Columns are only added, so catalogues of earlier versions keep their rows.

-- The type the schedule or the operator asked for. `backup_type` becomes the type the run
-- takes: a DIFF or LOG promoted to FULL records 'full' there and the cause in `reason`.
ALTER TABLE runs ADD COLUMN requested_type TEXT
    CHECK (requested_type IS NULL OR requested_type IN ('full', 'diff', 'log'));
UPDATE runs SET requested_type = backup_type;

-- Why the run took another type than requested, did not apply, or was skipped.
ALTER TABLE runs ADD COLUMN reason TEXT;

-- The schedule slot the run serves, UTC RFC 3339 text; NULL for manual and demo runs.
ALTER TABLE runs ADD COLUMN slot TEXT;

-- For status 'skipped': 'not_applicable' when the type does not exist for the database
-- (LOG under SIMPLE, DIFF of master), 'unavailable' when the database cannot be backed up
-- now (offline, restoring, a snapshot, tempdb).
ALTER TABLE runs ADD COLUMN skip_kind TEXT
    CHECK (skip_kind IS NULL OR skip_kind IN ('not_applicable', 'unavailable'));
UPDATE runs
SET skip_kind = CASE
        WHEN note LIKE 'not applicable:%' OR note LIKE 'only FULL backups exist for master%'
            THEN 'not_applicable'
        ELSE 'unavailable'
    END
WHERE status = 'skipped';

-- One run per schedule slot, across processes: a second scheduler that reaches the same
-- slot fails to insert its run and leaves the slot to the first.
CREATE UNIQUE INDEX runs_one_per_slot ON runs (instance, database, requested_type, slot)
    WHERE slot IS NOT NULL;

-- The scheduler's catch-up reads the newest run of each type per instance.
CREATE INDEX runs_by_requested_type ON runs (instance, requested_type, started_at);
