//! `<presence/>` and `<iq/>` inside an ESession (ENC-01..03, AMB-26, AMB-29)
//! and the end of a session on the peer's unavailable presence (SSN-16).

use esession::{Config, Error, Event, StanzaKind, TerminationReason};
use esession_wire::minidom::Element;
use esession_wire::{ns, xml};

use crate::harness::{
    ALICE, BOB, Pair, Side, config, config_all_kinds, contains_element, field, field_values,
    flip_base64, is_encrypted, set_attr, thread_of,
};

/// A pair whose configurations offer and accept every stanza kind, established.
fn all_kinds(seed: u64) -> (Pair, String) {
    let mut pair = Pair::with_configs(config_all_kinds(ALICE), config_all_kinds(BOB), seed);
    let thread = pair.handshake();
    (pair, thread)
}

fn parse(text: &str) -> Element {
    xml::parse_document(text).unwrap()
}

fn directed_presence(to: &str) -> Element {
    parse(&format!(
        "<presence xmlns='jabber:client' to='{to}'><show>dnd</show><status>Working</status>\
         <geoloc xmlns='http://jabber.org/protocol/geoloc'><lat>39.75477</lat></geoloc></presence>"
    ))
}

fn iq_get(to: &str, id: &str) -> Element {
    parse(&format!(
        "<iq xmlns='jabber:client' to='{to}' type='get' id='{id}'>\
         <query xmlns='jabber:iq:version'/></iq>"
    ))
}

/// XEP-0200's "Plain IQ Error Stanza", addressed to `to`.
fn iq_error(to: &str) -> Element {
    parse(&format!(
        "<iq xmlns='jabber:client' to='{to}' type='error' id='publish1'>\
         <pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='princely_musings'>\
         <item id='ae890ac52d0df67ed7cfdf51b644e901'/></publish></pubsub>\
         <error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         <payload-too-big xmlns='http://jabber.org/protocol/pubsub#errors'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>secret reason</text></error></iq>"
    ))
}

/// The `<c/>` children of an element.
fn cs(el: &Element) -> usize {
    el.children()
        .filter(|c| c.is("c", ns::STANZA_ENCRYPTION))
        .count()
}

fn stanzas_field(offer: &Element) -> Vec<String> {
    field_values(&field(offer, "stanzas").expect("a stanzas field"))
}

#[test]
fn by_default_only_message_is_offered_and_agreed() {
    // The default offer keeps the transcripts' bytes: `message` only.
    let mut pair = Pair::new(200);
    let thread = pair.handshake();
    assert_eq!(stanzas_field(&pair.log[0].1), ["message"]);
    assert_eq!(stanzas_field(&pair.log[1].1), ["message"]);
    assert_eq!(pair.info(Side::Alice).stanzas, [StanzaKind::Message]);
    assert_eq!(pair.info(Side::Bob).stanzas, [StanzaKind::Message]);
    assert!(pair.session_info(Side::Bob, &thread).is_some());
}

#[test]
fn presence_and_iq_are_agreed_when_both_sides_allow_them() {
    // ESN-04/05, AMB-29: every offered kind the responder accepts, in order.
    let (pair, _) = all_kinds(201);
    assert_eq!(stanzas_field(&pair.log[0].1), ["message", "presence", "iq"]);
    assert_eq!(stanzas_field(&pair.log[1].1), ["message", "presence", "iq"]);
    assert_eq!(pair.info(Side::Alice).stanzas, StanzaKind::ALL);
    assert_eq!(pair.info(Side::Bob).stanzas, StanzaKind::ALL);
}

#[test]
fn the_responder_agrees_only_the_kinds_it_accepts() {
    let bob = Config {
        stanzas: vec![StanzaKind::Iq, StanzaKind::Message],
        ..config(BOB)
    };
    let mut pair = Pair::with_configs(config_all_kinds(ALICE), bob, 202);
    pair.handshake();
    // In the offer's order (AMB-29: a subset of the offer).
    assert_eq!(stanzas_field(&pair.log[1].1), ["message", "iq"]);
    let agreed = [StanzaKind::Message, StanzaKind::Iq];
    assert_eq!(pair.info(Side::Alice).stanzas, agreed);
    assert_eq!(pair.info(Side::Bob).stanzas, agreed);
}

#[test]
fn an_answer_choosing_a_kind_that_was_not_offered_is_refused() {
    // ESN-25, AMB-29: Bob's choice must be a subset of Alice's offer.
    let mut pair = Pair::new(203);
    pair.negotiate_with(|n, stanza| {
        if n == 1 {
            crate::harness::set_values(stanza, "stanzas", &["message", "iq"], false);
        }
    });
    assert!(pair.alice.established().is_empty());
    assert!(
        matches!(&pair.alice.failures()[..], [Error::Refused { fields, .. }] if fields == &["stanzas"]),
        "{:?}",
        pair.alice.events
    );
}

