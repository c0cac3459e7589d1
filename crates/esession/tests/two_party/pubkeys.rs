//! Public-key identification in the 4-message negotiation: `key`, `hash` and
//! `none` (ESN-14, ESN-17..22, ESN-27/28, ESN-32, ESN-55) with RSA and DSA; the
//! trust decisions and key alerts (ESN-49..52, AMB-43); Mallory with her own key.

use std::sync::Arc;

use esession::ssn::ErrorCondition;
use esession::{Error, PubkeyMethod, SecurityAlert, SessionInfo};
use esession_crypto::SigningKey;
use esession_wire::minidom::Element;

use crate::harness::{
    ALICE, BOB, Pair, Side, field, field_values, fingerprint, flip_base64, keyed_config,
    map_values, rsa_key, stanza_error,
};

use PubkeyMethod::{Hash, Key, None as NoKey};

/// Alice and Bob with the given keys and identification policies, each
/// knowing (and having verified) the other's key when `known`.
fn keyed_pair(
    seed: u64,
    alice_key: Option<Arc<SigningKey>>,
    bob_key: Option<Arc<SigningKey>>,
    methods: (&[PubkeyMethod], &[PubkeyMethod]),
    known: bool,
) -> Pair {
    let (own, peer) = methods;
    let mut pair = Pair::with_configs(
        keyed_config(ALICE, alice_key.clone(), own, peer),
        keyed_config(BOB, bob_key.clone(), own, peer),
        seed,
    );
    if known {
        if let Some(k) = &bob_key {
            pair.alice.know_key(BOB, k, true);
        }
        if let Some(k) = &alice_key {
            pair.bob.know_key(ALICE, k, true);
        }
    }
    pair
}

/// The value of `var` in the first stanza `side` sent that has it.
fn sent_value(pair: &Pair, side: Side, var: &str) -> Vec<String> {
    pair.log
        .iter()
        .filter(|(s, _)| *s == side)
        .find_map(|(_, stanza)| field(stanza, var))
        .map(|f| field_values(&f))
        .unwrap_or_default()
}

/// Both established with the peer's verified key; messages flow both ways.
fn assert_authenticated(
    pair: &mut Pair,
    thread: &str,
    alice_key: &SigningKey,
    bob_key: &SigningKey,
) {
    let (alice, bob) = (pair.info(Side::Alice), pair.info(Side::Bob));
    let key_of = |info: &SessionInfo| info.peer_key.clone().expect("a peer key");
    assert_eq!(key_of(&alice).fingerprint, fingerprint(bob_key));
    assert_eq!(key_of(&bob).fingerprint, fingerprint(alice_key));
    assert!(alice.authenticated_by_key() && bob.authenticated_by_key());
    assert_eq!(key_of(&alice).algorithm, bob_key.algorithm());
    // ESN-34: a verified key makes the SAS reminder unnecessary.
    assert!(!alice.sas_reminder && !bob.sas_reminder);
    assert!(pair.alice.alerts().is_empty(), "{:?}", pair.alice.alerts());
    assert!(pair.bob.alerts().is_empty(), "{:?}", pair.bob.alerts());
    pair.chat(Side::Alice, thread, "signed hello");
    pair.chat(Side::Bob, thread, "signed reply");
    assert_eq!(pair.bob.bodies(), ["signed hello"]);
    assert_eq!(pair.alice.bodies(), ["signed reply"]);
}

