//! Issue 14, the server's archive, through a real Prosody with mod_mam and a
//! fixture that archives every chat and normal message (body or not) unless
//! a XEP-0334 hint says otherwise (stock mod_mam skips body-less messages,
//! which would make these tests pass trivially):
//!
//! - a `logging=mustnot` session (both sides prefer off the record, both
//!   servers confirmed): a MAM query by either party returns no stanza of it,
//!   negotiation included, and no file in Prosody's data directory contains
//!   its thread id; the contact's archive preference is `never` while it runs
//!   and back to what it was afterwards (ARC-07/08, SSN-03, AMB-59);
//! - a server that refuses preference changes: nothing is promised off the
//!   record; `prefer` agrees `may`, `require` refuses to start and says why.
//!
//! The `logging=may` case (ciphertext archived, nothing readable) is
//! `prosody::conversation_retained_secret_and_no_plaintext_on_server`.
//!
//! Without Prosody the tests print a loud SKIPPED banner and pass, unless
//! `ESESSION_REQUIRE_PROSODY=1`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use esession::ssn::Logging;
use esession::{ArchivingConflict, Config, Error, MemoryTrustStore, OtrPolicy, SessionInfo};
use esession_testkit::peer::{Peer, both, manager, run_token};
use esession_testkit::plain::{mam_prefs, mam_query, set_mam_prefs};
use esession_testkit::prosody::contains;
use esession_testkit::{Archive, Prosody, prosody_or_skip};
use esession_xmpp::ClientError;
use esession_xmpp::archive::ServerArchive;
use tokio_xmpp::minidom::Element;

fn policy(otr: OtrPolicy) -> Config {
    Config {
        otr_policy: otr,
        ..Config::default()
    }
}

/// `user` (password `user-pw`) logged in on `server` as `user@localhost/resource`
/// with `otr` as its policy.
async fn login(server: &Prosody, user: &str, resource: &str, otr: OtrPolicy) -> Peer {
    Peer::login(
        user,
        &server.connect_options(user, resource, &format!("{user}-pw")),
        manager(Box::new(MemoryTrustStore::new()), policy(otr)),
    )
    .await
}

/// Alice offers a session to Bob's desk; both wait until it is established.
/// Returns both peers and what each agreed.
async fn negotiate(alice: Peer, bob: Peer) -> ((Peer, SessionInfo), (Peer, SessionInfo)) {
    let (mut alice, mut bob) = (alice, bob);
    both(
        async move {
            let (_, info) = alice.start("bob@localhost/desk").await;
            (alice, info)
        },
        async move {
            let (_, info) = bob.established().await;
            (bob, info)
        },
    )
    .await
}

