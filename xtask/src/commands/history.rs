//! `cargo xtask bench-history`: one host, one shard (`--shard`), several
//! hosts at once (repeated `--host`), or a merge of shards' caches (`--merge`).

use anyhow::{Context as _, Result};
use std::path::{Path, PathBuf};
use xtask::exit;
use xtask::flags::HistoryFlags;
use xtask::history::{self, shard::Shard, History, Split};
use xtask::output::{self, exporter, Format, Human, Results};
use xtask::session::Session;

/// Measure the range (or merge shards), print the commits and changes, write the reports.
pub fn run(flags: HistoryFlags) -> Result<i32> {
    let human = Human::new(&flags.output.named())?;
    flags.output.outputs(None, None).check()?;
    if !flags.merge.is_empty() {
        return merge(&flags, &human, &flags.merge);
    }
    let what = format!("bench-history {}..{}", flags.since.as_deref().unwrap_or_default(), flags.until);
    if flags.remote.host.len() > 1 {
        return on_hosts(&flags, &human, &what);
    }
    let session = Session::enter(&flags.host, &flags.remote, &flags.common, &what, true)?;
    let split = Split { shard: flags.shard, tag: String::new() };
    let hist = history::run_with(&flags, &session, &split)?;
    report(&flags, &human, &hist, &session.cache)?;
    Ok(history::exit_code(
        &hist,
        flags.fail.fail_on,
        flags.fail.fail_on_benchmark_error,
        flags.fail_on_last_commit_failure,
    ))
}

/// `--merge DIR…`: the history from the shards' caches; nothing measured, nothing built.
fn merge(flags: &HistoryFlags, human: &Human, dirs: &[PathBuf]) -> Result<i32> {
    let mut unique: Vec<PathBuf> = vec![];
    for d in dirs {
        if !unique.contains(d) {
            unique.push(d.clone());
        }
    }
    let (hist, found) = history::merge(&unique, flags.fdr, &|w| eprintln!("{}", xtask::text::line(&w)))?;
    for f in &found {
        let r = &f.record;
        xtask::progress::info(format!(
            "merge: shard {}/{} from {}: {} pair{} measured on {}",
            r.shard,
            r.shards,
            f.dir.display(),
            r.pairs.len(),
            if r.pairs.len() == 1 { "" } else { "s" },
            xtask::text::line(&r.host)
        ));
    }
    let missing = history::missing(&hist);
    let pairs = hist.points.iter().filter(|p| p.pair.is_some()).count();
    xtask::progress::info(format!(
        "merge: {pairs} pair{} read from the caches, {missing} commit{} missing; nothing measured, nothing built",
        if pairs == 1 { "" } else { "s" },
        if missing == 1 { "" } else { "s" }
    ));
    let cache = xtask::workspace::cache_dir(flags.common.cache_dir.as_deref())?;
    report(flags, human, &hist, &cache)?;
    let code = history::exit_code(
        &hist,
        flags.fail.fail_on,
        flags.fail.fail_on_benchmark_error,
        flags.fail_on_last_commit_failure,
    );
    // A pair no shard measured is a benchmark failure of the whole run (doc/history.md).
    Ok(if flags.fail.fail_on_benchmark_error && missing > 0 { exit::BENCHMARK_ERROR } else { code })
}

/// Repeated `--host`: host k of N measures shard k/N, then the shards'
/// caches are merged. The connections are made one after another (they may
/// share the harness upload on a host named twice); the shards then run at
/// once, a thread and an ssh connection each.
fn on_hosts(flags: &HistoryFlags, human: &Human, what: &str) -> Result<i32> {
    anyhow::ensure!(
        flags.shard.is_none(),
        "--shard with several --host: host k of N measures shard k/N itself; drop --shard (or give one --host)"
    );
    let hosts = &flags.remote.host;
    let count = hosts.len();
    let mut sessions = vec![];
    for spec in hosts {
        sessions.push(Session::enter_on(&flags.host, &flags.remote, &flags.common, what, true, Some(spec))?);
    }
    let done: Vec<Result<PathBuf>> = std::thread::scope(|s| {
        let runs: Vec<_> = sessions
            .into_iter()
            .zip(hosts)
            .enumerate()
            .map(|(k, (session, spec))| {
                s.spawn(move || -> Result<PathBuf> {
                    let split = Split { shard: Some(Shard { index: k + 1, count }), tag: format!(" on {spec}") };
                    history::run_with(flags, &session, &split)
                        .with_context(|| format!("on {spec} (shard {}/{count})", k + 1))?;
                    Ok(session.cache.clone())
                })
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a host's thread panicked"))))
            .collect()
    });
    let dirs = done.into_iter().collect::<Result<Vec<PathBuf>>>()?;
    merge(flags, human, &dirs)
}

/// The terminal lines, then the HTML report (always saved: by default under
/// `<cache>/reports/`), the JSON, Markdown and CSV asked for.
fn report(flags: &HistoryFlags, human: &Human, hist: &History, cache: &Path) -> Result<()> {
    let results = Results::History(hist);
    human.line(String::from_utf8_lossy(&exporter(Format::Terminal { color: output::color() }).export(&results)?));
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let mut outputs = flags.output.outputs(None, Some(cache.join("reports").join(format!("history-{stamp}.html"))));
    outputs.html_label = "report";
    outputs.write(&results, human)
}
