//! Key derivation of XEP-0116 (ESN-16, ESN-35..40) and XEP-0200 rekeying (ENC-15).
//!
//! Every key is `HMAC(HASH, K, label)`. Cipher keys take the rightmost
//! (least-significant) key-size bytes of the HMAC output; MAC keys, SIGMA keys
//! and retained secrets take the whole output (CMN-04, AMB-12).

use crate::{CipherAlgorithm, CryptoError, HashAlgorithm, Hashing, SecretBytes};

/// The ASCII labels of ESN-16 and ENC-15 (no terminator).
pub mod labels {
    /// KC_A.
    pub const INITIATOR_CIPHER_KEY: &[u8] = b"Initiator Cipher Key";
    /// KM_A.
    pub const INITIATOR_MAC_KEY: &[u8] = b"Initiator MAC Key";
    /// KS_A.
    pub const INITIATOR_SIGMA_KEY: &[u8] = b"Initiator SIGMA Key";
    /// KC_B.
    pub const RESPONDER_CIPHER_KEY: &[u8] = b"Responder Cipher Key";
    /// KM_B.
    pub const RESPONDER_MAC_KEY: &[u8] = b"Responder MAC Key";
    /// KS_B.
    pub const RESPONDER_SIGMA_KEY: &[u8] = b"Responder SIGMA Key";
    /// Cipher key of whoever sent `<key/>` (ENC-15).
    pub const REKEY_INITIATOR_CRYPT: &[u8] = b"Rekey Initiator Crypt";
    /// MAC key of whoever sent `<key/>`.
    pub const REKEY_INITIATOR_MAC: &[u8] = b"Rekey Initiator MAC";
    /// Cipher key of whoever accepted the `<key/>`.
    pub const REKEY_ACCEPTOR_CRYPT: &[u8] = b"Rekey Acceptor Crypt";
    /// MAC key of whoever accepted the `<key/>`.
    pub const REKEY_ACCEPTOR_MAC: &[u8] = b"Rekey Acceptor MAC";
    /// srshash message (ESN-37).
    pub const SHARED_RETAINED_SECRET: &[u8] = b"Shared Retained Secret";
    /// RS_new message (ESN-40).
    pub const NEW_RETAINED_SECRET: &[u8] = b"New Retained Secret";
    /// SAS hash suffix (ESN-33).
    pub const SHORT_AUTHENTICATION_STRING: &[u8] = b"Short Authentication String";
}

/// Checks that `hash` yields at least `key_len` bytes (ESN-05: "the hash must be long enough").
pub fn check_hash_covers_cipher(
    hash: HashAlgorithm,
    cipher: CipherAlgorithm,
) -> Result<(), CryptoError> {
    if hash.output_len() < cipher.key_len() {
        return Err(CryptoError::HashTooShort);
    }
    Ok(())
}

/// `HMAC(HASH, K, label)` cut to its rightmost `key_len` bytes (CMN-04).
pub fn derive_cipher_key(
    hash: HashAlgorithm,
    cipher: CipherAlgorithm,
    k: &[u8],
    label: &[u8],
) -> Result<SecretBytes, CryptoError> {
    check_hash_covers_cipher(hash, cipher)?;
    let full = hash.hmac_secret(k, &[label]);
    let start = full.len() - cipher.key_len();
    Ok(SecretBytes::from_slice(&full.expose()[start..]))
}

/// `HMAC(HASH, K, label)` in full: MAC and SIGMA keys, retained secrets (CMN-04).
pub fn derive_full_key(hash: HashAlgorithm, k: &[u8], label: &[u8]) -> SecretBytes {
    hash.hmac_secret(k, &[label])
}

/// The keys one direction uses: cipher key KC, MAC key KM and SIGMA key KS.
pub struct DirectionKeys {
    /// KC: encrypts this direction's stanzas and identity.
    pub cipher: SecretBytes,
    /// KM: MACs this direction's stanzas and identity.
    pub mac: SecretBytes,
    /// KS: keys this side's identity MAC (mac_A / mac_B).
    pub sigma: SecretBytes,
}

