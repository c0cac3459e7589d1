//! What we remember about peers: retained secrets and other shared secrets
//! (ESN-35..42), behind a trait so storage stays out of the core (practice 15).

use std::collections::HashMap;

use esession_crypto::SecretBytes;

/// A secret retained from an earlier session with one client of a contact.
pub struct RetainedSecret {
    /// The contact's client (the resource of its full JID).
    pub client: String,
    /// The secret RS.
    pub secret: SecretBytes,
    /// When it was stored (Unix seconds).
    pub created: u64,
    /// Whether the chain of sessions it continues was ever SAS-verified (ESN-42).
    pub verified: bool,
}

impl core::fmt::Debug for RetainedSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RetainedSecret")
            .field("client", &self.client)
            .field("created", &self.created)
            .field("verified", &self.verified)
            .finish_non_exhaustive()
    }
}

/// A trust store could not read or write (disk full, database locked, ...).
/// The message never contains secret data.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("trust store failure: {0}")]
pub struct TrustStoreError(pub String);

/// Persistent trust state the core reads and updates. `peer` is always the
/// contact's bare JID. A failed read counts as "nothing stored" (the session is
/// then not authenticated by a retained secret); every failure is reported to
/// the application as [`crate::Event::TrustStoreFailure`].
pub trait TrustStore {
    /// Every retained secret for `peer`, newest first (ESN-35). A client may
    /// have two during the AMB-57 grace period (the new one and its predecessor).
    fn retained_secrets(&self, peer: &str) -> Result<Vec<RetainedSecret>, TrustStoreError>;

    /// Stores `secret` as the newest for (`peer`, `client`), keeping the
    /// previous one until [`TrustStore::confirm_retained_secret`] (AMB-57).
    fn store_retained_secret(
        &mut self,
        peer: &str,
        secret: RetainedSecret,
    ) -> Result<(), TrustStoreError>;

    /// The peer proved it holds the newest secret of `client`: destroy the older ones (ESN-40, AMB-57).
    fn confirm_retained_secret(&mut self, peer: &str, client: &str) -> Result<(), TrustStoreError>;

    /// Marks the secret chain with (`peer`, `client`) as SAS-verified (ESN-42).
    fn mark_verified(&mut self, peer: &str, client: &str) -> Result<(), TrustStoreError>;

    /// The other shared secret (password) agreed with `peer` out of band, if any (ESN-36).
    fn other_secret(&self, peer: &str) -> Result<Option<SecretBytes>, TrustStoreError>;
}

/// An in-memory [`TrustStore`] (tests, demos; the persistent store is its own crate).
#[derive(Default)]
pub struct MemoryTrustStore {
    secrets: HashMap<String, Vec<RetainedSecret>>,
    passwords: HashMap<String, SecretBytes>,
}

impl MemoryTrustStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the other shared secret for `peer` (UTF-8 bytes, AMB-58).
    pub fn set_other_secret(&mut self, peer: &str, secret: SecretBytes) {
        self.passwords.insert(peer.to_owned(), secret);
    }
}

impl TrustStore for MemoryTrustStore {
    fn retained_secrets(&self, peer: &str) -> Result<Vec<RetainedSecret>, TrustStoreError> {
        // Stored oldest first; returned newest first.
        Ok(self
            .secrets
            .get(peer)
            .map(|list| {
                list.iter()
                    .rev()
                    .map(|s| RetainedSecret {
                        client: s.client.clone(),
                        secret: s.secret.duplicate(),
                        created: s.created,
                        verified: s.verified,
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    fn store_retained_secret(
        &mut self,
        peer: &str,
        secret: RetainedSecret,
    ) -> Result<(), TrustStoreError> {
        let list = self.secrets.entry(peer.to_owned()).or_default();
        let client = secret.client.clone();
        list.push(secret);
        // Keep the new secret and at most its predecessor (AMB-57).
        while list.iter().filter(|s| s.client == client).count() > 2 {
            if let Some(oldest) = list.iter().position(|s| s.client == client) {
                list.remove(oldest);
            }
        }
        Ok(())
    }

    fn confirm_retained_secret(&mut self, peer: &str, client: &str) -> Result<(), TrustStoreError> {
        if let Some(list) = self.secrets.get_mut(peer)
            && let Some(newest) = list.iter().rposition(|s| s.client == client)
        {
            let mut index = 0;
            list.retain(|s| {
                let keep = s.client != client || index == newest;
                index += 1;
                keep
            });
        }
        Ok(())
    }

    fn mark_verified(&mut self, peer: &str, client: &str) -> Result<(), TrustStoreError> {
        if let Some(list) = self.secrets.get_mut(peer) {
            for s in list.iter_mut().filter(|s| s.client == client) {
                s.verified = true;
            }
        }
        Ok(())
    }

    fn other_secret(&self, peer: &str) -> Result<Option<SecretBytes>, TrustStoreError> {
        Ok(self.passwords.get(peer).map(SecretBytes::duplicate))
    }
}
