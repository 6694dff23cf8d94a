//! Applies what the host asks of the engine. Requests are batched like the events that go
//! the other way: between pumps the host writes them into one buffer in wasm memory, and
//! the engine applies them in order at the start of the next pump — one call across the
//! boundary, not one per request. Their kinds and fields are defined once, in
//! [`crate::abi::Command`].
//!
//! A request for a connection that has gone is dropped: the host hears of the close from
//! its events. UDP sends and pings are commands too, so a flood of them costs no crossing
//! each (with `threads: 1`, no blocking round trip to the worker each): the host checks
//! what it can before it writes one (families, the MTU, a route in its copy of the
//! allowedIps), and what only the engine can know is counted as dropped (noRoute: a peer
//! removed in between; noEndpoint: a keepalive to a peer not heard from).

use crate::abi::{Command, Reader};
use crate::counters::DropReason;
use crate::engine::{Engine, RequestError};
use crate::tcp::Refusal;
use crate::wire::Unreachable;
use std::fmt;

/// The host broke the contract: a bug there, reported loudly rather than losing data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// The buffer ends inside a command, or holds an unknown kind.
    Malformed { at: usize },
    /// A SEND larger than the room the host was granted.
    PastGrant { conn: u32, sent: usize, taken: usize },
    /// A UDP_SEND or PING the host should have refused itself (mixed families, past the MTU).
    Unsendable { at: usize, error: RequestError },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Malformed { at } => write!(f, "malformed command at byte {at}"),
            CommandError::PastGrant { conn, sent, taken } => {
                write!(f, "connection {conn}: {sent} bytes sent past the granted room ({taken} taken)")
            }
            CommandError::Unsendable { at, error } => write!(f, "command at byte {at}: {error}"),
        }
    }
}

/// Applies every command in `buf`, in order.
pub fn apply(engine: &mut Engine, now_ms: f64, buf: &[u8]) -> Result<(), CommandError> {
    let mut r = Reader::new(buf);
    while !r.is_done() {
        let at = r.at();
        let Some(command) = Command::read(&mut r) else { return Err(CommandError::Malformed { at }) };
        // A refusal means the connection closed before the request got here: its events say so.
        let _ = match command {
            Command::Send { conn, bytes } => match engine.tcp_send(conn, bytes) {
                Ok(taken) if taken < bytes.len() => return Err(CommandError::PastGrant { conn, sent: bytes.len(), taken }),
                other => other.map(|_| ()),
            },
            Command::Consumed { conn, bytes } => engine.tcp_consumed(now_ms, conn, bytes as usize),
            Command::Accept { conn } => engine.tcp_accept(now_ms, conn),
            Command::Refuse { conn, how } => engine.tcp_refuse(now_ms, conn, if how == 1 { Refusal::Unreachable } else { Refusal::Reset }),
            Command::Shutdown { conn } => engine.tcp_shutdown(conn),
            Command::Abort { conn } => engine.tcp_abort(conn),
            Command::Discard { conn } => engine.tcp_discard(conn),
            Command::UdpSend { src, dst, payload } => {
                let sent = engine.udp_send(now_ms, src, dst, payload);
                unsendable(engine, at, sent)?
            }
            Command::Ping { src, dst, ident, seq } => {
                let sent = engine.ping(now_ms, src.ip(), dst.ip(), ident as u16, seq as u16);
                unsendable(engine, at, sent)?
            }
            Command::Keepalive { peer } => {
                engine.keepalive(now_ms, peer);
                Ok(())
            }
            Command::UdpRefuse { from, to, why } => {
                let Some(&why) = Unreachable::ALL.get(usize::from(why)) else { return Err(CommandError::Malformed { at }) };
                let sent = engine.udp_refuse(now_ms, from, to, why);
                unsendable(engine, at, sent)?
            }
        };
    }
    Ok(())
}

