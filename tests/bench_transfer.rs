//! Runs the transfer benchmark's code at 1 MiB, once, so it keeps working between the
//! long runs of scripts/bench.sh. It checks that every case ran, not how fast.

mod support;

#[path = "../benches/transfer/measure.rs"]
mod measure;

#[test]
fn transfer_bench_runs_tiny_file() {
    let work_dir = tempfile::tempdir().unwrap();
    let options = measure::Options {
        sizes: vec![1 << 20],
        repeats: 2,
        warmup_rounds: 1,
        work_dir: work_dir.path().to_path_buf(),
        drop_caches: false,
        case_filter: Vec::new(),
    };

    let measurements = measure::run(&options);

    assert_eq!(measurements.len(), 14);
    for measurement in &measurements {
        assert_eq!(measurement.seconds.len(), 2, "{}", measurement.case);
        assert_eq!(measurement.size, 1 << 20, "{}", measurement.case);
    }
    let bakfleet_smb = measurements
        .iter()
        .find(|m| m.case == "bakfleet SMB")
        .unwrap();
    assert_eq!(bakfleet_smb.kind, measure::Kind::Bakfleet);
    assert_eq!(bakfleet_smb.peak_rss_kib.len(), 2);
    assert_eq!(bakfleet_smb.commit_seconds.len(), 2);
    let markdown = measure::render_markdown(&measurements);
    assert!(
        markdown.contains("#### 1 MiB (2 runs per case)"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| bakfleet SMB / smbclient get |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| bakfleet SFTP / ssh cat + fdatasync |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| disk write + fdatasync | local write, then fdatasync |"),
        "{markdown}"
    );
    assert!(!measure::generate_file(&work_dir.path().join("x"), 10).is_empty());
    assert!(measure::best_and_median(&[3.0, 1.0, 2.0]) == (1.0, 2.0));
    let _ = measure::can_drop_caches();
}
