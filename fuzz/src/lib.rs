//! What the fuzz targets share: how an input is cut into steps, the server under test,
//! a boringtun client that has done its handshake with it, and a walk over the event
//! log that checks the log is well formed.
//!
//! Only the public `Engine` API is used: no hooks in the engine. The harness acts as a
//! host would, so every TCP path is reached: it accepts each incoming connection, consumes
//! what it is given, sends data once a connection is established, and shuts down after EOF.

use boringtun::noise::errors::WireGuardError;
use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};
use smoltcp::wire::{Icmpv4Packet, Icmpv6Packet, IpAddress, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket, TcpSeqNumber, UdpPacket};
use std::cell::Cell;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;
use wg_netstack_engine::abi::{Command, Event, Reader};
use wg_netstack_engine::commands;
use wg_netstack_engine::ffi::{DEFAULT_LIMITS, DEFAULT_TIMEOUTS, DEFAULT_UDP};
use wg_netstack_engine::tcp::TcpConfig;
use wg_netstack_engine::tunnel::PeerConfig;
use wg_netstack_engine::{Config, Engine};

pub mod packets;

pub const SERVER_KEY: [u8; 32] = [0x42; 32];
/// The client: every inner address is allowed from it, so any source gets past
/// cryptokey routing and reaches the packet parsers.
pub const CLIENT_KEY: [u8; 32] = [0x01; 32];
/// A second peer with a configured endpoint and one prefix per family: inner packets
/// from those prefixes are spoofed, and packets to them go to this peer.
pub const OTHER_KEY: [u8; 32] = [0x02; 32];
pub const CLIENT_ENDPOINT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 40001);
pub const OTHER_ENDPOINT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), 51820);
/// Outer sources a datagram can come from: the two peers', a stranger, and IPv6.
pub const ENDPOINTS: [SocketAddr; 4] = [
    CLIENT_ENDPOINT,
    OTHER_ENDPOINT,
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)), 1),
    SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 51820, 0, 0)),
];
const MTU: usize = 1420;
/// Small buffers: many connections stay cheap, and full windows are reached quickly.
const TCP_BUFFER: usize = 8192;
/// What the host writes on each connection once it is established.
const HOST_DATA: [u8; 3000] = [0x5a; 3000];
const BUF: usize = 65_536 + 64;
/// Exchanges between server and client per pump before we call it a loop.
const MAX_ROUNDS: usize = 64;
/// Time between two inputs of the `inner` target: connections an input leaves behind
/// time out (after 180 s) a few dozen inputs later, so the state carried stays small.
const BETWEEN_INPUTS_MS: u64 = 10_000;
/// `inner` step flags: fix the checksums; set the ACK number (see [`World::acknowledge`]).
pub const FIX: u8 = 1;
pub const ACK: u8 = 2;

// ---------------------------------------------------------------------------------------
// Inputs

/// One step of an input. An input is `[tag u8][length u16 LE][bytes]` repeated; the
/// last step takes what is left.
///
/// Tag bits 7..5 say how long to wait before the step ([`WAITS_MS`]); bit 4 set means
/// no poll after it (packets batch up, as when the host is busy); bits 3..0 are the
/// target's ([`Step::flags`]).
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    pub tag: u8,
    pub bytes: &'a [u8],
}

/// Waits a step can ask for: none, within a TCP round trip, past a timer tick, past
/// retransmission and keep-alive timers, past the session and connection lifetimes.
pub const WAITS_MS: [u64; 8] = [0, 1, 10, 300, 1_000, 5_000, 65_000, 200_000];
pub const NO_POLL: u8 = 0x10;

impl Step<'_> {
    pub fn wait_ms(&self) -> u64 {
        WAITS_MS[(self.tag >> 5) as usize]
    }

    pub fn polls(&self) -> bool {
        self.tag & NO_POLL == 0
    }

    pub fn flags(&self) -> u8 {
        self.tag & 0x0f
    }
}

