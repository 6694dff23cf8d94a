//! Windows: MSS and window scale honoured both ways (RFC 9293 §3.7.1, RFC 7323 §2), the
//! rule that picks which segment may update the send window (SND.WL1/WL2, RFC 9293
//! §3.10.7.4), a window the peer shrinks (RFC 9293 §3.8.6.2.2), and our own window, which
//! never moves its right edge back and closes as the host holds data unread.

use super::rfc9293::established;
use super::{config, ipv6, run, run_between, run_with};

#[test]
fn rfc9293_3_7_1_mss_honoured_both_ways() {
    run("
        0    < S 0:0(0) win 65535 <mss 500>
        0    % incoming
        0    accept
        0    > S. 0:0(0) ack 1 win 65535 <mss 1000>
        10   < . 1:1(0) ack 1 win 65535
        10   % established
        20   send 1200
        20   > . 1:501(500) ack 1
        20   > . 501:1001(500) ack 1
        20   > P. 1001:1201(200) ack 1
        30   < . 1:1(0) ack 1201 win 65535
        # Theirs may be as large as our MSS.
        40   < P. 1:1001(1000) ack 1201 win 65535
        40   % data 1000
        40   > . 1201:1201(0) ack 1001
        ");
}

#[test]
fn rfc9293_3_7_1_no_mss_option_means_536() {
    run("
        0    < S 0:0(0) win 65535
        0    % incoming
        0    accept
        0    > S. 0:0(0) ack 1 win 65535 <mss 1000>
        10   < . 1:1(0) ack 1 win 65535
        10   % established
        20   send 1000
        20   > . 1:537(536) ack 1
        20   > P. 537:1001(464) ack 1
        30   < . 1:1(0) ack 1001 win 65535
        ");
}

#[test]
fn rfc7323_2_2_window_scale_honoured_both_ways() {
    established(
        "
        # Their window: 8 << 7 = 1024 bytes, room for one segment.
        20   < . 1:1(0) ack 1 win 8
        30   send 3000
        30   > . 1:1001(1000) ack 1
        40   < . 1:1(0) ack 1001 win 8
        40   > . 1001:2001(1000) ack 1
        # Ours: 65536 bytes, less what the host holds, >> 5.
        50   < P. 1:1001(1000) ack 2001 win 24
        50   % data 1000
        50   > P. 2001:3001(1000) ack 1001 win 2016
        60   < . 1001:1001(0) ack 3001 win 24
        ",
    );
}

#[test]
fn rfc7323_2_2_no_scaling_unless_both_offer() {
    run("
        0    < S 0:0(0) win 65535 <mss 1000,sackOK>
        0    % incoming
        0    accept
        0    > S. 0:0(0) ack 1 win 65535 <mss 1000,sackOK>
        10   < . 1:1(0) ack 1 win 1500
        10   % established
        20   send 3000
        20   > . 1:1001(1000) ack 1
        30   < P. 1:1001(1000) ack 1001 win 1500
        30   % data 1000
        30   > . 1001:2001(1000) ack 1001 win 64536
        40   < . 1001:1001(0) ack 2001 win 1500
        40   > P. 2001:3001(1000) ack 1001
        50   < . 1001:1001(0) ack 3001 win 1500
        ");
}

#[test]
fn rfc7323_2_2_syn_ack_window_is_never_scaled() {
    run("
        0    connect
        0    > S 0:0(0) win 65535 <mss 1000,sackOK,TS val 0 ecr 0,wscale 5>
        10   < S. 0:0(0) ack 1 win 1500 <mss 1000,sackOK,wscale 7>
        10   > . 1:1(0) ack 1 win 2048
        10   % established
        # 1500 bytes, not 1500 << 7.
        20   send 3000
        20   > . 1:1001(1000) ack 1
        # Later windows are scaled: 1500 << 7.
        30   < . 1:1(0) ack 1001 win 1500
        30   > . 1001:2001(1000) ack 1
        30   > P. 2001:3001(1000) ack 1
        40   < . 1:1(0) ack 3001 win 1500
        ");
}

#[test]
fn rfc9293_3_10_7_4_window_update_only_from_a_newer_segment() {
    // SND.WL1 < SEG.SEQ, or SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK: a reordered older
    // segment does not reopen a window a newer one shut.
    established(
        "
        20   < P. 101:201(100) ack 1 win 0
        20   > . 1:1(0) ack 1 <sack 101:201>
        20   < P. 1:101(100) ack 1 win 1000
        20   % data 200
        20   > . 1:1(0) ack 201
        # That older segment's window is not taken: still shut.
        30   send 1000
        230  > . 0:0(0) ack 201
        240  < . 201:201(0) ack 1 win 1000
        240  > P. 1:1001(1000) ack 201
        250  < . 201:201(0) ack 1001 win 1000
        ",
    );
}

#[test]
fn rfc9293_3_10_7_4_window_update_from_the_same_segment_with_a_newer_ack() {
    established(
        "
        20   send 2000
        20   > . 1:1001(1000) ack 1
        20   > P. 1001:2001(1000) ack 1
        30   < . 1:1(0) ack 1001 win 0
        # Same SEG.SEQ, newer SEG.ACK: the window is taken.
        40   < . 1:1(0) ack 2001 win 8
        50   send 1000
        50   > P. 2001:3001(1000) ack 1
        60   < . 1:1(0) ack 3001 win 8
        ",
    );
}

#[test]
fn rfc9293_3_8_6_2_2_a_window_the_peer_shrinks_is_honoured() {
    established(
        "
        # 3000 bytes of window: three segments go.
        20   < . 1:1(0) ack 1 win 24
        30   send 5000
        30   > . 1:1001(1000) ack 1
        30   > . 1001:2001(1000) ack 1
        30   > . 2001:3001(1000) ack 1
        # The right edge moves back from 3073 to 2025: nothing new goes past it.
        40   < . 1:1(0) ack 1001 win 8
        50   < . 1:1(0) ack 3001 win 16
        50   > . 3001:4001(1000) ack 1
        50   > P. 4001:5001(1000) ack 1
        60   < . 1:1(0) ack 5001 win 16
        ",
    );
}

/// Our window when the host holds what it got: it closes by exactly that, reopens when
/// the host consumes, and data past it is refused with an ACK.
#[test]
fn rfc9293_3_8_6_2_2_our_window_closes_as_the_host_holds_data() {
    run_with(
        super::super::TcpConfig { max_receive_window: 3000, ..config() },
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
        20   < P. 1001:2001(1000) ack 1 win 1000
        20   % data 1000
        20   > . 1:1(0) ack 2001 win 1000
        20   < P. 2001:3001(1000) ack 1 win 1000
        20   % data 1000
        20   > . 1:1(0) ack 3001 win 0
        # Past the shut window: refused, and acknowledged.
        30   < P. 3001:3101(100) ack 1 win 1000
        30   > . 1:1(0) ack 3001 win 0
        # The host reads: the window update goes out.
        40   consume 3000
        40   > . 1:1(0) ack 3001 win 3000
        ",
    );
}

#[test]
fn rfc9293_3_8_6_2_1_sender_holds_back_a_silly_segment() {
    // 1200 bytes of window and 3000 to send: one full segment goes; the 200 left over wait
    // for the window to open (an ACK is due), as long as that is not the last of the data.
    established(
        "
        20   < . 1:1(0) ack 1 win 9
        30   send 3000
        30   > . 1:1001(1000) ack 1
        40   < . 1:1(0) ack 1001 win 16
        40   > . 1001:2001(1000) ack 1
        40   > P. 2001:3001(1000) ack 1
        50   < . 1:1(0) ack 3001 win 16
        ",
    );
}

#[test]
fn rfc9293_3_7_1_mss_over_ipv6_is_the_mtu_less_60() {
    // MTU 1040: 980 bytes of payload beside 40 of IPv6 and 20 of TCP header.
    run_between(
        ipv6(),
        config(),
        "
        0    < S 0:0(0) win 65535 <mss 1440>
        0    % incoming
        0    accept
        0    > S. 0:0(0) ack 1 win 65535 <mss 980>
        10   < . 1:1(0) ack 1 win 65535
        10   % established
        20   send 1000
        20   > . 1:981(980) ack 1
        20   > P. 981:1001(20) ack 1
        30   < . 1:1(0) ack 1001 win 65535
        ",
    );
}

#[test]
fn receive_window_grows_with_what_the_host_reads_per_round_trip() {
    // As Linux's receive-buffer autotuning: the host read 20000 bytes in a round trip (10 ms)
    // and the rate is rising, so the buffer grows to 4 x 20000 + 16 segments = 96000 bytes.
    established(
        "
        20   < P. 1:1001(1000) ack 1 win 1000
        20   < P. 1001:2001(1000) ack 1 win 1000
        20   < P. 2001:3001(1000) ack 1 win 1000
        20   < P. 3001:4001(1000) ack 1 win 1000
        20   < P. 4001:5001(1000) ack 1 win 1000
        20   < P. 5001:6001(1000) ack 1 win 1000
        20   < P. 6001:7001(1000) ack 1 win 1000
        20   < P. 7001:8001(1000) ack 1 win 1000
        20   < P. 8001:9001(1000) ack 1 win 1000
        20   < P. 9001:10001(1000) ack 1 win 1000
        20   < P. 10001:11001(1000) ack 1 win 1000
        20   < P. 11001:12001(1000) ack 1 win 1000
        20   < P. 12001:13001(1000) ack 1 win 1000
        20   < P. 13001:14001(1000) ack 1 win 1000
        20   < P. 14001:15001(1000) ack 1 win 1000
        20   < P. 15001:16001(1000) ack 1 win 1000
        20   < P. 16001:17001(1000) ack 1 win 1000
        20   < P. 17001:18001(1000) ack 1 win 1000
        20   < P. 18001:19001(1000) ack 1 win 1000
        20   < P. 19001:20001(1000) ack 1 win 1000
        20   % data 20000
        # One batch, one ACK: (65536 - 20000) >> 5.
        20   > . 1:1(0) ack 20001 win 1423
        20   consume 10000
        20   > . 1:1(0) ack 20001 win 1735
        # A round trip after the host began reading: 96000 >> 5.
        31   consume 10000
        31   > . 1:1(0) ack 20001 win 3000
        ",
    );
}
