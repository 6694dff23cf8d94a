//! Inner packets for the seed corpus and the harness tests, built with smoltcp's wire
//! module (checksums filled in).

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, TcpControl,
    TcpPacket, TcpRepr, TcpSeqNumber, TcpTimestampRepr, UdpPacket, UdpRepr,
};
use std::net::{IpAddr, SocketAddr};

/// An IPv4 or IPv6 packet around `payload_len` bytes that `fill` writes.
pub fn ip(src: IpAddr, dst: IpAddr, protocol: IpProtocol, payload_len: usize, fill: impl FnOnce(&mut [u8])) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let repr = Ipv4Repr { src_addr: src, dst_addr: dst, next_header: protocol, payload_len, hop_limit: 64 };
            let mut out = vec![0; repr.buffer_len() + payload_len];
            let mut packet = Ipv4Packet::new_unchecked(&mut out[..]);
            repr.emit(&mut packet, &ChecksumCapabilities::default());
            fill(packet.payload_mut());
            out
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let repr = Ipv6Repr { src_addr: src, dst_addr: dst, next_header: protocol, payload_len, hop_limit: 64 };
            let mut out = vec![0; repr.buffer_len() + payload_len];
            let mut packet = Ipv6Packet::new_unchecked(&mut out[..]);
            repr.emit(&mut packet);
            fill(packet.payload_mut());
            out
        }
        _ => panic!("mixed address families"),
    }
}

/// A TCP segment. A SYN offers every option smoltcp reads: MSS, window scale, SACK, timestamps.
pub fn tcp(src: SocketAddr, dst: SocketAddr, control: TcpControl, seq: u32, ack: Option<u32>, payload: &[u8]) -> Vec<u8> {
    let syn = control == TcpControl::Syn;
    let repr = TcpRepr {
        src_port: src.port(),
        dst_port: dst.port(),
        control,
        seq_number: TcpSeqNumber(seq as i32),
        ack_number: ack.map(|ack| TcpSeqNumber(ack as i32)),
        window_len: 65535,
        window_scale: syn.then_some(7),
        max_seg_size: syn.then_some(1360),
        sack_permitted: syn,
        sack_ranges: [None; 3],
        timestamp: Some(TcpTimestampRepr { tsval: seq, tsecr: 0 }),
        payload,
    };
    let (s, d) = (IpAddress::from(src.ip()), IpAddress::from(dst.ip()));
    ip(src.ip(), dst.ip(), IpProtocol::Tcp, repr.buffer_len(), |bytes| {
        repr.emit(&mut TcpPacket::new_unchecked(bytes), &s, &d, &ChecksumCapabilities::default())
    })
}

pub fn udp(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let repr = UdpRepr { src_port: src.port(), dst_port: dst.port() };
    let (s, d) = (IpAddress::from(src.ip()), IpAddress::from(dst.ip()));
    ip(src.ip(), dst.ip(), IpProtocol::Udp, 8 + payload.len(), |bytes| {
        let checksums = ChecksumCapabilities::default();
        repr.emit(&mut UdpPacket::new_unchecked(bytes), &s, &d, payload.len(), |out| out.copy_from_slice(payload), &checksums)
    })
}

/// An ICMP (IPv4) or ICMPv6 echo request.
pub fn ping(src: IpAddr, dst: IpAddr, data: &[u8]) -> Vec<u8> {
    let checksums = ChecksumCapabilities::default();
    match (src, dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let repr = Icmpv6Repr::EchoRequest { ident: 7, seq_no: 1, data };
            ip(src, dst, IpProtocol::Icmpv6, repr.buffer_len(), |bytes| {
                repr.emit(&s, &d, &mut Icmpv6Packet::new_unchecked(bytes), &checksums)
            })
        }
        _ => {
            let repr = Icmpv4Repr::EchoRequest { ident: 7, seq_no: 1, data };
            ip(src, dst, IpProtocol::Icmp, repr.buffer_len(), |bytes| repr.emit(&mut Icmpv4Packet::new_unchecked(bytes), &checksums))
        }
    }
}
