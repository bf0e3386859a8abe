//! [`FileTools`]: the only tools a model gets, confined to the worktree by construction.
//!
//! Read-only anywhere in the worktree: `read_file`, `list_dir`, `grep` (skipping `.git` and files
//! ignored by `.gitignore`, such as build output). With a scope directory (the implementation
//! phase): `write_file` and `replace_in_file`, only under the scope. There is no shell. Every path
//! goes through the confinement rules of the `paths` module; a write to a symlink is refused, and
//! writes go to a temporary file renamed over the target, so they never follow a symlink or a hard
//! link at the final component. A refused path is an error result the model sees, and is recorded
//! in [`FileTools::refusals`] for the caller's log.

use super::paths::{self, Resolved};
use super::{ToolHost, ToolResult, ToolSpec};
use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Tool name: read a text file with line numbers.
pub const READ_FILE: &str = "read_file";
/// Tool name: list a directory.
pub const LIST_DIR: &str = "list_dir";
/// Tool name: search files with a regular expression.
pub const GREP: &str = "grep";
/// Tool name: create or overwrite a file (scope only).
pub const WRITE_FILE: &str = "write_file";
/// Tool name: replace one exact occurrence of a text in a file (scope only).
pub const REPLACE_IN_FILE: &str = "replace_in_file";

/// Largest file `read_file`, `replace_in_file` and `write_file` handle.
const MAX_FILE_BYTES: u64 = 4 << 20;
/// Largest file `grep` searches.
const MAX_GREP_FILE_BYTES: u64 = 2 << 20;
/// Most characters one tool result returns.
const MAX_OUTPUT_CHARS: usize = 100_000;
/// Longest line shown by `read_file` and `grep`.
const MAX_LINE_CHARS: usize = 2_000;
/// Lines `read_file` returns when the model gives no limit.
const DEFAULT_READ_LINES: usize = 2_000;
/// Entries `list_dir` shows at most.
const MAX_DIR_ENTRIES: usize = 1_000;
/// Matches `grep` returns by default, and at most.
const DEFAULT_GREP_RESULTS: usize = 100;
const MAX_GREP_RESULTS: usize = 1_000;

/// File tools over a worktree. `scope: None` makes them read-only.
#[derive(Debug, Clone)]
pub struct FileTools {
    /// The worktree root, canonical.
    root: PathBuf,
    /// The directory writes are allowed under, relative to the root.
    scope: Option<PathBuf>,
    /// The scope, absolute and canonical.
    scope_abs: Option<PathBuf>,
    refusals: Vec<String>,
    written: Vec<PathBuf>,
}

impl FileTools {
    /// Tools over the worktree `root`; with `scope` (a directory relative to the root that must
    /// exist inside it) the write tools are offered too.
    pub fn new(root: impl AsRef<Path>, scope: Option<&Path>) -> anyhow::Result<Self> {
        let root = root.as_ref();
        let root = fs::canonicalize(root).with_context(|| format!("the worktree {} does not exist", root.display()))?;
        if !root.is_dir() {
            bail!("the worktree {} is not a directory", root.display());
        }
        let (scope, scope_abs) = match scope {
            None => (None, None),
            Some(s) => {
                let shown = s.display();
                let text = s.to_str().with_context(|| format!("the scope {shown} is not valid UTF-8"))?;
                let r = paths::resolve(&root, text)
                    .map_err(|why| anyhow::anyhow!("the scope {shown} is not usable: {why}"))?;
                if !r.abs.is_dir() {
                    bail!(
                        "the scope {shown} is not a directory of the worktree {}: pass an existing directory",
                        root.display()
                    );
                }
                (Some(r.rel), Some(r.abs))
            }
        };
        Ok(FileTools { root, scope, scope_abs, refusals: Vec::new(), written: Vec::new() })
    }

    /// Read-only tools over the worktree `root`.
    pub fn read_only(root: impl AsRef<Path>) -> anyhow::Result<Self> {
        FileTools::new(root, None)
    }

    /// The worktree root (canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The scope directory relative to the root, `None` when read-only.
    pub fn scope(&self) -> Option<&Path> {
        self.scope.as_deref()
    }

    /// Every refused call ("write_file ../x: '..' is not allowed..."), in order: the model tried to
    /// leave the worktree or the scope.
    pub fn refusals(&self) -> &[String] {
        &self.refusals
    }

