//! Program flavors (XDP, TC, netfilter, cgroup_skb): how each is hooked, how it
//! is test-run, and which return value means which verdict.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The four program flavors bpfilter generates for packet hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavor {
    /// `BPF_PROG_TYPE_XDP`.
    Xdp,
    /// `BPF_PROG_TYPE_SCHED_CLS` (TC / TCX).
    Tc,
    /// `BPF_PROG_TYPE_NETFILTER`.
    Netfilter,
    /// `BPF_PROG_TYPE_CGROUP_SKB`.
    CgroupSkb,
}

/// A filtering decision, independent of the flavor's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    /// Let the packet through.
    Accept,
    /// Discard the packet.
    Drop,
}

impl Verdict {
    /// The keyword bfcli uses for this verdict.
    pub fn keyword(self) -> &'static str {
        match self {
            Verdict::Accept => "ACCEPT",
            Verdict::Drop => "DROP",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// A bpfilter hook used by the suite. Each maps to exactly one flavor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Hook {
    /// `BF_HOOK_XDP`.
    #[serde(rename = "BF_HOOK_XDP")]
    Xdp,
    /// `BF_HOOK_TC_INGRESS`.
    #[serde(rename = "BF_HOOK_TC_INGRESS")]
    TcIngress,
    /// `BF_HOOK_NF_LOCAL_IN`.
    #[serde(rename = "BF_HOOK_NF_LOCAL_IN")]
    NfLocalIn,
    /// `BF_HOOK_CGROUP_SKB_INGRESS`.
    #[serde(rename = "BF_HOOK_CGROUP_SKB_INGRESS")]
    CgroupSkbIngress,
}

impl Hook {
    /// The hook name as written in a bfcli chain.
    pub fn bfcli_name(self) -> &'static str {
        match self {
            Hook::Xdp => "BF_HOOK_XDP",
            Hook::TcIngress => "BF_HOOK_TC_INGRESS",
            Hook::NfLocalIn => "BF_HOOK_NF_LOCAL_IN",
            Hook::CgroupSkbIngress => "BF_HOOK_CGROUP_SKB_INGRESS",
        }
    }

    /// The flavor of program bpfilter generates for this hook.
    pub fn flavor(self) -> Flavor {
        match self {
            Hook::Xdp => Flavor::Xdp,
            Hook::TcIngress => Flavor::Tc,
            Hook::NfLocalIn => Flavor::Netfilter,
            Hook::CgroupSkbIngress => Flavor::CgroupSkb,
        }
    }
}

/// `NF_INET_LOCAL_IN`, the netfilter hook number passed in the test-run context.
pub const NF_INET_LOCAL_IN: u8 = 1;
/// `NFPROTO_IPV4`.
pub const NFPROTO_IPV4: u8 = 2;
/// `NFPROTO_IPV6`.
pub const NFPROTO_IPV6: u8 = 10;

impl Flavor {
    /// Every flavor, in report order.
    pub const ALL: [Flavor; 4] = [Flavor::Xdp, Flavor::Tc, Flavor::Netfilter, Flavor::CgroupSkb];

    /// Short lowercase name, as used in case names (`xdp__prologue`).
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Xdp => "xdp",
            Flavor::Tc => "tc",
            Flavor::Netfilter => "netfilter",
            Flavor::CgroupSkb => "cgroup_skb",
        }
    }

    /// The value the program returns for `verdict` in this flavor.
    ///
    /// XDP PASS=2/DROP=1, TC OK=0/SHOT=2, netfilter ACCEPT=1/DROP=0, cgroup_skb 1/0.
    pub fn retval(self, verdict: Verdict) -> u32 {
        match (self, verdict) {
            (Flavor::Xdp, Verdict::Accept) => 2,
            (Flavor::Xdp, Verdict::Drop) => 1,
            (Flavor::Tc, Verdict::Accept) => 0,
            (Flavor::Tc, Verdict::Drop) => 2,
            (Flavor::Netfilter, Verdict::Accept) => 1,
            (Flavor::Netfilter, Verdict::Drop) => 0,
            (Flavor::CgroupSkb, Verdict::Accept) => 1,
            (Flavor::CgroupSkb, Verdict::Drop) => 0,
        }
    }

    /// The kernel program type.
    pub fn prog_type(self) -> libbpf_sys::bpf_prog_type {
        match self {
            Flavor::Xdp => libbpf_sys::BPF_PROG_TYPE_XDP,
            Flavor::Tc => libbpf_sys::BPF_PROG_TYPE_SCHED_CLS,
            Flavor::Netfilter => libbpf_sys::BPF_PROG_TYPE_NETFILTER,
            Flavor::CgroupSkb => libbpf_sys::BPF_PROG_TYPE_CGROUP_SKB,
        }
    }

    /// The expected attach type the kernel requires at load time, if any.
    pub fn expected_attach_type(self) -> libbpf_sys::bpf_attach_type {
        match self {
            Flavor::Netfilter => libbpf_sys::BPF_NETFILTER,
            Flavor::CgroupSkb => libbpf_sys::BPF_CGROUP_INET_INGRESS,
            // 0 is "none" for XDP and TC.
            Flavor::Xdp | Flavor::Tc => 0,
        }
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_and_drop_differ_in_every_flavor() {
        for flavor in Flavor::ALL {
            assert_ne!(flavor.retval(Verdict::Accept), flavor.retval(Verdict::Drop), "{flavor}");
        }
    }

    #[test]
    fn retvals_match_kernel_constants() {
        assert_eq!(Flavor::Xdp.retval(Verdict::Drop), libbpf_sys::XDP_DROP);
        assert_eq!(Flavor::Xdp.retval(Verdict::Accept), libbpf_sys::XDP_PASS);
        assert_eq!(Flavor::Tc.retval(Verdict::Drop), 2); // TC_ACT_SHOT
        assert_eq!(Flavor::Netfilter.retval(Verdict::Accept), 1); // NF_ACCEPT
    }

    #[test]
    fn hooks_map_to_their_flavor() {
        assert_eq!(Hook::Xdp.flavor(), Flavor::Xdp);
        assert_eq!(Hook::TcIngress.flavor(), Flavor::Tc);
        assert_eq!(Hook::NfLocalIn.flavor(), Flavor::Netfilter);
        assert_eq!(Hook::CgroupSkbIngress.flavor(), Flavor::CgroupSkb);
        assert_eq!(Hook::CgroupSkbIngress.bfcli_name(), "BF_HOOK_CGROUP_SKB_INGRESS");
    }
}