fn four_message_with(method: PubkeyMethod, alice_key: Arc<SigningKey>, bob_key: Arc<SigningKey>) {
    let methods: &[PubkeyMethod] = &[method];
    let mut pair = keyed_pair(
        700,
        Some(alice_key.clone()),
        Some(bob_key.clone()),
        (methods, methods),
        true,
    );
    let thread = pair.handshake();
    // ESN-14: Bob's answer names the methods and the signature algorithm.
    assert_eq!(
        sent_value(&pair, Side::Bob, "init_pubkey"),
        [method.value()]
    );
    assert_eq!(
        sent_value(&pair, Side::Bob, "resp_pubkey"),
        [method.value()]
    );
    assert_eq!(
        sent_value(&pair, Side::Bob, "sign_algs"),
        [bob_key.algorithm().uri()]
    );
    assert_eq!(pair.info(Side::Alice).peer_identification, method);
    assert_eq!(pair.info(Side::Bob).own_identification, method);
    assert!(
        !pair.info(Side::Alice).sas.is_empty(),
        "4 messages keep the SAS"
    );
    assert_authenticated(&mut pair, &thread, &alice_key, &bob_key);
}

#[test]
fn key_identification_with_rsa_authenticates_both_sides() {
    // ESN-17, ESN-20, ESN-27, ESN-32, ESN-55 (RSA).
    four_message_with(Key, rsa_key(0), rsa_key(1));
}

#[test]
fn key_identification_with_dsa_authenticates_both_sides() {
    // ESN-55 (DSA, SHOULD).
    four_message_with(Key, crate::harness::dsa_key(0), crate::harness::dsa_key(1));
}

#[test]
fn hash_identification_with_rsa_uses_the_stored_keys() {
    // ESN-21, AMB-16: fingerprints instead of keys; mac/signature over the full key.
    four_message_with(Hash, rsa_key(0), rsa_key(1));
}

#[test]
fn hash_identification_with_dsa_uses_the_stored_keys() {
    four_message_with(Hash, crate::harness::dsa_key(0), crate::harness::dsa_key(1));
}

#[test]
fn hash_is_preferred_once_the_peers_key_is_stored() {
    // XEP-0116 §4.3 note: with the key at hand, ask for the fingerprint.
    let both: &[PubkeyMethod] = &[Key, Hash];
    let mut pair = keyed_pair(701, Some(rsa_key(0)), Some(rsa_key(1)), (both, both), true);
    let (_, out) = pair.alice.manager.start_session(BOB).unwrap();
    let offer = pair.alice.absorb(out).remove(0);
    assert_eq!(
        field_values(&field(&offer, "resp_pubkey").unwrap()),
        ["hash", "key"]
    );
    // Without a stored key, `hash` is not even offered.
    let mut fresh = keyed_pair(702, Some(rsa_key(0)), Some(rsa_key(1)), (both, both), false);
    let (_, out) = fresh.alice.manager.start_session(BOB).unwrap();
    let offer = fresh.alice.absorb(out).remove(0);
    assert_eq!(
        field_values(&field(&offer, "resp_pubkey").unwrap()),
        ["key"]
    );
    assert_eq!(
        field_values(&field(&offer, "sign_algs").unwrap())[0],
        esession_crypto::sign::RSA_SHA256_URI
    );
}

#[test]
fn mixed_identification_key_for_alice_none_for_bob() {
    // ESN-14/17: each direction chooses its own method; `none` means pubKey = "".
    let mut pair = Pair::with_configs(
        keyed_config(ALICE, Some(rsa_key(0)), &[Key], &[NoKey]),
        keyed_config(BOB, None, &[NoKey], &[Key]),
        703,
    );
    pair.bob.know_key(ALICE, &rsa_key(0), true);
    pair.handshake();
    let (alice, bob) = (pair.info(Side::Alice), pair.info(Side::Bob));
    assert_eq!(bob.peer_key.unwrap().fingerprint, fingerprint(&rsa_key(0)));
    assert_eq!(alice.peer_key, None);
    assert_eq!(alice.peer_identification, NoKey);
    assert!(alice.sas_reminder, "Bob is authenticated by nothing yet");
}

#[test]
fn keyless_offers_are_unchanged_and_carry_no_sign_algs() {
    // ESN-04: sign_algs is omitted when both pubkey fields are fixed to none.
    let mut pair = Pair::new(704);
    pair.handshake();
    assert!(sent_value(&pair, Side::Alice, "sign_algs").is_empty());
    assert_eq!(sent_value(&pair, Side::Alice, "init_pubkey"), ["none"]);
    assert_eq!(pair.info(Side::Alice).peer_key, None);
}

