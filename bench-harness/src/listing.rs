//! Listings of loaded programs: the xlated instructions in the syntax of
//! `bpftool prog dump xlated` (`r8 = 0`, `if r2 > r3 goto L3`,
//! `call bpf_map_lookup_elem#1`, `r1 = map[id:12]`), with jump targets as
//! labels, helpers and kfuncs named, and optionally the x86-64 machine code
//! the JIT made of them; and the diff of two listings.
//!
//! The disassembler is written here rather than taken from a crate: the BPF
//! disassemblers on crates.io print their own (objdump- or LLVM-like)
//! syntax, none prints the kernel's `disasm.c` syntax that bpftool, the
//! verifier log and bpfilter's developers read, and none knows the xlated
//! forms (helper calls as offsets from `__bpf_call_base`, map ids in
//! `ld_imm64`). The rules below follow `kernel/bpf/disasm.c`.
//!
//! A [`Listing::normalized`] listing names maps by their bpfilter role
//! (`map[counters]`) or, failing that, by order of first use (`map[#0]`), so
//! two loads of one program render identically and [`diff`] shows only
//! changes of the code.

use crate::code::{
    Insn, MapInfo, ProgramCode, LD_IMM64, PSEUDO_MAP_FD, PSEUDO_MAP_IDX, PSEUDO_MAP_IDX_VALUE, PSEUDO_MAP_VALUE,
};
use crate::error::Result;
use crate::program::ProgramMetrics;
use crate::suite::Case;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::OnceLock;

// Opcode fields (include/uapi/linux/bpf_common.h, bpf.h).
const CLASS_LD: u8 = 0x00;
const CLASS_LDX: u8 = 0x01;
const CLASS_ST: u8 = 0x02;
const CLASS_STX: u8 = 0x03;
const CLASS_ALU: u8 = 0x04;
const CLASS_JMP: u8 = 0x05;
const CLASS_JMP32: u8 = 0x06;
const CLASS_ALU64: u8 = 0x07;
const MODE_IMM: u8 = 0x00;
const MODE_ABS: u8 = 0x20;
const MODE_IND: u8 = 0x40;
const MODE_MEM: u8 = 0x60;
const MODE_MEMSX: u8 = 0x80;
const MODE_ATOMIC: u8 = 0xc0;
const MODE_NOSPEC: u8 = 0xc0;
const SIZE_DW: u8 = 0x18;
const SRC_X: u8 = 0x08;
const OP_NEG: u8 = 0x80;
const OP_MOV: u8 = 0xb0;
const OP_END: u8 = 0xd0;
const OP_DIV: u8 = 0x30;
const OP_MOD: u8 = 0x90;
const JMP_JA: u8 = 0x00;
const JMP_CALL: u8 = 0x80;
const JMP_EXIT: u8 = 0x90;
const JMP_JCOND: u8 = 0xe0;
const ATOMIC_FETCH: i32 = 0x01;
const ATOMIC_XCHG: i32 = 0xe0 | ATOMIC_FETCH;
const ATOMIC_CMPXCHG: i32 = 0xf0 | ATOMIC_FETCH;
const ATOMIC_LOAD_ACQ: i32 = 0x100;
const ATOMIC_STORE_REL: i32 = 0x110;
const PSEUDO_CALL: u8 = 1;
const PSEUDO_KFUNC_CALL: u8 = 2;
const PSEUDO_BTF_ID: u8 = 3;
const PSEUDO_FUNC: u8 = 4;
const BTF_KIND_ENUM: u32 = 6;
const BTF_KIND_FUNC: u32 = 12;

/// One line of a listing: an instruction (an `ld_imm64` takes one line and two slots).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListingLine {
    /// The instruction's slot in the xlated program, as bpftool numbers it.
    pub index: usize,
    /// The label of this instruction when some jump or call targets it (`L3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The instruction, in bpftool's syntax with labels for targets.
    pub text: String,
}

/// A map the program uses, and the name the listing gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListingMap {
    /// What the listing calls it: `map[NAME]`.
    pub name: String,
    /// Its definition as the kernel reports it.
    pub info: MapInfo,
}

/// The x86-64 machine code the JIT produced for some BPF instructions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JitedBlock {
    /// The first BPF instruction (slot) this code came from; `None` when the
    /// kernel gave no line info to align with.
    pub first_insn: Option<usize>,
    /// The instructions, `ADDRESS: INSTRUCTION` in Intel syntax.
    pub insns: Vec<String>,
}

