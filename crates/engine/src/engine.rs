//! The glue: datagrams in, through the tunnel, into TCP or out as events; packets from
//! TCP back through the tunnel. One `Engine` is one server.
//!
//! Every call takes the host's `now_ms`; [`Engine::poll`] returns when it next wants
//! to be called. Nothing here blocks, reads a clock, or does I/O.

use crate::abi;
use crate::allowed_ips::PrefixTooLong;
use crate::clock::Clock;
use crate::counters::{Counters, DropReason};
use crate::events::{Direction, Events};
use crate::tcp::{self, ConnectionStats, Limits, Link, Refusal, Tcp, TcpConfig, TcpError, TcpTotals, Timeouts};
use crate::tunnel::{Peer, PeerConfig, TunnelError, Tunnels, BUFFER_SIZE};
use crate::udp_flows::UdpFlows;
use crate::wire::{self, Inner, UdpBuildError, Unreachable};
use rand_core::{OsRng, RngCore};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// How often peer timers run (handshake retries, rekeys, keepalives), in microseconds.
const TICK_US: u64 = 250_000;

#[derive(Debug, Clone)]
pub struct Config {
    pub private_key: [u8; 32],
    pub tcp: TcpConfig,
    pub udp: UdpConfig,
}

#[derive(Debug, Clone, Copy)]
pub struct UdpConfig {
    /// Flows (source, destination) a peer may have at once; past it a datagram gets ICMP port unreachable.
    pub max_flows_per_peer: usize,
    /// A flow with no datagram either way for this long ends.
    pub flow_idle_us: u64,
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
            RequestError::NoRoute => f.write_str(abi::request_message::NO_ROUTE),
            RequestError::MixedFamilies => f.write_str(abi::request_message::MIXED_FAMILIES),
            RequestError::TooBig => f.write_str(abi::request_message::TOO_BIG),
        }
    }
}

impl From<TcpError> for RequestError {
    fn from(error: TcpError) -> Self {
        RequestError::Tcp(error)
    }
}

/// The tunnel as TCP sees it: packets out through the peer their destination routes to.
struct TunnelLink<'a> {
    tunnels: &'a mut Tunnels,
    events: &'a mut Events,
    counters: &'a mut Counters,
}

impl Link for TunnelLink<'_> {
    fn send_packet(&mut self, packet: &[u8]) {
        self.tunnels.send(packet, self.events, self.counters);
    }

    fn send_icmp_error(&mut self, now: u64, packet: &[u8]) {
        self.tunnels.send_icmp_error(now, packet, self.events, self.counters);
    }

    fn events(&mut self) -> &mut Events {
        self.events
    }
}

pub struct Engine {
    clock: Clock,
    tunnels: Tunnels,
    tcp: Tcp,
    udp: UdpFlows,
    events: Events,
    counters: Counters,
    mtu: usize,
    next_tick: u64,
    /// Where datagrams are decrypted; inner packets are read from here.
    received: Vec<u8>,
    /// Packets the engine builds itself: echo replies, UDP.
    built: Vec<u8>,
}

macro_rules! link {
    ($self:ident) => {
        TunnelLink { tunnels: &mut $self.tunnels, events: &mut $self.events, counters: &mut $self.counters }
    };
}

