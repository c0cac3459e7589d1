#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
//! Issue 11, trust store: someone who can write the file but does not know
//! the passphrase edits it with plain SQLite. Every edit of a row that
//! carries a trust decision, every row moved to another contact or account,
//! every flipped tag bit is reported as tampering when the row is read, and
//! nothing is trusted from it; a truncated file or out-of-range key-derivation
//! settings are refused at opening. Normal use never reports tampering.

mod common;

use std::path::{Path, PathBuf};

use common::{ME, assert_same_files, file_bytes, new_store, open, pass};
use esession::{RetainedSecret, TrustStore, TrustStoreError};
use esession_crypto::SecretBytes;
use esession_store::{AccountStore, KdfParams, KeyStatus, SasState, Store, StoreError};

/// Reads that must fail after a given edit.
type Probe = fn(&Store, &mut AccountStore);
/// An edit of a stored tag.
type TagEdit = Box<dyn Fn(&mut Vec<u8>)>;

const BOB: &str = "bob@y";
const CAROL: &str = "carol@z";

fn rs(client: &str, secret: &[u8], created: u64) -> RetainedSecret {
    RetainedSecret {
        client: client.to_owned(),
        secret: SecretBytes::from_slice(secret),
        created,
        verified: false,
    }
}

/// A small RSA-shaped `<KeyValue/>` (the store does not check key sizes).
fn kv(n: u8) -> esession::trust::KeyValue {
    esession::trust::KeyValue::Rsa {
        modulus: vec![0xc0, n, 1, 2, 3],
        exponent: vec![1, 0, 1],
    }
}

fn fp(n: u8) -> Vec<u8> {
    esession::key_fingerprint(&kv(n))
}

/// A closed store with a row in every tagged table: bob's key (unverified,
/// petname "Bob") and carol's (verified); bob's retained secret (unverified,
/// SAS pending) and carol's (verified, SAS confirmed); bob's profile; one
/// delivered message from bob.
fn populated(dir: &Path) -> PathBuf {
    let (store, path) = new_store(dir, "pw");
    let mut trust = store.account(ME).unwrap();
    trust.record_peer_key(BOB, &kv(1), 10).unwrap();
    trust.record_peer_key(CAROL, &kv(2), 20).unwrap();
    trust.set_peer_key_verified(&fp(2), true).unwrap();
    trust.set_peer_key_petname(&fp(1), Some("Bob")).unwrap();
    trust
        .store_retained_secret(BOB, rs("laptop", b"rs-bob", 100))
        .unwrap();
    trust
        .store_retained_secret(CAROL, rs("phone", b"rs-carol", 200))
        .unwrap();
    trust.mark_verified(CAROL, "phone").unwrap();
    store
        .set_sas_state(ME, BOB, "laptop", SasState::Pending, 50)
        .unwrap();
    store.set_contact_profile(ME, BOB, Some("gajim")).unwrap();
    assert_eq!(trust.record_delivery(BOB, "m1"), Ok(true));
    assert!(store.check().is_ok());
    path
}

/// Edits the closed store with plain SQLite (no passphrase).
fn edit(path: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(sql).unwrap();
}

#[track_caller]
fn assert_tampered<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    match result {
        Err(StoreError::Tampered { what }) => {
            assert!(!what.is_empty());
            // Never secret data: the sealed secrets' plaintexts are not in it.
            assert!(
                !what.contains("rs-bob") && !what.contains("rs-carol"),
                "{what}"
            );
        }
        other => panic!("expected Tampered, got {other:?}"),
    }
}

/// What the core sees: an error saying the store was tampered with.
#[track_caller]
fn assert_core_refused<T: std::fmt::Debug>(result: Result<T, TrustStoreError>) {
    match result {
        Err(TrustStoreError(text)) => assert!(text.contains("tampering"), "{text}"),
        Ok(v) => panic!("the core was given {v:?} from a tampered store"),
    }
}

/// Opens `path`, checks that `Store::check` reports tampering, and hands the
/// store and its account view to `probe`.
fn with_tampered(path: &Path, probe: impl FnOnce(&Store, &mut AccountStore)) {
    let store = open(path, "pw");
    assert_tampered(store.check());
    let mut trust = store.account(ME).unwrap();
    probe(&store, &mut trust);
    // Still detected afterwards: no operation re-tagged the edited row.
    assert_tampered(store.check());
}

