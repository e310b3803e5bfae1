//! Header check between the store and the catalogue: reads the stored file's own backup
//! set header and checks that it describes the set msdb recorded, so the catalogue never
//! records LSNs or a GUID that the file contradicts.

use uuid::Uuid;

use super::fetch::Fetched;
use super::{JobContext, JobRequest, Phase, StageError};
use crate::mssql::BackupSetRow;

/// Compares the headers of each stored file, as the fetch's verification read them, with
/// the msdb row, and for a striped backup checks that the files are the families of one
/// media set in family order. On any difference every stored copy is removed, because none
/// will be catalogued, and the staged files are left for the DBA.
pub(crate) async fn check(
    ctx: &JobContext,
    request: &JobRequest,
    row: &BackupSetRow,
    fetched: &Fetched,
) -> Result<(), StageError> {
    let count = fetched.stored.len();
    let mut media_set = None;
    let mut failure = None;
    for (index, (stored, sets)) in fetched.stored.iter().zip(&fetched.sets).enumerate() {
        let mut differences = compare(&request.database, row, sets);
        differences.extend(compare_family(sets, index + 1, count, &mut media_set));
        if !differences.is_empty() {
            failure = Some(format!(
                "stored file {} does not match its msdb backup set: {}",
                stored.rel_path,
                differences.join("; ")
            ));
            break;
        }
    }
    let Some(mut cause) = failure else {
        tracing::info!(store_path = %fetched.stored[0].rel_path, files = count, "file headers agree with msdb");
        return Ok(());
    };

    match remove_all(ctx, fetched).await {
        Ok(()) => cause.push_str("; the stored copies were removed and the staged files kept"),
        Err(error) => cause.push_str(&format!("; {error}, delete it by hand")),
    }
    Err(StageError {
        phase: Phase::Header,
        cause,
    })
}

