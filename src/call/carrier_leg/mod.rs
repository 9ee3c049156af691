//! `CarrierLeg`: the carrier's inbound WebSocket (actix-web-actors), in its carrier's dialect (Mcube,
//! Plivo, Exotel: one tolerant parser, one writer per dialect). It turns frames into typed events for its
//! call and writes what the call tells it to. It never ends the call itself: when it goes, it reports why.
//! This is the only file that uses actix-web-actors (deprecated upstream), so moving off it is one file.

mod caller_audio;

use super::chunks::{Chunk, ChunkJoiner, Converter, NotBase64};
use super::listen::Side;
use super::messages::*;
use super::tap::Tap;
use super::{EndReason, RoutedAudio};
use crate::carriers::stream::{parse_event, CarrierEvent, CarrierParseError, StreamClaim, StreamStart};
use crate::carriers::writer::CarrierWriter;
use crate::carriers::Carrier;
use crate::metrics::Metrics;
use crate::protocol::base64_decoded_len;
use crate::supervise::{self, Panic, Part};
use crate::values::Invalid;
use crate::ws::frames::{sort_inbound, Inbound, Reassembler};
use actix::prelude::*;
use actix::WeakRecipient;
use actix_web_actors::ws;
use bytestring::ByteString;
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The largest audio payload one carrier event may carry (raw bytes): 0.5 s of 16 kHz PCM, 2 s of μ-law.
/// Carriers send 20–100 ms per event; anything far larger is dropped and counted, not relayed.
pub const MAX_AUDIO_PAYLOAD_BYTES: usize = 16 * 1024;
/// Messages (about 5 s of 20 ms frames) the leg may hold for a carrier that is not reading before the call
/// gives up on it: the leg's mailbox is the carrier's outbound queue.
const CARRIER_QUEUE: usize = 256;
/// A carrier's usual frame: a loop less behind than this joins nothing.
const CARRIER_FRAME: Duration = Duration::from_millis(20);
/// Pings a carrier may send per second before the leg is closed with 1008 (policy): each one costs a pong.
const MAX_PINGS_PER_SECOND: u32 = 20;

/// Claims the call a stream names in its `start` (Twilio's stream URL carries no query, so the call and its
/// token come there): the call to report to, or why the stream is refused. It is given the leg to attach.
pub type ClaimAtStart =
    Box<dyn FnOnce(&StreamClaim, Recipient<ToCarrier>) -> Result<WeakRecipient<FromCarrier>, &'static str>>;

/// Where the leg sends caller audio by itself, once the call is bridged.
struct Routed {
    agent: Recipient<ToAgent>,
    /// The conversion to the agent's format, when the formats differ.
    convert: Option<Converter>,
    /// Where the call reads what was forwarded.
    counts: Arc<RoutedAudio>,
}

pub struct CarrierLeg {
    call_id: String,
    /// The call this leg belongs to; `None` until a stream that names its call at `start` claims it.
    call: Option<WeakRecipient<FromCarrier>>,
    /// How to claim the call at `start`, and how long the carrier has to send it.
    claim: Option<(ClaimAtStart, Duration)>,
    metrics: Arc<Metrics>,
    heartbeat: Duration,
    peer_timeout: Duration,
    liveness: super::Liveness,
    reassembler: Reassembler,
    /// Why the leg is ending; reported to the call once, from `stopped`.
    gone: Option<EndReason>,
    /// The value the carrier sent that was refused, when that is why.
    invalid: Option<Invalid>,
    /// Set by the frame guard in front of the codec when it cut the stream (answer 1009).
    oversized: Arc<AtomicBool>,
    /// Pings in the current one-second window, and when that window began.
    pings: (u32, Option<Instant>),
    /// Set while caller audio goes straight to the agent leg (see `ToCarrier::Route`).
    route: Option<Routed>,
    /// Whose dialect the stream speaks (Mcube, or Plivo whose protocol Mcube mirrors).
    carrier: Carrier,
    /// Writes what the call asks for in the carrier's protocol, once its `start` named the stream.
    writer: Option<CarrierWriter>,
    /// Caller audio joined into chunks before it leaves the leg (`elevenlabs.user_audio_chunk_ms`), and
    /// the timer that sends held audio when it is due.
    joiner: ChunkJoiner,
    join_timer: Option<SpawnHandle>,
    /// The configured join (`elevenlabs.user_audio_chunk_ms`, usually none); longer only while this
    /// thread's loop is behind (`call::lag`), by as much as it is behind.
    join: Duration,
    /// Both sides pass here, the agent's as written (after any barge-in cut): for listeners and the
    /// recording.
    tap: Tap,
}

