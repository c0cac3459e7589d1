//! The 3-message negotiation (SIGMA-I, XEP-0116 §4.2-4.6): e in `dhkeys`
//! (AMB-07), Bob's identity appended to his answer (ESN-15, ESN-23), Alice's
//! completing it, maybe with encrypted content (ESN-29, AMB-44); never `none`
//! (ESN-03); a 4-message-only responder refuses (ESN-08).

use std::sync::Arc;

use esession::ssn::ErrorCondition;
use esession::{Config, Error, Event, FlowPolicy, PubkeyMethod, TerminationReason};
use esession_crypto::SigningKey;
use esession_wire::minidom::Element;

use crate::harness::{
    ALICE, BOB, Pair, Side, dsa_key, field, field_values, field_vars, fingerprint, flip_base64,
    is_encrypted, keyed_config, manager, map_values, rsa_key, set_values, stanza_error,
};

use PubkeyMethod::{Hash, Key, None as NoKey};

fn three(mut config: Config) -> Config {
    config.initiate_flow = FlowPolicy::ThreeMessage;
    config.accept_three_message = true;
    config
}

fn three_pair(
    seed: u64,
    alice_key: Arc<SigningKey>,
    bob_key: Arc<SigningKey>,
    methods: &[PubkeyMethod],
) -> Pair {
    let mut pair = Pair::with_configs(
        three(keyed_config(
            ALICE,
            Some(alice_key.clone()),
            methods,
            methods,
        )),
        three(keyed_config(BOB, Some(bob_key.clone()), methods, methods)),
        seed,
    );
    pair.alice.know_key(BOB, &bob_key, true);
    pair.bob.know_key(ALICE, &alice_key, true);
    pair
}

fn negotiation_stanzas(pair: &Pair) -> Vec<(Side, Element)> {
    pair.log
        .iter()
        .filter(|(_, s)| crate::harness::form(s).is_some())
        .cloned()
        .collect()
}

fn three_message_with(method: PubkeyMethod, alice_key: Arc<SigningKey>, bob_key: Arc<SigningKey>) {
    let mut pair = three_pair(800, alice_key.clone(), bob_key.clone(), &[method]);
    let thread = pair.handshake();
    let stanzas = negotiation_stanzas(&pair);
    assert_eq!(
        stanzas.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [Side::Alice, Side::Bob, Side::Alice],
        "three messages"
    );
    let (offer, answer, completion) = (&stanzas[0].1, &stanzas[1].1, &stanzas[2].1);
    // AMB-07: e in dhkeys, no dhhashes, no sas_algs.
    let vars = field_vars(offer);
    assert!(vars.contains(&"dhkeys".to_owned()) && !vars.contains(&"dhhashes".to_owned()));
    assert!(!vars.contains(&"sas_algs".to_owned()));
    assert_eq!(
        field_values(&field(offer, "init_pubkey").unwrap()),
        [method.value()]
    );
    // ESN-23: Bob's answer ends with identity and mac.
    let answer_vars = field_vars(answer);
    assert_eq!(&answer_vars[answer_vars.len() - 2..], ["identity", "mac"]);
    // ESN-29: FORM_TYPE, accept, nonce, identity, mac.
    assert_eq!(
        field_vars(completion),
        ["FORM_TYPE", "accept", "nonce", "identity", "mac"]
    );
    let (alice, bob) = (pair.info(Side::Alice), pair.info(Side::Bob));
    assert!(alice.three_message && bob.three_message);
    assert!(alice.sas.is_empty() && !alice.sas_reminder);
    assert_eq!(alice.peer_key.unwrap().fingerprint, fingerprint(&bob_key));
    assert_eq!(bob.peer_key.unwrap().fingerprint, fingerprint(&alice_key));
    pair.chat(Side::Alice, &thread, "over SIGMA-I");
    pair.chat(Side::Bob, &thread, "reply");
    pair.chat(Side::Alice, &thread, "again");
    assert_eq!(pair.bob.bodies(), ["over SIGMA-I", "again"]);
    assert_eq!(pair.alice.bodies(), ["reply"]);
}

