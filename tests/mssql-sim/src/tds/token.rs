//! Encoding of the server's tokens for a negotiated TDS version (MS-TDS 2.2.7 "Data
//! Stream Types" and 2.2.5 "Data Types").

use bytes::{BufMut, BytesMut};

use super::login::TdsVersion;
use crate::reply::{Column, Message, SqlType, Value};

const TOKEN_COLMETADATA: u8 = 0x81;
const TOKEN_ROW: u8 = 0xD1;
const TOKEN_RETURNSTATUS: u8 = 0x79;
const TOKEN_LOGINACK: u8 = 0xAD;
const TOKEN_ERROR: u8 = 0xAA;
const TOKEN_INFO: u8 = 0xAB;
const TOKEN_ENVCHANGE: u8 = 0xE3;
const TOKEN_DONE: u8 = 0xFD;
const TOKEN_DONEPROC: u8 = 0xFE;
const TOKEN_DONEINPROC: u8 = 0xFF;

/// DONE status bits (MS-TDS 2.2.7.6 "DONE").
pub const DONE_MORE: u16 = 0x0001;
pub const DONE_ERROR: u16 = 0x0002;
pub const DONE_COUNT: u16 = 0x0010;
pub const DONE_ATTN: u16 = 0x0020;

/// The server collation the simulator announces and puts on character columns:
/// SQL_Latin1_General_CP1_CI_AS, SQL Server's default for US English installs. The five
/// bytes are LCID 0x0409 with the case-, accent-, kana- and width-flags packed in, then
/// sort id 52 (MS-TDS 2.2.5.1.2 "Collation Rule Definition").
pub const COLLATION: [u8; 5] = [0x09, 0x04, 0xD0, 0x00, 0x34];

/// The locale (US English) and the comparison flags (ignore case, kana type and width)
/// of [`COLLATION`], as TDS 7.0 announces them.
const COLLATION_LCID: u32 = 1033;
const COLLATION_COMPARISON_FLAGS: u32 = 0x0003_0001;

/// Which DONE-family token ends a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoneKind {
    /// A statement of a SQL batch, or the end of a request.
    Done,
    /// A statement inside a procedure (an RPC's statements).
    InProc,
    /// The end of an RPC.
    Proc,
}

/// ENVCHANGE types the simulator sends (MS-TDS 2.2.7.9 "ENVCHANGE").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvChange {
    Database {
        new: String,
        old: String,
    },
    Language {
        new: String,
        old: String,
    },
    PacketSize {
        new: usize,
        old: usize,
    },
    Collation,
    /// Unicode sorting locale (type 5) and comparison flags (type 6): what a TDS 7.0
    /// client reads instead of the collation, which 7.0 does not have.
    SortLocale,
    SortFlags,
    BeginTransaction {
        descriptor: u64,
    },
    CommitTransaction {
        descriptor: u64,
    },
    RollbackTransaction {
        descriptor: u64,
    },
}

/// Errors when a value does not fit its column.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("column {column} ({ty:?}) cannot hold value {value:?}")]
    TypeMismatch {
        column: String,
        ty: SqlType,
        value: Value,
    },
    #[error("row has {got} values but the result set has {expected} columns")]
    ColumnCount { expected: usize, got: usize },
    #[error("column {column} is declared NOT NULL but the row holds NULL")]
    NullInNotNull { column: String },
}

/// Appends tokens for one session's TDS version to a buffer.
#[derive(Debug, Clone, Copy)]
pub struct TokenEncoder {
    pub version: TdsVersion,
}

impl TokenEncoder {
    /// Appends COLMETADATA.
    pub fn colmetadata(&self, out: &mut BytesMut, columns: &[Column]) {
        out.put_u8(TOKEN_COLMETADATA);
        out.put_u16_le(u16::try_from(columns.len()).expect("fewer than 65536 columns"));
        for column in columns {
            self.put_user_type(out);
            let flags: u16 = if column.nullable { 0x0001 } else { 0x0000 };
            out.put_u16_le(flags);
            self.put_type_info(out, column);
            put_b_varchar(out, &column.name);
        }
    }

