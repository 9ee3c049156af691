//! Any byte stream a peer could send, split anywhere: the frame guard must follow it without panicking,
//! and its verdict must not depend on where the reads split the bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use websocket_api::ws::frames::FrameGuard;

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else { return };
    let max = 1 << (split % 20);
    let guard = || FrameGuard::new((), max, Arc::new(AtomicBool::new(false)));
    let whole = guard().inspect(bytes);
    let mut parts = guard();
    let step = usize::from(split).max(1);
    let split_ok = bytes.chunks(step).all(|c| parts.inspect(c));
    assert_eq!(whole, split_ok, "verdict depends on how the stream was split");
});
