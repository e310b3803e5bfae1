//! Secret references: the secrets file's permission check and format, environment
//! variables, and errors that name the reference but never a value.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use bakfleet::fleet::{Fleet, FleetError, Secret, SecretRef, Secrets, Service};

/// Writes a secrets file with `mode` into a new temporary directory.
fn secrets_file(text: &str, mode: u32) -> (tempfile::TempDir, PathBuf) {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("secrets.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    (directory, path)
}

/// Parses a minimal fleet file that names `secrets_file` and returns its service settings.
fn service_with(secrets_file: Option<&Path>) -> Service {
    let service_table = match secrets_file {
        Some(path) => format!(
            "[service]\nsecrets_file = {:?}\n",
            path.display().to_string()
        ),
        None => String::new(),
    };
    let text = format!(
        "{service_table}\n[[instance]]\nname = \"a\"\nhost = \"h\"\n\
         auth = {{ kind = \"sql\", user = \"u\", password_env = \"P\" }}\n\
         staging = {{ local = {{ server_path = \"/b\", dir = \"/b\" }} }}\n"
    );
    let fleet = Fleet::parse(&text, Path::new("/srv/fleet.toml")).unwrap();
    fleet.service
}

#[test]
fn secrets_file_mode_0644_is_rejected() {
    let (_directory, path) = secrets_file("files01 = \"hunter2\"\n", 0o644);
    let error = Secrets::load(&service_with(Some(&path))).unwrap_err();
    assert!(matches!(
        error,
        FleetError::SecretsPermissions { mode: 0o644, .. }
    ));
    let text = error.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("mode 0644"), "{text}");
    assert!(
        text.contains(&format!("chmod 600 {}", path.display())),
        "{text}"
    );
}

#[test]
fn secrets_file_mode_0640_is_rejected() {
    let (_directory, path) = secrets_file("files01 = \"hunter2\"\n", 0o640);
    let error = Secrets::load(&service_with(Some(&path))).unwrap_err();
    assert!(error.to_string().contains("mode 0640"), "{error}");
}

#[test]
fn secrets_file_mode_0600_is_accepted() {
    let (_directory, path) = secrets_file("files01 = \"hunter2\"\n", 0o600);
    let secrets = Secrets::load(&service_with(Some(&path))).unwrap();
    let reference = SecretRef::File("files01".to_string());
    let secret = secrets.resolve(&reference, "credential files01").unwrap();
    assert_eq!(secret.expose(), "hunter2");
}

#[test]
fn secrets_debug_hides_values() {
    let (_directory, path) = secrets_file("files01 = \"hunter2\"\n", 0o600);
    let secrets = Secrets::load(&service_with(Some(&path))).unwrap();
    let text = format!("{secrets:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("files01"), "{text}");
}

#[test]
fn secret_prints_as_stars() {
    let secret = Secret::new("hunter2".to_string());
    assert_eq!(format!("{secret}"), "***");
    assert_eq!(format!("{secret:?}"), "***");
    assert_eq!(secret.expose(), "hunter2");
}

#[test]
fn missing_secrets_key_names_key_and_context() {
    let (_directory, path) = secrets_file("files01 = \"hunter2\"\n", 0o600);
    let secrets = Secrets::load(&service_with(Some(&path))).unwrap();
    let reference = SecretRef::File("sales-prod".to_string());
    let error = secrets
        .resolve(&reference, "instance sales-prod auth")
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("secrets file key \"sales-prod\""), "{text}");
    assert!(text.contains("instance sales-prod auth"), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn secrets_file_non_string_names_line() {
    let (_directory, path) = secrets_file("a = \"x\"\nfiles01 = 12345\n", 0o600);
    let error = Secrets::load(&service_with(Some(&path))).unwrap_err();
    let text = error.to_string();
    let expected = format!(
        "{}:2:1: key `files01`: value must be a string, found integer",
        path.display()
    );
    assert!(text.starts_with(&expected), "{text}");
    assert!(!text.contains("12345"), "{text}");
}

#[test]
fn secrets_file_syntax_error_hides_value() {
    let (_directory, path) = secrets_file("files01 = \"hunter2\nother = 1\n", 0o600);
    let error = Secrets::load(&service_with(Some(&path))).unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with(&format!("{}:1:", path.display())),
        "{text}"
    );
    assert!(text.contains("invalid TOML syntax"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn missing_secrets_file_names_path() {
    let path = PathBuf::from("/nonexistent/bakfleet/secrets.toml");
    let error = Secrets::load(&service_with(Some(&path))).unwrap_err();
    assert!(matches!(error, FleetError::SecretsRead { .. }));
    assert!(error
        .to_string()
        .contains("/nonexistent/bakfleet/secrets.toml"));
}

#[test]
fn file_reference_without_secrets_file_fails() {
    let secrets = Secrets::load(&service_with(None)).unwrap();
    let reference = SecretRef::File("files01".to_string());
    let error = secrets
        .resolve(&reference, "credential files01")
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("no secrets file is configured"), "{text}");
    assert!(text.contains("service.secrets_file"), "{text}");
}

#[test]
fn env_reference_resolves_value() {
    let variable = "BAKFLEET_TEST_ENV_RESOLVES_VALUE";
    std::env::set_var(variable, "s3cret");
    let secrets = Secrets::load(&service_with(None)).unwrap();
    let reference = SecretRef::Env(variable.to_string());
    let secret = secrets.resolve(&reference, "instance a auth").unwrap();
    assert_eq!(secret.expose(), "s3cret");
}

#[test]
fn unset_env_names_variable_and_context() {
    let variable = "BAKFLEET_TEST_UNSET_VARIABLE";
    std::env::remove_var(variable);
    let secrets = Secrets::default();
    let reference = SecretRef::Env(variable.to_string());
    let error = secrets.resolve(&reference, "instance a auth").unwrap_err();
    let expected = "environment variable BAKFLEET_TEST_UNSET_VARIABLE (needed by instance a \
                    auth) is not set; set BAKFLEET_TEST_UNSET_VARIABLE in the environment of \
                    the bakfleet service";
    assert_eq!(error.to_string(), expected);
}

#[test]
fn empty_env_is_rejected() {
    let variable = "BAKFLEET_TEST_EMPTY_VARIABLE";
    std::env::set_var(variable, "");
    let reference = SecretRef::Env(variable.to_string());
    let error = Secrets::default()
        .resolve(&reference, "credential files01")
        .unwrap_err();
    assert!(error.to_string().contains("is empty"), "{error}");
}
