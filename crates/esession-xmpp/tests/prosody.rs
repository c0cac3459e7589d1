//! Against a real Prosody 0.12 (Debian's `prosody` package) on loopback: a
//! private server per test, started and stopped by `esession-testkit`.
//!
//! - `conversation_retained_secret_and_no_plaintext_on_server`: two clients
//!   negotiate an ESession through the server (STARTTLS, the server's
//!   self-signed certificate as the only CA), exchange 200 messages in each
//!   direction with every body checked, terminate; then both stores are
//!   reopened from disk and a second session is authenticated by the retained
//!   secret on both sides; then Bob goes offline and Alice's encrypted messages
//!   land in his offline store; finally the server's MAM archive (queried over
//!   XMPP and read from disk), offline store and every other file are searched:
//!   no plaintext of any encrypted message, but the XEP-0200 ciphertext and
//!   the plaintext control messages are there.
//! - `contact_without_esession_support`: a plain XMPP client without
//!   ESessions is refused before any offer when its full JID is known, and an
//!   unanswered offer (to it, or to an account that does not exist) fails with
//!   a clean timeout.
//!
//! - `encrypted_presence_and_iq_through_prosody`: with presence and iq
//!   agreed, a directed presence, an iq get and its result, an iq set and its
//!   error (with an encrypted text) and a ping answered by the peer's client
//!   arrive decrypted; a relay on both client connections shows the server
//!   only `<c/>` in every presence and iq between the two (ENC-01..03, AMB-26).
//! - `peer_going_offline_ends_the_session`: the peer sent directed presence,
//!   then goes offline; the server's unavailable presence ends the session
//!   with `PeerUnavailable` (SSN-16) and the only stanza sent to the peer
//!   afterwards is the encrypted terminate form.
//!
//! - `wrong_password_is_fatal_and_not_retried`: a wrong password (STARTTLS)
//!   and an account that does not exist (plaintext loopback) each give one
//!   fatal `Disconnected` naming the wrong JID or password within seconds,
//!   after exactly one connection to the server (no reconnect loop); the
//!   client then ends and refuses to send; the right password still works.
//! - `untrusted_certificate_is_fatal_and_not_retried`: a server certificate
//!   that fails verification (not issued by a trusted CA: system roots, or a
//!   CA file with another certificate; a certificate for another name; an
//!   expired one)
//!   gives one fatal `Disconnected` with `LoginError::UntrustedCertificate`
//!   and rustls's reason within seconds, after exactly one connection each;
//!   the right CA file still logs in.
//!
//! Without Prosody these tests print a loud SKIPPED banner and pass, unless
//! `ESESSION_REQUIRE_PROSODY=1`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::time::{Duration, Instant};

use esession::{Config, Error, MemoryTrustStore};
use esession_testkit::peer::{
    Peer, STORE_PASSPHRASE, both, conversation, create_store, fatal_login, manager, marker,
    open_store, run_token, store_manager,
};
use esession_testkit::plain::{NO_ESESSIONS, mam_query, plain_contact, raw_send};
use esession_testkit::prosody::contains;
use esession_testkit::{Archive, Validity, prosody_or_skip, self_signed_certificate};
use esession_wire::ns;
use esession_xmpp::{
    CertificateProblem, ClientError, ClientEvent, ConnectOptions, EsessionClient, LoginError,
    PresentedCertificate, TransportSecurity,
};
use tokio_xmpp::minidom::Element;

const MESSAGES: usize = 200;

/// How many `<c xmlns='…xep-0200…'/>` elements a Prosody file-storage
/// (`*.list`, Lua) file holds: the namespace is written on `<c/>`, `<data/>`
/// and `<mac/>`, the element name once.
fn stored_ciphertexts(file: &[u8]) -> usize {
    assert_eq!(
        count(file, ns::STANZA_ENCRYPTION),
        3 * count(file, "[\"name\"] = \"c\";"),
        "unexpected storage format"
    );
    count(file, "[\"name\"] = \"c\";")
}

