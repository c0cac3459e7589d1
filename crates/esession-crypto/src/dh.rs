//! MODP Diffie-Hellman over the `modp` groups of XEP-0116 (ESN-05/06/13/26/31, ENC-15/18).
//!
//! Groups 1, 2 (RFC 2409) and 5, 14-18 (RFC 3526), generator 2. Groups 3 and 4
//! of RFC 2409 are elliptic-curve (EC2N) groups and are refused (AMB-22).
//!
//! Modular exponentiation is crypto-bigint's constant-time Montgomery ladder
//! (`BoxedMontyForm::pow_bounded_exp`): its running time depends on the
//! exponent's *size*, which is public (one size per group), never on its bits.

use std::sync::OnceLock;

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, Odd};
use rand_core::CryptoRng;
use zeroize::{Zeroize, Zeroizing};

use crate::modp_primes::*;
use crate::{CryptoError, HashAlgorithm, Hashing, SecretBytes, encoding::mpi};

pub use esession_algorithms::ModpGroup;

/// The lower bound 2^(2n-1) of ESN-06/ESN-13/ENC-15 is 2^255: every defined
/// cipher has n = 128-bit blocks.
const MIN_EXPONENT_BITS: u32 = 256;

/// How large a private exponent to draw.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum ExponentSize {
    /// [`ModpGroup::exponent_bits`]: at least twice the group's strength and
    /// never below 256 bits (the top bit is set, so x > 2^255 = 2^(2n-1) for
    /// n = 128, ESN-06).
    #[default]
    Recommended,
    /// Uniform in 2^(2n-1) < x < p-1: full-size exponents, several times slower.
    Full,
}

/// The prime of a [`ModpGroup`] (its name and sizes live in `esession-algorithms`).
pub trait GroupPrime {
    /// The prime p as big-endian bytes.
    fn prime_bytes(self) -> Vec<u8>;
}

impl GroupPrime for ModpGroup {
    fn prime_bytes(self) -> Vec<u8> {
        params(self).p.as_ref().to_be_bytes().to_vec()
    }
}

fn hex(group: ModpGroup) -> &'static str {
    match group {
        ModpGroup::Group1 => GROUP_1_HEX,
        ModpGroup::Group2 => GROUP_2_HEX,
        ModpGroup::Group5 => GROUP_5_HEX,
        ModpGroup::Group14 => GROUP_14_HEX,
        ModpGroup::Group15 => GROUP_15_HEX,
        ModpGroup::Group16 => GROUP_16_HEX,
        ModpGroup::Group17 => GROUP_17_HEX,
        ModpGroup::Group18 => GROUP_18_HEX,
    }
}

fn index(group: ModpGroup) -> usize {
    match group {
        ModpGroup::Group1 => 0,
        ModpGroup::Group2 => 1,
        ModpGroup::Group5 => 2,
        ModpGroup::Group14 => 3,
        ModpGroup::Group15 => 4,
        ModpGroup::Group16 => 5,
        ModpGroup::Group17 => 6,
        ModpGroup::Group18 => 7,
    }
}

fn params(group: ModpGroup) -> &'static GroupParams {
    static PARAMS: [OnceLock<GroupParams>; 8] = [const { OnceLock::new() }; 8];
    PARAMS[index(group)].get_or_init(|| GroupParams::new(group))
}

/// Per-group constants, computed once: the prime, p - 1 and the Montgomery
/// parameters (performance.md: cache one `BoxedMontyParams` per group).
struct GroupParams {
    p: Odd<BoxedUint>,
    p_minus_one: BoxedUint,
    one: BoxedUint,
    monty: BoxedMontyParams,
    two: BoxedUint,
}

impl GroupParams {
    #[allow(
        clippy::expect_used,
        reason = "compile-time constants, checked by tests"
    )]
    fn new(group: ModpGroup) -> Self {
        let bits = group.bits();
        let p = BoxedUint::from_be_hex(hex(group), bits)
            .into_option()
            .expect("embedded MODP prime is valid hex of the group's size");
        let p = Odd::new(p).into_option().expect("MODP primes are odd");
        let one = BoxedUint::one_with_precision(bits);
        let p_minus_one = p.as_ref().wrapping_sub(&one);
        let monty = BoxedMontyParams::new(p.clone());
        let two = BoxedUint::from_be_slice(&[2], bits).expect("2 fits in any group");
        Self {
            p,
            p_minus_one,
            one,
            monty,
            two,
        }
    }
}

