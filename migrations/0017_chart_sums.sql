-- Sums per 12-hour interval for the charts of a database page, which show 90 days. A
-- database with 15-minute log backups has 8,640 backups and as many runs in 90 days, and
-- summing them on each page view read all of them. With these tables a page view reads
-- at most 180 rows per type and chart.
--
-- Intervals start at multiples of 43,200 Unix seconds (00:00 and 12:00 UTC). The triggers
-- below keep each sum in the transaction that changes one of its rows: an insert adds to
-- the sum, and an update or delete sums the interval's rows again, so that a maximum is
-- right after a row leaves it. Interval bounds compare as text, because stored times have
-- one fixed-width UTC form in which text order is time order. A time that SQLite cannot
-- read counts in the interval of 1970-01-01, so that it never fails the change.

CREATE TABLE backup_chart_sums (
    instance       TEXT NOT NULL,
    database       TEXT NOT NULL,
    backup_type    TEXT NOT NULL,
    interval_start INTEGER NOT NULL,  -- Unix seconds
    backup_count   INTEGER NOT NULL,
    largest_bytes  INTEGER NOT NULL,
    newest_at      TEXT NOT NULL,     -- finished_at of the interval's newest backup
    first_id       INTEGER NOT NULL,  -- lowest backup id, which names the sum in errors
    PRIMARY KEY (instance, database, interval_start, backup_type)
) WITHOUT ROWID;

-- Succeeded runs only, as the duration and throughput charts plot them.
CREATE TABLE run_chart_sums (
    instance          TEXT NOT NULL,
    database          TEXT NOT NULL,
    backup_type       TEXT NOT NULL,
    interval_start    INTEGER NOT NULL,  -- Unix seconds
    run_count         INTEGER NOT NULL,
    longest_ms        INTEGER,           -- NULL when no run recorded a duration
    throughput_sum    REAL,              -- over the runs that recorded a throughput
    throughput_count  INTEGER NOT NULL,
    newest_at         TEXT NOT NULL,     -- started_at of the interval's newest run
    first_id          INTEGER NOT NULL,
    PRIMARY KEY (instance, database, interval_start, backup_type)
) WITHOUT ROWID;

-- Existing rows.
INSERT INTO backup_chart_sums
SELECT instance, database, backup_type, COALESCE(unixepoch(finished_at), 0) / 43200 * 43200,
       COUNT(*), MAX(size_bytes), MAX(finished_at), MIN(id)
FROM backups
GROUP BY instance, database, backup_type, COALESCE(unixepoch(finished_at), 0) / 43200;

INSERT INTO run_chart_sums
SELECT instance, database, backup_type, COALESCE(unixepoch(started_at), 0) / 43200 * 43200,
       COUNT(*), MAX(duration_ms), SUM(throughput_bps), COUNT(throughput_bps),
       MAX(started_at), MIN(id)
FROM runs
WHERE status = 'succeeded'
GROUP BY instance, database, backup_type, COALESCE(unixepoch(started_at), 0) / 43200;

CREATE TRIGGER backup_chart_sums_after_insert AFTER INSERT ON backups
BEGIN
    INSERT INTO backup_chart_sums
    VALUES (NEW.instance, NEW.database, NEW.backup_type,
            COALESCE(unixepoch(NEW.finished_at), 0) / 43200 * 43200,
            1, NEW.size_bytes, NEW.finished_at, NEW.id)
    ON CONFLICT (instance, database, interval_start, backup_type) DO UPDATE
        SET backup_count = backup_count + 1,
            largest_bytes = max(largest_bytes, excluded.largest_bytes),
            newest_at = max(newest_at, excluded.newest_at),
            first_id = min(first_id, excluded.first_id);
END;