fn id_of(path: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

// ---- normal use ---------------------------------------------------------------------

#[test]
fn normal_use_never_reports_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let path = populated(dir.path());
    let store = open(&path, "pw");
    let mut trust = store.account(ME).unwrap();
    for round in 0..3u64 {
        let t = 1000 + round * 100;
        // Keys: known, seen with another JID, changed, verified, petnamed.
        assert_eq!(
            store
                .record_peer_key(ME, BOB, fp(1), b"k".to_vec(), t)
                .unwrap()
                .status,
            KeyStatus::Known
        );
        trust.record_peer_key("bob@work", &kv(1), t + 1).unwrap();
        trust
            .record_peer_key(BOB, &kv(3 + u8::try_from(round).unwrap()), t + 2)
            .unwrap();
        trust.set_peer_key_verified(&fp(1), round % 2 == 0).unwrap();
        trust.set_peer_key_petname(&fp(1), Some("Bob")).unwrap();
        trust.set_peer_key_petname(&fp(2), None).unwrap();
        assert!(!trust.peer_keys(None).unwrap().is_empty());
        assert!(!trust.peer_keys(Some(BOB)).unwrap().is_empty());
        // Retained secrets: store, confirm, verify, revoke, search.
        trust
            .store_retained_secret(BOB, rs("laptop", b"next", t))
            .unwrap();
        trust.confirm_retained_secret(BOB, "laptop").unwrap();
        trust.mark_verified(BOB, "laptop").unwrap();
        trust.revoke_verification(BOB, "laptop").unwrap();
        trust.dismiss_sas_reminder(BOB, "laptop").unwrap();
        assert!(trust.sas_reminder_dismissed(BOB, "laptop").unwrap());
        assert_eq!(trust.retained_secrets(BOB).unwrap().len(), 1);
        assert!(
            !trust
                .retained_secrets_of_other_peers(BOB, 0, 10)
                .unwrap()
                .is_empty()
        );
        assert!(!store.retained_secret_info(ME, CAROL).unwrap().is_empty());
        // Settings, delivered ids, lifetime.
        store
            .set_contact_profile(ME, CAROL, Some(if round == 1 { "psi" } else { "gajim" }))
            .unwrap();
        assert_eq!(store.contact_profiles(ME).unwrap().len(), 2);
        assert_eq!(trust.record_delivery(BOB, "m1"), Ok(false));
        assert_eq!(trust.record_delivery(BOB, &format!("n{round}")), Ok(true));
        store
            .set_retained_secret_lifetime(3600 * (round + 1))
            .unwrap();
        assert_eq!(
            store.retained_secret_lifetime().unwrap(),
            3600 * (round + 1)
        );
        assert!(store.sas_states(ME).unwrap().len() >= 2);
        store.check().unwrap();
    }
    // A contact is forgotten, expired secrets purged, the passphrase changed.
    store.forget_contact(ME, "bob@work").unwrap();
    store.purge_expired(0).unwrap();
    store
        .rekey(pass("new"), KdfParams::insecure_fast_for_tests())
        .unwrap();
    store.check().unwrap();
    drop(trust);
    drop(store);
    let store = open(&path, "new");
    let report = store.check().unwrap();
    assert!(report.peer_keys >= 3);
    let trust = store.account(ME).unwrap();
    assert!(trust.peer_keys(Some(BOB)).unwrap().len() >= 2);
    assert!(trust.retained_secrets(CAROL).unwrap()[0].verified);
}

// ---- each kind of row ---------------------------------------------------------------------

#[test]
fn a_contact_key_flipped_to_verified_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = populated(dir.path());
    // The row of bob's key, or all of them.
    for sql in [
        "UPDATE peer_keys SET verified = 1 WHERE petname = 'Bob'",
        "UPDATE peer_keys SET verified = 1",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path2 = dir.path().join("trust.db");
        std::fs::copy(&path, &path2).unwrap();
        edit(&path2, sql);
        with_tampered(&path2, |store, trust| {
            assert_tampered(store.peer_keys(ME));
            assert_tampered(store.peer_keys_of(ME, BOB));
            assert_core_refused(trust.peer_keys(None));
            assert_core_refused(trust.peer_keys(Some(BOB)));
            // Seeing the key again does not report it as verified ...
            assert_core_refused(trust.record_peer_key(BOB, &kv(1), 99));
            // ... and changing it does not launder the edit.
            assert_core_refused(trust.set_peer_key_verified(&fp(1), true));
            assert_core_refused(trust.set_peer_key_petname(&fp(1), Some("x")));
            // Carol's key, untouched, is still readable when the edit spared it.
            if sql.contains("WHERE") {
                assert!(trust.peer_keys(Some(CAROL)).unwrap()[0].verified);
            }
        });
    }
}

