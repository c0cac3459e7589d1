//! Encrypted messages altered, replayed, reordered or dropped in flight
//! (ENC-03, ENC-12, ENC-13, AMB-53): the receiver delivers nothing of the bad
//! stanza, ends the session with `IntegrityFailure`, tells the peer with an
//! encrypted terminate form (never a stanza error), and ignores the rest of
//! the session, its acknowledgement included.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use esession::{Error, Event, TerminationReason};
use esession_wire::minidom::Element;
use esession_wire::ns;

use crate::harness::{Pair, Side, config, contains_element, is_encrypted};

/// A pair with an established session and one message already exchanged
/// each way; events and sent stanzas are cleared.
fn established(seed: u64) -> (Pair, String) {
    let mut pair = Pair::new(seed);
    let thread = pair.handshake();
    pair.chat(Side::Alice, &thread, "before 1");
    pair.chat(Side::Bob, &thread, "before 2");
    assert_eq!(pair.bob.bodies(), ["before 1"]);
    assert_eq!(pair.alice.bodies(), ["before 2"]);
    pair.alice.clear();
    pair.bob.clear();
    (pair, thread)
}

fn c_mut(stanza: &mut Element) -> &mut Element {
    stanza
        .get_child_mut("c", ns::STANZA_ENCRYPTION)
        .expect("an encrypted stanza")
}

/// Flips the lowest bit of the first decoded byte of `<c/>`'s child `name`.
fn flip_bit(stanza: &mut Element, name: &str) {
    let child = c_mut(stanza)
        .get_child_mut(name, ns::STANZA_ENCRYPTION)
        .expect("the child");
    let mut bytes = STANDARD.decode(child.text()).unwrap();
    bytes[0] ^= 1;
    child.take_nodes();
    child.append_text_node(STANDARD.encode(bytes));
}

/// Checks the AMB-53 outcome after `receiver` got a bad stanza and the
/// router carried everything that followed: `delivered` are the bodies the
/// receiver did get (before the bad one).
fn assert_integrity_failure(pair: &Pair, thread: &str, receiver: Side, delivered: &[&str]) {
    let sender = receiver.other();
    let r = pair.party(receiver);
    let s = pair.party(sender);
    // ENC-12: nothing of the bad stanza reaches the application.
    assert_eq!(r.bodies(), delivered, "{receiver:?} delivered");
    // The session ended on an integrity failure, once.
    assert_eq!(
        r.terminations(),
        [&TerminationReason::IntegrityFailure],
        "{receiver:?}: {:?}",
        r.events
    );
    // AMB-53: exactly one reply, the encrypted terminate form; no stanza error.
    assert_eq!(r.sent.len(), 1, "{receiver:?} sent {:?}", r.sent);
    let terminate = &r.sent[0];
    assert!(is_encrypted(terminate), "terminate is encrypted");
    assert_ne!(terminate.attr("type"), Some("error"));
    assert!(!contains_element(terminate, "error"));
    assert!(!contains_element(terminate, "feature"), "no clear form");
    assert!(
        pair.error_stanzas().is_empty(),
        "ENC-12/AMB-53: no stanza error"
    );
    // The sender could verify it (our outgoing keys were intact) and acknowledged.
    assert_eq!(
        s.terminations(),
        [&TerminationReason::PeerRequest],
        "{sender:?}: {:?}",
        s.events
    );
    assert_eq!(
        s.sent.iter().filter(|st| is_encrypted(st)).count(),
        s.sent.len()
    );
    // AMB-53: the acknowledgement was ignored: no further event at the receiver.
    assert!(
        matches!(r.events.last(), Some(Event::Terminated { .. })),
        "{receiver:?}: {:?}",
        r.events
    );
    // ESN-47: nothing more can be sent on either side.
    for side in [Side::Alice, Side::Bob] {
        assert!(
            !pair
                .party(side)
                .manager
                .is_established(&Pair::id(side, thread)),
            "{side:?}"
        );
    }
}

/// Alice sends one message; `tamper` alters it in flight.
fn alice_sends_tampered(seed: u64, tamper: impl FnOnce(&mut Element)) -> (Pair, String) {
    let (mut pair, thread) = established(seed);
    let out = pair
        .alice
        .manager
        .send_text(&Pair::id(Side::Alice, &thread), "the tampered one")
        .unwrap();
    let mut tamper = Some(tamper);
    pair.route_with(Side::Alice, out, |n, stanza| {
        if n == 0 {
            (tamper.take().unwrap())(stanza);
        }
    });
    (pair, thread)
}

