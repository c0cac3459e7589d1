//! XEP-0200 rekeying and the publication of expired MAC keys, end to end:
//! ENC-08 (`<new/>`), ENC-10 (rekey-only stanzas), ENC-11 (key sets chosen by
//! `<new/>`), ENC-14 (`rekey_freq`), ENC-15/16 (who derives what, old keys
//! protect the `<key/>`), ENC-17 (60 s), ENC-18 (e range, AMB-27), ENC-19
//! (block limit, idle rekey, AMB-28), ENC-20 (`<old/>`).
//!
//! Published MAC keys are checked independently of the implementation: each
//! side's counter is worked out from the wire alone (the `counter` field of
//! message 2, the identity lengths of messages 3 and 4, then one block per 16
//! bytes of `<data/>` or one for a stanza without it: ESN-13, ESN-43, AMB-08/09,
//! ENC-10), and an `<old/>` value must verify a MAC the peer really sent.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use esession::{Config, Error, Event, SessionId, TerminationReason};
use esession_crypto::{Counter, HashAlgorithm, MacKey};
use esession_wire::encrypted::ReceivedEncryptedContent;
use esession_wire::minidom::Element;
use esession_wire::ns;

use crate::harness::{
    ALICE, BOB, Pair, Side, TestClock, config, field, field_values, flip_base64, is_encrypted,
};

const SEED: u64 = 0x0200_4e4b;

// ---------------------------------------------------------------------------
// Reading `<c/>` from the wire.

fn c_of(stanza: &Element) -> &Element {
    stanza
        .get_child("c", ns::STANZA_ENCRYPTION)
        .expect("an encrypted stanza")
}

/// The texts of the `<c/>` children called `name`.
fn c_texts(stanza: &Element, name: &str) -> Vec<String> {
    c_of(stanza)
        .children()
        .filter(|c| c.is(name, ns::STANZA_ENCRYPTION))
        .map(Element::text)
        .collect()
}

fn key_of(stanza: &Element) -> Option<String> {
    c_texts(stanza, "key").pop()
}

fn new_of(stanza: &Element) -> Option<String> {
    c_texts(stanza, "new").pop()
}

fn has_data(stanza: &Element) -> bool {
    !c_texts(stanza, "data").is_empty()
}

fn b64(text: &str) -> Vec<u8> {
    STANDARD.decode(text.trim()).expect("Base64")
}

/// The decoded `<old/>` values.
fn olds(stanza: &Element) -> Vec<Vec<u8>> {
    c_texts(stanza, "old").iter().map(|t| b64(t)).collect()
}

/// Every encrypted stanza `side` emitted, in order, with the counter it was
/// MACed with, worked out from the wire only (see the module docs).
fn sent_with_counters(pair: &Pair, side: Side) -> Vec<(Element, Counter)> {
    let (alice, bob) = (&pair.alice.sent, &pair.bob.sent);
    let value =
        |stanza: &Element, var: &str| b64(&field_values(&field(stanza, var).expect("field"))[0]);
    let c_a = Counter::from_wire(&value(&bob[0], "counter")).expect("counter");
    let mut counter = match side {
        Side::Alice => c_a,
        Side::Bob => c_a.flip_top_bit(),
    };
    let identity = match side {
        Side::Alice => value(&alice[1], "identity"),
        Side::Bob => value(&bob[1], "identity"),
    };
    counter.advance(identity.len().div_ceil(16) as u128);
    pair.party(side)
        .sent
        .iter()
        .filter(|s| is_encrypted(s))
        .map(|s| {
            let before = counter;
            let blocks = match c_texts(s, "data").first() {
                Some(data) => b64(data).len().div_ceil(16) as u128,
                None => 1,
            };
            counter.advance(blocks);
            (s.clone(), before)
        })
        .collect()
}

/// Whether `key` is the MAC key of `stanza` (SHA-256 agreed: checked by callers).
fn mac_key_of(key: &[u8], stanza: &Element, counter: Counter) -> bool {
    let received = ReceivedEncryptedContent::try_from(c_of(stanza)).expect("<c/>");
    MacKey::new(HashAlgorithm::Sha256, key).verify(
        &[received.m_content(), &counter.to_bytes()],
        &received.content().mac,
    )
}

/// Whether some published key in `published` is the MAC key of `stanza`,
/// sent by `side`.
fn publishes_key_of(pair: &Pair, side: Side, stanza: &Element, published: &[Vec<u8>]) -> bool {
    let sent = sent_with_counters(pair, side);
    let (_, counter) = sent
        .iter()
        .find(|(s, _)| s == stanza)
        .expect("stanza sent by that side");
    published.iter().any(|k| mac_key_of(k, stanza, *counter))
}

// ---------------------------------------------------------------------------
// Driving the parties.

fn established(seed: u64) -> (Pair, String) {
    let mut pair = Pair::new(seed);
    let thread = pair.handshake();
    assert_eq!(pair.info(Side::Alice).hash, HashAlgorithm::Sha256);
    (pair, thread)
}

/// `side` asks for a rekey; returns the stanza without delivering it.
fn rekey(pair: &mut Pair, side: Side, thread: &str) -> Element {
    let id = Pair::id(side, thread);
    let party = pair.party_mut(side);
    let out = party.manager.rekey(&id).expect("rekey allowed");
    let mut stanzas = party.absorb(out);
    assert_eq!(stanzas.len(), 1, "one rekey-only stanza");
    stanzas.remove(0)
}

/// `side` sends `text`; returns the single stanza without delivering it.
fn one(pair: &mut Pair, side: Side, thread: &str, text: &str) -> Element {
    let mut stanzas = pair.encrypt(side, thread, text);
    assert_eq!(stanzas.len(), 1, "one stanza for {text}");
    stanzas.remove(0)
}

fn delivered(pair: &Pair, side: Side) -> Vec<String> {
    pair.party(side).bodies()
}

fn ended(pair: &Pair, side: Side) -> Vec<TerminationReason> {
    pair.party(side)
        .terminations()
        .into_iter()
        .cloned()
        .collect()
}

fn rekey_config(own: &str, edit: impl FnOnce(&mut Config)) -> Config {
    let mut c = config(own);
    edit(&mut c);
    c
}

// ---------------------------------------------------------------------------
// Rekeying by each side (ENC-08, ENC-10, ENC-15, ENC-16, ENC-18).

