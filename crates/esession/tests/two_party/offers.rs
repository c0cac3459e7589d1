//! Who gets an answer and what an offer may agree: offers from requesters not
//! subscribed to our presence (SSN-09, ESN-07), plain stanza sessions
//! (ESN-11), `disclosure` other than `never` (ESN-53), peer labels (SSN-18),
//! and the wrappers negotiation messages arrive in (AMB-04).

use esession::ssn::{Disclosure, ErrorCondition};
use esession::{Config, Error, Event, SecurityAlert, SessionId};
use esession_wire::minidom::{Element, Node};
use esession_wire::ns;

use crate::harness::{
    ALICE, BOB, Pair, Side, config, contains_element, field, field_values, field_vars, form,
    set_attr, set_values, stanza_error, thread_of, with_field,
};

/// Alice's offer, not yet delivered.
fn offer(pair: &mut Pair) -> (SessionId, Element) {
    let (id, out) = pair.alice.manager.start_session(BOB).unwrap();
    let offer = pair.alice.absorb(out).remove(0);
    (id, offer)
}

/// Bob answering only requesters subscribed to his presence (SSN-09).
fn guarded_bob() -> Config {
    Config {
        answer_only_subscribers: true,
        ..config(BOB)
    }
}

/// The `OfferReceived` events of a party.
fn offers_received(events: &[Event]) -> Vec<SessionId> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::OfferReceived { session } => Some(session.clone()),
            _ => None,
        })
        .collect()
}

// ---- SSN-09, ESN-07: no automatic answer to a stranger ------------------------

#[test]
fn a_strangers_offer_gets_nothing_until_the_user_accepts_then_it_establishes() {
    // SSN-09's test: stranger's offer -> nothing sent until the user acts.
    // auto_accept is on: only the missing subscription holds the offer.
    let mut pair = Pair::with_configs(config(ALICE), guarded_bob(), 501);
    assert!(pair.bob.manager.config().auto_accept);
    let (id, out) = pair.alice.manager.start_session(BOB).unwrap();
    pair.route(Side::Alice, out);
    assert_eq!(pair.log.len(), 1, "only the offer: {:?}", pair.log);
    assert!(pair.bob.sent.is_empty());
    let session = Pair::id(Side::Bob, &id.thread);
    assert_eq!(
        offers_received(&pair.bob.events),
        std::slice::from_ref(&session)
    );
    assert!(pair.bob.established().is_empty());
    // A stray copy of the offer while waiting changes nothing.
    let copy = pair.log[0].1.clone();
    pair.deliver(Side::Bob, &copy);
    assert!(pair.bob.sent.is_empty());
    // The user accepts: the answer goes out and the session establishes.
    let out = pair.bob.manager.accept_offer(&session).unwrap();
    pair.route(Side::Bob, out);
    assert_eq!(pair.alice.established().len(), 1);
    assert_eq!(pair.bob.established().len(), 1);
    assert_eq!(pair.info(Side::Alice).sas, pair.info(Side::Bob).sas);
    pair.chat(Side::Alice, &id.thread, "hello");
    assert_eq!(pair.bob.bodies(), ["hello"]);
}

#[test]
fn a_subscribers_offer_is_answered_at_once_and_unsubscribing_holds_the_next() {
    let mut pair = Pair::with_configs(config(ALICE), guarded_bob(), 502);
    // The roster says Alice (any resource: the bare JID counts) is subscribed.
    pair.bob
        .manager
        .set_presence_subscription("alice@example.org", true);
    assert!(pair.bob.manager.is_presence_subscribed(ALICE));
    assert!(
        !pair
            .bob
            .manager
            .is_presence_subscribed("mallory@example.org")
    );
    pair.handshake();
    assert!(offers_received(&pair.bob.events).is_empty());
    // The subscription is cancelled: the next offer waits for the user again.
    pair.bob.manager.set_presence_subscription(ALICE, false);
    assert!(!pair.bob.manager.is_presence_subscribed("alice@example.org"));
    // A whole roster fed again starts from nothing.
    pair.bob.manager.set_presence_subscription(ALICE, true);
    pair.bob.manager.clear_presence_subscriptions();
    assert!(!pair.bob.manager.is_presence_subscribed(ALICE));
    pair.bob.clear();
    let (id, out) = pair.alice.manager.start_session(BOB).unwrap();
    pair.route(Side::Alice, out);
    assert!(pair.bob.sent.is_empty());
    assert_eq!(
        offers_received(&pair.bob.events),
        [Pair::id(Side::Bob, &id.thread)]
    );
}

