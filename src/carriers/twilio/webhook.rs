//! Twilio's call-setup webhook: the voice webhook's form (`CallSid`, `From`, `To`, `Direction`) read into
//! typed values, its `X-Twilio-Signature` checked, and the TwiML we answer with (`<Connect><Stream>` with
//! the call's token as a `<Parameter>`, since Twilio refuses a query string on the stream URL; or a busy
//! `<Reject>`). Plain functions, no I/O. The stream reads with `mcube`'s tolerant parser; what we send is
//! `writer`'s.

use crate::values::Invalid;
use base64::Engine as _;
use hmac::{Hmac, Mac};

/// The voice webhook's form fields we use.
const FIELDS: crate::carriers::WebhookFields = crate::carriers::WebhookFields {
    call_id: "CallSid",
    from: "From",
    to: "To",
    direction: "Direction",
};

/// The `<Parameter>` names of our stream; they come back in `start.customParameters`.
pub const TOKEN_PARAMETER: &str = "token";
pub const CALL_PARAMETER: &str = "call_id";

/// Reads the voice webhook's form body; a field we use that is out of bounds is refused with its name.
pub fn parse_voice(body: &[u8]) -> Result<crate::carriers::WebhookCall, Invalid> {
    crate::carriers::parse_webhook_form(body, &FIELDS)
}

/// `X-Twilio-Signature`: base64 HMAC-SHA1, keyed with the auth token, of the webhook's full URL followed
/// by every POST parameter's name and value, sorted by name. A body that is not a form signs as none.
pub fn signature(auth_token: &str, url: &str, form: &[u8]) -> String {
    let mut params: Vec<(String, String)> = serde_urlencoded::from_bytes(form).unwrap_or_default();
    params.sort();
    // HMAC takes a key of any length; an empty answer would match no signature anyway.
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()) else {
        return String::new();
    };
    mac.update(url.as_bytes());
    for (name, value) in &params {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The TwiML that connects the call to our media socket `stream_url` (no query), both ways, passing the
/// call's id and token as `<Parameter>`s.
pub fn stream_answer(stream_url: &str, call_id: &str, token: &str) -> String {
    let esc = crate::carriers::xml_escaped;
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>\n  <Connect>\n    <Stream url=\"{}\">\n      \
         <Parameter name=\"{CALL_PARAMETER}\" value=\"{}\"/>\n      <Parameter name=\"{TOKEN_PARAMETER}\" value=\"{}\"/>\n    \
         </Stream>\n  </Connect>\n</Response>\n",
        esc(stream_url),
        esc(call_id),
        esc(token)
    )
}

/// The TwiML that refuses the call in Twilio's own way: the caller hears busy, and the call is not billed.
pub fn busy_answer() -> String {
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>\n  <Reject reason=\"busy\"/>\n</Response>\n".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::Direction;

    #[test]
    fn the_voice_form_is_read_into_bounded_values() {
        let call =
            parse_voice(b"CallSid=CA123&From=%2B14155551234&To=%2B18005550100&Direction=outbound-api").expect("valid");
        assert_eq!(call.call_id.as_str(), "CA123");
        assert_eq!(call.to.map(|n| n.to_string()).as_deref(), Some("+18005550100"));
        assert_eq!(call.direction, Direction::Outbound);
        assert_eq!(parse_voice(b"From=1").expect_err("no id").field, "CallSid");
        assert_eq!(parse_voice(b"CallSid=CA1&To=x1").expect_err("number").field, "To");
    }

    #[test]
    fn the_signature_is_twilios_documented_example() {
        // Twilio's documentation example (Security: validating requests), with its published result.
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let form = b"CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";
        assert_eq!(signature("12345", url, form), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    }

    #[test]
    fn the_answer_is_twiml_with_the_token_as_a_parameter() {
        let xml = stream_answer("wss://gw/ws/twilio", "CA1", "t&<\"");
        assert!(xml.contains("<Stream url=\"wss://gw/ws/twilio\">"), "{xml}");
        assert!(
            xml.contains("<Parameter name=\"token\" value=\"t&amp;&lt;&quot;\"/>"),
            "{xml}"
        );
        assert!(xml.contains("<Parameter name=\"call_id\" value=\"CA1\"/>"), "{xml}");
        assert!(busy_answer().contains("<Reject reason=\"busy\"/>"));
    }
}
