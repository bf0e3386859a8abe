//! Whether the remote directory is the login's own. Root on the host runs
//! `bin/bfperf-*`, tar and `rm -rf` in it: a directory another user created
//! first, or may write to, would let that user replace the harness.
//!
//! The survey lists every existing component from the remote directory up
//! to (not including) the home, or `/` when it is not under the home, both
//! as written (a symbolic link is judged by its owner) and resolved (`cd -P`).
//! Each must be owned by the login or root and writable by no one else; a
//! sticky directory every user may write to (`/tmp`, `/var/tmp`) is accepted
//! above a component the login owns, since only that owner (or root) may
//! rename or remove it there. The remote directory itself must be the
//! login's. Components that do not exist yet are created one by one with
//! `mkdir -m 700` (which fails when someone else made one meanwhile) and the
//! chain is listed and judged again: from then on, only the login and root
//! can change it.

use super::ssh::quote;
use anyhow::{bail, Result};
use std::path::{Component, Path, PathBuf};

/// Tag of the survey's lines; anything else (a login banner) is ignored.
const TAG: &str = "@bfperf ";

/// The remote directory and its parents below the home (or `/`), deepest
/// first, as remote shell words (`"$HOME"/'.cache/bfperf'` for a relative one).
fn prefixes(remote_dir: &str) -> Vec<String> {
    let path = Path::new(remote_dir);
    let absolute = path.has_root();
    let parts: Vec<&str> =
        path.components().filter_map(|c| if let Component::Normal(s) = c { s.to_str() } else { None }).collect();
    (1..=parts.len())
        .rev()
        .map(|n| {
            let rel = parts[..n].join("/");
            if absolute {
                quote(&format!("/{rel}"))
            } else {
                format!("\"$HOME\"/{}", quote(&rel))
            }
        })
        .collect()
}

/// Shell text printing `@bfperf home`, `physhome` (resolved) and `uid`,
/// `@bfperf lex MODE UID PATH` for each of `words`
/// (`- -` when missing), then `@bfperf phys MODE UID PATH` for every
/// directory from the deepest existing one, resolved, up to `/`.
fn listing(words: &[String]) -> String {
    let list = words.join(" ");
    // `set -f`: ls's fields are split, never globbed. ls -ldn: POSIX, numeric owner.
    format!(
        "printf '{TAG}home %s\\n' \"$HOME\"; \
         printf '{TAG}physhome %s\\n' \"$(cd -P -- \"$HOME\" 2>/dev/null && pwd -P)\"; printf '{TAG}uid %s\\n' \"$(id -u)\"; \
         set -f; \
         for p in {list}; do if [ -e \"$p\" ] || [ -h \"$p\" ]; then set -- $(ls -ldn -- \"$p\"); \
         printf '{TAG}lex %s %s %s\\n' \"$1\" \"$3\" \"$p\"; else printf '{TAG}lex - - %s\\n' \"$p\"; fi; done; \
         for p in {list}; do if [ -d \"$p\" ]; then r=$(cd -P -- \"$p\" && pwd -P) || break; while :; do \
         set -- $(ls -ldn -- \"$r\"); printf '{TAG}phys %s %s %s\\n' \"$1\" \"$3\" \"$r\"; \
         [ \"$r\" = / ] && break; r=$(dirname -- \"$r\"); done; break; fi; done"
    )
}

/// The survey: `@bfperf arch`, the [`listing`] of the remote directory's chain, and `installed yes|no` for `harness` (a
/// path relative to the remote directory).
pub fn survey_script(remote_dir: &str, harness: &str) -> String {
    let words = prefixes(remote_dir);
    format!(
        "printf '{TAG}arch %s\\n' \"$(uname -m)\"; {}; if [ -x {}/{} ]; then echo '{TAG}installed yes'; else echo '{TAG}installed no'; fi",
        listing(&words),
        words[0],
        quote(harness)
    )
}

/// Create the components of the remote directory that `survey` found
/// missing, each with `mkdir -m 700` (stopping at one that someone else
/// made meanwhile), then list the chain again for [`Survey::check`].
pub fn create_script(remote_dir: &str, survey: &Survey) -> String {
    let words = prefixes(remote_dir);
    let missing: Vec<&String> =
        words.iter().zip(&survey.lexical).rev().filter(|(_, e)| e.is_none()).map(|(w, _)| w).collect();
    let list: Vec<&str> = missing.iter().map(|w| w.as_str()).collect();
    format!(
        "for c in {}; do mkdir -m 700 -- \"$c\" 2>/dev/null || {{ [ -d \"$c\" ] && [ ! -h \"$c\" ] && [ -O \"$c\" ]; }} || break; done; {}",
        list.join(" "),
        listing(&words)
    )
}

