//! Segment arrival: what each state does with a segment from the peer (RFC 9293 §3.10.7),
//! read top-down: acceptability, RST (RFC 5961 §3), SYN (RFC 5961 §4), the ACK and the
//! windows it carries (RFC 9293 §3.10.7.4, RFC 2018 SACK), then data and FIN. The ACK
//! policy for arriving data (delayed ACKs, RFC 9293 §3.8.6.3 and RFC 1122 4.2.3.2) and the
//! close states the peer's FIN and our FIN's ACK lead to (RFC 9293 §3.6) are here too.

use super::{Connection, State, INITIAL_SEND_LIMIT};
use crate::events::CloseReason;
use crate::tcp::congestion::Delivery;
use crate::tcp::recv::{Arrival, Receiver};
use crate::tcp::segment::Segment;
use crate::tcp::send::AckOutcome;
use crate::tcp::{seq, Io};

/// How long an ACK may wait for more data or a reply to ride on.
const DELAYED_ACK_US: u64 = 20_000;
/// TIME-WAIT lasts 2 MSL (RFC 9293 §3.4.2); like Linux (TCP_TIMEWAIT_LEN) we take 60 s.
const TIME_WAIT_US: u64 = 60_000_000;

impl Connection {
    /// An older connection's TIME-WAIT gives way to a new SYN that starts past the old
    /// sequence space (RFC 9293 §3.10.7.4, RFC 6191 §2); any other SYN gets the old rules.
    pub fn yields_to(&self, syn: &Segment<'_>) -> bool {
        if self.state != State::TimeWait {
            return false;
        }
        match (&self.ts, syn.timestamp) {
            // A newer clock reading, or the same one with a sequence number past the old.
            (Some(ts), Some(new)) => seq::after(new.val, ts.recent()) || (new.val == ts.recent() && seq::after(syn.seq, self.rcv.nxt)),
            // The old connection had no clock to compare with: timestamps will tell old from new.
            (None, Some(_)) => true,
            _ => seq::after(syn.seq, self.rcv.nxt),
        }
    }

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
        // RFC 7323 §5.3 R1 (PAWS): an older clock reading is an old duplicate; it is answered.
        if let (Some(ts), Some(stamp)) = (&self.ts, seg.timestamp) {
            if ts.rejects(now, stamp.val) {
                self.ack_now = true;
                return;
            }
        }
        if !acceptable {
            self.ack_now = true;
            if seg.ack.is_none() || self.state == State::SynReceived {
                return;
            }
            // Its ACK still counts (a zero-window probe, say); its data does not.
        }
        if let (true, Some(ts), Some(stamp)) = (acceptable, self.ts.as_mut(), seg.timestamp) {
            ts.on_acceptable(now, seg.seq, stamp.val);
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
            self.establish(now, seg, io); // the window is taken below, as for any ACK
        }

        // RFC 5961 §5.2: an ACK of what we never sent, or one older than SND.UNA - MAX.SND.WND,
        // drops the segment; an ACK answers it.
        if seq::after(ack, self.snd.nxt) || seq::before(ack, self.snd.una.wrapping_sub(self.snd.max_window as u32)) {
            self.ack_now = true;
            return;
        }
        if seq::at_or_after(ack, self.snd.una) {
            self.snd.update_window(seg.seq, ack, (seg.window as usize) << self.send_shift);
            let sack = if self.sack_ok { seg.sack.as_slice() } else { &[] };
            self.on_ack(now, ack, sack, seg.timestamp.map(|ts| ts.ecr), io);
        }
        if !acceptable || self.state == State::Closed {
            return;
        }
        if self.state == State::FinWait2 {
            // Half-closed, the peer may send for as long as it likes (RFC 9293 §3.6): the
            // timeout is for a peer gone silent, so it counts from its last segment.
            self.state_deadline = Some(now + self.settings.timeouts.fin_wait_2_us);
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

    /// An ICMP destination unreachable quoting our segment with sequence number `seq`. While
    /// our SYN is unanswered it ends the connect (RFC 1122 4.2.3.9; RFC 5461 §4.1: hosts abort
    /// a connection attempt on soft errors too, as Linux does); the sequence number must be
    /// our SYN's, so a forged one must guess it (RFC 5927 §4.1). Later ones are ignored: the
    /// connection's own timers decide. True when it ended the connection.
    pub fn on_unreachable(&mut self, seq: u32, reason: CloseReason, io: &mut Io<'_>) -> bool {
        if self.state != State::SynSent || seq != self.iss {
            return false;
        }
        self.close(io, reason);
        true
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
        self.take_syn_options(seg, now);
        self.rcv = Receiver::new(seg.seq, self.settings.max_receive_window, self.receive_shift());
        // A SYN's window is never scaled (RFC 7323 §2.2).
        self.snd.update_window(seg.seq, self.snd.una, seg.window as usize);
        self.ack_now = true;
        self.establish(now, seg, io);
    }

    /// `seg` completed the handshake.
    fn establish(&mut self, now: u64, seg: &Segment<'_>, io: &mut Io<'_>) {
        // Karn: a SYN sent again leaves it unknown which one was answered; the echo of our
        // clock does not (RFC 7323 §4.1).
        let own = self.handshake_sent_at.filter(|_| !self.handshake_resent).map(|sent_at| now.saturating_sub(sent_at));
        match own.or_else(|| self.echoed_rtt(now, seg.timestamp.map(|ts| ts.ecr))) {
            Some(sample) => self.rtt.sample(now, sample),
            None => self.rtt.handshake_retransmitted(),
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

    fn on_ack(&mut self, now: u64, ack: u32, sack: &[(u32, u32)], tsecr: Option<u32>, io: &mut Io<'_>) {
        let mut outcome = self.snd.on_ack(now, ack, sack, self.rtt.min());
        // Our own send times are finer than the echo (µs, not ms), so they come first; the
        // echo also times retransmitted data, where they cannot (RFC 7323 §4.1).
        let acked_new = outcome.acked > 0 || outcome.fin_acked;
        let echoed = if acked_new { self.echoed_rtt(now, tsecr) } else { None };
        if let Some(sample) = outcome.rtt_sample.or(echoed) {
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

    /// The round trip our clock's echo shows, with timestamps on.
    fn echoed_rtt(&self, now: u64, tsecr: Option<u32>) -> Option<u64> {
        self.ts.as_ref()?.rtt_sample(now, tsecr?)
    }

    /// Newly lost segments start a recovery episode: the window shrinks once per episode.
    pub(super) fn on_losses(&mut self, outcome: &AckOutcome) {
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
        self.snd.release_buffers(); // everything was acknowledged; a minute is long to hold them
        self.rto_at = None;
        self.pto_at = None;
        self.probe_at = None;
    }
}
