//! Encryption at rest: the data key, its derivation, sealing of secret columns,
//! and the tags that authenticate rows.
//!
//! A sealed value is `0x01 | nonce (12) | AES-256-GCM ciphertext | tag (16)`.
//! The associated data binds it to its table, column and row identity
//! ([`aad`]), so a ciphertext copied into another row or column fails to open.
//!
//! A row tag is HMAC-SHA256 under a key derived from the data key with HKDF
//! (its own info label, so it is independent of the AES key) over
//! [`row_tag_input`]: the table name and every field of the row, each
//! type-tagged and length-prefixed.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::{hkdf, hmac};
use esession_crypto::SecretBytes;
use zeroize::Zeroizing;

use crate::StoreError;

/// Format byte of every sealed value (lets a later version change the scheme).
const SEALED_V1: u8 = 1;
const TAG_LEN: usize = 16;
/// Length of the random salt kept in the `meta` table.
pub(crate) const SALT_LEN: usize = 16;
/// Length of the data key and of a key file.
pub(crate) const KEY_LEN: usize = 32;
/// The plaintext of the key-check value.
const KEY_CHECK: &[u8] = b"esession-store key check v1";
const KEYFILE_INFO: &[u8] = b"esession-store v1 data key from key file";
/// HKDF info of the row-tag (HMAC) key derived from the data key.
const ROW_TAG_INFO: &[u8] = b"esession-store v3 row tag key";

/// Argon2id cost parameters for passphrase-protected stores.
///
/// They are stored in the database, so a store created with these keeps
/// opening after the defaults are raised, and [`crate::Store::rekey`] can move a
/// store to stronger ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
}

impl KdfParams {
    /// The defaults: 64 MiB of memory, 3 passes, 1 lane (about a third of a
    /// second on a current laptop core).
    pub const RECOMMENDED: Self = Self {
        m_cost_kib: 64 * 1024,
        t_cost: 3,
        p_cost: 1,
    };

    /// The most memory accepted: 1 GiB (16 times [`KdfParams::RECOMMENDED`]).
    pub const MAX_M_COST_KIB: u32 = 1024 * 1024;
    /// The most passes accepted.
    pub const MAX_T_COST: u32 = 64;
    /// The most lanes accepted.
    pub const MAX_P_COST: u32 = 16;
    /// The most work accepted, memory (KiB) times passes: 4 GiB-passes, about
    /// 21 times [`KdfParams::RECOMMENDED`] (64 MiB × 3), so a few seconds on a
    /// current core where the default takes a third of a second. E.g. 1 GiB
    /// with 4 passes, or 256 MiB with 16.
    pub const MAX_WORK_KIB_PASSES: u64 = 4 * 1024 * 1024;

