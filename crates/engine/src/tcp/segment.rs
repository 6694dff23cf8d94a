//! TCP segments on the wire, without state: a peer's segment parsed out of its IP
//! packet, and ours built into one.
//!
//! Options are the ones a bulk path needs: MSS, window scale, SACK-permitted, SACK
//! blocks and timestamps (with which three SACK blocks fit in the 40 bytes, else four).
//! Checksums of arriving segments are not verified: they came
//! inside an authenticated WireGuard packet, as the kernel's WireGuard also assumes.
//! References: RFC 9293 §3.1 (header), RFC 7323 §2 (window scale) and §3 (timestamps),
//! RFC 2018 (SACK).

use crate::counters::DropReason;
use crate::wire;
use smoltcp::wire::{IpAddress, IpProtocol, TcpPacket, TcpSeqNumber};
use std::net::{IpAddr, SocketAddr};

pub const MAX_SACK_BLOCKS: usize = 4;
pub const HEADER_LEN: usize = 20;

const OPT_END: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_MSS: u8 = 2;
const OPT_WINDOW_SCALE: u8 = 3;
const OPT_SACK_PERMITTED: u8 = 4;
const OPT_SACK: u8 = 5;
const OPT_TIMESTAMPS: u8 = 8;
/// The timestamps option as laid out (two NOPs, kind, length, TSval, TSecr): what it takes
/// from each segment's payload once negotiated (RFC 7323 §3.2).
pub const TIMESTAMPS_LEN: usize = 12;

/// The options only a SYN carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SynOptions {
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
}

/// RFC 7323 §3: the sender's clock, and the latest clock reading it has from the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub val: u32,
    pub ecr: u32,
}

/// Up to four `[start, end)` ranges the receiver holds beyond its cumulative ACK.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SackBlocks {
    blocks: [(u32, u32); MAX_SACK_BLOCKS],
    len: usize,
}

impl SackBlocks {
    pub fn push(&mut self, block: (u32, u32)) {
        if self.len < MAX_SACK_BLOCKS {
            self.blocks[self.len] = block;
            self.len += 1;
        }
    }

    pub fn as_slice(&self) -> &[(u32, u32)] {
        &self.blocks[..self.len]
    }
}

/// A segment from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: Option<u32>,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    /// The raw window field; the connection applies the scale.
    pub window: u16,
    pub syn_options: SynOptions,
    pub sack: SackBlocks,
    pub timestamp: Option<Timestamp>,
    pub payload: &'a [u8],
}

impl Segment<'_> {
    /// Sequence space the segment takes: its data plus one for SYN and one for FIN.
    pub fn len(&self) -> usize {
        self.payload.len() + self.syn as usize + self.fin as usize
    }

    /// Takes no sequence space: a bare ACK, window update or RST.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A SYN without ACK: somebody wants a new connection.
    pub fn opens(&self) -> bool {
        self.syn && self.ack.is_none() && !self.rst
    }
}

/// Parses the TCP part of an IP packet from `src` to `dst`.
pub fn parse(src: IpAddr, dst: IpAddr, tcp: &[u8]) -> Result<Segment<'_>, DropReason> {
    let packet = TcpPacket::new_checked(tcp).map_err(|_| DropReason::InnerMalformed)?;
    let header_len = packet.header_len() as usize;
    if packet.src_port() == 0 || packet.dst_port() == 0 || header_len < HEADER_LEN {
        return Err(DropReason::InnerMalformed);
    }
    let (syn, fin, rst) = (packet.syn(), packet.fin(), packet.rst());
    if syn && (fin || rst) {
        return Err(DropReason::InnerMalformed);
    }
    let mut segment = Segment {
        src: SocketAddr::new(src, packet.src_port()),
        dst: SocketAddr::new(dst, packet.dst_port()),
        seq: packet.seq_number().0 as u32,
        ack: packet.ack().then(|| packet.ack_number().0 as u32),
        syn,
        fin,
        rst,
        window: packet.window_len(),
        syn_options: SynOptions::default(),
        sack: SackBlocks::default(),
        timestamp: None,
        payload: &tcp[header_len..],
    };
    parse_options(&tcp[HEADER_LEN..header_len], &mut segment);
    Ok(segment)
}

