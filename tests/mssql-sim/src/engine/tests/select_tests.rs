use super::support::*;
use crate::config::{Edition, Platform};
use crate::reply::{Column, Done, ReplyEvent, SqlType, Value};

const SERVER_QUERY: &str = "SELECT @@VERSION AS version,
  CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)) AS product_version,
  CAST(SERVERPROPERTY('Edition') AS nvarchar(128)) AS edition,
  CAST(SERVERPROPERTY('EngineEdition') AS int) AS engine_edition,
  CAST(SERVERPROPERTY('MachineName') AS nvarchar(128)) AS machine_name,
  CAST(SERVERPROPERTY('ServerName') AS nvarchar(128)) AS server_name,
  CAST(SERVERPROPERTY('InstanceName') AS nvarchar(128)) AS instance_name,
  @@SPID AS spid;";

const DATABASES_QUERY: &str =
    "SELECT name, database_id, state_desc, recovery_model_desc, is_read_only, \
  source_database_id FROM sys.databases ORDER BY name;";

#[test]
fn server_query_returns_identity() {
    let mut harness = Harness::new();
    let (columns, rows) = harness.query(SERVER_QUERY);
    let names: Vec<&str> = columns.iter().map(|column| column.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "version",
            "product_version",
            "edition",
            "engine_edition",
            "machine_name",
            "server_name",
            "instance_name",
            "spid"
        ]
    );
    assert_eq!(columns[1].ty, SqlType::NVarChar(Some(128)));
    assert_eq!(columns[3].ty, SqlType::Int);
    assert_eq!(columns[7].ty, SqlType::SmallInt);
    let row = &rows[0];
    assert!(text(&row[0]).starts_with("Microsoft SQL Server 2022 (RTM) - 16.0.4165.4 (X64)"));
    assert!(text(&row[0]).contains("Enterprise Edition (64-bit) on Windows Server 2022"));
    assert_eq!(text(&row[1]), "16.0.4165.4");
    assert_eq!(text(&row[2]), "Enterprise Edition (64-bit)");
    assert_eq!(row[3], Value::Int(3));
    assert_eq!(text(&row[4]), "SQL01");
    assert_eq!(text(&row[5]), "SQL01");
    assert_eq!(row[6], Value::Null);
    assert_eq!(row[7], Value::Int(51));
}

#[test]
fn server_query_names_linux_express_instance() {
    let mut harness = Harness::with(|config| {
        config.platform = Platform::Linux;
        config.edition = Edition::Express;
        config.instance_name = Some("SQLEXPRESS".into());
        config.path_maps.clear();
    });
    let (_, rows) = harness.query(SERVER_QUERY);
    let row = &rows[0];
    assert!(
        text(&row[0]).contains("Express Edition (64-bit) on Linux (Ubuntu"),
        "{:?}",
        row[0]
    );
    assert_eq!(row[3], Value::Int(4));
    assert_eq!(text(&row[5]), r"SQL01\SQLEXPRESS");
    assert_eq!(text(&row[6]), "SQLEXPRESS");
}

#[test]
fn databases_lists_system_and_user_sorted() {
    let mut harness = Harness::new();
    let (columns, rows) = harness.query(DATABASES_QUERY);
    assert_eq!(
        columns[0],
        Column {
            name: "name".into(),
            ty: SqlType::NVarChar(Some(128)),
            nullable: false
        }
    );
    assert_eq!(columns[4].ty, SqlType::Bit);
    assert!(columns[5].nullable);
    let names: Vec<&str> = rows.iter().map(|row| text(&row[0])).collect();
    assert_eq!(names, ["master", "model", "msdb", "Sales", "tempdb"]);
    let sales = &rows[3];
    assert_eq!(sales[1], Value::Int(5));
    assert_eq!(text(&sales[2]), "ONLINE");
    assert_eq!(text(&sales[3]), "FULL");
    assert_eq!(sales[4], Value::Bool(false));
    assert_eq!(sales[5], Value::Null);
}

#[test]
fn databases_filters_by_national_name() {
    let mut harness = Harness::new();
    let sql = "SELECT name, database_id FROM sys.databases WHERE name = N'sales';";
    let (_, rows) = harness.query(sql);
    assert_eq!(rows.len(), 1);
    assert_eq!(text(&rows[0][0]), "Sales");
}

