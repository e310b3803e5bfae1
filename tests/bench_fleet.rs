//! Runs the fleet benchmark's code on a few instances so it keeps working between the
//! long runs of scripts/bench.sh. It checks that every slot ran, not the speed.

#[path = "../benches/fleet/measure.rs"]
mod measure;

use std::path::Path;

#[test]
fn fleet_bench_measures_small_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let options = measure::Options {
        instances: 3,
        databases_per_instance: 2,
        interval_seconds: 5,
        slots: 1,
        parallel_jobs: 4,
        spread_seconds: 2,
    };

    let figures = measure::run(
        Path::new(env!("CARGO_BIN_EXE_bakfleet")),
        dir.path(),
        &options,
    );

    assert_eq!(figures.databases, 6);
    assert!(figures.warm_up_runs >= 6, "{figures:?}");
    assert_eq!(figures.expected_runs, 6);
    assert_eq!(figures.missed_runs, 0, "{figures:?}");
    assert_eq!(figures.failed_runs, 0, "{figures:?}");
    assert_eq!(figures.succeeded_runs, 6, "{figures:?}");
    assert_eq!(figures.lateness.len(), 6);
    assert!(figures.peak_rss_bytes > 0);
    assert!(figures.cpu_seconds_total > 0.0);
    assert!(figures.simulator_cpu_seconds >= figures.simulator_cpu_seconds_measured);
    assert!(figures.catalogue_bytes > 0);
    assert_eq!(measure::Options::small().databases(), 40);
    let markdown = measure::render_markdown(&options, &figures);
    assert!(
        markdown.contains("| runs missed (no run for its slot) | 0 | 0 | yes |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| simulator CPU s, measured slots / whole run |"),
        "{markdown}"
    );
}
