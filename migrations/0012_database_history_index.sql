-- A database page lists one database's newest backups of every type, and a restore plan
-- reads them oldest first. backups_by_database starts with backup_type, so both queries
-- sorted every backup of the database per request; with this index they read it in
-- finish-time order and stop at the page's limit.
CREATE INDEX backups_by_database_finish ON backups (instance, database, finished_at);
