//! Stanza errors on an established session's thread: bounces of our own
//! encrypted stanzas (ENC-02/03), and the initiator's late refusal of
//! message 4 (ESN-10).

use esession::ssn::ErrorCondition;
use esession::{Error, Event};
use esession_wire::minidom::Element;
use esession_wire::xml;

use crate::harness::{ALICE, BOB, Pair, Side, is_encrypted, set_attr, stanza_error};

/// `<error type='cancel'><service-unavailable/></error>`.
fn service_unavailable() -> Element {
    xml::parse_document(
        "<error xmlns='jabber:client' type='cancel'><service-unavailable \
         xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
    )
    .unwrap()
}

/// A clear `type='error'` stanza from `from` on `thread`, as a peer's
/// negotiation refusal looks (SSN-08, AMB-30).
fn clear_error(from: &str, to: &str, thread: &str, condition: &str) -> Element {
    xml::parse_document(&format!(
        "<message xmlns='jabber:client' from='{from}' to='{to}' type='error'>\
         <thread>{thread}</thread><error type='cancel'><{condition} \
         xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
    ))
    .unwrap()
}

#[test]
fn a_bounce_of_our_own_encrypted_stanza_is_a_delivery_error_and_changes_nothing() {
    // ENC-02/03: a server bounce echoes our own <c/> in a type='error' stanza
    // from the peer's JID; its MAC is ours, so it does not verify under the
    // peer's keys: DeliveryError, no termination, no counter moved.
    let mut pair = Pair::new(91);
    let thread = pair.handshake();
    let sent = pair.encrypt(Side::Alice, &thread, "bounced copy").remove(0);
    let mut bounce = sent.clone();
    set_attr(&mut bounce, "type", "error");
    set_attr(&mut bounce, "from", BOB);
    set_attr(&mut bounce, "to", ALICE);
    bounce.append_child(service_unavailable());
    assert!(is_encrypted(&bounce));
    pair.alice.clear();
    pair.deliver(Side::Alice, &bounce);
    assert!(
        matches!(
            &pair.alice.events[..],
            [Event::DeliveryError { session }] if *session == Pair::id(Side::Alice, &thread)
        ),
        "{:?}",
        pair.alice.events
    );
    assert!(pair.alice.sent.is_empty(), "no terminate, no error reply");
    assert!(pair.alice.terminations().is_empty());
    assert!(
        pair.alice
            .manager
            .is_established(&Pair::id(Side::Alice, &thread))
    );
    // The copy that did reach Bob, then traffic both ways: all in step.
    pair.deliver(Side::Bob, &sent);
    pair.chat(Side::Bob, &thread, "got it");
    pair.chat(Side::Alice, &thread, "after the bounce");
    pair.chat(Side::Bob, &thread, "and again");
    assert_eq!(pair.bob.bodies(), ["bounced copy", "after the bounce"]);
    assert_eq!(pair.alice.bodies(), ["got it", "and again"]);
    assert!(pair.alice.terminations().is_empty() && pair.bob.terminations().is_empty());
    assert!(pair.error_stanzas().iter().all(|(_, _, s)| *s == &bounce));
}

#[test]
fn a_bounce_before_the_peer_proved_the_keys_does_not_end_the_responders_session() {
    // ENC-02/03 at Bob, who has nothing from Alice yet: a bounce of his own
    // stanza is not the late refusal of ESN-10 (it carries a <c/>).
    let mut pair = Pair::new(92);
    let thread = pair.handshake();
    let sent = pair.encrypt(Side::Bob, &thread, "early").remove(0);
    let mut bounce = sent.clone();
    set_attr(&mut bounce, "type", "error");
    set_attr(&mut bounce, "from", ALICE);
    set_attr(&mut bounce, "to", BOB);
    bounce.append_child(service_unavailable());
    pair.bob.clear();
    pair.deliver(Side::Bob, &bounce);
    assert!(
        matches!(&pair.bob.events[..], [Event::DeliveryError { .. }]),
        "{:?}",
        pair.bob.events
    );
    assert!(pair.bob.sent.is_empty());
    pair.deliver(Side::Alice, &sent);
    pair.chat(Side::Alice, &thread, "hi");
    assert_eq!(pair.alice.bodies(), ["early"]);
    assert_eq!(pair.bob.bodies(), ["hi"]);
}

