//! Comparisons of consecutive commits, cached by (parent, commit, host,
//! harness version, suite): a pair measured once is not measured again on
//! this host unless `--retry` says so. Entries are written atomically; a corrupt or
//! foreign entry is ignored with a warning and measured again.

use anyhow::Result;
use bench_harness::engine::{CompareConfig, Comparison};
use bench_harness::results::{write_atomic, HostInfo, HARNESS_VERSION};
use bench_harness::suite::Case;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Schema identifier of a cached pair comparison.
pub const SCHEMA: &str = "bfperf.history-pair.v1";

/// One cached comparison of a commit with its predecessor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The key this entry was written under; checked on load.
    pub key: String,
    /// The comparison.
    pub comparison: Comparison,
    /// Where it was measured: the `--host` target, or this host's name
    /// (absent in entries written before shards existed: then the
    /// comparison's `host.hostname` says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_on: Option<String>,
}

/// The longest cache entry read: a pair of the whole suite at the most rounds
/// is well under a megabyte; a planted file must not exhaust memory.
pub const MAX_ENTRY_BYTES: u64 = 64 << 20;

impl CacheEntry {
    /// Parse an entry's bytes; `want` is the key it must have been written
    /// under. The error says why the entry is not usable.
    pub fn parse(bytes: &[u8], want: &str) -> Result<CacheEntry, String> {
        let v = serde_json::from_slice::<serde_json::Value>(bytes).map_err(|e| e.to_string())?;
        let schema = v.get("schema").and_then(|s| s.as_str()).unwrap_or("<none>").to_owned();
        if schema != SCHEMA {
            return Err(format!("schema {schema}, expected {SCHEMA}"));
        }
        let e = serde_json::from_value::<CacheEntry>(v).map_err(|e| e.to_string())?;
        if e.key != want {
            return Err(format!("written for {}", e.key));
        }
        Ok(e)
    }

    /// The host that measured the pair.
    pub fn host(&self) -> String {
        self.measured_on.clone().unwrap_or_else(|| self.comparison.host.hostname.clone())
    }
}

/// Read the entry `rel` (a path relative to the cache directory `root`) the
/// way every entry is read: no link followed on the way, a regular file, at
/// most [`MAX_ENTRY_BYTES`], written under the key that its file name says.
/// `Ok(None)`: there is no such file.
pub fn read_entry(root: &Path, rel: &Path) -> Result<Option<CacheEntry>, String> {
    use crate::planted::{self, Refused, Unread};
    let want = rel.file_stem().and_then(|s| s.to_str()).ok_or("not an entry's name")?;
    let bytes = match planted::read_beneath(root, rel, MAX_ENTRY_BYTES) {
        Ok(bytes) => bytes,
        Err(e) if e.is_missing() => return Ok(None),
        Err(Unread::Refused(Refused::Link)) => return Err("a symbolic link on its path".into()),
        Err(Unread::TooLarge) => return Err(format!("longer than {MAX_ENTRY_BYTES} bytes")),
        Err(e) => return Err(e.to_string()),
    };
    CacheEntry::parse(&bytes, want).map(Some)
}

/// What a case measures: its chain, and its packet's bytes (a packet made
/// faithful to upstream's is another measurement); a chain load, how it is
/// timed (pairs cached when the whole `bfcli chain set` was timed are another
/// measurement too).
fn case_key(c: &&Case) -> String {
    let packet = c.runtime().map(|(p, _)| p.build().iter().map(|b| format!("{b:02x}")).collect::<String>());
    let what = packet.unwrap_or_else(|| CHAIN_LOAD_TIMING.to_owned());
    format!("{}\n{}\n{what}", c.name, c.chain_text())
}

/// The suite's version, as shard records name it: a hash of what the
/// selected cases measure (names, chains, packets), settings apart.
pub fn suite_version(cases: &[&Case]) -> String {
    crate::workspace::stable_key(cases.iter().map(case_key))
}

/// How chain-load cases are timed, part of their cache key: change it when
/// that changes (bench.md, "Chain-load cases").
const CHAIN_LOAD_TIMING: &str = "bf_chain_set task-clock in bfcli (uprobes), else start-up subtracted";

