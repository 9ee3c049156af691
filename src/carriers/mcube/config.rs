//! `[carriers.mcube]`: Mcube's share of the cap (its credentials and URLs are `[carrier]`'s, older than
//! the other carriers).

use crate::config::section::CarrierSection;
use serde::{Deserialize, Serialize};

/// Mcube's share of the cap (its other settings are `[carrier]`'s).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Section {
    /// The most calls Mcube may hold at once; unset: up to the whole cap.
    pub max_calls: Option<usize>,
}

impl CarrierSection for Section {
    fn max_calls(&self) -> Option<usize> {
        self.max_calls
    }

    fn setup(&self, derived_url: &str) -> String {
        format!("Mcube refurl: {derived_url}")
    }
}
