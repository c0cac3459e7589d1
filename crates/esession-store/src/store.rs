//! The store handle: creating, unlocking, migrating, and the typed API.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use esession_crypto::SecretBytes;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::account::AccountStore;
use crate::connection::{Shared, State, ensure_current_key};
use crate::schema::{self, MIGRATIONS, Migration};
use crate::seal::{DataKey, KEY_LEN, KdfParams, SALT_LEN, random};
use crate::types::{
    CheckReport, KeyId, KeyObservation, PeerKey, RetainedSecretInfo, SasRecord, SasState,
    SigningKeyInfo,
};
use crate::{StoreError, fsutil, ops};

/// The `format` value in `meta` that marks an esession store.
const FORMAT: &str = "esession-store";
const KDF_ARGON2ID: &str = "argon2id";
const KDF_KEY_FILE: &str = "keyfile";
/// How long a connection waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How to unlock (derive the data key of) a store.
#[derive(Debug)]
pub enum Unlock {
    /// A passphrase, stretched with Argon2id (parameters and salt kept in the store).
    /// The bytes are used as given (UTF-8 of what the user typed).
    Passphrase(SecretBytes),
    /// A 32-byte key file with mode 0600 (for unattended use; see
    /// [`Store::generate_key_file`]). Refused if group or others may access it.
    KeyFile(PathBuf),
}

impl Unlock {
    fn kind(&self) -> &'static str {
        match self {
            Self::Passphrase(_) => "passphrase",
            Self::KeyFile(_) => "key file",
        }
    }
}

/// A data key with what `meta` needs to re-derive it.
struct Derived {
    key: DataKey,
    kdf: &'static str,
    salt: [u8; SALT_LEN],
    params: Option<KdfParams>,
}

fn derive_new(unlock: &Unlock, params: KdfParams) -> Result<Derived, StoreError> {
    let salt = *random::<SALT_LEN>()?;
    Ok(match unlock {
        Unlock::Passphrase(pass) => Derived {
            key: DataKey::from_passphrase(pass.expose(), &salt, params)?,
            kdf: KDF_ARGON2ID,
            salt,
            params: Some(params),
        },
        Unlock::KeyFile(path) => Derived {
            key: DataKey::from_key_material(fsutil::read_key_file(path)?.as_ref(), &salt)?,
            kdf: KDF_KEY_FILE,
            salt,
            params: None,
        },
    })
}

/// Writes what re-derives `derived` into `meta`; returns the new key-check value.
fn write_unlock_meta(conn: &Connection, derived: &Derived) -> Result<Vec<u8>, StoreError> {
    ops::meta_set(conn, "kdf", &derived.kdf)?;
    ops::meta_set(conn, "salt", &derived.salt.as_slice())?;
    let (m, t, p) = derived.params.map_or((None, None, None), |p| {
        (Some(p.m_cost_kib()), Some(p.t_cost()), Some(p.p_cost()))
    });
    ops::meta_set(conn, "argon2_m_kib", &m)?;
    ops::meta_set(conn, "argon2_t", &t)?;
    ops::meta_set(conn, "argon2_p", &p)?;
    let key_check = derived.key.key_check()?;
    ops::meta_set(conn, "key_check", &key_check)?;
    Ok(key_check)
}

/// What the unlocking phase reads from `meta` (over a read-only connection).
struct UnlockMeta {
    kdf: String,
    salt: Vec<u8>,
    params: Option<KdfParams>,
    key_check: Vec<u8>,
}

