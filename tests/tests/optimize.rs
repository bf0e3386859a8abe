//! `cargo xtask optimize` end to end, against the minifilter test double, the
//! real kernel and a scripted Messages API (wiremock on 127.0.0.1): a real
//! optimization is kept, a real pessimization rejected, a change that breaks the
//! fixture's tests is fed back and then given up, edits outside the scope are
//! refused, the API's faults and the budget are handled, Ctrl-C is resumable,
//! and each bad input gets one clear error. No test talks to the real API.
//!
//! Every run is kept cheap: two prologue cases, `--quick`, a 5 s measuring
//! budget. Runs take the host-wide benchmark lock, so the tests of this file
//! effectively run one after the other. After every test the user's checkout
//! must be byte-for-byte what it was (the run works in its own worktree).

use bfperf_tests::OPTIMIZE_CHEAP as CHEAP;
use bfperf_tests::{finish_leaving_no_mount as finish, require_bpf, show, FixtureRepo, Run};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// The API key handed to xtask: it must never appear in any output.
const KEY: &str = "sk-test-SECRET-optimize-4242";
const MODEL: &str = "claude-sonnet-4-5";
const KNOBS: &str = "src/libbpfilter/cgen/knobs.h";

// ---------------------------------------------------------------------------
// The scripted Messages API.

/// Which conversation of the optimize loop a request belongs to (told apart by
/// the tools it offers: only the implementation gets the write tools).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Propose,
    Implement,
}

/// One request to the mock, as the script sees it.
struct Call {
    phase: Phase,
    /// 0-based number of this conversation among the phase's conversations
    /// (counted on their first request, so a retried first request counts again).
    conv: usize,
    /// 0 for a conversation's first request, then one more per tool round.
    turn: usize,
}

/// A wiremock server answering `POST /v1/messages` with a script, and the
/// runtime that drives its set-up from these synchronous tests (the server
/// itself runs on its own thread, so it answers while a test waits for xtask).
struct ModelServer {
    rt: tokio::runtime::Runtime,
    server: MockServer,
}

impl ModelServer {
    fn start(script: impl Fn(&Call) -> ResponseTemplate + Send + Sync + 'static) -> ModelServer {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let server = rt.block_on(MockServer::start());
        let convs = [AtomicUsize::new(0), AtomicUsize::new(0)];
        let responder = move |req: &Request| {
            let body: Value = serde_json::from_slice(&req.body).expect("xtask sends JSON");
            let phase = phase_of(&body);
            let turn = body["messages"].as_array().map_or(0, |m| m.len() / 2);
            let counter = &convs[phase as usize];
            let conv =
                if turn == 0 { counter.fetch_add(1, Ordering::SeqCst) } else { counter.load(Ordering::SeqCst) - 1 };
            script(&Call { phase, conv, turn })
        };
        rt.block_on(Mock::given(method("POST")).and(path("/v1/messages")).respond_with(responder).mount(&server));
        ModelServer { rt, server }
    }

    fn uri(&self) -> String {
        self.server.uri()
    }

    /// The JSON bodies of the requests received so far.
    fn bodies(&self) -> Vec<Value> {
        self.rt
            .block_on(self.server.received_requests())
            .expect("recording is on")
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    }

    /// The bodies of the first requests of `phase`'s conversations, in order.
    fn first_requests(&self, phase: Phase) -> Vec<Value> {
        self.bodies()
            .into_iter()
            .filter(|b| phase_of(b) == phase && b["messages"].as_array().unwrap().len() == 1)
            .collect()
    }
}

fn phase_of(body: &Value) -> Phase {
    if tool_names(body).iter().any(|t| t == "write_file") {
        Phase::Implement
    } else {
        Phase::Propose
    }
}

fn tool_names(body: &Value) -> Vec<String> {
    body["tools"].as_array().into_iter().flatten().filter_map(|t| t["name"].as_str().map(str::to_owned)).collect()
}

/// A Messages API response; every call costs 1,000 input and 200 output tokens.
fn reply(content: Value, stop_reason: &str) -> ResponseTemplate {
    reply_costing(content, stop_reason, 200)
}

/// A Messages API response with 1,000 input and `output_tokens` output tokens.
fn reply_costing(content: Value, stop_reason: &str, output_tokens: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "msg_test", "type": "message", "role": "assistant", "model": MODEL,
        "content": content, "stop_reason": stop_reason,
        "usage": {"input_tokens": 1000, "output_tokens": output_tokens}
    }))
}

fn text(t: &str) -> ResponseTemplate {
    reply(json!([{"type": "text", "text": t}]), "end_turn")
}

/// One turn calling `calls` (tool name, input).
fn tool_uses(calls: &[(&str, Value)]) -> ResponseTemplate {
    let blocks: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (name, input))| json!({"type": "tool_use", "id": format!("toolu_{i}"), "name": name, "input": input}))
        .collect();
    reply(Value::Array(blocks), "tool_use")
}

/// The edit setting the prologue padding knob from `from` to `to`.
fn set_padding_edit(from: u32, to: u32) -> (&'static str, Value) {
    let line = |n: u32| format!("#define MF_PROLOGUE_PADDING {n}");
    ("replace_in_file", json!({"path": KNOBS, "old": line(from), "new": line(to)}))
}

const PLAN_DROP_PADDING: &str = "TITLE: drop the redundant prologue padding\n\
WHY: the padding instructions compute a value nothing reads, and every packet pays for them.\n\
HOW: set MF_PROLOGUE_PADDING to 0 in src/libbpfilter/cgen/knobs.h.";

/// The usual model: `plan` when asked for a plan; when asked to implement it,
/// `edits` on the first turn and "done" once they were made.
fn scripted(plan: &'static str, edits: Vec<(&'static str, Value)>) -> impl Fn(&Call) -> ResponseTemplate {
    move |call: &Call| match (call.phase, call.turn) {
        (Phase::Propose, _) => text(plan),
        (Phase::Implement, 0) => tool_uses(&edits),
        (Phase::Implement, _) => text("Done: edited the scope as planned."),
    }
}

// ---------------------------------------------------------------------------
// Running xtask optimize.

/// `xtask optimize ARGS --sources SOURCES --cache-dir CACHE` with the test key
/// (and no base URL from the environment: each test passes its mock's).
fn optimize_command(sources: &Path, cache: &Path, args: &[&str]) -> Command {
    let mut cmd = bfperf_tests::subcommand("optimize", sources, args, cache);
    cmd.env("ANTHROPIC_API_KEY", KEY).env_remove("ANTHROPIC_BASE_URL");
    cmd
}

/// Run `cmd` to its end; its time and output go to the test's (captured) stderr.
fn run(mut cmd: Command) -> Run {
    let started = Instant::now();
    let out = finish(cmd.spawn().expect("xtask runs"));
    eprintln!("--- xtask ({:.1} s, exit {}):\n{}", started.elapsed().as_secs_f64(), out.code, out.stderr);
    out
}

/// `--run-id RUN_ID` (or `--resume RUN_ID`) against the mock at `uri`, with [`CHEAP`] and `extra`.
fn optimize_args<'a>(new: bool, run_id: &'a str, uri: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![if new { "--run-id" } else { "--resume" }, run_id, "--api-base-url", uri];
    args.extend_from_slice(CHEAP);
    args.extend_from_slice(extra);
    args
}

/// A new run `run_id` against the mock.
fn optimize(repo: &FixtureRepo, cache: &Path, server: &ModelServer, run_id: &str, extra: &[&str]) -> Run {
    let uri = server.uri();
    run(optimize_command(repo.path(), cache, &optimize_args(true, run_id, &uri, extra)))
}

/// `--resume run_id` against the mock at `uri`.
fn resume(repo: &FixtureRepo, cache: &Path, uri: &str, run_id: &str, extra: &[&str]) -> Run {
    run(optimize_command(repo.path(), cache, &optimize_args(false, run_id, uri, extra)))
}

/// The lines of `stderr` that are not the host lock's queueing messages
/// (another benchmark of this host may hold the lock when a test starts).
fn own_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.starts_with("waiting for another benchmark") && !l.starts_with("lock obtained after"))
        .collect()
}

/// The failure's `error: ` line, which must be the only one.
fn error_line(run: &Run) -> &str {
    assert_ne!(run.code, 0, "expected a failure:\n{}", show(run));
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "expected one error line:\n{}", show(run));
    errors[0]
}

/// The `error: ` line of a refused run, which must be all it printed (lock messages aside).
fn only_line(run: &Run) -> &str {
    let line = error_line(run);
    assert_eq!(own_lines(&run.stderr), [line], "one line:\n{}", show(run));
    assert_eq!(run.stdout, "", "{}", show(run));
    line
}

fn run_dir(cache: &Path, run_id: &str) -> PathBuf {
    cache.join("optimize").join(run_id)
}

/// The run's history.json, schema checked.
fn history(cache: &Path, run_id: &str) -> Value {
    let path = run_dir(cache, run_id).join("history.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).expect("history.json is JSON");
    assert_eq!(v["schema"], "bfperf.optimize-run.v1");
    assert_eq!(v["run_id"], run_id);
    v
}

fn attempts(h: &Value) -> &Vec<Value> {
    h["attempts"].as_array().expect("attempts")
}

/// `attempts[].outcome.result`, in order.
fn outcomes(h: &Value) -> Vec<String> {
    attempts(h).iter().map(|a| a["outcome"]["result"].as_str().unwrap_or("none").to_owned()).collect()
}

fn git(dir: &Path, args: &[&str]) -> String {
    bfperf_tests::git(dir, args).trim().to_owned()
}

/// The tip of the run's branch in the user's repository.
fn branch_tip(repo: &FixtureRepo, run_id: &str) -> String {
    git(repo.path(), &["rev-parse", &format!("refs/heads/optimize/{run_id}")])
}

/// The key must appear in none of the run's outputs nor in its files.
fn assert_key_never_shown(run: &Run, cache: &Path, run_id: &str) {
    assert!(!run.stdout.contains("SECRET") && !run.stderr.contains("SECRET"), "the key leaked:\n{}", show(run));
    for name in ["history.json", "report.html"] {
        let path = run_dir(cache, run_id).join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!text.contains("SECRET"), "the key leaked into {}", path.display());
    }
}

// ---------------------------------------------------------------------------
// The user's checkout must not change.

/// What a checkout looks like: every file outside `.git` (bytes, or a
/// symlink's target, and the executable bit), HEAD and `git status`.
#[derive(Debug, PartialEq, Eq)]
struct Checkout {
    files: BTreeMap<PathBuf, (Vec<u8>, bool)>,
    head: String,
    head_ref: String,
    status: String,
}

impl Checkout {
    fn take(repo: &FixtureRepo) -> Checkout {
        fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<PathBuf, (Vec<u8>, bool)>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let entry = entry.unwrap();
                let path = entry.path();
                let rel = path.strip_prefix(root).unwrap().to_owned();
                let kind = entry.file_type().unwrap();
                if entry.file_name() == ".git" {
                    continue;
                } else if kind.is_symlink() {
                    let target = std::fs::read_link(&path).unwrap();
                    out.insert(rel, (target.into_os_string().into_encoded_bytes(), false));
                } else if kind.is_dir() {
                    out.insert(rel, (b"<dir>".to_vec(), false));
                    walk(&path, root, out);
                } else {
                    let exec = entry.metadata().unwrap().permissions().mode() & 0o111 != 0;
                    out.insert(rel, (std::fs::read(&path).unwrap(), exec));
                }
            }
        }
        let mut files = BTreeMap::new();
        walk(repo.path(), repo.path(), &mut files);
        Checkout {
            files,
            head: repo.head(),
            head_ref: git(repo.path(), &["symbolic-ref", "HEAD"]),
            status: repo.status(),
        }
    }

    /// Panics, listing the differences, unless the checkout is as it was.
    fn assert_unchanged(&self, repo: &FixtureRepo) {
        let now = Checkout::take(repo);
        if &now == self {
            return;
        }
        let mut diffs = vec![];
        for (path, before) in &self.files {
            match now.files.get(path) {
                None => diffs.push(format!("removed {}", path.display())),
                Some(after) if after != before => diffs.push(format!("changed {}", path.display())),
                _ => {}
            }
        }
        diffs.extend(
            now.files.keys().filter(|p| !self.files.contains_key(*p)).map(|p| format!("added {}", p.display())),
        );
        for (what, a, b) in [
            ("HEAD", &self.head, &now.head),
            ("HEAD ref", &self.head_ref, &now.head_ref),
            ("git status", &self.status, &now.status),
        ] {
            if a != b {
                diffs.push(format!("{what}: {a:?} -> {b:?}"));
            }
        }
        panic!("the user's checkout changed:\n{}", diffs.join("\n"));
    }
}

