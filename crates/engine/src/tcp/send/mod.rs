//! The sending half of a connection: what the host wrote, what of it is in flight, and
//! what was lost.
//!
//! Bytes live in `buffer` from the oldest unacknowledged one (`una`) on. Every segment
//! sent is remembered with the time it left, so ACKs and SACK blocks give RTT samples
//! and delivered-byte counts. Only lost segments are sent again; `pipe` is RFC 6675's
//! estimate of what is in flight. This file holds the buffer, what to send next
//! (RFC 9293 §3.8.6.2.1 sender-side silly window avoidance) and the cumulative ACK
//! (RFC 9293 §3.10.7.4); beside it:
//!
//! - `sack.rs`: the scoreboard: which segments are SACKed (RFC 2018) or lost, and the
//!   resend queue; what a retransmission timeout marks lost (RFC 6298 §5, RFC 6675 §5.1).
//! - `rack.rs`: RACK (RFC 8985): a segment is lost once a segment sent after it has
//!   arrived and a reordering window has passed.
//! - `rate.rs`: delivery-rate samples for congestion control
//!   (draft-cheng-iccrg-delivery-rate-estimation, Linux's tcp_rate.c).

mod rack;
mod rate;
mod sack;

use super::seq;
use rack::Rack;
use rate::RateSample;
use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    InFlight,
    Sacked,
    Lost,
}

/// One segment as it was sent.
#[derive(Debug, Clone, Copy)]
struct Sent {
    seq: u32,
    /// Data bytes; a FIN adds one to the sequence space.
    len: u32,
    fin: bool,
    sent_at: u64,
    retransmitted: bool,
    fate: Fate,
    /// The connection's delivery counters when it left.
    delivered: u64,
    delivered_at: u64,
    first_sent_at: u64,
    app_limited: bool,
}

impl Sent {
    fn end(&self) -> u32 {
        self.seq.wrapping_add(self.len + self.fin as u32)
    }

    fn space(&self) -> usize {
        (self.len + self.fin as u32) as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fin {
    No,
    Queued,
    Sent,
}

/// What the sender should put on the wire next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    pub seq: u32,
    pub len: usize,
    pub fin: bool,
    pub retransmission: bool,
}

/// What an ACK told us.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct AckOutcome {
    /// Data bytes newly acknowledged cumulatively.
    pub acked: usize,
    /// Sequence space newly delivered, cumulatively or by SACK (what congestion control counts).
    pub delivered: usize,
    /// The RTT of the most recently sent segment this ACK delivered, if never retransmitted.
    pub rtt_sample: Option<u64>,
    pub fin_acked: bool,
    /// Segments were newly judged lost.
    pub lost: bool,
    pub rate: Option<RateSample>,
}

#[derive(Debug)]
pub struct Sender {
    /// The oldest unacknowledged sequence number.
    pub una: u32,
    /// The next new sequence number to send.
    pub nxt: u32,
    buffer: VecDeque<u8>,
    fin: Fin,
    segments: VecDeque<Sent>,
    /// How many of `segments` are SACKed: with none (no loss), no ACK scans the record.
    sacked: usize,
    /// Sequence space sent and neither delivered nor judged lost.
    pipe: usize,
    /// Segments judged lost and not yet sent again, by sequence number.
    lost: VecDeque<u32>,
    rack: Rack,
    /// The peer's receive window, in bytes from `una`.
    pub window: usize,
    pub max_window: usize,
    /// The segment and ACK that last updated `window` (RFC 9293 §3.10.7.4).
    /// `None` until the first window arrives.
    window_from: Option<(u32, u32)>,
    pub mss: usize,
    /// Most the host may have written and not yet acknowledged.
    pub limit: usize,
    pub retransmitted_segments: u64,
    /// Sequence space delivered over the connection's life, and when it last grew.
    pub delivered: u64,
    delivered_at: u64,
    /// When the segment that last produced a rate sample was sent.
    first_sent_at: u64,
    /// Until `delivered` passes this, the host is what limits sending (`None`: it is not).
    app_limited_until: Option<u64>,
}

impl Sender {
    /// `iss` is our initial sequence number; data starts right after the SYN.
    pub fn new(iss: u32, mss: usize, limit: usize) -> Self {
        let first = iss.wrapping_add(1);
        Sender {
            una: first,
            nxt: first,
            buffer: VecDeque::new(),
            fin: Fin::No,
            segments: VecDeque::new(),
            sacked: 0,
            pipe: 0,
            lost: VecDeque::new(),
            rack: Rack::default(),
            window: 0,
            max_window: 0,
            window_from: None,
            mss,
            limit,
            retransmitted_segments: 0,
            delivered: 0,
            delivered_at: 0,
            first_sent_at: 0,
            app_limited_until: None,
        }
    }

