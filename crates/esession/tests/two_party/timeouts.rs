//! Negotiation timeouts (ESN-10): `expire_negotiations` forgets negotiations
//! whose last step is older than `Config::negotiation_timeout` (120 s by
//! default) with `NegotiationFailed(Timeout)`; established sessions never
//! expire. Time comes from a clock shared by the test and both managers.

use esession::{Config, Error, Event, SessionId};

use crate::harness::{BOB, Pair, Side, TestClock};

/// The default timeout, in seconds.
const TIMEOUT: u64 = 120;

/// Runs `expire_negotiations` on `side`'s manager and records its output.
fn expire(pair: &mut Pair, side: Side) -> Vec<Event> {
    let party = pair.party_mut(side);
    let out = party.manager.expire_negotiations();
    assert!(out.stanzas.is_empty(), "a timeout sends nothing");
    let seen = party.events.len();
    party.absorb(out);
    party.events.drain(seen..).collect()
}

/// Whether `events` is exactly one `NegotiationFailed(Timeout)` for `session`.
fn timed_out(events: &[Event], session: &SessionId) -> bool {
    matches!(
        events,
        [Event::NegotiationFailed { session: s, error: Error::Timeout }] if s == session
    )
}

#[test]
fn the_default_negotiation_timeout_is_120_seconds() {
    assert_eq!(Config::default().negotiation_timeout, TIMEOUT);
}

#[test]
fn an_unanswered_offer_expires_after_the_timeout() {
    // ESN-10: Alice's offer (message 1) got no answer.
    let clock = TestClock::new();
    let mut pair = Pair::with_clock(101, &clock);
    let (id, out) = pair.alice.manager.start_session(BOB).unwrap();
    let offer = pair.alice.absorb(out).remove(0);
    // Bob answers, but the answer is held back.
    let answer = pair.bob.receive(&offer).remove(0);
    clock.advance(TIMEOUT);
    assert!(
        expire(&mut pair, Side::Alice).is_empty(),
        "not yet at 120 s"
    );
    assert_eq!(
        pair.alice.manager.send_text(&id, "x").unwrap_err(),
        Error::NotEstablished,
        "still negotiating"
    );
    clock.advance(1);
    let events = expire(&mut pair, Side::Alice);
    assert!(timed_out(&events, &id), "{events:?}");
    // Forgotten: like any unknown session, and reported only once.
    assert_eq!(
        pair.alice.manager.send_text(&id, "x").unwrap_err(),
        Error::UnknownSession
    );
    assert!(expire(&mut pair, Side::Alice).is_empty());
    // The late answer finds nothing: no completion, no event.
    let seen = pair.alice.events.len();
    assert!(pair.alice.receive(&answer).is_empty());
    assert_eq!(pair.alice.events.len(), seen);
    assert!(pair.alice.established().is_empty());
}

#[test]
fn an_answered_offer_without_completion_expires_at_the_responder() {
    // ESN-10: Bob answered (message 2); Alice's completion never came in time.
    let clock = TestClock::new();
    let mut pair = Pair::with_clock(102, &clock);
    let (id, out) = pair.alice.manager.start_session(BOB).unwrap();
    let offer = pair.alice.absorb(out).remove(0);
    let answer = pair.bob.receive(&offer).remove(0);
    let bob_id = Pair::id(Side::Bob, &id.thread);
    // Alice completes only after a while: her last step is now.
    clock.advance(100);
    let completion = pair.alice.receive(&answer).remove(0);
    assert!(expire(&mut pair, Side::Bob).is_empty());
    clock.advance(TIMEOUT + 1 - 100);
    // Bob's last step (the answer) is 121 s old; Alice's (the completion) 21 s.
    let events = expire(&mut pair, Side::Bob);
    assert!(timed_out(&events, &bob_id), "{events:?}");
    assert!(
        expire(&mut pair, Side::Alice).is_empty(),
        "the timeout counts from the last step"
    );
    // The late completion finds nothing at Bob: no message 4, no session.
    assert!(pair.bob.receive(&completion).is_empty());
    assert!(pair.bob.established().is_empty());
    assert!(!pair.bob.manager.is_established(&bob_id));
    assert_eq!(
        pair.bob.manager.send_text(&bob_id, "x").unwrap_err(),
        Error::UnknownSession
    );
    // Alice, waiting for message 4, expires in her turn.
    clock.advance(100);
    let alice_id = Pair::id(Side::Alice, &id.thread);
    let events = expire(&mut pair, Side::Alice);
    assert!(timed_out(&events, &alice_id), "{events:?}");
}

