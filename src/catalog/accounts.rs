//! Admin site accounts in the catalogue: users, sessions, failed logins and the audit log.

use serde::Serialize;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

use super::decode::RowReader;
use super::timestamp::format_utc;
use super::{Catalog, CatalogError};
use crate::account::Role;

/// A user as commands and pages show it, without the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRow {
    pub id: i64,
    pub name: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub password_changed_at: OffsetDateTime,
}

/// A session about to start. `id_hash` is the SHA-256 of the cookie value in hex.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id_hash: String,
    pub user_id: i64,
    pub csrf_token: String,
    pub client: String,
    pub at: OffsetDateTime,
}

/// A stored session with its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id_hash: String,
    pub user_name: String,
    pub role: Role,
    pub csrf_token: String,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
}

/// Failed logins in a window: how many, and when the newest happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCount {
    pub count: u32,
    pub latest: Option<OffsetDateTime>,
}

/// The end of an audited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditOutcome {
    Ok,
    /// The user lacked the role, or a check (CSRF, rate limit) rejected the request.
    Denied,
    Failed,
}

impl AuditOutcome {
    fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Ok => "ok",
            AuditOutcome::Denied => "denied",
            AuditOutcome::Failed => "failed",
        }
    }
}

/// An audit log entry to store.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    /// The user name, or the name typed at a failed login.
    pub actor: String,
    /// Action name: `login`, `login_failed`, `logout`, `run`, `verify`, `download`,
    /// `user_add`, `user_remove`, `user_password`.
    pub action: String,
    /// Target of the action: `instance/database`, a backup id or a user name.
    pub target: Option<String>,
    pub outcome: AuditOutcome,
    pub client: Option<String>,
    pub detail: Option<String>,
    pub at: OffsetDateTime,
}

/// A stored audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRow {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    pub client: Option<String>,
    pub detail: Option<String>,
}

const USER_COLUMNS: &str = "id, name, role, created_at, password_changed_at";

impl Catalog {
    /// Stores a new user and returns its id.
    ///
    /// # Errors
    /// [`CatalogError::UserExists`] when the name is taken.
    pub async fn add_user(
        &self,
        name: &str,
        role: Role,
        password_hash: &str,
        at: OffsetDateTime,
    ) -> Result<i64, CatalogError> {
        let _turn = self.write_turn().await;
        let now = format_utc(at);
        let result = sqlx::query(
            "INSERT INTO users (name, role, password_hash, created_at, password_changed_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(password_hash)
        .bind(&now)
        .bind(&now)
        .execute(&self.pool)
        .await;
        match result {
            Ok(done) => Ok(done.last_insert_rowid()),
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                Err(CatalogError::UserExists {
                    name: name.to_string(),
                })
            }
            Err(source) => Err(CatalogError::Query {
                action: format!("add user {name:?}"),
                source,
            }),
        }
    }

