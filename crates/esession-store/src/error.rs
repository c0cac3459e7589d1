//! The one error type of the store.

use std::path::PathBuf;

/// Everything that can go wrong with a [`crate::Store`].
///
/// No variant ever carries secret data: passphrases, key files, retained
/// secrets, passwords and private keys are never part of a message. Database
/// errors come from SQLite, which reports statements and column names but never
/// bound values (and every secret is bound only in sealed form anyway).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The passphrase does not unlock this store. Nothing was changed.
    #[error("wrong passphrase: the store was not opened and nothing was changed")]
    WrongPassphrase,

    /// The key file does not unlock this store. Nothing was changed.
    #[error("wrong key file: the store was not opened and nothing was changed")]
    WrongKeyFile,

    /// The store is protected by another kind of unlock than the one given.
    #[error("this store is unlocked with a {expected}, not a {given}")]
    UnlockMismatch {
        /// What the store needs (`"passphrase"` or `"key file"`).
        expected: &'static str,
        /// What was given.
        given: &'static str,
    },

    /// A key file may be read or written by group or others.
    #[error(
        "key file {} is accessible by group or others (mode {mode:o}); run `chmod 600` on it",
        path.display()
    )]
    KeyFilePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// A key file is not exactly 32 bytes long.
    #[error("key file {} must hold exactly 32 bytes", path.display())]
    KeyFileInvalid {
        /// The key file.
        path: PathBuf,
    },

    /// [`crate::Store::create`] or [`crate::Store::generate_key_file`] found the file already there.
    #[error("{} already exists", path.display())]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },

    /// The file is not an esession store (or a store whose creation never committed).
    #[error("{} is not an esession store", path.display())]
    NotAStore {
        /// The file.
        path: PathBuf,
    },

    /// The store was written by a newer version of this crate.
    #[error(
        "store schema version {found} is newer than the newest this program knows ({supported})"
    )]
    TooNew {
        /// The file's schema version.
        found: u32,
        /// The newest version this crate can read.
        supported: u32,
    },

    /// A sealed value failed authentication, or stored data broke an invariant
    /// (tampering, or storage-level corruption). The text names the table and
    /// row, never data. (A row tag that does not verify is
    /// [`StoreError::Tampered`].)
    #[error("store is corrupt: {0}")]
    Corrupt(String),

    /// A row that carries a trust decision (a verified flag, a key-to-JID
    /// binding, a petname, a SAS state, a profile, a retained secret's
    /// metadata, a delivered-message record, the retained-secret lifetime)
    /// does not match its authentication tag: it was changed, or moved to
    /// another account or contact, by someone without the passphrase or key
    /// file (or the disk damaged it). Nothing from it was used: the operation
    /// failed as a whole. `what` names the table and row (account, contact,
    /// client as stored), never secret data.
    #[error(
        "the store was changed outside esession (tampering or disk damage): {what} does not \
         match its authentication tag, so nothing in it was trusted"
    )]
    Tampered {
        /// Which table and row.
        what: String,
    },

    /// The key-derivation settings stored in the file are outside the range
    /// this program accepts (see [`crate::KdfParams::new`]): deriving a key
    /// with them could take far too long or is not what any esession wrote.
    /// Nothing was derived or changed.
    #[error(
        "{} holds key-derivation settings out of range ({reason}); it was damaged or edited \
         outside esession: restore it from a backup",
        path.display()
    )]
    KdfOutOfRange {
        /// The store.
        path: PathBuf,
        /// What is out of range.
        reason: String,
    },

    /// Another handle re-keyed the store ([`crate::Store::rekey`]) since this one
    /// was opened: reopen it with the new passphrase or key file. Nothing was
    /// read or written.
    #[error("the store was re-keyed since it was opened; reopen it")]
    Rekeyed,

    /// The named thing does not exist.
    #[error("not found: {0}")]
    NotFound(String),

    /// An argument was rejected (bad JID, time out of range, bad KDF parameters).
    #[error("invalid argument: {0}")]
    Invalid(String),

    /// Encryption, key derivation or the random generator failed.
    #[error("cryptographic failure: {0}")]
    Crypto(&'static str),

    /// SQLite reported an error (disk full, locked, I/O).
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),

    /// A file-system operation failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<StoreError> for esession::TrustStoreError {
    fn from(err: StoreError) -> Self {
        esession::TrustStoreError(err.to_string())
    }
}
