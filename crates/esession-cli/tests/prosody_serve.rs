//! Issue 15: `esession serve` driven by a program in both roles, through a
//! real Prosody, with no pty and no sleeps: each side waits for the events
//! it needs. Alice starts a session and both talk, verify and she ends it;
//! then Bob starts one, and Alice's standard input closes (she terminates
//! and exits 0); Bob leaves on SIGTERM (exit 0). Every event either prints
//! is checked against the schema of docs/JSON.md.
//!
//! Without Prosody the test prints a loud SKIPPED banner and passes, unless
//! `ESESSION_REQUIRE_PROSODY=1`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::io::Write as _;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use esession_testkit::peer::run_token;
use esession_testkit::prosody_or_skip;
use serde_json::{Value, json};

mod common;
use common::*;

#[path = "../src/json_schema.rs"]
#[allow(dead_code, reason = "shared with the binary")]
mod json_schema;

/// A running `esession serve`, its events read as they come.
struct Served {
    name: &'static str,
    child: Child,
    output: std::sync::mpsc::Receiver<String>,
    events: Vec<Value>,
}

impl Served {
    fn start(
        home: &std::path::Path,
        server: &esession_testkit::Prosody,
        user: &'static str,
    ) -> Self {
        let mut child = esession(home)
            .args(account_args(server, home, user, true))
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let output = lines(child.stdout.take().unwrap());
        let mut served = Self {
            name: user,
            child,
            output,
            events: Vec::new(),
        };
        let ready = served.expect(|e| e["event"] == "ready", "ready");
        assert_eq!(ready["schema"], json_schema::SCHEMA_VERSION);
        served
    }

    fn command(&mut self, command: Value) {
        let stdin = self.child.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{command}").unwrap();
    }

    /// The next event matching `wanted` (others are kept), within 30 s.
    fn expect(&mut self, wanted: impl Fn(&Value) -> bool, what: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.output.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    kill(&mut self.child);
                    panic!(
                        "{}: no {what} within 30 s; events: {:#?}",
                        self.name, self.events
                    );
                }
            };
            let event: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {line}", self.name));
            if let Err(e) = json_schema::check(&event) {
                kill(&mut self.child);
                panic!("{}: {e}", self.name);
            }
            self.events.push(event.clone());
            if wanted(&event) {
                return event;
            }
        }
    }

    /// The answer to the command with `id`: `ok` (returned) or a failure.
    fn ok(&mut self, id: u64) -> Value {
        let answer = self.expect(
            |e| (e["event"] == "ok" || e["event"] == "error") && e["id"] == id,
            &format!("the answer to command {id}"),
        );
        assert_eq!(answer["event"], "ok", "{}: {answer}", self.name);
        answer
    }

    /// Waits for the process to exit by itself; it must succeed.
    fn exits_cleanly(mut self) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{} exited with {status}", self.name);
                break;
            }
            if Instant::now() > deadline {
                kill(&mut self.child);
                panic!("{} did not exit", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for line in self.output.try_iter() {
            let event: Value = serde_json::from_str(&line).unwrap();
            json_schema::check(&event).unwrap();
            self.events.push(event);
        }
        self.events
    }
}

/// One side starts, both talk both ways, both verify, the starter ends it.
fn conversation(starter: &mut Served, other: &mut Served, other_jid: &str, run: &str) {
    starter.command(json!({"command": "start", "peer": other_jid, "id": 1}));
    let thread = starter.ok(1)["thread"].as_str().unwrap().to_owned();
    let mine = starter.expect(|e| e["event"] == "established", "established");
    let theirs = other.expect(|e| e["event"] == "established", "established");
    assert_eq!(mine["thread"], thread.as_str());
    assert_eq!(mine["sas"], theirs["sas"], "the same SAS on both sides");
    let starter_jid = theirs["peer"].as_str().unwrap().to_owned();

    let there = format!("there {run}");
    starter.command(json!({"command": "send", "thread": thread, "body": there, "id": 2}));
    let receipt = starter.ok(2)["receipt"].clone();
    let got = other.expect(|e| e["event"] == "message", "a message");
    assert_eq!(
        (got["body"].as_str(), got["encrypted"].as_bool()),
        (Some(there.as_str()), Some(true))
    );
    starter.expect(
        |e| e["event"] == "delivered" && e["id"] == receipt,
        "the receipt",
    );

    let back = format!("back {run}");
    other.command(json!({"command": "send", "peer": starter_jid, "body": back, "id": 3}));
    other.ok(3);
    let got = starter.expect(|e| e["event"] == "message", "a message");
    assert_eq!(got["body"], back.as_str());

    for side in [&mut *starter, &mut *other] {
        side.command(json!({"command": "verify", "thread": thread, "id": 4}));
        side.ok(4);
        side.command(json!({"command": "status", "id": 5}));
        let status = side.ok(5);
        assert_eq!(status["sessions"][0]["verified"], true, "{status}");
    }
    starter.command(json!({"command": "terminate", "thread": thread, "id": 6}));
    starter.ok(6);
    let ended = starter.expect(|e| e["event"] == "terminated", "terminated");
    assert_eq!(ended["reason"], "local_request");
    let ended = other.expect(|e| e["event"] == "terminated", "terminated");
    assert_eq!(ended["reason"], "peer_request");
}

