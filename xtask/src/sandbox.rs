//! The sandbox of commands that run model-written code (optimize's validation
//! and the builds of attempt trees): a scrubbed environment, no network but
//! its own loopback, and a file system that is read-only except for the
//! directories the command works in.
//!
//! The confinement is done by this same binary, re-executed as the hidden
//! `sandbox-exec` subcommand (`/proc/self/exe`, so it also works when the
//! binary was replaced on disk and on a `--host`, where the harness is bfperf).
//! It starts single-threaded, so it may allocate, read `/proc/self/mountinfo`
//! and report failures in words, which a `pre_exec` hook in the
//! multi-threaded bfperf could not. In order, it
//!
//! 1. unshares the mount, network, PID and IPC namespaces and brings `lo` up;
//! 2. clones the writable directories (`open_tree`), makes every mount
//!    read-only in one call (`mount_setattr(AT_RECURSIVE)`), then covers
//!    `/tmp`, `/run`, `/dev/shm` with fresh tmpfs and `/sys/fs/bpf` with a
//!    fresh bpffs, and moves the clones back to their paths (writable again,
//!    even when they are under the fresh `/tmp`);
//! 3. forks the command as PID 1 of the new PID namespace, which mounts a
//!    fresh `/proc` (no other process, bfperf's environment included, is
//!    visible) and dies with its parent, taking every process it started.
//!
//! Setup failures travel on a private pipe (the helper's standard input, which
//! the command never gets), so a command cannot fake one by printing.
//! Not covered (doc/optimize.md): the command is still root with every
//! capability, so code written to escape can undo its own mounts; reads are
//! not restricted; `/sys/fs/cgroup` stays writable for bpfilter's cgroup tests.

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};
use std::ffi::{CString, OsStr, OsString};
use std::io::{Read as _, Write as _};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The exit code of `sandbox-exec` when the sandbox could not be set up.
const SETUP_FAILED: i32 = 125;

/// How commands running model-written code are run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Confine them (namespaces, read-only file system). Off only with
    /// `--no-sandbox`; the environment is scrubbed either way.
    pub confine: bool,
    /// More environment variable names to remove (`--secret-env`).
    pub secret_names: Vec<String>,
    /// The bfperf binary re-executed as the sandbox's helper [default: this
    /// process's own]; for programs embedding this library (the tests).
    #[serde(skip)]
    pub helper: Option<PathBuf>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { confine: true, secret_names: vec![], helper: None }
    }
}

/// Whether the environment variable `name` must not reach model-written code:
/// API keys, tokens, secrets, passwords, the model providers' settings (base
/// URLs included), the ssh agent, and the names in `extra`.
pub fn is_secret(name: &OsStr, extra: &[String]) -> bool {
    let Some(name) = name.to_str() else { return false };
    if extra.iter().any(|e| e == name) {
        return true;
    }
    let up = name.to_ascii_uppercase();
    const SUFFIXES: &[&str] =
        &["API_KEY", "_TOKEN", "_SECRET", "_PASSWORD", "_PASSWD", "_CREDENTIALS", "_BASE_URL", "_API_BASE"];
    const PREFIXES: &[&str] = &["ANTHROPIC_", "OPENAI_", "CLAUDE_", "AZURE_OPENAI", "AWS_", "GOOGLE_APPLICATION"];
    SUFFIXES.iter().any(|s| up.ends_with(s))
        || PREFIXES.iter().any(|p| up.starts_with(p))
        || up.contains("SECRET")
        || up == "SSH_AUTH_SOCK"
        || up == "GIT_ASKPASS"
        || up == "SSH_ASKPASS"
}

