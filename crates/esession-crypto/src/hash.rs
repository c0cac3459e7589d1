//! Hash algorithms of the `hash_algs` field and HMAC (RFC 2104) over them (ESN-05).

use core::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use whirlpool::Whirlpool;

use crate::{AlgorithmKind, CryptoError, SecretBytes};

/// A hash algorithm ESessions can negotiate (ESN-05). sha1 and md5 are not offered.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// `sha256` (MUST).
    Sha256,
    /// `whirlpool` (SHOULD), ISO/IEC 10118-3:2004.
    Whirlpool,
}

impl HashAlgorithm {
    /// Every supported hash, in our order of preference.
    pub const ALL: [Self; 2] = [Self::Sha256, Self::Whirlpool];

    /// The wire name in `hash_algs`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Whirlpool => "whirlpool",
        }
    }

    /// Parses a `hash_algs` value. Names we do not offer (sha1, md5, anything
    /// else) are unsupported, which the negotiation reports as not-acceptable.
    pub fn from_name(name: &str) -> Result<Self, CryptoError> {
        match name {
            "sha256" => Ok(Self::Sha256),
            "whirlpool" => Ok(Self::Whirlpool),
            _ => Err(CryptoError::Unsupported(AlgorithmKind::Hash)),
        }
    }

    /// Output length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Whirlpool => 64,
        }
    }

    /// `HASH(parts[0] | parts[1] | ...)`, for public values (He, fingerprints, SAS input).
    pub fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        match self {
            Self::Sha256 => digest_parts::<Sha256>(parts),
            Self::Whirlpool => digest_parts::<Whirlpool>(parts),
        }
    }

    /// HASH(parts...) whose output is a secret (K, K_final).
    pub fn digest_secret(self, parts: &[&[u8]]) -> SecretBytes {
        SecretBytes::new(self.digest(parts))
    }

    /// `HMAC(HASH, key, parts[0] | parts[1] | ...)`: a public tag (a MAC on the wire).
    pub fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        MacKey::new(self, key).compute(parts)
    }

    /// HMAC whose output is secret (derived keys, retained secrets).
    pub fn hmac_secret(self, key: &[u8], parts: &[&[u8]]) -> SecretBytes {
        SecretBytes::new(self.hmac(key, parts))
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn digest_parts<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
    let mut hasher = D::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().to_vec()
}

/// An HMAC key with its keyed state prepared once, for the per-stanza MAC path
/// (performance.md: keep the HMAC state per session). Zeroized on drop.
#[derive(Clone)]
pub struct MacKey(MacState);

#[derive(Clone)]
enum MacState {
    Sha256(Hmac<Sha256>),
    Whirlpool(Hmac<Whirlpool>),
}

impl MacKey {
    /// Prepares HMAC(HASH, key, ·). HMAC accepts keys of any length (RFC 2104).
    pub fn new(hash: HashAlgorithm, key: &[u8]) -> Self {
        // `new_from_slice` cannot fail for HMAC: any key length is valid.
        let state = match hash {
            HashAlgorithm::Sha256 => MacState::Sha256(hmac_init(key)),
            HashAlgorithm::Whirlpool => MacState::Whirlpool(hmac_init(key)),
        };
        Self(state)
    }

    /// HMAC over the concatenation of `parts`.
    pub fn compute(&self, parts: &[&[u8]]) -> Vec<u8> {
        match &self.0 {
            MacState::Sha256(state) => run(state.clone(), parts).finalize().into_bytes().to_vec(),
            MacState::Whirlpool(state) => {
                run(state.clone(), parts).finalize().into_bytes().to_vec()
            }
        }
    }

    /// Verifies `tag` against the HMAC of `parts` in constant time (ENC-12, practice 11).
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        match &self.0 {
            MacState::Sha256(state) => run(state.clone(), parts).verify_slice(tag).is_ok(),
            MacState::Whirlpool(state) => run(state.clone(), parts).verify_slice(tag).is_ok(),
        }
    }
}

impl fmt::Debug for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MacKey(<redacted>)")
    }
}

fn hmac_init<M: KeyInit>(key: &[u8]) -> M {
    // HMAC's KeyInit accepts every key length; the fallback is unreachable but
    // keeps this path free of panics.
    M::new_from_slice(key).unwrap_or_else(|_| M::new(&Default::default()))
}

fn run<M: Mac>(mut state: M, parts: &[&[u8]]) -> M {
    for part in parts {
        state.update(part);
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_offered_hash_names() {
        assert_eq!(
            HashAlgorithm::from_name("sha256").unwrap(),
            HashAlgorithm::Sha256
        );
        assert_eq!(
            HashAlgorithm::from_name("whirlpool").unwrap(),
            HashAlgorithm::Whirlpool
        );
        for refused in ["sha1", "md5", "SHA256", "sha-256", ""] {
            assert!(HashAlgorithm::from_name(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn mac_key_verify_rejects_flipped_bit_and_wrong_length() {
        let key = MacKey::new(HashAlgorithm::Sha256, b"key");
        let mut tag = key.compute(&[b"hello ", b"world"]);
        assert!(key.verify(&[b"hello world"], &tag));
        tag[5] ^= 1;
        assert!(!key.verify(&[b"hello world"], &tag));
        assert!(!key.verify(&[b"hello world"], &tag[..16]));
    }

    #[test]
    fn debug_of_mac_key_is_redacted() {
        let key = MacKey::new(HashAlgorithm::Whirlpool, b"very secret");
        assert_eq!(format!("{key:?}"), "MacKey(<redacted>)");
    }
}
