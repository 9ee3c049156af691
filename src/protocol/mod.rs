//! Wire formats of both legs as plain serde types and writers, with no I/O: `mcube` (the carrier) and
//! `elevenlabs` (the agent), plus the tolerant field readers they share.
pub mod elevenlabs;
pub mod mcube;

use serde::de::{Deserializer, Visitor};
use serde::Deserialize;
use std::borrow::Cow;

/// A string borrowed from the frame when it has no escapes, owned otherwise. serde borrows a bare
/// `Cow<str>` field but not one inside an `Option`, which is where the audio payloads live.
#[derive(Debug)]
pub(crate) struct CowStr<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        d.deserialize_str(V).map(CowStr)
    }
}

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
            Some(NumOrStr::Num(n)) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
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