    /// Files written, relative to the root, in first-write order, each once.
    pub fn written(&self) -> &[PathBuf] {
        &self.written
    }

    fn refuse(&mut self, tool: &str, path: &str, why: &str) -> ToolResult {
        let message = format!("{tool} {path}: {why}");
        self.refusals.push(message.clone());
        ToolResult::error(format!("refused: {message}"))
    }

    fn resolve(&mut self, tool: &str, path: &str) -> Result<Resolved, ToolResult> {
        paths::resolve(&self.root, path).map_err(|why| self.refuse(tool, path, &why))
    }

    /// Resolve a path for writing: inside the scope, not a symlink, not a directory.
    fn resolve_for_write(&mut self, tool: &str, path: &str) -> Result<Resolved, ToolResult> {
        let Some(scope_abs) = self.scope_abs.clone() else {
            return Err(self.refuse(tool, path, "writing is not allowed in this phase (the tools are read-only)"));
        };
        let r = self.resolve(tool, path)?;
        if !r.abs.starts_with(&scope_abs) || r.abs == scope_abs {
            let scope = self.scope.clone().unwrap_or_default();
            let why = format!("outside the scope: only files under {}/ may be written", scope.display());
            return Err(self.refuse(tool, path, &why));
        }
        if fs::symlink_metadata(&r.literal).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(self.refuse(tool, path, "is a symlink: writes never follow symlinks"));
        }
        if r.abs.is_dir() {
            return Err(ToolResult::error(format!("{path} is a directory")));
        }
        Ok(r)
    }

    /// Write `content` to a temporary file beside the target, then rename it over the target: the
    /// write is atomic, and a symlink or hard link at the target is replaced, never written through.
    fn write(&mut self, r: &Resolved, content: &str) -> Result<(), ToolResult> {
        let shown = r.rel.display();
        let failed = |e: std::io::Error| ToolResult::error(format!("cannot write {shown}: {e}"));
        let parent = r.abs.parent().expect("a path inside the scope has a parent");
        fs::create_dir_all(parent)
            .map_err(|e| ToolResult::error(format!("cannot create the directory of {shown}: {e}")))?;
        let mode = fs::symlink_metadata(&r.abs).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o644);
        let mut tmp = tempfile::Builder::new().prefix(".bfperf-write-").tempfile_in(parent).map_err(failed)?;
        tmp.write_all(content.as_bytes()).map_err(failed)?;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode)).map_err(failed)?;
        tmp.persist(&r.abs).map_err(|e| failed(e.error))?;
        if !self.written.contains(&r.rel) {
            self.written.push(r.rel.clone());
        }
        Ok(())
    }

    fn read_file(&mut self, args: ReadArgs) -> Result<String, ToolResult> {
        let r = self.resolve(READ_FILE, &args.path)?;
        let text = read_text(&r, &args.path)?;
        if text.is_empty() {
            return Ok("(empty file)".into());
        }
        let lines: Vec<&str> = text.lines().collect();
        let first = args.offset.unwrap_or(1).max(1);
        if first > lines.len() {
            return Err(ToolResult::error(format!(
                "offset {first} is past the end: {} has {} lines",
                args.path,
                lines.len()
            )));
        }
        let limit = args.limit.unwrap_or(DEFAULT_READ_LINES).max(1);
        let mut out = String::new();
        let mut last = first - 1;
        for (i, line) in lines.iter().enumerate().skip(first - 1).take(limit) {
            if out.len() >= MAX_OUTPUT_CHARS {
                break;
            }
            let _ = writeln!(out, "{:>6}\t{}", i + 1, clip(line, MAX_LINE_CHARS));
            last = i + 1;
        }
        if last < lines.len() {
            let _ = write!(
                out,
                "[lines {first}-{last} of {}; call read_file with offset={} to read on]",
                lines.len(),
                last + 1
            );
        }
        Ok(out)
    }

    fn list_dir(&mut self, args: ListArgs) -> Result<String, ToolResult> {
        let r = self.resolve(LIST_DIR, &args.path)?;
        let entries = fs::read_dir(&r.abs).map_err(|e| ToolResult::error(format!("cannot list {}: {e}", args.path)))?;
        let mut names: Vec<String> = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == ".git" {
                continue;
            }
            let shown = match entry.file_type() {
                Ok(t) if t.is_dir() => format!("{name}/"),
                Ok(t) if t.is_symlink() => {
                    let target = fs::read_link(entry.path()).map(|t| t.display().to_string()).unwrap_or_default();
                    format!("{name} -> {target}")
                }
                _ => format!("{name} ({} bytes)", entry.metadata().map(|m| m.len()).unwrap_or(0)),
            };
            names.push(shown);
        }
        if names.is_empty() {
            return Ok("(empty directory)".into());
        }
        names.sort();
        let total = names.len();
        let mut out = names.into_iter().take(MAX_DIR_ENTRIES).collect::<Vec<_>>().join("\n");
        if total > MAX_DIR_ENTRIES {
            let _ = write!(out, "\n[{} more entries not shown]", total - MAX_DIR_ENTRIES);
        }
        Ok(out)
    }

    fn grep(&mut self, args: GrepArgs) -> Result<String, ToolResult> {
        let path = args.path.unwrap_or_default();
        let r = self.resolve(GREP, &path)?;
        let regex = regex::RegexBuilder::new(&args.pattern)
            .size_limit(1 << 22)
            .build()
            .map_err(|e| ToolResult::error(format!("invalid regex: {e}")))?;
        let max = args.max_results.unwrap_or(DEFAULT_GREP_RESULTS).clamp(1, MAX_GREP_RESULTS);
        let walker = ignore::WalkBuilder::new(&r.abs)
            .hidden(false)
            .require_git(false)
            .parents(false)
            .git_global(false)
            .follow_links(false)
            .sort_by_file_name(|a, b| a.cmp(b))
            .filter_entry(|e| e.file_name() != ".git")
            .build();
        let mut out = String::new();
        let mut found = 0;
        'files: for entry in walker.flatten() {
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            if entry.metadata().map(|m| m.len() > MAX_GREP_FILE_BYTES).unwrap_or(true) {
                continue;
            }
            let Ok(bytes) = fs::read(entry.path()) else { continue };
            if bytes[..bytes.len().min(8192)].contains(&0) {
                continue;
            }
            let text = String::from_utf8_lossy(&bytes);
            let rel = entry.path().strip_prefix(&self.root).unwrap_or(entry.path()).display().to_string();
            for (n, line) in text.lines().enumerate() {
                if regex.is_match(line) {
                    found += 1;
                    let _ = writeln!(out, "{rel}:{}: {}", n + 1, clip(line, 300));
                    if found >= max || out.len() >= MAX_OUTPUT_CHARS {
                        let _ = write!(out, "[stopped after {found} matches: narrow the pattern or the path]");
                        break 'files;
                    }
                }
            }
        }
        Ok(if found == 0 { "no matches".to_string() } else { out })
    }

    fn write_file(&mut self, args: WriteArgs) -> Result<String, ToolResult> {
        let r = self.resolve_for_write(WRITE_FILE, &args.path)?;
        if args.content.len() as u64 > MAX_FILE_BYTES {
            return Err(ToolResult::error(format!(
                "content too large ({} bytes, at most {MAX_FILE_BYTES})",
                args.content.len()
            )));
        }
        self.write(&r, &args.content)?;
        Ok(format!("wrote {} bytes to {}", args.content.len(), r.rel.display()))
    }

    fn replace_in_file(&mut self, args: ReplaceArgs) -> Result<String, ToolResult> {
        let r = self.resolve_for_write(REPLACE_IN_FILE, &args.path)?;
        if args.old.is_empty() {
            return Err(ToolResult::error("`old` is empty: give the exact text to replace"));
        }
        let text = read_text(&r, &args.path)?;
        match text.matches(&args.old).count() {
            1 => {}
            0 => {
                return Err(ToolResult::error(format!(
                    "`old` was not found in {}: read the file again and copy the exact text, whitespace included",
                    args.path
                )))
            }
            n => {
                return Err(ToolResult::error(format!(
                    "`old` occurs {n} times in {}: include more surrounding lines so it occurs exactly once",
                    args.path
                )))
            }
        }
        self.write(&r, &text.replacen(&args.old, &args.new, 1))?;
        Ok(format!("replaced 1 occurrence in {}", r.rel.display()))
    }
}

