//! What to enter at each carrier, as `check-config` prints it: the media URL base the gateway hands out and
//! each carrier's webhook URL, with the credential it must carry.

impl super::sections::Config {
    /// What to enter at each carrier, as `check-config` prints it: the media URL base the gateway hands out
    /// and each carrier's webhook URL exactly as the carrier must call it, with the credentials it must carry.
    pub fn carrier_setup(&self) -> Vec<String> {
        let media = match self.server.public_url.trim_end_matches('/') {
            "" => format!("ws://{} (derived from server.listen)", self.server.listen),
            url => url.to_string(),
        };
        let base = media.split(' ').next().unwrap_or_default();
        let http = base.replacen("wss://", "https://", 1).replacen("ws://", "http://", 1);
        // With the static token, every webhook must present it; a carrier that cannot send a header (Plivo,
        // Twilio, Exotel's applet) carries it in the URL it is configured with.
        let token = if self.carrier.static_token.is_some() {
            "?carrier_token=<WSAPI__CARRIER__STATIC_TOKEN>"
        } else {
            ""
        };
        let configured = |url: &str, path: &str| match url {
            "" => format!("{http}{path}{token}"),
            url => url.to_string(),
        };
        let signed = |set: bool, what: &str| {
            if set {
                format!(", signed ({what})")
            } else {
                String::new()
            }
        };
        let e = &self.carriers.exotel;
        vec![
            format!("media WebSocket base handed to carriers: {media}"),
            format!("Mcube refurl: {http}/mcube/call{token}"),
            format!(
                "Plivo answer URL: {}{}",
                configured(&self.carriers.plivo.answer_url, "/plivo/answer"),
                signed(self.carriers.plivo.auth_token.is_some(), "X-Plivo-Signature-V3")
            ),
            format!(
                "Exotel Voicebot URL: {http}/exotel/voicebot{token}{}",
                signed(e.password.is_some(), &format!("Basic auth as '{}'", e.username))
            ),
            format!(
                "Twilio voice URL: {}{}",
                configured(&self.carriers.twilio.voice_url, "/twilio/voice"),
                signed(self.carriers.twilio.auth_token.is_some(), "X-Twilio-Signature")
            ),
        ]
    }
}
