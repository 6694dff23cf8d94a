//! A datagram from the network: rate-limit, find the peer, decrypt, check the source.

use super::{Tunnels, MAX_DATAGRAM, UNKNOWN_PEERS_REMEMBERED, UNKNOWN_PEER_REPORT_US};
use crate::counters::{Counters, DropReason};
use crate::events::Events;
use boringtun::noise::errors::WireGuardError;
use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::{Packet, TunnResult};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

impl Tunnels {
    /// Handles one datagram from `from`, decrypting into `buf` (at least [`BUFFER_SIZE`]
    /// bytes; the caller's, so the packet can stay there while replies are encrypted).
    /// Replies (handshake responses, cookies, queued packets) go to `events`; a decrypted
    /// inner packet's peer and place in `buf` are returned.
    pub fn receive(
        &mut self,
        now: u64,
        from: SocketAddr,
        datagram: &[u8],
        buf: &mut [u8],
        events: &mut Events,
        counters: &mut Counters,
    ) -> Option<(u32, Range<usize>)> {
        let Tunnels { private, public, peers, by_key, routes, gate, unknown_reported, renewed, .. } = self;

        if datagram.len() > MAX_DATAGRAM {
            counters.count(DropReason::Malformed);
            return None;
        }

        // Cheap checks first: message shape, mac1, and the initiation rate.
        let packet = match gate.verify_packet(Some(from.ip()), datagram, buf) {
            Ok(packet) => packet,
            Err(TunnResult::WriteToNetwork(cookie_reply)) => {
                events.datagram(from, cookie_reply);
                counters.count(DropReason::UnderLoad);
                return None;
            }
            Err(TunnResult::Err(error)) => {
                counters.count(drop_reason(&error));
                return None;
            }
            Err(_) => return None,
        };

        let peer_id = match packet {
            Packet::HandshakeInit(ref init) => match parse_handshake_anon(private, public, init) {
                Ok(half) => {
                    let known = by_key.get(&half.peer_static_public).copied();
                    if known.is_none() {
                        report_unknown(unknown_reported, now, &half.peer_static_public, from, events);
                    }
                    known
                }
                Err(error) => {
                    counters.count(drop_reason(&error));
                    return None;
                }
            },
            Packet::HandshakeResponse(ref p) => Some(p.receiver_idx >> 8),
            Packet::PacketCookieReply(ref p) => Some(p.receiver_idx >> 8),
            Packet::PacketData(ref p) => Some(p.receiver_idx >> 8),
        };
        let Some(peer) = peer_id.and_then(|id| Tunnels::peer_mut(peers, id)) else {
            counters.count(DropReason::UnknownPeer);
            return None;
        };
        let peer_id = peer_id.unwrap_or_default();
        // Roam only on what proves the sender holds the keys (a handshake or a data packet
        // that authenticated, as wireguard-go does): a cookie reply can be forged by anyone
        // who saw our initiation's mac1 and knows the peer's public key.
        let authenticated = !matches!(packet, Packet::PacketCookieReply(_));
        let response = matches!(packet, Packet::HandshakeResponse(_));

        // The decrypted packet lives in `buf`; remember where, so the borrow can end here.
        let buf_start = buf.as_ptr() as usize;
        let (packet, src) = match peer.tunn.decapsulate(Some(from.ip()), datagram, buf) {
            TunnResult::Err(error) => {
                counters.count(drop_reason(&error));
                return None;
            }
            TunnResult::Done => {
                if authenticated {
                    peer.heard_from(from);
                }
                return None;
            }
            TunnResult::WriteToNetwork(reply) => {
                peer.heard_from(from);
                if response {
                    *renewed = Some(peer_id); // the reply is the keepalive that confirms it
                }
                events.datagram(from, reply);
                // A new session may release packets boringtun queued during the handshake.
                while let TunnResult::WriteToNetwork(queued) = peer.tunn.decapsulate(None, &[], buf) {
                    events.datagram(from, queued);
                }
                return None;
            }
            TunnResult::WriteToTunnelV4(packet, src) => (packet, IpAddr::V4(src)),
            TunnResult::WriteToTunnelV6(packet, src) => (packet, IpAddr::V6(src)),
        };
        peer.heard_from(from);
        let start = packet.as_ptr() as usize - buf_start;
        let range = start..start + packet.len();

        // Cryptokey routing on the way in: the inner source must route back to the sender.
        if routes.lookup(src) != Some(peer_id) {
            counters.count(DropReason::SourceNotAllowed);
            return None;
        }
        Some((peer_id, range))
    }
}

