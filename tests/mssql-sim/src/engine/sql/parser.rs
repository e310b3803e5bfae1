//! Recursive-descent parser for a batch. Statements end at `;`, at the end of the batch,
//! or where the next statement's keyword starts, as SQL Server reads batches without
//! semicolons.

use super::ast::*;
use super::lexer::{tokenize, LexError, Token, TokenKind};
use crate::config::RecoveryModel;

/// Why a batch did not parse; each maps to one SQL Server compile error, and SQL Server
/// runs none of the batch's statements after one.
#[derive(Debug, Clone, PartialEq)]
pub enum ParseError {
    /// 102 "Incorrect syntax near '%.*ls'." or, for a reserved keyword, 156 "Incorrect
    /// syntax near the keyword '%.*ls'.".
    Syntax {
        near: String,
        keyword: bool,
        line: i32,
    },
    /// 105 "Unclosed quotation mark after the character string '%.*ls'.".
    Unclosed { text: String, line: i32 },
    /// 113 "Missing end comment mark '*/'.".
    MissingEndComment { line: i32 },
    /// 195 "'%.*ls' is not a recognized SET option.".
    UnknownSetOption { name: String, line: i32 },
    /// 155 "'%.*ls' is not a recognized %ls option.".
    UnknownOption {
        name: String,
        statement: &'static str,
        line: i32,
    },
    /// 137 "Must declare the scalar variable \"%.*ls\".".
    UndeclaredVariable { name: String, line: i32 },
}

/// Reserved T-SQL keywords the parser meets; one of them where a name or expression
/// belongs is error 156, and none of them is read as a column alias.
const RESERVED: &[&str] = &[
    "ADD",
    "ALL",
    "ALTER",
    "AND",
    "ANY",
    "AS",
    "ASC",
    "BACKUP",
    "BEGIN",
    "BETWEEN",
    "BY",
    "CASE",
    "CAST",
    "COMMIT",
    "CREATE",
    "CROSS",
    "CURRENT",
    "DATABASE",
    "DECLARE",
    "DEFAULT",
    "DELETE",
    "DESC",
    "DISK",
    "DISTINCT",
    "DROP",
    "ELSE",
    "END",
    "EXEC",
    "EXECUTE",
    "EXISTS",
    "FROM",
    "FULL",
    "GROUP",
    "HAVING",
    "IF",
    "IN",
    "INNER",
    "INSERT",
    "INTO",
    "IS",
    "JOIN",
    "KILL",
    "LEFT",
    "LIKE",
    "NOT",
    "NULL",
    "OF",
    "OFF",
    "ON",
    "OR",
    "ORDER",
    "OUTER",
    "PRINT",
    "RESTORE",
    "RETURN",
    "RIGHT",
    "ROLLBACK",
    "SELECT",
    "SET",
    "TABLE",
    "TAPE",
    "TOP",
    "TRAN",
    "TRANSACTION",
    "UNION",
    "UPDATE",
    "USE",
    "VALUES",
    "WHERE",
    "WHILE",
    "WITH",
];

/// SET options that take ON or OFF and change nothing the simulator models.
const BOOLEAN_SET_OPTIONS: &[&str] = &[
    "ANSI_NULLS",
    "ANSI_NULL_DFLT_ON",
    "ANSI_NULL_DFLT_OFF",
    "ANSI_PADDING",
    "ANSI_WARNINGS",
    "ANSI_DEFAULTS",
    "ARITHABORT",
    "ARITHIGNORE",
    "CONCAT_NULL_YIELDS_NULL",
    "CURSOR_CLOSE_ON_COMMIT",
    "FMTONLY",
    "NOEXEC",
    "NUMERIC_ROUNDABORT",
    "PARSEONLY",
    "QUOTED_IDENTIFIER",
    "XACT_ABORT",
    "STATISTICS",
    "SHOWPLAN_ALL",
    "SHOWPLAN_TEXT",
    "SHOWPLAN_XML",
    "FORCEPLAN",
    "NOCOUNT",
    "IMPLICIT_TRANSACTIONS",
    "NO_BROWSETABLE",
    "REMOTE_PROC_TRANSACTIONS",
];

