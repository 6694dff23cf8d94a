//! The engine against itself over simulated paths, on virtual time: a bottleneck with a
//! drop-tail queue, propagation delay, random loss, and a receiver whose socket buffer
//! overflows when a burst outruns it (as Debian's wireguard-go with the kernel's default
//! 208 KiB buffer does). Each test moves a bulk transfer and checks what a user relies
//! on: every byte arrives intact and in order, the transfer never stalls, and only what
//! was lost is sent again.

use super::*;
use crate::events::decode::{decode, Event};
use crate::ffi::{DEFAULT_LIMITS, DEFAULT_TIMEOUTS};
use crate::test_rng::XorShift;
use crate::wire::{self, Inner};
use std::collections::VecDeque;

const MTU: usize = 1420;

/// One direction of the path: a bottleneck (rate and queue) then a fixed delay.
#[derive(Clone, Copy)]
struct Hop {
    bits_per_second: f64,
    queue_packets: usize,
    delay_us: u64,
    loss: f64,
}

impl Hop {
    fn ideal(delay_us: u64) -> Hop {
        Hop { bits_per_second: 10e9, queue_packets: 100_000, delay_us, loss: 0.0 }
    }
}

/// A hop's state: when each queued packet leaves the bottleneck.
struct Queue {
    hop: Hop,
    departures: VecDeque<u64>,
    dropped: u64,
}

impl Queue {
    fn new(hop: Hop) -> Queue {
        Queue { hop, departures: VecDeque::new(), dropped: 0 }
    }

    /// When a packet sent at `now` arrives, or `None` if it is dropped.
    fn admit(&mut self, now: u64, bytes: usize, rng: &mut XorShift) -> Option<u64> {
        while self.departures.front().is_some_and(|&at| at <= now) {
            self.departures.pop_front();
        }
        if self.departures.len() >= self.hop.queue_packets || rng.chance(self.hop.loss) {
            self.dropped += 1;
            return None;
        }
        let start = self.departures.back().copied().unwrap_or(now).max(now);
        let depart = start + (bytes as f64 * 8.0 / self.hop.bits_per_second * 1e6).ceil() as u64;
        self.departures.push_back(depart);
        Some(depart + self.hop.delay_us)
    }
}

struct Side {
    tcp: Tcp,
    out: Capture,
    wake: Option<u64>,
    /// Polls in a row after which the stack asked for another at once.
    spins: u32,
}

impl Side {
    fn new(config: TcpConfig, seed: u64) -> Side {
        Side { tcp: Tcp::new(config, seed.into()), out: Capture::default(), wake: Some(0), spins: 0 }
    }

    fn take_events(&mut self) -> Vec<Event> {
        let events = decode(self.out.events.as_bytes());
        self.out.events.clear();
        events
    }
}

/// A path between a server (which sends the bulk) and a client (which reads it).
struct Path {
    /// Server → client: the bottleneck, then the client's socket buffer.
    down: Queue,
    client_socket: Queue,
    /// Client → server.
    up: Queue,
}

struct Outcome {
    received: usize,
    intact: bool,
    /// Longest stretch of virtual time with no new data for the client, in microseconds.
    longest_gap_us: u64,
    elapsed_us: u64,
    dropped: u64,
    server: ConnectionStats,
    retransmitted: u64,
    timeouts: u64,
}

fn byte_at(i: usize) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

fn config() -> TcpConfig {
    TcpConfig {
        mtu: MTU,
        max_receive_window: 4 << 20,
        max_send_buffer: 4 << 20,
        accept: true,
        limits: DEFAULT_LIMITS,
        timeouts: DEFAULT_TIMEOUTS,
    }
}

/// Moves `size` bytes from server to client over `path`; gives up after `limit_us` of virtual time.
/// A packet on the simulated wire: (arrival time, order sent, to the client?, bytes).
type InFlight = (u64, u64, bool, Vec<u8>);

