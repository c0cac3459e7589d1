//! One error type; variants say who is at fault (style practice 8).

use crate::ssn::ErrorCondition;

/// What went wrong.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A peer's negotiation message was refused; this error was sent back (SSN-08, AMB-52).
    #[error("we refused the peer's negotiation message ({}{})", condition.element(), fields_text(fields))]
    Refused {
        /// The condition sent.
        condition: ErrorCondition,
        /// The fields named in the reply.
        fields: Vec<String>,
    },
    /// The peer answered with a stanza error.
    #[error("the peer answered with an error ({}{})", condition.map_or("unknown condition", |c| c.element()), fields_text(fields))]
    PeerError {
        /// The condition, if we know it.
        condition: Option<ErrorCondition>,
        /// Fields the peer named.
        fields: Vec<String>,
    },
    /// The peer declined the offer (SSN-07) or cancelled it (SSN-12).
    #[error("the peer declined the session")]
    Declined,
    /// A stanza failed authentication, decryption or parsing. Deliberately
    /// opaque (ENC-12/13): the session is terminated.
    #[error("stanza failed authentication or decryption")]
    Decrypt,
    /// The peer did not complete the negotiation in time.
    #[error("negotiation timed out")]
    Timeout,
    /// No session with that peer and thread.
    #[error("no such session")]
    UnknownSession,
    /// The session is not established yet.
    #[error("session not established")]
    NotEstablished,
    /// The session has ended: nothing more may be sent (ESN-47).
    #[error("session has ended")]
    SessionEnded,
    /// A rekey was asked for before `rekey_freq` stanzas since the last key
    /// exchange (ENC-14, AMB-55), or while too many of our rekeys are unanswered.
    #[error("too early to rekey")]
    RekeyTooSoon,
    /// The current keys reached their block limit and `rekey_freq` bars a
    /// rekey (ENC-19, AMB-28): the session must end.
    #[error("keys exhausted and rekeying not allowed yet")]
    KeysExhausted,
    /// The session did not agree to encrypt this kind of stanza (ENC-01):
    /// nothing was sent, in particular not in clear.
    #[error("the session did not agree to encrypt <{}/> stanzas", .0.name())]
    StanzaKindNotAgreed(crate::StanzaKind),
    /// Several sessions with that full JID agreed this stanza kind: a presence
    /// or iq could not be bound to one of them, so it is not encrypted (AMB-26).
    #[error("several sessions with that peer could carry it (AMB-26)")]
    AmbiguousSession,
    /// Our connection to the server restarted as a new stream while the
    /// negotiation was in progress ([`crate::SessionManager::connection_reset`]).
    #[error("the connection to the server was reset during the negotiation")]
    ConnectionReset,
    /// The caller passed something the API cannot use.
    #[error("invalid input: {0}")]
    InvalidInput(&'static str),
    /// A limit of [`crate::Limits`] was reached (issue 11): the negotiation
    /// was dropped or refused.
    #[error("{0}")]
    LimitReached(LimitKind),
    /// The [`crate::Config`] given to [`crate::SessionManager::new`] cannot
    /// work: nothing was built.
    #[error("invalid configuration: {0}")]
    InvalidConfig(ConfigError),
    /// The session was opened by the contact while we were offline
    /// (XEP-0187): we only read it and never send in it (OFF-16). Start a new
    /// session to reply.
    #[error(
        "this session was opened while you were offline and can only be read; start a new session to reply"
    )]
    OfflineSessionReadOnly,
    /// XEP-0187: the contact's published options cannot be used (OFF-08):
    /// nothing was sent.
    #[error("the contact's offline options cannot be used: {0}")]
    OfflineOptions(OptionsError),
    /// No `logging` value satisfies the off-the-record policy for the
    /// contact and what our server's archive allows (ARC-03/07, SSN-03):
    /// nothing was sent.
    #[error("{0}")]
    Archiving(crate::archiving::ArchivingConflict),
    /// XEP-0187: an ESession with the contact exists, so no offline session
    /// may start (OFF-07); send in that session.
    #[error("a session with this contact exists already; send in it")]
    SessionExists,
}

