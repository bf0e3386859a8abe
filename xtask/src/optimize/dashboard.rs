//! `cargo xtask optimize-dashboard`: the optimize runs of one checkout in a
//! browser, on loopback only. Lists the runs past and present (each with its
//! report), follows the one in progress live, starts runs from a form and
//! stops them.
//!
//! What makes it safe to leave running:
//!
//! * **Fixed at start, never from a request**: the checkout, the cache, the
//!   executable started (this one), and what every run gets besides the form
//!   (`--agent-command`, `--api-base-url`, `--run-arg`).
//! * **Every form field is enumerated or bounded**, checked here before
//!   anything runs: the model (the price table's list), the effort and the
//!   objective (their enums), the iterations (1..=[`MAX_ITERATIONS`]), the
//!   hints (at most [`MAX_HINTS`] of [`MAX_HINT_CHARS`] characters, no control
//!   characters), quick (a checkbox). Anything else, an unknown field
//!   included, is a 400 naming the field.
//! * **Run ids** in URLs are checked by [`super::check_run_id`]; a run's files
//!   are found only under `<cache>/optimize/<run-id>/`, opened without
//!   following links ([`super::record::RunRecord::load`]), and shown only if
//!   they record this checkout. No URL names a file.
//! * **Start and stop need the token** printed in the terminal at start (the
//!   `X-Bfperf-Token` header or the `token` form field); there is no delete.
//!   Stopping sends the run SIGINT, its Ctrl-C: the attempt under way is
//!   recorded `interrupted`, and `--resume` continues the run.
//! * The `Host` check, hardening headers and Content-Security-Policy of
//!   `optimize --serve` ([`super::serve`]).
//! * **Pages are templates** (`xtask/templates/dashboard*.html`, extending
//!   `base.html` with the one `style.css`; a run's page extends its report's
//!   `optimize.html`): every variable is escaped by minijinja, so a run id, a
//!   model's title, a log line or a server setting is text, never markup.

use super::record::{Outcome, RunRecord};
use super::serve::{self, TOKEN_HEADER};
use super::transcript::LiveLog;
use crate::output::html::live::{self, code, link, render, text, Stop, Strip};
use anyhow::{Context as _, Result};
use minijinja::{context, Value};
use std::collections::BTreeMap;
use std::io::{BufRead as _, Read as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Most attempts a run started from the page may make.
pub const MAX_ITERATIONS: usize = 50;
/// Most hints a run started from the page may get.
pub const MAX_HINTS: usize = 5;
/// Longest hint, in characters.
pub const MAX_HINT_CHARS: usize = 500;
/// Largest form body read.
const MAX_BODY: u64 = 16 * 1024;

/// What the server is fixed to when it starts: the resolved checkout, cache
/// and program, and the flags every run it starts gets.
#[derive(Debug, Clone)]
pub struct Config {
    /// The checkout (its root, as `optimize` records it).
    pub sources: PathBuf,
    /// The cache (`<cache>/optimize/<run-id>/`).
    pub cache: PathBuf,
    /// The program run as `PROGRAM optimize ...` (this executable).
    pub program: PathBuf,
    /// `--agent-command`, `--api-base-url` and the `--run-arg`s (`--validate ...`,
    /// `--filter ...`) of every run started.
    pub runs: crate::flags::DashboardRunFlags,
}

/// The run settings a start form may choose, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRequest {
    /// A model of the price table.
    pub model: String,
    /// `low`, `medium`, `high`, `max`.
    pub effort: crate::agent::Effort,
    /// 1..=[`MAX_ITERATIONS`].
    pub iterations: usize,
    /// At most [`MAX_HINTS`], each at most [`MAX_HINT_CHARS`] characters.
    pub hints: Vec<String>,
    /// `runtime` or `insns`.
    pub objective: super::Objective,
    /// `--quick`.
    pub quick: bool,
}

/// The models a run may be started with: the price table's.
pub fn models() -> Vec<&'static str> {
    crate::agent::pricing::MODELS.iter().map(|m| m.prefix).collect()
}

/// The decoded fields of an `application/x-www-form-urlencoded` body, in
/// order; `None` when it is not valid (bad escape, not UTF-8).
pub fn parse_form(body: &str) -> Option<Vec<(String, String)>> {
    fn decode(s: &str) -> Option<String> {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                    out.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).ok()
    }
    body.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

