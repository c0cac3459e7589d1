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
    // AMB-70: what Bob must not edit travels hidden.
    for var in [fields::MY_NONCE, fields::DHKEYS, "expires", "signs"] {
        assert_eq!(
            form.field(var).and_then(|f| f.field_type),
            Some(esession_wire::form::FieldType::Hidden),
            "{var}"
        );
    }
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

// ---- The offline session itself: Bob alone, Alice on her return (OFF-07..17, AMB-71..74) ----

use esession::{Error as SessionError, Event, OfflineRejection, TerminationReason};
use esession_wire::minidom::Element;
use jid::BareJid;

use crate::harness::{BOB, Party, TestClock, manager_with_clock};

/// Alice (offline, holding her published set) and Bob (who verified her
/// key and she his), on one shared clock; returns the options to publish.
fn offline_pair(seed: u64, clock: &TestClock) -> (Party, Party, Element) {
    let (alice_key, bob_key) = (rsa_key(0), rsa_key(1));
    let key_config =
        |jid, key| keyed_config(jid, Some(key), &[PubkeyMethod::Key], &[PubkeyMethod::Key]);
    let mut alice = Party::with_manager(
        ALICE,
        manager_with_clock(
            key_config(ALICE, alice_key.clone()),
            seed,
            Box::new(clock.clone()),
        ),
    );
    let mut bob = Party::with_manager(
        BOB,
        manager_with_clock(
            key_config(BOB, bob_key.clone()),
            seed + 1,
            Box::new(clock.clone()),
        ),
    );
    alice.know_key(BOB, &bob_key, true);
    bob.know_key(ALICE, &alice_key, true);
    let set = alice.manager.offline_options(DAY, None).unwrap();
    let options = set.options.clone();
    alice.manager.hold_offline_options(set);
    (alice, bob, options)
}

fn alice_bare() -> BareJid {
    BareJid::new("alice@example.org").unwrap()
}

fn chat(text: &str) -> Element {
    let mut m = esession_wire::xml::parse_document(
        "<message xmlns='jabber:client' to='alice@example.org' type='chat'/>",
    )
    .unwrap();
    m.append_child(
        Element::builder("body", esession_wire::ns::JABBER_CLIENT)
            .append(text)
            .build(),
    );
    m
}

