//! Rules of the table and the connection, checked segment by segment on virtual time: a
//! scripted peer injects exact segments and each test reads exactly what we send back.
//! Each test is named after the rule it holds.

use super::*;
use crate::events::decode::{decode, Event};
use crate::ffi::{DEFAULT_LIMITS, DEFAULT_TIMEOUTS};
use crate::wire::{self, Inner};
use segment::{SackBlocks, SynOptions};

const MTU: usize = 1420;
/// The path's round trip, as the handshake shows it.
const RTT_US: u64 = 10_000;

struct Capture {
    packets: Vec<Vec<u8>>,
    events: Events,
}

impl Link for Capture {
    fn send_packet(&mut self, packet: &[u8]) {
        self.packets.push(packet.to_vec());
    }

    fn events(&mut self) -> &mut Events {
        &mut self.events
    }
}

/// A segment we sent, as the peer reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    seq: u32,
    ack: Option<u32>,
    syn: bool,
    fin: bool,
    rst: bool,
    window: u16,
    options: SynOptions,
    payload: Vec<u8>,
}

/// Our TCP table on virtual time.
struct Stack {
    tcp: Tcp,
    out: Capture,
    now: u64,
    wake: Option<u64>,
}

impl Stack {
    fn new() -> Stack {
        Stack::with_seed(0x5eed)
    }

    fn with_seed(seed: u128) -> Stack {
        let config = TcpConfig {
            mtu: MTU,
            max_receive_window: 1 << 20,
            max_send_buffer: 1 << 20,
            accept: true,
            limits: DEFAULT_LIMITS,
            timeouts: DEFAULT_TIMEOUTS,
        };
        Stack { tcp: Tcp::new(config, seed), out: Capture { packets: Vec::new(), events: Events::default() }, now: 0, wake: None }
    }

    /// The peer's segment arrives from `peer` now; we answer what is due at once.
    fn inject(&mut self, peer: u32, seg: &Segment<'_>) {
        self.tcp.input(self.now, peer, seg, &mut self.out);
        self.run();
    }

    /// Polls until nothing more is due now.
    fn run(&mut self) {
        loop {
            self.wake = self.tcp.poll(self.now, &mut self.out);
            if self.wake != Some(self.now) {
                return;
            }
        }
    }

    /// Lets `us` of virtual time pass, firing every timer due in it.
    fn advance(&mut self, us: u64) {
        let end = self.now + us;
        while let Some(at) = self.wake.filter(|&at| at <= end) {
            self.now = self.now.max(at);
            self.run();
        }
        self.now = end;
    }

    /// What we sent since the last call.
    fn sent(&mut self) -> Vec<Sent> {
        self.out
            .packets
            .drain(..)
            .map(|packet| {
                let Ok(Inner::Tcp { src, dst, tcp }) = wire::classify(&packet) else { panic!("not TCP") };
                let seg = segment::parse(src, dst, tcp).unwrap();
                Sent {
                    seq: seg.seq,
                    ack: seg.ack,
                    syn: seg.syn,
                    fin: seg.fin,
                    rst: seg.rst,
                    window: seg.window,
                    options: seg.syn_options,
                    payload: seg.payload.to_vec(),
                }
            })
            .collect()
    }

    fn events(&mut self) -> Vec<Event> {
        let events = decode(self.out.events.as_bytes());
        self.out.events.clear();
        events
    }
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// A bare segment from `src` to `dst`.
fn segment(src: SocketAddr, dst: SocketAddr, seq: u32, ack: Option<u32>) -> Segment<'static> {
    Segment {
        src,
        dst,
        seq,
        ack,
        syn: false,
        fin: false,
        rst: false,
        window: 65535,
        syn_options: SynOptions::default(),
        sack: SackBlocks::default(),
        payload: &[],
    }
}

/// The connection a TCP_INCOMING event announces, if any (other events are dropped).
fn incoming(events: &mut Vec<Event>) -> Option<u32> {
    events.drain(..).find_map(|event| match event {
        Event::TcpIncoming { conn, .. } => Some(conn),
        _ => None,
    })
}

/// The peer's side of one connection: its addresses and where each side's sequence stands.
struct Peer {
    peer: u32,
    addr: SocketAddr,
    server: SocketAddr,
    /// The peer's next sequence number, and ours as it has acknowledged it.
    nxt: u32,
    our_nxt: u32,
    conn: u32,
}

impl Peer {
    fn segment(&self) -> Segment<'static> {
        segment(self.addr, self.server, self.nxt, Some(self.our_nxt))
    }

    fn syn(&self, seq: u32) -> Segment<'static> {
        Segment {
            syn: true,
            syn_options: SynOptions { mss: Some(1380), window_scale: Some(7), sack_permitted: true },
            ..segment(self.addr, self.server, seq, None)
        }
    }
}

