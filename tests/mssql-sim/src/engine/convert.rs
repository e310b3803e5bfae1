//! Value conversions and comparisons with SQL Server's rules for the types the
//! simulator returns: CAST, implicit conversion by type precedence, and the
//! case-insensitive default collation.

use std::cmp::Ordering;

use time::PrimitiveDateTime;
use uuid::Uuid;

use super::messages::{self, Msg};
use crate::reply::{SqlType, Value};

/// Converts `value` of type `from` to `to`, as `CAST` does.
///
/// # Errors
/// Error 245 when a string does not convert to a number, bit or uniqueidentifier.
pub fn cast(value: Value, from: SqlType, to: SqlType) -> Result<Value, Msg> {
    if value == Value::Null {
        return Ok(Value::Null);
    }
    match to {
        SqlType::NVarChar(length) => Ok(Value::Str(truncate(
            to_text(&value, from),
            length.map(u32::from),
        ))),
        SqlType::VarChar(length) | SqlType::Char(length) | SqlType::NChar(length) => Ok(
            Value::Str(truncate(to_text(&value, from), Some(u32::from(length)))),
        ),
        SqlType::Bit => Ok(Value::Bool(to_integer(&value, from, to)? != 0)),
        SqlType::TinyInt | SqlType::SmallInt | SqlType::Int | SqlType::BigInt => Ok(Value::Int(
            i64::try_from(to_integer(&value, from, to)?).unwrap_or(i64::MAX),
        )),
        SqlType::Numeric { scale, .. } => {
            let unscaled = to_integer(&value, from, to)?;
            Ok(Value::Numeric(unscaled * 10i128.pow(u32::from(scale))))
        }
        SqlType::Real | SqlType::Float => Ok(Value::Float(to_float(&value, from))),
        SqlType::UniqueIdentifier => match value {
            Value::Guid(guid) => Ok(Value::Guid(guid)),
            Value::Str(text) => Uuid::parse_str(text.trim()).map(Value::Guid).map_err(|_| {
                messages::conversion_failed(&text, type_name(from), "uniqueidentifier")
            }),
            other => Ok(other),
        },
        SqlType::DateTime | SqlType::VarBinary(_) => Ok(value),
    }
}

fn truncate(text: String, length: Option<u32>) -> String {
    match length {
        Some(length) => text.chars().take(length as usize).collect(),
        None => text,
    }
}

/// The text form SQL Server gives each value when converted to a string.
pub fn to_text(value: &Value, ty: SqlType) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(flag) => if *flag { "1" } else { "0" }.to_string(),
        Value::Int(number) => number.to_string(),
        Value::Float(number) => number.to_string(),
        Value::Numeric(unscaled) => numeric_text(*unscaled, numeric_scale(ty)),
        Value::Str(text) => text.clone(),
        Value::Guid(guid) => guid.hyphenated().to_string().to_ascii_uppercase(),
        Value::DateTime(moment) => datetime_text(*moment),
        // CAST of binary to a character type reads the bytes as characters.
        Value::Bytes(bytes) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

fn numeric_scale(ty: SqlType) -> u8 {
    match ty {
        SqlType::Numeric { scale, .. } => scale,
        _ => 0,
    }
}

fn numeric_text(unscaled: i128, scale: u8) -> String {
    if scale == 0 {
        return unscaled.to_string();
    }
    let divisor = 10i128.pow(u32::from(scale));
    let sign = if unscaled < 0 { "-" } else { "" };
    let magnitude = unscaled.abs();
    format!(
        "{sign}{}.{:0width$}",
        magnitude / divisor,
        magnitude % divisor,
        width = usize::from(scale)
    )
}

/// The default datetime-to-string style 0: `mon dd yyyy hh:miAM`.
fn datetime_text(moment: PrimitiveDateTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS[usize::from(u8::from(moment.month())) - 1];
    let hour = moment.hour();
    let (hour12, meridiem) = match hour {
        0 => (12, "AM"),
        1..=11 => (hour, "AM"),
        12 => (12, "PM"),
        _ => (hour - 12, "PM"),
    };
    format!(
        "{month} {:>2} {} {:>2}:{:02}{meridiem}",
        moment.day(),
        moment.year(),
        hour12,
        moment.minute()
    )
}

