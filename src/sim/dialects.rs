//! The other carriers as their documentation describes them (not as our writer does): Plivo's signed
//! answer-URL request, Exotel's dynamic-URL request and stream events, and Twilio's signed voice webhook and
//! Media Streams events. Their streams open with `carrier::CarrierConn`.

use super::carrier::{client, CallRequest};
use super::SimError;
pub use crate::carriers::exotel::sim::*;
pub use crate::carriers::twilio::sim::*;
use base64::Engine as _;
use serde_json::Value;

/// Plivo's answer-URL request, signed as Plivo signs it when `auth_token` is given: `X-Plivo-Signature-V3`
/// (the URL, the form's parameters and the nonce), or the older V2 (the URL and the nonce).
pub struct PlivoRequest<'a> {
    pub call: &'a CallRequest,
    /// The URL Plivo is configured to call (the gateway's carrier listener + `/plivo/answer`).
    pub answer_url: String,
    pub auth_token: Option<&'a str>,
    /// Sent instead of the right signature (a forgery).
    pub forged_signature: Option<&'a str>,
    pub signing: PlivoSigning,
    /// The signature's nonce; a fresh random one when `None` (a given one sends a request again).
    pub nonce: Option<String>,
}

/// Which of Plivo's signatures a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlivoSigning {
    V3,
    V2,
}

impl<'a> PlivoRequest<'a> {
    /// An unsigned request for `call` to `answer_url`; set `auth_token` to sign it (V3).
    pub fn new(call: &'a CallRequest, answer_url: String) -> PlivoRequest<'a> {
        PlivoRequest {
            call,
            answer_url,
            auth_token: None,
            forged_signature: None,
            signing: PlivoSigning::V3,
            nonce: None,
        }
    }
}

/// The gateway's answer to a webhook: its status and body (Plivo XML or TwiML when 200).
#[derive(Debug, Clone, PartialEq)]
pub struct XmlAnswer {
    pub status: u16,
    pub body: String,
}

impl XmlAnswer {
    /// The `<Stream>` element's URL, unescaped, when the answer streams the call.
    pub fn stream_url(&self) -> Option<String> {
        let start = self.body.find("<Stream")?;
        let open = start + self.body[start..].find('>')? + 1;
        let close = open + self.body[open..].find("</Stream>")?;
        Some(self.body[open..close].replace("&amp;", "&"))
    }

