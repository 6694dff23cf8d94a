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
        (self.tokens <= 0.0).then(|| self.last + ((1.0 - self.tokens) / rate * 1e6).ceil() as u64)
    }
}
