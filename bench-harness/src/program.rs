//! Where programs come from: the bfcli of the build under test (which pins
//! the chain's program in a bpffs, as bpfilter does) or the harness itself
//! (the empty program of each flavor, the kernel's own test-run floor).

use crate::bpffs::Bpffs;
use crate::error::{HarnessError, Result};
use crate::flavor::{Flavor, Verdict};
use serde::{Deserialize, Serialize};
use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Chains longer than this are passed with `--from-file`: a single argument
/// is capped at 128 KiB by the kernel (MAX_ARG_STRLEN).
const FROM_STR_MAX: usize = 64 * 1024;

/// The first bpfilter commit whose bfcli bfperf can drive: the one that
/// removed the daemon from bfcli's path and gave it `--bpffs-path` (`-b`).
pub const FIRST_SUPPORTED_COMMIT: &str =
    "f1d9e985 (\"daemon: rewrite cli.c to direct library calls and add lifecycle to bfcli\", March 2026)";

/// What argp prints when it refuses a command line: a daemon-era bfcli
/// given `-b` prints it.
const USAGE_ERROR: &str = "Try `bfcli --help' or `bfcli --usage'";

/// The bfcli binary of one build under test.
#[derive(Debug, Clone)]
pub struct Bfcli {
    path: PathBuf,
}

impl Bfcli {
    /// Use the bfcli at `path`, checking that it is an executable file.
    pub fn new(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let meta = std::fs::metadata(&path).map_err(|_| HarnessError::BfcliMissing(path.clone()))?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(HarnessError::BfcliNotExecutable(path));
        }
        let path =
            path.canonicalize().map_err(|e| HarnessError::io(format!("cannot resolve {}", path.display()), e))?;
        Ok(Bfcli { path })
    }

    /// The binary's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this bfcli accepts the command line bfperf drives it with:
    /// `bfcli -b DIR chain set --help` must not be a usage error. A bfcli from
    /// before bpfilter's daemon removal has no `-b` and answers with argp's
    /// usage error; every case would then fail alike, so the build is refused
    /// once, here ([`HarnessError::UnsupportedTree`]), instead of per case.
    /// Nothing is loaded: `--help` stops bfcli after parsing.
    pub fn probe(&self) -> Result<()> {
        let out = Command::new(&self.path)
            .args(["-b", "/nonexistent-bfperf-probe", "chain", "set", "--help"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| HarnessError::io(format!("cannot run {}", self.path.display()), e))?;
        let said = |b: &[u8]| String::from_utf8_lossy(b).contains(USAGE_ERROR);
        if !out.status.success() && (said(&out.stderr) || said(&out.stdout)) {
            return Err(HarnessError::UnsupportedTree(self.path.clone()));
        }
        Ok(())
    }

    /// `bfcli -b BPFFS chain set ...`: generate, load and pin the chain.
    /// Returns the wall time bfcli took.
    pub fn chain_set(&self, bpffs: &Path, chain_text: &str) -> Result<Duration> {
        self.chain_set_pid(bpffs, chain_text).map(|(took, _)| took)
    }

    /// [`Bfcli::chain_set`], also returning the pid bfcli ran as.
    pub fn chain_set_pid(&self, bpffs: &Path, chain_text: &str) -> Result<(Duration, u32)> {
        let (args, _file) = chain_set_args(bpffs, chain_text)?;
        let mut cmd = Command::new(&self.path);
        cmd.args(args);
        let start = Instant::now();
        let pid = self.run(cmd)?;
        Ok((start.elapsed(), pid))
    }

    /// `bfcli chain set` as [`Bfcli::chain_set_pid`], calling `gate` with
    /// bfcli's pid before bfcli starts: whatever `gate` sets up for that pid
    /// (a perf event: [`crate::chainset::Probe::arm`]) sees all of bfcli.
    /// What `gate` returns lives until bfcli has exited; an error stops bfcli
    /// before it runs. The pid is held by `/bin/sh`, which waits for a line on
    /// its stdin and then `exec`s bfcli in the same process (std's `spawn`
    /// returns only after an `exec`, so the wait cannot be in `pre_exec`).
    /// The time returned includes that shell.
    pub fn chain_set_gated<G>(
        &self,
        bpffs: &Path,
        chain_text: &str,
        gate: impl FnOnce(u32) -> Result<G>,
    ) -> Result<(Duration, u32)> {
        let (args, _file) = chain_set_args(bpffs, chain_text)?;
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "read -r _ && exec \"$0\" \"$@\""]).arg(&self.path).args(args);
        let cannot = |e| HarnessError::io(format!("cannot run {}", self.path.display()), e);
        let start = Instant::now();
        let mut child =
            cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().map_err(cannot)?;
        let pid = child.id();
        let mut stdin = child.stdin.take().expect("piped stdin");
        let guard = match gate(pid) {
            Ok(g) => g,
            Err(e) => {
                drop(stdin);
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let go = std::io::Write::write_all(&mut stdin, b"go\n");
        drop(stdin);
        let out = child.wait_with_output().map_err(cannot)?;
        drop(guard);
        go.map_err(cannot)?;
        self.outcome(out).map(|()| (start.elapsed(), pid))
    }

    /// `bfcli -b BPFFS chain flush --name NAME`.
    pub fn chain_flush(&self, bpffs: &Path, name: &str) -> Result<()> {
        let mut cmd = Command::new(&self.path);
        cmd.arg("-b").arg(bpffs).args(["chain", "flush", "--name", name]);
        self.run(cmd).map(drop)
    }

    /// Run bfcli to completion; its pid on success.
    fn run(&self, mut cmd: Command) -> Result<u32> {
        let cannot = |e| HarnessError::io(format!("cannot run {}", self.path.display()), e);
        let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().map_err(cannot)?;
        let pid = child.id();
        let out = child.wait_with_output().map_err(cannot)?;
        self.outcome(out).map(|()| pid)
    }

    /// Success, or bfcli's error line.
    fn outcome(&self, out: std::process::Output) -> Result<()> {
        crate::interrupt::check()?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(HarnessError::BfcliRejected(first_error_line(&stderr, out.status)))
    }
}

