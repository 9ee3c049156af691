//! `CallerAudio`: the caller's audio on its way to the agent — held (bounded) while the agent is not ready,
//! converted when the formats differ, and routed straight from the carrier leg to the agent leg when they
//! do not. A plain part of the call: one `to_agent` makes every chunk the agent gets, whichever way it came.

use super::chunks::{for_agent, Converter};
use super::messages::{CarrierPayload, ToAgent};
use super::Crossing;
use super::RoutedAudio;
use crate::audio::transcode::Transcoder;
use actix::Recipient;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Counts the call keeps of caller audio.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    pub frames: u64,
    pub bytes: u64,
}

/// A change of route for the carrier leg to apply.
pub struct Reroute {
    pub to: Option<Recipient<ToAgent>>,
    /// The conversion the leg applies on the way (a fresh one: the call keeps its own for held audio).
    pub convert: Option<Box<Transcoder>>,
    pub counts: Arc<RoutedAudio>,
}

pub struct CallerAudio {
    held: VecDeque<CarrierPayload>,
    held_bytes: usize,
    /// The most held, in payload bytes (base64 counts as it came).
    hold_limit: usize,
    /// Set once both sides' formats are known; its `Option` is "no conversion".
    bridge: Crossing<Converter>,
    /// Counts of caller audio the carrier leg forwarded straight to the agent leg.
    routed: Arc<RoutedAudio>,
    /// The agent connection the carrier leg forwards to, if any.
    routed_to: Option<u32>,
}

/// A payload's size as base64 (raw audio counts as it will be sent), so the limit holds the same audio
/// whichever way it came.
fn payload_len(p: &CarrierPayload) -> usize {
    match p {
        CarrierPayload::Base64(b) => b.len(),
        CarrierPayload::Raw(r) => r.len().div_ceil(3) * 4,
    }
}

impl CallerAudio {
    pub fn new(hold_limit: usize) -> Self {
        CallerAudio {
            held: VecDeque::new(),
            held_bytes: 0,
            hold_limit,
            bridge: Crossing::Held,
            routed: Arc::default(),
            routed_to: None,
        }
    }

    /// The hold limit once the carrier's format is known.
    pub fn set_hold_limit(&mut self, bytes: usize) {
        self.hold_limit = bytes;
    }

    /// Both formats are known: convert with `transcoder` (`None`: pass through).
    pub fn bridge(&mut self, transcoder: Option<Transcoder>) {
        self.bridge = Crossing::bridged(transcoder.map(Converter::new));
    }

    /// The agent connection is gone: hold again until the next one is bridged.
    pub fn unbridge(&mut self) {
        self.bridge = Crossing::Held;
    }

    pub fn is_bridged(&self) -> bool {
        self.bridge.is_bridged()
    }

    /// Holds a payload while the agent is not ready; the oldest go first past the limit. Returns how many
    /// payloads were dropped.
    pub fn hold(&mut self, payload: CarrierPayload) -> u64 {
        self.held_bytes += payload_len(&payload);
        self.held.push_back(payload);
        let mut dropped = 0;
        while self.held_bytes > self.hold_limit {
            let Some(old) = self.held.pop_front() else { break };
            self.held_bytes -= payload_len(&old);
            dropped += 1;
        }
        dropped
    }

    /// Everything held, oldest first, as the agent will get it.
    pub fn release_held(&mut self) -> Vec<ToAgent> {
        self.held_bytes = 0;
        let held = std::mem::take(&mut self.held);
        let now = Instant::now();
        held.into_iter().filter_map(|p| self.to_agent(p, now)).collect()
    }

    /// The chunk the agent gets for one payload, in its input format; `None` when there is no bridge yet or
    /// the payload cannot be read.
    pub fn to_agent(&mut self, payload: CarrierPayload, read_at: Instant) -> Option<ToAgent> {
        let audio = match &mut self.bridge {
            Crossing::Held => return None,
            Crossing::Same => for_agent(payload, None)?,
            Crossing::Convert(converter) => for_agent(payload, Some(converter))?,
        };
        Some(ToAgent::CallerAudio { audio, read_at })
    }

