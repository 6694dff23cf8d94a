//! Output: what goes out when the connection is polled, in this order: the RST or the
//! handshake (SYN, SYN-ACK with our options, RFC 9293 §3.5, RFC 7323 §2, RFC 2018), then
//! segments the sender plans (lost ones first, then new data within the congestion window
//! and the peer's window, RFC 6675 / RFC 8985) at the pacing rate, then a pure ACK if one
//! is still due. Zero-window and keep-alive probes are built here; `timers.rs` decides when.

use super::{own_shift, Connection, State, HANDSHAKE_RTO_US};
use crate::tcp::segment::{self, Outgoing, SynOptions, Timestamp};
use crate::tcp::send::Planned;
use crate::tcp::timestamps::Timestamps;
use crate::tcp::{seq, Io};

impl Connection {
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
                } else if self.ack_now && self.state == State::SynReceived {
                    // RFC 9293 §3.10.7.4: an unacceptable segment gets an ACK here too (and an
                    // in-window RST or SYN its challenge ACK, RFC 5961 §3.2, §4.2).
                    self.send_ack(now, io);
                }
                self.ack_now = false; // otherwise the handshake is the answer
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
        let due = self.ack_now || delayed_ack_due || self.rcv.window_update_due(self.rcv_mss);
        if (!acked && due) || self.sack_left_out {
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

    pub(super) fn send_segment(&mut self, now: u64, planned: Planned, io: &mut Io<'_>) {
        let window = self.rcv.window_field();
        let timestamp = self.timestamp(now);
        let held = if self.sack_ok { self.rcv.sack_blocks() } else { &[] };
        // RFC 6691: options come out of the segment's MSS, so only the SACK blocks that fit
        // beside the data ride on it (4 bytes, then 8 a block); a pure ACK carries them all.
        let room = self.snd.mss.saturating_sub(planned.len);
        let fit = if room >= 12 { ((room - 4) / 8).min(held.len()) } else { 0 };
        let (sack, left_out) = (&held[..fit], fit < held.len());
        let psh = planned.len > 0 && seq::distance(self.snd.una, seq::add(planned.seq, planned.len)) == self.snd.buffered();
        let segment = Outgoing {
            fin: planned.fin,
            psh,
            window,
            sack,
            timestamp,
            payload: self.snd.payload(&planned),
            ..Outgoing::control(self.local, self.remote, planned.seq, Some(self.rcv.nxt))
        };
        io.send(&segment);
        self.sack_left_out |= left_out;
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
        self.window_probes = 0;
        self.window_probe_sent_at = None;
    }

    fn send_ack(&mut self, now: u64, io: &mut Io<'_>) {
        let window = self.rcv.window_field();
        let timestamp = self.timestamp(now);
        let sack = if self.sack_ok { self.rcv.sack_blocks() } else { &[] };
        let ack = Outgoing { window, sack, timestamp, ..Outgoing::control(self.local, self.remote, self.snd.nxt, Some(self.rcv.nxt)) };
        io.send(&ack);
        self.sack_left_out = false;
        self.rcv.note_window_sent(now);
        self.acked_all();
    }

    /// A segment with a probe's sequence number (one below `una`): the peer answers with an ACK.
    pub(super) fn send_probe(&mut self, now: u64, io: &mut Io<'_>) {
        let window = self.rcv.window_field();
        let timestamp = self.timestamp(now);
        let probe =
            Outgoing { window, timestamp, ..Outgoing::control(self.local, self.remote, self.snd.una.wrapping_sub(1), Some(self.rcv.nxt)) };
        io.send(&probe);
    }

    fn send_handshake(&mut self, now: u64, io: &mut Io<'_>) {
        let shift = self.rcv.window_shift;
        let options = SynOptions { mss: Some(self.settings.mss as u16), window_scale: Some(shift), sack_permitted: true };
        let (ack, options, timestamp) = match self.state {
            State::SynSent => {
                // Our clock's first reading; no echo yet (RFC 7323 §3.2).
                let offer = Timestamp { val: Timestamps::clock(self.ts_offset, now), ecr: 0 };
                (None, SynOptions { window_scale: Some(own_shift(&self.settings)), ..options }, Some(offer))
            }
            // Answer only with what the peer offered.
            _ => {
                let options = SynOptions { window_scale: self.scaling.then_some(shift), sack_permitted: self.sack_ok, ..options };
                (Some(self.rcv.nxt), options, self.timestamp(now))
            }
        };
        let window = self.rcv.syn_window_field();
        let syn = Outgoing {
            syn: true,
            window,
            syn_options: Some(options),
            timestamp,
            ..Outgoing::control(self.local, self.remote, self.iss, ack)
        };
        io.send(&syn);
        self.handshake_due = false;
        match self.handshake_sent_at {
            None => self.handshake_sent_at = Some(now),
            // Sent again (a timeout, or the peer's SYN came twice): an ACK may answer either.
            Some(_) => self.handshake_resent = true,
        }
        self.rto_at = Some(now + (HANDSHAKE_RTO_US << self.handshake_retries));
    }

    pub(super) fn send_rst_for(&mut self, ack: u32, io: &mut Io<'_>) {
        io.send(&Outgoing { rst: true, ..Outgoing::control(self.local, self.remote, ack, None) });
    }

    /// RFC 7323 §3.2: with timestamps on, every segment but a RST carries our clock and the
    /// echo; what it acknowledges becomes Last.ACK.sent (§4.3).
    fn timestamp(&mut self, now: u64) -> Option<Timestamp> {
        let ack = self.rcv.nxt;
        Some(self.ts.as_mut()?.stamp(now, ack))
    }

    fn acked_all(&mut self) {
        self.ack_now = false;
        self.ack_at = None;
        self.unacked_bytes = 0;
    }
}
