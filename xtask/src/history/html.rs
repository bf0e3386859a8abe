//! The self-contained HTML report of a history.
//!
//! One file, readable offline: inline CSS, no script, no font or image
//! fetched from anywhere. The plots are inline SVG written by hand (the
//! [`svg`] module below) rather than with a plotting crate: plotters' SVG
//! backend needs a font backend (`ttf`/`ab_glyph`, with system fonts or an
//! embedded font file) just to measure the axis labels it lays out, while an
//! SVG `<text>` element lets the browser pick and size the font itself. The
//! plots need only lines, rectangles, circles and text, so a hundred lines of
//! SVG are simpler than the dependency, and the output is deterministic.
//!
//! All text that comes from commits, cases or errors goes through [`escape`].

use super::{CaseChange, History, Point, PointStatus};
use bench_harness::engine::Change;
use bench_harness::program::ProgramMetrics;
use bench_harness::results::{CaseResult, Status, Unit};
use bench_harness::stats::Summary;

use crate::html::{escape, put};

/// Render `history` as one HTML page with inline SVG plots (no network needed).
pub fn render(history: &History) -> String {
    let generated = chrono::Local::now().format("%Y-%m-%d %H:%M:%S %z").to_string();
    render_at(history, &generated)
}

/// [`render`] with a given generation date (tests).
fn render_at(history: &History, generated: &str) -> String {
    let labels: Vec<String> = history.points.iter().map(|p| p.label.clone()).collect();
    let mut out = String::with_capacity(64 * 1024);
    let title = format!("bfperf history — {}", history.repo);
    put!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        escape(&title)
    );
    header(&mut out, history, generated);
    summary(&mut out, history, &labels);
    commits(&mut out, history);
    cases(&mut out, history, &labels);
    out.push_str("</body>\n</html>\n");
    out
}

