//! The benchmark suite as data: every case of bpfilter's own benchmark, with
//! the same names, so histories measured by either tool line up.
//!
//! A case is a chain (hook, policy, rules in bfcli syntax), the packet to run
//! it on and the verdict it must return. The suite lives here, not in the
//! sources under test, so every commit is measured with the same cases.

use crate::flavor::{Flavor, Hook, Verdict};
use crate::packet::{PacketKind, IP4_SRC, IP6_SRC};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Name of the chain every case loads, as upstream.
pub const CHAIN_NAME: &str = "bf_benchmark";

/// Upstream's per-case flags; the optimizer ignores flagged cases by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags {
    /// The case matches through a set (hash map lookup).
    pub use_set: bool,
    /// The case logs matched packets.
    pub use_log: bool,
    /// The case measures the userspace chain load, not the BPF program.
    pub userspace_only: bool,
}

/// What a case measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Run the generated program on `packet` with `BPF_PROG_TEST_RUN`;
    /// it must return `expected`.
    Runtime {
        /// The packet fed to the program.
        packet: PacketKind,
        /// The verdict the program must return for it.
        expected: Verdict,
    },
    /// Time `bfcli chain set` itself (generation, verification, set filling).
    ChainLoad,
}

/// The match part of one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// A matcher written out in bfcli syntax, e.g. `ip4.saddr eq 127.2.10.10`.
    Text(String),
    /// `(ip4.saddr) in { ... }` with `len` elements; when `with_match`, the last
    /// element is the suite packet's source address, the others never match.
    Ip4SaddrSet {
        /// Number of elements.
        len: u32,
        /// Whether the last element matches the suite packets.
        with_match: bool,
    },
    /// A whole rule as given on the command line (`--rule`): matchers,
    /// options and verdict in bfcli's syntax. The [`Rule`]'s own `log`,
    /// `counter` and `verdict` are not written.
    WholeRule(String),
    /// `(ip6.saddr) in { ... }`, as [`Matcher::Ip4SaddrSet`].
    Ip6SaddrSet {
        /// Number of elements.
        len: u32,
        /// Whether the last element matches the suite packets.
        with_match: bool,
    },
}

/// One rule of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// What the rule matches.
    pub matcher: Matcher,
    /// `log HEADERS`, when the rule logs.
    pub log: Option<&'static str>,
    /// Whether the rule has a counter.
    pub counter: bool,
    /// The rule's verdict.
    pub verdict: Verdict,
}

impl Rule {
    fn drop(matcher: Matcher) -> Self {
        Rule { matcher, log: None, counter: false, verdict: Verdict::Drop }
    }
}

/// One benchmark case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// Upstream's name, e.g. `multiple_rules__ip4_saddr/32`.
    pub name: String,
    /// Human description, as upstream's label.
    pub label: String,
    /// The hook the chain is defined on.
    pub hook: Hook,
    /// The chain policy.
    pub policy: Verdict,
    /// The chain's rules, in order.
    pub rules: Vec<Rule>,
    /// What is measured.
    pub measure: Measure,
    /// Upstream's flags.
    pub flags: Flags,
}

impl Case {
    /// The program flavor of the case's hook.
    pub fn flavor(&self) -> Flavor {
        self.hook.flavor()
    }

    /// The packet and verdict of a runtime case; `None` for chain-load cases.
    pub fn runtime(&self) -> Option<(PacketKind, Verdict)> {
        match self.measure {
            Measure::Runtime { packet, expected } => Some((packet, expected)),
            Measure::ChainLoad => None,
        }
    }

    /// The chain without its rules: same name, hook and policy. Its
    /// `bfcli chain set` is bfcli's start-up plus the least `bf_chain_set`
    /// of the hook ([`crate::chainset::Method::StartupSubtracted`]).
    pub fn empty_chain_text(&self) -> String {
        format!("chain {CHAIN_NAME} {} {}\n", self.hook.bfcli_name(), self.policy)
    }

