//! Backups marked as failed verification: the catalogue keeps the mark, and restore
//! plans, retention input, the overview and the RPO assessment leave such backups out
//! until the mark is cleared.

mod catalog_fixture;

use std::path::Path;

use bakfleet::backup::{BackupRecord, BackupType, Lsn};
use bakfleet::catalog::{Catalog, FailureKind};
use bakfleet::chain::Target;
use bakfleet::fleet::Fleet;
use bakfleet::integrity::{self, Depth};
use bakfleet::protection::{self, ProtectionState};
use bakfleet::restore_plan::{build_plan, PlanError, RestorePlan};
use bakfleet::restore_script::ScriptOptions;
use catalog_fixture::{add_backup, record, T0};
use time::{Duration, OffsetDateTime};

const INSTANCE: &str = "sales-prod";
const DATABASE: &str = "orders";

/// Builds a backup of sales-prod/orders that finished `minutes` after T0 and contains
/// the LSNs from `first` to `last`.
fn backup(backup_type: BackupType, minutes: i64, first: u128, last: u128) -> BackupRecord {
    let finish = T0 + Duration::minutes(minutes);
    let mut backup = record(INSTANCE, DATABASE, backup_type, finish, 100);
    backup.first_lsn = Lsn(first);
    backup.last_lsn = Lsn(last);
    backup.checkpoint_lsn = Lsn(first);
    backup
}

/// Ids of one database's backups: a full, three logs, a second full and a log that
/// continues the first full's chain past it.
struct Chain {
    full_1: i64,
    log_1: i64,
    log_2: i64,
    log_3: i64,
    full_2: i64,
    log_4: i64,
}

async fn add_chain(catalog: &Catalog) -> Chain {
    let mut ids = Vec::new();
    for backup in [
        backup(BackupType::Full, 0, 1_000, 1_100),
        backup(BackupType::Log, 15, 900, 2_000),
        backup(BackupType::Log, 30, 2_000, 3_000),
        backup(BackupType::Log, 45, 3_000, 4_000),
        backup(BackupType::Full, 60, 4_000, 4_100),
        backup(BackupType::Log, 75, 4_000, 5_000),
    ] {
        ids.push(add_backup(catalog, &backup).await.1);
    }
    Chain {
        full_1: ids[0],
        log_1: ids[1],
        log_2: ids[2],
        log_3: ids[3],
        full_2: ids[4],
        log_4: ids[5],
    }
}

async fn mark(catalog: &Catalog, backup_id: i64) {
    catalog
        .record_verification_failure(
            backup_id,
            FailureKind::HashMismatch,
            "SHA-256 differs",
            T0 + Duration::days(1),
        )
        .await
        .unwrap();
}

async fn plan(catalog: &Catalog, target: Target) -> Result<RestorePlan, PlanError> {
    let options = ScriptOptions::default();
    build_plan(
        catalog,
        Path::new("/srv/store"),
        INSTANCE,
        DATABASE,
        target,
        &options,
    )
    .await
}

fn member_ids(plan: &RestorePlan) -> Vec<i64> {
    plan.chain.members().map(|member| member.id).collect()
}

fn at(minutes: i64) -> Target {
    Target::At(T0 + Duration::minutes(minutes))
}

#[tokio::test]
async fn mark_keeps_first_finding_time() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let chain = add_chain(&catalog).await;
    let first = T0 + Duration::days(1);

    let mark = catalog
        .record_verification_failure(chain.log_2, FailureKind::Missing, "file missing", first)
        .await
        .unwrap();
    assert_eq!(mark.found_at, first);
    assert_eq!(mark.checked_at, first);

    let later = first + Duration::hours(6);
    let mark = catalog
        .record_verification_failure(chain.log_2, FailureKind::SizeMismatch, "size 4", later)
        .await
        .unwrap();
    assert_eq!(mark.found_at, first, "the first finding's time stays");
    assert_eq!(mark.checked_at, later);
    assert_eq!(mark.finding, FailureKind::SizeMismatch);
    assert_eq!(mark.detail, "size 4");
    assert_eq!(
        catalog.verification_failure(chain.log_2).await.unwrap(),
        Some(mark.clone())
    );

    let failed = catalog
        .failed_backups(Some(INSTANCE), Some(DATABASE))
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].backup.id, chain.log_2);
    assert!(catalog
        .failed_backups(Some(INSTANCE), Some("billing"))
        .await
        .unwrap()
        .is_empty());

    let cleared = catalog
        .clear_verification_failure(chain.log_2)
        .await
        .unwrap();
    assert_eq!(cleared, Some(mark));
    assert_eq!(
        catalog.verification_failure(chain.log_2).await.unwrap(),
        None
    );
    assert_eq!(
        catalog
            .clear_verification_failure(chain.log_2)
            .await
            .unwrap(),
        None,
        "clearing twice finds nothing"
    );
}

