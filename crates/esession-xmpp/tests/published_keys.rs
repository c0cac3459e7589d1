//! Issue 13, XEP-0189 through a real Prosody with PEP (PKP-01..05, PKP-09/10):
//!
//! - `a_published_key_is_fetched_checked_and_revoked`: Alice publishes her RSA key; Bob, who
//!   shares presence with her, fetches it, and it passes every check and bridges to her
//!   XEP-0116 fingerprint; Alice revokes it and Bob's next fetch shows the revocation, which
//!   verifies; Carol, a stranger, may not read Alice's key (access model `presence`). Asked
//!   directly, Alice's client answers with its key (PKP-07); Carol's, which has none, refuses.
//!
//! Without Prosody the test prints a loud SKIPPED banner and passes, unless
//! `ESESSION_REQUIRE_PROSODY=1`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use esession::published::{
    check_published_key, check_revocation, own_published_key, own_revocation,
};
use esession::trust::{key_fingerprint, key_value_of};
use esession::{Config, MemoryTrustStore};
use esession_crypto::SigningKey;
use esession_testkit::peer::{Peer, manager};
use esession_testkit::{Archive, prosody_or_skip};
use esession_xmpp::ClientError;
use tokio_xmpp::jid::BareJid;

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

async fn login(server: &esession_testkit::prosody::Prosody, user: &str) -> Peer {
    Peer::login(
        user,
        &server.connect_options(user, "pc", &format!("{user}-pw")),
        manager(Box::new(MemoryTrustStore::new()), Config::default()),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_key_is_fetched_checked_and_revoked() {
    let Some(prosody) = prosody_or_skip("a_published_key_is_fetched_checked_and_revoked") else {
        return;
    };
    let server = prosody.server("localhost", Archive::Off);
    for user in ["alice", "bob", "carol"] {
        server.register(user, &format!("{user}-pw"));
    }
    server.befriend("alice", "bob");
    let alice_jid = BareJid::new("alice@localhost").unwrap();
    let mut alice = login(&server, "alice").await;
    let mut bob = login(&server, "bob").await;
    let mut carol = login(&server, "carol").await;

    let key = SigningKey::generate_rsa(2048).unwrap();
    let published = own_published_key(&key, &alice_jid, now(), 3600).unwrap();
    alice.client().publish_key(&published).await.unwrap();

    // Bob reads it; it passes the checks and is Alice's XEP-0116 key (PKP-10).
    let fetched = bob.client().fetch_keys(&alice_jid).await.unwrap();
    assert_eq!(fetched.keys, std::slice::from_ref(&published));
    assert!(fetched.revocations.is_empty());
    assert_eq!(fetched.unreadable, 0);
    let key_value = check_published_key(&fetched.keys[0], &alice_jid, now()).unwrap();
    assert_eq!(
        key_fingerprint(&key_value),
        key_fingerprint(&key_value_of(key.verifying_key()).unwrap())
    );

    // PKP-07: asked directly, Alice's client answers with the key it published; PKP-08: and
    // says so in disco#info.
    let alice_device: tokio_xmpp::jid::FullJid = alice.jid().parse().unwrap();
    let (asked, _) = tokio::join!(
        bob.client().request_device_key(&alice_device),
        alice.idle(std::time::Duration::from_secs(2))
    );
    assert_eq!(asked.unwrap(), Some(published.clone()));
    assert!(esession_xmpp::disco::FEATURES.contains(&"urn:xmpp:pubkey:2"));
    // Carol's client published nothing: her client refuses, which reads as "no key".
    let carol_device: tokio_xmpp::jid::FullJid = carol.jid().parse().unwrap();
    let (asked, _) = tokio::join!(
        bob.client().request_device_key(&carol_device),
        carol.idle(std::time::Duration::from_secs(2))
    );
    assert_eq!(asked.unwrap(), None);

    // Carol does not share presence with Alice: not allowed.
    match carol.client().fetch_keys(&alice_jid).await {
        Err(ClientError::Pep(text)) => assert!(text.contains("not allowed"), "{text}"),
        other => panic!("a stranger read Alice's key: {other:?}"),
    }

    // Alice reads her own node (the server answers for her account itself).
    let own = alice.client().fetch_keys(&alice_jid).await.unwrap();
    assert_eq!(own.keys, std::slice::from_ref(&published));

    // Alice revokes the key; Bob sees the revocation and it verifies (PKP-05, PKP-06).
    let revocation = own_revocation(&key, &published, now()).unwrap();
    alice
        .client()
        .publish_revocation(&revocation)
        .await
        .unwrap();
    let fetched = bob.client().fetch_keys(&alice_jid).await.unwrap();
    assert_eq!(fetched.revocations, [revocation]);
    assert_eq!(
        check_revocation(&fetched.revocations[0], &fetched.keys[0]),
        Ok(())
    );

    // Nothing published: an empty answer, not an error.
    let carol_jid = BareJid::new("carol@localhost").unwrap();
    let nothing = alice.client().fetch_keys(&carol_jid).await;
    match nothing {
        Ok(fetched) => assert!(fetched.keys.is_empty() && fetched.revocations.is_empty()),
        Err(ClientError::Pep(text)) => assert!(text.contains("not allowed"), "{text}"),
        Err(other) => panic!("{other}"),
    }
}

/// Issue 13, XEP-0187 through Prosody (OFF-05..08, AMB-76/77): Alice publishes a signed
/// option set on her subscriber node; Bob, her contact, fetches it and it checks with her
/// key; Carol, a stranger, gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_option_set_is_published_and_checks_for_a_contact() {
    let Some(prosody) =
        prosody_or_skip("an_offline_option_set_is_published_and_checks_for_a_contact")
    else {
        return;
    };
    let server = prosody.server("localhost", Archive::Off);
    for user in ["alice", "bob", "carol"] {
        server.register(user, &format!("{user}-pw"));
    }
    server.befriend("alice", "bob");
    let key = std::sync::Arc::new(SigningKey::generate_rsa(2048).unwrap());
    let config = Config {
        signing_keys: vec![key.clone()],
        ..Config::default()
    };
    let mut alice = Peer::login(
        "alice",
        &server.connect_options("alice", "pc", "alice-pw"),
        manager(Box::new(MemoryTrustStore::new()), config),
    )
    .await;
    let mut bob = login(&server, "bob").await;
    let mut carol = login(&server, "carol").await;

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
    // Publishing again (the node exists now) replaces the set.
    alice
        .client()
        .publish_offline_options(&set.options)
        .await
        .unwrap();

    let alice_jid = BareJid::new("alice@localhost").unwrap();
    let fetched = bob
        .client()
        .fetch_offline_options(&alice_jid)
        .await
        .unwrap();
    assert_eq!(fetched.len(), 1, "one set, item `current`");
    let checked =
        esession::offline::check_options(&fetched[0], &[key.verifying_key()], now()).unwrap();
    assert_eq!(checked.expires_at, set.expires_at);

    match carol.client().fetch_offline_options(&alice_jid).await {
        Ok(sets) => assert!(sets.is_empty(), "a stranger read Alice's options"),
        Err(ClientError::Pep(text)) => assert!(text.contains("not allowed"), "{text}"),
        Err(other) => panic!("{other}"),
    }
}
