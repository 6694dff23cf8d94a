//! RFC 6298: the retransmission timer. One second before any RTT sample (§2.1), SRTT +
//! 4 RTTVAR after (§2.2–2.3) with Linux's 200 ms floor (where the RFC says 1 s, §2.4),
//! doubled on each expiry (§5.5), restarted by an ACK of new data (§5.3), stopped when
//! everything is acknowledged (§5.2); no sample from a retransmitted segment (Karn, §3).

use super::rfc9293::established;
use super::run;

#[test]
fn rfc6298_5_timeout_retransmits_and_doubles() {
    // 10 ms RTT from the handshake: RTO = max(10 + 4 * 5, 200) = 200 ms.
    established(
        "
        20    send 1000
        20    > P. 1:1001(1000) ack 1
        # RFC 8985 §7.2: a tail-loss probe first, 2 SRTT + 40 ms after.
        80    > P. 1:1001(1000) ack 1
        220   > P. 1:1001(1000) ack 1
        # A duplicate ACK acknowledges nothing new: the backoff stands.
        300   < . 1:1(0) ack 1 win 1000
        620   > P. 1:1001(1000) ack 1
        1420  > P. 1:1001(1000) ack 1
        3020  > P. 1:1001(1000) ack 1
        3030  < . 1:1(0) ack 1001 win 1000
        # Four timeouts; five segments sent again (the tail-loss probe one of them).
        3030  ? total timeouts 4
        3030  ? total retransmittedSegments 5
        ",
    );
}

#[test]
fn rfc6298_3_no_rtt_sample_from_a_retransmission() {
    // The ACK 380 ms after the retransmission would make RTO 441 ms if sampled (Karn).
    // With it ignored and the backoff ended by new data acknowledged (§5.7 aside), RTO is
    // back to 200 ms.
    established(
        "
        20    send 1000
        20    > P. 1:1001(1000) ack 1
        80    > P. 1:1001(1000) ack 1
        220   > P. 1:1001(1000) ack 1
        600   < . 1:1(0) ack 1001 win 1000
        610   send 1000
        610   > P. 1001:2001(1000) ack 1
        670   > P. 1001:2001(1000) ack 1
        810   > P. 1001:2001(1000) ack 1
        820   < . 1:1(0) ack 2001 win 1000
        ",
    );
}

#[test]
fn rfc6298_5_3_ack_of_new_data_restarts_the_timer() {
    established(
        "
        20    send 2000
        20    > . 1:1001(1000) ack 1
        20    > P. 1001:2001(1000) ack 1
        # Two segments out: the tail-loss probe comes 2 SRTT after, at 40 ms.
        30    < . 1:1(0) ack 1001 win 1000
        # One segment left, RTT 10 ms: probe at 30 + 2 * 10 + 40, RTO at 30 + 200.
        90    > P. 1001:2001(1000) ack 1
        230   > P. 1001:2001(1000) ack 1
        240   < . 1:1(0) ack 2001 win 1000
        ",
    );
}

#[test]
fn rfc6298_2_1_handshake_retransmits_from_one_second_and_gives_up() {
    // SYN-ACK again after 1, 2, 4, 8 s; the handshake is given up after 20 s (half-open timeout).
    run("
        0      < S 0:0(0) win 65535 <mss 1000>
        0      % incoming
        0      accept
        0      > S. 0:0(0) ack 1 win 65535 <mss 1000>
        1000   > S. 0:0(0) ack 1 win 65535 <mss 1000>
        3000   > S. 0:0(0) ack 1 win 65535 <mss 1000>
        7000   > S. 0:0(0) ack 1 win 65535 <mss 1000>
        15000  > S. 0:0(0) ack 1 win 65535 <mss 1000>
        20000  > R. 1:1(0) ack 1
        20000  % closed timeout
        ");
}

#[test]
fn rfc6298_5_2_all_acknowledged_stops_the_timer() {
    // The harness's final minute of silence is the check.
    established(
        "
        20    send 1000
        20    > P. 1:1001(1000) ack 1
        30    < . 1:1(0) ack 1001 win 1000
        ",
    );
}

#[test]
fn rfc6298_5_7_a_retransmitted_handshake_leaves_a_three_second_rto() {
    // Karn leaves no sample from the handshake; the RTO for data starts at 3 s, not 1 s.
    run("
        0     < S 0:0(0) win 65535 <mss 1000>
        0     % incoming
        0     accept
        0     > S. 0:0(0) ack 1 win 65535 <mss 1000>
        1000  > S. 0:0(0) ack 1 win 65535 <mss 1000>
        1010  < . 1:1(0) ack 1 win 65535
        1010  % established
        1020  send 1000
        1020  > P. 1:1001(1000) ack 1
        4020  > P. 1:1001(1000) ack 1
        4030  < . 1:1(0) ack 1001 win 65535
        ");
}

#[test]
fn rfc6298_5_5_syn_retransmitted_five_times_then_timed_out() {
    // 1, 2, 4, 8 and 16 s apart; 32 s after the last, the connection is given up (RFC 9293
    // §3.8.3 leaves how long to the implementation; Linux tries a sixth time). Nobody
    // answered, so it timed out (ETIMEDOUT, as Linux's connect says); "refused" is for a RST.
    run("
        0      connect
        0      > S 0:0(0) win 65535 <mss 1000,sackOK,TS val 0 ecr 0,wscale 5>
        1000   > S 0:0(0) win 65535 <mss 1000,sackOK,TS val 1000 ecr 0,wscale 5>
        3000   > S 0:0(0) win 65535 <mss 1000,sackOK,TS val 3000 ecr 0,wscale 5>
        7000   > S 0:0(0) win 65535 <mss 1000,sackOK,TS val 7000 ecr 0,wscale 5>
        15000  > S 0:0(0) win 65535 <mss 1000,sackOK,TS val 15000 ecr 0,wscale 5>
        31000  > S 0:0(0) win 65535 <mss 1000,sackOK,TS val 31000 ecr 0,wscale 5>
        63000  % closed timeout
        ");
}

#[test]
fn rfc6298_5_4_after_a_timeout_a_partial_ack_leaves_the_rest_to_send_again() {
    // Everything outstanding was presumed lost; an ACK into the middle of the second
    // segment: its rest and the third go again, nothing else.
    established(
        "
        20    send 3000
        20    > . 1:1001(1000) ack 1
        20    > . 1001:2001(1000) ack 1
        20    > P. 2001:3001(1000) ack 1
        40    > P. 2001:3001(1000) ack 1
        220   > . 1:1001(1000) ack 1
        230   < . 1:1(0) ack 1501 win 1000
        230   > . 1501:2001(500) ack 1
        230   > P. 2001:3001(1000) ack 1
        240   < . 1:1(0) ack 3001 win 1000
        ",
    );
}