fn rekey_by(side: Side, seed: u64) {
    let (mut pair, thread) = established(seed);
    let other = side.other();
    pair.chat(side, &thread, "before");
    pair.chat(other, &thread, "before, answered");

    let k1 = rekey(&mut pair, side, &thread);
    // ENC-10: a rekey-only stanza has no <data/> but a <mac/>; ENC-16: <key/>.
    assert!(!has_data(&k1), "ENC-10: no <data/>");
    assert_eq!(c_texts(&k1, "mac").len(), 1, "ENC-10: a <mac/>");
    assert!(key_of(&k1).is_some(), "ENC-16: a <key/>");
    assert_eq!(new_of(&k1), None, "nothing received since we sent");
    let messages_before = pair.party(other).messages().len();
    pair.deliver(other, &k1);
    assert_eq!(
        pair.party(other).messages().len(),
        messages_before,
        "a rekey-only stanza delivers nothing"
    );
    assert!(ended(&pair, other).is_empty());

    // ENC-08: the peer's next stanza says it saw one <key/>; the one after, nothing.
    let reply = one(&mut pair, other, &thread, "under new keys");
    assert_eq!(new_of(&reply).as_deref(), Some("1"), "ENC-08");
    pair.deliver(side, &reply);
    let second = one(&mut pair, other, &thread, "again");
    assert_eq!(new_of(&second), None, "ENC-08: absent once reported");
    pair.deliver(side, &second);
    pair.chat(side, &thread, "and back");
    assert_eq!(
        delivered(&pair, side),
        ["before, answered", "under new keys", "again"]
    );
    assert_eq!(delivered(&pair, other), ["before", "and back"]);

    // ENC-16: the <key/> stanza was MACed with the OLD outgoing key, which the
    // acceptor published after switching (ENC-20) ...
    let published = olds(&reply);
    assert!(
        publishes_key_of(&pair, side, &k1, &published),
        "<old/> in the reply is the key that MACed the <key/> stanza"
    );
    // ... and the stanzas after it were not (new keys, ENC-15).
    let after = one(&mut pair, side, &thread, "new key");
    assert!(
        !publishes_key_of(&pair, side, &after, &published),
        "ENC-16: new stanzas use the new MAC key"
    );
    // A second rekey draws a fresh exponent.
    pair.deliver(other, &after);
    let k2 = rekey(&mut pair, side, &thread);
    assert_ne!(key_of(&k1), key_of(&k2), "ENC-15: fresh x");
    pair.deliver(other, &k2);
    pair.chat(other, &thread, "after the second rekey");
    assert_eq!(
        delivered(&pair, side).last().map(String::as_str),
        Some("after the second rekey")
    );
    assert!(ended(&pair, side).is_empty() && ended(&pair, other).is_empty());
}

#[test]
fn the_session_initiator_rekeys_and_both_keep_talking() {
    rekey_by(Side::Alice, SEED);
}

#[test]
fn the_session_responder_rekeys_and_both_keep_talking() {
    // ENC-15: labels follow who sent <key/>, not who started the session.
    rekey_by(Side::Bob, SEED + 10);
}

#[test]
fn two_keys_received_are_reported_as_new_2_then_nothing() {
    // ENC-08 test: 2 rekeys received -> <new>2</new>, next stanza none.
    let (mut pair, thread) = established(SEED + 20);
    let k1 = rekey(&mut pair, Side::Alice, &thread);
    let k2 = rekey(&mut pair, Side::Alice, &thread);
    pair.deliver(Side::Bob, &k1);
    pair.deliver(Side::Bob, &k2);
    let reply = one(&mut pair, Side::Bob, &thread, "saw two");
    assert_eq!(new_of(&reply).as_deref(), Some("2"));
    pair.deliver(Side::Alice, &reply);
    let next = one(&mut pair, Side::Bob, &thread, "nothing new");
    assert_eq!(new_of(&next), None);
    pair.deliver(Side::Alice, &next);
    assert_eq!(delivered(&pair, Side::Alice), ["saw two", "nothing new"]);
    assert!(ended(&pair, Side::Alice).is_empty());
}

#[test]
fn concurrent_rekeys_with_stanzas_in_flight_both_ways() {
    // Both sides rekey at once; each side's key and messages cross the
    // other's in flight, arriving after the other already switched keys.
    let (mut pair, thread) = established(SEED + 30);
    let a_before = one(&mut pair, Side::Alice, &thread, "a0");
    let a_key = rekey(&mut pair, Side::Alice, &thread);
    let a_after = one(&mut pair, Side::Alice, &thread, "a1");
    let b_before = one(&mut pair, Side::Bob, &thread, "b0");
    let b_key = rekey(&mut pair, Side::Bob, &thread);
    let b_after = one(&mut pair, Side::Bob, &thread, "b1");
    for s in [&a_before, &a_key, &a_after, &b_before, &b_key, &b_after] {
        assert_eq!(new_of(s), None, "nothing received yet");
    }
    // Interleaved delivery: each side gets the other's stanzas after having
    // switched its own keys.
    pair.deliver(Side::Bob, &a_before);
    pair.deliver(Side::Alice, &b_before);
    pair.deliver(Side::Bob, &a_key);
    pair.deliver(Side::Alice, &b_key);
    pair.deliver(Side::Alice, &b_after);
    pair.deliver(Side::Bob, &a_after);
    // Each then answers with <new>1</new>, choosing the other's newer set.
    let a2 = one(&mut pair, Side::Alice, &thread, "a2");
    let b2 = one(&mut pair, Side::Bob, &thread, "b2");
    assert_eq!(new_of(&a2).as_deref(), Some("1"));
    assert_eq!(new_of(&b2).as_deref(), Some("1"));
    pair.deliver(Side::Alice, &b2);
    pair.deliver(Side::Bob, &a2);
    for i in 3..6 {
        pair.chat(Side::Alice, &thread, &format!("a{i}"));
        pair.chat(Side::Bob, &thread, &format!("b{i}"));
    }
    assert_eq!(
        delivered(&pair, Side::Bob),
        ["a0", "a1", "a2", "a3", "a4", "a5"]
    );
    assert_eq!(
        delivered(&pair, Side::Alice),
        ["b0", "b1", "b2", "b3", "b4", "b5"]
    );
    assert!(ended(&pair, Side::Alice).is_empty() && ended(&pair, Side::Bob).is_empty());
    // And both can rekey again afterwards.
    let again = rekey(&mut pair, Side::Bob, &thread);
    pair.deliver(Side::Alice, &again);
    pair.chat(Side::Alice, &thread, "a6");
    assert_eq!(
        delivered(&pair, Side::Bob).last().map(String::as_str),
        Some("a6")
    );
}