/// A clean fixture and the snapshot of its checkout.
fn fixture() -> (FixtureRepo, Checkout) {
    let repo = FixtureRepo::new();
    let before = Checkout::take(&repo);
    assert_eq!(before.status, "", "a fresh fixture is clean");
    (repo, before)
}

fn cache_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("bfperf-optimize-cache-").tempdir().unwrap()
}

/// The run's worktree has no change left (tracked or not; ignored build output aside).
fn assert_worktree_clean(h: &Value) {
    let wt = Path::new(h["worktree"].as_str().unwrap());
    assert_eq!(git(wt, &["status", "--porcelain"]), "", "the run's worktree {} is dirty", wt.display());
}

// ---------------------------------------------------------------------------
// The tests.

#[test]
fn a_real_optimization_is_kept_and_committed() {
    require_bpf!();
    // 16 padding instructions (the fixture's own) are a few percent of the
    // prologue: measurable, but close to what a loaded CI host resolves in a
    // quick comparison. 128 make the effect unmistakable.
    let repo = FixtureRepo::new();
    repo.set_padding(128);
    let base = repo.commit("cgen: 128 redundant instructions per prologue");
    let before = Checkout::take(&repo);
    let cache = cache_dir();
    let server = ModelServer::start(scripted(PLAN_DROP_PADDING, vec![set_padding_edit(128, 0)]));

    // The run's outputs go through the output layer as every command's do.
    let outputs = tempfile::tempdir().unwrap();
    let (md, csv_path) = (outputs.path().join("run.md"), outputs.path().join("run.csv"));
    let extra = ["--iterations", "1", "--markdown", md.to_str().unwrap(), "--csv", csv_path.to_str().unwrap()];
    let out = optimize(&repo, cache.path(), &server, "fast", &extra);
    assert_eq!(out.code, 0, "{}", show(&out));
    let h = history(cache.path(), "fast");
    assert_eq!(outcomes(&h), ["kept"], "{}", show(&out));
    assert!(out.stdout.contains("1 attempts, 1 kept"), "{}", show(&out));
    assert!(out.stdout.contains("branch to merge: optimize/fast"), "{}", show(&out));
    let markdown = std::fs::read_to_string(&md).unwrap();
    assert!(markdown.contains("1 attempt(s), 1 kept: cumulative **-"), "{markdown}");
    assert!(markdown.contains("| 1 | kept | "), "{markdown}");
    let mut rows = csv::Reader::from_path(&csv_path).unwrap();
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!((rows.len(), &rows[0][1]), (1, "kept"), "{rows:?}");
    assert!(rows[0][3].parse::<f64>().unwrap() < 0.0, "faster: {rows:?}");

    // The branch advanced by one commit, which touches knobs.h only.
    let tip = branch_tip(&repo, "fast");
    assert_ne!(tip, base);
    assert_eq!(git(repo.path(), &["rev-parse", &format!("{tip}~1")]), base, "one commit on top of the base");
    assert_eq!(git(repo.path(), &["diff", "--name-only", &base, &tip]), KNOBS);
    assert_eq!(git(repo.path(), &["log", "-1", "--format=%s", &tip]), "lib: cgen: drop the redundant prologue padding");
    let shown = git(repo.path(), &["show", &format!("{tip}:{KNOBS}")]);
    assert!(shown.contains("#define MF_PROLOGUE_PADDING 0"), "{shown}");

    // The history tells the whole story.
    assert_eq!(h["base_commit"], base.as_str());
    assert_eq!(h["branch"], "optimize/fast");
    let a = &attempts(&h)[0];
    assert_eq!(a["index"], 1);
    assert_eq!(a["step"], "done");
    assert_eq!(a["commit"], tip.as_str());
    assert_eq!(a["plan"], PLAN_DROP_PADDING);
    let diff = a["diff"].as_str().unwrap();
    assert!(
        diff.contains("-#define MF_PROLOGUE_PADDING 128") && diff.contains("+#define MF_PROLOGUE_PADDING 0"),
        "{diff}"
    );
    let g = &a["geomean"];
    assert!(g["hi"].as_f64().unwrap() < 1.0, "significantly faster: {g}");
    assert!(a["insns_delta"].as_i64().unwrap() < 0, "fewer instructions: {}", a["insns_delta"]);
    assert_eq!(a["deltas"].as_array().unwrap().len(), 2, "{}", a["deltas"]);
    let tokens = a["tokens"].as_array().unwrap();
    assert!(tokens[0].as_u64().unwrap() >= 3000 && tokens[1].as_u64().unwrap() >= 600, "three calls: {tokens:?}");
    assert!(a["cost_usd"].as_f64().unwrap() > 0.0);
    assert!(h["spent_usd"].as_f64().unwrap() > 0.0);
    assert!(h["cumulative_ratio"].as_f64().unwrap() < 1.0);
    assert!(a["refusals"].as_array().unwrap().is_empty(), "{}", a["refusals"]);
    assert_worktree_clean(&h);
    assert_eq!(git(Path::new(h["worktree"].as_str().unwrap()), &["rev-parse", "HEAD"]), tip);

    // The live view: each tool call and bfperf's steps on the terminal as they happen, and
    // the transcript (calls with their arguments and results) in the record and the report.
    let edit = format!("attempt 1: replace_in_file {KNOBS} +1 −1");
    assert!(out.stderr.contains(&edit), "{}", show(&out));
    assert!(out.stderr.contains("attempt 1: validate: make -C"), "{}", show(&out));
    // Each command is announced as it starts, with its place in the list.
    assert!(out.stderr.contains("attempt 1: validate: running make -C"), "{}", show(&out));
    assert!(out.stderr.contains(" (1/"), "{}", show(&out));
    assert!(out.stderr.contains("attempt 1: measuring: loading xdp__prologue"), "{}", show(&out));
    let transcript = a["transcript"].as_array().unwrap();
    let call = transcript.iter().find(|e| e["kind"] == "tool").expect("the edit is in the transcript");
    assert_eq!((call["name"].as_str(), call["step"].as_str()), (Some("replace_in_file"), Some("implement")));
    assert!(call["args"].as_str().unwrap().contains("MF_PROLOGUE_PADDING 0"), "{call}");
    assert!(transcript.iter().any(|e| e["kind"] == "text" && e["step"] == "propose"), "the plan's turn");
    assert_eq!(a["parent"], base.as_str());
    // No --model given: both steps record the default.
    let default = Some(xtask::optimize::DEFAULT_MODEL);
    assert_eq!((a["proposal_model"].as_str(), a["impl_model"].as_str()), (default, default));
    assert_eq!(a["effort"].as_str(), Some("medium"));
    for when in ["started_at", "ended_at"] {
        assert!(a[when].as_str().is_some_and(|t| t.ends_with('Z')), "{when}: {a}");
    }
    let report = std::fs::read_to_string(run_dir(cache.path(), "fast").join("report.html")).unwrap();
    assert!(report.contains("<b>Transcript</b>") && report.contains(&edit["attempt 1: ".len()..]), "{report}");

    // The model was asked for a plan, then for its implementation with the write tools.
    let bodies = server.bodies();
    assert_eq!(bodies.len(), 3, "propose, implement, implement after the tool result");
    assert_eq!(tool_names(&bodies[0]), ["read_file", "list_dir", "grep", "show_program", "list_cases"]);
    assert!(tool_names(&bodies[1]).contains(&"replace_in_file".to_string()));
    let user = bodies[1]["messages"][0]["content"].as_str().unwrap();
    assert!(user.contains(PLAN_DROP_PADDING), "the plan is handed to the implementer:\n{user}");

    assert_key_never_shown(&out, cache.path(), "fast");
    before.assert_unchanged(&repo);
}

#[test]
fn a_real_pessimization_is_measured_and_rejected() {
    require_bpf!();
    let (repo, before) = fixture();
    let cache = cache_dir();
    let plan = "TITLE: pad the prologue some more\nWHY: a longer prologue warms the pipeline.\nHOW: set MF_PROLOGUE_PADDING to 400.";
    let server = ModelServer::start(scripted(plan, vec![set_padding_edit(16, 400)]));
    let base = repo.head();

    let out = optimize(&repo, cache.path(), &server, "slow", &["--iterations", "1"]);
    assert_eq!(out.code, 0, "{}", show(&out));
    let h = history(cache.path(), "slow");
    assert_eq!(outcomes(&h), ["rejected"], "{}", show(&out));
    let a = &attempts(&h)[0];
    let reason = a["outcome"]["reason"].as_str().unwrap();
    assert!(reason.contains("not significantly faster"), "{reason}");
    assert!(a["geomean"]["lo"].as_f64().unwrap() > 1.0, "measured slower: {}", a["geomean"]);
    assert!(a["insns_delta"].as_i64().unwrap() > 0, "more instructions: {}", a["insns_delta"]);
    assert!(
        a["deltas"].as_array().unwrap().iter().all(|d| d["verdict"].as_str().unwrap().contains("slower")),
        "{}",
        a["deltas"]
    );
    // It was committed to be measured, then dropped: the branch is back at its parent.
    assert!(a["commit"].is_string(), "the measured commit is recorded");
    assert_eq!(branch_tip(&repo, "slow"), base, "the branch is back at the base");
    assert_eq!(h["cumulative_ratio"], 1.0);
    assert!(out.stdout.contains("1 attempts, 0 kept"), "{}", show(&out));
    assert_worktree_clean(&h);
    assert_eq!(git(Path::new(h["worktree"].as_str().unwrap()), &["rev-parse", "HEAD"]), base);
    before.assert_unchanged(&repo);
}

#[test]
fn a_change_that_breaks_the_tests_is_fed_back_then_given_up() {
    require_bpf!();
    let (repo, before) = fixture();
    let cache = cache_dir();
    // Swapping XDP's verdict codes builds fine and loads fine, but every XDP
    // program then returns the wrong verdict: the fixture's cgen test fails.
    let plan = "TITLE: fold the XDP verdict codes\nWHY: fewer branches in verdict_code().\nHOW: rewrite the XDP case of verdict_code in program.c.";
    let broken = (
        "replace_in_file",
        json!({"path": "src/libbpfilter/cgen/program.c",
               "old": "return accept ? XDP_PASS : XDP_DROP;", "new": "return accept ? XDP_DROP : XDP_PASS;"}),
    );
    let server = ModelServer::start(scripted(plan, vec![broken]));
    let base = repo.head();

    let out = optimize(&repo, cache.path(), &server, "broken", &["--iterations", "1", "--max-fix-attempts", "1"]);
    assert_eq!(out.code, 0, "{}", show(&out));
    let h = history(cache.path(), "broken");
    assert_eq!(outcomes(&h), ["test_failed"], "{}", show(&out));
    assert!(
        h["baseline_failures"].as_array().unwrap().is_empty(),
        "the baseline passes its tests: {}",
        h["baseline_failures"]
    );
    let a = &attempts(&h)[0];
    assert_eq!(a["fix_rounds"], 1);
    let tail = a["outcome"]["tail"].as_str().unwrap();
    assert!(tail.contains("cgen (Failed)"), "the test failure is recorded:\n{tail}");
    assert!(a["commit"].is_null(), "nothing was committed");
    let diff = a["diff"].as_str().unwrap();
    assert!(diff.lines().any(|l| l.starts_with('+') && l.ends_with("return accept ? XDP_DROP : XDP_PASS;")), "{diff}");
    assert_eq!(a["logs"].as_array().unwrap().len(), 8, "three commands and the test rerun, twice: {}", a["logs"]);
    assert!(out.stderr.contains("make -C {build} test failed, asking for a fix (1/1)"), "{}", show(&out));

    // The implementer was asked twice: the second time with the failing test output.
    let implement = server.first_requests(Phase::Implement);
    assert_eq!(implement.len(), 2, "one implementation and one fix round");
    let first = implement[0]["messages"][0]["content"].as_str().unwrap();
    let second = implement[1]["messages"][0]["content"].as_str().unwrap();
    assert!(!first.contains("did not pass validation"), "{first}");
    assert!(second.contains("`make -C {build} test` failed"), "{second}");
    assert!(second.contains("The following tests FAILED") && second.contains("cgen (Failed)"), "{second}");

    assert_eq!(branch_tip(&repo, "broken"), base, "the branch did not move");
    assert_worktree_clean(&h);
    before.assert_unchanged(&repo);
}

