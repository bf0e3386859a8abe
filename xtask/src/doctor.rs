//! `cargo xtask doctor`: everything a run needs, one line per check, and for
//! each failure the command that fixes it.

use crate::sources::Sources;
use bench_harness::flavor::{Flavor, Verdict};
use bench_harness::packet::PacketKind;
use bench_harness::program::Program;
use bench_harness::runner::{self, RunInput};
use std::path::Path;
use std::process::Command;

/// How much a failing check matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// A run cannot work without it.
    Required,
    /// Useful (faster builds, steadier numbers) but optional.
    Advice,
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Passed?
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// The command that fixes it, when it failed.
    pub fix: Option<String>,
    /// Required or advice.
    pub level: Level,
}

impl Check {
    fn new(name: &str, ok: bool, detail: impl Into<String>, fix: Option<&str>, level: Level) -> Self {
        Check {
            name: name.into(),
            ok,
            detail: detail.into(),
            fix: if ok { None } else { fix.map(str::to_owned) },
            level,
        }
    }

    /// `✔ name: detail` or `✘ name: detail — fix: command` (`!` for advice).
    pub fn line(&self) -> String {
        let mark = match (self.ok, self.level) {
            (true, _) => "✔",
            (false, Level::Required) => "✘",
            (false, Level::Advice) => "!",
        };
        match &self.fix {
            Some(fix) => format!("{mark} {}: {} — fix: {fix}", self.name, self.detail),
            None => format!("{mark} {}: {}", self.name, self.detail),
        }
    }
}

fn which(program: &str) -> bool {
    crate::build::which(program)
}

fn tool(name: &str, package: &str) -> Check {
    let ok = which(name);
    Check::new(
        name,
        ok,
        if ok { "found" } else { "not on PATH" },
        Some(&format!("apt-get install -y {package}")),
        Level::Required,
    )
}