    /// Appends a ROW whose values follow `columns`.
    ///
    /// # Errors
    /// The row's length differs from the columns', or a value does not fit its column.
    pub fn row(
        &self,
        out: &mut BytesMut,
        columns: &[Column],
        values: &[Value],
    ) -> Result<(), EncodeError> {
        if columns.len() != values.len() {
            return Err(EncodeError::ColumnCount {
                expected: columns.len(),
                got: values.len(),
            });
        }
        let mut row = BytesMut::new();
        row.put_u8(TOKEN_ROW);
        for (column, value) in columns.iter().zip(values) {
            self.put_value(&mut row, column, value)?;
        }
        out.put_slice(&row);
        Ok(())
    }

    /// Appends an INFO token (severity 10 and below) or an ERROR token (above 10).
    pub fn message(&self, out: &mut BytesMut, message: &Message) {
        let token = if message.class > 10 {
            TOKEN_ERROR
        } else {
            TOKEN_INFO
        };
        let mut body = BytesMut::new();
        body.put_i32_le(message.number);
        body.put_u8(message.state);
        body.put_u8(message.class);
        put_us_varchar(&mut body, &message.text);
        put_b_varchar(&mut body, &message.server);
        put_b_varchar(&mut body, &message.procedure);
        if self.version.has_72_layout() {
            body.put_i32_le(message.line);
        } else {
            body.put_u16_le(u16::try_from(message.line).unwrap_or(0));
        }
        put_with_u16_length(out, token, &body);
    }

    /// Appends a DONE, DONEINPROC or DONEPROC token.
    pub fn done(&self, out: &mut BytesMut, kind: DoneKind, status: u16, row_count: u64) {
        let token = match kind {
            DoneKind::Done => TOKEN_DONE,
            DoneKind::InProc => TOKEN_DONEINPROC,
            DoneKind::Proc => TOKEN_DONEPROC,
        };
        out.put_u8(token);
        out.put_u16_le(status);
        out.put_u16_le(0); // CurCmd; the clients in use ignore it.
        if self.version.has_72_layout() {
            out.put_u64_le(row_count);
        } else {
            out.put_u32_le(u32::try_from(row_count).unwrap_or(u32::MAX));
        }
    }

    /// Appends RETURNSTATUS.
    pub fn return_status(&self, out: &mut BytesMut, status: i32) {
        out.put_u8(TOKEN_RETURNSTATUS);
        out.put_i32_le(status);
    }

    /// Appends LOGINACK: interface 1 (T-SQL), the negotiated version big-endian, program
    /// name "Microsoft SQL Server" and the product version (MS-TDS 2.2.7.14).
    pub fn loginack(&self, out: &mut BytesMut, product_version: (u8, u8, u16)) {
        let (major, minor, build) = product_version;
        let mut body = BytesMut::new();
        body.put_u8(1);
        body.put_u32(self.version.loginack_version());
        put_b_varchar(&mut body, "Microsoft SQL Server");
        body.put_u8(major);
        body.put_u8(minor);
        body.put_u16(build);
        put_with_u16_length(out, TOKEN_LOGINACK, &body);
    }

