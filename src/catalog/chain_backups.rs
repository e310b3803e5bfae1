//! Narrow reads for restore plans: the chain facts of every restorable backup of one
//! database, then whole rows and media families only for the backups a plan restores.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::RangeInclusive;

use time::OffsetDateTime;

use super::backups::{backup_from_row, BACKUP_COLUMNS};
use super::decode::RowReader;
use super::timestamp::{format_utc, parse_utc};
use super::{BackupRow, Catalog, CatalogError};
use crate::backup::{BackupFamily, Lsn};
use crate::chain::ChainBackup;

/// The columns that [`ChainBackup`] reads, a third of a backups row.
const CHAIN_COLUMNS: &str = "id, backup_type, first_lsn, last_lsn, checkpoint_lsn,
    database_backup_lsn, differential_base_lsn, differential_base_guid, is_copy_only,
    database_guid, backup_set_guid, finished_at";

impl Catalog {
    /// Lists the chain facts of the backups of one database that retention has not
    /// pruned and that did not fail verification, oldest first by UTC finish time.
    ///
    /// Restore plans read these instead of whole rows because the restorable windows
    /// need every backup, while the script needs the paths of the chain's members only.
    ///
    /// SQLite hands the facts over as one JSON array. A database with 15-minute logs
    /// has thousands of backups. sqlx-sqlite copies every value of every row and passes
    /// rows from its worker thread one buffer at a time, so 10,001 backups took 55 ms
    /// through sqlx where the query alone takes 8 ms in the `sqlite3` shell.
    pub async fn restorable_chain_backups(
        &self,
        instance: &str,
        database: &str,
    ) -> Result<Vec<ChainBackup>, CatalogError> {
        let action =
            || format!("list restorable backups of database {database:?} on instance {instance}");
        // Only the constant column list is spliced in; values are bound.
        let json: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COALESCE(json_group_array(json_array({CHAIN_COLUMNS})), '[]')
             FROM (SELECT {CHAIN_COLUMNS} FROM backups
                   WHERE instance = ? AND database = ?
                     AND id NOT IN (SELECT backup_id FROM pruned_backups)
                     AND id NOT IN (SELECT backup_id FROM backup_verification_failures)
                   ORDER BY finished_at, id)"
        )))
        .bind(instance)
        .bind(database)
        .fetch_one(&self.pool)
        .await
        .map_err(CatalogError::query(action()))?;
        let facts: Vec<ChainFacts> = parse_json_rows(&json, "chain columns")?;
        let mut backups = facts
            .into_iter()
            .map(ChainFacts::into_chain_backup)
            .collect::<Result<Vec<_>, _>>()?;
        // SQLite's aggregate follows the subquery's order in practice. The sort makes the
        // order certain, and costs little on rows already in order.
        backups.sort_by_key(|backup| (backup.finished_at, backup.id));
        Ok(backups)
    }

    /// Reads the backups with these ids in one query, by id. Ids without a backup are
    /// left out of the result.
    pub async fn backups_with_ids(&self, ids: &[i64]) -> Result<Vec<BackupRow>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {BACKUP_COLUMNS} FROM backups
             WHERE id IN (SELECT value FROM json_each(?))
             ORDER BY id"
        )))
        .bind(json_id_list(ids))
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "read {} backups by id",
            ids.len()
        )))?;
        rows.iter().map(backup_from_row).collect()
    }

    /// Returns when the newest full backup of one database that retention has not pruned
    /// and that did not fail verification finished, or `None` when it has none. The index on type and finish time lists only
    /// the database's fulls, not its logs.
    pub async fn latest_full_finished_at(
        &self,
        instance: &str,
        database: &str,
    ) -> Result<Option<OffsetDateTime>, CatalogError> {
        let text: Option<String> = sqlx::query_scalar(
            "SELECT MAX(finished_at) FROM backups
             WHERE instance = ?1 AND database = ?2 AND backup_type = 'full'
               AND id NOT IN (SELECT backup_id FROM pruned_backups)
               AND id NOT IN (SELECT backup_id FROM backup_verification_failures)",
        )
        .bind(instance)
        .bind(database)
        .fetch_one(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "read the newest full backup of database {database:?} on instance {instance}"
        )))?;
        text.map(|text| parse_utc("backups", "finished_at", 0, &text))
            .transpose()
    }

    /// Reads what a restore script needs of the backups of one database that finished
    /// within `finished`: their media families, checksum flag and time zone, keyed by
    /// backup id.
    ///
    /// A latest plan restores every log since the last full or differential, thousands
    /// on a busy database, so this reads 7 columns of each instead of whole rows. It
    /// reads them by finish time, which the database's index orders, rather than looking
    /// up 10,000 ids one by one. The caller picks the chain's members from the result.
    pub async fn script_members(
        &self,
        instance: &str,
        database: &str,
        finished: RangeInclusive<OffsetDateTime>,
    ) -> Result<HashMap<i64, ScriptMember>, CatalogError> {
        let (from, to) = (format_utc(*finished.start()), format_utc(*finished.end()));
        // One JSON value for the same reason as in `restorable_chain_backups`.
        let json: String = sqlx::query_scalar(
            "SELECT COALESCE(json_group_array(json_array(
                        id, store_path, staged_path, size_bytes, sha256, has_checksums,
                        time_zone)), '[]')
             FROM backups
             WHERE instance = ?1 AND database = ?2 AND finished_at BETWEEN ?3 AND ?4",
        )
        .bind(instance)
        .bind(database)
        .bind(&from)
        .bind(&to)
        .fetch_one(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "read the script facts of the backups of database {database:?} on instance \
             {instance} that finished from {from} to {to}"
        )))?;
        let facts: Vec<MemberFacts> = parse_json_rows(&json, "script columns")?;

        let mut families = self.families_of(instance, database, &from, &to).await?;
        let mut members = HashMap::with_capacity(facts.len());
        for MemberFacts(
            id,
            store_path,
            staged_path,
            size_bytes,
            sha256,
            has_checksums,
            time_zone,
        ) in facts
        {
            // A backup without family rows is one file, which its backups row describes.
            let families = match families.remove(&id) {
                Some(families) => families,
                None => vec![BackupFamily {
                    family_number: 1,
                    store_path,
                    staged_path,
                    size_bytes: u64::try_from(size_bytes).map_err(|_| {
                        CatalogError::InvalidValue {
                            table: "backups",
                            column: "size_bytes",
                            row_id: id,
                            value: size_bytes.to_string(),
                            reason: "negative".to_string(),
                        }
                    })?,
                    sha256,
                }],
            };
            members.insert(
                id,
                ScriptMember {
                    families,
                    has_checksums: has_checksums != 0,
                    time_zone,
                },
            );
        }
        Ok(members)
    }

    /// Lists the media family rows of the backups that finished from `from` to `to`
    /// (catalogue text form), keyed by backup id. Backups of one file have no family rows
    /// and are not in the map.
    async fn families_of(
        &self,
        instance: &str,
        database: &str,
        from: &str,
        to: &str,
    ) -> Result<HashMap<i64, Vec<BackupFamily>>, CatalogError> {
        let rows = sqlx::query(
            "SELECT rowid AS id, backup_id, family_number, store_path, staged_path,
                    size_bytes, sha256
             FROM backup_families
             WHERE backup_id IN (
                 SELECT id FROM backups
                 WHERE instance = ?1 AND database = ?2 AND finished_at BETWEEN ?3 AND ?4)
             ORDER BY backup_id, family_number",
        )
        .bind(instance)
        .bind(database)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(CatalogError::query(format!(
            "list the media families of the backups of database {database:?} on instance \
             {instance} that finished from {from} to {to}"
        )))?;

        let mut families: HashMap<i64, Vec<BackupFamily>> = HashMap::new();
        for row in &rows {
            let row = RowReader::new(row, "backup_families", "id")?;
            let backup_id: i64 = row.get("backup_id")?;
            let family_number: i64 = row.get("family_number")?;
            families.entry(backup_id).or_default().push(BackupFamily {
                family_number: u32::try_from(family_number).unwrap_or(0),
                store_path: row.get("store_path")?,
                staged_path: row.get("staged_path")?,
                size_bytes: row.unsigned("size_bytes")?,
                sha256: row.get("sha256")?,
            });
        }
        Ok(families)
    }
}

