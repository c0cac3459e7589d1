//! The ESession crypto suite: every primitive XEP-0116, XEP-0200 and XEP-0217 need,
//! and nothing about XML or protocol state.
//!
//! | module | what | requirement ids |
//! |---|---|---|
//! | [`dh`] | MODP groups 1, 2, 5, 14-18; constant-time modexp; range checks | ESN-05/06/13/26/31, AMB-22/27 |
//! | [`cipher`] | AES, Twofish, Serpent in CTR mode with the XEP counter rules; `none` | CMN-05, ENC-06, AMB-08/09/46 |
//! | [`hash`] | SHA-256, Whirlpool, HMAC | ESN-05, CMN-04 |
//! | [`kdf`] | the labelled keys, rekey keys, retained-secret derivations | ESN-16/35-40, ENC-15 |
//! | [`sas`] | sas28x5 | ESN-33, AMB-21 |
//! | [`sign`] | RSA-SHA256 / DSA-SHA256 identity signatures | ESN-20/55, AMB-18/19 |
//! | [`compress`] | `none`, `zlib` | ENC-05 |
//! | [`encoding`] | MPI and fixed-width counters | CMN-01, AMB-10/14 |
//! | [`secret`] | zeroizing secret bytes, constant-time comparison | CMN-08 |
//!
//! Randomness is always injected (`rand_core::CryptoRng`); nothing here reads a
//! clock or a global RNG, except AWS-LC's own DRBG when generating RSA keys.

#![deny(unsafe_code)] // allowed only in `dh_aws_lc`, see its docs

pub mod cipher;
pub mod compress;
pub mod dh;
#[cfg(feature = "aws-lc-modexp")]
mod dh_aws_lc;
pub mod encoding;
pub mod hash;
pub mod kdf;
mod modp_primes;
pub mod sas;
pub mod secret;
pub mod sign;

pub use cipher::{CipherAlgorithm, CtrCipher};
pub use compress::{CompressionAlgorithm, Compressor, Decompressor};
pub use dh::{DhExponent, DhKeyPair, DhPublicValue, ExponentSize, GroupPrime, ModpGroup};
pub use encoding::{Counter, mpi};
pub use hash::{HashAlgorithm, Hashing, MacKey};
/// Re-exported so callers can implement or name the injected RNG traits.
pub use rand_core;
pub use sas::{SasAlgorithm, sas28x5, sas28x5_unpadded};
pub use secret::{SecretBytes, ct_eq};
pub use sign::{KeyComponents, SignatureAlgorithm, SigningKey, VerifyingKey};

pub use esession_algorithms::{AlgorithmKind, UnsupportedAlgorithm};

/// Errors of the crypto suite. None carries secret data.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The algorithm name is not one we support (the negotiation answers not-acceptable).
    #[error("unsupported {0} algorithm")]
    Unsupported(AlgorithmKind),
    /// Groups 3 and 4 of RFC 2409 are elliptic-curve groups, not MODP (AMB-22).
    #[error("groups 3 and 4 are elliptic-curve groups, not MODP")]
    EllipticGroup,
    /// A received DH public value is outside 1 < e < p-1 or malformed.
    #[error("Diffie-Hellman public value out of range")]
    InvalidPublicValue,
    /// A private exponent is outside 2^(2n-1) < x < p-1.
    #[error("Diffie-Hellman private exponent out of range")]
    InvalidPrivateExponent,
    /// Public value and key pair belong to different groups.
    #[error("Diffie-Hellman values from different groups")]
    GroupMismatch,
    /// A counter longer than the cipher's block.
    #[error("counter longer than the cipher block")]
    InvalidCounter,
    /// A key of the wrong length for its cipher.
    #[error("key length does not match the cipher")]
    InvalidKeyLength,
    /// The hash output is shorter than the key it must produce (ESN-05).
    #[error("hash output shorter than the cipher key")]
    HashTooShort,
    /// A public or private key that cannot be used.
    #[error("unusable key")]
    InvalidKey,
    /// A signature that does not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// Signing failed.
    #[error("signing failed")]
    SigningFailed,
    /// Compression failed.
    #[error("compression failed")]
    Compression,
    /// Corrupt or truncated compressed data.
    #[error("decompression failed")]
    Decompression,
    /// Decompressed data beyond the allowed size.
    #[error("decompressed data too large")]
    DecompressedTooLarge,
}

impl From<UnsupportedAlgorithm> for CryptoError {
    fn from(error: UnsupportedAlgorithm) -> Self {
        match error {
            UnsupportedAlgorithm::Unknown(kind) => Self::Unsupported(kind),
            UnsupportedAlgorithm::EllipticGroup => Self::EllipticGroup,
        }
    }
}
