//! The code the kernel runs for a loaded program: its xlated instructions
//! (after the verifier's rewrites) and the maps it uses, as
//! `bpf_prog_get_info_by_fd` returns them.
//!
//! Two loads of the same program differ only in their map ids: the kernel
//! writes each map reference (`ld_imm64` with `BPF_PSEUDO_MAP_FD` or
//! `BPF_PSEUDO_MAP_VALUE`) as the map's id when it dumps a program.
//! [`ProgramCode::normalized`] renames those ids to their order of first use,
//! so two loads of one program compare equal and any other difference is a
//! difference in the code. The JIT is deterministic given the xlated code, so
//! equal normalised code means the same machine code, up to where it lies in
//! memory.
//!
//! What this does not see: map *contents* (bpfilter's counters change as the
//! program runs, so they could not be compared anyway). Map definitions
//! (type, key and value sizes, entries, flags) are part of the identity.

use crate::error::{HarnessError, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `BPF_LD | BPF_IMM | BPF_DW`: the two-slot 64-bit immediate load.
pub const LD_IMM64: u8 = 0x18;
/// `src_reg` of an `ld_imm64` naming a map (its id, in a dump).
pub const PSEUDO_MAP_FD: u8 = 1;
/// `src_reg` of an `ld_imm64` naming a map value (map id + offset, in a dump).
pub const PSEUDO_MAP_VALUE: u8 = 2;
/// `src_reg` of an `ld_imm64` naming a map by index (loader form).
pub const PSEUDO_MAP_IDX: u8 = 5;
/// `src_reg` of an `ld_imm64` naming a map value by index (loader form).
pub const PSEUDO_MAP_IDX_VALUE: u8 = 6;

/// One BPF instruction, as the kernel lays it out (8 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Insn {
    /// Opcode: class, size or source, operation.
    pub code: u8,
    /// Destination register (low nibble of the register byte).
    pub dst: u8,
    /// Source register (high nibble), or the pseudo kind of an `ld_imm64`/call.
    pub src: u8,
    /// Signed offset (jumps, memory accesses).
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

impl Insn {
    /// Decode the kernel's layout.
    pub fn from_raw(raw: &libbpf_sys::bpf_insn) -> Self {
        Insn { code: raw.code, dst: raw.dst_reg(), src: raw.src_reg(), off: raw.off, imm: raw.imm }
    }

    /// Whether this is the first slot of an `ld_imm64` that names a map.
    pub fn is_map_load(&self) -> bool {
        self.code == LD_IMM64
            && matches!(self.src, PSEUDO_MAP_FD | PSEUDO_MAP_VALUE | PSEUDO_MAP_IDX | PSEUDO_MAP_IDX_VALUE)
    }
}

/// A map a program uses, as `bpf_map_info` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MapInfo {
    /// The kernel's id (differs from load to load).
    pub id: u32,
    /// The name given at creation (bpfilter names its maps by role).
    pub name: String,
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
    /// `BPF_F_*` creation flags.
    pub flags: u32,
}

/// A loaded program's xlated code and maps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramCode {
    /// The xlated instructions, in order (an `ld_imm64` takes two).
    pub insns: Vec<Insn>,
    /// The maps the program uses, in the kernel's order.
    pub maps: Vec<MapInfo>,
}

/// [`ProgramCode`] with map ids replaced by their order of first use: equal
/// for two loads of the same program.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NormalizedCode {
    insns: Vec<Insn>,
    /// Definitions of the maps, in order of first use (name, type, sizes, flags; no id).
    maps: Vec<(String, u32, u32, u32, u32, u32)>,
}

impl ProgramCode {
    /// Fetch the code of the program behind `fd`.
    pub fn of(fd: BorrowedFd<'_>) -> Result<Self> {
        let fd = fd.as_raw_fd();
        let lengths = prog_info(fd, |_| {})?;
        let insn_size = std::mem::size_of::<libbpf_sys::bpf_insn>();
        let count = lengths.xlated_prog_len as usize / insn_size;
        let mut raw = vec![libbpf_sys::bpf_insn::default(); count];
        let mut map_ids = vec![0u32; lengths.nr_map_ids as usize];
        let info = prog_info(fd, |info| {
            info.xlated_prog_len = (count * insn_size) as u32;
            info.xlated_prog_insns = raw.as_mut_ptr() as u64;
            info.nr_map_ids = map_ids.len() as u32;
            info.map_ids = map_ids.as_mut_ptr() as u64;
        })?;
        // The program cannot change once loaded; a shorter answer would be a kernel oddity.
        raw.truncate(info.xlated_prog_len as usize / insn_size);
        map_ids.truncate(info.nr_map_ids as usize);
        if raw.is_empty() && count > 0 {
            return Err(HarnessError::io(
                "the kernel returned no xlated instructions (is kernel.kptr_restrict or lockdown hiding them?)",
                std::io::Error::from_raw_os_error(nix::errno::Errno::EPERM as i32),
            ));
        }
        let maps = map_ids.into_iter().map(map_info).collect::<Result<Vec<_>>>()?;
        Ok(ProgramCode { insns: raw.iter().map(Insn::from_raw).collect(), maps })
    }

