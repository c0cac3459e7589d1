//! The same conversation across two federated Prosody servers on loopback:
//! alice@a.test (server A) and bob@b.test (server B), s2s over TLS with
//! dialback, each client trusting only its own server's certificate. Both
//! servers archive everything (MAM); afterwards neither holds any plaintext.
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
