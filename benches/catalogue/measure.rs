//! Catalogue figures: fills a catalogue with a fleet's history, then times the queries
//! behind the fleet page, a database page and `restore-plan` under concurrent callers.

use std::path::Path;
use std::time::{Duration, Instant};

use bakfleet::backup::Lsn;

use crate::pages::Site;
use bakfleet::catalog::Catalog;
use bakfleet::chain::Target;
use bakfleet::restore_plan::build_plan;
use bakfleet::restore_script::ScriptOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Executor};
use time::OffsetDateTime;

/// Rows a database page reads per listing: the 50 it shows and one more that shows
/// whether an older page exists, as `src/web/pages.rs` reads them.
const LIST_LIMIT: i64 = 51;

/// Rows inserted per transaction while the catalogue is filled.
const ROWS_PER_TRANSACTION: usize = 20_000;

/// LSN step between consecutive backups of one database.
const LSN_STEP: u128 = 1_000_000;

/// Minutes between log backups, the default schedule of fleet.toml.
const LOG_MINUTES: i64 = 15;

/// Settings of one catalogue benchmark.
#[derive(Debug, Clone)]
pub struct Options {
    /// Backups spread over the fleet's databases, besides the long chain.
    pub backups: u64,
    /// Instances of the fleet.
    pub instances: u32,
    /// Databases per instance.
    pub databases_per_instance: u32,
    /// Log backups of the one database whose restore plan is timed.
    pub chain_logs: u64,
    /// Callers that request at the same time.
    pub clients: usize,
    /// Requests each caller makes per page.
    pub requests_per_client: usize,
}

/// The latencies of one page or command.
#[derive(Debug, Clone)]
pub struct Latencies {
    pub name: &'static str,
    pub clients: usize,
    /// Sorted, one per request.
    pub samples: Vec<Duration>,
    /// The first request of the first caller, which finds the connections' page caches
    /// empty.
    pub first: Duration,
}

impl Latencies {
    /// Returns the latency below which `percent` of the requests finished.
    pub fn percentile(&self, percent: f64) -> Duration {
        let rank = ((percent / 100.0) * self.samples.len() as f64).ceil() as usize;
        self.samples[rank.clamp(1, self.samples.len()) - 1]
    }
}

/// Counts and timing of the generated catalogue.
#[derive(Debug, Clone)]
pub struct FillSummary {
    pub backups: u64,
    pub runs: u64,
    pub databases: u64,
    pub seconds: f64,
    pub file_bytes: u64,
    /// Finish time of the long chain's full, from which its logs follow every 15 minutes.
    pub chain_start: OffsetDateTime,
}

/// The instance and database that carry the long log chain.
pub const CHAIN_INSTANCE: &str = "sql-chain";
pub const CHAIN_DATABASE: &str = "Ledger";

/// Creates the catalogue at `path` with bakfleet's migrations and fills it. Every
/// database gets weekly fulls, daily diffs and 15-minute logs with consistent LSNs, one
/// run per backup, until `options.backups` are written. Then one more database gets a
/// full followed by `options.chain_logs` logs.
pub async fn fill(path: &Path, options: &Options) -> FillSummary {
    let started = Instant::now();
    let catalog = Catalog::open(path).await.expect("create catalogue");
    drop(catalog);
    let mut connection = SqliteConnection::connect_with(
        &SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Off),
    )
    .await
    .expect("open catalogue for filling");

    // Every history ends now, so that a fleet page assesses a fleet whose backups are on
    // time, as a fleet under bakfleet's schedules mostly is.
    let end = OffsetDateTime::now_utc()
        .replace_second(0)
        .and_then(|at| at.replace_nanosecond(0))
        .expect("second 0 and nanosecond 0 are valid");
    let databases = u64::from(options.instances) * u64::from(options.databases_per_instance);
    let per_database = options.backups.div_ceil(databases.max(1));
    let mut writer = RowWriter::new(&mut connection).await;
    let mut written = 0u64;
    let mut databases_written = 0u64;
    'fleet: for instance in 0..options.instances {
        let instance_name = format!("sql-{instance:04}");
        writer.add_instance(&instance_name).await;
        for database in 0..options.databases_per_instance {
            let database_name = format!("db_{database:03}");
            writer.add_database(&instance_name, &database_name).await;
            databases_written += 1;
            let count = per_database.min(options.backups - written);
            let history = History::new(&instance_name, &database_name, count, end);
            writer.add_history(history).await;
            written += count;
            if written >= options.backups {
                break 'fleet;
            }
        }
    }
    writer.add_instance(CHAIN_INSTANCE).await;
    writer.add_database(CHAIN_INSTANCE, CHAIN_DATABASE).await;
    let chain = History::long_chain(CHAIN_INSTANCE, CHAIN_DATABASE, options.chain_logs, end);
    let chain_start = chain.start;
    writer.add_history(chain).await;
    let runs = writer.runs;
    writer.finish().await;
    connection
        .execute("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;")
        .await
        .expect("checkpoint the catalogue");
    connection.close().await.expect("close catalogue");
    // The fill writes without syncing. Linux writes such pages back once they are 30 s
    // old (`vm.dirty_expire_centisecs` by default), which would fall among the timed
    // requests.
    std::fs::File::open(path)
        .and_then(|file| file.sync_all())
        .expect("write the filled catalogue to disk");

    FillSummary {
        backups: written + options.chain_logs + 1,
        runs,
        databases: databases_written + 1,
        seconds: started.elapsed().as_secs_f64(),
        file_bytes: std::fs::metadata(path).map_or(0, |metadata| metadata.len()),
        chain_start,
    }
}

