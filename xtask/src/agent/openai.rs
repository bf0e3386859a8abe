//! [`OpenAi`]: the same [`Model`] over an OpenAI-compatible `/v1/chat/completions` endpoint, for
//! local models (llama.cpp, vLLM, Ollama, LM Studio...) and compatible services.
//!
//! Tools are offered as `tools: [{type: "function", function: {...}}]`; while the reply carries
//! `tool_calls`, each is run through the [`ToolHost`] and answered with a `role: "tool"` message
//! (the format has no error flag, so failures start with `ERROR:`). A `reasoning_content` field,
//! which several local servers send, becomes [`Outcome::thinking`]. [`Effort`](super::Effort) is
//! sent as `reasoning_effort` (`low`, `medium`, `high`; `max` is `high`) to OpenAI's reasoning
//! families only (`o1`, `o3`, `o4`, `gpt-5`, see [`reasoning_effort`]): other compatible servers
//! disagree on how to express it, and some refuse the field. Same retry, error and budget policy
//! as the Anthropic client.

use super::budget::SharedBudget;
use super::http::{Header, HttpConfig, JsonPoster};
use super::pricing::{self, Price};
use super::{dispatch, AgentError, ApiKey, Budget, Conversation, Effort, Model, Outcome, ToolHost, Usage};

/// The `reasoning_effort` to send for `model` at `effort`: OpenAI's reasoning families (`o1`,
/// `o3`, `o4`, `gpt-5`, with an optional `openai/` prefix) take `low`, `medium` or `high`;
/// any other model gets none.
pub fn reasoning_effort(model: &str, effort: Effort) -> Option<&'static str> {
    let id = model.strip_prefix("openai/").unwrap_or(model);
    let reasoning = ["o1", "o3", "o4", "gpt-5"]
        .iter()
        .any(|f| id.strip_prefix(f).is_some_and(|rest| rest.chars().next().is_none_or(|c| c == '-' || c == '.')));
    reasoning.then_some(match effort {
        Effort::Low => "low",
        Effort::Medium => "medium",
        Effort::High | Effort::Max => "high",
    })
}
use serde_json::{json, Value};

/// The environment variable holding the (optional) API key.
pub const KEY_VAR: &str = "OPENAI_API_KEY";

/// Settings of an [`OpenAi`] client.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiConfig {
    /// Model id as the server knows it.
    pub model: String,
    /// Base URL (`--api-base-url`, required): `http://host:port` or `http://host:port/v1`.
    pub base_url: String,
    /// Output tokens allowed per request.
    pub max_tokens: u32,
    /// Prices for cost and budget; `None` looks the model up in [`pricing`] (an unknown model has
    /// no known cost). Use `Some(Price::ZERO)` for a local model.
    pub price: Option<Price>,
    /// Timeout and retries.
    pub http: HttpConfig,
}

impl OpenAiConfig {
    /// Defaults for `model` served at `base_url`.
    pub fn new(model: impl Into<String>, base_url: impl Into<String>) -> Self {
        OpenAiConfig {
            model: model.into(),
            base_url: base_url.into(),
            max_tokens: 8_192,
            price: None,
            http: HttpConfig::default(),
        }
    }

    /// The chat-completions URL: `/chat/completions` after a base ending in `/v1`, else
    /// `/v1/chat/completions`.
    pub fn endpoint(&self) -> String {
        let base = self.base_url.trim().trim_end_matches('/');
        if base.ends_with("/v1") {
            format!("{base}/chat/completions")
        } else {
            format!("{base}/v1/chat/completions")
        }
    }

    fn price(&self) -> Option<Price> {
        self.price.or_else(|| pricing::price_for(&self.model))
    }
}

/// An OpenAI-compatible chat-completions client. Its `Debug` output never shows the key.
pub struct OpenAi {
    config: OpenAiConfig,
    poster: JsonPoster,
    budget: SharedBudget,
}

impl std::fmt::Debug for OpenAi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAi").field("config", &self.config).field("budget", &self.budget()).finish_non_exhaustive()
    }
}

