//! RFC 6528: initial sequence numbers. ISN = M + F(4-tuple, secret): for one 4-tuple, the
//! ISN moves with M, a clock ticking every 4 µs (§3), so a later incarnation starts later.

use super::run;

#[test]
fn rfc6528_3_isn_of_one_4_tuple_follows_a_4_microsecond_clock() {
    run("
        0     < S 0:0(0) win 65535 <mss 1000>
        0     % incoming
        0     accept
        0     > S. 0:0(0) ack 1 win 65535 <mss 1000>
        10    < R 1:1(0) win 0
        10    % closed reset
        # One second later, the same 4-tuple: 250,000 ticks on.
        1000  < S 0:0(0) win 65535 <mss 1000>
        1000  % incoming
        1000  accept
        1000  > S. 0:0(0) ack 1 win 65535 <mss 1000>
        1000  ? iss at 250000
        1010  < . 1:1(0) ack 1 win 65535
        1010  % established
        ");
}
