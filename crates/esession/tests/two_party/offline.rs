//! XEP-0187's option set as Alice builds it before going offline (OFF-02..05, OFF-18,
//! AMB-34/75), checked the way Bob checks it (OFF-08).

use esession::offline::{OptionsError, check_options};
use esession::{PubkeyMethod, StanzaKind};
use esession_wire::form::DataForm;
use esession_wire::negotiation::{Offer, fields};

use crate::harness::{ALICE, dsa_key, keyed_config, manager, rsa_key};

const DAY: u64 = 24 * 60 * 60;

#[test]
fn the_option_set_is_a_signed_three_message_offer_without_accept_or_pubkeys() {
    let (rsa, dsa) = (rsa_key(0), dsa_key(0));
    let mut config = keyed_config(
        ALICE,
        Some(rsa.clone()),
        &[PubkeyMethod::Key],
        &[PubkeyMethod::Key],
    );
    config.signing_keys.push(dsa.clone());
    config.stanzas = vec![StanzaKind::Message, StanzaKind::Presence, StanzaKind::Iq];
    let mut alice = manager(config, 801);
    let set = alice.offline_options(DAY, None).unwrap();
    let form = DataForm::try_from(&set.options).unwrap();
    // OFF-02, AMB-34: no accept, no pubkey fields; a 3-message offer with e for every group.
    for var in [fields::ACCEPT, fields::INIT_PUBKEY, fields::RESP_PUBKEY] {
        assert!(form.field(var).is_none(), "{var}");
    }
    let offer = Offer::try_from(&form).unwrap();
    assert!(offer.is_three_message());
    assert_eq!(
        offer.dhkeys.as_ref().map(Vec::len),
        Some(set.groups().len()),
        "one e per offered group"
    );
    // AMB-75: iq is never offered offline.
    let stanzas: Vec<Option<StanzaKind>> = offer.stanzas.clone().unwrap();
    assert_eq!(
        stanzas,
        [Some(StanzaKind::Message), Some(StanzaKind::Presence)]
    );
    // OFF-05: signed with both keys; Bob accepts either, before expiry only.
    let now = i64::try_from(crate::harness::NOW).unwrap();
    for key in [&rsa, &dsa] {
        let checked = check_options(&set.options, &[key.verifying_key()], now).unwrap();
        assert_eq!(checked.expires_at, now + i64::try_from(DAY).unwrap());
        assert_eq!(checked.match_resource, None);
    }
    assert_eq!(
        check_options(&set.options, &[rsa.verifying_key()], set.expires_at),
        Err(OptionsError::Expired)
    );
    // OFF-18: every departure gets a new N_A and new x.
    let again = alice.offline_options(DAY, None).unwrap();
    assert_ne!(again.nonce(), set.nonce());
    assert_ne!(
        DataForm::try_from(&again.options)
            .unwrap()
            .field(fields::DHKEYS),
        form.field(fields::DHKEYS)
    );
}

#[test]
fn with_match_resource_only_messages_are_offered() {
    let config = keyed_config(
        ALICE,
        Some(rsa_key(0)),
        &[PubkeyMethod::Key],
        &[PubkeyMethod::Key],
    );
    let mut alice = manager(config, 802);
    let set = alice.offline_options(DAY, Some("pda")).unwrap();
    let form = DataForm::try_from(&set.options).unwrap();
    let offer = Offer::try_from(&form).unwrap();
    assert_eq!(
        offer.stanzas,
        Some(vec![Some(StanzaKind::Message)]),
        "OFF-04"
    );
    let now = i64::try_from(crate::harness::NOW).unwrap();
    let checked = check_options(&set.options, &[rsa_key(0).verifying_key()], now).unwrap();
    assert_eq!(checked.match_resource.as_deref(), Some("pda"));
}

#[test]
fn without_a_signing_key_no_option_set_is_made() {
    // OFF-05: unsigned options would let anyone pose as Alice.
    let config = keyed_config(ALICE, None, &[PubkeyMethod::None], &[PubkeyMethod::None]);
    let mut alice = manager(config, 803);
    assert!(alice.offline_options(DAY, None).is_err());
}
