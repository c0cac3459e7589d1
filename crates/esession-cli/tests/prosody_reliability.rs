#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
//! Issue 10 through a real Prosody: nothing typed is lost in silence. A
//! contact killed (SIGKILL) and restarted on the same store, and a server
//! restart in the middle of a chat: every message is delivered exactly once,
//! and both sides are told what happened. A cut connection is resumed
//! (XEP-0198) and the session continues. Bob is `esession listen --json`;
//! Alice chats.

use esession_testkit::{Ejabberd, Prosody, XmppServer, ejabberd_or_skip, prosody_or_skip};

mod common;
use common::*;

/// A Prosody with alice and bob, Bob's `listen` and Alice's `chat` with an
/// established session (the directory and server live as long as it does).
struct Scene<S> {
    home: tempfile::TempDir,
    server: S,
    bob: Running,
    alice: Running,
}

/// `None` (skipped) without Prosody.
fn scene(name: &str) -> Option<Scene<Prosody>> {
    let prosody = prosody_or_skip(name)?;
    Some(scene_on(localhost_with_alice_and_bob(&prosody)))
}

/// The same on ejabberd; `None` (skipped) without it.
fn ejabberd_scene(name: &str) -> Option<Scene<Ejabberd>> {
    let ejabberd = ejabberd_or_skip(name)?;
    Some(scene_on(ejabberd_localhost_with_alice_and_bob(&ejabberd)))
}

fn scene_on<S: XmppServer>(server: S) -> Scene<S> {
    let home = tempfile::tempdir().unwrap();
    prepare_home(home.path(), &["alice", "bob"]);
    let bob = bob_listens(home.path(), &server);
    let mut alice = alice_chats(home.path(), &server);
    alice.wait("*** Now [encrypted][UNVERIFIED]", 30);
    Scene {
        home,
        server,
        bob,
        alice,
    }
}

fn bob_listens(home: &std::path::Path, server: &dyn XmppServer) -> Running {
    listen(home, server, "bob", &[])
}

fn alice_chats(home: &std::path::Path, server: &dyn XmppServer) -> Running {
    chat(home, server, "alice", &[], "bob@localhost/cli")
}

/// Waits until `/status` lists nothing "Not yet delivered".
fn all_delivered(chat: &mut Running) {
    for _ in 0..20 {
        chat.type_line("/status");
        chat.wait("*** Status:", 5);
        let seen = chat.drain(0);
        let last = seen
            .iter()
            .rposition(|l| l.starts_with("*** Status:"))
            .unwrap_or(0);
        std::thread::sleep(std::time::Duration::from_millis(250));
        let seen = chat.drain(0);
        if !seen[last..].iter().any(|l| l.contains("Not yet delivered")) {
            return;
        }
    }
    panic!(
        "{}: messages never acknowledged: {:#?}",
        chat.name, chat.seen
    );
}

