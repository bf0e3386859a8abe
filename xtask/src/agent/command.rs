//! [`AgentCommand`]: an external coding agent (any command line) as a [`Model`].
//!
//! The command runs as `sh -c CMD` in the given directory (the attempt's worktree) with the prompt
//! on standard input and in a file named by `BFPERF_PROMPT_FILE` (kept outside the worktree so it
//! never shows up in the diff). Its standard output is the answer. In the optimize loop
//! ([`Model::set_step`]) it also gets `BFPERF_STEP` (`propose` or `implement`), `BFPERF_SCOPE`,
//! `BFPERF_WORKTREE`, `BFPERF_FIX_ROUND` and, in the implement step, `BFPERF_PLAN_FILE` (the plan,
//! a file outside the worktree too): the contract of doc/optimize.md. It gets no [`ToolHost`]: it
//! edits files with its own tools, and the caller enforces the scope on the resulting diff.
//! Its standard error is its progress: read line by line as it arrives and handed to
//! [`ToolHost::output`] (the live view), each line and the lines of one run bounded, while its
//! standard output (the answer) is read at the same time on another thread, so neither pipe can
//! fill up and block it.
//! The command runs in its own process group, which is killed when the command ends, times out or
//! is interrupted (Ctrl-C: SIGTERM, then SIGKILL a second later), and when this process is forced
//! out by a second Ctrl-C; the group's leader also dies with us (`PR_SET_PDEATHSIG`) if we are
//! killed outright. The prompt file goes in all these cases but the last.

use super::{AgentError, Conversation, Model, Outcome, ToolHost};
use bench_harness::interrupt::{self, ForcedExitGuard};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Most bytes of one line of the agent's standard error that are kept (the rest is counted).
pub const MAX_LINE_BYTES: usize = 500;
/// Most lines of the agent's standard error streamed per run; the rest are counted in one line.
pub const MAX_STREAMED_LINES: usize = 200;
/// Most bytes of the agent's standard output kept as its answer (the rest is read and counted).
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

/// The environment variable naming the file that holds the prompt.
pub const PROMPT_FILE_VAR: &str = "BFPERF_PROMPT_FILE";
/// The environment variable naming the step: `propose` or `implement`.
pub const STEP_VAR: &str = "BFPERF_STEP";
/// The environment variable naming the file that holds the plan (implement step only).
pub const PLAN_FILE_VAR: &str = "BFPERF_PLAN_FILE";
/// The environment variable holding the scope, relative to the worktree.
pub const SCOPE_VAR: &str = "BFPERF_SCOPE";
/// The environment variable holding the worktree's absolute path.
pub const WORKTREE_VAR: &str = "BFPERF_WORKTREE";
/// The environment variable holding the fix round (0: the first implementation).
pub const FIX_ROUND_VAR: &str = "BFPERF_FIX_ROUND";

/// An external agent command run in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCommand {
    /// The shell command line (`sh -c` runs it).
    pub command: String,
    /// The directory it runs in.
    pub dir: PathBuf,
    /// How long it may run before it is killed (default 30 minutes).
    pub timeout: Duration,
    /// Environment variables set for it besides [`PROMPT_FILE_VAR`] and the step's.
    pub env: Vec<(String, std::ffi::OsString)>,
    /// The optimize step the next runs are for, if any ([`Model::set_step`]).
    pub step: Option<super::StepInfo>,
}

impl AgentCommand {
    /// Run `command` in `dir` with the default timeout.
    pub fn new(command: impl Into<String>, dir: impl Into<PathBuf>) -> Self {
        AgentCommand {
            command: command.into(),
            dir: dir.into(),
            timeout: Duration::from_secs(30 * 60),
            env: vec![],
            step: None,
        }
    }

    /// The same command with `name` set to `value` in its environment.
    pub fn with_env(mut self, name: &str, value: impl Into<std::ffi::OsString>) -> Self {
        self.env.push((name.to_owned(), value.into()));
        self
    }

    /// The same command with another timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Run the command with `prompt` and return its standard output.
    pub fn run(&self, prompt: &str) -> Result<String, AgentError> {
        self.run_streaming(prompt, &mut |_| {})
    }

