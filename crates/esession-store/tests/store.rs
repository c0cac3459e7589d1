#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
//! Round trips, MemoryTrustStore equivalence, encryption at rest, unlocking,
//! permissions, reopening.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{ME, assert_same_files, contains, file_bytes, new_store, open, pass};
use esession::{MemoryTrustStore, RetainedSecret, TrustStore};
use esession_crypto::SecretBytes;
use esession_store::{
    AccountStore, KdfParams, KeyId, KeyStatus, SasState, Store, StoreError, Unlock,
};

fn rs(client: &str, secret: &[u8], created: u64) -> RetainedSecret {
    RetainedSecret {
        client: client.to_owned(),
        secret: SecretBytes::from_slice(secret),
        created,
        verified: false,
    }
}

/// (client, secret, created, verified) of every retained secret, in order.
fn summary(list: &[RetainedSecret]) -> Vec<(String, Vec<u8>, u64, bool)> {
    list.iter()
        .map(|s| {
            (
                s.client.clone(),
                s.secret.expose().to_vec(),
                s.created,
                s.verified,
            )
        })
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

// ---- the trait --------------------------------------------------------------

#[test]
fn trait_calls_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = new_store(dir.path(), "pw");
    let mut trust = store.account(ME).unwrap();
    assert!(trust.retained_secrets("bob@y").unwrap().is_empty());
    assert!(trust.other_secret("bob@y").unwrap().is_none());

    trust
        .store_retained_secret("bob@y", rs("laptop", b"one", 10))
        .unwrap();
    trust
        .store_retained_secret("bob@y", rs("phone", b"two", 11))
        .unwrap();
    trust
        .store_retained_secret("bob@y", rs("laptop", b"three", 12))
        .unwrap();
    let got = summary(&trust.retained_secrets("bob@y").unwrap());
    assert_eq!(
        got,
        vec![
            ("laptop".into(), b"three".to_vec(), 12, false),
            ("phone".into(), b"two".to_vec(), 11, false),
            ("laptop".into(), b"one".to_vec(), 10, false),
        ]
    );

    // A third secret for laptop pushes out the oldest (AMB-57).
    trust
        .store_retained_secret("bob@y", rs("laptop", b"four", 13))
        .unwrap();
    let clients: Vec<_> = summary(&trust.retained_secrets("bob@y").unwrap())
        .into_iter()
        .map(|(c, s, _, _)| (c, s))
        .collect();
    assert_eq!(
        clients,
        vec![
            ("laptop".into(), b"four".to_vec()),
            ("laptop".into(), b"three".to_vec()),
            ("phone".into(), b"two".to_vec()),
        ]
    );

    trust.confirm_retained_secret("bob@y", "laptop").unwrap();
    trust.mark_verified("bob@y", "phone").unwrap();
    let got = summary(&trust.retained_secrets("bob@y").unwrap());
    assert_eq!(
        got,
        vec![
            ("laptop".into(), b"four".to_vec(), 13, false),
            ("phone".into(), b"two".to_vec(), 11, true),
        ]
    );

    trust
        .set_other_secret("bob@y", SecretBytes::from_slice("pässword".as_bytes()))
        .unwrap();
    assert_eq!(
        trust.other_secret("bob@y").unwrap().unwrap().expose(),
        "pässword".as_bytes()
    );
    // Scoping: another account and another peer see nothing.
    let other = store.account("other@example.org").unwrap();
    assert!(other.retained_secrets("bob@y").unwrap().is_empty());
    assert!(other.other_secret("bob@y").unwrap().is_none());
    assert!(trust.retained_secrets("carol@z").unwrap().is_empty());
}

/// A tiny deterministic generator for the operation sequences.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

#[test]
fn behaves_exactly_like_memory_trust_store() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = new_store(dir.path(), "pw");
    let peers = ["bob@y", "carol@z", "dave@w"];
    let clients = ["a", "b", "c"];
    for seed in 0..4u64 {
        // A fresh account per seed: an empty trust store, like a new MemoryTrustStore.
        let mut disk = store.account(&format!("me{seed}@example.org")).unwrap();
        let mut memory = MemoryTrustStore::new();
        let mut rng = Lcg(seed);
        for step in 0..150u64 {
            let peer = peers[rng.next(3) as usize];
            let client = clients[rng.next(3) as usize];
            match rng.next(10) {
                0..=3 => {
                    let secret = format!("s{seed}-{step}");
                    let verified = rng.next(4) == 0;
                    let make = || RetainedSecret {
                        client: client.to_owned(),
                        secret: SecretBytes::from_slice(secret.as_bytes()),
                        created: step * 7,
                        verified,
                    };
                    disk.store_retained_secret(peer, make()).unwrap();
                    memory.store_retained_secret(peer, make()).unwrap();
                }
                4 | 5 => {
                    disk.confirm_retained_secret(peer, client).unwrap();
                    memory.confirm_retained_secret(peer, client).unwrap();
                }
                6 => {
                    disk.mark_verified(peer, client).unwrap();
                    memory.mark_verified(peer, client).unwrap();
                }
                7 => {
                    let oss = format!("pw{step}");
                    disk.set_other_secret(peer, SecretBytes::from_slice(oss.as_bytes()))
                        .unwrap();
                    memory.set_other_secret(peer, SecretBytes::from_slice(oss.as_bytes()));
                }
                _ => {} // reads only
            }
            for peer in peers {
                assert_eq!(
                    summary(&disk.retained_secrets(peer).unwrap()),
                    summary(&memory.retained_secrets(peer).unwrap()),
                    "seed {seed} step {step} peer {peer}"
                );
                assert_eq!(
                    disk.other_secret(peer)
                        .unwrap()
                        .map(|s| s.expose().to_vec()),
                    memory
                        .other_secret(peer)
                        .unwrap()
                        .map(|s| s.expose().to_vec()),
                    "seed {seed} step {step} peer {peer}"
                );
                // ESN-35's extended search (created values are increasing, so
                // newest first means the same order in both stores).
                let since = step.saturating_sub(30) * 7;
                let others = |list: Vec<(String, RetainedSecret)>| {
                    list.into_iter()
                        .map(|(p, s)| (p, summary(&[s])))
                        .collect::<Vec<_>>()
                };
                assert_eq!(
                    others(
                        disk.retained_secrets_of_other_peers(peer, since, 4)
                            .unwrap()
                    ),
                    others(
                        memory
                            .retained_secrets_of_other_peers(peer, since, 4)
                            .unwrap()
                    ),
                    "seed {seed} step {step} except {peer}"
                );
            }
        }
    }
}

