//! RESTORE VERIFYONLY in the simulator on real backup files written by SQL Server 2008 R2
//! to 2016, read in place from `BAKFLEET_FIXTURES_BAK`.

mod support;

use support::fixtures_dir;

use mssql_sim::SimConfig;
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::TokioAsyncWriteCompatExt;

const USER: &str = "bakfleet";
const PASSWORD: &str = "Bakfleet-Fixtures-1";

/// The folder the simulated Windows instance sees the fixtures under.
const SERVER_DIR: &str = r"C:\fixtures";

/// Every real SQL Server backup among the fixtures that is a whole media set.
/// Northwind.bak is one family of two and is checked on its own below.
const REAL_BACKUPS: &[&str] = &[
    "RestoreTimeClean2.bak",
    "RestoreTimeClean2_1.trn",
    "RestoreTimeClean_1.trn",
    "SQL2008_dbOrphanUsers_DIFF_20170518_041819.bak",
    "SQL2008_dbOrphanUsers_FULL_20170518_041740.bak",
    "SQL2008_dbOrphanUsers_LOG_20170518_041831.trn",
    "SQL2008_dbOrphanUsers_LOG_20170518_041837.trn",
    "StopAt_21.trn",
    "StopAt_23.trn",
    "TutorialDB.bak",
    "pubs.bak",
];

/// Runs one VERIFYONLY and returns the server error number, if any.
async fn verify(addr: std::net::SocketAddr, statement: &str) -> Option<u32> {
    let mut config = Config::new();
    config.host(addr.ip());
    config.port(addr.port());
    config.authentication(AuthMethod::sql_server(USER, PASSWORD));
    config.encryption(EncryptionLevel::NotSupported);
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let mut client = Client::connect(config, tcp.compat_write())
        .await
        .expect("log in");
    let result = match client.simple_query(statement).await {
        Ok(stream) => stream.into_results().await.map(|_| ()),
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => None,
        Err(tiberius::error::Error::Server(token)) => Some(token.code()),
        Err(other) => panic!("{statement}: session failed: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifyonly_accepts_real_backups() {
    let Some(dir) = fixtures_dir() else {
        return;
    };
    let config = SimConfig::from_toml_str(&format!(
        "[[instance]]\nname = \"fixtures\"\nlisten = \"127.0.0.1:0\"\n\n[[instance.login]]\n\
         name = \"{USER}\"\npassword = \"{PASSWORD}\"\nsysadmin = true\n\n[[instance.path_map]]\n\
         server = '{SERVER_DIR}'\nlocal = {:?}\n",
        dir.display().to_string()
    ))
    .expect("simulator config");
    let simulator = mssql_sim::start(config).await.expect("start simulator");
    let addr = simulator.addr("fixtures").expect("address");

    for name in REAL_BACKUPS {
        let statement = format!("RESTORE VERIFYONLY FROM DISK = N'{SERVER_DIR}\\{name}';");
        assert_eq!(
            verify(addr, &statement).await,
            None,
            "{name} is a valid backup"
        );
    }

    let statement =
        format!("RESTORE VERIFYONLY FROM DISK = N'{SERVER_DIR}\\not-a-sql-server-backup.bak';");
    assert_eq!(
        verify(addr, &statement).await,
        Some(3242),
        "a PostgreSQL dump is not a Microsoft Tape Format backup"
    );

    let statement = format!(
        "RESTORE VERIFYONLY FROM DISK = N'{SERVER_DIR}\\SQL2008_dbOrphanUsers_FULL_20170518_041740.bak' \
         WITH CHECKSUM;"
    );
    assert_eq!(
        verify(addr, &statement).await,
        None,
        "WITH CHECKSUM is accepted on a backup taken with checksums"
    );
    let statement = format!("RESTORE VERIFYONLY FROM DISK = N'{SERVER_DIR}\\Northwind.bak';");
    assert_eq!(
        verify(addr, &statement).await,
        Some(3132),
        "one family of a two-family media set is not enough"
    );
    let statement =
        format!("RESTORE VERIFYONLY FROM DISK = N'{SERVER_DIR}\\pubs.bak' WITH CHECKSUM;");
    assert_eq!(
        verify(addr, &statement).await,
        Some(3187),
        "WITH CHECKSUM is rejected on a backup without checksums"
    );
    simulator.shutdown().await;
}
