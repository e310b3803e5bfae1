//! Fleet-scale benchmark: starts the simulator with many instances in one process, runs
//! `bakfleet serve` on them with log backups on a fixed interval, and prints bakfleet's
//! CPU time, peak RSS, schedule lateness, runs per second, missed runs and catalogue
//! size as Markdown.
//!
//! bakfleet runs as a child process so that its CPU and memory figures are its own.
//! tests/bench_fleet.rs runs the same code on a few instances.

mod measure;

use std::path::{Path, PathBuf};

use clap::Parser;

/// Command-line options. `cargo bench` adds `--bench`, which is accepted and ignored.
#[derive(Debug, Parser)]
struct Arguments {
    /// Simulated instances, all hosted by one simulator process.
    #[arg(long, default_value_t = 1_000)]
    instances: u32,
    /// User databases per instance.
    #[arg(long, default_value_t = 10)]
    databases_per_instance: u32,
    /// Seconds between log backup slots; must divide 3600.
    #[arg(long, default_value_t = 900)]
    interval_seconds: u32,
    /// Slots measured after the start-up catch-up has finished.
    #[arg(long, default_value_t = 1)]
    slots: u32,
    /// bakfleet's `service.max_parallel_jobs` (and `max_jobs_per_staging`, because all
    /// instances share the one local staging limit). On two cores, 8 ran more runs per
    /// second than 16 or 32, which spent more CPU per run on switching between jobs.
    #[arg(long, default_value_t = 8)]
    parallel_jobs: usize,
    /// The log schedule's `spread` in seconds, below the interval; 0 turns it off. Ten
    /// minutes of a 15-minute interval leaves five for the slot's last runs to finish.
    #[arg(long, default_value_t = 600)]
    spread_seconds: u32,
    /// A run of seconds: 20 instances with 2 databases each, a slot every 10 s.
    #[arg(long)]
    small: bool,
    /// Folder for the catalogue, store and staging files; a new temp folder when left out.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Write the Markdown table to this file as well as to standard output.
    #[arg(long)]
    output: Option<PathBuf>,
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    let arguments = Arguments::parse();
    let options = if arguments.small {
        measure::Options::small()
    } else {
        measure::Options {
            instances: arguments.instances.max(1),
            databases_per_instance: arguments.databases_per_instance.max(1),
            interval_seconds: arguments.interval_seconds,
            slots: arguments.slots.max(1),
            parallel_jobs: arguments.parallel_jobs.max(1),
            spread_seconds: arguments.spread_seconds,
        }
    };
    assert!(
        options.spread_seconds < options.interval_seconds,
        "--spread-seconds must be below --interval-seconds"
    );
    let temp_dir = tempfile::Builder::new()
        .prefix("bakfleet-bench-fleet-")
        .tempdir_in(
            arguments
                .work_dir
                .clone()
                .unwrap_or_else(std::env::temp_dir),
        )
        .expect("create benchmark work folder");

    let bakfleet = Path::new(env!("CARGO_BIN_EXE_bakfleet"));
    let figures = measure::run(bakfleet, temp_dir.path(), &options);
    let markdown = measure::render_markdown(&options, &figures);
    print!("{markdown}");
    if let Some(path) = arguments.output {
        std::fs::write(&path, &markdown)
            .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
    }
}
