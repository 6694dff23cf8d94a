//! RFC 1122 host requirements our other scripts do not already hold: delayed ACKs
//! (4.2.3.2, as RFC 9293 §3.8.6.3), keep-alive (4.2.3.6, RFC 9293 §3.8.4), the receiver's
//! silly window avoidance (4.2.3.3, RFC 9293 §3.8.6.2.2), a host that reads no more, and
//! ICMP destination unreachable during a connect (4.2.3.9, RFC 5461 §4.1, RFC 5927 §4.1).

use super::rfc9293::{established, OPEN};
use super::{config, ipv6, run, run_between, run_with};
use crate::ffi::DEFAULT_TIMEOUTS;
use crate::tcp::TcpConfig;

#[test]
fn rfc1122_4_2_3_2_every_second_full_segment_is_acked_and_a_lone_one_waits() {
    // The first sixteen segments are acknowledged one by one (so the sender's window opens
    // fast, as Linux's quick ACKs); then every second one, a lone one within 20 ms, and
    // short ones once two full segments' worth is in.
    let mut script = String::new();
    let mut seq = 1;
    for i in 0..16 {
        script += &format!(
            "{t} < P. {seq}:{end}(1000) ack 1 win 1000\n{t} % data 1000\n{t} > . 1:1(0) ack {end}\n",
            t = 20 + i,
            end = seq + 1000
        );
        seq += 1000;
    }
    script += &format!("40 < P. {seq}:{end}(1000) ack 1 win 1000\n40 % data 1000\n", end = seq + 1000);
    seq += 1000;
    script += &format!("45 < P. {seq}:{end}(1000) ack 1 win 1000\n45 % data 1000\n45 > . 1:1(0) ack {end}\n", end = seq + 1000);
    seq += 1000;
    script += &format!("50 < P. {seq}:{end}(1000) ack 1 win 1000\n50 % data 1000\n70 > . 1:1(0) ack {end}\n", end = seq + 1000);
    seq += 1000;
    // Smaller segments: an ACK once two full segments' worth has arrived.
    for (i, t) in (80..84).enumerate() {
        script += &format!("{t} < P. {seq}:{end}(600) ack 1 win 1000\n{t} % data 600\n", end = seq + 600);
        seq += 600;
        if i == 3 {
            script += &format!("{t} > . 1:1(0) ack {seq}\n");
        }
    }
    established(&script);
}

#[test]
fn rfc1122_4_2_3_6_keepalive_probes_an_idle_peer_and_gives_up_on_a_dead_one() {
    // After 60 s idle a probe (an old sequence number the peer must answer), then one every
    // 20 s; six unanswered and the connection is reset.
    let config = TcpConfig { timeouts: DEFAULT_TIMEOUTS, ..config() };
    run_with(
        config,
        &format!(
            "{OPEN}
            60010   > . 0:0(0) ack 1 win 2048
            60020   < . 1:1(0) ack 1 win 1000
            120020  > . 0:0(0) ack 1 win 2048
            140020  > . 0:0(0) ack 1 win 2048
            160020  > . 0:0(0) ack 1 win 2048
            180020  > . 0:0(0) ack 1 win 2048
            200020  > . 0:0(0) ack 1 win 2048
            220020  > . 0:0(0) ack 1 win 2048
            240020  > R. 1:1(0) ack 1
            240020  % closed timeout
            "
        ),
    );
}

#[test]
fn rfc1122_4_2_3_3_window_reopens_only_by_a_worthwhile_amount() {
    // A 3000-byte window (no scaling): the update goes once the host has made room for
    // min(half the buffer, two segments) = 1500 bytes, not before.
    run_with(
        TcpConfig { max_receive_window: 3000, ..config() },
        "
        0    < S 0:0(0) win 65535 <mss 1000,sackOK,wscale 7>
        0    % incoming
        0    accept
        0    > S. 0:0(0) ack 1 win 3000 <mss 1000,sackOK,wscale 0>
        10   < . 1:1(0) ack 1 win 1000
        10   % established
        20   < P. 1:3001(3000) ack 1 win 1000
        20   % data 3000
        20   > . 1:1(0) ack 3001 win 0
        30   consume 1000
        40   consume 500
        40   > . 1:1(0) ack 3001 win 1500
        50   < P. 3001:4501(1500) ack 1 win 1000
        50   % data 1500
        50   > . 1:1(0) ack 4501 win 0
        ",
    );
}

