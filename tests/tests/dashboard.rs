//! The live dashboard of `cargo xtask optimize --serve`, started through the
//! library on a synthetic run record (no optimize run needed): its routes over
//! plain HTTP (fixed routes, no file ever served, the stop token enforced,
//! loopback only), then the page in a real headless Chromium (Debian's
//! `chromium` package): what it shows, and a screenshot.

use bench_harness::stats::paired::RatioEstimate;
use serde_json::Value;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use xtask::optimize::record::{Attempt, CaseDelta, Outcome, RunRecord, Step, SCHEMA};
use xtask::optimize::serve::{self, Dashboard, TOKEN_HEADER};

const RUN_ID: &str = "20261125-221500";
const KEPT_TITLE: &str = "Hoist the ctx load out of the rule loop";
const REJECTED_TITLE: &str = "Merge the two IPv6 prologue loads";
const RUNNING_TITLE: &str = "Drop the dead stack spill in the TC prologue";

fn est(ratio: f64, half: f64) -> RatioEstimate {
    RatioEstimate { ratio, lo: ratio - half, hi: ratio + half, n: 20, level: 0.95 }
}

fn delta(case: &str, ratio: f64, verdict: &str, insns: i64) -> CaseDelta {
    CaseDelta { case: case.into(), estimate: Some(est(ratio, 0.01)), verdict: verdict.into(), insns_delta: Some(insns) }
}

/// A run of three attempts: one kept, one rejected, one under way (implementing).
fn record() -> RunRecord {
    let mut kept = Attempt::new(1);
    kept.plan = format!("TITLE: {KEPT_TITLE}\nWHY: every rule reloads ctx->data.\nHOW: load it once in the prologue.");
    kept.diff = "diff --git a/src/libbpfilter/cgen/prologue.c b/src/libbpfilter/cgen/prologue.c\n\
                 @@ -10,2 +10,1 @@\n-    EMIT(load_ctx);\n-    EMIT(load_ctx);\n+    EMIT(load_ctx);\n"
        .into();
    kept.commit = Some("0123456789abcdef0123456789abcdef01234567".into());
    kept.deltas = vec![delta("xdp__prologue", 0.95, "faster", -2), delta("tc__prologue", 0.97, "faster", -2)];
    kept.geomean = Some(est(0.96, 0.01));
    kept.insns_delta = Some(-4);
    kept.tokens = (12_000, 3_000);
    kept.cost_usd = 0.12;
    kept.step = Step::Done;
    kept.outcome = Some(Outcome::Kept);
    kept.timings = vec![(Step::Propose, 20.0), (Step::Implement, 40.0), (Step::Evaluate, 60.0), (Step::Done, 125.0)];

    let mut rejected = Attempt::new(2);
    rejected.plan = format!("TITLE: {REJECTED_TITLE}\nWHY: one load instead of two.\nHOW: widen the load.");
    rejected.diff = "@@ -1 +1 @@\n-a\n+b\n".into();
    rejected.deltas = vec![delta("xdp__prologue", 1.001, "unchanged", 0)];
    rejected.geomean = Some(est(1.0, 0.01));
    rejected.cost_usd = 0.08;
    rejected.step = Step::Done;
    rejected.outcome = Some(Outcome::Rejected { reason: "not significantly faster".into() });
    rejected.timings = vec![(Step::Done, 90.0)];

    let mut running = Attempt::new(3);
    running.plan = format!("TITLE: {RUNNING_TITLE}\nWHY: it is dead.\nHOW: remove it.");
    running.step = Step::Implement;
    running.timings = vec![(Step::Propose, 15.0)];

    RunRecord {
        schema: SCHEMA.into(),
        run_id: RUN_ID.into(),
        sources: "/home/dev/bpfilter".into(),
        branch: format!("optimize/{RUN_ID}"),
        worktree: format!("/root/.cache/bfperf/optimize/{RUN_ID}/worktree").into(),
        base_commit: "f862b2a33140f862b2a33140f862b2a33140f862".into(),
        scope: "src/libbpfilter/cgen".into(),
        model: "claude-sonnet-4-5".into(),
        objective: "runtime".into(),
        baseline_failures: vec![],
        baseline_failed_commands: vec![],
        attempts: vec![kept, rejected, running],
        spent_usd: 0.2,
        cumulative_ratio: 0.96,
        stopped: None,
        setup: Default::default(),
    }
}

