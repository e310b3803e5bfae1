//! Log output of the binary: JSON lines with structured fields, and daily files.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;

use serde_json::Value;

/// The demo's simulated instances listen on fixed ports, so one demo runs at a time.
static DEMO_PORTS: Mutex<()> = Mutex::new(());

/// Runs `bakfleet demo --once` in `data_dir` at info level with extra flags and returns
/// its output.
fn run_demo_once(data_dir: &Path, flags: &[&str]) -> Output {
    run_demo_once_at(data_dir, "info", flags)
}

/// Runs `bakfleet demo --once` in `data_dir` at `level` with extra flags.
fn run_demo_once_at(data_dir: &Path, level: &str, flags: &[&str]) -> Output {
    let _ports = DEMO_PORTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let output = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .args(["demo", "--once", "--log-level", level, "--data-dir"])
        .arg(data_dir)
        .args(flags)
        .env_remove("RUST_LOG")
        .output()
        .expect("run bakfleet demo --once");
    assert!(
        output.status.success(),
        "demo failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Parses every line of `text` as one JSON object.
fn parse_json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("not a JSON object ({error}): {line}"))
        })
        .collect()
}

/// Returns the events that the job span wraps, with its `instance` and `database`.
fn job_events(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|event| event["span"]["name"] == "job")
        .collect()
}

#[test]
fn json_format_one_object_per_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = run_demo_once(&dir.path().join("demo"), &["--log-format", "json"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let events = parse_json_lines(&stderr);

    assert!(!events.is_empty(), "the demo logs at info level");
    for event in &events {
        assert!(event["level"].is_string(), "level in {event}");
        assert!(
            event["fields"]["message"].is_string(),
            "fields.message in {event}"
        );
    }
    let stored = events
        .iter()
        .find(|event| event["fields"]["message"] == "backup fetched and stored")
        .unwrap_or_else(|| panic!("no 'backup fetched and stored' event in:\n{stderr}"));
    assert_eq!(stored["level"], "INFO");
    assert!(stored["fields"]["sha256"].is_string(), "{stored}");
    assert!(stored["fields"]["size"].is_u64(), "{stored}");

    let jobs = job_events(&events);
    assert!(!jobs.is_empty(), "events inside the job span:\n{stderr}");
    for event in jobs {
        assert!(event["span"]["instance"].is_string(), "instance in {event}");
        assert!(event["span"]["database"].is_string(), "database in {event}");
        assert!(event["span"]["run_id"].is_i64(), "run_id in {event}");
    }
}

#[test]
fn log_dir_writes_daily_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log_dir = dir.path().join("logs");
    let log_dir_flag = log_dir.display().to_string();
    let output = run_demo_once(
        &dir.path().join("demo"),
        &["--log-format", "json", "--log-dir", &log_dir_flag],
    );

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.trim().is_empty(),
        "with --log-dir nothing is logged to stderr: {stderr}"
    );
    let files: Vec<_> = std::fs::read_dir(&log_dir)
        .expect("the log folder is created")
        .map(|entry| entry.expect("folder entry").path())
        .collect();
    assert_eq!(files.len(), 1, "one file for today: {files:?}");
    let name = files[0]
        .file_name()
        .and_then(|name| name.to_str())
        .expect("file name");
    let today = time::OffsetDateTime::now_utc().date();
    let expected = format!(
        "bakfleet.{:04}-{:02}-{:02}.log",
        today.year(),
        u8::from(today.month()),
        today.day()
    );
    assert_eq!(name, expected);
    let content = std::fs::read_to_string(&files[0]).expect("read the log file");
    let events = parse_json_lines(&content);
    assert!(
        !job_events(&events).is_empty(),
        "the file has the job events:\n{content}"
    );
}

#[test]
fn warnings_carry_job_fields_at_warn_level() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = run_demo_once_at(&dir.path().join("demo"), "warn", &["--log-format", "json"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let events = parse_json_lines(&stderr);

    // The Express instance leaves compression out, which the job warns about.
    let warning = events
        .iter()
        .find(|event| event["level"] == "WARN" && event["span"]["name"] == "job")
        .unwrap_or_else(|| panic!("no warning inside a job span in:\n{stderr}"));
    assert_eq!(warning["span"]["instance"], "hr-linux", "{warning}");
    assert!(warning["span"]["database"].is_string(), "{warning}");
}

/// Each run keeps its own log in the catalogue, at INFO and with the phases and T-SQL it
/// sent, even when the process log shows only warnings.
#[test]
fn run_log_kept_at_warn_level() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("demo");
    run_demo_once_at(&data_dir, "warn", &[]);

    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let catalog = bakfleet::catalog::Catalog::open_existing(&data_dir.join("catalog.db"))
            .await
            .expect("open the demo catalogue");
        let runs = catalog.recent_runs(50).await.expect("list runs");
        assert!(!runs.is_empty(), "the demo recorded no runs");
        let succeeded = runs
            .iter()
            .filter(|run| run.status == bakfleet::catalog::RunStatus::Succeeded);
        for run in succeeded {
            let log = catalog.run_log(run.id, 5_000).await.expect("read run log");
            let text: Vec<String> = log
                .iter()
                .map(|line| format!("{} {} {}", line.seq, line.level, line.message))
                .collect();
            let seqs: Vec<i64> = log.iter().map(|line| line.seq).collect();
            assert_eq!(
                seqs,
                (0..log.len() as i64).collect::<Vec<_>>(),
                "run {} log lines are numbered in order:\n{text:#?}",
                run.id
            );
            assert!(
                log.iter().any(|line| line.message.starts_with("sending batch")
                    && line.message.contains("statement=\"BACKUP\"")
                    && !line.message.contains("BACKUP DATABASE")),
                "run {} log names the BACKUP statement without its text:\n{text:#?}",
                run.id
            );
            assert!(
                log.iter()
                    .any(|line| line.level == "INFO" && line.message.starts_with("backup verified")),
                "run {} log has INFO lines although the process logged warnings only:\n{text:#?}",
                run.id
            );
            assert!(
                log.iter()
                    .any(|line| line.message == "phase started phase=fetch"),
                "run {} log names its phases:\n{text:#?}",
                run.id
            );
        }
        // The Express instance leaves compression out, which its runs log as a warning.
        let express = runs
            .iter()
            .find(|run| run.instance == "hr-linux")
            .expect("a run on hr-linux");
        let log = catalog.run_log(express.id, 5_000).await.expect("read run log");
        assert!(
            log.iter().any(|line| line.level == "WARN"),
            "the hr-linux run logs its warning: {log:#?}"
        );
    });
}