#[test]
fn retained_secrets_of_other_peers_are_newest_first_within_the_bounds_esn_35() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = new_store(dir.path(), "pw");
    let mut disk = store.account(ME).unwrap();
    let mut memory = MemoryTrustStore::new();
    for (peer, client, secret, created) in [
        ("bob@y", "laptop", b"b1", 10),
        ("carol@z", "phone", b"c1", 20),
        ("dave@w", "pc", b"d1", 30),
        ("carol@z", "tablet", b"c2", 40),
        ("bob@y", "laptop", b"b2", 50),
    ] {
        disk.store_retained_secret(peer, rs(client, secret, created))
            .unwrap();
        memory
            .store_retained_secret(peer, rs(client, secret, created))
            .unwrap();
    }
    let listed = |trust: &dyn TrustStore, except: &str, since: u64, limit: usize| {
        trust
            .retained_secrets_of_other_peers(except, since, limit)
            .unwrap()
            .into_iter()
            .map(|(peer, s)| (peer, s.client, s.secret.expose().to_vec(), s.created))
            .collect::<Vec<_>>()
    };
    for trust in [&disk as &dyn TrustStore, &memory] {
        // Every peer but bob, newest first.
        assert_eq!(
            listed(trust, "bob@y", 0, 10),
            vec![
                (
                    "carol@z".to_owned(),
                    "tablet".to_owned(),
                    b"c2".to_vec(),
                    40
                ),
                ("dave@w".to_owned(), "pc".to_owned(), b"d1".to_vec(), 30),
                ("carol@z".to_owned(), "phone".to_owned(), b"c1".to_vec(), 20),
            ]
        );
        // The limit keeps the newest; `created_since` is inclusive.
        assert_eq!(
            listed(trust, "carol@z", 30, 10),
            vec![
                ("bob@y".to_owned(), "laptop".to_owned(), b"b2".to_vec(), 50),
                ("dave@w".to_owned(), "pc".to_owned(), b"d1".to_vec(), 30),
            ]
        );
        assert_eq!(listed(trust, "carol@z", 0, 1).len(), 1);
        assert_eq!(listed(trust, "carol@z", 0, 0), vec![]);
        assert_eq!(listed(trust, "nobody@x", 51, 10), vec![]);
    }
}

#[test]
fn account_store_is_send_and_boxes_as_the_cores_trust_store() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<AccountStore>();
    assert_send_sync::<Store>();

    let dir = tempfile::tempdir().unwrap();
    let (store, _) = new_store(dir.path(), "pw");
    let mut boxed: Box<dyn TrustStore + Send> = Box::new(store.account(ME).unwrap());
    let handle = std::thread::spawn(move || {
        boxed
            .store_retained_secret("bob@y", rs("laptop", b"from a thread", 5))
            .unwrap();
        boxed
    });
    let boxed = handle.join().unwrap();
    assert_eq!(boxed.retained_secrets("bob@y").unwrap().len(), 1);
    // The Store handle sees what the boxed view wrote (same connection).
    assert_eq!(store.retained_secret_info(ME, "bob@y").unwrap().len(), 1);
}

#[test]
fn failures_map_to_trust_store_errors_without_secret_data() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = new_store(dir.path(), "pw");
    let mut trust = store.account(ME).unwrap();
    let err = trust
        .store_retained_secret("bob@y", rs("laptop", b"TOPSECRET", u64::MAX))
        .unwrap_err();
    assert!(err.0.contains("out of range"), "{err}");
    assert!(!err.0.contains("TOPSECRET"));
    assert!(trust.retained_secrets("bob@y").unwrap().is_empty());
    assert!(matches!(store.account(""), Err(StoreError::Invalid(_))));
    assert!(matches!(
        store.account("me@example.org/laptop"),
        Err(StoreError::Invalid(_))
    ));
}

// ---- the typed API ------------------------------------------------------------------

#[test]
fn signing_keys_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = new_store(dir.path(), "pw");
    let k1 = store
        .add_signing_key(
            ME,
            "rsa",
            b"<KeyValue>1</KeyValue>".to_vec(),
            SecretBytes::from_slice(b"private-1"),
        )
        .unwrap();
    let k2 = store
        .add_signing_key(
            ME,
            "dsa",
            b"pub-2".to_vec(),
            SecretBytes::from_slice(b"private-2"),
        )
        .unwrap();
    assert_ne!(k1, k2);
    let list = store.signing_keys(ME).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].id, k1);
    assert_eq!(list[0].algorithm, "rsa");
    assert_eq!(list[0].public_key, b"<KeyValue>1</KeyValue>");
    assert!(list[0].created > 1_600_000_000);
    assert_eq!(list[1].algorithm, "dsa");
    assert_eq!(
        store.signing_key_private(ME, k2).unwrap().expose(),
        b"private-2"
    );

    // Scoped to the account.
    assert!(store.signing_keys("other@x").unwrap().is_empty());
    assert!(matches!(
        store.signing_key_private("other@x", k1),
        Err(StoreError::NotFound(_))
    ));

    store.delete_signing_key(ME, k1).unwrap();
    assert!(matches!(
        store.signing_key_private(ME, k1),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_signing_key(ME, k1),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.signing_key_private(ME, KeyId(999)),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.signing_keys(ME).unwrap().len(), 1);
}

