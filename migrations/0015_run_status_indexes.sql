-- Runs by status, for the queries that look for the few runs in one status among many.
-- On a fleet of 1,000 databases with 15-minute logs, a day holds about 96,000 runs, and
-- the overview's list of the day's failures read every one of them through
-- runs_by_start. These partial indexes hold only failed or running runs.
CREATE INDEX runs_failed_by_start ON runs (started_at) WHERE status = 'failed';

-- A start marks the runs that a stopped process left running as interrupted.
CREATE INDEX runs_running ON runs (instance, database) WHERE status = 'running';

-- Each alert pass lists the runs that finished since the previous pass.
CREATE INDEX runs_by_finish ON runs (finished_at);
