//! JSON over HTTPS with retries: the transport both API clients share.
//!
//! Retried, with exponential backoff and jitter (or the server's `retry-after`, capped): HTTP 429,
//! 500–599 (529 = overloaded included) and failures to connect. Not retried: 401/403 (the key is
//! wrong), other 4xx (the request is wrong), a request timeout (it would only time out again), and
//! a 2xx whose body is not JSON. The API key travels in a header marked sensitive and is scrubbed
//! from any API message quoted in an error.
//!
//! Where the key may go: redirects are never followed (reqwest drops `Authorization` on a
//! cross-origin redirect but not `x-api-key`), a 3xx is an error naming the target, and plain
//! `http://` is only accepted to a loopback address, checked before any connection ([`check_url`]).
//!
//! A call in flight ends within [`POLL`] of Ctrl-C: the blocking request runs on a worker thread
//! while the caller polls [`bench_harness::interrupt`]; an interrupted call's answer is dropped.

use super::{AgentError, ApiKey};
use rand::Rng;
use reqwest::blocking::Client;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use serde_json::Value;
use std::sync::mpsc;
use std::time::Duration;

/// How often a waiting call looks at the interrupt flag.
pub const POLL: Duration = Duration::from_millis(100);

/// When and how often to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Requests made at most, the first included.
    pub max_tries: u32,
    /// The wait after the first failure; it doubles after each further failure.
    pub base_delay: Duration,
    /// The longest computed wait.
    pub max_delay: Duration,
    /// The longest wait honoured from a `retry-after` header.
    pub retry_after_cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_tries: 5,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
            retry_after_cap: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The wait before try `failed_tries + 1`: `retry-after` when the server sent one (capped),
    /// else `base_delay * 2^(failed_tries - 1)` capped at `max_delay`, with jitter in [50 %, 100 %].
    pub fn delay(&self, failed_tries: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(ra) = retry_after {
            return ra.min(self.retry_after_cap);
        }
        let exp = self.base_delay.saturating_mul(1u32 << failed_tries.saturating_sub(1).min(16));
        let full = exp.min(self.max_delay);
        let half = full / 2;
        half + half.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
    }
}

/// Transport settings shared by the API clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// How long one request may take, response body included (default 300 s).
    pub timeout: Duration,
    /// Retry policy.
    pub retry: RetryPolicy,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { timeout: Duration::from_secs(300), retry: RetryPolicy::default() }
    }
}

/// A header to send; `sensitive` ones (the key) are hidden from reqwest's own `Debug`.
pub(crate) struct Header {
    pub name: &'static str,
    pub value: String,
    pub sensitive: bool,
}

/// POSTs JSON to one URL with the retry policy.
pub(crate) struct JsonPoster {
    client: Client,
    url: String,
    headers: HeaderMap,
    key: Option<ApiKey>,
    key_var: &'static str,
    retry: RetryPolicy,
}

impl std::fmt::Debug for JsonPoster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonPoster").field("url", &self.url).field("key", &self.key).finish_non_exhaustive()
    }
}

/// What one request brought back, from the worker thread that made it.
enum Sent {
    /// No response (connection refused, timeout...).
    Failed(reqwest::Error),
    /// A response: its status, `retry-after`, `location` and body.
    Answer { status: u16, retry_after: Option<Duration>, location: Option<String>, text: reqwest::Result<String> },
}

/// Why the last try failed, before it becomes an [`AgentError`].
enum Failure {
    Connect(String),
    RateLimited(String),
    Overloaded(String),
    Server(u16, String),
}

