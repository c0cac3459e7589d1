//! A clean run between Alice and Bob.

use esession::{Error, Event, TerminationReason};
use esession_wire::minidom::Element;
use esession_wire::{ns, xml};

use crate::harness::{
    ALICE, BOB, Pair, Side, contains_element, field, field_values, is_encrypted, thread_of,
};

/// The sas28x5 alphabet (ESN-33).
const SAS_ALPHABET: &str = "acdefghikmopqruvwxy123456789";

#[test]
fn a_clean_run_establishes_both_sides_with_the_same_sas() {
    // ESN-33: both sides compute the same five-character SAS.
    let mut pair = Pair::new(1);
    let thread = pair.handshake();
    let (alice, bob) = (pair.alice.only_session(), pair.bob.only_session());
    assert_eq!(alice.sas, bob.sas);
    assert_eq!(alice.sas.chars().count(), 5);
    assert!(
        alice.sas.chars().all(|c| SAS_ALPHABET.contains(c)),
        "{}",
        alice.sas
    );
    assert!(alice.we_initiated && !bob.we_initiated);
    // Both agreed the same parameters.
    assert_eq!(
        (
            alice.group,
            alice.cipher,
            alice.hash,
            alice.compression,
            alice.logging
        ),
        (
            bob.group,
            bob.cipher,
            bob.hash,
            bob.compression,
            bob.logging
        )
    );
    assert!(
        pair.alice
            .manager
            .is_established(&Pair::id(Side::Alice, &thread))
    );
    assert!(
        pair.bob
            .manager
            .is_established(&Pair::id(Side::Bob, &thread))
    );
    // Four negotiation messages, no errors, nothing else.
    assert_eq!(pair.log.len(), 4);
    assert!(pair.error_stanzas().is_empty());
    assert!(pair.alice.failures().is_empty() && pair.bob.failures().is_empty());
}

#[test]
fn different_seeds_give_different_sas_for_different_sessions() {
    // ESN-48: fresh DH values and nonces per negotiation, so the SAS changes.
    let mut pair = Pair::new(2);
    pair.handshake();
    let first = pair.info(Side::Alice).sas;
    pair.handshake();
    let second = pair.info(Side::Alice).sas;
    assert_ne!(first, second);
}

#[test]
fn messages_flow_both_ways_with_their_bodies() {
    // ENC-13: decrypted and spliced back in place of <c/>.
    let mut pair = Pair::new(3);
    let thread = pair.handshake();
    pair.chat(Side::Alice, &thread, "Hi Bob & <friends>");
    pair.chat(Side::Bob, &thread, "Hello Alice");
    pair.chat(Side::Alice, &thread, "How are you?");
    pair.chat(Side::Bob, &thread, "");
    assert_eq!(pair.bob.bodies(), ["Hi Bob & <friends>", "How are you?"]);
    assert_eq!(pair.alice.bodies(), ["Hello Alice", ""]);
    // The delivered message carries the sender's addressing and no <c/>.
    let delivered = pair.bob.messages()[0];
    assert_eq!(delivered.attr("from"), Some(ALICE));
    assert_eq!(delivered.attr("to"), Some(BOB));
    assert_eq!(delivered.attr("type"), Some("chat"));
    assert!(!is_encrypted(delivered));
    assert_eq!(thread_of(delivered).as_deref(), Some(thread.as_str()));
}

#[test]
fn arbitrary_message_children_survive_encryption() {
    // ENC-01/02/04: every child but <thread/>, <amp/>, <error/> goes into <c/>.
    let mut pair = Pair::new(4);
    let thread = pair.handshake();
    let plain = xml::parse_document(
        "<message xmlns='jabber:client' type='chat'><body xml:lang='en'>hi</body>\
         <active xmlns='http://jabber.org/protocol/chatstates'/>\
         <subject>topic</subject></message>",
    )
    .unwrap();
    let out = pair
        .alice
        .manager
        .send_message(&Pair::id(Side::Alice, &thread), &plain)
        .unwrap();
    let stanza = out.stanzas[0].clone();
    assert!(!contains_element(&stanza, "active"));
    assert!(!contains_element(&stanza, "subject"));
    pair.route(Side::Alice, out);
    let got = pair.bob.messages()[0];
    let body = got.get_child("body", ns::JABBER_CLIENT).unwrap();
    assert_eq!(body.text(), "hi");
    assert!(got.has_child("active", "http://jabber.org/protocol/chatstates"));
    assert_eq!(
        got.get_child("subject", ns::JABBER_CLIENT).unwrap().text(),
        "topic"
    );
}