/// Reads the options we use; stops quietly at the first malformed one (as Linux does).
fn parse_options(mut options: &[u8], segment: &mut Segment<'_>) {
    while let Some(&kind) = options.first() {
        match kind {
            OPT_END => return,
            OPT_NOP => {
                options = &options[1..];
                continue;
            }
            _ => {}
        }
        let Some(&len) = options.get(1) else { return };
        let len = len as usize;
        if len < 2 || len > options.len() {
            return;
        }
        let data = &options[2..len];
        match (kind, data.len()) {
            (OPT_MSS, 2) if segment.syn => segment.syn_options.mss = Some(u16::from_be_bytes([data[0], data[1]])),
            // RFC 7323 §2.3: a shift above 14 is taken as 14.
            (OPT_WINDOW_SCALE, 1) if segment.syn => segment.syn_options.window_scale = Some(data[0].min(14)),
            (OPT_SACK_PERMITTED, 0) if segment.syn => segment.syn_options.sack_permitted = true,
            (OPT_TIMESTAMPS, 8) => {
                let val = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                let ecr = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
                segment.timestamp = Some(Timestamp { val, ecr });
            }
            (OPT_SACK, n) if n > 0 && n % 8 == 0 => {
                for block in data.chunks_exact(8) {
                    let start = u32::from_be_bytes([block[0], block[1], block[2], block[3]]);
                    let end = u32::from_be_bytes([block[4], block[5], block[6], block[7]]);
                    segment.sack.push((start, end));
                }
            }
            _ => {}
        }
        options = &options[len..];
    }
}

/// A segment of ours, to be built into an IP packet.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: Option<u32>,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
    pub window: u16,
    pub syn_options: Option<SynOptions>,
    pub sack: &'a [(u32, u32)],
    pub timestamp: Option<Timestamp>,
    /// The data, possibly in two pieces (the send buffer is a ring).
    pub payload: [&'a [u8]; 2],
}

impl<'a> Outgoing<'a> {
    /// A bare segment: no flags but those given, no options, no data.
    pub fn control(src: SocketAddr, dst: SocketAddr, seq: u32, ack: Option<u32>) -> Outgoing<'a> {
        Outgoing {
            src,
            dst,
            seq,
            ack,
            syn: false,
            fin: false,
            rst: false,
            psh: false,
            window: 0,
            syn_options: None,
            sack: &[],
            timestamp: None,
            payload: [&[], &[]],
        }
    }

    fn options_len(&self) -> usize {
        let syn = self.syn_options.map_or(0, |o| 4 + if o.sack_permitted { 4 } else { 0 } + if o.window_scale.is_some() { 4 } else { 0 });
        let sack = if self.sack.is_empty() { 0 } else { 4 + 8 * self.sack_blocks().len() };
        let timestamp = if self.timestamp.is_some() { TIMESTAMPS_LEN } else { 0 };
        syn + sack + timestamp
    }

    /// The SACK blocks that fit beside the other options (RFC 2018 §3).
    fn sack_blocks(&self) -> &[(u32, u32)] {
        let fit = if self.timestamp.is_some() { MAX_SACK_BLOCKS - 1 } else { MAX_SACK_BLOCKS };
        &self.sack[..self.sack.len().min(fit)]
    }
}

/// Builds `segment` as an IP packet into `out` (replacing its contents). Source and
/// destination must be of one family.
pub fn build(segment: &Outgoing<'_>, out: &mut Vec<u8>) {
    let payload_len = segment.payload[0].len() + segment.payload[1].len();
    let options_len = segment.options_len();
    let tcp_len = HEADER_LEN + options_len + payload_len;
    let ip_len =
        wire::emit_ip(segment.src.ip(), segment.dst.ip(), IpProtocol::Tcp, tcp_len, out).expect("a TCP segment between address families");
    let (src_ip, dst_ip) = (IpAddress::from(segment.src.ip()), IpAddress::from(segment.dst.ip()));
    let tcp = &mut out[ip_len..];
    write_options(segment, &mut tcp[HEADER_LEN..]);
    let data = &mut tcp[HEADER_LEN + options_len..];
    let (first, second) = data.split_at_mut(segment.payload[0].len());
    first.copy_from_slice(segment.payload[0]);
    second.copy_from_slice(segment.payload[1]);

    let mut packet = TcpPacket::new_unchecked(tcp);
    packet.set_src_port(segment.src.port());
    packet.set_dst_port(segment.dst.port());
    packet.set_seq_number(TcpSeqNumber(segment.seq as i32));
    packet.set_ack_number(TcpSeqNumber(segment.ack.unwrap_or(0) as i32));
    packet.set_header_len((HEADER_LEN + options_len) as u8);
    packet.clear_flags();
    packet.set_syn(segment.syn);
    packet.set_fin(segment.fin);
    packet.set_rst(segment.rst);
    packet.set_psh(segment.psh);
    packet.set_ack(segment.ack.is_some());
    packet.set_window_len(segment.window);
    packet.set_urgent_at(0);
    packet.fill_checksum(&src_ip, &dst_ip);
}