/// The machine code of a program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jited {
    /// Whether the blocks are aligned with BPF instructions (line info).
    pub aligned: bool,
    /// Why the code is not aligned, or not there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The code, in address order.
    pub blocks: Vec<JitedBlock>,
}

/// A program's listing: its counts, its maps, its instructions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    /// Instructions, in order.
    pub lines: Vec<ListingLine>,
    /// xlated instructions, JITed bytes, verified instructions.
    pub counts: ProgramMetrics,
    /// The maps, in order of first use by the code.
    pub maps: Vec<ListingMap>,
    /// The machine code, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jited: Option<Jited>,
}

/// The diff of two listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListingDiff {
    /// Unified diff (`--- BASE`, `+++ REF`), empty when the code is equal.
    pub unified: String,
    /// Instruction lines only in the reference.
    pub added: usize,
    /// Instruction lines only in the base.
    pub removed: usize,
}

impl ListingDiff {
    /// `+N −M instructions`.
    pub fn summary(&self) -> String {
        format!("+{} \u{2212}{} instructions", self.added, self.removed)
    }
}

/// How maps are named in a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MapNaming {
    /// bpftool's `map[id:12]`.
    Ids,
    /// Role or first use: stable from load to load.
    Stable,
}

/// Names the kernel knows: helpers by id, kernel symbols by address, kfuncs by BTF id.
#[derive(Debug, Default)]
pub struct Symbols {
    helpers: HashMap<i32, String>,
    call_base: Option<u64>,
    kallsyms: HashMap<u64, String>,
    btf_funcs: HashMap<u32, String>,
}

impl Symbols {
    /// The running kernel's names: helper ids and kfuncs from
    /// `/sys/kernel/btf/vmlinux` (enum `bpf_func_id`), symbols from
    /// `/proc/kallsyms` (helper calls in xlated code are offsets from
    /// `__bpf_call_base`). Read once per process; whatever is unreadable
    /// (no BTF, `kptr_restrict`) is left out and those calls print as numbers.
    pub fn host() -> &'static Symbols {
        static HOST: OnceLock<Symbols> = OnceLock::new();
        HOST.get_or_init(|| {
            let mut symbols = Symbols::default();
            symbols.read_vmlinux_btf();
            symbols.read_kallsyms();
            symbols
        })
    }

    /// Symbols from explicit tables (tests, or a kernel described elsewhere).
    pub fn from_tables(
        helpers: impl IntoIterator<Item = (i32, String)>,
        call_base: Option<u64>,
        kallsyms: impl IntoIterator<Item = (u64, String)>,
        btf_funcs: impl IntoIterator<Item = (u32, String)>,
    ) -> Self {
        Symbols {
            helpers: helpers.into_iter().collect(),
            call_base,
            kallsyms: kallsyms.into_iter().collect(),
            btf_funcs: btf_funcs.into_iter().collect(),
        }
    }

    /// The name of helper `id` (`bpf_map_lookup_elem`), from the kernel's BTF.
    pub fn helper(&self, id: i32) -> Option<&str> {
        self.helpers.get(&id).map(String::as_str)
    }

    fn read_kallsyms(&mut self) {
        let Ok(text) = std::fs::read_to_string("/proc/kallsyms") else { return };
        for line in text.lines() {
            let mut parts = line.split_ascii_whitespace();
            let (Some(addr), Some(kind), Some(name)) = (parts.next(), parts.next(), parts.next()) else { continue };
            if !matches!(kind, "t" | "T" | "w" | "W") {
                continue;
            }
            let Ok(addr) = u64::from_str_radix(addr, 16) else { continue };
            // Zero addresses: kptr_restrict hides them, none would resolve.
            if addr == 0 {
                return;
            }
            if name == "__bpf_call_base" {
                self.call_base = Some(addr);
            }
            self.kallsyms.entry(addr).or_insert_with(|| name.to_owned());
        }
    }

    fn read_vmlinux_btf(&mut self) {
        // SAFETY: returns an owned btf object or null (errno set); freed below.
        let btf = unsafe { libbpf_sys::btf__load_vmlinux_btf() };
        if btf.is_null() {
            return;
        }
        let name_of = |off: u32| -> Option<String> {
            // SAFETY: btf is valid until btf__free; the string lives in its string section.
            let ptr = unsafe { libbpf_sys::btf__name_by_offset(btf, off) };
            (!ptr.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr(ptr) }.to_string_lossy().into_owned())
        };
        // SAFETY: btf is valid; type_by_id returns null or a pointer into btf's data.
        let count = unsafe { libbpf_sys::btf__type_cnt(btf) };
        for id in 1..count {
            let ty = unsafe { libbpf_sys::btf__type_by_id(btf, id) };
            if ty.is_null() {
                continue;
            }
            // SAFETY: ty points at a btf_type inside btf's data.
            let (name_off, info) = unsafe { ((*ty).name_off, (*ty).info) };
            let kind = (info >> 24) & 0x1f;
            if kind == BTF_KIND_FUNC {
                if let Some(name) = name_of(name_off) {
                    self.btf_funcs.insert(id, name);
                }
            } else if kind == BTF_KIND_ENUM && name_of(name_off).as_deref() == Some("bpf_func_id") {
                let vlen = (info & 0xffff) as usize;
                // SAFETY: an enum's btf_type is followed by vlen btf_enum records.
                let members = unsafe { std::slice::from_raw_parts(ty.add(1) as *const libbpf_sys::btf_enum, vlen) };
                for member in members {
                    if let Some(name) = name_of(member.name_off) {
                        if let Some(short) = name.strip_prefix("BPF_FUNC_") {
                            if short != "unspec" {
                                self.helpers.insert(member.val, format!("bpf_{short}"));
                            }
                        }
                    }
                }
            }
        }
        // SAFETY: btf came from btf__load_vmlinux_btf and is not used after this.
        unsafe { libbpf_sys::btf__free(btf) };
    }

    /// A helper or kfunc call's name: bpftool's rules (a helper id, else the
    /// kernel symbol at `__bpf_call_base + imm`), then a kfunc's BTF id.
    fn call_name(&self, insn: &Insn) -> String {
        if insn.src == 0 {
            if let Some(name) = self.helper(insn.imm) {
                return name.to_owned();
            }
        }
        if let Some(base) = self.call_base {
            let addr = base.wrapping_add(insn.imm as i64 as u64);
            if let Some(name) = self.kallsyms.get(&addr) {
                return name.clone();
            }
        }
        if insn.src == PSEUDO_KFUNC_CALL {
            if let Some(name) = self.btf_funcs.get(&(insn.imm as u32)) {
                return name.clone();
            }
            return "kernel-function".to_owned();
        }
        "unknown".to_owned()
    }
}

