//! The client side of SCRAM (RFC 5802) with SHA-1, SHA-256 (RFC 7677) and
//! SHA-512, each with or without channel binding (the `-PLUS` variants).
//!
//! Written here rather than taken from the `sasl` crate, which tokio-xmpp
//! uses: that crate has no SCRAM-SHA-512, no `tls-server-end-point` binding,
//! no SASLprep, and names the mechanism `-PLUS` whenever it is given binding
//! data, so it cannot run plain SCRAM on a TLS connection (we fell back to
//! PLAIN instead) and cannot say "I support channel binding" (`y`).
//!
//! Only SCRAM's message flow is written here: PBKDF2 (`Hi()`), HMAC, the
//! hashes, SASLprep and base64 come from maintained crates (RustCrypto
//! `pbkdf2`/`hmac`/`sha1`/`sha2`, `stringprep`, `base64`), and the RFC 5802
//! and RFC 7677 examples are its known-answer tests.
//!
//! Sans-IO: [`ScramClient`] turns the server's messages into ours; the
//! caller moves them over the XMPP stream (see `super::sasl`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// The hash function of a SCRAM mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum ScramHash {
    /// SCRAM-SHA-1 (RFC 5802).
    Sha1,
    /// SCRAM-SHA-256 (RFC 7677).
    Sha256,
    /// SCRAM-SHA-512 (IANA SASL registry; same construction).
    Sha512,
}

/// The most PBKDF2 iterations we compute for a server: a hostile server
/// could otherwise keep the client busy for hours. Servers use 4096 (RFC
/// 7677's minimum, ejabberd, Prosody 0.12) to about 100 000.
pub(crate) const MAX_ITERATIONS: u32 = 1_000_000;

impl ScramHash {
    /// The SASL mechanism name without `-PLUS`.
    pub(crate) fn mechanism(self) -> &'static str {
        match self {
            Self::Sha1 => "SCRAM-SHA-1",
            Self::Sha256 => "SCRAM-SHA-256",
            Self::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The `-PLUS` (channel binding) mechanism name.
    pub(crate) fn mechanism_plus(self) -> &'static str {
        match self {
            Self::Sha1 => "SCRAM-SHA-1-PLUS",
            Self::Sha256 => "SCRAM-SHA-256-PLUS",
            Self::Sha512 => "SCRAM-SHA-512-PLUS",
        }
    }

    fn hash(self, data: &[u8]) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(match self {
            Self::Sha1 => Sha1::digest(data).to_vec(),
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
        })
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Zeroizing<Vec<u8>> {
        match self {
            Self::Sha1 => hmac_with::<Hmac<Sha1>>(key, data),
            Self::Sha256 => hmac_with::<Hmac<Sha256>>(key, data),
            Self::Sha512 => hmac_with::<Hmac<Sha512>>(key, data),
        }
    }

    /// `Hi()` of RFC 5802: PBKDF2-HMAC with this hash, one output block
    /// (the hash's length), from the RustCrypto `pbkdf2` crate.
    fn hi(self, password: &[u8], salt: &[u8], iterations: u32) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(vec![0u8; self.output_len()]);
        match self {
            Self::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, &mut out),
            Self::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out),
            Self::Sha512 => pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out),
        }
        out
    }

    /// The hash's output length in bytes.
    fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }
}

fn keyed<M: Mac + KeyInit>(key: &[u8]) -> M {
    // HMAC takes keys of any length (long ones are hashed), so this never
    // fails; an empty key is the fallback that keeps the signature total.
    <M as KeyInit>::new_from_slice(key).unwrap_or_else(|_| <M as KeyInit>::new(&Default::default()))
}

fn hmac_with<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut mac = keyed::<M>(key);
    mac.update(data);
    Zeroizing::new(mac.finalize().into_bytes().to_vec())
}

/// A channel binding type (RFC 5056) that we can compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum CbType {
    /// RFC 9266: 32 bytes of TLS 1.3 keying material, label
    /// `EXPORTER-Channel-Binding`, no context.
    TlsExporter,
    /// RFC 5929: a hash of the server's end-entity certificate.
    TlsServerEndPoint,
}