#[test]
fn a_flipped_bit_in_data_delivers_nothing_and_ends_the_session() {
    // ENC-12: the MAC covers <data/>.
    let (pair, thread) = alice_sends_tampered(31, |s| flip_bit(s, "data"));
    assert_integrity_failure(&pair, &thread, Side::Bob, &[]);
}

#[test]
fn a_flipped_bit_in_the_mac_delivers_nothing_and_ends_the_session() {
    // ENC-12.
    let (pair, thread) = alice_sends_tampered(32, |s| flip_bit(s, "mac"));
    assert_integrity_failure(&pair, &thread, Side::Bob, &[]);
}

#[test]
fn a_missing_mac_delivers_nothing_and_ends_the_session() {
    // ENC-10/12: <mac/> is mandatory.
    let (pair, thread) = alice_sends_tampered(33, |s| {
        c_mut(s).remove_child("mac", ns::STANZA_ENCRYPTION).unwrap();
    });
    assert_integrity_failure(&pair, &thread, Side::Bob, &[]);
}

#[test]
fn a_missing_data_element_delivers_nothing_and_ends_the_session() {
    // ENC-09: m_content covers <data/>; without it the MAC no longer matches.
    let (pair, thread) = alice_sends_tampered(34, |s| {
        c_mut(s)
            .remove_child("data", ns::STANZA_ENCRYPTION)
            .unwrap();
    });
    assert_integrity_failure(&pair, &thread, Side::Bob, &[]);
}

#[test]
fn an_added_old_element_delivers_nothing_and_ends_the_session() {
    // ENC-20/ENC-09: <old/> is inside the MAC too.
    let (pair, thread) = alice_sends_tampered(35, |s| {
        let mut old = Element::bare("old", ns::STANZA_ENCRYPTION);
        old.append_text_node(STANDARD.encode([7u8; 32]));
        c_mut(s).append_child(old);
    });
    assert_integrity_failure(&pair, &thread, Side::Bob, &[]);
}

#[test]
fn a_second_c_element_delivers_nothing_and_ends_the_session() {
    // ENC-03: exactly one top-level <c/>; even an exact copy of a valid one.
    let (pair, thread) = alice_sends_tampered(36, |s| {
        let copy = s.get_child("c", ns::STANZA_ENCRYPTION).unwrap().clone();
        s.append_child(copy);
    });
    assert_integrity_failure(&pair, &thread, Side::Bob, &[]);
}

#[test]
fn a_replayed_stanza_is_delivered_once_then_ends_the_session() {
    // ENC-12: the counter moved on, so a replay fails its MAC.
    let (mut pair, thread) = established(37);
    let out = pair
        .alice
        .manager
        .send_text(&Pair::id(Side::Alice, &thread), "once only")
        .unwrap();
    pair.route_via(Side::Alice, out, |flight| {
        if flight.n == 0 && flight.from == Side::Alice {
            vec![flight.stanza.clone(), flight.stanza]
        } else {
            vec![flight.stanza]
        }
    });
    assert_integrity_failure(&pair, &thread, Side::Bob, &["once only"]);
}

#[test]
fn swapped_stanzas_deliver_nothing_and_end_the_session() {
    // ENC-12: reordering fails the MAC of the early arrival; the late one then
    // belongs to an ended session and is ignored (AMB-53).
    let (mut pair, thread) = established(38);
    let first = pair.encrypt(Side::Alice, &thread, "first").remove(0);
    let second = pair.encrypt(Side::Alice, &thread, "second").remove(0);
    pair.alice.clear();
    pair.deliver(Side::Bob, &second);
    pair.deliver(Side::Bob, &first);
    assert_integrity_failure(&pair, &thread, Side::Bob, &[]);
}

#[test]
fn a_dropped_stanza_makes_the_next_one_end_the_session() {
    // ENC-12: loss fails the MAC of the next stanza.
    let (mut pair, thread) = established(39);
    let _lost = pair.encrypt(Side::Alice, &thread, "lost").remove(0);
    let next = pair.encrypt(Side::Alice, &thread, "next").remove(0);
    pair.alice.clear();
    pair.deliver(Side::Bob, &next);
    assert_integrity_failure(&pair, &thread, Side::Bob, &[]);
}

