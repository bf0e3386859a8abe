//! The HTML report of an optimize run, rewritten after every attempt: the
//! `optimize.html` template (one self-contained page) with the cumulative
//! gain of the kept attempts drawn by [`svg::steps`]. Per-case colours are
//! the engine's verdicts as recorded; the suite Δ is shown, not judged (the
//! keep rule judged it: the attempt's outcome).

use super::{safe, Templates};
use crate::optimize::record::{Attempt, Outcome, RunRecord, Step};
use crate::output::format::{ci, nbsp, pct, signed};
use crate::output::svg::{self, StepPoint};
use anyhow::Result;
use minijinja::{context, Value};

/// Render the run as one self-contained HTML page (the embedded templates).
pub fn render(record: &RunRecord) -> String {
    render_at(record, &super::now())
}

/// [`render`] with given templates and generation date.
pub fn render_with(record: &RunRecord, templates: &Templates, generated: &str) -> Result<String> {
    templates.render("optimize.html", page(record, generated))
}

/// [`render`] with a given generation date (tests).
fn render_at(record: &RunRecord, generated: &str) -> String {
    render_with(record, &Templates::embedded(), generated).expect("the embedded optimize template renders")
}

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

/// Colour of an outcome on the plot.
fn outcome_color(outcome: Option<&Outcome>) -> &'static str {
    match outcome_class(outcome).0 {
        "kept" => svg::FASTER,
        "rejected" => svg::SLOWER,
        "failure" => svg::FAILURE,
        "running" => svg::LINE,
        _ => svg::NEUTRAL,
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

/// The `optimize.html` context of `record` (also the base of the dashboard's run page).
pub fn page(record: &RunRecord, generated: &str) -> Value {
    let mut counts: Vec<(&str, usize)> = vec![];
    for a in &record.attempts {
        let word = outcome_class(a.outcome.as_ref()).1;
        match counts.iter_mut().find(|(w, _)| *w == word) {
            Some(c) => c.1 += 1,
            None => counts.push((word, 1)),
        }
    }
    let breakdown: Vec<String> = counts.iter().filter(|(w, _)| *w != "kept").map(|(w, n)| format!("{n} {w}")).collect();
    let gain = (record.cumulative_ratio - 1.0) * 100.0;
    let gain_class = if gain < 0.0 {
        "faster"
    } else if gain > 0.0 {
        "slower"
    } else {
        ""
    };
    let attempts: Vec<Value> = record.attempts.iter().map(attempt).collect();
    context! {
        run_id => record.run_id.clone(),
        stopped => record.stopped.clone(),
        branch => record.branch.clone(),
        base_commit => record.base_commit.chars().take(12).collect::<String>(),
        sources => record.sources.display().to_string(),
        worktree => record.worktree.display().to_string(),
        scope => record.scope.clone(),
        model => record.model.clone(),
        baseline_validation => (!record.setup.validation.is_empty())
            .then(|| crate::validation::summary(&record.setup.baseline_validation, record.setup.validation.len())),
        no_tests => record.setup.no_tests,
        objective => record.objective.clone(),
        kept => record.kept(),
        breakdown => breakdown.join(", "),
        gain => nbsp(&pct(gain)),
        gain_class,
        spent => format!("{:.2}", record.spent_usd),
        tokens_in => fmt_count(record.attempts.iter().map(|a| a.tokens.0).sum()),
        tokens_out => fmt_count(record.attempts.iter().map(|a| a.tokens.1).sum()),
        baseline_failures => record.baseline_failures.iter().chain(&record.baseline_failed_commands).cloned().collect::<Vec<_>>(),
        baseline_tests => record.baseline_failures.len(),
        baseline_commands => record.baseline_failed_commands.len(),
        generated,
        plot => safe(plot(record)),
        attempts,
    }
}

/// One attempt's context (its table row and its section).
fn attempt(a: &Attempt) -> Value {
    let (class, word) = outcome_class(a.outcome.as_ref());
    let g = a.geomean.as_ref();
    let (note, tail, out_of_scope): (String, Option<&str>, Vec<String>) = match &a.outcome {
        None => ("In progress.".into(), None, vec![]),
        Some(Outcome::Kept) => ("Measurably faster: committed on the branch.".into(), None, vec![]),
        Some(Outcome::Rejected { reason }) => (format!("Rejected: {reason}"), None, vec![]),
        Some(Outcome::EmptyPlan) => ("The model returned no usable plan.".into(), None, vec![]),
        Some(Outcome::NoChange) => ("The implementation changed nothing.".into(), None, vec![]),
        Some(Outcome::OutOfScope { files }) => {
            ("The implementation touched files outside the scope".into(), None, files.clone())
        }
        Some(Outcome::BuildFailed { tail }) => {
            (format!("Still failing to build after {} fix round(s).", a.fix_rounds), Some(tail), vec![])
        }
        Some(Outcome::TestFailed { tail }) => (
            format!("Tests still failing after {} fix round(s) (relative to the baseline).", a.fix_rounds),
            Some(tail),
            vec![],
        ),
        Some(Outcome::BenchmarkFailed { reason }) => (format!("The benchmark could not run: {reason}"), None, vec![]),
        Some(Outcome::ModelError { reason }) => (format!("Model error: {reason}"), None, vec![]),
        Some(Outcome::Interrupted) => ("Interrupted: its changes were reset.".into(), None, vec![]),
    };
    let deltas: Vec<Value> = a
        .deltas
        .iter()
        .map(|d| {
            // The verdict recorded is the engine's (its threshold included): the colour follows it.
            let class = match d.verdict.as_str() {
                "faster" => "faster",
                "slower" => "slower",
                v if v.starts_with("no change") || v == "same program" => "nochange",
                _ => "failure",
            };
            let e = d.estimate.as_ref();
            context! {
                case => d.case.clone(),
                delta => e.map(|e| nbsp(&pct(e.delta_pct()))),
                ci => e.map(|e| ci(e.ci_pct().0, e.ci_pct().1)),
                sort => e.map(|e| e.delta_pct()).unwrap_or(f64::NAN).to_string(),
                level => e.map(|e| format!("{:.0}", e.level * 100.0)),
                n => e.map(|e| e.n),
                class,
                verdict => d.verdict.clone(),
                insns => signed(d.insns_delta),
                insns_class => insns_class(d.insns_delta),
            }
        })
        .collect();
    let diff_line = |p: &str, skip: &str| a.diff.lines().filter(|l| l.starts_with(p) && !l.starts_with(skip)).count();
    let thinking = a.thinking.as_deref().filter(|t| !t.trim().is_empty());
    context! {
        index => a.index,
        class,
        word,
        title => a.title().to_owned(),
        refusals => a.refusals.clone(),
        suite => g.map(|g| nbsp(&pct(g.delta_pct()))),
        suite_ci => g.map(|g| ci(g.ci_pct().0, g.ci_pct().1)),
        suite_sort => g.map(|g| g.delta_pct()).unwrap_or(f64::NAN).to_string(),
        suite_level => g.map(|g| format!("{:.0}", g.level * 100.0)),
        suite_n => g.map(|g| g.n),
        insns => signed(a.insns_delta),
        insns_class => insns_class(a.insns_delta),
        fix_rounds => a.fix_rounds,
        tokens_in => fmt_count(a.tokens.0),
        tokens_out => fmt_count(a.tokens.1),
        cost => crate::optimize::record::usd(a.cost_usd, a.cost_unknown),
        cost_sort => a.cost_usd,
        time => total_secs(a).map(fmt_secs).unwrap_or_default(),
        steps => fmt_steps(a, false),
        steps_short => fmt_steps(a, true),
        at_step => a.outcome.is_none().then(|| step_name(a.step)),
        commit => a.commit.as_ref().map(|c| c.chars().take(12).collect::<String>()),
        note_class => if class == "running" { "" } else { class },
        note,
        out_of_scope,
        tail => tail.map(|t| t.trim_end().to_owned()).filter(|t| !t.trim().is_empty()),
        plan => a.plan.trim_end().to_owned(),
        thinking => thinking.map(|t| t.trim_end().to_owned()),
        thinking_chars => thinking.map(|t| t.chars().count()),
        diff => (!a.diff.trim().is_empty()).then(|| super::diff(&a.diff)),
        diff_files => a.diff.lines().filter(|l| l.starts_with("diff --git")).count(),
        diff_added => diff_line("+", "+++"),
        diff_removed => diff_line("-", "---"),
        deltas,
        validation => a.validation.iter().map(|v| crate::validation::summary(std::slice::from_ref(v), 1)).collect::<Vec<_>>(),
        logs => a.logs.iter().map(|l| l.display().to_string()).collect::<Vec<_>>(),
        settings => crate::optimize::transcript::facts(a).into_iter().map(|(k, v)| vec![k, v]).collect::<Vec<_>>(),
        transcript => crate::optimize::transcript::shown(a)
            .into_iter()
            .map(|e| context! { at => e.at, class => e.class, line => e.line, detail => e.detail })
            .collect::<Vec<_>>(),
        transcript_tools => a.transcript.iter().filter(|e| matches!(e, crate::optimize::transcript::Entry::Tool { .. })).count(),
        transcript_dropped => a.transcript_dropped,
    }
}

/// Fewer instructions is better: green, more red (a count, not a verdict on time).
fn insns_class(d: Option<i64>) -> &'static str {
    match d {
        Some(d) if d < 0 => "faster",
        Some(d) if d > 0 => "slower",
        _ => "",
    }
}

