//! XEP-0187 offline encrypted sessions: the signed, expiring option set (OFF-02..05, OFF-08,
//! AMB-33/34/70/71/75).
//!
//! Alice, before going offline, publishes her 3-message offer without `accept` and the pubkey
//! fields, with `expires`, optionally `match_resource`, and `signs`: one signature per key her
//! contacts may trust, each over NORM of the form content minus `signs` (AMB-33), with that
//! key's own algorithm, so every field (and its type, AMB-70) is covered. Bob uses the options
//! only if one signature verifies with a key he trusts, the options have not expired, and
//! nothing in them is unsupported (AMB-75: no `iq` in `stanzas`).
//!
//! [`crate::SessionManager::offline_options`] builds and signs Alice's set; this module signs
//! and checks option sets. Persisting the secrets, publishing and answering the options is
//! the rest of XEP-0187 (issue 13, in progress).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use esession_crypto::{SigningKey, VerifyingKey};
use esession_wire::form::{DataForm, Field, FieldType};
use esession_wire::minidom::Element;
use esession_wire::negotiation::{StanzaKind, fields, unb64};
use esession_wire::normalize::try_normalize_form_content;
use esession_wire::pubkey::Timestamp;

use esession_wire::keyvalue::KeyValue;

use crate::identity::IdentityProof;

/// The `expires` field (OFF-03).
pub const EXPIRES: &str = "expires";
/// The `match_resource` field (OFF-04).
pub const MATCH_RESOURCE: &str = "match_resource";
/// The `signs` field (OFF-05).
pub const SIGNS: &str = "signs";

/// Most signatures read from one option set (one per key the publisher holds).
const MAX_SIGNATURES: usize = 16;
/// Largest signature accepted, in bytes (RSA-8192).
const MAX_SIGNATURE_LEN: usize = 1024;

/// Alice's published option set and what she keeps of it (OFF-03): N_A and one key pair
/// per offered group (the x values, zeroized when dropped), until `expires_at`.
pub struct OfflineOptionSet {
    /// The signed options form, to publish (OFF-05/06).
    pub options: Element,
    /// When the options expire (Unix seconds).
    pub expires_at: i64,
    /// N_A.
    pub(crate) nonce: Vec<u8>,
    /// x for every group offered, in the order of the `modp` options.
    pub(crate) key_pairs: Vec<esession_crypto::DhKeyPair>,
}

impl OfflineOptionSet {
    /// The groups whose x is kept, in the order offered.
    pub fn groups(&self) -> Vec<esession_crypto::ModpGroup> {
        self.key_pairs.iter().map(|p| p.group()).collect()
    }

    /// N_A, the nonce Bob's `nonce` field must echo (OFF-14).
    pub fn nonce(&self) -> &[u8] {
        &self.nonce
    }

    /// x for `group`, copied for one offline session (OFF-14).
    pub(crate) fn key_pair(
        &self,
        group: esession_crypto::ModpGroup,
    ) -> Option<esession_crypto::DhKeyPair> {
        self.key_pairs
            .iter()
            .find(|p| p.group() == group)
            .map(esession_crypto::DhKeyPair::duplicate_for_offline_set)
    }

    /// Every x, with its group, for the store to seal (OFF-03).
    pub fn private_exponents(
        &self,
    ) -> Vec<(esession_crypto::ModpGroup, esession_crypto::SecretBytes)> {
        self.key_pairs
            .iter()
            .map(|p| (p.group(), p.export_private_exponent()))
            .collect()
    }

    /// An option set restored from the store (OFF-13): the published
    /// options, when they expire, N_A and every x. Fails when an x is not a
    /// valid exponent of its group.
    pub fn restore(
        options: Element,
        expires_at: i64,
        nonce: Vec<u8>,
        exponents: &[(esession_crypto::ModpGroup, &[u8])],
    ) -> Result<Self, OptionsError> {
        let key_pairs = exponents
            .iter()
            .map(|(group, x)| esession_crypto::DhKeyPair::from_private_exponent(*group, x))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| OptionsError::Malformed)?;
        Ok(Self {
            options,
            expires_at,
            nonce,
            key_pairs,
        })
    }
}

impl core::fmt::Debug for OfflineOptionSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OfflineOptionSet")
            .field("expires_at", &self.expires_at)
            .field("groups", &self.groups())
            .finish_non_exhaustive()
    }
}

pub use crate::error::OptionsError;

/// XEP-0131 SHIM namespace.
const SHIM: &str = "http://jabber.org/protocol/shim";

/// The SHIM `Created` header (OFF-12) for a message written at `now`, as XML.
pub(crate) fn created_header(now: u64) -> String {
    let stamp = Timestamp::from_unix(i64::try_from(now).unwrap_or(i64::MAX))
        .map(|t| t.text)
        .unwrap_or_default();
    format!("<headers xmlns='{SHIM}'><header name='Created'>{stamp}</header></headers>")
}

