//! Plivo's call-setup webhook: the answer URL's form (`CallUUID`, `From`, `To`, `Direction`) read into
//! typed values, its signatures (`X-Plivo-Signature-V3`, and the older V2) computed as Plivo's own SDKs
//! compute them, and the Plivo XML we answer with (a bidirectional `<Stream>`, or a busy `<Hangup>`).
//! Plain functions, no I/O. The stream itself speaks what Mcube mirrors (`mcube`).

use crate::audio::format::AudioFormat;
use crate::values::Invalid;
use base64::Engine as _;
use hmac::{Hmac, Mac};

type HmacSha256 = Hmac<sha2::Sha256>;

/// The answer URL's form fields we use.
const FIELDS: crate::carriers::WebhookFields = crate::carriers::WebhookFields {
    call_id: "CallUUID",
    from: "From",
    to: "To",
    direction: "Direction",
};

/// Reads the answer URL's form body; a field we use that is out of bounds is refused with its name.
pub fn parse_answer(body: &[u8]) -> Result<crate::carriers::WebhookCall, Invalid> {
    crate::carriers::parse_webhook_form(body, &FIELDS)
}

/// A form or query string as (name, value) pairs, decoded, sorted by name then value (byte-wise, as
/// Plivo sorts). Unreadable input reads as no pairs: it then matches no signature.
fn sorted_pairs(encoded: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str(encoded).unwrap_or_default();
    pairs.sort();
    pairs
}

/// What V3 signs before the nonce: the URL Plivo called without its query; then, after `?`, the URL's
/// query sorted as `k=v&…`; then, for a POST with parameters, `.` (only after a query) and the sorted
/// parameters as `kv…` with no separators.
fn v3_base(url: &str, form: &str) -> String {
    let url = url.split('#').next().unwrap_or_default();
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let query: Vec<String> = sorted_pairs(query)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let params = sorted_pairs(form);
    let mut base = path.to_string();
    if !query.is_empty() || !params.is_empty() {
        base.push('?');
    }
    base.push_str(&query.join("&"));
    if !query.is_empty() && !params.is_empty() {
        base.push('.');
    }
    for (k, v) in params {
        base.push_str(&k);
        base.push_str(&v);
    }
    base
}

fn mac(auth_token: &str, message: &[&str]) -> Option<HmacSha256> {
    // HMAC takes a key of any length; `None` is unreachable in practice and matches nothing.
    let mut mac = HmacSha256::new_from_slice(auth_token.as_bytes()).ok()?;
    for part in message {
        mac.update(part.as_bytes());
    }
    Some(mac)
}

/// Whether any of the comma-separated base64 signatures in `header` is `mac`'s (constant time).
fn any_matches(mac: Option<HmacSha256>, header: &str) -> bool {
    let Some(mac) = mac else { return false };
    header.split(',').map(str::trim).any(|given| {
        base64::engine::general_purpose::STANDARD
            .decode(given)
            .is_ok_and(|sig| mac.clone().verify_slice(&sig).is_ok())
    })
}

/// The `X-Plivo-Signature-V3` Plivo sends for a POST of `form` (urlencoded) to `url` (as Plivo called it,
/// query included) with `nonce`: base64 HMAC-SHA256 of `v3_base` + `.` + nonce, keyed with the auth token.
/// It covers the parameters, so a captured request cannot carry another call.
pub fn signature_v3(auth_token: &str, url: &str, form: &str, nonce: &str) -> String {
    let base = v3_base(url, form);
    mac(auth_token, &[&base, ".", nonce]).map_or_else(String::new, |m| {
        base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
    })
}

/// Whether `header` (one or more comma-separated V3 signatures) signs this request.
pub fn verify_v3(auth_token: &str, url: &str, form: &str, nonce: &str, header: &str) -> bool {
    any_matches(mac(auth_token, &[&v3_base(url, form), ".", nonce]), header)
}

/// What V2 signs before the nonce: the URL without its query. Nothing of the request's parameters.
fn v2_base(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or_default()
}

/// `X-Plivo-Signature-V2`: base64 HMAC-SHA256, keyed with the auth token, of the answer URL (without its
/// query) followed by the `X-Plivo-Signature-V2-Nonce`. It does not cover the parameters.
pub fn signature_v2(auth_token: &str, url: &str, nonce: &str) -> String {
    mac(auth_token, &[v2_base(url), nonce]).map_or_else(String::new, |m| {
        base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
    })
}

