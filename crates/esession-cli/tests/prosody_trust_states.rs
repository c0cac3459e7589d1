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

use std::io::Write as _;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use esession_testkit::{Archive, prosody_or_skip};

mod common;
use common::*;

/// Alice's chat process, its input, and every line it printed so far.
struct AliceChat {
    child: Child,
    input: ChildStdin,
    output: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl AliceChat {
    fn start(home: &std::path::Path, server: &esession_testkit::Prosody) -> Self {
        let mut child = esession(home)
            .args(account_args(server, home, "alice", true))
            .args(["chat", "bob@localhost/cli"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let input = child.stdin.take().unwrap();
        let output = lines(child.stdout.take().unwrap());
        Self {
            child,
            input,
            output,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `what`; returns the lines up to it.
    fn wait(&mut self, what: &str) -> Vec<String> {
        match wait_line(&self.output, what, Duration::from_secs(30)) {
            Ok(lines) => {
                self.seen.extend(lines.iter().cloned());
                lines
            }
            Err(e) => {
                kill(&mut self.child);
                panic!("alice: {e}\nbefore: {:#?}", self.seen);
            }
        }
    }

    fn type_line(&mut self, line: &str) {
        writeln!(self.input, "{line}").unwrap();
    }

    /// `/quit`, and the process exits with success within 5 s.
    fn quit(mut self) {
        self.type_line("/quit");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "chat exited with {status}");
                return;
            }
            if Instant::now() > deadline {
                kill(&mut self.child);
                panic!("chat did not exit within 5 s of /quit");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn start_listen(
    home: &std::path::Path,
    server: &esession_testkit::Prosody,
) -> (Child, mpsc::Receiver<String>) {
    let mut bob = esession(home)
        .args(account_args(server, home, "bob", true))
        .args(["listen", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(bob.stdout.take().unwrap());
    let err = lines(bob.stderr.take().unwrap());
    if let Err(e) = wait_line(
        &err,
        "Logged in as bob@localhost/cli",
        Duration::from_secs(30),
    ) {
        kill(&mut bob);
        panic!("bob's listen: {e}");
    }
    (bob, out)
}

#[test]
fn verify_distrust_and_a_broken_chain_show_the_true_state() {
    let Some(prosody) = prosody_or_skip("verify_distrust_and_a_broken_chain_show_the_true_state")
    else {
        return;
    };
    let server = prosody.server("localhost", Archive::Off);
    server.register("alice", "alice-pw");
    server.register("bob", "bob-pw");
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    for user in ["alice", "bob"] {
        std::fs::write(home.join(format!("{user}.pw")), format!("{user}-pw\n")).unwrap();
        let made = esession(home)
            .arg("key-file")
            .arg(home.join(format!("{user}.key")))
            .output()
            .unwrap();
        assert!(made.status.success(), "key-file: {}", show(&made));
    }
    let (mut bob, bob_out) = start_listen(home, &server);

    // Session 1: first contact. UNVERIFIED until /verify, then verified at once.
    let mut alice = AliceChat::start(home, &server);
    let banner = alice.wait("SHORT AUTHENTICATION STRING");
    assert!(
        banner
            .iter()
            .any(|l| l.contains("Encrypted session established with bob@localhost/cli"))
    );
    alice.wait("*** Now [encrypted][UNVERIFIED]");
    // Bob's first `established`: no retained secret yet.
    wait_line(&bob_out, "\"established\"", Duration::from_secs(10)).unwrap();
    alice.type_line("/status");
    let before = alice.wait("Until then this session is encrypted but NOT authenticated");
    assert!(
        before
            .iter()
            .any(|l| l == "*** Status: [encrypted][UNVERIFIED]"),
        "{before:#?}"
    );
    alice.type_line("/verify");
    alice.wait("*** Verified: bob@localhost/cli is who the SAS says");
    alice.wait("*** Now [encrypted][verified]");
    alice.type_line("/status");
    let after = alice.wait("compared and confirmed by you: VERIFIED");
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
    let mut alice = AliceChat::start(home, &server);
    let banner = alice.wait("Authenticated by the secret retained");
    assert!(
        banner
            .last()
            .unwrap()
            .contains("(that chain was SAS-verified)"),
        "{banner:#?}"
    );
    alice.wait("*** Now [encrypted][verified]");
    // Bob's listen learned the answer with `established` itself.
    let established = wait_line(&bob_out, "\"established\"", Duration::from_secs(10)).unwrap();
    let last: Vec<serde_json::Value> = established
        .iter()
        .filter(|l| l.contains("\"established\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let json = last.last().unwrap();
    assert_eq!(json["authenticated_by_retained_secret"], true, "{json}");
    alice.type_line("/distrust");
    alice.wait("!!! SAS mismatch recorded: bob@localhost/cli is NOT verified any more");
    alice.quit();
    let listed = esession(home)
        .args(account_args(&server, home, "alice", true))
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
    let mut alice = AliceChat::start(home, &server);
    let banner = alice.wait("SHORT AUTHENTICATION STRING");
    assert!(
        banner.iter().any(|l| l.contains(
            "Authenticated by the secret retained from your last session with this client."
        )),
        "{banner:#?}"
    );
    alice.wait("*** Now [encrypted][UNVERIFIED]");
    alice.type_line("/verify");
    alice.wait("*** Now [encrypted][verified]");
    alice.quit();

    // Session 4: Bob lost his store. Alice's verified chain is broken: loud.
    kill(&mut bob);
    std::fs::remove_file(home.join("bob.db")).unwrap();
    let (mut bob, bob_out) = start_listen(home, &server);
    let mut alice = AliceChat::start(home, &server);
    let warning = alice.wait("CONTINUITY WITH bob@localhost/cli IS BROKEN");
    assert!(
        warning
            .last()
            .unwrap()
            .contains("WARNING: VERIFIED CONTINUITY"),
        "{warning:#?}"
    );
    let why = alice.wait("SOMEONE IS IN THE MIDDLE");
    assert!(why.last().unwrap().contains("lost their data"), "{why:#?}");
    alice.wait("compare the short authentication string (SAS) shown below");
    alice.wait("SHORT AUTHENTICATION STRING");
    alice.wait("*** Now [encrypted][UNVERIFIED]");
    alice.type_line("hello after the warning");
    alice.wait("!!! Held back: acknowledge the warning above first");
    assert!(
        wait_line(&bob_out, "hello after the warning", Duration::from_secs(2)).is_err(),
        "nothing is sent before the user acknowledges"
    );
    alice.type_line("/ack");
    alice.wait("*** Sent: \"hello after the warning\"");
    wait_line(&bob_out, "hello after the warning", Duration::from_secs(10)).unwrap();
    alice.quit();
    kill(&mut bob);
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
    let server = prosody.server("localhost", Archive::Off);
    server.register("alice", "alice-pw");
    server.register("bob", "bob-pw");
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    for user in ["alice", "bob"] {
        std::fs::write(home.join(format!("{user}.pw")), format!("{user}-pw\n")).unwrap();
        let made = esession(home)
            .arg("key-file")
            .arg(home.join(format!("{user}.key")))
            .output()
            .unwrap();
        assert!(made.status.success(), "key-file: {}", show(&made));
        generate_key(home, &server, user);
    }
    let old = exported_fingerprint(home, &server, "bob");
    // Alice verified Bob's key out of band.
    let keyed = |user: &str| {
        let mut args = account_args(&server, home, user, true);
        args.push("--public-keys".to_owned());
        args
    };
    let start_bob = || {
        let mut bob = esession(home)
            .args(keyed("bob"))
            .args(["listen", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = lines(bob.stderr.take().unwrap());
        wait_line(
            &err,
            "Logged in as bob@localhost/cli",
            Duration::from_secs(30),
        )
        .unwrap();
        bob
    };
    let start_alice = || {
        let mut child = esession(home)
            .args(keyed("alice"))
            .args(["chat", "bob@localhost/cli"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let input = child.stdin.take().unwrap();
        let output = lines(child.stdout.take().unwrap());
        AliceChat {
            child,
            input,
            output,
            seen: Vec::new(),
        }
    };
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
    alice.wait("refused the negotiation");
    alice.quit();
    verify("bob", "alice@localhost", &alice_fp);
    // ...then Alice meets Bob's key, and says so.
    let mut alice = start_alice();
    alice.wait("shows a public key never seen before");
    alice.quit();
    verify("alice", "bob@localhost", &old);
    let mut alice = start_alice();
    alice.wait("verified public key");
    alice.wait("*** Now [encrypted][verified]");
    alice.quit();

    // Bob's client starts over with a new key (or someone else answers as Bob).
    kill(&mut bob);
    std::fs::remove_file(home.join("bob.db")).unwrap();
    generate_key(home, &server, "bob");
    let new = exported_fingerprint(home, &server, "bob");
    assert_ne!(old, new);
    let mut bob = start_bob();
    // Bob's new store must learn and verify Alice's key again first.
    let mut alice = start_alice();
    alice.wait("refused the negotiation");
    alice.quit();
    verify("bob", "alice@localhost", &alice_fp);
    let mut alice = start_alice();
    let banner = alice.wait("!!! WARNING: THE PUBLIC KEY OF bob@localhost/cli HAS CHANGED");
    assert!(
        banner
            .iter()
            .rev()
            .nth(1)
            .is_some_and(|l| l.starts_with("!!!!!!!!")),
        "{banner:#?}"
    );
    let shown = alice.wait("What to do");
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
    let after = alice.wait("refused");
    assert!(
        !alice
            .seen
            .iter()
            .any(|l| l.contains("[encrypted][verified]"))
            || !after.is_empty(),
        "never verified with the new key"
    );
    alice.quit();
    kill(&mut bob);
}
