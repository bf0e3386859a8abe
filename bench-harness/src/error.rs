//! Errors of the harness. Each message is one line that says what went wrong
//! and, where the user can act, what to do.

use std::path::PathBuf;

/// What can go wrong while loading and measuring programs.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// bpf() refused with EPERM: not root and no CAP_BPF.
    #[error("the kernel refused bpf() ({0}): run as root (sudo -E cargo xtask ...) or grant CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN")]
    BpfNotPermitted(String),
    /// bpf() is not available at all (kernel without CONFIG_BPF_SYSCALL, seccomp).
    #[error("bpf() is unavailable on this host ({0}): a kernel with CONFIG_BPF_SYSCALL is required")]
    BpfUnavailable(String),
    /// A bpffs could not be mounted.
    #[error(
        "cannot mount a bpffs at {path}: {reason}; run as root on a kernel with bpffs support (CONFIG_BPF_SYSCALL)"
    )]
    BpffsMount {
        /// Where the mount was attempted.
        path: PathBuf,
        /// The system error.
        reason: String,
    },
    /// The bfcli binary does not exist.
    #[error("bfcli not found at {0}: build bpfilter first (make -C build bfcli) or pass the right path")]
    BfcliMissing(PathBuf),
    /// The bfcli path is not an executable file.
    #[error("{0} is not an executable file: pass the path of a built bfcli")]
    BfcliNotExecutable(PathBuf),
    /// The bfcli cannot be driven as bfperf drives it (`bfcli -b BPFFS chain
    /// set`): a tree from before bpfilter's daemon removal. Found once per
    /// build by [`crate::program::Bfcli::probe`].
    #[error(
        "{0}: this bfcli predates bpfilter's daemon removal and cannot load chains as bfperf drives it (bfcli -b BPFFS chain set); bfperf supports bpfilter from commit {first} on",
        first = crate::program::FIRST_SUPPORTED_COMMIT
    )]
    UnsupportedTree(PathBuf),
    /// The chain load could not be timed (the uprobes on `bf_chain_set`, or
    /// a start-up subtraction lost in noise); the case fails with this line.
    #[error("{0}")]
    ChainSetTiming(String),
    /// bfcli ran but refused the chain; the case is `unsupported` by that build.
    #[error("bfcli rejected the chain: {0}")]
    BfcliRejected(String),
    /// bfcli reported success but did not pin the program where bpfilter does.
    #[error("bfcli succeeded but no program is pinned at {0}: is this a bpfilter bfcli?")]
    NoPinnedProgram(PathBuf),
    /// The program returned a value other than the case's expected verdict.
    #[error("wrong return value: expected {expected} ({verdict}), got {got}")]
    WrongVerdict {
        /// The flavor's encoding of the expected verdict.
        expected: u32,
        /// The expected verdict.
        verdict: crate::flavor::Verdict,
        /// What the program returned.
        got: u32,
    },
    /// BPF_PROG_TEST_RUN failed.
    #[error("BPF_PROG_TEST_RUN failed for a {flavor} program: {reason}")]
    TestRun {
        /// Flavor of the program.
        flavor: crate::flavor::Flavor,
        /// The system error.
        reason: String,
    },
    /// The user pressed Ctrl-C (or the process got SIGTERM).
    #[error("interrupted")]
    Interrupted,
    /// Any other I/O failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl HarnessError {
    /// Wrap an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        HarnessError::Io { context: context.into(), source }
    }
}

/// Result alias of the harness.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;
