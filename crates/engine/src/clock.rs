//! The host's clock, as the engine sees it.
//!
//! boringtun (built with `mock-instant`) reads time from `mock_instant`'s per-thread
//! clock, so every entry point sets that clock from the host's `now_ms` first. TCP keeps
//! microseconds: RTTs inside one machine are far below a millisecond.
//! The host clock must not go backwards: boringtun subtracts instants and would panic,
//! so a late `now_ms` is clamped to the last one seen.

use std::time::Duration;

#[derive(Debug, Default)]
pub(crate) struct Clock {
    now_us: u64,
}

impl Clock {
    /// Advances to `now_ms` (never backwards) and returns the time in effect, in microseconds.
    pub(crate) fn set(&mut self, now_ms: f64) -> u64 {
        let now = if now_ms.is_finite() && now_ms > 0.0 { (now_ms * 1000.0) as u64 } else { 0 };
        self.now_us = self.now_us.max(now);
        mock_instant::MockClock::set_time(Duration::from_micros(self.now_us));
        self.now_us
    }
}
