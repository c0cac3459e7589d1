//! What we remember about peers: retained secrets and other shared secrets
//! (ESN-35..42) and the public keys they showed, bound to their JIDs with
//! petnames and verified flags (ESN-49..52), behind a trait so storage stays
//! out of the core (practice 15).

use esession_crypto::Hashing;
use std::collections::{HashMap, VecDeque};

use esession_crypto::{HashAlgorithm, SecretBytes};
pub use esession_wire::keyvalue::KeyValue;

/// How stores and users name a public key: SHA-256 of its normalized
/// `<KeyValue/>` (the bytes `pubKey` stands for in MACs, ESN-17/ESN-55),
/// whatever hash a negotiation agreed.
pub fn key_fingerprint(key: &KeyValue) -> Vec<u8> {
    HashAlgorithm::Sha256.digest(&[&key.normalized_bytes()])
}

/// A contact's public key as the trust store remembers it (ESN-49).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StoredPeerKey {
    /// The key.
    pub key: KeyValue,
    /// Its [`key_fingerprint`].
    pub fingerprint: Vec<u8>,
    /// The user's petname for it (ESN-52).
    pub petname: Option<String>,
    /// Whether the user verified it out of band (ESN-49): only a verified key
    /// authenticates a peer (AMB-43).
    pub verified: bool,
    /// The bare JIDs it was seen with, in order of first sighting (ESN-50).
    pub jids: Vec<String>,
}

/// What recording a key sighting found (ESN-49..51).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PeerKeyStatus {
    /// Never seen before, from a JID that had no key.
    New,
    /// Already bound to this JID.
    Known,
    /// ESN-50: known, but only from other JIDs. Alert at once.
    SeenWithOtherJid,
    /// ESN-51: this JID showed other keys before. Alert.
    KeyChanged,
}

/// The result of [`TrustStore::record_peer_key`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PeerKeyObservation {
    /// New, known, or an alert.
    pub status: PeerKeyStatus,
    /// Other JIDs the key was seen with before (ESN-50).
    pub other_jids: Vec<String>,
    /// Fingerprints of other keys this JID used before (ESN-51), newest first.
    pub previous_fingerprints: Vec<Vec<u8>>,
    /// Whether the user verified this key.
    pub verified: bool,
    /// The user's petname for this key (ESN-52).
    pub petname: Option<String>,
}

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

    /// ESN-35's extended search: the secrets retained with every bare JID but
    /// `except_peer`, created at or after `created_since` (Unix seconds; the
    /// caller still checks expiry), newest first, at most `limit` of them,
    /// each with the bare JID it is stored under.
    fn retained_secrets_of_other_peers(
        &self,
        except_peer: &str,
        created_since: u64,
        limit: usize,
    ) -> Result<Vec<(String, RetainedSecret)>, TrustStoreError>;

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

    /// The user found the SAS did not match (or withdrew a verification):
    /// the secret chain with (`peer`, `client`) is no longer verified and the
    /// SAS reminder is on again (issue 10: `/distrust` revokes).
    fn revoke_verification(&mut self, peer: &str, client: &str) -> Result<(), TrustStoreError>;

    /// The other shared secret (password) agreed with `peer` out of band, if any (ESN-36).
    fn other_secret(&self, peer: &str) -> Result<Option<SecretBytes>, TrustStoreError>;

    /// Records that the message with this encrypted XEP-0359 origin-id from
    /// `peer` was delivered to the user; `false` if it was recorded before (a
    /// resend whose receipt was lost: the core acknowledges it again and does
    /// not deliver it twice, issue 10). Keep at least the newest 512 ids per
    /// peer; a persistent store keeps them across restarts.
    fn record_delivery(&mut self, peer: &str, message_id: &str) -> Result<bool, TrustStoreError>;

    /// Whether the user asked not to be reminded to compare the SAS with this
    /// client of `peer` (issue 5 item 10: the reminder of ESN-34 repeats at
    /// each session until the SAS is confirmed or the reminder dismissed).
    fn sas_reminder_dismissed(&self, peer: &str, client: &str) -> Result<bool, TrustStoreError>;

    /// Records that the user dismissed the SAS reminder for this client of `peer`.
    fn dismiss_sas_reminder(&mut self, peer: &str, client: &str) -> Result<(), TrustStoreError>;

    /// The contact keys seen with `peer` (a bare JID), most recently seen
    /// first; with `None`, every contact key remembered (a `hash`
    /// identification may name a key first seen under another JID, ESN-27).
    fn peer_keys(&self, peer: Option<&str>) -> Result<Vec<StoredPeerKey>, TrustStoreError>;

    /// Records that `peer` (a bare JID) proved it holds `key` at `seen_at`
    /// (Unix seconds), binding the key to the JID (ESN-49/50), and says whether
    /// that is new, known, or an alert (ESN-50/51).
    fn record_peer_key(
        &mut self,
        peer: &str,
        key: &KeyValue,
        seen_at: u64,
    ) -> Result<PeerKeyObservation, TrustStoreError>;

    /// Marks the key with this [`key_fingerprint`] as verified (or not) by the user.
    fn set_peer_key_verified(
        &mut self,
        fingerprint: &[u8],
        verified: bool,
    ) -> Result<(), TrustStoreError>;

    /// Sets or clears the petname of the key with this [`key_fingerprint`] (ESN-52).
    fn set_peer_key_petname(
        &mut self,
        fingerprint: &[u8],
        petname: Option<&str>,
    ) -> Result<(), TrustStoreError>;
}