pub fn steps(mut input: &[u8]) -> impl Iterator<Item = Step<'_>> {
    std::iter::from_fn(move || {
        let (&tag, rest) = input.split_first()?;
        let (len, rest) = match rest {
            [low, high, rest @ ..] => (u16::from_le_bytes([*low, *high]) as usize, rest),
            _ => (rest.len(), rest),
        };
        let (bytes, rest) = rest.split_at(len.min(rest.len()));
        input = rest;
        Some(Step { tag, bytes })
    })
}

/// The input for `steps`, for seeds and tests. The tag's wait is the index into [`WAITS_MS`].
pub fn encode(steps: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (tag, bytes) in steps {
        out.push(*tag);
        out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// A tag: wait `WAITS_MS[wait]`, then `flags`.
pub const fn tag(wait: u8, flags: u8) -> u8 {
    (wait << 5) | flags
}

// ---------------------------------------------------------------------------------------
// Time: one clock per process (thread), never going back. boringtun reads its
// `mock_instant` clock, which the server sets from the time we pass and the client
// shares; it panics if time goes backwards, even across servers.

thread_local! {
    static NOW_MS: Cell<u64> = const { Cell::new(1_000) };
}

pub fn now() -> f64 {
    NOW_MS.with(|now| now.get()) as f64
}

pub fn pass(ms: u64) {
    NOW_MS.with(|now| {
        now.set(now.get() + ms);
        mock_instant::MockClock::set_time(Duration::from_millis(now.get()));
    });
}

// ---------------------------------------------------------------------------------------
// The server

fn public_key(secret: [u8; 32]) -> [u8; 32] {
    *PublicKey::from(&StaticSecret::from(secret)).as_bytes()
}

/// A fresh server with the client and the other peer.
pub fn server() -> Engine {
    let tcp = TcpConfig {
        mtu: MTU,
        max_receive_window: TCP_BUFFER,
        max_send_buffer: TCP_BUFFER,
        accept: true,
        limits: DEFAULT_LIMITS,
        timeouts: DEFAULT_TIMEOUTS,
    };
    let mut server = Engine::new(Config { private_key: SERVER_KEY, tcp, udp: DEFAULT_UDP }, now());
    let peer = |key, endpoint| PeerConfig { public_key: public_key(key), preshared_key: None, persistent_keepalive: 0, endpoint };
    let client = server.add_peer(peer(CLIENT_KEY, None)).unwrap();
    server.allow(client, IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0).unwrap();
    server.allow(client, IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0).unwrap();
    let other = server.add_peer(peer(OTHER_KEY, Some(OTHER_ENDPOINT))).unwrap();
    server.allow(other, IpAddr::V4(Ipv4Addr::new(10, 9, 0, 0)), 16).unwrap();
    server.allow(other, IpAddr::V6(Ipv6Addr::new(0xfd09, 0, 0, 0, 0, 0, 0, 0)), 32).unwrap();
    server
}

/// What an event log held.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub datagrams: usize,
    pub tcp_opened: usize,
    pub tcp_closed: usize,
    pub udp: usize,
}

/// What the harness, as the host, does in answer to an event.
#[derive(Debug, Clone, Copy)]
pub enum HostAction {
    Accept(u32),
    Consume(u32, usize),
    /// Writes up to this much of `HOST_DATA`: the room a TCP_WRITABLE granted.
    Write(u32, usize),
    Shutdown(u32),
}

/// Carries out `actions` on `server` as the host does, through one batch of commands; a
/// connection that is gone by now is no error. Returns whether anything was done (the
/// server should then be polled again).
pub fn act(server: &mut Engine, actions: &[HostAction]) -> bool {
    let mut commands = Vec::new();
    for &action in actions {
        let command = match action {
            HostAction::Accept(conn) => Command::Accept { conn },
            HostAction::Consume(conn, bytes) => Command::Consumed { conn, bytes: bytes as u32 },
            HostAction::Write(conn, room) => Command::Send { conn, bytes: &HOST_DATA[..room.min(HOST_DATA.len())] },
            HostAction::Shutdown(conn) => Command::Shutdown { conn },
        };
        command.write(&mut commands);
    }
    commands::apply(server, now(), &commands).expect("the harness keeps the command contract");
    !actions.is_empty()
}

/// Walks the event log with the engine's own decoder, panicking if it is malformed (the
/// host would misread it), hands each datagram to `datagram`, and notes the host's answers.
pub fn walk_events(log: &[u8], mut datagram: impl FnMut(SocketAddr, &[u8]), actions: &mut Vec<HostAction>) -> Seen {
    let mut seen = Seen::default();
    let mut r = Reader::new(log);
    while !r.is_done() {
        let at = r.at();
        match Event::read(&mut r).unwrap_or_else(|| panic!("malformed event log at byte {at}")) {
            Event::Datagram { to, bytes } => {
                datagram(to, bytes);
                seen.datagrams += 1;
            }
            Event::TcpIncoming { conn, .. } => actions.push(HostAction::Accept(conn)),
            Event::TcpEstablished { .. } => seen.tcp_opened += 1,
            Event::TcpData { conn, bytes } => actions.push(HostAction::Consume(conn, bytes.len())),
            Event::TcpEof { conn } => actions.push(HostAction::Shutdown(conn)),
            Event::TcpWritable { conn, room } => actions.push(HostAction::Write(conn, room as usize)),
            Event::TcpClosed { .. } => seen.tcp_closed += 1,
            Event::Udp { .. } => seen.udp += 1,
            Event::EchoReply { .. } | Event::UnknownPeer { .. } | Event::InnerPacket { .. } | Event::UdpUnreachable { .. } => {}
        }
    }
    seen
}

/// Polls `server` and reads its events, dropping the datagrams, until the host has nothing to do.
pub fn poll(server: &mut Engine) -> Seen {
    let mut seen = Seen::default();
    for _ in 0..MAX_ROUNDS {
        server.poll(now());
        let mut actions = Vec::new();
        seen = add(seen, walk_events(server.events(), |_, _| {}, &mut actions));
        server.clear_events();
        if !act(server, &actions) {
            return seen;
        }
    }
    seen
}

/// The `datagram` target: `input`'s steps are datagrams from the source `ENDPOINTS[flags & 3]`,
/// into a fresh server.
pub fn datagram_target(input: &[u8]) -> Seen {
    let mut server = server();
    let mut seen = Seen::default();
    for step in steps(input) {
        pass(step.wait_ms());
        server.receive(now(), ENDPOINTS[(step.flags() & 3) as usize], step.bytes);
        if step.polls() {
            seen = add(seen, poll(&mut server));
        }
    }
    add(seen, poll(&mut server))
}

// ---------------------------------------------------------------------------------------
// A server and a client with a session

/// The server and a boringtun client (at [`CLIENT_ENDPOINT`]) that did its handshake.
pub struct World {
    pub server: Engine,
    client: Tunn,
    buf: Vec<u8>,
    /// For each TCP connection, keyed (server side, client side): the next sequence
    /// number the server will send, which is what the client acknowledges.
    server_next: HashMap<(SocketAddr, SocketAddr), u32>,
    /// Everything the event logs held, and how many inner packets reached the client.
    pub seen: Seen,
    pub to_client: usize,
}

impl World {
    pub fn new() -> World {
        let server = server();
        let client = Tunn::new(StaticSecret::from(CLIENT_KEY), PublicKey::from(public_key(SERVER_KEY)), None, None, 1, None);
        let mut world = World { server, client, buf: vec![0; BUF], server_next: HashMap::new(), seen: Seen::default(), to_client: 0 };
        let init = match world.client.format_handshake_initiation(&mut world.buf, false) {
            TunnResult::WriteToNetwork(init) => init.to_vec(),
            other => panic!("no handshake initiation: {other:?}"),
        };
        world.server.receive(now(), CLIENT_ENDPOINT, &init);
        world.pump();
        assert_eq!(world.seen.datagrams, 1, "the server answered the handshake");
        world
    }

    /// The `inner` target: `input`'s steps are inner packets the client sends. Flag bit 0
    /// fixes their checksums, bit 1 sets a TCP segment's ACK number to what the server
    /// has sent (and fixes checksums).
    pub fn run(&mut self, input: &[u8]) {
        for step in steps(input) {
            self.pass(step.wait_ms());
            let mut packet = step.bytes.to_vec();
            if step.flags() & ACK != 0 {
                self.acknowledge(&mut packet);
            }
            if step.flags() & (FIX | ACK) != 0 {
                fix_checksums(&mut packet);
            }
            self.send(&packet);
            if step.polls() {
                self.pump();
            }
        }
        self.pump();
        self.pass(BETWEEN_INPUTS_MS);
    }

    /// The client encrypts `packet` and sends it to the server (after a handshake, when
    /// its session has expired: the pump carries that).
    pub fn send(&mut self, packet: &[u8]) {
        match self.client.encapsulate(packet, &mut self.buf) {
            TunnResult::WriteToNetwork(datagram) => self.server.receive(now(), CLIENT_ENDPOINT, datagram),
            TunnResult::Done => {}
            other => panic!("client could not encapsulate: {other:?}"),
        }
    }

    /// Polls the server and carries datagrams between it and the client until both are quiet.
    pub fn pump(&mut self) {
        for _ in 0..MAX_ROUNDS {
            self.server.poll(now());
            let mut to_client = Vec::new();
            let mut actions = Vec::new();
            let seen = walk_events(
                self.server.events(),
                |to, datagram| {
                    if to == CLIENT_ENDPOINT {
                        to_client.push(datagram.to_vec());
                    }
                },
                &mut actions,
            );
            self.server.clear_events();
            self.seen = add(self.seen, seen);
            let acted = act(&mut self.server, &actions);
            let mut replies = Vec::new();
            for datagram in to_client {
                self.client_receive(&datagram, &mut replies);
            }
            if replies.is_empty() && !acted {
                return;
            }
            for reply in replies {
                self.server.receive(now(), CLIENT_ENDPOINT, &reply);
            }
        }
        panic!("server and client still exchanging datagrams after {MAX_ROUNDS} rounds");
    }

    /// Lets `ms` pass, then runs the server's and the client's timers.
    pub fn pass(&mut self, ms: u64) {
        if ms == 0 {
            return;
        }
        pass(ms);
        self.pump();
        if let TunnResult::WriteToNetwork(datagram) = self.client.update_timers(&mut self.buf) {
            let datagram = datagram.to_vec();
            self.server.receive(now(), CLIENT_ENDPOINT, &datagram);
            self.pump();
        }
    }

    /// A datagram from the server: what the client sends back goes to `replies`.
    fn client_receive(&mut self, datagram: &[u8], replies: &mut Vec<Vec<u8>>) {
        let server_ip = Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)));
        let mut result = self.client.decapsulate(server_ip, datagram, &mut self.buf);
        loop {
            match result {
                TunnResult::WriteToNetwork(reply) => {
                    replies.push(reply.to_vec());
                    // As boringtun documents: repeat with no datagram until Done, to flush its queue.
                    result = self.client.decapsulate(None, &[], &mut self.buf);
                }
                TunnResult::WriteToTunnelV4(packet, _) | TunnResult::WriteToTunnelV6(packet, _) => {
                    self.to_client += 1;
                    if let Some((key, next)) = server_segment(packet) {
                        self.server_next.insert(key, next);
                    }
                    return;
                }
                TunnResult::Done => return,
                // A malformed datagram from the server is a bug in it.
                TunnResult::Err(
                    error @ (WireGuardError::InvalidPacket | WireGuardError::IncorrectPacketLength | WireGuardError::WrongPacketType),
                ) => {
                    panic!("the server sent a malformed datagram: {error:?}")
                }
                // Anything else is what a real client meets too (a packet that crossed a
                // rekey, a session that expired during a long wait): it drops the datagram.
                TunnResult::Err(_) => return,
            }
        }
    }

    /// Sets the acknowledgment number of a TCP `packet` to what the server has sent on
    /// its connection, so a fuzzer that cannot guess the server's sequence numbers still
    /// gets connections past the handshake.
    pub fn acknowledge(&self, packet: &mut [u8]) {
        if let Some((src, dst, IpProtocol::Tcp, payload)) = ip_payload(packet) {
            if let Ok(mut tcp) = TcpPacket::new_checked(payload) {
                let key = (SocketAddr::new(dst, tcp.dst_port()), SocketAddr::new(src, tcp.src_port()));
                if let Some(&next) = self.server_next.get(&key) {
                    tcp.set_ack_number(TcpSeqNumber(next as i32));
                }
            }
        }
    }
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