CREATE TRIGGER backup_chart_sums_after_update AFTER UPDATE ON backups
BEGIN
    DELETE FROM backup_chart_sums
    WHERE instance = OLD.instance AND database = OLD.database
      AND backup_type = OLD.backup_type AND interval_start = COALESCE(unixepoch(OLD.finished_at), 0) / 43200 * 43200;
    INSERT INTO backup_chart_sums
    SELECT instance, database, backup_type, COALESCE(unixepoch(OLD.finished_at), 0) / 43200 * 43200,
           COUNT(*), MAX(size_bytes), MAX(finished_at), MIN(id)
    FROM backups
    WHERE instance = OLD.instance AND database = OLD.database
      AND backup_type = OLD.backup_type
      AND finished_at >= strftime('%Y-%m-%dT%H:%M:%S.000Z', COALESCE(unixepoch(OLD.finished_at), 0) / 43200 * 43200, 'unixepoch')
      AND finished_at < strftime('%Y-%m-%dT%H:%M:%S.000Z', COALESCE(unixepoch(OLD.finished_at), 0) / 43200 * 43200 + 43200, 'unixepoch')
    GROUP BY instance, database, backup_type;
    DELETE FROM backup_chart_sums
    WHERE instance = NEW.instance AND database = NEW.database
      AND backup_type = NEW.backup_type AND interval_start = COALESCE(unixepoch(NEW.finished_at), 0) / 43200 * 43200;
    INSERT INTO backup_chart_sums
    SELECT instance, database, backup_type, COALESCE(unixepoch(NEW.finished_at), 0) / 43200 * 43200,
           COUNT(*), MAX(size_bytes), MAX(finished_at), MIN(id)
    FROM backups
    WHERE instance = NEW.instance AND database = NEW.database
      AND backup_type = NEW.backup_type
      AND finished_at >= strftime('%Y-%m-%dT%H:%M:%S.000Z', COALESCE(unixepoch(NEW.finished_at), 0) / 43200 * 43200, 'unixepoch')
      AND finished_at < strftime('%Y-%m-%dT%H:%M:%S.000Z', COALESCE(unixepoch(NEW.finished_at), 0) / 43200 * 43200 + 43200, 'unixepoch')
    GROUP BY instance, database, backup_type;
END;

CREATE TRIGGER backup_chart_sums_after_delete AFTER DELETE ON backups
BEGIN
    DELETE FROM backup_chart_sums
    WHERE instance = OLD.instance AND database = OLD.database
      AND backup_type = OLD.backup_type AND interval_start = COALESCE(unixepoch(OLD.finished_at), 0) / 43200 * 43200;
    INSERT INTO backup_chart_sums
    SELECT instance, database, backup_type, COALESCE(unixepoch(OLD.finished_at), 0) / 43200 * 43200,
           COUNT(*), MAX(size_bytes), MAX(finished_at), MIN(id)
    FROM backups
    WHERE instance = OLD.instance AND database = OLD.database
      AND backup_type = OLD.backup_type
      AND finished_at >= strftime('%Y-%m-%dT%H:%M:%S.000Z', COALESCE(unixepoch(OLD.finished_at), 0) / 43200 * 43200, 'unixepoch')
      AND finished_at < strftime('%Y-%m-%dT%H:%M:%S.000Z', COALESCE(unixepoch(OLD.finished_at), 0) / 43200 * 43200 + 43200, 'unixepoch')
    GROUP BY instance, database, backup_type;
END;

CREATE TRIGGER run_chart_sums_after_insert AFTER INSERT ON runs
WHEN NEW.status = 'succeeded'
BEGIN
    INSERT INTO run_chart_sums
    VALUES (NEW.instance, NEW.database, NEW.backup_type,
            COALESCE(unixepoch(NEW.started_at), 0) / 43200 * 43200,
            1, NEW.duration_ms, NEW.throughput_bps,
            CASE WHEN NEW.throughput_bps IS NULL THEN 0 ELSE 1 END,
            NEW.started_at, NEW.id)
    ON CONFLICT (instance, database, interval_start, backup_type) DO UPDATE
        SET run_count = run_count + 1,
            longest_ms = max(COALESCE(longest_ms, excluded.longest_ms),
                             COALESCE(excluded.longest_ms, longest_ms)),
            throughput_sum = CASE WHEN excluded.throughput_sum IS NULL THEN throughput_sum
                                  ELSE COALESCE(throughput_sum, 0) + excluded.throughput_sum
                             END,
            throughput_count = throughput_count + excluded.throughput_count,
            newest_at = max(newest_at, excluded.newest_at),
            first_id = min(first_id, excluded.first_id);