/// Whether a hint character is refused: control characters (newlines
/// included), bidirectional overrides and isolates, line separators.
fn hostile(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

impl StartRequest {
    /// Check every field of a start form (the token aside): one error naming
    /// the first bad field and what it accepts.
    pub fn from_form(fields: &[(String, String)]) -> std::result::Result<StartRequest, String> {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let mut hints = vec![];
        for (k, v) in fields {
            match k.as_str() {
                "model" | "effort" | "iterations" | "objective" | "quick" | "token" => {
                    *seen.entry(k.as_str()).or_default() += 1;
                    if seen[k.as_str()] > 1 {
                        return Err(format!("{k}: given more than once"));
                    }
                }
                "hint" => {
                    let hint = v.trim();
                    if hint.is_empty() {
                        continue;
                    }
                    if hint.chars().count() > MAX_HINT_CHARS {
                        return Err(format!("hint: at most {MAX_HINT_CHARS} characters"));
                    }
                    if hint.chars().any(hostile) {
                        return Err("hint: control characters are not allowed (one line of text)".into());
                    }
                    hints.push(hint.to_owned());
                    if hints.len() > MAX_HINTS {
                        return Err(format!("hint: at most {MAX_HINTS} hints"));
                    }
                }
                other => return Err(format!("{}: not a field of this form", crate::text::line(other))),
            }
        }
        let get = |k: &str| fields.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        let model = get("model").ok_or("model: required")?;
        if !models().contains(&model) {
            return Err(format!("model: one of {}", models().join(", ")));
        }
        let effort = get("effort")
            .unwrap_or("medium")
            .parse::<crate::agent::Effort>()
            .map_err(|_| "effort: one of low, medium, high, max".to_owned())?;
        let iterations = get("iterations")
            .ok_or("iterations: required")?
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_ITERATIONS).contains(n))
            .ok_or(format!("iterations: a whole number from 1 to {MAX_ITERATIONS}"))?;
        let objective = match get("objective").unwrap_or("runtime") {
            "runtime" => super::Objective::Runtime,
            "insns" => super::Objective::Insns,
            _ => return Err("objective: runtime or insns".into()),
        };
        let quick = match get("quick") {
            None => false,
            Some("on" | "1" | "true") => true,
            Some(_) => return Err("quick: a checkbox (on, or absent)".into()),
        };
        Ok(StartRequest { model: model.to_owned(), effort, iterations, hints, objective, quick })
    }

    /// The `optimize` arguments for this request and `config` (run id `run_id`).
    pub fn args(&self, config: &Config, run_id: &str) -> Vec<String> {
        let mut args: Vec<String> = vec!["optimize".into(), "--sources".into()];
        args.push(config.sources.display().to_string());
        args.extend(["--cache-dir".into(), config.cache.display().to_string()]);
        args.extend(["--run-id".into(), run_id.into(), "--iterations".into(), self.iterations.to_string()]);
        args.extend(["--model".into(), self.model.clone(), "--effort".into(), self.effort.to_string()]);
        let objective = match self.objective {
            super::Objective::Runtime => "runtime",
            super::Objective::Insns => "insns",
        };
        args.extend(["--objective".into(), objective.into()]);
        if self.quick {
            args.push("--quick".into());
        }
        // `--hint=TEXT`, one argument: a hint that reads like a flag stays a hint.
        args.extend(self.hints.iter().map(|h| format!("--hint={h}")));
        if let Some(cmd) = &config.runs.agent_command {
            args.extend(["--agent-command".into(), cmd.clone()]);
        }
        if let Some(url) = &config.runs.api_base_url {
            args.extend(["--api-base-url".into(), url.clone()]);
        }
        args.extend(config.runs.run_args.iter().cloned());
        args
    }
}

/// A run this server started.
struct Started {
    child: Child,
    /// Its stderr, line by line.
    log: Arc<LiveLog>,
    /// Its exit status once it ended.
    exit: Option<std::process::ExitStatus>,
    stop_sent: bool,
}

impl Started {
    fn running(&mut self) -> bool {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit.is_none()
    }
}

struct State {
    config: Config,
    token: String,
    addr: SocketAddr,
    started: Mutex<BTreeMap<String, Started>>,
}

