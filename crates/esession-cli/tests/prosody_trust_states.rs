#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
//! Issue 10 through a real Prosody: what `esession chat` shows about trust is
//! always true. `/verify` takes effect at once (status tag and `/status`) and
//! carries to the next session; `/distrust` revokes (the next session shows
//! the SAS prompt, `trust list` says unverified); a contact that lost its
//! retained secrets raises the broken-chain warning, and sending waits for
//! `/ack`. Bob is `esession listen` (a pure responder); Alice chats.

use esession_testkit::{XmppServer, ejabberd_or_skip, prosody_or_skip};

mod common;
use common::*;

fn alice_chats(home: &std::path::Path, server: &dyn XmppServer, extra: &[&str]) -> Running {
    chat(home, server, "alice", extra, "bob@localhost/cli")
}

#[test]
fn verify_distrust_and_a_broken_chain_show_the_true_state() {
    if let Some(prosody) = prosody_or_skip("verify_distrust_and_a_broken_chain_show_the_true_state")
    {
        verify_distrust_and_broken_chain(&localhost_with_alice_and_bob(&prosody));
    }
}

#[test]
fn on_ejabberd_verify_distrust_and_a_broken_chain_show_the_true_state() {
    if let Some(ejabberd) =
        ejabberd_or_skip("on_ejabberd_verify_distrust_and_a_broken_chain_show_the_true_state")
    {
        verify_distrust_and_broken_chain(&ejabberd_localhost_with_alice_and_bob(&ejabberd));
    }
}

