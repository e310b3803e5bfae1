//! Binds and runs a SELECT over the virtual tables: joins, WHERE, ORDER BY, TOP, and
//! the select list with CAST, SERVERPROPERTY and `@@` globals.

use std::cmp::Ordering;

use time::PrimitiveDateTime;

use super::messages::{self, Msg};
use super::server_info::ServerInfo;
use super::sql::ast::{
    CompareOp, Condition, Expr, OrderItem, Select, SelectItem, TableRef, TypeName,
};
use super::state::InstanceState;
use super::tables::{self, VirtualTable};
use super::Session;
use crate::reply::{Column, SqlType, Value};

/// What a SELECT may read.
pub struct QueryContext<'a> {
    pub info: &'a ServerInfo,
    pub state: &'a InstanceState,
    pub session: &'a Session,
    /// Server local time.
    pub now: PrimitiveDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResultSet {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
}

/// How a SELECT failed, which decides what else of the batch runs.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectError {
    /// 208 for a missing table: SQL Server resolves the name only when the statement
    /// runs (deferred name resolution), so statements before it run.
    Deferred(Msg),
    /// A binding error against existing tables (207, 209, 4104, 243): found when the
    /// batch compiles, so none of its statements run.
    Compile(Msg),
    /// A run-time error such as a failed conversion (245), which ends the batch.
    Runtime(Msg),
}

/// Runs `select`; with `bind_only`, checks names and types without reading rows.
///
/// # Errors
/// See [`SelectError`].
pub fn run(select: &Select, ctx: &QueryContext, bind_only: bool) -> Result<ResultSet, SelectError> {
    let sources = load_sources(select, ctx, bind_only)?;
    let binder = Binder {
        ctx,
        sources: &sources,
    };
    let items = binder
        .select_list(&select.items)
        .map_err(SelectError::Compile)?;
    let filter = match &select.filter {
        Some(condition) => Some(binder.condition(condition).map_err(SelectError::Compile)?),
        None => None,
    };
    let joins: Vec<BoundCondition> = match &select.from {
        Some(from) => from
            .joins
            .iter()
            .map(|join| binder.condition(&join.on))
            .collect::<Result<_, _>>()
            .map_err(SelectError::Compile)?,
        None => Vec::new(),
    };
    let order = binder
        .order_by(&select.order_by, &items)
        .map_err(SelectError::Compile)?;
    let columns = items.iter().map(|item| item.column()).collect();
    if bind_only {
        return Ok(ResultSet {
            columns,
            rows: Vec::new(),
        });
    }
    let rows = evaluate(
        &sources,
        &joins,
        filter.as_ref(),
        &items,
        &order,
        select.top,
    )
    .map_err(SelectError::Runtime)?;
    Ok(ResultSet { columns, rows })
}

/// A table in FROM with the name that qualifies its columns.
struct Source {
    qualifier: String,
    table: VirtualTable,
}

fn load_sources(
    select: &Select,
    ctx: &QueryContext,
    bind_only: bool,
) -> Result<Vec<Source>, SelectError> {
    let Some(from) = &select.from else {
        return Ok(Vec::new());
    };
    let mut refs: Vec<&TableRef> = vec![&from.table];
    refs.extend(from.joins.iter().map(|join| &join.table));
    let mut sources = Vec::new();
    for table_ref in refs {
        let id = tables::resolve(
            table_ref.database.as_deref(),
            table_ref.schema.as_deref(),
            &table_ref.name,
            &ctx.session.database,
            ctx.state,
        )
        .ok_or_else(|| {
            SelectError::Deferred(messages::invalid_object(&table_ref.written_name()))
        })?;
        let table = if bind_only {
            VirtualTable {
                columns: tables::columns(id),
                rows: Vec::new(),
            }
        } else {
            tables::materialize(id, ctx.state, ctx.now)
        };
        let qualifier = table_ref
            .alias
            .clone()
            .unwrap_or_else(|| table_ref.name.clone());
        sources.push(Source { qualifier, table });
    }
    Ok(sources)
}