    /// Takes what fits of `data`; returns how many bytes.
    pub fn write(&mut self, data: &[u8]) -> usize {
        if self.fin != Fin::No {
            return 0;
        }
        let n = self.room().min(data.len());
        self.buffer.extend(&data[..n]);
        n
    }

    /// Bytes written and not yet acknowledged.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Room for the host to write.
    pub fn room(&self) -> usize {
        self.limit.saturating_sub(self.buffer.len())
    }

    /// Queues a FIN after the data written so far.
    pub fn close(&mut self) {
        if self.fin == Fin::No {
            self.fin = Fin::Queued;
        }
    }

    pub fn fin_queued(&self) -> bool {
        self.fin != Fin::No
    }

    /// Everything, FIN included if queued, was sent and acknowledged.
    #[cfg(test)]
    pub fn all_acked(&self) -> bool {
        self.segments.is_empty() && self.buffer.is_empty() && self.fin != Fin::Queued
    }

    /// Sequence space sent and not yet acknowledged (SACKed segments included).
    pub fn outstanding(&self) -> usize {
        seq::distance(self.una, self.nxt)
    }

    pub fn pipe(&self) -> usize {
        self.pipe
    }

    /// New data waits to be sent.
    pub fn has_unsent(&self) -> bool {
        self.unsent() > 0 || self.fin == Fin::Queued
    }

    /// Something waits to be sent: new data, or segments to send again.
    pub fn has_work(&self) -> bool {
        self.has_unsent() || !self.lost.is_empty()
    }

    /// New data waits, but the peer's window has no room for it.
    pub fn window_limited(&self) -> bool {
        let unsent = self.unsent();
        unsent > 0 && self.window.saturating_sub(self.outstanding()) < self.mss.min(unsent)
    }

    fn unsent(&self) -> usize {
        self.buffer.len().saturating_sub(self.sent_data())
    }

    /// Data bytes from `una` to `nxt` (the FIN takes sequence space but no buffer).
    fn sent_data(&self) -> usize {
        self.outstanding().saturating_sub((self.fin == Fin::Sent) as usize)
    }

    /// The peer's window field arrived on a segment at `seq` acknowledging `ack`.
    pub fn update_window(&mut self, seq_no: u32, ack: u32, window: usize) {
        let newer = self.window_from.is_none_or(|(wl1, wl2)| seq::before(wl1, seq_no) || (wl1 == seq_no && seq::at_or_before(wl2, ack)));
        if newer {
            self.window = window;
            self.max_window = self.max_window.max(window);
            self.window_from = Some((seq_no, ack));
        }
    }

    /// Decides the next segment within `cwnd` bytes in flight: lost segments first, then
    /// new data the peer has room for. `None` when nothing may or need be sent.
    pub fn next(&mut self, cwnd: usize) -> Option<Planned> {
        if self.pipe >= cwnd {
            return None;
        }
        while let Some(&lost_seq) = self.lost.front() {
            match self.find(lost_seq).map(|i| self.segments[i]) {
                Some(sent) if sent.fate == Fate::Lost => {
                    return Some(Planned { seq: sent.seq, len: sent.len as usize, fin: sent.fin, retransmission: true });
                }
                _ => {
                    self.lost.pop_front();
                }
            }
        }
        self.next_new(false)
    }

    /// The next new segment, if the peer's window has room (`probe` ignores the window
    /// for one segment, as a tail-loss probe may).
    pub fn next_new(&self, probe: bool) -> Option<Planned> {
        if self.fin == Fin::Sent {
            return None;
        }
        let room = if probe { self.mss } else { self.window.saturating_sub(self.outstanding()) };
        let unsent = self.unsent();
        let len = unsent.min(self.mss).min(room);
        let fin = self.fin == Fin::Queued && len == unsent;
        if len == 0 && !fin {
            return None;
        }
        // Sender-side silly window avoidance: a short segment only when it is all we have,
        // the window is wide open, or nothing is in flight to bring an ACK (RFC 9293 §3.8.6.2.1).
        if len < self.mss && len < unsent && room < self.max_window / 2 && self.outstanding() > 0 {
            return None;
        }
        Some(Planned { seq: self.nxt, len, fin, retransmission: false })
    }

    /// Re-sends the highest segment in flight, as a tail-loss probe does when no new data may go.
    pub fn last_in_flight(&self) -> Option<Planned> {
        let sent = self.segments.iter().rev().find(|s| s.fate == Fate::InFlight)?;
        Some(Planned { seq: sent.seq, len: sent.len as usize, fin: sent.fin, retransmission: true })
    }