/// An existing component of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `ls -l`'s mode string (`drwxrwxrwt`).
    pub mode: String,
    /// The owner's uid.
    pub uid: u32,
    /// The path on the host.
    pub path: PathBuf,
}

impl Entry {
    fn kind(&self) -> char {
        self.mode.chars().next().unwrap_or('?')
    }

    fn others_may_write(&self) -> bool {
        let m = self.mode.as_bytes();
        m.get(5) == Some(&b'w') || m.get(8) == Some(&b'w')
    }

    fn sticky(&self) -> bool {
        matches!(self.mode.as_bytes().get(9), Some(b't' | b'T'))
    }
}

/// What the survey found on the host.
#[derive(Debug, Clone, Default)]
pub struct Survey {
    /// `uname -m`.
    pub arch: String,
    /// `$HOME`.
    pub home: String,
    /// The home, resolved.
    pub physical_home: String,
    /// The login's uid.
    pub uid: u32,
    /// The remote directory and its parents, deepest first, as written (`None`: missing).
    pub lexical: Vec<Option<Entry>>,
    /// The deepest existing one resolved, and its parents up to `/`.
    pub physical: Vec<Entry>,
    /// Whether the harness is there.
    pub installed: bool,
}

fn entry(rest: &str) -> Option<Option<Entry>> {
    let mut f = rest.splitn(3, ' ');
    let (mode, uid, path) = (f.next()?, f.next()?, f.next()?);
    if mode == "-" && uid == "-" {
        return Some(None);
    }
    Some(Some(Entry { mode: mode.to_owned(), uid: uid.parse().ok()?, path: PathBuf::from(path) }))
}

impl Survey {
    /// Parse the tagged lines of [`survey_script`] or [`create_script`]; `None` when malformed.
    pub fn parse(text: &str) -> Option<Survey> {
        let mut s = Survey::default();
        let mut uid = None;
        for line in text.lines().filter_map(|l| l.strip_prefix(TAG)) {
            let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "arch" => s.arch = rest.to_owned(),
                "home" => s.home = rest.to_owned(),
                "physhome" => s.physical_home = rest.to_owned(),
                "uid" => uid = rest.parse().ok(),
                "lex" => s.lexical.push(entry(rest)?),
                "phys" => s.physical.push(entry(rest)??),
                "installed" => s.installed = rest == "yes",
                _ => {}
            }
        }
        s.uid = uid?;
        (!s.lexical.is_empty()).then_some(s)
    }

    /// Whether the remote directory exists.
    pub fn exists(&self) -> bool {
        self.lexical.first().is_some_and(Option::is_some)
    }

    /// Refuse a chain another user could change. `remote_dir` and `host` are for the message.
    pub fn check(&self, remote_dir: &str, host: &str) -> Result<()> {
        let fail = |problem: String| -> Result<()> { bail!("--remote-dir {remote_dir} on {host}: {problem}") };
        // As written: stop below the home when the directory is under it.
        let lexical: Vec<Option<&Entry>> = self.lexical.iter().map(Option::as_ref).collect();
        // A parent missing above an existing directory: the listing could not see it.
        if let Some(i) = lexical.iter().position(Option::is_some) {
            if lexical[i..].iter().any(Option::is_none) {
                return fail(format!(
                    "cannot examine the parents of {}: let this login search them, or give another --remote-dir",
                    lexical[i].expect("some").path.display()
                ));
            }
        }
        let existing: Vec<&Entry> = lexical.iter().flatten().copied().collect();
        let missing_below = lexical.iter().take_while(|e| e.is_none()).count();
        if let Err(p) = judge(&existing, missing_below == 0, missing_below > 0, Path::new(&self.home), self.uid) {
            return fail(p);
        }
        // Resolved: where the links lead.
        if !existing.is_empty() && self.physical.is_empty() {
            return fail(format!(
                "cannot resolve {}: let this login enter it, or give another --remote-dir",
                existing[0].path.display()
            ));
        }
        let physical: Vec<&Entry> = self.physical.iter().collect();
        match judge(&physical, self.exists(), !self.exists(), Path::new(&self.physical_home), self.uid) {
            Ok(()) => Ok(()),
            Err(p) => fail(p),
        }
    }
}