    /// Run the command with `prompt` and return its standard output (its first
    /// [`MAX_ANSWER_BYTES`]), handing each line of its standard error to `on_line` as it arrives:
    /// at most [`MAX_STREAMED_LINES`] lines of at most [`MAX_LINE_BYTES`] bytes (a cut line says
    /// how much it lost), then one line counting what was not shown. Blank lines are skipped.
    /// The lines are raw: neutralise them before they reach a terminal ([`crate::text`]).
    pub fn run_streaming(&self, prompt: &str, on_line: &mut dyn FnMut(&str)) -> Result<String, AgentError> {
        let spawn_error = |reason: String| AgentError::CommandSpawn { command: self.command.clone(), reason };
        let mut prompt_file = tempfile::Builder::new()
            .prefix("bfperf-prompt-")
            .suffix(".md")
            .tempfile()
            .map_err(|e| spawn_error(format!("cannot write the prompt file: {e}")))?;
        prompt_file
            .write_all(prompt.as_bytes())
            .and_then(|_| prompt_file.flush())
            .map_err(|e| spawn_error(format!("cannot write the prompt file: {e}")))?;

        // The plan, in a file of its own (outside the worktree, gone with the run).
        let plan_file = match self.step.as_ref().and_then(|s| s.plan.as_deref()) {
            Some(plan) => {
                let mut f = tempfile::Builder::new()
                    .prefix("bfperf-plan-")
                    .suffix(".md")
                    .tempfile()
                    .map_err(|e| spawn_error(format!("cannot write the plan file: {e}")))?;
                f.write_all(plan.as_bytes())
                    .and_then(|_| f.flush())
                    .map_err(|e| spawn_error(format!("cannot write the plan file: {e}")))?;
                Some(f)
            }
            None => None,
        };

        let parent = std::process::id();
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(&self.command)
            .current_dir(&self.dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env(PROMPT_FILE_VAR, prompt_file.path());
        // An agent started by another one must not mistake its parent's step for its own.
        for var in [STEP_VAR, PLAN_FILE_VAR, SCOPE_VAR, WORKTREE_VAR, FIX_ROUND_VAR] {
            command.env_remove(var);
        }
        if let Some(step) = &self.step {
            command
                .env(STEP_VAR, step.step)
                .env(SCOPE_VAR, &step.scope)
                .env(WORKTREE_VAR, &step.worktree)
                .env(FIX_ROUND_VAR, step.fix_round.to_string());
        }
        if let Some(f) = &plan_file {
            command.env(PLAN_FILE_VAR, f.path());
        }
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
        // SAFETY: only async-signal-safe calls (prctl, getppid) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                // Die with the thread that started us, even if it is killed outright (SIGKILL):
                // the group's other members are then ended by nobody, but the agent itself is.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before the prctl: then no signal would ever come.
                if libc::getppid() as u32 != parent {
                    return Err(std::io::Error::other("bfperf exited while starting the agent"));
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|e| spawn_error(format!("{e} (in {})", self.dir.display())))?;
        let files = std::iter::once(prompt_file.path()).chain(plan_file.as_ref().map(|f| f.path()));
        let mut group = Group::new(Pid::from_raw(child.id() as i32), files.map(Path::to_owned).collect());

        let mut stdin = child.stdin.take().expect("stdin is piped");
        let prompt_owned = prompt.to_string();
        // A command that never reads its input gets a broken pipe here; that is not an error.
        let writer = thread::spawn(move || drop(stdin.write_all(prompt_owned.as_bytes())));
        let stdout = answer_reader(child.stdout.take().expect("stdout is piped"));
        let (lines_tx, lines) = mpsc::channel();
        let stderr = line_reader(child.stderr.take().expect("stderr is piped"), lines_tx);

        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => break None,
                Ok(None) => {
                    if let Err(e) = super::check_interrupt() {
                        group.stop(&mut child);
                        return Err(e);
                    }
                    // Its progress, as it comes (the wait is the poll's 20 ms).
                    match lines.recv_timeout(Duration::from_millis(20)) {
                        Ok(line) => {
                            on_line(&line);
                            lines.try_iter().for_each(|l| on_line(&l));
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        // It closed its standard error but runs on.
                        Err(mpsc::RecvTimeoutError::Disconnected) => thread::sleep(Duration::from_millis(20)),
                    }
                }
                Err(e) => {
                    group.kill();
                    let _ = child.wait();
                    return Err(spawn_error(format!("cannot wait for it: {e}")));
                }
            }
        };
        // Whatever the command left running in its group goes too.
        group.kill();
        let Some(status) = status else {
            let _ = child.wait();
            return Err(AgentError::CommandTimedOut { command: self.command.clone(), timeout: self.timeout });
        };
        let _ = writer.join();
        // The group is dead, so both pipes reach their end: the readers finish, the channel closes.
        lines.iter().for_each(|l| on_line(&l));
        let (out, cut) = stdout.join().unwrap_or_default();
        let err = stderr.join().unwrap_or_default();
        if err.unshown_lines > 0 {
            on_line(&format!(
                "… {} more lines ({} bytes) of its output not shown",
                err.unshown_lines, err.unshown_bytes
            ));
        }
        if cut > 0 {
            on_line(&format!("its answer was cut at {MAX_ANSWER_BYTES} bytes ({cut} more not kept)"));
        }
        if !status.success() {
            let last: Vec<&str> = err.tail.iter().map(String::as_str).collect();
            return Err(AgentError::CommandFailed {
                command: self.command.clone(),
                status: describe(status),
                stderr_tail: tail(&last.join("\n"), 20, 4_000),
            });
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

impl Model for AgentCommand {
    /// Runs the command once with the system prompt and the user message as one prompt; the
    /// tools and the turn limit do not apply (the agent brings its own), and usage is zero.
    fn converse(&mut self, req: &Conversation, tools: &mut dyn ToolHost) -> Result<Outcome, AgentError> {
        let prompt = format!("{}\n\n{}\n", req.system.trim_end(), req.user.trim_end());
        let text = self.run_streaming(&prompt, &mut |line| tools.output(line))?;
        // Its answer, for the live view (it has no turns of ours to show).
        tools.turn(&[], std::slice::from_ref(&text));
        Ok(Outcome { text, ..Outcome::default() })
    }

    fn set_step(&mut self, step: &super::StepInfo) {
        self.step = Some(step.clone());
    }
}

/// The running command's process group: killed on drop (every way out of [`AgentCommand::run`],
/// panics included), and with the prompt file removed if a second Ctrl-C forces the process out
/// (no destructor runs then).
struct Group {
    leader: Pid,
    killed: bool,
    _forced: ForcedExitGuard,
}

impl Group {
    fn new(leader: Pid, files: Vec<PathBuf>) -> Group {
        let forced = interrupt::on_forced_exit(move || {
            let _ = killpg(leader, Signal::SIGKILL);
            for f in &files {
                let _ = std::fs::remove_file(f);
            }
        });
        Group { leader, killed: false, _forced: forced }
    }

    /// SIGKILL to every member (ESRCH when nothing is left is fine).
    fn kill(&mut self) {
        let _ = killpg(self.leader, Signal::SIGKILL);
        self.killed = true;
    }

    /// Ask the group to stop (SIGTERM), give it a second, then kill it and reap the leader.
    fn stop(&mut self, child: &mut Child) {
        let _ = killpg(self.leader, Signal::SIGTERM);
        let grace = Instant::now() + Duration::from_secs(1);
        while Instant::now() < grace && matches!(child.try_wait(), Ok(None)) {
            thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        let _ = child.wait();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.killed {
            self.kill();
        }
    }
}

/// Reads the answer: its first [`MAX_ANSWER_BYTES`], and how many bytes more it had (read and
/// dropped, so the command never blocks on a full pipe).
fn answer_reader(stream: impl Read + Send + 'static) -> thread::JoinHandle<(Vec<u8>, u64)> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let mut limited = stream.take(MAX_ANSWER_BYTES as u64);
        let _ = limited.read_to_end(&mut buf);
        let cut = std::io::copy(&mut limited.into_inner(), &mut std::io::sink()).unwrap_or(0);
        (buf, cut)
    })
}

/// What [`line_reader`] read besides the lines it sent.
#[derive(Debug, Default)]
struct StderrSummary {
    /// The last 20 lines (each bounded), for the error of a command that failed.
    tail: VecDeque<String>,
    /// Lines past [`MAX_STREAMED_LINES`], not sent.
    unshown_lines: u64,
    /// Their bytes.
    unshown_bytes: u64,
}

/// Reads `stream` line by line with bounded memory (a line keeps its first [`MAX_LINE_BYTES`]),
/// sends the first [`MAX_STREAMED_LINES`] non-blank lines to `tx`, counts the others.
fn line_reader(stream: impl Read + Send + 'static, tx: mpsc::Sender<String>) -> thread::JoinHandle<StderrSummary> {
    thread::spawn(move || {
        let mut summary = StderrSummary::default();
        let mut sent = 0;
        let mut emit = |raw: &[u8], lost: u64, summary: &mut StderrSummary| {
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let mut line = String::from_utf8_lossy(raw).into_owned();
            if line.trim().is_empty() && lost == 0 {
                return;
            }
            if lost > 0 {
                line.push_str(&format!("… ({lost} more bytes)"));
            }
            if summary.tail.len() == 20 {
                summary.tail.pop_front();
            }
            summary.tail.push_back(line.clone());
            if sent < MAX_STREAMED_LINES {
                sent += 1;
                // The receiver is gone only once the run is over: nothing to show then.
                let _ = tx.send(line);
            } else {
                summary.unshown_lines += 1;
                summary.unshown_bytes += raw.len() as u64 + lost + 1;
            }
        };
        let mut reader = BufReader::with_capacity(64 << 10, stream);
        let (mut line, mut lost) = (Vec::with_capacity(MAX_LINE_BYTES), 0u64);
        loop {
            let chunk = match reader.fill_buf() {
                Ok([]) => break,
                Ok(chunk) => chunk,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let (used, end) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, Some(i)),
                None => (chunk.len(), None),
            };
            let part = &chunk[..end.unwrap_or(used)];
            let room = MAX_LINE_BYTES - line.len();
            line.extend_from_slice(&part[..part.len().min(room)]);
            lost += part.len().saturating_sub(room) as u64;
            reader.consume(used);
            if end.is_some() {
                emit(&line, lost, &mut summary);
                line.clear();
                lost = 0;
            }
        }
        if !line.is_empty() || lost > 0 {
            emit(&line, lost, &mut summary);
        }
        summary
    })
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

/// The last `lines` lines of `text`, at most `max_chars` characters.
fn tail(text: &str, lines: usize, max_chars: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    let joined = all[all.len().saturating_sub(lines)..].join("\n");
    let count = joined.chars().count();
    if count <= max_chars {
        return joined;
    }
    joined.chars().skip(count - max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::{Effort, NoTools, StepInfo};

    #[test]
    fn prompt_arrives_on_stdin_and_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = AgentCommand::new(r#"cat > stdin.txt; cp "$BFPERF_PROMPT_FILE" file.txt; pwd"#, dir.path());
        let out = cmd.run("make it faster").unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("stdin.txt")).unwrap(), "make it faster");
        assert_eq!(std::fs::read_to_string(dir.path().join("file.txt")).unwrap(), "make it faster");
        assert_eq!(out.trim(), dir.path().canonicalize().unwrap().to_str().unwrap());
    }

    #[test]
    fn the_step_is_in_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let script = r#"echo "$BFPERF_STEP|$BFPERF_SCOPE|$BFPERF_WORKTREE|$BFPERF_FIX_ROUND|${BFPERF_PLAN_FILE:-none}"; [ -z "${BFPERF_PLAN_FILE:-}" ] || cat "$BFPERF_PLAN_FILE""#;
        let mut cmd = AgentCommand::new(script, dir.path());
        let req = Conversation { system: "s".into(), user: "u".into(), max_turns: 1, effort: Effort::Low };
        cmd.set_step(&StepInfo::propose(Path::new("/wt"), "src/cgen"));
        assert_eq!(cmd.converse(&req, &mut NoTools).unwrap().text, "propose|src/cgen|/wt|0|none\n");
        cmd.set_step(&StepInfo::implement(Path::new("/wt"), "src/cgen", "TITLE: x", 2));
        let out = cmd.converse(&req, &mut NoTools).unwrap().text;
        let (line, plan) = out.split_once('\n').unwrap();
        assert!(line.starts_with("implement|src/cgen|/wt|2|/"), "{out}");
        assert_eq!(plan, "TITLE: x");
        let plan_file = line.rsplit('|').next().unwrap();
        assert!(!Path::new(plan_file).exists(), "the plan file {plan_file} is left");
    }

