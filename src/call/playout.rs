//! `Playout`: the call's outbound side — the queue of agent audio in the carrier's format, the pacing clock
//! that never runs more than a few frames ahead of the carrier's playback, the wait for the rest of a
//! partial frame, and the checkpoints that tell us what the carrier has played. A plain part of the call: it
//! takes `now` and returns decisions (which frame to send, when to wake, which mark to set), so its timing is
//! unit-tested with synthetic time. The call owns the timer and the sends.
//!
//! A frame is released as soon as the carrier has less than the lead of ours still to play, so a live
//! stream goes out the moment it arrives (no timer, no added latency). Audio that has to wait (a
//! faster-than-real-time burst, or a stream that keeps the carrier topped up to the lead) is released in
//! batches of frames, so one wake-up and one write carry several frames. A wake-up is asked for only while
//! audio waits.

use crate::audio::pacer::Pacer;
use std::time::{Duration, Instant};

/// How far ahead of the carrier's playback the pacer may run, in frames (100 ms at 20 ms frames). The lead
/// absorbs network jitter and lets a stream that comes at real time in chunks go out a chunk per write,
/// without adding latency to a live stream; it costs nothing on barge-in because `clearAudio` empties the
/// carrier's buffer.
pub const PACING_LEAD_FRAMES: u32 = 5;
/// While audio waits, the call wakes when this many frames may go out at once: the carrier then still has
/// `PACING_LEAD_FRAMES - PACING_BATCH_FRAMES + 1` frames to play (40 ms at 20 ms frames), and one wake-up
/// and one write carry four frames instead of one (a timer and a write per frame were most of what a
/// speaking call cost).
pub const PACING_BATCH_FRAMES: u32 = 4;
/// A pacing wake-up this many frames late counts as a resync (the carrier heard a gap).
pub const MAX_PACING_LAG_FRAMES: u32 = 5;
/// How long the outbound stream must have been quiet before its end is marked with a checkpoint.
pub const CHECKPOINT_QUIET: Duration = Duration::from_millis(100);

/// What the call does once the frames the clock allows have been sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterPump {
    /// Nothing is queued.
    Drained,
    /// Audio waits: wake at this instant.
    WakeAt(Instant),
}

pub struct Playout {
    pacer: Pacer,
    frame: Duration,
    /// When the carrier will have played everything sent so far (if it plays in real time from now on).
    play_clock: Instant,
    /// Since when a partial frame waits for the rest of its utterance.
    partial_since: Option<Instant>,
    /// The wake-up asked for, while one is pending.
    wake_at: Option<Instant>,
    /// Frames are being taken for one write (between the first `next_frame` and `after_pump`).
    pumping: bool,
    /// Audio was played since the last checkpoint.
    unmarked: bool,
    checkpoint_seq: u64,
    awaiting_checkpoint: Option<String>,
}

impl Playout {
    /// `frame_bytes` make one frame of `frame` length; at most `max_bytes` are queued.
    pub fn new(frame_bytes: usize, max_bytes: usize, frame: Duration, now: Instant) -> Self {
        Playout {
            pacer: Pacer::new(frame_bytes, max_bytes),
            frame,
            play_clock: now,
            partial_since: None,
            wake_at: None,
            pumping: false,
            unmarked: false,
            checkpoint_seq: 0,
            awaiting_checkpoint: None,
        }
    }

    /// The carrier's format is known: frames are sized for it (`frame_bytes` make one frame of `frame`
    /// length). Nothing is queued before then.
    pub fn resize(&mut self, frame_bytes: usize, max_bytes: usize, frame: Duration) {
        self.pacer = Pacer::new(frame_bytes, max_bytes);
        self.frame = frame;
    }

    fn lead(&self) -> Duration {
        self.frame * PACING_LEAD_FRAMES
    }

    /// When the clock allows a whole batch: the carrier has `lead - batch + 1` frames left to play.
    fn batch_opens(&self, now: Instant) -> Instant {
        (self.play_clock + self.frame * (PACING_BATCH_FRAMES - 1))
            .checked_sub(self.lead())
            .unwrap_or(now)
    }

