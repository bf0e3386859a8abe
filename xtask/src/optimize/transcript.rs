//! What the model did while it worked, shown live and kept afterwards.
//!
//! [`Recorder`] wraps the [`ToolHost`] of a conversation: every tool call (its
//! arguments, its result truncated) and every turn's thinking and text become
//! an [`Entry`] of the attempt's transcript, and one line on the terminal as it
//! happens (`read_file src/x.c`, `grep pattern`, `write_file path +N −M`, the
//! thinking's first line, all of it with `-v`). bfperf's own steps
//! (validation commands, measuring rounds) are [`Entry::Progress`]. An
//! external agent's own output (its standard error, line by line as it
//! arrives) is [`Entry::Output`]. The same lines go to the `--serve`
//! dashboard ([`LiveLog`]) and to the run's `live.log` ([`LiveFile`]), which
//! `optimize-dashboard` follows for a run it did not start.
//!
//! Everything here came from the model: the terminal gets it through
//! [`crate::text`], the pages escape it. The transcript is bounded (entries
//! per attempt, characters per entry) so `history.json` stays small.

use super::record::Step;
use crate::agent::{ToolHost, ToolResult, ToolSpec};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

/// Most entries kept per attempt (the later ones are counted, not kept).
pub const MAX_ENTRIES: usize = 500;
/// Most characters kept of a tool result.
pub const MAX_RESULT_CHARS: usize = 2_000;
/// Most characters kept of a tool call's arguments.
pub const MAX_ARGS_CHARS: usize = 4_000;
/// Most characters kept of one turn's thinking or text.
pub const MAX_THINKING_CHARS: usize = 16_000;
/// Characters of the thinking shown on the terminal without `-v`.
pub const SUMMARY_CHARS: usize = 120;
/// Lines the live log of a dashboard keeps.
pub const LIVE_LINES: usize = 400;
/// Entries kept for bfperf's own steps: an agent's output stops being kept before them.
pub const RESERVED_ENTRIES: usize = 100;
/// The live log file of a run, in its directory.
pub const LIVE_FILE: &str = "live.log";
/// Most bytes of the live log file read back (its end).
pub const LIVE_FILE_TAIL: u64 = 128 << 10;

/// One thing that happened during an attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// The model called a tool.
    Tool {
        /// Seconds since the attempt started.
        at: f64,
        /// The step it happened in.
        step: Step,
        /// The tool's name.
        name: String,
        /// One line: `read_file src/x.c`, `write_file src/x.c +3 −1`.
        summary: String,
        /// Its arguments, as JSON text (truncated).
        args: String,
        /// What the tool answered (truncated).
        result: String,
        /// Whether the call failed or was refused.
        is_error: bool,
    },
    /// The model's thinking in one turn (truncated).
    Thinking {
        /// Seconds since the attempt started.
        at: f64,
        /// The step it happened in.
        step: Step,
        /// The thinking.
        text: String,
    },
    /// Text the model wrote in one turn (truncated).
    Text {
        /// Seconds since the attempt started.
        at: f64,
        /// The step it happened in.
        step: Step,
        /// The text.
        text: String,
    },
    /// One line of an external agent's own output (its standard error), neutralised
    /// ([`crate::text::line`]) and bounded when it arrived.
    Output {
        /// Seconds since the attempt started.
        at: f64,
        /// The step it happened in.
        step: Step,
        /// The line.
        text: String,
    },
    /// One of bfperf's own steps: a validation command, a measuring phase.
    Progress {
        /// Seconds since the attempt started.
        at: f64,
        /// The step it happened in.
        step: Step,
        /// What happened, one line.
        text: String,
    },
}

impl Entry {
    /// The line the terminal and the live log show (raw: pass it through [`crate::text`]).
    pub fn line(&self, verbose: bool) -> String {
        match self {
            Entry::Tool { summary, is_error, result, .. } if *is_error => {
                format!("{summary} → error: {}", first_line(result, SUMMARY_CHARS))
            }
            Entry::Tool { summary, .. } => summary.clone(),
            Entry::Thinking { text, .. } if verbose => format!("thinking: {}", text.trim()),
            Entry::Thinking { text, .. } => format!("thinking: {}", first_line(text, SUMMARY_CHARS)),
            Entry::Text { text, .. } if verbose => format!("says: {}", text.trim()),
            Entry::Text { text, .. } => format!("says: {}", first_line(text, SUMMARY_CHARS)),
            Entry::Output { text, .. } => format!("agent: {text}"),
            Entry::Progress { text, .. } => text.clone(),
        }
    }
}