fn cap_bpf() -> bool {
    // CAP_BPF is bit 39 of the effective set.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("CapEff:").map(|v| v.trim().to_owned())))
        .and_then(|hex| u64::from_str_radix(&hex, 16).ok())
        .is_some_and(|caps| caps & (1 << 39) != 0)
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// Run every check. `sources` is the bpfilter checkout, when one is given.
pub fn run(sources: Option<&Path>) -> Vec<Check> {
    let mut checks = vec![];
    let root = nix::unistd::geteuid().is_root();
    checks.push(Check::new(
        "privileges",
        root || cap_bpf(),
        if root {
            "root".to_string()
        } else if cap_bpf() {
            "CAP_BPF".into()
        } else {
            "neither root nor CAP_BPF".into()
        },
        Some("sudo -E cargo xtask ..."),
        Level::Required,
    ));
    let bpf = bench_harness::program::check_bpf_access();
    checks.push(Check::new(
        "bpf()",
        bpf.is_ok(),
        bpf.as_ref().map(|()| "programs load".to_string()).unwrap_or_else(|e| e.to_string()),
        Some("run as root on a kernel with CONFIG_BPF_SYSCALL=y"),
        Level::Required,
    ));
    let fs = bench_harness::bpffs::Bpffs::mount().map(drop);
    checks.push(Check::new(
        "bpffs",
        fs.is_ok(),
        fs.as_ref().map(|()| "a private bpffs mounts and unmounts".to_string()).unwrap_or_else(|e| e.to_string()),
        Some("run as root (mount -t bpf needs CAP_SYS_ADMIN)"),
        Level::Required,
    ));
    let kernel = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
    checks.push(Check::new("kernel", true, kernel, None, Level::Required));
    if bpf.is_ok() {
        for flavor in Flavor::ALL {
            let packet = PacketKind::LocalIp6Tcp;
            let result = Program::empty(flavor, Verdict::Accept)
                .and_then(|p| runner::test_run(&p, &RunInput::new(flavor, packet), 1));
            let name = format!("BPF_PROG_TEST_RUN {flavor}");
            checks.push(match result {
                Ok(o) => Check::new(&name, true, format!("returns {}", o.retval), None, Level::Required),
                Err(e) => Check::new(
                    &name,
                    false,
                    e.to_string(),
                    Some("a newer kernel (netfilter needs Linux >= 6.4)"),
                    Level::Required,
                ),
            });
        }
    }
    for (bin, pkg) in [
        ("cmake", "cmake"),
        ("make", "make"),
        ("cc", "build-essential"),
        ("bison", "bison"),
        ("flex", "flex"),
        ("pkg-config", "pkgconf"),
    ] {
        checks.push(tool(bin, pkg));
    }
    let libbpf = Command::new("pkg-config").args(["--exists", "libbpf"]).status().is_ok_and(|s| s.success());
    checks.push(Check::new(
        "libbpf",
        libbpf,
        if libbpf { "pkg-config finds it" } else { "not found by pkg-config" },
        Some("apt-get install -y libbpf-dev"),
        Level::Required,
    ));
    match sources.map(Path::to_owned).or_else(|| std::env::var_os(crate::sources::SOURCES_ENV).map(Into::into)) {
        Some(path) => {
            let s = Sources::open(&path);
            checks.push(Check::new(
                "bpfilter checkout",
                s.is_ok(),
                s.as_ref().map(|s| s.root().display().to_string()).unwrap_or_else(|e| e.to_string()),
                Some("git clone https://github.com/facebook/bpfilter && export BPFILTER_SOURCES=$PWD/bpfilter"),
                Level::Required,
            ));
        }
        None => checks.push(Check::new(
            "bpfilter checkout",
            false,
            "none given (--sources or BPFILTER_SOURCES); `cargo xtask demo` works without one",
            Some("export BPFILTER_SOURCES=/path/to/bpfilter"),
            Level::Advice,
        )),
    }
    checks.extend(optimize_checks(sources));
    let ccache = which("ccache");
    checks.push(Check::new(
        "ccache",
        ccache,
        if ccache { "found: builds are cached" } else { "not found: rebuilds are slower" },
        Some("apt-get install -y ccache"),
        Level::Advice,
    ));
    let isolated = read("/sys/devices/system/cpu/isolated").unwrap_or_default();
    checks.push(Check::new(
        "isolated CPUs",
        !isolated.is_empty(),
        if isolated.is_empty() { "none (noisier numbers)".to_string() } else { format!("{isolated} (use --cpu-pin)") },
        Some("boot with isolcpus=N and pass --cpu-pin N"),
        Level::Advice,
    ));
    match read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor") {
        Some(g) => checks.push(Check::new(
            "frequency governor",
            g == "performance",
            g,
            Some("cpupower frequency-set -g performance"),
            Level::Advice,
        )),
        None => {
            checks.push(Check::new("frequency governor", true, "not exposed (virtual machine?)", None, Level::Advice))
        }
    }
    let turbo = read("/sys/devices/system/cpu/intel_pstate/no_turbo")
        .map(|v| v == "1")
        .or_else(|| read("/sys/devices/system/cpu/cpufreq/boost").map(|v| v == "0"));
    match turbo {
        Some(off) => checks.push(Check::new(
            "turbo",
            off,
            if off { "off" } else { "on (frequency varies with load)" },
            Some("echo 1 > /sys/devices/system/cpu/intel_pstate/no_turbo"),
            Level::Advice,
        )),
        None => checks.push(Check::new("turbo", true, "not exposed", None, Level::Advice)),
    }
    checks.push(key_check(std::env::var_os("ANTHROPIC_API_KEY").is_some_and(|k| !k.is_empty())));
    checks
}

/// What `optimize`'s default validation needs beyond a bench build: the
/// programs and packages of bpfilter's test build (clang-tidy, clang-format,
/// cmocka, Google Benchmark...), each with its apt line; with the sources, a
/// configure of their test build in a scratch directory (naming what cmake
/// misses) and whether the installed clang-format reads their `.clang-format`.
/// Advice: `bench` needs none of it.
fn optimize_checks(sources: Option<&Path>) -> Vec<Check> {
    let mut checks = vec![];
    let basic = ["cmake", "make", "cc", "bison", "flex", "pkg-config", "libbpf"];
    for (what, how, package) in crate::validation::BPFILTER_NEEDS.iter().filter(|(w, _, _)| !basic.contains(w)) {
        let names: Vec<&str> = what.split('|').collect();
        let shown = names.last().copied().unwrap_or(what);
        let ok = match *how {
            "pkg-config" => Command::new("pkg-config").args(["--exists", what]).status().is_ok_and(|s| s.success()),
            _ => names.iter().any(|n| which(n)),
        };
        let detail = match (ok, *how) {
            (true, "pkg-config") => "pkg-config finds it",
            (true, _) => "found",
            (false, "pkg-config") => "not found by pkg-config: bpfilter's tests need it",
            (false, _) => "not on PATH: bpfilter's tests need it",
        };
        let name = format!("optimize: {shown}");
        checks.push(Check::new(&name, ok, detail, Some(&format!("apt-get install -y {package}")), Level::Advice));
    }
    let Some(root) =
        sources.map(Path::to_owned).or_else(|| std::env::var_os(crate::sources::SOURCES_ENV).map(Into::into))
    else {
        return checks;
    };
    if !root.join("CMakeLists.txt").is_file() {
        return checks;
    }
    if which("cmake") {
        checks.push(test_build_check(&root));
    }
    if let Some(c) = clang_format_check(&root) {
        checks.push(c);
    }
    checks
}