#[test]
fn peer_keys_report_new_known_other_jid_and_changed_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = new_store(dir.path(), "pw");
    let fp_a = vec![0xaa; 32];
    let fp_b = vec![0xbb; 32];

    let first = store
        .record_peer_key(ME, "bob@y", fp_a.clone(), b"key-a".to_vec(), 100)
        .unwrap();
    assert_eq!(first.status, KeyStatus::New);
    assert!(!first.status.is_alert());

    let again = store
        .record_peer_key(ME, "bob@y", fp_a.clone(), b"key-a".to_vec(), 200)
        .unwrap();
    assert_eq!(again.status, KeyStatus::Known);
    assert_eq!(again.key_id, first.key_id);

    // ESN-50: a known key under another JID.
    let moved = store
        .record_peer_key(ME, "mallory@z", fp_a.clone(), b"key-a".to_vec(), 300)
        .unwrap();
    assert_eq!(moved.status, KeyStatus::SeenWithOtherJid);
    assert!(moved.status.is_alert());
    assert_eq!(moved.other_jids, vec!["bob@y".to_owned()]);

    // ESN-51: bob shows a different key.
    let changed = store
        .record_peer_key(ME, "bob@y", fp_b.clone(), b"key-b".to_vec(), 400)
        .unwrap();
    assert_eq!(changed.status, KeyStatus::KeyChanged);
    assert_eq!(changed.previous_fingerprints, vec![fp_a.clone()]);
    assert!(changed.other_jids.is_empty());

    // Petname and verified flag, reported on later sightings.
    store.set_petname(ME, &fp_a, Some("Bob's laptop")).unwrap();
    store.set_key_verified(ME, &fp_a, true).unwrap();
    let seen = store
        .record_peer_key(ME, "bob@y", fp_a.clone(), b"key-a".to_vec(), 500)
        .unwrap();
    assert_eq!(seen.status, KeyStatus::Known);
    assert!(seen.verified);
    assert_eq!(seen.petname.as_deref(), Some("Bob's laptop"));

    let all = store.peer_keys(ME).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].fingerprint, fp_a);
    assert_eq!(all[0].keyvalue, b"key-a");
    assert_eq!(all[0].first_seen, 100);
    let jids: Vec<_> = all[0]
        .jids
        .iter()
        .map(|j| (j.jid.as_str(), j.first_seen, j.last_seen))
        .collect();
    assert_eq!(jids, vec![("bob@y", 100, 500), ("mallory@z", 300, 300)]);
    assert!(!all[1].verified);
    assert_eq!(all[1].petname, None);

    // Bob's keys, most recently seen first.
    let bobs: Vec<_> = store
        .peer_keys_of(ME, "bob@y")
        .unwrap()
        .into_iter()
        .map(|k| k.fingerprint)
        .collect();
    assert_eq!(bobs, vec![fp_a.clone(), fp_b.clone()]);
    assert!(store.peer_keys_of(ME, "nobody@y").unwrap().is_empty());
    // Another account remembers nothing of this.
    assert!(store.peer_keys("other@x").unwrap().is_empty());
    let fresh = store
        .record_peer_key("other@x", "bob@y", fp_b.clone(), b"key-b".to_vec(), 1)
        .unwrap();
    assert_eq!(fresh.status, KeyStatus::New);

    store.set_petname(ME, &fp_a, None).unwrap();
    assert_eq!(store.peer_keys(ME).unwrap()[0].petname, None);
    assert!(matches!(
        store.set_petname(ME, &[1, 2, 3], Some("x")),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.set_key_verified(ME, &[1, 2, 3], true),
        Err(StoreError::NotFound(_))
    ));
    store.delete_peer_key(ME, &fp_b).unwrap();
    assert_eq!(store.peer_keys(ME).unwrap().len(), 1);
    assert!(matches!(
        store.delete_peer_key(ME, &fp_b),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn a_key_changed_to_one_known_elsewhere_reports_both() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = new_store(dir.path(), "pw");
    store
        .record_peer_key(ME, "bob@y", vec![1], b"k1".to_vec(), 1)
        .unwrap();
    store
        .record_peer_key(ME, "carol@z", vec![2], b"k2".to_vec(), 2)
        .unwrap();
    let obs = store
        .record_peer_key(ME, "bob@y", vec![2], b"k2".to_vec(), 3)
        .unwrap();
    assert_eq!(obs.status, KeyStatus::KeyChanged);
    assert_eq!(obs.previous_fingerprints, vec![vec![1]]);
    assert_eq!(obs.other_jids, vec!["carol@z".to_owned()]);
}

#[test]
fn sas_states_and_profiles_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = new_store(dir.path(), "pw");
    assert_eq!(store.sas_state(ME, "bob@y", "laptop").unwrap(), None);
    store
        .set_sas_state(ME, "bob@y", "laptop", SasState::Pending, 10)
        .unwrap();
    store
        .set_sas_state(ME, "bob@y", "phone", SasState::Dismissed, 11)
        .unwrap();
    store
        .set_sas_state(ME, "bob@y", "laptop", SasState::Confirmed, 12)
        .unwrap();
    let laptop = store.sas_state(ME, "bob@y", "laptop").unwrap().unwrap();
    assert_eq!(laptop.state, SasState::Confirmed);
    assert_eq!(laptop.updated, 12);
    let all: Vec<_> = store
        .sas_states(ME)
        .unwrap()
        .into_iter()
        .map(|r| (r.client, r.state))
        .collect();
    assert_eq!(
        all,
        vec![
            ("laptop".to_owned(), SasState::Confirmed),
            ("phone".to_owned(), SasState::Dismissed)
        ]
    );
    assert!(store.sas_states("other@x").unwrap().is_empty());

    assert_eq!(store.contact_profile(ME, "bob@y").unwrap(), None);
    store
        .set_contact_profile(ME, "bob@y", Some("gajim"))
        .unwrap();
    assert_eq!(
        store.contact_profile(ME, "bob@y").unwrap().as_deref(),
        Some("gajim")
    );
    store.set_contact_profile(ME, "bob@y", None).unwrap();
    assert_eq!(store.contact_profile(ME, "bob@y").unwrap(), None);
}

#[test]
fn other_secrets_set_replace_and_clear() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = new_store(dir.path(), "pw");
    assert!(store.other_secret(ME, "bob@y").unwrap().is_none());
    store
        .set_other_secret(ME, "bob@y", SecretBytes::from_slice(b"one"))
        .unwrap();
    store
        .set_other_secret(ME, "bob@y", SecretBytes::from_slice(b"two"))
        .unwrap();
    assert_eq!(
        store.other_secret(ME, "bob@y").unwrap().unwrap().expose(),
        b"two"
    );
    assert_eq!(
        store
            .account(ME)
            .unwrap()
            .other_secret("bob@y")
            .unwrap()
            .unwrap()
            .expose(),
        b"two"
    );
    assert!(store.clear_other_secret(ME, "bob@y").unwrap());
    assert!(!store.clear_other_secret(ME, "bob@y").unwrap());
    assert!(store.other_secret(ME, "bob@y").unwrap().is_none());
}

#[test]
fn forget_contact_deletes_everything_about_that_contact_only() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = new_store(dir.path(), "pw");
    let mut trust = store.account(ME).unwrap();
    for peer in ["bob@y", "carol@z"] {
        trust.store_retained_secret(peer, rs("c", b"s", 1)).unwrap();
        store
            .set_other_secret(ME, peer, SecretBytes::from_slice(b"pw"))
            .unwrap();
        store
            .set_sas_state(ME, peer, "c", SasState::Pending, 1)
            .unwrap();
        store.set_contact_profile(ME, peer, Some("gajim")).unwrap();
    }
    // One key only bob used, one shared by bob and carol.
    store
        .record_peer_key(ME, "bob@y", vec![1], b"k1".to_vec(), 1)
        .unwrap();
    store
        .record_peer_key(ME, "bob@y", vec![2], b"k2".to_vec(), 2)
        .unwrap();
    store
        .record_peer_key(ME, "carol@z", vec![2], b"k2".to_vec(), 3)
        .unwrap();
    // The same contact under another of our accounts is not touched.
    store
        .set_other_secret("other@x", "bob@y", SecretBytes::from_slice(b"keep"))
        .unwrap();
    assert_eq!(store.contacts(ME).unwrap(), vec!["bob@y", "carol@z"]);

    store.forget_contact(ME, "bob@y").unwrap();

    assert!(trust.retained_secrets("bob@y").unwrap().is_empty());
    assert!(store.other_secret(ME, "bob@y").unwrap().is_none());
    assert!(store.sas_state(ME, "bob@y", "c").unwrap().is_none());
    assert!(store.contact_profile(ME, "bob@y").unwrap().is_none());
    assert!(store.peer_keys_of(ME, "bob@y").unwrap().is_empty());
    let keys = store.peer_keys(ME).unwrap();
    assert_eq!(keys.len(), 1, "the key only bob used is gone");
    assert_eq!(keys[0].fingerprint, vec![2]);
    assert_eq!(keys[0].jids.len(), 1);
    assert_eq!(keys[0].jids[0].jid, "carol@z");
    assert_eq!(store.contacts(ME).unwrap(), vec!["carol@z"]);
    assert_eq!(trust.retained_secrets("carol@z").unwrap().len(), 1);
    assert!(store.other_secret("other@x", "bob@y").unwrap().is_some());
    assert_eq!(store.accounts().unwrap(), vec![ME, "other@x"]);
    assert_eq!(store.check().unwrap().peer_keys, 1);
}

