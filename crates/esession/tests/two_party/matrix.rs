//! Issue 5 item 4: every algorithm the crypto suite supports is negotiable end
//! to end (ESN-05). Each run restricts both parties to one choice per field, so
//! the session can only establish with exactly that algorithm, then checks what
//! was agreed and that messages flow both ways with their content intact.
//! Groups 15-18 are in `slow_groups` (marked slow).

use std::sync::Arc;

use esession::{Config, Event, FlowPolicy, PubkeyMethod, SecurityAlert};
use esession_crypto::{
    CipherAlgorithm, CompressionAlgorithm, HashAlgorithm, ModpGroup, SigningKey,
};

use crate::harness::{ALICE, BOB, Pair, Side, config, dsa_key, keyed_config, rsa_key};

/// Both parties limited to one cipher, hash, compression and group.
fn single_choice(
    own_jid: &str,
    cipher: CipherAlgorithm,
    hash: HashAlgorithm,
    compression: CompressionAlgorithm,
    group: ModpGroup,
) -> Config {
    Config {
        ciphers: vec![cipher],
        hashes: vec![hash],
        compression: vec![compression],
        groups: vec![group],
        dangerously_allow_none_cipher: cipher == CipherAlgorithm::None,
        ..config(own_jid)
    }
}

/// Negotiates with exactly these algorithms and exchanges messages both ways;
/// returns a description of any failure (so the matrix reports every cell).
fn run_cell(
    cipher: CipherAlgorithm,
    hash: HashAlgorithm,
    compression: CompressionAlgorithm,
    group: ModpGroup,
    seed: u64,
) -> Result<(), String> {
    let alice = single_choice(ALICE, cipher, hash, compression, group);
    let bob = single_choice(BOB, cipher, hash, compression, group);
    let mut pair = Pair::with_configs(alice, bob, seed);
    let thread = pair.handshake();
    for side in [Side::Alice, Side::Bob] {
        let info = pair.info(side);
        let agreed = (info.cipher, info.hash, info.compression, info.group);
        if agreed != (cipher, hash, compression, group) {
            return Err(format!("{side:?} agreed {agreed:?}"));
        }
    }
    // Repetitive text so zlib has something to compress; distinct per message.
    let texts: Vec<String> = (0..3)
        .map(|i| format!("matrix message {i}: {}", "all work and no play ".repeat(8)))
        .collect();
    for text in &texts {
        let sealed = pair.encrypt(Side::Alice, &thread, text);
        let wire: String = sealed.iter().map(String::from).collect();
        // ENC-06: with a confidential cipher the plaintext never appears on the wire.
        if cipher.is_confidential() && wire.contains("all work and no play") {
            return Err("plaintext on the wire".to_owned());
        }
        for stanza in &sealed {
            pair.deliver(Side::Bob, stanza);
        }
        pair.chat(Side::Bob, &thread, &format!("re: {text}"));
    }
    let expected_at_bob = texts.clone();
    let expected_at_alice: Vec<String> = texts.iter().map(|t| format!("re: {t}")).collect();
    if pair.bob.bodies() != expected_at_bob {
        return Err(format!("Bob received {:?}", pair.bob.bodies()));
    }
    if pair.alice.bodies() != expected_at_alice {
        return Err(format!("Alice received {:?}", pair.alice.bodies()));
    }
    // ESN-54: the `none` cipher is announced to both users.
    let no_confidentiality = |side: Side| {
        pair.party(side).events.iter().any(|e| {
            matches!(
                e,
                Event::SecurityAlert {
                    alert: SecurityAlert::NoConfidentiality,
                    ..
                }
            )
        })
    };
    for side in [Side::Alice, Side::Bob] {
        if no_confidentiality(side) != (cipher == CipherAlgorithm::None) {
            return Err(format!("{side:?}: NoConfidentiality alert mismatch"));
        }
    }
    Ok(())
}