#[test]
fn databases_filters_with_in_list() {
    let mut harness = Harness::new();
    let (_, rows) =
        harness.query("SELECT name FROM sys.databases WHERE database_id IN (1, 4) ORDER BY 1 DESC");
    let names: Vec<&str> = rows.iter().map(|row| text(&row[0])).collect();
    assert_eq!(names, ["msdb", "master"]);
}

#[test]
fn select_done_carries_row_count() {
    let mut harness = Harness::new();
    let events = harness.run("SELECT name FROM sys.databases");
    assert_eq!(
        dones(&events),
        vec![Done {
            more: false,
            error: false,
            row_count: Some(5)
        }]
    );
}

#[test]
fn nocount_drops_row_count() {
    let mut harness = Harness::new();
    let events = harness.run("SET NOCOUNT ON; SELECT 1");
    let expected = vec![
        Done {
            more: true,
            error: false,
            row_count: None,
        },
        Done {
            more: false,
            error: false,
            row_count: None,
        },
    ];
    assert_eq!(dones(&events), expected);
}

#[test]
fn select_reports_invalid_column_before_running() {
    let mut harness = Harness::new();
    let events = harness.run("SELECT 1; SELECT nope FROM sys.databases");
    let errors = errors(&events);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].number, 207);
    assert_eq!(errors[0].class, 16);
    assert_eq!(errors[0].line, 1);
    assert_eq!(errors[0].text, "Invalid column name 'nope'.");
    assert_eq!(errors[0].server, "SQL01");
    assert!(
        !events
            .iter()
            .any(|event| matches!(event, ReplyEvent::Row(_))),
        "the batch must not run"
    );
    assert_eq!(
        dones(&events),
        vec![Done {
            more: false,
            error: true,
            row_count: None
        }]
    );
}

#[test]
fn select_reports_invalid_object_when_run() {
    let mut harness = Harness::new();
    let events = harness.run("SELECT 1\nSELECT * FROM dbo.nothing\nSELECT 2");
    let errors = errors(&events);
    assert_eq!(errors[0].number, 208);
    assert_eq!(errors[0].text, "Invalid object name 'dbo.nothing'.");
    assert_eq!(errors[0].line, 2);
    let rows = events
        .iter()
        .filter(|event| matches!(event, ReplyEvent::Row(_)))
        .count();
    assert_eq!(rows, 1, "the first SELECT runs, the third does not");
    assert_eq!(dones(&events).len(), 2);
}

#[test]
fn syntax_error_stops_whole_batch() {
    let mut harness = Harness::new();
    let events = harness.run("SELECT 1\nSELECT name FROM sys.databases WHERE");
    let errors = errors(&events);
    assert_eq!(errors[0].number, 156);
    assert_eq!(errors[0].class, 15);
    assert_eq!(errors[0].text, "Incorrect syntax near the keyword 'WHERE'.");
    assert_eq!(errors[0].line, 2);
    assert_eq!(
        dones(&events),
        vec![Done {
            more: false,
            error: true,
            row_count: None
        }]
    );
}

#[test]
fn unknown_procedure_fails_statement_only() {
    let mut harness = Harness::new();
    let events = harness.run("EXEC sp_nothing; SELECT 1");
    let errors = errors(&events);
    assert_eq!(errors[0].number, 2812);
    assert_eq!(errors[0].state, 62);
    assert_eq!(
        errors[0].text,
        "Could not find stored procedure 'sp_nothing'."
    );
    assert_eq!(dones(&events).len(), 2);
}

#[test]
fn alias_qualifier_must_match() {
    let mut harness = Harness::new();
    let events = harness.run("SELECT x.name FROM sys.databases AS d");
    assert_eq!(error_numbers(&events), vec![4104]);
}

#[test]
fn exec_requests_shows_own_session() {
    let mut harness = Harness::new();
    let spid = harness.session.spid;
    let sql = format!(
        "SELECT session_id, command, percent_complete, estimated_completion_time \
         FROM sys.dm_exec_requests WHERE session_id = {spid};"
    );
    let (columns, rows) = harness.query(&sql);
    assert_eq!(columns[0].ty, SqlType::SmallInt);
    assert_eq!(columns[1].ty, SqlType::NVarChar(Some(32)));
    assert_eq!(columns[2].ty, SqlType::Real);
    assert_eq!(columns[3].ty, SqlType::BigInt);
    assert_eq!(rows.len(), 1);
    assert_eq!(text(&rows[0][1]), "SELECT");
}

