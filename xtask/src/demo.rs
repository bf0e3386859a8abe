//! `cargo xtask demo`: the whole product on a machine with no bpfilter
//! checkout. The bundled minifilter test double is committed twice in a
//! temporary repository (the second commit makes its programs slower), the
//! real `bench-compare` judges the two commits, then two `optimize` attempts
//! run against a local scripted model server (one real optimization, one
//! pessimization), with the same tables and reports a real run writes.

use crate::compare;
use crate::flags::{Command as Cli, CompareFlags};
use crate::optimize;
use crate::session::Session;
use anyhow::{Context as _, Result};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the demo produced.
#[derive(Debug)]
pub struct DemoOutcome {
    /// The comparison of the two commits.
    pub comparison: bench_harness::engine::Comparison,
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

/// The API key the demo sends to its scripted server, whatever the environment
/// holds: the user's real key must never leave for a server that is not the API.
pub const DEMO_KEY: &str = "demo-local-key";

/// The requests a scripted server received, headers and body as text.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// Serve `responses` in order on 127.0.0.1 (any path), the last one repeated.
fn serve(responses: Vec<String>) -> Result<(String, std::thread::JoinHandle<()>, Seen)> {
    let server = tiny_http::Server::http("127.0.0.1:0")
        .map_err(|e| anyhow::anyhow!("cannot start the scripted model server: {e}"))?;
    let url = format!("http://{}", server.server_addr().to_ip().context("no TCP address")?);
    let seen = Seen::default();
    let log = std::sync::Arc::clone(&seen);
    let handle = std::thread::spawn(move || {
        let mut i = 0;
        for mut request in server.incoming_requests() {
            let mut text: String = request.headers().iter().map(|h| format!("{}: {}\n", h.field, h.value)).collect();
            let _ = std::io::Read::read_to_string(request.as_reader(), &mut text);
            log.lock().unwrap_or_else(|e| e.into_inner()).push(text);
            let body = responses[i.min(responses.len() - 1)].clone();
            i += 1;
            let header = tiny_http::Header::from_bytes("content-type", "application/json").expect("valid header");
            let _ = request.respond(tiny_http::Response::from_string(body).with_header(header));
            if i > responses.len() + 8 {
                break;
            }
        }
    });
    Ok((url, handle, seen))
}

/// Run the demo in `session` (this host), under its cache.
pub fn run(session: &Session, keep: bool) -> Result<DemoOutcome> {
    let cache = session.cache.as_path();
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

    let flags = compare_flags(&repo)?;
    let comparison = compare::run(&flags, session)?;
    let filter = flags.cases.filter;

    let (url, _server, _seen) = serve(script(64))?;
    let cx = optimize_context(&repo, url, &stamp, filter, cache, session.machine.clone())?;
    let run = optimize::run(&cx)?;
    if !keep {
        // The reports stay; the demo repository and its worktrees are removed.
        let _ = git(&repo, &["worktree", "prune"]);
    }
    Ok(DemoOutcome { comparison, run, dir })
}

/// The demo's bench-compare: its real command line, parsed as a user's would be.
fn compare_flags(repo: &Path) -> Result<CompareFlags> {
    let filter = "prologue,single_rule__ip4_saddr,single_rule__ip6_saddr,sport";
    let args = ["bench-compare", "HEAD~1", "HEAD", "--filter", filter, "--quick", "--time-budget", "15", "--sources"];
    let args = args.iter().map(std::ffi::OsString::from).chain([repo.as_os_str().to_owned()]);
    let Cli::BenchCompare(flags) = Cli::parse_from(args)? else { unreachable!("parsed as bench-compare") };
    Ok(flags)
}

/// The demo's optimize run, from its command line parsed as a user's would
/// be: two attempts against the scripted server at `url`, with [`DEMO_KEY`]
/// (never the environment's key).
fn optimize_context(
    repo: &Path,
    url: String,
    stamp: &str,
    filter: Option<String>,
    cache: &Path,
    machine: crate::machine::Machine,
) -> Result<optimize::Context> {
    let run_id = format!("demo-{stamp}");
    let mut args: Vec<std::ffi::OsString> = [
        "optimize",
        "--iterations",
        "2",
        "--hint",
        "the demo's scripted model knows one trick",
        "--effort",
        "low",
        "--budget-usd",
        "1",
        "--run-id",
        &run_id,
        "--max-fix-attempts",
        "1",
        "--api-base-url",
        &url,
        "--validate",
        "make -C {build} -j{jobs}",
        "--validate",
        "make -C {build} test_bin",
        "--validate",
        "test:make -C {build} test",
        "--max-turns",
        "10",
        "--quick",
        "--time-budget",
        "15",
    ]
    .iter()
    .map(Into::into)
    .collect();
    args.extend(["--sources".into(), repo.as_os_str().to_owned()]);
    if let Some(f) = filter {
        args.extend(["--filter".into(), f.into()]);
    }
    let Cli::Optimize(flags) = Cli::parse_from(args)? else { unreachable!("parsed as optimize") };
    let mut cx = optimize::Context::new(*flags, cache.to_owned(), machine)?;
    cx.api_key = crate::agent::ApiKey::new(DEMO_KEY);
    Ok(cx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::{Conversation, Effort};

    fn local() -> crate::machine::Machine {
        crate::machine::Machine::Local(Default::default())
    }

    /// The real key a user may have exported; [`model_call_child`] runs with it set.
    const REAL_KEY: &str = "sk-ant-REAL-SECRET-never-sent";

    #[test]
    fn the_demo_runs_quick_comparisons_of_15_s_from_real_command_lines() {
        use bench_harness::engine::CompareConfig;
        let repo = Path::new("/demo/minifilter");
        let expected = CompareConfig { time_budget_s: 15.0, ..CompareConfig::quick() };
        let flags = compare_flags(repo).unwrap();
        assert_eq!((flags.base.as_str(), flags.reference.as_str()), ("HEAD~1", "HEAD"));
        assert_eq!(flags.tree.sources.as_deref(), Some(repo));
        assert_eq!(compare::config(&flags).unwrap(), expected);
        let filter = flags.cases.filter.clone();
        let cx =
            optimize_context(repo, "http://127.0.0.1:9".into(), "t", filter.clone(), Path::new("/c"), local()).unwrap();
        let f = &cx.flags;
        assert_eq!((cx.config, &f.cases.filter, f.iterations, f.max_fix_attempts), (expected, &filter, 2, 1));
        assert_eq!(f.tree.sources.as_deref(), Some(repo));
        assert_eq!(cx.validate.len(), 3);
        assert!(cx.sandbox.confine, "the demo's attempts run in the sandbox");
        assert_eq!(cx.api_key.as_ref().map(|k| k.expose()), Some(DEMO_KEY));
    }

    #[test]
    fn the_demo_never_sends_the_real_api_key() {
        // The key comes from the environment: set it in a child (this test binary,
        // one test) rather than in this process, whose other tests read it too.
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["demo::tests::model_call_child", "--exact", "--ignored", "--nocapture"])
            .env("ANTHROPIC_API_KEY", REAL_KEY)
            .env("OPENAI_API_KEY", REAL_KEY)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    #[ignore = "run by the_demo_never_sends_the_real_api_key, with a real-looking key in the environment"]
    fn model_call_child() {
        assert_eq!(std::env::var("ANTHROPIC_API_KEY").as_deref(), Ok(REAL_KEY), "run by the parent test only");
        let (url, _server, seen) = serve(script(64)).unwrap();
        let cache = tempfile::tempdir().unwrap();
        let worktree = tempfile::tempdir().unwrap();
        let cx = optimize_context(worktree.path(), url, "test", None, cache.path(), local()).unwrap();
        let mut model = optimize::make_model(&cx, &cx.proposal_model, worktree.path(), &Default::default()).unwrap();
        let conv = Conversation { system: "s".into(), user: "u".into(), max_turns: 2, effort: Effort::Low };
        let mut tools = crate::agent::tools::FileTools::new(worktree.path(), None).unwrap();
        let outcome = model.converse(&conv, &mut tools).unwrap();
        assert!(outcome.text.contains("TITLE: drop the redundant prologue padding"), "{}", outcome.text);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "one request");
        assert!(seen[0].to_ascii_lowercase().contains(&format!("x-api-key: {DEMO_KEY}")), "{}", seen[0]);
        assert!(!seen[0].contains("REAL-SECRET"), "the real key reached the scripted server:\n{}", seen[0]);
    }
}
