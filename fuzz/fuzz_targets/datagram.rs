//! Arbitrary UDP datagrams from arbitrary endpoints into a fresh server, with polls and
//! time passing in between: what anyone on the network can send. See `datagram_target`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    wg_netstack_fuzz::datagram_target(input);
});
