//! What every carrier's simulator places a call with: the call (`CallRequest`), the HTTP client, a
//! webhook's XML answer and the form POST that gets it, and what a webhook answered (`Answered`). Each
//! carrier's own request and events are in its folder (`carriers::<name>::sim`).

use super::SimError;
use crate::audio::format::AudioFormat;
use std::time::Duration;

/// The refurl POST's content.
#[derive(Debug, Clone)]
pub struct CallRequest {
    pub call_id: String,
    pub from: String,
    pub to: String,
    pub direction: String,
}

impl CallRequest {
    pub fn inbound(call_id: &str) -> Self {
        CallRequest {
            call_id: call_id.into(),
            from: "+914155551234".into(),
            to: "+918001234567".into(),
            direction: "inbound".into(),
        }
    }
}

/// The simulators' HTTP client.
pub fn client() -> awc::Client {
    awc::Client::builder().timeout(Duration::from_secs(10)).finish()
}

/// What a carrier's webhook answered, in the carrier's own way.
#[derive(Debug, Clone)]
pub enum Answered {
    /// Stream the call to `wss_url`, opening with `opening` (`connected`, `start`), carrying `format`.
    Streams {
        wss_url: String,
        opening: Vec<String>,
        format: AudioFormat,
    },
    /// Refused (the status and reason, or what the XML said).
    Refused(String),
    Failed(String),
}

/// The gateway's answer to a webhook: its status and body (Plivo XML or TwiML when 200).
#[derive(Debug, Clone, PartialEq)]
pub struct XmlAnswer {
    pub status: u16,
    pub body: String,
}

/// What a refusing XML webhook said: the status, and a busy answer as such.
pub fn refusal(status: u16, body: &str) -> String {
    if body.contains("busy") {
        format!("{status} busy")
    } else {
        format!("{status} {}", body.chars().take(80).collect::<String>())
    }
}

/// POSTs a webhook's form with `headers`; the gateway's status and body.
pub async fn post_form(url: &str, form: &[(&str, &str)], headers: Vec<(&str, String)>) -> Result<XmlAnswer, SimError> {
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