#[test]
fn rfc9293_3_10_7_4_data_the_host_discards_is_acked_and_the_window_stays_open() {
    established(
        "
        20   discard
        20   < P. 1:1001(1000) ack 1 win 1000
        20   > . 1:1(0) ack 1001 win 2048
        30   < F. 1001:1001(0) ack 1 win 1000
        30   % eof
        30   > . 1:1(0) ack 1002
        ",
    );
}

#[test]
fn rfc1122_4_2_3_6_no_keepalive_outside_the_synchronized_states_that_wait_on_the_peer() {
    // TIME-WAIT with keep-alive after 60 s: it ends after its 60 s, silently.
    let config = TcpConfig { timeouts: DEFAULT_TIMEOUTS, ..config() };
    run_with(
        config,
        &format!(
            "{OPEN}
            20      shutdown
            20      > F. 1:1(0) ack 1
            30      < F. 1:1(0) ack 2 win 1000
            30      % eof
            30      % closed closed
            30      > . 2:2(0) ack 2
            "
        ),
    );
}

const SYN_SENT: &str = "
    0    connect
    0    > S 0:0(0) win 65535 <mss 1000,sackOK,TS val 0 ecr 0,wscale 5>
";

#[test]
fn rfc1122_4_2_3_9_an_icmp_unreachable_for_our_syn_ends_the_connect_at_once() {
    // Host unreachable says the host, net unreachable the network, port unreachable that no
    // one listens: refused, as a RST would say (Linux: ECONNREFUSED, what a firewall's
    // REJECT gives). No SYN is retransmitted after it (the script ends: a minute must pass
    // in silence).
    for (icmp, reason) in [("host", "host-unreachable"), ("port", "refused"), ("net", "net-unreachable")] {
        run(&format!(
            "{SYN_SENT}
            30   < icmp {icmp}
            30   % closed {reason}
            "
        ));
    }
}

#[test]
fn rfc1122_4_2_3_9_over_ipv6_an_icmpv6_unreachable_ends_the_connect_too() {
    for (icmp, reason) in [("host", "host-unreachable"), ("port", "refused"), ("net", "net-unreachable")] {
        run_between(
            ipv6(),
            config(),
            &format!(
                "0    connect
                0    > S 0:0(0) win 65535 <mss 980,sackOK,TS val 0 ecr 0,wscale 5>
                30   < icmp {icmp}
                30   % closed {reason}
                "
            ),
        );
    }
}

#[test]
fn rfc5927_4_1_an_icmp_unreachable_quoting_another_sequence_number_is_ignored() {
    // A forged (or stale) error must guess our SYN's sequence number; this one does not:
    // the SYN is retransmitted at its RTO and the connect goes on.
    run(&format!(
        "{SYN_SENT}
        30   < icmp host seq 1
        30   < icmp net seq 4294967295
        1000 > S 0:0(0) <...>
        1010 < S. 0:0(0) ack 1 win 65535 <mss 1000>
        1010 > . 1:1(0) ack 1 win 65535
        1010 % established
        "
    ));
}

#[test]
fn rfc1122_4_2_3_9_an_icmp_unreachable_after_the_connect_does_not_end_the_connection() {
    // Only a connect is ended: afterwards such errors are soft (the connection's own
    // timers decide), whether they quote our SYN or the data we send next.
    run(&format!(
        "{SYN_SENT}
        10   < S. 0:0(0) ack 1 win 65535 <mss 1000>
        10   > . 1:1(0) ack 1 win 65535
        10   % established
        20   < icmp host
        20   < icmp net seq 1
        30   send 10
        30   > P. 1:11(10) ack 1
        40   < . 1:1(0) ack 11 win 65535
        "
    ));
}
