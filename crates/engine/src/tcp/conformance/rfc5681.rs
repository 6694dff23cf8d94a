//! RFC 5681 (congestion control) where it fixes exact segments, whatever the congestion
//! controller: the initial window (RFC 6928), growth by bytes acknowledged in slow start,
//! and one segment after a retransmission timeout (the loss window, §3.1).

use super::rfc9293::established;

#[test]
fn rfc5681_3_1_after_a_timeout_one_segment_goes() {
    established(
        "
        20    send 3000
        20    > . 1:1001(1000) ack 1
        20    > . 1001:2001(1000) ack 1
        20    > P. 2001:3001(1000) ack 1
        40    > P. 2001:3001(1000) ack 1
        220   > . 1:1001(1000) ack 1
        230   < . 1:1(0) ack 1001 win 1000
        230   > . 1001:2001(1000) ack 1
        230   > P. 2001:3001(1000) ack 1
        240   < . 1:1(0) ack 3001 win 1000
        ",
    );
}

#[test]
fn rfc6928_initial_window_is_ten_segments() {
    // And slow start grows it by every byte acknowledged (RFC 5681 §3.1, with RFC 3465's
    // byte counting), a segment acknowledged in part included: 999 bytes of ACK let two go.
    established(
        "
        20   send 12000
        20   > . 1:1001(1000) ack 1
        20~30 > . 1001:2001(1000) ack 1
        20~30 > . 2001:3001(1000) ack 1
        20~30 > . 3001:4001(1000) ack 1
        20~30 > . 4001:5001(1000) ack 1
        20~30 > . 5001:6001(1000) ack 1
        20~30 > . 6001:7001(1000) ack 1
        20~30 > . 7001:8001(1000) ack 1
        20~30 > . 8001:9001(1000) ack 1
        20~30 > . 9001:10001(1000) ack 1
        30   < . 1:1(0) ack 1000 win 1000
        30~40 > . 10001:11001(1000) ack 1
        30~40 > P. 11001:12001(1000) ack 1
        40   < . 1:1(0) ack 12001 win 1000
        ",
    );
}

/// 64 KiB written, acknowledged in three rounds as the window grows from 10 to 20 to 40
/// segments; `room_at_70`: the room granted in all once the window is 40 segments.
fn send_buffer_script(room_at_70: u32) -> String {
    format!(
        "
        10   ? room 65536
        20   send 65536
        20~30 > . 1:1001(1000) ack 1
        20~30 > . 1001:2001(1000) ack 1
        20~30 > . 2001:3001(1000) ack 1
        20~30 > . 3001:4001(1000) ack 1
        20~30 > . 4001:5001(1000) ack 1
        20~30 > . 5001:6001(1000) ack 1
        20~30 > . 6001:7001(1000) ack 1
        20~30 > . 7001:8001(1000) ack 1
        20~30 > . 8001:9001(1000) ack 1
        20~30 > . 9001:10001(1000) ack 1
        40   < . 1:1(0) ack 10001 win 1000
        40   ? room 75536
        40~60 > . 10001:11001(1000) ack 1
        40~60 > . 11001:12001(1000) ack 1
        40~60 > . 12001:13001(1000) ack 1
        40~60 > . 13001:14001(1000) ack 1
        40~60 > . 14001:15001(1000) ack 1
        40~60 > . 15001:16001(1000) ack 1
        40~60 > . 16001:17001(1000) ack 1
        40~60 > . 17001:18001(1000) ack 1
        40~60 > . 18001:19001(1000) ack 1
        40~60 > . 19001:20001(1000) ack 1
        40~60 > . 20001:21001(1000) ack 1
        40~60 > . 21001:22001(1000) ack 1
        40~60 > . 22001:23001(1000) ack 1
        40~60 > . 23001:24001(1000) ack 1
        40~60 > . 24001:25001(1000) ack 1
        40~60 > . 25001:26001(1000) ack 1
        40~60 > . 26001:27001(1000) ack 1
        40~60 > . 27001:28001(1000) ack 1
        40~60 > . 28001:29001(1000) ack 1
        40~60 > . 29001:30001(1000) ack 1
        70   < . 1:1(0) ack 30001 win 1000
        70   ? room {room_at_70}
        70~90 > . 30001:31001(1000) ack 1
        70~90 > . 31001:32001(1000) ack 1
        70~90 > . 32001:33001(1000) ack 1
        70~90 > . 33001:34001(1000) ack 1
        70~90 > . 34001:35001(1000) ack 1
        70~90 > . 35001:36001(1000) ack 1
        70~90 > . 36001:37001(1000) ack 1
        70~90 > . 37001:38001(1000) ack 1
        70~90 > . 38001:39001(1000) ack 1
        70~90 > . 39001:40001(1000) ack 1
        70~90 > . 40001:41001(1000) ack 1
        70~90 > . 41001:42001(1000) ack 1
        70~90 > . 42001:43001(1000) ack 1
        70~90 > . 43001:44001(1000) ack 1
        70~90 > . 44001:45001(1000) ack 1
        70~90 > . 45001:46001(1000) ack 1
        70~90 > . 46001:47001(1000) ack 1
        70~90 > . 47001:48001(1000) ack 1
        70~90 > . 48001:49001(1000) ack 1
        70~90 > . 49001:50001(1000) ack 1
        70~90 > . 50001:51001(1000) ack 1
        70~90 > . 51001:52001(1000) ack 1
        70~90 > . 52001:53001(1000) ack 1
        70~90 > . 53001:54001(1000) ack 1
        70~90 > . 54001:55001(1000) ack 1
        70~90 > . 55001:56001(1000) ack 1
        70~90 > . 56001:57001(1000) ack 1
        70~90 > . 57001:58001(1000) ack 1
        70~90 > . 58001:59001(1000) ack 1
        70~90 > . 59001:60001(1000) ack 1
        70~90 > . 60001:61001(1000) ack 1
        70~90 > . 61001:62001(1000) ack 1
        70~90 > . 62001:63001(1000) ack 1
        70~90 > . 63001:64001(1000) ack 1
        70~90 > . 64001:65001(1000) ack 1
        70~90 > P. 65001:65537(536) ack 1
        100  < . 1:1(0) ack 65537 win 1000
        "
    )
}

#[test]
fn send_buffer_grows_to_two_congestion_windows() {
    // As Linux sizes it: room for two windows' worth once the congestion window passes half
    // the initial 64 KiB, so the host can keep a growing window full. With cwnd 40000 the
    // buffer grows from 65536 to 80000 bytes, 44464 of them free.
    established(&send_buffer_script(110_000));
}

#[test]
fn send_buffer_does_not_grow_under_memory_pressure() {
    // The server holds three quarters of all it may: the buffer stays at 64 KiB.
    let limits = crate::tcp::Limits { buffered_bytes: 70_000, ..super::config().limits };
    super::run_with(
        crate::tcp::TcpConfig { limits, ..super::config() },
        &format!("{}{}", super::rfc9293::OPEN, send_buffer_script(95_536)),
    );
}
