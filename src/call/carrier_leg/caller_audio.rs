//! The carrier leg's caller audio: checked at the edge, joined only when the opt-in timer or a late loop
//! asks, converted when the agent's format differs, and handed straight to the agent leg once routed.

use super::*;

impl CarrierLeg {
    /// Joins caller audio into chunks (only with the opt-in join timer) and hands each to the agent leg when
    /// routed there, else to the call, with when its oldest frame was read. Payloads too large or not base64 are dropped and counted here,
    /// at the edge.
    pub(super) fn send_audio(&mut self, payload: CarrierPayload, ctx: &mut ws::WebsocketContext<Self>) {
        if self.gone.is_some() {
            return;
        }
        let raw_len = match &payload {
            CarrierPayload::Base64(b64) => base64_decoded_len(b64),
            CarrierPayload::Raw(raw) => raw.len(),
        };
        if raw_len > MAX_AUDIO_PAYLOAD_BYTES {
            self.metrics.unread.carrier_bad_audio.inc();
            log::warn!(
                "call_id={} carrier: {raw_len}-byte audio payload dropped (limit {MAX_AUDIO_PAYLOAD_BYTES})",
                self.call_id
            );
            return;
        }
        let now = Instant::now();
        let behind = crate::call::lag::join_for(crate::call::lag::current(), CARRIER_FRAME);
        self.joiner.set_chunk(self.join.max(behind));
        // A chunk's hop latency counts from its oldest frame: the wait for the rest of a chunk is the caller's.
        let oldest = self.joiner.held_since().unwrap_or(now);
        let chunk = match payload {
            CarrierPayload::Base64(b64) => match self.joiner.push(b64, now) {
                Ok(chunk) => chunk,
                Err(NotBase64) => {
                    self.metrics.unread.carrier_bad_audio.inc();
                    return;
                }
            },
            CarrierPayload::Raw(raw) => self.joiner.push_raw(raw, now),
        };
        match chunk {
            Some(chunk) => self.forward(chunk, oldest, ctx),
            None if self.join_timer.is_none() => {
                let Some(due) = self.joiner.due() else { return };
                let wait = due.saturating_duration_since(now);
                self.join_timer = Some(ctx.run_later(wait, |act, ctx| {
                    act.join_timer = None;
                    act.supervised(ctx, |act, ctx| act.send_held_audio(ctx));
                }));
            }
            None => {}
        }
    }

    /// Sends a chunk of caller audio on (`read_at`: when its oldest frame was read).
    pub(super) fn forward(&mut self, chunk: Chunk, read_at: Instant, ctx: &mut ws::WebsocketContext<Self>) {
        if let Some(timer) = self.join_timer.take() {
            ctx.cancel_future(timer);
        }
        match &chunk.audio {
            CarrierPayload::Raw(raw) => self.tap.hear(Side::Caller, raw),
            CarrierPayload::Base64(b64) => self.tap.hear_base64(Side::Caller, b64.as_bytes()),
        }
        match &mut self.route {
            Some(route) => {
                route.counts.frames.fetch_add(chunk.frames, Ordering::Relaxed);
                route.counts.bytes.fetch_add(chunk.bytes as u64, Ordering::Relaxed);
                let audio = crate::call::chunks::for_agent(chunk.audio, route.convert.as_mut());
                if let Some(audio) = audio.filter(|a| !a.is_empty()) {
                    route.agent.do_send(ToAgent::CallerAudio { audio, read_at });
                }
            }
            None => self.report(CarrierReport::Audio {
                payload: chunk.audio,
                frames: chunk.frames,
                bytes: chunk.bytes,
                received_at: read_at,
            }),
        }
    }

    /// Sends what is held now: at its deadline, before any other event, on a change of route, at the end.
    pub(super) fn send_held_audio(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let read_at = self.joiner.held_since().unwrap_or_else(Instant::now);
        match self.joiner.take() {
            Some(chunk) => self.forward(chunk, read_at, ctx),
            None => {
                if let Some(timer) = self.join_timer.take() {
                    ctx.cancel_future(timer);
                }
            }
        }
    }
}
