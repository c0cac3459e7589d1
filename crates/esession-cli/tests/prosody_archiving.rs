//! Issue 14 through the `esession` binary and a real Prosody whose archive
//! (mod_mam plus a fixture archiving every chat message unless a XEP-0334
//! hint says otherwise) keeps whatever it may:
//!
//! - `listen --json` says what the server archives (`server_archive`) and
//!   every `established` event carries the agreed `logging`;
//! - `send --otr` agrees `logging=mustnot`, says so, and nothing of that
//!   session reaches either archive;
//! - `[account] archiving = "forbid"` in the config file agrees `may`;
//! - an unknown policy in the config file or on the command line is refused
//!   with the list of valid ones;
//! - the local history keeps the `may` session's message and not the
//!   off-the-record one (ENC-21), no text is in clear in the store's files, and
//!   `history --forget` deletes it from them.
//!
//! Without Prosody the test prints a loud SKIPPED banner and passes, unless
//! `ESESSION_REQUIRE_PROSODY=1`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use esession_testkit::peer::run_token;
use esession_testkit::{Archive, prosody_or_skip};

mod common;
use common::*;

#[test]
fn off_the_record_from_the_command_line() {
    let Some(prosody) = prosody_or_skip("off_the_record_from_the_command_line") else {
        return;
    };
    let server = prosody.server("localhost", Archive::MamEverything);
    server.register("alice", "alice-pw");
    server.register("bob", "bob-pw");
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    prepare_home(home, &["alice", "bob"]);
    let mut bob = listen(home, &server, "bob", &[]);
    bob.wait("\"event\":\"server_archive\"", 20);

    // Refused before anything is sent: an unknown policy, on the command line and in the file.
    let bad = esession(home)
        .args(account_args(&server, home, "alice", true))
        .args(["--archiving", "sometimes", "send", "bob@localhost/cli", "x"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        show(&bad).contains("require, prefer, approve, concede, oppose or forbid"),
        "{}",
        show(&bad)
    );
    let config = home.join("forbid.toml");
    std::fs::write(&config, "[account]\narchiving = \"never\"\n").unwrap();
    let bad = esession(home)
        .args(account_args(&server, home, "alice", true))
        .args([
            "--config",
            config.to_str().unwrap(),
            "send",
            "bob@localhost/cli",
            "x",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        show(&bad).contains("[account] archiving = \"never\" is not an archiving policy"),
        "{}",
        show(&bad)
    );

    // --otr: off the record, said so, and kept out of both archives.
    let secret = format!("otr-{}", run_token());
    let sent = esession(home)
        .args(account_args(&server, home, "alice", true))
        .args([
            "--otr",
            "send",
            "bob@localhost/cli",
            &secret,
            "--timeout",
            "20",
        ])
        .output()
        .unwrap();
    assert!(sent.status.success(), "{}", show(&sent));
    let said = show(&sent);
    assert!(
        said.contains("Server archive: the server's archive (XEP-0313)"),
        "{said}"
    );
    assert!(said.contains("Off the record (logging=mustnot)"), "{said}");

    // The config file's policy: forbid, so the next session may be logged.
    std::fs::write(&config, "[account]\narchiving = \"forbid\"\n").unwrap();
    let logged = format!("logged-{}", run_token());
    let sent = esession(home)
        .args(account_args(&server, home, "alice", true))
        .args([
            "--config",
            config.to_str().unwrap(),
            "send",
            "bob@localhost/cli",
            &logged,
        ])
        .output()
        .unwrap();
    assert!(sent.status.success(), "{}", show(&sent));
    assert!(
        show(&sent).contains("Logging allowed (logging=may)"),
        "{}",
        show(&sent)
    );

    bob.wait(&logged, 20);
    let events: Vec<serde_json::Value> = bob
        .drain(1)
        .iter()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    kill(&mut bob.child);
    let archive = events
        .iter()
        .find(|e| e["event"] == "server_archive")
        .unwrap();
    assert_eq!(archive["archive"], "mam", "{archive}");
    assert_eq!(archive["off_the_record_possible"], true, "{archive}");
    let established: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "established")
        .collect();
    let logging: Vec<&str> = established
        .iter()
        .map(|e| e["logging"].as_str().unwrap())
        .collect();
    assert_eq!(logging, ["mustnot", "may"], "{events:#?}");
    let otr_thread = established[0]["thread"].as_str().unwrap().to_owned();
    let may_thread = established[1]["thread"].as_str().unwrap().to_owned();

    // The local history (issue 14 part 3): the session that may be logged is
    // kept, the off-the-record one is not (ENC-21), and neither text is in
    // clear in any of the store's files.
    let history = esession(home)
        .args(account_args(&server, home, "alice", true))
        .args(["history", "bob@localhost", "--json"])
        .output()
        .unwrap();
    assert!(history.status.success(), "{}", show(&history));
    let kept: Vec<serde_json::Value> = String::from_utf8_lossy(&history.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:#?}");
    assert_eq!(kept[0]["body"], logged.as_str());
    assert_eq!(kept[0]["direction"], "sent");
    assert_eq!(kept[0]["thread"], may_thread.as_str());
    for user in ["alice", "bob"] {
        for suffix in ["", "-wal", "-shm"] {
            let file = home.join(format!("{user}.db{suffix}"));
            let bytes = std::fs::read(&file).unwrap_or_default();
            for text in [&secret, &logged] {
                assert!(
                    !esession_testkit::prosody::contains(&bytes, text.as_bytes()),
                    "{text} in clear in {}",
                    file.display()
                );
            }
            assert!(
                !esession_testkit::prosody::contains(&bytes, otr_thread.as_bytes()),
                "ENC-21: the off-the-record session's thread is in {}",
                file.display()
            );
        }
    }
    // `history --forget` really deletes.
    let forget = esession(home)
        .args(account_args(&server, home, "alice", true))
        .args(["history", "bob@localhost", "--forget"])
        .output()
        .unwrap();
    assert!(forget.status.success(), "{}", show(&forget));
    assert!(
        show(&forget).contains("Deleted 1 message(s) with bob@localhost"),
        "{}",
        show(&forget)
    );
    for suffix in ["", "-wal", "-shm"] {
        let bytes = std::fs::read(home.join(format!("alice.db{suffix}"))).unwrap_or_default();
        assert!(!esession_testkit::prosody::contains(
            &bytes,
            may_thread.as_bytes()
        ));
    }

    let mut server = server;
    server.stop();
    let archives = [server.archive_of("alice"), server.archive_of("bob")];
    for archive in &archives {
        assert!(
            !esession_testkit::prosody::contains(archive, otr_thread.as_bytes()),
            "a stanza of the off-the-record session was archived"
        );
        assert!(!esession_testkit::prosody::contains(
            archive,
            secret.as_bytes()
        ));
        assert!(!esession_testkit::prosody::contains(
            archive,
            logged.as_bytes()
        ));
    }
    // Control: the session that may be logged is archived (as ciphertext).
    assert!(
        archives
            .iter()
            .any(|a| esession_testkit::prosody::contains(a, may_thread.as_bytes())),
        "control: the logging=may session is in an archive"
    );
}
