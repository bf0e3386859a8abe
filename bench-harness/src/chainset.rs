//! Timing a chain load the way upstream does: the `bf_chain_set` call
//! inside bfcli, not the whole `bfcli chain set` process.
//!
//! Upstream's `chain_set__*` benchmark calls libbpfilter's `bf_chain_set`
//! in-process. bfcli's own start-up (dynamic loading, and above all parsing
//! the kernel's BTF in `bf_ctx_setup`) costs about three times the call for
//! an 8-element set (doc/measurements.md §9). So bfperf attaches a uprobe and
//! a uretprobe (one `uprobe_multi` link each) to `bf_chain_set` in the bfcli
//! under test, or in the libbpfilter it loads, and reads the call's wall time
//! from a map: the real bfcli, the real call, no bpfilter code built by bfperf.
//!
//! A bfcli in which no `bf_chain_set` can be found (a statically linked,
//! stripped binary) falls back to [`Method::StartupSubtracted`]: each sample
//! is `bfcli chain set` of the case's chain minus that of the empty chain of
//! the same hook and policy, run back to back in alternating order, so slow
//! drifts of the host cancel within the pair.

use crate::error::{HarnessError, Result};
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The function upstream times, exported by libbpfilter.
pub const SYMBOL: &str = "bf_chain_set";

/// How a chain-load case was timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The `bf_chain_set` call inside bfcli (uprobes), as upstream measures.
    InProcess,
    /// `bfcli chain set` of the chain minus that of the empty chain of the
    /// same hook, paired sample by sample.
    StartupSubtracted,
}

impl Method {
    /// The note the output shows next to the unit.
    pub fn note(self) -> &'static str {
        match self {
            Method::InProcess => "bf_chain_set in-process",
            Method::StartupSubtracted => "bfcli start-up subtracted",
        }
    }

    /// The method both sides of a comparison can use: in-process only when
    /// both can, so REF/BASE always divides like by like.
    pub fn common(a: Method, b: Method) -> Method {
        if a == Method::InProcess && b == Method::InProcess {
            Method::InProcess
        } else {
            Method::StartupSubtracted
        }
    }
}

/// One sample of [`Method::StartupSubtracted`]: the case's `bfcli chain set`
/// minus the empty chain's, in ms. `None` when the difference is not positive:
/// the chain's own cost is lost in bfcli's start-up noise, and neither a
/// median nor a ratio of such samples would mean anything.
pub fn subtracted_ms(full: Duration, empty: Duration) -> Option<f64> {
    let d = full.as_secs_f64() * 1e3 - empty.as_secs_f64() * 1e3;
    (d > 0.0).then_some(d)
}

/// Where `bf_chain_set` is in the files a bfcli runs: the file and the
/// function's file offset (what a uprobe is attached by).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The executable or shared library defining the function.
    pub path: PathBuf,
    /// File offset of the function's first instruction.
    pub offset: u64,
}

/// Find `bf_chain_set` for `bfcli`: in the executable itself (libbpfilter
/// linked statically), else in the shared libraries the dynamic loader
/// resolves for it (`LD_TRACE_LOADED_OBJECTS`, what `ldd` does), in load
/// order. `None` when no file defines it.
pub fn locate(bfcli: &Path) -> Result<Option<Target>> {
    let exe = read(bfcli)?;
    // Not ELF (a wrapper script): nothing to probe, start-up is subtracted.
    let Ok(elf) = Elf::parse(&exe) else { return Ok(None) };
    if let Some(offset) = elf.function_offset(SYMBOL) {
        return Ok(Some(Target { path: bfcli.to_owned(), offset }));
    }
    if !elf.dynamic {
        return Ok(None);
    }
    for lib in loaded_libraries(bfcli)? {
        let Ok(bytes) = std::fs::read(&lib) else { continue };
        let Ok(elf) = Elf::parse(&bytes) else { continue };
        if let Some(offset) = elf.function_offset(SYMBOL) {
            return Ok(Some(Target { path: lib, offset }));
        }
    }
    Ok(None)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| HarnessError::io(format!("cannot read {}", path.display()), e))
}

