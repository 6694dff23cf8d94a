//! How much a connection may have in flight, and how fast it sends: BBR, version 1 as
//! Linux ships it (draft-cardwell-iccrg-bbr-congestion-control-00; Linux tcp_bbr.c).
//!
//! BBR measures the path instead of reacting to loss. The bottleneck bandwidth is the
//! highest delivery rate of the last ten round trips; the propagation delay, the lowest
//! RTT of the last ten seconds. It paces at that bandwidth (25 % above it one round in
//! eight, to find more; 25 % below the next, to drain what that queued) and keeps about
//! two bandwidth-delay products in flight, plus what bunched ACKs need. Random loss, as
//! on Wi-Fi, does not cut the rate: a loss only holds the flight to what is in it
//! (packet conservation) until it is repaired. Loss-based congestion control (Reno,
//! CUBIC) falls to a few Mbit/s at 1 % loss and 40 ms; kernel TCP here runs BBR too.
//! Bytes, bytes per second, microseconds.

use super::rtt::Rtt;

/// 2/ln 2: the smallest gain that doubles the sending rate every round, as slow start does.
const HIGH_GAIN: f64 = 2.885;
const CWND_GAIN: f64 = 2.0;
/// ProbeBW: one round above the estimate, one below to drain the queue that made, six at it.
const CYCLE: [f64; 8] = [1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
const BANDWIDTH_ROUNDS: u64 = 10;
const RT_PROP_WINDOW_US: u64 = 10_000_000;
const PROBE_RTT_US: u64 = 200_000;
const MIN_CWND_SEGMENTS: usize = 4;
/// Startup ends once three rounds have not grown the bandwidth estimate by a quarter.
const FULL_BANDWIDTH_GROWTH: f64 = 1.25;
const FULL_BANDWIDTH_ROUNDS: u32 = 3;
/// Pace 1 % below the estimate, so a queue does not build from rounding.
const PACING_MARGIN: f64 = 0.99;
/// ACK aggregation: measured over epochs of up to this many bytes, remembered for about ten rounds.
const ACK_EPOCH_RESET_BYTES: u64 = 1 << 20;
const EXTRA_ACKED_ROUNDS: u32 = 5;
const EXTRA_ACKED_MAX_US: f64 = 100_000.0;
/// RFC 6928.
pub const INITIAL_WINDOW_SEGMENTS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Startup,
    Drain,
    ProbeBandwidth,
    ProbeRtt,
}

/// What one ACK delivered, for [`Congestion::on_ack`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Delivery {
    /// Bytes the connection has had delivered, over its life, after this ACK.
    pub total: u64,
    /// Bytes this ACK newly delivered.
    pub bytes: usize,
    /// The delivered count when the newest segment it delivered left (marks rounds).
    pub prior_total: Option<u64>,
    /// A delivery-rate sample, if the ACK gave a trustworthy one.
    pub rate: Option<f64>,
    /// The sample was taken while the host or the peer's window, not the path, held the sender back.
    pub app_limited: bool,
    /// An RTT sample, if the ACK gave one.
    pub rtt: Option<u64>,
    /// Bytes in flight after the ACK.
    pub in_flight: usize,
}

#[derive(Debug, Clone)]
pub struct Congestion {
    mss: usize,
    mode: Mode,
    cwnd: usize,
    pacing_rate: f64,
    /// The highest rate of each of the last rounds, by round number.
    bandwidth: [(u64, f64); BANDWIDTH_ROUNDS as usize],
    /// The round of the newest sample the filter took: its window ends there, not at the
    /// current round, so rounds of ignored (app-limited) samples do not age the estimate.
    bandwidth_round: u64,
    /// The path's round-trip propagation time (`None` before a sample), and when it was last confirmed.
    rt_prop: Option<u64>,
    rt_prop_at: u64,
    round: u64,
    next_round_total: u64,
    full_bandwidth: f64,
    full_bandwidth_rounds: u32,
    filled_pipe: bool,
    cycle_index: usize,
    cycle_start: u64,
    probe_rtt_done_at: Option<u64>,
    probe_rtt_round_done: bool,
    /// The window before recovery or ProbeRTT, restored after.
    prior_cwnd: usize,
    in_recovery: bool,
    /// The first round of a recovery: only as much leaves as is delivered.
    conserving: bool,
    ack_epoch_start: u64,
    ack_epoch_bytes: u64,
    extra_acked: [usize; 2],
    extra_acked_index: usize,
    extra_acked_rounds: u32,
}

impl Congestion {
    pub fn new(mss: usize) -> Self {
        Congestion {
            mss,
            mode: Mode::Startup,
            cwnd: INITIAL_WINDOW_SEGMENTS * mss,
            pacing_rate: 0.0,
            bandwidth: [(0, 0.0); BANDWIDTH_ROUNDS as usize],
            bandwidth_round: 0,
            rt_prop: None,
            rt_prop_at: 0,
            round: 0,
            next_round_total: 0,
            full_bandwidth: 0.0,
            full_bandwidth_rounds: 0,
            filled_pipe: false,
            cycle_index: 0,
            cycle_start: 0,
            probe_rtt_done_at: None,
            probe_rtt_round_done: false,
            prior_cwnd: 0,
            in_recovery: false,
            conserving: false,
            ack_epoch_start: 0,
            ack_epoch_bytes: 0,
            extra_acked: [0; 2],
            extra_acked_index: 0,
            extra_acked_rounds: 0,
        }
    }

    pub fn cwnd(&self) -> usize {
        self.cwnd
    }

    #[cfg(test)]
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The bottleneck bandwidth estimate, bytes per second (0 before a sample): the highest
    /// sample of the ten rounds up to the newest one taken.
    pub fn bandwidth(&self) -> f64 {
        let oldest = self.bandwidth_round.saturating_sub(BANDWIDTH_ROUNDS - 1);
        self.bandwidth.iter().filter(|(round, _)| *round >= oldest).map(|(_, rate)| *rate).fold(0.0, f64::max)
    }

    /// Bytes per second to release at; before a bandwidth sample, from the first window and RTT.
    pub fn pacing_rate(&self, rtt: &Rtt) -> Option<f64> {
        if self.pacing_rate > 0.0 {
            return Some(self.pacing_rate);
        }
        let srtt = rtt.srtt()? as f64 / 1e6;
        Some(HIGH_GAIN * self.cwnd as f64 / srtt)
    }

    pub fn on_ack(&mut self, now: u64, ack: &Delivery) {
        let round_start = self.update_round(ack);
        self.update_bandwidth(ack);
        self.update_ack_aggregation(now, ack, round_start);
        self.update_cycle(now, ack);
        self.check_full_pipe(round_start, ack);
        self.check_drain(now, ack);
        self.update_rt_prop(now, ack, round_start);
        self.set_pacing_rate();
        self.set_cwnd(ack);
    }