impl JsonPoster {
    /// A poster for `url`; `key` (sent in one of `headers`) is only kept to scrub it from messages,
    /// `key_var` names where it came from for the 401 message.
    pub(crate) fn new(
        url: String,
        headers: Vec<Header>,
        key: Option<ApiKey>,
        key_var: &'static str,
        config: &HttpConfig,
    ) -> Result<Self, AgentError> {
        let parsed = check_url(&url)?;
        let mut map = HeaderMap::new();
        map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for h in headers {
            let mut value = HeaderValue::from_str(&h.value).map_err(|_| {
                AgentError::Malformed(format!("the {} header holds characters HTTP does not allow", h.name))
            })?;
            value.set_sensitive(h.sensitive);
            map.insert(HeaderName::from_static(h.name), value);
        }
        let mut builder = Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("bfperf/", env!("CARGO_PKG_VERSION")));
        if is_loopback(&parsed) {
            // A local model or test server: never send its traffic through a proxy.
            builder = builder.no_proxy();
        }
        let client = builder.build().map_err(|e| AgentError::Unreachable(url.clone(), error_chain(&e)))?;
        Ok(JsonPoster { client, url, headers: map, key, key_var, retry: config.retry.clone() })
    }

    /// The URL requests go to.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// POST `body`, retrying per the policy, and return the response's JSON.
    ///
    /// Ctrl-C ends the call (and any wait between tries) with [`AgentError::Interrupted`].
    pub(crate) fn post(&self, body: &Value) -> Result<Value, AgentError> {
        let body =
            serde_json::to_vec(body).map_err(|e| AgentError::Malformed(format!("cannot encode the request: {e}")))?;
        let tries = self.retry.max_tries.max(1);
        let mut last = Failure::Connect(String::new());
        for attempt in 1..=tries {
            let mut retry_after = None;
            match self.send(body.clone())? {
                Sent::Failed(e) if e.is_timeout() => {
                    return Err(AgentError::Unreachable(self.url.clone(), self.timeout_reason()));
                }
                Sent::Failed(e) if e.is_connect() => last = Failure::Connect(self.scrub(&root_cause(&e))),
                Sent::Failed(e) => last = Failure::Connect(self.scrub(&error_chain(&e.without_url()))),
                Sent::Answer { status, retry_after: ra, location, text } => {
                    retry_after = ra;
                    let text = match text {
                        Ok(t) => t,
                        Err(e) if e.is_timeout() => {
                            return Err(AgentError::Unreachable(self.url.clone(), self.timeout_reason()));
                        }
                        Err(e) => {
                            last = Failure::Connect(self.scrub(&error_chain(&e.without_url())));
                            self.pause(attempt, tries, retry_after)?;
                            continue;
                        }
                    };
                    match status {
                        200..=299 => {
                            return serde_json::from_str(&text).map_err(|e| {
                                AgentError::Malformed(format!("response is not JSON ({e}): {}", self.excerpt(&text)))
                            });
                        }
                        300..=399 => {
                            let to = location.map(|l| self.excerpt(&l)).unwrap_or_else(|| "nowhere".into());
                            return Err(AgentError::Redirected { url: self.url.clone(), status, location: to });
                        }
                        401 | 403 => return Err(AgentError::Unauthorized { status, key_var: self.key_var }),
                        429 => last = Failure::RateLimited(self.detail(&text)),
                        529 => last = Failure::Overloaded(self.detail(&text)),
                        500..=599 => last = Failure::Server(status, self.detail(&text)),
                        _ => return Err(AgentError::Rejected { status, detail: self.detail(&text) }),
                    }
                }
            }
            self.pause(attempt, tries, retry_after)?;
        }
        Err(match last {
            Failure::Connect(reason) => {
                AgentError::Unreachable(self.url.clone(), format!("{reason} (after {tries} tries)"))
            }
            Failure::RateLimited(detail) => AgentError::RateLimited { tries, detail },
            Failure::Overloaded(detail) => AgentError::Overloaded { tries, detail },
            Failure::Server(status, detail) => AgentError::ServerError { status, tries, detail },
        })
    }

    /// One request, made on a worker thread so that Ctrl-C ends the wait: blocking reqwest
    /// cannot be cancelled, so an interrupted request is left to its thread and its answer dropped
    /// (the process is about to exit; the request timeout bounds the thread otherwise).
    fn send(&self, body: Vec<u8>) -> Result<Sent, AgentError> {
        super::check_interrupt()?;
        let request = self.client.post(&self.url).headers(self.headers.clone()).body(body);
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("bfperf-model-call".into())
            .spawn(move || {
                let sent = match request.send() {
                    Err(e) => Sent::Failed(e),
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let header = |name| resp.headers().get(name);
                        let retry_after = header(RETRY_AFTER).and_then(parse_retry_after);
                        let location = header(LOCATION).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
                        Sent::Answer { status, retry_after, location, text: resp.text() }
                    }
                };
                // The receiver is gone when the call was interrupted: nobody wants the answer.
                let _ = tx.send(sent);
            })
            .map_err(|e| AgentError::Unreachable(self.url.clone(), format!("cannot start the request thread: {e}")))?;
        loop {
            match rx.recv_timeout(POLL) {
                Ok(sent) => return Ok(sent),
                Err(mpsc::RecvTimeoutError::Timeout) => super::check_interrupt()?,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(AgentError::Unreachable(self.url.clone(), "the request thread died".into()));
                }
            }
        }
    }

    /// Wait before the next try (none after the last), in slices so that Ctrl-C ends the wait.
    fn pause(&self, attempt: u32, tries: u32, retry_after: Option<Duration>) -> Result<(), AgentError> {
        if attempt < tries {
            let until = std::time::Instant::now() + self.retry.delay(attempt, retry_after);
            while let Some(left) = until.checked_duration_since(std::time::Instant::now()).filter(|d| !d.is_zero()) {
                super::check_interrupt()?;
                std::thread::sleep(left.min(POLL));
            }
        }
        super::check_interrupt()
    }

    fn timeout_reason(&self) -> String {
        "no complete answer within the request timeout: raise the API timeout or lower the effort".to_string()
    }

    fn scrub(&self, text: &str) -> String {
        match &self.key {
            Some(k) => k.redact(text),
            None => text.to_string(),
        }
    }

    /// The API's own error message (`error.message` in both APIs), else the start of the body.
    fn detail(&self, body: &str) -> String {
        let message = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v.pointer("/error/message").and_then(Value::as_str).map(str::to_string));
        self.excerpt(message.as_deref().unwrap_or(body))
    }

    fn excerpt(&self, text: &str) -> String {
        const MAX: usize = 300;
        let text = self.scrub(text.trim());
        match text.char_indices().nth(MAX) {
            Some((i, _)) => format!("{}...", &text[..i]),
            None => text,
        }
    }
}

