//! Bearer tokens of the JSON API: random 256-bit secrets with a `bkf_` prefix, of which
//! the catalogue stores only the SHA-256, each with a name, a role and an optional expiry.

use rand::RngCore;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::account::{self, AccountError, Role};
use crate::catalog::{Catalog, CatalogError, NewToken, TokenRow};

/// Prefix of every token, so that secret scanners and readers of a log recognise one.
pub const TOKEN_PREFIX: &str = "bkf_";

/// Random bytes in a token: 256 bits.
const TOKEN_BYTES: usize = 32;

/// Maximum lifetime `--expires` accepts, in days: ten years.
pub const MAX_EXPIRY_DAYS: u32 = 3650;

/// Error of a token command.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("invalid token name: {0}")]
    InvalidName(#[source] AccountError),
    #[error("API token {name:?} already exists; remove it first with `bakfleet token remove {name}`, or choose another name")]
    NameTaken { name: String },
    #[error("API token {name:?} not found; `bakfleet token list` lists the tokens")]
    NotFound { name: String },
    #[error("invalid expiry of {days} days; use 1 to {MAX_EXPIRY_DAYS} days, or leave --expires out for a token that never expires")]
    InvalidExpiry { days: u32 },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// A token just issued: the secret, shown once, and its stored row.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub secret: String,
    pub row: TokenRow,
}

/// Generates a token: [`TOKEN_PREFIX`] followed by 256 random bits in lower-case hex.
pub fn generate() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// Returns the lower-case hex SHA-256 of a token, the form the catalogue stores.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Creates a token named `name` with `role`, valid for `expires_days` days from `now` or
/// without expiry, and stores its hash.
///
/// # Errors
/// An invalid name (the rules of user names apply) or expiry, a name already taken, or a
/// catalogue failure.
pub async fn issue(
    catalog: &Catalog,
    name: &str,
    role: Role,
    expires_days: Option<u32>,
    now: OffsetDateTime,
) -> Result<IssuedToken, TokenError> {
    account::check_name(name).map_err(TokenError::InvalidName)?;
    let expires_at = match expires_days {
        None => None,
        Some(days) if (1..=MAX_EXPIRY_DAYS).contains(&days) => {
            Some(now + time::Duration::days(i64::from(days)))
        }
        Some(days) => return Err(TokenError::InvalidExpiry { days }),
    };

    let secret = generate();
    let token = NewToken {
        name: name.to_string(),
        role,
        token_hash: hash(&secret),
        created_at: now,
        expires_at,
    };
    let Some(id) = catalog.add_token(&token).await? else {
        return Err(TokenError::NameTaken {
            name: name.to_string(),
        });
    };
    let row = TokenRow {
        id,
        name: token.name,
        role,
        created_at: now,
        expires_at,
        last_used_at: None,
    };
    Ok(IssuedToken { secret, row })
}

/// Removes the token named `name`.
///
/// # Errors
/// [`TokenError::NotFound`] when no token has that name, or a catalogue failure.
pub async fn revoke(catalog: &Catalog, name: &str) -> Result<(), TokenError> {
    if !catalog.remove_token(name).await? {
        return Err(TokenError::NotFound {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Returns the token that `secret` belongs to when it exists and has not expired at `now`.
///
/// # Errors
/// A catalogue failure.
pub async fn authenticate(
    catalog: &Catalog,
    secret: &str,
    now: OffsetDateTime,
) -> Result<Option<TokenRow>, CatalogError> {
    if !secret.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    let Some(token) = catalog.token_by_hash(&hash(secret)).await? else {
        return Ok(None);
    };
    if token.expires_at.is_some_and(|expires_at| expires_at <= now) {
        return Ok(None);
    }
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_has_prefix_and_256_bits() {
        let secret = generate();
        let digits = secret.strip_prefix(TOKEN_PREFIX).expect("prefix");
        assert_eq!(digits.len(), 64);
        assert!(digits.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(generate(), secret);
    }

    #[tokio::test]
    async fn authenticate_rejects_expired_token() {
        let catalog = Catalog::open_in_memory().await.unwrap();
        let now = OffsetDateTime::now_utc();
        let issued = issue(&catalog, "ci", Role::Viewer, Some(1), now)
            .await
            .unwrap();
        let found = authenticate(&catalog, &issued.secret, now).await.unwrap();
        assert_eq!(found.map(|row| row.name), Some("ci".to_string()));
        let later = now + time::Duration::days(2);
        let expired = authenticate(&catalog, &issued.secret, later).await.unwrap();
        assert!(expired.is_none());
    }

    #[tokio::test]
    async fn issue_rejects_taken_name() {
        let catalog = Catalog::open_in_memory().await.unwrap();
        let now = OffsetDateTime::now_utc();
        issue(&catalog, "ci", Role::Viewer, None, now)
            .await
            .unwrap();
        let again = issue(&catalog, "ci", Role::Admin, None, now).await;
        assert!(matches!(again, Err(TokenError::NameTaken { .. })));
    }

    #[tokio::test]
    async fn revoke_removes_token() {
        let catalog = Catalog::open_in_memory().await.unwrap();
        let now = OffsetDateTime::now_utc();
        let issued = issue(&catalog, "ci", Role::Operator, None, now)
            .await
            .unwrap();
        revoke(&catalog, "ci").await.unwrap();
        assert!(authenticate(&catalog, &issued.secret, now)
            .await
            .unwrap()
            .is_none());
        assert!(matches!(
            revoke(&catalog, "ci").await,
            Err(TokenError::NotFound { .. })
        ));
    }
}
