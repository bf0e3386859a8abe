//! A history spread over several hosts: `--shard I/N` measures only the
//! pairs it owns and leaves a record of them in its cache; `--merge DIR…`
//! builds the history from such caches, measuring and building nothing.
//!
//! A pair (planned BASE → REF, see [`super::plan`]) belongs to shard
//! `1 + h mod N`, `h` a SHA-256 of the two commit ids: not its position in
//! the range, so adding commits to the range moves no other pair, and every
//! host computes the same owner. A pair whose BASE does not build is measured
//! by the owner of the pair against the previous commit that builds, as an
//! unsharded run measures it, so each pair is measured on exactly one host.
//!
//! The caches merged are untrusted (copied from other hosts, or artifacts):
//! every file is opened beneath its directory without following a link,
//! read with a size bound, and checked against what refers to it.

use super::cache::{self, CacheEntry};
use anyhow::{bail, Result};
use bench_harness::engine::CompareConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Schema identifier of a [`ShardRecord`].
pub const SCHEMA: &str = "bfperf.history-shard.v1";
/// Where a shard's record lives in its cache directory: `<cache>/history-shards/<I>of<N>.json`.
pub const RECORDS: &str = "history-shards";
/// The longest record read (a range of thousands of commits is a few MB).
const MAX_RECORD_BYTES: u64 = 64 << 20;

/// One shard of `count`: `index` is 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which one, 1 to `count`.
    pub index: usize,
    /// How many.
    pub count: usize,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// `--shard`'s parser: `I/N` with 1 ≤ I ≤ N.
pub fn parse_shard(text: &str) -> Result<Shard, String> {
    let bad = || format!("`{text}` is not a shard I/N with 1 ≤ I ≤ N (e.g. 1/2)");
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let (index, count) = (i.trim().parse::<usize>().map_err(|_| bad())?, n.trim().parse::<usize>().map_err(|_| bad())?);
    if count == 0 || index == 0 || index > count {
        return Err(bad());
    }
    Ok(Shard { index, count })
}

/// The shard (1-based) of `count` that measures the pair `base` → `reference`
/// (full commit ids).
pub fn owner(base: &str, reference: &str, count: usize) -> usize {
    let key = crate::workspace::stable_key([base, reference]);
    let h = u64::from_str_radix(&key, 16).expect("stable_key is 16 hex digits");
    1 + (h % count.max(1) as u64) as usize
}

impl Shard {
    /// Whether this shard measures `base` → `reference`.
    pub fn owns(&self, base: &str, reference: &str) -> bool {
        owner(base, reference, self.count) == self.index
    }

    /// Its record's file name.
    pub fn file_name(&self) -> String {
        format!("{}of{}.json", self.index, self.count)
    }
}

/// What a shard found building one commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BuildState {
    /// Built, and its bfcli can be driven.
    Built,
    /// Did not build.
    BuildFailed {
        /// The error, log tail included.
        reason: String,
    },
    /// Built, but predates bpfilter's daemon removal.
    UnsupportedTree {
        /// The one line saying so.
        reason: String,
    },
}

/// One commit of the range, as a shard's record lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordPoint {
    /// Full commit id.
    pub commit: String,
    /// Short id.
    pub label: String,
    /// Commit subject.
    pub subject: String,
    /// Index of the point its pair is planned against (none for the first).
    pub planned_base: Option<usize>,
    /// What this shard found building it; none when it did not build it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<BuildState>,
}

/// One pair a shard measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordPair {
    /// Index of BASE (the planned base, or the previous commit that builds when it does not).
    pub base: usize,
    /// Index of REF.
    pub reference: usize,
    /// The cache entry, relative to the cache directory.
    pub entry: PathBuf,
}

/// What `bench-history --shard I/N` leaves in its cache for `--merge`: the
/// whole range as planned, and the pairs it owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The harness version that measured.
    pub harness_version: String,
    /// The suite's version: a hash of the selected cases' chains and packets ([`cache::suite_version`]).
    pub suite: String,
    /// The measurement settings.
    pub settings: CompareConfig,
    /// The selected cases, in suite order.
    pub cases: Vec<String>,
    /// This shard, 1-based.
    pub shard: usize,
    /// How many shards.
    pub shards: usize,
    /// The host that measured: the `--host` target, or this host's name.
    pub host: String,
    /// The repository, as the shard saw it.
    pub repo: String,
    /// Every commit of the range, oldest first.
    pub points: Vec<RecordPoint>,
    /// The pairs this shard owns and measured.
    pub pairs: Vec<RecordPair>,
}