#[test]
fn the_default_policy_answers_strangers_as_before() {
    // Off by default: the core knows no roster unless the application feeds it.
    let pair_config = config(BOB);
    assert!(!pair_config.answer_only_subscribers);
    let mut pair = Pair::new(503);
    assert!(!pair.bob.manager.is_presence_subscribed(ALICE));
    pair.handshake();
    assert!(offers_received(&pair.bob.events).is_empty());
}

#[test]
fn a_strangers_unacceptable_offer_gets_no_error_but_a_subscribers_does() {
    // SSN-09: "no automatic answer or error". An offer Bob must refuse
    // (disclosure=enabled only) is dropped in silence; the user still learns
    // of it. From a subscriber the same offer gets the not-acceptable error.
    let mut pair = Pair::with_configs(config(ALICE), guarded_bob(), 504);
    let (_, mut bad) = offer(&mut pair);
    set_values(&mut bad, "disclosure", &["enabled"], true);
    pair.deliver(Side::Bob, &bad);
    assert!(pair.bob.sent.is_empty(), "{:?}", pair.bob.sent);
    assert!(pair.error_stanzas().is_empty());
    assert_eq!(
        pair.bob.failures(),
        [&Error::Refused {
            condition: ErrorCondition::NotAcceptable,
            fields: vec!["disclosure".to_owned()]
        }]
    );
    assert!(offers_received(&pair.bob.events).is_empty());

    // Garbage in the wrapper (two forms) and an unknown FORM_TYPE: silence too.
    let mut two_forms = bad.clone();
    let x = form(&bad).unwrap().clone();
    two_forms
        .get_child_mut("feature", ns::FEATURE_NEG)
        .unwrap()
        .append_child(x);
    pair.deliver(Side::Bob, &two_forms);
    let (_, mut foreign) = offer(&mut pair);
    with_field(&mut foreign, "FORM_TYPE", |f| {
        f.take_nodes();
        let mut value = Element::bare("value", ns::DATA_FORMS);
        value.append_text_node("urn:example:other");
        f.append_child(value);
    });
    pair.deliver(Side::Bob, &foreign);
    assert!(pair.bob.sent.is_empty(), "{:?}", pair.bob.sent);
    assert_eq!(pair.bob.failures().len(), 3);

    // Subscribed: the refusal is sent as usual (SSN-08).
    pair.bob.manager.set_presence_subscription(ALICE, true);
    let (_, mut bad) = offer(&mut pair);
    set_values(&mut bad, "disclosure", &["enabled"], true);
    pair.deliver(Side::Bob, &bad);
    let errors = pair.error_stanzas();
    assert_eq!(errors.len(), 1, "{:?}", pair.log);
    let error = stanza_error(errors[0].2).unwrap();
    assert_eq!(error.condition, Some(ErrorCondition::NotAcceptable));
    assert_eq!(error.fields, ["disclosure"]);
}

#[test]
fn a_strangers_delayed_offer_gets_no_fresh_offer() {
    // SSN-10 would answer a stale offer with a fresh one: to a stranger that
    // would reveal our presence (ESN-07), so nothing is sent.
    let mut pair = Pair::with_configs(config(ALICE), guarded_bob(), 505);
    let (_, mut stale) = offer(&mut pair);
    let delay: Element =
        "<delay xmlns='urn:xmpp:delay' from='example.com' stamp='2026-11-20T10:00:00Z'/>"
            .parse()
            .unwrap();
    stale.append_child(delay);
    pair.bob.receive(&stale);
    assert!(pair.bob.sent.is_empty(), "{:?}", pair.bob.sent);
    assert!(pair.bob.events.is_empty(), "{:?}", pair.bob.events);
    // A subscriber's stale offer still gets the fresh offer.
    pair.bob.manager.set_presence_subscription(ALICE, true);
    pair.bob.receive(&stale);
    assert_eq!(pair.bob.sent.len(), 1);
    assert!(matches!(
        pair.bob.events[..],
        [Event::StaleOfferReplaced { .. }]
    ));
}

