use super::*;

fn i(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, dst, src, off, imm }
}

fn exit() -> Insn {
    i(0x95, 0, 0, 0, 0)
}

fn metrics() -> ProgramMetrics {
    ProgramMetrics { xlated_insns: 0, jited_bytes: 0, verified_insns: 0 }
}

const CALL_BASE: u64 = 0xffff_ffff_8100_0000;

fn symbols() -> Symbols {
    Symbols::from_tables(
        [(1, "bpf_map_lookup_elem".to_owned()), (12, "bpf_tail_call".to_owned())],
        Some(CALL_BASE),
        [
            (CALL_BASE + 0x1000, "array_map_lookup_elem".to_owned()),
            (CALL_BASE - 0x20, "bpf_dynptr_from_skb".to_owned()),
        ],
        [(4242, "bpf_dynptr_slice".to_owned())],
    )
}

fn map(id: u32, name: &str) -> MapInfo {
    MapInfo { id, name: name.into(), map_type: 2, key_size: 4, value_size: 16, max_entries: 8, flags: 0 }
}

/// The text of each instruction of `insns` (exit appended), maps as `maps`.
fn render_all(insns: &[Insn], maps: Vec<MapInfo>) -> Vec<String> {
    let code = ProgramCode { insns: insns.iter().copied().chain([exit()]).collect(), maps };
    let listing = Listing::normalized_with(&code, metrics(), &symbols());
    let mut lines: Vec<String> = listing.lines.into_iter().map(|l| l.text).collect();
    lines.pop();
    lines
}

fn one(insn: Insn) -> String {
    render_all(&[insn], vec![]).remove(0)
}

#[test]
fn alu64_and_alu32_immediate_and_register_forms() {
    assert_eq!(one(i(0xb7, 8, 0, 0, 0)), "r8 = 0");
    assert_eq!(one(i(0x07, 1, 0, 0, -4)), "r1 += -4");
    assert_eq!(one(i(0x1f, 2, 3, 0, 0)), "r2 -= r3");
    assert_eq!(one(i(0x27, 9, 0, 0, 7)), "r9 *= 7");
    assert_eq!(one(i(0x37, 1, 0, 0, 3)), "r1 /= 3");
    assert_eq!(one(i(0x4f, 1, 2, 0, 0)), "r1 |= r2");
    assert_eq!(one(i(0x57, 1, 0, 0, 255)), "r1 &= 255");
    assert_eq!(one(i(0x67, 1, 0, 0, 32)), "r1 <<= 32");
    assert_eq!(one(i(0x77, 1, 0, 0, 32)), "r1 >>= 32");
    assert_eq!(one(i(0x87, 1, 0, 0, 0)), "r1 = -r1");
    assert_eq!(one(i(0x97, 1, 0, 0, 10)), "r1 %= 10");
    assert_eq!(one(i(0xa7, 9, 0, 0, 0x55)), "r9 ^= 85");
    assert_eq!(one(i(0xbf, 6, 1, 0, 0)), "r6 = r1");
    assert_eq!(one(i(0xc7, 1, 0, 0, 3)), "r1 s>>= 3");
    // 32-bit ALU writes wN.
    assert_eq!(one(i(0x04, 1, 0, 0, 1)), "w1 += 1");
    assert_eq!(one(i(0xbc, 2, 3, 0, 0)), "w2 = w3");
    assert_eq!(one(i(0x84, 4, 0, 0, 0)), "w4 = -w4");
    // cpu v4: signed division and modulo, sign-extending moves.
    assert_eq!(one(i(0x3f, 1, 2, 1, 0)), "r1 s/= r2");
    assert_eq!(one(i(0x97, 1, 0, 1, 7)), "r1 s%= 7");
    assert_eq!(one(i(0xbf, 1, 2, 8, 0)), "r1 = (s8)r2");
    assert_eq!(one(i(0xbf, 1, 2, 16, 0)), "r1 = (s16)r2");
    assert_eq!(one(i(0xbf, 1, 2, 32, 0)), "r1 = (s32)r2");
    assert_eq!(one(i(0xbc, 1, 2, 8, 0)), "w1 = (s8)w2");
    // Internal movs the verifier emits.
    assert_eq!(one(i(0xbf, 0, 0, -1, 0)), "r0 = &(void __percpu *)(r0)");
    assert_eq!(one(i(0xbf, 1, 2, 1, 1)), "r1 = addr_space_cast(r2, 0, 1)");
}