    /// Custom parameters: memory in KiB, passes, lanes. Rejected when Argon2
    /// rejects them (e.g. memory below 8 KiB per lane) or when they exceed
    /// [`KdfParams::MAX_M_COST_KIB`], [`KdfParams::MAX_T_COST`],
    /// [`KdfParams::MAX_P_COST`] or [`KdfParams::MAX_WORK_KIB_PASSES`]: the
    /// same bounds are checked on the parameters read from a store before they
    /// are used, so a store must not be created with more.
    pub fn new(m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Result<Self, StoreError> {
        if let Some(reason) =
            Self::out_of_range(u64::from(m_cost_kib), u64::from(t_cost), u64::from(p_cost))
        {
            return Err(StoreError::Invalid(format!("Argon2 parameters: {reason}")));
        }
        let params = Self {
            m_cost_kib,
            t_cost,
            p_cost,
        };
        params.argon2_params()?;
        Ok(params)
    }

    /// What is wrong with these parameters, if they are beyond the bounds
    /// (given as read, before any conversion, so that a huge stored value is
    /// reported as it is).
    pub(crate) fn out_of_range(m_cost_kib: u64, t_cost: u64, p_cost: u64) -> Option<String> {
        if m_cost_kib > u64::from(Self::MAX_M_COST_KIB) {
            Some(format!(
                "memory {m_cost_kib} KiB is above the maximum {} KiB",
                Self::MAX_M_COST_KIB
            ))
        } else if t_cost > u64::from(Self::MAX_T_COST) {
            Some(format!(
                "{t_cost} passes are above the maximum {}",
                Self::MAX_T_COST
            ))
        } else if p_cost > u64::from(Self::MAX_P_COST) {
            Some(format!(
                "{p_cost} lanes are above the maximum {}",
                Self::MAX_P_COST
            ))
        } else if m_cost_kib.saturating_mul(t_cost) > Self::MAX_WORK_KIB_PASSES {
            Some(format!(
                "memory {m_cost_kib} KiB times {t_cost} passes is above the maximum {} KiB-passes",
                Self::MAX_WORK_KIB_PASSES
            ))
        } else {
            None
        }
    }

    /// Minimal-cost parameters (8 KiB, 1 pass) so that tests run fast.
    ///
    /// **Never use these for real data**: a passphrase protected with them can be
    /// brute-forced cheaply. Hidden from the docs for that reason.
    #[doc(hidden)]
    pub const fn insecure_fast_for_tests() -> Self {
        Self {
            m_cost_kib: 8,
            t_cost: 1,
            p_cost: 1,
        }
    }

    /// Memory cost in KiB.
    pub fn m_cost_kib(&self) -> u32 {
        self.m_cost_kib
    }

    /// Number of passes.
    pub fn t_cost(&self) -> u32 {
        self.t_cost
    }

    /// Number of lanes.
    pub fn p_cost(&self) -> u32 {
        self.p_cost
    }

    fn argon2_params(&self) -> Result<argon2::Params, StoreError> {
        argon2::Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(KEY_LEN))
            .map_err(|e| StoreError::Invalid(format!("Argon2 parameters: {e}")))
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::RECOMMENDED
    }
}

/// The AES-256-GCM key every secret column is sealed with, and the HMAC-SHA256
/// key every trust-bearing row is tagged with (HKDF-SHA256 of the data key,
/// info [`ROW_TAG_INFO`]). Held only in AWS-LC's key schedules; the
/// derivation buffers are zeroized.
pub(crate) struct DataKey {
    aead: RandomizedNonceKey,
    mac: hmac::Key,
}

impl DataKey {
    fn from_bytes(bytes: &[u8; KEY_LEN]) -> Result<Self, StoreError> {
        let aead = RandomizedNonceKey::new(&AES_256_GCM, bytes)
            .map_err(|_| StoreError::Crypto("cannot build the AES-256-GCM key"))?;
        // The data key is uniformly random (Argon2id or HKDF output), so a
        // fixed empty salt is fine; the info label separates the two keys.
        let mac = hkdf::Salt::new(hkdf::HKDF_SHA256, &[])
            .extract(bytes)
            .expand(&[ROW_TAG_INFO], hmac::HMAC_SHA256)
            .map(hmac::Key::from)
            .map_err(|_| StoreError::Crypto("HKDF failed"))?;
        Ok(Self { aead, mac })
    }

