//! Off the record (XEP-0136 in the XEP-0155 `logging` field): the policy
//! decides what we offer and accept (ARC-03/04), `mustnot` needs a server
//! archive confirmed off (ARC-07, SSN-03, AMB-59), a `require` policy refuses
//! what may be logged (ARC-05), and a policy change ends the sessions it no
//! longer allows (ARC-05).

use esession::ssn::{ErrorCondition, Logging};
use esession::{ArchivingConflict, Config, Error, OtrPolicy, TerminationReason};

use crate::harness::{ALICE, BOB, Pair, Side, config, field, field_values};

/// The refusal of a `logging` no option satisfies: not-acceptable on `logging`.
fn refused_on_logging() -> Error {
    Error::Refused {
        condition: ErrorCondition::NotAcceptable,
        fields: vec!["logging".to_owned()],
    }
}

fn with(own: &str, policy: OtrPolicy, confirmed: bool) -> Config {
    Config {
        otr_policy: policy,
        off_the_record_possible: confirmed,
        ..config(own)
    }
}

/// The `logging` options of Alice's offer, and the agreed value, if any.
fn negotiate(alice: Config, bob: Config, seed: u64) -> (Vec<String>, Option<Logging>, Pair) {
    let mut pair = Pair::with_configs(alice, bob, seed);
    let (_, out) = pair.alice.manager.start_session(BOB).expect("offer");
    let offered = field_values(&field(&out.stanzas[0], "logging").expect("a logging field"));
    pair.route(Side::Alice, out);
    let agreed = pair
        .alice
        .established()
        .first()
        .map(|(_, info)| info.logging);
    let bob_agreed = pair.bob.established().first().map(|(_, info)| info.logging);
    assert_eq!(agreed, bob_agreed, "both sides agree the same logging");
    (offered, agreed, pair)
}

#[test]
fn by_default_nothing_is_promised_off_the_record() {
    // SSN-03/ARC-07: the default core knows nothing of the server's
    // archive, so `mustnot` is neither offered nor accepted.
    let defaults = Config::default();
    assert_eq!(defaults.otr_policy, OtrPolicy::Prefer);
    assert!(!defaults.off_the_record_possible);
    let (offered, agreed, _) = negotiate(
        with(ALICE, defaults.otr_policy, defaults.off_the_record_possible),
        with(BOB, defaults.otr_policy, defaults.off_the_record_possible),
        1401,
    );
    assert_eq!(offered, ["may"]);
    assert_eq!(agreed, Some(Logging::May));
}

#[test]
fn prefer_on_both_sides_with_archives_confirmed_off_goes_off_the_record() {
    let (offered, agreed, _) = negotiate(
        with(ALICE, OtrPolicy::Prefer, true),
        with(BOB, OtrPolicy::Prefer, true),
        1402,
    );
    assert_eq!(
        offered,
        ["mustnot", "may"],
        "ARC-03: prefer offers mustnot first"
    );
    assert_eq!(agreed, Some(Logging::MustNot));
}

#[test]
fn an_unconfirmed_responder_never_accepts_mustnot() {
    // Alice prefers off the record and can; Bob's server cannot be confirmed.
    let (offered, agreed, _) = negotiate(
        with(ALICE, OtrPolicy::Prefer, true),
        with(BOB, OtrPolicy::Prefer, false),
        1403,
    );
    assert_eq!(offered, ["mustnot", "may"]);
    assert_eq!(agreed, Some(Logging::May), "ARC-07: Bob takes may");
}

#[test]
fn require_without_a_confirmed_archive_sends_nothing_and_says_why() {
    let mut pair = Pair::with_configs(
        with(ALICE, OtrPolicy::Require, false),
        with(BOB, OtrPolicy::Prefer, true),
        1404,
    );
    let refused = pair.alice.manager.start_session(BOB).map(|_| ());
    assert_eq!(
        refused,
        Err(Error::Archiving(ArchivingConflict::OffTheRecordUnavailable))
    );
    let text = ArchivingConflict::OffTheRecordUnavailable.to_string();
    assert!(
        text.contains("archive") && text.contains("policy"),
        "{text}"
    );
    assert!(pair.log.is_empty());
}

#[test]
fn require_refuses_an_offer_that_may_be_logged() {
    // ARC-04/05: Alice forbids off the record (offers `may` alone); Bob
    // requires it: not-acceptable on `logging`, no session.
    let (offered, agreed, pair) = negotiate(
        with(ALICE, OtrPolicy::Forbid, true),
        with(BOB, OtrPolicy::Require, true),
        1405,
    );
    assert_eq!(offered, ["may"]);
    assert_eq!(agreed, None);
    assert_eq!(pair.bob.failures(), [&refused_on_logging()]);
}

