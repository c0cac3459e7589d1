//! The same conversation across two federated Prosody servers on loopback:
//! alice@a.test (server A) and bob@b.test (server B), s2s over TLS with
//! dialback, each client trusting only its own server's certificate. Both
//! servers archive everything (MAM); afterwards neither holds any plaintext.
//! A second test sends one XEP-0187 offline message across the federation.
//!
//! Without Prosody this test prints a loud SKIPPED banner and passes, unless
//! `ESESSION_REQUIRE_PROSODY=1`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::time::Instant;

use esession::{Config, MemoryTrustStore};
use esession_testkit::peer::{Peer, conversation, create_store, manager, run_token, store_manager};
use esession_testkit::prosody::contains;
use esession_testkit::{Archive, prosody_or_skip};
use esession_wire::ns;

const MESSAGES: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federated_conversation() {
    let Some(prosody) = prosody_or_skip("federated_conversation") else {
        return;
    };
    let started = Instant::now();
    let (mut a, mut b) = prosody.federation(Archive::MamEverything);
    a.register("alice", "alice-pw");
    b.register("bob", "bob-pw");
    let stores = tempfile::tempdir().unwrap();
    let alice_store = create_store(&stores.path().join("alice.db"));
    let alice = Peer::login(
        "alice",
        &a.connect_options("alice", "laptop", "alice-pw"),
        store_manager(&alice_store, "alice@a.test", Config::default()),
    )
    .await;
    let bob = Peer::login(
        "bob",
        &b.connect_options("bob", "phone", "bob-pw"),
        manager(Box::new(MemoryTrustStore::new()), Config::default()),
    )
    .await;
    assert_eq!(bob.jid(), "bob@b.test/phone");

    let run = run_token();
    // The first stanza opens the s2s connections (TLS + dialback both ways).
    let (alice, bob, first) = conversation(alice, bob, MESSAGES, &run).await;
    eprintln!(
        "federated session: {MESSAGES} messages each way in {:?} (SAS {})",
        first.elapsed, first.alice_info.sas
    );
    assert!(!first.alice_info.authenticated_by_retained_secret);
    assert_eq!(
        alice_store
            .retained_secret_info("alice@a.test", "bob@b.test")
            .unwrap()
            .len(),
        1
    );
    // A second session across the servers: authenticated by the retained secret.
    let (alice, bob, second) = conversation(alice, bob, 5, &format!("s2-{run}")).await;
    assert!(second.alice_info.authenticated_by_retained_secret);
    assert!(second.bob_info_after.authenticated_by_retained_secret);
    alice.disconnect().await;
    bob.disconnect().await;

    assert!(
        a.log()
            .contains("Outgoing s2s connection a.test->b.test complete")
    );
    assert!(
        b.log()
            .contains("Outgoing s2s connection b.test->a.test complete")
    );
    a.stop();
    b.stop();
    // Each user's archive is on their own server.
    for (server, user) in [(&a, "alice"), (&b, "bob")] {
        let archive = server.archive_of(user);
        let n = archive
            .windows(ns::STANZA_ENCRYPTION.len())
            .filter(|w| *w == ns::STANZA_ENCRYPTION.as_bytes())
            .count();
        assert!(
            n >= 3 * 2 * MESSAGES,
            "{user}'s archive on {} holds the ciphertext ({n} XEP-0200 names)",
            server.domain()
        );
        for (path, bytes) in server.all_files() {
            assert!(
                !contains(&bytes, run.as_bytes()),
                "plaintext of an encrypted message in {}",
                path.display()
            );
        }
    }
    eprintln!("federated_conversation: {:?}", started.elapsed());
}

