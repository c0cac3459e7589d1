//! XEP-0189 public key publishing on the protocol side (PKP-01..10): the `<pubkey/>` we
//! publish for our RSA signing key, the checks a contact's published key must pass before it
//! is used, and revocations (PKP-05, AMB-66).
//!
//! Publication is never proof of ownership (PKP-09): a key that passes
//! [`check_published_key`] is one the contact's account published, usable for a `key` or
//! `hash` negotiation and to recognise the contact, but it stays "seen", not "verified", until
//! the user verifies it (SAS or fingerprint). Its XEP-0116 fingerprint is the `hash` one of
//! [`crate::trust::key_fingerprint`] (PKP-10), unrelated to the XEP-0189 print.

use esession_crypto::{HashAlgorithm, Hashing, SigningKey, VerifyingKey, ct_eq};
use esession_wire::keyvalue::KeyValue;
use esession_wire::pubkey::{Attestation, PublishedKey, Revocation, Timestamp};
use jid::{BareJid, Jid};

use crate::trust::key_value_of;

/// How long a key we publish stays valid: one year.
pub const DEFAULT_KEY_VALIDITY: i64 = 365 * 24 * 60 * 60;

/// Why a published key or revocation is not used.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishedKeyError {
    /// The print does not match the key's contents (PKP-02).
    #[error(
        "the key's print does not match its contents: it was altered after publication, or built wrongly"
    )]
    PrintMismatch,
    /// The key names another owner than the account that published it (AMB-67).
    #[error("the key names another owner than the account that published it")]
    WrongOwner,
    /// Outside [begin, end], or a date without a time zone (PKP-03, AMB-64).
    #[error(
        "the key is not valid now (outside its begin and end dates, or a date without a time zone)"
    )]
    NotValidNow,
    /// The numbers are not a usable RSA key.
    #[error("the published numbers are not a usable RSA key")]
    UnusableKey,
    /// XEP-0189 0.14 publishes RSA keys only.
    #[error("only an RSA key can be published (XEP-0189 carries RSA keys only)")]
    NotRsa,
    /// The revocation names another key.
    #[error("the revocation is for another key")]
    OtherKey,
    /// The revocation is not signed by the key it revokes.
    #[error("the revocation's signature does not verify with the key it revokes")]
    BadSignature,
    /// The attestation names another signer key or JID than the one we fetched.
    #[error("the attestation names another signer than the key it was checked with")]
    OtherSigner,
    /// The attestation's signature does not verify with its signer's key.
    #[error("the attestation's signature does not verify with its signer's key")]
    BadAttestation,
}

/// The print of `input`: SHA-256 (AMB-65 accepts `sha-256` only).
fn print_of(input: &[u8]) -> Vec<u8> {
    HashAlgorithm::Sha256.digest(&[input])
}

/// The `<pubkey/>` for our RSA `key`, owned by `owner`, valid from `now` for `validity`
/// seconds (PKP-01/02, AMB-64/67).
pub fn own_published_key(
    key: &SigningKey,
    owner: &BareJid,
    now: i64,
    validity: i64,
) -> Result<PublishedKey, PublishedKeyError> {
    let Some(KeyValue::Rsa { modulus, exponent }) = key_value_of(key.verifying_key()) else {
        return Err(PublishedKeyError::NotRsa);
    };
    let (Some(begin), Some(end)) = (
        Timestamp::from_unix(now),
        Timestamp::from_unix(now.saturating_add(validity)),
    ) else {
        return Err(PublishedKeyError::NotValidNow);
    };
    let jid = owner.as_str().to_owned();
    let input =
        esession_wire::pubkey::print_input(&begin.text, &end.text, &jid, &modulus, &exponent);
    Ok(PublishedKey {
        begin,
        end,
        jid,
        modulus,
        exponent,
        print: print_of(&input),
        uri: None,
    })
}