#[test]
fn an_offer_without_any_kind_the_responder_accepts_is_not_acceptable_on_stanzas() {
    // SIM-02, ESN-09: no usable option of `stanzas`.
    let alice = Config {
        stanzas: vec![StanzaKind::Presence],
        ..config(ALICE)
    };
    let mut pair = Pair::with_configs(alice, config(BOB), 228);
    pair.negotiate_with(|_, _| {});
    assert!(pair.bob.established().is_empty());
    let errors = pair.error_stanzas();
    let [(_, Side::Bob, refusal)] = &errors[..] else {
        panic!("{errors:?}")
    };
    let error = crate::harness::stanza_error(refusal).unwrap();
    assert_eq!(
        error.condition,
        Some(esession::ssn::ErrorCondition::NotAcceptable)
    );
    assert_eq!(error.fields, ["stanzas"]);
}

#[test]
fn an_offer_needs_at_least_one_stanza_kind() {
    let alice = Config {
        stanzas: Vec::new(),
        ..config(ALICE)
    };
    // Refused when the manager is built (issue 12), so nothing can be offered.
    assert!(matches!(
        crate::harness::try_manager(alice, 229, Box::new(esession::FixedClock(0))),
        Err(Error::InvalidConfig(esession::ConfigError::Empty(
            "stanzas"
        )))
    ));
}

#[test]
fn a_directed_presence_makes_the_round_trip_encrypted() {
    // ENC-01/02: directed presence is wrapped; its content is only in <c/>.
    let (mut pair, thread) = all_kinds(204);
    let sent = pair
        .seal_stanza(Side::Alice, &thread, &directed_presence("bob@example.com"))
        .unwrap();
    let [wire] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert!(wire.is("presence", ns::JABBER_CLIENT));
    assert_eq!(wire.attr("to"), Some(BOB), "bound to the full JID (SSN-11)");
    assert_eq!(wire.attr("from"), Some(ALICE));
    assert_eq!(wire.children().count(), 1, "only <c/>: {wire:?}");
    assert_eq!(cs(wire), 1);
    for clear in ["show", "status", "geoloc", "lat", "thread", "amp"] {
        assert!(!contains_element(wire, clear), "{clear} in clear");
    }
    pair.bob.clear();
    pair.deliver(Side::Bob, wire);
    let received = pair.bob.stanzas_received();
    let [presence] = &received[..] else {
        panic!("{:?}", pair.bob.events)
    };
    assert!(presence.is("presence", ns::JABBER_CLIENT));
    assert_eq!(presence.attr("from"), Some(ALICE));
    assert_eq!(
        presence
            .get_child("show", ns::JABBER_CLIENT)
            .map(Element::text),
        Some("dnd".to_owned())
    );
    assert_eq!(
        presence
            .get_child("status", ns::JABBER_CLIENT)
            .map(Element::text),
        Some("Working".to_owned())
    );
    assert!(presence.has_child("geoloc", "http://jabber.org/protocol/geoloc"));
    assert!(!presence.has_child("c", ns::STANZA_ENCRYPTION));
    assert!(
        matches!(&pair.bob.events[..], [Event::StanzaReceived { session, .. }] if *session == Pair::id(Side::Bob, &thread)),
        "{:?}",
        pair.bob.events
    );
    assert!(pair.bob.messages().is_empty(), "not a MessageReceived");
    // And back: Bob's presence reaches Alice.
    pair.send_stanza(Side::Bob, &thread, &directed_presence(ALICE));
    assert_eq!(pair.alice.stanzas_received().len(), 1);
}

#[test]
fn a_childless_presence_carries_a_c_with_only_a_mac() {
    // AMB-26: nothing of an agreed kind goes unauthenticated.
    let (mut pair, thread) = all_kinds(205);
    let bare = parse("<presence xmlns='jabber:client' to='bob@example.com/laptop'/>");
    let sent = pair.seal_stanza(Side::Alice, &thread, &bare).unwrap();
    let c = sent[0].get_child("c", ns::STANZA_ENCRYPTION).unwrap();
    let names: Vec<&str> = c.children().map(Element::name).collect();
    assert_eq!(names, ["mac"]);
    pair.deliver(Side::Bob, &sent[0]);
    let received = pair.bob.stanzas_received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].children().count(), 0);
}

