//! Records what the simulator sends during the session the `tds_response` target plays,
//! and writes it as that target's seed: `cargo run --example record_tds_seed -- DIR`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bakfleet::mssql::{ConnectSettings, Connection, Encryption};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SHARE: &str = r"\\files\backups";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let out_dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "corpus/tds_response".into()),
    );
    let staging = tempfile::tempdir()?;
    let config = format!(
        "[[instance]]\nname = \"sales\"\nlisten = \"127.0.0.1:0\"\n\n\
         [[instance.login]]\nname = \"bakfleet\"\npassword = \"fuzz-password\"\nsysadmin = true\n\n\
         [[instance.path_map]]\nserver = {SHARE:?}\nlocal = {:?}\n\n\
         [[instance.database]]\nname = \"Sales\"\nsize_mb = 1\nrecovery_model = \"FULL\"\n\n\
         [[instance.database]]\nname = \"Tiny\"\nsize_mb = 0\nrecovery_model = \"SIMPLE\"\n",
        staging.path().display().to_string()
    );
    let simulator = mssql_sim::start(mssql_sim::SimConfig::from_toml_str(&config)?).await?;
    let server = simulator
        .addr("sales")
        .expect("the simulator listens for sales");

    let mut direct = Connection::open(&settings(server.port())).await?;
    direct
        .execute(
            "backup",
            &format!("BACKUP DATABASE [Sales] TO DISK = N'{SHARE}\\Sales.bak'"),
        )
        .await?;

    let recorded = Arc::new(Mutex::new(Vec::new()));
    let proxy = TcpListener::bind("127.0.0.1:0").await?;
    let proxy_port = proxy.local_addr()?.port();
    let relay = tokio::spawn(relay_one(proxy, server, Arc::clone(&recorded)));

    let mut connection = Connection::open(&settings(proxy_port)).await?;
    connection.server_facts().await?;
    connection.databases().await?;
    let database = connection.database("Sales").await?.expect("Sales exists");
    connection.recovery_facts(database.database_id).await?;
    let set = connection
        .backup_set("Sales", &format!("{SHARE}\\Sales.bak"))
        .await?
        .expect("the backup is in msdb");
    connection.backup_files(set.backup_set_id).await?;
    drop(connection);
    relay.await??;

    std::fs::create_dir_all(&out_dir)?;
    write_backup_seeds(&mut direct, staging.path(), &out_dir).await?;
    let bytes = recorded.lock().expect("recording lock").clone();
    std::fs::write(out_dir.join("simulator-session"), &bytes)?;
    println!("wrote {} bytes to {}", bytes.len(), out_dir.display());
    Ok(())
}

/// Has the simulator write a plain and a compressed backup of an empty database and copies
/// them beside the TDS seed, as seeds for the `backup_file` target.
async fn write_backup_seeds(
    direct: &mut Connection,
    staging: &std::path::Path,
    tds_dir: &std::path::Path,
) -> anyhow::Result<()> {
    let backup_dir = tds_dir.with_file_name("backup_file");
    std::fs::create_dir_all(&backup_dir)?;
    for (name, options) in [
        ("plain", "CHECKSUM"),
        ("compressed", "COMPRESSION, CHECKSUM"),
    ] {
        let file = format!("Tiny-{name}.bak");
        direct
            .execute(
                "backup",
                &format!("BACKUP DATABASE [Tiny] TO DISK = N'{SHARE}\\{file}' WITH {options}"),
            )
            .await?;
        std::fs::copy(
            staging.join(&file),
            backup_dir.join(format!("simulator-{name}.bak")),
        )?;
    }
    Ok(())
}

fn settings(port: u16) -> ConnectSettings {
    ConnectSettings {
        instance: "sales".to_string(),
        host: "127.0.0.1".to_string(),
        port,
        user: "bakfleet".to_string(),
        password: "fuzz-password".to_string(),
        encryption: Encryption::NotSupported,
        ca_file: None,
        trust_server_certificate: false,
        connect_timeout: Duration::from_secs(5),
        command_timeout: Some(Duration::from_secs(5)),
    }
}

/// Relays one client connection to `server`, keeping a copy of the server's bytes.
async fn relay_one(
    proxy: TcpListener,
    server: std::net::SocketAddr,
    recorded: Arc<Mutex<Vec<u8>>>,
) -> anyhow::Result<()> {
    let (mut client, _) = proxy.accept().await?;
    let mut upstream = TcpStream::connect(server).await?;
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = upstream.split();
    let to_server = tokio::io::copy(&mut client_read, &mut server_write);
    let to_client = async {
        let mut buffer = [0u8; 8192];
        loop {
            let read = server_read.read(&mut buffer).await?;
            if read == 0 {
                return Ok::<_, std::io::Error>(());
            }
            recorded
                .lock()
                .expect("recording lock")
                .extend_from_slice(&buffer[..read]);
            client_write.write_all(&buffer[..read]).await?;
        }
    };
    tokio::select! {
        result = to_server => { result?; }
        result = to_client => { result?; }
    }
    Ok(())
}
