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

/// A temporary directory with a store key file in it (`key`).
fn keyed_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    assert!(
        esession(dir.path(), &["key-file", key.to_str().unwrap()])
            .status
            .success()
    );
    (dir, key)
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

    let out = esession(dir.path(), &["keys", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "alice@example.org has no signing key: `esession keys generate` makes one (needed for \
         --public-keys).\n"
    );

    let out = esession(dir.path(), &["keys", "generate", "--bits", "2048"]);
    assert!(out.status.success(), "{}", text(&out));
    let generated = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        generated.starts_with("Generated key 1 for alice@example.org: "),
        "{generated}"
    );
    assert!(
        generated.ends_with(
            ", RSA-2048 (http://www.w3.org/2000/09/xmldsig#rsa-sha256). Use it with --public-keys.\n"
        ),
        "{generated}"
    );

    // One line: number, full fingerprint (8 groups of 8 upper-case hex
    // digits), algorithm, creation date in local time.
    let out = esession(dir.path(), &["keys", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = listed.strip_suffix('\n').unwrap();
    assert!(!line.contains('\n'), "{listed}");
    let rest = line
        .strip_prefix("key 1 (ours, alice@example.org): ")
        .unwrap_or_else(|| panic!("{line}"));
    let (fingerprint, rest) = rest.split_once(", ").unwrap();
    let groups: Vec<&str> = fingerprint.split(' ').collect();
    assert_eq!(groups.len(), 8, "{line}");
    assert!(
        groups.iter().all(|g| g.len() == 8
            && g.chars()
                .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c))),
        "{line}"
    );
    assert!(rest.starts_with("RSA-2048, created 20"), "{line}");
    assert!(rest.contains(" UTC"), "{line}");
    assert!(generated.contains(fingerprint), "{generated}");

    let out = esession(dir.path(), &["keys", "export", "1"]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains(
            "<KeyValue xmlns=\"http://www.w3.org/2000/09/xmldsig#\"><RSAKeyValue><Modulus>"
        ),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("SHA-256 fingerprint: {fingerprint}\n")),
        "{shown}"
    );

    let out = esession(dir.path(), &["keys", "export", "7"]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "esession keys: alice@example.org has no signing key 7: `esession keys list` shows the \
         numbers of our keys (\"key N (ours, ...)\")\n"
    );
    let out = esession(
        dir.path(),
        &["keys", "generate", "--algorithm", "dsa", "--bits", "3072"],
    );
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "esession keys: --bits 3072 is for RSA keys: DSA keys are always 2048/256 bits; drop \
         --bits, or use --algorithm rsa\n"
    );
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
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "No contacts remembered for alice@example.org yet: a contact appears here after a first \
         encrypted session.\n"
    );
    let out = esession(dir.path(), &["trust", "forget", "bob@example.com"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Nothing is remembered about bob@example.com: nothing to forget.\n"
    );
    esession(
        dir.path(),
        &["trust", "profile", "bob@example.com", "gajim"],
    );
    let out = esession(dir.path(), &["trust", "forget", "bob@example.com"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Forgot bob@example.com: retained secrets, SAS states, settings and the keys seen only \
         with bob@example.com are deleted.\n"
    );
}

/// Issue 10: `trust verify` before any session names the contact (not our
/// own JID) and says what to do; so do the other trust errors.
#[test]
fn trust_errors_name_the_contact_and_say_what_to_do() {
    let (dir, _) = keyed_dir();
    // The store exists (its creation is announced on stderr).
    assert!(esession(dir.path(), &["trust", "list"]).status.success());
    let error = |args: &[&str]| {
        let out = esession(dir.path(), args);
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert_eq!(
        error(&[
            "trust",
            "verify",
            "bob@example.com",
            "--fingerprint",
            "ABCD 0123"
        ]),
        "esession trust: no public key of bob@example.com is known yet: a key is remembered once \
         bob@example.com identifies with it in an encrypted session (both sides with \
         --public-keys); have a session with bob@example.com, compare the fingerprint that \
         `esession trust list` then shows with bob@example.com, and run this command again\n"
    );
    let chains = error(&["trust", "verify", "bob@example.com"]);
    assert!(
        chains.starts_with(
            "esession trust: there is no session with bob@example.com to mark verified"
        ),
        "{chains}"
    );
    assert!(
        chains.contains("`esession chat bob@example.com`"),
        "{chains}"
    );
    assert_eq!(
        error(&["trust", "verify", "bob@example.com/laptop"]),
        "esession trust: trust is per contact: give the bare JID bob@example.com, not the full \
         JID bob@example.com/laptop\n"
    );
    assert_eq!(
        error(&["trust", "petname", "ABCD 0123", "Bob"]),
        "esession trust: no contact's key has the fingerprint ABCD0123: `esession trust list` \
         shows the fingerprints of the keys we remember (copy one in full)\n"
    );
    assert_eq!(
        error(&["trust", "petname", "xyz", "Bob"]),
        "esession trust: \"xyz\" is not a fingerprint: give the hexadecimal digits that \
         `esession trust list` shows (spaces and case do not matter)\n"
    );
    // The test's stdin is not a terminal.
    assert_eq!(
        error(&["trust", "secret", "bob@example.com"]),
        "esession trust: the shared secret for bob@example.com is typed at a prompt, and there is \
         no terminal to ask on: give it with --secret-file FILE or --secret-env VAR, or run \
         `esession trust secret bob@example.com` in a terminal\n"
    );
    assert!(error(&["trust", "forget", "example.com"]).starts_with(
        "esession trust: \"example.com\" is not a contact's JID: it has no user part"
    ));
}

/// Issue 10: settings that exclude each other are refused by the parser, or
/// when flags and the config file merge; chat and send refuse our own JID
/// and JIDs that name no person at once, before the store is opened.
#[test]
fn conflicting_settings_and_bad_contacts_are_refused_before_anything_happens() {
    let dir = tempfile::tempdir().unwrap();
    let out = esession(
        dir.path(),
        &[
            "--insecure-plaintext-loopback",
            "--ca-file",
            "/ca.pem",
            "send",
            "bob@example.com",
            "hi",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains(
            "error: the argument '--insecure-plaintext-loopback' cannot be used with '--ca-file <PEM>'"
        ),
        "{shown}"
    );
    // The helper passes --store-key-file.
    let out = esession(
        dir.path(),
        &["--store-passphrase-file", "/pass", "trust", "list"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("cannot be used with")
            && shown.contains("--store-key-file <FILE>")
            && shown.contains("--store-passphrase-file <FILE>"),
        "{shown}"
    );
    // The same pair, one from the config file ($XDG_CONFIG_HOME is `dir`).
    let config = dir.path().join("esession").join("config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "[store]\npassphrase_file = \"/pass\"\n").unwrap();
    let out = esession(dir.path(), &["trust", "list"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "esession trust: --store-key-file and passphrase_file in [store] of {} cannot be used \
             together: the trust store is unlocked either with a key file or with a passphrase; \
             remove one of them\n",
            config.display()
        )
    );
    std::fs::remove_file(&config).unwrap();

    for (command, contact, expected) in [
        (
            "chat",
            "alice@example.org",
            "alice@example.org is your own account (alice@example.org): an encrypted session is \
             with someone else; give the contact's JID",
        ),
        (
            "send",
            "alice@example.org/phone",
            "alice@example.org/phone is your own account (alice@example.org): an encrypted \
             session is with someone else; give the contact's JID",
        ),
        (
            "send",
            "example.com",
            "\"example.com\" is not a contact's JID: it has no user part (without an @ it names a \
             server, not a person); a contact's JID is user@domain, e.g. bob@example.com \
             (bob@example.com/laptop for one of their clients)",
        ),
        (
            "chat",
            "bob@",
            "\"bob@\" is not a contact's JID: it has no domain after the @; a contact's JID is \
             user@domain, e.g. bob@example.com (bob@example.com/laptop for one of their clients)",
        ),
    ] {
        let out = esession(
            dir.path(),
            &[command, contact, "hi"][..if command == "chat" { 2 } else { 3 }],
        );
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("esession {command}: {expected}\n")
        );
    }
    // Nothing was created: the refusals came before the store was opened.
    assert!(!dir.path().join("store.db").exists());
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
    let (dir, _) = keyed_dir();
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
    assert_eq!(list, "bob@example.net: no session yet, profile gajim\n");
    // Cleared with --clear ...
    let cleared = run(&["trust", "profile", "bob@example.net", "--clear"]);
    assert!(cleared.contains("no profile saved"), "{cleared}");
    let shown = run(&["trust", "profile", "bob@example.net"]);
    assert!(shown.contains("profile standard (the default)"), "{shown}");
    let list = run(&["trust", "list"]);
    assert!(!list.contains("profile"), "{list}");
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
    let (dir, _) = keyed_dir();
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

/// `listen --help` documents the JSON events for scripts.
#[test]
fn listen_help_documents_the_json_events() {
    let dir = tempfile::tempdir().unwrap();
    let out = esession(dir.path(), &["listen", "--help"]);
    assert!(out.status.success(), "{}", text(&out));
    let help = text(&out);
    for needle in [
        "established: flow (\"4-message\" or \"3-message\"), group, cipher, hash, compression, \
         sas (null in the 3-message flow)",
        "negotiation_failed: error = {kind, condition (the XMPP error condition, e.g. \
         \"feature-not-implemented\", or null), fields, message}",
        "alert: alert = {kind, message for a person",
    ] {
        assert!(help.contains(needle), "{needle:?} not in {help}");
    }
}

/// Issue 15: the other shared secret without a terminal, from a file or an
/// environment variable; an unset variable is said, not stored as empty.
#[test]
fn a_shared_secret_can_come_from_a_file_or_the_environment() {
    let (dir, key) = keyed_dir();
    let file = dir.path().join("secret.txt");
    std::fs::write(&file, "correct horse\nignored second line\n").unwrap();
    let out = esession(
        dir.path(),
        &[
            "trust",
            "secret",
            "bob@example.com",
            "--secret-file",
            file.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Stored the shared secret for bob@example.com"),
        "{}",
        text(&out)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_esession"))
        .args(["--jid", "alice@example.org", "--store"])
        .arg(dir.path().join("store.db"))
        .arg("--store-key-file")
        .arg(&key)
        .args([
            "trust",
            "secret",
            "carol@example.com",
            "--secret-env",
            "CAROL_SECRET",
        ])
        .env("CAROL_SECRET", "battery staple")
        .env("XDG_CONFIG_HOME", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = esession(
        dir.path(),
        &[
            "trust",
            "secret",
            "dave@example.com",
            "--secret-env",
            "ESESSION_NO_SUCH_VAR",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("ESESSION_NO_SUCH_VAR"),
        "{}",
        text(&out)
    );
    // Both are stored: --clear finds them.
    for contact in ["bob@example.com", "carol@example.com"] {
        let out = esession(dir.path(), &["trust", "secret", contact, "--clear"]);
        assert!(
            text(&out).contains(&format!("Removed the shared secret for {contact}")),
            "{}",
            text(&out)
        );
    }
}

/// Issue 15: `trust import` remembers a contact's key from a file (XML
/// `<KeyValue/>` as `keys export` prints it, or PEM from OpenSSL), shows its
/// fingerprint, and marks it verified only when told.
#[test]
fn a_contacts_key_is_imported_from_xml_or_pem() {
    let (theirs, _) = keyed_dir();
    assert!(
        esession(theirs.path(), &["keys", "generate", "--bits", "2048"])
            .status
            .success()
    );
    let exported = esession(theirs.path(), &["keys", "export", "1"]);
    assert!(exported.status.success(), "{}", text(&exported));
    let export = String::from_utf8(exported.stdout).unwrap();
    let print = export
        .lines()
        .find_map(|l| l.strip_prefix("SHA-256 fingerprint: "))
        .unwrap()
        .to_owned();
    let (ours, _) = keyed_dir();
    let xml = ours.path().join("carol.xml");
    std::fs::write(&xml, &export).unwrap();
    let out = esession(
        ours.path(),
        &[
            "trust",
            "import",
            "carol@example.com",
            xml.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "Imported carol@example.com's key {print}, remembered as seen, NOT verified"
        )),
        "{}",
        text(&out)
    );
    let listed = text(&esession(ours.path(), &["trust", "list"]));
    assert!(
        listed.contains(&print) && listed.contains("NOT verified"),
        "{listed}"
    );

    // PEM from OpenSSL, verified at once.
    let pem = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../esession-crypto/tests/data/dsa2048.pub.pem"
    );
    let out = esession(
        ours.path(),
        &["trust", "import", "dave@example.com", pem, "--verified"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Imported dave@example.com's key"),
        "{}",
        text(&out)
    );
    let listed = text(&esession(ours.path(), &["trust", "list"]));
    let dsa = listed
        .lines()
        .find(|l| l.contains("DSA"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(
        dsa.contains("verified") && !dsa.contains("NOT verified"),
        "{dsa}"
    );

    // The same for scripts: `trust list --json` and `keys list --json`.
    let listed = esession(ours.path(), &["trust", "list", "--json"]);
    assert!(listed.status.success(), "{}", text(&listed));
    let contacts: Vec<serde_json::Value> = String::from_utf8(listed.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let carol = contacts
        .iter()
        .find(|c| c["contact"] == "carol@example.com")
        .unwrap();
    let hex_print = print.replace(' ', "").to_lowercase();
    assert_eq!(
        carol["keys"][0]["fingerprint"],
        hex_print.as_str(),
        "{carol}"
    );
    assert_eq!(carol["keys"][0]["verified"], false);
    let dave = contacts
        .iter()
        .find(|c| c["contact"] == "dave@example.com")
        .unwrap();
    assert_eq!(dave["keys"][0]["verified"], true, "{dave}");
    assert!(
        dave["keys"][0]["algorithm"]
            .as_str()
            .unwrap()
            .starts_with("DSA")
    );
    let keys = esession(theirs.path(), &["keys", "list", "--json"]);
    let ours_listed: serde_json::Value = serde_json::from_str(
        String::from_utf8(keys.stdout)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(ours_listed["owner"], "ours");
    assert_eq!(ours_listed["fingerprint"], hex_print.as_str());

    // Not a key: said, nothing stored.
    let junk = ours.path().join("junk.txt");
    std::fs::write(&junk, "hello").unwrap();
    let out = esession(
        ours.path(),
        &[
            "trust",
            "import",
            "erin@example.com",
            junk.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("holds no public key we can read"),
        "{}",
        text(&out)
    );
}