#[test]
fn byte_swaps() {
    assert_eq!(one(i(0xdc, 1, 0, 0, 16)), "r1 = be16 r1");
    assert_eq!(one(i(0xd4, 1, 0, 0, 32)), "r1 = le32 r1");
    assert_eq!(one(i(0xd7, 1, 0, 0, 64)), "r1 = bswap64 r1");
}

#[test]
fn loads_and_stores_of_each_size() {
    assert_eq!(one(i(0x61, 1, 1, 0, 0)), "r1 = *(u32 *)(r1 +0)");
    assert_eq!(one(i(0x69, 2, 1, 12, 0)), "r2 = *(u16 *)(r1 +12)");
    assert_eq!(one(i(0x71, 3, 1, -1, 0)), "r3 = *(u8 *)(r1 -1)");
    assert_eq!(one(i(0x79, 4, 10, -8, 0)), "r4 = *(u64 *)(r10 -8)");
    // Sign-extending loads (BPF_MEMSX).
    assert_eq!(one(i(0x81, 1, 2, 4, 0)), "r1 = *(s32 *)(r2 +4)");
    assert_eq!(one(i(0x89, 1, 2, 4, 0)), "r1 = *(s16 *)(r2 +4)");
    assert_eq!(one(i(0x91, 1, 2, 4, 0)), "r1 = *(s8 *)(r2 +4)");
    // Stores from a register.
    assert_eq!(one(i(0x63, 10, 1, -4, 0)), "*(u32 *)(r10 -4) = r1");
    assert_eq!(one(i(0x6b, 10, 1, -6, 0)), "*(u16 *)(r10 -6) = r1");
    assert_eq!(one(i(0x73, 10, 1, -7, 0)), "*(u8 *)(r10 -7) = r1");
    assert_eq!(one(i(0x7b, 10, 1, -16, 0)), "*(u64 *)(r10 -16) = r1");
    // Stores of an immediate.
    assert_eq!(one(i(0x62, 10, 0, -4, 7)), "*(u32 *)(r10 -4) = 7");
    assert_eq!(one(i(0x6a, 10, 0, -6, -1)), "*(u16 *)(r10 -6) = -1");
    assert_eq!(one(i(0x72, 10, 0, -7, 1)), "*(u8 *)(r10 -7) = 1");
    assert_eq!(one(i(0x7a, 10, 0, -16, 0)), "*(u64 *)(r10 -16) = 0");
    // Legacy packet loads.
    assert_eq!(one(i(0x30, 0, 0, 0, 23)), "r0 = *(u8 *)skb[23]");
    assert_eq!(one(i(0x48, 0, 3, 0, 2)), "r0 = *(u16 *)skb[r3 + 2]");
}

