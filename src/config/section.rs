//! What a carrier's `[carriers.<name>]` section is to the configuration as a whole; each carrier's folder
//! implements it for its own section (`carriers::<name>::config`).

/// What a carrier's section is, to the configuration as a whole.
pub trait CarrierSection {
    /// The most calls the carrier may hold at once; unset: up to the whole cap.
    fn max_calls(&self) -> Option<usize>;

    /// The key of its secret, read from `WSAPI__CARRIERS__<NAME>__<KEY>` only (never from the file).
    fn secret_key(&self) -> Option<&'static str> {
        None
    }

    /// Where its secret goes.
    fn secret(&mut self) -> Option<&mut Option<String>> {
        None
    }

    fn has_secret(&self) -> bool {
        false
    }

    /// How long the nonces of its signed requests are remembered, when its signatures carry one.
    fn replay_window(&self) -> Option<std::time::Duration> {
        None
    }

    /// Whether a request or media socket upgrade carrying `authorization` (its `Authorization` header)
    /// presents the credentials this section asks of the carrier (none asked: yes). Its webhook's signature
    /// is its endpoint's to check; this is what its socket must show too.
    fn authorized(&self, _authorization: Option<&str>) -> bool {
        true
    }

    /// Checks beyond the types: each problem as `carriers.<name>.<key>: why`.
    fn validate(&self, _problems: &mut Vec<String>) {}

    /// What to enter at the carrier (`check-config`), given the webhook URL derived from the media base.
    fn setup(&self, derived_url: &str) -> String;
}

/// `, signed (what)` when a carrier's secret is set.
pub fn signed(set: bool, what: &str) -> String {
    if set {
        format!(", signed ({what})")
    } else {
        String::new()
    }
}

/// A section's `secret_key`, `secret` and `has_secret`, for its secret `$field` (its key is the field's name).
macro_rules! secret_field {
    ($field:ident) => {
        fn secret_key(&self) -> Option<&'static str> {
            Some(stringify!($field))
        }

        fn secret(&mut self) -> Option<&mut Option<String>> {
            Some(&mut self.$field)
        }

        fn has_secret(&self) -> bool {
            self.$field.is_some()
        }
    };
}
pub(crate) use secret_field;
