//! The C ABI the TypeScript host calls (see `ts/core/`). One wasm instance holds one
//! server, so the state is a single global.
//!
//! Bytes cross through two buffers in wasm memory: the *scratch* buffer the host
//! writes arguments into (`wgn_scratch` returns its address), and the *result* buffer
//! the core writes answers into (error messages, stats, keys). Events have their own
//! buffer (`wgn_events_*`). Return values: non-negative on success; negative is an
//! error code, with a message in the result buffer.

use crate::addr::{read_address, write_address, ADDRESS_SIZE};
use crate::counters::DropReason;
use crate::netstack::{Config, NetStack, RequestError};
use crate::stack::{TcpConfig, TcpError};
use crate::tunnel::PeerConfig;
use std::cell::RefCell;
use std::fmt::Display;

pub const ERR_INVALID: i32 = -1;
pub const ERR_UNKNOWN_CONNECTION: i32 = -2;
pub const ERR_NOT_WRITABLE: i32 = -3;
pub const ERR_UNADDRESSABLE: i32 = -4;
pub const ERR_NO_ROUTE: i32 = -5;
pub const ERR_TOO_BIG: i32 = -6;
pub const ERR_NOT_STARTED: i32 = -7;

#[derive(Default)]
struct State {
    netstack: Option<NetStack>,
    scratch: Vec<u8>,
    result: Vec<u8>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|state| f(&mut state.borrow_mut()))
}

/// Runs `f` on the server and the scratch bytes; reports "not started" if there is none.
fn with_netstack(f: impl FnOnce(&mut NetStack, &[u8], &mut Vec<u8>) -> i32) -> i32 {
    with_state(|state| match state.netstack.as_mut() {
        Some(netstack) => f(netstack, &state.scratch, &mut state.result),
        None => fail(&mut state.result, ERR_NOT_STARTED, "the server is not started"),
    })
}

fn fail(result: &mut Vec<u8>, code: i32, message: impl Display) -> i32 {
    result.clear();
    result.extend_from_slice(message.to_string().as_bytes());
    code
}

fn request_failed(result: &mut Vec<u8>, error: RequestError) -> i32 {
    let code = match error {
        RequestError::Tcp(TcpError::UnknownConnection) => ERR_UNKNOWN_CONNECTION,
        RequestError::Tcp(TcpError::NotWritable) => ERR_NOT_WRITABLE,
        RequestError::Tcp(TcpError::Unaddressable) | RequestError::MixedFamilies => ERR_UNADDRESSABLE,
        RequestError::NoRoute => ERR_NO_ROUTE,
        RequestError::TooBig => ERR_TOO_BIG,
    };
    fail(result, code, error)
}

fn status(result: &mut Vec<u8>, outcome: Result<(), RequestError>) -> i32 {
    outcome.map_or_else(|error| request_failed(result, error), |()| 0)
}

/// Makes the scratch buffer at least `len` bytes and returns its address.
#[no_mangle]
pub extern "C" fn wgn_scratch(len: u32) -> *mut u8 {
    with_state(|state| {
        if state.scratch.len() < len as usize {
            state.scratch.resize(len as usize, 0);
        }
        state.scratch.as_mut_ptr()
    })
}

#[no_mangle]
pub extern "C" fn wgn_result_ptr() -> *const u8 {
    with_state(|state| state.result.as_ptr())
}

#[no_mangle]
pub extern "C" fn wgn_result_len() -> u32 {
    with_state(|state| state.result.len() as u32)
}

#[no_mangle]
pub extern "C" fn wgn_events_ptr() -> *const u8 {
    with_state(|state| state.netstack.as_ref().map_or(std::ptr::null(), |n| n.events().as_ptr()))
}

#[no_mangle]
pub extern "C" fn wgn_events_len() -> u32 {
    with_state(|state| state.netstack.as_ref().map_or(0, |n| n.events().len() as u32))
}

#[no_mangle]
pub extern "C" fn wgn_events_clear() {
    with_state(|state| state.netstack.as_mut().map(NetStack::clear_events));
}