/// Every cipher (the nine confidential ones and `none` with its option) × both
/// hashes × both compression methods, 4-message negotiation, group 1.
#[test]
fn every_cipher_hash_and_compression_negotiates_and_carries_messages() {
    let mut failures = Vec::new();
    let mut cells = 0;
    let ciphers = CipherAlgorithm::CONFIDENTIAL
        .into_iter()
        .chain([CipherAlgorithm::None]);
    for (i, cipher) in ciphers.enumerate() {
        for (j, hash) in HashAlgorithm::ALL.into_iter().enumerate() {
            for (k, compression) in CompressionAlgorithm::ALL.into_iter().enumerate() {
                cells += 1;
                let seed = 9000 + (i * 4 + j * 2 + k) as u64 * 2;
                if let Err(why) = run_cell(cipher, hash, compression, ModpGroup::Group1, seed) {
                    failures.push(format!(
                        "{} / {} / {}: {why}",
                        cipher.name(),
                        hash.name(),
                        compression.name()
                    ));
                }
            }
        }
    }
    assert_eq!(cells, 40);
    assert!(failures.is_empty(), "matrix failures: {failures:#?}");
}

/// Groups 1, 2, 5 and 14 (ESN-05), each with both hashes.
#[test]
fn groups_1_2_5_14_negotiate() {
    let mut failures = Vec::new();
    for (i, group) in [
        ModpGroup::Group1,
        ModpGroup::Group2,
        ModpGroup::Group5,
        ModpGroup::Group14,
    ]
    .into_iter()
    .enumerate()
    {
        for (j, hash) in HashAlgorithm::ALL.into_iter().enumerate() {
            let seed = 9200 + (i * 2 + j) as u64 * 2;
            if let Err(why) = run_cell(
                CipherAlgorithm::Aes128Ctr,
                hash,
                CompressionAlgorithm::None,
                group,
                seed,
            ) {
                failures.push(format!("group {} / {}: {why}", group.id(), hash.name()));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// `none` is never agreed unless both sides set the clearly named option: a
/// responder without it refuses an offer of `none` alone (ESN-09, ESN-54).
#[test]
fn none_cipher_needs_the_option_on_the_responder() {
    let alice = single_choice(
        ALICE,
        CipherAlgorithm::None,
        HashAlgorithm::Sha256,
        CompressionAlgorithm::None,
        ModpGroup::Group1,
    );
    let bob = config(BOB);
    let mut pair = Pair::with_configs(alice, bob, 9300);
    let _thread = pair.negotiate_with(|_, _| {});
    assert!(pair.alice.established().is_empty());
    assert!(pair.bob.established().is_empty());
    let refusal = pair
        .error_stanzas()
        .into_iter()
        .find(|(_, from, _)| *from == Side::Bob)
        .map(|(_, _, stanza)| String::from(stanza))
        .expect("Bob refuses");
    assert!(refusal.contains("not-acceptable"), "{refusal}");
    assert!(refusal.contains("crypt_algs"), "{refusal}");
}

/// Without the option, `none` is not even offered: an initiator listing only
/// `none` has nothing to offer and `start_session` fails.
#[test]
fn none_cipher_is_not_offered_without_the_option() {
    let alice = Config {
        ciphers: vec![CipherAlgorithm::None],
        ..config(ALICE)
    };
    // Refused when the manager is built (issue 12), so nothing can be offered.
    assert!(matches!(
        crate::harness::try_manager(alice, 9310, Box::new(esession::FixedClock(0))),
        Err(esession::Error::InvalidConfig(
            esession::ConfigError::NoConfidentialCipher
        ))
    ));
}

/// Both parties with RSA keys they verified for each other, one cipher and
/// hash, identifying by `method`, in the given flow.
fn keyed_flow_pair(
    cipher: CipherAlgorithm,
    hash: HashAlgorithm,
    method: PubkeyMethod,
    flow: FlowPolicy,
    dsa: bool,
    seed: u64,
) -> Pair {
    let (alice_key, bob_key) = if dsa {
        (dsa_key(0), dsa_key(1))
    } else {
        (rsa_key(0), rsa_key(1))
    };
    let policy = |jid: &str, key: Arc<SigningKey>| Config {
        ciphers: vec![cipher],
        hashes: vec![hash],
        initiate_flow: flow,
        accept_three_message: true,
        ..keyed_config(jid, Some(key), &[method], &[method])
    };
    let mut pair = Pair::with_configs(
        policy(ALICE, alice_key.clone()),
        policy(BOB, bob_key.clone()),
        seed,
    );
    pair.alice.know_key(BOB, &bob_key, true);
    pair.bob.know_key(ALICE, &alice_key, true);
    pair
}

/// Every cipher × hash also through the 3-message flow (SIGMA-I, signed with
/// RSA keys): identity encryption and the MACs use each algorithm (ESN-22..24).
#[test]
fn every_cipher_and_hash_negotiates_with_three_messages() {
    let mut failures = Vec::new();
    for (i, cipher) in CipherAlgorithm::CONFIDENTIAL.into_iter().enumerate() {
        for (j, hash) in HashAlgorithm::ALL.into_iter().enumerate() {
            let seed = 9500 + (i * 2 + j) as u64 * 2;
            let mut pair = keyed_flow_pair(
                cipher,
                hash,
                PubkeyMethod::Key,
                FlowPolicy::ThreeMessage,
                false,
                seed,
            );
            let thread = pair.handshake();
            let info = pair.info(Side::Bob);
            if !(info.three_message && info.cipher == cipher && info.hash == hash) {
                failures.push(format!(
                    "{} / {}: agreed {info:?}",
                    cipher.name(),
                    hash.name()
                ));
                continue;
            }
            pair.chat(Side::Alice, &thread, "three");
            pair.chat(Side::Bob, &thread, "messages");
            if pair.bob.bodies() != ["three"] || pair.alice.bodies() != ["messages"] {
                failures.push(format!(
                    "{} / {}: messages lost",
                    cipher.name(),
                    hash.name()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Each public-key mode × each flow × RSA and DSA: `key` and `hash` work in
/// both flows and authenticate the peer by its key; `none` works with four
/// messages only (ESN-03: a 3-message initiator cannot offer it).
#[test]
fn each_public_key_mode_in_each_flow() {
    let mut failures = Vec::new();
    let mut seed = 9700;
    for dsa in [false, true] {
        for method in [PubkeyMethod::Key, PubkeyMethod::Hash, PubkeyMethod::None] {
            for flow in [FlowPolicy::FourMessage, FlowPolicy::ThreeMessage] {
                seed += 2;
                let label = format!("{method:?} / {flow:?} / dsa={dsa}");
                let mut pair = keyed_flow_pair(
                    CipherAlgorithm::Aes128Ctr,
                    HashAlgorithm::Sha256,
                    method,
                    flow,
                    dsa,
                    seed,
                );
                if method == PubkeyMethod::None && flow == FlowPolicy::ThreeMessage {
                    assert!(
                        pair.alice.manager.start_session(BOB).is_err(),
                        "{label}: a 3-message offer without keys must be refused"
                    );
                    continue;
                }
                let thread = pair.handshake();
                for side in [Side::Alice, Side::Bob] {
                    let info = pair.info(side);
                    let three = flow == FlowPolicy::ThreeMessage;
                    let keyed = method != PubkeyMethod::None;
                    if info.three_message != three
                        || info.peer_identification != method
                        || info.authenticated_by_key() != keyed
                    {
                        failures.push(format!("{label}: {side:?} agreed {info:?}"));
                    }
                }
                pair.chat(Side::Alice, &thread, "mode check");
                if pair.bob.bodies() != ["mode check"] {
                    failures.push(format!("{label}: message lost"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
