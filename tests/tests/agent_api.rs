//! The model clients against scripted local HTTP servers on 127.0.0.1 (wiremock): the Messages API
//! tool loop, retries, errors, the budget, an OpenAI-compatible endpoint, and the agent command.
//! No test here talks to the real Anthropic API.

use serde_json::{json, Value};
use std::fs;
use std::path::Path;
use std::time::Duration;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};
use xtask::agent::anthropic::{Anthropic, AnthropicConfig};
use xtask::agent::command::AgentCommand;
use xtask::agent::http::RetryPolicy;
use xtask::agent::openai::{OpenAi, OpenAiConfig};
use xtask::agent::{AgentError, ApiKey, Budget, Conversation, Effort, FileTools, Model, NoTools, Usage};

const KEY: &str = "sk-test-SECRET-123";
const MODEL: &str = "claude-sonnet-4-5";

/// A wiremock server (it runs on its own thread) and a runtime to drive its async set-up from
/// these synchronous tests, which call the blocking clients from the test thread.
struct Server {
    rt: tokio::runtime::Runtime,
    server: MockServer,
}

impl Server {
    fn start() -> Server {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let server = rt.block_on(MockServer::start());
        Server { rt, server }
    }

    fn uri(&self) -> String {
        self.server.uri()
    }

    fn mount(&self, mock: Mock) {
        self.rt.block_on(mock.mount(&self.server));
    }

    /// The JSON bodies of the requests received so far.
    fn bodies(&self) -> Vec<Value> {
        self.requests().iter().map(|r| serde_json::from_slice(&r.body).expect("the client sends JSON")).collect()
    }

    fn requests(&self) -> Vec<wiremock::Request> {
        self.rt.block_on(self.server.received_requests()).expect("recording is on")
    }
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_tries: 5,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        retry_after_cap: Duration::from_millis(20),
    }
}

fn anthropic(server: &Server) -> Anthropic {
    let mut config = AnthropicConfig::new(MODEL, Some(&server.uri()));
    config.http.retry = fast_retries();
    Anthropic::new(ApiKey::new(KEY).unwrap(), config).unwrap()
}

fn conversation(effort: Effort) -> Conversation {
    Conversation {
        system: "You optimize BPF code generation.".into(),
        user: "Propose one optimization.".into(),
        max_turns: 5,
        effort,
    }
}

/// A worktree with `src/cgen/prog.c`.
fn worktree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("src/cgen")).unwrap();
    fs::write(dir.path().join("src/cgen/prog.c"), "int needle = 42;\n").unwrap();
    dir
}

fn messages_reply(content: Value, stop_reason: &str, usage: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "msg_test", "type": "message", "role": "assistant", "model": MODEL,
        "content": content, "stop_reason": stop_reason, "usage": usage
    }))
}

fn end_turn(text: &str) -> ResponseTemplate {
    messages_reply(json!([{"type": "text", "text": text}]), "end_turn", json!({"input_tokens": 10, "output_tokens": 5}))
}

fn messages() -> wiremock::MockBuilder {
    Mock::given(method("POST")).and(path("/v1/messages"))
}

/// The `tool_result` blocks of a request body's last message.
fn tool_results(body: &Value) -> Vec<Value> {
    let last = body["messages"].as_array().unwrap().last().unwrap();
    assert_eq!(last["role"], "user");
    last["content"].as_array().unwrap().clone()
}

