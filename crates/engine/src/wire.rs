//! Inner packets (what a peer sends through the tunnel), parsed and built without state.
//!
//! TCP goes on to [`crate::tcp`]; UDP and ICMP echo are handled here because they need no
//! connection state and must work for any destination. Packet formats are smoltcp's `wire`.
//! References: RFC 791 (IPv4), RFC 8200 (IPv6), RFC 768 (UDP), RFC 792 / RFC 4443 (ICMP echo
//! and destination unreachable).

use crate::counters::DropReason;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    Icmpv4DstUnreachable, Icmpv4Message, Icmpv4Packet, Icmpv4Repr, Icmpv6DstUnreachable, Icmpv6Message, Icmpv6Packet, Icmpv6Repr,
    IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, UdpPacket, UdpRepr,
};
use std::net::{IpAddr, SocketAddr};

const HOP_LIMIT: u8 = 64;
const UDP_HEADER_LEN: usize = 8;

/// What a decrypted packet is, as far as the engine cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Inner<'a> {
    /// A TCP segment, from `src` to `dst` (addresses only); `tcp` is its TCP header and data.
    Tcp {
        src: IpAddr,
        dst: IpAddr,
        tcp: &'a [u8],
    },
    Udp {
        src: SocketAddr,
        dst: SocketAddr,
        payload: &'a [u8],
    },
    /// An ICMP or ICMPv6 echo request; answer it with [`echo_reply`].
    EchoRequest,
    /// An ICMP or ICMPv6 echo reply (to a ping of ours, made with [`echo_request`]).
    EchoReply {
        src: IpAddr,
        ident: u16,
        seq: u16,
    },
    /// An ICMP or ICMPv6 destination unreachable quoting a TCP segment of ours.
    TcpUnreachable {
        why: Unreachable,
        quoted: QuotedTcp,
    },
    /// An ICMP or ICMPv6 destination unreachable quoting a UDP datagram of ours, sent from
    /// `local` to `remote`.
    UdpUnreachable {
        why: Unreachable,
        local: SocketAddr,
        remote: SocketAddr,
    },
}

/// The start of a TCP segment of ours that an ICMP error quotes (RFC 792: the IP header and
/// at least 8 bytes after it; RFC 4443 §3.1: as much as fits): enough to find its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotedTcp {
    /// Our end (the quoted packet's source).
    pub local: SocketAddr,
    /// The remote end it was sent to.
    pub remote: SocketAddr,
    /// Its sequence number.
    pub seq: u32,
}

/// The IP header fields the classification needs.
struct Ip<'a> {
    src: IpAddr,
    dst: IpAddr,
    protocol: IpProtocol,
    payload: &'a [u8],
}

fn parse_ip(packet: &[u8]) -> Result<Ip<'_>, DropReason> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => {
            let ip = Ipv4Packet::new_checked(packet).map_err(|_| DropReason::InnerMalformed)?;
            if ip.more_frags() || ip.frag_offset() != 0 {
                return Err(DropReason::Unsupported);
            }
            let repr = Ipv4Repr::parse(&ip, &ChecksumCapabilities::default()).map_err(|_| DropReason::InnerMalformed)?;
            Ok(Ip { src: IpAddr::V4(repr.src_addr), dst: IpAddr::V4(repr.dst_addr), protocol: repr.next_header, payload: ip.payload() })
        }
        Some(6) => {
            let ip = Ipv6Packet::new_checked(packet).map_err(|_| DropReason::InnerMalformed)?;
            let repr = Ipv6Repr::parse(&ip).map_err(|_| DropReason::InnerMalformed)?;
            Ok(Ip { src: IpAddr::V6(repr.src_addr), dst: IpAddr::V6(repr.dst_addr), protocol: repr.next_header, payload: ip.payload() })
        }
        _ => Err(DropReason::InnerMalformed),
    }
}

