//! The public record types of the typed (non-trait) API.

/// One of our signing keys (row id in `signing_keys`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub i64);

/// A contact's key as remembered by one of our accounts (row id in `peer_keys`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKeyId(pub i64);

/// Public information about one of our signing keys (the private part is
/// returned only by [`crate::Store::signing_key_private`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKeyInfo {
    /// Its id.
    pub id: KeyId,
    /// The algorithm name the caller gave (e.g. `"rsa"`, `"dsa"`).
    pub algorithm: String,
    /// The public key as the caller gave it (KeyValue XML or DER).
    pub public_key: Vec<u8>,
    /// When it was added (Unix seconds, system clock).
    pub created: u64,
}

/// What [`crate::Store::record_peer_key`] found (ESN-49..51).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStatus {
    /// A fingerprint never seen before, from a JID that had no key: nothing to alert.
    New,
    /// The fingerprint was already bound to this JID.
    Known,
    /// ESN-50: the fingerprint is known, but only from other JIDs
    /// ([`KeyObservation::other_jids`]). Alert at once.
    SeenWithOtherJid,
    /// ESN-51: this JID had other keys ([`KeyObservation::previous_fingerprints`])
    /// and now shows one it never used. Alert. (The key may also be known from
    /// other JIDs: see [`KeyObservation::other_jids`].)
    KeyChanged,
}

impl KeyStatus {
    /// Whether the user must be alerted (ESN-50/51).
    pub fn is_alert(self) -> bool {
        matches!(self, Self::SeenWithOtherJid | Self::KeyChanged)
    }
}

/// The result of recording that a contact showed a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyObservation {
    /// The stored key.
    pub key_id: PeerKeyId,
    /// New, known, or an alert.
    pub status: KeyStatus,
    /// Other JIDs this key was seen with before (ESN-50), oldest binding first.
    pub other_jids: Vec<String>,
    /// Fingerprints of other keys this JID used before (ESN-51), most recently
    /// seen first.
    pub previous_fingerprints: Vec<Vec<u8>>,
    /// Whether the user has verified this key.
    pub verified: bool,
    /// The user's petname for this key (ESN-52).
    pub petname: Option<String>,
}

/// A JID a contact key was seen with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenJid {
    /// The contact's bare JID.
    pub jid: String,
    /// When the key was first seen with it (Unix seconds).
    pub first_seen: u64,
    /// When the key was last seen with it (Unix seconds).
    pub last_seen: u64,
}

/// A contact's key and everything remembered about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerKey {
    /// Its id.
    pub id: PeerKeyId,
    /// The fingerprint (as the caller computes it).
    pub fingerprint: Vec<u8>,
    /// The public key as first received (KeyValue XML or DER).
    pub keyvalue: Vec<u8>,
    /// The user's petname for it (ESN-52), shown more prominently than a JID.
    pub petname: Option<String>,
    /// Whether the user verified it (ESN-49).
    pub verified: bool,
    /// When it was first seen (Unix seconds).
    pub first_seen: u64,
    /// Every JID it was seen with, in order of first sighting.
    pub jids: Vec<SeenJid>,
}

/// Short-authentication-string confirmation state of one contact client (ESN-34).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SasState {
    /// Comparison postponed: remind the user at each ESession start.
    Pending,
    /// The user compared and confirmed the SAS.
    Confirmed,
    /// The user declined to compare; do not remind.
    Dismissed,
}

impl SasState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Dismissed => "dismissed",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "confirmed" => Some(Self::Confirmed),
            "dismissed" => Some(Self::Dismissed),
            _ => None,
        }
    }
}

/// SAS state of one (contact, client).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SasRecord {
    /// The contact's bare JID.
    pub peer: String,
    /// The contact's client (resource).
    pub client: String,
    /// The state.
    pub state: SasState,
    /// When it was last set (Unix seconds, as given by the caller).
    pub updated: u64,
}

/// The metadata of a retained secret (no secret bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetainedSecretInfo {
    /// The contact's client.
    pub client: String,
    /// When it was stored (Unix seconds, as given by the core).
    pub created: u64,
    /// `created` plus the store's retained-secret lifetime at the time it was
    /// stored or the lifetime was last changed.
    pub expires: u64,
    /// Whether its chain was ever SAS-verified (ESN-42).
    pub verified: bool,
}

/// What [`crate::Store::check`] verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// The schema version.
    pub schema_version: u32,
    /// Our signing keys (all decrypted).
    pub signing_keys: usize,
    /// Contacts' keys.
    pub peer_keys: usize,
    /// Retained secrets (all decrypted).
    pub retained_secrets: usize,
    /// Other shared secrets (all decrypted).
    pub other_secrets: usize,
}

/// One message of the local history (issue 14): a message of a session that
/// may be logged, decrypted.
#[derive(Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The contact's bare JID.
    pub contact: String,
    /// The contact's full JID in that session.
    pub peer: String,
    /// The session's ThreadID.
    pub thread: String,
    /// Sent by us (else received).
    pub outgoing: bool,
    /// When it was sent or received (Unix seconds).
    pub time: u64,
    /// Whether the session was authenticated (a verified SAS or key, or a
    /// retained secret from a verified chain) when the message passed.
    pub verified: bool,
    /// The text.
    pub body: String,
}

/// The message text stays out of debug output (it is what the store seals).
impl core::fmt::Debug for HistoryEntry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HistoryEntry")
            .field("contact", &self.contact)
            .field("thread", &self.thread)
            .field("outgoing", &self.outgoing)
            .field("time", &self.time)
            .field("verified", &self.verified)
            .finish_non_exhaustive()
    }
}

/// A contact's history as read back.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct History {
    /// The messages, oldest first.
    pub entries: Vec<HistoryEntry>,
    /// Rows whose text did not open (damaged or edited): left out.
    pub unreadable: usize,
}