    /// Whether a write may begin at `now`: when the clock allows a whole batch, or when less than a batch
    /// is queued (a live stream goes out as it comes, never held back for a batch).
    fn may_begin(&self, now: Instant) -> bool {
        self.batch_opens(now) <= now || self.pacer.full_frames() < PACING_BATCH_FRAMES as usize
    }

    /// Queues agent audio; returns the bytes that did not fit (dropped).
    pub fn push(&mut self, audio: &[u8]) -> usize {
        self.pacer.push(audio)
    }

    /// New audio was queued at `now`: whether to send now. A pending wake-up already covers audio until a
    /// batch may go; when it says to send now, the pending wake-up is dropped (`cancel_wake`).
    pub fn send_now(&self, now: Instant) -> bool {
        self.wake_at.is_none() || (self.pacer.has_full_frame() && self.batch_opens(now) <= now)
    }

    /// The next frame the clock allows at `now`, if any, to be sent as it is. A partial frame goes once it
    /// has waited a period. Frames that go in one pump go in one write, so a pump begins only when a batch
    /// may go (`may_begin`) and then takes what the lead allows.
    pub fn next_frame(&mut self, now: Instant) -> Option<Vec<u8>> {
        let full = self.pacer.has_full_frame();
        let partial_due = !full && !self.pacer.is_empty() && self.partial_since.is_some_and(|t| t + self.frame <= now);
        if !(full || partial_due) || self.play_clock > now + self.lead() {
            return None;
        }
        if !self.pumping && !self.may_begin(now) {
            return None;
        }
        self.pumping = true;
        let mut frame = Vec::new();
        self.pacer.pop_frame(&mut frame, true);
        self.partial_since = None;
        self.play_clock = self.play_clock.max(now) + self.frame;
        self.unmarked = true;
        Some(frame)
    }

    /// After the allowed frames went out at `now`: the next wake-up, or drained.
    pub fn after_pump(&mut self, now: Instant) -> AfterPump {
        self.pumping = false;
        if self.pacer.is_empty() {
            self.partial_since = None;
            return AfterPump::Drained;
        }
        let batch_opens = self.batch_opens(now);
        let wake = if self.pacer.has_full_frame() {
            batch_opens
        } else {
            // Give the rest of the utterance one period to arrive before sending a short frame.
            batch_opens.max(*self.partial_since.get_or_insert(now) + self.frame)
        };
        self.wake_at = Some(wake);
        AfterPump::WakeAt(wake)
    }

    /// The wake-up fired at `now`: returns when it was due (the audio was ready since then) and whether it
    /// came so late that the carrier heard a gap (a resync).
    pub fn woke(&mut self, now: Instant) -> (Instant, bool) {
        let due = self.wake_at.take().unwrap_or(now);
        let late = now.saturating_duration_since(due) > self.frame * MAX_PACING_LAG_FRAMES;
        (due, late)
    }

    /// The pending wake-up is dropped (its timer cancelled).
    pub fn cancel_wake(&mut self) {
        self.wake_at = None;
        self.partial_since = None;
    }

    pub fn waiting(&self) -> bool {
        self.wake_at.is_some()
    }

    /// Barge-in at `now`: drops what is queued; the carrier empties its buffer on `clearAudio`, so the next
    /// utterance starts at once. Returns the bytes dropped.
    pub fn clear(&mut self, now: Instant) -> usize {
        self.cancel_wake();
        self.play_clock = now;
        self.unmarked = false;
        self.awaiting_checkpoint = None;
        self.pacer.clear()
    }

    /// The queue ran dry: the name of the checkpoint that marks the end of what was played, if anything was.
    pub fn mark_end(&mut self) -> Option<String> {
        if !std::mem::replace(&mut self.unmarked, false) {
            return None;
        }
        self.checkpoint_seq += 1;
        let name = format!("cp-{}", self.checkpoint_seq);
        self.awaiting_checkpoint = Some(name.clone());
        Some(name)
    }