/// The peer opens a connection with its ISS `iss`; the host accepts; the handshake completes.
fn open(stack: &mut Stack, peer: u32, from: &str, to: &str, iss: u32) -> Peer {
    let mut p = Peer { peer, addr: addr(from), server: addr(to), nxt: iss.wrapping_add(1), our_nxt: 0, conn: 0 };
    stack.inject(peer, &p.syn(iss));
    let conn = incoming(&mut stack.events()).expect("a new connection");
    stack.tcp.accept(stack.now, conn).unwrap();
    stack.run();
    let syn_ack = stack.sent();
    assert!(syn_ack.len() == 1 && syn_ack[0].syn && syn_ack[0].ack == Some(p.nxt), "{syn_ack:?}");
    p.our_nxt = syn_ack[0].seq.wrapping_add(1);
    p.conn = conn;
    stack.advance(RTT_US);
    stack.inject(peer, &p.segment());
    assert!(stack.events().iter().any(|e| matches!(e, Event::TcpEstablished { .. })));
    p
}

/// We close first (host shutdown, our FIN, its ACK), then the peer's FIN: we are in TIME-WAIT.
fn into_time_wait(stack: &mut Stack, p: &mut Peer) {
    assert_eq!(stack.tcp.send(p.conn, b"bye"), Ok(3));
    stack.tcp.shutdown(p.conn).unwrap();
    stack.run();
    stack.advance(1_000); // the pacer
    let fin = stack.sent();
    assert!(fin.len() == 1 && fin[0].fin && fin[0].payload == b"bye", "{fin:?}");
    p.our_nxt = p.our_nxt.wrapping_add(4);
    stack.inject(p.peer, &Segment { fin: true, ..p.segment() });
    p.nxt = p.nxt.wrapping_add(1);
    let ack = stack.sent();
    assert!(ack.len() == 1 && ack[0].ack == Some(p.nxt), "our FIN's ACK and theirs: {ack:?}");
    assert!(stack.events().contains(&Event::TcpClosed { conn: p.conn, reason: 0 }));
    assert_eq!(stack.tcp.connection_count(), 0, "TIME-WAIT is not a live connection");
    let conn = &stack.tcp.connections[&p.conn].conn;
    assert_eq!(conn.snd.capacity_bytes(), 0, "a minute in TIME-WAIT holds no buffers");
}

#[test]
fn rfc9293_3_4_2_time_wait_lasts_sixty_seconds_as_linux_keeps_it() {
    let mut stack = Stack::new();
    let mut p = open(&mut stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000);
    into_time_wait(&mut stack, &mut p);
    // A retransmitted FIN just before the minute is up is still acknowledged, from TIME-WAIT.
    stack.advance(59_000_000);
    stack.inject(p.peer, &Segment { fin: true, ..segment(p.addr, p.server, p.nxt.wrapping_sub(1), Some(p.our_nxt)) });
    assert_eq!(stack.sent().iter().map(|s| (s.rst, s.ack)).collect::<Vec<_>>(), vec![(false, Some(p.nxt))]);
    // That restarted the minute (RFC 9293 §3.10.7.4); a minute after it the 4-tuple is free:
    // the same segment now gets a RST.
    stack.advance(59_999_000);
    stack.inject(p.peer, &Segment { fin: true, ..segment(p.addr, p.server, p.nxt.wrapping_sub(1), Some(p.our_nxt)) });
    assert_eq!(stack.sent().iter().map(|s| s.rst).collect::<Vec<_>>(), vec![false], "still TIME-WAIT at 59.999 s");
    stack.advance(60_000_000);
    stack.inject(p.peer, &Segment { fin: true, ..segment(p.addr, p.server, p.nxt.wrapping_sub(1), Some(p.our_nxt)) });
    let sent = stack.sent();
    assert!(sent.len() == 1 && sent[0].rst && sent[0].seq == p.our_nxt, "{sent:?}");
}

#[test]
fn rfc6191_a_syn_above_the_old_sequence_space_reopens_time_wait() {
    let mut stack = Stack::new();
    let mut p = open(&mut stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000);
    into_time_wait(&mut stack, &mut p);
    let old_our_nxt = p.our_nxt;
    stack.advance(1_000_000);
    stack.inject(p.peer, &p.syn(p.nxt.wrapping_add(5000)));
    let conn = incoming(&mut stack.events()).expect("a new connection");
    assert_ne!(conn, p.conn);
    stack.tcp.accept(stack.now, conn).unwrap();
    stack.run();
    let syn_ack = stack.sent();
    assert!(syn_ack.len() == 1 && syn_ack[0].syn && syn_ack[0].ack == Some(p.nxt.wrapping_add(5001)), "{syn_ack:?}");
    // Our new sequence space starts past the old one's, by more than any unscaled window.
    assert_eq!(syn_ack[0].seq, old_our_nxt.wrapping_add(65_537));
}