impl CarrierLeg {
    pub fn new(
        call_id: String,
        call: Option<WeakRecipient<FromCarrier>>,
        metrics: Arc<Metrics>,
        heartbeat: Duration,
        peer_timeout: Duration,
        max_message_bytes: usize,
        user_audio_chunk: Duration,
    ) -> Self {
        CarrierLeg {
            call_id,
            call,
            claim: None,
            heartbeat,
            peer_timeout,
            liveness: super::Liveness::new(heartbeat, peer_timeout),
            reassembler: Reassembler::new(max_message_bytes),
            gone: None,
            invalid: None,
            oversized: Arc::default(),
            pings: (0, None),
            route: None,
            carrier: Carrier::default(),
            writer: None,
            joiner: ChunkJoiner::new(user_audio_chunk),
            join_timer: None,
            join: user_audio_chunk,
            tap: Tap::new(metrics.clone()),
            metrics,
        }
    }

    fn report(&self, report: CarrierReport) {
        if let Some(call) = &self.call {
            report_to_call(call, FromCarrier(report));
        }
    }

    /// A leg whose call is named by its stream's `start` and claimed then by `claim`.
    pub fn claiming_at_start(mut self, claim: ClaimAtStart, within: Duration) -> Self {
        self.claim = Some((claim, within));
        self
    }

    /// A leg still waiting for the `start` that names its call is closed with 1008 once `within` passes:
    /// until then it holds no slot and has dialled nothing, so it must not linger either.
    fn expect_start(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let Some((_, within)) = self.claim else { return };
        ctx.run_later(within, move |act, ctx| {
            if act.claim.is_some() {
                log::warn!(
                    "carrier: {} stream sent no start in {within:?}; closing (1008)",
                    act.carrier.as_str()
                );
                act.finish(ctx, EndReason::CarrierTimeout, Some(ws::CloseCode::Policy.into()));
            }
        });
    }

    /// Claims the call `start` names, if this leg waits for one: false when the stream is refused (the leg
    /// is then closed with 1008).
    fn claim_call(&mut self, start: &StreamStart, ctx: &mut ws::WebsocketContext<Self>) -> bool {
        let Some((claim, _)) = self.claim.take() else {
            return true;
        };
        let claimed = match &start.claim {
            Some(named) => claim(named, ctx.address().recipient()).map(|call| (named.call_id.to_string(), call)),
            None => Err("its start names no call"),
        };
        match claimed {
            Ok((call_id, call)) => {
                self.call_id = call_id;
                self.call = Some(call);
                true
            }
            Err(why) => {
                self.metrics.traffic.refused("unauthorized", self.carrier.as_str());
                log::warn!(
                    "carrier: {} stream refused: {why}; closing (1008)",
                    self.carrier.as_str()
                );
                let close = ws::CloseReason {
                    code: ws::CloseCode::Policy,
                    description: Some(why.into()),
                };
                self.finish(ctx, EndReason::CarrierProtocolError, Some(close));
                false
            }
        }
    }

    /// Ends the leg with a close code, remembering why for the call.
    fn finish(&mut self, ctx: &mut ws::WebsocketContext<Self>, reason: EndReason, close: Option<ws::CloseReason>) {
        self.gone.get_or_insert(reason);
        ctx.close(close);
        ctx.stop();
    }

