//! A packetdrill-style conformance harness for our TCP, on virtual time.
//!
//! A test is a script: at exact milliseconds it injects segments as the peer, acts as the
//! host, and states every segment the stack must send and every event the host must see —
//! and nothing else. Anything the stack sends that the script did not ask for fails the
//! test, up to a minute of virtual time past the script's last line (every timer due in
//! that minute fires and must stay silent). One test per rule, named after its RFC
//! section, so `cargo test conformance` reads as a checklist of the standards.
//!
//! The language (one line each; `#` starts a comment):
//!
//! ```text
//! 0      < S 0:0(0) win 65535 <mss 1000,sackOK,wscale 7>   the peer sends a SYN
//! 0      % incoming                                        the host hears of it
//! 0      accept                                            the host acts
//! 0      > S. 0:0(0) ack 1 <mss 1000,sackOK,wscale 5>      the stack must send this, now
//! +10    < . 1:1(0) ack 1 win 1000                         10 ms later
//! +0     % established
//! ```
//!
//! Times are milliseconds, absolute or `+` after the previous line (fractions allowed);
//! `A~B` before a segment we send lets it go any time from A to B (as pacing spaces them).
//! The stack is polled after each line, as the host pumps it, except between segments
//! injected on consecutive lines at one time: those arrive in one batch.
//!
//! Segments read as in packetdrill: flags (`S` SYN, `F` FIN, `R` RST, `P` PSH, `.` ACK),
//! `start:end(length)` relative to the sender's initial sequence number (the peer's is
//! [`PEER_ISN`]; ours is learnt from our SYN or SYN-ACK written at `0`, and checked against
//! the one in use when written at any other number), then `ack N` (required with `.`),
//! `win N` (unchecked on ours when left out) and `<options>`: `mss N`, `wscale N`,
//! `sackOK`, `sack a:b c:d`, `TS val N ecr N`, `nop`. Our TSval reads as the time in ms
//! (our clock's offset is learnt from our first timestamp, and the peer's TSecr is written
//! the same way); theirs is what the script says. On ours, no options means none, `<...>` leaves them
//! unchecked and `*:*(N)` the sequence number. Payloads carry a known pattern, checked in
//! both directions. `> icmp` is an ICMP error from us; `< icmp host|port|net [seq N]` one to
//! us, a destination unreachable quoting our SYN (or sequence number N of ours) that goes
//! through the engine's parser (`wire::classify`) as it would from the tunnel.
//!
//! Host actions: `connect`, `accept`, `refuse rst|icmp`, `send N` (writes N bytes),
//! `consume N`, `shutdown`, `abort`, `discard`; `a; b` does both before the stack is
//! polled; `ACTION fails`: the host's request must be turned down. Events: `% incoming`, `% established`, `% data N` (N bytes delivered in order,
//! pattern checked), `% eof`, `% closed closed|reset|refused|aborted|timeout|host-unreachable|net-unreachable`. Room grants
//! (TCP_WRITABLE) are not checked; every other event must be stated. `? iss after N` and
//! `? iss at N`: our latest ISS lies past, or at, sequence number N of the connection before;
//! `? total NAME N`: a lifetime count of the table, by its `stats().tcp` name, is N;
//! `? room N`: the host has been granted N bytes of room to write (TCP_WRITABLE) in all.

use super::segment::{self, Outgoing, SackBlocks, Segment, SynOptions, Timestamp};
use super::{seq, Capture, Refusal, Tcp, TcpConfig};
use crate::events::decode::{decode, Event};
use crate::events::CloseReason;
use crate::ffi::{DEFAULT_LIMITS, DEFAULT_TIMEOUTS};
use crate::wire::{self, Inner, Unreachable};
use smoltcp::wire::TcpPacket;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::SocketAddr;

mod limits;
mod rfc1122;
mod rfc2018_6675;
mod rfc5681;
mod rfc5961;
mod rfc6298;
mod rfc6528;
mod rfc7323;
mod rfc8985;
mod rfc9293;
mod window;
mod zero_window;

/// The peer's initial sequence number: close to the wrap, so sequence arithmetic wraps
/// within the first few kilobytes of every test.
pub const PEER_ISN: u32 = 0xFFFF_F000;
/// After the last line, every deadline within this long must pass in silence.
const SILENCE_HORIZON_US: u64 = 60_000_000;
const PEER_ID: u32 = 1;

