//! Host isolation for benchmark runs, as upstream offers: pin to a CPU, run
//! under SCHED_FIFO, bind to a NUMA node, or run in a systemd slice. Each is
//! applied for real, or fails with a message saying why this host cannot.
//!
//! Pin, FIFO and node binding apply to the measuring thread only and only while
//! it measures ([`Isolation::scope`], taken by [`crate::machine::Machine::measuring`]
//! here and by the harness on `--host`): cmake, make, the compiler and the tests run unpinned under the normal
//! policy (a `make -jN` at real-time priority could starve the host).

use anyhow::{bail, Context as _, Result};
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use std::path::Path;

/// Environment marker telling a re-executed process it already runs in the slice.
const IN_SLICE_ENV: &str = "BFPERF_IN_SLICE";

/// Isolation requested on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Isolation {
    /// Pin the measuring thread to this CPU.
    pub cpu_pin: Option<usize>,
    /// Run under SCHED_FIFO so nothing preempts a sample.
    pub no_preempt: bool,
    /// Bind CPUs and memory to this NUMA node.
    pub bind_node: Option<usize>,
    /// Run inside this systemd slice (a transient scope).
    pub slice: Option<String>,
}

impl Isolation {
    /// Check at start-up that this host can apply the isolation: it is applied to the calling
    /// thread and undone at once, so a refusal comes before any build. Returns what will be
    /// applied. The session then hands it to every local measurement ([`crate::machine::Machine::Local`]).
    pub fn check(&self) -> Result<Vec<String>> {
        Ok(self.scope()?.applied.clone())
    }

    /// Apply everything but the slice (which needs a re-exec, see [`reexec_in_slice`]) to the
    /// calling thread only, until the returned [`Scope`] is dropped. BPF_PROG_TEST_RUN runs on
    /// the calling CPU, so pinning the measuring thread pins the programs.
    ///
    /// SCHED_FIFO is set with SCHED_RESET_ON_FORK: threads and processes started inside the scope
    /// (bfcli loading chains) run under the normal policy. They do inherit the CPU pin and the
    /// memory binding, so nothing that builds may run inside a scope.
    pub fn scope(&self) -> Result<Scope> {
        let mut scope = Scope::default();
        if self.bind_node.is_some() || self.cpu_pin.is_some() {
            scope.affinity = Some(sched_getaffinity(Pid::from_raw(0)).context("cannot read the CPU affinity")?);
        }
        if let Some(node) = self.bind_node {
            let cpus = node_cpus(node)?;
            set_affinity(&cpus).with_context(|| format!("cannot bind to NUMA node {node}"))?;
            scope.mempolicy = Some(memory_policy()?);
            bind_memory(node)?;
            scope.applied.push(format!("bound to NUMA node {node} (CPUs {cpus:?})"));
        }
        if let Some(cpu) = self.cpu_pin {
            let online = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
            if cpu >= CpuSet::count() || !Path::new(&format!("/sys/devices/system/cpu/cpu{cpu}")).exists() {
                bail!("--cpu-pin {cpu}: no such CPU on this host ({online} online)");
            }
            set_affinity(&[cpu]).with_context(|| format!("--cpu-pin {cpu}: the kernel refused the affinity"))?;
            scope.applied.push(format!("pinned to CPU {cpu}"));
        }
        if self.no_preempt {
            scope.policy = Some(scheduler());
            set_fifo()?;
            scope.applied.push("SCHED_FIFO priority 1".into());
        }
        Ok(scope)
    }
}

/// Isolation applied to one thread; dropping it restores the thread's previous policy, memory
/// binding and affinity. Not `Send`: it must be dropped on the thread it was made on.
#[derive(Debug, Default)]
#[must_use = "the isolation is undone when the scope is dropped"]
pub struct Scope {
    affinity: Option<CpuSet>,
    policy: Option<(libc::c_int, libc::sched_param)>,
    mempolicy: Option<(libc::c_int, MemMask)>,
    applied: Vec<String>,
    _thread_bound: std::marker::PhantomData<*const ()>,
}

