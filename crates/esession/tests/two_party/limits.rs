//! Issue 11: what a peer, authenticated or not, can make us compute and
//! hold. Work is counted through the injected randomness (every DH key pair
//! the core makes), state through the events and session counts; limits are
//! asserted, never wall-clock times.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use esession::{
    Config, Error, Event, FixedClock, LimitKind, MemoryTrustStore, RandomPurpose, Randomness,
    ResponderChoice, SessionManager, SystemRandomness,
};
use esession_crypto::{CompressionAlgorithm, DhKeyPair, ExponentSize, ModpGroup};
use esession_wire::minidom::Element;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

use crate::harness::{ALICE, BOB, NOW, Pair, Party, Side, config, set_attr};

/// Randomness that counts the DH key pairs made, by group.
struct Counting {
    inner: SystemRandomness<ChaCha20Rng>,
    pairs: Arc<Mutex<Vec<ModpGroup>>>,
    fills: Arc<AtomicUsize>,
}

impl Randomness for Counting {
    fn fill(&mut self, purpose: RandomPurpose, out: &mut [u8]) {
        self.fills.fetch_add(1, Ordering::SeqCst);
        self.inner.fill(purpose, out);
    }
    fn dh_key_pair(&mut self, group: ModpGroup, size: ExponentSize) -> DhKeyPair {
        self.pairs.lock().unwrap().push(group);
        self.inner.dh_key_pair(group, size)
    }
    fn permutation(&mut self, n: usize) -> Vec<usize> {
        self.inner.permutation(n)
    }
}

/// A Bob whose key pairs are counted.
fn counted_bob(config: Config, seed: u64) -> (Party, Arc<Mutex<Vec<ModpGroup>>>) {
    let pairs = Arc::new(Mutex::new(Vec::new()));
    let rng = Counting {
        inner: SystemRandomness::new(ChaCha20Rng::seed_from_u64(seed)),
        pairs: Arc::clone(&pairs),
        fills: Arc::new(AtomicUsize::new(0)),
    };
    let manager = SessionManager::new(
        config,
        Box::new(rng),
        Box::new(MemoryTrustStore::new()),
        Box::new(FixedClock(NOW)),
    )
    .unwrap();
    (Party::with_manager(BOB, manager), pairs)
}

/// Alice's offer (message 1) to Bob, as the server delivers it.
fn offer(alice: &mut Party) -> Element {
    let (_, out) = alice.manager.start_session(BOB).unwrap();
    let mut stanza = alice.absorb(out).remove(0);
    set_attr(&mut stanza, "from", alice.jid);
    stanza
}

fn alice_offering(groups: Vec<ModpGroup>, seed: u64) -> Party {
    Party::new(
        ALICE,
        Config {
            groups,
            ..config(ALICE)
        },
        seed,
    )
}

#[test]
fn the_responder_computes_one_key_pair_in_the_group_it_prefers() {
    // Alice lists group 2 first, then 14; Bob (the default order: 14 first)
    // computes in 14.
    let bob_config = Config {
        groups: Config::default().groups,
        ..config(BOB)
    };
    let mut alice = alice_offering(vec![ModpGroup::Group2, ModpGroup::Group14], 301);
    let (mut bob, pairs) = counted_bob(bob_config.clone(), 302);
    let stanza = offer(&mut alice);
    bob.receive(&stanza);
    assert_eq!(
        *pairs.lock().unwrap(),
        [ModpGroup::Group14],
        "one pair, ours"
    );

    // With the peer's order, the peer's first acceptable group.
    let mut alice = alice_offering(vec![ModpGroup::Group2, ModpGroup::Group14], 303);
    let (mut bob, pairs) = counted_bob(
        Config {
            responder_choice: ResponderChoice::Peers,
            ..bob_config
        },
        304,
    );
    bob.receive(&offer(&mut alice));
    assert_eq!(*pairs.lock().unwrap(), [ModpGroup::Group2]);
}

#[test]
fn the_responder_does_not_take_zlib_when_none_was_offered() {
    let zlib_first = Config {
        compression: vec![CompressionAlgorithm::Zlib, CompressionAlgorithm::None],
        ..config(ALICE)
    };
    let mut pair = Pair::with_configs(zlib_first, config(BOB), 305);
    pair.handshake();
    assert_eq!(
        pair.info(Side::Bob).compression,
        CompressionAlgorithm::None,
        "our order: none first"
    );
}

