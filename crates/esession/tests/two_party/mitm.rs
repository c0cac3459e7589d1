//! Mallory in the middle: two session managers of her own, one posing as Bob
//! towards Alice and one posing as Alice towards Bob, each running its own
//! Diffie-Hellman with one victim. She rewrites the ThreadID of her session
//! with Bob to Alice's, so that both victims see the same conversation, and
//! relays (reads and re-encrypts) every message.
//!
//! ```text
//!   Alice ◄──────► Mallory-as-Bob ┆ Mallory-as-Alice ◄──────► Bob
//!        thread T, keys K1         ┆   thread T' (shown as T), keys K2
//! ```
//!
//! What catches her: the SAS (ESN-33) and the retained secret shared by the
//! victims from an earlier, unattacked session (ESN-35..41).

use std::collections::VecDeque;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use esession::{
    Config, Event, FixedClock, MemoryTrustStore, RandomPurpose, Randomness, SessionId, SessionInfo,
    SessionManager, SystemRandomness,
};
use esession_crypto::{DhKeyPair, ExponentSize, ModpGroup};
use esession_wire::minidom::Element;
use esession_wire::ns;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

use crate::harness::{ALICE, BOB, Pair, Party, Side, config, field, field_values, form, thread_of};

/// The four managers on the path.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Node {
    Alice,
    /// Mallory's manager that Alice talks to (own JID: Bob's).
    MalloryAsBob,
    /// Mallory's manager that Bob talks to (own JID: Alice's).
    MalloryAsAlice,
    Bob,
}

struct World {
    alice: Party,
    mallory_as_bob: Party,
    mallory_as_alice: Party,
    bob: Party,
    /// Whether Mallory is on the path (else stanzas go straight through).
    active: bool,
    /// (the victims' thread, Mallory's thread towards Bob).
    threads: Vec<(String, String)>,
}

impl World {
    fn new(seed: u64) -> Self {
        Self {
            alice: Party::new(ALICE, config(ALICE), seed),
            // Mallory claims the victims' JIDs (a server she controls, or a
            // compromised link); her stanzas carry them in `from`.
            mallory_as_bob: Party::new(BOB, config(BOB), seed + 100),
            mallory_as_alice: Party::new(ALICE, config(ALICE), seed + 200),
            bob: Party::new(BOB, config(BOB), seed + 1),
            active: false,
            threads: Vec::new(),
        }
    }

    fn party(&mut self, node: Node) -> &mut Party {
        match node {
            Node::Alice => &mut self.alice,
            Node::MalloryAsBob => &mut self.mallory_as_bob,
            Node::MalloryAsAlice => &mut self.mallory_as_alice,
            Node::Bob => &mut self.bob,
        }
    }

    fn rewrite_thread(stanza: &mut Element, from: &str, to: &str) {
        if let Some(thread) = stanza.get_child_mut("thread", ns::JABBER_CLIENT)
            && thread.text() == from
        {
            thread.take_nodes();
            thread.append_text_node(to);
        }
    }

    /// Where a stanza from `from` goes, with Mallory's thread rewriting.
    fn wire(&self, from: Node, mut stanza: Element) -> (Node, Element) {
        let to = match (self.active, from) {
            (false, Node::Alice) => Node::Bob,
            (false, Node::Bob) => Node::Alice,
            (true, Node::Alice) => Node::MalloryAsBob,
            (true, Node::MalloryAsBob) => Node::Alice,
            (true, Node::MalloryAsAlice) => Node::Bob,
            (true, Node::Bob) => Node::MalloryAsAlice,
            (false, node) => panic!("{node:?} is off the path"),
        };
        for (victims, mallorys) in &self.threads {
            match from {
                Node::MalloryAsAlice => Self::rewrite_thread(&mut stanza, mallorys, victims),
                Node::Bob => Self::rewrite_thread(&mut stanza, victims, mallorys),
                _ => {}
            }
        }
        (to, stanza)
    }

