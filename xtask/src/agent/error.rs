//! Everything that can go wrong talking to a model, each with a message that says what to do.
//!
//! No variant ever holds the API key: messages quoted from an API response are passed through
//! [`crate::agent::secret::ApiKey::redact`] before they get here.

use std::time::Duration;

/// An error from a model backend.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// No API key in the environment.
    #[error("ANTHROPIC_API_KEY is not set: export it, or use --agent-command / --api-base-url for a local model")]
    MissingApiKey,

    /// An OpenAI-compatible backend was chosen without a base URL.
    #[error("an OpenAI-compatible endpoint needs --api-base-url (e.g. http://127.0.0.1:8080/v1)")]
    MissingBaseUrl,

    /// A plain `http://` URL to a host other than loopback: the key would cross the network in clear.
    #[error("refusing the model API URL {0}: plain http:// is only allowed to a loopback address (127.0.0.1, ::1, localhost); use https://")]
    InsecureUrl(String),

    /// The API answered with a redirect, which is not followed (the key would go along).
    #[error("the model API at {url} answered with a redirect (HTTP {status} to {location}); redirects are not followed, so the key goes nowhere else: set --api-base-url (or ANTHROPIC_BASE_URL) to the final address")]
    Redirected {
        /// The URL that was called.
        url: String,
        /// The 3xx status.
        status: u16,
        /// Where it pointed (`nowhere` without a `location` header).
        location: String,
    },

    /// Ctrl-C during a model call or an agent command, which was ended.
    #[error("interrupted (Ctrl-C) during the model call")]
    Interrupted {
        /// What the conversation used before it was cut short (the call in flight is not counted:
        /// its usage is unknown).
        usage: crate::agent::Usage,
    },

    /// The API refused the key (HTTP 401 or 403).
    #[error("the API rejected the key (HTTP {status}): check {key_var}")]
    Unauthorized {
        /// The HTTP status (401 or 403).
        status: u16,
        /// The environment variable the key came from.
        key_var: &'static str,
    },

    /// The endpoint could not be reached at all.
    #[error("cannot reach the model API at {0}: {1} (check the network, --api-base-url or ANTHROPIC_BASE_URL)")]
    Unreachable(String, String),

    /// HTTP 429 on every try.
    #[error("the API is rate-limiting us (HTTP 429) after {tries} tries: wait a few minutes, then rerun (or --resume){}", detail_suffix(.detail))]
    RateLimited {
        /// How many requests were made.
        tries: u32,
        /// The API's own message, if any.
        detail: String,
    },

    /// HTTP 529 (overloaded) on every try.
    #[error("the API is overloaded (HTTP 529) after {tries} tries: try again later (or --resume){}", detail_suffix(.detail))]
    Overloaded {
        /// How many requests were made.
        tries: u32,
        /// The API's own message, if any.
        detail: String,
    },

    /// HTTP 5xx on every try.
    #[error("the API failed with HTTP {status} after {tries} tries: try again later (or --resume){}", detail_suffix(.detail))]
    ServerError {
        /// The last HTTP status.
        status: u16,
        /// How many requests were made.
        tries: u32,
        /// The API's own message, if any.
        detail: String,
    },

    /// Any other HTTP 4xx: the request itself was refused (unknown model, bad parameter...).
    #[error("the API refused the request (HTTP {status}): {detail} (check --model and the endpoint)")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The API's own message.
        detail: String,
    },

    /// The response was not what the API documents (bad JSON, missing fields, unknown blocks).
    #[error("the model API sent a malformed response: {0}")]
    Malformed(String),

    /// The next call could take the run over `--budget-usd`.
    #[error("stopping before the next model call: it could take spending past the budget of {} ({} spent so far); raise --budget-usd to continue", usd(*.budget), usd(*.spent))]
    BudgetExceeded {
        /// US dollars spent so far.
        spent: f64,
        /// The limit in US dollars.
        budget: f64,
    },

    /// The model was still calling tools after the last allowed turn.
    #[error("the model was still calling tools after {max_turns} turns: raise the turn limit or narrow the task")]
    TooManyTurns {
        /// The turn limit that was hit.
        max_turns: usize,
    },

    /// The agent command could not be started.
    #[error("cannot start the agent command `{command}`: {reason}")]
    CommandSpawn {
        /// The command line.
        command: String,
        /// Why.
        reason: String,
    },

    /// The agent command exited with a failure.
    #[error("the agent command `{command}` failed ({status}); last lines of its stderr:\n{stderr_tail}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// How it exited.
        status: String,
        /// The end of its standard error.
        stderr_tail: String,
    },

    /// The agent command ran past its timeout and was killed.
    #[error("the agent command `{command}` ran longer than {}s and was killed: raise the agent timeout or simplify the task", .timeout.as_secs())]
    CommandTimedOut {
        /// The command line.
        command: String,
        /// The timeout it exceeded.
        timeout: Duration,
    },
}

/// Dollars with cents, or four decimals below one dollar.
fn usd(v: f64) -> String {
    if v.abs() >= 1.0 {
        format!("${v:.2}")
    } else {
        format!("${v:.4}")
    }
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" [{detail}]")
    }
}

impl AgentError {
    /// True when rerunning later may succeed (rate limits, overload, outages, network).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            AgentError::Unreachable(..)
                | AgentError::RateLimited { .. }
                | AgentError::Overloaded { .. }
                | AgentError::ServerError { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_to_do() {
        let e = AgentError::Unauthorized { status: 401, key_var: "ANTHROPIC_API_KEY" };
        assert_eq!(e.to_string(), "the API rejected the key (HTTP 401): check ANTHROPIC_API_KEY");
        assert!(AgentError::MissingApiKey.to_string().contains("export it"));
        let e = AgentError::BudgetExceeded { spent: 0.5, budget: 1.0 };
        assert!(e.to_string().contains("$1.00 ($0.5000 spent") && e.to_string().contains("--budget-usd"), "{e}");
        let e = AgentError::Overloaded { tries: 5, detail: String::new() };
        assert!(!e.to_string().contains('['));
        assert!(e.is_transient());
        assert!(!AgentError::MissingApiKey.is_transient());
    }
}