#[test]
fn two_turn_tool_use_sends_file_content_back_and_sums_usage() {
    let server = Server::start();
    let first = messages_reply(
        json!([
            {"type": "thinking", "thinking": "Look at the codegen first.", "signature": "sig"},
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {"path": "src/cgen/prog.c"}},
            {"type": "tool_use", "id": "toolu_2", "name": "list_dir", "input": {"path": "src"}}
        ]),
        "tool_use",
        json!({"input_tokens": 100, "output_tokens": 20, "cache_creation_input_tokens": 50}),
    );
    let second = messages_reply(
        json!([{"type": "text", "text": "Plan: drop the redundant load."}]),
        "end_turn",
        json!({"input_tokens": 300, "output_tokens": 50, "cache_read_input_tokens": 50}),
    );
    server.mount(messages().and(body_string_contains("tool_result")).respond_with(second));
    server.mount(messages().respond_with(first).up_to_n_times(1));

    let dir = worktree();
    let mut tools = FileTools::read_only(dir.path()).unwrap();
    let mut client = anthropic(&server);
    let out = client.converse(&conversation(Effort::Medium), &mut tools).unwrap();

    assert_eq!(out.text, "Plan: drop the redundant load.");
    assert_eq!(out.thinking.as_deref(), Some("Look at the codegen first."));
    assert_eq!(out.tool_calls, 2);
    assert_eq!(
        out.usage,
        Usage { input_tokens: 400, output_tokens: 70, cache_read_tokens: 50, cache_write_tokens: 50 }
    );
    let cost = out.usage.cost_usd(MODEL).expect("a model of the price table");
    assert!(cost > 0.0);
    assert!((client.budget().spent_usd - cost).abs() < 1e-12, "{:?}", client.budget());
    assert_eq!(client.budget().calls, 2);

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let headers = &requests[0].headers;
    assert_eq!(headers.get("x-api-key").unwrap(), KEY);
    assert_eq!(headers.get("anthropic-version").unwrap(), "2023-06-01");
    assert_eq!(headers.get("content-type").unwrap(), "application/json");

    let bodies = server.bodies();
    assert_eq!(bodies[0]["model"], MODEL);
    assert_eq!(bodies[0]["thinking"], json!({"type": "enabled", "budget_tokens": 4000}));
    assert!(bodies[0]["max_tokens"].as_u64().unwrap() > 4000);
    let names: Vec<&str> = bodies[0]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["read_file", "list_dir", "grep"]);
    assert!(bodies[0]["tools"][0]["input_schema"]["properties"]["path"].is_object());

    // The second request replays the assistant turn verbatim (thinking signature included)
    // and answers both tool calls.
    let msgs = bodies[1]["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[1]["role"], "assistant");
    assert_eq!(msgs[1]["content"][0]["signature"], "sig");
    let results = tool_results(&bodies[1]);
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["type"], "tool_result");
    assert_eq!(results[0]["tool_use_id"], "toolu_1");
    assert_eq!(results[0]["is_error"], false);
    assert!(results[0]["content"].as_str().unwrap().contains("int needle = 42;"), "{}", results[0]);
    assert_eq!(results[1]["tool_use_id"], "toolu_2");
    assert_eq!(results[1]["content"], "cgen/");
}

#[test]
fn overloaded_twice_then_success() {
    let server = Server::start();
    let overloaded = ResponseTemplate::new(529)
        .set_body_json(json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}));
    server.mount(messages().respond_with(overloaded).up_to_n_times(2));
    server.mount(messages().respond_with(end_turn("ok")));

    let out = anthropic(&server).converse(&conversation(Effort::Low), &mut NoTools).unwrap();
    assert_eq!(out.text, "ok");
    assert_eq!(server.requests().len(), 3);
    assert!(server.bodies()[0].get("thinking").is_none(), "low effort asks for no thinking");
}

#[test]
fn retries_give_up_with_a_clear_error() {
    let server = Server::start();
    // retry-after is honoured but capped (here at 20 ms), so this test stays fast.
    let limited = ResponseTemplate::new(429)
        .insert_header("retry-after", "100")
        .set_body_json(json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}));
    server.mount(messages().respond_with(limited));

    // The header's 100 s is capped by the policy in use (the cap itself is unit-tested in
    // `agent::http`); the run below finishing at all is the end-to-end proof, with no clock.
    let policy = fast_retries();
    assert_eq!(policy.delay(1, Some(Duration::from_secs(100))), policy.retry_after_cap);
    let err = anthropic(&server).converse(&conversation(Effort::Low), &mut NoTools).unwrap_err();
    assert!(matches!(err, AgentError::RateLimited { tries: 5, .. }), "{err:?}");
    assert!(err.to_string().contains("slow down"), "{err}");
    assert_eq!(server.requests().len(), 5);

    let server = Server::start();
    server.mount(messages().respond_with(ResponseTemplate::new(503)));
    let err = anthropic(&server).converse(&conversation(Effort::Low), &mut NoTools).unwrap_err();
    assert!(matches!(err, AgentError::ServerError { status: 503, tries: 5, .. }), "{err:?}");
}