#[test]
fn atomics() {
    assert_eq!(one(i(0xdb, 1, 2, 0, 0x00)), "lock *(u64 *)(r1 +0) += r2");
    assert_eq!(one(i(0xc3, 1, 2, 8, 0x40)), "lock *(u32 *)(r1 +8) |= r2");
    assert_eq!(one(i(0xdb, 1, 2, 0, 0x50)), "lock *(u64 *)(r1 +0) &= r2");
    assert_eq!(one(i(0xdb, 1, 2, 0, 0xa0)), "lock *(u64 *)(r1 +0) ^= r2");
    assert_eq!(one(i(0xdb, 1, 2, 0, 0x01)), "r2 = atomic64_fetch_add((u64 *)(r1 +0), r2)");
    assert_eq!(one(i(0xc3, 1, 2, 0, 0x51)), "r2 = atomic_fetch_and((u32 *)(r1 +0), r2)");
    assert_eq!(one(i(0xdb, 1, 2, 0, 0xe1)), "r2 = atomic64_xchg((u64 *)(r1 +0), r2)");
    assert_eq!(one(i(0xdb, 1, 2, -8, 0xf1)), "r0 = atomic64_cmpxchg((u64 *)(r1 -8), r0, r2)");
    assert_eq!(one(i(0xd3, 3, 1, 0, 0x100)), "r3 = load_acquire((u8 *)(r1 +0))");
    assert_eq!(one(i(0xcb, 1, 2, 0, 0x110)), "store_release((u16 *)(r1 +0), r2)");
}

#[test]
fn ld_imm64_forms() {
    let maps = vec![map(12, "bf_cmap"), map(40, "bf_set_0000"), map(41, "other"), map(42, "")];
    let lines = render_all(
        &[
            i(0x18, 1, 1, 0, 12),
            i(0, 0, 0, 0, 0),
            i(0x18, 2, 2, 0, 40),
            i(0, 0, 0, 0, 8),
            i(0x18, 3, 1, 0, 41),
            i(0, 0, 0, 0, 0),
            i(0x18, 4, 1, 0, 42),
            i(0, 0, 0, 0, 0),
            i(0x18, 5, 0, 0, 0x89ab_cdef_u32 as i32),
            i(0, 0, 0, 0, 0x1234),
            i(0x18, 6, 3, 0, 0x10),
            i(0, 0, 0, 0, -1),
            i(0x18, 7, 5, 0, 3),
            i(0, 0, 0, 0, 0),
            i(0x18, 8, 6, 0, 3),
            i(0, 0, 0, 0, 16),
        ],
        maps.clone(),
    );
    assert_eq!(
        lines,
        [
            "r1 = map[counters]",
            "r2 = map[set_0000][0]+8",
            "r3 = map[other]",
            "r4 = map[#3]",
            "r5 = 0x123489abcdef",
            "r6 = 0xffffffff00000010",
            "r7 = map[idx:3]",
            "r8 = map[idx:3]+16",
        ]
    );
    // bpftool's own form keeps the ids.
    let code = ProgramCode { insns: vec![i(0x18, 1, 2, 0, 12), i(0, 0, 0, 0, 4), exit()], maps };
    assert_eq!(Listing::of_with(&code, metrics(), &symbols()).lines[0].text, "r1 = map[id:12][0]+4");
    // A function address: a label at its target.
    let code = ProgramCode { insns: vec![i(0x18, 2, 4, 0, 1), i(0, 0, 0, 0, 0), exit(), exit()], maps: vec![] };
    let listing = Listing::normalized_with(&code, metrics(), &symbols());
    assert_eq!(listing.lines[0].text, "r2 = subprog[L0]");
    assert_eq!(listing.lines[1].label.as_deref(), Some("L0"));
    // Slots are numbered as bpftool does: the second half of an ld_imm64 has no line.
    assert_eq!(listing.lines.iter().map(|l| l.index).collect::<Vec<_>>(), [0, 2, 3]);
}

