//! Where TCP state lives: every connection through the tunnel, to any address and port.
//!
//! A SYN for an unseen (peer, source, destination) makes a connection that waits for the
//! host to accept or refuse it, so the host learns the destination the client asked for
//! and may decide before the handshake completes. A segment for no connection gets a RST.
//! The table enforces the limits that keep one peer from exhausting the server, and
//! polls each connection when it has something to do (a segment arrived, the host acted,
//! or one of its timers is due), within a budget of packets per poll.
//!
//! Read `connection/` for the state machine (its mod.rs maps its files: segment arrival,
//! output, timers, the host's calls), `send/` (with the SACK scoreboard, RACK and rate
//! sampling) and `recv.rs` for its halves, `congestion.rs` and `rtt.rs` for the window and
//! the timers, `timestamps.rs` for RFC 7323's clock and PAWS, `isn.rs` for initial sequence
//! numbers, `segment.rs` for the wire.
//! References: RFC 9293 (TCP), RFC 7323, RFC 2018, RFC 6298, RFC 8985, RFC 9438, RFC 6528,
//! RFC 6191.

mod congestion;
mod connection;
mod isn;
mod recv;
mod rtt;
pub mod segment;
mod send;
mod seq;
mod timestamps;

pub use connection::{ConnectionStats, State};
pub use segment::Segment;

use crate::events::{CloseReason, Events};
use crate::wire::{self, QuotedTcp, Unreachable};
use connection::{Connection, Settings};
use isn::IsnGenerator;
use segment::Outgoing;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::net::SocketAddr;

/// Packets one poll may send before it yields to the host (which then polls again at
/// once): keeps one poll from flooding the socket and lets arriving ACKs in between.
pub const POLL_BUDGET: usize = 256;
const EPHEMERAL_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;
/// A connection that reopens a 4-tuple in TIME-WAIT starts its sequence space this far past
/// the old one's end, beyond any unscaled window, so the peer cannot take an old duplicate
/// for new data (as Linux's tcp_timewait_state_process does; RFC 9293 §3.4.1).
const REOPEN_ISN_GAP: u32 = 65_535 + 2;

/// How many connections and bytes the table holds at most.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub connections_per_peer: usize,
    pub connections: usize,
    /// Connections still in the handshake or waiting for the host, per peer.
    pub half_open_per_peer: usize,
    /// Bytes all connections together may hold (unacknowledged data, data behind holes,
    /// and data the host was given and has not consumed). Past three quarters of it,
    /// windows stop growing.
    pub buffered_bytes: usize,
}

/// Microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// A connection that has not finished its handshake (or that the host has not
    /// answered) by then is refused.
    pub half_open_us: u64,
    /// After our FIN is acknowledged, how long we wait for the peer's.
    pub fin_wait_2_us: u64,
    /// Silence after which a keep-alive probe goes out; six unanswered probes, 20 s
    /// apart, reset the connection.
    pub keepalive_us: u64,
    /// How long sent data may stay unacknowledged before the connection is reset.
    pub user_timeout_us: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct TcpConfig {
    pub mtu: usize,
    /// The most a connection's receive window grows to.
    pub max_receive_window: usize,
    /// The most a connection's send buffer grows to.
    pub max_send_buffer: usize,
    /// Take new connections at all; when false, a SYN gets a RST.
    pub accept: bool,
    pub limits: Limits,
    pub timeouts: Timeouts,
}

/// Why a host request could not be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpError {
    /// No such connection (it may have closed already).
    UnknownConnection,
    /// The connection can no longer send (closed, or shut down by us).
    NotWritable,
    /// The local or remote address cannot be used (port 0, mixed families, in use).
    Unaddressable,
    /// Too many connections already.
    LimitReached,
}

impl fmt::Display for TcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcpError::UnknownConnection => "unknown connection",
            TcpError::NotWritable => "connection is not writable",
            TcpError::Unaddressable => "address cannot be used",
            TcpError::LimitReached => "connection limit reached",
        })
    }
}

/// How to turn a connection down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Reset,
    Unreachable,
}

