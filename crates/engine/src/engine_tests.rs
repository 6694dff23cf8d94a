//! End-to-end tests of [`Engine`]: a real WireGuard client (boringtun's `Tunn`, driven
//! by the test) talks to the server with crafted inner packets, the way smoltcp's own
//! tests drive its TCP state machine. Every datagram the server emits is read from its
//! event log and, when addressed to a client's endpoint, decrypted by that client.
//!
//! Time is virtual: one `now` per test, passed to every server call. boringtun's clock
//! (`mock_instant`) is per thread and the server sets it from `now`; the client `Tunn`s
//! live on the same thread and so share it.

use super::*;
use crate::counters::DropReason;
use crate::events::decode::{decode, Event};
use crate::events::CloseReason;
use crate::ffi::{DEFAULT_LIMITS, DEFAULT_TIMEOUTS};
use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, TcpControl,
    TcpPacket, TcpRepr, TcpSeqNumber, UdpPacket, UdpRepr,
};
use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

const SERVER_KEY: [u8; 32] = [0x42; 32];
/// The server's outer address, as the clients see it (the engine never knows it).
const SERVER_OUTER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
const MTU: usize = 1420;
const BUF: usize = 65_536 + 64;

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn tcp_config() -> TcpConfig {
    TcpConfig {
        mtu: MTU,
        max_receive_window: 65536,
        max_send_buffer: 65536,
        accept: true,
        limits: DEFAULT_LIMITS,
        timeouts: DEFAULT_TIMEOUTS,
    }
}

/// WireGuard message type of a datagram (first byte; the next three are zero).
fn message_type(datagram: &[u8]) -> u8 {
    datagram[0]
}

/// A WireGuard client: a boringtun `Tunn` plus the addresses it uses.
struct Client {
    tunn: Tunn,
    secret: [u8; 32],
    /// Its outer (UDP) address, where the server's datagrams for it must go.
    endpoint: SocketAddr,
    v4: Ipv4Addr,
    /// Its index on the server.
    peer: u32,
    /// Decrypted inner packets, oldest first.
    inbox: VecDeque<Vec<u8>>,
    /// Errors boringtun reported for datagrams from the server (expected to stay empty).
    errors: Vec<String>,
    buf: Vec<u8>,
}

impl Client {
    fn public_key(&self) -> [u8; 32] {
        *PublicKey::from(&StaticSecret::from(self.secret)).as_bytes()
    }

    /// Takes one datagram from the server; returns what the client sends back.
    fn receive(&mut self, datagram: &[u8]) -> Vec<Vec<u8>> {
        let mut replies = Vec::new();
        let mut result = self.tunn.decapsulate(Some(SERVER_OUTER), datagram, &mut self.buf);
        loop {
            match result {
                TunnResult::Done => break,
                TunnResult::Err(error) => {
                    self.errors.push(format!("{error:?}"));
                    break;
                }
                TunnResult::WriteToNetwork(bytes) => {
                    replies.push(bytes.to_vec());
                    // As boringtun documents: repeat with an empty datagram until Done.
                    result = self.tunn.decapsulate(None, &[], &mut self.buf);
                }
                TunnResult::WriteToTunnelV4(packet, _) | TunnResult::WriteToTunnelV6(packet, _) => {
                    self.inbox.push_back(packet.to_vec());
                    break;
                }
            }
        }
        replies
    }
}

/// The server, its clients, and the datagrams between them.
struct Net {
    now: f64,
    server: Engine,
    clients: Vec<Client>,
    /// Events other than datagrams, in order, since the last `take_events`.
    events: Vec<Event>,
    /// Every datagram the server emitted, in order.
    sent: Vec<(SocketAddr, Vec<u8>)>,
    /// Accept each TCP_INCOMING at once, as a host with an `onTcp` handler does.
    auto_accept: bool,
    /// The persistent keepalive (seconds, 0 off) of the clients added from now on.
    persistent_keepalive: u16,
}

impl Net {
    fn new() -> Net {
        Net::with_tcp(tcp_config())
    }

    fn with_tcp(tcp: TcpConfig) -> Net {
        // Start past whatever this thread's mock clock already says: it must not go back.
        let now = mock_instant::MockClock::time().as_millis() as f64 + 1_000.0;
        let server = Engine::new(Config { private_key: SERVER_KEY, tcp, udp: crate::ffi::DEFAULT_UDP }, now);
        Net { now, server, clients: Vec::new(), events: Vec::new(), sent: Vec::new(), auto_accept: true, persistent_keepalive: 0 }
    }

    fn server_public(&self) -> PublicKey {
        PublicKey::from(self.server.public_key())
    }

    /// Adds client `n` (1, 2, …): key `[n; 32]`, inner 10.0.0.(n+1) and fd00::(n+1),
    /// outer 192.0.2.(n+1):(40000+n). Returns its index in `clients`.
    fn add_client(&mut self, n: u8) -> usize {
        let v4 = Ipv4Addr::new(10, 0, 0, n + 1);
        let v6 = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, n as u16 + 1);
        let endpoint = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, n + 1)), 40000 + n as u16);
        self.add_client_with(n, v4, v6, endpoint, None)
    }

    fn add_client_with(
        &mut self,
        n: u8,
        v4: Ipv4Addr,
        v6: Ipv6Addr,
        endpoint: SocketAddr,
        configured_endpoint: Option<SocketAddr>,
    ) -> usize {
        let secret = [n; 32];
        let public = *PublicKey::from(&StaticSecret::from(secret)).as_bytes();
        let config = PeerConfig {
            public_key: public,
            preshared_key: None,
            persistent_keepalive: self.persistent_keepalive,
            endpoint: configured_endpoint,
        };
        let peer = self.server.add_peer(config).unwrap();
        self.server.allow(peer, IpAddr::V4(v4), 32).unwrap();
        self.server.allow(peer, IpAddr::V6(v6), 128).unwrap();
        let tunn = Tunn::new(StaticSecret::from(secret), self.server_public(), None, None, n as u32, None);
        self.clients.push(Client { tunn, secret, endpoint, v4, peer, inbox: VecDeque::new(), errors: Vec::new(), buf: vec![0; BUF] });
        self.clients.len() - 1
    }

    /// Client `c` starts a handshake; everything is delivered until the network is quiet.
    fn handshake(&mut self, c: usize) {
        let mut buf = vec![0; BUF];
        let init = match self.clients[c].tunn.format_handshake_initiation(&mut buf, false) {
            TunnResult::WriteToNetwork(bytes) => bytes.to_vec(),
            other => panic!("no initiation: {other:?}"),
        };
        self.deliver(c, &init);
    }

    /// Client `c` sends a keepalive (a data message with nothing in it), delivered to the server.
    fn keepalive_from(&mut self, c: usize) {
        let keepalive = match self.clients[c].tunn.encapsulate(&[], &mut vec![0; BUF]) {
            TunnResult::WriteToNetwork(bytes) => bytes.to_vec(),
            other => panic!("no keepalive: {other:?}"),
        };
        self.deliver(c, &keepalive);
    }

    /// Client `c` restarts: the same key, no session (what the server's old one encrypts, it cannot read).
    fn restart_client(&mut self, c: usize) {
        let secret = self.clients[c].secret; // [n; 32], n its index as add_client made it
        self.clients[c].tunn = Tunn::new(StaticSecret::from(secret), self.server_public(), None, None, secret[0] as u32, None);
    }

    /// A datagram from client `c` (from its current endpoint) to the server.
    fn deliver(&mut self, c: usize, datagram: &[u8]) {
        let from = self.clients[c].endpoint;
        self.deliver_from(from, datagram);
    }

    fn deliver_from(&mut self, from: SocketAddr, datagram: &[u8]) {
        self.server.receive(self.now, from, datagram);
        self.pump();
    }

    /// Client `c` encrypts `packet` and sends it; returns the datagram it sent.
    fn send(&mut self, c: usize, packet: &[u8]) -> Vec<u8> {
        let client = &mut self.clients[c];
        let datagram = match client.tunn.encapsulate(packet, &mut client.buf) {
            TunnResult::WriteToNetwork(bytes) => bytes.to_vec(),
            other => panic!("client {c} could not encapsulate: {other:?}"),
        };
        self.deliver(c, &datagram);
        datagram
    }

    /// Polls the server and moves datagrams both ways until nobody has anything to send.
    fn pump(&mut self) {
        for _ in 0..10_000 {
            let next = self.server.poll(self.now);
            let events = decode(self.server.events());
            self.server.clear_events();
            let mut replies = Vec::new();
            let mut accepted = false;
            for event in events {
                match event {
                    Event::TcpIncoming { conn, .. } if self.auto_accept => {
                        self.server.tcp_accept(self.now, conn).unwrap();
                        accepted = true;
                        self.events.push(event);
                    }
                    Event::Datagram { to, bytes } => {
                        if let Some(c) = self.clients.iter().position(|client| client.endpoint == to) {
                            for reply in self.clients[c].receive(&bytes) {
                                replies.push((c, reply));
                            }
                        }
                        self.sent.push((to, bytes));
                    }
                    other => self.events.push(other),
                }
            }
            if replies.is_empty() && !accepted && next > self.now {
                return;
            }
            for (c, reply) in replies {
                self.server.receive(self.now, self.clients[c].endpoint, &reply);
            }
        }
        panic!("the server never went quiet: it asks to be polled again at once, forever");
    }

    /// Moves time on by `ms`, polls the server and runs the clients' timers.
    fn advance(&mut self, ms: u64) {
        self.now += ms as f64;
        self.pump(); // sets the shared mock clock first
        for c in 0..self.clients.len() {
            let client = &mut self.clients[c];
            match client.tunn.update_timers(&mut client.buf) {
                TunnResult::WriteToNetwork(bytes) => {
                    let bytes = bytes.to_vec();
                    self.deliver(c, &bytes);
                }
                TunnResult::Err(error) => client.errors.push(format!("timers: {error:?}")),
                _ => {}
            }
        }
    }

    /// Client `c` sends `packet`, but the server is not polled: packets batch up.
    fn queue(&mut self, c: usize, packet: &[u8]) {
        let client = &mut self.clients[c];
        let TunnResult::WriteToNetwork(datagram) = client.tunn.encapsulate(packet, &mut client.buf) else {
            panic!("client {c} could not encapsulate");
        };
        let datagram = datagram.to_vec();
        self.server.receive(self.now, self.clients[c].endpoint, &datagram);
    }

    fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    fn take_inbox(&mut self, c: usize) -> Vec<Vec<u8>> {
        self.clients[c].inbox.drain(..).collect()
    }

    /// The TCP segments client `c` received since the last call.
    fn segments(&mut self, c: usize) -> Vec<Segment> {
        self.take_inbox(c).iter().map(|packet| parse_tcp(packet).expect("a valid TCP packet")).collect()
    }

    fn dropped(&self, reason: DropReason) -> u64 {
        self.server.counters().dropped(reason)
    }

    fn total_dropped(&self) -> u64 {
        DropReason::ALL.iter().map(|&reason| self.dropped(reason)).sum()
    }
}

// ---------------------------------------------------------------------------------------
// Inner packets

/// An IPv4 or IPv6 packet around a transport payload written by `fill`.
fn ip_packet(src: IpAddr, dst: IpAddr, protocol: IpProtocol, payload_len: usize, fill: impl FnOnce(&mut [u8])) -> Vec<u8> {
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
        _ => panic!("mixed families"),
    }
}

/// Source, destination, protocol and payload of an IP packet whose header checks out.
fn parse_ip(packet: &[u8]) -> (IpAddr, IpAddr, IpProtocol, &[u8]) {
    match packet[0] >> 4 {
        4 => {
            let ip = Ipv4Packet::new_checked(packet).unwrap();
            assert!(ip.verify_checksum(), "IPv4 header checksum");
            let payload = &packet[ip.header_len() as usize..ip.total_len() as usize];
            (IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()), ip.next_header(), payload)
        }
        6 => {
            let ip = Ipv6Packet::new_checked(packet).unwrap();
            let end = 40 + ip.payload_len() as usize;
            (IpAddr::V6(ip.src_addr()), IpAddr::V6(ip.dst_addr()), ip.next_header(), &packet[40..end])
        }
        v => panic!("IP version {v}"),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    src: SocketAddr,
    dst: SocketAddr,
    control: TcpControl,
    seq: u32,
    ack: Option<u32>,
    window: u16,
    mss: Option<u16>,
    payload: Vec<u8>,
}

impl Segment {
    fn is(&self, control: TcpControl) -> bool {
        self.control.quash_psh() == control
    }
}

#[allow(clippy::too_many_arguments)]
fn tcp_packet(
    src: SocketAddr,
    dst: SocketAddr,
    control: TcpControl,
    seq: u32,
    ack: Option<u32>,
    window: u16,
    mss: Option<u16>,
    payload: &[u8],
) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: src.port(),
        dst_port: dst.port(),
        control,
        seq_number: TcpSeqNumber(seq as i32),
        ack_number: ack.map(|a| TcpSeqNumber(a as i32)),
        window_len: window,
        window_scale: None,
        max_seg_size: mss,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload,
    };
    let (s, d) = (IpAddress::from(src.ip()), IpAddress::from(dst.ip()));
    ip_packet(src.ip(), dst.ip(), IpProtocol::Tcp, repr.buffer_len(), |bytes| {
        repr.emit(&mut TcpPacket::new_unchecked(bytes), &s, &d, &ChecksumCapabilities::default())
    })
}

/// Parses a TCP packet, checksums verified; `None` if it is not TCP.
fn parse_tcp(packet: &[u8]) -> Option<Segment> {
    let (src, dst, protocol, payload) = parse_ip(packet);
    if protocol != IpProtocol::Tcp {
        return None;
    }
    let tcp = TcpPacket::new_checked(payload).unwrap();
    let repr = TcpRepr::parse(&tcp, &IpAddress::from(src), &IpAddress::from(dst), &ChecksumCapabilities::default())
        .expect("valid TCP segment with a good checksum");
    Some(Segment {
        src: SocketAddr::new(src, repr.src_port),
        dst: SocketAddr::new(dst, repr.dst_port),
        control: repr.control,
        seq: repr.seq_number.0 as u32,
        ack: repr.ack_number.map(|a| a.0 as u32),
        window: repr.window_len,
        mss: repr.max_seg_size,
        payload: repr.payload.to_vec(),
    })
}

