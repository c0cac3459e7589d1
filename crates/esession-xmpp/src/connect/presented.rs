//! Issue 15: which certificate failed. rustls says why a server certificate
//! was refused, not which one it was; a user deciding whether to pin it, or
//! reporting it to the server's administrator, needs its subject and its
//! SHA-256. [`Described`] wraps the verifier that decides (webpki with our
//! roots, or the pin) and attaches both to its refusal; it never turns a
//! refusal into an acceptance, and passes everything else through.

use std::fmt::Write as _;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio_xmpp::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_xmpp::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_xmpp::rustls::{
    CertificateError, DigitallySignedStruct, Error as TlsError, OtherError, SignatureScheme,
};
use x509_cert::Certificate;
use x509_cert::der::Decode as _;

use super::pinning::hex_of;

/// The most characters of a certificate's subject we show.
const MAX_SUBJECT_CHARS: usize = 200;

/// The certificate a server presented, as a person identifies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentedCertificate {
    /// Its subject's distinguished name as RFC 4514 writes it (e.g.
    /// `CN=localhost,O=Example`), or `None` if it could not be decoded.
    /// Whoever presented the certificate chose it, unauthenticated: every
    /// character outside printable ASCII is shown escaped (`\u{202e}`), so
    /// that control, direction and look-alike characters cannot disguise
    /// the message, and it is cut at 200 characters.
    pub subject: Option<String>,
    /// Its SHA-256 over the DER encoding, lower-case hex: what `--pin` takes
    /// and `openssl x509 -noout -fingerprint -sha256` prints.
    pub sha256: String,
}

impl PresentedCertificate {
    /// Reads the subject and fingerprint of a DER certificate. Hostile input:
    /// a certificate that does not decode still has a fingerprint.
    pub fn of(der: &[u8]) -> Self {
        let subject = Certificate::from_der(der).ok().and_then(|certificate| {
            let mut text = String::new();
            write!(text, "{}", certificate.tbs_certificate().subject()).ok()?;
            Some(printable(&text))
        });
        Self {
            subject,
            sha256: hex_of(&Sha256::digest(der)),
        }
    }
}

/// `text` with everything outside printable ASCII escaped, at most
/// [`MAX_SUBJECT_CHARS`] characters.
fn printable(text: &str) -> String {
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == MAX_SUBJECT_CHARS {
            out.push_str("...");
            break;
        }
        if c == ' ' || c.is_ascii_graphic() {
            out.push(c);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
    out
}

impl core::fmt::Display for PresentedCertificate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The fingerprint first: it is ours, the subject is the server's claim.
        match &self.subject {
            Some(subject) if !subject.is_empty() => {
                write!(f, "SHA-256 {}, claiming subject {subject}", self.sha256)
            }
            _ => write!(f, "SHA-256 {}, no readable subject", self.sha256),
        }
    }
}

/// A verifier's refusal, with the certificate it refused.
#[derive(Debug)]
pub(crate) struct Refused {
    /// What the deciding verifier said.
    pub(crate) problem: CertificateError,
    /// The server's own certificate.
    pub(crate) certificate: PresentedCertificate,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.problem, self.certificate)
    }
}

impl std::error::Error for Refused {}

/// Wraps the verifier that decides; see the module documentation.
#[derive(Debug)]
pub(crate) struct Described {
    pub(crate) inner: Arc<dyn ServerCertVerifier>,
}

impl ServerCertVerifier for Described {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|error| match error {
                TlsError::InvalidCertificate(problem) => TlsError::InvalidCertificate(
                    CertificateError::Other(OtherError(Arc::new(Refused {
                        problem,
                        certificate: PresentedCertificate::of(end_entity.as_ref()),
                    }))),
                ),
                other => other,
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }

    fn root_hint_subjects(&self) -> Option<&[tokio_xmpp::rustls::DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that are no certificate still get a fingerprint (FIPS 180-2's
    /// SHA-256 example "abc") and no subject, and say so.
    #[test]
    fn an_undecodable_certificate_has_only_its_fingerprint() {
        let presented = PresentedCertificate::of(b"abc");
        assert_eq!(presented.subject, None);
        assert_eq!(
            presented.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            presented.to_string(),
            "SHA-256 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad, \
             no readable subject"
        );
    }

    /// A subject is the server's unauthenticated claim: control, direction
    /// and look-alike characters are shown escaped, and it is cut short.
    #[test]
    fn a_subject_cannot_disguise_the_message() {
        assert_eq!(
            printable("CN=a\u{202e}b\u{201a} SHA-256 00\u{1b}[2J\u{85}"),
            "CN=a\\u{202e}b\\u{201a} SHA-256 00\\u{1b}[2J\\u{85}"
        );
        let long = "x".repeat(500);
        assert_eq!(
            printable(&long),
            format!("{}...", "x".repeat(MAX_SUBJECT_CHARS))
        );
        assert_eq!(
            printable("CN=localhost,O=Example"),
            "CN=localhost,O=Example"
        );
    }
}