fn download(size: usize, mut path: Path, seed: u64, limit_us: u64) -> Outcome {
    let mut rng = XorShift::new(seed);
    let mut server = Side::new(config(), seed ^ 1);
    let mut client = Side::new(config(), seed ^ 2);
    let (client_addr, server_addr): (SocketAddr, SocketAddr) = ("10.0.0.2:40000".parse().unwrap(), "198.51.100.7:80".parse().unwrap());
    let mut wire: BinaryHeap<Reverse<InFlight>> = BinaryHeap::new();
    let mut order = 0u64;
    let (id, _) = client.tcp.connect(0, 0, client_addr, server_addr).unwrap();
    let (mut written, mut received, mut intact) = (0usize, 0usize, true);
    let mut server_conn = None;
    let (mut now, mut last_data, mut longest_gap) = (0u64, 0u64, 0u64);
    let mut server_stats = ConnectionStats::default();

    let mut room = 0usize;
    while now < limit_us {
        // Deliver what has arrived.
        while let Some(Reverse((at, _, _, _))) = wire.peek() {
            if *at > now {
                break;
            }
            let Reverse((_, _, to_client, packet)) = wire.pop().unwrap();
            let side = if to_client { &mut client } else { &mut server };
            let Ok(Inner::Tcp { src, dst, tcp }) = wire::classify(&packet) else { panic!("not TCP") };
            let segment = segment::parse(src, dst, tcp).unwrap();
            side.tcp.input(now, 0, &segment, &mut side.out);
            side.wake = Some(now);
        }
        for side in [&mut server, &mut client] {
            if side.wake.is_some_and(|at| at <= now) {
                side.wake = side.tcp.poll(now, &mut side.out);
                // A stack that asks for a poll at once (or in the past) poll after poll is
                // spinning: fail rather than crawl through the time limit a microsecond a turn.
                side.spins = if side.wake.is_some_and(|at| at <= now) { side.spins + 1 } else { 0 };
                assert!(side.spins < 10_000, "the stack keeps asking for a poll at once ({now} µs)");
            }
        }
        // The applications: the server writes everything, the client reads at once.
        for event in server.take_events() {
            match event {
                Event::TcpIncoming { conn, .. } => {
                    server.tcp.accept(now, conn).unwrap();
                    server_conn = Some(conn);
                    server.wake = Some(now);
                }
                Event::TcpWritable { room: more, .. } => room += more as usize,
                Event::TcpEstablished { .. } | Event::TcpClosed { .. } | Event::TcpEof { .. } => {}
                other => panic!("server got {other:?}"),
            }
        }
        if let Some(conn) = server_conn {
            // As the host does: no more than the room granted, and all of that is taken.
            while room > 0 && written < size {
                let chunk: Vec<u8> = (written..size.min(written + room)).map(byte_at).collect();
                assert_eq!(server.tcp.send(conn, &chunk), Ok(chunk.len()), "granted room is taken whole");
                written += chunk.len();
                room -= chunk.len();
                if written == size {
                    server.tcp.shutdown(conn).unwrap();
                }
                server.wake = Some(now);
            }
            if let Some(stats) = server.tcp.connection_stats(conn) {
                server_stats = stats;
            }
        }
        let mut done = false;
        for event in client.take_events() {
            match event {
                Event::TcpData { conn, bytes } => {
                    intact &= bytes.iter().enumerate().all(|(i, &b)| b == byte_at(received + i));
                    received += bytes.len();
                    longest_gap = longest_gap.max(now - last_data);
                    last_data = now;
                    client.tcp.consumed(now, conn, bytes.len()).unwrap();
                    client.wake = Some(now);
                }
                Event::TcpEof { conn } => {
                    client.tcp.shutdown(conn).unwrap();
                    done = true;
                }
                Event::TcpEstablished { conn, .. } => assert_eq!(conn, id),
                Event::TcpWritable { .. } => {} // the client only reads
                Event::TcpClosed { reason, .. } => assert!(done || received == size, "closed early: reason {reason}"),
                other => panic!("client got {other:?}"),
            }
        }
        if done {
            break;
        }
        // Put what was sent on the wire.
        for packet in server.out.packets.drain(..) {
            let arrival = path.down.admit(now, packet.len(), &mut rng).and_then(|at| path.client_socket.admit(at, packet.len(), &mut rng));
            if let Some(at) = arrival {
                order += 1;
                wire.push(Reverse((at, order, true, packet)));
            }
        }
        for packet in client.out.packets.drain(..) {
            if let Some(at) = path.up.admit(now, packet.len(), &mut rng) {
                order += 1;
                wire.push(Reverse((at, order, false, packet)));
            }
        }
        let next = [wire.peek().map(|Reverse((at, ..))| *at), server.wake, client.wake].into_iter().flatten().min();
        match next {
            Some(at) => now = at.max(now + 1).min(limit_us),
            None => break,
        }
    }
    let totals = server.tcp.totals();
    Outcome {
        received,
        intact,
        longest_gap_us: longest_gap.max(now - last_data),
        elapsed_us: now,
        dropped: path.down.dropped + path.client_socket.dropped,
        server: server_stats,
        retransmitted: totals.retransmitted_segments,
        timeouts: totals.timeouts,
    }
}

fn report(name: &str, size: usize, outcome: &Outcome) {
    println!(
        "{name}: {} of {} bytes in {:.3} s virtual ({:.0} Mbit/s), longest gap {} ms, {} dropped, {} resent, {} timeouts, srtt {:.2} ms",
        outcome.received,
        size,
        outcome.elapsed_us as f64 / 1e6,
        outcome.received as f64 * 8.0 / outcome.elapsed_us.max(1) as f64,
        outcome.longest_gap_us / 1000,
        outcome.dropped,
        outcome.retransmitted,
        outcome.timeouts,
        outcome.server.srtt_us as f64 / 1000.0,
    );
}

