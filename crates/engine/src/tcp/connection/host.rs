//! The host-facing side of a connection: accept or refuse it, write to it and hear how much
//! more it may write, report what it consumed (which reopens the receive window, RFC 9293
//! §3.8.6.2.2), shut it down (FIN after the data, RFC 9293 §3.10.4), abort it (RST, §3.10.5),
//! and what the table reads back: liveness, memory held, statistics.

use super::{Connection, ConnectionStats, State};
use crate::events::CloseReason;
use crate::tcp::Io;

impl Connection {
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
    pub(super) fn grant_room(&mut self, io: &mut Io<'_>) {
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
        let unseen = self.state == State::SynSent && self.handshake_sent_at.is_none();
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

    /// Only keeping the 4-tuple from old duplicates.
    pub fn is_time_wait(&self) -> bool {
        self.state == State::TimeWait
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
}