#[test]
fn jumps_become_labels() {
    let code = ProgramCode {
        insns: vec![
            i(0x2d, 2, 3, 3, 0),    // 0: if r2 > r3 goto 4
            i(0x15, 1, 0, 2, 0),    // 1: if r1 == 0 goto 4
            i(0x16, 1, 0, -3, -1),  // 2: if w1 == 0xffffffff goto 0
            i(0x05, 0, 0, 0, 0),    // 3: goto 4
            i(0x06, 0, 0, 0, 1),    // 4: gotol 6
            i(0xe5, 0, 0, 0, 0),    // 5: may_goto 6
            i(0xbd, 1, 2, 1000, 0), // 6: out of range: pc+1000
            i(0x6e, 1, 2, -7, 0),   // 7: if w1 s> w2 goto 1
            i(0xa5, 1, 0, 0, 10),   // 8: if r1 < 0xa goto 9
            i(0x45, 1, 0, 0, 0x80), // 9: if r1 & 0x80 goto 10
            i(0x0d, 3, 0, 0, 0),    // 10: gotox r3
            exit(),
        ],
        maps: vec![],
    };
    let listing = Listing::normalized_with(&code, metrics(), &symbols());
    let texts: Vec<&str> = listing.lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "if r2 > r3 goto L2",
            "if r1 == 0x0 goto L2",
            "if w1 == 0xffffffff goto L0",
            "goto L2",
            "gotol L3",
            "may_goto L3",
            "if r1 <= r2 goto pc+1000",
            "if w1 s> w2 goto L1",
            "if r1 < 0xa goto L4",
            "if r1 & 0x80 goto L5",
            "gotox r3",
            "exit",
        ]
    );
    let labels: Vec<(usize, &str)> =
        listing.lines.iter().filter_map(|l| l.label.as_deref().map(|n| (l.index, n))).collect();
    assert_eq!(labels, [(0, "L0"), (1, "L1"), (4, "L2"), (6, "L3"), (9, "L4"), (10, "L5")]);
    let text = listing.text();
    assert!(text.contains("L2:\n    4: gotol L3\n"), "{text}");
}

#[test]
fn calls_to_helpers_kfuncs_and_subprograms() {
    // Loader form: a helper id.
    assert_eq!(one(i(0x85, 0, 0, 0, 1)), "call bpf_map_lookup_elem#1");
    // Xlated form: an offset from __bpf_call_base, named by kallsyms.
    assert_eq!(one(i(0x85, 0, 0, 0, 0x1000)), "call array_map_lookup_elem#4096");
    assert_eq!(one(i(0x85, 0, 0, 0, 0x7777)), "call unknown#30583");
    // kfuncs: xlated (an address) and loader form (a BTF id).
    assert_eq!(one(i(0x85, 0, 2, 0, -0x20)), "call bpf_dynptr_from_skb#-32");
    assert_eq!(one(i(0x85, 0, 2, 0, 4242)), "call bpf_dynptr_slice#4242");
    assert_eq!(one(i(0x85, 0, 2, 0, 5)), "call kernel-function#5");
    // bpf-to-bpf calls: loader form (offset in imm) and xlated (offset in off, subprog index in imm).
    let code = ProgramCode {
        insns: vec![i(0x85, 0, 1, 0, 2), i(0x85, 0, 1, 1, 1), exit(), i(0xb7, 0, 0, 0, 0), exit()],
        maps: vec![],
    };
    let listing = Listing::normalized_with(&code, metrics(), &symbols());
    assert_eq!(listing.lines[0].text, "call L0");
    assert_eq!(listing.lines[1].text, "call L0");
    assert_eq!(listing.lines[3].label.as_deref(), Some("L0"));
}

#[test]
fn unknown_opcodes_are_shown_not_hidden() {
    assert_eq!(one(i(0xe3, 1, 2, 0, 0)), "BUG_e3");
    assert_eq!(one(i(0xe1, 1, 2, 0, 0)), "BUG_ldx_e1");
    assert_eq!(one(i(0x42, 1, 0, 0, 0)), "BUG_st_42");
    assert_eq!(one(i(0xc2, 0, 0, 0, 0)), "nospec");
}

