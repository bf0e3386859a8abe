//! Remote benchmark hosts (`--host`): the sources and the harness go to
//! the host over the system OpenSSH client, build and run there, and the
//! results come back.
//!
//! Layout on the host, under the remote directory (`--remote-dir`, default
//! `~/.cache/bfperf` there): `bin/bfperf-<id>` (this very binary, uploaded
//! once per build of bfperf, as the harness; the directory must be the
//! login's own, see [`trust`]), and per client (a machine and
//! cache using the host) `clients/<hostname>-<hash>/`, a mirror of the local
//! per-host cache: a tree or build directory at `<cache>/X` locally is at
//! `<client dir>/X` there, so builds stay incremental from run to run and two
//! developers sharing a host never build into each other's trees. Trees
//! outside the cache (a `--sources` checkout) go to `<client dir>/ext/<key>`.

pub mod harness;
pub mod spec;
pub mod ssh;
mod sync;
pub mod trust;

pub use spec::HostSpec;

use crate::flags::{HostFlags, RemoteFlags};
use crate::host::Isolation;
use anyhow::{bail, Context as _, Result};
use harness::{Envelope, Event, Request};
use ssh::{quote, Connection};
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

/// Default remote directory, relative to the login's home there.
pub const DEFAULT_REMOTE_DIR: &str = ".cache/bfperf";

/// Harness uploads older than this are removed by the next upload (another
/// client may still use a recent one).
const HARNESS_MAX_AGE_DAYS: u32 = 7;

/// Check `--remote-dir`: the directory is created, and on a refused host
/// removed again, so it must name a directory of its own, never `~` or `/`.
pub fn check_remote_dir(dir: &str) -> Result<()> {
    use std::path::Component;
    let path = Path::new(dir);
    let normal = path.components().filter(|c| matches!(c, Component::Normal(_))).count();
    let only_plain = path.components().all(|c| matches!(c, Component::Normal(_) | Component::RootDir));
    if normal == 0 || !only_plain || dir.chars().any(char::is_control) {
        bail!("--remote-dir {dir:?}: give a directory of bfperf's own, e.g. .cache/bfperf or /var/tmp/bfperf (no `.`, `..`, `~`, not the home or /)");
    }
    if dir.starts_with('~') {
        bail!("--remote-dir {dir:?}: `~` is not expanded there; give a directory of bfperf's own relative to the home (.cache/bfperf) or absolute");
    }
    Ok(())
}

/// A connected, checked host.
#[derive(Debug)]
pub struct Remote {
    conn: Connection,
    /// Absolute remote directory.
    root: PathBuf,
    /// This client's directory under it.
    client: PathBuf,
    /// The uploaded harness.
    harness: PathBuf,
    /// The local per-host cache whose layout is mirrored under `root`.
    local_cache: PathBuf,
    /// The host's kernel release.
    kernel: String,
    // What every request's envelope tells the host: resolved once from the
    // host flags and the command, not copies of flags.
    /// `--cpu-pin`, `--no-preempt`, `--bind-node`: applied there while measuring.
    isolation: Isolation,
    /// Queue behind another run on the host (else `--no-wait`: fail at once).
    wait: bool,
    /// The command, shown to another run waiting for the host's lock.
    what: String,
}

/// A name for this machine and cache among the clients of a host.
fn client_key(local_cache: &Path) -> String {
    let host = nix::sys::utsname::uname().map(|u| u.nodename().to_string_lossy().into_owned()).unwrap_or_default();
    let host: String = host.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    let key = crate::workspace::path_key(local_cache);
    format!("{host}-{}", key.rsplit('-').next().unwrap_or_default())
}

