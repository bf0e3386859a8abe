//! bench-history's page: the `history.html` template (one offline file),
//! the significant changes, the commits, and per case a plot over the
//! commits ([`svg::series`]). Commit subjects, case names and build errors
//! are escaped by the template; the plots escape their own text.
//!
//! Each point links to its commit's page when the repository's `origin` is
//! on a known forge ([`commit_links`]), and shows the plain hash otherwise.

use super::{case_id, flag_words, safe, Templates};
use crate::history::trend::TrendPoint;
use crate::history::{CaseChange, History, Point, PointStatus};
use crate::output::format::{change_code, change_word, ci, nbsp, num, pct, unit};
use crate::output::svg;
use anyhow::Result;
use bench_harness::engine::Change;
use bench_harness::program::ProgramMetrics;
use bench_harness::results::{CaseResult, Status, Unit};
use bench_harness::stats::Summary;
use minijinja::{context, Value};

/// Render `history` as one HTML page with inline SVG plots (no network needed).
pub fn render(history: &History) -> String {
    render_at(history, &super::now())
}

/// [`render`] with given templates (`--template DIR`) and generation date.
pub fn render_with(history: &History, templates: &Templates, generated: &str) -> Result<String> {
    let links = commit_links(std::path::Path::new(&history.repo));
    templates.render("history.html", page(history, generated, links.as_ref()))
}

/// [`render`] with a given generation date (tests).
fn render_at(history: &History, generated: &str) -> String {
    render_with(history, &Templates::embedded(), generated).expect("the embedded history template renders")
}

/// A signed percentage that does not wrap, e.g. `+5.2 %`.
fn fmt_pct(v: f64) -> String {
    nbsp(&pct(v))
}

/// A confidence interval in %, or why there is none (no-break spaces).
fn fmt_ci(lo: f64, hi: f64) -> String {
    nbsp(&ci(lo, hi))
}

/// Where a commit's page is: the base URL to which a full hash is appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitLinks {
    base: String,
}

impl CommitLinks {
    /// The page of `commit` (a full hash; anything else gets no link).
    pub fn url(&self, commit: &str) -> Option<String> {
        (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())).then(|| format!("{}{commit}", self.base))
    }
}

/// Commit pages of the repository at `repo`, from its `origin` remote, when
/// that is on GitHub or GitLab (`https://`, `ssh://` or `git@host:` forms).
/// The URL comes from the repository's configuration, someone else's text:
/// only an owner and name made of letters, digits, `-`, `_`, `.` and `/`
/// make a link, always `https://` to the forge's host.
pub fn commit_links(repo: &std::path::Path) -> Option<CommitLinks> {
    let git = git2::Repository::open(repo).ok()?;
    let remote = git.find_remote("origin").ok()?;
    forge_links(remote.url()?)
}

/// [`commit_links`] for one remote URL.
pub fn forge_links(url: &str) -> Option<CommitLinks> {
    let rest =
        url.strip_prefix("https://").or_else(|| url.strip_prefix("ssh://git@")).or_else(|| url.strip_prefix("git@"))?;
    let (host, path) = rest.split_once(['/', ':'])?;
    let path = path.trim_end_matches('/').trim_end_matches(".git");
    let ok = !path.is_empty()
        && path.split('/').count() >= 2
        && path.split('/').all(|p| !p.is_empty() && p != "." && p != "..")
        && path.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if !ok {
        return None;
    }
    let base = match host {
        "github.com" => format!("https://github.com/{path}/commit/"),
        "gitlab.com" => format!("https://gitlab.com/{path}/-/commit/"),
        _ => return None,
    };
    Some(CommitLinks { base })
}

/// One case at one commit.
enum Cell<'a> {
    /// The commit did not build.
    BuildFailed(&'a str),
    /// Measured, but without this case (another selection, or a newer case).
    Missing,
    /// The case failed or is unsupported at this commit.
    CaseFailed(&'a str),
    /// Measured.
    Ok { summary: Summary, metrics: Option<ProgramMetrics> },
}

fn case_result<'a>(point: &'a Point, case: &str) -> Option<&'a CaseResult> {
    point.results.as_ref()?.cases.iter().find(|c| c.name == case)
}

fn cell<'a>(point: &'a Point, case: &str) -> Cell<'a> {
    if let PointStatus::BuildFailed { reason } = &point.status {
        return Cell::BuildFailed(reason);
    }
    let Some(result) = case_result(point, case) else { return Cell::Missing };
    match &result.status {
        Status::Ok => match result.summary.or_else(|| Summary::of(&result.samples)) {
            Some(summary) => Cell::Ok { summary, metrics: result.metrics },
            None => Cell::CaseFailed("no samples"),
        },
        Status::Failed { reason } | Status::Unsupported { reason } => Cell::CaseFailed(reason),
    }
}