/// The arguments of `bfcli -b BPFFS chain set` for `chain_text`, and the
/// temporary file holding a chain too long for one argument (`--from-file`),
/// to keep until bfcli exits.
fn chain_set_args(bpffs: &Path, chain_text: &str) -> Result<(Vec<OsString>, Option<tempfile::NamedTempFile>)> {
    let mut args: Vec<OsString> = vec!["-b".into(), bpffs.into(), "chain".into(), "set".into()];
    if chain_text.len() <= FROM_STR_MAX {
        args.extend(["--from-str".into(), chain_text.into()]);
        return Ok((args, None));
    }
    let cannot = |e| HarnessError::io("cannot write the chain to a temporary file", e);
    let mut file = tempfile::Builder::new().prefix("bfperf-chain-").suffix(".bf").tempfile().map_err(cannot)?;
    std::io::Write::write_all(&mut file, chain_text.as_bytes()).map_err(cannot)?;
    args.extend(["--from-file".into(), file.path().into()]);
    Ok((args, Some(file)))
}

/// The most useful line of bfcli's stderr: its first `error` line, else the last line.
fn first_error_line(stderr: &str, status: std::process::ExitStatus) -> String {
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let line = lines
        .iter()
        .find(|l| l.starts_with("error"))
        .or(lines.last())
        .map(|l| l.trim_start_matches("error").trim_start_matches([' ', ':']).to_string());
    match line {
        Some(l) => l,
        None => format!("bfcli exited with {status} and printed nothing"),
    }
}

/// Exact, deterministic metrics of a loaded program, from `bpf_prog_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramMetrics {
    /// Instructions after the verifier's rewrites (`xlated_prog_len / 8`).
    pub xlated_insns: u32,
    /// Size of the JITed machine code, in bytes.
    pub jited_bytes: u32,
    /// Instructions the verifier processed (`verified_insns`).
    pub verified_insns: u32,
}

