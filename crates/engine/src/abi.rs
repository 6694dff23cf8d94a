//! The contract between the engine and its host, written once: every event and command
//! (kind, fields in order, widths), the `wgn_*` exports with their parameters, error codes,
//! the order of the numbers in each stats record, and the numeric options' ranges and
//! defaults. The engine encodes and decodes through the types made here; the host's side,
//! ts/wasm/abi.ts, is generated from the same tables (`cargo run --bin abi`, which
//! `node build.mjs` runs), and a test fails when the checked-in file is out of date.
//!
//! This module is the bottom layer: it knows bytes and addresses, nothing of the engine.
//! What each event means is documented on its variant below.

use crate::addr::{read_address, write_address, ADDRESS_SIZE};
use std::net::SocketAddr;

/// The fixed-width kinds of field a record holds, little-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    U8,
    U32,
    /// The 19-byte format of [`crate::addr`].
    Address,
    /// A 32-byte key.
    Key,
}

impl FieldType {
    pub const fn width(self) -> usize {
        match self {
            FieldType::U8 => 1,
            FieldType::U32 => 4,
            FieldType::Address => ADDRESS_SIZE,
            FieldType::Key => 32,
        }
    }
}

/// A value that is a fixed-width field of an event or a command.
pub trait Field: Sized + Copy {
    const TYPE: FieldType;
    fn put(self, out: &mut Vec<u8>);
    /// From exactly `TYPE.width()` bytes; `None` when they are no valid value.
    fn get(bytes: &[u8]) -> Option<Self>;
}

impl Field for u8 {
    const TYPE: FieldType = FieldType::U8;
    fn put(self, out: &mut Vec<u8>) {
        out.push(self);
    }
    fn get(bytes: &[u8]) -> Option<Self> {
        bytes.first().copied()
    }
}

impl Field for u32 {
    const TYPE: FieldType = FieldType::U32;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(bytes: &[u8]) -> Option<Self> {
        Some(u32::from_le_bytes(bytes.try_into().ok()?))
    }
}

impl Field for SocketAddr {
    const TYPE: FieldType = FieldType::Address;
    fn put(self, out: &mut Vec<u8>) {
        write_address(out, self);
    }
    fn get(bytes: &[u8]) -> Option<Self> {
        read_address(bytes)
    }
}

impl Field for [u8; 32] {
    const TYPE: FieldType = FieldType::Key;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self);
    }
    fn get(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok()
    }
}

/// Writes a record's trailing bytes: a u32 length, then the bytes.
#[inline]
fn put_payload(out: &mut Vec<u8>, bytes: &[u8]) {
    (bytes.len() as u32).put(out);
    out.extend_from_slice(bytes);
}

/// Walks records in a byte buffer, field by field.
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    /// Where the next read starts.
    pub fn at(&self) -> usize {
        self.at
    }

    pub fn is_done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let bytes = self.bytes.get(self.at..self.at.checked_add(len)?)?;
        self.at += len;
        Some(bytes)
    }

    fn field<T: Field>(&mut self) -> Option<T> {
        T::get(self.take(T::TYPE.width())?)
    }

    fn payload(&mut self) -> Option<&'a [u8]> {
        let len: u32 = self.field()?;
        self.take(len as usize)
    }
}

/// One kind of record as the generator sees it: its fixed fields, in order, then perhaps
/// a payload (a u32 length and that many bytes; only ever last, so every fixed field sits
/// at a fixed offset).
#[derive(Debug)]
pub struct Record {
    /// The constant's name, like `TCP_DATA`.
    pub name: &'static str,
    pub kind: u8,
    /// The variant's name, like `TcpData`.
    pub variant: &'static str,
    pub doc: &'static str,
    pub fields: &'static [(&'static str, FieldType)],
    pub payload: Option<&'static str>,
}

macro_rules! name_if_any {
    () => {
        None
    };
    ($name:ident) => {
        Some(stringify!($name))
    };
}