#[test]
fn an_iq_get_and_its_result_make_the_round_trip() {
    let (mut pair, thread) = all_kinds(206);
    let sent = pair
        .seal_stanza(Side::Alice, &thread, &iq_get(BOB, "v1"))
        .unwrap();
    assert_eq!(sent[0].attr("type"), Some("get"));
    assert_eq!(sent[0].attr("id"), Some("v1"));
    assert!(!contains_element(&sent[0], "query"));
    pair.bob.clear();
    pair.deliver(Side::Bob, &sent[0]);
    let received = pair.bob.stanzas_received();
    let [get] = &received[..] else {
        panic!("{:?}", pair.bob.events)
    };
    assert_eq!(get.attr("type"), Some("get"));
    assert_eq!(get.attr("id"), Some("v1"));
    assert!(get.has_child("query", "jabber:iq:version"));
    assert!(pair.bob.sent.is_empty(), "no automatic reply from the core");

    let result = parse(&format!(
        "<iq xmlns='jabber:client' to='{ALICE}' type='result' id='v1'>\
         <query xmlns='jabber:iq:version'><name>esession</name></query></iq>"
    ));
    pair.send_stanza(Side::Bob, &thread, &result);
    let received = pair.alice.stanzas_received();
    let [reply] = &received[..] else {
        panic!("{:?}", pair.alice.events)
    };
    assert_eq!(reply.attr("type"), Some("result"));
    assert_eq!(reply.attr("id"), Some("v1"));
    let name = reply
        .get_child("query", "jabber:iq:version")
        .and_then(|q| q.get_child("name", "jabber:iq:version"))
        .map(Element::text);
    assert_eq!(name, Some("esession".to_owned()));
    // Messages still flow, on the same counters.
    pair.chat(Side::Alice, &thread, "after iq");
    assert_eq!(pair.bob.bodies(), ["after iq"]);
}

#[test]
fn an_iq_error_keeps_the_error_and_its_condition_clear_and_hides_the_rest() {
    // ENC-02/03: <error/> and the defined condition in clear; the payload in
    // the top-level <c/>, the application condition and <text/> in one <c/>
    // inside <error/>; counters in document order.
    let (mut pair, thread) = all_kinds(207);
    let sent = pair
        .seal_stanza(Side::Bob, &thread, &iq_error(ALICE))
        .unwrap();
    let wire = &sent[0];
    let names: Vec<&str> = wire.children().map(Element::name).collect();
    assert_eq!(names, ["c", "error"], "top-level <c/> first");
    let error = wire.get_child("error", ns::JABBER_CLIENT).unwrap();
    assert_eq!(error.attr("type"), Some("modify"));
    assert!(error.has_child("not-acceptable", ns::XMPP_STANZAS));
    assert_eq!(cs(error), 1);
    assert_eq!(error.children().count(), 2, "{error:?}");
    for hidden in ["pubsub", "publish", "payload-too-big", "text"] {
        assert!(!contains_element(wire, hidden), "{hidden} in clear");
    }
    pair.deliver(Side::Alice, wire);
    let received = pair.alice.stanzas_received();
    let [iq] = &received[..] else {
        panic!("{:?}", pair.alice.events)
    };
    assert_eq!(iq.attr("type"), Some("error"));
    assert_eq!(iq.attr("id"), Some("publish1"));
    assert!(iq.has_child("pubsub", "http://jabber.org/protocol/pubsub"));
    let error = iq.get_child("error", ns::JABBER_CLIENT).unwrap();
    assert_eq!(error.attr("type"), Some("modify"));
    assert!(error.has_child("not-acceptable", ns::XMPP_STANZAS));
    assert!(error.has_child(
        "payload-too-big",
        "http://jabber.org/protocol/pubsub#errors"
    ));
    assert_eq!(
        error.get_child("text", ns::XMPP_STANZAS).map(Element::text),
        Some("secret reason".to_owned())
    );
    assert_eq!((cs(iq), cs(error)), (0, 0));
    pair.chat(Side::Bob, &thread, "counters still in step");
    assert_eq!(pair.alice.bodies(), ["counters still in step"]);
}

#[test]
fn an_iq_error_with_nothing_to_hide_in_error_has_no_inner_c() {
    let (mut pair, thread) = all_kinds(208);
    let plain = parse(&format!(
        "<iq xmlns='jabber:client' to='{ALICE}' type='error' id='e1'>\
         <error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         </error></iq>"
    ));
    let sent = pair.seal_stanza(Side::Bob, &thread, &plain).unwrap();
    let error = sent[0].get_child("error", ns::JABBER_CLIENT).unwrap();
    assert_eq!(cs(error), 0);
    assert_eq!(cs(&sent[0]), 1);
    pair.deliver(Side::Alice, &sent[0]);
    assert_eq!(pair.alice.stanzas_received().len(), 1);
}

/// `wire` with its `<error/>` moved before the top-level `<c/>`, as
/// xmpp-parsers (tokio-xmpp) re-serializes every `<iq type='error'/>`.
fn error_first(wire: &Element) -> Element {
    let mut moved = Element::bare(wire.name(), ns::JABBER_CLIENT);
    *moved.attrs_mut() = wire.attrs().clone();
    let is_error = |c: &&Element| c.is("error", ns::JABBER_CLIENT);
    for child in wire.children().filter(is_error) {
        moved.append_child(child.clone());
    }
    for child in wire.children().filter(|c| !is_error(c)) {
        moved.append_child(child.clone());
    }
    moved
}