/// The cache of one repository's comparisons on this host.
#[derive(Debug, Clone)]
pub struct ResultCache {
    root: PathBuf,
    dir: PathBuf,
    suffix: String,
}

impl ResultCache {
    /// The cache for the repository at `root`, for the selected cases and settings.
    pub fn new(cache: &Path, root: &Path, cases: &[&Case], config: &CompareConfig) -> Self {
        Self::on_host(cache, root, &HostInfo::current(), cases, config)
    }

    /// [`ResultCache::new`] for measurements on `host`. The key parts are
    /// hashed with [`crate::workspace::stable_key`] (SHA-256), settings as
    /// JSON: a new Rust release does not silently empty the cache.
    fn on_host(cache: &Path, root: &Path, host: &HostInfo, cases: &[&Case], config: &CompareConfig) -> Self {
        use crate::workspace::stable_key;
        let host_key = stable_key([&host.hostname, &host.cpu_model, &host.kernel]);
        let settings = serde_json::to_string(config).expect("settings serialize");
        let suite_key = stable_key(cases.iter().map(case_key).chain([settings]));
        ResultCache {
            root: cache.to_owned(),
            dir: cache.join("results").join(crate::workspace::path_key(root)),
            suffix: format!("{host_key}-v{HARNESS_VERSION}-{suite_key}"),
        }
    }

    fn key(&self, parent: &str, commit: &str) -> String {
        format!("{}-{}-{}", &parent[..parent.len().min(12)], commit, self.suffix)
    }

    fn path(&self, parent: &str, commit: &str) -> PathBuf {
        self.dir.join(format!("{}.json", self.key(parent, commit)))
    }

    /// The cached comparison of `commit` with `parent`, if any and valid;
    /// `warn` is told about corrupt or foreign entries.
    pub fn load_pair(&self, parent: &str, commit: &str, warn: impl FnOnce(String)) -> Option<Comparison> {
        self.load_entry(parent, commit, warn).map(|e| e.comparison)
    }

    /// [`ResultCache::load_pair`] with where it was measured.
    pub fn load_entry(&self, parent: &str, commit: &str, warn: impl FnOnce(String)) -> Option<CacheEntry> {
        let rel = self.relative(parent, commit);
        match read_entry(&self.root, &rel) {
            Ok(entry) => entry,
            Err(why) => {
                let path = self.root.join(rel);
                warn(format!("warning: ignoring cache entry {} ({why}); measuring again", path.display()));
                None
            }
        }
    }

    /// Store the comparison of `commit` with `parent`, measured on
    /// `measured_on` (see [`CacheEntry::measured_on`]), atomically.
    pub fn store_pair(&self, parent: &str, commit: &str, comparison: &Comparison, measured_on: &str) -> Result<()> {
        let entry = CacheEntry {
            schema: SCHEMA.into(),
            key: self.key(parent, commit),
            comparison: comparison.clone(),
            measured_on: Some(measured_on.to_owned()),
        };
        write_atomic(&self.path(parent, commit), &serde_json::to_vec(&entry)?)
    }

    /// The entry's path relative to the cache directory (what a shard's record names).
    pub fn relative(&self, parent: &str, commit: &str) -> PathBuf {
        let path = self.path(parent, commit);
        path.strip_prefix(&self.root).map(Path::to_owned).unwrap_or(path)
    }