/// The validation of issue 12: a format step that fails on the baseline (as clang-format 14 on
/// bpfilter's .clang-format) is recorded, runs first, and never stops the build and the tests
/// after it, on the baseline or on an attempt; an attempt that breaks a test is rejected; the
/// record, the report and the terminal say what ran and how many tests passed.
#[test]
fn a_failing_format_step_never_stops_the_tests() {
    require_bpf!();
    let (repo, before) = fixture();
    let cache = cache_dir();
    let broken = (
        "replace_in_file",
        json!({"path": "src/libbpfilter/cgen/program.c",
               "old": "return accept ? XDP_PASS : XDP_DROP;", "new": "return accept ? XDP_DROP : XDP_PASS;"}),
    );
    let server = ModelServer::start(move |call: &Call| match (call.phase, call.conv, call.turn) {
        (Phase::Propose, 0, _) => text("TITLE: fold the XDP verdicts\nWHY: fewer branches.\nHOW: program.c."),
        (Phase::Propose, _, _) => text(PLAN_DROP_PADDING),
        (Phase::Implement, 0, 0) => tool_uses(std::slice::from_ref(&broken)),
        (Phase::Implement, _, 0) => tool_uses(&[set_padding_edit(16, 0)]),
        (Phase::Implement, _, _) => text("Done."),
    });
    // Given last, run first: a formatter that cannot read the style file, on every tree.
    let format = "format:echo \"error: unknown key 'InsertNewlineAtEOF'\" >&2; exit 1";
    let extra = ["--iterations", "2", "--max-fix-attempts", "0", "--validate", format];
    let out = optimize(&repo, cache.path(), &server, "fmt", &extra);
    assert_eq!(out.code, 0, "{}", show(&out));
    let h = history(cache.path(), "fmt");

    // The baseline: the format step failed, the build and both tests ran after it.
    assert_eq!(h["baseline_failed_commands"][0].as_str().unwrap(), &format["format:".len()..]);
    let baseline = h["setup"]["baseline_validation"].as_array().unwrap();
    let roles: Vec<&str> = baseline.iter().map(|v| v["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["format", "build", "build", "test"], "format first, then the others as given");
    assert_eq!(baseline[3]["tests"], json!({"passed": 2, "failed": 0}), "{}", baseline[3]);
    assert!(out.stderr.contains("baseline: format `"), "{}", show(&out));
    assert!(out.stderr.contains("failed as on the baseline"), "{}", show(&out));

    // Attempt 1 breaks the XDP verdicts: its tests ran, one failed, it is rejected.
    assert_eq!(outcomes(&h)[0], "test_failed", "{}", show(&out));
    let first = attempts(&h)[0]["validation"].as_array().unwrap();
    assert_eq!(first.len(), 4, "every step ran: {first:?}");
    assert_eq!(first[0]["as_on_baseline"], true);
    assert_eq!(first[3]["tests"], json!({"passed": 1, "failed": 1}), "{}", first[3]);
    assert!(out.stderr.contains("test `make -C {build} test` FAILED, 1 of 2 tests passed"), "{}", show(&out));

    // Attempt 2 is good: validated with both tests passing, whatever its measurement says.
    let second = attempts(&h)[1]["validation"].as_array().unwrap();
    assert_eq!(second.len(), 4, "{second:?}");
    assert_eq!(second[3]["tests"], json!({"passed": 2, "failed": 0}));
    assert!(["kept", "rejected"].contains(&outcomes(&h)[1].as_str()), "{}", show(&out));
    let report = std::fs::read_to_string(run_dir(cache.path(), "fmt").join("report.html")).unwrap();
    assert!(report.contains("Baseline validation") && report.contains("2 tests passed"), "the report says it");
    before.assert_unchanged(&repo);
}

/// An attempt that changes no generated program (a comment) is rejected without being timed.
#[test]
fn an_attempt_that_changes_no_program_is_not_timed() {
    require_bpf!();
    let (repo, before) = fixture();
    let cache = cache_dir();
    let comment = (
        "replace_in_file",
        json!({
            "path": KNOBS,
            "old": "/* Number of redundant ALU instructions emitted by every prologue. */",
            "new": "/* How many redundant ALU instructions every prologue emits. */"
        }),
    );
    let plan = "TITLE: reword the padding comment\nWHY: clarity.\nHOW: edit knobs.h.";
    let server = ModelServer::start(scripted(plan, vec![comment]));
    let out = optimize(&repo, cache.path(), &server, "same", &["--iterations", "1"]);
    assert_eq!(out.code, 0, "{}", show(&out));
    let h = history(cache.path(), "same");
    assert_eq!(outcomes(&h), ["rejected"], "{}", show(&out));
    let a = &attempts(&h)[0];
    assert_eq!(
        a["outcome"]["reason"], "no change in generated code: every case's program is identical to its parent's",
        "{a:#}"
    );
    assert!(a["geomean"].is_null(), "nothing was timed: {a:#}");
    assert_eq!(a["insns_delta"], 0);
    let verdicts: Vec<&str> = a["deltas"].as_array().unwrap().iter().map(|d| d["verdict"].as_str().unwrap()).collect();
    assert_eq!(verdicts, ["same code (not timed)", "same code (not timed)"], "{a:#}");
    assert!(!out.stderr.contains("measuring against its parent"), "{}", show(&out));
    assert_eq!(branch_tip(&repo, "same"), repo.head(), "the branch is back at its parent");
    before.assert_unchanged(&repo);
}

/// doc/optimize.md's worked example of the external agent contract, run as the page shows it:
/// the script is taken from the page. It proposes the plan it was given, implements it in the
/// implement step only (BFPERF_STEP, BFPERF_PLAN_FILE, BFPERF_WORKTREE, BFPERF_SCOPE,
/// BFPERF_FIX_ROUND), and the attempt is kept; a patch outside the scope makes it give up,
/// which the record shows as a model error with its message.
#[test]
fn the_documented_agent_contract_works_as_written() {
    require_bpf!();
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../doc/optimize.md")).unwrap();
    let (_, after) = doc.split_once("<!-- example: replay-agent.sh -->\n```sh\n").expect("the example is in the doc");
    let script = after.split_once("\n```").expect("the example's block ends").0;
    let notes = tempfile::tempdir().unwrap();
    let agent = notes.path().join("replay-agent.sh");
    std::fs::write(&agent, format!("{script}\n")).unwrap();

    let repo = FixtureRepo::new();
    repo.set_padding(128);
    let base = repo.commit("cgen: 128 redundant instructions per prologue");
    // The change to replay: the padding dropped, as a diff; the checkout is left clean.
    repo.set_padding(0);
    let patch = notes.path().join("drop.diff");
    std::fs::write(&patch, bfperf_tests::git(repo.path(), &["diff"])).unwrap();
    git(repo.path(), &["checkout", "--", "."]);
    let plan = notes.path().join("plan");
    std::fs::write(&plan, PLAN_DROP_PADDING).unwrap();
    let before = Checkout::take(&repo);
    let cache = cache_dir();
    let command = format!("sh {}", agent.display());
    let args = |new: bool| {
        let mut a = optimize_args(new, "replay", "http://127.0.0.1:9", &["--iterations", "1", "--objective", "insns"]);
        a.extend(["--agent-command", &command]);
        a.iter().map(|s| s.to_string()).collect::<Vec<String>>()
    };
    let with = |new: bool, patch: &Path| {
        let args = args(new);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = optimize_command(repo.path(), cache.path(), &args);
        cmd.env("PLAN", &plan).env("PATCH", patch);
        run(cmd)
    };

    let out = with(true, &patch);
    assert_eq!(out.code, 0, "{}", show(&out));
    let h = history(cache.path(), "replay");
    assert_eq!(outcomes(&h), ["kept"], "{}", show(&out));
    assert_eq!(attempts(&h)[0]["plan"], PLAN_DROP_PADDING);
    assert_eq!(attempts(&h)[0]["cost_unknown"], true, "the agent's model is not bfperf's to price");
    let tip = branch_tip(&repo, "replay");
    assert_eq!(git(repo.path(), &["diff", "--name-only", &base, &tip]), KNOBS);
    assert_eq!(git(repo.path(), &["log", "-1", "--format=%s", &tip]), "lib: cgen: drop the redundant prologue padding");

    // A patch outside the scope: the script refuses it in the implement step.
    let outside = notes.path().join("outside.diff");
    std::fs::write(&outside, "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-x\n+y\n").unwrap();
    let out = with(false, &outside);
    assert_eq!(out.code, 0, "{}", show(&out));
    let h = history(cache.path(), "replay");
    assert_eq!(outcomes(&h), ["kept", "model_error"], "{}", show(&out));
    let reason = attempts(&h)[1]["outcome"]["reason"].as_str().unwrap();
    assert!(reason.contains("README.md is outside src/libbpfilter/cgen"), "{reason}");
    assert_eq!(branch_tip(&repo, "replay"), tip, "nothing more was kept");
    assert_worktree_clean(&h);
    before.assert_unchanged(&repo);
}

/// An external agent's own output (its stderr) is streamed as it arrives: to the terminal, to
/// the run's live log (which `optimize-dashboard` shows for a run it did not start, before
/// `history.json` has it) and to the transcript; a flood of hostile output (escapes, a 10 MB
/// line, 300,000 lines) is bounded and neutralised, and the answer and the change still count.
#[test]
fn an_agents_own_output_is_streamed_bounded_and_neutralised() {
    require_bpf!();
    let notes = tempfile::tempdir().unwrap();
    let go = notes.path().join("go");
    let plan = notes.path().join("plan");
    std::fs::write(&plan, PLAN_DROP_PADDING).unwrap();
    // It proposes only once the test has seen its first line in the dashboard (a hang guard of
    // 20 minutes, no speed check); it implements with a flood on stderr.
    let agent = notes.path().join("agent.sh");
    std::fs::write(
        &agent,
        r#"set -eu
case "$BFPERF_STEP" in
propose)
    echo "progress: reading the prologue" >&2
    i=0
    until [ -e "$GO" ]; do
        i=$((i+1)); [ $i -lt 2400 ] || { echo "never released" >&2; exit 1; }
        sleep 0.5
    done
    echo "progress: the padding is dead code" >&2
    cat "$PLAN"
    ;;
implement)
    printf '\033]0;pwned\007\033[2Jgone\n' >&2
    head -c 10000000 /dev/zero | tr '\0' x >&2
    echo >&2
    yes 'spam spam spam' | head -n 300000 >&2
    sed -i 's/MF_PROLOGUE_PADDING 128/MF_PROLOGUE_PADDING 0/' "$BFPERF_SCOPE/knobs.h"
    echo "progress: padding removed" >&2
    echo done
    ;;
esac
"#,
    )
    .unwrap();
    let repo = FixtureRepo::new();
    repo.set_padding(128);
    repo.commit("cgen: 128 redundant instructions per prologue");
    let before = Checkout::take(&repo);
    let cache = cache_dir();
    let command = format!("sh {}", agent.display());
    let mut args = optimize_args(true, "stream", "http://127.0.0.1:9", &["--iterations", "1", "--objective", "insns"]);
    args.extend(["--agent-command", &command]);
    let mut cmd = optimize_command(repo.path(), cache.path(), &args);
    cmd.env("PLAN", &plan).env("GO", &go);
    let started = Instant::now();
    let child = cmd.spawn().expect("xtask runs");

    // The dashboard of the checkout, started apart from the run, shows the agent's line while
    // the agent still waits: history.json does not have it yet.
    let mut dash =
        bfperf_tests::subcommand("optimize-dashboard", repo.path(), &["--addr", "127.0.0.1:0"], cache.path())
            .spawn()
            .expect("the dashboard starts");
    // Its stderr stays open (and unread) until it is killed.
    let mut dash_err = std::io::BufReader::new(dash.stderr.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut dash_err, &mut first).unwrap();
    let addr = first
        .strip_prefix("optimize-dashboard: http://")
        .and_then(|r| r.split_once('/'))
        .unwrap_or_else(|| panic!("{first}"))
        .0
        .to_owned();
    let wanted = "attempt 1: agent: progress: reading the prologue";
    let deadline = Instant::now() + Duration::from_secs(1200);
    let live = loop {
        let state = http_get(&addr, "/runs/stream/state.json");
        if let Some(v) = state.and_then(|s| serde_json::from_str::<Value>(&s).ok()) {
            let lines: Vec<String> =
                v["live"]["lines"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_owned()).collect();
            if lines.iter().any(|l| l == wanted) {
                break lines;
            }
        }
        assert!(Instant::now() < deadline, "hang guard: the agent's line never reached the dashboard");
        std::thread::sleep(Duration::from_millis(200));
    };
    let record = std::fs::read_to_string(run_dir(cache.path(), "stream").join("history.json")).unwrap();
    assert!(!record.contains("reading the prologue"), "the record already had it: the live log was not needed");
    assert!(!live.iter().any(|l| l.contains("dead code")), "the agent had not printed that yet: {live:?}");
    let _ = dash.kill();
    let _ = dash.wait();
    drop(dash_err);
    std::fs::write(&go, "").unwrap();
    let out = finish(child);
    eprintln!("--- xtask ({:.1} s, exit {}):\n{}", started.elapsed().as_secs_f64(), out.code, out.stderr);
    assert_eq!(out.code, 0, "{}", show(&out));
    let h = history(cache.path(), "stream");
    assert_eq!(outcomes(&h), ["kept"], "the answer and the change count: {}", show(&out));
    assert_eq!(attempts(&h)[0]["plan"], PLAN_DROP_PADDING);

    // The terminal: the progress lines, in order, before the answer; the escapes visible.
    let at = |needle: &str| out.stderr.find(needle).unwrap_or_else(|| panic!("no {needle:?}:\n{}", show(&out)));
    assert!(at(wanted) < at("attempt 1: agent: progress: the padding is dead code"));
    assert!(at("attempt 1: agent: progress: the padding is dead code") < at("attempt 1: says: TITLE:"));
    at(r"attempt 1: agent: \x1b]0;pwned\x07\x1b[2Jgone");
    at("attempt 1: agent: xxxx");
    at("more bytes)");
    at("more lines");
    assert!(!out.stderr.contains('\u{1b}'), "an escape reached the terminal");
    assert!(out.stderr.len() < 200_000, "{} bytes on the terminal", out.stderr.len());

    // The transcript has them too, bounded; so has the live log file.
    let transcript = attempts(&h)[0]["transcript"].as_array().unwrap();
    let output: Vec<&str> =
        transcript.iter().filter(|e| e["kind"] == "output").map(|e| e["text"].as_str().unwrap()).collect();
    assert_eq!(output[..2], ["progress: reading the prologue", "progress: the padding is dead code"]);
    assert_eq!(output[2], r"\x1b]0;pwned\x07\x1b[2Jgone");
    assert!(output.iter().all(|l| l.len() < 600), "a line was not cut");
    assert!(output.last().unwrap().contains("more lines"), "{:?}", output.last());
    assert!(transcript.iter().any(|e| e["kind"] == "progress"), "bfperf's own steps were kept");
    let size = |name: &str| std::fs::metadata(run_dir(cache.path(), "stream").join(name)).unwrap().len();
    assert!(size("history.json") < 1_000_000, "history.json is {} bytes", size("history.json"));
    let log = std::fs::read_to_string(run_dir(cache.path(), "stream").join("live.log")).unwrap();
    assert!(log.contains(wanted) && log.contains(r"agent: \x1b]0;pwned") && !log.contains('\u{1b}'), "{log}");
    assert!(log.len() < 200_000, "live.log is {} bytes", log.len());
    before.assert_unchanged(&repo);
}

