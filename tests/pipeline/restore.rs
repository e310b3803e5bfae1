//! Restore plans and pruning on a catalogue built by real pipeline runs: the plan's
//! chain, its script run against the simulator, a gap rejected by bakfleet and by the
//! server, and prune keeping the catalogue and the store in step.

use std::path::Path;

use bakfleet::backup::BackupType;
use bakfleet::chain::Target;
use bakfleet::cli::prune::{prune, PruneAction};
use bakfleet::fleet::Retention;
use bakfleet::restore_plan::{build_plan, PlanError, RestorePlan};
use bakfleet::restore_script::ScriptOptions;
use time::{Duration, OffsetDateTime};

use crate::fixture::{TestFleet, Transport, INSTANCE};
use crate::smb::{succeeded, DATABASES};
use crate::support::files_under;
use crate::target::skip_unless_simulator;

/// Where the simulated Linux instance reads the copied store files: its staging folder.
pub(crate) const SERVER_STORE: &str = "/var/opt/mssql/backup/restore";

/// Copies the plan's store files under the staging folder, where the simulated instance
/// reads them as `SERVER_STORE/<store path>`, as a DBA would copy them to the server.
pub(crate) fn copy_plan_files(fleet: &TestFleet, plan: &RestorePlan) {
    for file in &plan.script.files {
        let relative = file
            .path
            .strip_prefix(&format!("{SERVER_STORE}/"))
            .expect("plan paths start with the server store root");
        let source = fleet.store_root().join(relative);
        let destination = fleet.staging_root().join("restore").join(relative);
        std::fs::create_dir_all(destination.parent().unwrap()).unwrap();
        std::fs::copy(&source, &destination)
            .unwrap_or_else(|error| panic!("copy {}: {error}", source.display()));
    }
}

/// Runs statements in order; returns the first failing statement and its error number.
pub(crate) async fn run_statements(
    fleet: &TestFleet,
    statements: &[String],
) -> Result<(), (String, u32)> {
    let mut client = fleet.target.connect().await;
    for statement in statements {
        let result = client.simple_query(statement.as_str()).await;
        let result = match result {
            Ok(stream) => stream.into_results().await.map(|_| ()),
            Err(error) => Err(error),
        };
        match result {
            Ok(()) => {}
            Err(tiberius::error::Error::Server(token)) => {
                return Err((statement.clone(), token.code()))
            }
            Err(other) => panic!("{statement}: session failed: {other}"),
        }
    }
    Ok(())
}

