use time::macros::datetime;
use time::Duration;

use super::*;
use crate::backup::Lsn;
use crate::chain::{plan, Target};

fn backup(id: i64, backup_type: BackupType, first: u128, last: u128, minute: i64) -> ChainBackup {
    ChainBackup {
        id,
        backup_type,
        first_lsn: Lsn(first),
        last_lsn: Lsn(last),
        checkpoint_lsn: Lsn(first),
        database_backup_lsn: Lsn(if backup_type == BackupType::Diff {
            100
        } else {
            0
        }),
        differential_base_lsn: None,
        differential_base_guid: None,
        is_copy_only: false,
        database_guid: None,
        backup_set_guid: None,
        finished_at: datetime!(2026-03-01 10:00 UTC) + Duration::minutes(minute),
    }
}

/// Full #1, diff #2, logs #3 and #4 of database `Sales`, from a Windows server at UTC+1.
fn sales_chain() -> (Vec<ChainBackup>, BTreeMap<i64, ScriptSource>) {
    let backups = vec![
        backup(1, BackupType::Full, 100, 110, 0),
        backup(2, BackupType::Diff, 120, 130, 10),
        backup(3, BackupType::Log, 105, 140, 20),
        backup(4, BackupType::Log, 140, 150, 30),
    ];
    let files = vec![
        BackupFile {
            logical_name: "Sales".to_string(),
            physical_name: r"D:\MSSQL\DATA\Sales.mdf".to_string(),
            file_type: "D".to_string(),
            file_number: 1,
            size_bytes: Some(8 << 20),
        },
        BackupFile {
            logical_name: "Sales_log".to_string(),
            physical_name: r"L:\MSSQL\LOG\Sales_log.ldf".to_string(),
            file_type: "L".to_string(),
            file_number: 2,
            size_bytes: Some(1 << 20),
        },
    ];
    let names = ["", "full.bak", "diff.bak", "log1.trn", "log2.trn"];
    let sources = (1..=4)
        .map(|id| {
            let source = ScriptSource {
                families: vec![SourceFamily {
                    path: format!(
                        "/srv/bakfleet/store/sales-prod/Sales/{}",
                        names[id as usize]
                    ),
                    size_bytes: 1000 * id as u64,
                    sha256: format!("{id:064x}"),
                }],
                has_checksums: id != 3,
                time_zone: Some(4),
                files: (id == 1).then(|| files.clone()),
            };
            (id, source)
        })
        .collect();
    (backups, sources)
}

#[test]
fn script_latest_without_stopat() {
    let (backups, sources) = sales_chain();
    let chain = plan(&backups, Target::Latest).unwrap();
    let script = write_script("Sales", &chain, &sources, &ScriptOptions::default()).unwrap();
    assert_eq!(script.stop_at_local, None);
    assert_eq!(script.files.len(), 4);
    insta::assert_snapshot!(script.to_sql());
}

#[test]
fn script_stopat_in_server_local_time() {
    let (backups, sources) = sales_chain();
    let target = datetime!(2026-03-01 10:25:30.250 UTC);
    let chain = plan(&backups, Target::At(target)).unwrap();
    let script = write_script("Sales", &chain, &sources, &ScriptOptions::default()).unwrap();
    assert_eq!(
        script.stop_at_local.as_deref(),
        Some("2026-03-01T11:25:30.250"),
        "UTC+1 from time_zone 4"
    );
    insta::assert_snapshot!(script.to_sql());
}