/// Inline style sheet.
const CSS: &str = r#"
:root { --slower: #c62828; --faster: #2e7d32; --line: #1f5fa8; --insns: #7b4fa0; --failed: #9e9e9e; --casefail: #ef6c00; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #222; margin: 0 auto; padding: 0 24px 48px; max-width: 1200px; }
h1 { font-size: 22px; margin: 20px 0 8px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 0 0 2px; }
h3 small, .muted { color: #666; font-weight: normal; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl.meta dt { color: #666; } dl.meta dd { margin: 0; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eee; vertical-align: top; }
th { background: #f5f5f5; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.failed td { background: #fafafa; color: #666; }
.badge { display: inline-block; padding: 0 6px; border-radius: 3px; font-size: 12px; font-weight: 600; color: #fff; white-space: nowrap; }
.badge.slower { background: var(--slower); color: #fff; } .badge.faster { background: var(--faster); color: #fff; }
.badge.failed { background: var(--failed); } .badge.cached { background: #90a4ae; } .badge.measured { background: #546e7a; }
.slower { color: var(--slower); } .faster { color: var(--faster); }
a { color: inherit; } a.case { color: var(--line); }
details summary { cursor: pointer; }
details pre { white-space: pre-wrap; word-break: break-word; max-height: 320px; overflow: auto; background: #f7f7f7;
  border: 1px solid #e5e5e5; padding: 6px 8px; margin: 4px 0; font-size: 12px; }
.none { padding: 8px 12px; background: #f1f8e9; border-left: 4px solid var(--faster); }
.case { margin: 18px 0 26px; }
.case p { margin: 2px 0 4px; }
svg.plot { width: 100%; height: auto; display: block; }
svg.plot text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 18px; font-size: 12.5px; color: #444; margin: 6px 0 10px; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
.sw { display: inline-block; width: 18px; height: 10px; }
.sw.line { height: 0; border-top: 2px solid var(--line); }
.sw.band { background: var(--line); opacity: .2; }
.sw.insns { height: 0; border-top: 2px solid var(--insns); }
.sw.bfail { background: var(--failed); opacity: .35; }
.sw.dot { width: 10px; border-radius: 50%; }
.nw { white-space: nowrap; }
.toc { columns: 3 260px; font-size: 13px; margin: 4px 0 8px; padding-left: 18px; }
"#;

/// An HTML id for a case's section (letters, digits, `-` and `_` only).
fn case_id(case: &str) -> String {
    let safe: String =
        case.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    format!("case-{safe}")
}

/// A value with about 3–4 significant digits.
fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// A signed percentage, e.g. `+5.2 %` (with a no-break space).
fn fmt_pct(v: f64) -> String {
    format!("{v:+.1}\u{a0}%")
}

/// A confidence interval in %, or why there is none.
fn fmt_ci(lo: f64, hi: f64) -> String {
    if lo == hi {
        "none (too few samples)".to_owned()
    } else {
        format!("[{}, {}]", fmt_pct(lo), fmt_pct(hi))
    }
}

fn unit_str(unit: Unit) -> &'static str {
    match unit {
        Unit::NsPerPacket => "ns/pkt",
        Unit::Milliseconds => "ms",
    }
}

fn change_class(change: Change) -> &'static str {
    match change {
        Change::Slower => "slower",
        Change::Faster => "faster",
        Change::NoChange => "",
    }
}

fn change_word(change: Change) -> &'static str {
    match change {
        Change::Slower => "slower",
        Change::Faster => "faster",
        Change::NoChange => "no change",
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

fn header(out: &mut String, history: &History, generated: &str) {
    let total = history.points.len();
    let failed = history.points.iter().filter(|p| matches!(p.status, PointStatus::BuildFailed { .. })).count();
    let cached = history.points.iter().filter(|p| p.status == PointStatus::Measured { cached: true }).count();
    put!(out, "<header>\n<h1>bfperf history</h1>\n<dl class=\"meta\">\n");
    put!(out, "<dt>Repository</dt><dd><code>{}</code></dd>\n", escape(&history.repo));
    put!(
        out,
        "<dt>Commits</dt><dd>{total} ({} measured, {cached} of them from the cache; {failed} build failed)</dd>\n",
        total - failed
    );
    if let (Some(first), Some(last)) = (history.points.first(), history.points.last()) {
        put!(
            out,
            "<dt>Range</dt><dd><code>{}</code> … <code>{}</code> (oldest first)</dd>\n",
            escape(&first.label),
            escape(&last.label)
        );
    }
    if let Some(r) = history.points.iter().find_map(|p| p.results.as_ref()) {
        put!(
            out,
            "<dt>Host</dt><dd>{} — {} ({} CPUs), kernel {}</dd>\n",
            escape(&r.host.hostname),
            escape(&r.host.cpu_model),
            r.host.cpus,
            escape(&r.host.kernel)
        );
    }
    put!(out, "<dt>Cases</dt><dd>{}</dd>\n", history.cases.len());
    put!(
        out,
        "<dt>Threshold</dt><dd>{} % (each commit is compared with the previous commit that built; a change is \
         reported when its confidence interval excludes no change and its size reaches the threshold)</dd>\n",
        history.threshold_pct
    );
    put!(out, "<dt>Generated</dt><dd>{}</dd>\n</dl>\n</header>\n", escape(generated));
}

/// Changes sorted by commit, then suite order.
fn sorted_changes(history: &History) -> Vec<&CaseChange> {
    let order = |case: &str| history.cases.iter().position(|c| c == case).unwrap_or(usize::MAX);
    let mut changes: Vec<&CaseChange> = history.changes.iter().collect();
    changes.sort_by_key(|c| (c.change.index, order(&c.case)));
    changes
}

fn summary(out: &mut String, history: &History, labels: &[String]) {
    put!(out, "<section id=\"summary\">\n<h2>Significant changes</h2>\n");
    let changes = sorted_changes(history);
    if changes.is_empty() {
        put!(out, "<p class=\"none\">No significant change.</p>\n");
    } else {
        let slower = changes.iter().filter(|c| c.change.change == Change::Slower).count();
        put!(
            out,
            "<p>{} change(s): <span class=\"slower\">{slower} slower</span>, \
             <span class=\"faster\">{} faster</span>.</p>\n",
            changes.len(),
            changes.len() - slower
        );
        put!(
            out,
            "<table>\n<thead><tr><th>Verdict</th><th>Case</th><th>Commit</th><th>Subject</th>\
             <th class=\"num\">Δ</th><th class=\"num\">Confidence interval</th></tr></thead>\n<tbody>\n"
        );
        for c in changes {
            let est = &c.change.estimate;
            let (lo, hi) = est.ci_pct();
            let class = change_class(c.change.change);
            put!(
                out,
                "<tr><td><span class=\"badge {class}\">{}</span></td>\
                 <td><a class=\"case\" href=\"#{}\">{}</a></td><td><code>{}</code></td><td>{}</td>\
                 <td class=\"num {class}\"><b>{}</b></td><td class=\"num\">{} at {:.0}\u{a0}%</td></tr>\n",
                change_word(c.change.change),
                case_id(&c.case),
                escape(&c.case),
                escape(&c.commit),
                escape(&c.subject),
                fmt_pct(est.delta_pct()),
                fmt_ci(lo, hi),
                est.level * 100.0
            );
        }
        put!(out, "</tbody>\n</table>\n");
    }
    // Overview: geometric mean of the case medians along the history.
    let means = geomeans(history);
    if means.iter().flatten().count() > 1 {
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
                    let pct = (ratio - 1.0) * 100.0;
                    svg::Slot::Value(svg::Mark {
                        mid: pct,
                        lo: pct,
                        hi: pct,
                        tip: format!(
                            "{} {}\n{} vs the first measured commit ({n} cases)",
                            p.label,
                            p.subject,
                            fmt_pct(pct)
                        ),
                    })
                }
                (None, _) => svg::Slot::Empty,
            })
            .collect();
        let highlights = commit_highlights(history);
        let plot =
            svg::Plot { labels, slots, y_title: "geomean Δ %".into(), highlights, secondary: None, zero_line: true };
        put!(
            out,
            "<h3 style=\"margin-top:14px\">Overall</h3>\n<p class=\"muted\">Geometric mean over cases of the \
             median relative to the first measured commit (cases measured at both), in %. Coloured commits \
             have at least one significant change (red: a slowdown, green: only speedups).</p>\n{}",
            svg::render(&plot)
        );
    }
    put!(out, "</section>\n");
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

fn commits(out: &mut String, history: &History) {
    let means = geomeans(history);
    put!(
        out,
        "<section id=\"commits\">\n<h2>Commits</h2>\n<table>\n<thead><tr><th class=\"num\">#</th><th>Commit</th>\
         <th>Subject</th><th>Status</th><th class=\"num\" title=\"Geometric mean of the case medians relative to \
         the first measured commit\">Geomean vs first</th><th>Changes</th></tr></thead>\n<tbody>\n"
    );
    for (i, (p, mean)) in history.points.iter().zip(&means).enumerate() {
        let failed = matches!(p.status, PointStatus::BuildFailed { .. });
        put!(
            out,
            "<tr{}><td class=\"num\">{i}</td><td><code title=\"{}\">{}</code></td><td>{}</td><td>",
            if failed { " class=\"failed\"" } else { "" },
            escape(&p.commit),
            escape(&p.label),
            escape(&p.subject)
        );
        match &p.status {
            PointStatus::BuildFailed { reason } => put!(
                out,
                "<details><summary><span class=\"badge failed\">build failed</span> {}</summary><pre>{}</pre></details>",
                escape(&first_line(reason, 80)),
                escape(reason)
            ),
            PointStatus::UnsupportedTree { reason } => put!(
                out,
                "<span class=\"badge failed\">unsupported tree</span> {}",
                escape(&first_line(reason, 200))
            ),
            PointStatus::Measured { cached } => {
                let (class, word) = if *cached { ("cached", "cached") } else { ("measured", "measured") };
                put!(out, "<span class=\"badge {class}\">{word}</span>");
                let failures: Vec<(&str, &str)> = history
                    .cases
                    .iter()
                    .filter_map(|c| match cell(p, c) {
                        Cell::CaseFailed(reason) => Some((c.as_str(), reason)),
                        _ => None,
                    })
                    .collect();
                if !failures.is_empty() {
                    put!(out, "<details><summary>{} case(s) failed</summary><pre>", failures.len());
                    for (case, reason) in failures {
                        put!(out, "{}: {}\n", escape(case), escape(reason));
                    }
                    put!(out, "</pre></details>");
                }
            }
        }
        put!(out, "</td><td class=\"num\">");
        match mean {
            Some((ratio, n)) => put!(
                out,
                "<span title=\"{n} of {} cases\">{}</span>",
                history.cases.len(),
                fmt_pct((ratio - 1.0) * 100.0)
            ),
            None => put!(out, "—"),
        }
        put!(out, "</td><td>");
        for c in history.changes.iter().filter(|c| c.change.index == i) {
            let class = change_class(c.change.change);
            put!(
                out,
                "<span class=\"nw\"><a class=\"case\" href=\"#{}\">{}</a> <span class=\"{class}\">{}</span></span><br>",
                case_id(&c.case),
                escape(&c.case),
                fmt_pct(c.change.estimate.delta_pct())
            );
        }
        put!(out, "</td></tr>\n");
    }
    put!(out, "</tbody>\n</table>\n</section>\n");
}

fn cases(out: &mut String, history: &History, labels: &[String]) {
    put!(out, "<section id=\"cases\">\n<h2>Cases</h2>\n<ul class=\"toc\">\n");
    for case in &history.cases {
        put!(out, "<li><a class=\"case\" href=\"#{}\">{}</a>", case_id(case), escape(case));
        for c in history.changes.iter().filter(|c| &c.case == case) {
            let class = change_class(c.change.change);
            put!(out, " <span class=\"{class}\">{}</span>", fmt_pct(c.change.estimate.delta_pct()));
        }
        put!(out, "</li>\n");
    }
    put!(
        out,
        "</ul>\n<div class=\"legend\"><span><i class=\"sw line\"></i>median</span>\
         <span><i class=\"sw band\"></i>p05–p95</span><span><i class=\"sw insns\"></i>xlated instructions</span>\
         <span><i class=\"sw bfail\"></i>build failed</span>\
         <span><b style=\"color:var(--casefail)\">×</b>case failed or unsupported</span>\
         <span><i class=\"sw dot\" style=\"background:var(--slower)\"></i>significantly slower</span>\
         <span><i class=\"sw dot\" style=\"background:var(--faster)\"></i>significantly faster</span></div>\n\
         <p class=\"muted\">Each commit's values come from its paired run with the previous commit that \
         built, and the verdicts from those paired comparisons: a shift between two runs without a verdict \
         is run-to-run noise. Hover a point for its values.</p>\n"
    );
    for case in &history.cases {
        case_section(out, history, case, labels);
    }
    put!(out, "</section>\n");
}

fn case_section(out: &mut String, history: &History, case: &str, labels: &[String]) {
    let results: Vec<&CaseResult> = history.points.iter().filter_map(|p| case_result(p, case)).collect();
    let label = results.iter().rev().map(|r| r.label.as_str()).find(|l| *l != case).unwrap_or("");
    let unit = unit_str(results.last().map_or(Unit::NsPerPacket, |r| r.unit));
    put!(
        out,
        "<div class=\"case\" id=\"{}\">\n<h3>{} <small>{}{unit}</small></h3>\n",
        case_id(case),
        escape(case),
        if label.is_empty() { String::new() } else { format!("{} · ", escape(label)) }
    );
    let medians: Vec<(usize, f64)> =
        history.points.iter().enumerate().filter_map(|(i, p)| Some((i, median(p, case)?))).collect();
    if let (Some((fi, first)), Some((li, last))) = (medians.first(), medians.last()) {
        put!(
            out,
            "<p class=\"muted\">Median {} {unit} at <code>{}</code>, {} {unit} at <code>{}</code> ({}).",
            fmt_value(*first),
            escape(&history.points[*fi].label),
            fmt_value(*last),
            escape(&history.points[*li].label),
            fmt_pct((last / first - 1.0) * 100.0)
        );
        for c in history.changes.iter().filter(|c| c.case == case) {
            let (lo, hi) = c.change.estimate.ci_pct();
            put!(
                out,
                " <span class=\"{}\"><b>{}</b> {} {} at <code>{}</code>.</span>",
                change_class(c.change.change),
                change_word(c.change.change),
                fmt_pct(c.change.estimate.delta_pct()),
                fmt_ci(lo, hi),
                escape(&c.commit)
            );
        }
        put!(out, "</p>\n");
    }

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
                    fmt_value(s.median),
                    fmt_value(s.p05),
                    fmt_value(s.p95),
                    s.n
                );
                let metric = metrics.map(|m| {
                    let tip = format!(
                        "{head}\n{} xlated instructions, {} JITed bytes, {} verified instructions",
                        m.xlated_insns, m.jited_bytes, m.verified_insns
                    );
                    (f64::from(m.xlated_insns), tip)
                });
                (svg::Slot::Value(svg::Mark { mid: s.median, lo: s.p05, hi: s.p95, tip }), metric)
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
                    fmt_pct(c.change.estimate.delta_pct()),
                    fmt_ci(lo, hi)
                ),
                count: 1,
            }
        })
        .collect();
    let secondary =
        insns.iter().any(Option::is_some).then(|| svg::Secondary { title: "xlated insns".into(), values: insns });
    let plot = svg::Plot { labels, slots, y_title: format!("median {unit}"), highlights, secondary, zero_line: false };
    put!(out, "{}</div>\n", svg::render(&plot));
}

