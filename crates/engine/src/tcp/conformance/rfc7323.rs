//! RFC 7323 timestamps (§3–5), once both SYNs carried them: on every segment but a RST,
//! the echo rules (§4.3), round-trip samples from the echo, retransmissions included
//! (§4.1), PAWS (§5), and the option's 12 bytes taken from each segment's payload. Our
//! TSval reads as the time in ms (see the harness). Window scaling (§2) is in `window.rs`.

use super::run;

/// `OPEN` with timestamps: their clock at 100 when they send the SYN, 110 with the ACK.
const OPEN_TS: &str = "
0    < S 0:0(0) win 65535 <mss 1000,sackOK,TS val 100 ecr 0,wscale 7>
0    % incoming
0    accept
0    > S. 0:0(0) ack 1 win 65535 <mss 1000,sackOK,TS val 0 ecr 100,wscale 5>
10   < . 1:1(0) ack 1 win 1000 <TS val 110 ecr 0>
10   % established
";

fn established_ts(script: &str) {
    run(&format!("{OPEN_TS}{script}"));
}

#[test]
fn rfc7323_3_2_timestamps_on_every_segment_but_a_rst() {
    established_ts(
        "
        20   < P. 1:101(100) ack 1 win 1000 <TS val 120 ecr 0>
        20   % data 100
        20   > . 1:1(0) ack 101 <TS val 20 ecr 120>
        30   send 100
        30   > P. 1:101(100) ack 101 <TS val 30 ecr 120>
        40   < . 101:101(0) ack 101 win 1000 <TS val 140 ecr 30>
        50   abort
        50   > R. 101:101(0) ack 101
        50   % closed aborted
        ",
    );
}