fn udp_packet(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let repr = UdpRepr { src_port: src.port(), dst_port: dst.port() };
    let (s, d) = (IpAddress::from(src.ip()), IpAddress::from(dst.ip()));
    ip_packet(src.ip(), dst.ip(), IpProtocol::Udp, 8 + payload.len(), |bytes| {
        repr.emit(
            &mut UdpPacket::new_unchecked(bytes),
            &s,
            &d,
            payload.len(),
            |buf| buf.copy_from_slice(payload),
            &ChecksumCapabilities::default(),
        )
    })
}

/// Parses a UDP packet, checksums verified: (src, dst, payload).
fn parse_udp(packet: &[u8]) -> (SocketAddr, SocketAddr, Vec<u8>) {
    let (src, dst, protocol, payload) = parse_ip(packet);
    assert_eq!(protocol, IpProtocol::Udp);
    let udp = UdpPacket::new_checked(payload).unwrap();
    assert!(udp.verify_checksum(&IpAddress::from(src), &IpAddress::from(dst)), "UDP checksum");
    assert_eq!(udp.len() as usize, payload.len(), "UDP length field");
    (SocketAddr::new(src, udp.src_port()), SocketAddr::new(dst, udp.dst_port()), udp.payload().to_vec())
}

/// The client's side of one TCP connection, with crafted segments.
struct TcpPeer {
    client: usize,
    /// The client's inner address.
    local: SocketAddr,
    /// The destination it connects to.
    remote: SocketAddr,
    snd_nxt: u32,
    rcv_nxt: u32,
    /// The server's conn id, once open.
    id: u32,
}

impl TcpPeer {
    fn segment(&self, control: TcpControl, payload: &[u8]) -> Vec<u8> {
        tcp_packet(self.local, self.remote, control, self.snd_nxt, Some(self.rcv_nxt), 65535, None, payload)
    }

    /// Sends data (with ACK) and advances the sequence number.
    fn send_data(&mut self, net: &mut Net, data: &[u8]) {
        let packet = self.segment(TcpControl::Psh, data);
        self.snd_nxt = self.snd_nxt.wrapping_add(data.len() as u32);
        net.send(self.client, &packet);
    }

    fn send_ack(&self, net: &mut Net) {
        net.send(self.client, &self.segment(TcpControl::None, &[]));
    }

    fn send_fin(&mut self, net: &mut Net) {
        let packet = self.segment(TcpControl::Fin, &[]);
        self.snd_nxt = self.snd_nxt.wrapping_add(1);
        net.send(self.client, &packet);
    }

    /// Checks a segment from the server belongs to this connection and is in order,
    /// and takes its data (and FIN) into `rcv_nxt`.
    fn accept(&mut self, segment: &Segment) {
        assert_eq!((segment.src, segment.dst), (self.remote, self.local), "{segment:?}");
        assert_eq!(segment.seq, self.rcv_nxt, "in-order segment: {segment:?}");
        self.rcv_nxt = self.rcv_nxt.wrapping_add(segment.payload.len() as u32 + segment.control.len() as u32);
    }
}

/// Client `c` connects to `remote` from `local`: SYN, SYN-ACK, ACK, and the TCP_OPEN event.
fn open(net: &mut Net, c: usize, local: SocketAddr, remote: SocketAddr) -> TcpPeer {
    let iss = 1_000_000u32;
    net.send(c, &syn(local, remote, iss));
    finish_open(net, c, local, remote, iss)
}

fn syn(local: SocketAddr, remote: SocketAddr, iss: u32) -> Vec<u8> {
    tcp_packet(local, remote, TcpControl::Syn, iss, None, 65535, Some(1360), &[])
}

/// The rest of [`open`], once client `c` has sent its SYN with sequence number `iss`.
fn finish_open(net: &mut Net, c: usize, local: SocketAddr, remote: SocketAddr, iss: u32) -> TcpPeer {
    let segments = net.segments(c);
    assert_eq!(segments.len(), 1, "{segments:?}");
    let syn_ack = &segments[0];
    assert!(syn_ack.is(TcpControl::Syn), "{syn_ack:?}");
    // From the exact destination the client asked for.
    assert_eq!((syn_ack.src, syn_ack.dst), (remote, local));
    assert_eq!(syn_ack.ack, Some(iss + 1));
    // The host heard of it at the SYN, with the exact destination, before the handshake completed.
    // And was given room to write at once: what it writes goes out when the handshake completes.
    let events = net.take_events();
    let [Event::TcpIncoming { conn, peer: peer_index, remote: open_remote, local: open_local }, Event::TcpWritable { conn: writable, room }] =
        events[..]
    else {
        panic!("expected TCP_INCOMING and TCP_WRITABLE, got {events:?}");
    };
    assert_eq!(writable, conn);
    assert!(room > 0);
    assert_eq!(peer_index, net.clients[c].peer);
    assert_eq!(open_remote, local, "remote is the client's inner endpoint");
    assert_eq!(open_local, remote, "local is the exact destination");

    let peer = TcpPeer { client: c, local, remote, snd_nxt: iss + 1, rcv_nxt: syn_ack.seq.wrapping_add(1), id: conn };
    peer.send_ack(net);
    assert_eq!(net.take_events(), vec![Event::TcpEstablished { conn, peer: peer_index }]);
    peer
}

/// A connected client, after a handshake.
fn connected() -> (Net, usize) {
    let mut net = Net::new();
    let c = net.add_client(1);
    net.handshake(c);
    (net, c)
}

/// All TCP_DATA bytes for `conn` in `events`, concatenated; panics on other events.
fn data_of(events: &[Event], conn: u32) -> Vec<u8> {
    let mut data = Vec::new();
    for event in events {
        match event {
            Event::TcpData { conn: id, bytes } if *id == conn => data.extend_from_slice(bytes),
            other => panic!("unexpected event {other:?}"),
        }
    }
    data
}

// ---------------------------------------------------------------------------------------
// 1. Handshake

#[test]
fn handshake_with_a_boringtun_client() {
    let mut net = Net::new();
    let c = net.add_client(1);
    assert_eq!(net.server.peer(0).unwrap().stats().since_handshake, None);
    assert_eq!(net.server.peer(0).unwrap().public_key, net.clients[c].public_key());

    net.handshake(c);

    // The server answered with one handshake response (type 2, 92 bytes) to the client.
    let (to, response) = &net.sent[0];
    assert_eq!(*to, net.clients[c].endpoint);
    assert_eq!((message_type(response), response.len()), (2, 92));
    assert!(net.clients[c].errors.is_empty(), "{:?}", net.clients[c].errors);

    let stats = net.server.peer(0).unwrap().stats();
    assert!(stats.since_handshake.is_some(), "{stats:?}");
    assert_eq!(stats.endpoint, Some(net.clients[c].endpoint));
    assert_eq!(net.total_dropped(), 0);

    // Data flows both ways.
    let (src, dst) = (addr("10.0.0.2:1000"), addr("192.0.2.200:2000"));
    net.send(c, &udp_packet(src, dst, b"ping"));
    assert_eq!(net.take_events(), vec![Event::Udp { peer: 0, src, dst, payload: b"ping".to_vec() }]);
    net.server.udp_send(net.now, dst, src, b"pong").unwrap();
    net.pump();
    let inbox = net.take_inbox(c);
    assert_eq!(inbox.len(), 1);
    assert_eq!(parse_udp(&inbox[0]), (dst, src, b"pong".to_vec()));
    let stats = net.server.peer(0).unwrap().stats();
    assert!(stats.rx_bytes > 0 && stats.tx_bytes > 0, "{stats:?}");
}

#[test]
fn server_initiates_the_handshake_to_a_configured_endpoint_and_sends_the_queued_packet() {
    let mut net = Net::new();
    let endpoint = addr("192.0.2.77:51820");
    let c = net.add_client_with(7, Ipv4Addr::new(10, 0, 0, 7), "fd00::7".parse().unwrap(), endpoint, Some(endpoint));
    let (src, dst) = (addr("192.0.2.200:53"), addr("10.0.0.7:5353"));
    net.server.udp_send(net.now, src, dst, b"first").unwrap();
    net.pump();
    // The server sent an initiation (type 1), the client answered, and then the packet came.
    assert_eq!(message_type(&net.sent[0].1), 1);
    assert_eq!(net.sent[0].0, endpoint);
    let inbox = net.take_inbox(c);
    assert_eq!(inbox.len(), 1, "{:?}", net.clients[c].errors);
    assert_eq!(parse_udp(&inbox[0]), (src, dst, b"first".to_vec()));
    assert!(net.server.peer(0).unwrap().stats().since_handshake.is_some());
}

#[test]
fn ping_goes_out_as_an_echo_request_and_its_reply_comes_back_as_an_event() {
    for (src, dst) in [("192.0.2.200", "10.0.0.2"), ("fd00::99", "fd00::2")] {
        let (mut net, c) = connected();
        let (src, dst): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
        net.server.ping(net.now, src, dst, 0x4242, 7).unwrap();
        net.pump();
        let request = net.take_inbox(c).pop().expect("the client got the echo request");
        // The client's stack answers it, as any host does (RFC 792, RFC 4443 4.2).
        let mut reply = Vec::new();
        wire::echo_reply(&request, &mut reply).unwrap();
        net.send(c, &reply);
        let peer = net.clients[c].peer;
        assert_eq!(net.take_events(), vec![Event::EchoReply { peer, from: SocketAddr::new(dst, 0), ident: 0x4242, seq: 7 }]);
    }
    let (mut net, _) = connected();
    let nowhere: IpAddr = "203.0.113.9".parse().unwrap();
    assert!(matches!(net.server.ping(net.now, "10.0.0.1".parse().unwrap(), nowhere, 1, 1), Err(RequestError::NoRoute)));
}

#[test]
fn keepalive_to_a_configured_endpoint_starts_the_handshake_then_follows_it() {
    let mut net = Net::new();
    let endpoint = addr("192.0.2.78:51820");
    let c = net.add_client_with(8, Ipv4Addr::new(10, 0, 0, 8), "fd00::8".parse().unwrap(), endpoint, Some(endpoint));
    assert!(net.server.keepalive(net.now, net.clients[c].peer));
    net.pump();
    // An initiation (type 1); once the client answered, keepalives only: data messages
    // (type 4) of header and tag, 32 bytes (whitepaper 6.5). boringtun confirms the session
    // with one and then sends the queued one.
    let sent: Vec<(u8, usize)> = net.sent.iter().map(|(_, bytes)| (message_type(bytes), bytes.len())).collect();
    assert_eq!(sent, vec![(1, 148), (4, 32), (4, 32)]);
    assert!(net.clients[c].errors.is_empty(), "{:?}", net.clients[c].errors);
    assert!(net.server.peer(net.clients[c].peer).unwrap().stats().since_handshake.is_some());
    assert!(net.take_inbox(c).is_empty(), "a keepalive carries no packet");
    // No such peer; a peer without an endpoint cannot be reached.
    assert!(!net.server.keepalive(net.now, 99));
    let lone = net.add_client(9);
    assert!(!net.server.keepalive(net.now, net.clients[lone].peer));
}

// ---------------------------------------------------------------------------------------
// 2. TCP to any destination

