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
//!   `Limits::max_offer_len` before computing anything;
//! * (issue 11, [`hostile_peers`]) whatever several peers do in whatever order, the caps on
//!   negotiations and sessions hold after every stanza, as do the key pairs per stanza, the
//!   rate of negotiations started by unauthenticated stanzas and the size of error replies.
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
    /// The limits the responder reported reached (issue 11), in order.
    pub limits_reached: Vec<crate::LimitKind>,
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

/// The manager of a fuzz configuration (all fixed and valid).
#[allow(
    clippy::expect_used,
    reason = "the fuzz configurations are constants; an invalid one is a finding"
)]
fn valid(built: Result<SessionManager, crate::Error>) -> SessionManager {
    built.expect("the fuzz configurations are valid")
}

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
        Self::with_clock(jid, config, seed, trust, Box::new(FixedClock(NOW)))
    }

    fn with_clock(
        jid: &'static str,
        config: Config,
        seed: u64,
        trust: MemoryTrustStore,
        clock: Box<dyn crate::Clock + Send>,
    ) -> Self {
        let key_pairs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let rng = CountingRandomness {
            inner: SystemRandomness::new(ChaCha20Rng::seed_from_u64(seed)),
            key_pairs: std::sync::Arc::clone(&key_pairs),
        };
        let manager = valid(SessionManager::new(
            config,
            Box::new(rng),
            Box::new(trust),
            clock,
        ));
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

    /// Handles every stanza of `stanzas`; returns all the replies, in order.
    fn receive_all(&mut self, stanzas: &[Element]) -> Vec<Element> {
        stanzas.iter().flat_map(|s| self.receive(s)).collect()
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
            limits_reached: new
                .iter()
                .filter_map(|e| match e {
                    Event::NegotiationFailed {
                        error: crate::Error::LimitReached(limit),
                        ..
                    } => Some(*limit),
                    _ => None,
                })
                .collect(),
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
    let answer = bob.receive_all(&offer);
    let completion = alice.receive_all(&answer);
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

// ---------------------------------------------------------------------------------------------
// (f) many hostile peers at once (issue 11: the caps and rates hold whatever the interleaving)

/// The peers of [`hostile_peers`]: four bare JIDs with two resources each; the `z` resources
/// offer only zlib.
pub const HOSTILE_PEERS: [&str; 8] = [
    "p0@example.org/a",
    "p1@example.org/a",
    "p2@example.org/a",
    "p3@example.org/a",
    "p0@example.org/z",
    "p1@example.org/z",
    "p2@example.org/z",
    "p3@example.org/z",
];

/// At most this many operations of an input are run.
const MAX_OPERATIONS: usize = 48;

/// Limits small enough for a short input to reach every one of them.
pub fn tight_limits() -> crate::Limits {
    crate::Limits {
        pending_negotiations_per_peer: 2,
        pending_negotiations_total: 5,
        sessions_per_peer: 2,
        sessions_total: 5,
        unsolicited_starts_per_minute: 1,
        max_error_echo: 512,
        compressed_sessions_total: 1,
        ..crate::Limits::default()
    }
}

/// A clock that the input moves forward.
struct SteppedClock(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl crate::Clock for SteppedClock {
    fn now_unix(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// One operation of a [`hostile_peers`] input: two bytes, `[peer + 8 * kind, argument]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostileOperation {
    /// The peer negotiates a session to the end.
    Negotiate,
    /// The peer sends an offer; what we answer is held back.
    Offer,
    /// What we sent to the peer is delivered now, and the exchange runs to the end.
    Release,
    /// The peer sends a valid offer with a forged `<delay/>` (SSN-10).
    DelayedOffer,
    /// The clock moves on by the argument in seconds; our timers run.
    Wait,
    /// The peer sends its offer with one byte changed (at the argument times 7).
    MutatedOffer,
    /// The peer sends a message in its newest session.
    Message,
    /// The peer sends an encrypted-looking stanza on a thread we do not know.
    UnknownThread,
}

impl HostileOperation {
    /// Every operation, in the order of their codes.
    pub const ALL: [Self; 8] = [
        Self::Negotiate,
        Self::Offer,
        Self::Release,
        Self::DelayedOffer,
        Self::Wait,
        Self::MutatedOffer,
        Self::Message,
        Self::UnknownThread,
    ];

    /// The two input bytes that run this operation for `peer` (an index of [`HOSTILE_PEERS`]).
    pub fn encode(self, peer: usize, argument: u8) -> [u8; 2] {
        let kind = Self::ALL.iter().position(|k| *k == self).unwrap_or(0);
        #[allow(clippy::cast_possible_truncation, reason = "both are below 8")]
        let first = ((kind << 3) | (peer & 7)) as u8;
        [first, argument]
    }
}

/// Us (the responder, with [`tight_limits`]) and the hostile peers.
struct HostileWorld {
    us: Party,
    peers: Vec<Party>,
    clock: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Stanzas we sent to each peer, not yet delivered.
    held: Vec<Vec<Element>>,
    /// Each peer's newest session.
    newest: Vec<Option<SessionId>>,
    /// When we replaced a stale offer, per bare JID (the SSN-10 rate).
    reoffers: std::collections::HashMap<String, Vec<u64>>,
    /// Messages the peers sent in sessions.
    messages_sent: usize,
    /// Stanzas we sent.
    replies: usize,
}

fn is_offer(stanza: &Element) -> bool {
    stanza
        .get_child("feature", ns::FEATURE_NEG)
        .and_then(|f| f.get_child("x", ns::DATA_FORMS))
        .is_some_and(|x| x.attr("type") == Some("form"))
}

impl HostileWorld {
    fn new() -> Self {
        let clock = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(NOW));
        let mut config = base_config(BOB);
        config.compression = vec![CompressionAlgorithm::None, CompressionAlgorithm::Zlib];
        config.limits = tight_limits();
        let us = Party::with_clock(
            BOB,
            config,
            BOB_SEED,
            MemoryTrustStore::new(),
            Box::new(SteppedClock(std::sync::Arc::clone(&clock))),
        );
        let peers = HOSTILE_PEERS
            .iter()
            .zip(0u64..)
            .map(|(jid, n)| {
                let mut config = base_config(jid);
                if n >= 4 {
                    config.compression = vec![CompressionAlgorithm::Zlib];
                }
                Party::new(jid, config, ALICE_SEED + n)
            })
            .collect();
        Self {
            us,
            peers,
            clock,
            held: vec![Vec::new(); HOSTILE_PEERS.len()],
            newest: vec![None; HOSTILE_PEERS.len()],
            reoffers: std::collections::HashMap::new(),
            messages_sent: 0,
            replies: 0,
        }
    }

    fn now(&self) -> u64 {
        self.clock.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn key_pairs(&self) -> usize {
        self.us.key_pairs.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The peer a stanza of ours is addressed to.
    fn addressee(&self, stanza: &Element) -> Option<usize> {
        let to = stanza.attr("to")?;
        HOSTILE_PEERS.iter().position(|jid| *jid == to).or_else(|| {
            HOSTILE_PEERS
                .iter()
                .position(|jid| jid.split('/').next() == Some(to))
        })
    }

    /// Hands `stanza` from peer `i` to us; checks the cost and returns our replies.
    fn deliver_to_us(&mut self, i: usize, stanza: &Element) -> Vec<Element> {
        let mut stanza = over_the_wire(stanza);
        if stanza.attr("from").is_none() {
            let _ = xml::set_attr(&mut stanza, "from", HOSTILE_PEERS[i]);
        }
        let (pairs, events) = (self.key_pairs(), self.us.events.len());
        let out = self.us.manager.handle_stanza(&stanza);
        let replies = self.us.absorb(out);
        let reoffered = self.us.events[events..]
            .iter()
            .filter(|e| matches!(e, Event::StaleOfferReplaced { .. }))
            .count();
        let spent = self.key_pairs() - pairs;
        let allowed = usize::from(is_offer(&stanza)) + 2 * reoffered;
        assert!(
            spent <= allowed,
            "one stanza cost {spent} key pairs (allowed {allowed})"
        );
        if reoffered > 0 {
            let now = self.now();
            let bare = bare_of(HOSTILE_PEERS[i]).to_owned();
            let times = self.reoffers.entry(bare).or_default();
            times.extend(std::iter::repeat_n(now, reoffered));
            let recent = times.iter().filter(|t| now - **t < 60).count();
            assert!(
                recent <= tight_limits().unsolicited_starts_per_minute as usize,
                "{recent} negotiations started by unauthenticated stanzas within a minute"
            );
        }
        self.check_replies(&replies);
        self.check_census();
        replies
    }

    /// Our replies go to a hostile peer, and errors stay small.
    fn check_replies(&mut self, replies: &[Element]) {
        self.replies += replies.len();
        for reply in replies {
            assert!(
                self.addressee(reply).is_some(),
                "a reply to a stranger: {:?}",
                reply.attr("to")
            );
            if reply.attr("type") == Some("error") {
                let len = xml::serialize(reply, "").map_or(0, |t| t.len());
                assert!(
                    len <= tight_limits().max_error_echo + 1024,
                    "an error reply of {len} bytes"
                );
            }
        }
    }

    /// Every cap of [`tight_limits`] holds.
    fn check_census(&self) {
        let limits = tight_limits();
        let census = self.us.manager.census();
        let negotiating: usize = census.negotiating.values().sum();
        let established: usize = census.established.values().sum();
        for (peer, n) in &census.negotiating {
            assert!(
                *n <= limits.pending_negotiations_per_peer,
                "{n} negotiations with {peer}"
            );
        }
        for (peer, n) in &census.established {
            assert!(*n <= limits.sessions_per_peer, "{n} sessions with {peer}");
        }
        assert!(negotiating <= limits.pending_negotiations_total);
        assert!(established <= limits.sessions_total);
        assert!(census.compressed <= limits.compressed_sessions_total);
        assert!(census.timed <= limits.pending_negotiations_total);
        // (Chat states that prove retained secrets are delivered too; bodies only count.)
        let delivered = self
            .us
            .delivered_bodies(0)
            .iter()
            .filter(|body| !body.is_empty())
            .count();
        assert!(
            delivered <= self.messages_sent,
            "delivered what nobody sent"
        );
    }

    /// Runs an exchange: `first` from peer `i` to us, every reply to its peer, and so on.
    fn run(&mut self, i: usize, first: Vec<Element>) {
        let mut to_us: Vec<(usize, Element)> = first.into_iter().map(|s| (i, s)).collect();
        for _ in 0..MAX_ROUNDS {
            if to_us.is_empty() {
                return;
            }
            let mut to_peers = Vec::new();
            for (from, stanza) in std::mem::take(&mut to_us) {
                to_peers.extend(self.deliver_to_us(from, &stanza));
            }
            for stanza in to_peers {
                self.deliver_to_peer(stanza, &mut to_us);
            }
        }
    }

    /// Delivers one stanza of ours to its peer; the peer's replies join `to_us`.
    fn deliver_to_peer(&mut self, stanza: Element, to_us: &mut Vec<(usize, Element)>) {
        let Some(j) = self.addressee(&stanza) else {
            return;
        };
        let mut stanza = over_the_wire(&stanza);
        if stanza.attr("from").is_none() {
            let _ = xml::set_attr(&mut stanza, "from", BOB);
        }
        let events = self.peers[j].events.len();
        let replies = self.peers[j].receive(&stanza);
        if let Some((id, _)) = self.peers[j].established_since(events) {
            self.newest[j] = Some(id.clone());
        }
        to_us.extend(replies.into_iter().map(|s| (j, s)));
    }

    /// Our replies to peer `i` are held back.
    fn hold(&mut self, replies: Vec<Element>) {
        for reply in replies {
            if let Some(j) = self.addressee(&reply) {
                self.held[j].push(reply);
            }
        }
    }

    fn offer(&mut self, i: usize) -> Option<Element> {
        let out = self.peers[i].manager.start_session(BOB).ok()?;
        self.peers[i].absorb(out.1).into_iter().next()
    }

    fn step(&mut self, operation: HostileOperation, i: usize, argument: u8) {
        match operation {
            HostileOperation::Negotiate => {
                if let Some(offer) = self.offer(i) {
                    self.run(i, vec![offer]);
                }
            }
            HostileOperation::Offer => {
                if let Some(offer) = self.offer(i) {
                    let replies = self.deliver_to_us(i, &offer);
                    self.hold(replies);
                }
            }
            HostileOperation::Release => {
                let mut to_us = Vec::new();
                for stanza in std::mem::take(&mut self.held[i]) {
                    self.deliver_to_peer(stanza, &mut to_us);
                }
                for (from, stanza) in to_us {
                    self.run(from, vec![stanza]);
                }
            }
            HostileOperation::DelayedOffer => {
                if let Some(mut offer) = self.offer(i) {
                    let mut delay = Element::bare("delay", "urn:xmpp:delay");
                    let _ = xml::set_attr(&mut delay, "stamp", "2002-09-10T23:08:25Z");
                    offer.append_child(delay);
                    let replies = self.deliver_to_us(i, &offer);
                    self.hold(replies);
                }
            }
            HostileOperation::Wait => {
                self.clock
                    .fetch_add(u64::from(argument), std::sync::atomic::Ordering::Relaxed);
                let mut out = self.us.manager.poll_timers();
                let expired = self.us.manager.expire_negotiations();
                out.stanzas.extend(expired.stanzas);
                out.events.extend(expired.events);
                let replies = self.us.absorb(out);
                self.check_replies(&replies);
                self.check_census();
                self.hold(replies);
            }
            HostileOperation::MutatedOffer => {
                let Some(offer) = self.offer(i) else { return };
                let Ok(mut text) = xml::serialize(&offer, "").map(String::into_bytes) else {
                    return;
                };
                if text.is_empty() {
                    return;
                }
                let at = usize::from(argument) * 7 % text.len();
                text[at] = argument;
                let mutated = std::str::from_utf8(&text)
                    .ok()
                    .and_then(|t| xml::parse_document(t).ok());
                if let Some(mutated) = mutated {
                    let replies = self.deliver_to_us(i, &mutated);
                    self.hold(replies);
                }
            }
            HostileOperation::Message => {
                let Some(session) = self.newest[i].clone() else {
                    return;
                };
                let Ok(out) = self.peers[i].manager.send_text(&session, FIRST_BODY) else {
                    return;
                };
                self.messages_sent += 1;
                let stanzas = self.peers[i].absorb(out);
                self.run(i, stanzas);
            }
            HostileOperation::UnknownThread => {
                let mut stanza = Element::bare("message", ns::JABBER_CLIENT);
                let _ = xml::set_attr(&mut stanza, "to", BOB);
                let mut thread = Element::bare("thread", ns::JABBER_CLIENT);
                thread.append_text_node(format!("gone{argument}"));
                stanza.append_child(thread);
                stanza.append_child(Element::bare("c", ns::STANZA_ENCRYPTION));
                let replies = self.deliver_to_us(i, &stanza);
                self.hold(replies);
            }
        }
    }
}

fn bare_of(jid: &str) -> &str {
    jid.split('/').next().unwrap_or(jid)
}

/// Many hostile peers at once, target `hostile_peers` (issue 11). The input is a script of
/// operations ([`HostileOperation::encode`]) run against one responder with [`tight_limits`];
/// after every stanza the caps on negotiations and sessions (per bare JID, in all, zlib),
/// the key pairs per stanza, the rate of negotiations started by unauthenticated stanzas,
/// the size and addressees of replies, and what was delivered are checked.
pub fn hostile_peers(data: &[u8]) -> Outcome {
    let mut world = HostileWorld::new();
    for pair in data.chunks_exact(2).take(MAX_OPERATIONS) {
        let (first, argument) = (pair[0], pair[1]);
        let peer = usize::from(first & 7);
        let operation = HostileOperation::ALL[usize::from(first >> 3) % 8];
        world.step(operation, peer, argument);
    }
    let mut outcome = world.us.outcome(0, world.replies);
    outcome.parsed = !data.is_empty();
    outcome
}

// ---------------------------------------------------------------------------------------------
// (g) message 2 at the initiator

/// Alice after her genuine offer, and Bob's genuine answer (not delivered).
fn offered(variant: u8) -> (Party, Party, Vec<Element>) {
    let mut alice = Party::new(ALICE, base_config(ALICE), ALICE_SEED);
    let mut bob = Party::new(BOB, offer_config(variant), BOB_SEED);
    let offer = alice
        .manager
        .start_session(BOB)
        .map(|(_, out)| alice.absorb(out))
        .unwrap_or_default();
    let answer = bob.receive_all(&offer);
    (alice, bob, answer)
}

/// The initiator's handling of an answer (negotiation message 2), target `initiator_answer`
/// (issue 12: one target per message type). The input is delivered to Alice on the thread of
/// her genuine offer, from Bob. Properties: replies go to Bob only; nothing is delivered; one
/// answer never establishes a 4-message session (that needs message 4), and whatever Alice
/// sends back is a completion Bob's genuine state can judge without panicking.
///
/// Variants: 0 default policy; 1 Bob permissive (plain sessions, disclosure, `none` cipher).
pub fn initiator_answer(data: &[u8]) -> Outcome {
    let Some((variant, mut stanza)) = split(data) else {
        return Outcome::default();
    };
    let variant = variant % 2;
    let (mut alice, mut bob, genuine) = offered(variant);
    let (outcome, replies) = deliver_to_alice(&mut alice, &mut stanza, genuine.first());
    assert!(
        !outcome.established,
        "one answer cannot establish a 4-message session"
    );
    assert_eq!(
        outcome.delivered, 0,
        "nothing is delivered before keys exist"
    );
    // Bob's genuine state judges whatever Alice sent (no panic, no loop).
    exchange(&mut alice, &mut bob, replies);
    outcome
}

// ---------------------------------------------------------------------------------------------
// (h) message 4 at the initiator

/// Alice after her genuine completion (message 3), and Bob's genuine final
/// message 4 (not delivered).
fn completed(variant: u8) -> (Party, Vec<Element>) {
    let (mut alice, mut bob, answer) = offered(variant);
    let completion = alice.receive_all(&answer);
    let final_message = bob.receive_all(&completion);
    (alice, final_message)
}

/// The single value of `var` in the data form anywhere in `stanza`.
fn form_value(stanza: &Element, var: &str) -> Option<String> {
    let form = stanza
        .children()
        .flat_map(|wrapper| wrapper.children())
        .find(|x| x.is("x", ns::DATA_FORMS))?;
    let field = form
        .children()
        .find(|f| f.name() == "field" && f.attr("var") == Some(var))?;
    field
        .children()
        .find(|v| v.name() == "value")
        .map(Element::text)
}

/// Delivers `stanza` to Alice as Bob's, on the thread of `genuine` (what
/// reaches her state machine); checks that every reply goes to Bob only.
fn deliver_to_alice(
    alice: &mut Party,
    stanza: &mut Element,
    genuine: Option<&Element>,
) -> (Outcome, Vec<Element>) {
    on_thread_of(stanza, genuine);
    let _ = xml::set_attr(stanza, "from", BOB);
    let before = alice.events.len();
    let out = alice.manager.handle_stanza(stanza);
    let replies = alice.absorb(out);
    for reply in &replies {
        assert_eq!(reply.attr("to"), Some(BOB), "replies go to the sender only");
    }
    (alice.outcome(before, replies.len()), replies)
}

/// Rewrites the `<thread/>` of `stanza` to the thread of `genuine`.
fn on_thread_of(stanza: &mut Element, genuine: Option<&Element>) {
    let Some(thread) = genuine
        .and_then(|g| g.get_child("thread", ns::JABBER_CLIENT))
        .map(Element::text)
    else {
        return;
    };
    for child in stanza.children_mut() {
        if child.is("thread", ns::JABBER_CLIENT) {
            *child = Element::builder("thread", ns::JABBER_CLIENT)
                .append(thread.as_str())
                .build();
        }
    }
}

/// The initiator's handling of Bob's final message (negotiation message 4), target
/// `initiator_final` (issue 12: one target per message type). The input is delivered to
/// Alice, from Bob, on the thread of her genuine completion. Properties: replies go to Bob
/// only; nothing is delivered; and Alice establishes the session only on Bob's genuine
/// identity and MAC (ESN-27, ESN-38): no other `identity` or `mac` gets through.
///
/// Variants: 0 default policy; 1 Bob permissive (plain sessions, disclosure, `none` cipher).
pub fn initiator_final(data: &[u8]) -> Outcome {
    let Some((variant, mut stanza)) = split(data) else {
        return Outcome::default();
    };
    let (mut alice, genuine) = completed(variant % 2);
    let (outcome, _) = deliver_to_alice(&mut alice, &mut stanza, genuine.first());
    assert_eq!(outcome.delivered, 0, "message 4 carries no content");
    if outcome.established {
        for var in ["identity", "mac"] {
            assert_eq!(
                compact(form_value(&stanza, var)),
                compact(genuine.first().and_then(|g| form_value(g, var))),
                "established on a {var} Bob did not send"
            );
        }
    }
    outcome
}

/// Bob's genuine final message (message 4), as [`initiator_final`] input for `variant`.
pub fn genuine_final(variant: u8) -> Vec<u8> {
    let (_, final_message) = completed(variant % 2);
    with_variant(variant % 2, final_message.first())
}

/// Bob's genuine answer (message 2), as [`initiator_answer`] input for `variant`.
pub fn genuine_answer(variant: u8) -> Vec<u8> {
    let (_, _, answer) = offered(variant % 2);
    with_variant(variant % 2, answer.first())
}

// ---------------------------------------------------------------------------------------------
// (i) XEP-0187: an offline session's `<init/>` at the recipient

/// Fixed RSA keys for the offline target, so that its genuine input is the same in every
/// process (test keys only, used nowhere else).
const ALICE_FUZZ_KEY: &[u8] = include_bytes!("fuzzing_keys/alice-rsa2048.pk8");
const BOB_FUZZ_KEY: &[u8] = include_bytes!("fuzzing_keys/bob-rsa2048.pk8");
/// The body of Bob's offline message.
pub const OFFLINE_BODY: &str = "written while Alice was away";

/// A fuzz party identifying with `key` (bundled, valid).
#[allow(clippy::expect_used, reason = "the bundled fuzzing keys are constants")]
fn keyed_config(own_jid: &str, key: &[u8]) -> Config {
    let key = esession_crypto::SigningKey::from_pkcs8_der(key).expect("a bundled fuzzing key");
    Config {
        signing_keys: vec![std::sync::Arc::new(key)],
        own_identification: vec![crate::PubkeyMethod::Key],
        peer_identification: vec![crate::PubkeyMethod::Key],
        ..base_config(own_jid)
    }
}

/// Records `key` as the peer's, verified by the user, in a fresh trust store.
#[allow(clippy::expect_used, reason = "the bundled fuzzing keys are constants")]
fn trusting(peer: &str, key: &[u8]) -> MemoryTrustStore {
    use crate::TrustStore;
    let key = esession_crypto::SigningKey::from_pkcs8_der(key).expect("a bundled fuzzing key");
    let value = crate::trust::key_value_of(key.verifying_key()).expect("an RSA key value");
    let mut trust = MemoryTrustStore::new();
    let bare = peer.split('/').next().unwrap_or(peer);
    let recorded = trust.record_peer_key(bare, &value, NOW - 1000);
    let verified = trust.set_peer_key_verified(&crate::key_fingerprint(&value), true);
    assert!(
        recorded.is_ok() && verified.is_ok(),
        "the memory store records"
    );
    trust
}

/// Alice away, holding her published option set (variant 1: with `match_resource`), and
/// Bob's genuine `<init/>` answering it with one message.
fn offline_pair(variant: u8) -> (Party, Vec<Element>) {
    let mut alice = Party::with_trust(
        ALICE,
        keyed_config(ALICE, ALICE_FUZZ_KEY),
        ALICE_SEED,
        trusting(BOB, BOB_FUZZ_KEY),
    );
    let mut bob = Party::with_trust(
        BOB,
        keyed_config(BOB, BOB_FUZZ_KEY),
        BOB_SEED,
        trusting(ALICE, ALICE_FUZZ_KEY),
    );
    let resource = (variant % 2 == 1).then_some("pda");
    let Ok(set) = alice.manager.offline_options(24 * 60 * 60, resource) else {
        return (alice, Vec::new());
    };
    let options = set.options.clone();
    alice.manager.hold_offline_options(set);
    let mut first = Element::builder("message", ns::JABBER_CLIENT).build();
    first.append_child(
        Element::builder("body", ns::JABBER_CLIENT)
            .append(OFFLINE_BODY)
            .build(),
    );
    let Ok(contact) = jid::BareJid::new("alice@example.org") else {
        return (alice, Vec::new());
    };
    let init = bob
        .manager
        .start_offline_session(&contact, &options, Some(&first), false)
        .map(|(_, out)| bob.absorb(out))
        .unwrap_or_default();
    (alice, init)
}

/// The recipient's handling of an offline session's `<init/>` (XEP-0187), target
/// `offline_init`. The input is delivered to Alice, who holds one published option set,
/// from Bob. Properties: Alice never sends anything (OFF-15/16: not even an error); she
/// establishes only on Bob's genuine identity and MAC; nothing is delivered without an
/// established session; and her genuine input still reads afterwards unless the input
/// was that very session (a failure records nothing, AMB-72).
///
/// Variants: 0 options for any resource; 1 with `match_resource`.
pub fn offline_init(data: &[u8]) -> Outcome {
    let Some((variant, mut stanza)) = split(data) else {
        return Outcome::default();
    };
    let (mut alice, genuine) = offline_pair(variant % 2);
    let _ = xml::set_attr(&mut stanza, "from", BOB);
    let out = alice.manager.handle_stanza(&stanza);
    let replies = alice.absorb(out);
    // An `<init/>` is never answered (OFF-15/16); anything else is ordinary traffic on an
    // unknown thread, which may be answered, to the sender only.
    if stanza.get_child("init", ns::ESESSION_INIT).is_some() {
        assert!(
            replies.is_empty(),
            "the recipient of an offline session never sends"
        );
    }
    for reply in &replies {
        assert_eq!(reply.attr("to"), Some(BOB), "replies go to the sender only");
    }
    let outcome = alice.outcome(0, replies.len());
    if outcome.established {
        for var in ["identity", "mac"] {
            assert_eq!(
                compact(form_value(&stanza, var)),
                compact(genuine.first().and_then(|g| form_value(g, var))),
                "established on a {var} Bob did not send"
            );
        }
    } else {
        assert_eq!(
            outcome.delivered, 0,
            "nothing is delivered without a session"
        );
        // The genuine stanza still reads: a failure recorded nothing.
        let before = alice.events.len();
        let replies = alice.receive_all(&genuine);
        assert!(replies.is_empty(), "the recipient never sends");
        assert_eq!(
            alice.delivered_bodies(before),
            [OFFLINE_BODY],
            "the genuine offline message reads after a rejected one"
        );
    }
    outcome
}

/// CMN-02: white space inside Base64 is not part of the value.
fn compact(text: Option<String>) -> Option<String> {
    text.map(|t| t.chars().filter(|c| !c.is_ascii_whitespace()).collect())
}

/// Bob's genuine `<init/>`, as [`offline_init`] input for `variant`.
pub fn genuine_offline_init(variant: u8) -> Vec<u8> {
    let (_, init) = offline_pair(variant % 2);
    with_variant(variant % 2, init.first())
}
