//! A real, throwaway OpenSSH server on 127.0.0.1 for the `--host` tests: its own host key, client
//! keys and `known_hosts`, all in a temporary directory, and nothing left running when it is
//! dropped. Needs root (sessions log in as root) and `/usr/sbin/sshd`, `ssh`, `ssh-keygen`
//! (Debian: `openssh-server openssh-client`). Sessions run with sshd's default PATH and without
//! root's ~/.bashrc.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The OpenSSH server binary.
const SSHD: &str = "/usr/sbin/sshd";

/// An environment variable set to the fixture's sshd_config path in sshd's environment and,
/// through `SetEnv`, in every session's: how [`processes_using`] finds the commands sessions
/// run, even those that left sshd's process tree.
pub const MARKER_VAR: &str = "BFPERF_TEST_SSHD_CONFIG";

/// How long sshd may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How a [`TestSshd`] runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct SshdOptions {
    /// Start sshd with CAP_BPF, CAP_SYS_ADMIN, CAP_PERFMON and CAP_NET_ADMIN removed from its
    /// capability bounding set: every session, though root, then gets EPERM from bpf().
    pub without_bpf: bool,
}

/// An sshd on 127.0.0.1 accepting root logins with [`TestSshd::key`] only; stopped, with
/// every process it spawned, on drop.
pub struct TestSshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl TestSshd {
    /// Generate the keys, write the configuration and start sshd; returns once it accepts
    /// connections. `None` (after a [`crate::skip`], a failure under `BFPERF_NO_SKIP=1`) only
    /// when the OpenSSH binaries are missing; any other problem (not root included: sessions
    /// log in as root) panics, with sshd's log.
    pub fn start(opts: SshdOptions) -> Option<TestSshd> {
        let missing: Vec<&str> =
            [SSHD, "ssh", "ssh-keygen"].into_iter().filter(|b| find_program(b).is_none()).collect();
        if !missing.is_empty() {
            crate::skip(&format!(
                "no OpenSSH to run a test sshd ({} not found: apt-get install openssh-server openssh-client)",
                missing.join(", ")
            ));
            return None;
        }
        assert!(nix::unistd::geteuid().is_root(), "the test sshd needs root: its sessions log in as root");
        let dir = tempfile::Builder::new().prefix("bfperf-sshd-").tempdir().unwrap();
        let path = dir.path();
        for name in ["host_key", "id_ok", "id_other"] {
            keygen(&path.join(name));
        }
        let mut authorized =
            fs::OpenOptions::new().create_new(true).write(true).mode(0o600).open(path.join("authorized_keys")).unwrap();
        authorized.write_all(&fs::read(path.join("id_ok.pub")).unwrap()).unwrap();
        drop(authorized);
        // sshd refuses to start without its privilege separation directory, which only the
        // (here unused) system service creates.
        match fs::DirBuilder::new().mode(0o755).create("/run/sshd") {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => panic!("creating /run/sshd: {e}"),
            _ => {}
        }
        // Another process may take the free port between our probe and sshd's bind: try again.
        let mut log = String::new();
        for _ in 0..5 {
            let port = free_port();
            write_config(path, port);
            let mut child = spawn(path, opts);
            match wait_listening(&mut child, path, port) {
                Ok(()) => return Some(TestSshd { child, port, dir }),
                Err(Exit::BindRace(l)) => log = l,
                Err(Exit::Failed(l)) => {
                    drop(TestSshd { child, port, dir });
                    panic!("the test sshd did not start; its log:\n{l}");
                }
            }
        }
        panic!("the test sshd could not bind a free port in 5 tries; its last log:\n{log}");
    }

    /// `root@127.0.0.1:PORT`, for `--host`.
    pub fn host(&self) -> String {
        format!("root@127.0.0.1:{}", self.port)
    }

    /// The port sshd listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The private key sshd accepts (`id_ok`).
    pub fn key(&self) -> PathBuf {
        self.dir.path().join("id_ok")
    }

    /// A valid private key sshd does not accept (`id_other`).
    pub fn other_key(&self) -> PathBuf {
        self.dir.path().join("id_other")
    }