/// The six labelled keys of ESN-16, derived from K (or K_final).
pub struct SessionKeys {
    /// KC_A, KM_A, KS_A (Alice is always the initiator).
    pub initiator: DirectionKeys,
    /// KC_B, KM_B, KS_B.
    pub responder: DirectionKeys,
}

impl SessionKeys {
    /// Derives all six keys from `k` (ESN-16, ESN-36).
    pub fn derive(
        hash: HashAlgorithm,
        cipher: CipherAlgorithm,
        k: &SecretBytes,
    ) -> Result<Self, CryptoError> {
        Ok(Self {
            initiator: derive_direction(
                hash,
                cipher,
                k,
                [
                    labels::INITIATOR_CIPHER_KEY,
                    labels::INITIATOR_MAC_KEY,
                    labels::INITIATOR_SIGMA_KEY,
                ],
            )?,
            responder: derive_direction(
                hash,
                cipher,
                k,
                [
                    labels::RESPONDER_CIPHER_KEY,
                    labels::RESPONDER_MAC_KEY,
                    labels::RESPONDER_SIGMA_KEY,
                ],
            )?,
        })
    }
}

fn derive_direction(
    hash: HashAlgorithm,
    cipher: CipherAlgorithm,
    k: &SecretBytes,
    [cipher_label, mac_label, sigma_label]: [&[u8]; 3],
) -> Result<DirectionKeys, CryptoError> {
    Ok(DirectionKeys {
        cipher: derive_cipher_key(hash, cipher, k.expose(), cipher_label)?,
        mac: derive_full_key(hash, k.expose(), mac_label),
        sigma: derive_full_key(hash, k.expose(), sigma_label),
    })
}

/// Which side of a XEP-0200 key exchange a party plays (ENC-15): the one that
/// sent `<key/>` is the initiator, whatever its role in the session.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RekeyRole {
    /// Sent the `<key/>`.
    Initiator,
    /// Received the `<key/>`.
    Acceptor,
}

/// The cipher and MAC keys of one side after a rekey.
pub struct RekeyKeys {
    /// New KC.
    pub cipher: SecretBytes,
    /// New KM.
    pub mac: SecretBytes,
}

impl RekeyKeys {
    /// Derives the keys of `role` from the raw rekey secret `k` = MPI(g^xy mod p)
    /// (ENC-15, AMB-13: 0200 keys from the raw value, not its hash).
    pub fn derive(
        hash: HashAlgorithm,
        cipher: CipherAlgorithm,
        k: &SecretBytes,
        role: RekeyRole,
    ) -> Result<Self, CryptoError> {
        let (crypt, mac) = match role {
            RekeyRole::Initiator => (labels::REKEY_INITIATOR_CRYPT, labels::REKEY_INITIATOR_MAC),
            RekeyRole::Acceptor => (labels::REKEY_ACCEPTOR_CRYPT, labels::REKEY_ACCEPTOR_MAC),
        };
        Ok(Self {
            cipher: derive_cipher_key(hash, cipher, k.expose(), crypt)?,
            mac: derive_full_key(hash, k.expose(), mac),
        })
    }
}

/// K_final = HASH(K | SRS | OSS), each secret appended only if present (ESN-36, AMB-20).
pub fn final_shared_secret(
    hash: HashAlgorithm,
    k: &SecretBytes,
    retained: Option<&SecretBytes>,
    other: Option<&SecretBytes>,
) -> SecretBytes {
    let empty: &[u8] = &[];
    hash.digest_secret(&[
        k.expose(),
        retained.map_or(empty, SecretBytes::expose),
        other.map_or(empty, SecretBytes::expose),
    ])
}

/// rshash = HMAC(HASH, key = N_A, msg = RS) (ESN-30, ESN-35).
pub fn retained_secret_hash(
    hash: HashAlgorithm,
    initiator_nonce: &[u8],
    rs: &SecretBytes,
) -> Vec<u8> {
    hash.hmac(initiator_nonce, &[rs.expose()])
}