    /// The code with map ids renamed to their order of first use.
    pub fn normalized(&self) -> NormalizedCode {
        let mut order: HashMap<i32, i32> = HashMap::new();
        let mut insns = self.insns.clone();
        for insn in &mut insns {
            if insn.is_map_load() {
                let next = order.len() as i32;
                insn.imm = *order.entry(insn.imm).or_insert(next);
            }
        }
        let mut used: Vec<(i32, &MapInfo)> =
            self.maps.iter().map(|m| (order.get(&(m.id as i32)).copied().unwrap_or(i32::MAX), m)).collect();
        // Maps the code never names (e.g. used only through a helper) keep the kernel's order, after the others.
        used.sort_by_key(|(k, _)| *k);
        let maps = used
            .into_iter()
            .map(|(_, m)| (m.name.clone(), m.map_type, m.key_size, m.value_size, m.max_entries, m.flags))
            .collect();
        NormalizedCode { insns, maps }
    }

    /// Whether `self` and `other` are the same program (see the module docs).
    pub fn same_program(&self, other: &ProgramCode) -> bool {
        self.normalized() == other.normalized()
    }
}

/// Call `bpf_prog_get_info_by_fd` with the buffers `fill` sets up.
pub(crate) fn prog_info(
    fd: i32,
    fill: impl FnOnce(&mut libbpf_sys::bpf_prog_info),
) -> Result<libbpf_sys::bpf_prog_info> {
    let mut info = libbpf_sys::bpf_prog_info::default();
    fill(&mut info);
    let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
    // SAFETY: info is a valid bpf_prog_info of `len` bytes; every buffer it
    // points to was sized by the caller for the count it set and outlives the call.
    let ret = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len) };
    if ret < 0 {
        return Err(HarnessError::io("cannot query bpf_prog_info", std::io::Error::from_raw_os_error(-ret)));
    }
    Ok(info)
}

/// The definition of map `id`.
fn map_info(id: u32) -> Result<MapInfo> {
    // SAFETY: plain syscall wrapper; a non-negative result is a new fd we own.
    let fd = unsafe { libbpf_sys::bpf_map_get_fd_by_id(id) };
    if fd < 0 {
        return Err(HarnessError::io(format!("cannot open map {id}"), std::io::Error::from_raw_os_error(-fd)));
    }
    // SAFETY: bpf_map_get_fd_by_id returned a new fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut info = libbpf_sys::bpf_map_info::default();
    let mut len = std::mem::size_of::<libbpf_sys::bpf_map_info>() as u32;
    // SAFETY: info is a valid bpf_map_info of `len` bytes without buffers.
    let ret = unsafe { libbpf_sys::bpf_map_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) };
    if ret < 0 {
        return Err(HarnessError::io(format!("cannot query map {id}"), std::io::Error::from_raw_os_error(-ret)));
    }
    let name: Vec<u8> = info.name.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    Ok(MapInfo {
        id,
        name: String::from_utf8_lossy(&name).into_owned(),
        map_type: info.type_,
        key_size: info.key_size,
        value_size: info.value_size,
        max_entries: info.max_entries,
        flags: info.map_flags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_load(id: i32) -> [Insn; 2] {
        [
            Insn { code: LD_IMM64, dst: 1, src: PSEUDO_MAP_FD, off: 0, imm: id },
            Insn { code: 0, dst: 0, src: 0, off: 0, imm: 0 },
        ]
    }

    fn map(id: u32, name: &str) -> MapInfo {
        MapInfo { id, name: name.into(), map_type: 2, key_size: 4, value_size: 16, max_entries: 8, flags: 0 }
    }

    fn exit() -> Insn {
        Insn { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 }
    }

    #[test]
    fn two_loads_differing_only_in_map_ids_are_the_same_program() {
        let a = ProgramCode {
            insns: [map_load(12), map_load(40), map_load(12)].concat().into_iter().chain([exit()]).collect(),
            maps: vec![map(12, "counters"), map(40, "printer")],
        };
        let b = ProgramCode {
            insns: [map_load(77), map_load(78), map_load(77)].concat().into_iter().chain([exit()]).collect(),
            maps: vec![map(78, "printer"), map(77, "counters")],
        };
        assert!(a.same_program(&b));
        assert_eq!(a.normalized().insns[0].imm, 0);
        assert_eq!(a.normalized().insns[2].imm, 1);
    }

    #[test]
    fn a_different_instruction_or_map_definition_is_another_program() {
        let base = ProgramCode { insns: [map_load(1).to_vec(), vec![exit()]].concat(), maps: vec![map(1, "counters")] };
        let mut swapped = base.clone();
        swapped.insns[0].dst = 2;
        assert!(!base.same_program(&swapped));
        let mut bigger = base.clone();
        bigger.maps[0].max_entries = 9;
        assert!(!base.same_program(&bigger));
        // The same ids in another order of use are a different program.
        let two = ProgramCode {
            insns: [map_load(1), map_load(2)].concat().into_iter().chain([exit()]).collect(),
            maps: vec![map(1, "a"), map(2, "b")],
        };
        let flipped = ProgramCode {
            insns: [map_load(2), map_load(1)].concat().into_iter().chain([exit()]).collect(),
            maps: vec![map(1, "a"), map(2, "b")],
        };
        assert!(!two.same_program(&flipped));
    }
}
