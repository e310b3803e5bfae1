use super::ast::*;
use super::{parse_batch, ParseError};

fn single(sql: &str) -> StatementKind {
    let statements = parse_batch(sql).unwrap();
    assert_eq!(statements.len(), 1, "{statements:?}");
    statements.into_iter().next().unwrap().kind
}

fn backup(sql: &str) -> Backup {
    match single(sql) {
        StatementKind::Backup(backup) => backup,
        other => panic!("not a BACKUP: {other:?}"),
    }
}

#[test]
fn parser_reads_bracketed_name_with_bracket() {
    let parsed = backup("BACKUP DATABASE [Sa]]les Ünï 'q'] TO DISK = N'x.bak'");
    assert_eq!(parsed.database, "Sa]les Ünï 'q'");
}

#[test]
fn parser_reads_quoted_path_with_apostrophe() {
    let parsed = backup(r"BACKUP LOG Sales TO DISK = N'\\h\s\o''brien\x.trn'");
    assert_eq!(parsed.kind, BackupKind::Log);
    assert_eq!(parsed.devices, vec![r"\\h\s\o'brien\x.trn".to_string()]);
}

#[test]
fn parser_reads_backup_options_any_order() {
    let parsed = backup(
        "BACKUP DATABASE [Sales] TO DISK = N'a' WITH STATS = 5, COMPRESSION, FORMAT, INIT, \
         CHECKSUM, DIFFERENTIAL, COPY_ONLY, NAME = N'n', DESCRIPTION = 'd', BUFFERCOUNT = 8, \
         MAXTRANSFERSIZE = 1048576",
    );
    let options = parsed.options;
    assert!(options.differential);
    assert!(options.copy_only);
    assert!(options.init);
    assert!(options.format);
    assert!(options.skip);
    assert_eq!(options.checksum, Some(true));
    assert_eq!(options.compression, Some(true));
    assert_eq!(options.stats, Some(5));
    assert_eq!(options.name.as_deref(), Some("n"));
    assert_eq!(options.description.as_deref(), Some("d"));
}

#[test]
fn parser_defaults_bare_stats_to_ten() {
    let parsed = backup("BACKUP DATABASE x TO DISK = 'a' WITH STATS");
    assert_eq!(parsed.options.stats, Some(10));
}

#[test]
fn parser_rejects_unknown_backup_option() {
    let error = parse_batch("BACKUP DATABASE x TO DISK = 'a' WITH FOO").unwrap_err();
    assert_eq!(
        error,
        ParseError::UnknownOption {
            name: "FOO".into(),
            statement: "BACKUP",
            line: 1
        }
    );
}

#[test]
fn parser_reads_verifyonly_options() {
    let kind =
        single("RESTORE VERIFYONLY FROM DISK = N'a.bak' WITH FILE = 2, NO_CHECKSUM, STATS = 20");
    let StatementKind::RestoreVerifyOnly(verify) = kind else {
        panic!("{kind:?}")
    };
    assert_eq!(verify.devices, vec!["a.bak".to_string()]);
    assert_eq!(verify.file, Some(2));
    assert_eq!(verify.checksum, Some(false));
    assert_eq!(verify.stats, Some(20));
}

#[test]
fn parser_splits_batch_without_semicolons() {
    let statements = parse_batch("SET NOCOUNT ON SELECT 1 SELECT 2\nUSE [msdb]").unwrap();
    assert_eq!(statements.len(), 4);
    assert_eq!(
        statements[0].kind,
        StatementKind::Set(SetOption::NoCount(true))
    );
    assert_eq!(statements[3].line, 2);
}

#[test]
fn parser_reads_bakfleet_history_query() {
    let sql = "SELECT TOP (1) bs.backup_set_id, mf.physical_device_name \
               FROM msdb.dbo.backupset AS bs \
               JOIN msdb.dbo.backupmediafamily AS mf ON mf.media_set_id = bs.media_set_id \
               WHERE bs.database_name = N'Sales' AND mf.physical_device_name = N'x' \
               ORDER BY bs.backup_set_id DESC;";
    let StatementKind::Select(select) = single(sql) else {
        panic!()
    };
    assert_eq!(select.top, Some(1));
    let from = select.from.unwrap();
    assert_eq!(from.table.database.as_deref(), Some("msdb"));
    assert_eq!(from.table.alias.as_deref(), Some("bs"));
    assert_eq!(from.joins.len(), 1);
    assert!(matches!(select.filter, Some(Condition::And(_, _))));
    assert!(select.order_by[0].descending);
}