impl Policy {
    /// Run `inner` (program, arguments, directory and environment changes are
    /// taken from it) under this policy, where only `writable` (existing
    /// directories) may be written, and `visible` stays visible read-only even
    /// under the private `/tmp` (a worktree's repository); collects its output
    /// like [`Command::output`]. A sandbox that cannot be set up is an error,
    /// never a silent unconfined run.
    pub fn output(&self, inner: &Command, writable: &[&Path], visible: &[&Path]) -> Result<Output> {
        let shown = inner.get_program().to_string_lossy().into_owned();
        let mut cmd = if self.confine {
            let mut cmd = Command::new(self.helper.as_deref().unwrap_or(Path::new("/proc/self/exe")));
            cmd.arg("sandbox-exec");
            for (flag, paths) in [("--writable", writable), ("--read-only", visible)] {
                for p in paths {
                    let p = std::fs::canonicalize(p).with_context(|| format!("cannot resolve {}", p.display()))?;
                    cmd.arg(flag).arg(p);
                }
            }
            cmd.arg("--").arg(inner.get_program()).args(inner.get_args());
            cmd
        } else {
            let mut cmd = Command::new(inner.get_program());
            cmd.args(inner.get_args());
            cmd
        };
        if let Some(dir) = inner.get_current_dir() {
            cmd.current_dir(dir);
        }
        cmd.env_clear().envs(self.environment(inner));
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        if !self.confine {
            cmd.stdin(Stdio::null());
            return cmd.output().with_context(|| format!("cannot run {shown}"));
        }
        // The helper's stdin is the write end of the setup-status pipe.
        let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot create a pipe")?;
        let mut status = std::fs::File::from(reader);
        cmd.stdin(writer);
        let child = cmd.spawn().with_context(|| format!("cannot run {shown} in the sandbox"));
        drop(cmd); // our copy of the write end: the pipe ends when the helper is done with it
        let child = child?;
        let mut message = String::new();
        let _ = status.read_to_string(&mut message);
        let out = child.wait_with_output().with_context(|| format!("cannot run {shown} in the sandbox"))?;
        if !message.is_empty() {
            bail!("cannot set up the sandbox: {}", message.trim_end());
        }
        Ok(out)
    }

    /// The command's environment: bfperf's with `inner`'s changes, minus
    /// secrets; in the sandbox `TMPDIR` is its private `/tmp` and ccache is
    /// off (its cache is read-only there, and must not be fed by model code).
    fn environment(&self, inner: &Command) -> Vec<(OsString, OsString)> {
        let mut env: std::collections::BTreeMap<OsString, OsString> = std::env::vars_os().collect();
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => env.insert(k.to_owned(), v.to_owned()),
                None => env.remove(k),
            };
        }
        env.retain(|k, _| !is_secret(k, &self.secret_names));
        if self.confine {
            env.insert("TMPDIR".into(), "/tmp".into());
            env.insert("CCACHE_DISABLE".into(), "1".into());
        }
        env.into_iter().collect()
    }
}

/// The repository directory (`.git`) a linked worktree's `.git` file points
/// to (`gitdir: <repo>/.git/worktrees/<name>`, whose `commondir` is `<repo>/.git`).
/// Only made visible read-only, so a planted path widens nothing.
pub fn git_common_dir(worktree: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(worktree.join(".git")).ok()?;
    let gitdir = worktree.join(text.strip_prefix("gitdir:")?.trim());
    let common = std::fs::read_to_string(gitdir.join("commondir")).ok()?;
    std::fs::canonicalize(gitdir.join(common.trim())).ok().filter(|p| p.is_dir())
}

/// Arguments of the hidden `sandbox-exec` subcommand.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// A directory that stays writable (repeatable).
    #[arg(long, value_name = "DIR")]
    writable: Vec<PathBuf>,
    /// A directory that stays visible, read-only, even under a private mount (repeatable).
    #[arg(long, value_name = "DIR")]
    read_only: Vec<PathBuf>,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<OsString>,
}

/// `bfperf sandbox-exec`: set up the sandbox and run the command in it;
/// returns the exit code (the command's, or 128 + its signal). Must run
/// before bfperf starts any thread (unsharing the mount namespace needs a
/// single-threaded process).
pub fn exec_main(args: ExecArgs) -> i32 {
    // SAFETY: fd 0 is the status pipe bfperf gave us; nothing else owns it.
    let status = unsafe { OwnedFd::from_raw_fd(0) };
    let fail = |status: OwnedFd, message: String| -> i32 {
        let mut f = std::fs::File::from(status);
        let _ = f.write_all(message.as_bytes());
        SETUP_FAILED
    };
    let cwd = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => return fail(status, format!("cannot read the working directory: {e}")),
    };
    if let Err(e) = confine(&args.writable, &args.read_only, &cwd) {
        return fail(status, format!("{e:#}"));
    }
    // Fork PID 1 of the new PID namespace.
    // SAFETY: this process is single-threaded (see above).
    match unsafe { nix::unistd::fork() } {
        Err(e) => fail(status, format!("cannot fork: {e}")),
        Ok(nix::unistd::ForkResult::Child) => {
            let e = init(&args.command);
            fail(status, format!("{e:#}"))
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            drop(status); // the child keeps its copy until it execs
            loop {
                match nix::sys::wait::waitpid(child, None) {
                    Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => return code,
                    Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
                    Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
                    Err(_) => return 1,
                }
            }
        }
    }
}