#[test]
fn a_strangers_held_offer_can_be_rejected_and_is_then_gone() {
    let mut pair = Pair::with_configs(config(ALICE), guarded_bob(), 506);
    let (id, out) = pair.alice.manager.start_session(BOB).unwrap();
    pair.route(Side::Alice, out);
    let session = Pair::id(Side::Bob, &id.thread);
    // accept/reject with another resource of the same peer is not this offer.
    let other = SessionId {
        peer: "alice@example.org/other".parse().unwrap(),
        thread: id.thread.clone(),
    };
    assert_eq!(
        pair.bob.manager.accept_offer(&other).unwrap_err(),
        Error::UnknownSession
    );
    assert!(pair.bob.sent.is_empty());
    let out = pair.bob.manager.reject_offer(&session).unwrap();
    pair.route(Side::Bob, out);
    assert_eq!(pair.alice.failures(), [&Error::Declined]);
    assert_eq!(
        pair.bob.manager.accept_offer(&session).unwrap_err(),
        Error::UnknownSession
    );
}

#[test]
fn accepting_an_established_sessions_id_as_an_offer_changes_nothing() {
    // accept_offer/reject_offer only take held offers: an established session
    // under the same id stays (it used to be removed by the lookup).
    let mut pair = Pair::new(507);
    let thread = pair.handshake();
    let id = Pair::id(Side::Bob, &thread);
    assert_eq!(
        pair.bob.manager.accept_offer(&id).unwrap_err(),
        Error::UnknownSession
    );
    assert_eq!(
        pair.bob.manager.reject_offer(&id).unwrap_err(),
        Error::UnknownSession
    );
    assert!(pair.bob.manager.is_established(&id));
    pair.chat(Side::Alice, &thread, "still here");
    assert_eq!(pair.bob.bodies(), ["still here"]);
}

// ---- ESN-11: plain stanza sessions ---------------------------------------------

/// Bob's answer to Alice's offer edited to offer only `security` values.
fn plain_answer(bob: Config, security: &[&str], seed: u64) -> Pair {
    let mut pair = Pair::with_configs(config(ALICE), bob, seed);
    let (_, mut offer) = offer(&mut pair);
    set_values(&mut offer, "security", security, true);
    pair.bob.receive(&offer);
    pair
}

/// Checks `answer` accepts a plain session with `security` (ESN-11).
fn assert_plain_accept(answer: &Element, security: &str) {
    assert!(stanza_error(answer).is_none(), "{answer:?}");
    assert_eq!(answer.attr("to"), Some(ALICE));
    assert!(!contains_element(answer, "body"), "SSN-05");
    assert_eq!(form(answer).unwrap().attr("type"), Some("submit"));
    assert_eq!(
        field_vars(answer),
        ["FORM_TYPE", "accept", "logging", "disclosure", "security"]
    );
    assert_eq!(field_values(&field(answer, "accept").unwrap()), ["1"]);
    assert_eq!(
        field_values(&field(answer, "security").unwrap()),
        [security]
    );
    assert_eq!(field_values(&field(answer, "logging").unwrap()), ["may"]);
    assert_eq!(
        field_values(&field(answer, "disclosure").unwrap()),
        ["never"]
    );
}

#[test]
fn an_offer_of_c2s_or_none_gets_a_plain_session_with_that_security_when_configured() {
    // ESN-11: no ESession, chat is fine, and A offered none/c2s: accept a
    // plain stanza session with that `security` (Config::accept_plain_sessions).
    let bob = || Config {
        accept_plain_sessions: true,
        ..config(BOB)
    };
    for (security, seed, expected) in [
        (&["c2s"][..], 511, "c2s"),
        (&["none"][..], 512, "none"),
        (&["c2s", "none"][..], 513, "c2s"),
        (&["none", "c2s"][..], 514, "none"),
    ] {
        let pair = plain_answer(bob(), security, seed);
        let [answer] = &pair.bob.sent[..] else {
            panic!("{security:?}: {:?}", pair.bob.sent)
        };
        assert_plain_accept(answer, expected);
        assert!(
            matches!(
                &pair.bob.events[..],
                [Event::PlainSessionAccepted { session }] if session.peer.as_str() == ALICE
                    && Some(&session.thread) == thread_of(answer).as_ref()
            ),
            "{:?}",
            pair.bob.events
        );
        assert!(pair.bob.established().is_empty(), "no ESession");
    }
}

