//! Timers: RFC 6298 retransmission timeout with backoff (and the handshake's own, RFC 9293
//! §3.8.1 / RFC 6298 §2), RFC 8985's tail-loss probe (§7) and reordering timer (§6.2),
//! zero-window probes (RFC 9293 §3.8.6.1), keep-alive (RFC 9293 §3.8.4), the user timeout
//! (RFC 9293 §3.8.3 / RFC 5482) and the close states' deadlines; and `next_wake`, which tells
//! the table when the connection next needs a poll.

use super::{Connection, State, HANDSHAKE_RETRIES};
use crate::events::CloseReason;
use crate::tcp::send::AckOutcome;
use crate::tcp::Io;

/// A peer's delayed ACK may hold back the answer to a lone segment this long (RFC 8985 §7.2).
const MAX_PEER_ACK_DELAY_US: u64 = 40_000;
const KEEPALIVE_INTERVAL_US: u64 = 20_000_000;
const KEEPALIVE_PROBES: u32 = 6;

impl Connection {
    pub(super) fn run_timers(&mut self, now: u64, io: &mut Io<'_>) {
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
            // RFC 1122 4.2.2.17: a peer that answers the probes may keep its window shut for
            // ever; only one silent since the last probe, for the user timeout, is given up on.
            let unanswered = self.window_probe_sent_at.is_none_or(|sent| self.last_heard < sent);
            if unanswered && now.saturating_sub(self.last_heard) >= self.settings.timeouts.user_timeout_us {
                self.time_out(io);
            } else {
                self.send_probe(now, io);
                self.window_probes += 1;
                self.window_probe_sent_at = Some(now);
                self.probe_at = Some(now + self.rtt.rto().max(1_000_000) * (1 << self.window_probes.min(6)));
            }
        }
        self.arm_keepalive(now, io);
    }

    fn on_retransmission_timeout(&mut self, now: u64, io: &mut Io<'_>) {
        self.rto_at = None;
        if matches!(self.state, State::SynSent | State::SynReceived) {
            if self.handshake_retries >= HANDSHAKE_RETRIES {
                // Nothing answered: timed out (ETIMEDOUT), never "refused", which only a RST says.
                self.close(io, CloseReason::TimedOut);
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

    /// The tunnel to the peer has a new session: what waits on a backed-off retransmission
    /// timer (a SYN or data already sent again) goes now rather than up to a minute later,
    /// as the path that lost it may be what just came back (a server restarted). As RFC 6069
    /// reverts the backoff on a sign that connectivity returned. True when it was due later.
    pub fn path_renewed(&mut self, now: u64) -> bool {
        let backed_off = self.handshake_retries > 0 || self.rtt.backed_off();
        if !backed_off || self.rto_at.is_none_or(|at| at <= now) {
            return false;
        }
        self.rto_at = Some(now);
        true
    }

    /// The next retransmission timeout, but no later than the user timeout (as Linux clamps
    /// it), so a dead peer is given up on when the user timeout says, not a backoff later.
    pub(super) fn rto_deadline(&self, now: u64) -> u64 {
        (now + self.rtt.rto()).min(self.last_progress + self.settings.timeouts.user_timeout_us)
    }

    pub(super) fn arm_tail_probe(&mut self, now: u64) {
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

    /// RFC 8985 §7.3: send one new segment if allowed, else the last one again, so a lost
    /// tail is found by an ACK instead of a timeout.
    fn send_tail_probe(&mut self, now: u64, io: &mut Io<'_>) {
        // §7.2: no probe in loss recovery (one armed before it began included).
        if io.budget == 0 || !self.is_synchronized() || self.recovery_until.is_some() {
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
            self.send_probe(now, io);
            self.probes += 1;
        }
    }

    /// When the next keep-alive probe is due.
    fn keepalive_at(&self) -> u64 {
        self.last_heard + self.settings.timeouts.keepalive_us + self.probes as u64 * KEEPALIVE_INTERVAL_US
    }

    /// Quiet, with nothing in flight and no window probe: keep-alives watch the peer.
    fn keepalive_idle(&self) -> bool {
        matches!(self.state, State::Established | State::CloseWait | State::FinWait2)
            && self.snd.outstanding() == 0
            && self.probe_at.is_none()
    }

    /// Gives up on the peer: reset, closed as timed out.
    fn time_out(&mut self, io: &mut Io<'_>) {
        self.rst_due = true;
        self.close(io, CloseReason::TimedOut);
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
