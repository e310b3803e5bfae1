-- Bearer tokens of the JSON API under /api/v1. A row stores the SHA-256 of the token,
-- never the token itself, so a copy of the catalogue does not let anyone call the API.

CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,          -- the actor in the audit log
    role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    token_hash    TEXT NOT NULL UNIQUE,          -- lower-case hex SHA-256 of the token
    created_at    TEXT NOT NULL,
    expires_at    TEXT,                          -- NULL: never expires
    last_used_at  TEXT
);
