//! Properties over generated input (proptest): the parsers never panic whatever a peer sends, the frame
//! guard's verdict does not depend on how the bytes are split, reassembly never exceeds its cap, and the
//! registry agrees with a model of its slots at every step — never past the cap, every expired
//! reservation handed back for its record, nothing held once every call has ended.
use actix_http::ws::Item;
use bytes::Bytes;
use proptest::prelude::*;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use websocket_api::call::CallInfo;
use websocket_api::carriers::{mcube::refurl, stream as mcube, CallKey, Carrier};
use websocket_api::protocol::elevenlabs;
use websocket_api::registry::{Refusal, SlotTable};
use websocket_api::values::CallId;
use websocket_api::ws::frames::{Assembled, FrameGuard, Reassembler};

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
    fn carrier_parsers_never_panic(text in any_text()) {
        let _ = mcube::parse_event(&text);
        // The refurl's body: accepted values are within their bounds, refusals name a field.
        match refurl::parse_refurl(text.as_bytes()) {
            Ok(refurl::Refurl::Admit(a)) => prop_assert!(a.call_id.as_str().len() <= 128),
            Ok(refurl::Refurl::Status { recording, .. }) => {
                prop_assert!(recording.is_none_or(|r| r.as_str().len() <= 2048))
            }
            Err(e) => prop_assert!(!e.invalid.field.is_empty() && !e.invalid.reason.is_empty()),
        }
    }

    #[test]
    fn agent_parsers_never_panic(text in any_text()) {
        let _ = elevenlabs::parse_agent_event(&text);
        let _ = elevenlabs::agent_side::parse_client_message(&text);
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
    fn registry_agrees_with_a_model_of_its_slots(
        ops in prop::collection::vec((0u8..6, 0u8..12, 0usize..8), 0..200), cap in 0usize..6) {
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        enum Held { Reserved, Claimed }
        // A zero deadline: every reservation is due the moment expiry runs, so it runs only when asked.
        let mut slots = SlotTable::new(cap, Duration::ZERO);
        // Even n are Mcube's calls, odd n Plivo's, with the same ids: C0 of Mcube and C0 of Plivo are two
        // calls.
        let carrier = |n: u8| if n.is_multiple_of(2) { Carrier::Mcube } else { Carrier::Plivo };
        let id = |n: u8| CallKey::new(carrier(n), CallId::parse("id", &format!("C{}", n / 2)).expect("a valid id"));
        let mut model: HashMap<u8, Held> = HashMap::new();
        // The attempt each claimed slot was claimed for, as its call's guard holds it.
        let mut claimed_attempts = HashMap::new();
        let (mut cap_now, mut draining) = (cap, false);
        for (op, n, k) in ops {
            let full = draining || model.len() >= cap_now;
            match op {
                0 => {
                    // The gate (a breaker) refuses when k is 7; it is asked only of a call that fits.
                    let mut asked = false;
                    let gate = |_: &CallInfo| {
                        asked = true;
                        if k == 7 { Err(Refusal::AgentUnavailable) } else { Ok(()) }
                    };
                    let admitted = slots.admit(CallInfo::bare(id(n), k as i64), gate);
                    prop_assert!(!asked || (!full && !model.contains_key(&n)), "the gate is asked only of a call that fits");
                    match model.get(&n) {
                        // Its socket would be refused while draining: the carrier hears so at once.
                        Some(Held::Reserved) if draining => prop_assert_eq!(admitted.err(), Some(Refusal::Draining)),
                        Some(Held::Reserved) => prop_assert!(admitted.is_ok(), "a repeated POST is idempotent"),
                        Some(Held::Claimed) => prop_assert_eq!(admitted.err(), Some(Refusal::Duplicate)),
                        None if full => prop_assert!(admitted.is_err(), "admitted past the cap {} or draining", cap_now),
                        None if k == 7 => prop_assert_eq!(admitted.err(), Some(Refusal::AgentUnavailable)),
                        None => {
                            prop_assert!(admitted.is_ok(), "refused below the cap");
                            model.insert(n, Held::Reserved);
                        }
                    }
                }
                1 => {
                    let unreserved = k % 2 == 0;
                    let claimed = slots.claim(&id(n), unreserved).map(|info| {
                        claimed_attempts.insert(n, info.attempt);
                    });
                    match model.get(&n) {
                        Some(Held::Reserved) if draining => prop_assert_eq!(claimed.err(), Some(Refusal::Draining)),
                        Some(Held::Reserved) => {
                            prop_assert!(claimed.is_ok());
                            model.insert(n, Held::Claimed);
                        }
                        Some(Held::Claimed) => prop_assert_eq!(claimed.err(), Some(Refusal::AlreadyConnected)),
                        None if !unreserved => prop_assert_eq!(claimed.err(), Some(Refusal::NotAdmitted)),
                        None if full => prop_assert!(claimed.is_err(), "claimed past the cap {}", cap_now),
                        None => {
                            prop_assert!(claimed.is_ok());
                            model.insert(n, Held::Claimed);
                        }
                    }
                }
                2 => {
                    // A call ends: its guard releases its attempt. A reservation has no guard; it only expires.
                    if let Some(attempt) = claimed_attempts.remove(&n) {
                        slots.release(&id(n), attempt);
                        model.remove(&n);
                    }
                }
                3 => {
                    cap_now = k;
                    slots.set_limit(k);
                }
                4 => {
                    let expired: BTreeSet<String> =
                        slots.expire_reservations().into_iter().map(|u| u.info.key().to_string()).collect();
                    let due: BTreeSet<String> = model
                        .iter()
                        .filter(|(_, h)| **h == Held::Reserved)
                        .map(|(n, _)| id(*n).to_string())
                        .collect();
                    prop_assert_eq!(expired, due, "every due reservation, and only those, is handed back");
                    model.retain(|_, h| *h != Held::Reserved);
                }
                _ => {
                    slots.start_drain();
                    draining = true;
                }
            }
            prop_assert_eq!(slots.summary().active, model.len());
        }
        // Every connected call releases its slot when it ends, and the rest expire: nothing is held.
        for (n, attempt) in claimed_attempts {
            slots.release(&id(n), attempt);
        }
        let _ = slots.expire_reservations();
        prop_assert_eq!(slots.summary().active, 0);
    }
}
