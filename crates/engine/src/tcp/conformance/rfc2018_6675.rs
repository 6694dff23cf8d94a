//! SACK: the receiver reports what it holds past a hole, the most recent block first and
//! up to four blocks (RFC 2018 §4; four fit without timestamps); the sender sends again
//! only what was not SACKed (RFC 6675), once RACK (RFC 8985) says it was lost.

use super::rfc9293::established;
use super::run;

#[test]
fn rfc2018_4_receiver_reports_the_most_recent_block_first() {
    established(
        "
        20   < P. 1001:2001(1000) ack 1 win 1000
        20   > . 1:1(0) ack 1 <sack 1001:2001>
        20   < P. 3001:4001(1000) ack 1 win 1000
        20   > . 1:1(0) ack 1 <sack 3001:4001 1001:2001>
        20   < P. 2001:3001(1000) ack 1 win 1000
        20   > . 1:1(0) ack 1 <sack 1001:4001>
        20   < P. 1:1001(1000) ack 1 win 1000
        20   % data 4000
        20   > . 1:1(0) ack 4001
        ",
    );
}

#[test]
fn rfc2018_4_at_most_four_blocks_without_timestamps() {
    established(
        "
        20   < P. 1001:1101(100) ack 1 win 1000
        20   > . 1:1(0) ack 1 <sack 1001:1101>
        20   < P. 2001:2101(100) ack 1 win 1000
        20   > . 1:1(0) ack 1 <sack 2001:2101 1001:1101>
        20   < P. 3001:3101(100) ack 1 win 1000
        20   > . 1:1(0) ack 1 <sack 3001:3101 2001:2101 1001:1101>
        20   < P. 4001:4101(100) ack 1 win 1000
        20   > . 1:1(0) ack 1 <sack 4001:4101 3001:3101 2001:2101 1001:1101>
        20   < P. 5001:5101(100) ack 1 win 1000
        20   > . 1:1(0) ack 1 <sack 5001:5101 4001:4101 3001:3101 2001:2101>
        # The oldest block came back: it goes first again.
        20   < P. 1001:1101(100) ack 1 win 1000
        20   > . 1:1(0) ack 1 <sack 1001:1101 5001:5101 4001:4101 3001:3101>
        ",
    );
}

#[test]
fn rfc2018_2_no_sack_unless_permitted() {
    run("
        0    < S 0:0(0) win 65535 <mss 1000,wscale 7>
        0    % incoming
        0    accept
        0    > S. 0:0(0) ack 1 win 65535 <mss 1000,wscale 5>
        10   < . 1:1(0) ack 1 win 1000
        10   % established
        20   < P. 1001:2001(1000) ack 1 win 1000
        20   > . 1:1(0) ack 1
        # Nor are their blocks taken: no RACK loss, a tail-loss probe instead (2 SRTT).
        30   send 3000
        30   > . 1:1001(1000) ack 1
        30   > . 1001:2001(1000) ack 1
        30   > P. 2001:3001(1000) ack 1
        40   < . 1:1(0) ack 1 win 1000 <sack 1001:3001>
        50   > P. 2001:3001(1000) ack 1
        230  > . 1:1001(1000) ack 1
        240  < . 1:1(0) ack 3001 win 1000
        ");
}

#[test]
fn rfc6675_only_the_hole_is_sent_again() {
    established(
        "
        20    send 4000
        20    > . 1:1001(1000) ack 1
        20    > . 1001:2001(1000) ack 1
        20    > . 2001:3001(1000) ack 1
        20    > P. 3001:4001(1000) ack 1
        30    < . 1:1(0) ack 1 win 1000 <sack 1001:4001>
        # RACK: lost once a quarter of the minimum RTT (2.5 ms) has passed since a later segment arrived.
        32.5  > . 1:1001(1000) ack 1
        42.5  < . 1:1(0) ack 4001 win 1000
        ",
    );
}

#[test]
fn rfc2018_8_sack_blocks_beyond_what_was_sent_are_ignored() {
    established(
        "
        20    send 2000
        20    > . 1:1001(1000) ack 1
        20    > P. 1001:2001(1000) ack 1
        # A block past SND.NXT, and one below SND.UNA: neither counts.
        30    < . 1:1(0) ack 1 win 1000 <sack 1001:9001 -500:-100>
        40    > P. 1001:2001(1000) ack 1
        50    < . 1:1(0) ack 2001 win 1000
        ",
    );
}

#[test]
fn rfc2018_4_our_data_carries_the_sack_blocks_too() {
    established(
        "
        20   < P. 1001:2001(1000) ack 1 win 1000
        20   > . 1:1(0) ack 1 <sack 1001:2001>
        30   send 100
        30   > P. 1:101(100) ack 1 <sack 1001:2001>
        40   < P. 1:1001(1000) ack 101 win 1000
        40   % data 2000
        40   > . 101:101(0) ack 2001
        ",
    );
}

#[test]
fn rfc2018_4_a_segment_across_held_blocks_fills_the_gaps_between_them() {
    // Held: 1001:1101 and 1201:1301. 901:1401 covers both and the gaps around them: one
    // block; the hole before it filled, every byte comes out once, in order.
    established(
        "
        20   < P. 1001:1101(100) ack 1 win 1000
        20   > . 1:1(0) ack 1 <sack 1001:1101>
        20   < P. 1201:1301(100) ack 1 win 1000
        20   > . 1:1(0) ack 1 <sack 1201:1301 1001:1101>
        20   < P. 901:1401(500) ack 1 win 1000
        20   > . 1:1(0) ack 1 <sack 901:1401>
        20   < P. 1:901(900) ack 1 win 1000
        20   % data 1400
        20   > . 1:1(0) ack 1401
        ",
    );
}

#[test]
fn rfc2018_4_in_order_data_overlapping_what_is_held_comes_out_once() {
    established(
        "
        20   < P. 1001:2001(1000) ack 1 win 1000
        20   > . 1:1(0) ack 1 <sack 1001:2001>
        20   < P. 1:1501(1500) ack 1 win 1000
        20   % data 2000
        20   > . 1:1(0) ack 2001
        ",
    );
}
