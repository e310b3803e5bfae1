//! Decoding of SQLite rows into catalogue types, with errors that name table, column
//! and row.

use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, Row, Sqlite, Type};
use time::{OffsetDateTime, PrimitiveDateTime};

use super::timestamp::{parse_local, parse_utc};
use super::CatalogError;
use crate::backup::{BackupType, Lsn};

/// One row of `table`, read column by column.
pub(crate) struct RowReader<'r> {
    row: &'r SqliteRow,
    table: &'static str,
    id: i64,
}

impl<'r> RowReader<'r> {
    /// Starts reading a row whose primary key is in column `id_column`.
    pub(crate) fn new(
        row: &'r SqliteRow,
        table: &'static str,
        id_column: &'static str,
    ) -> Result<Self, CatalogError> {
        // The action text is built only on failure: rows are read by the thousand.
        let id = row
            .try_get::<i64, _>(id_column)
            .map_err(|source| CatalogError::Query {
                action: format!("read column {id_column} of {table}"),
                source,
            })?;
        Ok(RowReader { row, table, id })
    }

    /// The row's primary key.
    pub(crate) fn id(&self) -> i64 {
        self.id
    }

    pub(crate) fn get<T>(&self, column: &'static str) -> Result<T, CatalogError>
    where
        T: Decode<'r, Sqlite> + Type<Sqlite>,
    {
        self.row
            .try_get::<T, _>(column)
            .map_err(|source| CatalogError::Query {
                action: format!("read column {column} of {} row {}", self.table, self.id),
                source,
            })
    }

    pub(crate) fn utc(&self, column: &'static str) -> Result<OffsetDateTime, CatalogError> {
        let text: String = self.get(column)?;
        parse_utc(self.table, column, self.id, &text)
    }

    pub(crate) fn optional_utc(
        &self,
        column: &'static str,
    ) -> Result<Option<OffsetDateTime>, CatalogError> {
        let text: Option<String> = self.get(column)?;
        text.map(|text| parse_utc(self.table, column, self.id, &text))
            .transpose()
    }

    pub(crate) fn local(&self, column: &'static str) -> Result<PrimitiveDateTime, CatalogError> {
        let text: String = self.get(column)?;
        parse_local(self.table, column, self.id, &text)
    }

    pub(crate) fn lsn(&self, column: &'static str) -> Result<Lsn, CatalogError> {
        let text: String = self.get(column)?;
        Lsn::parse(&text).ok_or_else(|| self.invalid(column, text, "not a decimal LSN"))
    }

    pub(crate) fn optional_lsn(&self, column: &'static str) -> Result<Option<Lsn>, CatalogError> {
        let text: Option<String> = self.get(column)?;
        text.map(|text| {
            Lsn::parse(&text).ok_or_else(|| self.invalid(column, text, "not a decimal LSN"))
        })
        .transpose()
    }

    pub(crate) fn backup_type(&self, column: &'static str) -> Result<BackupType, CatalogError> {
        let text: String = self.get(column)?;
        text.parse()
            .map_err(|_| self.invalid(column, text, "not full, diff or log"))
    }

    /// Reads a non-negative integer, such as a size in bytes.
    pub(crate) fn unsigned(&self, column: &'static str) -> Result<u64, CatalogError> {
        let value: i64 = self.get(column)?;
        u64::try_from(value).map_err(|_| self.invalid(column, value.to_string(), "negative"))
    }

    pub(crate) fn optional_unsigned(
        &self,
        column: &'static str,
    ) -> Result<Option<u64>, CatalogError> {
        let value: Option<i64> = self.get(column)?;
        value
            .map(|value| {
                u64::try_from(value)
                    .map_err(|_| self.invalid(column, value.to_string(), "negative"))
            })
            .transpose()
    }

    pub(crate) fn invalid(
        &self,
        column: &'static str,
        value: String,
        reason: &str,
    ) -> CatalogError {
        CatalogError::InvalidValue {
            table: self.table,
            column,
            row_id: self.id,
            value,
            reason: reason.to_string(),
        }
    }
}