#[tokio::test]
async fn marked_backups_leave_restorable_lists() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let chain = add_chain(&catalog).await;
    mark(&catalog, chain.log_2).await;

    let restorable: Vec<i64> = catalog
        .restorable_backups(INSTANCE, DATABASE)
        .await
        .unwrap()
        .iter()
        .map(|backup| backup.id)
        .collect();
    assert!(!restorable.contains(&chain.log_2), "{restorable:?}");
    assert_eq!(restorable.len(), 5);
    let chain_facts = catalog
        .restorable_chain_backups(INSTANCE, DATABASE)
        .await
        .unwrap();
    assert!(chain_facts.iter().all(|backup| backup.id != chain.log_2));

    // The database page still lists it, with its finding.
    let listing = catalog
        .backup_listing(INSTANCE, DATABASE, None, 10)
        .await
        .unwrap();
    let listed = listing.iter().find(|row| row.id == chain.log_2).unwrap();
    assert_eq!(
        listed.failure.as_ref().map(|failure| failure.finding),
        Some(FailureKind::HashMismatch)
    );
    let good = listing.iter().find(|row| row.id == chain.log_3).unwrap();
    assert_eq!(good.failure, None);
}

#[tokio::test]
async fn overview_skips_marked_newest_backup() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let chain = add_chain(&catalog).await;
    let last_full = |overview: Vec<bakfleet::catalog::DatabaseOverview>| {
        overview[0].last_full.as_ref().map(|last| last.id)
    };
    assert_eq!(
        last_full(catalog.fleet_overview().await.unwrap()),
        Some(chain.full_2)
    );
    let generation = catalog.overview_generation().await.unwrap();

    mark(&catalog, chain.full_2).await;
    assert!(catalog.overview_generation().await.unwrap() > generation);
    assert_eq!(
        last_full(catalog.fleet_overview().await.unwrap()),
        Some(chain.full_1)
    );
    let database = catalog
        .database_overview(INSTANCE, DATABASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(database.last_full.map(|last| last.id), Some(chain.full_1));

    // With both fulls marked, none counts; pruning the older one changes nothing.
    mark(&catalog, chain.full_1).await;
    assert_eq!(last_full(catalog.fleet_overview().await.unwrap()), None);
    catalog
        .mark_pruned(chain.full_1, "expired", T0 + Duration::days(2))
        .await
        .unwrap();
    assert_eq!(last_full(catalog.fleet_overview().await.unwrap()), None);

    catalog
        .clear_verification_failure(chain.full_2)
        .await
        .unwrap();
    assert_eq!(
        last_full(catalog.fleet_overview().await.unwrap()),
        Some(chain.full_2)
    );
}

#[tokio::test]
async fn marking_older_backup_moves_generation() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let chain = add_chain(&catalog).await;
    let before = catalog.overview_generation().await.unwrap();

    mark(&catalog, chain.log_1).await;
    let marked = catalog.overview_generation().await.unwrap();
    catalog
        .clear_verification_failure(chain.log_1)
        .await
        .unwrap();
    let cleared = catalog.overview_generation().await.unwrap();

    assert!(marked > before);
    assert!(cleared > marked);
    let overview = catalog.fleet_overview().await.unwrap();
    assert_eq!(
        overview[0].last_log.as_ref().map(|last| last.id),
        Some(chain.log_4)
    );
}

#[tokio::test]
async fn plan_past_damaged_log_uses_later_full() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let chain = add_chain(&catalog).await;
    mark(&catalog, chain.log_2).await;

    let latest = plan(&catalog, Target::Latest).await.unwrap();
    assert_eq!(member_ids(&latest), [chain.full_2, chain.log_4]);
    assert_eq!(latest.chain.broken, None);
    assert_eq!(latest.stopped_by, None);
    let left_out: Vec<i64> = latest
        .failed_verification
        .iter()
        .map(|failed| failed.backup_id)
        .collect();
    assert_eq!(left_out, [chain.log_2]);
    let files: Vec<i64> = latest
        .script
        .files
        .iter()
        .map(|file| file.backup_id)
        .collect();
    assert!(!files.contains(&chain.log_2), "{files:?}");

    let after_full_2 = plan(&catalog, at(70)).await.unwrap();
    assert_eq!(member_ids(&after_full_2), [chain.full_2, chain.log_4]);
}

