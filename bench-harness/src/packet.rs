//! The test packets of the suite, built with `etherparse` so their headers,
//! lengths and checksums are right by construction.
//!
//! They mirror bpfilter's own benchmark packets (same addresses, ports and
//! protocols), so results line up with upstream histories.

use etherparse::{IpHeaders, IpNumber, Ipv6Extensions, Ipv6FlowLabel, Ipv6Header, Ipv6RawExtHeader, PacketBuilder};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Source MAC of every packet (upstream: `Ether(src=0x01)`).
pub const SRC_MAC: [u8; 6] = [0x01, 0, 0, 0, 0, 0];
/// Destination MAC of every packet (upstream: `Ether(dst=0x02)`).
pub const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0];
/// Source address of the IPv4 packets; the suite's ip4 rules match it.
pub const IP4_SRC: Ipv4Addr = Ipv4Addr::new(127, 2, 10, 10);
/// Destination address of the IPv4 packets.
pub const IP4_DST: Ipv4Addr = Ipv4Addr::new(127, 2, 10, 11);
/// Source address of the local IPv6 packet; the suite's ip6 rules match it.
pub const IP6_SRC: Ipv6Addr = Ipv6Addr::LOCALHOST;
/// Destination address of the local IPv6 packet.
pub const IP6_DST: Ipv6Addr = Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 2);
/// Source address of the remote IPv6 packet (documentation prefix).
pub const REMOTE_IP6_SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// Destination address of the remote IPv6 packet.
pub const REMOTE_IP6_DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
/// TCP source port of the IPv4 TCP packet; the suite's port rules match it.
pub const IP4_TCP_SPORT: u16 = 23;
/// TCP destination port of the IPv4 TCP packet.
pub const IP4_TCP_DPORT: u16 = 113;
/// TCP ports of the IPv6 TCP packet.
pub const IP6_TCP_PORTS: (u16, u16) = (31337, 31415);

/// One of the suite's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PacketKind {
    /// Ether / IPv6 (::1 → ::2) / TCP (31337 → 31415, SYN).
    LocalIp6Tcp,
    /// Ether / IPv4 (127.2.10.10 → 127.2.10.11) / ICMP echo request.
    LocalIp4Icmp,
    /// Ether / IPv4 (127.2.10.10 → 127.2.10.11) / TCP (23 → 113, SYN).
    LocalIp4Tcp,
    /// Ether / IPv6 / hop-by-hop options / no next header, with a payload.
    RemoteIp6Eh,
}

impl PacketKind {
    /// Every packet of the suite.
    pub const ALL: [PacketKind; 4] =
        [PacketKind::LocalIp6Tcp, PacketKind::LocalIp4Icmp, PacketKind::LocalIp4Tcp, PacketKind::RemoteIp6Eh];

    /// Upstream's name for the packet (`local_ip6_tcp`, ...).
    pub fn name(self) -> &'static str {
        match self {
            PacketKind::LocalIp6Tcp => "local_ip6_tcp",
            PacketKind::LocalIp4Icmp => "local_ip4_icmp",
            PacketKind::LocalIp4Tcp => "local_ip4_tcp",
            PacketKind::RemoteIp6Eh => "remote_ip6_eh",
        }
    }

    /// Whether the packet's L3 protocol is IPv6.
    pub fn is_ipv6(self) -> bool {
        matches!(self, PacketKind::LocalIp6Tcp | PacketKind::RemoteIp6Eh)
    }

    /// Serialise the packet, Ethernet header included.
    pub fn build(self) -> Vec<u8> {
        let eth = PacketBuilder::ethernet2(SRC_MAC, DST_MAC);
        let mut out = Vec::with_capacity(128);
        // Writing into a Vec cannot fail and every header below is valid, so
        // an error here is a programming error, not bad input.
        let written = match self {
            PacketKind::LocalIp6Tcp => eth
                .ipv6(IP6_SRC.octets(), IP6_DST.octets(), 64)
                .tcp(IP6_TCP_PORTS.0, IP6_TCP_PORTS.1, 0, 8192)
                .syn()
                .write(&mut out, &[]),
            PacketKind::LocalIp4Icmp => {
                eth.ipv4(IP4_SRC.octets(), IP4_DST.octets(), 64).icmpv4_echo_request(0, 0).write(&mut out, &[])
            }
            PacketKind::LocalIp4Tcp => eth
                .ipv4(IP4_SRC.octets(), IP4_DST.octets(), 64)
                .tcp(IP4_TCP_SPORT, IP4_TCP_DPORT, 0, 8192)
                .syn()
                .write(&mut out, &[]),
            PacketKind::RemoteIp6Eh => {
                let ip6 = Ipv6Header {
                    traffic_class: 0,
                    flow_label: Ipv6FlowLabel::ZERO,
                    payload_length: 0, // set by the builder
                    next_header: IpNumber::IPV6_HEADER_HOP_BY_HOP,
                    hop_limit: 64,
                    source: REMOTE_IP6_SRC.octets(),
                    destination: REMOTE_IP6_DST.octets(),
                };
                // One PadN option filling the 8-byte header.
                let hop_by_hop = Ipv6RawExtHeader::new_raw(IpNumber::IPV6_NO_NEXT_HEADER, &[1, 4, 0, 0, 0, 0])
                    .expect("a 6-byte option payload is a valid extension header");
                let exts = Ipv6Extensions { hop_by_hop_options: Some(hop_by_hop), ..Default::default() };
                PacketBuilder::ethernet2(SRC_MAC, DST_MAC).ip(IpHeaders::Ipv6(ip6, exts)).write(
                    &mut out,
                    IpNumber::IPV6_NO_NEXT_HEADER,
                    &[0u8; 16],
                )
            }
        };
        written.expect("suite packets are valid by construction");
        out
    }
}

