//! The C ABI the TypeScript host calls (see `ts/wasm/`). One wasm instance holds one
//! server, so the state is a single global.
//!
//! Bytes cross through two buffers in wasm memory: the *scratch* buffer the host
//! writes arguments into (`wgn_scratch` returns its address), and the *result* buffer
//! the engine writes answers into (error messages, stats, keys). Events have their own
//! buffer (`wgn_events_*`), and so do the host's batched commands (`wgn_commands_area`). Return values: non-negative on success; negative is an
//! error code, with a message in the result buffer.

use crate::abi::{option, Command, Reader};
use crate::addr::{read_address, write_address, ADDRESS_SIZE};
use crate::counters::DropReason;
use crate::engine::{Config, Engine, RequestError, UdpConfig};
use crate::tcp::{Limits, TcpConfig, TcpError, Timeouts};
use crate::tunnel::PeerConfig;
use std::cell::RefCell;
use std::fmt::Display;

use crate::abi::error::{
    INVALID as ERR_INVALID, LIMIT as ERR_LIMIT, NOT_STARTED as ERR_NOT_STARTED, NOT_WRITABLE as ERR_NOT_WRITABLE, NO_ROUTE as ERR_NO_ROUTE,
    TOO_BIG as ERR_TOO_BIG, UNADDRESSABLE as ERR_UNADDRESSABLE, UNKNOWN_CONNECTION as ERR_UNKNOWN_CONNECTION,
};

/// What the server holds unless the host says otherwise (`wgn_tcp_limits`, `wgn_tcp_timeouts`,
/// `wgn_udp_limits`): the defaults of `abi::option`, the host's too.
pub const DEFAULT_LIMITS: Limits = Limits {
    connections_per_peer: option::TCP_MAX_CONNECTIONS_PER_PEER.default as usize,
    connections: option::TCP_MAX_CONNECTIONS.default as usize,
    half_open_per_peer: option::TCP_MAX_HALF_OPEN_PER_PEER.default as usize,
    buffered_bytes: option::MAX_BUFFERED_BYTES.default as usize,
};
pub const DEFAULT_UDP: UdpConfig = UdpConfig {
    max_flows_per_peer: option::UDP_MAX_FLOWS_PER_PEER.default as usize,
    flow_idle_us: option::UDP_FLOW_TIMEOUT.default * 1000,
};
pub const DEFAULT_TIMEOUTS: Timeouts = Timeouts {
    half_open_us: option::TCP_HALF_OPEN_TIMEOUT.default * 1000,
    fin_wait_2_us: option::TCP_FIN_WAIT_2_TIMEOUT.default * 1000,
    keepalive_us: option::TCP_KEEPALIVE.default * 1000,
    user_timeout_us: option::TCP_USER_TIMEOUT.default * 1000,
};

/// Each `wgn_*` function below has the signature the contract gives it (abi.rs), or this
/// does not compile; the generated TypeScript typings come from the same list.
macro_rules! signatures_match_the_contract {
    ($(fn $name:ident($($param:ident: $ty:ty),*) -> $returns:ty;)+) => {
        $(const _: extern "C" fn($($ty),*) -> $returns = $name;)+
    };
}
crate::abi::with_exports!(signatures_match_the_contract);

#[derive(Default)]
struct State {
    engine: Option<Engine>,
    scratch: Vec<u8>,
    /// Where the host writes its commands between pumps (see `commands`).
    commands: Vec<u8>,
    result: Vec<u8>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|state| f(&mut state.borrow_mut()))
}

