//! The contract between the engine and its host, written once: event kinds, error codes,
//! close and drop reasons, the address size, and the order of the numbers in each stats
//! record. The host's side, ts/wasm/abi.ts, is generated from this module
//! (`cargo run --bin abi`, which `node build.mjs` runs), and a test fails when the
//! checked-in file is out of date. Layouts of each event and call are documented where
//! they are written: events.rs and ffi.rs.

use crate::counters::DropReason;
use crate::events::{CloseReason, Direction, Events};
use crate::tcp::{ConnectionStats, TcpTotals};
use std::fmt::Write;

/// Bytes of an address: `[family u8 (4 or 6)][16 address bytes, IPv4 in the first 4][port u16 LE]`.
pub const ADDRESS_SIZE: usize = 19;

/// Named constants, plus a table of them for the generated TypeScript.
macro_rules! numbered {
    ($(#[$doc:meta])* $module:ident: $ty:ty { $($(#[$item_doc:meta])* $name:ident = $value:expr,)+ }) => {
        $(#[$doc])*
        pub mod $module {
            $($(#[$item_doc])* pub const $name: $ty = $value;)+
            /// Every constant by name.
            pub const ALL: &[(&str, $ty)] = &[$((stringify!($name), $name)),+];
        }
    };
}

numbered!(
    /// The byte that opens each event in the log (see events.rs for what follows it).
    event: u8 {
        DATAGRAM = 1,
        TCP_INCOMING = 2,
        TCP_DATA = 3,
        TCP_EOF = 4,
        TCP_WRITABLE = 5,
        TCP_CLOSED = 6,
        UDP = 7,
        TCP_ESTABLISHED = 8,
        UNKNOWN_PEER = 9,
        INNER_PACKET = 10,
        ECHO_REPLY = 11,
    }
);

numbered!(
    /// The byte that opens each command the host writes (see commands.rs for what follows it).
    command: u8 {
        SEND = 1,
        CONSUMED = 2,
        ACCEPT = 3,
        REFUSE = 4,
        SHUTDOWN = 5,
        ABORT = 6,
        DISCARD = 7,
    }
);

numbered!(
    /// Negative returns of the C ABI; the result buffer holds a message.
    error: i32 {
        INVALID = -1,
        UNKNOWN_CONNECTION = -2,
        NOT_WRITABLE = -3,
        UNADDRESSABLE = -4,
        NO_ROUTE = -5,
        TOO_BIG = -6,
        NOT_STARTED = -7,
        LIMIT = -8,
    }
);

/// The numbers of one peer's stats record, in order (each an f64; then its endpoint).
pub const PEER_STATS: [&str; 3] = ["sinceHandshakeMs", "txBytes", "rxBytes"];
/// The numbers after the connection count in the server's stats record.
pub const UDP_TOTALS: [&str; 2] = ["flows", "refusedOverLimit"];

/// One event of each kind with known values, for the host's test that it reads every
/// field back (ts/wasm/abi.test.ts holds the same values).
pub fn write_selftest_events(events: &mut Events) {
    let addr = |text: &str| text.parse().unwrap_or_else(|_| unreachable!());
    events.clear();
    events.datagram(addr("192.0.2.1:51820"), &[1, 2, 3]);
    events.tcp_incoming(0x0102_0304, 2, addr("10.0.0.2:40000"), addr("[2001:db8::1]:443"));
    events.tcp_data(0x0102_0304, 4).copy_from_slice(&[9, 8, 7, 6]);
    events.tcp_eof(5);
    events.tcp_writable(6, 70_000);
    events.tcp_closed(7, CloseReason::TimedOut);
    events.udp(3, addr("10.0.0.2:5353"), addr("8.8.8.8:53"), b"dns");
    events.tcp_established(8, 4);
    events.unknown_peer(&[0xab; 32], addr("[fd00::1]:1"));
    events.inner_packet(Direction::ToPeer, 9, &[0x45, 0]);
    events.echo_reply(10, "fd00::7".parse().unwrap_or_else(|_| unreachable!()), 0x1234, 0xfffe);
}

/// ts/wasm/abi.ts.
pub fn typescript() -> String {
    let mut out = String::from(
        "// Generated from crates/engine/src/abi.rs by `node build.mjs`: do not edit.\n\
         // The contract with the wasm engine; what each record holds is documented there.\n\n",
    );
    let _ = writeln!(out, "export const ADDRESS_SIZE = {ADDRESS_SIZE};\n");
    constants(&mut out, "EVENT", "The byte that opens each event in the log.", event::ALL);
    constants(&mut out, "COMMAND", "The byte that opens each command the host writes.", command::ALL);
    constants(&mut out, "ERROR", "Negative returns of the engine's calls.", error::ALL);
    let close: Vec<&str> = CloseReason::ALL.iter().map(|r| r.name()).collect();
    names(&mut out, "CLOSE_REASONS", "How a TCP connection ended, by the number in TCP_CLOSED.", &close);
    let dropped: Vec<&str> = DropReason::ALL.iter().map(|r| r.name()).collect();
    names(&mut out, "DROP_REASONS", "The dropped-packet counters, in the order the stats hold them.", &dropped);
    names(&mut out, "PEER_STATS", "The numbers of a peer's stats record, in order.", &PEER_STATS);
    let tcp: Vec<&str> = TcpTotals::default().fields().iter().map(|(name, _)| *name).collect();
    names(&mut out, "TCP_TOTALS", "The server's TCP numbers, in order.", &tcp);
    names(&mut out, "UDP_TOTALS", "The server's UDP numbers, in order.", &UDP_TOTALS);
    let conn: Vec<&str> = ConnectionStats::default().fields().iter().map(|(name, _)| *name).collect();
    names(&mut out, "CONNECTION_STATS", "One connection's numbers, in order.", &conn);
    out
}

fn constants<T: std::fmt::Display>(out: &mut String, name: &str, doc: &str, all: &[(&str, T)]) {
    let _ = writeln!(out, "/** {doc} */\nexport const {name} = {{");
    for (key, value) in all {
        let _ = writeln!(out, "  {key}: {value},");
    }
    out.push_str("} as const;\n\n");
}

fn names(out: &mut String, name: &str, doc: &str, all: &[&str]) {
    let list: Vec<String> = all.iter().map(|n| format!("\"{n}\"")).collect();
    let _ = writeln!(out, "/** {doc} */\nexport const {name} = [{}] as const;\n", list.join(", "));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_typescript_is_up_to_date() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../ts/wasm/abi.ts");
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(checked_in == typescript(), "ts/wasm/abi.ts is out of date: run `node build.mjs`");
    }

    #[test]
    fn event_kinds_and_error_codes_are_distinct() {
        for (i, (name, value)) in event::ALL.iter().enumerate() {
            assert!(event::ALL[i + 1..].iter().all(|(_, other)| other != value), "event {name}");
        }
        for (i, (name, value)) in error::ALL.iter().enumerate() {
            assert!(*value < 0 && error::ALL[i + 1..].iter().all(|(_, other)| other != value), "error {name}");
        }
    }
}
