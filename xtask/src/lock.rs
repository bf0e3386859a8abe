//! One benchmark run per host at a time: two runs measuring concurrently
//! would each slow the other down and both results would be wrong.
//!
//! The lock file lives in a world-writable directory (/run/lock) and is
//! opened by root, so it is treated as hostile: opened without following
//! links or blocking, and used only when it is a regular file with one link
//! owned by root (or by this user). An existing file is never chmod-ed: only
//! a file this process has just created (`O_EXCL`) is made shared (0666).

use anyhow::{bail, Context as _, Result};
use fs4::fs_std::FileExt;
use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// The host-wide lock file: /run/lock when writable (shared by every cache
/// directory), else `fallback` (the cache).
pub fn default_path(fallback: &Path) -> PathBuf {
    let run = Path::new("/run/lock");
    if run.is_dir() && nix::unistd::access(run, nix::unistd::AccessFlags::W_OK).is_ok() {
        run.join("bfperf.lock")
    } else {
        fallback.join("bfperf.lock")
    }
}

/// Held for the duration of a run; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Whether to wait for another run or fail at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Wait, saying who holds the lock.
    Yes,
    /// Fail with a clear message.
    No,
}

/// Open the lock file at `path` without ever following a link, blocking on
/// a FIFO or changing a file someone else made; create it (mode 0666, shared
/// by every user who benchmarks on this host) when it is not there.
fn open_lock_file(path: &Path) -> Result<File> {
    use crate::planted::{self, Refused};
    let remove = |what: &str| {
        anyhow::anyhow!(
            "the lock file {} {what}: someone may have planted it; remove it (sudo rm {}) when no benchmark runs",
            path.display(),
            path.display()
        )
    };
    let refused = |why: Refused, doing: &str| match why {
        Refused::Link => remove("is a symbolic link"),
        Refused::NotRegular => remove("is not a regular file"),
        Refused::Io(e) => anyhow::Error::new(e).context(format!("cannot {doing} the lock file {}", path.display())),
    };
    // Another run may create or remove it between our two opens: try again a few times.
    for _ in 0..10 {
        let existing = planted::open(path, std::fs::OpenOptions::new().read(true).write(true));
        let (file, meta, created) = match existing {
            Ok((f, meta)) => (f, meta, false),
            Err(Refused::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut new = std::fs::OpenOptions::new();
                new.read(true).write(true).create_new(true).mode(0o600);
                match planted::open(path, &mut new) {
                    Ok((f, meta)) => (f, meta, true),
                    Err(Refused::Io(e)) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(why) => return Err(refused(why, "create")),
                }
            }
            Err(why) => return Err(refused(why, "open")),
        };
        let me = nix::unistd::geteuid().as_raw();
        if meta.uid() != 0 && meta.uid() != me {
            let whose = if me == 0 { "root".to_owned() } else { format!("root or uid {me}") };
            return Err(remove(&format!("is owned by uid {}, not {whose}", meta.uid())));
        }
        if meta.nlink() != 1 {
            return Err(remove(&format!("has {} hard links", meta.nlink())));
        }
        if created {
            // Past the umask, on the file we just created and nobody else could have opened yet as ours.
            file.set_permissions(std::fs::Permissions::from_mode(0o666))
                .with_context(|| format!("cannot share the lock file {}", path.display()))?;
        }
        return Ok(file);
    }
    bail!("the lock file {} keeps appearing and disappearing: is another program removing it?", path.display())
}

