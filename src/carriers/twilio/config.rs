//! `[carriers.twilio]`: the voice URL Twilio signs, its share of the cap, and its auth token (from the
//! environment only).

use crate::config::section::{secret_field, signed, CarrierSection};
use serde::{Deserialize, Serialize};

/// Twilio Media Streams.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Section {
    /// The voice webhook URL as configured on the Twilio number (its signature covers it); empty derives it
    /// from `server.public_url` (`ws` → `http`) + `/twilio/voice`.
    pub voice_url: String,
    /// The most calls Twilio may hold at once; unset: up to the whole cap.
    pub max_calls: Option<usize>,
    /// Secret, from `WSAPI__CARRIERS__TWILIO__AUTH_TOKEN` only: with it, every webhook's
    /// `X-Twilio-Signature` must verify.
    #[serde(skip)]
    pub auth_token: Option<String>,
}

impl CarrierSection for Section {
    fn max_calls(&self) -> Option<usize> {
        self.max_calls
    }

    secret_field!(auth_token);

    fn setup(&self, derived_url: &str) -> String {
        let url = if self.voice_url.is_empty() { derived_url } else { &self.voice_url };
        format!("Twilio voice URL: {url}{}", signed(self.has_secret(), "X-Twilio-Signature"))
    }
}