/// `s` cut to at most `max` characters, saying how much was left out.
pub fn truncate(s: &str, max: usize) -> String {
    let count = s.chars().count();
    if count <= max {
        return s.to_owned();
    }
    let kept: String = s.chars().take(max).collect();
    format!("{kept}… ({} more characters)", count - max)
}

/// The first non-empty line of `s`, at most `max` characters (`…` when cut).
pub fn first_line(s: &str, max: usize) -> String {
    let line = s.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    let more = line.chars().count() > max || s.trim().lines().nth(1).is_some();
    let cut: String = line.chars().take(max).collect();
    if more {
        format!("{cut}…")
    } else {
        cut
    }
}

fn lines_of(s: &str) -> usize {
    s.lines().count()
}

/// The one-line summary of a tool call: the tool and what it names.
pub fn summarize(name: &str, input: &serde_json::Value, old_lines: Option<usize>) -> String {
    let field = |k: &str| input.get(k).and_then(|v| v.as_str()).map(|s| first_line(s, 160));
    let path = field("path").unwrap_or_default();
    match name {
        "write_file" => {
            let new = input.get("content").and_then(|v| v.as_str()).map_or(0, lines_of);
            format!("write_file {path} +{new} −{}", old_lines.unwrap_or(0))
        }
        "replace_in_file" => {
            let count = |k: &str| input.get(k).and_then(|v| v.as_str()).map_or(0, lines_of);
            format!("replace_in_file {path} +{} −{}", count("new"), count("old"))
        }
        "grep" => {
            let pattern = field("pattern").unwrap_or_default();
            if path.is_empty() {
                format!("grep {pattern}")
            } else {
                format!("grep {pattern} in {path}")
            }
        }
        _ if !path.is_empty() => format!("{name} {path}"),
        _ => {
            let args = input.to_string();
            format!("{name} {}", first_line(&args, 160))
        }
    }
}

/// Where live lines go besides the terminal: the `--serve` dashboard's log.
#[derive(Debug, Default)]
pub struct LiveLog {
    lines: Mutex<(u64, VecDeque<String>)>,
}

impl LiveLog {
    /// Append one line (raw text: the page escapes it); the oldest go beyond [`LIVE_LINES`].
    pub fn push(&self, line: String) {
        let mut guard = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        guard.0 += 1;
        guard.1.push_back(line);
        while guard.1.len() > LIVE_LINES {
            guard.1.pop_front();
        }
    }

    /// `(count, lines)`: how many lines were ever pushed, and the last ones kept.
    pub fn snapshot(&self) -> (u64, Vec<String>) {
        let guard = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        (guard.0, guard.1.iter().cloned().collect())
    }
}

/// A run's live log on disk (`<run>/live.log`): every line the terminal shows
/// for an attempt, appended as it happens, so a dashboard that did not start
/// the run follows it without waiting for `history.json`. Written
/// neutralised ([`crate::text::block`]). A file that cannot be opened (a link
/// planted in its place, a full disk) is not written, and the run goes on.
#[derive(Debug, Default)]
pub struct LiveFile {
    file: Mutex<Option<std::fs::File>>,
}

impl LiveFile {
    /// Append to `<dir>/live.log`, created if missing; never through a link.
    pub fn open(dir: &Path) -> LiveFile {
        let mut options = std::fs::OpenOptions::new();
        options.append(true).create(true);
        let file = crate::planted::open(&dir.join(LIVE_FILE), &mut options).ok().map(|(f, _)| f);
        LiveFile { file: Mutex::new(file) }
    }

    /// Append `line` (one or more lines of text) and a newline.
    pub fn append(&self, line: &str) {
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = guard.as_mut() {
            let text = format!("{}\n", crate::text::block(line));
            if f.write_all(text.as_bytes()).is_err() {
                // Nothing more to a half-written log; the terminal and the record have it all.
                *guard = None;
            }
        }
    }
}

/// The live log of the run in `dir` as `<run>/live.log` has it: `(count, lines)`,
/// `count` growing with every line (the file's size), `lines` its last
/// [`LIVE_LINES`] lines read from its last [`LIVE_FILE_TAIL`] bytes. `None`
/// without such a regular file (older runs; never through a link).
pub fn read_live_file(dir: &Path) -> Option<(u64, Vec<String>)> {
    let (mut file, meta) = crate::planted::open(&dir.join(LIVE_FILE), std::fs::OpenOptions::new().read(true)).ok()?;
    let len = meta.len();
    let start = len.saturating_sub(LIVE_FILE_TAIL);
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut buf = Vec::new();
    file.take(LIVE_FILE_TAIL).read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // cut in the middle
    }
    let from = lines.len().saturating_sub(LIVE_LINES);
    // Written neutralised; filtered again all the same (anyone could have written it).
    Some((len, lines[from..].iter().map(|l| crate::text::line(l).into_owned()).collect()))
}

