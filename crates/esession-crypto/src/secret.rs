//! Secret byte strings and constant-time comparison (CMN-08, style practice 9/11).

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// Secret bytes: zeroized on drop, never printed, never cloned implicitly.
///
/// Holds keys (KC, KM, KS), shared secrets (K, K_final), retained secrets and
/// private exponents in their byte form (CMN-08).
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes`; they are wiped when the value is dropped.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Copies `bytes` into a new secret.
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self::new(bytes.to_vec())
    }

    /// The secret bytes. Callers must not copy them into unzeroized storage.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// An explicit copy. Named so that every duplication of a secret is visible in review.
    pub fn duplicate(&self) -> Self {
        Self::from_slice(&self.0)
    }

    /// Constant-time equality with other secret bytes.
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        ct_eq(&self.0, other)
    }
}

impl Zeroize for SecretBytes {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

/// Constant-time equality of two byte strings (style practice 11).
///
/// The lengths are public (a MAC or fingerprint has a fixed length per
/// algorithm); only the contents are compared in constant time.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_secret_bytes() {
        let secret = SecretBytes::from_slice(b"\x01\x02secret-key-material");
        let shown = format!("{secret:?}");
        assert_eq!(shown, "SecretBytes(<redacted>)");
        assert!(!shown.contains("secret-key"));
    }

    #[test]
    fn ct_eq_compares_contents_and_lengths() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn zeroize_wipes_contents() {
        let mut secret = SecretBytes::from_slice(&[7u8; 16]);
        secret.zeroize();
        assert!(secret.expose().iter().all(|&b| b == 0));
    }
}
