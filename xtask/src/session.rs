//! Where a command runs, entered once before any work: the cache, and either
//! this host's lock and measuring isolation or a connection to `--host`.

use crate::exit;
use crate::flags::{CommonFlags, HostFlags, RemoteFlags, TreeFlags};
use crate::machine::Machine;
use crate::remote::{HostSpec, Remote};
use crate::sources::Sources;
use crate::{host, lock, workspace};
use anyhow::{Context as _, Result};
use std::path::{Path, PathBuf};

/// Where a command builds and measures, with its cache and the lock it holds
/// until dropped.
pub struct Session {
    /// This host or `--host`.
    pub machine: Machine,
    /// The cache: per host when remote, so one machine's results never mix with another's.
    pub cache: PathBuf,
    _lock: Option<lock::RunLock>,
}

impl HostFlags {
    /// The isolation asked for.
    pub fn isolation(&self) -> host::Isolation {
        host::Isolation {
            cpu_pin: self.cpu_pin,
            no_preempt: self.no_preempt,
            bind_node: self.bind_node,
            slice: self.slice.clone(),
        }
    }

    /// Whether to queue behind another run (`--no-wait`: fail at once).
    pub fn wait(&self) -> lock::Wait {
        if self.no_wait {
            lock::Wait::No
        } else {
            lock::Wait::Yes
        }
    }
}

impl Session {
    /// Connect to `--host` (the host lock and isolation then apply there, per
    /// measurement; here a lock on that host's cache keeps two runs from sharing
    /// its worktrees), or take this host's lock and apply isolation here.
    /// `builds`: whether the run builds (a host without build tools is refused then).
    ///
    /// With `--slice` this process re-executes itself in the slice: the
    /// error is then [`exit::Finished`] with the code of that run.
    pub fn enter(
        host: &HostFlags,
        remote: &RemoteFlags,
        common: &CommonFlags,
        what: &str,
        builds: bool,
    ) -> Result<Session> {
        let spec = match remote.host.as_slice() {
            [] => None,
            [one] => Some(one.as_str()),
            many => anyhow::bail!(
                "--host is given {} times: only bench-history spreads its work over several hosts; give one",
                many.len()
            ),
        };
        Self::enter_on(host, remote, common, what, builds, spec)
    }

    /// [`Session::enter`] on `spec` (one of the `--host` values; none: this host).
    pub fn enter_on(
        host: &HostFlags,
        remote: &RemoteFlags,
        common: &CommonFlags,
        what: &str,
        builds: bool,
        spec: Option<&str>,
    ) -> Result<Session> {
        let cache = workspace::cache_dir(common.cache_dir.as_deref())?;
        let Some(spec) = spec else {
            let lock = enter_here(host, &cache, what)?;
            return Ok(Session { machine: Machine::Local(host.isolation()), cache, _lock: Some(lock) });
        };
        let spec = HostSpec::parse(spec)?;
        anyhow::ensure!(
            host.slice.is_none(),
            "--slice is not supported with --host: run bfperf on the host itself for that"
        );
        let host_cache = cache.join("hosts").join(spec.cache_key());
        let connected = Remote::connect(&spec, remote, host, builds, what, &host_cache)?;
        std::fs::create_dir_all(&host_cache).with_context(|| format!("cannot create {}", host_cache.display()))?;
        let held = lock::RunLock::acquire(&host_cache.join("bfperf.lock"), host.wait(), what)?;
        crate::progress::info(format!(
            "host: {spec} (kernel {}), bfperf directory {}",
            connected.kernel(),
            connected.root().display()
        ));
        Ok(Session { machine: Machine::Remote(std::sync::Arc::new(connected)), cache: host_cache, _lock: Some(held) })
    }

    /// This host only (commands without `--host`): the cache, the host lock and isolation.
    pub fn local(host: &HostFlags, common: &CommonFlags, what: &str) -> Result<Session> {
        let cache = workspace::cache_dir(common.cache_dir.as_deref())?;
        let lock = enter_here(host, &cache, what)?;
        Ok(Session { machine: Machine::Local(host.isolation()), cache, _lock: Some(lock) })
    }
}

/// The bpfilter tree of `--sources`, else `$BPFILTER_SOURCES`: resolved here, once per command.
pub fn sources(tree: &TreeFlags) -> Result<Sources> {
    Sources::from_arg_or_env(tree.sources.as_deref())
}

/// Enter the slice (re-exec), take the host lock, check the measuring isolation (the
/// session's [`Machine::Local`] then carries it to every measurement).
fn enter_here(host: &HostFlags, cache: &Path, what: &str) -> Result<lock::RunLock> {
    // Privileges first: an unprivileged user gets the one line that says what to do,
    // not an error about a lock file owned by root.
    bench_harness::program::check_bpf_access()?;
    if let Some(slice) = &host.slice {
        if let Some(code) = host::reexec_in_slice(slice)? {
            return Err(exit::Finished(code).into());
        }
    }
    let held = lock::RunLock::acquire(&lock::default_path(cache), host.wait(), what)?;
    for line in host.isolation().check()? {
        crate::progress::info(format!("host: while measuring: {line}"));
    }
    Ok(held)
}
