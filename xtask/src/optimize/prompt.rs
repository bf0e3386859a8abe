//! The prompts of the optimize loop, as minijinja templates.

use super::evidence::Evidence;
use super::record::RunRecord;
use anyhow::Result;
use minijinja::{context, Environment};
use std::path::Path;

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    env.add_template("system", include_str!("templates/system.j2")).expect("valid template");
    env.add_template("propose", include_str!("templates/propose.j2")).expect("valid template");
    env.add_template("implement", include_str!("templates/implement.j2")).expect("valid template");
    env
}

/// The files of the scope, relative to the worktree, with their sizes.
pub fn scope_inventory(worktree: &Path, scope: &str) -> Vec<String> {
    let mut files: Vec<String> = ignore::WalkBuilder::new(worktree.join(scope))
        .hidden(false)
        .build()
        .flatten()
        .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
        .filter_map(|e| {
            let rel = e.path().strip_prefix(worktree).ok()?.display().to_string();
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            Some(format!("{rel} ({size} bytes)"))
        })
        .collect();
    files.sort();
    files
}

/// An earlier attempt as the prompt shows it: outcome, title, and what was
/// measured (the suite's change with its interval, the instruction delta,
/// the cases judged, each with its change and verdict).
fn earlier_attempt(a: &super::record::Attempt) -> minijinja::Value {
    let outcome = a.outcome.as_ref().map(|o| o.name()).unwrap_or("interrupted");
    let mut detail = vec![];
    if let Some(super::record::Outcome::Rejected { reason }) = &a.outcome {
        detail.push(reason.clone());
    }
    // A rejection's reason may already give the suite's change.
    if let Some(g) = a.geomean.filter(|_| !detail.iter().any(|d| d.contains("suite "))) {
        let (lo, hi) = g.ci_pct();
        detail.push(format!("suite {:+.2} % [{lo:+.2}, {hi:+.2}]", g.delta_pct()));
    }
    if let Some(d) = a.insns_delta {
        detail.push(format!("{d:+} xlated instructions"));
    }
    let cases: Vec<String> = a
        .deltas
        .iter()
        .map(|d| {
            let change = d.estimate.map_or("-".into(), |e| format!("{:+.2} %", e.delta_pct()));
            let insns = d.insns_delta.map_or(String::new(), |i| format!(", {i:+} insns"));
            format!("{} {change} ({}{insns})", d.case, d.verdict)
        })
        .collect();
    context! { outcome, title => a.title(), detail => detail.join("; "), cases }
}

fn docs<'a>(docs: impl Iterator<Item = &'a super::knowledge::Doc>) -> Vec<minijinja::Value> {
    docs.map(|d| context! { path => d.path.clone(), text => d.text.clone() }).collect()
}

/// Longest listing of a prologue in the system prompt.
const MAX_PROMPT_LISTING_CHARS: usize = 8_000;

/// The system prompt: codegen primer, what the tree says about itself
/// (agent docs, header comments, registers, style), the baseline's numbers and
/// prologue listings, the scope inventory, earlier attempts (this run's and
/// `earlier` runs', with their measured deltas), and the hint.
pub fn system(
    worktree: &Path,
    scope: &str,
    record: &RunRecord,
    earlier: &[RunRecord],
    hint: Option<&str>,
    evidence: &Evidence,
) -> Result<String> {
    let previous: Vec<_> = earlier
        .iter()
        .chain(std::iter::once(record))
        .flat_map(|r| r.attempts.iter())
        .filter(|a| !a.plan.trim().is_empty())
        .map(earlier_attempt)
        .collect();
    let k = &evidence.knowledge;
    let headers: Vec<_> = k.files.iter().filter(|f| !f.text.is_empty()).collect();
    let listings: Vec<_> = evidence
        .prologue_listings()
        .into_iter()
        .map(|(case, text)| {
            let text = super::knowledge::cut(&text, MAX_PROMPT_LISTING_CHARS, "show_program gives the whole listing");
            context! { case, text }
        })
        .collect();
    let prefixes: Vec<String> = k.subject_prefixes.iter().map(|(p, n)| format!("`{p}` ({n})")).collect();
    Ok(env().get_template("system")?.render(context! {
        scope,
        files => scope_inventory(worktree, scope),
        previous,
        hint,
        agent_docs => docs(k.agent_docs.iter()),
        headers => docs(headers.into_iter()),
        registers => k.registers.clone(),
        clang_format => k.clang_format.as_ref().map(|d| context! { path => d.path.clone(), text => d.text.clone() }),
        prefixes,
        scope_subjects => k.scope_subjects.clone(),
        table => evidence.numbers.as_ref().map(|n| super::evidence::table(Some(n), &evidence.shown_cases)),
        measured_at => evidence.numbers.as_ref().map(|n| n.commit.chars().take(12).collect::<String>()),
        listings,
        notes => evidence.notes.clone(),
    })?)
}