/// The role of a map from the name bpfilter gave it.
fn map_role(name: &str) -> Option<String> {
    let role = match name {
        "bf_cmap" => "counters",
        "bf_pmap" => "printer",
        "bf_lmap" => "log",
        "bf_smap" => "state",
        _ => return name.strip_prefix("bf_set_").filter(|s| !s.is_empty()).map(|s| format!("set_{s}")),
    };
    Some(role.to_owned())
}

/// The slot a jump, call or function address at `index` targets, if any.
fn target(insns: &[Insn], index: usize) -> Option<usize> {
    let insn = insns[index];
    let class = insn.code & 0x07;
    let rel: i64 = match class {
        CLASS_JMP | CLASS_JMP32 => {
            let op = insn.code & 0xf0;
            if op == JMP_EXIT || (class == CLASS_JMP && op == JMP_JA && insn.code & SRC_X != 0) {
                return None;
            }
            if op == JMP_CALL {
                if insn.src != PSEUDO_CALL {
                    return None;
                }
                // Xlated (JITed) code keeps the offset in `off` and puts the
                // subprogram's index in `imm`; loader code has it in `imm`.
                // `off == 0` cannot be xlated: the call would fall into the callee.
                if insn.off != 0 {
                    insn.off as i64
                } else {
                    insn.imm as i64
                }
            } else if class == CLASS_JMP32 && op == JMP_JA {
                insn.imm as i64
            } else {
                insn.off as i64
            }
        }
        CLASS_LD if insn.code == LD_IMM64 && insn.src == PSEUDO_FUNC => insn.imm as i64,
        _ => return None,
    };
    let t = index as i64 + 1 + rel;
    (0..insns.len() as i64).contains(&t).then_some(t as usize)
}

fn size_name(code: u8) -> &'static str {
    match code & 0x18 {
        0x00 => "u32",
        0x08 => "u16",
        0x10 => "u8",
        _ => "u64",
    }
}

fn signed_size_name(code: u8) -> &'static str {
    match code & 0x18 {
        0x00 => "s32",
        0x08 => "s16",
        0x10 => "s8",
        _ => "s64",
    }
}