/// A running dashboard server; dropping it stops the server (not the runs).
pub struct Server {
    state: Arc<State>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.state.addr).finish_non_exhaustive()
    }
}

impl Server {
    /// Bind `addr` (loopback only) and serve in the background.
    /// `config.sources` must be the checkout's root as `optimize` records it (its git workdir).
    pub fn start(addr: SocketAddr, config: Config) -> Result<Server> {
        serve::check_addr(addr).map_err(|e| anyhow::anyhow!("{}", e.to_string().replace("--serve", "--addr")))?;
        let server = tiny_http::Server::http(addr)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("--addr: cannot listen on {addr}"))?;
        let addr = server.server_addr().to_ip().context("--addr: not an IP listener")?;
        let server = Arc::new(server);
        let state = Arc::new(State { config, token: serve::new_token(), addr, started: Mutex::new(BTreeMap::new()) });
        let thread = {
            let (server, state) = (Arc::clone(&server), Arc::clone(&state));
            std::thread::Builder::new()
                .name("bfperf-optimize-dashboard".into())
                .spawn(move || {
                    for request in server.incoming_requests() {
                        handle(&state, request);
                    }
                })
                .context("cannot start the dashboard thread")?
        };
        Ok(Server { state, server, thread: Some(thread) })
    }

    /// The address bound.
    pub fn addr(&self) -> SocketAddr {
        self.state.addr
    }

    /// `http://ADDR/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.state.addr)
    }

    /// The token start and stop need (128 random bits in hex).
    pub fn token(&self) -> &str {
        &self.state.token
    }

    /// Stop every run still going (SIGINT, their Ctrl-C) and wait for them, at most `grace`.
    pub fn stop_runs(&self, grace: std::time::Duration) {
        let deadline = std::time::Instant::now() + grace;
        let mut started = self.state.started.lock().unwrap_or_else(|e| e.into_inner());
        for run in started.values_mut() {
            if run.running() {
                interrupt(run);
            }
        }
        while started.values_mut().any(|r| r.running()) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        for run in started.values_mut() {
            if run.running() {
                let _ = run.child.kill();
                let _ = run.child.wait();
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn interrupt(run: &mut Started) {
    let pid = nix::unistd::Pid::from_raw(run.child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
    run.stop_sent = true;
}

const HTML: &str = "text/html; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

/// The routes: `(path, method)` to a handler.
fn handle(state: &State, mut request: tiny_http::Request) {
    if !serve::host_allowed(&request, state.addr.port()) {
        return serve::respond(request, 403, TEXT, format!("forbidden: use http://{}/\n", state.addr), &[]);
    }
    let path = request.url().split(['?', '#']).next().unwrap_or("").to_owned();
    let method = request.method().clone();
    let get = matches!(method, tiny_http::Method::Get | tiny_http::Method::Head);
    let post = method == tiny_http::Method::Post;
    let segments: Vec<&str> = path.split('/').collect();
    // ["", "runs", ID, ""|"state.json"|"stop"]
    let run = match segments.as_slice() {
        ["", "runs", id, rest] if super::check_run_id(id).is_ok() => Some((id.to_string(), rest.to_string())),
        _ => None,
    };
    let not_allowed = |request: tiny_http::Request, allow: &str| {
        serve::respond(request, 405, TEXT, "method not allowed\n".into(), &[("Allow", allow)])
    };
    match (path.as_str(), &run) {
        ("/", _) if get => serve::respond(request, 200, HTML, index_page(state), &[]),
        ("/runs.json", _) if get => serve::respond(request, 200, JSON, runs_json(state), &[]),
        ("/start", _) if post => {
            let (status, body, location) = start(state, &mut request);
            let extra: Vec<(&str, &str)> = location.iter().map(|l| ("Location", l.as_str())).collect();
            serve::respond(request, status, HTML, body, &extra)
        }
        ("/" | "/runs.json", _) => not_allowed(request, "GET, HEAD"),
        ("/start", _) => not_allowed(request, "POST"),
        (_, Some((id, rest))) => match (rest.as_str(), get, post) {
            ("", true, _) => match run_page(state, id) {
                Some(page) => serve::respond(request, 200, HTML, page, &[]),
                None => serve::respond(request, 404, TEXT, "no such run\n".into(), &[]),
            },
            ("state.json", true, _) => match run_state(state, id) {
                Some(json) => serve::respond(request, 200, JSON, json, &[]),
                None => serve::respond(request, 404, TEXT, "no such run\n".into(), &[]),
            },
            ("stop", _, true) => {
                let (status, body) = stop(state, &mut request, id);
                serve::respond(request, status, HTML, body, &[])
            }
            ("", _, _) | ("state.json", _, _) => not_allowed(request, "GET, HEAD"),
            ("stop", _, _) => not_allowed(request, "POST"),
            _ => serve::respond(request, 404, TEXT, "not found\n".into(), &[]),
        },
        _ => serve::respond(request, 404, TEXT, "not found\n".into(), &[]),
    }
}

/// The body of a form post (at most [`MAX_BODY`]) and the token it carries (header first).
fn form_and_token(request: &mut tiny_http::Request) -> std::result::Result<(Vec<(String, String)>, String), String> {
    let header =
        request.headers().iter().find(|h| h.field.equiv(TOKEN_HEADER)).map(|h| h.value.as_str().trim().to_owned());
    let mut body = String::new();
    request.as_reader().take(MAX_BODY + 1).read_to_string(&mut body).map_err(|_| "the form is not UTF-8".to_owned())?;
    if body.len() as u64 > MAX_BODY {
        return Err(format!("the form is larger than {MAX_BODY} bytes"));
    }
    let fields = parse_form(&body).ok_or("the form is not valid application/x-www-form-urlencoded")?;
    let from_form = fields.iter().find(|(k, _)| k == "token").map(|(_, v)| v.trim().to_owned());
    Ok((fields, header.or(from_form).unwrap_or_default()))
}

fn forbidden() -> String {
    message_page(
        "Wrong or missing token",
        &[
            text("The token is printed in the terminal where "),
            code("cargo xtask optimize-dashboard"),
            text(" runs. "),
            link("/", "Back to the runs"),
        ],
    )
}

/// `POST /start`: (status, page, Location).
fn start(state: &State, request: &mut tiny_http::Request) -> (u16, String, Option<String>) {
    let bad = |why: &str| (400, message_page("Refused", &[text(why), text(" "), link("/", "Back")]), None);
    let (fields, token) = match form_and_token(request) {
        Ok(f) => f,
        Err(why) => return bad(&why),
    };
    if !serve::same_token(&token, &state.token) {
        return (403, forbidden(), None);
    }
    let req = match StartRequest::from_form(&fields) {
        Ok(r) => r,
        Err(why) => return bad(&why),
    };
    let mut started = state.started.lock().unwrap_or_else(|e| e.into_inner());
    let going = started.iter_mut().find_map(|(id, r)| r.running().then(|| id.clone()));
    if let Some(id) = going {
        let page = message_page(
            "A run is already going",
            &[text("Run "), link(&format!("/runs/{id}/"), &id), text(" is still going: stop it first.")],
        );
        return (409, page, None);
    }
    let run_id = new_run_id(&state.config, &started);
    let args = req.args(&state.config, &run_id);
    let spawned = Command::new(&state.config.program)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let why = format!("cannot start {}: {e}", state.config.program.display());
            return (500, message_page("Could not start", &[text(&why)]), None);
        }
    };
    let log = Arc::new(LiveLog::default());
    log.push(format!("started: optimize run {run_id} ({} iterations, {})", req.iterations, req.model));
    // The run's own lines (plain: its stderr is not a terminal) and its final summary, as text.
    let stdout: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().expect("stdout is piped"));
    let stderr: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().expect("stderr is piped"));
    for stream in [stderr, stdout] {
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stream).lines() {
                match line {
                    Ok(l) => sink.push(crate::text::line(&l).into_owned()),
                    Err(_) => break,
                }
            }
        });
    }
    crate::progress::info(format!("optimize-dashboard: started run {run_id} (pid {})", child.id()));
    started.insert(run_id.clone(), Started { child, log, exit: None, stop_sent: false });
    let location = format!("/runs/{run_id}/");
    let page = message_page("Started", &[text("Run "), link(&location, &run_id), text(" started.")]);
    (303, page, Some(location))
}

