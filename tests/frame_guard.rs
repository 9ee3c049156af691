//! A carrier that declares a 1 GiB frame and streams it is cut off at the frame's header: the call ends
//! with a 1009 close and the gateway's memory does not grow with what the peer keeps sending (the rest is
//! read and dropped, never buffered).

mod common;

use common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use websocket_api::capacity::procfs::sample_process;

#[actix_rt::test]
async fn a_declared_gigabyte_frame_is_refused_before_it_is_buffered() {
    let h = start(quiet_script(), |_| {}).await;
    let mut sock = raw_media_socket(&h, "HUGE-1").await;

    let before = sample_process("self").expect("rss").rss_bytes;
    // A masked binary frame declaring 1 GiB, then its payload as fast as the socket takes it.
    let mut header = vec![0x82u8, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 30).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    sock.write_all(&header).await.expect("header sent");
    let chunk = vec![0u8; 64 * 1024];
    let mut sent = 0usize;
    while sent < 64 << 20 {
        match tokio::time::timeout(Duration::from_secs(2), sock.write_all(&chunk)).await {
            Ok(Ok(())) => sent += chunk.len(),
            _ => break, // reset, closed, or no longer read: the gateway stopped taking it
        }
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), sock.read_to_end(&mut answer)).await;
    let after = sample_process("self").expect("rss").rss_bytes;
    let growth = after.saturating_sub(before);
    println!("sent {} MiB before the cut; RSS grew {} KiB", sent >> 20, growth >> 10);
    assert!(growth < 4 << 20, "RSS grew {growth} bytes");
    assert_eq!(close_code(&answer), Some(1009));
    assert!(
        active_becomes(&h, 0, Duration::from_secs(3)).await,
        "the call ended and its slot came back"
    );
    let (_, call) = get_json(&h, "/calls/HUGE-1").await;
    assert_eq!(call["end_reason"], "carrier_protocol_error");
}