fn count(haystack: &[u8], needle: &str) -> usize {
    let needle = needle.as_bytes();
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversation_retained_secret_and_no_plaintext_on_server() {
    let Some(prosody) = prosody_or_skip("conversation_retained_secret_and_no_plaintext_on_server")
    else {
        return;
    };
    let started = Instant::now();
    let mut server = prosody.server("localhost", Archive::MamEverything);
    server.register("alice", "alice-pw");
    server.register("bob", "bob-pw");
    let alice_opts = server.connect_options("alice", "laptop", "alice-pw");
    let bob_opts = server.connect_options("bob", "phone", "bob-pw");
    let stores = tempfile::tempdir().unwrap();
    let (alice_db, bob_db) = (stores.path().join("alice.db"), stores.path().join("bob.db"));
    // Every encrypted body carries `run`; the plaintext controls carry `canary`.
    let (run, canary) = (run_token(), run_token());

    // 1. Log in (STARTTLS, private CA) with new encrypted stores.
    let alice_store = create_store(&alice_db);
    let bob_store = create_store(&bob_db);
    let mut alice = Peer::login(
        "alice",
        &alice_opts,
        store_manager(&alice_store, "alice@localhost", Config::default()),
    )
    .await;
    let mut bob = Peer::login(
        "bob",
        &bob_opts,
        store_manager(&bob_store, "bob@localhost", Config::default()),
    )
    .await;
    assert_eq!(alice.jid(), "alice@localhost/laptop");
    assert_eq!(bob.jid(), "bob@localhost/phone");

    // Control: a message in clear DOES reach the archive (the search below can see plaintext).
    let plain_control = format!("canary-plain-{canary}");
    alice
        .client()
        .send_plain("bob@localhost/phone", &plain_control)
        .await
        .unwrap();
    let (from, body) = bob.plain_message().await;
    assert_eq!(
        (from.as_str(), body.as_str()),
        ("alice@localhost/laptop", plain_control.as_str())
    );

    // 2. Session 1: first contact, 200 messages each way, terminate + ack.
    let (alice, bob, first) = conversation(alice, bob, MESSAGES, &run).await;
    eprintln!(
        "session 1: {} messages each way in {:?} (SAS {}, {} / {} / {})",
        MESSAGES,
        first.elapsed,
        first.alice_info.sas,
        first.alice_info.cipher,
        first.alice_info.hash,
        first.alice_info.compression.name()
    );
    assert!(!first.alice_info.authenticated_by_retained_secret);
    assert!(!first.bob_info_after.authenticated_by_retained_secret);
    assert!(!first.bob_proven);
    assert!(
        first.alice_info.sas_reminder,
        "first contact: compare the SAS"
    );
    let mut encrypted_bodies = first.bodies;
    // Both stores now hold a secret retained for the other's client.
    let alice_rs = alice_store
        .retained_secret_info("alice@localhost", "bob@localhost")
        .unwrap();
    assert_eq!(
        alice_rs.len(),
        1,
        "alice retained one secret for bob: {alice_rs:?}"
    );
    assert_eq!(alice_rs[0].client, "phone");
    let bob_rs = bob_store
        .retained_secret_info("bob@localhost", "alice@localhost")
        .unwrap();
    assert_eq!(
        bob_rs.len(),
        1,
        "bob retained one secret for alice: {bob_rs:?}"
    );
    assert_eq!(bob_rs[0].client, "laptop");

    // 3. Close both clients and stores; reopen the stores from disk, log in again.
    alice.disconnect().await;
    bob.disconnect().await;
    drop((alice_store, bob_store));
    assert!(
        !contains(
            &std::fs::read(&alice_db).unwrap(),
            STORE_PASSPHRASE.as_bytes()
        ),
        "sanity: the store file does not contain its passphrase"
    );
    let alice_store = open_store(&alice_db);
    let bob_store = open_store(&bob_db);
    let alice = Peer::login(
        "alice",
        &alice_opts,
        store_manager(&alice_store, "alice@localhost", Config::default()),
    )
    .await;
    let bob = Peer::login(
        "bob",
        &bob_opts,
        store_manager(&bob_store, "bob@localhost", Config::default()),
    )
    .await;

    // 4. Session 2: authenticated by the retained secret on both sides.
    let run2 = format!("s2-{run}");
    let (mut alice, mut bob, second) = conversation(alice, bob, 20, &run2).await;
    assert!(
        second.alice_info.authenticated_by_retained_secret,
        "initiator: authenticated by the secret retained from session 1"
    );
    // Issue 10: Alice proves the secret right after message 4, so Bob's
    // `Established` already carries the answer (no separate event).
    assert!(
        second.bob_info.authenticated_by_retained_secret,
        "responder: authenticated in Established itself"
    );
    assert!(
        !second.bob_proven,
        "responder: no separate RetainedSecretProven when Established has the answer"
    );
    assert!(
        second.bob_info_after.authenticated_by_retained_secret,
        "responder: authenticated by the retained secret once proven"
    );
    assert_eq!(second.alice_info.sas, second.bob_info.sas);
    encrypted_bodies.extend(second.bodies);

    // 5. Offline store: session 3, then Bob's connection is lost (no
    //    terminate form: a clean `disconnect` would end the session, ESN-45).
    //    Alice is not told (no subscription, no directed presence; contrast
    //    SSN-16 in `peer_going_offline_ends_the_session`), so her session
    //    stays and her encrypted messages are stored for him by the server.
    let bob_full = bob.jid().to_owned();
    let ((mut alice, session), bob) = both(
        async move {
            let (session, _) = alice.start(&bob_full).await;
            (alice, session)
        },
        async move {
            bob.established().await;
            bob
        },
    )
    .await;
    bob.vanish().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let offline: Vec<String> = (0..3).map(|i| marker("offline", i, &run)).collect();
    alice.send_texts(&session, &offline).await;
    let offline_control = format!("canary-offline-{canary}");
    alice
        .client()
        .send_plain("bob@localhost/phone", &offline_control)
        .await
        .unwrap();
    encrypted_bodies.extend(offline.iter().cloned());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !contains(&server.offline_of("bob"), offline_control.as_bytes()) {
        assert!(
            Instant::now() < deadline,
            "the offline store never received the messages for bob"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bob_offline = server.offline_of("bob");
    assert_eq!(
        stored_ciphertexts(&bob_offline),
        3,
        "bob's offline store holds the 3 encrypted messages"
    );

    // 6. The archive over XMPP (XEP-0313): what the server hands out.
    let archived = mam_query(&server.connect_options("alice", "mam-reader", "alice-pw")).await;
    let encrypted = archived
        .iter()
        .filter(|m| m.contains(ns::STANZA_ENCRYPTION))
        .count();
    eprintln!(
        "alice's MAM archive: {} messages, {encrypted} XEP-0200 encrypted",
        archived.len()
    );
    assert!(
        encrypted >= 2 * MESSAGES + 2 * 20 + 3,
        "every encrypted message is archived as ciphertext ({encrypted})"
    );
    assert!(archived.iter().any(|m| m.contains(&plain_control)));
    for message in &archived {
        assert!(
            !message.contains(&run),
            "plaintext in the MAM archive: {message}"
        );
    }
    alice.disconnect().await;

    // 7. Stop the server (flushing everything) and search every file it has.
    server.stop();
    let alice_archive = server.archive_of("alice");
    let bob_archive = server.archive_of("bob");
    for (name, archive) in [("alice", &alice_archive), ("bob", &bob_archive)] {
        let n = stored_ciphertexts(archive);
        assert!(
            n >= 2 * MESSAGES + 2 * 20,
            "{name}'s archive file holds the ciphertext ({n} <c/> elements)"
        );
        assert!(
            contains(archive, plain_control.as_bytes()),
            "control: {name}'s archive file holds the message sent in clear"
        );
    }
    assert!(
        contains(&server.offline_of("bob"), offline_control.as_bytes()),
        "control: the offline store holds the message sent in clear"
    );
    let files = server.all_files();
    assert!(files.len() > 5, "server files: {files:?}");
    let mut searched = 0usize;
    for (path, bytes) in &files {
        searched += bytes.len();
        assert!(
            !contains(bytes, run.as_bytes()),
            "plaintext of an encrypted message in {}",
            path.display()
        );
        for body in encrypted_bodies.iter().step_by(37) {
            assert!(
                !contains(bytes, body.as_bytes()),
                "{body} in {}",
                path.display()
            );
        }
    }
    eprintln!(
        "searched {} server files ({searched} bytes) for {} encrypted bodies: none found; \
         whole test {:?}",
        files.len(),
        encrypted_bodies.len(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_without_esession_support() {
    let Some(prosody) = prosody_or_skip("contact_without_esession_support") else {
        return;
    };
    let started = Instant::now();
    let server = prosody.server("localhost", Archive::Off);
    server.register("alice", "alice-pw");
    server.register("carol", "carol-pw");
    // Carol logs in over plaintext TCP to loopback (the adapter's other transport).
    let carol_opts = ConnectOptions {
        security: TransportSecurity::DangerousPlaintextLoopbackOnly,
        ..server.connect_options("carol", "plain", "carol-pw")
    };
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let carol = tokio::spawn(plain_contact(carol_opts, NO_ESESSIONS, seen_tx, stop_rx));
    assert!(seen.recv().await.unwrap().is("online", "test"));

    let config = Config {
        negotiation_timeout: 1,
        ..Config::default()
    };
    let mut alice = Peer::login(
        "alice",
        &server.connect_options("alice", "laptop", "alice-pw"),
        manager(Box::new(MemoryTrustStore::new()), config),
    )
    .await;

    // (1) Full JID known: disco#info shows no XEP-0116, so no offer is sent at all.
    match alice.client().start_session("carol@localhost/plain").await {
        Err(ClientError::NoEsessionSupport(jid)) => assert_eq!(jid, "carol@localhost/plain"),
        other => panic!("expected NoEsessionSupport, got {other:?}"),
    }

    // (2) Bare JID, no resource known (no presence subscription): the offer goes
    //     out, Carol's client ignores it, and the negotiation times out cleanly.
    let t0 = Instant::now();
    let offered = alice
        .client()
        .start_session("carol@localhost")
        .await
        .unwrap();
    let (session, error) = alice.negotiation_failed(Duration::from_secs(15)).await;
    assert_eq!(session.thread, offered.thread);
    assert!(
        matches!(error, Error::Timeout | Error::PeerError { .. }),
        "unexpected failure {error:?}"
    );
    eprintln!(
        "unanswered offer to carol: {error:?} after {:?}",
        t0.elapsed()
    );
    let offer = tokio::time::timeout(Duration::from_secs(5), seen.recv())
        .await
        .expect("carol received the offer")
        .unwrap();
    assert!(
        offer.has_child("feature", ns::FEATURE_NEG),
        "carol got the offer: {offer:?}"
    );
    assert!(
        alice.client().manager().session_info(&offered).is_none(),
        "no session remains"
    );

    // (3) An account that does not exist: the server bounces the offer with
    //     service-unavailable; that bounce carries no <thread/> (Prosody's
    //     error_reply copies no children), so it cannot be tied to the
    //     negotiation and the offer times out like an unanswered one.
    let t0 = Instant::now();
    let offered = alice
        .client()
        .start_session("nobody@localhost")
        .await
        .unwrap();
    let (session, error) = alice.negotiation_failed(Duration::from_secs(15)).await;
    assert_eq!(session.thread, offered.thread);
    assert!(
        matches!(error, Error::Timeout | Error::PeerError { .. }),
        "unexpected failure {error:?}"
    );
    eprintln!(
        "offer to a missing account: {error:?} after {:?}",
        t0.elapsed()
    );

    // (4) A message in clear from the plain client reaches Alice as such, not
    //     as an encrypted one, and Alice's client is still fully working.
    let carol = {
        stop_tx.send(()).unwrap();
        carol.await.unwrap()
    };
    let hello: Element = "<message xmlns='jabber:client' to='alice@localhost/laptop' type='chat'>\
                            <body>hello in clear</body></message>"
        .parse()
        .unwrap();
    let hello = tokio_xmpp::parsers::message::Message::try_from(hello).unwrap();
    raw_send(&carol, hello).await;
    let (from, body) = alice.plain_message().await;
    assert_eq!(
        (from.as_str(), body.as_str()),
        ("carol@localhost/plain", "hello in clear")
    );
    assert!(
        seen.try_recv().is_err(),
        "carol got nothing but the one offer"
    );
    carol.close().await;
    alice.idle(Duration::from_millis(200)).await;
    alice.disconnect().await;
    eprintln!("contact_without_esession_support: {:?}", started.elapsed());
}

/// A TCP relay between one client and the server that keeps a copy of every
/// byte in each direction: what the network (and the server) sees of that
/// client's stream. Used with plaintext loopback connections.
struct Tap {
    port: u16,
    /// Client to server.
    up: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    /// Server to client.
    down: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Tap {
    async fn start(server_port: u16) -> Self {
        use std::sync::{Arc, Mutex};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, down) = (
            Arc::new(Mutex::new(Vec::new())),
            Arc::new(Mutex::new(Vec::new())),
        );
        let (tap_up, tap_down) = (up.clone(), down.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = tokio::net::TcpStream::connect(("127.0.0.1", server_port))
                    .await
                    .unwrap();
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(relay(client_read, server_write, tap_up.clone()));
                tokio::spawn(relay(server_read, client_write, tap_down.clone()));
            }
        });
        Self { port, up, down }
    }

    /// Connect options for `user` through this tap, without TLS (loopback).
    fn options(
        &self,
        server: &esession_testkit::Prosody,
        user: &str,
        resource: &str,
    ) -> ConnectOptions {
        ConnectOptions {
            port: Some(self.port),
            security: TransportSecurity::DangerousPlaintextLoopbackOnly,
            ..server.connect_options(user, resource, &format!("{user}-pw"))
        }
    }

    /// Everything sent by the client so far, as text.
    fn sent(&self) -> String {
        String::from_utf8_lossy(&self.up.lock().unwrap()).into_owned()
    }

    /// Everything received by the client so far, as text.
    fn received(&self) -> String {
        String::from_utf8_lossy(&self.down.lock().unwrap()).into_owned()
    }
}

async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    record: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        record.lock().unwrap().extend_from_slice(&buf[..n]);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// The `<name …>…</name>` (or self-closing `<name …/>`) stanzas in a raw
/// stream text that mention `jid` in their start tag (`to` or `from`).
fn stanzas_with(stream: &str, name: &str, jid: &str) -> Vec<String> {
    let open = format!("<{name} ");
    let close = format!("</{name}>");
    let mut found = Vec::new();
    let mut rest = stream;
    while let Some(start) = rest.find(&open) {
        rest = &rest[start..];
        let tag_end = rest.find('>').expect("complete start tag") + 1;
        let end = if rest[..tag_end].ends_with("/>") {
            tag_end
        } else {
            rest.find(&close).expect("complete stanza") + close.len()
        };
        if rest[..tag_end].contains(jid) {
            found.push(rest[..end].to_owned());
        }
        rest = &rest[end..];
    }
    found
}

/// Whether `stanza` (raw text) carries an XEP-0200 `<c/>`.
fn has_c(stanza: &str) -> bool {
    stanza.contains(ns::STANZA_ENCRYPTION)
}

/// `peer`'s config offering and accepting messages, presence and iq.
fn all_kinds() -> Config {
    Config {
        stanzas: esession::StanzaKind::ALL.to_vec(),
        ..Config::default()
    }
}

fn parse(xml: &str) -> Element {
    xml.parse().unwrap()
}

/// Waits for a decrypted `<presence/>` or `<iq/>` in `session` that `pick` accepts.
async fn stanza_received(
    peer: &mut Peer,
    session: &esession::SessionId,
    what: &str,
    mut pick: impl FnMut(&Element) -> bool,
) -> Element {
    let wanted = session.clone();
    match peer
        .wait_for(what, esession_testkit::peer::WAIT, |e| {
            matches!(e, ClientEvent::Session(esession::Event::StanzaReceived { session, stanza })
                if *session == wanted && pick(stanza))
        })
        .await
    {
        ClientEvent::Session(esession::Event::StanzaReceived { stanza, .. }) => stanza,
        other => panic!("picked {other:?}"),
    }
}

/// ENC-01..03 and AMB-26 through a real server: with presence and iq agreed,
/// Alice's directed presence, an iq get answered with a result, an iq set
/// answered with an error (with an application text), and a ping answered
/// by Bob's client itself all arrive decrypted with their content, while the
/// bytes on both client connections (what the server sees) hold none of it:
/// every presence and iq between the two full JIDs after establishment
/// carries only `<c/>` (and an error's clear `<error/>` and condition).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_presence_and_iq_through_prosody() {
    let Some(prosody) = prosody_or_skip("encrypted_presence_and_iq_through_prosody") else {
        return;
    };
    let started = Instant::now();
    let server = prosody.server("localhost", Archive::Off);
    server.register("alice", "alice-pw");
    server.register("bob", "bob-pw");
    let alice_tap = Tap::start(server.c2s_port()).await;
    let bob_tap = Tap::start(server.c2s_port()).await;
    let run = run_token();
    let mut alice = Peer::login(
        "alice",
        &alice_tap.options(&server, "alice", "laptop"),
        manager(Box::new(MemoryTrustStore::new()), all_kinds()),
    )
    .await;
    let mut bob = Peer::login(
        "bob",
        &bob_tap.options(&server, "bob", "phone"),
        manager(Box::new(MemoryTrustStore::new()), all_kinds()),
    )
    .await;
    let (alice_jid, bob_jid) = (alice.jid().to_owned(), bob.jid().to_owned());

    // Control: the taps do see plaintext.
    let canary = format!("canary-{run}");
    alice.client().send_plain(&bob_jid, &canary).await.unwrap();
    assert_eq!(bob.plain_message().await.1, canary);
    assert!(alice_tap.sent().contains(&canary) && bob_tap.received().contains(&canary));

    let target = bob_jid.clone();
    let ((mut alice, (a_session, a_info)), (mut bob, (b_session, b_info))) = both(
        async move {
            let established = alice.start(&target).await;
            (alice, established)
        },
        async move {
            let established = bob.established().await;
            (bob, established)
        },
    )
    .await;
    assert_eq!(a_info.stanzas, esession::StanzaKind::ALL);
    assert_eq!(b_info.stanzas, esession::StanzaKind::ALL);
    let (alice_mark, bob_mark) = (alice_tap.sent().len(), bob_tap.sent().len());

    // 1. Directed presence, encrypted.
    let status = format!("presence-{run}");
    alice
        .client()
        .send_stanza(
            &a_session,
            parse(&format!(
                "<presence xmlns='jabber:client' to='{bob_jid}'><show>dnd</show>\
                 <status>{status}</status></presence>"
            )),
        )
        .await
        .unwrap();
    let presence = stanza_received(&mut bob, &b_session, "encrypted presence", |s| {
        s.name() == "presence"
    })
    .await;
    assert_eq!(presence.attr("from"), Some(alice_jid.as_str()));
    assert_eq!(
        presence
            .get_child("status", ns::JABBER_CLIENT)
            .map(Element::text),
        Some(status.clone())
    );
    assert_eq!(
        presence
            .get_child("show", ns::JABBER_CLIENT)
            .map(Element::text),
        Some("dnd".to_owned())
    );

    // 2. An iq get and its result.
    let (question, answer) = (format!("iq-get-{run}"), format!("iq-result-{run}"));
    alice
        .client()
        .send_stanza(
            &a_session,
            parse(&format!(
                "<iq xmlns='jabber:client' to='{bob_jid}' type='get' id='q1'>\
                 <query xmlns='urn:example:esession'>{question}</query></iq>"
            )),
        )
        .await
        .unwrap();
    let get = stanza_received(&mut bob, &b_session, "iq get", |s| s.name() == "iq").await;
    assert_eq!(
        (get.attr("type"), get.attr("id"), get.attr("from")),
        (Some("get"), Some("q1"), Some(alice_jid.as_str()))
    );
    assert_eq!(
        get.get_child("query", "urn:example:esession")
            .map(Element::text),
        Some(question.clone())
    );
    bob.client()
        .send_stanza(
            &b_session,
            parse(&format!(
                "<iq xmlns='jabber:client' to='{alice_jid}' type='result' id='q1'>\
                 <query xmlns='urn:example:esession'>{answer}</query></iq>"
            )),
        )
        .await
        .unwrap();
    let result = stanza_received(&mut alice, &a_session, "iq result", |s| s.name() == "iq").await;
    assert_eq!(
        (result.attr("type"), result.attr("id")),
        (Some("result"), Some("q1"))
    );
    assert_eq!(
        result
            .get_child("query", "urn:example:esession")
            .map(Element::text),
        Some(answer.clone())
    );

    // 3. An iq set refused with an error whose text is encrypted (the
    //    <error/> with its condition stays clear, ENC-02; xmpp-parsers puts
    //    the <error/> first on the wire, ENC-03).
    let (order, reason) = (format!("iq-set-{run}"), format!("iq-error-{run}"));
    alice
        .client()
        .send_stanza(
            &a_session,
            parse(&format!(
                "<iq xmlns='jabber:client' to='{bob_jid}' type='set' id='s1'>\
                 <command xmlns='urn:example:esession'>{order}</command></iq>"
            )),
        )
        .await
        .unwrap();
    let set = stanza_received(&mut bob, &b_session, "iq set", |s| s.name() == "iq").await;
    assert_eq!(
        set.get_child("command", "urn:example:esession")
            .map(Element::text),
        Some(order.clone())
    );
    bob.client()
        .send_stanza(
            &b_session,
            parse(&format!(
                "<iq xmlns='jabber:client' to='{alice_jid}' type='error' id='s1'>\
                 <error type='cancel'><feature-not-implemented xmlns='{stanzas}'/>\
                 <text xmlns='{stanzas}'>{reason}</text></error></iq>",
                stanzas = ns::XMPP_STANZAS
            )),
        )
        .await
        .unwrap();
    let error = stanza_received(&mut alice, &a_session, "iq error", |s| s.name() == "iq").await;
    assert_eq!(
        (error.attr("type"), error.attr("id")),
        (Some("error"), Some("s1"))
    );
    let inner = error.get_child("error", ns::JABBER_CLIENT).unwrap();
    assert!(inner.has_child("feature-not-implemented", ns::XMPP_STANZAS));
    assert_eq!(
        inner.get_child("text", ns::XMPP_STANZAS).map(Element::text),
        Some(reason.clone())
    );

    // 4. A ping, answered by Bob's client (encrypted) without his application.
    let t0 = Instant::now();
    let ping = alice.client().send_ping(&a_session).await.unwrap();
    let pong = tokio::select! {
        pong = stanza_received(&mut alice, &a_session, "ping result", |s| s.attr("id") == Some(ping.as_str())) => pong,
        () = bob.idle(Duration::from_secs(30)) => panic!("no answer to the ping"),
    };
    assert_eq!(pong.attr("type"), Some("result"));
    eprintln!("encrypted ping round trip: {:?}", t0.elapsed());
    assert!(
        !bob.passed_over.iter().any(|e| e.contains("urn:xmpp:ping")),
        "the ping reached Bob's application: {:?}",
        bob.passed_over
    );

    // 5. The wire, both connections, since establishment.
    let markers = [&status, &question, &answer, &order, &reason];
    for (name, text) in [
        ("alice sent", alice_tap.sent()[alice_mark..].to_owned()),
        ("bob sent", bob_tap.sent()[bob_mark..].to_owned()),
        ("alice received", alice_tap.received()),
        ("bob received", bob_tap.received()),
    ] {
        for marker in markers {
            assert!(
                !text.contains(marker.as_str()),
                "{marker} in clear ({name})"
            );
        }
        let peer = if name.starts_with("alice") {
            &bob_jid
        } else {
            &alice_jid
        };
        let presences: Vec<String> = stanzas_with(&text, "presence", peer)
            .into_iter()
            .filter(|p| !p.contains("unavailable"))
            .collect();
        let iqs: Vec<String> = stanzas_with(&text, "iq", peer)
            .into_iter()
            .filter(|iq| !iq.contains("disco#info"))
            .collect();
        if name.ends_with("sent") {
            // Each side sent its three iq of the exchange (and nothing else).
            assert_eq!(iqs.len(), 3, "{name}: {iqs:?}");
        }
        for stanza in presences.iter().chain(&iqs) {
            assert!(has_c(stanza), "{name}: clear stanza {stanza}");
            for clear in ["<status", "<show", "<query", "<command", "<text", "<ping"] {
                assert!(
                    !stanza.contains(clear),
                    "{name}: {clear} in clear: {stanza}"
                );
            }
        }
        eprintln!(
            "{name}: {} presence and {} iq with the peer, all encrypted",
            presences.len(),
            iqs.len()
        );
    }
    assert_eq!(
        stanzas_with(&alice_tap.sent()[alice_mark..], "presence", &bob_jid).len(),
        1,
        "alice's one directed presence"
    );
    alice.disconnect().await;
    bob.disconnect().await;
    eprintln!(
        "encrypted_presence_and_iq_through_prosody: {:?}",
        started.elapsed()
    );
}

/// SSN-16 through a real server: Bob sent Alice (encrypted) directed
/// presence, so when his connection is lost Prosody tells Alice with
/// unavailable presence from his full JID; her session ends at once with
/// `PeerUnavailable`, the only stanza she sends him afterwards is the
/// encrypted terminate form, and nothing can be sent in the ended session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_going_offline_ends_the_session() {
    let Some(prosody) = prosody_or_skip("peer_going_offline_ends_the_session") else {
        return;
    };
    let server = prosody.server("localhost", Archive::Off);
    server.register("alice", "alice-pw");
    server.register("bob", "bob-pw");
    let alice_tap = Tap::start(server.c2s_port()).await;
    let mut alice = Peer::login(
        "alice",
        &alice_tap.options(&server, "alice", "laptop"),
        manager(Box::new(MemoryTrustStore::new()), all_kinds()),
    )
    .await;
    let mut bob = Peer::login(
        "bob",
        &server.connect_options("bob", "phone", "bob-pw"),
        manager(Box::new(MemoryTrustStore::new()), all_kinds()),
    )
    .await;
    let (alice_jid, bob_jid) = (alice.jid().to_owned(), bob.jid().to_owned());
    let target = bob_jid.clone();
    let ((mut alice, (a_session, _)), (mut bob, (b_session, _))) = both(
        async move {
            let established = alice.start(&target).await;
            (alice, established)
        },
        async move {
            let established = bob.established().await;
            (bob, established)
        },
    )
    .await;
    bob.client()
        .send_stanza(
            &b_session,
            parse(&format!(
                "<presence xmlns='jabber:client' to='{alice_jid}'/>"
            )),
        )
        .await
        .unwrap();
    stanza_received(&mut alice, &a_session, "bob's directed presence", |s| {
        s.name() == "presence" && s.attr("type").is_none()
    })
    .await;
    let mark = alice_tap.sent().len();

    let t0 = Instant::now();
    // Lost, not a clean disconnect (which would send the terminate form
    // first, ESN-45: `disconnect_ends_sessions_with_the_terminate_form`).
    bob.vanish().await;
    assert_eq!(
        alice.terminated(&a_session).await,
        esession::TerminationReason::PeerUnavailable
    );
    eprintln!("session ended {:?} after bob went offline", t0.elapsed());
    assert!(alice.client().manager().session_info(&a_session).is_none());
    // ESN-47: nothing more in that session, and nothing in clear instead.
    assert!(matches!(
        alice.client().send_text(&a_session, "after the end").await,
        Err(ClientError::Session(Error::UnknownSession))
    ));
    assert!(matches!(
        alice
            .client()
            .send_stanza(
                &a_session,
                parse(&format!("<presence xmlns='jabber:client' to='{bob_jid}'/>"))
            )
            .await,
        Err(ClientError::Session(Error::UnknownSession))
    ));
    assert!(alice.client().send_ping(&a_session).await.is_err());
    alice.idle(Duration::from_millis(500)).await;
    let after = alice_tap.sent()[mark..].to_owned();
    let to_bob: Vec<String> = ["message", "presence", "iq"]
        .iter()
        .flat_map(|name| stanzas_with(&after, name, &bob_jid))
        .collect();
    assert_eq!(to_bob.len(), 1, "only the terminate form: {to_bob:?}");
    assert!(
        to_bob[0].starts_with("<message ") && has_c(&to_bob[0]),
        "{to_bob:?}"
    );
    assert!(!to_bob[0].contains("<body"), "{to_bob:?}");
    assert!(
        stanzas_with(&alice_tap.received(), "presence", &bob_jid)
            .iter()
            .any(|p| p.contains("unavailable")),
        "the server told alice"
    );
    alice.disconnect().await;
}

/// Polls `peer`'s `next_event` exactly once and drops it: the worst a
/// `tokio::select!` can do to it (the other branch won at the first await).
async fn poll_once(peer: &mut Peer) -> Option<esession_xmpp::ClientEvent> {
    let next = peer.client().next_event();
    tokio::pin!(next);
    match futures::poll!(next) {
        std::task::Poll::Ready(event) => event,
        std::task::Poll::Pending => None,
    }
}

/// `EsessionClient::next_event` dropped at its first await every time (as a
/// losing `select!` branch would be) still delivers every event and sends
/// every reply: negotiation, 20 messages, and the terminate acknowledgement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_event_is_cancel_safe() {
    let Some(prosody) = prosody_or_skip("next_event_is_cancel_safe") else {
        return;
    };
    let server = prosody.server("localhost", Archive::Off);
    server.register("alice", "alice-pw");
    server.register("bob", "bob-pw");
    let login = |user: &str, password: &str| {
        let options = server.connect_options(user, "r", password);
        let user = user.to_owned();
        async move {
            Peer::login(
                &user,
                &options,
                manager(Box::new(MemoryTrustStore::new()), Config::default()),
            )
            .await
        }
    };
    let mut alice = login("alice", "alice-pw").await;
    let mut bob = login("bob", "bob-pw").await;
    let bob_full = bob.jid().to_owned();
    let run = run_token();
    let bodies: Vec<String> = (0..20).map(|i| marker("a", i, &run)).collect();
    let expected = bodies.clone();
    let ((), ()) = both(
        async move {
            let (session, _) = alice.start(&bob_full).await;
            alice.send_texts(&session, &bodies).await;
            assert_eq!(alice.receive_texts(&session, 1).await, ["pong"]);
            alice.client().terminate(&session).await.unwrap();
            assert_eq!(
                alice.terminated(&session).await,
                esession::TerminationReason::LocalRequest,
                "bob's acknowledgement was sent"
            );
            alice.disconnect().await;
        },
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut session = None;
            let mut received = Vec::new();
            let mut terminated = None;
            while terminated.is_none() {
                assert!(
                    Instant::now() < deadline,
                    "bob (polled once per call): established {session:?}, \
                     {} messages, terminated {terminated:?}",
                    received.len()
                );
                match poll_once(&mut bob).await {
                    Some(esession_xmpp::ClientEvent::Session(esession::Event::Established {
                        session: s,
                        ..
                    })) => session = Some(s),
                    Some(esession_xmpp::ClientEvent::Session(
                        esession::Event::MessageReceived { message, .. },
                    )) => {
                        received.push(message.get_child("body", ns::JABBER_CLIENT).unwrap().text());
                        if received.len() == 20 {
                            let s = session.clone().expect("established before messages");
                            bob.client().send_text(&s, "pong").await.unwrap();
                        }
                    }
                    Some(esession_xmpp::ClientEvent::Session(esession::Event::Terminated {
                        reason,
                        ..
                    })) => terminated = Some(reason),
                    // Our own presence, reflected by the server.
                    Some(esession_xmpp::ClientEvent::ContactOnline { .. }) => {}
                    Some(other) => panic!("bob: unexpected {other:?}"),
                    None => tokio::time::sleep(Duration::from_millis(2)).await,
                }
            }
            assert_eq!(received, expected);
            assert_eq!(terminated, Some(esession::TerminationReason::PeerRequest));
            bob.disconnect().await;
        },
    )
    .await;
}

