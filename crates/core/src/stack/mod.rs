//! Where TCP state lives: smoltcp in any-IP mode, one socket per connection.
//!
//! A SYN for an unseen (source, destination) pair creates a socket listening on exactly
//! that destination, so a connection to any address and port is accepted and the host
//! learns the destination the client asked for. Each connection then moves data under
//! two limits the host sets: read `credit` (bytes the host will take; when it is spent
//! the data stays in the socket and the TCP window closes) and the socket's send buffer.
//! References: RFC 9293 (TCP), RFC 7323 (window scaling); smoltcp's `socket::tcp`.

mod device;

use crate::events::{CloseReason, Events};
use device::Queues;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::HardwareAddress;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;

const KEEP_ALIVE: Duration = Duration::from_secs(60);
/// A connection whose remote stays silent this long (keep-alives unanswered, data
/// unacknowledged, or a connect unanswered) is dropped.
const TIMEOUT: Duration = Duration::from_secs(180);
const EPHEMERAL_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

#[derive(Debug, Clone)]
pub struct TcpConfig {
    pub receive_buffer: usize,
    pub send_buffer: usize,
    /// Accept incoming connections; when false, a SYN gets a RST.
    pub accept: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpError {
    /// No such connection (it may have closed already).
    UnknownConnection,
    /// The connection can no longer send (closed, or shut down by us).
    NotWritable,
    /// The local or remote address cannot be used (port 0, mixed families, in use).
    Unaddressable,
}

impl fmt::Display for TcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcpError::UnknownConnection => "unknown connection",
            TcpError::NotWritable => "connection is not writable",
            TcpError::Unaddressable => "address cannot be used",
        })
    }
}

struct Connection {
    handle: SocketHandle,
    peer: u32,
    remote: SocketAddr,
    local: SocketAddr,
    outbound: bool,
    /// TCP_OPEN was emitted.
    opened: bool,
    /// Bytes the host still accepts.
    credit: usize,
    /// The host stopped reading: received data is thrown away.
    discard: bool,
    fin_received: bool,
    eof_sent: bool,
    want_writable: bool,
    aborted: bool,
    last_state: State,
    /// Both sides closed (TIME-WAIT, or CLOSED after LAST-ACK): the stream is complete.
    closed_cleanly: bool,
    /// Received data the host has not taken yet, moved out of a cleanly closed socket:
    /// smoltcp empties the socket when TIME-WAIT ends (after 10 s).
    unread: Vec<u8>,
}

pub struct Stack {
    iface: Interface,
    sockets: SocketSet<'static>,
    pub device: Queues,
    config: TcpConfig,
    /// Ordered, so events come out in a deterministic order.
    connections: BTreeMap<u32, Connection>,
    by_tuple: HashMap<(SocketAddr, SocketAddr), u32>,
    next_id: u32,
    next_port: u16,
}

impl Stack {
    pub fn new(mtu: usize, config: TcpConfig, now_ms: u64, random_seed: u64) -> Self {
        let mut device = Queues::new(mtu);
        let mut iface_config = Config::new(HardwareAddress::Ip);
        iface_config.random_seed = random_seed;
        let mut iface = Interface::new(iface_config, &mut device, Instant::from_millis(now_ms as i64));
        iface.set_any_ip(true);
        Stack {
            iface,
            sockets: SocketSet::new(Vec::new()),
            device,
            config,
            connections: BTreeMap::new(),
            by_tuple: HashMap::new(),
            next_id: 1,
            next_port: *EPHEMERAL_PORTS.start() + (random_seed % 16384) as u16,
        }
    }

    /// Takes a decrypted TCP packet from `peer`. `opens` marks a SYN without ACK.
    pub fn input(&mut self, now_ms: u64, peer: u32, packet: &[u8], src: SocketAddr, dst: SocketAddr, opens: bool) {
        if opens && self.config.accept && dst.port() != 0 && !self.by_tuple.contains_key(&(src, dst)) {
            if !self.device.rx.is_empty() {
                // Let queued packets reach their sockets first (a previous listener takes
                // its own SYN), so the new listener is the only one that can take this SYN.
                self.iface.poll(instant(now_ms), &mut self.device, &mut self.sockets);
                self.drop_stale_listeners();
            }
            let mut socket = self.new_socket();
            if socket.listen(dst).is_ok() {
                let handle = self.sockets.add(socket);
                self.insert(handle, peer, src, dst, false);
            }
        }
        self.device.push_rx(packet);
    }

