//! Writes the seed corpus: `cargo run --example seeds` (from fuzz/) fills corpus/datagram
//! and corpus/inner. Real handshake and data datagrams for the first; crafted TCP, UDP,
//! ICMP and IPv6 packets for the second. Handshakes use fresh ephemeral keys, so the
//! datagram seeds differ on every run; commit them only when they change on purpose.

use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};
use smoltcp::wire::{IpProtocol, TcpControl};
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use wg_netstack_fuzz::packets::{ip, ping, tcp, udp};
use wg_netstack_fuzz::{encode, now, server, tag, walk_events, ACK, CLIENT_ENDPOINT, CLIENT_KEY, FIX, NO_POLL, SERVER_KEY};

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn write(target: &str, name: &str, steps: &[(u8, Vec<u8>)]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), encode(steps)).unwrap();
}

/// Datagrams of a real session: the client's initiation, its keepalive after the
/// server's response, and a data message carrying a UDP packet.
fn session_datagrams() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut server = server();
    let server_public = PublicKey::from(&StaticSecret::from(SERVER_KEY));
    let mut client = Tunn::new(StaticSecret::from(CLIENT_KEY), server_public, None, None, 1, None);
    let mut buf = vec![0; 65_600];
    let TunnResult::WriteToNetwork(init) = client.format_handshake_initiation(&mut buf, false) else { panic!("no initiation") };
    let init = init.to_vec();
    server.receive(now(), CLIENT_ENDPOINT, &init);
    server.poll(now());
    let mut response = Vec::new();
    walk_events(server.events(), |_, datagram| response = datagram.to_vec(), &mut Vec::new());
    let TunnResult::WriteToNetwork(keepalive) = client.decapsulate(None, &response, &mut buf) else { panic!("no keepalive") };
    let keepalive = keepalive.to_vec();
    let packet = udp(addr("10.0.0.2:5353"), addr("192.0.2.200:53"), b"query");
    let TunnResult::WriteToNetwork(data) = client.encapsulate(&packet, &mut buf) else { panic!("no data") };
    (init, keepalive, data.to_vec())
}

fn datagram_seeds() {
    let (init, keepalive, data) = session_datagrams();
    let from = |endpoint: u8| tag(0, endpoint);
    write("datagram", "handshake", &[(from(0), init.clone())]);
    write("datagram", "handshake-keepalive-data", &[(from(0), init.clone()), (from(0), keepalive), (tag(2, 0), data.clone())]);
    // A roaming client, and a stranger replaying what it overheard.
    write("datagram", "handshake-roaming", &[(from(0), init.clone()), (tag(4, 3), data.clone())]);
    write("datagram", "replayed-by-stranger", &[(from(2), init.clone()), (from(2), data)]);
    // Two initiations in one batch; the second replays the first. (A flood past the rate
    // limit, answered with cookies, takes 100 of them: too slow an input to fuzz with.)
    write("datagram", "initiation-replayed", &[(tag(0, NO_POLL), init.clone()), (from(0), init.clone())]);
    // The shape of each message type, with indexes that name our peers.
    let message = |kind: u8, len: usize, receiver: u32| {
        let mut bytes = vec![0x5a; len];
        bytes[..4].copy_from_slice(&[kind, 0, 0, 0]);
        bytes[8..12].copy_from_slice(&receiver.to_le_bytes());
        bytes
    };
    write("datagram", "response-shape", &[(from(1), message(2, 92, 0x101))]);
    write("datagram", "cookie-shape", &[(from(1), message(3, 64, 0x101))]);
    write("datagram", "data-shape", &[(from(0), message(4, 32, 0x001)), (from(0), message(4, 64, 0x001))]);
    write("datagram", "short-and-unknown", &[(from(2), vec![]), (from(2), vec![1]), (from(3), vec![5, 0, 0, 0, 1, 2, 3, 4])]);
}