/// Hand-written SVG line plots over commits (see the module documentation
/// for why not a plotting crate).
///
/// Layout, in viewBox units (the SVG scales to the page width): a main panel
/// (median line, p05–p95 band, markers), an optional secondary panel below
/// it sharing the x axis (a step line, e.g. instruction counts), and the
/// commit labels under the last panel, rotated. Commit `i` is drawn at the
/// centre of slot `i` of `n` equal slots, so failed commits keep their place
/// and show as gaps.
mod svg {
    use crate::html::{escape, nice_step, put, AXIS, GRID, LINE};
    use bench_harness::engine::Change;

    /// A measured value with its spread.
    pub struct Mark {
        pub mid: f64,
        pub lo: f64,
        pub hi: f64,
        /// Tooltip (raw text, escaped when drawn).
        pub tip: String,
    }

    /// What to draw at one commit.
    pub enum Slot {
        Value(Mark),
        /// The commit did not build (tooltip).
        BuildFailed(String),
        /// The value failed at this commit (tooltip).
        CaseFailed(String),
        /// Nothing to show.
        Empty,
    }

    /// A significant change at a commit.
    pub struct Highlight {
        pub index: usize,
        pub change: Change,
        /// Short annotation drawn above the plot.
        pub text: String,
        pub tip: String,
        /// Changes merged into this highlight.
        pub count: usize,
    }