#[test]
fn unauthorized_never_shows_the_key() {
    let server = Server::start();
    let body = json!({"type": "error", "error": {"type": "authentication_error", "message": format!("invalid x-api-key {KEY}")}});
    server.mount(messages().respond_with(ResponseTemplate::new(401).set_body_json(body)));

    let mut client = anthropic(&server);
    let err = client.converse(&conversation(Effort::Low), &mut NoTools).unwrap_err();
    assert!(matches!(err, AgentError::Unauthorized { status: 401, .. }), "{err:?}");
    assert_eq!(err.to_string(), "the API rejected the key (HTTP 401): check ANTHROPIC_API_KEY");
    for shown in [err.to_string(), format!("{err:?}"), format!("{client:?}")] {
        assert!(!shown.contains("SECRET"), "the key leaked: {shown}");
    }
    assert_eq!(server.requests().len(), 1, "401 is not retried");
}

#[test]
fn other_client_errors_quote_the_api_without_the_key() {
    let server = Server::start();
    let body = json!({"type": "error", "error": {"type": "invalid_request_error", "message": format!("model: not found (key {KEY})")}});
    server.mount(messages().respond_with(ResponseTemplate::new(404).set_body_json(body)));

    let err = anthropic(&server).converse(&conversation(Effort::Low), &mut NoTools).unwrap_err();
    assert!(matches!(err, AgentError::Rejected { status: 404, .. }), "{err:?}");
    let shown = err.to_string();
    assert!(shown.contains("model: not found") && shown.contains("[redacted]") && !shown.contains("SECRET"), "{shown}");
}

#[test]
fn a_redirect_is_not_followed_so_the_key_stays_home() {
    let elsewhere = Server::start();
    elsewhere.mount(messages().respond_with(end_turn("thanks for the key")));
    let server = Server::start();
    let target = format!("{}/v1/messages", elsewhere.uri());
    server.mount(messages().respond_with(ResponseTemplate::new(307).insert_header("location", target.as_str())));
    let err = anthropic(&server).converse(&conversation(Effort::Low), &mut NoTools).unwrap_err();
    assert!(matches!(err, AgentError::Redirected { status: 307, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&target) && msg.contains("--api-base-url") && !msg.contains(KEY), "{msg}");
    assert!(elsewhere.requests().is_empty(), "the redirect target was called");
    assert_eq!(server.requests().len(), 1, "a redirect is not retried");
}

#[test]
fn plain_http_off_loopback_is_refused_before_connecting() {
    // Refused when the client is made: no request is ever sent (nothing listens there anyway).
    for url in ["http://10.1.2.3:80", "http://example.com"] {
        let err = Anthropic::new(ApiKey::new(KEY).unwrap(), AnthropicConfig::new(MODEL, Some(url))).unwrap_err();
        assert!(matches!(err, AgentError::InsecureUrl(_)), "{url}: {err:?}");
        assert!(err.to_string().contains("use https://"), "{err}");
        let err = OpenAi::new(Some(ApiKey::new(KEY).unwrap()), OpenAiConfig::new("m", url)).unwrap_err();
        assert!(matches!(err, AgentError::InsecureUrl(_)), "{url}: {err:?}");
    }
    for url in ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9", "https://10.1.2.3"] {
        assert!(Anthropic::new(ApiKey::new(KEY).unwrap(), AnthropicConfig::new(MODEL, Some(url))).is_ok(), "{url}");
    }
}

