//! Model prices, output limits and thinking styles, for turning token usage into dollars and an
//! effort into request fields.
//!
//! Prices are Anthropic's list prices in US dollars per million tokens **as published on
//! <https://platform.claude.com/docs/en/about-claude/pricing> (checked 2026-12)**: input, output,
//! the 5-minute cache write and the cache read; long-context and data-residency surcharges are
//! ignored, and Haiku 5.5 is priced at its rate for prompts up to 100K tokens. They change: update
//! [`MODELS`] when they do. Model ids match by prefix, the longest prefix that ends where the id
//! ends or at a non-alphanumeric character winning, so dated ids such as
//! `claude-sonnet-4-5-20250929` find their family and `claude-fable-5-20260101` is not taken for
//! `claude-fable-5-2`. An id that matches nothing (a local model, a future family) has **no
//! price**: its cost shows as unknown, and `--budget-usd` then needs `--price-per-mtok`.

use super::Usage;

/// Prices in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// Uncached input.
    pub input: f64,
    /// Output (thinking included).
    pub output: f64,
    /// Writing input to the prompt cache.
    pub cache_write: f64,
    /// Reading input from the prompt cache.
    pub cache_read: f64,
}

impl Price {
    /// Free: for a local model whose tokens cost nothing.
    pub const ZERO: Price = Price { input: 0.0, output: 0.0, cache_write: 0.0, cache_read: 0.0 };

    /// `IN,OUT` in US dollars per million input and output tokens (`--price-per-mtok`); cache
    /// writes and reads are priced as Anthropic's (1.25 and 0.1 times the input price).
    pub fn parse_per_mtok(text: &str) -> Result<Price, String> {
        let bad = || {
            format!(
                "{text:?}: expected IN,OUT in US dollars per million tokens, e.g. 3,15 (0,0 for a free local model)"
            )
        };
        let (input, output) = text.split_once(',').ok_or_else(bad)?;
        let parse = |v: &str| v.trim().parse::<f64>().ok().filter(|p| p.is_finite() && *p >= 0.0);
        let (input, output) = (parse(input).ok_or_else(bad)?, parse(output).ok_or_else(bad)?);
        Ok(Price { input, output, cache_write: input * 1.25, cache_read: input * 0.1 })
    }

    /// The cost of `usage` at these prices, in US dollars.
    pub fn cost_usd(&self, usage: &Usage) -> f64 {
        (usage.input_tokens as f64 * self.input
            + usage.output_tokens as f64 * self.output
            + usage.cache_write_tokens as f64 * self.cache_write
            + usage.cache_read_tokens as f64 * self.cache_read)
            / 1e6
    }
}

/// How a model is asked to think (see [`crate::agent::Effort`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thinking {
    /// Extended thinking with a token budget (`thinking: {type: enabled, budget_tokens}`):
    /// Claude 4.5 and earlier.
    Budget,
    /// Adaptive thinking steered by an effort level (`thinking: {type: adaptive}`,
    /// `output_config: {effort}`): Claude Opus 4.6, Sonnet 4.6 and later.
    Adaptive,
}

/// One row of the table: a model id prefix, its prices, its largest `max_tokens` and how it thinks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelInfo {
    /// Model id prefix, e.g. `claude-sonnet-4`.
    pub prefix: &'static str,
    /// Its prices.
    pub price: Price,
    /// The most output tokens one request may ask for.
    pub max_output_tokens: u32,
    /// How it is asked to think.
    pub thinking: Thinking,
}

/// A row whose cache prices are the usual 1.25× (write) and 0.1× (read) of the input price.
const fn row(prefix: &'static str, input: f64, output: f64, max_output_tokens: u32, thinking: Thinking) -> ModelInfo {
    row_cached(prefix, input, output, input * 0.1, max_output_tokens, thinking)
}