impl ProgramMetrics {
    /// Query the kernel about the program behind `fd`.
    pub fn of(fd: BorrowedFd<'_>) -> Result<Self> {
        // Without buffers the kernel only fills in the lengths, which is all we need.
        let mut info = libbpf_sys::bpf_prog_info::default();
        let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
        // SAFETY: info is a valid bpf_prog_info of `len` bytes with null buffers.
        let ret = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) };
        if ret < 0 {
            return Err(HarnessError::io("cannot query bpf_prog_info", std::io::Error::from_raw_os_error(-ret)));
        }
        let insn_size = std::mem::size_of::<libbpf_sys::bpf_insn>() as u32;
        Ok(ProgramMetrics {
            xlated_insns: info.xlated_prog_len / insn_size,
            jited_bytes: info.jited_prog_len,
            verified_insns: info.verified_insns,
        })
    }
}

/// A loaded BPF program the harness can test-run.
#[derive(Debug)]
pub struct Program {
    fd: OwnedFd,
    flavor: Flavor,
    metrics: ProgramMetrics,
}

impl Program {
    /// Open the program bpfilter pinned at `pin`.
    pub fn from_pin(pin: &Path, flavor: Flavor) -> Result<Self> {
        let fd =
            libbpf_rs::Program::fd_from_pinned_path(pin).map_err(|_| HarnessError::NoPinnedProgram(pin.to_owned()))?;
        let metrics = ProgramMetrics::of(fd.as_fd())?;
        Ok(Program { fd, flavor, metrics })
    }

    /// Load the smallest program of `flavor` returning `verdict`: `r0 = X; exit`.
    /// Its run time is the kernel's own floor for a test run of that flavor.
    pub fn empty(flavor: Flavor, verdict: Verdict) -> Result<Self> {
        let mov = libbpf_sys::bpf_insn {
            code: (libbpf_sys::BPF_ALU64 | libbpf_sys::BPF_MOV | libbpf_sys::BPF_K) as u8,
            imm: flavor.retval(verdict) as i32,
            ..Default::default()
        };
        let exit =
            libbpf_sys::bpf_insn { code: (libbpf_sys::BPF_JMP | libbpf_sys::BPF_EXIT) as u8, ..Default::default() };
        Self::load_insns(flavor, &[mov, exit])
    }

    /// Load a program the harness generated itself (floors, self-checks).
    pub fn load_insns(flavor: Flavor, insns: &[libbpf_sys::bpf_insn]) -> Result<Self> {
        let name = CString::new(format!("bfperf_{}", flavor.name())).expect("no NUL in name");
        let license = c"GPL";
        let mut opts = libbpf_sys::bpf_prog_load_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_prog_load_opts>() as _,
            expected_attach_type: flavor.expected_attach_type(),
            ..Default::default()
        };
        // SAFETY: insns, name, license and opts outlive the call; libbpf copies them.
        let fd = unsafe {
            libbpf_sys::bpf_prog_load(
                flavor.prog_type(),
                name.as_ptr(),
                license.as_ptr(),
                insns.as_ptr(),
                insns.len() as _,
                &mut opts,
            )
        };
        if fd < 0 {
            return Err(bpf_error(-fd));
        }
        // SAFETY: bpf_prog_load returned a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let metrics = ProgramMetrics::of(fd.as_fd())?;
        Ok(Program { fd, flavor, metrics })
    }

    /// The program's flavor.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The program's exact metrics.
    pub fn metrics(&self) -> ProgramMetrics {
        self.metrics
    }

    /// The program's file descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The raw file descriptor, for libbpf calls.
    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// The program's xlated code and maps, fetched from the kernel.
    pub fn code(&self) -> Result<crate::code::ProgramCode> {
        crate::code::ProgramCode::of(self.fd())
    }
}

