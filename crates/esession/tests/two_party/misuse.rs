//! API misuse and protocol edge cases: unknown and unfinished sessions,
//! foreign resources, peer errors, offers the responder must refuse, offers
//! held for the user, and clear-text stanzas on an encrypted thread.

use esession::ssn::ErrorCondition;
use esession::{Config, Error, Event, SessionId};
use esession_wire::minidom::Element;
use esession_wire::{ns, xml};

use crate::harness::{
    ALICE, BOB, Pair, Side, add_field, config, contains_element, field, field_values, field_vars,
    form, is_encrypted, new_field, set_attr, set_values, stanza_error, thread_of, with_field,
};

/// Alice's offer, not yet delivered.
fn offer(pair: &mut Pair) -> (SessionId, Element) {
    let (id, out) = pair.alice.manager.start_session(BOB).unwrap();
    let offer = pair.alice.absorb(out).remove(0);
    (id, offer)
}

/// Delivers a (possibly edited) offer to Bob and returns Bob's single error reply.
fn refusal_of(pair: &mut Pair, offer: &Element) -> crate::harness::StanzaError {
    pair.deliver(Side::Bob, offer);
    assert!(pair.bob.established().is_empty() && pair.alice.established().is_empty());
    let errors = pair.error_stanzas();
    assert_eq!(errors.len(), 1, "{:?}", pair.log);
    let (_, sender, stanza) = errors[0];
    assert_eq!(sender, Side::Bob);
    assert_eq!(stanza.attr("to"), Some(ALICE));
    // SSN-08: the thread and the offer's form echoed.
    assert_eq!(thread_of(stanza), thread_of(offer));
    assert!(form(stanza).is_some(), "SSN-08: form echoed");
    let error = stanza_error(stanza).unwrap();
    assert!(!error.has_text, "AMB-30: no <text/>");
    // Both sides report it (ESN-10).
    let condition = error.condition.unwrap();
    assert_eq!(
        pair.bob.failures(),
        [&Error::Refused {
            condition,
            fields: error.fields.clone()
        }]
    );
    assert_eq!(
        pair.alice.failures(),
        [&Error::PeerError {
            condition: Some(condition),
            fields: error.fields.clone()
        }]
    );
    error
}

/// A stanza from `from` on `thread` with the given children.
fn stanza(from: &str, to: &str, kind: Option<&str>, thread: &str, children: &str) -> Element {
    let kind = kind.map(|k| format!(" type='{k}'")).unwrap_or_default();
    xml::parse_document(&format!(
        "<message xmlns='jabber:client' from='{from}' to='{to}'{kind}>\
         <thread>{thread}</thread>{children}</message>"
    ))
    .unwrap()
}

#[test]
fn sending_on_an_unknown_session_is_an_error() {
    let mut pair = Pair::new(51);
    let id = Pair::id(Side::Alice, "0123456789abcdef0123456789abcdef");
    assert_eq!(
        pair.alice.manager.send_text(&id, "x").unwrap_err(),
        Error::UnknownSession
    );
    assert_eq!(
        pair.alice.manager.terminate(&id).unwrap_err(),
        Error::UnknownSession
    );
    assert!(pair.alice.manager.session_info(&id).is_none());
    // A known thread with another peer is not that session either.
    let thread = pair.handshake();
    let other = SessionId {
        peer: "carol@example.net/phone".parse().unwrap(),
        thread,
    };
    assert_eq!(
        pair.alice.manager.send_text(&other, "x").unwrap_err(),
        Error::UnknownSession
    );
}

#[test]
fn sending_before_the_session_is_established_is_an_error() {
    // Only an established session holds keys (style practice 3).
    let mut pair = Pair::new(52);
    let (id, offer) = offer(&mut pair);
    assert_eq!(
        pair.alice.manager.send_text(&id, "early").unwrap_err(),
        Error::NotEstablished
    );
    // Bob after answering, before Alice's completion: drop everything Bob sends.
    let replies = pair.bob.receive(&offer);
    assert_eq!(replies.len(), 1);
    let bob_id = Pair::id(Side::Bob, &id.thread);
    assert_eq!(
        pair.bob.manager.send_text(&bob_id, "early").unwrap_err(),
        Error::NotEstablished
    );
    assert!(!pair.bob.manager.is_established(&bob_id));
    assert!(
        pair.alice
            .sent
            .iter()
            .chain(&pair.bob.sent)
            .all(|s| !is_encrypted(s))
    );
}

