//! [`Anthropic`]: the Messages API (`POST {base}/v1/messages`) with tool use and extended thinking.
//!
//! One [`Model::converse`] sends the system prompt, the user message and our tools; while the
//! model stops with `stop_reason: "tool_use"`, every `tool_use` block is run through the
//! [`ToolHost`] and answered with a `tool_result` block (`is_error` when the tool failed), the
//! assistant's content (thinking blocks and their signatures included) being sent back verbatim
//! as the API requires. Usage is summed over the turns and charged to the [`Budget`], which is
//! checked before every request. Any other stop reason (`end_turn`, `max_tokens`, `refusal`...)
//! ends the conversation with the text of that last response.

use super::budget::SharedBudget;
use super::http::{Header, HttpConfig, JsonPoster};
use super::pricing::{self, Price, Thinking};
use super::{dispatch, AgentError, ApiKey, Budget, Conversation, Effort, Model, Outcome, ToolHost, Usage};
use serde_json::{json, Value};

/// Where the API is when neither `--api-base-url` nor `ANTHROPIC_BASE_URL` says otherwise.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The `anthropic-version` header sent with every request.
pub const API_VERSION: &str = "2023-06-01";
/// The environment variable holding the API key.
pub const KEY_VAR: &str = "ANTHROPIC_API_KEY";
/// The environment variable that overrides the base URL (as in the official SDKs).
pub const BASE_URL_VAR: &str = "ANTHROPIC_BASE_URL";

/// The base URL to use: `explicit` (from `--api-base-url`) if given, else `ANTHROPIC_BASE_URL`,
/// else [`DEFAULT_BASE_URL`]; without a trailing slash.
pub fn resolve_base_url(explicit: Option<&str>) -> String {
    pick_base_url(explicit, std::env::var(BASE_URL_VAR).ok())
}

fn pick_base_url(explicit: Option<&str>, env: Option<String>) -> String {
    let chosen = explicit
        .map(str::to_string)
        .filter(|s| !s.trim().is_empty())
        .or(env.filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
    chosen.trim().trim_end_matches('/').to_string()
}

/// Settings of an [`Anthropic`] client.
#[derive(Debug, Clone, PartialEq)]
pub struct AnthropicConfig {
    /// Model id, e.g. `claude-sonnet-4-5`.
    pub model: String,
    /// Base URL without `/v1/messages`.
    pub base_url: String,
    /// Output tokens allowed per request for the answer, on top of any thinking budget
    /// (the total is capped at the model's limit, see [`pricing::max_output_tokens`]).
    pub max_tokens: u32,
    /// Prices for cost and budget; `None` looks the model up in [`pricing`] (`--price-per-mtok`
    /// sets it; a model the table lacks then has no known cost).
    pub price: Option<Price>,
    /// Timeout and retries.
    pub http: HttpConfig,
}

impl AnthropicConfig {
    /// Defaults for `model`, with the base URL from [`resolve_base_url`]`(base_url)`.
    pub fn new(model: impl Into<String>, base_url: Option<&str>) -> Self {
        AnthropicConfig {
            model: model.into(),
            base_url: resolve_base_url(base_url),
            max_tokens: 8_192,
            price: None,
            http: HttpConfig::default(),
        }
    }

    /// The prices calls are charged at, `None` when unknown.
    pub fn price(&self) -> Option<Price> {
        self.price.or_else(|| pricing::price_for(&self.model))
    }

    /// `max_tokens` and the thinking budget to request at `effort`: `max_tokens` always exceeds
    /// the thinking budget, and both fit the model's output limit. A model with adaptive
    /// thinking gets no budget (its effort level steers it) but room for its thinking.
    pub fn token_limits(&self, effort: Effort) -> (u32, Option<u32>) {
        let cap = pricing::max_output_tokens(&self.model);
        let answer = self.max_tokens.max(1);
        if pricing::thinking(&self.model) == Thinking::Adaptive {
            let room = effort.thinking_budget().map_or(8_000, |b| b * 2);
            return (answer.saturating_add(room).min(cap), None);
        }
        match effort.thinking_budget() {
            None => (answer.min(cap), None),
            Some(budget) => {
                let total = budget.saturating_add(answer).min(cap);
                let answer_room = answer.min(total / 4).max(1);
                (total, Some(budget.min(total - answer_room)))
            }
        }
    }
}

/// A Messages API client. Its `Debug` output never shows the key.
pub struct Anthropic {
    config: AnthropicConfig,
    poster: JsonPoster,
    budget: SharedBudget,
}

impl std::fmt::Debug for Anthropic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anthropic")
            .field("config", &self.config)
            .field("budget", &self.budget())
            .field("key", &super::secret::REDACTED)
            .finish()
    }
}