fn read_unlock_meta(path: &Path, migrations: &[Migration]) -> Result<UnlockMeta, StoreError> {
    let not_a_store = || StoreError::NotAStore {
        path: path.to_path_buf(),
    };
    // A wrong passphrase must leave the files as they were, so the connection
    // that reads the key check must not write:
    // - with a `-wal` file there (another process has the store open, or one
    //   was killed), read-only: it never checkpoints the WAL into the database.
    //   (It may rebuild SQLite's wal-index in `-shm`, which holds no data.)
    // - without one (the store was closed cleanly), read-write: a read-only
    //   connection would leave behind the empty `-wal`/`-shm` files it has to
    //   create, while a read-write one deletes them on close, and with an empty
    //   WAL its close-time checkpoint writes nothing.
    let [_, wal, _] = fsutil::db_files(path);
    let access = if wal.exists() {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    };
    let conn = Connection::open_with_flags(path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    let version = match schema::user_version(&conn) {
        Ok(v) => v,
        Err(StoreError::Database(rusqlite::Error::SqliteFailure(e, _)))
            if e.code == rusqlite::ErrorCode::NotADatabase =>
        {
            return Err(not_a_store());
        }
        Err(e) => return Err(e),
    };
    if version == 0 {
        return Err(not_a_store());
    }
    // SQLite refuses a file cut at a page boundary (its header says how many
    // pages there are), but reads a cut-off last page as zeros: a store file
    // is always a whole number of pages, so anything else was truncated.
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let size = std::fs::metadata(path)
        .map_err(|e| StoreError::io(path, e))?
        .len();
    if !u64::try_from(page_size).is_ok_and(|page| page != 0 && size.is_multiple_of(page)) {
        return Err(StoreError::Corrupt(format!(
            "the file is truncated ({size} bytes is not a whole number of {page_size}-byte pages)"
        )));
    }
    let supported = schema::newest(migrations);
    if version > supported {
        return Err(StoreError::TooNew {
            found: version,
            supported,
        });
    }
    let format = ops::meta_get_text(&conn, "format").map_err(|_| not_a_store())?;
    if format.as_deref() != Some(FORMAT) {
        return Err(not_a_store());
    }
    let missing = |what: &str| StoreError::Corrupt(format!("meta.{what} is missing"));
    let kdf = ops::meta_get_text(&conn, "kdf")?.ok_or_else(|| missing("kdf"))?;
    let salt = ops::meta_get_blob(&conn, "salt")?.ok_or_else(|| missing("salt"))?;
    let key_check = ops::meta_get_blob(&conn, "key_check")?.ok_or_else(|| missing("key_check"))?;
    // Everything that steers the key derivation is checked before it runs: a
    // file must not be able to make opening take hours or exhaust memory.
    let out_of_range = |reason: String| StoreError::KdfOutOfRange {
        path: path.to_path_buf(),
        reason,
    };
    if salt.len() != SALT_LEN {
        return Err(out_of_range(format!(
            "the salt is {} bytes, not {SALT_LEN}",
            salt.len()
        )));
    }
    let params = if kdf == KDF_ARGON2ID {
        let get = |name: &str| -> Result<u64, StoreError> {
            let v = ops::meta_get_i64(&conn, name)?.ok_or_else(|| missing(name))?;
            u64::try_from(v).map_err(|_| out_of_range(format!("{name} is negative ({v})")))
        };
        let (m, t, p) = (get("argon2_m_kib")?, get("argon2_t")?, get("argon2_p")?);
        if let Some(reason) = KdfParams::out_of_range(m, t, p) {
            return Err(out_of_range(reason));
        }
        // Within the bounds, so each fits in a u32.
        let narrow = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        Some(
            KdfParams::new(narrow(m), narrow(t), narrow(p))
                .map_err(|e| out_of_range(e.to_string()))?,
        )
    } else {
        None
    };
    Ok(UnlockMeta {
        kdf,
        salt,
        params,
        key_check,
    })
}

/// SQLite's "malformed" at opening (a truncated or overwritten file) as
/// [`StoreError::Corrupt`], which says to restore a backup.
fn damaged(err: StoreError) -> StoreError {
    match err {
        StoreError::Database(rusqlite::Error::SqliteFailure(e, detail))
            if e.code == rusqlite::ErrorCode::DatabaseCorrupt =>
        {
            StoreError::Corrupt(format!(
                "the file is damaged or truncated ({})",
                detail.unwrap_or_else(|| e.to_string())
            ))
        }
        other => other,
    }
}

fn derive_existing(unlock: &Unlock, meta: &UnlockMeta) -> Result<DataKey, StoreError> {
    let (key, wrong) = match (unlock, meta.kdf.as_str(), meta.params) {
        (Unlock::Passphrase(pass), KDF_ARGON2ID, Some(params)) => (
            DataKey::from_passphrase(pass.expose(), &meta.salt, params)?,
            StoreError::WrongPassphrase,
        ),
        (Unlock::KeyFile(path), KDF_KEY_FILE, _) => (
            DataKey::from_key_material(fsutil::read_key_file(path)?.as_ref(), &meta.salt)?,
            StoreError::WrongKeyFile,
        ),
        (given, KDF_ARGON2ID, _) => {
            return Err(StoreError::UnlockMismatch {
                expected: "passphrase",
                given: given.kind(),
            });
        }
        (given, KDF_KEY_FILE, _) => {
            return Err(StoreError::UnlockMismatch {
                expected: "key file",
                given: given.kind(),
            });
        }
        (_, other, _) => return Err(StoreError::Corrupt(format!("unknown kdf {other:?}"))),
    };
    if key.verifies(&meta.key_check) {
        Ok(key)
    } else {
        Err(wrong)
    }
}

/// Opens the read-write connection and sets the per-connection pragmas.
fn open_rw(path: &Path) -> Result<Connection, StoreError> {
    // No SQLITE_OPEN_CREATE: the file was created 0600 by us beforehand.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Corrupt(format!(
            "cannot switch to WAL (journal mode is {mode})"
        )));
    }
    // FULL: a commit is on disk when it returns, so "committed" means durable.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // Deleted secrets (already sealed) are overwritten rather than left in free pages.
    conn.pragma_update(None, "secure_delete", true)?;
    Ok(conn)
}

/// A persistent trust store: one SQLite file holding the trust state of any
/// number of our accounts. See the crate documentation.
///
/// Cheap to share: [`Store::account`] hands out [`AccountStore`]s that use the
/// same connection.
pub struct Store {
    shared: Arc<Shared>,
}

impl core::fmt::Debug for Store {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Creates a new store at `path` (which must not exist) with the
    /// recommended Argon2id parameters. Missing parent directories are created
    /// with mode 0700; the file and its `-wal`/`-shm` companions get mode 0600.
    pub fn create(path: impl AsRef<Path>, unlock: Unlock) -> Result<Self, StoreError> {
        Self::create_with_params(path, unlock, KdfParams::RECOMMENDED)
    }

