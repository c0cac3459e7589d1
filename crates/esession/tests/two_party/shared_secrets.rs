//! The secrets mixed into K_final: a secret retained with another JID of the
//! initiator (ESN-35's extended search) and the other shared secret, a
//! password, as the UTF-8 of its NFC form (AMB-58).

use esession::{
    Config, FixedClock, MemoryTrustStore, RetainedSecret, SessionManager, SystemRandomness,
    TrustStore as _,
};
use esession_crypto::SecretBytes;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

use crate::harness::{ALICE, BOB, NOW, Pair, Party, Side, config};

/// Alice's bare JID now, and the one she used before.
const ALICE_BARE: &str = "alice@example.org";
const ALICE_BEFORE: &str = "alice@elsewhere.example";
/// Bob's bare JID, under which Alice keeps her secrets.
const BOB_BARE: &str = "bob@example.com";

/// A party with the test policy and the given trust store.
fn party(jid: &'static str, config: Config, seed: u64, store: MemoryTrustStore) -> Party {
    Party::with_manager(
        jid,
        SessionManager::new(
            config,
            Box::new(SystemRandomness::new(ChaCha20Rng::seed_from_u64(seed))),
            Box::new(store),
            Box::new(FixedClock(NOW)),
        )
        .unwrap(),
    )
}

fn secret(client: &str, bytes: &[u8], created: u64, verified: bool) -> RetainedSecret {
    RetainedSecret {
        client: client.to_owned(),
        secret: SecretBytes::from_slice(bytes),
        created,
        verified,
    }
}

/// (client, secret bytes, verified) of what `party` retained with `peer`.
fn retained(party: &Party, peer: &str) -> Vec<(String, Vec<u8>, bool)> {
    party
        .manager
        .trust()
        .retained_secrets(peer)
        .unwrap()
        .into_iter()
        .map(|s| (s.client, s.secret.expose().to_vec(), s.verified))
        .collect()
}

/// A first session between Alice and Bob, proven (so both hold one RS);
/// returns Alice's party and the RS Bob retained (client, bytes, created).
fn after_a_first_session(seed: u64) -> (Party, (String, Vec<u8>, u64)) {
    let mut pair = Pair::new(seed);
    let thread = pair.handshake();
    assert_eq!(pair.alice_proves(&thread), None);
    let [rs] = &pair
        .bob
        .manager
        .trust()
        .retained_secrets(ALICE_BARE)
        .unwrap()[..]
    else {
        panic!("ESN-40: one secret at Bob")
    };
    let bob_rs = (rs.client.clone(), rs.secret.expose().to_vec(), rs.created);
    let mut alice = pair.alice;
    alice.clear();
    (alice, bob_rs)
}

/// Alice with her store, and a Bob whose store holds `bob_store`.
fn pair_of(alice: Party, bob_store: MemoryTrustStore, seed: u64) -> Pair {
    Pair {
        alice,
        bob: party(BOB, config(BOB), seed, bob_store),
        log: Vec::new(),
    }
}

// ---- ESN-35: secrets retained with other JIDs -----------------------------------

#[test]
fn a_secret_retained_with_another_jid_authenticates_the_session() {
    // ESN-35 SHOULD: Bob finds nothing under alice@example.org that matches
    // (only an unrelated secret), then finds the RS he retained when Alice
    // used alice@elsewhere.example. The session is authenticated once Alice
    // proves K_final (AMB-57); the chain's verified flag comes along (ESN-42).
    for (seed, verified) in [(601, false), (611, true)] {
        let (alice, (client, rs, created)) = after_a_first_session(seed);
        let mut store = MemoryTrustStore::new();
        store
            .store_retained_secret(ALICE_BEFORE, secret(&client, &rs, created, verified))
            .unwrap();
        store
            .store_retained_secret(ALICE_BARE, secret("laptop", &[7; 32], NOW, true))
            .unwrap();
        let mut pair = pair_of(alice, store, seed + 2);
        let thread = pair.handshake();
        assert!(
            pair.info(Side::Alice).authenticated_by_retained_secret,
            "Alice found Bob's srshash"
        );
        assert!(
            !pair
                .session_info(Side::Bob, &thread)
                .unwrap()
                .authenticated_by_retained_secret,
            "AMB-57: only claimed so far"
        );
        assert_eq!(pair.alice_proves(&thread), Some(verified));
        let bob = pair.session_info(Side::Bob, &thread).unwrap();
        assert!(bob.authenticated_by_retained_secret);
        assert_eq!(bob.retained_chain_verified, verified);

        // Storage: the new RS is stored under the JID in use now, for Alice's
        // client, carrying the verified flag; the secret of the other JID
        // stays as it was; the unrelated one of "laptop" is untouched.
        let now = retained(&pair.bob, ALICE_BARE);
        assert_eq!(now.len(), 2, "{now:?}");
        let (new_client, new_rs, new_verified) = &now[0];
        assert_eq!(new_client, "pda");
        assert_ne!(*new_rs, rs, "ESN-40: a new secret");
        assert_eq!(*new_verified, verified);
        assert_eq!(now[1], ("laptop".to_owned(), vec![7; 32], true));
        assert_eq!(
            retained(&pair.bob, ALICE_BEFORE),
            [(client.clone(), rs.clone(), verified)]
        );
        // Alice's chain moved on too: her one secret with Bob is the new one.
        let alices = retained(&pair.alice, BOB_BARE);
        assert_eq!(alices.len(), 1, "{alices:?}");
        assert_eq!(alices[0].1, *new_rs);

        // The next session continues the chain under the current JID.
        let next = pair.handshake();
        assert!(pair.info(Side::Alice).authenticated_by_retained_secret);
        assert_eq!(pair.alice_proves(&next), Some(verified));
    }
}