/// Whether `header` is the V2 signature of `url` with `nonce`.
pub fn verify_v2(auth_token: &str, url: &str, nonce: &str, header: &str) -> bool {
    any_matches(mac(auth_token, &[v2_base(url), nonce]), header)
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
        crate::carriers::xml_escaped(wss_url)
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
    fn signature_v2_covers_the_url_without_its_query_and_the_nonce() {
        let a = signature_v2("token", "https://gw.example.com/plivo/answer?carrier_token=x", "12345");
        assert_eq!(a, signature_v2("token", "https://gw.example.com/plivo/answer", "12345"));
        assert_ne!(a, signature_v2("token", "https://gw.example.com/plivo/answer", "12346"));
        assert_ne!(a, signature_v2("other", "https://gw.example.com/plivo/answer", "12345"));
    }

    /// Plivo's own V2 vectors (its SDKs' tests: plivo-python `tests/resources/test_signature.py`, plivo-java
    /// `UtilsTest.java`, plivo-php and plivo-node): URL, nonce, token, signature, verdict.
    #[test]
    fn signature_v2_matches_plivos_published_vectors() {
        let vectors = [
            (
                "https://answer.url",
                "12345",
                "my_auth_token",
                "ehV3IKhLysWBxC1sy8INm0qGoQYdYsHwuoKjsX7FsXc=",
                true,
            ),
            (
                "https://answer.url",
                "12345",
                "my_auth_tokens",
                "ehV3IKhLysWBxC1sy8INm0qGoQYdYsHwuoKjsX7FsXc=",
                false,
            ),
            (
                "https://answer.url/",
                "12345",
                "my_auth_token",
                "do1CXv+k99A6+B+eTcyqbxWlezFIxJ/1vz72787r37g=",
                true,
            ),
            (
                "https://answer.url:8000",
                "12345",
                "my_auth_token",
                "Gm7Z7AGBmf5JpSHrtUmeofrGyA4xV0ZiV0rH8JPXWGU=",
                true,
            ),
            (
                "https://answer.url:8000",
                "12345",
                "my_auth_token",
                "ehV3IKhLysWBxC1sy8INm0qGoQYdYsHwuoKjsX7FsXc=",
                false,
            ),
            (
                "https://answer.url:8080",
                "123456",
                "my_auth_tokens",
                "xeV6S6BPIQJ/rgKCjCm/Fo2ve5zNe1fatQoHyRT8vxQ=",
                true,
            ),
            (
                "https://answer.url/callback?a=b",
                "12345",
                "my_auth_token",
                "K35dKDFR7qol4IYq+4/3qx2+KVXUWF/mHJg3Pxp7VAo=",
                true,
            ),
        ];
        for (url, nonce, token, signature, valid) in vectors {
            assert_eq!(verify_v2(token, url, nonce, signature), valid, "{url} {nonce} {token}");
        }
    }

    /// Plivo's own V3 vectors (plivo-go `utils_test.go`, plivo-ruby `spec/signature_spec.rb`: the same four).
    #[test]
    fn signature_v3_matches_plivos_published_vectors() {
        let token = "Y2Q2ZDgxZmY5YWRiOTI5YmQ1Njg0MTAxZWIyOTc4";
        let nonce = "31627761595286130198";
        let params = [
            ("Direction", "outbound"),
            ("From", "19792014278"),
            ("ALegUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
            ("CallStatus", "in-progress"),
            ("BillRate", "0.002"),
            ("ParentAuthID", "MANWVLYTK4ZWU1YTY4QA"),
            (
                "To",
                "sip:PlivoSignature382029104058171078704104@phone-qa.voice.plivodev.com",
            ),
            ("ALegRequestUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
            ("CallUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
            ("RequestUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
            (
                "SIP-H-To",
                "<sip:PlivoSignature382029104058171078704104@52.9.11.55;transport=udp>;tag=1",
            ),
            ("SessionStart", "2020-04-08 11:34:33.238707"),
            ("Event", "StartApp"),
        ];
        let form = serde_urlencoded::to_string(params).expect("form");
        let with_query = "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml/?a=b&c=d";
        let plain = "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml";
        // A GET carries the parameters in the URL's query.
        let get = |url: &str| format!("{url}{}{form}", if url.contains('?') { "&" } else { "?" });
        let cases = [
            (
                with_query.to_string(),
                form.as_str(),
                "k7Pusd4OxCIjR5IfA9iedDNu/h/gbdYqdzG/MiYtd1c=",
            ),
            (get(with_query), "", "UBq8jAtd32wR8EK9VgxbBn4n5rpI/l1H9iN4WfSEHFQ="),
            (
                plain.to_string(),
                form.as_str(),
                "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0=",
            ),
            (get(plain), "", "i/MQsaQSAd6fiKhOh2qeeeLHZ9faldADSb3/7+Akfbc="),
        ];
        for (url, body, signature) in &cases {
            assert_eq!(signature_v3(token, url, body, nonce), *signature, "{url}");
            assert!(verify_v3(token, url, body, nonce, signature), "{url}");
            assert!(
                verify_v3(token, url, body, nonce, &format!("junk, {signature}")),
                "any of several"
            );
            assert!(
                !verify_v3(token, url, body, "31627761595286130199", signature),
                "another nonce"
            );
            assert!(!verify_v3(
                "Y2Q2ZDgxZmY5YWRiOTI5YmQ1Njg0MTAxZWIyOTc5",
                url,
                body,
                nonce,
                signature
            ));
        }
        let other_call = form.replace("CallUUID=3e82ae9d", "CallUUID=00000000");
        assert!(
            !verify_v3(
                token,
                plain,
                &other_call,
                nonce,
                "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0="
            ),
            "the parameters are signed: another CallUUID does not verify"
        );
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
