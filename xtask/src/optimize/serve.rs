//! `cargo xtask optimize --serve`: a live dashboard of the run.
//!
//! A small HTTP server on a background thread, bound to a loopback address
//! only, that shows the run as it goes: the same page as `report.html`
//! ([`crate::output::html::optimize::render`]) under the live strip (current attempt and step,
//! the live log) and the poller that reloads the page when the run moves on: the same templates
//! as `optimize-dashboard`'s run pages ([`crate::output::html::live`]).
//!
//! It is read-only but for one control: `POST /stop` asks the run to stop after
//! the current attempt, and only with the token printed in the terminal.
//! The routes are fixed: nothing from a request ever names a file, and the
//! record it serves never holds the API key.
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | the page |
//! | `GET /state.json` | `{"version", "current", "stop_requested", "record"}` |
//! | `GET /stop` | a form asking for the token |
//! | `POST /stop` | token in the `X-Bfperf-Token` header or the `token` form field: 202, else 403 |
//! | anything else | 404 (unknown path) or 405 (known path, other method) |

use super::record::{RunRecord, Step};
use crate::output::html::live::{self, code, link, text, Stop, Strip, TokenForm};
use anyhow::{bail, Context as _, Result};
use minijinja::Value;
use serde::Serialize;
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The default address: loopback, a port chosen by the system.
pub const DEFAULT_ADDR: &str = "127.0.0.1:0";

/// The header that carries the stop token.
pub const TOKEN_HEADER: &str = "X-Bfperf-Token";

/// Largest request body read (the stop form).
const MAX_BODY: u64 = 4096;

/// Refuse anything but a loopback address.
pub fn check_addr(addr: SocketAddr) -> Result<()> {
    if !addr.ip().is_loopback() {
        bail!("--serve: only loopback addresses are allowed (127.0.0.1, ::1), not {}", addr.ip());
    }
    Ok(())
}

/// Parse a `--serve` address (`IP:PORT`), loopback only (a clap value parser).
pub fn parse_addr(text: &str) -> std::result::Result<SocketAddr, String> {
    let addr: SocketAddr = text.parse().map_err(|e| format!("{e}: expected IP:PORT, e.g. 127.0.0.1:8080"))?;
    check_addr(addr).map_err(|e| e.to_string())?;
    Ok(addr)
}

/// Where the attempt under way is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Current {
    /// Its 1-based index.
    pub attempt: usize,
    /// Its step.
    pub step: Step,
}

/// The attempt under way (the last one without an outcome), if any.
pub fn current(record: &RunRecord) -> Option<Current> {
    record.attempts.last().filter(|a| a.outcome.is_none()).map(|a| Current { attempt: a.index, step: a.step })
}

/// What the server thread and the run share.
struct Shared {
    /// The last published record (None until the run has one: the baseline may take minutes).
    record: Mutex<(u64, Option<RunRecord>)>,
    stop: AtomicBool,
    /// What the model does, line by line (see [`super::transcript`]).
    live: super::transcript::LiveLog,
    token: String,
    /// The address bound.
    addr: SocketAddr,
}