/// Alice accepts only `key` from Bob; Bob's key is unknown to her.
fn unknown_key_pair(seed: u64, override_: bool) -> Pair {
    let mut alice = keyed_config(ALICE, Some(rsa_key(0)), &[Key], &[Key]);
    alice.dangerously_accept_unverified_keys = override_;
    let bob = keyed_config(BOB, Some(rsa_key(1)), &[Key], &[Key]);
    let mut pair = Pair::with_configs(alice, bob, seed);
    pair.bob.know_key(ALICE, &rsa_key(0), true);
    pair
}

#[test]
fn an_unknown_key_fails_the_negotiation_by_default() {
    // AMB-43, ESN-27: unconfirmed key -> feature-not-implemented; alerts shown (ESN-49).
    let mut pair = unknown_key_pair(705, false);
    pair.negotiate_with(|_, _| {});
    assert!(pair.alice.established().is_empty());
    let errors = pair.error_stanzas();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].1, Side::Alice);
    let error = stanza_error(errors[0].2).unwrap();
    assert_eq!(error.condition, Some(ErrorCondition::FeatureNotImplemented));
    let bob_key = fingerprint(&rsa_key(1));
    match pair.alice.alerts().as_slice() {
        [
            SecurityAlert::NewPeerKey(new),
            SecurityAlert::UnverifiedPeerKey(unverified),
        ] => {
            assert_eq!(new.fingerprint, bob_key);
            assert!(!unverified.verified);
        }
        other => panic!("alerts: {other:?}"),
    }
    // ESN-49: the key is remembered anyway, for the user to verify later.
    let stored = pair
        .alice
        .manager
        .trust()
        .peer_keys(Some("bob@example.com"))
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].fingerprint, bob_key);
    assert!(!stored[0].verified);
}

#[test]
fn the_dangerous_override_accepts_an_unknown_key_as_unauthenticated() {
    // AMB-43: encrypted but not authenticated, and flagged so.
    let mut pair = unknown_key_pair(706, true);
    let thread = pair.handshake();
    let info = pair.info(Side::Alice);
    let key = info.peer_key.clone().unwrap();
    assert!(!key.verified && !info.authenticated_by_key());
    assert!(info.sas_reminder);
    assert!(matches!(
        info.key_alerts.as_slice(),
        [
            SecurityAlert::NewPeerKey(_),
            SecurityAlert::UnverifiedPeerKey(_)
        ]
    ));
    assert_eq!(pair.alice.alerts().len(), 2);
    pair.chat(Side::Bob, &thread, "still encrypted");
    assert_eq!(pair.alice.bodies(), ["still encrypted"]);
    // Once the user verifies the key, the next session is authenticated.
    pair.alice
        .manager
        .trust_mut()
        .set_peer_key_verified(&key.fingerprint, true)
        .unwrap();
    pair.alice.clear();
    pair.handshake();
    assert!(pair.info(Side::Alice).authenticated_by_key());
    assert!(pair.alice.alerts().is_empty());
}

#[test]
fn a_changed_key_for_a_jid_is_an_alert_and_fails() {
    // ESN-51: Bob's JID shows another key (his new one, or Mallory's).
    let mut pair = unknown_key_pair(707, false);
    pair.alice.know_key(BOB, &rsa_key(3), true);
    pair.negotiate_with(|_, _| {});
    assert!(pair.alice.established().is_empty());
    match pair.alice.alerts().as_slice() {
        [
            SecurityAlert::PeerKeyChanged {
                key,
                previous_fingerprints,
            },
            SecurityAlert::UnverifiedPeerKey(_),
        ] => {
            assert_eq!(key.fingerprint, fingerprint(&rsa_key(1)));
            assert_eq!(previous_fingerprints, &[fingerprint(&rsa_key(3))]);
        }
        other => panic!("alerts: {other:?}"),
    }
    assert!(matches!(
        pair.alice.failures().as_slice(),
        [Error::Refused {
            condition: ErrorCondition::FeatureNotImplemented,
            ..
        }]
    ));
}

