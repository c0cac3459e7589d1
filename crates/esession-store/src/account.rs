//! One account's view of the store, implementing the core's [`TrustStore`].

use std::sync::Arc;

use esession::ssn::Logging;
use esession::trust::KeyValue;
use esession::{
    PeerKeyObservation, PeerKeyStatus, RetainedSecret, SessionId, SessionInfo, StoredPeerKey,
    TrustStore, TrustStoreError, key_fingerprint,
};
use esession_crypto::SecretBytes;

use crate::connection::Shared;
use crate::ops;
use crate::{History, HistoryEntry, KeyStatus, PeerKey, SasState, StoreError};

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

/// What [`AccountStore::take_offline_options`] found.
#[derive(Debug)]
pub struct TakenOptionSets {
    /// The sets, restored.
    pub sets: Vec<esession::offline::OfflineOptionSet>,
    /// Sets that could not be read (their x does not open: damaged, or edited
    /// without the passphrase) and were destroyed: what answers them is unreadable.
    pub unreadable: usize,
}

impl AccountStore {
    /// Keeps an XEP-0187 option set we are about to publish until we are
    /// back (OFF-03): every x sealed under the store's key, the options,
    /// N_A and the expiry bound to it.
    pub fn save_offline_options(
        &self,
        set: &esession::offline::OfflineOptionSet,
    ) -> Result<(), StoreError> {
        let account = self.account.as_str();
        self.shared
            .write(|conn, key| ops::save_offline_set(conn, key, account, set))
    }

    /// OFF-13: on our return, every option set we kept, for
    /// [`esession::SessionManager::hold_offline_options`]; the stored copies
    /// are destroyed in the same transaction.
    pub fn take_offline_options(&self) -> Result<TakenOptionSets, StoreError> {
        let account = self.account.as_str();
        self.shared
            .write(|conn, key| ops::take_offline_sets(conn, key, account))
            .map(|(sets, unreadable)| TakenOptionSets { sets, unreadable })
    }
}

/// The local history (issue 14).
impl AccountStore {
    /// Keeps a message of `session` in the history, sealed (see
    /// [`HistoryEntry`]), unless the session is off the record: ENC-21 and
    /// ARC-08 forbid storing its content anywhere, so nothing is written and
    /// `false` comes back.
    pub fn record_message(
        &self,
        session: &SessionId,
        info: &SessionInfo,
        outgoing: bool,
        time: u64,
        body: &str,
    ) -> Result<bool, StoreError> {
        if info.logging != Logging::May {
            return Ok(false);
        }
        let entry = HistoryEntry {
            contact: session.contact().to_string(),
            peer: session.peer.to_string(),
            thread: session.thread.clone(),
            outgoing,
            time,
            verified: info.is_verified(),
            body: body.to_owned(),
        };
        let account = self.account.as_str();
        self.shared
            .write(|conn, key| ops::add_history(conn, key, account, &entry))?;
        Ok(true)
    }

    /// `contact`'s history (bare JID) since `since` (Unix seconds), the
    /// newest `last` messages when given, oldest first.
    pub fn history(
        &self,
        contact: &str,
        since: u64,
        last: Option<usize>,
    ) -> Result<History, StoreError> {
        let account = self.account.as_str();
        let contact = contact.to_lowercase();
        self.shared
            .read(|conn, key| ops::history(conn, key, account, &contact, since, last))
    }

    /// Deletes `contact`'s history for good: the rows, then every copy the
    /// database file and its log could still hold (VACUUM, checkpoint).
    /// Returns how many messages were deleted.
    pub fn forget_history(&self, contact: &str) -> Result<usize, StoreError> {
        let account = self.account.as_str();
        let contact = contact.to_lowercase();
        let deleted = self
            .shared
            .write(|conn, _| ops::forget_history(conn, account, &contact))?;
        self.shared.vacuum().map_err(|e| {
            StoreError::Invalid(format!(
                "{deleted} message(s) were deleted, but copies may remain in the store's files: {e}"
            ))
        })?;
        Ok(deleted)
    }
}

impl TrustStore for AccountStore {
    fn retained_secrets(&self, peer: &str) -> Result<Vec<RetainedSecret>, TrustStoreError> {
        let account = self.account.as_str();
        Ok(self
            .shared
            .read(|conn, key| ops::retained_secrets(conn, key, account, peer))?)
    }

