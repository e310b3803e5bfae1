//! Statements and expressions of the T-SQL subset the simulator answers.

/// One parsed statement and the batch line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub kind: StatementKind,
    pub line: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StatementKind {
    Select(Select),
    Backup(Backup),
    RestoreVerifyOnly(VerifyOnly),
    Restore(Restore),
    /// `RESTORE HEADERONLY FROM ...`.
    RestoreHeaderOnly(ListRequest),
    /// `RESTORE FILELISTONLY FROM ...`.
    RestoreFileListOnly(ListRequest),
    /// `DBCC CHECKDB [(name)] [WITH ...]`.
    CheckDb(CheckDb),
    CreateDatabase {
        name: String,
    },
    AlterDatabase {
        name: String,
        action: AlterAction,
    },
    DropDatabase {
        names: Vec<String>,
        if_exists: bool,
    },
    Use {
        database: String,
    },
    Set(SetOption),
    BeginTransaction,
    Commit,
    Rollback,
    /// `EXEC[UTE] name ...`; no stored procedure exists, so it always fails with 2812.
    Execute {
        procedure: String,
    },
    /// `KILL session_id`; the UOW form and WITH STATUSONLY are not parsed.
    Kill {
        session_id: u64,
    },
}

/// SET options the engine keeps; the rest are accepted and have no effect here.
#[derive(Debug, Clone, PartialEq)]
pub enum SetOption {
    NoCount(bool),
    ImplicitTransactions(bool),
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    pub top: Option<u64>,
    pub items: Vec<SelectItem>,
    pub from: Option<FromClause>,
    pub filter: Option<Condition>,
    pub order_by: Vec<OrderItem>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    /// `*` or `alias.*`.
    Wildcard {
        qualifier: Option<String>,
    },
    Expr {
        expr: Expr,
        alias: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct FromClause {
    pub table: TableRef,
    pub joins: Vec<Join>,
}

/// An object name of up to three parts and its optional alias.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRef {
    pub database: Option<String>,
    pub schema: Option<String>,
    pub name: String,
    pub alias: Option<String>,
}

impl TableRef {
    /// The name as written, as error 208 quotes it.
    pub fn written_name(&self) -> String {
        let mut parts = Vec::new();
        if let Some(database) = &self.database {
            parts.push(database.as_str());
            parts.push(self.schema.as_deref().unwrap_or(""));
        } else if let Some(schema) = &self.schema {
            parts.push(schema.as_str());
        }
        parts.push(&self.name);
        parts.join(".")
    }
}

/// `[INNER] JOIN table ON condition`.
#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    pub table: TableRef,
    pub on: Condition,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderItem {
    pub expr: Expr,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Compare {
        left: Expr,
        op: CompareOp,
        right: Expr,
    },
    In {
        expr: Expr,
        list: Vec<Expr>,
        negated: bool,
    },
    IsNull {
        expr: Expr,
        negated: bool,
    },
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    NotEq,
    Less,
    LessEq,
    Greater,
    GreaterEq,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `column`, `alias.column`; `parts` as written, 1 to 4 of them.
    Column(Vec<String>),
    Integer(i64),
    Decimal(String),
    Str {
        value: String,
        national: bool,
    },
    Null,
    /// `@@VERSION`, `@@SPID`, ...; the name without the at signs, upper case.
    Global(String),
    /// `@name`: a local variable, which the simulator never declares.
    Variable(String),
    /// A built-in function; `name` upper case.
    Function {
        name: String,
        args: Vec<Expr>,
    },
    Cast {
        expr: Box<Expr>,
        ty: TypeName,
    },
    Negate(Box<Expr>),
}

/// A type name in `CAST(.. AS type)`, upper case, with its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeName {
    pub name: String,
    /// `(n)`, `(p, s)`; `MAX` is `u32::MAX`.
    pub args: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupKind {
    Database,
    Log,
}

/// `BACKUP DATABASE|LOG name TO DISK = '..' [, ...] [WITH ...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Backup {
    pub kind: BackupKind,
    pub database: String,
    pub devices: Vec<String>,
    pub options: BackupOptions,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct BackupOptions {
    pub differential: bool,
    pub copy_only: bool,
    /// `Some(true)` CHECKSUM, `Some(false)` NO_CHECKSUM, `None` the default.
    pub checksum: Option<bool>,
    pub compression: Option<bool>,
    pub init: bool,
    pub format: bool,
    pub skip: bool,
    /// STATS percent step; `Some(10)` for a bare STATS.
    pub stats: Option<u32>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub buffer_count: Option<u64>,
    pub max_transfer_size: Option<u64>,
    pub block_size: Option<u64>,
    pub encryption: Option<BackupEncryption>,
}

/// `RESTORE VERIFYONLY FROM DISK = '..' [WITH ...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyOnly {
    pub devices: Vec<String>,
    pub checksum: Option<bool>,
    pub file: Option<u32>,
    pub stats: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreKind {
    Database,
    Log,
}

/// `RESTORE DATABASE|LOG name [FROM DISK = '..' [, ...]] [WITH ...]`. Without FROM, only
/// recovery of a database left RESTORING is requested.
#[derive(Debug, Clone, PartialEq)]
pub struct Restore {
    pub kind: RestoreKind,
    pub database: String,
    pub devices: Vec<String>,
    pub options: RestoreOptions,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RestoreOptions {
    /// `MOVE 'logical' TO 'path'` pairs, in order.
    pub moves: Vec<(String, String)>,
    pub replace: bool,
    /// `Some(false)` NORECOVERY, `Some(true)` RECOVERY, `None` the default (RECOVERY).
    pub recovery: Option<bool>,
    /// STOPAT text as written; it is converted when the statement runs.
    pub stop_at: Option<String>,
    pub file: Option<u32>,
    pub checksum: Option<bool>,
    pub stats: Option<u32>,
}

/// The devices and FILE option of RESTORE HEADERONLY and FILELISTONLY.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListRequest {
    pub devices: Vec<String>,
    pub file: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CheckDb {
    /// The database named in parentheses; `None` checks the current database.
    pub database: Option<String>,
    pub no_infomsgs: bool,
}

/// BACKUP ... WITH ENCRYPTION (ALGORITHM = .., SERVER CERTIFICATE | ASYMMETRIC KEY = ..).
#[derive(Debug, Clone, PartialEq)]
pub struct BackupEncryption {
    /// Upper case, e.g. `AES_256`.
    pub algorithm: String,
    pub encryptor: Encryptor,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Encryptor {
    Certificate(String),
    AsymmetricKey(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlterAction {
    Recovery(crate::config::RecoveryModel),
    Offline,
    Online,
    Emergency,
    ReadOnly(bool),
}
