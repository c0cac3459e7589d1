#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
//! The `esession` commands that need no server: key file, keys, trust, demo,
//! selftest, and the refusal of plaintext to a non-loopback host.

use std::process::{Command, Output};

fn esession(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_esession"))
        .args(["--jid", "alice@example.org", "--store"])
        .arg(dir.join("store.db"))
        .arg("--store-key-file")
        .arg(dir.join("key"))
        .args(args)
        .env_remove("ESESSION_PASSWORD")
        .env_remove("ESESSION_STORE_PASSPHRASE")
        .env("XDG_CONFIG_HOME", dir)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn key_file_then_keys_generate_list_export_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let out = esession(
        dir.path(),
        &["key-file", dir.path().join("key").to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    let out = esession(dir.path(), &["keys", "generate", "--bits", "2048"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("http://www.w3.org/2000/09/xmldsig#rsa-sha256"));

    let out = esession(dir.path(), &["keys", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    let id = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();

    let out = esession(dir.path(), &["keys", "export", &id]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains(
            "<KeyValue xmlns=\"http://www.w3.org/2000/09/xmldsig#\"><RSAKeyValue><Modulus>"
        ),
        "{shown}"
    );
    assert!(shown.contains("SHA-256 fingerprint: "), "{shown}");
    // The store never holds the private key in clear.
    let raw = std::fs::read(dir.path().join("store.db")).unwrap();
    assert!(!raw.windows(11).any(|w| w == b"PRIVATE KEY"));
}

#[test]
fn trust_list_and_forget_work_on_an_empty_store() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        esession(
            dir.path(),
            &["key-file", dir.path().join("key").to_str().unwrap()]
        )
        .status
        .success()
    );
    let out = esession(dir.path(), &["trust", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = esession(dir.path(), &["trust", "forget", "bob@example.com"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Forgot bob@example.com"));
}

#[test]
fn a_wrong_key_file_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        esession(
            dir.path(),
            &["key-file", dir.path().join("key").to_str().unwrap()]
        )
        .status
        .success()
    );
    assert!(esession(dir.path(), &["trust", "list"]).status.success());
    std::fs::remove_file(dir.path().join("key")).unwrap();
    assert!(
        esession(
            dir.path(),
            &["key-file", dir.path().join("key").to_str().unwrap()]
        )
        .status
        .success()
    );
    let out = esession(dir.path(), &["trust", "list"]);
    assert!(!out.status.success());
    assert!(text(&out).to_lowercase().contains("key"), "{}", text(&out));
}

#[test]
fn plaintext_to_a_non_loopback_host_is_refused_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        esession(
            dir.path(),
            &["key-file", dir.path().join("key").to_str().unwrap()]
        )
        .status
        .success()
    );
    std::fs::write(dir.path().join("pw"), "x").unwrap();
    let out = esession(
        dir.path(),
        &[
            "--host",
            "192.0.2.1",
            "--insecure-plaintext-loopback",
            "--password-file",
            dir.path().join("pw").to_str().unwrap(),
            "send",
            "bob@example.com",
            "hi",
        ],
    );
    assert!(!out.status.success());
    let shown = text(&out);
    assert!(
        shown.contains("plaintext") || shown.contains("Cannot connect"),
        "{shown}"
    );
}

#[test]
fn an_unreachable_server_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        esession(
            dir.path(),
            &["key-file", dir.path().join("key").to_str().unwrap()]
        )
        .status
        .success()
    );
    std::fs::write(dir.path().join("pw"), "x").unwrap();
    // Port 1 on loopback: nothing listens there.
    let out = esession(
        dir.path(),
        &[
            "--host",
            "127.0.0.1",
            "--port",
            "1",
            "--password-file",
            dir.path().join("pw").to_str().unwrap(),
            "send",
            "bob@example.com",
            "hi",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains(
            "Cannot connect to the XMPP server at 127.0.0.1:1: the connection was refused, so \
             nothing listens on that port."
        ),
        "{}",
        text(&out)
    );
}

/// A JID whose domain does not exist is reported within 5 s (it used to
/// wait 20 s, then guess "no XMPP service there"): by DNS itself (`.invalid`
/// never exists, RFC 6761), or, without a network, by the DNS timeout.
#[test]
fn a_wrong_domain_is_reported_within_5_s() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        esession(
            dir.path(),
            &["key-file", dir.path().join("key").to_str().unwrap()]
        )
        .status
        .success()
    );
    std::fs::write(dir.path().join("pw"), "x").unwrap();
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_esession"))
        .args(["--jid", "alice@no-such-domain.invalid", "--store"])
        .arg(dir.path().join("store.db"))
        .arg("--store-key-file")
        .arg(dir.path().join("key"))
        .arg("--password-file")
        .arg(dir.path().join("pw"))
        .args(["send", "bob@example.com", "hi"])
        .env_remove("ESESSION_PASSWORD")
        .env_remove("ESESSION_STORE_PASSPHRASE")
        .env("XDG_CONFIG_HOME", dir.path())
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(!out.status.success());
    let shown = text(&out);
    assert!(
        shown.contains(
            "There is no server for no-such-domain.invalid: that domain does not exist in DNS."
        ) || shown.contains("Cannot look up _xmpp-client._tcp.no-such-domain.invalid in DNS"),
        "{shown}"
    );
    assert!(
        took < std::time::Duration::from_secs(5),
        "took {took:?}: {shown}"
    );
}