impl Remote {
    /// Connect to `host` (`--host`, parsed) as `flags` say (key, ssh options,
    /// `--remote-dir`), check it can measure (and build, when the command
    /// `builds`), and upload the harness. `isolation` (`--cpu-pin` & co.) and
    /// `--no-wait` of `host_flags` apply there to each measurement; `what` is
    /// the command, shown to a run waiting for the host's lock.
    /// On any failure nothing bfperf created stays on the host.
    pub fn connect(
        host: &HostSpec,
        flags: &RemoteFlags,
        host_flags: &HostFlags,
        builds: bool,
        what: &str,
        local_cache: &Path,
    ) -> Result<Self> {
        let remote_dir = flags.remote_dir.as_str();
        check_remote_dir(remote_dir)?;
        let conn = Connection::open(host, flags)?;
        let exe = std::env::current_exe().context("cannot find the bfperf binary to upload")?;
        let meta = exe.metadata()?;
        let mtime = meta.modified()?.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let harness_name = format!("bfperf-{:x}-{:x}", meta.len(), mtime);
        // One round trip for the survey: every ssh session costs the login's shell start-up.
        // It also lists the remote directory's chain: nothing runs or is removed there before
        // that chain is found to be the login's own (trust.rs).
        let survey = conn.run(&trust::survey_script(remote_dir, &format!("bin/{harness_name}")))?;
        let Some(survey) = trust::Survey::parse(&survey) else {
            bail!("{host} answered the survey with {survey:?}: is the login shell a POSIX shell?");
        };
        let arch = survey.arch.as_str();
        if arch != std::env::consts::ARCH {
            bail!(
                "{host} is {arch} but this bfperf is built for {}: benchmark from a machine of the same architecture",
                std::env::consts::ARCH
            );
        }
        let home = survey.home.as_str();
        anyhow::ensure!(
            home.starts_with('/'),
            "{host} has no home directory ($HOME is {home:?}): pass --remote-dir /ABSOLUTE/PATH"
        );
        survey.check(remote_dir, &host.to_string())?;
        let existed = survey.exists();
        if !existed {
            // Made here, one component at a time, and judged again: see trust.rs.
            let made = conn.run(&trust::create_script(remote_dir, &survey))?;
            let made = trust::Survey::parse(&made)
                .with_context(|| format!("{host} answered the creation of --remote-dir with {made:?}"))?;
            made.check(remote_dir, &host.to_string())?;
            anyhow::ensure!(
                made.exists(),
                "--remote-dir {remote_dir} on {host}: cannot create it: give a directory this login may create"
            );
        }
        let root = Path::new(home).join(remote_dir);
        let mut remote = Remote {
            conn,
            harness: root.join("bin").join(&harness_name),
            client: root.join("clients").join(client_key(local_cache)),
            root,
            local_cache: local_cache.to_owned(),
            kernel: String::new(),
            isolation: host_flags.isolation(),
            wait: host_flags.wait() == crate::lock::Wait::Yes,
            what: what.to_owned(),
        };
        let uploaded = !survey.installed;
        let ready = if uploaded { remote.upload_harness(&exe) } else { Ok(()) };
        match ready.and_then(|()| remote.probe(builds)) {
            Ok(()) => Ok(remote),
            Err(e) => {
                // Leave the host as it was: drop the directory if it is ours, else our upload.
                let undo = match (existed, uploaded) {
                    (false, _) => Some(format!("rm -rf {}", quote(&remote.root.display().to_string()))),
                    (true, true) => Some(format!(
                        "rm -f {}; rmdir {} 2>/dev/null; true",
                        quote(&remote.harness.display().to_string()),
                        quote(&remote.root.join("bin").display().to_string())
                    )),
                    (true, false) => None,
                };
                if let Some(undo) = undo {
                    let _ = remote.conn.run(&undo);
                }
                Err(e)
            }
        }
    }

    /// Upload this very binary as the harness (gzipped: it carries line tables).
    fn upload_harness(&self, exe: &Path) -> Result<()> {
        let bin = quote(&self.root.join("bin").display().to_string());
        let target = quote(&self.harness.display().to_string());
        let spin = crate::progress::spinner(format!("uploading the harness to {}", self.conn.host()));
        // Other clients may run other builds of bfperf: only old uploads go.
        let script = format!(
            "mkdir -p {bin} && find {bin} -name 'bfperf-*' -mtime +{HARNESS_MAX_AGE_DAYS} -delete; gzip -dc > {target}.part && chmod 755 {target}.part && mv {target}.part {target}"
        );
        let sent = self.conn.run_with_input(&script, |w| sync::send_gzipped(exe, w));
        spin.finish_and_clear();
        sent.with_context(|| format!("cannot upload the harness to {}", self.conn.host()))
    }

    /// Ask the harness whether the host can build and measure.
    fn probe(&mut self, builds: bool) -> Result<()> {
        let probe: harness::Probe = self
            .exchange(Request::Probe, |_| {})
            .and_then(|v| Ok(serde_json::from_value(v)?))
            .with_context(|| format!("{} cannot run benchmarks", self.conn.host()))?;
        self.kernel = probe.kernel;
        if builds && !probe.missing_tools.is_empty() {
            bail!(
                "{} lacks build tools: {} (on Debian: apt-get install cmake make gcc bison flex pkgconf libbpf-dev)",
                self.conn.host(),
                probe.missing_tools.join(", ")
            );
        }
        Ok(())
    }