#[test]
fn send_message_refuses_a_stanza_that_is_not_a_message() {
    let mut pair = Pair::new(53);
    let thread = pair.handshake();
    let iq = xml::parse_document("<iq xmlns='jabber:client' type='get' id='1'/>").unwrap();
    let err = pair
        .alice
        .manager
        .send_message(&Pair::id(Side::Alice, &thread), &iq)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
}

#[test]
fn stanzas_from_another_resource_on_the_same_thread_are_ignored() {
    // SSN-11: the session is bound to alice@example.org/pda.
    let mut pair = Pair::new(54);
    let thread = pair.handshake();
    let genuine = pair.encrypt(Side::Alice, &thread, "from the pda").remove(0);
    let mut forged = genuine.clone();
    set_attr(&mut forged, "from", "alice@example.org/evil");
    pair.alice.clear();
    pair.bob.clear();
    pair.deliver(Side::Bob, &forged);
    let clear_terminate = stanza(
        "alice@example.org/evil",
        BOB,
        None,
        &thread,
        "<feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' \
         type='submit'><field var='FORM_TYPE'><value>urn:xmpp:ssn</value></field>\
         <field var='terminate'><value>1</value></field></x></feature>",
    );
    pair.deliver(Side::Bob, &clear_terminate);
    let clear_body = stanza(
        "alice@example.org/evil",
        BOB,
        Some("chat"),
        &thread,
        "<body>hi</body>",
    );
    pair.deliver(Side::Bob, &clear_body);
    assert!(pair.bob.events.is_empty(), "{:?}", pair.bob.events);
    assert!(pair.bob.sent.is_empty());
    // The forged copy did not move Bob's counter: the genuine stanza verifies.
    pair.deliver(Side::Bob, &genuine);
    assert_eq!(pair.bob.bodies(), ["from the pda"]);
}

#[test]
fn an_offer_to_a_bare_jid_binds_the_session_to_the_full_jid_that_answered() {
    // SSN-11: later stanzas go to /laptop.
    let mut pair = Pair::new(55);
    let (id, out) = pair.alice.manager.start_session("bob@example.com").unwrap();
    assert_eq!(out.stanzas[0].attr("to"), Some("bob@example.com"));
    pair.route(Side::Alice, out);
    let (alice_id, _) = pair.alice.established()[0];
    assert_eq!(alice_id.peer.as_str(), BOB);
    assert_eq!(alice_id.thread, id.thread);
    let completion = &pair.log[2].1;
    assert_eq!(completion.attr("to"), Some(BOB));
    let alice_id = alice_id.clone();
    let out = pair.alice.manager.send_text(&alice_id, "hi").unwrap();
    assert_eq!(out.stanzas[0].attr("to"), Some(BOB));
    pair.route(Side::Alice, out);
    assert_eq!(pair.bob.bodies(), ["hi"]);
}

#[test]
fn an_answer_from_another_users_jid_is_ignored() {
    // SSN-11: only the offered peer (any resource of a bare JID) may answer.
    let mut pair = Pair::new(56);
    let (_, offer) = offer(&mut pair);
    let mut answer = pair.bob.receive(&offer).remove(0);
    set_attr(&mut answer, "from", "mallory@example.net/x");
    let replies = pair.alice.receive(&answer);
    assert!(replies.is_empty());
    assert!(pair.alice.events.is_empty(), "{:?}", pair.alice.events);
}

