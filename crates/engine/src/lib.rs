//! The wg-netstack engine: a WireGuard endpoint with its own TCP/IP stack, sans-IO.
//!
//! The engine does no I/O and reads no clock. The host (TypeScript, see `ts/`) hands it
//! UDP datagrams and the current time, calls [`Engine::poll`], and reads back
//! [`events`]: datagrams to send, TCP connections opened, data, UDP packets.
//!
//! Read in this order, following a datagram:
//! 1. [`tunnel`] — where a datagram enters, is matched to a peer and decrypted
//!    (boringtun), and where cryptokey routing ([`allowed_ips`]) is enforced;
//! 2. [`wire`] — what kind of inner packet it is: TCP goes on, UDP becomes an event,
//!    an ICMP echo request is answered on the spot;
//! 3. [`tcp`] — where TCP state lives: one connection per (source, destination), any
//!    address, paced sending, SACK loss recovery, windows that grow with use;
//! 4. [`engine`] — the glue that moves packets between those three (one [`Engine`] is one server);
//! 5. [`events`] — the byte format the host reads; [`ffi`] — the C ABI it calls.

pub mod abi;
pub mod addr;
pub mod allowed_ips;
pub mod commands;
pub mod counters;
pub mod engine;
pub mod events;
pub mod ffi;
pub mod tcp;
pub mod tunnel;
pub mod udp_flows;
pub mod wire;

mod clock;
#[cfg(test)]
mod test_rng;

pub use engine::{Config, Engine};
