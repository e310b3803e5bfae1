//! RPC requests (MS-TDS 2.2.6.6 "RPC Request"): decoding `sp_executesql` calls and
//! turning them into a plain batch for the engine.
//!
//! The engine only runs SQL text, so each parameter reference (`@P1`) outside string
//! literals, quoted identifiers and comments is replaced by a literal of its value.

use std::collections::HashMap;

use time::PrimitiveDateTime;
use uuid::Uuid;

use super::login::{decode_utf16, TdsVersion};

/// ProcID of `sp_executesql` in an RPC request (MS-TDS 2.2.6.6).
const PROC_ID_EXECUTESQL: u16 = 10;

/// A decoded RPC request.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcRequest {
    /// The procedure name, or the name of the well-known procedure a ProcID stands for.
    pub procedure: String,
    pub parameters: Vec<Parameter>,
}

/// One RPC parameter; `name` is empty for a positional parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    pub name: String,
    pub value: ParamValue,
}

/// A parameter value as the client sent it.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Null,
    Bit(bool),
    Int(i64),
    Float(f64),
    Decimal {
        unscaled: i128,
        scale: u8,
    },
    /// Unicode text (NVARCHAR, NCHAR, NTEXT).
    NText(String),
    /// Single-byte text (VARCHAR, CHAR, TEXT).
    Text(String),
    Binary(Vec<u8>),
    Guid(Uuid),
    DateTime(PrimitiveDateTime),
}

/// Errors in an RPC request; each maps to the message SQL Server sends.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RpcError {
    #[error("the RPC request ends early while reading {0}")]
    Truncated(&'static str),
    #[error("parameter {index} (\"{name}\"): data type 0x{type_id:02X} is unknown")]
    UnknownType {
        index: usize,
        name: String,
        type_id: u8,
    },
    #[error("could not find stored procedure '{0}'")]
    UnknownProcedure(String),
    #[error("procedure 'sp_executesql' expects parameter '@statement', which was not supplied")]
    MissingStatement,
    #[error("parameter {index} (\"{name}\") is not declared in the @params definition")]
    UndeclaredParameter { index: usize, name: String },
}

impl RpcError {
    /// The SQL Server message number, state and text for this error. 2812 and 201 are
    /// the numbers SQL Server uses for an unknown procedure and a missing parameter;
    /// 8009 and 8016 are its "TDS RPC protocol stream is incorrect" messages
    /// ("Database engine events and errors").
    pub fn sql_message(&self) -> (i32, u8, String) {
        match self {
            RpcError::UnknownProcedure(name) => (
                2812,
                62,
                format!("Could not find stored procedure '{name}'."),
            ),
            RpcError::MissingStatement => (
                201,
                4,
                "Procedure or function 'sp_executesql' expects parameter '@statement', which was not supplied.".to_string(),
            ),
            RpcError::UnknownType { index, name, type_id } => (
                8009,
                1,
                format!(
                    "The incoming tabular data stream (TDS) remote procedure call (RPC) protocol stream is incorrect. Parameter {index} (\"{name}\"): Data type 0x{type_id:02X} is unknown."
                ),
            ),
            RpcError::Truncated(_) | RpcError::UndeclaredParameter { .. } => (
                8016,
                1,
                format!(
                    "The incoming tabular data stream (TDS) remote procedure call (RPC) protocol stream is incorrect. {self}."
                ),
            ),
        }
    }
}

/// Parses an RPC payload (ALL_HEADERS already removed). Only the first procedure call
/// of the request is read.
///
/// # Errors
/// The payload ends early or a parameter has a data type the simulator cannot decode.
pub fn parse(payload: &[u8], version: TdsVersion) -> Result<RpcRequest, RpcError> {
    let mut reader = Reader {
        data: payload,
        at: 0,
        version,
    };
    let name_length = reader.u16("procedure name")?;
    let procedure = if name_length == 0xFFFF {
        procedure_name(reader.u16("ProcID")?)
    } else {
        reader.utf16(usize::from(name_length), "procedure name")?
    };
    reader.u16("option flags")?;

    let mut parameters = Vec::new();
    // 0xFF (7.2+) or 0x80 (older) separates further calls of a batched RPC request.
    // TODO: run every call of a batched RPC request, not only the first.
    while reader.at < payload.len() && !matches!(payload[reader.at], 0xFF | 0x80) {
        let index = parameters.len() + 1;
        parameters.push(reader.parameter(index)?);
    }
    Ok(RpcRequest {
        procedure,
        parameters,
    })
}