    /// [`Store::create`] with explicit Argon2id parameters (ignored for a key file).
    pub fn create_with_params(
        path: impl AsRef<Path>,
        unlock: Unlock,
        params: KdfParams,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref();
        // Derive first: a bad key file creates nothing.
        let derived = derive_new(&unlock, params)?;
        fsutil::ensure_parent_dir(path)?;
        fsutil::create_private_file(path, &[])?;
        let result = Self::initialise(path, &derived);
        if result.is_err() {
            // Nothing was committed; leave no half-made file behind to block a retry.
            for file in fsutil::db_files(path) {
                let _ = std::fs::remove_file(file);
            }
        }
        let (conn, key_check) = result?;
        Ok(Self::from_parts(path, conn, derived.key, key_check))
    }

    fn initialise(path: &Path, derived: &Derived) -> Result<(Connection, Vec<u8>), StoreError> {
        let mut conn = open_rw(path)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        schema::apply_pending(&tx, &derived.key, MIGRATIONS)?;
        ops::meta_set(&tx, "format", &FORMAT)?;
        ops::set_lifetime_meta(&tx, &derived.key, ops::DEFAULT_RETAINED_LIFETIME)?;
        let key_check = write_unlock_meta(&tx, derived)?;
        tx.commit()?;
        fsutil::restrict_db_files(path)?;
        Ok((conn, key_check))
    }

    /// Opens and unlocks the store at `path`, then brings its schema up to date.
    ///
    /// The passphrase or key file is checked against the stored key-check value
    /// over a read-only connection before anything is written: a wrong one
    /// gives [`StoreError::WrongPassphrase`] (or [`StoreError::WrongKeyFile`]) and
    /// leaves the file byte for byte as it was.
    pub fn open(path: impl AsRef<Path>, unlock: Unlock) -> Result<Self, StoreError> {
        Self::open_with_migrations(path.as_ref(), unlock, MIGRATIONS)
    }

    pub(crate) fn open_with_migrations(
        path: &Path,
        unlock: Unlock,
        migrations: &[Migration],
    ) -> Result<Self, StoreError> {
        let meta = std::fs::metadata(path).map_err(|e| StoreError::io(path, e))?;
        if !meta.is_file() {
            return Err(StoreError::NotAStore {
                path: path.to_path_buf(),
            });
        }
        let unlock_meta = read_unlock_meta(path, migrations).map_err(damaged)?;
        let key = derive_existing(&unlock, &unlock_meta)?;
        let mut conn = open_rw(path)?;
        schema::migrate(&mut conn, &key, migrations)?;
        fsutil::restrict_db_files(path)?;
        // The key check as it is now: the version-3 migration (here or in
        // another process that opened the file at the same time) writes a
        // fresh one for the same key; a re-key in between gives a key check
        // this key does not open.
        let key_check = ops::meta_get_blob(&conn, "key_check")?
            .filter(|check| key.verifies(check))
            .ok_or(StoreError::Rekeyed)?;
        Ok(Self::from_parts(path, conn, key, key_check))
    }

    fn from_parts(path: &Path, conn: Connection, key: DataKey, key_check: Vec<u8>) -> Self {
        Self {
            shared: Arc::new(Shared {
                path: path.to_path_buf(),
                state: Mutex::new(State {
                    conn,
                    key,
                    key_check,
                }),
            }),
        }
    }

    /// Writes a new random 32-byte key file at `path` (which must not exist)
    /// with mode 0600, creating missing parent directories with mode 0700.
    pub fn generate_key_file(path: impl AsRef<Path>) -> Result<(), StoreError> {
        let path = path.as_ref();
        fsutil::ensure_parent_dir(path)?;
        let key = random::<KEY_LEN>()?;
        fsutil::create_private_file(path, key.as_ref())
    }

    /// Re-encrypts every secret and re-tags every tagged row under a key
    /// derived from `unlock` (a new passphrase, new Argon2id parameters, or a
    /// switch to or from a key file), with a fresh salt, in one transaction.
    /// Every row tag is verified under the old key first: a store someone
    /// tampered with is refused ([`StoreError::Tampered`]) rather than
    /// re-tagged. Handles on the store opened elsewhere (other processes,
    /// other [`Store::open`] calls) fail with [`StoreError::Rekeyed`] from
    /// then on and must be reopened; the [`AccountStore`]s of this handle
    /// follow at once.
    pub fn rekey(&self, unlock: Unlock, params: KdfParams) -> Result<(), StoreError> {
        let derived = derive_new(&unlock, params)?;
        let mut guard = self.shared.lock();
        let State {
            conn,
            key,
            key_check,
        } = &mut *guard;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        ensure_current_key(&tx, key_check)?;
        ops::reseal_all(&tx, key, &derived.key)?;
        let new_check = write_unlock_meta(&tx, &derived)?;
        tx.commit()?;
        *key = derived.key;
        *key_check = new_check;
        Ok(())
    }

