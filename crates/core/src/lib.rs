//! The wg-netstack core: a WireGuard endpoint with its own TCP/IP stack, sans-IO.
//!
//! The core does no I/O and reads no clock. The host (TypeScript, see `ts/`) hands it
//! UDP datagrams and the current time, calls [`NetStack::poll`], and reads back
//! [`events`]: datagrams to send, TCP connections opened, data, UDP packets.
//!
//! Read in this order, following a datagram:
//! 1. [`tunnel`] — where a datagram enters, is matched to a peer and decrypted
//!    (boringtun), and where cryptokey routing ([`allowed_ips`]) is enforced;
//! 2. [`wire`] — what kind of inner packet it is: TCP goes on, UDP becomes an event,
//!    an ICMP echo request is answered on the spot;
//! 3. [`tcp`] — where TCP state lives: one connection per (source, destination), any
//!    address, paced sending, SACK loss recovery, windows that grow with use;
//! 4. [`netstack`] — the glue that moves packets between those three;
//! 5. [`events`] — the byte format the host reads; [`ffi`] — the C ABI it calls.

pub mod abi;
pub mod addr;
pub mod allowed_ips;
pub mod commands;
pub mod counters;
pub mod events;
pub mod ffi;
pub mod netstack;
pub mod tcp;
pub mod tunnel;
pub mod udp_flows;
pub mod wire;

mod clock;
#[cfg(test)]
mod test_rng;

pub use netstack::{Config, NetStack};
