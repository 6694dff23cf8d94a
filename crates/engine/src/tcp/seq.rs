//! TCP sequence numbers: 32-bit and wrapping, so "before" means "less than half the
//! space behind" (RFC 9293 §3.4). Every comparison of sequence numbers goes through here.

/// `a` comes before `b`.
pub fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `a` comes at or before `b`.
pub fn at_or_before(a: u32, b: u32) -> bool {
    !before(b, a)
}

/// `a` comes after `b`.
pub fn after(a: u32, b: u32) -> bool {
    before(b, a)
}

/// `a` comes at or after `b`.
pub fn at_or_after(a: u32, b: u32) -> bool {
    !before(a, b)
}

/// Bytes from `from` up to `to`; zero when `to` is not after `from`.
pub fn distance(from: u32, to: u32) -> usize {
    if after(to, from) {
        to.wrapping_sub(from) as usize
    } else {
        0
    }
}

/// The later of two sequence numbers.
pub fn latest(a: u32, b: u32) -> u32 {
    if after(a, b) {
        a
    } else {
        b
    }
}

/// `seq` moved on by `bytes`.
pub fn add(seq: u32, bytes: usize) -> u32 {
    seq.wrapping_add(bytes as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_across_the_wrap() {
        assert!(before(u32::MAX - 10, 5));
        assert!(after(5, u32::MAX - 10));
        assert!(at_or_before(7, 7) && at_or_after(7, 7) && !before(7, 7) && !after(7, 7));
        assert_eq!(distance(u32::MAX - 1, 3), 5);
        assert_eq!(distance(3, u32::MAX - 1), 0);
        assert_eq!(latest(u32::MAX, 2), 2);
        assert_eq!(add(u32::MAX, 3), 2);
    }
}