/// One backup's [`CHAIN_COLUMNS`] as a JSON array, in that order.
///
/// The texts borrow from the JSON where they hold no escapes, as LSNs, types and times
/// never do, so that 10,000 backups do not cost 60,000 short-lived strings.
#[derive(Debug, serde::Deserialize)]
struct ChainFacts<'a>(
    i64,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    Option<String>,
    i64,
    Option<String>,
    Option<String>,
    #[serde(borrow)] Cow<'a, str>,
);

impl ChainFacts<'_> {
    fn into_chain_backup(self) -> Result<ChainBackup, CatalogError> {
        let ChainFacts(
            id,
            backup_type,
            first_lsn,
            last_lsn,
            checkpoint_lsn,
            database_backup_lsn,
            differential_base_lsn,
            differential_base_guid,
            is_copy_only,
            database_guid,
            backup_set_guid,
            finished_at,
        ) = self;
        let invalid =
            |column: &'static str, value: &str, reason: &str| CatalogError::InvalidValue {
                table: "backups",
                column,
                row_id: id,
                value: value.to_string(),
                reason: reason.to_string(),
            };
        let lsn = |column: &'static str, text: &str| {
            Lsn::parse(text).ok_or_else(|| invalid(column, text, "not a decimal LSN"))
        };
        Ok(ChainBackup {
            id,
            backup_type: backup_type
                .parse()
                .map_err(|_| invalid("backup_type", &backup_type, "not full, diff or log"))?,
            first_lsn: lsn("first_lsn", &first_lsn)?,
            last_lsn: lsn("last_lsn", &last_lsn)?,
            checkpoint_lsn: lsn("checkpoint_lsn", &checkpoint_lsn)?,
            database_backup_lsn: lsn("database_backup_lsn", &database_backup_lsn)?,
            differential_base_lsn: differential_base_lsn
                .map(|text| lsn("differential_base_lsn", &text))
                .transpose()?,
            differential_base_guid,
            is_copy_only: is_copy_only != 0,
            database_guid,
            backup_set_guid,
            finished_at: parse_utc("backups", "finished_at", id, &finished_at)?,
        })
    }
}