/// The bodies of the encrypted messages Bob's listen printed, in order.
fn bodies(bob: &Running) -> Vec<String> {
    bob.seen
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "message" && e["encrypted"] == true)
        .filter_map(|e| e["body"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn a_contact_killed_and_restarted_gets_the_next_message_exactly_once() {
    if let Some(scene) = scene("a_contact_killed_and_restarted_gets_the_next_message_exactly_once")
    {
        killed_and_restarted(scene);
    }
}

#[test]
fn on_ejabberd_a_contact_killed_and_restarted_gets_the_next_message_exactly_once() {
    if let Some(scene) = ejabberd_scene(
        "on_ejabberd_a_contact_killed_and_restarted_gets_the_next_message_exactly_once",
    ) {
        killed_and_restarted(scene);
    }
}

fn killed_and_restarted<S: XmppServer>(scene: Scene<S>) {
    let Scene {
        home,
        server,
        mut bob,
        mut alice,
    } = scene;
    let home = home.path();
    alice.type_line("before the crash");
    bob.wait("before the crash", 10);
    // Its receipt is back before the crash: this scenario is about the next
    // message. One whose receipt the crash swallowed is re-sent and not shown
    // twice, by the store's record of delivered ids (core test
    // `a_contact_that_crashed_before_its_receipt_left_does_not_show_the_resend_twice`,
    // store test `delivered_message_ids_survive_a_restart_and_stay_bounded`).
    all_delivered(&mut alice);

    // kill -9, and a restart on the same store (the same resource).
    kill(&mut bob.child);
    let mut bob = bob_listens(home, &server);
    alice.type_line("after the restart");
    // Alice is told the message did not arrive and why, then that it was re-sent.
    alice.wait("no longer has this session", 15);
    alice.wait(
        "!!! Not delivered — it will be re-sent in a new session: \"after the restart\"",
        5,
    );
    alice.wait("*** Re-sent: \"after the restart\"", 30);
    alice.wait("*** Delivered: \"after the restart\"", 15);
    // Bob was told a stanza of a lost session arrived, then got the message once.
    bob.wait("\"unknown_session\"", 5);
    bob.wait("after the restart", 10);
    bob.drain(2);
    let got = bodies(&bob);
    assert_eq!(
        got,
        ["after the restart"],
        "bodies {got:?} in {:#?}",
        bob.seen
    );
    let seen = alice.drain(1);
    assert!(
        !seen.iter().any(|l| l.contains("Not yet delivered after")),
        "{seen:#?}"
    );
    alice.type_line("/quit");
    alice.drain(2);
    kill(&mut alice.child);
    kill(&mut bob.child);
}

#[test]
fn a_server_restart_mid_chat_loses_nothing() {
    let Some(Scene {
        home: _home,
        mut server,
        mut bob,
        mut alice,
    }) = scene("a_server_restart_mid_chat_loses_nothing")
    else {
        return;
    };
    alice.type_line("one");
    bob.wait("\"one\"", 10);

    server.restart();
    alice.type_line("two, typed during the outage");
    // Alice: told the session ended with the connection, then reconnected
    // and re-negotiated (authenticated by the retained secret, no new SAS).
    alice.wait("Our connection to the server was reset", 60);
    alice.wait("*** Reconnected as alice@localhost/cli", 60);
    alice.wait("Authenticated by the secret retained", 60);
    alice.wait("\"two, typed during the outage\"", 30);
    alice.wait("*** Delivered: \"two, typed during the outage\"", 30);
    bob.wait("two, typed during the outage", 10);
    bob.drain(2);
    assert_eq!(
        bodies(&bob),
        ["one", "two, typed during the outage"],
        "exactly once each: {:#?}",
        bob.seen
    );
    // Bob's listen saw its session end with the reset, or just before it
    // with Alice going offline: her chat sends her presence to Bob (issue
    // 15), and a server shutting down announces her unavailable (SSN-16).
    assert!(
        bob.seen
            .iter()
            .any(|l| l.contains("\"connection_reset\"") || l.contains("\"peer_unavailable\"")),
        "{:#?}",
        bob.seen
    );
    alice.type_line("/quit");
    alice.drain(2);
    kill(&mut alice.child);
    kill(&mut bob.child);
}

#[test]
fn a_contact_offline_gets_the_queued_message_when_back() {
    let Some(Scene {
        home,
        server,
        mut bob,
        mut alice,
    }) = scene("a_contact_offline_gets_the_queued_message_when_back")
    else {
        return;
    };
    let home = home.path();
    // Bob leaves cleanly (SIGINT: his listen ends the session, ESN-45).
    let _ = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("kill -INT {}", bob.child.id()))
        .status();
    alice.wait("ended the session", 15);
    alice.wait("*** Now [not encrypted]", 5);
    let _ = bob.child.wait();
    alice.type_line("while you were away");
    alice.wait(
        "*** Queued: it will be sent once the encrypted session is established",
        5,
    );
    // Bob comes back: the offer kept for him by the server is stale (SSN-10),
    // he offers afresh, and the queued message goes out in that session.
    let mut bob = bob_listens(home, &server);
    alice.wait("*** Sent: \"while you were away\"", 60);
    alice.wait("*** Now [encrypted]", 5);
    bob.wait("while you were away", 15);
    bob.drain(2);
    assert_eq!(bodies(&bob), ["while you were away"], "{:#?}", bob.seen);
    alice.type_line("/quit");
    alice.drain(2);
    kill(&mut alice.child);
    kill(&mut bob.child);
}

#[test]
fn a_contact_that_stops_reading_is_reported_then_delivered_once() {
    if let Some(scene) = scene("a_contact_that_stops_reading_is_reported_then_delivered_once") {
        stops_reading(scene);
    }
}

#[test]
fn on_ejabberd_a_contact_that_stops_reading_is_reported_then_delivered_once() {
    if let Some(scene) =
        ejabberd_scene("on_ejabberd_a_contact_that_stops_reading_is_reported_then_delivered_once")
    {
        stops_reading(scene);
    }
}

fn stops_reading<S: XmppServer>(scene: Scene<S>) {
    let Scene {
        home: _home,
        server: _server,
        mut bob,
        mut alice,
    } = scene;
    alice.type_line("first");
    bob.wait("\"first\"", 10);
    // Bob prints the message before his receipt for it has surely left; on a loaded
    // machine stopping him at once could keep the receipt in, and Alice would then
    // conclude his client sends none. Let it go first.
    std::thread::sleep(std::time::Duration::from_secs(2));
    // The network to Bob is cut: his process stops reading its socket.
    let signal = |name: &str, pid: u32| {
        let _ = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("kill -{name} {pid}"))
            .status();
    };
    signal("STOP", bob.child.id());
    alice.type_line("second, into the void");
    alice.wait(
        "!!! Not yet delivered after 5 s: \"second, into the void\" (no receipt from bob@localhost/cli yet)",
        15,
    );
    signal("CONT", bob.child.id());
    alice.wait("*** Delivered: \"second, into the void\"", 30);
    bob.wait("second, into the void", 10);
    bob.drain(2);
    assert_eq!(
        bodies(&bob),
        ["first", "second, into the void"],
        "{:#?}",
        bob.seen
    );
    alice.type_line("/quit");
    alice.drain(2);
    kill(&mut alice.child);
    kill(&mut bob.child);
}