fn rejections(party: &Party) -> Vec<OfflineRejection> {
    party
        .events
        .iter()
        .filter_map(|e| match e {
            Event::OfflineMessageRejected { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

/// Bob starts the offline session with one message; returns its `<init/>` stanza.
fn bob_writes(bob: &mut Party, options: &Element, text: &str, one_shot: bool) -> Element {
    let (_, out) = bob
        .manager
        .start_offline_session(&alice_bare(), options, Some(&chat(text)), one_shot)
        .unwrap();
    let mut sent = bob.absorb(out);
    assert_eq!(sent.len(), 1, "one stanza: the <init/> with the message");
    sent.remove(0)
}

#[test]
fn bob_writes_while_alice_is_away_and_she_reads_it_on_her_return() {
    let clock = TestClock::new();
    let (mut alice, mut bob, options) = offline_pair(810, &clock);
    let init = bob_writes(&mut bob, &options, "while you were out", false);
    // OFF-10, AMB-35/78: a submit form in <init/>, a fresh thread, the bare JID, no AMP rule.
    let wrapper = init
        .get_child("init", esession_wire::ns::ESESSION_INIT)
        .unwrap();
    let form = DataForm::try_from(
        wrapper
            .get_child("x", esession_wire::ns::DATA_FORMS)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(form.kind, esession_wire::form::FormKind::Submit);
    assert!(
        form.field(fields::INIT_PUBKEY).is_none() && form.field(fields::RESP_PUBKEY).is_none(),
        "OFF-09"
    );
    assert!(form.field(fields::TERMINATE).is_none());
    assert_eq!(init.attr("to"), Some("alice@example.org"));
    assert!(
        init.get_child("amp", esession_wire::ns::AMP).is_none(),
        "AMB-23"
    );
    assert!(
        init.get_child("c", esession_wire::ns::STANZA_ENCRYPTION)
            .is_some()
    );
    let bob_info = bob.only_session().clone();
    assert!(bob_info.offline && !bob_info.we_initiated);
    assert!(
        bob_info.authenticated_by_key(),
        "Alice is proven by her signature with a verified key"
    );

    clock.advance(3600);
    let replies = alice.receive(&init);
    assert!(
        replies.is_empty(),
        "OFF-16: Alice sends nothing, not even message 3"
    );
    let info = alice.only_session().clone();
    assert!(info.offline && info.we_initiated && info.authenticated_by_key());
    assert_eq!(alice.bodies(), ["while you were out"]);
    // OFF-12: the creation time travels inside the ciphertext.
    let created = esession::offline::created_at(alice.messages()[0]);
    assert_eq!(created, Some(i64::try_from(crate::harness::NOW).unwrap()));

    // More messages in the same session, then Alice comes online (OFF-17).
    let id = bob.established()[0].0.clone();
    let out = bob.manager.send_text(&id, "and one more").unwrap();
    for stanza in bob.absorb(out) {
        assert!(alice.receive(&stanza).is_empty());
    }
    assert_eq!(alice.bodies(), ["while you were out", "and one more"]);
    let presence = esession_wire::xml::parse_document(&format!(
        "<presence xmlns='jabber:client' from='{ALICE}' to='{BOB}'/>"
    ))
    .unwrap();
    let terminate = bob.receive(&presence);
    assert_eq!(terminate.len(), 1, "the encrypted terminate form");
    assert_eq!(bob.terminations(), [&TerminationReason::PeerOnline]);
    assert!(
        alice.receive(&terminate[0]).is_empty(),
        "AMB-74: no acknowledgement"
    );
    assert_eq!(alice.terminations(), [&TerminationReason::PeerRequest]);
}

#[test]
fn alice_never_sends_in_an_offline_session() {
    let clock = TestClock::new();
    let (mut alice, mut bob, options) = offline_pair(812, &clock);
    let init = bob_writes(&mut bob, &options, "hi", false);
    alice.receive(&init);
    let id = alice.established()[0].0.clone();
    assert_eq!(
        alice.manager.send_text(&id, "reply").err(),
        Some(SessionError::OfflineSessionReadOnly)
    );
    assert_eq!(
        alice.manager.rekey(&id).err(),
        Some(SessionError::OfflineSessionReadOnly)
    );
    let out = alice.manager.terminate(&id).unwrap();
    assert!(out.stanzas.is_empty(), "AMB-74: she ends it without a word");
    assert!(!alice.manager.is_established(&id));
}

#[test]
fn a_replayed_offline_stanza_is_ignored_even_on_a_new_thread() {
    let clock = TestClock::new();
    let (mut alice, mut bob, options) = offline_pair(814, &clock);
    let init = bob_writes(&mut bob, &options, "once", false);
    alice.receive(&init);
    // The thread is not MACed (AMB-72): a replay may carry any thread.
    let mut replay = init.clone();
    for child in replay.children_mut() {
        if child.is("thread", esession_wire::ns::JABBER_CLIENT) {
            *child = Element::builder("thread", esession_wire::ns::JABBER_CLIENT)
                .append("another-thread")
                .build();
        }
    }
    for stanza in [&init, &replay] {
        assert!(alice.receive(stanza).is_empty());
    }
    assert_eq!(alice.bodies(), ["once"], "read once");
    assert_eq!(
        rejections(&alice),
        [OfflineRejection::Replayed, OfflineRejection::Replayed]
    );
}

#[test]
fn past_expiry_nothing_is_decrypted_or_sent() {
    let clock = TestClock::new();
    let (mut alice, mut bob, options) = offline_pair(816, &clock);
    let init = bob_writes(&mut bob, &options, "too late", true);
    clock.advance(DAY + 1);
    assert!(alice.receive(&init).is_empty());
    assert!(alice.bodies().is_empty() && alice.established().is_empty());
    assert_eq!(rejections(&alice), [OfflineRejection::Expired]);
    assert_eq!(
        alice.manager.held_offline_options(),
        0,
        "the expired set is destroyed"
    );
    // Bob, too, refuses options past their expiry (OFF-08).
    let err = bob
        .manager
        .start_offline_session(&alice_bare(), &options, None, false);
    assert_eq!(
        err.err(),
        Some(SessionError::OfflineOptions(OptionsError::Expired))
    );
}

#[test]
fn an_offline_message_the_archiving_policy_no_longer_allows_is_not_read() {
    // Issue 14 (ARC-05/07): the options allowed `may`; since then Alice
    // requires off the record, so what Bob wrote in a session that may be
    // logged is not read, and she is told why.
    let clock = TestClock::new();
    let (mut alice, mut bob, options) = offline_pair(818, &clock);
    let init = bob_writes(&mut bob, &options, "may be logged", true);
    let _ = alice
        .manager
        .set_default_otr_policy(esession::OtrPolicy::Require);
    assert!(alice.receive(&init).is_empty());
    assert!(alice.bodies().is_empty() && alice.established().is_empty());
    assert_eq!(rejections(&alice), [OfflineRejection::ArchivingPolicy]);
    assert!(
        OfflineRejection::ArchivingPolicy
            .describe()
            .contains("archiving policy")
    );
}

#[test]
fn a_tampered_offline_stanza_fails_silently_and_shows_nothing() {
    let clock = TestClock::new();
    let (mut alice, mut bob, options) = offline_pair(818, &clock);
    let init = bob_writes(&mut bob, &options, "genuine", false);
    // Change d: the MAC and the keys no longer match (OFF-15).
    let text = esession_wire::xml::serialize(&init, "").unwrap();
    let form = DataForm::try_from(
        init.get_child("init", esession_wire::ns::ESESSION_INIT)
            .and_then(|w| w.get_child("x", esession_wire::ns::DATA_FORMS))
            .unwrap(),
    )
    .unwrap();
    let d = form
        .field(fields::MAC)
        .unwrap()
        .single_value()
        .unwrap()
        .to_owned();
    let mut flipped = d.clone().into_bytes();
    flipped[2] = if flipped[2] == b'A' { b'B' } else { b'A' };
    let tampered = esession_wire::xml::parse_document(
        &text.replace(&d, std::str::from_utf8(&flipped).unwrap()),
    )
    .unwrap();
    assert!(
        alice.receive(&tampered).is_empty(),
        "OFF-15: no error stanza"
    );
    assert!(alice.bodies().is_empty());
    assert_eq!(rejections(&alice), [OfflineRejection::NotAuthenticated]);
    // The genuine one still reads: the failure recorded nothing (AMB-72).
    alice.receive(&init);
    assert_eq!(alice.bodies(), ["genuine"]);
}

#[test]
fn bob_needs_a_key_of_alice_he_verified_and_no_session_with_her() {
    let clock = TestClock::new();
    let (_, mut bob, options) = offline_pair(820, &clock);
    // AMB-69: a key he has merely seen does not do.
    bob.manager
        .trust_mut()
        .set_peer_key_verified(&crate::harness::fingerprint(&rsa_key(0)), false)
        .unwrap();
    let err = bob
        .manager
        .start_offline_session(&alice_bare(), &options, None, false);
    assert_eq!(
        err.err(),
        Some(SessionError::OfflineOptions(OptionsError::NotSigned))
    );
    // Altered options break the signature (OFF-05).
    bob.know_key(ALICE, &rsa_key(0), true);
    let altered = esession_wire::xml::parse_document(
        &esession_wire::xml::serialize(&options, "")
            .unwrap()
            .replacen("aes128-ctr", "aes256-ctr", 1),
    )
    .unwrap();
    let err = bob
        .manager
        .start_offline_session(&alice_bare(), &altered, None, false);
    assert_eq!(
        err.err(),
        Some(SessionError::OfflineOptions(OptionsError::NotSigned))
    );
    // OFF-07: not while a session with her exists.
    let (_, started) = bob
        .manager
        .start_offline_session(&alice_bare(), &options, None, false)
        .unwrap();
    assert_eq!(started.stanzas.len(), 1);
    let err = bob
        .manager
        .start_offline_session(&alice_bare(), &options, None, false);
    assert_eq!(err.err(), Some(SessionError::SessionExists));
}

#[test]
fn alice_reads_nothing_from_a_sender_whose_key_she_has_not_verified() {
    let clock = TestClock::new();
    let (mut alice, mut bob, options) = offline_pair(822, &clock);
    alice
        .manager
        .trust_mut()
        .set_peer_key_verified(&crate::harness::fingerprint(&rsa_key(1)), false)
        .unwrap();
    let init = bob_writes(&mut bob, &options, "from an unverified key", false);
    assert!(alice.receive(&init).is_empty());
    assert!(alice.bodies().is_empty());
    assert_eq!(rejections(&alice), [OfflineRejection::NotAuthenticated]);
}

#[test]
fn a_one_shot_ends_with_its_stanza_on_both_sides() {
    let clock = TestClock::new();
    let (mut alice, mut bob, options) = offline_pair(824, &clock);
    let init = bob_writes(&mut bob, &options, "just this", true);
    assert_eq!(bob.terminations(), [&TerminationReason::LocalRequest]);
    assert!(alice.receive(&init).is_empty());
    assert_eq!(alice.bodies(), ["just this"]);
    assert_eq!(alice.terminations(), [&TerminationReason::PeerRequest]);
}

#[test]
fn an_offline_stanza_for_options_we_do_not_hold_is_reported() {
    let clock = TestClock::new();
    let (mut alice, mut bob, options) = offline_pair(826, &clock);
    let init = bob_writes(&mut bob, &options, "lost", false);
    // Alice replaced her set and no longer holds the old one.
    let mut fresh = Party::with_manager(
        ALICE,
        manager_with_clock(
            keyed_config(
                ALICE,
                Some(rsa_key(0)),
                &[PubkeyMethod::Key],
                &[PubkeyMethod::Key],
            ),
            827,
            Box::new(clock.clone()),
        ),
    );
    let set = fresh.manager.offline_options(DAY, None).unwrap();
    fresh.manager.hold_offline_options(set);
    assert!(fresh.receive(&init).is_empty());
    assert_eq!(rejections(&fresh), [OfflineRejection::UnknownOptions]);
    drop(alice.receive(&init));
}

#[test]
fn a_restored_option_set_reads_what_the_published_one_was_answered_with() {
    let clock = TestClock::new();
    let (_, mut bob, _) = offline_pair(828, &clock);
    let mut alice = Party::with_manager(
        ALICE,
        manager_with_clock(
            keyed_config(
                ALICE,
                Some(rsa_key(0)),
                &[PubkeyMethod::Key],
                &[PubkeyMethod::Key],
            ),
            829,
            Box::new(clock.clone()),
        ),
    );
    alice.know_key(BOB, &rsa_key(1), true);
    let set = alice.manager.offline_options(DAY, None).unwrap();
    // What the store keeps (OFF-03), and the set rebuilt from it.
    let exponents = set.private_exponents();
    let borrowed: Vec<_> = exponents.iter().map(|(g, x)| (*g, x.expose())).collect();
    let restored = esession::offline::OfflineOptionSet::restore(
        set.options.clone(),
        set.expires_at,
        set.nonce().to_vec(),
        &borrowed,
    )
    .unwrap();
    assert_eq!(restored.groups(), set.groups());
    let options = set.options.clone();
    drop(set);
    alice.manager.hold_offline_options(restored);
    let init = bob_writes(&mut bob, &options, "kept safe", false);
    alice.receive(&init);
    assert_eq!(alice.bodies(), ["kept safe"]);
}

#[test]
fn with_match_resource_the_stanza_goes_to_that_resource_only() {
    let clock = TestClock::new();
    let (mut alice, mut bob, _) = offline_pair(830, &clock);
    let set = alice.manager.offline_options(DAY, Some("pda")).unwrap();
    let options = set.options.clone();
    alice.manager.hold_offline_options(set);
    let init = bob_writes(&mut bob, &options, "for the pda only", false);
    // OFF-11, AMB-23/78: the full JID, and no AMP rule (offline storage would bounce it).
    assert_eq!(init.attr("to"), Some(ALICE));
    assert!(init.get_child("amp", esession_wire::ns::AMP).is_none());
    let id = bob.established()[0].0.clone();
    assert_eq!(id.peer.as_str(), ALICE);
    alice.receive(&init);
    let out = bob.manager.send_text(&id, "and more").unwrap();
    for stanza in bob.absorb(out) {
        assert_eq!(stanza.attr("to"), Some(ALICE));
        assert!(stanza.get_child("amp", esession_wire::ns::AMP).is_none());
        alice.receive(&stanza);
    }
    assert_eq!(alice.bodies(), ["for the pda only", "and more"]);
}

#[test]
fn the_rest_of_a_rejected_offline_session_gets_no_answer_either() {
    let clock = TestClock::new();
    let (mut alice, mut bob, options) = offline_pair(832, &clock);
    alice
        .manager
        .trust_mut()
        .set_peer_key_verified(&crate::harness::fingerprint(&rsa_key(1)), false)
        .unwrap();
    let init = bob_writes(&mut bob, &options, "first", false);
    let id = bob.established()[0].0.clone();
    let out = bob.manager.send_text(&id, "second").unwrap();
    let later = bob.absorb(out);
    assert!(alice.receive(&init).is_empty());
    for stanza in &later {
        // OFF-15: not even item-not-found, which would tell Bob she is here.
        assert!(alice.receive(stanza).is_empty());
    }
    assert!(alice.bodies().is_empty());
    assert_eq!(rejections(&alice), [OfflineRejection::NotAuthenticated]);
}

#[test]
fn an_offline_stanza_arriving_when_no_set_is_held_is_reported_and_its_session_stays_silent() {
    let clock = TestClock::new();
    let (_, mut bob, options) = offline_pair(834, &clock);
    let init = bob_writes(&mut bob, &options, "nobody holds the set", false);
    let id = bob.established()[0].0.clone();
    let out = bob.manager.send_text(&id, "and this").unwrap();
    let later = bob.absorb(out);
    // A client of Alice's that holds no option set at all (a one-off command).
    let mut other = Party::with_manager(
        ALICE,
        manager_with_clock(
            keyed_config(
                ALICE,
                Some(rsa_key(0)),
                &[PubkeyMethod::Key],
                &[PubkeyMethod::Key],
            ),
            835,
            Box::new(clock.clone()),
        ),
    );
    assert!(other.receive(&init).is_empty());
    for stanza in &later {
        assert!(
            other.receive(stanza).is_empty(),
            "OFF-15: not even item-not-found"
        );
    }
    assert_eq!(rejections(&other), [OfflineRejection::UnknownOptions]);
}

#[test]
fn offline_stanzas_beyond_the_rate_limit_are_not_even_verified() {
    let clock = TestClock::new();
    let (mut alice, mut bob, options) = offline_pair(836, &clock);
    let per_minute = esession::Limits::default().offline_messages_per_minute;
    for i in 0..per_minute + 1 {
        let init = bob_writes(&mut bob, &options, &format!("message {i}"), true);
        assert!(alice.receive(&init).is_empty());
    }
    assert_eq!(alice.bodies().len(), usize::try_from(per_minute).unwrap());
    assert_eq!(rejections(&alice), [OfflineRejection::Limited]);
}

#[test]
fn bob_stops_sending_when_alices_options_expire() {
    let clock = TestClock::new();
    let (_, mut bob, options) = offline_pair(838, &clock);
    bob_writes(&mut bob, &options, "in time", false);
    let id = bob.established()[0].0.clone();
    clock.advance(DAY + 1);
    // AMB-71: she would discard it unread; it is not sent, and he is told why.
    assert_eq!(
        bob.manager.send_text(&id, "too late").err(),
        Some(SessionError::OfflineOptions(OptionsError::Expired))
    );
}

#[test]
fn an_offline_stanza_without_its_nonce_is_reported_unreadable_and_answered_by_nothing() {
    let clock = TestClock::new();
    let (mut alice, mut bob, options) = offline_pair(840, &clock);
    let init = bob_writes(&mut bob, &options, "mangled", false);
    let text = esession_wire::xml::serialize(&init, "").unwrap();
    let start = text.find("<field var=\"nonce\">").unwrap();
    let end = start + text[start..].find("</field>").unwrap() + "</field>".len();
    let mangled =
        esession_wire::xml::parse_document(&format!("{}{}", &text[..start], &text[end..])).unwrap();
    assert!(alice.receive(&mangled).is_empty());
    assert!(alice.bodies().is_empty() && alice.established().is_empty());
    assert_eq!(rejections(&alice), [OfflineRejection::Unreadable]);
}