#[test]
fn rfc7323_3_2_not_used_unless_both_offer() {
    run("
        0    connect
        0    > S 0:0(0) win 65535 <mss 1000,sackOK,TS val 0 ecr 0,wscale 5>
        10   < S. 0:0(0) ack 1 win 65535 <mss 1000,sackOK,wscale 7>
        10   > . 1:1(0) ack 1
        10   % established
        20   send 100
        20   > P. 1:101(100) ack 1
        30   < . 1:1(0) ack 101 win 1000
        ");
}

#[test]
fn rfc7323_3_2_active_open_echoes_their_syn_ack() {
    run("
        0    connect
        0    > S 0:0(0) win 65535 <mss 1000,sackOK,TS val 0 ecr 0,wscale 5>
        10   < S. 0:0(0) ack 1 win 65535 <mss 1000,sackOK,TS val 500 ecr 0,wscale 7>
        10   > . 1:1(0) ack 1 <TS val 10 ecr 500>
        10   % established
        ");
}

#[test]
fn rfc7323_3_2_the_option_takes_12_bytes_of_each_segment() {
    established_ts(
        "
        20   send 2000
        20   > . 1:989(988) ack 1 <TS val 20 ecr 110>
        20   > . 989:1977(988) ack 1 <TS val 20 ecr 110>
        20   > P. 1977:2001(24) ack 1 <TS val 20 ecr 110>
        30   < . 1:1(0) ack 2001 win 1000 <TS val 130 ecr 20>
        ",
    );
}

#[test]
fn rfc7323_4_3_out_of_order_data_does_not_move_the_echo() {
    // TS.Recent moves only for a segment at or before the last ACK sent (R3): the echo stays
    // with the last in-order segment until the hole fills.
    established_ts(
        "
        20   < P. 1001:1101(100) ack 1 win 1000 <TS val 200 ecr 0>
        20   > . 1:1(0) ack 1 <sack 1001:1101,TS val 20 ecr 110>
        25   < P. 1:1001(1000) ack 1 win 1000 <TS val 205 ecr 0>
        25   % data 1100
        25   > . 1:1(0) ack 1101 <TS val 25 ecr 205>
        ",
    );
}

#[test]
fn rfc7323_5_3_paws_drops_an_old_duplicate_with_an_ack() {
    established_ts(
        "
        20   < P. 1:101(100) ack 1 win 1000 <TS val 120 ecr 0>
        20   % data 100
        20   > . 1:1(0) ack 101 <TS val 20 ecr 120>
        # In the window, but from an older clock reading: dropped, answered.
        30   < P. 101:201(100) ack 1 win 1000 <TS val 90 ecr 0>
        30   > . 1:1(0) ack 101 <TS val 30 ecr 120>
        40   < P. 101:201(100) ack 1 win 1000 <TS val 140 ecr 0>
        40   % data 100
        40   > . 1:1(0) ack 201 <TS val 40 ecr 140>
        # A RST is never dropped by PAWS (R1).
        50   < R. 201:201(0) ack 1 win 0 <TS val 50 ecr 0>
        50   % closed reset
        ",
    );
}

#[test]
fn rfc7323_4_1_rtt_from_the_echo_holds_for_a_retransmission() {
    // The ACK 380 ms after the retransmission echoes the retransmission's TSval: that is a
    // sample (Karn's rule is for ACKs that cannot tell): SRTT (7 * 10 + 380) / 8 = 56.25 ms.
    established_ts(
        "
        20    send 1000
        20    > . 1:989(988) ack 1 <TS val 20 ecr 110>
        20    > P. 989:1001(12) ack 1 <TS val 20 ecr 110>
        40    > P. 989:1001(12) ack 1 <TS val 40 ecr 110>
        220   > . 1:989(988) ack 1 <TS val 220 ecr 110>
        600   < . 1:1(0) ack 1001 win 1000 <TS val 600 ecr 220>
        610   send 100
        610   > P. 1001:1101(100) ack 1 <TS val 610 ecr 600>
        # The tail-loss probe shows SRTT: 610 + 2 * 56.25 + 40 (10 ms SRTT would send it at 670).
        762.5 > P. 1001:1101(100) ack 1 <TS val 762 ecr 600>
        770   < . 1:1(0) ack 1101 win 1000 <TS val 770 ecr 762>
        ",
    );
}

#[test]
fn rfc7323_4_1_an_ack_of_nothing_new_takes_no_rtt_sample() {
    // A duplicate ACK still echoes the TSval of the last data, 500 ms ago: not a round trip
    // (RFC 7323 §4.1: only an ACK that advances the left edge gives a sample). SRTT stays 10.
    established_ts(
        "
        20   send 100
        20   > P. 1:101(100) ack 1 <TS val 20 ecr 110>
        30   < . 1:1(0) ack 101 win 1000 <TS val 130 ecr 20>
        530  < . 1:1(0) ack 101 win 1000 <TS val 630 ecr 20>
        540  send 100
        540  > P. 101:201(100) ack 1 <TS val 540 ecr 630>
        # The tail-loss probe shows SRTT: 540 + 2 * 10 + 40 (SRTT 72.5 would send it at 725).
        600  > P. 101:201(100) ack 1 <TS val 600 ecr 630>
        610  < . 1:1(0) ack 201 win 1000 <TS val 710 ecr 600>
        ",
    );
}

#[test]
fn rfc7323_3_2_a_zero_window_probe_carries_timestamps() {
    established_ts(
        "
        20   < . 1:1(0) ack 1 win 0 <TS val 120 ecr 10>
        30   send 1000
        230  > . 0:0(0) ack 1 <TS val 230 ecr 120>
        240  < . 1:1(0) ack 1 win 1000 <TS val 340 ecr 230>
        240  > . 1:989(988) ack 1 <TS val 240 ecr 340>
        240  > P. 989:1001(12) ack 1 <TS val 240 ecr 340>
        250  < . 1:1(0) ack 1001 win 1000 <TS val 350 ecr 240>
        ",
    );
}

#[test]
fn rfc7323_3_2_three_sack_blocks_fit_beside_timestamps() {
    established_ts(
        "
        20   < P. 1001:1101(100) ack 1 win 1000 <TS val 120 ecr 0>
        20   > . 1:1(0) ack 1 <sack 1001:1101,TS val 20 ecr 110>
        20   < P. 2001:2101(100) ack 1 win 1000 <TS val 120 ecr 0>
        20   > . 1:1(0) ack 1 <sack 2001:2101 1001:1101,TS val 20 ecr 110>
        20   < P. 3001:3101(100) ack 1 win 1000 <TS val 120 ecr 0>
        20   > . 1:1(0) ack 1 <sack 3001:3101 2001:2101 1001:1101,TS val 20 ecr 110>
        20   < P. 4001:4101(100) ack 1 win 1000 <TS val 120 ecr 0>
        20   > . 1:1(0) ack 1 <sack 4001:4101 3001:3101 2001:2101,TS val 20 ecr 110>
        ",
    );
}

#[test]
fn rfc6191_time_wait_syn_with_a_newer_clock_reopens_even_below_rcv_nxt() {
    established_ts(
        "
        20   shutdown
        20   > F. 1:1(0) ack 1 <TS val 20 ecr 110>
        30   < F. 1:1(0) ack 2 win 1000 <TS val 130 ecr 20>
        30   % eof
        30   % closed closed
        30   > . 2:2(0) ack 2 <TS val 30 ecr 130>
        # Sequence number below the old RCV.NXT, but a later TSval: a new incarnation.
        40   < S 0:0(0) win 65535 <mss 1000,TS val 140 ecr 0>
        40   % incoming
        40   accept
        40   > S. 0:0(0) ack 1 win 65535 <mss 1000,TS val 40 ecr 140>
        40   ? iss after 2
        50   < . 1:1(0) ack 1 win 1000 <TS val 150 ecr 40>
        50   % established
        ",
    );
}

#[test]
fn rfc6191_time_wait_syn_with_an_older_clock_gets_an_ack() {
    established_ts(
        "
        20   shutdown
        20   > F. 1:1(0) ack 1 <TS val 20 ecr 110>
        30   < F. 1:1(0) ack 2 win 1000 <TS val 130 ecr 20>
        30   % eof
        30   % closed closed
        30   > . 2:2(0) ack 2 <TS val 30 ecr 130>
        # Above the old sequence space, but an older clock reading: PAWS keeps TIME-WAIT.
        40   < S 5000:5000(0) win 65535 <mss 1000,TS val 120 ecr 0>
        40   > . 2:2(0) ack 2 <TS val 40 ecr 130>
        ",
    );
}