/// A new run id: the time, made unique among the cache's runs and this server's.
fn new_run_id(config: &Config, started: &BTreeMap<String, Started>) -> String {
    let base = chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string();
    let taken = |id: &str| started.contains_key(id) || std::fs::symlink_metadata(run_dir(config, id)).is_ok();
    if !taken(&base) {
        return base;
    }
    (2..).map(|n| format!("{base}-{n}")).find(|id| !taken(id)).expect("an unused id")
}

fn run_dir(config: &Config, id: &str) -> PathBuf {
    config.cache.join("optimize").join(id)
}

/// `POST /runs/<id>/stop`.
fn stop(state: &State, request: &mut tiny_http::Request, id: &str) -> (u16, String) {
    let token = match form_and_token(request) {
        Ok((_, t)) => t,
        Err(why) => return (400, message_page("Refused", &[text(&why)])),
    };
    if !serve::same_token(&token, &state.token) {
        return (403, forbidden());
    }
    let mut started = state.started.lock().unwrap_or_else(|e| e.into_inner());
    let Some(run) = started.get_mut(id) else {
        return (
            404,
            message_page("Not a run of this dashboard", &[text("Only runs started here can be stopped here.")]),
        );
    };
    if !run.running() {
        return (
            409,
            message_page("Already ended", &[link(&format!("/runs/{id}/"), &format!("Run {id}")), text(" has ended.")]),
        );
    }
    interrupt(run);
    run.log.push("stop requested from the dashboard: the run is interrupted (Ctrl-C)".into());
    crate::progress::info(format!("optimize-dashboard: stopping run {id}"));
    (
        202,
        message_page(
            "Stopping",
            &[
                text(&format!("Run {id} is interrupted: the attempt under way is recorded as such, and ")),
                code(&format!("cargo xtask optimize --resume {id}")),
                text(" continues it. "),
                link(&format!("/runs/{id}/"), "Back to the run"),
            ],
        ),
    )
}