fn limit_failures(party: &Party) -> Vec<LimitKind> {
    party
        .events
        .iter()
        .filter_map(|e| match e {
            Event::NegotiationFailed {
                error: Error::LimitReached(kind),
                ..
            } => Some(*kind),
            _ => None,
        })
        .collect()
}

#[test]
fn negotiations_in_progress_are_capped_per_peer_oldest_dropped() {
    let (mut bob, pairs) = counted_bob(config(BOB), 306);
    let mut alice = alice_offering(vec![ModpGroup::Group1], 307);
    for _ in 0..6 {
        bob.receive(&offer(&mut alice));
    }
    assert_eq!(pairs.lock().unwrap().len(), 6, "one pair per offer");
    assert_eq!(
        limit_failures(&bob),
        [
            LimitKind::PendingNegotiationsPerPeer,
            LimitKind::PendingNegotiationsPerPeer
        ],
        "default 4 per peer: the two oldest were dropped, each reported"
    );
}

#[test]
fn negotiations_in_progress_are_capped_in_all() {
    let limits = esession::Limits {
        pending_negotiations_total: 3,
        ..esession::Limits::default()
    };
    let (mut bob, _) = counted_bob(
        Config {
            limits,
            ..config(BOB)
        },
        308,
    );
    for (i, who) in ["a@x/1", "b@x/1", "c@x/1", "d@x/1", "e@x/1"]
        .iter()
        .enumerate()
    {
        let mut stranger = Party::new(
            "stranger@x/1",
            Config {
                groups: vec![ModpGroup::Group1],
                ..config(who)
            },
            400 + i as u64,
        );
        let (_, out) = stranger.manager.start_session(BOB).unwrap();
        let mut stanza = stranger.absorb(out).remove(0);
        set_attr(&mut stanza, "from", who);
        bob.receive(&stanza);
    }
    assert_eq!(
        limit_failures(&bob),
        [
            LimitKind::PendingNegotiationsTotal,
            LimitKind::PendingNegotiationsTotal
        ]
    );
}

#[test]
fn established_sessions_are_capped_per_peer() {
    let limits = esession::Limits {
        sessions_per_peer: 1,
        ..esession::Limits::default()
    };
    let bob_config = Config {
        limits,
        ..config(BOB)
    };
    let mut pair = Pair::with_configs(config(ALICE), bob_config, 309);
    let first = pair.handshake();
    pair.alice.clear();
    pair.bob.clear();
    let (pairs_before, bob_events) = (pair.bob.sent.len(), pair.bob.events.len());
    let (_, out) = pair.alice.manager.start_session(BOB).unwrap();
    pair.route(Side::Alice, out);
    assert_eq!(
        limit_failures(&pair.bob),
        [LimitKind::SessionsPerPeer],
        "{:?}",
        &pair.bob.events[bob_events..]
    );
    // Refused with service-unavailable, echoing nothing.
    let reply = &pair.bob.sent[pairs_before];
    assert_eq!(reply.attr("type"), Some("error"));
    assert!(
        !reply.children().any(|c| c.name() == "feature"),
        "no echo of the offer"
    );
    assert!(
        pair.session_info(Side::Bob, &first).is_some(),
        "the first one stays"
    );
}

#[test]
fn a_forged_delay_restarts_a_negotiation_only_for_a_valid_offer_and_only_twice_a_minute() {
    let (mut bob, pairs) = counted_bob(config(BOB), 310);
    let mut alice = alice_offering(vec![ModpGroup::Group1], 311);
    let delayed = |mut stanza: Element| {
        let mut delay = Element::bare("delay", "urn:xmpp:delay");
        set_attr(&mut delay, "stamp", "2020-01-01T00:00:00Z");
        stanza.append_child(delay);
        stanza
    };
    // Not an offer: a form without the SSN FORM_TYPE.
    let mut bogus = offer(&mut alice);
    for feature in bogus.children_mut() {
        for form in feature.children_mut() {
            for field in form.children_mut() {
                if field.attr("var") == Some("FORM_TYPE") {
                    set_attr(field, "var", "x-not-ssn");
                }
            }
        }
    }
    bob.receive(&delayed(bogus));
    let our_groups = config(BOB).groups.len();
    assert!(pairs.lock().unwrap().is_empty(), "no start for a non-offer");
    for _ in 0..5 {
        bob.receive(&delayed(offer(&mut alice)));
    }
    assert_eq!(
        pairs.lock().unwrap().len(),
        2 * our_groups,
        "two fresh offers of ours in the minute"
    );
    assert_eq!(
        limit_failures(&bob),
        [
            LimitKind::UnsolicitedStarts,
            LimitKind::UnsolicitedStarts,
            LimitKind::UnsolicitedStarts
        ]
    );
}

