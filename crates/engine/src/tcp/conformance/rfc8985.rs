//! RACK-TLP (RFC 8985): losses judged by time (a segment is lost once one sent after it
//! has arrived and a reordering window has passed, §6.2), and the tail-loss probe that
//! finds a lost tail without waiting for the RTO (§7).

use super::rfc9293::established;

#[test]
fn rfc8985_7_2_tail_loss_probe_after_two_rtts_sends_the_last_segment() {
    established(
        "
        20    send 3000
        20    > . 1:1001(1000) ack 1
        20    > . 1001:2001(1000) ack 1
        20    > P. 2001:3001(1000) ack 1
        # PTO = 2 SRTT with more than one segment out.
        40    > P. 2001:3001(1000) ack 1
        # Its SACK, an RTT later, shows the first two lost (sent 40 ms before): sent again at once.
        60    < . 1:1(0) ack 1 win 1000 <sack 2001:3001>
        60    > . 1:1001(1000) ack 1
        60    > . 1001:2001(1000) ack 1
        70    < . 1:1(0) ack 3001 win 1000
        ",
    );
}

#[test]
fn rfc8985_7_2_tail_loss_probe_waits_for_a_delayed_ack_on_one_segment() {
    // PTO = 2 SRTT + 40 ms when one segment is out (the peer may delay its ACK).
    established(
        "
        20    send 100
        20    > P. 1:101(100) ack 1
        80    > P. 1:101(100) ack 1
        90    < . 1:1(0) ack 101 win 1000
        ",
    );
}

#[test]
fn rfc8985_6_2_reordering_within_the_window_is_not_a_loss() {
    established(
        "
        20    send 2000
        20    > . 1:1001(1000) ack 1
        20    > P. 1001:2001(1000) ack 1
        30    < . 1:1(0) ack 1 win 1000 <sack 1001:2001>
        # The first segment arrives within the reordering window (2.5 ms): nothing is resent.
        32    < . 1:1(0) ack 2001 win 1000
        ",
    );
}

#[test]
fn rfc8985_7_3_tail_loss_probe_sends_new_data_when_it_may() {
    // Ten segments fill the initial window; the eleventh waits for an ACK. None comes: the
    // probe, 2 SRTT after the last segment went, is that eleventh segment, not a resend.
    established(
        "
        20   send 11000
        20   > . 1:1001(1000) ack 1
        20~30 > . 1001:2001(1000) ack 1
        20~30 > . 2001:3001(1000) ack 1
        20~30 > . 3001:4001(1000) ack 1
        20~30 > . 4001:5001(1000) ack 1
        20~30 > . 5001:6001(1000) ack 1
        20~30 > . 6001:7001(1000) ack 1
        20~30 > . 7001:8001(1000) ack 1
        20~30 > . 8001:9001(1000) ack 1
        20~30 > . 9001:10001(1000) ack 1
        40~60 > P. 10001:11001(1000) ack 1
        70   < . 1:1(0) ack 11001 win 1000
        ",
    );
}

#[test]
fn rfc8985_6_2_once_reordering_is_seen_recovery_waits_a_quarter_rtt() {
    // The second segment arrives after the third (reordering); the first is lost. In the
    // recovery that follows, a later loss is called only after the reordering window
    // (min RTT / 4 = 2.5 ms), not at once as when no reordering was seen.
    established(
        "
        20    send 6000
        20    > . 1:1001(1000) ack 1
        20    > . 1001:2001(1000) ack 1
        20    > . 2001:3001(1000) ack 1
        20    > . 3001:4001(1000) ack 1
        20    > . 4001:5001(1000) ack 1
        20    > P. 5001:6001(1000) ack 1
        30    < . 1:1(0) ack 1 win 1000 <sack 2001:3001>
        31    < . 1:1(0) ack 1 win 1000 <sack 1001:3001>
        32.5  > . 1:1001(1000) ack 1
        40    < . 1:1(0) ack 1 win 1000 <sack 5001:6001 1001:3001>
        42.5  > . 3001:4001(1000) ack 1
        42.5  > . 4001:5001(1000) ack 1
        50    < . 1:1(0) ack 6001 win 1000
        ",
    );
}

#[test]
fn rfc8985_7_2_no_tail_loss_probe_in_recovery_even_one_armed_before_it() {
    // The probe is armed when the tail leaves (due at 40 = 2 SRTT later); a SACK (no
    // cumulative ACK, so nothing re-arms it) starts a recovery by RACK before then. When
    // the probe's time comes, recovery is under way: §7.2 sends no probe in recovery.
    established(
        "
        20    send 3000
        20    > . 1:1001(1000) ack 1
        20    > . 1001:2001(1000) ack 1
        20    > P. 2001:3001(1000) ack 1
        30    < . 1:1(0) ack 1 win 1000 <sack 2001:3001>
        30~35 > . 1:1001(1000) ack 1
        30~35 > . 1001:2001(1000) ack 1
        45    < . 1:1(0) ack 3001 win 1000
        ",
    );
}