/// Where the stack under test is, and where the peer (the script) is.
#[derive(Debug, Clone, Copy)]
pub struct Ends {
    pub us: SocketAddr,
    pub peer: SocketAddr,
}

pub fn ipv4() -> Ends {
    Ends { us: "192.0.2.1:80".parse().unwrap(), peer: "198.51.100.2:40000".parse().unwrap() }
}

pub fn ipv6() -> Ends {
    Ends { us: "[2001:db8::1]:80".parse().unwrap(), peer: "[2001:db8::2]:40000".parse().unwrap() }
}

/// The configuration scripts run with unless they say otherwise: an MTU whose MSS is
/// 1000, a 1 MiB receive window (window scale 5), keep-alive after two hours as Linux.
pub fn config() -> TcpConfig {
    TcpConfig {
        mtu: 1040,
        max_receive_window: 1 << 20,
        max_send_buffer: 1 << 20,
        accept: true,
        limits: DEFAULT_LIMITS,
        timeouts: super::Timeouts { keepalive_us: 7_200_000_000, ..DEFAULT_TIMEOUTS },
    }
}

/// Runs `script` against a fresh stack with [`config`].
pub fn run(script: &str) {
    run_with(config(), script);
}

pub fn run_with(config: TcpConfig, script: &str) {
    run_between(ipv4(), config, script);
}

pub fn run_between(ends: Ends, config: TcpConfig, script: &str) {
    let mut harness = Harness::new(ends, config);
    for (number, line) in script.lines().enumerate() {
        let text = line.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        harness.line = format!("line {}: `{}`", number + 1, text);
        harness.step(text);
    }
    harness.line = "after the last line".into();
    harness.finish();
}