#[test]
fn an_iq_error_reordered_in_transit_still_decrypts() {
    // ENC-03 [IMPL]: counters follow the order of sealing (top-level <c/>
    // first), not the document order, which stanza libraries change.
    let (mut pair, thread) = all_kinds(210);
    let sent = pair
        .seal_stanza(Side::Bob, &thread, &iq_error(ALICE))
        .unwrap();
    let moved = error_first(&sent[0]);
    let names: Vec<&str> = moved.children().map(Element::name).collect();
    assert_eq!(names, ["error", "c"]);
    pair.deliver(Side::Alice, &moved);
    let received = pair.alice.stanzas_received();
    let [iq] = &received[..] else {
        panic!("{:?}", pair.alice.events)
    };
    assert!(iq.has_child("pubsub", "http://jabber.org/protocol/pubsub"));
    let error = iq.get_child("error", ns::JABBER_CLIENT).unwrap();
    assert_eq!(
        error.get_child("text", ns::XMPP_STANZAS).map(Element::text),
        Some("secret reason".to_owned())
    );
    pair.chat(Side::Bob, &thread, "counters still in step");
    assert_eq!(pair.alice.bodies(), ["counters still in step"]);
}

#[test]
fn the_contents_of_the_two_c_of_an_iq_error_cannot_be_swapped() {
    // Each <c/> is bound to its place by its counter: the payload's <c/> moved
    // into <error/> (and the error's out of it) fails verification, even with
    // the <error/> first, so nothing is delivered and nothing committed.
    let (mut pair, thread) = all_kinds(211);
    let wire = pair
        .seal_stanza(Side::Bob, &thread, &iq_error(ALICE))
        .unwrap()
        .remove(0);
    let top = wire.get_child("c", ns::STANZA_ENCRYPTION).unwrap().clone();
    let error = wire.get_child("error", ns::JABBER_CLIENT).unwrap();
    let inner = error.get_child("c", ns::STANZA_ENCRYPTION).unwrap().clone();
    let mut swapped_error = Element::bare("error", ns::JABBER_CLIENT);
    *swapped_error.attrs_mut() = error.attrs().clone();
    swapped_error.append_child(Element::bare("not-acceptable", ns::XMPP_STANZAS));
    swapped_error.append_child(top);
    let mut swapped = Element::bare("iq", ns::JABBER_CLIENT);
    *swapped.attrs_mut() = wire.attrs().clone();
    swapped.append_child(inner);
    swapped.append_child(swapped_error);
    for attempt in [swapped.clone(), error_first(&swapped)] {
        pair.deliver(Side::Alice, &attempt);
        assert!(
            pair.alice.stanzas_received().is_empty(),
            "{:?}",
            pair.alice.events
        );
    }
    assert!(pair.alice.terminations().is_empty());
    pair.deliver(Side::Alice, &wire);
    assert_eq!(
        pair.alice.stanzas_received().len(),
        1,
        "the original still verifies: {:?}",
        pair.alice.events
    );
}

#[test]
fn a_tampered_inner_c_delivers_nothing_and_leaves_the_counters_alone() {
    // The top-level <c/> verifies, the inner one does not: nothing is
    // committed (practice 12), so the next stanza still verifies. As a
    // type='error' stanza that fails, it counts as a bounce (DeliveryError).
    let (mut pair, thread) = all_kinds(209);
    let mut wire = pair
        .seal_stanza(Side::Bob, &thread, &iq_error(ALICE))
        .unwrap()
        .remove(0);
    let error = wire.get_child_mut("error", ns::JABBER_CLIENT).unwrap();
    let c = error.get_child_mut("c", ns::STANZA_ENCRYPTION).unwrap();
    let mac = c.get_child_mut("mac", ns::STANZA_ENCRYPTION).unwrap();
    let flipped = flip_base64(&mac.text());
    mac.take_nodes();
    mac.append_text_node(flipped);
    pair.deliver(Side::Alice, &wire);
    assert!(pair.alice.stanzas_received().is_empty());
    assert!(
        matches!(&pair.alice.events[..], [.., Event::DeliveryError { .. }]),
        "{:?}",
        pair.alice.events
    );
    assert!(pair.alice.terminations().is_empty());
    // Alice committed nothing of the stanza, not even for its good top-level
    // <c/>: the untampered original still verifies at the same counters.
    let original = pair.bob.sent.last().unwrap().clone();
    pair.deliver(Side::Alice, &original);
    assert_eq!(
        pair.alice.stanzas_received().len(),
        1,
        "{:?}",
        pair.alice.events
    );
}