#[test]
fn missing_key_is_reported() {
    if std::env::var_os("ANTHROPIC_API_KEY").is_some() {
        // Set here: run this very test again in a child process without it (removing it from
        // this multi-threaded process would race with the other tests).
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "missing_key_is_reported", "--test-threads", "1"])
            .env_remove("ANTHROPIC_API_KEY")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let err = Anthropic::from_env(AnthropicConfig::new(MODEL, Some("http://127.0.0.1:9"))).unwrap_err();
    assert!(matches!(err, AgentError::MissingApiKey));
    assert!(err.to_string().contains("--agent-command"));
}

#[test]
fn malformed_json_is_an_error() {
    let server = Server::start();
    server.mount(messages().respond_with(ResponseTemplate::new(200).set_body_string("{\"content\": [oops")));
    let err = anthropic(&server).converse(&conversation(Effort::Low), &mut NoTools).unwrap_err();
    assert!(matches!(err, AgentError::Malformed(_)), "{err:?}");

    let server = Server::start();
    server.mount(messages().respond_with(ResponseTemplate::new(200).set_body_json(json!({"stop_reason": "end_turn"}))));
    let err = anthropic(&server).converse(&conversation(Effort::Low), &mut NoTools).unwrap_err();
    assert!(matches!(err, AgentError::Malformed(ref m) if m.contains("content")), "{err:?}");

    let server = Server::start();
    server.mount(messages().respond_with(messages_reply(json!([{"type": "hologram"}]), "end_turn", json!({}))));
    let err = anthropic(&server).converse(&conversation(Effort::Low), &mut NoTools).unwrap_err();
    assert!(matches!(err, AgentError::Malformed(ref m) if m.contains("hologram")), "{err:?}");
}

#[test]
fn unknown_tools_and_bad_inputs_are_errors_the_model_sees() {
    let server = Server::start();
    let first = messages_reply(
        json!([
            {"type": "tool_use", "id": "toolu_1", "name": "run_shell", "input": {"cmd": "rm -rf /"}},
            {"type": "tool_use", "id": "toolu_2", "name": "read_file", "input": "src/cgen/prog.c"},
            {"type": "tool_use", "id": "toolu_3", "name": "read_file", "input": {"path": "../../etc/passwd"}}
        ]),
        "tool_use",
        json!({"input_tokens": 10, "output_tokens": 5}),
    );
    server.mount(messages().and(body_string_contains("tool_result")).respond_with(end_turn("sorry")));
    server.mount(messages().respond_with(first).up_to_n_times(1));

    let dir = worktree();
    let mut tools = FileTools::read_only(dir.path()).unwrap();
    let out = anthropic(&server).converse(&conversation(Effort::Low), &mut tools).unwrap();
    assert_eq!(out.text, "sorry");
    assert_eq!(out.tool_calls, 3);

    let results = tool_results(&server.bodies()[1]);
    assert!(results.iter().all(|r| r["is_error"] == true), "{results:?}");
    assert!(results[0]["content"].as_str().unwrap().contains("unknown tool run_shell"));
    assert!(results[1]["content"].as_str().unwrap().contains("malformed input"));
    assert!(results[2]["content"].as_str().unwrap().starts_with("refused:"));
    assert_eq!(tools.refusals().len(), 1, "{:?}", tools.refusals());
}