#[test]
fn two_loads_render_identically_and_diffs_count_instructions() {
    let load = |ids: [u32; 2]| ProgramCode {
        insns: vec![
            i(0x18, 1, 1, 0, ids[0] as i32),
            i(0, 0, 0, 0, 0),
            i(0x18, 2, 1, 0, ids[1] as i32),
            i(0, 0, 0, 0, 0),
            exit(),
        ],
        maps: vec![map(ids[1], "bf_pmap"), map(ids[0], "bf_cmap")],
    };
    let a = Listing::normalized_with(&load([12, 13]), metrics(), &symbols());
    let b = Listing::normalized_with(&load([70, 71]), metrics(), &symbols());
    assert_eq!(a.text(), b.text());
    let same = diff(&a, &b);
    assert_eq!((same.added, same.removed, same.unified.as_str()), (0, 0, ""));
    assert_ne!(
        Listing::of_with(&load([12, 13]), metrics(), &symbols()).text(),
        Listing::of_with(&load([70, 71]), metrics(), &symbols()).text()
    );

    // 3 instructions more at the start, one changed: +4 −1; slot numbers do not count.
    let mut longer = load([70, 71]);
    longer.insns.splice(0..0, [i(0xb7, 8, 0, 0, 0); 3]);
    longer.insns[3].dst = 5;
    let c = Listing::normalized_with(&longer, metrics(), &symbols());
    let d = diff(&a, &c);
    assert_eq!((d.added, d.removed), (4, 1), "{}", d.unified);
    assert_eq!(d.summary(), "+4 \u{2212}1 instructions");
    assert!(d.unified.starts_with("--- BASE\n+++ REF\n"), "{}", d.unified);
    assert_eq!(d.unified.matches("\n+\tr8 = 0").count(), 3, "{}", d.unified);
}

#[test]
fn jited_code_is_aligned_by_line_info_or_given_in_one_block() {
    // push rbp; mov rbp,rsp; xor eax,eax; leave; ret
    let image = vec![0x55, 0x48, 0x89, 0xe5, 0x31, 0xc0, 0xc9, 0xc3];
    let code = ProgramCode { insns: vec![i(0xb7, 0, 0, 0, 0), exit()], maps: vec![] };
    let mut listing = Listing::normalized_with(&code, metrics(), &symbols());
    let base = 0xffff_ffff_a000_0000_u64;
    let raw =
        JitedRaw { image: image.clone(), ksyms: vec![base], func_lens: vec![8], lines: vec![(0, base), (1, base + 6)] };
    let jited = raw.disassemble(&listing);
    assert!(jited.aligned && jited.note.is_none());
    assert_eq!(jited.blocks.len(), 2);
    assert_eq!(jited.blocks[0].first_insn, Some(0));
    assert_eq!(jited.blocks[0].insns, ["   0: push rbp", "   1: mov rbp,rsp", "   4: xor eax,eax"]);
    assert_eq!(jited.blocks[1].insns, ["   6: leave", "   7: ret"]);
    listing.jited = Some(jited);
    let text = listing.text();
    assert!(text.contains("    0: r0 = 0\n        ;    0: push rbp\n"), "{text}");
    assert!(text.contains("    1: exit\n        ;    6: leave\n        ;    7: ret\n"), "{text}");

    let unaligned = JitedRaw { image, ksyms: vec![base], func_lens: vec![8], lines: vec![] }.disassemble(&listing);
    assert!(!unaligned.aligned);
    assert!(unaligned.note.as_deref().unwrap().contains("no line info"));
    assert_eq!(unaligned.blocks.len(), 1);
    assert_eq!(unaligned.blocks[0].insns.len(), 5);
}

