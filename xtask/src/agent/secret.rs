//! [`ApiKey`]: an API key that cannot leak through `Debug`, `Display` or an error message.

use std::fmt;

/// What replaces the key wherever it would otherwise be shown.
pub const REDACTED: &str = "[redacted]";

/// An API key. `Debug` prints `ApiKey([redacted])`; there is no `Display`, and the only way to
/// the secret is [`ApiKey::expose`], used when building a request header.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wrap a key; `None` when it is empty or only whitespace.
    pub fn new(key: impl Into<String>) -> Option<Self> {
        let key = key.into().trim().to_string();
        (!key.is_empty()).then_some(ApiKey(key))
    }

    /// Read the key from environment variable `var`; `None` when unset or empty.
    pub fn from_env(var: &str) -> Option<Self> {
        std::env::var(var).ok().and_then(ApiKey::new)
    }

    /// The secret itself, for a request header. Never format or log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the key replaced by `[redacted]` (for quoting API messages).
    pub fn redact(&self, text: &str) -> String {
        text.replace(&self.0, REDACTED)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({REDACTED})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_never_shows() {
        let key = ApiKey::new(" sk-test-SECRET-123\n").unwrap();
        assert_eq!(key.expose(), "sk-test-SECRET-123");
        assert!(!format!("{key:?}").contains("SECRET"));
        assert_eq!(key.redact("bad key sk-test-SECRET-123!"), "bad key [redacted]!");
        assert!(ApiKey::new("  ").is_none());
    }
}
