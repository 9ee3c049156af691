//! Exotel's Voicebot applet: the dynamic-URL request (a GET whose query names the call: `CallSid`, `From`,
//! `To`, `Direction`) read into typed values, and our answer naming the `wss` URL for the call. The stream
//! itself reads with `mcube`'s tolerant parser (snake_case, values as strings); what we send is Exotel's
//! (`writer::CarrierWriter`).

use crate::values::Invalid;

const FIELDS: crate::carriers::WebhookFields = crate::carriers::WebhookFields {
    call_id: "CallSid",
    from: "From",
    to: "To",
    direction: "Direction",
};

/// Reads the dynamic-URL request's query string.
pub fn parse_voicebot(query: &str) -> Result<crate::carriers::WebhookCall, Invalid> {
    crate::carriers::parse_webhook_form(query.as_bytes(), &FIELDS)
}

/// The rates Exotel streams PCM16 at; 8 kHz unless the URL asks for another.
pub const EXOTEL_RATES: [u32; 3] = [8000, 16000, 24000];

/// The rate the applet's URL asks for (`sample-rate`, Exotel's parameter on the stream URL), if any; a
/// rate Exotel does not stream at is refused with the parameter's name.
pub fn requested_rate(query: &str) -> Result<Option<u32>, Invalid> {
    const FIELD: &str = "sample-rate";
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    let Some((_, raw)) = pairs.iter().find(|(k, _)| k == FIELD || k == "sample_rate") else {
        return Ok(None);
    };
    match raw.trim().parse::<u32>() {
        Ok(hz) if EXOTEL_RATES.contains(&hz) => Ok(Some(hz)),
        _ => Err(Invalid::new(
            FIELD,
            format!("'{}' is not one of 8000, 16000, 24000", crate::values::shown(raw)),
        )),
    }
}

/// The answer: the WebSocket URL the applet opens for this call, asking Exotel for `rate` when one was
/// requested (the stream's `start` then says it, and the call bridges at it).
pub fn voicebot_answer(wss_url: &str, rate: Option<u32>) -> serde_json::Value {
    match rate {
        Some(hz) => serde_json::json!({ "url": format!("{wss_url}&sample-rate={hz}") }),
        None => serde_json::json!({ "url": wss_url }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::Direction;

    #[test]
    fn the_query_is_read_into_bounded_values() {
        let call =
            parse_voicebot("CallSid=abc123&From=09876543210&To=08047491899&Direction=outbound-dial&CustomField=x")
                .expect("valid");
        assert_eq!(call.call_id.as_str(), "abc123");
        assert_eq!(call.direction, Direction::Outbound);
        assert_eq!(
            parse_voicebot("CallSid=a&Direction=incoming").expect("valid").direction,
            Direction::Inbound
        );
        assert_eq!(parse_voicebot("From=1").expect_err("no id").field, "CallSid");
        assert_eq!(
            parse_voicebot("CallSid=a&Direction=sideways")
                .expect_err("direction")
                .field,
            "Direction"
        );
        assert_eq!(
            voicebot_answer("wss://gw/ws/exotel/a?token=t", None)["url"],
            "wss://gw/ws/exotel/a?token=t"
        );
        assert_eq!(
            voicebot_answer("wss://gw/ws/exotel/a?token=t", Some(16000))["url"],
            "wss://gw/ws/exotel/a?token=t&sample-rate=16000"
        );
        assert_eq!(requested_rate("CallSid=a&sample-rate=24000"), Ok(Some(24000)));
        assert_eq!(requested_rate("CallSid=a"), Ok(None));
        assert_eq!(
            requested_rate("sample-rate=11025").expect_err("rate").field,
            "sample-rate"
        );
    }
}
