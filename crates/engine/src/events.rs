//! What the host reads after each call: a flat little-endian byte log of events,
//! in the order they happened. No per-event allocation and no JSON; the host walks
//! it with a `DataView` straight out of wasm memory.
//!
//! | kind | fields after the kind byte |
//! |------|----------------------------|
//! | 1 `DATAGRAM` | to: address, len u32, bytes — send this UDP datagram |
//! | 2 `TCP_INCOMING` | conn u32, peer u32, remote: address, local: address — a SYN: accept or refuse it |
//! | 3 `TCP_DATA` | conn u32, len u32, bytes |
//! | 4 `TCP_EOF` | conn u32 — the remote sent FIN and all data was delivered |
//! | 5 `TCP_WRITABLE` | conn u32, room u32 — the host may write `room` more bytes (added to what it had) |
//! | 6 `TCP_CLOSED` | conn u32, reason u8 (see [`CloseReason`]) |
//! | 7 `UDP` | peer u32, src: address, dst: address, len u32, bytes |
//! | 8 `TCP_ESTABLISHED` | conn u32, peer u32 — the handshake completed (either direction) |
//! | 9 `UNKNOWN_PEER` | public key (32 bytes), from: address — a handshake from a key we do not know |
//! | 10 `INNER_PACKET` | direction u8 (0 from a peer, 1 to it), peer u32, len u32, bytes — with the tap on |
//! | 11 `ECHO_REPLY` | peer u32, from: address (port 0), identifier u32, sequence u32 — an answer to our ping |
//!
//! An address is the 19-byte format of [`crate::addr`].

use crate::addr::write_address;
use std::net::{IpAddr, SocketAddr};

pub use crate::abi::event::*;

/// Which way an inner packet went, for [`Events::inner_packet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    FromPeer = 0,
    ToPeer = 1,
}

/// How a TCP connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Both sides sent FIN and it was acknowledged.
    Closed = 0,
    /// The connection was reset by the remote, or timed out.
    Reset = 1,
    /// An outgoing connection never got established.
    Refused = 2,
    /// The host aborted it.
    Aborted = 3,
    /// The remote stopped answering (handshake, data, keep-alive or close), or the host
    /// never accepted it in time.
    TimedOut = 4,
    /// Our SYN met an ICMP host, port or protocol unreachable (or administratively prohibited).
    HostUnreachable = 5,
    /// Our SYN met an ICMP net unreachable (or ICMPv6 no route).
    NetUnreachable = 6,
}

impl CloseReason {
    pub const ALL: [CloseReason; 7] = [
        CloseReason::Closed,
        CloseReason::Reset,
        CloseReason::Refused,
        CloseReason::Aborted,
        CloseReason::TimedOut,
        CloseReason::HostUnreachable,
        CloseReason::NetUnreachable,
    ];

    /// The name the host gives it.
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::Closed => "closed",
            CloseReason::Reset => "reset",
            CloseReason::Refused => "refused",
            CloseReason::Aborted => "aborted",
            CloseReason::TimedOut => "timeout",
            CloseReason::HostUnreachable => "host-unreachable",
            CloseReason::NetUnreachable => "net-unreachable",
        }
    }
}

#[derive(Debug, Default)]
pub struct Events {
    buf: Vec<u8>,
}

impl Events {
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Drops the first `bytes` (whole events: where the host stopped walking).
    pub fn consume(&mut self, bytes: usize) {
        self.buf.drain(..bytes.min(self.buf.len()));
    }

    pub fn datagram(&mut self, to: SocketAddr, bytes: &[u8]) {
        self.buf.push(DATAGRAM);
        write_address(&mut self.buf, to);
        self.bytes(bytes);
    }

    pub fn tcp_incoming(&mut self, conn: u32, peer: u32, remote: SocketAddr, local: SocketAddr) {
        self.buf.push(TCP_INCOMING);
        self.u32(conn);
        self.u32(peer);
        write_address(&mut self.buf, remote);
        write_address(&mut self.buf, local);
    }

    /// Appends a TCP_DATA header for `len` bytes and returns the space to fill,
    /// so data can be copied once, straight from the socket buffer.
    pub fn tcp_data(&mut self, conn: u32, len: usize) -> &mut [u8] {
        self.buf.push(TCP_DATA);
        self.u32(conn);
        self.u32(len as u32);
        let start = self.buf.len();
        self.buf.resize(start + len, 0);
        &mut self.buf[start..]
    }

    pub fn tcp_established(&mut self, conn: u32, peer: u32) {
        self.buf.push(TCP_ESTABLISHED);
        self.u32(conn);
        self.u32(peer);
    }

    pub fn tcp_eof(&mut self, conn: u32) {
        self.buf.push(TCP_EOF);
        self.u32(conn);
    }

    pub fn tcp_writable(&mut self, conn: u32, room: usize) {
        self.buf.push(TCP_WRITABLE);
        self.u32(conn);
        self.u32(room as u32);
    }

