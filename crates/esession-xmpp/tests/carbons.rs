//! Issue 14, other devices of the same user: Alice is logged in twice, on her laptop (our
//! client) and on a phone that enabled Message Carbons (XEP-0280, on in Prosody's default
//! configuration). A plain message to the laptop is copied to the phone (carbons work), but
//! no stanza of the laptop's ESession with Bob reaches the phone, in either direction: every
//! ESession stanza carries `<private/>` and the `no-copy` hint. A carbon copy that reaches
//! our own client is never shown.
//!
//! Without Prosody the test prints a loud SKIPPED banner and passes, unless
//! `ESESSION_REQUIRE_PROSODY=1`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::time::Duration;

use esession::{Config, MemoryTrustStore};
use esession_testkit::peer::{Peer, conversation, manager, run_token};
use esession_testkit::plain::{raw_login, raw_send};
use esession_testkit::{Archive, prosody_or_skip};
use esession_wire::minidom::Element;
use futures::StreamExt;
use tokio_xmpp::Stanza;
use tokio_xmpp::stanzastream::{Event as StreamItem, StanzaStream};

/// Every message stanza `stream` receives within `wait`, as XML text.
async fn messages_within(stream: &mut StanzaStream, wait: Duration) -> Vec<String> {
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(wait, async {
        while let Some(item) = stream.next().await {
            if let StreamItem::Stanza(Stanza::Message(message)) = item {
                let element = Element::from(message);
                seen.push(esession_wire::xml::serialize(&element, "").unwrap_or_default());
            }
        }
    })
    .await;
    seen
}

fn stanza(xml: &str) -> Stanza {
    Stanza::try_from(esession_wire::xml::parse_document(xml).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_esession_stanza_is_copied_to_another_device() {
    let Some(prosody) = prosody_or_skip("no_esession_stanza_is_copied_to_another_device") else {
        return;
    };
    let server = prosody.server("localhost", Archive::Off);
    server.register("alice", "alice-pw");
    server.register("bob", "bob-pw");
    server.befriend("alice", "bob");

    // Alice's phone: carbons on, available.
    let mut phone = raw_login(&server.connect_options("alice", "phone", "alice-pw")).await;
    raw_send(
        &phone,
        stanza("<iq xmlns='jabber:client' type='set' id='carbons'><enable xmlns='urn:xmpp:carbons:2'/></iq>"),
    )
    .await;
    raw_send(&phone, stanza("<presence xmlns='jabber:client'/>")).await;
    let alice = Peer::login(
        "alice",
        &server.connect_options("alice", "laptop", "alice-pw"),
        manager(Box::new(MemoryTrustStore::new()), Config::default()),
    )
    .await;
    let bob = Peer::login(
        "bob",
        &server.connect_options("bob", "desk", "bob-pw"),
        manager(Box::new(MemoryTrustStore::new()), Config::default()),
    )
    .await;
    let _ = messages_within(&mut phone, Duration::from_millis(500)).await;

    // Carbons work: a plain message to the laptop is copied to the phone.
    let bob_raw = raw_login(&server.connect_options("bob", "raw", "bob-pw")).await;
    raw_send(
        &bob_raw,
        stanza("<message xmlns='jabber:client' type='chat' to='alice@localhost/laptop'><body>plain, copied</body></message>"),
    )
    .await;
    let copied = messages_within(&mut phone, Duration::from_secs(2)).await;
    assert!(
        copied
            .iter()
            .any(|m| m.contains("urn:xmpp:carbons:2") && m.contains("plain, copied")),
        "the phone gets carbon copies: {copied:#?}"
    );

    // The laptop's ESession with Bob: negotiation and messages both ways.
    let (alice, bob, _) = conversation(alice, bob, 3, &run_token()).await;
    let seen = messages_within(&mut phone, Duration::from_secs(2)).await;
    for message in &seen {
        for marker in [
            "feature-neg",
            "urn:xmpp:ssn",
            "xep-0200.html#ns",
            "xep-0116.html#ns-init",
        ] {
            assert!(
                !message.contains(marker),
                "an ESession stanza reached the other device ({marker}): {message}"
            );
        }
    }
    alice.disconnect().await;
    bob.disconnect().await;
}
