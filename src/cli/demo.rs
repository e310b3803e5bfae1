//! `bakfleet demo`: a simulated fleet, backed up at once, with the admin site.
//!
//! The demo fleet is the repository's `fleet.toml`, compiled in, so the command works
//! from any folder. The simulator plays its instances in this process.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use time::OffsetDateTime;

use super::{output, run, serve};
use crate::backup::BackupType;
use crate::fleet::{Fleet, Staging};
use crate::job::{self, JobOutcome, Trigger};
use crate::schedule::{Scheduler, SystemClock};
use crate::service;
use crate::web::{self, WebState};

/// The demo fleet: the repository's `fleet.toml`.
const DEMO_FLEET: &str = include_str!("../../fleet.toml");

/// Name of the copy of the demo fleet written into the demo's data folder.
const DEMO_FLEET_FILE: &str = "fleet.toml";

/// The environment variable the demo fleet names for its SQL login's password.
const PASSWORD_VARIABLE: &str = "BAKFLEET_DEMO_PASSWORD";

/// The admin site user the demo adds, with the demo password.
const DEMO_USER: &str = "demo";

/// How the simulator plays each instance of the demo fleet.
struct DemoInstance {
    name: &'static str,
    platform: &'static str,
    edition: &'static str,
    /// Name, size in MiB, recovery model.
    databases: &'static [(&'static str, u64, &'static str)],
}

const DEMO_INSTANCES: [DemoInstance; 2] = [
    DemoInstance {
        name: "sales-prod",
        platform: "windows",
        edition: "enterprise",
        databases: &[
            ("Sales", 256, "FULL"),
            ("Inventory", 64, "SIMPLE"),
            ("Ventes d'été", 16, "FULL"),
        ],
    },
    DemoInstance {
        name: "hr-linux",
        platform: "linux",
        edition: "express",
        databases: &[("HR", 32, "FULL"), ("Payroll", 16, "FULL")],
    },
];

/// Gives the demo login a random password for this process, unless one is set.
pub fn prepare_demo_environment() {
    if std::env::var_os(PASSWORD_VARIABLE).is_none() {
        let password = format!("Demo-{}", uuid::Uuid::new_v4().simple());
        std::env::set_var(PASSWORD_VARIABLE, password);
    }
}