/// One key in a [`MemoryTrustStore`].
struct MemoryKey {
    stored: StoredPeerKey,
    /// (JID, last seen) per binding.
    last_seen: Vec<(String, u64)>,
}

/// An in-memory [`TrustStore`] (tests, demos; the persistent store is its own crate).
#[derive(Default)]
pub struct MemoryTrustStore {
    secrets: HashMap<String, Vec<RetainedSecret>>,
    passwords: HashMap<String, SecretBytes>,
    keys: Vec<MemoryKey>,
    /// (peer, client) pairs whose SAS reminder the user dismissed.
    sas_dismissed: Vec<(String, String)>,
    delivered: DeliveredIds,
}

/// Ids remembered per contact: enough for any burst a resend can repeat.
const DELIVERED_IDS_PER_CONTACT: usize = 512;
/// Contacts whose delivered ids are remembered; the oldest is forgotten beyond this.
const DELIVERED_CONTACTS: usize = 1024;

/// Message ids already delivered, per bare JID, oldest first (bounded).
#[derive(Default)]
struct DeliveredIds {
    by_contact: HashMap<String, VecDeque<String>>,
    /// Contacts in order of first use, to forget the oldest.
    order: VecDeque<String>,
}

impl DeliveredIds {
    /// Records `id` from `contact`; false if it was delivered before.
    fn first_delivery(&mut self, contact: &str, id: &str) -> bool {
        if !self.by_contact.contains_key(contact) {
            if self.order.len() >= DELIVERED_CONTACTS
                && let Some(oldest) = self.order.pop_front()
            {
                self.by_contact.remove(&oldest);
            }
            self.order.push_back(contact.to_owned());
        }
        let ids = self.by_contact.entry(contact.to_owned()).or_default();
        if ids.iter().any(|seen| seen == id) {
            return false;
        }
        if ids.len() >= DELIVERED_IDS_PER_CONTACT {
            ids.pop_front();
        }
        ids.push_back(id.to_owned());
        true
    }
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