#[test]
fn a_changed_petname_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = populated(dir.path());
    edit(
        &path,
        "UPDATE peer_keys SET petname = 'Carol (verified)' WHERE petname = 'Bob'",
    );
    with_tampered(&path, |store, trust| {
        assert_tampered(store.peer_keys(ME));
        assert_core_refused(trust.peer_keys(Some(BOB)));
        assert_core_refused(trust.record_peer_key(BOB, &kv(1), 99));
    });
    // Setting a petname where there was none is an edit too.
    let dir = tempfile::tempdir().unwrap();
    let path = populated(dir.path());
    edit(
        &path,
        "UPDATE peer_keys SET petname = 'Carol' WHERE petname IS NULL",
    );
    with_tampered(&path, |_, trust| {
        assert_core_refused(trust.peer_keys(Some(CAROL)));
    });
}

#[test]
fn a_key_replaced_under_its_verified_flag_is_detected() {
    // Carol's verified row gets the attacker's key (fingerprint and key value).
    let dir = tempfile::tempdir().unwrap();
    let path = populated(dir.path());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let bob_keyvalue: Vec<u8> = conn
        .query_row(
            "SELECT keyvalue FROM peer_keys WHERE petname = 'Bob'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute(
        "UPDATE peer_keys SET keyvalue = ?1 WHERE verified = 1",
        [&bob_keyvalue],
    )
    .unwrap();
    drop(conn);
    with_tampered(&path, |_, trust| {
        assert_core_refused(trust.peer_keys(Some(CAROL)));
    });

    let dir = tempfile::tempdir().unwrap();
    let path = populated(dir.path());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE peer_keys SET fingerprint = ?1 WHERE verified = 1",
        [fp(9)],
    )
    .unwrap();
    drop(conn);
    with_tampered(&path, |_, trust| {
        assert_core_refused(trust.record_peer_key(CAROL, &kv(9), 99));
        assert_core_refused(trust.peer_keys(None));
    });
}

#[test]
fn a_key_bound_to_another_jid_is_detected() {
    // Carol's verified key is bound to mallory's JID: by a new row carrying
    // the tag of carol's binding, by changing the JID of carol's binding, or
    // by a new row without a tag. Each would make the key "known" (and
    // verified) for mallory.
    let carol_key = "(SELECT id FROM peer_keys WHERE verified = 1)";
    for sql in [
        format!(
            "INSERT INTO peer_key_jids (key_id, peer, first_seen, last_seen, tag)
             SELECT key_id, 'mallory@evil', first_seen, last_seen, tag
             FROM peer_key_jids WHERE key_id = {carol_key}"
        ),
        format!("UPDATE peer_key_jids SET peer = 'mallory@evil' WHERE key_id = {carol_key}"),
        "INSERT INTO peer_key_jids (key_id, peer, first_seen, last_seen)
         VALUES ((SELECT id FROM peer_keys WHERE verified = 1), 'mallory@evil', 1, 1)"
            .to_owned(),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = populated(dir.path());
        edit(&path, &sql);
        with_tampered(&path, |store, trust| {
            assert_tampered(store.peer_keys_of(ME, "mallory@evil"));
            assert_core_refused(trust.peer_keys(Some("mallory@evil")));
            // Not "known" for mallory (nor "seen with carol": the whole
            // observation fails).
            assert_core_refused(trust.record_peer_key("mallory@evil", &kv(2), 99));
            assert_core_refused(trust.record_peer_key(CAROL, &kv(2), 99));
            assert_core_refused(trust.peer_keys(None));
        });
    }
}