impl CbType {
    /// The name in the gs2 header and in XEP-0440.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::TlsExporter => "tls-exporter",
            Self::TlsServerEndPoint => "tls-server-end-point",
        }
    }
}

/// What the gs2 header says about channel binding (RFC 5802, 7.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Gs2 {
    /// `n`: we do not bind (no TLS, or the server offered `-PLUS` but we
    /// cannot use its binding).
    NotSupported,
    /// `y`: we could bind, but the server offered no `-PLUS` mechanism (a
    /// server that does support binding then knows it was stripped).
    ServerLacksIt,
    /// `p=<type>`: bound to this channel with data we computed.
    Bound(CbType, Vec<u8>),
}

impl Gs2 {
    fn header(&self) -> String {
        match self {
            Self::NotSupported => "n,,".to_owned(),
            Self::ServerLacksIt => "y,,".to_owned(),
            Self::Bound(cb, _) => format!("p={},,", cb.name()),
        }
    }
}

/// Why a SCRAM exchange failed on our side (the server said nothing
/// wrong, or said it in the SCRAM `e=` attribute).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ScramError {
    /// The server's final message carried `e=<value>` (RFC 5802, 7).
    #[error("the server reported the SCRAM error {0}")]
    ServerError(String),
    /// A server message we cannot use.
    #[error("the server's SCRAM message is malformed ({0})")]
    Malformed(&'static str),
    /// The server's nonce does not extend ours.
    #[error("the server's SCRAM nonce does not extend ours")]
    NonceMismatch,
    /// More PBKDF2 iterations than [`MAX_ITERATIONS`], or none.
    #[error(
        "the server asks for {0} PBKDF2 iterations (this client accepts 1 to {MAX_ITERATIONS})"
    )]
    Iterations(u32),
    /// The server's signature is wrong: it does not know the password.
    #[error("the server's SCRAM signature is wrong")]
    ServerSignatureMismatch,
    /// The server reported success without proving that it knows the password.
    #[error("the server reported success without its SCRAM signature")]
    NoServerSignature,
    /// The username or password cannot be prepared (RFC 4013).
    #[error("the username cannot be prepared for SCRAM (SASLprep)")]
    Prep,
}

enum State {
    Initial,
    SentFinal {
        server_signature: Zeroizing<Vec<u8>>,
    },
    Done,
}

/// One SCRAM exchange, client side.
pub(crate) struct ScramClient {
    hash: ScramHash,
    gs2: Gs2,
    password: Zeroizing<String>,
    nonce: String,
    client_first_bare: String,
    state: State,
}

impl ScramClient {
    /// Starts an exchange for `username` (an XMPP localpart) with a fresh
    /// printable `nonce` (no commas).
    pub(crate) fn new(
        hash: ScramHash,
        username: &str,
        password: &str,
        gs2: Gs2,
        nonce: String,
    ) -> Result<Self, ScramError> {
        let username = stringprep::saslprep(username).map_err(|_| ScramError::Prep)?;
        // A password SASLprep refuses (control characters, ...) is used as
        // given: servers that do not prepare it (ejabberd uses resourceprep)
        // still accept it, and one that does refuses it either way.
        let password = Zeroizing::new(
            stringprep::saslprep(password)
                .map(|p| p.into_owned())
                .unwrap_or_else(|_| password.to_owned()),
        );
        let escaped = username.replace('=', "=3D").replace(',', "=2C");
        Ok(Self {
            hash,
            gs2,
            password,
            client_first_bare: format!("n={escaped},r={nonce}"),
            nonce,
            state: State::Initial,
        })
    }

