//! Peers for integration tests: a private `smbd` and `sshd` on loopback, each with its own
//! configuration and keys under a temp dir, stopped by PID when dropped.
//!
//! Use it from a test file with `mod support;`. A missing peer program fails the test with
//! the Debian package to install, because a skipped test would pass silently.

// Each test file uses a different part of the harness.
#![allow(dead_code)]

use std::fs;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Maximum wait for a started peer to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Maximum wait for a peer to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Returns the path of `binary`, or panics with the Debian package that provides it.
/// The search covers `PATH` and the sbin directories, where `smbd` and `sshd` live.
pub fn require_tool(binary: &str, apt_package: &str) -> PathBuf {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path_var).collect();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("{binary} not found: install it with `apt-get install {apt_package}`")
        })
}

/// Returns the simulator's binary, which `cargo test --workspace` builds beside bakfleet's.
/// Only the root package's tests may call it: the path comes from bakfleet's own binary.
pub fn simulator_binary(bakfleet: &Path) -> PathBuf {
    let path = bakfleet.with_file_name("mssql-sim");
    assert!(
        path.is_file(),
        "{} is missing: run the suite with `cargo test --workspace`, which builds it",
        path.display()
    );
    path
}

/// Starts `mssql-sim --config CONFIG` as a child process and returns it with the port of
/// its (single) instance, read from the `listening NAME ADDR` line it prints.
pub fn start_simulator_process(simulator: &Path, config: &Path) -> (Child, u16) {
    let mut child = Command::new(simulator)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mssql-sim");
    let stdout = child.stdout.take().expect("simulator stdout");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
        .expect("read the simulator's first line");
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("unexpected simulator output {line:?}"));
    (child, port)
}

/// One simulated instance for a simulator process: a `bakfleet` sysadmin login, a path
/// map from the instance's backup folder to a local folder, and its user databases.
pub struct SimulatedInstance<'a> {
    /// `windows` or `linux`.
    pub platform: &'a str,
    /// `enterprise`, `developer`, `express` ...
    pub edition: &'a str,
    /// Password of the `bakfleet` login.
    pub password: &'a str,
    /// The backup folder as the instance names it (UNC or host path).
    pub server_path: &'a str,
    /// The local folder it maps to.
    pub local_dir: &'a Path,
    /// `(name, size in MiB, recovery model)` of each user database.
    pub databases: &'a [(&'a str, u32, &'a str)],
    /// More `(server path, local folder)` maps, such as the store as a sandbox reads it.
    pub more_paths: &'a [(&'a str, &'a Path)],
}

/// Writes the simulator config for one instance named `sales` to `dir/sim.toml`, starts
/// the simulator process and returns it with the instance's port.
pub fn start_simulated_instance(dir: &Path, instance: &SimulatedInstance<'_>) -> (Child, u16) {
    let mut config = format!(
        "[[instance]]\nname = \"sales\"\nlisten = \"127.0.0.1:0\"\nplatform = {:?}\n\
         edition = {:?}\n\n[[instance.login]]\nname = \"bakfleet\"\npassword = {:?}\n\
         sysadmin = true\n\n[[instance.path_map]]\nserver = {:?}\nlocal = {:?}\n",
        instance.platform,
        instance.edition,
        instance.password,
        instance.server_path,
        instance.local_dir.display().to_string()
    );
    for (server, local) in instance.more_paths {
        config.push_str(&format!(
            "\n[[instance.path_map]]\nserver = {server:?}\nlocal = {:?}\n",
            local.display().to_string()
        ));
    }
    for (name, size_mb, recovery_model) in instance.databases {
        config.push_str(&format!(
            "\n[[instance.database]]\nname = {name:?}\nsize_mb = {size_mb}\n\
             recovery_model = {recovery_model:?}\n"
        ));
    }
    let path = dir.join("sim.toml");
    fs::write(&path, config).expect("write sim.toml");
    let simulator = simulator_binary(Path::new(env!("CARGO_BIN_EXE_bakfleet")));
    start_simulator_process(&simulator, &path)
}

