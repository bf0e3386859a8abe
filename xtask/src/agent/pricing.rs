//! Model prices and output limits, for turning token usage into dollars.
//!
//! Prices are Anthropic's list prices in US dollars per million tokens **as published when this
//! table was written** (cache write = the 5-minute cache, long-context surcharges ignored); they
//! change, so check <https://www.anthropic.com/pricing> and update [`MODELS`] when they do.
//! Model ids match by prefix, the longest prefix winning, so dated ids such as
//! `claude-sonnet-4-5-20250929` find their family. An id that matches nothing (a local model, a
//! future family) is charged at the **most expensive** known price: a budget then stops a run too
//! early rather than too late.

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

    /// The cost of `usage` at these prices, in US dollars.
    pub fn cost_usd(&self, usage: &Usage) -> f64 {
        (usage.input_tokens as f64 * self.input
            + usage.output_tokens as f64 * self.output
            + usage.cache_write_tokens as f64 * self.cache_write
            + usage.cache_read_tokens as f64 * self.cache_read)
            / 1e6
    }
}

/// One row of the table: a model id prefix, its prices and its largest `max_tokens`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelInfo {
    /// Model id prefix, e.g. `claude-sonnet-4`.
    pub prefix: &'static str,
    /// Its prices.
    pub price: Price,
    /// The most output tokens one request may ask for.
    pub max_output_tokens: u32,
}

const fn row(prefix: &'static str, input: f64, output: f64, max_output_tokens: u32) -> ModelInfo {
    ModelInfo {
        prefix,
        price: Price { input, output, cache_write: input * 1.25, cache_read: input * 0.1 },
        max_output_tokens,
    }
}

/// The known models (see the module documentation for where the numbers come from).
pub const MODELS: &[ModelInfo] = &[
    row("claude-opus-4-5", 5.0, 25.0, 64_000),
    row("claude-opus-4-1", 15.0, 75.0, 32_000),
    row("claude-opus-4", 15.0, 75.0, 32_000),
    row("claude-sonnet-4-5", 3.0, 15.0, 64_000),
    row("claude-sonnet-4", 3.0, 15.0, 64_000),
    row("claude-haiku-4-5", 1.0, 5.0, 64_000),
    row("claude-haiku-4", 1.0, 5.0, 64_000),
];

/// The table row for `model` (longest matching prefix), `None` when the model is unknown.
pub fn lookup(model: &str) -> Option<&'static ModelInfo> {
    MODELS.iter().filter(|m| model.starts_with(m.prefix)).max_by_key(|m| m.prefix.len())
}

/// The prices of `model`; an unknown model gets the most expensive known prices.
pub fn price_for(model: &str) -> Price {
    lookup(model).map(|m| m.price).unwrap_or_else(most_expensive)
}

/// The largest `max_tokens` `model` accepts; unknown models get the smallest known limit.
pub fn max_output_tokens(model: &str) -> u32 {
    lookup(model)
        .map(|m| m.max_output_tokens)
        .unwrap_or_else(|| MODELS.iter().map(|m| m.max_output_tokens).min().expect("the table is not empty"))
}

fn most_expensive() -> Price {
    MODELS.iter().map(|m| m.price).max_by(|a, b| a.output.total_cmp(&b.output)).expect("the table is not empty")
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
    }

    #[test]
    fn cost_counts_every_kind_of_token() {
        let p = price_for("claude-sonnet-4-5");
        let u =
            Usage { input_tokens: 1_000_000, output_tokens: 1_000_000, cache_read_tokens: 0, cache_write_tokens: 0 };
        assert!((p.cost_usd(&u) - 18.0).abs() < 1e-9);
        let u =
            Usage { input_tokens: 0, output_tokens: 0, cache_read_tokens: 1_000_000, cache_write_tokens: 1_000_000 };
        assert!((p.cost_usd(&u) - (0.3 + 3.75)).abs() < 1e-9);
        assert!((u.cost_usd("claude-sonnet-4-5") - p.cost_usd(&u)).abs() < 1e-12);
        assert_eq!(Price::ZERO.cost_usd(&u), 0.0);
    }

    #[test]
    fn unknown_models_cost_the_most() {
        let u = Usage { input_tokens: 1000, output_tokens: 1000, ..Usage::default() };
        let unknown = u.cost_usd("some-local-model");
        for m in MODELS {
            assert!(unknown >= m.price.cost_usd(&u));
        }
        assert_eq!(price_for("some-local-model").output, 75.0);
        assert_eq!(max_output_tokens("some-local-model"), 32_000);
        assert_eq!(max_output_tokens("claude-opus-4-1-20250805"), 32_000);
    }
}