#[test]
fn a_stanza_error_reply_to_the_offer_fails_the_negotiation() {
    // SSN-08 as seen by Alice: NegotiationFailed with PeerError; state dropped (ESN-10).
    let mut pair = Pair::new(57);
    let (id, _offer) = offer(&mut pair);
    let error = stanza(
        BOB,
        ALICE,
        Some("error"),
        &id.thread,
        "<error type='cancel'><feature-not-implemented \
         xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><feature \
         xmlns='http://jabber.org/protocol/feature-neg'><field var='modp'/></feature></error>",
    );
    pair.deliver(Side::Alice, &error);
    assert_eq!(
        pair.alice.failures(),
        [&Error::PeerError {
            condition: Some(ErrorCondition::FeatureNotImplemented),
            fields: vec!["modp".to_owned()],
        }]
    );
    // ESN-10: the attempt is gone; sending is refused as for any unknown session.
    assert_eq!(
        pair.alice.manager.send_text(&id, "x").unwrap_err(),
        Error::UnknownSession
    );
    assert!(
        pair.alice.sent.len() == 1,
        "nothing sent in reply to an error"
    );
}

#[test]
fn a_three_message_offer_gets_feature_not_implemented_naming_dhkeys() {
    // ESN-08, SIM-04: a 3-message offer carries dhkeys instead of dhhashes.
    let mut pair = Pair::new(58);
    let (_, mut offer) = offer(&mut pair);
    with_field(&mut offer, "dhhashes", |f| set_attr(f, "var", "dhkeys"));
    let error = refusal_of(&mut pair, &offer);
    assert_eq!(error.condition, Some(ErrorCondition::FeatureNotImplemented));
    assert_eq!(error.error_type.as_deref(), Some("cancel"));
    assert_eq!(error.fields, ["dhkeys"]);
}

#[test]
fn an_offer_with_only_unknown_ciphers_gets_not_acceptable_naming_crypt_algs() {
    // SIM-02, ESN-09.
    let mut pair = Pair::new(59);
    let (_, mut offer) = offer(&mut pair);
    set_values(&mut offer, "crypt_algs", &["rot13-ctr", "xor-ctr"], true);
    let error = refusal_of(&mut pair, &offer);
    assert_eq!(error.condition, Some(ErrorCondition::NotAcceptable));
    assert_eq!(error.error_type.as_deref(), Some("modify"));
    assert_eq!(error.fields, ["crypt_algs"]);
}

#[test]
fn a_simplified_responder_refuses_an_aes256_only_offer_naming_crypt_algs() {
    // SIM-02's own test: the responder supports aes128-ctr only.
    let bob = Config {
        ciphers: vec![esession_crypto::CipherAlgorithm::Aes128Ctr],
        ..config(BOB)
    };
    let mut pair = Pair::with_configs(config(ALICE), bob, 60);
    let (_, mut offer) = offer(&mut pair);
    set_values(&mut offer, "crypt_algs", &["aes256-ctr"], true);
    let error = refusal_of(&mut pair, &offer);
    assert_eq!(error.condition, Some(ErrorCondition::NotAcceptable));
    assert_eq!(error.fields, ["crypt_algs"]);
}

#[test]
fn not_acceptable_names_every_unusable_field() {
    // ESN-09: all such fields, not just the first.
    let mut pair = Pair::new(61);
    let (_, mut offer) = offer(&mut pair);
    set_values(&mut offer, "crypt_algs", &["rot13-ctr"], true);
    set_values(&mut offer, "ver", &["9.9"], true);
    set_values(&mut offer, "disclosure", &["enabled"], true);
    let error = refusal_of(&mut pair, &offer);
    assert_eq!(error.condition, Some(ErrorCondition::NotAcceptable));
    let mut fields = error.fields.clone();
    fields.sort();
    assert_eq!(fields, ["crypt_algs", "disclosure", "ver"]);
}

#[test]
fn an_unknown_form_type_gets_service_unavailable() {
    // AMB-52, SSN-08.
    let mut pair = Pair::new(62);
    let (_, mut offer) = offer(&mut pair);
    set_values(&mut offer, "FORM_TYPE", &["urn:example:not-ssn"], false);
    let error = refusal_of(&mut pair, &offer);
    assert_eq!(error.condition, Some(ErrorCondition::ServiceUnavailable));
    assert_eq!(error.error_type.as_deref(), Some("cancel"));
    assert!(error.fields.is_empty());
}