    pub fn tcp_closed(&mut self, conn: u32, reason: CloseReason) {
        self.buf.push(TCP_CLOSED);
        self.u32(conn);
        self.buf.push(reason as u8);
    }

    pub fn unknown_peer(&mut self, public_key: &[u8; 32], from: SocketAddr) {
        self.buf.push(UNKNOWN_PEER);
        self.buf.extend_from_slice(public_key);
        write_address(&mut self.buf, from);
    }

    pub fn inner_packet(&mut self, direction: Direction, peer: u32, packet: &[u8]) {
        self.buf.push(INNER_PACKET);
        self.buf.push(direction as u8);
        self.u32(peer);
        self.bytes(packet);
    }

    pub fn echo_reply(&mut self, peer: u32, from: IpAddr, ident: u16, seq: u16) {
        self.buf.push(ECHO_REPLY);
        self.u32(peer);
        write_address(&mut self.buf, SocketAddr::new(from, 0));
        self.u32(ident as u32);
        self.u32(seq as u32);
    }

    pub fn udp(&mut self, peer: u32, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        self.buf.push(UDP);
        self.u32(peer);
        write_address(&mut self.buf, src);
        write_address(&mut self.buf, dst);
        self.bytes(payload);
    }

    fn u32(&mut self, value: u32) {
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.u32(bytes.len() as u32);
        self.buf.extend_from_slice(bytes);
    }
}

/// Decoded events, for tests: the host does the same walk in TypeScript.
#[cfg(test)]
pub mod decode {
    use super::*;
    use crate::addr::{read_address, ADDRESS_SIZE};

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Event {
        Datagram { to: SocketAddr, bytes: Vec<u8> },
        TcpIncoming { conn: u32, peer: u32, remote: SocketAddr, local: SocketAddr },
        TcpData { conn: u32, bytes: Vec<u8> },
        TcpEstablished { conn: u32, peer: u32 },
        UnknownPeer { public_key: [u8; 32], from: SocketAddr },
        InnerPacket { direction: u8, peer: u32, bytes: Vec<u8> },
        TcpEof { conn: u32 },
        TcpWritable { conn: u32, room: u32 },
        TcpClosed { conn: u32, reason: u8 },
        Udp { peer: u32, src: SocketAddr, dst: SocketAddr, payload: Vec<u8> },
        EchoReply { peer: u32, from: SocketAddr, ident: u32, seq: u32 },
    }

    pub fn decode(mut b: &[u8]) -> Vec<Event> {
        let mut out = Vec::new();
        fn u32_at(b: &mut &[u8]) -> u32 {
            let v = u32::from_le_bytes(b[..4].try_into().unwrap());
            *b = &b[4..];
            v
        }
        fn addr_at(b: &mut &[u8]) -> SocketAddr {
            let a = read_address(b).unwrap();
            *b = &b[ADDRESS_SIZE..];
            a
        }
        fn bytes_at(b: &mut &[u8]) -> Vec<u8> {
            let len = u32_at(b) as usize;
            let v = b[..len].to_vec();
            *b = &b[len..];
            v
        }
        while let Some((&kind, rest)) = b.split_first() {
            b = rest;
            out.push(match kind {
                DATAGRAM => Event::Datagram { to: addr_at(&mut b), bytes: bytes_at(&mut b) },
                TCP_ESTABLISHED => Event::TcpEstablished { conn: u32_at(&mut b), peer: u32_at(&mut b) },
                UNKNOWN_PEER => {
                    let public_key = b[..32].try_into().unwrap();
                    b = &b[32..];
                    Event::UnknownPeer { public_key, from: addr_at(&mut b) }
                }
                INNER_PACKET => {
                    let direction = b[0];
                    b = &b[1..];
                    Event::InnerPacket { direction, peer: u32_at(&mut b), bytes: bytes_at(&mut b) }
                }
                TCP_INCOMING => {
                    Event::TcpIncoming { conn: u32_at(&mut b), peer: u32_at(&mut b), remote: addr_at(&mut b), local: addr_at(&mut b) }
                }
                TCP_DATA => Event::TcpData { conn: u32_at(&mut b), bytes: bytes_at(&mut b) },
                TCP_EOF => Event::TcpEof { conn: u32_at(&mut b) },
                TCP_WRITABLE => Event::TcpWritable { conn: u32_at(&mut b), room: u32_at(&mut b) },
                TCP_CLOSED => {
                    let conn = u32_at(&mut b);
                    let reason = b[0];
                    b = &b[1..];
                    Event::TcpClosed { conn, reason }
                }
                UDP => Event::Udp { peer: u32_at(&mut b), src: addr_at(&mut b), dst: addr_at(&mut b), payload: bytes_at(&mut b) },
                ECHO_REPLY => Event::EchoReply { peer: u32_at(&mut b), from: addr_at(&mut b), ident: u32_at(&mut b), seq: u32_at(&mut b) },
                other => panic!("unknown event kind {other}"),
            });
        }
        out
    }
}
