#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
//! Issue 10 through a real Prosody: within 5 s of logging in, `chat` says
//! which of these the contact is: offline, online with a client that has no
//! ESessions, or online and silent (it claims ESessions but does not answer).
//! Alice and her contact are in each other's roster (subscription `both`), so
//! presence tells her who is online.

use std::time::Instant;

use esession_testkit::plain::{NO_ESESSIONS, PlainContact, SILENT_ESESSIONS};
use esession_testkit::{Prosody, prosody_or_skip};

mod common;
use common::*;

/// A Prosody with alice and bob, mutual contacts, and Alice's home.
fn friends(name: &str) -> Option<(tempfile::TempDir, Prosody)> {
    let prosody = prosody_or_skip(name)?;
    let home = tempfile::tempdir().unwrap();
    prepare_home(home.path(), &["alice", "bob"]);
    let server = localhost_with_alice_and_bob(&prosody);
    server.befriend("alice", "bob");
    Some((home, server))
}

/// Alice chats with bob@localhost; returns the chat once she is logged in
/// (her status leaves `[connecting]`) and the instant that happened.
fn alice_chats(home: &std::path::Path, server: &Prosody) -> (Running, Instant) {
    let mut alice = chat(home, server, "alice", &[], "bob@localhost");
    alice.wait("*** Now [not encrypted]", 30);
    (alice, Instant::now())
}

/// Waits for `what` and asserts it came within 5 s of `online`.
fn within_5_s(alice: &mut Running, online: Instant, what: &str) {
    alice.wait(what, 6);
    let took = online.elapsed();
    assert!(
        took.as_secs_f64() <= 5.0,
        "{what:?} took {took:?}: {:#?}",
        alice.seen
    );
}

#[test]
fn an_offline_contact_is_reported_within_5_s() {
    let Some((home, server)) = friends("an_offline_contact_is_reported_within_5_s") else {
        return;
    };
    let (mut alice, online) = alice_chats(home.path(), &server);
    within_5_s(
        &mut alice,
        online,
        "!!! bob@localhost is offline (no presence). What you type is queued and sent when they come online.",
    );
    alice.type_line("hello later");
    alice.wait("*** Queued", 5);
    let seen = alice.drain(1);
    assert!(
        !seen
            .iter()
            .any(|l| l.contains("hello later") && l.contains("NOT ENCRYPTED")),
        "{seen:#?}"
    );
    alice.quit();
}

#[test]
fn a_contact_without_esessions_is_reported_within_5_s() {
    let Some((home, server)) = friends("a_contact_without_esessions_is_reported_within_5_s") else {
        return;
    };
    let _bob = PlainContact::online(
        server.connect_options("bob", "plain", "bob-pw"),
        NO_ESESSIONS,
    );
    let (mut alice, online) = alice_chats(home.path(), &server);
    within_5_s(
        &mut alice,
        online,
        "!!! bob@localhost/plain is online but its client does not support encrypted sessions",
    );
    alice.quit();
}

#[test]
fn a_silent_contact_is_reported_within_5_s() {
    let Some((home, server)) = friends("a_silent_contact_is_reported_within_5_s") else {
        return;
    };
    let _bob = PlainContact::online(
        server.connect_options("bob", "quiet", "bob-pw"),
        SILENT_ESESSIONS,
    );
    let (mut alice, online) = alice_chats(home.path(), &server);
    within_5_s(
        &mut alice,
        online,
        "*** bob@localhost is online (bob@localhost/quiet); waiting for their client to answer the offer ...",
    );
    alice.quit();
}
