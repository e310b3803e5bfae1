//! What bakfleet reads from an instance: server facts, databases, msdb history and the
//! progress of a running request.

use tiberius::numeric::Numeric;
use tiberius::{FromSql, Row};
use time::PrimitiveDateTime;
use uuid::Uuid;

use super::{transcript, tsql};
use super::{Connection, MssqlError};
use crate::backup::{BackupFile, BackupType, Lsn};

/// `SERVERPROPERTY('EngineEdition')` of Express (LocalDB included), which rejects backup
/// compression with error 1844.
pub const ENGINE_EDITION_EXPRESS: i32 = 4;

/// Facts about the instance, read once per session.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerFacts {
    pub version: String,
    pub product_version: String,
    pub edition: String,
    pub engine_edition: i32,
    pub machine_name: String,
    pub server_name: String,
    pub instance_name: Option<String>,
    /// The session id of the connection that read these facts.
    pub spid: i16,
}

impl ServerFacts {
    /// True for Express editions, which do not support backup compression.
    pub fn is_express(&self) -> bool {
        self.engine_edition == ENGINE_EDITION_EXPRESS
    }
}

/// One row of `sys.databases`.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseInfo {
    pub name: String,
    pub database_id: i32,
    pub state: String,
    pub recovery_model: String,
    pub is_read_only: bool,
    /// True for database snapshots, which cannot be backed up.
    pub is_snapshot: bool,
}

impl DatabaseInfo {
    /// master, model, msdb and tempdb have the ids 1 to 4 on every instance.
    pub fn is_system(&self) -> bool {
        (1..=4).contains(&self.database_id)
    }
}

/// The differential base and log chain of a database, from `sys.master_files` (file_id 1)
/// and `sys.database_recovery_status`. Each field is `None` when the server stores NULL,
/// and also when the view has no row for the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryFacts {
    pub differential_base_lsn: Option<Lsn>,
    pub differential_base_guid: Option<Uuid>,
    pub last_log_backup_lsn: Option<Lsn>,
    pub database_guid: Option<Uuid>,
}

/// The msdb history of one backup set (`backupset` joined to `backupmediafamily`).
#[derive(Debug, Clone, PartialEq)]
pub struct BackupSetRow {
    pub backup_set_id: i32,
    pub backup_set_uuid: Option<Uuid>,
    pub backup_type: String,
    pub first_lsn: Lsn,
    pub last_lsn: Lsn,
    pub checkpoint_lsn: Lsn,
    pub database_backup_lsn: Lsn,
    pub differential_base_lsn: Option<Lsn>,
    pub database_guid: Option<Uuid>,
    pub backup_start: PrimitiveDateTime,
    pub backup_finish: PrimitiveDateTime,
    pub time_zone: Option<i16>,
    pub backup_size: Option<u64>,
    pub compressed_backup_size: Option<u64>,
    pub has_backup_checksums: bool,
    pub is_copy_only: bool,
    pub recovery_model: Option<String>,
    pub software_version: Option<String>,
    pub physical_device_name: String,
    pub family_sequence_number: Option<u8>,
}

impl BackupSetRow {
    /// True when the msdb type letter is the one SQL Server records for `backup_type`.
    pub fn matches_type(&self, backup_type: BackupType) -> bool {
        self.backup_type.trim() == backup_type.msdb_letter().to_string()
    }
}

/// A row of `sys.dm_exec_requests` for a running BACKUP or RESTORE.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestProgress {
    pub command: String,
    pub percent_complete: f32,
    pub estimated_completion_ms: i64,
}

impl Connection {
    /// Reads version, edition and names of the instance.
    ///
    /// # Errors
    /// Any [`MssqlError`] of the query, or [`MssqlError::Reply`] when no row comes back.
    pub async fn server_facts(&mut self) -> Result<ServerFacts, MssqlError> {
        let label = "server facts query";
        let rows = self.query(label, tsql::SERVER_FACTS_QUERY).await?;
        let row = self.single_row(label, rows)?;
        let reader = RowReader::new(self.instance(), label, &row);
        Ok(ServerFacts {
            version: reader.required::<&str>("version")?.to_string(),
            product_version: reader.required::<&str>("product_version")?.to_string(),
            edition: reader.required::<&str>("edition")?.to_string(),
            engine_edition: reader.required::<i32>("engine_edition")?,
            machine_name: reader.required::<&str>("machine_name")?.to_string(),
            server_name: reader.required::<&str>("server_name")?.to_string(),
            instance_name: reader
                .optional::<&str>("instance_name")?
                .map(str::to_string),
            spid: reader.required::<i16>("spid")?,
        })
    }

    /// Lists every database of the instance.
    ///
    /// # Errors
    /// Any [`MssqlError`] of the query.
    pub async fn databases(&mut self) -> Result<Vec<DatabaseInfo>, MssqlError> {
        let label = "sys.databases query";
        let rows = self.query(label, &tsql::databases_query()).await?;
        rows.into_iter()
            .flatten()
            .map(|row| RowReader::new(self.instance(), label, &row).database())
            .collect()
    }