#[test]
fn send_text_puts_only_thread_c_and_amp_in_clear() {
    // ENC-02, ENC-07, ENC-10: clear <thread/> and <amp/>, everything else in <c/>.
    let mut pair = Pair::new(5);
    let thread = pair.handshake();
    let stanza = pair
        .encrypt(Side::Alice, &thread, "a secret body text")
        .remove(0);
    assert_eq!(stanza.attr("to"), Some(BOB));
    assert_eq!(stanza.attr("from"), Some(ALICE));
    let names: Vec<(String, String)> = stanza
        .children()
        .map(|c| (c.name().to_owned(), c.ns()))
        .collect();
    assert_eq!(
        names,
        [
            ("thread".to_owned(), ns::JABBER_CLIENT.to_owned()),
            ("c".to_owned(), ns::STANZA_ENCRYPTION.to_owned()),
            ("amp".to_owned(), ns::AMP.to_owned()),
        ]
    );
    assert_eq!(thread_of(&stanza).as_deref(), Some(thread.as_str()));
    assert!(
        !contains_element(&stanza, "body"),
        "ENC-02: no clear <body/>"
    );
    let wire = xml::serialize(&stanza, "").unwrap();
    assert!(!wire.contains("secret"), "plaintext leaked: {wire}");
    let c = stanza.get_child("c", ns::STANZA_ENCRYPTION).unwrap();
    let parts: Vec<&str> = c.children().map(Element::name).collect();
    assert_eq!(
        parts,
        ["data", "mac"],
        "ENC-10 order, no <new/> without rekeys"
    );
    // AMB-23: the online AMP rule.
    let rule = stanza
        .get_child("amp", ns::AMP)
        .and_then(|a| a.get_child("rule", ns::AMP))
        .unwrap();
    assert_eq!(rule.attr("action"), Some("error"));
    assert_eq!(rule.attr("condition"), Some("match-resource"));
    assert_eq!(rule.attr("value"), Some("other"));
}

#[test]
fn equal_plaintexts_encrypt_differently() {
    // CMN-05: the counter moves on, so a repeated message gives a new ciphertext and MAC.
    let mut pair = Pair::new(6);
    let thread = pair.handshake();
    let one = pair.encrypt(Side::Alice, &thread, "same").remove(0);
    let two = pair.encrypt(Side::Alice, &thread, "same").remove(0);
    assert_ne!(
        one.get_child("c", ns::STANZA_ENCRYPTION),
        two.get_child("c", ns::STANZA_ENCRYPTION)
    );
}

/// Bob's view of the session on `thread` right after it was established:
/// whatever the rshashes matched, a retained-secret claim is provisional
/// (AMB-57), both in the `Established` event and in `session_info`.
fn assert_bob_provisional(pair: &Pair, thread: &str) {
    let established = pair.info(Side::Bob);
    let now = pair
        .session_info(Side::Bob, thread)
        .expect("Bob established");
    for info in [&established, &now] {
        assert!(!info.authenticated_by_retained_secret, "AMB-57: {info:?}");
        assert!(!info.retained_chain_verified, "AMB-57: {info:?}");
        assert!(info.sas_reminder, "ESN-34/AMB-57: {info:?}");
    }
}

