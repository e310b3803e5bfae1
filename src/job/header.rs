//! Header check between the store and the catalogue: reads the stored file's own backup
//! set header and checks that it describes the set msdb recorded, so the catalogue never
//! records LSNs or a GUID that the file contradicts.

use std::fs::File;
use std::path::PathBuf;

use uuid::Uuid;

use super::fetch::Fetched;
use super::{JobContext, JobRequest, Phase, StageError};
use crate::mssql::BackupSetRow;

/// Reads the headers of the stored file on a blocking thread and compares them with the
/// msdb row. On any difference the stored copy is removed, because it will not be
/// catalogued, and the staged file is left for the DBA.
pub(crate) async fn check(
    ctx: &JobContext,
    request: &JobRequest,
    row: &BackupSetRow,
    fetched: &Fetched,
) -> Result<(), StageError> {
    let path = ctx.store.absolute(&fetched.stored.rel_path);
    let differences = match read_sets(path.clone()).await {
        Ok(sets) => compare(request, row, &sets),
        Err(cause) => vec![cause],
    };
    if differences.is_empty() {
        tracing::info!(store_path = %fetched.stored.rel_path, "file header agrees with msdb");
        return Ok(());
    }

    let mut cause = format!(
        "stored file {} does not match its msdb backup set: {}",
        fetched.stored.rel_path,
        differences.join("; ")
    );
    match tokio::fs::remove_file(&path).await {
        Ok(()) => cause.push_str("; the stored copy was removed and the staged file kept"),
        Err(error) => {
            tracing::error!(path = %path.display(), %error, "could not remove the uncatalogued stored file");
            cause.push_str(&format!(
                "; removing the stored copy {} failed ({error}), delete it by hand",
                path.display()
            ));
        }
    }
    Err(StageError {
        phase: Phase::Header,
        cause,
    })
}

/// Reads every backup set header of the file at `path`; the error text names the file.
async fn read_sets(path: PathBuf) -> Result<Vec<bakfile::BackupSet>, String> {
    let shown = path.display().to_string();
    let read = tokio::task::spawn_blocking(move || {
        let file = File::open(&path)?;
        bakfile::read_headers(file)
    })
    .await;
    match read {
        Ok(Ok(sets)) => Ok(sets),
        Ok(Err(error)) => Err(format!("reading the headers of {shown} failed: {error}")),
        Err(error) => Err(format!("the header reader for {shown} stopped: {error}")),
    }
}

/// Lists each field where the file's set and the msdb row differ, with both values.
fn compare(request: &JobRequest, row: &BackupSetRow, sets: &[bakfile::BackupSet]) -> Vec<String> {
    // A file written WITH INIT holds one set; after NOINIT appends, the msdb row's set is
    // the one with its GUID, and the last set is the best guess when none has it.
    let set = sets
        .iter()
        .find(|set| Some(set.backup_set_guid) == row.backup_set_uuid)
        .or(sets.last());
    let Some(set) = set else {
        return vec!["the file holds no backup set".to_string()];
    };

    let mut differences = Vec::new();
    if set.provisional {
        differences.push("the file has no trailing header copy, so it is incomplete".into());
    }
    // Database names compare without case because SQL Server's default collations are
    // case-insensitive, and msdb was queried with the configured spelling.
    if set.database_name.to_lowercase() != request.database.to_lowercase() {
        differences.push(format!(
            "database name: file {:?}, msdb {:?}",
            set.database_name, request.database
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
