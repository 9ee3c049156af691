//! The agent's wire format (`elevenlabs`) and ElevenLabs' post-call webhook (`post_call`) as plain types,
//! with no I/O, and what every peer's parser shares: tolerant field readers, borrowed strings, base64 by its
//! shape. The carriers' are `crate::carriers`'.
pub mod elevenlabs;
pub mod post_call;

/// Standard base64 by its shape (alphabet, padding, length), without decoding. Passthrough audio is spliced
/// into the JSON sent to ElevenLabs as is, so this is also what keeps a carrier's payload from injecting JSON.
pub fn is_base64(s: &str) -> bool {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return false;
    }
    let body = b.len() - b.iter().rev().take(2).take_while(|&&c| c == b'=').count();
    b[..body]
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

/// Bytes a base64 string decodes to, without decoding it (passthrough never decodes).
pub fn base64_decoded_len(b64: &str) -> usize {
    let padding = b64.bytes().rev().take(2).filter(|&b| b == b'=').count();
    (b64.len() / 4 * 3).saturating_sub(padding)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_shape() {
        for ok in ["", "AAEC", "AAE=", "AA==", "+/9z"] {
            assert!(super::is_base64(ok), "{ok}");
        }
        for bad in ["AAE", "AA=C", "A===", "AB\"}", "AA\\n", "ÀÀÀÀ", "AAEC AAEC"] {
            assert!(!super::is_base64(bad), "{bad}");
        }
    }

    #[test]
    fn decoded_length_of_base64() {
        use base64::Engine as _;
        for n in [0usize, 1, 2, 3, 159, 160, 161, 320] {
            let b64 = base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
            assert_eq!(super::base64_decoded_len(&b64), n, "{n}");
        }
    }
}

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
