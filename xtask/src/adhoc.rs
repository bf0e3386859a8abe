//! `--rule`: a rule given on the command line, measured as a case of its own
//! (`adhoc__<hook>`) by `bench` and `bench-compare`, as upstream's lost
//! `--adhoc` did (bpfilter PR #148).

use crate::flags::AdhocFlags;
use crate::machine::Machine;
use anyhow::Result;
use bench_harness::flavor::{Hook, Verdict};
use bench_harness::packet::PacketKind;
use bench_harness::results::Status;
use bench_harness::suite::{self, Case};

/// `--hook`'s parser: `xdp`, `tc`, `nf` (or `netfilter`), `cgroup_skb`, or a
/// bfcli hook name (`BF_HOOK_XDP`, ...).
pub fn parse_hook(text: &str) -> Result<Hook, String> {
    let all = [Hook::Xdp, Hook::TcIngress, Hook::NfLocalIn, Hook::CgroupSkbIngress];
    let lower = text.to_ascii_lowercase();
    all.into_iter()
        .find(|h| {
            let flavor = h.flavor().to_string();
            lower == flavor || text == h.bfcli_name() || (lower == "nf" && *h == Hook::NfLocalIn)
        })
        .ok_or_else(|| format!("unknown hook `{text}`: use xdp, tc, nf or cgroup_skb"))
}

/// `--policy`'s and `--expect`'s parser: `ACCEPT` or `DROP`, any case.
pub fn parse_verdict(text: &str) -> Result<Verdict, String> {
    match text.to_ascii_uppercase().as_str() {
        "ACCEPT" => Ok(Verdict::Accept),
        "DROP" => Ok(Verdict::Drop),
        _ => Err(format!("unknown verdict `{text}`: use ACCEPT or DROP")),
    }
}

/// `--packet`'s parser: one of the suite's packets by name.
pub fn parse_packet(text: &str) -> Result<PacketKind, String> {
    PacketKind::ALL.into_iter().find(|p| p.name() == text).ok_or_else(|| {
        let names: Vec<&str> = PacketKind::ALL.iter().map(|p| p.name()).collect();
        format!("unknown packet `{text}`: use one of {}", names.join(", "))
    })
}

/// The ad-hoc case the flags ask for, if any. The packet defaults to the
/// hook's usual one (`local_ip4_icmp`), the expected verdict to the policy (a
/// rule that does not match the packet).
pub fn case(flags: &AdhocFlags) -> Option<Case> {
    let rule = flags.rule.as_deref()?;
    let hook = flags.hook.unwrap_or(Hook::Xdp);
    let policy = flags.policy.unwrap_or(Verdict::Accept);
    let packet = flags.packet.unwrap_or(PacketKind::LocalIp4Icmp);
    Some(suite::adhoc(rule, hook, policy, packet, flags.expect.unwrap_or(policy)))
}

/// The cases a command runs: with `--rule`, the ad-hoc case (after the
/// suite's cases `--filter` names, if given); else `suite_cases()`.
pub fn with_suite<'a>(
    all: &'a [Case],
    adhoc: Option<&'a Case>,
    filter: Option<&str>,
    suite_cases: impl FnOnce() -> Result<Vec<&'a Case>>,
) -> Result<Vec<&'a Case>> {
    let Some(adhoc) = adhoc else { return suite_cases() };
    let mut cases = if filter.is_some() { suite::select(all, filter) } else { vec![] };
    cases.push(adhoc);
    Ok(cases)
}

/// Refuse what `--rule` cannot do yet: a host measures the suite's cases by
/// name, and the ad-hoc case is not among them.
pub fn check_machine(flags: &AdhocFlags, machine: &Machine) -> Result<()> {
    anyhow::ensure!(
        flags.rule.is_none() || machine.is_local(),
        "--rule runs on this host only: drop --host, or run the command on {}",
        machine.name()
    );
    Ok(())
}

/// The error of an ad-hoc case bfcli refused (bfcli's own message, as one
/// line) or whose program returned another verdict than expected. `status`
/// is the case's status on one build.
pub fn rejected(case: &str, status: &Status) -> Option<String> {
    if !case.starts_with(suite::ADHOC_PREFIX) {
        return None;
    }
    let first = |r: &str| crate::text::line(r.lines().next().unwrap_or_default()).into_owned();
    match status {
        Status::Unsupported { reason } => {
            let why = reason.strip_prefix("bfcli rejected the chain: ").unwrap_or(reason);
            Some(format!("bfcli rejected the rule: {}", first(why)))
        }
        Status::Failed { reason } if reason.starts_with("wrong return value") => Some(format!(
            "the --rule chain returned another verdict than expected ({}): if the rule matches the packet, give its verdict with --expect",
            first(reason)
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_case_is_the_rule_in_a_chain_of_its_hook() {
        let flags = AdhocFlags {
            rule: Some("ip4.saddr eq 192.168.1.1 counter DROP".into()),
            hook: Some(parse_hook("xdp").unwrap()),
            policy: Some(parse_verdict("accept").unwrap()),
            packet: None,
            expect: None,
        };
        let case = case(&flags).unwrap();
        assert_eq!(case.name, "adhoc__xdp");
        assert_eq!(
            case.chain_text(),
            format!(
                "chain {} BF_HOOK_XDP ACCEPT\n    rule\n        ip4.saddr eq 192.168.1.1 counter DROP\n",
                suite::CHAIN_NAME
            )
        );
        assert_eq!(case.runtime(), Some((PacketKind::LocalIp4Icmp, Verdict::Accept)));
        assert_eq!(parse_hook("nf").unwrap(), Hook::NfLocalIn);
        assert_eq!(parse_hook("BF_HOOK_TC_INGRESS").unwrap(), Hook::TcIngress);
        assert!(parse_hook("bogus").unwrap_err().contains("use xdp, tc, nf or cgroup_skb"));
        assert!(parse_packet("nope").unwrap_err().contains("remote_ip6_eh"));
        assert_eq!(
            rejected("adhoc__xdp", &Status::Unsupported { reason: "bfcli rejected the chain: unknown matcher".into() }),
            Some("bfcli rejected the rule: unknown matcher".into())
        );
        assert_eq!(rejected("xdp__prologue", &Status::Unsupported { reason: "x".into() }), None);
    }
}
