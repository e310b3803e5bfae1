//! Staged files that failed runs left behind: `prune` deletes bakfleet's own files once
//! older than `service.staged_max_age_days`, lists them on a dry run, and never touches
//! younger files or files it did not name.

use std::path::Path;
use std::process::{Command, Output};

use bakfleet::backup::BackupType;
use bakfleet::store::backup_file_name;
use time::OffsetDateTime;

fn write_fleet(dir: &Path, staging: &Path) -> std::path::PathBuf {
    let fleet = dir.join("fleet.toml");
    std::fs::write(
        &fleet,
        format!(
            "[service]\nstore_dir = \"store\"\ncatalog = \"catalog.db\"\nstaged_max_age_days = 3\n\n\
             [[instance]]\nname = \"sales\"\nhost = \"127.0.0.1\"\n\
             auth = {{ kind = \"sql\", user = \"bakfleet\", password_env = \"UNUSED_PASSWORD\" }}\n\
             staging = {{ local = {{ server_path = '/var/opt/mssql/backup', dir = {:?} }} }}\n",
            staging.display().to_string()
        ),
    )
    .unwrap();
    fleet
}

fn prune(fleet: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .arg("--fleet")
        .arg(fleet)
        .arg("prune")
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run bakfleet prune")
}

#[test]
fn prune_deletes_old_staged_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("staging");
    std::fs::create_dir_all(staging.join("folder_full_20200101T000000.000Z.bak")).unwrap();
    let now = OffsetDateTime::now_utc();
    let old = backup_file_name("Sales", BackupType::Full, now - time::Duration::days(5));
    let young = backup_file_name("Sales", BackupType::Log, now - time::Duration::days(1));
    let foreign = "Sales_FULL_20200101.bak";
    for name in [old.as_str(), young.as_str(), foreign] {
        std::fs::write(staging.join(name), b"staged").unwrap();
    }
    let fleet = write_fleet(dir.path(), &staging);

    let dry = prune(&fleet, &["--dry-run"]);
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(dry.status.success(), "{dry:?}");
    assert!(text.contains("would delete staged file"), "{text}");
    assert!(text.contains(&old), "{text}");
    assert!(!text.contains(&young), "{text}");
    assert!(staging.join(&old).exists(), "a dry run deletes nothing");

    let real = prune(&fleet, &[]);
    let text = String::from_utf8_lossy(&real.stdout);
    assert!(real.status.success(), "{real:?}");
    assert!(
        text.contains("staged files left by failed runs: deleted 1"),
        "{text}"
    );
    assert!(
        !staging.join(&old).exists(),
        "the old staged file is deleted"
    );
    assert!(staging.join(&young).exists(), "a young staged file stays");
    assert!(
        staging.join(foreign).exists(),
        "a file bakfleet did not name stays"
    );
    assert!(
        staging
            .join("folder_full_20200101T000000.000Z.bak")
            .is_dir(),
        "folders stay"
    );
}