/// The user message of the planning call.
pub fn propose(scope: &str) -> Result<String> {
    Ok(env().get_template("propose")?.render(context! { scope })?)
}

/// The user message of the implementation call, with the last failure if
/// any; `explorer` when `build_and_show` / `$BFPERF_SHOW` are offered.
pub fn implement(scope: &str, plan: &str, failure: Option<(&str, &str)>, explorer: bool) -> Result<String> {
    let failure = failure.map(|(command, tail)| context! { command, tail });
    Ok(env().get_template("implement")?.render(context! { scope, plan, failure, explorer })?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimize::record::{Attempt, Outcome, RunRecord, SCHEMA};

    #[test]
    fn system_prompt_lists_scope_and_previous_attempts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src/cgen")).unwrap();
        std::fs::write(dir.path().join("src/cgen/prologue.c"), "int x;\n").unwrap();
        let mut a = Attempt::new(1);
        a.plan = "TITLE: drop the second ctx load\nWHY: ...".into();
        a.outcome = Some(Outcome::Rejected { reason: "not faster: suite +0.1 %".into() });
        let estimate = |ratio: f64| bench_harness::stats::paired::RatioEstimate {
            ratio,
            lo: ratio - 0.01,
            hi: ratio + 0.01,
            n: 8,
            level: 0.95,
        };
        a.geomean = Some(estimate(1.001));
        a.insns_delta = Some(-3);
        a.deltas = vec![crate::optimize::record::CaseDelta {
            case: "xdp__prologue".into(),
            estimate: Some(estimate(0.98)),
            verdict: "faster".into(),
            insns_delta: Some(-3),
        }];
        let mut kept = Attempt::new(2);
        kept.plan = "TITLE: hoist the L3 load".into();
        kept.outcome = Some(Outcome::Kept);
        kept.geomean = Some(estimate(0.97));
        let record = RunRecord {
            schema: SCHEMA.into(),
            run_id: "r".into(),
            sources: "/s".into(),
            branch: "b".into(),
            worktree: dir.path().into(),
            base_commit: "c".into(),
            scope: "src/cgen".into(),
            model: "m".into(),
            objective: "runtime".into(),
            baseline_failures: vec![],
            baseline_failed_commands: vec![],
            attempts: vec![a, kept],
            spent_usd: 0.0,
            cumulative_ratio: 1.0,
            stopped: None,
            setup: Default::default(),
        };
        let text =
            system(dir.path(), "src/cgen", &record, &[], Some("look at the prologue"), &Evidence::default()).unwrap();
        assert!(text.contains("src/cgen/prologue.c (7 bytes)"), "{text}");
        assert!(
            text.contains(
                "- [rejected] drop the second ctx load — not faster: suite +0.1 %; -3 xlated instructions\n    \
                 - xdp__prologue -2.00 % (faster, -3 insns)\n"
            ),
            "measured deltas, the suite's once:\n{text}"
        );
        assert!(text.contains("- [kept] hoist the L3 load — suite -3.00 % [-4.00, -2.00]\n"), "{text}");
        assert!(text.contains("Hint from the developer: look at the prologue"));
        let user = implement("src/cgen", "TITLE: x", Some(("make test", "FAILED: foo")), true).unwrap();
        assert!(user.contains("build_and_show") && user.contains("$BFPERF_SHOW CASE"), "{user}");
        assert!(!implement("src/cgen", "TITLE: x", None, false).unwrap().contains("build_and_show"));
        assert!(user.contains("`make test` failed") && user.contains("FAILED: foo"), "{user}");
        assert!(propose("src/cgen").unwrap().contains("TITLE:"));
    }
}
