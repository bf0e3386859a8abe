//! The prompts of the optimize loop, as minijinja templates.

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

/// The system prompt: codegen primer, scope inventory, earlier attempts
/// (this run's and `earlier` runs'), and the hint.
pub fn system(
    worktree: &Path,
    scope: &str,
    record: &RunRecord,
    earlier: &[RunRecord],
    hint: Option<&str>,
) -> Result<String> {
    let previous: Vec<_> = earlier
        .iter()
        .chain(std::iter::once(record))
        .flat_map(|r| r.attempts.iter())
        .filter(|a| !a.plan.trim().is_empty())
        .map(|a| {
            let outcome = a.outcome.as_ref().map(|o| o.name()).unwrap_or("interrupted");
            let detail = match (&a.outcome, a.geomean) {
                (Some(super::record::Outcome::Rejected { reason }), _) => reason.clone(),
                (_, Some(g)) => format!("suite {:+.2} %", g.delta_pct()),
                _ => String::new(),
            };
            context! { outcome, title => a.title(), detail }
        })
        .collect();
    Ok(env().get_template("system")?.render(context! {
        scope,
        files => scope_inventory(worktree, scope),
        previous,
        hint,
    })?)
}

/// The user message of the planning call.
pub fn propose(scope: &str) -> Result<String> {
    Ok(env().get_template("propose")?.render(context! { scope })?)
}

/// The user message of the implementation call, with the last failure if any.
pub fn implement(scope: &str, plan: &str, failure: Option<(&str, &str)>) -> Result<String> {
    let failure = failure.map(|(command, tail)| context! { command, tail });
    Ok(env().get_template("implement")?.render(context! { scope, plan, failure })?)
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
            attempts: vec![a],
            spent_usd: 0.0,
            cumulative_ratio: 1.0,
            stopped: None,
            setup: Default::default(),
        };
        let text = system(dir.path(), "src/cgen", &record, &[], Some("look at the prologue")).unwrap();
        assert!(text.contains("src/cgen/prologue.c (7 bytes)"), "{text}");
        assert!(text.contains("[rejected] drop the second ctx load — not faster"), "{text}");
        assert!(text.contains("Hint from the developer: look at the prologue"));
        let user = implement("src/cgen", "TITLE: x", Some(("make test", "FAILED: foo"))).unwrap();
        assert!(user.contains("`make test` failed") && user.contains("FAILED: foo"), "{user}");
        assert!(propose("src/cgen").unwrap().contains("TITLE:"));
    }
}
