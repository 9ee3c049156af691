//! What to enter at each carrier, as `check-config` prints it: the media URL base the gateway hands out and
//! each carrier's webhook URL, with the credential it must carry (each carrier's section words its own line).

use super::Carrier;
use crate::config::section::CarrierSection;
use crate::config::Config;

/// What to enter at each carrier: the media base first, then each carrier's webhook URL exactly as the
/// carrier must call it, with the credentials it must carry.
pub fn setup_lines(cfg: &Config) -> Vec<String> {
    let media = match cfg.server.public_url.trim_end_matches('/') {
        "" => format!("ws://{} (derived from server.listen)", cfg.server.listen),
        url => url.to_string(),
    };
    let base = media.split(' ').next().unwrap_or_default();
    let http = base.replacen("wss://", "https://", 1).replacen("ws://", "http://", 1);
    // With the static token, every webhook must present it; a carrier that cannot send a header (Plivo,
    // Twilio, Exotel's applet) carries it in the URL it is configured with.
    let token = if cfg.carrier.static_token.is_some() {
        "?carrier_token=<WSAPI__CARRIER__STATIC_TOKEN>"
    } else {
        ""
    };
    let line = |(name, section): (&str, &dyn CarrierSection)| {
        let path = Carrier::from_path(name)?.webhook().1;
        Some(section.setup(&format!("{http}{path}{token}")))
    };
    let carriers = cfg.carriers.each().into_iter().filter_map(line);
    std::iter::once(format!("media WebSocket base handed to carriers: {media}"))
        .chain(carriers)
        .collect()
}
