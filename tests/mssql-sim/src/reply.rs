//! What the engine sends back for a batch, independent of the TDS encoding.
//!
//! The engine runs a batch on a blocking thread and emits [`ReplyEvent`]s as they happen
//! (progress messages arrive while a BACKUP is still writing); the TDS layer encodes each
//! event for the session's TDS version and splits the stream into packets.

use time::PrimitiveDateTime;
use uuid::Uuid;

/// SQL Server data types the simulator returns, with their declared sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    Bit,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Real,
    Float,
    /// `numeric(precision, scale)`; LSNs are `numeric(25,0)`.
    Numeric {
        precision: u8,
        scale: u8,
    },
    /// `nvarchar(n)` with n in characters; `None` is `nvarchar(max)`.
    NVarChar(Option<u16>),
    /// `nchar(n)` in characters.
    NChar(u16),
    /// `varchar(n)` in bytes.
    VarChar(u16),
    /// `char(n)` in bytes.
    Char(u16),
    UniqueIdentifier,
    /// `datetime` (1/300 s resolution).
    DateTime,
    /// `varbinary(n)` in bytes, e.g. a certificate thumbprint.
    VarBinary(u16),
}

/// A result-set column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: SqlType,
    pub nullable: bool,
}

/// A value in a row; the column's [`SqlType`] decides its encoding.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Unscaled integer of a `numeric`/`decimal` column.
    Numeric(i128),
    Str(String),
    Guid(Uuid),
    DateTime(PrimitiveDateTime),
    /// Value of a `varbinary` column.
    Bytes(Vec<u8>),
}

/// An ERROR or INFO message as SQL Server sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub number: i32,
    pub state: u8,
    /// Severity: 0-10 informational (INFO token), 11 and above an error (ERROR token).
    pub class: u8,
    pub text: String,
    pub server: String,
    pub procedure: String,
    pub line: i32,
}

/// Completion of one statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    /// More statements of the batch follow (DONE_MORE).
    pub more: bool,
    /// The statement failed (DONE_ERROR).
    pub error: bool,
    /// Rows affected or returned (DONE_COUNT when `Some`).
    pub row_count: Option<u64>,
}

/// One event of a batch's reply, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyEvent {
    /// Starts a result set (COLMETADATA).
    Columns(Vec<Column>),
    /// One row of the current result set.
    Row(Vec<Value>),
    Info(Message),
    Error(Message),
    /// Ends a statement. The engine sends exactly one per statement, DONE_MORE on all but
    /// the last; the TDS layer adds DONE_ATTN itself when it answers an attention.
    Done(Done),
    /// The session's current database changed (ENVCHANGE type 1).
    DatabaseChanged {
        old: String,
        new: String,
    },
}