/// Where an attempt's live lines go.
#[derive(Clone, Copy)]
pub struct Echo<'a> {
    /// `attempt 3`.
    pub label: &'a str,
    /// The whole thinking, not its first line (`-v`).
    pub verbose: bool,
    /// The dashboard's live log, when serving.
    pub log: Option<&'a LiveLog>,
    /// The run's live log file.
    pub file: Option<&'a LiveFile>,
}

impl Echo<'_> {
    /// Show `entry`: one line on the terminal (above `pb`'s spinner), in the live log and file.
    pub fn show(&self, pb: Option<&ProgressBar>, entry: &Entry) {
        let line = format!("{}: {}", self.label, entry.line(self.verbose));
        if crate::progress::mode() != crate::progress::Mode::Quiet {
            let shown = crate::text::block(&line);
            match pb {
                Some(pb) => crate::progress::note(pb, shown),
                None => eprintln!("{shown}"),
            }
        }
        if let Some(file) = self.file {
            file.append(&line);
        }
        if let Some(log) = self.log {
            log.push(line);
        }
    }
}

/// The entries of one attempt, bounded.
#[derive(Debug)]
pub struct Transcript {
    started: Instant,
    /// What is kept.
    pub entries: Vec<Entry>,
    /// Entries left out beyond [`MAX_ENTRIES`].
    pub dropped: usize,
}

impl Transcript {
    /// An empty transcript; times count from now.
    pub fn new() -> Self {
        Transcript { started: Instant::now(), entries: vec![], dropped: 0 }
    }

    /// Seconds since the attempt started.
    pub fn at(&self) -> f64 {
        (self.started.elapsed().as_secs_f64() * 10.0).round() / 10.0
    }

    /// Keep `entry` (unless the transcript is full) and show it. An agent's output
    /// leaves the last [`RESERVED_ENTRIES`] to bfperf's own steps.
    pub fn add(&mut self, echo: &Echo<'_>, pb: Option<&ProgressBar>, entry: Entry) {
        echo.show(pb, &entry);
        let room = match entry {
            Entry::Output { .. } => MAX_ENTRIES - RESERVED_ENTRIES,
            _ => MAX_ENTRIES,
        };
        if self.entries.len() < room {
            self.entries.push(entry);
        } else {
            self.dropped += 1;
        }
    }

    /// A progress line of bfperf's own in `step`.
    pub fn progress(&mut self, echo: &Echo<'_>, pb: Option<&ProgressBar>, step: Step, text: impl Into<String>) {
        let entry = Entry::Progress { at: self.at(), step, text: text.into() };
        self.add(echo, pb, entry);
    }
}

impl Default for Transcript {
    fn default() -> Self {
        Transcript::new()
    }
}

/// A [`ToolHost`] that records and shows every call and turn of a conversation.
pub struct Recorder<'a> {
    inner: &'a mut dyn ToolHost,
    /// Resolves a path the way the tools do, for `write_file`'s `−M` (None: not a readable file).
    old_lines: &'a dyn Fn(&str) -> Option<usize>,
    transcript: &'a mut Transcript,
    echo: Echo<'a>,
    pb: Option<&'a ProgressBar>,
    step: Step,
}

impl<'a> Recorder<'a> {
    /// Record `inner`'s calls in `step` into `transcript`.
    pub fn new(
        inner: &'a mut dyn ToolHost,
        old_lines: &'a dyn Fn(&str) -> Option<usize>,
        transcript: &'a mut Transcript,
        echo: Echo<'a>,
        pb: Option<&'a ProgressBar>,
        step: Step,
    ) -> Self {
        Recorder { inner, old_lines, transcript, echo, pb, step }
    }
}