/// Runs `f` on the server and the scratch bytes; reports "not started" if there is none.
fn with_engine(f: impl FnOnce(&mut Engine, &[u8], &mut Vec<u8>) -> i32) -> i32 {
    with_state(|state| match state.engine.as_mut() {
        Some(engine) => f(engine, &state.scratch, &mut state.result),
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
        RequestError::Tcp(TcpError::LimitReached) => ERR_LIMIT,
        RequestError::Tcp(TcpError::Unaddressable) | RequestError::MixedFamilies => ERR_UNADDRESSABLE,
        RequestError::NoRoute => ERR_NO_ROUTE,
        RequestError::TooBig => ERR_TOO_BIG,
    };
    fail(result, code, error)
}

/// Grows `buffer` to at least `len` bytes, keeping what it holds; returns its address.
fn at_least(buffer: &mut Vec<u8>, len: u32) -> *mut u8 {
    if buffer.len() < len as usize {
        buffer.resize(len as usize, 0);
    }
    buffer.as_mut_ptr()
}

/// Makes the command area at least `len` bytes, keeping what it holds, and returns its address.
#[no_mangle]
pub extern "C" fn wgn_commands_area(len: u32) -> *mut u8 {
    with_state(|state| at_least(&mut state.commands, len))
}

/// One turn of the host's loop: forgets the `events_seen` bytes of the event log the host
/// has walked, applies `commands_len` bytes of commands from the command area, takes the
/// datagrams in scratch (`[from: address][len u32][bytes]` repeated, `datagrams_len` bytes
/// in all), runs timers and TCP. Returns the host time (ms) it next wants a pump, or a
/// negative error code (the host broke the contract: the result buffer says how).
#[no_mangle]
pub extern "C" fn wgn_pump(now_ms: f64, events_seen: u32, commands_len: u32, datagrams_len: u32) -> f64 {
    with_state(|state| {
        let State { engine, scratch, commands, result } = state;
        let Some(engine) = engine.as_mut() else {
            return fail(result, ERR_NOT_STARTED, "the server is not started") as f64;
        };
        engine.consume_events(events_seen as usize);
        let Some(commands) = commands.get(..commands_len as usize) else {
            return fail(result, ERR_INVALID, "commands are longer than their area") as f64;
        };
        if let Err(error) = crate::commands::apply(engine, now_ms, commands) {
            return fail(result, ERR_INVALID, error) as f64;
        }
        let Some(mut batch) = scratch.get(..datagrams_len as usize) else {
            return fail(result, ERR_INVALID, "datagrams are longer than the scratch buffer") as f64;
        };
        while !batch.is_empty() {
            let header = ADDRESS_SIZE + 4;
            let (Some(from), Some(size)) = (read_address(batch), batch.get(ADDRESS_SIZE..header)) else {
                return fail(result, ERR_INVALID, "truncated datagram header") as f64;
            };
            let size = u32::from_le_bytes(size.try_into().unwrap_or_default()) as usize;
            let Some(datagram) = batch.get(header..header + size) else {
                return fail(result, ERR_INVALID, "truncated datagram") as f64;
            };
            engine.receive(now_ms, from, datagram);
            batch = &batch[header + size..];
        }
        engine.poll(now_ms)
    })
}

/// Makes the scratch buffer at least `len` bytes and returns its address.
#[no_mangle]
pub extern "C" fn wgn_scratch(len: u32) -> *mut u8 {
    with_state(|state| at_least(&mut state.scratch, len))
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
    with_state(|state| state.engine.as_ref().map_or(std::ptr::null(), |n| n.events().as_ptr()))
}

#[no_mangle]
pub extern "C" fn wgn_events_len() -> u32 {
    with_state(|state| state.engine.as_ref().map_or(0, |n| n.events().len() as u32))
}

/// Starts the server. Scratch: private key (32 bytes). The buffers are the most a
/// connection's receive window and send buffer grow to.
#[no_mangle]
pub extern "C" fn wgn_new(now_ms: f64, mtu: u32, receive_buffer: u32, send_buffer: u32, accept_tcp: u32) -> i32 {
    with_state(|state| {
        let Some(private_key) = state.scratch.get(..32).and_then(|k| <[u8; 32]>::try_from(k).ok()) else {
            return fail(&mut state.result, ERR_INVALID, "private key must be 32 bytes");
        };
        let range = option::MTU.min..=option::MTU.max;
        if !range.contains(&u64::from(mtu)) {
            return fail(&mut state.result, ERR_INVALID, format!("mtu must be {}..{}", range.start(), range.end()));
        }
        let tcp = TcpConfig {
            mtu: mtu as usize,
            max_receive_window: receive_buffer as usize,
            max_send_buffer: send_buffer as usize,
            accept: accept_tcp != 0,
            limits: DEFAULT_LIMITS,
            timeouts: DEFAULT_TIMEOUTS,
        };
        state.engine = Some(Engine::new(Config { private_key, tcp, udp: DEFAULT_UDP }, now_ms));
        0
    })
}

/// Sets the TCP limits (connections per peer, in total, half-open per peer; bytes held in total).
#[no_mangle]
pub extern "C" fn wgn_tcp_limits(per_peer: u32, total: u32, half_open_per_peer: u32, buffered_bytes: f64) -> i32 {
    with_engine(|engine, _, _| {
        engine.set_tcp_limits(Limits {
            connections_per_peer: per_peer as usize,
            connections: total as usize,
            half_open_per_peer: half_open_per_peer as usize,
            buffered_bytes: buffered_bytes as usize,
        });
        0
    })
}

/// Sets the TCP timeouts, in milliseconds (see [`Timeouts`]).
#[no_mangle]
pub extern "C" fn wgn_tcp_timeouts(half_open_ms: f64, fin_wait_2_ms: f64, keepalive_ms: f64, user_timeout_ms: f64) -> i32 {
    let us = |ms: f64| (ms.max(0.0) * 1000.0) as u64;
    with_engine(|engine, _, _| {
        engine.set_tcp_timeouts(Timeouts {
            half_open_us: us(half_open_ms),
            fin_wait_2_us: us(fin_wait_2_ms),
            keepalive_us: us(keepalive_ms),
            user_timeout_us: us(user_timeout_ms),
        });
        0
    })
}

/// Sets the UDP limits: flows per peer, and how long an idle flow lives (ms).
#[no_mangle]
pub extern "C" fn wgn_udp_limits(max_flows_per_peer: u32, flow_idle_ms: f64) -> i32 {
    with_engine(|engine, _, _| {
        engine
            .set_udp(UdpConfig { max_flows_per_peer: max_flows_per_peer as usize, flow_idle_us: (flow_idle_ms.max(0.0) * 1000.0) as u64 });
        0
    })
}

/// Adds a peer; returns its index. Scratch: public key (32), preshared key (32), endpoint (19).
#[no_mangle]
pub extern "C" fn wgn_add_peer(persistent_keepalive: u32, has_preshared_key: u32, has_endpoint: u32) -> i32 {
    with_engine(|engine, scratch, result| {
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
        match engine.add_peer(peer) {
            Ok(id) => id as i32,
            Err(error) => fail(result, ERR_INVALID, error),
        }
    })
}

/// Removes a peer at once (sessions, routes, UDP flows; its TCP connections close as reset).
/// Scratch: public key (32). Returns its id.
#[no_mangle]
pub extern "C" fn wgn_remove_peer() -> i32 {
    with_engine(|engine, scratch, result| {
        let Some(key) = scratch.get(..32).and_then(|k| <[u8; 32]>::try_from(k).ok()) else {
            return fail(result, ERR_INVALID, "public key must be 32 bytes");
        };
        match engine.remove_peer(&key) {
            Some(id) => id as i32,
            None => fail(result, ERR_INVALID, "no such peer"),
        }
    })
}

/// Turns the tap on (1) or off (0): every inner packet, both ways, becomes an INNER_PACKET event.
#[no_mangle]
pub extern "C" fn wgn_set_tap(on: u32) -> i32 {
    with_engine(|engine, _, _| {
        engine.set_tap(on != 0);
        0
    })
}

/// Routes a prefix to a peer. Scratch: address (19; the port is ignored).
#[no_mangle]
pub extern "C" fn wgn_allow(peer: u32, prefix_len: u32) -> i32 {
    with_engine(|engine, scratch, result| {
        let Some(addr) = read_address(scratch) else {
            return fail(result, ERR_INVALID, "bad address");
        };
        if engine.peer(peer).is_none() {
            return fail(result, ERR_INVALID, "unknown peer");
        }
        match engine.allow(peer, addr.ip(), prefix_len.min(255) as u8) {
            Ok(()) => 0,
            Err(_) => fail(result, ERR_INVALID, format!("prefix length {prefix_len} is too long for {}", addr.ip())),
        }
    })
}

/// Opens a TCP connection; returns its id, and its local address in the result buffer.
/// Scratch: local address (19, port 0 picks one), remote address (19).
#[no_mangle]
pub extern "C" fn wgn_tcp_connect(now_ms: f64) -> i32 {
    with_engine(|engine, scratch, result| {
        let (Some(local), Some(remote)) = (read_address(scratch), scratch.get(ADDRESS_SIZE..).and_then(read_address)) else {
            return fail(result, ERR_INVALID, "bad address");
        };
        match engine.tcp_connect(now_ms, local, remote) {
            Ok((id, local)) => {
                result.clear();
                write_address(result, local);
                id as i32
            }
            Err(error) => request_failed(result, error),
        }
    })
}

/// Writes statistics to the result buffer: `[peers u32]` then per peer `[id u32]`, the
/// f64s of `abi::PEER_STATS` (since the handshake -1 = never) and `[endpoint: address,
/// family 0 = none]`; then the f64 count of each `DropReason::ALL`; `[connections u32]`;
/// the f64s of `TcpTotals::fields` and of `abi::UDP_TOTALS`.
#[no_mangle]
pub extern "C" fn wgn_stats() -> i32 {
    with_engine(|engine, _, out| {
        out.clear();
        out.extend_from_slice(&(engine.peers().count() as u32).to_le_bytes());
        for (id, peer) in engine.peers() {
            out.extend_from_slice(&id.to_le_bytes());
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
        for reason in DropReason::ALL {
            out.extend_from_slice(&(engine.counters().dropped(reason) as f64).to_le_bytes());
        }
        out.extend_from_slice(&(engine.connection_count() as u32).to_le_bytes());
        let (flows, refused) = engine.udp_flows();
        let tcp = engine.tcp_totals().fields().map(|(_, value)| value);
        for value in tcp.into_iter().chain([flows as f64, refused as f64]) {
            out.extend_from_slice(&value.to_le_bytes());
        }
        0
    })
}

/// Writes one connection's statistics to the result buffer: the f64s of `ConnectionStats::fields`.
#[no_mangle]
pub extern "C" fn wgn_tcp_stats(id: u32) -> i32 {
    with_engine(|engine, _, out| {
        let Some(stats) = engine.connection_stats(id) else {
            return request_failed(out, RequestError::Tcp(TcpError::UnknownConnection));
        };
        out.clear();
        for (_, value) in stats.fields() {
            out.extend_from_slice(&value.to_le_bytes());
        }
        0
    })
}

/// The ABI's self-test, both ways: replaces the event log with one event of each kind, with
/// known values (see `Events::write_selftest`), and writes to the result buffer, one line
/// each, the commands in the first `commands_len` bytes of the command area as the engine
/// reads them (the host wrote known values); the area is not applied.
#[no_mangle]
pub extern "C" fn wgn_abi_selftest(commands_len: u32) -> i32 {
    with_state(|state| {
        let State { engine, commands, result, .. } = state;
        let Some(engine) = engine.as_mut() else { return fail(result, ERR_NOT_STARTED, "the server is not started") };
        engine.write_selftest_events();
        let Some(commands) = commands.get(..commands_len as usize) else {
            return fail(result, ERR_INVALID, "commands are longer than their area");
        };
        let mut r = Reader::new(commands);
        let mut lines = String::new();
        while !r.is_done() {
            let at = r.at();
            let Some(command) = Command::read(&mut r) else { return fail(result, ERR_INVALID, format!("malformed command at byte {at}")) };
            lines.push_str(&format!("{command:?}\n"));
        }
        result.clear();
        result.extend_from_slice(lines.as_bytes());
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
