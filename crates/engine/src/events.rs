//! The event log the host reads after each call: the records of [`crate::abi::Event`]
//! (their kinds, fields and order are defined there, once), appended as things happen.

use crate::abi::{Event, Reader};
use crate::wire::Unreachable;
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

/// The most one TCP_DATA record carries when consecutive arrivals for one connection are
/// joined: the host hands a record on as one chunk (a write to a socket, say).
const MAX_JOINED_DATA: usize = 64 * 1024;

#[derive(Debug, Default)]
pub struct Events {
    buf: Vec<u8>,
    /// The connection and start of the last TCP_DATA record written since the host last
    /// read the log: more data for that connection, with nothing between, joins it.
    open_data: Option<(u32, usize)>,
}

impl Events {
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.open_data = None;
    }

    /// Drops the first `bytes` (whole events: where the host stopped walking).
    pub fn consume(&mut self, bytes: usize) {
        self.buf.drain(..bytes.min(self.buf.len()));
        self.open_data = None;
    }

    pub fn datagram(&mut self, to: SocketAddr, bytes: &[u8]) {
        Event::Datagram { to, bytes }.write(&mut self.buf);
    }

    pub fn tcp_incoming(&mut self, conn: u32, peer: u32, remote: SocketAddr, local: SocketAddr) {
        Event::<&[u8]>::TcpIncoming { conn, peer, remote, local }.write(&mut self.buf);
    }

    /// Appends `len` bytes of TCP_DATA for `conn` and returns the space to fill, so data is
    /// copied once, straight from the socket buffer. Data for the connection whose TCP_DATA
    /// is the log's last record joins that record (up to MAX_JOINED_DATA): a batch of
    /// segments reaches the host as one chunk, not one per segment.
    pub fn tcp_data(&mut self, conn: u32, len: usize) -> &mut [u8] {
        const HEADER: usize = 9; // kind, conn, payload length
        let end = self.buf.len();
        let payload_len = |buf: &[u8], start: usize| {
            let mut bytes = [0u8; 4];
            bytes.copy_from_slice(&buf[start + HEADER - 4..start + HEADER]);
            u32::from_le_bytes(bytes) as usize
        };
        let start = match self.open_data {
            // Still the last record (nothing written since), and room to grow.
            Some((open, start))
                if open == conn
                    && start + HEADER + payload_len(&self.buf, start) == end
                    && end - start - HEADER + len <= MAX_JOINED_DATA =>
            {
                start
            }
            _ => {
                Event::TcpData { conn, bytes: &[][..] }.write(&mut self.buf);
                end
            }
        };
        // The payload is a record's last field: set its length, then make its room.
        let at = self.buf.len();
        self.buf[start + HEADER - 4..start + HEADER].copy_from_slice(&((at - start - HEADER + len) as u32).to_le_bytes());
        self.buf.resize(at + len, 0);
        self.open_data = Some((conn, start));
        &mut self.buf[at..]
    }

    pub fn tcp_established(&mut self, conn: u32, peer: u32) {
        Event::<&[u8]>::TcpEstablished { conn, peer }.write(&mut self.buf);
    }

    pub fn tcp_eof(&mut self, conn: u32) {
        Event::<&[u8]>::TcpEof { conn }.write(&mut self.buf);
    }

    pub fn tcp_writable(&mut self, conn: u32, room: usize) {
        Event::<&[u8]>::TcpWritable { conn, room: room as u32 }.write(&mut self.buf);
    }

    pub fn tcp_closed(&mut self, conn: u32, reason: CloseReason) {
        Event::<&[u8]>::TcpClosed { conn, reason: reason as u8 }.write(&mut self.buf);
    }

    pub fn unknown_peer(&mut self, public_key: &[u8; 32], from: SocketAddr) {
        Event::<&[u8]>::UnknownPeer { public_key: *public_key, from }.write(&mut self.buf);
    }

    pub fn inner_packet(&mut self, direction: Direction, peer: u32, packet: &[u8]) {
        Event::InnerPacket { direction: direction as u8, peer, bytes: packet }.write(&mut self.buf);
    }

    pub fn echo_reply(&mut self, peer: u32, from: IpAddr, ident: u16, seq: u16) {
        let from = SocketAddr::new(from, 0);
        Event::<&[u8]>::EchoReply { peer, from, ident: ident.into(), seq: seq.into() }.write(&mut self.buf);
    }

    pub fn udp(&mut self, peer: u32, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        Event::Udp { peer, src, dst, payload }.write(&mut self.buf);
    }

    pub fn udp_unreachable(&mut self, peer: u32, local: SocketAddr, remote: SocketAddr, why: Unreachable) {
        Event::<&[u8]>::UdpUnreachable { peer, local, remote, reason: why as u8 }.write(&mut self.buf);
    }

    /// Replaces the log with one event of each kind, with known values: the host's test
    /// that it reads every field back (ts/wasm/abi.test.ts holds the same values).
    pub fn write_selftest(&mut self) {
        let addr = |text: &str| text.parse().unwrap_or_else(|_| unreachable!());
        self.clear();
        self.datagram(addr("192.0.2.1:51820"), &[1, 2, 3]);
        self.tcp_incoming(0x0102_0304, 2, addr("10.0.0.2:40000"), addr("[2001:db8::1]:443"));
        self.tcp_data(0x0102_0304, 4).copy_from_slice(&[9, 8, 7, 6]);
        self.tcp_eof(5);
        self.tcp_writable(6, 70_000);
        self.tcp_closed(7, CloseReason::TimedOut);
        self.udp(3, addr("10.0.0.2:5353"), addr("8.8.8.8:53"), b"dns");
        self.tcp_established(8, 4);
        self.unknown_peer(&[0xab; 32], addr("[fd00::1]:1"));
        self.inner_packet(Direction::ToPeer, 9, &[0x45, 0]);
        self.echo_reply(10, "fd00::7".parse().unwrap_or_else(|_| unreachable!()), 0x1234, 0xfffe);
        self.udp_unreachable(11, addr("10.0.0.2:5353"), addr("[2001:db8::1]:53"), Unreachable::Port);
    }
}