impl Engine {
    pub fn new(config: Config, now_ms: f64) -> Self {
        let mut clock = Clock::default();
        let now = clock.set(now_ms);
        Engine {
            clock,
            tunnels: Tunnels::new(config.private_key),
            mtu: config.tcp.mtu,
            tcp: Tcp::new(config.tcp, (OsRng.next_u64() as u128) << 64 | OsRng.next_u64() as u128),
            udp: UdpFlows::new(config.udp.max_flows_per_peer, config.udp.flow_idle_us),
            events: Events::default(),
            counters: Counters::default(),
            next_tick: now,
            received: vec![0; BUFFER_SIZE],
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

    /// Forgets a peer at once: its sessions, routes and UDP flows; its TCP connections close
    /// as reset (nothing can reach it any more). Returns its id.
    pub fn remove_peer(&mut self, public_key: &[u8; 32]) -> Option<u32> {
        let id = self.tunnels.remove_peer(public_key)?;
        self.tcp.drop_peer(id, &mut link!(self));
        self.udp.remove_peer(id);
        Some(id)
    }

    /// Reports every inner packet, both ways, as an event (for a capture).
    pub fn set_tap(&mut self, on: bool) {
        self.tunnels.tap = on;
    }

    pub fn set_tcp_limits(&mut self, limits: Limits) {
        self.tcp.set_limits(limits);
    }

    pub fn set_tcp_timeouts(&mut self, timeouts: Timeouts) {
        self.tcp.set_timeouts(timeouts);
    }

    pub fn set_udp(&mut self, config: UdpConfig) {
        self.udp.max_per_peer = config.max_flows_per_peer;
        self.udp.idle_us = config.flow_idle_us;
    }

    /// One UDP datagram from the network.
    pub fn receive(&mut self, now_ms: f64, from: SocketAddr, datagram: &[u8]) {
        let now = self.clock.set(now_ms);
        let received = self.tunnels.receive(now, from, datagram, &mut self.received, &mut self.events, &mut self.counters);
        if let Some(peer) = self.tunnels.take_renewed() {
            self.tcp.path_renewed(now, peer);
        }
        let Some((peer, range)) = received else {
            return;
        };
        let packet = &self.received[range];
        if self.tunnels.tap {
            self.events.inner_packet(Direction::FromPeer, peer, packet);
        }
        match wire::classify(packet) {
            Ok(Inner::Tcp { src, dst, tcp }) => match tcp::segment::parse(src, dst, tcp) {
                Ok(segment) => self.tcp.input(now, peer, &segment, &mut link!(self)),
                Err(reason) => self.counters.count(reason),
            },
            Ok(Inner::Udp { src, dst, payload }) => {
                if self.udp.admit(now, peer, src, dst) {
                    self.events.udp(peer, src, dst, payload);
                } else if wire::unreachable(packet, Unreachable::Port, &mut self.built).is_ok() {
                    self.tunnels.send_icmp_error(now, &self.built, &mut self.events, &mut self.counters);
                }
            }
            Ok(Inner::EchoReply { src, ident, seq }) => self.events.echo_reply(peer, src, ident, seq),
            Ok(Inner::TcpUnreachable { why, quoted }) => {
                // One that answers none of our connects (late, forged, or about another flow) is dropped.
                if !self.tcp.unreachable(peer, &quoted, why, &mut link!(self)) {
                    self.counters.count(DropReason::Unsupported);
                }
            }
            Ok(Inner::UdpUnreachable { why, local, remote }) => {
                // The host finds the socket; here only that it came from the peer that carries
                // our datagrams to `remote`: another peer's word on it is forged (RFC 5927 4.1).
                if self.tunnels.route(remote.ip()) == Some(peer) {
                    self.events.udp_unreachable(peer, local, remote, why);
                } else {
                    self.counters.count(DropReason::Unsupported);
                }
            }
            Ok(Inner::EchoRequest) => {
                if wire::echo_reply(packet, &mut self.built).is_ok() {
                    self.tunnels.send(&self.built, &mut self.events, &mut self.counters);
                }
            }
            Err(reason) => self.counters.count(reason),
        }
    }

    /// Runs timers and TCP, sends what is due. Returns the host time (ms) of the next
    /// call it wants; the current time when there is more to do at once.
    pub fn poll(&mut self, now_ms: f64) -> f64 {
        let now = self.clock.set(now_ms);
        if now >= self.next_tick {
            self.tunnels.tick(now, &mut self.events);
            self.udp.expire(now);
            self.next_tick = now + TICK_US;
        }
        let next = self.tcp.poll(now, &mut link!(self)).map_or(self.next_tick, |at| at.min(self.next_tick));
        next as f64 / 1000.0
    }

    /// Replaces the event log with one event of each kind (see `Events::write_selftest`).
    pub fn write_selftest_events(&mut self) {
        self.events.write_selftest();
    }

    /// Events not yet cleared, in the format of [`crate::events`].
    pub fn events(&self) -> &[u8] {
        self.events.as_bytes()
    }

    pub fn clear_events(&mut self) {
        self.events.clear();
    }

    /// Forgets the first `bytes` of the event log: the host has handled them. (Events added
    /// since the host last looked stay.)
    pub fn consume_events(&mut self, bytes: usize) {
        self.events.consume(bytes);
    }

    /// Opens a TCP connection through the tunnel to `remote`, from `local` (port 0 picks
    /// an ephemeral port); returns its id and local address. The SYN goes on the next poll.
    pub fn tcp_connect(&mut self, now_ms: f64, local: SocketAddr, remote: SocketAddr) -> Result<(u32, SocketAddr), RequestError> {
        let now = self.clock.set(now_ms);
        let peer = self.tunnels.route(remote.ip()).ok_or(RequestError::NoRoute)?;
        Ok(self.tcp.connect(now, peer, local, remote)?)
    }

    pub fn tcp_accept(&mut self, now_ms: f64, id: u32) -> Result<(), RequestError> {
        let now = self.clock.set(now_ms);
        Ok(self.tcp.accept(now, id)?)
    }

    pub fn tcp_refuse(&mut self, now_ms: f64, id: u32, how: Refusal) -> Result<(), RequestError> {
        let now = self.clock.set(now_ms);
        Ok(self.tcp.refuse(now, id, how, &mut link!(self))?)
    }

    pub fn tcp_send(&mut self, id: u32, data: &[u8]) -> Result<usize, RequestError> {
        Ok(self.tcp.send(id, data)?)
    }

    pub fn tcp_consumed(&mut self, now_ms: f64, id: u32, bytes: usize) -> Result<(), RequestError> {
        let now = self.clock.set(now_ms);
        Ok(self.tcp.consumed(now, id, bytes)?)
    }

    pub fn tcp_shutdown(&mut self, id: u32) -> Result<(), RequestError> {
        Ok(self.tcp.shutdown(id)?)
    }

    pub fn tcp_abort(&mut self, id: u32) -> Result<(), RequestError> {
        Ok(self.tcp.abort(id, &mut link!(self))?)
    }

    pub fn tcp_discard(&mut self, id: u32) -> Result<(), RequestError> {
        Ok(self.tcp.discard(id)?)
    }

    /// Sends one UDP datagram through the tunnel to the peer that owns `dst`.
    pub fn udp_send(&mut self, now_ms: f64, src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Result<(), RequestError> {
        let now = self.clock.set(now_ms);
        let peer = self.tunnels.route(dst.ip()).ok_or(RequestError::NoRoute)?;
        self.udp.refresh(now, peer, dst, src);
        wire::build_udp(src, dst, payload, self.mtu, &mut self.built).map_err(|error| match error {
            UdpBuildError::MixedFamilies => RequestError::MixedFamilies,
            UdpBuildError::TooBig => RequestError::TooBig,
        })?;
        self.tunnels.send(&self.built, &mut self.events, &mut self.counters);
        Ok(())
    }

    /// Pings `dst` from `src` through the tunnel (ICMP or ICMPv6 echo request); the answer
    /// comes back as an ECHO_REPLY event with the same identifier and sequence number.
    pub fn ping(&mut self, now_ms: f64, src: IpAddr, dst: IpAddr, ident: u16, seq: u16) -> Result<(), RequestError> {
        self.clock.set(now_ms);
        self.tunnels.route(dst).ok_or(RequestError::NoRoute)?;
        wire::echo_request(src, dst, ident, seq, &[0; 16], &mut self.built).ok_or(RequestError::MixedFamilies)?;
        self.tunnels.send(&self.built, &mut self.events, &mut self.counters);
        Ok(())
    }

    /// Answers a datagram `from` a peer's side `to` us with an ICMP (v6) destination
    /// unreachable, as a host with nothing on the port does (RFC 1122 4.1.3.1). The quote is
    /// rebuilt from the addresses: the IP and UDP headers are what a receiver reads (RFC 792).
    pub fn udp_refuse(&mut self, now_ms: f64, from: SocketAddr, to: SocketAddr, why: Unreachable) -> Result<(), RequestError> {
        let now = self.clock.set(now_ms);
        self.tunnels.route(from.ip()).ok_or(RequestError::NoRoute)?;
        let mut original = Vec::new();
        wire::build_udp(from, to, &[], self.mtu, &mut original).map_err(|_| RequestError::MixedFamilies)?;
        wire::unreachable(&original, why, &mut self.built).map_err(|_| RequestError::MixedFamilies)?;
        self.tunnels.send_icmp_error(now, &self.built, &mut self.events, &mut self.counters);
        Ok(())
    }

    /// Sends a peer a keepalive now, starting a handshake if there is no session; false when
    /// there is no such peer or it has no endpoint.
    pub fn keepalive(&mut self, now_ms: f64, peer: u32) -> bool {
        self.clock.set(now_ms);
        self.tunnels.keepalive(peer, &mut self.events, &mut self.counters)
    }

    /// The configured peers, with their ids.
    pub fn peer(&self, id: u32) -> Option<&Peer> {
        self.tunnels.peer(id)
    }

    pub fn peers(&self) -> impl Iterator<Item = (u32, &Peer)> {
        self.tunnels.peers()
    }

    /// Counts a packet the host asked for and the engine could not send (see commands.rs).
    pub fn count_dropped(&mut self, reason: DropReason) {
        self.counters.count(reason);
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn connection_count(&self) -> usize {
        self.tcp.connection_count()
    }

    pub fn connection_stats(&self, id: u32) -> Option<ConnectionStats> {
        self.tcp.connection_stats(id)
    }

    pub fn tcp_totals(&self) -> TcpTotals {
        self.tcp.totals()
    }

    /// UDP flows open now, and datagrams refused over the per-peer limit.
    pub fn udp_flows(&self) -> (usize, u64) {
        (self.udp.count(), self.udp.refused)
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