    /// The chain in bfcli syntax, ready for `bfcli chain set`.
    pub fn chain_text(&self) -> String {
        let mut out = format!("chain {CHAIN_NAME} {} {}\n", self.hook.bfcli_name(), self.policy);
        for rule in &self.rules {
            if let Matcher::WholeRule(text) = &rule.matcher {
                let _ = writeln!(out, "    rule\n        {text}");
                continue;
            }
            out.push_str("    rule\n        ");
            write_matcher(&mut out, &rule.matcher);
            out.push('\n');
            if let Some(headers) = rule.log {
                let _ = writeln!(out, "        log {headers}");
            }
            if rule.counter {
                out.push_str("        counter\n");
            }
            let _ = writeln!(out, "        {}", rule.verdict);
        }
        out
    }
}

/// Prefix of the name of an ad-hoc case ([`adhoc`]): `adhoc__<hook>`.
pub const ADHOC_PREFIX: &str = "adhoc__";

/// A case of its own for one rule given on the command line (`--rule`), in
/// bfcli's rule syntax: a chain on `hook` with `policy` and that one rule,
/// run on `packet`, which must get `expected`. Named `adhoc__<hook>` (e.g.
/// `adhoc__xdp`).
pub fn adhoc(rule: &str, hook: Hook, policy: Verdict, packet: PacketKind, expected: Verdict) -> Case {
    Case {
        name: format!("{ADHOC_PREFIX}{}", hook.flavor()),
        label: format!("ad-hoc rule: {rule}"),
        hook,
        policy,
        rules: vec![Rule {
            matcher: Matcher::WholeRule(rule.trim().to_owned()),
            log: None,
            counter: false,
            verdict: policy,
        }],
        measure: runtime(packet, expected),
        flags: Flags::default(),
    }
}

/// The `i`-th non-matching IPv4 address, as upstream (`uint32ToIp4(i)`).
pub fn nth_ip4(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(i)
}

/// The `i`-th non-matching IPv6 address, as upstream: `i` in the first 4 bytes.
pub fn nth_ip6(i: u32) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(i) << 96)
}

fn write_matcher(out: &mut String, matcher: &Matcher) {
    match matcher {
        Matcher::Text(text) | Matcher::WholeRule(text) => out.push_str(text),
        Matcher::Ip4SaddrSet { len, with_match } => {
            write_set(out, "ip4.saddr", *len, *with_match, |i| nth_ip4(i).to_string(), IP4_SRC.to_string())
        }
        Matcher::Ip6SaddrSet { len, with_match } => {
            write_set(out, "ip6.saddr", *len, *with_match, |i| nth_ip6(i).to_string(), IP6_SRC.to_string())
        }
    }
}

fn write_set(
    out: &mut String,
    key: &str,
    len: u32,
    with_match: bool,
    element: impl Fn(u32) -> String,
    matching: String,
) {
    let _ = write!(out, "({key}) in {{");
    let others = if with_match { len.saturating_sub(1) } else { len };
    for i in 0..others {
        out.push_str(if i == 0 { " " } else { "; " });
        out.push_str(&element(i));
    }
    if with_match {
        out.push_str(if others == 0 { " " } else { "; " });
        out.push_str(&matching);
    }
    out.push_str(" }");
}

fn runtime(packet: PacketKind, expected: Verdict) -> Measure {
    Measure::Runtime { packet, expected }
}

fn xdp_accept(name: String, label: String, rules: Vec<Rule>, packet: PacketKind, flags: Flags) -> Case {
    Case {
        name,
        label,
        hook: Hook::Xdp,
        policy: Verdict::Accept,
        rules,
        measure: runtime(packet, Verdict::Drop),
        flags,
    }
}

