//! Wire formats of both legs as plain serde types and writers, with no I/O: `mcube` (the carrier) and
//! `elevenlabs` (the agent), plus the tolerant field readers they share.
pub mod elevenlabs;
pub mod mcube;

/// Readers for fields that peers send as a number or as a string.
pub(crate) mod loose {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrStr {
        Num(serde_json::Number),
        Str(String),
    }

    /// `42`, `"42"`, `null` or absent → `Option<u64>`; anything unparsable becomes `None` rather than an error.
    pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Ok(match Option::<NumOrStr>::deserialize(d).unwrap_or(None) {
            Some(NumOrStr::Num(n)) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
            Some(NumOrStr::Str(s)) => s.trim().parse().ok(),
            None => None,
        })
    }

    /// `"5"` or `5` → `Some("5")`.
    pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(match Option::<NumOrStr>::deserialize(d).unwrap_or(None) {
            Some(NumOrStr::Num(n)) => Some(n.to_string()),
            Some(NumOrStr::Str(s)) => Some(s),
            None => None,
        })
    }
}
