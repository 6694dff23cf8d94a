//! Why packets were dropped. Every malformed or unwanted input is counted here
//! instead of being an error the host has to handle.

use std::fmt;

/// A reason for dropping a packet. The host reads the counters by name (see [`DropReason::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not a WireGuard message: empty, short, wrong size for its type, unknown type.
    Malformed,
    /// A handshake message whose MAC, key or timestamp did not check out, or a data
    /// packet that failed authentication.
    AuthFailed,
    /// A handshake from a key we do not know, or a message for a session index we never gave out.
    UnknownPeer,
    /// A data packet whose counter was already seen (replay) or is too old.
    Replay,
    /// A data packet for a session that is gone (expired or not yet established).
    NoSession,
    /// A handshake initiation refused because we are under load; a cookie reply was sent.
    UnderLoad,
    /// A decrypted packet whose source address is outside the sending peer's `allowedIps`.
    SourceNotAllowed,
    /// A decrypted packet that is not a valid IPv4/IPv6 packet, has a bad IPv4 header or ICMP
    /// checksum, or comes from an address that names no single host (multicast, broadcast,
    /// unspecified).
    InnerMalformed,
    /// A decrypted packet of a protocol or kind we do not handle (fragments, IGMP, ICMP other
    /// than echo and the destination unreachable that answers a connect of ours…).
    Unsupported,
    /// An outgoing packet whose destination no peer's `allowedIps` covers.
    NoRoute,
    /// An outgoing packet for a peer whose endpoint is not known yet.
    NoEndpoint,
    /// An ICMP error we would have sent a peer that has had its share of them lately (RFC 4443 2.4(f)).
    IcmpRateLimited,
}

impl DropReason {
    pub const ALL: [DropReason; 12] = [
        DropReason::Malformed,
        DropReason::AuthFailed,
        DropReason::UnknownPeer,
        DropReason::Replay,
        DropReason::NoSession,
        DropReason::UnderLoad,
        DropReason::SourceNotAllowed,
        DropReason::InnerMalformed,
        DropReason::Unsupported,
        DropReason::NoRoute,
        DropReason::NoEndpoint,
        DropReason::IcmpRateLimited,
    ];

    /// The name the host's `stats().dropped` uses.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::AuthFailed => "authFailed",
            DropReason::UnknownPeer => "unknownPeer",
            DropReason::Replay => "replay",
            DropReason::NoSession => "noSession",
            DropReason::UnderLoad => "underLoad",
            DropReason::SourceNotAllowed => "sourceNotAllowed",
            DropReason::InnerMalformed => "innerMalformed",
            DropReason::Unsupported => "unsupported",
            DropReason::NoRoute => "noRoute",
            DropReason::NoEndpoint => "noEndpoint",
            DropReason::IcmpRateLimited => "icmpRateLimited",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One counter per [`DropReason`].
#[derive(Debug, Default, Clone)]
pub struct Counters {
    dropped: [u64; DropReason::ALL.len()],
}

impl Counters {
    pub fn count(&mut self, reason: DropReason) {
        self.dropped[reason as usize] += 1;
    }

    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_reason_in_discriminant_order() {
        for (i, reason) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, i, "{reason}");
        }
    }

    /// The host keys `stats().dropped` by these names (ts/wasm/abi.ts is generated from them):
    /// each reason has its own, a camelCase word, and shows as it.
    #[test]
    fn each_reason_has_its_own_camel_case_name_and_shows_as_it() {
        for (i, reason) in DropReason::ALL.iter().enumerate() {
            let name = reason.name();
            assert!(name.starts_with(|c: char| c.is_ascii_lowercase()) && name.chars().all(|c| c.is_ascii_alphabetic()), "{name:?}");
            assert!(DropReason::ALL[i + 1..].iter().all(|other| other.name() != name), "{name} twice");
            assert_eq!(reason.to_string(), name);
        }
    }
}