/// Makes, from one list: a module of kind constants, an enum of the records generic over
/// the payload's type (`&[u8]` to write and read in place, `Vec<u8>` to keep), its encoder
/// and decoder, and the table the TypeScript generator reads.
macro_rules! records {
    ($(#[doc = $doc:literal])* $enum:ident, $module:ident, $table:ident {
        $($(#[doc = $item_doc:literal])* $kind:ident = $value:literal => $variant:ident { $($field:ident: $ty:ty),* $(; $payload:ident)? },)+
    }) => {
        /// The byte that opens each record of this kind.
        pub mod $module {
            $(pub const $kind: u8 = $value;)+
            /// Every constant by name.
            pub const ALL: &[(&str, u8)] = &[$((stringify!($kind), $kind)),+];
        }

        $(#[doc = $doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $enum<B> {
            $($(#[doc = $item_doc])* $variant { $($field: $ty,)* $($payload: B,)? },)+
        }

        impl<B: AsRef<[u8]>> $enum<B> {
            /// Appends the record: its kind byte, then its fields in order.
            #[inline]
            pub fn write(&self, out: &mut Vec<u8>) {
                match self {
                    $($enum::$variant { $($field,)* $($payload,)? } => {
                        out.push($module::$kind);
                        $(Field::put(*$field, out);)*
                        $(put_payload(out, AsRef::<[u8]>::as_ref($payload));)?
                    })+
                }
            }

            /// The same record with its payload turned by `f` (`to_vec` to keep one).
            pub fn map<C>(self, f: impl FnOnce(B) -> C) -> $enum<C> {
                match self {
                    $($enum::$variant { $($field,)* $($payload,)? } => $enum::$variant { $($field,)* $($payload: f($payload),)? },)+
                }
            }
        }

        impl<'a> $enum<&'a [u8]> {
            /// Reads the record at the reader; `None` if the bytes end inside it, its kind is
            /// unknown, or a field holds no valid value (the reader is then left anywhere).
            pub fn read(r: &mut Reader<'a>) -> Option<Self> {
                let kind: u8 = r.field()?;
                match kind {
                    $($module::$kind => Some($enum::$variant { $($field: r.field()?,)* $($payload: r.payload()?,)? }),)+
                    _ => None,
                }
            }
        }

        /// Every kind, for the generator.
        pub const $table: &[Record] = &[$(Record {
            name: stringify!($kind),
            kind: $value,
            variant: stringify!($variant),
            doc: concat!($($item_doc),*),
            fields: &[$((stringify!($field), <$ty as Field>::TYPE)),*],
            payload: name_if_any!($($payload)?),
        }),+];
    };
}

records!(
    /// What the host reads after each call: a flat little-endian log of events, in the
    /// order they happened, that it walks straight out of wasm memory (no per-event
    /// allocation, no JSON).
    Event, event, EVENTS {
        /// Send this UDP datagram to a peer.
        DATAGRAM = 1 => Datagram { to: SocketAddr; bytes },
        /// A SYN: accept or refuse it.
        TCP_INCOMING = 2 => TcpIncoming { conn: u32, peer: u32, remote: SocketAddr, local: SocketAddr },
        /// Bytes the connection received, in order.
        TCP_DATA = 3 => TcpData { conn: u32; bytes },
        /// The remote sent FIN and all its data was delivered.
        TCP_EOF = 4 => TcpEof { conn: u32 },
        /// The host may write `room` more bytes (added to what it had).
        TCP_WRITABLE = 5 => TcpWritable { conn: u32, room: u32 },
        /// The connection ended; `reason` is the index of its name in `CLOSE_REASONS`.
        TCP_CLOSED = 6 => TcpClosed { conn: u32, reason: u8 },
        /// A UDP datagram from a peer, to any destination.
        UDP = 7 => Udp { peer: u32, src: SocketAddr, dst: SocketAddr; payload },
        /// The handshake completed (either direction).
        TCP_ESTABLISHED = 8 => TcpEstablished { conn: u32, peer: u32 },
        /// A handshake from a public key we do not know.
        UNKNOWN_PEER = 9 => UnknownPeer { public_key: [u8; 32], from: SocketAddr },
        /// With the tap on, an inner packet: `direction` 0 from a peer, 1 to it.
        INNER_PACKET = 10 => InnerPacket { direction: u8, peer: u32; bytes },
        /// An answer to our ping (`from` has port 0).
        ECHO_REPLY = 11 => EchoReply { peer: u32, from: SocketAddr, ident: u32, seq: u32 },
        /// An ICMP (v6) destination unreachable from `peer` about a UDP datagram we sent from
        /// `local` to `remote`; `reason` is the index of its name in `UNREACHABLE_REASONS`.
        UDP_UNREACHABLE = 12 => UdpUnreachable { peer: u32, local: SocketAddr, remote: SocketAddr, reason: u8 },
    }
);

records!(
    /// What the host asks of the engine, written between pumps into the command area and
    /// applied in order at the start of the next pump (see commands.rs).
    Command, command, COMMANDS {
        /// Data to send: at most what TCP_WRITABLE granted.
        SEND = 1 => Send { conn: u32; bytes },
        /// The host read `bytes` of TCP_DATA: the window opens by as much.
        CONSUMED = 2 => Consumed { conn: u32, bytes: u32 },
        /// Complete the handshake of a TCP_INCOMING (send the SYN-ACK).
        ACCEPT = 3 => Accept { conn: u32 },
        /// Turn down a TCP_INCOMING: `how` 0 with RST, 1 with ICMP unreachable.
        REFUSE = 4 => Refuse { conn: u32, how: u8 },
        /// FIN after what was sent.
        SHUTDOWN = 5 => Shutdown { conn: u32 },
        /// RST.
        ABORT = 6 => Abort { conn: u32 },
        /// Drop what arrives from now on, keeping the window open.
        DISCARD = 7 => Discard { conn: u32 },
        /// A UDP datagram into the tunnel, to the peer whose allowedIps hold `dst`. The host
        /// has checked the families and the MTU; no route is counted as dropped (noRoute).
        UDP_SEND = 8 => UdpSend { src: SocketAddr, dst: SocketAddr; payload },
        /// An ICMP (v6) echo request (ports ignored); the answer is an ECHO_REPLY event.
        PING = 9 => Ping { src: SocketAddr, dst: SocketAddr, ident: u32, seq: u32 },
        /// A keepalive to the peer now, starting a handshake with no session; a peer with no
        /// endpoint is counted as dropped (noEndpoint).
        KEEPALIVE = 10 => Keepalive { peer: u32 },
        /// Answer a datagram `from` a peer's side `to` us with an ICMP (v6) destination
        /// unreachable, as a closed port does; `why` is the index of its name in
        /// `UNREACHABLE_REASONS`. No route is counted as dropped (noRoute).
        UDP_REFUSE = 11 => UdpRefuse { from: SocketAddr, to: SocketAddr, why: u8 },
    }
);

/// How a value crosses the C ABI, as the generator types it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmType {
    I32,
    U32,
    F64,
    /// An address in wasm memory.
    Pointer,
}

pub trait WasmValue {
    const TYPE: WasmType;
}

impl WasmValue for i32 {
    const TYPE: WasmType = WasmType::I32;
}
impl WasmValue for u32 {
    const TYPE: WasmType = WasmType::U32;
}
impl WasmValue for f64 {
    const TYPE: WasmType = WasmType::F64;
}
impl WasmValue for *mut u8 {
    const TYPE: WasmType = WasmType::Pointer;
}
impl WasmValue for *const u8 {
    const TYPE: WasmType = WasmType::Pointer;
}

/// One `wgn_*` export, for the generator.
#[derive(Debug)]
pub struct Export {
    pub name: &'static str,
    pub params: &'static [(&'static str, WasmType)],
    pub returns: WasmType,
}

/// Hands the signature of every `wgn_*` export to the macro `$then`: here it makes the
/// table the generator reads; ffi.rs checks each of its functions against it when it
/// compiles. What each one does is documented in ffi.rs.
macro_rules! with_exports {
    ($then:ident) => {
        $then! {
            fn wgn_scratch(len: u32) -> *mut u8;
            fn wgn_result_ptr() -> *const u8;
            fn wgn_result_len() -> u32;
            fn wgn_events_ptr() -> *const u8;
            fn wgn_events_len() -> u32;
            fn wgn_commands_area(len: u32) -> *mut u8;
            fn wgn_new(now_ms: f64, mtu: u32, receive_buffer: u32, send_buffer: u32, accept_tcp: u32) -> i32;
            fn wgn_tcp_limits(per_peer: u32, total: u32, half_open_per_peer: u32, buffered_bytes: f64) -> i32;
            fn wgn_tcp_timeouts(half_open_ms: f64, fin_wait_2_ms: f64, keepalive_ms: f64, user_timeout_ms: f64) -> i32;
            fn wgn_udp_limits(max_flows_per_peer: u32, flow_idle_ms: f64) -> i32;
            fn wgn_add_peer(persistent_keepalive: u32, has_preshared_key: u32, has_endpoint: u32) -> i32;
            fn wgn_allow(peer: u32, prefix_len: u32) -> i32;
            fn wgn_remove_peer() -> i32;
            fn wgn_set_tap(on: u32) -> i32;
            fn wgn_pump(now_ms: f64, events_seen: u32, commands_len: u32, datagrams_len: u32) -> f64;
            fn wgn_tcp_connect(now_ms: f64) -> i32;
            fn wgn_tcp_stats(id: u32) -> i32;
            fn wgn_stats() -> i32;
            fn wgn_public_key() -> i32;
            fn wgn_abi_selftest(commands_len: u32) -> i32;
        }
    };
}
pub(crate) use with_exports;

macro_rules! export_table {
    ($(fn $name:ident($($param:ident: $ty:ty),*) -> $returns:ty;)+) => {
        /// Every `wgn_*` export with its parameters, in order.
        pub const EXPORTS: &[Export] = &[$(Export {
            name: stringify!($name),
            params: &[$((stringify!($param), <$ty as WasmValue>::TYPE)),*],
            returns: <$returns as WasmValue>::TYPE,
        }),+];
    };
}
with_exports!(export_table);

/// Named constants, plus a table of them for the generator.
macro_rules! numbered {
    ($(#[$doc:meta])* $module:ident: $ty:ty { $($(#[$item_doc:meta])* $name:ident = $value:expr,)+ }) => {
        $(#[$doc])*
        pub mod $module {
            $($(#[$item_doc])* pub const $name: $ty = $value;)+
            /// Every constant by name.
            pub const ALL: &[(&str, $ty)] = &[$((stringify!($name), $name)),+];
        }
    };
}

numbered!(
    /// Negative returns of the C ABI; the result buffer holds a message.
    error: i32 {
        INVALID = -1,
        UNKNOWN_CONNECTION = -2,
        NOT_WRITABLE = -3,
        UNADDRESSABLE = -4,
        NO_ROUTE = -5,
        TOO_BIG = -6,
        NOT_STARTED = -7,
        LIMIT = -8,
    }
);

/// The messages of the request errors the host also finds itself: a UDP send or a ping is a
/// command, yet one that cannot be sent is refused where it is made (ts/host/server.ts), in
/// the engine's words.
pub mod request_message {
    pub const NO_ROUTE: &str = "no peer's allowedIps hold the destination";
    pub const MIXED_FAMILIES: &str = "source and destination are of different address families";
    pub const TOO_BIG: &str = "datagram is larger than the MTU allows";
    /// Every message by name.
    pub const ALL: &[(&str, &str)] = &[("NO_ROUTE", NO_ROUTE), ("MIXED_FAMILIES", MIXED_FAMILIES), ("TOO_BIG", TOO_BIG)];
}

/// The numbers of one peer's stats record, in order (each an f64; then its endpoint).
pub const PEER_STATS: [&str; 3] = ["sinceHandshakeMs", "txBytes", "rxBytes"];
/// The numbers after the connection count in the server's stats record.
pub const UDP_TOTALS: [&str; 2] = ["flows", "refusedOverLimit"];

/// A numeric option of the server: the range the host accepts, and what holds when it is
/// not given. Timeouts are in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounded {
    /// The option's name in the host's API.
    pub name: &'static str,
    pub min: u64,
    pub max: u64,
    pub default: u64,
}

const HOUR_MS: u64 = 3_600_000;

numbered!(
    /// The numeric options, one home for their ranges and defaults: the host checks its
    /// options against them, the engine starts with the defaults.
    option: super::Bounded {
        /// Largest inner IP packet: IPv6's minimum link MTU (RFC 8200 section 5) up to the
        /// largest IP packet; 1420 as on a WireGuard interface.
        MTU = super::Bounded { name: "mtu", min: 1280, max: 65535, default: 1420 },
        TCP_RECEIVE_BUFFER = super::Bounded { name: "tcpReceiveBuffer", min: 4096, max: 64 << 20, default: 4 << 20 },
        TCP_SEND_BUFFER = super::Bounded { name: "tcpSendBuffer", min: 4096, max: 64 << 20, default: 4 << 20 },
        TCP_MAX_CONNECTIONS_PER_PEER = super::Bounded { name: "tcpMaxConnectionsPerPeer", min: 1, max: 1 << 20, default: 16_384 },
        TCP_MAX_CONNECTIONS = super::Bounded { name: "tcpMaxConnections", min: 1, max: 1 << 20, default: 65_536 },
        TCP_MAX_HALF_OPEN_PER_PEER = super::Bounded { name: "tcpMaxHalfOpenPerPeer", min: 1, max: 1 << 20, default: 4_096 },
        MAX_BUFFERED_BYTES = super::Bounded { name: "maxBufferedBytes", min: 1 << 20, max: 1 << 31, default: 256 << 20 },
        UDP_MAX_FLOWS_PER_PEER = super::Bounded { name: "udpMaxFlowsPerPeer", min: 1, max: 1 << 20, default: 4_096 },
        TCP_HALF_OPEN_TIMEOUT = super::Bounded { name: "tcpHalfOpenTimeout", min: 1_000, max: super::HOUR_MS, default: 20_000 },
        TCP_FIN_WAIT_2_TIMEOUT = super::Bounded { name: "tcpFinWait2Timeout", min: 1_000, max: super::HOUR_MS, default: 60_000 },
        TCP_KEEPALIVE = super::Bounded { name: "tcpKeepalive", min: 1_000, max: 24 * super::HOUR_MS, default: 60_000 },
        TCP_USER_TIMEOUT = super::Bounded { name: "tcpUserTimeout", min: 1_000, max: 24 * super::HOUR_MS, default: 60_000 },
        UDP_FLOW_TIMEOUT = super::Bounded { name: "udpFlowTimeout", min: 1_000, max: 24 * super::HOUR_MS, default: 60_000 },
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_error_codes_and_exports_are_distinct() {
        for all in [event::ALL, command::ALL] {
            for (i, (name, value)) in all.iter().enumerate() {
                assert!(all[i + 1..].iter().all(|(_, other)| other != value), "{name}");
            }
        }
        for (i, (name, value)) in error::ALL.iter().enumerate() {
            assert!(*value < 0 && error::ALL[i + 1..].iter().all(|(_, other)| other != value), "error {name}");
        }
        for (i, export) in EXPORTS.iter().enumerate() {
            assert!(EXPORTS[i + 1..].iter().all(|other| other.name != export.name), "{}", export.name);
        }
    }

    #[test]
    fn every_option_default_is_in_its_range() {
        for o in option::ALL.iter().map(|(_, o)| o) {
            assert!(o.min <= o.default && o.default <= o.max, "{}", o.name);
        }
    }

    #[test]
    fn a_record_reads_back_as_written_and_a_cut_one_does_not_read() {
        let records: [Event<&[u8]>; 3] = [
            Event::Udp { peer: 7, src: "10.0.0.2:5353".parse().unwrap(), dst: "[2001:db8::1]:53".parse().unwrap(), payload: b"dns" },
            Event::UnknownPeer { public_key: [0xab; 32], from: "192.0.2.1:1".parse().unwrap() },
            Event::TcpClosed { conn: u32::MAX, reason: 4 },
        ];
        let mut log = Vec::new();
        for record in &records {
            record.write(&mut log);
        }
        let mut r = Reader::new(&log);
        for record in &records {
            assert_eq!(Event::read(&mut r).as_ref(), Some(record));
        }
        assert!(r.is_done());
        let mut cut = Reader::new(&log[..log.len() - 1]);
        assert!(Event::read(&mut cut).is_some() && Event::read(&mut cut).is_some());
        assert_eq!(Event::read(&mut cut), None);
        assert_eq!(Event::read(&mut Reader::new(&[0])), None, "kind 0 is no event");
    }
}