impl RpcRequest {
    /// Turns an `sp_executesql` call into the batch text the engine runs.
    ///
    /// # Errors
    /// The procedure is not `sp_executesql`, the statement is missing, or a positional
    /// parameter has no declaration.
    pub fn into_batch(self) -> Result<String, RpcError> {
        if !is_executesql(&self.procedure) {
            return Err(RpcError::UnknownProcedure(self.procedure));
        }
        let mut parameters = self.parameters.into_iter();
        let statement = match parameters.next().map(|parameter| parameter.value) {
            Some(ParamValue::NText(text)) | Some(ParamValue::Text(text)) => text,
            _ => return Err(RpcError::MissingStatement),
        };
        let declared = match parameters.next().map(|parameter| parameter.value) {
            Some(ParamValue::NText(text)) | Some(ParamValue::Text(text)) => declared_names(&text),
            _ => Vec::new(),
        };

        let mut literals = HashMap::new();
        for (position, parameter) in parameters.enumerate() {
            let name = if parameter.name.is_empty() {
                declared
                    .get(position)
                    .cloned()
                    .ok_or(RpcError::UndeclaredParameter {
                        index: position + 3,
                        name: String::new(),
                    })?
            } else {
                parameter.name
            };
            literals.insert(name.to_lowercase(), parameter.value.to_literal());
        }
        Ok(substitute(&statement, &literals))
    }
}

fn is_executesql(procedure: &str) -> bool {
    let last = procedure.rsplit('.').next().unwrap_or(procedure);
    last.trim_matches(|c| c == '[' || c == ']')
        .eq_ignore_ascii_case("sp_executesql")
}

/// Names of the well-known procedures a ProcID stands for (MS-TDS 2.2.6.6).
fn procedure_name(proc_id: u16) -> String {
    let name = match proc_id {
        1 => "sp_cursor",
        2 => "sp_cursoropen",
        3 => "sp_cursorprepare",
        4 => "sp_cursorexecute",
        5 => "sp_cursorprepexec",
        6 => "sp_cursorunprepare",
        7 => "sp_cursorfetch",
        8 => "sp_cursoroption",
        9 => "sp_cursorclose",
        PROC_ID_EXECUTESQL => "sp_executesql",
        11 => "sp_prepare",
        12 => "sp_execute",
        13 => "sp_prepexec",
        14 => "sp_prepexecrpc",
        15 => "sp_unprepare",
        other => return format!("procedure id {other}"),
    };
    name.to_string()
}

/// Returns the parameter names of an `@params` definition such as
/// `@P1 nvarchar(4000),@P2 numeric(10,2) OUTPUT`, in order.
fn declared_names(definition: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    let mut item = String::new();
    for character in definition.chars().chain(std::iter::once(',')) {
        match character {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                if let Some(name) = item.split_whitespace().next() {
                    names.push(name.to_string());
                }
                item.clear();
                continue;
            }
            _ => {}
        }
        item.push(character);
    }
    names
}

/// Replaces `@name` references found in `literals` (keys in lower case) outside
/// string literals, quoted identifiers and comments.
fn substitute(sql: &str, literals: &HashMap<String, String>) -> String {
    let characters: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len());
    let mut index = 0;
    while index < characters.len() {
        let character = characters[index];
        let skip_to = match character {
            '\'' => Some(quoted_end(&characters, index, '\'')),
            '[' => Some(quoted_end(&characters, index, ']')),
            '"' => Some(quoted_end(&characters, index, '"')),
            '-' if characters.get(index + 1) == Some(&'-') => Some(line_end(&characters, index)),
            '/' if characters.get(index + 1) == Some(&'*') => Some(block_end(&characters, index)),
            _ => None,
        };
        if let Some(end) = skip_to {
            out.extend(&characters[index..end]);
            index = end;
            continue;
        }
        if character == '@' && characters.get(index + 1) != Some(&'@') {
            let end = identifier_end(&characters, index + 1);
            let name: String = characters[index..end].iter().collect();
            match literals.get(&name.to_lowercase()) {
                Some(literal) => out.push_str(literal),
                None => out.push_str(&name),
            }
            index = end.max(index + 1);
            continue;
        }
        if character == '@' {
            // A system function such as @@SPID: copy it whole so its tail is not
            // mistaken for a parameter.
            let end = identifier_end(&characters, index + 2);
            out.extend(&characters[index..end]);
            index = end;
            continue;
        }
        out.push(character);
        index += 1;
    }
    out
}

