//! What the host asks of the engine, batched like the events that go the other way: between
//! pumps the host writes its requests into one buffer in wasm memory, and the engine applies
//! them in order at the start of the next pump — one call across the boundary, not one per
//! request.
//!
//! | kind (`abi::command`) | fields after the kind byte (little-endian) |
//! |------|----------------------------|
//! | `SEND` | conn u32, len u32, bytes — at most what TCP_WRITABLE granted |
//! | `CONSUMED` | conn u32, bytes u32 — the host read that much of TCP_DATA |
//! | `ACCEPT` | conn u32 |
//! | `REFUSE` | conn u32, how u8 (0 RST, 1 ICMP unreachable) |
//! | `SHUTDOWN` | conn u32 — FIN after what was sent |
//! | `ABORT` | conn u32 — RST |
//! | `DISCARD` | conn u32 — drop what arrives from now on |
//!
//! A request for a connection that has gone is dropped: the host hears of the close from
//! its events. (UDP sends are not commands: the caller learns at once whether a peer's
//! allowedIps reach the destination.)

use crate::abi::command::*;
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
    let mut r = Reader { buf, at: 0 };
    while r.at < buf.len() {
        let start = r.at;
        let malformed = CommandError::Malformed { at: start };
        let kind = r.u8().ok_or(malformed.clone())?;
        // A refusal means the connection closed before the request got here: its events say so.
        let _ = match kind {
            SEND => {
                let (conn, data) = (r.u32(), r.bytes());
                let (Some(conn), Some(data)) = (conn, data) else { return Err(malformed) };
                match engine.tcp_send(conn, data) {
                    Ok(taken) if taken < data.len() => {
                        return Err(CommandError::PastGrant { conn, sent: data.len(), taken });
                    }
                    other => other.map(|_| ()),
                }
            }
            CONSUMED => {
                let (Some(conn), Some(bytes)) = (r.u32(), r.u32()) else { return Err(malformed) };
                engine.tcp_consumed(now_ms, conn, bytes as usize)
            }
            REFUSE => {
                let (Some(conn), Some(how)) = (r.u32(), r.u8()) else { return Err(malformed) };
                engine.tcp_refuse(conn, if how == 1 { Refusal::Unreachable } else { Refusal::Reset })
            }
            ACCEPT | SHUTDOWN | ABORT | DISCARD => {
                let Some(conn) = r.u32() else { return Err(malformed) };
                match kind {
                    ACCEPT => engine.tcp_accept(now_ms, conn),
                    SHUTDOWN => engine.tcp_shutdown(conn),
                    ABORT => engine.tcp_abort(conn),
                    _ => engine.tcp_discard(conn),
                }
            }
            _ => return Err(malformed),
        };
    }
    Ok(())
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let bytes = self.buf.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(bytes)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    /// A u32 length, then that many bytes.
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