#[test]
fn a_known_key_under_another_jid_is_an_alert_with_its_petname() {
    // ESN-50, ESN-52: the key was verified for carol; bob@ now shows it.
    let mut pair = unknown_key_pair(708, false);
    pair.alice.know_key("carol@example.net", &rsa_key(1), true);
    pair.alice
        .manager
        .trust_mut()
        .set_peer_key_petname(&fingerprint(&rsa_key(1)), Some("Carol's laptop"))
        .unwrap();
    pair.handshake();
    let info = pair.info(Side::Alice);
    let key = info.peer_key.clone().unwrap();
    assert_eq!(key.petname.as_deref(), Some("Carol's laptop"));
    match pair.alice.alerts().as_slice() {
        [SecurityAlert::PeerKeySeenWithOtherJid { key, other_jids }] => {
            assert_eq!(key.petname.as_deref(), Some("Carol's laptop"));
            assert_eq!(other_jids, &["carol@example.net".to_owned()]);
        }
        other => panic!("alerts: {other:?}"),
    }
    assert_eq!(info.key_alerts.len(), 1);
}

#[test]
fn a_jid_that_had_a_key_and_shows_none_is_an_alert() {
    // ESN-51: "or none".
    let mut pair = Pair::with_configs(
        keyed_config(ALICE, None, &[NoKey], &[Key, NoKey]),
        keyed_config(BOB, None, &[NoKey], &[NoKey]),
        709,
    );
    pair.alice.know_key(BOB, &rsa_key(1), true);
    pair.handshake();
    match pair.alice.alerts().as_slice() {
        [
            SecurityAlert::PeerKeyMissing {
                previous_fingerprints,
            },
        ] => assert_eq!(previous_fingerprints, &[fingerprint(&rsa_key(1))]),
        other => panic!("alerts: {other:?}"),
    }
    assert_eq!(pair.info(Side::Alice).peer_key, None);
}

#[test]
fn the_petname_of_a_known_key_is_reported() {
    // ESN-52.
    let mut pair = keyed_pair(
        710,
        Some(rsa_key(0)),
        Some(rsa_key(1)),
        (&[Key], &[Key]),
        true,
    );
    pair.alice
        .manager
        .trust_mut()
        .set_peer_key_petname(&fingerprint(&rsa_key(1)), Some("Bob"))
        .unwrap();
    pair.handshake();
    assert_eq!(
        pair.info(Side::Alice).peer_key.unwrap().petname.as_deref(),
        Some("Bob")
    );
}