/// The libraries the dynamic loader maps for `bfcli`, as it resolves them
/// (RUNPATH, `$ORIGIN`, `LD_LIBRARY_PATH`, the loader cache). With
/// `LD_TRACE_LOADED_OBJECTS` set the loader prints them and exits before
/// bfcli's own code runs; only called on dynamically linked files.
fn loaded_libraries(bfcli: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new(bfcli)
        .env("LD_TRACE_LOADED_OBJECTS", "1")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| HarnessError::io(format!("cannot run {}", bfcli.display()), e))?;
    Ok(parse_ld_trace(&String::from_utf8_lossy(&out.stdout)))
}

/// The paths in the loader's trace: `name => /path (0x...)` lines.
fn parse_ld_trace(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|l| l.split_once("=>").map(|(_, r)| r.trim()))
        .filter_map(|r| r.rsplit_once(" (").map_or(Some(r), |(p, _)| Some(p)))
        .filter(|p| p.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}

/// The little of ELF64 (little-endian) needed to find a function's file
/// offset: symbol tables and loadable segments. Every read is bounds-checked;
/// a malformed file is an error, never a panic.
struct Elf<'a> {
    data: &'a [u8],
    /// (vaddr, offset, filesz) of each PT_LOAD segment.
    loads: Vec<(u64, u64, u64)>,
    /// (symbols offset, symbols size, string table offset, string table size).
    symtabs: Vec<(usize, usize, usize, usize)>,
    /// Has a PT_INTERP: run through the dynamic loader.
    dynamic: bool,
}

const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const SHT_SYMTAB: u32 = 2;
const SHT_DYNSYM: u32 = 11;
const STT_FUNC: u8 = 2;
const SYM_SIZE: usize = 24;

impl<'a> Elf<'a> {
    fn parse(data: &'a [u8]) -> std::result::Result<Self, String> {
        if data.get(..4) != Some(b"\x7fELF") {
            return Err("not an ELF file".into());
        }
        if data.get(4) != Some(&2) || data.get(5) != Some(&1) {
            return Err("not a 64-bit little-endian ELF file".into());
        }
        let e = Reader(data);
        let (phoff, phentsize, phnum) = (e.u64(0x20)?, e.u16(0x36)?, e.u16(0x38)?);
        let (shoff, shentsize, shnum) = (e.u64(0x28)?, e.u16(0x3a)?, e.u16(0x3c)?);
        let mut loads = vec![];
        let mut dynamic = false;
        for i in 0..phnum as u64 {
            let at = to_usize(phoff + i * phentsize as u64)?;
            match e.u32(at)? {
                PT_LOAD => loads.push((e.u64(at + 16)?, e.u64(at + 8)?, e.u64(at + 32)?)),
                PT_INTERP => dynamic = true,
                _ => {}
            }
        }
        let mut symtabs = vec![];
        let header = |i: u64| to_usize(shoff + i * shentsize as u64);
        for i in 0..shnum as u64 {
            let at = header(i)?;
            let kind = e.u32(at + 4)?;
            if kind != SHT_SYMTAB && kind != SHT_DYNSYM {
                continue;
            }
            let strings = header(e.u32(at + 40)? as u64)?;
            symtabs.push((
                to_usize(e.u64(at + 24)?)?,
                to_usize(e.u64(at + 32)?)?,
                to_usize(e.u64(strings + 24)?)?,
                to_usize(e.u64(strings + 32)?)?,
            ));
        }
        Ok(Elf { data, loads, symtabs, dynamic })
    }

