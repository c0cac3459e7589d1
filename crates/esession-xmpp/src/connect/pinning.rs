//! Issue 15: a server certificate pinned by its SHA-256, for a small server
//! with a self-signed certificate (rustls refuses a CA certificate as the
//! server's own, and a self-signed one has no CA to trust). The pin is the
//! whole identity: the certificate the server presents must be exactly the
//! pinned one; its name and dates are not consulted (the user chose this
//! certificate). The TLS handshake signatures are still verified with its
//! key, so only the holder of the private key passes.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio_xmpp::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_xmpp::rustls::crypto::WebPkiSupportedAlgorithms;
use tokio_xmpp::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_xmpp::rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error as TlsError, OtherError,
    SignatureScheme,
};

/// The presented certificate is not the pinned one; carries its SHA-256.
#[derive(Debug)]
pub(crate) struct PinMismatch {
    /// The SHA-256 of the certificate the server presented, lower-case hex.
    pub(crate) presented: String,
}

impl std::fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the server's certificate has SHA-256 {}", self.presented)
    }
}

impl std::error::Error for PinMismatch {}

#[derive(Debug)]
struct Pinned {
    sha256: [u8; 32],
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        let presented: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if bool::from(presented.ct_eq(&self.sha256)) {
            return Ok(ServerCertVerified::assertion());
        }
        Err(TlsError::InvalidCertificate(CertificateError::Other(
            OtherError(Arc::new(PinMismatch {
                presented: hex_of(&presented),
            })),
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        tokio_xmpp::rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        tokio_xmpp::rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TLS configuration that accepts exactly the certificate with `sha256`.
pub(crate) fn tls_config_pinned(sha256: [u8; 32]) -> ClientConfig {
    let provider = tokio_xmpp::rustls::crypto::aws_lc_rs::default_provider();
    let algorithms = provider.signature_verification_algorithms;
    ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map(|builder| {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(super::presented::Described {
                    inner: Arc::new(Pinned { sha256, algorithms }),
                }))
                .with_no_client_auth()
        })
        .unwrap_or_else(|_| {
            // The default provider supports the default versions; should that
            // ever change, a config that trusts nothing fails closed.
            ClientConfig::builder()
                .with_root_certificates(tokio_xmpp::rustls::RootCertStore::empty())
                .with_no_client_auth()
        })
}

/// The SHA-256 of the first certificate in a PEM file (what `--server-cert` pins).
pub fn certificate_sha256(pem_file: &std::path::Path) -> Result<[u8; 32], String> {
    use tokio_xmpp::rustls::pki_types::pem::PemObject as _;
    let first = CertificateDer::pem_file_iter(pem_file)
        .map_err(|e| format!("{} could not be read: {e}", pem_file.display()))?
        .next()
        .ok_or_else(|| format!("{} holds no PEM certificate", pem_file.display()))?
        .map_err(|e| format!("{} holds no readable certificate: {e}", pem_file.display()))?;
    Ok(Sha256::digest(first.as_ref()).into())
}

/// A SHA-256 pin typed by a person: 64 hex digits, colons and spaces ignored.
pub fn parse_pin(text: &str) -> Result<[u8; 32], String> {
    let digits: String = text.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
    let bytes: Vec<u8> = (0..digits.len())
        .step_by(2)
        .filter_map(|i| digits.get(i..i + 2))
        .filter_map(|pair| u8::from_str_radix(pair, 16).ok())
        .collect();
    match <[u8; 32]>::try_from(bytes) {
        Ok(pin) if digits.len() == 64 => Ok(pin),
        _ => Err(format!(
            "\"{text}\" is not a SHA-256 fingerprint: give its 64 hexadecimal digits (colons \
             may separate them), e.g. from `openssl x509 -in cert.pem -noout -fingerprint -sha256`"
        )),
    }
}

pub(crate) fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
