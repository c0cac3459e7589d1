//! The ESession algorithm vocabulary: the closed sets of names a negotiation
//! form can carry in `modp`, `crypt_algs`, `hash_algs`, `compress`, `sas_algs`
//! and `sign_algs` (ESN-05), with the sizes that follow from each name.
//!
//! This crate sits below both `esession-wire` (which parses the names into
//! these enums when it reads a negotiation message) and `esession-crypto`
//! (which implements them), so neither needs the other. It holds no crypto
//! and no XML: only names, numbers and the parse of each.
//!
//! The enums are exhaustive on purpose: the sets are closed by the XEPs, and a
//! new algorithm must make every `match` over them be revisited.

#![forbid(unsafe_code)]

use core::fmt;

/// Which negotiated field an algorithm name belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AlgorithmKind {
    /// `modp`.
    Modp,
    /// `crypt_algs`.
    Cipher,
    /// `hash_algs`.
    Hash,
    /// `compress`.
    Compression,
    /// `sas_algs`.
    Sas,
    /// `sign_algs`.
    Signature,
}

impl AlgorithmKind {
    /// The form field that carries this kind of algorithm.
    pub const fn field(self) -> &'static str {
        match self {
            Self::Modp => "modp",
            Self::Cipher => "crypt_algs",
            Self::Hash => "hash_algs",
            Self::Compression => "compress",
            Self::Sas => "sas_algs",
            Self::Signature => "sign_algs",
        }
    }
}

impl fmt::Display for AlgorithmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.field())
    }
}

/// A name that is not one of ours.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum UnsupportedAlgorithm {
    /// Not a name we implement (the negotiation answers not-acceptable).
    #[error("unsupported {0} algorithm")]
    Unknown(AlgorithmKind),
    /// Groups 3 and 4 of RFC 2409 are elliptic-curve groups, not MODP (AMB-22).
    #[error("groups 3 and 4 are elliptic-curve groups, not MODP")]
    EllipticGroup,
}

/// A cipher of the `crypt_algs` field (ESN-05).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum CipherAlgorithm {
    /// `aes128-ctr` (MUST).
    Aes128Ctr,
    /// `aes192-ctr`.
    Aes192Ctr,
    /// `aes256-ctr`.
    Aes256Ctr,
    /// `twofish128-ctr`.
    Twofish128Ctr,
    /// `twofish192-ctr`.
    Twofish192Ctr,
    /// `twofish256-ctr`.
    Twofish256Ctr,
    /// `serpent128-ctr` (NESSIE byte order, AMB-46).
    Serpent128Ctr,
    /// `serpent192-ctr`.
    Serpent192Ctr,
    /// `serpent256-ctr`.
    Serpent256Ctr,
    /// `none`: no confidentiality; the counter still advances by one per
    /// message (ENC-06). Never offered unless explicitly enabled.
    None,
}

impl CipherAlgorithm {
    /// Every cipher with confidentiality, in our default order of preference.
    pub const CONFIDENTIAL: [Self; 9] = [
        Self::Aes128Ctr,
        Self::Aes256Ctr,
        Self::Aes192Ctr,
        Self::Twofish256Ctr,
        Self::Twofish192Ctr,
        Self::Twofish128Ctr,
        Self::Serpent256Ctr,
        Self::Serpent192Ctr,
        Self::Serpent128Ctr,
    ];

    /// The wire name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Aes128Ctr => "aes128-ctr",
            Self::Aes192Ctr => "aes192-ctr",
            Self::Aes256Ctr => "aes256-ctr",
            Self::Twofish128Ctr => "twofish128-ctr",
            Self::Twofish192Ctr => "twofish192-ctr",
            Self::Twofish256Ctr => "twofish256-ctr",
            Self::Serpent128Ctr => "serpent128-ctr",
            Self::Serpent192Ctr => "serpent192-ctr",
            Self::Serpent256Ctr => "serpent256-ctr",
            Self::None => "none",
        }
    }

    /// Parses a `crypt_algs` value.
    pub fn from_name(name: &str) -> Result<Self, UnsupportedAlgorithm> {
        [Self::None]
            .into_iter()
            .chain(Self::CONFIDENTIAL)
            .find(|alg| alg.name() == name)
            .ok_or(UnsupportedAlgorithm::Unknown(AlgorithmKind::Cipher))
    }

    /// Key length in bytes (0 for `none`).
    pub const fn key_len(self) -> usize {
        match self {
            Self::Aes128Ctr | Self::Twofish128Ctr | Self::Serpent128Ctr => 16,
            Self::Aes192Ctr | Self::Twofish192Ctr | Self::Serpent192Ctr => 24,
            Self::Aes256Ctr | Self::Twofish256Ctr | Self::Serpent256Ctr => 32,
            Self::None => 0,
        }
    }

    /// Block size n in bits: 128 for every defined cipher (and the counter width of `none`).
    pub const fn block_bits(self) -> u32 {
        128
    }

    /// Whether this cipher provides confidentiality (ESN-54: `none` is never shown as confidential).
    pub const fn is_confidential(self) -> bool {
        !matches!(self, Self::None)
    }
}