impl Anthropic {
    /// A client with the key from `ANTHROPIC_API_KEY` ([`AgentError::MissingApiKey`] when unset).
    pub fn from_env(config: AnthropicConfig) -> Result<Self, AgentError> {
        let key = ApiKey::from_env(KEY_VAR).ok_or(AgentError::MissingApiKey)?;
        Anthropic::new(key, config)
    }

    /// A client with an explicit key.
    pub fn new(key: ApiKey, config: AnthropicConfig) -> Result<Self, AgentError> {
        let url = format!("{}/v1/messages", config.base_url);
        let headers = vec![
            Header { name: "x-api-key", value: key.expose().to_string(), sensitive: true },
            Header { name: "anthropic-version", value: API_VERSION.to_string(), sensitive: false },
        ];
        let poster = JsonPoster::new(url, headers, Some(key), KEY_VAR, &config.http)?;
        Ok(Anthropic { config, poster, budget: SharedBudget::default() })
    }

    /// Charge calls to `budget` (limit and amount already spent, e.g. from a resumed run).
    pub fn with_budget(self, budget: Budget) -> Self {
        self.with_shared_budget(SharedBudget::new(budget))
    }

    /// Charge calls to `budget`, which other clients may share (the proposal and implementation
    /// models of one run spend one budget).
    pub fn with_shared_budget(mut self, budget: SharedBudget) -> Self {
        self.budget = budget;
        self
    }

    /// Money spent through this client's budget and its limit.
    pub fn budget(&self) -> Budget {
        self.budget.get()
    }

    /// The client's settings.
    pub fn config(&self) -> &AnthropicConfig {
        &self.config
    }

    /// The URL requests are sent to.
    pub fn endpoint(&self) -> &str {
        self.poster.url()
    }

    fn request_body(&self, req: &Conversation, tools: &Value, messages: &[Value]) -> (Value, u32) {
        let (max_tokens, thinking) = self.config.token_limits(req.effort);
        let mut body = json!({
            "model": self.config.model,
            "max_tokens": max_tokens,
            // Caching the system prompt (and the tools before it) makes later turns cheaper.
            "system": [{"type": "text", "text": req.system, "cache_control": {"type": "ephemeral"}}],
            "messages": messages,
        });
        if tools.as_array().is_some_and(|t| !t.is_empty()) {
            body["tools"] = tools.clone();
        }
        if let Some(budget_tokens) = thinking {
            body["thinking"] = json!({"type": "enabled", "budget_tokens": budget_tokens});
        }
        if pricing::thinking(&self.config.model) == Thinking::Adaptive {
            body["thinking"] = json!({"type": "adaptive"});
            body["output_config"] = json!({"effort": req.effort.as_str()});
        }
        (body, max_tokens)
    }

    /// The most the request `body` can cost: its size at the input price (about 3 bytes per
    /// token, on the high side) plus all of `max_tokens` at the output price.
    fn worst_case_usd(&self, body: &Value, max_tokens: u32) -> f64 {
        let input_tokens = body.to_string().len() as u64 / 3 + 1;
        let usage = Usage { input_tokens, output_tokens: max_tokens as u64, ..Usage::default() };
        self.config.price().map_or(0.0, |p| p.cost_usd(&usage))
    }
}