/// The cumulative-gain plot.
fn plot(record: &RunRecord) -> String {
    if record.attempts.is_empty() {
        return String::new();
    }
    let cum = cumulative(record);
    let pct_of = |r: f64| (r - 1.0) * 100.0;
    let points: Vec<StepPoint> = record
        .attempts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let landed =
                a.geomean.as_ref().map(|g| (pct_of(cum[i] * g.ratio), pct_of(cum[i] * g.lo), pct_of(cum[i] * g.hi)));
            let mut tip = format!("#{} {} — {}", a.index, outcome_class(a.outcome.as_ref()).1, a.title());
            if let Some(g) = &a.geomean {
                tip.push_str(&format!("\nsuite {}", crate::output::format::delta(g)));
            }
            tip.push_str(&format!("\ncumulative {}", pct(pct_of(cum[i + 1]))));
            StepPoint {
                level: pct_of(cum[i + 1]),
                color: outcome_color(a.outcome.as_ref()),
                kept: a.outcome == Some(Outcome::Kept),
                landed,
                tip,
                ring_tip: landed.map(|l| format!("#{} would have landed at {}", a.index, pct(l.0))).unwrap_or_default(),
                href: format!("#attempt-{}", a.index),
            }
        })
        .collect();
    svg::steps(&points, "cumulative Δ % (lower is faster)")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::optimize::record::CaseDelta;
    use crate::optimize::record::SCHEMA;
    use bench_harness::stats::paired::RatioEstimate;

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

    #[test]
    fn the_transcript_and_the_attempt_settings_are_shown_escaped() {
        let a = crate::optimize::transcript::tests::sample_attempt();
        let mut record = empty();
        record.attempts.push(a);
        let page = render(&record);
        assert!(page.contains("<details class=\"transcript\">"), "collapsed transcript");
        assert!(page.contains("3 entries, 1 tool call(s), 4 more not kept"), "counts");
        assert!(page.contains("write_file &lt;script&gt;x.c +1 −0") && !page.contains("<script>x.c"), "escaped");
        assert!(page.contains("a &amp; b\nmore") && page.contains("validate: make ok"));
        assert!(page.contains("look at &lt;the&gt; prologue"), "hints escaped");
        assert!(page.contains("models <b>m1 / m2</b>"), "models");
    }

    fn delta(case: &str, ratio: f64, verdict: &str, insns: Option<i64>) -> CaseDelta {
        CaseDelta {
            case: case.into(),
            estimate: Some(est(ratio, 0.01, 30)),
            verdict: verdict.into(),
            insns_delta: insns,
        }
    }

    pub(crate) fn synthetic() -> RunRecord {
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
        // One script, the page's own (table sorting); nothing loaded.
        assert_eq!(html.matches("<script").count(), 1);
        assert!(!html.contains("<script src") && !html.contains("<link") && !html.contains("src="));
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
        assert!(html.contains("-4.0\u{a0}%"), "cumulative gain");
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
