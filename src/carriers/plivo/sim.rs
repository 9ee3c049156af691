//! Plivo as its documentation describes it (not as our writer does), for the carrier simulator: its signed
//! answer-URL request and the `<Stream>` of its XML answer; its stream's events are Mcube's.

use crate::audio::format::AudioFormat;
use crate::carriers::mcube::sim::{media_event, start_event};
use crate::tools::sim::placing::{post_form, refusal, Answered, CallRequest, XmlAnswer};
use crate::tools::sim::SimError;

/// The shortest media message Plivo sends: whatever it is given.
pub const FRAME_MS: u64 = 0;

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

impl XmlAnswer {
    /// The `<Stream>` element's URL, unescaped, when the answer streams the call.
    pub fn stream_url(&self) -> Option<String> {
        let start = self.body.find("<Stream")?;
        let open = start + self.body[start..].find('>')? + 1;
        let close = open + self.body[open..].find("</Stream>")?;
        Some(self.body[open..close].replace("&amp;", "&"))
    }
}

/// Places `call` through the answer URL: its stream opens with `start`, in μ-law at 8 kHz.
pub async fn place(http_base: &str, call: &CallRequest, stream_sid: &str) -> Answered {
    let req = PlivoRequest::new(call, format!("{http_base}/plivo/answer"));
    match post_plivo_answer(req).await {
        Ok(answer) => match answer.stream_url() {
            Some(wss_url) => Answered::Streams {
                wss_url,
                opening: vec![start_event(&call.call_id, stream_sid, AudioFormat::ULAW_8K)],
                format: AudioFormat::ULAW_8K,
            },
            None => Answered::Refused(refusal(answer.status, &answer.body)),
        },
        Err(e) => Answered::Failed(e.to_string()),
    }
}

/// A media message carrying `audio`.
pub fn media(_stream_sid: &str, audio: &[u8], _chunk: u64) -> String {
    media_event(audio)
}

/// Plivo closes its stream without a `stop`.
pub fn stop(_stream_sid: &str, _call_sid: &str) -> Option<String> {
    None
}