    /// Carries stanzas until the path is quiet. Mallory opens her own session
    /// towards Bob when Alice's offer reaches her, and relays every message.
    fn run(&mut self, from: Node, stanzas: Vec<Element>) {
        let mut queue: VecDeque<(Node, Element)> = stanzas.into_iter().map(|s| (from, s)).collect();
        let mut carried = 0;
        while let Some((sender, stanza)) = queue.pop_front() {
            carried += 1;
            assert!(carried < 100, "stanza loop");
            let (to, stanza) = self.wire(sender, stanza);
            if to == Node::MalloryAsBob && is_offer(&stanza) {
                let victims = thread_of(&stanza).unwrap();
                let (id, out) = self.mallory_as_alice.manager.start_session(BOB).unwrap();
                self.threads.push((victims, id.thread));
                let offer = self.mallory_as_alice.absorb(out);
                queue.extend(offer.into_iter().map(|s| (Node::MalloryAsAlice, s)));
            }
            let seen = self.party(to).events.len();
            let replies = self.party(to).receive(&stanza);
            queue.extend(replies.into_iter().map(|s| (to, s)));
            // Mallory reads what she decrypted and re-encrypts it for the other victim.
            let relay_via = match to {
                Node::MalloryAsBob => Some(Node::MalloryAsAlice),
                Node::MalloryAsAlice => Some(Node::MalloryAsBob),
                _ => None,
            };
            if let Some(via) = relay_via {
                let fresh: Vec<String> = self.party(to).events[seen..]
                    .iter()
                    .filter_map(|e| match e {
                        esession::Event::MessageReceived { message, .. } => message
                            .get_child("body", ns::JABBER_CLIENT)
                            .map(Element::text),
                        _ => None,
                    })
                    .collect();
                for body in fresh {
                    let thread = self.mallory_thread(via);
                    let peer = if via == Node::MalloryAsAlice {
                        BOB
                    } else {
                        ALICE
                    };
                    let id = esession::SessionId {
                        peer: peer.parse().unwrap(),
                        thread,
                    };
                    let out = self.party(via).manager.send_text(&id, &body).unwrap();
                    let sent = self.party(via).absorb(out);
                    queue.extend(sent.into_iter().map(|s| (via, s)));
                }
            }
        }
    }

    /// The thread Mallory's manager `via` uses for the (only) attacked session.
    fn mallory_thread(&self, via: Node) -> String {
        let (victims, mallorys) = self.threads.last().expect("an attacked session").clone();
        if via == Node::MalloryAsAlice {
            mallorys
        } else {
            victims
        }
    }

    /// Alice starts a session; returns its thread as the victims see it.
    fn negotiate(&mut self) -> String {
        let (id, out) = self.alice.manager.start_session(BOB).unwrap();
        let stanzas = self.alice.absorb(out);
        self.run(Node::Alice, stanzas);
        id.thread
    }

    /// `from` (a victim) sends `text` on `thread`.
    fn chat(&mut self, from: Side, thread: &str, text: &str) {
        let node = match from {
            Side::Alice => Node::Alice,
            Side::Bob => Node::Bob,
        };
        let out = self
            .party(node)
            .manager
            .send_text(&Pair::id(from, thread), text)
            .unwrap();
        let stanzas = self.party(node).absorb(out);
        self.run(node, stanzas);
    }

    fn last_info(&mut self, node: Node) -> SessionInfo {
        self.party(node)
            .established()
            .last()
            .map(|(_, info)| (*info).clone())
            .unwrap_or_else(|| panic!("{node:?} has no session"))
    }
}

fn is_offer(stanza: &Element) -> bool {
    form(stanza).is_some_and(|x| x.attr("type") == Some("form"))
}