    /// The mechanism name this exchange runs as.
    #[cfg(test)]
    fn mechanism(&self) -> &'static str {
        match self.gs2 {
            Gs2::Bound(..) => self.hash.mechanism_plus(),
            _ => self.hash.mechanism(),
        }
    }

    /// The client-first-message (the `<auth/>` payload).
    pub(crate) fn client_first(&self) -> Vec<u8> {
        format!("{}{}", self.gs2.header(), self.client_first_bare).into_bytes()
    }

    /// The client-final-message for the server-first-message.
    pub(crate) fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        if !matches!(self.state, State::Initial) {
            return Err(ScramError::Malformed("a second challenge"));
        }
        let text =
            std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let mut attrs = text.split(',');
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(ScramError::Malformed("no nonce first"))?;
        let salt = attrs
            .next()
            .and_then(|a| a.strip_prefix("s="))
            .ok_or(ScramError::Malformed("no salt"))?;
        let iterations = attrs
            .next()
            .and_then(|a| a.strip_prefix("i="))
            .ok_or(ScramError::Malformed("no iteration count"))?;
        // Further attributes are extensions; RFC 5802 has none mandatory here
        // (a mandatory one would come first, as `m=`, and fail above).
        if !nonce.starts_with(&self.nonce) || nonce.len() <= self.nonce.len() {
            return Err(ScramError::NonceMismatch);
        }
        if nonce.contains(|c: char| !c.is_ascii_graphic() || c == ',') {
            return Err(ScramError::Malformed("a nonce with unprintable characters"));
        }
        let salt = BASE64
            .decode(salt)
            .map_err(|_| ScramError::Malformed("the salt is not base64"))?;
        if salt.is_empty() {
            return Err(ScramError::Malformed("an empty salt"));
        }
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| ScramError::Malformed("the iteration count is not a number"))?;
        if iterations == 0 || iterations > MAX_ITERATIONS {
            return Err(ScramError::Iterations(iterations));
        }

        let mut channel_binding = self.gs2.header().into_bytes();
        if let Gs2::Bound(_, data) = &self.gs2 {
            channel_binding.extend_from_slice(data);
        }
        let without_proof = format!("c={},r={nonce}", BASE64.encode(&channel_binding));
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);

        let h = self.hash;
        let salted = h.hi(self.password.as_bytes(), &salt, iterations);
        let client_key = h.hmac(&salted, b"Client Key");
        let stored_key = h.hash(&client_key);
        let client_signature = h.hmac(&stored_key, auth_message.as_bytes());
        let proof: Zeroizing<Vec<u8>> = Zeroizing::new(
            client_key
                .iter()
                .zip(client_signature.iter())
                .map(|(k, s)| k ^ s)
                .collect(),
        );
        let server_key = h.hmac(&salted, b"Server Key");
        let server_signature = h.hmac(&server_key, auth_message.as_bytes());
        self.state = State::SentFinal { server_signature };
        Ok(format!("{without_proof},p={}", BASE64.encode(&*proof)).into_bytes())
    }

    /// Checks the server-final-message: the server proves it knows the
    /// password (or reports a SCRAM error).
    pub(crate) fn verify_server_final(&mut self, server_final: &[u8]) -> Result<(), ScramError> {
        let State::SentFinal { server_signature } = &self.state else {
            return Err(ScramError::Malformed(
                "a final message before the challenge",
            ));
        };
        let text =
            std::str::from_utf8(server_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let first = text.split(',').next().unwrap_or_default();
        if let Some(error) = first.strip_prefix("e=") {
            return Err(ScramError::ServerError(error.to_owned()));
        }
        let Some(signature) = first.strip_prefix("v=") else {
            return Err(ScramError::NoServerSignature);
        };
        let signature = BASE64
            .decode(signature)
            .map_err(|_| ScramError::Malformed("the server signature is not base64"))?;
        if bool::from(signature.ct_eq(server_signature)) {
            self.state = State::Done;
            Ok(())
        } else {
            Err(ScramError::ServerSignatureMismatch)
        }
    }

    /// Whether the next server message is the server-first-message.
    pub(crate) fn expects_server_first(&self) -> bool {
        matches!(self.state, State::Initial)
    }

    /// Whether the server has proven that it knows the password.
    pub(crate) fn server_verified(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

/// A fresh client nonce: 24 random bytes, base64 (printable, no commas).
pub(crate) fn new_nonce() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)?;
    Ok(BASE64.encode(bytes))
}