    /// Appends an ENVCHANGE token.
    pub fn env_change(&self, out: &mut BytesMut, change: &EnvChange) {
        let mut body = BytesMut::new();
        match change {
            EnvChange::Database { new, old } => {
                body.put_u8(1);
                put_b_varchar(&mut body, new);
                put_b_varchar(&mut body, old);
            }
            EnvChange::Language { new, old } => {
                body.put_u8(2);
                put_b_varchar(&mut body, new);
                put_b_varchar(&mut body, old);
            }
            EnvChange::PacketSize { new, old } => {
                body.put_u8(4);
                put_b_varchar(&mut body, &new.to_string());
                put_b_varchar(&mut body, &old.to_string());
            }
            EnvChange::Collation => {
                body.put_u8(7);
                body.put_u8(COLLATION.len() as u8);
                body.put_slice(&COLLATION);
                body.put_u8(0);
            }
            EnvChange::SortLocale => {
                body.put_u8(5);
                put_b_varchar(&mut body, &COLLATION_LCID.to_string());
                put_b_varchar(&mut body, "");
            }
            EnvChange::SortFlags => {
                body.put_u8(6);
                put_b_varchar(&mut body, &COLLATION_COMPARISON_FLAGS.to_string());
                put_b_varchar(&mut body, "");
            }
            EnvChange::BeginTransaction { descriptor } => {
                body.put_u8(8);
                body.put_u8(8);
                body.put_u64_le(*descriptor);
                body.put_u8(0);
            }
            EnvChange::CommitTransaction { descriptor } => {
                body.put_u8(9);
                body.put_u8(0);
                body.put_u8(8);
                body.put_u64_le(*descriptor);
            }
            EnvChange::RollbackTransaction { descriptor } => {
                body.put_u8(10);
                body.put_u8(0);
                body.put_u8(8);
                body.put_u64_le(*descriptor);
            }
        }
        put_with_u16_length(out, TOKEN_ENVCHANGE, &body);
    }

    /// Column UserType: 2 bytes before TDS 7.2, 4 bytes from 7.2 on; always 0.
    fn put_user_type(&self, out: &mut BytesMut) {
        if self.version.has_72_layout() {
            out.put_u32_le(0);
        } else {
            out.put_u16_le(0);
        }
    }

    /// Appends TYPE_INFO. NOT NULL numeric and date columns use the fixed-length types
    /// (INT4, BIT, FLT8, ...) as SQL Server does; nullable ones use INTN, BITN, FLTN and
    /// DATETIMN with their lengths.
    fn put_type_info(&self, out: &mut BytesMut, column: &Column) {
        let fixed = !column.nullable;
        match column.ty {
            SqlType::Bit if fixed => out.put_u8(0x32),
            SqlType::TinyInt if fixed => out.put_u8(0x30),
            SqlType::SmallInt if fixed => out.put_u8(0x34),
            SqlType::Int if fixed => out.put_u8(0x38),
            SqlType::BigInt if fixed => out.put_u8(0x7F),
            SqlType::Real if fixed => out.put_u8(0x3B),
            SqlType::Float if fixed => out.put_u8(0x3E),
            SqlType::DateTime if fixed => out.put_u8(0x3D),
            SqlType::Bit => put_bytes(out, &[0x68, 1]),
            SqlType::TinyInt => put_bytes(out, &[0x26, 1]),
            SqlType::SmallInt => put_bytes(out, &[0x26, 2]),
            SqlType::Int => put_bytes(out, &[0x26, 4]),
            SqlType::BigInt => put_bytes(out, &[0x26, 8]),
            SqlType::Real => put_bytes(out, &[0x6D, 4]),
            SqlType::Float => put_bytes(out, &[0x6D, 8]),
            SqlType::DateTime => put_bytes(out, &[0x6F, 8]),
            SqlType::UniqueIdentifier => put_bytes(out, &[0x24, 16]),
            SqlType::Numeric { precision, scale } => {
                put_bytes(out, &[0x6C, numeric_len(precision), precision, scale]);
            }
            SqlType::NVarChar(length) => {
                out.put_u8(0xE7);
                self.put_character_length(out, length.map(|chars| chars * 2));
            }
            SqlType::NChar(chars) => {
                out.put_u8(0xEF);
                self.put_character_length(out, Some(chars * 2));
            }
            SqlType::VarChar(bytes) => {
                out.put_u8(0xA7);
                self.put_character_length(out, Some(bytes));
            }
            SqlType::Char(bytes) => {
                out.put_u8(0xAF);
                self.put_character_length(out, Some(bytes));
            }
            // BIGVARBINARYTYPE with its maximum length; binary types carry no collation.
            SqlType::VarBinary(bytes) => {
                out.put_u8(0xA5);
                out.put_u16_le(bytes);
            }
        }
    }