/// The whole of a text file the model named, or an error result.
fn read_text(r: &Resolved, shown: &str) -> Result<String, ToolResult> {
    let meta = fs::metadata(&r.abs).map_err(|e| ToolResult::error(format!("cannot read {shown}: {e}")))?;
    if meta.is_dir() {
        return Err(ToolResult::error(format!("{shown} is a directory: use list_dir")));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(ToolResult::error(format!(
            "{shown} is too large ({} bytes): use grep to find the part you need",
            meta.len()
        )));
    }
    let bytes = fs::read(&r.abs).map_err(|e| ToolResult::error(format!("cannot read {shown}: {e}")))?;
    if bytes.contains(&0) {
        return Err(ToolResult::error(format!("{shown} is a binary file")));
    }
    String::from_utf8(bytes).map_err(|_| ToolResult::error(format!("{shown} is not UTF-8 text")))
}

fn clip(line: &str, max: usize) -> String {
    match line.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line.to_string(),
    }
}

#[derive(Deserialize)]
struct ReadArgs {
    path: String,
    offset: Option<usize>,
    limit: Option<usize>,
}

#[derive(Deserialize)]
struct ListArgs {
    #[serde(default)]
    path: String,
}

#[derive(Deserialize)]
struct GrepArgs {
    pattern: String,
    path: Option<String>,
    max_results: Option<usize>,
}