impl ToolHost for Recorder<'_> {
    fn specs(&self) -> Vec<ToolSpec> {
        self.inner.specs()
    }

    fn call(&mut self, name: &str, input: &serde_json::Value) -> ToolResult {
        let old = (name == "write_file")
            .then(|| input.get("path").and_then(|p| p.as_str()).and_then(|p| (self.old_lines)(p)))
            .flatten();
        let result = self.inner.call(name, input);
        let entry = Entry::Tool {
            at: self.transcript.at(),
            step: self.step,
            name: truncate(name, 100),
            summary: summarize(name, input, old),
            args: truncate(&input.to_string(), MAX_ARGS_CHARS),
            result: truncate(&result.content, MAX_RESULT_CHARS),
            is_error: result.is_error,
        };
        self.transcript.add(&self.echo, self.pb, entry);
        result
    }

    fn turn(&mut self, thinking: &[String], text: &[String]) {
        let at = self.transcript.at();
        for t in thinking.iter().filter(|t| !t.trim().is_empty()) {
            let entry = Entry::Thinking { at, step: self.step, text: truncate(t.trim(), MAX_THINKING_CHARS) };
            self.transcript.add(&self.echo, self.pb, entry);
        }
        for t in text.iter().filter(|t| !t.trim().is_empty()) {
            let entry = Entry::Text { at, step: self.step, text: truncate(t.trim(), MAX_THINKING_CHARS) };
            self.transcript.add(&self.echo, self.pb, entry);
        }
    }

    fn output(&mut self, line: &str) {
        // Neutralised here, once: the record, the report and every live view get the same text.
        let text = crate::text::line(line).into_owned();
        let entry = Entry::Output { at: self.transcript.at(), step: self.step, text };
        self.transcript.add(&self.echo, self.pb, entry);
    }
}

/// The number of lines of the regular file `rel` of the worktree `root`, read
/// as the tools would: confined to the worktree, no link followed at the end.
pub fn file_lines(root: &std::path::Path, rel: &str) -> Option<usize> {
    let root = std::fs::canonicalize(root).ok()?;
    let resolved = crate::agent::paths::resolve(&root, rel).ok()?;
    let meta = std::fs::symlink_metadata(&resolved.abs).ok()?;
    if !meta.is_file() || meta.len() > 4 << 20 {
        return None;
    }
    Some(lines_of(&String::from_utf8_lossy(&std::fs::read(&resolved.abs).ok()?)))
}

/// The attempt's run facts for `report.html` (models, effort, hints,
/// parent, times), as (label, value) pairs; the template escapes them.
pub fn facts(a: &super::record::Attempt) -> Vec<(String, String)> {
    let mut facts = vec![];
    match (&a.proposal_model, &a.impl_model) {
        (Some(p), Some(i)) if p == i => facts.push(("model".into(), p.clone())),
        (Some(p), Some(i)) => facts.push(("models".into(), format!("{p} / {i}"))),
        (Some(m), None) | (None, Some(m)) => facts.push(("model".into(), m.clone())),
        (None, None) => {}
    }
    facts.extend(a.effort.clone().map(|e| ("effort".into(), e)));
    for h in &a.hints {
        facts.push(("hint".into(), first_line(h, 200)));
    }
    if let Some(p) = &a.parent {
        facts.push(("parent".into(), p.chars().take(12).collect()));
    }
    match (&a.started_at, &a.ended_at) {
        (Some(s), Some(e)) => facts.push(("time".into(), format!("{s} → {e}"))),
        (Some(s), None) => facts.push(("started".into(), s.clone())),
        _ => {}
    }
    facts
}

/// One transcript entry as `report.html` shows it: a line that opens on its
/// details (arguments and result, the whole thinking).
#[derive(Debug, Clone)]
pub struct ShownEntry {
    /// Seconds since the attempt started.
    pub at: String,
    /// CSS class: `tool`, `tool error`, `thinking`, `text`, `output`, `progress`.
    pub class: &'static str,
    /// The one-line summary.
    pub line: String,
    /// What opens below it, if anything.
    pub detail: Option<String>,
}