/// The byte at `offset` of either side's stream.
fn pattern(offset: u32) -> u8 {
    (offset.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// A segment as a script line states it, sequence numbers relative.
#[derive(Debug, Default, Clone, PartialEq)]
struct Spec {
    syn: bool,
    fin: bool,
    rst: bool,
    psh: bool,
    seq: u32,
    /// `*:*(N)`: the sequence number is not checked (a RST whose number is ours alone).
    any_seq: bool,
    len: u32,
    ack: Option<u32>,
    window: Option<u16>,
    /// `None`: options unchecked (`<...>`).
    options: Option<Options>,
}

#[derive(Debug, Default, Clone, PartialEq)]
struct Options {
    syn: SynOptions,
    /// RFC 7323 TSval and TSecr: ours relative to our clock's offset, theirs as written.
    timestamp: Option<(u32, u32)>,
    sack: Vec<(u32, u32)>,
}

struct Harness {
    ends: Ends,
    tcp: Tcp,
    link: Capture,
    now: u64,
    wake: Option<u64>,
    /// Room granted to the host (TCP_WRITABLE) so far, in bytes.
    room: u64,
    /// Segments were injected and the stack not yet polled.
    poll_due: bool,
    /// What the stack sent or told the host, with when, not yet matched by a line.
    sent: VecDeque<(u64, Vec<u8>)>,
    events: VecDeque<(u64, Event)>,
    conn: Option<u32>,
    /// Where our timestamp clock stood at time 0 (RFC 7323 TSval = offset + ms), once seen.
    ts_offset: Option<u32>,
    /// Our initial sequence number, once seen, and the one before it (a connection before).
    iss: Option<u32>,
    previous_iss: Option<u32>,
    /// Bytes the host wrote, and bytes it was given, so far.
    written: u32,
    received: u32,
    line: String,
}

impl Harness {
    fn new(ends: Ends, config: TcpConfig) -> Harness {
        Harness {
            ends,
            tcp: Tcp::new(config, 0x5EED),
            link: Capture::default(),
            now: 0,
            wake: None,
            poll_due: false,
            room: 0,
            sent: VecDeque::new(),
            events: VecDeque::new(),
            conn: None,
            ts_offset: None,
            iss: None,
            previous_iss: None,
            written: 0,
            received: 0,
            line: String::new(),
        }
    }

    fn fail(&self, message: impl AsRef<str>) -> ! {
        panic!("{}: {}", self.line, message.as_ref());
    }

    fn step(&mut self, text: &str) {
        let (time, rest) = text.split_once(char::is_whitespace).unwrap_or_else(|| self.fail("a time and something to do"));
        let rest = rest.trim();
        if let Some((from, to)) = time.split_once('~') {
            if !rest.starts_with('>') {
                self.fail("a time range is for segments we send");
            }
            let (from, to) = (self.parse_time(from), self.parse_time(to));
            return self.expect_segment_between(from, to, &rest[1..]);
        }
        let at = self.parse_time(time);
        if at < self.now {
            self.fail("time goes backwards");
        }
        // Segments injected on consecutive lines at one time arrive in one batch.
        let batch = self.poll_due && rest.starts_with('<') && at == self.now;
        if self.poll_due && !batch {
            self.poll_due = false;
            self.poll();
        }
        self.advance(at);
        match rest.chars().next() {
            Some('>') => self.expect_segment(&rest[1..]),
            Some('%') => self.expect_event(rest[1..].trim()),
            Some('?') => self.check(rest[1..].trim()),
            Some('<') => {
                if !batch {
                    self.check_quiet();
                }
                if let Some(icmp) = rest[1..].trim().strip_prefix("icmp ") {
                    return self.inject_unreachable(icmp);
                }
                let spec = self.parse_spec(&rest[1..], false);
                self.inject(&spec);
            }
            _ => {
                self.check_quiet();
                self.act(rest);
            }
        }
    }

    fn parse_time(&self, text: &str) -> u64 {
        let (relative, number) = match text.strip_prefix('+') {
            Some(number) => (true, number),
            None => (false, text),
        };
        let ms: f64 = number.parse().unwrap_or_else(|_| self.fail(format!("bad time {text}")));
        let us = (ms * 1000.0).round() as u64;
        if relative {
            self.now + us
        } else {
            us
        }
    }

    // ---- time ----

    /// Polls at every deadline up to `at`, then moves the clock there.
    fn advance(&mut self, at: u64) {
        let mut spins = 0;
        while let Some(wake) = self.wake.filter(|&wake| wake <= at) {
            spins += 1;
            if spins > 100_000 {
                self.fail(format!("the stack keeps asking for a poll at {}", ms(wake)));
            }
            self.now = self.now.max(wake);
            self.poll();
        }
        self.now = at;
    }

    fn poll(&mut self) {
        self.wake = self.tcp.poll(self.now, &mut self.link);
        self.collect();
    }

    /// Moves what the stack sent and reported into the queues, stamped with the time.
    fn collect(&mut self) {
        for packet in self.link.packets.drain(..) {
            self.sent.push_back((self.now, packet));
        }
        for event in decode(self.link.events.as_bytes()) {
            match event {
                Event::TcpWritable { room, .. } => self.room += room as u64,
                Event::TcpIncoming { conn, .. } => {
                    self.conn = Some(conn);
                    self.events.push_back((self.now, event));
                }
                event => self.events.push_back((self.now, event)),
            }
        }
        self.link.events.clear();
    }

    /// Before the script acts, everything the stack did so far must have been stated.
    fn check_quiet(&self) {
        if let Some((at, packet)) = self.sent.front() {
            self.fail(format!("unexpected segment at {}: > {}", ms(*at), self.describe(packet)));
        }
        if let Some((at, event)) = self.events.front() {
            self.fail(format!("unexpected event at {}: {event:?}", ms(*at)));
        }
    }

    fn finish(&mut self) {
        if self.poll_due {
            self.poll();
        }
        let horizon = self.now + SILENCE_HORIZON_US;
        self.advance(horizon);
        self.check_quiet();
    }

    // ---- the peer ----

    fn inject(&mut self, spec: &Spec) {
        let payload: Vec<u8> = (0..spec.len).map(|i| pattern(spec.seq.wrapping_add(i).wrapping_sub(1))).collect();
        let options = spec.options.clone().unwrap_or_default();
        let mut sack = SackBlocks::default();
        let iss = self.iss.unwrap_or(0);
        for &(start, end) in &options.sack {
            sack.push((iss.wrapping_add(start), iss.wrapping_add(end)));
        }
        let ts_offset = self.ts_offset.unwrap_or(0);
        let timestamp = options.timestamp.map(|(val, ecr)| Timestamp { val, ecr: ts_offset.wrapping_add(ecr) });
        let segment = Segment {
            src: self.ends.peer,
            dst: self.ends.us,
            seq: PEER_ISN.wrapping_add(spec.seq),
            ack: spec.ack.map(|ack| iss.wrapping_add(ack)),
            syn: spec.syn,
            fin: spec.fin,
            rst: spec.rst,
            window: spec.window.unwrap_or_else(|| self.fail("an injected segment needs `win`")),
            syn_options: options.syn,
            sack,
            timestamp,
            payload: &payload,
        };
        self.tcp.input(self.now, PEER_ID, &segment, &mut self.link);
        self.collect();
        self.poll_due = true;
    }

    /// `< icmp host|port|net [seq N]`: the peer's side answers a segment of ours (our SYN, or
    /// sequence number N) with a destination unreachable.
    fn inject_unreachable(&mut self, text: &str) {
        let mut words = text.split_whitespace();
        // The reasons by the names the host gives them.
        let Some(&why) = words.next().and_then(|word| Unreachable::ALL.iter().find(|why| why.name() == word)) else {
            self.fail("icmp host|port|net [seq N]")
        };
        let offset = match (words.next(), words.next()) {
            (None, _) => 0,
            (Some("seq"), Some(n)) => parse_number(n).unwrap_or_else(|| self.fail("seq takes a number")),
            _ => self.fail("icmp host|port|net [seq N]"),
        };
        let iss = self.iss.unwrap_or_else(|| self.fail("no SYN of ours to quote yet"));
        let ours = Outgoing { syn: true, ..Outgoing::control(self.ends.us, self.ends.peer, iss.wrapping_add(offset), None) };
        let (mut original, mut packet) = (Vec::new(), Vec::new());
        segment::build(&ours, &mut original);
        wire::unreachable(&original, why, &mut packet).unwrap_or_else(|e| self.fail(format!("cannot build the ICMP error: {e}")));
        match wire::classify(&packet) {
            Ok(Inner::TcpUnreachable { why, quoted }) => {
                self.tcp.unreachable(PEER_ID, &quoted, why, &mut self.link);
            }
            other => self.fail(format!("the engine reads our ICMP error as {other:?}")),
        }
        self.collect();
        self.poll_due = true;
    }

    // ---- the host ----

    /// Host actions, `;` between several done in one pump (the stack is polled after the last).
    fn act(&mut self, text: &str) {
        for action in text.split(';') {
            self.act_once(action.trim());
            self.collect();
        }
        self.poll();
    }

    fn act_once(&mut self, text: &str) {
        // `... fails`: the host's request must be turned down.
        let (text, must_fail) = match text.strip_suffix(" fails") {
            Some(text) => (text, true),
            None => (text, false),
        };
        let mut words = text.split_whitespace();
        let verb = words.next().unwrap_or_default();
        let argument = words.next();
        let number = |harness: &Harness| -> u32 {
            argument.and_then(|n| n.parse().ok()).unwrap_or_else(|| harness.fail(format!("`{verb}` takes a number")))
        };
        if verb == "connect" {
            let (id, _) =
                self.tcp.connect(self.now, PEER_ID, self.ends.us, self.ends.peer).unwrap_or_else(|e| self.fail(format!("connect: {e}")));
            self.conn = Some(id);
            return;
        }
        let id = self.conn.unwrap_or_else(|| self.fail("no connection yet"));
        let result = match verb {
            "accept" => self.tcp.accept(self.now, id),
            "refuse" => {
                let how = match argument {
                    Some("rst") => Refusal::Reset,
                    Some("icmp") => Refusal::Unreachable,
                    _ => self.fail("refuse rst|icmp"),
                };
                self.tcp.refuse(self.now, id, how, &mut self.link)
            }
            "send" => {
                let n = number(self);
                let data: Vec<u8> = (self.written..self.written + n).map(pattern).collect();
                match self.tcp.send(id, &data) {
                    Ok(taken) if taken == n as usize => {
                        self.written += n;
                        Ok(())
                    }
                    Ok(taken) => self.fail(format!("send took {taken} bytes")),
                    Err(error) => Err(error),
                }
            }
            "consume" => {
                let n = number(self);
                self.tcp.consumed(self.now, id, n as usize)
            }
            "shutdown" => self.tcp.shutdown(id),
            "abort" => self.tcp.abort(id, &mut self.link),
            "discard" => self.tcp.discard(id),
            _ => self.fail(format!("unknown action `{verb}`")),
        };
        match result {
            Err(error) if !must_fail => self.fail(format!("{verb}: {error}")),
            Ok(()) if must_fail => self.fail(format!("{verb} was done")),
            _ => {}
        }
    }

    // ---- what the stack must do ----

    /// `> icmp`: destination unreachable, to the peer, quoting its SYN's ports and sequence
    /// number (RFC 792 / RFC 4443: the IP header and the first 8 bytes of the segment).
    fn check_unreachable(&self, packet: &[u8]) {
        let (header, protocol, unreachable) = if packet[0] >> 4 == 4 { (20, packet[9], 3) } else { (40, packet[6], 1) };
        let tcp = header + 8 + header;
        let quoted = packet.get(tcp..tcp + 8).unwrap_or_else(|| self.fail("an ICMP error too short to quote the SYN"));
        let port = |at: usize| u16::from_be_bytes([quoted[at], quoted[at + 1]]);
        let seq = u32::from_be_bytes([quoted[4], quoted[5], quoted[6], quoted[7]]);
        let icmp = if header == 20 { 1 } else { 58 };
        let ok = protocol == icmp
            && packet[header] == unreachable
            && (port(0), port(2)) == (self.ends.peer.port(), self.ends.us.port())
            && seq == PEER_ISN;
        if !ok {
            self.fail(format!("not an unreachable quoting their SYN: {packet:02x?}"));
        }
    }

    /// `A~B > ...`: the next segment we send goes at some time from A to B (paced segments
    /// leave as the pacing rate allows); the clock moves to when it went.
    fn expect_segment_between(&mut self, from: u64, to: u64, text: &str) {
        if self.poll_due {
            self.poll_due = false;
            self.poll();
        }
        let mut spins = 0;
        while self.sent.is_empty() {
            let Some(wake) = self.wake.filter(|&wake| wake <= to) else { break };
            spins += 1;
            if spins > 100_000 {
                self.fail(format!("the stack keeps asking for a poll at {}", ms(wake)));
            }
            self.now = self.now.max(wake);
            self.poll();
        }
        match self.sent.front() {
            Some(&(at, _)) if (from..=to).contains(&at) => self.now = self.now.max(at),
            Some((at, packet)) => self.fail(format!("sent at {}: > {}", ms(*at), self.describe(packet))),
            None => self.fail(format!("nothing was sent by {}", ms(to))),
        }
        self.expect_segment(text);
    }

    fn expect_segment(&mut self, text: &str) {
        let Some((at, packet)) = self.sent.pop_front() else {
            let next = self.wake.map_or("none".to_string(), ms);
            self.fail(format!("nothing was sent (next deadline: {next})"));
        };
        if at != self.now {
            self.fail(format!("sent at {} instead: > {}", ms(at), self.describe(&packet)));
        }
        if text.trim() == "icmp" {
            if packet_is_tcp(&packet) {
                self.fail(format!("sent > {} instead of ICMP", self.describe(&packet)));
            }
            return self.check_unreachable(&packet);
        }
        let want = self.parse_spec(text, true);
        if want.syn && want.seq == 0 {
            // Our SYN or SYN-ACK, at `0`: our sequence numbers count from here on.
            if let Some(tcp) = tcp_bytes(&packet) {
                self.previous_iss = self.iss;
                self.iss = Some(TcpPacket::new_unchecked(tcp).seq_number().0 as u32);
            }
        }
        if let (Some(segment), Some((val, _))) = (parse_tcp(&packet), want.options.as_ref().and_then(|o| o.timestamp)) {
            // Our first timestamp, or our SYN's: our clock's offset is learnt from it.
            if let Some(ours) = segment.timestamp.filter(|_| self.ts_offset.is_none() || (want.syn && want.seq == 0)) {
                self.ts_offset = Some(ours.val.wrapping_sub(val));
            }
        }
        let Some(got) = self.read(&packet) else { self.fail("sent a packet that is not TCP") };
        let mut compare = got.clone();
        if want.window.is_none() {
            compare.window = None;
        }
        if want.options.is_none() {
            compare.options = None;
        }
        if want.any_seq {
            (compare.seq, compare.any_seq) = (want.seq, true);
        }
        if compare != want {
            self.fail(format!("sent > {}", self.describe(&packet)));
        }
        // Our data must be the bytes the host wrote, at their place in the stream.
        let tcp = tcp_bytes(&packet).unwrap_or_default();
        let payload = &tcp[TcpPacket::new_unchecked(tcp).header_len() as usize..];
        let start = got.seq.wrapping_sub(1);
        if payload.iter().enumerate().any(|(i, &b)| b != pattern(start.wrapping_add(i as u32))) {
            self.fail("the payload is not the host's bytes at that place in the stream");
        }
    }

    fn expect_event(&mut self, text: &str) {
        let mut words = text.split_whitespace();
        let kind = words.next().unwrap_or_default();
        let argument = words.next();
        let Some((at, event)) = self.events.pop_front() else { self.fail("no event") };
        if at != self.now {
            self.fail(format!("the event came at {}: {event:?}", ms(at)));
        }
        let conn = self.conn;
        let ok = match (kind, &event) {
            ("incoming", Event::TcpIncoming { remote, local, .. }) => *remote == self.ends.peer && *local == self.ends.us,
            ("established", Event::TcpEstablished { conn: id, .. }) => Some(*id) == conn,
            ("eof", Event::TcpEof { conn: id }) => Some(*id) == conn,
            ("closed", Event::TcpClosed { conn: id, reason }) => {
                let name = CloseReason::ALL.iter().find(|r| **r as u8 == *reason).map(|r| r.name());
                Some(*id) == conn && name == argument
            }
            ("data", Event::TcpData { .. }) => {
                let want: u32 = argument.and_then(|n| n.parse().ok()).unwrap_or_else(|| self.fail("`data` takes a number"));
                self.events.push_front((at, event));
                return self.expect_data(want);
            }
            _ => false,
        };
        if !ok {
            self.fail(format!("the event was {event:?}"));
        }
    }

    /// `? iss after N` / `? iss at N`: our ISS lies past, or exactly at, the previous
    /// connection's sequence number N.
    fn check(&self, text: &str) {
        if let Some(rest) = text.strip_prefix("total ") {
            return self.check_total(rest);
        }
        if let Some(rest) = text.strip_prefix("room ") {
            let want: u64 = rest.trim().parse().unwrap_or_else(|_| self.fail("`? room N`"));
            if self.room != want {
                self.fail(format!("the host was granted {} bytes of room", self.room));
            }
            return;
        }
        let (exact, number) = match (text.strip_prefix("iss after "), text.strip_prefix("iss at ")) {
            (Some(number), _) => (false, number),
            (_, Some(number)) => (true, number),
            _ => self.fail("`? iss after N` or `? iss at N`"),
        };
        let n = parse_number(number).unwrap_or_else(|| self.fail("a number"));
        let (Some(iss), Some(previous)) = (self.iss, self.previous_iss) else { self.fail("no two ISSs seen") };
        let mark = previous.wrapping_add(n);
        if (exact && iss != mark) || (!exact && !seq::after(iss, mark)) {
            self.fail(format!("our ISS is {} from the previous one", iss.wrapping_sub(previous) as i32));
        }
    }

    /// `? total NAME N`: the table's lifetime count NAME (as `stats().tcp` names it) is N.
    fn check_total(&self, text: &str) {
        let (name, want) = text.split_once(' ').unwrap_or_else(|| self.fail("`? total NAME N`"));
        let want: f64 = want.trim().parse().unwrap_or_else(|_| self.fail("a number"));
        let fields = self.tcp.totals().fields();
        let Some(&(_, got)) = fields.iter().find(|(field, _)| *field == name) else { self.fail(format!("no total named {name}")) };
        if got != want {
            self.fail(format!("{name} is {got}"));
        }
    }

    /// `want` bytes delivered now, in one or more events, continuing the peer's stream.
    fn expect_data(&mut self, want: u32) {
        let mut got = 0;
        while got < want {
            match self.events.front() {
                Some((at, Event::TcpData { bytes, .. })) if *at == self.now => {
                    let start = self.received + got;
                    if bytes.iter().enumerate().any(|(i, &b)| b != pattern(start.wrapping_add(i as u32))) {
                        self.fail(format!("bytes {start}.. are not the peer's"));
                    }
                    got += bytes.len() as u32;
                    self.events.pop_front();
                }
                _ => break,
            }
        }
        if got != want {
            self.fail(format!("{got} bytes were delivered"));
        }
        self.received += got;
    }

    // ---- reading and writing the language ----

    fn parse_spec(&self, text: &str, ours: bool) -> Spec {
        let (head, options) = match text.split_once('<') {
            Some((head, options)) => {
                let options = options.trim().strip_suffix('>').unwrap_or_else(|| self.fail("options end with `>`"));
                (head, Some(options))
            }
            None => (text, None),
        };
        let mut words = head.split_whitespace();
        let mut spec = Spec::default();
        let flags = words.next().unwrap_or_else(|| self.fail("flags expected"));
        let mut has_ack = false;
        for flag in flags.chars() {
            match flag {
                'S' => spec.syn = true,
                'F' => spec.fin = true,
                'R' => spec.rst = true,
                'P' => spec.psh = true,
                '.' => has_ack = true,
                _ => self.fail(format!("unknown flag {flag}")),
            }
        }
        let range = words.next().unwrap_or_else(|| self.fail("start:end(length) expected"));
        if let Some(len) = range.strip_prefix("*:*(").and_then(|rest| rest.strip_suffix(')')).and_then(parse_number) {
            if !ours {
                self.fail("an injected segment needs its sequence number");
            }
            spec.any_seq = true;
            spec.len = len;
        } else {
            let (start, end, len) = parse_range(range).unwrap_or_else(|| self.fail(format!("bad range {range}")));
            if end.wrapping_sub(start) != len {
                self.fail("the range and its length disagree");
            }
            spec.seq = start;
            spec.len = len;
        }
        while let Some(word) = words.next() {
            let value = words.next().and_then(parse_number).unwrap_or_else(|| self.fail(format!("`{word}` takes a number")));
            match word {
                "ack" => spec.ack = Some(value),
                "win" => spec.window = Some(u16::try_from(value).unwrap_or_else(|_| self.fail("a window field is 16 bits"))),
                _ => self.fail(format!("unknown field {word}")),
            }
        }
        if has_ack != spec.ack.is_some() {
            self.fail("`.` and `ack N` go together");
        }
        spec.options = match options {
            Some("...") if ours => None,
            Some(options) => Some(self.parse_options(options)),
            None => Some(Options::default()),
        };
        spec
    }

    fn parse_options(&self, text: &str) -> Options {
        let mut options = Options::default();
        for option in text.split(',') {
            let mut words = option.split_whitespace();
            let name = words.next().unwrap_or_default();
            let mut number = || words.next().and_then(parse_number).unwrap_or_else(|| self.fail(format!("`{name}` takes a number")));
            match name {
                "mss" => options.syn.mss = Some(number() as u16),
                "wscale" => options.syn.window_scale = Some(number() as u8),
                "sackOK" => options.syn.sack_permitted = true,
                "nop" => {}
                "TS" => {
                    let field = |name: &str| -> u32 {
                        let mut words = option.split_whitespace();
                        let value = words.position(|w| w == name).and_then(|_| words.next()).and_then(parse_number);
                        value.unwrap_or_else(|| self.fail("`TS val N ecr N`"))
                    };
                    options.timestamp = Some((field("val"), field("ecr")));
                }
                "sack" => {
                    for block in option.split_whitespace().skip(1) {
                        let (start, end) = block
                            .split_once(':')
                            .and_then(|(a, b)| Some((parse_number(a)?, parse_number(b)?)))
                            .unwrap_or_else(|| self.fail(format!("bad SACK block {block}")));
                        options.sack.push((start, end));
                    }
                }
                _ => self.fail(format!("unknown option {name}")),
            }
        }
        options
    }

    /// A packet of ours as a `Spec`, sequence numbers relative to the initial ones.
    fn read(&self, packet: &[u8]) -> Option<Spec> {
        let Ok(Inner::Tcp { src, dst, tcp }) = wire::classify(packet) else { return None };
        let header = TcpPacket::new_checked(tcp).ok()?;
        let segment = segment::parse(src, dst, tcp).ok()?;
        if (segment.src, segment.dst) != (self.ends.us, self.ends.peer) {
            self.fail(format!("a segment from {} to {}", segment.src, segment.dst));
        }
        let iss = self.iss.unwrap_or(0);
        let ts_offset = self.ts_offset.unwrap_or(0);
        let timestamp = segment.timestamp.map(|ts| (ts.val.wrapping_sub(ts_offset), ts.ecr));
        let sack = segment.sack.as_slice().iter().map(|&(s, e)| (s.wrapping_sub(PEER_ISN), e.wrapping_sub(PEER_ISN))).collect();
        Some(Spec {
            syn: segment.syn,
            fin: segment.fin,
            rst: segment.rst,
            psh: header.psh(),
            seq: segment.seq.wrapping_sub(iss),
            any_seq: false,
            len: segment.payload.len() as u32,
            ack: segment.ack.map(|ack| ack.wrapping_sub(PEER_ISN)),
            window: Some(segment.window),
            options: Some(Options { syn: segment.syn_options, timestamp, sack }),
        })
    }

    /// A packet of ours in the script's language, for failure messages.
    fn describe(&self, packet: &[u8]) -> String {
        let Some(spec) = self.read(packet) else { return "(not TCP)".into() };
        let mut text = String::new();
        for (on, flag) in [(spec.syn, 'S'), (spec.fin, 'F'), (spec.rst, 'R'), (spec.psh, 'P'), (spec.ack.is_some(), '.')] {
            if on {
                text.push(flag);
            }
        }
        let _ = write!(text, " {}:{}({})", spec.seq, spec.seq.wrapping_add(spec.len), spec.len);
        if let Some(ack) = spec.ack {
            let _ = write!(text, " ack {ack}");
        }
        let _ = write!(text, " win {}", spec.window.unwrap_or_default());
        let options = spec.options.unwrap_or_default();
        let mut parts = Vec::new();
        let syn = options.syn;
        if let Some(mss) = syn.mss {
            parts.push(format!("mss {mss}"));
        }
        if syn.sack_permitted {
            parts.push("sackOK".into());
        }
        if let Some((val, ecr)) = options.timestamp {
            parts.push(format!("TS val {val} ecr {ecr}"));
        }
        if let Some(shift) = syn.window_scale {
            parts.push(format!("wscale {shift}"));
        }
        if !options.sack.is_empty() {
            let blocks: Vec<String> = options.sack.iter().map(|(s, e)| format!("{s}:{e}")).collect();
            parts.push(format!("sack {}", blocks.join(" ")));
        }
        if !parts.is_empty() {
            let _ = write!(text, " <{}>", parts.join(","));
        }
        text
    }
}

fn parse_tcp(packet: &[u8]) -> Option<Segment<'_>> {
    match wire::classify(packet) {
        Ok(Inner::Tcp { src, dst, tcp }) => segment::parse(src, dst, tcp).ok(),
        _ => None,
    }
}

fn tcp_bytes(packet: &[u8]) -> Option<&[u8]> {
    match wire::classify(packet) {
        Ok(Inner::Tcp { tcp, .. }) => Some(tcp),
        _ => None,
    }
}

fn packet_is_tcp(packet: &[u8]) -> bool {
    tcp_bytes(packet).is_some()
}

/// A number, possibly negative (taken modulo 2^32, for sequence numbers behind the start).
fn parse_number(text: &str) -> Option<u32> {
    text.parse::<i64>().ok().map(|n| n as u32)
}

/// `start:end(length)`.
fn parse_range(text: &str) -> Option<(u32, u32, u32)> {
    let (range, len) = text.strip_suffix(')')?.split_once('(')?;
    let (start, end) = range.split_once(':')?;
    Some((parse_number(start)?, parse_number(end)?, parse_number(len)?))
}

fn ms(us: u64) -> String {
    format!("{}", us as f64 / 1000.0)
}

/// The harness fails what it should: a harness that cannot fail proves nothing.
mod harness_tests {
    use super::rfc9293::established;

    #[test]
    #[should_panic(expected = "unexpected segment")]
    fn a_segment_the_script_does_not_state_fails() {
        established("20 send 100\n25 < . 1:1(0) ack 101 win 1000\n");
    }

    #[test]
    #[should_panic(expected = "after the last line: unexpected segment at 80")]
    fn a_timer_firing_after_the_last_line_fails() {
        established("20 send 100\n20 > P. 1:101(100) ack 1\n");
    }

    #[test]
    #[should_panic(expected = "sent at 20 instead")]
    fn a_segment_at_another_time_fails() {
        established("20 send 100\n21 > P. 1:101(100) ack 1\n");
    }

    #[test]
    #[should_panic(expected = "unexpected event")]
    fn an_event_the_script_does_not_state_fails() {
        established("20 < P. 1:101(100) ack 1 win 1000\n20 > . 1:1(0) ack 101\n");
    }
}