/// The `tls-server-end-point` channel binding (RFC 5929, 4.1) of a server's
/// end-entity certificate (DER): its hash with the hash function of its
/// signature algorithm, SHA-256 for MD5 and SHA-1. `None` for algorithms
/// RFC 5929 does not cover (Ed25519, Ed448) or a certificate we cannot read.
pub(crate) fn tls_server_end_point(certificate: &[u8]) -> Option<Vec<u8>> {
    let algorithm = signature_algorithm(certificate)?;
    let hash = end_point_hash(algorithm.oid, algorithm.params)?;
    Some(match hash {
        EndPointHash::Sha256 => Sha256::digest(certificate).to_vec(),
        EndPointHash::Sha384 => sha2::Sha384::digest(certificate).to_vec(),
        EndPointHash::Sha512 => Sha512::digest(certificate).to_vec(),
    })
}

enum EndPointHash {
    Sha256,
    Sha384,
    Sha512,
}

/// DER contents of the OIDs we map (without tag and length).
mod oid {
    pub(super) const MD5_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04];
    pub(super) const SHA1_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
    pub(super) const RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
    pub(super) const SHA256_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    pub(super) const SHA384_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
    pub(super) const SHA512_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
    pub(super) const SHA1_ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
    pub(super) const SHA256_ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    pub(super) const SHA384_ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    pub(super) const SHA512_ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
    pub(super) const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
    pub(super) const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    pub(super) const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
    pub(super) const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
}

fn end_point_hash(algorithm: &[u8], params: &[u8]) -> Option<EndPointHash> {
    Some(match algorithm {
        oid::MD5_RSA | oid::SHA1_RSA | oid::SHA1_ECDSA | oid::SHA256_RSA | oid::SHA256_ECDSA => {
            EndPointHash::Sha256
        }
        oid::SHA384_RSA | oid::SHA384_ECDSA => EndPointHash::Sha384,
        oid::SHA512_RSA | oid::SHA512_ECDSA => EndPointHash::Sha512,
        // RSASSA-PSS-params (RFC 4055): SEQUENCE { [0] hashAlgorithm
        // AlgorithmIdentifier DEFAULT sha1, ... }.
        oid::RSA_PSS => {
            let (tag, fields, _) = der(params)?;
            if tag != 0x30 {
                return None;
            }
            match der(fields) {
                Some((0xa0, explicit, _)) => {
                    let (tag, hash_algorithm, _) = der(explicit)?;
                    let (oid_tag, hash_oid, _) = der(hash_algorithm)?;
                    if tag != 0x30 || oid_tag != 0x06 {
                        return None;
                    }
                    match hash_oid {
                        oid::SHA1 | oid::SHA256 => EndPointHash::Sha256,
                        oid::SHA384 => EndPointHash::Sha384,
                        oid::SHA512 => EndPointHash::Sha512,
                        _ => return None,
                    }
                }
                // hashAlgorithm absent: SHA-1, which RFC 5929 replaces by SHA-256.
                _ => EndPointHash::Sha256,
            }
        }
        _ => return None,
    })
}

struct AlgorithmIdentifier<'a> {
    oid: &'a [u8],
    params: &'a [u8],
}

/// `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }`:
/// the signatureAlgorithm's OID and parameters (the rest of its SEQUENCE).
fn signature_algorithm(certificate: &[u8]) -> Option<AlgorithmIdentifier<'_>> {
    let (tag, certificate, _) = der(certificate)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, _tbs, rest) = der(certificate)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, algorithm, _) = der(rest)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, oid, params) = der(algorithm)?;
    (tag == 0x06).then_some(AlgorithmIdentifier { oid, params })
}

