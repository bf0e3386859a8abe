//! The HTML report of an optimize run, rewritten after every attempt.
//!
//! One self-contained page, readable offline: inline CSS, no script, no font
//! or image fetched from anywhere, and one hand-written inline SVG (the
//! cumulative gain of the kept attempts). Everything that comes from the
//! model, the diffs or the logs goes through [`escape`].

use super::record::{Attempt, CaseDelta, Outcome, RunRecord, Step};
use bench_harness::stats::paired::RatioEstimate;

use crate::html::{escape, nice_step, put, AXIS, GRID, LINE};

/// Render the run as one self-contained HTML page.
pub fn render(record: &RunRecord) -> String {
    let generated = chrono::Local::now().format("%Y-%m-%d %H:%M:%S %z").to_string();
    render_at(record, &generated)
}

/// [`render`] with a given generation date (tests).
fn render_at(record: &RunRecord, generated: &str) -> String {
    let mut out = String::with_capacity(64 * 1024);
    put!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>bfperf optimize {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        escape(&record.run_id)
    );
    header(&mut out, record, generated);
    progress(&mut out, record);
    table(&mut out, record);
    for attempt in &record.attempts {
        section(&mut out, attempt);
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// Inline style sheet.
const CSS: &str = r#"
:root { --kept: #2e7d32; --rejected: #c62828; --failure: #ef6c00; --neutral: #8a8a8a; --running: #1f5fa8; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #222; margin: 0 auto; padding: 0 24px 48px; max-width: 1200px; }
h1 { font-size: 22px; margin: 20px 0 8px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 14px 0 4px; }
.muted, small { color: #666; font-weight: normal; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl.meta dt { color: #666; } dl.meta dd { margin: 0; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eee; vertical-align: top; }
th { background: #f5f5f5; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.title { min-width: 220px; }
.badge { display: inline-block; padding: 0 6px; border-radius: 3px; font-size: 12px; font-weight: 600; color: #fff;
  white-space: nowrap; background: var(--neutral); }
.badge.kept, .badge.faster { background: var(--kept); } .badge.rejected, .badge.slower { background: var(--rejected); }
.badge.failure { background: var(--failure); } .badge.running { background: var(--running); }
.badge.stopped { background: #546e7a; } .badge.nochange { background: #b0bec5; color: #263238; }
.faster { color: var(--kept); } .slower { color: var(--rejected); }
.badge.faster, .badge.slower { color: #fff; }
table.cases { width: auto; min-width: 640px; }
a { color: var(--running); text-decoration: none; } a:hover { text-decoration: underline; }
details summary { cursor: pointer; color: #444; }
pre { white-space: pre-wrap; word-break: break-word; background: #f7f7f7; border: 1px solid #e5e5e5;
  padding: 6px 8px; margin: 4px 0 8px; font-size: 12px; max-height: 420px; overflow: auto; }
pre.plan { background: #fbfbf6; max-height: none; }
pre.diff { white-space: pre; word-break: normal; max-height: 560px; padding: 4px 0; }
pre.diff span { display: block; padding: 0 8px; }
pre.diff .add { background: #e6ffec; color: #116329; } pre.diff .del { background: #ffebe9; color: #82071e; }
pre.diff .hunk { background: #ddf4ff; color: #0a3069; } pre.diff .file { font-weight: 700; color: #333; background: #eee; }
.attempt { margin: 26px 0 34px; padding-top: 6px; border-top: 2px solid #e3e3e3; }
.attempt > h2 { border: 0; margin-top: 6px; display: flex; gap: 10px; align-items: baseline; }
.attempt > h2 .idx { color: #888; font-weight: 600; }
.facts { display: flex; flex-wrap: wrap; gap: 2px 18px; font-size: 13px; color: #444; margin: 0 0 8px; }
.facts b { color: #222; font-weight: 600; }
.note { padding: 6px 12px; margin: 6px 0; border-left: 4px solid var(--neutral); background: #f5f5f5; }
.note.kept { border-color: var(--kept); background: #f1f8e9; }
.note.rejected { border-color: var(--rejected); background: #fdecea; }
.note.failure { border-color: var(--failure); background: #fff3e0; }
.escape { padding: 6px 12px; margin: 8px 0; border: 2px solid var(--rejected); background: #fdecea; border-radius: 4px; }
.escape ul { margin: 4px 0 0; }
ul.paths { margin: 2px 0 8px; padding-left: 20px; }
svg.plot { width: 100%; height: auto; display: block; }
svg.plot text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 18px; font-size: 12.5px; color: #444; margin: 4px 0 10px; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; }
.ring { display: inline-block; width: 8px; height: 8px; border-radius: 50%; border: 1.5px solid var(--rejected); }
.step { display: inline-block; width: 18px; border-top: 2px solid var(--running); }
.timings { display: block; font-size: 11px; color: #777; white-space: nowrap; }
.nw { white-space: nowrap; }
"#;

/// How an outcome is shown: badge/colour class and a human word.
fn outcome_class(outcome: Option<&Outcome>) -> (&'static str, &'static str) {
    match outcome {
        None => ("running", "running"),
        Some(Outcome::Kept) => ("kept", "kept"),
        Some(Outcome::Rejected { .. }) => ("rejected", "rejected"),
        Some(Outcome::OutOfScope { .. }) => ("failure", "out of scope"),
        Some(Outcome::BuildFailed { .. }) => ("failure", "build failed"),
        Some(Outcome::TestFailed { .. }) => ("failure", "tests failed"),
        Some(Outcome::BenchmarkFailed { .. }) => ("failure", "benchmark failed"),
        Some(Outcome::ModelError { .. }) => ("failure", "model error"),
        Some(Outcome::EmptyPlan) => ("neutral", "empty plan"),
        Some(Outcome::NoChange) => ("neutral", "no change"),
        Some(Outcome::Interrupted) => ("neutral", "interrupted"),
    }
}

fn badge(outcome: Option<&Outcome>) -> String {
    let (class, word) = outcome_class(outcome);
    format!("<span class=\"badge {class}\">{word}</span>")
}

/// Colour of an outcome on the plot.
fn outcome_color(outcome: Option<&Outcome>) -> &'static str {
    match outcome_class(outcome).0 {
        "kept" => "#2e7d32",
        "rejected" => "#c62828",
        "failure" => "#ef6c00",
        "running" => "#1f5fa8",
        _ => "#9e9e9e",
    }
}

/// A signed percentage with a no-break space, e.g. `-3.2 %`.
fn fmt_pct(v: f64) -> String {
    let v = if v.abs() < 0.005 { 0.0 } else { v };
    format!("{v:+.2}\u{a0}%")
}

/// Class of an estimate: `faster`/`slower` when its interval excludes 1.
fn estimate_class(e: &RatioEstimate) -> &'static str {
    if e.hi < 1.0 {
        "faster"
    } else if e.lo > 1.0 {
        "slower"
    } else {
        ""
    }
}

/// `Δ [lo, hi]` of an estimate, as table cell content.
fn fmt_estimate(e: &RatioEstimate) -> String {
    let (lo, hi) = e.ci_pct();
    let ci = if lo == hi { "no CI".to_owned() } else { format!("[{:+.2}, {:+.2}]", lo, hi) };
    format!(
        "<b>{}</b> <small class=\"nw\" title=\"{:.0} % confidence interval, n = {}\">{ci}</small>",
        fmt_pct(e.delta_pct()),
        e.level * 100.0,
        e.n
    )
}

/// A `<td>` with an optional estimate.
fn estimate_cell(e: Option<&RatioEstimate>) -> String {
    match e {
        Some(e) => format!("<td class=\"num {}\">{}</td>", estimate_class(e), fmt_estimate(e)),
        None => "<td class=\"num muted\">—</td>".to_owned(),
    }
}

/// A `<td>` with an optional instruction delta (fewer is better).
fn insns_cell(d: Option<i64>) -> String {
    match d {
        Some(0) => "<td class=\"num\">=</td>".to_owned(),
        Some(d) => format!("<td class=\"num {}\">{d:+}</td>", if d < 0 { "faster" } else { "slower" }),
        None => "<td class=\"num muted\">—</td>".to_owned(),
    }
}

/// `1.2k`, `3.4M`.
fn fmt_count(n: u64) -> String {
    match n {
        0..=999 => n.to_string(),
        1_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.2}M", n as f64 / 1e6),
    }
}

/// A duration: `12 s`, `3 min 05 s`, `1 h 02 min`.
fn fmt_secs(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s < 60 {
        format!("{s}\u{a0}s")
    } else if s < 3600 {
        format!("{}\u{a0}min\u{a0}{:02}\u{a0}s", s / 60, s % 60)
    } else {
        format!("{}\u{a0}h\u{a0}{:02}\u{a0}min", s / 3600, (s % 3600) / 60)
    }
}

fn step_name(step: Step) -> &'static str {
    match step {
        Step::Propose => "propose",
        Step::Implement => "implement",
        Step::Validate => "validate",
        Step::Commit => "commit",
        Step::Evaluate => "evaluate",
        Step::Done => "total",
    }
}

/// Seconds per step, summed over repeats (a step may run several times), in step order.
fn step_times(attempt: &Attempt) -> Vec<(Step, f64)> {
    let mut out: Vec<(Step, f64)> = vec![];
    for &(step, secs) in &attempt.timings {
        match out.iter_mut().find(|(s, _)| *s == step) {
            Some(entry) => entry.1 += secs,
            None => out.push((step, secs)),
        }
    }
    out
}

/// The whole attempt's time: its `Done` timing, or the sum of its steps while running.
fn total_secs(attempt: &Attempt) -> Option<f64> {
    let steps = step_times(attempt);
    steps.iter().find(|(s, _)| *s == Step::Done).map(|t| t.1).or_else(|| {
        let sum: f64 = steps.iter().map(|t| t.1).sum();
        (!steps.is_empty()).then_some(sum)
    })
}

/// A short duration: `12s`, `3m05`, `1h02`.
fn fmt_secs_short(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}", s / 60, s % 60)
    } else {
        format!("{}h{:02}", s / 3600, (s % 3600) / 60)
    }
}

/// `propose 12 s · implement 3 min 05 s · ...` (without the total); `short`:
/// `P 12s · I 3m05 · ...`.
fn fmt_steps(attempt: &Attempt, short: bool) -> String {
    step_times(attempt)
        .iter()
        .filter(|(s, _)| *s != Step::Done)
        .map(|&(s, t)| {
            if short {
                format!("{}\u{a0}{}", step_name(s)[..1].to_uppercase(), fmt_secs_short(t))
            } else {
                format!("{} {}", step_name(s), fmt_secs(t))
            }
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The cumulative ratio after each attempt (index 0: the baseline).
fn cumulative(record: &RunRecord) -> Vec<f64> {
    let mut c = vec![1.0];
    let mut ratio = 1.0;
    for a in &record.attempts {
        if a.outcome == Some(Outcome::Kept) {
            if let Some(g) = &a.geomean {
                ratio *= g.ratio;
            }
        }
        c.push(ratio);
    }
    c
}

fn header(out: &mut String, record: &RunRecord, generated: &str) {
    put!(out, "<header>\n<h1>bfperf optimize <code>{}</code></h1>\n<dl class=\"meta\">\n", escape(&record.run_id));
    let status = match &record.stopped {
        Some(why) => format!("<span class=\"badge stopped\">stopped</span> {}", escape(why)),
        None => "<span class=\"badge running\">running</span>".to_owned(),
    };
    put!(out, "<dt>Status</dt><dd>{status}</dd>\n");
    put!(
        out,
        "<dt>Branch to merge</dt><dd><code>{}</code> <span class=\"muted\">(from <code>{}</code>)</span></dd>\n",
        escape(&record.branch),
        escape(&record.base_commit.chars().take(12).collect::<String>())
    );
    put!(out, "<dt>Sources</dt><dd><code>{}</code></dd>\n", escape(&record.sources.display().to_string()));
    put!(out, "<dt>Worktree</dt><dd><code>{}</code></dd>\n", escape(&record.worktree.display().to_string()));
    put!(out, "<dt>Scope</dt><dd><code>{}</code></dd>\n", escape(&record.scope));
    put!(out, "<dt>Model</dt><dd><code>{}</code></dd>\n", escape(&record.model));
    if !record.setup.validation.is_empty() {
        let planned = record.setup.validation.len();
        let baseline = crate::validation::summary(&record.setup.baseline_validation, planned);
        let no_tests = if record.setup.no_tests { " <b>(--no-tests: attempts are not tested)</b>" } else { "" };
        put!(out, "<dt>Baseline validation</dt><dd>{}{no_tests}</dd>\n", escape(&baseline));
    }
    put!(out, "<dt>Objective</dt><dd>{}</dd>\n", escape(&record.objective));

    let kept = record.kept();
    let mut counts: Vec<(&str, usize)> = vec![];
    for a in &record.attempts {
        let word = outcome_class(a.outcome.as_ref()).1;
        match counts.iter_mut().find(|(w, _)| *w == word) {
            Some(c) => c.1 += 1,
            None => counts.push((word, 1)),
        }
    }
    let breakdown: Vec<String> = counts.iter().filter(|(w, _)| *w != "kept").map(|(w, n)| format!("{n} {w}")).collect();
    put!(
        out,
        "<dt>Attempts</dt><dd>{}: <b class=\"faster\">{kept} kept</b>{}{}</dd>\n",
        record.attempts.len(),
        if breakdown.is_empty() { "" } else { ", " },
        breakdown.join(", ")
    );
    let gain = (record.cumulative_ratio - 1.0) * 100.0;
    let class = if gain < 0.0 {
        "faster"
    } else if gain > 0.0 {
        "slower"
    } else {
        ""
    };
    put!(
        out,
        "<dt>Cumulative Δ</dt><dd><b class=\"{class}\">{}</b> vs the baseline <span class=\"muted\">(product of the \
         kept attempts' suite geometric means; negative is faster)</span></dd>\n",
        fmt_pct(gain)
    );
    let tokens_in: u64 = record.attempts.iter().map(|a| a.tokens.0).sum();
    let tokens_out: u64 = record.attempts.iter().map(|a| a.tokens.1).sum();
    put!(
        out,
        "<dt>Cost</dt><dd><b>${:.2}</b> <span class=\"muted\">({} tokens in, {} out)</span></dd>\n",
        record.spent_usd,
        fmt_count(tokens_in),
        fmt_count(tokens_out)
    );
    let ignored = record.baseline_failures.len() + record.baseline_failed_commands.len();
    if ignored == 0 {
        put!(out, "<dt>Baseline failures</dt><dd>none</dd>\n");
    } else {
        put!(
            out,
            "<dt>Baseline failures</dt><dd><details><summary>{} test(s) and {} command(s) already failing on the \
             baseline, ignored</summary><ul class=\"paths\">",
            record.baseline_failures.len(),
            record.baseline_failed_commands.len()
        );
        for t in record.baseline_failures.iter().chain(&record.baseline_failed_commands) {
            put!(out, "<li><code>{}</code></li>", escape(t));
        }
        put!(out, "</ul></details></dd>\n");
    }
    put!(out, "<dt>Updated</dt><dd>{}</dd>\n</dl>\n</header>\n", escape(generated));
}

/// The cumulative-gain plot.
fn progress(out: &mut String, record: &RunRecord) {
    put!(out, "<section id=\"progress\">\n<h2>Cumulative gain</h2>\n");
    if record.attempts.is_empty() {
        put!(out, "<p class=\"muted\">No attempt yet.</p>\n</section>\n");
        return;
    }
    put!(out, "{}", plot(record));
    put!(
        out,
        "<div class=\"legend\"><span><i class=\"step\"></i>cumulative Δ vs baseline</span>\
         <span><i class=\"dot\" style=\"background:#2e7d32\"></i>kept</span>\
         <span><i class=\"dot\" style=\"background:#c62828\"></i>rejected</span>\
         <span><i class=\"dot\" style=\"background:#ef6c00\"></i>build / test / scope / model failure</span>\
         <span><i class=\"dot\" style=\"background:#9e9e9e\"></i>no plan, no change, interrupted</span>\
         <span><i class=\"ring\"></i>where a measured attempt would have landed, with its CI</span></div>\n\
         </section>\n"
    );
}

fn plot(record: &RunRecord) -> String {
    const WIDTH: f64 = 1000.0;
    const LEFT: f64 = 64.0;
    const RIGHT: f64 = 16.0;
    const TOP: f64 = 14.0;
    const H: f64 = 240.0;
    const BOTTOM: f64 = 42.0;
    const TEXT: &str = "#555";

    let cum = cumulative(record);
    let pct = |r: f64| (r - 1.0) * 100.0;
    // What a measured attempt did relative to its parent, placed on the cumulative level.
    let landed: Vec<Option<(f64, f64, f64)>> = record
        .attempts
        .iter()
        .enumerate()
        .map(|(i, a)| a.geomean.as_ref().map(|g| (pct(cum[i] * g.ratio), pct(cum[i] * g.lo), pct(cum[i] * g.hi))))
        .collect();
    let mut lo = cum.iter().copied().map(pct).fold(0.0, f64::min);
    let mut hi = cum.iter().copied().map(pct).fold(0.0, f64::max);
    for (m, l, h) in landed.iter().flatten() {
        lo = lo.min(*l).min(*m);
        hi = hi.max(*h).max(*m);
    }
    if !(lo.is_finite() && hi.is_finite()) {
        (lo, hi) = (-1.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(0.25);
    let step = nice_step((hi - lo + 2.0 * pad) / 5.0);
    let (lo, hi) = (((lo - pad) / step).floor() * step, ((hi + pad) / step).ceil() * step);
    let y = |v: f64| TOP + (hi - v) / (hi - lo) * H;
    let n = record.attempts.len() + 1;
    let slot = (WIDTH - LEFT - RIGHT) / n as f64;
    let x = |i: usize| LEFT + (i as f64 + 0.5) * slot;
    let r = (slot * 0.22).clamp(2.2, 5.0);

    let mut out = String::with_capacity(8 * 1024);
    put!(
        out,
        "<svg class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {:.0}\" role=\"img\" \
         aria-label=\"cumulative gain per attempt\">\n",
        TOP + H + BOTTOM
    );
    // Grid and y labels.
    let decimals = (0..4).find(|&d| (step * 10f64.powi(d)).fract().abs() < 1e-6).unwrap_or(4) as usize;
    let ticks = ((hi - lo) / step + 1e-6).floor() as usize;
    for k in 0..=ticks {
        let v = lo + k as f64 * step;
        let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
        let yy = y(v);
        let stroke = if v == 0.0 { AXIS } else { GRID };
        let label = if v == 0.0 { "0".to_owned() } else { format!("{v:+.decimals$}") };
        put!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"{stroke}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"{TEXT}\">{label}</text>\n",
            WIDTH - RIGHT,
            LEFT - 6.0,
            yy + 4.0
        );
    }
    put!(
        out,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{H}\" fill=\"none\" stroke=\"{AXIS}\"/>\n\
         <text transform=\"translate(16 {:.1}) rotate(-90)\" font-size=\"11.5\" text-anchor=\"middle\" \
         fill=\"{TEXT}\">cumulative Δ % (lower is faster)</text>\n",
        WIDTH - LEFT - RIGHT,
        TOP + H / 2.0
    );
    // X labels: every attempt, or every k-th when there are many.
    let every = nice_step(n as f64 / 25.0).ceil().max(1.0) as usize;
    for i in (0..n).filter(|i| i % every == 0) {
        let label = if i == 0 { "base".to_owned() } else { format!("#{i}") };
        put!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"{TEXT}\">{label}</text>\n",
            x(i),
            TOP + H + 16.0
        );
    }
    put!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11.5\" text-anchor=\"middle\" fill=\"{TEXT}\">attempt</text>\n",
        (LEFT + WIDTH - RIGHT) / 2.0,
        TOP + H + 34.0
    );
    // Measured attempts: CI whisker and ring where they landed.
    for (i, (a, l)) in record.attempts.iter().zip(&landed).enumerate() {
        let Some((m, l, h)) = *l else { continue };
        let c = outcome_color(a.outcome.as_ref());
        let xi = x(i + 1);
        put!(
            out,
            "<line x1=\"{xi:.1}\" x2=\"{xi:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{c}\" stroke-opacity=\"0.55\" \
             stroke-width=\"2\"/>\n",
            y(l),
            y(h)
        );
        if a.outcome != Some(Outcome::Kept) {
            put!(
                out,
                "<line x1=\"{xi:.1}\" x2=\"{xi:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{c}\" stroke-opacity=\"0.5\" \
                 stroke-dasharray=\"2 2\"/>\n<circle cx=\"{xi:.1}\" cy=\"{:.1}\" r=\"{r:.1}\" fill=\"#fff\" \
                 stroke=\"{c}\" stroke-width=\"1.5\"><title>{}</title></circle>\n",
                y(pct(cum[i + 1])),
                y(m),
                y(m),
                escape(&format!("#{} would have landed at {}", a.index, fmt_pct(m)))
            );
        }
    }
    // The cumulative step line.
    let mut d = format!("M{:.1},{:.1}", x(0), y(pct(cum[0])));
    for (i, &c) in cum.iter().enumerate().skip(1) {
        put!(d, " H{:.1} V{:.1}", x(i), y(pct(c)));
    }
    put!(out, "<path d=\"{d}\" fill=\"none\" stroke=\"{LINE}\" stroke-width=\"2\" stroke-linejoin=\"round\"/>\n");
    put!(
        out,
        "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{r:.1}\" fill=\"{LINE}\"><title>baseline</title></circle>\n",
        x(0),
        y(0.0)
    );
    // One dot per attempt on the cumulative line.
    for (i, a) in record.attempts.iter().enumerate() {
        let c = outcome_color(a.outcome.as_ref());
        let mut tip = format!("#{} {} — {}", a.index, outcome_class(a.outcome.as_ref()).1, a.title());
        if let Some(g) = &a.geomean {
            let (l, h) = g.ci_pct();
            put!(tip, "\nsuite {} [{:+.2}, {:+.2}]", fmt_pct(g.delta_pct()), l, h);
        }
        put!(tip, "\ncumulative {}", fmt_pct(pct(cum[i + 1])));
        let rr = if a.outcome == Some(Outcome::Kept) { r + 1.2 } else { r };
        put!(
            out,
            "<a href=\"#attempt-{}\"><circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{rr:.1}\" fill=\"{c}\" stroke=\"#fff\" \
             stroke-width=\"1\"><title>{}</title></circle></a>\n",
            a.index,
            x(i + 1),
            y(pct(cum[i + 1])),
            escape(&tip)
        );
    }
    out.push_str("</svg>\n");
    out
}

fn table(out: &mut String, record: &RunRecord) {
    put!(out, "<section id=\"attempts\">\n<h2>Attempts</h2>\n");
    if record.attempts.is_empty() {
        put!(out, "<p class=\"muted\">No attempt yet.</p>\n</section>\n");
        return;
    }
    put!(
        out,
        "<table>\n<thead><tr><th class=\"num\">#</th><th>Outcome</th><th>Title</th>\
         <th class=\"num\">Suite Δ [CI]</th><th class=\"num\">Insns Δ</th><th class=\"num\">Fixes</th>\
         <th class=\"num\">Tokens in / out</th><th class=\"num\">Cost</th>\
         <th class=\"num\" title=\"Propose, Implement, Validate, Commit, Evaluate\">Time</th></tr></thead>\n\
         <tbody>\n"
    );
    for a in &record.attempts {
        let title =
            if a.title().is_empty() { "<span class=\"muted\">(no plan)</span>".to_owned() } else { escape(a.title()) };
        let time = total_secs(a).map(fmt_secs).unwrap_or_default();
        let title = if a.refusals.is_empty() {
            title
        } else {
            format!(
                "{title} <span class=\"badge rejected\" title=\"the model tried to reach paths outside its \
                 confinement\">{} refused</span>",
                a.refusals.len()
            )
        };
        put!(
            out,
            "<tr><td class=\"num\"><a href=\"#attempt-{0}\">{0}</a></td><td>{1}</td><td class=\"title\">\
             <a href=\"#attempt-{0}\">{title}</a></td>{2}{3}<td class=\"num\">{4}</td>\
             <td class=\"num\">{5} / {6}</td><td class=\"num\">${7:.2}</td>\
             <td class=\"num\" title=\"{8}\">{time}<span class=\"timings\">{9}</span></td></tr>\n",
            a.index,
            badge(a.outcome.as_ref()),
            estimate_cell(a.geomean.as_ref()),
            insns_cell(a.insns_delta),
            a.fix_rounds,
            fmt_count(a.tokens.0),
            fmt_count(a.tokens.1),
            a.cost_usd,
            escape(&fmt_steps(a, false)),
            escape(&fmt_steps(a, true))
        );
    }
    put!(out, "</tbody>\n</table>\n</section>\n");
}

fn section(out: &mut String, a: &Attempt) {
    let title = if a.title().is_empty() { "(no plan)" } else { a.title() };
    put!(
        out,
        "<section class=\"attempt\" id=\"attempt-{0}\">\n<h2><span class=\"idx\">#{0}</span>{1}<span>{2}</span></h2>\n",
        a.index,
        badge(a.outcome.as_ref()),
        escape(title)
    );
    // Facts line.
    let mut facts = vec![];
    if a.outcome.is_none() {
        facts.push(format!("at step <b>{}</b>", step_name(a.step)));
    }
    if let Some(g) = &a.geomean {
        facts.push(format!("suite <span class=\"{}\">{}</span>", estimate_class(g), fmt_estimate(g)));
    }
    if let Some(d) = a.insns_delta {
        let d = if d == 0 { "=".to_owned() } else { format!("{d:+}") };
        facts.push(format!("insns <b>{d}</b>"));
    }
    if let Some(c) = &a.commit {
        facts.push(format!("commit <code>{}</code>", escape(&c.chars().take(12).collect::<String>())));
    }
    facts.push(format!("fix rounds <b>{}</b>", a.fix_rounds));
    facts.push(format!("tokens <b>{}</b> in / <b>{}</b> out", fmt_count(a.tokens.0), fmt_count(a.tokens.1)));
    facts.push(format!("cost <b>{}</b>", escape(&super::record::usd(a.cost_usd, a.cost_unknown))));
    if let Some(t) = total_secs(a) {
        let steps = fmt_steps(a, false);
        let steps = if steps.is_empty() { String::new() } else { format!(" ({})", escape(&steps)) };
        facts.push(format!("time <b>{}</b>{steps}", fmt_secs(t)));
    }
    put!(out, "<div class=\"facts\">{}</div>\n", facts.iter().map(|f| format!("<span>{f}</span>")).collect::<String>());

    outcome_note(out, a);

    if !a.refusals.is_empty() {
        put!(
            out,
            "<div class=\"escape\"><b>The model tried to escape its confinement</b>: {} access(es) refused\n<ul>",
            a.refusals.len()
        );
        for r in &a.refusals {
            put!(out, "<li><code>{}</code></li>", escape(r));
        }
        put!(out, "</ul></div>\n");
    }

    if !a.plan.trim().is_empty() {
        put!(out, "<h3>Plan</h3>\n<pre class=\"plan\">{}</pre>\n", escape(a.plan.trim_end()));
    }
    if let Some(thinking) = a.thinking.as_deref().filter(|t| !t.trim().is_empty()) {
        put!(
            out,
            "<details><summary>Thinking ({} characters)</summary><pre>{}</pre></details>\n",
            thinking.chars().count(),
            escape(thinking.trim_end())
        );
    }
    if !a.diff.trim().is_empty() {
        let added = a.diff.lines().filter(|l| l.starts_with('+') && !l.starts_with("+++")).count();
        let removed = a.diff.lines().filter(|l| l.starts_with('-') && !l.starts_with("---")).count();
        let files = a.diff.lines().filter(|l| l.starts_with("diff --git")).count();
        put!(
            out,
            "<details open><summary><b>Diff</b> <span class=\"muted\">{files} file(s), \
             <span class=\"faster\">+{added}</span> <span class=\"slower\">−{removed}</span></span></summary>\
             <pre class=\"diff\">{}</pre></details>\n",
            diff_html(&a.diff)
        );
    }
    if !a.deltas.is_empty() {
        put!(
            out,
            "<h3>Cases</h3>\n<table class=\"cases\">\n<thead><tr><th>Case</th><th class=\"num\">Δ [CI]</th><th>Verdict</th>\
             <th class=\"num\">Insns Δ</th></tr></thead>\n<tbody>\n"
        );
        for d in &a.deltas {
            case_row(out, d);
        }
        put!(out, "</tbody>\n</table>\n");
    }
    if !a.validation.is_empty() {
        put!(out, "<h3>Validation</h3>\n<ul class=\"paths\">");
        for v in &a.validation {
            put!(out, "<li>{}</li>", escape(&crate::validation::summary(std::slice::from_ref(v), 1)));
        }
        put!(out, "</ul>\n");
    }
    if !a.logs.is_empty() {
        put!(out, "<h3>Validation logs</h3>\n<ul class=\"paths\">");
        for l in &a.logs {
            put!(out, "<li><code>{}</code></li>", escape(&l.display().to_string()));
        }
        put!(out, "</ul>\n");
    }
    put!(out, "</section>\n");
}

/// Why the attempt ended as it did.
fn outcome_note(out: &mut String, a: &Attempt) {
    let (class, _) = outcome_class(a.outcome.as_ref());
    let (text, tail): (String, Option<&str>) = match &a.outcome {
        None => ("In progress.".into(), None),
        Some(Outcome::Kept) => ("Measurably faster: committed on the branch.".into(), None),
        Some(Outcome::Rejected { reason }) => (format!("Rejected: {}", escape(reason)), None),
        Some(Outcome::EmptyPlan) => ("The model returned no usable plan.".into(), None),
        Some(Outcome::NoChange) => ("The implementation changed nothing.".into(), None),
        Some(Outcome::OutOfScope { files }) => {
            let files: Vec<String> = files.iter().map(|f| format!("<code>{}</code>", escape(f))).collect();
            (format!("The implementation touched files outside the scope: {}", files.join(", ")), None)
        }
        Some(Outcome::BuildFailed { tail }) => {
            (format!("Still failing to build after {} fix round(s).", a.fix_rounds), Some(tail))
        }
        Some(Outcome::TestFailed { tail }) => {
            (format!("Tests still failing after {} fix round(s) (relative to the baseline).", a.fix_rounds), Some(tail))
        }
        Some(Outcome::BenchmarkFailed { reason }) => (format!("The benchmark could not run: {}", escape(reason)), None),
        Some(Outcome::ModelError { reason }) => (format!("Model error: {}", escape(reason)), None),
        Some(Outcome::Interrupted) => ("Interrupted: its changes were reset.".into(), None),
    };
    let class = if class == "running" { "" } else { class };
    put!(out, "<div class=\"note {class}\">{text}");
    if let Some(tail) = tail.filter(|t| !t.trim().is_empty()) {
        put!(out, "<details open><summary>Log tail</summary><pre>{}</pre></details>", escape(tail.trim_end()));
    }
    put!(out, "</div>\n");
}

fn case_row(out: &mut String, d: &CaseDelta) {
    let class = match d.verdict.as_str() {
        "faster" => "faster",
        "slower" => "slower",
        "no change" => "nochange",
        _ => "failure",
    };
    put!(
        out,
        "<tr><td><code>{}</code></td>{}<td><span class=\"badge {class}\">{}</span></td>{}</tr>\n",
        escape(&d.case),
        estimate_cell(d.estimate.as_ref()),
        escape(&d.verdict),
        insns_cell(d.insns_delta)
    );
}

/// The diff, one `<span>` per line, coloured by kind.
fn diff_html(diff: &str) -> String {
    let mut out = String::with_capacity(diff.len() * 5 / 4 + 64);
    for line in diff.lines() {
        let class = if line.starts_with("diff --git") || line.starts_with("+++") || line.starts_with("---") {
            "file"
        } else if line.starts_with("@@") {
            "hunk"
        } else if line.starts_with('+') {
            "add"
        } else if line.starts_with('-') {
            "del"
        } else {
            "ctx"
        };
        let text = if line.is_empty() { " ".to_owned() } else { escape(line) };
        put!(out, "<span class=\"{class}\">{text}</span>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimize::record::SCHEMA;

    fn est(ratio: f64, half: f64, n: usize) -> RatioEstimate {
        RatioEstimate { ratio, lo: ratio - half, hi: ratio + half, n, level: 0.95 }
    }

    fn empty() -> RunRecord {
        RunRecord {
            schema: SCHEMA.into(),
            run_id: "20261125-101500".into(),
            sources: "/home/dev/bpfilter".into(),
            branch: "optimize/20261125-101500".into(),
            worktree: "/home/dev/.cache/bfperf/optimize/20261125-101500/worktree".into(),
            base_commit: "4f1c2a9e0b7d33aa01c0ffee00000000deadbeef".into(),
            scope: "src/libbpfilter/cgen".into(),
            model: "claude-sonnet-4-5".into(),
            objective: "runtime".into(),
            baseline_failures: vec![],
            baseline_failed_commands: vec![],
            attempts: vec![],
            spent_usd: 0.0,
            cumulative_ratio: 1.0,
            stopped: None,
            setup: Default::default(),
        }
    }

    fn delta(case: &str, ratio: f64, verdict: &str, insns: Option<i64>) -> CaseDelta {
        CaseDelta {
            case: case.into(),
            estimate: Some(est(ratio, 0.01, 30)),
            verdict: verdict.into(),
            insns_delta: insns,
        }
    }

    fn synthetic() -> RunRecord {
        let mut r = empty();
        let mut kept = Attempt::new(1);
        kept.plan = "TITLE: hoist the <ctx> load & reuse it\nLoad ctx once in the prologue.".into();
        kept.thinking = Some("The prologue reloads r1 & r6...".into());
        kept.diff = "diff --git a/src/libbpfilter/cgen/program.c b/src/libbpfilter/cgen/program.c\n\
                     --- a/src/libbpfilter/cgen/program.c\n+++ b/src/libbpfilter/cgen/program.c\n\
                     @@ -10,3 +10,3 @@\n-    if (a < b && c)\n+    if (a <= b)\n     return 0;\n"
            .into();
        kept.commit = Some("0123456789abcdef0123456789abcdef01234567".into());
        kept.geomean = Some(est(0.96, 0.01, 4));
        kept.insns_delta = Some(-12);
        kept.deltas = vec![delta("xdp__ip4", 0.95, "faster", Some(-3)), delta("tc__ip6", 0.99, "no change", Some(0))];
        kept.tokens = (120_000, 4_000);
        kept.cost_usd = 0.4321;
        kept.logs = vec!["/tmp/run/logs/1-build.log".into()];
        kept.timings =
            vec![(Step::Propose, 12.0), (Step::Implement, 95.0), (Step::Evaluate, 300.0), (Step::Done, 410.0)];
        kept.outcome = Some(Outcome::Kept);
        kept.step = Step::Done;

        let mut rejected = Attempt::new(2);
        rejected.plan = "TITLE: unroll the rule loop".into();
        rejected.diff = "+x\n".into();
        rejected.geomean = Some(est(1.01, 0.02, 4));
        rejected.outcome = Some(Outcome::Rejected { reason: "not faster: +1.00 % [-1, +3]".into() });
        rejected.cost_usd = 0.2;

        let mut failed = Attempt::new(3);
        failed.plan = "TITLE: use bpf_loop".into();
        failed.fix_rounds = 2;
        failed.outcome = Some(Outcome::TestFailed { tail: "FAILED: e2e <chain> & co".into() });

        let mut oos = Attempt::new(4);
        oos.plan = "TITLE: touch the daemon".into();
        oos.refusals = vec!["/etc/passwd".into()];
        oos.outcome = Some(Outcome::OutOfScope { files: vec!["src/bpfilter/main.c".into()] });

        r.attempts = vec![kept, rejected, failed, oos];
        r.spent_usd = 1.2345;
        r.cumulative_ratio = 0.96;
        r.baseline_failures = vec!["e2e.flaky".into()];
        r.stopped = Some("4 attempts done".into());
        r
    }

    #[test]
    fn page_is_complete_escaped_and_self_contained() {
        let html = render_at(&synthetic(), "now");
        assert!(html.starts_with("<!doctype html>"));
        assert_eq!(html.matches("<svg").count(), 1);
        assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
        let stripped = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(!stripped.contains("http://") && !stripped.contains("https://"), "external reference");
        assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("src="));
        // Escaping: the diff, the title, the log tail.
        assert!(html.contains("<span class=\"del\">-    if (a &lt; b &amp;&amp; c)</span>"));
        assert!(html.contains("<span class=\"add\">+    if (a &lt;= b)</span>"));
        assert!(html.contains("hoist the &lt;ctx&gt; load &amp; reuse it"));
        assert!(html.contains("FAILED: e2e &lt;chain&gt; &amp; co"));
        assert!(!html.contains("<ctx>") && !html.contains("<chain>"));
        // Badges.
        for b in ["kept\">kept", "rejected\">rejected", "failure\">tests failed", "failure\">out of scope"] {
            assert!(html.contains(&format!("<span class=\"badge {b}</span>")), "badge {b}");
        }
        assert!(html.contains("The model tried to escape its confinement"));
        assert!(html.contains("/etc/passwd") && html.contains("src/bpfilter/main.c"));
        // Header.
        assert!(html.contains("<code>optimize/20261125-101500</code>"));
        assert!(html.contains("$1.23") && html.contains("$0.43"));
        assert!(html.contains("-4.00\u{a0}%"), "cumulative gain");
        assert!(html.contains("stopped</span> 4 attempts done"));
        assert!(html.contains("e2e.flaky"));
        // Per-case table, plot colours, timings.
        assert!(html.contains("<span class=\"badge faster\">faster</span>"));
        assert!(html.contains("fill=\"#2e7d32\"") && html.contains("fill=\"#ef6c00\""));
        assert!(html.contains("stroke=\"#c62828\""), "rejected attempt's ring");
        assert!(html.contains("6\u{a0}min\u{a0}50\u{a0}s"));
        assert!(html.contains("id=\"attempt-4\""));
    }

    #[test]
    fn cumulative_follows_kept_attempts() {
        let c = cumulative(&synthetic());
        assert_eq!(c, vec![1.0, 0.96, 0.96, 0.96, 0.96]);
    }

    #[test]
    fn empty_and_running_records_render() {
        let html = render_at(&empty(), "now");
        assert!(html.contains("No attempt yet.") && html.contains("badge running"));
        assert!(!html.contains("<svg"));
        let mut r = empty();
        r.attempts.push(Attempt::new(1));
        let html = render_at(&r, "now");
        assert!(html.contains("<svg") && html.contains("(no plan)") && html.contains("In progress."));
    }

    /// A realistic run; written to `$BFPERF_OPTIMIZE_HTML_SAMPLE` when set.
    #[test]
    fn realistic_sample() {
        let mut r = empty();
        let titles = [
            "Hoist the packet context load out of the rule loop",
            "Cache the L3 header offset across matchers",
            "Unroll the IPv6 address comparison",
            "Use a jump table for large rule sets",
            "Merge adjacent bounds checks",
            "Drop the redundant skb->data reload",
            "Replace set linear scan with bpf_loop",
            "",
            "Reorder L4 port checks by selectivity",
            "Touch the daemon's chain loader",
            "Specialise the counters update",
            "Inline bf_jmpctx helpers",
        ];
        let outcomes = [
            Outcome::Kept,
            Outcome::Rejected { reason: "not faster: suite geomean -0.31 % [-0.92, +0.30] includes no change".into() },
            Outcome::Kept,
            Outcome::BuildFailed {
                tail: "src/libbpfilter/cgen/program.c:412:9: error: implicit declaration of function \
                       'bf_jmpctx_end' [-Werror=implicit-function-declaration]\n  412 |         bf_jmpctx_end(&ctx);"
                    .into(),
            },
            Outcome::Kept,
            Outcome::Rejected { reason: "case tc__ip6_set_1k slower by +3.1 % (max regression 1 %)".into() },
            Outcome::TestFailed {
                tail: "[ RUN      ] e2e.set_ip6\n[  FAILED  ] e2e.set_ip6: expected DROP, got ACCEPT (rule <3>)".into(),
            },
            Outcome::EmptyPlan,
            Outcome::Kept,
            Outcome::OutOfScope { files: vec!["src/bpfilter/ctx.c".into()] },
            Outcome::Rejected { reason: "not faster".into() },
            Outcome::Kept,
        ];
        let ratios = [0.962, 0.997, 0.981, 1.0, 0.973, 0.992, 1.0, 1.0, 0.988, 1.0, 1.004, 0.991];
        let cases = ["xdp__ip4_tcp_accept", "tc__ip6_set_1k", "nf__many_rules_256", "xdp__ip4_drop_many"];
        let mut cum = 1.0;
        for (i, ((title, outcome), ratio)) in titles.iter().zip(&outcomes).zip(ratios).enumerate() {
            let mut a = Attempt::new(i + 1);
            if !title.is_empty() {
                a.plan = format!(
                    "TITLE: {title}\n\nWHY: the generated program does work per packet that can be done once; \
                     see bf_program_generate() where `ctx->data < ctx->data_end` is checked for every rule.\n\n\
                     CHANGE:\n- in cgen/program.c, emit the load once in the prologue & keep it in r6\n\
                     - adjust the matchers to read r6\n\nRISK: low; the verifier must still see the bounds check."
                );
                a.thinking = Some("Looking at the xlated output, the ctx load repeats in every rule...".into());
                a.diff = "diff --git a/src/libbpfilter/cgen/program.c b/src/libbpfilter/cgen/program.c\n\
                          index 3a4b5c6..7d8e9f0 100644\n--- a/src/libbpfilter/cgen/program.c\n\
                          +++ b/src/libbpfilter/cgen/program.c\n@@ -408,9 +408,8 @@ int bf_program_generate(...)\n \
                          \n     for (i = 0; i < n && r; ++i) {\n-        EMIT(program, BPF_LDX_MEM(BPF_W, BPF_REG_6, \
                          BPF_REG_1, offsetof(struct xdp_md, data)));\n-        if (rule->index < 0)\n\
                          +        if (rule->index < 0 || !rule->counters)\n             continue;\n\
                          +        /* r6 holds ctx->data since the prologue */\n     }\n"
                    .into();
                a.tokens = (80_000 + 9_000 * i as u64, 3_000 + 400 * i as u64);
                a.cost_usd = 0.24 + 0.03 * i as f64;
                a.timings = vec![(Step::Propose, 20.0 + i as f64), (Step::Implement, 140.0), (Step::Validate, 210.0)];
            }
            if matches!(outcome, Outcome::Kept | Outcome::Rejected { .. }) {
                a.geomean = Some(est(ratio, 0.006, 4));
                a.insns_delta = Some(-(i as i64 % 4) * 7);
                a.commit = Some(format!("{:x}", 0x9e3779b97f4a7c15u64.wrapping_mul(i as u64 + 7)).repeat(3));
                a.deltas = cases
                    .iter()
                    .enumerate()
                    .map(|(c, name)| {
                        let r = ratio + 0.01 * (c as f64 - 1.5) + if i == 5 && c == 1 { 0.04 } else { 0.0 };
                        let verdict = if r < 0.99 {
                            "faster"
                        } else if r > 1.01 {
                            "slower"
                        } else {
                            "no change"
                        };
                        delta(name, r, verdict, Some(-(c as i64) * 3))
                    })
                    .collect();
                a.timings.extend([(Step::Commit, 1.0), (Step::Evaluate, 420.0)]);
                a.logs = vec![
                    format!("/home/dev/.cache/bfperf/optimize/20261125-101500/logs/{}-build.log", i + 1).into(),
                    format!("/home/dev/.cache/bfperf/optimize/20261125-101500/logs/{}-tests.log", i + 1).into(),
                ];
            }
            if matches!(outcome, Outcome::BuildFailed { .. } | Outcome::TestFailed { .. }) {
                a.fix_rounds = 3;
            }
            if matches!(outcome, Outcome::OutOfScope { .. }) {
                a.refusals = vec!["/home/dev/.ssh/id_ed25519".into(), "../../bpfilter-other/src".into()];
            }
            if *outcome == Outcome::Kept {
                cum *= ratio;
            }
            let total: f64 = a.timings.iter().map(|t| t.1).sum();
            a.timings.push((Step::Done, total));
            a.outcome = Some(outcome.clone());
            a.step = Step::Done;
            r.spent_usd += a.cost_usd;
            r.attempts.push(a);
        }
        r.cumulative_ratio = cum;
        r.baseline_failures = vec!["e2e.nft_flaky_counter".into()];
        r.baseline_failed_commands = vec!["make -C build check-style".into()];
        let html = render_at(&r, "2026-11-25 14:02:11 +0100");
        assert_eq!(html.matches("<svg").count(), 1);
        if let Some(path) = std::env::var_os("BFPERF_OPTIMIZE_HTML_SAMPLE") {
            std::fs::write(path, html).unwrap();
        }
    }
}