/// A hash algorithm ESessions can negotiate (ESN-05). sha1 and md5 are not offered.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
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
    pub fn from_name(name: &str) -> Result<Self, UnsupportedAlgorithm> {
        match name {
            "sha256" => Ok(Self::Sha256),
            "whirlpool" => Ok(Self::Whirlpool),
            _ => Err(UnsupportedAlgorithm::Unknown(AlgorithmKind::Hash)),
        }
    }

    /// Output length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Whirlpool => 64,
        }
    }
}

/// A `compress` field value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum CompressionAlgorithm {
    /// `none` (MUST): the identity.
    None,
    /// `zlib` (RFC 1950).
    Zlib,
}

impl CompressionAlgorithm {
    /// Every supported algorithm, in our order of preference (compression is NOT
    /// RECOMMENDED by ESN-05, so `none` first).
    pub const ALL: [Self; 2] = [Self::None, Self::Zlib];

    /// The wire name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Zlib => "zlib",
        }
    }

    /// Parses a `compress` value; `lzw` and anything else are unsupported.
    pub fn from_name(name: &str) -> Result<Self, UnsupportedAlgorithm> {
        match name {
            "none" => Ok(Self::None),
            "zlib" => Ok(Self::Zlib),
            _ => Err(UnsupportedAlgorithm::Unknown(AlgorithmKind::Compression)),
        }
    }
}

/// The SAS algorithms of `sas_algs`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SasAlgorithm {
    /// `sas28x5` (MUST).
    Sas28x5,
}

impl SasAlgorithm {
    /// The wire name.
    pub const fn name(self) -> &'static str {
        "sas28x5"
    }

    /// Parses a `sas_algs` value.
    pub fn from_name(name: &str) -> Result<Self, UnsupportedAlgorithm> {
        match name {
            "sas28x5" => Ok(Self::Sas28x5),
            _ => Err(UnsupportedAlgorithm::Unknown(AlgorithmKind::Sas)),
        }
    }
}

/// XEP-0116's name for RSASSA-PKCS1-v1_5 with SHA-256 (emitted, AMB-18).
pub const RSA_SHA256_URI: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha256";
/// XEP-0116's name for DSA with SHA-256 (emitted, AMB-18).
pub const DSA_SHA256_URI: &str = "http://www.w3.org/2000/09/xmldsig#dsa-sha256";

/// A `sign_algs` value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SignatureAlgorithm {
    /// RSASSA-PKCS1-v1_5 / SHA-256 (MUST).
    RsaSha256,
    /// DSA / SHA-256 (SHOULD).
    DsaSha256,
}

impl SignatureAlgorithm {
    /// Every supported algorithm, in our order of preference.
    pub const ALL: [Self; 2] = [Self::RsaSha256, Self::DsaSha256];

    /// The URI we emit (XEP-0116's spelling).
    pub const fn uri(self) -> &'static str {
        match self {
            Self::RsaSha256 => RSA_SHA256_URI,
            Self::DsaSha256 => DSA_SHA256_URI,
        }
    }

    /// Parses a `sign_algs` value, accepting the aliases of AMB-18: RFC 6931's
    /// real URIs and XEP-0187's short names.
    pub fn from_uri(uri: &str) -> Result<Self, UnsupportedAlgorithm> {
        match uri {
            RSA_SHA256_URI | "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" | "rsa" => {
                Ok(Self::RsaSha256)
            }
            DSA_SHA256_URI | "http://www.w3.org/2009/xmldsig11#dsa-sha256" | "dsa" => {
                Ok(Self::DsaSha256)
            }
            _ => Err(UnsupportedAlgorithm::Unknown(AlgorithmKind::Signature)),
        }
    }
}