fn tcp_lifecycle(local: SocketAddr, remote: SocketAddr) {
    let (mut net, c) = connected();
    let mut tcp = open(&mut net, c, local, remote);
    assert_eq!(net.server.connection_count(), 1);

    // Client data reaches the host.
    tcp.send_data(&mut net, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(net.take_events(), vec![Event::TcpData { conn: tcp.id, bytes: b"GET / HTTP/1.1\r\n\r\n".to_vec() }]);
    net.advance(20); // the delayed ACK
    let acks = net.segments(c);
    assert_eq!(acks.last().map(|s| s.ack), Some(Some(tcp.snd_nxt)), "{acks:?}");

    // Host data reaches the client, from the destination.
    host_sends(&mut net, &mut tcp, b"HTTP/1.1 200 OK\r\n\r\n");

    // Client FIN: end of stream for the host.
    tcp.send_fin(&mut net);
    assert_eq!(net.take_events(), vec![Event::TcpEof { conn: tcp.id }]);
    net.advance(20);
    let acks = net.segments(c);
    assert_eq!(acks.last().map(|s| s.ack), Some(Some(tcp.snd_nxt)), "FIN acknowledged: {acks:?}");

    // Half-closed: the host can still send.
    host_sends(&mut net, &mut tcp, b"trailer");

    // Host shuts down: the client gets FIN; its ACK closes the connection cleanly.
    net.server.tcp_shutdown(tcp.id).unwrap();
    net.pump();
    let segments = net.segments(c);
    assert_eq!(segments.len(), 1, "{segments:?}");
    assert!(segments[0].is(TcpControl::Fin), "{segments:?}");
    tcp.accept(&segments[0]);
    assert!(net.take_events().is_empty());
    tcp.send_ack(&mut net);
    assert_eq!(net.take_events(), vec![Event::TcpClosed { conn: tcp.id, reason: 0 }]);
    assert_eq!(net.server.connection_count(), 0);
    assert_eq!(net.server.tcp_send(tcp.id, b"x"), Err(RequestError::Tcp(TcpError::UnknownConnection)));
    assert_eq!(net.total_dropped(), 0);
}

#[test]
fn tcp_to_any_ipv4_destination() {
    tcp_lifecycle(addr("10.0.0.2:50000"), addr("93.184.216.34:80"));
}

#[test]
fn tcp_to_any_ipv6_destination() {
    tcp_lifecycle(addr("[fd00::2]:50001"), addr("[2001:db8::7]:443"));
}

#[test]
fn tcp_host_closes_first() {
    let (mut net, c) = connected();
    let mut tcp = open(&mut net, c, addr("10.0.0.2:50000"), addr("203.0.113.5:22"));
    net.server.tcp_send(tcp.id, b"bye").unwrap();
    net.server.tcp_shutdown(tcp.id).unwrap();
    assert_eq!(net.server.tcp_send(tcp.id, b"more"), Err(RequestError::Tcp(TcpError::NotWritable)));
    net.pump();
    // Data then FIN (possibly in one segment).
    let segments = net.segments(c);
    let mut data = Vec::new();
    for segment in &segments {
        tcp.accept(segment);
        data.extend_from_slice(&segment.payload);
    }
    assert_eq!(data, b"bye");
    assert!(segments.last().unwrap().is(TcpControl::Fin), "{segments:?}");
    tcp.send_ack(&mut net);
    assert!(net.take_events().is_empty());
    // The client finishes too: EOF, then closed; the TIME-WAIT leftover is not a connection.
    tcp.send_fin(&mut net);
    assert_eq!(net.take_events(), vec![Event::TcpEof { conn: tcp.id }, Event::TcpClosed { conn: tcp.id, reason: 0 }]);
    assert_eq!(net.server.connection_count(), 0);
    // A retransmitted FIN (our ACK was lost) is acknowledged again from TIME-WAIT.
    net.take_inbox(c);
    let fin_again = tcp_packet(tcp.local, tcp.remote, TcpControl::Fin, tcp.snd_nxt - 1, Some(tcp.rcv_nxt), 65535, None, &[]);
    net.send(c, &fin_again);
    let acks = net.segments(c);
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert_eq!(acks[0].ack, Some(tcp.snd_nxt));
    assert!(net.take_events().is_empty());
}

/// The host sends `data`; it reaches the client as one in-order segment that also
/// acknowledges everything the client sent, and the client acknowledges it.
fn host_sends(net: &mut Net, tcp: &mut TcpPeer, data: &[u8]) {
    assert_eq!(net.server.tcp_send(tcp.id, data), Ok(data.len()));
    net.pump();
    let segments = net.segments(tcp.client);
    assert_eq!(segments.len(), 1, "{segments:?}");
    tcp.accept(&segments[0]);
    assert_eq!(segments[0].payload, data);
    assert_eq!(segments[0].ack, Some(tcp.snd_nxt));
    tcp.send_ack(net);
}

/// The host sends FIN; the client takes what the server sent and acknowledges it.
fn host_shuts_down(net: &mut Net, tcp: &mut TcpPeer) {
    net.server.tcp_shutdown(tcp.id).unwrap();
    net.pump();
    for segment in net.segments(tcp.client) {
        tcp.accept(&segment);
    }
    tcp.send_ack(net);
}

/// Data and FIN the client sends while the host is not reading arrive at once, in order,
/// and count against the window until the host consumes them; an abort still works after.
#[test]
fn tcp_data_is_delivered_at_once_and_held_against_the_window_until_consumed() {
    let (mut net, c) = connected();
    let mut tcp = open(&mut net, c, addr("10.0.0.2:50000"), addr("93.184.216.34:80"));
    tcp.send_data(&mut net, b"request");
    tcp.send_fin(&mut net);
    assert_eq!(net.take_events(), vec![Event::TcpData { conn: tcp.id, bytes: b"request".to_vec() }, Event::TcpEof { conn: tcp.id }]);
    let ack = net.segments(c).pop().unwrap();
    assert_eq!((ack.ack, ack.window), (Some(tcp.snd_nxt), 65535 - 7 + 1), "7 bytes held: {ack:?}");
    net.server.tcp_send(tcp.id, b"response").unwrap();
    host_shuts_down(&mut net, &mut tcp); // the client's ACK of our FIN: LAST-ACK → CLOSED
    assert_eq!(net.take_events(), vec![Event::TcpClosed { conn: tcp.id, reason: 0 }]);
    assert_eq!(net.server.connection_count(), 0);
    assert_eq!(net.server.tcp_consumed(net.now, tcp.id, 7), Err(RequestError::Tcp(TcpError::UnknownConnection)));

    // The host may abort instead of reading what is left.
    let mut tcp = open(&mut net, c, addr("10.0.0.2:50002"), addr("93.184.216.34:80"));
    tcp.send_data(&mut net, b"unwanted");
    net.take_events();
    net.server.tcp_abort(tcp.id).unwrap();
    net.pump();
    assert_eq!(net.take_events(), vec![Event::TcpClosed { conn: tcp.id, reason: 3 }]);
    assert_eq!(net.server.connection_count(), 0);
}

#[test]
fn tcp_syns_in_one_batch_each_get_a_connection() {
    let (mut net, c) = connected();
    let remote = addr("93.184.216.34:80");
    let (a, b) = (addr("10.0.0.2:50000"), addr("10.0.0.2:50001"));
    // Both SYNs (and a retransmission of the first) arrive before the server polls.
    for (local, iss) in [(a, 100), (b, 200), (a, 100)] {
        net.queue(c, &tcp_packet(local, remote, TcpControl::Syn, iss, None, 65535, None, &[]));
    }
    net.pump();
    assert_eq!(net.server.connection_count(), 2);
    let incoming: Vec<_> = net
        .take_events()
        .into_iter()
        .filter_map(|event| match event {
            Event::TcpIncoming { remote, .. } => Some(remote),
            Event::TcpWritable { .. } => None,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(incoming, [a, b], "one event per connection, the retransmitted SYN is not news");
    let segments = net.segments(c);
    let syn_acks: Vec<_> = segments.iter().filter(|s| s.is(TcpControl::Syn)).collect();
    assert!(syn_acks.iter().any(|s| s.dst == a && s.ack == Some(101)), "{segments:?}");
    assert!(syn_acks.iter().any(|s| s.dst == b && s.ack == Some(201)), "{segments:?}");
    let mut opened = Vec::new();
    for (local, iss) in [(a, 100u32), (b, 200)] {
        let syn_ack = syn_acks.iter().find(|s| s.dst == local).unwrap();
        net.send(c, &tcp_packet(local, remote, TcpControl::None, iss + 1, Some(syn_ack.seq + 1), 65535, None, &[]));
        opened.extend(net.take_events());
    }
    assert_eq!(opened.len(), 2, "{opened:?}");
    assert!(opened.iter().all(|event| matches!(event, Event::TcpEstablished { .. })), "{opened:?}");
}

#[test]
fn tcp_attempts_that_never_open_leave_nothing_behind() {
    let (mut net, c) = connected();
    let (local, remote) = (addr("10.0.0.2:50000"), addr("93.184.216.34:80"));
    // A SYN with RST set too is malformed: no answer, nothing kept.
    let mut syn = tcp_packet(local, remote, TcpControl::Syn, 100, None, 65535, None, &[]);
    let ip_header = 20;
    syn[ip_header + 13] |= 0x04;
    net.send(c, &syn);
    assert!(net.take_inbox(c).is_empty());
    assert_eq!(net.dropped(DropReason::InnerMalformed), 1);
    assert_eq!(net.server.connection_count(), 0);
    // A SYN, then RST instead of the final ACK: the host hears it closed, nothing is kept.
    net.send(c, &tcp_packet(local, remote, TcpControl::Syn, 100, None, 65535, None, &[]));
    let syn_ack = net.segments(c).pop().unwrap();
    assert!(syn_ack.is(TcpControl::Syn));
    let [Event::TcpIncoming { conn, .. }, Event::TcpWritable { .. }] = net.take_events()[..] else { panic!() };
    net.send(c, &tcp_packet(local, remote, TcpControl::Rst, 101, None, 0, None, &[]));
    net.advance(10);
    assert_eq!(net.server.connection_count(), 0);
    assert_eq!(net.take_events(), vec![Event::TcpClosed { conn, reason: 1 }]);
    // The same tuple can connect again afterwards.
    open(&mut net, c, local, remote);
}

/// Two peers' SYNs to one destination, even in one batch and after one of them reset a
/// half-open attempt, each reach their own connection with their own peer and address.
#[test]
fn tcp_syns_from_two_peers_to_one_destination_stay_apart() {
    let remote = addr("93.184.216.34:443");
    let (from_a, from_b) = (addr("10.0.0.2:50000"), addr("10.0.0.3:40000"));
    for batched in [false, true] {
        let mut net = Net::new();
        let a = net.add_client(1);
        let b = net.add_client(2);
        net.handshake(a);
        net.handshake(b);
        net.send(a, &syn(from_a, remote, 100));
        assert!(net.segments(a)[0].is(TcpControl::Syn));
        net.take_events();
        if batched {
            net.queue(a, &tcp_packet(from_a, remote, TcpControl::Rst, 101, None, 0, None, &[]));
            net.queue(b, &syn(from_b, remote, 500));
            net.pump();
        } else {
            net.send(a, &tcp_packet(from_a, remote, TcpControl::Rst, 101, None, 0, None, &[]));
            net.send(b, &syn(from_b, remote, 500));
        }
        assert!(net.take_inbox(a).is_empty());
        let closed = net.events.iter().position(|e| matches!(e, Event::TcpClosed { .. })).expect("a's attempt closed");
        net.events.remove(closed);
        let tcp = finish_open(&mut net, b, from_b, remote, 500); // checks TCP_INCOMING's peer and address
        net.advance(10);
        assert_eq!(net.server.connection_count(), 1);
        net.server.tcp_send(tcp.id, b"for b").unwrap();
        net.pump();
        assert_eq!(net.segments(b).pop().unwrap().payload, b"for b");
    }
}

#[test]
fn tcp_discard_drops_data_and_keeps_the_window_open() {
    let (mut net, c) = connected();
    let mut tcp = open(&mut net, c, addr("10.0.0.2:50000"), addr("93.184.216.34:80"));
    net.server.tcp_discard(tcp.id).unwrap();
    for _ in 0..60 {
        tcp.send_data(&mut net, &[1; 1360]);
    }
    net.advance(20);
    assert!(net.take_events().is_empty());
    // More than the receive buffer holds was taken, and the window never closed.
    let acks = net.segments(c);
    assert_eq!(acks.last().unwrap().ack, Some(tcp.snd_nxt));
    assert!(acks.iter().all(|s| s.window >= 65535 - 2 * 1360), "{acks:?}");
    tcp.send_fin(&mut net);
    assert_eq!(net.take_events(), vec![Event::TcpEof { conn: tcp.id }]);
}

/// Client `c` got one segment, a RST from `from` to `to` acknowledging `ack`.
fn assert_one_rst(net: &mut Net, c: usize, from: SocketAddr, to: SocketAddr, ack: u32) {
    let segments = net.segments(c);
    assert_eq!(segments.len(), 1, "{segments:?}");
    assert!(segments[0].is(TcpControl::Rst));
    assert_eq!((segments[0].src, segments[0].dst, segments[0].ack), (from, to, Some(ack)));
}

#[test]
fn tcp_syn_is_refused_with_rst_when_not_accepting() {
    let mut net = Net::with_tcp(TcpConfig { accept: false, ..tcp_config() });
    let c = net.add_client(1);
    net.handshake(c);
    let (local, remote) = (addr("10.0.0.2:50000"), addr("93.184.216.34:80"));
    net.send(c, &tcp_packet(local, remote, TcpControl::Syn, 5, None, 65535, None, &[]));
    assert_one_rst(&mut net, c, remote, local, 6);
    assert!(net.take_events().is_empty());
    assert_eq!(net.server.connection_count(), 0);
}

/// A SYN the host turns down (a REFUSE command) is answered as it asks: `how` 0, RST, as a
/// host with no listener answers (RFC 9293 §3.10.7.1); 1, ICMP host unreachable quoting the
/// SYN (RFC 792), as a firewall that rejects does. Either way the host hears it closed, refused.
#[test]
fn tcp_a_syn_the_host_refuses_is_answered_with_rst_or_icmp_unreachable() {
    use crate::abi::Command;
    for (how, refusal) in [(0, Refusal::Reset), (1, Refusal::Unreachable)] {
        let (mut net, c) = connected();
        net.auto_accept = false;
        let (local, remote) = (addr("10.0.0.2:50000"), addr("93.184.216.34:80"));
        let syn = tcp_packet(local, remote, TcpControl::Syn, 5, None, 65535, None, &[]);
        net.send(c, &syn);
        let events = net.take_events();
        let Some(&Event::TcpIncoming { conn, .. }) = events.first() else { panic!("{events:?}") };
        assert!(net.take_inbox(c).is_empty(), "no answer before the host decides");
        let mut refuse = Vec::new();
        Command::<&[u8]>::Refuse { conn, how }.write(&mut refuse);
        assert_eq!(crate::commands::apply(&mut net.server, net.now, &refuse), Ok(()));
        net.pump();
        assert_eq!(net.take_events(), vec![Event::TcpClosed { conn, reason: CloseReason::Refused as u8 }]);
        let answer = net.take_inbox(c);
        assert_eq!(answer.len(), 1, "{refusal:?}");
        if refusal == Refusal::Reset {
            let rst = parse_tcp(&answer[0]).unwrap();
            assert!(rst.is(TcpControl::Rst));
            assert_eq!((rst.src, rst.dst, rst.ack), (remote, local, Some(6)));
        } else {
            let (from, to, protocol, icmp) = parse_ip(&answer[0]);
            assert_eq!((from, to, protocol), (remote.ip(), local.ip(), IpProtocol::Icmp));
            assert_eq!((icmp[0], icmp[1]), (3, 1), "destination unreachable: host");
            assert_eq!(&icmp[8..36], &syn[..28], "the SYN's IP header and first 8 bytes");
        }
        assert_eq!(net.server.connection_count(), 0);
        assert_eq!(net.server.tcp_refuse(net.now, conn, refusal), Err(RequestError::Tcp(TcpError::UnknownConnection)));
    }
}

/// The host sets TCP's limits with `set_tcp_limits` (as `wgn_tcp_limits` does) and they hold
/// from the next SYN: one past a peer's connections is refused with RST and counted in the
/// totals; the open connection's own stats read back.
#[test]
fn tcp_limits_the_host_sets_hold_from_the_next_syn() {
    let (mut net, c) = connected();
    net.server.set_tcp_limits(Limits { connections_per_peer: 1, ..DEFAULT_LIMITS });
    let tcp = open(&mut net, c, addr("10.0.0.2:40000"), addr("93.184.216.34:80"));
    let (local, remote) = (addr("10.0.0.2:40001"), addr("93.184.216.34:80"));
    net.send(c, &syn(local, remote, 7));
    assert_one_rst(&mut net, c, remote, local, 8);
    assert!(net.take_events().is_empty());
    assert_eq!(net.server.connection_count(), 1);
    assert_eq!(net.server.tcp_totals().refused_over_limit, 1);
    let stats = net.server.connection_stats(tcp.id).expect("the open connection's stats");
    assert!(stats.cwnd > 0 && stats.peer_window == 65535, "{stats:?}");
    assert_eq!(net.server.connection_stats(tcp.id + 1), None);
}

#[test]
fn tcp_connect_out_to_a_client() {
    let (mut net, c) = connected();
    let (local, remote) = (addr("192.0.2.200:8080"), addr("10.0.0.2:7000"));
    let (id, _) = net.server.tcp_connect(net.now, local, remote).unwrap();
    net.pump();
    // The host may write at once; it goes out once the handshake completes.
    assert!(matches!(net.take_events()[..], [Event::TcpWritable { conn, .. }] if conn == id));
    let segments = net.segments(c);
    assert_eq!(segments.len(), 1, "{segments:?}");
    let syn = &segments[0];
    assert!(syn.is(TcpControl::Syn) && syn.ack.is_none(), "{syn:?}");
    assert_eq!((syn.src, syn.dst), (local, remote));
    // SYN-ACK from the client opens it.
    let mut tcp = TcpPeer { client: c, local: remote, remote: local, snd_nxt: 777, rcv_nxt: syn.seq.wrapping_add(1), id };
    net.send(c, &tcp_packet(remote, local, TcpControl::Syn, 777, Some(tcp.rcv_nxt), 65535, Some(1360), &[]));
    tcp.snd_nxt = 778;
    assert_eq!(net.take_events(), vec![Event::TcpEstablished { conn: id, peer: 0 }]);
    assert_eq!(net.segments(c).pop().map(|s| s.ack), Some(Some(778)), "the handshake's ACK");
    tcp.send_data(&mut net, b"hi");
    assert_eq!(net.take_events(), vec![Event::TcpData { conn: id, bytes: b"hi".to_vec() }]);

    // A connect to a client that answers with RST is refused.
    let (id, picked) = net.server.tcp_connect(net.now, addr("192.0.2.200:0"), addr("10.0.0.2:7001")).unwrap();
    net.pump();
    let syn = net.segments(c).pop().unwrap();
    assert!(syn.is(TcpControl::Syn));
    assert!((49152..=65535).contains(&syn.src.port()), "ephemeral port {syn:?}");
    assert_eq!(syn.src, picked);
    net.send(c, &tcp_packet(syn.dst, syn.src, TcpControl::Rst, 0, Some(syn.seq.wrapping_add(1)), 0, None, &[]));
    assert_eq!(net.take_events(), vec![Event::TcpWritable { conn: id, room: 65536 }, Event::TcpClosed { conn: id, reason: 2 }]);

    // No route, and mixed families, are refused up front.
    assert_eq!(net.server.tcp_connect(net.now, local, addr("10.9.9.9:80")), Err(RequestError::NoRoute));
    assert_eq!(net.server.tcp_connect(net.now, local, addr("[fd00::2]:80")), Err(RequestError::Tcp(TcpError::Unaddressable)));
}

#[test]
fn an_icmp_unreachable_from_the_peer_ends_our_connect_and_a_stray_one_is_counted() {
    let (mut net, c) = connected();
    let (id, _) = net.server.tcp_connect(net.now, addr("192.0.2.200:0"), addr("10.0.0.2:7002")).unwrap();
    net.pump();
    net.take_events();
    let syn = net.segments(c).pop().unwrap();
    // What the peer's side answers our SYN with, quoting it (sequence number `seq`).
    let answer = |seq: u32, why: Unreachable| {
        let mut icmp = Vec::new();
        wire::unreachable(&tcp_packet(syn.src, syn.dst, TcpControl::Syn, seq, None, 65535, None, &[]), why, &mut icmp).unwrap();
        icmp
    };
    // Not our SYN's sequence number: dropped, counted, the connect goes on.
    net.send(c, &answer(syn.seq.wrapping_add(1), Unreachable::Host));
    assert_eq!((net.take_events(), net.dropped(DropReason::Unsupported)), (vec![], 1));
    // Our SYN's: the connect ends, refused (port unreachable: no one listens there).
    net.send(c, &answer(syn.seq, Unreachable::Port));
    assert_eq!(net.take_events(), vec![Event::TcpClosed { conn: id, reason: CloseReason::Refused as u8 }]);
    assert_eq!(net.server.connection_count(), 0);
    // Once it is gone, the same answer finds nothing.
    net.send(c, &answer(syn.seq, Unreachable::Net));
    assert_eq!((net.take_events(), net.dropped(DropReason::Unsupported)), (vec![], 2));
    assert_eq!(net.dropped(DropReason::InnerMalformed), 0);
}

/// An ICMP error about a UDP datagram we sent is the host's to hand to its socket, when it
/// comes from the peer our datagrams to that address go through; from another peer it is
/// forged or lost its way (RFC 5927 4.1): dropped and counted.
#[test]
fn an_icmp_unreachable_about_our_udp_is_an_event_only_from_the_peer_it_went_through() {
    let mut net = Net::new();
    let (a, b) = (net.add_client(1), net.add_client(2));
    net.handshake(a);
    net.handshake(b);
    let ours = addr("192.0.2.200:5353");
    // What a's side answers our datagram to 10.0.0.2:53 with.
    let mut datagram = Vec::new();
    wire::build_udp(ours, addr("10.0.0.2:53"), b"question", 1420, &mut datagram).unwrap();
    for why in Unreachable::ALL {
        let mut icmp = Vec::new();
        wire::unreachable(&datagram, why, &mut icmp).unwrap();
        net.send(a, &icmp);
        let peer = net.clients[a].peer;
        assert_eq!(net.take_events(), vec![Event::UdpUnreachable { peer, local: ours, remote: addr("10.0.0.2:53"), reason: why as u8 }]);
    }
    // b says the same of a datagram to 10.0.0.2: built as from 10.0.0.3 (b may send from
    // there), then the quoted destination made 10.0.0.2 (the quote starts at byte 28).
    let mut datagram = Vec::new();
    wire::build_udp(ours, addr("10.0.0.3:53"), b"question", 1420, &mut datagram).unwrap();
    let mut icmp = Vec::new();
    wire::unreachable(&datagram, Unreachable::Port, &mut icmp).unwrap();
    icmp[28 + 19] = 2;
    Icmpv4Packet::new_unchecked(&mut icmp[20..]).fill_checksum();
    net.send(b, &icmp);
    assert_eq!((net.take_events(), net.dropped(DropReason::Unsupported)), (vec![], 1));
    assert_eq!(net.dropped(DropReason::SourceNotAllowed), 0);
}

// ---------------------------------------------------------------------------------------
// 3. Backpressure

/// Data the host holds unconsumed closes the window; consuming reopens it.
#[test]
fn tcp_unconsumed_data_closes_the_window_and_consuming_reopens_it() {
    let (mut net, c) = connected();
    let mut tcp = open(&mut net, c, addr("10.0.0.2:50000"), addr("93.184.216.34:80"));
    // The window is 65536 bytes; without window scaling the field tops at 65535.
    let mut window = 65535u32;
    let mut sent: Vec<u8> = Vec::new();
    let mut windows = Vec::new();
    while window > 0 {
        let len = window.min(1360) as usize;
        let chunk: Vec<u8> = (sent.len()..sent.len() + len).map(|i| (i % 251) as u8).collect();
        tcp.send_data(&mut net, &chunk);
        sent.extend_from_slice(&chunk);
        net.advance(20);
        let acks = net.segments(c);
        let last = acks.last().unwrap_or_else(|| panic!("no ACK after {} bytes", sent.len()));
        assert_eq!(last.ack, Some(tcp.snd_nxt));
        // The host holds what it was given: the window shrinks by exactly that.
        assert_eq!(last.window as usize, (65536 - sent.len()).min(65535), "after {} bytes", sent.len());
        window = last.window as u32;
        windows.push(window);
    }
    assert_eq!(sent.len(), 65536, "the whole window");
    assert_eq!(data_of(&net.take_events(), tcp.id), sent, "delivered at once, in order");
    assert!(windows.windows(2).all(|w| w[1] < w[0]), "{windows:?}");

    // Data past a closed window is not taken.
    let extra = tcp.segment(TcpControl::Psh, b"overflow");
    net.send(c, &extra);
    net.advance(20);
    for segment in net.segments(c) {
        assert_eq!((segment.ack, segment.window), (Some(tcp.snd_nxt), 0), "{segment:?}");
    }
    assert!(net.take_events().is_empty());

    // Consuming some reopens the window by that much, with an update to the client.
    net.server.tcp_consumed(net.now, tcp.id, 3000).unwrap();
    net.pump();
    let update = net.segments(c).pop().expect("a window update");
    assert_eq!((update.ack, update.window), (Some(tcp.snd_nxt), 3000));

    // All of it: the window is fully open again.
    net.server.tcp_consumed(net.now, tcp.id, 65536 - 3000).unwrap();
    net.pump();
    let update = net.segments(c).pop().expect("a window update");
    assert_eq!((update.ack, update.window), (Some(tcp.snd_nxt), 65535));

    // And the connection still carries data.
    tcp.send_data(&mut net, b"after");
    assert_eq!(net.take_events(), vec![Event::TcpData { conn: tcp.id, bytes: b"after".to_vec() }]);
}

/// A client's FIN that arrives on its own, past data held behind a hole, used to index
/// past the end of the held data and take the whole server down (found on a lossy path
/// with a real client). The FIN must wait, and count once the hole fills.
#[test]
fn tcp_a_bare_fin_past_a_hole_waits_for_the_hole() {
    let (mut net, c) = connected();
    let mut tcp = open(&mut net, c, addr("10.0.0.2:50000"), addr("93.184.216.34:9"));
    let hole = tcp.snd_nxt;
    tcp.snd_nxt = hole.wrapping_add(100); // the first 100 bytes are "lost"
    tcp.send_data(&mut net, &[2; 100]);
    tcp.send_fin(&mut net);
    let events = net.take_events();
    assert!(events.is_empty(), "nothing is in order yet: {events:?}");
    net.send(c, &tcp_packet(tcp.local, tcp.remote, TcpControl::Psh, hole, Some(tcp.rcv_nxt), 65535, None, &[1; 100]));
    let mut expected = vec![1u8; 100];
    expected.extend_from_slice(&[2; 100]);
    let events = net.take_events();
    assert_eq!(data_of(&events[..events.len() - 1], tcp.id), expected);
    assert_eq!(events.last(), Some(&Event::TcpEof { conn: tcp.id }));
    assert_eq!(net.segments(c).last().unwrap().ack, Some(tcp.snd_nxt), "data and FIN acknowledged");
}

#[test]
fn tcp_send_buffer_full_reports_writable_when_drained() {
    let mut net = Net::with_tcp(TcpConfig { max_send_buffer: 4096, ..tcp_config() });
    let c = net.add_client(1);
    net.handshake(c);
    let mut tcp = open(&mut net, c, addr("10.0.0.2:50000"), addr("93.184.216.34:80"));
    let data: Vec<u8> = (0..10_000).map(|i| (i % 253) as u8).collect();
    assert_eq!(net.server.tcp_send(tcp.id, &data), Ok(4096));
    net.pump();
    let mut received = Vec::new();
    for segment in net.segments(c) {
        tcp.accept(&segment);
        received.extend_from_slice(&segment.payload);
    }
    assert_eq!(received, data[..4096]);
    assert!(net.take_events().is_empty(), "not writable until acknowledged");
    tcp.send_ack(&mut net);
    assert_eq!(net.take_events(), vec![Event::TcpWritable { conn: tcp.id, room: 4096 }]);
    assert_eq!(net.server.tcp_send(tcp.id, &data[4096..]), Ok(4096));
}

/// The host writes through commands, up to the room it was granted, and the engine applies
/// them in order: data then FIN. Writing past the grant is the host's bug, reported.
#[test]
fn tcp_commands_write_within_the_grant_in_order() {
    use crate::abi::Command;
    use crate::commands::{apply, CommandError};
    let mut net = Net::with_tcp(TcpConfig { max_send_buffer: 4096, ..tcp_config() });
    let c = net.add_client(1);
    net.handshake(c);
    let tcp = open(&mut net, c, addr("10.0.0.2:50000"), addr("93.184.216.34:80"));
    let send = |conn: u32, bytes: &[u8]| {
        let mut command = Vec::new();
        Command::Send { conn, bytes }.write(&mut command);
        command
    };
    // finish_open saw the first grant: 4096 bytes. All of it in one batch...
    let mut commands = send(tcp.id, &[1; 4000]);
    commands.extend(send(tcp.id, &[2; 96]));
    assert_eq!(apply(&mut net.server, net.now, &commands), Ok(()));
    // ...and a byte more, before an ACK frees room, is the host's bug.
    let past = apply(&mut net.server, net.now, &send(tcp.id, &[3]));
    assert_eq!(past, Err(CommandError::PastGrant { conn: tcp.id, sent: 1, taken: 0 }));
    let mut shutdown = Vec::new();
    Command::<&[u8]>::Shutdown { conn: tcp.id }.write(&mut shutdown);
    assert_eq!(apply(&mut net.server, net.now, &shutdown), Ok(()));
    net.pump();
    let segments = net.segments(c);
    let received: Vec<u8> = segments.iter().flat_map(|s| s.payload.clone()).collect();
    assert_eq!(received.len(), 4096);
    assert!(received[..4000].iter().all(|&b| b == 1) && received[4000..].iter().all(|&b| b == 2));
    assert!(segments.last().unwrap().is(TcpControl::Fin), "FIN after the data: {segments:?}");
}

// ---------------------------------------------------------------------------------------
// 4. Resets

#[test]
fn tcp_rst_from_client_and_abort_from_host() {
    let (mut net, c) = connected();
    let tcp = open(&mut net, c, addr("10.0.0.2:50000"), addr("93.184.216.34:80"));
    net.send(c, &tcp_packet(tcp.local, tcp.remote, TcpControl::Rst, tcp.snd_nxt, None, 0, None, &[]));
    assert_eq!(net.take_events(), vec![Event::TcpClosed { conn: tcp.id, reason: 1 }]);
    assert_eq!(net.server.connection_count(), 0);

    let tcp = open(&mut net, c, addr("[fd00::2]:50000"), addr("[2001:db8::7]:443"));
    net.server.tcp_abort(tcp.id).unwrap();
    net.pump();
    let segments = net.segments(c);
    assert_eq!(segments.len(), 1, "{segments:?}");
    assert!(segments[0].is(TcpControl::Rst), "{segments:?}");
    assert_eq!((segments[0].src, segments[0].dst, segments[0].seq), (tcp.remote, tcp.local, tcp.rcv_nxt));
    assert_eq!(net.take_events(), vec![Event::TcpClosed { conn: tcp.id, reason: 3 }]);
    assert_eq!(net.server.connection_count(), 0);
    assert_eq!(net.server.tcp_abort(tcp.id), Err(RequestError::Tcp(TcpError::UnknownConnection)));
}

// ---------------------------------------------------------------------------------------
// 5. UDP

#[test]
fn udp_to_any_destination_and_back() {
    let (mut net, c) = connected();
    for (src, dst) in [(addr("10.0.0.2:5353"), addr("8.8.8.8:53")), (addr("[fd00::2]:5353"), addr("[2001:4860:4860::8888]:53"))] {
        net.send(c, &udp_packet(src, dst, b"query"));
        assert_eq!(net.take_events(), vec![Event::Udp { peer: 0, src, dst, payload: b"query".to_vec() }]);
        net.server.udp_send(net.now, dst, src, b"answer").unwrap();
        net.pump();
        let inbox = net.take_inbox(c);
        assert_eq!(inbox.len(), 1);
        assert_eq!(parse_udp(&inbox[0]), (dst, src, b"answer".to_vec()));
    }
    // An empty payload is a datagram too.
    net.send(c, &udp_packet(addr("10.0.0.2:1"), addr("1.1.1.1:9"), b""));
    assert_eq!(net.take_events(), vec![Event::Udp { peer: 0, src: addr("10.0.0.2:1"), dst: addr("1.1.1.1:9"), payload: vec![] }]);

    let from = addr("8.8.8.8:53");
    assert_eq!(net.server.udp_send(net.now, from, addr("10.9.9.9:5353"), b"x"), Err(RequestError::NoRoute));
    assert_eq!(net.server.udp_send(net.now, from, addr("[fd00::2]:5353"), b"x"), Err(RequestError::MixedFamilies));
    // The largest that fits the MTU, and one byte more.
    let to = addr("10.0.0.2:5353");
    assert_eq!(net.server.udp_send(net.now, from, to, &[7; MTU - 28 + 1]), Err(RequestError::TooBig));
    assert_eq!(net.server.udp_send(net.now, from, to, &[7; 70_000]), Err(RequestError::TooBig));
    let from6 = addr("[2001:db8::1]:53");
    assert_eq!(net.server.udp_send(net.now, from6, addr("[fd00::2]:1"), &[7; MTU - 48 + 1]), Err(RequestError::TooBig));
    net.server.udp_send(net.now, from, to, &[7; MTU - 28]).unwrap();
    net.pump();
    let inbox = net.take_inbox(c);
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].len(), MTU);
    assert_eq!(parse_udp(&inbox[0]), (from, to, vec![7; MTU - 28]));
}

#[test]
fn udp_checksum_is_not_verified_inside_the_tunnel() {
    // WireGuard authenticated every byte; a checksum cannot catch anything more.
    let (mut net, c) = connected();
    let (src, dst) = (addr("10.0.0.2:5353"), addr("8.8.8.8:53"));
    let mut packet = udp_packet(src, dst, b"query");
    let checksum_at = packet.len() - b"query".len() - 2;
    packet[checksum_at] ^= 0xff;
    net.send(c, &packet);
    assert_eq!(net.take_events(), vec![Event::Udp { peer: 0, src, dst, payload: b"query".to_vec() }]);
    assert_eq!(net.dropped(DropReason::InnerMalformed), 0);
}

/// A peer may have only so many UDP flows at once (the host sets the limit and the idle time
/// with `set_udp`, as `wgn_udp_limits` does): a datagram that would start one more is answered
/// with ICMP port unreachable, as a host with no socket there answers (RFC 1122 §4.1.3.1),
/// and counted; a flow quiet both ways for the idle time ends and frees its place (the host's
/// replies keep it alive, as outbound packets keep a NAT's mapping, RFC 4787 §4.3).
#[test]
fn udp_flows_past_the_peers_limit_get_port_unreachable_until_one_ends() {
    let (mut net, c) = connected();
    net.server.set_udp(UdpConfig { max_flows_per_peer: 1, flow_idle_us: 10_000_000 });
    let src = addr("10.0.0.2:5353");
    net.send(c, &udp_packet(src, addr("8.8.8.8:53"), b"one"));
    assert_eq!(net.take_events().len(), 1);
    let refused = udp_packet(src, addr("1.1.1.1:53"), b"two");
    net.send(c, &refused);
    assert!(net.take_events().is_empty());
    let answer = net.take_inbox(c);
    assert_eq!(answer.len(), 1);
    let (from, to, protocol, icmp) = parse_ip(&answer[0]);
    assert_eq!((from, to, protocol), (addr("1.1.1.1:53").ip(), src.ip(), IpProtocol::Icmp));
    assert_eq!((icmp[0], icmp[1]), (3, 3), "destination unreachable: port");
    assert_eq!(&icmp[8..36], &refused[..28], "the datagram's IP header and UDP header");
    assert_eq!(net.server.udp_flows(), (1, 1), "one flow open, one datagram refused");
    net.advance(5_000);
    net.server.udp_send(net.now, addr("8.8.8.8:53"), src, b"reply").unwrap();
    net.advance(5_000);
    assert_eq!(net.server.udp_flows(), (1, 1), "the reply kept the first flow alive");
    net.advance(5_000);
    assert_eq!(net.server.udp_flows(), (0, 1), "the first flow ended");
    net.send(c, &refused);
    assert_eq!(net.take_events().len(), 1);
    assert_eq!(net.server.udp_flows(), (1, 1));
}

/// ICMP errors we originate are rate-limited per peer (RFC 4443 2.4(f), RFC 1812 4.3.2.8):
/// ten at once, then one per 100 ms, whichever rule sends them — a flow past the limit, a
/// datagram the host refuses, a SYN the host refuses with ICMP. One held back is counted,
/// the connection still closes, and another peer's answers are its own.
#[test]
fn icmp_errors_to_a_peer_are_rate_limited_whatever_sends_them() {
    use crate::abi::Command;
    let (mut net, c) = connected();
    let other = net.add_client(2);
    net.handshake(other);
    net.auto_accept = false;
    net.server.set_udp(UdpConfig { max_flows_per_peer: 1, flow_idle_us: 60_000_000 });
    let src = addr("10.0.0.2:5353");
    let flood = |net: &mut Net, c: usize, src: SocketAddr, count: u16| {
        for port in 0..count {
            net.send(c, &udp_packet(src, SocketAddr::new(addr("192.0.2.99:1").ip(), 1000 + port), b"x"));
        }
        net.take_inbox(c).len()
    };
    net.send(c, &udp_packet(src, addr("8.8.8.8:53"), b"the one flow"));
    assert_eq!(net.take_events().len(), 1);
    assert_eq!(flood(&mut net, c, src, 11), 10, "a burst of ten");
    assert_eq!(net.dropped(DropReason::IcmpRateLimited), 1);

    let mut refuse = Vec::new();
    Command::<&[u8]>::UdpRefuse { from: src, to: addr("10.0.0.1:53"), why: Unreachable::Port as u8 }.write(&mut refuse);
    assert_eq!(crate::commands::apply(&mut net.server, net.now, &refuse), Ok(()));
    net.pump();
    assert!(net.take_inbox(c).is_empty(), "the host's refusal waits its turn too");
    assert_eq!(net.dropped(DropReason::IcmpRateLimited), 2);

    net.send(c, &tcp_packet(addr("10.0.0.2:50000"), addr("93.184.216.34:80"), TcpControl::Syn, 5, None, 65535, None, &[]));
    let Some(&Event::TcpIncoming { conn, .. }) = net.take_events().first() else { panic!("no SYN offered") };
    let mut refuse = Vec::new();
    Command::<&[u8]>::Refuse { conn, how: 1 }.write(&mut refuse);
    assert_eq!(crate::commands::apply(&mut net.server, net.now, &refuse), Ok(()));
    net.pump();
    assert_eq!(net.take_events(), vec![Event::TcpClosed { conn, reason: CloseReason::Refused as u8 }]);
    assert!(net.take_inbox(c).is_empty(), "no ICMP for the SYN");
    assert_eq!(net.dropped(DropReason::IcmpRateLimited), 3);

    net.send(other, &udp_packet(addr("10.0.0.3:5353"), addr("8.8.8.8:53"), b"its one flow"));
    net.take_events();
    assert_eq!(flood(&mut net, other, addr("10.0.0.3:5353"), 3), 3, "another peer has its own");

    net.advance(99);
    assert_eq!(flood(&mut net, c, src, 1), 0);
    net.advance(1);
    assert_eq!(flood(&mut net, c, src, 2), 1, "one more each 100 ms");
    assert_eq!(net.dropped(DropReason::IcmpRateLimited), 5);
}

/// A request the engine cannot carry out says why, in the words the host shows (the
/// messages `abi::request_message` shares with the host, and TCP's own).
#[test]
fn a_refused_request_says_why() {
    use crate::abi::request_message::{MIXED_FAMILIES, NO_ROUTE, TOO_BIG};
    for (error, text) in [
        (RequestError::NoRoute, NO_ROUTE),
        (RequestError::MixedFamilies, MIXED_FAMILIES),
        (RequestError::TooBig, TOO_BIG),
        (RequestError::Tcp(TcpError::UnknownConnection), "unknown connection"),
    ] {
        assert_eq!(error.to_string(), text, "{error:?}");
    }
}

// ---------------------------------------------------------------------------------------
// 6. ICMP echo

#[test]
fn icmp_echo_is_answered_from_the_destination() {
    let (mut net, c) = connected();

    let (src, dst): (Ipv4Addr, Ipv4Addr) = ("10.0.0.2".parse().unwrap(), "93.184.216.34".parse().unwrap());
    let icmp = Icmpv4Repr::EchoRequest { ident: 0x1234, seq_no: 9, data: b"are you there" };
    let request = ip_packet(IpAddr::V4(src), IpAddr::V4(dst), IpProtocol::Icmp, icmp.buffer_len(), |bytes| {
        icmp.emit(&mut Icmpv4Packet::new_unchecked(bytes), &ChecksumCapabilities::default())
    });
    net.send(c, &request);
    let inbox = net.take_inbox(c);
    assert_eq!(inbox.len(), 1);
    let (from, to, protocol, payload) = parse_ip(&inbox[0]);
    assert_eq!((from, to, protocol), (IpAddr::V4(dst), IpAddr::V4(src), IpProtocol::Icmp));
    let reply = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(payload).unwrap(), &ChecksumCapabilities::default()).unwrap();
    assert_eq!(reply, Icmpv4Repr::EchoReply { ident: 0x1234, seq_no: 9, data: b"are you there" });

    let (src, dst): (Ipv6Addr, Ipv6Addr) = ("fd00::2".parse().unwrap(), "2001:db8::7".parse().unwrap());
    let icmp = Icmpv6Repr::EchoRequest { ident: 0x4321, seq_no: 1, data: b"six" };
    let request = ip_packet(IpAddr::V6(src), IpAddr::V6(dst), IpProtocol::Icmpv6, icmp.buffer_len(), |bytes| {
        icmp.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(bytes), &ChecksumCapabilities::default())
    });
    net.send(c, &request);
    let inbox = net.take_inbox(c);
    assert_eq!(inbox.len(), 1);
    let (from, to, protocol, payload) = parse_ip(&inbox[0]);
    assert_eq!((from, to, protocol), (IpAddr::V6(dst), IpAddr::V6(src), IpProtocol::Icmpv6));
    let reply = Icmpv6Repr::parse(&dst, &src, &Icmpv6Packet::new_checked(payload).unwrap(), &ChecksumCapabilities::default()).unwrap();
    assert_eq!(reply, Icmpv6Repr::EchoReply { ident: 0x4321, seq_no: 1, data: b"six" });
    assert!(net.take_events().is_empty());
    assert_eq!(net.total_dropped(), 0);
}

