//! The WireGuard side: where a datagram enters and is decrypted, and where an inner
//! packet is encrypted for the peer that owns its destination.
//!
//! One boringtun [`Tunn`] per peer. Read `receive.rs` for the demux (handshake
//! initiations by the sender's static key, everything else by receiver index) and
//! `send.rs` for cryptokey routing on the way out plus the timers, and `icmp_budget.rs`
//! for how many ICMP errors each peer may be sent.
//! Protocol reference: the WireGuard paper, sections 5.4 (messages) and 6 (timers).

mod icmp_budget;
mod receive;
mod send;

use crate::allowed_ips::{AllowedIps, PrefixTooLong};
use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::Tunn;
use boringtun::x25519::{PublicKey, StaticSecret};
use icmp_budget::IcmpBudget;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Handshake initiations per second (all peers together) before we answer with cookies.
const HANDSHAKES_PER_SECOND: u64 = 100;
/// boringtun keeps a peer's session index in the low 8 bits; the rest is ours (24 bits).
const MAX_PEERS: usize = 1 << 24;
/// The largest UDP payload, plus room for what encryption adds.
pub const BUFFER_SIZE: usize = 65_536 + 64;
/// A key we do not know is reported at most this often (its handshakes keep coming).
const UNKNOWN_PEER_REPORT_US: u64 = 60_000_000;
/// Keys remembered for that; past this many the memory is cleared (a flood of keys).
const UNKNOWN_PEERS_REMEMBERED: usize = 1024;
/// The largest UDP payload (65,535 less the UDP header). Anything longer did not come off
/// a network, and boringtun panics on a data message that does not fit its buffer.
const MAX_DATAGRAM: usize = 65_535 - 8;
/// KEEPALIVE_TIMEOUT + REKEY_TIMEOUT (whitepaper 6.2): data unanswered this long, a new handshake.
const UNANSWERED_US: u64 = 15_000_000;

pub struct PeerConfig {
    pub public_key: [u8; 32],
    pub preshared_key: Option<[u8; 32]>,
    /// Seconds; 0 is off.
    pub persistent_keepalive: u16,
    pub endpoint: Option<SocketAddr>,
}

pub struct Peer {
    pub public_key: [u8; 32],
    tunn: Tunn,
    /// Where this peer's datagrams go: configured, then the source of its latest
    /// authenticated datagram (roaming).
    pub endpoint: Option<SocketAddr>,
    /// The ICMP errors we may still send it.
    icmp_errors: IcmpBudget,
    /// Data sent since the peer was last heard from: whitepaper 6.2's handshake timer (`send.rs`).
    unanswered: Unanswered,
}

/// Whether data we sent awaits a packet from the peer, and since which run of the timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unanswered {
    No,
    /// Sent since the last run of the timers, which notes the time.
    Sent,
    Since(u64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PeerStats {
    pub since_handshake: Option<Duration>,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub endpoint: Option<SocketAddr>,
}

impl Peer {
    /// An authenticated packet came from `from`: the peer is there (roaming), and it answered
    /// whatever data we sent before (whitepaper 6.2).
    fn heard_from(&mut self, from: SocketAddr) {
        self.endpoint = Some(from);
        self.unanswered = Unanswered::No;
    }

    pub fn stats(&self) -> PeerStats {
        let (since_handshake, tx, rx, _, _) = self.tunn.stats();
        PeerStats { since_handshake, tx_bytes: tx as u64, rx_bytes: rx as u64, endpoint: self.endpoint }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum TunnelError {
    DuplicatePeer,
    OwnKey,
    TooManyPeers,
}

impl fmt::Display for TunnelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TunnelError::DuplicatePeer => "a peer with this public key already exists",
            TunnelError::OwnKey => "a peer cannot have the server's own public key",
            TunnelError::TooManyPeers => "too many peers",
        })
    }
}

pub struct Tunnels {
    private: StaticSecret,
    public: PublicKey,
    /// By id; a removed peer leaves its slot empty (ids are never reused, so a stale
    /// session index can only miss).
    peers: Vec<Option<Peer>>,
    by_key: HashMap<[u8; 32], u32>,
    routes: AllowedIps<u32>,
    /// Shared by all peers: counts initiations and answers a flood with cookie replies
    /// before any expensive Diffie-Hellman is done.
    gate: Arc<RateLimiter>,
    /// Given to each `Tunn`, which re-checks MACs itself; never "under load", so a
    /// packet the gate let through is not counted twice.
    mac_checker: Arc<RateLimiter>,
    /// Where outgoing datagrams are encrypted.
    buf: Vec<u8>,
    /// Report each outgoing inner packet as an event (the host's tap).
    pub tap: bool,
    /// When each unknown key was last reported.
    unknown_reported: HashMap<[u8; 32], u64>,
    /// A peer whose answer to our initiation just opened a new session (`take_renewed`).
    renewed: Option<u32>,
}

