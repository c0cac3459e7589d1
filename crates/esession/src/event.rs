//! What the core tells the application, and what it asks the caller to send.

use esession_crypto::{
    CipherAlgorithm, CompressionAlgorithm, HashAlgorithm, ModpGroup, SignatureAlgorithm,
};
use esession_wire::minidom::Element;
use jid::{BareJid, Jid};

use crate::Error;
use crate::config::PubkeyMethod;
use crate::ssn::{Disclosure, Logging};
use crate::stanza::StanzaKind;

/// The result of one call into the core: stanzas to send, in order, and events.
#[derive(Debug, Default)]
#[must_use = "stanzas must be sent and events shown to the user"]
pub struct Output {
    /// Stanzas to send to the XMPP server, in this order.
    pub stanzas: Vec<Element>,
    /// Events for the application.
    pub events: Vec<Event>,
}

impl Output {
    pub(crate) fn send(&mut self, stanza: Element) {
        self.stanzas.push(stanza);
    }

    pub(crate) fn event(&mut self, event: Event) {
        self.events.push(event);
    }
}

/// Identifies one session: the peer's JID (full once bound, SSN-11) and the ThreadID.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct SessionId {
    /// The peer's JID: full once the responder answered (SSN-11).
    pub peer: Jid,
    /// The XEP-0201 ThreadID.
    pub thread: String,
}

impl SessionId {
    /// The contact: the peer's bare JID.
    pub fn contact(&self) -> BareJid {
        self.peer.to_bare()
    }

    /// The peer's resource (its client), or `""` before the session is
    /// bound to a full JID (SSN-11).
    pub fn client(&self) -> &str {
        self.peer.resource().map_or("", |r| r.as_str())
    }
}

/// What was agreed, for display and policy.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SessionInfo {
    /// The short authentication string both sides must compare out of band (ESN-33).
    pub sas: String,
    /// The peer proved it holds a secret retained from an earlier session (ESN-36..41):
    /// no man-in-the-middle unless one was there from the first session. On the
    /// responder this becomes true with [`Event::RetainedSecretProven`].
    pub authenticated_by_retained_secret: bool,
    /// That retained-secret chain was SAS-verified at some point (ESN-42).
    pub retained_chain_verified: bool,
    /// An other shared secret (password) was mixed into the keys (ESN-36).
    pub other_secret_used: bool,
    /// Remind the user to compare the SAS (ESN-34): nothing verified this peer yet.
    pub sas_reminder: bool,
    /// Agreed `logging`.
    pub logging: Logging,
    /// Agreed `disclosure`; anything but `Never` must be shown at once (ESN-53).
    pub disclosure: Disclosure,
    /// Agreed MODP group.
    pub group: ModpGroup,
    /// Agreed cipher; `none` is not confidential (ESN-54).
    pub cipher: CipherAlgorithm,
    /// Agreed hash.
    pub hash: HashAlgorithm,
    /// Agreed compression.
    pub compression: CompressionAlgorithm,
    /// Agreed `stanzas`: the only kinds encrypted in this session (ENC-01, AMB-29).
    pub stanzas: Vec<StanzaKind>,
    /// We initiated the session.
    pub we_initiated: bool,
    /// The 3-message negotiation (SIGMA-I) was used: there is no SAS (`sas` is
    /// empty) and no retained secret; only the public keys authenticate (ESN-03).
    pub three_message: bool,
    /// How the peer identified itself (`init_pubkey` or `resp_pubkey`).
    pub peer_identification: PubkeyMethod,
    /// How we identified ourselves.
    pub own_identification: PubkeyMethod,
    /// The public key the peer proved it holds (its signature verified), if it
    /// identified with `key` or `hash`. When its `verified` is false the session
    /// is encrypted but NOT authenticated by that key (AMB-43): it was accepted
    /// only because [`crate::Config::dangerously_accept_unverified_keys`] is set.
    pub peer_key: Option<PeerKeyInfo>,
    /// Key alerts raised during the negotiation (ESN-49..52), also sent as
    /// [`Event::SecurityAlert`]s.
    pub key_alerts: Vec<SecurityAlert>,
    /// The user compared this session's SAS and confirmed it
    /// ([`crate::SessionManager::confirm_sas`], ESN-34).
    pub sas_confirmed: bool,
    /// We hold retained secrets for this contact, and the peer proved none of
    /// them: it lost its data, uses a new client, or someone is in the middle
    /// (XEP-0116 §7). Also raised as [`SecurityAlert::RetainedSecretNotProven`].
    pub broken_chain: Option<BrokenChain>,
    /// Responder only: the initiator claimed a retained secret but has not
    /// proven it yet (no stanza under the final keys arrived within
    /// [`crate::Config::retained_secret_proof_wait`]); resolved by
    /// [`Event::RetainedSecretProven`].
    pub retained_secret_unproven: bool,
    /// An XEP-0187 offline session: the sender answered the recipient's
    /// published options while she was offline. The recipient (the side
    /// with `we_initiated`) only reads it: she never sends in it (OFF-16)
    /// and starts a new session to reply.
    pub offline: bool,
}

