//! What the model is told about the tree it optimizes, read from the tree
//! itself rather than written into bfperf: the tree's own instructions for
//! coding agents (`CLAUDE.md`, `AGENTS.md`...), the header comment of every
//! file of the scope, what the generator keeps in which register (its
//! register definitions and the comments that name registers), its
//! clang-format file and the form of its commit subjects. So it stays right
//! as bpfilter changes, and works on any tree laid out like it.
//!
//! Everything read is the worktree's (model-written code included, in later
//! attempts): paths are confined to the worktree (a link leading out is
//! skipped, never followed out) and every part is bounded in size.

use crate::agent::paths;
use regex::Regex;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;

/// Files at the tree's root that instruct coding agents, in this order.
pub const AGENT_DOCS: &[&str] = &["CLAUDE.md", "AGENTS.md", "GEMINI.md", ".github/copilot-instructions.md"];
/// The clang-format files looked for at the root.
const CLANG_FORMAT: &[&str] = &[".clang-format", "_clang-format"];
/// Largest agent document shown (beyond: truncated, with a note).
const MAX_DOC_CHARS: usize = 12_000;
/// Largest header comment shown per file.
const MAX_HEADER_CHARS: usize = 2_500;
/// Header comments shown in all.
const MAX_HEADERS_CHARS: usize = 20_000;
/// Largest clang-format file shown.
const MAX_STYLE_CHARS: usize = 6_000;
/// Register lines shown at most.
const MAX_REGISTER_LINES: usize = 60;
/// Largest source file read for header comments and registers.
const MAX_SOURCE_BYTES: u64 = 1 << 20;
/// Commits looked at for the subject form.
const MAX_COMMITS: usize = 400;
/// Subjects of commits that changed the scope shown.
const MAX_SUBJECT_EXAMPLES: usize = 8;

/// A text taken from the tree.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Doc {
    /// Path relative to the worktree.
    pub path: String,
    /// Its text, bounded (a note says when it was cut).
    pub text: String,
}

/// What the prompt says about the tree.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Knowledge {
    /// The tree's instructions for coding agents.
    pub agent_docs: Vec<Doc>,
    /// Every source file of the scope with its header comment (empty when it has none).
    pub files: Vec<Doc>,
    /// Register definitions and the comments naming registers, `path:line: text`.
    pub registers: Vec<String>,
    /// The clang-format file.
    pub clang_format: Option<Doc>,
    /// The most common subject prefixes (`lib: cgen:`) with their counts.
    pub subject_prefixes: Vec<(String, usize)>,
    /// Subjects of recent commits that changed the scope.
    pub scope_subjects: Vec<String>,
}

/// Read what the prompt says about the tree at `worktree`, whose scope is `scope`.
pub fn gather(worktree: &Path, scope: &str) -> Knowledge {
    let Ok(root) = std::fs::canonicalize(worktree) else { return Knowledge::default() };
    let agent_docs = AGENT_DOCS.iter().filter_map(|p| read_doc(&root, p, MAX_DOC_CHARS)).collect();
    let clang_format = CLANG_FORMAT.iter().find_map(|p| read_doc(&root, p, MAX_STYLE_CHARS));
    let sources = scope_sources(&root, scope);
    let mut files = vec![];
    let mut budget = MAX_HEADERS_CHARS;
    for (path, text) in &sources {
        let mut header = header_comment(text);
        if header.chars().count() > budget {
            header = String::from("(not shown: the header comments above fill the prompt's share; use read_file)");
        } else {
            budget -= header.chars().count();
        }
        files.push(Doc { path: path.clone(), text: header });
    }
    let (subject_prefixes, scope_subjects) = subjects(&root, scope);
    Knowledge { agent_docs, files, registers: registers(&sources), clang_format, subject_prefixes, scope_subjects }
}

/// The file `rel` of the tree when it is a regular file inside it, cut to `max` characters.
fn read_doc(root: &Path, rel: &str, max: usize) -> Option<Doc> {
    let resolved = paths::resolve(root, rel).ok()?;
    let meta = std::fs::metadata(&resolved.abs).ok()?;
    if !meta.is_file() || meta.len() > MAX_SOURCE_BYTES {
        return None;
    }
    let text = String::from_utf8_lossy(&std::fs::read(&resolved.abs).ok()?).into_owned();
    Some(Doc { path: rel.to_owned(), text: cut(&text, max, "read_file shows the rest") })
}