impl Scope {
    /// What was applied, for the user ("pinned to CPU 3", ...).
    pub fn applied(&self) -> &[String] {
        &self.applied
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if let Some((policy, param)) = self.policy.take() {
            // SAFETY: plain syscall on the calling thread with a parameter read from it before.
            if unsafe { libc::sched_setscheduler(0, policy, &param) } != 0 {
                eprintln!("warning: cannot restore the scheduling policy: {}", std::io::Error::last_os_error());
            }
        }
        if let Some((mode, mask)) = self.mempolicy.take() {
            if let Err(e) = set_memory_policy(mode, &mask) {
                eprintln!("warning: cannot restore the memory policy: {e}");
            }
        }
        if let Some(set) = self.affinity.take() {
            if let Err(e) = sched_setaffinity(Pid::from_raw(0), &set) {
                eprintln!("warning: cannot restore the CPU affinity: {e}");
            }
        }
    }
}

fn set_affinity(cpus: &[usize]) -> Result<()> {
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu)?;
    }
    sched_setaffinity(Pid::from_raw(0), &set)?;
    Ok(())
}

/// The calling thread's policy (SCHED_RESET_ON_FORK included) and parameters.
fn scheduler() -> (libc::c_int, libc::sched_param) {
    let mut param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain syscalls on the calling thread; `param` outlives the call.
    unsafe {
        let policy = libc::sched_getscheduler(0);
        libc::sched_getparam(0, &mut param);
        (policy.max(0), param)
    }
}

fn set_fifo() -> Result<()> {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: plain syscall on the calling thread with a valid parameter struct.
    let ret = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param) };
    if ret != 0 {
        let err = std::io::Error::last_os_error();
        bail!("--no-preempt: cannot switch to SCHED_FIFO ({err}): needs root or CAP_SYS_NICE, and RT scheduling allowed in this cgroup");
    }
    Ok(())
}

/// The CPUs of a NUMA node, from sysfs.
fn node_cpus(node: usize) -> Result<Vec<usize>> {
    let path = format!("/sys/devices/system/node/node{node}/cpulist");
    let list = std::fs::read_to_string(&path)
        .map_err(|_| anyhow::anyhow!("--bind-node {node}: no such NUMA node on this host ({path} is missing)"))?;
    parse_cpulist(list.trim()).with_context(|| format!("cannot parse {path}"))
}

/// Parse a kernel CPU list such as `0-3,8,10-11`.
pub fn parse_cpulist(list: &str) -> Result<Vec<usize>> {
    let mut cpus = vec![];
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<usize>()?..=b.parse::<usize>()?),
            None => cpus.push(part.parse()?),
        }
    }
    Ok(cpus)
}

/// A node mask wide enough for any node count the kernel supports by default (1024 nodes).
type MemMask = [libc::c_ulong; 1024 / libc::c_ulong::BITS as usize];

fn bind_memory(node: usize) -> Result<()> {
    const MPOL_BIND: libc::c_int = 2;
    let mut mask: MemMask = [0; 1024 / libc::c_ulong::BITS as usize];
    let bits = libc::c_ulong::BITS as usize;
    anyhow::ensure!(node < mask.len() * bits, "--bind-node {node}: no such NUMA node on this host");
    mask[node / bits] |= 1 << (node % bits);
    set_memory_policy(MPOL_BIND, &mask)
        .with_context(|| format!("--bind-node {node}: cannot bind memory (is the kernel built with NUMA support?)"))
}

/// The calling thread's memory policy and nodes.
fn memory_policy() -> Result<(libc::c_int, MemMask)> {
    let mut mode: libc::c_int = 0;
    let mut mask: MemMask = [0; 1024 / libc::c_ulong::BITS as usize];
    let maxnode = (mask.len() * libc::c_ulong::BITS as usize) as libc::c_ulong;
    // SAFETY: get_mempolicy writes one int to `mode` and `maxnode` bits to `mask`, both outliving the call.
    let ret = unsafe {
        libc::syscall(libc::SYS_get_mempolicy, &mut mode as *mut libc::c_int, mask.as_mut_ptr(), maxnode, 0usize, 0u32)
    };
    if ret != 0 {
        bail!("cannot read the memory policy: {}", std::io::Error::last_os_error());
    }
    Ok((mode, mask))
}

