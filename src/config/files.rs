//! Files the configuration names (`server.tls_cert`/`tls_key`, `elevenlabs.ca_file`, `elevenlabs.hold_clip`):
//! read and checked once, at load, so a bad one is a configuration problem at start (exit 64), not a failure
//! on a call.

use super::sections::*;

impl Config {
    /// Files the configuration names, read once here so a bad one is a problem at start, not on a call.
    pub fn read_files(&mut self, problems: &mut Vec<String>) {
        match (&self.server.tls_cert, &self.server.tls_key) {
            (Some(cert), Some(key)) => {
                if let Err(e) = crate::tls::read_certified_key(cert, key) {
                    problems.push(format!("server.tls_cert / server.tls_key: {e}"));
                }
            }
            (None, None) => {}
            _ => problems.push("server.tls_cert and server.tls_key: give both (or neither)".into()),
        }
        let el = &mut self.elevenlabs;
        if let Some(path) = el.ca_file.as_deref() {
            match crate::tls::read_pem_certificates(path) {
                Ok(certs) => el.extra_roots = certs,
                Err(e) => problems.push(format!("elevenlabs.ca_file: {e}")),
            }
        }
        if let Some(path) = el.hold_clip.as_deref() {
            match read_wav(path) {
                Ok(clip) => el.hold_audio = Some(std::sync::Arc::new(clip)),
                Err(e) => problems.push(format!("elevenlabs.hold_clip: {e}")),
            }
        }
    }
}

/// Why a hold clip cannot be played; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error("cannot read '{0}' as WAV: {1}")]
    Unreadable(String, hound::Error),
    #[error("'{0}' must be 16-bit mono PCM (it is {1} channel(s), {2} bits)")]
    NotMonoPcm16(String, u16, u16),
    #[error("'{0}' is at {1} Hz; use one of {HOLD_CLIP_RATES:?}")]
    Rate(String, u32),
    #[error("'{0}' is longer than {MAX_HOLD_CLIP_SECONDS} s")]
    TooLong(String),
    #[error("'{0}' holds no audio")]
    Empty(String),
}

/// A WAV file of 16-bit mono PCM at a rate we bridge, at most `MAX_HOLD_CLIP_SECONDS` long.
fn read_wav(path: &str) -> Result<HoldClip, ClipError> {
    let unreadable = |e| ClipError::Unreadable(path.to_string(), e);
    let mut reader = hound::WavReader::open(path).map_err(unreadable)?;
    let spec = reader.spec();
    if spec.channels != 1 || spec.bits_per_sample != 16 || spec.sample_format != hound::SampleFormat::Int {
        return Err(ClipError::NotMonoPcm16(
            path.into(),
            spec.channels,
            spec.bits_per_sample,
        ));
    }
    if !HOLD_CLIP_RATES.contains(&spec.sample_rate) {
        return Err(ClipError::Rate(path.into(), spec.sample_rate));
    }
    if reader.duration() > spec.sample_rate * MAX_HOLD_CLIP_SECONDS {
        return Err(ClipError::TooLong(path.into()));
    }
    let mut pcm = Vec::with_capacity(reader.duration() as usize * 2);
    for s in reader.samples::<i16>() {
        pcm.extend_from_slice(&s.map_err(unreadable)?.to_le_bytes());
    }
    if pcm.is_empty() {
        return Err(ClipError::Empty(path.into()));
    }
    Ok(HoldClip {
        sample_rate: spec.sample_rate,
        pcm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn wav(path: &std::path::Path, spec: hound::WavSpec, samples: &[i16]) {
        let mut w = hound::WavWriter::create(path, spec).expect("create");
        for s in samples {
            w.write_sample(*s).expect("write");
        }
        w.finalize().expect("finalize");
    }

    #[test]
    fn a_hold_clip_must_be_mono_pcm16_at_a_bridged_rate() {
        let dir = std::env::temp_dir().join(format!("wsapi-clip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let good = dir.join("good.wav");
        wav(&good, spec, &[1000; 1600]);
        let clip = read_wav(good.to_str().expect("utf-8")).expect("readable");
        assert_eq!((clip.sample_rate, clip.pcm.len()), (16000, 3200));
        let stereo = dir.join("stereo.wav");
        wav(&stereo, hound::WavSpec { channels: 2, ..spec }, &[0; 16]);
        assert!(read_wav(stereo.to_str().expect("utf-8")).is_err());
        let odd_rate = dir.join("rate.wav");
        wav(
            &odd_rate,
            hound::WavSpec {
                sample_rate: 11025,
                ..spec
            },
            &[0; 16],
        );
        assert!(read_wav(odd_rate.to_str().expect("utf-8")).is_err());
        let empty = dir.join("empty.wav");
        wav(&empty, spec, &[]);
        assert!(read_wav(empty.to_str().expect("utf-8")).is_err());
    }

    #[test]
    fn the_agent_legs_files_and_bounds_are_checked_at_load() {
        let dir = std::env::temp_dir().join(format!("wsapi-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let not_pem = dir.join("not.pem");
        std::fs::write(&not_pem, "hello").expect("write");
        let text = format!(
            "[elevenlabs]\nca_file = \"{}\"\nhold_clip = \"/nonexistent/hold.wav\"\nmax_redials_per_call = 50\n\
             breaker_failures = 0\nresume_context_bytes = 10\nmcp_approval = \"maybe\"\n",
            not_pem.display()
        );
        let err = Config::from_parts(&text, &env(&[])).expect_err("refused");
        assert!(
            err.0.iter().any(|p| p.contains("mcp_approval") || p.contains("maybe")),
            "{err:?}"
        );
        let text = text.replace("mcp_approval = \"maybe\"\n", "");
        let err = Config::from_parts(&text, &env(&[])).expect_err("refused");
        for key in [
            "elevenlabs.ca_file",
            "elevenlabs.hold_clip",
            "elevenlabs.max_redials_per_call",
            "elevenlabs.breaker_failures",
            "elevenlabs.resume_context_bytes",
        ] {
            assert!(err.0.iter().any(|p| p.starts_with(key)), "{key} missing from {err:?}");
        }
    }

    #[test]
    fn the_listeners_certificate_is_checked_at_load() {
        let dir = std::env::temp_dir().join(format!("wsapi-files-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["gw.example".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let (c, k, other) = (dir.join("gw.pem"), dir.join("gw.key"), dir.join("other.key"));
        std::fs::write(&c, cert.pem()).expect("write");
        std::fs::write(&k, key.serialize_pem()).expect("write");
        std::fs::write(&other, rcgen::KeyPair::generate().expect("key").serialize_pem()).expect("write");
        let with = |cert: &std::path::Path, key: Option<&std::path::Path>| {
            let mut text = format!("[server]\ntls_cert = \"{}\"\n", cert.display());
            if let Some(key) = key {
                text.push_str(&format!("tls_key = \"{}\"\n", key.display()));
            }
            Config::from_parts(&text, &env(&[]))
        };
        assert!(with(&c, Some(&k)).is_ok());
        let problems = |r: Result<Config, ConfigProblems>| r.expect_err("refused").0.join("\n");
        assert!(problems(with(&c, None)).contains("give both"));
        assert!(problems(with(&c, Some(&other))).contains("is not the key of the certificate"));
        assert!(problems(with(&k, Some(&k))).contains("holds no certificate"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