/// Classifies a decrypted packet. TCP and UDP checksums are not verified: the packet came
/// inside a WireGuard packet whose authentication covers every byte, so they cannot catch
/// anything (the kernel's WireGuard skips them too). They are still computed on send.
/// The IPv4 header checksum and ICMP's are checked (tiny, and rare).
pub fn classify(packet: &[u8]) -> Result<Inner<'_>, DropReason> {
    let ip = parse_ip(packet)?;
    if !is_unicast(ip.dst) {
        return Err(DropReason::Unsupported);
    }
    // A source must name one host (RFC 1122 3.2.1.3, RFC 4291 2.7): a peer whose AllowedIPs
    // hold a group's address could otherwise have us answer the group. (Loopback stays: the
    // engine stands in for any destination, 127.0.0.1 included, and answers from it.)
    if !is_unicast(ip.src) {
        return Err(DropReason::InnerMalformed);
    }
    match ip.protocol {
        IpProtocol::Tcp => Ok(Inner::Tcp { src: ip.src, dst: ip.dst, tcp: ip.payload }),
        IpProtocol::Udp => {
            let udp = UdpPacket::new_checked(ip.payload).map_err(|_| DropReason::InnerMalformed)?;
            if udp.dst_port() == 0 {
                return Err(DropReason::InnerMalformed);
            }
            Ok(Inner::Udp {
                src: SocketAddr::new(ip.src, udp.src_port()),
                dst: SocketAddr::new(ip.dst, udp.dst_port()),
                payload: udp.payload(),
            })
        }
        IpProtocol::Icmp => {
            let icmp = Icmpv4Packet::new_checked(ip.payload).map_err(|_| DropReason::InnerMalformed)?;
            if !icmp.verify_checksum() {
                return Err(DropReason::InnerMalformed);
            }
            match icmp.msg_type() {
                Icmpv4Message::EchoRequest => Ok(Inner::EchoRequest),
                Icmpv4Message::EchoReply => Ok(Inner::EchoReply { src: ip.src, ident: icmp.echo_ident(), seq: icmp.echo_seq_no() }),
                Icmpv4Message::DstUnreachable => {
                    let why = match icmp.msg_code() {
                        // Fragmentation needed: a path MTU message, not a failure (RFC 1191).
                        4 => return Err(DropReason::Unsupported),
                        0 | 6 | 9 | 11 => Unreachable::Net,
                        3 => Unreachable::Port,
                        _ => Unreachable::Host,
                    };
                    quoted(why, quoted_v4(icmp.data())?)
                }
                _ => Err(DropReason::Unsupported),
            }
        }
        IpProtocol::Icmpv6 => {
            let (IpAddr::V6(src), IpAddr::V6(dst)) = (ip.src, ip.dst) else {
                return Err(DropReason::InnerMalformed);
            };
            let icmp = Icmpv6Packet::new_checked(ip.payload).map_err(|_| DropReason::InnerMalformed)?;
            if !icmp.verify_checksum(&src, &dst) {
                return Err(DropReason::InnerMalformed);
            }
            match icmp.msg_type() {
                Icmpv6Message::EchoRequest => Ok(Inner::EchoRequest),
                Icmpv6Message::EchoReply => Ok(Inner::EchoReply { src: ip.src, ident: icmp.echo_ident(), seq: icmp.echo_seq_no() }),
                Icmpv6Message::DstUnreachable => {
                    let why = match icmp.msg_code() {
                        0 => Unreachable::Net,
                        4 => Unreachable::Port,
                        _ => Unreachable::Host,
                    };
                    quoted(why, quoted_v6(icmp.payload())?)
                }
                _ => Err(DropReason::Unsupported),
            }
        }
        _ => Err(DropReason::Unsupported),
    }
}

/// A packet of ours an ICMP error quotes: its addresses, its protocol and the first 8 bytes
/// after its IP header (RFC 792; RFC 4443 3.1 may quote more).
struct Quote<'a> {
    src: IpAddr,
    dst: IpAddr,
    protocol: IpProtocol,
    transport: &'a [u8; 8],
}

/// The quoted IPv4 packet of an ICMP error: its header (any options), then 8 bytes.
fn quoted_v4(quote: &[u8]) -> Result<Quote<'_>, DropReason> {
    let header_len = usize::from(quote.first().ok_or(DropReason::InnerMalformed)? & 0x0f) * 4;
    if quote[0] >> 4 != 4 || header_len < 20 {
        return Err(DropReason::InnerMalformed);
    }
    // First: the whole header and the 8 bytes after it are there (a peer may send a quote cut short).
    let transport = first_eight(quote, header_len)?;
    let address = |at: usize| IpAddr::from([quote[at], quote[at + 1], quote[at + 2], quote[at + 3]]);
    Ok(Quote { src: address(12), dst: address(16), protocol: IpProtocol::from(quote[9]), transport })
}

/// The quoted IPv6 packet of an ICMPv6 error; the transport header right after the fixed
/// header only (what we send carries no extension headers).
fn quoted_v6(quote: &[u8]) -> Result<Quote<'_>, DropReason> {
    const HEADER_LEN: usize = 40;
    let transport = first_eight(quote, HEADER_LEN)?;
    if quote[0] >> 4 != 6 {
        return Err(DropReason::InnerMalformed);
    }
    let address = |at: usize| {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&quote[at..at + 16]);
        IpAddr::from(bytes)
    };
    Ok(Quote { src: address(8), dst: address(24), protocol: IpProtocol::from(quote[6]), transport })
}

fn first_eight(quote: &[u8], at: usize) -> Result<&[u8; 8], DropReason> {
    quote.get(at..at + 8).and_then(|bytes| bytes.try_into().ok()).ok_or(DropReason::InnerMalformed)
}

/// What the quote names: a TCP segment (ports and sequence number) or a UDP datagram (ports).
fn quoted(why: Unreachable, quote: Quote<'_>) -> Result<Inner<'static>, DropReason> {
    let port = |at: usize| u16::from_be_bytes([quote.transport[at], quote.transport[at + 1]]);
    let (local, remote) = (SocketAddr::new(quote.src, port(0)), SocketAddr::new(quote.dst, port(2)));
    match quote.protocol {
        IpProtocol::Tcp => {
            let seq = u32::from_be_bytes([quote.transport[4], quote.transport[5], quote.transport[6], quote.transport[7]]);
            Ok(Inner::TcpUnreachable { why, quoted: QuotedTcp { local, remote, seq } })
        }
        IpProtocol::Udp => Ok(Inner::UdpUnreachable { why, local, remote }),
        _ => Err(DropReason::Unsupported),
    }
}

fn is_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => !ip.is_broadcast() && !ip.is_multicast() && !ip.is_unspecified(),
        IpAddr::V6(ip) => !ip.is_multicast() && !ip.is_unspecified(),
    }
}

