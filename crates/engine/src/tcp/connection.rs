//! One TCP connection: RFC 9293's state machine, driven by segments from the peer, by
//! the host (accept, write, consume, shut down, abort) and by time.
//!
//! The halves live in `send.rs` and `recv.rs`, the window arithmetic in `congestion.rs`
//! and `rtt.rs`. This file decides what each state does with a segment and what goes
//! out when the connection is polled: the handshake, data within the congestion window
//! at the pacing rate, ACKs, probes, and the timers behind them (RFC 6298 retransmission
//! timeout, RFC 8985 tail-loss probe and reordering timer, keep-alive, close timeouts).

use super::congestion::{Congestion, Delivery};
use super::recv::{Arrival, Receiver};
use super::rtt::Rtt;
use super::segment::{self, Outgoing, Segment, SynOptions};
use super::send::{AckOutcome, Planned, Sender};
use super::{seq, Io, Timeouts};
use crate::events::CloseReason;
use std::net::SocketAddr;

/// How long an ACK may wait for more data or a reply to ride on.
const DELAYED_ACK_US: u64 = 20_000;
/// The first segments are acknowledged one by one, so the sender's window opens fast.
const QUICKACKS: u32 = 16;
/// SYN and SYN-ACK retransmissions before giving up (1 + 2 + 4 + 8 + 16 s).
const HANDSHAKE_RETRIES: u32 = 5;
const HANDSHAKE_RTO_US: u64 = 1_000_000;
/// A peer's delayed ACK may hold back the answer to a lone segment this long (RFC 8985 §7.2).
const MAX_PEER_ACK_DELAY_US: u64 = 40_000;
const TIME_WAIT_US: u64 = 10_000_000;
const KEEPALIVE_INTERVAL_US: u64 = 20_000_000;
const KEEPALIVE_PROBES: u32 = 6;
/// The send buffer's size before the congestion window asks for more.
pub const INITIAL_SEND_LIMIT: usize = 64 * 1024;
/// Pacing bursts: time's worth, and how many segments (see `Pacer::ready`). Never fewer
/// than sixteen: ACKs often come in millisecond aggregates (Wi-Fi, our own batching), and
/// fewer segments per wakeup would hold a flow below ~180 Mbit/s whatever the path allows.
const BURST_US: f64 = 2_000.0;
const BURST_SEGMENTS: std::ops::RangeInclusive<usize> = 16..=64;
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

/// Token bucket that spaces segments at the pacing rate.
#[derive(Debug)]
struct Pacer {
    tokens: f64,
    last: u64,
    /// The most segments that may leave at once. Some receivers read into a small socket
    /// buffer (Debian's wireguard-go: ~90 datagrams) and lose a burst that a fast receiver
    /// takes in stride, while bigger bursts cost us less per segment: so the bound halves
    /// when a loss is found and creeps back up over round trips without one.
    burst_segments: usize,
    /// Bytes delivered since the bound last grew.
    clean_bytes: usize,
}

impl Pacer {
    fn new() -> Self {
        Pacer { tokens: 0.0, last: 0, burst_segments: *BURST_SEGMENTS.start(), clean_bytes: 0 }
    }

    /// Refills for the time passed; true if a segment may go now.
    fn ready(&mut self, now: u64, rate: Option<f64>, mss: usize) -> bool {
        let Some(rate) = rate else { return true };
        // Two milliseconds' worth may leave at once, since the host's timers fire about a
        // millisecond late (with less, a slow flow could never outrun its own timer).
        let burst = (rate * BURST_US / 1e6).clamp(2.0 * mss as f64, (self.burst_segments * mss) as f64);
        self.tokens = (self.tokens + rate * (now.saturating_sub(self.last)) as f64 / 1e6).min(burst);
        self.last = now;
        self.tokens > 0.0
    }

    fn spend(&mut self, bytes: usize) {
        self.tokens -= bytes as f64;
    }

    fn on_loss(&mut self) {
        self.burst_segments = (self.burst_segments / 2).max(*BURST_SEGMENTS.start());
        self.clean_bytes = 0;
    }