/// Who is at fault for an [`Error`], so an application can tell the user
/// whom to suspect: a peer that misbehaves is an alarm, one that cannot
/// agree with us is not.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Fault {
    /// What the peer (or someone between us) sent failed verification: a
    /// forged or corrupt stanza, a negotiation step whose MAC or signature
    /// does not check. Also what two honest clients see when they hold
    /// different secrets (a shared password set on one side only): the
    /// protocol cannot tell the two apart (AMB-52), so treat it as an alarm
    /// until the secrets are ruled out.
    Peer,
    /// The peer is not at fault but we cannot agree: no common algorithm,
    /// it declined, it answered with an error.
    Incompatible,
    /// The application asked for something impossible (no such session,
    /// not established yet, invalid input or configuration).
    Application,
    /// Our side or the network: a timeout, a reset connection, a limit of ours.
    Local,
}

impl Error {
    /// Who is at fault (see [`Fault`]).
    pub fn fault(&self) -> Fault {
        match self {
            // Messages 3 and 4 fail without detail (AMB-52): a MAC, a
            // signature or a value that did not verify. A named field is an
            // option we could not accept.
            Self::Refused { condition, fields } => match (condition, fields.is_empty()) {
                (ErrorCondition::FeatureNotImplemented, true) => Fault::Peer,
                (ErrorCondition::NotAcceptable, true) => Fault::Peer,
                _ => Fault::Incompatible,
            },
            Self::Decrypt => Fault::Peer,
            Self::PeerError { .. } | Self::Declined => Fault::Incompatible,
            Self::UnknownSession
            | Self::NotEstablished
            | Self::SessionEnded
            | Self::RekeyTooSoon
            | Self::StanzaKindNotAgreed(_)
            | Self::AmbiguousSession
            | Self::InvalidInput(_)
            | Self::InvalidConfig(_)
            | Self::OfflineSessionReadOnly
            | Self::SessionExists => Fault::Application,
            Self::OfflineOptions(_) => Fault::Incompatible,
            Self::Archiving(_) => Fault::Local,
            Self::Timeout | Self::ConnectionReset | Self::KeysExhausted | Self::LimitReached(_) => {
                Fault::Local
            }
        }
    }

    /// The XEP-0155 condition we sent to the peer for this error, if we sent one.
    pub fn condition_sent(&self) -> Option<ErrorCondition> {
        match self {
            Self::Refused { condition, .. } => Some(*condition),
            _ => None,
        }
    }
}

/// Why a [`crate::Config`] cannot work (checked by [`crate::SessionManager::new`]).
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A list of algorithms or options is empty: nothing could be offered or accepted.
    #[error(
        "`{0}` lists nothing we could offer or accept; list at least one value (the default lists them all)"
    )]
    Empty(&'static str),
    /// Only the `none` cipher is listed, and it is not allowed.
    #[error(
        "`ciphers` lists only `none`, which is refused unless `dangerously_allow_none_cipher` is set; list a confidential cipher"
    )]
    NoConfidentialCipher,
    /// A limit is zero where no session could ever be established.
    #[error("`limits.{0}` is 0: no session could ever be established; use a positive number")]
    ZeroLimit(&'static str),
    /// `max_plaintext_len` is 0: no stanza could ever be delivered.
    #[error(
        "`max_plaintext_len` is 0: no stanza could ever be delivered; use a positive number (default 1 MiB)"
    )]
    ZeroPlaintextLen,
}