#[test]
fn a_cut_connection_is_resumed_and_the_session_continues() {
    let Some(prosody) = prosody_or_skip("a_cut_connection_is_resumed_and_the_session_continues")
    else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    prepare_home(home.path(), &["alice", "bob"]);
    let server = localhost_with_alice_and_bob(&prosody);
    let mut bob = bob_listens(home.path(), &server);
    // Alice's connection goes through a relay the test can cut.
    let relay = esession_testkit::TcpRelay::to(server.c2s_port());
    let mut alice = chat_on(
        home.path(),
        &server,
        relay.port(),
        "alice",
        &[],
        "bob@localhost/cli",
    );
    alice.wait("*** Now [encrypted][UNVERIFIED]", 30);
    alice.type_line("before the cut");
    bob.wait("before the cut", 10);
    all_delivered(&mut alice);

    assert_eq!(relay.cut(), 1, "Alice's one connection");
    alice.wait("!!! connection lost; reconnecting", 10);
    alice.type_line("during the cut");
    alice.wait(
        "*** Connection back: the stream was resumed (XEP-0198) and the session continues.",
        30,
    );
    alice.wait("*** Now [encrypted][UNVERIFIED]", 5);
    alice.type_line("after the cut");
    bob.wait("during the cut", 15);
    bob.wait("after the cut", 10);
    all_delivered(&mut alice);
    bob.drain(2);
    assert_eq!(
        bodies(&bob),
        ["before the cut", "during the cut", "after the cut"],
        "{:#?}",
        bob.seen
    );
    // One session all along: no new negotiation on either side.
    let established = bob
        .seen
        .iter()
        .filter(|l| l.contains("\"event\":\"established\""))
        .count();
    assert_eq!(established, 1, "{:#?}", bob.seen);
    let seen = alice.drain(1);
    assert!(
        !alice
            .seen
            .iter()
            .any(|l| l.contains("Reconnected as") || l.contains("Not delivered")),
        "{seen:#?} {:#?}",
        alice.seen
    );
    alice.type_line("/quit");
    alice.drain(2);
    kill(&mut alice.child);
    kill(&mut bob.child);
}
