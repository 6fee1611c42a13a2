//! The WebSocket against hostile peers, client and server side: messages
//! after a final DEFLATE block, lengths that would overflow, frames over the
//! caps, fragmented text, sends that fail part-way, a split reader while the
//! writer is stuck, and peers that dribble bytes to stretch a call.

mod common;

use std::io::{Read, Write};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::IO_TIMEOUT;
use common::ws::*;
use flate2::{Compress, Compression, FlushCompress, Status};
use securenet::{CompressionOptions, Error, Message, Phase, ReadyState, WebSocketOptions};

const DEFLATE: &str = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Messages compressed the way RFC 7692 7.2.3.4 allows: each ends with a
/// final block (then the RFC's 0x00, if `trailer`), the window kept across
/// messages by starting each stream with the history as its dictionary.
fn final_block_messages(messages: &[&[u8]], trailer: bool) -> Vec<Vec<u8>> {
    let mut history: Vec<u8> = Vec::new();
    messages
        .iter()
        .map(|msg| {
            let mut c = Compress::new_with_window_bits(Compression::default(), false, 15);
            let keep = history.len().min(32 * 1024);
            c.set_dictionary(&history[history.len() - keep..])
                .expect("dictionary");
            let mut data = Vec::with_capacity(msg.len() + 64);
            while c
                .compress_vec(
                    &msg[c.total_in() as usize..],
                    &mut data,
                    FlushCompress::Finish,
                )
                .expect("compress")
                != Status::StreamEnd
            {
                data.reserve(4096);
            }
            if trailer {
                data.push(0x00);
            }
            history.extend_from_slice(msg);
            data
        })
        .collect()
}

/// RFC 7692's own bytes, then messages after final blocks: a text, a
/// fragmented binary, an empty text; with `mask` for a client's frames, and
/// with or without the RFC's 0x00 after each final block.
fn after_final_blocks(mask: Option<[u8; 4]>, trailer: bool) -> (Vec<u8>, Vec<Message>) {
    // 7.2.3.4: "Hello" in a block with BFINAL set, then 0x00; then 7.2.3.2's
    // second "Hello", a back-reference into the sliding window.
    let mut wire = frame_with(
        0xc1,
        &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
        mask,
    );
    wire.extend(frame_with(0xc1, &[0xf2, 0x00, 0x11, 0x00, 0x00], mask));
    let big = "a line that repeats itself, ".repeat(2000);
    let blob: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let later: [&[u8]; 3] = [big.as_bytes(), &blob, b""];
    // The test's compressor must know the two RFC messages as history.
    let mut all: Vec<&[u8]> = vec![b"HelloHello"];
    all.extend_from_slice(&later);
    let compressed = final_block_messages(&all, trailer);
    wire.extend(frame_with(0xc1, &compressed[1], mask));
    let (a, b) = compressed[2].split_at(compressed[2].len() / 2);
    wire.extend(frame_with(0x42, a, mask)); // RSV1 + binary, not final
    wire.extend(frame_with(0x80, b, mask)); // final continuation
    wire.extend(frame_with(0xc1, &compressed[3], mask));
    wire.extend(frame_with(0x88, &1000u16.to_be_bytes(), mask));
    let expected = vec![
        Message::Text("Hello".into()),
        Message::Text("Hello".into()),
        Message::Text(big),
        Message::Binary(blob),
        Message::Text(String::new()),
        Message::Close(Some((1000, String::new()))),
    ];
    (wire, expected)
}

#[test]
fn messages_after_a_final_deflate_block_arrive_whole_on_the_client() {
    for trailer in [true, false] {
        let (wire, expected) = after_final_blocks(None, trailer);
        let (got, _) = hostile(wire, DEFLATE);
        assert_eq!(got.expect("messages"), expected, "trailer {trailer}");
    }
}

#[test]
fn messages_after_a_final_deflate_block_arrive_whole_on_the_server() {
    let (wire, expected) = after_final_blocks(Some(MASK), false);
    let offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
    let (got, back) = accept_hostile(WebSocketOptions::new(), offer, wire);
    assert!(
        String::from_utf8_lossy(&back).contains("permessage-deflate"),
        "negotiated"
    );
    assert_eq!(got.expect("messages"), expected);
}

