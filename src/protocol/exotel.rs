//! Exotel's Voicebot applet: the dynamic-URL request (a GET whose query names the call: `CallSid`, `From`,
//! `To`, `Direction`) read into typed values, and our answer naming the `wss` URL for the call. The stream
//! itself reads with `mcube`'s tolerant parser (snake_case, values as strings); what we send is Exotel's
//! (`writer::CarrierWriter`).

use crate::values::Invalid;

const FIELDS: super::WebhookFields = super::WebhookFields {
    call_id: "CallSid",
    from: "From",
    to: "To",
    direction: "Direction",
};

/// Reads the dynamic-URL request's query string.
pub fn parse_voicebot(query: &str) -> Result<super::WebhookCall, Invalid> {
    super::parse_webhook_form(query.as_bytes(), &FIELDS)
}

/// The answer: the WebSocket URL the applet opens for this call.
pub fn voicebot_answer(wss_url: &str) -> serde_json::Value {
    serde_json::json!({ "url": wss_url })
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
            voicebot_answer("wss://gw/ws/exotel/a?token=t")["url"],
            "wss://gw/ws/exotel/a?token=t"
        );
    }
}
