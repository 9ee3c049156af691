//! Every carrier, one folder each (docs/carriers.md, "Adding a carrier"): its `Dialect` (what the generic
//! layers ask of it), its webhook's wire format, its endpoint and its simulator. Admission, the media socket
//! and the call know a carrier only as a `Carrier` and ask its dialect. `stream` reads every carrier's stream
//! (they share Plivo's event names, camelCase or snake_case); `writer` writes ours in each one's framing.
//!
//! A folder spans layers (src/lib.rs): its `mod.rs` and wire files are wire, its `endpoint.rs` an edge, its
//! `sim.rs` a tool, and `scripts/layers` holds each file to its own.

pub mod stream;
pub mod writer;

use crate::audio::format::AudioFormat;

pub mod list;
pub mod setup;

pub(crate) use list::carriers_list;

/// Declares the carriers' folders and the `Carrier` type, from `carriers_list`.
macro_rules! declare_carriers {
    ($($variant:ident => $folder:ident),+ $(,)?) => {
        $(pub mod $folder;)+

        /// The carrier a call came from: which webhook admitted it, and which dialect its stream speaks.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Carrier {
            $($variant),+
        }

        impl Carrier {
            /// Every carrier, in the order listed.
            pub const ALL: [Carrier; [$(stringify!($variant)),+].len()] = [$(Carrier::$variant),+];

            /// Its name (its folder's): in media socket paths (`/ws/{name}/…`), its config section, routes,
            /// records and metric labels.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Carrier::$variant => stringify!($folder)),+
                }
            }

            /// What the carrier is like.
            pub fn dialect(self) -> &'static dyn Dialect {
                match self {
                    $(Carrier::$variant => &$folder::DIALECT),+
                }
            }
        }
    };
}

carriers_list!(declare_carriers);

/// What a carrier is like, as the generic layers need to know it.
pub trait Dialect: Sync {
    /// Its webhook on the carrier-facing listener: method and path.
    fn webhook(&self) -> (&'static str, &'static str);

    /// How our messages to it are framed.
    fn framing(&self) -> Framing;

    /// The shortest media message it plays without gaps, in `format` (0: any length).
    fn min_frame_ms(&self, _format: AudioFormat) -> u64 {
        0
    }

    /// Media messages it takes only in whole numbers of this many bytes (1: any).
    fn media_block_bytes(&self) -> usize {
        1
    }

    /// Whether its stream names its call and token only in its `start` event (its stream URL carries no
    /// query): the call is claimed when `start` arrives.
    fn names_call_at_start(&self) -> bool {
        false
    }
}

/// How our messages to a carrier are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Plivo's: `playAudio` (with content type and rate), `checkpoint`, `clearAudio`, keyed by `streamId`;
    /// with `terminate` too when the carrier hangs up in band (else closing the stream hangs up).
    Plivo { terminate: bool },
    /// Twilio's: `media`, `mark` and `clear`, keyed by the stream id under `sid_key`, and nothing else.
    Twilio { sid_key: &'static str },
}

impl Default for Carrier {
    /// The first carrier the gateway served.
    fn default() -> Self {
        Carrier::Mcube
    }
}

impl serde::Serialize for Carrier {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Carrier {
    /// The carrier's webhook on the carrier-facing listener: its method and path.
    pub fn webhook(self) -> (&'static str, &'static str) {
        self.dialect().webhook()
    }

    /// The carrier named in a media socket's path (`/ws/{carrier}/…`) or an admin's `?carrier=`.
    pub fn from_path(name: &str) -> Option<Carrier> {
        Carrier::ALL.iter().copied().find(|c| c.as_str() == name)
    }

    /// The shortest media message the carrier plays without gaps, in `format`.
    pub fn min_frame_ms(self, format: AudioFormat) -> u64 {
        self.dialect().min_frame_ms(format)
    }

    /// Whether the stream names its call and token only in its `start` event.
    pub fn names_call_at_start(self) -> bool {
        self.dialect().names_call_at_start()
    }

    /// Whether the dialect has a hang-up message; the others hang up by closing the stream.
    pub fn hangs_up_in_band(self) -> bool {
        matches!(self.dialect().framing(), Framing::Plivo { terminate: true })
    }
}

/// A call as the gateway knows it: its carrier and the id that carrier gave it. Carriers name their calls
/// independently, so an id alone names no call: two carriers may use the same one at once, and one
/// carrier's webhook can never reach, claim or end another's call by naming its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct CallKey {
    pub carrier: Carrier,
    pub id: crate::values::CallId,
}

impl CallKey {
    pub fn new(carrier: Carrier, id: crate::values::CallId) -> CallKey {
        CallKey { carrier, id }
    }
}

/// `carrier/id`, as logs show a call (a call id holds no `/`).
impl std::fmt::Display for CallKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.carrier.as_str(), self.id)
    }
}

/// A call a carrier's webhook asks us to take, read from its form or query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookCall {
    pub call_id: crate::values::CallId,
    pub from: Option<crate::values::PhoneNumber>,
    pub to: Option<crate::values::PhoneNumber>,
    pub direction: crate::values::Direction,
}

/// The names a carrier gives its webhook's fields.
pub struct WebhookFields {
    pub call_id: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    pub direction: &'static str,
}

/// Reads a carrier's form-encoded webhook (a POST body or a query string); a field we use that is out of
/// bounds is refused with its name, the rest are ignored. A direction reads by its first letters (Exotel
/// says `incoming`, `outbound-dial`, `outbound-api`).
pub fn parse_webhook_form(form: &[u8], names: &WebhookFields) -> Result<WebhookCall, crate::values::Invalid> {
    use crate::values::{CallId, Direction, Invalid, PhoneNumber};
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(form).map_err(|e| Invalid::new("body", format!("not a form: {e}")))?;
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let number = |name: &'static str| field(name).map(|v| PhoneNumber::parse(name, v)).transpose();
    let direction = match field(names.direction).map(|d| d.trim().to_ascii_lowercase()) {
        Some(d) if d.starts_with("out") => Direction::Outbound,
        Some(d) if d.starts_with("in") => Direction::Inbound,
        Some(d) => {
            let why = format!("'{}' is neither inbound nor outbound", crate::values::shown(&d));
            return Err(Invalid::new(names.direction, why));
        }
        None => Direction::Inbound,
    };
    Ok(WebhookCall {
        call_id: CallId::parse(
            names.call_id,
            field(names.call_id).ok_or_else(|| Invalid::new(names.call_id, "missing"))?,
        )?,
        from: number(names.from)?,
        to: number(names.to)?,
        direction,
    })
}

/// Text made safe inside an XML attribute or element (Plivo's and Twilio's answers).
pub fn xml_escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
