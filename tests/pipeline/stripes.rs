//! Striped backups: a policy with `files = 4` writes one media set of four families,
//! which bakfleet verifies, fetches, stores and catalogues as one backup, and whose
//! restore script names every family.

use bakfleet::backup::BackupType;
use bakfleet::chain::Target;
use bakfleet::integrity::{self, Depth, Finding, Scope};
use bakfleet::restore_script::ScriptOptions;

use crate::fixture::{FleetOptions, TestFleet, Transport, INSTANCE};
use crate::restore::{copy_plan_files, plan_for, run_statements, SERVER_STORE};
use crate::smb::succeeded;
use crate::target::skip_unless_simulator;

const FAMILIES: usize = 4;

/// Returns how many `DISK =` clauses a statement names.
fn disk_count(statement: &str) -> usize {
    statement.matches("DISK = N'").count()
}

async fn striped_fleet(transport: Transport) -> TestFleet {
    let options = FleetOptions {
        defaults: "files = 4\n",
        ..FleetOptions::default()
    };
    TestFleet::start_with(transport, &[("Sales", "FULL")], options).await
}

/// Takes a striped full backup of Sales and checks the store, the catalogue, the
/// statements and the restore script.
async fn check_striped_backup(fleet: &TestFleet) {
    let (backup_id, record) = succeeded(fleet.run("Sales", BackupType::Full).await);
    let catalog = &fleet.ctx.catalog;
    let row = catalog
        .backup(backup_id)
        .await
        .unwrap()
        .expect("backup row");
    let families = catalog.backup_families(&row).await.unwrap();

    assert_eq!(families.len(), FAMILIES, "{families:?}");
    assert_eq!(
        record.families, families,
        "the record lists the stored families"
    );
    let mut total = 0;
    for (index, family) in families.iter().enumerate() {
        let number = index + 1;
        assert_eq!(family.family_number as usize, number);
        assert!(
            family.store_path.ends_with(&format!("_{number}of4.bak")),
            "{}",
            family.store_path
        );
        let (size, sha256) = fleet.ctx.store.rehash(&family.store_path).await.unwrap();
        assert_eq!(size, family.size_bytes, "family {number} size");
        assert_eq!(sha256, family.sha256, "family {number} SHA-256");
        assert!(
            !fleet.staged_file_exists(&family.staged_path).await,
            "staged family {} deleted after every copy was durable",
            family.staged_path
        );
        total += size;
    }
    assert_eq!(row.size_bytes, total, "the backup's size sums its families");
    assert_eq!(row.store_path, families[0].store_path);
    assert_eq!(row.sha256, families[0].sha256);

    let database = fleet.db("Sales").to_string();
    let backups = catalog
        .restorable_backups(INSTANCE, &database)
        .await
        .unwrap();
    assert_eq!(backups.len(), 1, "one catalogue backup: {backups:?}");

    let scope = Scope {
        instance: Some(INSTANCE.to_string()),
        database: Some(database.clone()),
    };
    let report = integrity::check(catalog, &fleet.ctx.store, &scope, Depth::Structure)
        .await
        .unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(report.store_files, FAMILIES, "no family is an orphan");

    let third = fleet.ctx.store.absolute(&families[2].store_path);
    let mut bytes = std::fs::read(&third).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&third, &bytes).unwrap();
    let report = integrity::check(catalog, &fleet.ctx.store, &scope, Depth::Hash)
        .await
        .unwrap();
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    assert!(
        matches!(&report.findings[0], Finding::HashMismatch { path, .. } if *path == third),
        "{:?}",
        report.findings
    );
    bytes[last] ^= 0xff;
    std::fs::write(&third, &bytes).unwrap();
    // The repaired family clears the mark the damaged one left, so plans use it again.
    let report = integrity::check(catalog, &fleet.ctx.store, &scope, Depth::Hash)
        .await
        .unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(report.cleared.len(), 1, "{:?}", report.cleared);
}

/// Simulator-only: BACKUP and VERIFYONLY name four disks, and the restore plan's script
/// names all four in family order. With `run_restore`, the script runs on the instance, and
/// the first statement without its last family fails as SQL Server fails. Only the Linux
/// instance of the SFTP set-up reads the plan's Linux paths.
async fn check_striped_statements(fleet: &TestFleet, run_restore: bool) {
    if skip_unless_simulator(&fleet.target, "striped statements") {
        return;
    }
    let statements = fleet.target.statements();
    let backup = statements
        .iter()
        .find(|sql| sql.starts_with("BACKUP DATABASE"))
        .expect("a BACKUP statement");
    assert_eq!(disk_count(backup), FAMILIES, "{backup}");
    let verify = statements
        .iter()
        .find(|sql| sql.starts_with("RESTORE VERIFYONLY"))
        .expect("a VERIFYONLY statement");
    assert_eq!(disk_count(verify), FAMILIES, "{verify}");

    let database = fleet.db("Sales").to_string();
    let options = ScriptOptions {
        restore_as: Some(format!("{database} striped")),
        ..ScriptOptions::default()
    };
    let plan = plan_for(fleet, &database, Target::Latest, &options)
        .await
        .unwrap();
    assert_eq!(plan.script.files.len(), FAMILIES);
    let restore = &plan.script.statements[0];
    assert_eq!(disk_count(restore), FAMILIES, "{restore}");
    for (index, file) in plan.script.files.iter().enumerate() {
        assert!(file.path.starts_with(SERVER_STORE), "{}", file.path);
        let position = restore.find(&file.path).expect("the script names the file");
        if index > 0 {
            let previous = restore.find(&plan.script.files[index - 1].path).unwrap();
            assert!(previous < position, "families in order: {restore}");
        }
    }
    if !run_restore {
        return;
    }
    copy_plan_files(fleet, &plan);

    let last_disk = format!(", DISK = N'{}'", plan.script.files[FAMILIES - 1].path);
    let missing = restore.replace(&last_disk, "");
    assert_eq!(disk_count(&missing), FAMILIES - 1);
    let (_, code) = run_statements(fleet, &[missing]).await.unwrap_err();
    assert_eq!(code, 3132, "a missing family fails as in SQL Server");

    run_statements(fleet, &plan.script.statements)
        .await
        .unwrap_or_else(|(statement, code)| panic!("{statement}: server error {code}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smb_striped_backup_four_files() {
    let fleet = striped_fleet(Transport::Smb).await;
    check_striped_backup(&fleet).await;
    check_striped_statements(&fleet, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_striped_backup_four_files() {
    let fleet = striped_fleet(Transport::Sftp).await;
    check_striped_backup(&fleet).await;
    check_striped_statements(&fleet, true).await;
}
