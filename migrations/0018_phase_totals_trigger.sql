-- A running run that moves to its next phase adds the time it spent in the phase it
-- leaves to that phase's totals, in the same statement: the update that sets a new
-- phase_started_at. A phase change was a transaction of four statements before, each a
-- round trip to the connection's thread while the catalogue's write lock was held, eight
-- times per backup run. The update that records a run's outcome closes its last phase
-- itself, because that phase ends at finished_at and the update leaves phase_started_at.
CREATE TRIGGER phase_totals_on_next_phase AFTER UPDATE OF phase_started_at ON runs
WHEN OLD.status = 'running' AND NEW.status = 'running' AND OLD.phase_started_at IS NOT NULL
BEGIN
    INSERT INTO phase_totals (phase, backup_type, runs, milliseconds)
    VALUES (OLD.phase, OLD.backup_type, 1,
            MAX(0, CAST(ROUND((julianday(NEW.phase_started_at)
                               - julianday(OLD.phase_started_at)) * 86400000.0)
                        AS INTEGER)))
    ON CONFLICT (phase, backup_type) DO UPDATE
    SET runs = runs + excluded.runs, milliseconds = milliseconds + excluded.milliseconds;
END;