/// Counts the backups, runs and databases of a catalogue that [`fill`] wrote earlier and
/// finds the start of its long chain. The fill time is unknown and given as 0.
pub async fn summary_of(path: &Path) -> FillSummary {
    let mut connection =
        SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(path))
            .await
            .expect("open the kept catalogue");
    let (backups, runs, databases): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM backups), (SELECT COUNT(*) FROM runs),
                (SELECT COUNT(*) FROM databases)",
    )
    .fetch_one(&mut connection)
    .await
    .expect("count the kept catalogue's rows");
    connection.close().await.expect("close the kept catalogue");
    let catalog = Catalog::open(path).await.expect("open the kept catalogue");
    let chain = catalog
        .restorable_chain_backups(CHAIN_INSTANCE, CHAIN_DATABASE)
        .await
        .expect("list the long chain");
    let full = chain.first().expect("the long chain starts with a full");
    FillSummary {
        backups: backups as u64,
        runs: runs as u64,
        databases: databases as u64,
        seconds: 0.0,
        file_bytes: std::fs::metadata(path).map_or(0, |metadata| metadata.len()),
        chain_start: full.finished_at,
    }
}

/// The backups of one database, oldest first.
struct History {
    instance: String,
    database: String,
    count: u64,
    /// Logs between two diffs; `None` gives one full followed only by logs.
    logs_per_diff: Option<u64>,
    /// Finish time of the first backup; the last one finishes at the fill's end time.
    start: OffsetDateTime,
}

/// Returns the finish time of the first of `count` backups 15 minutes apart that end at
/// `end`.
fn history_start(count: u64, end: OffsetDateTime) -> OffsetDateTime {
    end - time::Duration::minutes(count.saturating_sub(1) as i64 * LOG_MINUTES)
}

impl History {
    fn new(instance: &str, database: &str, count: u64, end: OffsetDateTime) -> History {
        History {
            instance: instance.to_string(),
            database: database.to_string(),
            count,
            // A day of 15-minute logs, minus the slot the diff takes.
            logs_per_diff: Some(24 * 60 / LOG_MINUTES as u64 - 1),
            start: history_start(count, end),
        }
    }

    fn long_chain(instance: &str, database: &str, logs: u64, end: OffsetDateTime) -> History {
        History {
            instance: instance.to_string(),
            database: database.to_string(),
            count: logs + 1,
            logs_per_diff: None,
            start: history_start(logs + 1, end),
        }
    }
}

/// A backup about to be written.
struct NewBackup {
    backup_type: &'static str,
    finished_at: OffsetDateTime,
    first_lsn: u128,
    last_lsn: u128,
    checkpoint_lsn: u128,
    database_backup_lsn: u128,
    differential_base_lsn: Option<u128>,
}

