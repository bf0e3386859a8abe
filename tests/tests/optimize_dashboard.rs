//! `cargo xtask optimize-dashboard`, the real command on a fixture checkout:
//! its routes over plain HTTP (the token, every form field validated, fixed
//! routes, planted run directories ignored), then a whole run in a headless
//! Chromium: started from the page's form, its live log arriving, stopped
//! from the page, and found in the list afterwards.

use serde_json::Value;
use std::io::{BufRead as _, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

const TOKEN_HEADER: &str = "X-Bfperf-Token";

/// The dashboard process, killed (by its pid) when the test ends.
struct Dash {
    child: Child,
    addr: SocketAddr,
    token: String,
    /// Its stderr lines after the first.
    lines: Receiver<String>,
}

impl Drop for Dash {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        // SIGINT first: it interrupts the runs it started; then make sure.
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `xtask optimize-dashboard` on `repo` with `cache`, every run getting `agent` and the cheap settings.
fn dashboard(repo: &Path, cache: &Path, agent: &str) -> Dash {
    let mut args = vec!["--addr".to_owned(), "127.0.0.1:0".into(), "--agent-command".into(), agent.into()];
    // The cheap settings of the optimize tests, for every run (fixed at start, like the agent).
    args.extend(bfperf_tests::OPTIMIZE_CHEAP.iter().map(|a| format!("--run-arg={a}")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = bfperf_tests::subcommand("optimize-dashboard", repo, &args, cache);
    cmd.env_remove("ANTHROPIC_API_KEY");
    let mut child = cmd.spawn().expect("the dashboard starts");
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("dashboard: {line}");
            let _ = tx.send(line);
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(300)).expect("hang guard: no address line");
    let rest = line.strip_prefix("optimize-dashboard: http://").unwrap_or_else(|| panic!("{line}"));
    let (addr, token) = rest.split_once("/ (token: ").unwrap_or_else(|| panic!("{line}"));
    Dash { child, addr: addr.parse().unwrap(), token: token.trim_end_matches(')').to_owned(), lines: rx }
}

/// One raw HTTP/1.1 exchange: (status, headers, body).
fn http(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the dashboard");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let status = raw.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("{raw}"));
    let (head, body) = raw.split_once("\r\n\r\n").map(|(h, b)| (h.to_owned(), b.to_owned())).unwrap_or_default();
    (status, head, body)
}

fn get(addr: SocketAddr, target: &str) -> (u16, String) {
    let (status, _, body) = http(addr, "GET", target, &[], "");
    (status, body)
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

fn runs(addr: SocketAddr) -> Vec<Value> {
    let (status, body) = get(addr, "/runs.json");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["runs"].as_array().unwrap().clone()
}

#[test]
fn start_needs_the_token_and_valid_fields_and_routes_are_fixed() {
    let repo = bfperf_tests::FixtureRepo::new();
    let cache = tempfile::tempdir().unwrap();
    // Planted in the cache: a link to another run, a run of another checkout, a corrupt one.
    let optimize = cache.path().join("optimize");
    std::fs::create_dir_all(optimize.join("foreign")).unwrap();
    std::fs::write(
        optimize.join("foreign/history.json"),
        r#"{"schema": "bfperf.optimize-run.v1", "run_id": "foreign", "sources": "/elsewhere"}"#,
    )
    .unwrap();
    std::fs::create_dir_all(optimize.join("linked")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", optimize.join("linked/history.json")).unwrap();
    std::fs::create_dir_all(optimize.join("-dash")).unwrap();
    let d = dashboard(repo.path(), cache.path(), "true");
    let addr = d.addr;
    assert_eq!(d.token.len(), 32);

    let (status, page) = get(addr, "/");
    assert_eq!(status, 200);
    assert!(page.contains("<form method=\"post\" action=\"/start\""), "{page}");
    assert!(page.contains("<option value=\"claude-sonnet-4-5\" selected>"), "models from the price table");
    assert!(!page.contains(&d.token), "the token is never on a page");
    assert!(runs(addr).is_empty(), "planted directories are not runs of this checkout");
    for planted in ["foreign", "linked", "-dash"] {
        assert_eq!(get(addr, &format!("/runs/{planted}/")).0, 404, "{planted}");
    }

    let good = "model=claude-sonnet-4-5&effort=low&iterations=1&objective=runtime";
    // No token, a wrong one: 403 and nothing starts.
    assert_eq!(http(addr, "POST", "/start", &[FORM], good).0, 403);
    let wrong = "0".repeat(32);
    assert_eq!(http(addr, "POST", "/start", &[FORM, (TOKEN_HEADER, &wrong)], good).0, 403);
    assert_eq!(http(addr, "POST", "/start", &[FORM], &format!("{good}&token={wrong}")).0, 403);
    // Each field enumerated or bounded; nothing names a path or a command.
    let with_token = [FORM, (TOKEN_HEADER, d.token.as_str())];
    for (body, says) in [
        ("model=gpt-9&iterations=1", "model: one of"),
        ("model=claude-sonnet-4-5&iterations=0", "iterations: a whole number from 1 to 50"),
        ("model=claude-sonnet-4-5&iterations=51", "iterations"),
        ("model=claude-sonnet-4-5&iterations=1&effort=extreme", "effort"),
        ("model=claude-sonnet-4-5&iterations=1&objective=speed", "objective"),
        ("model=claude-sonnet-4-5&iterations=1&quick=maybe", "quick"),
        ("model=claude-sonnet-4-5&iterations=1&hint=a%0Ab", "hint: control characters"),
        ("model=claude-sonnet-4-5&iterations=1&hint=a%1B%5B2J", "hint: control characters"),
        ("model=claude-sonnet-4-5&iterations=1&sources=%2Fetc", "sources: not a field"),
        ("model=claude-sonnet-4-5&iterations=1&agent-command=id", "not a field"),
        ("model=claude-sonnet-4-5&iterations=1&hint=%ZZ", "not valid"),
    ] {
        let (status, _, page) = http(addr, "POST", "/start", &with_token, body);
        assert_eq!(status, 400, "{body}: {page}");
        assert!(page.contains(says), "{body}: {page}");
    }
    let long = format!("model=claude-sonnet-4-5&iterations=1&hint={}", "x".repeat(501));
    assert_eq!(http(addr, "POST", "/start", &with_token, &long).0, 400);
    let big = format!("model=claude-sonnet-4-5&iterations=1&hint={}", "x".repeat(20_000));
    assert_eq!(http(addr, "POST", "/start", &with_token, &big).0, 400, "bodies are bounded");
    assert!(runs(addr).is_empty(), "nothing was started");

    // Fixed routes; nothing names a file; no delete.
    for target in
        ["/etc/passwd", "/../../etc/passwd", "/runs/../../etc/passwd", "/runs/x/../../y", "/runs/", "/runs.json/x"]
    {
        assert_eq!(get(addr, target).0, 404, "{target}");
    }
    assert_eq!(get(addr, "/runs/nope/").0, 404);
    assert_eq!(get(addr, "/runs/nope/state.json").0, 404);
    assert_eq!(get(addr, "/runs/..%2F..%2Fetc/").0, 404);
    assert_eq!(http(addr, "DELETE", "/runs/nope/", &[(TOKEN_HEADER, &d.token)], "").0, 405);
    assert_eq!(http(addr, "GET", "/start", &[], "").0, 405);
    assert_eq!(http(addr, "POST", "/", &[], "").0, 405);
    assert_eq!(http(addr, "POST", "/runs/nope/stop", &[(TOKEN_HEADER, &wrong)], "").0, 403);
    assert_eq!(http(addr, "POST", "/runs/nope/stop", &[(TOKEN_HEADER, &d.token)], "").0, 404);
    // Another site resolved to 127.0.0.1 (DNS rebinding) is refused.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /runs.json HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 403"), "{raw}");
    // Only loopback addresses.
    let out = bfperf_tests::subcommand("optimize-dashboard", repo.path(), &["--addr", "0.0.0.0:0"], cache.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("only loopback addresses are allowed"), "{stderr}");
}

/// Debian's Chromium, or a skip naming the package.
fn chromium() -> Option<&'static str> {
    const BIN: &str = "/usr/bin/chromium";
    if Path::new(BIN).is_file() {
        return Some(BIN);
    }
    bfperf_tests::skip(&format!("no {BIN} to show the page in a real browser (apt-get install chromium)"));
    None
}

fn headless(browser: &str, profile: &Path, args: &[&str]) -> String {
    let out = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `form_html` (a form as the dashboard serves it) with its action made absolute, `fill`
/// applied, and clicked by Chromium: the DOM of the page the click led to.
fn submit(browser: &str, dir: &Path, name: &str, addr: SocketAddr, form_html: &str, fill: &[(&str, &str)]) -> String {
    let mut page = form_html.replace("action=\"/", &format!("action=\"http://{addr}/"));
    for (from, to) in fill {
        assert!(page.contains(from), "{from} not in the form:\n{page}");
        page = page.replacen(from, to, 1);
    }
    let file = dir.join(format!("{name}.html"));
    std::fs::write(&file, format!("{page}<script>document.querySelector('form button[type=submit]').click()</script>"))
        .unwrap();
    let url = format!("file://{}", file.display());
    headless(browser, &dir.join(format!("profile-{name}")), &["--virtual-time-budget=5000", "--dump-dom", &url])
}

/// The `<form ...>...</form>` of `page` whose opening tag contains `marker`.
fn form_of(page: &str, marker: &str) -> String {
    let start = page.find(marker).unwrap_or_else(|| panic!("no {marker}:\n{page}"));
    let start = page[..start].rfind("<form").unwrap();
    let end = page[start..].find("</form>").unwrap() + start + "</form>".len();
    page[start..end].to_owned()
}

#[test]
fn a_run_is_started_watched_stopped_and_listed_in_a_real_browser() {
    bfperf_tests::require_bpf!();
    let Some(browser) = chromium() else { return };
    let repo = bfperf_tests::FixtureRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let started = tmp.path().join("started");
    // The agent: says it started, then waits (at most 10 min: a hang guard) until it is stopped.
    let agent = format!(
        "echo 'agent: reading the prologue'; touch '{}'; i=0; while [ $i -lt 3000 ]; do sleep 0.2; i=$((i+1)); done",
        started.display()
    );
    let d = dashboard(repo.path(), cache.path(), &agent);
    let addr = d.addr;

    // Start: the page's own form, filled in and clicked in Chromium; it lands on the run's page.
    let index = get(addr, "/").1;
    let form = form_of(&index, "action=\"/start\"");
    let dom = submit(
        browser,
        tmp.path(),
        "start",
        addr,
        &form,
        &[
            ("name=\"iterations\" type=\"number\" min=\"1\" max=\"50\" value=\"5\"", "name=\"iterations\" value=\"2\""),
            ("name=\"hint\" maxlength=\"500\"", "name=\"hint\" value=\"look at the prologue\" maxlength=\"500\""),
            ("<input name=\"token\"", &format!("<input name=\"token\" value=\"{}\"", d.token)),
        ],
    );
    assert!(dom.contains("id=\"livelog\""), "the click did not lead to the run's page:\n{dom}");
    let list = runs(addr);
    assert_eq!(list.len(), 1, "{list:?}");
    let id = list[0]["run_id"].as_str().unwrap().to_owned();
    assert_eq!(list[0]["running"], true);
    assert!(d.lines.recv_timeout(Duration::from_secs(60)).unwrap().contains(&format!("started run {id}")));

    // A second start while it runs is refused.
    let again = "model=claude-sonnet-4-5&iterations=1";
    assert_eq!(http(addr, "POST", "/start", &[FORM, (TOKEN_HEADER, &d.token)], again).0, 409);

    // Its live log arrives (the run queues behind other benchmarks of the host: a generous guard).
    let deadline = Instant::now() + Duration::from_secs(1800);
    let state = loop {
        let (status, body) = get(addr, &format!("/runs/{id}/state.json"));
        assert_eq!(status, 200, "{body}");
        let state: Value = serde_json::from_str(&body).unwrap();
        let lines = state["live"]["lines"].as_array().unwrap();
        if started.exists() && lines.iter().any(|l| l.as_str().unwrap().contains("attempt 1: proposing")) {
            break state;
        }
        assert_eq!(state["running"], true, "the run ended before its first attempt: {state:#}");
        assert!(Instant::now() < deadline, "hang guard: no attempt in the live log: {state:#}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(state["record"]["run_id"], id.as_str());
    // The run got the form's settings and the server's, nothing else.
    let page = get(addr, &format!("/runs/{id}/")).1;
    assert!(page.contains("id=\"stop\""), "a running run has a stop button");
    // The browser shows the log and its script keeps polling it.
    let url = format!("http://{addr}/runs/{id}/");
    let dom = headless(browser, &tmp.path().join("profile-watch"), &["--virtual-time-budget=4000", "--dump-dom", &url]);
    assert!(dom.contains("attempt 1: proposing"), "the browser does not show the live log:\n{dom}");
    assert!(dom.contains("data-polled="), "the page's script did not poll:\n{dom}");

    // Stop: the run page's own form, clicked in Chromium.
    let stop = form_of(&page, "id=\"stop\"");
    let dom = submit(
        browser,
        tmp.path(),
        "stop",
        addr,
        &stop,
        &[("<input name=\"token\"", &format!("<input name=\"token\" value=\"{}\"", d.token))],
    );
    assert!(dom.contains("is interrupted"), "the click did not stop the run:\n{dom}");
    let deadline = Instant::now() + Duration::from_secs(300);
    while runs(addr)[0]["running"] == true {
        assert!(Instant::now() < deadline, "hang guard: the run did not end after the stop");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Found in the list, in the browser too, with its report.
    let dom = headless(browser, &tmp.path().join("profile-list"), &["--dump-dom", &format!("http://{addr}/")]);
    assert!(dom.contains(&format!("href=\"/runs/{id}/\"")), "the run is not listed:\n{dom}");
    assert!(dom.contains("interrupted"), "{dom}");
    let h: Value = serde_json::from_str(
        &std::fs::read_to_string(cache.path().join(format!("optimize/{id}/history.json"))).unwrap(),
    )
    .unwrap();
    let attempts = h["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{h:#}");
    assert_eq!(attempts[0]["outcome"]["result"], "interrupted", "{h:#}");
    assert_eq!(attempts[0]["hints"][0], "look at the prologue");
    assert_eq!(attempts[0]["effort"], "medium");
    let (status, report) = get(addr, &format!("/runs/{id}/"));
    assert_eq!(status, 200);
    assert!(report.contains("badge") && report.contains(&id) && !report.contains("id=\"stop\""), "{report}");
    // Stopping it again: it has ended.
    assert_eq!(http(addr, "POST", &format!("/runs/{id}/stop"), &[(TOKEN_HEADER, &d.token)], "").0, 409);
}
