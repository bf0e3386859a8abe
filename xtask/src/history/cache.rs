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
}

/// How chain-load cases are timed, part of their cache key: change it when
/// that changes (bench.md, "Chain-load cases").
const CHAIN_LOAD_TIMING: &str = "bf_chain_set task-clock in bfcli (uprobes), else start-up subtracted";

/// The cache of one repository's comparisons on this host.
#[derive(Debug, Clone)]
pub struct ResultCache {
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
        // What a case measures: its chain, and its packet's bytes (a packet
        // made faithful to upstream's is another measurement); a chain load,
        // how it is timed (pairs cached when the whole `bfcli chain set` was
        // timed are another measurement too).
        let case_key = |c: &&Case| {
            let packet = c.runtime().map(|(p, _)| p.build().iter().map(|b| format!("{b:02x}")).collect::<String>());
            let what = packet.unwrap_or_else(|| CHAIN_LOAD_TIMING.to_owned());
            format!("{}\n{}\n{what}", c.name, c.chain_text())
        };
        let suite_key = stable_key(cases.iter().map(case_key).chain([settings]));
        ResultCache {
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
        let path = self.path(parent, commit);
        let text = std::fs::read_to_string(&path).ok()?;
        let want = self.key(parent, commit);
        let parsed = serde_json::from_str::<serde_json::Value>(&text)
            .map_err(|e| e.to_string())
            .and_then(|v| {
                let schema = v.get("schema").and_then(|s| s.as_str()).unwrap_or("<none>").to_owned();
                if schema != SCHEMA {
                    return Err(format!("schema {schema}, expected {SCHEMA}"));
                }
                serde_json::from_value::<CacheEntry>(v).map_err(|e| e.to_string())
            })
            .and_then(|e| if e.key == want { Ok(e.comparison) } else { Err(format!("written for {}", e.key)) });
        match parsed {
            Ok(c) => Some(c),
            Err(why) => {
                warn(format!("warning: ignoring cache entry {} ({why}); measuring again", path.display()));
                None
            }
        }
    }

    /// Store the comparison of `commit` with `parent`, atomically.
    pub fn store_pair(&self, parent: &str, commit: &str, comparison: &Comparison) -> Result<()> {
        let entry = CacheEntry { schema: SCHEMA.into(), key: self.key(parent, commit), comparison: comparison.clone() };
        write_atomic(&self.path(parent, commit), &serde_json::to_vec(&entry)?)
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
        cache.store_pair("aaa", "bbb", &comparison()).unwrap();
        assert_eq!(cache.load_pair("aaa", "bbb", |w| panic!("{w}")).unwrap(), comparison());

        let path = cache.path("aaa", "bbb");
        std::fs::write(&path, "{\"schema\": \"bfperf.hist").unwrap();
        let mut warned = String::new();
        assert!(cache.load_pair("aaa", "bbb", |w| warned = w).is_none());
        assert!(warned.contains("ignoring cache entry"), "{warned}");
        std::fs::write(&path, r#"{"schema":"something.else","key":"x"}"#).unwrap();
        let mut warned = String::new();
        assert!(cache.load_pair("aaa", "bbb", |w| warned = w).is_none());
        assert!(warned.contains("something.else"), "{warned}");
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
