//! Identity proofs of the SIGMA exchange with public keys `none` (ESN-19..24, ESN-27/28, ESN-32, ESN-38).
//!
//! mac_X = HMAC(HASH, KS_X, transcript); ID_X = CTR(KC_X, C_X, mac_X);
//! M_X = HMAC(HASH, KM_X, CTRB(C_X before) | ID_X) — counter first (ESN-24).

use esession_crypto::{
    CipherAlgorithm, Counter, CtrCipher, HashAlgorithm, MacKey, SecretBytes, ct_eq,
};

use super::Refusal;

/// The keys one side proves its identity with.
pub(crate) struct IdentityKeys<'a> {
    pub(crate) cipher: CipherAlgorithm,
    pub(crate) hash: HashAlgorithm,
    pub(crate) kc: &'a SecretBytes,
    pub(crate) km: &'a SecretBytes,
    pub(crate) ks: &'a SecretBytes,
}

/// The `identity` and `mac` field values, and M (the SAS input when sent by Alice).
pub(crate) struct SealedIdentity {
    pub(crate) identity: Vec<u8>,
    pub(crate) m: Vec<u8>,
}

/// Computes and encrypts an identity proof, advancing `counter` past ID (ESN-43).
pub(crate) fn seal(
    keys: &IdentityKeys<'_>,
    counter: &mut Counter,
    transcript: &[&[u8]],
) -> Result<SealedIdentity, Refusal> {
    let mac = keys.hash.hmac(keys.ks.expose(), transcript);
    let cipher = CtrCipher::new(keys.cipher, keys.kc.expose()).map_err(|_| Refusal::crypto())?;
    let before = *counter;
    let mut identity = mac;
    cipher.apply(counter, &mut identity);
    let m = MacKey::new(keys.hash, keys.km.expose()).compute(&[&before.to_bytes(), &identity]);
    Ok(SealedIdentity { identity, m })
}

/// Verifies a received identity proof: M first (constant time), then the
/// decrypted mac against the recomputed one (ESN-27, ESN-32). Advances
/// `counter` only on success.
pub(crate) fn open(
    keys: &IdentityKeys<'_>,
    counter: &mut Counter,
    transcript: &[&[u8]],
    identity: &[u8],
    m: &[u8],
) -> Result<(), Refusal> {
    let before = *counter;
    let mac_key = MacKey::new(keys.hash, keys.km.expose());
    if !mac_key.verify(&[&before.to_bytes(), identity], m) {
        return Err(Refusal::crypto());
    }
    let cipher = CtrCipher::new(keys.cipher, keys.kc.expose()).map_err(|_| Refusal::crypto())?;
    let mut next = before;
    let mut decrypted = identity.to_vec();
    cipher.apply(&mut next, &mut decrypted);
    let expected = keys.hash.hmac(keys.ks.expose(), transcript);
    if !ct_eq(&decrypted, &expected) {
        return Err(Refusal::crypto());
    }
    *counter = next;
    Ok(())
}