#[test]
fn tampering_from_bob_to_alice_ends_the_session_at_alice() {
    // ENC-12 in the responder-to-initiator direction.
    let (mut pair, thread) = established(40);
    let out = pair
        .bob
        .manager
        .send_text(&Pair::id(Side::Bob, &thread), "reply")
        .unwrap();
    pair.route_with(Side::Bob, out, |n, stanza| {
        if n == 0 {
            flip_bit(stanza, "data");
        }
    });
    assert_integrity_failure(&pair, &thread, Side::Alice, &[]);
}

#[test]
fn a_good_message_after_a_bad_one_is_not_delivered() {
    // AMB-53: everything after the failure in that session is ignored.
    let (mut pair, thread) = established(41);
    let genuine = pair.encrypt(Side::Alice, &thread, "genuine").remove(0);
    let mut tampered = genuine.clone();
    flip_bit(&mut tampered, "data");
    pair.alice.clear();
    pair.deliver(Side::Bob, &tampered);
    // The genuine stanza arrives afterwards: its MAC would verify, but the
    // session is gone.
    let events_before = pair.bob.events.len();
    pair.deliver(Side::Bob, &genuine);
    assert_eq!(pair.bob.events.len(), events_before);
    assert_integrity_failure(&pair, &thread, Side::Bob, &[]);
}

#[test]
fn content_rejected_after_a_valid_mac_ends_the_session_without_a_stream_error() {
    // ENC-13: the MAC verifies but the content cannot be accepted (here: larger
    // than the receiver's limit) -> terminate, deliver nothing, no stanza error.
    let bob = esession::Config {
        max_plaintext_len: 64,
        ..config(crate::harness::BOB)
    };
    let mut pair = Pair::with_configs(config(crate::harness::ALICE), bob, 42);
    let thread = pair.handshake();
    pair.chat(Side::Alice, &thread, "short");
    assert_eq!(pair.bob.bodies(), ["short"]);
    pair.alice.clear();
    pair.bob.clear();
    pair.chat(Side::Alice, &thread, &"long ".repeat(40));
    assert_integrity_failure(&pair, &thread, Side::Bob, &[]);
}

#[test]
fn an_altered_clear_thread_reaches_no_session() {
    // THR-06: the thread is clear and compared exactly; another thread is not
    // this session, so nothing is decrypted, and the real session survives.
    let (mut pair, thread) = established(43);
    let mut stanza = pair.encrypt(Side::Alice, &thread, "x").remove(0);
    let original = stanza.clone();
    let t = stanza.get_child_mut("thread", ns::JABBER_CLIENT).unwrap();
    t.take_nodes();
    t.append_text_node(format!("{thread}0"));
    pair.deliver(Side::Bob, &stanza);
    // Issue 10: Bob holds no session on that thread, so he says so
    // (`item-not-found`, in clear, nothing echoed) and tells his user.
    assert!(
        matches!(
            &pair.bob.events[..],
            [Event::UnknownSessionStanza { answered: true, .. }]
        ),
        "{:?}",
        pair.bob.events
    );
    assert_eq!(pair.bob.sent.len(), 1);
    let gone = &pair.bob.sent[0];
    assert_eq!(gone.attr("type"), Some("error"));
    assert!(contains_element(gone, "item-not-found"));
    assert!(!is_encrypted(gone), "nothing of the session is echoed");
    pair.bob.clear();
    pair.deliver(Side::Bob, &original);
    assert_eq!(pair.bob.bodies(), ["x"]);
}

#[test]
fn sending_after_an_integrity_failure_fails() {
    // ESN-47 after AMB-53: both sides have ended the session.
    let (mut pair, thread) = alice_sends_tampered(44, |s| flip_bit(s, "mac"));
    for side in [Side::Alice, Side::Bob] {
        let err = pair
            .party_mut(side)
            .manager
            .send_text(&Pair::id(side, &thread), "more")
            .unwrap_err();
        assert!(
            matches!(err, Error::UnknownSession | Error::SessionEnded),
            "{side:?}: {err:?}"
        );
    }
}