#[tokio::test]
async fn plan_behind_damaged_log_names_it() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let chain = add_chain(&catalog).await;
    mark(&catalog, chain.log_2).await;

    // Before the damaged log, the chain does not need it.
    let before = plan(&catalog, at(10)).await.unwrap();
    assert_eq!(member_ids(&before), [chain.full_1, chain.log_1]);

    for minutes in [20, 40] {
        let error = plan(&catalog, at(minutes)).await.unwrap_err();
        let PlanError::FailedLog {
            failed,
            restorable_until,
            ..
        } = &error
        else {
            panic!("{minutes} min: expected a failed log, got {error}");
        };
        assert_eq!(failed.backup_id, chain.log_2, "{minutes} min");
        assert_eq!(*restorable_until, T0 + Duration::minutes(15));
        let message = error.to_string();
        assert!(
            message.contains(&format!("backup #{}", chain.log_2)),
            "{message}"
        );
        assert!(
            message.contains("log backup of database [orders]"),
            "{message}"
        );
        assert!(message.contains("on instance sales-prod"), "{message}");
        assert!(
            message.contains("failed verification on 2024-05-02T10:00:00Z"),
            "{message}"
        );
        assert!(
            message.contains("latest point before it is 2024-05-01T10:15:00Z"),
            "{message}"
        );
        assert!(
            message.contains("bakfleet run sales-prod orders --type full"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn latest_plan_stops_at_damaged_log() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let chain = add_chain(&catalog).await;
    mark(&catalog, chain.log_2).await;
    mark(&catalog, chain.full_2).await;

    let latest = plan(&catalog, Target::Latest).await.unwrap();

    assert_eq!(member_ids(&latest), [chain.full_1, chain.log_1]);
    let broken = latest.chain.broken.as_ref().unwrap();
    assert_eq!(broken.after, chain.log_1);
    assert_eq!(broken.next, chain.log_3);
    assert_eq!(
        latest.stopped_by.as_ref().map(|failed| failed.backup_id),
        Some(chain.log_2)
    );
    let sql = bakfleet::cli::restore_plan::format_sql(&latest);
    assert!(
        sql.contains("-- WARNING: the log chain stops because backup #"),
        "{sql}"
    );
    assert!(sql.contains("--type full"), "{sql}");
    assert!(
        sql.contains(&format!("-- Left out: backup #{}", chain.full_2)),
        "{sql}"
    );
}

#[tokio::test]
async fn damaged_full_is_no_base() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let chain = add_chain(&catalog).await;
    mark(&catalog, chain.full_2).await;

    // The first full's logs run on past the damaged full.
    let latest = plan(&catalog, Target::Latest).await.unwrap();
    assert_eq!(
        member_ids(&latest),
        [
            chain.full_1,
            chain.log_1,
            chain.log_2,
            chain.log_3,
            chain.log_4
        ]
    );
    let after_full_2 = plan(&catalog, at(70)).await.unwrap();
    assert_eq!(after_full_2.chain.full.id, chain.full_1);

    mark(&catalog, chain.full_1).await;
    let error = plan(&catalog, Target::Latest).await.unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, PlanError::ChainWithoutFailed { .. }),
        "{message}"
    );
    assert!(
        message.contains("no full backup is catalogued"),
        "{message}"
    );
    assert!(
        message.contains(&format!("backup #{} (full backup", chain.full_1)),
        "{message}"
    );
}

#[tokio::test]
async fn plan_with_every_backup_damaged() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let (_, full_id) = add_backup(&catalog, &backup(BackupType::Full, 0, 1_000, 1_100)).await;
    mark(&catalog, full_id).await;

    let error = plan(&catalog, Target::Latest).await.unwrap_err();

    let message = error.to_string();
    assert!(matches!(error, PlanError::AllFailed { .. }), "{message}");
    assert!(message.contains("every catalogued backup"), "{message}");
    assert!(message.contains(&format!("backup #{full_id}")), "{message}");
}

