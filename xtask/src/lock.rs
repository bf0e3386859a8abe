//! One benchmark run per host at a time: two runs measuring concurrently
//! would each slow the other down and both results would be wrong.

use anyhow::{Context as _, Result};
use fs4::fs_std::FileExt;
use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
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

impl RunLock {
    /// Take the lock at `path`. `what` describes this run for the other side's message.
    pub fn acquire(path: &Path, wait: Wait, what: &str) -> Result<Self> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
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
                    eprintln!("waiting for another benchmark on this host to finish ({holder})...");
                    let waited = std::time::Instant::now();
                    // Polled, not blocking: a Ctrl-C (or, on a --host, the client going away) ends the wait.
                    while FileExt::try_lock_exclusive(&file).is_err() {
                        bench_harness::interrupt::check().context("stopped waiting for the benchmark lock")?;
                        std::thread::sleep(std::time::Duration::from_millis(200));
                    }
                    eprintln!("lock obtained after {:.0} s of waiting", waited.elapsed().as_secs_f64());
                }
            }
        }
        // Shared by every user who benchmarks on this host.
        use std::os::unix::fs::PermissionsExt as _;
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o666));
        file.set_len(0)?;
        file.rewind()?;
        let _ = write!(file, "pid {} {what}", std::process::id());
        Ok(RunLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
