//! Plivo's call-setup webhook: the answer URL's form (`CallUUID`, `From`, `To`, `Direction`) read into
//! typed values, its `X-Plivo-Signature-V2` checked, and the Plivo XML we answer with (a bidirectional
//! `<Stream>`, or a busy `<Hangup>`). Plain functions, no I/O. The stream itself speaks what Mcube mirrors
//! (`mcube`).

use crate::audio::format::AudioFormat;
use crate::values::Invalid;
use base64::Engine as _;
use hmac::{Hmac, Mac};

/// The answer URL's form fields we use.
const FIELDS: super::WebhookFields = super::WebhookFields {
    call_id: "CallUUID",
    from: "From",
    to: "To",
    direction: "Direction",
};

/// Reads the answer URL's form body; a field we use that is out of bounds is refused with its name.
pub fn parse_answer(body: &[u8]) -> Result<super::WebhookCall, Invalid> {
    super::parse_webhook_form(body, &FIELDS)
}

/// `X-Plivo-Signature-V2`: base64 HMAC-SHA256, keyed with the auth token, of the answer URL (without its
/// query) followed by the `X-Plivo-Signature-V2-Nonce`.
pub fn signature_v2(auth_token: &str, url: &str, nonce: &str) -> String {
    let base = url.split('?').next().unwrap_or_default();
    // HMAC takes a key of any length; an empty answer would match no signature anyway.
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(auth_token.as_bytes()) else {
        return String::new();
    };
    mac.update(base.as_bytes());
    mac.update(nonce.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The answer that connects the call to our media socket `wss_url`, both ways, in `format`.
pub fn stream_answer(wss_url: &str, format: AudioFormat) -> String {
    let content_type = match format.codec {
        crate::audio::format::Codec::Pcm16 => format!("audio/x-l16;rate={}", format.rate.hz()),
        _ => "audio/x-mulaw;rate=8000".to_string(),
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>\n  <Stream bidirectional=\"true\" keepCallAlive=\"true\" \
         contentType=\"{content_type}\">{}</Stream>\n</Response>\n",
        super::xml_escaped(wss_url)
    )
}

/// The answer that refuses the call in Plivo's own way: a busy hang-up.
pub fn busy_answer() -> String {
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>\n  <Hangup reason=\"busy\"/>\n</Response>\n".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::Direction;

    #[test]
    fn the_answer_form_is_read_into_bounded_values() {
        let call =
            parse_answer(b"CallUUID=abc-123&From=14155551234&To=%2B918001234567&Direction=outbound&Event=StartApp")
                .expect("valid");
        assert_eq!(call.call_id.as_str(), "abc-123");
        assert_eq!(call.from.map(|n| n.to_string()).as_deref(), Some("14155551234"));
        assert_eq!(call.to.map(|n| n.to_string()).as_deref(), Some("+918001234567"));
        assert_eq!(call.direction, Direction::Outbound);
        assert_eq!(parse_answer(b"From=1").expect_err("no id").field, "CallUUID");
        assert_eq!(parse_answer(b"CallUUID=a%00b").expect_err("NUL").field, "CallUUID");
        assert_eq!(
            parse_answer(b"CallUUID=a&From=notanumber").expect_err("number").field,
            "From"
        );
    }

    #[test]
    fn signature_covers_the_url_without_its_query_and_the_nonce() {
        let a = signature_v2("token", "https://gw.example.com/plivo/answer?carrier_token=x", "12345");
        assert_eq!(a, signature_v2("token", "https://gw.example.com/plivo/answer", "12345"));
        assert_ne!(a, signature_v2("token", "https://gw.example.com/plivo/answer", "12346"));
        assert_ne!(a, signature_v2("other", "https://gw.example.com/plivo/answer", "12345"));
    }

    #[test]
    fn answers_are_plivo_xml_with_the_url_escaped() {
        let xml = stream_answer("wss://gw/ws/plivo/C1?token=a&instance=b", AudioFormat::ULAW_8K);
        assert!(xml.contains(
            "<Stream bidirectional=\"true\" keepCallAlive=\"true\" contentType=\"audio/x-mulaw;rate=8000\">"
        ));
        assert!(xml.contains("wss://gw/ws/plivo/C1?token=a&amp;instance=b</Stream>"));
        assert!(busy_answer().contains("<Hangup reason=\"busy\"/>"));
    }
}