fn to_integer(value: &Value, from: SqlType, to: SqlType) -> Result<i128, Msg> {
    match value {
        Value::Bool(flag) => Ok(i128::from(*flag)),
        Value::Int(number) => Ok(i128::from(*number)),
        Value::Float(number) => Ok(*number as i128),
        Value::Numeric(unscaled) => Ok(unscaled / 10i128.pow(u32::from(numeric_scale(from)))),
        Value::Str(text) => {
            let trimmed = text.trim();
            let parsed = if to == SqlType::Bit {
                match trimmed.to_ascii_lowercase().as_str() {
                    "true" => Some(1),
                    "false" => Some(0),
                    _ => trimmed.parse::<i128>().ok(),
                }
            } else {
                trimmed.parse::<i128>().ok()
            };
            parsed.ok_or_else(|| messages::conversion_failed(text, type_name(from), type_name(to)))
        }
        _ => Err(messages::conversion_failed(
            &to_text(value, from),
            type_name(from),
            type_name(to),
        )),
    }
}

fn to_float(value: &Value, from: SqlType) -> f64 {
    match value {
        Value::Bool(flag) => f64::from(u8::from(*flag)),
        Value::Int(number) => *number as f64,
        Value::Float(number) => *number,
        Value::Numeric(unscaled) => *unscaled as f64 / 10f64.powi(i32::from(numeric_scale(from))),
        Value::Str(text) => text.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// The type name as SQL Server writes it in conversion errors.
pub fn type_name(ty: SqlType) -> &'static str {
    match ty {
        SqlType::Bit => "bit",
        SqlType::TinyInt => "tinyint",
        SqlType::SmallInt => "smallint",
        SqlType::Int => "int",
        SqlType::BigInt => "bigint",
        SqlType::Real => "real",
        SqlType::Float => "float",
        SqlType::Numeric { .. } => "numeric",
        SqlType::NVarChar(_) => "nvarchar",
        SqlType::NChar(_) => "nchar",
        SqlType::VarChar(_) => "varchar",
        SqlType::Char(_) => "char",
        SqlType::UniqueIdentifier => "uniqueidentifier",
        SqlType::DateTime => "datetime",
        SqlType::VarBinary(_) => "varbinary",
    }
}

fn is_text(ty: SqlType) -> bool {
    matches!(
        ty,
        SqlType::NVarChar(_) | SqlType::NChar(_) | SqlType::VarChar(_) | SqlType::Char(_)
    )
}

/// Compares two values after SQL Server's implicit conversion: a string meets a number,
/// bit or uniqueidentifier by converting to that type. `None` when either is NULL.
///
/// # Errors
/// Error 245 when the string side does not convert.
pub fn compare(
    left: &Value,
    left_ty: SqlType,
    right: &Value,
    right_ty: SqlType,
) -> Result<Option<Ordering>, Msg> {
    if *left == Value::Null || *right == Value::Null {
        return Ok(None);
    }
    let left = if is_text(left_ty) && !is_text(right_ty) {
        cast(left.clone(), left_ty, right_ty)?
    } else {
        left.clone()
    };
    let right = if is_text(right_ty) && !is_text(left_ty) {
        cast(right.clone(), right_ty, left_ty)?
    } else {
        right.clone()
    };
    let left = scale_to_zero(left, left_ty);
    let right = scale_to_zero(right, right_ty);
    Ok(Some(order_values(&left, &right)))
}

/// Brings a numeric value with a scale to a float so it compares with integers.
fn scale_to_zero(value: Value, ty: SqlType) -> Value {
    match (value, ty) {
        (Value::Numeric(unscaled), SqlType::Numeric { scale, .. }) if scale > 0 => {
            Value::Float(unscaled as f64 / 10f64.powi(i32::from(scale)))
        }
        (value, _) => value,
    }
}

/// Orders two non-NULL values; strings compare case-insensitively and ignore trailing
/// spaces, as the default SQL_Latin1_General_CP1_CI_AS collation does.
pub fn order_values(left: &Value, right: &Value) -> Ordering {
    match (left, right) {
        (Value::Str(a), Value::Str(b)) => {
            let a = a.trim_end_matches(' ').to_lowercase();
            let b = b.trim_end_matches(' ').to_lowercase();
            a.cmp(&b)
        }
        (Value::Guid(a), Value::Guid(b)) => a.cmp(b),
        (Value::DateTime(a), Value::DateTime(b)) => a.cmp(b),
        (Value::Float(a), b) => a.partial_cmp(&number(b)).unwrap_or(Ordering::Equal),
        (a, Value::Float(b)) => number(a).partial_cmp(b).unwrap_or(Ordering::Equal),
        (a, b) => integer(a).cmp(&integer(b)),
    }
}

fn integer(value: &Value) -> i128 {
    match value {
        Value::Bool(flag) => i128::from(*flag),
        Value::Int(number) => i128::from(*number),
        Value::Numeric(number) => *number,
        _ => 0,
    }
}

fn number(value: &Value) -> f64 {
    match value {
        Value::Float(number) => *number,
        other => integer(other) as f64,
    }
}
