//! How much a connection may have in flight, and how fast it releases it.
//!
//! CUBIC (RFC 9438) with its Reno-friendly region, slow start that ends when the RTT
//! starts to climb (HyStart++, RFC 9406, without its conservative phase), and the pacing
//! rate Linux uses: twice cwnd/srtt while slow start has far to go, 1.2× after.
//! Windows are in bytes; time in microseconds.

use super::rtt::Rtt;
use super::seq;

const BETA: f64 = 0.7;
/// CUBIC's C, in segments per second cubed.
const C: f64 = 0.4;
/// RFC 6928.
pub const INITIAL_WINDOW_SEGMENTS: usize = 10;
/// HyStart++: RTT samples a round needs before it is compared, and the clamp on the rise.
const HYSTART_MIN_SAMPLES: u32 = 8;
const HYSTART_MIN_ETA_US: u64 = 4_000;
const HYSTART_MAX_ETA_US: u64 = 16_000;

#[derive(Debug, Clone)]
pub struct Congestion {
    mss: f64,
    cwnd: f64,
    ssthresh: f64,
    /// The window before the last reduction, and CUBIC's curve around it.
    w_max: f64,
    k_seconds: f64,
    origin: f64,
    epoch_start: Option<u64>,
    /// The window a Reno flow would have (RFC 9438 §4.3).
    w_est: f64,
    round: Round,
}

/// One slow-start round for HyStart++: ends when the ACK passes `end`.
#[derive(Debug, Clone, Default)]
struct Round {
    end: Option<u32>,
    min_rtt: u64,
    last_min_rtt: u64,
    samples: u32,
}

impl Congestion {
    pub fn new(mss: usize) -> Self {
        let mss = mss as f64;
        Congestion {
            mss,
            cwnd: mss * INITIAL_WINDOW_SEGMENTS as f64,
            ssthresh: f64::INFINITY,
            w_max: 0.0,
            k_seconds: 0.0,
            origin: 0.0,
            epoch_start: None,
            w_est: 0.0,
            round: Round::default(),
        }
    }

    pub fn cwnd(&self) -> usize {
        self.cwnd as usize
    }

    pub fn in_slow_start(&self) -> bool {
        self.cwnd < self.ssthresh
    }

    /// Bytes were newly delivered (cumulatively or by SACK). The window only grows while
    /// it is what limits the sender (`cwnd_limited`); an idle or app-limited flow keeps it.
    pub fn on_delivered(&mut self, now: u64, bytes: usize, rtt: &Rtt, cwnd_limited: bool) {
        if !cwnd_limited || bytes == 0 {
            return;
        }
        let bytes = bytes as f64;
        if self.in_slow_start() {
            self.cwnd = (self.cwnd + bytes).min(self.ssthresh.max(self.cwnd));
            return;
        }
        let epoch = *self.epoch_start.get_or_insert_with(|| {
            if self.cwnd < self.w_max {
                self.k_seconds = ((self.w_max - self.cwnd) / self.mss / C).cbrt();
                self.origin = self.w_max;
            } else {
                self.k_seconds = 0.0;
                self.origin = self.cwnd;
            }
            self.w_est = self.cwnd;
            now
        });
        let srtt = rtt.srtt().unwrap_or(0) as f64 / 1e6;
        let t = (now.saturating_sub(epoch)) as f64 / 1e6 + srtt;
        let target = (self.origin + C * (t - self.k_seconds).powi(3) * self.mss).clamp(self.cwnd, 1.5 * self.cwnd);
        let cubic_growth = (target - self.cwnd) / self.cwnd * bytes;
        let alpha = 3.0 * (1.0 - BETA) / (1.0 + BETA);
        self.w_est += alpha * bytes / self.cwnd * self.mss;
        self.cwnd = (self.cwnd + cubic_growth).max(self.w_est);
    }

    /// An RTT sample while in slow start: leave it once a round's minimum RTT has risen
    /// clearly above the previous round's, which means a queue is building somewhere.
    pub fn on_rtt_sample(&mut self, rtt: u64, ack: u32, snd_nxt: u32) {
        if !self.in_slow_start() {
            return;
        }
        let round = &mut self.round;
        if round.end.is_none_or(|end| seq::at_or_after(ack, end)) {
            round.last_min_rtt = round.min_rtt;
            round.min_rtt = u64::MAX;
            round.samples = 0;
            round.end = Some(snd_nxt);
        }
        round.min_rtt = round.min_rtt.min(rtt);
        round.samples += 1;
        if round.samples >= HYSTART_MIN_SAMPLES && round.last_min_rtt != 0 && round.last_min_rtt != u64::MAX {
            let eta = (round.last_min_rtt / 8).clamp(HYSTART_MIN_ETA_US, HYSTART_MAX_ETA_US);
            if round.min_rtt >= round.last_min_rtt + eta {
                self.ssthresh = self.cwnd;
            }
        }
    }

