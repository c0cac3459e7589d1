//! One account's view of the store, implementing the core's [`TrustStore`].

use std::sync::Arc;

use esession::{RetainedSecret, TrustStore, TrustStoreError};
use esession_crypto::SecretBytes;

use crate::StoreError;
use crate::ops;
use crate::store::Shared;

/// The trust store of one of our accounts, backed by a [`crate::Store`] file.
///
/// Implements [`esession::TrustStore`] with exactly the semantics of
/// [`esession::MemoryTrustStore`]; every call is one SQLite transaction. It is
/// `Send` (and `Sync`), so `Box::new(store.account("me@example.org")?)` can be
/// handed to an `esession::SessionManager`.
pub struct AccountStore {
    shared: Arc<Shared>,
    account: String,
}

impl core::fmt::Debug for AccountStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AccountStore")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl AccountStore {
    pub(crate) fn new(shared: Arc<Shared>, account: String) -> Self {
        Self { shared, account }
    }

    /// Our account (bare JID) this view is scoped to.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// Sets the other shared secret for `peer` (UTF-8 bytes of the NFC-normalised
    /// password, AMB-58), like `MemoryTrustStore::set_other_secret`.
    pub fn set_other_secret(&self, peer: &str, secret: SecretBytes) -> Result<(), StoreError> {
        let account = self.account.as_str();
        self.shared
            .write(|conn, key| ops::set_other_secret(conn, key, account, peer, &secret))
    }
}

impl TrustStore for AccountStore {
    fn retained_secrets(&self, peer: &str) -> Result<Vec<RetainedSecret>, TrustStoreError> {
        let account = self.account.as_str();
        Ok(self
            .shared
            .read(|conn, key| ops::retained_secrets(conn, key, account, peer))?)
    }

    fn store_retained_secret(
        &mut self,
        peer: &str,
        secret: RetainedSecret,
    ) -> Result<(), TrustStoreError> {
        let account = self.account.as_str();
        Ok(self
            .shared
            .write(|conn, key| ops::store_retained_secret(conn, key, account, peer, &secret))?)
    }

    fn confirm_retained_secret(&mut self, peer: &str, client: &str) -> Result<(), TrustStoreError> {
        let account = self.account.as_str();
        Ok(self
            .shared
            .write(|conn, _| ops::confirm_retained_secret(conn, account, peer, client))?)
    }

    fn mark_verified(&mut self, peer: &str, client: &str) -> Result<(), TrustStoreError> {
        let account = self.account.as_str();
        Ok(self
            .shared
            .write(|conn, _| ops::mark_verified(conn, account, peer, client))?)
    }

    fn other_secret(&self, peer: &str) -> Result<Option<SecretBytes>, TrustStoreError> {
        let account = self.account.as_str();
        Ok(self
            .shared
            .read(|conn, key| ops::other_secret(conn, key, account, peer))?)
    }
}