/// End (exclusive) of a quoted run starting at `start`; a doubled closing character is
/// an escape. An unterminated run ends at the end of the text.
fn quoted_end(characters: &[char], start: usize, close: char) -> usize {
    let mut index = start + 1;
    while index < characters.len() {
        if characters[index] == close {
            if characters.get(index + 1) == Some(&close) {
                index += 2;
                continue;
            }
            return index + 1;
        }
        index += 1;
    }
    characters.len()
}

fn line_end(characters: &[char], start: usize) -> usize {
    characters[start..]
        .iter()
        .position(|&c| c == '\n')
        .map_or(characters.len(), |offset| start + offset)
}

fn block_end(characters: &[char], start: usize) -> usize {
    let mut index = start + 2;
    while index + 1 < characters.len() {
        if characters[index] == '*' && characters[index + 1] == '/' {
            return index + 2;
        }
        index += 1;
    }
    characters.len()
}

fn identifier_end(characters: &[char], start: usize) -> usize {
    let mut index = start;
    while index < characters.len()
        && (characters[index].is_alphanumeric()
            || matches!(characters[index], '_' | '#' | '$' | '@'))
    {
        index += 1;
    }
    index
}

impl ParamValue {
    /// Renders the value as a T-SQL literal.
    pub fn to_literal(&self) -> String {
        match self {
            ParamValue::Null => "NULL".to_string(),
            ParamValue::Bit(bit) => u8::from(*bit).to_string(),
            ParamValue::Int(number) => number.to_string(),
            ParamValue::Float(number) => format!("{number:e}"),
            ParamValue::Decimal { unscaled, scale } => decimal_text(*unscaled, *scale),
            ParamValue::NText(text) => format!("N'{}'", text.replace('\'', "''")),
            ParamValue::Text(text) => format!("'{}'", text.replace('\'', "''")),
            ParamValue::Binary(bytes) => {
                let hex: String = bytes.iter().map(|byte| format!("{byte:02X}")).collect();
                format!("0x{hex}")
            }
            ParamValue::Guid(guid) => format!("'{}'", guid.hyphenated()),
            ParamValue::DateTime(moment) => {
                let millis = moment.millisecond();
                format!(
                    "'{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{millis:03}'",
                    moment.year(),
                    u8::from(moment.month()),
                    moment.day(),
                    moment.hour(),
                    moment.minute(),
                    moment.second()
                )
            }
        }
    }
}

fn decimal_text(unscaled: i128, scale: u8) -> String {
    let digits = unscaled.unsigned_abs().to_string();
    let scale = usize::from(scale);
    let sign = if unscaled < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    format!("{sign}{whole}.{fraction}")
}

/// A cursor over the RPC payload.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
    version: TdsVersion,
}