/// The attempt's transcript entries for `report.html` (one collapsed block).
pub fn shown(a: &super::record::Attempt) -> Vec<ShownEntry> {
    a.transcript
        .iter()
        .map(|e| {
            let (at, class, line, detail) = match e {
                Entry::Tool { at, summary, args, result, is_error, .. } => {
                    let class = if *is_error { "tool error" } else { "tool" };
                    (*at, class, summary.clone(), Some(format!("{args}\n→ {result}")))
                }
                Entry::Thinking { at, text, .. } => (*at, "thinking", e.line(false), Some(text.clone())),
                Entry::Text { at, text, .. } => (*at, "text", e.line(false), Some(text.clone())),
                Entry::Output { at, .. } => (*at, "output", e.line(false), None),
                Entry::Progress { at, text, .. } => (*at, "progress", text.clone(), None),
            };
            ShownEntry { at: format!("{at:.1}"), class, line, detail }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    struct Fake;
    impl ToolHost for Fake {
        fn specs(&self) -> Vec<ToolSpec> {
            vec![]
        }
        fn call(&mut self, name: &str, _input: &serde_json::Value) -> ToolResult {
            if name == "grep" {
                ToolResult::error("refused: \x1b[2Jbad")
            } else {
                ToolResult::ok("x".repeat(MAX_RESULT_CHARS + 10))
            }
        }
    }

    #[test]
    fn summaries_name_the_tool_and_its_target() {
        let s = summarize("read_file", &json!({"path": "src/a.c", "offset": 3}), None);
        assert_eq!(s, "read_file src/a.c");
        assert_eq!(summarize("grep", &json!({"pattern": "EMIT\\("}), None), "grep EMIT\\(");
        assert_eq!(summarize("grep", &json!({"pattern": "x", "path": "src"}), None), "grep x in src");
        let w = summarize("write_file", &json!({"path": "src/c/x.c", "content": "a\nb\nc\n"}), Some(1));
        assert_eq!(w, "write_file src/c/x.c +3 −1");
        let r = summarize("replace_in_file", &json!({"path": "k.h", "old": "a", "new": "b\nc"}), None);
        assert_eq!(r, "replace_in_file k.h +2 −1");
        assert_eq!(summarize("list_dir", &json!({}), None), "list_dir {}");
        // A path over many lines shows its first only.
        assert_eq!(summarize("read_file", &json!({"path": "a\nb"}), None), "read_file a…");
    }

    #[test]
    fn thinking_is_summarised_unless_verbose() {
        let e = Entry::Thinking { at: 0.0, step: Step::Propose, text: "The ctx load repeats.\nSo hoist it.".into() };
        assert_eq!(e.line(false), "thinking: The ctx load repeats.…");
        assert_eq!(e.line(true), "thinking: The ctx load repeats.\nSo hoist it.");
        assert_eq!(first_line(&"y".repeat(300), 10), format!("{}…", "y".repeat(10)));
        assert_eq!(truncate("abcdef", 3), "abc… (3 more characters)");
    }

    #[test]
    fn the_recorder_keeps_calls_bounded_and_the_live_log_gets_them() {
        let log = LiveLog::default();
        let echo = Echo { label: "attempt 1", verbose: false, log: Some(&log), file: None };
        let mut transcript = Transcript::new();
        let mut fake = Fake;
        let no_file = |_: &str| None;
        {
            let mut r = Recorder::new(&mut fake, &no_file, &mut transcript, echo, None, Step::Implement);
            r.turn(&["let me look".into()], &[" ".into()]);
            let res = r.call("read_file", &json!({"path": "src/a.c"}));
            assert_eq!(res.content.len(), MAX_RESULT_CHARS + 10, "the model gets the whole result");
            r.call("grep", &json!({"pattern": "x"}));
        }
        assert_eq!(transcript.entries.len(), 3);
        let Entry::Tool { result, .. } = &transcript.entries[1] else { panic!("{:?}", transcript.entries) };
        assert!(result.ends_with("(10 more characters)"), "{result}");
        let (count, lines) = log.snapshot();
        assert_eq!(count, 3);
        assert_eq!(lines[0], "attempt 1: thinking: let me look");
        assert_eq!(lines[1], "attempt 1: read_file src/a.c");
        assert!(lines[2].starts_with("attempt 1: grep x → error: refused: \x1b[2Jbad"), "raw for the page: {lines:?}");
        for _ in 0..MAX_ENTRIES {
            transcript.progress(&echo, None, Step::Validate, "make: ok");
        }
        assert_eq!((transcript.entries.len(), transcript.dropped), (MAX_ENTRIES, 3));
        assert_eq!(log.snapshot().1.len(), LIVE_LINES);
    }

    #[test]
    fn agent_output_is_neutralised_kept_within_its_share_and_written_to_the_live_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = LiveFile::open(dir.path());
        let echo = Echo { label: "attempt 1", verbose: false, log: None, file: Some(&file) };
        let mut transcript = Transcript::new();
        let mut fake = Fake;
        let no_file = |_: &str| None;
        {
            let mut r = Recorder::new(&mut fake, &no_file, &mut transcript, echo, None, Step::Propose);
            r.output("reading \x1b[2Jx.c\u{202e}");
            for _ in 0..MAX_ENTRIES {
                r.output("spam");
            }
        }
        let Entry::Output { text, .. } = &transcript.entries[0] else { panic!("{:?}", transcript.entries[0]) };
        assert_eq!(text, "reading \\x1b[2Jx.c\\u{202e}");
        assert_eq!(transcript.entries.len(), MAX_ENTRIES - RESERVED_ENTRIES, "room is left for bfperf's steps");
        transcript.progress(&echo, None, Step::Validate, "validate: make ok");
        assert_eq!(transcript.entries.len(), MAX_ENTRIES - RESERVED_ENTRIES + 1);

        let (count, lines) = read_live_file(dir.path()).unwrap();
        assert_eq!(lines.len(), LIVE_LINES);
        assert_eq!(lines.last().unwrap(), "attempt 1: validate: make ok");
        assert_eq!(count, std::fs::metadata(dir.path().join(LIVE_FILE)).unwrap().len());
        let all = std::fs::read_to_string(dir.path().join(LIVE_FILE)).unwrap();
        assert!(all.starts_with("attempt 1: agent: reading \\x1b[2Jx.c\\u{202e}\n"), "{}", &all[..80]);

        // A planted link is neither written through nor read.
        let other = tempfile::tempdir().unwrap();
        let target = other.path().join("target");
        std::fs::write(&target, "secret\n").unwrap();
        std::os::unix::fs::symlink(&target, other.path().join(LIVE_FILE)).unwrap();
        LiveFile::open(other.path()).append("attempt 1: x");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "secret\n");
        assert_eq!(read_live_file(other.path()), None);
    }

    #[test]
    fn the_live_file_is_read_from_its_end_and_filtered() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::new();
        for i in 0..20_000 {
            text.push_str(&format!("line {i}\n"));
        }
        text.push_str("planted \x1b]0;t\x07\n");
        std::fs::write(dir.path().join(LIVE_FILE), &text).unwrap();
        let (count, lines) = read_live_file(dir.path()).unwrap();
        assert_eq!(count, text.len() as u64);
        assert_eq!(lines.len(), LIVE_LINES);
        assert_eq!(lines[LIVE_LINES - 2], "line 19999");
        assert_eq!(lines[LIVE_LINES - 1], "planted \\x1b]0;t\\x07");
    }

    /// An attempt with a hostile transcript and every setting, for this
    /// module's tests and the report's.
    pub(crate) fn sample_attempt() -> super::super::record::Attempt {
        let mut a = super::super::record::Attempt::new(2);
        a.transcript = vec![
            Entry::Tool {
                at: 1.5,
                step: Step::Implement,
                name: "write_file".into(),
                summary: "write_file <script>x.c +1 −0".into(),
                args: "{\"path\":\"<b>\"}".into(),
                result: "wrote".into(),
                is_error: false,
            },
            Entry::Thinking { at: 2.0, step: Step::Implement, text: "a & b\nmore".into() },
            Entry::Progress { at: 9.0, step: Step::Validate, text: "validate: make ok".into() },
        ];
        a.transcript_dropped = 4;
        a.effort = Some("high".into());
        a.hints = vec!["look at <the> prologue".into()];
        a.proposal_model = Some("m1".into());
        a.impl_model = Some("m2".into());
        a
    }

    #[test]
    fn the_report_gets_the_transcript_and_settings_as_data() {
        assert!(shown(&super::super::record::Attempt::new(2)).is_empty(), "nothing without a transcript");
        let a = sample_attempt();
        let entries = shown(&a);
        assert_eq!(entries.iter().map(|e| e.class).collect::<Vec<_>>(), ["tool", "thinking", "progress"]);
        assert_eq!(entries[0].at, "1.5");
        let facts = facts(&a);
        assert!(facts.contains(&("models".into(), "m1 / m2".into())), "{facts:?}");
        assert!(facts.contains(&("effort".into(), "high".into())), "{facts:?}");
    }

    #[test]
    fn file_lines_stay_in_the_worktree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.c"), "1\n2\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("l")).unwrap();
        assert_eq!(file_lines(dir.path(), "a.c"), Some(2));
        assert_eq!(file_lines(dir.path(), "l"), None);
        assert_eq!(file_lines(dir.path(), "../x"), None);
        assert_eq!(file_lines(dir.path(), "/etc/passwd"), None);
        assert_eq!(file_lines(dir.path(), "nope"), None);
    }
}