/// Issue 13: one XEP-0187 offline exchange across the federation. Alice (a.test) publishes
/// options and leaves; Bob (b.test) fetches them through s2s, checks them with her key he
/// verified, and sends a one-shot offline session; a.test keeps it; Alice, back in a new
/// client holding her set, reads his message, sending nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_message_crosses_the_federation() {
    let Some(prosody) = prosody_or_skip("an_offline_message_crosses_the_federation") else {
        return;
    };
    let (a, b) = prosody.federation(Archive::Off);
    a.register("alice", "alice-pw");
    b.register("bob", "bob-pw");
    a.add_contact("alice", "bob@b.test");
    b.add_contact("bob", "alice@a.test");
    let alice_key = std::sync::Arc::new(esession_crypto::SigningKey::generate_rsa(2048).unwrap());
    let bob_key = std::sync::Arc::new(esession_crypto::SigningKey::generate_rsa(2048).unwrap());
    let keyed = |key: &std::sync::Arc<esession_crypto::SigningKey>| Config {
        signing_keys: vec![key.clone()],
        own_identification: vec![esession::PubkeyMethod::Key],
        peer_identification: vec![esession::PubkeyMethod::Key],
        ..Config::default()
    };
    let trusting = |peer: &str, key: &esession_crypto::SigningKey| {
        use esession::TrustStore;
        let mut trust = MemoryTrustStore::new();
        let value = esession::trust::key_value_of(key.verifying_key()).unwrap();
        trust.record_peer_key(peer, &value, 1).unwrap();
        trust
            .set_peer_key_verified(&esession::key_fingerprint(&value), true)
            .unwrap();
        trust
    };

    // Alice publishes her options, then leaves.
    let mut alice = Peer::login(
        "alice",
        &a.connect_options("alice", "laptop", "alice-pw"),
        manager(
            Box::new(trusting("bob@b.test", &bob_key)),
            keyed(&alice_key),
        ),
    )
    .await;
    let set = alice
        .client()
        .manager_mut()
        .offline_options(3600, None)
        .unwrap();
    alice
        .client()
        .publish_offline_options(&set.options)
        .await
        .unwrap();
    alice.disconnect().await;

    // Bob, on the other server, writes to her.
    let mut bob = Peer::login(
        "bob",
        &b.connect_options("bob", "phone", "bob-pw"),
        manager(
            Box::new(trusting("alice@a.test", &alice_key)),
            keyed(&bob_key),
        ),
    )
    .await;
    let contact = tokio_xmpp::jid::BareJid::new("alice@a.test").unwrap();
    let options = bob.client().fetch_offline_options(&contact).await.unwrap();
    assert_eq!(options.len(), 1, "her subscriber set, through s2s");
    let first = esession_wire::xml::parse_document(
        "<message xmlns='jabber:client' to='alice@a.test' type='chat'><body>across servers, while you were away</body></message>",
    )
    .unwrap();
    let (_, info) = bob
        .client()
        .start_offline_session(&contact, &options[0], &first, true)
        .await
        .unwrap();
    assert!(info.offline && info.authenticated_by_key());
    bob.disconnect().await;

    // Alice is back, with a new client holding the set.
    let mut back = manager(
        Box::new(trusting("bob@b.test", &bob_key)),
        keyed(&alice_key),
    );
    back.hold_offline_options(set);
    let mut alice = Peer::login(
        "alice",
        &a.connect_options("alice", "desk", "alice-pw"),
        back,
    )
    .await;
    let event = alice
        .wait_for(
            "Bob's offline message",
            std::time::Duration::from_secs(20),
            |e| {
                matches!(
                    e,
                    esession_xmpp::ClientEvent::Session(esession::Event::MessageReceived { .. })
                )
            },
        )
        .await;
    let esession_xmpp::ClientEvent::Session(esession::Event::MessageReceived {
        session,
        message,
        ..
    }) = event
    else {
        panic!("not a message: {event:?}")
    };
    assert_eq!(session.peer.as_str(), "bob@b.test/phone");
    assert_eq!(
        message
            .get_child("body", ns::JABBER_CLIENT)
            .map(|b| b.text()),
        Some("across servers, while you were away".to_owned())
    );
    alice.disconnect().await;
}
