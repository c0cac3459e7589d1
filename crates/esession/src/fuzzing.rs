//! Fuzz entry points for the protocol core (style practice 17): not part of the API.
//!
//! Every function here drives [`SessionManager`]s through the public API only, with
//! deterministic dependencies (a seeded ChaCha20 [`SystemRandomness`], a [`FixedClock`] and a
//! fresh [`MemoryTrustStore`]), so that one input always takes the same path. The fuzz input is
//! fed to the responder as a received stanza; the functions check, with `assert!`, properties
//! that must hold for every input (a failed assertion is a finding, like a panic):
//!
//! * everything a manager sends serializes and parses back (it is well-formed XML);
//! * replies go only to the JID the input came from;
//! * one stanza never establishes a responder that has not answered an offer;
//! * a responder that established a session agrees with the genuine initiator (same SAS,
//!   working keys): no accepted completion that the initiator did not send;
//! * a stanza that was neither delivered nor ended the session left the session exactly as it
//!   was (practice 12): the initiator's genuine next stanza is still delivered;
//! * without the fuzzing MAC bypass, whatever is delivered is what the initiator encrypted;
//! * (issue 11) one offer costs the responder at most one DH key pair, or one fresh offer of
//!   its own when it carries a `<delay/>` (SSN-10), and it refuses offers beyond
//!   `Limits::max_offer_len` before computing anything.
//!
//! The first input byte selects a configuration variant (`input[0] % N`); the rest is the
//! stanza's XML text. Corpus files start with an ASCII digit so that they stay readable.
//!
//! Under `cfg(fuzzing)` (set only by cargo-fuzz), the stanza MAC check in the established
//! session is bypassed so that mutated `<c/>` elements reach decryption, decompression and
//! parsing; see `EstablishedSession::open`.

use esession_crypto::{CipherAlgorithm, CompressionAlgorithm, ModpGroup, SecretBytes};
use esession_wire::minidom::Element;
use esession_wire::{ns, xml};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

use crate::{
    Config, Event, FixedClock, MemoryTrustStore, Output, SessionId, SessionInfo, SessionManager,
    SystemRandomness,
};

/// The initiator's full JID.
pub const ALICE: &str = "alice@example.org/pda";
/// The responder's full JID.
pub const BOB: &str = "bob@example.com/laptop";
/// What every clock reads.
pub const NOW: u64 = 1_700_000_000;
/// Inputs longer than this are ignored.
pub const MAX_INPUT: usize = 64 * 1024;
/// The body of the initiator's first encrypted message.
pub const FIRST_BODY: &str = "first message from Alice";
/// The body of the initiator's second encrypted message.
pub const SECOND_BODY: &str = "second message from Alice";

const ALICE_SEED: u64 = 0xA11CE;
const BOB_SEED: u64 = 0xB0B;
/// Most stanzas one exchange may carry (more is a loop between the parties: a bug).
const MAX_ROUNDS: usize = 16;

/// What one fuzz input did, for the corpus replay tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The input was a UTF-8 XML document (otherwise nothing was run).
    pub parsed: bool,
    /// Stanzas the responder sent in reply.
    pub replies: usize,
    /// The responder raised `Established`.
    pub established: bool,
    /// Messages the responder delivered.
    pub delivered: usize,
    /// The responder raised `Terminated`.
    pub terminated: bool,
    /// The responder raised `NegotiationFailed`.
    pub failed: bool,
}

/// The variant byte and the stanza, parsed; `None` for input that is not an XML document.
fn split(data: &[u8]) -> Option<(u8, Element)> {
    let (&variant, rest) = data.split_first()?;
    if rest.len() > MAX_INPUT {
        return None;
    }
    let text = std::str::from_utf8(rest).ok()?;
    let stanza = xml::parse_document(text).ok()?;
    Some((variant, stanza))
}

/// A small, fast policy: the two smallest MODP groups (like the two-party tests).
fn base_config(own_jid: &str) -> Config {
    Config {
        own_jid: Some(own_jid.to_owned()),
        groups: vec![ModpGroup::Group1, ModpGroup::Group2],
        // Establish on the completion itself: the fuzz functions judge it.
        retained_secret_proof_wait: 0,
        ..Config::default()
    }
}

/// The responder policies of [`responder_offer`].
const OFFER_VARIANTS: u8 = 4;