#[test]
fn a_binding_pointed_at_another_key_is_detected() {
    // Bob's binding now points at carol's verified key: bob would look verified.
    let dir = tempfile::tempdir().unwrap();
    let path = populated(dir.path());
    edit(
        &path,
        "UPDATE peer_key_jids SET key_id = (SELECT id FROM peer_keys WHERE verified = 1)
         WHERE peer = 'bob@y'",
    );
    with_tampered(&path, |_, trust| {
        assert_core_refused(trust.peer_keys(Some(BOB)));
        assert_core_refused(trust.record_peer_key(BOB, &kv(2), 99));
    });
    // Or its first/last sighting changed (this orders ESN-51's alerts).
    let dir = tempfile::tempdir().unwrap();
    let path = populated(dir.path());
    edit(
        &path,
        "UPDATE peer_key_jids SET last_seen = 999999 WHERE peer = 'bob@y'",
    );
    with_tampered(&path, |_, trust| {
        assert_core_refused(trust.peer_keys(Some(BOB)));
        assert_core_refused(trust.record_peer_key(BOB, &kv(7), 99));
    });
}

#[test]
fn a_sas_state_set_to_confirmed_or_dismissed_is_detected() {
    for state in ["confirmed", "dismissed"] {
        let dir = tempfile::tempdir().unwrap();
        let path = populated(dir.path());
        edit(
            &path,
            &format!("UPDATE sas_states SET state = '{state}' WHERE peer = 'bob@y'"),
        );
        with_tampered(&path, |store, trust| {
            assert_tampered(store.sas_state(ME, BOB, "laptop"));
            assert_tampered(store.sas_states(ME));
            assert_core_refused(trust.sas_reminder_dismissed(BOB, "laptop"));
        });
    }
}

#[test]
fn a_changed_profile_is_detected() {
    for sql in [
        "UPDATE contacts SET profile = 'legacy' WHERE peer = 'bob@y'",
        "UPDATE contacts SET profile = NULL WHERE peer = 'bob@y'",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = populated(dir.path());
        edit(&path, sql);
        with_tampered(&path, |store, _| {
            assert_tampered(store.contact_profile(ME, BOB));
            assert_tampered(store.contact_profiles(ME));
        });
    }
}

#[test]
fn retained_secret_metadata_edits_are_detected() {
    for sql in [
        "UPDATE retained_secrets SET verified = 1 WHERE peer = 'bob@y'",
        "UPDATE retained_secrets SET expires = expires + 1000000 WHERE peer = 'bob@y'",
        "UPDATE retained_secrets SET expires = 0 WHERE peer = 'bob@y'",
        "UPDATE retained_secrets SET client = 'desktop' WHERE peer = 'bob@y'",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = populated(dir.path());
        edit(&path, sql);
        with_tampered(&path, |store, trust| {
            assert_core_refused(trust.retained_secrets(BOB));
            assert_core_refused(trust.retained_secrets_of_other_peers(CAROL, 0, 10));
            assert_tampered(store.retained_secret_info(ME, BOB));
            // Rewriting the chain's flag or the lifetime, or storing the
            // next secret of the chain, does not launder it.
            let client = if sql.contains("client") {
                "desktop"
            } else {
                "laptop"
            };
            assert_core_refused(trust.mark_verified(BOB, client));
            assert_core_refused(trust.confirm_retained_secret(BOB, client));
            assert_core_refused(trust.store_retained_secret(BOB, rs(client, b"x", 300)));
            assert_tampered(store.set_retained_secret_lifetime(3600));
            // Carol's secret is unaffected.
            assert!(trust.retained_secrets(CAROL).unwrap()[0].verified);
        });
    }
}

#[test]
fn a_changed_or_deleted_retained_lifetime_is_detected() {
    for sql in [
        "UPDATE meta SET value = 315360000 WHERE name = 'retained_lifetime'",
        "DELETE FROM meta WHERE name = 'retained_lifetime'",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = populated(dir.path());
        edit(&path, sql);
        with_tampered(&path, |store, trust| {
            assert_tampered(store.retained_secret_lifetime());
            // New secrets would get their expiry from it: refused.
            assert_core_refused(trust.store_retained_secret(BOB, rs("laptop", b"x", 300)));
        });
    }
}

#[test]
fn a_forged_delivered_message_record_is_detected() {
    // A forged record would hide message "m9" as "already shown".
    for sql in [
        "INSERT INTO delivered_messages (account, peer, message_id, tag)
         SELECT account, peer, 'm9', tag FROM delivered_messages WHERE message_id = 'm1'",
        "UPDATE delivered_messages SET message_id = 'm9' WHERE message_id = 'm1'",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = populated(dir.path());
        edit(&path, sql);
        with_tampered(&path, |_, trust| {
            assert_core_refused(trust.record_delivery(BOB, "m9"));
        });
    }
}