/// A public DH value e = g^x mod p (or d = g^y mod p), checked to lie in 1 < e < p-1.
#[derive(Clone, PartialEq, Eq)]
pub struct DhPublicValue {
    group: ModpGroup,
    value: BoxedUint,
    mpi: Vec<u8>,
}

impl DhPublicValue {
    /// Parses a received public value (big-endian; leading zero octets allowed)
    /// and checks 1 < e < p-1 (ESN-26, ESN-31, AMB-27). Values longer than p
    /// are refused before any arithmetic.
    pub fn from_bytes(group: ModpGroup, bytes: &[u8]) -> Result<Self, CryptoError> {
        let digits = mpi(bytes);
        if digits.len() > group.byte_len() {
            return Err(CryptoError::InvalidPublicValue);
        }
        let value = BoxedUint::from_be_slice(digits, group.bits())
            .map_err(|_| CryptoError::InvalidPublicValue)?;
        let params = params(group);
        if value <= params.one || value >= params.p_minus_one {
            return Err(CryptoError::InvalidPublicValue);
        }
        Ok(Self {
            group,
            value,
            mpi: digits.to_vec(),
        })
    }

    /// The group of this value.
    pub fn group(&self) -> ModpGroup {
        self.group
    }

    /// MPI(e): big-endian without leading zero octets (CMN-01), as hashed, MACed and Base64-encoded.
    pub fn to_mpi(&self) -> &[u8] {
        &self.mpi
    }

    /// He = SHA256(MPI(e)), the 4-message commitment, SHA-256 whatever `hash_algs` says (ESN-06).
    pub fn commitment(&self) -> Vec<u8> {
        HashAlgorithm::Sha256.digest(&[&self.mpi])
    }
}

impl core::fmt::Debug for DhPublicValue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DhPublicValue")
            .field("group", &self.group)
            .field("bytes", &self.mpi.len())
            .finish_non_exhaustive()
    }
}

/// A DH key pair: private exponent x and public e = g^x mod p.
///
/// The exponent is zeroized on drop and never printed. [`DhKeyPair::agree`]
/// consumes the pair, so a negotiation's exponent is used once (CMN-07, ESN-48).
pub struct DhKeyPair {
    group: ModpGroup,
    exponent: Zeroizing<BoxedUint>,
    exponent_bits: u32,
    public: DhPublicValue,
}

/// The exponent is `Zeroizing`, so every pair is wiped as it drops (issue 16:
/// also the pairs a key-pair pool discards unused).
impl zeroize::ZeroizeOnDrop for DhKeyPair {}

impl DhKeyPair {
    /// Draws a fresh private exponent from `rng` and computes e = g^x mod p.
    pub fn generate<R: CryptoRng + ?Sized>(
        group: ModpGroup,
        size: ExponentSize,
        rng: &mut R,
    ) -> Self {
        let params = params(group);
        let (exponent, exponent_bits) = match size {
            ExponentSize::Recommended => {
                let bits = group.exponent_bits();
                (random_exponent_with_top_bit(group, bits, rng), bits)
            }
            ExponentSize::Full => {
                let lower = lower_bound(group);
                loop {
                    let candidate = random_exponent_with_top_bit(group, 0, rng);
                    if *candidate > lower && *candidate < params.p_minus_one {
                        break (candidate, group.bits());
                    }
                }
            }
        };
        Self::from_exponent(group, exponent, exponent_bits)
    }

    /// A key pair from a given private exponent (big-endian), for replaying
    /// published transcripts. Checks 2^(2n-1) < x < p-1 (ESN-06).
    pub fn from_private_exponent(group: ModpGroup, x_be: &[u8]) -> Result<Self, CryptoError> {
        let digits = mpi(x_be);
        if digits.len() > group.byte_len() {
            return Err(CryptoError::InvalidPrivateExponent);
        }
        let x = Zeroizing::new(
            BoxedUint::from_be_slice(digits, group.bits())
                .map_err(|_| CryptoError::InvalidPrivateExponent)?,
        );
        if *x <= lower_bound(group) || *x >= params(group).p_minus_one {
            return Err(CryptoError::InvalidPrivateExponent);
        }
        let exponent_bits = (digits.len() * 8) as u32;
        Ok(Self::from_exponent(group, x, exponent_bits))
    }