impl SessionInfo {
    /// Whether the peer is authenticated by a public key the user verified.
    pub fn authenticated_by_key(&self) -> bool {
        self.peer_key.as_ref().is_some_and(|k| k.verified)
    }

    /// Whether the user has verified who is at the other end: by a verified
    /// public key, by confirming this session's SAS, or by a proven retained
    /// secret whose chain was SAS-verified (ESN-34, ESN-42).
    pub fn is_verified(&self) -> bool {
        self.authenticated_by_key()
            || self.sas_confirmed
            || (self.authenticated_by_retained_secret && self.retained_chain_verified)
    }
}

/// A retained-secret chain the peer did not continue (issue 10: the one
/// signal retained secrets exist to give, XEP-0116 §7).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BrokenChain {
    /// At least one of the secrets we hold for this contact continues a chain
    /// the user SAS-verified (ESN-42): the alarm is loud.
    pub chain_verified: bool,
    /// The contact's clients (resources) we hold secrets for.
    pub clients: Vec<String>,
}

/// A peer's public key as shown to the user (ESN-52: the petname first).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PeerKeyInfo {
    /// The user's petname for the key, to be shown more prominently than the JID (ESN-52).
    pub petname: Option<String>,
    /// SHA-256 of the normalized `<KeyValue/>` ([`crate::trust::key_fingerprint`]).
    pub fingerprint: Vec<u8>,
    /// Its algorithm.
    pub algorithm: SignatureAlgorithm,
    /// The user verified this key out of band (ESN-49).
    pub verified: bool,
}

/// Why a session ended.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum TerminationReason {
    /// We asked and the peer acknowledged under its keys (ESN-46).
    LocalRequest,
    /// The peer asked, authenticated; we acknowledged (ESN-46).
    PeerRequest,
    /// A stanza failed verification or decryption (ENC-12/13); the peer was told
    /// with an encrypted terminate form (AMB-53).
    IntegrityFailure,
    /// The keys reached their block limit while `rekey_freq` barred a rekey
    /// (ENC-19, AMB-28); the peer was told with an encrypted terminate form.
    /// Start a new session for fresh keys.
    KeysExhausted,
    /// The peer's full JID sent unavailable presence (SSN-16, with
    /// [`crate::Config::end_session_on_peer_unavailable`]): we sent the
    /// encrypted terminate form and destroyed the keys without waiting for an
    /// acknowledgement.
    PeerUnavailable,
    /// The peer sent an encrypted stanza of a kind the session did not agree
    /// (ENC-01); nothing of it was decrypted, and the peer was told with an
    /// encrypted terminate form.
    StanzaKindNotAgreed,
    /// Our connection to the server was re-established as a new stream
    /// ([`crate::SessionManager::connection_reset`]): the session could not
    /// continue reliably, so it was ended (an encrypted terminate was sent)
    /// and its keys destroyed. Start a new one.
    ConnectionReset,
    /// The peer answered a stanza of this session with `item-not-found`: it no
    /// longer holds the session (it restarted, or ended it). The stanza was
    /// not delivered. The error is not authenticated, but the only thing it
    /// can cause is a new negotiation.
    PeerLostSession,
    /// XEP-0187 (OFF-17): an offline session we started ended because the
    /// contact came online; the encrypted terminate form was sent, and
    /// nothing acknowledges it (AMB-74). Further messages go in a new session.
    PeerOnline,
}

impl TerminationReason {
    /// A stable machine name (`"peer_request"`, ...) for JSON events and
    /// bindings; one list, so every interface names a reason the same way.
    pub fn name(&self) -> &'static str {
        match self {
            Self::LocalRequest => "local_request",
            Self::PeerRequest => "peer_request",
            Self::IntegrityFailure => "integrity_failure",
            Self::KeysExhausted => "keys_exhausted",
            Self::PeerUnavailable => "peer_unavailable",
            Self::StanzaKindNotAgreed => "stanza_kind_not_agreed",
            Self::ConnectionReset => "connection_reset",
            Self::PeerLostSession => "peer_lost_session",
            Self::PeerOnline => "peer_online",
        }
    }
}

