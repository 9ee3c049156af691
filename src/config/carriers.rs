//! `[carriers.*]`: each carrier's own settings beside Mcube's `[carrier]` — its credentials (secrets from
//! the environment only) and its share of the cap.

use serde::{Deserialize, Serialize};

/// Each carrier's own settings: credentials (Mcube's are `[carrier]`) and share of the cap (docs/carriers.md).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CarriersConfig {
    pub mcube: McubeConfig,
    pub plivo: PlivoConfig,
    pub exotel: ExotelConfig,
    pub twilio: TwilioConfig,
}

/// Mcube's share of the cap (its other settings are `[carrier]`'s).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McubeConfig {
    /// The most calls Mcube may hold at once; unset: up to the whole cap.
    pub max_calls: Option<usize>,
}

/// Twilio Media Streams.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioConfig {
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

/// Exotel's Voicebot applet.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExotelConfig {
    /// The user of the Basic auth Exotel presents (the applet's URL `https://user:password@…`).
    pub username: String,
    /// The most calls Exotel may hold at once; unset: up to the whole cap.
    pub max_calls: Option<usize>,
    /// Secret, from `WSAPI__CARRIERS__EXOTEL__PASSWORD` only: with it, Exotel's requests and sockets must
    /// present `username` and it (Basic auth).
    #[serde(skip)]
    pub password: Option<String>,
}

/// Plivo Audio Streams.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlivoConfig {
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

impl Default for PlivoConfig {
    fn default() -> Self {
        PlivoConfig {
            answer_url: String::new(),
            max_calls: None,
            accept_v2: false,
            replay_window_s: 3600,
            auth_token: None,
        }
    }
}

impl CarriersConfig {
    /// Each carrier's share of the cap, by its name (`config::routes::CARRIER_NAMES`).
    pub fn caps(&self) -> [(&'static str, Option<usize>); 4] {
        [
            ("mcube", self.mcube.max_calls),
            ("plivo", self.plivo.max_calls),
            ("exotel", self.exotel.max_calls),
            ("twilio", self.twilio.max_calls),
        ]
    }
}