/// Checks a key `publisher` published (PKP-02/03, AMB-67) and returns it as the XEP-0116
/// `<KeyValue/>` it stands for (PKP-10). The print is compared in constant time.
pub fn check_published_key(
    key: &PublishedKey,
    publisher: &BareJid,
    now: i64,
) -> Result<KeyValue, PublishedKeyError> {
    if !ct_eq(&print_of(&key.print_input()), &key.print) {
        return Err(PublishedKeyError::PrintMismatch);
    }
    let owner = Jid::new(&key.jid).map(|jid| jid.to_bare());
    if owner.as_ref() != Ok(publisher) {
        return Err(PublishedKeyError::WrongOwner);
    }
    if !key.usable_at(now) {
        return Err(PublishedKeyError::NotValidNow);
    }
    VerifyingKey::rsa(&key.modulus, &key.exponent).map_err(|_| PublishedKeyError::UnusableKey)?;
    Ok(KeyValue::Rsa {
        modulus: key.modulus.clone(),
        exponent: key.exponent.clone(),
    })
}

/// A revocation of our `published` key, signed by the key itself (PKP-05, AMB-66).
pub fn own_revocation(
    key: &SigningKey,
    published: &PublishedKey,
    now: i64,
) -> Result<Revocation, PublishedKeyError> {
    let der = key
        .public_key_der()
        .map_err(|_| PublishedKeyError::NotRsa)?;
    let revocationtime = Timestamp::from_unix(now).ok_or(PublishedKeyError::NotValidNow)?;
    let mut revocation = Revocation {
        key: esession_wire::pubkey::base64(&der),
        keyprint: published.print_base64(),
        revocationprint: published.print_base64(),
        revocationtime,
        signature: Vec::new(),
    };
    revocation.signature = key
        .sign(&revocation.signed_data())
        .map_err(|_| PublishedKeyError::UnusableKey)?;
    Ok(revocation)
}

/// XEP-0189 attestation (PKP-05): `signer` (the key `signer_jid` published, checked) signs
/// `attested` at `now`. The signed data covers the attested key as Base64 DER, its print,
/// the signer's JID and print, and the time.
pub fn own_attestation(
    signer: &SigningKey,
    signer_published: &PublishedKey,
    signer_jid: &BareJid,
    attested: &PublishedKey,
    now: i64,
) -> Result<Attestation, PublishedKeyError> {
    let signtime = Timestamp::from_unix(now).ok_or(PublishedKeyError::NotValidNow)?;
    let mut attestation = Attestation {
        keyprint: attested.print_base64(),
        signature: String::new(),
        signerjid: signer_jid.to_string(),
        signerprint: signer_published.print_base64(),
        signtime,
    };
    let signature = signer
        .sign(&attestation.signed_data(&key_base64(attested)?))
        .map_err(|_| PublishedKeyError::UnusableKey)?;
    attestation.signature = esession_wire::pubkey::base64(&signature);
    Ok(attestation)
}

/// The attested key's character data as XEP-0189 signs it: Base64 of its DER
/// SubjectPublicKeyInfo (AMB-66).
fn key_base64(key: &PublishedKey) -> Result<String, PublishedKeyError> {
    let der = VerifyingKey::rsa(&key.modulus, &key.exponent)
        .and_then(|k| k.public_key_der())
        .map_err(|_| PublishedKeyError::UnusableKey)?;
    Ok(esession_wire::pubkey::base64(&der))
}

