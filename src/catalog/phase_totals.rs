//! Time and bytes per phase, summed over every run as it leaves each phase, for the
//! `/metrics` counters.

use serde::Serialize;
use sqlx::SqliteConnection;

use super::decode::RowReader;
use super::{Catalog, CatalogError};

/// The sums of one phase of one backup type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhaseTotal {
    pub phase: String,
    pub backup_type: String,
    /// Times a run left this phase, to the next phase or to its outcome.
    pub runs: u64,
    pub milliseconds: u64,
    /// Bytes BACKUP wrote (phase `backup`) or bytes fetched (phase `fetch`), and 0 for
    /// other phases.
    pub bytes: u64,
}

impl Catalog {
    /// Reads the sums of every phase and backup type, in phase then type order.
    pub async fn phase_totals(&self) -> Result<Vec<PhaseTotal>, CatalogError> {
        let rows = sqlx::query(
            "SELECT rowid, phase, backup_type, runs, milliseconds, bytes
             FROM phase_totals ORDER BY phase, backup_type",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query("read the phase totals"))?;
        rows.iter()
            .map(|row| {
                let reader = RowReader::new(row, "phase_totals", "rowid")?;
                Ok(PhaseTotal {
                    phase: reader.get("phase")?,
                    backup_type: reader.get("backup_type")?,
                    runs: reader.unsigned("runs")?,
                    milliseconds: reader.unsigned("milliseconds")?,
                    bytes: reader.unsigned("bytes")?,
                })
            })
            .collect()
    }
}

/// Adds the time run `run_id` spent in its current phase, up to `now`, to that phase's
/// sums. Does nothing for a run that is not running or has no phase start (a run started
/// before the catalogue kept phase starts).
pub(super) async fn close_phase(
    connection: &mut SqliteConnection,
    run_id: i64,
    now: &str,
) -> Result<(), CatalogError> {
    sqlx::query(
        "INSERT INTO phase_totals (phase, backup_type, runs, milliseconds)
         SELECT phase, backup_type, 1,
                MAX(0, CAST(ROUND((julianday(?) - julianday(phase_started_at)) * 86400000.0)
                            AS INTEGER))
         FROM runs
         WHERE id = ? AND status = 'running' AND phase_started_at IS NOT NULL
         ON CONFLICT (phase, backup_type) DO UPDATE
         SET runs = runs + excluded.runs, milliseconds = milliseconds + excluded.milliseconds",
    )
    .bind(now)
    .bind(run_id)
    .execute(connection)
    .await
    .map_err(CatalogError::query(format!(
        "add the phase time of run {run_id}"
    )))?;
    Ok(())
}

/// Adds `bytes` to the sums of `phase` for `backup_type`.
pub(super) async fn add_phase_bytes(
    connection: &mut SqliteConnection,
    phase: &str,
    backup_type: &str,
    bytes: i64,
) -> Result<(), CatalogError> {
    sqlx::query(
        "INSERT INTO phase_totals (phase, backup_type, bytes) VALUES (?, ?, ?)
         ON CONFLICT (phase, backup_type) DO UPDATE SET bytes = bytes + excluded.bytes",
    )
    .bind(phase)
    .bind(backup_type)
    .bind(bytes)
    .execute(connection)
    .await
    .map_err(CatalogError::query(format!(
        "add the bytes of phase {phase}"
    )))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use time::{Duration, OffsetDateTime};

    use super::*;
    use crate::backup::BackupType;
    use crate::catalog::NewRun;

    fn total<'a>(totals: &'a [PhaseTotal], phase: &str) -> Option<&'a PhaseTotal> {
        totals.iter().find(|total| total.phase == phase)
    }

    #[tokio::test]
    async fn leaving_a_phase_adds_its_time() {
        let catalog = Catalog::open_in_memory().await.unwrap();
        let started_at = OffsetDateTime::now_utc() - Duration::minutes(5);
        let run_id = catalog
            .start_run(&NewRun {
                instance: "sql01".into(),
                database: "Sales".into(),
                backup_type: BackupType::Log,
                trigger: "schedule".into(),
                started_at,
                host: "central".into(),
                pid: 1,
                slot: None,
            })
            .await
            .unwrap();

        catalog.set_run_phase(run_id, "backup").await.unwrap();
        let totals = catalog.phase_totals().await.unwrap();
        let start = total(&totals, "start").expect("phase start was closed");
        assert_eq!((start.backup_type.as_str(), start.runs), ("log", 1));
        // Five minutes, give or take the time the test took.
        assert!(
            (299_000..310_000).contains(&start.milliseconds),
            "{start:?}"
        );
        assert!(total(&totals, "backup").is_none());

        catalog.set_run_phase(run_id, "verify").await.unwrap();
        catalog.fail_run(run_id, "verify", "broken").await.unwrap();
        let totals = catalog.phase_totals().await.unwrap();
        assert_eq!(total(&totals, "start").unwrap().runs, 1);
        assert_eq!(total(&totals, "backup").unwrap().runs, 1);
        // The outcome closes the last phase once.
        assert_eq!(total(&totals, "verify").unwrap().runs, 1);

        // A finished run changes no totals.
        assert!(catalog.set_run_phase(run_id, "fetch").await.is_err());
        assert_eq!(catalog.phase_totals().await.unwrap(), totals);
    }
}
