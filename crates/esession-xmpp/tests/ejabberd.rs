//! Two ESession clients through a real ejabberd 23.01 (Debian's package) on
//! loopback, a private server started and stopped by `esession-testkit`, at
//! ejabberd's default SASL settings (SCRAM-SHA-1-PLUS offered).
//!
//! - `conversation_through_ejabberd`: both log in with SCRAM-SHA-1 (after
//!   ejabberd refused the tls-exporter channel binding of SCRAM-SHA-1-PLUS),
//!   negotiate an ESession, exchange 50 encrypted messages each way with
//!   every body checked, and terminate; a second session is authenticated by
//!   the retained secret; finally no file of the server (Mnesia spool with
//!   the MAM archive, which archives everything, logs, config) holds the
//!   plaintext of any encrypted message.
//!
//! Without ejabberd this test prints a loud SKIPPED banner and passes,
//! unless `ESESSION_REQUIRE_EJABBERD=1`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::time::Instant;

use esession::{Config, MemoryTrustStore};
use esession_testkit::ejabberd::Options;
use esession_testkit::ejabberd_or_skip;
use esession_testkit::peer::{Peer, conversation, create_store, manager, run_token, store_manager};
use esession_testkit::prosody::contains;

const MESSAGES: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversation_through_ejabberd() {
    let Some(ejabberd) = ejabberd_or_skip("conversation_through_ejabberd") else {
        return;
    };
    let started = Instant::now();
    let mut server = ejabberd.server("ejabberd.test", &Options::default());
    server.register_all(&[("alice", "alice-pw"), ("bob", "bob-pw")]);
    let stores = tempfile::tempdir().unwrap();
    let alice_store = create_store(&stores.path().join("alice.db"));
    let mut alice = Peer::login(
        "alice",
        &server.connect_options("alice", "laptop", "alice-pw"),
        store_manager(&alice_store, "alice@ejabberd.test", Config::default()),
    )
    .await;
    let mut bob = Peer::login(
        "bob",
        &server.connect_options("bob", "phone", "bob-pw"),
        manager(Box::new(MemoryTrustStore::new()), Config::default()),
    )
    .await;
    assert_eq!(alice.jid(), "alice@ejabberd.test/laptop");
    for peer in [&mut alice, &mut bob] {
        let info = peer.client().login_info().unwrap();
        assert_eq!(info.mechanism, "SCRAM-SHA-1", "{info:?}");
    }

    let run = run_token();
    let (alice, bob, first) = conversation(alice, bob, MESSAGES, &run).await;
    eprintln!(
        "ejabberd session: {MESSAGES} messages each way in {:?} (SAS {})",
        first.elapsed, first.alice_info.sas
    );
    assert!(!first.alice_info.authenticated_by_retained_secret);
    let (alice, bob, second) = conversation(alice, bob, 3, &format!("s2-{run}")).await;
    assert!(second.alice_info.authenticated_by_retained_secret);
    assert!(second.bob_info_after.authenticated_by_retained_secret);
    alice.disconnect().await;
    bob.disconnect().await;

    // Everything flushed to disk, then searched.
    server.stop();
    for (path, bytes) in server.all_files() {
        assert!(
            !contains(&bytes, run.as_bytes()),
            "plaintext of an encrypted message in {}",
            path.display()
        );
    }
    eprintln!("conversation_through_ejabberd: {:?}", started.elapsed());
}