    fn on_text(&mut self, text: ByteString, ctx: &mut ws::WebsocketContext<Self>) {
        if self.gone.is_some() {
            // After `stop` (or once the leg is ending) nothing the carrier sends belongs to the call any more;
            // with caller audio routed straight to the agent it would otherwise still reach ElevenLabs.
            return;
        }
        supervise::fault::point(Part::CarrierLeg, &self.call_id);
        let event = parse_event(&text);
        if !matches!(event, Ok(CarrierEvent::Media { .. })) {
            // What the caller said before this event reaches the agent before it.
            self.send_held_audio(ctx);
        }
        match event {
            Ok(CarrierEvent::Media { payload, .. }) => {
                let b64 = match payload {
                    Cow::Borrowed(s) => text.slice_ref(s),
                    Cow::Owned(s) => ByteString::from(s),
                };
                self.send_audio(CarrierPayload::Base64(b64), ctx);
            }
            Ok(CarrierEvent::Start(start)) => {
                if !self.claim_call(&start, ctx) {
                    return;
                }
                if self.writer.is_none() {
                    let stream_id = start.stream_id.as_ref().map_or(self.call_id.as_str(), |id| id.as_str());
                    self.writer = Some(CarrierWriter::new(self.carrier, stream_id, start.format));
                    self.joiner.set_format(start.format);
                    self.tap.set_format(start.format);
                }
                self.report(CarrierReport::Started(start));
            }
            Ok(CarrierEvent::PlayedStream { name }) => self.report(CarrierReport::Played { name }),
            Ok(CarrierEvent::Dtmf { digit }) => self.report(CarrierReport::Dtmf { digit }),
            Ok(CarrierEvent::Stop) => {
                self.gone = Some(EndReason::CarrierStop);
                self.report(CarrierReport::Gone {
                    reason: EndReason::CarrierStop,
                    invalid: None,
                });
            }
            Ok(CarrierEvent::Ignored) => {}
            Ok(CarrierEvent::Unknown { event }) => {
                self.metrics.unread.carrier_unknown_events.inc();
                log::debug!("call_id={} carrier: ignoring unknown event '{event}'", self.call_id);
            }
            Err(CarrierParseError::Invalid(invalid)) => self.refuse_value(invalid, ctx),
            Err(e) => {
                self.metrics.unread.carrier_bad_frames.inc();
                log::warn!("call_id={} {e}; closing the carrier leg (1007)", self.call_id);
                let close = ws::CloseReason {
                    code: ws::CloseCode::Invalid,
                    description: Some("unreadable frame".into()),
                };
                self.finish(ctx, EndReason::CarrierProtocolError, Some(close));
            }
        }
    }

    /// A field out of bounds: the socket is closed with 1007 and the field's name, counted, and the call's
    /// record says why.
    fn refuse_value(&mut self, invalid: Invalid, ctx: &mut ws::WebsocketContext<Self>) {
        self.metrics.unread.invalid(invalid.field);
        log::warn!(
            "call_id={} carrier: {invalid}; closing the carrier leg (1007)",
            self.call_id
        );
        // A close frame's reason is at most 123 bytes.
        let mut description = format!("invalid {}", invalid.field);
        description.truncate(123);
        let close = ws::CloseReason {
            code: ws::CloseCode::Invalid,
            description: Some(description),
        };
        self.invalid = Some(invalid);
        self.finish(ctx, EndReason::CarrierInvalidData, Some(close));
    }

    /// Shares the flag of the frame guard in front of this leg's codec.
    /// The stream speaks `carrier`'s dialect (Mcube unless told).
    pub fn speaking(mut self, carrier: Carrier) -> Self {
        self.carrier = carrier;
        self
    }

    pub fn guarded_by(mut self, oversized: Arc<AtomicBool>) -> Self {
        self.oversized = oversized;
        self
    }