/// Median of `case` at `point`, when measured.
fn median(point: &Point, case: &str) -> Option<f64> {
    match cell(point, case) {
        Cell::Ok { summary, .. } if summary.median > 0.0 && summary.median.is_finite() => Some(summary.median),
        _ => None,
    }
}

/// The first line of `text`, cut to `max` characters.
fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > max {
        format!("{}…", line.chars().take(max).collect::<String>())
    } else {
        line.to_owned()
    }
}

/// A chain of [`crate::history::trend`], one entry per point of the history
/// (a history read from an older JSON without `trend` draws no chain).
fn padded(points: &[Option<TrendPoint>], len: usize) -> Vec<Option<TrendPoint>> {
    (0..len).map(|i| points.get(i).copied().flatten()).collect()
}

/// The chain of one case: `history.trend`'s, the one computation of the
/// chained paired ratios (each commit on its own base, `--all-parents` too).
fn case_chain(history: &History, case: &str) -> Vec<Option<TrendPoint>> {
    let points = history.trend.cases.iter().find(|c| c.case == case).map_or(&[][..], |c| &c.points[..]);
    padded(points, history.points.len())
}

/// The chain of the suite's geometric mean (`history.trend`'s).
fn suite_chain(history: &History) -> Vec<Option<TrendPoint>> {
    padded(&history.trend.suite, history.points.len())
}

/// Whether a chain's point `i` comes after its start (a pair was chained).
fn chained_at(chain: &[Option<TrendPoint>], i: usize) -> bool {
    chain.iter().position(Option::is_some).is_some_and(|first| first < i)
}

/// A chained point as a plot mark, in % against the first commit.
fn chained_mark(c: &TrendPoint, tip: String, href: Option<String>) -> svg::Mark {
    let pct_of = |r: f64| (r - 1.0) * 100.0;
    svg::Mark { mid: pct_of(c.ratio), lo: pct_of(c.lo), hi: pct_of(c.hi), tip, href }
}

/// `+3.1 % [+1.0, +5.2] (chained)` of a chained point; `same programs` when flat.
fn chained_text(c: &TrendPoint) -> String {
    let pct_of = |r: f64| (r - 1.0) * 100.0;
    let same = if c.identical { ", same programs as its base commit: not timed" } else { "" };
    format!("{} {} (paired ratios chained{same})", pct(pct_of(c.ratio)), ci(pct_of(c.lo), pct_of(c.hi)))
}

/// Changes sorted by commit, then suite order.
fn sorted_changes(history: &History) -> Vec<&CaseChange> {
    let order = |case: &str| history.cases.iter().position(|c| c == case).unwrap_or(usize::MAX);
    let mut changes: Vec<&CaseChange> = history.changes.iter().collect();
    changes.sort_by_key(|c| (c.change.index, order(&c.case)));
    changes
}

/// Per commit with changes: one highlight, red when any case got slower.
fn commit_highlights(history: &History) -> Vec<svg::Highlight> {
    let mut out: Vec<svg::Highlight> = vec![];
    for c in sorted_changes(history) {
        let line = format!("{}: {} {}", c.case, change_word(c.change.change), fmt_pct(c.change.estimate.delta_pct()));
        match out.iter_mut().find(|h| h.index == c.change.index) {
            Some(h) => {
                if c.change.change == Change::Slower {
                    h.change = Change::Slower;
                }
                h.tip.push('\n');
                h.tip.push_str(&line);
                h.count += 1;
                h.text = format!("{} changes", h.count);
            }
            None => out.push(svg::Highlight {
                index: c.change.index,
                change: c.change.change,
                text: "1 change".into(),
                tip: format!("{} {}\n{line}", c.commit, c.subject),
                count: 1,
            }),
        }
    }
    out
}