#[test]
fn a_clean_fast_path_moves_everything_without_a_single_retransmission() {
    let size = 50 << 20;
    let path = Path { down: Queue::new(Hop::ideal(250)), client_socket: Queue::new(Hop::ideal(0)), up: Queue::new(Hop::ideal(250)) };
    let outcome = download(size, path, 1, 60_000_000);
    report("clean 10 Gbit/s, 0.5 ms RTT", size, &outcome);
    assert_eq!((outcome.received, outcome.intact), (size, true));
    assert_eq!((outcome.retransmitted, outcome.timeouts), (0, 0));
}

/// The case that stalled: a receiver that reads ~80,000 datagrams a second into a 90-datagram
/// socket buffer. Pacing keeps most bursts within it; what overflows is found by SACK and
/// RACK and resent, never by a timeout, and the transfer never pauses for long.
#[test]
fn a_receiver_with_a_small_socket_buffer_loses_bursts_but_never_stalls() {
    let size = 50 << 20;
    let slow_reader = Hop { bits_per_second: 80_000.0 * 1500.0 * 8.0, queue_packets: 90, delay_us: 0, loss: 0.0 };
    let path = Path { down: Queue::new(Hop::ideal(150)), client_socket: Queue::new(slow_reader), up: Queue::new(Hop::ideal(150)) };
    let outcome = download(size, path, 2, 60_000_000);
    report("receiver drains 80k datagrams/s into 90 slots", size, &outcome);
    assert_eq!((outcome.received, outcome.intact), (size, true));
    assert_eq!(outcome.timeouts, 0);
    assert!(outcome.longest_gap_us < 200_000, "a gap of {} ms", outcome.longest_gap_us / 1000);
    assert!(outcome.retransmitted <= outcome.dropped + 10, "resent {} for {} lost", outcome.retransmitted, outcome.dropped);
}

/// The WAN profile of the issue, with twice its loss: 100 Mbit/s each way, a 64-packet
/// queue, 20 ms each way, 1 % random loss both ways.
#[test]
fn a_lossy_wan_path_delivers_intact_and_resends_little_more_than_it_lost() {
    let size = 20 << 20;
    let wan = Hop { bits_per_second: 100e6, queue_packets: 64, delay_us: 20_000, loss: 0.01 };
    let path = Path { down: Queue::new(wan), client_socket: Queue::new(Hop::ideal(0)), up: Queue::new(wan) };
    let outcome = download(size, path, 3, 120_000_000);
    report("100 Mbit/s, 40 ms RTT, 64-packet queue, 1 % loss", size, &outcome);
    assert_eq!((outcome.received, outcome.intact), (size, true));
    assert!(outcome.longest_gap_us < 1_000_000, "a gap of {} ms", outcome.longest_gap_us / 1000);
    assert!(outcome.retransmitted <= outcome.dropped * 3 / 2 + 10, "resent {} for {} lost", outcome.retransmitted, outcome.dropped);
}

/// The reverse-path ACKs are lost too, and the queue is short: the connection still
/// finishes and its timeouts stay rare.
#[test]
fn heavy_loss_both_ways_still_completes() {
    let size = 4 << 20;
    let bad = Hop { bits_per_second: 20e6, queue_packets: 20, delay_us: 30_000, loss: 0.05 };
    let path = Path { down: Queue::new(bad), client_socket: Queue::new(Hop::ideal(0)), up: Queue::new(bad) };
    let outcome = download(size, path, 4, 300_000_000);
    report("20 Mbit/s, 60 ms RTT, 20-packet queue, 5 % loss", size, &outcome);
    assert_eq!((outcome.received, outcome.intact), (size, true));
    assert!(outcome.longest_gap_us < 5_000_000, "a gap of {} ms", outcome.longest_gap_us / 1000);
}

/// A lost SYN leaves the receiving side without an RTT from the handshake (Karn's rule);
/// its window must still grow, measured from the data (24 seeds, one of which loses a SYN).
#[test]
fn a_receivers_window_grows_even_without_a_round_trip_from_the_handshake() {
    let size = 20 << 20;
    let lossy = Hop { bits_per_second: 10e9, queue_packets: 100_000, delay_us: 20_000, loss: 0.01 };
    for seed in 1..=24 {
        let path = Path { down: Queue::new(lossy), client_socket: Queue::new(Hop::ideal(0)), up: Queue::new(lossy) };
        let outcome = download(size, path, seed, 60_000_000);
        assert_eq!((outcome.received, outcome.intact), (size, true), "seed {seed}");
        assert!(outcome.server.peer_window > 1 << 20, "seed {seed}: the client's window stayed at {}", outcome.server.peer_window);
    }
}
