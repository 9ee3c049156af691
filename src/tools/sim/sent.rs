//! What the gateway sends a carrier, read in any dialect (Mcube's and Plivo's `playAudio`, `checkpoint`,
//! `clearAudio`, `terminate`; Exotel's and Twilio's `media`, `mark`, `clear`), with the answer a carrier
//! gives a mark once what came before it has played. Shared by the carrier simulator and the load tool.

use base64::Engine as _;
use serde_json::{json, Value};

/// What the gateway sent on a stream, in any dialect.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    /// Audio for the caller, base64.
    Audio(String),
    /// A checkpoint or mark, with the carrier's answer once it has played.
    Mark {
        name: String,
        answer: String,
    },
    Clear,
    Terminate,
    Other,
}

/// Reads one message the gateway sent: Mcube's and Plivo's `playAudio`/`checkpoint`/`clearAudio`/
/// `terminate`, Exotel's and Twilio's `media`/`mark`/`clear`.
pub fn read_sent(text: &[u8]) -> Sent {
    let Ok(v) = serde_json::from_slice::<Value>(text) else {
        return Sent::Other;
    };
    let name = |v: &Value| v.as_str().unwrap_or_default().to_string();
    match v["event"].as_str().unwrap_or_default() {
        "playAudio" | "media" => Sent::Audio(name(&v["media"]["payload"])),
        "checkpoint" => {
            let n = name(&v["name"]);
            Sent::Mark {
                answer: json!({"event": "playedStream", "streamId": v["streamId"], "name": n}).to_string(),
                name: n,
            }
        }
        "mark" => {
            let n = name(&v["mark"]["name"]);
            let answer = match v.get("streamSid") {
                Some(sid) => json!({"event": "mark", "sequenceNumber": "9", "streamSid": sid, "mark": {"name": n}}),
                None => {
                    json!({"event": "mark", "sequence_number": "9", "stream_sid": v["stream_sid"], "mark": {"name": n}})
                }
            };
            Sent::Mark {
                name: n,
                answer: answer.to_string(),
            }
        }
        "clearAudio" | "clear" => Sent::Clear,
        "terminate" => Sent::Terminate,
        _ => Sent::Other,
    }
}

/// Decodes a base64 payload the gateway sent (empty when it is not base64).
pub fn decoded(b64: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap_or_default()
}
