//! Model access for the optimize loop: one trait, [`Model`], over three backends.
//!
//! * [`anthropic::Anthropic`]: the Anthropic Messages API with tool use and extended thinking.
//! * [`openai::OpenAi`]: any OpenAI-compatible `/v1/chat/completions` endpoint (local models).
//! * [`command::AgentCommand`]: an external coding-agent command run in the worktree.
//!
//! The tools a model gets are ours, in Rust ([`tools::FileTools`]): reads anywhere in the worktree,
//! writes only under the scope directory, confined by construction. Every HTTP call goes through
//! [`http`], which retries on 429/5xx/overloaded and never lets the API key reach an error, a log
//! or `Debug` output ([`secret::ApiKey`]). [`budget::Budget`] stops a run *before* a call that
//! could exceed `--budget-usd`.

pub mod anthropic;
pub mod budget;
pub mod command;
pub mod error;
pub mod http;
pub mod openai;
pub(crate) mod paths;
pub mod pricing;
pub mod secret;
pub mod tools;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

pub use budget::{Budget, SharedBudget};
pub use error::AgentError;
pub use secret::ApiKey;
pub use tools::FileTools;

/// `Err(Interrupted)` once Ctrl-C was pressed ([`bench_harness::interrupt`]), polled while a model
/// call or an agent command is waited for. Unit tests interrupt one thread only ([`tests::interrupt_this_thread_when`]).
pub(crate) fn check_interrupt() -> Result<(), AgentError> {
    #[cfg(test)]
    if tests::INTERRUPT_WHEN.with(|when| when.borrow().as_ref().is_some_and(|pressed| pressed())) {
        return Err(AgentError::Interrupted { usage: Usage::default() });
    }
    if bench_harness::interrupt::requested() {
        return Err(AgentError::Interrupted { usage: Usage::default() });
    }
    Ok(())
}

impl AgentError {
    /// For a conversation cut short by Ctrl-C: the same error carrying `usage`, what it used so far.
    pub(crate) fn with_usage(self, used: &Usage) -> AgentError {
        match self {
            AgentError::Interrupted { .. } => AgentError::Interrupted { usage: *used },
            other => other,
        }
    }
}

/// A backend that can hold a tool-using conversation with a model.
pub trait Model {
    /// Run a conversation until the model stops calling tools or `max_turns` is hit.
    ///
    /// Every request to the model is one turn; a model still asking for tools after
    /// `req.max_turns` requests ends the conversation with [`AgentError::TooManyTurns`].
    fn converse(&mut self, req: &Conversation, tools: &mut dyn ToolHost) -> Result<Outcome, AgentError>;

    /// Say which step of the optimize loop the next conversations are. The model APIs need not
    /// know (the prompt says it); an external agent gets it in its environment
    /// ([`command::AgentCommand`]).
    fn set_step(&mut self, _step: &StepInfo) {}
}

/// Which step of the optimize loop a conversation is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepInfo {
    /// `propose` or `implement`.
    pub step: &'static str,
    /// The plan to implement (the implement step).
    pub plan: Option<String>,
    /// The scope directory, relative to the worktree.
    pub scope: String,
    /// The attempt's worktree.
    pub worktree: std::path::PathBuf,
    /// 0 for the first implementation, then one more per fix after a failed validation.
    pub fix_round: usize,
}

impl StepInfo {
    /// The planning step.
    pub fn propose(worktree: &std::path::Path, scope: &str) -> StepInfo {
        StepInfo { step: "propose", plan: None, scope: scope.into(), worktree: worktree.into(), fix_round: 0 }
    }

    /// The implementation step of `plan`, its `fix_round`-th fix.
    pub fn implement(worktree: &std::path::Path, scope: &str, plan: &str, fix_round: usize) -> StepInfo {
        StepInfo {
            step: "implement",
            plan: Some(plan.into()),
            scope: scope.into(),
            worktree: worktree.into(),
            fix_round,
        }
    }
}