#[test]
fn parser_reads_cast_of_serverproperty() {
    let StatementKind::Select(select) =
        single("SELECT CAST(SERVERPROPERTY('Edition') AS nvarchar(128)) AS edition")
    else {
        panic!()
    };
    let SelectItem::Expr {
        expr: Expr::Cast { ty, .. },
        alias,
    } = &select.items[0]
    else {
        panic!()
    };
    assert_eq!(ty.name, "NVARCHAR");
    assert_eq!(ty.args, vec![128]);
    assert_eq!(alias.as_deref(), Some("edition"));
}

#[test]
fn parser_reads_in_and_is_null() {
    let sql = "SELECT name FROM sys.databases WHERE name IN (N'a', 'b') AND source_database_id IS NOT NULL";
    let StatementKind::Select(select) = single(sql) else {
        panic!()
    };
    let Some(Condition::And(left, right)) = select.filter else {
        panic!()
    };
    assert!(matches!(*left, Condition::In { negated: false, .. }));
    assert!(matches!(*right, Condition::IsNull { negated: true, .. }));
}

#[test]
fn parser_reports_incorrect_syntax_near_token() {
    let error = parse_batch("SELECT name FROM sys.databases WHERE name = = 1").unwrap_err();
    assert_eq!(
        error,
        ParseError::Syntax {
            near: "=".into(),
            keyword: false,
            line: 1
        }
    );
}

#[test]
fn parser_reports_keyword_near_from() {
    let error = parse_batch("SELECT FROM sys.databases").unwrap_err();
    assert_eq!(
        error,
        ParseError::Syntax {
            near: "FROM".into(),
            keyword: true,
            line: 1
        }
    );
}

#[test]
fn parser_reports_last_token_at_end() {
    let error = parse_batch("SELECT name FROM").unwrap_err();
    assert_eq!(
        error,
        ParseError::Syntax {
            near: "FROM".into(),
            keyword: true,
            line: 1
        }
    );
}

#[test]
fn parser_reports_unclosed_string() {
    let error = parse_batch("SELECT 'abc").unwrap_err();
    assert_eq!(
        error,
        ParseError::Unclosed {
            text: "abc".into(),
            line: 1
        }
    );
}

#[test]
fn parser_reports_unknown_set_option() {
    let error = parse_batch("SET FOO ON").unwrap_err();
    assert_eq!(
        error,
        ParseError::UnknownSetOption {
            name: "FOO".into(),
            line: 1
        }
    );
}

#[test]
fn parser_accepts_common_client_set_options() {
    let sql =
        "SET ANSI_NULLS ON; SET QUOTED_IDENTIFIER, ANSI_PADDING ON; SET TEXTSIZE 2147483647; \
               SET TRANSACTION ISOLATION LEVEL READ COMMITTED; SET LOCK_TIMEOUT -1; \
               SET DATEFORMAT mdy; SET LANGUAGE us_english; SET IMPLICIT_TRANSACTIONS OFF";
    let statements = parse_batch(sql).unwrap();
    assert_eq!(statements.len(), 8);
}

#[test]
fn parser_reads_alter_database_offline_rollback() {
    let kind = single("ALTER DATABASE [x] SET OFFLINE WITH ROLLBACK IMMEDIATE");
    assert_eq!(
        kind,
        StatementKind::AlterDatabase {
            name: "x".into(),
            action: AlterAction::Offline
        }
    );
}

#[test]
fn parser_reads_drop_database_if_exists() {
    let kind = single("DROP DATABASE IF EXISTS [a], b");
    assert_eq!(
        kind,
        StatementKind::DropDatabase {
            names: vec!["a".into(), "b".into()],
            if_exists: true
        }
    );
}

#[test]
fn parser_reads_exec_with_arguments() {
    let statements = parse_batch("EXEC dbo.sp_x @a = 1, 'b' SELECT 1").unwrap();
    assert_eq!(
        statements[0].kind,
        StatementKind::Execute {
            procedure: "dbo.sp_x".into()
        }
    );
    assert_eq!(statements.len(), 2);
}

#[test]
fn parser_reports_undeclared_variable() {
    let error = parse_batch("BACKUP DATABASE @db TO DISK = 'x'").unwrap_err();
    assert_eq!(
        error,
        ParseError::UndeclaredVariable {
            name: "@db".into(),
            line: 1
        }
    );
}