    /// TwiML's `<Stream url="…">` and its `<Parameter>`s, unescaped, when the answer streams the call.
    pub fn twiml_stream(&self) -> Option<(String, Vec<(String, String)>)> {
        let start = self.body.find("<Stream")?;
        let url = attribute(&self.body[start..], "url")?;
        let end = start + self.body[start..].find("</Stream>")?;
        let params = self.body[start..end]
            .split("<Parameter")
            .skip(1)
            .filter_map(|p| Some((attribute(p, "name")?, attribute(p, "value")?)))
            .collect();
        Some((url, params))
    }
}

/// An XML attribute's value in `element`, unescaped.
fn attribute(element: &str, name: &str) -> Option<String> {
    let at = element.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = element[at..].find('"')?;
    let raw = &element[at..at + len];
    Some(
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&amp;", "&"),
    )
}

/// POSTs a webhook's form with `headers`; the gateway's status and body.
async fn post_form(url: &str, form: &[(&str, &str)], headers: Vec<(&str, String)>) -> Result<XmlAnswer, SimError> {
    let mut post = client().post(url);
    for header in headers {
        post = post.insert_header(header);
    }
    let mut resp = post
        .send_form(&form)
        .await
        .map_err(|e| SimError::Request("webhook POST", e.to_string()))?;
    let status = resp.status().as_u16();
    let body = resp
        .body()
        .await
        .map_err(|e| SimError::Answer("webhook answer", e.to_string()))?;
    Ok(XmlAnswer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// POSTs Plivo's answer-URL form (`CallUUID`, `From`, `To`, `Direction`, `CallStatus`, `Event`).
pub async fn post_plivo_answer(req: PlivoRequest<'_>) -> Result<XmlAnswer, SimError> {
    use crate::carriers::plivo::webhook::{signature_v2, signature_v3};
    let form = [
        ("CallUUID", req.call.call_id.as_str()),
        ("From", req.call.from.trim_start_matches('+')),
        ("To", req.call.to.trim_start_matches('+')),
        ("Direction", req.call.direction.as_str()),
        ("CallStatus", "in-progress"),
        ("Event", "StartApp"),
    ];
    let nonce = req
        .nonce
        .clone()
        .unwrap_or_else(|| format!("{}", rand::random::<u64>()));
    let mut headers = Vec::new();
    if let Some(token) = req.auth_token {
        let encoded =
            serde_urlencoded::to_string(form).map_err(|e| SimError::Request("form encoding", e.to_string()))?;
        let signature = match (req.forged_signature, req.signing) {
            (Some(forged), _) => forged.to_string(),
            (None, PlivoSigning::V3) => signature_v3(token, &req.answer_url, &encoded, &nonce),
            (None, PlivoSigning::V2) => signature_v2(token, &req.answer_url, &nonce),
        };
        let (header, nonce_header) = match req.signing {
            PlivoSigning::V3 => ("X-Plivo-Signature-V3", "X-Plivo-Signature-V3-Nonce"),
            PlivoSigning::V2 => ("X-Plivo-Signature-V2", "X-Plivo-Signature-V2-Nonce"),
        };
        headers.push((header, signature));
        headers.push((nonce_header, nonce));
    }
    post_form(&req.answer_url, &form, headers).await
}

/// The Voicebot applet's dynamic-URL request: where should this call stream (at `sample_rate`, when its URL
/// asks for one)? Its status and JSON answer.
pub async fn get_exotel_voicebot(
    http_base: &str,
    call: &CallRequest,
    authorization: Option<&str>,
    sample_rate: Option<u32>,
) -> Result<(u16, Value), SimError> {
    let rate = sample_rate.map(|hz| hz.to_string()).unwrap_or_default();
    let mut query = vec![
        ("CallSid", call.call_id.as_str()),
        ("From", call.from.as_str()),
        ("To", call.to.as_str()),
        (
            "Direction",
            if call.direction == "outbound" {
                "outbound-dial"
            } else {
                "incoming"
            },
        ),
    ];
    if sample_rate.is_some() {
        query.push(("sample-rate", rate.as_str()));
    }
    let query = serde_urlencoded::to_string(query).map_err(|e| SimError::Request("query encoding", e.to_string()))?;
    let mut req = client().get(format!("{http_base}/exotel/voicebot?{query}"));
    if let Some(auth) = authorization {
        req = req.insert_header(("authorization", auth));
    }
    let mut resp = req
        .send()
        .await
        .map_err(|e| SimError::Request("voicebot GET", e.to_string()))?;
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    Ok((status, v))
}

/// Twilio's voice webhook request, signed as Twilio documents `X-Twilio-Signature` (HMAC-SHA1 of the full
/// URL followed by each POST parameter's name and value sorted by name, keyed with the auth token, base64)
/// when `auth_token` is given.
pub struct TwilioRequest<'a> {
    pub call: &'a CallRequest,
    /// The URL the Twilio number's voice webhook is set to (the gateway's carrier listener + `/twilio/voice`).
    pub voice_url: String,
    pub auth_token: Option<&'a str>,
    /// Sent instead of the right signature (a forgery).
    pub forged_signature: Option<&'a str>,
}

/// POSTs Twilio's voice webhook form (`CallSid`, `AccountSid`, `From`, `To`, `Direction`, `CallStatus`).
pub async fn post_twilio_voice(req: TwilioRequest<'_>) -> Result<XmlAnswer, SimError> {
    use hmac::Mac as _;
    let direction = if req.call.direction == "outbound" {
        "outbound-api"
    } else {
        "inbound"
    };
    let form = [
        ("AccountSid", "ACsim"),
        ("CallSid", req.call.call_id.as_str()),
        ("CallStatus", "ringing"),
        ("Direction", direction),
        ("From", req.call.from.as_str()),
        ("To", req.call.to.as_str()),
        ("ApiVersion", "2010-04-01"),
    ];
    let mut headers = Vec::new();
    if let Some(token) = req.auth_token {
        let signature = match req.forged_signature {
            Some(forged) => forged.to_string(),
            None => {
                let mut sorted = form.to_vec();
                sorted.sort();
                let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes())
                    .map_err(|e| SimError::Request("HMAC key", e.to_string()))?;
                mac.update(req.voice_url.as_bytes());
                for (name, value) in sorted {
                    mac.update(name.as_bytes());
                    mac.update(value.as_bytes());
                }
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
            }
        };
        headers.push(("X-Twilio-Signature", signature));
    }
    post_form(&req.voice_url, &form, headers).await
}
