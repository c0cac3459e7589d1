#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
//! Protocol-level replay of the independent transcripts in `vectors/`: with the
//! transcript's private values, nonces, counter and decoys injected, both of our
//! parties must emit every stanza byte for byte (ESN-04..41, ENC-01..13, SSN-15,
//! ESN-45/46), and decrypt each other's messages.

use std::collections::{HashMap, VecDeque};

use esession::{
    Config, Event, FixedClock, MemoryTrustStore, RandomPurpose, Randomness, RetainedSecret,
    SessionManager, TerminationReason, TrustStore,
};
use esession_crypto::{
    CipherAlgorithm, CompressionAlgorithm, DhKeyPair, ExponentSize, HashAlgorithm, ModpGroup,
    SecretBytes,
};
use esession_wire::minidom::Element;
use esession_wire::{ns, xml};
use serde_json::Value;

/// Answers each purpose with the transcript's values, in order.
#[derive(Default)]
struct Scripted {
    bytes: HashMap<String, VecDeque<Vec<u8>>>,
    exponents: HashMap<u32, Vec<u8>>,
}

impl Scripted {
    fn push(&mut self, purpose: RandomPurpose, value: Vec<u8>) {
        self.bytes
            .entry(format!("{purpose:?}"))
            .or_default()
            .push_back(value);
    }
}

impl Randomness for Scripted {
    fn fill(&mut self, purpose: RandomPurpose, out: &mut [u8]) {
        let value = self
            .bytes
            .get_mut(&format!("{purpose:?}"))
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| panic!("transcript has no value for {purpose:?}"));
        assert_eq!(value.len(), out.len(), "length of {purpose:?}");
        out.copy_from_slice(&value);
    }

    fn dh_key_pair(&mut self, group: ModpGroup, _: ExponentSize) -> DhKeyPair {
        let x = self
            .exponents
            .get(&group.id())
            .unwrap_or_else(|| panic!("no exponent for {group:?}"));
        DhKeyPair::from_private_exponent(group, x).unwrap()
    }

    fn permutation(&mut self, n: usize) -> Vec<usize> {
        (0..n).collect()
    }
}