    fn retained_secrets_of_other_peers(
        &self,
        except_peer: &str,
        created_since: u64,
        limit: usize,
    ) -> Result<Vec<(String, RetainedSecret)>, TrustStoreError> {
        let mut all: Vec<(&String, &RetainedSecret)> = self
            .secrets
            .iter()
            .filter(|(peer, _)| *peer != except_peer)
            .flat_map(|(peer, list)| list.iter().map(move |s| (peer, s)))
            .filter(|(_, s)| s.created >= created_since)
            .collect();
        // Newest first; ties in a fixed order (the map's order is arbitrary).
        all.sort_by(|a, b| (b.1.created, b.0, &b.1.client).cmp(&(a.1.created, a.0, &a.1.client)));
        Ok(all
            .into_iter()
            .take(limit)
            .map(|(peer, s)| {
                (
                    peer.clone(),
                    RetainedSecret {
                        client: s.client.clone(),
                        secret: s.secret.duplicate(),
                        created: s.created,
                        verified: s.verified,
                    },
                )
            })
            .collect())
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

    fn revoke_verification(&mut self, peer: &str, client: &str) -> Result<(), TrustStoreError> {
        if let Some(list) = self.secrets.get_mut(peer) {
            for s in list.iter_mut().filter(|s| s.client == client) {
                s.verified = false;
            }
        }
        self.sas_dismissed
            .retain(|(p, c)| !(p == peer && c == client));
        Ok(())
    }

    fn record_delivery(&mut self, peer: &str, message_id: &str) -> Result<bool, TrustStoreError> {
        Ok(self.delivered.first_delivery(peer, message_id))
    }

    fn other_secret(&self, peer: &str) -> Result<Option<SecretBytes>, TrustStoreError> {
        Ok(self.passwords.get(peer).map(SecretBytes::duplicate))
    }

    fn sas_reminder_dismissed(&self, peer: &str, client: &str) -> Result<bool, TrustStoreError> {
        Ok(self
            .sas_dismissed
            .iter()
            .any(|(p, c)| p == peer && c == client))
    }

    fn dismiss_sas_reminder(&mut self, peer: &str, client: &str) -> Result<(), TrustStoreError> {
        if !self.sas_reminder_dismissed(peer, client)? {
            self.sas_dismissed
                .push((peer.to_owned(), client.to_owned()));
        }
        Ok(())
    }

    fn peer_keys(&self, peer: Option<&str>) -> Result<Vec<StoredPeerKey>, TrustStoreError> {
        let Some(peer) = peer else {
            return Ok(self.keys.iter().map(|k| k.stored.clone()).collect());
        };
        let mut bound: Vec<(u64, &StoredPeerKey)> = self
            .keys
            .iter()
            .filter_map(|k| {
                k.last_seen
                    .iter()
                    .find(|(jid, _)| jid == peer)
                    .map(|(_, seen)| (*seen, &k.stored))
            })
            .collect();
        // Most recently seen first; the sort is stable, so later records win ties.
        bound.reverse();
        bound.sort_by_key(|b| std::cmp::Reverse(b.0));
        Ok(bound.into_iter().map(|(_, k)| k.clone()).collect())
    }

    fn record_peer_key(
        &mut self,
        peer: &str,
        key: &KeyValue,
        seen_at: u64,
    ) -> Result<PeerKeyObservation, TrustStoreError> {
        let fingerprint = key_fingerprint(key);
        let previous_fingerprints: Vec<Vec<u8>> = self
            .peer_keys(Some(peer))?
            .into_iter()
            .map(|k| k.fingerprint)
            .filter(|f| *f != fingerprint)
            .collect();
        let index = match self
            .keys
            .iter()
            .position(|k| esession_crypto::ct_eq(&k.stored.fingerprint, &fingerprint))
        {
            Some(i) => i,
            None => {
                self.keys.push(MemoryKey {
                    stored: StoredPeerKey {
                        key: key.clone(),
                        fingerprint: fingerprint.clone(),
                        petname: None,
                        verified: false,
                        jids: Vec::new(),
                    },
                    last_seen: Vec::new(),
                });
                self.keys.len() - 1
            }
        };
        let Some(entry) = self.keys.get_mut(index) else {
            return Err(TrustStoreError("key vanished".to_owned()));
        };
        let bound_here = entry.stored.jids.iter().any(|j| j == peer);
        let other_jids: Vec<String> = entry
            .stored
            .jids
            .iter()
            .filter(|j| *j != peer)
            .cloned()
            .collect();
        if bound_here {
            for (jid, seen) in &mut entry.last_seen {
                if jid == peer {
                    *seen = (*seen).max(seen_at);
                }
            }
        } else {
            entry.stored.jids.push(peer.to_owned());
            entry.last_seen.push((peer.to_owned(), seen_at));
        }
        let status = if bound_here {
            PeerKeyStatus::Known
        } else if !previous_fingerprints.is_empty() {
            PeerKeyStatus::KeyChanged
        } else if !other_jids.is_empty() {
            PeerKeyStatus::SeenWithOtherJid
        } else {
            PeerKeyStatus::New
        };
        Ok(PeerKeyObservation {
            status,
            other_jids,
            previous_fingerprints,
            verified: entry.stored.verified,
            petname: entry.stored.petname.clone(),
        })
    }

    fn set_peer_key_verified(
        &mut self,
        fingerprint: &[u8],
        verified: bool,
    ) -> Result<(), TrustStoreError> {
        match self
            .keys
            .iter_mut()
            .find(|k| esession_crypto::ct_eq(&k.stored.fingerprint, fingerprint))
        {
            Some(k) => {
                k.stored.verified = verified;
                Ok(())
            }
            None => Err(TrustStoreError("no such contact key".to_owned())),
        }
    }

    fn set_peer_key_petname(
        &mut self,
        fingerprint: &[u8],
        petname: Option<&str>,
    ) -> Result<(), TrustStoreError> {
        match self
            .keys
            .iter_mut()
            .find(|k| esession_crypto::ct_eq(&k.stored.fingerprint, fingerprint))
        {
            Some(k) => {
                k.stored.petname = petname.map(str::to_owned);
                Ok(())
            }
            None => Err(TrustStoreError("no such contact key".to_owned())),
        }
    }
}

/// The XML-DSig `<KeyValue/>` of a verifying key (ESN-55): the form peers
/// see and [`key_fingerprint`] hashes. `None` for a key type XEP-0116 has no
/// KeyValue for.
pub fn key_value_of(key: &esession_crypto::VerifyingKey) -> Option<KeyValue> {
    match key.components() {
        esession_crypto::KeyComponents::Rsa { modulus, exponent } => Some(KeyValue::Rsa {
            modulus: modulus.clone(),
            exponent: exponent.clone(),
        }),
        esession_crypto::KeyComponents::Dsa { p, q, g, y } => Some(KeyValue::Dsa {
            p: p.clone(),
            q: q.clone(),
            g: g.clone(),
            y: y.clone(),
            j: None,
            seed: None,
            pgen_counter: None,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_message_id_is_not_a_first_delivery() {
        let mut store = MemoryTrustStore::new();
        assert_eq!(store.record_delivery("bob@example.com", "a1"), Ok(true));
        assert_eq!(store.record_delivery("bob@example.com", "a1"), Ok(false));
        // Per contact: the same id from someone else is theirs.
        assert_eq!(store.record_delivery("carol@example.com", "a1"), Ok(true));
    }

    #[test]
    fn delivered_ids_are_bounded_per_contact_and_in_contacts() {
        let mut ids = DeliveredIds::default();
        for i in 0..(DELIVERED_IDS_PER_CONTACT + 10) {
            assert!(ids.first_delivery("bob@example.com", &i.to_string()));
        }
        assert_eq!(
            ids.by_contact.get("bob@example.com").map(VecDeque::len),
            Some(DELIVERED_IDS_PER_CONTACT)
        );
        // The oldest ids were forgotten, the newest are still known.
        assert!(ids.first_delivery("bob@example.com", "0"));
        assert!(!ids.first_delivery(
            "bob@example.com",
            &(DELIVERED_IDS_PER_CONTACT + 9).to_string()
        ));
        for i in 0..(DELIVERED_CONTACTS + 5) {
            ids.first_delivery(&format!("c{i}@example.com"), "x");
        }
        assert_eq!(ids.by_contact.len(), DELIVERED_CONTACTS);
        assert_eq!(ids.order.len(), DELIVERED_CONTACTS);
    }
}