/// One DER element: (tag, contents, what follows). Single-byte tags and
/// definite lengths only, as DER requires for these structures.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        let length = bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b));
        (length, rest)
    };
    if rest.len() < length {
        return None;
    }
    let (contents, after) = rest.split_at(length);
    Some((tag, contents, after))
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "test code"
    )]

    use super::*;

    /// RFC 5802, section 5: user "user", password "pencil".
    #[test]
    fn rfc5802_sha1_example() {
        let mut scram = ScramClient::new(
            ScramHash::Sha1,
            "user",
            "pencil",
            Gs2::NotSupported,
            "fyko+d2lbbFgONRv9qkxdawL".to_owned(),
        )
        .unwrap();
        assert_eq!(scram.mechanism(), "SCRAM-SHA-1");
        assert_eq!(
            scram.client_first(),
            b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"
        );
        let last = scram
            .client_final(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
            .unwrap();
        assert_eq!(
            String::from_utf8(last).unwrap(),
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
        );
        assert!(!scram.server_verified());
        scram
            .verify_server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")
            .unwrap();
        assert!(scram.server_verified());
    }

    /// RFC 7677, section 3: user "user", password "pencil".
    #[test]
    fn rfc7677_sha256_example() {
        let mut scram = ScramClient::new(
            ScramHash::Sha256,
            "user",
            "pencil",
            Gs2::NotSupported,
            "rOprNGfwEbeRWgbNEkqO".to_owned(),
        )
        .unwrap();
        assert_eq!(scram.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let last = scram
            .client_final(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            )
            .unwrap();
        assert_eq!(
            String::from_utf8(last).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        scram
            .verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
    }

    /// The gs2 header and the channel binding data go into `c=` and the
    /// mechanism name follows the binding.
    #[test]
    fn channel_binding_goes_into_the_header_and_c() {
        let scram = ScramClient::new(
            ScramHash::Sha512,
            "user",
            "pencil",
            Gs2::Bound(CbType::TlsExporter, vec![1, 2, 3]),
            "abc".to_owned(),
        )
        .unwrap();
        assert_eq!(scram.mechanism(), "SCRAM-SHA-512-PLUS");
        assert_eq!(scram.client_first(), b"p=tls-exporter,,n=user,r=abc");
        let mut scram = scram;
        let last = scram
            .client_final(b"r=abcdef,s=QSXCR+Q6sek8bf92,i=1")
            .unwrap();
        let expected_c = BASE64.encode(b"p=tls-exporter,,\x01\x02\x03");
        assert!(
            String::from_utf8(last)
                .unwrap()
                .starts_with(&format!("c={expected_c},r=abcdef,p="))
        );

        let yes = ScramClient::new(
            ScramHash::Sha1,
            "u",
            "p",
            Gs2::ServerLacksIt,
            "n".to_owned(),
        )
        .unwrap();
        assert_eq!(yes.mechanism(), "SCRAM-SHA-1");
        assert_eq!(yes.client_first(), b"y,,n=u,r=n");
        let end_point = ScramClient::new(
            ScramHash::Sha256,
            "u",
            "p",
            Gs2::Bound(CbType::TlsServerEndPoint, vec![9]),
            "n".to_owned(),
        )
        .unwrap();
        assert_eq!(end_point.client_first(), b"p=tls-server-end-point,,n=u,r=n");
    }

    #[test]
    fn usernames_are_escaped() {
        let scram = ScramClient::new(
            ScramHash::Sha1,
            "a=b,c",
            "p",
            Gs2::NotSupported,
            "n".to_owned(),
        )
        .unwrap();
        assert_eq!(scram.client_first(), b"n,,n=a=3Db=2Cc,r=n");
    }

    fn started() -> ScramClient {
        ScramClient::new(
            ScramHash::Sha1,
            "user",
            "pencil",
            Gs2::NotSupported,
            "abc".to_owned(),
        )
        .unwrap()
    }

    #[test]
    fn rejects_bad_server_first_messages() {
        for (message, error) in [
            (
                &b"s=QSXCR+Q6sek8bf92,r=abcd,i=4096"[..],
                ScramError::Malformed("no nonce first"),
            ),
            (
                b"m=ext,r=abcd,s=QSXCR+Q6sek8bf92,i=4096",
                ScramError::Malformed("no nonce first"),
            ),
            (
                b"r=xyz,s=QSXCR+Q6sek8bf92,i=4096",
                ScramError::NonceMismatch,
            ),
            (
                b"r=abc,s=QSXCR+Q6sek8bf92,i=4096",
                ScramError::NonceMismatch,
            ),
            (
                b"r=abcd,s=***,i=4096",
                ScramError::Malformed("the salt is not base64"),
            ),
            (b"r=abcd,s=,i=4096", ScramError::Malformed("an empty salt")),
            (b"r=abcd,s=QSXCR+Q6sek8bf92,i=0", ScramError::Iterations(0)),
            (
                b"r=abcd,s=QSXCR+Q6sek8bf92,i=4000000000",
                ScramError::Iterations(4_000_000_000),
            ),
            (
                b"r=abcd,s=QSXCR+Q6sek8bf92",
                ScramError::Malformed("no iteration count"),
            ),
        ] {
            assert_eq!(
                started().client_final(message),
                Err(error),
                "{}",
                String::from_utf8_lossy(message)
            );
        }
    }

    #[test]
    fn the_server_must_prove_it_knows_the_password() {
        let mut scram = started();
        scram
            .client_final(b"r=abcd,s=QSXCR+Q6sek8bf92,i=1")
            .unwrap();
        assert_eq!(
            scram.verify_server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ="),
            Err(ScramError::ServerSignatureMismatch)
        );
        assert_eq!(
            scram.verify_server_final(b""),
            Err(ScramError::NoServerSignature)
        );
        assert_eq!(
            scram.verify_server_final(b"e=channel-bindings-dont-match"),
            Err(ScramError::ServerError(
                "channel-bindings-dont-match".to_owned()
            ))
        );
        assert!(!scram.server_verified());
    }

    /// A P-256 certificate (ecdsa-with-SHA256) made by `openssl req -x509`;
    /// its SHA-256, as `openssl x509 -outform der | sha256sum` prints it.
    const ECDSA_SHA256_CERT: &str = include_str!("testdata/ecdsa-sha256.der.b64");
    const ECDSA_SHA256_CERT_SHA256: &str = include_str!("testdata/ecdsa-sha256.sha256");
    /// An RSA certificate signed with sha384WithRSAEncryption.
    const RSA_SHA384_CERT: &str = include_str!("testdata/rsa-sha384.der.b64");
    const RSA_SHA384_CERT_SHA384: &str = include_str!("testdata/rsa-sha384.sha384");
    /// An RSASSA-PSS certificate whose parameters name SHA-512.
    const RSA_PSS_SHA512_CERT: &str = include_str!("testdata/rsa-pss-sha512.der.b64");
    const RSA_PSS_SHA512_CERT_SHA512: &str = include_str!("testdata/rsa-pss-sha512.sha512");
    /// An Ed25519 certificate: RFC 5929 defines no binding for it.
    const ED25519_CERT: &str = include_str!("testdata/ed25519.der.b64");

    fn der_of(b64: &str) -> Vec<u8> {
        BASE64
            .decode(b64.split_whitespace().collect::<String>())
            .unwrap()
    }

    #[test]
    fn tls_server_end_point_hashes_with_the_signature_hash() {
        let cert = der_of(ECDSA_SHA256_CERT);
        assert_eq!(
            hex(&tls_server_end_point(&cert).unwrap()),
            ECDSA_SHA256_CERT_SHA256.split_whitespace().next().unwrap()
        );
        let cert = der_of(RSA_SHA384_CERT);
        let hash = tls_server_end_point(&cert).unwrap();
        assert_eq!(hash.len(), 48);
        assert_eq!(
            hex(&hash),
            RSA_SHA384_CERT_SHA384.split_whitespace().next().unwrap()
        );
        let cert = der_of(RSA_PSS_SHA512_CERT);
        assert_eq!(
            hex(&tls_server_end_point(&cert).unwrap()),
            RSA_PSS_SHA512_CERT_SHA512
                .split_whitespace()
                .next()
                .unwrap()
        );
        assert_eq!(tls_server_end_point(&der_of(ED25519_CERT)), None);
        assert_eq!(tls_server_end_point(b"\x30\x03\x02\x01\x00"), None);
        assert_eq!(tls_server_end_point(b""), None);
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