    fn retained_secrets_of_other_peers(
        &self,
        except_peer: &str,
        created_since: u64,
        limit: usize,
    ) -> Result<Vec<(String, RetainedSecret)>, TrustStoreError> {
        let account = self.account.as_str();
        Ok(self.shared.read(|conn, key| {
            ops::retained_secrets_of_other_peers(
                conn,
                key,
                account,
                except_peer,
                created_since,
                limit,
            )
        })?)
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
            .write(|conn, key| ops::confirm_retained_secret(conn, key, account, peer, client))?)
    }

    /// Also records the SAS as confirmed, so that `sas_states` and the
    /// chain's verified flag never disagree (issue 10: one source of truth).
    fn mark_verified(&mut self, peer: &str, client: &str) -> Result<(), TrustStoreError> {
        let account = self.account.as_str();
        let now = unix_now();
        Ok(self.shared.write(|conn, key| {
            ops::set_chain_verified(conn, key, account, peer, client, true)?;
            ops::set_sas_state(conn, key, account, peer, client, SasState::Confirmed, now)
        })?)
    }

    fn revoke_verification(&mut self, peer: &str, client: &str) -> Result<(), TrustStoreError> {
        let account = self.account.as_str();
        let now = unix_now();
        Ok(self.shared.write(|conn, key| {
            ops::set_chain_verified(conn, key, account, peer, client, false)?;
            ops::set_sas_state(conn, key, account, peer, client, SasState::Pending, now)
        })?)
    }

    fn sas_reminder_dismissed(&self, peer: &str, client: &str) -> Result<bool, TrustStoreError> {
        let account = self.account.as_str();
        let record = self
            .shared
            .read(|conn, key| ops::sas_state(conn, key, account, peer, client))?;
        Ok(record.is_some_and(|r| r.state == SasState::Dismissed))
    }

    fn dismiss_sas_reminder(&mut self, peer: &str, client: &str) -> Result<(), TrustStoreError> {
        let account = self.account.as_str();
        let now = unix_now();
        Ok(self.shared.write(|conn, key| {
            ops::set_sas_state(conn, key, account, peer, client, SasState::Dismissed, now)
        })?)
    }

    fn record_delivery(&mut self, peer: &str, message_id: &str) -> Result<bool, TrustStoreError> {
        let account = self.account.as_str();
        Ok(self
            .shared
            .write(|conn, key| ops::record_delivery(conn, key, account, peer, message_id))?)
    }

    fn other_secret(&self, peer: &str) -> Result<Option<SecretBytes>, TrustStoreError> {
        let account = self.account.as_str();
        Ok(self
            .shared
            .read(|conn, key| ops::other_secret(conn, key, account, peer))?)
    }

    fn peer_keys(&self, peer: Option<&str>) -> Result<Vec<StoredPeerKey>, TrustStoreError> {
        let account = self.account.as_str();
        let keys = self
            .shared
            .read(|conn, key| ops::peer_keys(conn, key, account, peer))?;
        // Rows whose key is not a `<KeyValue/>` (stored by other tools) are skipped.
        Ok(keys.into_iter().filter_map(stored_peer_key).collect())
    }

    fn record_peer_key(
        &mut self,
        peer: &str,
        key: &KeyValue,
        seen_at: u64,
    ) -> Result<PeerKeyObservation, TrustStoreError> {
        let account = self.account.as_str();
        let fingerprint = key_fingerprint(key);
        let xml = esession_wire::xml::serialize(&esession_wire::minidom::Element::from(key), "")
            .map_err(|e| TrustStoreError(e.to_string()))?;
        let observation = self.shared.write(|conn, store_key| {
            ops::record_peer_key(
                conn,
                store_key,
                account,
                peer,
                &fingerprint,
                xml.as_bytes(),
                seen_at,
            )
        })?;
        Ok(PeerKeyObservation {
            status: match observation.status {
                KeyStatus::New => PeerKeyStatus::New,
                KeyStatus::Known => PeerKeyStatus::Known,
                KeyStatus::SeenWithOtherJid => PeerKeyStatus::SeenWithOtherJid,
                KeyStatus::KeyChanged => PeerKeyStatus::KeyChanged,
            },
            other_jids: observation.other_jids,
            previous_fingerprints: observation.previous_fingerprints,
            verified: observation.verified,
            petname: observation.petname,
        })
    }

    fn set_peer_key_verified(
        &mut self,
        fingerprint: &[u8],
        verified: bool,
    ) -> Result<(), TrustStoreError> {
        let account = self.account.as_str();
        Ok(self
            .shared
            .write(|conn, key| ops::set_key_verified(conn, key, account, fingerprint, verified))?)
    }

    fn set_peer_key_petname(
        &mut self,
        fingerprint: &[u8],
        petname: Option<&str>,
    ) -> Result<(), TrustStoreError> {
        let account = self.account.as_str();
        Ok(self
            .shared
            .write(|conn, key| ops::set_petname(conn, key, account, fingerprint, petname))?)
    }
}

/// A stored contact key as the core sees it, if its `keyvalue` is a `<KeyValue/>`
/// whose fingerprint is the one stored.
fn stored_peer_key(key: PeerKey) -> Option<StoredPeerKey> {
    let text = std::str::from_utf8(&key.keyvalue).ok()?;
    let element = esession_wire::xml::parse_document(text).ok()?;
    let value = KeyValue::try_from(&element).ok()?;
    esession_crypto::ct_eq(&key_fingerprint(&value), &key.fingerprint).then(|| StoredPeerKey {
        key: value,
        fingerprint: key.fingerprint,
        petname: key.petname,
        verified: key.verified,
        jids: key.jids.into_iter().map(|j| j.jid).collect(),
    })
}

/// The system clock in Unix seconds (SAS-state timestamps are informational).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