/// Configure the test build of `root` in a scratch directory, as optimize does.
fn test_build_check(root: &Path) -> Check {
    let name = "optimize: test build";
    let Ok(scratch) = tempfile::Builder::new().prefix("bfperf-doctor-").tempdir() else {
        return Check::new(name, false, "cannot create a scratch directory", None, Level::Advice);
    };
    let out = Command::new("cmake").arg("-S").arg(root).arg("-B").arg(scratch.path()).arg("-DNO_DOCS=1").output();
    match out {
        Ok(o) if o.status.success() => {
            Check::new(name, true, "cmake configures it (tests enabled)", None, Level::Advice)
        }
        Ok(o) => {
            let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
            match crate::validation::missing(&text) {
                Some((what, package)) => {
                    let fix = package.map(|p| format!("apt-get install -y {p}"));
                    Check::new(name, false, format!("cmake fails: {what} is missing"), fix.as_deref(), Level::Advice)
                }
                None => {
                    let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_owned();
                    Check::new(name, false, format!("cmake fails: {}", crate::text::line(&last)), None, Level::Advice)
                }
            }
        }
        Err(e) => Check::new(name, false, format!("cannot run cmake: {e}"), None, Level::Advice),
    }
}

/// Whether the clang-format the tree's CMake would pick reads the tree's `.clang-format`: an
/// older one stops at the first key it does not know (`unknown key 'InsertNewlineAtEOF'`).
fn clang_format_check(root: &Path) -> Option<Check> {
    let style = root.join(".clang-format");
    if !style.is_file() {
        return None;
    }
    let program = ["clang-format-18", "clang-format"].into_iter().find(|p| which(p))?;
    let scratch = tempfile::Builder::new().prefix("bfperf-doctor-").tempdir().ok()?;
    let probe = scratch.path().join("probe.c");
    std::fs::write(
        &probe, "int x;
",
    )
    .ok()?;
    let out = Command::new(program).arg(format!("--style=file:{}", style.display())).arg(&probe).output().ok()?;
    let version = Command::new(program)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let name = "optimize: .clang-format";
    if out.status.success() {
        return Some(Check::new(name, true, format!("{program} reads .clang-format ({version})"), None, Level::Advice));
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let why = err
        .lines()
        .find(|l| l.contains("error:"))
        .map(|l| l.split("error:").last().unwrap_or(l).trim())
        .unwrap_or("it fails");
    Some(Check::new(
        name,
        false,
        format!(
            "{program} is older than the tree's .clang-format needs ({why}; {version}): `make fixstyle` fails on the \
             baseline, attempts are not reformatted"
        ),
        Some(
            "apt-get install -y clang-format-19 && ln -sf /usr/bin/clang-format-19 /usr/local/bin/clang-format \
             (Debian 12; the tree's CMake looks for clang-format-18, then clang-format)",
        ),
        Level::Advice,
    ))
}

/// The API key check: says whether it is set, never what it is.
fn key_check(present: bool) -> Check {
    Check::new(
        "ANTHROPIC_API_KEY",
        present,
        if present { "set (not shown)" } else { "not set: needed by optimize only" },
        Some("export ANTHROPIC_API_KEY=... (or use --agent-command / --backend openai)"),
        Level::Advice,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_show_the_fix_only_on_failure() {
        let ok = Check::new("cmake", true, "found", Some("apt-get install -y cmake"), Level::Required);
        assert_eq!(ok.line(), "✔ cmake: found");
        let bad = Check::new("cmake", false, "not on PATH", Some("apt-get install -y cmake"), Level::Required);
        assert_eq!(bad.line(), "✘ cmake: not on PATH — fix: apt-get install -y cmake");
        let advice = Check::new("ccache", false, "not found", Some("apt-get install -y ccache"), Level::Advice);
        assert!(advice.line().starts_with("! ccache"));
    }

    #[test]
    fn the_key_check_never_takes_the_key() {
        // key_check only receives whether the key is set: it cannot print it.
        assert_eq!(key_check(true).line(), "✔ ANTHROPIC_API_KEY: set (not shown)");
        assert!(key_check(false).line().contains("fix: export ANTHROPIC_API_KEY=..."));
    }

    #[test]
    fn the_checks_cover_what_a_run_needs() {
        let names: Vec<String> = run(None).into_iter().map(|c| c.name).collect();
        for want in [
            "privileges",
            "bpf()",
            "bpffs",
            "kernel",
            "cmake",
            "libbpf",
            "bpfilter checkout",
            "ccache",
            "ANTHROPIC_API_KEY",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
        }
    }
}