/// One backup's script columns as a JSON array: id, store_path, staged_path,
/// size_bytes, sha256, has_checksums and time_zone.
#[derive(Debug, serde::Deserialize)]
struct MemberFacts(i64, String, String, i64, String, i64, Option<i16>);

/// Parses the rows that SQLite handed over as one JSON array of arrays.
fn parse_json_rows<'a, T: serde::Deserialize<'a>>(
    json: &'a str,
    columns: &'static str,
) -> Result<Vec<T>, CatalogError> {
    serde_json::from_str(json).map_err(|error| CatalogError::InvalidValue {
        table: "backups",
        column: columns,
        row_id: 0,
        value: json.chars().take(200).collect(),
        reason: format!("not the JSON rows SQLite was asked for: {error}"),
    })
}

/// The facts a restore script needs of one backup of its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptMember {
    /// The backup's files in family order; one for a backup that is not striped.
    pub families: Vec<BackupFamily>,
    pub has_checksums: bool,
    /// msdb `time_zone`: offset from UTC in 15-minute steps; 127 means unknown.
    pub time_zone: Option<i16>,
}

/// Formats ids as a JSON array for `json_each`, which takes any number of ids in one
/// bound value where an `IN (?, ?, ...)` list would hit SQLite's limit on variables.
pub(super) fn json_id_list(ids: &[i64]) -> String {
    let mut text = String::with_capacity(ids.len() * 8 + 2);
    text.push('[');
    for (index, id) in ids.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        text.push_str(&id.to_string());
    }
    text.push(']');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const FACTS: &str = r#"[7, "log", "1000", "2000", "900", "500", null, null, 0,
        "6f9619ff-8b86-d011-b42d-00c04fc964ff", null, "2026-06-03T12:00:00.000Z"]"#;

    #[test]
    fn chain_facts_read_from_json_array() {
        let facts: ChainFacts = serde_json::from_str(FACTS).unwrap();
        let backup = facts.into_chain_backup().unwrap();

        assert_eq!(backup.id, 7);
        assert_eq!(backup.backup_type, crate::backup::BackupType::Log);
        assert_eq!(backup.first_lsn, Lsn::parse("1000").unwrap());
        assert_eq!(backup.differential_base_lsn, None);
        assert!(!backup.is_copy_only);
        assert_eq!(
            backup.finished_at,
            time::macros::datetime!(2026-06-03 12:00 UTC)
        );
    }

    #[test]
    fn chain_facts_name_bad_value() {
        let json = FACTS.replace("\"2000\"", "\"x\"");
        let facts: ChainFacts = serde_json::from_str(&json).unwrap();
        let error = facts.into_chain_backup().unwrap_err().to_string();

        assert!(
            error.contains("column last_lsn of table backups, row 7"),
            "{error}"
        );
    }

    #[test]
    fn id_list_formats_json_array() {
        assert_eq!(json_id_list(&[]), "[]");
        assert_eq!(json_id_list(&[7]), "[7]");
        assert_eq!(json_id_list(&[1, 22, 333]), "[1,22,333]");
    }
}
