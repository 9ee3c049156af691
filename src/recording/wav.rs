//! The WAV files recordings are: stereo PCM16 little-endian, a 44-byte header. A recording is written
//! with a header that claims no length, and given its lengths when it closes; one cut short by a crash is
//! given them on the next start (`repair`), so every file on disk plays.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

pub const HEADER_BYTES: u64 = 44;
const CHANNELS: u16 = 2;
const BYTES_PER_SAMPLE: u16 = 2;
/// One sample of each channel.
pub const BLOCK: u64 = (CHANNELS * BYTES_PER_SAMPLE) as u64;

/// The header of a stereo PCM16 file at `rate` holding `data` bytes of samples.
pub fn header(rate: u32, data: u32) -> [u8; HEADER_BYTES as usize] {
    let mut h = [0u8; HEADER_BYTES as usize];
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        h[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(b"RIFF");
    put(&(36u32.saturating_add(data)).to_le_bytes());
    put(b"WAVEfmt ");
    put(&16u32.to_le_bytes());
    put(&1u16.to_le_bytes());
    put(&CHANNELS.to_le_bytes());
    put(&rate.to_le_bytes());
    put(&(rate * u32::from(CHANNELS * BYTES_PER_SAMPLE)).to_le_bytes());
    put(&(CHANNELS * BYTES_PER_SAMPLE).to_le_bytes());
    put(&(BYTES_PER_SAMPLE * 8).to_le_bytes());
    put(b"data");
    put(&data.to_le_bytes());
    h
}

/// Writes the lengths `data` bytes of samples give into the header of `file` (left where it was).
pub fn set_lengths(file: &mut File, data: u64) -> std::io::Result<()> {
    let data = u32::try_from(data).unwrap_or(u32::MAX);
    let here = file.stream_position()?;
    file.seek(SeekFrom::Start(4))?;
    file.write_all(&36u32.saturating_add(data).to_le_bytes())?;
    file.seek(SeekFrom::Start(40))?;
    file.write_all(&data.to_le_bytes())?;
    file.seek(SeekFrom::Start(here))?;
    Ok(())
}

/// The rate and the sample bytes a header says, if it is one of ours.
pub fn read_header(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < HEADER_BYTES as usize || &bytes[0..4] != b"RIFF" || &bytes[8..16] != b"WAVEfmt " {
        return None;
    }
    if &bytes[36..40] != b"data" {
        return None;
    }
    let word = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    Some((word(24), word(40)))
}

/// Gives a recording cut short (by a crash: its header claims no length, or another than it has) the
/// lengths of the whole samples it holds. `Ok(true)` when it was repaired, `Ok(false)` when it was right
/// or is not one of ours.
pub fn repair(path: &Path) -> std::io::Result<bool> {
    let mut file = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
    let mut head = [0u8; HEADER_BYTES as usize];
    if file.read_exact(&mut head).is_err() {
        return Ok(false);
    }
    let Some((_, claimed)) = read_header(&head) else {
        return Ok(false);
    };
    let len = file.metadata()?.len();
    let data = (len - HEADER_BYTES) / BLOCK * BLOCK;
    if u64::from(claimed) == data {
        return Ok(false);
    }
    set_lengths(&mut file, data)?;
    file.set_len(HEADER_BYTES + data)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_cut_short_is_given_its_lengths() {
        let dir = std::env::temp_dir().join(format!("wsapi-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("cut.wav");
        let mut f = File::create(&path).expect("file");
        f.write_all(&header(8000, u32::MAX)).expect("header");
        f.write_all(&[1u8; 4 * 100 + 3]).expect("samples and a torn one");
        drop(f);
        assert!(repair(&path).expect("repairs"));
        let bytes = std::fs::read(&path).expect("read");
        assert_eq!(bytes.len(), 44 + 400, "the torn sample is cut off");
        assert_eq!(read_header(&bytes), Some((8000, 400)));
        assert_eq!(u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]), 436);
        assert!(!repair(&path).expect("reads"), "a right one is left alone");
        std::fs::write(
            dir.join("other.wav"),
            b"not a wav at all, nothing to see here, move along",
        )
        .expect("write");
        assert!(!repair(&dir.join("other.wav")).expect("reads"), "not ours");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