impl Reader<'_> {
    fn bytes(&mut self, count: usize, what: &'static str) -> Result<&[u8], RpcError> {
        let slice = self
            .data
            .get(self.at..self.at + count)
            .ok_or(RpcError::Truncated(what))?;
        self.at += count;
        Ok(slice)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, RpcError> {
        Ok(self.bytes(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, RpcError> {
        let bytes = self.bytes(2, what)?;
        Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, RpcError> {
        let bytes = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn utf16(&mut self, characters: usize, what: &'static str) -> Result<String, RpcError> {
        let bytes = self.bytes(characters * 2, what)?;
        decode_utf16(bytes).ok_or(RpcError::Truncated(what))
    }

    fn skip_collation(&mut self) -> Result<(), RpcError> {
        if self.version.has_collation() {
            self.bytes(5, "collation")?;
        }
        Ok(())
    }

    fn parameter(&mut self, index: usize) -> Result<Parameter, RpcError> {
        let name_length = usize::from(self.u8("parameter name")?);
        let name = self.utf16(name_length, "parameter name")?;
        self.u8("parameter status")?;
        let type_id = self.u8("parameter type")?;
        let value = self.value(type_id).map_err(|error| match error {
            RpcError::UnknownType { type_id, .. } => RpcError::UnknownType {
                index,
                name: name.clone(),
                type_id,
            },
            other => other,
        })?;
        Ok(Parameter { name, value })
    }

    /// Reads TYPE_INFO after its type byte, then the value (MS-TDS 2.2.5.4 and 2.2.6.6).
    fn value(&mut self, type_id: u8) -> Result<ParamValue, RpcError> {
        match type_id {
            0x30 => Ok(ParamValue::Int(i64::from(self.u8("tinyint")?))),
            0x32 => Ok(ParamValue::Bit(self.u8("bit")? != 0)),
            0x34 => self.fixed_int(2),
            0x38 => self.fixed_int(4),
            0x7F => self.fixed_int(8),
            0x3B => self.fixed_float(4),
            0x3E => self.fixed_float(8),
            0x26 => {
                self.u8("int length")?;
                let length = self.u8("int value length")?;
                if length == 0 {
                    return Ok(ParamValue::Null);
                }
                self.fixed_int(length)
            }
            0x68 => {
                self.u8("bit length")?;
                match self.u8("bit value length")? {
                    0 => Ok(ParamValue::Null),
                    _ => Ok(ParamValue::Bit(self.u8("bit")? != 0)),
                }
            }
            0x6D => {
                self.u8("float length")?;
                let length = self.u8("float value length")?;
                if length == 0 {
                    return Ok(ParamValue::Null);
                }
                self.fixed_float(length)
            }
            0x6A | 0x6C => self.decimal(),
            0x24 => {
                self.u8("guid length")?;
                match self.u8("guid value length")? {
                    0 => Ok(ParamValue::Null),
                    _ => {
                        let bytes: [u8; 16] = self.bytes(16, "guid")?.try_into().expect("16 bytes");
                        Ok(ParamValue::Guid(Uuid::from_bytes_le(bytes)))
                    }
                }
            }
            0x6F => self.datetime(),
            0xE7 | 0xEF => self.character(true),
            0xA7 | 0xAF => self.character(false),
            0x63 | 0x23 => self.long_text(type_id == 0x63),
            0xA5 | 0xAD => {
                let max_length = self.u16("binary length")?;
                let bytes = self.sized_bytes(max_length)?;
                Ok(bytes.map_or(ParamValue::Null, ParamValue::Binary))
            }
            other => Err(RpcError::UnknownType {
                index: 0,
                name: String::new(),
                type_id: other,
            }),
        }
    }

    fn fixed_int(&mut self, length: u8) -> Result<ParamValue, RpcError> {
        let bytes = self.bytes(usize::from(length), "integer")?;
        let number = match bytes.len() {
            1 => i64::from(bytes[0]),
            2 => i64::from(i16::from_le_bytes([bytes[0], bytes[1]])),
            4 => i64::from(i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
            _ => i64::from_le_bytes(
                bytes
                    .try_into()
                    .map_err(|_| RpcError::Truncated("integer"))?,
            ),
        };
        Ok(ParamValue::Int(number))
    }

    fn fixed_float(&mut self, length: u8) -> Result<ParamValue, RpcError> {
        let bytes = self.bytes(usize::from(length), "float")?;
        let number = if bytes.len() == 4 {
            f64::from(f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
        } else {
            f64::from_le_bytes(bytes.try_into().map_err(|_| RpcError::Truncated("float"))?)
        };
        Ok(ParamValue::Float(number))
    }

    fn decimal(&mut self) -> Result<ParamValue, RpcError> {
        self.u8("decimal length")?;
        self.u8("decimal precision")?;
        let scale = self.u8("decimal scale")?;
        let length = usize::from(self.u8("decimal value length")?);
        if length == 0 {
            return Ok(ParamValue::Null);
        }
        let sign = self.u8("decimal sign")?;
        let magnitude = self.bytes(length - 1, "decimal")?;
        let mut buffer = [0u8; 16];
        buffer[..magnitude.len().min(16)].copy_from_slice(&magnitude[..magnitude.len().min(16)]);
        let value = i128::from_le_bytes(buffer);
        let unscaled = if sign == 0 { -value } else { value };
        Ok(ParamValue::Decimal { unscaled, scale })
    }

    /// `datetime` (8 bytes) or `smalldatetime` (4 bytes: days, minutes).
    fn datetime(&mut self) -> Result<ParamValue, RpcError> {
        self.u8("datetime length")?;
        let length = self.u8("datetime value length")?;
        let epoch = time::macros::datetime!(1900-01-01 00:00);
        let moment = match length {
            0 => return Ok(ParamValue::Null),
            4 => {
                let days = self.u16("smalldatetime days")?;
                let minutes = self.u16("smalldatetime minutes")?;
                epoch
                    + time::Duration::days(i64::from(days))
                    + time::Duration::minutes(i64::from(minutes))
            }
            _ => {
                let days = self.u32("datetime days")? as i32;
                let ticks = self.u32("datetime ticks")?;
                epoch
                    + time::Duration::days(i64::from(days))
                    + time::Duration::milliseconds((i64::from(ticks) * 10 + 1) / 3)
            }
        };
        Ok(ParamValue::DateTime(moment))
    }

    fn character(&mut self, unicode: bool) -> Result<ParamValue, RpcError> {
        let max_length = self.u16("character length")?;
        self.skip_collation()?;
        let Some(bytes) = self.sized_bytes(max_length)? else {
            return Ok(ParamValue::Null);
        };
        Ok(text_value(&bytes, unicode))
    }

    /// NTEXT or TEXT: a 4-byte maximum length, the collation, then a 4-byte value length.
    fn long_text(&mut self, unicode: bool) -> Result<ParamValue, RpcError> {
        self.u32("text length")?;
        self.skip_collation()?;
        let length = self.u32("text value length")?;
        if length == u32::MAX {
            return Ok(ParamValue::Null);
        }
        let bytes = self.bytes(length as usize, "text value")?.to_vec();
        Ok(text_value(&bytes, unicode))
    }

    /// Reads a value with a 2-byte length (0xFFFF = NULL), or PLP chunks when the
    /// declared maximum is 0xFFFF (`max` types).
    fn sized_bytes(&mut self, max_length: u16) -> Result<Option<Vec<u8>>, RpcError> {
        if max_length != 0xFFFF {
            let length = self.u16("value length")?;
            if length == 0xFFFF {
                return Ok(None);
            }
            return Ok(Some(self.bytes(usize::from(length), "value")?.to_vec()));
        }
        let total = self.bytes(8, "PLP length")?;
        if total == [0xFF; 8] {
            return Ok(None);
        }
        let mut value = Vec::new();
        loop {
            let chunk = self.u32("PLP chunk length")? as usize;
            if chunk == 0 {
                return Ok(Some(value));
            }
            value.extend_from_slice(self.bytes(chunk, "PLP chunk")?);
        }
    }
}

fn text_value(bytes: &[u8], unicode: bool) -> ParamValue {
    if unicode {
        ParamValue::NText(decode_utf16(bytes).unwrap_or_else(|| {
            String::from_utf16_lossy(
                &bytes
                    .chunks_exact(2)
                    .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
                    .collect::<Vec<u16>>(),
            )
        }))
    } else {
        ParamValue::Text(bytes.iter().map(|&byte| char::from(byte)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(text: &str) -> Vec<u8> {
        text.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    fn nvarchar_param(name: &str, value: &str) -> Vec<u8> {
        let mut out = vec![u8::try_from(name.encode_utf16().count()).unwrap()];
        out.extend(utf16(name));
        out.push(0);
        out.push(0xE7);
        out.extend(8000u16.to_le_bytes());
        out.extend([0x09, 0x04, 0xD0, 0x00, 0x34]);
        let bytes = utf16(value);
        out.extend(u16::try_from(bytes.len()).unwrap().to_le_bytes());
        out.extend(bytes);
        out
    }

    fn int_param(name: &str, value: i32) -> Vec<u8> {
        let mut out = vec![u8::try_from(name.encode_utf16().count()).unwrap()];
        out.extend(utf16(name));
        out.extend([0, 0x26, 4, 4]);
        out.extend(value.to_le_bytes());
        out
    }

    fn executesql(params: &[Vec<u8>]) -> Vec<u8> {
        let mut out = vec![0xFF, 0xFF, 10, 0, 0, 0];
        for param in params {
            out.extend(param);
        }
        out
    }

    #[test]
    fn executesql_substitutes_named_parameters() {
        let payload = executesql(&[
            nvarchar_param("", "SELECT name FROM sys.databases WHERE name = @P1 AND database_id > @P2 AND '@P1' = [@P1]"),
            nvarchar_param("", "@P1 nvarchar(4000),@P2 int"),
            nvarchar_param("@P1", "O'Brien"),
            int_param("@P2", -4),
        ]);

        let batch = parse(&payload, TdsVersion::V7_4)
            .unwrap()
            .into_batch()
            .unwrap();

        assert_eq!(
            batch,
            "SELECT name FROM sys.databases WHERE name = N'O''Brien' AND database_id > -4 AND '@P1' = [@P1]"
        );
    }

    #[test]
    fn executesql_maps_positional_parameters() {
        let payload = executesql(&[
            nvarchar_param("", "SELECT @a, @b10, @b1, @@SPID"),
            nvarchar_param("", "@a numeric(10,2), @b1 int"),
            int_param("", 7),
            int_param("", 8),
        ]);

        let batch = parse(&payload, TdsVersion::V7_4)
            .unwrap()
            .into_batch()
            .unwrap();

        assert_eq!(batch, "SELECT 7, @b10, 8, @@SPID");
    }

    #[test]
    fn executesql_without_parameters() {
        let payload = executesql(&[nvarchar_param("@stmt", "SELECT 1 -- @P1")]);
        let batch = parse(&payload, TdsVersion::V7_4)
            .unwrap()
            .into_batch()
            .unwrap();
        assert_eq!(batch, "SELECT 1 -- @P1");
    }

    #[test]
    fn other_procedure_is_unknown() {
        let mut payload = vec![7, 0];
        payload.extend(utf16("sp_who2"));
        payload.extend([0, 0]);

        let error = parse(&payload, TdsVersion::V7_4)
            .unwrap()
            .into_batch()
            .unwrap_err();

        assert_eq!(error, RpcError::UnknownProcedure("sp_who2".to_string()));
        let (number, _, text) = error.sql_message();
        assert_eq!(number, 2812);
        assert_eq!(text, "Could not find stored procedure 'sp_who2'.");
    }

    #[test]
    fn procedure_by_name_is_executesql() {
        assert!(is_executesql("sp_executesql"));
        assert!(is_executesql("[sys].[SP_EXECUTESQL]"));
        assert!(!is_executesql("sp_execute"));
    }

    #[test]
    fn unknown_type_names_parameter() {
        let mut payload = executesql(&[nvarchar_param("", "SELECT @d")]);
        payload.extend([2]);
        payload.extend(utf16("@d"));
        payload.extend([0, 0x2A, 7]);

        let error = parse(&payload, TdsVersion::V7_4).unwrap_err();

        assert_eq!(
            error,
            RpcError::UnknownType {
                index: 2,
                name: "@d".to_string(),
                type_id: 0x2A
            }
        );
    }

    #[test]
    fn literal_renders_each_kind() {
        let cases = [
            (ParamValue::Null, "NULL"),
            (ParamValue::Bit(true), "1"),
            (
                ParamValue::Decimal {
                    unscaled: -1234,
                    scale: 2,
                },
                "-12.34",
            ),
            (
                ParamValue::Decimal {
                    unscaled: 5,
                    scale: 3,
                },
                "0.005",
            ),
            (ParamValue::Text("a'b".to_string()), "'a''b'"),
            (ParamValue::Binary(vec![0xAB, 0x01]), "0xAB01"),
            (
                ParamValue::DateTime(time::macros::datetime!(2024-02-03 04:05:06.007)),
                "'2024-02-03T04:05:06.007'",
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(value.to_literal(), expected, "{value:?}");
        }
    }
}