// ---- bound expressions ----

#[derive(Debug, Clone)]
enum Bound {
    Column {
        source: usize,
        index: usize,
    },
    Const(Value),
    Cast {
        inner: Box<Bound>,
        from: SqlType,
        to: SqlType,
    },
    Negate(Box<Bound>),
}

#[derive(Debug, Clone)]
struct Typed {
    bound: Bound,
    ty: SqlType,
    nullable: bool,
    name: String,
}

impl Typed {
    fn constant(value: Value, ty: SqlType) -> Typed {
        let nullable = value == Value::Null;
        Typed {
            bound: Bound::Const(value),
            ty,
            nullable,
            name: String::new(),
        }
    }

    fn column(&self) -> Column {
        Column {
            name: self.name.clone(),
            ty: self.ty,
            nullable: self.nullable,
        }
    }
}

#[derive(Debug, Clone)]
enum BoundCondition {
    Compare {
        left: Typed,
        op: CompareOp,
        right: Typed,
    },
    In {
        expr: Typed,
        list: Vec<Typed>,
        negated: bool,
    },
    IsNull {
        expr: Typed,
        negated: bool,
    },
    And(Box<BoundCondition>, Box<BoundCondition>),
    Or(Box<BoundCondition>, Box<BoundCondition>),
    Not(Box<BoundCondition>),
}

/// A sort key: an output column or an expression over the sources.
enum SortKey {
    Output(usize),
    Expr(Typed),
}

struct Binder<'a> {
    ctx: &'a QueryContext<'a>,
    sources: &'a [Source],
}