fn add(a: Seen, b: Seen) -> Seen {
    Seen {
        datagrams: a.datagrams + b.datagrams,
        tcp_opened: a.tcp_opened + b.tcp_opened,
        tcp_closed: a.tcp_closed + b.tcp_closed,
        udp: a.udp + b.udp,
    }
}

/// For a TCP segment from the server: its connection (server side, client side) and the
/// sequence number after it.
fn server_segment(packet: &[u8]) -> Option<((SocketAddr, SocketAddr), u32)> {
    let mut packet = packet.to_vec();
    let (src, dst, IpProtocol::Tcp, payload) = ip_payload(&mut packet)? else { return None };
    let tcp = TcpPacket::new_checked(&*payload).ok()?;
    let length = tcp.payload().len() as u32 + tcp.syn() as u32 + tcp.fin() as u32;
    let key = (SocketAddr::new(src, tcp.src_port()), SocketAddr::new(dst, tcp.dst_port()));
    Some((key, (tcp.seq_number().0 as u32).wrapping_add(length)))
}

// ---------------------------------------------------------------------------------------
// Checksums

/// Source, destination, protocol and payload of an IPv4 or IPv6 packet, if its header parses.
fn ip_payload(packet: &mut [u8]) -> Option<(IpAddr, IpAddr, IpProtocol, &mut [u8])> {
    match packet.first()? >> 4 {
        4 => {
            let ip = Ipv4Packet::new_checked(packet).ok()?;
            let (src, dst, protocol) = (ip.src_addr(), ip.dst_addr(), ip.next_header());
            let range = ip.header_len() as usize..ip.total_len() as usize;
            Some((IpAddr::V4(src), IpAddr::V4(dst), protocol, &mut ip.into_inner()[range]))
        }
        6 => {
            let ip = Ipv6Packet::new_checked(packet).ok()?;
            let (src, dst, protocol) = (ip.src_addr(), ip.dst_addr(), ip.next_header());
            let range = 40..40 + ip.payload_len() as usize;
            Some((IpAddr::V6(src), IpAddr::V6(dst), protocol, &mut ip.into_inner()[range]))
        }
        _ => None,
    }
}

