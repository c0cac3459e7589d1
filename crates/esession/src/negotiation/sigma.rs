//! Identity proofs of the SIGMA exchange (ESN-17..24, ESN-27/28, ESN-32, ESN-38).
//!
//! mac_X = HMAC(HASH, KS_X, head | pubKey_X | tail), where pubKey_X is the
//! normalized `<KeyValue/>` (empty for `none`, ESN-17). The encrypted payload is
//! mac_X itself for `none`, else `pubKey_X' | <SignatureValue>B64(SIGN(mac_X))`
//! where pubKey_X' is the key or its `<fingerprint/>` (ESN-20..22, AMB-16/19).
//! ID_X = CTR(KC_X, C_X, payload); M_X = HMAC(HASH, KM_X, CTRB(C_X before) | ID_X),
//! counter first (ESN-24).

use esession_crypto::{
    CipherAlgorithm, Counter, CtrCipher, HashAlgorithm, KeyComponents, MacKey, SecretBytes,
    SignatureAlgorithm, SigningKey, VerifyingKey, ct_eq,
};
use esession_wire::keyvalue::{KeyValue, PresentedKey, SignedIdentity};

use super::Refusal;
use crate::config::PubkeyMethod;
use crate::trust::StoredPeerKey;

/// Largest encrypted identity accepted, in bytes (an 8192-bit RSA key and signature fit).
pub(crate) const MAX_IDENTITY_LEN: usize = 8192;

/// The keys one side proves its identity with.
pub(crate) struct IdentityKeys<'a> {
    pub(crate) cipher: CipherAlgorithm,
    pub(crate) hash: HashAlgorithm,
    pub(crate) kc: &'a SecretBytes,
    pub(crate) km: &'a SecretBytes,
    pub(crate) ks: &'a SecretBytes,
}

/// The MAC input around pubKey: `head | pubKey | tail` (ESN-19, ESN-28, ESN-38).
pub(crate) struct Transcript<'a> {
    pub(crate) head: &'a [&'a [u8]],
    pub(crate) tail: &'a [&'a [u8]],
}

impl Transcript<'_> {
    fn mac(&self, keys: &IdentityKeys<'_>, pub_key: &[u8]) -> Vec<u8> {
        let mut parts: Vec<&[u8]> = Vec::with_capacity(self.head.len() + 1 + self.tail.len());
        parts.extend_from_slice(self.head);
        parts.push(pub_key);
        parts.extend_from_slice(self.tail);
        keys.hash.hmac(keys.ks.expose(), &parts)
    }
}

/// How we prove our identity.
#[derive(Clone, Copy)]
pub(crate) enum Proof<'a> {
    /// `none`: the payload is mac_X.
    None,
    /// `key` or `hash` with this signing key.
    Signed {
        /// `Key` or `Hash`.
        method: PubkeyMethod,
        /// Our key.
        key: &'a SigningKey,
    },
}

/// The `identity` and `mac` field values, and M (the SAS input when sent by Alice).
pub(crate) struct SealedIdentity {
    pub(crate) identity: Vec<u8>,
    pub(crate) m: Vec<u8>,
}

/// The `<KeyValue/>` of a verifying key (ESN-55).
pub(crate) fn key_value_of(key: &VerifyingKey) -> Option<KeyValue> {
    match key.components() {
        KeyComponents::Rsa { modulus, exponent } => Some(KeyValue::Rsa {
            modulus: modulus.clone(),
            exponent: exponent.clone(),
        }),
        KeyComponents::Dsa { p, q, g, y } => Some(KeyValue::Dsa {
            p: p.clone(),
            q: q.clone(),
            g: g.clone(),
            y: y.clone(),
            j: None,
            seed: None,
            pgen_counter: None,
        }),
        _ => None,
    }
}

/// The verifying key of a `<KeyValue/>`, if it is usable.
pub(crate) fn verifying_key_of(key: &KeyValue) -> Option<VerifyingKey> {
    match key {
        KeyValue::Rsa { modulus, exponent } => VerifyingKey::rsa(modulus, exponent).ok(),
        KeyValue::Dsa { p, q, g, y, .. } => VerifyingKey::dsa(p, q, g, y).ok(),
    }
}