    /// `bytes` arrived with no loss in the episode: after a window's worth, allow two more segments.
    fn on_clean_delivery(&mut self, bytes: usize, cwnd: usize) {
        self.clean_bytes += bytes;
        if self.clean_bytes >= cwnd {
            self.clean_bytes = 0;
            self.burst_segments = (self.burst_segments + 2).min(*BURST_SEGMENTS.end());
        }
    }

    /// When the bucket holds a token again.
    fn next_release(&self, rate: Option<f64>) -> Option<u64> {
        let rate = rate?;
        (self.tokens <= 0.0).then(|| self.last + ((1.0 - self.tokens) / rate * 1e6).ceil() as u64)
    }
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
    ack_at: Option<u64>,
    unacked_bytes: usize,
    quickacks: u32,
    rst_due: bool,
    handshake_due: bool,
    handshake_sent_at: u64,
    handshake_retries: u32,
    rto_at: Option<u64>,
    pto_at: Option<u64>,
    reorder_at: Option<u64>,
    /// Keep-alive or zero-window probe.
    probe_at: Option<u64>,
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
    pub fn incoming(id: u32, peer: u32, syn: &Segment<'_>, iss: u32, settings: Settings, now: u64) -> Self {
        let mut conn = Connection::new(id, peer, syn.src, syn.dst, iss, settings, now);
        conn.take_syn_options(syn);
        conn.rcv = Receiver::new(syn.seq, settings.max_receive_window, conn.receive_shift());
        conn.state = State::Pending;
        conn.state_deadline = Some(now + settings.timeouts.half_open_us);
        conn
    }

    /// Our own connection to `remote`; the SYN goes out on the next poll.
    pub fn outgoing(id: u32, peer: u32, local: SocketAddr, remote: SocketAddr, iss: u32, settings: Settings, now: u64) -> Self {
        let mut conn = Connection::new(id, peer, remote, local, iss, settings, now);
        conn.state = State::SynSent;
        conn.handshake_due = true;
        conn
    }

