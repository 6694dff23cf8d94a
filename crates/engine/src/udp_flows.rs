//! UDP has no connections, but a peer's datagrams from one source to one destination are a
//! flow, and a proxy spends a socket on each: a peer may have only so many at once. A flow
//! lives while datagrams go either way and ends after a quiet spell, as a NAT's would.

use std::collections::HashMap;
use std::net::SocketAddr;

/// (peer, the peer's address, the destination it sent to).
type FlowKey = (u32, SocketAddr, SocketAddr);

#[derive(Debug)]
pub struct UdpFlows {
    /// When each flow last carried a datagram.
    last_seen: HashMap<FlowKey, u64>,
    per_peer: HashMap<u32, usize>,
    pub max_per_peer: usize,
    pub idle_us: u64,
    /// Datagrams turned away because their peer had too many flows.
    pub refused: u64,
}

impl UdpFlows {
    pub fn new(max_per_peer: usize, idle_us: u64) -> Self {
        UdpFlows { last_seen: HashMap::new(), per_peer: HashMap::new(), max_per_peer, idle_us, refused: 0 }
    }

    /// A datagram from `peer`'s `src` to `dst`: false if it would start a flow past the limit.
    pub fn admit(&mut self, now: u64, peer: u32, src: SocketAddr, dst: SocketAddr) -> bool {
        if let Some(seen) = self.last_seen.get_mut(&(peer, src, dst)) {
            *seen = now;
            return true;
        }
        let count = self.per_peer.entry(peer).or_default();
        if *count >= self.max_per_peer {
            self.refused += 1;
            return false;
        }
        *count += 1;
        self.last_seen.insert((peer, src, dst), now);
        true
    }

    /// A datagram back to `peer`'s `src` from `dst` keeps its flow alive (it starts none).
    pub fn refresh(&mut self, now: u64, peer: u32, src: SocketAddr, dst: SocketAddr) {
        if let Some(seen) = self.last_seen.get_mut(&(peer, src, dst)) {
            *seen = now;
        }
    }

    /// Ends the flows quiet for longer than `idle_us`.
    pub fn expire(&mut self, now: u64) {
        let (idle, per_peer) = (self.idle_us, &mut self.per_peer);
        self.last_seen.retain(|&(peer, _, _), &mut seen| {
            let live = now.saturating_sub(seen) < idle;
            if !live {
                let count = per_peer.entry(peer).or_default();
                *count -= 1;
                if *count == 0 {
                    per_peer.remove(&peer);
                }
            }
            live
        });
    }

    /// Forgets `peer`'s flows.
    pub fn remove_peer(&mut self, peer: u32) {
        self.last_seen.retain(|&(p, _, _), _| p != peer);
        self.per_peer.remove(&peer);
    }

    pub fn count(&self) -> usize {
        self.last_seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_peer_gets_its_limit_of_flows_and_replies_keep_them_alive() {
        let mut flows = UdpFlows::new(2, 60_000_000);
        let (a, b, c) = (addr("8.8.8.8:53"), addr("1.1.1.1:53"), addr("9.9.9.9:53"));
        let src = addr("10.0.0.2:5000");
        assert!(flows.admit(0, 0, src, a));
        assert!(flows.admit(0, 0, src, b));
        assert!(flows.admit(1, 0, src, a), "an existing flow goes on");
        assert!(!flows.admit(1, 0, src, c), "a third is refused");
        assert!(flows.admit(1, 1, src, c), "another peer has its own limit");
        assert_eq!((flows.count(), flows.refused), (3, 1));
        // Only `a` hears back; after a minute `b` has ended and `c` may start.
        flows.refresh(50_000_000, 0, src, a);
        flows.expire(61_000_000);
        assert_eq!(flows.count(), 1);
        assert!(flows.admit(61_000_000, 0, src, c));
        flows.remove_peer(0);
        assert_eq!(flows.count(), 0);
        assert!(flows.admit(62_000_000, 0, src, b) && flows.admit(62_000_000, 0, src, a));
    }

    /// A flow ends once it has been quiet for the idle time (a NAT's mapping timer, RFC 4787
    /// §4.3): at exactly that time, not a microsecond later.
    #[test]
    fn a_flow_ends_when_quiet_for_exactly_the_idle_time() {
        let mut flows = UdpFlows::new(1, 60_000_000);
        let (src, dst) = (addr("10.0.0.2:5000"), addr("8.8.8.8:53"));
        assert!(flows.admit(1_000, 0, src, dst));
        flows.expire(1_000 + 60_000_000 - 1);
        assert_eq!(flows.count(), 1);
        flows.expire(1_000 + 60_000_000);
        assert_eq!(flows.count(), 0);
        assert!(flows.admit(1_000 + 60_000_000, 0, src, addr("9.9.9.9:53")), "its place is free");
    }

    /// A flow that ends frees its own place only: the peer's live flows still count against
    /// its limit.
    #[test]
    fn an_ended_flow_frees_its_place_and_the_live_ones_still_count() {
        let mut flows = UdpFlows::new(2, 60_000_000);
        let src = addr("10.0.0.2:5000");
        let (a, b, c, d) = (addr("8.8.8.8:53"), addr("1.1.1.1:53"), addr("9.9.9.9:53"), addr("8.8.4.4:53"));
        assert!(flows.admit(0, 0, src, a));
        assert!(flows.admit(30_000_000, 0, src, b));
        flows.expire(60_000_000); // `a` ends, `b` lives
        assert_eq!(flows.count(), 1);
        assert!(flows.admit(60_000_000, 0, src, c), "a's place");
        assert!(!flows.admit(60_000_000, 0, src, d), "b and c fill the limit");
        assert_eq!(flows.refused, 1);
    }
}
