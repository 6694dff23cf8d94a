//! The glue: datagrams in, through the tunnel, into the stack or out as events;
//! packets from the stack back through the tunnel. One `NetStack` is one server.
//!
//! Every call takes the host's `now_ms`; [`NetStack::poll`] returns when it next wants
//! to be called. Nothing here blocks, reads a clock, or does I/O.

use crate::allowed_ips::PrefixTooLong;
use crate::clock::Clock;
use crate::counters::Counters;
use crate::events::Events;
use crate::stack::{Stack, TcpConfig, TcpError};
use crate::tunnel::{Peer, PeerConfig, TunnelError, Tunnels};
use crate::wire::{self, Inner, UdpBuildError};
use rand_core::{OsRng, RngCore};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// How often peer timers run (handshake retries, rekeys, keepalives).
const TICK_MS: u64 = 250;

#[derive(Debug, Clone)]
pub struct Config {
    pub private_key: [u8; 32],
    /// The largest inner IP packet, as on a WireGuard interface.
    pub mtu: usize,
    pub tcp: TcpConfig,
}

/// Why a host request could not be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    Tcp(TcpError),
    /// No peer's `allowedIps` hold the destination.
    NoRoute,
    /// Source and destination are of different address families.
    MixedFamilies,
    /// The datagram does not fit the MTU.
    TooBig,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Tcp(error) => error.fmt(f),
            RequestError::NoRoute => f.write_str("no peer's allowedIps hold the destination"),
            RequestError::MixedFamilies => f.write_str("source and destination are of different address families"),
            RequestError::TooBig => f.write_str("datagram is larger than the MTU allows"),
        }
    }
}

impl From<TcpError> for RequestError {
    fn from(error: TcpError) -> Self {
        RequestError::Tcp(error)
    }
}

pub struct NetStack {
    clock: Clock,
    tunnels: Tunnels,
    stack: Stack,
    events: Events,
    counters: Counters,
    mtu: usize,
    next_tick_ms: u64,
    /// Packets the core builds itself: echo replies, UDP.
    built: Vec<u8>,
}

impl NetStack {
    pub fn new(config: Config, now_ms: f64) -> Self {
        let mut clock = Clock::default();
        let now = clock.set(now_ms);
        NetStack {
            clock,
            tunnels: Tunnels::new(config.private_key),
            stack: Stack::new(config.mtu, config.tcp, now, OsRng.next_u64()),
            events: Events::default(),
            counters: Counters::default(),
            mtu: config.mtu,
            next_tick_ms: now,
            built: Vec::new(),
        }
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.tunnels.public_key()
    }

    pub fn add_peer(&mut self, peer: PeerConfig) -> Result<u32, TunnelError> {
        self.tunnels.add_peer(peer)
    }

    pub fn allow(&mut self, peer: u32, ip: IpAddr, prefix_len: u8) -> Result<(), PrefixTooLong> {
        self.tunnels.allow(peer, ip, prefix_len)
    }

    /// One UDP datagram from the network.
    pub fn receive(&mut self, now_ms: f64, from: SocketAddr, datagram: &[u8]) {
        let now = self.clock.set(now_ms);
        let Some((peer, packet)) = self.tunnels.receive(from, datagram, &mut self.events, &mut self.counters)
        else {
            return;
        };
        match wire::classify(packet) {
            Ok(Inner::Tcp { src, dst, opens }) => self.stack.input(now, peer, packet, src, dst, opens),
            Ok(Inner::Udp { src, dst, payload }) => self.events.udp(peer, src, dst, payload),
            Ok(Inner::EchoRequest) => {
                if wire::echo_reply(packet, &mut self.built).is_ok() {
                    self.tunnels.send(&self.built, &mut self.events, &mut self.counters);
                }
            }
            Err(reason) => self.counters.count(reason),
        }
    }

    /// Runs timers and TCP, sends what is due. Returns the host time (ms) of the next
    /// call it wants.
    pub fn poll(&mut self, now_ms: f64) -> u64 {
        let now = self.clock.set(now_ms);
        if now >= self.next_tick_ms {
            self.tunnels.tick(&mut self.events);
            self.next_tick_ms = now + TICK_MS;
        }
        self.stack.poll(now, &mut self.events);
        while let Some(packet) = self.stack.device.tx.pop_front() {
            self.tunnels.send(&packet, &mut self.events, &mut self.counters);
            self.stack.device.recycle(packet);
        }
        self.stack.poll_at(now).map_or(self.next_tick_ms, |at| at.min(self.next_tick_ms))
    }

    /// Events since the last [`NetStack::clear_events`], in the format of [`crate::events`].
    pub fn events(&self) -> &[u8] {
        self.events.as_bytes()
    }

    pub fn clear_events(&mut self) {
        self.events.clear();
    }

    /// Opens a TCP connection through the tunnel to `remote`, from `local`
    /// (port 0 picks an ephemeral port). It is sent on the next poll.
    pub fn tcp_connect(&mut self, now_ms: f64, local: SocketAddr, remote: SocketAddr) -> Result<u32, RequestError> {
        self.clock.set(now_ms);
        let peer = self.tunnels.route(remote.ip()).ok_or(RequestError::NoRoute)?;
        Ok(self.stack.connect(peer, local, remote)?)
    }

    pub fn tcp_send(&mut self, id: u32, data: &[u8]) -> Result<usize, RequestError> {
        Ok(self.stack.send(id, data)?)
    }

    pub fn tcp_credit(&mut self, id: u32, bytes: usize) -> Result<(), RequestError> {
        Ok(self.stack.credit(id, bytes)?)
    }

    pub fn tcp_shutdown(&mut self, id: u32) -> Result<(), RequestError> {
        Ok(self.stack.shutdown(id)?)
    }

    pub fn tcp_abort(&mut self, id: u32) -> Result<(), RequestError> {
        Ok(self.stack.abort(id)?)
    }

    pub fn tcp_discard(&mut self, id: u32) -> Result<(), RequestError> {
        Ok(self.stack.discard(id)?)
    }

    /// Sends one UDP datagram through the tunnel to the peer that owns `dst`.
    pub fn udp_send(&mut self, now_ms: f64, src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Result<(), RequestError> {
        self.clock.set(now_ms);
        if self.tunnels.route(dst.ip()).is_none() {
            return Err(RequestError::NoRoute);
        }
        wire::build_udp(src, dst, payload, self.mtu, &mut self.built).map_err(|error| match error {
            UdpBuildError::MixedFamilies => RequestError::MixedFamilies,
            UdpBuildError::TooBig => RequestError::TooBig,
        })?;
        self.tunnels.send(&self.built, &mut self.events, &mut self.counters);
        Ok(())
    }

    pub fn peers(&self) -> &[Peer] {
        self.tunnels.peers()
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn connection_count(&self) -> usize {
        self.stack.connection_count()
    }
}
#[cfg(test)] #[path = "netstack_tests.rs"] mod tests;