/// Computes and encrypts an identity proof, advancing `counter` past ID (ESN-43).
pub(crate) fn seal(
    keys: &IdentityKeys<'_>,
    counter: &mut Counter,
    transcript: &Transcript<'_>,
    proof: Proof<'_>,
) -> Result<SealedIdentity, Refusal> {
    let mut payload = match proof {
        Proof::None => transcript.mac(keys, &[]),
        Proof::Signed { method, key } => {
            let key_value = key_value_of(key.verifying_key()).ok_or_else(Refusal::crypto)?;
            let pub_key = key_value.normalized_bytes();
            let mac = transcript.mac(keys, &pub_key);
            // ESN-20, AMB-19: the signature covers the raw mac bytes.
            let signature = key.sign(&mac).map_err(|_| Refusal::crypto())?;
            let presented = match method {
                PubkeyMethod::Hash => PresentedKey::Fingerprint(keys.hash.digest(&[&pub_key])),
                _ => PresentedKey::Key(key_value),
            };
            SignedIdentity {
                key: presented,
                signature,
            }
            .to_bytes()
        }
    };
    let cipher = CtrCipher::new(keys.cipher, keys.kc.expose()).map_err(|_| Refusal::crypto())?;
    let before = *counter;
    cipher.apply(counter, &mut payload);
    let m = MacKey::new(keys.hash, keys.km.expose()).compute(&[&before.to_bytes(), &payload]);
    Ok(SealedIdentity {
        identity: payload,
        m,
    })
}

/// What the peer must prove.
pub(crate) struct Expect<'a> {
    /// The agreed identification method of the peer.
    pub(crate) method: PubkeyMethod,
    /// The agreed signature algorithm (when `method` is not `none`).
    pub(crate) algorithm: Option<SignatureAlgorithm>,
    /// For `hash`: the stored keys whose fingerprint may match (ESN-27).
    pub(crate) candidates: &'a [StoredPeerKey],
}

/// Why an identity did not verify.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// M, the decrypted payload, the mac or the signature was wrong (ESN-27, ESN-32).
    Invalid,
    /// `hash`: no stored key has this fingerprint: terminate (ESN-27).
    UnknownFingerprint(Vec<u8>),
}

impl From<OpenError> for Refusal {
    fn from(_: OpenError) -> Self {
        Refusal::crypto()
    }
}

/// Verifies a received identity proof: M first (constant time), then the
/// decrypted payload against the recomputed mac (ESN-27, ESN-32). Advances
/// `counter` only on success. Returns the key the peer proved it holds (none
/// for `none`); whether that key is trusted is the caller's question.
pub(crate) fn open(
    keys: &IdentityKeys<'_>,
    counter: &mut Counter,
    transcript: &Transcript<'_>,
    expect: &Expect<'_>,
    identity: &[u8],
    m: &[u8],
) -> Result<Option<KeyValue>, OpenError> {
    let before = *counter;
    let mac_key = MacKey::new(keys.hash, keys.km.expose());
    if !mac_key.verify(&[&before.to_bytes(), identity], m) {
        return Err(OpenError::Invalid);
    }
    let cipher = CtrCipher::new(keys.cipher, keys.kc.expose()).map_err(|_| OpenError::Invalid)?;
    let mut next = before;
    let mut decrypted = identity.to_vec();
    cipher.apply(&mut next, &mut decrypted);
    let proven = match expect.method {
        PubkeyMethod::None => {
            let expected = transcript.mac(keys, &[]);
            if !ct_eq(&decrypted, &expected) {
                return Err(OpenError::Invalid);
            }
            None
        }
        PubkeyMethod::Key | PubkeyMethod::Hash => {
            let signed = SignedIdentity::from_bytes(&decrypted).map_err(|_| OpenError::Invalid)?;
            let key_value = match (expect.method, signed.key) {
                (PubkeyMethod::Key, PresentedKey::Key(key)) => key,
                (PubkeyMethod::Hash, PresentedKey::Fingerprint(fingerprint)) => expect
                    .candidates
                    .iter()
                    .find(|k| {
                        ct_eq(
                            &keys.hash.digest(&[&k.key.normalized_bytes()]),
                            &fingerprint,
                        )
                    })
                    .map(|k| k.key.clone())
                    .ok_or(OpenError::UnknownFingerprint(fingerprint))?,
                _ => return Err(OpenError::Invalid),
            };
            let verifying = verifying_key_of(&key_value).ok_or(OpenError::Invalid)?;
            if Some(verifying.algorithm()) != expect.algorithm {
                return Err(OpenError::Invalid);
            }
            let mac = transcript.mac(keys, &key_value.normalized_bytes());
            verifying
                .verify(&mac, &signed.signature)
                .map_err(|_| OpenError::Invalid)?;
            Some(key_value)
        }
    };
    *counter = next;
    Ok(proven)
}