#[derive(Deserialize)]
struct WriteArgs {
    path: String,
    content: String,
}

#[derive(Deserialize)]
struct ReplaceArgs {
    path: String,
    old: String,
    new: String,
}

fn parse<T: serde::de::DeserializeOwned>(tool: &str, input: &Value) -> Result<T, ToolResult> {
    T::deserialize(input).map_err(|e| ToolResult::error(format!("invalid input for {tool}: {e}")))
}

impl ToolHost for FileTools {
    fn specs(&self) -> Vec<ToolSpec> {
        let spec = |name: &str, description: &str, input_schema: Value| ToolSpec {
            name: name.to_string(),
            description: description.to_string(),
            input_schema,
        };
        let mut specs = vec![
            spec(
                READ_FILE,
                "Read a UTF-8 text file of the worktree. Lines come back numbered (number, tab, text). \
                 Use offset (1-based first line) and limit (number of lines) to page through long files.",
                json!({"type": "object", "properties": {
                    "path": {"type": "string", "description": "Path relative to the worktree root"},
                    "offset": {"type": "integer", "minimum": 1, "description": "First line to return (default 1)"},
                    "limit": {"type": "integer", "minimum": 1, "description": "Lines to return (default 2000)"}
                }, "required": ["path"]}),
            ),
            spec(
                LIST_DIR,
                "List a directory of the worktree: sub-directories end with '/', files show their size.",
                json!({"type": "object", "properties": {
                    "path": {"type": "string", "description": "Directory relative to the worktree root ('.' for the root)"}
                }, "required": ["path"]}),
            ),
            spec(
                GREP,
                "Search the worktree's text files for a regular expression (Rust regex syntax), line by line. \
                 Skips .git and files ignored by .gitignore. Results are 'path:line: text'.",
                json!({"type": "object", "properties": {
                    "pattern": {"type": "string", "description": "Regular expression"},
                    "path": {"type": "string", "description": "File or directory to search (default: the whole worktree)"},
                    "max_results": {"type": "integer", "minimum": 1, "maximum": MAX_GREP_RESULTS, "description": "Most matches to return (default 100)"}
                }, "required": ["pattern"]}),
            ),
        ];
        if let Some(scope) = &self.scope {
            let under = scope.display();
            specs.push(spec(
                WRITE_FILE,
                &format!("Create or overwrite a file with the given content. Only paths under {under}/ may be written."),
                json!({"type": "object", "properties": {
                    "path": {"type": "string", "description": format!("Path relative to the worktree root, under {under}/")},
                    "content": {"type": "string", "description": "The complete new content of the file"}
                }, "required": ["path", "content"]}),
            ));
            specs.push(spec(
                REPLACE_IN_FILE,
                &format!(
                    "Replace one exact occurrence of `old` by `new` in a file under {under}/. `old` must occur exactly \
                     once: include enough surrounding lines to make it unique, whitespace included."
                ),
                json!({"type": "object", "properties": {
                    "path": {"type": "string", "description": format!("Path relative to the worktree root, under {under}/")},
                    "old": {"type": "string", "description": "Exact text to replace (must occur exactly once)"},
                    "new": {"type": "string", "description": "Replacement text"}
                }, "required": ["path", "old", "new"]}),
            ));
        }
        specs
    }

