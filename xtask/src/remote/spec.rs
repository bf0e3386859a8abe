//! `--host [ssh://][USER@]HOST[:PORT]`: which machine to benchmark on.

use anyhow::{bail, Result};
use std::fmt;

/// A benchmark host as given on the command line. `HOST` may also be an
/// alias of the user's `~/.ssh/config`: ssh resolves it, bfperf does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// Login name, when given (else ssh's default: the config's or the local user's).
    pub user: Option<String>,
    /// Host name, address or ssh alias.
    pub host: String,
    /// Port, when given.
    pub port: Option<u16>,
}

impl HostSpec {
    /// Parse `[ssh://][USER@]HOST[:PORT]` (`[v6addr]:PORT` for IPv6).
    pub fn parse(text: &str) -> Result<Self> {
        let usage = "use --host [USER@]HOST[:PORT], e.g. --host root@bench-box or --host root@10.0.0.5:2222";
        let rest = text.strip_prefix("ssh://").unwrap_or(text);
        // A leading `-` would reach ssh as an option.
        if rest.is_empty() || rest.starts_with('-') || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            bail!("--host {text:?} is not a host: {usage}");
        }
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) if !u.is_empty() && !u.starts_with('-') => (Some(u.to_owned()), h),
            Some(_) => bail!("--host {text:?} has an empty or invalid user name: {usage}"),
            None => (None, rest),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (addr, after) = v6.split_once(']').ok_or_else(|| anyhow::anyhow!("--host {text:?}: unclosed '['"))?;
            (addr.to_owned(), after.strip_prefix(':'))
        } else if hostport.matches(':').count() == 1 {
            let (h, p) = hostport.split_once(':').expect("one colon");
            (h.to_owned(), Some(p))
        } else {
            (hostport.to_owned(), None)
        };
        if host.is_empty() || host.starts_with('-') || host.contains('/') {
            bail!("--host {text:?} has no valid host name: {usage}");
        }
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => Some(n),
                _ => bail!("--host {text:?}: {p:?} is not a port number (1-65535)"),
            },
        };
        Ok(HostSpec { user, host, port })
    }

    /// `USER@HOST` (or `HOST`), the destination argument of ssh.
    pub fn destination(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }

    /// A filesystem-safe key naming this host in the local cache: results
    /// measured on one machine are never mixed with another's.
    pub fn cache_key(&self) -> String {
        let raw = match self.port {
            Some(p) => format!("{}_{p}", self.destination()),
            None => self.destination(),
        };
        raw.chars().map(|c| if c.is_ascii_alphanumeric() || "@._-".contains(c) { c } else { '_' }).collect()
    }
}

impl fmt::Display for HostSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) if self.host.contains(':') => write!(f, "{}[{}]:{p}", self.user_prefix(), self.host),
            Some(p) => write!(f, "{}:{p}", self.destination()),
            None => write!(f, "{}", self.destination()),
        }
    }
}

impl HostSpec {
    fn user_prefix(&self) -> String {
        self.user.as_ref().map(|u| format!("{u}@")).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse_with_and_without_user_and_port() {
        let h = HostSpec::parse("root@127.0.0.1:2222").unwrap();
        assert_eq!((h.user.as_deref(), h.host.as_str(), h.port), (Some("root"), "127.0.0.1", Some(2222)));
        assert_eq!(h.destination(), "root@127.0.0.1");
        assert_eq!(h.to_string(), "root@127.0.0.1:2222");
        assert_eq!(h.cache_key(), "root@127.0.0.1_2222");
        let h = HostSpec::parse("ssh://bench-box").unwrap();
        assert_eq!((h.user, h.host.as_str(), h.port), (None, "bench-box", None));
        let h = HostSpec::parse("me@[::1]:22").unwrap();
        assert_eq!((h.host.as_str(), h.port), ("::1", Some(22)));
        assert_eq!(h.to_string(), "me@[::1]:22");
        assert_eq!(HostSpec::parse("::1").unwrap().host, "::1");
    }

    #[test]
    fn bad_hosts_are_refused_with_the_syntax() {
        for bad in ["", "-oProxyCommand=x", "root@", "@host", "a b", "host:0", "host:99999", "host:x", "u@-x", "h/x"] {
            let err = HostSpec::parse(bad).unwrap_err().to_string();
            assert!(err.contains("--host"), "{bad}: {err}");
        }
    }
}