/// Logs in with `options` (expected to be refused) and checks the fatal
/// event and what the client does after it. Returns the ended client.
async fn expect_refused_login(options: &ConnectOptions) -> EsessionClient {
    expect_fatal_login(options, |error| {
        assert_eq!(error, &LoginError::WrongCredentials);
        assert_eq!(
            error.to_string(),
            "The server refused the login: the JID or the password is wrong \
             (servers do not say which). Check both, then try again."
        );
    })
    .await
}

/// Disconnecting a client whose login failed for good returns at once.
async fn disconnect_at_once(client: EsessionClient) {
    tokio::time::timeout(Duration::from_secs(1), client.disconnect())
        .await
        .expect("disconnect after a fatal login error returns at once");
}

/// [`fatal_login`], then `check` on the error. Returns the ended client
/// (keep it alive to show it does not retry).
async fn expect_fatal_login(
    options: &ConnectOptions,
    check: impl FnOnce(&LoginError),
) -> EsessionClient {
    let (client, error, _) = fatal_login(options).await;
    check(&error);
    client
}

/// A refused login is fatal, reported within seconds, and not retried
/// (tokio-xmpp's own reconnector retries it forever after 1 s, 2 s, 4 s, ...).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_fatal_and_not_retried() {
    let Some(prosody) = prosody_or_skip("wrong_password_is_fatal_and_not_retried") else {
        return;
    };
    let server = prosody.server("localhost", Archive::Off);
    server.register("alice", "alice-pw");
    // Prosody logs "Client connected" (info) for every c2s connection.
    let connections = || server.log().matches("Client connected").count();
    assert_eq!(connections(), 0);

    // A wrong password, over STARTTLS.
    let client = expect_refused_login(&server.connect_options("alice", "r", "not-alices-pw")).await;
    // Long enough for two retries of tokio-xmpp's reconnector (after 1 s and
    // 2 s more), with the client alive.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(connections(), 1, "log:\n{}", server.log());
    disconnect_at_once(client).await;

    // An account that does not exist, over plaintext loopback: servers do not
    // say which of JID and password is wrong.
    let mut options = server.connect_options("nobody", "r", "whatever");
    options.security = TransportSecurity::DangerousPlaintextLoopbackOnly;
    let client = expect_refused_login(&options).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(connections(), 2, "log:\n{}", server.log());
    disconnect_at_once(client).await;

    // The right password still logs in (and the refused attempts left no trace).
    let alice = Peer::login(
        "alice",
        &server.connect_options("alice", "r", "alice-pw"),
        manager(Box::new(MemoryTrustStore::new()), Config::default()),
    )
    .await;
    assert_eq!(alice.jid(), "alice@localhost/r");
    // The count above is live: this login is the third connection.
    assert_eq!(connections(), 3, "log:\n{}", server.log());
    alice.disconnect().await;
}

