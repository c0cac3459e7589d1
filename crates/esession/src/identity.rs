//! Identity proofs of the SIGMA exchange (ESN-17..24, ESN-27/28, ESN-32, ESN-38).
//!
//! mac_X = HMAC(HASH, KS_X, head | pubKey_X | tail), where pubKey_X is the
//! normalized `<KeyValue/>` (empty for `none`, ESN-17). The encrypted payload is
//! mac_X itself for `none`, else `pubKey_X' | <SignatureValue>B64(SIGN(mac_X))`
//! where pubKey_X' is the key or its `<fingerprint/>` (ESN-20..22, AMB-16/19).
//! ID_X = CTR(KC_X, C_X, payload); M_X = HMAC(HASH, KM_X, CTRB(C_X before) | ID_X),
//! counter first (ESN-24).
//!
//! [`open`] is the only maker of [`IdentityProof`], which
//! the established session's constructor requires: no session exists
//! whose peer's identity was not verified. This module sits below both the
//! negotiation and the session (it imports neither).

use esession_crypto::Hashing;
use esession_crypto::{
    CipherAlgorithm, Counter, CtrCipher, HashAlgorithm, MacKey, SecretBytes, SignatureAlgorithm,
    SigningKey, VerifyingKey, ct_eq,
};
use esession_wire::keyvalue::{KeyValue, PresentedKey, SignedIdentity};

use crate::config::PubkeyMethod;
use crate::trust::{StoredPeerKey, key_value_of};

/// The keys one side proves its identity with.
pub(crate) struct IdentityKeys<'a> {
    /// The wire profile: keystream start and the counter bytes inside M.
    pub(crate) profile: crate::profile::Profile,
    pub(crate) cipher: CipherAlgorithm,
    pub(crate) hash: HashAlgorithm,
    pub(crate) kc: &'a SecretBytes,
    pub(crate) km: &'a SecretBytes,
    pub(crate) ks: &'a SecretBytes,
}

impl<'a> IdentityKeys<'a> {
    /// One party's KC, KM and KS (ESN-16) with the agreed algorithms.
    pub(crate) fn of(
        profile: crate::profile::Profile,
        cipher: CipherAlgorithm,
        hash: HashAlgorithm,
        keys: &'a esession_crypto::kdf::DirectionKeys,
    ) -> Self {
        Self {
            profile,
            cipher,
            hash,
            kc: &keys.cipher,
            km: &keys.mac,
            ks: &keys.sigma,
        }
    }
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

/// The verifying key of a `<KeyValue/>`, if it is usable.
pub(crate) fn verifying_key_of(key: &KeyValue) -> Option<VerifyingKey> {
    match key {
        KeyValue::Rsa { modulus, exponent } => VerifyingKey::rsa(modulus, exponent).ok(),
        KeyValue::Dsa { p, q, g, y, .. } => VerifyingKey::dsa(p, q, g, y).ok(),
    }
}

/// Our own identity proof could not be made (a key or cipher the crypto
/// layer refused): a local failure, answered as a failed negotiation.
#[derive(Debug)]
pub(crate) struct SealError;

/// Computes and encrypts an identity proof, advancing `counter` past ID (ESN-43).
pub(crate) fn seal(
    keys: &IdentityKeys<'_>,
    counter: &mut Counter,
    transcript: &Transcript<'_>,
    proof: Proof<'_>,
) -> Result<SealedIdentity, SealError> {
    let mut payload = match proof {
        Proof::None => transcript.mac(keys, &[]),
        Proof::Signed { method, key } => {
            let key_value = key_value_of(key.verifying_key()).ok_or(SealError)?;
            let pub_key = key_value.normalized_bytes();
            let mac = transcript.mac(keys, &pub_key);
            // ESN-20, AMB-19: the signature covers the raw mac bytes.
            let signature = key.sign(&mac).map_err(|_| SealError)?;
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
    let cipher = CtrCipher::new(keys.cipher, keys.kc.expose()).map_err(|_| SealError)?;
    let before = *counter;
    // The identity starts the direction's keystream: no spare bytes yet.
    let mut used = 16;
    keys.profile
        .apply_ctr(&cipher, counter, &mut used, &mut payload);
    let counter_bytes = keys.profile.identity_mac_counter.encode(before);
    let m = MacKey::new(keys.hash, keys.km.expose()).compute(&[&counter_bytes, &payload]);
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

/// Evidence that a peer's identity proof verified (ESN-27, ESN-32): made
/// only by [`open`], required to build an established session. Zero-sized.
#[derive(Debug)]
pub(crate) struct IdentityProof {
    _made_by_open: (),
}

impl IdentityProof {
    /// XEP-0187 (OFF-08): an offline recipient's identity is proven by the
    /// signature on her published options, not by an identity field. Only
    /// [`crate::offline`] calls this, after a signature verified with a key
    /// the user verified.
    pub(crate) fn signed_options_verified() -> Self {
        Self { _made_by_open: () }
    }

    /// For unit tests of the session alone, which have no negotiation.
    #[cfg(test)]
    pub(crate) fn assumed_in_tests() -> Self {
        Self { _made_by_open: () }
    }
}

/// A verified identity: the key the peer proved it holds (none for `none`)
/// and the proof token.
pub(crate) struct VerifiedIdentity {
    /// The peer's key; whether it is trusted is the caller's question.
    pub(crate) key: Option<KeyValue>,
    pub(crate) proof: IdentityProof,
}

/// Verifies a received identity proof: M first (constant time), then the
/// decrypted payload against the recomputed mac (ESN-27, ESN-32). Advances
/// `counter` only on success. Returns the key the peer proved it holds (none
/// for `none`) with the [`IdentityProof`].
pub(crate) fn open(
    keys: &IdentityKeys<'_>,
    counter: &mut Counter,
    transcript: &Transcript<'_>,
    expect: &Expect<'_>,
    identity: &[u8],
    m: &[u8],
) -> Result<VerifiedIdentity, OpenError> {
    let before = *counter;
    let mac_key = MacKey::new(keys.hash, keys.km.expose());
    let counter_bytes = keys.profile.identity_mac_counter.encode(before);
    if !mac_key.verify(&[&counter_bytes, identity], m) {
        return Err(OpenError::Invalid);
    }
    let cipher = CtrCipher::new(keys.cipher, keys.kc.expose()).map_err(|_| OpenError::Invalid)?;
    let mut next = before;
    let mut used = 16;
    let mut decrypted = identity.to_vec();
    keys.profile
        .apply_ctr(&cipher, &mut next, &mut used, &mut decrypted);
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
    Ok(VerifiedIdentity {
        key: proven,
        proof: IdentityProof { _made_by_open: () },
    })
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "test code"
    )]
    //! Tampering inside the encrypted identity (ESN-20..22, ESN-27, ESN-55):
    //! the attacker here knows KC and KM (she is the peer, or the test), so
    //! only the signature and the key binding stand between her and success.

    use std::sync::OnceLock;

    use super::*;
    use crate::trust::key_fingerprint;

    fn rsa(n: usize) -> &'static SigningKey {
        static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
        &KEYS.get_or_init(|| {
            (0..2)
                .map(|_| SigningKey::generate_rsa(2048).unwrap())
                .collect()
        })[n]
    }

    struct Fixture {
        kc: SecretBytes,
        km: SecretBytes,
        ks: SecretBytes,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                kc: SecretBytes::from_slice(&[7u8; 16]),
                km: SecretBytes::from_slice(&[8u8; 32]),
                ks: SecretBytes::from_slice(&[9u8; 32]),
            }
        }