impl fmt::Display for PacketKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    fn parse(kind: PacketKind) -> (Vec<u8>, SlicedPacket<'static>) {
        let bytes: &'static [u8] = Box::leak(kind.build().into_boxed_slice());
        let sliced = SlicedPacket::from_ethernet(bytes).expect("packet parses");
        (bytes.to_vec(), sliced)
    }

    #[test]
    fn lengths_match_upstream() {
        // Same lengths as bpfilter's hand-written arrays (except the EH packet,
        // whose extension chain is shorter here: 14 + 40 + 8 + 16).
        assert_eq!(PacketKind::LocalIp6Tcp.build().len(), 74);
        assert_eq!(PacketKind::LocalIp4Icmp.build().len(), 42);
        assert_eq!(PacketKind::LocalIp4Tcp.build().len(), 54);
        assert_eq!(PacketKind::RemoteIp6Eh.build().len(), 78);
    }

    #[test]
    fn ip4_icmp_fields_and_checksums() {
        let (_, p) = parse(PacketKind::LocalIp4Icmp);
        let Some(NetSlice::Ipv4(ip)) = p.net else { panic!("not ipv4") };
        let h = ip.header();
        assert_eq!(h.source_addr(), IP4_SRC);
        assert_eq!(h.destination_addr(), IP4_DST);
        assert_eq!(h.protocol(), IpNumber::ICMP);
        assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
        let Some(TransportSlice::Icmpv4(icmp)) = p.transport else { panic!("not icmp") };
        assert_eq!(icmp.type_u8(), 8, "echo request");
        let computed = icmp.header().icmp_type.calc_checksum(icmp.payload());
        assert_eq!(icmp.checksum(), computed);
    }

    #[test]
    fn ip4_tcp_fields_and_checksums() {
        let (_, p) = parse(PacketKind::LocalIp4Tcp);
        let Some(NetSlice::Ipv4(ip)) = p.net else { panic!("not ipv4") };
        let Some(TransportSlice::Tcp(tcp)) = p.transport else { panic!("not tcp") };
        assert_eq!(tcp.source_port(), 23);
        assert_eq!(tcp.destination_port(), 113);
        assert!(tcp.syn() && !tcp.ack());
        let expected = tcp.to_header().calc_checksum_ipv4(&ip.header().to_header(), tcp.payload()).unwrap();
        assert_eq!(tcp.checksum(), expected);
    }

    #[test]
    fn ip6_tcp_fields_and_checksum() {
        let (_, p) = parse(PacketKind::LocalIp6Tcp);
        let Some(NetSlice::Ipv6(ip)) = p.net else { panic!("not ipv6") };
        assert_eq!(ip.header().source_addr(), Ipv6Addr::LOCALHOST);
        assert_eq!(ip.header().destination_addr(), IP6_DST);
        let Some(TransportSlice::Tcp(tcp)) = p.transport else { panic!("not tcp") };
        assert_eq!((tcp.source_port(), tcp.destination_port()), (31337, 31415));
        let expected = tcp.to_header().calc_checksum_ipv6(&ip.header().to_header(), tcp.payload()).unwrap();
        assert_eq!(tcp.checksum(), expected);
    }

    #[test]
    fn ip6_eh_starts_with_hop_by_hop() {
        let bytes = PacketKind::RemoteIp6Eh.build();
        // Ethertype IPv6, next header 0 (hop-by-hop) in the fixed header.
        assert_eq!(&bytes[12..14], &[0x86, 0xdd]);
        assert_eq!(bytes[14 + 6], 0);
        // Hop-by-hop says "no next header" (59); payload length covers it all.
        assert_eq!(bytes[14 + 40], 59);
        assert_eq!(u16::from_be_bytes([bytes[18], bytes[19]]), 8 + 16);
        let (_, p) = parse(PacketKind::RemoteIp6Eh);
        let Some(NetSlice::Ipv6(ip)) = p.net else { panic!("not ipv6") };
        assert_eq!(ip.extensions().first_header(), Some(IpNumber::IPV6_HEADER_HOP_BY_HOP));
    }

    #[test]
    fn ethernet_header_is_upstream_s() {
        for kind in PacketKind::ALL {
            let b = kind.build();
            assert_eq!(&b[0..6], &DST_MAC, "{kind}");
            assert_eq!(&b[6..12], &SRC_MAC, "{kind}");
            let ethertype = if kind.is_ipv6() { [0x86, 0xdd] } else { [0x08, 0x00] };
            assert_eq!(&b[12..14], &ethertype, "{kind}");
        }
    }
}
