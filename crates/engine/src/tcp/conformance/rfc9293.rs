//! RFC 9293 (TCP): the handshake, then segment arrival state by state (§3.10.7), FIN and
//! half-close in every state, simultaneous close.

use super::{config, run, run_with};

/// The peer's SYN with every option, the host's accept, our SYN-ACK and the peer's ACK:
/// ESTABLISHED at 10 ms, MSS 1000 both ways, the peer's window 1000 << 7, ours 2048 << 5.
pub const OPEN: &str = "
0    < S 0:0(0) win 65535 <mss 1000,sackOK,wscale 7>
0    % incoming
0    accept
0    > S. 0:0(0) ack 1 win 65535 <mss 1000,sackOK,wscale 5>
10   < . 1:1(0) ack 1 win 1000
10   % established
";

/// `OPEN` then `script`.
pub fn established(script: &str) {
    run(&format!("{OPEN}{script}"));
}

#[test]
fn rfc9293_3_5_three_way_handshake() {
    established(
        "
        # Data both ways proves both sides synchronized.
        20   < P. 1:101(100) ack 1 win 1000
        20   % data 100
        20   > . 1:1(0) ack 101 win 2044
        30   send 100
        30   > P. 1:101(100) ack 101
        40   < . 101:101(0) ack 101 win 1000
        ",
    );
}

