//! Pacing: a token bucket that spaces segments at congestion control's pacing rate (as
//! Linux's fq/internal pacing does for BBR), with a burst bound that adapts to losses.

/// Pacing bursts: time's worth, and how many segments (see `Pacer::ready`). Never fewer
/// than sixteen: ACKs often come in millisecond aggregates (Wi-Fi, our own batching), and
/// fewer segments per wakeup would hold a flow below ~180 Mbit/s whatever the path allows.
const BURST_US: f64 = 2_000.0;
const BURST_SEGMENTS: std::ops::RangeInclusive<usize> = 16..=64;

/// Token bucket that spaces segments at the pacing rate.
#[derive(Debug)]
pub(super) struct Pacer {
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
    pub(super) fn new() -> Self {
        Pacer { tokens: 0.0, last: 0, burst_segments: *BURST_SEGMENTS.start(), clean_bytes: 0 }
    }

    /// Refills for the time passed; true if a segment may go now.
    pub(super) fn ready(&mut self, now: u64, rate: Option<f64>, mss: usize) -> bool {
        let Some(rate) = rate else { return true };
        // Two milliseconds' worth may leave at once, since the host's timers fire about a
        // millisecond late (with less, a slow flow could never outrun its own timer).
        let burst = (rate * BURST_US / 1e6).clamp(2.0 * mss as f64, (self.burst_segments * mss) as f64);
        self.tokens = (self.tokens + rate * (now.saturating_sub(self.last)) as f64 / 1e6).min(burst);
        self.last = now;
        self.tokens > 0.0
    }

    pub(super) fn spend(&mut self, bytes: usize) {
        self.tokens -= bytes as f64;
    }

    pub(super) fn on_loss(&mut self) {
        self.burst_segments = (self.burst_segments / 2).max(*BURST_SEGMENTS.start());
        self.clean_bytes = 0;
    }

    /// `bytes` arrived with no loss in the episode: after a window's worth, allow two more segments.
    pub(super) fn on_clean_delivery(&mut self, bytes: usize, cwnd: usize) {
        self.clean_bytes += bytes;
        if self.clean_bytes >= cwnd {
            self.clean_bytes = 0;
            self.burst_segments = (self.burst_segments + 2).min(*BURST_SEGMENTS.end());
        }
    }

    /// When the bucket holds a token again.
    pub(super) fn next_release(&self, rate: Option<f64>) -> Option<u64> {
        let rate = rate?;
        (self.tokens <= 0.0).then(|| self.last + ((1.0 - self.tokens) * 1e6 / rate).ceil() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;

    /// A segment leaves only on a positive balance of tokens, earned at the pacing rate
    /// for the time passed; the bucket holds one again at `next_release`.
    #[test]
    fn a_segment_leaves_only_on_tokens_earned_at_the_pacing_rate() {
        let mut p = Pacer::new();
        assert!(p.ready(0, None, MSS), "no rate yet: unpaced");
        assert!(!p.ready(0, Some(1e6), MSS), "no time has passed: no tokens");
        assert_eq!(p.next_release(Some(1e6)), Some(1), "one byte's worth at 1 MB/s");
        // 1 ms at 1 MB/s earns a segment.
        assert!(p.ready(1_000, Some(1e6), MSS));
        assert_eq!(p.tokens, 1_000.0);
        assert_eq!(p.next_release(Some(1e6)), None, "it holds tokens now");
        p.spend(1_000);
        assert!(!p.ready(1_000, Some(1e6), MSS), "spent to zero: the next waits");
        p.spend(500);
        assert_eq!(p.tokens, -500.0, "a segment may overdraw the bucket; the debt is paid in time");
        let at = p.next_release(Some(1e6)).unwrap();
        assert_eq!(at, 1_501);
        assert!(!p.ready(at - 1, Some(1e6), MSS));
        assert!(p.ready(at, Some(1e6), MSS));
    }

    /// The bucket holds at most 2 ms at the rate (the host's timers fire about 1 ms late),
    /// never less than two segments, never more than the burst bound (16 segments at first).
    #[test]
    fn the_bucket_holds_two_ms_of_the_rate_within_two_segments_and_the_burst_bound() {
        for (rate, most) in [(4e6, 8_000.0), (100e3, 2_000.0), (100e6, 16_000.0)] {
            let mut p = Pacer::new();
            assert!(p.ready(10_000_000, Some(rate), MSS));
            assert_eq!(p.tokens, most, "at {rate} bytes/s, after 10 s idle");
        }
    }

    /// The burst bound halves when a loss is found (never below 16 segments) and grows by
    /// two segments for each window delivered without one (never above 64).
    #[test]
    fn the_burst_bound_halves_on_a_loss_and_grows_two_segments_a_clean_window() {
        let cap = |p: &mut Pacer, now: u64| {
            p.tokens = 0.0;
            p.ready(now, Some(100e6), MSS);
            p.tokens as usize / MSS
        };
        let mut p = Pacer::new();
        let cwnd = 10_000;
        p.on_clean_delivery(cwnd - 1, cwnd);
        assert_eq!(cap(&mut p, 1_000_000), 16, "not yet a window");
        p.on_clean_delivery(1, cwnd);
        assert_eq!(cap(&mut p, 2_000_000), 18, "a window");
        assert_eq!(p.clean_bytes, 0);
        for _ in 0..30 {
            p.on_clean_delivery(cwnd, cwnd);
        }
        assert_eq!(cap(&mut p, 3_000_000), 64, "at most 64");
        p.on_clean_delivery(cwnd - 1, cwnd);
        p.on_loss();
        assert_eq!(cap(&mut p, 4_000_000), 32, "a loss halves it");
        p.on_clean_delivery(cwnd - 1, cwnd);
        assert_eq!(cap(&mut p, 5_000_000), 32, "and starts the count of clean bytes again");
        p.on_loss();
        p.on_loss();
        assert_eq!(cap(&mut p, 6_000_000), 16, "at least 16");
    }
}
