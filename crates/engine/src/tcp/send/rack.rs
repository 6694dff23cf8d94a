//! RACK (RFC 8985 §6): the most recently sent segment known to have arrived marks every
//! segment sent before it, and not delivered within a reordering window, as lost.

use super::{AckOutcome, Fate, Sender, Sent};
use crate::tcp::seq;

/// RACK's state: the most recently sent segment known to have arrived.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Rack {
    /// When it was sent; `None` until a segment is known to have arrived.
    xmit_at: Option<u64>,
    end: u32,
    rtt: u64,
    reordering_seen: bool,
}

impl Rack {
    /// `sent` was delivered `rtt` after it left: it becomes RACK's reference if it left
    /// last (RFC 8985 §6.2 step 2).
    pub(super) fn on_delivered(&mut self, sent: &Sent, rtt: u64) {
        let later = self.xmit_at.is_none_or(|at| sent.sent_at > at || (sent.sent_at == at && seq::after(sent.end(), self.end)));
        if later {
            *self = Rack { xmit_at: Some(sent.sent_at), end: sent.end(), rtt, ..*self };
        }
    }

    /// A segment never sent again, delivered below what was already SACKed, arrived out of
    /// order (RFC 8985 §6.2 step 3).
    pub(super) fn note_reordering(&mut self, sent: &Sent, highest_sacked_before: Option<u32>) {
        if let Some(highest) = highest_sacked_before {
            if !sent.retransmitted && seq::before(sent.end(), highest) {
                self.reordering_seen = true;
            }
        }
    }
}

impl Sender {
    /// Marks segments lost by RACK's rule and returns when the next one would be, if any
    /// is still within its reordering window.
    pub fn detect_losses(&mut self, now: u64, min_rtt: u64, in_recovery: bool, outcome: &mut AckOutcome) -> Option<u64> {
        let rack_xmit_at = self.rack.xmit_at?;
        // RFC 8985 §6.2: no extra wait in recovery until reordering has been seen.
        let reorder_window = if in_recovery && !self.rack.reordering_seen { 0 } else { min_rtt / 4 };
        let mut next_check: Option<u64> = None;
        for i in 0..self.segments.len() {
            let sent = self.segments[i];
            if !seq::before(sent.seq, self.rack.end) {
                break;
            }
            if sent.fate != Fate::InFlight {
                continue;
            }
            let sent_earlier = sent.sent_at < rack_xmit_at || (sent.sent_at == rack_xmit_at && seq::before(sent.end(), self.rack.end));
            if !sent_earlier {
                continue;
            }
            let deadline = sent.sent_at + self.rack.rtt + reorder_window;
            if now >= deadline {
                self.segments[i].fate = Fate::Lost;
                self.pipe -= sent.space();
                self.insert_lost(sent.seq);
                outcome.lost = true;
            } else {
                next_check = Some(next_check.map_or(deadline, |at: u64| at.min(deadline)));
            }
        }
        next_check
    }
}
