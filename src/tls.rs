//! The carrier listener's own TLS (`server.tls_cert`, `server.tls_key`), for operators who run no proxy: the
//! certificate chain and key are read from PEM files, and read again on SIGHUP (a renewal writes new files
//! under the same names). New handshakes get the new certificate; connections already up keep theirs, so
//! live calls are not dropped. A reload that cannot read the files keeps the certificate in use.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// Why a certificate or key cannot be served; each names its file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read '{path}': {why}")]
    Unreadable { path: String, why: String },
    #[error("'{path}' is not PEM: {why}")]
    NotPem { path: String, why: String },
    #[error("'{path}' holds no certificate")]
    NoCertificate { path: String },
    #[error("cannot read a private key from '{path}': {why}")]
    NoKey { path: String, why: String },
    #[error("'{path}' is not a key rustls can sign with: {why}")]
    Unusable { path: String, why: String },
    #[error("'{key}' is not the key of the certificate in '{cert}': {why}")]
    Mismatch { cert: String, key: String, why: String },
}

/// A certificate that can be swapped while the listener runs.
#[derive(Debug)]
pub struct ReloadableCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCert {
    /// Reads the chain and key; an error names the file and what is wrong with it.
    pub fn load(cert_path: &str, key_path: &str) -> Result<Arc<ReloadableCert>, TlsError> {
        let current = read_certified_key(cert_path, key_path)?;
        Ok(Arc::new(ReloadableCert {
            cert_path: cert_path.into(),
            key_path: key_path.into(),
            current: RwLock::new(Arc::new(current)),
        }))
    }

    /// Reads the files again and serves what they hold from the next handshake on; on error the
    /// certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let cert = self.cert_path.display().to_string();
        let fresh = Arc::new(read_certified_key(&cert, &self.key_path.display().to_string())?);
        match self.current.write() {
            Ok(mut current) => *current = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }

    /// A rustls server configuration that asks this certificate at every handshake.
    pub fn server_config(self: &Arc<Self>) -> rustls::ServerConfig {
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(self.clone())
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = match self.current.read() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        Some(current.clone())
    }
}

/// Every certificate of a PEM file (this listener's chain, `elevenlabs.ca_file`'s roots); a file with none
/// is an error.
pub fn read_pem_certificates(path: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let at = |why: &dyn std::fmt::Display| (path.to_string(), why.to_string());
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| {
            let (path, why) = at(&e);
            TlsError::Unreadable { path, why }
        })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            let (path, why) = at(&e);
            TlsError::NotPem { path, why }
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: path.into() });
    }
    Ok(certs)
}

/// A PEM chain (leaf first) and its PEM private key, checked to belong together.
pub fn read_certified_key(cert_path: &str, key_path: &str) -> Result<CertifiedKey, TlsError> {
    let certs = read_pem_certificates(cert_path)?;
    let path = key_path.to_string();
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| TlsError::NoKey {
        path: path.clone(),
        why: e.to_string(),
    })?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| TlsError::Unusable {
        path: path.clone(),
        why: e.to_string(),
    })?;
    let certified = CertifiedKey::new(certs, signing);
    certified.keys_match().map_err(|e| TlsError::Mismatch {
        cert: cert_path.into(),
        key: path,
        why: e.to_string(),
    })?;
    Ok(certified)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &std::path::Path, name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let (c, k) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
        std::fs::write(&c, cert.pem()).expect("write cert");
        std::fs::write(&k, key.serialize_pem()).expect("write key");
        (c.display().to_string(), k.display().to_string())
    }

    #[test]
    fn a_pair_is_read_checked_and_swapped_and_a_bad_reload_keeps_the_old_one() {
        let dir = std::env::temp_dir().join(format!("wsapi-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (a_cert, a_key) = write_pair(&dir, "a.example");
        let (b_cert, b_key) = write_pair(&dir, "b.example");
        let mismatched = read_certified_key(&a_cert, &b_key)
            .expect_err("keys differ")
            .to_string();
        assert!(mismatched.contains("is not the key of the certificate"), "{mismatched}");
        assert!(read_certified_key(&a_key, &a_key)
            .expect_err("no cert")
            .to_string()
            .contains("no certificate"));
        let cert = ReloadableCert::load(&a_cert, &a_key).expect("loads");
        let leaf = |c: &ReloadableCert| c.current.read().expect("lock").cert[0].clone();
        let first = leaf(&cert);
        std::fs::copy(&b_cert, &a_cert).expect("renew cert");
        std::fs::copy(&b_key, &a_key).expect("renew key");
        cert.reload().expect("reloads");
        assert_ne!(leaf(&cert), first, "the renewed certificate is served");
        let renewed = leaf(&cert);
        std::fs::write(&a_key, "not a key").expect("break key");
        assert!(cert.reload().is_err());
        assert_eq!(leaf(&cert), renewed, "a bad reload keeps the certificate in use");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
