//! Passwords referenced from fleet.toml: environment variables or keys of a secrets file
//! outside git. fleet.toml itself never contains a password.

use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use toml::de::DeTable;
use toml::Spanned;

use super::error::{Diagnostic, Diagnostics, FleetError, LineIndex};
use super::Service;

/// The source of a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// Name of an environment variable of the bakfleet process (`password_env`).
    Env(String),
    /// Key in the secrets file that `service.secrets_file` names (`password_secret`).
    File(String),
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(variable) => write!(f, "environment variable {variable}"),
            SecretRef::File(key) => write!(f, "secrets file key {key:?}"),
        }
    }
}

/// A resolved password. `Debug` and `Display` print `***` so that it cannot reach a log
/// by accident; `expose` is the only way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value, for callers that obtain a password some other way (tests, prompts).
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// Returns the password text, for a login or an SMB/SSH client.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The contents of the secrets file, if one is configured.
#[derive(Default)]
pub struct Secrets {
    path: Option<PathBuf>,
    values: BTreeMap<String, Secret>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&String> = self.values.keys().collect();
        f.debug_struct("Secrets")
            .field("path", &self.path)
            .field("keys", &keys)
            .finish()
    }
}

impl Secrets {
    /// Loads the secrets file if `service.secrets_file` is set; without it, only
    /// environment references resolve.
    ///
    /// # Errors
    /// The file cannot be read. The file is readable by group or others, and the message
    /// names the path and mode and gives the `chmod 600` command. The file is not TOML of
    /// `name = "value"` lines.
    pub fn load(service: &Service) -> Result<Secrets, FleetError> {
        let Some(path) = &service.secrets_file else {
            return Ok(Secrets::default());
        };
        let read_error = |source| FleetError::SecretsRead {
            path: path.clone(),
            source,
        };
        let metadata = std::fs::metadata(path).map_err(read_error)?;
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(FleetError::SecretsPermissions {
                path: path.clone(),
                mode,
            });
        }
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        let values = parse_secrets(path, &text)?;
        Ok(Secrets {
            path: Some(path.clone()),
            values,
        })
    }

    /// Resolves a reference. `context` names what needs it (e.g. "instance sales-prod
    /// auth") and appears in the error, which never contains a value.
    ///
    /// # Errors
    /// The variable is unset, empty or not UTF-8; no secrets file is configured; the key
    /// is missing from the secrets file.
    pub fn resolve(&self, secret: &SecretRef, context: &str) -> Result<Secret, FleetError> {
        let unresolved = |problem: &str, hint: String| FleetError::SecretUnresolved {
            reference: secret.to_string(),
            context: context.to_string(),
            problem: problem.to_string(),
            hint,
        };
        match secret {
            SecretRef::Env(variable) => match std::env::var(variable) {
                Ok(value) if !value.is_empty() => Ok(Secret(value)),
                Ok(_) => Err(unresolved("is empty", set_variable_hint(variable))),
                Err(std::env::VarError::NotPresent) => {
                    Err(unresolved("is not set", set_variable_hint(variable)))
                }
                Err(std::env::VarError::NotUnicode(_)) => Err(unresolved(
                    "is not valid UTF-8",
                    set_variable_hint(variable),
                )),
            },
            SecretRef::File(key) => {
                let Some(path) = &self.path else {
                    let hint = "set service.secrets_file in fleet.toml".to_string();
                    return Err(unresolved(
                        "cannot be read: no secrets file is configured",
                        hint,
                    ));
                };
                match self.values.get(key) {
                    Some(value) => Ok(value.clone()),
                    None => {
                        let problem = format!("is not found in {}", path.display());
                        let hint = format!("add a line `{key} = \"...\"` to that file");
                        Err(unresolved(&problem, hint))
                    }
                }
            }
        }
    }
}

fn set_variable_hint(variable: &str) -> String {
    format!("set {variable} in the environment of the bakfleet service")
}

/// Parses `name = "value"` lines. Errors give the position and key but never the value
/// or the parser's own message, which could quote part of a value.
fn parse_secrets(path: &Path, text: &str) -> Result<BTreeMap<String, Secret>, FleetError> {
    let document = match DeTable::parse(text) {
        Ok(document) => document,
        Err(error) => {
            let offset = error.span().map_or(0, |span| span.start);
            let diagnostic = Diagnostic {
                file: path.to_path_buf(),
                position: Some(LineIndex::new(text).position(offset)),
                instance: None,
                key: None,
                message: "invalid TOML syntax".to_string(),
                hint: Some("write one `name = \"value\"` line per secret".to_string()),
            };
            return Err(FleetError::Invalid(vec![diagnostic]));
        }
    };
    let mut diagnostics = Diagnostics::new(path, text);
    let mut values = BTreeMap::new();
    for (key, value) in document.get_ref().iter() {
        let name = key.get_ref().to_string();
        match value.get_ref().as_str() {
            Some(text) => {
                values.insert(name, Secret(text.to_string()));
            }
            None => {
                let message = format!(
                    "value must be a string, found {}",
                    value.get_ref().type_str()
                );
                let hint = "quote the value";
                diagnostics.report(key.span().start, &name, message, hint);
            }
        }
    }
    diagnostics.finish(values)
}

/// Reads the `(password_env, password_secret)` pair of a table at `key_prefix`, which
/// must set exactly one of them; `table_offset` locates the error when neither is set.
/// `password_secret` also needs `service.secrets_file`.
pub(crate) fn password_ref(
    diagnostics: &mut Diagnostics,
    key_prefix: &str,
    table_offset: usize,
    (env, secret): (Option<&Spanned<String>>, Option<&Spanned<String>>),
    has_secrets_file: bool,
) -> Option<SecretRef> {
    let hint = "set exactly one of password_env (an environment variable) and \
                password_secret (a key in service.secrets_file)";
    match (env, secret) {
        (Some(variable), None) => {
            let key = format!("{key_prefix}password_env");
            super::value::text(diagnostics, &key, variable).map(SecretRef::Env)
        }
        (None, Some(name)) => {
            let key = format!("{key_prefix}password_secret");
            if !has_secrets_file {
                let message = "password_secret is set but no secrets file is configured";
                let hint = "set service.secrets_file, or use password_env";
                diagnostics.report(name.span().start, &key, message.to_string(), hint);
                return None;
            }
            super::value::text(diagnostics, &key, name).map(SecretRef::File)
        }
        (Some(_), Some(name)) => {
            let key = format!("{key_prefix}password_secret");
            let message = "both password_env and password_secret are set".to_string();
            diagnostics.report(name.span().start, &key, message, hint);
            None
        }
        (None, None) => {
            let key = format!("{key_prefix}password_env");
            let message = "no password source is set".to_string();
            diagnostics.report(table_offset, &key, message, hint);
            None
        }
    }
}