#[test]
fn unknown_required_fields_get_feature_not_implemented_naming_all_of_them() {
    // SSN-08, AMB-52: precedence over not-acceptable (crypt_algs is unusable too).
    let mut pair = Pair::new(63);
    let (_, mut offer) = offer(&mut pair);
    add_field(
        &mut offer,
        new_field("x-teleport", Some("boolean"), &["1"], true),
    );
    add_field(
        &mut offer,
        new_field("x-quantum", Some("text-single"), &["yes"], true),
    );
    set_values(&mut offer, "crypt_algs", &["rot13-ctr"], true);
    let error = refusal_of(&mut pair, &offer);
    assert_eq!(error.condition, Some(ErrorCondition::FeatureNotImplemented));
    assert_eq!(error.fields, ["x-teleport", "x-quantum"]);
}

#[test]
fn an_unknown_optional_field_is_not_refused_at_once() {
    // SSN-08 refuses unknown *required* fields only, and Bob's answer leaves the
    // unknown field out (ESN-14). Inserted in flight, it still fails mac_A on
    // message 3 (ESN-28/32), since Alice did not send it.
    let mut pair = Pair::new(64);
    pair.negotiate_with(|n, stanza| {
        if n == 0 {
            add_field(
                stanza,
                new_field("x-optional", Some("boolean"), &["1"], false),
            );
        }
    });
    let answer = &pair.log[1].1;
    assert!(stanza_error(answer).is_none());
    assert!(
        !field_vars(answer).contains(&"x-optional".to_owned()),
        "ESN-14"
    );
    let errors = pair.error_stanzas();
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].0, errors[0].1), (3, Side::Bob));
    assert_eq!(
        stanza_error(errors[0].2).unwrap().condition,
        Some(ErrorCondition::FeatureNotImplemented)
    );
}

#[test]
fn an_offer_of_only_groups_3_and_4_gets_not_acceptable_on_modp() {
    // AMB-22: RFC 2409 groups 3 and 4 are EC2N, never MODP.
    let mut pair = Pair::new(65);
    let (_, mut offer) = offer(&mut pair);
    set_values(&mut offer, "modp", &["3", "4"], true);
    let error = refusal_of(&mut pair, &offer);
    assert_eq!(error.condition, Some(ErrorCondition::NotAcceptable));
    assert_eq!(error.fields, ["modp"]);
}

#[test]
fn an_offer_of_a_group_the_responder_lacks_gets_not_acceptable_on_modp() {
    // ESN-09: Bob allows only group 14.
    let bob = Config {
        groups: vec![esession_crypto::ModpGroup::Group14],
        ..config(BOB)
    };
    let mut pair = Pair::with_configs(config(ALICE), bob, 66);
    let (_, offer) = offer(&mut pair);
    let error = refusal_of(&mut pair, &offer);
    assert_eq!(error.condition, Some(ErrorCondition::NotAcceptable));
    assert_eq!(error.fields, ["modp"]);
}

fn manual_bob() -> Config {
    Config {
        auto_accept: false,
        ..config(BOB)
    }
}

#[test]
fn without_auto_accept_an_offer_waits_for_the_user_then_accept_establishes() {
    // SSN-09, ESN-07: nothing is sent until the user decides.
    let mut pair = Pair::with_configs(config(ALICE), manual_bob(), 67);
    let (id, out) = pair.alice.manager.start_session(BOB).unwrap();
    pair.route(Side::Alice, out);
    assert_eq!(pair.log.len(), 1, "only the offer: {:?}", pair.log);
    assert!(pair.bob.sent.is_empty());
    let [Event::OfferReceived { session }] = &pair.bob.events[..] else {
        panic!("{:?}", pair.bob.events)
    };
    let session = session.clone();
    assert_eq!(session, Pair::id(Side::Bob, &id.thread));
    assert!(!pair.bob.manager.is_established(&session));
    // A stray copy of the offer while waiting changes nothing.
    let offer = pair.log[0].1.clone();
    pair.deliver(Side::Bob, &offer);
    assert!(pair.bob.sent.is_empty());
    let out = pair.bob.manager.accept_offer(&session).unwrap();
    pair.route(Side::Bob, out);
    assert_eq!(pair.alice.established().len(), 1);
    assert_eq!(pair.bob.established().len(), 1);
    assert_eq!(pair.info(Side::Alice).sas, pair.info(Side::Bob).sas);
    // The offer was consumed.
    assert_eq!(
        pair.bob.manager.accept_offer(&session).unwrap_err(),
        Error::UnknownSession
    );
}

