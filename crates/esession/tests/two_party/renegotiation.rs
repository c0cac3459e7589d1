//! Renegotiation and `continue` inside an established ESession (SSN-13,
//! SSN-14, AMB-39): keys and counters belong to one negotiation and one full
//! JID, so a renegotiation is answered `renegotiate=0` and a move to another
//! resource ends the session and negotiates afresh with the new resource.

use esession::{Config, Error, Event, SessionId, TerminationReason};
use esession_crypto::CipherAlgorithm;
use esession_wire::minidom::Element;
use esession_wire::{ns, xml};

use crate::harness::{
    ALICE, BOB, Pair, Party, Side, config, field, field_values, is_encrypted, route_by_address,
    thread_of,
};

/// Bob's other resource, where he moves the session.
const BOB_PDA: &str = "bob@example.com/pda";

/// A message whose only content is an SSN form (`x` attributes and fields).
fn ssn_message(to: &str, form: &str) -> Element {
    xml::parse_document(&format!(
        "<message xmlns='jabber:client' to='{to}'><feature \
         xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' {form}</x>\
         </feature></message>"
    ))
    .unwrap()
}

/// XEP-0155's renegotiation request, asking for another cipher and logging.
fn renegotiation_request(to: &str) -> Element {
    ssn_message(
        to,
        "type='form'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:ssn</value></field>\
         <field var='renegotiate' type='boolean'><value>1</value><required/></field>\
         <field var='crypt_algs' type='list-single'><option><value>aes256-ctr</value></option>\
         </field><field var='logging' type='list-single'><value>mustnot</value>\
         <option><value>may</value></option><required/></field>",
    )
}

/// XEP-0155's request to continue the session on `resource`.
fn continue_request(to: &str, resource: &str) -> Element {
    ssn_message(
        to,
        &format!(
            "type='submit'><field var='FORM_TYPE'><value>urn:xmpp:ssn</value></field>\
             <field var='continue'><value>{resource}</value></field>"
        ),
    )
}

/// Bob sends `message` inside the session, encrypted like any content.
fn bob_sends(pair: &mut Pair, thread: &str, message: &Element) {
    let id = Pair::id(Side::Bob, thread);
    let out = pair.bob.manager.send_message(&id, message).unwrap();
    pair.route(Side::Bob, out);
}

fn values(stanza: &Element, var: &str) -> Vec<String> {
    field(stanza, var)
        .map(|f| field_values(&f))
        .unwrap_or_default()
}

#[test]
fn a_renegotiation_is_answered_renegotiate_0_and_the_agreed_parameters_stay() {
    // SSN-14 [8], AMB-39: refused; the answer names the values in force.
    let mut pair = Pair::new(300);
    let thread = pair.handshake();
    let before = pair.session_info(Side::Alice, &thread).unwrap();
    pair.alice.clear();
    pair.bob.clear();
    bob_sends(&mut pair, &thread, &renegotiation_request(ALICE));

    assert!(
        matches!(
            &pair.alice.events[..],
            [Event::RenegotiationRefused { session }] if *session == Pair::id(Side::Alice, &thread)
        ),
        "{:?}",
        pair.alice.events
    );
    assert!(pair.alice.messages().is_empty(), "a request is not content");
    let [answer] = &pair.alice.sent[..] else {
        panic!("{:?}", pair.alice.sent)
    };
    assert!(is_encrypted(answer), "sent inside the session (ESN-44)");
    assert_eq!(thread_of(answer).as_deref(), Some(thread.as_str()));
    assert!(!answer.has_child("feature", ns::FEATURE_NEG));

    // Bob decrypts the answer: submit, renegotiate=0, the values in force.
    let messages = pair.bob.messages();
    let [reply] = &messages[..] else {
        panic!("{:?}", pair.bob.events)
    };
    let form = reply
        .get_child("feature", ns::FEATURE_NEG)
        .and_then(|f| f.get_child("x", ns::DATA_FORMS))
        .unwrap();
    assert_eq!(form.attr("type"), Some("submit"));
    assert_eq!(values(reply, "FORM_TYPE"), ["urn:xmpp:ssn"]);
    assert_eq!(values(reply, "renegotiate"), ["0"]);
    assert_eq!(values(reply, "crypt_algs"), [before.cipher.name()]);
    assert_eq!(values(reply, "logging"), [before.logging.value()]);
    assert!(field(reply, "accept").is_none());

    // Nothing changed: same parameters, and both directions still work.
    assert_eq!(pair.session_info(Side::Alice, &thread), Some(before));
    pair.chat(Side::Alice, &thread, "still aes128");
    pair.chat(Side::Bob, &thread, "and back");
    assert_eq!(
        pair.bob.bodies().last().map(String::as_str),
        Some("still aes128")
    );
    assert_eq!(pair.alice.bodies(), ["and back"]);
}

#[test]
fn after_a_refused_renegotiation_new_parameters_come_from_a_fresh_session() {
    // AMB-39: crypto parameters change only with a new negotiation (new
    // thread, new keys); the old session is untouched by it.
    let bob = Config {
        ciphers: vec![CipherAlgorithm::Aes256Ctr, CipherAlgorithm::Aes128Ctr],
        ..config(BOB)
    };
    let mut pair = Pair::with_configs(config(ALICE), bob, 301);
    let old = pair.handshake();
    assert_eq!(pair.info(Side::Alice).cipher, CipherAlgorithm::Aes128Ctr);
    bob_sends(&mut pair, &old, &renegotiation_request(ALICE));
    assert!(
        pair.alice
            .events
            .iter()
            .any(|e| matches!(e, Event::RenegotiationRefused { .. }))
    );

    let (new, out) = pair.bob.manager.start_session(ALICE).unwrap();
    assert_ne!(new.thread, old);
    pair.route(Side::Bob, out);
    let alice_new = SessionId {
        peer: BOB.parse().unwrap(),
        thread: new.thread.clone(),
    };
    let info = pair
        .alice
        .manager
        .session_info(&alice_new)
        .cloned()
        .unwrap();
    assert_eq!(info.cipher, CipherAlgorithm::Aes256Ctr);
    assert_eq!(
        pair.session_info(Side::Alice, &old).map(|i| i.cipher),
        Some(CipherAlgorithm::Aes128Ctr)
    );
    pair.chat(Side::Bob, &new.thread, "on the new session");
    pair.chat(Side::Bob, &old, "on the old one");
    assert_eq!(
        pair.alice.bodies(),
        ["on the new session", "on the old one"]
    );
}

