//! The table's limits (ours, not an RFC's: one peer must not exhaust the server): a SYN
//! past any of them gets a RST, and is counted.

use super::{config, run_with};
use crate::tcp::{Limits, TcpConfig};

fn refused_past(limits: Limits) {
    run_with(
        TcpConfig { limits, ..config() },
        "
        0    < S 0:0(0) win 65535 <mss 1000>
        0    > R. 0:0(0) ack 1
        0    ? total refusedOverLimit 1
        ",
    );
}

#[test]
fn limits_a_syn_past_the_half_open_limit_per_peer_gets_rst() {
    refused_past(Limits { half_open_per_peer: 0, ..config().limits });
}

#[test]
fn limits_a_syn_past_the_connection_limit_per_peer_gets_rst() {
    refused_past(Limits { connections_per_peer: 0, ..config().limits });
}

#[test]
fn limits_a_syn_past_the_connection_limit_gets_rst() {
    refused_past(Limits { connections: 0, ..config().limits });
}