#[test]
fn forbid_refuses_an_offer_that_is_only_off_the_record() {
    let (offered, agreed, pair) = negotiate(
        with(ALICE, OtrPolicy::Require, true),
        with(BOB, OtrPolicy::Forbid, true),
        1406,
    );
    assert_eq!(offered, ["mustnot"], "ARC-03: require offers mustnot alone");
    assert_eq!(agreed, None);
    assert_eq!(pair.bob.failures(), [&refused_on_logging()]);
}

#[test]
fn a_contact_policy_overrides_the_default() {
    let mut alice = with(ALICE, OtrPolicy::Forbid, true);
    alice
        .contact_otr_policies
        .insert("bob@example.com".to_owned(), OtrPolicy::Prefer);
    let (offered, agreed, _) = negotiate(alice, with(BOB, OtrPolicy::Concede, true), 1407);
    assert_eq!(offered, ["mustnot", "may"]);
    assert_eq!(agreed, Some(Logging::MustNot));
}

#[test]
fn a_stricter_policy_ends_the_sessions_it_no_longer_allows() {
    // ARC-05: a `may` session ends when the contact's policy becomes `require`.
    let (_, agreed, mut pair) = negotiate(
        with(ALICE, OtrPolicy::Concede, true),
        with(BOB, OtrPolicy::Concede, true),
        1408,
    );
    assert_eq!(agreed, Some(Logging::May));
    // Unchanged by a policy it still satisfies.
    let out = pair.alice.manager.set_otr_policy(BOB, OtrPolicy::Forbid);
    assert!(out.stanzas.is_empty() && out.events.is_empty());
    let out = pair.alice.manager.set_otr_policy(BOB, OtrPolicy::Require);
    assert_eq!(out.stanzas.len(), 1, "the encrypted terminate");
    pair.route(Side::Alice, out);
    assert_eq!(
        pair.alice.terminations(),
        [&TerminationReason::LocalRequest]
    );
    assert_eq!(pair.bob.terminations(), [&TerminationReason::PeerRequest]);
    // And the next start offers only `mustnot`.
    let (_, out) = pair.alice.manager.start_session(BOB).expect("offer");
    assert_eq!(
        field_values(&field(&out.stanzas[0], "logging").unwrap()),
        ["mustnot"]
    );
}

#[test]
fn the_default_policy_change_ends_off_the_record_sessions_under_forbid() {
    let (_, agreed, mut pair) = negotiate(
        with(ALICE, OtrPolicy::Prefer, true),
        with(BOB, OtrPolicy::Prefer, true),
        1409,
    );
    assert_eq!(agreed, Some(Logging::MustNot));
    let out = pair.bob.manager.set_default_otr_policy(OtrPolicy::Forbid);
    assert_eq!(out.stanzas.len(), 1, "the encrypted terminate");
    pair.route(Side::Bob, out);
    assert_eq!(pair.bob.terminations(), [&TerminationReason::LocalRequest]);
}

#[test]
fn a_negotiation_in_progress_cannot_complete_off_the_record_once_the_archive_is_lost() {
    // ARC-07: Bob answered `mustnot`, then learned his server refuses to
    // leave Alice out of its archive (the adapter tells the core). Alice's
    // completion is refused: no off-the-record session without it.
    let mut pair = Pair::with_configs(
        with(ALICE, OtrPolicy::Prefer, true),
        with(BOB, OtrPolicy::Prefer, true),
        1410,
    );
    let (_, out) = pair.alice.manager.start_session(BOB).expect("offer");
    let offer = pair.alice.absorb(out).remove(0);
    let answer = pair.bob.receive(&offer).remove(0);
    assert_eq!(
        field_values(&field(&answer, "logging").unwrap()),
        ["mustnot"]
    );
    pair.bob.manager.set_off_the_record_possible(false);
    let completion = pair.alice.receive(&answer).remove(0);
    let reply = pair.bob.receive(&completion);
    assert!(pair.bob.established().is_empty());
    assert_eq!(pair.bob.failures(), [&refused_on_logging()]);
    assert_eq!(reply.len(), 1, "the refusal goes back to Alice");
}

#[test]
fn an_answer_our_policy_no_longer_allows_is_refused() {
    // ARC-05: Alice's policy for Bob became `forbid` while her offer was out.
    let mut pair = Pair::with_configs(
        with(ALICE, OtrPolicy::Prefer, true),
        with(BOB, OtrPolicy::Prefer, true),
        1411,
    );
    let (_, out) = pair.alice.manager.start_session(BOB).expect("offer");
    let offer = pair.alice.absorb(out).remove(0);
    let answer = pair.bob.receive(&offer).remove(0);
    let _ = pair.alice.manager.set_otr_policy(BOB, OtrPolicy::Forbid);
    pair.alice.receive(&answer);
    assert!(pair.alice.established().is_empty());
    assert_eq!(pair.alice.failures(), [&refused_on_logging()]);
}