    fn from_exponent(group: ModpGroup, exponent: Zeroizing<BoxedUint>, exponent_bits: u32) -> Self {
        let e_bytes = power(group, &params(group).two, &exponent, exponent_bits);
        let mpi = mpi(&e_bytes).to_vec();
        // `e_bytes` has exactly the group's length, so this cannot fail.
        let value = BoxedUint::from_be_slice(&e_bytes, group.bits())
            .unwrap_or_else(|_| BoxedUint::zero_with_precision(group.bits()));
        let public = DhPublicValue { group, value, mpi };
        Self {
            group,
            exponent,
            exponent_bits,
            public,
        }
    }

    /// The group.
    pub fn group(&self) -> ModpGroup {
        self.group
    }

    /// The private exponent x, big-endian, for storing an XEP-0187 offline
    /// option set's x until its owner is back (OFF-03): the store must seal
    /// it. [`Self::from_private_exponent`] restores the pair.
    pub fn export_private_exponent(&self) -> SecretBytes {
        let bytes = Zeroizing::new(self.exponent.to_be_bytes());
        SecretBytes::from_slice(mpi(&bytes))
    }

    /// A second copy of this pair. Only for an XEP-0187 offline option set,
    /// whose x answers every contact's offline session until it expires
    /// (OFF-14); a negotiation's pair is never copied (ESN-48).
    pub fn duplicate_for_offline_set(&self) -> Self {
        Self {
            group: self.group,
            exponent: self.exponent.clone(),
            exponent_bits: self.exponent_bits,
            public: self.public.clone(),
        }
    }

    /// The public value e.
    pub fn public(&self) -> &DhPublicValue {
        &self.public
    }

    /// MPI(g^xy mod p) with the peer's checked public value, consuming the key pair
    /// so the exponent cannot be used again (ESN-48).
    pub fn agree(self, peer: &DhPublicValue) -> Result<SecretBytes, CryptoError> {
        self.agree_keeping(peer)
    }

    /// As [`Self::agree`] but keeps the exponent: only for XEP-0200 rekeying,
    /// where the acceptor applies its stored y to each `<key/>` it answers (ENC-18).
    pub fn agree_keeping(&self, peer: &DhPublicValue) -> Result<SecretBytes, CryptoError> {
        if peer.group != self.group {
            return Err(CryptoError::GroupMismatch);
        }
        let bytes = power(self.group, &peer.value, &self.exponent, self.exponent_bits);
        Ok(SecretBytes::from_slice(mpi(&bytes)))
    }

    /// The private exponent alone, once the public value has been sent: what
    /// an established session keeps for XEP-0200 rekeying (issue 16: the
    /// public value's two 2048-bit copies are then dropped).
    pub fn into_exponent(self) -> DhExponent {
        DhExponent {
            group: self.group,
            exponent: self.exponent,
            exponent_bits: self.exponent_bits,
        }
    }
}

/// A private exponent x without its public value (see
/// [`DhKeyPair::into_exponent`]); zeroized on drop and never printed.
pub struct DhExponent {
    group: ModpGroup,
    exponent: Zeroizing<BoxedUint>,
    exponent_bits: u32,
}

impl zeroize::ZeroizeOnDrop for DhExponent {}

impl DhExponent {
    /// MPI(g^xy mod p) with the peer's checked public value, keeping the
    /// exponent (as [`DhKeyPair::agree_keeping`]).
    pub fn agree_keeping(&self, peer: &DhPublicValue) -> Result<SecretBytes, CryptoError> {
        if peer.group != self.group {
            return Err(CryptoError::GroupMismatch);
        }
        let bytes = power(self.group, &peer.value, &self.exponent, self.exponent_bits);
        Ok(SecretBytes::from_slice(mpi(&bytes)))
    }
}

impl core::fmt::Debug for DhExponent {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DhExponent")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl core::fmt::Debug for DhKeyPair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DhKeyPair")
            .field("group", &self.group)
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// base^exponent mod p as big-endian bytes of p's length, constant time in the
/// exponent's value (its size, `exponent_bits`, is public). AWS-LC's
/// `BN_mod_exp_mont_consttime` by default; crypto-bigint's Montgomery ladder
/// without the `aws-lc-modexp` feature or should AWS-LC fail.
fn power(
    group: ModpGroup,
    base: &BoxedUint,
    exponent: &BoxedUint,
    exponent_bits: u32,
) -> Zeroizing<Vec<u8>> {
    #[cfg(feature = "aws-lc-modexp")]
    {
        let exponent_bytes = Zeroizing::new(exponent.to_be_bytes());
        let start = exponent_bytes
            .len()
            .saturating_sub(exponent_bits.div_ceil(8) as usize);
        let base_bytes = base.to_be_bytes();
        if let Some(out) = aws_lc_modulus(group)
            .and_then(|modulus| modulus.power(&base_bytes, &exponent_bytes[start..]))
        {
            return out;
        }
    }
    power_portable(group, base, exponent, exponent_bits)
}