/// Expects `UntrustedCertificate` for `localhost` with a reason that `check`
/// accepts, naming the certificate the server presented.
async fn expect_untrusted(
    options: &ConnectOptions,
    check: impl FnOnce(&CertificateProblem, &PresentedCertificate),
) -> EsessionClient {
    expect_fatal_login(options, |error| match error {
        LoginError::UntrustedCertificate {
            domain,
            reason,
            certificate,
        } => {
            assert_eq!(domain, "localhost");
            let certificate = certificate
                .as_ref()
                .expect("the refused certificate is named");
            check(reason, certificate);
            // The whole message names it too.
            let text = error.to_string();
            assert!(text.contains(&certificate.sha256), "{text}");
        }
        other => panic!("expected an untrusted certificate, got {other:?}"),
    })
    .await
}

/// A certificate's SHA-256 as `openssl x509 -fingerprint -sha256` prints it,
/// in lower-case hex without colons (independent of our own hashing).
fn openssl_sha256(cert: &std::path::Path) -> String {
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl x509 failed");
    let text = String::from_utf8(out.stdout).unwrap();
    let (_, hex) = text.trim().split_once('=').unwrap();
    hex.replace(':', "").to_lowercase()
}

/// A server certificate that fails verification is fatal, reported within
/// seconds as `LoginError::UntrustedCertificate` with rustls's reason, and
/// not retried (it used to be retried silently forever, after 1 s, 2 s, 4 s,
/// ...): the fixture's private-CA certificate checked against the system's
/// roots, against a CA file with a certificate of another name
/// (UnknownIssuer) or of the same name (BadSignature); a certificate for
/// another name (NotValidForName) and an expired one (Expired), each trusted
/// through the CA file. The right CA file still logs in. Each failure costs
/// exactly one connection to the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_certificate_is_fatal_and_not_retried() {
    let Some(prosody) = prosody_or_skip("untrusted_certificate_is_fatal_and_not_retried") else {
        return;
    };
    let server = prosody.server("localhost", Archive::Off);
    server.register("alice", "alice-pw");
    let certs = tempfile::tempdir().unwrap();
    // Prosody logs "Client connected" (info) for every c2s connection.
    let connections = || server.log().matches("Client connected").count();
    let options = server.connect_options("alice", "r", "alice-pw");

    // The system's roots do not know the fixture's self-signed certificate:
    // UnknownIssuer, or BadSignature where a system root has its issuer's
    // name (Debian's snakeoil certificate in /etc/ssl/certs is "CN=localhost").
    let mut system_roots = options.clone();
    system_roots.security = TransportSecurity::StartTls { ca_file: None };
    let fixture_sha256 = openssl_sha256(&server.ca_file());
    let first = expect_untrusted(&system_roots, |reason, certificate| {
        assert_eq!(certificate.sha256, fixture_sha256);
        assert_eq!(certificate.subject.as_deref(), Some("CN=localhost"));
        assert!(
            matches!(
                reason,
                CertificateProblem::UnknownIssuer | CertificateProblem::BadSignature
            ),
            "{reason:?}"
        );
    })
    .await;

    // A CA file holding a certificate with another name: no trusted issuer.
    let (other_name, _) = self_signed_certificate(certs.path(), "other.example", Validity::Current);
    let mut wrong_ca = options.clone();
    wrong_ca.security = TransportSecurity::StartTls {
        ca_file: Some(other_name),
    };
    let second = expect_untrusted(&wrong_ca, |reason, certificate| {
        assert_eq!(certificate.sha256, fixture_sha256);
        assert_eq!(reason, &CertificateProblem::UnknownIssuer);
    })
    .await;

    // A CA file holding another self-signed certificate named localhost: the
    // issuer's name matches, its key does not.
    let (same_name, _) = self_signed_certificate(certs.path(), "localhost", Validity::Current);
    wrong_ca.security = TransportSecurity::StartTls {
        ca_file: Some(same_name),
    };
    let third = expect_untrusted(&wrong_ca, |reason, certificate| {
        assert_eq!(certificate.sha256, fixture_sha256);
        assert_eq!(reason, &CertificateProblem::BadSignature);
    })
    .await;

    // Long enough for two retries of a reconnector (after 1 s and 2 s more),
    // with all three clients alive.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(connections(), 3, "log:\n{}", server.log());
    for client in [first, second, third] {
        disconnect_at_once(client).await;
    }

    // The right CA file logs in (the failures above were the certificate's).
    let alice = Peer::login(
        "alice",
        &options,
        manager(Box::new(MemoryTrustStore::new()), Config::default()),
    )
    .await;
    assert_eq!(alice.jid(), "alice@localhost/r");
    alice.disconnect().await;
    assert_eq!(connections(), 4, "log:\n{}", server.log());

    // A certificate for another name, trusted as the CA file.
    let (cert, key) = self_signed_certificate(certs.path(), "wrong.example", Validity::Current);
    let wrong_sha256 = openssl_sha256(&cert);
    server.replace_certificate(&cert, &key);
    let mut trusting = options.clone();
    trusting.security = TransportSecurity::StartTls {
        ca_file: Some(cert),
    };
    let fourth = expect_untrusted(&trusting, |reason, certificate| {
        assert_eq!(certificate.subject.as_deref(), Some("CN=wrong.example"));
        assert_eq!(certificate.sha256, wrong_sha256);
        match reason {
            CertificateProblem::NotValidForName { presented } => {
                assert_eq!(presented.len(), 1, "{presented:?}");
                assert_eq!(presented[0], "wrong.example", "{presented:?}");
            }
            other => panic!("expected NotValidForName, got {other:?}"),
        }
    })
    .await;

    // An expired certificate for the right name, trusted as the CA file.
    let expired = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_certificate(expired.path(), "localhost", Validity::Expired);
    let expired_sha256 = openssl_sha256(&cert);
    server.replace_certificate(&cert, &key);
    trusting.security = TransportSecurity::StartTls {
        ca_file: Some(cert),
    };
    let fifth = expect_untrusted(&trusting, |reason, certificate| {
        assert_eq!(certificate.sha256, expired_sha256);
        assert_eq!(certificate.subject.as_deref(), Some("CN=localhost"));
        assert_eq!(reason, &CertificateProblem::Expired);
    })
    .await;

    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(connections(), 6, "log:\n{}", server.log());
    disconnect_at_once(fourth).await;
    disconnect_at_once(fifth).await;
}