impl OpenAi {
    /// A client with the key from `OPENAI_API_KEY` when set (local servers usually need none).
    pub fn from_env(config: OpenAiConfig) -> Result<Self, AgentError> {
        OpenAi::new(ApiKey::from_env(KEY_VAR), config)
    }

    /// A client with an explicit key, or none.
    pub fn new(key: Option<ApiKey>, config: OpenAiConfig) -> Result<Self, AgentError> {
        if config.base_url.trim().is_empty() {
            return Err(AgentError::MissingBaseUrl);
        }
        let headers = key
            .iter()
            .map(|k| Header { name: "authorization", value: format!("Bearer {}", k.expose()), sensitive: true })
            .collect();
        let poster = JsonPoster::new(config.endpoint(), headers, key, KEY_VAR, &config.http)?;
        Ok(OpenAi { config, poster, budget: SharedBudget::default() })
    }

    /// Charge calls to `budget`.
    pub fn with_budget(self, budget: Budget) -> Self {
        self.with_shared_budget(SharedBudget::new(budget))
    }

    /// Charge calls to `budget`, which other clients may share.
    pub fn with_shared_budget(mut self, budget: SharedBudget) -> Self {
        self.budget = budget;
        self
    }

    /// Money spent through this client's budget and its limit.
    pub fn budget(&self) -> Budget {
        self.budget.get()
    }

    /// The client's settings.
    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    fn worst_case_usd(&self, body: &Value) -> f64 {
        let input_tokens = body.to_string().len() as u64 / 3 + 1;
        let usage = Usage { input_tokens, output_tokens: self.config.max_tokens as u64, ..Usage::default() };
        self.config.price().map_or(0.0, |p| p.cost_usd(&usage))
    }
}

impl Model for OpenAi {
    fn converse(&mut self, req: &Conversation, tools: &mut dyn ToolHost) -> Result<Outcome, AgentError> {
        let specs = tools.specs();
        let tools_json: Vec<Value> = specs
            .iter()
            .map(|s| {
                json!({"type": "function", "function": {
                    "name": s.name, "description": s.description, "parameters": s.input_schema
                }})
            })
            .collect();
        let mut messages =
            vec![json!({"role": "system", "content": req.system}), json!({"role": "user", "content": req.user})];
        let mut usage = Usage::default();
        let mut thinking = Vec::new();
        let mut tool_calls = 0;

        for turn in 1..=req.max_turns {
            let mut body =
                json!({"model": self.config.model, "max_tokens": self.config.max_tokens, "messages": messages});
            if !tools_json.is_empty() {
                body["tools"] = Value::Array(tools_json.clone());
            }
            if let Some(effort) = reasoning_effort(&self.config.model, req.effort) {
                body["reasoning_effort"] = json!(effort);
            }
            let budget = self.budget.get();
            budget.check_before_call(budget.estimate_next_call(self.worst_case_usd(&body)))?;

            let reply = Reply::parse(&self.poster.post(&body).map_err(|e| e.with_usage(&usage))?)?;
            usage.add(&reply.usage);
            self.budget.record(self.config.price().map_or(0.0, |p| p.cost_usd(&reply.usage)));
            thinking.extend(reply.reasoning.clone());
            tools.turn(reply.reasoning.as_slice(), reply.content.as_slice());

            if reply.calls.is_empty() {
                let thinking = (!thinking.is_empty()).then(|| thinking.join("\n\n"));
                return Ok(Outcome { text: reply.content.unwrap_or_default(), thinking, usage, tool_calls });
            }
            if turn == req.max_turns {
                break;
            }
            let mut assistant = reply.message;
            // Servers that send reasoning do not want it back (some refuse it).
            if let Some(m) = assistant.as_object_mut() {
                m.remove("reasoning_content");
            }
            messages.push(assistant);
            for call in &reply.calls {
                tool_calls += 1;
                let parsed: Result<Value, String> =
                    serde_json::from_str(&call.arguments).map_err(|e| format!("arguments are not valid JSON ({e})"));
                let result = dispatch(tools, &specs, &call.name, parsed.as_ref().map_err(Clone::clone));
                let content = match (result.is_error, result.content.is_empty()) {
                    (true, _) => format!("ERROR: {}", result.content),
                    (false, true) => "(no output)".to_string(),
                    (false, false) => result.content,
                };
                messages.push(json!({"role": "tool", "tool_call_id": call.id, "content": content}));
            }
        }
        Err(AgentError::TooManyTurns { max_turns: req.max_turns })
    }
}