    /// A loss was found (once per recovery episode): hold the flight to what is in it.
    pub fn on_loss(&mut self, in_flight: usize) {
        if self.in_recovery {
            return;
        }
        self.save_cwnd();
        self.in_recovery = true;
        self.conserving = true;
        self.cwnd = (in_flight + self.mss).max(MIN_CWND_SEGMENTS * self.mss);
    }

    /// The episode is repaired: back to the window from before it.
    pub fn on_recovery_end(&mut self) {
        if self.in_recovery {
            self.in_recovery = false;
            self.conserving = false;
            self.cwnd = self.cwnd.max(self.prior_cwnd);
        }
    }

    /// The retransmission timer fired: start again from one segment; the old window
    /// comes back when the episode ends.
    pub fn on_timeout(&mut self) {
        if !self.in_recovery {
            self.save_cwnd();
        }
        self.in_recovery = true;
        self.conserving = false;
        self.cwnd = self.mss;
    }

    fn save_cwnd(&mut self) {
        self.prior_cwnd = if self.in_recovery || self.mode == Mode::ProbeRtt { self.prior_cwnd.max(self.cwnd) } else { self.cwnd };
    }

    fn bdp(&self, gain: f64) -> Option<usize> {
        let bandwidth = self.bandwidth();
        let rt_prop = self.rt_prop?;
        (bandwidth > 0.0).then(|| (gain * bandwidth * rt_prop as f64 / 1e6) as usize)
    }

    /// A round ends when a segment sent after it began is delivered.
    fn update_round(&mut self, ack: &Delivery) -> bool {
        match ack.prior_total {
            Some(prior) if prior >= self.next_round_total => {
                self.next_round_total = ack.total;
                self.round += 1;
                if self.conserving {
                    self.conserving = false;
                }
                true
            }
            _ => false,
        }
    }

    fn update_bandwidth(&mut self, ack: &Delivery) {
        let Some(rate) = ack.rate else { return };
        // An app-limited sample only counts if it shows more than we knew: the host, not the path, held it back.
        if ack.app_limited && rate < self.bandwidth() {
            return;
        }
        self.bandwidth_round = self.round;
        let slot = &mut self.bandwidth[(self.round % BANDWIDTH_ROUNDS) as usize];
        if slot.0 != self.round {
            *slot = (self.round, rate);
        } else {
            slot.1 = slot.1.max(rate);
        }
    }

    /// How many more bytes than the bandwidth explains arrive in one go (ACKs held back and
    /// released together by the receiver or by our own batching): the window must cover them.
    fn update_ack_aggregation(&mut self, now: u64, ack: &Delivery, round_start: bool) {
        if ack.bytes == 0 {
            return;
        }
        if round_start {
            self.extra_acked_rounds += 1;
            if self.extra_acked_rounds >= EXTRA_ACKED_ROUNDS {
                self.extra_acked_rounds = 0;
                self.extra_acked_index ^= 1;
                self.extra_acked[self.extra_acked_index] = 0;
            }
        }
        let mut expected = (self.bandwidth() * now.saturating_sub(self.ack_epoch_start) as f64 / 1e6) as u64;
        if self.ack_epoch_bytes <= expected || self.ack_epoch_bytes + ack.bytes as u64 >= ACK_EPOCH_RESET_BYTES {
            self.ack_epoch_bytes = 0;
            self.ack_epoch_start = now;
            expected = 0;
        }
        self.ack_epoch_bytes += ack.bytes as u64;
        let extra = (self.ack_epoch_bytes.saturating_sub(expected) as usize).min(self.cwnd);
        let slot = &mut self.extra_acked[self.extra_acked_index];
        *slot = (*slot).max(extra);
    }

    fn extra_acked(&self) -> usize {
        let cap = (self.bandwidth() * EXTRA_ACKED_MAX_US / 1e6) as usize;
        self.extra_acked[0].max(self.extra_acked[1]).min(cap)
    }

    fn update_cycle(&mut self, now: u64, ack: &Delivery) {
        if self.mode != Mode::ProbeBandwidth {
            return;
        }
        let gain = CYCLE[self.cycle_index];
        let elapsed = now.saturating_sub(self.cycle_start) > self.rt_prop.unwrap_or(0);
        let advance = match gain {
            // Probe until the extra is really in flight (or a loss says the path is full).
            g if g > 1.0 => elapsed && (self.in_recovery || self.bdp(g).is_none_or(|target| ack.in_flight >= target)),
            // Drain until the queue we made is gone, or a round passed.
            g if g < 1.0 => elapsed || self.bdp(1.0).is_some_and(|bdp| ack.in_flight <= bdp),
            _ => elapsed,
        };
        if advance {
            self.cycle_index = (self.cycle_index + 1) % CYCLE.len();
            self.cycle_start = now;
        }
    }

    fn check_full_pipe(&mut self, round_start: bool, ack: &Delivery) {
        if self.filled_pipe || !round_start || ack.app_limited {
            return;
        }
        let bandwidth = self.bandwidth();
        if bandwidth >= self.full_bandwidth * FULL_BANDWIDTH_GROWTH {
            self.full_bandwidth = bandwidth;
            self.full_bandwidth_rounds = 0;
            return;
        }
        self.full_bandwidth_rounds += 1;
        self.filled_pipe = self.full_bandwidth_rounds >= FULL_BANDWIDTH_ROUNDS;
    }

    fn check_drain(&mut self, now: u64, ack: &Delivery) {
        if self.mode == Mode::Startup && self.filled_pipe {
            self.mode = Mode::Drain;
        }
        if self.mode == Mode::Drain && self.bdp(1.0).is_some_and(|bdp| ack.in_flight <= bdp) {
            self.enter_probe_bandwidth(now);
        }
    }

    fn enter_probe_bandwidth(&mut self, now: u64) {
        self.mode = Mode::ProbeBandwidth;
        // Any phase but the draining one (Linux picks at random; the round number will do).
        self.cycle_index = if self.round.is_multiple_of(7) { 0 } else { (self.round % 7 + 1) as usize };
        self.cycle_start = now;
    }