/// `text` cut to `max` characters, with a note saying so.
pub fn cut(text: &str, max: usize, rest: &str) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max).collect();
    let kept = kept.rsplit_once('\n').map_or(kept.as_str(), |(k, _)| k);
    format!("{kept}\n… (truncated at {max} characters; {rest})")
}

/// The C sources and headers of the scope, relative paths sorted, with their text.
fn scope_sources(root: &Path, scope: &str) -> Vec<(String, String)> {
    let Ok(dir) = paths::resolve(root, scope) else { return vec![] };
    let mut out: Vec<(String, String)> = ignore::WalkBuilder::new(&dir.abs)
        .hidden(false)
        .follow_links(false)
        .build()
        .flatten()
        .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
        .filter(|e| e.path().extension().is_some_and(|x| x == "c" || x == "h"))
        .filter(|e| e.metadata().is_ok_and(|m| m.len() <= MAX_SOURCE_BYTES))
        .filter_map(|e| {
            let rel = e.path().strip_prefix(root).ok()?.to_str()?.to_owned();
            Some((rel, String::from_utf8_lossy(&std::fs::read(e.path()).ok()?).into_owned()))
        })
        .collect();
    out.sort();
    out
}

/// The comments a C file opens with, before its first line of code
/// (`#include`, `#pragma` and include guards are not code), license and
/// copyright lines left out, comment markers removed.
pub fn header_comment(src: &str) -> String {
    let mut parts: Vec<String> = vec![];
    let mut rest = src;
    loop {
        rest = rest.trim_start();
        let comment = if let Some(body) = rest.strip_prefix("/*") {
            let Some(end) = body.find("*/") else { break };
            Some((clean_block(&body[..end]), &body[end + 2..]))
        } else if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            Some((rest[2..end].trim_start_matches('/').trim().to_owned(), &rest[end..]))
        } else {
            None
        };
        if let Some((text, after)) = comment {
            // A comment right above code (no blank line between) documents that code, not the file.
            let gap = &after[..after.len() - after.trim_start().len()];
            let next = after.trim_start();
            let opens_more = next.is_empty()
                || next.starts_with("/*")
                || next.starts_with("//")
                || (next.starts_with('#') && is_preamble_directive(next));
            let attached = gap.matches('\n').count() <= 1 && !opens_more;
            if attached {
                break;
            }
            parts.push(text);
            rest = after;
        } else if rest.starts_with('#') && is_preamble_directive(rest) {
            // A directive with continuation lines ends at the first line not ending in `\`.
            let mut end = 0;
            for line in rest.split_inclusive('\n') {
                end += line.len();
                if !line.trim_end().ends_with('\\') {
                    break;
                }
            }
            rest = &rest[end..];
        } else {
            break;
        }
    }
    let kept: Vec<String> = parts.into_iter().map(|p| without_license(&p)).filter(|p| !p.is_empty()).collect();
    cut(&kept.join("\n"), MAX_HEADER_CHARS, "read_file shows the rest")
}

/// `#include`, `#pragma`, and the `#ifndef X_H` / `#define X_H` of an include guard.
fn is_preamble_directive(line: &str) -> bool {
    let words: Vec<&str> = line.lines().next().unwrap_or("")[1..].split_whitespace().take(2).collect();
    match words.as_slice() {
        ["include", ..] | ["pragma", ..] => true,
        ["ifndef", name] | ["define", name] => name.ends_with("_H") || name.ends_with("_H_"),
        _ => false,
    }
}

/// A block comment's text without its `*` margins.
fn clean_block(body: &str) -> String {
    let lines: Vec<&str> = body
        .lines()
        .map(|l| {
            let t = l.trim();
            let t = t.strip_prefix('*').unwrap_or(t);
            t.strip_prefix(' ').unwrap_or(t).trim_end()
        })
        .collect();
    lines.join("\n").trim_matches(|c: char| c == '\n' || c == '*' || c == ' ').to_owned()
}

/// A comment without its license and copyright lines.
fn without_license(comment: &str) -> String {
    let license = |l: &str| l.contains("SPDX-License-Identifier") || l.trim_start().starts_with("Copyright");
    comment.lines().filter(|l| !license(l)).collect::<Vec<_>>().join("\n").trim().to_owned()
}

static DEFINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*#\s*define\s+(\w+)\s+\(?\s*BPF_REG_(10|[0-9])\s*\)?\s*(?:/\*+\s*(.*?)\s*\*/|//\s*(.*))?\s*$")
        .expect("valid regex")
});
static REGISTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(?:[rR](?:10|[0-9])|BPF_REG_(?:10|[0-9]))\b").expect("valid regex"));

/// What the sources say about registers: every `#define NAME BPF_REG_N`
/// (with its comment), then the comment lines naming a register or one of
/// those names, files naming registers most first, at most [`MAX_REGISTER_LINES`].
pub fn registers(sources: &[(String, String)]) -> Vec<String> {
    let mut defines = vec![];
    let mut names = vec![];
    for (path, text) in sources {
        for (i, line) in text.lines().enumerate() {
            if let Some(c) = DEFINE.captures(line) {
                let comment = c.get(3).or(c.get(4)).map(|m| m.as_str().trim()).filter(|s| !s.is_empty());
                let what = comment.map(|s| format!(": {s}")).unwrap_or_default();
                defines.push(format!("{path}:{}: r{} is {}{what}", i + 1, &c[2], &c[1]));
                names.push(regex::escape(&c[1]));
            }
        }
    }
    let named = (!names.is_empty()).then(|| Regex::new(&format!(r"\b(?:{})\b", names.join("|"))).expect("escaped"));
    let mentions = |l: &str| REGISTER.is_match(l) || named.as_ref().is_some_and(|n| n.is_match(l));
    let mut per_file: Vec<(usize, &str, Vec<String>)> = sources
        .iter()
        .map(|(path, text)| {
            let lines: Vec<String> = comment_lines(text)
                .into_iter()
                .filter(|(_, l)| mentions(l))
                .map(|(n, l)| format!("{path}:{n}: {l}"))
                .collect();
            (lines.len(), path.as_str(), lines)
        })
        .filter(|(n, _, _)| *n > 0)
        .collect();
    per_file.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let mut seen = std::collections::BTreeSet::new();
    let mut out = defines;
    for line in per_file.into_iter().flat_map(|(_, _, l)| l) {
        let text = line.splitn(3, ':').nth(2).unwrap_or("").trim().to_owned();
        if seen.insert(text) {
            out.push(line);
        }
    }
    if out.len() > MAX_REGISTER_LINES {
        let more = out.len() - MAX_REGISTER_LINES;
        out.truncate(MAX_REGISTER_LINES);
        out.push(format!("… and {more} more lines (grep for BPF_REG_ or the names above)"));
    }
    out
}

/// The lines of `src` inside comments, 1-based, markers removed, non-empty.
fn comment_lines(src: &str) -> Vec<(usize, String)> {
    let mut out = vec![];
    let mut in_block = false;
    for (i, line) in src.lines().enumerate() {
        let mut text = String::new();
        let mut rest = line;
        loop {
            if in_block {
                match rest.find("*/") {
                    Some(end) => {
                        text.push_str(&rest[..end]);
                        text.push(' ');
                        rest = &rest[end + 2..];
                        in_block = false;
                    }
                    None => {
                        text.push_str(rest);
                        break;
                    }
                }
            } else {
                let block = rest.find("/*");
                let line_comment = rest.find("//");
                match (block, line_comment) {
                    (Some(b), Some(l)) if l < b => {
                        text.push_str(&rest[l + 2..]);
                        break;
                    }
                    (None, Some(l)) => {
                        text.push_str(&rest[l + 2..]);
                        break;
                    }
                    (Some(b), _) => {
                        rest = &rest[b + 2..];
                        in_block = true;
                    }
                    (None, None) => break,
                }
            }
        }
        let t = text.trim().trim_start_matches(['*', '/', '!']).trim();
        if !t.is_empty() {
            out.push((i + 1, t.to_owned()));
        }
    }
    out
}

static PREFIX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^((?:[a-z0-9][a-z0-9_.+/,-]{0,23}: )+)").expect("valid regex"));

/// The subject prefix of a commit subject (`lib: cgen: ` of `lib: cgen: add x`).
pub fn subject_prefix(subject: &str) -> Option<&str> {
    PREFIX.captures(subject).map(|c| c.get(1).expect("group").as_str().trim_end())
}

