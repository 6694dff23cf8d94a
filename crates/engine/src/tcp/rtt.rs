//! Round-trip time, in microseconds: RFC 6298's smoothed estimator and retransmission
//! timeout, plus the recent minimum that pacing, loss detection and slow-start exit use.
//! Samples come from our own send times (Karn's rule: never from a retransmitted segment).

/// Linux's floor: a WireGuard path is rarely faster than this to answer a loss.
pub const MIN_RTO_US: u64 = 200_000;
pub const MAX_RTO_US: u64 = 60_000_000;
/// Before any sample (RFC 6298 §2.1).
pub const INITIAL_RTO_US: u64 = 1_000_000;
/// Before any sample, once a SYN or SYN-ACK had to be sent again (RFC 6298 §5.7).
pub const FALLBACK_RTO_US: u64 = 3_000_000;
/// How long a minimum stays valid before a larger sample may replace it (paths change).
const MIN_RTT_WINDOW_US: u64 = 10_000_000;
const MAX_BACKOFF: u32 = 10;

#[derive(Debug, Clone, Default)]
pub struct Rtt {
    srtt: Option<u64>,
    rttvar: u64,
    /// The smallest recent sample and when it was taken.
    min: Option<(u64, u64)>,
    backoff: u32,
    /// The handshake was retransmitted: until a sample, the RTO is 3 s.
    handshake_retransmitted: bool,
}

impl Rtt {
    pub fn sample(&mut self, now: u64, rtt: u64) {
        let rtt = rtt.max(1);
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                self.rttvar = (3 * self.rttvar + srtt.abs_diff(rtt)) / 4;
                self.srtt = Some((7 * srtt + rtt) / 8);
            }
        }
        if self.min.is_none_or(|(min, at)| rtt <= min || now.saturating_sub(at) > MIN_RTT_WINDOW_US) {
            self.min = Some((rtt, now));
        }
    }

    /// The smoothed RTT, once there is a sample.
    pub fn srtt(&self) -> Option<u64> {
        self.srtt
    }

    /// The smallest recent sample (0 before the first).
    pub fn min(&self) -> u64 {
        self.min.map_or(0, |(min, _)| min)
    }

    /// The retransmission timeout, with backoff applied.
    pub fn rto(&self) -> u64 {
        let base = match self.srtt {
            None if self.handshake_retransmitted => FALLBACK_RTO_US,
            None => INITIAL_RTO_US,
            Some(srtt) => (srtt + (4 * self.rttvar).max(1_000)).clamp(MIN_RTO_US, MAX_RTO_US),
        };
        (base << self.backoff).min(MAX_RTO_US)
    }

    /// A retransmission timeout fired: wait twice as long next time (RFC 6298 §5.5).
    pub fn back_off(&mut self) {
        self.backoff = (self.backoff + 1).min(MAX_BACKOFF);
    }

    /// The handshake completed without a sample because a SYN or SYN-ACK went twice (Karn):
    /// the RTO for data starts at 3 s (RFC 6298 §5.7), as the path may be that slow.
    pub fn handshake_retransmitted(&mut self) {
        self.handshake_retransmitted = true;
    }

    /// New data was acknowledged: the path works, the backoff ends.
    pub fn reset_backoff(&mut self) {
        self.backoff = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_rfc_6298_and_keeps_the_floor() {
        let mut rtt = Rtt::default();
        assert_eq!(rtt.rto(), INITIAL_RTO_US);
        rtt.sample(0, 40_000);
        assert_eq!((rtt.srtt(), rtt.min()), (Some(40_000), 40_000));
        // srtt + 4 * rttvar = 40 + 80 ms.
        assert_eq!(rtt.rto(), 200_000);
        for _ in 0..50 {
            rtt.sample(0, 40_000);
        }
        assert_eq!(rtt.rto(), MIN_RTO_US, "a steady 40 ms path times out at the floor");
        rtt.back_off();
        rtt.back_off();
        assert_eq!(rtt.rto(), 4 * MIN_RTO_US);
        rtt.reset_backoff();
        assert_eq!(rtt.rto(), MIN_RTO_US);
    }

    #[test]
    fn a_slow_path_gets_a_longer_timeout_and_the_minimum_expires() {
        let mut rtt = Rtt::default();
        rtt.sample(0, 500_000);
        assert!(rtt.rto() >= 1_500_000);
        rtt.sample(1_000, 300_000);
        assert_eq!(rtt.min(), 300_000);
        rtt.sample(2_000, 400_000);
        assert_eq!(rtt.min(), 300_000);
        rtt.sample(20_000_000, 400_000);
        assert_eq!(rtt.min(), 400_000, "an old minimum gives way");
        for _ in 0..20 {
            rtt.back_off();
        }
        assert_eq!(rtt.rto(), MAX_RTO_US);
    }
}