#[test]
fn an_offer_held_for_the_user_expires_too() {
    // SSN-09 with ESN-10: a held offer is a negotiation in progress.
    let clock = TestClock::new();
    let mut pair = Pair::with_clock(103, &clock);
    let bob = Config {
        auto_accept: false,
        ..crate::harness::config(BOB)
    };
    pair.bob = crate::harness::Party::with_manager(
        BOB,
        crate::harness::manager_with_clock(bob, 104, Box::new(clock.clone())),
    );
    let (id, out) = pair.alice.manager.start_session(BOB).unwrap();
    pair.route(Side::Alice, out);
    let bob_id = Pair::id(Side::Bob, &id.thread);
    assert!(matches!(
        &pair.bob.events[..],
        [Event::OfferReceived { .. }]
    ));
    clock.advance(TIMEOUT + 1);
    let events = expire(&mut pair, Side::Bob);
    assert!(timed_out(&events, &bob_id), "{events:?}");
    assert_eq!(
        pair.bob.manager.accept_offer(&bob_id).unwrap_err(),
        Error::UnknownSession
    );
}

#[test]
fn established_sessions_never_expire() {
    // ESN-10 forgets negotiations only: a session left idle for a day, next to
    // a negotiation that does expire, keeps working both ways.
    let clock = TestClock::new();
    let mut pair = Pair::with_clock(105, &clock);
    let thread = pair.handshake();
    let (pending, out) = pair.alice.manager.start_session(BOB).unwrap();
    let _unsent = pair.alice.absorb(out);
    clock.advance(24 * 3600);
    let events = expire(&mut pair, Side::Alice);
    assert!(timed_out(&events, &pending), "{events:?}");
    assert!(expire(&mut pair, Side::Bob).is_empty());
    for side in [Side::Alice, Side::Bob] {
        assert!(
            pair.party(side)
                .manager
                .is_established(&Pair::id(side, &thread)),
            "{side:?}"
        );
    }
    pair.chat(Side::Alice, &thread, "a day later");
    pair.chat(Side::Bob, &thread, "still here");
    assert_eq!(pair.bob.bodies(), ["a day later"]);
    assert_eq!(pair.alice.bodies(), ["still here"]);
    // Still nothing to expire afterwards.
    clock.advance(24 * 3600);
    assert!(expire(&mut pair, Side::Alice).is_empty());
    assert!(expire(&mut pair, Side::Bob).is_empty());
}

#[test]
fn a_stanza_from_another_resource_does_not_extend_a_negotiation() {
    // ESN-10 with SSN-11: Bob's negotiation is bound to alice@example.org/pda;
    // a stanza from another resource on the thread is not a step of it.
    let clock = TestClock::new();
    let mut pair = Pair::with_clock(106, &clock);
    let (id, out) = pair.alice.manager.start_session(BOB).unwrap();
    let offer = pair.alice.absorb(out).remove(0);
    let mut completion = {
        let answer = pair.bob.receive(&offer).remove(0);
        pair.alice.receive(&answer).remove(0)
    };
    clock.advance(100);
    crate::harness::set_attr(&mut completion, "from", "alice@example.org/evil");
    assert!(
        pair.bob.receive(&completion).is_empty(),
        "not ours (SSN-11)"
    );
    assert!(pair.bob.established().is_empty());
    clock.advance(TIMEOUT + 1 - 100);
    let events = expire(&mut pair, Side::Bob);
    assert!(
        timed_out(&events, &Pair::id(Side::Bob, &id.thread)),
        "{events:?}"
    );
}