/// Builds the echo reply to an echo request that [`classify`] accepted: the same
/// identifier, sequence number and data, from the address that was pinged.
pub fn echo_reply(request: &[u8], out: &mut Vec<u8>) -> Result<(), DropReason> {
    let ip = parse_ip(request)?;
    let protocol = if ip.src.is_ipv4() { IpProtocol::Icmp } else { IpProtocol::Icmpv6 };
    let header_len = emit_ip(ip.dst, ip.src, protocol, ip.payload.len(), out).ok_or(DropReason::InnerMalformed)?;
    let icmp_bytes = &mut out[header_len..];
    icmp_bytes.copy_from_slice(ip.payload);
    match (ip.src, ip.dst) {
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let mut icmp = Icmpv6Packet::new_unchecked(icmp_bytes);
            icmp.set_msg_type(Icmpv6Message::EchoReply);
            icmp.fill_checksum(&dst, &src);
        }
        _ => {
            let mut icmp = Icmpv4Packet::new_unchecked(icmp_bytes);
            icmp.set_msg_type(Icmpv4Message::EchoReply);
            icmp.fill_checksum();
        }
    }
    Ok(())
}

/// Builds an ICMP or ICMPv6 echo request (RFC 792; RFC 4443 4.1) with `data` after the
/// identifier and sequence number. None when the families differ.
pub fn echo_request(src: IpAddr, dst: IpAddr, ident: u16, seq_no: u16, data: &[u8], out: &mut Vec<u8>) -> Option<()> {
    match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => {
            let icmp = Icmpv4Repr::EchoRequest { ident, seq_no, data };
            let header_len = emit_ip(src, dst, IpProtocol::Icmp, icmp.buffer_len(), out)?;
            icmp.emit(&mut Icmpv4Packet::new_unchecked(&mut out[header_len..]), &ChecksumCapabilities::default());
        }
        (IpAddr::V6(src6), IpAddr::V6(dst6)) => {
            let icmp = Icmpv6Repr::EchoRequest { ident, seq_no, data };
            let header_len = emit_ip(src, dst, IpProtocol::Icmpv6, icmp.buffer_len(), out)?;
            icmp.emit(&src6, &dst6, &mut Icmpv6Packet::new_unchecked(&mut out[header_len..]), &ChecksumCapabilities::default());
        }
        _ => return None,
    }
    Some(())
}

/// Why a destination is unreachable: what an ICMP error we build says ([`unreachable`]), or
/// one we receive ([`classify`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    /// No route to the network (ICMP codes 0, 6, 9, 11; ICMPv6 code 0).
    Net = 0,
    /// The host or the protocol, or a filter on the way (every code not named here).
    Host = 1,
    /// No one listens on the port (ICMP code 3; ICMPv6 code 4).
    Port = 2,
}

impl Unreachable {
    pub const ALL: [Unreachable; 3] = [Unreachable::Net, Unreachable::Host, Unreachable::Port];

    /// The name the host gives it.
    pub fn name(self) -> &'static str {
        match self {
            Unreachable::Net => "net",
            Unreachable::Host => "host",
            Unreachable::Port => "port",
        }
    }
}

/// Builds the ICMP or ICMPv6 "destination unreachable" answering `original` (a packet a
/// peer sent), from the address it was sent to, quoting its IP header and the first eight
/// bytes after it (RFC 792; RFC 4443 §3.1) so the peer's stack can match it to a socket.
pub fn unreachable(original: &[u8], why: Unreachable, out: &mut Vec<u8>) -> Result<(), DropReason> {
    let ip = parse_ip(original)?;
    let data = &ip.payload[..ip.payload.len().min(8)];
    match (ip.src, ip.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let quoted =
                Ipv4Repr { src_addr: src, dst_addr: dst, next_header: ip.protocol, payload_len: ip.payload.len(), hop_limit: HOP_LIMIT };
            let reason = match why {
                Unreachable::Net => Icmpv4DstUnreachable::NetUnreachable,
                Unreachable::Host => Icmpv4DstUnreachable::HostUnreachable,
                Unreachable::Port => Icmpv4DstUnreachable::PortUnreachable,
            };
            let icmp = Icmpv4Repr::DstUnreachable { reason, header: quoted, data };
            let header_len = emit_ip(ip.dst, ip.src, IpProtocol::Icmp, icmp.buffer_len(), out).ok_or(DropReason::InnerMalformed)?;
            icmp.emit(&mut Icmpv4Packet::new_unchecked(&mut out[header_len..]), &ChecksumCapabilities::default());
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let quoted =
                Ipv6Repr { src_addr: src, dst_addr: dst, next_header: ip.protocol, payload_len: ip.payload.len(), hop_limit: HOP_LIMIT };
            let reason = match why {
                Unreachable::Net => Icmpv6DstUnreachable::NoRoute,
                Unreachable::Host => Icmpv6DstUnreachable::AddrUnreachable,
                Unreachable::Port => Icmpv6DstUnreachable::PortUnreachable,
            };
            let icmp = Icmpv6Repr::DstUnreachable { reason, header: quoted, data };
            let header_len = emit_ip(ip.dst, ip.src, IpProtocol::Icmpv6, icmp.buffer_len(), out).ok_or(DropReason::InnerMalformed)?;
            icmp.emit(&dst, &src, &mut Icmpv6Packet::new_unchecked(&mut out[header_len..]), &ChecksumCapabilities::default());
        }
        _ => return Err(DropReason::InnerMalformed),
    }
    Ok(())
}