fn set_memory_policy(mode: libc::c_int, mask: &MemMask) -> Result<()> {
    const MPOL_DEFAULT: libc::c_int = 0;
    let maxnode = (mask.len() * libc::c_ulong::BITS as usize) as libc::c_ulong;
    let (ptr, maxnode) = if mode == MPOL_DEFAULT { (std::ptr::null(), 0) } else { (mask.as_ptr(), maxnode) };
    // SAFETY: set_mempolicy reads `maxnode` bits from `ptr`, which outlives the call (or is null with 0).
    let ret = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode as libc::c_long, ptr, maxnode) };
    if ret != 0 {
        bail!("{}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// When `--slice` is given and we are not yet inside it, re-run this very
/// command in a transient systemd scope of that slice and return its exit code.
pub fn reexec_in_slice(slice: &str) -> Result<Option<i32>> {
    if std::env::var_os(IN_SLICE_ENV).is_some() {
        return Ok(None);
    }
    if !crate::build::which("systemd-run") {
        bail!("--slice {slice}: systemd-run is not installed on this host");
    }
    if !Path::new("/run/systemd/system").is_dir() {
        bail!("--slice {slice}: this host does not run systemd (no /run/systemd/system), so there are no slices");
    }
    let exe = std::env::current_exe()?;
    let status = std::process::Command::new("systemd-run")
        .args(["--scope", "--quiet", "--collect", &format!("--slice={slice}"), "--"])
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(IN_SLICE_ENV, "1")
        .status()
        .with_context(|| format!("--slice {slice}: cannot run systemd-run"))?;
    Ok(Some(status.code().unwrap_or(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpulists_parse() {
        assert_eq!(parse_cpulist("0-3,8,10-11").unwrap(), vec![0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(parse_cpulist("0").unwrap(), vec![0]);
        assert!(parse_cpulist("x").is_err());
    }

    #[test]
    fn impossible_requests_fail_clearly() {
        let err = Isolation { cpu_pin: Some(4096), ..Default::default() }.scope().unwrap_err().to_string();
        assert!(err.contains("--cpu-pin 4096: no such CPU"), "{err}");
        let err = Isolation { bind_node: Some(999), ..Default::default() }.scope().unwrap_err().to_string();
        assert!(err.contains("--bind-node 999: no such NUMA node"), "{err}");
    }

    fn cpus_of_this_thread() -> Vec<usize> {
        let set = sched_getaffinity(Pid::from_raw(0)).unwrap();
        (0..CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).collect()
    }

    /// The policy of a thread or process, from /proc (field 41 of stat).
    fn policy_in_proc(stat: &str) -> i32 {
        let text = std::fs::read_to_string(stat).unwrap();
        let after_comm = &text[text.rfind(')').unwrap() + 2..];
        after_comm.split(' ').nth(38).unwrap().parse().unwrap()
    }

    #[test]
    fn a_scope_isolates_this_thread_only_and_is_undone() {
        // On a thread of its own: the test harness's other threads must not be affected anyway.
        std::thread::spawn(|| {
            let before = cpus_of_this_thread();
            let (policy_before, _) = scheduler();
            let scope = Isolation { cpu_pin: Some(0), no_preempt: true, ..Default::default() }.scope().unwrap();
            assert_eq!(scope.applied(), ["pinned to CPU 0", "SCHED_FIFO priority 1"]);
            assert_eq!(cpus_of_this_thread(), [0]);
            assert_eq!(scheduler().0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK);
            // The process and its other threads keep their policy...
            let main_policy = policy_in_proc(&format!("/proc/{}/stat", std::process::id()));
            assert_eq!(main_policy, libc::SCHED_OTHER);
            // ...and a child started inside the scope does not get FIFO (it does get the pin).
            let out = std::process::Command::new("sh")
                .args(["-c", "cut -d')' -f2 /proc/$$/stat | cut -d' ' -f40; grep Cpus_allowed_list /proc/$$/status"])
                .output()
                .unwrap();
            let text = String::from_utf8(out.stdout).unwrap();
            let mut lines = text.lines();
            assert_eq!(lines.next(), Some("0"), "the child's policy is SCHED_OTHER: {text}");
            assert!(lines.next().unwrap().ends_with("\t0"), "{text}");
            drop(scope);
            assert_eq!(cpus_of_this_thread(), before);
            assert_eq!(scheduler().0, policy_before);
        })
        .join()
        .unwrap();
    }
}