    /// Appends a character type's maximum length in bytes (0xFFFF for `max`) and, from
    /// TDS 7.1 on, its collation.
    fn put_character_length(&self, out: &mut BytesMut, byte_length: Option<u16>) {
        out.put_u16_le(self.wire_byte_length(byte_length));
        if self.version.has_collation() {
            out.put_slice(&COLLATION);
        }
    }

    /// Maximum length on the wire. Before TDS 7.2 there are no `max` types, so
    /// `nvarchar(max)` goes out as `nvarchar(4000)`.
    fn wire_byte_length(&self, byte_length: Option<u16>) -> u16 {
        match byte_length {
            Some(length) => length,
            None if self.version.has_72_layout() => 0xFFFF,
            None => 8000,
        }
    }

    fn put_value(
        &self,
        out: &mut BytesMut,
        column: &Column,
        value: &Value,
    ) -> Result<(), EncodeError> {
        let mismatch = || EncodeError::TypeMismatch {
            column: column.name.clone(),
            ty: column.ty,
            value: value.clone(),
        };
        if matches!(value, Value::Null) {
            return self.put_null(out, column);
        }
        let fixed = !column.nullable;
        match column.ty {
            SqlType::Bit => {
                let bit = match value {
                    Value::Bool(bit) => *bit,
                    Value::Int(number) => *number != 0,
                    _ => return Err(mismatch()),
                };
                put_length_byte(out, fixed, 1);
                out.put_u8(u8::from(bit));
            }
            SqlType::TinyInt | SqlType::SmallInt | SqlType::Int | SqlType::BigInt => {
                let Value::Int(number) = value else {
                    return Err(mismatch());
                };
                put_integer(out, column.ty, *number, fixed).ok_or_else(mismatch)?;
            }
            SqlType::Real | SqlType::Float => {
                let number = match value {
                    Value::Float(number) => *number,
                    Value::Int(number) => *number as f64,
                    _ => return Err(mismatch()),
                };
                if column.ty == SqlType::Real {
                    put_length_byte(out, fixed, 4);
                    out.put_f32_le(number as f32);
                } else {
                    put_length_byte(out, fixed, 8);
                    out.put_f64_le(number);
                }
            }
            SqlType::Numeric { precision, .. } => {
                let unscaled = match value {
                    Value::Numeric(number) => *number,
                    Value::Int(number) => i128::from(*number),
                    _ => return Err(mismatch()),
                };
                put_numeric(out, precision, unscaled);
            }
            SqlType::NVarChar(length) => {
                let Value::Str(text) = value else {
                    return Err(mismatch());
                };
                match length {
                    None if self.version.has_72_layout() => put_plp(out, &utf16_bytes(text)),
                    None => {
                        // Sent as nvarchar(4000) before TDS 7.2; see `wire_byte_length`.
                        let head: String = text.chars().take(4000).collect();
                        put_u16_length_bytes(out, &utf16_bytes(&head));
                    }
                    Some(_) => put_u16_length_bytes(out, &utf16_bytes(text)),
                }
            }
            SqlType::NChar(chars) => {
                let Value::Str(text) = value else {
                    return Err(mismatch());
                };
                let padded = pad_right(text, usize::from(chars));
                put_u16_length_bytes(out, &utf16_bytes(&padded));
            }
            SqlType::VarChar(_) => {
                let Value::Str(text) = value else {
                    return Err(mismatch());
                };
                put_u16_length_bytes(out, &single_byte(text));
            }
            SqlType::Char(bytes) => {
                let Value::Str(text) = value else {
                    return Err(mismatch());
                };
                let padded = pad_right(text, usize::from(bytes));
                put_u16_length_bytes(out, &single_byte(&padded));
            }
            SqlType::UniqueIdentifier => {
                let Value::Guid(guid) = value else {
                    return Err(mismatch());
                };
                out.put_u8(16);
                out.put_slice(&guid.to_bytes_le());
            }
            SqlType::DateTime => {
                let Value::DateTime(moment) = value else {
                    return Err(mismatch());
                };
                put_length_byte(out, fixed, 8);
                put_datetime(out, *moment);
            }
            SqlType::VarBinary(_) => {
                let Value::Bytes(bytes) = value else {
                    return Err(mismatch());
                };
                put_u16_length_bytes(out, bytes);
            }
        }
        Ok(())
    }

