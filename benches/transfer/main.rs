//! Transfer benchmark: bakfleet's SMB and SFTP fetch, SHA-256 and durable store against
//! `smbclient`, `ssh cat` and `sftp` on loopback, printed as Markdown tables.
//!
//! A `benches/` target with `harness = false` rather than a hidden subcommand: it reuses
//! the tests' smbd and sshd start-up (tests/support) without shipping it in the binary,
//! `cargo bench` builds it optimised, and clippy `--all-targets` keeps it compiling.
//! tests/bench_transfer.rs runs the same code at a tiny size. Run it through
//! scripts/bench.sh, which also records the machine.

#[path = "../../tests/support/mod.rs"]
mod support;

mod measure;

use std::path::PathBuf;

use clap::Parser;

/// Command-line options. `cargo bench` adds `--bench`, which is accepted and ignored.
#[derive(Debug, Parser)]
struct Arguments {
    /// File sizes in MiB, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1024,4096")]
    sizes_mib: Vec<u64>,
    /// Runs per case; the tables give the best and the median.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Rounds of every case run first at each size and left out of the figures. The
    /// first round after the test file is written ran slowest in most cases.
    #[arg(long, default_value_t = 1)]
    warmup_rounds: usize,
    /// Folder for the share, the store and the copies; it needs twice the largest size
    /// free. A new temp folder under the system temp dir when left out.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Keep the page cache between runs instead of dropping it before each transfer.
    #[arg(long)]
    keep_page_cache: bool,
    /// Write the Markdown tables to this file as well as to standard output.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Run only the cases whose name contains one of these texts, comma-separated
    /// (for example `bakfleet,smbclient get`).
    #[arg(long, value_delimiter = ',')]
    cases: Vec<String>,
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    let arguments = Arguments::parse();
    let temp_dir = tempfile::Builder::new()
        .prefix("bakfleet-bench-")
        .tempdir_in(
            arguments
                .work_dir
                .clone()
                .unwrap_or_else(std::env::temp_dir),
        )
        .expect("create benchmark work folder");
    let drop_caches = !arguments.keep_page_cache && measure::can_drop_caches();
    if !arguments.keep_page_cache && !drop_caches {
        eprintln!("cannot write /proc/sys/vm/drop_caches: transfers read a cached file");
    }
    let options = measure::Options {
        sizes: arguments.sizes_mib.iter().map(|mib| mib << 20).collect(),
        repeats: arguments.repeats.max(1),
        warmup_rounds: arguments.warmup_rounds,
        work_dir: temp_dir.path().to_path_buf(),
        drop_caches,
        case_filter: arguments.cases,
    };

    let measurements = measure::run(&options);
    let cache_note = if drop_caches {
        "Page cache dropped before each transfer run; hashing runs read a cached file."
    } else {
        "Page cache kept: transfers and hashing read a cached file."
    };
    let warmup_note = match options.warmup_rounds {
        0 => "No warm-up round.".to_string(),
        1 => "One warm-up round of every case at each size, left out of the figures.".to_string(),
        rounds => {
            format!("{rounds} warm-up rounds of every case at each size, left out of the figures.")
        }
    };
    let markdown = format!(
        "{cache_note} {warmup_note}\n{}",
        measure::render_markdown(&measurements)
    );
    print!("{markdown}");
    if let Some(path) = arguments.output {
        std::fs::write(&path, &markdown)
            .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
    }
}
