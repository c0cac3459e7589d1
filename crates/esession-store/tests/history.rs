//! Issue 14, the local history: messages of sessions that may be logged are
//! kept sealed (never in clear in the database, its log or shared memory),
//! come back in order, survive a re-key, are refused for off-the-record
//! sessions (ENC-21), a tampered row is left out, and forgetting a contact
//! really deletes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod common;

use common::{ME, contains, file_bytes, new_store, open, pass};
use esession::ssn::{Disclosure, Logging};
use esession::{PubkeyMethod, SessionId, SessionInfo, StanzaKind};
use esession_crypto::{CipherAlgorithm, CompressionAlgorithm, HashAlgorithm, ModpGroup};
use esession_store::KdfParams;

fn session(peer: &str, thread: &str) -> SessionId {
    SessionId {
        peer: peer.parse().unwrap(),
        thread: thread.to_owned(),
    }
}

fn info(logging: Logging, sas_confirmed: bool) -> SessionInfo {
    SessionInfo {
        sas: "abcde".to_owned(),
        authenticated_by_retained_secret: false,
        retained_chain_verified: false,
        other_secret_used: false,
        sas_reminder: true,
        logging,
        disclosure: Disclosure::Never,
        group: ModpGroup::Group14,
        cipher: CipherAlgorithm::Aes128Ctr,
        hash: HashAlgorithm::Sha256,
        compression: CompressionAlgorithm::None,
        stanzas: vec![StanzaKind::Message],
        we_initiated: true,
        three_message: false,
        peer_identification: PubkeyMethod::None,
        own_identification: PubkeyMethod::None,
        peer_key: None,
        key_alerts: Vec::new(),
        sas_confirmed,
        broken_chain: None,
        retained_secret_unproven: false,
        offline: false,
    }
}

#[test]
fn history_is_sealed_ordered_and_survives_a_rekey() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = new_store(dir.path(), "pw");
    let account = store.account(ME).unwrap();
    let bob = session("Bob@Example.org/pc", "t1");
    let may = info(Logging::May, true);
    let texts = ["first words 7f3a", "second words 7f3a", "third words 7f3a"];
    for (i, text) in texts.iter().enumerate() {
        let t = 1_780_000_000 + i as u64;
        assert!(
            account
                .record_message(&bob, &may, i % 2 == 0, t, text)
                .unwrap()
        );
    }
    let unverified = info(Logging::May, false);
    assert!(
        account
            .record_message(
                &session("carol@example.org/x", "t2"),
                &unverified,
                false,
                1_780_000_100,
                "carol says hi 7f3a"
            )
            .unwrap()
    );

    let all = account.history("bob@example.org", 0, None).unwrap();
    assert_eq!(all.unreadable, 0);
    let bodies: Vec<&str> = all.entries.iter().map(|e| e.body.as_str()).collect();
    assert_eq!(bodies, texts);
    let first = &all.entries[0];
    assert_eq!(
        (
            first.contact.as_str(),
            first.peer.as_str(),
            first.thread.as_str()
        ),
        ("bob@example.org", "bob@example.org/pc", "t1")
    );
    assert!(first.outgoing && !all.entries[1].outgoing && first.verified);
    // The newest two, and the ones since a time.
    let last = account.history("bob@example.org", 0, Some(2)).unwrap();
    assert_eq!(last.entries.len(), 2);
    assert_eq!(last.entries[1].body, texts[2]);
    let since = account
        .history("bob@example.org", 1_780_000_001, None)
        .unwrap();
    assert_eq!(since.entries.len(), 2);
    let carol = account.history("carol@example.org", 0, None).unwrap();
    assert!(!carol.entries[0].verified);
    // Debug output never shows the text.
    assert!(!format!("{:?}", carol.entries[0]).contains("carol says hi"));

    // Never in clear on disk; readable after a re-key and a reopen.
    drop(account);
    store
        .rekey(pass("new"), KdfParams::insecure_fast_for_tests())
        .unwrap();
    drop(store);
    for (name, bytes) in file_bytes(&path) {
        assert!(
            !bytes.is_some_and(|b| contains(&b, b"words 7f3a")),
            "plaintext in {name}"
        );
    }
    let store = open(&path, "new");
    store.check().unwrap();
    let again = store
        .account(ME)
        .unwrap()
        .history("bob@example.org", 0, None)
        .unwrap();
    assert_eq!(again.entries.len(), 3);
}

#[test]
fn an_off_the_record_session_stores_nothing_enc_21() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = new_store(dir.path(), "pw");
    let account = store.account(ME).unwrap();
    let recorded = account
        .record_message(
            &session("bob@example.org/pc", "otr-thread-91c2"),
            &info(Logging::MustNot, true),
            true,
            1_780_000_000,
            "never kept 91c2",
        )
        .unwrap();
    assert!(!recorded);
    assert!(
        account
            .history("bob@example.org", 0, None)
            .unwrap()
            .entries
            .is_empty()
    );
    drop(account);
    drop(store);
    for (name, bytes) in file_bytes(&path) {
        let bytes = bytes.unwrap_or_default();
        assert!(
            !contains(&bytes, b"91c2"),
            "a trace of the session in {name}"
        );
    }
}

#[test]
fn a_tampered_row_is_left_out_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = new_store(dir.path(), "pw");
    let account = store.account(ME).unwrap();
    let bob = session("bob@example.org/pc", "t1");
    let may = info(Logging::May, false);
    account
        .record_message(&bob, &may, true, 1_780_000_000, "one")
        .unwrap();
    account
        .record_message(&bob, &may, false, 1_780_000_001, "two")
        .unwrap();
    drop(account);
    drop(store);
    // Someone flips "received" into "sent" behind the store's back.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE history SET outgoing = 1 WHERE time = 1780000001",
        [],
    )
    .unwrap();
    drop(conn);
    let store = open(&path, "pw");
    let history = store
        .account(ME)
        .unwrap()
        .history("bob@example.org", 0, None)
        .unwrap();
    assert_eq!(history.unreadable, 1);
    assert_eq!(history.entries.len(), 1);
    assert_eq!(history.entries[0].body, "one");
}

#[test]
fn forgetting_a_contact_deletes_every_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = new_store(dir.path(), "pw");
    let account = store.account(ME).unwrap();
    let bob = session("bob@example.org/pc", "thread-to-forget-5e1d");
    let may = info(Logging::May, true);
    for i in 0..20 {
        account
            .record_message(&bob, &may, true, 1_780_000_000 + i, "to be forgotten")
            .unwrap();
    }
    account
        .record_message(
            &session("carol@example.org/x", "t9"),
            &may,
            true,
            1_780_000_000,
            "kept",
        )
        .unwrap();
    assert_eq!(account.forget_history("Bob@example.org").unwrap(), 20);
    assert!(
        account
            .history("bob@example.org", 0, None)
            .unwrap()
            .entries
            .is_empty()
    );
    assert_eq!(
        account
            .history("carol@example.org", 0, None)
            .unwrap()
            .entries
            .len(),
        1
    );
    for (name, bytes) in file_bytes(&path) {
        let bytes = bytes.unwrap_or_default();
        assert!(
            !contains(&bytes, b"thread-to-forget-5e1d"),
            "the forgotten thread is still in {name}"
        );
    }
}