    /// A second panel: one optional value (with tooltip) per commit.
    pub struct Secondary {
        pub title: String,
        pub values: Vec<Option<(f64, String)>>,
    }

    pub struct Plot<'a> {
        /// Commit labels, one per slot.
        pub labels: &'a [String],
        pub slots: Vec<Slot>,
        pub y_title: String,
        pub highlights: Vec<Highlight>,
        pub secondary: Option<Secondary>,
        /// Draw a darker line at y = 0.
        pub zero_line: bool,
    }

    const WIDTH: f64 = 1000.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 14.0;
    /// Two rows of change annotations.
    const TOP: f64 = 30.0;
    const MAIN_H: f64 = 200.0;
    const GAP: f64 = 14.0;
    const SECOND_H: f64 = 64.0;
    const LABELS_H: f64 = 58.0;

    const INSNS: &str = "#7b4fa0";
    const FAILED: &str = "#9e9e9e";
    const CASE_FAILED: &str = "#ef6c00";
    const TEXT: &str = "#555";

    fn color(change: Change) -> &'static str {
        match change {
            Change::Slower => "#c62828",
            Change::Faster => "#2e7d32",
            Change::NoChange => AXIS,
        }
    }

    /// A y axis: the range it covers and its tick step.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct Axis {
        pub lo: f64,
        pub hi: f64,
        pub step: f64,
    }

    impl Axis {
        /// An axis covering `lo..=hi` with about `ticks` round ticks.
        pub fn new(lo: f64, hi: f64, ticks: usize, integer: bool) -> Self {
            let (mut lo, mut hi) = (lo, hi);
            if !(lo.is_finite() && hi.is_finite()) {
                (lo, hi) = (0.0, 1.0);
            }
            if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
                let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.05 };
                (lo, hi) = (lo - pad, hi + pad);
            } else {
                // A little air so that the data does not touch the frame.
                let pad = (hi - lo) * 0.04;
                (lo, hi) = (lo - pad, hi + pad);
            }
            let mut step = nice_step((hi - lo) / ticks.max(1) as f64);
            if integer {
                step = step.ceil().max(1.0);
            }
            Axis { lo: (lo / step).floor() * step, hi: (hi / step).ceil() * step, step }
        }

        fn ticks(&self) -> Vec<f64> {
            let count = ((self.hi - self.lo) / self.step + 1e-6).floor() as usize;
            (0..=count).map(|k| self.lo + k as f64 * self.step).collect()
        }

        /// Tick label: as many decimals as the step needs.
        fn label(&self, v: f64) -> String {
            let decimals = (-self.step.log10().floor()).clamp(0.0, 6.0) as usize;
            let v = if v.abs() < self.step * 1e-9 { 0.0 } else { v };
            format!("{v:.decimals$}")
        }
    }

    /// A vertical panel: its top, height and axis.
    struct Panel {
        top: f64,
        height: f64,
        axis: Axis,
    }

    impl Panel {
        fn y(&self, v: f64) -> f64 {
            self.top + (self.axis.hi - v) / (self.axis.hi - self.axis.lo) * self.height
        }

        fn bottom(&self) -> f64 {
            self.top + self.height
        }

        /// Frame, grid, tick labels and rotated title.
        fn draw_frame(&self, out: &mut String, title: &str, zero_line: bool) {
            let right = WIDTH - RIGHT;
            for t in self.axis.ticks() {
                let y = self.y(t);
                put!(
                    out,
                    "<line x1=\"{LEFT}\" x2=\"{right}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{GRID}\"/>\
                     <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"{TEXT}\">{}</text>\n",
                    LEFT - 6.0,
                    y + 4.0,
                    self.axis.label(t)
                );
            }
            if zero_line && self.axis.lo < 0.0 && self.axis.hi > 0.0 {
                let y = self.y(0.0);
                put!(out, "<line x1=\"{LEFT}\" x2=\"{right}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{AXIS}\"/>\n");
            }
            put!(
                out,
                "<rect x=\"{LEFT}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"{AXIS}\"/>\n",
                self.top,
                right - LEFT,
                self.height
            );
            let cy = self.top + self.height / 2.0;
            put!(
                out,
                "<text transform=\"translate(14 {cy:.1}) rotate(-90)\" font-size=\"11.5\" text-anchor=\"middle\" \
                 fill=\"{TEXT}\">{}</text>\n",
                escape(title)
            );
        }
    }

    /// Runs of consecutive indices where `present` holds.
    fn runs(n: usize, present: impl Fn(usize) -> bool) -> Vec<std::ops::Range<usize>> {
        let mut out = vec![];
        let mut start = None;
        for i in 0..=n {
            match (i < n && present(i), start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    out.push(s..i);
                    start = None;
                }
                _ => {}
            }
        }
        out
    }

    /// The plot as an `<svg>` element.
    pub fn render(plot: &Plot) -> String {
        let n = plot.labels.len().max(1);
        let slot_w = (WIDTH - LEFT - RIGHT) / n as f64;
        let x = |i: usize| LEFT + (i as f64 + 0.5) * slot_w;
        let r = (slot_w * 0.22).clamp(1.6, 3.5);

        let values: Vec<&Mark> =
            plot.slots.iter().filter_map(|s| if let Slot::Value(m) = s { Some(m) } else { None }).collect();
        let lo = values.iter().map(|m| m.lo.min(m.mid)).fold(f64::INFINITY, f64::min);
        let hi = values.iter().map(|m| m.hi.max(m.mid)).fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if plot.zero_line { (lo.min(0.0), hi.max(0.0)) } else { (lo, hi) };
        let main = Panel { top: TOP, height: MAIN_H, axis: Axis::new(lo, hi, 5, false) };
        let second = plot.secondary.as_ref().map(|s| {
            let lo = s.values.iter().flatten().map(|v| v.0).fold(f64::INFINITY, f64::min);
            let hi = s.values.iter().flatten().map(|v| v.0).fold(f64::NEG_INFINITY, f64::max);
            (Panel { top: main.bottom() + GAP, height: SECOND_H, axis: Axis::new(lo, hi, 2, true) }, s)
        });
        let plots_bottom = second.as_ref().map_or(main.bottom(), |(p, _)| p.bottom());
        let height = plots_bottom + LABELS_H;

        let mut out = String::with_capacity(16 * 1024);
        put!(
            out,
            "<svg class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height:.0}\" \
             role=\"img\" aria-label=\"{}\">\n",
            escape(&plot.y_title)
        );

        // Backgrounds first: failed commits and changes span every panel.
        for (i, slot) in plot.slots.iter().enumerate() {
            if let Slot::BuildFailed(tip) = slot {
                put!(
                    out,
                    "<rect x=\"{:.1}\" y=\"{TOP}\" width=\"{slot_w:.1}\" height=\"{:.1}\" fill=\"{FAILED}\" \
                     fill-opacity=\"0.28\"><title>{}</title></rect>\n",
                    x(i) - slot_w / 2.0,
                    plots_bottom - TOP,
                    escape(tip)
                );
            }
        }
        for h in &plot.highlights {
            put!(
                out,
                "<rect x=\"{:.1}\" y=\"{TOP}\" width=\"{slot_w:.1}\" height=\"{:.1}\" fill=\"{}\" fill-opacity=\"0.13\"/>\n",
                x(h.index) - slot_w / 2.0,
                plots_bottom - TOP,
                color(h.change)
            );
        }

        main.draw_frame(&mut out, &plot.y_title, plot.zero_line);
        if values.is_empty() {
            put!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13\" text-anchor=\"middle\" fill=\"{TEXT}\">\
                 not measured at any commit</text>\n",
                (LEFT + WIDTH - RIGHT) / 2.0,
                main.top + main.height / 2.0
            );
        }

        // p05–p95 band and median line, broken at gaps.
        let mark = |i: usize| match plot.slots.get(i) {
            Some(Slot::Value(m)) => Some(m),
            _ => None,
        };
        for run in runs(plot.slots.len(), |i| mark(i).is_some()) {
            let marks: Vec<(usize, &Mark)> = run.clone().filter_map(|i| Some((i, mark(i)?))).collect();
            if marks.len() == 1 {
                let (i, m) = marks[0];
                put!(
                    out,
                    "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\" stroke=\"{LINE}\" stroke-opacity=\"0.45\" \
                     stroke-width=\"{3:.1}\"/>\n",
                    x(i),
                    main.y(m.lo),
                    main.y(m.hi),
                    (r * 1.2).max(1.5)
                );
                continue;
            }
            let upper = marks.iter().map(|(i, m)| format!("{:.1},{:.1}", x(*i), main.y(m.hi)));
            let lower = marks.iter().rev().map(|(i, m)| format!("{:.1},{:.1}", x(*i), main.y(m.lo)));
            let band: Vec<String> = upper.chain(lower).collect();
            put!(out, "<polygon points=\"{}\" fill=\"{LINE}\" fill-opacity=\"0.18\"/>\n", band.join(" "));
            let line: Vec<String> = marks.iter().map(|(i, m)| format!("{:.1},{:.1}", x(*i), main.y(m.mid))).collect();
            put!(
                out,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{LINE}\" stroke-width=\"1.8\" stroke-linejoin=\"round\"/>\n",
                line.join(" ")
            );
        }
        // Points with tooltips, failure markers.
        for (i, slot) in plot.slots.iter().enumerate() {
            match slot {
                Slot::Value(m) => put!(
                    out,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{r:.1}\" fill=\"{LINE}\"><title>{}</title></circle>\n",
                    x(i),
                    main.y(m.mid),
                    escape(&m.tip)
                ),
                Slot::BuildFailed(tip) => cross(&mut out, x(i), main.bottom() - 9.0, FAILED, tip),
                Slot::CaseFailed(tip) => cross(&mut out, x(i), main.bottom() - 9.0, CASE_FAILED, tip),
                Slot::Empty => {}
            }
        }
        // Change points: a ring around the point, and the Δ above the plot
        // (alternating between two rows when annotations would collide).
        let mut row_end = [f64::NEG_INFINITY; 2];
        let mut highlights: Vec<&Highlight> = plot.highlights.iter().collect();
        highlights.sort_by_key(|h| h.index);
        for h in highlights {
            let c = color(h.change);
            let cx = x(h.index);
            if let Some(m) = mark(h.index) {
                put!(
                    out,
                    "<circle cx=\"{cx:.1}\" cy=\"{:.1}\" r=\"{:.1}\" fill=\"{c}\" stroke=\"#fff\" stroke-width=\"1.2\">\
                     <title>{}</title></circle>\n",
                    main.y(m.mid),
                    r + 2.2,
                    escape(&h.tip)
                );
            }
            let half = 3.5 * h.text.chars().count() as f64;
            let row = if row_end[0] < cx - half {
                0
            } else if row_end[1] < cx - half {
                1
            } else {
                0
            };
            row_end[row] = cx + half + 4.0;
            put!(
                out,
                "<text x=\"{cx:.1}\" y=\"{:.1}\" font-size=\"11.5\" font-weight=\"600\" text-anchor=\"middle\" \
                 fill=\"{c}\"><title>{}</title>{}</text>\n",
                if row == 0 { 12.0 } else { 25.0 },
                escape(&h.tip),
                escape(&h.text)
            );
        }

        if let Some((panel, s)) = &second {
            panel.draw_frame(&mut out, &s.title, false);
            let value = |i: usize| s.values.get(i).and_then(Option::as_ref);
            // Step line: flat across each commit's slot, vertical at changes.
            for run in runs(s.values.len(), |i| value(i).is_some()) {
                let mut d = String::new();
                for i in run {
                    let (v, _) = value(i).expect("in a run");
                    let (x0, y) = (x(i) - slot_w / 2.0, panel.y(*v));
                    if d.is_empty() {
                        put!(d, "M{x0:.1},{y:.1}");
                    } else {
                        put!(d, "V{y:.1}");
                    }
                    put!(d, "H{:.1}", x0 + slot_w);
                }
                put!(out, "<path d=\"{d}\" fill=\"none\" stroke=\"{INSNS}\" stroke-width=\"1.8\"/>\n");
            }
            let mut previous: Option<f64> = None;
            for i in 0..s.values.len() {
                let Some((v, tip)) = value(i) else { continue };
                put!(
                    out,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{:.1}\" fill=\"{INSNS}\"><title>{}</title></circle>\n",
                    x(i),
                    panel.y(*v),
                    (r * 0.8).max(1.4),
                    escape(tip)
                );
                // Label each change of the count with its new value.
                if previous.is_some_and(|p| p != *v) {
                    let above = panel.y(*v) - 5.0 > panel.top + 8.0;
                    put!(
                        out,
                        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\" fill=\"{INSNS}\">{}</text>\n",
                        x(i),
                        if above { panel.y(*v) - 5.0 } else { panel.y(*v) + 13.0 },
                        format!("{v:.0}")
                    );
                }
                previous = Some(*v);
            }
        }

        // Commit labels: thinned to fit, change points always shown.
        let max_labels = ((WIDTH - LEFT - RIGHT) / 13.0).floor().max(1.0) as usize;
        let every = plot.labels.len().div_ceil(max_labels).max(1);
        let highlighted = |i: usize| plot.highlights.iter().find(|h| h.index == i);
        let near_highlight = |i: usize| plot.highlights.iter().any(|h| h.index != i && h.index.abs_diff(i) < every);
        for (i, label) in plot.labels.iter().enumerate() {
            let (fill, weight) = match highlighted(i) {
                Some(h) => (color(h.change), "600"),
                None if i % every == 0 && !near_highlight(i) => (TEXT, "normal"),
                None => continue,
            };
            let fill = if matches!(plot.slots.get(i), Some(Slot::BuildFailed(_))) { FAILED } else { fill };
            put!(
                out,
                "<text transform=\"translate({:.1} {:.1}) rotate(-45)\" font-size=\"10.5\" font-weight=\"{weight}\" \
                 text-anchor=\"end\" fill=\"{fill}\" font-family=\"ui-monospace, Menlo, Consolas, monospace\">{}</text>\n",
                x(i) + 3.0,
                plots_bottom + 12.0,
                escape(label)
            );
        }
        out.push_str("</svg>\n");
        out
    }

    /// An × marker with a tooltip.
    fn cross(out: &mut String, cx: f64, cy: f64, stroke: &str, tip: &str) {
        let d = 4.0;
        put!(
            out,
            "<path d=\"M{:.1},{:.1}l{d2},{d2}m0,-{d2}l-{d2},{d2}\" stroke=\"{stroke}\" stroke-width=\"2.2\" \
             fill=\"none\"><title>{}</title></path>\n",
            cx - d,
            cy - d,
            escape(tip),
            d2 = 2.0 * d
        );
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn axes_are_round_and_cover_the_data() {
            let a = Axis::new(11.3, 14.9, 5, false);
            assert!(a.lo <= 11.3 && a.hi >= 14.9, "{a:?}");
            assert_eq!(a.step, 1.0);
            assert_eq!(a.label(12.0), "12");
            let flat = Axis::new(120.0, 120.0, 2, true);
            assert!(flat.lo < 120.0 && flat.hi > 120.0 && flat.step >= 1.0, "{flat:?}");
            let small = Axis::new(0.012, 0.018, 5, false);
            assert_eq!(small.label(small.lo + small.step), format!("{:.3}", small.lo + small.step));
            assert_eq!(runs(5, |i| i != 2), vec![0..2, 3..5]);
        }
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
                p_value: 0.001,
            }],
            points,
            threshold_pct: 2.0,
            ..Default::default()
        }
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        assert_eq!(escape("plain"), "plain");
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
        assert!(!html.contains("<script"), "script tag leaked");
        assert!(!html.contains("<link") && !html.contains("src="));

        assert!(html.contains("Use &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;friends&quot;"));
        // The change: in the summary table and on the plot, in red.
        assert!(html.contains("<span class=\"badge slower\">slower</span>"));
        assert!(html.contains("<td class=\"num slower\"><b>+25.0\u{a0}%</b></td>"));
        assert!(html.contains("[+20.0\u{a0}%, +30.0\u{a0}%] at 99\u{a0}%"));
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
            ..Default::default()
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
                            p_value: 0.0,
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