// ---------------------------------------------------------------------------------------
// 7. Cryptokey routing

#[test]
fn source_outside_allowed_ips_is_dropped() {
    let (mut net, c) = connected();
    // UDP, TCP SYN and ping from 10.0.0.99, which this peer does not own.
    net.send(c, &udp_packet(addr("10.0.0.99:5353"), addr("8.8.8.8:53"), b"spoofed"));
    net.send(c, &tcp_packet(addr("10.0.0.99:5000"), addr("93.184.216.34:80"), TcpControl::Syn, 1, None, 65535, None, &[]));
    net.send(c, &udp_packet(addr("[fd00::99]:5353"), addr("[2001:db8::1]:53"), b"spoofed"));
    assert!(net.take_events().is_empty());
    assert!(net.take_inbox(c).is_empty(), "no answer to a spoofed source");
    assert_eq!(net.server.connection_count(), 0);
    assert_eq!(net.dropped(DropReason::SourceNotAllowed), 3);
    assert_eq!(net.total_dropped(), 3);
    // The peer's own address still works.
    net.send(c, &udp_packet(addr("10.0.0.2:5353"), addr("8.8.8.8:53"), b"ok"));
    assert_eq!(net.take_events().len(), 1);
}

#[test]
fn outgoing_packets_without_route_or_endpoint_are_counted() {
    let (mut net, _) = connected();
    // The public API refuses an unrouted destination before building anything.
    assert_eq!(net.server.udp_send(net.now, addr("8.8.8.8:53"), addr("10.9.9.9:53"), b"x"), Err(RequestError::NoRoute));
    assert_eq!(net.dropped(DropReason::NoRoute), 0);
    // A packet that reaches the tunnel without a route (every outgoing packet takes this
    // path, TCP's included) is dropped and counted.
    let mut packet = Vec::new();
    crate::wire::build_udp(addr("8.8.8.8:53"), addr("10.9.9.9:53"), b"x", MTU, &mut packet).unwrap();
    let sent_before = net.sent.len();
    let server = &mut net.server;
    link!(server).send_packet(&packet);
    net.pump();
    assert_eq!(net.dropped(DropReason::NoRoute), 1);
    assert_eq!(net.sent.len(), sent_before, "nothing sent");

    // A peer the server has never heard from and has no endpoint for.
    let n = net.add_client(2);
    let to = SocketAddr::new(IpAddr::V4(net.clients[n].v4), 9);
    let sent_before = net.sent.len();
    assert_eq!(net.server.udp_send(net.now, addr("8.8.8.8:53"), to, b"x"), Ok(()));
    net.pump();
    assert_eq!(net.dropped(DropReason::NoEndpoint), 1);
    assert_eq!(net.sent.len(), sent_before, "nothing sent");
}

