//! `[carriers.plivo]`: the answer URL Plivo signs, whether its older signature is taken, how long a nonce
//! is remembered, its share of the cap, and its auth token (from the environment only).

use crate::config::section::{secret_field, signed, CarrierSection};
use serde::{Deserialize, Serialize};

/// Plivo Audio Streams.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Section {
    /// The answer URL as configured in Plivo's console (its signature covers it); empty derives it from
    /// `server.public_url` (`ws` → `http`) + `/plivo/answer`.
    pub answer_url: String,
    /// The most calls Plivo may hold at once; unset: up to the whole cap.
    pub max_calls: Option<usize>,
    /// Also take `X-Plivo-Signature-V2`, which signs the URL and nonce but not the call's parameters
    /// (accounts that still sign that way); off, only `X-Plivo-Signature-V3` is taken.
    pub accept_v2: bool,
    /// How long a signature's nonce is remembered: the same nonce again within it is a replay (403).
    /// Plivo's signatures carry no time, so a replay after it is not recognised (docs/security.md).
    pub replay_window_s: u64,
    /// Secret, from `WSAPI__CARRIERS__PLIVO__AUTH_TOKEN` only: with it, every webhook's
    /// `X-Plivo-Signature-V3` (or V2 with `accept_v2`) must verify, with a nonce not seen before.
    #[serde(skip)]
    pub auth_token: Option<String>,
}

impl Default for Section {
    fn default() -> Self {
        Section {
            answer_url: String::new(),
            max_calls: None,
            accept_v2: false,
            replay_window_s: 3600,
            auth_token: None,
        }
    }
}

impl CarrierSection for Section {
    fn max_calls(&self) -> Option<usize> {
        self.max_calls
    }

    secret_field!(auth_token);

    fn replay_window(&self) -> Option<std::time::Duration> {
        Some(std::time::Duration::from_secs(self.replay_window_s))
    }

    fn validate(&self, problems: &mut Vec<String>) {
        let window = self.replay_window_s;
        if !(1..=604_800).contains(&window) {
            problems.push(format!(
                "carriers.plivo.replay_window_s: {window} is outside 1..=604800 (a nonce must be remembered for a \
                 while, or every replay passes)"
            ));
        }
    }

    fn setup(&self, derived_url: &str) -> String {
        let url = if self.answer_url.is_empty() { derived_url } else { &self.answer_url };
        format!("Plivo answer URL: {url}{}", signed(self.has_secret(), "X-Plivo-Signature-V3"))
    }
}