/// Where the table's packets and events go: the tunnel, and the host's event log.
pub trait Link {
    /// An IP packet for the peer its destination routes to.
    fn send_packet(&mut self, packet: &[u8]);
    /// An ICMP error for the peer its destination routes to, if that peer may have one now.
    fn send_icmp_error(&mut self, now: u64, packet: &[u8]);
    fn events(&mut self) -> &mut Events;
}

/// What a connection sends through while it is polled.
pub struct Io<'a> {
    link: &'a mut dyn Link,
    scratch: &'a mut Vec<u8>,
    /// Packets this poll may still send.
    pub budget: usize,
}

impl Io<'_> {
    pub fn send(&mut self, segment: &Outgoing<'_>) {
        segment::build(segment, self.scratch);
        self.link.send_packet(self.scratch);
        self.budget = self.budget.saturating_sub(1);
    }

    pub fn events(&mut self) -> &mut Events {
        self.link.events()
    }
}

/// Counts over the table's life, for `stats()`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TcpTotals {
    /// Connections refused because a limit was reached.
    pub refused_over_limit: u64,
    /// SYNs refused because the host takes no connections.
    pub refused_not_accepting: u64,
    /// Segments for no connection, answered with RST.
    pub reset_unknown: u64,
    pub retransmitted_segments: u64,
    pub timeouts: u64,
    /// Bytes all connections hold now.
    pub buffered_bytes: usize,
    /// The mean smoothed RTT over open connections that have one, in microseconds.
    pub mean_srtt_us: u64,
}

impl TcpTotals {
    /// Adds a connection's loss counts (while it is open, and once when it is forgotten).
    fn add_losses(&mut self, stats: &ConnectionStats) {
        self.retransmitted_segments += stats.retransmitted_segments;
        self.timeouts += stats.timeouts;
    }

    /// The numbers by the names the host gives them (this order is the stats record's).
    pub fn fields(&self) -> [(&'static str, f64); 7] {
        [
            ("refusedOverLimit", self.refused_over_limit as f64),
            ("refusedNotAccepting", self.refused_not_accepting as f64),
            ("resetUnknown", self.reset_unknown as f64),
            ("retransmittedSegments", self.retransmitted_segments as f64),
            ("timeouts", self.timeouts as f64),
            ("bufferedBytes", self.buffered_bytes as f64),
            ("meanRttMs", self.mean_srtt_us as f64 / 1000.0),
        ]
    }
}

/// A connection's place in the table: its peer, the peer's end, our end.
type TupleKey = (u32, SocketAddr, SocketAddr);

struct Slot {
    conn: Connection,
    /// The earliest time this connection is in `timers` for.
    wake: Option<u64>,
    dirty: bool,
    /// What this connection counts toward: live and half-open counts, buffered bytes.
    counted_live: bool,
    counted_half_open: bool,
    counted_time_wait: bool,
    counted_bytes: usize,
}

#[derive(Debug, Default, Clone, Copy)]
struct PeerCount {
    live: usize,
    half_open: usize,
}

pub struct Tcp {
    config: TcpConfig,
    connections: HashMap<u32, Slot>,
    /// Connections by (peer, remote end, local end): two peers' flows never meet, even
    /// when their addresses overlap.
    by_tuple: HashMap<TupleKey, u32>,
    per_peer: HashMap<u32, PeerCount>,
    live: usize,
    /// Connections in TIME-WAIT: at most as many as `limits.connections`.
    time_wait: usize,
    buffered: usize,
    /// (time, connection) pairs; an entry is current only if it matches the slot's `wake`.
    timers: BinaryHeap<Reverse<(u64, u32)>>,
    /// Connections touched since the last poll, in order.
    dirty: Vec<u32>,
    next_id: u32,
    next_port: u16,
    isn: IsnGenerator,
    scratch: Vec<u8>,
    totals: TcpTotals,
}

impl Tcp {
    /// `random_seed` must come from the OS: it keys the initial sequence numbers (RFC 6528).
    pub fn new(config: TcpConfig, random_seed: u128) -> Self {
        let isn = IsnGenerator::new(random_seed);
        // The first ephemeral port, from the key's hash: the port is seen, the key must not be.
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        Tcp {
            config,
            connections: HashMap::new(),
            by_tuple: HashMap::new(),
            per_peer: HashMap::new(),
            live: 0,
            time_wait: 0,
            buffered: 0,
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            next_id: 1,
            next_port: *EPHEMERAL_PORTS.start() + (isn.initial(0, unspecified, unspecified).seq % 16384) as u16,
            isn,
            scratch: Vec::new(),
            totals: TcpTotals::default(),
        }
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.config.limits = limits;
    }

    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.config.timeouts = timeouts;
    }