#[test]
fn a_second_session_is_authenticated_by_the_retained_secret_and_the_first_is_not() {
    // ESN-35..41: the first session stores RS on both sides; the second finds it
    // (rshashes at Bob, srshash at Alice). AMB-57: Alice is proven by Bob's
    // message 4 and reports it at once; Bob's claim is provisional until
    // Alice's first stanza under the final keys verifies.
    let mut pair = Pair::new(7);
    let first = pair.handshake();
    assert!(!pair.info(Side::Alice).authenticated_by_retained_secret);
    assert!(!pair.info(Side::Bob).authenticated_by_retained_secret);
    // Nothing was claimed, so Alice's first message proves nothing.
    assert_eq!(pair.alice_proves(&first), None);
    assert!(
        !pair
            .session_info(Side::Bob, &first)
            .unwrap()
            .authenticated_by_retained_secret
    );
    for side in [Side::Alice, Side::Bob] {
        let peer = match side {
            Side::Alice => "bob@example.com",
            Side::Bob => "alice@example.org",
        };
        let stored = pair
            .party(side)
            .manager
            .trust()
            .retained_secrets(peer)
            .unwrap();
        assert_eq!(stored.len(), 1, "ESN-40: one retained secret at {side:?}");
    }
    // And a second and a third one, after the chain moved on (ESN-40: RS_new replaces SRS).
    for round in [2, 3] {
        let thread = pair.handshake();
        assert!(
            pair.info(Side::Alice).authenticated_by_retained_secret,
            "session {round}"
        );
        assert!(
            pair.session_info(Side::Alice, &thread)
                .unwrap()
                .authenticated_by_retained_secret
        );
        assert_bob_provisional(&pair, &thread);
        assert_eq!(pair.bob.retained_proofs().len(), round - 2, "not yet");
        assert_eq!(
            pair.alice_proves(&thread),
            Some(false),
            "AMB-57: proven, never SAS-verified (session {round})"
        );
        let bob = pair.session_info(Side::Bob, &thread).unwrap();
        assert!(bob.authenticated_by_retained_secret, "session {round}");
        assert!(!bob.retained_chain_verified);
        assert!(bob.sas_reminder, "ESN-34: still unverified");
        // Proven once: a second message raises nothing more.
        assert_eq!(pair.alice_proves(&thread), None);
        assert_eq!(pair.bob.retained_proofs(), vec![false; round - 1]);
    }
}

#[test]
fn a_fresh_party_cannot_claim_the_retained_secret_chain() {
    // ESN-35/37: Bob's state is lost (a new device); no match on either side.
    let mut pair = Pair::new(8);
    pair.handshake();
    pair.bob = crate::harness::Party::new(BOB, crate::harness::config(BOB), 99);
    pair.handshake();
    assert!(!pair.info(Side::Alice).authenticated_by_retained_secret);
    assert!(!pair.info(Side::Bob).authenticated_by_retained_secret);
}

#[test]
fn confirming_the_sas_marks_the_next_session_verified_and_stops_the_reminder() {
    // ESN-34, ESN-42; AMB-57: on Bob's side only once Alice proved the chain.
    let mut pair = Pair::new(9);
    let first = pair.handshake();
    for side in [Side::Alice, Side::Bob] {
        let info = pair.info(side);
        assert!(!info.retained_chain_verified);
        assert!(info.sas_reminder, "ESN-34: remind until verified");
    }
    pair.alice
        .manager
        .confirm_sas(&Pair::id(Side::Alice, &first))
        .unwrap();
    pair.bob
        .manager
        .confirm_sas(&Pair::id(Side::Bob, &first))
        .unwrap();
    // The flag travels along the chain (ESN-42: "ever" verified).
    for round in [2, 3] {
        let thread = pair.handshake();
        let alice = pair.info(Side::Alice);
        assert!(alice.authenticated_by_retained_secret, "session {round}");
        assert!(alice.retained_chain_verified, "ESN-42 at Alice");
        assert!(!alice.sas_reminder, "ESN-34 at Alice");
        assert_bob_provisional(&pair, &thread);
        assert_eq!(
            pair.alice_proves(&thread),
            Some(true),
            "AMB-57/ESN-42: Bob's chain proven and verified (session {round})"
        );
        let bob = pair.session_info(Side::Bob, &thread).unwrap();
        assert!(bob.authenticated_by_retained_secret);
        assert!(bob.retained_chain_verified, "ESN-42 at Bob");
        assert!(!bob.sas_reminder, "ESN-34 at Bob");
    }
}