#[test]
fn peer_new_1_after_two_own_rekeys_selects_set_1_and_wipes_set_0() {
    // ENC-11 test: two own rekeys, peer <new>1</new> -> set 1 used, set 0 wiped.
    let (mut pair, thread) = established(SEED + 40);
    pair.chat(Side::Alice, &thread, "hello");
    let b0 = one(&mut pair, Side::Bob, &thread, "under set 0");
    pair.deliver(Side::Alice, &b0);
    let k1 = rekey(&mut pair, Side::Alice, &thread);
    let k2 = rekey(&mut pair, Side::Alice, &thread);
    pair.deliver(Side::Bob, &k1);
    let b1 = one(&mut pair, Side::Bob, &thread, "under set 1");
    assert_eq!(new_of(&b1).as_deref(), Some("1"));
    pair.deliver(Side::Alice, &b1);
    assert_eq!(
        delivered(&pair, Side::Alice),
        ["under set 0", "under set 1"],
        "set 1 verified and decrypted Bob's stanza"
    );
    // Set 0 is destroyed: its incoming MAC key (Bob's old one) is no longer
    // accepted, so Alice publishes it (ENC-20), together with her own MAC key
    // from before k1, which Bob has proven he replaced. The key that MACed k2
    // stays secret: Bob has not answered k2 yet.
    let a = one(&mut pair, Side::Alice, &thread, "after the choice");
    let published = olds(&a);
    assert!(
        publishes_key_of(&pair, Side::Bob, &b0, &published),
        "set 0's key"
    );
    assert!(
        publishes_key_of(&pair, Side::Alice, &k1, &published),
        "pre-k1 key"
    );
    assert!(
        !publishes_key_of(&pair, Side::Alice, &k2, &published),
        "k2's key"
    );
    // Then k2 (sent before `a`): Bob reports one more key and Alice moves on to set 2.
    pair.deliver(Side::Bob, &k2);
    pair.deliver(Side::Bob, &a);
    let b2 = one(&mut pair, Side::Bob, &thread, "under set 2");
    assert_eq!(new_of(&b2).as_deref(), Some("1"));
    pair.deliver(Side::Alice, &b2);
    assert_eq!(
        delivered(&pair, Side::Alice).last().map(String::as_str),
        Some("under set 2")
    );
    let a2 = one(&mut pair, Side::Alice, &thread, "k2 acknowledged");
    assert!(publishes_key_of(&pair, Side::Alice, &k2, &olds(&a2)));
    assert!(ended(&pair, Side::Alice).is_empty() && ended(&pair, Side::Bob).is_empty());
}

// ---------------------------------------------------------------------------
// ENC-14, AMB-55: rekey_freq.

#[test]
fn rekey_before_rekey_freq_stanzas_is_an_api_error() {
    // ENC-14 test: freq 50, rekey at 10 -> API error. Only Alice asks for 50;
    // the agreed value is the larger one, on both sides.
    let alice = rekey_config(ALICE, |c| c.rekey_freq = 50);
    let mut pair = Pair::with_configs(alice, config(BOB), SEED + 50);
    let thread = pair.handshake();
    // The negotiation counts as one stanza (AMB-55): 9 more make 10.
    for i in 0..9 {
        let side = if i % 2 == 0 { Side::Alice } else { Side::Bob };
        pair.chat(side, &thread, &format!("m{i}"));
    }
    for side in [Side::Alice, Side::Bob] {
        let id = Pair::id(side, &thread);
        let refused = pair.party_mut(side).manager.rekey(&id);
        assert_eq!(refused.err(), Some(Error::RekeyTooSoon), "{side:?} at 10");
    }
    // 49 in all: still too early; the 50th (counting both directions) allows it.
    for i in 9..48 {
        pair.chat(Side::Alice, &thread, &format!("m{i}"));
    }
    let id = Pair::id(Side::Bob, &thread);
    assert_eq!(
        pair.bob.manager.rekey(&id).err(),
        Some(Error::RekeyTooSoon),
        "49"
    );
    pair.chat(Side::Alice, &thread, "m48");
    let k = rekey(&mut pair, Side::Bob, &thread);
    pair.deliver(Side::Alice, &k);
    // The exchange restarts the count, on both sides.
    for side in [Side::Alice, Side::Bob] {
        let id = Pair::id(side, &thread);
        assert_eq!(
            pair.party_mut(side).manager.rekey(&id).err(),
            Some(Error::RekeyTooSoon),
            "{side:?} right after the exchange"
        );
    }
    pair.chat(Side::Alice, &thread, "still fine");
    assert_eq!(
        delivered(&pair, Side::Bob).last().map(String::as_str),
        Some("still fine")
    );
}

#[test]
fn at_most_eight_key_sets_wait_for_an_answer() {
    // ENC-17 keeps one set per unanswered <key/>; we bound them: the 8th
    // unanswered rekey is refused until the peer catches up.
    let (mut pair, thread) = established(SEED + 52);
    let keys: Vec<Element> = (0..7)
        .map(|_| rekey(&mut pair, Side::Alice, &thread))
        .collect();
    let id = Pair::id(Side::Alice, &thread);
    assert_eq!(
        pair.alice.manager.rekey(&id).err(),
        Some(Error::RekeyTooSoon)
    );
    for k in &keys {
        pair.deliver(Side::Bob, k);
    }
    let reply = one(&mut pair, Side::Bob, &thread, "caught up");
    assert_eq!(new_of(&reply).as_deref(), Some("7"));
    pair.deliver(Side::Alice, &reply);
    assert_eq!(delivered(&pair, Side::Alice), ["caught up"]);
    let k = rekey(&mut pair, Side::Alice, &thread);
    pair.deliver(Side::Bob, &k);
    pair.chat(Side::Bob, &thread, "fine");
    assert!(ended(&pair, Side::Alice).is_empty() && ended(&pair, Side::Bob).is_empty());
}