    /// The file offset of the defined function `name`, if any symbol table
    /// has it.
    fn function_offset(&self, name: &str) -> Option<u64> {
        let e = Reader(self.data);
        for &(syms, size, strs, strs_size) in &self.symtabs {
            let strings = self.data.get(strs..strs.checked_add(strs_size)?)?;
            for i in 0..size / SYM_SIZE {
                let at = syms.checked_add(i * SYM_SIZE)?;
                let (Ok(name_at), Ok(info), Ok(shndx), Ok(value)) =
                    (e.u32(at), e.u8(at + 4), e.u16(at + 6), e.u64(at + 8))
                else {
                    return None;
                };
                if info & 0xf != STT_FUNC || shndx == 0 || value == 0 {
                    continue;
                }
                let Some(rest) = strings.get(name_at as usize..) else { continue };
                let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
                if &rest[..end] == name.as_bytes() {
                    return self.file_offset(value);
                }
            }
        }
        None
    }

    fn file_offset(&self, vaddr: u64) -> Option<u64> {
        self.loads
            .iter()
            .find(|&&(start, _, size)| vaddr >= start && vaddr - start < size)
            .map(|&(start, offset, _)| vaddr - start + offset)
    }
}

fn to_usize(v: u64) -> std::result::Result<usize, String> {
    usize::try_from(v).map_err(|_| "offset out of range".to_string())
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes<const N: usize>(&self, at: usize) -> std::result::Result<[u8; N], String> {
        at.checked_add(N)
            .and_then(|end| self.0.get(at..end))
            .map(|b| b.try_into().expect("N bytes"))
            .ok_or_else(|| "truncated ELF file".to_string())
    }
    fn u8(&self, at: usize) -> std::result::Result<u8, String> {
        Ok(self.bytes::<1>(at)?[0])
    }
    fn u16(&self, at: usize) -> std::result::Result<u16, String> {
        Ok(u16::from_le_bytes(self.bytes(at)?))
    }
    fn u32(&self, at: usize) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.bytes(at)?))
    }
    fn u64(&self, at: usize) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.bytes(at)?))
    }
}

/// The uprobe pair on `bf_chain_set`, timing it in the thread's CPU time as
/// upstream does (Google Benchmark's `cpu_time`, which bfbencher reports).
///
/// Before each bfcli runs, [`Probe::arm`] opens a `task-clock` perf event on
/// that process (it is held before `exec`, so nothing runs unseen) and puts it
/// in the probe's event array. The entry program reads the event and stores
/// the count per thread; the return program adds the difference and one call
/// to that thread's total. Reading a task's event succeeds only in that task,
/// so calls by any other process (another side's bfcli, someone else's) are
/// ignored by construction. Detached when dropped.
#[derive(Debug)]
pub struct Probe {
    target: Target,
    events: OwnedFd,
    start: OwnedFd,
    total: OwnedFd,
    // Programs and links: closing them detaches the probes.
    _fds: Vec<OwnedFd>,
}

/// What the probe saw of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calls {
    /// Summed CPU time of the calls.
    pub time: Duration,
    /// Number of completed calls.
    pub count: u64,
}

/// The probe armed for one process: its `task-clock` event sits in the
/// probe's event array until this is dropped.
#[derive(Debug)]
pub struct Armed<'a> {
    probe: &'a Probe,
    _event: OwnedFd,
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        let key = 0u32;
        // SAFETY: 4-byte key of the event array.
        unsafe { libbpf_sys::bpf_map_delete_elem(self.probe.events.as_raw_fd(), (&key as *const u32).cast()) };
    }
}