#[test]
fn two_programs_talk_through_serve_in_both_roles() {
    let Some(prosody) = prosody_or_skip("two_programs_talk_through_serve_in_both_roles") else {
        return;
    };
    let server = localhost_with_alice_and_bob(&prosody);
    server.befriend("alice", "bob");
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    prepare_home(home, &["alice", "bob"]);
    let mut alice = Served::start(home, &server, "alice");
    let mut bob = Served::start(home, &server, "bob");
    let run = run_token();

    // A command that cannot work gets an error, and nothing happens.
    alice.command(json!({"command": "send", "peer": "nobody@localhost", "body": "x", "id": 9}));
    let error = alice.expect(|e| e["id"] == 9, "the answer to command 9");
    assert_eq!(error["event"], "error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("no established session"),
        "{error}"
    );
    alice.command(json!({"command": "fly"}));
    let error = alice.expect(|e| e["event"] == "error", "an error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("unknown command \"fly\""),
        "{error}"
    );
    // A peer that is not a string changes nothing; a line that is not UTF-8
    // is an error, not the end of input.
    alice.command(json!({"command": "archiving", "policy": "forbid", "peer": 5, "id": 10}));
    let error = alice.expect(|e| e["id"] == 10, "the answer to command 10");
    assert_eq!(error["event"], "error", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("must be a string"),
        "{error}"
    );
    alice
        .child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"\xff\xfe\n")
        .unwrap();
    let error = alice.expect(|e| e["event"] == "error", "an error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("not a JSON object"),
        "{error}"
    );

    // Alice as initiator, then Bob.
    conversation(&mut alice, &mut bob, "bob@localhost/cli", &run);
    conversation(&mut bob, &mut alice, "alice@localhost/cli", &run);

    // A session open when Alice's input ends: she terminates it and exits 0.
    bob.command(json!({"command": "start", "peer": "alice@localhost/cli", "id": 7}));
    bob.ok(7);
    bob.expect(|e| e["event"] == "established", "established");
    alice.expect(|e| e["event"] == "established", "established");
    drop(alice.child.stdin.take());
    let alice_events = alice.exits_cleanly();
    let ended = bob.expect(|e| e["event"] == "terminated", "terminated");
    assert_eq!(ended["reason"], "peer_request");
    assert!(alice_events.iter().any(|e| e["event"] == "server_archive"));

    // SIGTERM: Bob leaves cleanly.
    let pid = bob.child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let bob_events = bob.exits_cleanly();
    let kinds: std::collections::BTreeSet<&str> = bob_events
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    for kind in [
        "ready",
        "server_archive",
        "ok",
        "established",
        "message",
        "delivered",
        "terminated",
    ] {
        assert!(kinds.contains(kind), "bob saw no {kind}: {kinds:?}");
    }
}

#[test]
fn send_json_reports_each_step_in_the_schema() {
    let Some(prosody) = prosody_or_skip("send_json_reports_each_step_in_the_schema") else {
        return;
    };
    let server = localhost_with_alice_and_bob(&prosody);
    server.befriend("alice", "bob");
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    prepare_home(home, &["alice", "bob"]);
    let mut bob = Served::start(home, &server, "bob");
    let out = esession(home)
        .args(account_args(&server, home, "alice", true))
        .args(["-vv", "send", "--json", "bob@localhost/cli", "one line"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    // -vv: diagnostics on stderr (tracing), never the message text.
    let diagnostics = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(diagnostics.contains("stream online"), "{diagnostics}");
    assert!(
        diagnostics.contains("server archive checked"),
        "{diagnostics}"
    );
    assert!(diagnostics.contains("core output"), "{diagnostics}");
    assert!(!diagnostics.contains("one line"), "{diagnostics}");
    let events: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for event in &events {
        json_schema::check(event).unwrap();
    }
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(
        kinds,
        ["server_archive", "established", "sent", "delivered"],
        "{events:#?}"
    );
    assert_eq!(events[2]["receipt"], events[3]["id"]);
    let got = bob.expect(|e| e["event"] == "message", "the message");
    assert_eq!(got["body"], "one line");
    kill(&mut bob.child);

    // A failure is an `error` event too (and a failed exit).
    let out = esession(home)
        .args(account_args(&server, home, "alice", true))
        .args([
            "send",
            "--json",
            "--timeout",
            "2",
            "nobody@localhost/x",
            "lost",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let last: Value = serde_json::from_str(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    json_schema::check(&last).unwrap();
    assert_eq!(
        (last["event"].as_str(), last["command"].as_str()),
        (Some("error"), Some("send"))
    );
}