/// PID 1 of the sandbox: dies with the helper, mounts its `/proc`, replaces
/// the status pipe by `/dev/null` and becomes the command. Returns only on failure.
fn init(command: &[OsString]) -> anyhow::Error {
    use nix::mount::{mount, MsFlags};
    // SAFETY: plain prctl; the helper waits for us, so it cannot have died yet
    // unless killed, in which case we are killed right away.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if let Err(e) = mount(Some("proc"), "/proc", Some("proc"), flags, None::<&str>) {
        return anyhow::anyhow!("cannot mount the sandbox's /proc: {e}");
    }
    match std::fs::File::open("/dev/null") {
        // Keeping the status pipe's write end in `status` until exec would
        // not do: exec must close it, so fd 0 is replaced first.
        Ok(null) => {
            if let Err(e) = nix::unistd::dup2(null.as_raw_fd(), 0) {
                return anyhow::anyhow!("cannot redirect stdin: {e}");
            }
        }
        Err(e) => return anyhow::anyhow!("cannot open /dev/null: {e}"),
    }
    let e = Command::new(&command[0]).args(&command[1..]).exec();
    // The status pipe is gone: report like a shell would.
    eprintln!("bfperf sandbox: cannot run {}: {e}", command[0].to_string_lossy());
    std::process::exit(127);
}

/// Steps 1 and 2 of the module's description, in this process.
fn confine(writable: &[PathBuf], read_only: &[PathBuf], cwd: &Path) -> Result<()> {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};
    let flags =
        CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWIPC;
    unshare(flags).map_err(|e| {
        anyhow::anyhow!(
            "the kernel refused new namespaces (unshare: {e}); bfperf must run as root on a host (or a container \
             allowed to create namespaces, e.g. docker --privileged) that permits them, or pass --no-sandbox to run \
             validation unconfined (dangerous: model-written code then runs as root with network and a writable \
             file system; see doc/optimize.md)"
        )
    })?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>).map_err(|e| {
        // EINVAL here: `/` is not a mount point (a plain chroot). The sandbox
        // covers and re-mounts the tree from its root, so it needs one.
        let hint = if e == nix::errno::Errno::EINVAL {
            "; / is not a mount point (a plain chroot?): make it one before chroot              (`mount --bind DIR DIR`), run in a container, or pass --no-sandbox (dangerous, see doc/optimize.md)"
        } else {
            ""
        };
        anyhow::anyhow!("cannot make the sandbox's mounts private: {e}{hint}")
    })?;
    loopback_up().context("cannot bring up the sandbox's loopback")?;

    // Detached copies of what stays visible (writable or not), taken before
    // anything is covered; parents first, so nested ones end up on top.
    let mut keep: Vec<(PathBuf, bool)> = writable.iter().map(|p| (p.clone(), true)).collect();
    keep.extend(read_only.iter().map(|p| (p.clone(), false)));
    keep.push(("/sys/fs/cgroup".into(), true)); // bpfilter's cgroup hook tests create cgroups
    keep.sort();
    keep.dedup();
    let mut clones: Vec<(PathBuf, bool, OwnedFd)> = vec![];
    for (path, rw) in keep {
        if clones.iter().any(|(p, w, _)| path.starts_with(p) && *w == rw) || !path.is_dir() {
            continue; // inside an earlier one of its kind, or no cgroup file system
        }
        let fd = open_tree(&path).with_context(|| format!("cannot clone the mount of {}", path.display()))?;
        clones.push((path, rw, fd));
    }
    set_read_only(Path::new("/")).context("cannot make the file system read-only")?;
    for (dir, fstype, data) in [
        ("/tmp", "tmpfs", "mode=1777"),
        ("/run", "tmpfs", "mode=755"),
        ("/dev/shm", "tmpfs", "mode=1777"),
        ("/sys/fs/bpf", "bpf", "mode=700"),
    ] {
        if !Path::new(dir).is_dir() {
            continue;
        }
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        mount(Some(fstype), dir, Some(fstype), flags, Some(data))
            .with_context(|| format!("cannot mount a private {fstype} on {dir}"))?;
    }
    for (path, rw, fd) in clones {
        // Under a fresh tmpfs the mount point must be made.
        if !path.is_dir() {
            std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
        }
        move_mount(&fd, &path).with_context(|| format!("cannot mount {}", path.display()))?;
        if !rw {
            set_read_only(&path).with_context(|| format!("cannot make {} read-only", path.display()))?;
        }
    }
    // The working directory was looked up before the mounts: look it up again.
    std::env::set_current_dir(cwd).with_context(|| format!("cannot enter {}", cwd.display()))?;
    Ok(())
}