#[test]
fn the_demo_and_the_selftest_pass() {
    let demo = Command::new(env!("CARGO_BIN_EXE_esession"))
        .arg("demo")
        .output()
        .unwrap();
    let shown = text(&demo);
    assert!(demo.status.success(), "{shown}");
    assert!(shown.contains("All demo steps verified."));
    assert!(!shown.contains("FAIL"));
    let selftest = Command::new(env!("CARGO_BIN_EXE_esession"))
        .arg("selftest")
        .output()
        .unwrap();
    assert!(selftest.status.success(), "{}", text(&selftest));
}

/// Issue 6: `trust profile` shows, sets and clears a contact's wire profile,
/// persisted in the store and shown by `trust list`.
#[test]
fn trust_profile_sets_shows_and_clears() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    assert!(
        esession(dir.path(), &["key-file", key.to_str().unwrap()])
            .status
            .success()
    );
    let run = |args: &[&str]| {
        let out = esession(dir.path(), args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Nothing saved: the default.
    let shown = run(&["trust", "profile", "bob@example.net"]);
    assert!(
        shown.contains("bob@example.net: profile standard (the default)"),
        "{shown}"
    );
    // Saved, in a new process each time (the store is reopened).
    let set = run(&["trust", "profile", "bob@example.net", "gajim"]);
    assert!(
        set.contains("bob@example.net: profile gajim saved"),
        "{set}"
    );
    assert!(set.contains("less standard"), "{set}");
    let shown = run(&["trust", "profile", "bob@example.net"]);
    assert_eq!(shown.trim(), "bob@example.net: profile gajim");
    // Per contact: another contact keeps the default.
    let other = run(&["trust", "profile", "carol@example.net"]);
    assert!(other.contains("profile standard"), "{other}");
    let list = run(&["trust", "list"]);
    assert!(
        list.contains("bob@example.net\n  profile: gajim"),
        "trust list: {list}"
    );
    assert!(!list.contains("carol@example.net"), "{list}");
    // Cleared with --clear ...
    let cleared = run(&["trust", "profile", "bob@example.net", "--clear"]);
    assert!(cleared.contains("no profile saved"), "{cleared}");
    let shown = run(&["trust", "profile", "bob@example.net"]);
    assert!(shown.contains("profile standard (the default)"), "{shown}");
    let list = run(&["trust", "list"]);
    assert!(!list.contains("profile:"), "{list}");
    // ... and by choosing `standard`.
    run(&["trust", "profile", "bob@example.net", "gajim"]);
    run(&["trust", "profile", "bob@example.net", "standard"]);
    let shown = run(&["trust", "profile", "bob@example.net"]);
    assert!(shown.contains("profile standard (the default)"), "{shown}");
}

/// An unknown profile name, a full JID and a profile with --clear are
/// refused with a clear error and a non-zero exit; nothing is saved.
#[test]
fn trust_profile_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    assert!(
        esession(dir.path(), &["key-file", key.to_str().unwrap()])
            .status
            .success()
    );
    let out = esession(dir.path(), &["trust", "profile", "bob@example.net", "psi"]);
    assert!(!out.status.success());
    let shown = text(&out);
    assert!(shown.contains("invalid value 'psi'"), "{shown}");
    assert!(shown.contains("standard, gajim"), "{shown}");

    let out = esession(
        dir.path(),
        &["trust", "profile", "bob@example.net/Gajim", "gajim"],
    );
    assert!(!out.status.success());
    let shown = text(&out);
    assert!(
        shown.contains("give the bare JID bob@example.net, not the full JID bob@example.net/Gajim"),
        "{shown}"
    );

    let out = esession(
        dir.path(),
        &["trust", "profile", "bob@example.net", "gajim", "--clear"],
    );
    assert!(!out.status.success(), "{}", text(&out));

    let out = esession(dir.path(), &["trust", "profile", "bob@example.net"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("profile standard (the default)"));
    // The same refusal for `chat --profile` and `send --profile`, before any login.
    for command in ["chat", "send"] {
        let out = esession(
            dir.path(),
            &[command, "--profile", "gajim-0.16", "bob@example.net"],
        );
        assert!(!out.status.success());
        assert!(
            text(&out).contains("invalid value 'gajim-0.16'"),
            "{}",
            text(&out)
        );
    }
}

/// `chat --help` (and `send --help`) explain --profile and what the gajim
/// profile is; `trust profile --help` too.
#[test]
fn help_explains_the_gajim_profile() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["chat", "--help"][..],
        &["send", "--help"][..],
        &["trust", "profile", "--help"][..],
    ] {
        let out = esession(dir.path(), args);
        assert!(out.status.success(), "{args:?}");
        let help = text(&out);
        for needle in [
            "Gajim 0.12-0.16",
            "LESS STANDARD",
            "4-message negotiation only",
            "no public keys",
            "no rekeying",
            "AES-256 keys while the form advertises aes128-ctr",
            "full JID",
        ] {
            assert!(help.contains(needle), "{args:?} lacks {needle:?}: {help}");
        }
        if args[0] != "trust" {
            assert!(help.contains("--profile <PROFILE>"), "{help}");
        }
    }
}