/// When the sender wrote a message of an offline session (OFF-12): the
/// SHIM `Created` header inside the decrypted message, in Unix seconds. It
/// is authenticated with the message; prefer it to the server's delay stamp.
pub fn created_at(message: &Element) -> Option<i64> {
    message
        .get_child("headers", SHIM)?
        .children()
        .find(|h| h.is("header", SHIM) && h.attr("name") == Some("Created"))
        .and_then(|h| Timestamp::from_text(&h.text()).unix)
}

/// The bytes `signs` covers: NORM of the form content minus `signs` (AMB-33, AMB-70).
fn signed_content(x: &Element) -> Result<Vec<u8>, OptionsError> {
    try_normalize_form_content(x, &[SIGNS]).map_err(|_| OptionsError::Malformed)
}

/// Appends `expires` (and `match_resource`, when given) to Alice's options form and signs the
/// result with every key in `keys` (OFF-03..05). `options` is her 3-message offer form
/// without `accept` and the pubkey fields (OFF-02, AMB-34).
pub fn sign_options(
    mut options: DataForm,
    expires_at: i64,
    match_resource: Option<&str>,
    keys: &[&SigningKey],
) -> Result<Element, OptionsError> {
    let expires = Timestamp::from_unix(expires_at).ok_or(OptionsError::Expired)?;
    options = options.with_field(Field::hidden(EXPIRES, [expires.text]));
    if let Some(resource) = match_resource {
        options = options.with_field(Field::hidden(MATCH_RESOURCE, [resource]));
    }
    let unsigned = Element::from(&options);
    let content = signed_content(&unsigned)?;
    let mut signatures = Vec::new();
    for key in keys {
        let signature = key
            .sign(&content)
            .map_err(|_| OptionsError::SigningFailed)?;
        signatures.push(STANDARD.encode(signature));
    }
    if signatures.is_empty() {
        return Err(OptionsError::NotSigned);
    }
    let signs = Field::new(SIGNS, Some(FieldType::Hidden)).with_values(signatures);
    Ok(Element::from(&options.with_field(signs)))
}

/// What a checked option set says beyond the offer itself.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CheckedOptions {
    /// When the options expire (Unix seconds).
    pub expires_at: i64,
    /// The full JID's resource the ciphertext must go to (OFF-04, OFF-11), if any.
    pub match_resource: Option<String>,
    /// Which of the trusted keys signed them (its index).
    pub signed_by: usize,
}

/// Checks Alice's published options `x` as Bob (OFF-08, AMB-69/71/75): one signature verifies
/// with one of `trusted` (only keys the user verified, by default), `expires` lies after
/// `now`, there is no pubkey field, and `stanzas` does not include `iq`.
pub fn check_options(
    x: &Element,
    trusted: &[&VerifyingKey],
    now: i64,
) -> Result<CheckedOptions, OptionsError> {
    check(x, trusted, now)
}

/// [`check_options`] with the keys the user verified for the publisher
/// (AMB-69), for the manager: also returns the key that signed and the
/// proof that her identity verified.
pub(crate) fn verified_options(
    x: &Element,
    verified: &[crate::trust::StoredPeerKey],
    now: i64,
) -> Result<(CheckedOptions, KeyValue, IdentityProof), OptionsError> {
    let keys: Vec<(&KeyValue, VerifyingKey)> = verified
        .iter()
        .filter(|k| k.verified)
        .filter_map(|k| crate::identity::verifying_key_of(&k.key).map(|v| (&k.key, v)))
        .collect();
    let trusted: Vec<&VerifyingKey> = keys.iter().map(|(_, v)| v).collect();
    let checked = check(x, &trusted, now)?;
    let signer = keys
        .get(checked.signed_by)
        .map(|(k, _)| (*k).clone())
        .ok_or(OptionsError::NotSigned)?;
    Ok((checked, signer, IdentityProof::signed_options_verified()))
}