/// The page's context.
fn page(history: &History, generated: &str, links: Option<&CommitLinks>) -> Value {
    let url = |commit: &str| links.and_then(|l| l.url(commit));
    let labels: Vec<String> = history.points.iter().map(|p| p.label.clone()).collect();
    let total = history.points.len();
    let failed = history.points.iter().filter(|p| matches!(p.status, PointStatus::BuildFailed { .. })).count();
    let cached = history.points.iter().filter(|p| p.status == PointStatus::Measured { cached: true }).count();
    let host = history.points.iter().find_map(|p| p.results.as_ref()).map(|r| {
        format!("{} — {} ({} CPUs), kernel {}", r.host.hostname, r.host.cpu_model, r.host.cpus, r.host.kernel)
    });
    let commit_of = |label: &str| history.points.iter().find(|p| p.label == label).map(|p| p.commit.as_str());

    let changes: Vec<Value> = sorted_changes(history)
        .into_iter()
        .map(|c| {
            let est = &c.change.estimate;
            let (lo, hi) = est.ci_pct();
            context! {
                class => change_code(Some(c.change.change), true),
                word => change_word(c.change.change),
                case => c.case.clone(),
                case_id => case_id(&c.case),
                commit => c.commit.clone(),
                url => commit_of(&c.commit).and_then(url),
                subject => c.subject.clone(),
                delta => fmt_pct(est.delta_pct()),
                sort => est.delta_pct(),
                ci => fmt_ci(lo, hi),
                level => format!("{:.0}", est.level * 100.0),
            }
        })
        .collect();
    let slower = history.changes.iter().filter(|c| c.change.change == Change::Slower).count();
    // Each commit's suite-level change, with its interval (the terminal and Markdown list it too).
    let suite: Vec<Value> = history
        .suite
        .iter()
        .map(|s| {
            let (lo, hi) = s.estimate.ci_pct();
            context! {
                class => change_code(Some(s.change), true),
                word => change_word(s.change),
                commit => s.commit.clone(),
                url => commit_of(&s.commit).and_then(url),
                subject => s.subject.clone(),
                delta => fmt_pct(s.estimate.delta_pct()),
                sort => s.estimate.delta_pct(),
                ci => fmt_ci(lo, hi),
            }
        })
        .collect();

    let means = suite_chain(history);
    let overall = (means.iter().flatten().count() > 1).then(|| {
        let slots = history
            .points
            .iter()
            .zip(&means)
            .map(|(p, m)| match (m, &p.status) {
                (_, PointStatus::BuildFailed { reason }) => svg::Slot::BuildFailed(format!(
                    "{} {}\nbuild failed: {}",
                    p.label,
                    p.subject,
                    first_line(reason, 200)
                )),
                (Some(c), _) => svg::Slot::Value(chained_mark(
                    c,
                    format!("{} {}\nsuite {} vs the first commit", p.label, p.subject, chained_text(c)),
                    url(&p.commit),
                )),
                (None, _) => svg::Slot::Empty,
            })
            .collect();
        let plot = svg::Plot {
            labels: &labels,
            slots,
            y_title: "suite Δ % (chained)".into(),
            highlights: commit_highlights(history),
            secondary: None,
            zero_line: true,
        };
        safe(svg::series(&plot))
    });

    let points: Vec<Value> = history
        .points
        .iter()
        .zip(&means)
        .enumerate()
        .map(|(i, (p, mean))| {
            let (failed, reason, failed_word) = match &p.status {
                PointStatus::BuildFailed { reason } => (true, reason.as_str(), "build failed"),
                // Not a failure of the commit: bfperf does not drive trees that old.
                PointStatus::UnsupportedTree { reason } => (true, reason.as_str(), "unsupported tree"),
                PointStatus::Missing { reason } => (true, reason.as_str(), "missing"),
                PointStatus::Measured { .. } => (false, "", ""),
            };
            let case_failures: Vec<String> = history
                .cases
                .iter()
                .filter_map(|c| match cell(p, c) {
                    Cell::CaseFailed(reason) => Some(format!("{c}: {reason}")),
                    _ => None,
                })
                .collect();
            let changes: Vec<Value> = history
                .changes
                .iter()
                .filter(|c| c.change.index == i)
                .map(|c| {
                    context! {
                        case => c.case.clone(),
                        case_id => case_id(&c.case),
                        class => change_code(Some(c.change.change), true),
                        delta => fmt_pct(c.change.estimate.delta_pct()),
                    }
                })
                .collect();
            context! {
                commit => p.commit.clone(),
                label => p.label.clone(),
                url => url(&p.commit),
                subject => p.subject.clone(),
                failed,
                failed_word,
                reason_line => first_line(reason, 80),
                reason,
                state => if p.status == (PointStatus::Measured { cached: true }) { "cached" } else { "measured" },
                same => mean.is_some_and(|c| c.identical),
                host => p.pair.as_ref().and_then(|x| x.measured_on.clone()),
                case_failures,
                geomean => mean.map(|c| fmt_pct((c.ratio - 1.0) * 100.0)),
                geomean_sort => mean.map(|c| (c.ratio - 1.0) * 100.0).unwrap_or(f64::NAN).to_string(),
                geomean_tip => mean.map(|c| chained_text(&c)),
                changes,
            }
        })
        .collect();

    let cases: Vec<Value> = history.cases.iter().map(|case| case_page(history, case, &labels, &url)).collect();
    context! {
        repo => history.repo.clone(),
        total,
        measured => total - failed,
        cached,
        failed,
        first => history.points.first().map(|p| p.label.clone()),
        last => history.points.last().map(|p| p.label.clone()),
        host,
        threshold => format!("{}", history.threshold_pct),
        generated,
        changes,
        slower,
        faster => history.changes.len() - slower,
        suite,
        suite_changed => history.suite_changes(),
        suite_level => crate::history::markdown::pct(history.suite_level),
        overall,
        overall_note => "The suite's change since the first commit: each commit's paired suite geometric mean against its base (the previous commit that built; with --all-parents its first parent), chained (multiplied), with the propagated interval; a commit whose programs are all the same as its base's is drawn flat, without timing.",
        geomean_head => "Suite vs first",
        geomean_title => "The chained paired suite geometric means since the first commit",
        points,
        cases,
        cases_note => "Each point is the case's change since the first commit: the paired ratios of each commit against its base (the previous commit that built; with --all-parents its first parent: the comparisons the verdicts come from), chained, with the propagated interval as the band. A commit whose program is its base's is drawn flat, without timing. The separate runs' medians are in each point's tooltip only: they drift from run to run and are not compared.",
        linked => links.is_some(),
    }
}