    /// Argon2id(passphrase, salt, params) used directly as the data key.
    pub(crate) fn from_passphrase(
        passphrase: &[u8],
        salt: &[u8],
        params: KdfParams,
    ) -> Result<Self, StoreError> {
        let argon = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params.argon2_params()?,
        );
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        argon
            .hash_password_into(passphrase, salt, out.as_mut())
            .map_err(|_| StoreError::Crypto("Argon2id key derivation failed"))?;
        Self::from_bytes(&out)
    }

    /// HKDF-SHA256(salt, key-file bytes, info) as the data key: a key file already
    /// has full entropy, so no slow KDF; the salt makes the data keys of two
    /// stores sharing one key file differ.
    pub(crate) fn from_key_material(ikm: &[u8], salt: &[u8]) -> Result<Self, StoreError> {
        struct Len;
        impl hkdf::KeyType for Len {
            fn len(&self) -> usize {
                KEY_LEN
            }
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        prk.expand(&[KEYFILE_INFO], Len)
            .and_then(|okm| okm.fill(out.as_mut()))
            .map_err(|_| StoreError::Crypto("HKDF failed"))?;
        Self::from_bytes(&out)
    }

    /// Seals `plaintext` under `aad` with a fresh random nonce.
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        // Encrypted in place, so the copy of the plaintext is overwritten; if
        // sealing fails, Zeroizing wipes it.
        let mut buf = Zeroizing::new(Vec::with_capacity(plaintext.len() + TAG_LEN));
        buf.extend_from_slice(plaintext);
        let nonce = self
            .aead
            .seal_in_place_append_tag(Aad::from(aad), &mut *buf)
            .map_err(|_| StoreError::Crypto("AES-256-GCM encryption failed"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
        out.push(SEALED_V1);
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Opens a value sealed under `aad`; `what` names the row for the error.
    pub(crate) fn open(
        &self,
        aad: &[u8],
        sealed: &[u8],
        what: &dyn Fn() -> String,
    ) -> Result<SecretBytes, StoreError> {
        let corrupt = || StoreError::Corrupt(format!("{} does not decrypt", what()));
        let (&format, rest) = sealed.split_first().ok_or_else(corrupt)?;
        if format != SEALED_V1 || rest.len() < NONCE_LEN + TAG_LEN {
            return Err(corrupt());
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| corrupt())?;
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let len = self
            .aead
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| corrupt())?
            .len();
        buf.truncate(len);
        Ok(SecretBytes::new(core::mem::take(&mut *buf)))
    }

    /// The key-check value stored in `meta`.
    pub(crate) fn key_check(&self) -> Result<Vec<u8>, StoreError> {
        self.seal(&aad("meta", "key_check", &[]), KEY_CHECK)
    }

    /// Whether `sealed` is this key's key-check value.
    pub(crate) fn verifies(&self, sealed: &[u8]) -> bool {
        self.open(&aad("meta", "key_check", &[]), sealed, &String::new)
            .is_ok_and(|plain| plain.ct_eq(KEY_CHECK))
    }

    /// The tag of a row of `table` whose fields are `fields`.
    pub(crate) fn row_tag(&self, table: &str, fields: &[Field<'_>]) -> Vec<u8> {
        hmac::sign(&self.mac, &row_tag_input(table, fields))
            .as_ref()
            .to_vec()
    }

    /// Checks, in constant time, that `tag` is the tag of this row; otherwise
    /// [`StoreError::Tampered`] naming the row with `what` (never its data).
    pub(crate) fn verify_row(
        &self,
        table: &str,
        fields: &[Field<'_>],
        tag: &[u8],
        what: &dyn Fn() -> String,
    ) -> Result<(), StoreError> {
        hmac::verify(&self.mac, &row_tag_input(table, fields), tag)
            .map_err(|_| StoreError::Tampered { what: what() })
    }
}

/// One field of a tagged row, typed as SQLite stores it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Field<'a> {
    /// SQL NULL (an unset petname or profile).
    Null,
    /// An INTEGER (ids, times, 0/1 flags).
    Int(i64),
    /// A TEXT (JIDs, client names, states, petnames).
    Text(&'a str),
    /// A BLOB (fingerprints, public keys, sealed values).
    Blob(&'a [u8]),
}

impl<'a> Field<'a> {
    /// An optional TEXT column.
    pub(crate) fn opt_text(value: Option<&'a str>) -> Self {
        value.map_or(Self::Null, Self::Text)
    }
}

/// What a row tag is computed over: a domain label, then the table name and
/// each field as `type (1 byte) | length (4 bytes, big-endian) | bytes`
/// (integers as 8 bytes big-endian). Every field is typed and
/// length-prefixed, so two different rows (or a NULL and an empty string, or
/// a field boundary moved) never encode alike; the table name keeps a row of
/// one table from verifying as a row of another.
pub(crate) fn row_tag_input(table: &str, fields: &[Field<'_>]) -> Vec<u8> {
    fn push(out: &mut Vec<u8>, kind: u8, bytes: &[u8]) {
        out.push(kind);
        // Fields are far below 4 GiB; saturate rather than truncate silently.
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(bytes);
    }
    let mut out = b"esession-store/row-tag/v1".to_vec();
    push(&mut out, b't', table.as_bytes());
    for field in fields {
        match *field {
            Field::Null => push(&mut out, b'n', &[]),
            Field::Int(v) => push(&mut out, b'i', &v.to_be_bytes()),
            Field::Text(s) => push(&mut out, b's', s.as_bytes()),
            Field::Blob(b) => push(&mut out, b'b', b),
        }
    }
    out
}

/// Associated data for a sealed value: a domain tag, then table, column and
/// every identity field, each length-prefixed (so no two field lists collide).
pub(crate) fn aad(table: &str, column: &str, identity: &[&[u8]]) -> Vec<u8> {
    let mut out = b"esession-store/sealed/v1".to_vec();
    for field in [table.as_bytes(), column.as_bytes()]
        .into_iter()
        .chain(identity.iter().copied())
    {
        // Fields are far below 4 GiB; saturate rather than truncate silently.
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// Fresh random bytes from AWS-LC's generator.
pub(crate) fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, StoreError> {
    let mut out = Zeroizing::new([0u8; N]);
    aws_lc_rs::rand::fill(out.as_mut()).map_err(|_| StoreError::Crypto("random generator"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::from_key_material(&[7u8; 32], &[1u8; 16]).unwrap()
    }

    #[test]
    fn sealed_values_open_under_the_same_aad_only() {
        let k = key();
        let a = aad("t", "c", &[b"row1"]);
        let sealed = k.seal(&a, b"secret").unwrap();
        assert_eq!(
            k.open(&a, &sealed, &String::new).unwrap().expose(),
            b"secret"
        );
        let b = aad("t", "c", &[b"row2"]);
        assert!(matches!(
            k.open(&b, &sealed, &String::new),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let k = key();
        let a = aad("t", "c", &[]);
        assert_ne!(k.seal(&a, b"x").unwrap(), k.seal(&a, b"x").unwrap());
    }

    #[test]
    fn aad_fields_are_length_prefixed() {
        assert_ne!(aad("ab", "c", &[]), aad("a", "bc", &[]));
        assert_ne!(aad("t", "c", &[b"ab", b""]), aad("t", "c", &[b"a", b"b"]));
    }

    #[test]
    fn truncated_or_flipped_values_are_corrupt() {
        let k = key();
        let a = aad("t", "c", &[]);
        let mut sealed = k.seal(&a, b"secret").unwrap();
        assert!(k.open(&a, &sealed[..10], &String::new).is_err());
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(k.open(&a, &sealed, &String::new).is_err());
    }

    #[test]
    fn key_check_distinguishes_keys() {
        let k = key();
        let other = DataKey::from_key_material(&[8u8; 32], &[1u8; 16]).unwrap();
        let check = k.key_check().unwrap();
        assert!(k.verifies(&check));
        assert!(!other.verifies(&check));
    }

    #[test]
    fn passphrase_derivation_depends_on_salt_and_passphrase() {
        let p = KdfParams::insecure_fast_for_tests();
        let k = DataKey::from_passphrase(b"pw", &[1u8; 16], p).unwrap();
        let check = k.key_check().unwrap();
        assert!(
            DataKey::from_passphrase(b"pw", &[1u8; 16], p)
                .unwrap()
                .verifies(&check)
        );
        assert!(
            !DataKey::from_passphrase(b"pW", &[1u8; 16], p)
                .unwrap()
                .verifies(&check)
        );
        assert!(
            !DataKey::from_passphrase(b"pw", &[2u8; 16], p)
                .unwrap()
                .verifies(&check)
        );
    }

    #[test]
    fn kdf_params_are_validated() {
        assert!(KdfParams::new(0, 1, 1).is_err());
        assert!(KdfParams::new(64 * 1024, 3, 1).is_ok());
        assert_eq!(KdfParams::default(), KdfParams::RECOMMENDED);
    }

    #[test]
    fn kdf_params_are_bounded() {
        let r = KdfParams::RECOMMENDED;
        // The default and a few times more pass.
        assert!(KdfParams::new(r.m_cost_kib(), r.t_cost(), r.p_cost()).is_ok());
        assert!(KdfParams::new(4 * r.m_cost_kib(), 4 * r.t_cost(), 4).is_ok());
        assert!(KdfParams::new(KdfParams::MAX_M_COST_KIB, 4, KdfParams::MAX_P_COST).is_ok());
        assert!(KdfParams::new(256 * 1024, 16, 1).is_ok());
        for (m, t, p) in [
            (KdfParams::MAX_M_COST_KIB + 1, 1, 1),
            (64 * 1024, KdfParams::MAX_T_COST + 1, 1),
            (64 * 1024, 3, KdfParams::MAX_P_COST + 1),
            (KdfParams::MAX_M_COST_KIB, 5, 1),
            (u32::MAX, u32::MAX, u32::MAX),
        ] {
            let err = KdfParams::new(m, t, p).unwrap_err();
            assert!(
                matches!(&err, StoreError::Invalid(text) if text.contains("maximum")),
                "{m} {t} {p}: {err}"
            );
        }
    }

    #[test]
    fn row_tags_cover_table_and_every_field() {
        let k = key();
        let fields = [Field::Text("me@x"), Field::Int(1), Field::Null];
        let tag = k.row_tag("t", &fields);
        assert_eq!(tag.len(), 32, "HMAC-SHA256, untruncated");
        assert!(k.verify_row("t", &fields, &tag, &String::new).is_ok());
        let other = DataKey::from_key_material(&[8u8; 32], &[1u8; 16]).unwrap();
        for (table, fields) in [
            ("u", &fields[..]),
            ("t", &[Field::Text("me@y"), Field::Int(1), Field::Null][..]),
            ("t", &[Field::Text("me@x"), Field::Int(0), Field::Null][..]),
            (
                "t",
                &[Field::Text("me@x"), Field::Int(1), Field::Text("")][..],
            ),
            ("t", &fields[..2]),
        ] {
            assert!(matches!(
                k.verify_row(table, fields, &tag, &|| "row".into()),
                Err(StoreError::Tampered { what }) if what == "row"
            ));
        }
        assert!(other.verify_row("t", &fields, &tag, &String::new).is_err());
        let mut flipped = tag.clone();
        flipped[0] ^= 1;
        assert!(k.verify_row("t", &fields, &flipped, &String::new).is_err());
        assert!(k.verify_row("t", &fields, &[], &String::new).is_err());
    }

    #[test]
    fn row_tag_input_is_unambiguous() {
        assert_ne!(
            row_tag_input("t", &[Field::Text("ab"), Field::Text("")]),
            row_tag_input("t", &[Field::Text("a"), Field::Text("b")])
        );
        assert_ne!(
            row_tag_input("t", &[Field::Null]),
            row_tag_input("t", &[Field::Text("")])
        );
        assert_ne!(
            row_tag_input("t", &[Field::Text("x")]),
            row_tag_input("t", &[Field::Blob(b"x")])
        );
        assert_ne!(
            row_tag_input("ta", &[Field::Text("b")]),
            row_tag_input("t", &[Field::Text("ab")])
        );
    }
}