/// A live-log line as the run would push it (the model's text is untrusted).
const LIVE_LINE: &str = "attempt 3: read_file src/libbpfilter/cgen/prologue.c";
const HOSTILE_LINE: &str = "attempt 3: thinking: </pre><script>alert(1)</script>";

fn dashboard() -> Dashboard {
    let d = Dashboard::start(serve::DEFAULT_ADDR.parse().unwrap()).expect("the dashboard starts");
    d.publish(&record());
    d.log().push(LIVE_LINE.into());
    d.log().push(HOSTILE_LINE.into());
    d
}

/// One raw HTTP/1.1 exchange (the request line goes out exactly as written,
/// `..` included): (status, body).
fn http(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the dashboard");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
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
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn get(addr: SocketAddr, target: &str) -> (u16, String) {
    http(addr, "GET", target, &[], "")
}

#[test]
fn routes_are_fixed_and_read_only() {
    let d = dashboard();
    let addr = d.addr();
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    assert_eq!(d.url(), format!("http://{addr}/"));

    let (status, page) = get(addr, "/");
    assert_eq!(status, 200);
    assert!(page.contains(RUN_ID) && page.contains(KEPT_TITLE) && page.contains(REJECTED_TITLE), "{page}");
    assert!(page.contains("attempt 3: implementing"), "the live strip shows the current step");
    assert!(page.contains("href=\"/stop\""), "the stop control");
    assert!(!page.contains(d.token()), "the token is never on the page");

    let (status, state) = get(addr, "/state.json");
    assert_eq!(status, 200);
    let state: Value = serde_json::from_str(&state).expect("state.json is JSON");
    assert_eq!(state["record"]["run_id"], RUN_ID);
    assert_eq!(state["record"]["attempts"].as_array().unwrap().len(), 3);
    assert_eq!(state["current"]["attempt"], 3);
    assert_eq!(state["current"]["step"], "implement");
    assert_eq!(state["stop_requested"], false);
    // The live log: the lines the terminal shows, as data.
    assert_eq!(state["live"]["count"], 2);
    assert_eq!(state["live"]["lines"][0], LIVE_LINE);
    assert!(page.contains(LIVE_LINE) && page.contains("&lt;/pre&gt;&lt;script&gt;"), "escaped in the page");
    assert!(!page.contains("<script>alert(1)"), "{page}");
    let version = state["version"].as_u64().unwrap();
    let mut next = record();
    next.attempts[2].step = Step::Validate;
    d.publish(&next);
    let state: Value = serde_json::from_str(&get(addr, "/state.json").1).unwrap();
    assert_eq!(state["version"].as_u64().unwrap(), version + 1, "each publication is a new version");
    assert_eq!(state["current"]["step"], "validate");

    // No path from a request reaches the filesystem.
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_else(|_| "root:x:0:0".into());
    let first_line = passwd.lines().next().unwrap_or("root:x:0:0");
    for target in [
        "/../../etc/passwd",
        "/etc/passwd",
        "/report.html?path=/etc/passwd",
        "/history.json",
        "/%2e%2e/%2e%2e/etc/passwd",
        "//etc/passwd",
        "/state.json/../../../etc/passwd",
    ] {
        let (status, body) = get(addr, target);
        assert_eq!(status, 404, "{target}");
        assert!(!body.contains(first_line) && !body.contains("root:"), "{target}: {body}");
    }
    // Known paths, other methods.
    assert_eq!(http(addr, "POST", "/", &[], "").0, 405);
    assert_eq!(http(addr, "DELETE", "/state.json", &[], "").0, 405);
    assert_eq!(http(addr, "PUT", "/stop", &[(TOKEN_HEADER, d.token())], "").0, 405);
    assert!(!d.stop_requested());

    // A page of another site resolved to 127.0.0.1 (DNS rebinding) is refused.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /state.json HTTP/1.1\r\nHost: evil.example:80\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 403"), "{raw}");
    assert!(!raw.contains(RUN_ID));
}

#[test]
fn stop_needs_the_token() {
    let d = dashboard();
    let addr = d.addr();
    assert_eq!(d.token().len(), 32, "128 bits in hex");
    assert!(d.token().bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(d.token(), dashboard().token(), "a new token per dashboard");

    assert_eq!(http(addr, "POST", "/stop", &[], "").0, 403, "no token");
    assert_eq!(http(addr, "POST", "/stop", &[(TOKEN_HEADER, "0123")], "").0, 403, "wrong token");
    let wrong = "0".repeat(32);
    assert_eq!(http(addr, "POST", "/stop", &[(TOKEN_HEADER, &wrong)], "").0, 403, "wrong token, right length");
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    assert_eq!(http(addr, "POST", "/stop", &form, &format!("token={wrong}")).0, 403, "wrong form token");
    assert_eq!(http(addr, "GET", &format!("/stop?token={}", d.token()), &[], "").0, 200, "GET only shows the form");
    assert!(!d.stop_requested(), "nothing but the right token stops the run");

    let (status, form_page) = get(addr, "/stop");
    assert_eq!(status, 200);
    assert!(form_page.contains("<form method=\"post\" action=\"/stop\">") && !form_page.contains(d.token()));

    let (status, body) = http(addr, "POST", "/stop", &[(TOKEN_HEADER, d.token())], "");
    assert_eq!(status, 202, "{body}");
    assert!(d.stop_requested());
    let state: Value = serde_json::from_str(&get(addr, "/state.json").1).unwrap();
    assert_eq!(state["stop_requested"], true);
    assert!(get(addr, "/").1.contains("stop requested"));

    // The form field works as well.
    let d = dashboard();
    let (status, _) = http(d.addr(), "POST", "/stop", &form, &format!("token={}", d.token()));
    assert_eq!(status, 202);
    assert!(d.stop_requested());
}

#[test]
fn only_loopback_addresses_are_served() {
    for addr in ["0.0.0.0:0", "[::]:0", "192.0.2.1:8080"] {
        let err = Dashboard::start(addr.parse().unwrap()).unwrap_err().to_string();
        assert!(err.contains("--serve: only loopback addresses are allowed (127.0.0.1, ::1)"), "{addr}: {err}");
    }
    let err = serve::parse_addr("0.0.0.0:8080").unwrap_err();
    assert!(err.contains("only loopback"), "{err}");
    // The command line refuses it before anything else.
    let out = Command::new(bfperf_tests::xtask_bin())
        .args(["optimize", "--serve", "0.0.0.0:8080", "--iterations", "1"])
        .env_remove("ANTHROPIC_API_KEY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("only loopback addresses are allowed"), "{stderr}");
}

#[test]
fn any_loopback_address_is_served_under_its_own_name() {
    // 127.0.0.0/8 is loopback as a whole on Linux: 127.0.0.2 needs no set-up.
    let mut addrs = vec!["127.0.0.2:0", "127.0.0.1:0"];
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        addrs.push("[::1]:0");
    }
    for addr in addrs {
        let d = Dashboard::start(addr.parse().unwrap()).expect("the dashboard starts");
        d.publish(&record());
        let (status, body) = get(d.addr(), "/state.json"); // Host: the address itself
        assert_eq!(status, 200, "{addr}: {body}");
        assert!(body.contains(RUN_ID), "{addr}: {body}");
        let port = d.addr().port();
        let raw = with_host(d.addr(), &format!("localhost:{port}"));
        assert!(raw.starts_with("HTTP/1.1 200"), "{addr} as localhost: {raw}");
        // Another port, or a name that is not loopback: refused, naming the address to use.
        for host in [format!("127.0.0.1:{}", port ^ 1), "evil.example".into(), format!("evil.example:{port}")] {
            let raw = with_host(d.addr(), &host);
            assert!(raw.starts_with("HTTP/1.1 403") && raw.contains(&format!("http://{}/", d.addr())), "{host}: {raw}");
        }
    }
}

/// `GET /` with this `Host` header: the raw answer.
fn with_host(addr: SocketAddr, host: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    raw
}

#[test]
fn the_page_starts_before_the_baseline() {
    let d = Dashboard::start(serve::DEFAULT_ADDR.parse().unwrap()).unwrap();
    let (status, page) = get(d.addr(), "/");
    assert_eq!(status, 200);
    assert!(page.contains("validating the baseline"), "{page}");
    let state: Value = serde_json::from_str(&get(d.addr(), "/state.json").1).unwrap();
    assert!(state["record"].is_null() && state["current"].is_null());
}

/// Debian's Chromium, or a [`bfperf_tests::skip`] naming the package (`.ci/run` installs it).
fn chromium() -> Option<&'static str> {
    const BIN: &str = "/usr/bin/chromium";
    if Path::new(BIN).is_file() {
        return Some(BIN);
    }
    bfperf_tests::skip(&format!("no {BIN} to show the page in a real browser (apt-get install chromium)"));
    None
}

fn headless(browser: &str, profile: &Path, args: &[&str]) -> std::process::Output {
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("chromium runs")
}

#[test]
fn a_real_browser_shows_the_run() {
    let Some(browser) = chromium() else { return };
    let d = dashboard();
    let url = d.url();
    let tmp = tempfile::tempdir().unwrap();

    // What the browser shows, after it ran the page (the DOM, not our bytes).
    let out = headless(browser, &tmp.path().join("profile-dom"), &["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "chromium --dump-dom failed: {}", String::from_utf8_lossy(&out.stderr));
    for needle in [RUN_ID, KEPT_TITLE, REJECTED_TITLE, RUNNING_TITLE, "attempt 3: implementing"] {
        assert!(dom.contains(needle), "the browser does not show {needle:?}:\n{dom}");
    }
    assert!(dom.contains("class=\"badge kept\""), "no kept badge:\n{dom}");
    assert!(dom.contains("class=\"badge rejected\""), "no rejected badge");
    assert!(dom.contains("<svg") && dom.contains("id=\"live\""), "plot and live strip");
    assert!(dom.contains("xdp__prologue"), "per-case deltas");
    assert!(dom.contains("EMIT(load_ctx)"), "the diff");
    assert!(!dom.contains(d.token()), "the token never reaches the page");

    // The live script runs (the page's Content-Security-Policy lets it) and polls /state.json.
    let out = headless(browser, &tmp.path().join("profile-js"), &["--virtual-time-budget=5000", "--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&out.stdout);
    let version = get(d.addr(), "/state.json").1;
    let version = serde_json::from_str::<Value>(&version).unwrap()["version"].clone();
    assert!(dom.contains(&format!("data-version=\"{version}\"")), "the live script did not run:\n{dom}");
    assert!(dom.contains(&format!("data-polled=\"{version}\"")), "the live script did not poll /state.json:\n{dom}");
    // It shows the live log (as text: the hostile line is not markup) with its count.
    assert!(dom.contains(LIVE_LINE) && dom.contains("data-count=\"2\""), "no live log:\n{dom}");
    assert!(dom.contains("&lt;/pre&gt;&lt;script&gt;alert(1)"), "the live log is text:\n{dom}");

    // A screenshot of it.
    let png = tmp.path().join("dash.png");
    let shot = format!("--screenshot={}", png.display());
    let out = headless(browser, &tmp.path().join("profile-shot"), &[&shot, "--window-size=1200,1400", &url]);
    assert!(out.status.success(), "chromium --screenshot failed: {}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&png).expect("the screenshot exists");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(bytes.len() > 10 * 1024, "a page worth looking at, not a blank one: {} bytes", bytes.len());
    let keep = std::env::temp_dir().join("dashboard.png");
    let _ = std::fs::copy(&png, &keep);
    println!("screenshot: {} ({} bytes)", keep.display(), bytes.len());
}

/// A real `optimize --serve` run, stopped from the dashboard in Chromium: the agent of attempt 1
/// waits (for a file the test writes) while the browser clicks the stop form's button with the
/// token printed in the terminal; the run then ends after that attempt although three were asked,
/// and records that the dashboard stopped it. Headless Chromium has no way to type into a page
/// without a driver: it loads the dashboard's own stop form (fetched from the run, its action made
/// absolute and the token filled in) from a file, and the page's script clicks the button.
#[test]
fn the_stop_button_stops_a_real_optimize_run() {
    bfperf_tests::require_bpf!();
    let Some(browser) = chromium() else { return };
    let repo = bfperf_tests::FixtureRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (started, go) = (tmp.path().join("started"), tmp.path().join("go"));
    // The agent: says it started, then waits for `go` (at most 10 min: a hang guard), printing nothing.
    let agent = format!(
        "touch '{}'; i=0; while [ ! -e '{}' ] && [ $i -lt 3000 ]; do sleep 0.2; i=$((i+1)); done",
        started.display(),
        go.display()
    );
    let args = [
        bfperf_tests::OPTIMIZE_CHEAP,
        &["--run-id", "served", "--iterations", "3", "--serve", "127.0.0.1:0", "--agent-command", &agent],
    ]
    .concat();
    let mut cmd = bfperf_tests::subcommand("optimize", repo.path(), &args, cache.path());
    cmd.env_remove("ANTHROPIC_API_KEY");
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    // Kill the run (by its pid) if the test fails before it ends.
    struct Reap(u32);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0 as i32), nix::sys::signal::Signal::SIGKILL);
        }
    }
    let reap = Reap(pid);
    // stderr, line by line, on a thread: the dashboard line, then the rest for the report.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let (url, token) = loop {
        // The run may first queue behind other benchmarks of the host: a generous hang guard.
        let line = rx.recv_timeout(Duration::from_secs(1800)).expect("hang guard: no dashboard line");
        if let Some(rest) = line.strip_prefix("dashboard: ") {
            if let Some((url, token)) = rest.split_once(" (stop token: ") {
                break (url.to_owned(), token.trim_end_matches(')').to_owned());
            }
        }
    };
    let addr: SocketAddr = url.trim_start_matches("http://").trim_end_matches('/').parse().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(1800);
    while !started.exists() {
        assert!(std::time::Instant::now() < deadline, "hang guard: the agent of attempt 1 never started");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before its first attempt");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The dashboard's stop form, as served, filled in and clicked by Chromium.
    let (status, form) = get(addr, "/stop");
    assert_eq!(status, 200);
    let filled = form
        .replace("action=\"/stop\"", &format!("action=\"http://{addr}/stop\""))
        .replace("<input name=\"token\"", &format!("<input name=\"token\" value=\"{token}\""));
    assert_ne!(filled, form, "the form has a token field and a relative action");
    let page = tmp.path().join("stop.html");
    std::fs::write(&page, format!("{filled}<script>document.querySelector('button[type=submit]').click()</script>"))
        .unwrap();
    let out = headless(
        browser,
        &tmp.path().join("profile-stop"),
        &["--virtual-time-budget=5000", "--dump-dom", &format!("file://{}", page.display())],
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("The run stops after the current attempt"), "the click did not reach the run:\n{dom}");
    let state: Value = serde_json::from_str(&get(addr, "/state.json").1).unwrap();
    assert_eq!(state["stop_requested"], true);
    // The page now says so, in the browser too.
    let out = headless(browser, &tmp.path().join("profile-after"), &["--dump-dom", &url]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("stop requested"), "the page does not show the stop");

    // Let the attempt finish: the run ends after it.
    std::fs::write(&go, "").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "hang guard: the run did not end after its attempt");
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(reap);
    let stderr = reader.join().unwrap();
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    assert_eq!(status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("dashboard: stop requested; the run stops after the current attempt"), "{stderr}");
    let history = cache.path().join("optimize/served/history.json");
    let h: Value = serde_json::from_str(&std::fs::read_to_string(&history).unwrap()).unwrap();
    assert_eq!(h["stopped"], "stopped from the dashboard", "{h:#}");
    let attempts = h["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "one attempt of the three asked: {h:#}");
    // The agent, asked for a plan, printed none: the attempt is recorded as such.
    assert_eq!(attempts[0]["outcome"]["result"], "empty_plan", "{h:#}");
    assert!(bfperf_tests::mounts_of(pid).is_empty(), "bpffs left mounted");
}