#[test]
fn three_messages_with_rsa_keys() {
    three_message_with(Key, rsa_key(0), rsa_key(1));
}

#[test]
fn three_messages_with_dsa_keys() {
    three_message_with(Key, dsa_key(0), dsa_key(1));
}

#[test]
fn three_messages_with_rsa_fingerprints() {
    three_message_with(Hash, rsa_key(0), rsa_key(1));
}

#[test]
fn three_messages_with_dsa_fingerprints() {
    three_message_with(Hash, dsa_key(0), dsa_key(1));
}

#[test]
fn services_get_three_messages_and_clients_four() {
    // ESN-03: the policy by peer kind.
    let config = keyed_config(ALICE, Some(rsa_key(0)), &[Key], &[Key]);
    assert_eq!(config.initiate_flow, FlowPolicy::ByPeerKind);
    let mut alice = manager(config, 801);
    let (_, out) = alice.start_session("pubsub.example.com").unwrap();
    assert!(field(&out.stanzas[0], "dhkeys").is_some());
    let (_, out) = alice.start_session(BOB).unwrap();
    assert!(field(&out.stanzas[0], "dhhashes").is_some());
    // Without keys a service gets 4 messages: 3 would need `none` (ESN-03).
    let mut keyless = manager(crate::harness::config(ALICE), 802);
    let (_, out) = keyless.start_session("pubsub.example.com").unwrap();
    assert!(field(&out.stanzas[0], "dhhashes").is_some());
    // Forcing 3 messages without keys is an API error.
    let mut forced = manager(three(crate::harness::config(ALICE)), 803);
    assert!(matches!(
        forced.start_session(BOB),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn a_four_message_responder_refuses_a_real_three_message_offer() {
    // ESN-08: feature-not-implemented naming dhkeys.
    let mut bob = keyed_config(BOB, Some(rsa_key(1)), &[Key], &[Key]);
    bob.accept_three_message = false;
    let mut pair = Pair::with_configs(
        three(keyed_config(ALICE, Some(rsa_key(0)), &[Key], &[Key])),
        bob,
        804,
    );
    pair.negotiate_with(|_, _| {});
    let errors = pair.error_stanzas();
    assert_eq!(errors.len(), 1);
    let error = stanza_error(errors[0].2).unwrap();
    assert_eq!(error.condition, Some(ErrorCondition::FeatureNotImplemented));
    assert_eq!(error.fields, ["dhkeys"]);
}

#[test]
fn none_is_refused_in_a_three_message_offer() {
    // ESN-03: a 3-message offer with `none` gets not-acceptable on the field.
    for var in ["resp_pubkey", "init_pubkey"] {
        let mut pair = three_pair(805, rsa_key(0), rsa_key(1), &[Key]);
        pair.negotiate_with(|n, stanza| {
            if n == 0 {
                set_values(stanza, var, &["key", "none"], true);
            }
        });
        let errors = pair.error_stanzas();
        assert_eq!(errors.len(), 1, "{var}");
        let error = stanza_error(errors[0].2).unwrap();
        assert_eq!(error.condition, Some(ErrorCondition::NotAcceptable));
        assert_eq!(error.fields, [var]);
    }
    // And we never offer it.
    let mut alice = manager(
        three(keyed_config(
            ALICE,
            Some(rsa_key(0)),
            &[Key, NoKey],
            &[Key, NoKey],
        )),
        806,
    );
    let (_, out) = alice.start_session(BOB).unwrap();
    assert_eq!(
        field_values(&field(&out.stanzas[0], "init_pubkey").unwrap()),
        ["key"]
    );
    assert_eq!(
        field_values(&field(&out.stanzas[0], "resp_pubkey").unwrap()),
        ["key"]
    );
}

#[test]
fn bob_checks_the_range_of_e() {
    // ESN-12: 1 < e < p-1, else feature-not-implemented.
    let mut pair = three_pair(807, rsa_key(0), rsa_key(1), &[Key]);
    pair.negotiate_with(|n, stanza| {
        if n == 0 {
            map_values(stanza, "dhkeys", |_, _| "AQ==".to_owned());
        }
    });
    let errors = pair.error_stanzas();
    assert_eq!(errors.len(), 1);
    let error = stanza_error(errors[0].2).unwrap();
    assert_eq!(error.condition, Some(ErrorCondition::FeatureNotImplemented));
    assert_eq!(error.fields, ["dhkeys"]);
}

#[test]
fn tampering_with_dhkeys_identity_or_mac_fails_the_negotiation() {
    // ESN-27 (Alice checks Bob's identity in message 2), ESN-32 (Bob checks
    // Alice's in message 3), ESN-26 (d's range).
    let cases: [(usize, &str, Option<&str>, Side, ErrorCondition); 7] = [
        // Another e: Bob's keys differ from Alice's; his M_B fails at her.
        (
            0,
            "dhkeys",
            None,
            Side::Alice,
            ErrorCondition::FeatureNotImplemented,
        ),
        (
            1,
            "dhkeys",
            None,
            Side::Alice,
            ErrorCondition::FeatureNotImplemented,
        ),
        (
            1,
            "dhkeys",
            Some("AQ=="),
            Side::Alice,
            ErrorCondition::NotAcceptable,
        ),
        (
            1,
            "identity",
            None,
            Side::Alice,
            ErrorCondition::FeatureNotImplemented,
        ),
        (
            1,
            "mac",
            None,
            Side::Alice,
            ErrorCondition::FeatureNotImplemented,
        ),
        (
            2,
            "identity",
            None,
            Side::Bob,
            ErrorCondition::FeatureNotImplemented,
        ),
        (
            2,
            "mac",
            None,
            Side::Bob,
            ErrorCondition::FeatureNotImplemented,
        ),
    ];
    for (n, var, value, by, condition) in cases {
        let mut pair = three_pair(808, rsa_key(0), rsa_key(1), &[Key]);
        pair.negotiate_with(|i, stanza| {
            if i == n {
                map_values(stanza, var, |j, old| match (j, value) {
                    (0, Some(v)) => v.to_owned(),
                    (0, None) => flip_base64(old),
                    _ => old.to_owned(),
                });
            }
        });
        assert!(
            pair.party(by).established().is_empty(),
            "{var} of message {}",
            n + 1
        );
        assert!(
            pair.bob.established().is_empty(),
            "{var}: Bob never accepted"
        );
        let errors = pair.error_stanzas();
        assert_eq!(errors.len(), 1, "{var} of message {}", n + 1);
        assert_eq!(errors[0].1, by, "{var}");
        assert_eq!(
            stanza_error(errors[0].2).unwrap().condition,
            Some(condition),
            "{var}"
        );
    }
}

fn hello() -> Element {
    esession_wire::xml::parse_document(
        "<message xmlns='jabber:client' type='chat'><body>bundled</body></message>",
    )
    .unwrap()
}

#[test]
fn content_bundled_with_the_completion_is_delivered_after_the_identity() {
    // ESN-29, AMB-44.
    let mut pair = three_pair(809, rsa_key(0), rsa_key(1), &[Key]);
    let (id, out) = pair
        .alice
        .manager
        .start_session_with_message(BOB, &hello(), false)
        .unwrap();
    pair.route(Side::Alice, out);
    let completion = &negotiation_stanzas(&pair)[2].1;
    assert!(
        is_encrypted(completion),
        "the <c/> rides with the completion"
    );
    assert_eq!(pair.bob.bodies(), ["bundled"]);
    // Established first, then the message.
    let order: Vec<bool> = pair
        .bob
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Established { .. } => Some(true),
            Event::MessageReceived { .. } => Some(false),
            _ => None,
        })
        .collect();
    assert_eq!(order, [true, false]);
    pair.chat(Side::Bob, &id.thread, "got it");
    assert_eq!(pair.alice.bodies(), ["got it"]);
}

#[test]
fn a_one_shot_completion_ends_the_session_at_once() {
    // ESN-29: `terminate` in the completion form.
    let mut pair = three_pair(810, rsa_key(0), rsa_key(1), &[Key]);
    let (id, out) = pair
        .alice
        .manager
        .start_session_with_message(BOB, &hello(), true)
        .unwrap();
    pair.route(Side::Alice, out);
    assert!(field_vars(&negotiation_stanzas(&pair)[2].1).contains(&"terminate".to_owned()));
    assert_eq!(pair.bob.bodies(), ["bundled"]);
    assert_eq!(pair.bob.terminations(), [&TerminationReason::PeerRequest]);
    assert_eq!(
        pair.alice.terminations(),
        [&TerminationReason::LocalRequest]
    );
    assert!(!pair.alice.manager.is_established(&id));
    assert!(
        pair.bob
            .manager
            .session_info(&Pair::id(Side::Bob, &id.thread))
            .is_none()
    );
}

#[test]
fn bundled_content_with_a_bad_identity_is_not_delivered() {
    // ESN-32: "ignore any encrypted content"; nothing unauthenticated is delivered.
    let mut pair = three_pair(811, rsa_key(0), rsa_key(1), &[Key]);
    let (_, out) = pair
        .alice
        .manager
        .start_session_with_message(BOB, &hello(), false)
        .unwrap();
    pair.route_with(Side::Alice, out, |n, stanza| {
        if n == 2 {
            map_values(stanza, "identity", |_, old| flip_base64(old));
        }
    });
    assert!(pair.bob.established().is_empty());
    assert!(pair.bob.messages().is_empty());
    assert_eq!(
        stanza_error(pair.error_stanzas()[0].2).unwrap().condition,
        Some(ErrorCondition::FeatureNotImplemented)
    );
}

#[test]
fn content_cannot_be_bundled_with_four_messages() {
    let mut alice = manager(keyed_config(ALICE, Some(rsa_key(0)), &[Key], &[Key]), 812);
    assert!(matches!(
        alice.start_session_with_message(BOB, &hello(), false),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn unknown_keys_fail_three_messages_too_unless_overridden() {
    // AMB-43 in SIGMA-I: Alice cannot confirm Bob's key.
    for override_ in [false, true] {
        let mut alice = three(keyed_config(ALICE, Some(rsa_key(0)), &[Key], &[Key]));
        alice.dangerously_accept_unverified_keys = override_;
        let bob = three(keyed_config(BOB, Some(rsa_key(1)), &[Key], &[Key]));
        let mut pair = Pair::with_configs(alice, bob, 813);
        pair.bob.know_key(ALICE, &rsa_key(0), true);
        pair.negotiate_with(|_, _| {});
        assert_eq!(!pair.alice.established().is_empty(), override_);
        assert_eq!(!pair.bob.established().is_empty(), override_);
        assert!(matches!(
            pair.alice.alerts().as_slice(),
            [
                esession::SecurityAlert::NewPeerKey(_),
                esession::SecurityAlert::UnverifiedPeerKey(_)
            ]
        ));
        if override_ {
            assert!(!pair.info(Side::Alice).authenticated_by_key());
        }
    }
}

#[test]
fn a_replayed_three_message_negotiation_is_refused() {
    // ESN-48: Bob's fresh N_B makes the replayed completion fail; nothing delivered.
    let mut pair = three_pair(814, rsa_key(0), rsa_key(1), &[Key]);
    let (_, out) = pair
        .alice
        .manager
        .start_session_with_message(BOB, &hello(), false)
        .unwrap();
    pair.route(Side::Alice, out);
    let sent: Vec<Element> = negotiation_stanzas(&pair)
        .into_iter()
        .filter(|(s, _)| *s == Side::Alice)
        .map(|(_, st)| st)
        .collect();
    let mut replay = three_pair(815, rsa_key(0), rsa_key(1), &[Key]);
    replay.deliver(Side::Bob, &sent[0]);
    replay.deliver(Side::Bob, &sent[1]);
    assert!(replay.bob.established().is_empty());
    assert!(replay.bob.messages().is_empty());
    assert!(matches!(
        replay.bob.failures().as_slice(),
        [Error::Refused {
            condition: ErrorCondition::FeatureNotImplemented,
            ..
        }]
    ));
}