/// One case's context: its summary line, its changes and its plot.
fn case_page(history: &History, case: &str, labels: &[String], url: &dyn Fn(&str) -> Option<String>) -> Value {
    let results: Vec<&CaseResult> = history.points.iter().filter_map(|p| case_result(p, case)).collect();
    let label = results.iter().rev().map(|r| r.label.as_str()).find(|l| *l != case).unwrap_or("");
    let flags = results.last().map(|r| flag_words(&r.flags)).unwrap_or_default();
    let unit = unit(results.last().map_or(Unit::NsPerPacket, |r| r.unit));
    let medians: Vec<(usize, f64)> =
        history.points.iter().enumerate().filter_map(|(i, p)| Some((i, median(p, case)?))).collect();
    let chained = case_chain(history, case);
    let last_chained =
        history.points.iter().zip(&chained).enumerate().rev().find_map(|(i, (p, c))| Some((i, p, c.as_ref()?)));
    let summary = match (medians.first(), medians.last()) {
        (Some((fi, first)), Some((li, last))) => {
            let since = match last_chained {
                Some((i, p, c)) if chained_at(&chained, i) => {
                    format!("At {}: {} since {}. ", p.label, chained_text(c), history.points[*fi].label)
                }
                _ => String::new(),
            };
            Some(format!(
                "{since}Medians of the separate runs (not paired): {} {unit} at {}, {} {unit} at {}.",
                num(*first),
                history.points[*fi].label,
                num(*last),
                history.points[*li].label,
            ))
        }
        _ => None,
    };
    let changes: Vec<Value> = history
        .changes
        .iter()
        .filter(|c| c.case == case)
        .map(|c| {
            let (lo, hi) = c.change.estimate.ci_pct();
            context! {
                class => change_code(Some(c.change.change), true),
                word => change_word(c.change.change),
                delta => fmt_pct(c.change.estimate.delta_pct()),
                ci => fmt_ci(lo, hi),
                commit => c.commit.clone(),
            }
        })
        .collect();

    let mut slots = Vec::with_capacity(history.points.len());
    let mut insns = Vec::with_capacity(history.points.len());
    for (p, chained) in history.points.iter().zip(&chained) {
        let head = format!("{} {}", p.label, p.subject);
        let (slot, metric) = match cell(p, case) {
            Cell::BuildFailed(reason) => {
                (svg::Slot::BuildFailed(format!("{head}\nbuild failed: {}", first_line(reason, 200))), None)
            }
            Cell::Missing => (svg::Slot::Empty, None),
            Cell::CaseFailed(reason) => {
                (svg::Slot::CaseFailed(format!("{head}\ncase failed: {}", first_line(reason, 200))), None)
            }
            Cell::Ok { summary: s, metrics } => {
                let metric = metrics.map(|m| {
                    let tip = format!(
                        "{head}\n{} xlated instructions, {} JITed bytes, {} verified instructions",
                        m.xlated_insns, m.jited_bytes, m.verified_insns
                    );
                    (f64::from(m.xlated_insns), tip)
                });
                // The separate run's median: a labelled aside, never the point itself.
                let median = format!(
                    "median of this commit's run: {} {unit} (p05 {}, p95 {}, n = {}; not paired)",
                    num(s.median),
                    num(s.p05),
                    num(s.p95),
                    s.n
                );
                let slot = match chained {
                    Some(c) => svg::Slot::Value(chained_mark(
                        c,
                        format!("{head}\n{} since the first commit\n{median}", chained_text(c)),
                        url(&p.commit),
                    )),
                    None => {
                        svg::Slot::CaseFailed(format!("{head}\nno paired ratio with the previous commit\n{median}"))
                    }
                };
                (slot, metric)
            }
        };
        slots.push(slot);
        insns.push(metric);
    }
    let highlights = history
        .changes
        .iter()
        .filter(|c| c.case == case)
        .map(|c| {
            let (lo, hi) = c.change.estimate.ci_pct();
            svg::Highlight {
                index: c.change.index,
                change: c.change.change,
                text: fmt_pct(c.change.estimate.delta_pct()),
                tip: format!(
                    "{} {}\n{} {}, confidence interval {} vs the previous commit that built",
                    c.commit,
                    c.subject,
                    change_word(c.change.change),
                    pct(c.change.estimate.delta_pct()),
                    ci(lo, hi)
                ),
                count: 1,
            }
        })
        .collect();
    let secondary =
        insns.iter().any(Option::is_some).then(|| svg::Secondary { title: "xlated insns".into(), values: insns });
    let plot = svg::Plot { labels, slots, y_title: "Δ % (chained)".into(), highlights, secondary, zero_line: true };
    context! {
        id => case_id(case),
        name => case,
        label,
        unit,
        flags,
        summary,
        changes,
        plot => safe(svg::series(&plot)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::history::trend::{CaseTrend, Trend};
    use crate::history::HistoryChange;
    use bench_harness::engine::classify;
    use bench_harness::engine::{CaseComparison, CompareConfig, Comparison, SideInfo};
    use bench_harness::flavor::Flavor;
    use bench_harness::packet::PacketKind;
    use bench_harness::results::{HostInfo, RunResults, SourceInfo, HARNESS_VERSION, SCHEMA};
    use bench_harness::runner::SamplingConfig;
    use bench_harness::stats::paired::{paired_ratio, RatioEstimate};
    use bench_harness::suite::Flags;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// A case result with the given samples (empty: failed).
    fn case(name: &str, unit: Unit, samples: Vec<f64>, insns: u32) -> CaseResult {
        let status =
            if samples.is_empty() { Status::Failed { reason: "wrong return value: 2".into() } } else { Status::Ok };
        CaseResult {
            label: format!("{name} label"),
            packet: (unit == Unit::NsPerPacket).then_some(PacketKind::LocalIp6Tcp),
            flags: Flags { userspace_only: unit == Unit::Milliseconds, ..Flags::default() },
            metrics: Some(ProgramMetrics { xlated_insns: insns, jited_bytes: insns * 6, verified_insns: insns + 3 }),
            floor_ns: None,
            ..crate::output::html::run::tests::case(name, unit, samples, status)
        }
    }

    fn run(cases: Vec<CaseResult>) -> RunResults {
        RunResults {
            schema: SCHEMA.into(),
            harness_version: HARNESS_VERSION.into(),
            started_at: "2026-11-25T00:00:00Z".into(),
            wall_time_s: 12.0,
            host: HostInfo {
                hostname: "bench1".into(),
                kernel: "6.12.0".into(),
                cpu_model: "Test CPU".into(),
                cpus: 8,
            },
            source: SourceInfo::default(),
            sampling: SamplingConfig::default(),
            floors: vec![],
            cases,
        }
    }

    fn measured(label: &str, subject: &str, cases: Vec<CaseResult>) -> Point {
        Point {
            commit: format!("{label}0000000000000000000000000000000"),
            label: label.into(),
            subject: subject.into(),
            status: PointStatus::Measured { cached: label == "aaaaaaa" },
            results: Some(run(cases)),
            pair: None,
        }
    }

    fn flat(v: f64) -> Vec<f64> {
        (0..10).map(|i| v * (1.0 + 0.001 * f64::from(i))).collect()
    }

    /// Four commits: a slower one, a build failure, a last one.
    pub(crate) fn synthetic() -> History {
        let ns = Unit::NsPerPacket;
        let ms = Unit::Milliseconds;
        let points = vec![
            measured("aaaaaaa", "first", vec![case("xdp__ip4", ns, flat(20.0), 100), case("load", ms, flat(3.0), 0)]),
            measured(
                "bbbbbbb",
                "Use <script>alert(1)</script> & \"friends\"",
                vec![case("xdp__ip4", ns, flat(25.0), 120), case("load", ms, vec![], 0)],
            ),
            Point {
                commit: "c".repeat(40),
                label: "ccccccc".into(),
                subject: "broken".into(),
                status: PointStatus::BuildFailed { reason: "cmake failed:\nerror: <missing> header foo.h".into() },
                results: None,
                pair: None,
            },
            measured("ddddddd", "last", vec![case("xdp__ip4", ns, flat(25.1), 120), case("load", ms, flat(3.1), 0)]),
        ];
        let estimate = RatioEstimate { ratio: 1.25, lo: 1.2, hi: 1.3, n: 10, level: 0.99 };
        // What `history::trend` chains: bbbbbbb against aaaaaaa (load failed there: its
        // chain breaks); ddddddd against bbbbbbb, the previous commit that built: the same
        // xdp program, flat.
        let start = TrendPoint { ratio: 1.0, lo: 1.0, hi: 1.0, identical: false };
        let slower = TrendPoint { ratio: 1.25, lo: 1.2, hi: 1.3, identical: false };
        let chain = vec![Some(start), Some(slower), None, Some(TrendPoint { identical: true, ..slower })];
        let trend = Trend {
            level: 0.99,
            suite: chain.clone(),
            cases: vec![
                CaseTrend { case: "xdp__ip4".into(), points: chain },
                CaseTrend { case: "load".into(), points: vec![Some(start), None, None, None] },
            ],
        };
        History {
            schema: crate::history::SCHEMA.into(),
            repo: "/src/bpfilter".into(),
            cases: vec!["xdp__ip4".into(), "load".into()],
            changes: vec![CaseChange {
                case: "xdp__ip4".into(),
                commit: "bbbbbbb".into(),
                subject: points[1].subject.clone(),
                change: HistoryChange { index: 1, estimate, change: Change::Slower },
                p_value: 0.001,
            }],
            points,
            threshold_pct: 2.0,
            trend,
            ..Default::default()
        }
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::super::escape("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        assert_eq!(super::super::escape("plain"), "plain");
        assert_eq!(case_id("a b/<c>"), "case-a-b--c-");
    }

    #[test]
    fn page_is_self_contained_and_complete() {
        let html = render_at(&synthetic(), "2026-11-25 12:00:00 +0000");
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<svg"));
        // Every SVG is closed, and one is drawn per case plus the overview.
        assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
        assert_eq!(html.matches("<svg").count(), 3);

        // No reference to the network: only the SVG namespace URI.
        let stripped = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(!stripped.contains("http://") && !stripped.contains("https://"), "external reference");
        // One script, the page's own (table sorting); the subject's is text.
        assert_eq!(html.matches("<script").count(), 1, "script tag leaked");
        assert!(!html.contains("<link") && !html.contains("src="));

        assert!(html.contains("Use &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;friends&quot;"));
        // The change: in the summary table and on the plot, in red.
        assert!(html.contains("<span class=\"badge slower\">slower</span>"));
        assert!(html.contains("<td class=\"num slower\" data-sort=\"25.0\"><b>+25.0\u{a0}%</b></td>"), "{html}");
        assert!(html.contains("[+20.0,\u{a0}+30.0] at 99&nbsp;%"));
        assert!(html.contains("fill=\"#c62828\""), "change point not highlighted on the plot");
        assert!(html.contains("href=\"#case-xdp__ip4\""));
        // The failures: the build's full reason (escaped), the case's reason.
        assert!(html.contains("<span class=\"badge failed\">build failed</span>"));
        assert!(html.contains("cmake failed:\nerror: &lt;missing&gt; header foo.h"));
        assert!(html.contains("load: wrong return value: 2"));
        // Header facts, units, the instruction count change.
        assert!(html.contains("<code>/src/bpfilter</code>"));
        assert!(html.contains("<dt>Commits</dt><dd>4 (3 measured, 1 of them from the cache; 1 build failed)</dd>"));
        assert!(html.contains("2026-11-25 12:00:00 +0000"));
        assert!(html.contains("<dt>Threshold</dt><dd>2 %"));
        assert!(html.contains(" ms (p05") && html.contains(" ns/pkt (p05"), "the runs' medians, in the tooltips");
        assert!(html.contains("Δ % (chained)") && html.contains("suite Δ % (chained)"));
        assert!(html.contains(">120</text>"), "instruction count change not labelled");
    }

    #[test]
    fn no_change_is_said() {
        let mut history = synthetic();
        history.changes.clear();
        let html = render_at(&history, "now");
        assert!(html.contains("No significant change."));
        assert!(!html.contains("fill=\"#c62828\""));
        // No single case, but the suite at one commit: said, and its table lists it.
        history.suite = vec![crate::history::SuiteChange {
            index: 1,
            commit: "bbbbbbb".into(),
            subject: "<b>slower</b>".into(),
            estimate: RatioEstimate { ratio: 1.03, lo: 1.02, hi: 1.04, n: 10, level: 0.99 },
            p_value: 0.001,
            change: Change::Slower,
        }];
        history.suite_level = 0.9833;
        let html = render_at(&history, "now");
        assert!(
            html.contains("No single case changed significantly; the suite did, at 1 commit(s) (below)."),
            "{html}"
        );
        assert!(html.contains("<h3 style=\"margin-top:14px\">Suite per commit</h3>"), "{html}");
        assert!(html.contains("at 98.33&nbsp;%") && html.contains("&lt;b&gt;slower&lt;/b&gt;"), "{html}");
        assert!(html.contains("<b>+3.0\u{a0}%</b>"), "{html}");
    }

    #[test]
    fn degenerate_histories_render() {
        let mut history = synthetic();
        history.points.truncate(0);
        history.changes.clear();
        assert!(render_at(&history, "now").contains("No significant change."));
        let mut history = synthetic();
        history.points.retain(|p| p.results.is_none());
        history.changes.clear();
        let html = render_at(&history, "now");
        assert!(html.contains("not measured at any commit"));
    }

    #[test]
    fn points_link_to_commits_on_known_forges_only() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        for (url, want) in [
            ("https://github.com/facebook/bpfilter.git", "https://github.com/facebook/bpfilter/commit/"),
            ("git@github.com:facebook/bpfilter.git", "https://github.com/facebook/bpfilter/commit/"),
            ("ssh://git@github.com/facebook/bpfilter", "https://github.com/facebook/bpfilter/commit/"),
            ("https://gitlab.com/group/sub/project/", "https://gitlab.com/group/sub/project/-/commit/"),
        ] {
            let links = forge_links(url).unwrap_or_else(|| panic!("{url}"));
            assert_eq!(links.url(sha).unwrap(), format!("{want}{sha}"), "{url}");
        }
        for url in [
            "/home/dev/bpfilter",
            "https://example.com/a/b",
            "https://github.com/a",
            "https://github.com/a/b\"onmouseover=\"x",
            "https://github.com/../../evil",
            "javascript:alert(1)//github.com/a/b",
            "git@github.com:a/b c",
        ] {
            assert_eq!(forge_links(url), None, "{url}");
        }
        // Only a hash makes a link.
        assert_eq!(forge_links("https://github.com/a/b").unwrap().url("wip"), None);
        // A real repository whose origin is on GitHub: the page links each commit and each point.
        let dir = tempfile::tempdir().unwrap();
        let git = git2::Repository::init(dir.path()).unwrap();
        git.remote("origin", "https://github.com/facebook/bpfilter.git").unwrap();
        let mut h = synthetic();
        h.repo = dir.path().display().to_string();
        let html = render_at(&h, "now");
        let link = "<a href=\"https://github.com/facebook/bpfilter/commit/bbbbbbb0000000000000000000000000000000\">";
        assert!(html.matches(link).count() >= 3, "table rows and plot points link to the commit");
    }

    #[test]
    fn the_plots_draw_the_trend_s_chains_and_nothing_else() {
        let h = synthetic();
        let html = render_at(&h, "now");
        // bbbbbbb: +25 % [+20, +30] since the first commit; ddddddd: the same, flat.
        assert!(html.contains("+25.0 % [+20.0, +30.0] (paired ratios chained)"), "{html}");
        assert!(html.contains("(paired ratios chained, same programs as its base commit: not timed)"));
        // `--all-parents`: a point chains from its base, not from the point drawn before it.
        // The page draws what `trend` says at each point, whatever the order of the points.
        let mut h = synthetic();
        h.trend.cases[0].points[3] = Some(TrendPoint { ratio: 0.9, lo: 0.85, hi: 0.95, identical: false });
        let html = render_at(&h, "now");
        assert!(html.contains("-10.0 % [-15.0, -5.0] (paired ratios chained)"), "{html}");
        // A history without a trend (older JSON) draws no chain, only the runs' medians.
        let mut h = synthetic();
        h.trend = Trend::default();
        let html = render_at(&h, "now");
        assert!(!html.contains("(paired ratios chained"), "{html}");
        assert!(html.contains("no paired ratio with the previous commit"));
    }

    /// A realistic history; written to `$BFPERF_HTML_SAMPLE` when set, e.g.
    /// `BFPERF_HTML_SAMPLE=/tmp/history-sample.html cargo test -p xtask history::html`.
    #[test]
    fn realistic_sample() {
        let mut rng = StdRng::seed_from_u64(7);
        let cases = [
            ("xdp__ip4_tcp_accept", "XDP: IPv4 TCP, accept", Unit::NsPerPacket, 18.0, 96),
            ("tc__ip6_set_1k", "TC: IPv6 set of 1024 addresses", Unit::NsPerPacket, 41.0, 230),
            ("nf__many_rules_256", "Netfilter: 256 rules", Unit::NsPerPacket, 310.0, 2900),
            ("load__1k_rules", "Chain load: 1024 rules", Unit::Milliseconds, 85.0, 0),
        ];
        let subjects = [
            "cgen: add a prologue helper",
            "build: bump the minimum libbpf version",
            "cgen: reorder the L3 header checks",
            "Merge pull request #412 from contributor/fix-sets",
            "cgen: <matcher> cache the IPv6 header offset",
            "tests: add e2e tests for sets",
            "core: refactor chain serialization",
            "cgen: inline the set lookup",
            "doc: fix the usage example",
            "cgen: jump table for many rules",
            "lib: rename bf_list helpers",
            "cgen: drop a redundant bounds check",
            "ci: run the benchmarks weekly",
            "cgen: revert \"inline the set lookup\"",
            "daemon: faster chain load",
            "cgen: avoid reloading skb->data",
            "misc: typo fixes",
            "cgen: use bpf_loop for long rule lists",
        ];
        // (commit, case, factor applied from this commit on)
        let steps = [(5, 0, 0.88), (7, 1, 0.8), (9, 2, 0.7), (13, 1, 1.25), (14, 3, 0.6), (15, 0, 1.06)];
        let mut points = vec![];
        for (i, subject) in subjects.iter().enumerate() {
            let label = format!("{:07x}", 0x1a2b3c4 + i * 0x111111);
            if i == 11 {
                points.push(Point {
                    commit: label.repeat(6)[..40].to_owned(),
                    label,
                    subject: (*subject).into(),
                    status: PointStatus::BuildFailed {
                        reason: "cannot build bfcli: cmake --build failed\n\nsrc/cgen/program.c:412:9: error: \
                                 implicit declaration of function 'bf_jmpctx_end'"
                            .into(),
                    },
                    results: None,
                    pair: None,
                });
                continue;
            }
            let results = cases
                .iter()
                .enumerate()
                .map(|(c, &(name, label, unit, base, insns))| {
                    let factor: f64 = steps.iter().filter(|s| s.1 == c && i >= s.0).map(|s| s.2).product();
                    let noise = if unit == Unit::Milliseconds { 0.05 } else { 0.015 };
                    let n = if unit == Unit::Milliseconds { 12 } else { 30 };
                    let samples: Vec<f64> = (0..n)
                        .map(|_| base * factor * (1.0 + noise * (rng.gen::<f64>() - 0.3).powi(3) * 8.0))
                        .collect();
                    let mut r = case(name, unit, samples, ((insns as f64) * factor.sqrt()).round() as u32);
                    r.label = label.into();
                    if unit == Unit::Milliseconds {
                        r.metrics = None;
                    }
                    if c == 2 && i == 3 {
                        r = case(name, unit, vec![], insns);
                    }
                    r
                })
                .collect();
            let mut p = measured(&label, subject, results);
            p.status = PointStatus::Measured { cached: i < 12 };
            points.push(p);
        }
        let mut history = History {
            schema: crate::history::SCHEMA.into(),
            repo: "/home/dev/bpfilter".into(),
            cases: cases.iter().map(|c| c.0.to_owned()).collect(),
            points,
            changes: vec![],
            threshold_pct: 2.0,
            ..Default::default()
        };
        // As `bench-history` does: each commit against the previous one that
        // built (here the samples are independent, paired by index), then chained
        // by `history::trend`.
        let mut comparisons: Vec<Option<(usize, Comparison)>> = vec![None; history.points.len()];
        let mut previous: Option<usize> = None;
        for (index, p) in history.points.iter().enumerate() {
            if p.results.is_none() {
                continue;
            }
            if let Some(base) = previous {
                let untouched = ["doc:", "ci:", "tests:", "misc:"].iter().any(|k| p.subject.starts_with(k))
                    && steps.iter().all(|s| s.0 != index);
                let mut cases = vec![];
                for case in &history.cases {
                    let (before, current) = (history.points[base].samples(case), p.samples(case));
                    let mut c = CaseComparison::new(case, Flavor::Xdp);
                    if before.is_empty() || current.is_empty() {
                        c.ref_status = Status::Failed { reason: "x".into() };
                        cases.push(c);
                        continue;
                    }
                    let estimate = paired_ratio(&before, &current, 0.99);
                    let change = classify(&estimate, history.threshold_pct);
                    if change != Change::NoChange && estimate.lo < estimate.hi {
                        history.changes.push(CaseChange {
                            case: case.clone(),
                            commit: p.label.clone(),
                            subject: p.subject.clone(),
                            change: HistoryChange { index, estimate, change },
                            p_value: 0.0,
                        });
                    }
                    c.estimate = Some(estimate);
                    c.same_program = Some(untouched);
                    cases.push(c);
                }
                // The suite geometric mean (its interval: the cases' bounds' geometric means).
                let measured: Vec<RatioEstimate> = cases.iter().filter_map(|c| c.estimate).collect();
                let g = |f: fn(&RatioEstimate) -> f64| {
                    (measured.iter().map(|e| f(e).ln()).sum::<f64>() / measured.len() as f64).exp()
                };
                let geomean =
                    RatioEstimate { ratio: g(|e| e.ratio), lo: g(|e| e.lo), hi: g(|e| e.hi), n: 30, level: 0.99 };
                let side = |label: &str| SideInfo { label: label.into(), source: Default::default() };
                let comparison = Comparison {
                    schema: bench_harness::engine::SCHEMA.into(),
                    harness_version: HARNESS_VERSION.into(),
                    started_at: String::new(),
                    wall_time_s: 0.0,
                    host: HostInfo::current(),
                    base: side(&history.points[base].label),
                    reference: side(&p.label),
                    same_build: false,
                    config: CompareConfig::default(),
                    cases,
                    geomean: Some(geomean),
                };
                comparisons[index] = Some((base, comparison));
            }
            previous = Some(index);
        }
        let pairs: Vec<Option<(usize, &Comparison)>> =
            comparisons.iter().map(|c| c.as_ref().map(|(base, c)| (*base, c))).collect();
        history.trend = crate::history::trend::chain(&history.cases, &pairs, Some(0), 0.99);
        // The synthetic steps are found where they were made.
        assert!(history.changes.iter().any(|c| c.case == "nf__many_rules_256" && c.change.index == 9));
        let html = render(&history);
        assert_eq!(html.matches("<svg").count(), cases.len() + 1);
        if let Some(path) = std::env::var_os("BFPERF_HTML_SAMPLE") {
            std::fs::write(path, html).unwrap();
        }
    }
}
