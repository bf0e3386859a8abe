//! Versioned results of a benchmark run, written as JSON.
//!
//! The schema is documented in `doc/results-schema.md`; bump [`SCHEMA`] on any
//! incompatible change so caches and histories can tell old files apart.

use crate::flavor::{Flavor, Hook};
use crate::packet::PacketKind;
use crate::program::ProgramMetrics;
use crate::runner::SamplingConfig;
use crate::stats::Summary;
use crate::suite::Flags;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Schema identifier of [`RunResults`].
pub const SCHEMA: &str = "bfperf.results.v1";

/// Version of the harness that produced a result (cache key component).
pub const HARNESS_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The machine a run happened on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    /// Host name.
    pub hostname: String,
    /// `uname -r`.
    pub kernel: String,
    /// CPU model name from /proc/cpuinfo.
    pub cpu_model: String,
    /// Online CPUs.
    pub cpus: usize,
}

impl HostInfo {
    /// Describe this machine.
    pub fn current() -> Self {
        let uts = nix::sys::utsname::uname().ok();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        HostInfo {
            hostname: uts.as_ref().map(|u| u.nodename().to_string_lossy().into_owned()).unwrap_or_default(),
            kernel: uts.as_ref().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default(),
            cpu_model,
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        }
    }
}

/// What was measured: the build under test.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// Path of the bfcli used.
    pub bfcli: String,
    /// Commit of the sources, when known.
    pub commit: Option<String>,
    /// Whether the sources had uncommitted changes.
    pub dirty: bool,
}

/// Outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    /// Measured.
    Ok,
    /// The program is wrong or could not be measured; `reason` says why.
    Failed {
        /// One line.
        reason: String,
    },
    /// The build's bfcli does not support this case.
    Unsupported {
        /// bfcli's error line.
        reason: String,
    },
}

/// Unit of a case's samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    /// Nanoseconds per packet (runtime cases).
    #[serde(rename = "ns/pkt")]
    NsPerPacket,
    /// Milliseconds per `bfcli chain set` (chain-load cases).
    #[serde(rename = "ms")]
    Milliseconds,
}

/// The result of one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    /// Case name.
    pub name: String,
    /// Case label.
    pub label: String,
    /// Hook of the chain.
    pub hook: Hook,
    /// Flavor of the program.
    pub flavor: Flavor,
    /// Packet (runtime cases only).
    pub packet: Option<PacketKind>,
    /// Upstream's flags.
    pub flags: Flags,
    /// Outcome.
    pub status: Status,
    /// Unit of `samples`.
    pub unit: Unit,
    /// Repeat count of each test-run call (runtime cases).
    pub repeat: Option<u32>,
    /// The program's return value (runtime cases).
    pub retval: Option<u32>,
    /// Every sample, in measurement order.
    pub samples: Vec<f64>,
    /// Summary of `samples`.
    pub summary: Option<Summary>,
    /// Exact program metrics.
    pub metrics: Option<ProgramMetrics>,
    /// Median ns/pkt of the empty program of the same flavor and packet.
    pub floor_ns: Option<f64>,
    /// Wall time of `bfcli chain set` for this case, in ms (for chain-load
    /// cases: the median sample, timed by `load_method`).
    pub load_ms: Option<f64>,
    /// How a chain-load case's samples were timed; absent for runtime cases
    /// and in files written before bfperf timed `bf_chain_set` in-process
    /// (there: the whole `bfcli chain set`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_method: Option<crate::chainset::Method>,
}

impl CaseResult {
    /// Median cost bpfilter adds over the kernel's floor, in ns/pkt.
    pub fn cost_over_floor(&self) -> Option<f64> {
        Some(self.summary?.median - self.floor_ns?)
    }
}

/// The empty-program floor of one flavor and packet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Floor {
    /// Flavor.
    pub flavor: Flavor,
    /// Packet.
    pub packet: PacketKind,
    /// Summary of its samples (ns/pkt).
    pub summary: Summary,
    /// Metrics of the empty program.
    pub metrics: ProgramMetrics,
}

/// A whole run: one build, the selected cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// [`HARNESS_VERSION`] of the producer.
    pub harness_version: String,
    /// RFC 3339 time the run started.
    pub started_at: String,
    /// Wall time of the run, in seconds.
    pub wall_time_s: f64,
    /// Machine.
    pub host: HostInfo,
    /// Build under test.
    pub source: SourceInfo,
    /// Sampling used.
    pub sampling: SamplingConfig,
    /// Empty-program floors measured.
    pub floors: Vec<Floor>,
    /// Per-case results.
    pub cases: Vec<CaseResult>,
}