/// A row with its own cache-read price.
const fn row_cached(
    prefix: &'static str,
    input: f64,
    output: f64,
    cache_read: f64,
    max_output_tokens: u32,
    thinking: Thinking,
) -> ModelInfo {
    ModelInfo {
        prefix,
        price: Price { input, output, cache_write: input * 1.25, cache_read },
        max_output_tokens,
        thinking,
    }
}

use Thinking::{Adaptive, Budget};

/// The known models (see the module documentation for where the numbers come from).
pub const MODELS: &[ModelInfo] = &[
    row_cached("claude-fable-5-2", 8.0, 40.0, 0.20, 128_000, Adaptive),
    row_cached("claude-mythos-5-2", 8.0, 40.0, 0.20, 128_000, Adaptive),
    row_cached("claude-fable-5-1", 10.0, 50.0, 0.25, 128_000, Adaptive),
    row_cached("claude-mythos-5-1", 10.0, 50.0, 0.25, 128_000, Adaptive),
    row("claude-fable-5", 10.0, 50.0, 128_000, Adaptive),
    row("claude-mythos-5", 10.0, 50.0, 128_000, Adaptive),
    row_cached("claude-opus-5-5", 4.0, 20.0, 0.20, 128_000, Adaptive),
    row("claude-opus-5", 5.0, 25.0, 128_000, Adaptive),
    row("claude-opus-4-8", 5.0, 25.0, 128_000, Adaptive),
    row("claude-opus-4-7", 5.0, 25.0, 128_000, Adaptive),
    row("claude-opus-4-6", 5.0, 25.0, 128_000, Adaptive),
    row("claude-opus-4-5", 5.0, 25.0, 64_000, Budget),
    row("claude-opus-4-1", 15.0, 75.0, 32_000, Budget),
    row("claude-opus-4", 15.0, 75.0, 32_000, Budget),
    row_cached("claude-sonnet-5-5", 2.0, 10.0, 0.10, 128_000, Adaptive),
    row("claude-sonnet-5", 2.0, 10.0, 128_000, Adaptive),
    row("claude-sonnet-4-6", 3.0, 15.0, 64_000, Adaptive),
    row("claude-sonnet-4-5", 3.0, 15.0, 64_000, Budget),
    row("claude-sonnet-4", 3.0, 15.0, 64_000, Budget),
    row("claude-haiku-5-5", 0.10, 0.50, 128_000, Adaptive),
    row("claude-haiku-4-5", 1.0, 5.0, 64_000, Budget),
    row("claude-haiku-4", 1.0, 5.0, 64_000, Budget),
];

/// The table row for `model` (longest matching prefix ending at a boundary), `None` when the
/// model is unknown.
pub fn lookup(model: &str) -> Option<&'static ModelInfo> {
    let at_boundary = |prefix: &str| {
        model.starts_with(prefix) && model[prefix.len()..].chars().next().is_none_or(|c| !c.is_ascii_alphanumeric())
    };
    MODELS.iter().filter(|m| at_boundary(m.prefix)).max_by_key(|m| m.prefix.len())
}

/// The prices of `model`, `None` when the table does not know it.
pub fn price_for(model: &str) -> Option<Price> {
    lookup(model).map(|m| m.price)
}

/// The largest `max_tokens` `model` accepts; unknown models get the smallest known limit.
pub fn max_output_tokens(model: &str) -> u32 {
    lookup(model)
        .map(|m| m.max_output_tokens)
        .unwrap_or_else(|| MODELS.iter().map(|m| m.max_output_tokens).min().expect("the table is not empty"))
}

