//! API tokens in the catalogue: name, role, lifetime and the SHA-256 of each token.

use serde::Serialize;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

use super::decode::RowReader;
use super::timestamp::format_utc;
use super::{Catalog, CatalogError};
use crate::account::Role;

/// A token about to be stored. `token_hash` is the lower-case hex SHA-256 of the token.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub role: Role,
    pub token_hash: String,
    pub created_at: OffsetDateTime,
    /// `None` for a token that never expires.
    pub expires_at: Option<OffsetDateTime>,
}

/// A stored token without its hash, as `bakfleet token list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

const TOKEN_COLUMNS: &str = "id, name, role, created_at, expires_at, last_used_at";

impl Catalog {
    /// Stores a new token and returns its id, or `None` when the name is taken.
    pub async fn add_token(&self, token: &NewToken) -> Result<Option<i64>, CatalogError> {
        let _turn = self.write_turn().await;
        let result = sqlx::query(
            "INSERT INTO api_tokens (name, role, token_hash, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&token.name)
        .bind(token.role.as_str())
        .bind(&token.token_hash)
        .bind(format_utc(token.created_at))
        .bind(token.expires_at.map(format_utc))
        .execute(&self.pool)
        .await;
        match result {
            Ok(done) => Ok(Some(done.last_insert_rowid())),
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Ok(None),
            Err(source) => Err(CatalogError::Query {
                action: format!("add API token {:?}", token.name),
                source,
            }),
        }
    }

    /// Lists every token by name.
    pub async fn tokens(&self) -> Result<Vec<TokenRow>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY name"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query("list API tokens"))?;
        rows.iter().map(token_row).collect()
    }

    /// Returns the token whose SHA-256 is `token_hash`, or `None` when no token has it.
    pub async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRow>, CatalogError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = ?"
        )))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(CatalogError::query("read an API token"))?;
        row.as_ref().map(token_row).transpose()
    }

    /// Records when a token was last used.
    pub async fn touch_token(&self, id: i64, at: OffsetDateTime) -> Result<(), CatalogError> {
        let _turn = self.write_turn().await;
        sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
            .bind(format_utc(at))
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(CatalogError::query(format!(
                "record the use of API token {id}"
            )))?;
        Ok(())
    }

    /// Removes a token; returns false when no token has that name.
    pub async fn remove_token(&self, name: &str) -> Result<bool, CatalogError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query("DELETE FROM api_tokens WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(CatalogError::query(format!("remove API token {name:?}")))?;
        Ok(done.rows_affected() > 0)
    }
}

fn token_row(row: &SqliteRow) -> Result<TokenRow, CatalogError> {
    let reader = RowReader::new(row, "api_tokens", "id")?;
    let role: String = reader.get("role")?;
    let role: Role = role
        .parse()
        .map_err(|_| reader.invalid("role", role.clone(), "not admin, operator or viewer"))?;
    Ok(TokenRow {
        id: reader.id(),
        name: reader.get("name")?,
        role,
        created_at: reader.utc("created_at")?,
        expires_at: reader.optional_utc("expires_at")?,
        last_used_at: reader.optional_utc("last_used_at")?,
    })
}
