//! RFC 5681 (congestion control) where it fixes exact segments, whatever the congestion
//! controller: after a retransmission timeout, one segment (the loss window, §3.1).

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