    fn put_null(&self, out: &mut BytesMut, column: &Column) -> Result<(), EncodeError> {
        if !column.nullable && !is_variable_length(column.ty) {
            return Err(EncodeError::NullInNotNull {
                column: column.name.clone(),
            });
        }
        match column.ty {
            SqlType::NVarChar(None) if self.version.has_72_layout() => {
                out.put_u64_le(u64::MAX);
            }
            SqlType::NVarChar(_)
            | SqlType::NChar(_)
            | SqlType::VarChar(_)
            | SqlType::Char(_)
            | SqlType::VarBinary(_) => {
                out.put_u16_le(0xFFFF);
            }
            _ => out.put_u8(0),
        }
        Ok(())
    }
}

/// Types that carry a length prefix even when declared NOT NULL, so NULL can still be
/// encoded (SQL Server sends these types the same way whatever the nullability).
fn is_variable_length(ty: SqlType) -> bool {
    matches!(
        ty,
        SqlType::NVarChar(_)
            | SqlType::NChar(_)
            | SqlType::VarChar(_)
            | SqlType::Char(_)
            | SqlType::VarBinary(_)
            | SqlType::Numeric { .. }
            | SqlType::UniqueIdentifier
    )
}

/// Storage length of a `numeric(p, s)` value including its sign byte
/// (MS-TDS 2.2.5.5.1.6 "Decimal/Numeric").
fn numeric_len(precision: u8) -> u8 {
    match precision {
        0..=9 => 5,
        10..=19 => 9,
        20..=28 => 13,
        _ => 17,
    }
}

fn put_numeric(out: &mut BytesMut, precision: u8, unscaled: i128) {
    let length = numeric_len(precision);
    out.put_u8(length);
    out.put_u8(if unscaled < 0 { 0 } else { 1 });
    let magnitude = unscaled.unsigned_abs().to_le_bytes();
    out.put_slice(&magnitude[..usize::from(length - 1)]);
}

/// Writes an integer in its column's width; `None` when it does not fit.
fn put_integer(out: &mut BytesMut, ty: SqlType, number: i64, fixed: bool) -> Option<()> {
    match ty {
        SqlType::TinyInt => {
            let byte = u8::try_from(number).ok()?;
            put_length_byte(out, fixed, 1);
            out.put_u8(byte);
        }
        SqlType::SmallInt => {
            let short = i16::try_from(number).ok()?;
            put_length_byte(out, fixed, 2);
            out.put_i16_le(short);
        }
        SqlType::Int => {
            let int = i32::try_from(number).ok()?;
            put_length_byte(out, fixed, 4);
            out.put_i32_le(int);
        }
        _ => {
            put_length_byte(out, fixed, 8);
            out.put_i64_le(number);
        }
    }
    Some(())
}

/// `datetime`: days since 1900-01-01, then 1/300-second ticks since midnight
/// (MS-TDS 2.2.5.5.1.8 "Date/Times").
fn put_datetime(out: &mut BytesMut, moment: time::PrimitiveDateTime) {
    let epoch = time::macros::date!(1900 - 01 - 01);
    let days = (moment.date() - epoch).whole_days();
    let since_midnight = moment.time() - time::Time::MIDNIGHT;
    let ticks = (since_midnight.whole_nanoseconds() * 300 + 500_000_000) / 1_000_000_000;
    out.put_i32_le(i32::try_from(days).unwrap_or(i32::MAX));
    out.put_u32_le(u32::try_from(ticks).unwrap_or(u32::MAX));
}