    /// Opens a connection from `local` (port 0 picks one) to `remote`, through `peer`.
    pub fn connect(&mut self, peer: u32, local: SocketAddr, remote: SocketAddr) -> Result<u32, TcpError> {
        if local.is_ipv4() != remote.is_ipv4() || remote.port() == 0 || local.ip().is_unspecified() {
            return Err(TcpError::Unaddressable);
        }
        let local = if local.port() != 0 { local } else { self.free_port(local, remote)? };
        if self.by_tuple.contains_key(&(remote, local)) {
            return Err(TcpError::Unaddressable);
        }
        let mut socket = self.new_socket();
        socket.connect(self.iface.context(), remote, local).map_err(|_| TcpError::Unaddressable)?;
        let handle = self.sockets.add(socket);
        Ok(self.insert(handle, peer, remote, local, true))
    }

    /// Runs the TCP state machines and reports what changed to the host.
    pub fn poll(&mut self, now_ms: u64, events: &mut Events) {
        let now = instant(now_ms);
        self.iface.poll(now, &mut self.device, &mut self.sockets);
        self.service(events);
        // Reading opened the window and the host may have queued data: send that now.
        self.iface.poll(now, &mut self.device, &mut self.sockets);
        self.service(events);
    }

    /// When smoltcp next needs a poll, in host milliseconds.
    pub fn poll_at(&mut self, now_ms: u64) -> Option<u64> {
        self.iface
            .poll_delay(instant(now_ms), &self.sockets)
            .map(|delay| now_ms + delay.total_millis())
    }

    /// Queues `data`; returns how much fit into the send buffer.
    pub fn send(&mut self, id: u32, data: &[u8]) -> Result<usize, TcpError> {
        let (conn, socket) = self.get(id)?;
        if !socket.may_send() {
            return Err(TcpError::NotWritable);
        }
        let sent = socket.send_slice(data).map_err(|_| TcpError::NotWritable)?;
        if sent < data.len() {
            conn.want_writable = true;
        }
        Ok(sent)
    }

    /// Lets the host take `bytes` more of received data.
    pub fn credit(&mut self, id: u32, bytes: usize) -> Result<(), TcpError> {
        let (conn, _) = self.get(id)?;
        conn.credit = conn.credit.saturating_add(bytes);
        Ok(())
    }

    /// Sends FIN once the send buffer has drained.
    pub fn shutdown(&mut self, id: u32) -> Result<(), TcpError> {
        self.get(id)?.1.close();
        Ok(())
    }

    /// Sends RST and forgets the connection; a TCP_CLOSED event follows.
    pub fn abort(&mut self, id: u32) -> Result<(), TcpError> {
        let (conn, socket) = self.get(id)?;
        conn.aborted = true;
        socket.abort();
        Ok(())
    }

    /// The host will not read any more: drop what arrives, keep the window open.
    pub fn discard(&mut self, id: u32) -> Result<(), TcpError> {
        self.get(id)?.0.discard = true;
        Ok(())
    }

    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Removes listeners left in LISTEN after a poll: their SYN was refused, or a reset sent
    /// the half-open connection back there. smoltcp gives a SYN to the first socket listening
    /// on its destination, so such a listener would take another client's SYN, and the host
    /// would be told the wrong peer and address.
    fn drop_stale_listeners(&mut self) {
        let Stack { connections, sockets, by_tuple, .. } = self;
        connections.retain(|_, conn| {
            let stale = !conn.opened && sockets.get::<tcp::Socket>(conn.handle).state() == State::Listen;
            if stale {
                sockets.remove(conn.handle);
                by_tuple.remove(&(conn.remote, conn.local));
            }
            !stale
        });
    }