/// A MODP group usable in the `modp` field.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum ModpGroup {
    /// RFC 2409 group 1, 768 bits.
    Group1,
    /// RFC 2409 group 2, 1024 bits.
    Group2,
    /// RFC 3526 group 5, 1536 bits.
    Group5,
    /// RFC 3526 group 14, 2048 bits.
    Group14,
    /// RFC 3526 group 15, 3072 bits.
    Group15,
    /// RFC 3526 group 16, 4096 bits.
    Group16,
    /// RFC 3526 group 17, 6144 bits.
    Group17,
    /// RFC 3526 group 18, 8192 bits.
    Group18,
}

/// The lower bound 2^(2n-1) of ESN-06/ESN-13/ENC-15 is 2^255: every defined
/// cipher has n = 128-bit blocks.
const MIN_EXPONENT_BITS: u32 = 256;

impl ModpGroup {
    /// Every group, in our default order of preference for an offer.
    pub const ALL: [Self; 8] = [
        Self::Group14,
        Self::Group15,
        Self::Group16,
        Self::Group17,
        Self::Group18,
        Self::Group5,
        Self::Group2,
        Self::Group1,
    ];

    /// The group number used in the `modp` field.
    pub const fn id(self) -> u32 {
        match self {
            Self::Group1 => 1,
            Self::Group2 => 2,
            Self::Group5 => 5,
            Self::Group14 => 14,
            Self::Group15 => 15,
            Self::Group16 => 16,
            Self::Group17 => 17,
            Self::Group18 => 18,
        }
    }

    /// The group with number `id`. Groups 3 and 4 are elliptic, not MODP (AMB-22).
    pub fn from_id(id: u32) -> Result<Self, UnsupportedAlgorithm> {
        match id {
            1 => Ok(Self::Group1),
            2 => Ok(Self::Group2),
            5 => Ok(Self::Group5),
            14 => Ok(Self::Group14),
            15 => Ok(Self::Group15),
            16 => Ok(Self::Group16),
            17 => Ok(Self::Group17),
            18 => Ok(Self::Group18),
            3 | 4 => Err(UnsupportedAlgorithm::EllipticGroup),
            _ => Err(UnsupportedAlgorithm::Unknown(AlgorithmKind::Modp)),
        }
    }

    /// Parses a `modp` value: a decimal group number, digits only.
    pub fn from_name(name: &str) -> Result<Self, UnsupportedAlgorithm> {
        let unknown = UnsupportedAlgorithm::Unknown(AlgorithmKind::Modp);
        if name.is_empty() || name.len() > 3 || !name.bytes().all(|b| b.is_ascii_digit()) {
            return Err(unknown);
        }
        Self::from_id(name.parse::<u32>().map_err(|_| unknown)?)
    }

    /// The wire name (the decimal group number).
    pub fn name(self) -> String {
        self.id().to_string()
    }

    /// Size of the prime p in bits.
    pub const fn bits(self) -> u32 {
        match self {
            Self::Group1 => 768,
            Self::Group2 => 1024,
            Self::Group5 => 1536,
            Self::Group14 => 2048,
            Self::Group15 => 3072,
            Self::Group16 => 4096,
            Self::Group17 => 6144,
            Self::Group18 => 8192,
        }
    }

    /// Size of p in bytes.
    pub const fn byte_len(self) -> usize {
        (self.bits() / 8) as usize
    }

    /// Estimated strength in bits (NIST SP 800-57 Part 1 Table 2, interpolated).
    pub const fn strength_bits(self) -> u32 {
        match self {
            Self::Group1 => 64,
            Self::Group2 => 80,
            Self::Group5 => 96,
            Self::Group14 => 112,
            Self::Group15 => 128,
            Self::Group16 => 152,
            Self::Group17 => 176,
            Self::Group18 => 200,
        }
    }