#[test]
fn rfc6191_a_syn_at_or_below_the_old_sequence_space_leaves_time_wait_in_place() {
    for offset in [0u32, 1, 100] {
        let mut stack = Stack::new();
        let mut p = open(&mut stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000);
        into_time_wait(&mut stack, &mut p);
        // `offset` below rcv.nxt: an old duplicate, or a peer reusing its old sequence space.
        stack.inject(p.peer, &p.syn(p.nxt.wrapping_sub(offset)));
        assert_eq!(incoming(&mut stack.events()), None, "no new connection for a SYN {offset} below rcv.nxt");
        let sent = stack.sent();
        assert_eq!(sent.iter().map(|s| (s.syn, s.rst, s.ack)).collect::<Vec<_>>(), vec![(false, false, Some(p.nxt))], "an ACK: {sent:?}");
        // And TIME-WAIT still holds the 4-tuple: a retransmitted FIN is acknowledged.
        stack.inject(p.peer, &Segment { fin: true, ..segment(p.addr, p.server, p.nxt.wrapping_sub(1), Some(p.our_nxt)) });
        assert_eq!(stack.sent().iter().map(|s| (s.rst, s.ack)).collect::<Vec<_>>(), vec![(false, Some(p.nxt))]);
    }
}

#[test]
fn the_table_keys_connections_by_peer_and_4_tuple() {
    let mut stack = Stack::new();
    // Two peers whose clients use the same address and port for the same destination.
    let a = open(&mut stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000);
    let b = open(&mut stack, 2, "10.0.0.2:40000", "198.51.100.7:80", 90_000);
    assert_ne!(a.conn, b.conn);
    assert_eq!(stack.tcp.connection_count(), 2);
    // Each one's data reaches its own connection.
    stack.inject(b.peer, &Segment { payload: b"from b", ..b.segment() });
    stack.inject(a.peer, &Segment { payload: b"from a", ..a.segment() });
    let data: Vec<Event> = stack.events().into_iter().filter(|e| matches!(e, Event::TcpData { .. })).collect();
    assert_eq!(
        data,
        vec![Event::TcpData { conn: b.conn, bytes: b"from b".to_vec() }, Event::TcpData { conn: a.conn, bytes: b"from a".to_vec() }]
    );
    // A RST from one peer closes only its own.
    stack.inject(a.peer, &Segment { rst: true, ..segment(a.addr, a.server, a.nxt.wrapping_add(6), None) });
    assert_eq!(stack.events(), vec![Event::TcpClosed { conn: a.conn, reason: 1 }]);
    assert_eq!(stack.tcp.connection_count(), 1);
    // Our own connections: the same local port may serve one remote through two peers.
    let remote = addr("10.0.0.9:443");
    let (first, local) = stack.tcp.connect(stack.now, 1, addr("10.0.0.1:50000"), remote).unwrap();
    let (second, local_again) = stack.tcp.connect(stack.now, 2, local, remote).unwrap();
    assert_ne!(first, second);
    assert_eq!(local, local_again);
    assert_eq!(stack.tcp.connect(stack.now, 2, local, remote), Err(TcpError::Unaddressable), "but not twice through one peer");
}

/// Our SYN's sequence number for a connect() from `local` to `remote` at the stack's time.
fn our_iss(stack: &mut Stack, local: SocketAddr, remote: SocketAddr) -> u32 {
    let (id, _) = stack.tcp.connect(stack.now, 1, local, remote).unwrap();
    stack.run();
    let syn = stack.sent();
    assert!(syn.len() == 1 && syn[0].syn, "{syn:?}");
    stack.tcp.abort(id, &mut stack.out).unwrap();
    stack.run();
    stack.sent();
    syn[0].seq
}

#[test]
fn rfc6528_initial_sequence_numbers_follow_a_4_us_clock_per_4_tuple_under_a_secret() {
    let (local, remote) = (addr("10.0.0.1:50000"), addr("10.0.0.9:443"));
    let mut stack = Stack::with_seed(1);
    stack.advance(1_000_000);
    let first = our_iss(&mut stack, local, remote);
    stack.advance(4_000);
    assert_eq!(our_iss(&mut stack, local, remote), first.wrapping_add(1000), "M ticks every 4 µs");
    let other_port = our_iss(&mut stack, addr("10.0.0.1:50001"), remote);
    assert_ne!(other_port.wrapping_sub(first), 1000, "another 4-tuple, another offset");
    // A SYN-ACK takes its number the same way, from our end and theirs.
    let p = open(&mut stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000);
    let expected = IsnGenerator::new(1).isn(stack.now - RTT_US, addr("198.51.100.7:80"), addr("10.0.0.2:40000"));
    assert_eq!(p.our_nxt, expected.wrapping_add(1));
    // Another secret, other numbers.
    let mut other = Stack::with_seed(2);
    other.advance(1_000_000);
    assert_ne!(our_iss(&mut other, local, remote), first);
}

#[test]
fn rfc9293_3_10_5_abort_after_a_syn_sent_at_time_zero_resets() {
    let mut stack = Stack::new();
    let (id, local) = stack.tcp.connect(0, 1, addr("10.0.0.1:50000"), addr("10.0.0.9:443")).unwrap();
    stack.run();
    assert!(stack.sent()[0].syn);
    stack.tcp.abort(id, &mut stack.out).unwrap();
    stack.run();
    let sent = stack.sent();
    assert!(sent.len() == 1 && sent[0].rst, "the peer may have our SYN: it hears the abort: {sent:?} from {local}");
}