    /// The Argon2id parameters protecting the store (`None` for a key file).
    pub fn kdf_params(&self) -> Result<Option<KdfParams>, StoreError> {
        self.shared.read(|conn, _| {
            if ops::meta_get_text(conn, "kdf")?.as_deref() != Some(KDF_ARGON2ID) {
                return Ok(None);
            }
            let get = |name: &str| -> Result<u32, StoreError> {
                let v = ops::meta_get_i64(conn, name)?.unwrap_or(0);
                u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("meta.{name} = {v}")))
            };
            Ok(Some(KdfParams::new(
                get("argon2_m_kib")?,
                get("argon2_t")?,
                get("argon2_p")?,
            )?))
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The schema version of the file (after migrations).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.shared.read(|conn, _| schema::user_version(conn))
    }

    /// The [`esession::TrustStore`] of our account `account` (a bare JID). It
    /// shares this store's connection and is `Send`, so it can be boxed into an
    /// `esession::SessionManager` while this handle stays with the application.
    pub fn account(&self, account: &str) -> Result<AccountStore, StoreError> {
        ops::check_account(account)?;
        Ok(AccountStore::new(
            Arc::clone(&self.shared),
            account.to_owned(),
        ))
    }

    /// Every account that has anything stored, sorted.
    pub fn accounts(&self) -> Result<Vec<String>, StoreError> {
        self.shared.read(|conn, _| ops::accounts(conn))
    }

    /// Every contact `account` has anything stored about, sorted.
    pub fn contacts(&self, account: &str) -> Result<Vec<String>, StoreError> {
        ops::check_account(account)?;
        self.shared.read(|conn, _| ops::contacts(conn, account))
    }