#[test]
fn a_one_sided_sas_confirmation_only_changes_that_side() {
    // ESN-42 is each user's own memory: Bob never compared the SAS.
    let mut pair = Pair::new(10);
    let first = pair.handshake();
    pair.alice
        .manager
        .confirm_sas(&Pair::id(Side::Alice, &first))
        .unwrap();
    let second = pair.handshake();
    assert!(pair.info(Side::Alice).retained_chain_verified);
    assert!(!pair.info(Side::Alice).sas_reminder);
    // AMB-57: Bob's claim is proven by Alice's message, but his chain stays unverified.
    assert_eq!(pair.alice_proves(&second), Some(false));
    let bob = pair.session_info(Side::Bob, &second).unwrap();
    assert!(bob.authenticated_by_retained_secret);
    assert!(!bob.retained_chain_verified);
    assert!(bob.sas_reminder);
}

#[test]
fn confirm_sas_needs_an_established_session() {
    let mut pair = Pair::new(11);
    let id = Pair::id(Side::Alice, "no-such-thread");
    assert_eq!(
        pair.alice.manager.confirm_sas(&id),
        Err(Error::UnknownSession)
    );
}

#[test]
fn replies_reuse_the_thread() {
    // THR-02, SSN-05: every stanza of the session, both ways, carries the offer's thread.
    let mut pair = Pair::new(12);
    let thread = pair.handshake();
    pair.chat(Side::Alice, &thread, "ping");
    pair.chat(Side::Bob, &thread, "pong");
    assert_eq!(pair.log.len(), 6);
    for (side, stanza) in &pair.log {
        assert_eq!(
            thread_of(stanza).as_deref(),
            Some(thread.as_str()),
            "{side:?}"
        );
    }
    let reply = pair.alice.messages()[0];
    assert_eq!(thread_of(reply).as_deref(), Some(thread.as_str()));
}

#[test]
fn thread_ids_are_32_hex_digits_and_new_per_session() {
    // THR-06: at least 128 random bits, lower-case hex, fresh for each session (THR-02).
    let mut pair = Pair::new(13);
    let threads: Vec<String> = (0..3).map(|_| pair.handshake()).collect();
    for t in &threads {
        assert_eq!(t.len(), 32, "{t}");
        assert!(
            t.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
            "{t}"
        );
    }
    assert_ne!(threads[0], threads[1]);
    assert_ne!(threads[1], threads[2]);
    assert_ne!(threads[0], threads[2]);
}

#[test]
fn the_offer_carries_the_amp_drop_rule_and_no_body() {
    // SSN-01, SSN-04, AMB-60, ESN-04.
    let mut pair = Pair::new(14);
    let (_, out) = pair.alice.manager.start_session(BOB).unwrap();
    let offer = &out.stanzas[0];
    assert!(
        matches!(offer.attr("type"), None | Some("normal")),
        "SSN-01: type normal"
    );
    assert_eq!(offer.attr("to"), Some(BOB));
    assert!(!contains_element(offer, "body"), "SSN-01: no <body/>");
    assert_eq!(thread_of(offer).map(|t| t.len()), Some(32));
    let amp = offer.get_child("amp", ns::AMP).expect("AMP");
    assert_eq!(amp.attr("per-hop"), Some("true"));
    let rules: Vec<(Option<&str>, Option<&str>, Option<&str>)> = amp
        .children()
        .map(|r| (r.attr("action"), r.attr("condition"), r.attr("value")))
        .collect();
    assert_eq!(rules, [(Some("drop"), Some("deliver"), Some("stored"))]);
    let x = crate::harness::form(offer).unwrap();
    assert_eq!(x.attr("type"), Some("form"));
    // SSN-01: FORM_TYPE urn:xmpp:ssn, required boolean accept.
    let form_type = field(offer, "FORM_TYPE").unwrap();
    assert_eq!(form_type.attr("type"), Some("hidden"));
    assert_eq!(field_values(&form_type), [ns::SSN]);
    let accept = field(offer, "accept").unwrap();
    assert_eq!(accept.attr("type"), Some("boolean"));
    assert!(accept.has_child("required", ns::DATA_FORMS));
    // ESN-04/06: one He per offered group.
    assert_eq!(field_values(&field(offer, "modp").unwrap()), ["1", "2"]);
    assert_eq!(field_values(&field(offer, "dhhashes").unwrap()).len(), 2);
    assert!(field(offer, "dhkeys").is_none(), "4-message offer");
    pair.route(Side::Alice, out);
    assert_eq!(pair.bob.established().len(), 1);
}