#[test]
fn an_offer_with_e2e_never_becomes_a_plain_session() {
    // With e2e offered Bob negotiates the ESession, even if plain is allowed.
    let bob = Config {
        accept_plain_sessions: true,
        ..config(BOB)
    };
    let mut pair = Pair::with_configs(config(ALICE), bob, 515);
    pair.handshake();
    assert!(
        !pair
            .bob
            .events
            .iter()
            .any(|e| matches!(e, Event::PlainSessionAccepted { .. }))
    );
}

#[test]
fn an_offer_of_c2s_only_is_refused_by_default_naming_security() {
    let pair = plain_answer(config(BOB), &["c2s"], 516);
    let [refusal] = &pair.bob.sent[..] else {
        panic!("{:?}", pair.bob.sent)
    };
    let error = stanza_error(refusal).unwrap();
    assert_eq!(error.condition, Some(ErrorCondition::NotAcceptable));
    assert_eq!(error.fields, ["security"]);
    assert!(
        !pair
            .bob
            .events
            .iter()
            .any(|e| matches!(e, Event::PlainSessionAccepted { .. }))
    );
}

#[test]
fn a_plain_offer_waits_for_the_user_when_policy_holds_offers() {
    // SSN-09 applies to plain sessions too: a stranger's (or, without
    // auto_accept, anyone's) plain offer waits; accept sends the plain answer,
    // reject sends accept=0.
    for (bob, seed) in [
        (
            Config {
                accept_plain_sessions: true,
                ..guarded_bob()
            },
            517,
        ),
        (
            Config {
                accept_plain_sessions: true,
                auto_accept: false,
                ..config(BOB)
            },
            518,
        ),
    ] {
        let mut pair = plain_answer(bob.clone(), &["c2s"], seed);
        assert!(pair.bob.sent.is_empty(), "{:?}", pair.bob.sent);
        let [session] = &offers_received(&pair.bob.events)[..] else {
            panic!("{:?}", pair.bob.events)
        };
        let out = pair.bob.manager.accept_offer(session).unwrap();
        let [answer] = &out.stanzas[..] else {
            panic!("{out:?}")
        };
        assert_plain_accept(answer, "c2s");
        assert!(matches!(
            &out.events[..],
            [Event::PlainSessionAccepted { session: s }] if s == session
        ));
        assert_eq!(
            pair.bob.manager.accept_offer(session).unwrap_err(),
            Error::UnknownSession
        );

        let mut pair = plain_answer(bob, &["none"], seed + 10);
        let [session] = &offers_received(&pair.bob.events)[..] else {
            panic!("{:?}", pair.bob.events)
        };
        let out = pair.bob.manager.reject_offer(session).unwrap();
        let [decline] = &out.stanzas[..] else {
            panic!("{out:?}")
        };
        assert_eq!(field_vars(decline), ["FORM_TYPE", "accept"]);
        assert_eq!(field_values(&field(decline, "accept").unwrap()), ["0"]);
        assert!(out.events.is_empty());
    }
}

// ---- ESN-53: disclosure other than never ----------------------------------------

/// Index of the first event matching `pred`.
fn position(events: &[Event], pred: impl Fn(&Event) -> bool) -> usize {
    events
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("{events:?}"))
}

