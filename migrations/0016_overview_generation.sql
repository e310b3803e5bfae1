-- A counter that every change to the tables behind the fleet overview increments, in the
-- same transaction. The catalogue keeps its last overview reads in memory with the counter
-- they were read at, and reads again only when the counter has moved, so a fleet page
-- costs one small query while nothing changes.
CREATE TABLE overview_generation (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    value  INTEGER NOT NULL
);
INSERT INTO overview_generation (id, value) VALUES (1, 0);

CREATE TRIGGER overview_generation_instances_insert AFTER INSERT ON instances
BEGIN
    UPDATE overview_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER overview_generation_instances_update AFTER UPDATE ON instances
BEGIN
    UPDATE overview_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER overview_generation_instances_delete AFTER DELETE ON instances
BEGIN
    UPDATE overview_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER overview_generation_databases_insert AFTER INSERT ON databases
BEGIN
    UPDATE overview_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER overview_generation_databases_update AFTER UPDATE ON databases
BEGIN
    UPDATE overview_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER overview_generation_databases_delete AFTER DELETE ON databases
BEGIN
    UPDATE overview_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER overview_generation_runs_insert AFTER INSERT ON runs
BEGIN
    UPDATE overview_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER overview_generation_runs_update AFTER UPDATE ON runs
BEGIN
    UPDATE overview_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER overview_generation_runs_delete AFTER DELETE ON runs
BEGIN
    UPDATE overview_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER overview_generation_backups_insert AFTER INSERT ON backups
BEGIN
    UPDATE overview_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER overview_generation_backups_update AFTER UPDATE ON backups
BEGIN
    UPDATE overview_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER overview_generation_backups_delete AFTER DELETE ON backups
BEGIN
    UPDATE overview_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER overview_generation_latest_runs_insert AFTER INSERT ON latest_runs
BEGIN
    UPDATE overview_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER overview_generation_latest_runs_update AFTER UPDATE ON latest_runs
BEGIN
    UPDATE overview_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER overview_generation_latest_runs_delete AFTER DELETE ON latest_runs
BEGIN
    UPDATE overview_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER overview_generation_latest_backups_insert AFTER INSERT ON latest_backups
BEGIN
    UPDATE overview_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER overview_generation_latest_backups_update AFTER UPDATE ON latest_backups
BEGIN
    UPDATE overview_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER overview_generation_latest_backups_delete AFTER DELETE ON latest_backups
BEGIN
    UPDATE overview_generation SET value = value + 1 WHERE id = 1;
END;
