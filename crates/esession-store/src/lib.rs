//! A persistent trust store for ESessions (style practice 15): the file-backed
//! implementation of [`esession::TrustStore`], plus what the CLI needs beyond it.
//!
//! One SQLite file holds the trust state of any number of our accounts:
//!
//! | what | table | secret (sealed) | authenticated by | requirement ids |
//! |---|---|---|---|---|
//! | our signing keys | `signing_keys` | private key | the seal (account, id, algorithm, public key in its associated data) | ESN-20 |
//! | contacts' keys, fingerprint bound to key value, petnames, verified flags | `peer_keys` | – | row tag | ESN-49, 52 |
//! | every JID each key was seen with, first and last sighting | `peer_key_jids` | – | row tag (also over the key's account and fingerprint) | ESN-50, 51 |
//! | retained secrets per (account, contact, client): created, expires, verified | `retained_secrets` | the secret | seal and row tag | ESN-35..42, AMB-57 |
//! | other shared secrets (passwords) per (account, contact) | `other_secrets` | the secret | the seal (account, contact) | ESN-36, AMB-58 |
//! | SAS confirmation state per (account, contact, client) | `sas_states` | – | row tag | ESN-34 |
//! | per-contact compatibility profile | `contacts` | – | row tag | AMB-54 |
//! | ids of messages already shown (newest 512 per contact), so a resend is never shown twice | `delivered_messages` | – | row tag | issue 10 |
//! | retained-secret lifetime | `meta` | – | row tag | |
//! | format, schema version, KDF salt and parameters, key check | `meta`, `PRAGMA user_version` | – | the key check (any change derives another key) | |
//!
//! ```no_run
//! # fn main() -> Result<(), esession_store::StoreError> {
//! use esession_crypto::SecretBytes;
//! use esession_store::{Store, Unlock};
//!
//! let pass = || Unlock::Passphrase(SecretBytes::from_slice(b"correct horse"));
//! let store = Store::create("/home/me/.local/share/esession/trust.db", pass())?;
//! drop(store);
//! let store = Store::open("/home/me/.local/share/esession/trust.db", pass())?;
//! let trust: Box<dyn esession::TrustStore + Send> = Box::new(store.account("me@example.org")?);
//! # let _ = trust; Ok(()) }
//! ```
//!
//! # Encryption at rest
//!
//! Every secret column (retained secrets, other shared secrets, our private
//! keys) is sealed with AES-256-GCM (AWS-LC) under a random 96-bit nonce per
//! value. The associated data binds each ciphertext to its table, column and
//! row identity (account, contact, client, row id and creation time for a
//! retained secret; account, row id, algorithm and public key for a private
//! key), so a ciphertext moved to another row or column does not decrypt.
//!
//! **Stored in clear**: JIDs, client names, fingerprints and public keys,
//! petnames, timestamps, verified flags, SAS states, profiles, message ids
//! and the `meta` table. Someone who reads the file learns who we have talked
//! to and when. Someone who can write it cannot change what we trust: see
//! the next section.
//!
//! # Tamper detection
//!
//! Every row that carries a trust decision has a `tag` column (schema
//! version 3): HMAC-SHA256 (AWS-LC) under a *row-tag key* derived from the
//! data key with HKDF-SHA256 and its own info label, over an unambiguous
//! encoding of the table name and every field of the row, each type-tagged
//! and length-prefixed (so NULL, an empty string and a moved field boundary
//! all differ). The fields are the row's whole content, its identity
//! included: account, contact, client, fingerprint, and the stable row id
//! where other data refers to it. A key-to-JID binding's tag also covers the
//! account and fingerprint of the key it points to, so it cannot be pointed
//! at another key. Exactly which fields each table's tag covers is listed in
//! `tags.rs`.
//!
//! Every read verifies the tag of each row it uses, in constant time, before
//! anything in the row is used; every write stores a fresh tag in the same
//! transaction. A write that changes part of a row (a verified flag, a
//! petname, the last sighting of a key, a new lifetime) or decides which rows
//! to keep (a client's retained secrets) verifies those rows first, so it
//! never re-tags someone else's edit nor acts on it; a write that replaces a
//! whole row (a SAS state, a profile) needs nothing from the old one.
//! Deleting needs no verification. [`Store::rekey`] verifies
//! every tag under the old key before re-tagging under the new one, and
//! [`Store::check`] verifies them all. A mismatch is
//! [`StoreError::Tampered`], naming the table and row (account, contact,
//! client as stored; never secret data), and the whole operation fails: the
//! core's [`esession::TrustStore`] calls return a
//! [`esession::TrustStoreError`], so nothing is inferred from the row (a key
//! is never reported verified or known, a secret never returned). An edit
//! made with plain SQLite without the passphrase (a flipped verified flag, a
//! petname, a key bound to another JID, a SAS state set to `confirmed`, a
//! profile, a retained secret's `verified` or `expires`, the lifetime, a
//! forged delivered-message record) or a row moved to another contact or
//! account is detected when that row is read. A truncated file is refused
//! at opening ([`StoreError::Corrupt`]). To recover, restore
//! a backup, or [`Store::forget_contact`] the contact named (deletion does not
//! verify) and verify that contact again.
//!
//! **What tags cannot detect** (honestly):
//! - *Deleted rows.* A per-row tag cannot vouch for a row that is gone, and a
//!   row edited so that no query selects it any more is as good as deleted.
//!   Deleting a verified flag's row, a petname, a SAS confirmation, a
//!   retained secret or a profile only makes us trust less (a key becomes new
//!   and unverified, a secret is renegotiated, a SAS comparison is asked for
//!   again). Deleting *key-to-JID bindings* is different: if every binding of
//!   a contact's JID is deleted, a different key shown for that JID later is
//!   reported as a new key ([`KeyStatus::New`], unverified) instead of a
//!   changed one ([`KeyStatus::KeyChanged`], ESN-51's alert); the user is not
//!   told that the key changed, though it is never shown as verified.
//!   Deleting a delivered-message record lets a resent message be shown
//!   twice. The exception is the retained-secret lifetime, which every store
//!   has: its absence is reported as tampering.
//! - *Rollback.* The whole file (or a row, with its tag) replaced by an older
//!   copy verifies: a revoked verification or a since-forgotten contact can
//!   come back. Detecting that needs state kept outside the file.
//! - *Edits made before the upgrade to version 3*: the migration tags every
//!   row as it finds it.
//! - Columns outside any tag: `signing_keys.created` (informational) and the
//!   row order of `delivered_messages` (which ids are trimmed first).
//!
//! Someone who knows the passphrase (or has the key file), or who controls
//! the process while the store is open, can of course change anything.
//!
//! The data key comes from the [`Unlock`] given to [`Store::create`] /
//! [`Store::open`]:
//! - a passphrase, through Argon2id with a random 16-byte salt and parameters
//!   kept in `meta` (default [`KdfParams::RECOMMENDED`]: 64 MiB, 3 passes,
//!   1 lane; [`Store::rekey`] raises them or changes the passphrase). The
//!   parameters and salt read from a file are checked before any derivation:
//!   at most 1 GiB, 64 passes, 16 lanes and 4 GiB-passes in all (about 21
//!   times the default work), and a salt of exactly 16 bytes; anything else
//!   is [`StoreError::KdfOutOfRange`], so an edited file cannot make opening
//!   take hours or exhaust memory;
//! - or a 32-byte key file for unattended use ([`Store::generate_key_file`]),
//!   through HKDF-SHA256 with the salt. A key file that group or others may
//!   access is refused.
//!
//! A key-check value (an AEAD seal of a constant) in `meta` is opened before
//! anything is written, so a wrong passphrase gives
//! [`StoreError::WrongPassphrase`] and leaves the database and its WAL byte for
//! byte unchanged (read-only when a WAL is present, so it is never
//! checkpointed; the only thing that can change is SQLite's wal-index in
//! `-shm`, which any reader rebuilds after a crash and which holds no data).
//! Every later transaction also compares the stored key check with the one it
//! opened with, so a handle whose store was re-keyed elsewhere gets
//! [`StoreError::Rekeyed`] instead of writing under a stale key.
//!
//! # Durability and atomicity
//!
//! SQLite in WAL mode with `synchronous=FULL`; every mutation, including each
//! trait call, is one `BEGIN IMMEDIATE` transaction (and every schema upgrade is
//! one transaction with its `user_version` bump). Killing the process at any
//! point leaves either the old or the new state, never a half-written secret;
//! a call that returned has been synced. `secure_delete` overwrites deleted
//! rows. The crash test (`tests/crash.rs`) kills a writer with SIGKILL 150
//! times at random moments and checks after each kill that the store opens,
//! passes [`Store::check`], and holds every update the writer had reported as
//! committed. (SIGKILL leaves the OS page cache intact; power loss is covered
//! by `synchronous=FULL`, not by that test.)
//!
//! # Files
//!
//! The database and its `-wal`/`-shm` companions have mode 0600, set
//! explicitly after creation (independent of the umask; SQLite also creates the
//! companions with the database's mode). A parent directory that
//! [`Store::create`] has to make gets mode 0700; an existing one is left alone.
//!
//! # Accounts, handles and threads
//!
//! [`Store::account`] returns an [`AccountStore`] scoped to one of our accounts,
//! which implements [`esession::TrustStore`] with exactly the semantics of
//! [`esession::MemoryTrustStore`]. The store and all its account views share
//! **one connection behind a mutex** (`Arc<Mutex<…>>`), rather than each view
//! opening its own connection: the passphrase is derived and checked once, the
//! views never contend for SQLite's write lock with each other (no
//! `SQLITE_BUSY` between them), a [`Store::rekey`] switches every view to the
//! new key atomically, and `AccountStore` is `Send + Sync` with a `'static`
//! lifetime, so it can be boxed into a `SessionManager` while the [`Store`]
//! stays with the application. Each operation holds the lock only for its
//! own short transaction. Other *processes* (a CLI beside a running client) may
//! open the same file: WAL lets readers run beside the writer, and writers wait
//! up to 5 s for each other.
//!
//! Peers and clients are opaque strings, as in the core (callers pass
//! normalised bare JIDs); our account must be a non-empty bare JID.
//!
//! # Schema versions
//!
//! `PRAGMA user_version` holds the schema version (currently 4: version 2
//! added `delivered_messages`, version 3 the row tags, version 4
//! `offline_option_sets`, the XEP-0187 option sets kept until we are back,
//! each x sealed with the options, N_A and expiry as associated data). Opening a file of an
//! older version runs the pending migrations in one transaction, and keeps
//! all its data; a newer one is refused with [`StoreError::TooNew`]. The
//! upgrade to version 3 also writes a fresh key-check value, so a process of
//! an older build that has the store open fails with [`StoreError::Rekeyed`]
//! instead of writing rows without tags. See `schema.rs` for how to add
//! version 4.

mod account;
mod connection;
mod error;
mod fsutil;
mod ops;
mod schema;
mod seal;
mod store;
mod tags;
mod types;

pub use account::{AccountStore, TakenOptionSets};
pub use error::StoreError;
pub use seal::KdfParams;
pub use store::{Store, Unlock};
pub use types::{
    CheckReport, History, HistoryEntry, KeyId, KeyObservation, KeyStatus, PeerKey, PeerKeyId,
    RetainedSecretInfo, SasRecord, SasState, SeenJid, SigningKeyInfo,
};

/// The schema version this build creates and upgrades to.
pub const SCHEMA_VERSION: u32 = schema::CURRENT_VERSION;