    fn update_rt_prop(&mut self, now: u64, ack: &Delivery, round_start: bool) {
        // No sample yet is not an old sample: the clock is the host's, not the connection's.
        let expired = self.rt_prop.is_some() && now > self.rt_prop_at + RT_PROP_WINDOW_US;
        if let Some(rtt) = ack.rtt {
            if self.rt_prop.is_none_or(|rt_prop| rtt <= rt_prop) || expired {
                self.rt_prop = Some(rtt.max(1));
                self.rt_prop_at = now;
            }
        }
        if expired && self.mode != Mode::ProbeRtt {
            // Not refreshed in ten seconds: drain the queue for a moment to see the path's own delay.
            self.save_cwnd();
            self.mode = Mode::ProbeRtt;
            self.probe_rtt_done_at = None;
        }
        if self.mode != Mode::ProbeRtt {
            return;
        }
        match self.probe_rtt_done_at {
            None if ack.in_flight <= MIN_CWND_SEGMENTS * self.mss => {
                self.probe_rtt_done_at = Some(now + PROBE_RTT_US);
                self.probe_rtt_round_done = false;
                self.next_round_total = ack.total;
            }
            Some(done_at) => {
                self.probe_rtt_round_done |= round_start;
                if self.probe_rtt_round_done && now >= done_at {
                    self.rt_prop_at = now;
                    self.cwnd = self.cwnd.max(self.prior_cwnd);
                    if self.filled_pipe {
                        self.enter_probe_bandwidth(now);
                    } else {
                        self.mode = Mode::Startup;
                    }
                }
            }
            None => {}
        }
    }

    fn pacing_gain(&self) -> f64 {
        match self.mode {
            Mode::Startup => HIGH_GAIN,
            Mode::Drain => 1.0 / HIGH_GAIN,
            Mode::ProbeBandwidth => CYCLE[self.cycle_index],
            Mode::ProbeRtt => 1.0,
        }
    }

    fn set_pacing_rate(&mut self) {
        let bandwidth = self.bandwidth();
        if bandwidth <= 0.0 {
            return;
        }
        // Never slower than the first window per round trip: a request/response flow's own
        // samples are tiny (a few bytes per round trip) and must not throttle its replies.
        let floor = self.rt_prop.map_or(0.0, |rt_prop| (INITIAL_WINDOW_SEGMENTS * self.mss) as f64 * 1e6 / rt_prop as f64);
        let rate = (self.pacing_gain() * bandwidth * PACING_MARGIN).max(floor);
        // In startup the rate only rises: early samples are small.
        if self.filled_pipe || rate > self.pacing_rate {
            self.pacing_rate = rate;
        }
    }

