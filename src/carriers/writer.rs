//! What we send a carrier, in its dialect: the writer of every media, mark, clear and hang-up message,
//! with the parts that never change made once per call (the media path writes one string per frame).

use super::{Carrier, Framing};
use crate::audio::format::{AudioFormat, Codec};

/// Writes our messages to the carrier in its dialect (Mcube and Plivo: `playAudio`, `checkpoint`,
/// `clearAudio`, `terminate`; Exotel and Twilio: `media`, `mark`, `clear` and nothing else, which Twilio
/// requires), into strings built per frame with the
/// parts that never change made once per call.
#[derive(Debug, Clone)]
pub struct CarrierWriter {
    carrier: Carrier,
    /// The stream id's key in Twilio-style dialects (`media`, `mark`, `clear`): Exotel's `stream_sid`,
    /// Twilio's `streamSid`; `None` for Plivo-style ones.
    sid_key: Option<&'static str>,
    /// The stream id as a JSON string literal, quotes included, escaped once per call.
    stream_id_json: String,
    /// Everything of a media message before its payload, built once per call: it goes out with every frame.
    play_audio_head: String,
    /// The carrier's framing (Exotel's): media shorter than this is padded with silence, and every media
    /// message is a whole number of `block` bytes (it breaks up otherwise). 0: no padding.
    min_media_bytes: usize,
    block: usize,
}

impl CarrierWriter {
    pub fn new(carrier: Carrier, stream_id: &str, format: AudioFormat) -> Self {
        let stream_id_json = serde_json::to_string(stream_id).unwrap_or_else(|_| "\"\"".into());
        let content_type = match format.codec {
            Codec::Ulaw => "audio/x-mulaw",
            Codec::Alaw => "audio/x-alaw",
            Codec::Pcm16 => "audio/x-l16",
        };
        let dialect = carrier.dialect();
        let sid_key = match dialect.framing() {
            Framing::Twilio { sid_key } => Some(sid_key),
            Framing::Plivo { .. } => None,
        };
        let play_audio_head = match sid_key {
            Some(key) => format!("{{\"event\":\"media\",\"{key}\":{stream_id_json},\"media\":{{\"payload\":\""),
            None => format!(
                "{{\"event\":\"playAudio\",\"streamId\":{stream_id_json},\"media\":{{\"contentType\":\"{content_type}\",\"sampleRate\":{},\"payload\":\"",
                format.rate.hz()
            ),
        };
        let block = dialect.media_block_bytes().max(1);
        let min_media_bytes = format.bytes_for_ms(dialect.min_frame_ms(format)).div_ceil(block) * block;
        CarrierWriter {
            carrier,
            sid_key,
            stream_id_json,
            play_audio_head,
            min_media_bytes,
            block,
        }
    }

    /// A media message for raw audio in the stream's format, base64-encoded straight into the message (one
    /// allocation per frame); for Exotel padded with silence to its framing.
    pub fn play_audio(&self, raw: &[u8]) -> String {
        use base64::Engine as _;
        let padded;
        let misframed = raw.len() < self.min_media_bytes || !raw.len().is_multiple_of(self.block);
        let raw = if self.min_media_bytes > 0 && misframed {
            let len = raw.len().max(self.min_media_bytes).div_ceil(self.block) * self.block;
            let mut p = raw.to_vec();
            // Exotel streams PCM16: zero is silence.
            p.resize(len, 0);
            padded = p;
            &padded[..]
        } else {
            raw
        };
        let mut out = String::with_capacity(self.play_audio_head.len() + raw.len().div_ceil(3) * 4 + 3);
        out.push_str(&self.play_audio_head);
        base64::engine::general_purpose::STANDARD.encode_string(raw, &mut out);
        out.push_str("\"}}");
        out
    }

    /// A mark: the carrier answers (`playedStream`, or Exotel's `mark`) with the same name once what came
    /// before has played.
    pub fn checkpoint(&self, name: &str) -> String {
        let name = serde_json::to_string(name).unwrap_or_else(|_| "\"\"".into());
        match self.sid_key {
            Some(key) => format!(
                "{{\"event\":\"mark\",\"{key}\":{},\"mark\":{{\"name\":{name}}}}}",
                self.stream_id_json
            ),
            None => format!(
                "{{\"event\":\"checkpoint\",\"streamId\":{},\"name\":{name}}}",
                self.stream_id_json
            ),
        }
    }

    /// Barge-in: the carrier flushes what it has buffered.
    pub fn clear_audio(&self) -> String {
        match self.sid_key {
            Some(key) => format!("{{\"event\":\"clear\",\"{key}\":{}}}", self.stream_id_json),
            None => format!("{{\"event\":\"clearAudio\",\"streamId\":{}}}", self.stream_id_json),
        }
    }

