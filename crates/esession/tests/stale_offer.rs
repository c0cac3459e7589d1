#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
//! SSN-10: an offer delivered from offline storage is answered with a fresh
//! offer on a new thread, not with a reply.

use esession::{Config, Event, FixedClock, MemoryTrustStore, SessionManager, SystemRandomness};
use esession_crypto::ModpGroup;
use esession_wire::minidom::Element;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

fn manager(jid: &str, seed: u64, reoffer: bool) -> SessionManager {
    let config = Config {
        own_jid: Some(jid.to_owned()),
        groups: vec![ModpGroup::Group1],
        reoffer_delayed_offers: reoffer,
        ..Config::default()
    };
    SessionManager::new(
        config,
        Box::new(SystemRandomness::new(ChaCha20Rng::seed_from_u64(seed))),
        Box::new(MemoryTrustStore::new()),
        Box::new(FixedClock(1_000)),
    )
    .unwrap()
}

fn delayed(mut offer: Element) -> Element {
    let delay: Element =
        "<delay xmlns='urn:xmpp:delay' from='example.com' stamp='2026-11-20T10:00:00Z'/>"
            .parse()
            .unwrap();
    offer.append_child(delay);
    offer
}

fn thread(stanza: &Element) -> String {
    stanza.get_child("thread", "jabber:client").unwrap().text()
}

#[test]
fn a_delayed_offer_gets_a_fresh_offer_on_a_new_thread_and_that_session_establishes() {
    let mut alice = manager("alice@example.org/pda", 1, true);
    let mut bob = manager("bob@example.com/laptop", 2, true);
    let (_, offer) = alice.start_session("bob@example.com/laptop").unwrap();
    let old_thread = thread(&offer.stanzas[0]);
    let out = bob.handle_stanza(&delayed(offer.stanzas[0].clone()));
    let [fresh] = &out.stanzas[..] else {
        panic!("{:?}", out.stanzas)
    };
    assert_ne!(thread(fresh), old_thread, "a new ThreadID, never a reply");
    assert_eq!(fresh.attr("to"), Some("alice@example.org/pda"));
    assert!(
        matches!(&out.events[..], [Event::StaleOfferReplaced { stale, .. }] if stale.thread == old_thread)
    );
    // The fresh offer (Bob initiating now) completes normally.
    let answer = alice.handle_stanza(fresh);
    let completion = bob.handle_stanza(&answer.stanzas[0]);
    let last = alice.handle_stanza(&completion.stanzas[0]);
    assert!(
        last.events
            .iter()
            .any(|e| matches!(e, Event::Established { .. }))
    );
    let done = bob.handle_stanza(&last.stanzas[0]);
    assert!(
        done.events
            .iter()
            .any(|e| matches!(e, Event::Established { .. }))
    );
}

#[test]
fn without_reoffering_a_delayed_offer_is_ignored() {
    let mut alice = manager("alice@example.org/pda", 3, true);
    let mut bob = manager("bob@example.com/laptop", 4, false);
    let (_, offer) = alice.start_session("bob@example.com/laptop").unwrap();
    let out = bob.handle_stanza(&delayed(offer.stanzas[0].clone()));
    assert!(out.stanzas.is_empty() && out.events.is_empty());
}
