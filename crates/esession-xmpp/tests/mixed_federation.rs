//! An ESession across two different servers: alice@prosody.test on Prosody
//! 0.12 and bob@ejabberd.test on ejabberd 23.01, federated on loopback
//! (`esession_testkit::mixed_federation`): Prosody reaches ejabberd through
//! a static route, ejabberd finds Prosody by an SRV lookup that its own
//! resolver sends to a tiny DNS responder on a loopback UDP port. s2s runs
//! over TLS both ways (Prosody -> ejabberd authenticated by certificate,
//! ejabberd -> Prosody by dialback). Each client trusts only its own
//! server's certificate.
//!
//! Alice offers a session and both exchange encrypted messages; then Bob
//! offers one and both exchange messages again: negotiation and XEP-0200
//! stanzas both ways through s2s in both directions.
//!
//! Without Prosody or ejabberd this test prints a loud SKIPPED banner and
//! passes, unless `ESESSION_REQUIRE_PROSODY=1` / `ESESSION_REQUIRE_EJABBERD=1`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::time::Instant;

use esession::{Config, MemoryTrustStore};
use esession_testkit::peer::{Peer, conversation, manager, run_token};
use esession_testkit::{Archive, ejabberd_or_skip, mixed_federation, prosody_or_skip};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prosody_and_ejabberd_users_talk_both_ways() {
    let test = "prosody_and_ejabberd_users_talk_both_ways";
    let (Some(prosody), Some(ejabberd)) = (prosody_or_skip(test), ejabberd_or_skip(test)) else {
        return;
    };
    let started = Instant::now();
    let mut fed = mixed_federation(&prosody, &ejabberd, Archive::Off);
    fed.prosody.register("alice", "alice-pw");
    fed.ejabberd.register("bob", "bob-pw");
    let alice = Peer::login(
        "alice",
        &fed.prosody.connect_options("alice", "laptop", "alice-pw"),
        manager(Box::new(MemoryTrustStore::new()), Config::default()),
    )
    .await;
    let bob = Peer::login(
        "bob",
        &fed.ejabberd.connect_options("bob", "phone", "bob-pw"),
        manager(Box::new(MemoryTrustStore::new()), Config::default()),
    )
    .await;
    assert_eq!(alice.jid(), "alice@prosody.test/laptop");
    assert_eq!(bob.jid(), "bob@ejabberd.test/phone");

    let run = run_token();
    // Alice (Prosody) offers: the first stanza opens s2s both ways.
    let (alice, bob, first) = conversation(alice, bob, 5, &run).await;
    eprintln!(
        "prosody.test -> ejabberd.test session: SAS {} in {:?}",
        first.alice_info.sas, first.elapsed
    );
    // Bob (ejabberd) offers.
    let (bob, alice, second) = conversation(bob, alice, 5, &format!("s2-{run}")).await;
    assert!(second.alice_info.we_initiated);
    eprintln!(
        "ejabberd.test -> prosody.test session: SAS {} in {:?}",
        second.alice_info.sas, second.elapsed
    );
    alice.disconnect().await;
    bob.disconnect().await;

    // ejabberd found Prosody through the responder.
    assert!(
        fed.dns
            .queries()
            .iter()
            .any(|q| q == "_xmpp-server._tcp.prosody.test. SRV"),
        "{:?}",
        fed.dns.queries()
    );
    assert!(
        fed.prosody
            .log()
            .contains("Outgoing s2s connection prosody.test->ejabberd.test complete"),
        "{}",
        fed.prosody.log()
    );
    // Both directions: Prosody -> ejabberd authenticated by certificate
    // (ejabberd trusts Prosody's), ejabberd -> Prosody by dialback.
    fed.ejabberd.wait_for_log(&[
        "Accepted inbound s2s EXTERNAL authentication prosody.test -> ejabberd.test",
        "Accepted outbound s2s dialback authentication ejabberd.test -> prosody.test",
    ]);
    fed.prosody.stop();
    fed.ejabberd.stop();
    eprintln!("{test}: {:?}", started.elapsed());
}
