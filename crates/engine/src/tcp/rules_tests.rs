//! Rules of the table and the connection, checked segment by segment on virtual time: a
//! scripted peer injects exact segments and each test reads exactly what we send back.
//! Each test is named after the rule it holds.

use super::*;
use crate::events::decode::{decode, Event};
use crate::ffi::{DEFAULT_LIMITS, DEFAULT_TIMEOUTS};
use crate::wire::{self, Inner};
use segment::{SackBlocks, SynOptions, Timestamp};

const MTU: usize = 1420;
/// The path's round trip, as the handshake shows it.
const RTT_US: u64 = 10_000;

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
    timestamp: Option<Timestamp>,
    sack_blocks: usize,
    /// The IP packet's length.
    ip_len: usize,
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
        Stack { tcp: Tcp::new(config, seed), out: Capture::default(), now: 0, wake: None }
    }

    /// The peer's segment arrives from `peer` now; we answer what is due at once.
    fn inject(&mut self, peer: u32, seg: &Segment<'_>) {
        self.tcp.input(self.now, peer, seg, &mut self.out);
        self.run();
    }

    /// Polls until nothing more is due now. A stack that keeps asking for a poll at once
    /// (or in the past) 10,000 times is spinning (no poll at one instant needs more than a
    /// few: each sends up to 256 segments): that fails the test, as the conformance harness does.
    fn run(&mut self) {
        for _ in 0..10_000 {
            self.wake = self.tcp.poll(self.now, &mut self.out);
            if self.wake.is_none_or(|at| at > self.now) {
                return;
            }
        }
        panic!("the stack keeps asking for a poll at {} µs", self.now);
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
                    timestamp: seg.timestamp,
                    sack_blocks: seg.sack.as_slice().len(),
                    ip_len: packet.len(),
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
        timestamp: None,
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
    /// The peer's timestamps (RFC 7323), when it offers them: its clock and the echo of ours.
    clock: Option<Timestamp>,
}

impl Peer {
    fn segment(&self) -> Segment<'static> {
        Segment { timestamp: self.clock, ..segment(self.addr, self.server, self.nxt, Some(self.our_nxt)) }
    }

    fn syn(&self, seq: u32) -> Segment<'static> {
        Segment {
            syn: true,
            syn_options: SynOptions { mss: Some(1380), window_scale: Some(7), sack_permitted: true },
            timestamp: self.clock.map(|clock| Timestamp { ecr: 0, ..clock }),
            ..segment(self.addr, self.server, seq, None)
        }
    }

    /// The peer's clock moves on to `val`.
    fn tick(&mut self, val: u32) {
        self.clock = self.clock.map(|clock| Timestamp { val, ..clock });
    }
}

/// The peer opens a connection with its ISS `iss`; the host accepts; the handshake completes.
fn open(stack: &mut Stack, peer: u32, from: &str, to: &str, iss: u32) -> Peer {
    open_with(stack, peer, from, to, iss, None)
}

/// `open`, the peer's SYN carrying its clock `tsval` if given (RFC 7323).
fn open_with(stack: &mut Stack, peer: u32, from: &str, to: &str, iss: u32, tsval: Option<u32>) -> Peer {
    open_timed(stack, peer, from, to, iss, tsval, RTT_US)
}

