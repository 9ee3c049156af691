//! Errors tagged by the side that failed — the carrier, ElevenLabs, the database, or ourselves — so logs and
//! end reasons say where to look.

use std::fmt;

/// Which side of the bridge an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Carrier,
    ElevenLabs,
    Db,
    Internal,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Carrier => "carrier",
            Side::ElevenLabs => "elevenlabs",
            Side::Db => "db",
            Side::Internal => "internal",
        })
    }
}

/// An error with the side that caused it and a human message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{side}: {message}")]
pub struct GatewayError {
    pub side: Side,
    pub message: String,
}

impl GatewayError {
    pub fn carrier(message: impl Into<String>) -> Self {
        GatewayError {
            side: Side::Carrier,
            message: message.into(),
        }
    }
    pub fn elevenlabs(message: impl Into<String>) -> Self {
        GatewayError {
            side: Side::ElevenLabs,
            message: message.into(),
        }
    }
    pub fn db(message: impl Into<String>) -> Self {
        GatewayError {
            side: Side::Db,
            message: message.into(),
        }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        GatewayError {
            side: Side::Internal,
            message: message.into(),
        }
    }
}
