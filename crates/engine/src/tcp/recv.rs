//! The receiving half of a connection: what the peer sends us.
//!
//! In-order data goes straight to the host; the engine keeps no receive buffer. Data past
//! a hole waits here until the hole fills and is reported to the sender as SACK blocks.
//! The window we advertise is the room the host has: a limit less what it holds unread.
//! The limit starts small and grows with use (as Linux's receive-buffer autotuning), so
//! an idle connection costs nothing and a fast one is never held back by its window.
//! References: RFC 9293 §3.8.6 (window management), RFC 2018 (SACK), RFC 7323 §2.

use super::seq;

/// The first window: what Linux starts with.
pub const INITIAL_LIMIT: usize = 64 * 1024;
const MAX_SACK_BLOCKS: usize = super::segment::MAX_SACK_BLOCKS;

#[derive(Debug)]
pub struct Receiver {
    /// The next sequence number we expect.
    pub nxt: u32,
    /// Where the peer's FIN sits, once seen (it may wait behind a hole).
    fin_at: Option<u32>,
    pub fin_received: bool,
    /// Segments past a hole, in sequence order, not overlapping.
    out_of_order: Vec<(u32, Vec<u8>)>,
    held: usize,
    /// SACK blocks to report, the most recently changed first (RFC 2018 §4).
    sack: Vec<(u32, u32)>,
    /// Bytes the host may hold unread; this is the window.
    limit: usize,
    max_limit: usize,
    /// Delivered to the host and not consumed yet.
    unconsumed: usize,
    /// The right edge last advertised. It never moves left (RFC 9293 §3.8.6.2.2).
    edge: u32,
    pub window_shift: u8,
    /// The host stopped reading: data is dropped on arrival and the window stays open.
    pub discard: bool,
    /// The server is short of memory: the window does not grow.
    pub frozen: bool,
    tune: Autotune,
}

/// Bytes the host consumed over the current measuring interval (about one RTT).
#[derive(Debug, Default)]
struct Autotune {
    /// When the current interval began (`None` before the host first consumed).
    since: Option<u64>,
    consumed: usize,
    /// The most consumed in one interval so far.
    best: usize,
    /// The round trip as the receiver sees it (a pure receiver may have no other; see
    /// `Receiver::note_window_sent`), and the measurement under way: (sequence, time).
    rtt: Option<u64>,
    probe: Option<(u32, u64)>,
}

/// What one arriving segment did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// Bytes handed to the host now (this segment's and any it released from behind a hole).
    pub delivered: usize,
    /// The segment filled or created a hole: the sender wants to hear at once.
    pub out_of_order: bool,
    /// Nothing new: all of it was received before, or it lies outside the window.
    pub unacceptable: bool,
    /// The peer's FIN is now in order.
    pub fin: bool,
}

impl Receiver {
    /// `irs` is the peer's initial sequence number (its SYN's).
    pub fn new(irs: u32, max_limit: usize, window_shift: u8) -> Self {
        let nxt = irs.wrapping_add(1);
        Receiver {
            nxt,
            fin_at: None,
            fin_received: false,
            out_of_order: Vec::new(),
            held: 0,
            sack: Vec::new(),
            limit: INITIAL_LIMIT.min(max_limit),
            max_limit,
            unconsumed: 0,
            edge: nxt,
            window_shift,
            discard: false,
            frozen: false,
            tune: Autotune::default(),
        }
    }

    /// Takes a segment's data and FIN, arriving at `now`; in-order bytes go to `deliver` at once.
    pub fn receive(&mut self, now: u64, seq: u32, payload: &[u8], fin: bool, deliver: &mut dyn FnMut(&[u8])) -> Arrival {
        let mut arrival = Arrival::default();
        let edge = self.right_edge();
        let end = seq::add(seq, payload.len());
        // Trim what we already have and what lies past the window.
        let skip = seq::distance(seq, self.nxt).min(payload.len());
        let keep = seq::distance(seq::add(seq, skip), edge).min(payload.len() - skip);
        let data = &payload[skip..skip + keep];
        let start = seq::add(seq, skip);
        let fin = fin && skip + keep == payload.len() && !self.fin_received;
        if data.is_empty() && !fin {
            arrival.unacceptable = !payload.is_empty() || seq::before(end, self.nxt);
            return arrival;
        }
        if start == self.nxt {
            self.deliver(data, deliver, &mut arrival);
            let had_holes = !self.out_of_order.is_empty();
            self.release(deliver, &mut arrival);
            arrival.out_of_order = had_holes;
        } else {
            if !data.is_empty() {
                self.hold(start, data);
            }
            arrival.out_of_order = true;
        }
        if fin {
            self.fin_at = Some(seq::add(start, data.len()));
        }
        self.measure_rtt(now);
        if self.fin_at == Some(self.nxt) && !self.fin_received {
            self.fin_received = true;
            self.nxt = self.nxt.wrapping_add(1);
            arrival.fin = true;
        }
        arrival
    }

