//! The binary address format shared with the host: 19 bytes,
//! `[family u8 (4 or 6)][16 address bytes, IPv4 in the first 4][port u16 little-endian]`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Bytes of an address.
pub const ADDRESS_SIZE: usize = 19;

pub fn write_address(out: &mut Vec<u8>, addr: SocketAddr) {
    let mut bytes = [0u8; ADDRESS_SIZE];
    encode_address(&mut bytes, addr);
    out.extend_from_slice(&bytes);
}

pub fn encode_address(out: &mut [u8; ADDRESS_SIZE], addr: SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => {
            out[0] = 4;
            out[1..5].copy_from_slice(&ip.octets());
            out[5..17].fill(0);
        }
        IpAddr::V6(ip) => {
            out[0] = 6;
            out[1..17].copy_from_slice(&ip.octets());
        }
    }
    out[17..19].copy_from_slice(&addr.port().to_le_bytes());
}

/// Reads an address; `None` when the slice is short or the family byte is unknown.
pub fn read_address(bytes: &[u8]) -> Option<SocketAddr> {
    let bytes: &[u8; ADDRESS_SIZE] = bytes.get(..ADDRESS_SIZE)?.try_into().ok()?;
    let port = u16::from_le_bytes([bytes[17], bytes[18]]);
    let ip = match bytes[0] {
        4 => IpAddr::V4(Ipv4Addr::new(bytes[1], bytes[2], bytes[3], bytes[4])),
        6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&bytes[1..17]).ok()?)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_both_families() {
        for text in ["10.0.0.2:51820", "[fd00::2]:443", "0.0.0.0:0", "[::ffff:1.2.3.4]:9"] {
            let addr: SocketAddr = text.parse().unwrap();
            let mut out = Vec::new();
            write_address(&mut out, addr);
            assert_eq!(out.len(), ADDRESS_SIZE);
            assert_eq!(read_address(&out), Some(addr));
        }
    }

    #[test]
    fn rejects_short_and_unknown_family() {
        assert_eq!(read_address(&[4; 18]), None);
        let mut bytes = [0u8; ADDRESS_SIZE];
        bytes[0] = 5;
        assert_eq!(read_address(&bytes), None);
    }
}