impl Binder<'_> {
    fn select_list(&self, items: &[SelectItem]) -> Result<Vec<Typed>, Msg> {
        let mut bound = Vec::new();
        for item in items {
            match item {
                SelectItem::Wildcard { qualifier } => {
                    bound.extend(self.wildcard(qualifier.as_deref())?)
                }
                SelectItem::Expr { expr, alias } => {
                    let mut typed = self.expr(expr)?;
                    if let Some(alias) = alias {
                        typed.name = alias.clone();
                    }
                    bound.push(typed);
                }
            }
        }
        Ok(bound)
    }

    fn wildcard(&self, qualifier: Option<&str>) -> Result<Vec<Typed>, Msg> {
        let mut bound = Vec::new();
        let mut matched = false;
        for (source_index, source) in self.sources.iter().enumerate() {
            if qualifier.is_some_and(|q| !q.eq_ignore_ascii_case(&source.qualifier)) {
                continue;
            }
            matched = true;
            for (index, column) in source.table.columns.iter().enumerate() {
                bound.push(Typed {
                    bound: Bound::Column {
                        source: source_index,
                        index,
                    },
                    ty: column.ty,
                    nullable: column.nullable,
                    name: column.name.clone(),
                });
            }
        }
        match qualifier {
            Some(q) if !matched => Err(messages::unbound_identifier(q)),
            // `SELECT *` without FROM is error 263 in SQL Server.
            None if self.sources.is_empty() => Err(Msg {
                number: 263,
                state: 1,
                class: 16,
                text: "Must specify table to select from.".into(),
            }),
            _ => Ok(bound),
        }
    }

    fn order_by(
        &self,
        order_by: &[OrderItem],
        items: &[Typed],
    ) -> Result<Vec<(SortKey, bool)>, Msg> {
        let mut keys = Vec::new();
        for item in order_by {
            let key = match &item.expr {
                Expr::Integer(position) => {
                    let index = usize::try_from(*position).unwrap_or(0);
                    if index == 0 || index > items.len() {
                        return Err(Msg {
                            number: 108,
                            state: 1,
                            class: 16,
                            text: format!("The ORDER BY position number {position} is out of range of the number of items in the select list."),
                        });
                    }
                    SortKey::Output(index - 1)
                }
                Expr::Column(parts) if parts.len() == 1 => {
                    let alias = items
                        .iter()
                        .position(|item| item.name.eq_ignore_ascii_case(&parts[0]));
                    match alias {
                        Some(index) if self.resolve_column(parts).is_err() => {
                            SortKey::Output(index)
                        }
                        _ => SortKey::Expr(self.expr(&item.expr)?),
                    }
                }
                expr => SortKey::Expr(self.expr(expr)?),
            };
            keys.push((key, item.descending));
        }
        Ok(keys)
    }

    fn condition(&self, condition: &Condition) -> Result<BoundCondition, Msg> {
        Ok(match condition {
            Condition::Compare { left, op, right } => BoundCondition::Compare {
                left: self.expr(left)?,
                op: *op,
                right: self.expr(right)?,
            },
            Condition::In {
                expr,
                list,
                negated,
            } => BoundCondition::In {
                expr: self.expr(expr)?,
                list: list
                    .iter()
                    .map(|item| self.expr(item))
                    .collect::<Result<_, _>>()?,
                negated: *negated,
            },
            Condition::IsNull { expr, negated } => BoundCondition::IsNull {
                expr: self.expr(expr)?,
                negated: *negated,
            },
            Condition::And(left, right) => BoundCondition::And(
                Box::new(self.condition(left)?),
                Box::new(self.condition(right)?),
            ),
            Condition::Or(left, right) => BoundCondition::Or(
                Box::new(self.condition(left)?),
                Box::new(self.condition(right)?),
            ),
            Condition::Not(inner) => BoundCondition::Not(Box::new(self.condition(inner)?)),
        })
    }

    fn expr(&self, expr: &Expr) -> Result<Typed, Msg> {
        match expr {
            Expr::Column(parts) => self.resolve_column(parts),
            Expr::Integer(value) => {
                let ty = if i32::try_from(*value).is_ok() {
                    SqlType::Int
                } else {
                    SqlType::BigInt
                };
                Ok(Typed::constant(Value::Int(*value), ty))
            }
            Expr::Decimal(text) => Ok(decimal_literal(text)),
            Expr::Str { value, national } => {
                let length = value.chars().count().max(1);
                let ty = if *national {
                    SqlType::NVarChar(Some(u16::try_from(length.min(4000)).unwrap_or(4000)))
                } else {
                    SqlType::VarChar(u16::try_from(length.min(8000)).unwrap_or(8000))
                };
                Ok(Typed::constant(Value::Str(value.clone()), ty))
            }
            Expr::Null => Ok(Typed::constant(Value::Null, SqlType::Int)),
            Expr::Global(name) => self.global(name),
            Expr::Variable(name) => Err(messages::undeclared_variable(name)),
            Expr::Function { name, args } => self.function(name, args),
            Expr::Cast { expr, ty } => {
                let inner = self.expr(expr)?;
                let to = cast_type(ty)?;
                Ok(Typed {
                    nullable: inner.nullable,
                    bound: Bound::Cast {
                        inner: Box::new(inner.bound),
                        from: inner.ty,
                        to,
                    },
                    ty: to,
                    name: String::new(),
                })
            }
            Expr::Negate(inner) => {
                let inner = self.expr(inner)?;
                Ok(Typed {
                    bound: Bound::Negate(Box::new(inner.bound)),
                    name: String::new(),
                    ..inner
                })
            }
        }
    }

    fn resolve_column(&self, parts: &[String]) -> Result<Typed, Msg> {
        let (qualifier, name) = match parts {
            [name] => (None, name),
            [.., qualifier, name] => (Some(qualifier), name),
            [] => return Err(messages::invalid_column("")),
        };
        let mut found = None;
        let mut qualifier_matched = false;
        for (source_index, source) in self.sources.iter().enumerate() {
            if qualifier.is_some_and(|q| !q.eq_ignore_ascii_case(&source.qualifier)) {
                continue;
            }
            qualifier_matched = true;
            let Some(index) = source
                .table
                .columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(name))
            else {
                continue;
            };
            if found.is_some() {
                return Err(messages::ambiguous_column(name));
            }
            found = Some((source_index, index));
        }
        if qualifier.is_some() && !qualifier_matched {
            return Err(messages::unbound_identifier(&parts.join(".")));
        }
        let (source, index) = found.ok_or_else(|| messages::invalid_column(name))?;
        let column = &self.sources[source].table.columns[index];
        Ok(Typed {
            bound: Bound::Column { source, index },
            ty: column.ty,
            nullable: column.nullable,
            name: column.name.clone(),
        })
    }

    fn global(&self, name: &str) -> Result<Typed, Msg> {
        let info = self.ctx.info;
        let session = self.ctx.session;
        let (value, ty) = match name {
            "VERSION" => (
                Value::Str(info.version_text()),
                SqlType::NVarChar(Some(300)),
            ),
            "SPID" => (Value::Int(session.spid.into()), SqlType::SmallInt),
            "SERVERNAME" => (Value::Str(info.server_name()), SqlType::NVarChar(Some(128))),
            "SERVICENAME" => {
                let service = info
                    .instance_name
                    .clone()
                    .unwrap_or_else(|| "MSSQLSERVER".into());
                (Value::Str(service), SqlType::NVarChar(Some(128)))
            }
            "TRANCOUNT" => (Value::Int(session.transaction_depth.into()), SqlType::Int),
            "LANGUAGE" => (
                Value::Str("us_english".into()),
                SqlType::NVarChar(Some(128)),
            ),
            "ROWCOUNT" | "ERROR" => (Value::Int(0), SqlType::Int),
            _ => return Err(messages::undeclared_variable(&format!("@@{name}"))),
        };
        Ok(Typed::constant(value, ty))
    }

    fn function(&self, name: &str, args: &[Expr]) -> Result<Typed, Msg> {
        let constants: Vec<Typed> = args
            .iter()
            .map(|arg| self.expr(arg))
            .collect::<Result<_, _>>()?;
        let text_arg = |index: usize| match constants.get(index).map(|typed| &typed.bound) {
            Some(Bound::Const(Value::Str(text))) => Some(text.clone()),
            _ => None,
        };
        let state = self.ctx.state;
        let (value, ty) = match name {
            "SERVERPROPERTY" => {
                // SERVERPROPERTY returns sql_variant, which the reply contract has no
                // type for; the value goes out with its base type instead.
                // TODO: send sql_variant once the TDS layer can encode it.
                let property = text_arg(0).unwrap_or_default();
                self.ctx.info.property(&property)
            }
            "DB_NAME" => {
                let name = match constants.first().map(|typed| &typed.bound) {
                    Some(Bound::Const(Value::Int(id))) => i32::try_from(*id)
                        .ok()
                        .and_then(|id| state.database_by_id(id))
                        .map(|database| database.name.clone()),
                    _ => Some(self.ctx.session.database.clone()),
                };
                (
                    name.map_or(Value::Null, Value::Str),
                    SqlType::NVarChar(Some(128)),
                )
            }
            "DB_ID" => {
                let name = text_arg(0).unwrap_or_else(|| self.ctx.session.database.clone());
                let id = state
                    .database(&name)
                    .map_or(Value::Null, |database| Value::Int(database.id.into()));
                (id, SqlType::SmallInt)
            }
            "SUSER_SNAME" | "SUSER_NAME" | "ORIGINAL_LOGIN" => (
                Value::Str(self.ctx.session.login.clone()),
                SqlType::NVarChar(Some(128)),
            ),
            "GETDATE" | "CURRENT_TIMESTAMP" => (Value::DateTime(self.ctx.now), SqlType::DateTime),
            _ => return Err(messages::unknown_function(name)),
        };
        Ok(Typed::constant(value, ty))
    }
}

