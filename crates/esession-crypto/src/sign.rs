//! Identity signatures of XEP-0116 (ESN-20, ESN-55, AMB-18, AMB-19).
//!
//! The signed message is the raw identity MAC (mac_A or mac_B): RSASSA-PKCS1-v1_5
//! with SHA-256 over those bytes for `#rsa-sha256`, and DSA with SHA-256 (digest
//! truncated to |q| bits, signature r|s each padded to |q| octets) for `#dsa-sha256`.
//!
//! RSA uses aws-lc-rs (constant-time, FIPS-validated AWS-LC; no open advisory),
//! not the `rsa` crate, whose RUSTSEC-2023-0071 (Marvin) advisory lists no
//! patched version. DSA uses RustCrypto's `dsa`, the only maintained Rust DSA;
//! it verifies over crypto-bigint and signs with RFC 6979 nonces.

use core::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256};
use crypto_bigint::BoxedUint;
use dsa::signature::{Signer, Verifier};
use rand_core::CryptoRng;

use crate::{CryptoError, SecretBytes, encoding::mpi};

pub use esession_algorithms::{DSA_SHA256_URI, RSA_SHA256_URI, SignatureAlgorithm};

/// Largest RSA modulus we accept from a peer, in bits.
pub const MAX_RSA_BITS: usize = 8192;

/// The numbers of a public key, big-endian without leading zeros (the XML-DSig
/// `<KeyValue/>` content, ESN-55).
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum KeyComponents {
    /// RSA modulus and public exponent.
    Rsa {
        /// n.
        modulus: Vec<u8>,
        /// e.
        exponent: Vec<u8>,
    },
    /// DSA domain parameters and public value.
    Dsa {
        /// p.
        p: Vec<u8>,
        /// q.
        q: Vec<u8>,
        /// g.
        g: Vec<u8>,
        /// y.
        y: Vec<u8>,
    },
}

/// A peer's public signing key.
#[derive(Clone)]
pub struct VerifyingKey {
    components: KeyComponents,
    dsa: Option<dsa::VerifyingKey>,
}

impl VerifyingKey {
    /// An RSA key from its modulus and exponent. Moduli of 2048 to 8192 bits.
    pub fn rsa(modulus: &[u8], exponent: &[u8]) -> Result<Self, CryptoError> {
        let (n, e) = (mpi(modulus), mpi(exponent));
        let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
        if !(2048..=MAX_RSA_BITS).contains(&bits) || e.is_empty() || e.len() > 8 {
            return Err(CryptoError::InvalidKey);
        }
        Ok(Self {
            components: KeyComponents::Rsa {
                modulus: n.to_vec(),
                exponent: e.to_vec(),
            },
            dsa: None,
        })
    }

    /// A DSA key from p, q, g, y. Sizes (L, N) = (1024, 160), (2048, 224),
    /// (2048, 256) or (3072, 256); y must lie in the order-q subgroup.
    pub fn dsa(p: &[u8], q: &[u8], g: &[u8], y: &[u8]) -> Result<Self, CryptoError> {
        let (p, q, g, y) = (mpi(p), mpi(q), mpi(g), mpi(y));
        if p.len() > 384 || q.len() > 32 || g.len() > p.len() || y.len() > p.len() {
            return Err(CryptoError::InvalidKey);
        }
        let big = |bytes: &[u8], bits: usize| {
            BoxedUint::from_be_slice(bytes, (bits * 8) as u32).map_err(|_| CryptoError::InvalidKey)
        };
        let components =
            dsa::Components::from_components(big(p, p.len())?, big(q, q.len())?, big(g, p.len())?)
                .map_err(|_| CryptoError::InvalidKey)?;
        let key = dsa::VerifyingKey::from_components(components, big(y, p.len())?)
            .map_err(|_| CryptoError::InvalidKey)?;
        Ok(Self {
            components: KeyComponents::Dsa {
                p: p.to_vec(),
                q: q.to_vec(),
                g: g.to_vec(),
                y: y.to_vec(),
            },
            dsa: Some(key),
        })
    }