/// Reading the log back in Rust, for the engine's tests and the fuzz harness: the same
/// decoder the generated TypeScript mirrors.
pub mod decode {
    use super::*;

    /// An event that owns its payload.
    pub type Event = crate::abi::Event<Vec<u8>>;

    /// Every event of `log`, in order. Panics, naming the byte, if the log is malformed:
    /// the host would misread it.
    pub fn decode(log: &[u8]) -> Vec<Event> {
        let mut r = Reader::new(log);
        let mut out = Vec::new();
        while !r.is_done() {
            let at = r.at();
            let event = crate::abi::Event::read(&mut r).unwrap_or_else(|| panic!("malformed event log at byte {at}"));
            out.push(event.map(<[u8]>::to_vec));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::decode::{decode, Event};
    use super::*;

    fn data(events: &mut Events, conn: u32, bytes: &[u8]) {
        events.tcp_data(conn, bytes.len()).copy_from_slice(bytes);
    }

    /// A batch of segments for one connection reaches the host as one chunk; anything else
    /// between them, another connection's data included, keeps them apart, in order.
    #[test]
    fn consecutive_data_for_one_connection_joins_one_record() {
        let mut events = Events::default();
        data(&mut events, 1, b"ab");
        data(&mut events, 1, b"cd");
        data(&mut events, 2, b"ef");
        data(&mut events, 1, b"gh");
        events.tcp_eof(1);
        data(&mut events, 1, b"ij");
        data(&mut events, 1, b"");
        let expected = vec![
            Event::TcpData { conn: 1, bytes: b"abcd".to_vec() },
            Event::TcpData { conn: 2, bytes: b"ef".to_vec() },
            Event::TcpData { conn: 1, bytes: b"gh".to_vec() },
            Event::TcpEof { conn: 1 },
            Event::TcpData { conn: 1, bytes: b"ij".to_vec() },
        ];
        assert_eq!(decode(events.as_bytes()), expected);
    }

    /// Records the host has read are never added to: after it consumes the log (or it is
    /// cleared), data starts a record of its own. And a record stops growing at MAX_JOINED_DATA.
    #[test]
    fn a_joined_record_ends_where_the_host_read_and_at_its_cap() {
        let mut events = Events::default();
        data(&mut events, 1, b"read");
        events.tcp_writable(1, 10);
        data(&mut events, 1, b"left");
        let read = events.as_bytes().len() - 13; // the host walked all but the last record
        events.consume(read);
        data(&mut events, 1, b"new");
        assert_eq!(
            decode(events.as_bytes()),
            vec![Event::TcpData { conn: 1, bytes: b"left".to_vec() }, Event::TcpData { conn: 1, bytes: b"new".to_vec() }]
        );
        // After another record, sixty-five 1 KiB segments: 64 KiB joined, then the rest.
        events.clear();
        events.tcp_eof(2);
        for _ in 0..65 {
            data(&mut events, 1, &[7; 1024]);
        }
        let sizes: Vec<usize> =
            decode(events.as_bytes()).iter().map(|e| if let Event::TcpData { bytes, .. } = e { bytes.len() } else { 0 }).collect();
        assert_eq!(sizes, vec![0, 65_536, 1024]);
    }
}