pub(crate) async fn plan_for(
    fleet: &TestFleet,
    database: &str,
    target: Target,
    options: &ScriptOptions,
) -> Result<RestorePlan, PlanError> {
    build_plan(
        &fleet.ctx.catalog,
        Path::new(SERVER_STORE),
        INSTANCE,
        database,
        target,
        options,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_plan_script_restores_chain() {
    let fleet = TestFleet::start(Transport::Sftp, DATABASES).await;
    if skip_unless_simulator(&fleet.target, "restore_plan_script_restores_chain") {
        return;
    }
    let database = fleet.db("Sales").to_string();
    let (full_id, _) = succeeded(fleet.run("Sales", BackupType::Full).await);
    let (_log0_id, _) = succeeded(fleet.run("Sales", BackupType::Log).await);
    let (diff_id, _) = succeeded(fleet.run("Sales", BackupType::Diff).await);
    let (log1_id, log1) = succeeded(fleet.run("Sales", BackupType::Log).await);
    let (log2_id, _) = succeeded(fleet.run("Sales", BackupType::Log).await);

    let files = fleet.ctx.catalog.backup_files(full_id).await.unwrap();
    let files = files.expect("the history stage stored msdb.dbo.backupfile");
    let types: Vec<&str> = files.iter().map(|f| f.file_type.as_str()).collect();
    assert_eq!(types, vec!["D", "L"], "{files:?}");

    let options = ScriptOptions {
        restore_as: Some(format!("{database} copy")),
        ..ScriptOptions::default()
    };
    let latest = plan_for(&fleet, &database, Target::Latest, &options)
        .await
        .unwrap();
    let ids: Vec<i64> = latest.chain.members().map(|b| b.id).collect();
    assert_eq!(ids, vec![full_id, diff_id, log1_id, log2_id]);
    assert_eq!(latest.chain.broken, None);
    assert_eq!(latest.script.statements.len(), 5);
    assert!(
        latest.script.statements[0].contains("MOVE N'"),
        "{}",
        latest.script.statements[0]
    );

    copy_plan_files(&fleet, &latest);
    run_statements(&fleet, &latest.script.statements)
        .await
        .unwrap_or_else(|(statement, code)| panic!("{statement}: server error {code}"));

    // A point inside log 1: the script stops there with STOPAT.
    let target = finished_utc(&log1) - Duration::milliseconds(1);
    let options = ScriptOptions {
        restore_as: Some(format!("{database} at")),
        ..ScriptOptions::default()
    };
    let at = plan_for(&fleet, &database, Target::At(target), &options)
        .await
        .unwrap();
    let ids: Vec<i64> = at.chain.members().map(|b| b.id).collect();
    assert_eq!(ids, vec![full_id, diff_id, log1_id]);
    assert!(
        at.script.statements[2].contains("STOPAT = N'"),
        "{}",
        at.script.statements[2]
    );
    copy_plan_files(&fleet, &at);
    run_statements(&fleet, &at.script.statements)
        .await
        .unwrap_or_else(|(statement, code)| panic!("{statement}: server error {code}"));
}

/// Returns a log's finish time in UTC, as the catalogue stores it.
fn finished_utc(record: &bakfleet::backup::BackupRecord) -> OffsetDateTime {
    let steps = record.time_zone.expect("the simulator records a time zone");
    let offset = time::UtcOffset::from_whole_seconds(i32::from(steps) * 15 * 60).unwrap();
    record
        .backup_finish
        .assume_offset(offset)
        .to_offset(time::UtcOffset::UTC)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_plan_rejects_log_gap() {
    let fleet = TestFleet::start(Transport::Sftp, DATABASES).await;
    if skip_unless_simulator(&fleet.target, "restore_plan_rejects_log_gap") {
        return;
    }
    let database = fleet.db("Sales").to_string();
    let (full_id, _) = succeeded(fleet.run("Sales", BackupType::Full).await);
    let (log1_id, _) = succeeded(fleet.run("Sales", BackupType::Log).await);
    let (log2_id, _) = succeeded(fleet.run("Sales", BackupType::Log).await);
    let (log3_id, log3) = succeeded(fleet.run("Sales", BackupType::Log).await);

    // Log 2 leaves the catalogue: the chain has a gap between logs 1 and 3.
    let now = OffsetDateTime::now_utc();
    fleet
        .ctx
        .catalog
        .mark_pruned(log2_id, "test gap", now)
        .await
        .unwrap();
    let options = ScriptOptions {
        restore_as: Some(format!("{database} gap")),
        ..ScriptOptions::default()
    };
    let error = plan_for(&fleet, &database, Target::At(finished_utc(&log3)), &options)
        .await
        .unwrap_err();
    let PlanError::Gap { broken, .. } = &error else {
        panic!("expected a gap, got {error}");
    };
    assert_eq!((broken.after, broken.next), (log1_id, log3_id));
    let message = error.to_string();
    assert!(message.contains(&format!("backup #{log1_id}")), "{message}");
    assert!(message.contains(&format!("backup #{log3_id}")), "{message}");

    // Forced anyway, the server rejects log 3 with 4305 (log too recent to apply).
    let latest = plan_for(&fleet, &database, Target::Latest, &options)
        .await
        .unwrap();
    let ids: Vec<i64> = latest.chain.members().map(|b| b.id).collect();
    assert_eq!(ids, vec![full_id, log1_id], "latest stops before the gap");
    let log3_row = fleet.ctx.catalog.backup(log3_id).await.unwrap().unwrap();
    let log3_path = format!("{SERVER_STORE}/{}", log3_row.store_path);
    let source = fleet.store_root().join(&log3_row.store_path);
    let destination = fleet
        .staging_root()
        .join("restore")
        .join(&log3_row.store_path);
    std::fs::create_dir_all(destination.parent().unwrap()).unwrap();
    std::fs::copy(source, destination).unwrap();
    copy_plan_files(&fleet, &latest);

    let mut forced = latest.script.statements.clone();
    let recovery = forced.pop().unwrap();
    forced.push(bakfleet::mssql::tsql::restore_statement(
        bakfleet::mssql::tsql::RestoreKind::Log,
        &format!("{database} gap"),
        &[log3_path.as_str()],
        &bakfleet::mssql::tsql::RestoreOptions::default(),
    ));
    forced.push(recovery);
    let (statement, code) = run_statements(&fleet, &forced).await.unwrap_err();
    assert_eq!(code, 4305, "{statement}");
    assert!(statement.contains("RESTORE LOG"), "{statement}");
    assert_eq!(log3.backup_type, BackupType::Log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_deletes_only_expired_files() {
    let fleet = TestFleet::start(Transport::Sftp, DATABASES).await;
    let mut ids = Vec::new();
    for backup_type in [
        BackupType::Full,
        BackupType::Log,
        BackupType::Full,
        BackupType::Log,
        BackupType::Log,
    ] {
        let (id, _) = succeeded(fleet.run("Sales", backup_type).await);
        ids.push(id);
    }
    let mut settings = (*fleet.ctx.fleet).clone();
    for instance in &mut settings.instances {
        instance.retention = Retention {
            full_days: 0,
            keep_full: 1,
        };
    }
    let now = OffsetDateTime::now_utc() + Duration::days(1);
    let catalog = &fleet.ctx.catalog;

    let dry_run = prune(catalog, &settings, now, true).await.unwrap();
    let would_delete: Vec<i64> = dry_run
        .lines
        .iter()
        .filter(|line| line.action == PruneAction::WouldDelete)
        .map(|line| line.backup_id)
        .collect();
    assert_eq!(
        would_delete,
        vec![ids[0], ids[1]],
        "the first full and its log"
    );
    assert_eq!(
        files_under(fleet.store_root()).len(),
        5,
        "dry run deletes nothing"
    );

    // A prune that stopped after marking the first full: the next prune deletes its
    // file first, then applies retention to the rest.
    let first_full = catalog.backup(ids[0]).await.unwrap().unwrap();
    catalog.mark_pruned(ids[0], "expired", now).await.unwrap();
    assert!(fleet.store_root().join(&first_full.store_path).is_file());

    let report = prune(catalog, &settings, now, false).await.unwrap();
    assert_eq!(report.finished_prunes, 1);
    assert!(!fleet.store_root().join(&first_full.store_path).exists());
    assert!(catalog.unfinished_prunes().await.unwrap().is_empty());
    let deleted: Vec<i64> = report
        .lines
        .iter()
        .filter(|line| line.action == PruneAction::Deleted)
        .map(|line| line.backup_id)
        .collect();
    assert_eq!(deleted, vec![ids[1]], "the log of the first full");

    // The catalogue's restorable backups and the store's files are the same set.
    let database = fleet.db("Sales");
    let restorable = catalog
        .restorable_backups(INSTANCE, database)
        .await
        .unwrap();
    let restorable_ids: Vec<i64> = restorable.iter().map(|row| row.id).collect();
    assert_eq!(restorable_ids, ids[2..].to_vec());
    let mut expected: Vec<_> = restorable
        .iter()
        .map(|row| fleet.store_root().join(&row.store_path))
        .collect();
    expected.sort();
    let mut stored = files_under(fleet.store_root());
    stored.sort();
    assert_eq!(stored, expected);

    // A second prune has nothing left to do.
    let again = prune(catalog, &settings, now, false).await.unwrap();
    assert!(again
        .lines
        .iter()
        .all(|line| line.action == PruneAction::Keep));
    assert_eq!(again.finished_prunes, 0);
}