fn alu_op(op: u8) -> &'static str {
    match op {
        0x00 => "+=",
        0x10 => "-=",
        0x20 => "*=",
        0x30 => "/=",
        0x40 => "|=",
        0x50 => "&=",
        0x60 => "<<=",
        0x70 => ">>=",
        0x90 => "%=",
        0xa0 => "^=",
        0xb0 => "=",
        0xc0 => "s>>=",
        _ => "?=",
    }
}

fn jmp_op(op: u8) -> &'static str {
    match op {
        0x10 => "==",
        0x20 => ">",
        0x30 => ">=",
        0x40 => "&",
        0x50 => "!=",
        0x60 => "s>",
        0x70 => "s>=",
        0xa0 => "<",
        0xb0 => "<=",
        0xc0 => "s<",
        0xd0 => "s<=",
        _ => "?",
    }
}

/// What rendering needs besides the instructions.
struct Context<'a> {
    labels: &'a BTreeMap<usize, String>,
    map_names: &'a HashMap<i32, String>,
    symbols: &'a Symbols,
}

impl Context<'_> {
    fn goto(&self, insns: &[Insn], index: usize, rel: i64) -> String {
        match target(insns, index).and_then(|t| self.labels.get(&t)) {
            Some(label) => label.clone(),
            None => format!("pc{rel:+}"),
        }
    }

    fn map(&self, id: i32) -> String {
        match self.map_names.get(&id) {
            Some(name) => format!("map[{name}]"),
            None => format!("map[id:{id}]"),
        }
    }
}