    #[test]
    fn failure_shows_the_stderr_tail() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = AgentCommand::new("for i in $(seq 1 50); do echo line$i >&2; done; exit 3", dir.path());
        match cmd.run("x") {
            Err(e @ AgentError::CommandFailed { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("exit code 3") && msg.contains("line50") && !msg.contains("line30\n"), "{msg}");
            }
            other => panic!("expected CommandFailed, got {other:?}"),
        }
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        // The shell leads the group; it and its background child would sleep for 10 minutes.
        let script = "echo $$ > pgid.tmp; mv pgid.tmp pgid; sleep 600 & sleep 600";
        let cmd = AgentCommand::new(script, dir.path()).with_timeout(Duration::from_millis(300));
        // On a thread, with a hang guard far beyond the timeout (not a speed check).
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || tx.send(cmd.run("x")).unwrap());
        let result = rx.recv_timeout(Duration::from_secs(300)).expect("hang guard: the timeout never fired");
        assert!(matches!(result, Err(AgentError::CommandTimedOut { .. })), "{result:?}");
        let pgid: i32 = std::fs::read_to_string(dir.path().join("pgid")).unwrap().trim().parse().unwrap();
        // SIGKILL is delivered asynchronously: a hang guard again, then every member is gone.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !live_members(pgid).is_empty() {
            assert!(Instant::now() < deadline, "hang guard: still running: {:?}", live_members(pgid));
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Members of process group `pgid` that are still alive (zombies are dead).
    fn live_members(pgid: i32) -> Vec<i32> {
        let mut live = vec![];
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else { continue };
            let fields: Vec<&str> = rest.split(' ').collect();
            // Fields 3 (state) and 5 (process group) of stat.
            if fields[2].parse() == Ok(pgid) && fields[0] != "Z" {
                live.push(pid);
            }
        }
        live
    }

    #[test]
    fn ctrl_c_ends_the_command_its_group_and_the_prompt_file() {
        let dir = tempfile::tempdir().unwrap();
        let script = r#"echo "$BFPERF_PROMPT_FILE" > prompt; sh -c 'sleep 600' & echo $$ > pgid.tmp; mv pgid.tmp pgid; sleep 600"#;
        let cmd = AgentCommand::new(script, dir.path());
        let started = dir.path().join("pgid");
        crate::agent::tests::interrupt_this_thread_when(move || started.exists());
        let err = cmd.run("the prompt").unwrap_err();
        assert!(matches!(err, AgentError::Interrupted { .. }), "{err}");
        let prompt = std::fs::read_to_string(dir.path().join("prompt")).unwrap();
        assert!(!Path::new(prompt.trim()).exists(), "the prompt file {} is left", prompt.trim());
        let pgid: i32 = std::fs::read_to_string(dir.path().join("pgid")).unwrap().trim().parse().unwrap();
        // SIGKILL is delivered asynchronously: allow the members a moment to die.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !live_members(pgid).is_empty() {
            assert!(Instant::now() < deadline, "still running: {:?}", live_members(pgid));
            thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn a_command_ignoring_stdin_still_works() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = AgentCommand::new("echo ok", dir.path());
        let req = Conversation { system: "s".into(), user: "u".repeat(1 << 20), max_turns: 1, effort: Effort::Low };
        assert_eq!(cmd.converse(&req, &mut NoTools).unwrap().text, "ok\n");
    }

    #[test]
    fn missing_directory_is_a_spawn_error() {
        let cmd = AgentCommand::new("true", "/nonexistent/bfperf");
        assert!(matches!(cmd.run("x"), Err(AgentError::CommandSpawn { .. })));
    }

    /// Collects what [`AgentCommand::run_streaming`] hands over, and creates `seen` once the
    /// first line arrived: the script waits for that file, so it can only finish if its line
    /// was passed on while it still ran.
    fn streamed(script: &str, dir: &Path) -> (Result<String, AgentError>, Vec<String>) {
        let seen = dir.join("seen");
        let mut lines = vec![];
        let out = AgentCommand::new(script, dir).run_streaming("p", &mut |l| {
            lines.push(l.to_owned());
            let _ = std::fs::write(&seen, "");
        });
        (out, lines)
    }

    #[test]
    fn stderr_lines_arrive_while_the_command_runs_and_the_answer_is_whole() {
        let dir = tempfile::tempdir().unwrap();
        // The hang guard (600 × 0.1 s) is no speed check: it fails only if nothing ever came.
        let script = r#"echo "reading x.c" >&2; echo "plan: part 1"
            i=0; until [ -e seen ]; do i=$((i+1)); [ $i -lt 600 ] || { echo "never streamed" >&2; exit 1; }; sleep 0.1; done
            printf 'last line, no newline' >&2; echo "plan: part 2""#;
        let (out, lines) = streamed(script, dir.path());
        assert_eq!(out.unwrap(), "plan: part 1\nplan: part 2\n");
        assert_eq!(lines, ["reading x.c", "last line, no newline"]);
    }

    #[test]
    fn a_flood_is_bounded_and_read_concurrently() {
        let dir = tempfile::tempdir().unwrap();
        // 10 MB on each pipe at once (far beyond a pipe's 64 KiB): with one pipe read after the
        // other, the command would block for ever on the other.
        let script = r#"
            ( head -c 10000000 /dev/zero | tr '\0' y; echo ) &
            ( printf '\033]0;title\007\033[2Jred\r\n\n   \n'; head -c 10000000 /dev/zero | tr '\0' x; echo;
              yes 'spam' | head -n 100000; echo 'the end' ) >&2
            wait; exit 3"#;
        let (out, lines) = streamed(script, dir.path());
        // Blank lines are skipped; the escape is passed on raw (the live view neutralises it).
        assert_eq!(lines[0], "\x1b]0;title\x07\x1b[2Jred");
        assert!(lines[1].starts_with("xxxx") && lines[1].ends_with("… (9999500 more bytes)"), "{}", &lines[1][480..]);
        assert_eq!(lines[1].len(), MAX_LINE_BYTES + "… (9999500 more bytes)".len());
        assert_eq!(lines.len(), MAX_STREAMED_LINES + 2, "the lines shown, the count of the rest, the answer's cut");
        assert_eq!(lines[MAX_STREAMED_LINES - 1], "spam");
        let unshown = 100_000 - (MAX_STREAMED_LINES - 2) + 1;
        let bytes = (100_000 - (MAX_STREAMED_LINES - 2)) * 5 + 8;
        assert_eq!(
            lines[MAX_STREAMED_LINES],
            format!("… {unshown} more lines ({bytes} bytes) of its output not shown")
        );
        let cut = 10_000_001 - MAX_ANSWER_BYTES;
        assert_eq!(
            lines[MAX_STREAMED_LINES + 1],
            format!("its answer was cut at {MAX_ANSWER_BYTES} bytes ({cut} more not kept)")
        );
        // It failed: the error has the real end of its stderr, bounded.
        let msg = out.unwrap_err().to_string();
        assert!(msg.contains("exit code 3") && msg.contains("the end") && msg.len() < 6_000, "{msg}");

        // An answer of 10 MB keeps its first MiB, and says so.
        let (out, lines) = streamed("head -c 10000000 /dev/zero | tr '\\0' y", dir.path());
        assert_eq!(out.unwrap().len(), MAX_ANSWER_BYTES);
        assert_eq!(
            lines,
            [format!(
                "its answer was cut at {MAX_ANSWER_BYTES} bytes ({} more not kept)",
                10_000_000 - MAX_ANSWER_BYTES
            )]
        );
    }

    #[test]
    fn tail_keeps_the_end() {
        assert_eq!(tail("a\nb\nc\n", 2, 100), "b\nc");
        assert_eq!(tail("abcdef", 5, 3), "def");
    }
}