fn offer_config(variant: u8) -> Config {
    let mut config = base_config(BOB);
    match variant % OFFER_VARIANTS {
        1 => {
            // Everything a permissive responder may agree to.
            config.accept_plain_sessions = true;
            config.accept_disclosure = true;
            config.dangerously_allow_none_cipher = true;
            config.ciphers.push(CipherAlgorithm::None);
            config.reoffer_delayed_offers = false;
        }
        2 | 3 => config.auto_accept = false,
        _ => {}
    }
    config
}

/// The policies of [`decrypt_stanza`] (both parties): cipher and compression.
const SESSION_VARIANTS: u8 = 4;

fn session_config(own_jid: &str, variant: u8) -> Config {
    let mut config = base_config(own_jid);
    let v = variant % SESSION_VARIANTS;
    if v & 1 == 1 {
        config.compression = vec![CompressionAlgorithm::Zlib];
        config.pad_to_multiple = Some(32);
    } else {
        config.compression = vec![CompressionAlgorithm::None];
    }
    if v & 2 == 2 {
        // Plaintext in <data/>: with the fuzzing MAC bypass the fuzzer writes the
        // decrypted bytes directly.
        config.ciphers = vec![CipherAlgorithm::None];
        config.dangerously_allow_none_cipher = true;
    }
    config
}

/// The policies of [`responder_completion`] (both parties).
const COMPLETION_VARIANTS: u8 = 3;

/// One party, with every event it raised.
struct Party {
    jid: &'static str,
    manager: SessionManager,
    events: Vec<Event>,
    /// DH key pairs the manager made so far (issue 11's cost properties).
    key_pairs: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// Seeded randomness that counts the DH key pairs made.
struct CountingRandomness {
    inner: SystemRandomness<ChaCha20Rng>,
    key_pairs: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl crate::Randomness for CountingRandomness {
    fn fill(&mut self, purpose: crate::RandomPurpose, out: &mut [u8]) {
        self.inner.fill(purpose, out);
    }
    fn dh_key_pair(
        &mut self,
        group: esession_crypto::ModpGroup,
        size: esession_crypto::ExponentSize,
    ) -> esession_crypto::DhKeyPair {
        self.key_pairs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.dh_key_pair(group, size)
    }
    fn permutation(&mut self, n: usize) -> Vec<usize> {
        self.inner.permutation(n)
    }
}

impl Party {
    fn new(jid: &'static str, config: Config, seed: u64) -> Self {
        Self::with_trust(jid, config, seed, MemoryTrustStore::new())
    }

    fn with_trust(jid: &'static str, config: Config, seed: u64, trust: MemoryTrustStore) -> Self {
        let key_pairs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let rng = CountingRandomness {
            inner: SystemRandomness::new(ChaCha20Rng::seed_from_u64(seed)),
            key_pairs: std::sync::Arc::clone(&key_pairs),
        };
        let manager = SessionManager::new(
            config,
            Box::new(rng),
            Box::new(trust),
            Box::new(FixedClock(NOW)),
        );
        Self {
            jid,
            manager,
            events: Vec::new(),
            key_pairs,
        }
    }

    /// Records an output; checks and returns its stanzas.
    fn absorb(&mut self, out: Output) -> Vec<Element> {
        for stanza in &out.stanzas {
            check_well_formed(stanza);
        }
        self.events.extend(out.events);
        out.stanzas
    }

    /// Hands over a stanza a party produced (through the wire format).
    fn receive(&mut self, stanza: &Element) -> Vec<Element> {
        let out = self.manager.handle_stanza(&over_the_wire(stanza));
        self.absorb(out)
    }

    /// The last `Established` event at or after event index `since`.
    fn established_since(&self, since: usize) -> Option<(&SessionId, &SessionInfo)> {
        let events = self.events.get(since..).unwrap_or_default();
        events.iter().rev().find_map(|e| match e {
            Event::Established { session, info } => Some((session, info)),
            _ => None,
        })
    }

    fn established(&self) -> Option<(&SessionId, &SessionInfo)> {
        self.established_since(0)
    }

    /// The `<body/>` texts of the messages delivered at or after event index `since`.
    fn delivered_bodies(&self, since: usize) -> Vec<String> {
        self.events
            .get(since..)
            .unwrap_or_default()
            .iter()
            .filter_map(|e| match e {
                Event::MessageReceived { message, .. } => Some(
                    message
                        .get_child("body", ns::JABBER_CLIENT)
                        .map(Element::text)
                        .unwrap_or_default(),
                ),
                _ => None,
            })
            .collect()
    }

