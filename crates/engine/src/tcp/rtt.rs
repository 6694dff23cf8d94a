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

    /// A retransmission timeout has fired since data was last acknowledged.
    pub fn backed_off(&self) -> bool {
        self.backoff > 0
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

    /// RFC 6298 §2.2 and §2.3 on a path slow enough that the 200 ms floor plays no part:
    /// SRTT <- R, RTTVAR <- R/2 on the first sample; then RTTVAR <- 3/4 RTTVAR + 1/4
    /// |SRTT - R'| and SRTT <- 7/8 SRTT + 1/8 R'; RTO = SRTT + max(G, 4 RTTVAR), G = 1 ms.
    #[test]
    fn rfc6298_2_the_estimator_in_microseconds() {
        let mut rtt = Rtt::default();
        rtt.sample(0, 400_000);
        assert_eq!((rtt.srtt(), rtt.rttvar, rtt.rto()), (Some(400_000), 200_000, 1_200_000));
        rtt.sample(1, 600_000);
        assert_eq!((rtt.srtt(), rtt.rttvar, rtt.rto()), (Some(425_000), 200_000, 1_225_000));
        rtt.sample(2, 200_000);
        assert_eq!((rtt.srtt(), rtt.rttvar, rtt.rto()), (Some(396_875), 206_250, 1_221_875));
        // A steady path: RTTVAR decays to nothing and the clock granularity G is what is left.
        let mut rtt = Rtt::default();
        for i in 0..100 {
            rtt.sample(i, 300_000);
        }
        assert_eq!((rtt.srtt(), rtt.rttvar, rtt.rto()), (Some(300_000), 0, 301_000));
        // A zero sample counts as one microsecond.
        let mut rtt = Rtt::default();
        rtt.sample(0, 0);
        assert_eq!((rtt.srtt(), rtt.min()), (Some(1), 1));
    }

    /// RFC 6298 §5.5: each timeout doubles the RTO, up to the 60 s maximum (§2.5), however
    /// many come; §5.7: 3 s before a sample when the handshake had to be repeated.
    #[test]
    fn rfc6298_5_5_the_timeout_doubles_up_to_a_minute_and_5_7_starts_at_three_seconds() {
        let mut rtt = Rtt::default();
        rtt.sample(0, 400_000);
        rtt.back_off();
        assert_eq!(rtt.rto(), 2_400_000);
        rtt.back_off();
        assert_eq!(rtt.rto(), 4_800_000);
        for _ in 0..100 {
            rtt.back_off();
        }
        assert_eq!(rtt.rto(), MAX_RTO_US);
        rtt.reset_backoff();
        assert_eq!(rtt.rto(), 1_200_000);
        let mut rtt = Rtt::default();
        rtt.handshake_retransmitted();
        assert_eq!(rtt.rto(), FALLBACK_RTO_US);
        rtt.sample(0, 400_000);
        assert_eq!(rtt.rto(), 1_200_000, "a sample replaces the fallback");
    }

    /// The recent minimum: a sample at or below it takes its place (an equal one refreshes
    /// it); a larger one only once the minimum is more than ten seconds old.
    #[test]
    fn the_minimum_rtt_is_the_lowest_of_the_last_ten_seconds() {
        let mut rtt = Rtt::default();
        rtt.sample(0, 300_000);
        rtt.sample(5_000_000, 300_000);
        rtt.sample(15_000_000, 400_000);
        assert_eq!(rtt.min(), 300_000, "refreshed at 5 s: ten seconds old, not older");
        rtt.sample(15_000_001, 400_000);
        assert_eq!(rtt.min(), 400_000);
        rtt.sample(15_000_002, 399_999);
        assert_eq!(rtt.min(), 399_999);
    }
}
