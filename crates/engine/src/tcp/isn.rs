//! Initial sequence numbers as RFC 6528 §3 computes them:
//! ISN = M + F(localip, localport, remoteip, remoteport, secretkey), where M is a clock that
//! ticks every 4 µs and F a keyed hash (here keyed BLAKE2s, which boringtun already brings).
//! Someone off the path can neither guess our numbers nor, from their own connections,
//! learn another 4-tuple's; one 4-tuple's numbers climb with the clock, so a new
//! incarnation starts past an old one's (RFC 9293 §3.4.1). The same hash gives the offset
//! of the connection's RFC 7323 timestamp clock (as Linux's secure_tcp_ts_off), so TSval
//! hides our uptime yet climbs from one incarnation of a 4-tuple to the next (RFC 6191).

use blake2::digest::{FixedOutput, KeyInit, Update};
use blake2::Blake2sMac256;
use std::net::{IpAddr, SocketAddr};

/// M's tick (RFC 6528 §3, RFC 9293 §3.4.1).
const CLOCK_TICK_US: u64 = 4;

/// A new connection's starting numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Initial {
    pub seq: u32,
    pub ts_offset: u32,
}

#[derive(Clone)]
pub struct IsnGenerator {
    /// F keyed with the secret, ready to take a 4-tuple.
    keyed: Blake2sMac256,
}

impl IsnGenerator {
    /// `secret` must come from a source outsiders cannot predict (the OS's).
    pub fn new(secret: u128) -> Self {
        let keyed = Blake2sMac256::new_from_slice(&secret.to_le_bytes()).expect("a 16-byte key fits BLAKE2s");
        IsnGenerator { keyed }
    }

    /// The ISN and timestamp offset for a connection between `local` and `remote` starting at `now` (µs).
    pub fn initial(&self, now: u64, local: SocketAddr, remote: SocketAddr) -> Initial {
        let mut f = self.keyed.clone();
        for end in [local, remote] {
            // Both ends are of one family, so the input's length tells it.
            match end.ip() {
                IpAddr::V4(ip) => f.update(&ip.octets()),
                IpAddr::V6(ip) => f.update(&ip.octets()),
            }
            f.update(&end.port().to_be_bytes());
        }
        let hash = f.finalize_fixed();
        let m = (now / CLOCK_TICK_US) as u32; // the clock wraps, as sequence numbers do
        let seq = m.wrapping_add(u32::from_le_bytes([hash[0], hash[1], hash[2], hash[3]]));
        Initial { seq, ts_offset: u32::from_le_bytes([hash[4], hash[5], hash[6], hash[7]]) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn rfc6528_m_ticks_every_4_us_for_one_4_tuple() {
        let isn = IsnGenerator::new(7);
        let (local, remote) = (addr("198.51.100.7:80"), addr("10.0.0.2:40000"));
        let start = isn.initial(1_000_003, local, remote).seq;
        assert_eq!(isn.initial(1_000_000, local, remote).seq, start, "within one tick");
        assert_eq!(isn.initial(1_000_004, local, remote).seq, start.wrapping_add(1));
        assert_eq!(isn.initial(1_004_000, local, remote).seq, start.wrapping_add(1000));
        // Past 2^32 ticks (about 4.8 hours) it wraps, as sequence numbers do.
        assert_eq!(isn.initial(1_000_000 + (4 << 32), local, remote).seq, start);
    }

    #[test]
    fn rfc6528_f_is_keyed_and_covers_every_part_of_the_4_tuple() {
        let isn = IsnGenerator::new(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        let (local, remote) = (addr("198.51.100.7:80"), addr("10.0.0.2:40000"));
        let base = isn.initial(0, local, remote).seq;
        assert_ne!(IsnGenerator::new(0x0123_4567_89ab_cdef_0011_2233_4455_6678).initial(0, local, remote).seq, base, "another secret");
        let others = [
            (addr("198.51.100.8:80"), remote),
            (addr("198.51.100.7:81"), remote),
            (local, addr("10.0.0.3:40000")),
            (local, addr("10.0.0.2:40001")),
            (remote, local),
            (addr("[::ffff:198.51.100.7]:80"), addr("[::ffff:10.0.0.2]:40000")),
        ];
        for (l, r) in others {
            assert_ne!(isn.initial(0, l, r).seq, base, "{l} {r}");
        }
    }
}
