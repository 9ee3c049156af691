//! Certificate authorities made at test time (rcgen), the certificates they issue, and clients that trust
//! them: for the TLS tests of both legs.
#![allow(dead_code)]

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use std::path::Path;
use websocket_api::tools::sim::agent::TlsFiles;

/// A certificate authority made for one test.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa { cert, key }
    }

    /// A server certificate for `host`, valid until `not_after` (year), written with its key into `dir`.
    pub fn issue(&self, dir: &Path, host: &str, not_after: (i32, u8, u8)) -> TlsFiles {
        let mut params = CertificateParams::new(vec![host.to_string()]).expect("params");
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        self.sign_into(params, dir, &format!("{host}-{}", not_after.0))
    }

    /// A server certificate for this machine's loopback (`localhost` and `127.0.0.1`), valid for years,
    /// written with its key into `dir` under `name`.
    pub fn issue_for_loopback(&self, dir: &Path, name: &str) -> TlsFiles {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        self.sign_into(params, dir, name)
    }

    /// Signs `params` with a new key and writes both into `dir` as `name.pem` and `name.key`.
    fn sign_into(&self, params: CertificateParams, dir: &Path, name: &str) -> TlsFiles {
        let key = KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("server certificate");
        let (cert_path, key_path) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
        std::fs::write(&cert_path, cert.pem()).expect("write certificate");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        TlsFiles {
            cert: cert_path.display().to_string(),
            key: key_path.display().to_string(),
            host: "localhost".into(),
        }
    }

    /// The CA's certificate as `dir/ca.pem`.
    pub fn write(&self, dir: &Path) -> String {
        let path = dir.join("ca.pem");
        std::fs::write(&path, self.cert.pem()).expect("write CA");
        path.display().to_string()
    }
}

/// An HTTP and WebSocket client (HTTP/1.1) that trusts only the CA certificates in `ca_file`.
pub fn client_trusting(ca_file: &str) -> awc::Client {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca_file).expect("CA file") {
        roots.add(cert.expect("CA certificate")).expect("a CA rustls takes");
    }
    let mut tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = awc::Connector::new().rustls_0_23(std::sync::Arc::new(tls));
    awc::Client::builder()
        .connector(connector)
        .timeout(std::time::Duration::from_secs(10))
        .finish()
}
