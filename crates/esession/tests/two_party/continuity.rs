//! Issue 10: the trust state is always true and loud when it breaks, and
//! nothing is lost in silence. The responder's `Established` carries the
//! retained-secret answer (our initiator proves it at once), a contact that
//! proves none of the secrets we hold raises the broken-chain alarm, `/verify`
//! and `/distrust` take effect at once and persist, receipts travel inside the
//! encryption, and a peer that lost its session says so.

use esession::{Event, SecurityAlert, TerminationReason};

use crate::harness::{
    ALICE, BOB, Pair, Party, Side, TestClock, config, config_prompt_proof, contains_element,
    is_encrypted,
};

fn prompt_pair(seed: u64) -> Pair {
    Pair::with_configs(config_prompt_proof(ALICE), config_prompt_proof(BOB), seed)
}

fn broken_alerts(party: &Party) -> Vec<bool> {
    party
        .alerts()
        .into_iter()
        .filter_map(|a| match a {
            SecurityAlert::RetainedSecretNotProven(chain) => Some(chain.chain_verified),
            _ => None,
        })
        .collect()
}

#[test]
fn the_responder_announces_the_proven_retained_secret_in_established() {
    let mut pair = prompt_pair(101);
    let first = pair.handshake();
    assert!(!pair.info(Side::Bob).authenticated_by_retained_secret);
    pair.alice.clear();
    pair.bob.clear();
    let second = pair.handshake();
    assert_ne!(first, second);
    // One Established at Bob, and it already carries the proof.
    let bob = pair.bob.established();
    assert_eq!(bob.len(), 1, "{:?}", pair.bob.events);
    assert!(bob[0].1.authenticated_by_retained_secret, "{:?}", bob[0].1);
    assert!(!bob[0].1.retained_secret_unproven);
    assert!(pair.bob.retained_proofs().is_empty(), "no separate event");
    assert!(pair.info(Side::Alice).authenticated_by_retained_secret);
    // The proof is a chat state: nothing for the user to read.
    let messages = pair.bob.messages();
    assert_eq!(messages.len(), 1);
    assert!(contains_element(messages[0], "active"));
    assert!(!contains_element(messages[0], "body"));
    assert!(broken_alerts(&pair.alice).is_empty() && broken_alerts(&pair.bob).is_empty());
}

#[test]
fn an_initiator_that_does_not_prove_at_once_is_announced_unproven_after_the_wait() {
    let clock = TestClock::new();
    let alice = config(ALICE); // does not prove at once
    let bob = config_prompt_proof(BOB);
    let mut pair = Pair::with_clock_and_configs(102, &clock, alice, bob);
    pair.handshake();
    pair.alice.clear();
    pair.bob.clear();
    let thread = pair.negotiate_with(|_, _| {});
    assert!(pair.bob.established().is_empty(), "waits for the proof");
    assert!(pair.bob.manager.next_deadline().is_some());
    clock.advance(9);
    let out = pair.bob.manager.poll_timers();
    pair.bob.absorb(out);
    assert!(pair.bob.established().is_empty(), "still within the wait");
    clock.advance(1);
    let out = pair.bob.manager.poll_timers();
    pair.bob.absorb(out);
    let info = pair.info(Side::Bob);
    assert!(info.retained_secret_unproven && !info.authenticated_by_retained_secret);
    // Alice's first message proves it later.
    pair.chat(Side::Alice, &thread, "hello");
    assert_eq!(pair.bob.retained_proofs(), [false]);
    let now = pair.session_info(Side::Bob, &thread).unwrap();
    assert!(now.authenticated_by_retained_secret && !now.retained_secret_unproven);
}

#[test]
fn a_contact_that_lost_its_secrets_raises_the_alarm_on_both_roles() {
    // Bob (responder) keeps his secrets; Alice starts over with an empty store.
    let mut pair = prompt_pair(103);
    let thread = pair.handshake();
    pair.bob
        .manager
        .confirm_sas(&Pair::id(Side::Bob, &thread))
        .unwrap();
    pair.alice = Party::new(ALICE, config_prompt_proof(ALICE), 7);
    pair.bob.clear();
    pair.handshake();
    assert_eq!(broken_alerts(&pair.bob), [true], "verified chain broken");
    let info = pair.info(Side::Bob);
    let broken = info
        .broken_chain
        .clone()
        .expect("broken chain in Established");
    assert!(broken.chain_verified);
    assert_eq!(broken.clients, ["pda"]);
    assert!(info.sas_reminder && !info.is_verified());
    assert!(
        broken_alerts(&pair.alice).is_empty(),
        "first contact for Alice"
    );

    // The other way: Alice (initiator) keeps hers, Bob starts over.
    let mut pair = prompt_pair(104);
    pair.handshake();
    pair.bob = Party::new(BOB, config_prompt_proof(BOB), 8);
    pair.alice.clear();
    pair.handshake();
    assert_eq!(
        broken_alerts(&pair.alice),
        [false],
        "unverified chain broken"
    );
    assert!(pair.info(Side::Alice).broken_chain.is_some());
    // The new chain continues: the next session is quiet again.
    pair.alice.clear();
    pair.bob.clear();
    pair.handshake();
    assert!(broken_alerts(&pair.alice).is_empty() && broken_alerts(&pair.bob).is_empty());
    assert!(pair.info(Side::Bob).authenticated_by_retained_secret);
}