    /// The host.
    pub fn host(&self) -> &HostSpec {
        self.conn.host()
    }

    /// The host's kernel release.
    pub fn kernel(&self) -> &str {
        &self.kernel
    }

    /// The remote directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the local `path` lives on the host.
    pub fn path_of(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(&self.local_cache) {
            Ok(rel) => self.client.join(rel),
            Err(_) => self.client.join("ext").join(crate::workspace::path_key(path)),
        }
    }

    /// Upload the tree at `local` to its place on the host (see [`Remote::path_of`]).
    pub fn sync_tree(&self, local: &Path) -> Result<PathBuf> {
        let remote = self.path_of(local);
        let (r, next) = (quote(&remote.display().to_string()), quote(&format!("{}.next", remote.display())));
        // Extract beside, then swap: a cut upload never leaves a half tree in place.
        let script = format!("rm -rf {next} && mkdir -p {next} && tar -xzf - -C {next} && rm -rf {r} && mv {next} {r}");
        self.conn
            .run_with_input(&script, |w| sync::send_tree(local, w))
            .with_context(|| format!("cannot upload {} to {}", local.display(), self.host()))?;
        Ok(remote)
    }

    /// Send `request` to the harness on the host, forwarding its events to
    /// `on_event`, and return its answer. Ctrl-C here stops the host's side.
    pub fn request(&self, request: Request, on_event: impl FnMut(&Event)) -> Result<serde_json::Value> {
        self.exchange(request, on_event).map_err(|e| e.context(format!("on {}", self.host())))
    }

    /// [`Remote::request`] without naming the host in errors.
    fn exchange(&self, request: Request, mut on_event: impl FnMut(&Event)) -> Result<serde_json::Value> {
        // Interrupted during an upload: do not start a build or a measurement there.
        bench_harness::interrupt::check()?;
        let envelope = Envelope {
            protocol: harness::PROTOCOL,
            request,
            isolation: self.isolation.clone(),
            wait: self.wait,
            what: self.what.clone(),
            root: self.root.clone(),
        };
        let script = format!("{} harness", quote(&self.harness.display().to_string()));
        let mut child = self
            .conn
            .command(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run ssh")?;
        // The host's messages (a lock wait, a crash) are shown as they come.
        let stderr = child.stderr.take().expect("piped");
        let host = self.host().to_string();
        let last_error = std::thread::spawn(move || {
            let mut last = String::new();
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{host}: {}", crate::text::line(&line));
                if !line.trim().is_empty() {
                    last = line;
                }
            }
            last
        });
        let mut stdin = child.stdin.take().expect("piped");
        let line = serde_json::to_string(&envelope)? + "\n";
        // A failed write means ssh or the harness died: its reason comes on stderr, below.
        let sent = stdin.write_all(line.as_bytes()).and_then(|()| stdin.flush());
        let mut stdin = sent.ok().map(|()| stdin);
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut answer: Option<Result<serde_json::Value>> = None;
        loop {
            if bench_harness::interrupt::requested() && stdin.is_some() {
                // The host's side sees its stdin end and stops as after a Ctrl-C.
                stdin = None;
            }
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => match serde_json::from_str::<Event>(&line) {
                    Ok(Event::Done(v)) => answer = Some(Ok(v)),
                    Ok(Event::Failed { message, interrupted }) => {
                        answer = Some(if interrupted {
                            Err(anyhow::Error::new(bench_harness::error::HarnessError::Interrupted))
                        } else {
                            Err(anyhow::anyhow!("{message}"))
                        })
                    }
                    Ok(Event::Note(n)) => eprintln!("{}: {}", self.host(), crate::text::line(&n)),
                    Ok(e) => on_event(&e),
                    Err(_) => eprintln!("{}: {}", self.host(), crate::text::line(&line)),
                },
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        drop(stdin);
        let status = child.wait()?;
        let last = last_error.join().unwrap_or_default();
        match answer {
            Some(a) => a,
            None => {
                if bench_harness::interrupt::requested() {
                    return Err(bench_harness::error::HarnessError::Interrupted.into());
                }
                bail!("the harness on {} ended without an answer ({status}): {last}", self.host())
            }
        }
    }
}