    /// A loss was detected: one reduction per recovery episode (the caller ensures that).
    pub fn on_congestion(&mut self) {
        // Fast convergence: a flow that lost before reaching its old maximum gives way.
        self.w_max = if self.cwnd < self.w_max { self.cwnd * (1.0 + BETA) / 2.0 } else { self.cwnd };
        self.ssthresh = (self.cwnd * BETA).max(2.0 * self.mss);
        self.cwnd = self.ssthresh;
        self.epoch_start = None;
    }

    /// The retransmission timer fired: everything in flight is presumed lost.
    pub fn on_timeout(&mut self, already_reduced: bool) {
        if !already_reduced {
            self.on_congestion();
        }
        self.cwnd = self.mss;
        self.epoch_start = None;
    }

    /// Bytes per second to release at; `None` before the first RTT sample.
    pub fn pacing_rate(&self, rtt: &Rtt) -> Option<f64> {
        let srtt = rtt.srtt()? as f64 / 1e6;
        let ratio = if self.cwnd < self.ssthresh / 2.0 { 2.0 } else { 1.2 };
        Some(ratio * self.cwnd / srtt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;

    fn rtt(ms: u64) -> Rtt {
        let mut rtt = Rtt::default();
        rtt.sample(0, ms * 1000);
        rtt
    }

    #[test]
    fn slow_start_doubles_per_round_and_only_when_cwnd_limited() {
        let mut cc = Congestion::new(MSS);
        let rtt = rtt(10);
        assert_eq!(cc.cwnd(), 10 * MSS);
        cc.on_delivered(0, 10 * MSS, &rtt, false);
        assert_eq!(cc.cwnd(), 10 * MSS, "an app-limited flow does not grow");
        cc.on_delivered(0, 10 * MSS, &rtt, true);
        assert_eq!(cc.cwnd(), 20 * MSS);
        assert_eq!(cc.pacing_rate(&rtt).unwrap() as usize, 2 * 20 * MSS * 100);
    }

    #[test]
    fn a_loss_cuts_to_seventy_percent_and_the_window_regrows_toward_the_old_maximum() {
        let mut cc = Congestion::new(MSS);
        let rtt = rtt(10);
        cc.on_delivered(0, 90 * MSS, &rtt, true);
        assert_eq!(cc.cwnd(), 100 * MSS);
        cc.on_congestion();
        assert_eq!(cc.cwnd(), 70 * MSS);
        assert!(!cc.in_slow_start());
        // One window per 10 ms round for a second: CUBIC gets back to the old maximum.
        let mut now = 0;
        for _ in 0..100 {
            now += 10_000;
            cc.on_delivered(now, cc.cwnd(), &rtt, true);
        }
        assert!(cc.cwnd() >= 100 * MSS, "regrew to {}", cc.cwnd() / MSS);
        assert!(cc.cwnd() < 200 * MSS, "but not explosively: {}", cc.cwnd() / MSS);
        assert!((cc.pacing_rate(&rtt).unwrap() / (cc.cwnd() as f64 * 100.0) - 1.2).abs() < 0.01, "1.2 cwnd/srtt after slow start");
    }

    #[test]
    fn a_timeout_collapses_the_window_to_one_segment() {
        let mut cc = Congestion::new(MSS);
        cc.on_timeout(false);
        assert_eq!(cc.cwnd(), MSS);
        assert!(cc.in_slow_start(), "slow start back to ssthresh");
    }

    #[test]
    fn hystart_leaves_slow_start_when_the_rtt_climbs() {
        let mut cc = Congestion::new(MSS);
        let mut snd_nxt = 0u32;
        // Round 1: 40 ms; round 2: 41 ms (noise); round 3: 47 ms (a queue: more than 41/8 ms up).
        for (round, rtt) in [40_000u64, 41_000, 47_000].into_iter().enumerate() {
            let end = snd_nxt;
            snd_nxt = snd_nxt.wrapping_add(100_000);
            for i in 0..10 {
                cc.on_rtt_sample(rtt, end.wrapping_add(i), snd_nxt);
            }
            assert_eq!(cc.in_slow_start(), round < 2, "round {round}");
        }
    }
}
