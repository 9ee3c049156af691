//! Properties over generated input (proptest): the parsers never panic whatever a peer sends, the frame
//! guard's verdict does not depend on how the bytes are split, reassembly never exceeds its cap, and the
//! registry never admits past the cap and returns to zero.
use actix_http::ws::Item;
use bytes::Bytes;
use proptest::prelude::*;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use websocket_api::call::CallInfo;
use websocket_api::protocol::{elevenlabs, mcube};
use websocket_api::registry::{Refusal, Slots};
use websocket_api::ws_frames::{Assembled, FrameGuard, Reassembler};

/// JSON-shaped text built from the protocols' own words, so generated input reaches past the first `{`.
fn jsonish() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "\"",
        "null",
        "true",
        "-1",
        "1e999",
        "0.5",
        "\"event\"",
        "\"media\"",
        "\"start\"",
        "\"stop\"",
        "\"payload\"",
        "\"AAAA\"",
        "\"mark\"",
        "\"dtmf\"",
        "\"type\"",
        "\"audio\"",
        "\"audio_event\"",
        "\"audio_base_64\"",
        "\"event_id\"",
        "\"ping\"",
        "\"ping_event\"",
        "\"interruption\"",
        "\"conversation_initiation_metadata\"",
        "\"user_audio_chunk\"",
        "\"sampleRate\"",
        "\"8000\"",
        "\\u0000",
        "\\\"",
        "é",
        "\u{1F4DE}",
    ]);
    prop::collection::vec(token, 0..40).prop_map(|t| t.concat())
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![jsonish(), any::<String>()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn carrier_parser_never_panics(text in any_text()) {
        let _ = mcube::parse_event(&text);
    }

    #[test]
    fn agent_parsers_never_panic(text in any_text()) {
        let _ = elevenlabs::parse_agent_event(&text);
        let _ = elevenlabs::parse_client_message(&text);
    }

    #[test]
    fn frame_guard_verdict_ignores_chunking(bytes in prop::collection::vec(any::<u8>(), 0..600),
                                            cuts in prop::collection::vec(1usize..50, 1..30),
                                            max in 0usize..300) {
        let whole = FrameGuard::new((), max, Arc::new(AtomicBool::new(false))).inspect(&bytes);
        let mut split = FrameGuard::new((), max, Arc::new(AtomicBool::new(false)));
        let (mut rest, mut ok) = (&bytes[..], true);
        for cut in cuts.iter().cycle() {
            if rest.is_empty() || !ok {
                break;
            }
            let n = (*cut).min(rest.len());
            ok = split.inspect(&rest[..n]);
            rest = &rest[n..];
        }
        prop_assert_eq!(whole, ok);
    }

    #[test]
    fn reassembly_never_exceeds_its_cap(items in prop::collection::vec((0u8..4, prop::collection::vec(any::<u8>(), 0..64)), 0..40),
                                        max in 0usize..256) {
        let mut r = Reassembler::new(max);
        for (kind, data) in items {
            let data = Bytes::from(data);
            let item = match kind {
                0 => Item::FirstText(data),
                1 => Item::FirstBinary(data),
                2 => Item::Continue(data),
                _ => Item::Last(data),
            };
            if let Ok(Some(Assembled::Text(b) | Assembled::Binary(b))) = r.push(item) {
                prop_assert!(b.len() <= max);
            }
        }
    }

    #[test]
    fn registry_never_admits_past_the_cap_and_returns_to_zero(
        ops in prop::collection::vec((0u8..5, 0u8..12, 0usize..8), 0..200), cap in 0usize..6) {
        let slots = Slots::new(cap, Duration::from_secs(3600));
        let mut cap_now = cap;
        let info = |id: u8| CallInfo { call_id: format!("C{id}"), ..CallInfo::default() };
        for (op, id, n) in ops {
            let before = slots.summary().active;
            let admitted = match op {
                0 => slots.admit(info(id)),
                1 => slots.claim(&format!("C{id}"), n % 2 == 0).map(|_| ()),
                2 => { slots.release(&format!("C{id}")); Ok(()) }
                3 => { cap_now = n; slots.set_limit(n); Ok(()) }
                _ => { slots.reconcile(); Ok(()) }
            };
            let after = slots.summary().active;
            if after > before {
                // A new slot is only ever taken below the cap in force.
                prop_assert!(before < cap_now, "admitted at {before} with cap {cap_now}");
            }
            if let Err(Refusal::Capacity) = admitted {
                prop_assert!(before >= cap_now);
            }
        }
        for id in 0..12u8 {
            slots.release(&format!("C{id}"));
        }
        prop_assert_eq!(slots.summary().active, 0);
    }
}