impl Tunnels {
    pub fn new(private_key: [u8; 32]) -> Self {
        let private = StaticSecret::from(private_key);
        let public = PublicKey::from(&private);
        Tunnels {
            gate: Arc::new(RateLimiter::new(&public, HANDSHAKES_PER_SECOND)),
            mac_checker: Arc::new(RateLimiter::new(&public, u64::MAX)),
            private,
            public,
            peers: Vec::new(),
            by_key: HashMap::new(),
            routes: AllowedIps::new(),
            buf: vec![0; BUFFER_SIZE],
            tap: false,
            unknown_reported: HashMap::new(),
            renewed: None,
        }
    }

    pub fn public_key(&self) -> [u8; 32] {
        *self.public.as_bytes()
    }

    pub fn add_peer(&mut self, config: PeerConfig) -> Result<u32, TunnelError> {
        if self.by_key.contains_key(&config.public_key) {
            return Err(TunnelError::DuplicatePeer);
        }
        if &config.public_key == self.public.as_bytes() {
            return Err(TunnelError::OwnKey);
        }
        if self.peers.len() >= MAX_PEERS {
            return Err(TunnelError::TooManyPeers);
        }
        let id = self.peers.len() as u32;
        let keepalive = (config.persistent_keepalive > 0).then_some(config.persistent_keepalive);
        let tunn = Tunn::new(
            self.private.clone(),
            PublicKey::from(config.public_key),
            config.preshared_key,
            keepalive,
            id,
            Some(self.mac_checker.clone()),
        );
        self.peers.push(Some(Peer {
            public_key: config.public_key,
            tunn,
            endpoint: config.endpoint,
            icmp_errors: IcmpBudget::new(),
            unanswered: Unanswered::No,
        }));
        self.by_key.insert(config.public_key, id);
        Ok(id)
    }

    /// Forgets a peer: its sessions end at once and its prefixes route nowhere. Returns its id.
    pub fn remove_peer(&mut self, public_key: &[u8; 32]) -> Option<u32> {
        let id = self.by_key.remove(public_key)?;
        self.peers[id as usize] = None;
        self.routes.remove_value(id);
        Some(id)
    }

    /// The peer whose handshake response, in the datagram `receive` took last, opened a new
    /// session with it, if any.
    pub fn take_renewed(&mut self) -> Option<u32> {
        self.renewed.take()
    }

    /// The peer with this id, if it is still configured.
    pub fn peer(&self, id: u32) -> Option<&Peer> {
        self.peers.get(id as usize)?.as_ref()
    }

    fn peer_mut(peers: &mut [Option<Peer>], id: u32) -> Option<&mut Peer> {
        peers.get_mut(id as usize)?.as_mut()
    }

    /// Routes `ip/prefix_len` to `peer`, both ways: packets to it go to that peer, and
    /// packets from it are accepted only from that peer.
    pub fn allow(&mut self, peer: u32, ip: IpAddr, prefix_len: u8) -> Result<(), PrefixTooLong> {
        self.routes.insert(ip, prefix_len, peer)
    }

    /// The peer whose `allowedIps` hold `ip`.
    pub fn route(&self, ip: IpAddr) -> Option<u32> {
        self.routes.lookup(ip)
    }

    /// The configured peers, with their ids.
    pub fn peers(&self) -> impl Iterator<Item = (u32, &Peer)> {
        self.peers.iter().enumerate().filter_map(|(id, peer)| Some((id as u32, peer.as_ref()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(public_key: [u8; 32]) -> PeerConfig {
        PeerConfig { public_key, preshared_key: None, persistent_keepalive: 0, endpoint: None }
    }

    /// A public key names one peer (wg(8): a peer is identified by its public key): a second
    /// peer with a key already configured, or with the server's own, is refused with the
    /// message the host shows.
    #[test]
    fn a_duplicate_key_or_the_servers_own_is_refused_with_a_message() {
        let mut tunnels = Tunnels::new([0x42; 32]);
        assert_eq!(tunnels.add_peer(peer([1; 32])), Ok(0));
        assert_eq!(tunnels.add_peer(peer([2; 32])), Ok(1));
        let duplicate = tunnels.add_peer(peer([1; 32])).unwrap_err();
        assert_eq!(duplicate.to_string(), "a peer with this public key already exists");
        let own = tunnels.add_peer(peer(tunnels.public_key())).unwrap_err();
        assert_eq!(own.to_string(), "a peer cannot have the server's own public key");
        assert_eq!(TunnelError::TooManyPeers.to_string(), "too many peers");
        assert_eq!(tunnels.peers().count(), 2);
    }

    /// An allowedIps prefix longer than its address family is refused, not cut short.
    #[test]
    fn an_allowed_prefix_longer_than_its_family_is_refused() {
        let mut tunnels = Tunnels::new([0x42; 32]);
        let id = tunnels.add_peer(peer([1; 32])).unwrap();
        assert_eq!(tunnels.allow(id, "10.0.0.2".parse().unwrap(), 33), Err(PrefixTooLong));
        assert_eq!(tunnels.allow(id, "fd00::2".parse().unwrap(), 129), Err(PrefixTooLong));
        assert_eq!(tunnels.route("10.0.0.2".parse().unwrap()), None);
        assert_eq!(tunnels.allow(id, "10.0.0.2".parse().unwrap(), 32), Ok(()));
        assert_eq!(tunnels.route("10.0.0.2".parse().unwrap()), Some(id));
    }
}