/// Why an offline message (XEP-0187) was not read. The sender is never told
/// (OFF-15); the user always is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum OfflineRejection {
    /// It answers option sets we no longer hold: they were replaced, or used
    /// up, or this program never held them. It cannot be decrypted.
    UnknownOptions,
    /// It answers option sets that expired before we read it (OFF-13, AMB-71).
    Expired,
    /// It repeats an offline session already read (OFF-14): a replay.
    Replayed,
    /// The sender's identity did not verify, or their key is not one you
    /// verified (OFF-15): nothing of it is shown.
    NotAuthenticated,
    /// It is not a well-formed offline session stanza.
    Unreadable,
    /// It came beyond our limits (too large, too many from one sender in a
    /// minute, or too many sessions at once): it was not read.
    Limited,
    /// Its `logging` (off the record or not) is one our archiving policy or
    /// our server's archive does not allow now (ARC-05/07): it was not read.
    ArchivingPolicy,
}

impl OfflineRejection {
    /// What happened, for a person.
    pub fn describe(self) -> &'static str {
        match self {
            Self::UnknownOptions => {
                "it answers offline options this device no longer holds, so it cannot be decrypted"
            }
            Self::Expired => {
                "it answers offline options that had expired, so it was discarded unread"
            }
            Self::Replayed => {
                "it repeats an offline message already read (a replay), so it was ignored"
            }
            Self::NotAuthenticated => {
                "the sender could not be authenticated (their key is not one you verified, or the message was altered), so nothing of it is shown"
            }
            Self::Unreadable => "it is not a well-formed offline message",
            Self::Limited => {
                "it came beyond the limits on size, rate or sessions at once, so it was not read"
            }
            Self::ArchivingPolicy => {
                "it was written in a session your archiving policy (or your server's archive) does not allow now, so it was not read"
            }
        }
    }
}

/// An event for the application.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A peer offered a session and policy wants the user to decide (SSN-09).
    OfferReceived {
        /// The session offered.
        session: SessionId,
    },
    /// The ESession is established: the SAS and security facts to show.
    Established {
        /// Which session.
        session: SessionId,
        /// What was agreed.
        info: SessionInfo,
    },
    /// The peer's first stanza under the final keys proved the retained secret
    /// it claimed during negotiation (responder side, ESN-35, AMB-57): the
    /// session is now authenticated by the retained secret.
    RetainedSecretProven {
        /// Which session.
        session: SessionId,
        /// That retained-secret chain was SAS-verified earlier (ESN-42).
        chain_verified: bool,
    },
    /// A stanza error about a stanza we sent in this session (a server bounce);
    /// it is not authenticated and changes nothing.
    DeliveryError {
        /// Which session.
        session: SessionId,
    },
    /// A security fact the user must be told at once (ESN-53 and friends).
    SecurityAlert {
        /// Which session.
        session: SessionId,
        /// What.
        alert: SecurityAlert,
    },
    /// A decrypted, authenticated message (ENC-13).
    MessageReceived {
        /// Which session.
        session: SessionId,
        /// The message with its encrypted children restored in place of
        /// `<c/>`; of the clear parts only `<thread/>` and `<amp/>`.
        message: Element,
        /// The `<error/>` of a type='error' message: it travels in clear
        /// (ENC-02), so it is NOT authenticated; never shown as the peer's.
        unauthenticated_error: Option<Element>,
    },
    /// A decrypted, authenticated `<presence/>` or `<iq/>` (ENC-01..03, AMB-26):
    /// bound to the one session with that full JID that agreed its kind. Its
    /// encrypted content is restored in place of `<c/>`; the `<error/>` of an
    /// error stanza keeps its clear defined condition (ENC-02) and its
    /// decrypted inner content. Clear children sent beside `<c/>` are not
    /// authenticated and are left out.
    StanzaReceived {
        /// Which session.
        session: SessionId,
        /// The stanza.
        stanza: Element,
    },
    /// The peer asked, in the session, to continue it on another of its
    /// resources (SSN-13). Keys and counters cannot move (AMB-39): the old
    /// session is being terminated (its acknowledgement ends it with
    /// [`Event::Terminated`]) and a fresh negotiation was offered to the new
    /// resource on a new thread.
    SessionMoved {
        /// The session being terminated.
        old: SessionId,
        /// The new negotiation, with the new resource.
        new: SessionId,
    },
    /// The peer asked, in the session, to renegotiate its parameters (SSN-14);
    /// we answered `renegotiate=0` (AMB-39): the agreed parameters stay in
    /// force. New parameters need a new session.
    RenegotiationRefused {
        /// Which session.
        session: SessionId,
    },
    /// A stanza arrived in clear on an encrypted session's thread and was dropped (ESN-44).
    ClearStanzaDropped {
        /// Which session.
        session: SessionId,
    },
    /// The peer sent a clear-text terminate form; it is unauthenticated and was
    /// not obeyed (AMB-54).
    UnauthenticatedTerminateRequest {
        /// Which session.
        session: SessionId,
    },
    /// An offer arrived from offline storage (XEP-0203 delay); it was not
    /// answered, and a fresh offer was sent on a new thread instead (SSN-10).
    StaleOfferReplaced {
        /// The stale offer.
        stale: SessionId,
        /// Our new offer.
        session: SessionId,
    },
    /// The peer identified by the fingerprint of a key we do not hold, so that
    /// negotiation failed (ESN-27); we offered again asking for the full key.
    RetryingWithFullKey {
        /// The failed negotiation.
        failed: SessionId,
        /// Our new offer.
        session: SessionId,
    },
    /// A plain (unencrypted) stanza session was agreed at the peer's request (ESN-11).
    PlainSessionAccepted {
        /// Which session.
        session: SessionId,
    },
    /// An offline message (XEP-0187) arrived and was not read; the sender
    /// was not told (OFF-15).
    OfflineMessageRejected {
        /// The sender (full JID) and the thread.
        session: SessionId,
        /// Why.
        reason: OfflineRejection,
    },
    /// A negotiation failed; its state is gone (ESN-10).
    NegotiationFailed {
        /// Which session.
        session: SessionId,
        /// Why.
        error: Error,
    },
    /// The trust store failed; retained secrets may not have been read or saved.
    TrustStoreFailure {
        /// What failed (no secret data).
        error: crate::trust::TrustStoreError,
    },
    /// The peer acknowledged a message we sent with
    /// [`crate::SessionManager::send_text`] (encrypted XEP-0184 receipt).
    MessageDelivered {
        /// Which session.
        session: SessionId,
        /// The id [`crate::SessionManager::send_text`] returned.
        id: String,
    },
    /// An encrypted stanza arrived on a thread we hold no session for (we
    /// restarted, or the session ended): it cannot be decrypted. With
    /// [`crate::Config::answer_unknown_sessions`] its sender was told
    /// (`item-not-found`) and will negotiate again.
    UnknownSessionStanza {
        /// The sender (full JID) and the thread.
        session: SessionId,
        /// Whether the sender was told.
        answered: bool,
    },
    /// A refused negotiation looked like it came from a client this profile
    /// interoperates with (issue 10: Gajim 0.12-0.16's `text-single`
    /// FORM_TYPE or 8-byte nonces): suggest selecting it for the contact
    /// ([`crate::SessionManager::set_profile`]). Nothing was changed.
    ProfileSuggested {
        /// The refused negotiation.
        session: SessionId,
        /// The profile that would likely work.
        profile: crate::Profile,
    },
    /// The session ended; its keys are destroyed.
    Terminated {
        /// Which session.
        session: SessionId,
        /// Why.
        reason: TerminationReason,
    },
}

