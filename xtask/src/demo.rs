//! `cargo xtask demo`: the whole product on a machine with no bpfilter
//! checkout. The bundled minifilter test double is committed twice in a
//! temporary repository (the second commit makes its programs slower), the
//! real `bench-compare` judges the two commits, then two `optimize` attempts
//! run against a local scripted model server (one real optimization, one
//! pessimization), with the same tables and reports a real run writes.

use crate::compare::{self, CompareOptions};
use crate::optimize::{self, Backend, Objective, OptimizeOptions};
use anyhow::{Context as _, Result};
use bench_harness::interleave::CompareConfig;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the demo produced.
#[derive(Debug)]
pub struct DemoOutcome {
    /// The comparison of the two commits.
    pub comparison: bench_harness::interleave::Comparison,
    /// The optimize run.
    pub run: optimize::record::RunRecord,
    /// Where the reports are.
    pub dir: PathBuf,
}

/// Copy the minifilter fixture (any tree), skipping its build directories.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with("build") {
            continue;
        }
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("git").args(args).current_dir(dir).output().context("cannot run git")?;
    anyhow::ensure!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    Ok(())
}

/// Set minifilter's prologue padding knob (redundant instructions per program).
pub fn set_padding(dir: &Path, n: u32) -> Result<()> {
    let path = dir.join("src/libbpfilter/cgen/knobs.h");
    let text = std::fs::read_to_string(&path)?;
    let line =
        text.lines().find(|l| l.starts_with("#define MF_PROLOGUE_PADDING")).context("knob line missing")?.to_owned();
    std::fs::write(&path, text.replace(&line, &format!("#define MF_PROLOGUE_PADDING {n}")))?;
    Ok(())
}

fn message(id: &str, content: serde_json::Value, stop: &str) -> String {
    json!({
        "id": id, "type": "message", "role": "assistant", "model": "demo-model",
        "content": content, "stop_reason": stop,
        "usage": { "input_tokens": 1500, "output_tokens": 120 }
    })
    .to_string()
}

fn edit(id: &str, from: u32, to: u32) -> String {
    message(
        id,
        json!([{ "type": "tool_use", "id": format!("tool-{id}"), "name": "replace_in_file", "input": {
            "path": "src/libbpfilter/cgen/knobs.h",
            "old": format!("#define MF_PROLOGUE_PADDING {from}"),
            "new": format!("#define MF_PROLOGUE_PADDING {to}"),
        }}]),
        "tool_use",
    )
}

fn text(id: &str, t: &str) -> String {
    message(id, json!([{ "type": "text", "text": t }]), "end_turn")
}

/// The scripted model: two attempts, each a plan, an edit and a closing line.
fn script(padding: u32) -> Vec<String> {
    vec![
        text("p1", "TITLE: drop the redundant prologue padding\nWHY: every prologue runs dependent ALU instructions whose result nothing reads; removing them shortens the hot path of every program.\nHOW: set MF_PROLOGUE_PADDING to 0 in src/libbpfilter/cgen/knobs.h"),
        edit("i1", padding, 0),
        text("d1", "Set the prologue padding to 0."),
        text("p2", "TITLE: unroll the prologue checks\nWHY: a scripted pessimization, to show a measured-slower change being dropped.\nHOW: raise MF_PROLOGUE_PADDING to 300"),
        edit("i2", 0, 300),
        text("d2", "Raised the padding."),
    ]
}

/// Serve `responses` in order on 127.0.0.1 (any path), the last one repeated.
fn serve(responses: Vec<String>) -> Result<(String, std::thread::JoinHandle<()>)> {
    let server = tiny_http::Server::http("127.0.0.1:0")
        .map_err(|e| anyhow::anyhow!("cannot start the scripted model server: {e}"))?;
    let url = format!("http://{}", server.server_addr().to_ip().context("no TCP address")?);
    let handle = std::thread::spawn(move || {
        let mut i = 0;
        for request in server.incoming_requests() {
            let body = responses[i.min(responses.len() - 1)].clone();
            i += 1;
            let header = tiny_http::Header::from_bytes("content-type", "application/json").expect("valid header");
            let _ = request.respond(tiny_http::Response::from_string(body).with_header(header));
            if i > responses.len() + 8 {
                break;
            }
        }
    });
    Ok((url, handle))
}

/// Run the demo under `cache`.
pub fn run(cache: &Path, keep: bool) -> Result<DemoOutcome> {
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string();
    let dir = cache.join("demo").join(&stamp);
    let repo = dir.join("minifilter");
    let fixture = crate::workspace::root()?.join("tests/fixtures/minifilter");
    copy_tree(&fixture, &repo).with_context(|| format!("cannot copy {}", fixture.display()))?;
    git(&repo, &["init", "-q", "-b", "main"])?;
    git(&repo, &["config", "user.email", "demo@bfperf.invalid"])?;
    git(&repo, &["config", "user.name", "bfperf demo"])?;
    git(&repo, &["add", "-A"])?;
    git(&repo, &["commit", "-q", "-m", "minifilter: initial import"])?;
    set_padding(&repo, 64)?;
    git(&repo, &["commit", "-q", "-am", "cgen: pad every prologue with 64 instructions"])?;
    eprintln!("demo: a minifilter repository with two commits at {}", repo.display());

    let mut config = CompareConfig::quick();
    config.time_budget_s = 15.0;
    let filter = Some("prologue,single_rule__ip4_saddr,single_rule__ip6_saddr,sport".to_string());
    let comparison = compare::run(&CompareOptions {
        sources: Some(repo.clone()),
        base: "HEAD~1".into(),
        reference: "HEAD".into(),
        filter: filter.clone(),
        config,
        cache: cache.to_owned(),
        machine: Default::default(),
    })?;

    let (url, _server) = serve(script(64))?;
    if std::env::var_os("ANTHROPIC_API_KEY").is_none() {
        // The local scripted server ignores it; the client insists on one.
        std::env::set_var("ANTHROPIC_API_KEY", "demo-local-key");
    }
    let opts = OptimizeOptions {
        sources: Some(repo.clone()),
        iterations: 2,
        hint: Some("the demo's scripted model knows one trick".into()),
        model: "claude-sonnet-4-5".into(),
        effort: crate::agent::Effort::Low,
        budget_usd: Some(1.0),
        scope: "src/libbpfilter/cgen".into(),
        objective: Objective::Runtime,
        max_regression_pct: 2.0,
        resume: None,
        run_id: Some(format!("demo-{stamp}")),
        max_fix_attempts: 1,
        api_base_url: Some(url),
        backend: Backend::Anthropic,
        validate: vec![
            "make -C {build} -j{jobs}".into(),
            "make -C {build} test_bin".into(),
            "make -C {build} test".into(),
        ],
        filter,
        include_flagged: false,
        config,
        cache: cache.to_owned(),
        machine: Default::default(),
        max_turns: 10,
        serve: None,
        sandbox: Default::default(),
    };
    let run = optimize::run(&opts)?;
    if !keep {
        // The reports stay; the demo repository and its worktrees are removed.
        let _ = git(&repo, &["worktree", "prune"]);
    }
    Ok(DemoOutcome { comparison, run, dir })
}
