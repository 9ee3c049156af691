//! `[carriers.exotel]`: the Basic auth user Exotel presents, its share of the cap, and its password (from
//! the environment only).

use crate::config::section::{secret_field, signed, CarrierSection};
use serde::{Deserialize, Serialize};

/// Exotel's Voicebot applet.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Section {
    /// The user of the Basic auth Exotel presents (the applet's URL `https://user:password@…`).
    pub username: String,
    /// The most calls Exotel may hold at once; unset: up to the whole cap.
    pub max_calls: Option<usize>,
    /// Secret, from `WSAPI__CARRIERS__EXOTEL__PASSWORD` only: with it, Exotel's requests and sockets must
    /// present `username` and it (Basic auth).
    #[serde(skip)]
    pub password: Option<String>,
}

impl CarrierSection for Section {
    fn max_calls(&self) -> Option<usize> {
        self.max_calls
    }

    secret_field!(password);

    /// With the password set, Exotel's requests and sockets carry `username` and it as Basic auth
    /// (compared in constant time).
    fn authorized(&self, authorization: Option<&str>) -> bool {
        use base64::Engine as _;
        let Some(password) = self.password.as_deref() else {
            return true;
        };
        let expected = base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", self.username));
        let given = authorization.and_then(|v| v.strip_prefix("Basic ")).unwrap_or_default();
        !given.is_empty() && crate::values::same_secret(given.trim().as_bytes(), expected.as_bytes())
    }

    fn setup(&self, derived_url: &str) -> String {
        let auth = format!("Basic auth as '{}'", self.username);
        format!("Exotel Voicebot URL: {derived_url}{}", signed(self.has_secret(), &auth))
    }
}
