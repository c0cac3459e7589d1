//! Hash algorithms of the `hash_algs` field and HMAC (RFC 2104) over them (ESN-05).

use core::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use whirlpool::Whirlpool;

use crate::SecretBytes;

pub use esession_algorithms::HashAlgorithm;

/// Computing with a [`HashAlgorithm`]: its digest and HMAC. A trait because the
/// algorithm's name lives in `esession-algorithms`, below this crate.
pub trait Hashing {
    /// `HASH(parts[0] | parts[1] | ...)`, for public values (He, fingerprints, SAS input).
    fn digest(self, parts: &[&[u8]]) -> Vec<u8>;
    /// HASH(parts...) whose output is a secret (K, K_final).
    fn digest_secret(self, parts: &[&[u8]]) -> SecretBytes;
    /// `HMAC(HASH, key, parts[0] | parts[1] | ...)`: a public tag (a MAC on the wire).
    fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8>;
    /// HMAC whose output is secret (derived keys, retained secrets).
    fn hmac_secret(self, key: &[u8], parts: &[&[u8]]) -> SecretBytes;
}

impl Hashing for HashAlgorithm {
    fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        match self {
            Self::Sha256 => digest_parts::<Sha256>(parts),
            Self::Whirlpool => digest_parts::<Whirlpool>(parts),
        }
    }

    fn digest_secret(self, parts: &[&[u8]]) -> SecretBytes {
        SecretBytes::new(self.digest(parts))
    }

    fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        MacKey::new(self, key).compute(parts)
    }

    fn hmac_secret(self, key: &[u8], parts: &[&[u8]]) -> SecretBytes {
        SecretBytes::new(self.hmac(key, parts))
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
