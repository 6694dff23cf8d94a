//! One TCP connection: RFC 9293's state machine, driven by segments from the peer, by
//! the host (accept, write, consume, shut down, abort) and by time.
//!
//! This file holds the connection's state and its life's beginning and end; the rules
//! live beside it, in the order data flows:
//!
//! - `input.rs`: segment arrival, state by state (RFC 9293 §3.10.7, RFC 5961), ACK
//!   processing and the receive side's ACK policy (RFC 9293 §3.8.6.3, RFC 1122 4.2.3.2).
//! - `output.rs`: what goes out when the connection is polled: the handshake, data within
//!   the congestion window at the pacing rate, ACKs, probes, RST.
//! - `timers.rs`: RFC 6298 retransmission timeout, RFC 8985 tail-loss probe and reordering
//!   timer, zero-window probes and keep-alive (RFC 9293 §3.8.6.1, §3.8.4), close timeouts.
//! - `host.rs`: what the host asks for (accept, write, consumed, shutdown, abort, ...).
//! - `pacer.rs`: the token bucket that spaces segments at the pacing rate.
//!
//! The halves live in `../send` and `../recv.rs`, the window arithmetic in
//! `../congestion.rs` and `../rtt.rs`.

mod host;
mod input;
mod output;
mod pacer;
mod timers;

use super::congestion::Congestion;
use super::isn::Initial;
use super::recv::Receiver;
use super::rtt::Rtt;
use super::segment::{self, Segment};
use super::send::Sender;
use super::timestamps::Timestamps;
use super::{Io, Timeouts};
use crate::events::CloseReason;
use pacer::Pacer;
use std::net::SocketAddr;

/// The first segments are acknowledged one by one, so the sender's window opens fast.
const QUICKACKS: u32 = 16;
/// SYN and SYN-ACK retransmissions before giving up (1 + 2 + 4 + 8 + 16 s).
const HANDSHAKE_RETRIES: u32 = 5;
const HANDSHAKE_RTO_US: u64 = 1_000_000;
/// The send buffer's size before the congestion window asks for more.
pub const INITIAL_SEND_LIMIT: usize = 64 * 1024;
/// A segment's payload when the peer names no MSS (RFC 9293 §3.7.1).
const DEFAULT_MSS: u16 = 536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// A SYN arrived; the host has not accepted it yet.
    Pending,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    Closing,
    TimeWait,
    CloseWait,
    LastAck,
    Closed,
}

/// Counters a user reads to see why a transfer is slow.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ConnectionStats {
    pub retransmitted_segments: u64,
    pub timeouts: u64,
    pub tail_probes: u64,
    pub srtt_us: u64,
    pub cwnd: usize,
    pub bytes_in_flight: usize,
    /// The bottleneck bandwidth estimate and the pacing rate, bytes per second.
    pub bandwidth: f64,
    pub pacing_rate: f64,
    /// The peer's receive window: what it lets us have in flight.
    pub peer_window: usize,
}

impl ConnectionStats {
    /// The numbers by the names the host gives them (this order is the stats record's).
    pub fn fields(&self) -> [(&'static str, f64); 9] {
        [
            ("retransmittedSegments", self.retransmitted_segments as f64),
            ("timeouts", self.timeouts as f64),
            ("tailProbes", self.tail_probes as f64),
            ("rttMs", self.srtt_us as f64 / 1000.0),
            ("congestionWindow", self.cwnd as f64),
            ("bytesInFlight", self.bytes_in_flight as f64),
            ("bandwidth", self.bandwidth),
            ("pacingRate", self.pacing_rate),
            ("peerWindow", self.peer_window as f64),
        ]
    }
}

/// Bytes a host consumed per interval, tracked by the receiver; the rest of these are
/// the per-connection settings the table hands down.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub mss: usize,
    pub max_receive_window: usize,
    pub max_send_buffer: usize,
    pub timeouts: Timeouts,
}

/// What the host has been told.
#[derive(Debug, Default)]
struct Reported {
    established: bool,
    eof: bool,
    closed: bool,
}