    fn outcome(&self, events_before: usize, replies: usize) -> Outcome {
        let new = self.events.get(events_before..).unwrap_or_default();
        Outcome {
            parsed: true,
            replies,
            established: new.iter().any(|e| matches!(e, Event::Established { .. })),
            delivered: new
                .iter()
                .filter(|e| matches!(e, Event::MessageReceived { .. }))
                .count(),
            terminated: new.iter().any(|e| matches!(e, Event::Terminated { .. })),
            failed: new
                .iter()
                .any(|e| matches!(e, Event::NegotiationFailed { .. })),
        }
    }
}

/// Everything a manager sends is a well-formed stanza that survives the wire.
fn check_well_formed(stanza: &Element) {
    let text = xml::serialize(stanza, "");
    assert!(text.is_ok(), "a stanza we send serializes: {text:?}");
    if let Ok(text) = text {
        let parsed = xml::parse_document(&text);
        assert!(parsed.is_ok(), "a stanza we send parses back: {text}");
    }
}

/// Serializes and re-parses a stanza, as the XMPP stream would (checked well-formed before).
fn over_the_wire(stanza: &Element) -> Element {
    xml::serialize(stanza, "")
        .ok()
        .and_then(|text| xml::parse_document(&text).ok())
        .unwrap_or_else(|| stanza.clone())
}

/// Carries `to_b` to `b`, its replies to `a`, and so on until both are quiet.
fn exchange(a: &mut Party, b: &mut Party, mut to_b: Vec<Element>) {
    let mut to_a = Vec::new();
    for _ in 0..MAX_ROUNDS {
        if to_b.is_empty() && to_a.is_empty() {
            return;
        }
        for stanza in std::mem::take(&mut to_b) {
            to_a.extend(b.receive(&stanza));
        }
        for stanza in std::mem::take(&mut to_a) {
            to_b.extend(a.receive(&stanza));
        }
    }
    assert!(
        to_a.is_empty() && to_b.is_empty(),
        "{} and {} keep sending each other stanzas",
        a.jid,
        b.jid
    );
}

// ---------------------------------------------------------------------------------------------
// (c) message 1 at the responder

/// The responder's handling of an offer (negotiation message 1), target `responder_offer`.
///
/// Variants: 0 default policy; 1 permissive (plain sessions, disclosure, `none` cipher);
/// 2 offers held for the user, then accepted; 3 held, then rejected.
pub fn responder_offer(data: &[u8]) -> Outcome {
    let Some((variant, stanza)) = split(data) else {
        return Outcome::default();
    };
    let variant = variant % OFFER_VARIANTS;
    let config = offer_config(variant);
    let own_offer_pairs = config.groups.len();
    let mut bob = Party::new(BOB, config, BOB_SEED);
    let out = bob.manager.handle_stanza(&stanza);
    let mut replies = bob.absorb(out);
    let reoffered = bob
        .events
        .iter()
        .any(|e| matches!(e, Event::StaleOfferReplaced { .. }));
    let pairs = bob.key_pairs.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        pairs <= 1 || (reoffered && pairs <= own_offer_pairs),
        "one offer cost {pairs} key pairs"
    );
    let offered: Vec<SessionId> = bob
        .events
        .iter()
        .filter_map(|e| match e {
            Event::OfferReceived { session } => Some(session.clone()),
            _ => None,
        })
        .collect();
    for session in offered {
        let out = if variant == 2 {
            bob.manager.accept_offer(&session)
        } else {
            bob.manager.reject_offer(&session)
        };
        assert!(out.is_ok(), "a held offer can be answered: {out:?}");
        if let Ok(out) = out {
            replies.extend(bob.absorb(out));
        }
    }

