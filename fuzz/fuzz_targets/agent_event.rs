//! Any text an agent (or a client of the simulator) could send: both ElevenLabs parsers must answer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use websocket_api::protocol::elevenlabs::agent_side::parse_client_message;
use websocket_api::protocol::elevenlabs::parse_agent_event;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_agent_event(text);
        let _ = parse_client_message(text);
    }
});
