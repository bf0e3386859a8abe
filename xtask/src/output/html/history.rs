//! bench-history's page: the `history.html` template (one offline file),
//! the significant changes, the commits, and per case a plot over the
//! commits ([`svg::series`]). Commit subjects, case names and build errors
//! are escaped by the template; the plots escape their own text.
//!
//! Each point links to its commit's page when the repository's `origin` is
//! on a known forge ([`commit_links`]), and shows the plain hash otherwise.

use super::{case_id, flag_words, safe, Templates};
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

/// Per point: geometric mean over cases of median / median at the first
/// measured commit, over the cases measured at both, with their count.
fn geomeans(history: &History) -> Vec<Option<(f64, usize)>> {
    let reference = history.points.iter().find(|p| history.cases.iter().any(|c| median(p, c).is_some()));
    history
        .points
        .iter()
        .map(|p| {
            let reference = reference?;
            let logs: Vec<f64> =
                history.cases.iter().filter_map(|c| Some((median(p, c)? / median(reference, c)?).ln())).collect();
            (!logs.is_empty()).then(|| ((logs.iter().sum::<f64>() / logs.len() as f64).exp(), logs.len()))
        })
        .collect()
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

    let means = geomeans(history);
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
                (Some((ratio, n)), _) => {
                    let v = (ratio - 1.0) * 100.0;
                    svg::Slot::Value(svg::Mark {
                        mid: v,
                        lo: v,
                        hi: v,
                        tip: format!("{} {}\n{} vs the first measured commit ({n} cases)", p.label, p.subject, pct(v)),
                        href: url(&p.commit),
                    })
                }
                (None, _) => svg::Slot::Empty,
            })
            .collect();
        let plot = svg::Plot {
            labels: &labels,
            slots,
            y_title: "geomean Δ %".into(),
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
            let (failed, reason) = match &p.status {
                PointStatus::BuildFailed { reason } => (true, reason.as_str()),
                PointStatus::Measured { .. } => (false, ""),
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
                reason_line => first_line(reason, 80),
                reason,
                state => if p.status == (PointStatus::Measured { cached: true }) { "cached" } else { "measured" },
                same => false,
                case_failures,
                geomean => mean.map(|(r, _)| fmt_pct((r - 1.0) * 100.0)),
                geomean_sort => mean.map(|(r, _)| (r - 1.0) * 100.0).unwrap_or(f64::NAN).to_string(),
                geomean_n => mean.map(|(_, n)| n),
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
        overall,
        overall_note => "Geometric mean over cases of the median relative to the first measured commit (cases measured at both), in %.",
        geomean_head => "Geomean vs first",
        geomean_title => "Geometric mean of the case medians relative to the first measured commit",
        points,
        cases,
        cases_note => "Each commit's values come from its paired run with the previous commit that built, and the verdicts from those paired comparisons: a shift between two runs without a verdict is run-to-run noise.",
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
    let summary = match (medians.first(), medians.last()) {
        (Some((fi, first)), Some((li, last))) => Some(format!(
            "Median {} {unit} at {}, {} {unit} at {} ({}).",
            num(*first),
            history.points[*fi].label,
            num(*last),
            history.points[*li].label,
            fmt_pct((last / first - 1.0) * 100.0)
        )),
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
    for p in &history.points {
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
                let tip = format!(
                    "{head}\nmedian {} {unit} (p05 {}, p95 {}, n = {})",
                    num(s.median),
                    num(s.p05),
                    num(s.p95),
                    s.n
                );
                let metric = metrics.map(|m| {
                    let tip = format!(
                        "{head}\n{} xlated instructions, {} JITed bytes, {} verified instructions",
                        m.xlated_insns, m.jited_bytes, m.verified_insns
                    );
                    (f64::from(m.xlated_insns), tip)
                });
                let mark = svg::Mark { mid: s.median, lo: s.p05, hi: s.p95, tip, href: url(&p.commit) };
                (svg::Slot::Value(mark), metric)
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
    let plot = svg::Plot { labels, slots, y_title: format!("median {unit}"), highlights, secondary, zero_line: false };
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
    use crate::history::HistoryChange;
    use bench_harness::engine::classify;
    use bench_harness::flavor::{Flavor, Hook};
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
            name: name.into(),
            label: format!("{name} label"),
            hook: Hook::Xdp,
            flavor: Flavor::Xdp,
            packet: (unit == Unit::NsPerPacket).then_some(PacketKind::LocalIp6Tcp),
            flags: Flags { userspace_only: unit == Unit::Milliseconds, ..Flags::default() },
            status,
            unit,
            repeat: Some(1000),
            retval: Some(2),
            summary: Summary::of(&samples),
            samples,
            metrics: Some(ProgramMetrics { xlated_insns: insns, jited_bytes: insns * 6, verified_insns: insns + 3 }),
            floor_ns: None,
            load_ms: None,
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
            },
            measured("ddddddd", "last", vec![case("xdp__ip4", ns, flat(25.1), 120), case("load", ms, flat(3.1), 0)]),
        ];
        let estimate = RatioEstimate { ratio: 1.25, lo: 1.2, hi: 1.3, n: 10, level: 0.99 };
        History {
            schema: crate::history::SCHEMA.into(),
            repo: "/src/bpfilter".into(),
            cases: vec!["xdp__ip4".into(), "load".into()],
            changes: vec![CaseChange {
                case: "xdp__ip4".into(),
                commit: "bbbbbbb".into(),
                subject: points[1].subject.clone(),
                change: HistoryChange { index: 1, estimate, change: Change::Slower },
            }],
            points,
            threshold_pct: 2.0,
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
        assert!(html.contains("median ms") && html.contains("median ns/pkt"));
        assert!(html.contains(">120</text>"), "instruction count change not labelled");
    }

    #[test]
    fn no_change_is_said() {
        let mut history = synthetic();
        history.changes.clear();
        let html = render_at(&history, "now");
        assert!(html.contains("No significant change."));
        assert!(!html.contains("fill=\"#c62828\""));
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
    fn geomean_is_relative_to_first_measured_commit() {
        let means = geomeans(&synthetic());
        assert_eq!(means[0], Some((1.0, 2)));
        // bbbbbbb: only xdp__ip4 (load failed); median 25 / 20 (medians of
        // `flat` scale with their first value).
        let (ratio, n) = means[1].unwrap();
        assert!((ratio - 1.25).abs() < 1e-9 && n == 1);
        assert_eq!(means[2], None);
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
        };
        // As `bench-history` does: each commit against the previous one that
        // built (here the samples are independent, paired by index).
        for case in history.cases.clone() {
            let mut previous: Option<Vec<f64>> = None;
            for (index, p) in history.points.iter().enumerate() {
                if p.results.is_none() {
                    continue;
                }
                let current = p.samples(&case);
                if let Some(before) = previous.as_ref().filter(|b| !b.is_empty() && !current.is_empty()) {
                    let estimate = paired_ratio(before, &current, 0.99);
                    let change = classify(&estimate, history.threshold_pct);
                    if change != Change::NoChange && estimate.lo < estimate.hi {
                        history.changes.push(CaseChange {
                            case: case.clone(),
                            commit: p.label.clone(),
                            subject: p.subject.clone(),
                            change: HistoryChange { index, estimate, change },
                        });
                    }
                }
                previous = Some(current);
            }
        }
        // The synthetic steps are found where they were made.
        assert!(history.changes.iter().any(|c| c.case == "nf__many_rules_256" && c.change.index == 9));
        let html = render(&history);
        assert_eq!(html.matches("<svg").count(), cases.len() + 1);
        if let Some(path) = std::env::var_os("BFPERF_HTML_SAMPLE") {
            std::fs::write(path, html).unwrap();
        }
    }
}