    /// Answers a ping, unless the carrier floods them: more than `MAX_PINGS_PER_SECOND` closes with 1008.
    fn on_ping(&mut self, payload: &[u8], ctx: &mut ws::WebsocketContext<Self>) {
        let now = Instant::now();
        let (count, since) = &mut self.pings;
        if since.is_none_or(|s| now.duration_since(s) >= Duration::from_secs(1)) {
            *since = Some(now);
            *count = 0;
        }
        *count += 1;
        if *count > MAX_PINGS_PER_SECOND {
            self.metrics.unread.carrier_bad_frames.inc();
            log::warn!("call_id={} carrier: ping flood; closing (1008)", self.call_id);
            self.finish(ctx, EndReason::CarrierProtocolError, Some(ws::CloseCode::Policy.into()));
        } else {
            ctx.pong(payload);
        }
    }

    fn check_heartbeat(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if self.claim.is_some() {
            ctx.ping(b"");
        } else if !self.call.as_ref().is_some_and(call_alive) {
            // The call is gone: never leave a zombie socket behind it.
            self.finish(ctx, EndReason::CarrierHangup, Some(ws::CloseCode::Normal.into()));
        } else if self.liveness.silent_too_long() {
            log::warn!(
                "call_id={} carrier: silent for {:?}, ending the call",
                self.call_id,
                self.peer_timeout
            );
            self.finish(ctx, EndReason::CarrierTimeout, Some(ws::CloseCode::Away.into()));
        } else {
            ctx.ping(b"");
        }
    }
}

impl Actor for CarrierLeg {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(CARRIER_QUEUE);
        self.expect_start(ctx);
        ctx.run_interval(self.heartbeat, |act, ctx| {
            act.supervised(ctx, |act, ctx| act.check_heartbeat(ctx))
        });
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        // Audio said before the end still belongs to the call.
        self.send_held_audio(ctx);
        let reason = self.gone.unwrap_or(EndReason::CarrierHangup);
        let invalid = self.invalid.take();
        self.report(CarrierReport::Gone { reason, invalid });
        self.call = None;
    }
}