impl RunLock {
    /// Take the lock at `path`. `what` describes this run for the other side's message.
    pub fn acquire(path: &Path, wait: Wait, what: &str) -> Result<Self> {
        let mut file = open_lock_file(path)?;
        if FileExt::try_lock_exclusive(&file).is_err() {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let holder = if holder.is_empty() { "another run" } else { holder };
            match wait {
                Wait::No => anyhow::bail!(
                    "another benchmark is running on this host ({holder}, lock {}): wait for it, or drop --no-wait to queue",
                    path.display()
                ),
                Wait::Yes => {
                    crate::progress::info(format!("waiting for another benchmark on this host to finish ({holder})..."));
                    let waited = std::time::Instant::now();
                    // Polled, not blocking: a Ctrl-C (or, on a --host, the client going away) ends the wait.
                    while FileExt::try_lock_exclusive(&file).is_err() {
                        bench_harness::interrupt::check().context("stopped waiting for the benchmark lock")?;
                        std::thread::sleep(std::time::Duration::from_millis(200));
                    }
                    crate::progress::info(format!("lock obtained after {:.0} s of waiting", waited.elapsed().as_secs_f64()));
                }
            }
        }
        file.set_len(0)?;
        file.rewind()?;
        let _ = write!(file, "pid {} {what}", std::process::id());
        Ok(RunLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// `acquire` on another thread, with a deadline: a lock file that makes the open block
    /// (a FIFO opened without O_NONBLOCK) must fail the test, not hang it.
    fn acquire_within_deadline(path: &Path) -> Result<RunLock> {
        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.to_owned();
        std::thread::spawn(move || {
            let _ = tx.send(RunLock::acquire(&p, Wait::No, "test"));
        });
        rx.recv_timeout(std::time::Duration::from_secs(10)).expect("acquire returned within 10 s")
    }

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_second_run_fails_clearly_or_gets_it_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bfperf.lock");
        let first = RunLock::acquire(&path, Wait::No, "bench-compare A B").unwrap();
        let err = RunLock::acquire(&path, Wait::No, "bench").unwrap_err().to_string();
        assert!(err.contains("another benchmark is running"), "{err}");
        assert!(err.contains(&format!("pid {} bench-compare A B", std::process::id())), "{err}");
        drop(first);
        RunLock::acquire(&path, Wait::No, "bench").unwrap();
    }

    #[test]
    fn a_waiting_run_proceeds_when_the_first_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bfperf.lock");
        let first = RunLock::acquire(&path, Wait::No, "first").unwrap();
        let p = path.clone();
        let waiter = std::thread::spawn(move || RunLock::acquire(&p, Wait::Yes, "second").map(drop));
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!waiter.is_finished(), "the second run waits");
        drop(first);
        waiter.join().unwrap().unwrap();
    }

    #[test]
    fn a_new_lock_file_is_shared_and_an_existing_ones_mode_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bfperf.lock");
        drop(RunLock::acquire(&path, Wait::No, "first").unwrap());
        assert_eq!(mode(&path), 0o666, "created shared, whatever the umask");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        drop(RunLock::acquire(&path, Wait::No, "second").unwrap());
        assert_eq!(mode(&path), 0o600, "an existing file is never chmod-ed");
        assert!(std::fs::read_to_string(&path).unwrap().ends_with(" second"));
    }

    #[test]
    fn a_symbolic_link_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, "root-only data").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        let path = dir.path().join("bfperf.lock");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let err = acquire_within_deadline(&path).unwrap_err().to_string();
        assert!(err.contains(&format!("the lock file {} is a symbolic link", path.display())), "{err}");
        assert!(err.contains(&format!("remove it (sudo rm {})", path.display())), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "root-only data");
        assert_eq!(mode(&target), 0o600);
        // A dangling link is not created through either.
        let dangling = dir.path().join("dangling.lock");
        std::os::unix::fs::symlink(dir.path().join("created-through-link"), &dangling).unwrap();
        assert!(acquire_within_deadline(&dangling).unwrap_err().to_string().contains("is a symbolic link"));
        assert!(!dir.path().join("created-through-link").exists());
    }

    #[test]
    fn a_file_of_another_user_a_hard_link_and_a_fifo_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bfperf.lock");
        std::fs::write(&path, "planted").unwrap();
        let me = nix::unistd::geteuid().as_raw();
        let other = if me == 65534 { 65533 } else { 65534 };
        // Only root may give a file away; elsewhere the owner check is shown by the other cases.
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(&path, Some(other), None).unwrap();
            let err = acquire_within_deadline(&path).unwrap_err().to_string();
            assert!(err.contains(&format!("is owned by uid {other}, not root")), "{err}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), "planted");
            std::os::unix::fs::chown(&path, Some(me), None).unwrap();
        }
        let precious = dir.path().join("precious");
        std::fs::hard_link(&path, &precious).unwrap();
        let err = acquire_within_deadline(&path).unwrap_err().to_string();
        assert!(err.contains("has 2 hard links"), "{err}");
        assert_eq!(std::fs::read_to_string(&precious).unwrap(), "planted");

        let fifo = dir.path().join("fifo.lock");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
        let err = acquire_within_deadline(&fifo).unwrap_err().to_string();
        assert!(err.contains(&format!("the lock file {} is not a regular file", fifo.display())), "{err}");
    }

    /// Environment of [`planted_link_child`]: the root-only file the link points to.
    const CHILD_ENV: &str = "BFPERF_LOCK_TEST_TARGET";
    /// Environment of [`planted_link_child`]: the mount namespace it must not be in.
    const CHILD_NS_ENV: &str = "BFPERF_LOCK_TEST_PARENT_NS";

    /// The attack on the host lock, for real: in a private mount namespace with its own
    /// /run/lock (a fresh tmpfs, as after a boot), an unprivileged user (nobody) plants
    /// `/run/lock/bfperf.lock -> <a root-only file>`; the run, as root, refuses, and the file
    /// keeps its content and mode.
    #[test]
    fn a_link_planted_in_run_lock_by_another_user_is_refused() {
        if !nix::unistd::geteuid().is_root() || !Path::new("/run/lock").is_dir() {
            eprintln!("SKIPPED: needs root and /run/lock (a private mount namespace over it)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("shadow");
        std::fs::write(&target, "root:secret\n").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        let out = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--"])
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "lock::tests::planted_link_child",
                "--include-ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &target)
            .env(CHILD_NS_ENV, std::fs::read_link("/proc/self/ns/mnt").unwrap())
            .output()
            .expect("unshare (util-linux) runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
        let refused = stdout.lines().find_map(|l| l.split_once("REFUSED: ").map(|(_, r)| r));
        let refused = refused.unwrap_or_else(|| panic!("the run did not refuse the planted link:\n{stdout}\n{stderr}"));
        assert!(refused.contains("the lock file /run/lock/bfperf.lock is a symbolic link"), "{refused}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "root:secret\n", "content unchanged");
        assert_eq!(mode(&target), 0o600, "mode unchanged");
    }

    /// Run by [`a_link_planted_in_run_lock_by_another_user_is_refused`] only, inside its private
    /// mount namespace (ignored otherwise: it mounts over /run/lock).
    #[test]
    #[ignore = "the child half of a_link_planted_in_run_lock_by_another_user_is_refused"]
    fn planted_link_child() {
        let Some(target) = std::env::var_os(CHILD_ENV) else { return };
        let parent_ns = std::env::var_os(CHILD_NS_ENV).expect("the parent's mount namespace");
        let ns = std::fs::read_link("/proc/self/ns/mnt").unwrap();
        assert_ne!(ns.as_os_str(), parent_ns, "must run in a private mount namespace: it mounts over /run/lock");
        use nix::mount::{mount, MsFlags};
        mount(Some("tmpfs"), "/run/lock", Some("tmpfs"), MsFlags::empty(), Some("mode=1777")).unwrap();
        let planted = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--", "ln", "-s"])
            .arg(&target)
            .arg("/run/lock/bfperf.lock")
            .status()
            .unwrap();
        assert!(planted.success(), "nobody plants the link");
        let link = std::fs::symlink_metadata("/run/lock/bfperf.lock").unwrap();
        assert!(link.file_type().is_symlink() && link.uid() == 65534);
        let path = default_path(Path::new("/nonexistent"));
        assert_eq!(path, Path::new("/run/lock/bfperf.lock"));
        match RunLock::acquire(&path, Wait::No, "bench") {
            Ok(_) => println!("\nACQUIRED"),
            Err(e) => println!("\nREFUSED: {e:#}"),
        }
    }
}