/// Which limit of [`crate::Limits`] was reached.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum LimitKind {
    /// Too many negotiations in progress with this contact: the oldest was dropped.
    PendingNegotiationsPerPeer,
    /// Too many negotiations in progress in all: the oldest was dropped.
    PendingNegotiationsTotal,
    /// Too many sessions with this contact (established, or started by us
    /// and in progress): the offer was refused, or ours not started.
    SessionsPerPeer,
    /// Too many sessions in all: the offer was refused, or ours not started.
    SessionsTotal,
    /// This contact's stanzas made us start negotiations too often: not started.
    UnsolicitedStarts,
    /// The offer was larger than we evaluate: refused.
    OfferTooLarge,
    /// The offer left only an expensive group, and such answers are
    /// rate-limited: refused.
    ExpensiveGroup,
    /// The offer left only zlib, and the zlib sessions are at their cap: refused.
    CompressedSessions,
}

impl core::fmt::Display for LimitKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::PendingNegotiationsPerPeer => {
                "too many negotiations in progress with this contact (the oldest was dropped)"
            }
            Self::PendingNegotiationsTotal => {
                "too many negotiations in progress (the oldest was dropped)"
            }
            Self::SessionsPerPeer => {
                "too many sessions with this contact: no new one is started or accepted until one ends"
            }
            Self::SessionsTotal => {
                "too many sessions in all: no new one is started or accepted until one ends"
            }
            Self::UnsolicitedStarts => {
                "this contact made us start negotiations too often (not started)"
            }
            Self::OfferTooLarge => "the offer was larger than we accept (refused)",
            Self::ExpensiveGroup => {
                "the offer allowed only an expensive group, and too many were answered this minute (refused)"
            }
            Self::CompressedSessions => {
                "the offer allowed only zlib compression, and too many compressed sessions are open (refused)"
            }
        })
    }
}

/// ", on field1, field2" for an error's field list, or nothing.
fn fields_text(fields: &[String]) -> String {
    if fields.is_empty() {
        String::new()
    } else {
        format!(", on {}", fields.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_names_who_is_at_fault() {
        let refused = |condition, fields: &[&str]| Error::Refused {
            condition,
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        };
        // AMB-52: a failure in messages 3-4 carries no detail: a forgery.
        assert_eq!(
            refused(ErrorCondition::FeatureNotImplemented, &[]).fault(),
            Fault::Peer
        );
        assert_eq!(
            refused(ErrorCondition::NotAcceptable, &["crypt_algs"]).fault(),
            Fault::Incompatible
        );
        assert_eq!(Error::Decrypt.fault(), Fault::Peer);
        assert_eq!(Error::Declined.fault(), Fault::Incompatible);
        assert_eq!(Error::UnknownSession.fault(), Fault::Application);
        assert_eq!(
            Error::InvalidConfig(ConfigError::ZeroPlaintextLen).fault(),
            Fault::Application
        );
        assert_eq!(Error::Timeout.fault(), Fault::Local);
        assert_eq!(
            Error::LimitReached(LimitKind::SessionsTotal).fault(),
            Fault::Local
        );
        assert_eq!(
            refused(ErrorCondition::NotAcceptable, &["modp"]).condition_sent(),
            Some(ErrorCondition::NotAcceptable)
        );
        assert_eq!(Error::Timeout.condition_sent(), None);
    }
}

/// Why a contact's XEP-0187 option set is not used (OFF-08); also
/// reachable as `esession::offline::OptionsError`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsError {
    /// Not a data form we can normalize.
    #[error("the options are not a well-formed data form")]
    Malformed,
    /// No signature verifies with a key we trust (OFF-08, AMB-69).
    #[error("no signature on the options verifies with a key you trust")]
    NotSigned,
    /// `expires` is missing, unreadable or past (OFF-08, AMB-71).
    #[error("the options have expired (or carry no readable expiry)")]
    Expired,
    /// The options ask for something we do not do (AMB-34/75).
    #[error("the options ask for something unsupported: {0}")]
    Unsupported(&'static str),
    /// Signing failed.
    #[error("the options could not be signed")]
    SigningFailed,
}