/// Render the instruction at `index` (bpftool's syntax, without the opcode byte).
fn render(insns: &[Insn], index: usize, cx: &Context<'_>) -> String {
    let insn = insns[index];
    let class = insn.code & 0x07;
    let (d, s) = (insn.dst, insn.src);
    match class {
        CLASS_ALU | CLASS_ALU64 => {
            let r = if class == CLASS_ALU { 'w' } else { 'r' };
            let op = insn.code & 0xf0;
            if op == OP_END {
                if class == CLASS_ALU64 {
                    format!("r{d} = bswap{} r{d}", insn.imm)
                } else {
                    let order = if insn.code & SRC_X != 0 { "be" } else { "le" };
                    format!("r{d} = {order}{} r{d}", insn.imm)
                }
            } else if op == OP_NEG {
                format!("{r}{d} = -{r}{d}")
            } else if insn.code == (CLASS_ALU64 | OP_MOV | SRC_X) && insn.off == 1 {
                format!("r{d} = addr_space_cast(r{s}, {}, {})", (insn.imm as u32) >> 16, insn.imm as u16)
            } else if insn.code == (CLASS_ALU64 | OP_MOV | SRC_X) && insn.off == -1 {
                format!("r{d} = &(void __percpu *)(r{s})")
            } else {
                let name = if (op == OP_DIV || op == OP_MOD) && insn.off == 1 {
                    if op == OP_DIV {
                        "s/="
                    } else {
                        "s%="
                    }
                } else {
                    alu_op(op)
                };
                if insn.code & SRC_X != 0 {
                    let sx = match (op, insn.off) {
                        (OP_MOV, 8) => "(s8)",
                        (OP_MOV, 16) => "(s16)",
                        (OP_MOV, 32) => "(s32)",
                        _ => "",
                    };
                    format!("{r}{d} {name} {sx}{r}{s}")
                } else {
                    format!("{r}{d} {name} {}", insn.imm)
                }
            }
        }
        CLASS_STX => {
            let size = size_name(insn.code);
            let off = insn.off;
            match (insn.code & 0xe0, insn.imm) {
                (MODE_MEM, _) => format!("*({size} *)(r{d} {off:+}) = r{s}"),
                (MODE_ATOMIC, 0x00 | 0x40 | 0x50 | 0xa0) => {
                    format!("lock *({size} *)(r{d} {off:+}) {} r{s}", alu_op(insn.imm as u8))
                }
                (MODE_ATOMIC, imm)
                    if imm & ATOMIC_FETCH != 0 && matches!(imm & !ATOMIC_FETCH, 0x00 | 0x40 | 0x50 | 0xa0) =>
                {
                    let name = match imm & !ATOMIC_FETCH {
                        0x00 => "add",
                        0x40 => "or",
                        0x50 => "and",
                        _ => "xor",
                    };
                    let w = if insn.code & 0x18 == SIZE_DW { "64" } else { "" };
                    format!("r{s} = atomic{w}_fetch_{name}(({size} *)(r{d} {off:+}), r{s})")
                }
                (MODE_ATOMIC, ATOMIC_CMPXCHG) => {
                    let w = if insn.code & 0x18 == SIZE_DW { "64" } else { "" };
                    format!("r0 = atomic{w}_cmpxchg(({size} *)(r{d} {off:+}), r0, r{s})")
                }
                (MODE_ATOMIC, ATOMIC_XCHG) => {
                    let w = if insn.code & 0x18 == SIZE_DW { "64" } else { "" };
                    format!("r{s} = atomic{w}_xchg(({size} *)(r{d} {off:+}), r{s})")
                }
                (MODE_ATOMIC, ATOMIC_LOAD_ACQ) => format!("r{d} = load_acquire(({size} *)(r{s} {off:+}))"),
                (MODE_ATOMIC, ATOMIC_STORE_REL) => format!("store_release(({size} *)(r{d} {off:+}), r{s})"),
                _ => format!("BUG_{:02x}", insn.code),
            }
        }
        CLASS_ST => match insn.code & 0xe0 {
            MODE_MEM => format!("*({} *)(r{d} {:+}) = {}", size_name(insn.code), insn.off, insn.imm),
            MODE_NOSPEC => "nospec".to_owned(),
            _ => format!("BUG_st_{:02x}", insn.code),
        },
        CLASS_LDX => match insn.code & 0xe0 {
            MODE_MEM => format!("r{d} = *({} *)(r{s} {:+})", size_name(insn.code), insn.off),
            MODE_MEMSX => format!("r{d} = *({} *)(r{s} {:+})", signed_size_name(insn.code), insn.off),
            _ => format!("BUG_ldx_{:02x}", insn.code),
        },
        CLASS_LD => match insn.code & 0xe0 {
            MODE_ABS => format!("r0 = *({} *)skb[{}]", size_name(insn.code), insn.imm),
            MODE_IND => format!("r0 = *({} *)skb[r{s} + {}]", size_name(insn.code), insn.imm),
            MODE_IMM if insn.code & 0x18 == SIZE_DW => {
                let next = insns.get(index + 1).map_or(0, |n| n.imm);
                let full = ((next as u32 as u64) << 32) | insn.imm as u32 as u64;
                let value = match s {
                    PSEUDO_MAP_FD => cx.map(insn.imm),
                    PSEUDO_MAP_VALUE => format!("{}[0]+{next}", cx.map(insn.imm)),
                    PSEUDO_MAP_IDX => format!("map[idx:{}]", insn.imm),
                    PSEUDO_MAP_IDX_VALUE => format!("map[idx:{}]+{next}", insn.imm),
                    PSEUDO_FUNC => format!("subprog[{}]", cx.goto(insns, index, insn.imm as i64)),
                    PSEUDO_BTF_ID => format!("0x{full:x}"),
                    _ => format!("0x{full:x}"),
                };
                format!("r{d} = {value}")
            }
            _ => format!("BUG_ld_{:02x}", insn.code),
        },
        CLASS_JMP | CLASS_JMP32 => {
            let r = if class == CLASS_JMP32 { 'w' } else { 'r' };
            let op = insn.code & 0xf0;
            if op == JMP_CALL {
                if s == PSEUDO_CALL {
                    let rel = if insn.off != 0 { insn.off as i64 } else { insn.imm as i64 };
                    format!("call {}", cx.goto(insns, index, rel))
                } else {
                    format!("call {}#{}", cx.symbols.call_name(&insn), insn.imm)
                }
            } else if insn.code == CLASS_JMP | JMP_JA {
                format!("goto {}", cx.goto(insns, index, insn.off as i64))
            } else if insn.code == CLASS_JMP | JMP_JA | SRC_X {
                format!("gotox r{d}")
            } else if insn.code == CLASS_JMP | JMP_JCOND && s == 0 {
                format!("may_goto {}", cx.goto(insns, index, insn.off as i64))
            } else if insn.code == CLASS_JMP32 | JMP_JA {
                format!("gotol {}", cx.goto(insns, index, insn.imm as i64))
            } else if insn.code == CLASS_JMP | JMP_EXIT {
                "exit".to_owned()
            } else if insn.code & SRC_X != 0 {
                format!("if {r}{d} {} {r}{s} goto {}", jmp_op(op), cx.goto(insns, index, insn.off as i64))
            } else {
                format!(
                    "if {r}{d} {} 0x{:x} goto {}",
                    jmp_op(op),
                    insn.imm as u32,
                    cx.goto(insns, index, insn.off as i64)
                )
            }
        }
        _ => unreachable!("class is three bits"),
    }
}

