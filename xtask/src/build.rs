//! Building bfcli (and libbpfilter) of one source tree in a build directory
//! outside it: cmake is configured once per build directory, `make bfcli` is
//! incremental, and ccache is used when installed.
//!
//! A directory counts as configured only once cmake *succeeded* there: cmake
//! writes `CMakeCache.txt` (source directory included) even when it ends with
//! "Configuring incomplete", so the cache alone would make every later run skip
//! the configure step and fail in `make`. A marker written after a successful
//! configure, removed before each new one, says it succeeded.

use crate::sandbox::Policy;
use anyhow::{Context as _, Result};
use std::path::{Path, PathBuf};
use xshell::{cmd, Shell};

/// Written in a build directory once cmake configured it successfully (holds the source path).
pub const CONFIGURED_MARKER: &str = "bfperf-configured";

/// How many log lines a build failure shows.
pub const LOG_TAIL_LINES: usize = 20;

/// A build that failed: where its full log is and its last lines.
#[derive(Debug, thiserror::Error)]
#[error("{step} failed for {sources} (full log: {log}); last lines:\n{tail}")]
pub struct BuildFailed {
    /// `cmake` or `make bfcli`.
    pub step: String,
    /// The source tree.
    pub sources: String,
    /// The full log.
    pub log: PathBuf,
    /// The last [`LOG_TAIL_LINES`] lines.
    pub tail: String,
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// One source tree built in one build directory.
#[derive(Debug, Clone)]
pub struct Build {
    sources: PathBuf,
    dir: PathBuf,
    sandbox: Option<Policy>,
}

impl Build {
    /// Build `sources` in `dir` (created on demand).
    pub fn new(sources: &Path, dir: &Path) -> Self {
        Build { sources: sources.to_owned(), dir: dir.to_owned(), sandbox: None }
    }

    /// The same build with its steps confined by `sandbox` (the tree holds
    /// model-written code): they may write only to the build directory.
    pub fn confined(mut self, sandbox: Option<Policy>) -> Self {
        self.sandbox = sandbox;
        self
    }

    /// The build directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the built bfcli lands (bpfilter's layout).
    pub fn bfcli(&self) -> PathBuf {
        bfcli_in(&self.dir)
    }

    /// Where the log of the last step is written.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("bfperf-build.log")
    }

    /// Whether cmake already configured these sources here, successfully.
    pub fn is_configured(&self) -> bool {
        let marked = std::fs::read_to_string(self.marker()).is_ok_and(|m| m == self.marker_text());
        let Ok(cache) = std::fs::read_to_string(self.dir.join("CMakeCache.txt")) else { return false };
        let want = format!("CMAKE_HOME_DIRECTORY:INTERNAL={}", self.sources.display());
        marked && cache.lines().any(|l| l == want)
    }

    /// Forget a successful configure: call before configuring again, so a
    /// configure that fails leaves the directory unconfigured.
    pub fn unmark_configured(&self) -> Result<()> {
        match std::fs::remove_file(self.marker()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove {}", self.marker().display()))
            }
            _ => Ok(()),
        }
    }

    /// Record that cmake configured these sources here successfully.
    pub fn mark_configured(&self) -> Result<()> {
        std::fs::write(self.marker(), self.marker_text())
            .with_context(|| format!("cannot write {}", self.marker().display()))
    }

    fn marker(&self) -> PathBuf {
        self.dir.join(CONFIGURED_MARKER)
    }

    fn marker_text(&self) -> String {
        format!("{}\n", self.sources.display())
    }

    /// Configure (once) and build bfcli. Returns the bfcli path.
    pub fn bfcli_built(&self) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.dir).with_context(|| format!("cannot create {}", self.dir.display()))?;
        let sh = Shell::new()?;
        let (src, dir) = (&self.sources, &self.dir);
        if !self.is_configured() {
            let launcher: Vec<String> = if which("ccache") {
                vec!["-DCMAKE_C_COMPILER_LAUNCHER=ccache".into(), "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache".into()]
            } else {
                vec![]
            };
            let cmake = cmd!(
                sh,
                "cmake -S {src} -B {dir} -DNO_DOCS=1 -DNO_TESTS=1 -DNO_CHECKS=1 -DNO_BENCHMARKS=1 {launcher...}"
            );
            self.unmark_configured()?;
            self.run_logged("cmake", cmake)?;
            self.mark_configured()?;
        }
        let jobs = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).to_string();
        self.run_logged("make bfcli", cmd!(sh, "make -C {dir} -j{jobs} bfcli"))?;
        let bfcli = self.bfcli();
        anyhow::ensure!(
            bfcli.is_file(),
            "the build succeeded but produced no {}: is this a bpfilter tree?",
            bfcli.display()
        );
        Ok(bfcli)
    }

    /// Run one build step, appending both streams to the log. On failure the
    /// error carries the tail of stderr (where compilers and make report).
    fn run_logged(&self, step: &str, cmd: xshell::Cmd<'_>) -> Result<()> {
        use std::io::Write as _;
        let shown = cmd.to_string();
        let out =
            match &self.sandbox {
                None => cmd.quiet().ignore_status().output().map_err(|e| {
                    anyhow::anyhow!("cannot run {step}: {e}: is it installed? (see cargo xtask doctor)")
                })?,
                Some(policy) => {
                    let common = crate::sandbox::git_common_dir(&self.sources);
                    let mut visible = vec![self.sources.as_path()];
                    visible.extend(common.as_deref());
                    let mut cmd = std::process::Command::from(cmd);
                    // bfperf's own directory may be hidden in the sandbox; the build's is not.
                    cmd.current_dir(&self.dir);
                    policy.output(&cmd, &[&self.dir], &visible)?
                }
            };
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .with_context(|| format!("cannot write {}", self.log_path().display()))?;
        writeln!(log, "$ {shown}\n{stdout}{stderr}")?;
        if out.status.success() {
            return Ok(());
        }
        let source = if stderr.trim().is_empty() { &stdout } else { &stderr };
        Err(BuildFailed {
            step: step.to_owned(),
            sources: self.sources.display().to_string(),
            log: self.log_path(),
            tail: tail(source, LOG_TAIL_LINES),
        }
        .into())
    }
}