        fn keys(&self) -> IdentityKeys<'_> {
            IdentityKeys {
                profile: crate::profile::Profile::standard(),
                cipher: CipherAlgorithm::Aes128Ctr,
                hash: HashAlgorithm::Sha256,
                kc: &self.kc,
                km: &self.km,
                ks: &self.ks,
            }
        }

        /// Re-encrypts `payload` as a valid ID with a valid M.
        fn reseal(&self, payload: &[u8]) -> (Vec<u8>, Vec<u8>) {
            let cipher = CtrCipher::new(CipherAlgorithm::Aes128Ctr, self.kc.expose()).unwrap();
            let mut counter = Counter::new(5);
            let mut id = payload.to_vec();
            cipher.apply(&mut counter, &mut id);
            let m = MacKey::new(HashAlgorithm::Sha256, self.km.expose())
                .compute(&[&Counter::new(5).to_bytes(), &id]);
            (id, m)
        }

        fn decrypt(&self, id: &[u8]) -> Vec<u8> {
            let cipher = CtrCipher::new(CipherAlgorithm::Aes128Ctr, self.kc.expose()).unwrap();
            let mut plain = id.to_vec();
            cipher.apply(&mut Counter::new(5), &mut plain);
            plain
        }
    }

    const HEAD: &[&[u8]] = &[b"N_A", b"N_B", b"d"];
    const TAIL: &[&[u8]] = &[b"form_B"];

    fn transcript() -> Transcript<'static> {
        Transcript {
            head: HEAD,
            tail: TAIL,
        }
    }

    fn stored(key: &SigningKey) -> StoredPeerKey {
        let kv = key_value_of(key.verifying_key()).unwrap();
        StoredPeerKey {
            fingerprint: key_fingerprint(&kv),
            key: kv,
            petname: None,
            verified: true,
            jids: Vec::new(),
        }
    }

    fn open_payload(
        f: &Fixture,
        payload: &[u8],
        method: PubkeyMethod,
        candidates: &[StoredPeerKey],
    ) -> Result<Option<KeyValue>, OpenError> {
        let (id, m) = f.reseal(payload);
        let expect = Expect {
            method,
            algorithm: Some(SignatureAlgorithm::RsaSha256),
            candidates,
        };
        open(
            &f.keys(),
            &mut Counter::new(5),
            &transcript(),
            &expect,
            &id,
            &m,
        )
        .map(|verified| verified.key)
    }

    /// The identity payload Bob's key 0 produces.
    fn signed_payload(f: &Fixture, method: PubkeyMethod) -> SignedIdentity {
        let sealed = seal(
            &f.keys(),
            &mut Counter::new(5),
            &transcript(),
            Proof::Signed {
                method,
                key: rsa(0),
            },
        )
        .unwrap();
        SignedIdentity::from_bytes(&f.decrypt(&sealed.identity)).unwrap()
    }

    #[test]
    fn an_untouched_signed_identity_opens_to_the_signers_key() {
        let f = Fixture::new();
        let payload = signed_payload(&f, PubkeyMethod::Key);
        let key = open_payload(&f, &payload.to_bytes(), PubkeyMethod::Key, &[]).unwrap();
        assert_eq!(key, key_value_of(rsa(0).verifying_key()));
    }

    #[test]
    fn a_flipped_signature_value_is_refused() {
        // ESN-20.
        let f = Fixture::new();
        let mut payload = signed_payload(&f, PubkeyMethod::Key);
        payload.signature[17] ^= 1;
        assert!(matches!(
            open_payload(&f, &payload.to_bytes(), PubkeyMethod::Key, &[]),
            Err(OpenError::Invalid)
        ));
    }

    #[test]
    fn an_altered_modulus_or_exponent_is_refused() {
        // ESN-55: the key is in the mac, and the signature no longer verifies.
        let f = Fixture::new();
        for part in 0..2 {
            let mut payload = signed_payload(&f, PubkeyMethod::Key);
            let PresentedKey::Key(KeyValue::Rsa { modulus, exponent }) = &mut payload.key else {
                panic!("an RSA key");
            };
            if part == 0 {
                modulus[100] ^= 0x10;
            } else {
                *exponent = vec![3];
            }
            assert!(
                matches!(
                    open_payload(&f, &payload.to_bytes(), PubkeyMethod::Key, &[]),
                    Err(OpenError::Invalid)
                ),
                "part {part}"
            );
        }
    }

    #[test]
    fn another_key_with_the_original_signature_is_refused() {
        // Mallory presents Bob's key but can only sign with hers, or the reverse.
        let f = Fixture::new();
        let mut payload = signed_payload(&f, PubkeyMethod::Key);
        payload.key = PresentedKey::Key(key_value_of(rsa(1).verifying_key()).unwrap());
        assert!(matches!(
            open_payload(&f, &payload.to_bytes(), PubkeyMethod::Key, &[]),
            Err(OpenError::Invalid)
        ));
    }

    #[test]
    fn a_fingerprint_is_looked_up_and_a_changed_one_is_unknown() {
        // ESN-21, ESN-27, AMB-16.
        let f = Fixture::new();
        let payload = signed_payload(&f, PubkeyMethod::Hash);
        let PresentedKey::Fingerprint(fp) = &payload.key else {
            panic!("a fingerprint");
        };
        let kv = key_value_of(rsa(0).verifying_key()).unwrap();
        assert_eq!(fp, &HashAlgorithm::Sha256.digest(&[&kv.normalized_bytes()]));
        let candidates = [stored(rsa(1)), stored(rsa(0))];
        assert_eq!(
            open_payload(&f, &payload.to_bytes(), PubkeyMethod::Hash, &candidates).unwrap(),
            Some(kv)
        );
        // Not held: terminate (ESN-27).
        assert!(matches!(
            open_payload(
                &f,
                &payload.to_bytes(),
                PubkeyMethod::Hash,
                &candidates[..1]
            ),
            Err(OpenError::UnknownFingerprint(_))
        ));
        // A fingerprint of another held key: its signature does not verify.
        let mut other = payload.clone();
        other.key = PresentedKey::Fingerprint(candidates[0].key_hash());
        assert!(matches!(
            open_payload(&f, &other.to_bytes(), PubkeyMethod::Hash, &candidates),
            Err(OpenError::Invalid)
        ));
    }

    #[test]
    fn the_wrong_presentation_for_the_method_is_refused() {
        // A full key where a fingerprint was agreed, and the reverse; raw mac bytes.
        let f = Fixture::new();
        let key = signed_payload(&f, PubkeyMethod::Key);
        let hash = signed_payload(&f, PubkeyMethod::Hash);
        let candidates = [stored(rsa(0))];
        assert!(matches!(
            open_payload(&f, &key.to_bytes(), PubkeyMethod::Hash, &candidates),
            Err(OpenError::Invalid)
        ));
        assert!(matches!(
            open_payload(&f, &hash.to_bytes(), PubkeyMethod::Key, &candidates),
            Err(OpenError::Invalid)
        ));
        assert!(matches!(
            open_payload(&f, &[0u8; 32], PubkeyMethod::Key, &[]),
            Err(OpenError::Invalid)
        ));
        // And a signed payload where `none` was agreed.
        assert!(matches!(
            open_payload(&f, &key.to_bytes(), PubkeyMethod::None, &[]),
            Err(OpenError::Invalid)
        ));
    }

    impl StoredPeerKey {
        fn key_hash(&self) -> Vec<u8> {
            HashAlgorithm::Sha256.digest(&[&self.key.normalized_bytes()])
        }
    }
}