    fn set_cwnd(&mut self, ack: &Delivery) {
        let min = MIN_CWND_SEGMENTS * self.mss;
        if self.conserving {
            self.cwnd = self.cwnd.max(ack.in_flight + ack.bytes);
        } else {
            let gain = match self.mode {
                Mode::Startup | Mode::Drain => HIGH_GAIN,
                _ => CWND_GAIN,
            };
            match self.bdp(gain) {
                Some(bdp) => {
                    // Room for segments in flight at the pacing quantum, and for bunched ACKs.
                    let mut target = bdp + 3 * self.mss;
                    if self.filled_pipe {
                        target += self.extra_acked();
                    }
                    if self.mode == Mode::ProbeBandwidth && self.cycle_index == 0 {
                        target += 2 * self.mss;
                    }
                    if self.filled_pipe {
                        self.cwnd = (self.cwnd + ack.bytes).min(target);
                    } else if self.cwnd < target || ack.total < (INITIAL_WINDOW_SEGMENTS * self.mss) as u64 {
                        self.cwnd += ack.bytes;
                    }
                }
                None => self.cwnd += ack.bytes,
            }
        }
        self.cwnd = self.cwnd.max(min);
        if self.mode == Mode::ProbeRtt {
            self.cwnd = self.cwnd.min(min);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;

    /// A flow that gets `rate` bytes/s through a path of `rtt_us`, for `rounds` round
    /// trips, ten evenly spaced ACKs per round, as long as the window allows.
    fn drive(cc: &mut Congestion, rounds: u64, rate: f64, rtt_us: u64, start: u64) -> u64 {
        let mut now = start;
        let mut total = cc.next_round_total;
        for _ in 0..rounds {
            let round_bytes = cc.cwnd().min((rate * rtt_us as f64 / 1e6) as usize);
            for _ in 0..10 {
                now += rtt_us / 10;
                let bytes = round_bytes / 10;
                total += bytes as u64;
                // The newest segment this ACK delivers left one round trip ago.
                let prior = total.saturating_sub(round_bytes as u64);
                let sample = round_bytes as f64 * 1e6 / rtt_us as f64;
                cc.on_ack(
                    now,
                    &Delivery {
                        total,
                        bytes,
                        prior_total: Some(prior),
                        rate: Some(sample),
                        app_limited: false,
                        rtt: Some(rtt_us),
                        in_flight: round_bytes,
                    },
                );
            }
        }
        now
    }

    #[test]
    fn startup_finds_the_bandwidth_then_paces_at_it() {
        let mut cc = Congestion::new(MSS);
        assert_eq!(cc.mode(), Mode::Startup);
        // 10 MB/s, 40 ms: a bandwidth-delay product of 400 kB.
        drive(&mut cc, 30, 10e6, 40_000, 0);
        assert_eq!(cc.mode(), Mode::ProbeBandwidth);
        assert!((cc.bandwidth() - 10e6).abs() < 1.0, "bandwidth {}", cc.bandwidth());
        let rate = cc.pacing_rate(&Rtt::default()).unwrap();
        assert!((0.7 * 10e6..=1.3 * 10e6).contains(&rate), "pacing at {rate}");
        // About two bandwidth-delay products in flight.
        assert!((750_000..=1_000_000).contains(&cc.cwnd()), "cwnd {}", cc.cwnd());
    }

    #[test]
    fn random_loss_does_not_cut_the_rate() {
        let mut cc = Congestion::new(MSS);
        let now = drive(&mut cc, 30, 10e6, 40_000, 0);
        let (rate, cwnd) = (cc.pacing_rate(&Rtt::default()).unwrap(), cc.cwnd());
        // A loss with 600 kB in flight: the flight holds steady for the repair, then the window comes back.
        cc.on_loss(600_000);
        assert_eq!(cc.cwnd(), 601_000);
        assert_eq!(cc.pacing_rate(&Rtt::default()).unwrap(), rate);
        drive(&mut cc, 1, 10e6, 40_000, now);
        cc.on_recovery_end();
        assert!(cc.cwnd() >= cwnd);
    }

    #[test]
    fn a_timeout_restarts_from_one_segment_and_recovery_restores_the_window() {
        let mut cc = Congestion::new(MSS);
        drive(&mut cc, 30, 10e6, 40_000, 0);
        let cwnd = cc.cwnd();
        cc.on_timeout();
        assert_eq!(cc.cwnd(), MSS);
        cc.on_recovery_end();
        assert_eq!(cc.cwnd(), cwnd);
    }

    #[test]
    fn a_request_response_flow_is_never_paced_below_a_window_per_round_trip() {
        let mut cc = Congestion::new(MSS);
        // One 100-byte exchange per 1 ms round trip, for a hundred rounds: 100 kB/s of samples.
        let mut total = 0;
        for i in 1..=100u64 {
            let prior = total;
            total += 100;
            cc.on_ack(
                i * 1_000,
                &Delivery {
                    total,
                    bytes: 100,
                    prior_total: Some(prior),
                    rate: Some(100_000.0),
                    app_limited: true,
                    rtt: Some(1_000),
                    in_flight: 0,
                },
            );
        }
        let rate = cc.pacing_rate(&Rtt::default()).unwrap();
        assert!(rate >= 10.0 * MSS as f64 / 0.001, "paced at {rate} bytes/s");
    }

    #[test]
    fn a_connection_opened_late_in_the_hosts_life_starts_in_startup() {
        let mut cc = Congestion::new(MSS);
        // The host has been up for an hour.
        drive(&mut cc, 3, 10e6, 40_000, 3_600_000_000);
        assert_eq!(cc.mode(), Mode::Startup);
        assert!(cc.cwnd() > INITIAL_WINDOW_SEGMENTS * MSS);
    }

    #[test]
    fn an_app_limited_sample_does_not_lower_the_estimate() {
        let mut cc = Congestion::new(MSS);
        let now = drive(&mut cc, 30, 10e6, 40_000, 0);
        let total = cc.next_round_total;
        cc.on_ack(
            now + 40_000,
            &Delivery {
                total: total + 1000,
                bytes: 1000,
                prior_total: Some(total),
                rate: Some(25_000.0),
                app_limited: true,
                rtt: Some(40_000),
                in_flight: 0,
            },
        );
        assert!((cc.bandwidth() - 10e6).abs() < 1.0);
    }

    #[test]
    fn probe_rtt_comes_every_ten_seconds_and_shrinks_the_flight_briefly() {
        let mut cc = Congestion::new(MSS);
        let now = drive(&mut cc, 30, 10e6, 40_000, 0);
        // Eleven seconds with a slightly higher RTT: the minimum expires.
        let mut now = now;
        let mut total = cc.next_round_total + 1;
        let mut saw_probe_rtt = false;
        for _ in 0..400 {
            now += 41_000;
            let prior = total;
            total += 400_000;
            cc.on_ack(
                now,
                &Delivery {
                    total,
                    bytes: 400_000,
                    prior_total: Some(prior),
                    rate: Some(10e6),
                    app_limited: false,
                    rtt: Some(41_000),
                    in_flight: 2_000,
                },
            );
            if cc.mode() == Mode::ProbeRtt {
                saw_probe_rtt = true;
                assert!(cc.cwnd() <= MIN_CWND_SEGMENTS * MSS);
            }
        }
        assert!(saw_probe_rtt);
        assert_eq!(cc.mode(), Mode::ProbeBandwidth, "back to probing bandwidth");
        assert!(cc.cwnd() > 100 * MSS, "the window came back: {}", cc.cwnd());
    }
}

/// The controller's rules one at a time, with the path's numbers set by hand: bandwidth
/// 1 MB/s and RTprop 10 ms, so one bandwidth-delay product is 10,000 bytes (ten segments).
/// Sections are those of draft-cardwell-iccrg-bbr-congestion-control-00 ("the draft");
/// where Linux's tcp_bbr.c adds a rule the draft lacks, the test says so.
#[cfg(test)]
mod rules {
    use super::*;

    const MSS: usize = 1000;
    const BW: f64 = 1e6;
    const RT_PROP: u64 = 10_000;
    const BDP: usize = 10_000;

    /// A controller in `mode` on that path; past Startup, the pipe is full.
    fn on_path(mode: Mode) -> Congestion {
        let mut cc = Congestion::new(MSS);
        cc.bandwidth[0] = (0, BW);
        cc.rt_prop = Some(RT_PROP);
        cc.mode = mode;
        cc.filled_pipe = mode != Mode::Startup;
        cc
    }

    /// An ACK that delivers `bytes` (of `total` so far) and starts no round, without samples.
    fn acked(total: u64, bytes: usize, in_flight: usize) -> Delivery {
        Delivery { total, bytes, prior_total: None, rate: None, app_limited: false, rtt: None, in_flight }
    }

    /// One ACK that ends a round (it delivers a segment sent after the round began), with a
    /// delivery-rate sample.
    fn next_round(cc: &mut Congestion, now: u64, rate: Option<f64>, app_limited: bool) {
        let prior = cc.next_round_total;
        let ack = Delivery { total: prior + 1000, bytes: 1000, prior_total: Some(prior), rate, app_limited, rtt: None, in_flight: 0 };
        cc.on_ack(now, &ack);
    }

    /// §4.1.1.2 (BBR.BtlBw): a windowed max of the delivery rate over BtlBwFilterLen = 10
    /// round trips. As in the draft's filter (and Linux's minmax), the window ends at the
    /// newest sample taken: a round without one forgets nothing.
    #[test]
    fn bbr_4_1_1_2_btlbw_is_the_highest_rate_of_the_last_ten_rounds_sampled() {
        let mut cc = Congestion::new(MSS);
        next_round(&mut cc, 10_000, Some(5e6), false);
        for r in 2..=10 {
            next_round(&mut cc, r * 10_000, Some(1e6), false);
            assert_eq!(cc.bandwidth(), 5e6, "round {r}: round 1's 5 MB/s is among the last ten");
        }
        next_round(&mut cc, 110_000, None, false);
        assert_eq!(cc.bandwidth(), 5e6, "a round without a sample ages nothing");
        next_round(&mut cc, 120_000, Some(2e6), false);
        assert_eq!(cc.bandwidth(), 2e6, "round 12's sample: rounds 3 to 12 count, round 1 no longer");
    }

    /// §4.1.1.2 with §4.1.1.4 (app-limited samples): a sample taken while the host had
    /// nothing to send counts only if it is at least the estimate; lower ones neither lower
    /// it nor age it, however long the flow stays app-limited.
    #[test]
    fn bbr_4_1_1_2_app_limited_samples_neither_lower_nor_age_the_estimate() {
        let mut cc = Congestion::new(MSS);
        next_round(&mut cc, 10_000, Some(10e6), false);
        let mut now = 10_000;
        for _ in 0..30 {
            now += 10_000;
            next_round(&mut cc, now, Some(100e3), true);
        }
        assert_eq!(cc.bandwidth(), 10e6, "thirty app-limited rounds at 100 kB/s");
        now += 10_000;
        next_round(&mut cc, now, Some(12e6), true);
        assert_eq!(cc.bandwidth(), 12e6, "an app-limited sample above the estimate counts");
        // One equal to it counts too (`>=`): twelve rounds of them keep 12 MB/s in the window
        // when the path then measures 1 MB/s.
        for _ in 0..12 {
            now += 10_000;
            next_round(&mut cc, now, Some(12e6), true);
        }
        now += 10_000;
        next_round(&mut cc, now, Some(1e6), false);
        assert_eq!(cc.bandwidth(), 12e6);
    }

    /// §4.2.3.5 (BBRUpdateACKAggregation): bytes delivered in an aggregation epoch beyond
    /// what the bandwidth explains over it are "extra acked"; an epoch ends when the
    /// deliveries fall back to the bandwidth's pace (or, as Linux does, at 1 MB).
    #[test]
    fn bbr_4_2_3_5_extra_acked_is_what_an_epoch_delivers_beyond_the_bandwidth() {
        let mut cc = on_path(Mode::ProbeBandwidth);
        cc.cwnd = 1_000_000;
        // 10 ms in, 5 kB: behind the bandwidth's 10 kB, so a new epoch starts with these.
        cc.update_ack_aggregation(10_000, &acked(5_000, 5_000, 0), false);
        assert_eq!(cc.extra_acked(), 5_000);
        // 2 ms later 5 kB more: the epoch delivered 10 kB where 2 kB were expected.
        cc.update_ack_aggregation(12_000, &acked(10_000, 5_000, 0), false);
        assert_eq!(cc.extra_acked(), 8_000);
        // 20 ms into the epoch, 1 kB: the epoch is back at the bandwidth's pace (10 kB in
        // 20 ms is less than 20 kB) and a new one starts; the maximum stays.
        cc.update_ack_aggregation(30_000, &acked(11_000, 1_000, 0), false);
        assert_eq!(cc.extra_acked(), 8_000);
        assert_eq!((cc.ack_epoch_start, cc.ack_epoch_bytes), (30_000, 1_000));
        // Extra acked is capped by the window: no more than it could have sent.
        cc.cwnd = 6_000;
        cc.update_ack_aggregation(30_100, &acked(21_000, 10_000, 0), false);
        assert_eq!(cc.extra_acked[cc.extra_acked_index], 8_000);
    }

    /// Linux bbr_update_ack_aggregation: an epoch also ends once it would pass 1 MB, so a
    /// long run of fast ACKs does not count as one ever-growing burst.
    #[test]
    fn an_ack_aggregation_epoch_restarts_before_a_megabyte() {
        let mut cc = on_path(Mode::ProbeBandwidth);
        cc.bandwidth[0] = (0, 100e6); // 100 bytes a microsecond
        cc.cwnd = 10_000_000;
        cc.update_ack_aggregation(1_000, &acked(600_000, 600_000, 0), false);
        assert_eq!(cc.extra_acked(), 600_000, "a new epoch: all of it is extra");
        cc.update_ack_aggregation(2_000, &acked(900_000, 300_000, 0), false);
        assert_eq!(cc.extra_acked(), 800_000, "900 kB in 1 ms where 100 kB were due");
        cc.update_ack_aggregation(3_000, &acked(1_100_000, 200_000, 0), false);
        assert_eq!((cc.ack_epoch_start, cc.ack_epoch_bytes), (3_000, 200_000), "1.1 MB would pass the bound: a new epoch");
        assert_eq!(cc.extra_acked(), 800_000);
    }

    /// Linux: extra acked is remembered in two slots of five rounds each, so a burst counts
    /// for five to ten rounds (the draft: a max filter over ten rounds).
    #[test]
    fn extra_acked_is_remembered_for_five_to_ten_rounds() {
        let mut cc = on_path(Mode::ProbeBandwidth);
        cc.cwnd = 1_000_000;
        cc.update_ack_aggregation(1_000_000, &acked(8_000, 8_000, 0), false);
        assert_eq!(cc.extra_acked(), 8_000);
        // Then one ACK a round at the bandwidth's pace: 1 kB each 10 ms... each a new epoch.
        let mut now = 1_000_000;
        for round in 1..=10 {
            now += 10_000;
            cc.update_ack_aggregation(now, &acked(8_000 + round * 1_000, 1_000, 0), true);
            let expected = if round < 10 { 8_000 } else { 1_000 };
            assert_eq!(cc.extra_acked(), expected, "after {round} rounds");
        }
    }

    /// Linux bbr_extra_acked_max_us: extra acked counts for at most 100 ms at the bandwidth.
    #[test]
    fn extra_acked_counts_for_at_most_100_ms_of_bandwidth() {
        let mut cc = on_path(Mode::ProbeBandwidth);
        cc.cwnd = 1_000_000;
        cc.update_ack_aggregation(1_000_000, &acked(500_000, 500_000, 0), false);
        assert_eq!(cc.extra_acked[cc.extra_acked_index], 500_000);
        assert_eq!(cc.extra_acked(), 100_000);
    }

    /// §4.3.4.4 (BBRIsNextCyclePhase), the probing phase (gain 1.25): it lasts at least
    /// RTprop, and until 1.25 BDP is in flight or a loss shows the path is full.
    #[test]
    fn bbr_4_3_4_4_the_probing_phase_lasts_an_rtprop_and_until_its_extra_is_in_flight() {
        let mut cc = on_path(Mode::ProbeBandwidth);
        let target = BDP * 5 / 4;
        cc.update_cycle(RT_PROP, &acked(0, 1000, 2 * BDP));
        assert_eq!(cc.cycle_index, 0, "RTprop has not passed yet (it must exceed it)");
        cc.update_cycle(RT_PROP + 1, &acked(0, 1000, target - 1));
        assert_eq!(cc.cycle_index, 0, "1.25 BDP is not yet in flight");
        cc.update_cycle(RT_PROP + 1, &acked(0, 1000, target));
        assert_eq!((cc.cycle_index, cc.cycle_start), (1, RT_PROP + 1));
        // A loss ends the probe with less in flight.
        let mut cc = on_path(Mode::ProbeBandwidth);
        cc.in_recovery = true;
        cc.update_cycle(RT_PROP + 1, &acked(0, 1000, 0));
        assert_eq!(cc.cycle_index, 1);
    }

    /// §4.3.4.4, the draining phase (gain 0.75): it ends once the flight is down to one
    /// BDP, or after RTprop whatever the flight.
    #[test]
    fn bbr_4_3_4_4_the_draining_phase_ends_at_one_bdp_in_flight_or_after_an_rtprop() {
        let mut cc = on_path(Mode::ProbeBandwidth);
        cc.cycle_index = 1;
        cc.update_cycle(1, &acked(0, 1000, BDP + 1));
        assert_eq!(cc.cycle_index, 1);
        cc.update_cycle(1, &acked(0, 1000, BDP));
        assert_eq!((cc.cycle_index, cc.cycle_start), (2, 1));
        let mut cc = on_path(Mode::ProbeBandwidth);
        cc.cycle_index = 1;
        cc.update_cycle(RT_PROP + 1, &acked(0, 1000, 3 * BDP));
        assert_eq!(cc.cycle_index, 2);
    }

    /// §4.3.4.4, the six cruising phases (gain 1): each lasts RTprop, whatever is in flight;
    /// after the last comes the probing phase again.
    #[test]
    fn bbr_4_3_4_4_a_cruising_phase_lasts_one_rtprop() {
        let mut cc = on_path(Mode::ProbeBandwidth);
        let mut now = 0;
        for index in 2..8 {
            cc.cycle_index = index;
            cc.cycle_start = now;
            for in_flight in [0, BDP, 3 * BDP] {
                cc.update_cycle(now + RT_PROP, &acked(0, 1000, in_flight));
                assert_eq!(cc.cycle_index, index, "phase {index}, {in_flight} in flight, RTprop not passed");
            }
            now += RT_PROP + 1;
            cc.update_cycle(now, &acked(0, 1000, 0));
            assert_eq!(cc.cycle_index, (index + 1) % 8);
        }
        assert_eq!(cc.cycle_index, 0);
        // Outside ProbeBW there is no cycle.
        let mut cc = on_path(Mode::Drain);
        cc.update_cycle(RT_PROP + 1, &acked(0, 1000, 2 * BDP));
        assert_eq!(cc.cycle_index, 0);
    }

    /// §4.3.3 (BBREnterProbeBW): the cycle starts in a random phase, never the draining one
    /// (the round number stands for chance here); over seven rounds every other phase comes.
    #[test]
    fn bbr_4_3_3_probe_bw_starts_in_any_phase_but_the_draining_one() {
        let mut cc = on_path(Mode::Drain);
        let mut seen = std::collections::BTreeSet::new();
        for round in 0..14 {
            cc.round = round;
            cc.enter_probe_bandwidth(round * 1000);
            assert_eq!((cc.mode, cc.cycle_start), (Mode::ProbeBandwidth, round * 1000));
            assert_ne!(cc.cycle_index, 1, "round {round}");
            if round < 7 {
                seen.insert(cc.cycle_index);
            }
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), [0, 2, 3, 4, 5, 6, 7]);
    }

    /// §4.1.2.3 (BBRUpdateRTprop): the lowest RTT seen, refreshed by any sample at or below
    /// it; a higher one replaces it only once it is ten seconds old, which also sends the
    /// flow to ProbeRTT (§4.3.5).
    #[test]
    fn bbr_4_1_2_3_rtprop_is_the_lowest_rtt_of_the_last_ten_seconds() {
        let mut cc = on_path(Mode::ProbeBandwidth);
        cc.rt_prop = None;
        let sample = |cc: &mut Congestion, now: u64, rtt: u64| {
            cc.on_ack(now, &Delivery { rtt: Some(rtt), ..acked(0, 1000, 20 * MSS) });
            (cc.rt_prop, cc.rt_prop_at, cc.mode)
        };
        assert_eq!(sample(&mut cc, 1_000_000, 20_000), (Some(20_000), 1_000_000, Mode::ProbeBandwidth), "the first sample");
        assert_eq!(sample(&mut cc, 2_000_000, 25_000), (Some(20_000), 1_000_000, Mode::ProbeBandwidth), "higher: kept");
        assert_eq!(sample(&mut cc, 3_000_000, 15_000), (Some(15_000), 3_000_000, Mode::ProbeBandwidth), "lower: taken");
        assert_eq!(sample(&mut cc, 5_000_000, 15_000), (Some(15_000), 5_000_000, Mode::ProbeBandwidth), "equal: refreshed");
        assert_eq!(sample(&mut cc, 15_000_000, 30_000), (Some(15_000), 5_000_000, Mode::ProbeBandwidth), "ten seconds old, not older");
        assert_eq!(sample(&mut cc, 15_000_001, 30_000), (Some(30_000), 15_000_001, Mode::ProbeRtt), "expired");
    }

    /// §4.3.5 (ProbeRTT): the window drops to BBRMinPipeCwnd (4 segments); once the flight
    /// is down to it, ProbeRTT lasts 200 ms and at least one round, then the old window
    /// comes back and the flow probes bandwidth again.
    #[test]
    fn bbr_4_3_5_probe_rtt_holds_four_segments_for_200_ms_and_a_round() {
        let mut cc = on_path(Mode::ProbeBandwidth);
        cc.cwnd = 50_000;
        cc.next_round_total = 100_000;
        let expiry = RT_PROP_WINDOW_US + 1;
        cc.on_ack(expiry, &Delivery { rtt: Some(RT_PROP), ..acked(100_000, 1000, 20 * MSS) });
        assert_eq!((cc.mode(), cc.cwnd()), (Mode::ProbeRtt, 4 * MSS));
        // The flight is still above four segments: the 200 ms have not begun.
        cc.on_ack(expiry + 100_000, &acked(101_000, 1000, 4 * MSS + 1));
        assert_eq!((cc.mode(), cc.probe_rtt_done_at, cc.cwnd()), (Mode::ProbeRtt, None, 4 * MSS));
        let low = expiry + 150_000;
        cc.on_ack(low, &acked(102_000, 1000, 4 * MSS));
        assert_eq!(cc.probe_rtt_done_at, Some(low + 200_000));
        // A round passes, but not the 200 ms.
        let round = Delivery { prior_total: Some(102_000), ..acked(103_000, 1000, 4 * MSS) };
        cc.on_ack(low + 199_999, &round);
        assert_eq!((cc.mode(), cc.cwnd()), (Mode::ProbeRtt, 4 * MSS));
        // Both have.
        cc.on_ack(low + 200_000, &acked(104_000, 1000, 4 * MSS));
        assert_eq!(cc.mode(), Mode::ProbeBandwidth);
        assert_eq!(cc.rt_prop_at, low + 200_000, "the RTprop just measured counts as fresh");
        assert!(cc.cwnd() > 4 * MSS);
    }

    /// §4.3.5: 200 ms in ProbeRTT are not enough without a round trip's worth of ACKs.
    #[test]
    fn bbr_4_3_5_probe_rtt_waits_for_a_round_as_well_as_200_ms() {
        let mut cc = on_path(Mode::ProbeBandwidth);
        cc.next_round_total = 100_000;
        let expiry = RT_PROP_WINDOW_US + 1;
        cc.on_ack(expiry, &Delivery { rtt: Some(RT_PROP), ..acked(100_000, 1000, 0) });
        assert_eq!(cc.probe_rtt_done_at, Some(expiry + 200_000));
        cc.on_ack(expiry + 300_000, &acked(101_000, 1000, 0));
        assert_eq!(cc.mode(), Mode::ProbeRtt);
        cc.on_ack(expiry + 310_000, &Delivery { prior_total: Some(100_000), ..acked(102_000, 1000, 0) });
        assert_eq!(cc.mode(), Mode::ProbeBandwidth);
    }

    /// §4.2.3.6 (BBRSetCwnd) in Startup: the window grows by what each ACK delivers while it
    /// is below 2.885 BDP plus three segments (the pacing quantum's allowance), and, as in
    /// Linux, always while fewer than ten segments have been delivered.
    #[test]
    fn bbr_4_2_3_6_startup_grows_the_window_by_each_delivery_up_to_its_target() {
        let mut cc = on_path(Mode::Startup);
        let target = (HIGH_GAIN * BW * RT_PROP as f64 / 1e6) as usize + 3 * MSS;
        cc.cwnd = target - 500;
        cc.set_cwnd(&acked(100_000, 1_000, 0));
        assert_eq!(cc.cwnd(), target + 500, "below the target: grows");
        cc.set_cwnd(&acked(101_000, 1_000, 0));
        assert_eq!(cc.cwnd(), target + 500, "above: holds (Startup never shrinks it)");
        cc.cwnd = target;
        cc.set_cwnd(&acked(102_000, 1_000, 0));
        assert_eq!(cc.cwnd(), target, "at the target: holds");
        cc.set_cwnd(&acked(9_999, 1_000, 0));
        assert_eq!(cc.cwnd(), target + 1_000, "fewer than ten segments delivered: grows");
        cc.set_cwnd(&acked(10_000, 1_000, 0));
        assert_eq!(cc.cwnd(), target + 1_000);
        // Before any bandwidth sample there is no target: grow by what is delivered.
        let mut cc = Congestion::new(MSS);
        cc.rt_prop = Some(RT_PROP);
        cc.set_cwnd(&acked(100_000, 1_000, 0));
        assert_eq!(cc.cwnd(), (INITIAL_WINDOW_SEGMENTS + 1) * MSS);
    }

    /// §4.2.3.6 once the pipe is full: the window grows by each delivery up to cwnd_gain (2)
    /// BDP, plus three segments, plus the extra acked (§4.2.3.5), plus two segments in the
    /// probing phase (Linux bbr_quantization_budget); above it, it is cut to it.
    #[test]
    fn bbr_4_2_3_6_a_full_pipe_holds_two_bdps_plus_quanta_and_extra_acked() {
        let mut cc = on_path(Mode::ProbeBandwidth);
        cc.cycle_index = 2;
        cc.cwnd = 20_000;
        cc.set_cwnd(&acked(100_000, 1_000, 0));
        assert_eq!(cc.cwnd(), 21_000);
        cc.set_cwnd(&acked(105_000, 5_000, 0));
        assert_eq!(cc.cwnd(), 2 * BDP + 3 * MSS);
        cc.extra_acked = [4_000, 0];
        cc.set_cwnd(&acked(110_000, 5_000, 0));
        assert_eq!(cc.cwnd(), 2 * BDP + 3 * MSS + 4_000);
        cc.cycle_index = 0;
        cc.set_cwnd(&acked(115_000, 5_000, 0));
        assert_eq!(cc.cwnd(), 2 * BDP + 5 * MSS + 4_000, "the probing phase");
        cc.extra_acked = [0, 0];
        cc.set_cwnd(&acked(120_000, 5_000, 0));
        assert_eq!(cc.cwnd(), 2 * BDP + 5 * MSS, "cut to the target");
        // Drain (pipe full, cycle index 0 left from before) keeps Startup's gain, no probe allowance.
        let mut cc = on_path(Mode::Drain);
        cc.cwnd = 100_000;
        cc.set_cwnd(&acked(100_000, 1_000, 0));
        assert_eq!(cc.cwnd(), (HIGH_GAIN * BW * RT_PROP as f64 / 1e6) as usize + 3 * MSS);
    }

    /// §4.2.3.4 (packet conservation): in the first round of a recovery, as much may leave
    /// as each ACK delivers: the window is at least the flight plus what was delivered.
    #[test]
    fn bbr_4_2_3_4_the_first_round_of_recovery_conserves_packets() {
        let mut cc = on_path(Mode::ProbeBandwidth);
        cc.cwnd = 50_000;
        cc.on_loss(10_000);
        assert_eq!(cc.cwnd(), 11_000);
        cc.set_cwnd(&acked(100_000, 3_000, 9_000));
        assert_eq!(cc.cwnd(), 12_000);
        cc.set_cwnd(&acked(101_000, 1_000, 5_000));
        assert_eq!(cc.cwnd(), 12_000);
    }

    /// §4.2.3.6: the window never goes below BBRMinPipeCwnd, four segments, even right
    /// after a timeout cut it to one.
    #[test]
    fn bbr_4_2_3_6_the_window_is_never_below_four_segments() {
        let mut cc = on_path(Mode::ProbeBandwidth);
        cc.on_timeout();
        assert_eq!(cc.cwnd(), MSS);
        cc.set_cwnd(&acked(100_000, 500, 0));
        assert_eq!(cc.cwnd(), 4 * MSS);
    }

    /// The pacing rate `rate` is `want` to a part in a million.
    fn assert_near(rate: f64, want: f64, what: &str) {
        assert!((rate - want).abs() <= want * 1e-6, "{what}: {rate}, want {want}");
    }

    /// §4.2.1 (BBRInitPacingRate): before any bandwidth sample, pace at the startup gain
    /// times the initial window per smoothed RTT; with no RTT either, there is no rate.
    #[test]
    fn bbr_4_2_1_the_first_pacing_rate_is_high_gain_times_the_initial_window_per_srtt() {
        let cc = Congestion::new(MSS);
        let mut rtt = Rtt::default();
        assert_eq!(cc.pacing_rate(&rtt), None);
        rtt.sample(0, 10_000);
        assert_near(cc.pacing_rate(&rtt).unwrap(), HIGH_GAIN * 10_000.0 / 0.01, "10 segments per 10 ms");
    }

    /// §4.2.1 (BBRSetPacingRate): the rate is the mode's gain times the bandwidth (here 1 %
    /// below it); in Startup it only rises (early samples are small), once the pipe is full
    /// it follows the gain down too. Ours: never below ten segments per RTprop.
    #[test]
    fn bbr_4_2_1_the_pacing_rate_is_the_gain_times_the_bandwidth() {
        let rt_prop = 100_000; // the floor: 10 segments per 100 ms, 100 kB/s
        let rate = |mode: Mode, cycle_index: usize, bandwidth: f64| {
            let mut cc = on_path(mode);
            cc.rt_prop = Some(rt_prop);
            cc.bandwidth[0] = (0, bandwidth);
            cc.cycle_index = cycle_index;
            cc.set_pacing_rate();
            cc.pacing_rate(&Rtt::default()).unwrap()
        };
        let paced = BW * PACING_MARGIN;
        assert_near(rate(Mode::Startup, 0, BW), HIGH_GAIN * paced, "Startup");
        assert_near(rate(Mode::Drain, 0, BW), paced / HIGH_GAIN, "Drain");
        assert_near(rate(Mode::ProbeBandwidth, 0, BW), 1.25 * paced, "ProbeBW, probing");
        assert_near(rate(Mode::ProbeBandwidth, 1, BW), 0.75 * paced, "ProbeBW, draining");
        assert_near(rate(Mode::ProbeBandwidth, 4, BW), paced, "ProbeBW, cruising");
        assert_near(rate(Mode::ProbeRtt, 0, BW), paced, "ProbeRTT");
        assert_near(rate(Mode::ProbeBandwidth, 4, 10e3), 100e3, "the floor");
        // Startup only rises; a full pipe follows the estimate down.
        let mut cc = on_path(Mode::Startup);
        cc.set_pacing_rate();
        cc.bandwidth[0] = (0, BW / 2.0);
        cc.set_pacing_rate();
        assert_near(cc.pacing_rate(&Rtt::default()).unwrap(), HIGH_GAIN * paced, "Startup keeps the higher rate");
        cc.filled_pipe = true;
        cc.set_pacing_rate();
        assert_near(cc.pacing_rate(&Rtt::default()).unwrap(), HIGH_GAIN * paced / 2.0, "a full pipe follows");
        // No bandwidth sample: nothing to set.
        let mut cc = Congestion::new(MSS);
        cc.set_pacing_rate();
        assert_eq!(cc.pacing_rate, 0.0);
    }

    /// §4.1.1.3 (round counting): a round ends when a segment sent after it began is
    /// delivered, i.e. when the delivered count at its sending reaches the count at the
    /// round's start; the first round of a recovery (packet conservation) ends with it.
    #[test]
    fn bbr_4_1_1_3_a_round_ends_when_a_segment_sent_after_it_began_is_delivered() {
        let mut cc = Congestion::new(MSS);
        let ack = |total, prior| Delivery { prior_total: Some(prior), ..acked(total, 1000, 0) };
        assert!(cc.update_round(&ack(5_000, 0)));
        assert_eq!((cc.round, cc.next_round_total), (1, 5_000));
        assert!(!cc.update_round(&ack(8_000, 4_999)), "sent before the round began");
        assert!(!cc.update_round(&acked(9_000, 1000, 0)), "no sending record");
        cc.conserving = true;
        assert!(cc.update_round(&ack(10_000, 5_000)));
        assert_eq!((cc.round, cc.next_round_total, cc.conserving), (2, 10_000, false));
    }

    /// §4.3.2.2 (BBRCheckFullPipe): Startup's pipe is full once three rounds in a row have
    /// not grown the bandwidth estimate by 25 %; only round starts count, and not
    /// app-limited ones.
    #[test]
    fn bbr_4_3_2_2_the_pipe_is_full_after_three_rounds_without_25_percent_growth() {
        let mut cc = on_path(Mode::Startup);
        let (round, app_limited) = (acked(0, 1000, 0), Delivery { app_limited: true, ..acked(0, 1000, 0) });
        cc.check_full_pipe(true, &round);
        assert_eq!((cc.full_bandwidth, cc.full_bandwidth_rounds), (BW, 0));
        cc.bandwidth[0] = (0, 1.25 * BW);
        cc.check_full_pipe(true, &round);
        assert_eq!((cc.full_bandwidth, cc.full_bandwidth_rounds), (1.25 * BW, 0), "exactly 25 % more is growth");
        cc.bandwidth[0] = (0, 1.5 * BW);
        for rounds in 1..=2 {
            cc.check_full_pipe(true, &round);
            cc.check_full_pipe(false, &round);
            cc.check_full_pipe(true, &app_limited);
            assert_eq!((cc.full_bandwidth_rounds, cc.filled_pipe), (rounds, false));
        }
        cc.check_full_pipe(true, &round);
        assert!(cc.filled_pipe);
    }

    /// §4.3.3 (Drain): once the pipe is full, Startup gives way to Drain, which lasts until
    /// the flight is down to one BDP, then ProbeBW begins.
    #[test]
    fn bbr_4_3_3_drain_follows_a_full_pipe_until_one_bdp_is_in_flight() {
        let mut cc = on_path(Mode::Startup);
        cc.check_drain(1_000, &acked(0, 1000, 0));
        assert_eq!(cc.mode, Mode::Startup, "the pipe is not full");
        cc.filled_pipe = true;
        cc.check_drain(1_000, &acked(0, 1000, BDP + 1));
        assert_eq!(cc.mode, Mode::Drain);
        cc.check_drain(2_000, &acked(0, 1000, BDP + 1));
        assert_eq!(cc.mode, Mode::Drain);
        cc.check_drain(3_000, &acked(0, 1000, BDP));
        assert_eq!((cc.mode, cc.cycle_start), (Mode::ProbeBandwidth, 3_000));
        // In ProbeBW, a small flight changes nothing.
        cc.check_drain(4_000, &acked(0, 1000, 0));
        assert_eq!((cc.mode, cc.cycle_start), (Mode::ProbeBandwidth, 3_000));
    }

    /// §4.2.3.4 (loss recovery): a loss holds the window to the flight plus one segment (at
    /// least four), once per episode; its end restores the window from before it. A
    /// timeout during the episode keeps the window saved at its start.
    #[test]
    fn bbr_4_2_3_4_a_loss_holds_the_flight_and_its_end_restores_the_window() {
        let mut cc = on_path(Mode::ProbeBandwidth);
        cc.cwnd = 50_000;
        cc.on_loss(1_000);
        assert_eq!((cc.cwnd(), cc.prior_cwnd), (4 * MSS, 50_000), "at least four segments");
        cc.cwnd = 30_000;
        cc.on_loss(10_000);
        assert_eq!((cc.cwnd(), cc.prior_cwnd), (30_000, 50_000), "one episode, one cut");
        cc.on_timeout();
        assert_eq!((cc.cwnd(), cc.prior_cwnd), (MSS, 50_000));
        cc.on_recovery_end();
        assert_eq!((cc.cwnd(), cc.in_recovery, cc.conserving), (50_000, false, false));
        cc.on_recovery_end();
        assert_eq!(cc.cwnd(), 50_000);
        // A new episode saves the window as it is then.
        cc.cwnd = 20_000;
        cc.on_loss(5_000);
        assert_eq!((cc.cwnd(), cc.prior_cwnd), (6_000, 20_000));
        // Outside recovery a timeout saves it too; the end of the episode brings it back.
        let mut cc = on_path(Mode::ProbeBandwidth);
        cc.cwnd = 40_000;
        cc.on_timeout();
        assert_eq!((cc.cwnd(), cc.prior_cwnd, cc.in_recovery, cc.conserving), (MSS, 40_000, true, false));
        cc.on_recovery_end();
        assert_eq!(cc.cwnd(), 40_000);
        // In ProbeRTT the saved window is the larger of the two (ProbeRTT's is small).
        let mut cc = on_path(Mode::ProbeRtt);
        cc.prior_cwnd = 60_000;
        cc.cwnd = 4_000;
        cc.on_loss(1_000);
        assert_eq!(cc.prior_cwnd, 60_000);
    }
}