/// PKP-06: whether `attestation` is a valid signature on `attested` by `signer`, the key
/// `signer_jid` published (already checked with [`check_published_key`]). Both prints and
/// the JID must match (compared as JIDs), then the signature must verify (RSA; other kinds
/// of signer, X.509 or OpenPGP, are not verified). A valid attestation says only that the
/// signer vouches for the key: whether that means anything is the signer's trust, which
/// the caller judges (a signer the user verified).
pub fn check_attestation(
    attestation: &Attestation,
    attested: &PublishedKey,
    signer: &PublishedKey,
    signer_jid: &BareJid,
) -> Result<(), PublishedKeyError> {
    let names_key = attestation
        .attested_print()
        .is_ok_and(|print| ct_eq(&print, &attested.print));
    if !names_key {
        return Err(PublishedKeyError::OtherKey);
    }
    let names_signer = attestation
        .signer_print()
        .is_ok_and(|print| ct_eq(&print, &signer.print))
        && BareJid::new(&attestation.signerjid).is_ok_and(|jid| jid == *signer_jid);
    if !names_signer {
        return Err(PublishedKeyError::OtherSigner);
    }
    let verifier = VerifyingKey::rsa(&signer.modulus, &signer.exponent)
        .map_err(|_| PublishedKeyError::UnusableKey)?;
    let signature = attestation
        .signature_bytes()
        .map_err(|_| PublishedKeyError::BadAttestation)?;
    verifier
        .verify(&attestation.signed_data(&key_base64(attested)?), &signature)
        .map_err(|_| PublishedKeyError::BadAttestation)
}