#[test]
fn no_negotiation_message_carries_a_body() {
    // SSN-01, SSN-05.
    let mut pair = Pair::new(15);
    pair.handshake();
    for (side, stanza) in &pair.log {
        assert!(!contains_element(stanza, "body"), "{side:?}");
        assert!(
            !is_encrypted(stanza),
            "nothing is bundled with the negotiation"
        );
    }
}

#[test]
fn terminate_and_ack_end_both_sides_and_later_sends_fail() {
    // ESN-45..47, SSN-15.
    let mut pair = Pair::new(16);
    let thread = pair.handshake();
    let (alice_id, bob_id) = (Pair::id(Side::Alice, &thread), Pair::id(Side::Bob, &thread));
    let out = pair.alice.manager.terminate(&alice_id).unwrap();
    let request = out.stanzas[0].clone();
    // ESN-45: the terminate form travels encrypted; nothing in clear but the thread.
    assert!(is_encrypted(&request));
    assert!(!contains_element(&request, "feature"));
    assert!(!contains_element(&request, "x"));
    // ESN-47: nothing may be sent while waiting for the acknowledgement.
    assert_eq!(
        pair.alice.manager.send_text(&alice_id, "late").unwrap_err(),
        Error::SessionEnded
    );
    assert_eq!(
        pair.alice.manager.terminate(&alice_id).unwrap_err(),
        Error::SessionEnded
    );
    pair.route(Side::Alice, out);
    // ESN-46: Bob acknowledged, encrypted.
    assert_eq!(pair.log.len(), 4 + 2);
    let (sender, ack) = &pair.log[5];
    assert_eq!(*sender, Side::Bob);
    assert!(is_encrypted(ack));
    assert!(!contains_element(ack, "feature"));
    assert_eq!(pair.bob.terminations(), [&TerminationReason::PeerRequest]);
    assert_eq!(
        pair.alice.terminations(),
        [&TerminationReason::LocalRequest]
    );
    assert!(!pair.alice.manager.is_established(&alice_id));
    assert!(!pair.bob.manager.is_established(&bob_id));
    // ESN-47: after the ack, nothing can be sent on either side.
    for (side, id) in [(Side::Alice, &alice_id), (Side::Bob, &bob_id)] {
        let err = pair
            .party_mut(side)
            .manager
            .send_text(id, "after")
            .unwrap_err();
        assert!(
            matches!(err, Error::SessionEnded | Error::UnknownSession),
            "{side:?}: {err:?}"
        );
    }
    // Nothing was delivered as a message, and no error stanza was sent.
    assert!(pair.alice.messages().is_empty() && pair.bob.messages().is_empty());
    assert!(pair.error_stanzas().is_empty());
}

#[test]
fn messages_in_flight_before_a_terminate_are_still_delivered() {
    // ESN-46: the receiver verifies the terminate's MAC with nothing missing; a
    // message sent before it arrives first and is delivered.
    let mut pair = Pair::new(17);
    let thread = pair.handshake();
    pair.chat(Side::Bob, &thread, "last words");
    let out = pair
        .bob
        .manager
        .terminate(&Pair::id(Side::Bob, &thread))
        .unwrap();
    pair.route(Side::Bob, out);
    assert_eq!(pair.alice.bodies(), ["last words"]);
    assert_eq!(pair.alice.terminations(), [&TerminationReason::PeerRequest]);
    assert_eq!(pair.bob.terminations(), [&TerminationReason::LocalRequest]);
}

