//! The SQLite connection and data key that a store handle and its account
//! views share, and the transactions every read and write runs in.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, TransactionBehavior};

use crate::seal::DataKey;
use crate::{StoreError, ops};

pub(crate) struct State {
    pub(crate) conn: Connection,
    pub(crate) key: DataKey,
    /// The key-check value of `key` as stored in `meta`. Every transaction
    /// compares it with the stored one, so that after another process has
    /// re-keyed the store this one fails cleanly instead of writing secrets
    /// under a stale key.
    pub(crate) key_check: Vec<u8>,
}

pub(crate) fn ensure_current_key(conn: &Connection, key_check: &[u8]) -> Result<(), StoreError> {
    if ops::meta_get_blob(conn, "key_check")?.as_deref() == Some(key_check) {
        Ok(())
    } else {
        Err(StoreError::Rekeyed)
    }
}

/// The connection and key shared by a [`crate::Store`] and its [`crate::AccountStore`]s.
pub(crate) struct Shared {
    pub(crate) path: PathBuf,
    pub(crate) state: Mutex<State>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held can only have happened inside a
        // transaction, which rolled back when it was dropped: the connection is
        // consistent, so a poisoned lock is safe to take over.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` in a read transaction (a consistent snapshot).
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&Connection, &DataKey) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.lock();
        let State {
            conn,
            key,
            key_check,
        } = &mut *guard;
        let tx = conn.transaction()?;
        ensure_current_key(&tx, key_check)?;
        let out = f(&tx, key)?;
        tx.commit()?;
        Ok(out)
    }

    /// Runs `f` in an IMMEDIATE write transaction, committed only if `f`
    /// succeeds: every update is all or nothing, also under `kill -9`.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&Connection, &DataKey) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.lock();
        let State {
            conn,
            key,
            key_check,
        } = &mut *guard;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        ensure_current_key(&tx, key_check)?;
        let out = f(&tx, key)?;
        tx.commit()?;
        Ok(out)
    }

    /// Rewrites the database without its free pages and empties the
    /// write-ahead log, so that deleted rows leave no copy in either file
    /// (after `secure_delete` already overwrote them in place).
    pub(crate) fn vacuum(&self) -> Result<(), StoreError> {
        let guard = self.lock();
        guard.conn.execute_batch("VACUUM")?;
        // (busy, log frames, frames checkpointed): busy means another
        // connection (another esession process) still reads the old pages.
        let busy: i64 = guard
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        if busy != 0 {
            return Err(StoreError::Invalid(
                "the write-ahead log could not be emptied because another esession process has \
                 the trust store open; close it and run the command again"
                    .to_owned(),
            ));
        }
        Ok(())
    }
}