    /// Size of a recommended private exponent in bits: the smallest multiple
    /// of 8 whose entropy (bits - 1, the top bit is fixed) is at least twice
    /// [`Self::strength_bits`], and never below 256.
    ///
    /// | group | 1 | 2 | 5 | 14 | 15 | 16 | 17 | 18 |
    /// |---|---|---|---|---|---|---|---|---|
    /// | bits | 256 | 256 | 256 | 256 | 264 | 312 | 360 | 408 |
    pub const fn exponent_bits(self) -> u32 {
        let wanted = 2 * self.strength_bits() + 1;
        let rounded = wanted.div_ceil(8) * 8;
        if rounded < MIN_EXPONENT_BITS {
            MIN_EXPONENT_BITS
        } else {
            rounded
        }
    }
}

macro_rules! display_by_name {
    ($($ty:ty => $name:ident),* $(,)?) => {
        $(impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.$name())
            }
        })*
    };
}

display_by_name!(
    CipherAlgorithm => name,
    HashAlgorithm => name,
    CompressionAlgorithm => name,
    SasAlgorithm => name,
    SignatureAlgorithm => uri,
    ModpGroup => name,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_algorithm() {
        for c in CipherAlgorithm::CONFIDENTIAL
            .into_iter()
            .chain([CipherAlgorithm::None])
        {
            assert_eq!(CipherAlgorithm::from_name(c.name()), Ok(c));
        }
        for h in HashAlgorithm::ALL {
            assert_eq!(HashAlgorithm::from_name(h.name()), Ok(h));
        }
        for c in CompressionAlgorithm::ALL {
            assert_eq!(CompressionAlgorithm::from_name(c.name()), Ok(c));
        }
        for s in SignatureAlgorithm::ALL {
            assert_eq!(SignatureAlgorithm::from_uri(s.uri()), Ok(s));
        }
        for g in ModpGroup::ALL {
            assert_eq!(ModpGroup::from_name(&g.name()), Ok(g));
        }
        assert_eq!(
            SasAlgorithm::from_name("sas28x5"),
            Ok(SasAlgorithm::Sas28x5)
        );
    }

    #[test]
    fn names_we_do_not_implement_are_refused_with_their_field() {
        let unknown = UnsupportedAlgorithm::Unknown;
        assert_eq!(
            HashAlgorithm::from_name("sha1").err(),
            Some(unknown(AlgorithmKind::Hash))
        );
        assert_eq!(
            HashAlgorithm::from_name("md5").err(),
            Some(unknown(AlgorithmKind::Hash))
        );
        assert_eq!(
            CipherAlgorithm::from_name("AES128-CTR").err(),
            Some(unknown(AlgorithmKind::Cipher))
        );
        assert_eq!(
            CompressionAlgorithm::from_name("lzw").err(),
            Some(unknown(AlgorithmKind::Compression))
        );
        assert_eq!(
            SasAlgorithm::from_name("sas").err(),
            Some(unknown(AlgorithmKind::Sas))
        );
        assert_eq!(
            SignatureAlgorithm::from_uri("rsa-sha1").err(),
            Some(unknown(AlgorithmKind::Signature))
        );
        // AMB-22: the elliptic groups get their own refusal.
        assert_eq!(
            ModpGroup::from_name("3"),
            Err(UnsupportedAlgorithm::EllipticGroup)
        );
        assert_eq!(
            ModpGroup::from_name("4"),
            Err(UnsupportedAlgorithm::EllipticGroup)
        );
        for bad in ["", "+14", "014x", "1400", " 14", "6"] {
            assert_eq!(
                ModpGroup::from_name(bad).err(),
                Some(unknown(AlgorithmKind::Modp)),
                "{bad:?}"
            );
        }
        assert_eq!(
            UnsupportedAlgorithm::Unknown(AlgorithmKind::Hash).to_string(),
            "unsupported hash_algs algorithm"
        );
    }

    #[test]
    fn the_rsa_and_dsa_aliases_of_amb_18_are_accepted() {
        for (alias, alg) in [
            (
                "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                SignatureAlgorithm::RsaSha256,
            ),
            ("rsa", SignatureAlgorithm::RsaSha256),
            (
                "http://www.w3.org/2009/xmldsig11#dsa-sha256",
                SignatureAlgorithm::DsaSha256,
            ),
            ("dsa", SignatureAlgorithm::DsaSha256),
        ] {
            assert_eq!(SignatureAlgorithm::from_uri(alias), Ok(alg));
        }
    }
}
