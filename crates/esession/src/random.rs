//! Injected randomness (CMN-07). The core never reads a global RNG.
//!
//! Every draw names its purpose, so that a published transcript can be replayed
//! by a test implementation that answers each purpose with the transcript's
//! value; production uses [`SystemRandomness`] over any `CryptoRng`.

use esession_crypto::rand_core::CryptoRng;
use esession_crypto::{DhKeyPair, ExponentSize, ModpGroup};

/// Why the core needs random bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum RandomPurpose {
    /// A new XEP-0201 ThreadID (THR-06: at least 128 bits).
    ThreadId,
    /// Our nonce N_A or N_B (CMN-07: at least 128 bits).
    Nonce,
    /// The initiator's block-cipher counter C_A, chosen by the responder (ESN-13).
    Counter,
    /// A random `rshashes` value that hides how many secrets we retain (ESN-30).
    RetainedSecretDecoy,
    /// The random `srshash` sent when no retained secret is shared (ESN-37).
    SrshashPlaceholder,
    /// Length-hiding whitespace (ENC-04).
    Padding,
    /// The id of a message that asks for a delivery receipt (issue 10).
    MessageId,
}

/// The source of every random value the protocol core uses.
pub trait Randomness {
    /// Fills `out` with random bytes for `purpose`.
    fn fill(&mut self, purpose: RandomPurpose, out: &mut [u8]);

    /// A fresh Diffie-Hellman key pair for `group` (ESN-06, ESN-13: never reused).
    fn dh_key_pair(&mut self, group: ModpGroup, size: ExponentSize) -> DhKeyPair;

    /// A random permutation of `0..n` (used to shuffle `rshashes`, ESN-30).
    fn permutation(&mut self, n: usize) -> Vec<usize>;
}

/// [`Randomness`] from a cryptographically secure generator.
pub struct SystemRandomness<R>(R);

impl<R: CryptoRng> SystemRandomness<R> {
    /// Wraps `rng`, which must be a CSPRNG seeded from the operating system.
    pub fn new(rng: R) -> Self {
        Self(rng)
    }
}

impl<R: CryptoRng> Randomness for SystemRandomness<R> {
    fn fill(&mut self, _purpose: RandomPurpose, out: &mut [u8]) {
        self.0.fill_bytes(out);
    }

    fn dh_key_pair(&mut self, group: ModpGroup, size: ExponentSize) -> DhKeyPair {
        DhKeyPair::generate(group, size, &mut self.0)
    }

    fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        // Fisher-Yates with rejection sampling (no modulo bias).
        for i in (1..n).rev() {
            let bound = (i + 1) as u64;
            let zone = u64::MAX - (u64::MAX % bound);
            let j = loop {
                let v = self.0.next_u64();
                if v < zone {
                    break (v % bound) as usize;
                }
            };
            order.swap(i, j);
        }
        order
    }
}
