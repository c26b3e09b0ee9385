//! TLS for the broker's HTTPS port.
//!
//! Production: a PEM certificate chain and key from files. Development
//! (`tls.self_signed = true`, and `hoop-broker dev`): a private CA, generated
//! on the first start and kept in the data dir (`DATA_DIR/ca.pem`, which
//! clients trust, and its key `DATA_DIR/ca.key`, mode 0600), so a restart
//! keeps the CA that hoopctl and open tunnels trust; at each start it signs a
//! fresh server certificate for `localhost`, the loopback addresses and the
//! listen host.
//! Only HTTP/1.1 is offered over ALPN: the tunnel is an HTTP/1.1 upgrade.
//!
//! Also the client side towards PostgreSQL servers ([`TlsSettings`]): the
//! proxy's upstream leg and the broker's own store and audit databases.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::config::UpstreamTls;

/// Errors building the TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or parsed.
    #[error("{path}: {what}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        what: String,
    },
    /// Certificate generation failed.
    #[error("generating the development certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate/key pair.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A generated development CA and server configuration.
pub struct GeneratedTls {
    /// PEM of the CA certificate that signs the server certificate.
    pub ca_pem: String,
    /// Server configuration with the signed certificate.
    pub server_config: Arc<ServerConfig>,
}

/// Installs the process-wide rustls crypto provider (ring). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Loads a certificate chain and private key from PEM files.
pub fn load(cert_file: &Path, key_file: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let file_err = |p: &Path, what: String| TlsError::File {
        path: p.display().to_string(),
        what,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| file_err(cert_file, format!("cannot read certificates: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(cert_file, format!("not a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(file_err(cert_file, "no certificate found".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| file_err(key_file, format!("not a PEM private key: {e}")))?;
    server_config(certs, key)
}

fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, TlsError> {
    install_crypto_provider();
    let mut cfg = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// File names of the kept development CA inside the data dir.
pub const DEV_CA_FILE: &str = "ca.pem";
/// The development CA's private key (mode 0600).
pub const DEV_CA_KEY_FILE: &str = "ca.key";

fn dev_ca_params() -> Result<CertificateParams, TlsError> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "hoop-broker development CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(ca_params)
}

/// The development CA kept in `data_dir` (created there on first use) and a
/// fresh server certificate it signs for `hosts` (see [`generate`]).
pub fn load_or_generate(data_dir: &Path, hosts: &[String]) -> Result<GeneratedTls, TlsError> {
    let key_path = data_dir.join(DEV_CA_KEY_FILE);
    let cert_path = data_dir.join(DEV_CA_FILE);
    let file_err = |p: &Path, what: String| TlsError::File {
        path: p.display().to_string(),
        what,
    };
    if key_path.exists() {
        let key_pem = hoop_shared::Secret::new(
            std::fs::read_to_string(&key_path)
                .map_err(|e| file_err(&key_path, format!("cannot read: {e}")))?,
        );
        let ca_key = KeyPair::from_pem(key_pem.expose())
            .map_err(|e| file_err(&key_path, format!("not a PEM private key: {e}")))?;
        let ca_pem = std::fs::read_to_string(&cert_path)
            .map_err(|e| file_err(&cert_path, format!("cannot read: {e}")))?;
        let ca_der = CertificateDer::from_pem_slice(ca_pem.as_bytes())
            .map_err(|e| file_err(&cert_path, format!("not a PEM certificate: {e}")))?;
        let issuer = Issuer::new(dev_ca_params()?, ca_key);
        return signed_server(hosts, &issuer, ca_der, ca_pem);
    }
    let ca_key = KeyPair::generate()?;
    let ca_cert = dev_ca_params()?.self_signed(&ca_key)?;
    let key_pem = hoop_shared::Secret::new(ca_key.serialize_pem());
    // The certificate first: a key without its certificate is never left behind.
    for (name, bytes) in [
        (DEV_CA_FILE, ca_cert.pem().into_bytes()),
        (DEV_CA_KEY_FILE, key_pem.expose().as_bytes().to_vec()),
    ] {
        hoop_shared::client_config::write_private_file(data_dir, name, &bytes)
            .map_err(|e| file_err(&data_dir.join(name), e.to_string()))?;
    }
    tracing::info!(path = %cert_path.display(), "generated the development CA");
    let issuer = Issuer::new(dev_ca_params()?, ca_key);
    signed_server(hosts, &issuer, ca_cert.der().clone(), ca_cert.pem())
}

/// Generates a development CA and a server certificate for `hosts` (DNS names
/// or IP addresses) plus `localhost`, `127.0.0.1` and `::1`.
pub fn generate(hosts: &[String]) -> Result<GeneratedTls, TlsError> {
    let ca_params = dev_ca_params()?;
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    signed_server(hosts, &issuer, ca_cert.der().clone(), ca_cert.pem())
}

fn signed_server(
    hosts: &[String],
    issuer: &Issuer<'_, KeyPair>,
    ca_der: CertificateDer<'static>,
    ca_pem: String,
) -> Result<GeneratedTls, TlsError> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    for h in hosts {
        if !names.contains(h) {
            names.push(h.clone());
        }
    }
    let mut leaf = CertificateParams::new(names)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "hoop-broker");
    leaf.use_authority_key_identifier_extension = true;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, issuer)?;

    let key = PrivateKeyDer::try_from(leaf_key.serialize_der()).map_err(|e| TlsError::File {
        path: "<generated>".into(),
        what: e.to_string(),
    })?;
    let chain = vec![leaf_cert.der().clone(), ca_der];
    Ok(GeneratedTls {
        ca_pem,
        server_config: server_config(chain, key)?,
    })
}

/// TLS settings of one connection's upstream leg, resolved at startup.
#[derive(Clone)]
pub struct TlsSettings {
    pub(crate) mode: UpstreamTls,
    pub(crate) client: Option<Arc<rustls::ClientConfig>>,
}

impl Default for TlsSettings {
    /// Plain TCP (what the broker's own throwaway servers use).
    fn default() -> Self {
        TlsSettings {
            mode: UpstreamTls::Disable,
            client: None,
        }
    }
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("mode", &self.mode)
            .finish()
    }
}