/// The ABI selftest (`wgn_abi_selftest`, read back field by field by ts/wasm/abi.test.ts)
/// replaces whatever the log held with one event of each kind, with known values.
#[test]
fn the_abi_selftest_replaces_the_event_log_with_one_event_of_each_kind() {
    let (mut net, _) = connected();
    net.server.ping(net.now, "192.0.2.200".parse().unwrap(), "10.0.0.2".parse().unwrap(), 1, 1).unwrap();
    assert!(!net.server.events().is_empty(), "a datagram waits in the log");
    net.server.write_selftest_events();
    let expected = vec![
        Event::Datagram { to: addr("192.0.2.1:51820"), bytes: vec![1, 2, 3] },
        Event::TcpIncoming { conn: 0x0102_0304, peer: 2, remote: addr("10.0.0.2:40000"), local: addr("[2001:db8::1]:443") },
        Event::TcpData { conn: 0x0102_0304, bytes: vec![9, 8, 7, 6] },
        Event::TcpEof { conn: 5 },
        Event::TcpWritable { conn: 6, room: 70_000 },
        Event::TcpClosed { conn: 7, reason: CloseReason::TimedOut as u8 },
        Event::Udp { peer: 3, src: addr("10.0.0.2:5353"), dst: addr("8.8.8.8:53"), payload: b"dns".to_vec() },
        Event::TcpEstablished { conn: 8, peer: 4 },
        Event::UnknownPeer { public_key: [0xab; 32], from: addr("[fd00::1]:1") },
        Event::InnerPacket { direction: 1, peer: 9, bytes: vec![0x45, 0] },
        Event::EchoReply { peer: 10, from: addr("[fd00::7]:0"), ident: 0x1234, seq: 0xfffe },
        Event::UdpUnreachable { peer: 11, local: addr("10.0.0.2:5353"), remote: addr("[2001:db8::1]:53"), reason: 2 },
    ];
    assert_eq!(decode(net.server.events()), expected);
}