/// One entry of `tool_calls`.
struct Call {
    id: String,
    name: String,
    arguments: String,
}

/// The parts of a chat-completions response we use.
struct Reply {
    /// `choices[0].message`, verbatim, to send back as the assistant turn.
    message: Value,
    content: Option<String>,
    reasoning: Option<String>,
    calls: Vec<Call>,
    usage: Usage,
}

impl Reply {
    fn parse(v: &Value) -> Result<Reply, AgentError> {
        let malformed = |what: String| AgentError::Malformed(what);
        let message = v
            .pointer("/choices/0/message")
            .filter(|m| m.is_object())
            .ok_or_else(|| malformed("no `choices[0].message` object".into()))?;
        let text = |name: &str| message.get(name).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        let mut calls = Vec::new();
        for call in message.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
            let field = |ptr: &str| {
                call.pointer(ptr)
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| malformed(format!("a tool call has no `{}` string", &ptr[1..])))
            };
            // Some servers send arguments as an object instead of a JSON string.
            let arguments = match call.pointer("/function/arguments") {
                Some(Value::String(s)) => s.clone(),
                Some(other @ Value::Object(_)) => other.to_string(),
                _ => String::new(),
            };
            calls.push(Call { id: field("/id")?, name: field("/function/name")?, arguments });
        }
        let count = |ptr: &str| v.pointer(ptr).and_then(Value::as_u64).unwrap_or(0);
        let cached = count("/usage/prompt_tokens_details/cached_tokens");
        let usage = Usage {
            input_tokens: count("/usage/prompt_tokens").saturating_sub(cached),
            output_tokens: count("/usage/completion_tokens"),
            cache_read_tokens: cached,
            cache_write_tokens: 0,
        };
        Ok(Reply {
            message: message.clone(),
            content: text("content"),
            reasoning: text("reasoning_content"),
            calls,
            usage,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_accepts_bases_with_or_without_v1() {
        assert_eq!(OpenAiConfig::new("m", "http://h:1").endpoint(), "http://h:1/v1/chat/completions");
        assert_eq!(OpenAiConfig::new("m", "http://h:1/v1/").endpoint(), "http://h:1/v1/chat/completions");
    }

    #[test]
    fn reasoning_effort_goes_to_reasoning_families_only() {
        assert_eq!(reasoning_effort("o3-mini", Effort::Low), Some("low"));
        assert_eq!(reasoning_effort("gpt-5.1", Effort::Max), Some("high"));
        assert_eq!(reasoning_effort("openai/o4-mini", Effort::Medium), Some("medium"));
        assert_eq!(reasoning_effort("gpt-4o", Effort::High), None);
        assert_eq!(reasoning_effort("qwen2.5-coder", Effort::High), None);
        assert_eq!(reasoning_effort("o10-local", Effort::High), None);
    }

    #[test]
    fn base_url_is_required() {
        let err = OpenAi::new(None, OpenAiConfig::new("m", "")).unwrap_err();
        assert!(err.to_string().contains("--api-base-url"), "{err}");
    }

    #[test]
    fn replies_parse() {
        let v = json!({
            "choices": [{"message": {"role": "assistant", "content": null, "reasoning_content": "think",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "grep", "arguments": "{\"pattern\":\"x\"}"}}]}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 40}}
        });
        let r = Reply::parse(&v).unwrap();
        assert_eq!(r.calls.len(), 1);
        assert_eq!(r.calls[0].arguments, r#"{"pattern":"x"}"#);
        assert_eq!(r.reasoning.as_deref(), Some("think"));
        assert_eq!(r.content, None);
        assert_eq!(r.usage, Usage { input_tokens: 60, output_tokens: 7, cache_read_tokens: 40, cache_write_tokens: 0 });
        assert!(matches!(Reply::parse(&json!({"choices": []})), Err(AgentError::Malformed(_))));
    }
}
