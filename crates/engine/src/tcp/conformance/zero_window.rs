//! Zero-window probing (RFC 9293 §3.8.6.1, RFC 1122 4.2.2.17): a sender facing a shut
//! window probes it after an RTO, then ever less often for as long as the peer answers.

use super::rfc9293::{established, OPEN};
use super::{config, run_with};
use crate::ffi::DEFAULT_TIMEOUTS;
use crate::tcp::TcpConfig;

#[test]
fn rfc9293_3_8_6_1_zero_window_is_probed_with_backoff() {
    established(
        "
        20     < . 1:1(0) ack 1 win 0
        30     send 1000
        # The probe: an old sequence number, so the peer answers with its window.
        230    > . 0:0(0) ack 1 win 2048
        240    < . 1:1(0) ack 1 win 0
        2230   > . 0:0(0) ack 1 win 2048
        2240   < . 1:1(0) ack 1 win 0
        6230   > . 0:0(0) ack 1 win 2048
        6240   < . 1:1(0) ack 1 win 0
        14230  > . 0:0(0) ack 1 win 2048
        14240  < . 1:1(0) ack 1 win 0
        30230  > . 0:0(0) ack 1 win 2048
        # The window opens in the answer: the data goes at once.
        30240  < . 1:1(0) ack 1 win 1000
        30240  > P. 1:1001(1000) ack 1
        30250  < . 1:1(0) ack 1001 win 1000
        ",
    );
}

#[test]
fn rfc9293_3_8_6_1_window_update_ends_the_probing() {
    established(
        "
        20     < . 1:1(0) ack 1 win 0
        30     send 1000
        230    > . 0:0(0) ack 1 win 2048
        240    < . 1:1(0) ack 1 win 0
        # An unprompted window update.
        500    < . 1:1(0) ack 1 win 1000
        500    > P. 1:1001(1000) ack 1
        510    < . 1:1(0) ack 1001 win 0
        # Shut again: probing starts over from one RTO.
        520    send 1000
        720    > . 1000:1000(0) ack 1 win 2048
        730    < . 1:1(0) ack 1001 win 1000
        730    > P. 1001:2001(1000) ack 1
        740    < . 1:1(0) ack 2001 win 1000
        ",
    );
}

#[test]
fn rfc1122_4_2_2_17_zero_window_data_is_not_sent_into_the_shut_window() {
    // Nothing but probes while the window is shut, however long it stays shut.
    established(
        "
        20     < . 1:1(0) ack 1 win 0
        30     send 5000
        230    > . 0:0(0) ack 1 win 2048
        2230   > . 0:0(0) ack 1 win 2048
        6230   > . 0:0(0) ack 1 win 2048
        6235   < . 1:1(0) ack 1 win 8
        6235   > . 1:1001(1000) ack 1
        6245   < . 1:1(0) ack 1001 win 0
        6245   abort
        6245   > R. 1001:1001(0) ack 1
        6245   % closed aborted
        ",
    );
}

#[test]
fn rfc1122_4_2_2_17_probes_back_off_to_a_minute_and_no_keepalive_joins_them() {
    // With keep-alive after 60 s (the default): the zero-window probes are what watch the
    // peer; their interval stops doubling at 64 s.
    let config = TcpConfig { timeouts: DEFAULT_TIMEOUTS, ..config() };
    run_with(
        config,
        &format!(
            "{OPEN}
            20      < . 1:1(0) ack 1 win 0
            30      send 1000
            230     > . 0:0(0) ack 1 win 2048
            240     < . 1:1(0) ack 1 win 0
            2230    > . 0:0(0) ack 1 win 2048
            2240    < . 1:1(0) ack 1 win 0
            6230    > . 0:0(0) ack 1 win 2048
            6240    < . 1:1(0) ack 1 win 0
            14230   > . 0:0(0) ack 1 win 2048
            14240   < . 1:1(0) ack 1 win 0
            30230   > . 0:0(0) ack 1 win 2048
            30240   < . 1:1(0) ack 1 win 0
            62230   > . 0:0(0) ack 1 win 2048
            62240   < . 1:1(0) ack 1 win 0
            126230  > . 0:0(0) ack 1 win 2048
            126240  < . 1:1(0) ack 1 win 0
            190230  > . 0:0(0) ack 1 win 2048
            190240  < . 1:1(0) ack 1 win 1000
            190240  > P. 1:1001(1000) ack 1
            190250  < . 1:1(0) ack 1001 win 1000
            190250  abort
            190250  > R. 1001:1001(0) ack 1
            190250  % closed aborted
            "
        ),
    );
}

#[test]
fn rfc1122_4_2_2_17_a_peer_silent_to_the_probes_is_given_up_after_the_user_timeout() {
    established(
        "
        20      < . 1:1(0) ack 1 win 0
        30      send 1000
        230     > . 0:0(0) ack 1 win 2048
        240     < . 1:1(0) ack 1 win 0
        2230    > . 0:0(0) ack 1 win 2048
        6230    > . 0:0(0) ack 1 win 2048
        14230   > . 0:0(0) ack 1 win 2048
        30230   > . 0:0(0) ack 1 win 2048
        # 60 s since they were last heard from, at the next probe's time.
        62230   > R. 1:1(0) ack 1 win 0
        62230   % closed timeout
        ",
    );
}

#[test]
fn rfc1122_4_2_2_17_a_peer_heard_in_the_same_instant_as_a_probe_answered_it() {
    // One turn takes the datagrams and fires the timers at one clock reading, so an answer
    // can carry the very time its probe left: that peer was heard since the probe. The next
    // probe, 64 s later (past the 60 s user timeout), is sent, not given up on; the one
    // after it, unanswered, is.
    established(
        "
        20      < . 1:1(0) ack 1 win 0
        30      send 1000
        230     > . 0:0(0) ack 1 win 2048
        240     < . 1:1(0) ack 1 win 0
        2230    > . 0:0(0) ack 1 win 2048
        2240    < . 1:1(0) ack 1 win 0
        6230    > . 0:0(0) ack 1 win 2048
        6240    < . 1:1(0) ack 1 win 0
        14230   > . 0:0(0) ack 1 win 2048
        14240   < . 1:1(0) ack 1 win 0
        30230   > . 0:0(0) ack 1 win 2048
        30240   < . 1:1(0) ack 1 win 0
        62230   > . 0:0(0) ack 1 win 2048
        62230   < . 1:1(0) ack 1 win 0
        126230  > . 0:0(0) ack 1 win 2048
        190230  > R. 1:1(0) ack 1 win 0
        190230  % closed timeout
        ",
    );
}
