//! Peak memory of `bakfleet run` on a 256 MiB backup: the fetch streams, so memory stays
//! flat whatever the file size. Both bakfleet and the simulator run as child processes, as
//! they would in production.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use support::{files_under, simulator_binary, start_simulator_process, Sshd};

/// The ceiling for bakfleet's peak resident set on a 256 MiB backup.
const PEAK_RSS_LIMIT_KIB: i64 = 64 * 1024;

/// Waits for a child and returns its exit code and peak resident set in KiB, from
/// `wait4`'s resource usage (`ru_maxrss` is the VmHWM of the process on Linux).
fn wait_with_peak_rss(child: Child) -> (i32, i64) {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is plain data that wait4 fills in; the pid is our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4 failed");
    std::mem::forget(child);
    (libc::WEXITSTATUS(status), usage.ru_maxrss)
}

// Compression is off so that the whole 256 MiB travels through the fetch.
#[test]
fn run_256_mib_backup_peak_rss_under_64_mib() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let staging = dir.path().join("staging");
    std::fs::create_dir_all(&staging).expect("staging dir");
    let password = format!("M-{}", uuid::Uuid::new_v4().simple());

    let sim_config = dir.path().join("sim.toml");
    std::fs::write(
        &sim_config,
        format!(
            "[[instance]]\nname = \"big\"\nlisten = \"127.0.0.1:0\"\nplatform = \"linux\"\n\
             edition = \"developer\"\n\n[[instance.login]]\nname = \"bakfleet\"\n\
             password = {password:?}\nsysadmin = true\n\n[[instance.path_map]]\n\
             server = \"/var/opt/mssql/backup\"\nlocal = {:?}\n\n[[instance.database]]\n\
             name = \"Big\"\nsize_mb = 256\nrecovery_model = \"FULL\"\n",
            staging.display().to_string()
        ),
    )
    .expect("write sim.toml");
    let simulator_path = simulator_binary(Path::new(env!("CARGO_BIN_EXE_bakfleet")));
    let (mut simulator, port) = start_simulator_process(&simulator_path, &sim_config);

    let secrets = dir.path().join("secrets.toml");
    std::fs::write(&secrets, format!("sql = {password:?}\n")).expect("write secrets");
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(
        &fleet,
        format!(
            "[service]\nstore_dir = \"store\"\ncatalog = \"catalog.db\"\n\
             secrets_file = \"secrets.toml\"\n\n\
             [defaults]\ncompression = false\n\n[[instance]]\nname = \"big\"\nhost = \"127.0.0.1\"\n\
             port = {port}\nauth = {{ kind = \"sql\", user = \"bakfleet\", password_secret = \"sql\" }}\n\
             tls = {{ encrypt = \"not_supported\" }}\n\
             staging = {{ sftp = {{ host = \"127.0.0.1\", port = {}, user = {:?}, key_file = {:?}, \
             known_hosts = {:?}, path = {:?}, server_path = \"/var/opt/mssql/backup\" }} }}\n",
            sshd.port,
            sshd.user,
            sshd.key_path.display().to_string(),
            sshd.known_hosts_path.display().to_string(),
            staging.display().to_string(),
        ),
    )
    .expect("write fleet.toml");

    let bakfleet = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .args(["run", "big", "Big", "--type", "full", "--fleet"])
        .arg(&fleet)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start bakfleet");
    let (code, peak_kib) = wait_with_peak_rss(bakfleet);

    // SAFETY: signalling our own child by its PID.
    unsafe { libc::kill(simulator.id() as libc::pid_t, libc::SIGTERM) };
    simulator.wait().expect("simulator exit");

    println!(
        "bakfleet run: peak RSS {} KiB on a 256 MiB backup",
        peak_kib
    );
    assert_eq!(code, 0, "bakfleet run succeeded");
    let stored = files_under(&dir.path().join("store"));
    assert_eq!(stored.len(), 1, "one backup in the store: {stored:?}");
    let size = std::fs::metadata(&stored[0]).expect("stored file").len();
    assert!(
        size >= 256 * 1024 * 1024,
        "the stored backup holds the 256 MiB: {size}"
    );
    assert!(
        peak_kib < PEAK_RSS_LIMIT_KIB,
        "peak RSS {peak_kib} KiB is over {PEAK_RSS_LIMIT_KIB} KiB"
    );
}