/// Options laid out on 4-byte boundaries, as Linux does.
fn write_options(segment: &Outgoing<'_>, out: &mut [u8]) {
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        out[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    if let Some(options) = segment.syn_options {
        let mss = options.mss.unwrap_or(536).to_be_bytes();
        put(&[OPT_MSS, 4, mss[0], mss[1]]);
        if options.sack_permitted {
            put(&[OPT_NOP, OPT_NOP, OPT_SACK_PERMITTED, 2]);
        }
        if let Some(shift) = options.window_scale {
            put(&[OPT_NOP, OPT_WINDOW_SCALE, 3, shift]);
        }
    }
    if let Some(timestamp) = segment.timestamp {
        put(&[OPT_NOP, OPT_NOP, OPT_TIMESTAMPS, 10]);
        put(&timestamp.val.to_be_bytes());
        put(&timestamp.ecr.to_be_bytes());
    }
    if !segment.sack.is_empty() {
        let blocks = segment.sack_blocks();
        put(&[OPT_NOP, OPT_NOP, OPT_SACK, 2 + 8 * blocks.len() as u8]);
        for &(start, end) in blocks {
            put(&start.to_be_bytes());
            put(&end.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{Ipv4Packet, Ipv6Packet};

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    /// The TCP bytes of an IP packet we built.
    fn tcp_part(packet: &[u8]) -> (IpAddr, IpAddr, &[u8]) {
        if packet[0] >> 4 == 4 {
            let ip = Ipv4Packet::new_checked(packet).unwrap();
            assert!(ip.verify_checksum());
            (IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()), &packet[20..])
        } else {
            let ip = Ipv6Packet::new_checked(packet).unwrap();
            (IpAddr::V6(ip.src_addr()), IpAddr::V6(ip.dst_addr()), &packet[40..])
        }
    }

    #[test]
    fn a_syn_ack_round_trips_with_its_options() {
        let mut out = Vec::new();
        let options = SynOptions { mss: Some(1380), window_scale: Some(7), sack_permitted: true };
        let segment = Outgoing {
            syn: true,
            window: 65535,
            syn_options: Some(options),
            ..Outgoing::control(addr("198.51.100.7:443"), addr("10.0.0.2:50000"), 1000, Some(77))
        };
        build(&segment, &mut out);
        let (src, dst, tcp) = tcp_part(&out);
        let packet = TcpPacket::new_checked(tcp).unwrap();
        assert!(packet.verify_checksum(&src.into(), &dst.into()));
        let parsed = parse(src, dst, tcp).unwrap();
        assert_eq!(parsed.src, addr("198.51.100.7:443"));
        assert_eq!((parsed.seq, parsed.ack, parsed.syn, parsed.fin), (1000, Some(77), true, false));
        assert_eq!(parsed.syn_options, options);
        assert_eq!(parsed.len(), 1);
    }

    #[test]
    fn data_with_four_sack_blocks_and_a_split_payload_round_trips_on_ipv6() {
        let mut out = Vec::new();
        let blocks = [(10, 20), (30, 40), (50, 60), (u32::MAX - 5, 3)];
        let segment = Outgoing {
            psh: true,
            fin: true,
            window: 512,
            sack: &blocks,
            payload: [b"hello ", b"world"],
            ..Outgoing::control(addr("[2001:db8::1]:80"), addr("[fd00::2]:4000"), 5, Some(9))
        };
        build(&segment, &mut out);
        let (src, dst, tcp) = tcp_part(&out);
        assert!(TcpPacket::new_checked(tcp).unwrap().verify_checksum(&src.into(), &dst.into()));
        let parsed = parse(src, dst, tcp).unwrap();
        assert_eq!(parsed.payload, b"hello world");
        assert_eq!(parsed.sack.as_slice(), &blocks);
        assert_eq!(parsed.syn_options, SynOptions::default(), "SYN options are only read from a SYN");
        assert_eq!((parsed.fin, parsed.window, parsed.len()), (true, 512, 12));
    }

    #[test]
    fn rfc7323_3_timestamps_round_trip_on_a_syn_and_leave_room_for_three_sack_blocks() {
        let mut out = Vec::new();
        let options = SynOptions { mss: Some(1380), window_scale: Some(7), sack_permitted: true };
        let timestamp = Some(Timestamp { val: 0xdead_beef, ecr: 0 });
        let syn = Outgoing {
            syn: true,
            syn_options: Some(options),
            timestamp,
            ..Outgoing::control(addr("10.0.0.1:1"), addr("10.0.0.2:2"), 7, None)
        };
        build(&syn, &mut out);
        let (src, dst, tcp) = tcp_part(&out);
        let parsed = parse(src, dst, tcp).unwrap();
        assert_eq!((parsed.syn_options, parsed.timestamp), (options, timestamp));
        assert_eq!(tcp.len(), HEADER_LEN + 24);

        let blocks = [(10, 20), (30, 40), (50, 60), (70, 80)];
        let timestamp = Some(Timestamp { val: 5, ecr: u32::MAX });
        let ack = Outgoing {
            sack: &blocks,
            timestamp,
            payload: [b"x", b""],
            ..Outgoing::control(addr("10.0.0.1:1"), addr("10.0.0.2:2"), 7, Some(9))
        };
        build(&ack, &mut out);
        let (src, dst, tcp) = tcp_part(&out);
        let parsed = parse(src, dst, tcp).unwrap();
        assert_eq!(parsed.timestamp, timestamp);
        assert_eq!(parsed.sack.as_slice(), &blocks[..3], "40 bytes of options: timestamps and three blocks");
        assert_eq!((tcp.len(), parsed.payload), (HEADER_LEN + TIMESTAMPS_LEN + 4 + 24 + 1, &b"x"[..]));
    }

    #[test]
    fn malformed_segments_are_refused_and_odd_options_ignored() {
        let (src, dst) = (addr("10.0.0.2:1").ip(), addr("10.0.0.1:2").ip());
        let mut out = Vec::new();
        build(&Outgoing { syn: true, ..Outgoing::control(addr("10.0.0.2:1"), addr("10.0.0.1:2"), 1, None) }, &mut out);
        let tcp = out[20..].to_vec();
        assert_eq!(parse(src, dst, &tcp[..19]).unwrap_err(), DropReason::InnerMalformed);
        let mut syn_rst = tcp.clone();
        syn_rst[13] |= 0x04;
        assert_eq!(parse(src, dst, &syn_rst).unwrap_err(), DropReason::InnerMalformed);
        let mut zero_port = tcp.clone();
        zero_port[2..4].fill(0);
        assert_eq!(parse(src, dst, &zero_port).unwrap_err(), DropReason::InnerMalformed);

        // An option whose length runs past the header: parsing stops, the segment stands.
        let mut with_options = tcp.clone();
        with_options[12] = 6 << 4; // 24-byte header
        with_options.extend_from_slice(&[OPT_MSS, 9, 0, 0]);
        let parsed = parse(src, dst, &with_options).unwrap();
        assert_eq!(parsed.syn_options.mss, None);
        // Every prefix is handled without panicking.
        for len in 0..with_options.len() {
            let _ = parse(src, dst, &with_options[..len]);
        }
    }

    /// What `parse` reads from `options` (raw bytes, padded here with End of Option List to
    /// a multiple of four) in the header of a bare SYN, or of a bare ACK.
    fn read_options(syn: bool, options: &[u8]) -> (SynOptions, Vec<(u32, u32)>) {
        let (src, dst) = (addr("10.0.0.2:1"), addr("10.0.0.1:2"));
        let mut out = Vec::new();
        build(&Outgoing { syn, ..Outgoing::control(src, dst, 1, (!syn).then_some(1)) }, &mut out);
        let mut tcp = out[20..].to_vec();
        assert_eq!(tcp.len(), HEADER_LEN, "no options of its own");
        let mut options = options.to_vec();
        options.resize(options.len().next_multiple_of(4), OPT_END);
        tcp[12] = (((HEADER_LEN + options.len()) / 4) << 4) as u8;
        tcp.splice(HEADER_LEN..HEADER_LEN, options);
        let parsed = parse(src.ip(), dst.ip(), &tcp).unwrap();
        (parsed.syn_options, parsed.sack.as_slice().to_vec())
    }

    /// RFC 9293 §3.1: End of Option List ends the options, whatever bytes follow it.
    #[test]
    fn rfc9293_3_1_end_of_option_list_ends_the_options() {
        let mss = [OPT_MSS, 4, 0x02, 0x00];
        assert_eq!(read_options(true, &mss).0.mss, Some(512));
        // After EOL, bytes that would read as an unknown 6-byte option and then that MSS.
        let after_end = [&[OPT_END, 6, 0, 0, 0, 0][..], &mss].concat();
        assert_eq!(read_options(true, &after_end).0.mss, None);
    }

    /// MSS (RFC 9293 §3.7.1), window scale (RFC 7323 §2.2) and SACK-permitted (RFC 2018 §2)
    /// belong on a SYN: on any other segment they are ignored.
    #[test]
    fn rfc7323_2_2_syn_options_are_read_only_from_a_syn() {
        let options = [OPT_MSS, 4, 0x02, 0x00, OPT_WINDOW_SCALE, 3, 7, OPT_SACK_PERMITTED, 2];
        let on_syn = SynOptions { mss: Some(512), window_scale: Some(7), sack_permitted: true };
        assert_eq!(read_options(true, &options).0, on_syn);
        assert_eq!(read_options(false, &options).0, SynOptions::default());
        // Each alone, so that no one of them is read off an ACK unnoticed.
        for alone in [&options[..4], &options[4..7], &options[7..]] {
            assert_eq!(read_options(false, alone).0, SynOptions::default(), "{alone:?}");
        }
    }

    /// RFC 2018 §3: a SACK option is 2 + 8n bytes; one of another length is malformed and
    /// ignored whole, not read as far as its blocks go.
    #[test]
    fn rfc2018_3_a_sack_option_of_another_length_is_ignored() {
        let block = [0, 0, 0, 10, 0, 0, 0, 20];
        let sack = |extra: &[u8]| [&[OPT_SACK, (2 + block.len() + extra.len()) as u8][..], &block, extra].concat();
        assert_eq!(read_options(false, &sack(&[])).1, vec![(10, 20)]);
        assert_eq!(read_options(false, &sack(&[0, 0, 0, 30])).1, vec![]);
    }

    /// A segment's sequence space: its data, plus one for SYN and one for FIN (RFC 9293
    /// §3.4); a bare ACK takes none.
    #[test]
    fn rfc9293_3_4_a_segment_takes_its_data_and_one_for_syn_and_for_fin() {
        let bare = Segment {
            src: addr("10.0.0.2:1"),
            dst: addr("10.0.0.1:2"),
            seq: 1,
            ack: Some(1),
            syn: false,
            fin: false,
            rst: false,
            window: 0,
            syn_options: SynOptions::default(),
            sack: SackBlocks::default(),
            timestamp: None,
            payload: &[],
        };
        assert_eq!((bare.len(), bare.is_empty()), (0, true));
        assert_eq!((Segment { payload: b"abc", ..bare }.len(), Segment { payload: b"abc", ..bare }.is_empty()), (3, false));
        assert_eq!((Segment { syn: true, ..bare }.len(), Segment { syn: true, ..bare }.is_empty()), (1, false));
        assert_eq!((Segment { fin: true, payload: b"ab", ..bare }.len(), Segment { fin: true, ..bare }.is_empty()), (3, false));
    }
}