    /// A `known_hosts` file with this sshd's host key for `[127.0.0.1]:PORT`, for strict host
    /// key checking.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// `UserKnownHostsFile=<known_hosts>`, for `ssh -o`.
    pub fn ssh_option(&self) -> String {
        format!("UserKnownHostsFile={}", self.known_hosts().display())
    }

    /// The sshd_config this sshd runs with; [`processes_using`] finds its processes by it.
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("sshd_config")
    }

    /// sshd's log so far (LogLevel VERBOSE), for assertion messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Run `command` on this sshd as root with [`TestSshd::key`] and strict host key checking,
    /// to inspect the remote side.
    pub fn ssh(&self, command: &str) -> Output {
        Command::new("ssh")
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-i")
            .arg(self.key())
            .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
            .arg("-o")
            .arg(self.ssh_option())
            .arg("root@127.0.0.1")
            .arg(command)
            .stdin(Stdio::null())
            .output()
            .expect("ssh runs")
    }
}

impl Drop for TestSshd {
    /// Stop sshd and everything it spawned: a SIGTERM stops only the listener (each session is
    /// its own process session and outlives it, as do the commands it runs), so freeze the whole
    /// tree first, kill it, then end the listener.
    fn drop(&mut self) {
        let listener = self.child.id();
        if self.child.try_wait().ok().flatten().is_some() {
            kill_leftovers(&self.config());
            return;
        }
        let _ = kill(pid(listener), Signal::SIGSTOP);
        // Stopped processes cannot fork: stop whatever is found until nothing new turns up.
        let mut frozen = BTreeSet::new();
        for _ in 0..100 {
            let found: Vec<u32> = processes_using(&self.config())
                .into_iter()
                .chain(descendants(listener))
                .filter(|p| *p != listener && !frozen.contains(p))
                .collect();
            if found.is_empty() {
                break;
            }
            for p in found {
                let _ = kill(pid(p), Signal::SIGSTOP);
                frozen.insert(p);
            }
        }
        for p in &frozen {
            let _ = kill(pid(*p), Signal::SIGKILL);
        }
        let _ = kill(pid(listener), Signal::SIGTERM);
        let _ = kill(pid(listener), Signal::SIGCONT);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        kill_leftovers(&self.config());
    }
}

/// Why sshd did not come up.
enum Exit {
    /// It lost the free port to another process.
    BindRace(String),
    /// Anything else; sshd's log.
    Failed(String),
}

/// A free TCP port on 127.0.0.1 with nothing listening on it (for "host unreachable" tests).
pub fn unused_port() -> u16 {
    free_port()
}

/// Live processes (not zombies) of the fixture run with sshd_config `config`: those whose command
/// line names it (the listener), hold its log open (every sshd process: its stderr), or carry
/// [`MARKER_VAR`] (every process of its sessions that kept its environment).
pub fn processes_using(config: &Path) -> Vec<u32> {
    let needle = config.as_os_str().as_encoded_bytes();
    let marker = [MARKER_VAR.as_bytes(), b"=", needle].concat();
    let log = config.with_file_name("sshd.log");
    let me = std::process::id();
    proc_table()
        .into_keys()
        .filter(|p| *p != me)
        .filter(|p| {
            let read = |file: &str| fs::read(format!("/proc/{p}/{file}")).unwrap_or_default();
            read("cmdline").windows(needle.len()).any(|w| w == needle)
                || read("environ").split(|b| *b == 0).any(|var| var == marker.as_slice())
                || fs::read_dir(format!("/proc/{p}/fd"))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .any(|fd| fs::read_link(fd.path()).is_ok_and(|target| target == log))
        })
        .collect()
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port()
}

fn pid(p: u32) -> Pid {
    Pid::from_raw(p as i32)
}

/// `program` itself when it is a path, else the first match on PATH.
fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program)).filter(|p| p.is_file());
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(program)).find(|p| p.is_file())
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "bfperf-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("ssh-keygen runs");
    assert!(out.status.success(), "ssh-keygen {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
}