#[test]
fn an_agreed_disclosure_enabled_alerts_both_users_at_once() {
    // ESN-53: an initiator with a disclosure mechanism offers only `enabled`
    // (Config::offer_disclosure); a responder with accept_disclosure agrees.
    // Both are told at establishment, before the Established event.
    let alice = Config {
        offer_disclosure: vec![Disclosure::Enabled],
        ..config(ALICE)
    };
    let bob = Config {
        accept_disclosure: true,
        ..config(BOB)
    };
    let mut pair = Pair::with_configs(alice, bob, 521);
    let (_, offer_stanza) = offer(&mut pair);
    assert_eq!(
        field_values(&field(&offer_stanza, "disclosure").unwrap()),
        ["enabled"]
    );
    pair.alice.clear();
    let thread = pair.handshake();
    for side in [Side::Alice, Side::Bob] {
        let party = pair.party(side);
        assert_eq!(
            party.alerts(),
            [&SecurityAlert::DisclosureNotNever(Disclosure::Enabled)],
            "{side:?}"
        );
        let alert = position(&party.events, |e| {
            matches!(e, Event::SecurityAlert { session, alert: SecurityAlert::DisclosureNotNever(_) }
                if *session == Pair::id(side, &thread))
        });
        let established = position(&party.events, |e| matches!(e, Event::Established { .. }));
        assert!(
            alert < established,
            "{side:?}: at once, before anything else"
        );
        assert_eq!(pair.info(side).disclosure, Disclosure::Enabled);
        assert_eq!(
            pair.session_info(side, &thread).unwrap().disclosure,
            Disclosure::Enabled
        );
    }
}

#[test]
fn disclosure_never_is_agreed_whenever_offered_and_raises_no_alert() {
    // ESN-54: Bob agrees `never` when offered at all; nobody is alerted.
    let alice = Config {
        offer_disclosure: vec![Disclosure::Enabled, Disclosure::Never],
        ..config(ALICE)
    };
    let bob = Config {
        accept_disclosure: true,
        ..config(BOB)
    };
    let mut pair = Pair::with_configs(alice, bob, 522);
    pair.handshake();
    for side in [Side::Alice, Side::Bob] {
        assert_eq!(pair.info(side).disclosure, Disclosure::Never);
        assert!(pair.party(side).alerts().is_empty(), "{side:?}");
    }
}

#[test]
fn an_initiator_refuses_a_disclosure_it_did_not_offer() {
    // ESN-25 for `disclosure`: Alice offering only `never` refuses `enabled`.
    let mut pair = Pair::new(523);
    pair.negotiate_with(|n, stanza| {
        if n == 1 {
            set_values(stanza, "disclosure", &["enabled"], false);
        }
    });
    assert!(pair.alice.established().is_empty());
    assert!(pair.alice.alerts().is_empty());
    assert_eq!(
        pair.alice.failures(),
        [&Error::Refused {
            condition: ErrorCondition::NotAcceptable,
            fields: vec!["disclosure".to_owned()]
        }]
    );
}

// ---- SSN-18: peer titles and labels never reach the UI ---------------------------

const EVIL: &str = "EVIL-LABEL";

/// Puts a `<title/>` in the form and swapped labels on the `security` and
/// `logging` fields and on each of their options.
fn swap_labels(stanza: &mut Element) {
    for (var, label) in [
        ("security", "Logging (swapped)"),
        ("logging", "Security (swapped)"),
    ] {
        with_field(stanza, var, |f| {
            set_attr(f, "label", &format!("{EVIL} {label}"));
            for option in f.children_mut() {
                if option.is("option", ns::DATA_FORMS) {
                    set_attr(option, "label", &format!("{EVIL} option"));
                }
            }
        });
    }
    let x = crate::harness::form_mut(stanza).unwrap();
    let mut title = Element::bare("title", ns::DATA_FORMS);
    title.append_text_node(format!("{EVIL} title"));
    let mut nodes = x.take_nodes();
    nodes.insert(0, Node::Element(title));
    for node in nodes {
        x.append_node(node);
    }
}

#[test]
fn swapped_labels_on_security_and_logging_never_reach_an_event() {
    // SSN-18's test: a title and swapped labels in the offer (Alice to Bob)
    // or in the answer (Bob to Alice). The core parses forms into typed
    // values and no event carries a peer's title or label: every event of
    // both parties (the held offer, the outcome) is searched for them.
    for (seed, in_offer) in [(531, true), (532, false)] {
        let bob = Config {
            auto_accept: false,
            ..config(BOB)
        };
        let mut pair = Pair::with_configs(config(ALICE), bob, seed);
        let mut tampered = 0;
        let mut tamper = |stanza: &mut Element| {
            swap_labels(stanza);
            assert!(xml_text(stanza).contains(EVIL));
            tampered += 1;
        };
        let (id, out) = pair.alice.manager.start_session(BOB).unwrap();
        pair.route_with(Side::Alice, out, |_, stanza| {
            if in_offer {
                tamper(stanza);
            }
        });
        let session = Pair::id(Side::Bob, &id.thread);
        assert_eq!(
            offers_received(&pair.bob.events),
            std::slice::from_ref(&session)
        );
        let out = pair.bob.manager.accept_offer(&session).unwrap();
        pair.route_with(Side::Bob, out, |n, stanza| {
            if !in_offer && n == 0 {
                tamper(stanza);
            }
        });
        assert_eq!(tampered, 1, "the labels went over the wire once");
        for party in [&pair.alice, &pair.bob] {
            assert!(!party.events.is_empty(), "{}", party.jid);
            for event in &party.events {
                let shown = format!("{event:?}");
                assert!(!shown.contains(EVIL), "{}: {shown}", party.jid);
                assert!(!shown.contains("swapped"), "{}: {shown}", party.jid);
            }
        }
    }
}