impl Model for Anthropic {
    fn converse(&mut self, req: &Conversation, tools: &mut dyn ToolHost) -> Result<Outcome, AgentError> {
        let specs = tools.specs();
        let tools_json: Value = specs
            .iter()
            .map(|s| json!({"name": s.name, "description": s.description, "input_schema": s.input_schema}))
            .collect();
        let mut messages = vec![json!({"role": "user", "content": req.user})];
        let mut usage = Usage::default();
        let mut thinking = Vec::new();
        let mut tool_calls = 0;

        for turn in 1..=req.max_turns {
            let (body, max_tokens) = self.request_body(req, &tools_json, &messages);
            let budget = self.budget.get();
            budget.check_before_call(budget.estimate_next_call(self.worst_case_usd(&body, max_tokens)))?;

            let reply = Reply::parse(&self.poster.post(&body).map_err(|e| e.with_usage(&usage))?)?;
            usage.add(&reply.usage);
            self.budget.record(self.config.price().map_or(0.0, |p| p.cost_usd(&reply.usage)));
            thinking.extend(reply.thinking.iter().cloned());
            tools.turn(&reply.thinking, &reply.text);

            if reply.stop_reason != "tool_use" {
                let thinking = (!thinking.is_empty()).then(|| thinking.join("\n\n"));
                return Ok(Outcome { text: reply.text.join("\n"), thinking, usage, tool_calls });
            }
            if reply.tool_uses.is_empty() {
                return Err(AgentError::Malformed("stop_reason is tool_use but there is no tool_use block".into()));
            }
            if turn == req.max_turns {
                break;
            }
            let results: Vec<Value> = reply
                .tool_uses
                .iter()
                .map(|call| {
                    tool_calls += 1;
                    let input = call.input.as_ref().ok_or_else(|| "the tool_use block has no input".to_string());
                    let result = dispatch(tools, &specs, &call.name, input);
                    let content = if result.content.is_empty() { "(no output)".to_string() } else { result.content };
                    json!({"type": "tool_result", "tool_use_id": call.id, "content": content, "is_error": result.is_error})
                })
                .collect();
            messages.push(json!({"role": "assistant", "content": reply.content}));
            messages.push(json!({"role": "user", "content": results}));
        }
        Err(AgentError::TooManyTurns { max_turns: req.max_turns })
    }
}

/// One `tool_use` block.
struct ToolUse {
    id: String,
    name: String,
    input: Option<Value>,
}

/// The parts of a Messages API response we use.
struct Reply {
    /// The content array, verbatim, to send back as the assistant turn.
    content: Value,
    text: Vec<String>,
    thinking: Vec<String>,
    tool_uses: Vec<ToolUse>,
    stop_reason: String,
    usage: Usage,
}

impl Reply {
    fn parse(v: &Value) -> Result<Reply, AgentError> {
        let malformed = |what: &str| AgentError::Malformed(what.to_string());
        let content = v.get("content").filter(|c| c.is_array()).ok_or_else(|| malformed("no `content` array"))?;
        let stop_reason =
            v.get("stop_reason").and_then(Value::as_str).ok_or_else(|| malformed("no `stop_reason`"))?.to_string();
        let (mut text, mut thinking, mut tool_uses) = (Vec::new(), Vec::new(), Vec::new());
        for block in content.as_array().into_iter().flatten() {
            let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
            let field = |name: &str| {
                block
                    .get(name)
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| AgentError::Malformed(format!("a `{kind}` block has no `{name}` string")))
            };
            match kind {
                "text" => text.push(field("text")?),
                "thinking" => thinking.push(field("thinking")?),
                "redacted_thinking" => {}
                "tool_use" => tool_uses.push(ToolUse {
                    id: field("id")?,
                    name: field("name")?,
                    input: block.get("input").cloned(),
                }),
                other => return Err(AgentError::Malformed(format!("unknown content block type `{other}`"))),
            }
        }
        let count = |name: &str| v.pointer(&format!("/usage/{name}")).and_then(Value::as_u64).unwrap_or(0);
        let usage = Usage {
            input_tokens: count("input_tokens"),
            output_tokens: count("output_tokens"),
            cache_read_tokens: count("cache_read_input_tokens"),
            cache_write_tokens: count("cache_creation_input_tokens"),
        };
        Ok(Reply { content: content.clone(), text, thinking, tool_uses, stop_reason, usage })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_precedence() {
        assert_eq!(pick_base_url(Some("http://x:1/"), Some("http://env".into())), "http://x:1");
        assert_eq!(pick_base_url(None, Some("http://env/".into())), "http://env");
        assert_eq!(pick_base_url(Some(" "), Some(String::new())), DEFAULT_BASE_URL);
        assert_eq!(pick_base_url(None, None), DEFAULT_BASE_URL);
    }