    fn call(&mut self, name: &str, input: &Value) -> ToolResult {
        let result = match name {
            READ_FILE => parse(name, input).and_then(|a| self.read_file(a)),
            LIST_DIR => parse(name, input).and_then(|a| self.list_dir(a)),
            GREP => parse(name, input).and_then(|a| self.grep(a)),
            WRITE_FILE | REPLACE_IN_FILE if self.scope.is_none() => {
                let path = input.get("path").and_then(Value::as_str).unwrap_or("");
                Err(self.refuse(name, path, "writing is not allowed in this phase (the tools are read-only)"))
            }
            WRITE_FILE => parse(name, input).and_then(|a| self.write_file(a)),
            REPLACE_IN_FILE => parse(name, input).and_then(|a| self.replace_in_file(a)),
            other => Err(ToolResult::error(format!("unknown tool {other}"))),
        };
        result.map(ToolResult::ok).unwrap_or_else(|e| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A worktree with a scope dir `src/cgen`, a file outside it, a `.git` dir and an outside dir.
    struct Fixture {
        _dir: tempfile::TempDir,
        outside: tempfile::TempDir,
        root: PathBuf,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        fs::create_dir_all(root.join("src/cgen")).unwrap();
        fs::create_dir_all(root.join(".git")).unwrap();
        fs::write(root.join(".git/config"), "needle in git\n").unwrap();
        fs::write(root.join("src/cgen/prog.c"), "int a;\nint needle;\nint b;\n").unwrap();
        fs::write(root.join("src/main.c"), "// needle outside scope\n").unwrap();
        fs::write(outside.path().join("secret"), "top secret\n").unwrap();
        Fixture { _dir: dir, outside, root }
    }

    fn call(t: &mut FileTools, name: &str, input: Value) -> ToolResult {
        t.call(name, &input)
    }

    #[test]
    fn reads_are_line_numbered_and_paged() {
        let f = fixture();
        let mut t = FileTools::read_only(&f.root).unwrap();
        let r = call(&mut t, READ_FILE, json!({"path": "src/cgen/prog.c"}));
        assert!(!r.is_error, "{r:?}");
        assert_eq!(r.content, "     1\tint a;\n     2\tint needle;\n     3\tint b;\n");
        let r = call(&mut t, READ_FILE, json!({"path": "src/cgen/prog.c", "offset": 2, "limit": 1}));
        assert!(r.content.starts_with("     2\tint needle;\n") && r.content.contains("offset=3"), "{r:?}");
        let r = call(&mut t, READ_FILE, json!({"path": "src/cgen/prog.c", "offset": 9}));
        assert!(r.is_error && r.content.contains("past the end"));
        let r = call(&mut t, READ_FILE, json!({"path": "src/cgen"}));
        assert!(r.is_error && r.content.contains("directory"));
        let r = call(&mut t, READ_FILE, json!({"path": "missing.c"}));
        assert!(r.is_error);
        let r = call(&mut t, READ_FILE, json!({"file": "x"}));
        assert!(r.is_error && r.content.contains("invalid input for read_file"), "{r:?}");
        assert!(t.refusals().is_empty(), "plain failures are not refusals: {:?}", t.refusals());
    }

    #[test]
    fn list_dir_skips_git() {
        let f = fixture();
        let mut t = FileTools::read_only(&f.root).unwrap();
        let r = call(&mut t, LIST_DIR, json!({"path": "."}));
        assert_eq!(r.content, "src/");
        let r = call(&mut t, LIST_DIR, json!({"path": "src"}));
        assert_eq!(r.content, "cgen/\nmain.c (24 bytes)");
    }

    #[test]
    fn grep_finds_text_and_skips_git_and_ignored_files() {
        let f = fixture();
        fs::write(f.root.join(".gitignore"), "build/\n").unwrap();
        fs::create_dir_all(f.root.join("build")).unwrap();
        fs::write(f.root.join("build/gen.c"), "needle in build\n").unwrap();
        let mut t = FileTools::read_only(&f.root).unwrap();
        let r = call(&mut t, GREP, json!({"pattern": "need+le"}));
        assert_eq!(r.content, "src/cgen/prog.c:2: int needle;\nsrc/main.c:1: // needle outside scope\n");
        let r = call(&mut t, GREP, json!({"pattern": "needle", "path": "src/cgen"}));
        assert_eq!(r.content, "src/cgen/prog.c:2: int needle;\n");
        let r = call(&mut t, GREP, json!({"pattern": "needle", "max_results": 1}));
        assert!(r.content.contains("stopped after 1"), "{r:?}");
        assert_eq!(call(&mut t, GREP, json!({"pattern": "nothing-like-this"})).content, "no matches");
        let r = call(&mut t, GREP, json!({"pattern": "(unclosed"}));
        assert!(r.is_error && r.content.contains("invalid regex"));
    }

    #[test]
    fn read_escapes_are_refused_and_recorded() {
        let f = fixture();
        symlink(f.outside.path().join("secret"), f.root.join("to_tmp")).unwrap();
        symlink(f.outside.path(), f.root.join("dir_out")).unwrap();
        let mut t = FileTools::read_only(&f.root).unwrap();
        for path in ["../x", "/etc/passwd", "a/../../x", "to_tmp", "dir_out/secret", ".git/config"] {
            let r = call(&mut t, READ_FILE, json!({ "path": path }));
            assert!(r.is_error && r.content.starts_with("refused:"), "{path}: {r:?}");
            assert!(!r.content.contains("top secret"));
        }
        let r = call(&mut t, LIST_DIR, json!({"path": "dir_out"}));
        assert!(r.is_error && r.content.starts_with("refused:"), "{r:?}");
        let r = call(&mut t, GREP, json!({"pattern": "secret", "path": "dir_out"}));
        assert!(r.is_error, "{r:?}");
        // Grepping the root does not follow the symlinks out either.
        assert_eq!(call(&mut t, GREP, json!({"pattern": "top secret"})).content, "no matches");
        assert_eq!(t.refusals().len(), 8, "{:?}", t.refusals());
    }

    #[test]
    fn read_only_tools_offer_no_writes_and_refuse_them() {
        let f = fixture();
        let mut t = FileTools::read_only(&f.root).unwrap();
        let names: Vec<String> = t.specs().into_iter().map(|s| s.name).collect();
        assert_eq!(names, [READ_FILE, LIST_DIR, GREP]);
        let r = call(&mut t, WRITE_FILE, json!({"path": "src/cgen/x.c", "content": "x"}));
        assert!(r.is_error && r.content.contains("read-only"));
        assert!(!f.root.join("src/cgen/x.c").exists());
        assert_eq!(t.refusals().len(), 1);
    }

    #[test]
    fn writes_inside_the_scope_work() {
        let f = fixture();
        let mut t = FileTools::new(&f.root, Some(Path::new("src/cgen"))).unwrap();
        assert_eq!(t.specs().len(), 5);
        let r = call(&mut t, WRITE_FILE, json!({"path": "src/cgen/new/opt.c", "content": "int opt;\n"}));
        assert!(!r.is_error, "{r:?}");
        assert_eq!(fs::read_to_string(f.root.join("src/cgen/new/opt.c")).unwrap(), "int opt;\n");
        let r = call(
            &mut t,
            REPLACE_IN_FILE,
            json!({"path": "src/cgen/prog.c", "old": "int needle;", "new": "long needle;"}),
        );
        assert!(!r.is_error, "{r:?}");
        assert_eq!(fs::read_to_string(f.root.join("src/cgen/prog.c")).unwrap(), "int a;\nlong needle;\nint b;\n");
        call(&mut t, WRITE_FILE, json!({"path": "src/cgen/new/opt.c", "content": "int opt2;\n"}));
        assert_eq!(fs::metadata(f.root.join("src/cgen/new/opt.c")).unwrap().permissions().mode() & 0o777, 0o644);
        assert_eq!(t.written(), &[PathBuf::from("src/cgen/new/opt.c"), PathBuf::from("src/cgen/prog.c")]);
        assert!(t.refusals().is_empty());
    }

    #[test]
    fn writes_keep_the_mode_and_break_hard_links() {
        let f = fixture();
        fs::set_permissions(f.root.join("src/cgen/prog.c"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::hard_link(f.root.join("src/main.c"), f.root.join("src/cgen/linked.c")).unwrap();
        let mut t = FileTools::new(&f.root, Some(Path::new("src/cgen"))).unwrap();
        let r = call(&mut t, REPLACE_IN_FILE, json!({"path": "src/cgen/prog.c", "old": "int b;", "new": "int c;"}));
        assert!(!r.is_error, "{r:?}");
        assert_eq!(fs::metadata(f.root.join("src/cgen/prog.c")).unwrap().permissions().mode() & 0o777, 0o755);
        let r = call(&mut t, WRITE_FILE, json!({"path": "src/cgen/linked.c", "content": "new\n"}));
        assert!(!r.is_error, "{r:?}");
        assert_eq!(fs::read_to_string(f.root.join("src/cgen/linked.c")).unwrap(), "new\n");
        assert_eq!(fs::read_to_string(f.root.join("src/main.c")).unwrap(), "// needle outside scope\n");
        let leftovers: Vec<_> = fs::read_dir(f.root.join("src/cgen"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".bfperf-write-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn replace_needs_exactly_one_match() {
        let f = fixture();
        let mut t = FileTools::new(&f.root, Some(Path::new("src/cgen"))).unwrap();
        let r = call(&mut t, REPLACE_IN_FILE, json!({"path": "src/cgen/prog.c", "old": "float", "new": "x"}));
        assert!(r.is_error && r.content.contains("not found"), "{r:?}");
        let r = call(&mut t, REPLACE_IN_FILE, json!({"path": "src/cgen/prog.c", "old": "int", "new": "x"}));
        assert!(r.is_error && r.content.contains("occurs 3 times"), "{r:?}");
        let r = call(&mut t, REPLACE_IN_FILE, json!({"path": "src/cgen/prog.c", "old": "", "new": "x"}));
        assert!(r.is_error);
        assert_eq!(fs::read_to_string(f.root.join("src/cgen/prog.c")).unwrap(), "int a;\nint needle;\nint b;\n");
        assert!(t.written().is_empty());
    }

    #[test]
    fn write_escapes_are_refused_and_recorded() {
        let f = fixture();
        let secret = f.outside.path().join("secret");
        symlink(&secret, f.root.join("src/cgen/link_out")).unwrap();
        symlink(f.outside.path(), f.root.join("src/cgen/dir_out")).unwrap();
        symlink(f.root.join("src/main.c"), f.root.join("src/cgen/link_in")).unwrap();
        symlink(f.outside.path().join("new_target"), f.root.join("src/cgen/dangling")).unwrap();
        let mut t = FileTools::new(&f.root, Some(Path::new("src/cgen"))).unwrap();
        let attempts = [
            json!({"path": "../x", "content": "x"}),
            json!({"path": "/etc/passwd", "content": "x"}),
            json!({"path": "src/cgen/../../x", "content": "x"}),
            json!({"path": "src/main.c", "content": "x"}),
            json!({"path": "README", "content": "x"}),
            json!({"path": "src/cgen", "content": "x"}),
            json!({"path": "src/cgen/link_out", "content": "x"}),
            json!({"path": "src/cgen/dir_out/new.c", "content": "x"}),
            json!({"path": "src/cgen/link_in", "content": "x"}),
            json!({"path": "src/cgen/dangling", "content": "x"}),
        ];
        for input in attempts {
            let r = call(&mut t, WRITE_FILE, input.clone());
            assert!(r.is_error && r.content.starts_with("refused:"), "{input}: {r:?}");
        }
        let r = call(&mut t, REPLACE_IN_FILE, json!({"path": "src/cgen/link_out", "old": "top", "new": "x"}));
        assert!(r.is_error && r.content.starts_with("refused:"), "{r:?}");
        assert_eq!(t.refusals().len(), 11, "{:?}", t.refusals());
        assert!(t.written().is_empty());
        assert_eq!(fs::read_to_string(&secret).unwrap(), "top secret\n");
        assert_eq!(fs::read_to_string(f.root.join("src/main.c")).unwrap(), "// needle outside scope\n");
        assert!(!f.outside.path().join("new_target").exists() && !f.outside.path().join("new.c").exists());
        assert!(!f.root.join("README").exists() && !f.root.parent().unwrap().join("x").exists());
    }

    #[test]
    fn scope_must_be_a_directory_inside() {
        let f = fixture();
        assert!(FileTools::new(&f.root, Some(Path::new("../elsewhere"))).is_err());
        assert!(FileTools::new(&f.root, Some(Path::new("src/nope"))).is_err());
        assert!(FileTools::new(&f.root, Some(Path::new("src/main.c"))).is_err());
        assert!(FileTools::new("/nonexistent/bfperf", None).is_err());
        symlink(f.outside.path(), f.root.join("scope_out")).unwrap();
        assert!(FileTools::new(&f.root, Some(Path::new("scope_out"))).is_err());
    }
}