/// ESN-45: a client going offline cleanly first ends each of its ESessions
/// with the encrypted terminate form; the peer's session ends as a peer request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_ends_sessions_with_the_terminate_form() {
    let Some(prosody) = prosody_or_skip("disconnect_ends_sessions_with_the_terminate_form") else {
        return;
    };
    let server = prosody.server("localhost", Archive::Off);
    server.register("alice", "alice-pw");
    server.register("bob", "bob-pw");
    let mut alice = Peer::login(
        "alice",
        &server.connect_options("alice", "laptop", "alice-pw"),
        manager(Box::new(MemoryTrustStore::new()), Config::default()),
    )
    .await;
    let bob = Peer::login(
        "bob",
        &server.connect_options("bob", "phone", "bob-pw"),
        manager(Box::new(MemoryTrustStore::new()), Config::default()),
    )
    .await;
    let target = bob.jid().to_owned();
    let ((mut alice, (a_session, _)), (bob, _)) = both(
        async move {
            let established = alice.start(&target).await;
            (alice, established)
        },
        async move {
            let mut bob = bob;
            let established = bob.established().await;
            (bob, established)
        },
    )
    .await;
    bob.disconnect().await;
    assert_eq!(
        alice.terminated(&a_session).await,
        esession::TerminationReason::PeerRequest
    );
    assert!(alice.client().manager().session_info(&a_session).is_none());
    alice.disconnect().await;
}