    /// Reads one database by exact name; `None` when it does not exist.
    ///
    /// # Errors
    /// Any [`MssqlError`] of the query.
    pub async fn database(&mut self, name: &str) -> Result<Option<DatabaseInfo>, MssqlError> {
        let label = "sys.databases query";
        let rows = self.query(label, &tsql::database_query(name)).await?;
        let row = rows.into_iter().flatten().next();
        row.map(|row| RowReader::new(self.instance(), label, &row).database())
            .transpose()
    }

    /// Reads the differential base and log chain of the database with `database_id`.
    ///
    /// # Errors
    /// Any [`MssqlError`] of the two queries.
    pub async fn recovery_facts(&mut self, database_id: i32) -> Result<RecoveryFacts, MssqlError> {
        let mut facts = RecoveryFacts::default();

        let label = "sys.master_files query";
        let rows = self
            .query(label, &tsql::differential_base_query(database_id))
            .await?;
        if let Some(row) = rows.into_iter().flatten().next() {
            let reader = RowReader::new(self.instance(), label, &row);
            facts.differential_base_lsn = reader.lsn("differential_base_lsn")?;
            facts.differential_base_guid = reader.optional::<Uuid>("differential_base_guid")?;
        }

        let label = "sys.database_recovery_status query";
        let rows = self
            .query(label, &tsql::recovery_status_query(database_id))
            .await?;
        if let Some(row) = rows.into_iter().flatten().next() {
            let reader = RowReader::new(self.instance(), label, &row);
            facts.last_log_backup_lsn = reader.lsn("last_log_backup_lsn")?;
            facts.database_guid = reader.optional::<Uuid>("database_guid")?;
        }
        Ok(facts)
    }

    /// Reads the msdb history of the newest backup set of `database` on `server_path`.
    ///
    /// # Errors
    /// Any [`MssqlError`] of the query; `Ok(None)` when msdb has no such set.
    pub async fn backup_set(
        &mut self,
        database: &str,
        server_path: &str,
    ) -> Result<Option<BackupSetRow>, MssqlError> {
        let label = "msdb backupset query";
        let sql = tsql::backup_set_query(database, server_path);
        let rows = self.query(label, &sql).await?;
        let row = rows.into_iter().flatten().next();
        row.map(|row| RowReader::new(self.instance(), label, &row).backup_set())
            .transpose()
    }

    /// Reads the database files of backup set `backup_set_id` from msdb.
    ///
    /// # Errors
    /// Any [`MssqlError`] of the query, such as a missing `backupfile` table.
    pub async fn backup_files(
        &mut self,
        backup_set_id: i32,
    ) -> Result<Vec<BackupFile>, MssqlError> {
        let label = "msdb backupfile query";
        let rows = self
            .query(label, &tsql::backup_files_query(backup_set_id))
            .await?;
        rows.into_iter()
            .flatten()
            .map(|row| RowReader::new(self.instance(), label, &row).backup_file())
            .collect()
    }

    /// Reads the progress of the request running on session `spid`; `None` when that
    /// session runs nothing.
    ///
    /// # Errors
    /// Any [`MssqlError`] of the query.
    pub async fn progress(&mut self, spid: i16) -> Result<Option<RequestProgress>, MssqlError> {
        let label = transcript::PROGRESS_LABEL;
        let rows = self.query(label, &tsql::progress_query(spid)).await?;
        let row = rows.into_iter().flatten().next();
        row.map(|row| {
            let reader = RowReader::new(self.instance(), label, &row);
            Ok(RequestProgress {
                command: reader.required::<&str>("command")?.trim().to_string(),
                percent_complete: reader.optional::<f32>("percent_complete")?.unwrap_or(0.0),
                estimated_completion_ms: reader
                    .optional::<i64>("estimated_completion_time")?
                    .unwrap_or(0),
            })
        })
        .transpose()
    }

    /// Kills session `spid`, which ends its running statement and closes its connection.
    ///
    /// # Errors
    /// [`MssqlError::Server`] with 6102 (no permission), 6104 (own session) or 6106 (no
    /// such session), or any other [`MssqlError`] of the statement.
    pub async fn kill(&mut self, spid: i16) -> Result<(), MssqlError> {
        self.execute("KILL", &tsql::kill_statement(spid)).await
    }

    fn single_row(&self, label: &str, rows: Vec<Vec<Row>>) -> Result<Row, MssqlError> {
        rows.into_iter()
            .flatten()
            .next()
            .ok_or_else(|| MssqlError::Reply {
                instance: self.instance().to_string(),
                statement: label.to_string(),
                reason: "no row returned".to_string(),
            })
    }
}

/// Typed column access that turns a missing or mistyped column into [`MssqlError::Reply`].
struct RowReader<'a> {
    instance: &'a str,
    label: &'a str,
    row: &'a Row,
}

