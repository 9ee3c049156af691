//! `[carriers.*]`: one section per carrier, each defined in its folder (`carriers::<name>::config`) behind
//! `section::CarrierSection`, made into `CarriersConfig` from the one list of carriers. Everything done to every
//! section (shares of the cap, secrets from the environment, checks, setup lines) is written once here.

use super::section::CarrierSection;
use crate::carriers::list::carriers_list;
use serde::{Deserialize, Serialize};

macro_rules! carriers_config {
    ($($variant:ident => $folder:ident),+ $(,)?) => {
        /// Each carrier's own settings: credentials (Mcube's are `[carrier]`) and share of the cap
        /// (docs/carriers.md).
        #[derive(Debug, Clone, Default, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct CarriersConfig {
            $(pub $folder: crate::carriers::$folder::config::Section,)+
        }

        impl CarriersConfig {
            /// Every section, by its carrier's name.
            pub fn each(&self) -> Vec<(&'static str, &dyn CarrierSection)> {
                vec![$((stringify!($folder), &self.$folder as &dyn CarrierSection)),+]
            }

            fn each_mut(&mut self) -> Vec<(&'static str, &mut dyn CarrierSection)> {
                vec![$((stringify!($folder), &mut self.$folder as &mut dyn CarrierSection)),+]
            }
        }
    };
}
carriers_list!(carriers_config);

/// A carrier's secret's environment variable.
fn secret_env(name: &str, key: &str) -> String {
    format!(
        "WSAPI__CARRIERS__{}__{}",
        name.to_ascii_uppercase(),
        key.to_ascii_uppercase()
    )
}

impl CarriersConfig {
    /// The section of the carrier named `name` (`carriers::Carrier::as_str`).
    pub fn section(&self, name: &str) -> Option<&dyn CarrierSection> {
        self.each().into_iter().find(|(n, _)| *n == name).map(|(_, s)| s)
    }

    /// Each carrier's share of the cap, by its name.
    pub fn caps(&self) -> Vec<(&'static str, Option<usize>)> {
        self.each().into_iter().map(|(name, s)| (name, s.max_calls())).collect()
    }

    /// Each carrier's secret: its section (`carriers.<name>`), key, environment variable and whether set.
    pub fn secrets(&self) -> Vec<(String, &'static str, String, bool)> {
        let with_key = |(name, s): (&'static str, &dyn CarrierSection)| {
            let key = s.secret_key()?;
            Some((format!("carriers.{name}"), key, secret_env(name, key), s.has_secret()))
        };
        self.each().into_iter().filter_map(with_key).collect()
    }

    /// Reads each carrier's secret with `get` (an environment variable's non-empty value).
    pub fn read_secrets(&mut self, get: impl Fn(&str) -> Option<String>) {
        for (name, section) in self.each_mut() {
            if let Some(key) = section.secret_key() {
                if let Some(slot) = section.secret() {
                    *slot = get(&secret_env(name, key));
                }
            }
        }
    }

    /// How long a signed request's nonce is remembered (the longest any carrier asks; an hour when none).
    pub fn replay_window(&self) -> std::time::Duration {
        let windows = self.each().into_iter().filter_map(|(_, s)| s.replay_window());
        windows.max().unwrap_or(std::time::Duration::from_secs(3600))
    }

    /// Forgets every carrier's secret (the demo's simulated carriers present none).
    pub fn clear_secrets(&mut self) {
        self.read_secrets(|_| None);
    }

    /// Each section's checks, and that a share of the cap is at least one call.
    pub fn validate(&self, problems: &mut Vec<String>) {
        for (name, section) in self.each() {
            if section.max_calls() == Some(0) {
                problems.push(format!(
                    "carriers.{name}.max_calls: must be at least 1 (leave it out for no share)"
                ));
            }
            section.validate(problems);
        }
    }
}