/// The most common subject prefixes of the last commits that changed `scope`
/// (of all of them when none did), and the subjects of those that changed it.
fn subjects(root: &Path, scope: &str) -> (Vec<(String, usize)>, Vec<String>) {
    let Ok(repo) = git2::Repository::open(root) else { return (vec![], vec![]) };
    let Ok(mut walk) = repo.revwalk() else { return (vec![], vec![]) };
    if walk.push_head().is_err() {
        return (vec![], vec![]);
    }
    let (mut counts, mut scope_counts) = (BTreeMap::<String, usize>::new(), BTreeMap::<String, usize>::new());
    let mut examples = vec![];
    for oid in walk.flatten().take(MAX_COMMITS) {
        let Ok(commit) = repo.find_commit(oid) else { continue };
        if commit.parent_count() > 1 {
            continue;
        }
        let subject = commit.summary().unwrap_or("").to_owned();
        let in_scope = touches(&repo, &commit, scope);
        if let Some(p) = subject_prefix(&subject) {
            let counted = if in_scope { &mut scope_counts } else { &mut counts };
            *counted.entry(p.to_owned()).or_default() += 1;
        }
        if in_scope && examples.len() < MAX_SUBJECT_EXAMPLES {
            examples.push(subject);
        }
    }
    // The form of the scope's own commits when there are any, else the tree's.
    let counts = if scope_counts.is_empty() { counts } else { scope_counts };
    let mut prefixes: Vec<(String, usize)> = counts.into_iter().collect();
    prefixes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    prefixes.truncate(8);
    (prefixes, examples)
}