/// Every live process (not a zombie) and its parent.
fn proc_table() -> BTreeMap<u32, u32> {
    let Ok(entries) = fs::read_dir("/proc") else { return BTreeMap::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| {
            let stat = fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            // "pid (comm) state ppid ...": comm may contain spaces and parentheses.
            let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
            let state = fields.next()?;
            let ppid = fields.next()?.parse().ok()?;
            (state != "Z" && state != "X").then_some((p, ppid))
        })
        .collect()
}

/// The live descendants of `root`.
fn descendants(root: u32) -> Vec<u32> {
    let table = proc_table();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(table.iter().filter(|(_, pp)| **pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    found.remove(0);
    found
}

/// SIGKILL what is left of the fixture with sshd_config `config`, and say so if anything resists.
fn kill_leftovers(config: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_using(config);
        if left.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            eprintln!("WARNING: processes of the test sshd {} survive SIGKILL: {left:?}", config.display());
            return;
        }
        for p in left {
            let _ = kill(pid(p), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Write `known_hosts` and `sshd_config` for `port` in the fixture directory `dir`.
fn write_config(dir: &Path, port: u16) {
    let host_key = fs::read_to_string(dir.join("host_key.pub")).unwrap();
    let host_key: Vec<&str> = host_key.split_whitespace().take(2).collect();
    fs::write(dir.join("known_hosts"), format!("[127.0.0.1]:{port} {}\n", host_key.join(" "))).unwrap();
    let quoted = |name: &str| format!("\"{}\"", dir.join(name).display());
    // Sessions do not read root's dotfiles: bash sources ~/.bashrc for a command run by sshd only
    // at shell level 1, and SHLVL=1 makes it 2. What a .bashrc does (pyenv's rehash lock, one
    // here, can stall every session for 60 s) is no part of the tests.
    let config = format!(
        "# bfperf test sshd: loopback only, root with one key, nothing from /etc/ssh.\n\
         ListenAddress 127.0.0.1\n\
         Port {port}\n\
         HostKey {host_key}\n\
         AuthorizedKeysFile {authorized}\n\
         PidFile {pid}\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         StrictModes no\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         X11Forwarding no\n\
         Subsystem sftp internal-sftp\n\
         LogLevel VERBOSE\n\
         MaxSessions 50\n\
         MaxStartups 50\n\
         PermitUserRC no\n\
         SetEnv \"{MARKER_VAR}={config}\" SHLVL=1\n",
        host_key = quoted("host_key"),
        authorized = quoted("authorized_keys"),
        pid = quoted("sshd.pid"),
        config = dir.join("sshd_config").display(),
    );
    fs::write(dir.join("sshd_config"), config).unwrap();
}

/// Start sshd on the configuration in `dir`, its output to `dir/sshd.log`.
fn spawn(dir: &Path, opts: SshdOptions) -> Child {
    let log = fs::File::create(dir.join("sshd.log")).unwrap();
    let mut cmd = if opts.without_bpf {
        // util-linux setpriv: `-cap` drops one capability from the bounding set.
        let mut cmd = Command::new("setpriv");
        cmd.args(["--bounding-set", "-bpf,-sys_admin,-perfmon,-net_admin", "--", SSHD]);
        cmd
    } else {
        Command::new(SSHD)
    };
    let config = dir.join("sshd_config");
    cmd.args(["-D", "-e", "-f"])
        .arg(&config)
        .env(MARKER_VAR, &config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("sshd starts")
}

/// Wait until sshd says it listens on `port` and the port accepts a connection.
fn wait_listening(child: &mut Child, dir: &Path, port: u16) -> Result<(), Exit> {
    let deadline = Instant::now() + START_TIMEOUT;
    let read_log = || fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();
    let listening = format!("Server listening on 127.0.0.1 port {port}.");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let log = format!("{}(sshd exited: {status})", read_log());
            let race = log.contains("Bind to port") || log.contains("Cannot bind any address");
            return Err(if race { Exit::BindRace(log) } else { Exit::Failed(log) });
        }
        if read_log().contains(&listening) && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Exit::Failed(format!("{}(not listening after {START_TIMEOUT:?})", read_log())));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
