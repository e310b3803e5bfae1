//! Job leases: one holder per database, take-over after expiry, renewal and release.

mod catalog_fixture;

use std::time::Duration as StdDuration;

use bakfleet::catalog::{Catalog, LeaseError};
use catalog_fixture::{holder, T0};
use time::Duration;

const TTL: StdDuration = StdDuration::from_secs(600);

#[tokio::test]
async fn lease_rejects_second_live_holder() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let first = holder("central01", 4242);
    let second = holder("central02", 777);

    catalog
        .acquire_lease("sales-prod", "orders", &first, TTL, T0)
        .await
        .unwrap();
    let error = catalog
        .acquire_lease(
            "sales-prod",
            "orders",
            &second,
            TTL,
            T0 + Duration::minutes(9),
        )
        .await
        .unwrap_err();

    match &error {
        LeaseError::Held {
            host,
            pid,
            expires_at,
            ..
        } => {
            assert_eq!(host, "central01");
            assert_eq!(*pid, 4242);
            assert_eq!(*expires_at, T0 + Duration::minutes(10));
        }
        other => panic!("expected Held, got {other}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("central01"),
        "message lacks the host: {message}"
    );
    assert!(message.contains("4242"), "message lacks the pid: {message}");
    assert!(
        message.contains("\"orders\""),
        "message lacks the database: {message}"
    );

    catalog
        .acquire_lease("sales-prod", "billing", &second, TTL, T0)
        .await
        .expect("a lease covers one database only");
}

#[tokio::test]
async fn lease_same_holder_acquires_again() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let first = holder("central01", 4242);

    catalog
        .acquire_lease("sales-prod", "orders", &first, TTL, T0)
        .await
        .unwrap();
    catalog
        .acquire_lease(
            "sales-prod",
            "orders",
            &first,
            TTL,
            T0 + Duration::minutes(5),
        )
        .await
        .expect("the holder may acquire its own lease again");

    let other = holder("central02", 777);
    let error = catalog
        .acquire_lease(
            "sales-prod",
            "orders",
            &other,
            TTL,
            T0 + Duration::minutes(12),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, LeaseError::Held { .. }),
        "re-acquiring did not extend: {error}"
    );
}

#[tokio::test]
async fn lease_taken_over_after_expiry() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let crashed = holder("central01", 4242);
    let next = holder("central01", 5151);

    catalog
        .acquire_lease("sales-prod", "orders", &crashed, TTL, T0)
        .await
        .unwrap();
    catalog
        .acquire_lease(
            "sales-prod",
            "orders",
            &next,
            TTL,
            T0 + Duration::minutes(10),
        )
        .await
        .expect("a lease expiring exactly now is free");

    let error = catalog
        .renew_lease(
            "sales-prod",
            "orders",
            &crashed,
            TTL,
            T0 + Duration::minutes(11),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, LeaseError::Lost { .. }),
        "unexpected error: {error}"
    );
    assert!(error.to_string().contains("\"orders\""), "{error}");
}

#[tokio::test]
async fn lease_renew_extends_expiry() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let first = holder("central01", 4242);
    let second = holder("central02", 777);

    catalog
        .acquire_lease("sales-prod", "orders", &first, TTL, T0)
        .await
        .unwrap();
    catalog
        .renew_lease(
            "sales-prod",
            "orders",
            &first,
            TTL,
            T0 + Duration::minutes(8),
        )
        .await
        .unwrap();

    let error = catalog
        .acquire_lease(
            "sales-prod",
            "orders",
            &second,
            TTL,
            T0 + Duration::minutes(15),
        )
        .await
        .unwrap_err();
    match error {
        LeaseError::Held { expires_at, .. } => {
            assert_eq!(expires_at, T0 + Duration::minutes(18));
        }
        other => panic!("expected Held, got {other}"),
    }
    catalog
        .acquire_lease(
            "sales-prod",
            "orders",
            &second,
            TTL,
            T0 + Duration::minutes(18),
        )
        .await
        .expect("free once the renewed lease expires");
}

#[tokio::test]
async fn lease_release_frees_database() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let first = holder("central01", 4242);
    let second = holder("central02", 777);
    catalog
        .acquire_lease("sales-prod", "orders", &first, TTL, T0)
        .await
        .unwrap();

    catalog
        .release_lease("sales-prod", "orders", &second)
        .await
        .expect("releasing another holder's lease is not an error");
    let error = catalog
        .acquire_lease("sales-prod", "orders", &second, TTL, T0)
        .await
        .unwrap_err();
    assert!(
        matches!(error, LeaseError::Held { .. }),
        "a stranger released the lease"
    );

    catalog
        .release_lease("sales-prod", "orders", &first)
        .await
        .unwrap();
    catalog
        .acquire_lease("sales-prod", "orders", &second, TTL, T0)
        .await
        .expect("free after release");

    let error = catalog
        .renew_lease("sales-prod", "orders", &first, TTL, T0)
        .await
        .unwrap_err();
    assert!(
        matches!(error, LeaseError::Lost { .. }),
        "unexpected error: {error}"
    );
}

/// Two catalogues on one file stand for two bakfleet processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_race_has_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let process_a = Catalog::open(&path).await.unwrap();
    let process_b = Catalog::open(&path).await.unwrap();

    let mut tasks = Vec::new();
    for attempt in 0..16u32 {
        let catalog = if attempt % 2 == 0 {
            process_a.clone()
        } else {
            process_b.clone()
        };
        tasks.push(tokio::spawn(async move {
            let contender = holder("central01", 1000 + attempt);
            catalog
                .acquire_lease("sales-prod", "orders", &contender, TTL, T0)
                .await
        }));
    }

    let mut winners = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => winners += 1,
            Err(LeaseError::Held { .. }) => {}
            Err(other) => panic!("acquire failed with an error other than Held: {other}"),
        }
    }
    assert_eq!(winners, 1);
}

#[tokio::test]
async fn dead_local_holder_released() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    // A child that has exited and been reaped: its pid names no process.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let crashed = holder(&host, dead_pid);
    let now = T0;
    catalog
        .acquire_lease("sales", "Sales", &crashed, TTL, now)
        .await
        .unwrap();
    let alive = holder(&host, std::process::id());
    catalog
        .acquire_lease("sales", "HR", &alive, TTL, now)
        .await
        .unwrap();

    let mut me = holder(&host, std::process::id());
    me.id = "this-process".to_string();
    let released = catalog.release_dead_leases(&me).await.unwrap();

    assert_eq!(released, 1, "only the lease of the exited process goes");
    catalog
        .acquire_lease("sales", "Sales", &me, TTL, now)
        .await
        .expect("the dead holder's database is free at once");
    let still_held = catalog.acquire_lease("sales", "HR", &me, TTL, now).await;
    assert!(still_held.is_err(), "a live process keeps its lease");
}