pub struct Connection {
    pub id: u32,
    pub peer: u32,
    /// The peer's end.
    pub remote: SocketAddr,
    /// Our end: for a connection from a peer, the destination it asked for.
    pub local: SocketAddr,
    pub state: State,
    iss: u32,
    /// Our timestamp clock's offset; RFC 7323 timestamps, once both sides offered them.
    ts_offset: u32,
    ts: Option<Timestamps>,
    pub snd: Sender,
    pub rcv: Receiver,
    settings: Settings,
    /// Both sides offered window scaling (RFC 7323 §2.2); the peer's shift; SACK agreed.
    scaling: bool,
    send_shift: u8,
    sack_ok: bool,
    /// The largest segment the peer has sent us, for the ACK-every-two-segments rule.
    rcv_mss: usize,
    rtt: Rtt,
    cc: Congestion,
    pacer: Pacer,
    /// In loss recovery until the cumulative ACK passes this point.
    recovery_until: Option<u32>,
    /// The connection would send more but this poll's budget ran out.
    starved: bool,
    ack_now: bool,
    /// A data segment had no room for all the SACK blocks: a pure ACK follows with them.
    sack_left_out: bool,
    ack_at: Option<u64>,
    unacked_bytes: usize,
    quickacks: u32,
    rst_due: bool,
    handshake_due: bool,
    /// When our first SYN or SYN-ACK left (`None` before it did).
    handshake_sent_at: Option<u64>,
    handshake_retries: u32,
    /// Our SYN or SYN-ACK went more than once (a timeout, or a duplicate SYN): Karn's rule.
    handshake_resent: bool,
    rto_at: Option<u64>,
    pto_at: Option<u64>,
    reorder_at: Option<u64>,
    /// The next zero-window probe.
    probe_at: Option<u64>,
    /// Zero-window probes sent since the window last opened: their backoff, which an answer
    /// that leaves the window shut does not end (RFC 1122 4.2.2.17).
    window_probes: u32,
    /// When the last of them went out.
    window_probe_sent_at: Option<u64>,
    /// Keep-alive probes sent since the peer was last heard from.
    probes: u32,
    /// Pending answer, FIN-WAIT-2 or TIME-WAIT ends.
    state_deadline: Option<u64>,
    last_heard: u64,
    last_progress: u64,
    /// Send room the host was told of (TCP_WRITABLE) and has not used yet.
    granted: usize,
    /// The server holds all it may: only a connection holding nothing is given room.
    full: bool,
    reported: Reported,
    timeouts: u64,
    tail_probes: u64,
}

impl Connection {
    /// A peer's SYN for a new connection; it waits for the host's `accept`.
    pub fn incoming(id: u32, peer: u32, syn: &Segment<'_>, initial: Initial, settings: Settings, now: u64) -> Self {
        let mut conn = Connection::new(id, peer, syn.src, syn.dst, initial, settings, now);
        conn.take_syn_options(syn, now);
        conn.rcv = Receiver::new(syn.seq, settings.max_receive_window, conn.receive_shift());
        conn.state = State::Pending;
        conn.state_deadline = Some(now + settings.timeouts.half_open_us);
        conn
    }

    /// Our own connection to `remote`; the SYN goes out on the next poll.
    pub fn outgoing(id: u32, peer: u32, local: SocketAddr, remote: SocketAddr, initial: Initial, settings: Settings, now: u64) -> Self {
        let mut conn = Connection::new(id, peer, remote, local, initial, settings, now);
        conn.state = State::SynSent;
        conn.handshake_due = true;
        conn
    }