/// `open_with`, the peer's ACK of our SYN-ACK coming `rtt_us` after it.
fn open_timed(stack: &mut Stack, peer: u32, from: &str, to: &str, iss: u32, tsval: Option<u32>, rtt_us: u64) -> Peer {
    let clock = tsval.map(|val| Timestamp { val, ecr: 0 });
    let mut p = Peer { peer, addr: addr(from), server: addr(to), nxt: iss.wrapping_add(1), our_nxt: 0, conn: 0, clock };
    stack.inject(peer, &p.syn(iss));
    let conn = incoming(&mut stack.events()).expect("a new connection");
    stack.tcp.accept(stack.now, conn).unwrap();
    stack.run();
    let syn_ack = stack.sent();
    assert!(syn_ack.len() == 1 && syn_ack[0].syn && syn_ack[0].ack == Some(p.nxt), "{syn_ack:?}");
    p.our_nxt = syn_ack[0].seq.wrapping_add(1);
    p.conn = conn;
    // RFC 7323 §3.2: our SYN-ACK carries timestamps exactly when the SYN did, echoing its clock.
    assert_eq!(syn_ack[0].timestamp.map(|ts| ts.ecr), tsval, "{syn_ack:?}");
    if let (Some(clock), Some(ours)) = (p.clock.as_mut(), syn_ack[0].timestamp) {
        clock.ecr = ours.val;
    }
    stack.advance(rtt_us);
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
    if let Some(slot) = stack.tcp.connections.get(&p.conn) {
        assert_eq!(slot.conn.snd.capacity_bytes(), 0, "a minute in TIME-WAIT holds no buffers");
    }
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
fn time_wait_leftovers_are_capped_at_the_connection_limit_as_linux_caps_them() {
    let mut stack = Stack::new();
    stack.tcp.set_limits(Limits { connections: 2, ..DEFAULT_LIMITS });
    let mut peers = Vec::new();
    for i in 0..3 {
        let mut p = open(&mut stack, 1, &format!("10.0.0.2:{}", 40000 + i), "198.51.100.7:80", 1000);
        into_time_wait(&mut stack, &mut p);
        peers.push(p);
    }
    // The first two keep their 4-tuples; the third closed at once: its FIN, sent again, meets no connection.
    for (i, p) in peers.iter().enumerate() {
        stack.inject(p.peer, &Segment { fin: true, ..segment(p.addr, p.server, p.nxt.wrapping_sub(1), Some(p.our_nxt)) });
        let sent = stack.sent();
        assert_eq!(sent.iter().map(|s| s.rst).collect::<Vec<_>>(), vec![i == 2], "connection {i}: {sent:?}");
    }
    // When one leaves TIME-WAIT, its place is free again.
    stack.advance(61_000_000);
    let mut p = open(&mut stack, 1, "10.0.0.2:41000", "198.51.100.7:80", 1000);
    into_time_wait(&mut stack, &mut p);
    stack.inject(p.peer, &Segment { fin: true, ..segment(p.addr, p.server, p.nxt.wrapping_sub(1), Some(p.our_nxt)) });
    assert_eq!(stack.sent().iter().map(|s| s.rst).collect::<Vec<_>>(), vec![false]);
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
    let expected = IsnGenerator::new(1).initial(stack.now - RTT_US, addr("198.51.100.7:80"), addr("10.0.0.2:40000")).seq;
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

/// The host writes `bytes`; what we send for it in the next few milliseconds.
fn host_sends(stack: &mut Stack, p: &Peer, bytes: usize) -> Vec<Sent> {
    assert_eq!(stack.tcp.send(p.conn, &vec![7; bytes]), Ok(bytes));
    stack.run();
    stack.advance(2_000); // the pacer
    stack.sent()
}

#[test]
fn rfc7323_3_2_timestamps_are_on_when_the_peer_offers_them_and_ride_every_segment() {
    let mut stack = Stack::new();
    stack.advance(5_000_000);
    let mut p = open_with(&mut stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000, Some(7000));
    let sent = host_sends(&mut stack, &p, 3000);
    // The option takes 12 bytes of each segment (the peer's MSS and ours are 1380).
    assert_eq!(sent.iter().map(|s| s.payload.len()).collect::<Vec<_>>(), vec![1368, 1368, 264]);
    let ours = p.clock.unwrap().ecr;
    for s in &sent {
        let ts = s.timestamp.expect("every segment carries timestamps");
        assert_eq!(ts.ecr, 7000);
        // Our clock counts milliseconds: the data left `now - 2 ms`, the SYN-ACK at 5 s.
        assert_eq!(ts.val.wrapping_sub(ours), ((stack.now - 2_000) / 1000 - 5_000) as u32);
    }
    // The peer's newer clock, on a segment at what we acknowledged, is what we echo next.
    p.tick(7010);
    p.our_nxt = p.our_nxt.wrapping_add(3000);
    stack.inject(p.peer, &Segment { payload: b"hi", ..p.segment() });
    p.nxt = p.nxt.wrapping_add(2);
    let ack = stack.sent();
    assert_eq!(ack.iter().map(|s| (s.ack, s.timestamp.map(|ts| ts.ecr))).collect::<Vec<_>>(), vec![(Some(p.nxt), Some(7010))]);

    // A peer that offers none gets none, and full segments.
    let mut stack = Stack::new();
    let p = open(&mut stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000);
    let sent = host_sends(&mut stack, &p, 3000);
    assert_eq!(sent.iter().map(|s| (s.payload.len(), s.timestamp)).collect::<Vec<_>>(), vec![(1380, None), (1380, None), (240, None)]);
}

#[test]
fn rfc7323_3_2_our_connect_offers_timestamps_and_keeps_them_only_if_answered() {
    for answered in [false, true] {
        let mut stack = Stack::new();
        stack.advance(1_000_000);
        let (local, remote) = (addr("10.0.0.1:50000"), addr("10.0.0.9:443"));
        let (id, _) = stack.tcp.connect(stack.now, 1, local, remote).unwrap();
        stack.run();
        let syn = stack.sent();
        let offer = syn[0].timestamp.expect("our SYN offers timestamps");
        assert_eq!(offer.ecr, 0);
        stack.advance(RTT_US);
        let clock = answered.then_some(Timestamp { val: 99, ecr: offer.val });
        let syn_ack = Segment {
            syn: true,
            syn_options: SynOptions { mss: Some(1380), window_scale: Some(7), sack_permitted: true },
            timestamp: clock,
            ..segment(remote, local, 5000, Some(syn[0].seq.wrapping_add(1)))
        };
        stack.inject(1, &syn_ack);
        let ack = stack.sent();
        assert_eq!(ack.len(), 1);
        assert_eq!(ack[0].timestamp.map(|ts| ts.ecr), clock.map(|c| c.val), "answered: {answered}");
        let p = Peer { peer: 1, addr: remote, server: local, nxt: 5001, our_nxt: syn[0].seq.wrapping_add(1), conn: id, clock };
        let sent = host_sends(&mut stack, &p, 2000);
        let expected = if answered { vec![1368, 632] } else { vec![1380, 620] };
        assert_eq!(sent.iter().map(|s| s.payload.len()).collect::<Vec<_>>(), expected);
        assert!(sent.iter().all(|s| s.timestamp.is_some() == answered));
    }
}

/// A connection with timestamps on (the peer's clock started at 7000), whose last segment,
/// "new", came with the peer's clock at 7100 and was delivered.
fn timestamps_in_use_last_seen_at_7100(stack: &mut Stack) -> Peer {
    let mut p = open_with(stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000, Some(7000));
    stack.events();
    p.tick(7100);
    stack.inject(p.peer, &Segment { payload: b"new", ..p.segment() });
    p.nxt = p.nxt.wrapping_add(3);
    assert_eq!(stack.events(), vec![Event::TcpData { conn: p.conn, bytes: b"new".to_vec() }]);
    p
}

#[test]
fn rfc7323_5_3_paws_drops_an_old_duplicate_and_acknowledges_it() {
    let mut stack = Stack::new();
    let mut p = timestamps_in_use_last_seen_at_7100(&mut stack);
    stack.sent();
    // A segment from an older clock reading: an old duplicate, whatever its sequence number.
    p.tick(7050);
    stack.inject(p.peer, &Segment { payload: b"old", ..p.segment() });
    assert_eq!(stack.events(), vec![], "dropped");
    let ack = stack.sent();
    assert_eq!(ack.iter().map(|s| (s.ack, s.timestamp.map(|ts| ts.ecr))).collect::<Vec<_>>(), vec![(Some(p.nxt), Some(7100))], "answered");
    // A RST is not judged by its clock (RFC 7323 §5.3 R1): with the exact sequence number it resets.
    stack.inject(p.peer, &Segment { rst: true, ..p.segment() });
    assert_eq!(stack.events(), vec![Event::TcpClosed { conn: p.conn, reason: 1 }]);
}

/// RFC 7323 §3.2 lets a receiver drop a segment without timestamps once they are in use;
/// Linux accepts it unjudged, and so do we: its data is delivered. It moves no clock: a later
/// segment from an older reading than the last one seen is still an old duplicate.
#[test]
fn rfc7323_3_2_a_segment_without_timestamps_is_accepted_unjudged() {
    let mut stack = Stack::new();
    let mut p = timestamps_in_use_last_seen_at_7100(&mut stack);
    stack.inject(p.peer, &Segment { payload: b"bare", timestamp: None, ..p.segment() });
    p.nxt = p.nxt.wrapping_add(4);
    assert_eq!(stack.events(), vec![Event::TcpData { conn: p.conn, bytes: b"bare".to_vec() }]);
    p.tick(7050);
    stack.inject(p.peer, &Segment { payload: b"old", ..p.segment() });
    assert_eq!(stack.events(), vec![], "still an old duplicate");
}

#[test]
fn rfc7323_4_1_the_echo_times_a_retransmission_where_karn_gives_no_sample() {
    let mut stack = Stack::new();
    let mut p = open_with(&mut stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000, Some(7000));
    assert_eq!(stack.tcp.connection_stats(p.conn).unwrap().srtt_us, RTT_US);
    let first = host_sends(&mut stack, &p, 100);
    assert_eq!(first.len(), 1);
    // Nothing comes back: a tail-loss probe, then the retransmission timeout, send it again.
    stack.advance(300_000);
    let again = stack.sent();
    assert!(!again.is_empty() && again.iter().all(|s| s.payload.len() == 100), "{again:?}");
    let last = again.last().unwrap().timestamp.unwrap();
    // The peer's ACK echoes the last copy's clock.
    p.our_nxt = p.our_nxt.wrapping_add(100);
    p.clock = Some(Timestamp { val: 7500, ecr: last.val });
    stack.inject(p.peer, &p.segment());
    let srtt = stack.tcp.connection_stats(p.conn).unwrap().srtt_us;
    assert!((15_000..=30_000).contains(&srtt), "a sample of about 100 ms moved the smoothed RTT from 10 ms: {srtt}");
}

#[test]
fn rfc6191_with_timestamps_a_newer_clock_reopens_time_wait_and_an_older_does_not() {
    // (the old connection's clock, the new SYN's offset from rcv.nxt and its clock)
    let cases = [
        (Some(7000), -100i32, Some(8000), true),
        (Some(7000), 5000, Some(6000), false),
        (None, -100, Some(1), true),
        (None, -100, None, false),
    ];
    for (old_clock, seq_offset, tsval, reopens) in cases {
        let mut stack = Stack::new();
        let mut p = open_with(&mut stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000, old_clock);
        into_time_wait(&mut stack, &mut p);
        p.clock = tsval.map(|val| Timestamp { val, ecr: 0 });
        stack.inject(p.peer, &p.syn(p.nxt.wrapping_add_signed(seq_offset)));
        assert_eq!(incoming(&mut stack.events()).is_some(), reopens, "SYN at {seq_offset} with clock {tsval:?} after {old_clock:?}");
        if !reopens {
            let sent = stack.sent();
            assert_eq!(sent.iter().map(|s| (s.syn, s.rst, s.ack)).collect::<Vec<_>>(), vec![(false, false, Some(p.nxt))]);
        }
    }
}

#[test]
fn rfc7323_4_1_the_echo_times_a_handshake_whose_syn_ack_was_sent_again() {
    let mut stack = Stack::new();
    let mut p = Peer {
        peer: 1,
        addr: addr("10.0.0.2:40000"),
        server: addr("198.51.100.7:80"),
        nxt: 1001,
        our_nxt: 0,
        conn: 0,
        clock: Some(Timestamp { val: 7000, ecr: 0 }),
    };
    stack.inject(p.peer, &p.syn(1000));
    p.conn = incoming(&mut stack.events()).unwrap();
    stack.tcp.accept(stack.now, p.conn).unwrap();
    stack.run();
    let first = stack.sent();
    // Lost: after a second it goes again.
    stack.advance(1_000_000);
    let again = stack.sent();
    assert!(again.len() == 1 && again[0].syn && again[0].seq == first[0].seq, "{again:?}");
    stack.advance(30_000);
    p.our_nxt = again[0].seq.wrapping_add(1);
    p.clock = Some(Timestamp { val: 8030, ecr: again[0].timestamp.unwrap().val });
    stack.inject(p.peer, &p.segment());
    assert_eq!(stack.tcp.connection_stats(p.conn).unwrap().srtt_us, 30_000, "Karn has no sample here; the echo has one");
}

#[test]
fn rfc6691_sack_blocks_come_out_of_the_mss_and_the_rest_ride_a_pure_ack() {
    for tsval in [None, Some(7000)] {
        let mut stack = Stack::new();
        let mut p = open_with(&mut stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000, tsval);
        // Two holes: we hold two ranges past rcv.nxt, so two SACK blocks wait to be told.
        for offset in [100u32, 300] {
            stack.inject(
                p.peer,
                &Segment { payload: b"past a hole", ..segment(p.addr, p.server, p.nxt.wrapping_add(offset), Some(p.our_nxt)) },
            );
        }
        p.clock = None;
        stack.sent();
        let sent = host_sends(&mut stack, &p, 3000);
        assert!(sent.iter().all(|s| s.ip_len <= MTU), "nothing over the MTU: {sent:?}");
        // Full segments leave no room for a block; the short last one has room for both.
        let mss = if tsval.is_some() { 1368 } else { 1380 };
        let data: Vec<(usize, usize)> = sent.iter().filter(|s| !s.payload.is_empty()).map(|s| (s.payload.len(), s.sack_blocks)).collect();
        assert_eq!(data, vec![(mss, 0), (mss, 0), (3000 - 2 * mss, 2)], "{tsval:?}");
        // What the full ones left out follows at once on a pure ACK.
        let first_pure = sent.iter().position(|s| s.payload.is_empty()).expect("a pure ACK");
        assert!(first_pure >= 2 && sent[first_pure].sack_blocks == 2, "{sent:?}");
    }
}

#[test]
fn rfc7323_4_1_a_duplicate_ack_gives_no_round_trip_sample() {
    let mut stack = Stack::new();
    let p = open_with(&mut stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000, Some(7000));
    assert_eq!(stack.tcp.connection_stats(p.conn).unwrap().srtt_us, RTT_US);
    // Half a second later, an ACK of nothing new still echoing our SYN-ACK's clock.
    stack.advance(500_000);
    stack.inject(p.peer, &p.segment());
    assert_eq!(stack.tcp.connection_stats(p.conn).unwrap().srtt_us, RTT_US, "only an ACK of new data times the path");
}

/// A SYN for `to` from `from`, through peer 1.
fn syn_from(from: &str, to: &str) -> Segment<'static> {
    Segment { syn: true, syn_options: SynOptions { mss: Some(1380), ..SynOptions::default() }, ..segment(addr(from), addr(to), 1000, None) }
}

/// Our limits: a half-open connection the host refused is forgotten and frees its place in
/// the peer's half-open count, so the peer's next SYN is offered to the host again.
#[test]
fn limits_a_refused_half_open_connection_frees_its_place() {
    let mut stack = Stack::new();
    stack.tcp.set_limits(Limits { half_open_per_peer: 1, ..DEFAULT_LIMITS });
    for port in [40000, 40001, 40002] {
        stack.inject(1, &syn_from(&format!("10.0.0.2:{port}"), "198.51.100.7:80"));
        let conn = incoming(&mut stack.events()).unwrap_or_else(|| panic!("the SYN from port {port} is offered"));
        stack.tcp.refuse(stack.now, conn, Refusal::Reset, &mut stack.out).unwrap();
        stack.run();
        assert!(stack.sent().iter().any(|s| s.rst), "refused with a RST");
    }
    // One waiting for the host holds the place.
    stack.inject(1, &syn_from("10.0.0.2:40003", "198.51.100.7:80"));
    assert!(incoming(&mut stack.events()).is_some());
    stack.inject(1, &syn_from("10.0.0.2:40004", "198.51.100.7:80"));
    assert!(incoming(&mut stack.events()).is_none(), "the limit still holds");
    assert_eq!(stack.tcp.totals().refused_over_limit, 1);
}

/// The timeouts the host sets apply to connections from then on: here a SYN the host
/// leaves unanswered is refused after one second instead of twenty.
#[test]
fn set_timeouts_applies_to_new_connections() {
    let mut stack = Stack::new();
    stack.tcp.set_timeouts(Timeouts { half_open_us: 1_000_000, ..DEFAULT_TIMEOUTS });
    stack.inject(1, &syn_from("10.0.0.2:40000", "198.51.100.7:80"));
    let conn = incoming(&mut stack.events()).unwrap();
    stack.advance(999_000);
    assert!(stack.sent().is_empty());
    stack.advance(1_000);
    assert!(stack.sent().iter().any(|s| s.rst), "unanswered for 1 s: refused");
    assert!(stack.events().contains(&Event::TcpClosed { conn, reason: CloseReason::TimedOut as u8 }));
}

/// connect() turns down what cannot be a connection: mixed address families, port 0 on
/// the remote end, an unspecified local address; each alone.
#[test]
fn connect_refuses_an_address_that_cannot_be_used() {
    let mut stack = Stack::new();
    for (local, remote) in [("10.0.0.1:0", "[2001:db8::1]:443"), ("10.0.0.1:0", "10.0.0.9:0"), ("0.0.0.0:0", "10.0.0.9:443")] {
        assert_eq!(stack.tcp.connect(0, 1, addr(local), addr(remote)), Err(TcpError::Unaddressable), "{local} to {remote}");
    }
    assert!(stack.tcp.connect(0, 1, addr("10.0.0.1:0"), addr("10.0.0.9:443")).is_ok());
}

/// RFC 6056 §3.1: an ephemeral port (49152-65535) not in use with the same remote end; the
/// search goes on past those that are, and wraps from the top of the range to its bottom.
#[test]
fn rfc6056_an_ephemeral_port_skips_the_ones_in_use_and_wraps() {
    let mut stack = Stack::new();
    let remote = addr("10.0.0.9:443");
    stack.tcp.next_port = 65534;
    // The next four ports the search would try are taken: 65534, 65535, 49152, 49153.
    for port in [65534, 65535, 49152, 49153] {
        stack.tcp.connect(0, 1, SocketAddr::new(addr("10.0.0.1:1").ip(), port), remote).unwrap();
    }
    stack.tcp.next_port = 65534;
    let (_, local) = stack.tcp.connect(0, 1, addr("10.0.0.1:0"), remote).unwrap();
    assert_eq!(local.port(), 49154);
    // Another remote end may use any of them.
    let (_, other) = stack.tcp.connect(0, 1, addr("10.0.0.1:0"), addr("10.0.0.9:80")).unwrap();
    assert_eq!(other.port(), 49155);
}

/// The stats record the host reads: each number under its name, RTTs in milliseconds.
#[test]
fn stats_give_each_number_under_the_name_the_host_reads() {
    let totals = TcpTotals {
        refused_over_limit: 1,
        refused_not_accepting: 2,
        reset_unknown: 3,
        retransmitted_segments: 4,
        timeouts: 5,
        buffered_bytes: 6,
        mean_srtt_us: 7_500,
    };
    assert_eq!(
        totals.fields(),
        [
            ("refusedOverLimit", 1.0),
            ("refusedNotAccepting", 2.0),
            ("resetUnknown", 3.0),
            ("retransmittedSegments", 4.0),
            ("timeouts", 5.0),
            ("bufferedBytes", 6.0),
            ("meanRttMs", 7.5)
        ]
    );
    let conn = ConnectionStats {
        retransmitted_segments: 1,
        timeouts: 2,
        tail_probes: 3,
        srtt_us: 12_500,
        cwnd: 5,
        bytes_in_flight: 6,
        bandwidth: 7.5,
        pacing_rate: 8.5,
        peer_window: 9,
    };
    assert_eq!(
        conn.fields(),
        [
            ("retransmittedSegments", 1.0),
            ("timeouts", 2.0),
            ("tailProbes", 3.0),
            ("rttMs", 12.5),
            ("congestionWindow", 5.0),
            ("bytesInFlight", 6.0),
            ("bandwidth", 7.5),
            ("pacingRate", 8.5),
            ("peerWindow", 9.0)
        ]
    );
}

/// A turned-down request says why, in words a log can show.
#[test]
fn each_tcp_error_reads_as_what_went_wrong() {
    let text = [TcpError::UnknownConnection, TcpError::NotWritable, TcpError::Unaddressable, TcpError::LimitReached].map(|e| e.to_string());
    assert_eq!(text, ["unknown connection", "connection is not writable", "address cannot be used", "connection limit reached"]);
}

/// The host hears of room to write (TCP_WRITABLE) only when there is some: a host that
/// filled the send buffer gets no empty grant, and hears again once ACKs free room.
#[test]
fn the_host_is_told_of_room_to_write_only_when_there_is_some() {
    let mut stack = Stack::new();
    let mut p = open(&mut stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000);
    let written = stack.tcp.send(p.conn, &vec![7; 4 << 20]).unwrap();
    assert!(written > 0);
    stack.run();
    stack.advance(1_000);
    let grants: Vec<u32> =
        stack.events().iter().filter_map(|e| if let Event::TcpWritable { room, .. } = e { Some(*room) } else { None }).collect();
    assert_eq!(grants, Vec::<u32>::new(), "the buffer is full: no grant");
    let sent: usize = stack.sent().iter().map(|s| s.payload.len()).sum();
    assert!(sent > 0);
    p.our_nxt = p.our_nxt.wrapping_add(sent as u32);
    stack.inject(p.peer, &p.segment());
    let grants: Vec<u32> =
        stack.events().iter().filter_map(|e| if let Event::TcpWritable { room, .. } = e { Some(*room) } else { None }).collect();
    assert_eq!(grants, vec![sent as u32], "the acknowledged bytes are room again");
}

/// RFC 6298 §3 (Karn): a SYN-ACK sent again because the peer's SYN came twice leaves it
/// unknown which one the ACK answers: no RTT sample from our clock, and (§5.7) the RTO for
/// data starts at 3 s. Sent once, the SYN-ACK does give one.
#[test]
fn rfc6298_3_a_syn_ack_sent_again_for_a_duplicate_syn_gives_no_rtt_sample() {
    let mut stack = Stack::new();
    let once = open(&mut stack, 1, "10.0.0.2:40001", "198.51.100.7:80", 1000);
    assert_eq!(stack.tcp.connection_stats(once.conn).map(|s| s.srtt_us), Some(RTT_US));
    let mut p =
        Peer { peer: 1, addr: addr("10.0.0.2:40000"), server: addr("198.51.100.7:80"), nxt: 5001, our_nxt: 0, conn: 0, clock: None };
    stack.inject(1, &p.syn(5000));
    p.conn = incoming(&mut stack.events()).unwrap();
    stack.tcp.accept(stack.now, p.conn).unwrap();
    stack.run();
    let first = stack.sent();
    assert!(first.len() == 1 && first[0].syn);
    stack.advance(5_000);
    stack.inject(1, &p.syn(5000));
    assert_eq!(stack.sent().iter().map(|s| (s.syn, s.seq)).collect::<Vec<_>>(), vec![(true, first[0].seq)], "the SYN-ACK again");
    p.our_nxt = first[0].seq.wrapping_add(1);
    stack.advance(5_000);
    stack.inject(1, &p.segment());
    assert!(stack.events().iter().any(|e| matches!(e, Event::TcpEstablished { .. })));
    assert_eq!(stack.tcp.connection_stats(p.conn).map(|s| s.srtt_us), Some(0), "no sample");
}

/// Room grants (TCP_WRITABLE) to `conn` among `events`.
fn grants(events: &[Event], conn: u32) -> Vec<u32> {
    events.iter().filter_map(|e| if let Event::TcpWritable { conn: c, room } = e { (*c == conn).then_some(*room) } else { None }).collect()
}

/// Our memory limit: once the connections together hold all they may, one holding data is
/// not given more room, but one holding nothing still is (it has nothing to give back; left
/// without room it could never send).
#[test]
fn limits_at_the_memory_limit_only_a_connection_holding_nothing_is_given_room() {
    let mut stack = Stack::new();
    stack.tcp.set_limits(Limits { buffered_bytes: 65_536, ..DEFAULT_LIMITS });
    let a = open(&mut stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000);
    stack.inject(1, &Segment { window: 0, ..a.segment() });
    assert_eq!(stack.tcp.send(a.conn, &[1; 65_536]), Ok(65_536));
    stack.run();
    assert_eq!(stack.tcp.totals().buffered_bytes, 65_536, "all the memory there is");
    stack.events();
    let mut b =
        Peer { peer: 1, addr: addr("10.0.0.2:40001"), server: addr("198.51.100.7:80"), nxt: 9001, our_nxt: 0, conn: 0, clock: None };
    stack.inject(1, &b.syn(9000));
    let mut events = stack.events();
    b.conn = incoming(&mut events.clone()).unwrap();
    stack.tcp.accept(stack.now, b.conn).unwrap();
    stack.run();
    b.our_nxt = stack.sent()[0].seq.wrapping_add(1);
    stack.advance(RTT_US);
    stack.inject(1, &b.segment());
    events.extend(stack.events());
    assert!(events.iter().any(|e| matches!(e, Event::TcpEstablished { conn, .. } if *conn == b.conn)), "{events:?}");
    assert_eq!(grants(&events, b.conn), vec![65_536], "room for the connection holding nothing: {events:?}");
    assert_eq!(grants(&events, a.conn), Vec::<u32>::new(), "none for the one holding it all");
    // B uses its room; while it holds data, ACKs free room but none is granted; once all
    // is acknowledged, B holds nothing again and is given room again.
    assert_eq!(stack.tcp.send(b.conn, &[2; 65_536]), Ok(65_536));
    let end = b.our_nxt.wrapping_add(65_536);
    let mut events = Vec::new();
    for _ in 0..1000 {
        stack.run();
        stack.advance(1_000);
        if let Some(last) =
            stack.sent().iter().map(|s| s.seq.wrapping_add(s.payload.len() as u32)).max_by_key(|&e| e.wrapping_sub(b.our_nxt))
        {
            b.our_nxt = last;
            stack.inject(1, &b.segment());
        }
        events.extend(stack.events());
        if b.our_nxt == end {
            break;
        }
    }
    assert_eq!(b.our_nxt, end, "all of B's data acknowledged");
    assert_eq!(grants(&events, b.conn), vec![65_536], "one grant, once B held nothing: {events:?}");
    assert_eq!(grants(&events, a.conn), Vec::<u32>::new());
}

/// RFC 6691 on a short segment: its spare room carries 4 bytes of SACK option header and
/// then one 8-byte block per 8 bytes (12 bytes for one, 20 for two); the blocks left out
/// follow on a pure ACK.
#[test]
fn rfc6691_a_short_segment_carries_the_sack_blocks_its_spare_room_holds() {
    for (len, blocks) in [(1380 - 11, 0), (1380 - 12, 1), (1380 - 19, 1), (1380 - 20, 2), (1380 - 36, 4)] {
        let mut stack = Stack::new();
        let p = open(&mut stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000);
        // Four holes: four blocks wait to be told.
        for offset in [100u32, 300, 500, 700] {
            stack.inject(
                p.peer,
                &Segment { payload: b"past a hole", ..segment(p.addr, p.server, p.nxt.wrapping_add(offset), Some(p.our_nxt)) },
            );
        }
        stack.sent();
        let sent = host_sends(&mut stack, &p, len);
        let shape: Vec<(usize, usize)> = sent.iter().map(|s| (s.payload.len(), s.sack_blocks)).collect();
        let mut want = vec![(len, blocks)];
        if blocks < 4 {
            want.push((0, 4));
        }
        assert_eq!(shape, want, "{len} bytes of data");
    }
}

/// Our limits count per peer: a connection that moved to TIME-WAIT no longer counts
/// toward the peer's connections, nor an established one toward its half-open ones.
#[test]
fn limits_count_a_connection_only_while_it_is_live_or_half_open() {
    let mut stack = Stack::new();
    stack.tcp.set_limits(Limits { connections_per_peer: 1, half_open_per_peer: 1, ..DEFAULT_LIMITS });
    let mut a = open(&mut stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000);
    into_time_wait(&mut stack, &mut a);
    // `open` fails unless the SYN is offered to the host.
    let b = open(&mut stack, 1, "10.0.0.2:40001", "198.51.100.7:80", 5000);
    assert_eq!(stack.tcp.connection_count(), 1);
    stack.inject(1, &Segment { rst: true, ..segment(b.addr, b.server, b.nxt, None) });
    assert_eq!(stack.tcp.connection_count(), 0);
    // B was established, so it freed no half-open place: one is still free for C.
    open(&mut stack, 1, "10.0.0.2:40002", "198.51.100.7:80", 9000);
}

/// Our limits: a connection forgotten while the peer has others leaves them counted
/// (here, toward the peer's connection limit); once the peer has none, the table forgets
/// the peer too (its bookkeeping does not grow with every peer ever seen).
#[test]
fn limits_a_forgotten_connection_leaves_the_peers_other_connections_counted() {
    let mut stack = Stack::new();
    stack.tcp.set_limits(Limits { connections_per_peer: 2, ..DEFAULT_LIMITS });
    let kept = open(&mut stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000);
    let reset = open(&mut stack, 1, "10.0.0.2:40001", "198.51.100.7:80", 1000);
    stack.inject(1, &Segment { rst: true, ..segment(reset.addr, reset.server, reset.nxt, None) });
    assert!(stack.events().iter().any(|e| matches!(e, Event::TcpClosed { .. })));
    let third = open(&mut stack, 1, "10.0.0.2:40002", "198.51.100.7:80", 1000);
    stack.inject(1, &syn_from("10.0.0.2:40003", "198.51.100.7:80"));
    assert!(incoming(&mut stack.events()).is_none(), "two live connections: the limit");
    assert!(stack.sent().iter().any(|s| s.rst));
    for p in [&kept, &third] {
        stack.inject(1, &Segment { rst: true, ..segment(p.addr, p.server, p.nxt, None) });
    }
    assert_eq!(stack.tcp.connection_count(), 0);
    assert!(stack.tcp.per_peer.is_empty(), "no connection left: the peer is forgotten");
}

/// The memory a connection holds (the table's bufferedBytes): data sent and not yet
/// acknowledged, data held behind a hole, and data given to the host and not consumed.
#[test]
fn a_connection_holds_its_unacknowledged_held_and_unconsumed_bytes() {
    let mut stack = Stack::new();
    let p = open(&mut stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000);
    stack.inject(p.peer, &Segment { payload: &[1; 100], ..p.segment() });
    stack.inject(p.peer, &Segment { payload: &[2; 200], ..segment(p.addr, p.server, p.nxt.wrapping_add(150), Some(p.our_nxt)) });
    assert_eq!(stack.tcp.totals().buffered_bytes, 100 + 200, "100 unconsumed, 200 behind a hole");
    assert_eq!(stack.tcp.send(p.conn, &[3; 1000]), Ok(1000));
    stack.run();
    assert_eq!(stack.tcp.totals().buffered_bytes, 100 + 200 + 1000);
    stack.tcp.consumed(stack.now, p.conn, 100).unwrap();
    stack.run();
    assert_eq!(stack.tcp.totals().buffered_bytes, 200 + 1000);
    // Forgotten, it holds nothing.
    stack.tcp.abort(p.conn, &mut stack.out).unwrap();
    stack.run();
    assert_eq!(stack.tcp.connection_count(), 0);
    assert_eq!(stack.tcp.totals().buffered_bytes, 0);
}

/// RFC 8985 §7: each tail-loss probe counts in the connection's stats (tailProbes).
#[test]
fn rfc8985_7_each_tail_loss_probe_is_counted() {
    let mut stack = Stack::new();
    let p = open(&mut stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000);
    assert_eq!(stack.tcp.send(p.conn, &[1; 500]), Ok(500));
    stack.run();
    stack.advance(1_000);
    assert_eq!(stack.sent().len(), 1);
    // PTO: 2 SRTT + 40 ms with one segment out; the RTO (200 ms) is later.
    stack.advance(58_000);
    assert_eq!(stack.tcp.connection_stats(p.conn).map(|s| s.tail_probes), Some(0));
    stack.advance(2_000);
    assert_eq!(stack.sent().len(), 1, "the probe");
    assert_eq!(stack.tcp.connection_stats(p.conn).map(|s| s.tail_probes), Some(1));
}

/// BBR (draft-cardwell-iccrg-bbr-congestion-control §4.3.2.2, §4.1.1.4): a flow the host
/// holds back, as a request/response one, sends app-limited flights; their small samples
/// do not count as a full pipe, so Startup, which never shrinks the window, goes on: the
/// flow keeps at least its initial window for when a burst comes.
#[test]
fn bbr_a_request_response_flow_is_app_limited_and_keeps_its_initial_window() {
    let mut stack = Stack::new();
    let mut p = open(&mut stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000);
    let initial = stack.tcp.connection_stats(p.conn).unwrap().cwnd;
    assert_eq!(initial, 10 * 1380);
    for _ in 0..20 {
        assert_eq!(stack.tcp.send(p.conn, &[5; 100]), Ok(100));
        stack.run();
        stack.advance(1_000);
        let sent: usize = stack.sent().iter().map(|s| s.payload.len()).sum();
        assert_eq!(sent, 100);
        stack.advance(RTT_US - 1_000);
        p.our_nxt = p.our_nxt.wrapping_add(100);
        stack.inject(p.peer, &p.segment());
    }
    let cwnd = stack.tcp.connection_stats(p.conn).unwrap().cwnd;
    assert!(cwnd >= initial, "cwnd {cwnd}");
}

/// draft-cheng-iccrg-delivery-rate-estimation §3.4: a flight is app-limited when the host ran
/// out of data before the congestion window was full, and the mark lasts until that flight
/// is delivered. One that ends exactly at cwnd is cwnd-limited: it leaves the mark as the
/// idle start set it (ending with the first delivery), so its rate samples measure the path
/// (marked, they could not end BBR's Startup). One byte short of cwnd, the mark covers it.
#[test]
fn rate_a_flight_that_ends_exactly_at_cwnd_is_not_app_limited_one_byte_short_is() {
    for (bytes, covered) in [(10 * 1380, false), (10 * 1380 - 1, true)] {
        let mut stack = Stack::new();
        let p = open(&mut stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000);
        assert_eq!(stack.tcp.connection_stats(p.conn).unwrap().cwnd, 10 * 1380);
        let idle = stack.tcp.connections[&p.conn].conn.snd.app_limited_until();
        assert_eq!(idle, Some(0), "idle, nothing delivered: app-limited until the first delivery");
        assert_eq!(stack.tcp.send(p.conn, &vec![3; bytes]), Ok(bytes));
        // The pacer lets part of the flight go; later (skipping the pacer's timer, so the
        // bucket has room to spare after the rest) the rest goes, and the sender finds
        // nothing more to send.
        stack.run();
        stack.now += 10_000;
        stack.run();
        let sent: usize = stack.sent().iter().map(|s| s.payload.len()).sum();
        assert_eq!(sent, bytes);
        let until = stack.tcp.connections[&p.conn].conn.snd.app_limited_until();
        let expected = if covered { Some(bytes as u64) } else { idle };
        assert_eq!(until, expected, "{bytes} bytes in flight");
    }
}

/// Our memory limit: windows and buffers stop growing once the connections together hold
/// three quarters of it, not before.
#[test]
fn limits_memory_pressure_begins_at_three_quarters_of_the_limit() {
    // One connection holds 65,536 bytes (its host wrote them; the peer's window is shut).
    for (limit, pressed) in [(87_382, false), (87_381, true)] {
        let mut stack = Stack::new();
        stack.tcp.set_limits(Limits { buffered_bytes: limit, ..DEFAULT_LIMITS });
        let p = open(&mut stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000);
        stack.inject(1, &Segment { window: 0, ..p.segment() });
        assert_eq!(stack.tcp.send(p.conn, &[1; 65_536]), Ok(65_536));
        stack.run();
        assert_eq!(stack.tcp.connections[&p.conn].conn.rcv.frozen, pressed, "65,536 of {limit}");
    }
}

/// RFC 6056 §3.1: the search for an ephemeral port covers the whole range, 16,384 ports,
/// the last one included; with every one in use, the connect fails.
#[test]
fn rfc6056_the_ephemeral_port_search_covers_all_16384_ports() {
    let mut stack = Stack::new();
    stack.tcp.set_limits(Limits { connections: 1 << 20, connections_per_peer: 1 << 20, half_open_per_peer: 1 << 20, ..DEFAULT_LIMITS });
    let (local, remote) = (addr("10.0.0.1:0"), addr("10.0.0.9:443"));
    for port in 49152..65535 {
        stack.tcp.connect(0, 1, SocketAddr::new(local.ip(), port), remote).unwrap();
    }
    stack.tcp.next_port = 49152;
    assert_eq!(stack.tcp.connect(0, 1, local, remote).map(|(_, at)| at.port()), Ok(65535));
    assert_eq!(stack.tcp.connect(0, 1, local, remote), Err(TcpError::Unaddressable), "all in use");
}

/// A poll sends at most POLL_BUDGET segments; when that cuts work short it returns the
/// current time (the host is to poll again at once), and the next poll goes on.
#[test]
fn a_poll_sends_at_most_its_budget_and_asks_for_another_at_once() {
    let mut stack = Stack::new();
    stack.tcp.set_limits(Limits { connections_per_peer: 100, ..DEFAULT_LIMITS });
    // 52 connections with five segments each to send: 260, the budget runs out within the
    // last one (51 x 5 = 255).
    let peers: Vec<Peer> = (0..52).map(|i| open(&mut stack, 1, &format!("10.0.0.2:{}", 40000 + i), "198.51.100.7:80", 1000)).collect();
    stack.sent();
    stack.advance(1_000_000);
    for p in &peers {
        assert_eq!(stack.tcp.send(p.conn, &[9; 5 * 1380]), Ok(5 * 1380));
    }
    let wake = stack.tcp.poll(stack.now, &mut stack.out);
    assert_eq!(stack.sent().len(), POLL_BUDGET);
    assert_eq!(wake, Some(stack.now), "work is left: poll again now");
    let wake = stack.tcp.poll(stack.now, &mut stack.out);
    assert_eq!(stack.sent().len(), 4);
    assert!(wake.is_some_and(|at| at > stack.now), "{wake:?}");
}

/// The table's meanRttMs: the mean smoothed RTT of the connections that have one (one
/// still waiting for the host has none and does not count as zero).
#[test]
fn the_mean_rtt_counts_only_connections_with_an_rtt() {
    let mut stack = Stack::new();
    assert_eq!(stack.tcp.totals().mean_srtt_us, 0);
    open(&mut stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000);
    stack.inject(1, &syn_from("10.0.0.2:40001", "198.51.100.7:80"));
    assert!(incoming(&mut stack.events()).is_some());
    assert_eq!(stack.tcp.totals().mean_srtt_us, RTT_US);
}

/// The same when what the budget cuts short is the resending of lost segments (nothing
/// new waits): the poll returns the current time, and the next poll goes on resending.
#[test]
fn a_poll_that_runs_out_of_budget_while_lost_segments_wait_asks_for_another_at_once() {
    let mut stack = Stack::new();
    stack.tcp.set_limits(Limits { connections_per_peer: 100, ..DEFAULT_LIMITS });
    let peers: Vec<Peer> = (0..52).map(|i| open(&mut stack, 1, &format!("10.0.0.2:{}", 40000 + i), "198.51.100.7:80", 1000)).collect();
    stack.sent();
    stack.advance(1_000_000);
    // The last connection sends five segments; 10 ms later the fifth is SACKed: RACK calls
    // the first four lost once the reordering window (2.5 ms) has passed.
    let last = &peers[51];
    assert_eq!(stack.tcp.send(last.conn, &[7; 5 * 1380]), Ok(5 * 1380));
    stack.run();
    let flight = stack.sent();
    assert_eq!(flight.len(), 5);
    stack.advance(10_000);
    let mut sack = SackBlocks::default();
    sack.push((flight[4].seq, flight[4].seq.wrapping_add(1380)));
    stack.inject(1, &Segment { sack, ..last.segment() });
    assert!(stack.sent().is_empty());
    stack.now += 2_500;
    // Then, at that instant, the other 51 have five new segments each: 255 of the 256.
    for p in &peers[..51] {
        assert_eq!(stack.tcp.send(p.conn, &[9; 5 * 1380]), Ok(5 * 1380));
    }
    let wake = stack.tcp.poll(stack.now, &mut stack.out);
    assert_eq!(stack.sent().len(), POLL_BUDGET);
    assert_eq!(wake, Some(stack.now), "lost segments wait: poll again now");
    stack.tcp.poll(stack.now, &mut stack.out);
    assert!(!stack.sent().is_empty(), "the next poll goes on resending (as recovery's window allows)");
}

/// A poll whose budget runs out just as a connection's flight fills its congestion window,
/// nothing more to send, leaves it waiting for ACKs: it asks for no poll at once (it was
/// not starved of budget; more would not fit in cwnd anyway).
#[test]
fn a_poll_that_runs_out_of_budget_as_a_flight_fills_cwnd_asks_for_no_poll_at_once() {
    let mut stack = Stack::new();
    stack.tcp.set_limits(Limits { connections_per_peer: 100, ..DEFAULT_LIMITS });
    // A 1 ms round trip: the pacer lets a whole initial window (ten segments) go at once.
    let peers: Vec<Peer> =
        (0..26).map(|i| open_timed(&mut stack, 1, &format!("10.0.0.2:{}", 40000 + i), "198.51.100.7:80", 1000, None, 1_000)).collect();
    stack.sent();
    // The last connection has four segments out; then the other 25 write ten each (250) and
    // it writes six more: the budget (256) ends with its tenth, which fills its cwnd.
    let last = &peers[25];
    assert_eq!(stack.tcp.send(last.conn, &[7; 4 * 1380]), Ok(4 * 1380));
    stack.run();
    assert_eq!(stack.sent().len(), 4);
    for p in &peers[..25] {
        assert_eq!(stack.tcp.send(p.conn, &[9; 10 * 1380]), Ok(10 * 1380));
    }
    assert_eq!(stack.tcp.send(last.conn, &[8; 6 * 1380]), Ok(6 * 1380));
    let wake = stack.tcp.poll(stack.now, &mut stack.out);
    assert_eq!(stack.sent().len(), POLL_BUDGET);
    let stats = stack.tcp.connection_stats(last.conn).unwrap();
    assert_eq!(stats.bytes_in_flight, stats.cwnd);
    assert!(wake.is_some_and(|at| at > stack.now), "nothing is due now: {wake:?} at {}", stack.now);
}

/// Five segments leave; the peer SACKs the fifth, and once the reordering window has passed
/// RACK calls the first four lost (RFC 8985 §6.2): recovery, and they are sent again.
/// Returns the connection, the first flight and the SACK that started recovery.
fn four_resent_after_the_fifth_is_sacked(stack: &mut Stack) -> (Peer, Vec<Sent>, SackBlocks) {
    let p = open(stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000);
    assert_eq!(stack.tcp.send(p.conn, &[7; 5 * 1380]), Ok(5 * 1380));
    stack.run();
    stack.now += 5_000; // the pacer
    stack.run();
    let flight = stack.sent();
    assert_eq!(flight.len(), 5);
    stack.advance(10_000);
    let mut sack = SackBlocks::default();
    sack.push((flight[4].seq, flight[4].seq.wrapping_add(1380)));
    stack.inject(1, &Segment { sack, ..p.segment() });
    stack.advance(5_000);
    assert_eq!(stack.sent().len(), 4, "the four resent");
    (p, flight, sack)
}

/// RFC 8985 §7.2: no tail-loss probe is armed in loss recovery. An ACK that makes progress
/// during recovery re-arms the timers: the retransmission timeout, not a probe two round
/// trips away (the probe would find recovery under way and send nothing: a wake for
/// nothing every 2 SRTT).
#[test]
fn rfc8985_7_2_progress_in_recovery_arms_no_tail_loss_probe() {
    let mut stack = Stack::new();
    let (p, flight, sack) = four_resent_after_the_fifth_is_sacked(&mut stack);
    // The first resend's ACK: progress, in recovery.
    stack.advance(10_000);
    let partial = Peer { our_nxt: flight[0].seq.wrapping_add(1380), ..p };
    stack.inject(1, &Segment { sack, ..partial.segment() });
    assert!(stack.sent().is_empty());
    // A probe would be due within 2 SRTT + 40 ms (the peer's delayed ACK, one segment out).
    let probe_within = 2 * stack.tcp.connection_stats(p.conn).unwrap().srtt_us + 40_000;
    let wake = stack.wake.expect("the retransmission timer");
    assert!(wake > stack.now + probe_within, "next wake in {} µs: a probe was armed", wake - stack.now);
}

/// A connection is in the timer queue once for its next wake: settling it again with the same
/// (or a later) wake queues nothing more, or a connection waiting on a long timer would add an
/// entry for every segment and call until it fires.
#[test]
fn a_connection_is_queued_once_for_its_next_wake() {
    let mut stack = Stack::new();
    let p = open(&mut stack, 1, "10.0.0.2:40000", "198.51.100.7:80", 1000);
    assert_eq!(host_sends(&mut stack, &p, 5).len(), 1, "the data leaves; its retransmission timer is armed");
    let queued = stack.tcp.timers.len();
    let wake = stack.tcp.connections[&p.conn].wake.expect("a timer for the data in flight");
    assert!(wake > stack.now);
    for _ in 0..5 {
        stack.tcp.settle(p.conn, stack.now);
    }
    assert_eq!(stack.tcp.timers.len(), queued);
    assert_eq!(stack.tcp.connections[&p.conn].wake, Some(wake));
}

/// RFC 8985 §6.2 step 5: RACK calls a segment lost only when one sent after it has arrived.
/// A retransmission sent after everything the peer SACKed has no such segment yet: if it is
/// lost too, RACK waits (the retransmission timer answers for it): an ACK that repeats SACKs
/// for segments sent before the resend does not make it lost.
#[test]
fn rfc8985_6_2_a_resend_is_not_lost_by_sacks_older_than_it() {
    let mut stack = Stack::new();
    let (p, _, sack) = four_resent_after_the_fifth_is_sacked(&mut stack);
    // The resends are lost as well; three RTTs later only the same SACK comes again (a
    // duplicate, or a window update): nothing sent after the resends has arrived, so they
    // are not called lost, then or in the next ten RTTs (the retransmission timer's 200 ms
    // floor is later).
    stack.advance(3 * RTT_US);
    stack.inject(1, &Segment { sack, ..p.segment() });
    stack.advance(10 * RTT_US);
    let resent: Vec<u32> = stack.sent().iter().map(|s| s.seq).collect();
    assert_eq!(resent, Vec::<u32>::new(), "resent again before any newer segment arrived");
}
