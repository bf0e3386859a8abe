//! The test packets of the suite, built with `etherparse` so their headers,
//! lengths and checksums are right by construction.
//!
//! They are bpfilter's own benchmark packets byte for byte (upstream's
//! `tests/benchmarks/benchmark.cpp`, the `pkt_*` arrays), trailing zeros of
//! its buffers included: the kernel is given the same `data_size_in`, so
//! results line up with upstream histories. A test compares every byte.

use etherparse::{
    EtherType, Ethernet2Header, Icmpv4Type, IpHeaders, IpNumber, Ipv4Extensions, Ipv4Header, Ipv6FlowLabel, Ipv6Header,
    Ipv6RawExtHeader, PacketBuilder,
};
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
/// Source address of the remote IPv6 packet (upstream's).
pub const REMOTE_IP6_SRC: Ipv6Addr = Ipv6Addr::new(0x542c, 0x1a31, 0xf964, 0x946c, 0x5a24, 0xe71e, 0x4d26, 0xb87e);
/// Destination address of the remote IPv6 packet (upstream's).
pub const REMOTE_IP6_DST: Ipv6Addr = Ipv6Addr::new(0x5232, 0x185a, 0x52f9, 0x0ab4, 0x8025, 0x7974, 0x2299, 0xeb04);
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
    /// Ether / IPv4 (127.2.10.10 → 127.2.10.11) / ICMP type 8 (echo request), code 2, as upstream's.
    LocalIp4Icmp,
    /// Ether / IPv4 (127.2.10.10 → 127.2.10.11) / TCP (23 → 113, SYN).
    LocalIp4Tcp,
    /// Ether / IPv6 / hop-by-hop options / routing / hop-by-hop options / no
    /// next header, in a 90-byte buffer (12 trailing zeros), as upstream's.
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

    /// Length of upstream's buffer for this packet: the frame and, for the
    /// IPv6 packets, trailing zeros (its arrays are longer than their
    /// initialisers, and the whole array is passed to the kernel).
    pub fn buffer_len(self) -> usize {
        match self {
            PacketKind::LocalIp6Tcp => 80,
            PacketKind::LocalIp4Icmp => 42,
            PacketKind::LocalIp4Tcp => 54,
            PacketKind::RemoteIp6Eh => 90,
        }
    }

    /// Serialise the packet, Ethernet header included, padded with zeros to
    /// [`PacketKind::buffer_len`].
    pub fn build(self) -> Vec<u8> {
        let eth = PacketBuilder::ethernet2(SRC_MAC, DST_MAC);
        let mut out = Vec::with_capacity(128);
        // Upstream's IPv4 headers (scapy's defaults): identification 1, no
        // "don't fragment" flag.
        let ip4 = |protocol: IpNumber| {
            let mut h = Ipv4Header::new(0, 64, protocol, IP4_SRC.octets(), IP4_DST.octets())
                .expect("an empty payload fits an IPv4 packet");
            h.identification = 1;
            h.dont_fragment = false;
            IpHeaders::Ipv4(h, Ipv4Extensions::default())
        };
        // Writing into a Vec cannot fail and every header below is valid, so
        // an error here is a programming error, not bad input.
        let written = match self {
            PacketKind::LocalIp6Tcp => eth
                .ipv6(IP6_SRC.octets(), IP6_DST.octets(), 64)
                .tcp(IP6_TCP_PORTS.0, IP6_TCP_PORTS.1, 0, 8192)
                .syn()
                .write(&mut out, &[]),
            PacketKind::LocalIp4Icmp => eth
                .ip(ip4(IpNumber::ICMP))
                .icmpv4(Icmpv4Type::Unknown { type_u8: 8, code_u8: 2, bytes5to8: [0; 4] })
                .write(&mut out, &[]),
            PacketKind::LocalIp4Tcp => {
                eth.ip(ip4(IpNumber::TCP)).tcp(IP4_TCP_SPORT, IP4_TCP_DPORT, 0, 8192).syn().write(&mut out, &[])
            }
            PacketKind::RemoteIp6Eh => {
                // Hop-by-hop → routing → hop-by-hop → no next header, each
                // 8 bytes. etherparse's `Ipv6Extensions` cannot put a second
                // hop-by-hop header after routing (RFC 8200 order), so the
                // chain is written as the IPv6 payload.
                let ext = |next: IpNumber, body: [u8; 6]| {
                    Ipv6RawExtHeader::new_raw(next, &body)
                        .expect("a 6-byte body is a valid extension header")
                        .to_bytes()
                };
                let pad_n = [1, 4, 0, 0, 0, 0]; // one PadN option filling the header
                let mut chain = Vec::with_capacity(24);
                chain.extend_from_slice(&ext(IpNumber::IPV6_ROUTE_HEADER, pad_n));
                // Routing type 0, 0 segments left, 4 reserved bytes.
                chain.extend_from_slice(&ext(IpNumber::IPV6_HEADER_HOP_BY_HOP, [0; 6]));
                chain.extend_from_slice(&ext(IpNumber::IPV6_NO_NEXT_HEADER, pad_n));
                let ip6 = Ipv6Header {
                    traffic_class: 0,
                    flow_label: Ipv6FlowLabel::ZERO,
                    payload_length: chain.len() as u16,
                    next_header: IpNumber::IPV6_HEADER_HOP_BY_HOP,
                    hop_limit: 64,
                    source: REMOTE_IP6_SRC.octets(),
                    destination: REMOTE_IP6_DST.octets(),
                };
                let ether = Ethernet2Header { source: SRC_MAC, destination: DST_MAC, ether_type: EtherType::IPV6 };
                out.extend_from_slice(&ether.to_bytes());
                out.extend_from_slice(&ip6.to_bytes());
                out.extend_from_slice(&chain);
                Ok(())
            }
        };
        written.expect("suite packets are valid by construction");
        out.resize(self.buffer_len(), 0);
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

    /// Upstream's packets, copied byte for byte from bpfilter's
    /// `tests/benchmarks/benchmark.cpp` (the `pkt_local_ip6_tcp`,
    /// `pkt_local_ip4_icmp`, `pkt_local_ip4_tcp` and `pkt_remote_ip6_eh`
    /// arrays, commit f862b2a3), with the trailing zeros its arrays get
    /// from being declared longer than their initialisers (80 and 90 bytes).
    const UPSTREAM: [(PacketKind, &str); 4] = [
        (
            PacketKind::LocalIp6Tcp,
            "02 00 00 00 00 00 01 00 00 00 00 00 86 dd 60 00 00 00 00 14 06 40 00 00 00 00 00 00 00 00 00 00 \
             00 00 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02 7a 69 7a b7 00 00 00 00 00 00 \
             00 00 50 02 20 00 9a bf 00 00 00 00 00 00 00 00",
        ),
        (
            PacketKind::LocalIp4Icmp,
            "02 00 00 00 00 00 01 00 00 00 00 00 08 00 45 00 00 1c 00 01 00 00 40 01 68 c7 7f 02 0a 0a 7f 02 \
             0a 0b 08 02 f7 fd 00 00 00 00",
        ),
        (
            PacketKind::LocalIp4Tcp,
            "02 00 00 00 00 00 01 00 00 00 00 00 08 00 45 00 00 28 00 01 00 00 40 06 68 b6 7f 02 0a 0a 7f 02 \
             0a 0b 00 17 00 71 00 00 00 00 00 00 00 00 50 02 20 00 7d 41 00 00",
        ),
        (
            PacketKind::RemoteIp6Eh,
            "02 00 00 00 00 00 01 00 00 00 00 00 86 dd 60 00 00 00 00 18 00 40 54 2c 1a 31 f9 64 94 6c 5a 24 \
             e7 1e 4d 26 b8 7e 52 32 18 5a 52 f9 0a b4 80 25 79 74 22 99 eb 04 2b 00 01 04 00 00 00 00 00 00 \
             00 00 00 00 00 00 3b 00 01 04 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
        ),
    ];

    #[test]
    fn every_packet_is_upstream_s_byte_for_byte() {
        for (kind, hex) in UPSTREAM {
            let want: Vec<u8> = hex.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect();
            assert_eq!(want.len(), kind.buffer_len(), "{kind}");
            assert_eq!(kind.build(), want, "{kind} differs from upstream's bytes");
        }
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
    fn ip6_eh_chains_three_extension_headers() {
        let bytes = PacketKind::RemoteIp6Eh.build();
        // Ethertype IPv6, next header 0 (hop-by-hop) in the fixed header.
        assert_eq!(&bytes[12..14], &[0x86, 0xdd]);
        assert_eq!(bytes[14 + 6], 0);
        // Hop-by-hop → routing (43) → hop-by-hop (0) → no next header (59).
        assert_eq!([bytes[54], bytes[62], bytes[70]], [43, 0, 59]);
        assert_eq!(u16::from_be_bytes([bytes[18], bytes[19]]), 3 * 8);
        // etherparse refuses to parse it (a hop-by-hop header after routing
        // breaks RFC 8200's order): the kernel program sees it as upstream's does.
        assert!(SlicedPacket::from_ethernet(&bytes).is_err());
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