#[test]
fn rekey_on_unknown_or_unestablished_sessions_is_refused() {
    let (mut pair, thread) = established(SEED + 55);
    let unknown = SessionId {
        peer: BOB.parse().unwrap(),
        thread: "no-such-thread".to_owned(),
    };
    assert_eq!(
        pair.alice.manager.rekey(&unknown).err(),
        Some(Error::UnknownSession)
    );
    let id = Pair::id(Side::Alice, &thread);
    let out = pair.alice.manager.terminate(&id).expect("terminate");
    pair.alice.absorb(out);
    assert_eq!(
        pair.alice.manager.rekey(&id).err(),
        Some(Error::SessionEnded),
        "ESN-47: nothing after terminate"
    );
}

// ---------------------------------------------------------------------------
// ENC-17: 60 seconds for old keys; ENC-20 only after them.

fn clocked(seed: u64) -> (Pair, String, TestClock) {
    let clock = TestClock::new();
    let mut pair = Pair::with_clock(seed, &clock);
    let thread = pair.handshake();
    (pair, thread, clock)
}

#[test]
fn a_stanza_under_the_old_key_is_accepted_30_s_after_a_rekey() {
    // ENC-17 test, first half: old-key stanza at +30 s accepted.
    let (mut pair, thread, clock) = clocked(SEED + 60);
    let late = one(
        &mut pair,
        Side::Bob,
        &thread,
        "sent before the rekey arrived",
    );
    let k1 = rekey(&mut pair, Side::Alice, &thread);
    clock.advance(30);
    let out = pair.alice.manager.poll_timers();
    assert!(out.stanzas.is_empty() && out.events.is_empty());
    pair.deliver(Side::Alice, &late);
    assert_eq!(
        delivered(&pair, Side::Alice),
        ["sent before the rekey arrived"]
    );
    // ENC-20: set 0 is still in use, so nothing of it is published.
    let a = one(&mut pair, Side::Alice, &thread, "within the window");
    assert!(olds(&a).is_empty(), "refused inside the 60 s window");
    pair.deliver(Side::Bob, &k1);
    pair.deliver(Side::Bob, &a);
    assert_eq!(delivered(&pair, Side::Bob), ["within the window"]);
}

#[test]
fn a_stanza_under_the_old_key_is_rejected_61_s_after_a_rekey() {
    // ENC-17 test, second half: at +61 s rejected; nothing delivered.
    let (mut pair, thread, clock) = clocked(SEED + 61);
    let late = one(&mut pair, Side::Bob, &thread, "too late");
    let _k1 = rekey(&mut pair, Side::Alice, &thread);
    clock.advance(61);
    pair.deliver(Side::Alice, &late);
    assert!(delivered(&pair, Side::Alice).is_empty());
    assert_eq!(
        ended(&pair, Side::Alice),
        [TerminationReason::IntegrityFailure]
    );
}

#[test]
fn expired_key_sets_go_by_timer_and_their_mac_key_is_then_published() {
    // ENC-17 via poll_timers, next_deadline; ENC-20: published after the window.
    let (mut pair, thread, clock) = clocked(SEED + 62);
    let b0 = one(&mut pair, Side::Bob, &thread, "set 0");
    pair.deliver(Side::Alice, &b0);
    let k1 = rekey(&mut pair, Side::Alice, &thread);
    let now = harness_now(&clock);
    assert_eq!(pair.alice.manager.next_deadline(), Some(now + 60));
    clock.advance(59);
    assert!(pair.alice.manager.poll_timers().stanzas.is_empty());
    let inside = one(&mut pair, Side::Alice, &thread, "at 59 s");
    assert!(olds(&inside).is_empty(), "ENC-20: not inside the window");
    clock.advance(1);
    let out = pair.alice.manager.poll_timers();
    assert!(out.stanzas.is_empty() && out.events.is_empty());
    let after = one(&mut pair, Side::Alice, &thread, "at 60 s");
    let published = olds(&after);
    assert!(
        publishes_key_of(&pair, Side::Bob, &b0, &published),
        "set 0's MAC key once the window is over"
    );
    assert!(
        !publishes_key_of(&pair, Side::Alice, &k1, &published),
        "own old key: Bob has not proven he has k1"
    );
    let later = one(&mut pair, Side::Alice, &thread, "published once");
    assert!(olds(&later).is_empty(), "each key published once");
    // Bob still reads everything in order.
    for s in [&k1, &inside, &after, &later] {
        pair.deliver(Side::Bob, s);
    }
    assert_eq!(
        delivered(&pair, Side::Bob),
        ["at 59 s", "at 60 s", "published once"]
    );
}

#[test]
fn a_stale_key_after_the_timer_destroyed_it_ends_the_session() {
    let (mut pair, thread, clock) = clocked(SEED + 63);
    let stale = one(&mut pair, Side::Bob, &thread, "stale");
    let _k1 = rekey(&mut pair, Side::Alice, &thread);
    clock.advance(60);
    let _ = pair.alice.manager.poll_timers();
    pair.deliver(Side::Alice, &stale);
    assert!(
        delivered(&pair, Side::Alice).is_empty(),
        "nothing delivered"
    );
    assert_eq!(
        ended(&pair, Side::Alice),
        [TerminationReason::IntegrityFailure]
    );
}

fn harness_now(clock: &TestClock) -> u64 {
    use esession::Clock as _;
    clock.now_unix()
}

// ---------------------------------------------------------------------------
// Tampering with <key/>, <new/> and <old/> (ENC-12: all MAC-covered).

fn tampered(edit: impl Fn(&mut Element), make: impl Fn(&mut Pair, &str) -> Element) {
    let (mut pair, thread) = established(SEED + 70);
    pair.chat(Side::Alice, &thread, "ok");
    let mut stanza = make(&mut pair, &thread);
    edit(&mut stanza);
    let to = if stanza.attr("to") == Some(BOB) {
        Side::Bob
    } else {
        Side::Alice
    };
    let before = pair.party(to).messages().len();
    pair.deliver(to, &stanza);
    assert_eq!(pair.party(to).messages().len(), before, "nothing delivered");
    assert_eq!(ended(&pair, to), [TerminationReason::IntegrityFailure]);
}

fn edit_child(name: &'static str, f: impl Fn(&str) -> String) -> impl Fn(&mut Element) {
    move |stanza: &mut Element| {
        let c = stanza
            .get_child_mut("c", ns::STANZA_ENCRYPTION)
            .expect("<c/>");
        let child = c
            .get_child_mut(name, ns::STANZA_ENCRYPTION)
            .unwrap_or_else(|| panic!("no <{name}/>"));
        let text = f(&child.text());
        child.take_nodes();
        child.append_text_node(text);
    }
}

