//! Cryptokey routing table: IP prefixes to peers, longest prefix wins.
//!
//! A binary trie per address family, one bit per level. Lookups walk at most 32 or 128
//! nodes and remember the last value seen, which is the longest matching prefix.

use std::net::IpAddr;

#[derive(Debug)]
pub struct AllowedIps<T> {
    v4: Trie<T>,
    v6: Trie<T>,
}

impl<T: Copy> Default for AllowedIps<T> {
    fn default() -> Self {
        Self { v4: Trie::new(32), v6: Trie::new(128) }
    }
}

/// The prefix length does not fit the address family.
#[derive(Debug, PartialEq, Eq)]
pub struct PrefixTooLong;

impl<T: Copy> AllowedIps<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps `addr/prefix_len` to `value`, replacing what that exact prefix held. Bits past
    /// the prefix length are ignored, as `wg` does.
    pub fn insert(&mut self, addr: IpAddr, prefix_len: u8, value: T) -> Result<(), PrefixTooLong> {
        let (trie, bits) = self.trie_mut(addr);
        trie.insert(bits, prefix_len, value)
    }

    /// Removes every prefix that maps to `value`.
    pub fn remove_value(&mut self, value: T)
    where
        T: PartialEq,
    {
        for trie in [&mut self.v4, &mut self.v6] {
            for node in &mut trie.nodes {
                if node.value == Some(value) {
                    node.value = None;
                }
            }
        }
    }

    pub fn lookup(&self, addr: IpAddr) -> Option<T> {
        match addr {
            IpAddr::V4(ip) => self.v4.lookup(u128::from(u32::from(ip)) << 96),
            IpAddr::V6(ip) => self.v6.lookup(u128::from(ip)),
        }
    }

    fn trie_mut(&mut self, addr: IpAddr) -> (&mut Trie<T>, u128) {
        match addr {
            IpAddr::V4(ip) => (&mut self.v4, u128::from(u32::from(ip)) << 96),
            IpAddr::V6(ip) => (&mut self.v6, u128::from(ip)),
        }
    }
}

#[derive(Debug)]
struct Trie<T> {
    max_len: u8,
    nodes: Vec<Node<T>>, // nodes[0] is the root (the /0 prefix)
}

#[derive(Debug)]
struct Node<T> {
    children: [u32; 2], // 0 means none: the root is never a child
    value: Option<T>,
}

impl<T: Copy> Trie<T> {
    fn new(max_len: u8) -> Self {
        Self { max_len, nodes: vec![Node { children: [0, 0], value: None }] }
    }

    /// `bits` holds the address left-aligned in 128 bits.
    fn insert(&mut self, bits: u128, prefix_len: u8, value: T) -> Result<(), PrefixTooLong> {
        if prefix_len > self.max_len {
            return Err(PrefixTooLong);
        }
        let mut node = 0usize;
        for depth in 0..prefix_len {
            let bit = bit_at(bits, depth);
            let child = self.nodes[node].children[bit];
            node = if child != 0 {
                child as usize
            } else {
                self.nodes.push(Node { children: [0, 0], value: None });
                let index = self.nodes.len() - 1;
                self.nodes[node].children[bit] = index as u32;
                index
            };
        }
        self.nodes[node].value = Some(value);
        Ok(())
    }

    fn lookup(&self, bits: u128) -> Option<T> {
        let mut node = 0usize;
        let mut best = self.nodes[0].value;
        for depth in 0..self.max_len {
            match self.nodes[node].children[bit_at(bits, depth)] {
                0 => break,
                child => node = child as usize,
            }
            best = self.nodes[node].value.or(best);
        }
        best
    }
}