/// Parses a fleet file whose only instance is sales-prod, with a daily full. It names
/// the database, which the test catalogue records only through its backups, because no
/// inventory of the instance is recorded.
fn fleet() -> Fleet {
    let text = r#"
[defaults]
schedule.full = "0 0 1 * * *"
schedule.diff = "off"
schedule.log = "off"
rpo = { full = "1d" }

[[instance]]
name = "sales-prod"
host = "sql01"
auth = { kind = "sql", user = "bakfleet", password_env = "PW" }
staging = { local = { server_path = "/var/opt/mssql/backup", dir = "/mnt/backup" } }
databases = { include = ["orders"] }
"#;
    Fleet::parse(text, Path::new("fleet.toml")).unwrap()
}

#[tokio::test]
async fn protection_skips_marked_full() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let now = OffsetDateTime::now_utc();
    let mut full = record(INSTANCE, DATABASE, BackupType::Full, now, 100);
    full.fetched_at = now;
    let (_, full_id) = add_backup(&catalog, &full).await;
    let fleet = fleet();
    let state = |assessed: Vec<protection::DatabaseProtection>| {
        assessed
            .iter()
            .find(|database| database.database == DATABASE)
            .map(|database| database.state)
    };
    assert_eq!(
        state(protection::assess(&fleet, &catalog, now).await.unwrap()),
        Some(ProtectionState::Ok)
    );

    mark(&catalog, full_id).await;
    assert_eq!(
        state(protection::assess(&fleet, &catalog, now).await.unwrap()),
        Some(ProtectionState::Missing)
    );
    let statuses = bakfleet::alert::rpo_statuses(&fleet, &catalog, now)
        .await
        .unwrap();
    let status = statuses
        .iter()
        .find(|status| status.database == DATABASE)
        .unwrap();
    assert_eq!(status.state, bakfleet::alert::RpoState::Missing);

    catalog.clear_verification_failure(full_id).await.unwrap();
    assert_eq!(
        state(protection::assess(&fleet, &catalog, now).await.unwrap()),
        Some(ProtectionState::Ok)
    );
}

/// Tells whether backup `backup_id` still carries a failed-verification mark.
async fn is_marked(catalog: &Catalog, backup_id: i64) -> bool {
    catalog
        .verification_failure(backup_id)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn clean_check_clears_only_marks_it_reads() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let chain = add_chain(&catalog).await;
    let cases = [
        (FailureKind::Missing, Depth::Hash),
        (FailureKind::SizeMismatch, Depth::Hash),
        (FailureKind::HashMismatch, Depth::Hash),
        (FailureKind::Unreadable, Depth::Structure),
    ];
    for (kind, clearing_depth) in cases {
        catalog
            .record_verification_failure(chain.log_2, kind, "found by a check", T0)
            .await
            .unwrap();
        let backup = catalog.backup(chain.log_2).await.unwrap().unwrap();

        // A size-only check, and a hash check for a damaged structure, keep the mark.
        for shallow in [Depth::Size, Depth::Hash] {
            if shallow == clearing_depth {
                continue;
            }
            let cleared = integrity::record_result(&catalog, &backup, None, shallow)
                .await
                .unwrap();
            assert!(cleared.is_none(), "{kind:?} cleared at {shallow:?}");
            assert!(
                is_marked(&catalog, chain.log_2).await,
                "{kind:?} at {shallow:?}"
            );
        }

        let cleared = integrity::record_result(&catalog, &backup, None, clearing_depth)
            .await
            .unwrap();
        assert!(cleared.is_some(), "{kind:?} kept at {clearing_depth:?}");
        assert!(!is_marked(&catalog, chain.log_2).await, "{kind:?}");
    }
}

#[tokio::test]
async fn store_history_skips_marked_backups() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let chain = add_chain(&catalog).await;
    let before = catalog.store_history(INSTANCE, DATABASE).await.unwrap();
    assert_eq!(before.newest_full.as_ref().unwrap().last_lsn, Lsn(4_100));
    assert_eq!(before.newest_log_last_lsn, Some(Lsn(5_000)));

    mark(&catalog, chain.full_2).await;
    mark(&catalog, chain.log_4).await;
    let after = catalog.store_history(INSTANCE, DATABASE).await.unwrap();

    // The next backup type decision then takes the first full as the newest, so a
    // differential on the marked one, or a log after the marked log, becomes a full.
    assert_eq!(after.newest_full.as_ref().unwrap().last_lsn, Lsn(1_100));
    assert_eq!(after.newest_log_last_lsn, Some(Lsn(4_000)));
}