impl TlsSettings {
    /// Builds the settings for `mode`; `ca_file` (PEM) replaces the public web
    /// roots for `verify-full`. Errors name the file, never key material.
    pub fn new(mode: UpstreamTls, ca_file: Option<&Path>) -> Result<TlsSettings, String> {
        install_crypto_provider();
        let client = match mode {
            UpstreamTls::Disable => None,
            UpstreamTls::Prefer | UpstreamTls::Require => {
                let provider = rustls::crypto::ring::default_provider();
                let cfg = rustls::ClientConfig::builder()
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                    .with_no_client_auth();
                Some(Arc::new(cfg))
            }
            UpstreamTls::VerifyFull => {
                let mut roots = rustls::RootCertStore::empty();
                match ca_file {
                    Some(path) => {
                        let certs: Vec<CertificateDer<'static>> =
                            CertificateDer::pem_file_iter(path)
                                .and_then(|it| it.collect::<Result<_, _>>())
                                .map_err(|e| format!("tls_ca_file {}: {e}", path.display()))?;
                        let (added, _) = roots.add_parsable_certificates(certs);
                        if added == 0 {
                            return Err(format!(
                                "tls_ca_file {}: no usable CA certificate",
                                path.display()
                            ));
                        }
                    }
                    None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
                }
                Some(Arc::new(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(roots)
                        .with_no_client_auth(),
                ))
            }
        };
        Ok(TlsSettings { mode, client })
    }

    /// The mode.
    pub fn mode(&self) -> UpstreamTls {
        self.mode
    }

    /// The rustls client settings (`None` for plain TCP), for other
    /// PostgreSQL clients of the broker (`crate::store::pg_conn`).
    pub fn client_config(&self) -> Option<Arc<rustls::ClientConfig>> {
        self.client.clone()
    }
}

/// `prefer`/`require`: encryption without authentication of the server, as
/// libpq does for those modes. The handshake signature is still verified, so
/// the peer holds the key of the certificate it shows.
#[derive(Debug)]
struct AnyCertificate(rustls::crypto::CryptoProvider);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ca_is_pem_and_config_builds() {
        let g = generate(&["broker.internal".into()]).unwrap();
        assert!(g.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(g.server_config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    /// A restart on the same data dir keeps the CA (byte for byte), and the
    /// new server certificate chains to it; the key is owner-only.
    #[test]
    fn the_development_ca_is_kept_across_restarts() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_generate(dir.path(), &[]).unwrap();
        let second = load_or_generate(dir.path(), &["h".into()]).unwrap();
        assert_eq!(first.ca_pem, second.ca_pem);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(DEV_CA_FILE)).unwrap(),
            first.ca_pem
        );
        let mode = std::fs::metadata(dir.path().join(DEV_CA_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // The second start's leaf verifies against the first start's CA.
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(first.ca_pem.as_bytes()).unwrap())
            .unwrap();
        let client = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut c = rustls::ClientConnection::new(
            std::sync::Arc::new(client),
            "localhost".try_into().unwrap(),
        )
        .unwrap();
        let mut s = rustls::ServerConnection::new(second.server_config.clone()).unwrap();
        for _ in 0..4 {
            let mut buf = Vec::new();
            c.write_tls(&mut buf).unwrap();
            s.read_tls(&mut buf.as_slice()).unwrap();
            s.process_new_packets().unwrap();
            let mut buf = Vec::new();
            s.write_tls(&mut buf).unwrap();
            c.read_tls(&mut buf.as_slice()).unwrap();
            c.process_new_packets()
                .expect("the kept CA verifies the new certificate");
        }
        assert!(!c.is_handshaking());
    }

    #[test]
    fn missing_files_are_named_in_the_error() {
        let err = load(
            Path::new("/nonexistent/cert.pem"),
            Path::new("/nonexistent/key.pem"),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("/nonexistent/cert.pem"), "{err}");
    }
}