/// IP header bytes of a packet from `src` (no options, no extension headers).
pub fn ip_header_len(src: IpAddr) -> usize {
    if src.is_ipv4() {
        20
    } else {
        40
    }
}

/// Replaces `out` with an IP header from `src` to `dst` and `payload_len` zero bytes after it
/// for the caller to fill; returns the header's length, or `None` if the families differ.
pub fn emit_ip(src: IpAddr, dst: IpAddr, protocol: IpProtocol, payload_len: usize, out: &mut Vec<u8>) -> Option<usize> {
    if src.is_ipv4() != dst.is_ipv4() {
        return None;
    }
    let header_len = ip_header_len(src);
    out.clear();
    out.resize(header_len + payload_len, 0);
    match (src, dst) {
        (IpAddr::V4(src_addr), IpAddr::V4(dst_addr)) => {
            let repr = Ipv4Repr { src_addr, dst_addr, next_header: protocol, payload_len, hop_limit: HOP_LIMIT };
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]), &ChecksumCapabilities::default());
        }
        (IpAddr::V6(src_addr), IpAddr::V6(dst_addr)) => {
            let repr = Ipv6Repr { src_addr, dst_addr, next_header: protocol, payload_len, hop_limit: HOP_LIMIT };
            repr.emit(&mut Ipv6Packet::new_unchecked(&mut out[..]));
        }
        _ => unreachable!("families checked above"),
    }
    Some(header_len)
}

/// Why a UDP datagram could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpBuildError {
    /// Source and destination are of different address families.
    MixedFamilies,
    /// The datagram would not fit the MTU (the engine does not fragment).
    TooBig,
}