    /// The bytes of a planned segment, in up to two pieces.
    pub fn payload(&self, planned: &Planned) -> [&[u8]; 2] {
        let start = seq::distance(self.una, planned.seq);
        let end = start + planned.len;
        let (a, b) = self.buffer.as_slices();
        let piece = |s: &'_ [u8], from: usize, to: usize| -> (usize, usize) { (from.min(s.len()), to.min(s.len())) };
        let (a_from, a_to) = piece(a, start, end);
        let (b_from, b_to) = (start.saturating_sub(a.len()), end.saturating_sub(a.len()));
        let (b_from, b_to) = piece(b, b_from, b_to);
        [&a[a_from..a_to], &b[b_from..b_to]]
    }

    /// Records that `planned` left at `now`.
    pub fn on_sent(&mut self, planned: Planned, now: u64) {
        let space = planned.len + planned.fin as usize;
        if self.pipe == 0 {
            // A new flight after a quiet spell: rates are measured from here.
            self.first_sent_at = now;
            self.delivered_at = now;
        }
        let (delivered, delivered_at, first_sent_at, app_limited) =
            (self.delivered, self.delivered_at, self.first_sent_at, self.app_limited_until.is_some());
        if planned.retransmission {
            if let Some(i) = self.find(planned.seq) {
                let sent = &mut self.segments[i];
                if sent.fate == Fate::Lost {
                    self.pipe += space;
                    if self.lost.front() == Some(&planned.seq) {
                        self.lost.pop_front();
                    }
                }
                *sent = Sent {
                    sent_at: now,
                    retransmitted: true,
                    fate: Fate::InFlight,
                    delivered,
                    delivered_at,
                    first_sent_at,
                    app_limited,
                    ..*sent
                };
                self.retransmitted_segments += 1;
            }
            return;
        }
        self.segments.push_back(Sent {
            seq: planned.seq,
            len: planned.len as u32,
            fin: planned.fin,
            sent_at: now,
            retransmitted: false,
            fate: Fate::InFlight,
            delivered,
            delivered_at,
            first_sent_at,
            app_limited,
        });
        self.nxt = seq::add(self.nxt, space);
        self.pipe += space;
        if planned.fin {
            self.fin = Fin::Sent;
        }
    }

    /// Processes an acceptable ACK (`una` ≤ `ack` ≤ `nxt`) and its SACK blocks.
    pub fn on_ack(&mut self, now: u64, ack: u32, sack: &[(u32, u32)], min_rtt: u64) -> AckOutcome {
        let mut outcome = AckOutcome::default();
        let mut newest: Option<Sent> = None;
        let highest_sacked_before = self.highest_sacked();

        // Cumulatively acknowledged segments leave the record; a partly acknowledged one shrinks.
        while let Some(front) = self.segments.front_mut() {
            if seq::at_or_before(front.end(), ack) {
                let sent = self.segments.pop_front().unwrap_or_else(|| unreachable!());
                if sent.fate == Fate::Sacked {
                    self.sacked -= 1;
                }
                self.settle(&sent, &mut outcome, &mut newest);
                if sent.fin {
                    outcome.fin_acked = true;
                }
            } else if seq::after(ack, front.seq) {
                let cut = seq::distance(front.seq, ack) as u32;
                if front.fate == Fate::InFlight {
                    self.pipe -= cut as usize;
                }
                if front.fate != Fate::Sacked {
                    outcome.delivered += cut as usize;
                    self.delivered += cut as u64;
                }
                let old = front.seq;
                front.seq = ack;
                front.len -= cut;
                if front.fate == Fate::Lost {
                    // Keep its place in the resend queue under its new start.
                    self.lost.iter_mut().filter(|s| **s == old).for_each(|s| *s = ack);
                }
                break;
            } else {
                break;
            }
        }
        let acked_space = seq::distance(self.una, ack);
        let acked_data = acked_space - outcome.fin_acked as usize;
        self.buffer.drain(..acked_data.min(self.buffer.len()));
        outcome.acked = acked_data;
        if acked_space > 0 {
            self.una = ack;
        }

        self.mark_sacked(sack, &mut outcome, &mut newest);

        if outcome.delivered > 0 {
            self.delivered_at = now;
        }
        if let Some(sent) = newest {
            outcome.rate = Some(self.rate_sample(&sent, min_rtt));
            let rtt = now.saturating_sub(sent.sent_at);
            // A retransmission's ACK may be for the original: trust it only if it is not too fast.
            if !sent.retransmitted || rtt >= min_rtt {
                if !sent.retransmitted {
                    outcome.rtt_sample = Some(rtt);
                }
                self.rack.on_delivered(&sent, rtt);
            }
            self.rack.note_reordering(&sent, highest_sacked_before);
        }
        self.shrink_if_idle();
        outcome
    }