/// Whether `commit` changed a path under `scope` (against its parent, or as a root commit).
fn touches(repo: &git2::Repository, commit: &git2::Commit<'_>, scope: &str) -> bool {
    let (Ok(tree), parent) = (commit.tree(), commit.parent(0).ok().and_then(|p| p.tree().ok())) else { return false };
    let mut o = git2::DiffOptions::new();
    o.pathspec(scope);
    repo.diff_tree_to_tree(parent.as_ref(), Some(&tree), Some(&mut o)).is_ok_and(|d| d.deltas().len() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minifilter() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/minifilter")
    }

    #[test]
    fn header_comments_skip_the_license_and_stop_at_code() {
        let src = "/* SPDX-License-Identifier: GPL-2.0-only */\n/*\n * Copyright (c) 2023 Someone\n */\n\n\
                   #pragma once\n#include <x.h>\n\n/**\n * @file gen.h\n *\n * The generator keeps the L3\n * protocol in r7.\n */\n\n\
                   #define EMIT(x) x\n/* not the header */\n";
        assert_eq!(header_comment(src), "@file gen.h\n\nThe generator keeps the L3\nprotocol in r7.");
        let guarded = "// Generator state.\n#ifndef GEN_H\n#define GEN_H\n/* more */\nint x; /* no */\n";
        assert_eq!(header_comment(guarded), "Generator state.", "a comment right above code is not the header");
        assert_eq!(header_comment("int x; /* not a header */\n"), "");
        assert_eq!(header_comment("/* unterminated"), "");
        let long = format!("/* {} */\n\nint x;\n", "word ".repeat(1_000));
        assert!(header_comment(&long).contains("truncated at 2500"));
    }

    #[test]
    fn registers_come_from_defines_and_comments() {
        let sources = vec![
            (
                "cgen/regs.h".to_owned(),
                "#define G_REG_CTX BPF_REG_6 /* the context */\n#define G_REG_L3 (BPF_REG_7) // L3 header\n\
                 #define OTHER 7\n"
                    .to_owned(),
            ),
            (
                "cgen/prog.c".to_owned(),
                "/*\n * - @c r8 : L4 protocol ID\n */\nint f(void) {\n    x = 1; // keep G_REG_L3 live\n    \
                 y = r7; /* code, not a comment: r7 */\n    // nothing here\n}\n"
                    .to_owned(),
            ),
        ];
        let r = registers(&sources);
        assert_eq!(
            r,
            [
                "cgen/regs.h:1: r6 is G_REG_CTX: the context",
                "cgen/regs.h:2: r7 is G_REG_L3: L3 header",
                "cgen/prog.c:2: - @c r8 : L4 protocol ID",
                "cgen/prog.c:5: keep G_REG_L3 live",
                "cgen/prog.c:6: code, not a comment: r7",
            ]
        );
    }

    #[test]
    fn subject_prefixes() {
        assert_eq!(subject_prefix("lib: cgen: add per-rule state map"), Some("lib: cgen:"));
        assert_eq!(subject_prefix("tests: e2e: move x"), Some("tests: e2e:"));
        assert_eq!(subject_prefix("Fix the build"), None);
        assert_eq!(subject_prefix("initial import"), None);
        assert_eq!(subject_prefix("lib,cli: fix fd safety"), Some("lib,cli:"));
    }

    /// The fixture carries what bpfilter does (CLAUDE.md, .clang-format, register
    /// defines and header comments): what bfperf reads must be found in it.
    #[test]
    fn minifilter_is_described_from_its_own_tree() {
        let k = gather(&minifilter(), "src/libbpfilter/cgen");
        assert_eq!(k.agent_docs.iter().map(|d| d.path.as_str()).collect::<Vec<_>>(), ["CLAUDE.md"]);
        assert!(k.agent_docs[0].text.contains("make fixstyle"), "{}", k.agent_docs[0].text);
        assert!(k.clang_format.as_ref().is_some_and(|d| d.text.contains("IndentWidth: 4")), "{:?}", k.clang_format);
        let prologue = k.files.iter().find(|d| d.path == "src/libbpfilter/cgen/prologue.c").expect("prologue.c");
        assert_eq!(prologue.text, "minifilter: program prologues (packet parsing and padding).");
        assert!(k.files.iter().all(|d| !d.text.contains("SPDX")), "{:?}", k.files);
        for expected in [
            "src/libbpfilter/cgen/cgen.h:25: r6 is MF_REG_CTX",
            "src/libbpfilter/cgen/cgen.h:26: r7 is MF_REG_L3: pointer to L3 header (valid if L3 known)",
            "src/libbpfilter/cgen/cgen.h:27: r8 is MF_REG_L4: pointer to L4 header (valid if L4 known)",
        ] {
            assert!(k.registers.iter().any(|r| r.starts_with(expected)), "{expected}:\n{}", k.registers.join("\n"));
        }
        assert!(
            k.registers.iter().any(|r| r.starts_with("src/libbpfilter/cgen/prologue.c:24:") && r.contains("MF_REG_L3")),
            "{:?}",
            k.registers
        );
    }

    #[test]
    fn links_out_of_the_tree_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "top secret").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("CLAUDE.md")).unwrap();
        std::fs::write(dir.path().join("AGENTS.md"), format!("rules\n{}", "x\n".repeat(10_000))).unwrap();
        std::fs::create_dir(dir.path().join("cgen")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("cgen/leak.h")).unwrap();
        let k = gather(dir.path(), "cgen");
        assert_eq!(k.agent_docs.len(), 1, "{:?}", k.agent_docs);
        assert!(k.agent_docs[0].text.contains("truncated at 12000 characters"));
        assert!(k.files.is_empty(), "{:?}", k.files);
        assert!(!format!("{k:?}").contains("top secret"));
    }

    #[test]
    fn commit_forms_come_from_the_scope_history() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let git = |args: &[&str]| {
            let out = std::process::Command::new("git").args(args).current_dir(p).output().unwrap();
            assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        git(&["init", "-q", "-b", "main"]);
        git(&["config", "user.email", "t@t.invalid"]);
        git(&["config", "user.name", "t"]);
        std::fs::create_dir_all(p.join("src/cgen")).unwrap();
        for (i, (file, subject)) in [
            ("src/cgen/a.c", "lib: cgen: add a"),
            ("README.md", "doc: describe a"),
            ("src/cgen/a.c", "lib: cgen: speed a up"),
            ("README.md", "doc: fix a typo"),
            ("README.md", "doc: again"),
        ]
        .into_iter()
        .enumerate()
        {
            std::fs::write(p.join(file), format!("{i}\n")).unwrap();
            git(&["add", "-A"]);
            git(&["commit", "-q", "-m", subject]);
        }
        let k = gather(p, "src/cgen");
        assert_eq!(k.subject_prefixes, [("lib: cgen:".to_owned(), 2)], "the scope's own form, not doc:'s");
        assert_eq!(k.scope_subjects, ["lib: cgen: speed a up", "lib: cgen: add a"]);
        assert_eq!(gather(p, "nothing").subject_prefixes, [("doc:".to_owned(), 3), ("lib: cgen:".to_owned(), 2)]);
    }
}
