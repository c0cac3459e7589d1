//! Issue 13: XEP-0187 offline sessions through a real Prosody, as users run them.
//!
//! - `bob_writes_to_offline_alice_who_reads_it_in_a_new_process`: Alice and Bob each
//!   generate and publish a key and verify the other's fingerprint; Alice publishes offline
//!   options and goes away; Bob's `send --offline` encrypts to them (the server keeps the
//!   stanza); Alice's `listen`, a new process reopening her store, holds the kept set,
//!   reads Bob's message authenticated by his key (a one-off command run before it left the
//!   message on the server: negative presence priority), and the set is gone from her store and
//!   server afterwards (a second `send --offline` finds no options); after a new
//!   `offline-publish`, a plain `send` finds her offline and sends offline by itself (it needs
//!   `--public-keys`, and says so without it); `listen --offline-on-exit 1` publishes a fresh
//!   set as it ends, and the next message reads with that one.
//! - `without_a_verified_key_nothing_is_sent_offline`: Bob has only seen Alice's key.
//!
//! Without Prosody the test prints a loud SKIPPED banner and passes, unless
//! `ESESSION_REQUIRE_PROSODY=1`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod common;

use std::path::Path;

use common::{
    account_args, chat_on, esession, kill, localhost_with_alice_and_bob, prepare_home, show,
};
use esession_testkit::{Prosody, prosody_or_skip};

/// Runs `esession ARGS` as `user`; stdout and stderr, after checking the exit status. A
/// command still running after a minute (a `listen` waiting for a message that never
/// comes) is killed and fails the test.
fn run(home: &Path, server: &Prosody, user: &str, args: &[&str], success: bool) -> String {
    let mut child = esession(home)
        .args(account_args(server, home, user, true))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("{user} {args:?} still running after 60 s: {}", show(&out));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.success(),
        success,
        "{user} {args:?}: {}",
        show(&out)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `user`'s first key's fingerprint, as `keys export 1` prints it.
fn fingerprint(home: &Path, server: &Prosody, user: &str) -> String {
    let out = run(home, server, user, &["keys", "export", "1"], true);
    out.lines()
        .find_map(|l| l.strip_prefix("SHA-256 fingerprint: ").map(str::to_owned))
        .unwrap_or_else(|| panic!("{out}"))
}

/// Both generate and publish a key; `verifying` users fetch and verify the other's.
fn keys_for_both(home: &Path, server: &Prosody, verifying: &[(&str, &str)]) {
    for user in ["alice", "bob"] {
        run(
            home,
            server,
            user,
            &["keys", "generate", "--bits", "2048"],
            true,
        );
        run(home, server, user, &["keys", "publish"], true);
    }
    for (user, contact) in verifying {
        let jid = format!("{contact}@localhost");
        run(home, server, user, &["trust", "fetch", &jid], true);
        let print = fingerprint(home, server, contact);
        run(
            home,
            server,
            user,
            &["trust", "verify", &jid, "--fingerprint", &print],
            true,
        );
    }
}

#[test]
fn bob_writes_to_offline_alice_who_reads_it_in_a_new_process() {
    let Some(prosody) =
        prosody_or_skip("bob_writes_to_offline_alice_who_reads_it_in_a_new_process")
    else {
        return;
    };
    let server = localhost_with_alice_and_bob(&prosody);
    server.befriend("alice", "bob");
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    prepare_home(home, &["alice", "bob"]);
    keys_for_both(home, &server, &[("alice", "bob"), ("bob", "alice")]);

    let out = run(
        home,
        &server,
        "alice",
        // Issue 14: a session that may be logged, so both histories keep it.
        &["--archiving", "concede", "offline-publish", "--hours", "2"],
        true,
    );
    assert!(
        out.contains("Published offline options valid until"),
        "{out}"
    );

    let out = run(
        home,
        &server,
        "bob",
        &[
            "--archiving",
            "forbid",
            "send",
            "--offline",
            "alice@localhost",
            "written while you were away",
        ],
        true,
    );
    let alice_print = fingerprint(home, &server, "alice");
    assert!(
        out.contains("alice@localhost is offline: sent as an offline encrypted session")
            && out.contains(&alice_print),
        "{out}"
    );

    // A one-off command of Alice's logs in first: it must not take the kept
    // message from the server (it could not read it), only `listen` or `chat` do.
    run(
        home,
        &server,
        "alice",
        &["trust", "fetch", "bob@localhost"],
        true,
    );

    // Alice is back: a new process, her store reopened.
    let out = run(
        home,
        &server,
        "alice",
        &["listen", "--json", "--count", "1"],
        true,
    );
    let events: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "offline_options_held" && e["sets"] == 1),
        "{out}"
    );
    let message = events
        .iter()
        .find(|e| e["event"] == "message")
        .unwrap_or_else(|| panic!("no message: {out}"));
    assert_eq!(message["body"], "written while you were away", "{out}");
    assert_eq!(message["peer"], "bob@localhost/cli", "{out}");
    assert!(
        !events
            .iter()
            .any(|e| e["event"] == "offline_message_rejected"),
        "{out}"
    );

    // Issue 14: both histories keep the offline message (a one-shot session,
    // gone by the time the message is shown).
    for (user, contact, direction) in [
        ("alice", "bob@localhost", "received"),
        ("bob", "alice@localhost", "sent"),
    ] {
        let out = run(home, &server, user, &["history", contact, "--json"], true);
        let kept: Vec<serde_json::Value> = out
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        assert_eq!(kept.len(), 1, "{user}: {out}");
        assert_eq!(
            kept[0]["body"], "written while you were away",
            "{user}: {out}"
        );
        assert_eq!(kept[0]["direction"], direction, "{user}: {out}");
    }

    // The set was used up: withdrawn from the server, gone from her store.
    let out = run(
        home,
        &server,
        "bob",
        &["send", "--offline", "alice@localhost", "again"],
        false,
    );
    assert!(out.contains("published no offline options"), "{out}");

    // She leaves again with a new set (OFF-18); a plain `send` sees her offline with
    // options, and says what it needs; with her key it sends offline by itself.
    run(home, &server, "alice", &["offline-publish"], true);
    let out = run(
        home,
        &server,
        "bob",
        &["send", "alice@localhost", "plain send"],
        false,
    );
    assert!(
        out.contains("run again with --public-keys. Nothing was sent."),
        "{out}"
    );
    let out = run(
        home,
        &server,
        "bob",
        &["--public-keys", "send", "alice@localhost", "plain send"],
        true,
    );
    assert!(
        out.contains("alice@localhost is offline: sent as an offline encrypted session"),
        "{out}"
    );
    // She reads it, and leaving publishes a fresh set by itself (OFF-18).
    let out = run(
        home,
        &server,
        "alice",
        &["--offline-on-exit", "1", "listen", "--json", "--count", "1"],
        true,
    );
    assert!(out.contains("\"body\":\"plain send\""), "{out}");
    assert!(
        out.contains("\"event\":\"offline_options_published\""),
        "{out}"
    );
    run(
        home,
        &server,
        "bob",
        &["--public-keys", "send", "alice@localhost", "third"],
        true,
    );
    let out = run(
        home,
        &server,
        "alice",
        &["listen", "--json", "--count", "1"],
        true,
    );
    assert!(out.contains("\"body\":\"third\""), "{out}");
}