    let from = stanza.attr("from").unwrap_or_default();
    for reply in &replies {
        assert_eq!(
            reply.attr("to"),
            Some(from),
            "replies go to the sender only"
        );
    }
    let outcome = bob.outcome(0, replies.len());
    assert!(
        !outcome.established,
        "one stanza cannot establish a session"
    );
    assert_eq!(
        outcome.delivered, 0,
        "nothing is delivered before keys exist"
    );
    outcome
}

/// The genuine offer (message 1) of the initiator, as [`responder_offer`] input for `variant`.
pub fn genuine_offer(variant: u8) -> Vec<u8> {
    let mut alice = Party::new(ALICE, base_config(ALICE), ALICE_SEED);
    let offer = alice
        .manager
        .start_session(BOB)
        .map(|(_, out)| alice.absorb(out))
        .unwrap_or_default();
    with_variant(variant, offer.first())
}

fn with_variant(variant: u8, stanza: Option<&Element>) -> Vec<u8> {
    let mut bytes = vec![b'0' + variant];
    if let Some(text) = stanza.and_then(|s| xml::serialize(s, "").ok()) {
        bytes.extend_from_slice(text.as_bytes());
    }
    bytes
}

// ---------------------------------------------------------------------------------------------
// (d) message 3 at the responder

/// Alice and Bob after a genuine offer and answer; Alice's genuine reply to the answer (message
/// 3) is returned but not delivered.
fn answered(variant: u8) -> (Party, Party, Vec<Element>) {
    let (mut alice, mut bob) = match variant % COMPLETION_VARIANTS {
        1 => {
            // A shared password (ESN-36) mixed into the keys.
            let password = b"correct horse battery staple";
            let mut alice_trust = MemoryTrustStore::new();
            alice_trust.set_other_secret("bob@example.com", SecretBytes::from_slice(password));
            let mut bob_trust = MemoryTrustStore::new();
            bob_trust.set_other_secret("alice@example.org", SecretBytes::from_slice(password));
            (
                Party::with_trust(ALICE, base_config(ALICE), ALICE_SEED, alice_trust),
                Party::with_trust(BOB, base_config(BOB), BOB_SEED, bob_trust),
            )
        }
        v => {
            let mut alice = Party::new(ALICE, base_config(ALICE), ALICE_SEED);
            let mut bob = Party::new(BOB, base_config(BOB), BOB_SEED);
            if v == 2 {
                // An earlier session left a retained secret on both sides (ESN-35).
                establish(&mut alice, &mut bob);
            }
            (alice, bob)
        }
    };
    let offer = alice
        .manager
        .start_session(BOB)
        .map(|(_, out)| alice.absorb(out))
        .unwrap_or_default();
    let mut answer = Vec::new();
    for stanza in &offer {
        answer.extend(bob.receive(stanza));
    }
    let mut completion = Vec::new();
    for stanza in &answer {
        completion.extend(alice.receive(stanza));
    }
    (alice, bob, completion)
}

/// A full negotiation between the two parties, on a new thread.
fn establish(alice: &mut Party, bob: &mut Party) -> Option<SessionId> {
    let since = alice.events.len();
    let offer = alice
        .manager
        .start_session(BOB)
        .map(|(_, out)| alice.absorb(out))
        .ok()?;
    exchange(alice, bob, offer);
    let (session, _) = alice.established_since(since)?;
    Some(session.clone())
}

/// The responder's handling of the initiator's completion (negotiation message 3), target
/// `responder_completion`: Bob has answered a genuine offer; the input replaces Alice's reply.
///
/// Variants: 0 fresh parties; 1 a shared password; 2 a retained secret from an earlier session.
pub fn responder_completion(data: &[u8]) -> Outcome {
    let Some((variant, stanza)) = split(data) else {
        return Outcome::default();
    };
    let (mut alice, mut bob, _genuine) = answered(variant);
    let before = bob.events.len();
    let alice_before = alice.events.len();
    let out = bob.manager.handle_stanza(&stanza);
    let replies = bob.absorb(out);
    let outcome = bob.outcome(before, replies.len());
    let from = stanza.attr("from").unwrap_or_default();
    for reply in &replies {
        assert_eq!(
            reply.attr("to"),
            Some(from),
            "replies go to the sender only"
        );
    }
    assert_eq!(
        outcome.delivered, 0,
        "nothing is delivered during negotiation"
    );

    if outcome.established {
        // Bob accepted the input as Alice's completion: Alice must agree.
        let bob_info = bob.established_since(before).map(|(_, info)| info.clone());
        for reply in &replies {
            let back = alice.receive(reply);
            exchange(&mut alice, &mut bob, back);
        }
        let alice_session = alice
            .established_since(alice_before)
            .map(|(s, info)| (s.clone(), info.clone()));
        assert!(
            alice_session.is_some(),
            "the responder established a session the initiator did not complete"
        );
        if let (Some((session, alice_info)), Some(bob_info)) = (alice_session, bob_info) {
            assert_eq!(alice_info.sas, bob_info.sas, "both sides show the same SAS");
            assert_eq!(alice_info.cipher, bob_info.cipher);
            assert_eq!(alice_info.hash, bob_info.hash);
            assert_eq!(alice_info.group, bob_info.group);
            // And the keys agree.
            let sent = alice
                .manager
                .send_text(&session, FIRST_BODY)
                .map(|out| alice.absorb(out))
                .unwrap_or_default();
            let delivered_before = bob.events.len();
            exchange(&mut alice, &mut bob, sent);
            assert_eq!(
                bob.delivered_bodies(delivered_before),
                [FIRST_BODY],
                "the established keys carry a message"
            );
        }
    }
    outcome
}

/// Alice's genuine completion (message 3), as [`responder_completion`] input for `variant`.
pub fn genuine_completion(variant: u8) -> Vec<u8> {
    let (_, _, completion) = answered(variant);
    with_variant(variant, completion.first())
}

// ---------------------------------------------------------------------------------------------
// (e) stanza decryption

/// Two established parties and Alice's first encrypted message (sent, not delivered).
struct Established {
    alice: Party,
    bob: Party,
    session: Option<SessionId>,
    first: Vec<Element>,
}

fn established(variant: u8) -> Established {
    let mut alice = Party::new(ALICE, session_config(ALICE, variant), ALICE_SEED);
    let mut bob = Party::new(BOB, session_config(BOB, variant), BOB_SEED);
    let session = establish(&mut alice, &mut bob);
    assert!(
        session.is_some() && bob.established().is_some(),
        "the fuzzing setup negotiates a session (variant {variant})"
    );
    let first = session
        .as_ref()
        .and_then(|s| alice.manager.send_text(s, FIRST_BODY).ok())
        .map(|out| alice.absorb(out))
        .unwrap_or_default();
    Established {
        alice,
        bob,
        session,
        first,
    }
}

/// The responder's handling of a stanza on an established session, target `decrypt_stanza`.
///
/// Variants: bit 0 selects zlib compression (with padding), bit 1 the `none` cipher.
pub fn decrypt_stanza(data: &[u8]) -> Outcome {
    let Some((variant, stanza)) = split(data) else {
        return Outcome::default();
    };
    let Established {
        mut alice,
        mut bob,
        session,
        first,
    } = established(variant);
    let before = bob.events.len();
    let out = bob.manager.handle_stanza(&stanza);
    let replies = bob.absorb(out);
    let outcome = bob.outcome(before, replies.len());

    if !cfg!(fuzzing) {
        // Only the MAC bypass of fuzzing builds lets anything but Alice's stanza through.
        let bodies = bob.delivered_bodies(before);
        assert!(
            bodies.iter().all(|b| b == FIRST_BODY),
            "only authenticated content is delivered: {bodies:?}"
        );
    }
    let bob_session = bob.established().map(|(s, _)| s.clone());
    let still_open = bob_session
        .as_ref()
        .is_some_and(|s| bob.manager.is_established(s));
    if outcome.terminated {
        assert!(!still_open, "a terminated session is gone");
    }
    if still_open && !outcome.terminated {
        // Practice 12: the session moved exactly as far as what it delivered.
        let next = if outcome.delivered == 0 {
            first
        } else if cfg!(fuzzing) {
            return outcome; // the bypass may have delivered a forgery: counters differ
        } else {
            session
                .as_ref()
                .and_then(|s| alice.manager.send_text(s, SECOND_BODY).ok())
                .map(|out| alice.absorb(out))
                .unwrap_or_default()
        };
        let already = bob.events.len();
        exchange(&mut alice, &mut bob, next);
        let expected = if outcome.delivered == 0 {
            FIRST_BODY
        } else {
            SECOND_BODY
        };
        assert_eq!(
            bob.delivered_bodies(already),
            [expected],
            "a stanza that delivered nothing left the session unchanged"
        );
    }
    outcome
}

/// Alice's first encrypted message, as [`decrypt_stanza`] input for `variant`.
pub fn genuine_encrypted(variant: u8) -> Vec<u8> {
    let setup = established(variant);
    with_variant(variant, setup.first.first())
}
