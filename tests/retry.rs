//! Connect retries against a simulated instance that drops its first connections: a
//! transient fault is retried until it passes, a failed login is not retried, and the
//! attempt limit holds.

use std::time::Duration;

use bakfleet::mssql::{ConnectSettings, Connection, Encryption, MssqlError};
use bakfleet::retry::{self, Retry, RetryPolicy, RetryScope};
use mssql_sim::engine::Fault;
use mssql_sim::{SimConfig, Simulator};

const PASSWORD: &str = "Bakfleet-Test-1";

async fn start_simulator() -> Simulator {
    let config = format!(
        "[[instance]]\nname = \"flaky\"\nlisten = \"127.0.0.1:0\"\n\n\
         [[instance.login]]\nname = \"bakfleet\"\npassword = \"{PASSWORD}\"\nsysadmin = true\n"
    );
    mssql_sim::start(SimConfig::from_toml_str(&config).unwrap())
        .await
        .unwrap()
}

fn settings(simulator: &Simulator, password: &str) -> ConnectSettings {
    let addr = simulator.addr("flaky").unwrap();
    ConnectSettings {
        instance: "flaky".to_string(),
        host: addr.ip().to_string(),
        port: addr.port(),
        user: "bakfleet".to_string(),
        password: password.to_string(),
        encryption: Encryption::NotSupported,
        ca_file: None,
        trust_server_certificate: false,
        host_name_in_certificate: None,
        connect_timeout: Duration::from_secs(5),
        command_timeout: Some(Duration::from_secs(5)),
    }
}

/// Three attempts with delays of at most a few milliseconds.
fn policy() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_retries_dropped_connections() {
    let simulator = start_simulator().await;
    simulator.set_fault("flaky", Fault::DropConnections { count: 2 });

    let (_connection, attempts) =
        retry::open_connection(&settings(&simulator, PASSWORD), &policy(), "Sales", None)
            .await
            .unwrap();

    assert_eq!(attempts, 3);
    simulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_gives_up_at_limit() {
    let simulator = start_simulator().await;
    simulator.set_fault("flaky", Fault::DropConnections { count: 3 });

    let result =
        retry::open_connection(&settings(&simulator, PASSWORD), &policy(), "Sales", None).await;

    let error = result
        .err()
        .expect("three dropped connections exhaust three attempts");
    assert!(matches!(error, MssqlError::Connect { .. }), "{error}");
    // The fault is used up, so the attempts took exactly the three drops.
    let (_connection, attempts) =
        retry::open_connection(&settings(&simulator, PASSWORD), &policy(), "Sales", None)
            .await
            .unwrap();
    assert_eq!(attempts, 1);
    simulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_login_is_not_retried() {
    let simulator = start_simulator().await;
    simulator.set_fault("flaky", Fault::DropConnections { count: 1 });
    let settings = settings(&simulator, "wrong");
    let policy = policy();
    let scope = RetryScope {
        instance: "flaky",
        database: "Sales",
        phase: "connect",
    };

    let mut retry = Retry::new(&policy, scope);
    let mut calls = 0;
    let result = loop {
        calls += 1;
        if let Some(result) = retry.next(Connection::open(&settings).await).await {
            break result;
        }
    };

    let error = result.err().expect("a wrong password must fail");
    assert!(error.to_string().contains("18456"), "{error}");
    assert_eq!(calls, 2, "one dropped connection, then one rejected login");
    simulator.shutdown().await;
}