#[test]
fn a_relaying_mallory_gets_both_sessions_but_the_sas_differ() {
    // ESN-33: comparing the SAS is what reveals her.
    let mut world = World::new(81);
    world.active = true;
    let thread = world.negotiate();
    for node in [
        Node::Alice,
        Node::MalloryAsBob,
        Node::MalloryAsAlice,
        Node::Bob,
    ] {
        assert_eq!(world.party(node).established().len(), 1, "{node:?}");
    }
    // Bob sees Alice's JID and Alice's thread.
    let (bob_id, _) = world.bob.established()[0];
    assert_eq!(bob_id, &Pair::id(Side::Bob, &thread));
    let (alice_id, _) = world.alice.established()[0];
    assert_eq!(alice_id, &Pair::id(Side::Alice, &thread));
    let alice = world.last_info(Node::Alice);
    let bob = world.last_info(Node::Bob);
    // Each victim agrees with Mallory's end of its own leg ...
    assert_eq!(alice.sas, world.last_info(Node::MalloryAsBob).sas);
    assert_eq!(bob.sas, world.last_info(Node::MalloryAsAlice).sas);
    // ... but not with the other victim.
    assert_ne!(alice.sas, bob.sas, "ESN-33");
    assert!(!alice.authenticated_by_retained_secret && !bob.authenticated_by_retained_secret);

    // Without the SAS check the relay works: Mallory reads everything.
    world.chat(Side::Alice, &thread, "meet at noon");
    world.chat(Side::Bob, &thread, "ok");
    assert_eq!(world.bob.bodies(), ["meet at noon"]);
    assert_eq!(world.alice.bodies(), ["ok"]);
    assert_eq!(world.mallory_as_bob.bodies(), ["meet at noon"]);
    assert_eq!(world.mallory_as_alice.bodies(), ["ok"]);
}

#[test]
fn an_unattacked_second_session_is_authenticated_by_the_retained_secret() {
    // ESN-35..41: the control case for the next test. AMB-57: Bob's claim is
    // provisional until Alice's first stanza under the final keys verifies.
    let mut world = World::new(82);
    world.negotiate();
    assert!(
        !world
            .last_info(Node::Alice)
            .authenticated_by_retained_secret
    );
    let thread = world.negotiate();
    assert!(
        world
            .last_info(Node::Alice)
            .authenticated_by_retained_secret
    );
    assert!(!world.last_info(Node::Bob).authenticated_by_retained_secret);
    world.chat(Side::Alice, &thread, "it is me");
    assert_eq!(world.bob.bodies(), ["it is me"]);
    assert_eq!(world.bob.retained_proofs(), [false], "AMB-57");
    assert!(bob_now(&world, &thread).authenticated_by_retained_secret);
    assert!(world.mallory_as_bob.events.is_empty() && world.mallory_as_alice.events.is_empty());
}

/// What Bob's manager reports now for the session on `thread`.
fn bob_now(world: &World, thread: &str) -> SessionInfo {
    world
        .bob
        .manager
        .session_info(&Pair::id(Side::Bob, thread))
        .cloned()
        .expect("Bob has the session")
}

#[test]
fn an_attacked_session_after_a_genuine_one_is_not_authenticated_by_the_retained_secret() {
    // ESN-35/37/41: Mallory holds no secret shared by the victims: Bob finds no
    // rshashes match for Mallory-as-Alice, and Alice no srshash match for
    // Mallory-as-Bob; both victims can see that this session is unauthenticated.
    let mut world = World::new(83);
    world.negotiate();
    let genuine_alice = world.last_info(Node::Alice);
    let genuine_bob = world.last_info(Node::Bob);
    assert_eq!(genuine_alice.sas, genuine_bob.sas);
    world.active = true;
    let thread = world.negotiate();
    let alice = world.last_info(Node::Alice);
    let bob = world.last_info(Node::Bob);
    assert_eq!(world.alice.established().len(), 2);
    assert_eq!(world.bob.established().len(), 2);
    assert!(
        !alice.authenticated_by_retained_secret,
        "Alice: srshash mismatch"
    );
    assert!(
        !bob.authenticated_by_retained_secret,
        "Bob: no rshashes match"
    );
    assert!(alice.sas_reminder && bob.sas_reminder, "ESN-34");
    assert_ne!(alice.sas, bob.sas);
    // AMB-57: Mallory-as-Alice's stanzas verify at Bob, but she claimed no
    // retained secret, so nothing is proven: Bob stays unauthenticated.
    world.chat(Side::Alice, &thread, "relayed");
    assert_eq!(world.bob.bodies(), ["relayed"]);
    assert!(world.bob.retained_proofs().is_empty());
    let bob_now = bob_now(&world, &thread);
    assert!(!bob_now.authenticated_by_retained_secret && bob_now.sas_reminder);
    // Mallory, too, found nothing.
    assert!(
        !world
            .last_info(Node::MalloryAsBob)
            .authenticated_by_retained_secret
    );
    assert!(
        !world
            .last_info(Node::MalloryAsAlice)
            .authenticated_by_retained_secret
    );
}