#[test]
fn a_tampered_key_fails_the_mac() {
    tampered(edit_child("key", flip_base64), |pair, thread| {
        rekey(pair, Side::Alice, thread)
    });
}

#[test]
fn a_tampered_new_fails_the_mac() {
    tampered(
        edit_child("new", |n| format!("{}", n.parse::<u32>().unwrap() + 1)),
        |pair, thread| {
            let k = rekey(pair, Side::Alice, thread);
            pair.deliver(Side::Bob, &k);
            one(pair, Side::Bob, thread, "new 1")
        },
    );
    // A <new/> added where none was sent.
    tampered(
        |stanza: &mut Element| {
            let c = stanza
                .get_child_mut("c", ns::STANZA_ENCRYPTION)
                .expect("<c/>");
            let mut new = Element::bare("new", ns::STANZA_ENCRYPTION);
            new.append_text_node("1");
            c.append_child(new);
        },
        |pair, thread| one(pair, Side::Bob, thread, "no new"),
    );
}

#[test]
fn a_tampered_old_fails_the_mac() {
    let publishing = |pair: &mut Pair, thread: &str| {
        let k = rekey(pair, Side::Alice, thread);
        pair.deliver(Side::Bob, &k);
        let reply = one(pair, Side::Bob, thread, "publishes");
        assert!(!olds(&reply).is_empty(), "the acceptor publishes");
        reply
    };
    tampered(edit_child("old", flip_base64), publishing);
    // Removing a published key is tampering too.
    tampered(
        |stanza: &mut Element| {
            let c = stanza
                .get_child_mut("c", ns::STANZA_ENCRYPTION)
                .expect("<c/>");
            let kept: Vec<Element> = c
                .children()
                .filter(|e| !e.is("old", ns::STANZA_ENCRYPTION))
                .cloned()
                .collect();
            c.take_nodes();
            for e in kept {
                c.append_child(e);
            }
        },
        publishing,
    );
}

#[test]
fn received_old_keys_are_ignored() {
    // ENC-20: [SHOULD] ignore received <old/>: they change nothing and the
    // session goes on.
    let (mut pair, thread) = established(SEED + 75);
    let k = rekey(&mut pair, Side::Alice, &thread);
    pair.deliver(Side::Bob, &k);
    let reply = one(&mut pair, Side::Bob, &thread, "with old");
    assert!(!olds(&reply).is_empty());
    pair.deliver(Side::Alice, &reply);
    pair.chat(Side::Alice, &thread, "fine");
    pair.chat(Side::Bob, &thread, "fine too");
    assert_eq!(delivered(&pair, Side::Alice), ["with old", "fine too"]);
    assert_eq!(delivered(&pair, Side::Bob), ["fine"]);
}

// ---------------------------------------------------------------------------
// ENC-19, AMB-28: the block limit; idle rekey.

/// A body of about `blocks` AES blocks once wrapped in `<body/>`.
fn body_of(blocks: usize) -> String {
    "x".repeat(blocks * 16 - 40)
}

fn limited(seed: u64, freq: u32) -> (Pair, String) {
    let edit = |c: &mut Config| {
        c.rekey_block_limit = 256;
        c.rekey_freq = freq;
        c.compression = vec![esession_crypto::CompressionAlgorithm::None];
    };
    let mut pair = Pair::with_configs(rekey_config(ALICE, edit), rekey_config(BOB, edit), seed);
    let thread = pair.handshake();
    (pair, thread)
}

#[test]
fn a_rekey_is_piggy_backed_once_half_the_block_limit_is_used() {
    let (mut pair, thread) = limited(SEED + 80, 1);
    let mut blocks = 0u64;
    let mut keyed = None;
    for i in 0..20 {
        let side = if i % 2 == 0 { Side::Alice } else { Side::Bob };
        let stanza = one(&mut pair, side, &thread, &body_of(10));
        if key_of(&stanza).is_some() {
            keyed = Some((i, blocks, stanza.clone()));
            assert!(has_data(&stanza), "ENC-16: the key rides on content");
        }
        blocks += b64(&c_texts(&stanza, "data")[0]).len().div_ceil(16) as u64;
        pair.deliver(side.other(), &stanza);
        if keyed.is_some() {
            break;
        }
    }
    let (i, before, _) = keyed.expect("an automatic rekey");
    assert!(
        (128..256 - 64).contains(&before),
        "rekeyed at {before} blocks (stanza {i})"
    );
    for side in [Side::Alice, Side::Bob] {
        pair.chat(side, &thread, "after");
        assert!(ended(&pair, side).is_empty());
    }
    assert_eq!(delivered(&pair, Side::Bob).len(), i / 2 + 1 + 1);
}

#[test]
fn a_stanza_that_would_reach_the_limit_goes_after_a_rekey_only_stanza() {
    let (mut pair, thread) = limited(SEED + 81, 1);
    // 100 blocks used; a 100-block stanza would reach 256 with the reserve.
    pair.chat(Side::Alice, &thread, &body_of(50));
    pair.chat(Side::Bob, &thread, &body_of(50));
    let stanzas = pair.encrypt(Side::Alice, &thread, &body_of(100));
    assert_eq!(stanzas.len(), 2, "rekey-only stanza first");
    assert!(key_of(&stanzas[0]).is_some() && !has_data(&stanzas[0]));
    assert!(key_of(&stanzas[1]).is_none() && has_data(&stanzas[1]));
    for s in &stanzas {
        pair.deliver(Side::Bob, s);
    }
    pair.chat(Side::Bob, &thread, "got it");
    assert_eq!(delivered(&pair, Side::Bob).len(), 2);
    assert_eq!(delivered(&pair, Side::Alice).len(), 2);
    // A stanza that could never fit under one key exchange is refused.
    let id = Pair::id(Side::Alice, &thread);
    let huge = pair.alice.manager.send_text(&id, &body_of(200));
    assert!(matches!(huge, Err(Error::InvalidInput(_))), "{huge:?}");
}