/// Starts the server. Scratch: private key (32 bytes).
#[no_mangle]
pub extern "C" fn wgn_new(now_ms: f64, mtu: u32, receive_buffer: u32, send_buffer: u32, accept_tcp: u32) -> i32 {
    with_state(|state| {
        let Some(private_key) = state.scratch.get(..32).and_then(|k| <[u8; 32]>::try_from(k).ok()) else {
            return fail(&mut state.result, ERR_INVALID, "private key must be 32 bytes");
        };
        if !(1280..=65535).contains(&mtu) {
            return fail(&mut state.result, ERR_INVALID, "mtu must be 1280..65535");
        }
        let tcp = TcpConfig {
            receive_buffer: receive_buffer as usize,
            send_buffer: send_buffer as usize,
            accept: accept_tcp != 0,
        };
        state.netstack = Some(NetStack::new(Config { private_key, mtu: mtu as usize, tcp }, now_ms));
        0
    })
}

/// Adds a peer; returns its index. Scratch: public key (32), preshared key (32), endpoint (19).
#[no_mangle]
pub extern "C" fn wgn_add_peer(persistent_keepalive: u32, has_preshared_key: u32, has_endpoint: u32) -> i32 {
    with_netstack(|netstack, scratch, result| {
        let Some(args) = scratch.get(..64 + ADDRESS_SIZE) else {
            return fail(result, ERR_INVALID, "peer arguments are short");
        };
        let key = |range: std::ops::Range<usize>| <[u8; 32]>::try_from(&args[range]).unwrap_or_default();
        let peer = PeerConfig {
            public_key: key(0..32),
            preshared_key: (has_preshared_key != 0).then(|| key(32..64)),
            persistent_keepalive: persistent_keepalive.min(u16::MAX as u32) as u16,
            endpoint: if has_endpoint != 0 { read_address(&args[64..]) } else { None },
        };
        match netstack.add_peer(peer) {
            Ok(id) => id as i32,
            Err(error) => fail(result, ERR_INVALID, error),
        }
    })
}

/// Routes a prefix to a peer. Scratch: address (19; the port is ignored).
#[no_mangle]
pub extern "C" fn wgn_allow(peer: u32, prefix_len: u32) -> i32 {
    with_netstack(|netstack, scratch, result| {
        let Some(addr) = read_address(scratch) else {
            return fail(result, ERR_INVALID, "bad address");
        };
        if peer as usize >= netstack.peers().len() {
            return fail(result, ERR_INVALID, "unknown peer");
        }
        match netstack.allow(peer, addr.ip(), prefix_len.min(255) as u8) {
            Ok(()) => 0,
            Err(_) => fail(result, ERR_INVALID, format!("prefix length {prefix_len} is too long for {}", addr.ip())),
        }
    })
}

/// Takes a batch of datagrams. Scratch: repeated `[from: address][len u32][bytes]`, `len` bytes in all.
/// Returns how many datagrams were read.
#[no_mangle]
pub extern "C" fn wgn_receive(now_ms: f64, len: u32) -> i32 {
    with_netstack(|netstack, scratch, result| {
        let Some(mut batch) = scratch.get(..len as usize) else {
            return fail(result, ERR_INVALID, "batch is longer than the scratch buffer");
        };
        let mut count = 0;
        while !batch.is_empty() {
            let header = ADDRESS_SIZE + 4;
            let (Some(from), Some(size)) = (read_address(batch), batch.get(ADDRESS_SIZE..header)) else {
                return fail(result, ERR_INVALID, "truncated batch header");
            };
            let size = u32::from_le_bytes(size.try_into().unwrap_or_default()) as usize;
            let Some(datagram) = batch.get(header..header + size) else {
                return fail(result, ERR_INVALID, "truncated datagram in batch");
            };
            netstack.receive(now_ms, from, datagram);
            batch = &batch[header + size..];
            count += 1;
        }
        count
    })
}

/// Runs timers and TCP; returns the host time (ms) of the next wanted call.
#[no_mangle]
pub extern "C" fn wgn_poll(now_ms: f64) -> f64 {
    with_state(|state| state.netstack.as_mut().map_or(-1.0, |n| n.poll(now_ms) as f64))
}

/// Opens a TCP connection; returns its id. Scratch: local address (19), remote address (19).
#[no_mangle]
pub extern "C" fn wgn_tcp_connect(now_ms: f64) -> i32 {
    with_netstack(|netstack, scratch, result| {
        let (Some(local), Some(remote)) = (read_address(scratch), scratch.get(ADDRESS_SIZE..).and_then(read_address))
        else {
            return fail(result, ERR_INVALID, "bad address");
        };
        match netstack.tcp_connect(now_ms, local, remote) {
            Ok(id) => id as i32,
            Err(error) => request_failed(result, error),
        }
    })
}