/// Whether `revocation` withdraws `key` (which the caller already holds and checked):
/// it names the key's print and is signed by that key (self-revocation, AMB-66). Revocations
/// signed by another key are not honoured: we could not tell who holds it.
pub fn check_revocation(
    revocation: &Revocation,
    key: &PublishedKey,
) -> Result<(), PublishedKeyError> {
    let names_key = revocation
        .revoked_print()
        .is_ok_and(|print| ct_eq(&print, &key.print));
    if !names_key || revocation.revocationprint != revocation.keyprint {
        return Err(PublishedKeyError::OtherKey);
    }
    let verifier = VerifyingKey::rsa(&key.modulus, &key.exponent)
        .map_err(|_| PublishedKeyError::UnusableKey)?;
    verifier
        .verify(&revocation.signed_data(), &revocation.signature)
        .map_err(|_| PublishedKeyError::BadSignature)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "test code"
    )]

    use super::*;
    use crate::trust::key_fingerprint;
    use esession_wire::minidom::Element;

    const NOW: i64 = 1_800_000_000;

    fn alice() -> BareJid {
        BareJid::new("alice@example.org").unwrap()
    }

    fn alices_key() -> (SigningKey, PublishedKey) {
        let key = SigningKey::generate_rsa(2048).unwrap();
        let published = own_published_key(&key, &alice(), NOW, DEFAULT_KEY_VALIDITY).unwrap();
        (key, published)
    }

    #[test]
    fn our_published_key_passes_the_checks_and_bridges_to_the_same_fingerprint() {
        let (key, published) = alices_key();
        let key_value = check_published_key(&published, &alice(), NOW + 60).unwrap();
        // PKP-10: the XEP-0116 `hash` fingerprint of the bridged key is our key's.
        let ours = key_value_of(key.verifying_key()).unwrap();
        assert_eq!(key_fingerprint(&key_value), key_fingerprint(&ours));
        // Read back from the wire, it still passes (the print covers the canonical decimal).
        let wire = esession_wire::minidom::Element::from(&published);
        let again = PublishedKey::try_from(&wire).unwrap();
        assert_eq!(check_published_key(&again, &alice(), NOW), Ok(key_value));
        // AMB-67: JIDs compare as JIDs.
        assert!(
            check_published_key(&published, &BareJid::new("Alice@Example.ORG").unwrap(), NOW)
                .is_ok()
        );
    }

    #[test]
    fn an_altered_foreign_expired_or_unzoned_key_is_refused() {
        let (_, published) = alices_key();
        let mut altered = published.clone();
        altered.exponent = vec![3];
        assert_eq!(
            check_published_key(&altered, &alice(), NOW),
            Err(PublishedKeyError::PrintMismatch)
        );
        let carol = BareJid::new("carol@example.org").unwrap();
        assert_eq!(
            check_published_key(&published, &carol, NOW),
            Err(PublishedKeyError::WrongOwner),
            "carol republishing alice's key does not make it carol's"
        );
        for when in [NOW - 1, NOW + DEFAULT_KEY_VALIDITY + 1] {
            assert_eq!(
                check_published_key(&published, &alice(), when),
                Err(PublishedKeyError::NotValidNow)
            );
        }
        let mut unzoned = published.clone();
        unzoned.begin.unix = None;
        assert_eq!(
            check_published_key(&unzoned, &alice(), NOW),
            Err(PublishedKeyError::NotValidNow)
        );
    }

    #[test]
    fn a_self_signed_revocation_verifies_and_nothing_else_does() {
        let (key, published) = alices_key();
        let revocation = own_revocation(&key, &published, NOW + 10).unwrap();
        assert_eq!(check_revocation(&revocation, &published), Ok(()));
        // Read back from the wire.
        let wire = esession_wire::minidom::Element::from(&revocation);
        let again = Revocation::try_from(&wire).unwrap();
        assert_eq!(check_revocation(&again, &published), Ok(()));
        // A later time than the signer wrote: the signature breaks.
        let mut moved = revocation.clone();
        moved.revocationtime = Timestamp::from_unix(NOW + 11).unwrap();
        assert_eq!(
            check_revocation(&moved, &published),
            Err(PublishedKeyError::BadSignature)
        );
        // Another key's revocation does not touch this one.
        let (other_key, other) = alices_key();
        let theirs = own_revocation(&other_key, &other, NOW).unwrap();
        assert_eq!(
            check_revocation(&theirs, &published),
            Err(PublishedKeyError::OtherKey)
        );
    }

    #[test]
    fn an_attestation_verifies_with_its_signer_and_nothing_else_does() {
        let (_, alice_published) = alices_key();
        let carol = BareJid::new("carol@example.net").unwrap();
        let carol_key = SigningKey::generate_rsa(2048).unwrap();
        let carol_published =
            own_published_key(&carol_key, &carol, NOW, DEFAULT_KEY_VALIDITY).unwrap();
        let attestation =
            own_attestation(&carol_key, &carol_published, &carol, &alice_published, NOW).unwrap();
        // It survives the wire.
        let element = Element::from(&attestation);
        let attestation = Attestation::try_from(&element).unwrap();
        assert_eq!(
            check_attestation(&attestation, &alice_published, &carol_published, &carol),
            Ok(())
        );
        // Another signer key, another JID, another attested key, an altered time.
        let (_, other) = alices_key();
        assert_eq!(
            check_attestation(&attestation, &alice_published, &other, &carol),
            Err(PublishedKeyError::OtherSigner)
        );
        let mallory = BareJid::new("mallory@example.net").unwrap();
        assert_eq!(
            check_attestation(&attestation, &alice_published, &carol_published, &mallory),
            Err(PublishedKeyError::OtherSigner)
        );
        assert_eq!(
            check_attestation(&attestation, &other, &carol_published, &carol),
            Err(PublishedKeyError::OtherKey)
        );
        let mut later = attestation.clone();
        later.signtime = Timestamp::from_unix(NOW + 1).unwrap();
        assert_eq!(
            check_attestation(&later, &alice_published, &carol_published, &carol),
            Err(PublishedKeyError::BadAttestation)
        );
        // A hex signer print (the XEP's example writes it so) is the same print.
        let mut hex_print = attestation.clone();
        hex_print.signerprint = hex::encode(&carol_published.print);
        assert_eq!(
            check_attestation(&hex_print, &alice_published, &carol_published, &carol),
            Err(PublishedKeyError::BadAttestation),
            "the signed data covers the print as written, so rewriting it breaks the signature"
        );
    }

    #[test]
    fn a_dsa_key_cannot_be_published() {
        let mut rng =
            <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(7);
        let dsa = SigningKey::generate_dsa(&mut rng).unwrap();
        assert_eq!(
            own_published_key(&dsa, &alice(), NOW, DEFAULT_KEY_VALIDITY),
            Err(PublishedKeyError::NotRsa)
        );
    }
}
