//! Applies what the host asks of the engine. Requests are batched like the events that go
//! the other way: between pumps the host writes them into one buffer in wasm memory, and
//! the engine applies them in order at the start of the next pump — one call across the
//! boundary, not one per request. Their kinds and fields are defined once, in
//! [`crate::abi::Command`].
//!
//! A request for a connection that has gone is dropped: the host hears of the close from
//! its events. (UDP sends are not commands: the caller learns at once whether a peer's
//! allowedIps reach the destination.)

use crate::abi::{Command, Reader};
use crate::engine::Engine;
use crate::tcp::Refusal;
use std::fmt;

/// The host broke the contract: a bug there, reported loudly rather than losing data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// The buffer ends inside a command, or holds an unknown kind.
    Malformed { at: usize },
    /// A SEND larger than the room the host was granted.
    PastGrant { conn: u32, sent: usize, taken: usize },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Malformed { at } => write!(f, "malformed command at byte {at}"),
            CommandError::PastGrant { conn, sent, taken } => {
                write!(f, "connection {conn}: {sent} bytes sent past the granted room ({taken} taken)")
            }
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
            Command::Refuse { conn, how } => engine.tcp_refuse(conn, if how == 1 { Refusal::Unreachable } else { Refusal::Reset }),
            Command::Shutdown { conn } => engine.tcp_shutdown(conn),
            Command::Abort { conn } => engine.tcp_abort(conn),
            Command::Discard { conn } => engine.tcp_discard(conn),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::command::*;
    use crate::engine::Config;
    use crate::ffi::{DEFAULT_LIMITS, DEFAULT_TIMEOUTS, DEFAULT_UDP};
    use crate::tcp::TcpConfig;

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
}