#[test]
fn a_clear_error_beside_c_is_dropped_unless_the_message_is_an_error() {
    let mut pair = Pair::new(312);
    let thread = pair.handshake();
    pair.bob.clear();
    let mut sent = pair.encrypt(Side::Alice, &thread, "hello");
    let mut error = Element::bare("error", esession_wire::ns::JABBER_CLIENT);
    set_attr(&mut error, "type", "cancel");
    error.append_child(Element::bare(
        "service-unavailable",
        esession_wire::ns::XMPP_STANZAS,
    ));
    sent[0].append_child(error);
    pair.deliver(Side::Bob, &sent[0]);
    let got: Vec<(bool, bool)> = pair
        .bob
        .events
        .iter()
        .filter_map(|e| match e {
            Event::MessageReceived {
                message,
                unauthenticated_error,
                ..
            } => Some((
                message.has_child("error", esession_wire::ns::JABBER_CLIENT),
                unauthenticated_error.is_some(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(got, [(false, false)], "the clear <error/> is not delivered");
}

#[test]
fn a_decrypted_stanza_with_too_many_elements_ends_the_session() {
    let limits = esession::Limits {
        max_decrypted_elements: 50,
        ..esession::Limits::default()
    };
    let bob_config = Config {
        limits,
        ..config(BOB)
    };
    let mut pair = Pair::with_configs(config(ALICE), bob_config, 313);
    let thread = pair.handshake();
    pair.bob.clear();
    let mut many = Element::bare("message", esession_wire::ns::JABBER_CLIENT);
    for _ in 0..60 {
        many.append_child(Element::bare("x", "urn:example:many"));
    }
    let out = pair
        .alice
        .manager
        .send_message(&Pair::id(Side::Alice, &thread), &many)
        .unwrap();
    pair.route(Side::Alice, out);
    assert!(pair.bob.messages().is_empty());
    assert_eq!(
        pair.bob.terminations(),
        [&esession::TerminationReason::IntegrityFailure]
    );
    // Under the limit, the same kind of stanza is fine.
    let mut pair = Pair::with_configs(config(ALICE), config(BOB), 314);
    let thread = pair.handshake();
    pair.bob.clear();
    let out = pair
        .alice
        .manager
        .send_message(&Pair::id(Side::Alice, &thread), &many)
        .unwrap();
    pair.route(Side::Alice, out);
    assert_eq!(pair.bob.messages().len(), 1);
}

#[test]
fn a_peer_rekeying_faster_than_allowed_has_its_session_ended() {
    let limits = esession::Limits {
        peer_rekeys_per_minute: 2,
        ..esession::Limits::default()
    };
    let bob_config = Config {
        limits,
        ..config(BOB)
    };
    let mut pair = Pair::with_configs(config(ALICE), bob_config, 315);
    let thread = pair.handshake();
    let alice_id = Pair::id(Side::Alice, &thread);
    for round in 0..3 {
        pair.chat(Side::Bob, &thread, "tick");
        pair.chat(Side::Alice, &thread, "tock");
        let out = pair
            .alice
            .manager
            .rekey(&alice_id)
            .expect("Alice may rekey");
        pair.route(Side::Alice, out);
        if round < 2 {
            assert!(pair.bob.terminations().is_empty(), "round {round}");
        }
    }
    assert_eq!(
        pair.bob.terminations(),
        [&esession::TerminationReason::IntegrityFailure],
        "the third <key/> within a minute"
    );
}

#[test]
fn forged_session_gone_errors_end_sessions_only_twice_a_minute() {
    let mut pair = Pair::new(316);
    let threads: Vec<String> = (0..3).map(|_| pair.handshake()).collect();
    pair.alice.clear();
    for thread in &threads {
        let forged: Element = format!(
            "<message xmlns='jabber:client' type='error' from='{BOB}' to='{ALICE}'>\
             <thread>{thread}</thread><error type='cancel'>\
             <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
        )
        .parse()
        .unwrap();
        pair.alice.receive(&forged);
    }
    assert_eq!(
        pair.alice.terminations(),
        [
            &esession::TerminationReason::PeerLostSession,
            &esession::TerminationReason::PeerLostSession
        ],
        "the third is ignored within the minute"
    );
    assert!(pair.session_info(Side::Alice, &threads[2]).is_some());
}

#[test]
fn offers_leaving_only_expensive_groups_are_answered_twice_a_minute() {
    let bob_config = Config {
        groups: Config::default().groups,
        ..config(BOB)
    };
    let (mut bob, pairs) = counted_bob(bob_config, 317);
    // Group 16 (4096 bits) only: above the default 3072-bit threshold.
    let mut alice = alice_offering(vec![ModpGroup::Group16], 318);
    for _ in 0..3 {
        bob.receive(&offer(&mut alice));
    }
    assert_eq!(
        *pairs.lock().unwrap(),
        [ModpGroup::Group16, ModpGroup::Group16],
        "the third is refused before any key pair"
    );
    assert_eq!(limit_failures(&bob), [LimitKind::ExpensiveGroup]);
    let refusal = bob.sent.last().unwrap();
    assert_eq!(refusal.attr("type"), Some("error"));
    // A cheap group is never limited this way.
    let mut alice = alice_offering(vec![ModpGroup::Group14], 319);
    bob.receive(&offer(&mut alice));
    assert_eq!(pairs.lock().unwrap().len(), 3);
}

fn zlib_only(own_jid: &str) -> Config {
    Config {
        compression: vec![CompressionAlgorithm::Zlib],
        ..config(own_jid)
    }
}

#[test]
fn by_default_a_peer_cannot_make_us_compress() {
    // Issue 11: an offer that allows only zlib is refused by the default
    // policy (`none` only), so no zlib context is ever made.
    let bob_config = Config {
        compression: Config::default().compression,
        ..config(BOB)
    };
    let mut pair = Pair::with_configs(zlib_only(ALICE), bob_config, 321);
    let (_, out) = pair.alice.manager.start_session(BOB).unwrap();
    pair.route(Side::Alice, out);
    assert!(pair.bob.established().is_empty());
    assert!(pair.alice.established().is_empty());
    let refusal = pair.bob.sent.first().expect("Bob refuses");
    assert_eq!(refusal.attr("type"), Some("error"));
    assert!(
        esession_wire::xml::serialize(refusal, "")
            .unwrap()
            .contains("not-acceptable"),
        "not-acceptable"
    );
}

#[test]
fn zlib_sessions_are_capped_in_all() {
    let bob_config = Config {
        compression: vec![CompressionAlgorithm::None, CompressionAlgorithm::Zlib],
        limits: esession::Limits {
            compressed_sessions_total: 1,
            ..esession::Limits::default()
        },
        ..config(BOB)
    };
    let mut pair = Pair::with_configs(zlib_only(ALICE), bob_config, 322);
    let first = pair.handshake();
    assert_eq!(
        pair.info(Side::Bob).compression,
        CompressionAlgorithm::Zlib,
        "the first one is within the cap"
    );
    pair.bob.clear();
    pair.alice.clear();
    let (_, out) = pair.alice.manager.start_session(BOB).unwrap();
    pair.route(Side::Alice, out);
    assert_eq!(limit_failures(&pair.bob), [LimitKind::CompressedSessions]);
    let refusal = pair.bob.sent.first().expect("Bob refuses");
    let text = esession_wire::xml::serialize(refusal, "").unwrap();
    assert!(
        text.contains("not-acceptable") && text.contains("compress"),
        "{text}"
    );
    // The refusal names the field (XEP-0155) but echoes none of the offer.
    assert!(
        !text.contains("<value") && !text.contains("<option"),
        "no echo: {text}"
    );
    assert!(pair.session_info(Side::Bob, &first).is_some());
}

fn from(stanza: &Element, jid: &str) -> Element {
    let mut stanza = stanza.clone();
    set_attr(&mut stanza, "from", jid);
    stanza
}

#[test]
fn offers_within_the_cap_cannot_complete_beyond_it() {
    // Two offers arrive while no session exists, so both are answered; the
    // cap is checked again at each completion, and the second is refused.
    let bob_config = Config {
        limits: esession::Limits {
            sessions_per_peer: 1,
            ..esession::Limits::default()
        },
        ..config(BOB)
    };
    let mut alice = Party::new(ALICE, config(ALICE), 331);
    let mut bob = Party::new(BOB, bob_config, 332);
    let offers = [offer(&mut alice), offer(&mut alice)];
    let answers: Vec<Element> = offers.iter().map(|o| bob.receive(o).remove(0)).collect();
    assert!(answers.iter().all(|a| a.attr("type") != Some("error")));
    let completions: Vec<Element> = answers
        .iter()
        .map(|a| alice.receive(&from(a, BOB)).remove(0))
        .collect();
    let fourth = bob.receive(&from(&completions[0], ALICE));
    assert!(fourth.iter().all(|s| s.attr("type") != Some("error")));
    let refusal = bob.receive(&from(&completions[1], ALICE));
    assert_eq!(refusal.len(), 1);
    let text = esession_wire::xml::serialize(&refusal[0], "").unwrap();
    assert!(text.contains("service-unavailable"), "{text}");
    assert_eq!(limit_failures(&bob), [LimitKind::SessionsPerPeer]);
    let established = bob
        .events
        .iter()
        .filter(|e| matches!(e, Event::Established { .. }))
        .count();
    assert_eq!(established, 1);
}

#[test]
fn our_own_start_beyond_the_cap_is_refused_with_the_reason() {
    let alice_config = Config {
        limits: esession::Limits {
            sessions_per_peer: 1,
            ..esession::Limits::default()
        },
        ..config(ALICE)
    };
    let mut pair = Pair::with_configs(alice_config, config(BOB), 333);
    pair.handshake();
    let refused = pair.alice.manager.start_session(BOB);
    assert!(matches!(
        refused,
        Err(Error::LimitReached(LimitKind::SessionsPerPeer))
    ));
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("until one ends"), "{message}");
}

#[test]
fn at_the_zlib_cap_our_own_offers_leave_zlib_out() {
    let zlib_first = Config {
        compression: vec![CompressionAlgorithm::Zlib, CompressionAlgorithm::None],
        limits: esession::Limits {
            compressed_sessions_total: 1,
            ..esession::Limits::default()
        },
        ..config(ALICE)
    };
    let mut pair = Pair::with_configs(zlib_first, zlib_only(BOB), 334);
    pair.handshake();
    assert_eq!(
        pair.info(Side::Alice).compression,
        CompressionAlgorithm::Zlib
    );
    let (_, out) = pair.alice.manager.start_session(BOB).unwrap();
    let offer = esession_wire::xml::serialize(&out.stanzas[0], "").unwrap();
    assert!(offer.contains("compress"), "{offer}");
    assert!(!offer.contains("zlib"), "zlib left out: {offer}");

    // With zlib as the only method, no offer is made, and the reason is given.
    let mut pair = Pair::with_configs(
        Config {
            limits: esession::Limits {
                compressed_sessions_total: 1,
                ..esession::Limits::default()
            },
            ..zlib_only(ALICE)
        },
        zlib_only(BOB),
        335,
    );
    pair.handshake();
    assert!(matches!(
        pair.alice.manager.start_session(BOB),
        Err(Error::LimitReached(LimitKind::CompressedSessions))
    ));
}

#[test]
fn a_stanza_whose_sender_is_not_a_jid_is_dropped() {
    // Issue 12: sessions are keyed by typed JIDs; a `from` that is not a JID
    // (RFC 7622) gets nothing: no answer, no event, no state.
    let mut alice = Party::new(ALICE, config(ALICE), 341);
    let mut bob = Party::new(BOB, config(BOB), 342);
    let mut stanza = offer(&mut alice);
    set_attr(&mut stanza, "from", "alice@@example.org/pda");
    assert!(bob.receive(&stanza).is_empty());
    assert!(bob.events.is_empty(), "{:?}", bob.events);
    // And our own start towards a non-JID is refused with the reason.
    assert!(matches!(
        bob.manager.start_session("not a jid@@"),
        Err(Error::InvalidInput("peer JID"))
    ));
}
