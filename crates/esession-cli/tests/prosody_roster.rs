//! Issue 15: the roster and presence subscriptions from the command line,
//! through a real Prosody: Alice adds Bob (asking to see his presence), Bob
//! approves, both rosters say so, and removing ends it.
//!
//! Without Prosody the test prints a loud SKIPPED banner and passes, unless
//! `ESESSION_REQUIRE_PROSODY=1`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use esession_testkit::prosody_or_skip;
use serde_json::Value;

mod common;
use common::*;

fn run(
    home: &std::path::Path,
    server: &esession_testkit::Prosody,
    user: &str,
    args: &[&str],
) -> String {
    run_as(home, server, user, args, true)
}

/// The roster entry for `jid` in `user`'s `roster list --json`.
fn entry(
    home: &std::path::Path,
    server: &esession_testkit::Prosody,
    user: &str,
    jid: &str,
) -> Option<Value> {
    run(home, server, user, &["roster", "list", "--json"])
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["jid"] == jid)
}

#[test]
fn contacts_are_added_approved_and_removed() {
    let Some(prosody) = prosody_or_skip("contacts_are_added_approved_and_removed") else {
        return;
    };
    let server = localhost_with_alice_and_bob(&prosody);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    prepare_home(home, &["alice", "bob"]);

    let said = run(
        home,
        &server,
        "alice",
        &["roster", "add", "bob@localhost", "--name", "Bob"],
    );
    assert!(said.contains("Added bob@localhost"), "{said}");
    let bob = entry(home, &server, "alice", "bob@localhost").expect("bob in alice's roster");
    assert_eq!(bob["name"], "Bob");
    assert_eq!(bob["subscription"], "none");
    assert_eq!(bob["pending"], true, "{bob}");

    let said = run(
        home,
        &server,
        "bob",
        &["roster", "approve", "alice@localhost"],
    );
    assert!(
        said.contains("alice@localhost may now see when you are online"),
        "{said}"
    );
    let bob = entry(home, &server, "alice", "bob@localhost").unwrap();
    assert_eq!(
        bob["subscription"], "to",
        "alice sees bob's presence: {bob}"
    );
    let alice = entry(home, &server, "bob", "alice@localhost").expect("alice in bob's roster");
    assert_eq!(alice["subscription"], "from", "{alice}");
    // For a person too.
    let listed = run(home, &server, "alice", &["roster", "list"]);
    assert!(
        listed.contains("bob@localhost (Bob): you see their presence, they do not see yours"),
        "{listed}"
    );

    let said = run(
        home,
        &server,
        "alice",
        &["roster", "remove", "bob@localhost"],
    );
    assert!(said.contains("Removed bob@localhost"), "{said}");
    assert!(entry(home, &server, "alice", "bob@localhost").is_none());

    // A full JID is not a contact.
    let out = esession(home)
        .args(account_args(&server, home, "alice", true))
        .args(["roster", "add", "bob@localhost/phone"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(show(&out).contains("give their bare JID"), "{}", show(&out));
}