impl Listing {
    /// bpftool's listing of `code`: maps as `map[id:ID]`.
    pub fn of(code: &ProgramCode, metrics: ProgramMetrics) -> Listing {
        Self::build(code, metrics, MapNaming::Ids, Symbols::host())
    }

    /// The listing with stable map names: a map's bpfilter role
    /// (`map[counters]`, `map[set_0000]`), else its own name when no other
    /// map of the program has it, else its order of first use (`map[#0]`).
    /// Two loads of one program give equal normalised listings.
    pub fn normalized(code: &ProgramCode, metrics: ProgramMetrics) -> Listing {
        Self::build(code, metrics, MapNaming::Stable, Symbols::host())
    }

    /// [`Listing::normalized`] with explicit [`Symbols`].
    pub fn normalized_with(code: &ProgramCode, metrics: ProgramMetrics, symbols: &Symbols) -> Listing {
        Self::build(code, metrics, MapNaming::Stable, symbols)
    }

    /// [`Listing::of`] with explicit [`Symbols`].
    pub fn of_with(code: &ProgramCode, metrics: ProgramMetrics, symbols: &Symbols) -> Listing {
        Self::build(code, metrics, MapNaming::Ids, symbols)
    }

    fn build(code: &ProgramCode, metrics: ProgramMetrics, naming: MapNaming, symbols: &Symbols) -> Listing {
        let insns = &code.insns;
        // Maps in order of first use, then those the code never names.
        let mut order: Vec<u32> = Vec::new();
        for insn in insns.iter().filter(|i| i.is_map_load() && matches!(i.src, PSEUDO_MAP_FD | PSEUDO_MAP_VALUE)) {
            if !order.contains(&(insn.imm as u32)) {
                order.push(insn.imm as u32);
            }
        }
        let mut maps: Vec<&MapInfo> = order.iter().filter_map(|id| code.maps.iter().find(|m| m.id == *id)).collect();
        maps.extend(code.maps.iter().filter(|m| !order.contains(&m.id)));
        let mut taken = BTreeSet::new();
        let mut listed = Vec::new();
        for (k, map) in maps.iter().enumerate() {
            let unique = code.maps.iter().filter(|m| m.name == map.name).count() == 1;
            let name = match naming {
                MapNaming::Ids => format!("id:{}", map.id),
                MapNaming::Stable => map_role(&map.name)
                    .or_else(|| (unique && !map.name.is_empty()).then(|| map.name.clone()))
                    .filter(|n| !taken.contains(n))
                    .unwrap_or_else(|| format!("#{k}")),
            };
            taken.insert(name.clone());
            listed.push(ListingMap { name, info: (*map).clone() });
        }
        let map_names: HashMap<i32, String> = listed.iter().map(|m| (m.info.id as i32, m.name.clone())).collect();

        // Slots that start an instruction (skip the second half of ld_imm64).
        let mut starts = Vec::with_capacity(insns.len());
        let mut i = 0;
        while i < insns.len() {
            starts.push(i);
            i += if insns[i].code == LD_IMM64 { 2 } else { 1 };
        }
        let targets: BTreeSet<usize> = starts.iter().filter_map(|&i| target(insns, i)).collect();
        let labels: BTreeMap<usize, String> = targets.iter().enumerate().map(|(k, &t)| (t, format!("L{k}"))).collect();
        let cx = Context { labels: &labels, map_names: &map_names, symbols };
        let lines = starts
            .iter()
            .map(|&i| ListingLine { index: i, label: labels.get(&i).cloned(), text: render(insns, i, &cx) })
            .collect();
        Listing { lines, counts: metrics, maps: listed, jited: None }
    }