/// Inserts rows in large transactions with prepared statements.
struct RowWriter<'a> {
    connection: &'a mut SqliteConnection,
    pending: usize,
    next_id: i64,
    runs: u64,
}

const INSERT_RUN: &str = "INSERT INTO runs (id, instance, database, backup_type, trigger, status,
        phase, started_at, finished_at, duration_ms, bytes, throughput_bps, host, pid,
        requested_type, slot)
    VALUES (?, ?, ?, ?, 'schedule', 'succeeded', 'done', ?, ?, 4000, ?, 25000000.0,
        'bench', 1, ?, ?)";

const INSERT_BACKUP: &str = "INSERT INTO backups (id, run_id, instance, database, backup_type,
        status, store_path, staged_path, size_bytes, sha256, first_lsn, last_lsn,
        checkpoint_lsn, database_backup_lsn, differential_base_lsn, backup_set_guid,
        database_guid, backup_start, backup_finish, finished_at, time_zone, server_version,
        recovery_model, has_checksums, is_copy_only, compressed, backup_size,
        compressed_size, fetched_at, fetch_ms)
    VALUES (?, ?, ?, ?, ?, 'verified', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0,
        '16.0.4135.4', 'FULL', 1, 0, 1, ?, ?, ?, 4000)";

impl<'a> RowWriter<'a> {
    async fn new(connection: &'a mut SqliteConnection) -> RowWriter<'a> {
        connection
            .execute("BEGIN")
            .await
            .expect("begin transaction");
        RowWriter {
            connection,
            pending: 0,
            next_id: 1,
            runs: 0,
        }
    }

    async fn add_instance(&mut self, name: &str) {
        sqlx::query("INSERT INTO instances (name, host, port) VALUES (?, '127.0.0.1', 1433)")
            .bind(name)
            .execute(&mut *self.connection)
            .await
            .expect("insert instance");
    }

    async fn add_database(&mut self, instance: &str, database: &str) {
        sqlx::query(
            "INSERT INTO databases (instance_id, name, recovery_model, state)
             SELECT id, ?, 'FULL', 'ONLINE' FROM instances WHERE name = ?",
        )
        .bind(database)
        .bind(instance)
        .execute(&mut *self.connection)
        .await
        .expect("insert database");
    }

    /// Writes the history's backups: a full, then diffs and logs in a repeating day of
    /// 96 slots, with a new full every seven days. LSNs grow by [`LSN_STEP`] per backup
    /// and each log starts where the previous one ended.
    async fn add_history(&mut self, history: History) {
        let start = history.start;
        let slots_per_week = 7 * 24 * 60 / LOG_MINUTES as u64;
        let mut full_checkpoint = 0u128;
        let mut log_end = LSN_STEP;
        for index in 0..history.count {
            let finished_at = start + time::Duration::minutes(index as i64 * LOG_MINUTES);
            let lsn = LSN_STEP * (index as u128 + 1);
            let slot_of_day = history.logs_per_diff.map(|logs| index % (logs + 1));
            let is_full =
                index == 0 || (history.logs_per_diff.is_some() && index % slots_per_week == 0);
            let backup = if is_full {
                full_checkpoint = lsn + 10;
                NewBackup {
                    backup_type: "full",
                    finished_at,
                    first_lsn: lsn,
                    last_lsn: lsn + 100,
                    checkpoint_lsn: full_checkpoint,
                    database_backup_lsn: 0,
                    differential_base_lsn: None,
                }
            } else if slot_of_day == Some(0) {
                NewBackup {
                    backup_type: "diff",
                    finished_at,
                    first_lsn: lsn,
                    last_lsn: lsn + 100,
                    checkpoint_lsn: lsn + 10,
                    database_backup_lsn: full_checkpoint,
                    differential_base_lsn: Some(full_checkpoint),
                }
            } else {
                let first = log_end;
                log_end = lsn + 100;
                NewBackup {
                    backup_type: "log",
                    finished_at,
                    first_lsn: first,
                    last_lsn: log_end,
                    checkpoint_lsn: full_checkpoint,
                    database_backup_lsn: full_checkpoint,
                    differential_base_lsn: None,
                }
            };
            self.add_backup(&history, &backup).await;
        }
    }

    async fn add_backup(&mut self, history: &History, backup: &NewBackup) {
        let id = self.next_id;
        self.next_id += 1;
        let finished = format_utc(backup.finished_at);
        let started = format_utc(backup.finished_at - time::Duration::seconds(4));
        let local_start = started.trim_end_matches('Z').to_string();
        let local_finish = finished.trim_end_matches('Z').to_string();
        let store_path = format!(
            "{}/{}/{}/{}_{}_{id}.bak",
            history.instance,
            history.database,
            backup.backup_type,
            history.database,
            backup.backup_type
        );
        let size: i64 = match backup.backup_type {
            "full" => 2 << 30,
            "diff" => 200 << 20,
            _ => 8 << 20,
        };

        sqlx::query(INSERT_RUN)
            .bind(id)
            .bind(&history.instance)
            .bind(&history.database)
            .bind(backup.backup_type)
            .bind(&started)
            .bind(&finished)
            .bind(size)
            .bind(backup.backup_type)
            .bind(&started)
            .execute(&mut *self.connection)
            .await
            .expect("insert run");
        sqlx::query(INSERT_BACKUP)
            .bind(id)
            .bind(id)
            .bind(&history.instance)
            .bind(&history.database)
            .bind(backup.backup_type)
            .bind(&store_path)
            .bind(format!("D:\\staging\\{}_{id}.bak", history.database))
            .bind(size)
            .bind(format!("{id:064x}"))
            .bind(Lsn(backup.first_lsn).to_catalog_text())
            .bind(Lsn(backup.last_lsn).to_catalog_text())
            .bind(Lsn(backup.checkpoint_lsn).to_catalog_text())
            .bind(Lsn(backup.database_backup_lsn).to_catalog_text())
            .bind(
                backup
                    .differential_base_lsn
                    .map(|lsn| Lsn(lsn).to_catalog_text()),
            )
            .bind(format!("{id:08x}-0000-4000-8000-000000000000"))
            .bind(format!(
                "{:08x}-0000-4000-8000-000000000001",
                history.database.len()
            ))
            .bind(&local_start)
            .bind(&local_finish)
            .bind(&finished)
            .bind(size * 2)
            .bind(size)
            .bind(&finished)
            .execute(&mut *self.connection)
            .await
            .expect("insert backup");

        self.runs += 1;
        self.pending += 2;
        if self.pending >= ROWS_PER_TRANSACTION {
            self.connection
                .execute("COMMIT; BEGIN")
                .await
                .expect("commit rows");
            self.pending = 0;
        }
    }

    async fn finish(self) {
        self.connection
            .execute("COMMIT")
            .await
            .expect("commit rows");
    }
}

fn format_utc(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.format(format).expect("benchmark times format")
}

/// Times the queries of the fleet page, of a database page and of `restore-plan` with
/// `options.clients` callers at once, each making `options.requests_per_client`
/// requests per page.
pub async fn measure(
    catalog: &Catalog,
    store_root: &Path,
    options: &Options,
    fill: &FillSummary,
) -> Vec<Latencies> {
    let fleet_instances = catalog.instances().await.expect("list instances").len() - 1;
    let mut results = Vec::new();
    results.push(
        run_clients(
            "fleet page, queries only",
            catalog,
            options,
            |catalog, _| async move {
                catalog.instances().await.expect("list instances");
                catalog.fleet_overview().await.expect("fleet overview");
            },
        )
        .await,
    );
    results.push(
        run_clients(
            "database page, queries only",
            catalog,
            options,
            move |catalog, request| async move {
                let instance = format!("sql-{:04}", request % fleet_instances.max(1));
                let database = "db_000";
                catalog
                    .database_overview(&instance, database)
                    .await
                    .expect("database overview")
                    .expect("the database is catalogued");
                catalog
                    .backup_listing(&instance, database, None, LIST_LIMIT)
                    .await
                    .expect("backup listing");
                catalog
                    .runs_of_database(&instance, database, None, LIST_LIMIT)
                    .await
                    .expect("runs of database");
            },
        )
        .await,
    );
    let site = Site::start(catalog).await;
    results.push(
        run_clients(
            "fleet page, whole request",
            &site,
            options,
            |site, _| async move {
                site.get("/").await;
            },
        )
        .await,
    );
    results.push(
        run_clients(
            "database page, whole request",
            &site,
            options,
            move |site, request| async move {
                let instance = format!("sql-{:04}", request % fleet_instances.max(1));
                site.get(&format!("/instances/{instance}/databases/db_000"))
                    .await;
            },
        )
        .await,
    );
    let single = Options {
        clients: 1,
        ..options.clone()
    };
    let temp_store_root = store_root.to_path_buf();
    let store_root = temp_store_root.clone();
    // The plan restores the full and every log, so a broken generated chain shows here.
    let expected_files = options.chain_logs as usize + 1;
    results.push(
        run_clients(
            "restore-plan, latest",
            catalog,
            &single,
            move |catalog, _| {
                let store_root = store_root.clone();
                async move {
                    let plan = build_plan(
                        &catalog,
                        &store_root,
                        CHAIN_INSTANCE,
                        CHAIN_DATABASE,
                        Target::Latest,
                        &ScriptOptions::default(),
                    )
                    .await
                    .expect("restore plan of the long chain");
                    assert_eq!(plan.script.files.len(), expected_files);
                }
            },
        )
        .await,
    );
    // A target inside the middle log: the plan reads the full and half of the logs.
    let middle = (options.chain_logs / 2).max(1);
    let target =
        fill.chain_start + time::Duration::minutes(middle as i64 * LOG_MINUTES - LOG_MINUTES / 2);
    let store_root = temp_store_root.clone();
    results.push(
        run_clients(
            "restore-plan, point in time",
            catalog,
            &single,
            move |catalog, _| {
                let store_root = store_root.clone();
                async move {
                    let plan = build_plan(
                        &catalog,
                        &store_root,
                        CHAIN_INSTANCE,
                        CHAIN_DATABASE,
                        Target::At(target),
                        &ScriptOptions::default(),
                    )
                    .await
                    .expect("point-in-time restore plan of the long chain");
                    assert_eq!(plan.chain.logs.len() as u64, middle);
                }
            },
        )
        .await,
    );
    results
}

/// Runs `options.clients` callers at once, each making its requests one after the
/// other with a clone of `target`, and collects every request's latency.
async fn run_clients<T, F, Fut>(
    name: &'static str,
    target: &T,
    options: &Options,
    request: F,
) -> Latencies
where
    T: Clone + Send + 'static,
    F: Fn(T, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..options.clients {
        let target = target.clone();
        let request = request.clone();
        let count = options.requests_per_client;
        tasks.spawn(async move {
            let mut samples = Vec::with_capacity(count);
            for index in 0..count {
                let started = Instant::now();
                request(target.clone(), client * count + index).await;
                samples.push(started.elapsed());
            }
            (client, samples)
        });
    }
    let mut samples = Vec::new();
    let mut first = None;
    while let Some(result) = tasks.join_next().await {
        let (client, client_samples) = result.expect("benchmark client");
        if client == 0 {
            first = client_samples.first().copied();
        }
        samples.extend(client_samples);
    }
    samples.sort();
    Latencies {
        name,
        clients: options.clients,
        first: first.expect("the first caller made a request"),
        samples,
    }
}

/// Formats the fill summary and the latencies as Markdown.
pub fn render_markdown(fill: &FillSummary, results: &[Latencies]) -> String {
    let mut text = format!(
        "\n#### Catalogue with {} backups\n\n\
         {} backups and {} runs over {} databases, written in {:.0} s; the catalogue file \
         is {:.0} MiB.\n\n\
         | request | concurrent callers | requests | first ms | p50 ms | p95 ms | p99 ms | max ms | target |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n",
        fill.backups,
        fill.backups,
        fill.runs,
        fill.databases,
        fill.seconds,
        fill.file_bytes as f64 / (1024.0 * 1024.0),
    );
    for latencies in results {
        let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
        let target = if latencies.name.starts_with("restore-plan") {
            "< 50 ms"
        } else {
            "p95 < 50 ms"
        };
        text.push_str(&format!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {target} |\n",
            latencies.name,
            latencies.clients,
            latencies.samples.len(),
            ms(latencies.first),
            ms(latencies.percentile(50.0)),
            ms(latencies.percentile(95.0)),
            ms(latencies.percentile(99.0)),
            ms(*latencies.samples.last().expect("at least one request")),
        ));
    }
    text
}