impl ShardRecord {
    /// Write it to `<cache>/history-shards/<I>of<N>.json`, atomically; returns the path.
    pub fn write(&self, cache: &Path) -> Result<PathBuf> {
        let shard = Shard { index: self.shard, count: self.shards };
        let path = cache.join(RECORDS).join(shard.file_name());
        bench_harness::results::write_atomic(&path, &serde_json::to_vec_pretty(self)?)?;
        Ok(path)
    }
}

/// A record read from one of the directories merged.
#[derive(Debug, Clone)]
pub struct Found {
    /// The directory given to `--merge`.
    pub dir: PathBuf,
    /// The record.
    pub record: ShardRecord,
}

impl Found {
    fn shard(&self) -> Shard {
        Shard { index: self.record.shard, count: self.record.shards }
    }

    fn name(&self) -> String {
        format!("shard {} in {}", self.shard(), self.dir.display())
    }
}

/// The shard records in `dir` (`<dir>/history-shards/*of*.json`). A record
/// that does not parse, or whose file name is not its shard, is skipped
/// with a warning; a directory without records is an error.
pub fn read_records(dir: &Path, warn: &dyn Fn(String)) -> Result<Vec<Found>> {
    use crate::planted::{self, Refused};
    if !dir.is_dir() {
        bail!("--merge {}: no such directory (give the --cache-dir of each shard)", dir.display());
    }
    let names = match planted::list_beneath(dir, Path::new(RECORDS)) {
        Ok(names) => names,
        Err(Refused::Link) | Err(Refused::NotRegular) => {
            bail!("{}/{RECORDS} is a symbolic link or not a directory: refused", dir.display())
        }
        Err(Refused::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{} holds no shard record ({RECORDS}/I of N.json): pass the --cache-dir of a `bench-history --shard I/N` run",
            dir.display()
        ),
        Err(Refused::Io(e)) => bail!("cannot read {}: {e}", dir.join(RECORDS).display()),
    };
    let mut found = vec![];
    for name in names {
        let Some(shard) = name.strip_suffix(".json").and_then(|s| s.split_once("of")) else { continue };
        let Ok(shard) = parse_shard(&format!("{}/{}", shard.0, shard.1)) else { continue };
        let rel = Path::new(RECORDS).join(&name);
        let path = dir.join(&rel);
        let read = planted::read_beneath(dir, &rel, MAX_RECORD_BYTES).map_err(|e| e.to_string());
        let parsed = read.and_then(|bytes| {
            let v = serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| e.to_string())?;
            let schema = v.get("schema").and_then(|s| s.as_str()).unwrap_or("<none>").to_owned();
            if schema != SCHEMA {
                return Err(format!("schema {schema}, expected {SCHEMA}"));
            }
            let r = serde_json::from_value::<ShardRecord>(v).map_err(|e| e.to_string())?;
            if (r.shard, r.shards) != (shard.index, shard.count) {
                return Err(format!("it says shard {}/{}", r.shard, r.shards));
            }
            check_plan(&r)?;
            Ok(r)
        });
        match parsed {
            Ok(record) => found.push(Found { dir: dir.to_owned(), record }),
            Err(why) => warn(format!("warning: ignoring shard record {} ({why})", path.display())),
        }
    }
    if found.is_empty() {
        bail!(
            "{} holds no usable shard record: pass the --cache-dir of a `bench-history --shard I/N` run",
            dir.display()
        );
    }
    Ok(found)
}

/// A record's indices all point into its range, bases before their points.
fn check_plan(r: &ShardRecord) -> Result<(), String> {
    let n = r.points.len();
    if r.points.iter().enumerate().any(|(i, p)| p.planned_base.is_some_and(|b| b >= i)) {
        return Err("a planned base after its commit".into());
    }
    if r.pairs.iter().any(|p| p.reference >= n || p.base >= p.reference) {
        return Err("a pair outside the range".into());
    }
    Ok(())
}