/// No route is counted (the host checked its copy of the routes; a peer removed since the
/// command was written takes its routes with it); anything else the host had to refuse.
fn unsendable(engine: &mut Engine, at: usize, sent: Result<(), RequestError>) -> Result<Result<(), RequestError>, CommandError> {
    match sent {
        Err(RequestError::NoRoute) => {
            engine.count_dropped(DropReason::NoRoute);
            Ok(Ok(()))
        }
        Err(error) => Err(CommandError::Unsendable { at, error }),
        Ok(()) => Ok(Ok(())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::command::*;
    use crate::addr::write_address;
    use crate::engine::Config;
    use crate::events::decode::{decode, Event};
    use crate::ffi::{DEFAULT_LIMITS, DEFAULT_TIMEOUTS, DEFAULT_UDP};
    use crate::tcp::TcpConfig;
    use crate::tunnel::PeerConfig;
    use crate::wire::{self, Inner};
    use std::net::{IpAddr, SocketAddr};

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    /// A peer that routes `prefix`/24, with an endpoint (or not) and no session yet.
    fn add_peer(net: &mut Engine, key: u8, prefix: &str, endpoint: Option<SocketAddr>) -> u32 {
        let config = PeerConfig { public_key: [key; 32], preshared_key: None, persistent_keepalive: 0, endpoint };
        let peer = net.add_peer(config).unwrap();
        net.allow(peer, prefix.parse().unwrap(), 24).unwrap();
        peer
    }

    fn push(batch: &mut Vec<u8>, command: Command<&[u8]>) {
        command.write(batch);
    }

    /// An inner packet as the test names it: "udp <payload>", "icmp <type> <seq>".
    fn describe(packet: &[u8]) -> String {
        match packet[9] {
            17 => format!("udp {}", String::from_utf8_lossy(&packet[28..])),
            1 => format!("icmp {} {}", packet[20], u16::from_be_bytes([packet[26], packet[27]])),
            other => format!("protocol {other}"),
        }
    }

    fn engine() -> Engine {
        let tcp = TcpConfig {
            mtu: 1420,
            max_receive_window: 65536,
            max_send_buffer: 65536,
            accept: true,
            limits: DEFAULT_LIMITS,
            timeouts: DEFAULT_TIMEOUTS,
        };
        Engine::new(Config { private_key: [7; 32], tcp, udp: DEFAULT_UDP }, 0.0)
    }

    #[test]
    fn a_cut_short_or_unknown_command_is_an_error_naming_where_it_starts() {
        let mut net = engine();
        let cut_short = [ACCEPT, 1, 0, 0, 0, SEND, 1, 0];
        assert_eq!(apply(&mut net, 0.0, &cut_short), Err(CommandError::Malformed { at: 5 }));
        let send_past_its_bytes = [SEND, 1, 0, 0, 0, 9, 0, 0, 0, b'x'];
        assert_eq!(apply(&mut net, 0.0, &send_past_its_bytes), Err(CommandError::Malformed { at: 0 }));
        assert_eq!(apply(&mut net, 0.0, &[0]), Err(CommandError::Malformed { at: 0 }));
        assert_eq!(apply(&mut net, 0.0, &[]), Ok(()));
    }

    /// A broken batch is the host's bug: the error it gets back says what and where.
    #[test]
    fn a_broken_batch_is_reported_in_words_that_say_where() {
        let errors = [
            (CommandError::Malformed { at: 5 }, "malformed command at byte 5"),
            (CommandError::PastGrant { conn: 3, sent: 10, taken: 4 }, "connection 3: 10 bytes sent past the granted room (4 taken)"),
            (CommandError::Unsendable { at: 9, error: RequestError::TooBig }, "command at byte 9: datagram is larger than the MTU allows"),
        ];
        for (error, text) in errors {
            assert_eq!(error.to_string(), text);
        }
    }

    /// The host learns of a close from its events, perhaps after it queued more requests.
    #[test]
    fn requests_for_a_connection_that_is_gone_are_dropped() {
        let mut net = engine();
        let mut commands = vec![ABORT, 5, 0, 0, 0, CONSUMED, 5, 0, 0, 0, 10, 0, 0, 0, SEND, 5, 0, 0, 0, 3, 0, 0, 0];
        commands.extend_from_slice(b"abc");
        commands.extend_from_slice(&[REFUSE, 5, 0, 0, 0, 1, SHUTDOWN, 5, 0, 0, 0, DISCARD, 5, 0, 0, 0, ACCEPT, 5, 0, 0, 0]);
        assert_eq!(apply(&mut net, 0.0, &commands), Ok(()));
        assert!(net.events().is_empty());
    }

    /// UDP sends, pings and keepalives are commands like the TCP ones, carried out where they
    /// stand in the batch: the tap and the event log show their effects in the batch's order.
    #[test]
    fn udp_sends_pings_and_keepalives_are_carried_out_in_order_among_tcp_commands() {
        let mut net = engine();
        let a = add_peer(&mut net, 1, "10.0.0.0", Some(addr("192.0.2.1:51820")));
        let b = add_peer(&mut net, 2, "10.0.1.0", Some(addr("192.0.2.2:51820")));
        net.set_tap(true);
        let (conn, _) = net.tcp_connect(0.0, addr("10.0.0.1:0"), addr("10.0.0.2:80")).unwrap();
        net.poll(0.0); // the SYN, and the handshake with `a` it starts
        net.consume_events(net.events().len());

        // The first UDP_SEND by hand, to pin its layout: kind, source, destination, length, payload.
        let mut batch = vec![UDP_SEND];
        write_address(&mut batch, addr("10.0.0.1:53"));
        write_address(&mut batch, addr("10.0.0.2:5353"));
        batch.extend_from_slice(&5u32.to_le_bytes());
        batch.extend_from_slice(b"first");
        push(&mut batch, Command::Abort { conn });
        push(&mut batch, Command::Ping { src: addr("10.0.0.1:0"), dst: addr("10.0.0.3:0"), ident: 0x4242, seq: 7 });
        push(&mut batch, Command::Keepalive { peer: b });
        push(&mut batch, Command::UdpSend { src: addr("10.0.0.1:53"), dst: addr("10.0.0.2:5353"), payload: &b"second"[..] });
        assert_eq!(apply(&mut net, 1.0, &batch), Ok(()));

        let mut seen = Vec::new();
        for event in decode(net.events()) {
            match event {
                Event::InnerPacket { direction: 1, peer, bytes } => seen.push(format!("{peer}: {}", describe(&bytes))),
                // `b`'s handshake initiation (type 1): the keepalive, with no session yet.
                Event::Datagram { to, bytes } => seen.push(format!("{to}: type {}", bytes[0])),
                Event::TcpClosed { conn, .. } => seen.push(format!("closed {conn}")),
                other => seen.push(format!("{other:?}")),
            }
        }
        let expected = [
            format!("{a}: udp first"),
            format!("closed {conn}"), // the abort (its RST goes at the poll)
            format!("{a}: icmp 8 7"),
            "192.0.2.2:51820: type 1".to_string(),
            format!("{a}: udp second"),
        ];
        assert_eq!(seen, expected);
    }

    /// A datagram the host turns away is answered with an ICMP destination unreachable from
    /// the address it was sent to, quoting its ports (RFC 792): what the sender's side reads.
    #[test]
    fn a_refused_datagram_is_answered_with_icmp_unreachable_quoting_its_ports() {
        let mut net = engine();
        let a = add_peer(&mut net, 1, "10.0.0.0", Some(addr("192.0.2.1:51820")));
        net.set_tap(true);
        let (sender, us) = (addr("10.0.0.2:5353"), addr("10.0.0.1:53"));
        let mut batch = Vec::new();
        for why in Unreachable::ALL {
            push(&mut batch, Command::UdpRefuse { from: sender, to: us, why: why as u8 });
        }
        push(&mut batch, Command::UdpRefuse { from: addr("10.9.9.9:1"), to: us, why: 2 }); // no peer holds it
        assert_eq!(apply(&mut net, 0.0, &batch), Ok(()));
        assert_eq!(net.counters().dropped(DropReason::NoRoute), 1);
        let mut read = Vec::new();
        for event in decode(net.events()) {
            if let Event::InnerPacket { direction: 1, peer, bytes } = event {
                let from = IpAddr::from([bytes[12], bytes[13], bytes[14], bytes[15]]);
                match wire::classify(&bytes) {
                    Ok(Inner::UdpUnreachable { why, local, remote }) => read.push((peer, from, why, local, remote)),
                    other => panic!("not an ICMP error about the datagram: {other:?}"),
                }
            }
        }
        let expected = Unreachable::ALL.map(|why| (a, us.ip(), why, sender, us));
        assert_eq!(read, expected);

        // A reason the contract does not name is the host's bug.
        let mut batch = Vec::new();
        push(&mut batch, Command::Accept { conn: 5 });
        push(&mut batch, Command::UdpRefuse { from: sender, to: us, why: Unreachable::ALL.len() as u8 });
        assert_eq!(apply(&mut net, 0.0, &batch), Err(CommandError::Malformed { at: 5 }));
    }

    /// What only the engine can know is counted: no route (a peer removed after the host
    /// checked), no endpoint for a keepalive. What the host must refuse itself fails the batch.
    #[test]
    fn unsendable_udp_is_counted_or_refused() {
        let mut net = engine();
        let lone = add_peer(&mut net, 1, "10.0.0.0", None);
        let mut batch = Vec::new();
        push(&mut batch, Command::UdpSend { src: addr("10.0.0.1:53"), dst: addr("10.9.9.9:53"), payload: &b"x"[..] });
        push(&mut batch, Command::Ping { src: addr("10.0.0.1:0"), dst: addr("10.9.9.9:0"), ident: 1, seq: 1 });
        push(&mut batch, Command::Keepalive { peer: lone });
        push(&mut batch, Command::Keepalive { peer: 99 });
        assert_eq!(apply(&mut net, 0.0, &batch), Ok(()));
        assert_eq!(net.counters().dropped(DropReason::NoRoute), 2);
        assert_eq!(net.counters().dropped(DropReason::NoEndpoint), 1);
        assert!(net.events().is_empty());

        let mixed = Command::UdpSend { src: addr("[fd00::1]:53"), dst: addr("10.0.0.2:53"), payload: &b"x"[..] };
        let past_the_mtu = Command::UdpSend { src: addr("10.0.0.1:53"), dst: addr("10.0.0.2:53"), payload: &[0; 1420 - 28 + 1][..] };
        let ping_mixed = Command::Ping { src: addr("[fd00::1]:0"), dst: addr("10.0.0.2:0"), ident: 1, seq: 1 };
        for (command, error) in
            [(mixed, RequestError::MixedFamilies), (past_the_mtu, RequestError::TooBig), (ping_mixed, RequestError::MixedFamilies)]
        {
            let mut batch = Vec::new();
            push(&mut batch, Command::Accept { conn: 5 });
            push(&mut batch, command);
            assert_eq!(apply(&mut net, 0.0, &batch), Err(CommandError::Unsendable { at: 5, error }));
        }
        // Right at the MTU it goes (queued for a handshake the peer has no endpoint for: counted).
        let mut batch = Vec::new();
        push(&mut batch, Command::UdpSend { src: addr("10.0.0.1:53"), dst: addr("10.0.0.2:53"), payload: &[0; 1420 - 28][..] });
        assert_eq!(apply(&mut net, 0.0, &batch), Ok(()));
        assert_eq!(net.counters().dropped(DropReason::NoEndpoint), 2);
    }
}