fn decimal_literal(text: &str) -> Typed {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = format!("{whole}{fraction}");
    let unscaled: i128 = digits.parse().unwrap_or(0);
    let precision = u8::try_from(digits.trim_start_matches('0').len().max(1)).unwrap_or(38);
    let scale = u8::try_from(fraction.len()).unwrap_or(0);
    let ty = SqlType::Numeric {
        precision: precision.max(scale),
        scale,
    };
    Typed::constant(Value::Numeric(unscaled), ty)
}

/// The result type of `CAST(.. AS ty)`; a length left out defaults to 30 in CAST
/// (CAST and CONVERT (Transact-SQL)).
fn cast_type(ty: &TypeName) -> Result<SqlType, Msg> {
    let length = |max: u32| -> Option<u32> {
        match ty.args.first() {
            None => Some(30),
            Some(&u32::MAX) => None,
            Some(&n) => Some(n.min(max)),
        }
    };
    Ok(match ty.name.as_str() {
        "NVARCHAR" => SqlType::NVarChar(length(4000).map(|n| n as u16)),
        "SYSNAME" => SqlType::NVarChar(Some(128)),
        "VARCHAR" => SqlType::VarChar(length(8000).unwrap_or(8000) as u16),
        "NCHAR" => SqlType::NChar(ty.args.first().copied().unwrap_or(1).min(4000) as u16),
        "CHAR" => SqlType::Char(ty.args.first().copied().unwrap_or(1).min(8000) as u16),
        "INT" => SqlType::Int,
        "BIGINT" => SqlType::BigInt,
        "SMALLINT" => SqlType::SmallInt,
        "TINYINT" => SqlType::TinyInt,
        "BIT" => SqlType::Bit,
        "REAL" => SqlType::Real,
        "FLOAT" => SqlType::Float,
        "DATETIME" => SqlType::DateTime,
        "UNIQUEIDENTIFIER" => SqlType::UniqueIdentifier,
        "NUMERIC" | "DECIMAL" => {
            let precision = ty.args.first().copied().unwrap_or(18).min(38) as u8;
            let scale = ty
                .args
                .get(1)
                .copied()
                .unwrap_or(0)
                .min(u32::from(precision)) as u8;
            SqlType::Numeric { precision, scale }
        }
        _ => return Err(messages::unknown_type(&ty.name.to_ascii_lowercase())),
    })
}