    /// At housekeeping: a checkpoint to mark the end of the stream once it has been quiet for
    /// `CHECKPOINT_QUIET`. Only play-out waits on a checkpoint, and it marks at once, so a live call's mark
    /// can wait for the next tick instead of costing a timer per frame.
    pub fn quiet_mark(&mut self, now: Instant) -> Option<String> {
        let quiet = self.pacer.is_empty() && self.wake_at.is_none();
        if quiet && now >= self.play_clock + CHECKPOINT_QUIET {
            self.mark_end()
        } else {
            None
        }
    }

    /// The carrier played up to checkpoint `name`: whether it was the one awaited.
    pub fn played(&mut self, name: &str) -> bool {
        let awaited = self.awaiting_checkpoint.as_deref() == Some(name);
        if awaited {
            self.awaiting_checkpoint = None;
        }
        awaited
    }

    /// Everything queued has been sent and heard: nothing queued, no wake-up, no checkpoint awaited.
    pub fn done(&self) -> bool {
        self.pacer.is_empty() && self.wake_at.is_none() && self.awaiting_checkpoint.is_none()
    }

    pub fn queued_bytes(&self) -> usize {
        self.pacer.len()
    }

    pub fn dropped_bytes(&self) -> u64 {
        self.pacer.dropped_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_millis(20);
    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn playout(t0: Instant) -> Playout {
        Playout::new(160, 160 * 100, FRAME, t0)
    }

    fn sent(p: &mut Playout, now: Instant) -> Vec<usize> {
        let mut out = Vec::new();
        while let Some(f) = p.next_frame(now) {
            out.push(f.len());
        }
        out
    }

    #[test]
    fn a_live_stream_goes_out_as_it_arrives_without_a_timer() {
        let t0 = Instant::now();
        let mut p = playout(t0);
        for i in 0..50 {
            let now = t0 + FRAME * i;
            p.push(&[0; 160]);
            assert!(p.send_now(now));
            assert_eq!(sent(&mut p, now), vec![160], "frame {i} at once");
            assert_eq!(p.after_pump(now), AfterPump::Drained);
        }
    }

    #[test]
    fn a_burst_runs_the_lead_ahead_then_a_batch_per_batch_of_periods() {
        let t0 = Instant::now();
        let mut p = playout(t0);
        p.push(&vec![
            0;
            160 * (1 + PACING_LEAD_FRAMES + 3 * PACING_BATCH_FRAMES) as usize
        ]);
        assert_eq!(
            sent(&mut p, t0).len(),
            1 + PACING_LEAD_FRAMES as usize,
            "now plus the lead"
        );
        let AfterPump::WakeAt(wake) = p.after_pump(t0) else {
            panic!("audio waits")
        };
        let batch = PACING_BATCH_FRAMES;
        assert_eq!(wake, t0 + FRAME * batch, "the clock opens for a whole batch");
        assert!(!p.send_now(t0 + FRAME), "new audio waits for the pending wake-up");
        let (due, late) = p.woke(wake);
        assert_eq!((due, late), (wake, false));
        assert_eq!(sent(&mut p, wake).len(), batch as usize, "a batch per wake-up");
        assert_eq!(p.after_pump(wake), AfterPump::WakeAt(t0 + FRAME * batch * 2));
        // Over time the pace is real time: 1 + lead frames at once, then `batch` per `batch` periods.
        let later = t0 + FRAME * batch * 2;
        p.woke(later);
        assert_eq!(sent(&mut p, later).len(), batch as usize);
        assert!(
            p.send_now(later + FRAME * batch),
            "a batch is due: new audio goes at once"
        );
    }

    #[test]
    fn a_stream_that_keeps_the_carrier_topped_up_goes_out_in_batches() {
        // After a burst the carrier holds the lead; agent audio then comes at real time, 60 ms at a time
        // (an echo of caller audio sent in 60 ms chunks). Without batches each frame would cost a wake-up
        // and a write of its own.
        let t0 = Instant::now();
        let mut p = playout(t0);
        p.push(&[0; 160 * 6]);
        let mut wake = None;
        let (mut writes, mut frames) = (0, 0);
        for ms_now in 0..=1200u64 {
            let now = t0 + ms(ms_now);
            let arrived = ms_now % 60 == 0;
            if arrived {
                p.push(&[0; 160 * 3]);
            }
            let woke = wake.is_some_and(|w| w <= now);
            if woke {
                p.woke(now);
            }
            if woke || (arrived && p.send_now(now)) {
                p.cancel_wake();
                let n = sent(&mut p, now).len();
                frames += n;
                writes += usize::from(n > 0);
                wake = match p.after_pump(now) {
                    AfterPump::WakeAt(w) => Some(w),
                    AfterPump::Drained => None,
                };
            }
        }
        assert!(frames >= 60, "the stream keeps its pace: {frames} frames in 1.2 s");
        assert!(
            writes * 3 <= frames * 2,
            "at most two writes per three frames: {writes} writes for {frames} frames"
        );
    }

    #[test]
    fn a_partial_frame_waits_one_period_for_the_rest_of_its_utterance() {
        let t0 = Instant::now();
        let mut p = playout(t0);
        p.push(&[0; 100]);
        assert!(sent(&mut p, t0).is_empty(), "not a whole frame");
        assert_eq!(p.after_pump(t0), AfterPump::WakeAt(t0 + FRAME));
        p.woke(t0 + ms(10));
        assert!(sent(&mut p, t0 + ms(10)).is_empty(), "still within the period");
        p.after_pump(t0 + ms(10));
        p.push(&[0; 60]);
        assert_eq!(sent(&mut p, t0 + ms(12)), vec![160], "the rest arrived: a whole frame");
        p.push(&[0; 40]);
        assert!(sent(&mut p, t0 + ms(13)).is_empty());
        let AfterPump::WakeAt(wake) = p.after_pump(t0 + ms(13)) else {
            panic!("the partial frame waits")
        };
        assert_eq!(wake, t0 + ms(33));
        p.woke(wake);
        assert_eq!(sent(&mut p, wake), vec![40], "nothing more came: the short frame goes");
    }

    #[test]
    fn a_wake_up_many_frames_late_is_a_resync() {
        let t0 = Instant::now();
        let mut p = playout(t0);
        p.push(&[0; 160 * 8]);
        sent(&mut p, t0);
        let AfterPump::WakeAt(wake) = p.after_pump(t0) else {
            panic!("audio waits")
        };
        let (_, late) = p.woke(wake + FRAME * (MAX_PACING_LAG_FRAMES + 1));
        assert!(late);
    }

    #[test]
    fn barge_in_drops_the_queue_and_restarts_the_clock() {
        let t0 = Instant::now();
        let mut p = playout(t0);
        p.push(&[0; 160 * 10]);
        sent(&mut p, t0);
        p.after_pump(t0);
        assert_eq!(p.clear(t0 + ms(1)), 160 * (10 - 1 - PACING_LEAD_FRAMES as usize));
        assert!(!p.waiting());
        assert_eq!(p.mark_end(), None, "nothing played after the barge-in is left to mark");
        p.push(&[0; 160 * 2]);
        assert_eq!(sent(&mut p, t0 + ms(2)).len(), 2, "the next utterance starts at once");
    }

    #[test]
    fn the_end_of_the_stream_is_marked_once_it_has_been_quiet() {
        let t0 = Instant::now();
        let mut p = playout(t0);
        p.push(&[0; 160]);
        sent(&mut p, t0);
        p.after_pump(t0);
        assert_eq!(p.quiet_mark(t0 + FRAME), None, "still playing");
        assert_eq!(p.quiet_mark(t0 + FRAME + CHECKPOINT_QUIET - ms(1)), None);
        let name = p.quiet_mark(t0 + FRAME + CHECKPOINT_QUIET).expect("marked");
        assert!(!p.done(), "the mark is awaited");
        assert_eq!(p.quiet_mark(t0 + ms(500)), None, "marked once");
        assert!(!p.played("cp-other"));
        assert!(p.played(&name));
        assert!(p.done());
    }
}