/// The JIDs in one list (`always` or `never`) of a `<prefs/>` element.
fn listed(prefs: &Element, list: &str) -> Vec<String> {
    prefs
        .get_child(list, "urn:xmpp:mam:2")
        .map(|l| l.children().map(Element::text).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_off_the_record_session_leaves_nothing_in_the_archive() {
    let Some(prosody) = prosody_or_skip("an_off_the_record_session_leaves_nothing_in_the_archive")
    else {
        return;
    };
    let mut server = prosody.server("localhost", Archive::MamEverything);
    server.register("alice", "alice-pw");
    server.register("bob", "bob-pw");
    server.befriend("alice", "bob");
    let reader = server.connect_options("alice", "mam-reader", "alice-pw");
    // Alice's archive preferences before: Bob explicitly archived, Carol never.
    set_mam_prefs(
        &reader,
        "<prefs xmlns='urn:xmpp:mam:2' default='always'>\
         <always><jid>bob@localhost</jid></always><never><jid>carol@localhost</jid></never></prefs>"
            .parse()
            .unwrap(),
    )
    .await;
    let before = mam_prefs(&reader).await;
    assert_eq!(listed(&before, "always"), ["bob@localhost"]);

    let mut alice = login(&server, "alice", "laptop", OtrPolicy::Prefer).await;
    let mut bob = login(&server, "bob", "desk", OtrPolicy::Prefer).await;
    // Control: a plain message IS archived (the fixture archives everything).
    let canary = format!("canary-{}", run_token());
    alice
        .client()
        .send_plain("bob@localhost", &canary)
        .await
        .unwrap();
    bob.plain_message().await;
    for peer in [&mut alice, &mut bob] {
        let server_archive = peer.client().check_server_archive().await.unwrap();
        assert_eq!(server_archive, ServerArchive::Mam);
    }

    let secret = format!("otr-{}", run_token());
    let (alice_side, bob_side) = {
        let (reader, secret, expected) = (reader.clone(), secret.clone(), secret.clone());
        both(
            async move {
                let (session, info) = alice.start("bob@localhost/desk").await;
                assert_eq!(info.logging, Logging::MustNot, "ARC-03/04: both prefer");
                assert!(alice.client().is_off_the_record(&session));
                let during = mam_prefs(&reader).await;
                alice.send_texts(&session, &[secret]).await;
                assert_eq!(alice.receive_texts(&session, 1).await, ["and back"]);
                alice.client().terminate(&session).await.unwrap();
                alice.terminated(&session).await;
                (alice, session, during)
            },
            async move {
                let (session, info) = bob.established().await;
                assert_eq!(info.logging, Logging::MustNot);
                assert_eq!(bob.receive_texts(&session, 1).await, [expected]);
                bob.send_texts(&session, &["and back".to_owned()]).await;
                bob.terminated(&session).await;
                bob
            },
        )
        .await
    };
    let (mut alice, session, during) = alice_side;
    let bob = bob_side;
    assert!(listed(&during, "never").contains(&"bob@localhost".to_owned()));
    assert!(listed(&during, "always").is_empty(), "{during:?}");
    // Preference restored once the last off-the-record session with Bob ended.
    alice.idle(std::time::Duration::from_millis(300)).await;
    let after = mam_prefs(&reader).await;
    assert_eq!(after, before, "ARC: Alice's preference for Bob is back");

    for (name, options) in [
        ("alice", reader.clone()),
        ("bob", server.connect_options("bob", "mam-reader", "bob-pw")),
    ] {
        let archived = mam_query(&options).await;
        assert!(
            archived.iter().any(|m| m.contains(&canary)),
            "control: {name}'s archive holds the plain message"
        );
        for message in &archived {
            assert!(
                !message.contains(&session.thread),
                "{name}'s archive holds a stanza of the off-the-record session: {message}"
            );
        }
    }
    alice.disconnect().await;
    bob.disconnect().await;
    server.stop();
    let files = server.all_files();
    assert!(
        files
            .iter()
            .any(|(_, bytes)| contains(bytes, canary.as_bytes())),
        "control: the plain message is in a server file"
    );
    for (path, bytes) in &files {
        assert!(
            !contains(bytes, session.thread.as_bytes()),
            "the session's thread id is in {}",
            path.display()
        );
        assert!(!contains(bytes, secret.as_bytes()), "{}", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_will_not_stop_archiving_gets_no_off_the_record_session() {
    let Some(prosody) =
        prosody_or_skip("a_server_that_will_not_stop_archiving_gets_no_off_the_record_session")
    else {
        return;
    };
    let server = prosody.server("localhost", Archive::MamLocked);
    server.register("alice", "alice-pw");
    server.register("bob", "bob-pw");
    server.befriend("alice", "bob");
    let mut alice = login(&server, "alice", "laptop", OtrPolicy::Require).await;
    let mut bob = login(&server, "bob", "desk", OtrPolicy::Prefer).await;
    let checked = alice.client().check_server_archive().await.unwrap();
    let ServerArchive::Refused(why) = &checked else {
        panic!("refused, not {checked:?}");
    };
    assert!(why.contains("not-allowed"), "{why}");
    assert!(
        checked
            .describe()
            .contains("no session can be off the record")
    );
    bob.client().check_server_archive().await.unwrap();

    // `require`: nothing is offered, and the error says why (before any
    // network traffic, so Bob need not be driven).
    let refused = alice.client().start_session("bob@localhost").await;
    let Err(ClientError::Session(Error::Archiving(conflict))) = refused else {
        panic!("refused to start, not {refused:?}");
    };
    assert_eq!(conflict, ArchivingConflict::OffTheRecordUnavailable);
    assert!(conflict.to_string().contains("archive"));

    // `prefer`: the session may be logged, and says so.
    alice.client().set_otr_policy(None, OtrPolicy::Prefer).await;
    let ((alice, info), (bob, bob_info)) = negotiate(alice, bob).await;
    assert_eq!(info.logging, Logging::May);
    assert_eq!(bob_info.logging, Logging::May);
    alice.disconnect().await;
    bob.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_xep_0136_server_has_automatic_archiving_turned_off_for_our_stream() {
    let Some(prosody) =
        prosody_or_skip("a_xep_0136_server_has_automatic_archiving_turned_off_for_our_stream")
    else {
        return;
    };
    // XEP-0136 as a test-only plugin models it (ARC-07/09/10): advertised on
    // the server, `<auto save='false'/>` accepted, or refused when compulsory.
    let server = prosody.server("localhost", Archive::Xep0136);
    server.register("alice", "alice-pw");
    server.register("bob", "bob-pw");
    server.befriend("alice", "bob");
    let mut alice = login(&server, "alice", "laptop", OtrPolicy::Prefer).await;
    let mut bob = login(&server, "bob", "desk", OtrPolicy::Prefer).await;
    for peer in [&mut alice, &mut bob] {
        let checked = peer.client().check_server_archive().await.unwrap();
        assert_eq!(checked, ServerArchive::Xep0136);
        assert!(
            checked
                .describe()
                .contains("automatic archiving (XEP-0136) is off")
        );
    }
    let log = server.log();
    for user in ["alice", "bob"] {
        assert!(
            log.contains(&format!(
                "XEP-0136 pref set by {user}: auto save=false scope=stream"
            )),
            "{log}"
        );
    }
    let ((alice, info), (bob, bob_info)) = negotiate(alice, bob).await;
    assert_eq!(info.logging, Logging::MustNot);
    assert_eq!(bob_info.logging, Logging::MustNot);
    alice.disconnect().await;
    bob.disconnect().await;

    // Compulsory archiving: not-allowed, so nothing goes off the record.
    let server = prosody.server("localhost", Archive::Xep0136Compulsory);
    server.register("carol", "carol-pw");
    let mut carol = login(&server, "carol", "laptop", OtrPolicy::Require).await;
    let checked = carol.client().check_server_archive().await.unwrap();
    let ServerArchive::Refused(why) = &checked else {
        panic!("refused, not {checked:?}");
    };
    assert!(why.contains("not-allowed"), "{why}");
    assert!(!carol.client().manager().config().off_the_record_possible);
    carol.disconnect().await;
}