/// A hash map named as bpfilter names its counters, and a program that looks
/// up key 0 in it and calls `bpf_ktime_get_ns`, loaded in the running kernel.
fn load_real_program() -> (crate::program::Program, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain syscall wrapper; a non-negative result is a new fd we own.
    let map = unsafe {
        libbpf_sys::bpf_map_create(libbpf_sys::BPF_MAP_TYPE_HASH, c"bf_cmap".as_ptr(), 4, 8, 4, std::ptr::null())
    };
    assert!(map >= 0, "bpf_map_create: {}", std::io::Error::from_raw_os_error(-map));
    // SAFETY: a new fd nothing else owns.
    let map = unsafe { std::os::fd::OwnedFd::from_raw_fd(map) };
    let raw = |code: u8, dst: u8, src: u8, off: i16, imm: i32| {
        let mut insn = libbpf_sys::bpf_insn { code, off, imm, ..Default::default() };
        insn.set_dst_reg(dst);
        insn.set_src_reg(src);
        insn
    };
    let insns = [
        raw(0x85, 0, 0, 0, 5), // call bpf_ktime_get_ns
        raw(0x62, 10, 0, -4, 0),
        raw(0xbf, 2, 10, 0, 0),
        raw(0x07, 2, 0, 0, -4),
        raw(0x18, 1, 1, 0, map.as_raw_fd()),
        raw(0, 0, 0, 0, 0),
        raw(0x85, 0, 0, 0, 1), // call bpf_map_lookup_elem
        raw(0x15, 0, 0, 1, 0),
        raw(0xb7, 0, 0, 0, 1),
        raw(0xb7, 0, 0, 0, 2),
        raw(0x95, 0, 0, 0, 0),
    ];
    let program = crate::program::Program::load_insns(crate::flavor::Flavor::Xdp, &insns).expect("load (run as root)");
    (program, map)
}

#[test]
fn the_kernels_own_xlated_code_renders_with_names() {
    let symbols = Symbols::host();
    assert_eq!(symbols.helper(1), Some("bpf_map_lookup_elem"), "helper names come from vmlinux BTF");
    let (first, _map1) = load_real_program();
    let (second, _map2) = load_real_program();
    let a = Listing::normalized(&first.code().unwrap(), first.metrics());
    let b = Listing::normalized(&second.code().unwrap(), second.metrics());
    let text = a.text();
    assert_eq!(text, b.text(), "two loads of one program render identically");
    assert_eq!(diff(&a, &b).unified, "");
    assert!(text.contains(": call bpf_ktime_get_ns#"), "{text}");
    assert!(text.contains(": r1 = map[counters]\n"), "{text}");
    // The verifier inlines the hash lookup as a call to the map's own function.
    assert!(text.contains(": call __htab_map_lookup_elem#"), "{text}");
    assert!(text.contains("goto L0\n") && text.contains("L0:\n"), "{text}");
    assert!(!text.contains("unknown"), "{text}");
    // bpftool's form keeps the id, which differs from load to load.
    let ids = Listing::of(&first.code().unwrap(), first.metrics()).text();
    assert!(ids.contains(": r1 = map[id:"), "{ids}");
    assert_ne!(ids, Listing::of(&second.code().unwrap(), second.metrics()).text());

    // Loaded without BTF: no line info, the machine code comes in one block.
    let jited = jited_code(first.fd(), &a).unwrap();
    assert!(!jited.aligned);
    assert!(jited.note.as_deref().unwrap_or("").contains("no line info"), "{jited:?}");
    let all: Vec<&String> = jited.blocks.iter().flat_map(|b| &b.insns).collect();
    assert!(all.len() > 5, "{all:?}");
    assert!(all.iter().any(|l| l.ends_with(": ret") || l.contains("jmp")), "{all:?}");
    assert_eq!(first.metrics().jited_bytes as usize, JitedRaw::of(first.fd()).unwrap().image.len());
}