#[test]
fn a_verified_chain_does_not_carry_over_to_an_attacked_session() {
    // ESN-42: the victims confirmed the SAS of their genuine session; Mallory's
    // sessions must not inherit "verified".
    let mut world = World::new(84);
    let thread = world.negotiate();
    world
        .alice
        .manager
        .confirm_sas(&Pair::id(Side::Alice, &thread))
        .unwrap();
    world
        .bob
        .manager
        .confirm_sas(&Pair::id(Side::Bob, &thread))
        .unwrap();
    world.active = true;
    let attacked = world.negotiate();
    world.chat(Side::Alice, &attacked, "relayed");
    for node in [Node::Alice, Node::Bob] {
        let info = world.last_info(node);
        assert!(!info.retained_chain_verified, "{node:?}");
        assert!(info.sas_reminder, "{node:?}");
    }
    // AMB-57: nothing proven at Bob after Alice's (relayed) message either.
    assert!(world.bob.retained_proofs().is_empty());
    let bob = bob_now(&world, &attacked);
    assert!(!bob.retained_chain_verified && bob.sas_reminder);
}

#[test]
fn after_an_attack_the_next_genuine_session_is_not_authenticated_either() {
    // ESN-40: each victim replaced its retained secret with one shared with
    // Mallory, so the chain between the victims is broken - a lasting sign.
    let mut world = World::new(85);
    world.negotiate();
    world.active = true;
    world.negotiate();
    world.active = false;
    let thread = world.negotiate();
    let alice = world.last_info(Node::Alice);
    let bob = world.last_info(Node::Bob);
    assert_eq!(alice.sas, bob.sas, "a genuine session again");
    assert!(!alice.authenticated_by_retained_secret);
    assert!(!bob.authenticated_by_retained_secret);
    // Alice's first stanza proves nothing to Bob: no retained secret was claimed.
    world.chat(Side::Alice, &thread, "hello again");
    assert_eq!(world.bob.bodies(), ["hello again"]);
    assert!(world.bob.retained_proofs().is_empty());
    assert!(!bob_now(&world, &thread).authenticated_by_retained_secret);
}

/// Mallory's randomness: her own CSPRNG, except that the nonce and the
/// `rshashes` decoys are values she captured from the victims.
struct Replaying {
    inner: SystemRandomness<ChaCha20Rng>,
    nonce: Option<Vec<u8>>,
    decoys: VecDeque<Vec<u8>>,
}

impl Randomness for Replaying {
    fn fill(&mut self, purpose: RandomPurpose, out: &mut [u8]) {
        let replayed = match purpose {
            RandomPurpose::Nonce => self.nonce.take(),
            RandomPurpose::RetainedSecretDecoy => self.decoys.pop_front(),
            _ => None,
        };
        match replayed {
            Some(value) => out.copy_from_slice(&value),
            None => self.inner.fill(purpose, out),
        }
    }

    fn dh_key_pair(&mut self, group: ModpGroup, size: ExponentSize) -> DhKeyPair {
        self.inner.dh_key_pair(group, size)
    }

    fn permutation(&mut self, n: usize) -> Vec<usize> {
        self.inner.permutation(n)
    }
}