/// The stanza as XML text.
fn xml_text(stanza: &Element) -> String {
    esession_wire::xml::serialize(stanza, "").unwrap()
}

// ---- AMB-04: send so, receive either ------------------------------------------------

/// Moves the form of a negotiation stanza into the other wrapper:
/// feature-neg `<feature/>` <-> ns-init `<init/>`.
fn swap_wrapper(stanza: &mut Element) -> bool {
    let (old, old_ns, new, new_ns) = if stanza.has_child("init", ns::ESESSION_INIT) {
        ("init", ns::ESESSION_INIT, "feature", ns::FEATURE_NEG)
    } else if stanza.has_child("feature", ns::FEATURE_NEG) {
        ("feature", ns::FEATURE_NEG, "init", ns::ESESSION_INIT)
    } else {
        return false;
    };
    let Some(mut wrapper) = stanza.remove_child(old, old_ns) else {
        return false;
    };
    let mut replacement = Element::bare(new, new_ns);
    for node in wrapper.take_nodes() {
        replacement.append_node(node);
    }
    stanza.append_child(replacement);
    true
}

#[test]
fn message_4_in_a_feature_neg_wrapper_is_accepted() {
    // AMB-04: we send message 4 in ns-init <init/>, and accept it in a
    // feature-neg <feature/> too (the form, not its wrapper, is MAC'd).
    let mut pair = Pair::new(541);
    let mut swapped = 0;
    let thread = pair.negotiate_with(|n, stanza| {
        if n == 3 {
            assert!(
                stanza.has_child("init", ns::ESESSION_INIT),
                "sent as <init/>"
            );
            assert!(swap_wrapper(stanza));
            assert!(stanza.has_child("feature", ns::FEATURE_NEG));
            swapped += 1;
        }
    });
    assert_eq!(swapped, 1);
    assert_eq!(pair.alice.established().len(), 1, "{:?}", pair.alice.events);
    assert_eq!(pair.bob.established().len(), 1);
    assert_eq!(pair.info(Side::Alice).sas, pair.info(Side::Bob).sas);
    pair.chat(Side::Alice, &thread, "to bob");
    pair.chat(Side::Bob, &thread, "to alice");
    assert_eq!(pair.bob.bodies(), ["to bob"]);
    assert_eq!(pair.alice.bodies(), ["to alice"]);
}

#[test]
fn messages_2_and_3_in_an_init_wrapper_are_accepted_but_an_offer_is_not() {
    // AMB-04 "receive either" for the answer and the completion; an offer
    // must come in feature-neg (an <init/> initiation is XEP-0187's).
    let mut pair = Pair::new(542);
    pair.negotiate_with(|n, stanza| {
        if n == 1 || n == 2 {
            assert!(stanza.has_child("feature", ns::FEATURE_NEG));
            assert!(swap_wrapper(stanza));
        }
    });
    assert_eq!(pair.alice.established().len(), 1, "{:?}", pair.alice.events);
    assert_eq!(pair.bob.established().len(), 1, "{:?}", pair.bob.events);

    let mut pair = Pair::new(543);
    let (_, mut offer_stanza) = offer(&mut pair);
    assert!(swap_wrapper(&mut offer_stanza));
    pair.deliver(Side::Bob, &offer_stanza);
    assert!(pair.bob.sent.is_empty() && pair.bob.events.is_empty());
}