    /// A segment from `peer`, already parsed.
    pub fn input(&mut self, now: u64, peer: u32, seg: &Segment<'_>, link: &mut dyn Link) {
        let key = (peer, seg.src, seg.dst);
        let mut reopened_after = None;
        if let Some(&id) = self.by_tuple.get(&key) {
            let yields = self.connections.get(&id).is_some_and(|slot| seg.opens() && slot.conn.yields_to(seg));
            if !yields {
                if let Some(slot) = self.connections.get_mut(&id) {
                    let mut io = Io { link, scratch: &mut self.scratch, budget: usize::MAX };
                    slot.conn.on_segment(now, seg, &mut io);
                }
                self.mark(id);
                return;
            }
            reopened_after = self.connections.get(&id).map(|slot| slot.conn.snd.nxt);
            self.forget(id);
        }
        if seg.rst {
            return;
        }
        if !seg.opens() {
            self.totals.reset_unknown += 1;
            return self.reset(seg, link);
        }
        if !self.config.accept {
            self.totals.refused_not_accepting += 1;
            return self.reset(seg, link);
        }
        let count = self.per_peer.get(&peer).copied().unwrap_or_default();
        let limits = self.config.limits;
        if self.live >= limits.connections || count.live >= limits.connections_per_peer || count.half_open >= limits.half_open_per_peer {
            self.totals.refused_over_limit += 1;
            return self.reset(seg, link);
        }
        let id = self.new_id();
        let settings = self.settings(&seg.dst);
        let mut initial = self.isn.initial(now, seg.dst, seg.src);
        if let Some(old_nxt) = reopened_after {
            initial.seq = old_nxt.wrapping_add(REOPEN_ISN_GAP);
        }
        let conn = Connection::incoming(id, peer, seg, initial, settings, now);
        link.events().tcp_incoming(id, peer, conn.remote, conn.local);
        self.insert(conn);
    }

    /// An ICMP destination unreachable from `peer` quoting one of our segments: ends the
    /// connect it answers (see `Connection::on_unreachable`). False when it answers none.
    pub fn unreachable(&mut self, peer: u32, quoted: &QuotedTcp, why: Unreachable, link: &mut dyn Link) -> bool {
        let Some(&id) = self.by_tuple.get(&(peer, quoted.remote, quoted.local)) else {
            return false;
        };
        let Some(slot) = self.connections.get_mut(&id) else {
            return false;
        };
        let reason = match why {
            Unreachable::Net => CloseReason::NetUnreachable,
            Unreachable::Host => CloseReason::HostUnreachable,
            // No one listens there: what a RST would say (Linux: ECONNREFUSED, as a firewall's REJECT gives).
            Unreachable::Port => CloseReason::Refused,
        };
        let mut io = Io { link, scratch: &mut self.scratch, budget: usize::MAX };
        let ended = slot.conn.on_unreachable(quoted.seq, reason, &mut io);
        if ended {
            self.mark(id);
        }
        ended
    }

    /// Opens a connection from `local` (port 0 picks one) to `remote`, through `peer`.
    /// Returns its id and the local address used.
    pub fn connect(&mut self, now: u64, peer: u32, local: SocketAddr, remote: SocketAddr) -> Result<(u32, SocketAddr), TcpError> {
        if local.is_ipv4() != remote.is_ipv4() || remote.port() == 0 || local.ip().is_unspecified() {
            return Err(TcpError::Unaddressable);
        }
        if self.live >= self.config.limits.connections {
            return Err(TcpError::LimitReached);
        }
        let local = if local.port() != 0 { local } else { self.free_port(peer, local, remote)? };
        if self.by_tuple.contains_key(&(peer, remote, local)) {
            return Err(TcpError::Unaddressable);
        }
        let id = self.new_id();
        let settings = self.settings(&local);
        let conn = Connection::outgoing(id, peer, local, remote, self.isn.initial(now, local, remote), settings, now);
        self.insert(conn);
        Ok((id, local))
    }