#[test]
fn script_as_new_name_moves_files() {
    let (backups, sources) = sales_chain();
    let chain = plan(&backups, Target::At(datetime!(2026-03-01 10:15 UTC))).unwrap();
    let options = ScriptOptions {
        restore_as: Some("Sales_copy]'".to_string()),
        move_to: Some(r"E:\restore\".to_string()),
        replace: true,
    };
    let script = write_script("Sales", &chain, &sources, &options).unwrap();
    assert_eq!(script.database, "Sales_copy]'");
    insta::assert_snapshot!(script.to_sql());
}

#[test]
fn script_as_new_name_keeps_folders() {
    let (backups, sources) = sales_chain();
    let chain = plan(&backups, Target::At(datetime!(2026-03-01 10:00 UTC))).unwrap();
    let options = ScriptOptions {
        restore_as: Some("Sales_test".to_string()),
        ..ScriptOptions::default()
    };
    let script = write_script("Sales", &chain, &sources, &options).unwrap();
    assert_eq!(script.statements.len(), 2, "full and recovery");
    assert_eq!(
        script.statements[0],
        r"RESTORE DATABASE [Sales_test] FROM DISK = N'/srv/bakfleet/store/sales-prod/Sales/full.bak' WITH MOVE N'Sales' TO N'D:\MSSQL\DATA\Sales_test_Sales.mdf', MOVE N'Sales_log' TO N'L:\MSSQL\LOG\Sales_test_Sales_log.ldf', CHECKSUM, NORECOVERY;"
    );
}

#[test]
fn script_without_file_list_names_backup() {
    let (backups, mut sources) = sales_chain();
    sources.get_mut(&1).unwrap().files = None;
    let chain = plan(&backups, Target::Latest).unwrap();
    let options = ScriptOptions {
        move_to: Some("/var/opt/mssql/data".to_string()),
        ..ScriptOptions::default()
    };
    let error = write_script("Sales", &chain, &sources, &options).unwrap_err();
    assert_eq!(
        error,
        ScriptError::MissingFileList {
            backup_id: 1,
            path: "/srv/bakfleet/store/sales-prod/Sales/full.bak".to_string()
        }
    );
    assert!(error.to_string().contains("full backup #1"));

    let without_move = write_script("Sales", &chain, &sources, &ScriptOptions::default());
    assert!(
        without_move.is_ok(),
        "no MOVE needed, so no file list needed"
    );
}

#[test]
fn script_unknown_time_zone_rejected() {
    let (backups, mut sources) = sales_chain();
    sources.get_mut(&4).unwrap().time_zone = Some(127);
    let chain = plan(&backups, Target::At(datetime!(2026-03-01 10:25 UTC))).unwrap();
    let error = write_script("Sales", &chain, &sources, &ScriptOptions::default()).unwrap_err();
    assert!(
        matches!(error, ScriptError::UnknownTimeZone { backup_id: 4, .. }),
        "{error:?}"
    );
}

#[test]
fn server_path_helpers_keep_separator() {
    assert_eq!(split_server_path(r"C:\a\b.mdf"), (r"C:\a", "b.mdf"));
    assert_eq!(split_server_path("/var/x.ldf"), ("/var", "x.ldf"));
    assert_eq!(join_server_path("/var/opt/", "x.mdf"), "/var/opt/x.mdf");
    assert_eq!(join_server_path(r"E:\r\", "x.mdf"), r"E:\r\x.mdf");
    assert_eq!(extension("a.b.ndf"), ".ndf");
    assert_eq!(extension("noext"), "");
}

#[test]
fn script_master_single_user_replace() {
    let backups = vec![backup(1, BackupType::Full, 100, 110, 0)];
    let (_, mut sources) = sales_chain();
    sources.retain(|id, _| *id == 1);
    let chain = plan(&backups, Target::Latest).unwrap();
    let script = write_script("master", &chain, &sources, &ScriptOptions::default()).unwrap();
    assert_eq!(script.statements.len(), 1, "{:?}", script.statements);
    assert!(
        script.statements[0].contains("WITH REPLACE"),
        "{}",
        script.statements[0]
    );
    assert!(!script.statements[0].contains("NORECOVERY"));
    assert!(script.to_sql().contains("single-user mode"));
}

#[test]
fn script_lists_every_family_in_order() {
    let (backups, mut sources) = sales_chain();
    let full = sources.get_mut(&1).unwrap();
    full.families = (1..=3)
        .map(|family| SourceFamily {
            path: format!("/store/Sales/full/f_{family}of3.bak"),
            size_bytes: 100 * family,
            sha256: format!("{family:064x}"),
        })
        .collect();
    let chain = plan(&backups, Target::Latest).unwrap();
    let script = write_script("Sales", &chain, &sources, &ScriptOptions::default()).unwrap();

    assert!(
        script.statements[0].starts_with(
            "RESTORE DATABASE [Sales] FROM DISK = N'/store/Sales/full/f_1of3.bak', \
             DISK = N'/store/Sales/full/f_2of3.bak', DISK = N'/store/Sales/full/f_3of3.bak' WITH"
        ),
        "{}",
        script.statements[0]
    );
    assert_eq!(script.files.len(), 6, "three families, a diff and two logs");
    let families: Vec<(u32, u32, u64)> = script.files[..3]
        .iter()
        .map(|file| (file.family_number, file.family_count, file.size_bytes))
        .collect();
    assert_eq!(families, [(1, 3, 100), (2, 3, 200), (3, 3, 300)]);
    assert!(script.files[..3].iter().all(|file| file.backup_id == 1));
    assert_eq!(
        (script.files[3].family_number, script.files[3].family_count),
        (1, 1)
    );
}