    /// A public key from a PEM `PUBLIC KEY` block (an RFC 5280
    /// SubjectPublicKeyInfo, as `openssl pkey -pubout` writes): RSA or DSA,
    /// with the same bounds as [`Self::rsa`] and [`Self::dsa`].
    pub fn from_public_key_pem(pem: &str) -> Result<Self, CryptoError> {
        use spki::DecodePublicKey as _;
        let der = spki::Document::from_public_key_pem(pem).map_err(|_| CryptoError::InvalidKey)?;
        let info = spki::SubjectPublicKeyInfoRef::try_from(der.as_bytes())
            .map_err(|_| CryptoError::InvalidKey)?;
        const RSA: spki::ObjectIdentifier =
            spki::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
        const DSA: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.2.840.10040.4.1");
        match info.algorithm.oid {
            RSA => {
                let key = aws_lc_rs::rsa::PublicKey::from_der(der.as_bytes())
                    .map_err(|_| CryptoError::InvalidKey)?;
                Self::rsa(
                    key.modulus().big_endian_without_leading_zero(),
                    key.exponent().big_endian_without_leading_zero(),
                )
            }
            DSA => {
                let key = dsa::VerifyingKey::try_from(info).map_err(|_| CryptoError::InvalidKey)?;
                let bytes = |n: &BoxedUint| n.to_be_bytes().to_vec();
                let c = key.components();
                Self::dsa(
                    &bytes(c.p().as_ref()),
                    &bytes(c.q().as_ref()),
                    &bytes(c.g().as_ref()),
                    &bytes(key.y().as_ref()),
                )
            }
            _ => Err(CryptoError::InvalidKey),
        }
    }

    /// An RSA key as a DER SubjectPublicKeyInfo (RFC 5280), the form XEP-0189 signs in
    /// revocations and attestations (AMB-66). RSA only.
    pub fn public_key_der(&self) -> Result<Vec<u8>, CryptoError> {
        match &self.components {
            KeyComponents::Rsa { modulus, exponent } => PublicKeyComponents {
                n: modulus.as_slice(),
                e: exponent.as_slice(),
            }
            .as_der()
            .map(|der| der.as_ref().to_vec())
            .map_err(|_| CryptoError::InvalidKey),
            KeyComponents::Dsa { .. } => Err(CryptoError::InvalidKey),
        }
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        match self.components {
            KeyComponents::Rsa { .. } => SignatureAlgorithm::RsaSha256,
            KeyComponents::Dsa { .. } => SignatureAlgorithm::DsaSha256,
        }
    }

    /// The key's numbers, for `<KeyValue/>` and fingerprints.
    pub fn components(&self) -> &KeyComponents {
        &self.components
    }

    /// Verifies `signature` over `message` (the raw identity MAC, AMB-19).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        match (&self.components, &self.dsa) {
            (KeyComponents::Rsa { modulus, exponent }, _) => PublicKeyComponents {
                n: modulus.as_slice(),
                e: exponent.as_slice(),
            }
            .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
            .map_err(|_| CryptoError::BadSignature),
            (KeyComponents::Dsa { q, .. }, Some(key)) => {
                let signature = decode_dsa_signature(q.len(), signature)?;
                key.verify(message, &signature)
                    .map_err(|_| CryptoError::BadSignature)
            }
            (KeyComponents::Dsa { .. }, None) => Err(CryptoError::InvalidKey),
        }
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

/// r|s, each left-padded to |q| octets (ESN-55).
fn decode_dsa_signature(q_len: usize, signature: &[u8]) -> Result<dsa::Signature, CryptoError> {
    if signature.len() != 2 * q_len {
        return Err(CryptoError::BadSignature);
    }
    let (r, s) = signature.split_at(q_len);
    let bits = (q_len * 8) as u32;
    let r = BoxedUint::from_be_slice(r, bits).map_err(|_| CryptoError::BadSignature)?;
    let s = BoxedUint::from_be_slice(s, bits).map_err(|_| CryptoError::BadSignature)?;
    dsa::Signature::from_components(r, s).ok_or(CryptoError::BadSignature)
}

fn encode_dsa_signature(q_len: usize, signature: &dsa::Signature) -> Result<Vec<u8>, CryptoError> {
    let mut out = vec![0u8; 2 * q_len];
    for (slot, value) in out.chunks_mut(q_len).zip([signature.r(), signature.s()]) {
        let bytes = value.as_ref().to_be_bytes();
        let digits = mpi(&bytes);
        if digits.len() > q_len {
            return Err(CryptoError::SigningFailed);
        }
        slot[q_len - digits.len()..].copy_from_slice(digits);
    }
    Ok(out)
}

/// Our own signing key. The private half is zeroized on drop and never printed.
pub struct SigningKey {
    inner: SigningInner,
    public: VerifyingKey,
}