/// Where bpfilter's build in `dir` puts bfcli.
pub fn bfcli_in(dir: &Path) -> PathBuf {
    dir.join("output/sbin/bfcli")
}

/// Whether `program` is on PATH.
pub fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
        assert_eq!(tail("", 5), "");
    }

    #[test]
    fn unconfigured_directory_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let b = Build::new(Path::new("/src/x"), dir.path());
        assert!(!b.is_configured());
        std::fs::write(dir.path().join("CMakeCache.txt"), "CMAKE_HOME_DIRECTORY:INTERNAL=/src/x\n").unwrap();
        assert!(!b.is_configured(), "a cache alone may come from a failed configure");
        b.mark_configured().unwrap();
        assert!(b.is_configured());
        assert!(!Build::new(Path::new("/src/y"), dir.path()).is_configured());
        assert_eq!(b.bfcli(), dir.path().join("output/sbin/bfcli"));
        b.unmark_configured().unwrap();
        assert!(!b.is_configured());
        b.unmark_configured().unwrap();
    }

    /// A tree whose configure fails until the file `ok` exists, and whose
    /// `bfcli` target only creates the file bpfilter's build would produce.
    fn tree_failing_until_ok() -> tempfile::TempDir {
        let src = tempfile::tempdir().unwrap();
        let lists = r#"cmake_minimum_required(VERSION 3.16)
project(fails NONE)
if(NOT EXISTS "${CMAKE_SOURCE_DIR}/ok")
    message(FATAL_ERROR "create ok first")
endif()
add_custom_target(bfcli
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/output/sbin
    COMMAND ${CMAKE_COMMAND} -E touch ${CMAKE_BINARY_DIR}/output/sbin/bfcli)
"#;
        std::fs::write(src.path().join("CMakeLists.txt"), lists).unwrap();
        src
    }

    #[test]
    fn a_failed_configure_does_not_count_as_configured() {
        let src = tree_failing_until_ok();
        let dir = tempfile::tempdir().unwrap();
        let b = Build::new(src.path(), &dir.path().join("build"));
        let err = b.bfcli_built().unwrap_err().downcast::<BuildFailed>().unwrap();
        assert_eq!(err.step, "cmake");
        assert!(err.tail.contains("create ok first"), "{}", err.tail);
        // cmake left its cache behind, naming the sources: that must not count.
        let cache = std::fs::read_to_string(b.dir().join("CMakeCache.txt")).unwrap();
        assert!(cache.contains(&format!("CMAKE_HOME_DIRECTORY:INTERNAL={}", src.path().display())));
        assert!(!b.is_configured());

        // The cause is fixed: the next build configures again and succeeds.
        std::fs::write(src.path().join("ok"), "").unwrap();
        assert_eq!(b.bfcli_built().unwrap(), b.bfcli());
        assert!(b.is_configured());
        let log = std::fs::read_to_string(b.log_path()).unwrap();
        assert_eq!(log.matches("$ cmake").count(), 2, "{log}");
        // Configured once: the next build skips cmake.
        b.bfcli_built().unwrap();
        let log = std::fs::read_to_string(b.log_path()).unwrap();
        assert_eq!(log.matches("$ cmake").count(), 2, "{log}");
    }
}