// ---- rows moved between contacts and accounts ------------------------------------------

#[test]
fn rows_swapped_between_contacts_are_detected() {
    // Each copies carol's trusted state, with its tag, onto bob's row, or
    // moves carol's row to bob.
    let cases: [(&str, Probe); 6] = [
        (
            "UPDATE sas_states SET (state, updated, tag) =
                 (SELECT state, updated, tag FROM sas_states WHERE peer = 'carol@z')
             WHERE peer = 'bob@y'",
            |_, trust| assert_core_refused(trust.sas_reminder_dismissed(BOB, "laptop")),
        ),
        (
            "DELETE FROM sas_states WHERE peer = 'bob@y';
             UPDATE sas_states SET peer = 'bob@y', client = 'laptop' WHERE peer = 'carol@z'",
            |store, _| assert_tampered(store.sas_state(ME, BOB, "laptop")),
        ),
        (
            "UPDATE retained_secrets SET (verified, tag) =
                 (SELECT verified, tag FROM retained_secrets WHERE peer = 'carol@z')
             WHERE peer = 'bob@y'",
            |_, trust| assert_core_refused(trust.retained_secrets(BOB)),
        ),
        (
            "UPDATE retained_secrets SET peer = 'bob@y' WHERE peer = 'carol@z'",
            |_, trust| assert_core_refused(trust.retained_secrets(BOB)),
        ),
        (
            "UPDATE peer_keys SET (verified, tag) =
                 (SELECT verified, tag FROM peer_keys WHERE petname IS NULL)
             WHERE petname = 'Bob'",
            |_, trust| assert_core_refused(trust.peer_keys(Some(BOB))),
        ),
        (
            "UPDATE contacts SET peer = 'carol@z' WHERE peer = 'bob@y'",
            |store, _| assert_tampered(store.contact_profile(ME, CAROL)),
        ),
    ];
    for (sql, probe) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = populated(dir.path());
        edit(&path, sql);
        with_tampered(&path, probe);
    }
}

#[test]
fn rows_moved_to_another_account_are_detected() {
    const EVE: &str = "eve@x";
    for sql in [
        "UPDATE peer_keys SET account = 'eve@x'",
        "UPDATE retained_secrets SET account = 'eve@x'",
        "UPDATE sas_states SET account = 'eve@x'",
        "UPDATE contacts SET account = 'eve@x'",
        "UPDATE delivered_messages SET account = 'eve@x'",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = populated(dir.path());
        edit(&path, sql);
        let store = open(&path, "pw");
        assert_tampered(store.check());
        let mut eve = store.account(EVE).unwrap();
        match sql.split_whitespace().nth(1).unwrap() {
            "peer_keys" => {
                assert_tampered(store.peer_keys(EVE));
                assert_core_refused(eve.peer_keys(Some(CAROL)));
                assert_core_refused(eve.record_peer_key(CAROL, &kv(2), 99));
            }
            "retained_secrets" => {
                assert_core_refused(eve.retained_secrets(CAROL));
                assert_core_refused(eve.retained_secrets_of_other_peers(BOB, 0, 10));
            }
            "sas_states" => {
                assert_tampered(store.sas_states(EVE));
                assert_core_refused(eve.sas_reminder_dismissed(CAROL, "phone"));
            }
            "contacts" => assert_tampered(store.contact_profiles(EVE)),
            _ => assert_core_refused(eve.record_delivery(BOB, "m1")),
        }
    }
}

// ---- the tags themselves ----------------------------------------------------------------