#[test]
fn rfc9293_3_5_active_open() {
    run("
        0    connect
        0    > S 0:0(0) win 65535 <mss 1000,sackOK,TS val 0 ecr 0,wscale 5>
        10   < S. 0:0(0) ack 1 win 65535 <mss 1000,sackOK,wscale 7>
        10   > . 1:1(0) ack 1 win 2048
        10   % established
        ");
}

// ---- CLOSED: no connection (§3.10.7.1) ----

#[test]
fn rfc9293_3_10_7_1_closed_segment_with_ack_gets_rst_at_its_ack() {
    run("
        0    < . 100:100(0) ack 5000 win 1000
        0    > R 5000:5000(0)
        ");
}

#[test]
fn rfc9293_3_10_7_1_closed_segment_without_ack_gets_rst_ack_past_it() {
    run("
        0    < P 100:200(100) win 1000
        0    > R. 0:0(0) ack 200
        0    < F 300:300(0) win 1000
        0    > R. 0:0(0) ack 301
        0    ? total resetUnknown 2
        ");
}

#[test]
fn rfc9293_3_10_7_1_closed_rst_is_never_answered() {
    run("
        0    < R 100:100(0) win 0
        0    < R. 100:100(0) ack 5000 win 0
        ");
}

// ---- LISTEN (§3.10.7.2): every SYN meets a listener; the host decides ----

#[test]
fn rfc9293_3_10_7_2_listen_syn_refused_when_not_accepting() {
    run_with(
        super::super::TcpConfig { accept: false, ..config() },
        "
        0    < S 0:0(0) win 65535 <mss 1000>
        0    > R. 0:0(0) ack 1
        0    ? total refusedNotAccepting 1
        ",
    );
}

#[test]
fn rfc9293_3_10_7_2_listen_repeated_syn_waits_for_the_host() {
    run("
        0    < S 0:0(0) win 65535 <mss 1000>
        0    % incoming
        100  < S 0:0(0) win 65535 <mss 1000>
        200  accept
        200  > S. 0:0(0) ack 1 win 65535 <mss 1000>
        210  < . 1:1(0) ack 1 win 1000
        210  % established
        ");
}

#[test]
fn rfc9293_3_10_7_2_host_refuses_with_rst() {
    run("
        0    < S 0:0(0) win 65535 <mss 1000>
        0    % incoming
        5    refuse rst
        5    > R. *:*(0) ack 1
        5    % closed refused
        10   < . 1:1(0) ack 1 win 1000
        10   > R 1:1(0)
        ");
}

#[test]
fn rfc9293_3_10_7_2_host_refuses_with_icmp_unreachable() {
    run("
        0    < S 0:0(0) win 65535 <mss 1000>
        0    % incoming
        5    refuse icmp
        5    > icmp
        5    % closed refused
        ");
}

#[test]
fn rfc9293_3_10_7_2_rst_before_the_host_answers_ends_it() {
    run("
        0    < S 0:0(0) win 65535 <mss 1000>
        0    % incoming
        5    < R 1:1(0) win 0
        5    % closed reset
        ");
}

// ---- SYN-SENT (§3.10.7.3) ----

#[test]
fn rfc9293_3_10_7_3_syn_sent_unacceptable_ack_gets_rst() {
    run("
        0    connect
        0    > S 0:0(0) win 65535 <mss 1000,sackOK,TS val 0 ecr 0,wscale 5>
        10   < S. 0:0(0) ack 7 win 65535 <mss 1000>
        10   > R 7:7(0)
        20   < S. 0:0(0) ack 1 win 65535 <mss 1000>
        20   > . 1:1(0) ack 1 win 65535
        20   % established
        ");
}

#[test]
fn rfc9293_3_10_7_3_syn_sent_rst_with_acceptable_ack_refuses() {
    run("
        0    connect
        0    > S 0:0(0) win 65535 <mss 1000,sackOK,TS val 0 ecr 0,wscale 5>
        10   < R. 0:0(0) ack 7 win 0
        15   < R 0:0(0) win 0
        20   < R. 0:0(0) ack 1 win 0
        20   % closed refused
        ");
}

#[test]
fn rfc9293_3_10_7_3_syn_sent_syn_is_retransmitted_with_backoff() {
    run("
        0     connect
        0     > S 0:0(0) win 65535 <mss 1000,sackOK,TS val 0 ecr 0,wscale 5>
        1000  > S 0:0(0) win 65535 <mss 1000,sackOK,TS val 1000 ecr 0,wscale 5>
        3000  > S 0:0(0) win 65535 <mss 1000,sackOK,TS val 3000 ecr 0,wscale 5>
        3500  < S. 0:0(0) ack 1 win 65535 <mss 1000>
        3500  > . 1:1(0) ack 1 win 65535
        3500  % established
        ");
}

// ---- SYN-RECEIVED (§3.10.7.4) ----

#[test]
fn rfc9293_3_10_7_4_syn_received_unacceptable_segment_gets_an_ack() {
    run("
        0    < S 0:0(0) win 65535 <mss 1000,sackOK,wscale 7>
        0    % incoming
        0    accept
        0    > S. 0:0(0) ack 1 win 65535 <mss 1000,sackOK,wscale 5>
        10   < P. 200000:200100(100) ack 1 win 1000
        10   > . 1:1(0) ack 1 win 2048
        20   < . 1:1(0) ack 1 win 1000
        20   % established
        ");
}

#[test]
fn rfc9293_3_10_7_4_syn_received_unacceptable_ack_gets_rst() {
    run("
        0    < S 0:0(0) win 65535 <mss 1000,sackOK,wscale 7>
        0    % incoming
        0    accept
        0    > S. 0:0(0) ack 1 win 65535 <mss 1000,sackOK,wscale 5>
        10   < . 1:1(0) ack 100 win 1000
        10   > R 100:100(0)
        # Still SYN-RECEIVED: the SYN-ACK goes again when its timer fires.
        1000 > S. 0:0(0) ack 1 win 65535 <mss 1000,sackOK,wscale 5>
        1010 < . 1:1(0) ack 1 win 1000
        1010 % established
        ");
}

#[test]
fn rfc9293_3_10_7_4_syn_received_repeated_syn_repeats_the_syn_ack() {
    run("
        0    < S 0:0(0) win 65535 <mss 1000,sackOK,wscale 7>
        0    % incoming
        0    accept
        0    > S. 0:0(0) ack 1 win 65535 <mss 1000,sackOK,wscale 5>
        300  < S 0:0(0) win 65535 <mss 1000,sackOK,wscale 7>
        300  > S. 0:0(0) ack 1 win 65535 <mss 1000,sackOK,wscale 5>
        310  < . 1:1(0) ack 1 win 1000
        310  % established
        ");
}

#[test]
fn rfc9293_3_10_7_4_syn_received_exact_rst_ends_it() {
    run("
        0    < S 0:0(0) win 65535 <mss 1000,sackOK,wscale 7>
        0    % incoming
        0    accept
        0    > S. 0:0(0) ack 1 win 65535 <mss 1000,sackOK,wscale 5>
        10   < R 1:1(0) win 0
        10   % closed reset
        ");
}

#[test]
fn rfc9293_3_10_7_4_syn_received_data_on_the_handshake_ack_is_delivered() {
    run("
        0    < S 0:0(0) win 65535 <mss 1000,sackOK,wscale 7>
        0    % incoming
        0    accept
        0    > S. 0:0(0) ack 1 win 65535 <mss 1000,sackOK,wscale 5>
        10   < P. 1:101(100) ack 1 win 1000
        10   % established
        10   % data 100
        10   > . 1:1(0) ack 101 win 2044
        ");
}

#[test]
fn rfc9293_3_10_7_4_syn_received_fin_goes_to_close_wait() {
    run("
        0    < S 0:0(0) win 65535 <mss 1000,sackOK,wscale 7>
        0    % incoming
        0    accept
        0    > S. 0:0(0) ack 1 win 65535 <mss 1000,sackOK,wscale 5>
        10   < F. 1:1(0) ack 1 win 1000
        10   % established
        10   % eof
        10   > . 1:1(0) ack 2
        20   shutdown
        20   > F. 1:1(0) ack 2
        30   < . 2:2(0) ack 2 win 1000
        30   % closed closed
        ");
}

// ---- ESTABLISHED (§3.10.7.4) ----

#[test]
fn rfc9293_3_10_7_4_established_data_past_the_window_gets_an_ack_and_is_dropped() {
    established(
        "
        # Our window: 2048 << 5 = 65536 bytes from 1.
        20   < P. 65537:65637(100) ack 1 win 1000
        20   > . 1:1(0) ack 1 win 2048
        30   < P. 1:101(100) ack 1 win 1000
        30   % data 100
        30   > . 1:1(0) ack 101 win 2044
        ",
    );
}

#[test]
fn rfc9293_3_10_7_4_established_old_duplicate_gets_an_ack_and_is_dropped() {
    established(
        "
        20   < P. 1:101(100) ack 1 win 1000
        20   % data 100
        20   > . 1:1(0) ack 101 win 2044
        30   < P. 1:101(100) ack 1 win 1000
        30   > . 1:1(0) ack 101 win 2044
        ",
    );
}

#[test]
fn rfc9293_3_10_7_4_established_segment_without_ack_is_dropped() {
    established(
        "
        20   < P 1:101(100) win 1000
        30   < P. 1:101(100) ack 1 win 1000
        30   % data 100
        30   > . 1:1(0) ack 101 win 2044
        ",
    );
}

#[test]
fn rfc9293_3_10_7_4_established_old_ack_does_not_move_the_window() {
    // SEG.ACK < SND.UNA: a duplicate, ignored; its window is older than the one we hold.
    established(
        "
        20   send 1000
        20   > P. 1:1001(1000) ack 1
        30   < . 1:1(0) ack 1001 win 1000
        31   < . 1:1(0) ack 1 win 0
        40   send 1000
        40   > P. 1001:2001(1000) ack 1
        50   < . 1:1(0) ack 2001 win 1000
        ",
    );
}

#[test]
fn rfc9293_3_10_7_4_established_fin_goes_to_close_wait() {
    established(
        "
        20   < F. 1:1(0) ack 1 win 1000
        20   % eof
        20   > . 1:1(0) ack 2
        # CLOSE-WAIT: we still send.
        30   send 100
        30   > P. 1:101(100) ack 2
        40   < . 2:2(0) ack 101 win 1000
        50   shutdown
        50   > F. 101:101(0) ack 2
        60   < . 2:2(0) ack 102 win 1000
        60   % closed closed
        ",
    );
}

#[test]
fn rfc9293_3_10_7_4_established_fin_behind_a_hole_waits_for_it() {
    established(
        "
        20   < F. 101:101(0) ack 1 win 1000
        20   > . 1:1(0) ack 1
        30   < P. 1:101(100) ack 1 win 1000
        30   % data 100
        30   % eof
        30   > . 1:1(0) ack 102
        ",
    );
}

// ---- FIN-WAIT-1, FIN-WAIT-2, CLOSING, TIME-WAIT ----

#[test]
fn rfc9293_3_10_7_4_fin_wait_1_ack_of_fin_goes_to_fin_wait_2_then_time_wait() {
    established(
        "
        20   shutdown
        20   > F. 1:1(0) ack 1
        30   < . 1:1(0) ack 2 win 1000
        # FIN-WAIT-2: the peer still sends (half-close).
        40   < P. 1:101(100) ack 2 win 1000
        40   % data 100
        40   > . 2:2(0) ack 101
        50   < F. 101:101(0) ack 2 win 1000
        50   % eof
        50   % closed closed
        50   > . 2:2(0) ack 102
        ",
    );
}

#[test]
fn rfc9293_3_10_7_4_fin_wait_1_data_still_arrives() {
    established(
        "
        20   shutdown
        20   > F. 1:1(0) ack 1
        30   < P. 1:101(100) ack 1 win 1000
        30   % data 100
        30   > . 2:2(0) ack 101
        40   < F. 101:101(0) ack 2 win 1000
        40   % eof
        40   % closed closed
        40   > . 2:2(0) ack 102
        ",
    );
}

#[test]
fn rfc9293_3_10_7_4_fin_wait_1_fin_rides_the_last_data() {
    established(
        "
        20   send 1500; shutdown
        20   > . 1:1001(1000) ack 1
        20   > FP. 1001:1501(500) ack 1
        30   < . 1:1(0) ack 1502 win 1000
        40   < F. 1:1(0) ack 1502 win 1000
        40   % eof
        40   % closed closed
        40   > . 1502:1502(0) ack 2
        ",
    );
}

#[test]
fn rfc9293_3_6_simultaneous_close_goes_through_closing() {
    established(
        "
        20   shutdown
        20   > F. 1:1(0) ack 1
        # Their FIN crosses ours: CLOSING.
        21   < F. 1:1(0) ack 1 win 1000
        21   % eof
        21   > . 2:2(0) ack 2
        30   < . 2:2(0) ack 2 win 1000
        30   % closed closed
        ",
    );
}

#[test]
fn rfc9293_3_6_simultaneous_close_both_fins_acked_at_once() {
    established(
        "
        20   shutdown
        20   > F. 1:1(0) ack 1
        30   < F. 1:1(0) ack 2 win 1000
        30   % eof
        30   % closed closed
        30   > . 2:2(0) ack 2
        ",
    );
}

#[test]
fn rfc9293_3_10_7_4_closing_repeated_fin_gets_an_ack() {
    established(
        "
        20   shutdown
        20   > F. 1:1(0) ack 1
        21   < F. 1:1(0) ack 1 win 1000
        21   % eof
        21   > . 2:2(0) ack 2
        # RFC 8985 §7: a tail-loss probe for our FIN, 2 SRTT + 40 ms after it.
        80   > F. 1:1(0) ack 2
        # Our ACK was lost: their FIN comes again.
        100  < F. 1:1(0) ack 1 win 1000
        100  > . 2:2(0) ack 2
        110  < . 2:2(0) ack 2 win 1000
        110  % closed closed
        ",
    );
}

#[test]
fn rfc9293_3_10_7_4_close_wait_repeated_fin_gets_an_ack() {
    established(
        "
        20   < F. 1:1(0) ack 1 win 1000
        20   % eof
        20   > . 1:1(0) ack 2
        300  < F. 1:1(0) ack 1 win 1000
        300  > . 1:1(0) ack 2
        ",
    );
}

#[test]
fn rfc9293_3_10_7_4_last_ack_fin_is_retransmitted_until_acked() {
    established(
        "
        20   < F. 1:1(0) ack 1 win 1000
        20   % eof
        20   > . 1:1(0) ack 2
        30   shutdown
        30   > F. 1:1(0) ack 2
        # A tail-loss probe (RFC 8985 §7), then the RTO: 200 ms (10 ms RTT, 200 ms floor).
        90   > F. 1:1(0) ack 2
        230  > F. 1:1(0) ack 2
        240  < . 2:2(0) ack 2 win 1000
        240  % closed closed
        ",
    );
}

#[test]
fn rfc9293_3_10_7_4_time_wait_repeated_fin_gets_an_ack() {
    established(
        "
        20   shutdown
        20   > F. 1:1(0) ack 1
        30   < F. 1:1(0) ack 2 win 1000
        30   % eof
        30   % closed closed
        30   > . 2:2(0) ack 2
        500  < F. 1:1(0) ack 2 win 1000
        500  > . 2:2(0) ack 2
        ",
    );
}

#[test]
fn rfc9293_3_10_7_4_time_wait_rst_ends_it_silently() {
    established(
        "
        20   shutdown
        20   > F. 1:1(0) ack 1
        30   < F. 1:1(0) ack 2 win 1000
        30   % eof
        30   % closed closed
        30   > . 2:2(0) ack 2
        40   < R. 2:2(0) ack 2 win 0
        # Forgotten: the next segment meets no connection.
        50   < . 2:2(0) ack 2 win 1000
        50   > R 2:2(0)
        ",
    );
}

#[test]
fn rfc9293_3_10_7_4_time_wait_old_syn_gets_an_ack() {
    // A SYN at or below RCV.NXT cannot open a new incarnation: the answer is an ACK (RFC 6191 §2 leaves the old rules).
    established(
        "
        20   shutdown
        20   > F. 1:1(0) ack 1
        30   < F. 1:1(0) ack 2 win 1000
        30   % eof
        30   % closed closed
        30   > . 2:2(0) ack 2
        40   < S 0:0(0) win 65535 <mss 1000>
        40   > . 2:2(0) ack 2
        # At RCV.NXT exactly: not above it, so not a new incarnation either.
        50   < S 2:2(0) win 65535 <mss 1000>
        50   > . 2:2(0) ack 2
        ",
    );
}

#[test]
fn rfc6191_time_wait_syn_above_rcv_nxt_opens_a_new_connection() {
    established(
        "
        20   shutdown
        20   > F. 1:1(0) ack 1
        30   < F. 1:1(0) ack 2 win 1000
        30   % eof
        30   % closed closed
        30   > . 2:2(0) ack 2
        40   < S 5000:5000(0) win 65535 <mss 1000>
        40   % incoming
        40   accept
        40   > S. 0:0(0) ack 5001 win 65535 <mss 1000>
        # Our new sequence space starts past the old one (RFC 1122 4.2.2.13).
        40   ? iss after 2
        50   < . 5001:5001(0) ack 1 win 1000
        50   % established
        ",
    );
}

#[test]
fn rfc9293_3_10_7_4_time_wait_lasts_two_msl_from_the_last_segment() {
    // 2 MSL = 60 s, as Linux; a repeated FIN starts it again.
    established(
        "
        20     shutdown
        20     > F. 1:1(0) ack 1
        30     < F. 1:1(0) ack 2 win 1000
        30     % eof
        30     % closed closed
        30     > . 2:2(0) ack 2
        60029  < F. 1:1(0) ack 2 win 1000
        60029  > . 2:2(0) ack 2
        120028 < F. 1:1(0) ack 2 win 1000
        120028 > . 2:2(0) ack 2
        # 60 s of silence: gone, and the next segment meets no connection.
        180028 < . 2:2(0) ack 2 win 1000
        180028 > R 2:2(0)
        ",
    );
}

#[test]
fn rfc9293_3_6_fin_wait_2_lasts_while_the_peer_still_sends() {
    // Half-close: the peer may send for as long as it likes after our FIN.
    established(
        "
        20     shutdown
        20     > F. 1:1(0) ack 1
        30     < . 1:1(0) ack 2 win 1000
        50000  < P. 1:101(100) ack 2 win 1000
        50000  % data 100
        50000  > . 2:2(0) ack 101
        100000 < P. 101:201(100) ack 2 win 1000
        100000 % data 100
        100000 > . 2:2(0) ack 201
        150000 < F. 201:201(0) ack 2 win 1000
        150000 % eof
        150000 % closed closed
        150000 > . 2:2(0) ack 202
        ",
    );
}

#[test]
fn rfc9293_3_6_fin_wait_2_gives_up_on_a_silent_peer() {
    // A minute without a word after our FIN was acknowledged (Linux's tcp_fin_timeout).
    established(
        "
        20     shutdown
        20     > F. 1:1(0) ack 1
        30     < . 1:1(0) ack 2 win 1000
        60030  > R. 2:2(0) ack 1
        60030  % closed timeout
        ",
    );
}

#[test]
fn rfc9293_3_8_3_user_timeout_gives_up_on_unacknowledged_data() {
    // RFC 5482: 60 s without progress; the backed-off RTO is cut short to meet it.
    established(
        "
        20     send 1000
        20     > P. 1:1001(1000) ack 1
        80     > P. 1:1001(1000) ack 1
        220    > P. 1:1001(1000) ack 1
        620    > P. 1:1001(1000) ack 1
        1420   > P. 1:1001(1000) ack 1
        3020   > P. 1:1001(1000) ack 1
        6220   > P. 1:1001(1000) ack 1
        12620  > P. 1:1001(1000) ack 1
        25420  > P. 1:1001(1000) ack 1
        51020  > P. 1:1001(1000) ack 1
        60020  > R. 1001:1001(0) ack 1
        60020  % closed timeout
        ",
    );
}

#[test]
fn rfc9293_3_9_abort_sends_rst() {
    established(
        "
        20   < P. 1:101(100) ack 1 win 1000
        20   % data 100
        20   > . 1:1(0) ack 101
        30   abort
        30   > R. 1:1(0) ack 101
        30   % closed aborted
        40   < . 101:101(0) ack 1 win 1000
        40   > R 1:1(0)
        ",
    );
}

#[test]
fn rfc9293_3_9_abort_before_the_syn_left_sends_nothing() {
    run("
        0    connect; abort
        0    % closed aborted
        ");
}

#[test]
fn rfc9293_3_9_data_and_fin_written_during_the_handshake_follow_it() {
    run("
        0    connect; send 100; shutdown
        0    > S 0:0(0) win 65535 <mss 1000,sackOK,TS val 0 ecr 0,wscale 5>
        10   < S. 0:0(0) ack 1 win 65535 <mss 1000,sackOK,wscale 7>
        10   > FP. 1:101(100) ack 1
        10   % established
        20   < F. 1:1(0) ack 102 win 1000
        20   % eof
        20   % closed closed
        20   > . 102:102(0) ack 2
        ");
}

#[test]
fn rfc9293_3_10_7_4_last_ack_repeated_fin_gets_an_ack() {
    established(
        "
        20   < F. 1:1(0) ack 1 win 1000
        20   % eof
        20   > . 1:1(0) ack 2
        30   shutdown
        30   > F. 1:1(0) ack 2
        # Their FIN again (our ACK of it was lost), not acknowledging ours.
        35   < F. 1:1(0) ack 1 win 1000
        35   > . 2:2(0) ack 2
        40   < . 2:2(0) ack 2 win 1000
        40   % closed closed
        ",
    );
}

#[test]
fn rfc9293_3_10_7_3_syn_sent_segment_without_syn_ack_or_rst_is_dropped() {
    run("
        0    connect
        0    > S 0:0(0) win 65535 <mss 1000,sackOK,TS val 0 ecr 0,wscale 5>
        5    < F 0:0(0) win 1000
        5    < P 1:101(100) win 1000
        # A SYN of their own (a simultaneous open) is not supported: ignored too; so is an
        # ACK of our SYN without a SYN.
        6    < S 0:0(0) win 65535 <mss 1000>
        7    < . 0:0(0) ack 1 win 1000
        10   < S. 0:0(0) ack 1 win 65535 <mss 1000>
        10   > . 1:1(0) ack 1 win 65535
        10   % established
        ");
}

#[test]
fn rfc9293_3_10_7_4_nothing_after_a_reset_in_the_same_batch_is_taken() {
    // The connection is CLOSED once the RST is in, though not yet forgotten: the data
    // behind it in the same batch is neither delivered nor acknowledged.
    established(
        "
        20   < R. 1:1(0) ack 1 win 0
        20   < P. 1:101(100) ack 1 win 1000
        20   % closed reset
        ",
    );
}

#[test]
fn rfc9293_3_10_7_4_time_wait_is_restarted_only_by_their_fin() {
    // An old duplicate gets an ACK but leaves the 2 MSL running from the FIN.
    established(
        "
        20     shutdown
        20     > F. 1:1(0) ack 1
        30     < F. 1:1(0) ack 2 win 1000
        30     % eof
        30     % closed closed
        30     > . 2:2(0) ack 2
        50000  < P. -100:0(100) ack 2 win 1000
        50000  > . 2:2(0) ack 2
        60031  < . 2:2(0) ack 2 win 1000
        60031  > R 2:2(0)
        ",
    );
}

#[test]
fn rfc9293_3_10_7_4_ack_of_our_fin_on_an_old_segment_still_counts() {
    // Unacceptable (it lies before RCV.NXT), so it is answered, but its ACK is taken: FIN-WAIT-2,
    // whose minute then runs out.
    established(
        "
        20     shutdown
        20     > F. 1:1(0) ack 1
        30     < . 0:0(0) ack 2 win 1000
        30     > . 2:2(0) ack 1
        60030  > R. 2:2(0) ack 1
        60030  % closed timeout
        ",
    );
}

#[test]
fn rfc9293_3_10_7_4_close_wait_data_past_their_fin_is_not_taken() {
    established(
        "
        20   < F. 1:1(0) ack 1 win 1000
        20   % eof
        20   > . 1:1(0) ack 2
        30   < P. 2:102(100) ack 1 win 1000
        30   > . 1:1(0) ack 2
        ",
    );
}

#[test]
fn rfc9293_3_10_7_4_rst_in_fin_wait_2_and_last_ack_resets() {
    established(
        "
        20   shutdown
        20   > F. 1:1(0) ack 1
        30   < . 1:1(0) ack 2 win 1000
        40   < R. 1:1(0) ack 2 win 0
        40   % closed reset
        ",
    );
    established(
        "
        20   < F. 1:1(0) ack 1 win 1000
        20   % eof
        20   > . 1:1(0) ack 2
        30   shutdown
        30   > F. 1:1(0) ack 2
        40   < R 2:2(0) win 0
        40   % closed reset
        ",
    );
}

#[test]
fn rfc9293_3_10_7_2_a_syn_the_host_never_answers_is_refused_after_the_half_open_timeout() {
    run("
        0      < S 0:0(0) win 65535 <mss 1000>
        0      % incoming
        20000  > R. *:*(0) ack 1
        20000  % closed timeout
        ");
}

#[test]
fn rfc9293_3_10_7_4_a_segment_partly_received_before_gives_only_its_new_bytes() {
    established(
        "
        20   < P. 1:101(100) ack 1 win 1000
        20   % data 100
        20   > . 1:1(0) ack 101
        30   < P. 51:201(150) ack 1 win 1000
        30   % data 100
        30   > . 1:1(0) ack 201
        ",
    );
}

#[test]
fn rfc9293_3_10_7_4_a_segment_past_the_right_edge_is_trimmed_and_its_fin_dropped() {
    super::run_with(
        super::super::TcpConfig { max_receive_window: 3000, ..super::config() },
        "
        0    < S 0:0(0) win 65535 <mss 1000,sackOK,wscale 7>
        0    % incoming
        0    accept
        0    > S. 0:0(0) ack 1 win 3000 <mss 1000,sackOK,wscale 0>
        10   < . 1:1(0) ack 1 win 1000
        10   % established
        20   < P. 1:1001(1000) ack 1 win 1000
        20   % data 1000
        20   > . 1:1(0) ack 1001 win 2000
        20   < P. 1001:2501(1500) ack 1 win 1000
        20   % data 1500
        20   > . 1:1(0) ack 2501 win 500
        # 500 bytes of room: the rest, and the FIN behind it, wait for a later segment.
        30   < FP. 2501:3501(1000) ack 1 win 1000
        30   % data 500
        30   > . 1:1(0) ack 3001 win 0
        40   consume 3000
        40   > . 1:1(0) ack 3001 win 3000
        50   < FP. 3001:3501(500) ack 1 win 1000
        50   % data 500
        50   % eof
        50   > . 1:1(0) ack 3502 win 2500
        ",
    );
}

#[test]
fn rfc2018_4_overlapping_out_of_order_segments_make_one_block() {
    established(
        "
        20   < P. 1001:2001(1000) ack 1 win 1000
        20   > . 1:1(0) ack 1 <sack 1001:2001>
        20   < P. 1501:2501(1000) ack 1 win 1000
        20   > . 1:1(0) ack 1 <sack 1001:2501>
        20   < P. 501:1101(600) ack 1 win 1000
        20   > . 1:1(0) ack 1 <sack 501:2501>
        20   < P. 1:501(500) ack 1 win 1000
        20   % data 2500
        20   > . 1:1(0) ack 2501
        ",
    );
}

#[test]
fn rfc9293_3_10_7_2_host_refuses_over_ipv6_with_icmp_unreachable() {
    super::run_between(
        super::ipv6(),
        super::config(),
        "
        0    < S 0:0(0) win 65535 <mss 1000>
        0    % incoming
        5    refuse icmp
        5    > icmp
        5    % closed refused
        ",
    );
}

#[test]
fn rfc9293_3_10_7_2_a_connection_accepted_cannot_be_refused() {
    run("
        0    < S 0:0(0) win 65535 <mss 1000>
        0    % incoming
        0    accept
        0    > S. 0:0(0) ack 1 win 65535 <mss 1000>
        5    refuse rst fails
        10   < . 1:1(0) ack 1 win 1000
        10   % established
        ");
}

#[test]
fn rfc9293_3_10_4_close_before_the_handshake_ends_sends_fin_after_it() {
    // Passive open: the host accepts, writes and closes at once; the data and FIN follow
    // the handshake's ACK, and nothing more may be written (RFC 9293 §3.10.2: "connection closing").
    run("
        0    < S 0:0(0) win 65535 <mss 1000>
        0    % incoming
        0    accept; send 100; shutdown
        0    > S. 0:0(0) ack 1 win 65535 <mss 1000>
        5    send 10 fails
        10   < . 1:1(0) ack 1 win 65535
        10   % established
        10   > FP. 1:101(100) ack 1
        20   < F. 1:1(0) ack 102 win 65535
        20   % eof
        20   % closed closed
        20   > . 102:102(0) ack 2
        ");
}