#[test]
fn simultaneous_terminates_end_both_sides() {
    // Each request doubles as the other's acknowledgement; no error, no third stanza.
    let mut pair = Pair::new(18);
    let thread = pair.handshake();
    let from_alice = pair
        .alice
        .manager
        .terminate(&Pair::id(Side::Alice, &thread))
        .unwrap();
    let from_bob = pair
        .bob
        .manager
        .terminate(&Pair::id(Side::Bob, &thread))
        .unwrap();
    let (a, b) = (from_alice.stanzas[0].clone(), from_bob.stanzas[0].clone());
    pair.deliver(Side::Bob, &a);
    pair.deliver(Side::Alice, &b);
    assert_eq!(
        pair.alice.terminations(),
        [&TerminationReason::LocalRequest]
    );
    assert_eq!(pair.bob.terminations(), [&TerminationReason::LocalRequest]);
    assert_eq!(pair.log.len(), 4 + 2, "no acknowledgement needed");
}

#[test]
fn events_of_a_clean_run_are_exactly_established() {
    // No stray alerts: disclosure never and a confidential cipher (ESN-53/54).
    let mut pair = Pair::new(19);
    pair.handshake();
    for side in [Side::Alice, Side::Bob] {
        let events = &pair.party(side).events;
        assert_eq!(events.len(), 1, "{side:?}: {events:?}");
        assert!(matches!(events[0], Event::Established { .. }));
    }
}

/// The Base64 text of the `<data/>` of an encrypted stanza.
fn data_of(stanza: &Element) -> String {
    stanza
        .get_child("c", ns::STANZA_ENCRYPTION)
        .and_then(|c| c.get_child("data", ns::STANZA_ENCRYPTION))
        .map(Element::text)
        .expect("<c/> with <data/>")
}

#[test]
fn padding_hides_the_length_of_short_messages_and_is_removed_at_the_receiver() {
    // ENC-04: Alice pads to a multiple of 64 bytes; with `none` compression
    // and CTR the ciphertext is as long as the padded content. `<body>x</body>`
    // (14 bytes) and a 40-character body (53 bytes) both become 64 bytes
    // (88 Base64 characters); a 60-character body (73 bytes) becomes 128.
    let alice = esession::Config {
        pad_to_multiple: Some(64),
        ..crate::harness::config(ALICE)
    };
    let mut pair = Pair::with_configs(alice, crate::harness::config(BOB), 20);
    let thread = pair.handshake();
    assert_eq!(
        pair.info(Side::Alice).compression,
        esession_crypto::CompressionAlgorithm::None
    );
    let bodies = ["x", &"a".repeat(40), &"b".repeat(60), "ends in blanks \t "];
    let mut lengths = Vec::new();
    for body in bodies {
        let stanza = pair.encrypt(Side::Alice, &thread, body).remove(0);
        lengths.push(data_of(&stanza).len());
        pair.deliver(Side::Bob, &stanza);
    }
    assert_eq!(
        lengths[0], lengths[1],
        "ENC-04: 1 and 40 characters look alike"
    );
    assert_eq!(lengths[0], 88, "one 64-byte block");
    assert_eq!(lengths[2], 172, "two 64-byte blocks");
    assert_eq!(lengths[3], 88);
    // The receiver gets exactly the bodies: the padding is not part of them.
    assert_eq!(pair.bob.bodies(), bodies);
    assert!(pair.bob.terminations().is_empty());
    // Bob does not pad: there the lengths differ (so the check above can fail).
    let short = pair.encrypt(Side::Bob, &thread, "x").remove(0);
    let long = pair.encrypt(Side::Bob, &thread, &"a".repeat(40)).remove(0);
    assert_ne!(data_of(&short).len(), data_of(&long).len());
    pair.deliver(Side::Alice, &short);
    pair.deliver(Side::Alice, &long);
    assert_eq!(pair.alice.bodies(), ["x".to_owned(), "a".repeat(40)]);
}