#[test]
fn expiry_follows_the_configured_lifetime_and_purges() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = new_store(dir.path(), "pw");
    assert_eq!(store.retained_secret_lifetime().unwrap(), 180 * 24 * 3600);
    store.set_retained_secret_lifetime(100).unwrap();
    let mut trust = store.account(ME).unwrap();
    trust
        .store_retained_secret("bob@y", rs("a", b"old", 1000))
        .unwrap();
    trust
        .store_retained_secret("bob@y", rs("b", b"new", 1050))
        .unwrap();
    let info = store.retained_secret_info(ME, "bob@y").unwrap();
    assert_eq!(
        info.iter()
            .map(|i| (i.created, i.expires))
            .collect::<Vec<_>>(),
        vec![(1050, 1150), (1000, 1100)]
    );
    // Expired ones are still returned: the core filters by its own lifetime.
    assert_eq!(trust.retained_secrets("bob@y").unwrap().len(), 2);

    assert_eq!(store.purge_expired(1099).unwrap(), 0);
    assert_eq!(
        store.purge_expired(1100).unwrap(),
        1,
        "expired at created + lifetime"
    );
    let left = summary(&trust.retained_secrets("bob@y").unwrap());
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].1, b"new");

    // Changing the lifetime recomputes expiry, saturating instead of overflowing.
    store
        .set_retained_secret_lifetime(u64::from(u32::MAX))
        .unwrap();
    assert_eq!(
        store.retained_secret_info(ME, "bob@y").unwrap()[0].expires,
        1050 + u64::from(u32::MAX)
    );
    store.set_retained_secret_lifetime(i64::MAX as u64).unwrap();
    assert_eq!(
        store.retained_secret_info(ME, "bob@y").unwrap()[0].expires,
        i64::MAX as u64
    );
    assert_eq!(store.purge_expired(u64::MAX).unwrap(), 1);
}

// ---- persistence ------------------------------------------------------------------

#[test]
fn delivered_message_ids_survive_a_restart_and_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = new_store(dir.path(), "pw");
    let mut trust = store.account(ME).unwrap();
    assert_eq!(trust.record_delivery("bob@y", "m1"), Ok(true));
    assert_eq!(trust.record_delivery("bob@y", "m1"), Ok(false));
    // Per contact, and per account.
    assert_eq!(trust.record_delivery("carol@y", "m1"), Ok(true));
    assert_eq!(
        store
            .account("other@x")
            .unwrap()
            .record_delivery("bob@y", "m1"),
        Ok(true)
    );
    drop(trust);
    drop(store);

    // A crash and restart: a resend of m1 is still known (issue 10).
    let store = open(&path, "pw");
    let mut trust = store.account(ME).unwrap();
    assert_eq!(trust.record_delivery("bob@y", "m1"), Ok(false));
    // Only the newest 512 per contact are kept: m1 is forgotten after 512 more.
    for i in 0..512 {
        assert_eq!(trust.record_delivery("bob@y", &format!("n{i}")), Ok(true));
    }
    assert_eq!(trust.record_delivery("bob@y", "n511"), Ok(false));
    assert_eq!(trust.record_delivery("bob@y", "n0"), Ok(false));
    assert_eq!(trust.record_delivery("bob@y", "m1"), Ok(true));
    // carol's record is untouched by bob's trimming.
    assert_eq!(trust.record_delivery("carol@y", "m1"), Ok(false));

    // Forgetting a contact forgets what it delivered.
    store.forget_contact(ME, "carol@y").unwrap();
    assert_eq!(trust.record_delivery("carol@y", "m1"), Ok(true));
}

#[test]
fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = new_store(dir.path(), "pw");
    let mut trust = store.account(ME).unwrap();
    trust
        .store_retained_secret("bob@y", rs("a", b"rs-a", 5))
        .unwrap();
    trust
        .store_retained_secret("bob@y", rs("a", b"rs-a2", 6))
        .unwrap();
    trust.mark_verified("bob@y", "a").unwrap();
    trust
        .set_other_secret("bob@y", SecretBytes::from_slice(b"oss"))
        .unwrap();
    let key = store
        .add_signing_key(ME, "rsa", b"pub".to_vec(), SecretBytes::from_slice(b"priv"))
        .unwrap();
    store
        .record_peer_key(ME, "bob@y", vec![7; 32], b"kv".to_vec(), 9)
        .unwrap();
    store.set_petname(ME, &[7; 32], Some("Bob")).unwrap();
    store
        .set_sas_state(ME, "bob@y", "a", SasState::Pending, 3)
        .unwrap();
    store
        .set_contact_profile(ME, "bob@y", Some("gajim"))
        .unwrap();
    store.set_retained_secret_lifetime(1234).unwrap();
    let before_keys = store.peer_keys(ME).unwrap();
    let before_secrets = summary(&trust.retained_secrets("bob@y").unwrap());
    drop(trust);
    drop(store);

    let store = open(&path, "pw");
    let trust = store.account(ME).unwrap();
    assert_eq!(
        summary(&trust.retained_secrets("bob@y").unwrap()),
        before_secrets
    );
    assert_eq!(before_secrets.len(), 2);
    assert!(before_secrets.iter().all(|s| s.3));
    assert_eq!(
        trust.other_secret("bob@y").unwrap().unwrap().expose(),
        b"oss"
    );
    assert_eq!(
        store.signing_key_private(ME, key).unwrap().expose(),
        b"priv"
    );
    assert_eq!(store.peer_keys(ME).unwrap(), before_keys);
    assert_eq!(
        store.sas_state(ME, "bob@y", "a").unwrap().unwrap().state,
        SasState::Pending
    );
    assert_eq!(
        store.contact_profile(ME, "bob@y").unwrap().as_deref(),
        Some("gajim")
    );
    assert_eq!(store.retained_secret_lifetime().unwrap(), 1234);
    assert_eq!(
        store.kdf_params().unwrap(),
        Some(KdfParams::insecure_fast_for_tests())
    );
    let report = store.check().unwrap();
    assert_eq!(
        (
            report.schema_version,
            report.retained_secrets,
            report.other_secrets,
            report.signing_keys,
            report.peer_keys
        ),
        (esession_store::SCHEMA_VERSION, 2, 1, 1, 1)
    );
}