#[test]
fn use_changes_database_and_reports() {
    let mut harness = Harness::new();
    let events = harness.run("USE [msdb]; SELECT DB_NAME()");
    assert!(events.contains(&ReplyEvent::DatabaseChanged {
        old: "master".into(),
        new: "msdb".into()
    }));
    let infos = infos(&events);
    assert_eq!(infos[0].number, 5701);
    assert_eq!(infos[0].class, 0);
    assert_eq!(infos[0].text, "Changed database context to 'msdb'.");
    assert_eq!(harness.session.database, "msdb");
    let (_, rows) = harness.query("SELECT name FROM dbo.backupset");
    assert!(rows.is_empty());
}

#[test]
fn use_unknown_database_fails() {
    let mut harness = Harness::new();
    let events = harness.run("USE [nope]");
    let errors = errors(&events);
    assert_eq!(errors[0].number, 911);
    assert_eq!(
        errors[0].text,
        "Database 'nope' does not exist. Make sure that the name is entered correctly."
    );
}

#[test]
fn cast_string_to_int_fails_with_245() {
    let mut harness = Harness::new();
    let events = harness.run("SELECT CAST(N'abc' AS int)");
    let errors = errors(&events);
    assert_eq!(errors[0].number, 245);
    assert_eq!(
        errors[0].text,
        "Conversion failed when converting the nvarchar value 'abc' to data type int."
    );
}

#[test]
fn login_rejects_wrong_password() {
    let harness = Harness::new();
    let mut request = login_request();
    request.password = "wrong".into();
    let message = harness.instance.login(&request).unwrap_err();
    assert_eq!(message.number, 18456);
    assert_eq!(message.class, 14);
    assert_eq!(message.state, 1);
    assert_eq!(message.text, "Login failed for user 'bakfleet'.");
}

#[test]
fn login_assigns_distinct_spids() {
    let harness = Harness::new();
    let second = harness.instance.login(&login_request()).unwrap();
    assert_eq!(harness.session.spid, 51);
    assert_eq!(second.spid, 52);
}

#[test]
fn statements_are_recorded_in_order() {
    let mut harness = Harness::new();
    harness.run("SELECT 1");
    harness.run("SELECT bad syntax here (");
    assert_eq!(
        harness.instance.statements(),
        vec![
            "SELECT 1".to_string(),
            "SELECT bad syntax here (".to_string()
        ]
    );
}

#[test]
fn create_alter_drop_database() {
    let mut harness = Harness::new();
    let events = harness.run(
        "CREATE DATABASE [New Db]; ALTER DATABASE [New Db] SET RECOVERY SIMPLE; \
         ALTER DATABASE [New Db] SET OFFLINE WITH ROLLBACK IMMEDIATE;",
    );
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
    let (_, rows) = harness.query("SELECT state_desc, recovery_model_desc, database_id FROM sys.databases WHERE name = N'New Db'");
    assert_eq!(text(&rows[0][0]), "OFFLINE");
    assert_eq!(text(&rows[0][1]), "SIMPLE");
    assert_eq!(rows[0][2], Value::Int(6));
    let events = harness.run("CREATE DATABASE [new db]");
    assert_eq!(error_numbers(&events), vec![1801]);
    let events = harness.run("DROP DATABASE [New Db]; DROP DATABASE [New Db]");
    let errors = errors(&events);
    assert_eq!(errors[0].number, 3701);
    assert_eq!(errors[0].class, 11);
}

#[test]
fn alter_unknown_database_fails_twice() {
    let mut harness = Harness::new();
    let events = harness.run("ALTER DATABASE [nope] SET RECOVERY FULL");
    assert_eq!(error_numbers(&events), vec![5011, 5069]);
}

#[test]
fn drop_system_database_fails() {
    let mut harness = Harness::new();
    let events = harness.run("DROP DATABASE msdb");
    assert_eq!(error_numbers(&events), vec![3708]);
}