    /// Delivered data from `sent`: count it and remember the newest for RTT, RACK and rate.
    fn settle(&mut self, sent: &Sent, outcome: &mut AckOutcome, newest: &mut Option<Sent>) {
        match sent.fate {
            Fate::InFlight => self.pipe -= sent.space(),
            Fate::Lost => {} // its place in `lost` is skipped when reached
            Fate::Sacked => return,
        }
        outcome.delivered += sent.space();
        self.delivered += sent.space() as u64;
        if newest.is_none_or(|n| sent.sent_at >= n.sent_at) {
            *newest = Some(*sent);
        }
    }

    /// Memory the buffers hold, used or not.
    #[cfg(test)]
    pub fn capacity_bytes(&self) -> usize {
        self.buffer.capacity() + self.segments.capacity() * std::mem::size_of::<Sent>()
    }

    /// Frees the buffers' memory (the connection sends nothing more but a bare ACK).
    pub fn release_buffers(&mut self) {
        self.buffer = VecDeque::new();
        self.segments = VecDeque::new();
        self.lost = VecDeque::new();
    }

    /// An idle connection holds no send buffer: memory the budget (`maxBufferedBytes`, which
    /// counts bytes held) does not see would otherwise stay with every connection that once
    /// sent a burst. Allocating again for the next write is cheap beside a round trip idle.
    fn shrink_if_idle(&mut self) {
        if self.buffer.is_empty() {
            self.buffer = VecDeque::new();
        }
        if self.segments.is_empty() && self.segments.capacity() > 64 {
            self.segments = VecDeque::new();
            self.lost = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 100;

    /// A sender with 1,000 bytes written, a wide window, our ISS 999 (data from 1000).
    fn sender() -> Sender {
        let mut s = Sender::new(999, MSS, 1 << 20);
        s.update_window(1, 1000, 1 << 20);
        assert_eq!(s.write(&(0..1000).map(|i| i as u8).collect::<Vec<_>>()), 1000);
        s
    }

    /// Sends everything `next` allows, at `now`.
    fn send_all(s: &mut Sender, now: u64, cwnd: usize) -> Vec<Planned> {
        let mut sent = Vec::new();
        while let Some(p) = s.next(cwnd) {
            s.on_sent(p, now);
            sent.push(p);
        }
        sent
    }

    #[test]
    fn sends_in_mss_pieces_within_cwnd_and_the_window() {
        let mut s = sender();
        let sent = send_all(&mut s, 10, 450);
        assert_eq!(sent.len(), 5, "pipe 400 < 450 lets a fifth go");
        assert_eq!((sent[4].seq, sent[4].len), (1400, 100));
        assert_eq!(s.pipe(), 500);
        let payload = s.payload(&sent[1]);
        assert_eq!(payload[0].len() + payload[1].len(), 100);
        assert_eq!(payload[0][0], 100);
        // The peer's window caps new data.
        s.update_window(2, 1000, 600);
        assert_eq!(send_all(&mut s, 10, 10_000).len(), 1);
    }

    #[test]
    fn ack_frees_the_buffer_and_samples_rtt_from_the_newest_segment() {
        let mut s = sender();
        send_all(&mut s, 10, 300);
        let outcome = s.on_ack(50, 1200, &[], 0);
        assert_eq!(
            (outcome.acked, outcome.delivered, outcome.rtt_sample, outcome.fin_acked, outcome.lost),
            (200, 200, Some(40), false, false)
        );
        // 200 bytes delivered over 40 µs since the flight began.
        let rate = outcome.rate.unwrap();
        assert_eq!((rate.rate, rate.app_limited, rate.prior_delivered), (Some(5_000_000.0), false, 0));
        assert_eq!((s.una, s.buffered(), s.pipe()), (1200, 800, 100));
        // A partial ACK inside a segment shrinks it.
        let outcome = s.on_ack(60, 1250, &[], 0);
        assert_eq!((outcome.acked, s.pipe()), (50, 50));
    }

    #[test]
    fn sack_and_rack_resend_only_the_hole() {
        let mut s = sender();
        // Sent at 10, 11, 12, ... one segment per microsecond.
        for t in 0..10 {
            let p = s.next(10_000).unwrap();
            s.on_sent(p, 10 + t);
        }
        // Segment 1100..1200 is lost; the peer SACKs the rest.
        let mut outcome = s.on_ack(1_000, 1100, &[(1200, 2000)], 0);
        assert_eq!(outcome.delivered, 900);
        assert_eq!(s.pipe(), 100);
        // RACK RTT 981 µs, reordering window 225 µs: segment 1100, sent at 11, is lost at 1,217.
        assert_eq!(s.detect_losses(1_000, 900, false, &mut outcome), Some(1_217));
        let next_check = s.detect_losses(1_300, 900, false, &mut outcome);
        assert!(outcome.lost && next_check.is_none());
        assert_eq!(s.pipe(), 0);
        let resend = s.next(10_000).unwrap();
        assert_eq!(resend, Planned { seq: 1100, len: 100, fin: false, retransmission: true });
        s.on_sent(resend, 1_301);
        assert_eq!(s.next(10_000), None, "nothing else is resent");
        let outcome = s.on_ack(2_000, 2000, &[], 0);
        assert_eq!((outcome.acked, outcome.rtt_sample), (900, None), "no RTT from a retransmission");
        assert_eq!(s.retransmitted_segments, 1);
        assert!(s.all_acked());
    }

    #[test]
    fn rack_waits_out_the_reordering_window_before_calling_a_loss() {
        let mut s = sender();
        for t in 0..3 {
            let p = s.next(10_000).unwrap();
            s.on_sent(p, 1_000 + t);
        }
        let mut outcome = s.on_ack(5_000, 1000, &[(1100, 1300)], 0);
        // min RTT 4 ms: a quarter of it to wait past the RACK RTT.
        let at = s.detect_losses(5_000, 4_000, false, &mut outcome).unwrap();
        assert!(!outcome.lost);
        assert_eq!(at, 1_000 + 3_998 + 1_000);
        assert_eq!(s.detect_losses(at, 4_000, false, &mut outcome), None);
        assert!(outcome.lost);
    }

    #[test]
    fn timeout_marks_all_but_sacked_lost_and_fin_rides_the_last_segment() {
        let mut s = Sender::new(0, MSS, 1 << 20);
        s.update_window(1, 1, 1 << 20);
        s.write(&[7; 250]);
        s.close();
        let sent = send_all(&mut s, 0, 10_000);
        assert_eq!(sent.len(), 3);
        assert!(sent[2].fin && sent[2].len == 50);
        assert_eq!(s.write(b"late"), 0, "nothing after FIN");
        s.on_ack(10, 1, &[(101, 201)], 0);
        s.on_timeout();
        assert_eq!(s.pipe(), 0);
        let resent: Vec<u32> = send_all(&mut s, 20, 10_000).iter().map(|p| p.seq).collect();
        assert_eq!(resent, vec![1, 201]);
        let outcome = s.on_ack(30, 252, &[], 0);
        assert!(outcome.fin_acked && s.all_acked());
        assert_eq!(outcome.acked, 250);
    }

    #[test]
    fn silly_window_avoidance_holds_a_short_segment_back() {
        let mut s = sender();
        s.update_window(1, 1000, 250);
        let sent = send_all(&mut s, 0, 10_000);
        assert_eq!(sent.len(), 2, "the 50 bytes of window left wait: more data is queued and an ACK will come");
        s.on_ack(5, 1200, &[], 0);
        s.update_window(2, 1200, 50);
        assert_eq!(s.next(10_000).map(|p| p.len), Some(50), "with nothing in flight, waiting would stall");
        // A short segment that is all there is goes at once.
        let mut s = Sender::new(999, MSS, 1 << 20);
        s.update_window(1, 1000, 1 << 20);
        s.write(&[1; 50]);
        assert_eq!(s.next(10_000).map(|p| p.len), Some(50));
    }

    #[test]
    fn rfc9293_3_10_7_4_window_updates_keep_their_order_when_wl1_and_wl2_are_zero() {
        // Our ISS is 2^32 - 1, so una is 0; the peer's segment at 0 acknowledges 0.
        let mut s = Sender::new(u32::MAX, MSS, 1 << 20);
        s.update_window(0, 0, 1000);
        s.update_window(u32::MAX - 5, 0, 50);
        assert_eq!(s.window, 1000, "an older segment does not set the window");
        s.update_window(0, 0, 2000);
        assert_eq!(s.window, 2000, "the same segment and ACK do");
    }

    #[test]
    fn rfc8985_6_2_a_sack_above_the_highest_is_no_reordering() {
        // Step 3: only a segment delivered below what was SACKed before it, and never resent,
        // shows reordering. Without it, recovery waits no reordering window (§6.2 step 4).
        let mut s = sender();
        for t in 0..5 {
            let p = s.next(10_000).unwrap();
            s.on_sent(p, 10 + t);
        }
        s.on_ack(1_000, 1000, &[(1100, 1200)], 0);
        let mut outcome = s.on_ack(1_010, 1000, &[(1100, 1200), (1300, 1400)], 0);
        // RACK: segment 1300, sent at 13, RTT 997 µs. Segments 1000 and 1200 are past it at once.
        assert_eq!(s.detect_losses(1_010, 4_000, true, &mut outcome), None);
        assert!(outcome.lost);
        assert_eq!(s.pipe(), 100, "only 1400 is still in flight");
    }

    #[test]
    fn rack_works_from_a_segment_sent_at_time_zero() {
        let mut s = sender();
        send_all(&mut s, 0, 300);
        let mut outcome = s.on_ack(1_000, 1000, &[(1100, 1300)], 0);
        assert_eq!(s.detect_losses(5_000, 1_000, false, &mut outcome), None);
        assert!(outcome.lost, "the hole at 1000, sent before the SACKed ones, is lost");
        assert_eq!(s.next(10_000).map(|p| (p.seq, p.retransmission)), Some((1000, true)));
    }

    #[test]
    fn a_flight_sent_while_the_host_had_nothing_more_is_app_limited_until_it_is_delivered() {
        let mut s = Sender::new(999, MSS, 1 << 20);
        s.update_window(1, 1000, 1 << 20);
        s.write(&[1; 100]);
        s.mark_app_limited(); // nothing delivered, nothing in flight
        send_all(&mut s, 10, 10_000);
        let outcome = s.on_ack(50, 1100, &[], 0);
        assert!(outcome.rate.unwrap().app_limited);
        s.write(&[2; 100]);
        send_all(&mut s, 60, 10_000);
        let outcome = s.on_ack(100, 1200, &[], 0);
        assert!(!outcome.rate.unwrap().app_limited, "the mark ends once its flight is delivered");
    }

    #[test]
    fn a_retransmission_samples_the_delivery_rate_from_when_it_was_resent() {
        // draft-cheng-iccrg-delivery-rate-estimation §3.2: every transmission, a
        // retransmission too, records the connection's delivered count, its time, the flight's
        // first send time and the app-limited mark; the ACK of it measures from those.
        let mut s = sender();
        s.mark_app_limited(); // the first flight is app-limited
        send_all(&mut s, 0, 300);
        let mut outcome = s.on_ack(1_000, 1000, &[(1100, 1300)], 0);
        assert_eq!(s.detect_losses(5_000, 1_000, false, &mut outcome), None);
        assert!(outcome.lost);
        let resend = s.next(10_000).unwrap();
        assert_eq!((resend.seq, resend.retransmission), (1000, true));
        s.on_sent(resend, 5_000);
        let outcome = s.on_ack(6_000, 1300, &[], 0);
        // 100 bytes delivered since the resend left (200 before), over the 1,000 µs since then.
        let rate = outcome.rate.unwrap();
        assert_eq!((rate.rate, rate.app_limited, rate.prior_delivered), (Some(100_000.0), false, 200));
    }

    /// draft-cheng-iccrg-delivery-rate-estimation §3.3: a sample needs a span of time (and
    /// one at least the minimum RTT): segments sent and acknowledged in the same instant give
    /// no rate, not an infinite one.
    #[test]
    fn a_delivery_measured_over_no_time_gives_no_rate() {
        let mut s = sender();
        send_all(&mut s, 0, 300);
        let outcome = s.on_ack(0, 1200, &[], 0);
        assert_eq!(outcome.delivered, 200);
        assert_eq!(outcome.rate.unwrap().rate, None);
    }

    /// draft-cheng-iccrg-delivery-rate-estimation §3.3 (Linux tcp_rate_check_app_limited):
    /// the app-limited mark lasts until the delivered count passes what had been delivered
    /// plus what was in flight when it was set; segments sent until then are app-limited.
    #[test]
    fn the_app_limited_mark_ends_once_delivery_passes_the_flight_it_was_set_over() {
        let mut s = sender();
        send_all(&mut s, 10, 300);
        s.on_ack(50, 1100, &[], 0);
        // 100 delivered, 200 in flight: the mark lasts until 300 have been delivered.
        s.mark_app_limited();
        assert_eq!(s.app_limited_until, Some(300));
        send_all(&mut s, 60, 500);
        let outcome = s.on_ack(100, 1300, &[], 0);
        assert_eq!(outcome.delivered, 200);
        assert_eq!(s.app_limited_until, Some(300), "delivered 300: not past it");
        assert!(!outcome.rate.unwrap().app_limited, "sent before the mark");
        let outcome = s.on_ack(150, 1400, &[], 0);
        assert!(outcome.rate.unwrap().app_limited, "sent while the mark stood");
        assert_eq!(s.app_limited_until, None, "delivered 400: past it");
        let sent = send_all(&mut s, 160, 600);
        assert_eq!((sent.first().map(|p| p.seq), sent.last().map(|p| p.seq)), (Some(1600), Some(1900)));
        let outcome = s.on_ack(200, 2000, &[], 0);
        assert!(!outcome.rate.unwrap().app_limited, "sent after the mark ended");
    }

    #[test]
    fn payload_is_read_across_the_ring_wrap() {
        let mut s = sender();
        let original: Vec<u8> = (0..1000).map(|i| i as u8).collect();
        send_all(&mut s, 0, 10_000);
        s.on_ack(1, 1500, &[], 0);
        let extra: Vec<u8> = (0..400).map(|i| (i % 200) as u8 + 1).collect();
        assert_eq!(s.write(&extra), 400);
        let planned = Planned { seq: 1900, len: 200, fin: false, retransmission: false };
        let [a, b] = s.payload(&planned);
        assert_eq!([a, b].concat(), [&original[900..], &extra[..100]].concat());
    }

    #[test]
    fn a_partly_acknowledged_lost_segment_is_still_resent() {
        let mut s = sender();
        send_all(&mut s, 0, 300);
        s.on_timeout();
        s.on_ack(10, 1050, &[], 0);
        let resend = s.next(10_000).unwrap();
        assert_eq!((resend.seq, resend.len, resend.retransmission), (1050, 50, true));
        // The other lost segments keep their places in the resend queue.
        s.on_sent(resend, 20);
        let rest: Vec<(u32, usize)> = send_all(&mut s, 20, 250).iter().map(|p| (p.seq, p.len)).collect();
        assert_eq!(rest, vec![(1100, 100), (1200, 100)]);
    }

    #[test]
    fn a_partial_ack_counts_what_it_delivers_once() {
        let mut s = sender();
        send_all(&mut s, 0, 300);
        // Into an in-flight segment: its first 50 bytes are delivered now.
        let outcome = s.on_ack(10, 1050, &[], 0);
        assert_eq!((outcome.acked, outcome.delivered, s.delivered, s.pipe()), (50, 50, 50, 250));
        // 1200..1300 is SACKed (delivered then); an ACK into it delivers only what was in flight below.
        let outcome = s.on_ack(20, 1050, &[(1200, 1300)], 0);
        assert_eq!((outcome.delivered, s.delivered), (100, 150));
        let outcome = s.on_ack(30, 1250, &[(1200, 1300)], 0);
        assert_eq!((outcome.acked, outcome.delivered, s.delivered, s.pipe()), (200, 150, 300, 0));
    }

    /// The scoreboard's count of SACKed segments, from the record itself.
    fn sacked_in_record(s: &Sender) -> usize {
        s.segments.iter().filter(|sent| sent.fate == Fate::Sacked).count()
    }

    #[test]
    fn the_sacked_count_follows_the_record_so_a_clean_ack_scans_nothing() {
        let mut s = sender();
        send_all(&mut s, 0, 500);
        s.on_ack(10, 1000, &[(1100, 1200), (1300, 1400)], 0);
        assert_eq!((s.sacked, sacked_in_record(&s), s.highest_sacked()), (2, 2, Some(1400)));
        // The cumulative ACK passes the first SACKed segment, then both.
        s.on_ack(20, 1200, &[(1300, 1400)], 0);
        assert_eq!((s.sacked, sacked_in_record(&s), s.highest_sacked()), (1, 1, Some(1400)));
        s.on_ack(30, 1500, &[], 0);
        assert_eq!((s.sacked, s.highest_sacked()), (0, None), "no SACKed segment left: no ACK scans the record");
    }

    #[test]
    fn a_duplicate_ack_does_not_move_the_delivered_time() {
        // draft-cheng-iccrg-delivery-rate-estimation §3.3: the delivered time is when data was
        // last delivered; an ACK that delivers nothing leaves it, so the next sample's ACK span
        // runs from the last delivery.
        let mut s = sender();
        send_all(&mut s, 0, 200);
        s.on_ack(100, 1100, &[], 0);
        s.on_ack(150, 1100, &[], 0); // delivers nothing
        let sent = send_all(&mut s, 160, 200);
        assert_eq!(sent.iter().map(|p| p.seq).collect::<Vec<_>>(), vec![1200]);
        let outcome = s.on_ack(400, 1300, &[], 0);
        // 200 bytes since 1200 left (100 before) over the ACK span 100..400 (longer than the send span 0..160).
        let rate = outcome.rate.unwrap();
        assert_eq!((rate.rate, rate.prior_delivered), (Some(200.0 * 1e6 / 300.0), 100));
    }

    #[test]
    fn window_limited_means_new_data_waits_for_room_in_the_peers_window() {
        let mut s = sender();
        assert!(!s.window_limited(), "a wide window");
        s.update_window(2, 1000, 300);
        send_all(&mut s, 0, 10_000);
        assert!(s.window_limited(), "700 bytes wait, the window is full");
        s.on_ack(10, 1100, &[], 0);
        assert!(!s.window_limited(), "room for exactly one full segment");
        s.update_window(3, 1100, 250);
        assert!(s.window_limited(), "50 bytes of room, less than a full segment");
        // Room for all that waits, though less than a segment: not limited.
        let mut s = Sender::new(999, MSS, 1 << 20);
        s.update_window(1, 1000, 60);
        s.write(&[1; 50]);
        assert!(!s.window_limited());
        s.write(&[2; 50]);
        assert!(s.window_limited(), "100 bytes wait, 60 fit");
        s.update_window(2, 1000, 100);
        send_all(&mut s, 20, 10_000);
        assert!(!s.window_limited(), "nothing waits");
    }

    #[test]
    fn an_idle_sender_frees_its_buffer_and_keeps_a_small_record() {
        // 200 KB written: nothing is freed while half still waits; all acknowledged, all is.
        let mut s = Sender::new(999, MSS, 1 << 20);
        s.update_window(1, 1000, 1 << 20);
        s.write(&[1; 200_000]);
        send_all(&mut s, 0, 1 << 20);
        s.on_ack(10, 1000 + 100_000, &[], 0);
        assert_eq!((s.buffered(), s.segments.len()), (100_000, 1000), "half still waits: nothing is freed");
        s.on_ack(20, 1000 + 200_000, &[], 0);
        assert_eq!((s.buffer.capacity(), s.segments.capacity()), (0, 0));
        // 1,000 bytes, partly acknowledged: kept; all acknowledged: freed, but the record of
        // up to 64 segments is kept.
        let mut s = sender();
        send_all(&mut s, 0, 1 << 20);
        s.on_ack(10, 1500, &[], 0);
        assert!(s.buffer.capacity() >= 500, "still in use");
        s.on_ack(20, 2000, &[], 0);
        assert_eq!(s.buffer.capacity(), 0);
        s.write(&[2; 6_400]);
        send_all(&mut s, 30, 1 << 20);
        assert_eq!(s.segments.capacity(), 64);
        s.on_ack(40, s.nxt, &[], 0);
        assert_eq!((s.buffer.capacity(), s.segments.capacity()), (0, 64));
    }

    #[test]
    fn has_work_means_new_data_or_a_lost_segment_waits() {
        let mut s = sender();
        send_all(&mut s, 0, 10_000);
        assert!(!s.has_work(), "all sent, none lost");
        s.on_timeout();
        assert!(s.has_work(), "no new data, but lost segments to resend");
        // The last lost segment resent leaves nothing to do.
        s.on_ack(10, 1900, &[], 0);
        let resend = s.next(10_000).unwrap();
        assert_eq!((resend.seq, resend.retransmission), (1900, true));
        s.on_sent(resend, 20);
        assert!(!s.has_work());
    }

    #[test]
    fn rfc6675_a_segment_sacked_after_it_was_judged_lost_is_not_resent() {
        let mut s = sender();
        send_all(&mut s, 0, 300);
        s.on_timeout();
        s.on_ack(10, 1000, &[(1100, 1200)], 0);
        for expected in [1000, 1200] {
            let resend = s.next(10_000).unwrap();
            assert_eq!((resend.seq, resend.retransmission), (expected, true));
            s.on_sent(resend, 20);
        }
        assert_eq!(s.next(10_000).map(|p| (p.seq, p.retransmission)), Some((1300, false)), "then new data");
    }

    #[test]
    fn rfc9293_3_8_6_2_1_a_short_segment_goes_with_half_the_largest_window_or_all_that_waits() {
        // Sender-side silly window avoidance, MSS 1000, the peer's largest window 1000.
        let mut s = Sender::new(999, 1000, 1 << 20);
        s.update_window(1, 1000, 1000);
        s.write(&[1; 2000]);
        let first = s.next(10_000).unwrap();
        s.on_sent(first, 0);
        s.on_ack(10, 1500, &[], 0);
        // 500 bytes in flight, window 1000 from una: room 500, half the largest window.
        s.update_window(2, 1500, 1000);
        assert_eq!(s.next(10_000).map(|p| (p.seq, p.len)), Some((2000, 500)));
        // With data in flight, a short segment holding all that waits goes too.
        let mut s = Sender::new(999, MSS, 1 << 20);
        s.update_window(1, 1000, 1000);
        s.update_window(2, 1000, 300);
        s.write(&[1; 150]);
        let sent: Vec<(u32, usize)> = send_all(&mut s, 0, 10_000).iter().map(|p| (p.seq, p.len)).collect();
        assert_eq!(sent, vec![(1000, 100), (1100, 50)]);
    }

    #[test]
    fn rfc6298_3_a_segment_sent_once_gives_an_rtt_sample_however_short() {
        // Karn's rule distrusts only retransmitted segments: a first transmission's RTT is
        // sampled even below the minimum seen so far.
        let mut s = sender();
        send_all(&mut s, 10, 300);
        let outcome = s.on_ack(50, 1200, &[], 1_000);
        assert_eq!(outcome.rtt_sample, Some(40));
    }
}