fn load(name: &str) -> Value {
    let path = format!("{}/../../vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn h(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(v[key].as_str().unwrap()).unwrap()
}

fn config(own: &str) -> Config {
    Config {
        own_jid: Some(own.to_owned()),
        groups: vec![
            ModpGroup::Group5,
            ModpGroup::Group14,
            ModpGroup::Group2,
            ModpGroup::Group1,
        ],
        ciphers: vec![
            CipherAlgorithm::Aes128Ctr,
            CipherAlgorithm::Aes192Ctr,
            CipherAlgorithm::Aes256Ctr,
        ],
        hashes: vec![HashAlgorithm::Sha256],
        compression: vec![CompressionAlgorithm::None],
        rekey_freq: 1,
        // The transcripts' initiator proves its retained secret with its
        // first message, as any peer may: Bob announces at once (AMB-57).
        retained_secret_proof_wait: 0,
        // Replayed byte for byte: no stanza beyond the transcript's own.
        prove_retained_secret_at_once: false,
        // The transcripts offer `may, mustnot` and answer `may`: a client
        // conceding (ARC-03/04) whose server archive is confirmed off.
        otr_policy: esession::OtrPolicy::Concede,
        off_the_record_possible: true,
        ..Config::default()
    }
}

fn text(el: &Element) -> String {
    xml::serialize(el, "").unwrap()
}

fn body_of(event: &Event) -> Option<String> {
    match event {
        Event::MessageReceived { message, .. } => message
            .get_child("body", ns::JABBER_CLIENT)
            .map(Element::text),
        _ => None,
    }
}

fn replay(name: &str, oss: Option<&str>) {
    let v = load(name);
    let alice_jid = v["parameters"]["alice_jid"].as_str().unwrap();
    let bob_jid = v["parameters"]["bob_jid"].as_str().unwrap();
    let (a, b) = (&v["derived"]["alice"], &v["derived"]["bob"]);
    let stanzas: Vec<String> = v["stanzas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["xml"].as_str().unwrap().to_owned())
        .collect();
    let srs_hex = a["SRS"].as_str().unwrap();

    let mut alice_rng = Scripted::default();
    alice_rng.push(
        RandomPurpose::ThreadId,
        hex::decode(v["active"]["alice"]["thread"].as_str().unwrap()).unwrap(),
    );
    alice_rng.push(RandomPurpose::Nonce, h(a, "N_A"));
    for id in [5u32, 14, 2, 1] {
        alice_rng.exponents.insert(id, h(a, &format!("x_{id}")));
    }
    let rshashes: Vec<Vec<u8>> = a["rshashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| hex::decode(x.as_str().unwrap()).unwrap())
        .collect();
    // With a retained secret the first value is its rshash, the rest are decoys.
    let decoys = if srs_hex.is_empty() {
        &rshashes[..]
    } else {
        &rshashes[1..]
    };
    for d in decoys {
        alice_rng.push(RandomPurpose::RetainedSecretDecoy, d.clone());
    }

    let mut bob_rng = Scripted::default();
    bob_rng.push(RandomPurpose::Nonce, h(b, "N_B"));
    bob_rng.push(RandomPurpose::Counter, h(b, "C_A"));
    bob_rng.exponents.insert(5, h(b, "y"));
    if srs_hex.is_empty() {
        bob_rng.push(RandomPurpose::SrshashPlaceholder, h(b, "srshash"));
    }

    let mut alice_trust = MemoryTrustStore::new();
    let mut bob_trust = MemoryTrustStore::new();
    if !srs_hex.is_empty() {
        let srs = hex::decode(srs_hex).unwrap();
        let stored = |client: &str| RetainedSecret {
            client: client.to_owned(),
            secret: SecretBytes::from_slice(&srs),
            created: 1_000,
            verified: false,
        };
        alice_trust
            .store_retained_secret("bob@example.com", stored("laptop"))
            .unwrap();
        bob_trust
            .store_retained_secret("alice@example.org", stored("pda"))
            .unwrap();
    }
    if let Some(pw) = oss {
        alice_trust.set_other_secret("bob@example.com", SecretBytes::from_slice(pw.as_bytes()));
        bob_trust.set_other_secret("alice@example.org", SecretBytes::from_slice(pw.as_bytes()));
    }
    let mut alice = SessionManager::new(
        config(alice_jid),
        Box::new(alice_rng),
        Box::new(alice_trust),
        Box::new(FixedClock(2_000)),
    )
    .unwrap();
    let mut bob = SessionManager::new(
        config(bob_jid),
        Box::new(bob_rng),
        Box::new(bob_trust),
        Box::new(FixedClock(2_000)),
    )
    .unwrap();

    // Message 1.
    let (alice_id, out) = alice.start_session(bob_jid).unwrap();
    assert_eq!(out.stanzas.len(), 1);
    assert_eq!(text(&out.stanzas[0]), stanzas[0], "stanza 1 (offer)");
    // Message 2.
    let out = bob.handle_stanza(&out.stanzas[0]);
    assert!(out.events.is_empty(), "{:?}", out.events);
    assert_eq!(text(&out.stanzas[0]), stanzas[1], "stanza 2 (answer)");
    // Message 3.
    let out = alice.handle_stanza(&out.stanzas[0]);
    assert!(out.events.is_empty(), "{:?}", out.events);
    assert_eq!(text(&out.stanzas[0]), stanzas[2], "stanza 3 (completion)");
    // Message 4.
    let out = bob.handle_stanza(&out.stanzas[0]);
    assert_eq!(text(&out.stanzas[0]), stanzas[3], "stanza 4 (final)");
    let expected_sas = v["active"]["bob"]["sas"].as_str().unwrap();
    let with_rs = !srs_hex.is_empty();
    let [
        Event::Established {
            session: bob_id,
            info,
        },
    ] = &out.events[..]
    else {
        panic!("{:?}", out.events)
    };
    assert_eq!(info.sas, expected_sas);
    // AMB-57: Bob only claims retained-secret authentication once Alice's first
    // stanza proves she holds K_final.
    assert!(!info.authenticated_by_retained_secret);
    assert_eq!(info.other_secret_used, oss.is_some());
    let bob_id = bob_id.clone();
    let out = alice.handle_stanza(&out.stanzas[0]);
    let [Event::Established { info, .. }] = &out.events[..] else {
        panic!("{:?}", out.events)
    };
    assert_eq!(info.sas, expected_sas);
    assert_eq!(info.authenticated_by_retained_secret, with_rs);
    assert!(out.stanzas.is_empty());

    // Messages: stanza n from its sender, decrypted by the other side.
    for m in v["messages"].as_array().unwrap() {
        let n = m["stanza"].as_u64().unwrap() as usize;
        let from_alice = m["from"] == "alice";
        if m["terminate"].as_bool().unwrap() || m["terminate_ack"].as_bool().unwrap() {
            continue;
        }
        let body = m["text"].as_str().unwrap();
        let (sender, receiver, id) = if from_alice {
            (&mut alice, &mut bob, &alice_id)
        } else {
            (&mut bob, &mut alice, &bob_id)
        };
        let out = sender.send_text(id, body).unwrap();
        assert_eq!(text(&out.stanzas[0]), stanzas[n - 1], "stanza {n}");
        let received = receiver.handle_stanza(&out.stanzas[0]);
        let proven = received
            .events
            .iter()
            .filter(|e| matches!(e, Event::RetainedSecretProven { .. }))
            .count();
        let first_from_alice = from_alice && n == 5;
        assert_eq!(
            proven,
            usize::from(first_from_alice && with_rs),
            "{:?}",
            received.events
        );
        let bodies: Vec<String> = received.events.iter().filter_map(body_of).collect();
        assert_eq!(bodies, vec![body.to_owned()]);
    }

    assert_eq!(
        bob.session_info(&bob_id)
            .unwrap()
            .authenticated_by_retained_secret,
        with_rs
    );

    // Termination: encrypted terminate form and its encrypted acknowledgement (ESN-45/46).
    let index_of = |flag: &str| {
        let m = v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m[flag].as_bool().unwrap())
            .unwrap();
        m["stanza"].as_u64().unwrap() as usize - 1
    };
    let out = alice.terminate(&alice_id).unwrap();
    assert_eq!(
        text(&out.stanzas[0]),
        stanzas[index_of("terminate")],
        "terminate"
    );
    assert!(
        alice.send_text(&alice_id, "late").is_err(),
        "ESN-47: nothing after terminate"
    );
    let ack = bob.handle_stanza(&out.stanzas[0]);
    assert_eq!(
        text(&ack.stanzas[0]),
        stanzas[index_of("terminate_ack")],
        "acknowledgement"
    );
    assert!(matches!(
        ack.events[..],
        [Event::Terminated {
            reason: TerminationReason::PeerRequest,
            ..
        }]
    ));
    let done = alice.handle_stanza(&ack.stanzas[0]);
    assert!(matches!(
        done.events[..],
        [Event::Terminated {
            reason: TerminationReason::LocalRequest,
            ..
        }]
    ));
    assert!(bob.send_text(&bob_id, "after").is_err());

    // ESN-40: both stored the same new retained secret.
    let rs_new = h(a, "RS_new");
    let alice_rs = alice.trust().retained_secrets("bob@example.com").unwrap();
    let bob_rs = bob.trust().retained_secrets("alice@example.org").unwrap();
    assert!(alice_rs[0].secret.ct_eq(&rs_new));
    assert!(bob_rs[0].secret.ct_eq(&rs_new));
    // AMB-57: both confirmed, so only the new one remains.
    assert_eq!(alice_rs.len(), 1);
    assert_eq!(bob_rs.len(), 1);
}

#[test]
fn replays_the_4msg_transcript_byte_for_byte() {
    replay("esession-4msg.json", None);
}

#[test]
fn replays_the_retained_secret_and_password_transcript_byte_for_byte() {
    replay(
        "esession-4msg-retained-secret-and-password.json",
        Some("correct horse battery staple"),
    );
}