#[test]
fn replaying_alices_nonce_and_rshashes_gives_mallory_no_session_and_keeps_the_chain() {
    // ESN-30/35/36: rshashes are HMAC(N_A, RS). Mallory, posing as Alice,
    // reuses the N_A and rshashes of a session she watched, so Bob finds the
    // victims' retained secret - and mixes it into K_final, which Mallory
    // cannot compute: she fails on message 4 and never holds a session.
    // AMB-57: the match is only a claim, so Bob never reports this session as
    // authenticated by the retained secret (no `RetainedSecretProven`); and he
    // keeps the victims' chain, so their next session still authenticates.
    let mut pair = Pair::new(86);
    pair.handshake();
    // A second genuine session, watched by Mallory (no message follows it).
    let watched = pair.log.len();
    pair.handshake();
    let offer = &pair.log[watched].1;
    let completion = &pair.log[watched + 2].1;
    let n_a = field_values(&field(offer, "my_nonce").unwrap()).remove(0);
    let rshashes = field_values(&field(completion, "rshashes").unwrap());
    let decode = |v: &str| STANDARD.decode(v).unwrap();

    let mallory_config = Config {
        rshash_decoys: rshashes.len(),
        ..config(ALICE)
    };
    let mut mallory = SessionManager::new(
        mallory_config,
        Box::new(Replaying {
            inner: SystemRandomness::new(ChaCha20Rng::seed_from_u64(666)),
            nonce: Some(decode(&n_a)),
            decoys: rshashes.iter().map(|v| decode(v)).collect(),
        }),
        Box::new(MemoryTrustStore::new()),
        Box::new(FixedClock(crate::harness::NOW)),
    )
    .unwrap();
    let bob_sessions = pair.bob.established().len();
    let (id, out) = mallory.start_session(BOB).unwrap();
    let mut to_bob = out.stanzas;
    let mut mallory_events = Vec::new();
    let mut mallory_errors = Vec::new();
    for _ in 0..3 {
        let Some(stanza) = to_bob.pop() else { break };
        let replies = pair.bob.receive(&stanza);
        to_bob.clear();
        for reply in replies {
            let out = mallory.handle_stanza(&crate::harness::over_the_wire(&reply));
            mallory_events.extend(out.events);
            for s in out.stanzas {
                if s.attr("type") == Some("error") {
                    mallory_errors.push(s);
                } else {
                    to_bob.push(s);
                }
            }
        }
    }
    // Bob answered and sent his final message; Mallory cannot verify it.
    // AMB-57: Bob's rshashes matched the victims' retained secret, but that is
    // only a claim: he does not report authentication, and Mallory never sends
    // a stanza under K_final that could prove it.
    assert_eq!(pair.bob.established().len(), bob_sessions + 1);
    let replayed = SessionId {
        peer: ALICE.parse().unwrap(),
        thread: id.thread.clone(),
    };
    let (bob_id, bob_info) = pair.bob.established()[bob_sessions];
    assert_eq!(bob_id, &replayed);
    assert!(!bob_info.authenticated_by_retained_secret, "AMB-57");
    assert!(!bob_info.retained_chain_verified && bob_info.sas_reminder);
    let now = pair.bob.manager.session_info(&replayed).cloned().unwrap();
    assert!(!now.authenticated_by_retained_secret, "AMB-57");
    assert!(!now.retained_chain_verified && now.sas_reminder);
    assert!(
        pair.bob.retained_proofs().is_empty(),
        "AMB-57: nothing proven"
    );
    assert!(
        !mallory_events
            .iter()
            .any(|e| matches!(e, Event::Established { .. })),
        "{mallory_events:?}"
    );
    assert_eq!(mallory_errors.len(), 1);
    assert_eq!(
        crate::harness::stanza_error(&mallory_errors[0])
            .unwrap()
            .condition,
        Some(esession::ssn::ErrorCondition::FeatureNotImplemented)
    );
    assert_eq!(
        mallory.send_text(&id, "I am Alice").unwrap_err(),
        esession::Error::UnknownSession
    );
    // Mallory's refusal reaches Bob before any stanza from "Alice": ESN-10,
    // Bob forgets the session (late refusal), still without a proof.
    let bob_events = pair.bob.events.len();
    assert!(pair.bob.receive(&mallory_errors[0]).is_empty());
    assert!(
        matches!(
            &pair.bob.events[bob_events..],
            [Event::NegotiationFailed { session, error: esession::Error::PeerError { condition: Some(esession::ssn::ErrorCondition::FeatureNotImplemented), .. } }]
                if *session == replayed
        ),
        "{:?}",
        &pair.bob.events[bob_events..]
    );
    assert!(pair.bob.manager.session_info(&replayed).is_none());
    assert!(pair.bob.retained_proofs().is_empty());
    // The victims' next session still authenticates by their retained secret,
    // at Bob once Alice's first message proves it.
    let thread = pair.handshake();
    assert!(pair.info(Side::Alice).authenticated_by_retained_secret);
    assert!(!pair.info(Side::Bob).authenticated_by_retained_secret);
    assert_eq!(pair.alice_proves(&thread), Some(false), "AMB-57");
    assert!(
        pair.session_info(Side::Bob, &thread)
            .unwrap()
            .authenticated_by_retained_secret
    );
}
