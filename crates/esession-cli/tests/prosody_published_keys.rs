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

use common::{localhost_with_alice_and_bob, prepare_home, run_as as run};
use esession_testkit::prosody_or_skip;

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

/// PKP-05/06: Bob vouches for Alice's key he verified (`keys attest`); Alice publishes the
/// attestation (`keys add-attestation`, checked first); Carol's `trust fetch` of Alice shows
/// it checked against Bob's published key, and says it adds nothing until she verifies Bob's
/// key, then that Bob vouches for it. A forged attestation is refused.
#[test]
fn an_attestation_is_made_published_and_judged_by_what_the_reader_verified() {
    let Some(prosody) =
        prosody_or_skip("an_attestation_is_made_published_and_judged_by_what_the_reader_verified")
    else {
        return;
    };
    let server = localhost_with_alice_and_bob(&prosody);
    server.register("carol", "carol-pw");
    server.befriend("alice", "bob");
    server.befriend("alice", "carol");
    server.befriend("bob", "carol");
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    prepare_home(home, &["alice", "bob", "carol"]);
    let key_of = |user: &str| {
        run(
            home,
            &server,
            user,
            &["keys", "generate", "--bits", "2048"],
            true,
        );
        run(home, &server, user, &["keys", "publish"], true);
        let out = run(home, &server, user, &["keys", "export", "1"], true);
        out.lines()
            .find_map(|l| l.strip_prefix("SHA-256 fingerprint: ").map(str::to_owned))
            .unwrap()
    };
    let (alice_print, bob_print) = (key_of("alice"), key_of("bob"));
    let verify = |user: &str, contact: &str, print: &str| {
        let jid = format!("{contact}@localhost");
        run(home, &server, user, &["trust", "fetch", &jid], true);
        run(
            home,
            &server,
            user,
            &["trust", "verify", &jid, "--fingerprint", print],
            true,
        );
    };

    // Bob cannot vouch for a key he has not verified.
    let out = run(
        home,
        &server,
        "bob",
        &["keys", "attest", "alice@localhost"],
        false,
    );
    assert!(out.contains("published no key you verified"), "{out}");
    verify("bob", "alice", &alice_print);
    let out = run(
        home,
        &server,
        "bob",
        &["keys", "attest", "alice@localhost"],
        true,
    );
    let xml = out
        .lines()
        .find(|l| l.starts_with("<attest"))
        .unwrap()
        .to_owned();
    let file = home.join("attestation.xml");
    std::fs::write(&file, &xml).unwrap();

    // A forged one (another time under the same signature) is not published.
    let forged = home.join("forged.xml");
    let stamp = xml
        .split("<signtime>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    std::fs::write(&forged, xml.replace(stamp, "2020-01-01T00:00:00Z")).unwrap();
    let out = run(
        home,
        &server,
        "alice",
        &["keys", "add-attestation", forged.to_str().unwrap()],
        false,
    );
    assert!(out.contains("it does not verify"), "{out}");
    let out = run(
        home,
        &server,
        "alice",
        &["keys", "add-attestation", file.to_str().unwrap()],
        true,
    );
    assert!(
        out.contains("Published the attestation by bob@localhost"),
        "{out}"
    );

    // Carol: Bob's word means nothing until she verified Bob's key.
    let out = run(
        home,
        &server,
        "carol",
        &["trust", "fetch", "alice@localhost"],
        true,
    );
    assert!(
        out.contains("attested by bob@localhost")
            && out.contains("whom you have not verified: this adds nothing"),
        "{out}"
    );
    verify("carol", "bob", &bob_print);
    let out = run(
        home,
        &server,
        "carol",
        &["trust", "fetch", "alice@localhost"],
        true,
    );
    assert!(
        out.contains(&format!(
            "attested by bob@localhost, whose key {bob_print} you verified"
        )),
        "{out}"
    );
    // Still only seen: an attestation verifies nothing by itself.
    assert!(out.contains("seen, NOT VERIFIED"), "{out}");
}