#[test]
fn keys_used_up_with_rekeying_barred_terminate_the_session() {
    // AMB-28: terminate when rekeying is barred by rekey_freq.
    let (mut pair, thread) = limited(SEED + 82, 1000);
    let id = Pair::id(Side::Alice, &thread);
    let mut sent_blocks = 0u64;
    let mut outcome = None;
    for _ in 0..30 {
        let out = pair
            .alice
            .manager
            .send_text(&id, &body_of(10))
            .expect("send_text");
        if out
            .events
            .iter()
            .any(|e| matches!(e, Event::Terminated { .. }))
        {
            outcome = Some(out);
            break;
        }
        let stanzas = pair.alice.absorb(out);
        for s in &stanzas {
            assert!(key_of(s).is_none(), "rekeying is barred");
            sent_blocks += b64(&c_texts(s, "data")[0]).len().div_ceil(16) as u64;
            pair.deliver(Side::Bob, s);
        }
    }
    let out = outcome.expect("the session ended before 256 blocks");
    assert!(sent_blocks < 256, "{sent_blocks} blocks under one key");
    let stanzas = pair.alice.absorb(out);
    assert_eq!(
        ended(&pair, Side::Alice),
        [TerminationReason::KeysExhausted]
    );
    assert_eq!(stanzas.len(), 1, "only the encrypted terminate form");
    let terminate_blocks = b64(&c_texts(&stanzas[0], "data")[0]).len().div_ceil(16) as u64;
    assert!(
        sent_blocks + terminate_blocks < 256,
        "ENC-19: the terminate form fits too ({sent_blocks} + {terminate_blocks})"
    );
    let delivered_before = pair.bob.messages().len();
    pair.deliver(Side::Bob, &stanzas[0]);
    assert_eq!(
        pair.bob.messages().len(),
        delivered_before,
        "message not sent"
    );
    assert_eq!(ended(&pair, Side::Bob), [TerminationReason::PeerRequest]);
    assert!(
        pair.alice.manager.send_text(&id, "after").is_err(),
        "the session is gone"
    );
}

#[test]
fn an_idle_session_is_rekeyed_by_the_timer_once() {
    let (mut pair, thread, clock) = clocked(SEED + 90);
    // No traffic under the negotiated keys yet: nothing to protect.
    assert_eq!(pair.alice.manager.next_deadline(), None);
    pair.chat(Side::Alice, &thread, "then silence");
    let start = harness_now(&clock);
    assert_eq!(pair.alice.manager.next_deadline(), Some(start + 600));
    clock.advance(599);
    assert!(pair.alice.manager.poll_timers().stanzas.is_empty());
    clock.advance(1);
    let out = pair.alice.manager.poll_timers();
    let stanzas = pair.alice.absorb(out);
    assert_eq!(stanzas.len(), 1, "one rekey-only stanza");
    assert!(key_of(&stanzas[0]).is_some() && !has_data(&stanzas[0]));
    pair.deliver(Side::Bob, &stanzas[0]);
    // Bob's idle timer finds the keys fresh: no second rekey.
    assert!(pair.bob.manager.poll_timers().stanzas.is_empty());
    clock.advance(600);
    assert!(pair.alice.manager.poll_timers().stanzas.is_empty());
    assert!(pair.bob.manager.poll_timers().stanzas.is_empty());
    // A later message piggy-backs the idle rekey instead.
    pair.chat(Side::Bob, &thread, "back");
    clock.advance(700);
    let stanza = one(&mut pair, Side::Alice, &thread, "back too");
    assert!(key_of(&stanza).is_some() && has_data(&stanza));
    pair.deliver(Side::Bob, &stanza);
    assert_eq!(delivered(&pair, Side::Bob), ["then silence", "back too"]);
    assert!(ended(&pair, Side::Alice).is_empty() && ended(&pair, Side::Bob).is_empty());
}

#[test]
fn idle_rekey_can_be_switched_off() {
    let clock = TestClock::new();
    let off = |jid| rekey_config(jid, |c| c.idle_rekey_after = None);
    let mut pair = Pair::with_clock_and_configs(SEED + 91, &clock, off(ALICE), off(BOB));
    let thread = pair.handshake();
    pair.chat(Side::Alice, &thread, "hi");
    assert_eq!(pair.alice.manager.next_deadline(), None);
    clock.advance(100_000);
    assert!(pair.alice.manager.poll_timers().stanzas.is_empty());
}

// ---------------------------------------------------------------------------
// Termination with old keys (ESN-45/46 [MAY] with <old/>).

#[test]
fn the_terminate_form_carries_the_mac_keys_safe_to_publish() {
    // ESN-45 [MAY] with <old/>: what is already safe goes with the terminate.
    let (mut pair, thread) = established(SEED + 100);
    let b0 = one(&mut pair, Side::Bob, &thread, "set 0");
    pair.deliver(Side::Alice, &b0);
    let k1 = rekey(&mut pair, Side::Alice, &thread);
    pair.deliver(Side::Bob, &k1);
    pair.chat(Side::Bob, &thread, "new 1");
    let id = Pair::id(Side::Alice, &thread);
    let out = pair.alice.manager.terminate(&id).expect("terminate");
    let request = pair.alice.absorb(out).remove(0);
    let published = olds(&request);
    assert!(publishes_key_of(&pair, Side::Alice, &k1, &published));
    assert!(publishes_key_of(&pair, Side::Bob, &b0, &published));
    pair.deliver(Side::Bob, &request);
    assert_eq!(ended(&pair, Side::Alice), [TerminationReason::LocalRequest]);
    assert_eq!(ended(&pair, Side::Bob), [TerminationReason::PeerRequest]);
}

// ---------------------------------------------------------------------------
// Rekeying with presence and iq (ENC-01..03, AMB-26) and a stanza with two
// `<c/>`: one key set per stanza, `<key/>` and `<old/>` only in the top-level
// `<c/>` (ENC-03 with ENC-08/11/16, proposed AMB-63).

/// XEP-0200's "Plain IQ Error Stanza", addressed to `to`, with this `id`.
fn iq_error(to: &str, id: &str) -> Element {
    esession_wire::xml::parse_document(&format!(
        "<iq xmlns='jabber:client' to='{to}' type='error' id='{id}'>\
         <pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='princely_musings'>\
         <item id='ae890ac52d0df67ed7cfdf51b644e901'/></publish></pubsub>\
         <error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         <payload-too-big xmlns='http://jabber.org/protocol/pubsub#errors'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>reason {id}</text></error></iq>"
    ))
    .expect("iq error")
}