/// Lists every regular file under `dir`, recursively, sorted; a missing folder lists none.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Returns a TCP port on 127.0.0.1 that was free a moment ago. Another process may take it
/// before the peer binds, which shows up as a start failure naming the port.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Writes `len` pseudo-random bytes (a fixed xorshift sequence) to `path`, creating its
/// parent directories, and returns them for comparison.
pub fn write_random_file(path: &Path, len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let content: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    fs::create_dir_all(path.parent().expect("file path has a parent")).expect("create dirs");
    fs::write(path, &content).expect("write random file");
    content
}

/// A running `smbd` serving one share, `backup`, on 127.0.0.1.
pub struct Smbd {
    /// TCP port smbd listens on.
    pub port: u16,
    /// Samba account name. Debian's `backup` system user is reused because smbpasswd only
    /// adds accounts for existing Unix users.
    pub user: String,
    /// Random password of `user`.
    pub password: String,
    /// Share name.
    pub share: String,
    process: PeerProcess,
}

impl Smbd {
    /// Starts smbd in the foreground over `share_dir`, with signing required, SMB 2.1 as
    /// the minimum protocol and NetBIOS off, and waits until its port accepts connections.
    pub fn start(share_dir: &Path) -> Smbd {
        Smbd::start_with_share_options(share_dir, "")
    }