/// Every record measured the same range with the same harness, suite and
/// settings, and no shard is given twice; else one error naming both.
pub fn check_compatible(found: &[Found]) -> Result<()> {
    let Some(first) = found.first() else { bail!("no shard record to merge") };
    let a = &first.record;
    for other in &found[1..] {
        let b = &other.record;
        let (one, two) = (first.name(), other.name());
        if a.harness_version != b.harness_version {
            bail!(
                "{two} was measured by harness {}, {one} by harness {}: merge only shards of one bfperf version",
                b.harness_version,
                a.harness_version
            );
        }
        if a.suite != b.suite || a.cases != b.cases {
            bail!(
                "{two} measured suite {} ({} cases), {one} suite {} ({} cases): merge only shards run with the same bfperf and --filter",
                b.suite,
                b.cases.len(),
                a.suite,
                a.cases.len()
            );
        }
        if a.settings != b.settings {
            bail!("{two} was measured with other settings than {one} (--quick, --time-budget, --threshold…): merge only shards run with the same flags");
        }
        if a.shards != b.shards {
            bail!("{two} is one of {} shards, {one} one of {}: merge the shards of one split", b.shards, a.shards);
        }
        let plan = |r: &ShardRecord| r.points.iter().map(|p| (p.commit.clone(), p.planned_base)).collect::<Vec<_>>();
        if plan(a) != plan(b) {
            bail!("{two} measured another range than {one}: merge the shards of one range");
        }
    }
    for (i, x) in found.iter().enumerate() {
        if let Some(y) = found[..i].iter().find(|y| y.record.shard == x.record.shard) {
            bail!(
                "shard {} is in both {} and {}: give each shard's directory once",
                x.shard(),
                y.dir.display(),
                x.dir.display()
            );
        }
    }
    Ok(())
}

/// The cache entry of `pair` in `found`'s directory, checked: it must compare
/// exactly the two commits the record says, measured by the record's harness.
pub fn read_pair(found: &Found, pair: &RecordPair) -> Result<CacheEntry, String> {
    let rel = &pair.entry;
    let plain = rel.components().all(|c| matches!(c, std::path::Component::Normal(_)));
    if !plain || rel.components().next().is_none_or(|c| c.as_os_str() != "results") {
        return Err(format!("{} is not a path under results/", rel.display()));
    }
    let entry = cache::read_entry(&found.dir, rel)?.ok_or_else(|| format!("{} is missing", rel.display()))?;
    let points = &found.record.points;
    let c = &entry.comparison;
    let commit = |s: &bench_harness::engine::SideInfo| s.source.commit.clone().unwrap_or_default();
    if commit(&c.base) != points[pair.base].commit || commit(&c.reference) != points[pair.reference].commit {
        return Err(format!("{} compares other commits", rel.display()));
    }
    if c.harness_version != found.record.harness_version {
        return Err(format!("{} was measured by harness {}", rel.display(), c.harness_version));
    }
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_bad_ones_say_what_is_wanted() {
        assert_eq!(parse_shard("1/2"), Ok(Shard { index: 1, count: 2 }));
        assert_eq!(parse_shard("3/3").unwrap().to_string(), "3/3");
        for bad in ["0/2", "3/2", "1/0", "0/0", "2", "a/b", "-1/2", "1/2/3", ""] {
            let e = parse_shard(bad).unwrap_err();
            assert!(e.contains("1 ≤ I ≤ N"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_owner_depends_on_the_pair_only_and_spreads() {
        let ids: Vec<String> = (0..64).map(|i| format!("{i:040x}")).collect();
        let owners: Vec<usize> = ids.windows(2).map(|w| owner(&w[0], &w[1], 3)).collect();
        // Stable: the same pair, the same owner, wherever it is in a range.
        assert_eq!(owner(&ids[5], &ids[6], 3), owners[5]);
        assert!(owners.iter().all(|&o| (1..=3).contains(&o)));
        for k in 1..=3 {
            assert!(owners.iter().filter(|&&o| o == k).count() >= 10, "shard {k} of 3 gets its share: {owners:?}");
        }
        // Pinned (Python's hashlib): SHA-256 of the length-prefixed ids decides, so no Rust
        // upgrade moves a pair to another shard.
        let (a, b) = ("0".repeat(40), "1".repeat(40));
        assert_eq!((owner(&a, &b, 7), owner(&a, &b, 2)), (3, 2));
        assert!(Shard { index: owners[0], count: 3 }.owns(&ids[0], &ids[1]));
    }
}