/// How `model` is asked to think: unknown ids get the budget style, which every Claude model
/// up to 4.5 takes.
pub fn thinking(model: &str) -> Thinking {
    lookup(model).map(|m| m.thinking).unwrap_or(Thinking::Budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_dated_ids_and_longest_wins() {
        assert_eq!(lookup("claude-sonnet-4-5-20250929").unwrap().prefix, "claude-sonnet-4-5");
        assert_eq!(lookup("claude-sonnet-4-20250514").unwrap().prefix, "claude-sonnet-4");
        assert_eq!(lookup("claude-opus-4-5-20251101").unwrap().price.output, 25.0);
        assert_eq!(lookup("claude-opus-4-1-20250805").unwrap().price.output, 75.0);
        assert_eq!(lookup("claude-haiku-4-5").unwrap().price.input, 1.0);
        assert!(lookup("qwen2.5-coder").is_none());
        // A date is not a minor version: claude-fable-5-<date> is Fable 5, not Fable 5.2.
        assert_eq!(lookup("claude-fable-5-20260101").unwrap().prefix, "claude-fable-5");
        assert_eq!(lookup("claude-opus-5-5[1m]").unwrap().prefix, "claude-opus-5-5");
        assert!(lookup("claude-opus-40").is_none());
    }

    #[test]
    fn upstream_s_models_have_their_own_prices() {
        // tools/bfoptimizer's list: claude-fable-5, claude-opus-4-8, claude-sonnet-4-6, claude-haiku-4-5.
        for (model, input, output, thinking) in [
            ("claude-fable-5", 10.0, 50.0, Thinking::Adaptive),
            ("claude-opus-4-8", 5.0, 25.0, Thinking::Adaptive),
            ("claude-opus-4-6", 5.0, 25.0, Thinking::Adaptive),
            ("claude-sonnet-4-6", 3.0, 15.0, Thinking::Adaptive),
            ("claude-haiku-4-5", 1.0, 5.0, Thinking::Budget),
            ("claude-opus-4-1", 15.0, 75.0, Thinking::Budget),
        ] {
            let m = lookup(model).unwrap_or_else(|| panic!("{model} is not in the table"));
            assert_eq!((m.price.input, m.price.output, m.thinking), (input, output, thinking), "{model}");
        }
        assert_eq!(price_for("claude-opus-5-5").unwrap().cache_read, 0.20);
    }

    #[test]
    fn cost_counts_every_kind_of_token() {
        let p = price_for("claude-sonnet-4-5").unwrap();
        let u =
            Usage { input_tokens: 1_000_000, output_tokens: 1_000_000, cache_read_tokens: 0, cache_write_tokens: 0 };
        assert!((p.cost_usd(&u) - 18.0).abs() < 1e-9);
        let u =
            Usage { input_tokens: 0, output_tokens: 0, cache_read_tokens: 1_000_000, cache_write_tokens: 1_000_000 };
        assert!((p.cost_usd(&u) - (0.3 + 3.75)).abs() < 1e-9);
        assert!((u.cost_usd("claude-sonnet-4-5").unwrap() - p.cost_usd(&u)).abs() < 1e-12);
        assert_eq!(Price::ZERO.cost_usd(&u), 0.0);
    }

    #[test]
    fn unknown_models_have_no_price() {
        let u = Usage { input_tokens: 1000, output_tokens: 1000, ..Usage::default() };
        assert_eq!(u.cost_usd("some-local-model"), None);
        assert_eq!(price_for("some-local-model"), None);
        assert_eq!(max_output_tokens("some-local-model"), 32_000);
        assert_eq!(thinking("some-local-model"), Thinking::Budget);
        assert_eq!(max_output_tokens("claude-opus-4-1-20250805"), 32_000);
    }

    #[test]
    fn prices_per_mtok_parse() {
        let p = Price::parse_per_mtok("3,15").unwrap();
        assert_eq!((p.input, p.output, p.cache_write, p.cache_read), (3.0, 15.0, 3.75, 3.0 * 0.1));
        assert_eq!(Price::parse_per_mtok(" 0 , 0 ").unwrap(), Price::ZERO);
        for bad in ["3", "a,b", "-1,2", "1,inf", ""] {
            assert!(Price::parse_per_mtok(bad).unwrap_err().contains("IN,OUT"), "{bad}");
        }
    }
}
