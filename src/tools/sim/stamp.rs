//! Stamps inside load-test audio, so a delay is read where it happens: the load generator writes each
//! frame's number and send time into the frame's first bytes, and the echoing agent simulator writes when it
//! received it. Both run on one machine and read one wall clock; μ-law passes the gateway untouched, so the
//! stamps arrive as written (a transcoded run carries none, and reports none).
//!
//! Layout: `[0..4]` frame number (LE), `[4..8]` `MAGIC`, `[8..16]` sent (µs since the epoch, LE),
//! `[16..24]` received by the agent (0 until the simulator writes it).

use std::time::{SystemTime, UNIX_EPOCH};

pub const MAGIC: [u8; 4] = *b"WSLT";
/// Bytes a stamp takes at the head of a frame.
pub const STAMP_LEN: usize = 24;

/// Microseconds since the epoch, now.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Writes frame `seq`'s stamp, sent at `sent_us`, into its head (a frame shorter than a stamp carries only
/// what fits of its number).
pub fn write(frame: &mut [u8], seq: u32, sent_us: u64) {
    let mut stamp = [0u8; STAMP_LEN];
    stamp[..4].copy_from_slice(&seq.to_le_bytes());
    stamp[4..8].copy_from_slice(&MAGIC);
    stamp[8..16].copy_from_slice(&sent_us.to_le_bytes());
    let n = frame.len().min(STAMP_LEN);
    frame[..n].copy_from_slice(&stamp[..n]);
}

/// What a frame's head says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub seq: u32,
    pub sent_us: u64,
    /// When the agent received it, if the agent wrote that.
    pub agent_us: Option<u64>,
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)?.try_into().ok().map(u64::from_le_bytes)
}

/// Reads the stamp at the head of `frame`, if it carries one.
pub fn read(frame: &[u8]) -> Option<Stamp> {
    if frame.get(4..8)? != MAGIC {
        return None;
    }
    let seq = u32::from_le_bytes(frame.get(..4)?.try_into().ok()?);
    let agent_us = u64_at(frame, 16).filter(|&t| t != 0);
    Some(Stamp {
        seq,
        sent_us: u64_at(frame, 8)?,
        agent_us,
    })
}

/// Writes `at_us` as the agent's receive time into every stamp in `audio` (one chunk may join several
/// frames); returns how many it found.
pub fn mark_received(audio: &mut [u8], at_us: u64) -> usize {
    let mut found = 0;
    let mut i = 4;
    while i + STAMP_LEN - 4 <= audio.len() {
        if audio[i..i + 4] == MAGIC {
            audio[i + 12..i + 20].copy_from_slice(&at_us.to_le_bytes());
            found += 1;
            i += STAMP_LEN;
        } else {
            i += 1;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_read_back_and_marked_in_joined_frames() {
        let mut two = vec![0xD5u8; 320];
        write(&mut two[..160], 7, 1_000);
        write(&mut two[160..], 8, 1_020);
        assert_eq!(
            read(&two),
            Some(Stamp {
                seq: 7,
                sent_us: 1_000,
                agent_us: None
            })
        );
        assert_eq!(mark_received(&mut two, 5_000), 2);
        assert_eq!(read(&two[160..]).and_then(|s| s.agent_us), Some(5_000));
        assert_eq!(read(&two).map(|s| (s.seq, s.agent_us)), Some((7, Some(5_000))));
        assert_eq!(read(&[0xD5; 160]), None, "plain audio carries no stamp");
        assert_eq!(mark_received(&mut [0xD5; 10], 1), 0);
    }
}