    /// Runs every connection that has something to do; returns when the table next wants
    /// a poll (`now` when the budget ran out with work left).
    pub fn poll(&mut self, now: u64, link: &mut dyn Link) -> Option<u64> {
        while let Some(&Reverse((at, id))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            if let Some(slot) = self.connections.get_mut(&id) {
                if slot.wake == Some(at) {
                    slot.wake = None;
                    self.mark(id);
                }
            }
        }
        let mut io = Io { link, scratch: &mut self.scratch, budget: POLL_BUDGET };
        let mut queue = std::mem::take(&mut self.dirty);
        // What the budget does not reach stays first in line for the next poll.
        let mut polled = 0;
        for &id in &queue {
            if io.budget == 0 {
                break;
            }
            polled += 1;
            if let Some(slot) = self.connections.get_mut(&id) {
                slot.dirty = false;
                slot.conn.poll(now, &mut io);
            }
        }
        self.dirty = queue.split_off(polled);
        for id in queue {
            self.settle(id, now);
        }
        if !self.dirty.is_empty() {
            return Some(now);
        }
        while let Some(&Reverse((at, id))) = self.timers.peek() {
            if self.connections.get(&id).is_some_and(|slot| slot.wake == Some(at)) {
                return Some(at);
            }
            self.timers.pop();
        }
        None
    }

    // ---- the host's requests ----

    pub fn accept(&mut self, now: u64, id: u32) -> Result<(), TcpError> {
        self.slot(id)?.conn.accept(now);
        self.mark(id);
        Ok(())
    }

    /// Turns down a connection the host has not accepted.
    pub fn refuse(&mut self, now: u64, id: u32, how: Refusal, link: &mut dyn Link) -> Result<(), TcpError> {
        let slot = self.connections.get_mut(&id).ok_or(TcpError::UnknownConnection)?;
        let conn = &mut slot.conn;
        if conn.state != State::Pending {
            return Err(TcpError::NotWritable);
        }
        if how == Refusal::Unreachable {
            // Quote the SYN as the peer sent it, so its stack finds the socket.
            let syn = Outgoing { syn: true, ..Outgoing::control(conn.remote, conn.local, conn.rcv.nxt.wrapping_sub(1), None) };
            let mut original = Vec::new();
            segment::build(&syn, &mut original);
            if wire::unreachable(&original, Unreachable::Host, &mut self.scratch).is_ok() {
                link.send_icmp_error(now, &self.scratch);
            }
        }
        let mut io = Io { link, scratch: &mut self.scratch, budget: usize::MAX };
        conn.refuse(&mut io, how == Refusal::Reset);
        self.mark(id);
        Ok(())
    }

    /// Queues what fits of `data` (the host writes no more than it was granted, and that
    /// always fits); returns how many bytes.
    pub fn send(&mut self, id: u32, data: &[u8]) -> Result<usize, TcpError> {
        let slot = self.slot(id)?;
        let n = slot.conn.write(data).ok_or(TcpError::NotWritable)?;
        self.mark(id);
        Ok(n)
    }

    /// The host consumed `bytes` of what it was given.
    pub fn consumed(&mut self, now: u64, id: u32, bytes: usize) -> Result<(), TcpError> {
        self.slot(id)?.conn.consumed(now, bytes);
        self.mark(id);
        Ok(())
    }

    /// Sends FIN once the send buffer has drained.
    pub fn shutdown(&mut self, id: u32) -> Result<(), TcpError> {
        self.slot(id)?.conn.shutdown();
        self.mark(id);
        Ok(())
    }

    /// Sends RST and forgets the connection; a TCP_CLOSED event follows.
    pub fn abort(&mut self, id: u32, link: &mut dyn Link) -> Result<(), TcpError> {
        let slot = self.connections.get_mut(&id).ok_or(TcpError::UnknownConnection)?;
        let mut io = Io { link, scratch: &mut self.scratch, budget: usize::MAX };
        slot.conn.abort(&mut io);
        self.mark(id);
        Ok(())
    }

    /// The host reads no more: drop what arrives, keep the window open.
    pub fn discard(&mut self, id: u32) -> Result<(), TcpError> {
        self.slot(id)?.conn.discard();
        self.mark(id);
        Ok(())
    }