    fn new(id: u32, peer: u32, remote: SocketAddr, local: SocketAddr, initial: Initial, settings: Settings, now: u64) -> Self {
        let iss = initial.seq;
        Connection {
            id,
            peer,
            remote,
            local,
            state: State::Closed,
            iss,
            ts_offset: initial.ts_offset,
            ts: None,
            snd: Sender::new(iss, settings.mss, INITIAL_SEND_LIMIT.min(settings.max_send_buffer)),
            rcv: Receiver::new(0, settings.max_receive_window, 0),
            settings,
            scaling: false,
            send_shift: 0,
            sack_ok: false,
            rcv_mss: DEFAULT_MSS as usize,
            rtt: Rtt::default(),
            cc: Congestion::new(settings.mss),
            pacer: Pacer::new(),
            recovery_until: None,
            starved: false,
            ack_now: false,
            sack_left_out: false,
            ack_at: None,
            unacked_bytes: 0,
            quickacks: QUICKACKS,
            rst_due: false,
            handshake_due: false,
            handshake_sent_at: None,
            handshake_retries: 0,
            handshake_resent: false,
            rto_at: None,
            pto_at: None,
            reorder_at: None,
            probe_at: None,
            window_probes: 0,
            window_probe_sent_at: None,
            probes: 0,
            state_deadline: None,
            last_heard: now,
            last_progress: now,
            granted: 0,
            full: false,
            reported: Reported::default(),
            timeouts: 0,
            tail_probes: 0,
        }
    }

    /// What the peer's SYN (or SYN-ACK), which arrived at `now`, agrees to. We offer every
    /// option we know, so each is on when the peer offers it too.
    fn take_syn_options(&mut self, syn: &Segment<'_>, now: u64) {
        let options = syn.syn_options;
        let peer_mss = options.mss.unwrap_or(DEFAULT_MSS).max(64) as usize;
        // RFC 7323 §3.2: timestamps, once on, ride every segment and take from its payload.
        self.ts = syn.timestamp.map(|ts| Timestamps::new(self.ts_offset, ts.val, now, syn.seq.wrapping_add(1)));
        let option_space = if self.ts.is_some() { segment::TIMESTAMPS_LEN } else { 0 };
        let mss = self.settings.mss.min(peer_mss) - option_space;
        self.snd.mss = mss;
        self.cc = Congestion::new(mss);
        self.sack_ok = options.sack_permitted;
        // We always offer scaling; it is on when the peer offers it too.
        self.scaling = options.window_scale.is_some();
        self.send_shift = options.window_scale.unwrap_or(0);
        self.rcv_mss = mss;
    }

    /// The shift for the windows we advertise: ours when scaling is on.
    fn receive_shift(&self) -> u8 {
        if self.scaling {
            own_shift(&self.settings)
        } else {
            0
        }
    }

    fn is_synchronized(&self) -> bool {
        !matches!(self.state, State::Pending | State::SynSent | State::SynReceived | State::Closed)
    }

    /// The connection is over; the host hears why.
    fn close(&mut self, io: &mut Io<'_>, reason: CloseReason) {
        self.report_closed(io, reason);
        self.state = State::Closed;
        self.rto_at = None;
        self.pto_at = None;
        self.probe_at = None;
        self.reorder_at = None;
        self.state_deadline = None;
        self.ack_at = None;
    }

    fn report_closed(&mut self, io: &mut Io<'_>, reason: CloseReason) {
        if !self.reported.closed {
            self.reported.closed = true;
            io.events().tcp_closed(self.id, reason);
        }
    }
}

/// Our window scale: enough for the largest window we may advertise.
fn own_shift(settings: &Settings) -> u8 {
    let mut shift = 0;
    while (settings.max_receive_window >> shift) > u16::MAX as usize && shift < 14 {
        shift += 1;
    }
    shift
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::DEFAULT_TIMEOUTS;

    /// RFC 7323 §2.2-2.3: our window scale is the least shift that brings the largest
    /// window we may advertise into the 16-bit field (as Linux, the bits shifted out are
    /// lost: at most 2^shift - 1 bytes), and never more than 14.
    #[test]
    fn rfc7323_2_3_our_shift_is_the_least_that_fits_our_largest_window_and_at_most_14() {
        let shift = |max_receive_window| {
            own_shift(&Settings { mss: 1000, max_receive_window, max_send_buffer: 1 << 20, timeouts: DEFAULT_TIMEOUTS })
        };
        assert_eq!(shift(65_535), 0);
        assert_eq!(shift(65_536), 1);
        assert_eq!(shift(65_535 << 5), 5);
        assert_eq!(shift((65_535 << 5) + 31), 5);
        assert_eq!(shift(65_536 << 5), 6);
        assert_eq!(shift(65_535 << 14), 14);
        assert_eq!(shift(usize::MAX), 14);
    }
}