#[test]
fn clear_renegotiation_and_continue_forms_are_dropped_unanswered() {
    // ESN-44: only authenticated forms are acted on.
    let mut pair = Pair::new(302);
    let thread = pair.handshake();
    for mut clear in [renegotiation_request(ALICE), continue_request(ALICE, "pda")] {
        crate::harness::set_attr(&mut clear, "from", BOB);
        let mut t = Element::bare("thread", ns::JABBER_CLIENT);
        t.append_text_node(thread.as_str());
        clear.append_child(t);
        pair.alice.clear();
        pair.deliver(Side::Alice, &clear);
        assert!(
            matches!(&pair.alice.events[..], [Event::ClearStanzaDropped { .. }]),
            "{:?}",
            pair.alice.events
        );
        assert!(pair.alice.sent.is_empty());
    }
    assert!(pair.session_info(Side::Alice, &thread).is_some());
}

#[test]
fn continue_terminates_the_session_and_negotiates_afresh_with_the_new_resource() {
    // SSN-13 under AMB-39: keys and counters cannot move; the old session is
    // terminated (ESN-45/46) and a new one negotiated with /pda on a new thread.
    let mut alice = Party::new(ALICE, config(ALICE), 303);
    let mut laptop = Party::new(BOB, config(BOB), 304);
    let mut pda = Party::new(BOB_PDA, config(BOB_PDA), 305);
    let (old, out) = alice.manager.start_session(BOB).unwrap();
    route_by_address(&mut [&mut alice, &mut laptop, &mut pda], ALICE, out);
    assert!(alice.manager.is_established(&old));
    alice.clear();

    let laptop_id = SessionId {
        peer: ALICE.parse().unwrap(),
        thread: old.thread.clone(),
    };
    let out = laptop
        .manager
        .send_message(&laptop_id, &continue_request(ALICE, "pda"))
        .unwrap();
    let carried = route_by_address(&mut [&mut alice, &mut laptop, &mut pda], BOB, out);

    // Alice: the encrypted terminate to /laptop, then an offer to /pda on a new thread.
    let from_alice: Vec<&Element> = carried
        .iter()
        .filter(|(from, _)| from == ALICE)
        .map(|(_, s)| s)
        .collect();
    assert!(from_alice.len() >= 2, "{from_alice:?}");
    assert_eq!(from_alice[0].attr("to"), Some(BOB));
    assert!(is_encrypted(from_alice[0]));
    assert_eq!(thread_of(from_alice[0]), Some(old.thread.clone()));
    assert_eq!(from_alice[1].attr("to"), Some(BOB_PDA));
    let new_thread = thread_of(from_alice[1]).unwrap();
    assert_ne!(new_thread, old.thread, "never the old thread (SSN-16)");
    assert!(from_alice[1].has_child("feature", ns::FEATURE_NEG));

    let new = SessionId {
        peer: BOB_PDA.parse().unwrap(),
        thread: new_thread.clone(),
    };
    let moved = alice.events.iter().find_map(|e| match e {
        Event::SessionMoved { old, new } => Some((old.clone(), new.clone())),
        _ => None,
    });
    assert_eq!(moved, Some((old.clone(), new.clone())));
    assert!(alice.messages().is_empty(), "the request is not content");
    // The laptop acknowledged: the old session ended on both sides.
    assert_eq!(alice.terminations(), [&TerminationReason::LocalRequest]);
    assert_eq!(laptop.terminations(), [&TerminationReason::PeerRequest]);
    assert!(!alice.manager.is_established(&old));
    assert_eq!(
        alice.manager.send_text(&old, "to the laptop").unwrap_err(),
        Error::UnknownSession
    );
    // The fresh session with /pda is established, with its own SAS.
    assert!(alice.manager.is_established(&new));
    let pda_id = SessionId {
        peer: ALICE.parse().unwrap(),
        thread: new_thread,
    };
    assert!(pda.manager.is_established(&pda_id));
    assert_eq!(
        alice.manager.session_info(&new).map(|i| i.sas.clone()),
        pda.manager.session_info(&pda_id).map(|i| i.sas.clone())
    );
    let out = alice.manager.send_text(&new, "hello pda").unwrap();
    route_by_address(&mut [&mut alice, &mut laptop, &mut pda], ALICE, out);
    assert_eq!(pda.bodies(), ["hello pda"]);
    assert!(laptop.bodies().is_empty());
}

#[test]
fn continue_to_the_same_resource_changes_nothing() {
    let mut pair = Pair::new(306);
    let thread = pair.handshake();
    pair.alice.clear();
    bob_sends(&mut pair, &thread, &continue_request(ALICE, "laptop"));
    assert!(pair.alice.events.is_empty(), "{:?}", pair.alice.events);
    assert!(pair.alice.sent.is_empty());
    pair.chat(Side::Bob, &thread, "still here");
    assert_eq!(pair.alice.bodies(), ["still here"]);
}
