//! Inner packets out to peers (cryptokey routing by destination), and the timers
//! that drive rekeys, retries and keepalives.

use super::receive::drop_reason;
use super::{Tunnels, Unanswered, UNANSWERED_US};
use crate::counters::{Counters, DropReason};
use crate::events::{Direction, Events};
use boringtun::noise::{Tunn, TunnResult};

/// The first byte of a transport data message (whitepaper 5.4.6).
const DATA_MESSAGE: u8 = 4;

impl Tunnels {
    /// Encrypts `packet` for the peer whose `allowedIps` hold its destination.
    pub fn send(&mut self, packet: &[u8], events: &mut Events, counters: &mut Counters) {
        let Some(dst) = Tunn::dst_address(packet) else {
            counters.count(DropReason::InnerMalformed);
            return;
        };
        let peer_id = self.routes.lookup(dst);
        let Some((peer_id, peer)) = peer_id.and_then(|id| Some((id, Tunnels::peer_mut(&mut self.peers, id)?))) else {
            counters.count(DropReason::NoRoute);
            return;
        };
        let Some(endpoint) = peer.endpoint else {
            counters.count(DropReason::NoEndpoint);
            return;
        };
        if self.tap {
            events.inner_packet(Direction::ToPeer, peer_id, packet);
        }
        match peer.tunn.encapsulate(packet, &mut self.buf) {
            TunnResult::WriteToNetwork(datagram) => {
                // Data in a session (not an initiation with the packet queued behind it) now
                // awaits an answer; keepalives (`keepalive`) do not (whitepaper 6.2).
                if datagram[0] == DATA_MESSAGE && peer.unanswered == Unanswered::No {
                    peer.unanswered = Unanswered::Sent;
                }
                events.datagram(endpoint, datagram);
            }
            TunnResult::Err(error) => counters.count(drop_reason(&error)),
            _ => {}
        }
    }

    /// Sends an ICMP error (`packet`) unless its peer has had its share of them lately
    /// (`icmp_budget.rs`); one held back is counted.
    pub fn send_icmp_error(&mut self, now: u64, packet: &[u8], events: &mut Events, counters: &mut Counters) {
        let peer = Tunn::dst_address(packet).and_then(|dst| self.routes.lookup(dst)).and_then(|id| Tunnels::peer_mut(&mut self.peers, id));
        if peer.is_some_and(|peer| !peer.icmp_errors.take(now)) {
            counters.count(DropReason::IcmpRateLimited);
        } else {
            self.send(packet, events, counters);
        }
    }

    /// Sends `peer` a keepalive (an empty data message) now, as `wg` does when a persistent
    /// keepalive is set: with no session, boringtun queues it and starts a handshake
    /// (whitepaper 6.5). False when there is no such peer or it has no endpoint (counted).
    pub fn keepalive(&mut self, peer_id: u32, events: &mut Events, counters: &mut Counters) -> bool {
        let Some(peer) = Tunnels::peer_mut(&mut self.peers, peer_id) else { return false };
        let Some(endpoint) = peer.endpoint else {
            counters.count(DropReason::NoEndpoint);
            return false;
        };
        match peer.tunn.encapsulate(&[], &mut self.buf) {
            TunnResult::WriteToNetwork(datagram) => events.datagram(endpoint, datagram),
            TunnResult::Err(error) => counters.count(drop_reason(&error)),
            _ => {}
        }
        true
    }

    /// Runs every peer's timers at `now`. Call a few times a second; boringtun's timers have
    /// one-second resolution.
    pub fn tick(&mut self, now: u64, events: &mut Events) {
        self.gate.reset_count(); // resets at most once per second of host time
        for peer in self.peers.iter_mut().flatten() {
            if let TunnResult::WriteToNetwork(datagram) = peer.tunn.update_timers(&mut self.buf) {
                if let Some(endpoint) = peer.endpoint {
                    events.datagram(endpoint, datagram);
                }
            }
            // Whitepaper 6.2: data unanswered for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT, a new
            // handshake (then retried every REKEY_TIMEOUT, 6.4), as wireguard-go's newHandshake
            // timer does. boringtun's own check stamps a packet with its last timer run and
            // wants data sent *after* the last packet received: an ACK sent in the same
            // moment as the segment it answers never counts, so a receiver whose peer
            // restarted waited for its next TCP keep-alive. At most one run late, and the
            // initiation is nothing when boringtun has one under way.
            match peer.unanswered {
                Unanswered::Sent => peer.unanswered = Unanswered::Since(now),
                Unanswered::Since(at) if now.saturating_sub(at) >= UNANSWERED_US => {
                    peer.unanswered = Unanswered::No;
                    let Some(endpoint) = peer.endpoint else { continue }; // data went there: always set
                    if let TunnResult::WriteToNetwork(initiation) = peer.tunn.format_handshake_initiation(&mut self.buf, false) {
                        events.datagram(endpoint, initiation);
                    }
                }
                _ => {}
            }
        }
    }
}