    #[test]
    fn thinking_fits_inside_max_tokens_and_the_model_limit() {
        let mut c = AnthropicConfig::new("claude-sonnet-4-5", Some("http://127.0.0.1:1"));
        assert_eq!(c.token_limits(Effort::Low), (8_192, None));
        assert_eq!(c.token_limits(Effort::Medium), (12_192, Some(4_000)));
        let (max, think) = c.token_limits(Effort::Max);
        assert_eq!((max, think), (40_192, Some(32_000)));
        c.model = "claude-opus-4-1".into();
        let (max, think) = c.token_limits(Effort::Max);
        assert_eq!(max, 32_000);
        assert!(think.unwrap() < max && think.unwrap() >= 16_000, "{think:?}");
        // Adaptive thinking: no budget, room for the thinking the effort level asks for.
        c.model = "claude-opus-4-8".into();
        assert_eq!(c.token_limits(Effort::Low), (16_192, None));
        assert_eq!(c.token_limits(Effort::Max), (72_192, None));
    }

    #[test]
    fn each_family_gets_its_own_effort_fields() {
        let key = ApiKey::new("k").unwrap();
        let req = Conversation { system: "s".into(), user: "u".into(), max_turns: 1, effort: Effort::High };
        let body = |model: &str| {
            let client = Anthropic::new(key.clone(), AnthropicConfig::new(model, Some("http://127.0.0.1:1"))).unwrap();
            client.request_body(&req, &json!([]), &[]).0
        };
        let adaptive = body("claude-opus-4-8");
        assert_eq!(adaptive["thinking"], json!({"type": "adaptive"}));
        assert_eq!(adaptive["output_config"], json!({"effort": "high"}));
        let budgeted = body("claude-sonnet-4-5");
        assert_eq!(budgeted["thinking"], json!({"type": "enabled", "budget_tokens": 16_000}));
        assert!(budgeted.get("output_config").is_none());
    }

    #[test]
    fn request_body_has_tools_and_thinking() {
        let key = ApiKey::new("k").unwrap();
        let client = Anthropic::new(key, AnthropicConfig::new("claude-haiku-4-5", Some("http://127.0.0.1:1"))).unwrap();
        let req = Conversation { system: "sys".into(), user: "hi".into(), max_turns: 3, effort: Effort::High };
        let tools = json!([{"name": "read_file", "description": "d", "input_schema": {"type": "object"}}]);
        let (body, max) = client.request_body(&req, &tools, &[json!({"role": "user", "content": "hi"})]);
        assert_eq!(body["thinking"], json!({"type": "enabled", "budget_tokens": 16_000}));
        assert_eq!(body["max_tokens"], json!(max));
        assert_eq!(body["tools"][0]["name"], "read_file");
        assert_eq!(body["system"][0]["text"], "sys");
        let low = Conversation { effort: Effort::Low, ..req };
        let (body, _) = client.request_body(&low, &json!([]), &[]);
        assert!(body.get("thinking").is_none() && body.get("tools").is_none());
        assert!(!format!("{client:?}").contains("\"k\""));
    }

    #[test]
    fn replies_parse_or_are_malformed() {
        let ok = json!({
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "text", "text": "a"},
                {"type": "tool_use", "id": "t1", "name": "grep", "input": {"pattern": "x"}}
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 2, "cache_creation_input_tokens": 1}
        });
        let r = Reply::parse(&ok).unwrap();
        assert_eq!((r.text.len(), r.thinking.len(), r.tool_uses.len()), (1, 1, 1));
        assert_eq!(r.usage, Usage { input_tokens: 10, output_tokens: 5, cache_read_tokens: 2, cache_write_tokens: 1 });
        for bad in [
            json!({"stop_reason": "end_turn"}),
            json!({"content": [], "usage": {}}),
            json!({"content": [{"type": "image"}], "stop_reason": "end_turn"}),
            json!({"content": [{"type": "tool_use", "name": "x"}], "stop_reason": "tool_use"}),
        ] {
            assert!(matches!(Reply::parse(&bad), Err(AgentError::Malformed(_))), "{bad}");
        }
    }
}