#[test]
fn create_refuses_an_existing_file_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = new_store(dir.path(), "pw");
    store
        .set_other_secret(ME, "bob@y", SecretBytes::from_slice(b"x"))
        .unwrap();
    drop(store);
    let before = file_bytes(&path);
    assert!(matches!(
        Store::create_with_params(&path, pass("pw"), KdfParams::insecure_fast_for_tests()),
        Err(StoreError::AlreadyExists { .. })
    ));
    assert_same_files(&before, &file_bytes(&path), "unchanged");
    assert!(
        open(&path, "pw")
            .other_secret(ME, "bob@y")
            .unwrap()
            .is_some()
    );
}

// ---- encryption at rest ------------------------------------------------------------

#[test]
fn secrets_never_reach_the_disk_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = new_store(dir.path(), "my passphrase");
    let retained = b"RETAINED-SECRET-0123456789abcdef".to_vec();
    let oss = b"OTHER-SHARED-SECRET-0123456789ab".to_vec();
    let private = b"PRIVATE-SIGNING-KEY-0123456789ab".to_vec();
    let mut trust = store.account(ME).unwrap();
    trust
        .store_retained_secret("bob@y", rs("laptop", &retained, 1))
        .unwrap();
    store
        .set_other_secret(ME, "bob@y", SecretBytes::from_slice(&oss))
        .unwrap();
    store
        .add_signing_key(
            ME,
            "rsa",
            b"PUBLIC".to_vec(),
            SecretBytes::from_slice(&private),
        )
        .unwrap();
    // While open, the pages are in the WAL; look there too.
    let open_files = file_bytes(&path);
    drop(trust);
    drop(store);
    let closed_files = file_bytes(&path);

    let mut seen_any = false;
    for (suffix, bytes) in open_files.iter().chain(closed_files.iter()) {
        let Some(bytes) = bytes else { continue };
        seen_any |= contains(bytes, b"PUBLIC");
        for (name, secret) in [
            ("retained secret", &retained[..]),
            ("other secret", &oss[..]),
            ("private key", &private[..]),
            ("passphrase", b"my passphrase"),
        ] {
            assert!(
                !contains(bytes, secret),
                "{name} in clear in trust.db{suffix}"
            );
        }
    }
    // Sanity check of the method: cleartext metadata is found.
    assert!(seen_any, "the public key should be stored in clear");
}

#[test]
fn ciphertexts_swapped_between_rows_do_not_decrypt() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = new_store(dir.path(), "pw");
    let mut trust = store.account(ME).unwrap();
    trust
        .store_retained_secret("bob@y", rs("a", b"secret-a", 1))
        .unwrap();
    trust
        .store_retained_secret("bob@y", rs("b", b"secret-b", 2))
        .unwrap();
    store
        .set_other_secret(ME, "bob@y", SecretBytes::from_slice(b"oss-bob"))
        .unwrap();
    store
        .set_other_secret(ME, "carol@z", SecretBytes::from_slice(b"oss-carol"))
        .unwrap();
    drop(trust);
    drop(store);

    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "UPDATE retained_secrets SET secret =
             (SELECT secret FROM retained_secrets WHERE client = 'b') WHERE client = 'a';
         UPDATE other_secrets SET secret =
             (SELECT secret FROM other_secrets WHERE peer = 'bob@y') WHERE peer = 'carol@z';",
    )
    .unwrap();
    drop(conn);

    let store = open(&path, "pw");
    let trust = store.account(ME).unwrap();
    // The row tag covers the sealed value, so the swap is reported as
    // tampering before the AEAD is even tried (which would fail too: see
    // seal.rs's tests); the other secrets have only the AEAD.
    let err = trust.retained_secrets("bob@y").unwrap_err();
    assert!(err.0.contains("tampering"), "{err}");
    assert!(matches!(
        store.other_secret(ME, "carol@z"),
        Err(StoreError::Corrupt(_))
    ));
    assert_eq!(
        store.other_secret(ME, "bob@y").unwrap().unwrap().expose(),
        b"oss-bob"
    );
    // The check reports the tag first.
    assert!(matches!(store.check(), Err(StoreError::Tampered { .. })));
}

// ---- unlocking ------------------------------------------------------------------------

#[test]
fn a_wrong_passphrase_is_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = new_store(dir.path(), "right");
    let mut trust = store.account(ME).unwrap();
    trust
        .store_retained_secret("bob@y", rs("a", b"s", 1))
        .unwrap();
    drop(trust);
    drop(store);
    let before = file_bytes(&path);
    assert!(before[0].1.is_some());

    let err = Store::open(&path, pass("wrong")).unwrap_err();
    assert!(matches!(err, StoreError::WrongPassphrase));
    assert_eq!(
        err.to_string(),
        "wrong passphrase: the store was not opened and nothing was changed"
    );
    assert_same_files(&before, &file_bytes(&path), "byte for byte");
    assert!(matches!(
        Store::open(&path, pass("")),
        Err(StoreError::WrongPassphrase)
    ));
    assert_same_files(&before, &file_bytes(&path), "unchanged");

    // A key file is not a passphrase.
    let key = dir.path().join("key");
    Store::generate_key_file(&key).unwrap();
    assert!(matches!(
        Store::open(&path, Unlock::KeyFile(key)),
        Err(StoreError::UnlockMismatch {
            expected: "passphrase",
            given: "key file"
        })
    ));
    assert_same_files(&before, &file_bytes(&path), "unchanged");

    let store = open(&path, "right");
    assert_eq!(
        store
            .account(ME)
            .unwrap()
            .retained_secrets("bob@y")
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn key_files_are_private_and_unlock_unattended_stores() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("keys").join("store.key");
    Store::generate_key_file(&key).unwrap();
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(key.parent().unwrap()), 0o700);
    assert_eq!(std::fs::read(&key).unwrap().len(), 32);
    assert!(matches!(
        Store::generate_key_file(&key),
        Err(StoreError::AlreadyExists { .. })
    ));

    let path = dir.path().join("trust.db");
    let store = Store::create(&path, Unlock::KeyFile(key.clone())).unwrap();
    assert_eq!(store.kdf_params().unwrap(), None);
    store
        .set_other_secret(ME, "bob@y", SecretBytes::from_slice(b"oss"))
        .unwrap();
    drop(store);
    let before = file_bytes(&path);

    // Readable by group or others: refused before anything is touched.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = Store::open(&path, Unlock::KeyFile(key.clone())).unwrap_err();
    assert!(
        matches!(err, StoreError::KeyFilePermissions { mode: 0o644, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("chmod 600"));
    assert!(matches!(
        Store::create(dir.path().join("b.db"), Unlock::KeyFile(key.clone())),
        Err(StoreError::KeyFilePermissions { .. })
    ));
    assert!(!dir.path().join("b.db").exists());
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(matches!(
        Store::open(&path, Unlock::KeyFile(key.clone())),
        Err(StoreError::KeyFilePermissions { .. })
    ));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    // Another key file, a truncated key file, a passphrase: refused, nothing changed.
    let other = dir.path().join("other.key");
    Store::generate_key_file(&other).unwrap();
    assert!(matches!(
        Store::open(&path, Unlock::KeyFile(other)),
        Err(StoreError::WrongKeyFile)
    ));
    let short = dir.path().join("short.key");
    std::fs::write(&short, [0u8; 31]).unwrap();
    std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        Store::open(&path, Unlock::KeyFile(short)),
        Err(StoreError::KeyFileInvalid { .. })
    ));
    assert!(matches!(
        Store::open(&path, pass("pw")),
        Err(StoreError::UnlockMismatch {
            expected: "key file",
            ..
        })
    ));
    assert_same_files(&before, &file_bytes(&path), "unchanged");

    let store = Store::open(&path, Unlock::KeyFile(key)).unwrap();
    assert_eq!(
        store.other_secret(ME, "bob@y").unwrap().unwrap().expose(),
        b"oss"
    );
}

