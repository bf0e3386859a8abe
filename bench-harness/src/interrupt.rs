//! Ctrl-C / SIGTERM handling.
//!
//! The handler only raises a flag: long loops poll it between samples and
//! return [`HarnessError::Interrupted`], so every guard (pinned chains, bpffs
//! mounts, worktrees) is dropped and cleaned up on the normal unwinding path.
//! Child processes (bfcli, make) get the terminal's SIGINT themselves.

use crate::error::{HarnessError, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// Install the handler once per process. Later calls do nothing.
pub fn install() {
    INSTALL.call_once(|| {
        // A host program may have installed its own handler; then it is
        // responsible for calling [`request`].
        let _ = ctrlc::set_handler(|| {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                // Second Ctrl-C: the user insists; cleanup already had its chance.
                eprintln!("\ninterrupted twice, exiting without cleanup");
                std::process::exit(130);
            }
            eprintln!("\ninterrupted: cleaning up (Ctrl-C again to force)");
        });
    });
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