    /// Starts smbd like [`Smbd::start`], with `share_options` (smb.conf lines) added to the
    /// share's section, such as `smb encrypt = required`.
    pub fn start_with_share_options(share_dir: &Path, share_options: &str) -> Smbd {
        let smbd = require_tool("smbd", "samba");
        let smbpasswd = require_tool("smbpasswd", "samba");
        // The SMB source runs smbclient; checking here names the package up front.
        require_tool("smbclient", "smbclient");
        let dir = tempfile::Builder::new()
            .prefix("bakfleet-smbd-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let user = "backup".to_string();
        let password = uuid::Uuid::new_v4().simple().to_string();
        let share = "backup".to_string();

        let conf = dir.path().join("smb.conf");
        let mut text = smb_conf(dir.path(), port, &share, share_dir);
        text.push_str(share_options);
        fs::write(&conf, text).expect("write smb.conf");
        for sub in ["lock", "state", "cache", "pid", "private", "ncalrpc"] {
            fs::create_dir(dir.path().join(sub)).expect("create smbd dir");
        }
        add_smb_user(&smbpasswd, &conf, &user, &password);

        let log = dir.path().join("smbd.log");
        let mut command = Command::new(smbd);
        command
            .args([
                "--foreground",
                "--no-process-group",
                "--debug-stdout",
                "-d",
                "1",
            ])
            .arg("-s")
            .arg(&conf);
        let process = PeerProcess::spawn("smbd", command, dir, log, port);
        Smbd {
            port,
            user,
            password,
            share,
            process,
        }
    }

    /// Stops smbd (SIGTERM, then SIGKILL) and waits for it. Later connections are refused.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Returns the PID of the main smbd process, for tests that pause it with SIGSTOP.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Kills smbd and every process it forked with SIGKILL, as a crash would, so open
    /// connections break at once.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts smbd again with the same configuration, port and account.
    pub fn restart(&mut self) {
        self.process.restart();
    }
}

/// Writes a private smb.conf: every state directory under `dir`, listening on loopback
/// only, so it neither reads nor disturbs a system Samba.
fn smb_conf(dir: &Path, port: u16, share: &str, share_dir: &Path) -> String {
    let dir = dir.display();
    format!(
        "[global]
    smb ports = {port}
    interfaces = lo
    bind interfaces only = yes
    disable netbios = yes
    server min protocol = SMB2_10
    server signing = mandatory
    lock directory = {dir}/lock
    state directory = {dir}/state
    cache directory = {dir}/cache
    pid directory = {dir}/pid
    private dir = {dir}/private
    ncalrpc dir = {dir}/ncalrpc
    passdb backend = tdbsam:{dir}/private/passdb.tdb
    log file = {dir}/smbd.%m.log
    load printers = no
    printcap name = /dev/null
    disable spoolss = yes

[{share}]
    path = {share_dir}
    read only = no
    # The simulator and the tests write staged files as root, often mode 0600, so the
    # `backup` account could neither read nor delete them. Forcing root for file access
    # (after `backup` has logged on) gives the read and delete access a real staging share
    # grants its backup account.
    force user = root
",
        share_dir = share_dir.display()
    )
}

fn add_smb_user(smbpasswd: &Path, conf: &Path, user: &str, password: &str) {
    use std::io::Write;

    let mut child = Command::new(smbpasswd)
        .arg("-c")
        .arg(conf)
        .args(["-s", "-a", user])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start smbpasswd");
    let mut stdin = child.stdin.take().expect("piped stdin");
    write!(stdin, "{password}\n{password}\n").expect("write password to smbpasswd");
    drop(stdin);
    let output = child.wait_with_output().expect("wait for smbpasswd");
    assert!(
        output.status.success(),
        "smbpasswd -a {user} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A running `sshd` on 127.0.0.1 that accepts `user` with the key at `key_path` and
/// serves SFTP with OpenSSH's `sftp-server`.
pub struct Sshd {
    /// TCP port sshd listens on.
    pub port: u16,
    /// Login name: root, because the tests run as root and Debian's system users have no
    /// login shell. Only key logins on loopback are possible.
    pub user: String,
    /// Client private key (ed25519, OpenSSH format, no passphrase).
    pub key_path: PathBuf,
    /// known_hosts file listing the server's key for `[127.0.0.1]:port`.
    pub known_hosts_path: PathBuf,
    process: PeerProcess,
}

impl Sshd {
    /// Starts `sshd -D -e` with its own host key, a client key pair and known_hosts file,
    /// and waits until its port accepts connections.
    pub fn start() -> Sshd {
        let sshd = require_tool("sshd", "openssh-server");
        require_tool("ssh-keygen", "openssh-client");
        let sftp_server = Path::new("/usr/lib/openssh/sftp-server");
        assert!(
            sftp_server.is_file(),
            "{} not found: install it with `apt-get install openssh-sftp-server`",
            sftp_server.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("bakfleet-sshd-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();

        let host_key = generate_key(dir.path(), "host_key");
        let key_path = generate_key(dir.path(), "client_key");
        let authorized_keys = dir.path().join("authorized_keys");
        fs::copy(key_path.with_extension("pub"), &authorized_keys).expect("authorized_keys");
        let known_hosts_path = dir.path().join("known_hosts");
        fs::write(&known_hosts_path, known_hosts_line(&host_key, port)).expect("known_hosts");

        // sshd checks that its privilege separation directory exists.
        fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        let conf = dir.path().join("sshd_config");
        fs::write(
            &conf,
            sshd_config(dir.path(), port, &host_key, &authorized_keys),
        )
        .expect("write sshd_config");

        let log = dir.path().join("sshd.log");
        let mut command = Command::new(sshd);
        command.args(["-D", "-e", "-f"]).arg(&conf);
        let process = PeerProcess::spawn("sshd", command, dir, log, port);
        Sshd {
            port,
            user: "root".to_string(),
            key_path,
            known_hosts_path,
            process,
        }
    }

    /// Lists the server's key for `port` too, for a client that reaches sshd through a
    /// relay listening there.
    pub fn trust_port(&self, port: u16) {
        use std::io::Write;

        let host_key = self.process.dir.path().join("host_key");
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&self.known_hosts_path)
            .expect("open known_hosts");
        file.write_all(known_hosts_line(&host_key, port).as_bytes())
            .expect("append to known_hosts");
    }

    /// Writes a known_hosts file that lists a different key for this server, as a host
    /// whose key changed would look, and returns its path.
    pub fn known_hosts_with_other_key(&self) -> PathBuf {
        let dir = self.process.dir.path();
        let other_key = generate_key(dir, "other_host_key");
        let path = dir.join("known_hosts_other");
        fs::write(&path, known_hosts_line(&other_key, self.port)).expect("known_hosts");
        path
    }

    /// Stops sshd (SIGTERM, then SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Kills sshd and its session processes with SIGKILL, as a crash would. The session
    /// processes lead sessions of their own, so they are found as descendants by PID.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts sshd again with the same configuration, port and keys.
    pub fn restart(&mut self) {
        self.process.restart();
    }
}

fn sshd_config(dir: &Path, port: u16, host_key: &Path, authorized_keys: &Path) -> String {
    format!(
        "Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {dir}/sshd.pid
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp /usr/lib/openssh/sftp-server
",
        dir = dir.display(),
        host_key = host_key.display(),
        authorized_keys = authorized_keys.display(),
    )
}

/// Creates an ed25519 key pair without passphrase at `dir/name` and `dir/name.pub`.
fn generate_key(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .stdin(Stdio::null())
        .status()
        .expect("run ssh-keygen");
    assert!(status.success(), "ssh-keygen for {} failed", path.display());
    path
}

/// Builds the known_hosts line for the public key of `key` on 127.0.0.1:`port`.
fn known_hosts_line(key: &Path, port: u16) -> String {
    let public = fs::read_to_string(key.with_extension("pub")).expect("read public key");
    let mut fields = public.split_whitespace();
    let key_type = fields.next().expect("key type");
    let key_base64 = fields.next().expect("key data");
    format!("[127.0.0.1]:{port} {key_type} {key_base64}\n")
}

/// A peer daemon running in the foreground as a child of the test, with its temp dir.
struct PeerProcess {
    name: &'static str,
    child: Option<Child>,
    dir: tempfile::TempDir,
    log: PathBuf,
    /// Program and arguments, kept to start the peer again after a kill.
    program: PathBuf,
    args: Vec<std::ffi::OsString>,
    port: u16,
}

impl PeerProcess {
    /// Starts `command` with its output in `log` and waits until `port` accepts.
    fn spawn(
        name: &'static str,
        command: Command,
        dir: tempfile::TempDir,
        log: PathBuf,
        port: u16,
    ) -> PeerProcess {
        let mut process = PeerProcess {
            name,
            child: None,
            dir,
            log,
            program: PathBuf::from(command.get_program()),
            args: command.get_args().map(ToOwned::to_owned).collect(),
            port,
        };
        process.launch();
        process
    }

    /// Starts the child with its output appended to the log, and waits for its port.
    fn launch(&mut self) {
        use std::os::unix::process::CommandExt;

        let log_file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open peer log");
        let child = Command::new(&self.program)
            .args(&self.args)
            // smbd signals its whole process group when it shuts down, so each peer gets
            // a group of its own, led by the child, instead of the test's group.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone log handle"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", self.name));
        self.child = Some(child);
        self.wait_for_port(self.port);
    }

    /// Sends SIGKILL to the child and to every descendant of it, then reaps the child.
    fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        // Descendants are collected before the child dies, because they are re-parented
        // once it has gone and could no longer be distinguished from other processes.
        let mut victims = descendants(pid);
        victims.push(pid);
        for victim in victims {
            // SAFETY: each PID is our child or a live descendant of it, read from /proc a
            // moment ago; the child is not yet reaped, so its descendants keep their PIDs
            // at least until they exit.
            unsafe { libc::kill(victim as libc::pid_t, libc::SIGKILL) };
        }
        let _ = child.wait();
    }

    /// Starts the peer again after [`PeerProcess::kill`] or [`PeerProcess::stop`].
    fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    fn wait_for_port(&mut self, port: u16) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return;
            }
            let child = self.child.as_mut().expect("running child");
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "{} exited with {status} before listening on port {port}; its log:\n{}",
                    self.name,
                    self.read_log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{} did not listen on port {port} within {START_TIMEOUT:?}; its log:\n{}",
            self.name,
            self.read_log()
        );
    }

    /// Sends SIGTERM to the child, which stops and reaps the processes it forked, then
    /// SIGKILL to its whole process group if it has not exited in time.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id() as libc::pid_t;
        // SAFETY: `pid` is our own child, not yet reaped, so it cannot name another process.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: the group is led by our own child, which is not yet reaped, so the ID
        // cannot name another process group.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = child.wait();
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn read_log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_else(|error| format!("(no log: {error})"))
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Lists the PIDs of every live descendant of `pid`, read from `/proc/*/stat`.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // The command name in brackets may hold spaces; the parent PID is the second
            // field after its closing bracket.
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|field| field.parse::<u32>().ok());
            if let Some(parent) = parent {
                parents.push((child, parent));
            }
        }
    }
    let mut found = Vec::new();
    let mut frontier = vec![pid];
    while let Some(current) = frontier.pop() {
        for (child, parent) in &parents {
            if *parent == current && !found.contains(child) {
                found.push(*child);
                frontier.push(*child);
            }
        }
    }
    found
}