fn bit_at(bits: u128, depth: u8) -> usize {
    ((bits >> (127 - depth)) & 1) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::XorShift;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn removing_a_value_leaves_the_others_and_shorter_prefixes_take_over() {
        let mut table = AllowedIps::new();
        table.insert(ip("10.0.0.0"), 8, 1).unwrap();
        table.insert(ip("10.1.0.0"), 16, 2).unwrap();
        table.insert(ip("fd00::2"), 128, 2).unwrap();
        table.remove_value(2);
        assert_eq!(table.lookup(ip("10.1.2.3")), Some(1));
        assert_eq!(table.lookup(ip("fd00::2")), None);
    }

    #[test]
    fn longest_prefix_wins() {
        let mut table = AllowedIps::new();
        table.insert(ip("0.0.0.0"), 0, 'a').unwrap();
        table.insert(ip("10.0.0.0"), 8, 'b').unwrap();
        table.insert(ip("10.0.0.2"), 32, 'c').unwrap();
        assert_eq!(table.lookup(ip("10.0.0.2")), Some('c'));
        assert_eq!(table.lookup(ip("10.0.0.3")), Some('b'));
        assert_eq!(table.lookup(ip("192.0.2.1")), Some('a'));
        assert_eq!(table.lookup(ip("fd00::1")), None, "families are separate");
    }

    #[test]
    fn ignores_host_bits_and_replaces_same_prefix() {
        let mut table = AllowedIps::new();
        table.insert(ip("10.1.2.3"), 16, 1).unwrap();
        assert_eq!(table.lookup(ip("10.1.200.200")), Some(1));
        table.insert(ip("10.1.0.0"), 16, 2).unwrap();
        assert_eq!(table.lookup(ip("10.1.9.9")), Some(2));
        assert_eq!(table.lookup(ip("10.2.0.0")), None);
    }

    #[test]
    fn mapped_ipv6_is_not_ipv4() {
        let mut table = AllowedIps::new();
        table.insert(ip("1.2.3.4"), 32, 1).unwrap();
        assert_eq!(table.lookup(ip("::ffff:1.2.3.4")), None);
        table.insert(ip("::"), 0, 2).unwrap();
        assert_eq!(table.lookup(ip("::ffff:1.2.3.4")), Some(2));
    }

    #[test]
    fn rejects_too_long_prefix() {
        let mut table = AllowedIps::new();
        assert_eq!(table.insert(ip("10.0.0.1"), 33, 1), Err(PrefixTooLong));
        assert_eq!(table.insert(ip("fd00::1"), 129, 1), Err(PrefixTooLong));
        assert!(table.insert(ip("fd00::1"), 128, 1).is_ok());
    }

    /// Random prefixes and lookups checked against a naive list scan.
    #[test]
    fn matches_naive_model() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for round in 0..20 {
            let mut table = AllowedIps::new();
            let mut model: Vec<(IpAddr, u8, u32)> = Vec::new();
            // Few distinct high bits so prefixes nest and collide often.
            let random_ip = |rng: &mut XorShift, v6: bool| -> IpAddr {
                let r = rng.next() & 0xff0f_00ff_0000_00f0_u64 | 0x0a00_0000_0000_0000;
                if v6 {
                    IpAddr::V6(Ipv6Addr::from((u128::from(r) << 64) | u128::from(rng.next() & 0xff)))
                } else {
                    IpAddr::V4(Ipv4Addr::from((r >> 32) as u32))
                }
            };
            for value in 0..(50 + round * 10) {
                let v6 = rng.next().is_multiple_of(2);
                let addr = random_ip(&mut rng, v6);
                let len = (rng.next() % if v6 { 129 } else { 33 }) as u8;
                table.insert(addr, len, value).unwrap();
                model.retain(|(a, l, _)| !(*l == len && same_prefix(*a, addr, len)));
                model.push((addr, len, value));
            }
            for _ in 0..2000 {
                let v6 = rng.next().is_multiple_of(2);
                let probe = random_ip(&mut rng, v6);
                let expected = model.iter().filter(|(a, l, _)| same_prefix(*a, probe, *l)).max_by_key(|(_, l, _)| *l).map(|(_, _, v)| *v);
                assert_eq!(table.lookup(probe), expected, "lookup {probe}");
            }
        }
    }

    fn same_prefix(a: IpAddr, b: IpAddr, len: u8) -> bool {
        let (a, b, width) = match (a, b) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
            _ => return false,
        };
        len == 0 || (a ^ b) >> (width - u32::from(len)) == 0
    }
}
