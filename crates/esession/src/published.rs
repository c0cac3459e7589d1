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
use esession_wire::pubkey::{PublishedKey, Revocation, Timestamp};
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