    /// The host consumed `bytes` of what it was given. `srtt` is the connection's own
    /// estimate, used until the receiver has measured one.
    pub fn consumed(&mut self, now: u64, srtt: u64, mss: usize, bytes: usize) {
        self.unconsumed = self.unconsumed.saturating_sub(bytes);
        let rtt = self.tune.rtt.unwrap_or(srtt);
        self.autotune(now, rtt, mss, bytes);
    }

    /// A segment advertising our window left at `now`. Starts a receiver-side RTT measure
    /// (as Linux's tcp_rcv_rtt_measure): the time until a window's worth of data has arrived
    /// is at least a round trip, and about one when the sender is held by our window.
    pub fn note_window_sent(&mut self, now: u64) {
        if self.tune.probe.is_none() {
            self.tune.probe = Some((self.edge, now));
        }
    }

    fn measure_rtt(&mut self, now: u64) {
        let Some((seq, since)) = self.tune.probe else { return };
        if seq::before(self.nxt, seq) {
            return;
        }
        self.tune.probe = None;
        let sample = now.saturating_sub(since).max(1);
        // Favour the smaller: a window takes longer than a round trip when the sender is slow.
        let tune = &mut self.tune;
        tune.rtt = Some(match tune.rtt {
            Some(rtt) if sample >= rtt => rtt + (sample - rtt) / 8,
            _ => sample,
        });
    }

    /// The window field for an outgoing segment; remembers the edge it advertises.
    pub fn window_field(&mut self) -> u16 {
        let edge = self.right_edge();
        let field = (seq::distance(self.nxt, edge) >> self.window_shift).min(u16::MAX as usize);
        self.edge = seq::latest(self.edge, seq::add(self.nxt, field << self.window_shift));
        field as u16
    }

    /// The window field for our SYN or SYN-ACK, which is never scaled (RFC 7323 §2.2).
    pub fn syn_window_field(&mut self) -> u16 {
        let field = self.limit.min(u16::MAX as usize);
        self.edge = seq::add(self.nxt, field);
        field as u16
    }

    /// The window has opened enough since we last said so that the peer should hear
    /// (RFC 9293 §3.8.6.2.2: by at least a segment or half the buffer, whichever is less).
    pub fn window_update_due(&self, mss: usize) -> bool {
        let advertised = seq::distance(self.nxt, self.edge);
        let now = seq::distance(self.nxt, self.right_edge());
        now >= advertised + (self.limit / 2).min(2 * mss).max(1)
    }

    /// The current SACK blocks, most recent first.
    pub fn sack_blocks(&self) -> &[(u32, u32)] {
        &self.sack
    }

    /// Bytes the engine holds for this connection (data waiting behind a hole).
    pub fn held(&self) -> usize {
        self.held
    }

    /// Bytes the host holds unread.
    pub fn unconsumed(&self) -> usize {
        self.unconsumed
    }

    #[cfg(test)]
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Where the window ends: what we advertised, or further if the host made room since.
    pub fn right_edge(&self) -> u32 {
        let room = self.limit.saturating_sub(self.unconsumed);
        seq::latest(self.edge, seq::add(self.nxt, room))
    }

    fn deliver(&mut self, data: &[u8], deliver: &mut dyn FnMut(&[u8]), arrival: &mut Arrival) {
        if data.is_empty() {
            return;
        }
        if !self.discard {
            deliver(data);
            self.unconsumed += data.len();
        }
        self.nxt = seq::add(self.nxt, data.len());
        arrival.delivered += data.len();
    }