#[test]
fn a_refused_final_message_ends_the_responders_session() {
    // ESN-10: Alice refuses a tampered message 4 with feature-not-implemented
    // (AMB-52); Bob, established but with no stanza from Alice yet, drops the
    // session and reports the peer's error. Nothing is sent in reply.
    let mut pair = Pair::new(93);
    let thread = pair.negotiate_with(|n, stanza| {
        if n == 3 {
            crate::harness::map_values(stanza, "mac", |_, old| crate::harness::flip_base64(old));
        }
    });
    let bob_id = Pair::id(Side::Bob, &thread);
    // Alice refused ...
    assert!(pair.alice.established().is_empty());
    assert_eq!(
        pair.alice.failures(),
        [&Error::Refused {
            condition: ErrorCondition::FeatureNotImplemented,
            fields: Vec::new()
        }]
    );
    let errors = pair.error_stanzas();
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].0, errors[0].1), (4, Side::Alice));
    assert_eq!(
        stanza_error(errors[0].2).unwrap().condition,
        Some(ErrorCondition::FeatureNotImplemented)
    );
    // ... and Bob, who had established, learnt it and forgot the session.
    match &pair.bob.events[..] {
        [
            Event::Established { session: up, .. },
            Event::NegotiationFailed { session, error },
        ] => {
            assert_eq!((up, session), (&bob_id, &bob_id));
            assert_eq!(
                error,
                &Error::PeerError {
                    condition: Some(ErrorCondition::FeatureNotImplemented),
                    fields: Vec::new()
                }
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!pair.bob.manager.is_established(&bob_id));
    assert_eq!(
        pair.bob.manager.send_text(&bob_id, "late").unwrap_err(),
        Error::UnknownSession
    );
    assert_eq!(pair.bob.sent.len(), 2, "answer and message 4 only");
    assert_eq!(pair.log.len(), 5);
}

#[test]
fn a_clear_error_after_the_initiators_first_message_is_ignored() {
    // ESN-10 applies only before Alice proved the final keys: afterwards an
    // unauthenticated error changes nothing (no event, no reply).
    let mut pair = Pair::new(94);
    let thread = pair.handshake();
    pair.chat(Side::Alice, &thread, "hello");
    assert_eq!(pair.bob.bodies(), ["hello"]);
    pair.bob.clear();
    let error = clear_error(ALICE, BOB, &thread, "feature-not-implemented");
    pair.deliver(Side::Bob, &error);
    assert!(pair.bob.events.is_empty(), "{:?}", pair.bob.events);
    assert!(pair.bob.sent.is_empty());
    assert!(
        pair.bob
            .manager
            .is_established(&Pair::id(Side::Bob, &thread))
    );
    pair.chat(Side::Bob, &thread, "still here");
    pair.chat(Side::Alice, &thread, "me too");
    assert_eq!(pair.alice.bodies(), ["still here"]);
    assert_eq!(pair.bob.bodies(), ["me too"]);
}

#[test]
fn a_clear_error_from_another_resource_does_not_end_the_responders_session() {
    // SSN-11 before ESN-10: the session is bound to alice@example.org/pda.
    let mut pair = Pair::new(95);
    let thread = pair.handshake();
    pair.bob.clear();
    let error = clear_error(
        "alice@example.org/evil",
        BOB,
        &thread,
        "feature-not-implemented",
    );
    pair.deliver(Side::Bob, &error);
    assert!(pair.bob.events.is_empty(), "{:?}", pair.bob.events);
    assert!(
        pair.bob
            .manager
            .is_established(&Pair::id(Side::Bob, &thread))
    );
    pair.chat(Side::Alice, &thread, "hi");
    assert_eq!(pair.bob.bodies(), ["hi"]);
    assert!(
        pair.bob
            .events
            .iter()
            .all(|e| !matches!(e, Event::NegotiationFailed { .. }))
    );
}

/// Issue 12: every failure says who is at fault. A forged completion is the
/// peer's (or an attacker's) doing; an offer without a common cipher is an
/// incompatibility; neither is the application's.
#[test]
fn a_failed_negotiation_says_who_is_at_fault() {
    use esession::Fault;
    // Message 3 with a flipped byte in Alice's identity: Bob refuses it.
    let mut pair = Pair::new(93);
    pair.negotiate_with(|n, stanza| {
        if n == 2 {
            let text = xml::serialize(stanza, "").unwrap();
            let tampered = text.replacen("<value>", "<value>AAAA", 1);
            *stanza = xml::parse_document(&tampered).unwrap();
        }
    });
    let faults: Vec<Fault> = pair.bob.failures().iter().map(|e| e.fault()).collect();
    assert!(faults.contains(&Fault::Peer), "{:?}", pair.bob.failures());

    // No cipher in common: an incompatibility, and Bob says which field.
    let alice = esession::Config {
        ciphers: vec![esession_crypto::CipherAlgorithm::Twofish256Ctr],
        ..crate::harness::config(ALICE)
    };
    let bob = esession::Config {
        ciphers: vec![esession_crypto::CipherAlgorithm::Aes128Ctr],
        ..crate::harness::config(BOB)
    };
    let mut pair = Pair::with_configs(alice, bob, 94);
    let (_, out) = pair.alice.manager.start_session(BOB).unwrap();
    pair.route(Side::Alice, out);
    let refused = pair.bob.failures();
    assert!(
        matches!(
            refused.as_slice(),
            [error @ Error::Refused { .. }]
                if error.fault() == Fault::Incompatible
                    && error.condition_sent() == Some(ErrorCondition::NotAcceptable)
        ),
        "{refused:?}"
    );
    let peer_side = pair.alice.failures();
    assert!(
        peer_side.iter().all(|e| e.fault() == Fault::Incompatible),
        "{peer_side:?}"
    );
}