#[test]
fn broadcast_presence_is_refused_by_the_api_and_nothing_is_sent() {
    // ENC-01: broadcast presence (no `to`) always stays in clear; the session
    // API will not touch it.
    let (mut pair, thread) = all_kinds(210);
    let broadcast = parse("<presence xmlns='jabber:client'><show>away</show></presence>");
    let sent_before = pair.alice.sent.len();
    assert!(matches!(
        pair.seal_stanza(Side::Alice, &thread, &broadcast),
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(pair.alice.sent.len(), sent_before);
}

#[test]
fn a_clear_broadcast_presence_from_the_peer_passes_through_untouched() {
    // ENC-01: the core neither drops nor flags clear presence; the session stays.
    let (mut pair, thread) = all_kinds(211);
    let broadcast = parse(&format!(
        "<presence xmlns='jabber:client' from='{BOB}' to='alice@example.org'>\
         <show>away</show></presence>"
    ));
    pair.alice.clear();
    pair.deliver(Side::Alice, &broadcast);
    assert!(pair.alice.events.is_empty(), "{:?}", pair.alice.events);
    assert!(pair.alice.sent.is_empty());
    assert!(pair.session_info(Side::Alice, &thread).is_some());
}

#[test]
fn a_kind_not_agreed_is_refused_and_nothing_is_sent() {
    // ENC-01: never encrypted, and never sent in clear by the core either.
    let mut pair = Pair::new(212);
    let thread = pair.handshake();
    let sent_before = pair.alice.sent.len();
    assert_eq!(
        pair.seal_stanza(Side::Alice, &thread, &directed_presence(BOB))
            .unwrap_err(),
        Error::StanzaKindNotAgreed(StanzaKind::Presence)
    );
    assert_eq!(
        pair.seal_stanza(Side::Alice, &thread, &iq_get(BOB, "x"))
            .unwrap_err(),
        Error::StanzaKindNotAgreed(StanzaKind::Iq)
    );
    assert_eq!(pair.alice.sent.len(), sent_before);
    assert!(pair.session_info(Side::Alice, &thread).is_some());
}

#[test]
fn subscription_presence_and_malformed_iq_are_refused() {
    let (mut pair, thread) = all_kinds(213);
    let sent_before = pair.alice.sent.len();
    for bad in [
        format!("<presence xmlns='jabber:client' to='{BOB}' type='subscribe'/>"),
        format!(
            "<iq xmlns='jabber:client' to='{BOB}' type='get'><ping xmlns='urn:xmpp:ping'/></iq>"
        ),
        format!("<iq xmlns='jabber:client' to='{BOB}' type='chat' id='a'/>"),
        "<iq xmlns='jabber:client' to='carol@example.net/x' type='get' id='a'/>".to_owned(),
        format!(
            "<iq xmlns='jabber:client' to='{BOB}' type='error' id='a'><error type='cancel'>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no condition</text></error></iq>"
        ),
    ] {
        assert!(
            matches!(
                pair.seal_stanza(Side::Alice, &thread, &parse(&bad)),
                Err(Error::InvalidInput(_))
            ),
            "{bad}"
        );
    }
    assert_eq!(pair.alice.sent.len(), sent_before);
    // Nothing was consumed: the next stanza still verifies at Bob.
    pair.send_stanza(Side::Alice, &thread, &iq_get(BOB, "ok"));
    assert_eq!(pair.bob.stanzas_received().len(), 1);
}

/// Bob's next encrypted message, re-wrapped by an attacker (or a broken peer)
/// as a stanza of another kind: the MAC covers only the `<c/>` content.
fn rewrap(pair: &mut Pair, thread: &str, wrapper: &str) -> Element {
    let message = pair.encrypt(Side::Bob, thread, "smuggled").remove(0);
    let c = message
        .get_child("c", ns::STANZA_ENCRYPTION)
        .unwrap()
        .clone();
    let mut stanza = parse(wrapper);
    stanza.append_child(c);
    stanza
}

#[test]
fn an_encrypted_iq_when_iq_was_not_agreed_ends_the_session_and_is_refused() {
    // ENC-01: Alice would take iq, Bob agreed message only. An encrypted iq
    // from Bob is not decrypted; the session bound to Bob's JID ends as on any
    // stanza that fails (ENC-12), and the iq get is answered not-acceptable.
    let bob = config(BOB);
    let mut pair = Pair::with_configs(config_all_kinds(ALICE), bob, 214);
    let thread = pair.handshake();
    assert_eq!(pair.info(Side::Alice).stanzas, [StanzaKind::Message]);
    let iq = rewrap(
        &mut pair,
        &thread,
        &format!("<iq xmlns='jabber:client' from='{BOB}' to='{ALICE}' type='get' id='q7'/>"),
    );
    pair.alice.clear();
    pair.deliver(Side::Alice, &iq);
    assert!(pair.alice.stanzas_received().is_empty());
    assert!(pair.alice.messages().is_empty());
    assert_eq!(
        pair.alice.terminations(),
        [&TerminationReason::StanzaKindNotAgreed]
    );
    assert!(pair.session_info(Side::Alice, &thread).is_none());
    let refusal = pair
        .alice
        .sent
        .iter()
        .find(|s| s.is("iq", ns::JABBER_CLIENT))
        .expect("an iq error");
    assert_eq!(refusal.attr("type"), Some("error"));
    assert_eq!(refusal.attr("id"), Some("q7"));
    assert_eq!(refusal.attr("to"), Some(BOB));
    let error = refusal.get_child("error", ns::JABBER_CLIENT).unwrap();
    assert!(error.has_child("not-acceptable", ns::XMPP_STANZAS));
    assert!(!is_encrypted(refusal));
    // The encrypted terminate form went to Bob, whose session ends too.
    let terminate = pair
        .alice
        .sent
        .iter()
        .find(|s| s.is("message", ns::JABBER_CLIENT))
        .expect("the terminate form");
    assert!(is_encrypted(terminate));
    assert_eq!(thread_of(terminate).as_deref(), Some(thread.as_str()));
    assert_eq!(
        pair.bob.terminations(),
        [&TerminationReason::PeerRequest],
        "{:?}",
        pair.bob.events
    );
}

#[test]
fn an_encrypted_presence_without_any_session_is_ignored() {
    let mut pair = Pair::new(215);
    let presence = parse(&format!(
        "<presence xmlns='jabber:client' from='{BOB}' to='{ALICE}'><c \
         xmlns='http://www.xmpp.org/extensions/xep-0200.html#ns'><mac>AAAA</mac></c></presence>"
    ));
    pair.deliver(Side::Alice, &presence);
    assert!(pair.alice.events.is_empty());
    assert!(pair.alice.sent.is_empty());
}

#[test]
fn a_tampered_presence_delivers_nothing_and_ends_the_session() {
    // ENC-12: one flipped character of <data/>.
    let (mut pair, thread) = all_kinds(216);
    let mut wire = pair
        .seal_stanza(Side::Alice, &thread, &directed_presence(BOB))
        .unwrap()
        .remove(0);
    let data = wire
        .get_child_mut("c", ns::STANZA_ENCRYPTION)
        .and_then(|c| c.get_child_mut("data", ns::STANZA_ENCRYPTION))
        .unwrap();
    let flipped = flip_base64(&data.text());
    data.take_nodes();
    data.append_text_node(flipped);
    pair.deliver(Side::Bob, &wire);
    assert!(pair.bob.stanzas_received().is_empty());
    assert_eq!(
        pair.bob.terminations(),
        [&TerminationReason::IntegrityFailure]
    );
    assert!(pair.session_info(Side::Bob, &thread).is_none());
}

#[test]
fn a_tampered_iq_delivers_nothing_ends_the_session_and_is_refused() {
    let (mut pair, thread) = all_kinds(217);
    let mut wire = pair
        .seal_stanza(Side::Alice, &thread, &iq_get(BOB, "t1"))
        .unwrap()
        .remove(0);
    let mac = wire
        .get_child_mut("c", ns::STANZA_ENCRYPTION)
        .and_then(|c| c.get_child_mut("mac", ns::STANZA_ENCRYPTION))
        .unwrap();
    let flipped = flip_base64(&mac.text());
    mac.take_nodes();
    mac.append_text_node(flipped);
    pair.bob.clear();
    pair.deliver(Side::Bob, &wire);
    assert!(pair.bob.stanzas_received().is_empty());
    assert_eq!(
        pair.bob.terminations(),
        [&TerminationReason::IntegrityFailure]
    );
    let refusal = pair
        .bob
        .sent
        .iter()
        .find(|s| s.is("iq", ns::JABBER_CLIENT))
        .expect("the iq get is answered");
    assert_eq!(refusal.attr("id"), Some("t1"));
    assert_eq!(refusal.attr("type"), Some("error"));
    // Alice got the encrypted terminate and acknowledged it.
    assert_eq!(pair.alice.terminations(), [&TerminationReason::PeerRequest]);
}

#[test]
fn two_top_level_c_end_the_session() {
    // ENC-03: exactly one <c/> as a direct child.
    let (mut pair, thread) = all_kinds(218);
    let mut wire = pair
        .seal_stanza(Side::Alice, &thread, &directed_presence(BOB))
        .unwrap()
        .remove(0);
    let c = wire.get_child("c", ns::STANZA_ENCRYPTION).unwrap().clone();
    wire.append_child(c);
    pair.deliver(Side::Bob, &wire);
    assert!(pair.bob.stanzas_received().is_empty());
    assert_eq!(
        pair.bob.terminations(),
        [&TerminationReason::IntegrityFailure]
    );
}

#[test]
fn an_inner_c_outside_an_error_stanza_ends_the_session() {
    // ENC-03: only type='error' stanzas may carry a <c/> inside <error/>.
    let (mut pair, thread) = all_kinds(219);
    let mut wire = pair
        .seal_stanza(Side::Alice, &thread, &iq_get(BOB, "g"))
        .unwrap()
        .remove(0);
    let mut error = Element::bare("error", ns::JABBER_CLIENT);
    error.append_child(wire.get_child("c", ns::STANZA_ENCRYPTION).unwrap().clone());
    wire.append_child(error);
    pair.deliver(Side::Bob, &wire);
    assert!(pair.bob.stanzas_received().is_empty());
    assert_eq!(
        pair.bob.terminations(),
        [&TerminationReason::IntegrityFailure]
    );
}

#[test]
fn clear_children_beside_c_are_not_delivered() {
    // Nothing unauthenticated is delivered: a <status/> added in flight is dropped.
    let (mut pair, thread) = all_kinds(220);
    let mut wire = pair
        .seal_stanza(Side::Alice, &thread, &directed_presence(BOB))
        .unwrap()
        .remove(0);
    let mut forged = Element::bare("status", ns::JABBER_CLIENT);
    forged.append_text_node("forged");
    wire.append_child(forged);
    pair.deliver(Side::Bob, &wire);
    let received = pair.bob.stanzas_received();
    let [presence] = &received[..] else {
        panic!("{:?}", pair.bob.events)
    };
    let statuses: Vec<String> = presence
        .children()
        .filter(|c| c.is("status", ns::JABBER_CLIENT))
        .map(Element::text)
        .collect();
    assert_eq!(statuses, ["Working"]);
}

#[test]
fn clear_children_beside_a_messages_c_are_not_delivered() {
    // The same for messages: a <body/> slipped in before the <c/> in flight
    // must not reach the application as if it were authenticated; the clear
    // parts of ENC-02 (<thread/>, <amp/>) are kept.
    let mut pair = Pair::new(227);
    let thread = pair.handshake();
    let mut wire = pair.encrypt(Side::Alice, &thread, "genuine").remove(0);
    let mut nodes = wire.take_nodes();
    let mut forged = Element::bare("body", ns::JABBER_CLIENT);
    forged.append_text_node("forged");
    nodes.insert(0, forged.into());
    for node in nodes {
        wire.append_node(node);
    }
    pair.deliver(Side::Bob, &wire);
    assert_eq!(pair.bob.bodies(), ["genuine"]);
    let messages = pair.bob.messages();
    let bodies: Vec<String> = messages[0]
        .children()
        .filter(|c| c.is("body", ns::JABBER_CLIENT))
        .map(Element::text)
        .collect();
    assert_eq!(bodies, ["genuine"]);
    assert!(messages[0].has_child("thread", ns::JABBER_CLIENT));
    assert!(messages[0].has_child("amp", ns::AMP));
}

#[test]
fn a_bounce_of_our_encrypted_iq_is_a_delivery_error() {
    let (mut pair, thread) = all_kinds(221);
    let mut bounce = pair
        .seal_stanza(Side::Alice, &thread, &iq_get(BOB, "b1"))
        .unwrap()
        .remove(0);
    set_attr(&mut bounce, "type", "error");
    set_attr(&mut bounce, "from", BOB);
    set_attr(&mut bounce, "to", ALICE);
    bounce.append_child(parse(
        "<error xmlns='jabber:client' type='cancel'><service-unavailable \
         xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
    ));
    pair.alice.clear();
    pair.deliver(Side::Alice, &bounce);
    assert!(
        matches!(&pair.alice.events[..], [Event::DeliveryError { .. }]),
        "{:?}",
        pair.alice.events
    );
    assert!(pair.alice.sent.is_empty());
    assert!(pair.session_info(Side::Alice, &thread).is_some());
}

#[test]
fn presence_and_iq_are_refused_when_several_sessions_could_carry_them() {
    // AMB-26: two sessions with the same full JID both agreed presence: the
    // API refuses to choose, and a received one is delivered by neither.
    let (mut pair, first) = all_kinds(222);
    let held = pair
        .seal_stanza(Side::Bob, &first, &directed_presence(ALICE))
        .unwrap()
        .remove(0);
    let second = pair.handshake();
    assert_ne!(first, second);
    assert_eq!(
        pair.seal_stanza(Side::Alice, &first, &directed_presence(BOB))
            .unwrap_err(),
        Error::AmbiguousSession
    );
    pair.alice.clear();
    pair.deliver(Side::Alice, &held);
    assert!(pair.alice.events.is_empty(), "{:?}", pair.alice.events);
    assert!(pair.alice.sent.is_empty());
    assert!(pair.session_info(Side::Alice, &first).is_some());
    assert!(pair.session_info(Side::Alice, &second).is_some());
    // Messages are bound by thread and are unaffected.
    pair.chat(Side::Alice, &second, "threads still work");
    assert_eq!(pair.bob.bodies(), ["threads still work"]);
}

#[test]
fn unthreaded_session_names_the_one_session_that_carries_a_kind() {
    // AMB-26, for applications routing their own presence and iq replies.
    let (mut pair, first) = all_kinds(223);
    let id = Pair::id(Side::Alice, &first);
    let alice = &pair.alice.manager;
    assert_eq!(
        alice.unthreaded_session(BOB, StanzaKind::Iq),
        Some(id.clone())
    );
    assert_eq!(
        alice.unthreaded_session(BOB, StanzaKind::Presence),
        Some(id)
    );
    assert_eq!(alice.unthreaded_session(BOB, StanzaKind::Message), None);
    assert_eq!(
        alice.unthreaded_session("bob@example.com/other", StanzaKind::Iq),
        None
    );
    // Several candidates: none.
    let _second = pair.handshake();
    assert_eq!(
        pair.alice.manager.unthreaded_session(BOB, StanzaKind::Iq),
        None
    );
    // A session that agreed only messages carries no iq.
    let mut plain = Pair::with_configs(config(ALICE), config(BOB), 224);
    let _thread = plain.handshake();
    assert_eq!(
        plain.alice.manager.unthreaded_session(BOB, StanzaKind::Iq),
        None
    );
}

#[test]
fn unavailable_presence_from_the_peer_ends_the_session() {
    // SSN-16: we assume the peer cannot continue, so we MUST terminate
    // explicitly (the encrypted terminate form, ESN-45) and destroy the keys
    // without waiting for an acknowledgement.
    let mut pair = Pair::new(223);
    let thread = pair.handshake();
    let unavailable = parse(&format!(
        "<presence xmlns='jabber:client' from='{BOB}' to='{ALICE}' type='unavailable'/>"
    ));
    pair.alice.clear();
    // Hand it over without routing the replies: Bob is offline.
    let replies = pair.alice.receive(&unavailable);
    let [terminate] = &replies[..] else {
        panic!("{replies:?}")
    };
    assert!(is_encrypted(terminate));
    assert_eq!(terminate.attr("to"), Some(BOB));
    assert_eq!(thread_of(terminate).as_deref(), Some(thread.as_str()));
    assert!(
        matches!(
            &pair.alice.events[..],
            [Event::Terminated { session, reason: TerminationReason::PeerUnavailable }]
                if *session == Pair::id(Side::Alice, &thread)
        ),
        "{:?}",
        pair.alice.events
    );
    assert!(pair.session_info(Side::Alice, &thread).is_none());
    assert_eq!(
        pair.alice
            .manager
            .send_text(&Pair::id(Side::Alice, &thread), "too late")
            .unwrap_err(),
        Error::UnknownSession
    );
    // The terminate form is the genuine one: when Bob gets it, he ends too;
    // his acknowledgement reaches a session that is gone and changes nothing.
    pair.alice.clear();
    let terminate = terminate.clone();
    pair.deliver(Side::Bob, &terminate);
    assert_eq!(pair.bob.terminations(), [&TerminationReason::PeerRequest]);
    assert!(pair.alice.events.is_empty(), "{:?}", pair.alice.events);
    assert!(pair.alice.sent.is_empty(), "nothing sent afterwards");
}

#[test]
fn encrypted_unavailable_presence_is_delivered_then_ends_the_session() {
    let (mut pair, thread) = all_kinds(224);
    let unavailable = parse(&format!(
        "<presence xmlns='jabber:client' to='{ALICE}' type='unavailable'>\
         <status>gone</status></presence>"
    ));
    let wire = pair
        .seal_stanza(Side::Bob, &thread, &unavailable)
        .unwrap()
        .remove(0);
    assert!(!contains_element(&wire, "status"));
    pair.alice.clear();
    let replies = pair.alice.receive(&wire);
    assert_eq!(replies.len(), 1, "the terminate form");
    assert!(
        matches!(
            &pair.alice.events[..],
            [
                Event::StanzaReceived { .. },
                Event::Terminated {
                    reason: TerminationReason::PeerUnavailable,
                    ..
                }
            ]
        ),
        "{:?}",
        pair.alice.events
    );
    assert!(pair.session_info(Side::Alice, &thread).is_none());
}

#[test]
fn unavailable_presence_from_another_resource_changes_nothing() {
    let mut pair = Pair::new(225);
    let thread = pair.handshake();
    pair.alice.clear();
    pair.deliver(
        Side::Alice,
        &parse(&format!(
            "<presence xmlns='jabber:client' from='bob@example.com/phone' to='{ALICE}' \
             type='unavailable'/>"
        )),
    );
    assert!(pair.alice.events.is_empty());
    assert!(pair.alice.sent.is_empty());
    assert!(pair.session_info(Side::Alice, &thread).is_some());
}

#[test]
fn configured_to_assume_continuation_unavailable_presence_keeps_the_session() {
    // SSN-16's SHOULD, as an option.
    let alice = Config {
        end_session_on_peer_unavailable: false,
        ..config(ALICE)
    };
    let mut pair = Pair::with_configs(alice, config(BOB), 226);
    let thread = pair.handshake();
    pair.alice.clear();
    pair.deliver(
        Side::Alice,
        &parse(&format!(
            "<presence xmlns='jabber:client' from='{BOB}' to='{ALICE}' type='unavailable'/>"
        )),
    );
    assert!(pair.alice.events.is_empty());
    assert!(pair.alice.sent.is_empty());
    pair.chat(Side::Bob, &thread, "back again");
    assert_eq!(pair.alice.bodies(), ["back again"]);
}