impl RunResults {
    /// Parse results, refusing other schemas with a clear message.
    pub fn from_json(text: &str) -> anyhow::Result<Self> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        let schema = value.get("schema").and_then(|s| s.as_str()).unwrap_or("<none>");
        anyhow::ensure!(schema == SCHEMA, "results schema is {schema}, expected {SCHEMA}");
        Ok(serde_json::from_value(value)?)
    }

    /// Write atomically: a temporary file in the same directory, fsync, rename.
    /// A full disk or a crash leaves the previous file intact, never half a file.
    pub fn write_atomic(&self, path: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(self)?;
        write_atomic(path, &json)
    }
}

/// Write `bytes` to `path` atomically (temporary file + fsync + rename +
/// fsync of the directory). The file gets mode 0666 minus the umask, like
/// any file a program creates (0644 under the usual 022).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // tempfile's default is 0600: perf.md written under `sudo -E` would then be
    // unreadable to the CI job's next steps. The mode given is passed to
    // open(2), so the kernel applies the umask.
    let mut tmp = tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path).with_context(|| format!("cannot replace {}", path.display()))?;
    // The rename itself is durable only once the directory is.
    std::fs::File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("cannot sync {}", dir.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RunResults {
        RunResults {
            schema: SCHEMA.into(),
            harness_version: HARNESS_VERSION.into(),
            started_at: "2026-11-25T00:00:00Z".into(),
            wall_time_s: 1.5,
            host: HostInfo::current(),
            source: SourceInfo { bfcli: "/x/bfcli".into(), commit: Some("abc".into()), dirty: false },
            sampling: SamplingConfig::default(),
            floors: vec![],
            cases: vec![CaseResult {
                name: "xdp__prologue".into(),
                label: "XDP prologue".into(),
                hook: Hook::Xdp,
                flavor: Flavor::Xdp,
                packet: Some(PacketKind::LocalIp6Tcp),
                flags: Flags::default(),
                status: Status::Failed { reason: "wrong return value".into() },
                unit: Unit::NsPerPacket,
                repeat: Some(1000),
                retval: Some(1),
                samples: vec![1.0, 2.0],
                summary: Summary::of(&[1.0, 2.0]),
                metrics: Some(ProgramMetrics { xlated_insns: 10, jited_bytes: 60, verified_insns: 12 }),
                floor_ns: Some(0.5),
                load_ms: Some(3.0),
                load_method: None,
            }],
        }
    }

    #[test]
    fn round_trips_and_tags_status() {
        let r = sample();
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains(r#""status":{"state":"failed","reason":"wrong return value"}"#));
        assert!(text.contains(r#""unit":"ns/pkt""#));
        assert_eq!(RunResults::from_json(&text).unwrap(), r);
        assert_eq!(r.cases[0].cost_over_floor(), Some(1.0));
    }

    #[test]
    fn foreign_schema_is_refused() {
        let text = serde_json::to_string(&sample()).unwrap().replace(SCHEMA, "other.v9");
        let err = RunResults::from_json(&text).unwrap_err().to_string();
        assert!(err.contains("other.v9"), "{err}");
        assert!(RunResults::from_json("{not json").is_err());
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/results.json");
        sample().write_atomic(&path).unwrap();
        let back = RunResults::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back, sample());
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temporary left");
    }

    /// The variables [`umask_child`] reads.
    const UMASK_VAR: &str = "BFPERF_TEST_UMASK";
    const PATH_VAR: &str = "BFPERF_TEST_PATH";

    #[test]
    fn written_files_honour_the_umask() {
        use std::os::unix::fs::PermissionsExt as _;
        // The umask is per process: each case writes from a child (this test binary, one test).
        for (umask, want) in [("022", 0o644), ("077", 0o600), ("002", 0o664)] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("perf.md");
            // An existing 0600 file (an older bfperf's) is replaced by one with the umask's mode.
            std::fs::write(&path, "old").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["results::tests::umask_child", "--exact", "--ignored", "--nocapture"])
                .env(UMASK_VAR, umask)
                .env(PATH_VAR, &path)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
            assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"), "the child ran the write");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, want, "umask {umask}: mode {mode:o}");
        }
    }

    #[test]
    #[ignore = "run by written_files_honour_the_umask, in a child process"]
    fn umask_child() {
        let (Ok(umask), Some(path)) = (std::env::var(UMASK_VAR), std::env::var_os(PATH_VAR)) else {
            panic!("run by written_files_honour_the_umask only");
        };
        let umask = u32::from_str_radix(&umask, 8).unwrap();
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
        write_atomic(Path::new(&path), b"new").unwrap();
    }
}