enum SigningInner {
    Rsa(RsaKeyPair),
    Dsa(dsa::SigningKey),
}

impl SigningKey {
    /// Generates an RSA key of 2048, 3072 or 4096 bits with AWS-LC's DRBG.
    pub fn generate_rsa(bits: usize) -> Result<Self, CryptoError> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            _ => return Err(CryptoError::InvalidKey),
        };
        let pair = RsaKeyPair::generate(size).map_err(|_| CryptoError::InvalidKey)?;
        Self::from_rsa_pair(pair)
    }

    /// An RSA key from its PKCS#8 DER encoding.
    pub fn rsa_from_pkcs8(der: &[u8]) -> Result<Self, CryptoError> {
        let pair = RsaKeyPair::from_pkcs8(der).map_err(|_| CryptoError::InvalidKey)?;
        Self::from_rsa_pair(pair)
    }

    fn from_rsa_pair(pair: RsaKeyPair) -> Result<Self, CryptoError> {
        let public = pair.public_key();
        let public = VerifyingKey::rsa(
            public.modulus().big_endian_without_leading_zero(),
            public.exponent().big_endian_without_leading_zero(),
        )?;
        Ok(Self {
            inner: SigningInner::Rsa(pair),
            public,
        })
    }

    /// Generates a DSA key with new 2048/256 domain parameters drawn from `rng`.
    pub fn generate_dsa<R: CryptoRng + ?Sized>(rng: &mut R) -> Result<Self, CryptoError> {
        #[allow(deprecated)]
        let components =
            dsa::Components::try_generate_from_rng_with_key_size(rng, dsa::KeySize::DSA_2048_256)
                .map_err(|_| CryptoError::InvalidKey)?;
        let key = dsa::SigningKey::try_generate_from_rng_with_components(rng, components)
            .map_err(|_| CryptoError::InvalidKey)?;
        Self::from_dsa_key(key)
    }

    /// A DSA key from p, q, g, y and the private x (big-endian).
    pub fn dsa_from_components(
        p: &[u8],
        q: &[u8],
        g: &[u8],
        y: &[u8],
        x: &[u8],
    ) -> Result<Self, CryptoError> {
        let public = VerifyingKey::dsa(p, q, g, y)?;
        let Some(verifying) = public.dsa.clone() else {
            return Err(CryptoError::InvalidKey);
        };
        let x = mpi(x);
        let q_len = mpi(q).len();
        if x.len() > q_len {
            return Err(CryptoError::InvalidKey);
        }
        let x =
            BoxedUint::from_be_slice(x, (q_len * 8) as u32).map_err(|_| CryptoError::InvalidKey)?;
        let key =
            dsa::SigningKey::from_components(verifying, x).map_err(|_| CryptoError::InvalidKey)?;
        Ok(Self {
            inner: SigningInner::Dsa(key),
            public,
        })
    }

    fn from_dsa_key(key: dsa::SigningKey) -> Result<Self, CryptoError> {
        let verifying = key.verifying_key();
        let c = verifying.components();
        let bytes = |v: &BoxedUint| mpi(&v.to_be_bytes()).to_vec();
        let public = VerifyingKey::dsa(
            &bytes(c.p()),
            &bytes(c.q()),
            &bytes(c.g()),
            &bytes(verifying.y()),
        )?;
        Ok(Self {
            inner: SigningInner::Dsa(key),
            public,
        })
    }

    /// The private key as PKCS#8 DER, for encrypted storage. The caller must
    /// keep it in zeroizing memory (it is returned as [`SecretBytes`]).
    pub fn to_pkcs8_der(&self) -> Result<SecretBytes, CryptoError> {
        match &self.inner {
            SigningInner::Rsa(pair) => {
                use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
                let der: Pkcs8V1Der<'static> =
                    pair.as_der().map_err(|_| CryptoError::InvalidKey)?;
                Ok(SecretBytes::from_slice(der.as_ref()))
            }
            SigningInner::Dsa(key) => {
                use dsa::pkcs8::EncodePrivateKey;
                let doc = key.to_pkcs8_der().map_err(|_| CryptoError::InvalidKey)?;
                Ok(SecretBytes::from_slice(doc.as_bytes()))
            }
        }
    }

    /// A key from PKCS#8 DER (RSA or DSA).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, CryptoError> {
        if let Ok(key) = Self::rsa_from_pkcs8(der) {
            return Ok(key);
        }
        use dsa::pkcs8::DecodePrivateKey;
        let key = dsa::SigningKey::from_pkcs8_der(der).map_err(|_| CryptoError::InvalidKey)?;
        Self::from_dsa_key(key)
    }

    /// The public half.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.public.algorithm()
    }

    /// The public key as a DER SubjectPublicKeyInfo (RFC 5280), for XEP-0189 revocations
    /// (AMB-66). RSA only: XEP-0189 0.14 publishes RSA keys alone.
    pub fn public_key_der(&self) -> Result<Vec<u8>, CryptoError> {
        match &self.inner {
            SigningInner::Rsa(pair) => pair
                .public_key()
                .as_der()
                .map(|der| der.as_ref().to_vec())
                .map_err(|_| CryptoError::InvalidKey),
            SigningInner::Dsa(_) => Err(CryptoError::InvalidKey),
        }
    }

    /// Signs `message` (the raw identity MAC, AMB-19).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match &self.inner {
            SigningInner::Rsa(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                let rng = aws_lc_rs::rand::SystemRandom::new();
                pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .map_err(|_| CryptoError::SigningFailed)?;
                Ok(signature)
            }
            SigningInner::Dsa(key) => {
                let signature = key
                    .try_sign(message)
                    .map_err(|_| CryptoError::SigningFailed)?;
                let q_len = match self.public.components() {
                    KeyComponents::Dsa { q, .. } => q.len(),
                    KeyComponents::Rsa { .. } => return Err(CryptoError::SigningFailed),
                };
                encode_dsa_signature(q_len, &signature)
            }
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_amb18_aliases() {
        for uri in [
            RSA_SHA256_URI,
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "rsa",
        ] {
            assert_eq!(
                SignatureAlgorithm::from_uri(uri).unwrap(),
                SignatureAlgorithm::RsaSha256
            );
        }
        for uri in [
            DSA_SHA256_URI,
            "http://www.w3.org/2009/xmldsig11#dsa-sha256",
            "dsa",
        ] {
            assert_eq!(
                SignatureAlgorithm::from_uri(uri).unwrap(),
                SignatureAlgorithm::DsaSha256
            );
        }
        assert!(
            SignatureAlgorithm::from_uri("http://www.w3.org/2000/09/xmldsig#rsa-sha1").is_err()
        );
    }

    #[test]
    fn rsa_sign_verify_round_trip_and_tamper() {
        let key = SigningKey::generate_rsa(2048).unwrap();
        let mac = [0x11u8; 32];
        let mut sig = key.sign(&mac).unwrap();
        assert_eq!(sig.len(), 256);
        key.verifying_key().verify(&mac, &sig).unwrap();
        assert!(key.verifying_key().verify(&[0x12u8; 32], &sig).is_err());
        sig[10] ^= 1;
        assert_eq!(
            key.verifying_key().verify(&mac, &sig),
            Err(CryptoError::BadSignature)
        );
    }

    #[test]
    fn rejects_small_or_huge_rsa_moduli() {
        assert!(VerifyingKey::rsa(&[0xff; 128], &[1, 0, 1]).is_err());
        assert!(VerifyingKey::rsa(&[0xff; 1025], &[1, 0, 1]).is_err());
        assert!(VerifyingKey::rsa(&[0xff; 256], &[]).is_err());
    }

    #[test]
    fn rejects_malformed_dsa_keys() {
        assert!(VerifyingKey::dsa(&[0xff; 128], &[0xff; 20], &[2], &[]).is_err());
        assert!(VerifyingKey::dsa(&[0xff; 400], &[0xff; 32], &[2], &[3]).is_err());
    }

    #[test]
    fn signing_keys_round_trip_through_pkcs8() {
        let rsa = SigningKey::generate_rsa(2048).unwrap();
        let back = SigningKey::from_pkcs8_der(rsa.to_pkcs8_der().unwrap().expose()).unwrap();
        assert_eq!(
            back.verifying_key().components(),
            rsa.verifying_key().components()
        );
        assert!(SigningKey::from_pkcs8_der(b"not a key").is_err());
    }

    #[test]
    fn debug_of_signing_key_shows_only_algorithm() {
        let key = SigningKey::generate_rsa(2048).unwrap();
        assert_eq!(
            format!("{key:?}"),
            "SigningKey { algorithm: RsaSha256, .. }"
        );
    }
}