/// `GET target` from the server at `addr`: the body of a 200, else `None`.
fn http_get(addr: &str, target: &str) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(s, "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// No test command, no run: "validated" must mean tested, unless the user said otherwise.
#[test]
fn validation_without_tests_needs_no_tests() {
    let (repo, before) = fixture();
    let cache = cache_dir();
    let args = ["--run-id", "untested", "--iterations", "1", "--validate", "make -C {build}"];
    let out = run(optimize_command(repo.path(), cache.path(), &args));
    let line = only_line(&out);
    assert!(line.contains("no test command") && line.contains("test:CMD") && line.contains("--no-tests"), "{line}");
    let out = run(optimize_command(
        repo.path(),
        cache.path(),
        &["--run-id", "both", "--no-tests", "--validate", "test:make test"],
    ));
    assert!(only_line(&out).contains("--no-tests with a test command"), "{}", show(&out));
    assert_nothing_created(&repo, cache.path());
    before.assert_unchanged(&repo);
}

#[test]
fn edits_outside_the_scope_are_refused_or_rejected() {
    require_bpf!();
    let repo = FixtureRepo::new();
    // A symlink inside the scope that leads out of the worktree, committed so the run's worktree has it.
    let outside = tempfile::Builder::new().prefix("bfperf-outside-").tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), repo.path().join("src/libbpfilter/cgen/escape")).unwrap();
    repo.commit("cgen: a symlink out of the tree");
    let before = Checkout::take(&repo);
    let base = repo.head();
    let cache = cache_dir();
    let plan = "TITLE: document the prologue\nWHY: readers need it.\nHOW: write notes in several places.";
    let server = ModelServer::start(scripted(
        plan,
        vec![
            ("write_file", json!({"path": "README.md", "content": "rewritten\n"})),
            ("write_file", json!({"path": "../../etc/x", "content": "escaped\n"})),
            ("write_file", json!({"path": "src/libbpfilter/cgen/escape/x.c", "content": "escaped\n"})),
            ("replace_in_file", json!({"path": "src/libbpfilter/cgen/escape", "old": "a", "new": "b"})),
        ],
    ));

    let out = optimize(&repo, cache.path(), &server, "scope", &["--iterations", "1"]);
    assert_eq!(out.code, 0, "{}", show(&out));
    let h = history(cache.path(), "scope");
    assert_eq!(outcomes(&h), ["no_change"], "{}", show(&out));
    let refusals: Vec<&str> =
        attempts(&h)[0]["refusals"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(refusals.len(), 4, "{refusals:?}");
    assert!(refusals[0].starts_with("write_file README.md: outside the scope"), "{refusals:?}");
    assert!(refusals[1].starts_with("write_file ../../etc/x: '..' is not allowed"), "{refusals:?}");
    assert!(refusals[2].contains("escape/x.c") && refusals[2].contains("outside the worktree"), "{refusals:?}");
    assert!(refusals[3].contains("escape") && refusals[3].contains("outside the worktree"), "{refusals:?}");
    // The model saw every refusal as a failed tool call.
    let bodies = server.bodies();
    let results = bodies.last().unwrap()["messages"].as_array().unwrap().last().unwrap()["content"].clone();
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert!(
        results.iter().all(|r| r["is_error"] == true && r["content"].as_str().unwrap().starts_with("refused:")),
        "{results:?}"
    );
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0, "nothing was written through the symlink");
    assert!(!Path::new("/etc/x").exists());

    // An external agent command has no such tools: the scope is enforced on its diff.
    // (a) Editing the README while implementing: out of scope, reset.
    let agent = r#"if grep -q 'Implement this plan' "$BFPERF_PROMPT_FILE"; then echo hi >> README.md; echo 'appended to README.md'; else printf 'TITLE: document the prologue\nWHY: readers need it\nHOW: append to README.md\n'; fi"#;
    let uri = server.uri();
    let out = resume(&repo, cache.path(), &uri, "scope", &["--iterations", "1", "--agent-command", agent]);
    assert_eq!(out.code, 0, "{}", show(&out));
    // (b) Editing while it is only asked for a plan (and answering nothing): out of scope, reset too.
    let out = resume(
        &repo,
        cache.path(),
        &uri,
        "scope",
        &["--iterations", "1", "--agent-command", "sh -c 'echo hi >> README.md'"],
    );
    assert_eq!(out.code, 0, "{}", show(&out));
    let h = history(cache.path(), "scope");
    assert_eq!(outcomes(&h), ["no_change", "out_of_scope", "out_of_scope"], "{}", show(&out));
    for a in &attempts(&h)[1..] {
        assert_eq!(a["outcome"]["files"], json!(["README.md"]), "{a}");
        assert!(a["diff"].as_str().unwrap().contains("+hi"), "{a}");
    }
    assert_eq!(attempts(&h)[1]["plan"], "TITLE: document the prologue\nWHY: readers need it\nHOW: append to README.md");
    assert_eq!(branch_tip(&repo, "scope"), base);
    assert_worktree_clean(&h);
    before.assert_unchanged(&repo);
}

#[test]
fn api_faults_and_the_budget_are_handled() {
    require_bpf!();
    let (repo, before) = fixture();
    let cache = cache_dir();
    let base = repo.head();
    // Overloaded once, then a plan; the implementation changes nothing. Each
    // successful call reports 100,000 output tokens ($1.50 at Sonnet's price).
    let plan = "TITLE: look for redundant loads\nWHY: loads cost.\nHOW: none found in the end.";
    let server = ModelServer::start(move |call: &Call| match (call.phase, call.conv) {
        (Phase::Propose, 0) => ResponseTemplate::new(529)
            .insert_header("retry-after", "0")
            .set_body_json(json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})),
        (Phase::Propose, _) => reply_costing(json!([{"type": "text", "text": plan}]), "end_turn", 100_000),
        (Phase::Implement, _) => {
            reply_costing(json!([{"type": "text", "text": "Nothing to change."}]), "end_turn", 100_000)
        }
    });
    let out = optimize(&repo, cache.path(), &server, "faults", &["--iterations", "1"]);
    assert_eq!(out.code, 0, "{}", show(&out));
    let h = history(cache.path(), "faults");
    assert_eq!(outcomes(&h), ["no_change"], "{}", show(&out));
    assert_eq!(attempts(&h)[0]["plan"], plan);
    assert_eq!(server.bodies().len(), 3, "the overloaded request was retried once");
    let spent = h["spent_usd"].as_f64().unwrap();
    assert!((spent - 2.0 * (0.003 + 1.5)).abs() < 1e-6, "two calls charged: {spent}");

    // A rejected key: the attempt is a model error, the key shown nowhere.
    let unauthorized = ModelServer::start(|_: &Call| {
        ResponseTemplate::new(401).set_body_json(
            json!({"type": "error", "error": {"type": "authentication_error", "message": format!("invalid x-api-key {KEY}")}}),
        )
    });
    // Three iterations allowed: the run stops at the first 401 rather than running out of them.
    let out = resume(&repo, cache.path(), &unauthorized.uri(), "faults", &["--iterations", "3"]);
    assert_eq!(out.code, 0, "{}", show(&out));
    let h = history(cache.path(), "faults");
    assert_eq!(outcomes(&h), ["no_change", "model_error"], "one attempt, then the run stops:\n{}", show(&out));
    let reason = attempts(&h)[1]["outcome"]["reason"].as_str().unwrap();
    assert_eq!(reason, "the API rejected the key (HTTP 401): check ANTHROPIC_API_KEY");
    assert_eq!(h["stopped"], "the API rejected the key", "{}", show(&out));
    assert_eq!(unauthorized.bodies().len(), 1, "401 is not retried, and no later attempt calls the API");
    assert_key_never_shown(&out, cache.path(), "faults");

    // The budget covers the whole run: $3 are spent, so a $2.50 budget stops the
    // resumed run before any call, cleanly (exit 0, recorded).
    let out = resume(&repo, cache.path(), &server.uri(), "faults", &["--iterations", "3", "--budget-usd", "2.5"]);
    assert_eq!(out.code, 0, "a budget stop is a clean stop:\n{}", show(&out));
    assert_eq!(server.bodies().len(), 3, "no call once the budget would be exceeded");
    let h = history(cache.path(), "faults");
    assert_eq!(outcomes(&h), ["no_change", "model_error", "model_error"], "one attempt, then the run stops");
    let reason = attempts(&h)[2]["outcome"]["reason"].as_str().unwrap();
    assert!(reason.contains("budget") && reason.contains("--budget-usd"), "{reason}");
    assert_eq!(h["stopped"], "budget exhausted");
    assert!(out.stdout.contains("(budget exhausted)"), "{}", show(&out));
    // A budget below the price of any call stops it the same way.
    let out = resume(&repo, cache.path(), &server.uri(), "faults", &["--iterations", "1", "--budget-usd", "0.000001"]);
    assert_eq!(out.code, 0, "{}", show(&out));
    assert_eq!(history(cache.path(), "faults")["stopped"], "budget exhausted");
    assert_eq!(server.bodies().len(), 3);

    assert_eq!(branch_tip(&repo, "faults"), base);
    assert_worktree_clean(&history(cache.path(), "faults"));
    before.assert_unchanged(&repo);
}