/// A minimal BTF (one `int`, a file name and two source lines) and a
/// two-instruction XDP program loaded with line info for each instruction.
fn load_with_line_info() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let strings = b"\0int\0prog.c\0r0 = 2\0exit\0";
    let mut types = Vec::new();
    for word in [1u32, 1 << 24, 4, 32] {
        types.extend_from_slice(&word.to_ne_bytes()); // INT "int", 4 bytes, 32 bits
    }
    let mut blob = Vec::new();
    blob.extend_from_slice(&0xeb9f_u16.to_ne_bytes());
    blob.extend_from_slice(&[1, 0]);
    for word in [24u32, 0, types.len() as u32, types.len() as u32, strings.len() as u32] {
        blob.extend_from_slice(&word.to_ne_bytes());
    }
    blob.extend_from_slice(&types);
    blob.extend_from_slice(strings);
    // SAFETY: blob outlives the call; a non-negative result is a new fd we own.
    let btf = unsafe { libbpf_sys::bpf_btf_load(blob.as_ptr().cast(), blob.len() as _, std::ptr::null_mut()) };
    assert!(btf >= 0, "bpf_btf_load: {}", std::io::Error::from_raw_os_error(-btf));
    let btf = unsafe { std::os::fd::OwnedFd::from_raw_fd(btf) };
    let insns = [
        libbpf_sys::bpf_insn { code: 0xb7, imm: 2, ..Default::default() },
        libbpf_sys::bpf_insn { code: 0x95, ..Default::default() },
    ];
    // insn_off, file_name_off ("prog.c"), line_off, line_col (line 1 and 2).
    let lines = [
        libbpf_sys::bpf_line_info { insn_off: 0, file_name_off: 5, line_off: 12, line_col: 1 << 10 },
        libbpf_sys::bpf_line_info { insn_off: 1, file_name_off: 5, line_off: 19, line_col: 2 << 10 },
    ];
    let mut opts = libbpf_sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_prog_load_opts>() as _,
        prog_btf_fd: btf.as_raw_fd() as u32,
        line_info: lines.as_ptr().cast(),
        line_info_cnt: lines.len() as u32,
        line_info_rec_size: std::mem::size_of::<libbpf_sys::bpf_line_info>() as u32,
        ..Default::default()
    };
    // SAFETY: every pointer outlives the call; libbpf copies them.
    let fd = unsafe {
        libbpf_sys::bpf_prog_load(
            libbpf_sys::BPF_PROG_TYPE_XDP,
            c"bfperf_lines".as_ptr(),
            c"GPL".as_ptr(),
            insns.as_ptr(),
            insns.len() as _,
            &mut opts,
        )
    };
    assert!(fd >= 0, "bpf_prog_load with line info: {}", std::io::Error::from_raw_os_error(-fd));
    (unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }, btf)
}

#[test]
fn jited_code_of_a_program_with_line_info_sits_under_its_instructions() {
    use std::os::fd::AsFd;
    let (prog, _btf) = load_with_line_info();
    let code = ProgramCode::of(prog.as_fd()).unwrap();
    let mut listing = Listing::normalized(&code, crate::program::ProgramMetrics::of(prog.as_fd()).unwrap());
    let raw = JitedRaw::of(prog.as_fd()).unwrap();
    assert_eq!(raw.lines.iter().map(|(slot, _)| *slot).collect::<Vec<_>>(), [0, 1], "{raw:?}");
    let jited = raw.disassemble(&listing);
    assert!(jited.aligned, "{jited:?}");
    let firsts: Vec<Option<usize>> = jited.blocks.iter().map(|b| b.first_insn).collect();
    assert!(firsts.contains(&Some(0)) && firsts.contains(&Some(1)), "{jited:?}");
    // `r0 = 2` becomes a mov of 2 into eax (the JIT's r0).
    let first = jited.blocks.iter().find(|b| b.first_insn == Some(0)).unwrap();
    assert!(first.insns.iter().any(|l| l.ends_with("mov eax,2")), "{first:?}");
    let last = jited.blocks.iter().find(|b| b.first_insn == Some(1)).unwrap();
    assert!(last.insns.iter().any(|l| l.ends_with(": ret") || l.contains("jmp")), "{last:?}");
    listing.jited = Some(jited);
    let text = listing.text();
    let mov = text.find("mov eax,2").unwrap();
    assert!(text.find("    0: r0 = 2\n").unwrap() < mov && mov < text.find("    1: exit\n").unwrap(), "{text}");
    assert!(!text.contains("no line info"), "{text}");
}