fn check(x: &Element, trusted: &[&VerifyingKey], now: i64) -> Result<CheckedOptions, OptionsError> {
    let form = DataForm::try_from(x).map_err(|_| OptionsError::Malformed)?;
    let content = signed_content(x)?;
    let signatures: Vec<Vec<u8>> = form
        .field(SIGNS)
        .map(|f| {
            f.values
                .iter()
                .take(MAX_SIGNATURES)
                .filter_map(|v| unb64(v, MAX_SIGNATURE_LEN))
                .collect()
        })
        .unwrap_or_default();
    let signed_by = trusted
        .iter()
        .position(|key| signatures.iter().any(|s| key.verify(&content, s).is_ok()))
        .ok_or(OptionsError::NotSigned)?;
    let expires_at = form
        .field(EXPIRES)
        .and_then(|f| f.single_value())
        .and_then(|text| Timestamp::from_text(text).unix)
        .filter(|expires| *expires > now)
        .ok_or(OptionsError::Expired)?;
    for var in [fields::ACCEPT, fields::INIT_PUBKEY, fields::RESP_PUBKEY] {
        if form.field(var).is_some() {
            return Err(OptionsError::Unsupported(var));
        }
    }
    let asks_iq = form.field(fields::STANZAS).is_some_and(|f| {
        esession_wire::negotiation::ranked(f)
            .into_iter()
            .any(|v| StanzaKind::from_name(v) == Some(StanzaKind::Iq))
    });
    if asks_iq {
        return Err(OptionsError::Unsupported(fields::STANZAS));
    }
    Ok(CheckedOptions {
        expires_at,
        match_resource: form
            .field(MATCH_RESOURCE)
            .and_then(|f| f.single_value())
            .map(str::to_owned),
        signed_by,
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

    use esession_wire::form::FormKind;
    use esession_wire::ns;

    use super::*;

    const NOW: i64 = 1_800_000_000;

    /// A stand-in for Alice's 3-message offer minus accept and pubkeys (OFF-02).
    fn options_form() -> DataForm {
        DataForm::new(FormKind::Form)
            .with_field(Field::hidden(fields::FORM_TYPE, [ns::SSN]))
            .with_field(Field::list_single(fields::LOGGING, ["may", "mustnot"]).with_value("may"))
            .with_field(Field::list_single(fields::MODP, ["14"]).with_value("14"))
            .with_field(Field::list_multi(fields::STANZAS, ["message"]).with_value("message"))
            .with_field(Field::hidden(
                fields::MY_NONCE,
                ["AAECAwQFBgcICQoLDA0ODw=="],
            ))
            .with_field(Field::hidden(fields::DHKEYS, ["AgM="]))
    }

    fn keys() -> (SigningKey, SigningKey) {
        let mut rng =
            <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(3);
        (
            SigningKey::generate_rsa(2048).unwrap(),
            SigningKey::generate_dsa(&mut rng).unwrap(),
        )
    }

    #[test]
    fn options_signed_with_two_keys_verify_with_either() {
        let (rsa, dsa) = keys();
        let x = sign_options(options_form(), NOW + 3600, Some("laptop"), &[&rsa, &dsa]).unwrap();
        let by_rsa = check_options(&x, &[rsa.verifying_key()], NOW).unwrap();
        assert_eq!(by_rsa.expires_at, NOW + 3600);
        assert_eq!(by_rsa.match_resource.as_deref(), Some("laptop"));
        assert_eq!(
            check_options(&x, &[dsa.verifying_key()], NOW)
                .unwrap()
                .signed_by,
            0
        );
        // Read back from the wire.
        let text = String::from(&x);
        let again: Element = text.parse().unwrap();
        assert!(check_options(&again, &[rsa.verifying_key()], NOW).is_ok());
    }

    #[test]
    fn altering_any_field_breaks_every_signature() {
        // OFF-05's test: the signatures cover every field, their values and types (AMB-70).
        let (rsa, dsa) = keys();
        let trusted = [rsa.verifying_key(), dsa.verifying_key()];
        let x = sign_options(options_form(), NOW + 3600, None, &[&rsa, &dsa]).unwrap();
        let text = String::from(&x);
        for (from, to) in [
            ("<value>may</value>", "<value>mustnot</value>"),
            ("<value>14</value>", "<value>2</value>"),
            ("AgM=", "AgQ="),
            (
                "type='hidden' var='expires'",
                "type='text-single' var='expires'",
            ),
        ] {
            assert!(text.contains(from), "{from} in {text}");
            let altered: Element = text.replacen(from, to, 1).parse().unwrap();
            assert_eq!(
                check_options(&altered, &trusted, NOW),
                Err(OptionsError::NotSigned),
                "{from} -> {to}"
            );
        }
    }

    #[test]
    fn untrusted_expired_or_unsupported_options_are_refused() {
        let (rsa, dsa) = keys();
        let x = sign_options(options_form(), NOW + 60, None, &[&rsa]).unwrap();
        assert_eq!(
            check_options(&x, &[dsa.verifying_key()], NOW),
            Err(OptionsError::NotSigned),
            "signed by a key we do not trust"
        );
        assert_eq!(
            check_options(&x, &[rsa.verifying_key()], NOW + 60),
            Err(OptionsError::Expired),
            "AMB-71: expires <= now is refused"
        );
        let mut form = options_form();
        form.fields
            .retain(|f| f.var.as_deref() != Some(fields::STANZAS));
        let form = form.with_field(Field::list_multi(fields::STANZAS, ["message", "iq"]));
        let x = sign_options(form, NOW + 60, None, &[&rsa]).unwrap();
        assert_eq!(
            check_options(&x, &[rsa.verifying_key()], NOW),
            Err(OptionsError::Unsupported(fields::STANZAS)),
            "AMB-75: iq is never carried offline"
        );
        let form = options_form().with_field(Field::boolean(fields::ACCEPT, true));
        let x = sign_options(form, NOW + 60, None, &[&rsa]).unwrap();
        assert_eq!(
            check_options(&x, &[rsa.verifying_key()], NOW),
            Err(OptionsError::Unsupported(fields::ACCEPT))
        );
        assert_eq!(
            sign_options(options_form(), NOW + 60, None, &[]),
            Err(OptionsError::NotSigned),
            "options are never published unsigned"
        );
    }
}
