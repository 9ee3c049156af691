//! Any bytes a carrier could send as a text frame: the Mcube event parser must answer, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = websocket_api::protocol::mcube::parse_event(text);
    }
});