impl Probe {
    /// Load the two programs and attach them to `target`.
    pub fn attach(target: Target) -> Result<Self> {
        let fail = |what: &str, errno: i32| {
            HarnessError::ChainSetTiming(format!(
                "cannot {what} for {SYMBOL} in {}: {}",
                target.path.display(),
                std::io::Error::from_raw_os_error(errno)
            ))
        };
        let events = map(libbpf_sys::BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, 1).map_err(|e| fail("create a map", e))?;
        let start = map(libbpf_sys::BPF_MAP_TYPE_HASH, 8, 8, 1024).map_err(|e| fail("create a map", e))?;
        let total = map(libbpf_sys::BPF_MAP_TYPE_HASH, 8, 16, 1024).map_err(|e| fail("create a map", e))?;
        let (ev, st, tot) = (events.as_raw_fd(), start.as_raw_fd(), total.as_raw_fd());
        let entry = load(&entry_insns(ev, st)).map_err(|e| fail("load the entry probe", e))?;
        let ret = load(&return_insns(ev, st, tot)).map_err(|e| fail("load the return probe", e))?;
        let path = CString::new(target.path.as_os_str().as_encoded_bytes())
            .map_err(|_| HarnessError::ChainSetTiming(format!("{}: NUL in path", target.path.display())))?;
        let l1 = link(&entry, &path, target.offset, false).map_err(|e| fail("attach a uprobe", e))?;
        let l2 = link(&ret, &path, target.offset, true).map_err(|e| fail("attach a uretprobe", e))?;
        Ok(Probe { target, events, start, total, _fds: vec![l1, l2, entry, ret] })
    }