/// srshash = HMAC(HASH, key = SRS, msg = "Shared Retained Secret") (ESN-37, ESN-41).
pub fn shared_retained_secret_hash(hash: HashAlgorithm, srs: &SecretBytes) -> Vec<u8> {
    hash.hmac(srs.expose(), &[labels::SHARED_RETAINED_SECRET])
}

/// RS_new = HMAC(HASH, K_final, "New Retained Secret") (ESN-40).
pub fn new_retained_secret(hash: HashAlgorithm, k_final: &SecretBytes) -> SecretBytes {
    derive_full_key(hash, k_final.expose(), labels::NEW_RETAINED_SECRET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes128_cipher_key_is_rightmost_16_bytes_and_mac_key_is_all_32() {
        // CMN-04 test.
        let k = SecretBytes::from_slice(&[0x42; 32]);
        let keys =
            SessionKeys::derive(HashAlgorithm::Sha256, CipherAlgorithm::Aes128Ctr, &k).unwrap();
        let full = HashAlgorithm::Sha256.hmac(k.expose(), &[b"Initiator Cipher Key"]);
        assert_eq!(keys.initiator.cipher.expose(), &full[16..32]);
        let km = HashAlgorithm::Sha256.hmac(k.expose(), &[b"Initiator MAC Key"]);
        assert_eq!(keys.initiator.mac.expose(), &km[..]);
        assert_eq!(keys.initiator.mac.len(), 32);
    }

    #[test]
    fn whirlpool_keys_are_64_bytes_and_cipher_keys_rightmost() {
        let k = SecretBytes::from_slice(&[1; 64]);
        let keys =
            SessionKeys::derive(HashAlgorithm::Whirlpool, CipherAlgorithm::Serpent256Ctr, &k)
                .unwrap();
        let full = HashAlgorithm::Whirlpool.hmac(k.expose(), &[b"Responder Cipher Key"]);
        assert_eq!(keys.responder.cipher.expose(), &full[32..64]);
        assert_eq!(keys.responder.sigma.len(), 64);
    }

    #[test]
    fn initiator_and_responder_keys_differ() {
        // ESN-16: swapped roles give different keys.
        let k = SecretBytes::from_slice(&[3; 32]);
        let keys =
            SessionKeys::derive(HashAlgorithm::Sha256, CipherAlgorithm::Aes256Ctr, &k).unwrap();
        assert!(!keys.initiator.mac.ct_eq(keys.responder.mac.expose()));
        assert!(!keys.initiator.cipher.ct_eq(keys.responder.cipher.expose()));
    }

    #[test]
    fn rekey_labels_depend_on_who_sent_key() {
        let k = SecretBytes::from_slice(&[9; 128]);
        let hash = HashAlgorithm::Sha256;
        let a =
            RekeyKeys::derive(hash, CipherAlgorithm::Aes128Ctr, &k, RekeyRole::Initiator).unwrap();
        let b =
            RekeyKeys::derive(hash, CipherAlgorithm::Aes128Ctr, &k, RekeyRole::Acceptor).unwrap();
        assert_eq!(
            a.mac.expose(),
            &hash.hmac(k.expose(), &[b"Rekey Initiator MAC"])[..]
        );
        assert_eq!(
            b.cipher.expose(),
            &hash.hmac(k.expose(), &[b"Rekey Acceptor Crypt"])[16..]
        );
    }

    #[test]
    fn final_secret_appends_only_present_secrets() {
        let hash = HashAlgorithm::Sha256;
        let k = SecretBytes::from_slice(b"K");
        let srs = SecretBytes::from_slice(b"SRS");
        let oss = SecretBytes::from_slice(b"pw");
        assert_eq!(
            final_shared_secret(hash, &k, None, None).expose(),
            &hash.digest(&[b"K"])[..]
        );
        assert_eq!(
            final_shared_secret(hash, &k, Some(&srs), Some(&oss)).expose(),
            &hash.digest(&[b"KSRSpw"])[..]
        );
        assert_eq!(
            final_shared_secret(hash, &k, None, Some(&oss)).expose(),
            &hash.digest(&[b"Kpw"])[..]
        );
    }
}
