#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
//! Issue 11 through a real Prosody: what any XMPP user can send us through
//! the server. One stanza nested 36,000 deep (what fits in Prosody's
//! 256 KiB stanza limit) used to abort `esession` with a stack overflow, and
//! with more stack kept it busy for minutes (tokio-xmpp's xso built it in
//! O(depth^2)); now it is built in linear time, dropped without recursion
//! (no real payload nests beyond 128 levels), and the next one arrives.

use std::time::Instant;

use esession_testkit::plain::send_raw_stanzas;
use esession_testkit::prosody_or_skip;

mod common;
use common::*;

#[test]
fn a_stanza_nested_36000_deep_neither_crashes_nor_stalls_the_client() {
    let Some(prosody) =
        prosody_or_skip("a_stanza_nested_36000_deep_neither_crashes_nor_stalls_the_client")
    else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    prepare_home(home.path(), &["alice", "bob"]);
    let server = localhost_with_alice_and_bob(&prosody);
    let mut bob = listen(home.path(), &server, "bob", &[]);
    let depth = 36_000;
    let mut bomb = b"<message to='bob@localhost/cli' type='chat'><body>the bomb</body>".to_vec();
    bomb.extend(b"<a>".repeat(depth));
    bomb.extend(b"</a>".repeat(depth));
    bomb.extend(b"</message>");
    let after =
        b"<message to='bob@localhost/cli' type='chat'><body>after the bomb</body></message>"
            .to_vec();
    let started = Instant::now();
    let _alice = send_raw_stanzas(
        server.c2s_port(),
        "localhost",
        "alice",
        "alice-pw",
        "raw",
        &[bomb, after],
    );
    bob.wait("after the bomb", 20);
    eprintln!(
        "a {depth}-deep stanza and the next one handled in {:?}",
        started.elapsed()
    );
    assert!(
        !bob.seen.iter().any(|l| l.contains("\"the bomb\"")),
        "the over-deep stanza is not passed on: {:#?}",
        bob.seen
    );
    assert!(
        bob.child.try_wait().unwrap().is_none(),
        "listen is still running"
    );
    kill(&mut bob.child);
}