    /// Where the probes are attached.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Count the CPU time of process `pid` (not yet past `exec`) from now on,
    /// until the guard is dropped.
    pub fn arm(&self, pid: u32) -> Result<Armed<'_>> {
        let mut attr = libbpf_sys::perf_event_attr {
            type_: libbpf_sys::PERF_TYPE_SOFTWARE,
            size: std::mem::size_of::<libbpf_sys::perf_event_attr>() as u32,
            config: libbpf_sys::PERF_COUNT_SW_TASK_CLOCK as u64,
            ..Default::default()
        };
        attr.set_exclude_hv(1);
        const PERF_FLAG_FD_CLOEXEC: nix::libc::c_ulong = 8;
        // SAFETY: attr is a valid perf_event_attr of `size` bytes; the
        // kernel only reads it. cpu -1: the task on any CPU; no group.
        let fd = unsafe {
            nix::libc::syscall(
                nix::libc::SYS_perf_event_open,
                &attr as *const libbpf_sys::perf_event_attr,
                pid as nix::libc::pid_t,
                -1 as nix::libc::c_int,
                -1 as nix::libc::c_int,
                PERF_FLAG_FD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(HarnessError::ChainSetTiming(format!(
                "cannot count bfcli's CPU time (perf_event_open task-clock): {}",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: a new fd that nothing else owns.
        let event = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let (key, value) = (0u32, event.as_raw_fd() as u32);
        // SAFETY: 4-byte key and value (an fd) of the event array.
        let r = unsafe {
            libbpf_sys::bpf_map_update_elem(
                self.events.as_raw_fd(),
                (&key as *const u32).cast(),
                (&value as *const u32).cast(),
                0,
            )
        };
        if r != 0 {
            return Err(HarnessError::ChainSetTiming(format!(
                "cannot arm the probe on {SYMBOL}: {}",
                std::io::Error::from_raw_os_error(-r)
            )));
        }
        Ok(Armed { probe: self, _event: event })
    }

    /// Take (read and forget) what the probes recorded for the single-threaded
    /// process `pid`. `None` when it never returned from `bf_chain_set`.
    pub fn take(&self, pid: u32) -> Option<Calls> {
        let key: u64 = (u64::from(pid) << 32) | u64::from(pid);
        let mut value = [0u64; 2];
        // SAFETY: key and value are the map's key and value sizes (8 and 16 bytes).
        let found = unsafe {
            libbpf_sys::bpf_map_lookup_elem(
                self.total.as_raw_fd(),
                (&key as *const u64).cast(),
                value.as_mut_ptr().cast(),
            )
        } == 0;
        // A process killed inside the call leaves its start behind: forget
        // everything, so the maps never fill up.
        clear(&self.total);
        clear(&self.start);
        found.then_some(Calls { time: Duration::from_nanos(value[0]), count: value[1] })
    }
}

/// Delete every key of a map with 8-byte keys.
fn clear(map: &OwnedFd) {
    let mut key = 0u64;
    // SAFETY: 8-byte keys; a null current key asks for the first one.
    while unsafe { libbpf_sys::bpf_map_get_next_key(map.as_raw_fd(), std::ptr::null(), (&mut key as *mut u64).cast()) }
        == 0
    {
        // SAFETY: as above.
        if unsafe { libbpf_sys::bpf_map_delete_elem(map.as_raw_fd(), (&key as *const u64).cast()) } != 0 {
            break;
        }
    }
}

fn map(kind: libbpf_sys::bpf_map_type, key: u32, value: u32, max: u32) -> std::result::Result<OwnedFd, i32> {
    let name = c"bfperf_chainset";
    // SAFETY: name outlives the call; null opts are allowed.
    let fd = unsafe { libbpf_sys::bpf_map_create(kind, name.as_ptr(), key, value, max, std::ptr::null()) };
    // SAFETY: a non-negative return is a new fd that nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) }).ok_or(-fd)
}

fn load(insns: &[libbpf_sys::bpf_insn]) -> std::result::Result<OwnedFd, i32> {
    let name = c"bfperf_chainset";
    let mut opts = libbpf_sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_prog_load_opts>() as _,
        expected_attach_type: libbpf_sys::BPF_TRACE_UPROBE_MULTI,
        ..Default::default()
    };
    // SAFETY: insns, name, license and opts outlive the call; libbpf copies them.
    let fd = unsafe {
        libbpf_sys::bpf_prog_load(
            libbpf_sys::BPF_PROG_TYPE_KPROBE,
            name.as_ptr(),
            c"GPL".as_ptr(),
            insns.as_ptr(),
            insns.len() as _,
            &mut opts,
        )
    };
    // SAFETY: a non-negative return is a new fd that nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) }).ok_or(-fd)
}

fn link(prog: &OwnedFd, path: &CString, offset: u64, ret: bool) -> std::result::Result<OwnedFd, i32> {
    let offsets = [offset as std::os::raw::c_ulong];
    let mut opts = libbpf_sys::bpf_link_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _,
        ..Default::default()
    };
    opts.__bindgen_anon_1.uprobe_multi = libbpf_sys::bpf_link_create_opts__bindgen_ty_1__bindgen_ty_3 {
        flags: if ret { libbpf_sys::BPF_F_UPROBE_MULTI_RETURN } else { 0 },
        cnt: 1,
        path: path.as_ptr(),
        offsets: offsets.as_ptr(),
        ..Default::default()
    };
    // SAFETY: path and offsets outlive the call; the kernel copies them.
    let fd = unsafe { libbpf_sys::bpf_link_create(prog.as_raw_fd(), 0, libbpf_sys::BPF_TRACE_UPROBE_MULTI, &opts) };
    // SAFETY: a non-negative return is a new fd that nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) }).ok_or(-fd)
}

// The two programs, in BPF instructions (the harness writes its programs by
// hand, see `Program::empty`). Stack: the event's value (counter, enabled,
// running) at -24, the pid_tgid key at -32, a new total (ns, calls) at -48.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R7: u8 = 7;
const R10: u8 = 10;
const FN_MAP_LOOKUP: i32 = 1;
const FN_MAP_UPDATE: i32 = 2;
const FN_GET_CURRENT_PID_TGID: i32 = 14;
const FN_PERF_EVENT_READ_VALUE: i32 = 55;
const VALUE: i32 = -24;
const KEY: i32 = -32;
const NEW_TOTAL: i32 = -48;

fn insn(code: u32, dst: u8, src: u8, off: i16, imm: i32) -> libbpf_sys::bpf_insn {
    let mut i = libbpf_sys::bpf_insn { code: code as u8, off, imm, ..Default::default() };
    i.set_dst_reg(dst);
    i.set_src_reg(src);
    i
}
fn call(f: i32) -> libbpf_sys::bpf_insn {
    insn(libbpf_sys::BPF_JMP | libbpf_sys::BPF_CALL, 0, 0, 0, f)
}
fn mov_reg(dst: u8, src: u8) -> libbpf_sys::bpf_insn {
    insn(libbpf_sys::BPF_ALU64 | libbpf_sys::BPF_MOV | libbpf_sys::BPF_X, dst, src, 0, 0)
}
fn mov_imm(dst: u8, imm: i32) -> libbpf_sys::bpf_insn {
    insn(libbpf_sys::BPF_ALU64 | libbpf_sys::BPF_MOV | libbpf_sys::BPF_K, dst, 0, 0, imm)
}
fn add_imm(dst: u8, imm: i32) -> libbpf_sys::bpf_insn {
    insn(libbpf_sys::BPF_ALU64 | libbpf_sys::BPF_ADD | libbpf_sys::BPF_K, dst, 0, 0, imm)
}
fn alu_reg(op: u32, dst: u8, src: u8) -> libbpf_sys::bpf_insn {
    insn(libbpf_sys::BPF_ALU64 | op | libbpf_sys::BPF_X, dst, src, 0, 0)
}
fn stx(dst: u8, off: i32, src: u8) -> libbpf_sys::bpf_insn {
    insn(libbpf_sys::BPF_STX | libbpf_sys::BPF_MEM | libbpf_sys::BPF_DW, dst, src, off as i16, 0)
}
fn ldx(dst: u8, src: u8, off: i32) -> libbpf_sys::bpf_insn {
    insn(libbpf_sys::BPF_LDX | libbpf_sys::BPF_MEM | libbpf_sys::BPF_DW, dst, src, off as i16, 0)
}
fn jump(op: u32) -> libbpf_sys::bpf_insn {
    // Target patched by `Asm::land`.
    insn(libbpf_sys::BPF_JMP | op | libbpf_sys::BPF_K, R0, 0, 0, 0)
}
fn ld_map(dst: u8, fd: i32) -> [libbpf_sys::bpf_insn; 2] {
    let pseudo_map_fd = libbpf_sys::BPF_PSEUDO_MAP_FD as u8;
    [
        insn(libbpf_sys::BPF_LD | libbpf_sys::BPF_DW | libbpf_sys::BPF_IMM, dst, pseudo_map_fd, 0, fd),
        insn(0, 0, 0, 0, 0),
    ]
}
fn stack_ptr(dst: u8, off: i32) -> [libbpf_sys::bpf_insn; 2] {
    [mov_reg(dst, R10), add_imm(dst, off)]
}

/// `bpf_perf_event_read_value(events, 0, fp + VALUE, 24)`, then a jump to be
/// patched when it failed (not our process): the index of that jump.
fn read_clock(p: &mut Vec<libbpf_sys::bpf_insn>, events: i32) -> usize {
    p.extend(ld_map(R1, events));
    p.push(mov_imm(R2, 0));
    p.extend(stack_ptr(R3, VALUE));
    p.push(mov_imm(R4, 24));
    p.push(call(FN_PERF_EVENT_READ_VALUE));
    p.push(jump(libbpf_sys::BPF_JNE));
    p.len() - 1
}

/// Point the jumps at `from` to the next instruction to be pushed.
fn land(p: &mut [libbpf_sys::bpf_insn], from: &[usize], to: usize) {
    for &at in from {
        p[at].off = (to - at - 1) as i16;
    }
}

fn exit0(p: &mut Vec<libbpf_sys::bpf_insn>) {
    p.extend([mov_imm(R0, 0), insn(libbpf_sys::BPF_JMP | libbpf_sys::BPF_EXIT, 0, 0, 0, 0)]);
}

/// `start[pid_tgid] = task-clock`, in our process only.
fn entry_insns(events: i32, start: i32) -> Vec<libbpf_sys::bpf_insn> {
    let mut p = vec![];
    let not_ours = read_clock(&mut p, events);
    p.extend([call(FN_GET_CURRENT_PID_TGID), stx(R10, KEY, R0)]);
    p.extend(ld_map(R1, start));
    p.extend(stack_ptr(R2, KEY));
    p.extend(stack_ptr(R3, VALUE));
    p.push(mov_imm(R4, 0));
    p.push(call(FN_MAP_UPDATE));
    let exit = p.len();
    land(&mut p, &[not_ours], exit);
    exit0(&mut p);
    p
}

/// `total[pid_tgid] += (task-clock - start[pid_tgid], 1)`, in our process only.
fn return_insns(events: i32, start: i32, total: i32) -> Vec<libbpf_sys::bpf_insn> {
    let mut p = vec![];
    let not_ours = read_clock(&mut p, events);
    p.push(ldx(R7, R10, VALUE));
    p.extend([call(FN_GET_CURRENT_PID_TGID), stx(R10, KEY, R0)]);
    p.extend(ld_map(R1, start));
    p.extend(stack_ptr(R2, KEY));
    p.push(call(FN_MAP_LOOKUP));
    // No entry seen (armed mid-call): nothing to add.
    let no_start = p.len();
    p.push(jump(libbpf_sys::BPF_JEQ));
    p.push(ldx(R1, R0, 0));
    p.push(alu_reg(libbpf_sys::BPF_SUB, R7, R1));
    p.extend(ld_map(R1, total));
    p.extend(stack_ptr(R2, KEY));
    p.push(call(FN_MAP_LOOKUP));
    let first = p.len();
    p.push(jump(libbpf_sys::BPF_JEQ));
    // Existing total: add in place.
    p.extend([ldx(R1, R0, 0), alu_reg(libbpf_sys::BPF_ADD, R1, R7), stx(R0, 0, R1)]);
    p.extend([ldx(R1, R0, 8), add_imm(R1, 1), stx(R0, 8, R1)]);
    let done = p.len();
    p.push(insn(libbpf_sys::BPF_JMP | libbpf_sys::BPF_JA, 0, 0, 0, 0));
    // First call of this thread: insert (elapsed, 1).
    let new = p.len();
    land(&mut p, &[first], new);
    p.extend([stx(R10, NEW_TOTAL, R7), mov_imm(R1, 1), stx(R10, NEW_TOTAL + 8, R1)]);
    p.extend(ld_map(R1, total));
    p.extend(stack_ptr(R2, KEY));
    p.extend(stack_ptr(R3, NEW_TOTAL));
    p.push(mov_imm(R4, 0));
    p.push(call(FN_MAP_UPDATE));
    let exit = p.len();
    land(&mut p, &[not_ours, no_start, done], exit);
    exit0(&mut p);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtraction_is_positive_or_nothing() {
        let ms = Duration::from_micros;
        assert_eq!(subtracted_ms(ms(11_500), ms(11_000)), Some(0.5));
        assert_eq!(subtracted_ms(ms(11_000), ms(11_000)), None);
        assert_eq!(subtracted_ms(ms(10_800), ms(11_000)), None);
    }

    #[test]
    fn both_sides_must_time_in_process_to_compare_in_process() {
        use Method::*;
        assert_eq!(Method::common(InProcess, InProcess), InProcess);
        assert_eq!(Method::common(InProcess, StartupSubtracted), StartupSubtracted);
        assert_eq!(Method::common(StartupSubtracted, InProcess), StartupSubtracted);
        assert_eq!(serde_json::to_string(&StartupSubtracted).unwrap(), "\"startup_subtracted\"");
        assert_eq!(InProcess.note(), "bf_chain_set in-process");
    }

    #[test]
    fn loader_trace_lines() {
        let trace =
            "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibbpfilter.so.0 => /b/output/lib/libbpfilter.so.0 (0x00007f03)\n\
                     \tlibfoo.so => not found\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f04)\n";
        assert_eq!(parse_ld_trace(trace), vec![PathBuf::from("/b/output/lib/libbpfilter.so.0")]);
    }

    #[test]
    fn malformed_elf_is_an_error_not_a_panic() {
        assert!(Elf::parse(b"#!/bin/sh\n").is_err());
        let mut header = b"\x7fELF\x02\x01\x01".to_vec();
        header.resize(0x40, 0);
        header[0x20] = 0xff; // e_phoff far beyond the file
        header[0x38] = 1; // one program header
        assert!(Elf::parse(&header).is_err());
        // Truncating a real executable anywhere never panics.
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        for len in [0, 16, 64, 1000, exe.len() / 2] {
            if let Ok(elf) = Elf::parse(&exe[..len]) {
                let _ = elf.function_offset(SYMBOL);
            }
        }
    }

    #[test]
    fn finds_a_function_of_this_test_binary_at_its_file_offset() {
        // This test binary is a real ELF with a .symtab: the offset found for
        // one of its functions must hold that function's code.
        let exe_path = std::env::current_exe().unwrap();
        let exe = std::fs::read(&exe_path).unwrap();
        let elf = Elf::parse(&exe).unwrap();
        assert!(elf.dynamic);
        assert!(elf.function_offset("no_such_function_bfperf").is_none());
        let offset = elf.function_offset("main").expect("main is in .symtab") as usize;
        assert!(offset > 0 && offset < exe.len());
        // The loaded image maps that file offset at main's address.
        let main_addr = main_address();
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let mapped = maps.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (lo, hi) = f[0].split_once('-')?;
            let (lo, hi) = (usize::from_str_radix(lo, 16).ok()?, usize::from_str_radix(hi, 16).ok()?);
            let file_off = usize::from_str_radix(f[2], 16).ok()?;
            (f.get(5).map(Path::new) == Some(exe_path.as_path()) && (lo..hi).contains(&main_addr))
                .then(|| main_addr - lo + file_off)
        });
        assert_eq!(mapped, Some(offset));
    }