/// Removes every stored file of the backup; returns the first failure as text.
async fn remove_all(ctx: &JobContext, fetched: &Fetched) -> Result<(), String> {
    let mut first_error = None;
    for stored in &fetched.stored {
        let path = ctx.store.absolute(&stored.rel_path);
        if let Err(error) = tokio::fs::remove_file(&path).await {
            tracing::error!(path = %path.display(), %error, "could not remove the uncatalogued stored file");
            first_error.get_or_insert(format!(
                "removing the stored copy {} failed ({error})",
                path.display()
            ));
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Checks that a file is family `family` of a media set of `count` families, and that
/// every family names the media set of the first ("Media Sets, Media Families, and Backup
/// Sets (SQL Server)").
fn compare_family(
    sets: &[bakfile::BackupSet],
    family: usize,
    count: usize,
    media_set: &mut Option<Uuid>,
) -> Vec<String> {
    let Some(set) = sets.last() else {
        return Vec::new();
    };
    let mut differences = Vec::new();
    if usize::from(set.family_count.max(1)) != count {
        differences.push(format!(
            "media families: file {}, expected {count}",
            set.family_count
        ));
    }
    if usize::from(set.family_sequence.max(1)) != family {
        differences.push(format!(
            "family sequence: file {}, expected {family}",
            set.family_sequence
        ));
    }
    match media_set {
        None => *media_set = Some(set.media_set_guid),
        Some(first) if *first != set.media_set_guid => differences.push(format!(
            "media set GUID: file {}, family 1 {first}",
            set.media_set_guid
        )),
        Some(_) => {}
    }
    differences
}

/// Lists each field where the file's set and the msdb row differ, with both values.
fn compare(database: &str, row: &BackupSetRow, sets: &[bakfile::BackupSet]) -> Vec<String> {
    // A file written WITH INIT contains one set; after NOINIT appends, the msdb row's set is
    // the one with its GUID, and the last set is the best guess when none has it.
    let set = sets
        .iter()
        .find(|set| Some(set.backup_set_guid) == row.backup_set_uuid)
        .or(sets.last());
    let Some(set) = set else {
        return vec!["the file contains no backup set".to_string()];
    };

    let mut differences = Vec::new();
    if set.provisional {
        differences.push("the file has no trailing header copy, so it is incomplete".into());
    }
    // Database names compare without case because SQL Server's default collations are
    // case-insensitive, and msdb was queried with the configured spelling.
    if set.database_name.to_lowercase() != database.to_lowercase() {
        differences.push(format!(
            "database name: file {:?}, msdb {database:?}",
            set.database_name
        ));
    }
    let file_letter = set.backup_type.msdb_letter();
    if row.backup_type.trim() != file_letter.to_string() {
        differences.push(format!(
            "backup type: file {file_letter}, msdb {}",
            row.backup_type.trim()
        ));
    }
    let lsns = [
        ("FirstLSN", set.first_lsn, row.first_lsn),
        ("LastLSN", set.last_lsn, row.last_lsn),
        ("CheckpointLSN", set.checkpoint_lsn, row.checkpoint_lsn),
    ];
    for (name, file_lsn, msdb_lsn) in lsns {
        if file_lsn.to_numeric() != msdb_lsn.0 {
            differences.push(format!(
                "{name}: file {}, msdb {}",
                file_lsn.to_numeric(),
                msdb_lsn.0
            ));
        }
    }
    if Some(set.backup_set_guid) != row.backup_set_uuid {
        differences.push(format!(
            "backup set GUID: file {}, msdb {}",
            set.backup_set_guid,
            row.backup_set_uuid
                .map_or_else(|| "(none)".to_string(), |guid: Uuid| guid.to_string())
        ));
    }
    differences
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::Lsn;
    use time::macros::datetime;

    fn file_set() -> bakfile::BackupSet {
        let lsn = |block| bakfile::Lsn {
            vlf: 41,
            block,
            slot: 1,
        };
        bakfile::BackupSet {
            backup_type: bakfile::BackupType::Database,
            position: 1,
            database_name: "Sales".into(),
            server_name: "SQLHOST".into(),
            machine_name: "SQLHOST".into(),
            user_name: "svc".into(),
            backup_name: String::new(),
            backup_description: String::new(),
            software_major: 16,
            software_minor: 0,
            software_build: 1000,
            database_version: 957,
            compatibility_level: 160,
            first_lsn: lsn(100),
            last_lsn: lsn(200),
            checkpoint_lsn: lsn(100),
            database_backup_lsn: lsn(50),
            database_creation_date: datetime!(2024-01-01 00:00:00),
            backup_start_date: datetime!(2024-06-01 02:00:00),
            backup_finish_date: Some(datetime!(2024-06-01 02:00:05)),
            time_zone: 0,
            backup_size: 8192,
            has_checksums: true,
            is_copy_only: false,
            compressed: false,
            backup_set_guid: Uuid::from_u128(7),
            differential_base_guid: None,
            family_guid: Uuid::from_u128(8),
            binding_id: Uuid::from_u128(9),
            recovery_fork_id: Uuid::from_u128(10),
            recovery_model: bakfile::RecoveryModel::Full,
            collation: bakfile::Collation::default(),
            media_set_guid: Uuid::from_u128(11),
            family_count: 1,
            family_sequence: 1,
            provisional: false,
        }
    }

    fn msdb_row(set: &bakfile::BackupSet) -> BackupSetRow {
        let lsn = |value: bakfile::Lsn| Lsn(value.to_numeric());
        BackupSetRow {
            backup_set_id: 1,
            backup_set_uuid: Some(set.backup_set_guid),
            backup_type: "D ".into(),
            first_lsn: lsn(set.first_lsn),
            last_lsn: lsn(set.last_lsn),
            checkpoint_lsn: lsn(set.checkpoint_lsn),
            database_backup_lsn: lsn(set.database_backup_lsn),
            differential_base_lsn: None,
            database_guid: None,
            backup_start: set.backup_start_date,
            backup_finish: set.backup_start_date,
            time_zone: Some(0),
            backup_size: Some(set.backup_size),
            compressed_backup_size: None,
            has_backup_checksums: true,
            is_copy_only: false,
            recovery_model: Some("FULL".into()),
            software_version: None,
            physical_device_name: "/staging/Sales.bak".into(),
            family_sequence_number: Some(1),
        }
    }

    #[test]
    fn compare_accepts_matching_set() {
        let set = file_set();
        let differences = compare("sales", &msdb_row(&set), std::slice::from_ref(&set));
        assert!(differences.is_empty(), "{differences:?}");
    }

    #[test]
    fn compare_names_each_differing_field() {
        let set = file_set();
        let mut row = msdb_row(&set);
        row.backup_type = "L".into();
        row.checkpoint_lsn = Lsn(1);
        row.backup_set_uuid = None;
        let differences = compare("Orders", &row, &[set]);
        assert_eq!(
            differences,
            [
                "database name: file \"Sales\", msdb \"Orders\"",
                "backup type: file D, msdb L",
                "CheckpointLSN: file 41000000010000001, msdb 1",
                "backup set GUID: file 00000000-0000-0000-0000-000000000007, msdb (none)",
            ]
        );
    }

    #[test]
    fn compare_picks_set_by_guid() {
        let first = file_set();
        let second = bakfile::BackupSet {
            position: 2,
            backup_set_guid: Uuid::from_u128(99),
            ..file_set()
        };
        let row = msdb_row(&first);
        let differences = compare("Sales", &row, &[first, second]);
        assert!(differences.is_empty(), "{differences:?}");
    }

    #[test]
    fn compare_rejects_provisional_set() {
        let set = bakfile::BackupSet {
            provisional: true,
            ..file_set()
        };
        let differences = compare("Sales", &msdb_row(&set), &[set]);
        assert_eq!(differences.len(), 1, "{differences:?}");
        assert!(differences[0].contains("no trailing header copy"));
    }

    #[test]
    fn compare_family_checks_sequence_and_media_set() {
        let striped = |sequence, media| bakfile::BackupSet {
            family_count: 4,
            family_sequence: sequence,
            media_set_guid: Uuid::from_u128(media),
            ..file_set()
        };
        let mut media_set = None;
        assert!(compare_family(&[striped(1, 11)], 1, 4, &mut media_set).is_empty());
        assert!(compare_family(&[striped(2, 11)], 2, 4, &mut media_set).is_empty());
        assert_eq!(
            compare_family(&[striped(2, 11)], 3, 4, &mut media_set),
            ["family sequence: file 2, expected 3"]
        );
        let other = compare_family(&[striped(4, 12)], 4, 4, &mut media_set);
        assert_eq!(other.len(), 1, "{other:?}");
        assert!(other[0].starts_with("media set GUID"), "{other:?}");
        assert_eq!(
            compare_family(&[striped(1, 11)], 1, 2, &mut None),
            ["media families: file 4, expected 2"]
        );
    }

    #[test]
    fn compare_rejects_empty_file() {
        let set = file_set();
        let differences = compare("Sales", &msdb_row(&set), &[]);
        assert_eq!(differences, ["the file contains no backup set"]);
    }
}