#[test]
fn rejecting_a_held_offer_sends_accept_0_and_alice_sees_declined() {
    // SSN-07: submit, FORM_TYPE, accept=0 and nothing else.
    let mut pair = Pair::with_configs(config(ALICE), manual_bob(), 68);
    let (id, out) = pair.alice.manager.start_session(BOB).unwrap();
    pair.route(Side::Alice, out);
    let session = Pair::id(Side::Bob, &id.thread);
    let out = pair.bob.manager.reject_offer(&session).unwrap();
    let decline = out.stanzas[0].clone();
    assert_eq!(decline.attr("to"), Some(ALICE));
    assert_ne!(decline.attr("type"), Some("error"));
    assert_eq!(thread_of(&decline).as_deref(), Some(id.thread.as_str()));
    assert!(!contains_element(&decline, "body"), "SSN-05");
    assert_eq!(form(&decline).unwrap().attr("type"), Some("submit"));
    assert_eq!(field_vars(&decline), ["FORM_TYPE", "accept"]);
    assert_eq!(
        field_values(&field(&decline, "FORM_TYPE").unwrap()),
        [ns::SSN]
    );
    assert_eq!(field_values(&field(&decline, "accept").unwrap()), ["0"]);
    pair.route(Side::Bob, out);
    assert_eq!(pair.alice.failures(), [&Error::Declined]);
    assert!(pair.alice.established().is_empty() && pair.bob.established().is_empty());
    assert_eq!(
        pair.bob.manager.reject_offer(&session).unwrap_err(),
        Error::UnknownSession
    );
    assert_eq!(pair.log.len(), 2, "Alice does not answer a decline");
}

#[test]
fn accepting_or_rejecting_an_unknown_offer_is_an_error() {
    let mut pair = Pair::new(69);
    let id = Pair::id(Side::Bob, "nothing-here");
    assert_eq!(
        pair.bob.manager.accept_offer(&id).unwrap_err(),
        Error::UnknownSession
    );
    assert_eq!(
        pair.bob.manager.reject_offer(&id).unwrap_err(),
        Error::UnknownSession
    );
}

#[test]
fn a_clear_terminate_on_an_established_thread_is_reported_and_not_obeyed() {
    // AMB-54: unauthenticated, so the default profile keeps the session.
    let mut pair = Pair::new(70);
    let thread = pair.handshake();
    pair.bob.clear();
    let terminate = stanza(
        ALICE,
        BOB,
        None,
        &thread,
        "<feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' \
         type='submit'><field var='FORM_TYPE'><value>urn:xmpp:ssn</value></field>\
         <field var='terminate'><value>1</value></field></x></feature>",
    );
    pair.deliver(Side::Bob, &terminate);
    assert!(
        matches!(
            &pair.bob.events[..],
            [Event::UnauthenticatedTerminateRequest { session }] if *session == Pair::id(Side::Bob, &thread)
        ),
        "{:?}",
        pair.bob.events
    );
    assert!(
        pair.bob.sent.is_empty(),
        "no acknowledgement of a clear request"
    );
    assert!(
        pair.bob
            .manager
            .is_established(&Pair::id(Side::Bob, &thread))
    );
    pair.chat(Side::Alice, &thread, "still here");
    pair.chat(Side::Bob, &thread, "me too");
    assert_eq!(pair.bob.bodies(), ["still here"]);
    assert_eq!(pair.alice.bodies(), ["me too"]);
}