    /// Hands over what waited behind the hole that just filled.
    fn release(&mut self, deliver: &mut dyn FnMut(&[u8]), arrival: &mut Arrival) {
        let mut taken = 0;
        for i in 0..self.out_of_order.len() {
            let (start, ref data) = self.out_of_order[i];
            if seq::after(start, self.nxt) {
                break;
            }
            let skip = seq::distance(start, self.nxt);
            if skip < data.len() {
                let rest = std::mem::take(&mut self.out_of_order[i].1);
                self.deliver(&rest[skip..], deliver, arrival);
                self.held -= rest.len();
            } else {
                self.held -= data.len();
            }
            taken += 1;
        }
        self.out_of_order.drain(..taken);
        let nxt = self.nxt;
        self.sack.retain(|&(_, end)| seq::after(end, nxt));
    }

    /// Keeps data that arrived ahead of a hole, without overlaps, and makes its block the
    /// first SACK block.
    fn hold(&mut self, start: u32, data: &[u8]) {
        let offset = |seq: u32, nxt: u32| seq::distance(nxt, seq);
        let (from, to) = (offset(start, self.nxt), offset(start, self.nxt) + data.len());
        let mut pos = from;
        let mut i = self.out_of_order.partition_point(|(s, d)| offset(*s, self.nxt) + d.len() <= from);
        while pos < to {
            if let Some((s, d)) = self.out_of_order.get(i) {
                let (s, e) = (offset(*s, self.nxt), offset(*s, self.nxt) + d.len());
                if s <= pos {
                    pos = pos.max(e);
                    i += 1;
                    continue;
                }
                let gap_end = to.min(s);
                self.out_of_order.insert(i, (seq::add(self.nxt, pos), data[pos - from..gap_end - from].to_vec()));
                self.held += gap_end - pos;
                pos = gap_end;
                i += 1;
            } else {
                self.out_of_order.push((seq::add(self.nxt, pos), data[pos - from..to - from].to_vec()));
                self.held += to - pos;
                pos = to;
            }
        }
        self.note_sack_block(start);
    }

    /// Makes the contiguous run of held data around `start` the first SACK block.
    fn note_sack_block(&mut self, start: u32) {
        let ooo = &self.out_of_order;
        let end_of = |i: usize| seq::add(ooo[i].0, ooo[i].1.len());
        // The entries are in order and do not overlap: walk out from the one at `start`.
        let mut first = ooo.partition_point(|(s, d)| seq::at_or_before(seq::add(*s, d.len()), start));
        if first == ooo.len() {
            return; // nothing held there (callers hold data first; an empty range has no block)
        }
        let mut last = first;
        while first > 0 && end_of(first - 1) == ooo[first].0 {
            first -= 1;
        }
        while last + 1 < ooo.len() && end_of(last) == ooo[last + 1].0 {
            last += 1;
        }
        let (block_start, block_end) = (ooo[first].0, end_of(last));
        self.sack.retain(|&(s, e)| seq::before(e, block_start) || seq::after(s, block_end));
        self.sack.insert(0, (block_start, block_end));
        self.sack.truncate(MAX_SACK_BLOCKS);
    }