    /// Lists every user by name.
    pub async fn users(&self) -> Result<Vec<UserRow>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY name"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query("list users"))?;
        rows.iter().map(user_row).collect()
    }

    /// Returns a user and its password hash, or `None` for an unknown name.
    pub async fn user_with_hash(
        &self,
        name: &str,
    ) -> Result<Option<(UserRow, String)>, CatalogError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS}, password_hash FROM users WHERE name = ?"
        )))
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(CatalogError::query(format!("read user {name:?}")))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let user = user_row(&row)?;
        let hash = RowReader::new(&row, "users", "id")?.get("password_hash")?;
        Ok(Some((user, hash)))
    }

    /// Removes a user and its sessions; returns false when no such user exists.
    pub async fn remove_user(&self, name: &str) -> Result<bool, CatalogError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query("DELETE FROM users WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(CatalogError::query(format!("remove user {name:?}")))?;
        Ok(done.rows_affected() > 0)
    }

    /// Replaces a user's password hash and ends its sessions, so that a reset password
    /// logs out every session that used the old one. Returns false when no such user exists.
    pub async fn set_password(
        &self,
        name: &str,
        password_hash: &str,
        at: OffsetDateTime,
    ) -> Result<bool, CatalogError> {
        let _turn = self.write_turn().await;
        let action = || format!("change the password of user {name:?}");
        let mut transaction = self
            .pool
            .begin()
            .await
            .map_err(CatalogError::query(action()))?;
        let done = sqlx::query(
            "UPDATE users SET password_hash = ?, password_changed_at = ? WHERE name = ?",
        )
        .bind(password_hash)
        .bind(format_utc(at))
        .bind(name)
        .execute(&mut *transaction)
        .await
        .map_err(CatalogError::query(action()))?;
        sqlx::query("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?)")
            .bind(name)
            .execute(&mut *transaction)
            .await
            .map_err(CatalogError::query(action()))?;
        transaction
            .commit()
            .await
            .map_err(CatalogError::query(action()))?;
        Ok(done.rows_affected() > 0)
    }

    /// Counts users with the admin role.
    pub async fn admin_count(&self) -> Result<i64, CatalogError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin'")
            .fetch_one(&self.pool)
            .await
            .map_err(CatalogError::query("count admin users"))
    }

    /// Stores a new session.
    pub async fn create_session(&self, session: &NewSession) -> Result<(), CatalogError> {
        let _turn = self.write_turn().await;
        let at = format_utc(session.at);
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, client)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&session.id_hash)
        .bind(session.user_id)
        .bind(&session.csrf_token)
        .bind(&at)
        .bind(&at)
        .bind(&session.client)
        .execute(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "start a session for user id {}",
            session.user_id
        )))?;
        Ok(())
    }

    /// Returns the session whose cookie value hashes to `id_hash`, with its user.
    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRow>, CatalogError> {
        let row = sqlx::query(
            "SELECT sessions.rowid AS id, sessions.id_hash, users.name, users.role,
                    sessions.csrf_token, sessions.created_at, sessions.last_seen_at
             FROM sessions JOIN users ON users.id = sessions.user_id
             WHERE sessions.id_hash = ?",
        )
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(CatalogError::query("read a session"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let reader = RowReader::new(&row, "sessions", "id")?;
        let role: String = reader.get("role")?;
        Ok(Some(SessionRow {
            id_hash: reader.get("id_hash")?,
            user_name: reader.get("name")?,
            role: parse_role(&reader, role)?,
            csrf_token: reader.get("csrf_token")?,
            created_at: reader.utc("created_at")?,
            last_seen_at: reader.utc("last_seen_at")?,
        }))
    }

    /// Records activity on a session, which restarts its idle time.
    pub async fn touch_session(
        &self,
        id_hash: &str,
        at: OffsetDateTime,
    ) -> Result<(), CatalogError> {
        let _turn = self.write_turn().await;
        sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?")
            .bind(format_utc(at))
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map_err(CatalogError::query("record session activity"))?;
        Ok(())
    }

    /// Deletes one session, at logout or once it expired.
    pub async fn delete_session(&self, id_hash: &str) -> Result<(), CatalogError> {
        let _turn = self.write_turn().await;
        sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map_err(CatalogError::query("delete a session"))?;
        Ok(())
    }

    /// Deletes sessions idle since before `idle_before` or started before
    /// `started_before`, and returns how many it deleted.
    pub async fn delete_expired_sessions(
        &self,
        idle_before: OffsetDateTime,
        started_before: OffsetDateTime,
    ) -> Result<u64, CatalogError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query("DELETE FROM sessions WHERE last_seen_at < ? OR created_at < ?")
            .bind(format_utc(idle_before))
            .bind(format_utc(started_before))
            .execute(&self.pool)
            .await
            .map_err(CatalogError::query("delete expired sessions"))?;
        Ok(done.rows_affected())
    }

    /// Records a failed login for the name typed and the client address.
    pub async fn record_login_failure(
        &self,
        user_name: &str,
        client: &str,
        at: OffsetDateTime,
    ) -> Result<(), CatalogError> {
        let _turn = self.write_turn().await;
        sqlx::query("INSERT INTO login_failures (user_name, client, at) VALUES (?, ?, ?)")
            .bind(user_name)
            .bind(client)
            .bind(format_utc(at))
            .execute(&self.pool)
            .await
            .map_err(CatalogError::query("record a failed login"))?;
        Ok(())
    }

    /// Counts failed logins for a user name since `since`.
    pub async fn login_failures_of_user(
        &self,
        user_name: &str,
        since: OffsetDateTime,
    ) -> Result<FailureCount, CatalogError> {
        self.count_failures("user_name", user_name, since).await
    }

    /// Counts failed logins from a client address since `since`.
    pub async fn login_failures_of_client(
        &self,
        client: &str,
        since: OffsetDateTime,
    ) -> Result<FailureCount, CatalogError> {
        self.count_failures("client", client, since).await
    }

    async fn count_failures(
        &self,
        column: &'static str,
        value: &str,
        since: OffsetDateTime,
    ) -> Result<FailureCount, CatalogError> {
        let (count, latest): (i64, Option<String>) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            // `column` is one of two fixed names, never user input.
            "SELECT COUNT(*), MAX(at) FROM login_failures WHERE {column} = ? AND at >= ?"
        )))
        .bind(value)
        .bind(format_utc(since))
        .fetch_one(&self.pool)
        .await
        .map_err(CatalogError::query("count failed logins"))?;
        let latest = latest
            .map(|text| super::timestamp::parse_utc("login_failures", "at", 0, &text))
            .transpose()?;
        Ok(FailureCount {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            latest,
        })
    }

    /// Forgets the failed logins of a user name after it logged in, and those older than
    /// `before` for every name.
    pub async fn clear_login_failures(
        &self,
        user_name: &str,
        before: OffsetDateTime,
    ) -> Result<(), CatalogError> {
        let _turn = self.write_turn().await;
        sqlx::query("DELETE FROM login_failures WHERE user_name = ? OR at < ?")
            .bind(user_name)
            .bind(format_utc(before))
            .execute(&self.pool)
            .await
            .map_err(CatalogError::query("clear failed logins"))?;
        Ok(())
    }

    /// Appends an entry to the audit log.
    pub async fn record_audit(&self, entry: &NewAuditEntry) -> Result<(), CatalogError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, target, outcome, client, detail)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(format_utc(entry.at))
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(entry.outcome.as_str())
        .bind(&entry.client)
        .bind(&entry.detail)
        .execute(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "record {} by {} in the audit log",
            entry.action, entry.actor
        )))?;
        Ok(())
    }

    /// Returns the newest audit entry of `action` on `target`, such as the last "verify
    /// now" of a backup.
    pub async fn latest_audit(
        &self,
        action: &str,
        target: &str,
    ) -> Result<Option<AuditRow>, CatalogError> {
        let row = sqlx::query(
            "SELECT id, at, actor, action, target, outcome, client, detail
             FROM audit_log WHERE action = ? AND target = ? ORDER BY id DESC LIMIT 1",
        )
        .bind(action)
        .bind(target)
        .fetch_optional(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "read the last {action} of {target}"
        )))?;
        row.as_ref().map(audit_row).transpose()
    }

    /// Returns the newest audit log entries first, at most `limit`.
    pub async fn audit_entries(&self, limit: i64) -> Result<Vec<AuditRow>, CatalogError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, target, outcome, client, detail
             FROM audit_log ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query("read the audit log"))?;
        rows.iter().map(audit_row).collect()
    }
}

fn user_row(row: &SqliteRow) -> Result<UserRow, CatalogError> {
    let reader = RowReader::new(row, "users", "id")?;
    let role: String = reader.get("role")?;
    Ok(UserRow {
        id: reader.id(),
        name: reader.get("name")?,
        role: parse_role(&reader, role)?,
        created_at: reader.utc("created_at")?,
        password_changed_at: reader.utc("password_changed_at")?,
    })
}

fn parse_role(reader: &RowReader<'_>, text: String) -> Result<Role, CatalogError> {
    text.parse()
        .map_err(|_| reader.invalid("role", text, "not admin, operator or viewer"))
}

fn audit_row(row: &SqliteRow) -> Result<AuditRow, CatalogError> {
    let reader = RowReader::new(row, "audit_log", "id")?;
    Ok(AuditRow {
        id: reader.id(),
        at: reader.utc("at")?,
        actor: reader.get("actor")?,
        action: reader.get("action")?,
        target: reader.get("target")?,
        outcome: reader.get("outcome")?,
        client: reader.get("client")?,
        detail: reader.get("detail")?,
    })
}
