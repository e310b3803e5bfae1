//! Catalogue benchmark: fills a catalogue with `--backups` backups over many instances
//! and databases, plus one database with a long log chain, and prints the latencies of
//! the fleet page, a database page and `restore-plan` as Markdown.
//!
//! A `benches/` target like the transfer benchmark, so it is built optimised and stays
//! out of the shipped binary. It times the catalogue calls each page makes, without
//! HTTP and template rendering. tests/bench_catalogue.rs runs it at a tiny size.

mod measure;
mod pages;

use std::path::PathBuf;

use clap::Parser;

/// Command-line options. `cargo bench` adds `--bench`, which is accepted and ignored.
#[derive(Debug, Parser)]
struct Arguments {
    /// Backups spread over the fleet, besides the long chain.
    #[arg(long, default_value_t = 1_000_000)]
    backups: u64,
    /// Instances of the fleet.
    #[arg(long, default_value_t = 100)]
    instances: u32,
    /// Databases per instance.
    #[arg(long, default_value_t = 10)]
    databases_per_instance: u32,
    /// Log backups of the database whose restore plan is timed.
    #[arg(long, default_value_t = 10_000)]
    chain_logs: u64,
    /// Callers that request at the same time.
    #[arg(long, default_value_t = 20)]
    clients: usize,
    /// Requests per caller and page.
    #[arg(long, default_value_t = 10)]
    requests: usize,
    /// Folder for the catalogue file; a new temp folder when left out.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Write the Markdown tables to this file as well as to standard output.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Keep the work folder with its catalogue, for a look with `sqlite3`, and print its path.
    #[arg(long)]
    keep: bool,
    /// Time the pages of this catalogue, one that `--keep` kept, instead of filling a new
    /// one. Its histories end when it was filled, so its databases age.
    #[arg(long, conflicts_with = "keep")]
    catalogue: Option<PathBuf>,
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    let arguments = Arguments::parse();
    let temp_dir = tempfile::Builder::new()
        .prefix("bakfleet-bench-catalogue-")
        .tempdir_in(
            arguments
                .work_dir
                .clone()
                .unwrap_or_else(std::env::temp_dir),
        )
        .expect("create benchmark work folder");
    let options = measure::Options {
        backups: arguments.backups,
        instances: arguments.instances.max(1),
        databases_per_instance: arguments.databases_per_instance.max(1),
        chain_logs: arguments.chain_logs,
        clients: arguments.clients.max(1),
        requests_per_client: arguments.requests.max(1),
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let markdown = runtime.block_on(async {
        let (path, fill) = match &arguments.catalogue {
            Some(path) => (path.clone(), measure::summary_of(path).await),
            None => {
                let path = temp_dir.path().join("catalog.db");
                let fill = measure::fill(&path, &options).await;
                (path, fill)
            }
        };
        let catalog = bakfleet::catalog::Catalog::open(&path)
            .await
            .expect("open catalogue");
        let results = measure::measure(&catalog, temp_dir.path(), &options, &fill).await;
        measure::render_markdown(&fill, &results)
    });
    print!("{markdown}");
    if arguments.keep {
        let work_dir = temp_dir.keep();
        eprintln!("catalogue kept in {}", work_dir.display());
    }
    if let Some(path) = arguments.output {
        std::fs::write(&path, &markdown)
            .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
    }
}