/// What to ask the model: a system prompt, one user message and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// The system prompt (role, rules, output format).
    pub system: String,
    /// The user message that starts the conversation (the task).
    pub user: String,
    /// The most model requests this conversation may make.
    pub max_turns: usize,
    /// How hard the model should think (extended thinking budget).
    pub effort: Effort,
}

/// How much extended thinking to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effort {
    /// No extended thinking.
    Low,
    /// A small thinking budget (4,000 tokens).
    #[default]
    Medium,
    /// A large thinking budget (16,000 tokens).
    High,
    /// The largest thinking budget (32,000 tokens).
    Max,
}

impl Effort {
    /// Every effort level, lowest first.
    pub const ALL: [Effort; 4] = [Effort::Low, Effort::Medium, Effort::High, Effort::Max];

    /// The extended-thinking token budget for this effort, `None` for no thinking.
    pub fn thinking_budget(self) -> Option<u32> {
        match self {
            Effort::Low => None,
            Effort::Medium => Some(4_000),
            Effort::High => Some(16_000),
            Effort::Max => Some(32_000),
        }
    }

    /// The lowercase name used on the command line and in history files.
    pub fn as_str(self) -> &'static str {
        match self {
            Effort::Low => "low",
            Effort::Medium => "medium",
            Effort::High => "high",
            Effort::Max => "max",
        }
    }
}

impl fmt::Display for Effort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Effort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Effort::ALL
            .into_iter()
            .find(|e| e.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown effort '{s}': use one of low, medium, high, max"))
    }
}

/// What a conversation produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// The text of the model's final answer (text blocks of the last response).
    pub text: String,
    /// The model's extended thinking across all turns, if it produced any.
    pub thinking: Option<String>,
    /// Tokens used, summed over every request of the conversation.
    pub usage: Usage,
    /// How many tool calls the model made (including refused and failed ones).
    pub tool_calls: usize,
}

/// Token counts of one or more model requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Uncached input tokens.
    pub input_tokens: u64,
    /// Output tokens (thinking included).
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_write_tokens: u64,
}

impl Usage {
    /// Add `other` to these counts.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
    }

    /// The cost of these tokens in US dollars at `model`'s prices (see [`pricing`]); `None` for a
    /// model the table does not know.
    pub fn cost_usd(&self, model: &str) -> Option<f64> {
        pricing::price_for(model).map(|p| p.cost_usd(self))
    }
}

/// A tool offered to the model: its name, what it does, and a JSON Schema of its input.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// The name the model calls the tool by.
    pub name: String,
    /// What the tool does, for the model.
    pub description: String,
    /// JSON Schema of the tool's input object.
    pub input_schema: serde_json::Value,
}

/// The result of one tool call, sent back to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolResult {
    /// The text the model sees.
    pub content: String,
    /// True when the call failed or was refused.
    pub is_error: bool,
}

impl ToolResult {
    /// A successful result.
    pub fn ok(content: impl Into<String>) -> Self {
        ToolResult { content: content.into(), is_error: false }
    }

    /// A failed or refused call; `message` tells the model what went wrong.
    pub fn error(message: impl Into<String>) -> Self {
        ToolResult { content: message.into(), is_error: true }
    }
}

/// The tools a conversation may use, and their implementation.
pub trait ToolHost {
    /// The tools offered to the model.
    fn specs(&self) -> Vec<ToolSpec>;
    /// Run tool `name` with `input`; failures are results with `is_error`, never panics.
    fn call(&mut self, name: &str, input: &serde_json::Value) -> ToolResult;
    /// What the model wrote in one turn, before its tool calls run (or its final answer):
    /// its thinking blocks and its text blocks. For the live view; ignored by default.
    fn turn(&mut self, _thinking: &[String], _text: &[String]) {}
    /// One line of an external agent's own progress output (its standard error), as it arrives,
    /// raw (bounded, but not neutralised). For the live view; ignored by default.
    fn output(&mut self, _line: &str) {}
}

/// A [`ToolHost`] offering no tools, for conversations that only need text.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTools;