/// A running dashboard; dropping it stops the server.
pub struct Dashboard {
    shared: Arc<Shared>,
    server: Arc<tiny_http::Server>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Dashboard").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Dashboard {
    /// Bind `addr` (loopback only) and serve in the background. Nothing is
    /// printed: the caller shows [`Dashboard::url`] and [`Dashboard::token`].
    pub fn start(addr: SocketAddr) -> Result<Dashboard> {
        check_addr(addr)?;
        let server = tiny_http::Server::http(addr)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("--serve: cannot listen on {addr}"))?;
        let addr = server.server_addr().to_ip().context("--serve: not an IP listener")?;
        let server = Arc::new(server);
        let shared = Arc::new(Shared {
            record: Mutex::new((0, None)),
            stop: AtomicBool::new(false),
            live: Default::default(),
            token: new_token(),
            addr,
        });
        let thread = {
            let (server, shared) = (Arc::clone(&server), Arc::clone(&shared));
            std::thread::Builder::new()
                .name("bfperf-dashboard".into())
                .spawn(move || {
                    for request in server.incoming_requests() {
                        handle(&shared, request);
                    }
                })
                .context("cannot start the dashboard thread")?
        };
        Ok(Dashboard { shared, server, addr, thread: Some(thread) })
    }

    /// The address bound (with the port the system chose).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The stop token: 128 random bits, in hex.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// Show this state of the run from now on.
    pub fn publish(&self, record: &RunRecord) {
        let mut guard = self.shared.record.lock().unwrap_or_else(|e| e.into_inner());
        guard.0 += 1;
        guard.1 = Some(record.clone());
    }

    /// The live log the page streams: the model's tool calls and thinking, bfperf's steps.
    pub fn log(&self) -> &super::transcript::LiveLog {
        &self.shared.live
    }

    /// Whether "stop after this attempt" was asked (with the right token).
    pub fn stop_requested(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// 128 bits from the thread's CSPRNG, as 32 hex digits.
pub(crate) fn new_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal, in a time that does not depend on where they differ.
pub(crate) fn same_token(given: &str, token: &str) -> bool {
    given.len() == token.len() && given.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

/// A response with the hardening headers every answer carries.
pub(crate) fn respond(
    request: tiny_http::Request,
    status: u16,
    content_type: &str,
    body: String,
    extra: &[(&str, &str)],
) {
    let mut response = tiny_http::Response::from_string(body)
        .with_status_code(status)
        .with_header(header("Content-Type", content_type))
        .with_header(header("Cache-Control", "no-store"))
        .with_header(header("X-Content-Type-Options", "nosniff"))
        .with_header(header("X-Frame-Options", "DENY"))
        .with_header(header("Referrer-Policy", "no-referrer"))
        .with_header(header(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ));
    for (name, value) in extra {
        response.add_header(header(name, value));
    }
    let _ = request.respond(response);
}

const HTML: &str = "text/html; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Only requests addressed to this port by a loopback IP (any of 127.0.0.0/8,
/// `[::1]`) or `localhost` (no DNS rebinding: a page of another site resolved
/// to a loopback address carries its own host name).
pub(crate) fn host_allowed(request: &tiny_http::Request, port: u16) -> bool {
    request.headers().iter().find(|h| h.field.equiv("Host")).is_some_and(|h| host_ok(h.value.as_str(), port))
}

/// Whether a `Host` header value names a loopback address or `localhost` at `port`
/// (no port: 80, as a browser leaves it out).
fn host_ok(host: &str, port: u16) -> bool {
    let (name, given) = match host.rsplit_once(':') {
        // `[::1]` alone ends with `]`, `::1` unbracketed is not a valid Host.
        Some((name, p)) if !p.ends_with(']') => match p.parse::<u16>() {
            Ok(p) => (name, p),
            Err(_) => return false,
        },
        _ => (host, 80),
    };
    if given != port {
        return false;
    }
    let bare = name.strip_prefix('[').and_then(|n| n.strip_suffix(']'));
    let ip = match bare {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().ok().map(std::net::IpAddr::V6),
        None => name.parse::<std::net::Ipv4Addr>().ok().map(std::net::IpAddr::V4),
    };
    match ip {
        Some(ip) => ip.is_loopback(),
        None => name.eq_ignore_ascii_case("localhost"),
    }
}

fn handle(shared: &Shared, mut request: tiny_http::Request) {
    if !host_allowed(&request, shared.addr.port()) {
        return respond(request, 403, TEXT, format!("forbidden: use http://{}/\n", shared.addr), &[]);
    }
    // The path only: a query string is ignored, and no part of either is ever a file name.
    let path = request.url().split(['?', '#']).next().unwrap_or("").to_owned();
    let method = request.method().clone();
    let get = matches!(method, tiny_http::Method::Get | tiny_http::Method::Head);
    match path.as_str() {
        "/" | "/state.json" | "/stop" => {}
        _ => return respond(request, 404, TEXT, "not found\n".into(), &[]),
    }
    match (path.as_str(), get, &method) {
        ("/", true, _) => {
            let body = page(shared);
            respond(request, 200, HTML, body, &[])
        }
        ("/state.json", true, _) => {
            let body = state_json(shared);
            respond(request, 200, "application/json", body, &[])
        }
        ("/stop", true, _) => respond(request, 200, HTML, stop_form(), &[]),
        ("/stop", false, tiny_http::Method::Post) => {
            let from_header = request
                .headers()
                .iter()
                .find(|h| h.field.equiv(TOKEN_HEADER))
                .map(|h| h.value.as_str().trim().to_owned());
            let given = match from_header {
                Some(t) => t,
                None => {
                    let mut body = String::new();
                    let _ = request.as_reader().take(MAX_BODY).read_to_string(&mut body);
                    form_field(&body, "token").unwrap_or_default()
                }
            };
            if same_token(&given, &shared.token) {
                shared.stop.store(true, Ordering::SeqCst);
                eprintln!("dashboard: stop requested; the run stops after the current attempt");
                respond(request, 202, HTML, stopped_page(), &[])
            } else {
                respond(request, 403, HTML, forbidden_page(), &[])
            }
        }
        ("/stop", _, _) => respond(request, 405, TEXT, "method not allowed\n".into(), &[("Allow", "GET, HEAD, POST")]),
        _ => respond(request, 405, TEXT, "method not allowed\n".into(), &[("Allow", "GET, HEAD")]),
    }
}

/// The value of `name` in an `application/x-www-form-urlencoded` body (the token is hex: no decoding needed).
fn form_field(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v.trim().to_owned()))
}