fn put_length_byte(out: &mut BytesMut, fixed: bool, length: u8) {
    if !fixed {
        out.put_u8(length);
    }
}

/// PLP encoding of a `max` value: total length, one chunk, then the zero terminator
/// (MS-TDS 2.2.5.2.3 "Partially Length-prefixed Data Type").
fn put_plp(out: &mut BytesMut, bytes: &[u8]) {
    out.put_u64_le(bytes.len() as u64);
    if !bytes.is_empty() {
        out.put_u32_le(u32::try_from(bytes.len()).expect("value below 4 GiB"));
        out.put_slice(bytes);
    }
    out.put_u32_le(0);
}

fn put_u16_length_bytes(out: &mut BytesMut, bytes: &[u8]) {
    let length = u16::try_from(bytes.len()).unwrap_or(0xFFFE);
    out.put_u16_le(length);
    out.put_slice(&bytes[..usize::from(length)]);
}

fn put_bytes(out: &mut BytesMut, bytes: &[u8]) {
    out.put_slice(bytes);
}

/// B_VARCHAR: a length in characters (one byte) then UTF-16LE.
fn put_b_varchar(out: &mut BytesMut, text: &str) {
    let units: Vec<u16> = text.encode_utf16().take(255).collect();
    out.put_u8(units.len() as u8);
    for unit in units {
        out.put_u16_le(unit);
    }
}

/// US_VARCHAR: a length in characters (two bytes) then UTF-16LE.
fn put_us_varchar(out: &mut BytesMut, text: &str) {
    let units: Vec<u16> = text.encode_utf16().take(65535).collect();
    out.put_u16_le(units.len() as u16);
    for unit in units {
        out.put_u16_le(unit);
    }
}

fn put_with_u16_length(out: &mut BytesMut, token: u8, body: &[u8]) {
    out.put_u8(token);
    out.put_u16_le(u16::try_from(body.len()).expect("token body below 64 KiB"));
    out.put_slice(body);
}