impl<'a> RowReader<'a> {
    fn new(instance: &'a str, label: &'a str, row: &'a Row) -> Self {
        RowReader {
            instance,
            label,
            row,
        }
    }

    fn error(&self, column: &str, reason: String) -> MssqlError {
        MssqlError::Reply {
            instance: self.instance.to_string(),
            statement: self.label.to_string(),
            reason: format!("column {column}: {reason}"),
        }
    }

    fn optional<T: FromSql<'a>>(&self, column: &str) -> Result<Option<T>, MssqlError> {
        self.row
            .try_get::<T, _>(column)
            .map_err(|error| self.error(column, error.to_string()))
    }

    fn required<T: FromSql<'a>>(&self, column: &str) -> Result<T, MssqlError> {
        self.optional(column)?
            .ok_or_else(|| self.error(column, "NULL where a value is required".to_string()))
    }

    fn lsn(&self, column: &str) -> Result<Option<Lsn>, MssqlError> {
        let value = self.optional::<Numeric>(column)?;
        value
            .map(|numeric| {
                u128::try_from(numeric.value())
                    .map(Lsn)
                    .map_err(|_| self.error(column, format!("negative LSN {numeric}")))
            })
            .transpose()
    }

    fn required_lsn(&self, column: &str) -> Result<Lsn, MssqlError> {
        self.lsn(column)?
            .ok_or_else(|| self.error(column, "NULL LSN".to_string()))
    }

    fn size(&self, column: &str) -> Result<Option<u64>, MssqlError> {
        let value = self.optional::<Numeric>(column)?;
        value
            .map(|numeric| {
                u64::try_from(numeric.int_part())
                    .map_err(|_| self.error(column, format!("size out of range: {numeric}")))
            })
            .transpose()
    }

    fn database(&self) -> Result<DatabaseInfo, MssqlError> {
        Ok(DatabaseInfo {
            name: self.required::<&str>("name")?.to_string(),
            database_id: self.required::<i32>("database_id")?,
            state: self
                .optional::<&str>("state_desc")?
                .unwrap_or("")
                .to_string(),
            recovery_model: self
                .optional::<&str>("recovery_model_desc")?
                .unwrap_or("")
                .to_string(),
            is_read_only: self.optional::<bool>("is_read_only")?.unwrap_or(false),
            is_snapshot: self.optional::<i32>("source_database_id")?.is_some(),
        })
    }

    fn backup_file(&self) -> Result<BackupFile, MssqlError> {
        // numeric(10,0) in msdb, so it is read like the sizes.
        let file_number = self.size("file_number")?.unwrap_or_default() as i64;
        Ok(BackupFile {
            file_number,
            logical_name: self.required::<&str>("logical_name")?.to_string(),
            physical_name: self.required::<&str>("physical_name")?.to_string(),
            file_type: self.required::<&str>("file_type")?.trim().to_string(),
            size_bytes: self.size("file_size")?,
        })
    }

    fn backup_set(&self) -> Result<BackupSetRow, MssqlError> {
        let software_version = match (
            self.optional::<u8>("software_major_version")?,
            self.optional::<u8>("software_minor_version")?,
            self.optional::<i16>("software_build_version")?,
        ) {
            (Some(major), Some(minor), Some(build)) => Some(format!("{major}.{minor}.{build}")),
            _ => None,
        };
        Ok(BackupSetRow {
            backup_set_id: self.required::<i32>("backup_set_id")?,
            backup_set_uuid: self.optional::<Uuid>("backup_set_uuid")?,
            backup_type: self.required::<&str>("type")?.to_string(),
            first_lsn: self.required_lsn("first_lsn")?,
            last_lsn: self.required_lsn("last_lsn")?,
            checkpoint_lsn: self.required_lsn("checkpoint_lsn")?,
            database_backup_lsn: self.lsn("database_backup_lsn")?.unwrap_or_default(),
            differential_base_lsn: self.lsn("differential_base_lsn")?,
            database_guid: self.optional::<Uuid>("database_guid")?,
            backup_start: self.required::<PrimitiveDateTime>("backup_start_date")?,
            backup_finish: self.required::<PrimitiveDateTime>("backup_finish_date")?,
            time_zone: self.optional::<i16>("time_zone")?,
            backup_size: self.size("backup_size")?,
            compressed_backup_size: self.size("compressed_backup_size")?,
            has_backup_checksums: self
                .optional::<bool>("has_backup_checksums")?
                .unwrap_or(false),
            is_copy_only: self.optional::<bool>("is_copy_only")?.unwrap_or(false),
            recovery_model: self.optional::<&str>("recovery_model")?.map(str::to_string),
            software_version,
            physical_device_name: self.required::<&str>("physical_device_name")?.to_string(),
            family_sequence_number: self.optional::<u8>("family_sequence_number")?,
        })
    }
}