/// Tells the host of a handshake from an unknown key (someone is trying a config we do not
/// have), once a minute per key at most.
fn report_unknown(reported: &mut HashMap<[u8; 32], u64>, now: u64, key: &[u8; 32], from: SocketAddr, events: &mut Events) {
    if reported.get(key).is_some_and(|&at| now.saturating_sub(at) < UNKNOWN_PEER_REPORT_US) {
        return;
    }
    if reported.len() >= UNKNOWN_PEERS_REMEMBERED {
        reported.clear();
    }
    reported.insert(*key, now);
    events.unknown_peer(key, from);
}

pub(crate) fn drop_reason(error: &WireGuardError) -> DropReason {
    use WireGuardError::*;
    match error {
        DuplicateCounter | InvalidCounter | WrongTai64nTimestamp => DropReason::Replay,
        InvalidMac | InvalidAeadTag | WrongKey | InvalidTai64nTimestamp => DropReason::AuthFailed,
        WrongIndex => DropReason::UnknownPeer,
        NoCurrentSession | ConnectionExpired => DropReason::NoSession,
        UnderLoad => DropReason::UnderLoad,
        _ => DropReason::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::decode::decode;

    /// Reports `key` as the receive path does at `now`; how many events it wrote (0 or 1).
    fn report(reported: &mut HashMap<[u8; 32], u64>, now: u64, key: [u8; 32]) -> usize {
        let mut events = Events::default();
        report_unknown(reported, now, &key, "203.0.113.9:1234".parse().unwrap(), &mut events);
        decode(events.as_bytes()).len()
    }

    /// A key nobody configured is reported once a minute at most: again once a full minute
    /// has passed since its last report, not a microsecond before.
    #[test]
    fn an_unknown_key_is_reported_again_a_full_minute_after_its_last_report() {
        let mut reported = HashMap::new();
        assert_eq!(report(&mut reported, 5_000, [1; 32]), 1);
        assert_eq!(report(&mut reported, 5_000 + UNKNOWN_PEER_REPORT_US - 1, [1; 32]), 0);
        assert_eq!(report(&mut reported, 5_000 + UNKNOWN_PEER_REPORT_US, [1; 32]), 1);
        assert_eq!(report(&mut reported, 5_000 + UNKNOWN_PEER_REPORT_US + 1, [1; 32]), 0);
    }

    /// A flood of keys costs bounded memory: the keys are remembered up to
    /// UNKNOWN_PEERS_REMEMBERED, and one more clears the memory, so keys seen before are
    /// reported again.
    #[test]
    fn a_flood_of_unknown_keys_is_remembered_up_to_its_limit_then_forgotten() {
        let key = |i: usize| {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(i as u64).to_le_bytes());
            key
        };
        let mut reported = HashMap::new();
        for i in 0..UNKNOWN_PEERS_REMEMBERED {
            assert_eq!(report(&mut reported, 0, key(i)), 1, "key {i}");
        }
        assert_eq!(reported.len(), UNKNOWN_PEERS_REMEMBERED);
        assert_eq!(report(&mut reported, 1, key(0)), 0, "every key of the flood is still remembered");
        assert_eq!(report(&mut reported, 1, key(UNKNOWN_PEERS_REMEMBERED)), 1);
        assert_eq!(reported.len(), 1, "the memory was cleared for the new key");
        assert_eq!(report(&mut reported, 1, key(0)), 1);
    }
}