    fn new_socket(&self) -> tcp::Socket<'static> {
        let rx = tcp::SocketBuffer::new(vec![0; self.config.receive_buffer]);
        let tx = tcp::SocketBuffer::new(vec![0; self.config.send_buffer]);
        let mut socket = tcp::Socket::new(rx, tx);
        socket.set_nagle_enabled(false); // the host batches writes itself; latency matters more
        // Without congestion control a lost burst is resent as the same full-window burst
        // after each timeout, overflowing the same receive buffer again (seen against
        // wireguard-go under load). Reno backs off and recovers.
        socket.set_congestion_control(tcp::CongestionControl::Reno);
        socket.set_keep_alive(Some(KEEP_ALIVE));
        socket.set_timeout(Some(TIMEOUT));
        socket
    }

    fn insert(&mut self, handle: SocketHandle, peer: u32, remote: SocketAddr, local: SocketAddr, outbound: bool) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.connections.insert(
            id,
            Connection {
                handle,
                peer,
                remote,
                local,
                outbound,
                opened: false,
                credit: 0,
                discard: false,
                fin_received: false,
                eof_sent: false,
                want_writable: false,
                aborted: false,
                last_state: State::Closed,
                closed_cleanly: false,
                unread: Vec::new(),
            },
        );
        self.by_tuple.insert((remote, local), id);
        id
    }

    fn get(&mut self, id: u32) -> Result<(&mut Connection, &mut tcp::Socket<'static>), TcpError> {
        let conn = self.connections.get_mut(&id).ok_or(TcpError::UnknownConnection)?;
        let socket = self.sockets.get_mut::<tcp::Socket>(conn.handle);
        Ok((conn, socket))
    }

    fn free_port(&mut self, local: SocketAddr, remote: SocketAddr) -> Result<SocketAddr, TcpError> {
        let span = EPHEMERAL_PORTS.end() - EPHEMERAL_PORTS.start() + 1;
        for _ in 0..span {
            let port = self.next_port;
            self.next_port = if port == *EPHEMERAL_PORTS.end() { *EPHEMERAL_PORTS.start() } else { port + 1 };
            let candidate = SocketAddr::new(local.ip(), port);
            if !self.by_tuple.contains_key(&(remote, candidate)) {
                return Ok(candidate);
            }
        }
        Err(TcpError::Unaddressable)
    }

    /// Moves data to the host and reports opens, EOFs, room to write and closes.
    fn service(&mut self, events: &mut Events) {
        let mut finished = Vec::new();
        for (&id, conn) in self.connections.iter_mut() {
            let socket = self.sockets.get_mut::<tcp::Socket>(conn.handle);
            let state = socket.state();
            if !conn.opened {
                match state {
                    State::Listen | State::SynSent | State::SynReceived => {
                        // A listener still in LISTEN after a poll never got a valid SYN (or
                        // a reset sent it back there); see `drop_stale_listeners`.
                        if state == State::Listen {
                            finished.push(id);
                        }
                        conn.last_state = state;
                        continue;
                    }
                    State::Closed | State::TimeWait => {
                        if socket.remote_endpoint().is_none() || state == State::TimeWait {
                            if conn.outbound {
                                events.tcp_closed(id, if conn.aborted { CloseReason::Aborted } else { CloseReason::Refused });
                            }
                            finished.push(id);
                        }
                        continue;
                    }
                    _ => {
                        events.tcp_open(id, conn.peer, conn.remote, conn.local);
                        conn.opened = true;
                    }
                }
            }

            if state == State::TimeWait || (state == State::Closed && conn.last_state == State::LastAck) {
                conn.closed_cleanly = true;
            }
            if conn.closed_cleanly && !conn.discard {
                while socket.can_recv() {
                    let _ = socket.recv(|data| {
                        conn.unread.extend_from_slice(data);
                        (data.len(), ())
                    });
                }
            }

            if conn.discard {
                conn.unread = Vec::new();
                while socket.can_recv() {
                    let _ = socket.recv(|data| (data.len(), ()));
                }
            } else {
                if conn.credit > 0 && !conn.unread.is_empty() {
                    let n = conn.unread.len().min(conn.credit);
                    events.tcp_data(id, n).copy_from_slice(&conn.unread[..n]);
                    conn.unread.drain(..n);
                    conn.credit -= n;
                }
                // Two rounds: the receive buffer is a ring and may wrap once.
                for _ in 0..2 {
                    if conn.credit == 0 || !socket.can_recv() {
                        break;
                    }
                    let credit = conn.credit;
                    if let Ok(taken) = socket.recv(|data| {
                        let n = data.len().min(credit);
                        events.tcp_data(id, n).copy_from_slice(&data[..n]);
                        (n, n)
                    }) {
                        conn.credit -= taken;
                    }
                }
            }

            if matches!(state, State::CloseWait | State::LastAck | State::Closing | State::TimeWait) {
                conn.fin_received = true;
            }
            if conn.fin_received && !conn.eof_sent && !socket.can_recv() && conn.unread.is_empty() {
                events.tcp_eof(id);
                conn.eof_sent = true;
            }

            if conn.want_writable {
                let room = socket.send_capacity() - socket.send_queue();
                if !socket.may_send() || room >= socket.send_capacity() / 4 {
                    events.tcp_writable(id);
                    conn.want_writable = false;
                }
            }

            // TIME-WAIT is not kept: the host has everything once the data is read.
            let finished_now = match state {
                State::TimeWait | State::Closed if conn.closed_cleanly => conn.unread.is_empty() || conn.aborted,
                State::Closed => socket.remote_endpoint().is_none(),
                _ => false,
            };
            if finished_now {
                let reason = if conn.aborted {
                    CloseReason::Aborted
                } else if conn.closed_cleanly {
                    CloseReason::Closed
                } else {
                    CloseReason::Reset
                };
                events.tcp_closed(id, reason);
                finished.push(id);
            }
            conn.last_state = state;
        }
        for id in finished {
            if let Some(conn) = self.connections.remove(&id) {
                self.sockets.remove(conn.handle);
                self.by_tuple.remove(&(conn.remote, conn.local));
            }
        }
    }
}

fn instant(now_ms: u64) -> Instant {
    Instant::from_millis(now_ms as i64)
}