#[test]
fn an_expired_secret_of_another_jid_is_not_used() {
    // ESN-35: "not expired" applies to the extended search too.
    let (alice, (client, rs, _)) = after_a_first_session(621);
    let lifetime = Config::default().retained_secret_lifetime;
    let mut store = MemoryTrustStore::new();
    store
        .store_retained_secret(ALICE_BEFORE, secret(&client, &rs, NOW - lifetime, false))
        .unwrap();
    let mut pair = pair_of(alice, store, 622);
    let thread = pair.handshake();
    assert!(!pair.info(Side::Alice).authenticated_by_retained_secret);
    assert_eq!(pair.alice_proves(&thread), None);
    assert!(
        !pair
            .session_info(Side::Bob, &thread)
            .unwrap()
            .authenticated_by_retained_secret
    );
}

#[test]
fn only_the_newest_256_secrets_of_other_jids_are_searched() {
    // The extended search is bounded (negotiation/secrets.rs,
    // MAX_SECRETS_OF_OTHER_JIDS = 256): behind 256 newer secrets of other
    // JIDs the matching one is not found; with 255 it is.
    for (seed, newer, found) in [(631, 256u32, false), (641, 255u32, true)] {
        let (alice, (client, rs, created)) = after_a_first_session(seed);
        let mut store = MemoryTrustStore::new();
        store
            .store_retained_secret(ALICE_BEFORE, secret(&client, &rs, created - 1, false))
            .unwrap();
        for i in 0..newer {
            store
                .store_retained_secret(
                    &format!("contact{i}@example.net"),
                    secret("pc", &i.to_be_bytes().repeat(8), created, false),
                )
                .unwrap();
        }
        let mut pair = pair_of(alice, store, seed + 2);
        let thread = pair.handshake();
        assert_eq!(
            pair.info(Side::Alice).authenticated_by_retained_secret,
            found,
            "{newer} newer secrets"
        );
        assert_eq!(pair.alice_proves(&thread), found.then_some(false));
    }
}

// ---- AMB-58: the other shared secret ---------------------------------------------

/// Alice and Bob, each with `password` as the other shared secret for the other.
fn with_passwords(alice_password: &str, bob_password: &str, seed: u64) -> Pair {
    let mut alice_store = MemoryTrustStore::new();
    alice_store.set_other_secret(BOB_BARE, SecretBytes::from_slice(alice_password.as_bytes()));
    let mut bob_store = MemoryTrustStore::new();
    bob_store.set_other_secret(ALICE_BARE, SecretBytes::from_slice(bob_password.as_bytes()));
    Pair {
        alice: party(ALICE, config(ALICE), seed, alice_store),
        bob: party(BOB, config(BOB), seed + 1, bob_store),
        log: Vec::new(),
    }
}

#[test]
fn a_decomposed_and_a_precomposed_password_give_the_same_keys() {
    // AMB-58: OSS = UTF-8 of the NFC form. "é" as U+0065 U+0301 on one side
    // and U+00E9 on the other (canonically equivalent, UAX #15) agree.
    assert_ne!("cafe\u{301}".as_bytes(), "caf\u{e9}".as_bytes());
    for (alice_password, bob_password, seed) in [
        ("cafe\u{301} au lait", "caf\u{e9} au lait", 651),
        ("caf\u{e9} au lait", "cafe\u{301} au lait", 653),
        ("A\u{30a}ngstro\u{308}m", "\u{c5}ngstr\u{f6}m", 655),
    ] {
        let mut pair = with_passwords(alice_password, bob_password, seed);
        let thread = pair.handshake();
        for side in [Side::Alice, Side::Bob] {
            assert!(pair.info(side).other_secret_used, "{side:?}");
        }
        pair.chat(Side::Alice, &thread, "same keys");
        pair.chat(Side::Bob, &thread, "indeed");
        assert_eq!(pair.bob.bodies(), ["same keys"]);
        assert_eq!(pair.alice.bodies(), ["indeed"]);
    }
}

#[test]
fn white_space_in_a_password_is_not_trimmed() {
    // AMB-58: no trimming. Equal passwords with white space agree; a
    // password differing only in white space gives other keys, so Bob's
    // final message fails at Alice (ESN-27) and neither side keeps a session.
    let mut pair = with_passwords(" pass word\n", " pass word\n", 661);
    pair.handshake();
    for (alice_password, bob_password, seed) in [
        (" pass word", "pass word", 663),
        ("pass word\n", "pass word", 665),
        ("pass\u{a0}word", "pass word", 667),
        ("cafe\u{301}", "cafe", 669),
    ] {
        let mut pair = with_passwords(alice_password, bob_password, seed);
        let thread = pair.negotiate_with(|_, _| {});
        assert!(
            pair.alice.established().is_empty(),
            "{alice_password:?} / {bob_password:?}"
        );
        assert_eq!(pair.alice.failures().len(), 1, "{:?}", pair.alice.events);
        assert!(pair.session_info(Side::Bob, &thread).is_none());
    }
}