#[test]
fn rekey_changes_the_passphrase_and_keeps_every_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = new_store(dir.path(), "old");
    let mut trust = store.account(ME).unwrap();
    trust
        .store_retained_secret("bob@y", rs("a", b"rs", 1))
        .unwrap();
    store
        .set_other_secret(ME, "bob@y", SecretBytes::from_slice(b"oss"))
        .unwrap();
    let key = store
        .add_signing_key(ME, "rsa", b"pub".to_vec(), SecretBytes::from_slice(b"priv"))
        .unwrap();
    let faster = KdfParams::new(16, 2, 1).unwrap();
    store.rekey(pass("new"), faster).unwrap();
    // The existing account view follows the new key at once.
    assert_eq!(
        trust.retained_secrets("bob@y").unwrap()[0].secret.expose(),
        b"rs"
    );
    assert_eq!(store.kdf_params().unwrap(), Some(faster));
    drop(trust);
    drop(store);

    assert!(matches!(
        Store::open(&path, pass("old")),
        Err(StoreError::WrongPassphrase)
    ));
    let store = open(&path, "new");
    assert_eq!(store.check().unwrap().retained_secrets, 1);
    assert_eq!(
        store.signing_key_private(ME, key).unwrap().expose(),
        b"priv"
    );

    // And on to a key file.
    let key_file = dir.path().join("k");
    Store::generate_key_file(&key_file).unwrap();
    store
        .rekey(Unlock::KeyFile(key_file.clone()), KdfParams::RECOMMENDED)
        .unwrap();
    drop(store);
    let store = Store::open(&path, Unlock::KeyFile(key_file)).unwrap();
    assert_eq!(
        store.other_secret(ME, "bob@y").unwrap().unwrap().expose(),
        b"oss"
    );
    assert_eq!(store.kdf_params().unwrap(), None);
}

#[test]
fn the_recommended_parameters_are_the_default_and_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trust.db");
    let store = Store::create(&path, pass("pw")).unwrap();
    assert_eq!(store.kdf_params().unwrap(), Some(KdfParams::RECOMMENDED));
    drop(store);
    let store = open(&path, "pw");
    assert_eq!(
        store
            .kdf_params()
            .unwrap()
            .map(|p| (p.m_cost_kib(), p.t_cost(), p.p_cost())),
        Some((65_536, 3, 1))
    );
}

// ---- not a store, too new ----------------------------------------------------------------

#[test]
fn files_that_are_not_stores_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();

    // A plain SQLite database, schema version 0.
    let plain = dir.path().join("plain.db");
    rusqlite::Connection::open(&plain)
        .unwrap()
        .execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
        .unwrap();
    let before = file_bytes(&plain);
    assert!(matches!(
        Store::open(&plain, pass("pw")),
        Err(StoreError::NotAStore { .. })
    ));
    assert_same_files(&before, &file_bytes(&plain), "unchanged");

    // Some other application's database that happens to have a user_version.
    let foreign = dir.path().join("foreign.db");
    let conn = rusqlite::Connection::open(&foreign).unwrap();
    conn.execute_batch("CREATE TABLE t (x INTEGER); PRAGMA user_version = 1;")
        .unwrap();
    drop(conn);
    assert!(matches!(
        Store::open(&foreign, pass("pw")),
        Err(StoreError::NotAStore { .. })
    ));

    // Not SQLite at all.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x5au8; 4096]).unwrap();
    assert!(matches!(
        Store::open(&junk, pass("pw")),
        Err(StoreError::NotAStore { .. })
    ));
    assert_eq!(std::fs::read(&junk).unwrap(), vec![0x5au8; 4096]);

    // Missing file: an I/O error, and nothing is created.
    let missing = dir.path().join("missing.db");
    assert!(matches!(
        Store::open(&missing, pass("pw")),
        Err(StoreError::Io { .. })
    ));
    assert!(!missing.exists());
}

#[test]
fn a_store_from_a_newer_version_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = new_store(dir.path(), "pw");
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let before = file_bytes(&path);
    let err = Store::open(&path, pass("pw")).unwrap_err();
    assert!(
        matches!(err, StoreError::TooNew { found: 99, supported } if supported == esession_store::SCHEMA_VERSION),
        "{err}"
    );
    assert_same_files(&before, &file_bytes(&path), "unchanged");
}

// ---- permissions ----------------------------------------------------------------------------

const UMASK_CHILD: &str = "ESESSION_STORE_UMASK_CHILD";