// ---- evaluation ----

/// One joined row: a row index per source.
type RowRef = Vec<usize>;

fn evaluate(
    sources: &[Source],
    joins: &[BoundCondition],
    filter: Option<&BoundCondition>,
    items: &[Typed],
    order: &[(SortKey, bool)],
    top: Option<u64>,
) -> Result<Vec<Vec<Value>>, Msg> {
    let mut rows: Vec<RowRef> = if sources.is_empty() {
        vec![Vec::new()]
    } else {
        Vec::new()
    };
    if let Some(first) = sources.first() {
        rows = (0..first.table.rows.len())
            .map(|index| vec![index])
            .collect();
    }
    for (join_index, on) in joins.iter().enumerate() {
        let source = &sources[join_index + 1];
        let mut joined = Vec::new();
        for row in &rows {
            for index in 0..source.table.rows.len() {
                let mut candidate = row.clone();
                candidate.push(index);
                if test(on, sources, &candidate)? == Some(true) {
                    joined.push(candidate);
                }
            }
        }
        rows = joined;
    }
    if let Some(filter) = filter {
        let mut kept = Vec::new();
        for row in rows {
            if test(filter, sources, &row)? == Some(true) {
                kept.push(row);
            }
        }
        rows = kept;
    }
    let mut output = Vec::new();
    for row in &rows {
        let values: Vec<Value> = items
            .iter()
            .map(|item| eval(item, sources, row))
            .collect::<Result<_, _>>()?;
        let keys: Vec<Value> = order
            .iter()
            .map(|(key, _)| match key {
                SortKey::Output(index) => Ok(values[*index].clone()),
                SortKey::Expr(typed) => eval(typed, sources, row),
            })
            .collect::<Result<_, _>>()?;
        output.push((keys, values));
    }
    output.sort_by(|(left, _), (right, _)| {
        for (index, (_, descending)) in order.iter().enumerate() {
            let ordering = sort_order(&left[index], &right[index]);
            let ordering = if *descending {
                ordering.reverse()
            } else {
                ordering
            };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        Ordering::Equal
    });
    let limit = top.map_or(usize::MAX, |top| usize::try_from(top).unwrap_or(usize::MAX));
    Ok(output
        .into_iter()
        .take(limit)
        .map(|(_, values)| values)
        .collect())
}

fn eval(typed: &Typed, sources: &[Source], row: &RowRef) -> Result<Value, Msg> {
    eval_bound(&typed.bound, sources, row)
}

fn eval_bound(bound: &Bound, sources: &[Source], row: &RowRef) -> Result<Value, Msg> {
    match bound {
        Bound::Column { source, index } => {
            Ok(sources[*source].table.rows[row[*source]][*index].clone())
        }
        Bound::Const(value) => Ok(value.clone()),
        Bound::Negate(inner) => Ok(match eval_bound(inner, sources, row)? {
            Value::Int(value) => Value::Int(-value),
            Value::Float(value) => Value::Float(-value),
            Value::Numeric(value) => Value::Numeric(-value),
            other => other,
        }),
        Bound::Cast { inner, from, to } => {
            let value = eval_bound(inner, sources, row)?;
            super::convert::cast(value, *from, *to)
        }
    }
}

/// Three-valued logic: `None` is UNKNOWN, as comparisons with NULL are.
fn test(condition: &BoundCondition, sources: &[Source], row: &RowRef) -> Result<Option<bool>, Msg> {
    Ok(match condition {
        BoundCondition::Compare { left, op, right } => {
            let left_value = eval(left, sources, row)?;
            let right_value = eval(right, sources, row)?;
            super::convert::compare(&left_value, left.ty, &right_value, right.ty)?.map(|ordering| {
                match op {
                    CompareOp::Eq => ordering == Ordering::Equal,
                    CompareOp::NotEq => ordering != Ordering::Equal,
                    CompareOp::Less => ordering == Ordering::Less,
                    CompareOp::LessEq => ordering != Ordering::Greater,
                    CompareOp::Greater => ordering == Ordering::Greater,
                    CompareOp::GreaterEq => ordering != Ordering::Less,
                }
            })
        }
        BoundCondition::In {
            expr,
            list,
            negated,
        } => {
            let value = eval(expr, sources, row)?;
            let mut result = Some(false);
            for item in list {
                let candidate = eval(item, sources, row)?;
                match super::convert::compare(&value, expr.ty, &candidate, item.ty)? {
                    Some(Ordering::Equal) => {
                        result = Some(true);
                        break;
                    }
                    None => result = None,
                    Some(_) => {}
                }
            }
            if *negated {
                result.map(|found| !found)
            } else {
                result
            }
        }
        BoundCondition::IsNull { expr, negated } => {
            let is_null = eval(expr, sources, row)? == Value::Null;
            Some(is_null != *negated)
        }
        BoundCondition::And(left, right) => {
            match (test(left, sources, row)?, test(right, sources, row)?) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            }
        }
        BoundCondition::Or(left, right) => {
            match (test(left, sources, row)?, test(right, sources, row)?) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            }
        }
        BoundCondition::Not(inner) => test(inner, sources, row)?.map(|value| !value),
    })
}

/// ORDER BY comparison: NULL sorts first, as SQL Server sorts it lowest.
fn sort_order(left: &Value, right: &Value) -> Ordering {
    match (left, right) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        _ => super::convert::order_values(left, right),
    }
}
