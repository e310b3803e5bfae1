//! Runs the catalogue benchmark's code on a tiny fleet so it keeps working between the
//! long runs of scripts/bench.sh. It checks the generated history, not the latencies.

#[path = "../benches/catalogue/measure.rs"]
mod measure;
#[path = "../benches/catalogue/pages.rs"]
mod pages;

use bakfleet::catalog::Catalog;

#[tokio::test]
async fn catalogue_bench_fills_and_measures() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let options = measure::Options {
        backups: 1_000,
        instances: 2,
        databases_per_instance: 2,
        chain_logs: 300,
        clients: 3,
        requests_per_client: 2,
    };

    let fill = measure::fill(&path, &options).await;
    let catalog = Catalog::open(&path).await.unwrap();
    let results = measure::measure(&catalog, dir.path(), &options, &fill).await;

    assert_eq!(fill.backups, 1_301);
    assert_eq!(fill.runs, 1_301);
    assert_eq!(fill.databases, 5);
    let overview = catalog.fleet_overview().await.unwrap();
    assert_eq!(overview.len(), 5);
    assert!(overview.iter().all(|row| row.last_full.is_some()));
    assert!(overview.iter().all(|row| row.last_log.is_some()));
    let names: Vec<&str> = results.iter().map(|latencies| latencies.name).collect();
    assert_eq!(
        names,
        [
            "fleet page, queries only",
            "database page, queries only",
            "fleet page, whole request",
            "database page, whole request",
            "restore-plan, latest",
            "restore-plan, point in time"
        ]
    );
    assert_eq!(results[0].samples.len(), 6);
    assert_eq!(results[2].samples.len(), 6);
    assert_eq!(results[4].samples.len(), 2);
    assert_eq!(results[5].samples.len(), 2);
    assert!(results
        .iter()
        .all(|latencies| latencies.samples.contains(&latencies.first)));
    let markdown = measure::render_markdown(&fill, &results);
    assert!(
        markdown.contains("| request | concurrent callers | requests | first ms |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| fleet page, whole request | 3 | 6 |"),
        "{markdown}"
    );

    // A kept catalogue is measured again as `--catalogue` does it.
    let kept_fill = measure::summary_of(&path).await;
    assert_eq!(
        (
            kept_fill.backups,
            kept_fill.runs,
            kept_fill.databases,
            kept_fill.chain_start
        ),
        (fill.backups, fill.runs, fill.databases, fill.chain_start)
    );
    let again = measure::measure(&catalog, dir.path(), &options, &kept_fill).await;
    assert_eq!(again.len(), results.len());
}