#[test]
fn a_dismissed_sas_reminder_stays_off_in_later_sessions_on_that_side_only() {
    // Issue 5 item 10: the ESN-34 reminder repeats at each session until the
    // SAS is confirmed or the reminder dismissed; dismissing verifies nothing.
    let mut pair = Pair::new(31);
    let first = pair.handshake();
    let alice_first = Pair::id(Side::Alice, &first);
    assert!(pair.info(Side::Alice).sas_reminder);
    pair.alice
        .manager
        .dismiss_sas_reminder(&alice_first)
        .unwrap();
    let now = pair.session_info(Side::Alice, &first).unwrap();
    assert!(
        !now.sas_reminder,
        "the current session's info follows at once"
    );
    assert!(!now.retained_chain_verified, "dismissing is not verifying");
    let second = pair.handshake();
    let alice = pair.info(Side::Alice);
    assert!(
        !alice.sas_reminder,
        "no reminder for Alice in the next session"
    );
    assert!(!alice.retained_chain_verified);
    pair.alice_proves(&second);
    let bob = pair.session_info(Side::Bob, &second).unwrap();
    assert!(bob.sas_reminder, "Bob did not dismiss: still reminded");
    // Only established sessions can be dismissed.
    let unknown = Pair::id(Side::Alice, "no-such-thread");
    assert!(matches!(
        pair.alice.manager.dismiss_sas_reminder(&unknown),
        Err(Error::UnknownSession)
    ));
}

#[test]
fn terminate_all_ends_every_session_with_the_encrypted_terminate_form() {
    // ESN-45: before going offline, every established session is terminated.
    let mut pair = Pair::new(33);
    let first = pair.handshake();
    let second = pair.handshake();
    let out = pair.alice.manager.terminate_all();
    assert_eq!(out.stanzas.len(), 2, "one terminate per session");
    for stanza in &out.stanzas {
        assert!(is_encrypted(stanza), "the terminate form is encrypted");
        assert!(!contains_element(stanza, "x"), "no clear form");
    }
    pair.route(Side::Alice, out);
    assert_eq!(
        pair.bob.terminations(),
        [
            &TerminationReason::PeerRequest,
            &TerminationReason::PeerRequest
        ]
    );
    assert_eq!(
        pair.alice.terminations(),
        [
            &TerminationReason::LocalRequest,
            &TerminationReason::LocalRequest
        ]
    );
    for thread in [&first, &second] {
        assert!(pair.session_info(Side::Alice, thread).is_none());
        assert!(pair.session_info(Side::Bob, thread).is_none());
    }
    // Nothing left to end.
    assert!(pair.alice.manager.terminate_all().stanzas.is_empty());
}

/// RFC 7622 (issue 12, typed JIDs): a contact named with other capitals in
/// its node and domain is the same contact. Alice offers to `BOB@Example.COM`;
/// Bob's answer from his full JID binds the session (SSN-11), whose id names
/// the normalized JID.
#[test]
fn a_contact_spelled_with_capitals_is_the_same_contact() {
    let mut pair = Pair::new(31);
    let (id, out) = pair.alice.manager.start_session("BOB@Example.COM").unwrap();
    assert_eq!(id.peer.as_str(), "bob@example.com", "normalized at once");
    pair.route(Side::Alice, out);
    let established = pair.alice.established();
    let [(session, _)] = established.as_slice() else {
        panic!("one session: {:?}", pair.alice.failures());
    };
    assert_eq!(
        session.peer.as_str(),
        BOB,
        "bound to the full JID that answered"
    );
    assert_eq!(session.thread, id.thread);
    assert_eq!(session.contact().as_str(), "bob@example.com");
    assert_eq!(session.client(), "laptop");
    assert_eq!(pair.bob.only_session().sas, pair.alice.only_session().sas);
}