    fn main_address() -> usize {
        extern "C" {
            fn main(argc: i32, argv: *const *const u8) -> i32;
        }
        main as *const () as usize
    }

    #[test]
    fn every_jump_of_the_programs_lands_forward_inside_them() {
        for p in [entry_insns(3, 4), return_insns(3, 4, 5)] {
            for (i, insn) in p.iter().enumerate() {
                let class = u32::from(insn.code) & 0x07;
                let op = u32::from(insn.code) & 0xf0;
                if class == libbpf_sys::BPF_JMP && op != libbpf_sys::BPF_CALL && op != libbpf_sys::BPF_EXIT {
                    let to = i as i64 + 1 + i64::from(insn.off);
                    assert!(to > i as i64 + 1 && (to as usize) < p.len(), "jump at {i} to {to}");
                }
            }
            // Both end with r0 = 0; exit.
            assert_eq!(u32::from(p[p.len() - 1].code), libbpf_sys::BPF_JMP | libbpf_sys::BPF_EXIT);
        }
    }

    #[test]
    fn the_kernel_verifies_and_attaches_the_probes() {
        // Real kernel: the programs pass the verifier and the uprobe_multi
        // links attach to a function of this test binary (root only).
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root for bpf()");
            return;
        }
        let exe = std::env::current_exe().unwrap();
        let offset = Elf::parse(&std::fs::read(&exe).unwrap()).unwrap().function_offset("main").unwrap();
        let probe = Probe::attach(Target { path: exe.clone(), offset }).expect("probes attach");
        assert_eq!(probe.target().path, exe);
        // Nothing ran under the probe: nothing to take.
        assert_eq!(probe.take(std::process::id()), None);
        // Arming for a process that does not exist fails with one line.
        let err = probe.arm(u32::MAX >> 2).unwrap_err().to_string();
        assert!(err.contains("perf_event_open"), "{err}");
    }
}