/// The four per-address families (`single_rule`, `_c`, `_l`, `multiple_rules/N`,
/// `__x_elem_set/N`) for one address type.
fn address_family(
    out: &mut Vec<Case>,
    field: &str,
    matching: String,
    packet: PacketKind,
    nth: fn(u32) -> String,
    set: fn(u32) -> Matcher,
) {
    let eq = |addr: &str| Matcher::Text(format!("{field} eq {addr}"));
    let base = format!("single_rule__{}", field.replace('.', "_"));
    out.push(xdp_accept(
        base.clone(),
        format!("1 rule, {field}"),
        vec![Rule::drop(eq(&matching))],
        packet,
        Flags::default(),
    ));

    let mut counted = Rule::drop(eq(&matching));
    counted.counter = true;
    out.push(xdp_accept(
        format!("{base}_c"),
        format!("1 rule, {field}, counter"),
        vec![counted],
        packet,
        Flags::default(),
    ));

    let mut logged = Rule::drop(eq(&matching));
    logged.log = Some("link");
    let flags = Flags { use_log: true, ..Flags::default() };
    out.push(xdp_accept(format!("{base}_l"), format!("1 rule, {field}, log link"), vec![logged], packet, flags));

    for n in [8u32, 32, 128] {
        let mut rules: Vec<Rule> = (0..n - 1).map(|i| Rule::drop(eq(&nth(i)))).collect();
        rules.push(Rule::drop(eq(&matching)));
        let name = format!("multiple_rules__{}/{n}", field.replace('.', "_"));
        out.push(xdp_accept(name, format!("{n} rules, {field}"), rules, packet, Flags::default()));
    }

    for n in [1u32 << 3, 1 << 7, 1 << 15] {
        let flags = Flags { use_set: true, ..Flags::default() };
        out.push(xdp_accept(
            format!("{base}__x_elem_set/{n}"),
            format!("1 rule, {field}, {n} elements set"),
            vec![Rule::drop(set(n))],
            packet,
            flags,
        ));
    }
}

/// Build the whole suite, in upstream's order.
pub fn suite() -> Vec<Case> {
    let mut cases = vec![Case {
        name: "chain_policy_c".into(),
        label: "chain policy, with counter".into(),
        hook: Hook::Xdp,
        policy: Verdict::Drop,
        rules: vec![],
        measure: runtime(PacketKind::LocalIp4Icmp, Verdict::Drop),
        flags: Flags::default(),
    }];

    for (hook, label) in [
        (Hook::Xdp, "XDP"),
        (Hook::TcIngress, "TC"),
        (Hook::CgroupSkbIngress, "CGroup skb"),
        (Hook::NfLocalIn, "Netfilter"),
    ] {
        cases.push(Case {
            name: format!("{}__prologue", hook.flavor().name()),
            label: format!("{label} prologue, accept policy"),
            hook,
            policy: Verdict::Accept,
            rules: vec![],
            measure: runtime(PacketKind::LocalIp6Tcp, Verdict::Accept),
            flags: Flags::default(),
        });
    }

    address_family(
        &mut cases,
        "ip4.saddr",
        IP4_SRC.to_string(),
        PacketKind::LocalIp4Icmp,
        |i| nth_ip4(i).to_string(),
        |len| Matcher::Ip4SaddrSet { len, with_match: true },
    );

    for n in [1u32 << 3, 1 << 16, 1 << 20] {
        cases.push(Case {
            name: format!("chain_set__ip4_saddr__x_elem_set/{n}"),
            label: format!("load chain, ip4.saddr, {n} elements set"),
            hook: Hook::Xdp,
            policy: Verdict::Accept,
            rules: vec![Rule::drop(Matcher::Ip4SaddrSet { len: n, with_match: false })],
            measure: Measure::ChainLoad,
            flags: Flags { use_set: true, userspace_only: true, ..Flags::default() },
        });
    }

    address_family(
        &mut cases,
        "ip6.saddr",
        IP6_SRC.to_string(),
        PacketKind::LocalIp6Tcp,
        |i| nth_ip6(i).to_string(),
        |len| Matcher::Ip6SaddrSet { len, with_match: true },
    );

    let one = |name: &str, label: &str, matcher: &str, packet| {
        xdp_accept(name.into(), label.into(), vec![Rule::drop(Matcher::Text(matcher.into()))], packet, Flags::default())
    };
    cases.push(one("single_rule__ip6_nexthdr", "1 rule, ip6.nexthdr", "ip6.nexthdr eq hop", PacketKind::RemoteIp6Eh));
    cases.push(one("single_rule__meta_sport_eq", "1 rule, meta.sport eq", "meta.sport eq 23", PacketKind::LocalIp4Tcp));
    cases.push(one(
        "single_rule__meta_sport_range",
        "1 rule, meta.sport range",
        "meta.sport range 22-24",
        PacketKind::LocalIp4Tcp,
    ));
    cases.push(one("single_rule__tcp_sport", "1 rule, tcp.sport", "tcp.sport eq 23", PacketKind::LocalIp4Tcp));

    for (name, label, matcher) in [
        ("single_rule__meta_flow_hash", "1 rule, meta.flow_hash", "meta.flow_hash range 0-0xffffffff"),
        ("single_rule__meta_flow_probability", "1 rule, meta.flow_probability", "meta.flow_probability eq 100%"),
    ] {
        cases.push(Case {
            name: name.into(),
            label: label.into(),
            hook: Hook::TcIngress,
            policy: Verdict::Accept,
            rules: vec![Rule::drop(Matcher::Text(matcher.into()))],
            measure: runtime(PacketKind::LocalIp4Tcp, Verdict::Drop),
            flags: Flags::default(),
        });
    }

    cases
}