// ---------------------------------------------------------------------------------------
// 8. Malformed input

/// The fuzz inputs are the same on every run.
use crate::test_rng::XorShift as Rng;

/// Each datagram is dropped and counted under `reason`, and nothing else happens.
fn assert_dropped(net: &mut Net, datagram: &[u8], reason: DropReason) {
    let before = net.dropped(reason);
    let total = net.total_dropped();
    let sent = net.sent.len();
    net.deliver_from(addr("192.0.2.66:6666"), datagram);
    assert_eq!(net.dropped(reason), before + 1, "{reason} for {} bytes", datagram.len());
    assert_eq!(net.total_dropped(), total + 1, "only {reason}");
    assert_eq!(net.sent.len(), sent, "no reply");
    assert!(net.take_events().is_empty());
}

#[test]
fn malformed_datagrams_are_counted_by_reason() {
    let (mut net, c) = connected();
    assert_dropped(&mut net, &[], DropReason::Malformed);
    assert_dropped(&mut net, &[4, 0, 0], DropReason::Malformed);
    assert_dropped(&mut net, &[9; 100], DropReason::Malformed);
    assert_dropped(&mut net, &[0; 148], DropReason::Malformed);
    // The right type with nonzero reserved bytes, and the right type with the wrong size.
    let mut reserved = vec![0u8; 148];
    reserved[0] = 1;
    reserved[2] = 1;
    assert_dropped(&mut net, &reserved, DropReason::Malformed);
    let mut wrong_size = vec![0u8; 149];
    wrong_size[0] = 1;
    assert_dropped(&mut net, &wrong_size, DropReason::Malformed);
    let mut short_data = vec![0u8; 31];
    short_data[0] = 4;
    assert_dropped(&mut net, &short_data, DropReason::Malformed);

    // Handshake-sized garbage fails mac1.
    let mut init = vec![0x5a; 148];
    init[..4].copy_from_slice(&[1, 0, 0, 0]);
    assert_dropped(&mut net, &init, DropReason::AuthFailed);
    let mut response = vec![0x5a; 92];
    response[..4].copy_from_slice(&[2, 0, 0, 0]);
    assert_dropped(&mut net, &response, DropReason::AuthFailed);

    // Data packets for the live session: the largest a UDP datagram can be fails
    // authentication; anything larger (which boringtun would panic on) is malformed.
    let receiver = net.sent_data_receiver_index();
    for (len, reason) in [(65_527, DropReason::AuthFailed), (65_528, DropReason::Malformed), (70_000, DropReason::Malformed)] {
        let mut oversized = vec![0u8; len];
        oversized[0] = 4;
        oversized[4..8].copy_from_slice(&receiver);
        oversized[8..16].copy_from_slice(&1_000_000u64.to_le_bytes()); // an unused counter
        assert_dropped(&mut net, &oversized, reason);
    }

    // A data packet for a session index nobody gave out.
    let mut data = vec![0u8; 64];
    data[0] = 4;
    data[4..8].copy_from_slice(&0xffff_ff00u32.to_le_bytes());
    assert_dropped(&mut net, &data, DropReason::UnknownPeer);
    // This peer's, for a session index it never gave out: one whose slot (the low bits mod 8,
    // boringtun's ring of sessions) holds the live session, and one whose slot is empty.
    let live = u32::from_le_bytes(net.sent_data_receiver_index());
    for (receiver, reason) in [(live + 8, DropReason::UnknownPeer), (live + 1, DropReason::NoSession)] {
        data[4..8].copy_from_slice(&receiver.to_le_bytes());
        assert_dropped(&mut net, &data, reason);
    }

    // A data packet for the real session that fails authentication.
    let mut forged = vec![0u8; 64];
    forged[0] = 4;
    forged[4..8].copy_from_slice(&net.sent_data_receiver_index());
    forged[8..16].copy_from_slice(&1_000_001u64.to_le_bytes());
    assert_dropped(&mut net, &forged, DropReason::AuthFailed);

    // The same data packet twice: the second is a replay.
    let datagram = net.send(c, &udp_packet(addr("10.0.0.2:1"), addr("8.8.8.8:53"), b"once"));
    assert_eq!(net.take_events().len(), 1);
    assert_dropped(&mut net, &datagram, DropReason::Replay);
    // Replayed from the client's own address, too.
    net.deliver(c, &datagram);
    assert!(net.take_events().is_empty());
    assert_eq!(net.dropped(DropReason::Replay), 2);

    // A handshake initiation replayed: the timestamp is not newer.
    net.advance(10);
    let mut buf = vec![0; BUF];
    let stale_init = match net.clients[c].tunn.format_handshake_initiation(&mut buf, true) {
        TunnResult::WriteToNetwork(bytes) => bytes.to_vec(),
        other => panic!("{other:?}"),
    };
    net.deliver(c, &stale_init); // accepted: a fresh initiation
    let replay = net.dropped(DropReason::Replay);
    net.deliver_from(addr("192.0.2.66:6666"), &stale_init);
    assert_eq!(net.dropped(DropReason::Replay), replay + 1);

    assert!(net.clients[c].errors.is_empty(), "{:?}", net.clients[c].errors);
}

impl Net {
    /// The receiver index on client 0's data packets (the server's session index), read
    /// from a keepalive the client encrypts and never sends.
    fn sent_data_receiver_index(&mut self) -> [u8; 4] {
        let client = &mut self.clients[0];
        match client.tunn.encapsulate(&[], &mut client.buf) {
            TunnResult::WriteToNetwork(bytes) => bytes[4..8].try_into().unwrap(),
            other => panic!("{other:?}"),
        }
    }
}

/// A handshake from a key we do not know is dropped, counted, and reported to the host
/// at most once a minute per key; one for another server fails mac1 and is not news.
#[test]
fn initiation_from_an_unknown_key_is_dropped_and_reported() {
    let mut net = Net::new();
    net.add_client(1);
    let stranger = [0x77; 32];
    let mut tunn = Tunn::new(StaticSecret::from(stranger), net.server_public(), None, None, 9, None);
    let mut buf = vec![0; BUF];
    let from = addr("203.0.113.9:1234");
    for _ in 0..3 {
        let TunnResult::WriteToNetwork(init) = tunn.format_handshake_initiation(&mut buf, true) else { panic!() };
        let init = init.to_vec();
        net.deliver_from(from, &init);
    }
    let public = *PublicKey::from(&StaticSecret::from(stranger)).as_bytes();
    assert_eq!(net.take_events(), vec![Event::UnknownPeer { public_key: public, from }]);
    assert_eq!((net.dropped(DropReason::UnknownPeer), net.total_dropped()), (3, 3));
    assert!(net.sent.is_empty(), "no reply");
    net.now += 61_000.0;
    let TunnResult::WriteToNetwork(init) = tunn.format_handshake_initiation(&mut buf, true) else { panic!() };
    let init = init.to_vec();
    net.deliver_from(from, &init);
    assert_eq!(net.take_events().len(), 1, "reported again a minute later");

    // An initiation for another server (mac1 under the wrong key) fails mac1.
    let other_server = PublicKey::from(&StaticSecret::from([0x99; 32]));
    let mut tunn = Tunn::new(StaticSecret::from([1; 32]), other_server, None, None, 9, None);
    let init = match tunn.format_handshake_initiation(&mut buf, false) {
        TunnResult::WriteToNetwork(bytes) => bytes.to_vec(),
        other => panic!("{other:?}"),
    };
    assert_dropped(&mut net, &init, DropReason::AuthFailed);
}

#[test]
fn fuzzed_datagrams_never_panic_and_the_server_keeps_working() {
    let (mut net, c) = connected();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let receiver = net.sent_data_receiver_index();
    let from = addr("192.0.2.66:6666");
    let mut count = 0u64;
    let total = net.total_dropped();

    // Random datagrams; half get a valid header so they reach deeper.
    for _ in 0..4000 {
        let len = match rng.below(10) {
            0 => rng.below(4),
            1 => [148, 92, 64, 32][rng.below(4)],
            2 => rng.below(70_000),
            _ => rng.below(300),
        };
        let mut datagram = rng.bytes(len);
        if len >= 8 && rng.below(2) == 0 {
            datagram[..4].copy_from_slice(&[1 + rng.below(4) as u8, 0, 0, 0]);
            if rng.below(2) == 0 {
                datagram[4..8].copy_from_slice(&receiver);
            }
        }
        net.server.receive(net.now, from, &datagram);
        count += 1;
    }

    // Bit flips of real datagrams the server already accepted.
    assert_eq!(net.total_dropped() - total, count);
    net.advance(10); // a newer handshake timestamp
    let mut buf = vec![0; BUF];
    let init = match net.clients[c].tunn.format_handshake_initiation(&mut buf, true) {
        TunnResult::WriteToNetwork(bytes) => bytes.to_vec(),
        other => panic!("{other:?}"),
    };
    net.deliver(c, &init);
    let data = net.send(c, &udp_packet(addr("10.0.0.2:1"), addr("8.8.8.8:53"), b"flip me"));
    assert_eq!(net.take_events().len(), 1, "the real datagram was accepted");
    let total = net.total_dropped();
    count = 0;
    for original in [&init, &data] {
        for bit in 0..original.len() * 8 {
            let mut flipped = original.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            net.server.receive(net.now, from, &flipped);
            count += 1;
        }
    }
    net.pump();

    // The fixed seed reaches past the first checks: every outer reason shows up.
    use DropReason::*;
    for reason in [Malformed, AuthFailed, UnknownPeer, Replay, UnderLoad] {
        assert!(net.dropped(reason) > 0, "{reason}");
    }
    // Every one of them was dropped and counted once; none became an event.
    assert_eq!(net.total_dropped() - total, count);
    assert!(net.take_events().is_empty());
    assert_eq!(net.dropped(DropReason::UnderLoad) > 0, net.sent.iter().any(|(_, d)| message_type(d) == 3));
    assert_eq!(net.server.peer(0).unwrap().stats().endpoint, Some(net.clients[c].endpoint), "garbage did not move the peer");

    // Still working: the existing session…
    net.advance(1_100);
    let (src, dst) = (addr("10.0.0.2:1"), addr("8.8.8.8:53"));
    net.send(c, &udp_packet(src, dst, b"unharmed"));
    assert_eq!(net.take_events(), vec![Event::Udp { peer: 0, src, dst, payload: b"unharmed".to_vec() }]);
    // …and a fresh handshake (the rate limiter has reset) with UDP both ways.
    let fresh = net.add_client(2);
    net.handshake(fresh);
    let (src, dst) = (addr("10.0.0.3:1"), addr("8.8.8.8:53"));
    net.send(fresh, &udp_packet(src, dst, b"still here"));
    assert_eq!(net.take_events(), vec![Event::Udp { peer: 1, src, dst, payload: b"still here".to_vec() }]);
    net.server.udp_send(net.now, dst, src, b"yes").unwrap();
    net.pump();
    assert_eq!(parse_udp(&net.take_inbox(fresh)[0]), (dst, src, b"yes".to_vec()));
}

// ---------------------------------------------------------------------------------------
// 9. Rate limiting

/// A fresh initiation from client `c`'s key (a new `Tunn`, so a new timestamp).
fn fresh_initiation(net: &Net, c: usize) -> (Tunn, Vec<u8>) {
    let mut tunn = Tunn::new(StaticSecret::from(net.clients[c].secret), net.server_public(), None, None, 50, None);
    let mut buf = vec![0; BUF];
    let init = match tunn.format_handshake_initiation(&mut buf, false) {
        TunnResult::WriteToNetwork(bytes) => bytes.to_vec(),
        other => panic!("{other:?}"),
    };
    (tunn, init)
}

#[test]
fn initiation_flood_gets_cookie_replies_until_the_next_second() {
    let mut net = Net::new();
    let c = net.add_client(1);
    let from = net.clients[c].endpoint;
    let mut last = None;
    for i in 0..110 {
        let (tunn, init) = fresh_initiation(&net, c);
        let sent = net.sent.len();
        net.server.receive(net.now, from, &init);
        let events = decode(net.server.events());
        net.server.clear_events();
        assert_eq!(events.len(), 1, "initiation {i}: {events:?}");
        let Event::Datagram { to, bytes } = &events[0] else { panic!("{events:?}") };
        assert_eq!(*to, from);
        net.sent.push((*to, bytes.clone()));
        if i < 100 {
            assert_eq!((message_type(bytes), bytes.len()), (2, 92), "initiation {i} answered");
        } else {
            assert_eq!((message_type(bytes), bytes.len()), (3, 64), "initiation {i} gets a cookie");
            last = Some((tunn, bytes.clone()));
        }
        assert_eq!(net.sent.len(), sent + 1);
    }
    assert_eq!(net.dropped(DropReason::UnderLoad), 10);

    // A client that took the cookie can still get through under load (mac2).
    let (mut tunn, cookie) = last.unwrap();
    let mut buf = vec![0; BUF];
    assert!(matches!(tunn.decapsulate(Some(SERVER_OUTER), &cookie, &mut buf), TunnResult::Done));
    let init = match tunn.format_handshake_initiation(&mut buf, true) {
        TunnResult::WriteToNetwork(bytes) => bytes.to_vec(),
        other => panic!("{other:?}"),
    };
    net.server.receive(net.now, from, &init);
    let events = decode(net.server.events());
    net.server.clear_events();
    assert!(matches!(&events[..], [Event::Datagram { bytes, .. }] if message_type(bytes) == 2), "{events:?}");
    assert_eq!(net.dropped(DropReason::UnderLoad), 10);

    // Still under load within the same second…
    net.advance(900);
    let (_, init) = fresh_initiation(&net, c);
    net.deliver(c, &init);
    assert_eq!(message_type(&net.sent.last().unwrap().1), 3);
    assert_eq!(net.dropped(DropReason::UnderLoad), 11);

    // …and at the first tick a second after the last reset, poll resets the limiter: a
    // normal handshake works. (A fresh Tunn: the flood's timestamps used the real clock.)
    net.advance(300);
    let (tunn, init) = fresh_initiation(&net, c);
    net.clients[c].tunn = tunn;
    net.deliver(c, &init);
    assert_eq!(message_type(&net.sent.last().unwrap().1), 2, "a handshake response");
    assert_eq!(net.dropped(DropReason::UnderLoad), 11);
    let (src, dst) = (addr("10.0.0.2:1"), addr("8.8.8.8:53"));
    net.send(c, &udp_packet(src, dst, b"through"));
    assert_eq!(net.take_events(), vec![Event::Udp { peer: 0, src, dst, payload: b"through".to_vec() }]);
}