#[test]
fn a_dismissed_reminder_comes_back_when_the_chain_breaks() {
    let mut pair = prompt_pair(105);
    let thread = pair.handshake();
    pair.bob
        .manager
        .dismiss_sas_reminder(&Pair::id(Side::Bob, &thread))
        .unwrap();
    pair.bob.clear();
    pair.handshake();
    assert!(!pair.info(Side::Bob).sas_reminder, "dismissed");
    pair.alice = Party::new(ALICE, config_prompt_proof(ALICE), 9);
    pair.bob.clear();
    pair.handshake();
    assert!(pair.info(Side::Bob).sas_reminder, "broken chain reminds");
}

#[test]
fn verify_takes_effect_at_once_and_distrust_revokes_for_the_next_session() {
    let mut pair = prompt_pair(106);
    let thread = pair.handshake();
    let id = Pair::id(Side::Alice, &thread);
    assert!(
        !pair
            .session_info(Side::Alice, &thread)
            .unwrap()
            .is_verified()
    );
    pair.alice.manager.confirm_sas(&id).unwrap();
    let now = pair.session_info(Side::Alice, &thread).unwrap();
    assert!(now.is_verified() && now.sas_confirmed && !now.sas_reminder);
    pair.bob
        .manager
        .confirm_sas(&Pair::id(Side::Bob, &thread))
        .unwrap();

    // Second session: verified through the chain on both sides.
    pair.alice.clear();
    pair.bob.clear();
    let second = pair.handshake();
    assert!(pair.info(Side::Alice).is_verified());
    assert!(pair.info(Side::Bob).is_verified());

    // Alice distrusts: the session ends (encrypted terminate) and the chain is revoked.
    let out = pair
        .alice
        .manager
        .distrust(&Pair::id(Side::Alice, &second))
        .unwrap();
    assert!(out.stanzas.iter().all(is_encrypted) && !out.stanzas.is_empty());
    pair.route(Side::Alice, out);
    assert_eq!(
        pair.alice.terminations(),
        [&TerminationReason::LocalRequest]
    );
    let secrets = pair
        .alice
        .manager
        .trust()
        .retained_secrets("bob@example.com")
        .unwrap();
    assert!(secrets.iter().all(|s| !s.verified), "{secrets:?}");

    pair.alice.clear();
    pair.bob.clear();
    pair.handshake();
    let info = pair.info(Side::Alice);
    assert!(info.authenticated_by_retained_secret, "continuity kept");
    assert!(!info.retained_chain_verified && info.sas_reminder && !info.is_verified());
}

