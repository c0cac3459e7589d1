//! Issue 13: `esession keys publish`, `trust fetch` and `keys revoke` through a real Prosody
//! (XEP-0189 over PEP), as a user runs them.
//!
//! - `a_published_key_is_fetched_as_seen_and_its_revocation_removes_it`: Alice publishes her
//!   key; Bob fetches it and sees its fingerprint (the one `keys export` shows), its validity
//!   and "NOT VERIFIED (new)", and `trust list` then holds it unverified; Alice publishes a
//!   second key and Bob's fetch says KEY CHANGE; Alice revokes it (it leaves her store), and
//!   Bob's next fetch says REVOKED and removes it from his; a DSA key cannot be published,
//!   with a reason.
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

use common::{account_args, esession, localhost_with_alice_and_bob, prepare_home, show};
use esession_testkit::prosody_or_skip;

/// Runs `esession ARGS` as `user`; stdout, after checking the exit status is `success`.
fn run(
    home: &std::path::Path,
    server: &esession_testkit::Prosody,
    user: &str,
    args: &[&str],
    success: bool,
) -> String {
    let out = esession(home)
        .args(account_args(server, home, user, true))
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.success(), success, "{args:?}: {}", show(&out));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The full fingerprint `keys export N` prints.
fn exported(home: &std::path::Path, server: &esession_testkit::Prosody, id: &str) -> String {
    let out = run(home, server, "alice", &["keys", "export", id], true);
    out.lines()
        .find_map(|l| l.strip_prefix("SHA-256 fingerprint: ").map(str::to_owned))
        .unwrap_or_else(|| panic!("{out}"))
}

#[test]
fn a_published_key_is_fetched_as_seen_and_its_revocation_removes_it() {
    let Some(prosody) =
        prosody_or_skip("a_published_key_is_fetched_as_seen_and_its_revocation_removes_it")
    else {
        return;
    };
    let server = localhost_with_alice_and_bob(&prosody);
    server.befriend("alice", "bob");
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    prepare_home(home, &["alice", "bob"]);

    // Nothing to publish yet.
    let out = run(home, &server, "alice", &["keys", "publish"], false);
    assert!(out.contains("has no signing key"), "{out}");

    run(
        home,
        &server,
        "alice",
        &["keys", "generate", "--bits", "2048"],
        true,
    );
    let first = exported(home, &server, "1");
    let out = run(home, &server, "alice", &["keys", "publish"], true);
    assert!(
        out.contains(&format!("Published key 1 of alice@localhost ({first})")),
        "{out}"
    );

    let out = run(
        home,
        &server,
        "bob",
        &["trust", "fetch", "alice@localhost"],
        true,
    );
    assert!(
        out.contains("Publication is no proof of who holds a key"),
        "{out}"
    );
    assert!(
        out.contains(&format!("{first} (RSA-2048), valid ")),
        "{out}"
    );
    assert!(out.contains("seen, NOT VERIFIED (new)"), "{out}");
    let list = run(home, &server, "bob", &["trust", "list"], true);
    assert!(
        list.contains(&format!("key {first}, RSA-2048, NOT verified")),
        "{list}"
    );

    // A new key replaces the published one: a key change, said loudly.
    run(
        home,
        &server,
        "alice",
        &["keys", "generate", "--bits", "2048"],
        true,
    );
    let second = exported(home, &server, "2");
    run(home, &server, "alice", &["keys", "publish", "2"], true);
    let out = run(
        home,
        &server,
        "bob",
        &["trust", "fetch", "alice@localhost"],
        true,
    );
    assert!(out.contains(&second) && out.contains("KEY CHANGE"), "{out}");

    // The replaced key is no longer published: nothing to revoke for it.
    let out = run(home, &server, "alice", &["keys", "revoke", "1"], false);
    assert!(out.contains("is not published"), "{out}");
    let out = run(home, &server, "alice", &["keys", "revoke", "2"], true);
    assert!(out.contains("Revoked key 2 of alice@localhost"), "{out}");
    // A revoked key never identifies us again: it leaves our store.
    let ours = run(home, &server, "alice", &["keys", "list"], true);
    assert!(
        ours.contains("key 1 (ours") && !ours.contains("key 2 (ours"),
        "{ours}"
    );
    let out = run(
        home,
        &server,
        "bob",
        &["trust", "fetch", "alice@localhost"],
        true,
    );
    assert!(out.contains(&format!("{second} (RSA-2048)")), "{out}");
    assert!(
        out.contains("REVOKED by its owner; removed from your trust store"),
        "{out}"
    );
    let list = run(home, &server, "bob", &["trust", "list"], true);
    assert!(
        !list.contains(&second),
        "a revoked key is forgotten at once: {list}"
    );
    assert!(list.contains(&first), "{list}");

    // XEP-0189 carries RSA keys only.
    run(
        home,
        &server,
        "alice",
        &["keys", "generate", "--algorithm", "dsa"],
        true,
    );
    let out = run(home, &server, "alice", &["keys", "publish", "3"], false);
    assert!(
        out.contains("key 3 is a DSA key, and XEP-0189 publishes RSA keys only"),
        "{out}"
    );
}