#[test]
fn hash_identification_with_an_unknown_fingerprint_terminates_and_retries_with_key() {
    // ESN-27: Alice holds an old key of Bob's, so she asks for `hash`; Bob
    // now signs with another key: its fingerprint matches nothing. She ends
    // the attempt and offers again asking for the full key ("MAY then request").
    for override_ in [false, true] {
        let both: &[PubkeyMethod] = &[Hash, Key];
        let mut pair = keyed_pair(711, Some(rsa_key(0)), Some(rsa_key(1)), (both, both), false);
        let mut alice = keyed_config(ALICE, Some(rsa_key(0)), both, both);
        alice.dangerously_accept_unverified_keys = override_;
        pair.alice = crate::harness::Party::new(ALICE, alice, 711);
        pair.alice.know_key(BOB, &rsa_key(3), true);
        pair.bob.know_key(ALICE, &rsa_key(0), true);
        let first = pair.negotiate_with(|_, _| {});
        let alerts = pair.alice.alerts();
        assert!(
            matches!(
                alerts.first(),
                Some(SecurityAlert::UnknownKeyFingerprint { .. })
            ),
            "{alerts:?}"
        );
        // The first error is Alice's feature-not-implemented on message 4.
        let errors = pair.error_stanzas();
        assert_eq!(errors[0].1, Side::Alice);
        assert_eq!(
            stanza_error(errors[0].2).unwrap().condition,
            Some(ErrorCondition::FeatureNotImplemented)
        );
        let retry = pair
            .alice
            .events
            .iter()
            .find_map(|e| match e {
                esession::Event::RetryingWithFullKey { failed, session } => {
                    Some((failed.clone(), session.clone()))
                }
                _ => None,
            })
            .expect("a retry");
        assert_eq!(retry.0.thread, first);
        let retry_offer = pair
            .log
            .iter()
            .find(|(side, st)| {
                *side == Side::Alice
                    && crate::harness::thread_of(st) == Some(retry.1.thread.clone())
            })
            .map(|(_, st)| st.clone())
            .unwrap();
        assert_eq!(
            field_values(&field(&retry_offer, "resp_pubkey").unwrap()),
            ["key"]
        );
        // With the full key Bob's new key shows up as a change (ESN-51); it
        // is not verified, so only the override lets the session through.
        assert!(
            alerts
                .iter()
                .any(|a| matches!(a, SecurityAlert::PeerKeyChanged { .. }))
        );
        let established: Vec<String> = pair
            .alice
            .established()
            .iter()
            .map(|(id, _)| id.thread.clone())
            .collect();
        if override_ {
            assert_eq!(established, std::slice::from_ref(&retry.1.thread));
            assert!(!pair.info(Side::Alice).authenticated_by_key());
        } else {
            assert!(established.is_empty());
        }
    }
}

#[test]
fn bob_refuses_an_unknown_fingerprint_from_alice() {
    // ESN-32 with hash: Bob holds an old key of Alice's.
    let both: &[PubkeyMethod] = &[Hash, Key];
    let mut pair = keyed_pair(712, Some(rsa_key(0)), Some(rsa_key(1)), (both, both), false);
    pair.alice.know_key(BOB, &rsa_key(1), true);
    pair.bob.know_key(ALICE, &rsa_key(3), true);
    pair.negotiate_with(|_, _| {});
    assert!(pair.bob.established().is_empty());
    assert!(matches!(
        pair.bob.alerts().first(),
        Some(SecurityAlert::UnknownKeyFingerprint { .. })
    ));
    assert!(pair.bob.messages().is_empty());
}

/// Tampers with one field of the `n`-th stanza.
fn tamper_field(target: usize, var: &'static str) -> impl FnMut(usize, &mut Element) {
    move |n, stanza| {
        if n == target {
            map_values(stanza, var, |_, old| flip_base64(old));
        }
    }
}

#[test]
fn tampered_signed_identities_fail_with_feature_not_implemented() {
    // ESN-27, ESN-32: identity and mac of messages 3 and 4 under `key`.
    for (n, var, by) in [
        (2, "identity", Side::Bob),
        (2, "mac", Side::Bob),
        (3, "identity", Side::Alice),
        (3, "mac", Side::Alice),
    ] {
        let mut pair = keyed_pair(
            713,
            Some(rsa_key(0)),
            Some(rsa_key(1)),
            (&[Key], &[Key]),
            true,
        );
        pair.negotiate_with(tamper_field(n, var));
        assert!(
            pair.party(by).established().is_empty(),
            "{var} of message {}",
            n + 1
        );
        let errors = pair.error_stanzas();
        assert_eq!(errors.len(), 1, "{var}");
        assert_eq!(errors[0].1, by);
        assert_eq!(
            stanza_error(errors[0].2).unwrap().condition,
            Some(ErrorCondition::FeatureNotImplemented)
        );
        assert!(pair.alice.messages().is_empty() && pair.bob.messages().is_empty());
    }
}