/// `retry-after` in seconds (integer or decimal); HTTP dates are ignored (backoff is used instead).
fn parse_retry_after(v: &HeaderValue) -> Option<Duration> {
    let secs: f64 = v.to_str().ok()?.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

/// Parse a model API URL and refuse what would expose the key: anything but `http(s)`, and plain
/// `http://` to a host other than loopback (127.0.0.0/8, `::1`, `localhost`). Nothing is resolved
/// or connected here, so a refused URL never sees a packet.
pub fn check_url(url: &str) -> Result<reqwest::Url, AgentError> {
    let parsed = reqwest::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| AgentError::Unreachable(url.to_string(), "not a valid http(s) URL".into()))?;
    if parsed.scheme() == "http" && !is_loopback(&parsed) {
        return Err(AgentError::InsecureUrl(url.to_string()));
    }
    Ok(parsed)
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else { return false };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// The innermost cause of an error ("Connection refused (os error 111)").
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

/// An error and its causes on one line ("error sending request: ...: Connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryPolicy {
            max_tries: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            retry_after_cap: Duration::from_secs(10),
        };
        for _ in 0..50 {
            let d1 = p.delay(1, None);
            assert!(d1 >= Duration::from_millis(500) && d1 <= Duration::from_secs(1), "{d1:?}");
            let d3 = p.delay(3, None);
            assert!(d3 >= Duration::from_secs(2) && d3 <= Duration::from_secs(4), "{d3:?}");
            assert!(p.delay(30, None) <= Duration::from_secs(5));
        }
        assert_eq!(p.delay(1, Some(Duration::from_secs(3))), Duration::from_secs(3));
        assert_eq!(p.delay(1, Some(Duration::from_secs(3600))), Duration::from_secs(10));
    }

    #[test]
    fn retry_after_parses_seconds_only() {
        assert_eq!(parse_retry_after(&HeaderValue::from_static("7")), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(&HeaderValue::from_static("0.5")), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after(&HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(parse_retry_after(&HeaderValue::from_static("-1")), None);
    }

    #[test]
    fn invalid_urls_are_refused_up_front() {
        let err = JsonPoster::new("ftp://x/v1".into(), vec![], None, "K", &HttpConfig::default()).unwrap_err();
        assert!(matches!(err, AgentError::Unreachable(..)), "{err}");
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for (u, want) in [
            ("http://127.0.0.1:9/", true),
            ("http://localhost/", true),
            ("http://[::1]:8080/", true),
            ("https://api.anthropic.com/", false),
        ] {
            assert_eq!(is_loopback(&reqwest::Url::parse(u).unwrap()), want, "{u}");
        }
    }

    /// A loopback server that accepts one connection, reads the request, answers `response`
    /// (nothing when `None`) and keeps the connection open; `accepted` is set once it has read.
    fn one_shot_server(response: Option<&'static str>) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let accepted = std::sync::Arc::new(AtomicBool::new(false));
        let flag = accepted.clone();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 65536];
            let _ = conn.read(&mut buf);
            if let Some(r) = response {
                let _ = conn.write_all(r.as_bytes());
            }
            flag.store(true, Ordering::SeqCst);
            // Hold the connection until the client goes away.
            let _ = conn.read(&mut buf);
        });
        (url, accepted)
    }

    #[test]
    fn ctrl_c_ends_a_call_that_is_never_answered() {
        let (url, accepted) = one_shot_server(None);
        // The request timeout is the hang guard: without the interrupt the call ends with it.
        let config = HttpConfig { timeout: Duration::from_secs(60), retry: RetryPolicy::default() };
        let poster = JsonPoster::new(url, vec![], None, "K", &config).unwrap();
        crate::agent::tests::interrupt_this_thread_when(move || accepted.load(std::sync::atomic::Ordering::SeqCst));
        let err = poster.post(&serde_json::json!({})).unwrap_err();
        assert!(matches!(err, AgentError::Interrupted { .. }), "{err}");
    }

    #[test]
    fn ctrl_c_ends_the_wait_before_a_retry() {
        let answer = "HTTP/1.1 529 Overloaded\r\nretry-after: 600\r\ncontent-length: 0\r\n\r\n";
        let (url, answered) = one_shot_server(Some(answer));
        let retry = RetryPolicy { retry_after_cap: Duration::from_secs(600), ..RetryPolicy::default() };
        let poster = JsonPoster::new(url, vec![], None, "K", &HttpConfig { retry, ..HttpConfig::default() }).unwrap();
        crate::agent::tests::interrupt_this_thread_when(move || answered.load(std::sync::atomic::Ordering::SeqCst));
        let err = poster.post(&serde_json::json!({})).unwrap_err();
        assert!(matches!(err, AgentError::Interrupted { .. }), "{err}");
    }

    #[test]
    fn plain_http_goes_to_loopback_only() {
        for url in ["http://10.1.2.3:80/v1", "http://example.com/v1", "http://[2001:db8::1]:8080/v1"] {
            let err = check_url(url).unwrap_err();
            assert!(matches!(err, AgentError::InsecureUrl(_)), "{url}: {err}");
        }
        for url in
            ["http://127.0.0.1:9/", "http://127.9.8.7/", "http://LOCALHOST:1/", "http://[::1]:2/", "https://10.1.2.3/"]
        {
            assert!(check_url(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn debug_hides_the_key() {
        let key = ApiKey::new("sk-test-SECRET-123").unwrap();
        let headers = vec![Header { name: "x-api-key", value: key.expose().to_string(), sensitive: true }];
        let p =
            JsonPoster::new("http://127.0.0.1:9/v1".into(), headers, Some(key), "K", &HttpConfig::default()).unwrap();
        let dbg = format!("{p:?} {:?}", p.headers);
        assert!(!dbg.contains("SECRET"), "{dbg}");
    }
}