/// The group's prime with its AWS-LC Montgomery context, made once.
#[cfg(feature = "aws-lc-modexp")]
fn aws_lc_modulus(group: ModpGroup) -> Option<&'static crate::dh_aws_lc::Modulus> {
    static MODULI: [OnceLock<Option<crate::dh_aws_lc::Modulus>>; 8] =
        [const { OnceLock::new() }; 8];
    MODULI[index(group)]
        .get_or_init(|| crate::dh_aws_lc::Modulus::new(&group.prime_bytes()))
        .as_ref()
}

/// The pure-Rust exponentiation (crypto-bigint `BoxedMontyForm`).
fn power_portable(
    group: ModpGroup,
    base: &BoxedUint,
    exponent: &BoxedUint,
    exponent_bits: u32,
) -> Zeroizing<Vec<u8>> {
    let params = params(group);
    let base = BoxedMontyForm::new(base.clone(), &params.monty);
    let mut result = base.pow_bounded_exp(exponent, exponent_bits).retrieve();
    let bytes = Zeroizing::new(result.to_be_bytes().to_vec());
    result.zeroize();
    bytes
}

/// K = HASH(MPI(g^xy mod p)): the negotiation's shared secret (ESN-26, ESN-31).
pub fn negotiation_secret(hash: HashAlgorithm, raw_shared: &SecretBytes) -> SecretBytes {
    hash.digest_secret(&[raw_shared.expose()])
}

fn lower_bound(group: ModpGroup) -> BoxedUint {
    BoxedUint::one_with_precision(group.bits()).shl(MIN_EXPONENT_BITS - 1)
}