impl Drop for CarrierLeg {
    /// A panic that no guard caught ended the leg's task without `stopped` (its socket went with it): the
    /// call is told, and ends.
    fn drop(&mut self) {
        if self.call.is_some() {
            let message = "the carrier leg's task ended without stopping".to_string();
            supervise::count(Part::CarrierLeg, &message);
            self.report(CarrierReport::Fault(Panic {
                part: Part::CarrierLeg,
                message,
            }));
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for CarrierLeg {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.supervised(ctx, |act, ctx| act.on_frame(msg, ctx));
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        // The socket ended without a close frame: the caller's side dropped.
        self.gone.get_or_insert(EndReason::CarrierHangup);
        ctx.stop();
    }
}

impl Handler<ToCarrier> for CarrierLeg {
    type Result = ();

    fn handle(&mut self, msg: ToCarrier, ctx: &mut Self::Context) {
        self.supervised(ctx, |act, ctx| act.on_command(msg, ctx));
    }
}

impl CarrierLeg {
    /// Runs a handler's or a timer's work; a panic in it hangs the carrier up and ends the call
    /// (`crate::supervise`).
    fn supervised(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        work: impl FnOnce(&mut Self, &mut ws::WebsocketContext<Self>),
    ) {
        if let Err(panic) = supervise::guard(Part::CarrierLeg, || work(self, ctx)) {
            self.internal_error(ctx, panic);
        }
    }

    /// The leg panicked: the carrier is hung up in its dialect (unless the leg was already ending) and
    /// closed with 1011, and the call is told why (it logs it, once; a leg with no call yet logs it here).
    fn internal_error(&mut self, ctx: &mut ws::WebsocketContext<Self>, panic: Panic) {
        if self.call.is_none() {
            log::error!("call_id={} {panic}; hanging up", self.call_id);
        }
        if self.gone.is_none() {
            if let Some(hang_up) = self.writer.as_ref().and_then(|w| w.terminate()) {
                ctx.text(hang_up);
            }
        }
        self.gone = Some(EndReason::InternalError);
        self.report(CarrierReport::Fault(panic));
        ctx.close(Some(ws::CloseCode::Error.into()));
        ctx.stop();
    }

    fn on_frame(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut ws::WebsocketContext<Self>) {
        self.liveness.heard();
        if msg.is_err() && self.gone.is_some() {
            // Once the leg is ending, what is left in the socket (often an EOF after the close) is moot.
            return;
        }
        let oversized = self.oversized.load(Ordering::SeqCst);
        match sort_inbound(msg, &mut self.reassembler, oversized) {
            Inbound::Text(text) => self.on_text(text, ctx),
            Inbound::Binary(bin) => self.send_audio(CarrierPayload::Raw(bin), ctx),
            Inbound::Ping(p) => self.on_ping(&p, ctx),
            Inbound::Nothing => {}
            Inbound::Closed(reason) => {
                log::info!(
                    "call_id={} carrier closed the WebSocket ({:?})",
                    self.call_id,
                    reason.as_ref().map(|r| r.code)
                );
                self.finish(ctx, EndReason::CarrierHangup, reason);
            }
            Inbound::Refuse { code, why } => {
                self.metrics.unread.carrier_bad_frames.inc();
                log::warn!("call_id={} carrier: {why}; closing ({})", self.call_id, u16::from(code));
                self.finish(ctx, EndReason::CarrierProtocolError, Some(code.into()));
            }
            // The kernel's send timeout (server.send_timeout_ms) cut a carrier that stopped reading.
            Inbound::Lost(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                log::warn!("call_id={} carrier stopped reading: {e}", self.call_id);
                self.finish(ctx, EndReason::CarrierStalled, None);
            }
            Inbound::Lost(e) => {
                log::info!("call_id={} carrier connection lost: {e}", self.call_id);
                self.finish(ctx, EndReason::CarrierHangup, None);
            }
        }
    }

    fn on_command(&mut self, msg: ToCarrier, ctx: &mut ws::WebsocketContext<Self>) {
        match msg {
            ToCarrier::Play { frame, since } => {
                let Some(w) = &self.writer else { return };
                ctx.text(w.play_audio(&frame));
                self.tap.hear(Side::Agent, &frame);
                if let Some(ready_at) = since {
                    let waited = ready_at.elapsed().as_secs_f64();
                    self.metrics.hop_agent_to_carrier.observe(waited);
                }
            }
            ToCarrier::ClearAudio => {
                if let Some(w) = &self.writer {
                    ctx.text(w.clear_audio());
                }
            }
            ToCarrier::Checkpoint { name } => {
                if let Some(w) = &self.writer {
                    ctx.text(w.checkpoint(&name));
                }
            }
            ToCarrier::Route { to, convert, counts } => {
                self.send_held_audio(ctx);
                self.route = to.map(|agent| Routed {
                    agent,
                    convert: convert.map(|tc| Converter::new(*tc)),
                    counts,
                });
            }
            ToCarrier::Listen(listener) => self.tap.listen(listener),
            ToCarrier::Record(recording) => self.tap.record(*recording),
            ToCarrier::PauseRecording(paused) => self.tap.pause_recording(paused),
            ToCarrier::Close { code, terminate } => {
                if let (true, Some(hang_up)) = (terminate, self.writer.as_ref().and_then(|w| w.terminate())) {
                    ctx.text(hang_up);
                }
                // The call is ending this leg; do not report it back as a hang-up that the call must act on.
                self.gone.get_or_insert(EndReason::CarrierHangup);
                ctx.close(Some(ws::CloseCode::from(code).into()));
                ctx.stop();
            }
        }
    }
}