    /// `terminate`: Mcube hangs the call up. `None` for a carrier that hangs up when the stream closes.
    pub fn terminate(&self) -> Option<String> {
        self.carrier
            .hangs_up_in_band()
            .then(|| format!("{{\"event\":\"terminate\",\"streamId\":{}}}", self.stream_id_json))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbound_messages_are_valid_json() {
        let w = CarrierWriter::new(Carrier::Mcube, "S\"1", AudioFormat::ULAW_8K);
        let buf = w.play_audio(&[0, 1, 2]);
        let v: serde_json::Value = serde_json::from_str(&buf).expect("json");
        assert_eq!(v["event"], "playAudio");
        assert_eq!(v["media"]["payload"], "AAEC");
        assert_eq!(v["media"]["contentType"], "audio/x-mulaw");
        assert_eq!(v["media"]["sampleRate"], 8000);
        assert_eq!(v["streamId"], "S\"1");
        for (msg, ev) in [
            (w.checkpoint("n"), "checkpoint"),
            (w.clear_audio(), "clearAudio"),
            (w.terminate().expect("Mcube hangs up in band"), "terminate"),
        ] {
            let v: serde_json::Value = serde_json::from_str(&msg).expect("json");
            assert_eq!(v["event"], ev);
            assert_eq!(v["streamId"], "S\"1");
        }
        let plivo = CarrierWriter::new(Carrier::Plivo, "S1", AudioFormat::ULAW_8K);
        assert_eq!(plivo.terminate(), None, "Plivo hangs up when the stream closes");
    }

    #[test]
    fn exotel_gets_its_own_messages_and_whole_padded_blocks() {
        use base64::Engine as _;
        let pcm8k = AudioFormat::new("r", Codec::Pcm16, 8000).expect("format");
        let w = CarrierWriter::new(Carrier::Exotel, "MZ1", pcm8k);
        let media: serde_json::Value = serde_json::from_str(&w.play_audio(&[1u8; 700])).expect("json");
        assert_eq!(
            (media["event"].as_str(), media["stream_sid"].as_str()),
            (Some("media"), Some("MZ1"))
        );
        let payload = base64::engine::general_purpose::STANDARD
            .decode(media["media"]["payload"].as_str().expect("payload"))
            .expect("base64");
        assert_eq!(
            payload.len(),
            3200,
            "at least 3.2 KB (200 ms at 8 kHz), in 320-byte blocks"
        );
        assert_eq!(
            (&payload[..700], payload[3199]),
            (&[1u8; 700][..], 0),
            "padded with silence"
        );
        let long = w.play_audio(&[1u8; 3300]);
        let v: serde_json::Value = serde_json::from_str(&long).expect("json");
        let n = base64::engine::general_purpose::STANDARD
            .decode(v["media"]["payload"].as_str().expect("payload"))
            .expect("base64")
            .len();
        assert_eq!(n, 3520, "rounded up to whole blocks");
        let mark: serde_json::Value = serde_json::from_str(&w.checkpoint("m1")).expect("json");
        assert_eq!(
            (mark["event"].as_str(), mark["mark"]["name"].as_str()),
            (Some("mark"), Some("m1"))
        );
        let clear: serde_json::Value = serde_json::from_str(&w.clear_audio()).expect("json");
        assert_eq!(
            (clear["event"].as_str(), clear["stream_sid"].as_str()),
            (Some("clear"), Some("MZ1"))
        );
        assert_eq!(w.terminate(), None, "Exotel hangs up when the stream closes");
    }

    #[test]
    fn twilio_gets_media_mark_and_clear_with_its_stream_sid_unpadded() {
        let w = CarrierWriter::new(Carrier::Twilio, "MZ9", AudioFormat::ULAW_8K);
        let media: serde_json::Value = serde_json::from_str(&w.play_audio(&[0xff; 160])).expect("json");
        assert_eq!(media["event"], "media");
        assert_eq!(media["streamSid"], "MZ9");
        assert_eq!(
            media["media"].as_object().map(|m| m.len()),
            Some(1),
            "payload only: {media}"
        );
        assert_eq!(
            media["media"]["payload"].as_str().map(str::len),
            Some(216),
            "160 bytes, not padded"
        );
        for (msg, event) in [(w.checkpoint("m"), "mark"), (w.clear_audio(), "clear")] {
            let v: serde_json::Value = serde_json::from_str(&msg).expect("json");
            assert_eq!(
                (v["event"].as_str(), v["streamSid"].as_str()),
                (Some(event), Some("MZ9"))
            );
        }
        assert_eq!(
            w.terminate(),
            None,
            "anything but media, mark and clear is Twilio's error 31924"
        );
    }
}