/// A case selection, as given to `--filter`: comma-separated substrings, a
/// case is selected when its name contains any of them. Empty selects all.
pub fn select<'a>(cases: &'a [Case], filter: Option<&str>) -> Vec<&'a Case> {
    let patterns: Vec<&str> = filter.unwrap_or("").split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    cases.iter().filter(|c| patterns.is_empty() || patterns.iter().any(|p| c.name.contains(p))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn has_every_upstream_case() {
        let names: HashSet<String> = suite().into_iter().map(|c| c.name).collect();
        let mut expected = vec![
            "chain_policy_c".to_string(),
            "xdp__prologue".into(),
            "tc__prologue".into(),
            "cgroup_skb__prologue".into(),
            "netfilter__prologue".into(),
            "single_rule__ip6_nexthdr".into(),
            "single_rule__meta_sport_eq".into(),
            "single_rule__meta_sport_range".into(),
            "single_rule__tcp_sport".into(),
            "single_rule__meta_flow_hash".into(),
            "single_rule__meta_flow_probability".into(),
        ];
        for fam in ["ip4", "ip6"] {
            expected.push(format!("single_rule__{fam}_saddr"));
            expected.push(format!("single_rule__{fam}_saddr_c"));
            expected.push(format!("single_rule__{fam}_saddr_l"));
            for n in [8, 32, 128] {
                expected.push(format!("multiple_rules__{fam}_saddr/{n}"));
            }
            for n in [8, 128, 32768] {
                expected.push(format!("single_rule__{fam}_saddr__x_elem_set/{n}"));
            }
        }
        for n in [8, 65536, 1048576] {
            expected.push(format!("chain_set__ip4_saddr__x_elem_set/{n}"));
        }
        for name in &expected {
            assert!(names.contains(name), "missing {name}");
        }
        assert_eq!(names.len(), expected.len(), "unexpected extra cases");
    }

    #[test]
    fn names_are_unique() {
        let cases = suite();
        let names: HashSet<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.len(), cases.len());
    }

    #[test]
    fn policy_chain_text() {
        let case = suite().into_iter().find(|c| c.name == "chain_policy_c").unwrap();
        assert_eq!(case.chain_text(), "chain bf_benchmark BF_HOOK_XDP DROP\n");
        assert_eq!(case.empty_chain_text(), case.chain_text());
        let set = suite().into_iter().find(|c| c.name == "chain_set__ip4_saddr__x_elem_set/8").unwrap();
        assert_eq!(set.empty_chain_text(), "chain bf_benchmark BF_HOOK_XDP ACCEPT\n");
        assert_eq!(case.runtime(), Some((PacketKind::LocalIp4Icmp, Verdict::Drop)));
    }

    #[test]
    fn counter_and_log_rules() {
        let cases = suite();
        let c = cases.iter().find(|c| c.name == "single_rule__ip4_saddr_c").unwrap();
        assert_eq!(
            c.chain_text(),
            "chain bf_benchmark BF_HOOK_XDP ACCEPT\n    rule\n        ip4.saddr eq 127.2.10.10\n        counter\n        DROP\n"
        );
        let l = cases.iter().find(|c| c.name == "single_rule__ip6_saddr_l").unwrap();
        assert!(l.chain_text().contains("ip6.saddr eq ::1\n        log link\n        DROP"));
        assert!(l.flags.use_log);
    }

    #[test]
    fn multiple_rules_end_with_the_match() {
        let c = suite().into_iter().find(|c| c.name == "multiple_rules__ip4_saddr/32").unwrap();
        assert_eq!(c.rules.len(), 32);
        assert_eq!(c.rules[0].matcher, Matcher::Text("ip4.saddr eq 0.0.0.0".into()));
        assert_eq!(c.rules[30].matcher, Matcher::Text("ip4.saddr eq 0.0.0.30".into()));
        assert_eq!(c.rules[31].matcher, Matcher::Text("ip4.saddr eq 127.2.10.10".into()));
    }

    #[test]
    fn sets_hold_n_elements_with_the_match_last() {
        let c = suite().into_iter().find(|c| c.name == "single_rule__ip6_saddr__x_elem_set/8").unwrap();
        let text = c.chain_text();
        let body = &text[text.find('{').unwrap() + 1..text.find('}').unwrap()];
        let elems: Vec<&str> = body.split(';').map(str::trim).collect();
        assert_eq!(elems.len(), 8);
        assert_eq!(elems[0], "::");
        assert_eq!(elems[1], "0:1::");
        assert_eq!(elems[7], "::1");
        assert!(c.flags.use_set && !c.flags.userspace_only);
    }

    #[test]
    fn chain_load_cases_are_userspace_only_and_never_match() {
        let cases = suite();
        let loads: Vec<&Case> = cases.iter().filter(|c| c.measure == Measure::ChainLoad).collect();
        assert_eq!(loads.len(), 3);
        for c in loads {
            assert!(c.flags.userspace_only && c.flags.use_set, "{}", c.name);
            assert!(c.runtime().is_none());
        }
        let small = cases.iter().find(|c| c.name == "chain_set__ip4_saddr__x_elem_set/8").unwrap();
        assert!(!small.chain_text().contains("127.2.10.10"));
    }

    #[test]
    fn expected_verdicts_per_family() {
        for c in suite() {
            let Some((_, expected)) = c.runtime() else { continue };
            let want = if c.name.ends_with("__prologue") { Verdict::Accept } else { Verdict::Drop };
            assert_eq!(expected, want, "{}", c.name);
        }
    }

    #[test]
    fn flow_cases_run_on_tc() {
        for c in suite().iter().filter(|c| c.name.contains("flow_")) {
            assert_eq!(c.flavor(), Flavor::Tc);
            assert_eq!(c.runtime().unwrap().0, PacketKind::LocalIp4Tcp);
        }
    }

    #[test]
    fn filter_selects_by_substring() {
        let cases = suite();
        let picked = select(&cases, Some("prologue"));
        assert_eq!(picked.len(), 4);
        let picked = select(&cases, Some("xdp__prologue, chain_policy_c"));
        assert_eq!(picked.len(), 2);
        assert_eq!(select(&cases, None).len(), cases.len());
        assert!(select(&cases, Some("no_such_case")).is_empty());
    }

    #[test]
    fn nth_addresses_follow_upstream() {
        assert_eq!(nth_ip4(258).to_string(), "0.0.1.2");
        assert_eq!(nth_ip6(0x0102_0304).to_string(), "102:304::");
    }
}