/// Parses every statement of a batch.
///
/// # Errors
/// The first lexical or syntax error, as SQL Server reports it for the whole batch.
pub fn parse_batch(sql: &str) -> Result<Vec<Statement>, ParseError> {
    let tokens = tokenize(sql).map_err(|error| match error {
        LexError::Unclosed { text, line } if text == "*/" => ParseError::MissingEndComment { line },
        LexError::Unclosed { text, line } => ParseError::Unclosed { text, line },
        LexError::Unexpected { text, line } => ParseError::Syntax {
            near: text,
            keyword: false,
            line,
        },
    })?;
    let mut parser = Parser { tokens, pos: 0 };
    parser.batch()
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

type Parsed<T> = Result<T, ParseError>;

impl Parser {
    fn batch(&mut self) -> Parsed<Vec<Statement>> {
        let mut statements = Vec::new();
        while let Some(token) = self.peek() {
            if token.kind == TokenKind::Symbol(";") {
                self.pos += 1;
                continue;
            }
            let first = statements.is_empty();
            statements.push(self.statement(first)?);
        }
        Ok(statements)
    }

    // ---- token helpers ----

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn peek_at(&self, ahead: usize) -> Option<&Token> {
        self.tokens.get(self.pos + ahead)
    }

    fn line(&self) -> i32 {
        self.peek()
            .or(self.tokens.last())
            .map_or(1, |token| token.line)
    }

    /// The error for the current token, or for the last one at the end of the batch.
    fn unexpected<T>(&self) -> Parsed<T> {
        let token = self.peek().or(self.tokens.last());
        let Some(token) = token else {
            return Err(ParseError::Syntax {
                near: String::new(),
                keyword: false,
                line: 1,
            });
        };
        let keyword = matches!(&token.kind, TokenKind::Word(word) if is_reserved(word));
        Err(ParseError::Syntax {
            near: token.text.clone(),
            keyword,
            line: token.line,
        })
    }

    fn at_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token { kind: TokenKind::Word(w), .. }) if w.eq_ignore_ascii_case(word))
    }

    fn at_word_ahead(&self, ahead: usize, word: &str) -> bool {
        matches!(self.peek_at(ahead), Some(Token { kind: TokenKind::Word(w), .. }) if w.eq_ignore_ascii_case(word))
    }

    fn at_symbol(&self, symbol: &str) -> bool {
        matches!(self.peek(), Some(Token { kind: TokenKind::Symbol(s), .. }) if *s == symbol)
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let found = self.at_word(word);
        if found {
            self.pos += 1;
        }
        found
    }

    fn eat_symbol(&mut self, symbol: &str) -> bool {
        let found = self.at_symbol(symbol);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect_word(&mut self, word: &str) -> Parsed<()> {
        if self.eat_word(word) {
            Ok(())
        } else {
            self.unexpected()
        }
    }

    fn expect_symbol(&mut self, symbol: &str) -> Parsed<()> {
        if self.eat_symbol(symbol) {
            Ok(())
        } else {
            self.unexpected()
        }
    }

    /// The upper-case text of the current word, if it is one.
    fn word_upper(&self) -> Option<String> {
        match self.peek() {
            Some(Token {
                kind: TokenKind::Word(word),
                ..
            }) => Some(word.to_ascii_uppercase()),
            _ => None,
        }
    }

    /// A name: a delimited identifier or a regular one that is not reserved.
    fn identifier(&mut self) -> Parsed<String> {
        match self.peek().map(|token| token.kind.clone()) {
            Some(TokenKind::QuotedIdent(name)) => {
                self.pos += 1;
                Ok(name)
            }
            Some(TokenKind::Word(word)) if !is_reserved(&word) => {
                self.pos += 1;
                Ok(word)
            }
            Some(TokenKind::Variable(name)) => Err(ParseError::UndeclaredVariable {
                name,
                line: self.line(),
            }),
            _ => self.unexpected(),
        }
    }

    fn string(&mut self) -> Parsed<String> {
        match self.peek().map(|token| token.kind.clone()) {
            Some(TokenKind::Str { value, .. }) => {
                self.pos += 1;
                Ok(value)
            }
            Some(TokenKind::Variable(name)) => Err(ParseError::UndeclaredVariable {
                name,
                line: self.line(),
            }),
            _ => self.unexpected(),
        }
    }

    fn unsigned(&mut self) -> Parsed<u64> {
        if let Some(Token {
            kind: TokenKind::Number(text),
            ..
        }) = self.peek()
        {
            if let Ok(value) = text.parse() {
                self.pos += 1;
                return Ok(value);
            }
        }
        self.unexpected()
    }

    /// True where a new statement may start without a semicolon.
    fn at_statement_end(&self) -> bool {
        match self.peek() {
            None => true,
            Some(Token {
                kind: TokenKind::Symbol(";"),
                ..
            }) => true,
            Some(Token {
                kind: TokenKind::Word(word),
                ..
            }) => starts_statement(word),
            _ => false,
        }
    }

    /// Fails unless the statement ends here.
    fn end_statement(&self) -> Parsed<()> {
        if self.at_statement_end() {
            Ok(())
        } else {
            self.unexpected()
        }
    }

    // ---- statements ----

    fn statement(&mut self, first_in_batch: bool) -> Parsed<Statement> {
        let line = self.line();
        let Some(word) = self.word_upper() else {
            return self.unexpected();
        };
        let kind = match word.as_str() {
            "SELECT" => StatementKind::Select(self.select()?),
            "BACKUP" => StatementKind::Backup(self.backup()?),
            "RESTORE" => self.restore()?,
            "DBCC" => StatementKind::CheckDb(self.dbcc()?),
            "CREATE" => self.create()?,
            "ALTER" => self.alter()?,
            "DROP" => self.drop()?,
            "USE" => {
                self.pos += 1;
                StatementKind::Use {
                    database: self.identifier()?,
                }
            }
            "SET" => StatementKind::Set(self.set()?),
            "BEGIN" => self.begin()?,
            "COMMIT" | "ROLLBACK" => self.end_transaction()?,
            "EXEC" | "EXECUTE" => {
                self.pos += 1;
                self.execute()?
            }
            "KILL" => {
                self.pos += 1;
                let session_id = self.unsigned()?;
                self.end_statement()?;
                StatementKind::Kill { session_id }
            }
            // A batch may start with a bare procedure name (EXECUTE (Transact-SQL)).
            _ if first_in_batch && !is_reserved(&word) => self.execute()?,
            _ => return self.unexpected(),
        };
        Ok(Statement { kind, line })
    }

    fn select(&mut self) -> Parsed<Select> {
        self.expect_word("SELECT")?;
        self.eat_word("ALL");
        let top = if self.eat_word("TOP") {
            Some(self.top_count()?)
        } else {
            None
        };
        let mut items = vec![self.select_item()?];
        while self.eat_symbol(",") {
            items.push(self.select_item()?);
        }
        let from = if self.eat_word("FROM") {
            Some(self.table_sources()?)
        } else {
            None
        };
        let filter = if self.eat_word("WHERE") {
            Some(self.condition()?)
        } else {
            None
        };
        let mut order_by = Vec::new();
        if self.eat_word("ORDER") {
            self.expect_word("BY")?;
            loop {
                let expr = self.expr()?;
                let descending = self.eat_word("DESC");
                if !descending {
                    self.eat_word("ASC");
                }
                order_by.push(OrderItem { expr, descending });
                if !self.eat_symbol(",") {
                    break;
                }
            }
        }
        self.end_statement()?;
        Ok(Select {
            top,
            items,
            from,
            filter,
            order_by,
        })
    }

    fn top_count(&mut self) -> Parsed<u64> {
        if self.eat_symbol("(") {
            let count = self.unsigned()?;
            self.expect_symbol(")")?;
            Ok(count)
        } else {
            self.unsigned()
        }
    }

    fn select_item(&mut self) -> Parsed<SelectItem> {
        if self.eat_symbol("*") {
            return Ok(SelectItem::Wildcard { qualifier: None });
        }
        let is_name = matches!(
            self.peek().map(|token| &token.kind),
            Some(TokenKind::QuotedIdent(_)) | Some(TokenKind::Word(_))
        );
        let next = self.peek_at(1).map(|token| token.kind.clone());
        let after = self.peek_at(2).map(|token| token.kind.clone());
        if is_name && next == Some(TokenKind::Symbol(".")) && after == Some(TokenKind::Symbol("*"))
        {
            let qualifier = self.identifier()?;
            self.pos += 2;
            return Ok(SelectItem::Wildcard {
                qualifier: Some(qualifier),
            });
        }
        // `alias = expr`, the T-SQL form of a column alias.
        if is_name && next == Some(TokenKind::Symbol("=")) {
            let alias = self.identifier()?;
            self.pos += 1;
            let expr = self.expr()?;
            return Ok(SelectItem::Expr {
                expr,
                alias: Some(alias),
            });
        }
        let expr = self.expr()?;
        let alias = self.alias()?;
        Ok(SelectItem::Expr { expr, alias })
    }

    /// `[AS] alias`; a string literal may serve as a column alias.
    fn alias(&mut self) -> Parsed<Option<String>> {
        let explicit = self.eat_word("AS");
        match self.peek().map(|token| token.kind.clone()) {
            Some(TokenKind::QuotedIdent(name)) | Some(TokenKind::Str { value: name, .. }) => {
                self.pos += 1;
                Ok(Some(name))
            }
            Some(TokenKind::Word(word)) if !is_reserved(&word) => {
                self.pos += 1;
                Ok(Some(word))
            }
            _ if explicit => self.unexpected(),
            _ => Ok(None),
        }
    }

    fn table_sources(&mut self) -> Parsed<FromClause> {
        let table = self.table_ref()?;
        let mut joins = Vec::new();
        loop {
            let inner = self.at_word("INNER") && self.at_word_ahead(1, "JOIN");
            if inner {
                self.pos += 1;
            }
            if !self.eat_word("JOIN") {
                break;
            }
            let table = self.table_ref()?;
            self.expect_word("ON")?;
            let on = self.condition()?;
            joins.push(Join { table, on });
        }
        Ok(FromClause { table, joins })
    }

    /// `[database.][schema.]name [[AS] alias]`; `database..name` leaves the schema out.
    fn table_ref(&mut self) -> Parsed<TableRef> {
        let mut parts: Vec<Option<String>> = vec![Some(self.identifier()?)];
        while self.eat_symbol(".") {
            if self.at_symbol(".") {
                parts.push(None);
                continue;
            }
            parts.push(Some(self.identifier()?));
        }
        if parts.len() > 3 || parts.last().is_some_and(Option::is_none) {
            return self.unexpected();
        }
        let name = parts.pop().flatten().unwrap_or_default();
        let schema = parts.pop().flatten();
        let database = parts.pop().flatten();
        let alias = match self.peek().map(|token| token.kind.clone()) {
            Some(TokenKind::Str { .. }) => None,
            _ => self.alias()?,
        };
        Ok(TableRef {
            database,
            schema,
            name,
            alias,
        })
    }

    // ---- conditions and expressions ----

    fn condition(&mut self) -> Parsed<Condition> {
        let mut left = self.and_condition()?;
        while self.eat_word("OR") {
            let right = self.and_condition()?;
            left = Condition::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_condition(&mut self) -> Parsed<Condition> {
        let mut left = self.not_condition()?;
        while self.eat_word("AND") {
            let right = self.not_condition()?;
            left = Condition::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not_condition(&mut self) -> Parsed<Condition> {
        if self.eat_word("NOT") {
            return Ok(Condition::Not(Box::new(self.not_condition()?)));
        }
        if self.at_symbol("(") {
            // A parenthesised condition, or an expression in parentheses that a
            // comparison follows: try the first and fall back to the second.
            let start = self.pos;
            self.pos += 1;
            if let Ok(inner) = self.condition() {
                if self.eat_symbol(")") {
                    return Ok(inner);
                }
            }
            self.pos = start;
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Parsed<Condition> {
        let left = self.expr()?;
        if self.eat_word("IS") {
            let negated = self.eat_word("NOT");
            self.expect_word("NULL")?;
            return Ok(Condition::IsNull {
                expr: left,
                negated,
            });
        }
        let negated = self.at_word("NOT") && self.at_word_ahead(1, "IN");
        if negated {
            self.pos += 1;
        }
        if self.eat_word("IN") {
            self.expect_symbol("(")?;
            let mut list = vec![self.expr()?];
            while self.eat_symbol(",") {
                list.push(self.expr()?);
            }
            self.expect_symbol(")")?;
            return Ok(Condition::In {
                expr: left,
                list,
                negated,
            });
        }
        let op = match self.peek().map(|token| &token.kind) {
            Some(TokenKind::Symbol("=")) => CompareOp::Eq,
            Some(TokenKind::Symbol("<>")) | Some(TokenKind::Symbol("!=")) => CompareOp::NotEq,
            Some(TokenKind::Symbol("<")) => CompareOp::Less,
            Some(TokenKind::Symbol("<=")) => CompareOp::LessEq,
            Some(TokenKind::Symbol(">")) => CompareOp::Greater,
            Some(TokenKind::Symbol(">=")) => CompareOp::GreaterEq,
            _ => return self.unexpected(),
        };
        self.pos += 1;
        let right = self.expr()?;
        Ok(Condition::Compare { left, op, right })
    }

    fn expr(&mut self) -> Parsed<Expr> {
        let Some(token) = self.peek().cloned() else {
            return self.unexpected();
        };
        match token.kind {
            TokenKind::Number(text) => {
                self.pos += 1;
                Ok(match text.parse::<i64>() {
                    Ok(value) if !text.contains('.') => Expr::Integer(value),
                    _ => Expr::Decimal(text),
                })
            }
            TokenKind::Str { value, national } => {
                self.pos += 1;
                Ok(Expr::Str { value, national })
            }
            TokenKind::Variable(name) if name.starts_with("@@") => {
                self.pos += 1;
                Ok(Expr::Global(name[2..].to_ascii_uppercase()))
            }
            TokenKind::Variable(name) => Err(ParseError::UndeclaredVariable {
                name,
                line: token.line,
            }),
            TokenKind::Symbol("-") => {
                self.pos += 1;
                Ok(Expr::Negate(Box::new(self.expr()?)))
            }
            TokenKind::Symbol("(") => {
                self.pos += 1;
                let inner = self.expr()?;
                self.expect_symbol(")")?;
                Ok(inner)
            }
            TokenKind::Word(word) if word.eq_ignore_ascii_case("NULL") => {
                self.pos += 1;
                Ok(Expr::Null)
            }
            TokenKind::Word(word) if word.eq_ignore_ascii_case("CAST") => self.cast(),
            TokenKind::Word(word)
                if self.peek_at(1).map(|t| &t.kind) == Some(&TokenKind::Symbol("("))
                    && !is_reserved(&word) =>
            {
                self.function(word.to_ascii_uppercase())
            }
            TokenKind::Word(_) | TokenKind::QuotedIdent(_) => self.column(),
            _ => self.unexpected(),
        }
    }

    fn column(&mut self) -> Parsed<Expr> {
        let mut parts = vec![self.identifier()?];
        while self.at_symbol(".") && parts.len() < 4 {
            self.pos += 1;
            parts.push(self.identifier()?);
        }
        Ok(Expr::Column(parts))
    }

    fn function(&mut self, name: String) -> Parsed<Expr> {
        self.pos += 2;
        let mut args = Vec::new();
        if !self.eat_symbol(")") {
            args.push(self.expr()?);
            while self.eat_symbol(",") {
                args.push(self.expr()?);
            }
            self.expect_symbol(")")?;
        }
        Ok(Expr::Function { name, args })
    }

    fn cast(&mut self) -> Parsed<Expr> {
        self.pos += 1;
        self.expect_symbol("(")?;
        let expr = self.expr()?;
        self.expect_word("AS")?;
        let ty = self.type_name()?;
        self.expect_symbol(")")?;
        Ok(Expr::Cast {
            expr: Box::new(expr),
            ty,
        })
    }

    fn type_name(&mut self) -> Parsed<TypeName> {
        let name = self.identifier()?.to_ascii_uppercase();
        let mut args = Vec::new();
        if self.eat_symbol("(") {
            loop {
                if self.eat_word("MAX") {
                    args.push(u32::MAX);
                } else {
                    let value = self.unsigned()?;
                    args.push(u32::try_from(value).unwrap_or(u32::MAX));
                }
                if !self.eat_symbol(",") {
                    break;
                }
            }
            self.expect_symbol(")")?;
        }
        Ok(TypeName { name, args })
    }

    // ---- BACKUP and RESTORE ----

    fn backup(&mut self) -> Parsed<Backup> {
        self.expect_word("BACKUP")?;
        let kind = if self.eat_word("DATABASE") {
            BackupKind::Database
        } else if self.eat_word("LOG") {
            BackupKind::Log
        } else {
            return self.unexpected();
        };
        let database = self.identifier()?;
        self.expect_word("TO")?;
        let devices = self.devices()?;
        let mut options = BackupOptions::default();
        if self.eat_word("WITH") {
            loop {
                self.backup_option(&mut options)?;
                if !self.eat_symbol(",") {
                    break;
                }
            }
        }
        self.end_statement()?;
        Ok(Backup {
            kind,
            database,
            devices,
            options,
        })
    }

    /// `DISK = 'path' [, DISK = 'path' ...]`.
    // TODO: TAPE and URL devices are not modelled; they fail as syntax errors.
    fn devices(&mut self) -> Parsed<Vec<String>> {
        let mut devices = Vec::new();
        loop {
            self.expect_word("DISK")?;
            self.expect_symbol("=")?;
            devices.push(self.string()?);
            if !self.eat_symbol(",") {
                return Ok(devices);
            }
        }
    }

    fn backup_option(&mut self, options: &mut BackupOptions) -> Parsed<()> {
        let line = self.line();
        let Some(word) = self.word_upper() else {
            return self.unexpected();
        };
        self.pos += 1;
        match word.as_str() {
            "DIFFERENTIAL" => options.differential = true,
            "COPY_ONLY" => options.copy_only = true,
            "CHECKSUM" => options.checksum = Some(true),
            "NO_CHECKSUM" => options.checksum = Some(false),
            "COMPRESSION" => {
                options.compression = Some(true);
                if self.eat_symbol("(") {
                    self.expect_word("ALGORITHM")?;
                    self.expect_symbol("=")?;
                    // TODO: only MS_XPRESS is written; other algorithms are accepted as it.
                    self.identifier()?;
                    self.expect_symbol(")")?;
                }
            }
            "NO_COMPRESSION" => options.compression = Some(false),
            "INIT" => options.init = true,
            "NOINIT" => options.init = false,
            "FORMAT" => {
                options.format = true;
                options.skip = true;
            }
            "NOFORMAT" => options.format = false,
            "SKIP" => options.skip = true,
            "NOSKIP" => options.skip = false,
            "STATS" => options.stats = Some(self.optional_number()?.unwrap_or(10) as u32),
            "NAME" => options.name = Some(self.option_string()?),
            "DESCRIPTION" => options.description = Some(self.option_string()?),
            "MEDIANAME" | "MEDIADESCRIPTION" | "EXPIREDATE" => {
                self.option_string()?;
            }
            "BUFFERCOUNT" => options.buffer_count = Some(self.option_number()?),
            "MAXTRANSFERSIZE" => options.max_transfer_size = Some(self.option_number()?),
            "BLOCKSIZE" => options.block_size = Some(self.option_number()?),
            "RETAINDAYS" => {
                self.option_number()?;
            }
            "ENCRYPTION" => options.encryption = Some(self.encryption()?),
            "STOP_ON_ERROR"
            | "CONTINUE_AFTER_ERROR"
            | "REWIND"
            | "NOREWIND"
            | "UNLOAD"
            | "NOUNLOAD" => {}
            _ => {
                let name = self.tokens[self.pos - 1].text.clone();
                return Err(ParseError::UnknownOption {
                    name,
                    statement: "BACKUP",
                    line,
                });
            }
        }
        Ok(())
    }

    fn optional_number(&mut self) -> Parsed<Option<u64>> {
        if self.eat_symbol("=") {
            Ok(Some(self.unsigned()?))
        } else {
            Ok(None)
        }
    }

    fn option_string(&mut self) -> Parsed<String> {
        self.expect_symbol("=")?;
        self.string()
    }

    fn option_number(&mut self) -> Parsed<u64> {
        self.expect_symbol("=")?;
        self.unsigned()
    }

    /// `(ALGORITHM = name, SERVER CERTIFICATE = name | SERVER ASYMMETRIC KEY = name)`.
    fn encryption(&mut self) -> Parsed<BackupEncryption> {
        self.expect_symbol("(")?;
        self.expect_word("ALGORITHM")?;
        self.expect_symbol("=")?;
        let algorithm = self.identifier()?.to_ascii_uppercase();
        self.expect_symbol(",")?;
        self.expect_word("SERVER")?;
        let encryptor = if self.eat_word("CERTIFICATE") {
            self.expect_symbol("=")?;
            Encryptor::Certificate(self.identifier()?)
        } else {
            self.expect_word("ASYMMETRIC")?;
            self.expect_word("KEY")?;
            self.expect_symbol("=")?;
            Encryptor::AsymmetricKey(self.identifier()?)
        };
        self.expect_symbol(")")?;
        Ok(BackupEncryption {
            algorithm,
            encryptor,
        })
    }

    fn restore(&mut self) -> Parsed<StatementKind> {
        self.expect_word("RESTORE")?;
        let Some(word) = self.word_upper() else {
            return self.unexpected();
        };
        match word.as_str() {
            "VERIFYONLY" => Ok(StatementKind::RestoreVerifyOnly(self.verify_only()?)),
            "HEADERONLY" => Ok(StatementKind::RestoreHeaderOnly(self.list_request()?)),
            "FILELISTONLY" => Ok(StatementKind::RestoreFileListOnly(self.list_request()?)),
            "DATABASE" | "LOG" => Ok(StatementKind::Restore(self.restore_database()?)),
            // TODO: RESTORE LABELONLY and REWINDONLY are not modelled.
            _ => self.unexpected(),
        }
    }

    fn verify_only(&mut self) -> Parsed<VerifyOnly> {
        self.expect_word("VERIFYONLY")?;
        self.devices_and_options()
    }

    /// HEADERONLY or FILELISTONLY, then the devices and options, of which only FILE
    /// changes the result.
    fn list_request(&mut self) -> Parsed<ListRequest> {
        self.pos += 1;
        let verify = self.devices_and_options()?;
        Ok(ListRequest {
            devices: verify.devices,
            file: verify.file,
        })
    }

    /// `FROM DISK = '..' [, ...] [WITH option [, ...]]` of VERIFYONLY, HEADERONLY and
    /// FILELISTONLY, which accept the same options.
    fn devices_and_options(&mut self) -> Parsed<VerifyOnly> {
        self.expect_word("FROM")?;
        let devices = self.devices()?;
        let mut verify = VerifyOnly {
            devices,
            checksum: None,
            file: None,
            stats: None,
        };
        if self.eat_word("WITH") {
            loop {
                self.verify_option(&mut verify)?;
                if !self.eat_symbol(",") {
                    break;
                }
            }
        }
        self.end_statement()?;
        Ok(verify)
    }

    fn restore_database(&mut self) -> Parsed<Restore> {
        let kind = if self.eat_word("DATABASE") {
            RestoreKind::Database
        } else {
            self.expect_word("LOG")?;
            RestoreKind::Log
        };
        let database = self.identifier()?;
        let devices = if self.eat_word("FROM") {
            self.devices()?
        } else {
            Vec::new()
        };
        let mut options = RestoreOptions::default();
        if self.eat_word("WITH") {
            loop {
                self.restore_option(&mut options)?;
                if !self.eat_symbol(",") {
                    break;
                }
            }
        }
        self.end_statement()?;
        Ok(Restore {
            kind,
            database,
            devices,
            options,
        })
    }

    fn restore_option(&mut self, options: &mut RestoreOptions) -> Parsed<()> {
        let line = self.line();
        let Some(word) = self.word_upper() else {
            return self.unexpected();
        };
        self.pos += 1;
        match word.as_str() {
            "MOVE" => {
                let logical = self.string()?;
                self.expect_word("TO")?;
                let path = self.string()?;
                options.moves.push((logical, path));
            }
            "REPLACE" => options.replace = true,
            "RECOVERY" => options.recovery = Some(true),
            "NORECOVERY" => options.recovery = Some(false),
            "STOPAT" => options.stop_at = Some(self.option_string()?),
            "FILE" => {
                options.file = Some(u32::try_from(self.option_number()?).unwrap_or(u32::MAX));
            }
            "CHECKSUM" => options.checksum = Some(true),
            "NO_CHECKSUM" => options.checksum = Some(false),
            "STATS" => options.stats = Some(self.optional_number()?.unwrap_or(10) as u32),
            "BUFFERCOUNT" | "MAXTRANSFERSIZE" | "BLOCKSIZE" => {
                self.option_number()?;
            }
            "MEDIANAME" | "MEDIAPASSWORD" | "PASSWORD" => {
                self.option_string()?;
            }
            "KEEP_REPLICATION"
            | "KEEP_CDC"
            | "ENABLE_BROKER"
            | "ERROR_BROKER_CONVERSATIONS"
            | "NEW_BROKER"
            | "RESTRICTED_USER"
            | "STOP_ON_ERROR"
            | "CONTINUE_AFTER_ERROR"
            | "REWIND"
            | "NOREWIND"
            | "UNLOAD"
            | "NOUNLOAD" => {}
            // TODO: STANDBY, PARTIAL, STOPATMARK and STOPBEFOREMARK are not modelled.
            _ => {
                let name = self.tokens[self.pos - 1].text.clone();
                return Err(ParseError::UnknownOption {
                    name,
                    statement: "RESTORE",
                    line,
                });
            }
        }
        Ok(())
    }

    /// `DBCC CHECKDB [( name | 'name' )] [WITH option [, ...]]`.
    fn dbcc(&mut self) -> Parsed<CheckDb> {
        self.expect_word("DBCC")?;
        // TODO: DBCC commands other than CHECKDB are not modelled.
        self.expect_word("CHECKDB")?;
        let mut check = CheckDb::default();
        if self.eat_symbol("(") {
            let database = match self.peek().map(|token| token.kind.clone()) {
                Some(TokenKind::Str { .. }) => self.string()?,
                _ => self.identifier()?,
            };
            check.database = Some(database);
            // Repair and NOINDEX arguments after the name are accepted and ignored.
            while self.eat_symbol(",") {
                self.pos += 1;
            }
            self.expect_symbol(")")?;
        }
        if self.eat_word("WITH") {
            loop {
                let Some(word) = self.word_upper() else {
                    return self.unexpected();
                };
                self.pos += 1;
                if word == "NO_INFOMSGS" {
                    check.no_infomsgs = true;
                }
                if word == "MAXDOP" {
                    self.option_number()?;
                }
                if !self.eat_symbol(",") {
                    break;
                }
            }
        }
        self.end_statement()?;
        Ok(check)
    }

    fn verify_option(&mut self, verify: &mut VerifyOnly) -> Parsed<()> {
        let line = self.line();
        let Some(word) = self.word_upper() else {
            return self.unexpected();
        };
        self.pos += 1;
        match word.as_str() {
            "CHECKSUM" => verify.checksum = Some(true),
            "NO_CHECKSUM" => verify.checksum = Some(false),
            "FILE" => {
                self.expect_symbol("=")?;
                verify.file = Some(u32::try_from(self.unsigned()?).unwrap_or(u32::MAX));
            }
            "STATS" => verify.stats = Some(self.optional_number()?.unwrap_or(10) as u32),
            "MEDIANAME" | "MEDIAPASSWORD" | "PASSWORD" => {
                self.option_string()?;
            }
            "BUFFERCOUNT" | "MAXTRANSFERSIZE" | "BLOCKSIZE" => {
                self.expect_symbol("=")?;
                self.unsigned()?;
            }
            "LOADHISTORY"
            | "STOP_ON_ERROR"
            | "CONTINUE_AFTER_ERROR"
            | "REWIND"
            | "NOREWIND"
            | "UNLOAD"
            | "NOUNLOAD" => {}
            _ => {
                let name = self.tokens[self.pos - 1].text.clone();
                return Err(ParseError::UnknownOption {
                    name,
                    statement: "RESTORE",
                    line,
                });
            }
        }
        Ok(())
    }

    // ---- database DDL ----

    fn create(&mut self) -> Parsed<StatementKind> {
        self.expect_word("CREATE")?;
        self.expect_word("DATABASE")?;
        let name = self.identifier()?;
        // TODO: ON/LOG ON file specifications and COLLATE are not modelled.
        self.end_statement()?;
        Ok(StatementKind::CreateDatabase { name })
    }

    fn alter(&mut self) -> Parsed<StatementKind> {
        self.expect_word("ALTER")?;
        self.expect_word("DATABASE")?;
        let name = self.identifier()?;
        self.expect_word("SET")?;
        let action = match self.word_upper().as_deref() {
            Some("RECOVERY") => {
                self.pos += 1;
                let model = match self.word_upper().as_deref() {
                    Some("FULL") => RecoveryModel::Full,
                    Some("SIMPLE") => RecoveryModel::Simple,
                    Some("BULK_LOGGED") => RecoveryModel::BulkLogged,
                    _ => return self.unexpected(),
                };
                AlterAction::Recovery(model)
            }
            Some("OFFLINE") => AlterAction::Offline,
            Some("ONLINE") => AlterAction::Online,
            Some("EMERGENCY") => AlterAction::Emergency,
            Some("READ_ONLY") => AlterAction::ReadOnly(true),
            Some("READ_WRITE") => AlterAction::ReadOnly(false),
            _ => return self.unexpected(),
        };
        self.pos += 1;
        if self.eat_word("WITH") {
            self.termination()?;
        }
        self.end_statement()?;
        Ok(StatementKind::AlterDatabase { name, action })
    }

    /// `ROLLBACK IMMEDIATE | ROLLBACK AFTER n [SECONDS] | NO_WAIT`; the simulator has no
    /// other users to roll back, so they change nothing.
    fn termination(&mut self) -> Parsed<()> {
        if self.eat_word("NO_WAIT") {
            return Ok(());
        }
        self.expect_word("ROLLBACK")?;
        if self.eat_word("IMMEDIATE") {
            return Ok(());
        }
        self.expect_word("AFTER")?;
        self.unsigned()?;
        self.eat_word("SECONDS");
        Ok(())
    }

    fn drop(&mut self) -> Parsed<StatementKind> {
        self.expect_word("DROP")?;
        self.expect_word("DATABASE")?;
        let if_exists = self.at_word("IF") && self.at_word_ahead(1, "EXISTS");
        if if_exists {
            self.pos += 2;
        }
        let mut names = vec![self.identifier()?];
        while self.eat_symbol(",") {
            names.push(self.identifier()?);
        }
        self.end_statement()?;
        Ok(StatementKind::DropDatabase { names, if_exists })
    }

    // ---- SET, transactions, EXECUTE ----

    fn set(&mut self) -> Parsed<SetOption> {
        self.expect_word("SET")?;
        let line = self.line();
        if let Some(TokenKind::Variable(name)) = self.peek().map(|token| token.kind.clone()) {
            return Err(ParseError::UndeclaredVariable { name, line });
        }
        let Some(option) = self.word_upper() else {
            return self.unexpected();
        };
        let option_text = self
            .peek()
            .map(|token| token.text.clone())
            .unwrap_or_default();
        self.pos += 1;
        match option.as_str() {
            "TEXTSIZE"
            | "LOCK_TIMEOUT"
            | "DATEFIRST"
            | "ROWCOUNT"
            | "QUERY_GOVERNOR_COST_LIMIT" => {
                self.eat_symbol("-");
                self.unsigned()?;
            }
            "DATEFORMAT" | "LANGUAGE" => {
                if self.string().is_err() {
                    self.identifier()?;
                }
            }
            "DEADLOCK_PRIORITY" => {
                if self.unsigned().is_err() {
                    self.identifier()?;
                }
            }
            "TRANSACTION" => self.isolation_level()?,
            _ if BOOLEAN_SET_OPTIONS.contains(&option.as_str()) => {
                return self.boolean_set(option);
            }
            _ => {
                return Err(ParseError::UnknownSetOption {
                    name: option_text,
                    line,
                })
            }
        }
        self.end_statement()?;
        Ok(SetOption::Other)
    }

    /// `SET opt [, opt ...] ON|OFF`; STATISTICS takes a sub-option word first.
    fn boolean_set(&mut self, first: String) -> Parsed<SetOption> {
        let mut options = vec![first];
        loop {
            if options.last().map(String::as_str) == Some("STATISTICS") {
                self.identifier()?;
            }
            if !self.eat_symbol(",") {
                break;
            }
            let line = self.line();
            let Some(option) = self.word_upper() else {
                return self.unexpected();
            };
            if !BOOLEAN_SET_OPTIONS.contains(&option.as_str()) {
                let name = self
                    .peek()
                    .map(|token| token.text.clone())
                    .unwrap_or_default();
                return Err(ParseError::UnknownSetOption { name, line });
            }
            self.pos += 1;
            options.push(option);
        }
        let on = if self.eat_word("ON") {
            true
        } else if self.eat_word("OFF") {
            false
        } else {
            return self.unexpected();
        };
        self.end_statement()?;
        let option = if options.iter().any(|option| option == "NOCOUNT") {
            SetOption::NoCount(on)
        } else if options
            .iter()
            .any(|option| option == "IMPLICIT_TRANSACTIONS")
        {
            SetOption::ImplicitTransactions(on)
        } else {
            SetOption::Other
        };
        Ok(option)
    }

    fn isolation_level(&mut self) -> Parsed<()> {
        self.expect_word("ISOLATION")?;
        self.expect_word("LEVEL")?;
        if self.eat_word("READ") {
            if !self.eat_word("COMMITTED") {
                self.expect_word("UNCOMMITTED")?;
            }
        } else if self.eat_word("REPEATABLE") {
            self.expect_word("READ")?;
        } else if !self.eat_word("SNAPSHOT") {
            self.expect_word("SERIALIZABLE")?;
        }
        Ok(())
    }

    fn begin(&mut self) -> Parsed<StatementKind> {
        self.expect_word("BEGIN")?;
        if !self.eat_word("TRAN") {
            self.expect_word("TRANSACTION")?;
        }
        self.transaction_name();
        self.end_statement()?;
        Ok(StatementKind::BeginTransaction)
    }

    fn end_transaction(&mut self) -> Parsed<StatementKind> {
        let commit = self.eat_word("COMMIT");
        if !commit {
            self.expect_word("ROLLBACK")?;
        }
        if self.eat_word("TRAN") || self.eat_word("TRANSACTION") {
            self.transaction_name();
        } else {
            self.eat_word("WORK");
        }
        self.end_statement()?;
        Ok(if commit {
            StatementKind::Commit
        } else {
            StatementKind::Rollback
        })
    }

    fn transaction_name(&mut self) {
        let named = match self.peek().map(|token| &token.kind) {
            Some(TokenKind::QuotedIdent(_)) => true,
            Some(TokenKind::Word(word)) => !starts_statement(word) && !is_reserved(word),
            _ => false,
        };
        if named {
            self.pos += 1;
        }
    }

    /// `[EXEC] name [args]`: reads the procedure name and skips its arguments.
    fn execute(&mut self) -> Parsed<StatementKind> {
        let mut procedure = self.identifier()?;
        while self.eat_symbol(".") {
            procedure.push('.');
            procedure.push_str(&self.identifier()?);
        }
        let mut depth = 0usize;
        while let Some(token) = self.peek() {
            match &token.kind {
                TokenKind::Symbol("(") => depth += 1,
                TokenKind::Symbol(")") => depth = depth.saturating_sub(1),
                _ if depth == 0 && self.at_statement_end() => break,
                _ => {}
            }
            self.pos += 1;
        }
        Ok(StatementKind::Execute { procedure })
    }
}

fn is_reserved(word: &str) -> bool {
    RESERVED
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(word))
}

fn starts_statement(word: &str) -> bool {
    const STARTS: &[&str] = &[
        "SELECT", "BACKUP", "RESTORE", "CREATE", "ALTER", "DROP", "USE", "SET", "BEGIN", "COMMIT",
        "DBCC", "ROLLBACK", "EXEC", "EXECUTE", "INSERT", "UPDATE", "DELETE", "DECLARE", "PRINT",
        "IF", "WHILE", "RETURN", "WITH", "KILL",
    ];
    STARTS.iter().any(|start| start.eq_ignore_ascii_case(word))
}
