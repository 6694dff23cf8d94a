//! RFC 5681 (congestion control) where it fixes exact segments, whatever the congestion
//! controller: the initial window (RFC 6928), growth by bytes acknowledged in slow start,
//! and one segment after a retransmission timeout (the loss window, §3.1).

use super::rfc9293::established;

#[test]
fn rfc5681_3_1_after_a_timeout_one_segment_goes() {
    established(
        "
        20    send 3000
        20    > . 1:1001(1000) ack 1
        20    > . 1001:2001(1000) ack 1
        20    > P. 2001:3001(1000) ack 1
        40    > P. 2001:3001(1000) ack 1
        220   > . 1:1001(1000) ack 1
        230   < . 1:1(0) ack 1001 win 1000
        230   > . 1001:2001(1000) ack 1
        230   > P. 2001:3001(1000) ack 1
        240   < . 1:1(0) ack 3001 win 1000
        ",
    );
}

#[test]
fn rfc6928_initial_window_is_ten_segments() {
    // And slow start grows it by every byte acknowledged (RFC 5681 §3.1, with RFC 3465's
    // byte counting), a segment acknowledged in part included: 999 bytes of ACK let two go.
    established(
        "
        20   send 12000
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
        30   < . 1:1(0) ack 1000 win 1000
        30~40 > . 10001:11001(1000) ack 1
        30~40 > P. 11001:12001(1000) ack 1
        40   < . 1:1(0) ack 12001 win 1000
        ",
    );
}