/// Map a bpf() errno to the harness error a user can act on.
pub fn bpf_error(errno: i32) -> HarnessError {
    let err = std::io::Error::from_raw_os_error(errno);
    match errno {
        libc_eperm if libc_eperm == nix::errno::Errno::EPERM as i32 => HarnessError::BpfNotPermitted(err.to_string()),
        e if e == nix::errno::Errno::EACCES as i32 => HarnessError::BpfNotPermitted(err.to_string()),
        e if e == nix::errno::Errno::ENOSYS as i32 => HarnessError::BpfUnavailable(err.to_string()),
        _ => HarnessError::io("bpf(BPF_PROG_LOAD) failed", err),
    }
}

/// Check that this process may load and run BPF programs: loads the empty
/// XDP program. The error says what to do (be root, grant CAP_BPF, ...).
pub fn check_bpf_access() -> Result<()> {
    Program::empty(Flavor::Xdp, Verdict::Accept).map(drop)
}

/// A chain loaded by a build's bfcli in a private bpffs, with its program
/// open. Dropping it flushes the chain (the bpffs itself is unmounted by its
/// own guard).
#[derive(Debug)]
pub struct LoadedChain<'a> {
    bfcli: &'a Bfcli,
    bpffs: &'a Bpffs,
    name: String,
    /// Taken only by [`LoadedChain::into_program`].
    program: Option<Program>,
    load_time: Duration,
}

impl<'a> LoadedChain<'a> {
    /// `bfcli chain set` the chain, then open its pinned program.
    pub fn load(bfcli: &'a Bfcli, bpffs: &'a Bpffs, name: &str, chain_text: &str, flavor: Flavor) -> Result<Self> {
        let load_time = bfcli.chain_set(bpffs.path(), chain_text)?;
        let guard_name = name.to_owned();
        let program = match Program::from_pin(&bpffs.prog_pin(name), flavor) {
            Ok(p) => p,
            Err(e) => {
                let _ = bfcli.chain_flush(bpffs.path(), &guard_name);
                return Err(e);
            }
        };
        Ok(LoadedChain { bfcli, bpffs, name: guard_name, program: Some(program), load_time })
    }

    /// The chain's program.
    pub fn program(&self) -> &Program {
        self.program.as_ref().expect("present until into_program")
    }

    /// Flush the chain but keep its program: our fd keeps the program and its
    /// maps alive, so many chains of the same name can stay loaded.
    pub fn into_program(mut self) -> Program {
        self.program.take().expect("present until into_program")
    }

    /// How long `bfcli chain set` took.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }
}

impl Drop for LoadedChain<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.bfcli.chain_flush(self.bpffs.path(), &self.name) {
            // The bpffs guard unmounts everything anyway; say it, don't fail.
            if !matches!(e, HarnessError::Interrupted) {
                eprintln!("warning: cannot flush chain {}: {e}", self.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn error_line_prefers_bfcli_errors() {
        let stderr = "info   : loading\nerror  : matcher meta.flow_hash is not compatible: Operation not supported\nerror  : failed to create a new bf_chain\n";
        assert_eq!(
            first_error_line(stderr, std::process::ExitStatus::from_raw(256)),
            "matcher meta.flow_hash is not compatible: Operation not supported"
        );
        assert!(first_error_line("", std::process::ExitStatus::from_raw(256)).contains("printed nothing"));
    }

    #[test]
    fn missing_and_non_executable_bfcli_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("bfcli");
        assert!(matches!(Bfcli::new(&missing), Err(HarnessError::BfcliMissing(_))));
        std::fs::write(&missing, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&missing, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Bfcli::new(&missing).unwrap_err();
        assert!(matches!(err, HarnessError::BfcliNotExecutable(_)));
        assert!(err.to_string().contains("not an executable file"));
        assert!(matches!(Bfcli::new(dir.path()), Err(HarnessError::BfcliNotExecutable(_))));
    }
}
