//! The SACK scoreboard (RFC 2018, RFC 6675): each segment in flight is in flight, SACKed
//! or lost; lost ones wait in `lost`, by sequence number, to be sent again. A retransmission
//! timeout marks everything not SACKed lost (RFC 6298 §5, RFC 6675 §5.1).

use super::{AckOutcome, Fate, Sender, Sent};
use crate::tcp::seq;

impl Sender {
    pub(super) fn highest_sacked(&self) -> Option<u32> {
        if self.sacked == 0 {
            return None;
        }
        self.segments.iter().rev().find(|s| s.fate == Fate::Sacked).map(|s| s.end())
    }

    /// Index of the segment starting at `seq_no`.
    pub(super) fn find(&self, seq_no: u32) -> Option<usize> {
        let i = self.segments.partition_point(|s| seq::before(s.seq, seq_no));
        (self.segments.get(i)?.seq == seq_no).then_some(i)
    }

    pub(super) fn insert_lost(&mut self, seq_no: u32) {
        let i = self.lost.partition_point(|&s| seq::before(s, seq_no));
        if self.lost.get(i) != Some(&seq_no) {
            self.lost.insert(i, seq_no);
        }
    }

    /// The retransmission timer fired: everything not SACKed is presumed lost.
    pub fn on_timeout(&mut self) {
        self.lost.clear();
        for sent in self.segments.iter_mut() {
            if sent.fate != Fate::Sacked {
                sent.fate = Fate::Lost;
                self.lost.push_back(sent.seq);
            }
        }
        self.pipe = 0;
    }

    /// Marks the segments the SACK blocks cover; blocks below `una` or past `nxt` are ignored.
    pub(super) fn mark_sacked(&mut self, sack: &[(u32, u32)], outcome: &mut AckOutcome, newest: &mut Option<Sent>) {
        for &(start, end) in sack {
            if !seq::after(start, self.una) || seq::after(end, self.nxt) || !seq::before(start, end) {
                continue; // stale or bogus (RFC 2018 §4 lets us ignore it)
            }
            let mut i = self.segments.partition_point(|s| seq::before(s.seq, start));
            while let Some(sent) = self.segments.get(i).copied() {
                if seq::after(sent.end(), end) {
                    break;
                }
                if sent.fate != Fate::Sacked {
                    self.segments[i].fate = Fate::Sacked;
                    self.sacked += 1;
                    self.settle(&sent, outcome, newest);
                }
                i += 1;
            }
        }
    }
}