/// Random exponent of `bits` bits with the top bit set (`bits == 0`: the group's
/// full size, top bit not forced). Resamples the single value 2^255 for 256 bits.
fn random_exponent_with_top_bit<R: CryptoRng + ?Sized>(
    group: ModpGroup,
    bits: u32,
    rng: &mut R,
) -> Zeroizing<BoxedUint> {
    let full = bits == 0;
    let len = if full {
        group.byte_len()
    } else {
        (bits / 8) as usize
    };
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    loop {
        rng.fill_bytes(&mut bytes);
        if !full {
            bytes[0] |= 0x80;
            let is_lower_bound =
                bits == MIN_EXPONENT_BITS && bytes[0] == 0x80 && bytes[1..].iter().all(|&b| b == 0);
            if is_lower_bound {
                continue;
            }
        }
        // `len` never exceeds the group's byte length, so this cannot fail; a
        // failure would only resample.
        if let Ok(x) = BoxedUint::from_be_slice(&bytes, group.bits()) {
            return Zeroizing::new(x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct CountingRng(u64);
    impl rand_core::TryRng for CountingRng {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(self.try_next_u64()? as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            Ok(self.0)
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            for b in dst {
                *b = (self.try_next_u64()? >> 33) as u8;
            }
            Ok(())
        }
    }
    impl rand_core::TryCryptoRng for CountingRng {}

    #[test]
    fn refuses_elliptic_groups_3_and_4() {
        assert_eq!(
            ModpGroup::from_id(3),
            Err(crate::UnsupportedAlgorithm::EllipticGroup)
        );
        assert_eq!(
            ModpGroup::from_name("4"),
            Err(crate::UnsupportedAlgorithm::EllipticGroup)
        );
        assert!(ModpGroup::from_name("6").is_err());
        assert!(ModpGroup::from_name("+14").is_err());
        assert!(ModpGroup::from_name("014").is_ok());
        assert!(ModpGroup::from_name("").is_err());
    }

    #[test]
    fn exponent_sizes_are_at_least_twice_strength_and_256() {
        let expected = [256, 256, 256, 256, 264, 312, 360, 408];
        let groups = [
            ModpGroup::Group1,
            ModpGroup::Group2,
            ModpGroup::Group5,
            ModpGroup::Group14,
            ModpGroup::Group15,
            ModpGroup::Group16,
            ModpGroup::Group17,
            ModpGroup::Group18,
        ];
        for (group, bits) in groups.into_iter().zip(expected) {
            assert_eq!(group.exponent_bits(), bits, "{group:?}");
            assert!(group.exponent_bits() > 2 * group.strength_bits());
        }
    }

    #[test]
    fn both_sides_agree_on_the_shared_value() {
        let mut rng = CountingRng(1);
        for size in [ExponentSize::Recommended, ExponentSize::Full] {
            let alice = DhKeyPair::generate(ModpGroup::Group2, size, &mut rng);
            let bob = DhKeyPair::generate(ModpGroup::Group2, size, &mut rng);
            let e = alice.public().clone();
            let d = bob.public().clone();
            let k_a = alice.agree(&d).unwrap();
            let k_b = bob.agree(&e).unwrap();
            assert_eq!(k_a.expose(), k_b.expose());
            assert!(k_a.expose()[0] != 0, "MPI has no leading zero");
        }
    }

    #[test]
    fn public_value_range_check_rejects_0_1_p_minus_1_and_p() {
        let group = ModpGroup::Group1;
        let p = group.prime_bytes();
        let mut p_minus_1 = p.clone();
        *p_minus_1.last_mut().unwrap() -= 1;
        let mut p_minus_2 = p.clone();
        *p_minus_2.last_mut().unwrap() -= 2;
        for bad in [vec![], vec![0], vec![1], vec![0, 1], p_minus_1, p.clone()] {
            assert_eq!(
                DhPublicValue::from_bytes(group, &bad),
                Err(CryptoError::InvalidPublicValue)
            );
        }
        assert!(DhPublicValue::from_bytes(group, &[2]).is_ok());
        assert!(DhPublicValue::from_bytes(group, &p_minus_2).is_ok());
        let mut too_long = vec![1u8];
        too_long.extend_from_slice(&p);
        assert!(DhPublicValue::from_bytes(group, &too_long).is_err());
    }

    #[test]
    fn leading_zeros_in_received_values_are_ignored() {
        let with_zeros = DhPublicValue::from_bytes(ModpGroup::Group1, &[0, 0, 5]).unwrap();
        assert_eq!(with_zeros.to_mpi(), &[5]);
    }

    #[test]
    fn private_exponent_bounds_are_checked() {
        let group = ModpGroup::Group1;
        let mut lower = vec![0u8; 32];
        lower[0] = 0x80;
        assert!(DhKeyPair::from_private_exponent(group, &lower).is_err());
        lower[31] = 1;
        assert!(DhKeyPair::from_private_exponent(group, &lower).is_ok());
        let p = group.prime_bytes();
        assert!(DhKeyPair::from_private_exponent(group, &p).is_err());
    }

    #[test]
    fn generated_exponents_have_requested_size() {
        let mut rng = CountingRng(7);
        let pair = DhKeyPair::generate(ModpGroup::Group18, ExponentSize::Recommended, &mut rng);
        assert_eq!(pair.exponent.bit_width(), 408);
        assert_eq!(pair.public().to_mpi().len(), 1024);
    }

    #[test]
    fn agreement_refuses_value_of_another_group() {
        let mut rng = CountingRng(3);
        let a = DhKeyPair::generate(ModpGroup::Group1, ExponentSize::Recommended, &mut rng);
        let b = DhKeyPair::generate(ModpGroup::Group2, ExponentSize::Recommended, &mut rng);
        assert_eq!(a.agree(b.public()).err(), Some(CryptoError::GroupMismatch));
    }

    #[test]
    fn aws_lc_and_portable_exponentiation_agree() {
        let mut rng = CountingRng(11);
        for group in [ModpGroup::Group1, ModpGroup::Group14, ModpGroup::Group16] {
            let pair = DhKeyPair::generate(group, ExponentSize::Recommended, &mut rng);
            let peer = DhKeyPair::generate(group, ExponentSize::Full, &mut rng);
            let fast = power(
                group,
                &peer.public().value,
                &pair.exponent,
                pair.exponent_bits,
            );
            let portable = power_portable(
                group,
                &peer.public().value,
                &pair.exponent,
                pair.exponent_bits,
            );
            assert_eq!(*fast, *portable);
            assert_eq!(fast.len(), group.byte_len());
        }
    }

    #[test]
    fn debug_of_key_pair_hides_exponent() {
        let mut rng = CountingRng(5);
        let pair = DhKeyPair::generate(ModpGroup::Group1, ExponentSize::Recommended, &mut rng);
        let shown = format!("{pair:?}");
        assert!(shown.starts_with("DhKeyPair { group: Group1, public: DhPublicValue"));
        assert!(!shown.contains("exponent"));
    }
}