    /// The listing as text: `L3:` label lines and `  12: r8 = 0` instruction
    /// lines, with the machine code under the instructions it came from.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let aligned = self.jited.as_ref().filter(|j| j.aligned);
        // Blocks by the BPF slot they start at.
        let mut blocks: BTreeMap<usize, Vec<&JitedBlock>> = BTreeMap::new();
        if let Some(jited) = aligned {
            for block in &jited.blocks {
                blocks.entry(block.first_insn.unwrap_or(0)).or_default().push(block);
            }
        }
        let mut pending: Vec<&JitedBlock> = Vec::new();
        for line in &self.lines {
            if let Some(starting) = blocks.remove(&line.index) {
                flush_blocks(&mut out, &mut pending);
                pending = starting;
            }
            if let Some(label) = &line.label {
                let _ = writeln!(out, "{label}:");
            }
            let _ = writeln!(out, "{:>5}: {}", line.index, line.text);
        }
        flush_blocks(&mut out, &mut pending);
        if let Some(jited) = &self.jited {
            if let Some(note) = &jited.note {
                let _ = writeln!(out, "; {note}");
            }
            if !jited.aligned {
                for block in &jited.blocks {
                    for insn in &block.insns {
                        let _ = writeln!(out, "        {insn}");
                    }
                }
            }
        }
        out
    }

    /// The text that diffs compare: labels and instructions, no slot numbers
    /// (an inserted instruction would otherwise renumber every later line).
    pub fn diff_text(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            if let Some(label) = &line.label {
                let _ = writeln!(out, "{label}:");
            }
            let _ = writeln!(out, "\t{}", line.text);
        }
        out
    }
}

fn flush_blocks(out: &mut String, pending: &mut Vec<&JitedBlock>) {
    for block in pending.drain(..) {
        for insn in &block.insns {
            let _ = writeln!(out, "        ; {insn}");
        }
    }
}

/// The diff of two listings (normalise both first: see [`Listing::normalized`]).
pub fn diff(base: &Listing, reference: &Listing) -> ListingDiff {
    let (old, new) = (base.diff_text(), reference.diff_text());
    let text_diff = similar::TextDiff::from_lines(&old, &new);
    let (mut added, mut removed) = (0, 0);
    for change in text_diff.iter_all_changes() {
        // Label lines are not instructions.
        if change.value().starts_with('\t') {
            match change.tag() {
                similar::ChangeTag::Insert => added += 1,
                similar::ChangeTag::Delete => removed += 1,
                similar::ChangeTag::Equal => {}
            }
        }
    }
    let unified = if added == 0 && removed == 0 && old == new {
        String::new()
    } else {
        text_diff.unified_diff().context_radius(3).header("BASE", "REF").to_string()
    };
    ListingDiff { unified, added, removed }
}

/// Load `case` on `side` (a build's bfcli and its private bpffs: make one per
/// build, not per case), and return its normalised listing (with the machine
/// code when `jited`). Nothing stays loaded.
pub fn load_listing(side: &crate::suite_run::Side, case: &Case, jited: bool) -> Result<Listing> {
    let loaded = side.load(case)?;
    let program = loaded.program();
    let code = program.code()?;
    let mut listing = Listing::normalized(&code, program.metrics());
    if jited {
        listing.jited = Some(jited_code(program.fd(), &listing)?);
    }
    Ok(listing)
}

/// Fetch and disassemble the machine code of the program behind `fd`.
pub fn jited_code(fd: BorrowedFd<'_>, listing: &Listing) -> Result<Jited> {
    let raw = JitedRaw::of(fd)?;
    Ok(raw.disassemble(listing))
}

/// The machine code and its maps to BPF instructions, as `bpf_prog_info` gives them.
#[derive(Debug, Default, Clone)]
pub struct JitedRaw {
    /// All functions' code, concatenated.
    pub image: Vec<u8>,
    /// Each function's kernel address (zero when `kptr_restrict` hides it).
    pub ksyms: Vec<u64>,
    /// Each function's length in `image`.
    pub func_lens: Vec<u32>,
    /// `(BPF slot, kernel address)` of each line-info record.
    pub lines: Vec<(usize, u64)>,
}