#[test]
fn receipts_are_encrypted_and_a_resend_is_acknowledged_but_not_shown_twice() {
    let mut pair = prompt_pair(107);
    let thread = pair.handshake();
    pair.alice.clear();
    pair.bob.clear();
    let (id, out) = pair
        .alice
        .manager
        .send_text_with_receipt(&Pair::id(Side::Alice, &thread), "one")
        .unwrap();
    assert!(out.stanzas.iter().all(is_encrypted));
    assert!(
        !contains_element(&out.stanzas[0], "request"),
        "inside <c/> only"
    );
    pair.route(Side::Alice, out);
    assert_eq!(pair.bob.bodies(), ["one"]);
    assert!(
        pair.bob.sent.iter().all(is_encrypted),
        "the receipt is encrypted"
    );
    let delivered: Vec<&str> = pair
        .alice
        .events
        .iter()
        .filter_map(|e| match e {
            Event::MessageDelivered { id, .. } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(delivered, [id.as_str()]);

    // Its receipt was lost, say: the resend under the same id is acked, not shown.
    pair.alice.clear();
    let out = pair
        .alice
        .manager
        .resend_text(&Pair::id(Side::Alice, &thread), "one", &id)
        .unwrap();
    pair.route(Side::Alice, out);
    assert_eq!(pair.bob.bodies(), ["one"], "shown once");
    assert!(
        pair.alice
            .events
            .iter()
            .any(|e| matches!(e, Event::MessageDelivered { id: acked, .. } if *acked == id))
    );
}

#[test]
fn a_contact_that_crashed_before_its_receipt_left_does_not_show_the_resend_twice() {
    let mut pair = prompt_pair(110);
    let thread = pair.handshake();
    pair.alice.clear();
    pair.bob.clear();
    let (id, out) = pair
        .alice
        .manager
        .send_text_with_receipt(&Pair::id(Side::Alice, &thread), "one")
        .unwrap();
    // Bob shows it; his receipt never leaves (he crashes at once).
    pair.route_via(Side::Alice, out, |flight| match flight.from {
        Side::Alice => vec![flight.stanza],
        Side::Bob => vec![],
    });
    assert_eq!(pair.bob.bodies(), ["one"]);
    let alice_bare = ALICE.split('/').next().unwrap();
    // What Bob's trust store recorded: the id, as delivered (issue 10).
    assert_eq!(
        pair.bob
            .manager
            .trust_mut()
            .record_delivery(alice_bare, &id),
        Ok(false),
        "the core records every delivered id in the trust store"
    );
    // Bob restarts on the same store: a new manager, the record kept.
    pair.bob = Party::new(BOB, config_prompt_proof(BOB), 13);
    assert_eq!(
        pair.bob
            .manager
            .trust_mut()
            .record_delivery(alice_bare, &id),
        Ok(true)
    );
    // Alice's next stanza on the old thread: Bob says the session is gone.
    pair.chat(Side::Alice, &thread, "two");
    assert_eq!(
        pair.alice.terminations(),
        [&TerminationReason::PeerLostSession]
    );
    // A new session; Alice re-sends "one" under its id: acknowledged, not shown.
    pair.alice.clear();
    pair.bob.clear();
    let thread = pair.handshake();
    pair.alice.clear();
    let out = pair
        .alice
        .manager
        .resend_text(&Pair::id(Side::Alice, &thread), "one", &id)
        .unwrap();
    pair.route(Side::Alice, out);
    assert!(pair.bob.bodies().is_empty(), "{:?}", pair.bob.bodies());
    assert!(
        pair.alice
            .events
            .iter()
            .any(|e| matches!(e, Event::MessageDelivered { id: acked, .. } if *acked == id)),
        "the resend is acknowledged"
    );
}

#[test]
fn a_peer_that_lost_the_session_says_so_and_the_sender_ends_it() {
    let mut pair = prompt_pair(108);
    let thread = pair.handshake();
    // Bob restarts: same JID, no memory of the session.
    pair.bob = Party::new(BOB, config_prompt_proof(BOB), 11);
    pair.alice.clear();
    pair.chat(Side::Alice, &thread, "lost?");
    assert!(pair.bob.messages().is_empty());
    assert!(matches!(
        &pair.bob.events[..],
        [Event::UnknownSessionStanza { answered: true, .. }]
    ));
    assert_eq!(
        pair.alice.terminations(),
        [&TerminationReason::PeerLostSession]
    );
    assert!(
        pair.alice
            .manager
            .session_info(&Pair::id(Side::Alice, &thread))
            .is_none()
    );
    // A stranger's forged `<c/>` with subscriptions required gets no answer.
    let mut quiet = esession::Config {
        answer_only_subscribers: true,
        ..config(BOB)
    };
    quiet.answer_unknown_sessions = true;
    let mut pair = Pair::with_configs(config(ALICE), quiet, 109);
    pair.bob.manager.set_presence_subscription(ALICE, true);
    let thread = pair.handshake();
    pair.bob = Party::new(
        BOB,
        esession::Config {
            answer_only_subscribers: true,
            ..config(BOB)
        },
        12,
    );
    pair.chat(Side::Alice, &thread, "to a stranger now");
    assert!(pair.bob.sent.is_empty(), "SSN-09: strangers get nothing");
    assert!(matches!(
        &pair.bob.events[..],
        [Event::UnknownSessionStanza {
            answered: false,
            ..
        }]
    ));
}

#[test]
fn a_connection_reset_ends_every_session_with_an_encrypted_terminate() {
    let mut pair = prompt_pair(110);
    let thread = pair.handshake();
    pair.alice.clear();
    let out = pair.alice.manager.connection_reset();
    assert_eq!(out.stanzas.len(), 1);
    assert!(is_encrypted(&out.stanzas[0]));
    pair.route(Side::Alice, out);
    assert_eq!(
        pair.alice.terminations(),
        [&TerminationReason::ConnectionReset]
    );
    // Same full JID: Bob gets the terminate and ends it too.
    assert_eq!(pair.bob.terminations(), [&TerminationReason::PeerRequest]);
    assert!(
        pair.alice
            .manager
            .session_info(&Pair::id(Side::Alice, &thread))
            .is_none()
    );
}

#[test]
fn a_refused_gajim_style_offer_suggests_the_gajim_profile() {
    let mut pair = Pair::new(111);
    pair.alice
        .manager
        .set_profile(BOB, esession::Profile::gajim());
    let (_, out) = pair.alice.manager.start_session(BOB).unwrap();
    pair.route(Side::Alice, out);
    let suggested: Vec<&str> = pair
        .bob
        .events
        .iter()
        .filter_map(|e| match e {
            Event::ProfileSuggested { profile, .. } => Some(profile.name()),
            _ => None,
        })
        .collect();
    assert_eq!(suggested, ["gajim"], "{:?}", pair.bob.events);
    // A standard offer suggests nothing.
    let mut pair = Pair::new(112);
    pair.handshake();
    assert!(
        !pair
            .bob
            .events
            .iter()
            .any(|e| matches!(e, Event::ProfileSuggested { .. }))
    );
}
