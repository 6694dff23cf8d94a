//! RFC 5961: blind in-window attacks. Only an exact RST resets (§3.2), an in-window SYN
//! gets a challenge ACK (§4.2), an ACK of data never sent is dropped with an ACK (§5.2).

use super::rfc9293::established;
use super::run;

#[test]
fn rfc5961_3_2_rst_at_exactly_rcv_nxt_resets() {
    established(
        "
        20   < R. 1:1(0) ack 1 win 0
        20   % closed reset
        30   < . 1:1(0) ack 1 win 1000
        30   > R 1:1(0)
        ",
    );
}

#[test]
fn rfc5961_3_2_rst_in_the_window_gets_a_challenge_ack() {
    established(
        "
        20   < R. 500:500(0) ack 1 win 0
        20   > . 1:1(0) ack 1
        20   < R 2:2(0) win 0
        20   > . 1:1(0) ack 1
        # The connection lives on.
        30   < P. 1:101(100) ack 1 win 1000
        30   % data 100
        30   > . 1:1(0) ack 101
        ",
    );
}

#[test]
fn rfc5961_3_2_rst_outside_the_window_is_ignored() {
    established(
        "
        20   < P. 1:101(100) ack 1 win 1000
        20   % data 100
        20   > . 1:1(0) ack 101
        # Behind RCV.NXT, and past the right edge (65536 bytes from 101).
        30   < R 100:100(0) win 0
        30   < R 65638:65638(0) win 0
        40   < P. 101:201(100) ack 1 win 1000
        40   % data 100
        40   > . 1:1(0) ack 201
        ",
    );
}

#[test]
fn rfc5961_3_2_syn_received_rst_in_the_window_gets_a_challenge_ack() {
    run("
        0    < S 0:0(0) win 65535 <mss 1000,sackOK,wscale 7>
        0    % incoming
        0    accept
        0    > S. 0:0(0) ack 1 win 65535 <mss 1000,sackOK,wscale 5>
        5    < R 300:300(0) win 0
        5    > . 1:1(0) ack 1 win 2048
        10   < . 1:1(0) ack 1 win 1000
        10   % established
        ");
}

#[test]
fn rfc5961_4_2_syn_in_the_window_gets_a_challenge_ack() {
    established(
        "
        20   < S 500:500(0) win 65535 <mss 1000>
        20   > . 1:1(0) ack 1
        # At RCV.NXT exactly, too, and their first SYN come again late.
        30   < S 1:1(0) win 65535 <mss 1000>
        30   > . 1:1(0) ack 1
        35   < S 0:0(0) win 65535 <mss 1000>
        35   > . 1:1(0) ack 1
        40   < P. 1:101(100) ack 1 win 1000
        40   % data 100
        40   > . 1:1(0) ack 101
        ",
    );
}

#[test]
fn rfc5961_4_2_syn_received_other_syn_gets_a_challenge_ack() {
    run("
        0    < S 0:0(0) win 65535 <mss 1000,sackOK,wscale 7>
        0    % incoming
        0    accept
        0    > S. 0:0(0) ack 1 win 65535 <mss 1000,sackOK,wscale 5>
        5    < S 400:400(0) win 65535 <mss 1000>
        5    > . 1:1(0) ack 1 win 2048
        10   < . 1:1(0) ack 1 win 1000
        10   % established
        ");
}

#[test]
fn rfc5961_5_2_ack_of_data_never_sent_is_dropped_with_an_ack() {
    established(
        "
        20   send 100
        20   > P. 1:101(100) ack 1
        # It acknowledges 400 bytes we never sent: its data and window are not taken.
        25   < P. 1:101(100) ack 500 win 0
        25   > . 101:101(0) ack 1
        30   < . 1:1(0) ack 101 win 1000
        40   < P. 1:101(100) ack 101 win 1000
        40   % data 100
        40   > . 101:101(0) ack 101
        50   send 100
        50   > P. 101:201(100) ack 101
        60   < . 101:101(0) ack 201 win 1000
        ",
    );
}

#[test]
fn rfc5961_5_2_ack_older_than_the_window_is_dropped_with_an_ack() {
    // SEG.ACK below SND.UNA - MAX.SND.WND: dropped, data and all, and answered with an ACK.
    established(
        "
        20   < P. 1:101(100) ack -200000 win 1000
        20   > . 1:1(0) ack 1
        30   < P. 1:101(100) ack 1 win 1000
        30   % data 100
        30   > . 1:1(0) ack 101
        ",
    );
}
