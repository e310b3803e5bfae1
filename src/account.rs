//! Admin site accounts: roles, user names and argon2id password hashes.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use rand::RngCore;
use serde::Serialize;

/// Minimum password length in characters. Length matters more than character classes
/// against guessing, so no other composition rule applies.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Maximum password length in bytes, so that a huge form field cannot keep argon2 busy.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Maximum user name length in characters.
const MAX_NAME_CHARS: usize = 64;

/// Salt length in bytes: 16 bytes is the length RFC 9106 recommends for argon2.
const SALT_BYTES: usize = 16;

/// Role of an admin site user. Each role includes the permissions of the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads every page.
    Viewer,
    /// Also starts backups, verifies stored files and downloads them.
    Operator,
    /// Also manages users and reads the audit log.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// Returns the name stored in the catalogue and typed on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AccountError;

    fn from_str(text: &str) -> Result<Role, AccountError> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| AccountError::InvalidRole(text.to_string()))
    }
}

/// Error of an account operation.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("invalid role {0:?}; use admin, operator or viewer")]
    InvalidRole(String),
    #[error("invalid user name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error(
        "password too short: {chars} characters; use at least {MIN_PASSWORD_CHARS}, \
         for example a few random words"
    )]
    PasswordTooShort { chars: usize },
    #[error("password too long: {bytes} bytes; use at most {MAX_PASSWORD_BYTES}")]
    PasswordTooLong { bytes: usize },
    #[error("cannot hash the password with argon2id: {0}")]
    Hash(String),
}

/// Checks a user name: 1 to 64 characters of letters, digits, `.`, `_`, `-` and `@`, so
/// that names read the same in URLs, logs and the audit log.
///
/// # Errors
/// [`AccountError::InvalidName`] with the rule the name breaks.
pub fn check_name(name: &str) -> Result<(), AccountError> {
    let invalid = |reason| AccountError::InvalidName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("the name is empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(invalid("the name is longer than 64 characters"));
    }
    let allowed = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    if !name.chars().all(allowed) {
        return Err(invalid(
            "use only letters, digits, '.', '_', '-' and '@' in user names",
        ));
    }
    Ok(())
}

/// Checks a new password's length.
///
/// # Errors
/// [`AccountError::PasswordTooShort`] under [`MIN_PASSWORD_CHARS`] characters,
/// [`AccountError::PasswordTooLong`] over [`MAX_PASSWORD_BYTES`] bytes.
pub fn check_password(password: &str) -> Result<(), AccountError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(AccountError::PasswordTooShort { chars });
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AccountError::PasswordTooLong {
            bytes: password.len(),
        });
    }
    Ok(())
}

/// Hashes a password with argon2id and the crate's default parameters (19 MiB of
/// memory, 2 passes, 1 lane in argon2 0.6), returning the PHC string the catalogue
/// stores. The parameters are in the string, so stronger ones later still verify old
/// hashes.
///
/// # Errors
/// [`AccountError::Hash`] when argon2 rejects its input.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let mut salt = [0u8; SALT_BYTES];
    rand::rng().fill_bytes(&mut salt);
    let hash = Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|error| AccountError::Hash(error.to_string()))?;
    Ok(hash.to_string())
}

/// Returns true when `password` matches the PHC string `stored`. A stored value that is
/// not a valid PHC string matches nothing.
pub fn verify_password(password: &str, stored: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(hash) = PasswordHash::new(stored) else {
        tracing::error!("a stored password hash is not a valid PHC string");
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &hash)
        .is_ok()
}

/// Verifies `password` against a fixed hash and discards the result. A login for an
/// unknown user calls it so that the reply takes as long as for a known user with a
/// wrong password, and timing does not tell which user names exist.
pub fn verify_against_dummy(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| {
        hash_password("dummy password for unknown users").expect("argon2 hashes a fixed password")
    });
    let _ = verify_password(password, dummy);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_same_password() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
    }

    #[test]
    fn hash_salts_each_password() {
        let first = hash_password("correct horse battery").unwrap();
        let second = hash_password("correct horse battery").unwrap();
        assert_ne!(first, second);
    }

    #[test]
    fn verify_rejects_invalid_stored_hash() {
        assert!(!verify_password("anything at all", "not a hash"));
    }

    #[test]
    fn password_minimum_length_enforced() {
        let error = check_password("short pass!").unwrap_err();
        assert!(error.to_string().contains("at least 12"), "{error}");
        assert!(check_password("twelve chars").is_ok());
    }

    #[test]
    fn name_rejects_slash_and_space() {
        assert!(check_name("alice").is_ok());
        assert!(check_name("a.b-c_d@corp").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn role_parses_and_orders() {
        assert_eq!("operator".parse::<Role>().unwrap(), Role::Operator);
        assert!("root".parse::<Role>().is_err());
        assert!(Role::Viewer < Role::Operator);
        assert!(Role::Operator < Role::Admin);
    }
}