/// Judge `chain` (deepest first, all existing). `bottom_is_dir`: its first
/// entry is the remote directory itself; `missing_below`: the remote
/// directory (or a parent) below the first entry is still to be created.
fn judge(chain: &[&Entry], bottom_is_dir: bool, missing_below: bool, home: &Path, uid: u32) -> Result<(), String> {
    let Some(first) = chain.first() else { return Ok(()) };
    // Up to the home when under it, else up to `/`; neither is judged.
    let under_home = home.has_root() && home != Path::new("/") && first.path.starts_with(home);
    let chain: Vec<&Entry> = chain
        .iter()
        .copied()
        .take_while(|e| e.path != Path::new("/") && !(under_home && home.starts_with(&e.path)))
        .collect();
    for (i, e) in chain.iter().enumerate() {
        let path = e.path.display();
        let is_dir = i == 0 && bottom_is_dir;
        if is_dir && e.uid != uid && e.kind() != 'l' {
            return Err(format!(
                "{path} is owned by uid {}, not by this login (uid {uid}): another user may have made it; remove it (or give another --remote-dir)",
                e.uid
            ));
        }
        if e.uid != uid && e.uid != 0 {
            return Err(format!(
                "{path} is owned by uid {}, neither this login (uid {uid}) nor root: that user could replace what bfperf runs there; give another --remote-dir",
                e.uid
            ));
        }
        match e.kind() {
            // A link's own mode means nothing; its directory is judged next, its target in the resolved chain.
            'l' => continue,
            'd' => {}
            _ => return Err(format!("{path} is not a directory: remove it (or give another --remote-dir)")),
        }
        if !e.others_may_write() {
            continue;
        }
        let below_is_ours = match i.checked_sub(1).map(|j| chain[j]) {
            Some(child) => child.uid == uid,
            None => missing_below,
        };
        if is_dir || !e.sticky() || !below_is_ours {
            let what = if is_dir || !e.sticky() {
                format!("{path} ({}) is writable by other users", e.mode)
            } else {
                format!(
                    "{} sits in {path}, which every user may write to, and is not this login's",
                    chain[i - 1].path.display()
                )
            };
            return Err(format!("{what}: another user could replace what bfperf runs there; chmod go-w {path}, or give another --remote-dir"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn survey(uid: u32, home: &str, lex: &[&str], phys: &[&str]) -> Survey {
        let mut text = format!("banner\n{TAG}arch x86_64\n{TAG}home {home}\n{TAG}physhome {home}\n{TAG}uid {uid}\n");
        for l in lex {
            text += &format!("{TAG}lex {l}\n");
        }
        for p in phys {
            text += &format!("{TAG}phys {p}\n");
        }
        text += &format!("{TAG}installed no\n");
        Survey::parse(&text).unwrap()
    }

    fn check(s: &Survey) -> Result<(), String> {
        s.check("DIR", "h").map_err(|e| e.to_string())
    }

    #[test]
    fn the_remote_directory_and_its_parents_are_named_from_the_deepest() {
        assert_eq!(prefixes(".cache/bfperf"), ["\"$HOME\"/.cache/bfperf", "\"$HOME\"/.cache"]);
        assert_eq!(prefixes("/var/tmp/bf perf/"), ["'/var/tmp/bf perf'", "/var/tmp", "/var"]);
    }

    #[test]
    fn own_directories_and_sticky_parents_above_them_pass() {
        // Under the home: the home itself is not judged.
        let s = survey(
            1000,
            "/home/me",
            &["drwx------ 1000 /home/me/.cache/bfperf", "drwxr-xr-x 1000 /home/me/.cache"],
            &[
                "drwx------ 1000 /home/me/.cache/bfperf",
                "drwxr-xr-x 1000 /home/me/.cache",
                "drwxrwxrwx 1000 /home/me",
                "drwxr-xr-x 0 /home",
                "drwxr-xr-x 0 /",
            ],
        );
        check(&s).unwrap();
        assert!(s.exists());
        // /var/tmp/bfperf, ours, in a sticky /var/tmp; or still to be made there.
        let s = survey(
            0,
            "/root",
            &["drwx------ 0 /var/tmp/bfperf", "drwxrwxrwt 0 /var/tmp", "drwxr-xr-x 0 /var"],
            &["drwx------ 0 /var/tmp/bfperf", "drwxrwxrwt 0 /var/tmp", "drwxr-xr-x 0 /var", "drwxr-xr-x 0 /"],
        );
        check(&s).unwrap();
        let s = survey(
            0,
            "/root",
            &["- - /var/tmp/bfperf", "drwxrwxrwt 0 /var/tmp", "drwxr-xr-x 0 /var"],
            &["drwxrwxrwt 0 /var/tmp", "drwxr-xr-x 0 /var", "drwxr-xr-x 0 /"],
        );
        check(&s).unwrap();
        assert!(!s.exists());
    }

    #[test]
    fn directories_others_made_or_may_write_to_are_refused() {
        let refused = |uid: u32, lex: &[&str], phys: &[&str], want: &str| {
            let e = check(&survey(uid, "/root", lex, phys)).unwrap_err();
            assert!(e.starts_with("--remote-dir DIR on h: ") && e.contains(want), "{want}: {e}");
        };
        // Made first by nobody, in /tmp.
        refused(
            0,
            &["drwxr-xr-x 65534 /tmp/bf", "drwxrwxrwt 0 /tmp"],
            &["drwxr-xr-x 65534 /tmp/bf", "drwxrwxrwt 0 /tmp", "drwxr-xr-x 0 /"],
            "/tmp/bf is owned by uid 65534, not by this login (uid 0): another user may have made it; remove it",
        );
        // Ours, but anyone may write to it.
        refused(0, &["drwxrwxrwx 0 /srv/bf", "drwxr-xr-x 0 /srv"], &["drwxrwxrwx 0 /srv/bf", "drwxr-xr-x 0 /srv", "drwxr-xr-x 0 /"], "/srv/bf (drwxrwxrwx) is writable by other users: another user could replace what bfperf runs there; chmod go-w /srv/bf");
        // Sticky, but the directory below is not ours.
        refused(
            1000,
            &["drwx------ 1000 /tmp/x/bf", "drwxrwxrwx 0 /tmp/x", "drwxrwxrwt 0 /tmp"],
            &[],
            "/tmp/x (drwxrwxrwx) is writable",
        );
        refused(
            1000,
            &["- - /tmp/x/bf", "drwxr-xr-x 0 /tmp/x", "drwxrwxrwt 0 /tmp"],
            &["drwxr-xr-x 0 /tmp/x", "drwxrwxrwt 0 /tmp", "drwxr-xr-x 0 /"],
            "/tmp/x sits in /tmp, which every user may write to, and is not this login's",
        );
        // A parent of another user's.
        refused(
            0,
            &["- - /home/al/bf", "drwxr-xr-x 1000 /home/al"],
            &["drwxr-xr-x 1000 /home/al", "drwxr-xr-x 0 /home", "drwxr-xr-x 0 /"],
            "/home/al is owned by uid 1000, neither this login (uid 0) nor root",
        );
        // Group-writable, not sticky.
        refused(
            0,
            &["- - /srv/bf", "drwxrwxr-x 0 /srv"],
            &["drwxrwxr-x 0 /srv", "drwxr-xr-x 0 /"],
            "/srv (drwxrwxr-x) is writable by other users",
        );
        // A link of ours to a directory someone else controls: the resolved chain says so.
        refused(
            0,
            &["lrwxrwxrwx 0 /srv/bf", "drwxr-xr-x 0 /srv"],
            &["drwxrwxrwx 65534 /tmp/evil", "drwxrwxrwt 0 /tmp", "drwxr-xr-x 0 /"],
            "/tmp/evil is owned by uid 65534, not by this login",
        );
        // Not a directory.
        refused(0, &["-rw-r--r-- 0 /srv/bf", "drwxr-xr-x 0 /srv"], &[], "/srv/bf is not a directory");
    }

    #[test]
    fn malformed_surveys_are_none() {
        assert!(Survey::parse("motd only\n").is_none());
        assert!(Survey::parse(&format!("{TAG}uid 0\n{TAG}lex drwx x /a\n")).is_none());
    }
}