#[test]
fn a_message_that_is_not_deflate_data_is_1007_not_an_empty_message() {
    let wire = frame_with(0xc1, &[0xff, 0xff, 0xff, 0xff, 0xff], None);
    let (got, back) = hostile(wire, DEFLATE);
    let err = got.expect_err("not deflate");
    assert!(
        matches!(
            err,
            Error::WebSocket {
                close_code: Some(1007),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(close_code_in(&back), Some(1007));
}

fn unlimited() -> WebSocketOptions {
    WebSocketOptions::new()
        .compression(CompressionOptions::disabled())
        .max_message_size(usize::MAX)
        .max_frame_size(usize::MAX)
}

#[test]
fn a_length_with_the_top_bit_set_is_a_protocol_error_not_a_panic() {
    for len in [(1u64 << 63) + 5, u64::MAX] {
        let (got, back) = hostile_with(unlimited(), header_announcing(0x82, len, None), "");
        let err = got.expect_err("top bit");
        assert!(
            matches!(
                err,
                Error::WebSocket {
                    close_code: Some(1002),
                    ..
                }
            ),
            "{len:#x}: {err:?}"
        );
        assert_eq!(close_code_in(&back), Some(1002), "{len:#x}");
        let wire = header_announcing(0x82, len, Some(MASK));
        let (got, back) = accept_hostile(unlimited(), "", wire);
        let err = got.expect_err("top bit, server side");
        assert!(
            matches!(
                err,
                Error::WebSocket {
                    close_code: Some(1002),
                    ..
                }
            ),
            "{len:#x}: {err:?}"
        );
        assert_eq!(close_code_in(&back), Some(1002), "{len:#x}");
    }
}

#[test]
fn a_frame_over_max_frame_size_is_1009_and_the_peer_is_not_told_our_limits() {
    let options = WebSocketOptions::new()
        .compression(CompressionOptions::disabled())
        .max_frame_size(1000);
    let (got, back) = hostile_with(options.clone(), header_announcing(0x82, 1001, None), "");
    let err = got.expect_err("too big");
    assert!(err.to_string().contains("max_frame_size (1000)"), "{err}");
    assert!(matches!(
        err,
        Error::WebSocket {
            close_code: Some(1009),
            ..
        }
    ));
    assert_eq!(close_code_in(&back), Some(1009));
    assert_eq!(close_reason_in(&back).as_deref(), Some("message too big"));
    // A message in frames under the cap is fine.
    let mut wire = frame_with(0x02, &[1; 1000], None);
    wire.extend(frame_with(0x80, &[2; 1000], None));
    wire.extend(frame_with(0x88, &1000u16.to_be_bytes(), None));
    let (got, _) = hostile_with(options.clone(), wire, "");
    let mut want = vec![1u8; 1000];
    want.extend([2u8; 1000]);
    assert_eq!(got.expect("messages")[0], Message::Binary(want));
    let (got, back) = accept_hostile(options, "", header_announcing(0x82, 1001, Some(MASK)));
    assert!(matches!(
        got,
        Err(Error::WebSocket {
            close_code: Some(1009),
            ..
        })
    ));
    assert_eq!(close_reason_in(&back).as_deref(), Some("message too big"));
}

#[test]
fn sizes_of_zero_are_refused_by_name() {
    for (options, name) in [
        (
            WebSocketOptions::new().max_message_size(0),
            "max_message_size(0)",
        ),
        (
            WebSocketOptions::new().max_frame_size(0),
            "max_frame_size(0)",
        ),
        (
            WebSocketOptions::new().ping_interval(Duration::ZERO),
            "ping_interval",
        ),
    ] {
        let err = options.connect("ws://127.0.0.1:1/").expect_err(name);
        assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn fragmented_text_is_checked_once_not_once_per_fragment() {
    // About 100,000 fragments of 1 KiB of two-byte characters, cut
    // between a character's bytes at every other fragment. Checking the
    // whole prefix at each fragment is quadratic: minutes of CPU for this.
    let n = 100_000;
    let message = "é".repeat(n * 512).into_bytes();
    let fragments: Vec<&[u8]> = message.chunks(1023).collect();
    let mut wire = Vec::with_capacity(message.len() + fragments.len() * 4);
    for (i, fragment) in fragments.iter().enumerate() {
        let first = match i {
            0 => 0x01,
            _ if i == fragments.len() - 1 => 0x80,
            _ => 0x00,
        };
        wire.extend(frame_with(first, fragment, None));
    }
    wire.extend(frame_with(0x88, &1000u16.to_be_bytes(), None));
    let start = Instant::now();
    let options = WebSocketOptions::new()
        .compression(CompressionOptions::disabled())
        .max_message_size(usize::MAX);
    let (got, _) = hostile_with(options, wire, "");
    let got = got.expect("messages");
    let Message::Text(text) = &got[0] else {
        panic!("{:?}", got[0]);
    };
    assert_eq!(text.len(), n * 1024);
    assert!(text.chars().all(|c| c == 'é'));
    // A loose bound: linear work takes a few seconds even unoptimised.
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
}

/// A fake server that upgrades, reads nothing until `go`, then reads
/// everything and returns it.
fn stalled_reader() -> (String, mpsc::Sender<()>, thread::JoinHandle<Vec<u8>>) {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (url, server) = fake(move |req, s| {
        s.write_all(upgrade(&req, "").as_bytes()).expect("upgrade");
        go_rx.recv_timeout(IO_TIMEOUT * 3).expect("go");
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all);
        all
    });
    (url, go_tx, server)
}

/// What the stalled reader got: one frame announcing `len` and cut short,
/// and nothing after it.
fn assert_one_unfinished_frame(all: &[u8], len: usize) {
    assert!(all.len() > 10, "{} bytes", all.len());
    assert_eq!(all[0], 0x82, "a binary frame first");
    assert_eq!(all[1] & 0x7f, 127);
    let mut l = [0u8; 8];
    l.copy_from_slice(&all[2..10]);
    assert_eq!(u64::from_be_bytes(l), len as u64);
    assert!(
        all.len() < 14 + len,
        "the frame was cut short ({} bytes)",
        all.len()
    );
}

#[test]
fn a_failed_send_ends_the_connection() {
    let big = vec![0x5a; 48 << 20];
    for split in [false, true] {
        let (url, go, server) = stalled_reader();
        let mut ws = WebSocketOptions::new()
            .compression(CompressionOptions::disabled())
            .connect(&url)
            .expect("connect");
        // Long enough to mask 48 MiB unoptimised before the first write.
        ws.set_write_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let (err, again, state) = if split {
            let (_r, mut w) = ws.split().expect("split");
            let err = w.send_binary(&big).expect_err("the peer does not read");
            let again = w
                .send_text("next")
                .expect_err("nothing after a failed send");
            (err, again, w.ready_state())
        } else {
            let err = ws.send_binary(&big).expect_err("the peer does not read");
            let again = ws
                .send_text("next")
                .expect_err("nothing after a failed send");
            (err, again, ws.ready_state())
        };
        assert!(
            matches!(
                err,
                Error::Timeout {
                    phase: Phase::Write,
                    ..
                }
            ),
            "split {split}: {err:?}"
        );
        assert!(matches!(again, Error::Closed), "split {split}: {again:?}");
        assert_eq!(state, ReadyState::Closed, "split {split}");
        go.send(()).expect("go");
        assert_one_unfinished_frame(&server.join().expect("server"), big.len());
    }
}

#[test]
fn the_split_reader_never_waits_for_the_writer() {
    // The peer stops reading while our writer sends 48 MiB, sends a ping
    // and three texts, then reads everything looking for the pong.
    let (pinged_tx, pinged_rx) = mpsc::channel::<()>();
    let (read_tx, read_rx) = mpsc::channel::<()>();
    let (url, server) = fake(move |req, s| {
        s.write_all(upgrade(&req, "").as_bytes()).expect("upgrade");
        let mut out = frame_with(0x89, b"are you there", None);
        for t in ["one", "two", "three"] {
            out.extend(frame_with(0x81, t.as_bytes(), None));
        }
        s.write_all(&out).expect("ping and texts");
        pinged_tx.send(()).expect("pinged");
        read_rx.recv_timeout(IO_TIMEOUT).expect("read now");
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all);
        all
    });
    let mut ws = WebSocketOptions::new()
        .compression(CompressionOptions::disabled())
        .connect(&url)
        .expect("connect");
    ws.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    ws.set_write_timeout(Some(IO_TIMEOUT * 2)).expect("timeout");
    let (mut reader, mut writer) = ws.split().expect("split");
    let sending = thread::spawn(move || {
        let sent = writer.send_binary(&vec![1u8; 48 << 20]);
        let closed = writer.close(Some((1000, "done")));
        (sent, closed)
    });
    pinged_rx.recv_timeout(IO_TIMEOUT).expect("pinged");
    let start = Instant::now();
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(reader.read().expect("read while the writer is blocked"));
    }
    let waited = start.elapsed();
    assert!(
        !sending.is_finished(),
        "the reader did not wait for the send"
    );
    assert_eq!(
        got,
        [
            Message::Ping(b"are you there".to_vec()),
            Message::Text("one".into()),
            Message::Text("two".into()),
            Message::Text("three".into()),
        ]
    );
    assert!(
        waited < Duration::from_secs(5),
        "the reader waited {waited:?}"
    );
    read_tx.send(()).expect("read now");
    let (sent, closed) = sending.join().expect("writer");
    sent.expect("the send completes once the peer reads");
    closed.expect("close");
    // Whole frames, none inside another: the pong before the binary (if
    // the ping came before the send began) or right after it.
    let frames = parse_frames(&server.join().expect("server"));
    let ops: Vec<u8> = frames.iter().map(|(f, _)| f & 0x0f).collect();
    let pong = ops.iter().position(|&op| op == 0xa).expect("a pong");
    assert!(ops == [0x2, 0xa, 0x8] || ops == [0xa, 0x2, 0x8], "{ops:?}");
    assert_eq!(frames[pong].1, b"are you there");
}

/// A fake server that upgrades, then sends `bytes` one at a time, one every
/// `gap`, until done or the client leaves.
fn dribbler(bytes: Vec<u8>, gap: Duration, upgrade_too: bool) -> (String, thread::JoinHandle<()>) {
    fake(move |req, s| {
        let mut all = Vec::new();
        if upgrade_too {
            all.extend_from_slice(upgrade(&req, "").as_bytes());
        } else {
            s.write_all(upgrade(&req, "").as_bytes()).expect("upgrade");
        }
        all.extend(bytes);
        for b in all {
            thread::sleep(gap); // slow peer
            if s.write_all(&[b]).is_err() {
                return;
            }
        }
    })
}

fn quick() -> WebSocketOptions {
    WebSocketOptions::new()
        .compression(CompressionOptions::disabled())
        .upgrade_timeout(Duration::from_secs(1))
        .close_timeout(Duration::from_secs(1))
}

const GAP: Duration = Duration::from_millis(50);
const LIMIT: Duration = Duration::from_secs(1);

#[test]
fn a_dribbled_message_times_out_within_the_read_timeout_and_reading_goes_on() {
    let text = "x".repeat(60);
    let mut wire = frame_with(0x81, text.as_bytes(), None);
    wire.extend(frame_with(0x81, b"next", None));
    let (url, server) = dribbler(wire, GAP, false);
    let mut ws = quick().connect(&url).expect("connect");
    ws.set_read_timeout(Some(LIMIT)).expect("timeout");
    let start = Instant::now();
    let err = ws.read().expect_err("62 bytes at 50 ms each take 3 s");
    let took = start.elapsed();
    assert!(
        matches!(
            err,
            Error::Timeout {
                phase: Phase::Read,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(took >= LIMIT && took < LIMIT * 2, "took {took:?}");
    ws.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    assert_eq!(ws.read().expect("the rest"), Message::Text(text));
    assert_eq!(ws.read().expect("next"), Message::Text("next".into()));
    drop(ws);
    server.join().expect("server");
}

#[test]
fn close_is_bounded_by_the_close_timeout_against_a_dribbling_peer() {
    let (url, server) = dribbler(frame_with(0x81, &[b'y'; 100], None), GAP, false);
    let mut ws = quick().connect(&url).expect("connect");
    let start = Instant::now();
    ws.close(Some((1000, "bye"))).expect("close");
    let took = start.elapsed();
    assert!(took < LIMIT * 2, "took {took:?}");
    assert_eq!(ws.ready_state(), ReadyState::Closed);
    server.join().expect("server");
}

#[test]
fn a_dribbled_upgrade_response_is_an_upgrade_timeout() {
    let (url, server) = dribbler(Vec::new(), GAP, true);
    let start = Instant::now();
    let err = quick()
        .connect(&url)
        .expect_err("the 101 takes 7 s to arrive");
    let took = start.elapsed();
    assert!(
        matches!(
            err,
            Error::Timeout {
                phase: Phase::Upgrade,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(took < LIMIT * 2, "took {took:?}");
    server.join().expect("server");
}