#[test]
fn flipped_or_missing_tag_bits_are_detected() {
    let rows: [(&str, &str, Probe); 7] = [
        ("retained_secrets", "peer = 'bob@y'", |_, t| {
            assert_core_refused(t.retained_secrets(BOB));
        }),
        ("peer_keys", "petname = 'Bob'", |_, t| {
            assert_core_refused(t.peer_keys(Some(BOB)));
        }),
        ("peer_key_jids", "peer = 'bob@y'", |_, t| {
            assert_core_refused(t.peer_keys(Some(BOB)));
        }),
        ("sas_states", "peer = 'bob@y'", |_, t| {
            assert_core_refused(t.sas_reminder_dismissed(BOB, "laptop"));
        }),
        ("contacts", "peer = 'bob@y'", |s, _| {
            assert_tampered(s.contact_profile(ME, BOB));
        }),
        ("delivered_messages", "message_id = 'm1'", |_, t| {
            assert_core_refused(t.record_delivery(BOB, "m1"));
        }),
        ("meta", "name = 'retained_lifetime'", |s, _| {
            assert_tampered(s.retained_secret_lifetime());
        }),
    ];
    for (table, row, probe) in rows {
        let tag_len = id_of(
            &populated(tempfile::tempdir().unwrap().path()),
            &format!("SELECT length(tag) FROM {table} WHERE {row}"),
        );
        assert_eq!(tag_len, 32, "{table}");
        // A bit flipped at the start, in the middle and at the end; the tag
        // cut short; emptied; removed (meta only allows NULL).
        let flips = [0usize, 100, 255];
        let mut edits: Vec<TagEdit> = flips
            .iter()
            .map(|&bit| {
                Box::new(move |tag: &mut Vec<u8>| tag[bit / 8] ^= 1 << (bit % 8)) as TagEdit
            })
            .collect();
        edits.push(Box::new(|tag: &mut Vec<u8>| tag.truncate(16)));
        edits.push(Box::new(|tag: &mut Vec<u8>| tag.clear()));
        for change in &edits {
            let dir = tempfile::tempdir().unwrap();
            let path = populated(dir.path());
            let conn = rusqlite::Connection::open(&path).unwrap();
            let mut tag: Vec<u8> = conn
                .query_row(&format!("SELECT tag FROM {table} WHERE {row}"), [], |r| {
                    r.get(0)
                })
                .unwrap();
            change(&mut tag);
            conn.execute(&format!("UPDATE {table} SET tag = ?1 WHERE {row}"), [tag])
                .unwrap();
            drop(conn);
            with_tampered(&path, probe);
        }
        if table == "meta" {
            let dir = tempfile::tempdir().unwrap();
            let path = populated(dir.path());
            edit(&path, &format!("UPDATE meta SET tag = NULL WHERE {row}"));
            with_tampered(&path, probe);
        }
    }
}

#[test]
fn a_tampered_store_cannot_be_laundered_by_a_rekey() {
    let dir = tempfile::tempdir().unwrap();
    let path = populated(dir.path());
    edit(&path, "UPDATE peer_keys SET verified = 1");
    let store = open(&path, "pw");
    assert_tampered(store.rekey(pass("new"), KdfParams::insecure_fast_for_tests()));
    drop(store);
    // Nothing changed: the old passphrase still opens it, the edit still shows.
    let store = open(&path, "pw");
    assert_tampered(store.peer_keys(ME));
}

// ---- the file ---------------------------------------------------------------------------

#[test]
fn a_truncated_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = populated(dir.path());
    let full = std::fs::read(&path).unwrap();
    assert!(full.len() >= 4 * 4096, "{}", full.len());
    let page = 4096;
    for len in [
        full.len() - page,
        full.len() - 1,
        full.len() / 2,
        2 * page,
        page,
        100,
        0,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cut = dir.path().join("trust.db");
        std::fs::write(&cut, &full[..len]).unwrap();
        match Store::open(&cut, pass("pw")) {
            Err(StoreError::Corrupt(_) | StoreError::NotAStore { .. }) => {}
            Err(other) => panic!("truncated to {len}: unexpected error {other}"),
            Ok(_) => panic!("truncated to {len} bytes of {}: opened", full.len()),
        }
    }
}