/// A run of the cache, if `id` is a valid run id whose record belongs to this checkout.
fn load(config: &Config, id: &str) -> Option<RunRecord> {
    super::check_run_id(id).ok()?;
    let record = RunRecord::load(&run_dir(config, id).join("history.json")).ok()?;
    (record.run_id == id && record.sources == config.sources).then_some(record)
}

/// One row of the list.
struct Row {
    id: String,
    record: Option<RunRecord>,
    /// Started here and still going.
    running: bool,
    /// Started here: how it ended.
    exit: Option<String>,
}

fn rows(state: &State) -> Vec<Row> {
    let config = &state.config;
    let mut ids: Vec<String> = std::fs::read_dir(config.cache.join("optimize"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|id| super::check_run_id(id).is_ok())
        .collect();
    let mut started = state.started.lock().unwrap_or_else(|e| e.into_inner());
    ids.extend(started.keys().cloned());
    ids.sort();
    ids.dedup();
    let mut rows: Vec<Row> = ids
        .into_iter()
        .filter_map(|id| {
            let record = load(config, &id);
            let mine = started.get_mut(&id);
            if record.is_none() && mine.is_none() {
                return None;
            }
            let (running, exit) = match mine {
                Some(r) => {
                    let running = r.running();
                    (running, r.exit.map(|s| describe_exit(s, r.stop_sent)))
                }
                None => (false, None),
            };
            Some(Row { id, record, running, exit })
        })
        .collect();
    rows.reverse(); // newest first: ids are times
    rows
}

fn describe_exit(status: std::process::ExitStatus, stopped: bool) -> String {
    match status.code() {
        Some(0) => "finished".into(),
        Some(130) if stopped => "stopped from the dashboard".into(),
        Some(130) => "interrupted".into(),
        Some(c) => format!("failed (exit {c})"),
        None => "killed".into(),
    }
}

fn status_of(row: &Row) -> String {
    if row.running {
        let current = row.record.as_ref().and_then(serve::current);
        return match current {
            Some(c) => format!("running: attempt {} ({:?})", c.attempt, c.step).to_lowercase(),
            None if row.record.is_none() => "running: starting".into(),
            None => "running".into(),
        };
    }
    match (&row.exit, row.record.as_ref().and_then(|r| r.stopped.clone())) {
        (_, Some(why)) => why,
        (Some(exit), None) => exit.clone(),
        (None, None) => "in progress elsewhere, or cut short".into(),
    }
}

fn runs_json(state: &State) -> String {
    let runs: Vec<serde_json::Value> = rows(state)
        .iter()
        .map(|r| {
            serde_json::json!({
                "run_id": r.id,
                "running": r.running,
                "status": status_of(r),
                "attempts": r.record.as_ref().map_or(0, |x| x.attempts.len()),
                "kept": r.record.as_ref().map_or(0, |x| x.kept()),
                "spent_usd": r.record.as_ref().map_or(0.0, |x| x.spent_usd),
            })
        })
        .collect();
    serde_json::json!({ "sources": state.config.sources, "runs": runs }).to_string()
}

fn index_page(state: &State) -> String {
    let runs: Vec<Value> = rows(state)
        .iter()
        .map(|r| {
            let (attempts, kept, cost, model) = match &r.record {
                Some(x) => (x.attempts.len(), x.kept(), format!("${:.2}", x.spent_usd), x.model.clone()),
                None => (0, 0, "—".into(), "—".into()),
            };
            let outcomes: Vec<&str> = r
                .record
                .iter()
                .flat_map(|x| &x.attempts)
                .map(|a| a.outcome.as_ref().map_or("running", Outcome::name))
                .collect();
            context! {
                id => r.id.clone(),
                running => r.running,
                status => status_of(r),
                attempts,
                kept,
                cost,
                model,
                outcomes => outcomes.join(", "),
            }
        })
        .collect();
    let models = models();
    let default_model = if models.contains(&"claude-sonnet-4-5") { "claude-sonnet-4-5" } else { models[0] };
    let efforts: Vec<&str> = crate::agent::Effort::ALL.iter().map(|e| e.as_str()).collect();
    let c = &state.config;
    let mut fixed: Vec<(&str, String)> = vec![];
    if let Some(a) = &c.runs.agent_command {
        fixed.push(("agent command", a.clone()));
    }
    if let Some(u) = &c.runs.api_base_url {
        fixed.push(("API", u.clone()));
    }
    if !c.runs.run_args.is_empty() {
        fixed.push(("arguments", c.runs.run_args.join(" ")));
    }
    render(
        "dashboard.html",
        context! {
            sources => c.sources.display().to_string(),
            cache => c.cache.display().to_string(),
            runs,
            models,
            default_model,
            efforts,
            max_iterations => MAX_ITERATIONS,
            max_hint_chars => MAX_HINT_CHARS,
            // Two hint fields; a run takes up to MAX_HINTS (more from the command line).
            max_hints_shown => 2,
            fixed,
        },
    )
}

/// The live lines of a run: its stderr when started here, else its live log file, else its
/// last attempt's transcript.
fn live_lines(state: &State, id: &str, record: Option<&RunRecord>) -> (u64, Vec<String>, bool) {
    let mut started = state.started.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(run) = started.get_mut(id) {
        let (count, lines) = run.log.snapshot();
        return (count, lines, run.running());
    }
    // Its live log file, as fresh as the run's last line (only beside a record of this
    // checkout); older runs have only their record.
    if let Some((count, lines)) = record.and_then(|_| super::transcript::read_live_file(&run_dir(&state.config, id))) {
        return (count, lines, false);
    }
    let lines: Vec<String> = record
        .and_then(|r| r.attempts.last())
        .map(|a| a.transcript.iter().map(|e| format!("attempt {}: {}", a.index, e.line(false))).collect())
        .unwrap_or_default();
    (lines.len() as u64, lines, false)
}

fn run_state(state: &State, id: &str) -> Option<String> {
    let record = load(&state.config, id);
    let (count, lines, running) = live_lines(state, id, record.as_ref());
    if record.is_none() && count == 0 {
        return None;
    }
    // What makes the page worth reloading: an attempt more, a step further, the end.
    let version = match &record {
        Some(r) => format!(
            "{}:{}:{}:{}",
            r.attempts.len(),
            serve::current(r).map(|c| format!("{:?}", c.step)).unwrap_or_default(),
            r.stopped.is_some(),
            running
        ),
        None => format!("starting:{running}"),
    };
    Some(
        serde_json::json!({
            "run_id": id,
            "running": running,
            "version": version,
            "live": {"count": count, "lines": lines},
            "record": record,
        })
        .to_string(),
    )
}

fn run_page(state: &State, id: &str) -> Option<String> {
    let record = load(&state.config, id);
    let (count, lines, running) = live_lines(state, id, record.as_ref());
    if record.is_none() && count == 0 {
        return None;
    }
    let version = serde_json::from_str::<serde_json::Value>(&run_state(state, id)?).ok()?["version"].clone();
    let strip = Strip {
        id: Some(id),
        state: if running { "running" } else { "not running" }.into(),
        running,
        stop: if running { Stop::Form } else { Stop::None },
        count,
        log: lines.join("\n"),
        version,
    };
    Some(match &record {
        Some(r) => live::run_page(r, &strip),
        None => live::message(
            &format!("Run {id}"),
            &[text("Starting: the worktree is being configured and the baseline validated.")],
            Some(&strip),
            None,
        ),
    })
}

/// A page of text: `parts` are [`text`], [`code`] and [`link`]s, escaped by the template.
fn message_page(title: &str, parts: &[Value]) -> String {
    live::message(title, parts, None, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn forms_decode() {
        let f = parse_form("model=claude-sonnet-4-5&hint=the+ctx+%26+r6&quick=on").unwrap();
        assert_eq!(f[1], ("hint".into(), "the ctx & r6".into()));
        assert_eq!(parse_form(""), Some(vec![]));
        assert_eq!(parse_form("a=%zz"), None);
        assert_eq!(parse_form("a=%ff"), None, "not UTF-8");
        assert_eq!(parse_form("a=%4"), None);
    }

    #[test]
    fn start_fields_are_enumerated_or_bounded() {
        let good = [("model", "claude-sonnet-4-5"), ("effort", "high"), ("iterations", "3"), ("token", "t")];
        let r = StartRequest::from_form(&form(&good)).unwrap();
        assert_eq!(
            (r.iterations, r.effort, r.quick, r.objective),
            (3, crate::agent::Effort::High, false, super::super::Objective::Runtime)
        );
        let with = |extra: &[(&str, &str)]| {
            let mut f = form(&good);
            f.extend(form(extra));
            StartRequest::from_form(&f)
        };
        let r =
            with(&[("quick", "on"), ("objective", "insns"), ("hint", " look at the prologue "), ("hint", "")]).unwrap();
        assert!(r.quick && r.hints == ["look at the prologue"] && r.objective == super::super::Objective::Insns);
        for (extra, field) in [
            (vec![("model", "x")], "model: given more than once"),
            (vec![("quick", "yes")], "quick:"),
            (vec![("objective", "speed")], "objective:"),
            (vec![("hint", "a\nb")], "hint: control"),
            (vec![("hint", "\u{202e}x")], "hint: control"),
            (vec![("sources", "/etc")], "sources: not a field"),
            (vec![("cache-dir", "/tmp")], "not a field"),
            (vec![("agent_command", "rm -rf /")], "not a field"),
        ] {
            let err = with(&extra).unwrap_err();
            assert!(err.contains(field), "{extra:?}: {err}");
        }
        let long = "x".repeat(MAX_HINT_CHARS + 1);
        assert!(with(&[("hint", &long)]).unwrap_err().contains("at most"));
        let many: Vec<(&str, &str)> = (0..=MAX_HINTS).map(|_| ("hint", "h")).collect();
        assert!(with(&many).unwrap_err().contains("at most 5 hints"));
        for (k, v, why) in [
            ("model", "gpt-9", "model: one of"),
            ("effort", "extreme", "effort:"),
            ("iterations", "0", "iterations:"),
            ("iterations", "51", "iterations:"),
            ("iterations", "-1", "iterations:"),
            ("iterations", "3.5", "iterations:"),
        ] {
            let f: Vec<(String, String)> =
                form(&good).into_iter().map(|(gk, gv)| if gk == k { (gk, v.to_string()) } else { (gk, gv) }).collect();
            let err = StartRequest::from_form(&f).unwrap_err();
            assert!(err.contains(why), "{k}={v}: {err}");
        }
    }

    #[test]
    fn the_run_gets_the_servers_settings_and_the_forms_only() {
        let config = Config {
            sources: "/src".into(),
            cache: "/cache".into(),
            program: "/bin/xtask".into(),
            runs: crate::flags::DashboardRunFlags {
                agent_command: Some("agent --go".into()),
                api_base_url: None,
                run_args: vec!["--filter".into(), "xdp".into()],
            },
        };
        let req = StartRequest {
            model: "claude-haiku-4-5".into(),
            effort: crate::agent::Effort::Low,
            iterations: 2,
            hints: vec!["--sources /etc".into()],
            objective: super::super::Objective::Insns,
            quick: true,
        };
        let args = req.args(&config, "20261203-101010");
        let line = args.join(" ");
        assert!(line.starts_with("optimize --sources /src --cache-dir /cache --run-id 20261203-101010 --iterations 2"));
        assert!(line.contains("--model claude-haiku-4-5 --effort low --objective insns --quick"), "{line}");
        assert!(line.ends_with("--agent-command agent --go --filter xdp"), "{line}");
        // A hint is one argument, whatever it says.
        assert!(args.contains(&"--hint=--sources /etc".to_owned()), "{args:?}");
    }

    #[test]
    fn pages_are_templates_and_outside_text_is_escaped() {
        let hostile = "</pre><script>alert(1)</script> & \"q\"";
        let page = message_page("Refused", &[text(hostile), text(" "), link("/runs/x/", "<b>x</b>"), code("a<b")]);
        assert!(page.starts_with("<!doctype html>") && page.contains("<h1>Refused</h1>"), "{page}");
        assert!(page.contains("&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot;"), "{page}");
        assert!(page.contains("<a href=\"/runs/x/\">&lt;b&gt;x&lt;/b&gt;</a><code>a&lt;b</code>"), "{page}");
        assert!(!page.contains("<script>alert") && !page.contains("id=\"livelog\""), "{page}");
        assert!(page.contains("#livelog {"), "the one stylesheet, with the dashboard's rules");

        // A run's page: its report under the live strip, the stop form while it runs, the poller.
        let record = crate::output::html::optimize::tests::synthetic();
        let strip = Strip {
            id: Some("20261125-101500"),
            state: "running".into(),
            running: true,
            stop: Stop::Form,
            count: 2,
            log: format!("attempt 3: {hostile}"),
            version: "4:Done:true:true".into(),
        };
        let page = live::run_page(&record, &strip);
        let strip = page.find("<div id=\"live\">").expect("the live strip");
        assert!(strip < page.find("<header>").unwrap(), "the strip comes before the report");
        assert!(page.contains("<form method=\"post\" action=\"/runs/20261125-101500/stop\" id=\"stop\">"), "{page}");
        assert!(page.contains("<pre id=\"livelog\" data-count=\"2\">attempt 3: &lt;/pre&gt;&lt;script&gt;"), "{page}");
        assert!(page.contains("var version = \"4:Done:true:true\";"), "{page}");
        assert!(page.contains("hoist the &lt;ctx&gt; load &amp; reuse it"), "the report's escaped title");
        assert_eq!(page.matches("<script>").count(), 2, "the page's sort script and the poller, nothing else");
    }

    #[test]
    fn the_list_page_shows_the_form_and_the_fixed_settings_as_text() {
        let cache = tempfile::tempdir().unwrap();
        let state = State {
            config: Config {
                sources: "/src/<i>bpfilter".into(),
                cache: cache.path().to_owned(),
                program: "/bin/xtask".into(),
                runs: crate::flags::DashboardRunFlags {
                    agent_command: Some("agent <script>x</script>".into()),
                    api_base_url: None,
                    run_args: vec!["--filter".into(), "xdp".into()],
                },
            },
            token: "t".repeat(32),
            addr: "127.0.0.1:1".parse().unwrap(),
            started: Mutex::new(BTreeMap::new()),
        };
        let page = index_page(&state);
        assert!(page.contains("<code>/src/&lt;i&gt;bpfilter</code>"), "{page}");
        assert!(page.contains("No optimize run of this checkout yet."), "{page}");
        assert!(page.contains("<option value=\"claude-sonnet-4-5\" selected>"), "{page}");
        assert!(page.contains("<option value=\"medium\" selected>medium</option>"), "{page}");
        assert!(page.contains("name=\"iterations\" type=\"number\" min=\"1\" max=\"50\" value=\"5\""), "{page}");
        assert_eq!(page.matches("<input name=\"hint\" maxlength=\"500\"").count(), 2, "{page}");
        assert!(
            page.contains(
                "agent command <code>agent &lt;script&gt;x&lt;/script&gt;</code>; arguments <code>--filter xdp</code>."
            ),
            "{page}"
        );
        assert!(!page.contains(&state.token) && page.contains("<noscript><meta http-equiv=\"refresh\""), "{page}");
    }
}