END;

-- Phase changes of running runs pass these by: a run's success is the update that
-- counts, and the sum of the interval it leaves, if any, is made again.
CREATE TRIGGER run_chart_sums_after_update_old AFTER UPDATE ON runs
WHEN OLD.status = 'succeeded'
BEGIN
    DELETE FROM run_chart_sums
    WHERE instance = OLD.instance AND database = OLD.database
      AND backup_type = OLD.backup_type AND interval_start = COALESCE(unixepoch(OLD.started_at), 0) / 43200 * 43200;
    INSERT INTO run_chart_sums
    SELECT instance, database, backup_type, COALESCE(unixepoch(OLD.started_at), 0) / 43200 * 43200,
           COUNT(*), MAX(duration_ms), SUM(throughput_bps), COUNT(throughput_bps),
           MAX(started_at), MIN(id)
    FROM runs
    WHERE instance = OLD.instance AND database = OLD.database
      AND backup_type = OLD.backup_type AND status = 'succeeded'
      AND started_at >= strftime('%Y-%m-%dT%H:%M:%S.000Z', COALESCE(unixepoch(OLD.started_at), 0) / 43200 * 43200, 'unixepoch')
      AND started_at < strftime('%Y-%m-%dT%H:%M:%S.000Z', COALESCE(unixepoch(OLD.started_at), 0) / 43200 * 43200 + 43200, 'unixepoch')
    GROUP BY instance, database, backup_type;
END;

CREATE TRIGGER run_chart_sums_after_update_new AFTER UPDATE ON runs
WHEN NEW.status = 'succeeded'
BEGIN
    DELETE FROM run_chart_sums
    WHERE instance = NEW.instance AND database = NEW.database
      AND backup_type = NEW.backup_type AND interval_start = COALESCE(unixepoch(NEW.started_at), 0) / 43200 * 43200;
    INSERT INTO run_chart_sums
    SELECT instance, database, backup_type, COALESCE(unixepoch(NEW.started_at), 0) / 43200 * 43200,
           COUNT(*), MAX(duration_ms), SUM(throughput_bps), COUNT(throughput_bps),
           MAX(started_at), MIN(id)
    FROM runs
    WHERE instance = NEW.instance AND database = NEW.database
      AND backup_type = NEW.backup_type AND status = 'succeeded'
      AND started_at >= strftime('%Y-%m-%dT%H:%M:%S.000Z', COALESCE(unixepoch(NEW.started_at), 0) / 43200 * 43200, 'unixepoch')
      AND started_at < strftime('%Y-%m-%dT%H:%M:%S.000Z', COALESCE(unixepoch(NEW.started_at), 0) / 43200 * 43200 + 43200, 'unixepoch')
    GROUP BY instance, database, backup_type;
END;

CREATE TRIGGER run_chart_sums_after_delete AFTER DELETE ON runs
WHEN OLD.status = 'succeeded'
BEGIN
    DELETE FROM run_chart_sums
    WHERE instance = OLD.instance AND database = OLD.database
      AND backup_type = OLD.backup_type AND interval_start = COALESCE(unixepoch(OLD.started_at), 0) / 43200 * 43200;
    INSERT INTO run_chart_sums
    SELECT instance, database, backup_type, COALESCE(unixepoch(OLD.started_at), 0) / 43200 * 43200,
           COUNT(*), MAX(duration_ms), SUM(throughput_bps), COUNT(throughput_bps),
           MAX(started_at), MIN(id)
    FROM runs
    WHERE instance = OLD.instance AND database = OLD.database
      AND backup_type = OLD.backup_type AND status = 'succeeded'
      AND started_at >= strftime('%Y-%m-%dT%H:%M:%S.000Z', COALESCE(unixepoch(OLD.started_at), 0) / 43200 * 43200, 'unixepoch')
      AND started_at < strftime('%Y-%m-%dT%H:%M:%S.000Z', COALESCE(unixepoch(OLD.started_at), 0) / 43200 * 43200 + 43200, 'unixepoch')
    GROUP BY instance, database, backup_type;
END;