fn directed_presence(to: &str) -> Element {
    esession_wire::xml::parse_document(&format!(
        "<presence xmlns='jabber:client' to='{to}'><status>busy</status></presence>"
    ))
    .expect("presence")
}

/// The top-level `<c/>` and the one inside `<error/>`, in that order.
fn both_cs(stanza: &Element) -> [&Element; 2] {
    let inner = stanza
        .get_child("error", ns::JABBER_CLIENT)
        .and_then(|e| e.get_child("c", ns::STANZA_ENCRYPTION))
        .expect("an inner <c/>");
    [c_of(stanza), inner]
}

/// The texts of `<c/>`'s children called `name`.
fn texts_in(c: &Element, name: &str) -> Vec<String> {
    c.children()
        .filter(|x| x.is(name, ns::STANZA_ENCRYPTION))
        .map(Element::text)
        .collect()
}

/// `(<new/>, <key/> present, <old/> count)` of each `<c/>` of an iq error.
fn rekey_parts(stanza: &Element) -> Vec<(Option<String>, bool, usize)> {
    both_cs(stanza)
        .iter()
        .map(|c| {
            (
                texts_in(c, "new").pop(),
                !texts_in(c, "key").is_empty(),
                texts_in(c, "old").len(),
            )
        })
        .collect()
}

/// `side` seals one iq error on `thread`; returns it undelivered.
fn one_iq_error(pair: &mut Pair, side: Side, thread: &str, id: &str) -> Element {
    let mut sent = pair
        .seal_stanza(side, thread, &iq_error(side.other().jid(), id))
        .expect("send_stanza");
    assert_eq!(sent.len(), 1, "one stanza for {id}");
    sent.remove(0)
}

/// The `<text/>` inside the `<error/>` of the last iq `side` received, which
/// only the inner `<c/>` carried.
fn last_iq_error_text(pair: &Pair, side: Side) -> Option<(String, String)> {
    let received = pair.party(side).stanzas_received();
    let iq = received.last()?;
    let text = iq
        .get_child("error", ns::JABBER_CLIENT)?
        .get_child("text", ns::XMPP_STANZAS)?
        .text();
    Some((iq.attr("id")?.to_owned(), text))
}

#[test]
fn an_iq_error_with_an_inner_c_works_across_a_rekey_with_both_key_sets_in_play() {
    let clock = TestClock::new();
    let mut pair = Pair::with_clock_and_configs(
        SEED + 120,
        &clock,
        crate::harness::config_all_kinds(ALICE),
        crate::harness::config_all_kinds(BOB),
    );
    let thread = pair.handshake();
    pair.send_stanza(Side::Bob, &thread, &directed_presence(ALICE));
    pair.chat(Side::Alice, &thread, "hello");

    // Alice rekeys; Bob's iq error crosses her <key/>: Alice then holds key
    // set 0 (negotiated) and set 1 (her rekey), and Bob's stanza must use
    // set 0 for BOTH of its <c/> (ENC-11, ENC-17).
    let k1 = rekey(&mut pair, Side::Alice, &thread);
    let crossing = one_iq_error(&mut pair, Side::Bob, &thread, "crossing");
    assert_eq!(
        rekey_parts(&crossing),
        [(None, false, 0), (None, false, 0)],
        "both <c/> under set 0, nothing else"
    );
    pair.deliver(Side::Alice, &crossing);
    assert_eq!(
        last_iq_error_text(&pair, Side::Alice),
        Some(("crossing".to_owned(), "reason crossing".to_owned())),
        "{:?}",
        pair.alice.events
    );

    // Bob gets the <key/>; his next iq error is under set 1: the same
    // <new>1</new> in both <c/> (ENC-08), and Alice wipes set 0 (ENC-11).
    pair.deliver(Side::Bob, &k1);
    let after = one_iq_error(&mut pair, Side::Bob, &thread, "after");
    let parts = rekey_parts(&after);
    assert_eq!(
        (parts[0].0.as_deref(), parts[1].0.as_deref()),
        (Some("1"), Some("1")),
        "one key set for the whole stanza"
    );
    assert!(!parts[0].1 && !parts[1].1, "no <key/> of Bob's yet");
    assert_eq!(parts[1].2, 0, "<old/> never inside <error/>");
    pair.deliver(Side::Alice, &after);
    assert_eq!(
        last_iq_error_text(&pair, Side::Alice),
        Some(("after".to_owned(), "reason after".to_owned()))
    );

    // Idle time: Bob's next iq error piggy-backs his <key/> (ENC-16, ENC-19)
    // in its top-level <c/> only; the whole stanza is still under the old keys.
    clock.advance(600);
    let keyed = one_iq_error(&mut pair, Side::Bob, &thread, "keyed");
    let parts = rekey_parts(&keyed);
    assert!(parts[0].1, "<key/> in the top-level <c/>");
    assert!(!parts[1].1, "no <key/> inside <error/>");
    assert_eq!(parts[0].0, parts[1].0, "the same <new/> in both");
    assert_eq!(parts[1].2, 0, "<old/> never inside <error/>");
    pair.deliver(Side::Alice, &keyed);
    assert_eq!(
        last_iq_error_text(&pair, Side::Alice),
        Some(("keyed".to_owned(), "reason keyed".to_owned()))
    );

    // Alice answers under the keys from Bob's <key/>: <new>1</new> in both
    // <c/> of her own iq error, and Bob opens it with his new key set.
    let reply = one_iq_error(&mut pair, Side::Alice, &thread, "reply");
    let parts = rekey_parts(&reply);
    assert_eq!(
        (parts[0].0.as_deref(), parts[1].0.as_deref()),
        (Some("1"), Some("1"))
    );
    pair.deliver(Side::Bob, &reply);
    assert_eq!(
        last_iq_error_text(&pair, Side::Bob),
        Some(("reply".to_owned(), "reason reply".to_owned())),
        "{:?}",
        pair.bob.events
    );
    // Everything stays in step: presence and messages both ways.
    pair.send_stanza(Side::Alice, &thread, &directed_presence(BOB));
    pair.chat(Side::Bob, &thread, "still here");
    pair.chat(Side::Alice, &thread, "me too");
    assert_eq!(pair.bob.stanzas_received().len(), 2);
    assert_eq!(delivered(&pair, Side::Alice), ["still here"]);
    assert_eq!(delivered(&pair, Side::Bob), ["hello", "me too"]);
    assert!(ended(&pair, Side::Alice).is_empty() && ended(&pair, Side::Bob).is_empty());
}

