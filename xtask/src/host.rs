//! Host isolation for benchmark runs, as upstream offers: pin to a CPU, run
//! under SCHED_FIFO, bind to a NUMA node, or run in a systemd slice. Each is
//! applied for real, or fails with a message saying why this host cannot.

use anyhow::{bail, Context as _, Result};
use nix::sched::{sched_setaffinity, CpuSet};
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
    /// Apply everything but the slice (which needs a re-exec, see [`reexec_in_slice`]).
    /// BPF_PROG_TEST_RUN runs on the calling CPU, so pinning this process pins the programs.
    pub fn apply(&self) -> Result<Vec<String>> {
        let mut applied = vec![];
        if let Some(node) = self.bind_node {
            let cpus = node_cpus(node)?;
            set_affinity(&cpus).with_context(|| format!("cannot bind to NUMA node {node}"))?;
            bind_memory(node)?;
            applied.push(format!("bound to NUMA node {node} (CPUs {cpus:?})"));
        }
        if let Some(cpu) = self.cpu_pin {
            let online = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
            if cpu >= CpuSet::count() || !Path::new(&format!("/sys/devices/system/cpu/cpu{cpu}")).exists() {
                bail!("--cpu-pin {cpu}: no such CPU on this host ({online} online)");
            }
            set_affinity(&[cpu]).with_context(|| format!("--cpu-pin {cpu}: the kernel refused the affinity"))?;
            applied.push(format!("pinned to CPU {cpu}"));
        }
        if self.no_preempt {
            set_fifo()?;
            applied.push("SCHED_FIFO priority 1".into());
        }
        Ok(applied)
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

fn set_fifo() -> Result<()> {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: plain syscall on this process with a valid parameter struct.
    let ret = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
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

fn bind_memory(node: usize) -> Result<()> {
    const MPOL_BIND: libc::c_long = 2;
    let mask: libc::c_ulong = 1 << node;
    // SAFETY: set_mempolicy reads `maxnode` bits from `mask`, which outlives the call.
    let ret = unsafe {
        libc::syscall(libc::SYS_set_mempolicy, MPOL_BIND, &mask as *const libc::c_ulong, 64 as libc::c_ulong)
    };
    if ret != 0 {
        let err = std::io::Error::last_os_error();
        bail!("--bind-node {node}: cannot bind memory ({err}): is the kernel built with NUMA support?");
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
        let err = Isolation { cpu_pin: Some(4096), ..Default::default() }.apply().unwrap_err().to_string();
        assert!(err.contains("--cpu-pin 4096: no such CPU"), "{err}");
        let err = Isolation { bind_node: Some(999), ..Default::default() }.apply().unwrap_err().to_string();
        assert!(err.contains("--bind-node 999: no such NUMA node"), "{err}");
    }

    #[test]
    fn pinning_is_applied_for_real() {
        let applied = Isolation { cpu_pin: Some(0), ..Default::default() }.apply().unwrap();
        assert_eq!(applied, vec!["pinned to CPU 0".to_string()]);
        let set = nix::sched::sched_getaffinity(Pid::from_raw(0)).unwrap();
        assert!(set.is_set(0).unwrap());
        assert_eq!((0..CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).count(), 1);
    }
}