/// Builds an IP packet holding one UDP datagram, into `out`. `mtu` bounds the whole IP packet.
pub fn build_udp(src: SocketAddr, dst: SocketAddr, payload: &[u8], mtu: usize, out: &mut Vec<u8>) -> Result<(), UdpBuildError> {
    let udp = UdpRepr { src_port: src.port(), dst_port: dst.port() };
    let udp_len = UDP_HEADER_LEN + payload.len();
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(UdpBuildError::MixedFamilies);
    }
    if ip_header_len(src.ip()) + udp_len > mtu {
        return Err(UdpBuildError::TooBig);
    }
    let header_len = emit_ip(src.ip(), dst.ip(), IpProtocol::Udp, udp_len, out).ok_or(UdpBuildError::MixedFamilies)?;
    let (src_ip, dst_ip) = (IpAddress::from(src.ip()), IpAddress::from(dst.ip()));
    let mut packet = UdpPacket::new_unchecked(&mut out[header_len..]);
    udp.emit(&mut packet, &src_ip, &dst_ip, payload.len(), |buf| buf.copy_from_slice(payload), &ChecksumCapabilities::default());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::segment::Outgoing;
    use smoltcp::wire::{Icmpv4Repr, Icmpv6Repr, Ipv6Address};

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn udp_round_trips_v4_and_v6() {
        for (src, dst) in [("10.0.0.2:5353", "192.0.2.9:53"), ("[fd00::2]:4000", "[2001:db8::1]:53")] {
            let mut out = Vec::new();
            build_udp(addr(src), addr(dst), b"hello", 1420, &mut out).unwrap();
            assert_eq!(classify(&out), Ok(Inner::Udp { src: addr(src), dst: addr(dst), payload: b"hello" }));
        }
    }

    #[test]
    fn udp_build_refuses_mixed_families_and_oversize() {
        let mut out = Vec::new();
        assert_eq!(build_udp(addr("10.0.0.2:1"), addr("[fd00::1]:2"), b"x", 1420, &mut out), Err(UdpBuildError::MixedFamilies));
        assert_eq!(build_udp(addr("10.0.0.2:1"), addr("10.0.0.1:2"), &[0; 1393], 1420, &mut out), Err(UdpBuildError::TooBig));
        assert!(build_udp(addr("10.0.0.2:1"), addr("10.0.0.1:2"), &[0; 1392], 1420, &mut out).is_ok());
    }

    #[test]
    fn udp_checksum_is_computed_on_send_and_not_verified_on_receipt() {
        let mut out = Vec::new();
        build_udp(addr("10.0.0.2:1"), addr("10.0.0.1:2"), b"abc", 1420, &mut out).unwrap();
        let ip = Ipv4Packet::new_checked(&out[..]).unwrap();
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        assert!(udp.checksum() != 0 && udp.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into()));
        let checksum_at = out.len() - 3 - 2;
        out[checksum_at] ^= 0xff;
        let Ok(Inner::Udp { payload, .. }) = classify(&out) else { panic!("a bad UDP checksum was dropped") };
        assert_eq!(payload, b"abc");
    }

    fn icmpv4_echo(src: &str, dst: &str, data: &[u8]) -> Vec<u8> {
        let icmp = Icmpv4Repr::EchoRequest { ident: 7, seq_no: 3, data };
        let ip = Ipv4Repr {
            src_addr: src.parse().unwrap(),
            dst_addr: dst.parse().unwrap(),
            next_header: IpProtocol::Icmp,
            payload_len: icmp.buffer_len(),
            hop_limit: 64,
        };
        let mut out = vec![0u8; ip.buffer_len() + icmp.buffer_len()];
        let mut packet = Ipv4Packet::new_unchecked(&mut out[..]);
        ip.emit(&mut packet, &ChecksumCapabilities::default());
        icmp.emit(&mut Icmpv4Packet::new_unchecked(packet.payload_mut()), &ChecksumCapabilities::default());
        out
    }

    /// An ICMP destination unreachable from 10.0.0.1 to us (10.0.0.2) quoting an IPv4 header of
    /// `protocol` from us to 192.0.2.7, then `quoted` (the start of the segment).
    fn icmpv4_unreachable(code: Icmpv4DstUnreachable, protocol: IpProtocol, quoted: &[u8]) -> Vec<u8> {
        let header = Ipv4Repr {
            src_addr: "10.0.0.2".parse().unwrap(),
            dst_addr: "192.0.2.7".parse().unwrap(),
            next_header: protocol,
            payload_len: 40,
            hop_limit: 64,
        };
        let icmp = Icmpv4Repr::DstUnreachable { reason: code, header, data: quoted };
        let ip = Ipv4Repr {
            src_addr: "10.0.0.1".parse().unwrap(),
            dst_addr: "10.0.0.2".parse().unwrap(),
            next_header: IpProtocol::Icmp,
            payload_len: icmp.buffer_len(),
            hop_limit: 64,
        };
        let mut out = vec![0u8; ip.buffer_len() + icmp.buffer_len()];
        let mut packet = Ipv4Packet::new_unchecked(&mut out[..]);
        ip.emit(&mut packet, &ChecksumCapabilities::default());
        icmp.emit(&mut Icmpv4Packet::new_unchecked(packet.payload_mut()), &ChecksumCapabilities::default());
        out
    }

    /// The first 8 bytes of a TCP header: ports 40000 -> 443, sequence number 0x01020304.
    const QUOTED_SYN: [u8; 8] = [0x9c, 0x40, 0x01, 0xbb, 1, 2, 3, 4];

    #[test]
    fn an_icmp_unreachable_quoting_tcp_names_the_connection_and_the_kind() {
        let quoted = QuotedTcp { local: addr("10.0.0.2:40000"), remote: addr("192.0.2.7:443"), seq: 0x0102_0304 };
        for (code, why) in [
            (Icmpv4DstUnreachable::NetUnreachable, Unreachable::Net),
            (Icmpv4DstUnreachable::NetProhibited, Unreachable::Net),
            (Icmpv4DstUnreachable::HostUnreachable, Unreachable::Host),
            (Icmpv4DstUnreachable::PortUnreachable, Unreachable::Port),
            (Icmpv4DstUnreachable::CommProhibited, Unreachable::Host),
        ] {
            let packet = icmpv4_unreachable(code, IpProtocol::Tcp, &QUOTED_SYN);
            assert_eq!(classify(&packet), Ok(Inner::TcpUnreachable { why, quoted }), "{code:?}");
        }
    }

    #[test]
    fn icmpv6_unreachable_quoting_tcp_is_read_too() {
        // Built the way we answer a peer: the "original" is our SYN, the answer comes to us.
        let syn = Outgoing { syn: true, ..Outgoing::control(addr("[fd00::2]:40000"), addr("[2001:db8::7]:443"), 0x0102_0304, None) };
        let mut original = Vec::new();
        crate::tcp::segment::build(&syn, &mut original);
        let quoted = QuotedTcp { local: addr("[fd00::2]:40000"), remote: addr("[2001:db8::7]:443"), seq: 0x0102_0304 };
        for why in Unreachable::ALL {
            let mut packet = Vec::new();
            unreachable(&original, why, &mut packet).unwrap();
            assert_eq!(classify(&packet), Ok(Inner::TcpUnreachable { why, quoted }), "{why:?}");
        }
    }

    /// A datagram of ours that met a closed port, a host or a network that cannot be reached:
    /// the quote names both ends (RFC 1122 4.1.3.3: UDP passes ICMP errors up to the application).
    #[test]
    fn an_icmp_unreachable_quoting_udp_names_both_ends_and_the_kind() {
        let (local, remote) = (addr("10.0.0.2:40000"), addr("192.0.2.7:443"));
        for (code, why) in [
            (Icmpv4DstUnreachable::PortUnreachable, Unreachable::Port),
            (Icmpv4DstUnreachable::HostUnreachable, Unreachable::Host),
            (Icmpv4DstUnreachable::NetUnreachable, Unreachable::Net),
        ] {
            let packet = icmpv4_unreachable(code, IpProtocol::Udp, &QUOTED_SYN);
            assert_eq!(classify(&packet), Ok(Inner::UdpUnreachable { why, local, remote }), "{code:?}");
        }
        let mut datagram = Vec::new();
        build_udp(addr("[fd00::2]:5353"), addr("[2001:db8::7]:53"), b"question", 1420, &mut datagram).unwrap();
        for why in Unreachable::ALL {
            let mut packet = Vec::new();
            unreachable(&datagram, why, &mut packet).unwrap();
            let expected = Inner::UdpUnreachable { why, local: addr("[fd00::2]:5353"), remote: addr("[2001:db8::7]:53") };
            assert_eq!(classify(&packet), Ok(expected), "{why:?}");
        }
    }

    /// An ICMPv6 destination unreachable (no route) from 2001:db8::1 to us (fd00::2) quoting an
    /// IPv6 header of TCP from us to 2001:db8::7, then `quoted` (the start of the segment).
    fn icmpv6_unreachable(quoted: &[u8]) -> Vec<u8> {
        let (us, router): (Ipv6Address, Ipv6Address) = ("fd00::2".parse().unwrap(), "2001:db8::1".parse().unwrap());
        let header = Ipv6Repr {
            src_addr: us,
            dst_addr: "2001:db8::7".parse().unwrap(),
            next_header: IpProtocol::Tcp,
            payload_len: 40,
            hop_limit: 64,
        };
        let icmp = Icmpv6Repr::DstUnreachable { reason: Icmpv6DstUnreachable::NoRoute, header, data: quoted };
        let ip =
            Ipv6Repr { src_addr: router, dst_addr: us, next_header: IpProtocol::Icmpv6, payload_len: icmp.buffer_len(), hop_limit: 64 };
        let mut out = vec![0u8; ip.buffer_len() + icmp.buffer_len()];
        let mut packet = Ipv6Packet::new_unchecked(&mut out[..]);
        ip.emit(&mut packet);
        icmp.emit(&router, &us, &mut Icmpv6Packet::new_unchecked(packet.payload_mut()), &ChecksumCapabilities::default());
        out
    }

    /// RFC 4443 §3.1 quotes "as much of the invoking packet as possible" (Linux: up to the
    /// minimum MTU): the ports and sequence number are read from a long quote as from an
    /// 8-byte one; a quote too short to hold them, or of a header that is not IPv6, is malformed.
    #[test]
    fn an_icmpv6_unreachable_is_read_whatever_the_length_of_its_quote() {
        let quoted = QuotedTcp { local: addr("[fd00::2]:40000"), remote: addr("[2001:db8::7]:443"), seq: 0x0102_0304 };
        let mut whole_segment = QUOTED_SYN.to_vec();
        whole_segment.extend_from_slice(&[0; 32]); // the rest of a SYN's header and options
        for quote in [&QUOTED_SYN[..], &whole_segment] {
            assert_eq!(
                classify(&icmpv6_unreachable(quote)),
                Ok(Inner::TcpUnreachable { why: Unreachable::Net, quoted }),
                "{} bytes quoted",
                quote.len()
            );
        }
        assert_eq!(classify(&icmpv6_unreachable(&QUOTED_SYN[..4])), Err(DropReason::InnerMalformed));
        // The quoted header's version (the byte after the outer header and ICMPv6's 8) made 4.
        let mut packet = icmpv6_unreachable(&QUOTED_SYN);
        packet[48] = 0x40;
        let (src, dst) = (Ipv6Packet::new_unchecked(&packet[..]).src_addr(), Ipv6Packet::new_unchecked(&packet[..]).dst_addr());
        Icmpv6Packet::new_unchecked(&mut packet[40..]).fill_checksum(&src, &dst);
        assert_eq!(classify(&packet), Err(DropReason::InnerMalformed));
    }

    #[test]
    fn a_malformed_or_foreign_icmp_unreachable_is_dropped_with_its_reason() {
        // Too short to hold the ports and sequence number: malformed.
        assert_eq!(
            classify(&icmpv4_unreachable(Icmpv4DstUnreachable::HostUnreachable, IpProtocol::Tcp, &QUOTED_SYN[..4])),
            Err(DropReason::InnerMalformed)
        );
        // About neither TCP nor UDP, or a path MTU message: not ours to act on.
        assert_eq!(
            classify(&icmpv4_unreachable(Icmpv4DstUnreachable::HostUnreachable, IpProtocol::Icmp, &QUOTED_SYN)),
            Err(DropReason::Unsupported)
        );
        assert_eq!(
            classify(&icmpv4_unreachable(Icmpv4DstUnreachable::FragRequired, IpProtocol::Tcp, &QUOTED_SYN)),
            Err(DropReason::Unsupported)
        );
        // A quoted header that is not IPv4 (version 6 in an ICMPv4 error).
        let mut packet = icmpv4_unreachable(Icmpv4DstUnreachable::HostUnreachable, IpProtocol::Tcp, &QUOTED_SYN);
        packet[28] = 0x65;
        let mut icmp = Icmpv4Packet::new_unchecked(&mut packet[20..]);
        icmp.fill_checksum();
        assert_eq!(classify(&packet), Err(DropReason::InnerMalformed));
        // A bad ICMP checksum.
        let mut packet = icmpv4_unreachable(Icmpv4DstUnreachable::HostUnreachable, IpProtocol::Tcp, &QUOTED_SYN);
        packet[30] ^= 1;
        assert_eq!(classify(&packet), Err(DropReason::InnerMalformed));
        // A quote cut inside its own IPv4 header, or before its 8 bytes (found by fuzzing: it panicked).
        for cut in [1, 4, 12, 16, 19, 20, 27] {
            let mut packet = icmpv4_unreachable(Icmpv4DstUnreachable::HostUnreachable, IpProtocol::Tcp, &QUOTED_SYN);
            packet.truncate(28 + cut);
            let total_len = u16::try_from(packet.len()).unwrap();
            let mut ip = Ipv4Packet::new_unchecked(&mut packet[..]);
            ip.set_total_len(total_len);
            ip.fill_checksum();
            Icmpv4Packet::new_unchecked(&mut packet[20..]).fill_checksum();
            assert_eq!(classify(&packet), Err(DropReason::InnerMalformed), "a quote of {cut} bytes");
        }
    }

    /// The quoted IPv4 header is as long as its IHL says (RFC 791 §3.1): options are skipped
    /// to reach the ports, and an IHL under 5 (20 bytes) is no header at all.
    #[test]
    fn a_quoted_ipv4_header_is_read_to_its_length_options_and_all() {
        let mut packet = icmpv4_unreachable(Icmpv4DstUnreachable::HostUnreachable, IpProtocol::Tcp, &QUOTED_SYN);
        // The outer IPv4 header (20), the ICMP header (8), then the quoted header at 28.
        packet.splice(48..48, [1, 1, 1, 0]); // four bytes of options: three NOPs and End of Option List
        packet[28] = 0x46; // IHL 6: 24 bytes
        let len = packet.len() as u16;
        packet[2..4].copy_from_slice(&len.to_be_bytes());
        Ipv4Packet::new_unchecked(&mut packet[..]).fill_checksum();
        Icmpv4Packet::new_unchecked(&mut packet[20..]).fill_checksum();
        let quoted = QuotedTcp { local: addr("10.0.0.2:40000"), remote: addr("192.0.2.7:443"), seq: 0x0102_0304 };
        assert_eq!(classify(&packet), Ok(Inner::TcpUnreachable { why: Unreachable::Host, quoted }));

        let mut packet = icmpv4_unreachable(Icmpv4DstUnreachable::HostUnreachable, IpProtocol::Tcp, &QUOTED_SYN);
        packet[28] = 0x44; // IHL 4: 16 bytes, shorter than any IPv4 header
        Icmpv4Packet::new_unchecked(&mut packet[20..]).fill_checksum();
        assert_eq!(classify(&packet), Err(DropReason::InnerMalformed));
    }

    /// A one-byte UDP datagram from `src` to `dst`.
    fn udp_datagram(src: &str, dst: &str) -> Vec<u8> {
        let mut packet = Vec::new();
        build_udp(addr(src), addr(dst), b"x", 1420, &mut packet).unwrap();
        packet
    }

    /// The engine stands in for every unicast destination; a broadcast, multicast or
    /// unspecified one names no single host to stand in for (RFC 1122 §3.3.6, RFC 4291 §2.7),
    /// so a packet to one is dropped as unsupported, whatever it carries.
    #[test]
    fn a_packet_to_a_broadcast_multicast_or_unspecified_address_is_unsupported() {
        for (src, dst) in [
            ("10.0.0.2:68", "255.255.255.255:67"),
            ("10.0.0.2:5353", "224.0.0.251:5353"),
            ("10.0.0.2:9", "0.0.0.0:9"),
            ("[fd00::2]:5353", "[ff02::fb]:5353"),
            ("[fd00::2]:9", "[::]:9"),
        ] {
            assert_eq!(classify(&udp_datagram(src, dst)), Err(DropReason::Unsupported), "to {dst}");
        }
    }

    /// A source that names no single host — multicast, broadcast, unspecified — is invalid
    /// (RFC 1122 §3.2.1.3, RFC 4291 §2.7): such a packet is dropped, so nothing answers it (no
    /// RST, no ICMP error: RFC 1122 §3.2.2).
    #[test]
    fn rfc1122_3_2_1_3_a_packet_from_an_address_that_names_no_single_host_is_dropped() {
        for (src, dst) in [
            ("224.0.0.9:5353", "10.0.0.1:9"),
            ("255.255.255.255:67", "10.0.0.1:9"),
            ("0.0.0.0:68", "10.0.0.1:9"),
            ("[ff02::1]:9", "[fd00::1]:9"),
            ("[::]:9", "[fd00::1]:9"),
        ] {
            assert_eq!(classify(&udp_datagram(src, dst)), Err(DropReason::InnerMalformed), "from {src}");
        }
        assert!(matches!(classify(&udp_datagram("10.0.0.2:9", "10.0.0.1:9")), Ok(Inner::Udp { .. })), "a unicast source is fine");
    }

    #[test]
    fn answers_icmpv4_echo_for_any_destination() {
        let request = icmpv4_echo("10.0.0.2", "198.51.100.7", b"ping!");
        assert_eq!(classify(&request), Ok(Inner::EchoRequest));
        let mut reply = Vec::new();
        echo_reply(&request, &mut reply).unwrap();
        let ip = Ipv4Packet::new_checked(&reply[..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.src_addr().to_string(), "198.51.100.7");
        assert_eq!(ip.dst_addr().to_string(), "10.0.0.2");
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum());
        let repr = Icmpv4Repr::parse(&icmp, &ChecksumCapabilities::default()).unwrap();
        assert_eq!(repr, Icmpv4Repr::EchoReply { ident: 7, seq_no: 3, data: b"ping!" });
    }

    #[test]
    fn answers_icmpv6_echo() {
        let (src, dst) = ("fd00::2".parse().unwrap(), "2001:db8::9".parse().unwrap());
        let icmp = Icmpv6Repr::EchoRequest { ident: 1, seq_no: 2, data: b"six" };
        let ip = Ipv6Repr { src_addr: src, dst_addr: dst, next_header: IpProtocol::Icmpv6, payload_len: icmp.buffer_len(), hop_limit: 64 };
        let mut request = vec![0u8; ip.buffer_len() + icmp.buffer_len()];
        let mut packet = Ipv6Packet::new_unchecked(&mut request[..]);
        ip.emit(&mut packet);
        icmp.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(packet.payload_mut()), &ChecksumCapabilities::default());
        assert_eq!(classify(&request), Ok(Inner::EchoRequest));

        let mut reply = Vec::new();
        echo_reply(&request, &mut reply).unwrap();
        let ip = Ipv6Packet::new_checked(&reply[..]).unwrap();
        assert_eq!((ip.src_addr(), ip.dst_addr()), (dst, src));
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        let repr = Icmpv6Repr::parse(&dst, &src, &icmp, &ChecksumCapabilities::default()).unwrap();
        assert_eq!(repr, Icmpv6Repr::EchoReply { ident: 1, seq_no: 2, data: b"six" });
    }

    #[test]
    fn unreachable_quotes_the_original_header_both_families() {
        for (src, dst) in [("10.0.0.2:5353", "192.0.2.9:53"), ("[fd00::2]:4000", "[2001:db8::1]:53")] {
            let mut original = Vec::new();
            build_udp(addr(src), addr(dst), b"query", 1420, &mut original).unwrap();
            let mut reply = Vec::new();
            unreachable(&original, Unreachable::Port, &mut reply).unwrap();
            if reply[0] >> 4 == 4 {
                let ip = Ipv4Packet::new_checked(&reply[..]).unwrap();
                assert_eq!((ip.src_addr().to_string(), ip.dst_addr().to_string()), ("192.0.2.9".into(), "10.0.0.2".into()));
                let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
                assert!(icmp.verify_checksum());
                assert_eq!((icmp.msg_type(), icmp.msg_code()), (Icmpv4Message::DstUnreachable, 3));
                // The original header (its length field as sent) and the first eight bytes after it.
                assert_eq!(&ip.payload()[8..36], &original[..28]);
            } else {
                let ip = Ipv6Packet::new_checked(&reply[..]).unwrap();
                let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
                assert!(icmp.verify_checksum(&ip.src_addr(), &ip.dst_addr()));
                assert_eq!(icmp.msg_type(), Icmpv6Message::DstUnreachable);
                assert_eq!(&ip.payload()[8..48], &original[..40], "the original IPv6 header is quoted");
            }
        }
    }

    #[test]
    fn malformed_inner_packets_are_classified_not_panicking() {
        let echo = icmpv4_echo("10.0.0.2", "10.0.0.1", b"data");
        let mut bad_checksum = echo.clone();
        bad_checksum[10] ^= 1;
        let mut fragment = echo.clone();
        fragment[6] = 0x20; // more fragments
        let mut fragment_fixed = Ipv4Packet::new_unchecked(&mut fragment[..]);
        fragment_fixed.fill_checksum();
        let cases: Vec<(Vec<u8>, DropReason)> = vec![
            (vec![], DropReason::InnerMalformed),
            (vec![0x45], DropReason::InnerMalformed),
            (vec![0x75; 40], DropReason::InnerMalformed),
            (echo[..echo.len() - 1].to_vec(), DropReason::InnerMalformed),
            (bad_checksum, DropReason::InnerMalformed),
            (fragment, DropReason::Unsupported),
            (vec![0x60; 39], DropReason::InnerMalformed),
        ];
        for (packet, reason) in cases {
            assert_eq!(classify(&packet).unwrap_err(), reason, "{packet:?}");
        }
        // Every prefix of a valid packet is handled without panicking.
        for len in 0..echo.len() {
            let _ = classify(&echo[..len]);
            let _ = echo_reply(&echo[..len], &mut Vec::new());
        }
    }
}
