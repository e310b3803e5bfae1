//! TODO: mssql