#[test]
fn ctrl_c_is_recorded_and_the_run_resumes() {
    require_bpf!();
    let (repo, before) = fixture();
    let cache = cache_dir();
    let base = repo.head();
    // Every plan changes nothing; the second proposal is never answered (in this test's time):
    // Ctrl-C must end the call in flight, not wait for it.
    let server = ModelServer::start(|call: &Call| {
        let plan = format!("TITLE: idea number {}\nWHY: it could help.\nHOW: nothing in the end.", call.conv + 1);
        match call.phase {
            Phase::Propose if call.conv == 1 => text(&plan).set_delay(Duration::from_secs(3600)),
            Phase::Propose => text(&plan),
            Phase::Implement => text("Nothing to change."),
        }
    });
    let uri = server.uri();
    let mut child =
        optimize_command(repo.path(), cache.path(), &optimize_args(true, "ctrlc", &uri, &["--iterations", "2"]))
            .spawn()
            .unwrap();
    // Wait for the second proposal request (the baseline comes first), then Ctrl-C while it is answered.
    // The run may first queue for the host's benchmark lock: as long as compare.rs waits for it.
    let deadline = Instant::now() + Duration::from_secs(1800);
    while server.first_requests(Phase::Propose).len() < 2 {
        if child.try_wait().unwrap().is_some() {
            panic!("xtask ended before its second proposal:\n{}", show(&finish(child)));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("no second proposal within 30 min; xtask said:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = bfperf_tests::interrupt_and_finish(child, Duration::from_secs(30));
    eprintln!("--- xtask (interrupted), exit {}:\n{}", out.code, out.stderr);
    assert_eq!(out.code, 130, "{}", show(&out));
    assert!(error_line(&out).contains("resume with cargo xtask optimize --resume ctrlc"), "{}", show(&out));
    let h = history(cache.path(), "ctrlc");
    assert_eq!(outcomes(&h), ["no_change", "interrupted"], "{}", show(&out));
    assert!(h["stopped"].as_str().unwrap().contains("interrupted"), "{}", h["stopped"]);
    assert_eq!(attempts(&h)[1]["step"], "propose", "cut short while proposing");
    assert_spent_is_the_sum_of_attempts(&h);
    assert_worktree_clean(&h);

    let out = resume(&repo, cache.path(), &uri, "ctrlc", &["--iterations", "1"]);
    assert_eq!(out.code, 0, "{}", show(&out));
    assert!(out.stderr.contains("resuming run ctrlc: 2 attempts so far"), "{}", show(&out));
    let h = history(cache.path(), "ctrlc");
    assert_eq!(outcomes(&h), ["no_change", "interrupted", "no_change"], "{}", show(&out));
    assert_eq!(attempts(&h)[2]["index"], 3);
    assert_eq!(h["stopped"], "1 attempts done");
    // The next proposal knows what was tried.
    let last_propose = server.first_requests(Phase::Propose).pop().unwrap();
    let system = last_propose["system"][0]["text"].as_str().unwrap();
    assert!(system.contains("[no_change] idea number 1"), "{system}");
    assert_worktree_clean(&h);
    assert_eq!(branch_tip(&repo, "ctrlc"), base);
    before.assert_unchanged(&repo);
}

/// The run's spending is what its attempts cost, interrupted ones included (the budget of --resume).
fn assert_spent_is_the_sum_of_attempts(h: &Value) {
    let sum: f64 = attempts(h).iter().map(|a| a["cost_usd"].as_f64().unwrap()).sum();
    let spent = h["spent_usd"].as_f64().unwrap();
    assert!((spent - sum).abs() < 1e-9, "spent_usd {spent} but the attempts cost {sum}");
}

#[test]
fn ctrl_c_ends_an_agent_command_and_everything_it_started() {
    require_bpf!();
    let (repo, before) = fixture();
    let cache = cache_dir();
    let base = repo.head();
    // The agent notes where its prompt file is and its process group, starts a grandchild that
    // sleeps, and sleeps itself: it would run for ten minutes.
    let notes = tempfile::tempdir().unwrap();
    let n = notes.path().display();
    let agent = format!(
        r#"echo "$BFPERF_PROMPT_FILE" > {n}/prompt; sh -c 'sleep 600; :' & echo $$ > {n}/pgid.tmp; mv {n}/pgid.tmp {n}/pgid; sleep 600"#
    );
    let args = optimize_args(true, "agentint", "http://127.0.0.1:9", &["--iterations", "1", "--agent-command", &agent]);
    let mut child = optimize_command(repo.path(), cache.path(), &args).spawn().unwrap();
    // (No time limit: the run may first queue for the host's benchmark lock, then builds its baseline.)
    let pgid_file = notes.path().join("pgid");
    while !pgid_file.exists() {
        if child.try_wait().unwrap().is_some() {
            panic!("xtask ended before its agent started:\n{}", show(&finish(child)));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let pgid: i32 = std::fs::read_to_string(&pgid_file).unwrap().trim().parse().unwrap();
    assert!(bfperf_tests::live_process_group_members(pgid).len() >= 2, "the agent and its grandchild run");
    let out = bfperf_tests::interrupt_and_finish(child, Duration::from_secs(30));
    eprintln!("--- xtask (interrupted), exit {}:\n{}", out.code, out.stderr);
    assert_eq!(out.code, 130, "{}", show(&out));
    assert!(error_line(&out).contains("resume with cargo xtask optimize --resume agentint"), "{}", show(&out));

    // Nothing of the agent's is left: its whole group is gone, and so is the prompt file.
    // (SIGKILL is delivered asynchronously: the members get a moment to die.)
    let deadline = Instant::now() + Duration::from_secs(30);
    while !bfperf_tests::live_process_group_members(pgid).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the agent's group is still running: {:?}",
            bfperf_tests::live_process_group_members(pgid)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let prompt = std::fs::read_to_string(notes.path().join("prompt")).unwrap();
    assert!(!Path::new(prompt.trim()).exists(), "the prompt file {} was left behind", prompt.trim());

    // The record has the attempt, cut short while proposing.
    let h = history(cache.path(), "agentint");
    assert_eq!(outcomes(&h), ["interrupted"], "{}", show(&out));
    assert_eq!(attempts(&h)[0]["step"], "propose");
    assert!(h["stopped"].as_str().unwrap().contains("interrupted"), "{}", h["stopped"]);
    assert_spent_is_the_sum_of_attempts(&h);
    assert_worktree_clean(&h);
    assert_eq!(branch_tip(&repo, "agentint"), base);
    before.assert_unchanged(&repo);
}

/// No optimize run, no branch, after a run that was refused.
fn assert_nothing_created(repo: &FixtureRepo, cache: &Path) {
    let runs: Vec<_> =
        std::fs::read_dir(cache.join("optimize")).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(runs.is_empty(), "runs were created: {runs:?}");
    assert_eq!(git(repo.path(), &["branch", "--list", "optimize/*"]), "", "a branch was created");
    assert_eq!(
        git(repo.path(), &["worktree", "list", "--porcelain"]).matches("worktree ").count(),
        1,
        "a worktree was created"
    );
}

#[test]
fn bad_input_gets_one_clear_error_and_leaves_nothing_behind() {
    let (repo, before) = fixture();
    let cache = cache_dir();
    let unreachable = "http://127.0.0.1:9";
    let args = |run_id| optimize_args(true, run_id, unreachable, &["--iterations", "1"]);

    // No API key.
    let mut cmd = optimize_command(repo.path(), cache.path(), &args("nokey"));
    cmd.env_remove("ANTHROPIC_API_KEY");
    let out = run(cmd);
    let line = only_line(&out);
    assert!(line.contains("ANTHROPIC_API_KEY is not set"), "{line}");
    assert_nothing_created(&repo, cache.path());
    before.assert_unchanged(&repo);

    // Plain http:// to a host that is not loopback: refused at start-up, before anything
    // connects anywhere (10.1.2.3 is never contacted) and before any build.
    let out = run(optimize_command(
        repo.path(),
        cache.path(),
        &optimize_args(true, "insecure", "http://10.1.2.3:80", &["--iterations", "1"]),
    ));
    let line = only_line(&out);
    assert!(line.contains("http://10.1.2.3:80") && line.contains("loopback") && line.contains("https://"), "{line}");
    assert_eq!(out.code, 1);
    assert_nothing_created(&repo, cache.path());
    before.assert_unchanged(&repo);

    // A budget for a model bfperf has no price for.
    let mut priced = args("unpriced");
    priced.extend(["--model", "my-local-model", "--budget-usd", "1"]);
    let out = run(optimize_command(repo.path(), cache.path(), &priced));
    let line = only_line(&out);
    assert!(
        line.contains("no price for the model my-local-model") && line.contains("--price-per-mtok IN,OUT"),
        "{line}"
    );
    assert_nothing_created(&repo, cache.path());

    // A branch of that name already exists.
    git(repo.path(), &["branch", "optimize/taken"]);
    let out = run(optimize_command(repo.path(), cache.path(), &args("taken")));
    let line = only_line(&out);
    assert!(line.contains("the branch optimize/taken already exists") && line.contains("--run-id"), "{line}");
    git(repo.path(), &["branch", "-D", "optimize/taken"]);
    assert_nothing_created(&repo, cache.path());
    before.assert_unchanged(&repo);

    // A corrupt history, and an unknown run.
    let dir = cache.path().join("optimize/corrupt");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("history.json"), "{\"schema\": \"bfperf.optimize-run.v1\", \"run_id\": ").unwrap();
    let out = run(optimize_command(repo.path(), cache.path(), &optimize_args(false, "corrupt", unreachable, &[])));
    let line = only_line(&out);
    assert!(line.contains("history.json is corrupt") && line.contains("start a new run"), "{line}");
    assert_eq!(
        std::fs::read_to_string(dir.join("history.json")).unwrap(),
        "{\"schema\": \"bfperf.optimize-run.v1\", \"run_id\": ",
        "left as it was"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let out = run(optimize_command(repo.path(), cache.path(), &optimize_args(false, "nosuchrun", unreachable, &[])));
    assert!(only_line(&out).contains("no optimize run at"), "{}", show(&out));
    assert_nothing_created(&repo, cache.path());
    before.assert_unchanged(&repo);

    // A dirty checkout: a changed file and a new one.
    repo.write("README.md", "local edit\n");
    repo.write("src/libbpfilter/cgen/new.c", "/* wip */\n");
    let dirty = Checkout::take(&repo);
    let out = run(optimize_command(repo.path(), cache.path(), &args("dirty")));
    let line = only_line(&out);
    assert!(
        line.contains("uncommitted changes")
            && line.contains("README.md")
            && line.contains("src/libbpfilter/cgen/new.c"),
        "{line}"
    );
    assert_nothing_created(&repo, cache.path());
    dirty.assert_unchanged(&repo);
}

#[test]
fn run_ids_are_plain_names_and_a_forged_history_is_not_resumed() {
    let (repo, before) = fixture();
    let cache = cache_dir();
    let unreachable = "http://127.0.0.1:9";
    // A run id is a short plain name: nothing may be derived from `../x` or `/tmp/x`.
    let elsewhere = tempfile::Builder::new().prefix("bfperf-runid-").tempdir().unwrap();
    let absolute = elsewhere.path().join("x");
    for (new, id) in [(true, "../escape"), (true, absolute.to_str().unwrap()), (false, "../escape")] {
        let out = run(optimize_command(repo.path(), cache.path(), &optimize_args(new, id, unreachable, &[])));
        let line = only_line(&out);
        assert!(line.contains("is not a valid run id") && line.contains("letters, digits"), "{line}");
    }
    assert!(!cache.path().join("escape").exists(), "a directory was created outside the cache's runs");
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0, "a directory was created outside the cache");
    assert_nothing_created(&repo, cache.path());
    before.assert_unchanged(&repo);

    // A history.json is untrusted: one that names the user's checkout as the
    // run's worktree must not get it hard-reset (a local edit would be lost).
    repo.write("README.md", "a local edit, uncommitted\n");
    let dirty = Checkout::take(&repo);
    let forge = |id: &str, worktree: &Path| {
        let record = json!({
            "schema": "bfperf.optimize-run.v1", "run_id": id, "sources": repo.path(),
            "branch": format!("optimize/{id}"), "worktree": worktree, "base_commit": repo.head(),
            "scope": "src/libbpfilter/cgen", "model": MODEL, "objective": "runtime",
            "baseline_failures": [], "baseline_failed_commands": [], "attempts": [],
            "spent_usd": 0.0, "cumulative_ratio": 1.0, "stopped": null
        });
        std::fs::create_dir_all(run_dir(cache.path(), id)).unwrap();
        std::fs::write(run_dir(cache.path(), id).join("history.json"), record.to_string()).unwrap();
    };
    forge("forged", repo.path());
    let out = run(optimize_command(repo.path(), cache.path(), &optimize_args(false, "forged", unreachable, &[])));
    let line = only_line(&out);
    assert!(line.contains("records the worktree") && line.contains("start a new run"), "{line}");
    dirty.assert_unchanged(&repo);

    // The same with the paths it should have, the worktree being a link to the checkout.
    let derived = run_dir(cache.path(), "linked").join("worktree");
    forge("linked", &derived);
    std::os::unix::fs::symlink(repo.path(), &derived).unwrap();
    let out = run(optimize_command(repo.path(), cache.path(), &optimize_args(false, "linked", unreachable, &[])));
    let line = only_line(&out);
    assert!(line.contains("is not the worktree git created for run linked"), "{line}");
    dirty.assert_unchanged(&repo);

    // A history.json that is a link is not followed.
    let target = run_dir(cache.path(), "forged").join("history.json");
    std::fs::create_dir_all(run_dir(cache.path(), "link")).unwrap();
    std::os::unix::fs::symlink(&target, run_dir(cache.path(), "link").join("history.json")).unwrap();
    let out = run(optimize_command(repo.path(), cache.path(), &optimize_args(false, "link", unreachable, &[])));
    assert!(only_line(&out).contains("is a symbolic link: refusing to follow it"), "{}", show(&out));
    dirty.assert_unchanged(&repo);
}

#[test]
fn a_run_that_fails_to_start_leaves_no_branch_nor_worktree() {
    // Seen on real bpfilter: cmake could not configure the run's worktree.
    let repo = FixtureRepo::new();
    let lists = std::fs::read_to_string(repo.path().join("CMakeLists.txt")).unwrap();
    let guard = "if(NOT EXISTS \"${CMAKE_SOURCE_DIR}/configure-ok\")\n    \
                 message(FATAL_ERROR \"bfperf test: configure-ok is missing\")\nendif()\n";
    let lists = lists.replacen("LANGUAGES C)\n", &format!("LANGUAGES C)\n{guard}"), 1);
    assert!(lists.contains("configure-ok"), "the fixture's project() line moved");
    std::fs::write(repo.path().join("CMakeLists.txt"), lists).unwrap();
    repo.commit("cmake: refuse to configure without configure-ok");
    let before = Checkout::take(&repo);
    let cache = cache_dir();
    let args = |iterations| {
        let mut a = optimize_args(true, "late", "http://127.0.0.1:9", &["--iterations", iterations]);
        a.extend(["--validate", "make -C {build} -j{jobs}"]);
        a
    };

    let out = run(optimize_command(repo.path(), cache.path(), &args("1")));
    assert_eq!(out.code, 1, "{}", show(&out));
    let line = error_line(&out);
    assert!(line.contains("run late could not start (its branch and worktree were removed)"), "{line}");
    assert!(line.contains("cmake failed"), "{line}");
    assert!(out.stderr.contains("configure-ok is missing"), "the log's tail is shown:\n{}", show(&out));
    // No branch, no worktree, no history: the failure's log only.
    assert_eq!(git(repo.path(), &["branch", "--list", "optimize/*"]), "", "a branch was left");
    assert_eq!(git(repo.path(), &["worktree", "list", "--porcelain"]).matches("worktree ").count(), 1);
    let dir = run_dir(cache.path(), "late");
    let left: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(left, ["logs"], "{left:?}");
    assert!(dir.join("logs/configure-0.log").is_file());
    before.assert_unchanged(&repo);

    // The cause fixed, the same run id starts.
    repo.write("configure-ok", "");
    repo.commit("cmake: configure-ok");
    let out = run(optimize_command(repo.path(), cache.path(), &args("0")));
    assert_eq!(out.code, 0, "{}", show(&out));
    assert_eq!(history(cache.path(), "late")["stopped"], "0 attempts done");
    assert_eq!(branch_tip(&repo, "late"), repo.head());
}

/// What the test build misses is named, by `doctor --sources` before the run and by the run's
/// own error (which leaves no branch and no worktree), as cmake reports it.
#[test]
fn a_missing_test_dependency_is_named_by_doctor_and_by_the_start() {
    let repo = FixtureRepo::new();
    let lists = std::fs::read_to_string(repo.path().join("CMakeLists.txt")).unwrap();
    // As bpfilter's tests/ needs cmocka or Google Benchmark: here, a package no host has.
    let lists =
        lists.replace("    enable_testing()\n", "    enable_testing()\n    find_package(bfperf_absent_pkg REQUIRED)\n");
    assert!(lists.contains("bfperf_absent_pkg"), "the fixture's test block moved");
    std::fs::write(repo.path().join("CMakeLists.txt"), lists).unwrap();
    repo.commit("tests: need a package");
    let before = Checkout::take(&repo);
    let cache = cache_dir();

    let out = run(bfperf_tests::subcommand("doctor", repo.path(), &[], cache.path()));
    let line =
        out.stdout.lines().find(|l| l.contains("optimize: test build")).unwrap_or_else(|| panic!("{}", show(&out)));
    assert_eq!(line, "! optimize: test build: cmake fails: bfperf_absent_pkg is missing", "{}", show(&out));

    let out =
        run(optimize_command(repo.path(), cache.path(), &optimize_args(true, "absent", "http://127.0.0.1:9", &[])));
    let line = error_line(&out);
    assert!(line.contains("run absent could not start (its branch and worktree were removed)"), "{line}");
    assert!(line.contains("cmake failed") && line.contains("bfperf_absent_pkg is missing"), "{line}");
    assert_eq!(git(repo.path(), &["branch", "--list", "optimize/*"]), "", "a branch was left");
    assert_eq!(git(repo.path(), &["worktree", "list", "--porcelain"]).matches("worktree ").count(), 1);
    assert!(!run_dir(cache.path(), "absent").join("worktree").exists());
    before.assert_unchanged(&repo);
}

#[test]
fn scope_spellings_and_ignored_files_are_checked_like_any_change() {
    let (repo, before) = fixture();
    let cache = cache_dir();
    let cgen = "src/libbpfilter/cgen";
    // Validation: fails while a marker file is in the scope; it also leaves an
    // ignored file in the worktree (as a build writing there would), which is not the model's.
    let validate = "test:mkdir -p {source}/build-v && touch {source}/build-v/out \
                    && test ! -e {source}/src/libbpfilter/cgen/marker.txt \
                    && test ! -e {source}/src/libbpfilter/cgen/build-x/marker.txt";
    let plan = "TITLE: add a marker\nWHY: to test.\nHOW: write marker.txt.";
    let server = ModelServer::start(scripted(
        plan,
        vec![("write_file", json!({"path": format!("{cgen}/marker.txt"), "content": "m\n"}))],
    ));
    let uri = server.uri();
    let extra = |scope: &'static str, agent: Option<&'static str>| {
        let mut a = vec!["--iterations", "1", "--max-fix-attempts", "1", "--validate", validate, "--scope", scope];
        if let Some(agent) = agent {
            a.extend(["--agent-command", agent]);
        }
        a
    };
    let args = |new, scope, agent| {
        let mut a = vec![if new { "--run-id" } else { "--resume" }, "spell", "--api-base-url", &uri];
        a.extend(extra(scope, agent));
        a
    };

    // `./src/libbpfilter/cgen/` is the scope `src/libbpfilter/cgen`: the marker is in it.
    // It reaches validation (twice: one fix round, the validation's own ignored file not counted).
    let out = run(optimize_command(repo.path(), cache.path(), &args(true, "./src/libbpfilter/cgen/", None)));
    assert_eq!(out.code, 0, "{}", show(&out));
    let h = history(cache.path(), "spell");
    assert_eq!(h["scope"], cgen);
    assert_eq!(outcomes(&h), ["test_failed"], "{}", show(&out));
    assert_eq!(attempts(&h)[0]["fix_rounds"], 1);

    // An ignored file written inside the scope is a change like any other: validated, and gone after.
    let inside = "if grep -q 'Implement this plan' \"$BFPERF_PROMPT_FILE\"; then \
                  mkdir -p src/libbpfilter/cgen/build-x && echo m > src/libbpfilter/cgen/build-x/marker.txt; \
                  else printf 'TITLE: hide a marker\\nWHY: test\\nHOW: write it\\n'; fi";
    let out = run(optimize_command(repo.path(), cache.path(), &args(false, "src/libbpfilter/cgen/.", Some(inside))));
    assert_eq!(out.code, 0, "{}", show(&out));
    let h = history(cache.path(), "spell");
    assert_eq!(outcomes(&h), ["test_failed", "test_failed"], "{}\n{}", attempts(&h)[1], show(&out));
    let diff = attempts(&h)[1]["diff"].as_str().unwrap();
    assert!(diff.contains("src/libbpfilter/cgen/build-x/marker.txt") && diff.contains("+m"), "{diff}");

    // Written outside the scope, while implementing or while proposing: out of scope.
    let outside = "if grep -q 'Implement this plan' \"$BFPERF_PROMPT_FILE\"; then \
                   mkdir -p build-y && echo leak > build-y/leak; \
                   else printf 'TITLE: leak\\nWHY: test\\nHOW: write it\\n'; fi";
    let out = run(optimize_command(repo.path(), cache.path(), &args(false, cgen, Some(outside))));
    assert_eq!(out.code, 0, "{}", show(&out));
    let proposing = "mkdir -p build-z && touch build-z/p";
    let out = run(optimize_command(repo.path(), cache.path(), &args(false, cgen, Some(proposing))));
    assert_eq!(out.code, 0, "{}", show(&out));
    let h = history(cache.path(), "spell");
    assert_eq!(outcomes(&h), ["test_failed", "test_failed", "out_of_scope", "out_of_scope"], "{}", show(&out));
    assert_eq!(attempts(&h)[2]["outcome"]["files"], json!(["build-y/leak"]));
    assert_eq!(attempts(&h)[3]["outcome"]["files"], json!(["build-z/p"]));
    assert_eq!(attempts(&h)[3]["step"], "done");

    // Nothing ignored is left in the run's worktree, and nothing was committed.
    let wt = Path::new(h["worktree"].as_str().unwrap());
    assert_eq!(git(wt, &["status", "--porcelain", "--ignored"]), "", "the worktree keeps ignored files");
    assert_eq!(branch_tip(&repo, "spell"), repo.head());
    before.assert_unchanged(&repo);
}

#[test]
fn validation_runs_in_the_sandbox() {
    require_bpf!();
    let (repo, before) = fixture();
    let cache = cache_dir();
    let host = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    host.set_nonblocking(true).unwrap();
    // Outside /tmp: a refused write there comes from the read-only mount, not the private /tmp.
    let outside = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let home = outside.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let git_dir = repo.path().join(".git");
    let probe = outside.path().join("probe.sh");
    std::fs::write(
        &probe,
        format!(
            "env | grep -E '^(ANTHROPIC_API_KEY|ANTHROPIC_BASE_URL|FOO_TOKEN|X_SECRET|MY_CREDS)=' | sed 's/^/LEAK /'\n\
             env | grep -q '^PATH=' && echo path-kept\n\
             touch wt-probe && echo wrote-worktree\n\
             touch \"$1/build-probe\" && echo wrote-build\n\
             touch /tmp/probe && echo wrote-tmp\n\
             touch {git}/hooks/pre-commit; echo x >> {git}/config; touch {home}/x\n\
             git log -1 --format='git-works %s'\n\
             (echo > /dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo HOST-REACHED || echo host-refused\n\
             exit 1\n",
            git = git_dir.display(),
            home = home.display(),
            port = host.local_addr().unwrap().port()
        ),
    )
    .unwrap();
    let validate = format!("bash {} {{build}}", probe.display());
    let args = [
        "--run-id",
        "sbx",
        "--agent-command",
        "true",
        "--iterations",
        "1",
        "--quick",
        "--filter",
        "xdp__prologue",
        "--validate",
        &validate,
        "--no-tests",
        "--secret-env",
        "MY_CREDS",
    ];
    let mut cmd = optimize_command(repo.path(), cache.path(), &args);
    cmd.env("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
        .env("FOO_TOKEN", "tok-SECRET")
        .env("X_SECRET", "x-SECRET")
        .env("MY_CREDS", "creds-SECRET")
        .env("HOME", &home);
    let out = run(cmd);
    let line = error_line(&out);
    assert!(line.contains("the baseline does not build"), "the probe fails on purpose: {line}");

    let log = std::fs::read_to_string(run_dir(cache.path(), "sbx").join("logs/baseline-0.log")).unwrap();
    assert!(!log.contains("LEAK") && !log.contains("SECRET"), "a secret reached the command:\n{log}");
    for expected in
        ["path-kept", "wrote-worktree", "wrote-build", "wrote-tmp", "git-works initial import", "host-refused"]
    {
        assert!(log.contains(expected), "{expected}:\n{log}");
    }
    assert_eq!(log.matches("Read-only file system").count(), 3, "hooks, config, $HOME refused:\n{log}");
    assert!(!log.contains("HOST-REACHED"), "{log}");
    match host.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the host's listener was reached: {other:?}"),
    }
    // The worktree and build writes are proven by the log's `wrote-*` lines: a run that fails
    // to start removes both directories.
    assert!(!run_dir(cache.path(), "sbx").join("worktree").exists());
    assert!(!git_dir.join("hooks/pre-commit").exists() && !home.join("x").exists());
    before.assert_unchanged(&repo);
}

// ---------------------------------------------------------------------------
// The model flags, the acceptance flags and the OpenAI backend, end to end.

/// `--proposal-model`, `--impl-model` (over `--model`), `--effort`, repeated `--hint`s and
/// `--max-turns` reach the model: the request bodies the scripted server received name each
/// step's model, ask for the effort in the form its family takes (an effort level for an
/// adaptive-thinking model, a thinking budget for the others) and carry both hints in the
/// proposal's prompt; both models spend one budget; an implementation still calling tools is
/// cut after `--max-turns` requests and recorded as a model error.
#[test]
fn model_effort_hint_and_max_turns_reach_the_model() {
    require_bpf!();
    let (repo, before) = fixture();
    let cache = cache_dir();
    let hint = "look at the IPv6 prologue first";
    let server = ModelServer::start(|call: &Call| match call.phase {
        Phase::Propose => text(PLAN_DROP_PADDING),
        // Never done: one more directory listing every turn.
        Phase::Implement => tool_uses(&[("list_dir", json!({"path": "src/libbpfilter/cgen"}))]),
    });
    let second = "and keep the IPv4 path as it is";
    let models = ["--proposal-model", "claude-opus-4-8", "--impl-model", "claude-opus-4-5", "--budget-usd", "5"];
    let extra = ["--iterations", "1", "--model", "unused-model", "--effort", "high", "--hint", hint, "--hint", second];
    let out = optimize(&repo, cache.path(), &server, "flags", &[&extra[..], &models, &["--max-turns", "2"]].concat());
    assert_eq!(out.code, 0, "{}", show(&out));
    let h = history(cache.path(), "flags");
    assert_eq!(h["model"], "claude-opus-4-8 (proposal), claude-opus-4-5 (implementation)");
    assert_eq!(h["setup"]["proposal_model"], "claude-opus-4-8");
    assert_eq!(h["setup"]["impl_model"], "claude-opus-4-5");
    assert_eq!(h["setup"]["effort"], "high");
    assert_eq!(h["setup"]["hints"], json!([hint, second]));
    assert_eq!(outcomes(&h), ["model_error"], "{}", show(&out));
    let reason = attempts(&h)[0]["outcome"]["reason"].as_str().unwrap();
    assert!(reason.contains("still calling tools after 2 turns"), "{reason}");

    let bodies = server.bodies();
    let implement: Vec<&Value> = bodies.iter().filter(|b| phase_of(b) == Phase::Implement).collect();
    assert_eq!(implement.len(), 2, "--max-turns 2: two requests in the implementation");
    for b in &implement {
        assert_eq!(b["model"], "claude-opus-4-5", "{b}");
        // --effort high on a budget-thinking model: 16,000 thinking tokens, inside max_tokens.
        assert_eq!(b["thinking"], json!({"type": "enabled", "budget_tokens": 16000}), "{}", b["thinking"]);
        assert!(b["max_tokens"].as_u64().unwrap() > 16000, "{}", b["max_tokens"]);
    }
    let propose = server.first_requests(Phase::Propose);
    assert_eq!(propose.len(), 1);
    // --effort high on an adaptive-thinking model: its effort level.
    assert_eq!(propose[0]["model"], "claude-opus-4-8");
    assert_eq!(propose[0]["thinking"], json!({"type": "adaptive"}));
    assert_eq!(propose[0]["output_config"], json!({"effort": "high"}));
    let prompt = format!("{}{}", propose[0]["system"], propose[0]["messages"]);
    assert!(prompt.contains(hint) && prompt.contains(second), "both hints are in the proposal prompt: {prompt}");
    // Both models spent the one budget: the run's spending is the attempt's.
    assert!(h["spent_usd"].as_f64().unwrap() > 0.0);
    assert_spent_is_the_sum_of_attempts(&h);
    assert_worktree_clean(&h);
    before.assert_unchanged(&repo);
}

/// prologue.c with its padding per hook: `xdp` (XDP and TC prologue) and `ctx` (the others)
/// are C expressions for the instruction counts.
fn prologue_with_padding(repo: &FixtureRepo, xdp_tc: &str, ctx: &str) -> String {
    let path = repo.path().join("src/libbpfilter/cgen/prologue.c");
    let src = std::fs::read_to_string(path).unwrap();
    let src = src
        .replace("static void emit_padding(struct mf_buf *b)", "static void emit_padding(struct mf_buf *b, int n)")
        .replace("i < MF_PROLOGUE_PADDING;", "i < n;")
        .replace("if (MF_PROLOGUE_PADDING > 0)", "if (n > 0)");
    let (pkt, rest) = src.split_once("    emit_padding(b);").expect("the packet prologue pads");
    let (ctx_part, tail) = rest.split_once("    emit_padding(b);").expect("the context prologue pads");
    format!("{pkt}    emit_padding(b, {xdp_tc});{ctx_part}    emit_padding(b, {ctx});{tail}")
}

/// `--max-regression` and `--threshold` decide on a mixed change: the TC prologue loses its 128
/// padding instructions (much faster, the suite too) while the XDP one gets 64 more. With
/// `--max-regression 5` the XDP slowdown rejects the attempt, naming the case and the limit;
/// resumed with `--threshold 1000` no case is judged slower, and the same change is kept.
#[test]
fn max_regression_and_threshold_decide_on_a_mixed_change() {
    require_bpf!();
    let repo = FixtureRepo::new();
    repo.set_padding(128);
    repo.commit("cgen: 128 redundant instructions per prologue");
    let before = Checkout::take(&repo);
    let cache = cache_dir();
    let content =
        prologue_with_padding(&repo, "hook == MF_HOOK_XDP ? MF_PROLOGUE_PADDING + 64 : 0", "MF_PROLOGUE_PADDING");
    let plan = "TITLE: pad the XDP prologue only\nWHY: a mixed change.\nHOW: rewrite emit_padding in prologue.c.";
    let edit = ("write_file", json!({"path": "src/libbpfilter/cgen/prologue.c", "content": content}));
    let server = ModelServer::start(scripted(plan, vec![edit]));

    let out = optimize(&repo, cache.path(), &server, "mixed", &["--iterations", "1", "--max-regression", "5"]);
    assert_eq!(out.code, 0, "{}", show(&out));
    let h = history(cache.path(), "mixed");
    assert_eq!(outcomes(&h), ["rejected"], "{}", show(&out));
    let a = &attempts(&h)[0];
    assert!(a["geomean"]["hi"].as_f64().unwrap() < 1.0, "the suite is faster: {}", a["geomean"]);
    let reason = a["outcome"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("xdp__prologue is +") && reason.ends_with("slower (more than --max-regression 5.0 %)"),
        "{reason}"
    );
    let verdict = |a: &Value, case: &str| {
        a["deltas"].as_array().unwrap().iter().find(|d| d["case"] == case).unwrap()["verdict"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(verdict(a, "xdp__prologue"), "slower", "{}", a["deltas"]);
    assert_eq!(verdict(a, "tc__prologue"), "faster", "{}", a["deltas"]);

    let out = resume(
        &repo,
        cache.path(),
        &server.uri(),
        "mixed",
        &["--iterations", "1", "--max-regression", "5", "--threshold", "1000"],
    );
    assert_eq!(out.code, 0, "{}", show(&out));
    let h = history(cache.path(), "mixed");
    assert_eq!(outcomes(&h), ["rejected", "kept"], "{}", show(&out));
    let a = &attempts(&h)[1];
    for case in ["xdp__prologue", "tc__prologue"] {
        assert_ne!(verdict(a, case), "slower", "no case is slower by 1000 %: {}", a["deltas"]);
    }
    assert_eq!(
        git(
            repo.path(),
            &["diff", "--name-only", &format!("{}~1", branch_tip(&repo, "mixed")), &branch_tip(&repo, "mixed")]
        ),
        "src/libbpfilter/cgen/prologue.c"
    );
    before.assert_unchanged(&repo);
}

/// A scripted OpenAI-compatible chat-completions server (`POST /v1/chat/completions`).
struct ChatServer {
    rt: tokio::runtime::Runtime,
    server: MockServer,
}

impl ChatServer {
    /// `script(phase, turn)` answers; the phase is told by the tools offered, the turn by the
    /// assistant messages already in the conversation.
    fn start(script: impl Fn(Phase, usize) -> Value + Send + Sync + 'static) -> ChatServer {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let server = rt.block_on(MockServer::start());
        let responder = move |req: &Request| {
            let body: Value = serde_json::from_slice(&req.body).expect("xtask sends JSON");
            let turn = body["messages"].as_array().unwrap().iter().filter(|m| m["role"] == "assistant").count();
            let message = script(chat_phase(&body), turn);
            ResponseTemplate::new(200).set_body_json(json!({
                "id": "chatcmpl-test", "object": "chat.completion", "model": "local-qwen",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1000, "completion_tokens": 200}
            }))
        };
        rt.block_on(
            Mock::given(method("POST")).and(path("/v1/chat/completions")).respond_with(responder).mount(&server),
        );
        ChatServer { rt, server }
    }

    fn bodies(&self) -> Vec<Value> {
        let requests = self.rt.block_on(self.server.received_requests()).expect("recording is on");
        requests.iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect()
    }
}

fn chat_phase(body: &Value) -> Phase {
    let tools = body["tools"].as_array().into_iter().flatten();
    if tools.filter_map(|t| t["function"]["name"].as_str()).any(|n| n == "write_file") {
        Phase::Implement
    } else {
        Phase::Propose
    }
}

/// `--backend openai` runs the loop over a chat-completions server (no Anthropic key needed),
/// with `--objective insns`: a change that drops one padding instruction is kept on the
/// instruction counts alone, nothing timed (no bfcli runs on the SCHED_FIFO measuring thread
/// that `--cpu-pin 0 --no-preempt` would make). `--include-flagged` lets a flagged case be
/// judged: without it, a filter of flagged cases only is one error before anything is built.
#[test]
fn openai_backend_objective_insns_and_include_flagged() {
    require_bpf!();
    let (repo, before) = fixture();
    let cache = cache_dir();
    let flagged = "single_rule__ip4_saddr__x_elem_set/8";
    let model_args = |uri: &str| {
        vec![
            "--backend".to_owned(),
            "openai".into(),
            "--api-base-url".into(),
            uri.to_owned(),
            "--model".into(),
            "local-qwen".into(),
        ]
    };
    let common =
        ["--quick", "--time-budget", "5", "--validate", "make -C {build} -j{jobs}", "--no-tests", "--iterations", "1"];

    // Flagged cases only, without --include-flagged: one error, nothing built.
    let filter_flagged = ["--filter", flagged];
    let mut cmd = bfperf_tests::subcommand(
        "optimize",
        repo.path(),
        &[&common[..], &filter_flagged, &["--run-id", "flagged"]].concat(),
        cache.path(),
    );
    cmd.args(model_args("http://127.0.0.1:9")).env_remove("ANTHROPIC_API_KEY").env_remove("OPENAI_API_KEY");
    let out = run(cmd);
    assert!(
        error_line(&out).contains("no case left to judge") && error_line(&out).contains("--include-flagged"),
        "{}",
        show(&out)
    );
    assert!(!cache.path().join("builds").exists() && !run_dir(cache.path(), "flagged").exists());

    let comment = set_padding_edit(16, 15);
    let server = ChatServer::start(move |phase, turn| match (phase, turn) {
        (Phase::Propose, _) => {
            json!({"role": "assistant", "content": "TITLE: one padding instruction less\nWHY: dead work.\nHOW: edit knobs.h."})
        }
        (Phase::Implement, 0) => json!({"role": "assistant", "content": null, "tool_calls": [{
            "id": "call_0", "type": "function",
            "function": {"name": comment.0, "arguments": comment.1.to_string()}
        }]}),
        (Phase::Implement, _) => json!({"role": "assistant", "content": "Done."}),
    });
    let uri = server.server.uri();
    let record = cache.path().join("sched.txt");
    let filter = ["--filter", &format!("xdp__prologue,{flagged}")].map(|s| s.to_owned());
    let args: Vec<String> = common
        .iter()
        .map(|s| s.to_string())
        .chain(filter)
        .chain(
            ["--include-flagged", "--objective", "insns", "--run-id", "openai", "--cpu-pin", "0", "--no-preempt"]
                .map(String::from),
        )
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = bfperf_tests::subcommand("optimize", repo.path(), &args, cache.path());
    cmd.args(model_args(&uri)).env_remove("ANTHROPIC_API_KEY").env_remove("OPENAI_API_KEY");
    cmd.env("MINIFILTER_RECORD_SCHED", &record);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", show(&out));
    let h = history(cache.path(), "openai");
    assert_eq!(h["model"], "local-qwen");
    assert_eq!(h["objective"], "insns");
    // Fewer instructions: kept on the counts alone, nothing timed.
    assert_eq!(outcomes(&h), ["kept"], "{}", show(&out));
    let a = &attempts(&h)[0];
    assert!(a["insns_delta"].as_i64().unwrap() < 0, "{a:#}");
    assert!(a["geomean"].is_null(), "nothing was timed: {a:#}");
    let cases: Vec<&str> = a["deltas"].as_array().unwrap().iter().map(|d| d["case"].as_str().unwrap()).collect();
    assert_eq!(cases, ["xdp__prologue", flagged], "the flagged case is judged too");
    assert!(a["deltas"].as_array().unwrap().iter().all(|d| d["verdict"] == "changed (not timed)"), "{a:#}");
    // Three chat requests: the plan, the edit, the closing line; every one for the model asked.
    let bodies = server.bodies();
    assert_eq!(bodies.len(), 3, "{bodies:#?}");
    assert!(bodies.iter().all(|b| b["model"] == "local-qwen"), "{bodies:#?}");
    assert!(out.stderr.contains("host: while measuring: SCHED_FIFO priority 1"), "{}", show(&out));
    // Nothing was measured: no bfcli was started by the (SCHED_FIFO) measuring thread.
    let sched = std::fs::read_to_string(&record).unwrap();
    let bfcli: Vec<&str> = sched.lines().filter(|l| l.starts_with("bfcli ")).collect();
    assert!(!bfcli.is_empty(), "the programs were loaded:\n{sched}");
    assert!(bfcli.iter().all(|l| l.ends_with("parent_fifo_threads=0")), "a bfcli was measured:\n{sched}");
    assert_worktree_clean(&h);
    before.assert_unchanged(&repo);
}

// ---------------------------------------------------------------------------
// The evidence the model works from.

/// An external agent's prompt file carries the evidence (the tree's CLAUDE.md, registers and
/// style, the baseline's per-case numbers, the four prologue listings, the earlier attempts with
/// their measured deltas), and `$BFPERF_SHOW CASE`, run from the implement step, builds the
/// agent's own edited tree and shows its program: the instruction it added is in the listing.
#[test]
fn the_agent_sees_the_programs_the_numbers_and_its_own_edit() {
    require_bpf!();
    let (repo, before) = fixture();
    let cache = cache_dir();
    let saved = tempfile::tempdir().unwrap();
    let dir = saved.path().display();
    // Propose: save the prompt (propose1.md, propose2.md), answer a plan. Implement (first time
    // only): load a marker constant into the padding register at the top of every padding,
    // then show the XDP prologue the edited tree generates.
    let agent = format!(
        "n=$(ls {dir} | grep -c propose); \
         if grep -q 'Implement this plan' \"$BFPERF_PROMPT_FILE\"; then \
           if [ ! -e {dir}/edited ]; then touch {dir}/edited; \
             sed -i '/^static void emit_padding/{{n;a\\    mf_buf_emit(b, MF_MOV64_IMM(MF_REG_PAD, 4242));\n}}' \
               src/libbpfilter/cgen/prologue.c; \
             \"$BFPERF_SHOW\" xdp__prologue > {dir}/show.txt 2>&1; echo \"exit $?\" >> {dir}/show.txt; \
             \"$BFPERF_SHOW\" no_such_case > {dir}/unknown.txt 2>&1; \
           fi; echo implemented; \
         else cp \"$BFPERF_PROMPT_FILE\" {dir}/propose$((n + 1)).md; \
           printf 'TITLE: load a marker into the padding register\\nWHY: test\\nHOW: prologue.c\\n'; fi"
    );
    let mut args = vec!["--run-id", "seen", "--agent-command", &agent, "--iterations", "2"];
    args.extend_from_slice(CHEAP);
    let out = run(optimize_command(repo.path(), cache.path(), &args));
    assert_eq!(out.code, 0, "{}", show(&out));
    let h = history(cache.path(), "seen");
    assert_eq!(outcomes(&h)[1], "no_change", "{}", show(&out));

    let prompt = std::fs::read_to_string(saved.path().join("propose1.md")).unwrap();
    // The tree's own knowledge.
    assert!(prompt.contains("## The project's instructions for coding agents (CLAUDE.md)"), "{prompt}");
    assert!(prompt.contains("minifilter: notes for coding agents"), "{prompt}");
    assert!(prompt.contains("src/libbpfilter/cgen/cgen.h:26: r7 is MF_REG_L3: pointer to L3 header"), "{prompt}");
    assert!(prompt.contains("### src/libbpfilter/cgen/prologue.c\nminifilter: program prologues"), "{prompt}");
    assert!(prompt.contains("IndentWidth: 4"), "{prompt}");
    // The baseline's numbers: a row per judged case with a time, the time over the floor and the counts.
    let table: Vec<&str> = prompt.lines().skip_while(|l| !l.starts_with("case ")).take(5).collect();
    assert!(table[0].contains("over floor") && table[0].contains("xlated"), "{prompt}");
    for case in ["xdp__prologue", "tc__prologue"] {
        let row = table.iter().find(|l| l.starts_with(case)).unwrap_or_else(|| panic!("{case}:\n{prompt}"));
        let fields: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(fields[2], "ns", "{row}");
        let ns: f64 = fields[1].parse().unwrap();
        let over: f64 = fields[3].parse().unwrap();
        let xlated: u32 = fields[5].parse().unwrap();
        assert!(ns > 0.0 && over < ns && xlated > 16, "{row}");
    }
    // The four prologue listings, with minifilter's padding instructions in them.
    for case in ["xdp__prologue", "tc__prologue", "netfilter__prologue", "cgroup_skb__prologue"] {
        let head = format!("### The program generated for {case} (bpftool's xlated syntax)\n```\n; ");
        let at = prompt.find(&head).unwrap_or_else(|| panic!("no listing of {case}:\n{prompt}"));
        let body = &prompt[at + head.len()..];
        let listing = &body[..body.find("\n```\n").unwrap()];
        assert!(listing.contains("xlated instructions") && listing.contains("r9 *= 7"), "{listing}");
        assert!(!listing.contains("r9 = 4242"), "the baseline's, not the attempt's: {listing}");
    }

    // The explorer built the agent's edit and shows it against the baseline.
    let shown = std::fs::read_to_string(saved.path().join("show.txt")).unwrap();
    assert!(shown.ends_with("exit 0\n"), "{shown}");
    assert!(shown.contains("xdp__prologue with the attempt's changes"), "{shown}");
    assert!(shown.contains("+1 \u{2212}0 instructions"), "{shown}");
    assert!(shown.contains("+\tr9 = 4242"), "the diff has the new instruction:\n{shown}");
    assert!(shown.lines().any(|l| l.ends_with(": r9 = 4242")), "the listing has it:\n{shown}");
    let unknown = std::fs::read_to_string(saved.path().join("unknown.txt")).unwrap();
    assert!(unknown.starts_with("error: no case named \"no_such_case\""), "{unknown}");

    // The second proposal knows the first attempt and what was measured.
    let second = std::fs::read_to_string(saved.path().join("propose2.md")).unwrap();
    let a = &attempts(&h)[0];
    let earlier = second.lines().find(|l| l.starts_with("- [") && l.contains("load a marker into")).expect(&second);
    assert!(earlier.starts_with(&format!("- [{}]", a["outcome"]["result"].as_str().unwrap())), "{earlier}");
    if a["geomean"].is_object() {
        assert!(earlier.contains("suite ") && earlier.contains("xlated instructions"), "{earlier}");
        assert!(second.contains("    - xdp__prologue "), "per-case deltas:\n{second}");
    }
    before.assert_unchanged(&repo);
}

/// The tool results of the conversation whose last request is `body`, in call order.
fn tool_results(body: &Value) -> Vec<(bool, String)> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "user")
        .filter_map(|m| m["content"].as_array())
        .flatten()
        .filter(|b| b["type"] == "tool_result")
        .map(|b| (b["is_error"].as_bool().unwrap_or(false), b["content"].as_str().unwrap_or("").to_owned()))
        .collect()
}

/// An API model gets the evidence as tools: `list_cases` (the suite with the baseline's numbers),
/// `show_program` (a case's baseline listing; an unknown case is refused) and, while
/// implementing, `build_and_show`, which builds its edited tree: a compile error comes back as
/// the compiler's message, the fixed edit as the new listing and its diff against the baseline.
#[test]
fn an_api_model_explores_the_programs_with_its_tools() {
    require_bpf!();
    let (repo, before) = fixture();
    let cache = cache_dir();
    let prologue = "src/libbpfilter/cgen/prologue.c";
    let head = "static void emit_padding(struct mf_buf *b)\n{\n";
    let broken = format!("{head}    mf_buf_emit(b, MF_MOV64_IMM(MF_REG_PAD, 4242))\n");
    let fixed = format!("{head}    mf_buf_emit(b, MF_MOV64_IMM(MF_REG_PAD, 4242));\n");
    let explore = |case: &str| ("build_and_show", json!({ "case": case }));
    let script = move |call: &Call| match (call.phase, call.turn) {
        (Phase::Propose, 0) => tool_uses(&[
            ("list_cases", json!({})),
            ("show_program", json!({"case": "tc__prologue"})),
            ("show_program", json!({"case": "tc__prologue; rm -rf /"})),
        ]),
        (Phase::Propose, _) => text("TITLE: load a marker into the padding register\nWHY: test\nHOW: prologue.c"),
        (Phase::Implement, 0) => tool_uses(&[
            ("replace_in_file", json!({"path": prologue, "old": head, "new": broken})),
            explore("xdp__prologue"),
        ]),
        (Phase::Implement, 1) => tool_uses(&[
            ("replace_in_file", json!({"path": prologue, "old": broken, "new": fixed})),
            explore("xdp__prologue"),
        ]),
        (Phase::Implement, _) => text("Done."),
    };
    let server = ModelServer::start(script);
    let out = optimize(&repo, cache.path(), &server, "tools", &["--iterations", "1"]);
    assert_eq!(out.code, 0, "{}", show(&out));

    let bodies = server.bodies();
    let propose = bodies.iter().rfind(|b| phase_of(b) == Phase::Propose).unwrap();
    let results = tool_results(propose);
    assert_eq!(results.len(), 3, "{results:?}");
    let (err, cases) = &results[0];
    assert!(!err && cases.lines().count() > 20, "every case of the suite:\n{cases}");
    let row = cases.lines().find(|l| l.starts_with("xdp__prologue ")).expect(cases);
    assert!(row.contains(" ns ") && !row.contains("not measured"), "{row}");
    assert!(cases.lines().any(|l| l.contains("not measured")), "cases outside --filter say so:\n{cases}");
    let (err, listing) = &results[1];
    assert!(!err && listing.contains("xlated instructions") && listing.contains("r9 *= 7"), "{listing}");
    let (err, refused) = &results[2];
    assert!(*err && refused.contains("no case named"), "{refused}");
    assert_eq!(tool_names(propose), ["read_file", "list_dir", "grep", "show_program", "list_cases"]);

    let implement = bodies.iter().rfind(|b| phase_of(b) == Phase::Implement).unwrap();
    assert!(tool_names(implement).contains(&"build_and_show".to_owned()));
    let results = tool_results(implement);
    assert_eq!(results.len(), 4, "{results:?}");
    let (err, compiler) = &results[1];
    assert!(*err && compiler.contains("the build failed") && compiler.contains("error:"), "{compiler}");
    assert!(compiler.contains("prologue.c"), "the compiler names the file:\n{compiler}");
    let (err, shown) = &results[3];
    assert!(!err, "{shown}");
    assert!(shown.contains("+1 \u{2212}0 instructions") && shown.contains("+\tr9 = 4242"), "{shown}");
    assert!(shown.contains("(+1)"), "count deltas:\n{shown}");
    before.assert_unchanged(&repo);
}
