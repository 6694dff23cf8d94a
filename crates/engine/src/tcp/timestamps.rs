//! RFC 7323 timestamps, once both SYNs carried them (§3.2): what we put in TSval and TSecr,
//! PAWS (§5: a segment whose TSval is older than TS.Recent is an old duplicate), which
//! TSval to echo (§4.3: TS.Recent moves only for a segment that covers Last.ACK.sent), and
//! round-trip samples from the echo (§4.1), which hold for retransmitted data too.
//!
//! Our clock ticks every millisecond (§5.4 asks for 1 ms to 1 s) from a per-connection
//! offset, so TSval tells no one our uptime and two connections cannot be compared.

use super::segment::Timestamp;
use super::seq;

const TICK_US: u64 = 1_000;
/// TS.Recent is no base for PAWS after this long without a segment (§5.5: 24 days).
const RECENT_VALID_US: u64 = 24 * 24 * 3600 * 1_000_000;

#[derive(Debug, Clone, Copy)]
pub struct Timestamps {
    offset: u32,
    /// TS.Recent: the TSval to echo, and when it was taken.
    recent: u32,
    recent_at: u64,
    /// Last.ACK.sent: the acknowledgement number our last segment carried.
    last_ack_sent: u32,
}

impl Timestamps {
    /// Timestamps are on: the peer's SYN (or SYN-ACK), which arrived at `now`, carried `syn_tsval`.
    pub fn new(offset: u32, syn_tsval: u32, now: u64, rcv_nxt: u32) -> Self {
        Timestamps { offset, recent: syn_tsval, recent_at: now, last_ack_sent: rcv_nxt }
    }

    /// Our clock's reading at `now`.
    pub fn clock(offset: u32, now: u64) -> u32 {
        offset.wrapping_add((now / TICK_US) as u32)
    }

    /// The option for a segment we send at `now` acknowledging `ack` (§3.2: on every
    /// segment but a RST).
    pub fn stamp(&mut self, now: u64, ack: u32) -> Timestamp {
        self.last_ack_sent = ack;
        Timestamp { val: Self::clock(self.offset, now), ecr: self.recent }
    }

    /// PAWS (§5.3 R1): a segment (not a RST) with an older TSval than TS.Recent is an old
    /// duplicate, unless TS.Recent is too old to judge by (§5.5).
    pub fn rejects(&self, now: u64, tsval: u32) -> bool {
        seq::before(tsval, self.recent) && now.saturating_sub(self.recent_at) < RECENT_VALID_US
    }

    /// An acceptable segment starting at `seq` arrived at `now` (§4.3 R3): its TSval becomes
    /// the one to echo if it is not older and the segment covers what we last acknowledged.
    pub fn on_acceptable(&mut self, now: u64, seq_no: u32, tsval: u32) {
        if seq::at_or_after(tsval, self.recent) && seq::at_or_before(seq_no, self.last_ack_sent) {
            self.recent = tsval;
            self.recent_at = now;
        }
    }

    /// The round trip the echo shows for an ACK of new data (§4.1), in microseconds; `None`
    /// when the echo is not one of our readings.
    pub fn rtt_sample(&self, now: u64, tsecr: u32) -> Option<u64> {
        let ticks = Self::clock(self.offset, now).wrapping_sub(tsecr);
        // An echo from the future, or from before the connection, is no measurement.
        (ticks < 1 << 30).then(|| (ticks as u64 * TICK_US).max(1))
    }

    /// The peer's latest TSval, for RFC 6191's TIME-WAIT rule.
    pub fn recent(&self) -> u32 {
        self.recent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7323_5_4_the_clock_ticks_each_millisecond_from_the_offset() {
        assert_eq!(Timestamps::clock(1000, 0), 1000);
        assert_eq!(Timestamps::clock(1000, 2_999), 1002);
        assert_eq!(Timestamps::clock(u32::MAX, 1_000), 0, "it wraps");
    }

    #[test]
    fn rfc7323_4_3_ts_recent_follows_segments_that_cover_last_ack_sent() {
        let mut ts = Timestamps::new(0, 100, 0, 5000);
        assert_eq!(ts.stamp(7_000, 5000), Timestamp { val: 7, ecr: 100 });
        // A later segment past what we acknowledged (its predecessor may be lost): not echoed.
        ts.on_acceptable(1, 6000, 150);
        assert_eq!(ts.recent(), 100);
        // The one that covers Last.ACK.sent is.
        ts.on_acceptable(2, 5000, 120);
        assert_eq!(ts.recent(), 120);
        // An older TSval never moves it back.
        ts.on_acceptable(3, 5000, 110);
        assert_eq!(ts.recent(), 120);
        assert_eq!(ts.stamp(9_000, 6000).ecr, 120);
        ts.on_acceptable(4, 5999, 150);
        assert_eq!(ts.recent(), 150, "Last.ACK.sent moved to 6000 with the stamp");
    }

    #[test]
    fn rfc7323_5_3_paws_rejects_older_tsvals_while_ts_recent_is_valid() {
        let ts = Timestamps::new(0, 1000, 0, 1);
        assert!(ts.rejects(10, 999));
        assert!(!ts.rejects(10, 1000), "equal is not older");
        assert!(!ts.rejects(10, 1001));
        // Older modulo 2^32.
        let ts = Timestamps::new(0, 5, 0, 1);
        assert!(ts.rejects(10, u32::MAX - 5));
        const DAY_US: u64 = 86_400 * 1_000_000;
        assert!(ts.rejects(24 * DAY_US - 1, u32::MAX - 5));
        assert!(!ts.rejects(24 * DAY_US, u32::MAX - 5), "24 days idle: TS.Recent is no longer valid (RFC 7323 §5.5)");
    }

    #[test]
    fn rfc7323_4_1_the_echo_gives_a_round_trip() {
        let ts = Timestamps::new(50, 0, 0, 1);
        let sent = Timestamps::clock(50, 10_000);
        assert_eq!(ts.rtt_sample(35_000, sent), Some(25_000));
        assert_eq!(ts.rtt_sample(10_500, sent), Some(1), "under a tick: the smallest sample");
        assert_eq!(ts.rtt_sample(10_000, sent.wrapping_add(5)), None, "an echo from the future");
        // Anything 2^30 ticks (12 days) old or more is taken for one from the future.
        assert_eq!(ts.rtt_sample(10_000, sent.wrapping_sub((1 << 30) - 1)), Some(((1 << 30) - 1) * 1000));
        assert_eq!(ts.rtt_sample(10_000, sent.wrapping_sub(1 << 30)), None);
    }
}