#[test]
fn out_of_range_kdf_parameters_are_refused_before_deriving() {
    let cases = [
        // 4 TiB of memory: would take hours (or exhaust memory) to derive.
        ("argon2_m_kib", "4294967296", "memory"),
        ("argon2_m_kib", "2097152", "memory"),
        ("argon2_t", "1000000", "passes"),
        ("argon2_p", "255", "lanes"),
        ("argon2_m_kib", "-1", "negative"),
        ("argon2_t", "-5", "negative"),
    ];
    for (name, value, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = populated(dir.path());
        edit(
            &path,
            &format!("UPDATE meta SET value = {value} WHERE name = '{name}'"),
        );
        let before = file_bytes(&path);
        let err = Store::open(&path, pass("pw")).unwrap_err();
        match &err {
            StoreError::KdfOutOfRange { reason, .. } => {
                assert!(reason.contains(expected), "{name}={value}: {reason}");
            }
            other => panic!("{name}={value}: {other}"),
        }
        assert!(err.to_string().contains("backup"), "{err}");
        assert_same_files(&before, &file_bytes(&path), "unchanged");
    }
    // Within each bound but too much work together (1 GiB × 64 passes).
    let dir = tempfile::tempdir().unwrap();
    let path = populated(dir.path());
    edit(
        &path,
        "UPDATE meta SET value = 1048576 WHERE name = 'argon2_m_kib';
         UPDATE meta SET value = 64 WHERE name = 'argon2_t';",
    );
    assert!(matches!(
        Store::open(&path, pass("pw")),
        Err(StoreError::KdfOutOfRange { reason, .. }) if reason.contains("KiB-passes")
    ));
    // A salt of the wrong length.
    for salt in ["X'00'", "zeroblob(100000)", "X''"] {
        let dir = tempfile::tempdir().unwrap();
        let path = populated(dir.path());
        edit(
            &path,
            &format!("UPDATE meta SET value = {salt} WHERE name = 'salt'"),
        );
        assert!(matches!(
            Store::open(&path, pass("pw")),
            Err(StoreError::KdfOutOfRange { reason, .. }) if reason.contains("salt")
        ));
    }
    // The same bounds apply when creating a store.
    assert!(matches!(
        KdfParams::new(KdfParams::MAX_M_COST_KIB + 1, 1, 1),
        Err(StoreError::Invalid(_))
    ));
}

#[test]
fn tampering_errors_reach_the_core_as_trust_store_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = populated(dir.path());
    edit(&path, "UPDATE sas_states SET state = 'confirmed'");
    let store = open(&path, "pw");
    let boxed: Box<dyn TrustStore + Send> = Box::new(store.account(ME).unwrap());
    let err = boxed.sas_reminder_dismissed(BOB, "laptop").unwrap_err();
    assert!(err.0.contains("sas_states"), "{err:?}");
    assert!(err.0.contains("bob@y"), "{err:?}");
}

// ---- XEP-0187 option sets (OFF-03) ----------------------------------------------------

/// A kept option set whose expiry, options, nonce or account was edited is never used: its
/// sealed exponents do not open under the edited associated data. It is counted and
/// destroyed, and a good set beside it is still restored.
#[test]
fn an_edited_offline_option_set_is_refused() {
    use esession_crypto::{GroupPrime, ModpGroup};
    for sql in [
        "UPDATE offline_option_sets SET expires = expires + 86400",
        "UPDATE offline_option_sets SET options = replace(options, 'form', 'submit')",
        "UPDATE offline_option_sets SET nonce = X'00'",
        "UPDATE offline_option_sets SET account = 'mallory@x'",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (store, path) = new_store(dir.path(), "pw");
        let mut x = ModpGroup::Group5.prime_bytes();
        let last = x.len() - 1;
        x[last] -= 2;
        let options =
            esession_wire::xml::parse_document("<x xmlns='jabber:x:data' type='form'/>").unwrap();
        let set = esession::offline::OfflineOptionSet::restore(
            options,
            1_780_000_000,
            b"nonce".to_vec(),
            &[(ModpGroup::Group5, &x)],
        )
        .unwrap();
        store
            .account(ME)
            .unwrap()
            .save_offline_options(&set)
            .unwrap();
        drop(store);
        edit(&path, sql);
        let store = open(&path, "pw");
        // A good set saved after the edit.
        store
            .account(ME)
            .unwrap()
            .save_offline_options(&set)
            .unwrap();
        if sql.contains("mallory") {
            let moved = store
                .account("mallory@x")
                .unwrap()
                .take_offline_options()
                .unwrap();
            assert_eq!((moved.sets.len(), moved.unreadable), (0, 1), "{sql}");
            let ours = store.account(ME).unwrap().take_offline_options().unwrap();
            assert_eq!((ours.sets.len(), ours.unreadable), (1, 0), "{sql}");
        } else {
            let taken = store.account(ME).unwrap().take_offline_options().unwrap();
            assert_eq!((taken.sets.len(), taken.unreadable), (1, 1), "{sql}");
        }
        assert!(
            store
                .account(ME)
                .unwrap()
                .take_offline_options()
                .unwrap()
                .sets
                .is_empty(),
            "{sql}: every stored copy destroyed"
        );
    }
}