/// Starts the simulator, runs one full backup of every database, then either prints the
/// catalogued backups and exits (`once`) or serves the admin site with the schedules.
pub(crate) async fn execute(
    data_dir: &Path,
    listen: SocketAddr,
    once: bool,
) -> anyhow::Result<ExitCode> {
    let data_dir = absolute(data_dir)?;
    let fleet = demo_fleet(&data_dir, listen)?;
    let password = std::env::var(PASSWORD_VARIABLE)
        .with_context(|| format!("{PASSWORD_VARIABLE} is not set"))?;
    let simulator = start_simulator(&fleet, &password).await?;
    println!(
        "simulated SQL Server instances: {}",
        simulator
            .instances()
            .iter()
            .map(|(name, addr)| format!("{name} on {addr}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // Job events feed the live progress of `/runs/live`.
    let (events, event_receiver) = tokio::sync::mpsc::unbounded_channel();
    let ctx = service::open_fleet(fleet, Some(events)).await?;
    let live = web::LiveRuns::new();
    let live_events = tokio::spawn(web::collect_events(
        live.clone(),
        ctx.catalog.clone(),
        event_receiver,
    ));
    println!("backing up every demo database (full)...");
    let (mut requests, unreachable) =
        run::plan(&ctx, None, None, BackupType::Full, Trigger::Demo).await?;
    let held_back = !once && hold_back_for_the_user(&ctx.catalog, &mut requests).await?;
    let results = job::run_batch(&ctx, requests, ctx.fleet.service.max_parallel_jobs).await;
    let failed = output::print_results(&results) + output::print_unreachable(&unreachable);

    if once {
        print_catalogued(&ctx.catalog, &results).await?;
        simulator.shutdown().await;
        crate::run_log::finish().await;
        return Ok(if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }

    first_log_cycle(&ctx, held_back).await?;
    // No catch-up: the slots before this start are not missed runs of a fleet that was
    // down, and catching them up would back up the held-back database at once.
    let scheduler =
        Scheduler::start_with(ctx.clone(), std::sync::Arc::new(SystemClock), false).await?;
    let (run_requests, run_receiver) = tokio::sync::mpsc::channel(16);
    let requested_runs = tokio::spawn(web::run_requested_backups(
        tokio::sync::watch::channel(ctx.clone()).1,
        run_receiver,
    ));
    let state = WebState {
        catalog: ctx.catalog.clone(),
        fleet_name: "demo fleet".to_string(),
        started_at: OffsetDateTime::now_utc(),
        limits: Some(ctx.limits.clone()),
        fleet_status: None,
        sessions: web::SessionSettings::default(),
        store: Some(ctx.store.clone()),
        run_requests: Some(run_requests),
        fleet: Some(web::FleetInForce::Fixed(ctx.fleet.clone())),
        // The demo binds loopback only, so its metrics need no proxy.
        metrics: true,
        live: Some(live.clone()),
    };
    add_demo_admin(&ctx.catalog, &password).await?;
    let listener = web::bind(listen).await?;
    println!("admin site: http://{listen}/  (Ctrl-C stops the demo)");
    println!("log in as user {DEMO_USER} with the demo password: {password}");
    println!(
        "other commands reach this demo from a second terminal, for example:\n  \
         {PASSWORD_VARIABLE}='{password}' {} --fleet {} list",
        this_program(),
        data_dir.join(DEMO_FLEET_FILE).display()
    );
    // Open event streams end with the stop, so the site's graceful stop need not wait.
    let stop = async move {
        serve::stop_signal().await;
        live.close();
    };
    web::serve_on(listener, state, stop).await?;
    scheduler.shutdown().await;
    requested_runs.abort();
    live_events.abort();
    simulator.shutdown().await;
    crate::run_log::finish().await;
    ctx.catalog.close().await;
    println!(
        "demo stopped; its store and catalogue stay in {}",
        data_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Adds the demo's admin user, whose password is the demo's SQL password, or gives the
/// user an earlier demo run added in the same folder this run's password.
async fn add_demo_admin(catalog: &crate::catalog::Catalog, password: &str) -> anyhow::Result<()> {
    let hash = crate::account::hash_password(password)?;
    let now = OffsetDateTime::now_utc();
    if catalog.user_with_hash(DEMO_USER).await?.is_some() {
        // A demo restarted with another password keeps the printed password valid.
        catalog.set_password(DEMO_USER, &hash, now).await?;
        return Ok(());
    }
    catalog
        .add_user(DEMO_USER, crate::account::Role::Admin, &hash, now)
        .await?;
    Ok(())
}

/// The database the serving demo leaves out of its first cycle, so that the overview
/// shows a database without backups for the user to find and back up.
const HELD_BACK: (&str, &str) = ("hr-linux", "Payroll");

/// Removes [`HELD_BACK`] from the first cycle and prints a line about it, unless an
/// earlier demo in the same folder already backed it up, and returns whether it did. Its
/// schedule backs it up at its next slot if the user does not.
async fn hold_back_for_the_user(
    catalog: &crate::catalog::Catalog,
    requests: &mut Vec<job::JobRequest>,
) -> anyhow::Result<bool> {
    let (instance, database) = HELD_BACK;
    let known = catalog.database_overview(instance, database).await?;
    let backed_up = known.is_some_and(|overview| {
        overview.last_full.is_some() || overview.last_diff.is_some() || overview.last_log.is_some()
    });
    if backed_up {
        return Ok(false);
    }
    remove_held_back(requests);
    println!(
        "{database} on {instance} is left out of this first cycle: the overview shows it \
         missing until you back it up from the site, or its schedule does"
    );
    Ok(true)
}

/// Removes the requests for [`HELD_BACK`].
fn remove_held_back(requests: &mut Vec<job::JobRequest>) {
    let (instance, database) = HELD_BACK;
    requests.retain(|request| !(request.instance.name == instance && request.database == database));
}

/// Takes a log backup of every database after the fulls, leaving out [`HELD_BACK`] when
/// `held_back`. The overview then shows every other database within its RPO while the
/// scheduler, which catches no slot up in the demo, waits for its first log slot.
/// Databases in SIMPLE recovery are recorded as not applicable.
async fn first_log_cycle(ctx: &job::JobContext, held_back: bool) -> anyhow::Result<()> {
    println!("taking a log backup of every database in FULL recovery...");
    let (mut requests, unreachable) =
        run::plan(ctx, None, None, BackupType::Log, Trigger::Demo).await?;
    if held_back {
        remove_held_back(&mut requests);
    }
    let results = job::run_batch(ctx, requests, ctx.fleet.service.max_parallel_jobs).await;
    output::print_results(&results);
    output::print_unreachable(&unreachable);
    Ok(())
}

/// Returns the path of the running binary for the demo's hint, or `bakfleet`.
fn this_program() -> String {
    std::env::current_exe()
        .map(|path| path.display().to_string())
        .unwrap_or_else(|_| "bakfleet".to_string())
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let current = std::env::current_dir().context("cannot read the current folder")?;
    Ok(current.join(path))
}

/// Writes the demo fleet into `data_dir` for the other commands, parses it, and moves its
/// data under `data_dir`. The repository's file names its data under `demo-data/` beside
/// itself, so the written copy drops that prefix and resolves to the same places from
/// inside `data_dir`, wherever the demo runs.
fn demo_fleet(data_dir: &Path, listen: SocketAddr) -> anyhow::Result<Fleet> {
    let text = DEMO_FLEET.replace("\"demo-data/", "\"");
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let path = data_dir.join(DEMO_FLEET_FILE);
    std::fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    let mut fleet = Fleet::parse(&text, &path)?;
    fleet.service.store_dir = data_dir.join("store");
    fleet.service.catalog = data_dir.join("catalog.db");
    fleet.service.listen = listen;
    for instance in &mut fleet.instances {
        if let Staging::Local { dir, .. } = &mut instance.staging {
            *dir = data_dir.join("share").join(&instance.name);
            std::fs::create_dir_all(&*dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    let expected: BTreeSet<&str> = DEMO_INSTANCES.iter().map(|demo| demo.name).collect();
    let found: BTreeSet<&str> = fleet.instances.iter().map(|i| i.name.as_str()).collect();
    if expected != found {
        bail!("the demo fleet names instances {found:?}, but the demo plays {expected:?}");
    }
    Ok(fleet)
}

/// Describes the demo instances in the simulator's TOML format and starts them.
async fn start_simulator(fleet: &Fleet, password: &str) -> anyhow::Result<mssql_sim::Simulator> {
    let mut text = String::new();
    for demo in &DEMO_INSTANCES {
        let Some(instance) = fleet.instance(demo.name) else {
            bail!("instance {} is missing from the demo fleet", demo.name);
        };
        let Staging::Local { server_path, dir } = &instance.staging else {
            bail!("demo instance {} must stage to a local folder", demo.name);
        };
        writeln!(
            text,
            "[[instance]]\nname = {name:?}\nlisten = \"{host}:{port}\"\nplatform = {platform:?}\n\
             edition = {edition:?}\n\n[[instance.login]]\nname = \"bakfleet\"\npassword = {password:?}\n\
             sysadmin = true\n\n[[instance.path_map]]\nserver = {server:?}\nlocal = {local:?}\n",
            name = demo.name,
            host = instance.host,
            port = instance.port,
            platform = demo.platform,
            edition = demo.edition,
            server = server_path,
            local = dir.display().to_string(),
        )?;
        for (database, size_mb, recovery_model) in demo.databases {
            writeln!(
                text,
                "[[instance.database]]\nname = {database:?}\nsize_mb = {size_mb}\n\
                 recovery_model = {recovery_model:?}\n"
            )?;
        }
    }
    let config = mssql_sim::SimConfig::from_toml_str(&text)
        .context("the demo's simulator configuration is invalid")?;
    mssql_sim::start(config).await.context(
        "cannot start the simulated instances on 127.0.0.1 ports 14331 and 14332; stop the \
         program that uses them, such as another demo",
    )
}

/// Prints the backups this cycle catalogued, read back from the catalogue.
async fn print_catalogued(
    catalog: &crate::catalog::Catalog,
    results: &[(job::JobRequest, Result<JobOutcome, job::JobFailure>)],
) -> anyhow::Result<()> {
    println!("\ncatalogued backups:");
    println!(
        "{:<12} {:<16} {:<5} {:>10}  sha256",
        "instance", "database", "type", "size"
    );
    for (_, result) in results {
        let Ok(JobOutcome::Succeeded { backup_id, .. }) = result else {
            continue;
        };
        let Some(backup) = catalog.backup(*backup_id).await? else {
            bail!("backup #{backup_id} is missing from the catalogue");
        };
        println!(
            "{:<12} {:<16} {:<5} {:>10}  {}",
            backup.instance,
            backup.database,
            backup.backup_type,
            output::human_bytes(backup.size_bytes),
            backup.sha256
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn demo_user_takes_new_password() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = crate::catalog::Catalog::open(&dir.path().join("catalog.db"))
            .await
            .unwrap();
        add_demo_admin(&catalog, "Demo-first-password")
            .await
            .unwrap();
        add_demo_admin(&catalog, "Demo-second-password")
            .await
            .unwrap();

        let (_, hash) = catalog.user_with_hash(DEMO_USER).await.unwrap().unwrap();
        assert!(crate::account::verify_password(
            "Demo-second-password",
            &hash
        ));
        assert!(!crate::account::verify_password(
            "Demo-first-password",
            &hash
        ));
    }
}