/// Queues scratch bytes `..len` on a connection; returns how many fit.
#[no_mangle]
pub extern "C" fn wgn_tcp_send(id: u32, len: u32) -> i32 {
    with_netstack(|netstack, scratch, result| {
        let Some(data) = scratch.get(..len as usize) else {
            return fail(result, ERR_INVALID, "data is longer than the scratch buffer");
        };
        match netstack.tcp_send(id, data) {
            Ok(sent) => sent as i32,
            Err(error) => request_failed(result, error),
        }
    })
}

#[no_mangle]
pub extern "C" fn wgn_tcp_credit(id: u32, bytes: u32) -> i32 {
    with_netstack(|netstack, _, result| status(result, netstack.tcp_credit(id, bytes as usize)))
}

#[no_mangle]
pub extern "C" fn wgn_tcp_shutdown(id: u32) -> i32 {
    with_netstack(|netstack, _, result| status(result, netstack.tcp_shutdown(id)))
}

#[no_mangle]
pub extern "C" fn wgn_tcp_abort(id: u32) -> i32 {
    with_netstack(|netstack, _, result| status(result, netstack.tcp_abort(id)))
}

#[no_mangle]
pub extern "C" fn wgn_tcp_discard(id: u32) -> i32 {
    with_netstack(|netstack, _, result| status(result, netstack.tcp_discard(id)))
}

/// Sends a UDP datagram through the tunnel. Scratch: source (19), destination (19), then `len` payload bytes.
#[no_mangle]
pub extern "C" fn wgn_udp_send(now_ms: f64, len: u32) -> i32 {
    with_netstack(|netstack, scratch, result| {
        let payload_start = 2 * ADDRESS_SIZE;
        let (Some(src), Some(dst), Some(payload)) = (
            read_address(scratch),
            scratch.get(ADDRESS_SIZE..).and_then(read_address),
            scratch.get(payload_start..payload_start + len as usize),
        ) else {
            return fail(result, ERR_INVALID, "bad udp arguments");
        };
        status(result, netstack.udp_send(now_ms, src, dst, payload))
    })
}

/// Writes statistics to the result buffer:
/// `[peers u32]` then per peer `[since_handshake_ms f64 (-1 = never)][tx f64][rx f64][endpoint: address, family 0 = none]`,
/// `[reasons u32]` then per reason `[name_len u8][name][count f64]`, then `[connections u32]`.
#[no_mangle]
pub extern "C" fn wgn_stats() -> i32 {
    with_netstack(|netstack, _, out| {
        out.clear();
        out.extend_from_slice(&(netstack.peers().len() as u32).to_le_bytes());
        for peer in netstack.peers() {
            let stats = peer.stats();
            let since = stats.since_handshake.map_or(-1.0, |d| d.as_millis() as f64);
            for value in [since, stats.tx_bytes as f64, stats.rx_bytes as f64] {
                out.extend_from_slice(&value.to_le_bytes());
            }
            match stats.endpoint {
                Some(endpoint) => write_address(out, endpoint),
                None => out.extend_from_slice(&[0; ADDRESS_SIZE]),
            }
        }
        out.extend_from_slice(&(DropReason::ALL.len() as u32).to_le_bytes());
        for reason in DropReason::ALL {
            out.push(reason.name().len() as u8);
            out.extend_from_slice(reason.name().as_bytes());
            out.extend_from_slice(&(netstack.counters().dropped(reason) as f64).to_le_bytes());
        }
        out.extend_from_slice(&(netstack.connection_count() as u32).to_le_bytes());
        0
    })
}

/// Derives a public key. Scratch: private key (32). Result: public key (32).
#[no_mangle]
pub extern "C" fn wgn_public_key() -> i32 {
    with_state(|state| {
        let Some(private) = state.scratch.get(..32).and_then(|k| <[u8; 32]>::try_from(k).ok()) else {
            return fail(&mut state.result, ERR_INVALID, "private key must be 32 bytes");
        };
        let secret = boringtun::x25519::StaticSecret::from(private);
        state.result.clear();
        state.result.extend_from_slice(boringtun::x25519::PublicKey::from(&secret).as_bytes());
        0
    })
}