/// Makes every checksum of `packet` right (IPv4 header, TCP, UDP, ICMP, ICMPv6) where
/// its headers parse, so mutations get past the checks into the code behind them.
pub fn fix_checksums(packet: &mut [u8]) {
    if packet.first().map(|b| b >> 4) == Some(4) {
        if let Ok(mut ip) = Ipv4Packet::new_checked(&mut *packet) {
            ip.fill_checksum();
        }
    }
    let Some((src, dst, protocol, payload)) = ip_payload(packet) else { return };
    let (s, d) = (IpAddress::from(src), IpAddress::from(dst));
    match protocol {
        IpProtocol::Tcp => {
            if let Ok(mut tcp) = TcpPacket::new_checked(payload) {
                tcp.fill_checksum(&s, &d);
            }
        }
        IpProtocol::Udp => {
            if let Ok(mut udp) = UdpPacket::new_checked(payload) {
                udp.fill_checksum(&s, &d);
            }
        }
        IpProtocol::Icmp => {
            if let Ok(mut icmp) = Icmpv4Packet::new_checked(payload) {
                icmp.fill_checksum();
            }
        }
        IpProtocol::Icmpv6 => {
            if let (IpAddr::V6(s), IpAddr::V6(d), Ok(mut icmp)) = (src, dst, Icmpv6Packet::new_checked(payload)) {
                icmp.fill_checksum(&s, &d);
            }
        }
        _ => {}
    }
}