#[test]
fn edits_go_only_under_the_scope() {
    let server = Server::start();
    let first = messages_reply(
        json!([
            {"type": "tool_use", "id": "w1", "name": "replace_in_file",
             "input": {"path": "src/cgen/prog.c", "old": "42", "new": "43"}},
            {"type": "tool_use", "id": "w2", "name": "write_file", "input": {"path": "Makefile", "content": "all:"}}
        ]),
        "tool_use",
        json!({"input_tokens": 10, "output_tokens": 5}),
    );
    server.mount(messages().and(body_string_contains("tool_result")).respond_with(end_turn("done")));
    server.mount(messages().respond_with(first).up_to_n_times(1));

    let dir = worktree();
    let mut tools = FileTools::new(dir.path(), Some(Path::new("src/cgen"))).unwrap();
    anthropic(&server).converse(&conversation(Effort::Low), &mut tools).unwrap();
    let results = tool_results(&server.bodies()[1]);
    assert_eq!(results[0]["is_error"], false, "{results:?}");
    assert_eq!(results[1]["is_error"], true, "{results:?}");
    assert_eq!(fs::read_to_string(dir.path().join("src/cgen/prog.c")).unwrap(), "int needle = 43;\n");
    assert!(!dir.path().join("Makefile").exists());
    assert_eq!(tools.written(), &[Path::new("src/cgen/prog.c").to_path_buf()]);
    assert_eq!(tools.refusals().len(), 1);
}

#[test]
fn a_model_that_never_stops_calling_tools_hits_the_turn_limit() {
    let server = Server::start();
    let again = messages_reply(
        json!([{"type": "tool_use", "id": "t", "name": "list_dir", "input": {"path": "."}}]),
        "tool_use",
        json!({"input_tokens": 10, "output_tokens": 5}),
    );
    server.mount(messages().respond_with(again));
    let dir = worktree();
    let mut tools = FileTools::read_only(dir.path()).unwrap();
    let req = Conversation { max_turns: 2, ..conversation(Effort::Low) };
    let err = anthropic(&server).converse(&req, &mut tools).unwrap_err();
    assert!(matches!(err, AgentError::TooManyTurns { max_turns: 2 }), "{err:?}");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn connection_refused_is_unreachable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut config = AnthropicConfig::new(MODEL, Some(&format!("http://127.0.0.1:{port}")));
    config.http.retry = fast_retries();
    let err = Anthropic::new(ApiKey::new(KEY).unwrap(), config)
        .unwrap()
        .converse(&conversation(Effort::Low), &mut NoTools)
        .unwrap_err();
    let shown = err.to_string();
    assert!(matches!(err, AgentError::Unreachable(..)), "{err:?}");
    assert!(
        shown.starts_with(&format!("cannot reach the model API at http://127.0.0.1:{port}/v1/messages")),
        "{shown}"
    );
    assert!(shown.to_lowercase().contains("refused"), "{shown}");
    assert!(!shown.contains("SECRET"));
}

#[test]
fn budget_stops_before_the_first_call() {
    let server = Server::start();
    server.mount(messages().respond_with(end_turn("never")));
    let mut client = anthropic(&server).with_budget(Budget::new(Some(0.0001)));
    let err = client.converse(&conversation(Effort::Max), &mut NoTools).unwrap_err();
    assert!(matches!(err, AgentError::BudgetExceeded { .. }), "{err:?}");
    assert!(err.to_string().contains("--budget-usd"));
    assert_eq!(server.requests().len(), 0, "no request may be made once the budget would be exceeded");
}

#[test]
fn budget_stops_mid_conversation() {
    let server = Server::start();
    // One expensive turn: 10,000 output tokens of Sonnet = $0.15.
    let costly = messages_reply(
        json!([{"type": "tool_use", "id": "t", "name": "list_dir", "input": {"path": "."}}]),
        "tool_use",
        json!({"input_tokens": 1000, "output_tokens": 10000}),
    );
    server.mount(messages().respond_with(costly));
    let dir = worktree();
    let mut tools = FileTools::read_only(dir.path()).unwrap();
    // The first call's worst case (8,192 output tokens, ~$0.13) fits in $0.20; a second like the first does not.
    let mut client = anthropic(&server).with_budget(Budget::new(Some(0.20)));
    let err = client.converse(&conversation(Effort::Low), &mut tools).unwrap_err();
    assert!(matches!(err, AgentError::BudgetExceeded { .. }), "{err:?}");
    assert_eq!(server.requests().len(), 1);
    assert!((client.budget().spent_usd - 0.153).abs() < 1e-9, "{:?}", client.budget());
}

