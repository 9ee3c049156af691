//! What a SIGHUP does with each changed key: the keys a running gateway applies at once, by what applying
//! them takes, and the rest, which wait for a restart.

/// How a changed key is applied on SIGHUP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reload {
    /// `calls.max_concurrent_calls`: the registry's cap.
    Cap,
    /// The carrier listener's access rules (`carrier.allowed_ips`, `carrier.allowed_origins`,
    /// `server.trusted_proxies`).
    Access,
    /// The route table (`[[routes]]`, `elevenlabs.agent_id`), for calls admitted from now on.
    Routes,
    /// A carrier's share of the cap (`carriers.<name>.max_calls`; its other keys wait for a restart).
    CarrierCaps,
    /// `log.level`.
    LogLevel,
    /// Anything else: at the next restart.
    AtRestart,
}

impl Reload {
    /// How the key `section.key` (`routes` for the whole list) is applied.
    pub fn of(key: &str) -> Reload {
        match key {
            "calls.max_concurrent_calls" => Reload::Cap,
            "carrier.allowed_ips" | "carrier.allowed_origins" | "server.trusted_proxies" => Reload::Access,
            "routes" | "elevenlabs.agent_id" => Reload::Routes,
            "log.level" => Reload::LogLevel,
            carriers if carriers.starts_with("carriers.") => Reload::CarrierCaps,
            _ => Reload::AtRestart,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Reload;

    #[test]
    fn each_key_names_how_it_is_applied_and_the_rest_wait_for_a_restart() {
        assert_eq!(Reload::of("calls.max_concurrent_calls"), Reload::Cap);
        assert_eq!(Reload::of("server.trusted_proxies"), Reload::Access);
        assert_eq!(Reload::of("routes"), Reload::Routes);
        assert_eq!(Reload::of("carriers.twilio"), Reload::CarrierCaps);
        assert_eq!(Reload::of("log.level"), Reload::LogLevel);
        assert_eq!(Reload::of("server.listen"), Reload::AtRestart);
        assert_eq!(Reload::of("calls.frame_ms"), Reload::AtRestart);
    }
}