    /// Grows the window when the host consumed more than it could hold per RTT (it is
    /// what limits the sender), to twice that, or four times while the rate is climbing.
    fn autotune(&mut self, now: u64, rtt: u64, mss: usize, bytes: usize) {
        let tune = &mut self.tune;
        if rtt == 0 {
            return;
        }
        let since = *tune.since.get_or_insert(now);
        tune.consumed += bytes;
        if now.saturating_sub(since) < rtt {
            return;
        }
        let per_rtt = tune.consumed;
        let growing = per_rtt > tune.best;
        tune.best = tune.best.max(per_rtt);
        tune.since = Some(now);
        tune.consumed = 0;
        let want = if growing { 4 * per_rtt } else { 2 * per_rtt } + 16 * mss;
        if want > self.limit && !self.frozen {
            self.limit = want.min(self.max_limit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A receiver for a peer whose first data byte is sequence 1000, with a 1 MiB maximum.
    fn receiver() -> Receiver {
        Receiver::new(999, 1 << 20, 7)
    }

    fn receive(r: &mut Receiver, seq: u32, data: &[u8], fin: bool) -> (Arrival, Vec<u8>) {
        let mut got = Vec::new();
        let arrival = r.receive(0, seq, data, fin, &mut |bytes| got.extend_from_slice(bytes));
        (arrival, got)
    }

    #[test]
    fn in_order_data_goes_straight_through_and_counts_against_the_window() {
        let mut r = receiver();
        assert_eq!(r.window_field(), (INITIAL_LIMIT >> 7) as u16);
        let (arrival, got) = receive(&mut r, 1000, b"hello", false);
        assert_eq!((arrival.delivered, got.as_slice()), (5, &b"hello"[..]));
        assert_eq!((r.nxt, r.unconsumed(), r.held()), (1005, 5, 0));
        // The edge does not move left while the host holds the five bytes.
        assert_eq!(seq::distance(r.nxt, r.right_edge()), INITIAL_LIMIT - 5);
        r.consumed(1, 0, 1000, 5);
        assert_eq!(r.unconsumed(), 0);
    }

    #[test]
    fn a_hole_holds_data_reports_sack_blocks_and_releases_in_order() {
        let mut r = receiver();
        let (a, got) = receive(&mut r, 1010, b"BBBBB", false);
        assert!(a.out_of_order && got.is_empty());
        receive(&mut r, 1020, b"DDDDD", false);
        assert_eq!(r.sack_blocks(), &[(1020, 1025), (1010, 1015)]);
        receive(&mut r, 1015, b"CCCCC", false); // joins the two blocks
        assert_eq!(r.sack_blocks(), &[(1010, 1025)]);
        assert_eq!(r.held(), 15);
        // Overlapping retransmissions are trimmed, not stored twice.
        receive(&mut r, 1008, b"xxBBBBBCC", false);
        assert_eq!(r.held(), 17);
        let (a, got) = receive(&mut r, 1000, b"AAAAAAAAzz", false);
        assert_eq!(got, b"AAAAAAAAzzBBBBBCCCCCDDDDD");
        assert!(a.out_of_order, "filling a hole is news for the sender");
        assert_eq!((r.nxt, r.held(), r.sack_blocks().len()), (1025, 0, 0));
        assert!(r.out_of_order.is_empty());
    }

    #[test]
    fn a_sack_block_covers_the_whole_run_however_long() {
        let mut r = receiver();
        // Segment 1000..1010 is lost; ten more arrive behind it, one by one.
        for i in 1..=10u32 {
            receive(&mut r, 1000 + 10 * i, &[7; 10], false);
            assert_eq!(r.sack_blocks(), &[(1010, 1010 + 10 * i)], "after {i} segments");
        }
        // A second hole, and a run behind it that grows leftward too.
        receive(&mut r, 1140, &[7; 10], false);
        receive(&mut r, 1130, &[7; 10], false);
        receive(&mut r, 1120, &[7; 10], false);
        assert_eq!(r.sack_blocks(), &[(1120, 1150), (1010, 1110)]);
    }

    #[test]
    fn duplicates_and_data_past_the_window_are_unacceptable() {
        let mut r = receiver();
        receive(&mut r, 1000, b"abc", false);
        let (a, got) = receive(&mut r, 1000, b"abc", false);
        assert!(a.unacceptable && got.is_empty());
        r.window_field();
        let beyond = seq::add(r.nxt, INITIAL_LIMIT + 10);
        assert!(receive(&mut r, beyond, b"zzz", false).0.unacceptable);
        // A segment straddling the edge is cut at it.
        let edge = r.right_edge();
        let straddling = vec![7u8; 20];
        receive(&mut r, seq::add(edge, 0usize.wrapping_sub(10)), &straddling, true);
        assert_eq!(r.held(), 10);
        assert_eq!(r.fin_at, None, "a FIN cut off with its data is not seen");
    }

    #[test]
    fn fin_behind_a_hole_counts_once_the_hole_fills() {
        let mut r = receiver();
        let (a, _) = receive(&mut r, 1003, b"de", true);
        assert!(!a.fin && !r.fin_received);
        let (a, got) = receive(&mut r, 1000, b"abc", false);
        assert!(a.fin && r.fin_received);
        assert_eq!((got.as_slice(), r.nxt), (&b"abcde"[..], 1006));
        // A retransmitted FIN is a duplicate.
        assert!(receive(&mut r, 1005, b"", true).0.unacceptable);
    }

    #[test]
    fn a_bare_fin_behind_a_hole_leaves_the_sack_blocks_alone() {
        let mut r = receiver();
        receive(&mut r, 1010, b"later", false);
        receive(&mut r, 1015, b"", true);
        assert_eq!(r.sack_blocks(), &[(1010, 1015)]);
        let (a, got) = receive(&mut r, 1000, b"0123456789", false);
        assert!(a.fin);
        assert_eq!(got, b"0123456789later");
    }

    #[test]
    fn discarding_keeps_the_window_open() {
        let mut r = receiver();
        r.discard = true;
        let (a, got) = receive(&mut r, 1000, &[1; 4000], false);
        assert_eq!((a.delivered, got.len(), r.unconsumed()), (4000, 0, 0));
    }

    #[test]
    fn a_pure_receiver_measures_the_round_trip_from_the_data_and_grows_its_window() {
        let mut r = receiver();
        // No RTT from the handshake. We advertise 64 KiB at t=0; the sender fills it by 40 ms.
        r.window_field();
        r.note_window_sent(0);
        let mut now = 0;
        let mut seq = 1000u32;
        for _ in 0..48 {
            now += 850;
            let mut got = 0;
            r.receive(now, seq, &[1; 1380], false, &mut |b| got += b.len());
            seq = seq.wrapping_add(1380);
            r.consumed(now, 0, 1380, got);
        }
        assert!(r.tune.rtt.is_some_and(|rtt| (39_000..=41_000).contains(&rtt)), "measured {:?} µs", r.tune.rtt);
        // Consuming faster than a window per round trip now grows the window.
        for _ in 0..200 {
            now += 1_000;
            r.consumed(now, 0, 1380, 10_000);
        }
        assert!(r.limit() > INITIAL_LIMIT, "limit {}", r.limit());
    }

    /// Advertises the window at `sent`, and the peer fills it by `filled`; the host consumes it.
    fn fill_the_window(r: &mut Receiver, sent: u64, filled: u64) {
        r.window_field();
        r.note_window_sent(sent);
        let data = vec![1; seq::distance(r.nxt, r.edge)];
        let half = data.len() / 2;
        let mut got = 0;
        r.receive(filled - 1, r.nxt, &data[..half], false, &mut |b| got += b.len());
        assert!(r.tune.probe.is_some(), "half the window is no round trip yet");
        r.receive(filled, r.nxt, &data[half..], false, &mut |b| got += b.len());
        assert!(r.tune.probe.is_none(), "the window's last byte ends the measure");
        r.consumed(filled, 0, 1380, got);
    }

    #[test]
    fn the_receivers_round_trip_takes_a_smaller_sample_at_once_and_a_larger_one_by_an_eighth() {
        let mut r = receiver();
        fill_the_window(&mut r, 0, 100_000);
        assert_eq!(r.tune.rtt, Some(100_000));
        fill_the_window(&mut r, 100_000, 260_000);
        assert_eq!(r.tune.rtt, Some(100_000 + 60_000 / 8));
        fill_the_window(&mut r, 260_000, 310_000);
        assert_eq!(r.tune.rtt, Some(50_000));
        fill_the_window(&mut r, 310_000, 310_001);
        assert_eq!(r.tune.rtt, Some(1));
    }

    #[test]
    fn an_in_order_segment_that_covers_held_data_releases_it_without_delivering_it_twice() {
        let mut r = receiver();
        receive(&mut r, 1100, &[2; 100], false);
        receive(&mut r, 1300, &[4; 100], false);
        assert_eq!(r.held(), 200);
        // 1000..1250 covers the first held segment whole; the second waits still.
        let data: Vec<u8> = [[1; 100], [2; 100]].concat().into_iter().chain([3; 50]).collect();
        let (arrival, got) = receive(&mut r, 1000, &data, false);
        assert_eq!((arrival.delivered, got, r.held()), (250, data, 100));
        // 1250..1350 reaches into the second: its last 50 bytes come from what was held.
        let (arrival, got) = receive(&mut r, 1250, &[3; 100], false);
        assert_eq!((arrival.delivered, got.len(), r.held(), r.nxt), (150, 150, 0, 1400));
        assert_eq!(&got[100..], &[4; 50]);
    }

    #[test]
    fn data_overlapping_a_one_byte_held_segment_is_held_once() {
        let mut r = receiver();
        receive(&mut r, 1100, &[2], false);
        receive(&mut r, 1100, &[2; 100], false);
        assert_eq!(r.held(), 100, "the byte at 1100 is held once");
        let (arrival, got) = receive(&mut r, 1000, &[1; 100], false);
        assert_eq!((arrival.delivered, got.len(), r.held(), r.nxt), (200, 200, 0, 1200));
    }

    /// Whether a window update is due once the host consumed `bytes` of `held` received after
    /// the last advertisement (all at one instant: the window's limit stays).
    fn update_due_after_consuming(mut r: Receiver, held: usize, bytes: usize) -> bool {
        r.window_field();
        let limit = r.limit();
        let mut got = 0;
        r.receive(0, r.nxt, &vec![1; held], false, &mut |b| got += b.len());
        assert_eq!(got, held);
        r.consumed(0, 1_000_000, 1380, bytes);
        assert_eq!(r.limit(), limit);
        r.window_update_due(1380)
    }

    #[test]
    fn rfc9293_3_8_6_2_2_a_window_update_is_due_once_it_opens_by_two_segments_or_half_the_buffer() {
        // A 64 KiB window: two segments (2,760 bytes) is the lesser.
        assert!(!update_due_after_consuming(receiver(), 10_000, 2_759));
        assert!(update_due_after_consuming(receiver(), 10_000, 2_760));
        // A 4,000-byte window: half of it is.
        let small = || Receiver::new(999, 4_000, 0);
        assert!(!update_due_after_consuming(small(), 3_000, 1_999));
        assert!(update_due_after_consuming(small(), 3_000, 2_000));
    }

    #[test]
    fn an_autotuning_interval_may_start_at_time_zero() {
        let mut r = receiver();
        r.consumed(0, 10_000, 1380, 60 * 1024);
        r.consumed(10_000, 10_000, 1380, 60 * 1024);
        assert!(r.limit() > 4 * 60 * 1024, "120 KiB in one round trip, counted from 0: limit {}", r.limit());
    }

    #[test]
    fn the_window_grows_when_the_host_keeps_up_and_not_past_the_maximum() {
        let mut r = receiver();
        let rtt = 10_000;
        // The host consumes 60 KiB in each 10 ms: the limit rises well above that.
        let mut now = 1;
        for _ in 0..3 {
            r.consumed(now, rtt, 1380, 60 * 1024);
            now += rtt;
        }
        r.consumed(now, rtt, 1380, 60 * 1024);
        assert!(r.limit() >= 2 * 60 * 1024, "limit {}", r.limit());
        for _ in 0..200 {
            now += rtt;
            r.consumed(now, rtt, 1380, 4 << 20);
        }
        assert_eq!(r.limit(), 1 << 20);
        // Scaled by 7, the field rounds down and the edge remembers what was said.
        let field = r.window_field();
        assert_eq!(field as usize, (1 << 20) >> 7);
        assert!(!r.window_update_due(1380));
    }

    /// Receive-buffer autotuning (as Linux's tcp_rcv_space_adjust): once a round trip has
    /// passed, the limit grows to twice what the host read in it, four times while that
    /// climbs, plus sixteen segments; it never shrinks, never passes the maximum, and holds
    /// under memory pressure.
    #[test]
    fn the_window_limit_grows_to_twice_what_the_host_reads_per_rtt_plus_sixteen_segments() {
        let mut r = receiver();
        let round = |r: &mut Receiver, now: u64, bytes: usize| {
            r.consumed(now, 10_000, 1000, bytes);
            r.limit()
        };
        assert_eq!(round(&mut r, 0, 50_000), INITIAL_LIMIT, "a round trip has not passed");
        assert_eq!(round(&mut r, 10_000, 10_000), 4 * 60_000 + 16_000, "60 kB in the round, more than before");
        assert_eq!(round(&mut r, 20_000, 60_000), 4 * 60_000 + 16_000, "as much again: 2 x 60 kB + 16 segments is less");
        r.frozen = true;
        assert_eq!(round(&mut r, 30_000, 200_000), 4 * 60_000 + 16_000, "memory pressure: no growth");
        r.frozen = false;
        assert_eq!(round(&mut r, 40_000, 200_000), 2 * 200_000 + 16_000, "as much as the round before: twice");
        assert_eq!(round(&mut r, 50_000, 600_000), 1 << 20, "at most the maximum");
    }
}