    fn new(id: u32, peer: u32, remote: SocketAddr, local: SocketAddr, iss: u32, settings: Settings, now: u64) -> Self {
        Connection {
            id,
            peer,
            remote,
            local,
            state: State::Closed,
            iss,
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
            ack_at: None,
            unacked_bytes: 0,
            quickacks: QUICKACKS,
            rst_due: false,
            handshake_due: false,
            handshake_sent_at: 0,
            handshake_retries: 0,
            rto_at: None,
            pto_at: None,
            reorder_at: None,
            probe_at: None,
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

    fn take_syn_options(&mut self, syn: &Segment<'_>) {
        let options = syn.syn_options;
        let peer_mss = options.mss.unwrap_or(DEFAULT_MSS).max(64) as usize;
        let mss = self.settings.mss.min(peer_mss);
        self.snd.mss = mss;
        self.cc = Congestion::new(mss);
        self.sack_ok = options.sack_permitted;
        // We always offer scaling; it is on when the peer offers it too.
        self.scaling = options.window_scale.is_some();
        self.send_shift = options.window_scale.unwrap_or(0);
        self.rcv_mss = mss;
    }

    // ---- the host ----

    /// The host takes the connection: the SYN-ACK goes out on the next poll.
    pub fn accept(&mut self, now: u64) {
        if self.state == State::Pending {
            self.state = State::SynReceived;
            self.handshake_due = true;
            self.state_deadline = Some(now + self.settings.timeouts.half_open_us);
        }
    }

    /// Refuses a connection the host has not accepted: RST (the caller sends ICMP instead if asked).
    pub fn refuse(&mut self, io: &mut Io<'_>, reset: bool) {
        if self.state == State::Pending {
            self.rst_due = reset;
            self.close(io, CloseReason::Refused);
        }
    }

    /// Queues what fits of `data`; `None` if the connection no longer sends.
    pub fn write(&mut self, data: &[u8]) -> Option<usize> {
        if !self.may_write() {
            return None;
        }
        let n = self.snd.write(data);
        self.granted = self.granted.saturating_sub(n);
        Some(n)
    }

    fn may_write(&self) -> bool {
        let open = matches!(self.state, State::Pending | State::SynSent | State::SynReceived | State::Established | State::CloseWait);
        open && !self.snd.fin_queued()
    }

    /// Tells the host how much more it may write (TCP_WRITABLE), when that is worth a word:
    /// when it has no room left, or once a quarter of the send buffer has come free.
    fn grant_room(&mut self, io: &mut Io<'_>) {
        if !self.may_write() || (self.full && self.snd.buffered() + self.granted > 0) {
            return;
        }
        let available = self.snd.room().saturating_sub(self.granted);
        if available > 0 && (self.granted == 0 || available >= self.snd.limit / 4) {
            self.granted += available;
            io.events().tcp_writable(self.id, available);
        }
    }

    /// The host consumed `bytes` of received data.
    pub fn consumed(&mut self, now: u64, bytes: usize) {
        let rtt = self.rtt.srtt().unwrap_or(0);
        self.rcv.consumed(now, rtt, self.rcv_mss, bytes);
        if self.rcv.window_update_due(self.rcv_mss) && self.is_synchronized() {
            self.ack_now = true;
        }
    }

    /// Sends FIN once the data written so far is out.
    pub fn shutdown(&mut self) {
        self.snd.close();
        match self.state {
            State::Established => self.state = State::FinWait1,
            State::CloseWait => self.state = State::LastAck,
            _ => {} // the FIN follows the handshake
        }
    }

    /// Resets the connection; the RST goes out on the next poll.
    pub fn abort(&mut self, io: &mut Io<'_>) {
        // Before our SYN went out there is nobody to tell.
        let unseen = self.state == State::SynSent && self.handshake_sent_at == 0;
        if !matches!(self.state, State::Closed | State::TimeWait) && !unseen {
            self.rst_due = true;
        }
        self.close(io, CloseReason::Aborted);
    }

    /// The peer was removed: the connection is over, and nothing can be sent to say so.
    pub fn peer_gone(&mut self, io: &mut Io<'_>) {
        self.rst_due = false;
        self.close(io, CloseReason::Reset);
    }

    /// The host reads no more: data is dropped on arrival and the window stays open.
    pub fn discard(&mut self) {
        self.rcv.discard = true;
        let unconsumed = self.rcv.unconsumed();
        self.rcv.consumed(0, 0, self.rcv_mss, unconsumed);
    }

    /// Everything is over and the host knows: the table may forget the connection.
    pub fn is_finished(&self) -> bool {
        self.state == State::Closed && self.reported.closed && !self.rst_due
    }

    /// Counts toward the connection limits (TIME-WAIT leftovers do not).
    pub fn is_live(&self) -> bool {
        !matches!(self.state, State::TimeWait | State::Closed)
    }

    /// Still in the handshake, or waiting for the host to accept.
    pub fn is_half_open(&self) -> bool {
        matches!(self.state, State::Pending | State::SynReceived | State::SynSent)
    }

    /// Bytes this connection makes the server hold: unacknowledged data, data behind a
    /// hole, and data the host was given and has not consumed.
    pub fn held_bytes(&self) -> usize {
        self.snd.buffered() + self.rcv.held() + self.rcv.unconsumed()
    }

    /// How much of its memory the server holds: past three quarters windows and buffers stop
    /// growing (`pressed`); at all of it (`full`) no room is granted to connections holding data.
    pub fn set_pressure(&mut self, pressed: bool, full: bool) {
        self.full = full;
        self.rcv.frozen = pressed;
    }

    pub fn stats(&self) -> ConnectionStats {
        ConnectionStats {
            retransmitted_segments: self.snd.retransmitted_segments,
            timeouts: self.timeouts,
            tail_probes: self.tail_probes,
            srtt_us: self.rtt.srtt().unwrap_or(0),
            cwnd: self.cc.cwnd(),
            bytes_in_flight: self.snd.pipe(),
            bandwidth: self.cc.bandwidth(),
            pacing_rate: self.cc.pacing_rate(&self.rtt).unwrap_or(0.0),
            peer_window: self.snd.window,
        }
    }

    /// An older connection's TIME-WAIT may give way to a new SYN that starts past it (RFC 6191).
    pub fn yields_to(&self, syn: &Segment<'_>) -> bool {
        self.state == State::TimeWait && seq::after(syn.seq, self.rcv.nxt)
    }

    fn is_synchronized(&self) -> bool {
        !matches!(self.state, State::Pending | State::SynSent | State::SynReceived | State::Closed)
    }

    // ---- segments from the peer ----

    pub fn on_segment(&mut self, now: u64, seg: &Segment<'_>, io: &mut Io<'_>) {
        self.last_heard = now;
        self.probes = 0;
        match self.state {
            State::Closed => return,
            State::Pending => {
                if seg.rst {
                    self.close(io, CloseReason::Reset);
                }
                return; // a repeated SYN waits for the host like the first
            }
            State::SynSent => return self.on_syn_sent_segment(now, seg, io),
            _ => {}
        }

        // RFC 9293 §3.10.7.4, as Linux reads it: the segment must touch the window.
        let edge = self.rcv.right_edge();
        let acceptable = seq::at_or_after(seq::add(seg.seq, seg.len()), self.rcv.nxt) && seq::at_or_before(seg.seq, edge);
        if seg.rst {
            // RFC 5961 §3: only an exact RST resets; one merely in the window gets a challenge ACK.
            if seg.seq == self.rcv.nxt {
                if self.state == State::TimeWait {
                    self.state = State::Closed;
                } else {
                    self.close(io, CloseReason::Reset);
                }
            } else if acceptable {
                self.ack_now = true;
            }
            return;
        }
        if !acceptable {
            self.ack_now = true;
            if seg.ack.is_none() || self.state == State::SynReceived {
                return;
            }
            // Its ACK still counts (a zero-window probe, say); its data does not.
        }
        if seg.syn {
            if self.state == State::SynReceived && seg.seq == self.rcv.nxt.wrapping_sub(1) {
                self.handshake_due = true; // our SYN-ACK was lost: send it again
            } else {
                self.ack_now = true; // RFC 5961 §4: a challenge ACK
            }
            return;
        }
        let Some(ack) = seg.ack else { return };

        if self.state == State::SynReceived {
            if ack != self.snd.una {
                self.send_rst_for(ack, io);
                return;
            }
            self.establish(now, io); // the window is taken below, as for any ACK
        }

        if seq::after(ack, self.snd.nxt) {
            self.ack_now = true; // it acknowledges what we never sent
            return;
        }
        if seq::at_or_after(ack, self.snd.una) {
            self.snd.update_window(seg.seq, ack, (seg.window as usize) << self.send_shift);
            let sack = if self.sack_ok { seg.sack.as_slice() } else { &[] };
            self.on_ack(now, ack, sack, io);
        }
        if !acceptable || self.state == State::Closed {
            return;
        }

        if seg.payload.is_empty() && !seg.fin {
            return;
        }
        match self.state {
            State::Established | State::FinWait1 | State::FinWait2 => {
                let id = self.id;
                let events = io.events();
                let arrival = self.rcv.receive(now, seg.seq, seg.payload, seg.fin, &mut |bytes| {
                    events.tcp_data(id, bytes.len()).copy_from_slice(bytes);
                });
                self.rcv_mss = self.rcv_mss.max(seg.payload.len().min(self.settings.mss));
                self.on_arrival(now, arrival);
                if arrival.fin {
                    self.on_fin(now, io);
                }
            }
            // Anything after their FIN is a retransmission: acknowledge it again.
            _ => {
                self.ack_now = true;
                if self.state == State::TimeWait {
                    self.state_deadline = Some(now + TIME_WAIT_US);
                }
            }
        }
    }

    fn on_syn_sent_segment(&mut self, now: u64, seg: &Segment<'_>, io: &mut Io<'_>) {
        let ack_ok = seg.ack == Some(self.snd.una);
        if let Some(ack) = seg.ack {
            if !ack_ok {
                if !seg.rst {
                    self.send_rst_for(ack, io);
                }
                return;
            }
        }
        if seg.rst {
            if ack_ok {
                self.close(io, CloseReason::Refused);
            }
            return;
        }
        if !seg.syn || !ack_ok {
            return; // a simultaneous open is not supported
        }
        self.take_syn_options(seg);
        self.rcv = Receiver::new(seg.seq, self.settings.max_receive_window, self.receive_shift());
        // A SYN's window is never scaled (RFC 7323 §2.2).
        self.snd.update_window(seg.seq, self.snd.una, seg.window as usize);
        self.ack_now = true;
        self.establish(now, io);
    }

    fn establish(&mut self, now: u64, io: &mut Io<'_>) {
        if self.handshake_retries == 0 {
            // Karn: a SYN sent again leaves it unknown which one was answered.
            self.rtt.sample(now, now.saturating_sub(self.handshake_sent_at));
        }
        self.state = if self.snd.fin_queued() { State::FinWait1 } else { State::Established };
        self.handshake_due = false;
        self.rto_at = None;
        self.last_progress = now;
        if !self.reported.established {
            self.reported.established = true;
            io.events().tcp_established(self.id, self.peer);
        }
    }

    fn on_ack(&mut self, now: u64, ack: u32, sack: &[(u32, u32)], io: &mut Io<'_>) {
        let mut outcome = self.snd.on_ack(now, ack, sack, self.rtt.min());
        if let Some(sample) = outcome.rtt_sample {
            self.rtt.sample(now, sample);
        }
        if self.recovery_until.is_some_and(|point| seq::at_or_after(ack, point)) {
            self.recovery_until = None;
            self.cc.on_recovery_end();
        }
        self.reorder_at = self.snd.detect_losses(now, self.rtt.min(), self.recovery_until.is_some(), &mut outcome);
        self.on_losses(&outcome);
        if self.recovery_until.is_none() {
            self.pacer.on_clean_delivery(outcome.delivered, self.cc.cwnd());
        }
        let rate = outcome.rate.unwrap_or_default();
        self.cc.on_ack(
            now,
            &Delivery {
                total: self.snd.delivered,
                bytes: outcome.delivered,
                prior_total: outcome.rate.map(|r| r.prior_delivered),
                rate: rate.rate,
                app_limited: rate.app_limited,
                rtt: outcome.rtt_sample,
                in_flight: self.snd.pipe(),
            },
        );
        if outcome.acked > 0 || outcome.fin_acked {
            self.rtt.reset_backoff();
            self.last_progress = now;
            self.rto_at = (self.snd.outstanding() > 0).then(|| self.rto_deadline(now));
            self.pto_at = None;
            self.arm_tail_probe(now);
        }
        // The send buffer follows the congestion window (as Linux sizes it): room for two windows.
        if !self.rcv.frozen {
            let max = self.settings.max_send_buffer;
            let wanted = (2 * self.cc.cwnd()).min(max).max(INITIAL_SEND_LIMIT.min(max));
            self.snd.limit = self.snd.limit.max(wanted);
        }
        if outcome.fin_acked {
            match self.state {
                State::FinWait1 => {
                    self.state = State::FinWait2;
                    self.state_deadline = Some(now + self.settings.timeouts.fin_wait_2_us);
                }
                State::Closing => self.enter_time_wait(now, io),
                State::LastAck => self.close(io, CloseReason::Closed),
                _ => {}
            }
        }
    }

    /// Newly lost segments start a recovery episode: the window shrinks once per episode.
    fn on_losses(&mut self, outcome: &AckOutcome) {
        if outcome.lost && self.recovery_until.is_none() {
            self.recovery_until = Some(self.snd.nxt);
            self.cc.on_loss(self.snd.pipe());
            self.pacer.on_loss();
        }
    }

    fn on_arrival(&mut self, now: u64, arrival: Arrival) {
        if arrival.out_of_order || arrival.unacceptable || arrival.fin {
            self.ack_now = true;
        }
        if arrival.delivered == 0 {
            return;
        }
        self.unacked_bytes += arrival.delivered;
        if self.quickacks > 0 || self.unacked_bytes >= 2 * self.rcv_mss {
            self.quickacks = self.quickacks.saturating_sub(1);
            self.ack_now = true;
        } else if self.ack_at.is_none() {
            self.ack_at = Some(now + DELAYED_ACK_US);
        }
    }

    fn on_fin(&mut self, now: u64, io: &mut Io<'_>) {
        if !self.reported.eof {
            self.reported.eof = true;
            io.events().tcp_eof(self.id);
        }
        match self.state {
            State::Established => self.state = State::CloseWait,
            State::FinWait1 => self.state = State::Closing,
            State::FinWait2 => self.enter_time_wait(now, io),
            _ => {}
        }
    }

    fn enter_time_wait(&mut self, now: u64, io: &mut Io<'_>) {
        self.report_closed(io, CloseReason::Closed);
        self.state = State::TimeWait;
        self.state_deadline = Some(now + TIME_WAIT_US);
        self.rto_at = None;
        self.pto_at = None;
        self.probe_at = None;
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

    // ---- time and output ----

    /// Fires due timers, then sends what is due: handshake, RST, data within the windows
    /// and the pacing rate, ACKs. Stops when `io`'s budget runs out.
    pub fn poll(&mut self, now: u64, io: &mut Io<'_>) {
        self.run_timers(now, io);
        self.grant_room(io);
        if self.rst_due {
            self.rst_due = false;
            let rst = Outgoing { rst: true, ..Outgoing::control(self.local, self.remote, self.snd.nxt, Some(self.rcv.nxt)) };
            io.send(&rst);
            return;
        }
        match self.state {
            State::SynSent | State::SynReceived => {
                if self.handshake_due {
                    self.send_handshake(now, io);
                }
                self.ack_now = false; // the handshake is the answer
                return;
            }
            State::Pending | State::Closed => return,
            _ => {}
        }
        let mut acked = false;
        if matches!(self.state, State::Established | State::CloseWait | State::FinWait1 | State::Closing | State::LastAck) {
            acked = self.send_data(now, io);
        }
        let delayed_ack_due = self.ack_at.is_some_and(|at| now >= at);
        if !acked && (self.ack_now || delayed_ack_due || self.rcv.window_update_due(self.rcv_mss)) {
            self.send_ack(now, io);
        }
    }

    /// Sends lost segments, then new data, within cwnd, the peer's window and the pacing
    /// rate. Returns whether anything went (each segment carries an ACK).
    fn send_data(&mut self, now: u64, io: &mut Io<'_>) -> bool {
        let mut sent = false;
        self.starved = false;
        let rate = self.cc.pacing_rate(&self.rtt); // nothing below changes it
        loop {
            if io.budget == 0 {
                self.starved = self.snd.has_unsent() || self.snd.pipe() < self.cc.cwnd();
                break;
            }
            if !self.pacer.ready(now, rate, self.snd.mss) {
                break;
            }
            let Some(planned) = self.snd.next(self.cc.cwnd()) else {
                // Held back by the host or the peer's window, not by the path: what is in
                // flight now cannot show the path's bandwidth (a Linux client opens its window
                // over the first round trips; taken for a full pipe, it would end BBR's startup).
                let host_limited = !self.snd.has_work() && self.snd.pipe() < self.cc.cwnd();
                if host_limited || self.snd.window_limited() {
                    self.snd.mark_app_limited();
                }
                break;
            };
            self.send_segment(now, planned, io);
            sent = true;
        }
        if !sent && self.snd.window == 0 && self.snd.has_unsent() && self.snd.outstanding() == 0 && self.probe_at.is_none() {
            self.probe_at = Some(now + self.rtt.rto()); // the peer's window is shut: probe it
        }
        sent
    }

    fn send_segment(&mut self, now: u64, planned: Planned, io: &mut Io<'_>) {
        let window = self.rcv.window_field();
        let sack = if self.sack_ok { self.rcv.sack_blocks() } else { &[] };
        let psh = planned.len > 0 && seq::distance(self.snd.una, seq::add(planned.seq, planned.len)) == self.snd.buffered();
        let segment = Outgoing {
            fin: planned.fin,
            psh,
            window,
            sack,
            payload: self.snd.payload(&planned),
            ..Outgoing::control(self.local, self.remote, planned.seq, Some(self.rcv.nxt))
        };
        io.send(&segment);
        self.rcv.note_window_sent(now);
        let wire_bytes = planned.len + segment::HEADER_LEN;
        self.pacer.spend(wire_bytes);
        self.snd.on_sent(planned, now);
        self.acked_all();
        if self.rto_at.is_none() {
            // Nothing was outstanding: the user timeout counts from now, not from the last
            // ACK before a quiet spell.
            self.last_progress = now;
            self.rto_at = Some(self.rto_deadline(now));
        }
        if !planned.retransmission {
            self.arm_tail_probe(now);
        }
        self.probe_at = None;
    }

    fn send_ack(&mut self, now: u64, io: &mut Io<'_>) {
        let window = self.rcv.window_field();
        let sack = if self.sack_ok { self.rcv.sack_blocks() } else { &[] };
        let ack = Outgoing { window, sack, ..Outgoing::control(self.local, self.remote, self.snd.nxt, Some(self.rcv.nxt)) };
        io.send(&ack);
        self.rcv.note_window_sent(now);
        self.acked_all();
    }

    /// A segment with a probe's sequence number (one below `una`): the peer answers with an ACK.
    fn send_probe(&mut self, io: &mut Io<'_>) {
        let window = self.rcv.window_field();
        let probe = Outgoing { window, ..Outgoing::control(self.local, self.remote, self.snd.una.wrapping_sub(1), Some(self.rcv.nxt)) };
        io.send(&probe);
    }

    fn acked_all(&mut self) {
        self.ack_now = false;
        self.ack_at = None;
        self.unacked_bytes = 0;
    }

    fn send_handshake(&mut self, now: u64, io: &mut Io<'_>) {
        let shift = self.rcv.window_shift;
        let options = SynOptions { mss: Some(self.settings.mss as u16), window_scale: Some(shift), sack_permitted: true };
        let (ack, options) = match self.state {
            State::SynSent => (None, SynOptions { window_scale: Some(own_shift(&self.settings)), ..options }),
            // Answer only with what the peer offered.
            _ => (Some(self.rcv.nxt), SynOptions { window_scale: self.scaling.then_some(shift), sack_permitted: self.sack_ok, ..options }),
        };
        let window = self.rcv.syn_window_field();
        let syn = Outgoing { syn: true, window, syn_options: Some(options), ..Outgoing::control(self.local, self.remote, self.iss, ack) };
        io.send(&syn);
        self.handshake_due = false;
        if self.handshake_retries == 0 && self.handshake_sent_at == 0 {
            self.handshake_sent_at = now;
        }
        self.rto_at = Some(now + (HANDSHAKE_RTO_US << self.handshake_retries));
    }

    /// The shift for the windows we advertise: ours when scaling is on.
    fn receive_shift(&self) -> u8 {
        if self.scaling {
            own_shift(&self.settings)
        } else {
            0
        }
    }

    fn send_rst_for(&mut self, ack: u32, io: &mut Io<'_>) {
        io.send(&Outgoing { rst: true, ..Outgoing::control(self.local, self.remote, ack, None) });
    }

    fn arm_tail_probe(&mut self, now: u64) {
        if self.recovery_until.is_some() || self.snd.outstanding() == 0 {
            self.pto_at = None;
            return;
        }
        let Some(srtt) = self.rtt.srtt() else { return };
        let mut pto = 2 * srtt;
        if self.snd.outstanding() <= self.snd.mss {
            pto += MAX_PEER_ACK_DELAY_US;
        }
        let at = now + pto.max(1_000);
        self.pto_at = Some(self.rto_at.map_or(at, |rto| at.min(rto)));
    }

    fn run_timers(&mut self, now: u64, io: &mut Io<'_>) {
        if self.state_deadline.is_some_and(|at| now >= at) {
            self.state_deadline = None;
            match self.state {
                // Pending: the host never answered; refuse.
                State::Pending | State::FinWait2 | State::SynReceived => self.time_out(io),
                State::TimeWait => self.state = State::Closed,
                _ => {}
            }
        }
        if self.rto_at.is_some_and(|at| now >= at) {
            self.on_retransmission_timeout(now, io);
        }
        if self.pto_at.is_some_and(|at| now >= at) {
            self.pto_at = None;
            self.send_tail_probe(now, io);
        }
        if self.reorder_at.is_some_and(|at| now >= at) {
            let mut outcome = AckOutcome::default();
            self.reorder_at = self.snd.detect_losses(now, self.rtt.min(), self.recovery_until.is_some(), &mut outcome);
            self.on_losses(&outcome);
        }
        if self.probe_at.is_some_and(|at| now >= at) {
            self.probe_at = None;
            if now.saturating_sub(self.last_heard) >= self.settings.timeouts.user_timeout_us {
                self.time_out(io);
            } else {
                self.send_probe(io);
                self.probes += 1;
                self.probe_at = Some(now + self.rtt.rto().max(1_000_000) * (1 << self.probes.min(6)));
            }
        }
        self.arm_keepalive(now, io);
    }

    fn on_retransmission_timeout(&mut self, now: u64, io: &mut Io<'_>) {
        self.rto_at = None;
        if matches!(self.state, State::SynSent | State::SynReceived) {
            if self.handshake_retries >= HANDSHAKE_RETRIES {
                let reason = if self.state == State::SynSent { CloseReason::Refused } else { CloseReason::TimedOut };
                self.close(io, reason);
            } else {
                self.handshake_retries += 1;
                self.handshake_due = true;
            }
            return;
        }
        if self.snd.outstanding() == 0 {
            return;
        }
        if now.saturating_sub(self.last_progress) >= self.settings.timeouts.user_timeout_us {
            self.time_out(io);
            return;
        }
        self.timeouts += 1;
        self.snd.on_timeout();
        self.cc.on_timeout();
        self.recovery_until = Some(self.snd.nxt);
        self.rtt.back_off();
        self.pto_at = None;
        self.rto_at = Some(self.rto_deadline(now));
    }

    /// The next retransmission timeout, but no later than the user timeout (as Linux clamps
    /// it), so a dead peer is given up on when the user timeout says, not a backoff later.
    fn rto_deadline(&self, now: u64) -> u64 {
        (now + self.rtt.rto()).min(self.last_progress + self.settings.timeouts.user_timeout_us)
    }

    /// RFC 8985 §7.3: send one new segment if allowed, else the last one again, so a lost
    /// tail is found by an ACK instead of a timeout.
    fn send_tail_probe(&mut self, now: u64, io: &mut Io<'_>) {
        if io.budget == 0 || !self.is_synchronized() {
            return;
        }
        let planned = self.snd.next_new(false).or_else(|| self.snd.last_in_flight());
        if let Some(planned) = planned {
            self.tail_probes += 1;
            self.send_segment(now, planned, io);
            self.pto_at = None;
        }
    }

    /// Probes a peer that went quiet (RFC 9293 §3.8.4) and gives up on a dead one.
    fn arm_keepalive(&mut self, now: u64, io: &mut Io<'_>) {
        if !self.keepalive_idle() {
            return;
        }
        let silent = now.saturating_sub(self.last_heard);
        if silent >= self.settings.timeouts.keepalive_us + KEEPALIVE_PROBES as u64 * KEEPALIVE_INTERVAL_US {
            self.time_out(io);
        } else if now >= self.keepalive_at() {
            self.send_probe(io);
            self.probes += 1;
        }
    }

    /// When the next keep-alive probe is due.
    fn keepalive_at(&self) -> u64 {
        self.last_heard + self.settings.timeouts.keepalive_us + self.probes as u64 * KEEPALIVE_INTERVAL_US
    }

    /// Gives up on the peer: reset, closed as timed out.
    fn time_out(&mut self, io: &mut Io<'_>) {
        self.rst_due = true;
        self.close(io, CloseReason::TimedOut);
    }

    /// Quiet, with nothing in flight and no window probe: keep-alives watch the peer.
    fn keepalive_idle(&self) -> bool {
        matches!(self.state, State::Established | State::CloseWait | State::FinWait2)
            && self.snd.outstanding() == 0
            && self.probe_at.is_none()
    }

    /// When the connection next needs a poll; `Some(0)` means at once.
    pub fn next_wake(&self, now: u64) -> Option<u64> {
        if self.rst_due {
            return Some(0);
        }
        if self.state == State::Closed {
            return None;
        }
        if self.starved || self.handshake_due || self.ack_now {
            return Some(0);
        }
        // Only when arm_keepalive would act: with data in flight the RTO watches the peer,
        // and a keep-alive deadline that passes then would ask for a poll at once, forever.
        let keepalive = self.keepalive_idle().then(|| self.keepalive_at());
        let pacing = self.snd.has_work().then(|| self.pacer.next_release(self.cc.pacing_rate(&self.rtt))).flatten();
        [self.rto_at, self.pto_at, self.reorder_at, self.probe_at, self.state_deadline, self.ack_at, keepalive, pacing]
            .into_iter()
            .flatten()
            .min()
            .map(|at| if at <= now { 0 } else { at })
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