    /// Whether the carrier leg should send caller audio straight to agent connection `generation`'s leg
    /// (converting it on the way when the formats differ): whenever bridged. Returns the change to tell the
    /// leg, if any.
    pub fn reroute(&mut self, agent: Option<(u32, &Recipient<ToAgent>)>) -> Option<Reroute> {
        let want = agent.filter(|_| self.bridge.is_bridged());
        let generation = want.as_ref().map(|(g, _)| *g);
        if generation == self.routed_to {
            return None;
        }
        self.routed_to = generation;
        let convert = match (&self.bridge, &want) {
            (Crossing::Convert(c), Some(_)) => {
                let tc = c.transcoder();
                Some(Box::new(Transcoder::new(tc.from(), tc.to())))
            }
            _ => None,
        };
        Some(Reroute {
            to: want.map(|(_, leg)| leg.clone()),
            convert,
            counts: self.routed.clone(),
        })
    }

    /// What the carrier leg forwarded by itself since the last call: the call adds it to its own counts.
    pub fn take_routed(&self) -> Counted {
        let r = &self.routed;
        Counted {
            frames: r.frames.swap(0, Ordering::Relaxed),
            bytes: r.bytes.swap(0, Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::format::AudioFormat;
    use base64::Engine as _;
    use bytestring::ByteString;

    fn b64(s: &str) -> CarrierPayload {
        CarrierPayload::Base64(ByteString::from(s.to_string()))
    }

    fn chunk(m: Option<ToAgent>) -> String {
        match m {
            Some(ToAgent::CallerAudio { audio, .. }) => audio.to_string(),
            _ => panic!("no caller audio"),
        }
    }

    #[test]
    fn nothing_reaches_the_agent_before_the_bridge_and_the_oldest_held_go_first() {
        let mut c = CallerAudio::new(8);
        assert!(c.to_agent(b64("AAAA"), Instant::now()).is_none());
        assert_eq!(c.hold(b64("AAAA")), 0);
        assert_eq!(c.hold(b64("AQID")), 0);
        assert_eq!(c.hold(b64("BAUG")), 1, "past the limit the oldest is dropped");
        c.bridge(None);
        let released: Vec<String> = c.release_held().into_iter().map(|m| chunk(Some(m))).collect();
        assert_eq!(released, vec!["AQID", "BAUG"]);
    }

    #[test]
    fn passthrough_keeps_base64_and_encodes_raw_frames() {
        let mut c = CallerAudio::new(1024);
        c.bridge(None);
        assert_eq!(chunk(c.to_agent(b64("AAEC"), Instant::now())), "AAEC");
        assert_eq!(
            chunk(c.to_agent(CarrierPayload::Raw(Bytes::from_static(&[0, 1, 2])), Instant::now())),
            "AAEC"
        );
    }

    #[test]
    fn a_conversion_decodes_converts_and_encodes() {
        let mut c = CallerAudio::new(1024);
        c.bridge(Some(Transcoder::new(AudioFormat::ULAW_8K, AudioFormat::PCM_16K)));
        let out = chunk(c.to_agent(b64(&"/////".repeat(32)[..160]), Instant::now()));
        let raw = base64::engine::general_purpose::STANDARD.decode(out).expect("base64");
        assert!(
            !raw.is_empty() && raw.len().is_multiple_of(2),
            "PCM16 samples: {}",
            raw.len()
        );
        assert!(
            raw.len() <= 120 * 2 * 2,
            "120 μ-law samples become at most 240 PCM16 samples at 16 kHz"
        );
    }

    #[test]
    fn caller_audio_is_routed_directly_while_bridged_with_its_conversion() {
        let mut c = CallerAudio::new(1024);
        let sys = actix::System::new();
        sys.block_on(async {
            let leg = actix::Actor::start(Sink).recipient();
            assert!(c.reroute(Some((1, &leg))).is_none(), "not bridged: no route, no change");
            c.bridge(None);
            let direct = c.reroute(Some((1, &leg))).expect("a route");
            assert!(
                direct.to.is_some() && direct.convert.is_none(),
                "same formats: nothing to convert"
            );
            assert!(c.reroute(Some((1, &leg))).is_none(), "unchanged");
            c.unbridge();
            assert!(c.reroute(Some((1, &leg))).is_some_and(|r| r.to.is_none()));
            c.bridge(Some(Transcoder::new(AudioFormat::ULAW_8K, AudioFormat::PCM_16K)));
            let converted = c.reroute(Some((2, &leg))).expect("a route");
            let to = converted.convert.map(|tc| tc.to());
            assert_eq!(to, Some(AudioFormat::PCM_16K), "the leg converts on the way");
        });
    }

    use actix::prelude::*;
    use bytes::Bytes;

    /// An agent leg that takes what it is sent.
    struct Sink;

    impl Actor for Sink {
        type Context = Context<Self>;
    }

    impl Handler<ToAgent> for Sink {
        type Result = ();

        fn handle(&mut self, _: ToAgent, _: &mut Context<Self>) {}
    }
}
