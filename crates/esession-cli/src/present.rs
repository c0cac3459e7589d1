//! How session events are shown to a person.

use esession::{Error, Event, SecurityAlert, SessionInfo, TerminationReason};
use esession_wire::ns;

/// A message's body text, if any.
pub(crate) fn body(message: &esession_wire::minidom::Element) -> Option<String> {
    message
        .get_child("body", ns::JABBER_CLIENT)
        .map(|b| b.text())
}

/// The banner shown when a session is established: SAS and security facts.
pub(crate) fn established(peer: &str, info: &SessionInfo) -> String {
    let mut lines = vec![
        format!("*** Encrypted session established with {peer}"),
        format!(
            "*** Algorithms: MODP group {}, {}, {}, compression {}",
            info.group.id(),
            info.cipher,
            info.hash,
            info.compression.name()
        ),
    ];
    if info.authenticated_by_retained_secret {
        lines.push(format!(
            "*** Authenticated by the secret retained from your last session with this client{}",
            if info.retained_chain_verified {
                " (that chain was SAS-verified)."
            } else {
                "."
            }
        ));
    }
    if info.sas_reminder {
        lines.push(format!("*** SHORT AUTHENTICATION STRING: {}", info.sas));
        lines.push(
            "*** Compare it with your contact over another channel (voice, in person).".to_owned(),
        );
        lines.push("*** Type /verify if it matches, /distrust if it does not; keep chatting to decide later.".to_owned());
        if !info.authenticated_by_retained_secret {
            lines
                .push("*** Until then this session is encrypted but NOT authenticated.".to_owned());
        }
    } else {
        lines.push(format!(
            "*** SAS {} (already verified for this contact).",
            info.sas
        ));
    }
    if info.logging == esession::ssn::Logging::MustNot {
        lines.push("*** Off the record: neither side may log this conversation.".to_owned());
    }
    lines.join("\n")
}

/// An alert, prominently.
pub(crate) fn alert(peer: &str, alert: &SecurityAlert) -> String {
    match alert {
        SecurityAlert::DisclosureNotNever(d) => format!(
            "!!! SECURITY ALERT: {peer} may DISCLOSE this conversation to third parties (disclosure={}).",
            d.value()
        ),
        SecurityAlert::NoConfidentiality => {
            format!("!!! SECURITY ALERT: the session with {peer} uses NO ENCRYPTION (cipher none).")
        }
        other => format!("!!! SECURITY ALERT for {peer}: {other:?}"),
    }
}

/// Why a negotiation failed, in words a user can act on.
pub(crate) fn failure(peer: &str, error: &Error) -> String {
    match error {
        Error::Declined => format!("{peer} declined the encrypted session."),
        Error::Timeout => format!(
            "{peer} did not answer the encrypted-session offer in time (offline, or no ESession support)."
        ),
        Error::PeerError {
            condition: Some(esession::ssn::ErrorCondition::ServiceUnavailable),
            ..
        } => {
            format!("{peer} does not support encrypted sessions (service-unavailable).")
        }
        Error::PeerError { condition, fields } => {
            format!(
                "{peer} refused the negotiation ({condition:?}{}).",
                fields_text(fields)
            )
        }
        Error::Refused { condition, fields } => {
            format!(
                "We refused {peer}'s negotiation message ({condition:?}{}).",
                fields_text(fields)
            )
        }
        other => format!("Negotiation with {peer} failed: {other}"),
    }
}

fn fields_text(fields: &[String]) -> String {
    if fields.is_empty() {
        String::new()
    } else {
        format!(" on {}", fields.join(", "))
    }
}

/// Termination, in words.
pub(crate) fn terminated(peer: &str, reason: &TerminationReason) -> String {
    match reason {
        TerminationReason::LocalRequest => format!("*** Session with {peer} ended."),
        TerminationReason::PeerRequest => format!("*** {peer} ended the session."),
        TerminationReason::IntegrityFailure => format!(
            "!!! A stanza from {peer} failed verification: the session was ended and nothing of it was shown."
        ),
        TerminationReason::KeysExhausted => format!(
            "*** The session with {peer} used up its keys and the agreed rekey interval barred new ones: it was ended (your last message was NOT sent). Use /start for a new session."
        ),
        other => format!("*** Session with {peer} ended ({other:?})."),
    }
}

/// A one-line description of any other event, or `None` to stay quiet.
pub(crate) fn other(event: &Event) -> Option<String> {
    match event {
        Event::ClearStanzaDropped { session } => Some(format!(
            "!!! {} sent an UNENCRYPTED stanza inside the encrypted session; it was dropped.",
            session.peer
        )),
        Event::UnauthenticatedTerminateRequest { session } => Some(format!(
            "!!! Someone asked, without authentication, to end the session with {}; ignored. Use /end to end it.",
            session.peer
        )),
        Event::PlainSessionAccepted { session } => Some(format!(
            "*** Plain (unencrypted) session with {}.",
            session.peer
        )),
        Event::RetainedSecretProven {
            session,
            chain_verified,
        } => Some(format!(
            "*** {} proved the secret retained from your last session{}",
            session.peer,
            if *chain_verified {
                " (SAS-verified chain): authenticated."
            } else {
                ": authenticated by continuity."
            }
        )),
        Event::DeliveryError { session } => Some(format!(
            "*** A message to {} could not be delivered.",
            session.peer
        )),
        Event::TrustStoreFailure { error } => Some(format!("!!! {error}")),
        _ => None,
    }
}
