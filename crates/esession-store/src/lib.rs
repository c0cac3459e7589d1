//! A persistent trust store for ESessions (style practice 15): the file-backed
//! implementation of [`esession::TrustStore`], plus what the CLI needs beyond it.
//!
//! One SQLite file holds the trust state of any number of our accounts:
//!
//! | what | table | secret (sealed) | requirement ids |
//! |---|---|---|---|
//! | our signing keys | `signing_keys` | private key | ESN-20 |
//! | contacts' keys, every JID each was seen with, petnames, verified flags | `peer_keys`, `peer_key_jids` | – | ESN-49..52 |
//! | retained secrets per (account, contact, client): created, expires, verified | `retained_secrets` | the secret | ESN-35..42, AMB-57 |
//! | other shared secrets (passwords) per (account, contact) | `other_secrets` | the secret | ESN-36, AMB-58 |
//! | SAS confirmation state per (account, contact, client) | `sas_states` | – | ESN-34 |
//! | per-contact compatibility profile | `contacts` | – | AMB-54 |
//! | ids of messages already shown (newest 512 per contact), so a resend is never shown twice | `delivered_messages` | – | issue 10 |
//! | format, schema version, KDF salt and parameters, key check, lifetime | `meta`, `PRAGMA user_version` | – | |
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
//! petnames, timestamps, verified flags, SAS states, profiles, and the `meta`
//! table. Someone who reads the file learns who we have talked to and when;
//! someone who can write it can change those fields (they are not
//! authenticated), delete rows, or roll the file back to an older copy. The
//! store protects the *secrets*, not the metadata.
//!
//! The data key comes from the [`Unlock`] given to [`Store::create`] /
//! [`Store::open`]:
//! - a passphrase, through Argon2id with a random 16-byte salt and parameters
//!   kept in `meta` (default [`KdfParams::RECOMMENDED`]: 64 MiB, 3 passes,
//!   1 lane; [`Store::rekey`] raises them or changes the passphrase);
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
//! `PRAGMA user_version` holds the schema version (currently 2). Opening a file
//! of an older version runs the pending migrations in one transaction; a newer
//! one is refused with [`StoreError::TooNew`]. See `schema.rs` for how to add
//! version 3.

mod account;
mod error;
mod fsutil;
mod ops;
mod schema;
mod seal;
mod store;
mod types;

pub use account::AccountStore;
pub use error::StoreError;
pub use seal::KdfParams;
pub use store::{Store, Unlock};
pub use types::{
    CheckReport, KeyId, KeyObservation, KeyStatus, PeerKey, PeerKeyId, RetainedSecretInfo,
    SasRecord, SasState, SeenJid, SigningKeyInfo,
};

/// The schema version this build creates and upgrades to.
pub const SCHEMA_VERSION: u32 = schema::CURRENT_VERSION;