    /// The tunnel to `peer` has a new session (`Connection::path_renewed`).
    pub fn path_renewed(&mut self, now: u64, peer: u32) {
        let ids: Vec<u32> = self
            .connections
            .iter_mut()
            .filter(|(_, slot)| slot.conn.peer == peer)
            .filter_map(|(&id, slot)| slot.conn.path_renewed(now).then_some(id))
            .collect();
        for id in ids {
            self.mark(id);
        }
    }

    /// The peer is gone: its connections close as reset, at once and with no RST (there is
    /// no way to reach it).
    pub fn drop_peer(&mut self, peer: u32, link: &mut dyn Link) {
        let ids: Vec<u32> = self.connections.iter().filter(|(_, slot)| slot.conn.peer == peer).map(|(&id, _)| id).collect();
        let mut io = Io { link, scratch: &mut self.scratch, budget: 0 };
        for &id in &ids {
            if let Some(slot) = self.connections.get_mut(&id) {
                slot.conn.peer_gone(&mut io);
            }
        }
        for id in ids {
            self.forget(id);
        }
    }

    pub fn connection_stats(&self, id: u32) -> Option<ConnectionStats> {
        self.connections.get(&id).map(|slot| slot.conn.stats())
    }

    /// Live connections (TIME-WAIT leftovers not counted).
    pub fn connection_count(&self) -> usize {
        self.live
    }

    /// Lifetime counts, including the connections open now, and what they hold now.
    pub fn totals(&self) -> TcpTotals {
        let mut totals = self.totals;
        let (mut rtt_sum, mut rtt_count) = (0, 0);
        for slot in self.connections.values() {
            let stats = slot.conn.stats();
            totals.add_losses(&stats);
            if stats.srtt_us > 0 {
                rtt_sum += stats.srtt_us;
                rtt_count += 1;
            }
        }
        totals.buffered_bytes = self.buffered;
        totals.mean_srtt_us = rtt_sum.checked_div(rtt_count).unwrap_or(0);
        totals
    }

    // ---- bookkeeping ----

    fn slot(&mut self, id: u32) -> Result<&mut Slot, TcpError> {
        self.connections.get_mut(&id).ok_or(TcpError::UnknownConnection)
    }

    fn mark(&mut self, id: u32) {
        if let Some(slot) = self.connections.get_mut(&id) {
            if !slot.dirty {
                slot.dirty = true;
                self.dirty.push(id);
            }
        }
    }

    fn insert(&mut self, conn: Connection) {
        let id = conn.id;
        self.by_tuple.insert((conn.peer, conn.remote, conn.local), id);
        self.connections.insert(
            id,
            Slot {
                conn,
                wake: None,
                dirty: false,
                counted_live: false,
                counted_half_open: false,
                counted_time_wait: false,
                counted_bytes: 0,
            },
        );
        self.recount(id);
        self.mark(id);
    }

    /// After a poll: forget a finished connection, or schedule its next wake.
    fn settle(&mut self, id: u32, now: u64) {
        let Some(slot) = self.connections.get(&id) else { return };
        // A connection entering TIME-WAIT past the cap closes at once instead, as Linux's
        // does past tcp_max_tw_buckets: a minute of leftovers must not grow without bound.
        let time_wait_over_cap = slot.conn.is_time_wait() && !slot.counted_time_wait && self.time_wait >= self.config.limits.connections;
        if slot.conn.is_finished() || time_wait_over_cap {
            self.forget(id);
            return;
        }
        self.recount(id);
        let limit = self.config.limits.buffered_bytes;
        let (pressed, full) = (self.buffered * 4 >= limit * 3, self.buffered >= limit);
        let Some(slot) = self.connections.get_mut(&id) else { return };
        slot.conn.set_pressure(pressed, full);
        match slot.conn.next_wake(now) {
            Some(0) => {
                slot.dirty = true;
                self.dirty.push(id);
            }
            Some(at) if slot.wake.is_none_or(|wake| at < wake) => {
                slot.wake = Some(at);
                self.timers.push(Reverse((at, id)));
            }
            _ => {}
        }
    }