#[test]
fn tampered_sign_algs_in_the_offer_is_caught_by_mac_a() {
    // The offer is form_A in mac_A (ESN-28): a sign_algs downgrade is detected.
    let mut pair = keyed_pair(
        714,
        Some(rsa_key(0)),
        Some(rsa_key(1)),
        (&[Key], &[Key]),
        true,
    );
    pair.negotiate_with(|n, stanza| {
        if n == 0 {
            crate::harness::set_values(
                stanza,
                "sign_algs",
                &["http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"],
                true,
            );
        }
    });
    assert!(pair.bob.established().is_empty());
    assert_eq!(pair.error_stanzas()[0].1, Side::Bob);
}

#[test]
fn mallory_with_her_own_key_is_refused_by_both_victims() {
    // A man in the middle cannot sign as Bob or Alice: towards Alice she must
    // show her own key under Bob's JID (ESN-51) and it is not verified (AMB-43).
    for flow in [
        esession::FlowPolicy::FourMessage,
        esession::FlowPolicy::ThreeMessage,
    ] {
        let with_flow = |mut c: esession::Config| {
            c.initiate_flow = flow;
            c.accept_three_message = true;
            c
        };
        // Mallory accepts whatever the victims show.
        let mallory = |c: esession::Config| esession::Config {
            dangerously_accept_unverified_keys: true,
            ..with_flow(c)
        };
        // Alice <-> Mallory posing as Bob.
        let mut towards_alice = Pair::with_configs(
            with_flow(keyed_config(ALICE, Some(rsa_key(0)), &[Key], &[Key])),
            mallory(keyed_config(BOB, Some(rsa_key(2)), &[Key], &[Key])),
            715,
        );
        towards_alice.alice.know_key(BOB, &rsa_key(1), true);
        towards_alice.negotiate_with(|_, _| {});
        assert!(towards_alice.alice.established().is_empty(), "{flow:?}");
        assert!(matches!(
            towards_alice.alice.alerts().first(),
            Some(SecurityAlert::PeerKeyChanged { .. })
        ));
        // Mallory posing as Alice <-> Bob.
        let mut towards_bob = Pair::with_configs(
            mallory(keyed_config(ALICE, Some(rsa_key(2)), &[Key], &[Key])),
            with_flow(keyed_config(BOB, Some(rsa_key(1)), &[Key], &[Key])),
            716,
        );
        towards_bob.bob.know_key(ALICE, &rsa_key(0), true);
        towards_bob.alice.know_key(BOB, &rsa_key(1), true);
        towards_bob.negotiate_with(|_, _| {});
        assert!(towards_bob.bob.established().is_empty(), "{flow:?}");
        assert!(matches!(
            towards_bob.bob.alerts().first(),
            Some(SecurityAlert::PeerKeyChanged { .. })
        ));
        assert!(towards_bob.bob.messages().is_empty());
    }
}

#[test]
fn a_replayed_negotiation_is_refused() {
    // ESN-48, XEP-0116 §9.2: Bob's fresh N_B and d make a replayed completion fail.
    let mut pair = keyed_pair(
        717,
        Some(rsa_key(0)),
        Some(rsa_key(1)),
        (&[Key], &[Key]),
        true,
    );
    pair.handshake();
    let alice_sent: Vec<Element> = pair
        .log
        .iter()
        .filter(|(s, _)| *s == Side::Alice)
        .map(|(_, st)| st.clone())
        .collect();
    pair.bob.clear();
    // The offer is "new" to Bob again only on a thread he forgot: replay it to
    // a fresh Bob with the same keys and trust.
    let mut replay = keyed_pair(
        718,
        Some(rsa_key(0)),
        Some(rsa_key(1)),
        (&[Key], &[Key]),
        true,
    );
    replay.deliver(Side::Bob, &alice_sent[0]);
    replay.deliver(Side::Bob, &alice_sent[1]);
    assert!(replay.bob.established().is_empty());
    assert!(matches!(
        replay.bob.failures().as_slice(),
        [Error::Refused {
            condition: ErrorCondition::FeatureNotImplemented,
            ..
        }]
    ));
}