fn utf16_bytes(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Encodes text for a single-byte column. Code points up to U+00FF map to the same
/// byte, which matches code page 1252 outside 0x80-0x9F; others become '?', as SQL
/// Server does for characters the code page lacks.
fn single_byte(text: &str) -> Vec<u8> {
    text.chars()
        .map(|character| u8::try_from(u32::from(character)).unwrap_or(b'?'))
        .collect()
}

fn pad_right(text: &str, length: usize) -> String {
    let mut padded: String = text.chars().take(length).collect();
    let count = padded.chars().count();
    padded.extend(std::iter::repeat_n(' ', length - count));
    padded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoder(version: TdsVersion) -> TokenEncoder {
        TokenEncoder { version }
    }

    fn column(name: &str, ty: SqlType, nullable: bool) -> Column {
        Column {
            name: name.to_string(),
            ty,
            nullable,
        }
    }

    #[test]
    fn done_row_count_width_follows_version() {
        let mut modern = BytesMut::new();
        encoder(TdsVersion::V7_4).done(&mut modern, DoneKind::Done, DONE_COUNT, 3);
        let mut old = BytesMut::new();
        encoder(TdsVersion::V7_1).done(&mut old, DoneKind::Done, DONE_COUNT, 3);

        assert_eq!(modern.len(), 13);
        assert_eq!(old.len(), 9);
        assert_eq!(&old[..], &[0xFD, 0x10, 0, 0, 0, 3, 0, 0, 0]);
    }

    #[test]
    fn loginack_version_is_big_endian() {
        let mut out = BytesMut::new();
        encoder(TdsVersion::V7_4).loginack(&mut out, (16, 0, 4135));
        assert_eq!(out[0], 0xAD);
        assert_eq!(out[3], 1, "interface byte must be 1 (T-SQL)");
        assert_eq!(&out[4..8], &[0x74, 0x00, 0x00, 0x04]);
        assert_eq!(&out[out.len() - 4..], &[16, 0, 0x10, 0x27]);
    }

    #[test]
    fn nvarchar_has_no_collation_at_70() {
        let columns = [column("n", SqlType::NVarChar(Some(128)), true)];
        let mut old = BytesMut::new();
        encoder(TdsVersion::V7_0).colmetadata(&mut old, &columns);
        let mut modern = BytesMut::new();
        encoder(TdsVersion::V7_4).colmetadata(&mut modern, &columns);

        // token, count, user type, flags, type, max length, name.
        assert_eq!(old.len(), 1 + 2 + 2 + 2 + 1 + 2 + 3);
        assert_eq!(modern.len(), 1 + 2 + 4 + 2 + 1 + 2 + 5 + 3);
        assert_eq!(&modern[10..12], &[0x00, 0x01], "max length 256 bytes");
        assert_eq!(&modern[12..17], &COLLATION);
    }

    #[test]
    fn message_line_width_follows_version() {
        let message = Message {
            number: 3211,
            state: 1,
            class: 10,
            text: "10 percent processed.".to_string(),
            server: "SQL01".to_string(),
            procedure: String::new(),
            line: 1,
        };
        let mut modern = BytesMut::new();
        encoder(TdsVersion::V7_4).message(&mut modern, &message);
        let mut old = BytesMut::new();
        encoder(TdsVersion::V7_0).message(&mut old, &message);

        assert_eq!(modern[0], 0xAB, "severity 10 must be an INFO token");
        assert_eq!(modern.len(), old.len() + 2);
        let body_len = usize::from(u16::from_le_bytes([modern[1], modern[2]]));
        assert_eq!(body_len, modern.len() - 3);
    }

    #[test]
    fn error_token_above_severity_ten() {
        let message = Message {
            number: 3201,
            state: 1,
            class: 16,
            text: "x".to_string(),
            server: String::new(),
            procedure: String::new(),
            line: 1,
        };
        let mut out = BytesMut::new();
        encoder(TdsVersion::V7_4).message(&mut out, &message);
        assert_eq!(out[0], 0xAA);
    }

    #[test]
    fn row_encodes_values_and_nulls() {
        let columns = [
            column("i", SqlType::Int, true),
            column("s", SqlType::SmallInt, false),
            column(
                "n",
                SqlType::Numeric {
                    precision: 25,
                    scale: 0,
                },
                true,
            ),
            column("t", SqlType::NVarChar(None), true),
            column("c", SqlType::Char(1), true),
            column("b", SqlType::Bit, true),
        ];
        let values = [
            Value::Null,
            Value::Int(53),
            Value::Numeric(-5),
            Value::Str("é".to_string()),
            Value::Str("D".to_string()),
            Value::Null,
        ];
        let mut out = BytesMut::new();

        encoder(TdsVersion::V7_4)
            .row(&mut out, &columns, &values)
            .unwrap();

        let expected: Vec<u8> = [
            vec![0xD1],
            vec![0],
            vec![53, 0],
            vec![13, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            vec![2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0xE9, 0, 0, 0, 0, 0],
            vec![1, 0, b'D'],
            vec![0],
        ]
        .concat();
        assert_eq!(&out[..], &expected[..]);
    }

    #[test]
    fn row_rejects_null_in_fixed_column() {
        let columns = [column("spid", SqlType::SmallInt, false)];
        let mut out = BytesMut::new();
        let error = encoder(TdsVersion::V7_4)
            .row(&mut out, &columns, &[Value::Null])
            .unwrap_err();
        assert!(
            matches!(error, EncodeError::NullInNotNull { .. }),
            "{error}"
        );
        assert!(
            out.is_empty(),
            "a rejected row must leave the buffer untouched"
        );
    }

    #[test]
    fn datetime_counts_days_and_ticks() {
        let moment = time::macros::datetime!(1900-01-02 00:00:01);
        let mut out = BytesMut::new();
        put_datetime(&mut out, moment);
        assert_eq!(&out[..], &[1, 0, 0, 0, 44, 1, 0, 0]);
    }
}