fn cstr(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).with_context(|| format!("{} contains a NUL byte", path.display()))
}

fn check(r: libc::c_long, what: &str) -> Result<libc::c_long> {
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENOSYS) {
            bail!("{what}: the kernel lacks it (the sandbox needs Linux 5.12 or later)");
        }
        bail!("{what}: {e}");
    }
    Ok(r)
}

/// `open_tree(OPEN_TREE_CLONE | AT_RECURSIVE)`: a detached copy of the mounts at and under `path`.
fn open_tree(path: &Path) -> Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let p = cstr(path)?;
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_RECURSIVE as libc::c_uint;
    // SAFETY: a valid C string; the returned fd is owned below.
    let fd = check(unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, p.as_ptr(), flags) }, "open_tree")?;
    // SAFETY: a new fd, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Attach the detached tree `fd` at `path`.
fn move_mount(fd: &OwnedFd, path: &Path) -> Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
    let p = cstr(path)?;
    let empty = c"";
    // SAFETY: valid fds and C strings.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            p.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    check(r, "move_mount").map(drop)
}

/// Make every mount at and under `path` read-only (`mount_setattr`).
fn set_read_only(path: &Path) -> Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_RDONLY: u64 = 1;
    let attr = MountAttr { attr_set: MOUNT_ATTR_RDONLY, attr_clr: 0, propagation: 0, userns_fd: 0 };
    let p = cstr(path)?;
    // SAFETY: a valid C string and a mount_attr of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            p.as_ptr(),
            libc::AT_RECURSIVE as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(r, "mount_setattr").map(drop)
}

/// `ip link set lo up` in the new network namespace.
fn loopback_up() -> Result<()> {
    // SAFETY: socket(2); the fd is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    check(fd as libc::c_long, "socket")?;
    // SAFETY: a new fd, owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: a valid socket and ifreq; the flags member is the one these requests use.
    unsafe {
        check(libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) as libc::c_long, "SIOCGIFFLAGS")?;
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        check(libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) as libc::c_long, "SIOCSIFFLAGS")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_recognised() {
        let extra = vec!["MY_CREDS".to_string()];
        for name in [
            "ANTHROPIC_API_KEY",
            "OPENAI_API_KEY",
            "ANTHROPIC_BASE_URL",
            "OPENAI_BASE_URL",
            "FOO_TOKEN",
            "X_SECRET",
            "AWS_SECRET_ACCESS_KEY",
            "gh_token",
            "SSH_AUTH_SOCK",
            "MY_CREDS",
        ] {
            assert!(is_secret(OsStr::new(name), &extra), "{name}");
        }
        for name in ["PATH", "HOME", "CC", "CFLAGS", "MAKEFLAGS", "LANG", "TERM", "MY_CREDS_PATH"] {
            assert!(!is_secret(OsStr::new(name), &extra), "{name}");
        }
    }

    #[test]
    fn the_environment_is_scrubbed_even_unconfined() {
        let policy = Policy { confine: false, secret_names: vec!["PLAIN".into()], helper: None };
        let mut inner = Command::new("env");
        inner.env("X_SECRET", "s").env("PLAIN", "p").env("KEPT", "k");
        let out = policy.output(&inner, &[], &[]).unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("KEPT=k"), "{text}");
        assert!(!text.contains("X_SECRET") && !text.contains("PLAIN="), "{text}");
    }
}