/// Creates a store under `umask 000` (in a re-executed copy of this test
/// binary) and checks that the directory is 0700 and every file 0600.
#[test]
fn files_are_private_whatever_the_umask() {
    if let Ok(dir) = std::env::var(UMASK_CHILD) {
        // Child: runs under umask 000.
        let dir = Path::new(&dir);
        let path = dir.join("sub").join("trust.db");
        let store =
            Store::create_with_params(&path, pass("pw"), KdfParams::insecure_fast_for_tests())
                .unwrap();
        store
            .set_other_secret(ME, "bob@y", SecretBytes::from_slice(b"x"))
            .unwrap();
        Store::generate_key_file(dir.join("keys").join("k")).unwrap();
        // A file created here with the default mode shows the umask is really 000.
        std::fs::write(dir.join("probe"), b"").unwrap();
        let mut report = String::new();
        for name in [
            "sub",
            "sub/trust.db",
            "sub/trust.db-wal",
            "sub/trust.db-shm",
            "keys/k",
            "probe",
        ] {
            report.push_str(&format!("@@{name}={:o}\n", mode(&dir.join(name))));
        }
        drop(store);
        let reopened = open(&path, "pw");
        reopened
            .set_contact_profile(ME, "bob@y", Some("p"))
            .unwrap();
        report.push_str(&format!(
            "@@reopened-wal={:o}\n",
            mode(&dir.join("sub/trust.db-wal"))
        ));
        print!("{report}");
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "files_are_private_whatever_the_umask",
            "--nocapture",
        ])
        .env(UMASK_CHILD, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let modes: std::collections::HashMap<&str, &str> = stdout
        .lines()
        .filter_map(|l| l.split_once("@@")?.1.split_once('='))
        .collect();
    assert_eq!(
        modes.get("probe"),
        Some(&"666"),
        "umask 000 in effect: {stdout}"
    );
    for (name, want) in [
        ("sub", "700"),
        ("sub/trust.db", "600"),
        ("sub/trust.db-wal", "600"),
        ("sub/trust.db-shm", "600"),
        ("keys/k", "600"),
        ("reopened-wal", "600"),
    ] {
        assert_eq!(modes.get(name), Some(&want), "{name}: {stdout}");
    }
}

// ---- several handles, several threads ---------------------------------------------------