// ---------------------------------------------------------------------------------------
// 10. Many peers

#[test]
fn many_peers_are_kept_apart() {
    let mut net = Net::new();
    let a = net.add_client(1);
    let b = net.add_client(2);
    net.handshake(a);
    net.handshake(b);
    let (ea, eb) = (net.clients[a].endpoint, net.clients[b].endpoint);
    assert_eq!(net.server.peer(0).unwrap().stats().endpoint, Some(ea));
    assert_eq!(net.server.peer(1).unwrap().stats().endpoint, Some(eb));

    let dst = addr("8.8.8.8:53");
    let (src_a, src_b) = (addr("10.0.0.2:1111"), addr("10.0.0.3:2222"));
    net.send(a, &udp_packet(src_a, dst, b"from a"));
    net.send(b, &udp_packet(src_b, dst, b"from b"));
    assert_eq!(
        net.take_events(),
        vec![
            Event::Udp { peer: 0, src: src_a, dst, payload: b"from a".to_vec() },
            Event::Udp { peer: 1, src: src_b, dst, payload: b"from b".to_vec() },
        ]
    );

    // Replies go to the owner's endpoint only.
    let sent = net.sent.len();
    net.server.udp_send(net.now, dst, src_b, b"to b").unwrap();
    net.pump();
    assert_eq!(net.sent.len(), sent + 1);
    assert_eq!(net.sent[sent].0, eb);
    assert!(net.take_inbox(a).is_empty());
    assert_eq!(parse_udp(&net.take_inbox(b)[0]), (dst, src_b, b"to b".to_vec()));
    net.server.udp_send(net.now, dst, addr("[fd00::2]:1111"), b"to a").unwrap_err(); // mixed families
    net.server.udp_send(net.now, addr("[2001:db8::1]:53"), addr("[fd00::2]:1111"), b"to a").unwrap();
    net.pump();
    assert_eq!(net.sent.last().unwrap().0, ea);
    assert!(net.take_inbox(b).is_empty());
    assert_eq!(net.take_inbox(a).len(), 1);

    // B may not use A's address.
    net.send(b, &udp_packet(src_a, dst, b"b as a"));
    assert!(net.take_events().is_empty());
    assert_eq!(net.dropped(DropReason::SourceNotAllowed), 1);

    // TCP from both: each connection is tagged with its peer.
    let ta = open(&mut net, a, addr("10.0.0.2:40000"), addr("93.184.216.34:80"));
    let tb = open(&mut net, b, addr("10.0.0.3:40000"), addr("93.184.216.34:80"));
    assert_ne!(ta.id, tb.id);
    net.server.tcp_send(tb.id, b"for b").unwrap();
    net.pump();
    assert!(net.take_inbox(a).is_empty());
    assert_eq!(net.segments(b)[0].payload, b"for b");
}

// ---------------------------------------------------------------------------------------
// 11. Roaming

#[test]
fn replies_follow_a_roaming_client() {
    let (mut net, c) = connected();
    let old = net.clients[c].endpoint;
    let new = addr("[2001:db8:1::2]:60000");
    net.clients[c].endpoint = new;
    let (src, dst) = (addr("10.0.0.2:5000"), addr("8.8.8.8:53"));
    let datagram = net.send(c, &udp_packet(src, dst, b"moved"));
    assert_eq!(net.take_events().len(), 1);
    assert_eq!(net.server.peer(0).unwrap().stats().endpoint, Some(new));

    let sent = net.sent.len();
    net.server.udp_send(net.now, dst, src, b"found you").unwrap();
    net.pump();
    assert_eq!(net.sent.len(), sent + 1);
    assert_eq!(net.sent[sent].0, new);
    assert_eq!(parse_udp(&net.take_inbox(c)[0]).2, b"found you");

    // Neither a replayed datagram nor garbage from elsewhere moves the endpoint back.
    net.deliver_from(old, &datagram);
    net.deliver_from(old, &[4; 80]);
    assert_eq!(net.server.peer(0).unwrap().stats().endpoint, Some(new));
    // TCP replies follow as well.
    let tcp = open(&mut net, c, addr("10.0.0.2:40000"), addr("93.184.216.34:80"));
    net.server.tcp_send(tcp.id, b"x").unwrap();
    net.pump();
    assert!(net.sent[sent..].iter().all(|(to, _)| *to == new));
}

// ---------------------------------------------------------------------------------------
// 12. Timers under virtual time

/// A cookie reply is not authenticated: anyone who saw our initiation's mac1 and knows the
/// peer's public key can make a valid one. It must not move the peer's endpoint.
#[test]
fn a_forged_cookie_reply_does_not_move_the_endpoint() {
    let mut net = Net::new();
    let endpoint = addr("192.0.2.2:40001");
    let c = net.add_client_with(1, Ipv4Addr::new(10, 0, 0, 2), Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2), endpoint, Some(endpoint));
    // The server initiates (it has something to send); an observer sees the initiation.
    net.server.udp_send(net.now, addr("8.8.8.8:53"), addr("10.0.0.2:5353"), b"hello").unwrap();
    net.pump();
    let (_, initiation) = net.sent.iter().find(|(_, d)| message_type(d) == 1).cloned().expect("an initiation");
    // The observer forges the cookie reply the client would send under load.
    let client_public = PublicKey::from(net.clients[c].public_key());
    let forger = boringtun::noise::rate_limiter::RateLimiter::new(&client_public, 0);
    let mut buf = vec![0u8; BUF];
    let Err(TunnResult::WriteToNetwork(cookie_reply)) = forger.verify_packet(Some(SERVER_OUTER), &initiation, &mut buf) else {
        panic!("no cookie reply");
    };
    assert_eq!(message_type(cookie_reply), 3);
    let cookie_reply = cookie_reply.to_vec();
    net.deliver_from(addr("203.0.113.66:6666"), &cookie_reply);
    assert_eq!(net.server.peer(0).unwrap().stats().endpoint, Some(endpoint), "the endpoint stays");
    // A real handshake from a new address does move it.
    net.clients[c].endpoint = addr("192.0.2.99:40001");
    net.handshake(c);
    assert_eq!(net.server.peer(0).unwrap().stats().endpoint, Some(addr("192.0.2.99:40001")));
}

/// `poll` says when it next wants to be called, in the host's milliseconds: with nothing due
/// sooner, the next run of the peers' timers, 250 ms after the last.
#[test]
fn poll_returns_the_next_deadline_in_host_milliseconds() {
    let (mut net, _) = connected();
    let now = net.now + 1_000.0;
    assert_eq!(net.server.poll(now), now + 250.0);
    assert_eq!(net.server.poll(now + 100.0), now + 250.0);
    assert_eq!(net.server.poll(now + 250.0), now + 500.0);
}

/// A cookie reply to our initiation, from a peer under load (whitepaper 5.4.7), is taken:
/// our retried initiation carries mac2 under that cookie, which the busy peer accepts.
#[test]
fn a_cookie_reply_to_our_initiation_is_taken_and_the_retry_carries_mac2() {
    let mut net = Net::new();
    let endpoint = addr("192.0.2.2:40001");
    // The endpoint is configured, but the client is elsewhere: nothing answers the initiations.
    let c = net.add_client_with(
        1,
        Ipv4Addr::new(10, 0, 0, 2),
        Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2),
        addr("192.0.2.99:1"),
        Some(endpoint),
    );
    net.server.udp_send(net.now, addr("8.8.8.8:53"), addr("10.0.0.2:5353"), b"hello").unwrap();
    net.pump();
    let initiations = |net: &Net| net.sent.iter().filter(|(_, d)| message_type(d) == 1).map(|(_, d)| d.clone()).collect::<Vec<_>>();
    let first = initiations(&net).pop().expect("an initiation");
    // The peer, under load, answers with a cookie reply instead of a response.
    let busy = boringtun::noise::rate_limiter::RateLimiter::new(&PublicKey::from(net.clients[c].public_key()), 0);
    let mut buf = vec![0u8; BUF];
    let Err(TunnResult::WriteToNetwork(cookie_reply)) = busy.verify_packet(Some(SERVER_OUTER), &first, &mut buf) else {
        panic!("no cookie reply");
    };
    let cookie_reply = cookie_reply.to_vec();
    net.deliver_from(endpoint, &cookie_reply);
    assert_eq!(net.total_dropped(), 0, "the cookie reply was taken");
    net.advance(5_500); // past REKEY_TIMEOUT (5 s): the initiation is sent again
    let retries = initiations(&net);
    assert_eq!(retries.len(), 2);
    assert!(busy.verify_packet(Some(SERVER_OUTER), &retries[1], &mut buf).is_ok(), "the retry's mac2 is under the cookie");
}

/// The server's poll, 250 ms of host time at a time, for `ms`; the client's timers do not run
/// (it is gone, or only answers). The times (ms after the start) at which it sent an initiation.
fn initiations_over(net: &mut Net, ms: u64) -> Vec<u64> {
    let mut at = Vec::new();
    for elapsed in (250..=ms).step_by(250) {
        let before = net.sent.len();
        net.now += 250.0;
        net.pump();
        at.extend(net.sent[before..].iter().filter(|(_, datagram)| message_type(datagram) == 1).map(|_| elapsed));
    }
    at
}

/// Whitepaper 6.2: data we sent that no packet answers within KEEPALIVE_TIMEOUT +
/// REKEY_TIMEOUT (15 s) starts a new handshake, so a peer that restarted (it lost its session
/// and cannot reach us itself) gets one. Here our data answers a packet of the same moment, as
/// an ACK answers the segment it acknowledges: boringtun's own check (data sent *after* the
/// last packet received, both stamped with its last timer run) misses that case.
#[test]
fn data_unanswered_for_15_s_starts_a_handshake_even_sent_in_the_moment_of_the_last_packet() {
    let (mut net, c) = connected();
    net.advance(1_000);
    net.send(c, &udp_packet(addr("10.0.0.2:5353"), addr("8.8.8.8:53"), b"question"));
    net.server.udp_send(net.now, addr("8.8.8.8:53"), addr("10.0.0.2:5353"), b"answer").unwrap();
    net.pump();
    assert_eq!(net.take_inbox(c).len(), 1, "the answer went out in the session");
    // The peer is silent from now on; the first initiation comes 15 s (and one run of the
    // timers, 250 ms) after the answer, and boringtun retries it every REKEY_TIMEOUT (6.4).
    let at = initiations_over(&mut net, 25_000);
    assert!(matches!(at.first(), Some(15_000..=15_250)), "initiations at {at:?} ms");
    let since = net.server.peer(net.clients[c].peer).unwrap().stats().since_handshake.unwrap();
    assert!(since < Duration::from_secs(10), "the client answered the initiation: a new session, {since:?} old");
}

/// A peer that never answers: the initiation is retried every REKEY_TIMEOUT and given up
/// REKEY_ATTEMPT_TIME (90 s) after the first (whitepaper 6.4); then nothing, until there is
/// data to send again.
#[test]
fn initiations_for_unanswered_data_are_given_up_after_90_s() {
    let (mut net, c) = connected();
    net.advance(1_000);
    net.send(c, &udp_packet(addr("10.0.0.2:5353"), addr("8.8.8.8:53"), b"question"));
    net.clients[c].endpoint = addr("192.0.2.222:1"); // gone: nothing reaches it
    net.server.udp_send(net.now, addr("8.8.8.8:53"), addr("10.0.0.2:5353"), b"answer").unwrap();
    net.pump();
    let at = initiations_over(&mut net, 200_000);
    let (first, last) = (at[0], *at.last().unwrap());
    assert!((15_000..=15_250).contains(&first), "initiations at {at:?} ms");
    assert!(at.len() >= 17 && last <= first + 90_000, "retried every 5 s for 90 s: {at:?}");
    net.server.udp_send(net.now, addr("8.8.8.8:53"), addr("10.0.0.2:5353"), b"again").unwrap();
    net.pump();
    assert_eq!(message_type(&net.sent.last().unwrap().1), 1, "new data starts them again");
}

/// ... and a packet from the peer within those 15 s answers our data: no handshake.
#[test]
fn data_answered_within_15_s_starts_no_handshake() {
    let (mut net, c) = connected();
    net.advance(1_000);
    net.send(c, &udp_packet(addr("10.0.0.2:5353"), addr("8.8.8.8:53"), b"question"));
    net.server.udp_send(net.now, addr("8.8.8.8:53"), addr("10.0.0.2:5353"), b"answer").unwrap();
    net.pump();
    assert!(initiations_over(&mut net, 14_000).is_empty());
    net.keepalive_from(c);
    assert_eq!(initiations_over(&mut net, 30_000), Vec::<u64>::new());
}

/// A SYN lost to a peer that restarted (its session gone) is sent again as soon as the new
/// handshake completes, not at the next retransmission timeout: the 6.2 handshake comes 15 s
/// after the first SYN, just after its fourth retransmission (1 + 2 + 4 + 8 s), and the next
/// one would be at 31 s, past a 20 s connect timeout.
#[test]
fn a_syn_waiting_on_a_backed_off_timer_goes_again_when_a_new_session_opens() {
    let (mut net, c) = connected();
    net.advance(1_000);
    // The peer's last packet, then it restarts: same key, no session; what the old one
    // encrypts, it cannot read. Then our connect, in the same moment.
    net.keepalive_from(c);
    net.restart_client(c);
    let (local, remote) = (addr("192.0.2.200:8080"), addr("10.0.0.2:7000"));
    net.server.tcp_connect(net.now, local, remote).unwrap();
    net.pump();
    let (mut syns_at, mut initiations_at) = (Vec::new(), Vec::new());
    for elapsed in (50..=25_000).step_by(50) {
        let before = net.sent.len();
        net.now += 50.0;
        net.pump();
        syns_at.extend(net.segments(c).iter().filter(|segment| segment.is(TcpControl::Syn)).map(|_| elapsed));
        initiations_at.extend(net.sent[before..].iter().filter(|(_, datagram)| message_type(datagram) == 1).map(|_| elapsed));
    }
    // The handshake 15 s after the peer's last packet, in the same poll as the SYN's fourth
    // retransmission, which went out first, in the old session; the SYN again at once in the
    // new one, which the peer reads.
    assert!(matches!(initiations_at[..], [15_000..=15_250]), "initiations at {initiations_at:?} ms");
    assert_eq!(syns_at, vec![initiations_at[0]], "the SYNs the peer could read");
}

