//! The refurl body parser on arbitrary bytes: never panics, and what it accepts is within its bounds.
#![no_main]
use libfuzzer_sys::fuzz_target;
use websocket_api::protocol::refurl::{parse_refurl, Refurl};

fuzz_target!(|data: &[u8]| {
    if let Ok(Refurl::Admit(a)) = parse_refurl(data) {
        assert!(a.call_id.as_str().len() <= 128);
    }
});