#[test]
fn a_clear_body_on_an_established_thread_is_dropped() {
    // ESN-44: never shown as secure; the session stays usable.
    let mut pair = Pair::new(71);
    let thread = pair.handshake();
    pair.bob.clear();
    let clear = stanza(ALICE, BOB, Some("chat"), &thread, "<body>plain text</body>");
    pair.deliver(Side::Bob, &clear);
    assert!(
        matches!(&pair.bob.events[..], [Event::ClearStanzaDropped { .. }]),
        "{:?}",
        pair.bob.events
    );
    assert!(pair.bob.messages().is_empty());
    assert!(pair.bob.sent.is_empty());
    pair.chat(Side::Alice, &thread, "encrypted");
    assert_eq!(pair.bob.bodies(), ["encrypted"]);
}

#[test]
fn a_stanza_error_on_an_established_thread_leaves_the_session_usable() {
    // An unauthenticated error (e.g. a bounce) must not end a session.
    let mut pair = Pair::new(72);
    let thread = pair.handshake();
    pair.alice.clear();
    let bounce = stanza(
        BOB,
        ALICE,
        Some("error"),
        &thread,
        "<error type='cancel'><service-unavailable \
         xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
    );
    pair.deliver(Side::Alice, &bounce);
    assert!(pair.alice.events.is_empty(), "{:?}", pair.alice.events);
    pair.chat(Side::Bob, &thread, "after the bounce");
    assert_eq!(pair.alice.bodies(), ["after the bounce"]);
}

#[test]
fn stanzas_without_thread_or_from_are_ignored() {
    // THR-04/SSN: nothing to bind them to; the core never guesses.
    let mut pair = Pair::new(73);
    let (_, offer) = offer(&mut pair);
    let mut no_thread = offer.clone();
    no_thread.remove_child("thread", ns::JABBER_CLIENT).unwrap();
    assert!(pair.bob.receive(&no_thread).is_empty());
    let text = xml::serialize(&offer, "").unwrap();
    let no_from = xml::parse_document(&text.replace(&format!(" from=\"{ALICE}\""), "")).unwrap();
    assert_eq!(no_from.attr("from"), None);
    let out = pair.bob.manager.handle_stanza(&no_from);
    assert!(out.stanzas.is_empty() && out.events.is_empty());
    assert!(pair.bob.events.is_empty());
    // The genuine offer still works.
    assert_eq!(pair.bob.receive(&offer).len(), 1);
}

#[test]
fn an_encrypted_error_message_keeps_the_session_in_step() {
    // ENC-02/03: <error/> stays in clear, the rest is encrypted; the receiver
    // verifies the <c/> as usual and delivers the message, counters in step.
    let mut pair = Pair::new(74);
    let thread = pair.handshake();
    let plain = xml::parse_document(
        "<message xmlns='jabber:client' type='error'><body>original</body>\
         <error type='cancel'><service-unavailable \
         xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
    )
    .unwrap();
    let out = pair
        .alice
        .manager
        .send_message(&Pair::id(Side::Alice, &thread), &plain)
        .unwrap();
    let sent = &out.stanzas[0];
    assert_eq!(sent.attr("type"), Some("error"));
    assert!(
        sent.has_child("error", ns::JABBER_CLIENT),
        "ENC-02: <error/> in clear"
    );
    assert!(is_encrypted(sent));
    assert!(
        !contains_element(sent, "body"),
        "ENC-02: the body is encrypted"
    );
    let clear_error = stanza_error(sent).unwrap();
    assert_eq!(
        clear_error.condition,
        Some(ErrorCondition::ServiceUnavailable)
    );
    pair.route(Side::Alice, out);
    // Delivered as an ordinary message with its body; its clear <error/> is
    // handed over apart, marked unauthenticated (issue 11).
    let [delivered] = &pair.bob.messages()[..] else {
        panic!("{:?}", pair.bob.events)
    };
    assert_eq!(delivered.attr("type"), Some("error"));
    assert!(!delivered.has_child("error", ns::JABBER_CLIENT));
    let unauthenticated: Vec<&Element> = pair
        .bob
        .events
        .iter()
        .filter_map(|e| match e {
            esession::Event::MessageReceived {
                unauthenticated_error: Some(error),
                ..
            } => Some(error),
            _ => None,
        })
        .collect();
    let [error] = unauthenticated[..] else {
        panic!("{:?}", pair.bob.events)
    };
    assert_eq!(
        ErrorCondition::from_error_element(error),
        Some(ErrorCondition::ServiceUnavailable)
    );
    assert_eq!(pair.bob.bodies(), ["original"]);
    assert!(!is_encrypted(delivered));
    // The counters stay in step both ways.
    pair.chat(Side::Alice, &thread, "next");
    pair.chat(Side::Bob, &thread, "reply");
    assert!(pair.bob.terminations().is_empty(), "{:?}", pair.bob.events);
    assert!(
        pair.alice.terminations().is_empty(),
        "{:?}",
        pair.alice.events
    );
    assert_eq!(pair.bob.bodies(), ["original", "next"]);
    assert_eq!(pair.alice.bodies(), ["reply"]);
    assert!(
        !pair
            .bob
            .events
            .iter()
            .any(|e| matches!(e, Event::DeliveryError { .. }))
    );
}