#[test]
fn threads_share_one_store_without_losing_updates() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = new_store(dir.path(), "pw");
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let mut trust = store.account(&format!("me{t}@example.org")).unwrap();
            std::thread::spawn(move || {
                for i in 0..25u64 {
                    let client = format!("c{}", i % 5);
                    trust
                        .store_retained_secret(
                            "bob@y",
                            rs(&client, format!("{t}-{i}").as_bytes(), i),
                        )
                        .unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    for t in 0..4 {
        let got = store
            .account(&format!("me{t}@example.org"))
            .unwrap()
            .retained_secrets("bob@y")
            .unwrap();
        // 5 clients x (newest + predecessor).
        assert_eq!(got.len(), 10, "thread {t}");
        assert_eq!(got[0].secret.expose(), format!("{t}-24").as_bytes());
    }
    assert_eq!(store.check().unwrap().retained_secrets, 40);
}

#[test]
fn two_handles_on_one_file_see_each_other_and_a_rekey_stops_the_stale_one() {
    let dir = tempfile::tempdir().unwrap();
    let (first, path) = new_store(dir.path(), "pw");
    let second = open(&path, "pw");
    first
        .set_other_secret(ME, "bob@y", SecretBytes::from_slice(b"from first"))
        .unwrap();
    assert_eq!(
        second.other_secret(ME, "bob@y").unwrap().unwrap().expose(),
        b"from first"
    );
    let mut trust = second.account(ME).unwrap();
    trust
        .store_retained_secret("bob@y", rs("a", b"from second", 1))
        .unwrap();
    assert_eq!(first.retained_secret_info(ME, "bob@y").unwrap().len(), 1);

    first
        .rekey(pass("new"), KdfParams::insecure_fast_for_tests())
        .unwrap();
    // The stale handle neither reads nor writes under its old key.
    assert!(matches!(
        second.set_other_secret(ME, "bob@y", SecretBytes::from_slice(b"stale")),
        Err(StoreError::Rekeyed)
    ));
    let err = trust.retained_secrets("bob@y").unwrap_err();
    assert!(err.0.contains("re-keyed"), "{err}");
    assert!(matches!(second.check(), Err(StoreError::Rekeyed)));
    // The re-keying handle goes on, and everything is intact under the new key.
    assert_eq!(
        first.other_secret(ME, "bob@y").unwrap().unwrap().expose(),
        b"from first"
    );
    drop((trust, second, first));
    let reopened = open(&path, "new");
    assert_eq!(reopened.check().unwrap().retained_secrets, 1);
}

/// A small RSA-shaped `<KeyValue/>` (the store does not check key sizes).
fn kv(n: u8) -> esession::trust::KeyValue {
    esession::trust::KeyValue::Rsa {
        modulus: vec![0xc0, n, 1, 2, 3],
        exponent: vec![1, 0, 1],
    }
}

/// Both stores through the core's trait, side by side (ESN-49..52).
fn peer_key_script(store: &mut dyn TrustStore) -> Vec<String> {
    use esession::PeerKeyStatus;
    let mut log = Vec::new();
    let mut note = |what: String| log.push(what);
    let status = |o: esession::PeerKeyObservation| -> String {
        let s = match o.status {
            PeerKeyStatus::New => "new",
            PeerKeyStatus::Known => "known",
            PeerKeyStatus::SeenWithOtherJid => "other-jid",
            PeerKeyStatus::KeyChanged => "changed",
        };
        format!(
            "{s} others={:?} previous={} verified={} petname={:?}",
            o.other_jids,
            o.previous_fingerprints.len(),
            o.verified,
            o.petname
        )
    };
    note(status(store.record_peer_key("bob@x", &kv(1), 10).unwrap()));
    note(status(store.record_peer_key("bob@x", &kv(1), 20).unwrap()));
    let fp1 = esession::key_fingerprint(&kv(1));
    store.set_peer_key_verified(&fp1, true).unwrap();
    store.set_peer_key_petname(&fp1, Some("Bob")).unwrap();
    note(status(
        store.record_peer_key("carol@x", &kv(1), 30).unwrap(),
    ));
    note(status(store.record_peer_key("bob@x", &kv(2), 40).unwrap()));
    for peer in [Some("bob@x"), Some("carol@x"), Some("nobody@x"), None] {
        let keys = store.peer_keys(peer).unwrap();
        note(format!(
            "{peer:?}: {:?}",
            keys.iter()
                .map(|k| (k.key.clone(), k.petname.clone(), k.verified, k.jids.clone()))
                .collect::<Vec<_>>()
        ));
        for k in &keys {
            assert_eq!(k.fingerprint, esession::key_fingerprint(&k.key));
        }
    }
    assert!(store.set_peer_key_verified(&[0u8; 32], true).is_err());
    log
}

#[test]
fn peer_keys_through_the_core_trait_behave_like_memory_trust_store() {
    // ESN-49..52: the SQLite store answers the core exactly as MemoryTrustStore.
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = new_store(dir.path(), "pw");
    let mut account = store.account(ME).unwrap();
    let sqlite = peer_key_script(&mut account);
    let memory = peer_key_script(&mut MemoryTrustStore::new());
    assert_eq!(sqlite, memory);
    assert!(sqlite[0].starts_with("new"));
    assert!(sqlite[1].starts_with("known"));
    assert!(sqlite[2].starts_with("other-jid") && sqlite[2].contains("petname=Some(\"Bob\")"));
    assert!(sqlite[3].starts_with("changed"));
    // Newest first for bob@x: kv(2) then kv(1).
    assert!(sqlite[4].find("192, 2").unwrap() < sqlite[4].find("192, 1").unwrap());
}

#[test]
fn a_dismissed_sas_reminder_is_per_client_and_survives_reopening() {
    // Issue 5 item 10 / ESN-34: the core asks the store whether the user
    // dismissed the reminder; the answer must persist.
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = new_store(dir.path(), "pw");
    let mut trust = store.account(ME).unwrap();
    assert!(!trust.sas_reminder_dismissed("bob@y", "phone").unwrap());
    trust.dismiss_sas_reminder("bob@y", "phone").unwrap();
    assert!(trust.sas_reminder_dismissed("bob@y", "phone").unwrap());
    assert!(!trust.sas_reminder_dismissed("bob@y", "laptop").unwrap());
    assert!(!trust.sas_reminder_dismissed("carol@y", "phone").unwrap());
    drop(trust);
    drop(store);
    let store = Store::open(&path, pass("pw")).unwrap();
    let trust = store.account(ME).unwrap();
    assert!(trust.sas_reminder_dismissed("bob@y", "phone").unwrap());
    // A confirmed SAS is not a dismissed reminder.
    store
        .set_sas_state(ME, "bob@y", "laptop", SasState::Confirmed, 10)
        .unwrap();
    assert!(!trust.sas_reminder_dismissed("bob@y", "laptop").unwrap());
}

/// Issue 6: the compatibility profile is a per-(account, contact) setting;
/// `contact_profiles` lists what an application loads at start-up, clearing
/// removes the contact from the listing, and everything survives reopening
/// (the `contacts.profile` column is part of schema v1, so no migration).
#[test]
fn contact_profiles_are_per_account_and_contact_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = new_store(dir.path(), "pw");
    assert!(store.contact_profiles(ME).unwrap().is_empty());
    store
        .set_contact_profile(ME, "gajim@y", Some("gajim"))
        .unwrap();
    store
        .set_contact_profile(ME, "carol@z", Some("standard"))
        .unwrap();
    store
        .set_contact_profile("other@x", "dave@y", Some("gajim"))
        .unwrap();
    // Replacing a value keeps one row.
    store
        .set_contact_profile(ME, "carol@z", Some("gajim"))
        .unwrap();
    assert_eq!(
        store.contact_profiles(ME).unwrap(),
        vec![
            ("carol@z".to_owned(), "gajim".to_owned()),
            ("gajim@y".to_owned(), "gajim".to_owned())
        ]
    );
    assert_eq!(
        store.contact_profiles("other@x").unwrap(),
        vec![("dave@y".to_owned(), "gajim".to_owned())]
    );
    assert_eq!(store.contact_profile("other@x", "gajim@y").unwrap(), None);

    // Clearing: no profile, and no longer a known contact.
    store.set_contact_profile(ME, "carol@z", None).unwrap();
    assert_eq!(store.contact_profile(ME, "carol@z").unwrap(), None);
    assert!(!store.contacts(ME).unwrap().contains(&"carol@z".to_owned()));
    assert!(store.contacts(ME).unwrap().contains(&"gajim@y".to_owned()));
    // Clearing what was never set is fine.
    store.set_contact_profile(ME, "nobody@z", None).unwrap();
    drop(store);

    let store = open(&path, "pw");
    assert_eq!(
        store.contact_profiles(ME).unwrap(),
        vec![("gajim@y".to_owned(), "gajim".to_owned())]
    );
    assert_eq!(
        store.contact_profile(ME, "gajim@y").unwrap().as_deref(),
        Some("gajim")
    );
    assert_eq!(
        store.contact_profiles("other@x").unwrap(),
        vec![("dave@y".to_owned(), "gajim".to_owned())]
    );
    // A malformed account is refused like everywhere else.
    assert!(store.contact_profiles("").is_err());
}

/// x = p - 2: a valid exponent of any group (ESN-06 range), for storage tests.
fn exponent_of(group: esession_crypto::ModpGroup) -> Vec<u8> {
    use esession_crypto::GroupPrime;
    let mut x = group.prime_bytes();
    let last = x.len() - 1;
    x[last] -= 2; // p is odd and ends in ...FF for the MODP groups
    x
}

#[test]
fn offline_option_sets_are_kept_sealed_and_destroyed_when_taken_off_03_off_13() {
    use esession::offline::OfflineOptionSet;
    use esession_crypto::ModpGroup;
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = new_store(dir.path(), "pw");
    let account = store.account(ME).unwrap();
    let options = esession_wire::xml::parse_document(
        "<x xmlns='jabber:x:data' type='form'><field var='expires'><value>2026-12-06T00:00:00Z</value></field></x>",
    )
    .unwrap();
    let (x5, x14) = (
        exponent_of(ModpGroup::Group5),
        exponent_of(ModpGroup::Group14),
    );
    let set = OfflineOptionSet::restore(
        options.clone(),
        1_780_000_000,
        b"nonce-a".to_vec(),
        &[(ModpGroup::Group5, &x5), (ModpGroup::Group14, &x14)],
    )
    .unwrap();
    account.save_offline_options(&set).unwrap();
    // x is never on disk in clear (database, WAL or shared memory).
    drop(account);
    drop(store);
    for (_, bytes) in file_bytes(&path) {
        assert!(!bytes.is_some_and(|b| contains(&b, &x14[8..40])));
    }

    // A new process, the same passphrase: the set comes back whole, once.
    let store = open(&path, "pw");
    let account = store.account(ME).unwrap();
    let taken = account.take_offline_options().unwrap();
    assert_eq!(taken.unreadable, 0);
    let taken = taken.sets;
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].nonce(), b"nonce-a");
    assert_eq!(taken[0].expires_at, 1_780_000_000);
    assert_eq!(taken[0].groups(), [ModpGroup::Group5, ModpGroup::Group14]);
    let exponents = taken[0].private_exponents();
    assert_eq!(exponents[1].1.expose(), x14.as_slice());
    assert_eq!(
        esession_wire::xml::serialize(&taken[0].options, "").unwrap(),
        esession_wire::xml::serialize(&options, "").unwrap()
    );
    assert!(
        account.take_offline_options().unwrap().sets.is_empty(),
        "OFF-13: destroyed"
    );
}
