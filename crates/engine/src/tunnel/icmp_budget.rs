//! How many ICMP errors (destination unreachable) we send a peer.
//!
//! RFC 4443 2.4(f): a node MUST limit the rate of the ICMPv6 errors it originates, and a
//! token bucket is the way it suggests; RFC 1812 4.3.2.8 asks the same for ICMP. Each
//! peer has its own bucket, so a peer that floods us with datagrams nobody takes gets a
//! trickle of answers and uses up no other peer's. The figures are a router's usual
//! default: ten at once, then one every 100 ms.

/// Errors a peer may get at once.
const BURST: u64 = 10;
/// One more error earned per this many microseconds.
const INTERVAL_US: u64 = 100_000;

#[derive(Debug)]
pub struct IcmpBudget {
    /// Earned time, capped at a full bucket; an error spends one interval.
    credit_us: u64,
    last_us: u64,
}

impl IcmpBudget {
    /// A full bucket.
    pub fn new() -> Self {
        IcmpBudget { credit_us: BURST * INTERVAL_US, last_us: 0 }
    }

    /// Whether an error may go at `now` (microseconds); it is spent if so.
    pub fn take(&mut self, now: u64) -> bool {
        let earned = now.saturating_sub(self.last_us);
        self.last_us = self.last_us.max(now);
        self.credit_us = (self.credit_us + earned).min(BURST * INTERVAL_US);
        if self.credit_us < INTERVAL_US {
            return false;
        }
        self.credit_us -= INTERVAL_US;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(budget: &mut IcmpBudget, now: u64, tries: usize) -> usize {
        (0..tries).filter(|_| budget.take(now)).count()
    }

    #[test]
    fn rfc4443_2_4_f_ten_errors_at_once_then_one_per_interval() {
        let mut budget = IcmpBudget::new();
        assert_eq!(taken(&mut budget, 5_000_000, 50), 10);
        assert_eq!(taken(&mut budget, 5_000_000 + INTERVAL_US - 1, 5), 0);
        assert_eq!(taken(&mut budget, 5_000_000 + INTERVAL_US, 5), 1);
        assert_eq!(taken(&mut budget, 5_000_000 + 4 * INTERVAL_US, 5), 3);
    }

    #[test]
    fn a_quiet_peer_earns_back_a_full_burst_and_no_more() {
        let mut budget = IcmpBudget::new();
        assert_eq!(taken(&mut budget, 0, 10), 10);
        assert_eq!(taken(&mut budget, 60_000_000, 50), 10);
    }

    #[test]
    fn a_clock_that_steps_back_earns_nothing() {
        let mut budget = IcmpBudget::new();
        assert_eq!(taken(&mut budget, 1_000_000, 10), 10);
        assert_eq!(taken(&mut budget, 0, 5), 0);
        assert_eq!(taken(&mut budget, 1_000_000 + INTERVAL_US, 5), 1);
    }
}