    /// Brings the per-peer and total counts in line with the connection's state.
    fn recount(&mut self, id: u32) {
        let Some(slot) = self.connections.get_mut(&id) else { return };
        let (live, half_open, bytes) = (slot.conn.is_live(), slot.conn.is_half_open(), slot.conn.held_bytes());
        // A connection leaves TIME-WAIT only to be forgotten, which uncounts it.
        if slot.conn.is_time_wait() && !slot.counted_time_wait {
            self.time_wait += 1;
            slot.counted_time_wait = true;
        }
        let count = self.per_peer.entry(slot.conn.peer).or_default();
        if live != slot.counted_live {
            if live {
                count.live += 1;
                self.live += 1;
            } else {
                count.live -= 1;
                self.live -= 1;
            }
            slot.counted_live = live;
        }
        if half_open != slot.counted_half_open {
            if half_open {
                count.half_open += 1;
            } else {
                count.half_open -= 1;
            }
            slot.counted_half_open = half_open;
        }
        self.buffered = self.buffered - slot.counted_bytes + bytes;
        slot.counted_bytes = bytes;
    }

    fn forget(&mut self, id: u32) {
        let Some(slot) = self.connections.get_mut(&id) else { return };
        let peer = slot.conn.peer;
        self.totals.add_losses(&slot.conn.stats());
        let (live, half_open, bytes) = (slot.counted_live, slot.counted_half_open, slot.counted_bytes);
        let count = self.per_peer.entry(peer).or_default();
        count.live -= live as usize;
        count.half_open -= half_open as usize;
        self.live -= live as usize;
        self.time_wait -= slot.counted_time_wait as usize;
        self.buffered -= bytes;
        if count.live == 0 && count.half_open == 0 {
            self.per_peer.remove(&peer);
        }
        if let Some(slot) = self.connections.remove(&id) {
            self.by_tuple.remove(&(slot.conn.peer, slot.conn.remote, slot.conn.local));
        }
    }

    /// RFC 9293 §3.10.7.1: a segment for no connection gets a RST that it will accept.
    fn reset(&mut self, seg: &Segment<'_>, link: &mut dyn Link) {
        let rst = match seg.ack {
            Some(ack) => Outgoing { rst: true, ..Outgoing::control(seg.dst, seg.src, ack, None) },
            None => Outgoing { rst: true, ..Outgoing::control(seg.dst, seg.src, 0, Some(seq::add(seg.seq, seg.len()))) },
        };
        segment::build(&rst, &mut self.scratch);
        link.send_packet(&self.scratch);
    }

    fn settings(&self, local: &SocketAddr) -> Settings {
        let headers = wire::ip_header_len(local.ip()) + segment::HEADER_LEN;
        Settings {
            mss: self.config.mtu.saturating_sub(headers).max(536),
            max_receive_window: self.config.max_receive_window,
            max_send_buffer: self.config.max_send_buffer,
            timeouts: self.config.timeouts,
        }
    }

    fn new_id(&mut self) -> u32 {
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1).max(1);
            if !self.connections.contains_key(&id) {
                return id;
            }
        }
    }

    fn free_port(&mut self, peer: u32, local: SocketAddr, remote: SocketAddr) -> Result<SocketAddr, TcpError> {
        let span = EPHEMERAL_PORTS.end() - EPHEMERAL_PORTS.start() + 1;
        for _ in 0..span {
            let port = self.next_port;
            self.next_port = if port == *EPHEMERAL_PORTS.end() { *EPHEMERAL_PORTS.start() } else { port + 1 };
            let candidate = SocketAddr::new(local.ip(), port);
            if !self.by_tuple.contains_key(&(peer, remote, candidate)) {
                return Ok(candidate);
            }
        }
        Err(TcpError::Unaddressable)
    }
}

/// The link of a test's stack: keeps every packet it sent and the events it reported.
#[cfg(test)]
#[derive(Default)]
struct Capture {
    packets: Vec<Vec<u8>>,
    events: Events,
}

#[cfg(test)]
impl Link for Capture {
    fn send_packet(&mut self, packet: &[u8]) {
        self.packets.push(packet.to_vec());
    }

    fn send_icmp_error(&mut self, _now: u64, packet: &[u8]) {
        self.send_packet(packet);
    }

    fn events(&mut self) -> &mut Events {
        &mut self.events
    }
}

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod rules_tests;
#[cfg(test)]
mod tests;
