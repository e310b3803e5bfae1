//! Staged files that failed or interrupted runs left on shares and hosts. A run deletes
//! its staged file once the copy is catalogued; a run that failed after BACKUP leaves it.
//! They are found by bakfleet's own file names and deleted once older than
//! `service.staged_max_age`, so the staging folders do not fill up.

use std::time::Duration;

use time::OffsetDateTime;

use crate::fleet::{Fleet, Instance, Secrets};
use crate::job::open_source;
use crate::store::parse_backup_file_name;

/// The outcome for one staged file, or for one instance whose folder could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftoverLine {
    pub instance: String,
    /// The file's path as bakfleet reads it, or the staging location for a folder error.
    pub path: String,
    /// Age of the backup, from the UTC time in its name; `None` for a folder error.
    pub age: Option<Duration>,
    pub outcome: LeftoverOutcome,
}

/// The outcome for one staged file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeftoverOutcome {
    Deleted,
    /// A dry run: the file is old enough and would be deleted.
    WouldDelete,
    /// The file or the folder could not be read or deleted, with the reason.
    Failed(String),
}

/// Deletes (or, on a dry run, lists) the staged files of every instance whose name is a
/// bakfleet backup file name with a time older than `service.staged_max_age`. Files
/// with other names are never touched. An instance whose staging folder cannot be read
/// gets a failed line, and the others go on.
pub async fn clean(
    fleet: &Fleet,
    secrets: &Secrets,
    now: OffsetDateTime,
    dry_run: bool,
) -> Vec<LeftoverLine> {
    let Some(max_age) = fleet.service.staged_max_age else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    for instance in &fleet.instances {
        lines.extend(clean_instance(fleet, secrets, instance, max_age, now, dry_run).await);
    }
    lines
}

async fn clean_instance(
    fleet: &Fleet,
    secrets: &Secrets,
    instance: &Instance,
    max_age: Duration,
    now: OffsetDateTime,
    dry_run: bool,
) -> Vec<LeftoverLine> {
    let folder_failed = |reason: String| {
        tracing::warn!(instance = %instance.name, %reason, "staged leftovers not checked");
        vec![LeftoverLine {
            instance: instance.name.clone(),
            path: instance.staging.describe(),
            age: None,
            outcome: LeftoverOutcome::Failed(reason),
        }]
    };
    let source = match open_source(fleet, secrets, instance).await {
        Ok(source) => source,
        Err(error) => return folder_failed(format!("{error:#}")),
    };
    let names = match source.list_files(&instance.staging.fetch_dir()).await {
        Ok(names) => names,
        Err(error) => return folder_failed(error.to_string()),
    };

    let mut lines = Vec::new();
    for name in names {
        let Some((_, at)) = parse_backup_file_name(&name) else {
            continue;
        };
        let age = Duration::try_from(now - at).unwrap_or(Duration::ZERO);
        if age <= max_age {
            continue;
        }
        let path = instance.staging.fetch_path(&name);
        let outcome = if dry_run {
            LeftoverOutcome::WouldDelete
        } else {
            match source.remove(&path).await {
                Ok(()) => LeftoverOutcome::Deleted,
                Err(error) => LeftoverOutcome::Failed(error.to_string()),
            }
        };
        tracing::info!(instance = %instance.name, %path, age_days = age.as_secs() / 86_400, ?outcome, "staged leftover");
        lines.push(LeftoverLine {
            instance: instance.name.clone(),
            path,
            age: Some(age),
            outcome,
        });
    }
    lines
}