/// Alice's offer with `disclosure` offering only `values`, handed to a Bob
/// with `accept_disclosure`; Bob's reply is in `pair.bob.sent`.
fn bob_answers_disclosure(accept_disclosure: bool, values: &[&str], seed: u64) -> Pair {
    let bob = Config {
        accept_disclosure,
        ..config(BOB)
    };
    let mut pair = Pair::with_configs(config(ALICE), bob, seed);
    let (_, mut offer) = offer(&mut pair);
    set_values(&mut offer, "disclosure", values, true);
    pair.bob.receive(&offer);
    pair
}

#[test]
fn a_responder_accepting_disclosure_answers_enabled_to_an_enabled_only_offer() {
    // ESN-53 with `accept_disclosure`: Bob agrees to `enabled` when nothing
    // else is offered. Our Alice only ever offers `never`, so the offer is
    // hand-edited; its mac_A would fail on message 3, which is as far as a
    // one-sided test goes (the alert itself comes on establishment).
    let pair = bob_answers_disclosure(true, &["enabled"], 75);
    let [answer] = &pair.bob.sent[..] else {
        panic!("{:?}", pair.bob.sent)
    };
    assert!(stanza_error(answer).is_none(), "{answer:?}");
    assert_eq!(form(answer).unwrap().attr("type"), Some("submit"));
    assert_eq!(
        field_values(&field(answer, "disclosure").unwrap()),
        ["enabled"]
    );
    assert!(pair.bob.failures().is_empty(), "{:?}", pair.bob.events);
}

#[test]
fn a_responder_accepting_disclosure_still_prefers_never() {
    // ESN-54: `never` whenever it is offered, in any position.
    let pair = bob_answers_disclosure(true, &["enabled", "never"], 76);
    let [answer] = &pair.bob.sent[..] else {
        panic!("{:?}", pair.bob.sent)
    };
    assert!(stanza_error(answer).is_none(), "{answer:?}");
    assert_eq!(
        field_values(&field(answer, "disclosure").unwrap()),
        ["never"]
    );
}

#[test]
fn without_accept_disclosure_an_enabled_only_offer_is_refused_naming_disclosure() {
    // ESN-53/54, ESN-09: the default refuses with not-acceptable on disclosure.
    let mut pair = Pair::new(77);
    let (_, mut offer) = offer(&mut pair);
    set_values(&mut offer, "disclosure", &["enabled"], true);
    let error = refusal_of(&mut pair, &offer);
    assert_eq!(error.condition, Some(ErrorCondition::NotAcceptable));
    assert_eq!(error.error_type.as_deref(), Some("modify"));
    assert_eq!(error.fields, ["disclosure"]);
}