fn verify_distrust_and_broken_chain(server: &dyn XmppServer) {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    prepare_home(home, &["alice", "bob"]);
    let mut bob = listen(home, server, "bob", &[]);

    // Session 1: first contact. UNVERIFIED until /verify, then verified at once.
    let mut alice = alice_chats(home, server, &[]);
    let banner = alice.wait("SHORT AUTHENTICATION STRING", 30);
    assert!(
        banner
            .iter()
            .any(|l| l.contains("Encrypted session established with bob@localhost/cli"))
    );
    alice.wait("*** Now [encrypted][UNVERIFIED]", 30);
    // Bob's first `established`: no retained secret yet.
    bob.wait("\"established\"", 10);
    alice.type_line("/status");
    let before = alice.wait(
        "Until then this session is encrypted but NOT authenticated",
        30,
    );
    assert!(
        before
            .iter()
            .any(|l| l == "*** Status: [encrypted][UNVERIFIED]"),
        "{before:#?}"
    );
    alice.type_line("/verify");
    alice.wait("*** Verified: bob@localhost/cli is who the SAS says", 30);
    alice.wait("*** Now [encrypted][verified]", 30);
    alice.type_line("/status");
    let after = alice.wait("compared and confirmed by you: VERIFIED", 30);
    assert!(
        after
            .iter()
            .any(|l| l == "*** Status: [encrypted][verified]"),
        "{after:#?}"
    );
    assert!(
        !after.iter().any(|l| l.contains("NOT authenticated")),
        "{after:#?}"
    );
    alice.quit();

    // Session 2: the verified chain continues; /distrust revokes it.
    let mut alice = alice_chats(home, server, &[]);
    let banner = alice.wait("Authenticated by the secret retained", 30);
    assert!(
        banner
            .last()
            .unwrap()
            .contains("(that chain was SAS-verified)"),
        "{banner:#?}"
    );
    alice.wait("*** Now [encrypted][verified]", 30);
    // Bob's listen learned the answer with `established` itself.
    let established = bob.wait("\"established\"", 10);
    let last: Vec<serde_json::Value> = established
        .iter()
        .filter(|l| l.contains("\"established\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let json = last.last().unwrap();
    assert_eq!(json["authenticated_by_retained_secret"], true, "{json}");
    alice.type_line("/distrust");
    alice.wait(
        "!!! SAS mismatch recorded: bob@localhost/cli is NOT verified any more",
        30,
    );
    alice.quit();
    let listed = esession(home)
        .args(account_args(server, home, "alice", true))
        .args(["trust", "list"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listed.stdout);
    let bob_line = listing
        .lines()
        .find(|l| l.starts_with("bob@localhost"))
        .unwrap_or_else(|| panic!("{}", show(&listed)));
    assert!(bob_line.contains("unverified"), "{bob_line}");
    assert!(!bob_line.contains("verified (SAS compared)"), "{bob_line}");

    // Session 3: continuity, but unverified: the SAS prompt is back.
    let mut alice = alice_chats(home, server, &[]);
    let banner = alice.wait("SHORT AUTHENTICATION STRING", 30);
    assert!(
        banner.iter().any(|l| l.contains(
            "Authenticated by the secret retained from your last session with this client."
        )),
        "{banner:#?}"
    );
    alice.wait("*** Now [encrypted][UNVERIFIED]", 30);
    alice.type_line("/verify");
    alice.wait("*** Now [encrypted][verified]", 30);
    alice.quit();

    // Session 4: Bob lost his store. Alice's verified chain is broken: loud.
    kill(&mut bob.child);
    std::fs::remove_file(home.join("bob.db")).unwrap();
    let mut bob = listen(home, server, "bob", &[]);
    let mut alice = alice_chats(home, server, &[]);
    let warning = alice.wait("CONTINUITY WITH bob@localhost/cli IS BROKEN", 30);
    assert!(
        warning
            .last()
            .unwrap()
            .contains("WARNING: VERIFIED CONTINUITY"),
        "{warning:#?}"
    );
    let why = alice.wait("SOMEONE IS IN THE MIDDLE", 30);
    assert!(why.last().unwrap().contains("lost their data"), "{why:#?}");
    alice.wait(
        "compare the short authentication string (SAS) shown below",
        30,
    );
    alice.wait("SHORT AUTHENTICATION STRING", 30);
    alice.wait("*** Now [encrypted][UNVERIFIED]", 30);
    alice.type_line("hello after the warning");
    alice.wait("!!! Held back: acknowledge the warning above first", 30);
    let before_ack = bob.drain(2);
    assert!(
        !before_ack
            .iter()
            .any(|l| l.contains("hello after the warning")),
        "nothing is sent before the user acknowledges"
    );
    alice.type_line("/ack");
    alice.wait("*** Sent: \"hello after the warning\"", 30);
    bob.wait("hello after the warning", 10);
    alice.quit();
    kill(&mut bob.child);
}

/// `esession keys export 1` of `user`: the SHA-256 fingerprint in hex.
fn exported_fingerprint(
    home: &std::path::Path,
    server: &esession_testkit::Prosody,
    user: &str,
) -> String {
    let out = esession(home)
        .args(account_args(server, home, user, true))
        .args(["keys", "export", "1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("SHA-256 fingerprint: ")
                .map(|f| f.replace(' ', "").to_lowercase())
        })
        .unwrap_or_else(|| panic!("{}", show(&out)))
}

/// The fingerprint as the chat shows it in full: upper-case groups of 8.
fn grouped(hex: &str) -> String {
    hex.to_uppercase()
        .as_bytes()
        .chunks(8)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn generate_key(home: &std::path::Path, server: &esession_testkit::Prosody, user: &str) {
    let out = esession(home)
        .args(account_args(server, home, user, true))
        .args(["keys", "generate", "--bits", "2048"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
}

#[test]
fn a_changed_public_key_is_a_loud_warning_with_both_fingerprints() {
    let Some(prosody) =
        prosody_or_skip("a_changed_public_key_is_a_loud_warning_with_both_fingerprints")
    else {
        return;
    };
    let server = localhost_with_alice_and_bob(&prosody);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    prepare_home(home, &["alice", "bob"]);
    for user in ["alice", "bob"] {
        generate_key(home, &server, user);
    }
    let old = exported_fingerprint(home, &server, "bob");
    let start_bob = || listen(home, &server, "bob", &["--public-keys"]);
    let start_alice = || alice_chats(home, &server, &["--public-keys"]);
    let verify = |user: &str, contact: &str, fingerprint: &str| {
        let out = esession(home)
            .args(account_args(&server, home, user, true))
            .args(["trust", "verify", contact, "--fingerprint", fingerprint])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", show(&out));
    };
    let alice_fp = exported_fingerprint(home, &server, "alice");
    let mut bob = start_bob();
    // Keys are learned in a first attempt, and only verified keys
    // authenticate: Bob refuses Alice's unknown key...
    let mut alice = start_alice();
    alice.wait("refused the negotiation", 30);
    alice.quit();
    verify("bob", "alice@localhost", &alice_fp);
    // ...then Alice meets Bob's key, and says so.
    let mut alice = start_alice();
    alice.wait("shows a public key never seen before", 30);
    alice.quit();
    verify("alice", "bob@localhost", &old);
    let mut alice = start_alice();
    alice.wait("verified public key", 30);
    alice.wait("*** Now [encrypted][verified]", 30);
    alice.quit();

    // Bob's client starts over with a new key (or someone else answers as Bob).
    kill(&mut bob.child);
    std::fs::remove_file(home.join("bob.db")).unwrap();
    generate_key(home, &server, "bob");
    let new = exported_fingerprint(home, &server, "bob");
    assert_ne!(old, new);
    let mut bob = start_bob();
    // Bob's new store must learn and verify Alice's key again first.
    let mut alice = start_alice();
    alice.wait("refused the negotiation", 30);
    alice.quit();
    verify("bob", "alice@localhost", &alice_fp);
    let mut alice = start_alice();
    let banner = alice.wait(
        "!!! WARNING: THE PUBLIC KEY OF bob@localhost/cli HAS CHANGED",
        30,
    );
    assert!(
        banner
            .iter()
            .rev()
            .nth(1)
            .is_some_and(|l| l.starts_with("!!!!!!!!")),
        "{banner:#?}"
    );
    let shown = alice.wait("What to do", 30);
    let text = shown.join("\n");
    assert!(
        text.contains(&grouped(&new)),
        "new key {new} in full: {text}"
    );
    assert!(
        text.contains(&grouped(&old)),
        "old key {old} in full: {text}"
    );
    assert!(text.contains(&grouped(&old)), "old key in full: {text}");
    assert!(text.contains("someone is in the middle"), "{text}");
    let after = alice.wait("refused", 30);
    assert!(
        !alice
            .seen
            .iter()
            .any(|l| l.contains("[encrypted][verified]"))
            || !after.is_empty(),
        "never verified with the new key"
    );
    alice.quit();
    kill(&mut bob.child);
}