impl JitedRaw {
    /// Query the kernel.
    pub fn of(fd: BorrowedFd<'_>) -> Result<Self> {
        let fd = fd.as_raw_fd();
        let first = crate::code::prog_info(fd, |_| {})?;
        let mut image = vec![0u8; first.jited_prog_len as usize];
        let mut ksyms = vec![0u64; first.nr_jited_ksyms as usize];
        let mut func_lens = vec![0u32; first.nr_jited_func_lens as usize];
        let rec = (first.line_info_rec_size as usize).max(std::mem::size_of::<libbpf_sys::bpf_line_info>());
        let mut line_info = vec![0u8; first.nr_line_info as usize * rec];
        let jrec = (first.jited_line_info_rec_size as usize).max(8);
        let mut jited_lines = vec![0u8; first.nr_jited_line_info as usize * jrec];
        let info = crate::code::prog_info(fd, |info| {
            info.jited_prog_len = image.len() as u32;
            info.jited_prog_insns = image.as_mut_ptr() as u64;
            info.nr_jited_ksyms = ksyms.len() as u32;
            info.jited_ksyms = ksyms.as_mut_ptr() as u64;
            info.nr_jited_func_lens = func_lens.len() as u32;
            info.jited_func_lens = func_lens.as_mut_ptr() as u64;
            info.nr_line_info = first.nr_line_info;
            info.line_info_rec_size = rec as u32;
            info.line_info = line_info.as_mut_ptr() as u64;
            info.nr_jited_line_info = first.nr_jited_line_info;
            info.jited_line_info_rec_size = jrec as u32;
            info.jited_line_info = jited_lines.as_mut_ptr() as u64;
        })?;
        image.truncate(info.jited_prog_len as usize);
        let mut lines = Vec::new();
        if info.nr_jited_line_info == info.nr_line_info {
            for k in 0..info.nr_line_info as usize {
                let insn_off = u32::from_ne_bytes(line_info[k * rec..k * rec + 4].try_into().expect("4 bytes"));
                let addr = u64::from_ne_bytes(jited_lines[k * jrec..k * jrec + 8].try_into().expect("8 bytes"));
                lines.push((insn_off as usize, addr));
            }
        }
        Ok(JitedRaw { image, ksyms, func_lens, lines })
    }

    /// Disassemble (Intel syntax), aligned with `listing`'s slots when there is line info.
    pub fn disassemble(&self, listing: &Listing) -> Jited {
        use iced_x86::{Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter};
        if self.image.is_empty() {
            return Jited {
                aligned: false,
                note: Some("the program is not JITed (the kernel gave no machine code)".into()),
                blocks: Vec::new(),
            };
        }
        // Functions: (kernel address, bytes). One function when the kernel did not split them.
        let mut funcs: Vec<(u64, &[u8])> = Vec::new();
        let mut at = 0usize;
        if self.func_lens.is_empty() {
            funcs.push((self.ksyms.first().copied().unwrap_or(0), &self.image[..]));
        } else {
            for (k, &len) in self.func_lens.iter().enumerate() {
                let end = (at + len as usize).min(self.image.len());
                funcs.push((self.ksyms.get(k).copied().unwrap_or(0), &self.image[at..end]));
                at = end;
            }
        }
        let addresses_known = funcs.iter().all(|(a, _)| *a != 0);
        let aligned = !self.lines.is_empty() && addresses_known;
        let slot_at = |addr: u64| -> Option<usize> {
            // The last line record at or before addr, within the same function.
            let func = funcs.iter().find(|(a, b)| addr >= *a && addr < *a + b.len() as u64)?;
            self.lines.iter().filter(|(_, a)| *a >= func.0 && *a <= addr).max_by_key(|(_, a)| *a).map(|(slot, _)| *slot)
        };
        let mut formatter = IntelFormatter::new();
        let options = formatter.options_mut();
        options.set_hex_prefix("0x");
        options.set_hex_suffix("");
        options.set_uppercase_hex(false);
        options.set_branch_leading_zeros(false);
        let mut blocks: Vec<JitedBlock> = Vec::new();
        let mut text = String::new();
        for (k, (base, bytes)) in funcs.iter().enumerate() {
            // Offsets from the function's start, branch targets too: stable from load to load.
            let mut decoder = Decoder::with_ip(64, bytes, 0, DecoderOptions::NONE);
            let mut insn = Instruction::default();
            let mut first = funcs.len() > 1;
            while decoder.can_decode() {
                decoder.decode_out(&mut insn);
                text.clear();
                formatter.format(&insn, &mut text);
                let mut lines = Vec::new();
                if std::mem::take(&mut first) {
                    lines.push(format!("<function {k}>:"));
                }
                lines.push(format!("{:4x}: {text}", insn.ip()));
                let slot = if aligned { slot_at(base + insn.ip()) } else { None };
                match blocks.last_mut() {
                    Some(last) if last.first_insn == slot => last.insns.extend(lines),
                    _ => blocks.push(JitedBlock { first_insn: slot, insns: lines }),
                }
            }
        }
        let _ = listing;
        let note = if aligned {
            None
        } else if self.lines.is_empty() {
            Some(
                "the kernel gave no line info for this program (it was loaded without BTF): machine code in one block"
                    .into(),
            )
        } else {
            Some("kernel addresses are hidden (kernel.kptr_restrict): machine code in one block".into())
        };
        Jited { aligned, note, blocks }
    }
}

#[cfg(test)]
mod tests;