#[test]
fn an_iq_error_that_would_reach_the_block_limit_goes_after_a_rekey_only_stanza() {
    // ENC-19, AMB-28 for iq: the blocks of BOTH <c/> count; a stanza that
    // would not fit goes after a rekey-only stanza, under fresh keys.
    let edit = |c: &mut Config| {
        c.rekey_block_limit = 256;
        c.compression = vec![esession_crypto::CompressionAlgorithm::None];
        c.stanzas = esession::StanzaKind::ALL.to_vec();
    };
    let mut pair = Pair::with_configs(
        rekey_config(ALICE, edit),
        rekey_config(BOB, edit),
        SEED + 121,
    );
    let thread = pair.handshake();
    // 100 blocks used (below half the limit: no automatic rekey yet); the
    // iq's two <c/> together take about 100 more, which with the reserve
    // would reach 256.
    pair.chat(Side::Alice, &thread, &body_of(50));
    pair.chat(Side::Bob, &thread, &body_of(50));
    let big = esession_wire::xml::parse_document(&format!(
        "<iq xmlns='jabber:client' to='{ALICE}' type='error' id='big'>\
         <query xmlns='urn:example'>{}</query>\
         <error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>{}</text></error></iq>",
        "q".repeat(16 * 10),
        "t".repeat(16 * 85)
    ))
    .expect("iq");
    let sent = pair.seal_stanza(Side::Bob, &thread, &big).expect("sent");
    assert_eq!(sent.len(), 2, "rekey-only stanza first");
    assert!(sent[0].is("message", ns::JABBER_CLIENT));
    assert!(key_of(&sent[0]).is_some() && !has_data(&sent[0]));
    assert_eq!(
        rekey_parts(&sent[1]),
        [(None, false, 0), (None, false, 0)],
        "the iq itself under the fresh keys, without <key/>"
    );
    for s in &sent {
        pair.deliver(Side::Alice, s);
    }
    assert_eq!(
        last_iq_error_text(&pair, Side::Alice).map(|(id, t)| (id, t.len())),
        Some(("big".to_owned(), 16 * 85))
    );
    pair.chat(Side::Alice, &thread, "in step");
    assert_eq!(
        delivered(&pair, Side::Bob).last().map(String::as_str),
        Some("in step")
    );
}

// ---------------------------------------------------------------------------
// Rekeying in a 3-message (SIGMA-I) session: x, y, d, e and rekey_freq are
// kept by both 3-message paths (ENC-15, ENC-18).

fn three_message_pair(seed: u64) -> Pair {
    use crate::harness::{keyed_config, rsa_key};
    use esession::{FlowPolicy, PubkeyMethod};
    let three = |jid: &str, n: usize| Config {
        initiate_flow: FlowPolicy::ThreeMessage,
        accept_three_message: true,
        ..keyed_config(
            jid,
            Some(rsa_key(n)),
            &[PubkeyMethod::Key],
            &[PubkeyMethod::Key],
        )
    };
    let mut pair = Pair::with_configs(three(ALICE, 0), three(BOB, 1), seed);
    pair.alice.know_key(BOB, &rsa_key(1), true);
    pair.bob.know_key(ALICE, &rsa_key(0), true);
    pair
}

#[test]
fn a_three_message_session_with_bundled_content_rekeys_both_ways() {
    let mut pair = three_message_pair(SEED + 130);
    let hello = esession_wire::xml::parse_document(
        "<message xmlns='jabber:client' type='chat'><body>bundled</body></message>",
    )
    .expect("message");
    let (id, out) = pair
        .alice
        .manager
        .start_session_with_message(BOB, &hello, false)
        .expect("3-message start");
    pair.route(Side::Alice, out);
    let thread = id.thread;
    assert!(pair.info(Side::Alice).three_message && pair.info(Side::Bob).three_message);
    assert_eq!(delivered(&pair, Side::Bob), ["bundled"]);
    let completion = pair
        .alice
        .sent
        .iter()
        .find(|s| is_encrypted(s))
        .expect("the completion with its <c/>");
    assert!(
        key_of(completion).is_none(),
        "bundled content has no <key/>"
    );

    // Bob, the responder, rekeys first: his <key/> needs y kept from
    // Flow::Three, and Alice's acceptance needs x kept in on_response.
    let kb = rekey(&mut pair, Side::Bob, &thread);
    pair.deliver(Side::Alice, &kb);
    let reply = one(&mut pair, Side::Alice, &thread, "after Bob's rekey");
    assert_eq!(new_of(&reply).as_deref(), Some("1"));
    pair.deliver(Side::Bob, &reply);
    // Then Alice rekeys, with d kept from Bob's answer.
    let ka = rekey(&mut pair, Side::Alice, &thread);
    assert_ne!(key_of(&ka), key_of(&kb));
    pair.deliver(Side::Bob, &ka);
    let answer = one(&mut pair, Side::Bob, &thread, "after Alice's rekey");
    assert_eq!(new_of(&answer).as_deref(), Some("1"));
    pair.deliver(Side::Alice, &answer);
    pair.chat(Side::Alice, &thread, "still in step");
    assert_eq!(
        delivered(&pair, Side::Bob),
        ["bundled", "after Bob's rekey", "still in step"]
    );
    assert_eq!(delivered(&pair, Side::Alice), ["after Alice's rekey"]);
    assert!(ended(&pair, Side::Alice).is_empty() && ended(&pair, Side::Bob).is_empty());
}

#[test]
fn a_three_message_session_without_bundled_content_rekeys() {
    let mut pair = three_message_pair(SEED + 131);
    let thread = pair.handshake();
    assert!(pair.info(Side::Bob).three_message);
    let ka = rekey(&mut pair, Side::Alice, &thread);
    pair.deliver(Side::Bob, &ka);
    pair.chat(Side::Bob, &thread, "one");
    let kb = rekey(&mut pair, Side::Bob, &thread);
    pair.deliver(Side::Alice, &kb);
    pair.chat(Side::Alice, &thread, "two");
    pair.chat(Side::Bob, &thread, "three");
    assert_eq!(delivered(&pair, Side::Alice), ["one", "three"]);
    assert_eq!(delivered(&pair, Side::Bob), ["two"]);
    assert!(ended(&pair, Side::Alice).is_empty() && ended(&pair, Side::Bob).is_empty());
}
