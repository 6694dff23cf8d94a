//! Delivery-rate sampling for congestion control (draft-cheng-iccrg-delivery-rate-estimation,
//! as Linux's tcp_rate.c): each segment records how much had been delivered when it left,
//! so each ACK yields the rate over the flight the newest delivered segment closed.

use super::{Sender, Sent};

/// How fast data got through, measured over the flight the newest delivered segment closed.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct RateSample {
    /// Bytes per second; `None` when the span was too short to trust.
    pub rate: Option<f64>,
    /// Sent while the host had nothing more to send: a floor, not the path's capacity.
    pub app_limited: bool,
    /// The connection's delivered count when that segment left (marks round trips).
    pub prior_delivered: u64,
}

impl Sender {
    /// Something other than the path holds the sender back (the host has nothing more to
    /// send, or the peer's window is full): samples from what is in flight now show that
    /// limit, not the path's capacity.
    pub fn mark_app_limited(&mut self) {
        self.app_limited_until = Some(self.delivered + self.pipe as u64);
    }

    /// Until which delivered count what is sent now is app-limited (for the rule tests).
    #[cfg(test)]
    pub fn app_limited_until(&self) -> Option<u64> {
        self.app_limited_until
    }

    /// The delivery rate over the flight that ended with `sent` (the newest segment just
    /// delivered): bytes delivered since it left, over the longer of its send and ACK spans.
    pub(super) fn rate_sample(&mut self, sent: &Sent, min_rtt: u64) -> RateSample {
        if self.app_limited_until.is_some_and(|until| self.delivered > until) {
            self.app_limited_until = None;
        }
        self.first_sent_at = sent.sent_at;
        let send_span = sent.sent_at.saturating_sub(sent.first_sent_at);
        let ack_span = self.delivered_at.saturating_sub(sent.delivered_at);
        let span = send_span.max(ack_span);
        // A span shorter than the minimum RTT comes from ACKs bunched together: it would overstate the rate.
        let bytes = self.delivered - sent.delivered;
        let rate = (span > 0 && span >= min_rtt).then(|| bytes as f64 * 1e6 / span as f64);
        RateSample { rate, app_limited: sent.app_limited, prior_delivered: sent.delivered }
    }
}