fn inner_seeds() {
    let client = addr("10.0.0.2:40000");
    let server = addr("93.184.216.34:80");
    // Tag for a step: wait index, then flags (FIX: checksums; ACK: acknowledge what the server sent).
    let step = |wait: u8, flags: u8, packet: Vec<u8>| (tag(wait, flags), packet);

    // A whole connection: SYN, ACK, data, FIN, each acknowledging what the server sent.
    let conversation = |client: SocketAddr, server: SocketAddr| {
        vec![
            step(0, FIX, tcp(client, server, TcpControl::Syn, 1000, None, &[])),
            step(1, ACK, tcp(client, server, TcpControl::None, 1001, Some(0), &[])),
            step(1, ACK, tcp(client, server, TcpControl::Psh, 1001, Some(0), b"GET / HTTP/1.1\r\n\r\n")),
            step(2, ACK, tcp(client, server, TcpControl::Fin, 1019, Some(0), &[])),
        ]
    };
    write("inner", "tcp-v4", &conversation(client, server));
    write("inner", "tcp-v6", &conversation(addr("[fd00::2]:40000"), addr("[2001:db8::7]:443")));

    let open = conversation(client, server)[..2].to_vec();
    let then = |more: Vec<(u8, Vec<u8>)>| [open.clone(), more].concat();
    write("inner", "tcp-reset", &then(vec![step(0, ACK, tcp(client, server, TcpControl::Rst, 1001, Some(0), &[]))]));
    write(
        "inner",
        "tcp-out-of-order",
        &then(vec![
            step(0, ACK, tcp(client, server, TcpControl::Psh, 1101, Some(0), &[b'b'; 100])),
            step(1, ACK, tcp(client, server, TcpControl::Psh, 1001, Some(0), &[b'a'; 100])),
            step(1, ACK, tcp(client, server, TcpControl::Psh, 1051, Some(0), &[b'c'; 100])),
        ]),
    );
    // A bare FIN past data held behind a hole (it once took the server down), then the hole fills.
    write(
        "inner",
        "tcp-fin-past-a-hole",
        &then(vec![
            step(0, ACK, tcp(client, server, TcpControl::Psh, 1101, Some(0), &[b'b'; 100])),
            step(0, ACK, tcp(client, server, TcpControl::Fin, 1201, Some(0), &[])),
            step(1, ACK, tcp(client, server, TcpControl::Psh, 1001, Some(0), &[b'a'; 100])),
        ]),
    );
    // Nobody reads: the window closes; then the client probes it.
    let fill: Vec<_> =
        (0..8u32).map(|i| step(0, ACK | NO_POLL, tcp(client, server, TcpControl::Psh, 1001 + i * 1300, Some(0), &[b'x'; 1300]))).collect();
    write(
        "inner",
        "tcp-window-full",
        &then([fill, vec![step(4, ACK, tcp(client, server, TcpControl::None, 11401, Some(0), b"y"))]].concat()),
    );
    // Idle past keep-alives, the session's lifetime and the connection timeout.
    write("inner", "tcp-idle", &then(vec![step(6, ACK, tcp(client, server, TcpControl::None, 1001, Some(0), &[])), step(7, 0, vec![])]));
    let syns: Vec<_> = (0..40u16)
        .map(|i| step(0, FIX | NO_POLL, tcp(addr(&format!("10.0.0.2:{}", 41000 + i)), server, TcpControl::Syn, 7, None, &[])))
        .collect();
    write("inner", "tcp-syns-in-one-batch", &syns);
    write(
        "inner",
        "tcp-odd-segments",
        &[
            step(0, FIX, tcp(client, addr("93.184.216.34:0"), TcpControl::Syn, 1, None, &[])),
            step(0, FIX, tcp(addr("10.0.0.2:0"), server, TcpControl::Syn, 1, None, &[])),
            step(0, FIX, tcp(client, server, TcpControl::Syn, 1, None, b"data on a SYN")),
            step(0, FIX, tcp(client, server, TcpControl::None, 1, Some(1), b"no connection")),
            step(0, FIX, tcp(client, server, TcpControl::Fin, 1, Some(1), &[])),
        ],
    );

    write("inner", "udp-v4", &[step(0, FIX, udp(client, addr("192.0.2.200:53"), b"query"))]);
    write("inner", "udp-v6", &[step(0, FIX, udp(addr("[fd00::2]:5353"), addr("[2001:db8::53]:53"), b"query"))]);
    write("inner", "udp-multicast", &[step(0, FIX, udp(client, addr("224.0.0.251:5353"), b"mdns"))]);
    write("inner", "udp-spoofed-source", &[step(0, FIX, udp(addr("10.9.0.5:1"), addr("192.0.2.200:53"), b"not mine"))]);
    let (v4, v6): (IpAddr, IpAddr) = ("10.0.0.2".parse().unwrap(), "fd00::2".parse().unwrap());
    write("inner", "ping-v4", &[step(0, FIX, ping(v4, "198.51.100.7".parse().unwrap(), b"ping"))]);
    write("inner", "ping-v6", &[step(0, FIX, ping(v6, "2001:db8::9".parse().unwrap(), b"ping"))]);

    // IPv4 with options, an IPv4 fragment, IPv6 with a hop-by-hop header before UDP.
    let mut with_options = udp(client, addr("192.0.2.200:53"), b"opts");
    with_options[0] = 0x46; // header length 24: one word of options (NOP, NOP, NOP, EOL)
    with_options.splice(20..20, [1, 1, 1, 0]);
    let total = with_options.len() as u16;
    with_options[2..4].copy_from_slice(&total.to_be_bytes());
    let mut fragment = udp(client, addr("192.0.2.200:53"), b"frag");
    fragment[6] = 0x20; // more fragments
    let hop_by_hop = ip(v6, "2001:db8::53".parse().unwrap(), IpProtocol::HopByHop, 8 + 12, |bytes| {
        bytes[..8].copy_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]); // next: UDP; one PadN option
        bytes[8..].copy_from_slice(&[0x13, 0x88, 0, 53, 0, 12, 0, 0, b'h', b'b', b'h', b'!']);
    });
    write("inner", "ip-options-fragments-extensions", &[step(0, FIX, with_options), step(0, FIX, fragment), step(0, FIX, hop_by_hop)]);
}

fn main() {
    datagram_seeds();
    inner_seeds();
}