    /// Verifies the whole store: SQLite's integrity and foreign-key checks,
    /// every sealed value decrypts, every row tag verifies
    /// ([`StoreError::Tampered`] otherwise), at most two retained secrets per
    /// client.
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        self.shared.read(ops::check)
    }

    // ---- retained secrets -------------------------------------------------------

    /// The lifetime (seconds) used to compute `expires` of retained secrets.
    /// Defaults to the core's default, 180 days.
    pub fn retained_secret_lifetime(&self) -> Result<u64, StoreError> {
        self.shared.read(ops::retained_lifetime)
    }

    /// Sets the retained-secret lifetime and recomputes `expires` of every stored
    /// secret. (The core still applies its own lifetime when it reads them.)
    pub fn set_retained_secret_lifetime(&self, seconds: u64) -> Result<(), StoreError> {
        self.shared
            .write(|conn, key| ops::set_retained_lifetime(conn, key, seconds))
    }

    /// Metadata of the retained secrets of (`account`, `peer`), newest first.
    pub fn retained_secret_info(
        &self,
        account: &str,
        peer: &str,
    ) -> Result<Vec<RetainedSecretInfo>, StoreError> {
        ops::check_account(account)?;
        self.shared
            .read(|conn, key| ops::retained_secret_info(conn, key, account, peer))
    }

    /// Deletes every retained secret (all accounts) whose `expires <= now`.
    /// Returns how many.
    pub fn purge_expired(&self, now: u64) -> Result<usize, StoreError> {
        self.shared.write(|conn, _| ops::purge_expired(conn, now))
    }

    // ---- other shared secrets (ESN-36) ---------------------------------------------

    /// Sets the other shared secret (out-of-band password) agreed with `peer`:
    /// the UTF-8 bytes of the NFC-normalised password (AMB-58; normalising is the
    /// caller's job).
    pub fn set_other_secret(
        &self,
        account: &str,
        peer: &str,
        secret: SecretBytes,
    ) -> Result<(), StoreError> {
        ops::check_account(account)?;
        self.shared
            .write(|conn, key| ops::set_other_secret(conn, key, account, peer, &secret))
    }

    /// Removes the other shared secret of `peer`. Returns whether there was one.
    pub fn clear_other_secret(&self, account: &str, peer: &str) -> Result<bool, StoreError> {
        ops::check_account(account)?;
        self.shared
            .write(|conn, _| ops::clear_other_secret(conn, account, peer))
    }

    /// The other shared secret of `peer`, if any.
    pub fn other_secret(
        &self,
        account: &str,
        peer: &str,
    ) -> Result<Option<SecretBytes>, StoreError> {
        ops::check_account(account)?;
        self.shared
            .read(|conn, key| ops::other_secret(conn, key, account, peer))
    }

    // ---- our signing keys --------------------------------------------------------------

    /// Stores one of our signing keys: `algorithm` is a free-form name (e.g.
    /// `"rsa"`), `public_key` the public key as the caller encodes it (KeyValue
    /// XML or DER, kept in clear), `private_der` the private key (sealed).
    /// `created` is taken from the system clock.
    pub fn add_signing_key(
        &self,
        account: &str,
        algorithm: &str,
        public_key: Vec<u8>,
        private_der: SecretBytes,
    ) -> Result<KeyId, StoreError> {
        ops::check_account(account)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.shared.write(|conn, key| {
            ops::add_signing_key(
                conn,
                key,
                account,
                algorithm,
                &public_key,
                &private_der,
                now,
            )
        })
    }

    /// Our signing keys for `account`, oldest first.
    pub fn signing_keys(&self, account: &str) -> Result<Vec<SigningKeyInfo>, StoreError> {
        ops::check_account(account)?;
        self.shared
            .read(|conn, _| ops::list_signing_keys(conn, account))
    }

    /// The private part of one of our signing keys.
    pub fn signing_key_private(&self, account: &str, id: KeyId) -> Result<SecretBytes, StoreError> {
        ops::check_account(account)?;
        self.shared
            .read(|conn, key| ops::signing_key_private(conn, key, account, id))
    }

    /// Deletes one of our signing keys ([`StoreError::NotFound`] if it is not there).
    pub fn delete_signing_key(&self, account: &str, id: KeyId) -> Result<(), StoreError> {
        ops::check_account(account)?;
        self.shared
            .write(|conn, _| ops::delete_signing_key(conn, account, id))
    }

    // ---- contacts' keys (ESN-49..52) --------------------------------------------------

    /// Records that `peer` (bare JID) showed the key with `fingerprint` at
    /// `seen_at`, remembering every JID each fingerprint was seen with, and says
    /// whether this is new, known, a known key under another JID (ESN-50) or a
    /// new key for a JID that had one (ESN-51). `keyvalue` is kept the first
    /// time a fingerprint is seen.
    pub fn record_peer_key(
        &self,
        account: &str,
        peer: &str,
        fingerprint: Vec<u8>,
        keyvalue: Vec<u8>,
        seen_at: u64,
    ) -> Result<KeyObservation, StoreError> {
        ops::check_account(account)?;
        self.shared.write(|conn, key| {
            ops::record_peer_key(conn, key, account, peer, &fingerprint, &keyvalue, seen_at)
        })
    }

    /// Sets or clears the petname of a contact key (ESN-52).
    pub fn set_petname(
        &self,
        account: &str,
        fingerprint: &[u8],
        petname: Option<&str>,
    ) -> Result<(), StoreError> {
        ops::check_account(account)?;
        self.shared
            .write(|conn, key| ops::set_petname(conn, key, account, fingerprint, petname))
    }

    /// Sets whether the user verified a contact key (ESN-49).
    pub fn set_key_verified(
        &self,
        account: &str,
        fingerprint: &[u8],
        verified: bool,
    ) -> Result<(), StoreError> {
        ops::check_account(account)?;
        self.shared
            .write(|conn, key| ops::set_key_verified(conn, key, account, fingerprint, verified))
    }

    /// Deletes a contact key and its JID bindings.
    pub fn delete_peer_key(&self, account: &str, fingerprint: &[u8]) -> Result<(), StoreError> {
        ops::check_account(account)?;
        self.shared
            .write(|conn, _| ops::delete_peer_key(conn, account, fingerprint))
    }

    /// Every contact key `account` remembers, in order of first sighting.
    pub fn peer_keys(&self, account: &str) -> Result<Vec<PeerKey>, StoreError> {
        ops::check_account(account)?;
        self.shared
            .read(|conn, key| ops::peer_keys(conn, key, account, None))
    }

    /// The keys `peer` was seen with, most recently seen first (empty: the JID
    /// has no stored key, which ESN-51 also asks to alert about if it had one).
    pub fn peer_keys_of(&self, account: &str, peer: &str) -> Result<Vec<PeerKey>, StoreError> {
        ops::check_account(account)?;
        self.shared
            .read(|conn, key| ops::peer_keys(conn, key, account, Some(peer)))
    }

    // ---- SAS confirmation state (ESN-34) -----------------------------------------------

    /// Sets the SAS state of (`peer`, `client`) at time `now`.
    pub fn set_sas_state(
        &self,
        account: &str,
        peer: &str,
        client: &str,
        state: SasState,
        now: u64,
    ) -> Result<(), StoreError> {
        ops::check_account(account)?;
        self.shared
            .write(|conn, key| ops::set_sas_state(conn, key, account, peer, client, state, now))
    }

    /// The SAS state of (`peer`, `client`), if any was set.
    pub fn sas_state(
        &self,
        account: &str,
        peer: &str,
        client: &str,
    ) -> Result<Option<SasRecord>, StoreError> {
        ops::check_account(account)?;
        self.shared
            .read(|conn, key| ops::sas_state(conn, key, account, peer, client))
    }

    /// Every SAS state of `account`, sorted by contact and client.
    pub fn sas_states(&self, account: &str) -> Result<Vec<SasRecord>, StoreError> {
        ops::check_account(account)?;
        self.shared
            .read(|conn, key| ops::sas_states(conn, key, account))
    }

    // ---- per-contact settings -------------------------------------------------------------

    /// Sets or clears the compatibility profile of a contact (free text, e.g.
    /// `"gajim"`; interpreted by the application, see `esession::Profile::by_name`).
    /// `peer` is the contact's bare JID: profiles are per contact, not per client.
    pub fn set_contact_profile(
        &self,
        account: &str,
        peer: &str,
        profile: Option<&str>,
    ) -> Result<(), StoreError> {
        ops::check_account(account)?;
        self.shared
            .write(|conn, key| ops::set_contact_profile(conn, key, account, peer, profile))
    }

    /// The compatibility profile of a contact, if set.
    pub fn contact_profile(&self, account: &str, peer: &str) -> Result<Option<String>, StoreError> {
        ops::check_account(account)?;
        self.shared
            .read(|conn, key| ops::contact_profile(conn, key, account, peer))
    }

    /// Every contact of `account` with a compatibility profile set, as
    /// (bare JID, profile name), sorted by JID: what an application loads
    /// into `esession::Config::profiles` when it starts.
    pub fn contact_profiles(&self, account: &str) -> Result<Vec<(String, String)>, StoreError> {
        ops::check_account(account)?;
        self.shared
            .read(|conn, key| ops::contact_profiles(conn, key, account))
    }

    /// Deletes everything `account` stores about `peer`, in one transaction:
    /// retained and other secrets, SAS states, settings, its JID bindings, and
    /// the keys that were seen with no other JID.
    pub fn forget_contact(&self, account: &str, peer: &str) -> Result<(), StoreError> {
        ops::check_account(account)?;
        self.shared
            .write(|conn, _| ops::forget_contact(conn, account, peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{V1_SQL, V2_SQL};
    use crate::types::{KeyStatus, SeenJid};
    use esession::TrustStore;

    fn v_note(tx: &rusqlite::Transaction<'_>, _key: &DataKey) -> Result<(), StoreError> {
        tx.execute_batch("ALTER TABLE contacts ADD COLUMN note TEXT DEFAULT 'migrated'")?;
        Ok(())
    }

    fn pw(p: &[u8]) -> Unlock {
        Unlock::Passphrase(SecretBytes::from_slice(p))
    }

    /// Creates the file, its schema at `version` (1 or 2) and its `meta`, as
    /// the v1/v2 code did; returns the connection and the data key.
    fn hand_made(path: &Path, pass: &[u8], version: u32) -> (Connection, DataKey) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(V1_SQL).unwrap();
        if version >= 2 {
            conn.execute_batch(V2_SQL).unwrap();
        }
        conn.pragma_update(None, "user_version", version).unwrap();
        let params = KdfParams::insecure_fast_for_tests();
        let salt = [9u8; SALT_LEN];
        let derived = Derived {
            key: DataKey::from_passphrase(pass, &salt, params).unwrap(),
            kdf: KDF_ARGON2ID,
            salt,
            params: Some(params),
        };
        ops::meta_set(&conn, "format", &FORMAT).unwrap();
        write_unlock_meta(&conn, &derived).unwrap();
        (conn, derived.key)
    }

    /// A retained secret inserted with the v1/v2 code's statements (no tag).
    /// `row`: peer, client, secret, created, expires, verified.
    fn old_retained_secret(
        conn: &Connection,
        key: &DataKey,
        row: (&str, &str, &[u8], i64, i64, bool),
    ) {
        let (peer, client, secret, created, expires, verified) = row;
        conn.execute(
            "INSERT INTO retained_secrets (account, peer, client, secret, created, expires, verified)
             VALUES ('me@x', ?1, ?2, X'', ?3, ?4, ?5)",
            rusqlite::params![peer, client, created, expires, verified],
        )
        .unwrap();
        let id = conn.last_insert_rowid();
        let sealed = key
            .seal(
                &ops::retained_aad("me@x", peer, client, id, created),
                secret,
            )
            .unwrap();
        conn.execute(
            "UPDATE retained_secrets SET secret = ?1 WHERE id = ?2",
            rusqlite::params![sealed, id],
        )
        .unwrap();
    }

    /// A version-1 file built by hand from the frozen v1 schema, the way the
    /// v1 code lays it out, with one retained secret and one profile in it
    /// (and, like the oldest hand-made files, no `retained_lifetime` row).
    fn hand_made_v1(path: &Path, pass: &[u8]) {
        let (conn, key) = hand_made(path, pass, 1);
        old_retained_secret(
            &conn,
            &key,
            ("bob@y", "laptop", b"rs-1".as_slice(), 100, 200, true),
        );
        conn.execute(
            "INSERT INTO contacts (account, peer, profile) VALUES ('me@x', 'bob@y', 'gajim')",
            [],
        )
        .unwrap();
    }

    /// A version-2 file with a row in every table, written with the v2
    /// code's statements: what an existing store looks like before the
    /// upgrade to tagged rows.
    fn hand_made_v2(path: &Path, pass: &[u8]) {
        let (conn, key) = hand_made(path, pass, 2);
        const DAY: i64 = 24 * 3600;
        ops::meta_set(&conn, "retained_lifetime", &(30 * DAY)).unwrap();
        // Retained secrets: two for bob's laptop (the older verified), one for carol.
        old_retained_secret(
            &conn,
            &key,
            (
                "bob@y",
                "laptop",
                b"rs-old".as_slice(),
                100,
                100 + 30 * DAY,
                true,
            ),
        );
        old_retained_secret(
            &conn,
            &key,
            (
                "bob@y",
                "laptop",
                b"rs-new".as_slice(),
                200,
                200 + 30 * DAY,
                false,
            ),
        );
        old_retained_secret(
            &conn,
            &key,
            (
                "carol@z",
                "phone",
                b"rs-carol".as_slice(),
                300,
                300 + 30 * DAY,
                true,
            ),
        );
        // Another shared secret.
        conn.execute(
            "INSERT INTO other_secrets (account, peer, secret) VALUES ('me@x', 'bob@y', ?1)",
            [key.seal(&ops::other_aad("me@x", "bob@y"), b"oss-bob")
                .unwrap()],
        )
        .unwrap();
        // One of our signing keys.
        conn.execute(
            "INSERT INTO signing_keys (account, algorithm, public_key, private_key, created)
             VALUES ('me@x', 'rsa', X'0102', X'', 50)",
            [],
        )
        .unwrap();
        let id = conn.last_insert_rowid();
        let sealed = key
            .seal(&ops::signing_aad("me@x", id, "rsa", &[1, 2]), b"private")
            .unwrap();
        conn.execute(
            "UPDATE signing_keys SET private_key = ?1 WHERE id = ?2",
            rusqlite::params![sealed, id],
        )
        .unwrap();
        // Contacts' keys: bob's verified key with a petname, also seen with
        // bob's other JID; an older unverified one of bob's.
        conn.execute_batch(
            "INSERT INTO peer_keys (account, fingerprint, keyvalue, petname, verified, first_seen)
                 VALUES ('me@x', X'AA', X'4B31', NULL, 0, 10);
             INSERT INTO peer_keys (account, fingerprint, keyvalue, petname, verified, first_seen)
                 VALUES ('me@x', X'BB', X'4B32', 'Bob at work', 1, 20);
             INSERT INTO peer_key_jids (key_id, peer, first_seen, last_seen) VALUES (1, 'bob@y', 10, 15);
             INSERT INTO peer_key_jids (key_id, peer, first_seen, last_seen) VALUES (2, 'bob@y', 20, 40);
             INSERT INTO peer_key_jids (key_id, peer, first_seen, last_seen) VALUES (2, 'bob@work', 30, 30);
             INSERT INTO sas_states (account, peer, client, state, updated)
                 VALUES ('me@x', 'bob@y', 'laptop', 'confirmed', 60);
             INSERT INTO sas_states (account, peer, client, state, updated)
                 VALUES ('me@x', 'carol@z', 'phone', 'dismissed', 70);
             INSERT INTO contacts (account, peer, profile) VALUES ('me@x', 'bob@y', 'gajim');
             INSERT INTO delivered_messages (account, peer, message_id) VALUES ('me@x', 'bob@y', 'm1');
             INSERT INTO delivered_messages (account, peer, message_id) VALUES ('me@x', 'bob@y', 'm2');",
        )
        .unwrap();
    }

    #[test]
    fn a_version_2_store_upgrades_to_tagged_rows_and_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.db");
        hand_made_v2(&path, b"pw");
        let store = Store::open(&path, pw(b"pw")).unwrap();
        assert_eq!(store.schema_version().unwrap(), schema::CURRENT_VERSION);
        let report = store.check().unwrap();
        assert_eq!(
            (
                report.signing_keys,
                report.peer_keys,
                report.retained_secrets,
                report.other_secrets
            ),
            (1, 2, 3, 1)
        );

        // Retained secrets, through the core's trait and the typed API.
        const DAY: u64 = 24 * 3600;
        let mut trust = store.account("me@x").unwrap();
        let bob: Vec<_> = trust
            .retained_secrets("bob@y")
            .unwrap()
            .into_iter()
            .map(|s| (s.client, s.secret.expose().to_vec(), s.created, s.verified))
            .collect();
        assert_eq!(
            bob,
            [
                ("laptop".to_owned(), b"rs-new".to_vec(), 200, false),
                ("laptop".to_owned(), b"rs-old".to_vec(), 100, true),
            ]
        );
        let others = trust
            .retained_secrets_of_other_peers("bob@y", 0, 10)
            .unwrap();
        assert_eq!(others.len(), 1);
        assert_eq!(others[0].0, "carol@z");
        assert_eq!(others[0].1.secret.expose(), b"rs-carol");
        assert!(others[0].1.verified);
        let info = store.retained_secret_info("me@x", "carol@z").unwrap();
        assert_eq!((info[0].created, info[0].expires), (300, 300 + 30 * DAY));
        assert_eq!(store.retained_secret_lifetime().unwrap(), 30 * DAY);

        // Other secret and signing key.
        assert_eq!(
            store
                .other_secret("me@x", "bob@y")
                .unwrap()
                .unwrap()
                .expose(),
            b"oss-bob"
        );
        let signing = store.signing_keys("me@x").unwrap();
        assert_eq!(signing.len(), 1);
        assert_eq!(
            store
                .signing_key_private("me@x", signing[0].id)
                .unwrap()
                .expose(),
            b"private"
        );

        // Contacts' keys, with every binding.
        let keys = store.peer_keys("me@x").unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(
            (
                keys[0].fingerprint.as_slice(),
                keys[0].verified,
                keys[0].petname.as_deref()
            ),
            (&[0xAA][..], false, None)
        );
        assert_eq!(
            (
                keys[1].fingerprint.as_slice(),
                keys[1].verified,
                keys[1].petname.as_deref()
            ),
            (&[0xBB][..], true, Some("Bob at work"))
        );
        assert_eq!(keys[1].keyvalue, b"K2");
        assert_eq!(
            keys[1].jids,
            [
                SeenJid {
                    jid: "bob@y".into(),
                    first_seen: 20,
                    last_seen: 40
                },
                SeenJid {
                    jid: "bob@work".into(),
                    first_seen: 30,
                    last_seen: 30
                }
            ]
        );
        let of_bob = store.peer_keys_of("me@x", "bob@y").unwrap();
        assert_eq!(of_bob[0].fingerprint, [0xBB]);
        assert_eq!(of_bob[1].fingerprint, [0xAA]);
        let seen = store
            .record_peer_key("me@x", "bob@y", vec![0xBB], b"K2".to_vec(), 50)
            .unwrap();
        assert_eq!(seen.status, KeyStatus::Known);
        assert!(seen.verified);

        // SAS states, profiles, delivered ids.
        let sas = store.sas_states("me@x").unwrap();
        assert_eq!(sas.len(), 2);
        assert_eq!(sas[0].state, crate::SasState::Confirmed);
        assert!(trust.sas_reminder_dismissed("carol@z", "phone").unwrap());
        assert_eq!(
            store.contact_profile("me@x", "bob@y").unwrap().as_deref(),
            Some("gajim")
        );
        assert_eq!(trust.record_delivery("bob@y", "m1"), Ok(false));
        assert_eq!(trust.record_delivery("bob@y", "m3"), Ok(true));
        drop(trust);
        drop(store);

        // Opening again does not migrate again, and the tags written by the
        // upgrade are enforced: an edit made now is detected.
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE peer_keys SET verified = 1 WHERE fingerprint = X'AA'",
            [],
        )
        .unwrap();
        drop(conn);
        let store = Store::open(&path, pw(b"pw")).unwrap();
        assert_eq!(store.schema_version().unwrap(), schema::CURRENT_VERSION);
        assert!(matches!(
            store.peer_keys("me@x"),
            Err(StoreError::Tampered { .. })
        ));
    }

    #[test]
    fn the_upgrade_stops_handles_an_older_build_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.db");
        hand_made_v2(&path, b"pw");
        // A handle opened before the upgrade (by the same code, here, limited to v2).
        let old = Store::open_with_migrations(&path, pw(b"pw"), &MIGRATIONS[..2]).unwrap();
        assert_eq!(old.schema_version().unwrap(), 2);
        let new = Store::open(&path, pw(b"pw")).unwrap();
        assert_eq!(new.schema_version().unwrap(), schema::CURRENT_VERSION);
        // The old handle's next transaction fails before writing an untagged row.
        assert!(matches!(
            old.set_sas_state("me@x", "dave@w", "pc", crate::SasState::Confirmed, 1),
            Err(StoreError::Rekeyed)
        ));
        assert!(new.check().is_ok());
    }

    #[test]
    fn opening_a_hand_made_v1_file_runs_later_migrations_and_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        hand_made_v1(&path, b"pw");
        let with_v4 = [
            Migration {
                to: 1,
                apply: |_, _| Ok(()),
            },
            schema::MIGRATIONS[1],
            schema::MIGRATIONS[2],
            schema::MIGRATIONS[3],
            schema::MIGRATIONS[4],
            Migration {
                to: 6,
                apply: v_note,
            },
        ];
        let store = Store::open_with_migrations(&path, pw(b"pw"), &with_v4).unwrap();
        assert_eq!(store.schema_version().unwrap(), 6);
        let note: String = store
            .shared
            .read(|c, _| Ok(c.query_row("SELECT note FROM contacts", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(note, "migrated");
        let secrets = store
            .account("me@x")
            .unwrap()
            .retained_secrets("bob@y")
            .unwrap();
        assert_eq!(secrets.len(), 1);
        assert_eq!(secrets[0].secret.expose(), b"rs-1");
        assert!(secrets[0].verified);
        // The missing lifetime row was filled in with the default.
        assert_eq!(
            store.retained_secret_lifetime().unwrap(),
            ops::DEFAULT_RETAINED_LIFETIME
        );
        drop(store);
        // The current build (up to v3) now refuses the upgraded file.
        assert!(matches!(
            Store::open(&path, pw(b"pw")),
            Err(StoreError::TooNew {
                found: 6,
                supported: 5
            })
        ));
    }

    #[test]
    fn a_hand_made_v1_file_opens_with_the_current_build() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        hand_made_v1(&path, b"pw");
        let store = Store::open(&path, pw(b"pw")).unwrap();
        assert_eq!(store.schema_version().unwrap(), schema::CURRENT_VERSION);
        // v2's table is there (issue 10).
        let mut account = store.account("me@x").unwrap();
        assert_eq!(account.record_delivery("bob@y", "m1"), Ok(true));
        assert_eq!(
            store.contact_profile("me@x", "bob@y").unwrap().as_deref(),
            Some("gajim")
        );
        assert_eq!(store.check().unwrap().retained_secrets, 1);
    }

    #[test]
    fn a_wrong_passphrase_does_not_run_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        hand_made_v1(&path, b"pw");
        let with_v2 = [
            Migration {
                to: 1,
                apply: |_, _| Ok(()),
            },
            Migration {
                to: 2,
                apply: v_note,
            },
        ];
        assert!(matches!(
            Store::open_with_migrations(&path, pw(b"wrong"), &with_v2),
            Err(StoreError::WrongPassphrase)
        ));
        let conn = Connection::open(&path).unwrap();
        assert_eq!(schema::user_version(&conn).unwrap(), 1);
    }
}