fn snapshot(shared: &Shared) -> (u64, Option<RunRecord>) {
    shared.record.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// `{"version": N, "current": {"attempt", "step"} | null, "stop_requested": bool, "record": RunRecord | null}`.
fn state_json(shared: &Shared) -> String {
    let (version, record) = snapshot(shared);
    serde_json::json!({
        "version": version,
        "current": record.as_ref().and_then(current),
        "stop_requested": shared.stop.load(Ordering::SeqCst),
        "live": live_json(&shared.live),
        "record": record,
    })
    .to_string()
}

/// `{"count": N, "lines": [...]}`: the live log's lines ever pushed and the last ones.
pub(crate) fn live_json(log: &super::transcript::LiveLog) -> serde_json::Value {
    let (count, lines) = log.snapshot();
    serde_json::json!({"count": count, "lines": lines})
}

fn step_word(step: Step) -> &'static str {
    match step {
        Step::Propose => "proposing",
        Step::Implement => "implementing",
        Step::Validate => "validating (build, style, tests)",
        Step::Commit => "committing",
        Step::Evaluate => "measuring against its parent",
        Step::Done => "done",
    }
}

/// What the run is doing, in words, for the live strip.
fn state_words(record: Option<&RunRecord>) -> String {
    match record {
        None => "starting: configuring and validating the baseline".to_owned(),
        Some(r) if r.stopped.is_some() => "run finished".to_owned(),
        Some(r) => match current(r) {
            Some(c) => format!("attempt {}: {}", c.attempt, step_word(c.step)),
            None => "between attempts".to_owned(),
        },
    }
}

/// The report page under the live strip, with the poller.
fn page(shared: &Shared) -> String {
    let (version, record) = snapshot(shared);
    let stop_requested = shared.stop.load(Ordering::SeqCst);
    let running = record.as_ref().is_none_or(|r| r.stopped.is_none());
    // The live log as it is now, for a browser without JavaScript too.
    let (count, lines) = shared.live.snapshot();
    let strip = Strip {
        id: None,
        state: state_words(record.as_ref()),
        running,
        stop: match (running, stop_requested) {
            (false, _) => Stop::None,
            (true, true) => Stop::Requested,
            (true, false) => Stop::Link,
        },
        count,
        log: lines.join("\n"),
        version: version.into(),
    };
    match record {
        Some(record) => live::run_page(&record, &strip),
        None => live::message(
            "bfperf optimize (starting)",
            &[text("The run is starting: its worktree is being configured and the baseline validated. This page follows it.")],
            Some(&strip),
            None,
        ),
    }
}

fn back() -> Value {
    link("/", "back to the run")
}

fn stop_form() -> String {
    live::message(
        "Stop after this attempt",
        &[
            text("The run finishes the attempt under way (it is recorded and, when it wins, kept), then stops; "),
            code("--resume"),
            text(" continues it later."),
        ],
        None,
        Some(&TokenForm {
            action: "/stop",
            label: "Stop token (printed in the terminal):",
            button: "Stop after this attempt",
            after: vec![back()],
        }),
    )
}

fn stopped_page() -> String {
    live::message("Stop requested", &[text("The run stops after the current attempt. "), back()], None, None)
}

fn forbidden_page() -> String {
    live::message(
        "Wrong or missing token",
        &[
            text("The stop token is printed in the terminal where "),
            code("cargo xtask optimize --serve"),
            text(" runs. "),
            link("/stop", "Try again"),
            text(" · "),
            back(),
        ],
        None,
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses() {
        assert!(check_addr("127.0.0.1:0".parse().unwrap()).is_ok());
        assert!(check_addr("[::1]:8080".parse().unwrap()).is_ok());
        let err = check_addr("0.0.0.0:8080".parse().unwrap()).unwrap_err().to_string();
        assert!(err.contains("only loopback addresses are allowed"), "{err}");
        assert!(check_addr("192.168.1.2:80".parse().unwrap()).is_err());
        assert_eq!(parse_addr("[::1]:0"), Ok("[::1]:0".parse().unwrap()));
        assert!(parse_addr("0.0.0.0:1").unwrap_err().contains("only loopback"));
        assert!(parse_addr("localhost").is_err());
    }

    #[test]
    fn every_loopback_host_of_this_port_is_served() {
        for host in
            ["127.0.0.1:8080", "127.0.0.2:8080", "127.255.0.9:8080", "[::1]:8080", "localhost:8080", "LOCALHOST:8080"]
        {
            assert!(host_ok(host, 8080), "{host}");
        }
        for host in [
            "127.0.0.2:8081",
            "127.0.0.1",
            "evil.example:8080",
            "localhost.evil.example:8080",
            "10.0.0.1:8080",
            "[::2]:8080",
            "::1:8080",
            "[::ffff:127.0.0.1]:8080",
            "127.0.0.1:8080:8080",
            "",
        ] {
            assert!(!host_ok(host, 8080), "{host}");
        }
        assert!(host_ok("127.0.0.3", 80) && host_ok("[::1]", 80) && host_ok("localhost", 80));
    }

    #[test]
    fn tokens_are_128_random_bits() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(same_token(&a, &a.clone()));
        assert!(!same_token(&a, &b));
        assert!(!same_token("", &a));
        assert!(!same_token(&a[..31], &a));
    }

    #[test]
    fn form_fields() {
        assert_eq!(form_field("token=abc", "token").as_deref(), Some("abc"));
        assert_eq!(form_field("x=1&token=ff00", "token").as_deref(), Some("ff00"));
        assert_eq!(form_field("tokens=1", "token"), None);
    }
}