#[test]
fn openai_compatible_tool_round_trip() {
    let server = Server::start();
    let first = ResponseTemplate::new(200).set_body_json(json!({
        "id": "c1", "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": null, "reasoning_content": "Check the file.",
            "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "read_file", "arguments": "{\"path\": \"src/cgen/prog.c\"}"}}]
        }}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 10}
    }));
    let second = ResponseTemplate::new(200).set_body_json(json!({
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Plan: fold constants."}}],
        "usage": {"prompt_tokens": 80, "completion_tokens": 12}
    }));
    let completions = || Mock::given(method("POST")).and(path("/v1/chat/completions"));
    server.mount(completions().and(body_string_contains("\"role\":\"tool\"")).respond_with(second));
    server.mount(completions().respond_with(first).up_to_n_times(1));

    let mut config = OpenAiConfig::new("qwen2.5-coder", format!("{}/v1", server.uri()));
    config.http.retry = fast_retries();
    config.price = Some(xtask::agent::pricing::Price::ZERO);
    let mut client = OpenAi::new(Some(ApiKey::new(KEY).unwrap()), config).unwrap();
    let dir = worktree();
    let mut tools = FileTools::read_only(dir.path()).unwrap();
    let out = client.converse(&conversation(Effort::Low), &mut tools).unwrap();

    assert_eq!(out.text, "Plan: fold constants.");
    assert_eq!(out.thinking.as_deref(), Some("Check the file."));
    assert_eq!(out.tool_calls, 1);
    assert_eq!((out.usage.input_tokens, out.usage.output_tokens), (130, 22));
    assert_eq!(client.budget().spent_usd, 0.0);
    assert!(!format!("{client:?}").contains("SECRET"));

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].headers.get("authorization").unwrap(), &format!("Bearer {KEY}"));
    let bodies = server.bodies();
    assert_eq!(bodies[0]["messages"][0]["role"], "system");
    assert_eq!(bodies[0]["tools"][0]["type"], "function");
    assert_eq!(bodies[0]["tools"][0]["function"]["name"], "read_file");
    let msgs = bodies[1]["messages"].as_array().unwrap();
    assert_eq!(msgs[2]["tool_calls"][0]["id"], "call_1");
    assert_eq!(msgs[3]["role"], "tool");
    assert_eq!(msgs[3]["tool_call_id"], "call_1");
    assert!(msgs[3]["content"].as_str().unwrap().contains("int needle = 42;"), "{}", msgs[3]);
}

#[test]
fn openai_compatible_errors_follow_the_same_policy() {
    let server = Server::start();
    server.mount(
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {"message": "bad key"}}))),
    );
    let mut config = OpenAiConfig::new("local", server.uri());
    config.http.retry = fast_retries();
    let err = OpenAi::new(Some(ApiKey::new(KEY).unwrap()), config)
        .unwrap()
        .converse(&conversation(Effort::Low), &mut NoTools)
        .unwrap_err();
    assert_eq!(err.to_string(), "the API rejected the key (HTTP 401): check OPENAI_API_KEY");
}

#[test]
fn agent_command_gets_the_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = AgentCommand::new("cat > out.txt; echo done", dir.path());
    assert_eq!(cmd.run("optimize the prologue").unwrap(), "done\n");
    assert_eq!(fs::read_to_string(dir.path().join("out.txt")).unwrap(), "optimize the prologue");

    let mut cmd = AgentCommand::new("cat > out.txt; echo done", dir.path());
    let out = cmd.converse(&conversation(Effort::High), &mut NoTools).unwrap();
    assert_eq!(out.text, "done\n");
    let prompt = fs::read_to_string(dir.path().join("out.txt")).unwrap();
    assert!(prompt.contains("You optimize BPF code generation.") && prompt.contains("Propose one optimization."));

    let err = AgentCommand::new("echo broken >&2; exit 2", dir.path()).run("x").unwrap_err();
    assert!(err.to_string().contains("exit code 2") && err.to_string().contains("broken"), "{err}");
}