/// The same for data: what has timed out at least once goes again when the new session
/// opens, rather than at its next timeout (25.4 s here); data sent just before, whose timer
/// has not fired, waits for it (a routine rekey resends nothing); another peer's packets
/// meanwhile change nothing.
#[test]
fn backed_off_data_goes_again_when_a_new_session_opens_and_fresh_data_waits_for_its_timer() {
    let (mut net, c) = connected();
    let other = net.add_client(2);
    net.handshake(other);
    let mut a = open(&mut net, c, addr("10.0.0.2:40000"), addr("93.184.216.34:80"));
    let mut b = open(&mut net, c, addr("10.0.0.2:40001"), addr("93.184.216.34:80"));
    host_sends(&mut net, &mut a, b"warm up");
    host_sends(&mut net, &mut b, b"warm up");
    net.advance(1_000);
    // The peer's last packet, then it restarts; then data, in the same moment.
    net.keepalive_from(c);
    net.restart_client(c);
    let endpoint = net.clients[c].endpoint;
    net.server.tcp_send(a.id, b"timed out").unwrap();
    net.pump();
    let (mut a_at, mut b_at, mut initiations_at) = (Vec::new(), Vec::new(), Vec::new());
    let lost_from = net.sent.len();
    for elapsed in (50..=20_000).step_by(50) {
        if elapsed == 14_950 {
            net.server.tcp_send(b.id, b"fresh").unwrap();
        }
        if elapsed % 1_000 == 0 {
            net.send(other, &udp_packet(addr("10.0.0.3:5353"), addr("8.8.8.8:53"), b"other"));
        }
        let before = net.sent.len();
        net.now += 50.0;
        net.pump();
        initiations_at.extend(net.sent[before..].iter().filter(|(_, datagram)| message_type(datagram) == 1).map(|_| elapsed));
        for segment in net.segments(c).iter().filter(|segment| !segment.payload.is_empty()) {
            if segment.dst == a.local {
                a_at.push(elapsed);
            } else {
                b_at.push(elapsed);
            }
        }
    }
    assert!(matches!(initiations_at[..], [15_000]), "initiations at {initiations_at:?} ms");
    // Lost in the old session before it: the data's tail-loss probe and its timeouts, doubling
    // from 200 ms (6 in 15 s), and the fresh data; no more for the other peer's packets.
    let handshake = net.sent[lost_from..].iter().position(|(_, datagram)| message_type(datagram) == 1).unwrap();
    let lost = net.sent[lost_from..][..handshake]
        .iter()
        .filter(|(to, datagram)| *to == endpoint && message_type(datagram) == 4 && datagram.len() > 32)
        .count();
    assert_eq!(lost, 8, "data messages lost before the handshake");
    assert_eq!(a_at.first(), Some(&15_000), "the timed-out data, as the peer read it: {a_at:?}");
    assert!(b_at.first().is_some_and(|&at| at > 15_000), "the fresh data, as the peer read it: {b_at:?}");
}

/// A peer with a persistent keepalive hears from us after each that many seconds of quiet, so
/// a NAT in front of it keeps its mapping (whitepaper 6.5, wg(8) PersistentKeepalive): a
/// keepalive, a data message of header and tag only (32 bytes). Without one we stay quiet.
#[test]
fn a_persistent_keepalive_goes_out_after_each_interval_of_quiet() {
    for (interval, expected) in [(25, vec![25, 50]), (0, vec![])] {
        let mut net = Net::new();
        net.persistent_keepalive = interval;
        let c = net.add_client(1);
        net.handshake(c);
        let mut sent_at = Vec::new();
        for second in 1..=60 {
            let before = net.sent.len();
            net.advance(1_000);
            for (to, datagram) in &net.sent[before..] {
                assert_eq!((*to, message_type(datagram), datagram.len()), (net.clients[c].endpoint, 4, 32), "at {second} s");
                sent_at.push(second);
            }
        }
        assert_eq!(sent_at, expected, "keepalive {interval} s");
        assert!(net.take_inbox(c).is_empty() && net.clients[c].errors.is_empty(), "{:?}", net.clients[c].errors);
    }
}

/// A removed peer loses everything at once: its TCP connections close (as reset), its
/// packets are unknown, and its addresses route nowhere; the other peer is untouched.
#[test]
fn a_removed_peer_is_gone_at_once() {
    let mut net = Net::new();
    let a = net.add_client(1);
    let b = net.add_client(2);
    net.handshake(a);
    net.handshake(b);
    let tcp_a = open(&mut net, a, addr("10.0.0.2:40000"), addr("93.184.216.34:80"));
    let tcp_b = open(&mut net, b, addr("10.0.0.3:40000"), addr("93.184.216.34:80"));
    let key = net.clients[a].public_key();
    assert_eq!(net.server.remove_peer(&key), Some(net.clients[a].peer));
    assert_eq!(net.server.remove_peer(&key), None, "only once");
    net.pump();
    assert_eq!(net.take_events(), vec![Event::TcpClosed { conn: tcp_a.id, reason: 1 }]);
    assert_eq!(net.server.connection_count(), 1);
    // Its data is from nobody now; its address is no route.
    net.send(a, &udp_packet(addr("10.0.0.2:5353"), addr("8.8.8.8:53"), b"still there?"));
    assert!(net.take_events().is_empty());
    assert_eq!(net.dropped(DropReason::UnknownPeer), 1);
    assert_eq!(net.server.udp_send(net.now, addr("8.8.8.8:53"), addr("10.0.0.2:5353"), b"x"), Err(RequestError::NoRoute));
    assert_eq!(net.server.peers().count(), 1);
    // The other peer carries on, and may be joined by a new one.
    net.server.tcp_send(tcp_b.id, b"for b").unwrap();
    net.pump();
    assert_eq!(net.segments(b).pop().unwrap().payload, b"for b");
    let c = net.add_client(3);
    net.handshake(c);
    assert!(net.clients[c].peer > net.clients[b].peer, "ids are not reused");
}

/// With the tap on, every inner packet is an event, both ways, with its peer.
#[test]
fn the_tap_shows_inner_packets_both_ways() {
    let (mut net, c) = connected();
    net.server.set_tap(true);
    let query = udp_packet(addr("10.0.0.2:5353"), addr("8.8.8.8:53"), b"query");
    net.send(c, &query);
    net.server.udp_send(net.now, addr("8.8.8.8:53"), addr("10.0.0.2:5353"), b"answer").unwrap();
    net.pump();
    let events = net.take_events();
    assert_eq!(events[0], Event::InnerPacket { direction: 0, peer: 0, bytes: query });
    assert!(matches!(events[1], Event::Udp { .. }));
    let Event::InnerPacket { direction: 1, peer: 0, ref bytes } = events[2] else { panic!("{events:?}") };
    assert_eq!(parse_udp(bytes).2, b"answer");
    net.server.set_tap(false);
    net.send(c, &udp_packet(addr("10.0.0.2:5353"), addr("8.8.8.8:53"), b"quiet"));
    assert!(net.take_events().iter().all(|e| !matches!(e, Event::InnerPacket { .. })));
}

#[test]
fn session_survives_three_minutes_with_rekeys() {
    let (mut net, c) = connected();
    let mut tcp = open(&mut net, c, addr("10.0.0.2:40000"), addr("93.184.216.34:80"));
    let (src, dst) = (addr("10.0.0.2:5000"), addr("8.8.8.8:53"));
    let handshakes = |net: &Net| net.sent.iter().filter(|(_, d)| message_type(d) == 2).count();
    assert_eq!(handshakes(&net), 1);

    let mut max_since = Duration::ZERO;
    for step in 1..=200u32 {
        net.advance(1_000);
        if step % 5 == 0 {
            let payload = format!("tick {step}");
            net.send(c, &udp_packet(src, dst, payload.as_bytes()));
            assert_eq!(net.take_events(), vec![Event::Udp { peer: 0, src, dst, payload: payload.clone().into_bytes() }], "at {step} s");
            net.server.udp_send(net.now, dst, src, payload.as_bytes()).unwrap();
            net.pump();
            let inbox = net.take_inbox(c);
            assert_eq!(inbox.len(), 1, "reply at {step} s");
            assert_eq!(parse_udp(&inbox[0]).2, payload.as_bytes());
        }
        if step % 10 == 0 {
            tcp.send_data(&mut net, b"tcp tick");
            let expected = vec![Event::TcpData { conn: tcp.id, bytes: b"tcp tick".to_vec() }];
            assert_eq!(net.take_events(), expected, "at {step} s");
            net.advance(20);
            for segment in net.segments(c) {
                assert_eq!(segment.ack, Some(tcp.snd_nxt));
            }
        }
        // Whatever else the server sent (keepalives only) decrypted fine.
        assert!(net.take_inbox(c).is_empty(), "at {step} s");
        if let Some(since) = net.server.peer(0).unwrap().stats().since_handshake {
            max_since = max_since.max(since);
        }
    }
    assert!(net.clients[c].errors.is_empty(), "{:?}", net.clients[c].errors);
    // The client rekeyed (every 120 s of sending), so no session got near its 180 s limit.
    assert!(handshakes(&net) >= 2, "handshakes: {}", handshakes(&net));
    assert!(max_since < Duration::from_secs(180), "{max_since:?}");
    assert!(net.server.peer(0).unwrap().stats().since_handshake.unwrap() < Duration::from_secs(120));

    // Data still flows both ways, TCP included.
    net.server.tcp_send(tcp.id, b"still open").unwrap();
    net.pump();
    let segments = net.segments(c);
    assert_eq!(segments.len(), 1);
    tcp.accept(&segments[0]);
    assert_eq!(segments[0].payload, b"still open");
    assert_eq!(net.total_dropped(), 0);
}

#[test]
fn idle_tcp_connection_times_out_with_reset() {
    // A client that vanishes: keep-alives go unanswered and the connection is dropped.
    let (mut net, c) = connected();
    let tcp = open(&mut net, c, addr("10.0.0.2:40000"), addr("93.184.216.34:80"));
    let mut closed = None;
    for step in 0..400 {
        net.advance(1_000);
        net.take_inbox(c); // the client reads nothing and answers nothing
        let events = net.take_events();
        if !events.is_empty() {
            closed = Some((step, events));
            break;
        }
    }
    let (step, events) = closed.expect("the connection timed out");
    assert_eq!(events, vec![Event::TcpClosed { conn: tcp.id, reason: 4 }]);
    assert!((170..=260).contains(&step), "timed out after {step} s");
    assert_eq!(net.server.connection_count(), 0);
}

/// Sends data after 10 s of quiet to a client that never acknowledges it (it went away);
/// returns how many milliseconds after the send the connection timed out. The timeout is set
/// as the host sets it (`wgn_tcp_timeouts`), after the engine was made.
fn unacknowledged_data_times_out_after(user_timeout_s: u64) -> u64 {
    let (mut net, c) = connected();
    net.server.set_tcp_timeouts(Timeouts { user_timeout_us: user_timeout_s * 1_000_000, ..DEFAULT_TIMEOUTS });
    let mut tcp = open(&mut net, c, addr("10.0.0.2:40000"), addr("93.184.216.34:80"));
    host_sends(&mut net, &mut tcp, b"acknowledged");
    net.advance(10_000); // quiet, short of a keep-alive
    assert_eq!(net.server.tcp_send(tcp.id, b"never acknowledged"), Ok(18));
    for ms in 1..=200_000 {
        net.advance(1); // a pump that never goes quiet panics
        net.take_inbox(c);
        let events = net.take_events();
        if !events.is_empty() {
            assert_eq!(events, vec![Event::TcpClosed { conn: tcp.id, reason: 4 }]);
            return ms;
        }
    }
    panic!("the connection never timed out");
}

/// The user timeout counts from the send: not from the last ACK before a quiet spell (the
/// first retransmission timeout reset the connection), and not until the first backed-off
/// retransmission timeout past it (6.2 s for 5 s).
#[test]
fn unacknowledged_data_times_out_at_the_user_timeout_after_it_was_sent() {
    let ms = unacknowledged_data_times_out_after(5);
    assert!((5_000..=5_100).contains(&ms), "timed out {ms} ms after the send");
}

/// With the defaults (60 s each) the keep-alive time passes while data is in flight: that
/// must not make the connection ask for a poll at once, forever (the host spun until the
/// next retransmission timeout, 102 s after the send).
#[test]
fn data_in_flight_past_the_keepalive_time_times_out_without_spinning() {
    let ms = unacknowledged_data_times_out_after(60);
    assert!((60_000..=60_100).contains(&ms), "timed out {ms} ms after the send");
}

/// With a 256 KiB maximum window the server answers a window scale offer, so a window
/// larger than 64 KiB can be used (RFC 7323).
#[test]
fn window_scaling_is_offered_with_large_buffers() {
    let mut net = Net::with_tcp(TcpConfig { max_receive_window: 256 * 1024, max_send_buffer: 256 * 1024, ..tcp_config() });
    let c = net.add_client(1);
    net.handshake(c);
    let (local, remote) = (addr("10.0.0.2:40000"), addr("198.51.100.1:80"));
    let repr = TcpRepr {
        src_port: local.port(),
        dst_port: remote.port(),
        control: TcpControl::Syn,
        seq_number: TcpSeqNumber(1000),
        ack_number: None,
        window_len: 65535,
        window_scale: Some(7),
        max_seg_size: Some(1360),
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    };
    let (s, d) = (IpAddress::from(local.ip()), IpAddress::from(remote.ip()));
    let packet = ip_packet(local.ip(), remote.ip(), IpProtocol::Tcp, repr.buffer_len(), |bytes| {
        repr.emit(&mut TcpPacket::new_unchecked(bytes), &s, &d, &ChecksumCapabilities::default())
    });
    net.send(c, &packet);
    let inbox = net.take_inbox(c);
    let (_, _, _, tcp_bytes) = parse_ip(&inbox[0]);
    let syn_ack = TcpRepr::parse(&TcpPacket::new_checked(tcp_bytes).unwrap(), &d, &s, &ChecksumCapabilities::default()).unwrap();
    assert_eq!(syn_ack.control, TcpControl::Syn);
    assert_eq!(syn_ack.window_scale, Some(3), "256 KiB needs a shift of 3 to be advertised whole");
}