impl ToolHost for NoTools {
    fn specs(&self) -> Vec<ToolSpec> {
        Vec::new()
    }

    fn call(&mut self, name: &str, _input: &serde_json::Value) -> ToolResult {
        ToolResult::error(format!("unknown tool {name}: no tools are available"))
    }
}

/// Run one tool call the model asked for, guarding against names the host does not offer and
/// inputs that are not JSON objects (`input` is `Err` with a reason when it could not be parsed).
pub(crate) fn dispatch(
    tools: &mut dyn ToolHost,
    specs: &[ToolSpec],
    name: &str,
    input: Result<&serde_json::Value, String>,
) -> ToolResult {
    if !specs.iter().any(|s| s.name == name) {
        let known: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        return ToolResult::error(format!("unknown tool {name}; available tools: {}", known.join(", ")));
    }
    match input {
        Err(reason) => ToolResult::error(format!("malformed input for {name}: {reason}")),
        Ok(v) if !v.is_object() => ToolResult::error(format!("malformed input for {name}: expected a JSON object")),
        Ok(v) => tools.call(name, v),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;
    use std::cell::RefCell;

    /// A condition standing for "Ctrl-C was pressed".
    type Pressed = Box<dyn Fn() -> bool>;

    thread_local! {
        /// Ctrl-C as [`check_interrupt`] sees it on this test thread only (the real flag is
        /// process-wide and cannot be cleared).
        pub(crate) static INTERRUPT_WHEN: RefCell<Option<Pressed>> = const { RefCell::new(None) };
    }

    /// Make [`check_interrupt`] fail on this thread once `pressed` holds (polled while a model
    /// call or a command is waited for), so a test interrupts at a known point, not after a delay.
    pub(crate) fn interrupt_this_thread_when(pressed: impl Fn() -> bool + 'static) {
        INTERRUPT_WHEN.with(|when| *when.borrow_mut() = Some(Box::new(pressed)));
    }

    #[test]
    fn effort_parses_and_prints() {
        for e in Effort::ALL {
            assert_eq!(e.to_string().parse::<Effort>().unwrap(), e);
        }
        assert_eq!("MAX".parse::<Effort>().unwrap(), Effort::Max);
        assert!("extreme".parse::<Effort>().unwrap_err().contains("low, medium, high, max"));
        assert_eq!(Effort::Low.thinking_budget(), None);
        assert_eq!(Effort::High.thinking_budget(), Some(16_000));
    }

    #[test]
    fn usage_adds() {
        let mut u = Usage { input_tokens: 1, output_tokens: 2, cache_read_tokens: 3, cache_write_tokens: 4 };
        u.add(&u.clone());
        assert_eq!(u, Usage { input_tokens: 2, output_tokens: 4, cache_read_tokens: 6, cache_write_tokens: 8 });
    }

    struct Echo;
    impl ToolHost for Echo {
        fn specs(&self) -> Vec<ToolSpec> {
            vec![ToolSpec { name: "echo".into(), description: "echo".into(), input_schema: json!({}) }]
        }
        fn call(&mut self, _name: &str, input: &serde_json::Value) -> ToolResult {
            ToolResult::ok(input.to_string())
        }
    }

    #[test]
    fn dispatch_guards_names_and_inputs() {
        let mut host = Echo;
        let specs = host.specs();
        let r = dispatch(&mut host, &specs, "rm_rf", Ok(&json!({})));
        assert!(r.is_error && r.content.contains("unknown tool rm_rf"), "{r:?}");
        let r = dispatch(&mut host, &specs, "echo", Ok(&json!("str")));
        assert!(r.is_error && r.content.contains("malformed"), "{r:?}");
        let r = dispatch(&mut host, &specs, "echo", Err("bad json".into()));
        assert!(r.is_error && r.content.contains("bad json"), "{r:?}");
        let r = dispatch(&mut host, &specs, "echo", Ok(&json!({"a": 1})));
        assert_eq!(r, ToolResult::ok(r#"{"a":1}"#));
    }
}