/// Security facts that must reach the user prominently.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum SecurityAlert {
    /// The agreed `disclosure` is not `never` (ESN-53).
    DisclosureNotNever(crate::ssn::Disclosure),
    /// The `none` cipher was agreed: messages are NOT confidential (ESN-54).
    NoConfidentiality,
    /// The peer showed a public key never seen before (ESN-49). Unless verified
    /// out of band it does not authenticate the peer.
    NewPeerKey(PeerKeyInfo),
    /// ESN-51: the peer's JID showed other keys before and now shows this one.
    PeerKeyChanged {
        /// The key now shown.
        key: PeerKeyInfo,
        /// Fingerprints of the keys the JID used before, newest first.
        previous_fingerprints: Vec<Vec<u8>>,
    },
    /// ESN-50: this key is known, but from other JIDs.
    PeerKeySeenWithOtherJid {
        /// The key (with its petname, ESN-52).
        key: PeerKeyInfo,
        /// The other bare JIDs it was seen with.
        other_jids: Vec<String>,
    },
    /// ESN-51: the peer's JID showed keys before and now identifies with none.
    PeerKeyMissing {
        /// Fingerprints of the keys the JID used before, newest first.
        previous_fingerprints: Vec<Vec<u8>>,
    },
    /// The peer's key was never verified by the user (AMB-43). The negotiation
    /// fails, unless [`crate::Config::dangerously_accept_unverified_keys`] lets the
    /// session go on encrypted but unauthenticated.
    UnverifiedPeerKey(PeerKeyInfo),
    /// `hash` identification named a key we do not hold (ESN-27): the
    /// negotiation failed. (The fingerprint uses the negotiated hash.)
    UnknownKeyFingerprint {
        /// The fingerprint the peer sent.
        fingerprint: Vec<u8>,
    },
    /// We hold retained secrets for this contact and the peer proved none of
    /// them (issue 10): they lost their data or use a new client, or someone
    /// is in the middle. Compare the SAS now.
    RetainedSecretNotProven(BrokenChain),
}
