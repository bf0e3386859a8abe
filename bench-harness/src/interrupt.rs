//! Ctrl-C / SIGTERM handling.
//!
//! The handler only raises a flag: long loops poll it between samples and
//! return [`HarnessError::Interrupted`], so every guard (pinned chains, bpffs
//! mounts, worktrees) is dropped and cleaned up on the normal unwinding path.
//! Child processes (bfcli, make) get the terminal's SIGINT themselves.
//!
//! A second Ctrl-C exits at once (130) without unwinding; what must not outlive the process even
//! then (an agent's process group, a temporary file) registers with [`on_forced_exit`].

use crate::error::{HarnessError, Result};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, Once};

/// The exit code of an interrupted run (128 + SIGINT), as shells report it.
pub const EXIT_CODE: i32 = 130;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

type Cleanup = Box<dyn FnOnce() + Send>;
/// What to do before a forced exit, by registration id.
static ON_FORCED_EXIT: Mutex<Vec<(u64, Cleanup)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Install the handler once per process. Later calls do nothing.
pub fn install() {
    INSTALL.call_once(|| {
        // A host program may have installed its own handler; then it is
        // responsible for calling [`request`].
        let _ = ctrlc::set_handler(|| {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                // Second Ctrl-C: the user insists; cleanup already had its chance.
                eprintln!("\ninterrupted twice, exiting without cleanup");
                run_forced_exit_cleanups();
                std::process::exit(EXIT_CODE);
            }
            eprintln!("\ninterrupted: cleaning up (Ctrl-C again to force)");
        });
    });
}

/// Registered by [`on_forced_exit`]; dropping it unregisters the cleanup without running it.
#[derive(Debug)]
#[must_use = "the cleanup is unregistered when the guard is dropped"]
pub struct ForcedExitGuard(u64);

impl Drop for ForcedExitGuard {
    fn drop(&mut self) {
        let mut list = ON_FORCED_EXIT.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|(id, _)| *id != self.0);
    }
}

/// Run `cleanup` if a second Ctrl-C forces the process out while the returned guard lives.
/// For what ordinary drops cannot cover then: killing a child's process group, removing a file.
pub fn on_forced_exit(cleanup: impl FnOnce() + Send + 'static) -> ForcedExitGuard {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    ON_FORCED_EXIT.lock().unwrap_or_else(|e| e.into_inner()).push((id, Box::new(cleanup)));
    ForcedExitGuard(id)
}

/// Run (once) every cleanup registered with [`on_forced_exit`]; called before a forced exit.
pub fn run_forced_exit_cleanups() {
    let list = std::mem::take(&mut *ON_FORCED_EXIT.lock().unwrap_or_else(|e| e.into_inner()));
    for (_, cleanup) in list {
        cleanup();
    }
}

/// Mark the process as interrupted (for embedders with their own handler).
pub fn request() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Whether an interrupt was requested.
pub fn requested() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// `Err(Interrupted)` once an interrupt was requested.
pub fn check() -> Result<()> {
    if requested() {
        Err(HarnessError::Interrupted)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn forced_exit_cleanups_run_once_unless_dropped() {
        let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (a, b) = (ran.clone(), ran.clone());
        let kept = on_forced_exit(move || {
            a.fetch_add(1, Ordering::SeqCst);
        });
        drop(on_forced_exit(move || {
            b.fetch_add(10, Ordering::SeqCst);
        }));
        run_forced_exit_cleanups();
        run_forced_exit_cleanups();
        assert_eq!(ran.load(Ordering::SeqCst), 1, "the dropped one never runs, the kept one once");
        drop(kept);
    }
}