#[test]
fn without_a_verified_key_nothing_is_sent_offline() {
    let Some(prosody) = prosody_or_skip("without_a_verified_key_nothing_is_sent_offline") else {
        return;
    };
    let server = localhost_with_alice_and_bob(&prosody);
    server.befriend("alice", "bob");
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    prepare_home(home, &["alice", "bob"]);
    keys_for_both(home, &server, &[("alice", "bob")]);
    // Bob has seen Alice's key, but not verified it (AMB-69).
    run(
        home,
        &server,
        "bob",
        &["trust", "fetch", "alice@localhost"],
        true,
    );
    run(home, &server, "alice", &["offline-publish"], true);
    let out = run(
        home,
        &server,
        "bob",
        &["send", "--offline", "alice@localhost", "hello"],
        false,
    );
    assert!(
        out.contains("signed by no key of theirs you verified"),
        "{out}"
    );
}

/// The chat as people use it: Bob chats with offline Alice, who published options; what he
/// types goes as one offline session, tagged so; Alice's chat, when she is back, shows both
/// messages as offline ones with their authenticated time; Bob's chat sees her online, ends
/// the offline session (OFF-17) and a normal session carries her reply.
#[test]
fn a_chat_with_an_offline_contact_writes_offline_then_goes_on_normally() {
    let Some(prosody) =
        prosody_or_skip("a_chat_with_an_offline_contact_writes_offline_then_goes_on_normally")
    else {
        return;
    };
    let server = localhost_with_alice_and_bob(&prosody);
    server.befriend("alice", "bob");
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    prepare_home(home, &["alice", "bob"]);
    keys_for_both(home, &server, &[("alice", "bob"), ("bob", "alice")]);
    run(home, &server, "alice", &["offline-publish"], true);

    let port = server.c2s_port();
    let mut bob = chat_on(
        home,
        &server,
        port,
        "bob",
        &["--public-keys"],
        "alice@localhost",
    );
    bob.wait("is offline and published offline options (XEP-0187)", 30);
    bob.type_line("one, while you are away");
    bob.wait("*** Sent offline", 15);
    bob.type_line("two, while you are away");
    bob.wait("[offline message, encrypted]: two, while you are away", 15);

    let mut alice = chat_on(
        home,
        &server,
        port,
        "alice",
        &["--public-keys"],
        "bob@localhost",
    );
    alice.wait(
        "wrote while you were offline (XEP-0187), authenticated by their verified key",
        30,
    );
    alice.wait("[offline message, verified key, written ", 15);
    alice.wait("two, while you are away", 15);
    bob.wait("is online again: the offline session with them ended", 30);
    alice.wait("*** Now [encrypted][verified]", 30);
    alice.type_line("back now");
    bob.wait("back now", 30);
    for chat in [&mut alice, &mut bob] {
        chat.type_line("/quit");
        chat.drain(2);
        kill(&mut chat.child);
    }
}