/// Issue 11: a stanza nested 36,000 deep (what fits in Prosody's 256 KiB
/// stanza limit), from any user, reaches a library client polled on a test
/// thread (2 MiB stack): it is dropped without recursion (minidom's own drop
/// overflowed that stack) and the next stanza arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deeply_nested_stanza_reaches_a_library_client_harmlessly() {
    let Some(prosody) =
        prosody_or_skip("a_deeply_nested_stanza_reaches_a_library_client_harmlessly")
    else {
        return;
    };
    let server = prosody.server("localhost", Archive::Off);
    server.register("alice", "alice-pw");
    server.register("bob", "bob-pw");
    let mut bob = Peer::login(
        "bob",
        &server.connect_options("bob", "laptop", "bob-pw"),
        manager(Box::new(MemoryTrustStore::new()), Config::default()),
    )
    .await;
    let depth = 36_000;
    let mut bomb = b"<message to='bob@localhost/laptop' type='chat'><body>the bomb</body>".to_vec();
    bomb.extend(b"<a>".repeat(depth));
    bomb.extend(b"</a>".repeat(depth));
    bomb.extend(b"</message>");
    let after =
        b"<message to='bob@localhost/laptop' type='chat'><body>after</body></message>".to_vec();
    let port = server.c2s_port();
    let _alice = tokio::task::spawn_blocking(move || {
        esession_testkit::plain::send_raw_stanzas(
            port,
            "localhost",
            "alice",
            "alice-pw",
            "raw",
            &[bomb, after],
        )
    })
    .await
    .unwrap();
    let (_, first) = bob.plain_message().await;
    assert_eq!(first, "after", "the bomb is dropped, the next one arrives");
}