    /// Where entries live.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comparison() -> Comparison {
        Comparison {
            schema: bench_harness::engine::SCHEMA.into(),
            harness_version: HARNESS_VERSION.into(),
            started_at: "2026-11-25T00:00:00Z".into(),
            wall_time_s: 1.0,
            host: HostInfo::current(),
            base: bench_harness::engine::SideInfo { label: "a".into(), source: Default::default() },
            reference: bench_harness::engine::SideInfo { label: "b".into(), source: Default::default() },
            same_build: false,
            config: CompareConfig::default(),
            cases: vec![],
            geomean: None,
        }
    }

    #[test]
    fn entries_round_trip_and_bad_ones_are_ignored_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let cases = bench_harness::suite::suite();
        let selected: Vec<&Case> = cases.iter().take(2).collect();
        let cache = ResultCache::new(dir.path(), Path::new("/src/bpfilter"), &selected, &CompareConfig::default());
        assert!(cache.load_pair("aaa", "bbb", |_| panic!("no warning for a miss")).is_none());
        cache.store_pair("aaa", "bbb", &comparison(), "bench").unwrap();
        assert_eq!(cache.load_pair("aaa", "bbb", |w| panic!("{w}")).unwrap(), comparison());

        let path = cache.path("aaa", "bbb");
        assert_eq!(cache.load_entry("aaa", "bbb", |w| panic!("{w}")).unwrap().host(), "bench");
        std::fs::write(&path, "{\"schema\": \"bfperf.hist").unwrap();
        let mut warned = String::new();
        assert!(cache.load_pair("aaa", "bbb", |w| warned = w).is_none());
        assert!(warned.contains("ignoring cache entry"), "{warned}");
        std::fs::write(&path, r#"{"schema":"something.else","key":"x"}"#).unwrap();
        let mut warned = String::new();
        assert!(cache.load_pair("aaa", "bbb", |w| warned = w).is_none());
        assert!(warned.contains("something.else"), "{warned}");
        // A valid entry planted as a link (a cache copied from elsewhere): not followed.
        let elsewhere = tempfile::tempdir().unwrap();
        let valid = elsewhere.path().join("entry.json");
        let entry = CacheEntry {
            schema: SCHEMA.into(),
            key: cache.key("aaa", "bbb"),
            comparison: comparison(),
            measured_on: None,
        };
        std::fs::write(&valid, serde_json::to_vec(&entry).unwrap()).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&valid, &path).unwrap();
        let mut warned = String::new();
        assert!(cache.load_pair("aaa", "bbb", |w| warned = w).is_none());
        assert!(warned.contains("symbolic link"), "{warned}");
    }

    #[test]
    fn the_key_depends_on_suite_and_settings() {
        let dir = tempfile::tempdir().unwrap();
        let cases = bench_harness::suite::suite();
        let a: Vec<&Case> = cases.iter().take(2).collect();
        let b: Vec<&Case> = cases.iter().take(3).collect();
        let root = Path::new("/src/bpfilter");
        let ka = ResultCache::new(dir.path(), root, &a, &CompareConfig::default()).key("p", "c");
        let kb = ResultCache::new(dir.path(), root, &b, &CompareConfig::default()).key("p", "c");
        let kq = ResultCache::new(dir.path(), root, &a, &CompareConfig::quick()).key("p", "c");
        assert_ne!(ka, kb);
        assert_ne!(ka, kq);
        // A chain-load case's key says how it is timed, not only its chain.
        let load = cases.iter().find(|c| c.runtime().is_none()).unwrap();
        let kl = ResultCache::new(dir.path(), root, &[load], &CompareConfig::default()).key("p", "c");
        let text = format!("{}\n{}\n{CHAIN_LOAD_TIMING}", load.name, load.chain_text());
        let settings = serde_json::to_string(&CompareConfig::default()).unwrap();
        assert!(kl.ends_with(&crate::workspace::stable_key([text.as_str(), settings.as_str()])), "{kl}");
        assert!(ka.starts_with("p-c-") && ka.contains(HARNESS_VERSION));
    }

    #[test]
    fn the_key_of_fixed_inputs_is_fixed() {
        let host = HostInfo { hostname: "bench".into(), kernel: "6.12.0".into(), cpu_model: "CPU".into(), cpus: 4 };
        let config = CompareConfig {
            sample_ms: 10.0,
            warmup: 2,
            min_rounds: 12,
            max_rounds: 80,
            target_ci_pct: 2.0,
            time_budget_s: 150.0,
            threshold_pct: 1.0,
            level: 0.95,
            instances: 3,
            measure_identical: false,
            inject_pct: 0.0,
        };
        let cache = ResultCache::on_host(Path::new("/c"), Path::new("/src/bpfilter"), &host, &[], &config);
        let key = cache.key("0123456789abcdef", "fedcba9876543210");
        // SHA-256 (see workspace::stable_key) of ["bench", "CPU", "6.12.0"] and of the settings' JSON.
        assert_eq!(key, format!("0123456789ab-fedcba9876543210-dcff8c2b4aa29690-v{HARNESS_VERSION}-879b10f1a254b67d"));
        assert_eq!(cache.dir, Path::new("/c/results/bpfilter-7fd0e3d2d8646956"));
    }
}
