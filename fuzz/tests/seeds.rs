//! The harness reaches what it is meant to: the seeds open connections, get UDP through
//! and are answered. Without these checks a harness can fuzz nothing but its own parser.

use smoltcp::wire::TcpControl;
use std::fs;
use std::path::PathBuf;
use wg_netstack_fuzz::packets::tcp;
use wg_netstack_fuzz::{datagram_target, encode, tag, Seen, World, FIX, NO_POLL};

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .map(|path| (path.file_name().unwrap().to_string_lossy().into_owned(), fs::read(&path).unwrap()))
        .collect();
    files.sort();
    files
}

fn seed(target: &str, name: &str) -> Vec<u8> {
    corpus(target).into_iter().find(|(file, _)| file == name).unwrap_or_else(|| panic!("no seed {target}/{name}")).1
}

/// What the `inner` target sees for one input, on a fresh world.
fn inner(name: &str) -> (Seen, usize) {
    let mut world = World::new();
    let (before, to_client) = (world.seen, world.to_client);
    world.run(&seed("inner", name));
    let seen = Seen {
        datagrams: world.seen.datagrams - before.datagrams,
        tcp_opened: world.seen.tcp_opened - before.tcp_opened,
        tcp_closed: world.seen.tcp_closed - before.tcp_closed,
        udp: world.seen.udp - before.udp,
    };
    (seen, world.to_client - to_client)
}

#[test]
fn every_seed_runs() {
    for (_, input) in corpus("datagram") {
        datagram_target(&input);
    }
    let mut world = World::new();
    for (_, input) in corpus("inner") {
        world.run(&input);
    }
}

#[test]
fn a_real_initiation_is_answered_once() {
    assert_eq!(datagram_target(&seed("datagram", "handshake")).datagrams, 1);
    assert_eq!(datagram_target(&seed("datagram", "initiation-replayed")).datagrams, 1);
}

#[test]
fn tcp_seeds_open_connections_past_the_handshake() {
    for name in ["tcp-v4", "tcp-v6"] {
        let (seen, to_client) = inner(name);
        assert_eq!(seen.tcp_opened, 1, "{name}: {seen:?}");
        assert!(to_client >= 3, "{name}: SYN-ACK and ACKs reach the client ({to_client})");
    }
    assert_eq!(inner("tcp-reset").0.tcp_closed, 1);
    assert!(inner("tcp-syns-in-one-batch").1 >= 40, "a SYN-ACK for each SYN");
}

#[test]
fn udp_and_ping_seeds_get_through() {
    assert_eq!(inner("udp-v4").0.udp, 1);
    assert_eq!(inner("udp-v6").0.udp, 1);
    assert_eq!(inner("udp-spoofed-source").0.udp, 0);
    assert_eq!(inner("ping-v4").1, 1);
    assert_eq!(inner("ping-v6").1, 1);
}

/// Found by fuzzing `inner`: after a wait past the session's lifetime, the server's
/// retransmissions crossed the new handshake and the client dropped them, as a real
/// client does. The harness took that for a bug in the server.
#[test]
fn datagrams_crossing_a_rekey_are_dropped_by_the_client() {
    let server = "93.184.216.34:80".parse().unwrap();
    let mut steps: Vec<_> = (0..10u16)
        .map(|i| {
            let client = format!("10.0.0.2:{}", 41000 + i).parse().unwrap();
            (tag(0, FIX | NO_POLL), tcp(client, server, TcpControl::Syn, 7, None, &[]))
        })
        .collect();
    steps.push((tag(7, NO_POLL), vec![0; 64]));
    steps.push((tag(5, FIX), vec![0xab; 64]));
    World::new().run(&encode(&steps));
}
