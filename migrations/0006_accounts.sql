-- Admin site accounts: users with a role, login sessions, failed logins for rate
-- limiting, and the audit log of every action and login.

CREATE TABLE users (
    id                   INTEGER PRIMARY KEY,
    name                 TEXT NOT NULL UNIQUE,
    role                 TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    password_hash        TEXT NOT NULL,          -- argon2id PHC string
    created_at           TEXT NOT NULL,
    password_changed_at  TEXT NOT NULL
);

-- A session row stores the SHA-256 of the cookie value, never the value itself, so a
-- copy of the catalogue does not let anyone log in.
CREATE TABLE sessions (
    id_hash       TEXT PRIMARY KEY,              -- lower-case hex SHA-256 of the cookie value
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    client        TEXT NOT NULL                  -- client address at login
);
CREATE INDEX sessions_by_user ON sessions (user_id);

-- Failed logins, counted per user name and per client address over a time window.
CREATE TABLE login_failures (
    id         INTEGER PRIMARY KEY,
    user_name  TEXT NOT NULL,                    -- as typed: it may name no user
    client     TEXT NOT NULL,
    at         TEXT NOT NULL
);
CREATE INDEX login_failures_by_user ON login_failures (user_name, at);
CREATE INDEX login_failures_by_client ON login_failures (client, at);

-- Who did what, to which target, when and from where. The user name is copied, so
-- entries outlive a removed user.
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,
    actor    TEXT NOT NULL,                      -- user name, or the name typed at a failed login
    action   TEXT NOT NULL,                      -- login, logout, login_failed, run, verify, ...
    target   TEXT,                               -- instance/database, backup id, user name
    outcome  TEXT NOT NULL CHECK (outcome IN ('ok', 'denied', 'failed')),
    client   TEXT,
    detail   TEXT
);
CREATE INDEX audit_log_by_time ON audit_log (at);
