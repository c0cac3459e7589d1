//! How session events are shown to a person.

use esession::{Error, Event, PeerKeyInfo, SecurityAlert, SessionInfo, TerminationReason};
use esession_wire::ns;

/// A message's body text, if any.
pub(crate) fn body(message: &esession_wire::minidom::Element) -> Option<String> {
    message
        .get_child("body", ns::JABBER_CLIENT)
        .map(|b| b.text())
}

/// The banner shown when a session is established: SAS and security facts.
pub(crate) fn established(peer: &str, info: &SessionInfo) -> String {
    if info.offline {
        return offline_established(peer, info);
    }
    // ESN-52: the key's petname first, more prominent than the JID.
    let who = match info.peer_key.as_ref().and_then(|k| k.petname.as_deref()) {
        Some(petname) => format!("\"{petname}\" ({peer})"),
        None => peer.to_owned(),
    };
    let mut lines = vec![
        format!("*** Encrypted session established with {who}"),
        format!(
            "*** Algorithms: MODP group {}, {}, {}, compression {}",
            info.group.id(),
            info.cipher,
            info.hash,
            info.compression.name()
        ),
    ];
    if let Some(key) = &info.peer_key {
        if key.verified {
            lines.push(format!(
                "*** Authenticated by {}'s verified public key {}.",
                peer,
                short(&key.fingerprint)
            ));
        } else {
            lines.push(format!(
                "!!! {peer}'s public key {} is NOT verified: this session is encrypted but NOT authenticated.",
                short(&key.fingerprint)
            ));
        }
    }
    if info.three_message {
        lines.push(
            "*** 3-message negotiation: authenticated by public keys only (no SAS).".to_owned(),
        );
        return lines.join("\n");
    }
    if let Some(broken) = &info.broken_chain {
        lines.push(format!(
            "!!! {peer} proved NONE of the secrets retained from earlier sessions{}: see the warning above; compare the SAS now.",
            if broken.chain_verified {
                " (a chain you had VERIFIED)"
            } else {
                ""
            }
        ));
    }
    if info.retained_secret_unproven {
        lines.push(format!(
            "*** Checking the retained secret: {peer} has not proven it yet (it will be shown when they do)."
        ));
    }
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
    if info.sas_confirmed {
        lines.push(format!(
            "*** SAS {} compared and confirmed by you: VERIFIED.",
            info.sas
        ));
    } else if info.sas_reminder {
        lines.push(format!("*** SHORT AUTHENTICATION STRING: {}", info.sas));
        lines.push(
            "*** Compare it with your contact over another channel (voice, in person).".to_owned(),
        );
        lines.push("*** Type /verify if it matches, /distrust if it does not, /dismiss to stop these reminders; keep chatting to decide later.".to_owned());
        if !info.authenticated_by_retained_secret {
            lines
                .push("*** Until then this session is encrypted but NOT authenticated.".to_owned());
        }
    } else if info.is_verified() {
        lines.push(format!(
            "*** SAS {} (already verified for this contact).",
            info.sas
        ));
    } else {
        lines.push(format!(
            "*** SAS {} (reminders dismissed): this session is encrypted but NOT verified; /verify after comparing.",
            info.sas
        ));
    }
    lines.push(logging(info.logging).to_owned());
    lines.join("\n")
}

/// The agreed `logging`, for a person (issue 14: always shown).
pub(crate) fn logging(logging: esession::ssn::Logging) -> &'static str {
    match logging {
        esession::ssn::Logging::MustNot => {
            "*** Off the record (logging=mustnot): neither side may keep this conversation, \
             and this client keeps it out of your server's archive."
        }
        _ => {
            "*** Logging allowed (logging=may): either side may keep this conversation; \
             a server archive holds only its ciphertext."
        }
    }
}

/// The server would not leave a contact out of its archive (issue 14).
pub(crate) fn off_the_record_failed(contact: &str, reason: &str, ended: usize) -> String {
    format!(
        "!!! Your server would not leave {contact} out of its archive: {reason}. \
         {ended} off-the-record session(s) with {contact} were ended. From now on sessions may \
         be kept by the server; an archiving policy of `require` (--otr) refuses to start instead."
    )
}

/// The server would not put a contact's archive rule back (issue 14).
pub(crate) fn archive_rule_not_restored(contact: &str, reason: &str) -> String {
    format!(
        "!!! Your server's archive still leaves {contact} out ({reason}): their messages are not \
         archived until you change your archive preferences with another client."
    )
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
        SecurityAlert::NewPeerKey(key) => format!(
            "!!! {peer} shows a public key never seen before: {}. Verify it with your contact, then `esession trust verify {} --fingerprint {}`.",
            key_name(key),
            peer.split('/').next().unwrap_or(peer),
            hex::encode(&key.fingerprint)
        ),
        SecurityAlert::PeerKeyChanged {
            key,
            previous_fingerprints,
        } => warning_box(
            &format!("THE PUBLIC KEY OF {peer} HAS CHANGED"),
            &[
                format!("{peer} identified with a key never used by this contact before."),
                format!(
                    "New key{}:\n    {}",
                    key.petname
                        .as_deref()
                        .map(|p| format!(" \"{p}\""))
                        .unwrap_or_default(),
                    fingerprint_full(&key.fingerprint)
                ),
                previous_keys(previous_fingerprints),
                "Either your contact changed keys (a new device or a reinstall), or someone is \
                 in the middle of this conversation."
                    .to_owned(),
                format!(
                    "What to do: ask your contact (by voice or in person) for the new \
                     fingerprint; if it matches, `esession trust verify {} --fingerprint <hex>` \
                     (or /trust <hex>); if not, /distrust.",
                    peer.split('/').next().unwrap_or(peer)
                ),
            ],
        ),
        SecurityAlert::PeerKeySeenWithOtherJid { key, other_jids } => format!(
            "!!! SECURITY ALERT: {peer} shows the key {} known from {}. Someone may be posing as {peer}.",
            key_name(key),
            other_jids.join(", ")
        ),
        SecurityAlert::PeerKeyMissing {
            previous_fingerprints,
        } => warning_box(
            &format!("{peer} NO LONGER SHOWS ITS PUBLIC KEY"),
            &[
                format!("{peer} identified with a public key before, and now with none."),
                previous_keys(previous_fingerprints),
                "Either your contact's client lost or stopped using its key, or someone is in \
                 the middle of this conversation."
                    .to_owned(),
                "What to do: compare the SAS with your contact now (by voice or in person), \
                 then /verify if it matches or /distrust if not."
                    .to_owned(),
            ],
        ),
        SecurityAlert::RetainedSecretNotProven(broken) => warning_box(
            &format!(
                "{} CONTINUITY WITH {peer} IS BROKEN",
                if broken.chain_verified {
                    "VERIFIED"
                } else {
                    "SESSION"
                }
            ),
            &[
                format!(
                    "Earlier sessions with {peer} left a shared secret on both sides{}; this \
                     session proved none of them.",
                    if broken.chain_verified {
                        ", and you had VERIFIED that chain by comparing the SAS"
                    } else {
                        ""
                    }
                ),
                "Either your contact lost their data or uses a new device or client, or \
                 SOMEONE IS IN THE MIDDLE of this conversation (XEP-0116 section 7)."
                    .to_owned(),
                "What to do: compare the short authentication string (SAS) shown below with \
                 your contact NOW, by voice or in person; type /verify if it matches, \
                 /distrust if it does not."
                    .to_owned(),
            ],
        ),
        SecurityAlert::UnverifiedPeerKey(key) => format!(
            "!!! {peer}'s key {} is not verified: the session is refused unless unverified keys are accepted (then NOT authenticated).",
            key_name(key)
        ),
        SecurityAlert::UnknownKeyFingerprint { .. } => format!(
            "!!! {peer} identified by the fingerprint of a key we do not hold; the negotiation was ended."
        ),
        _ => format!(
            "!!! SECURITY ALERT for {peer}: a security fact this version cannot describe; compare the SAS with your contact."
        ),
    }
}

/// A multi-line warning in the spirit of SSH's "REMOTE HOST IDENTIFICATION
/// HAS CHANGED": a banner, then what happened, why, and what to do.
fn warning_box(title: &str, paragraphs: &[String]) -> String {
    let rule = "!".repeat(72);
    let mut lines = vec![rule.clone(), format!("!!! WARNING: {title}"), rule.clone()];
    for paragraph in paragraphs {
        for line in paragraph.lines() {
            lines.push(format!("!!! {line}"));
        }
    }
    lines.push(rule);
    lines.join("\n")
}

/// "Previous key(s):" and each fingerprint in full, one per line.
fn previous_keys(fingerprints: &[Vec<u8>]) -> String {
    let keys: Vec<String> = fingerprints.iter().map(|fp| fingerprint_full(fp)).collect();
    format!("Previous key(s):\n    {}", keys.join("\n    "))
}

/// One line saying what a loud alert was about (for /status).
pub(crate) fn alert_summary(peer: &str, alert: &SecurityAlert) -> String {
    match alert {
        SecurityAlert::RetainedSecretNotProven(_) => {
            format!("{peer} proved none of the secrets retained from earlier sessions")
        }
        SecurityAlert::PeerKeyChanged { .. } => format!("{peer} shows another public key"),
        SecurityAlert::PeerKeyMissing { .. } => format!("{peer} no longer shows its public key"),
        SecurityAlert::PeerKeySeenWithOtherJid { other_jids, .. } => {
            format!("{peer} shows a key known from {}", other_jids.join(", "))
        }
        _ => format!("a security alert about {peer}"),
    }
}

/// ", written DAY HH:MM" from an offline message's authenticated SHIM `Created` header
/// (OFF-12), in local time; empty without one.
pub(crate) fn written_at(message: &esession_wire::minidom::Element) -> String {
    esession::offline::created_at(message)
        .and_then(|unix| chrono::DateTime::from_timestamp(unix, 0))
        .map(|t| {
            format!(
                ", written {}",
                t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M")
            )
        })
        .unwrap_or_default()
}

/// XEP-0187: an offline session, as its sender or its recipient sees it.
fn offline_established(peer: &str, info: &SessionInfo) -> String {
    // Verified unless the dangerous override let an unverified key through (AMB-43).
    let key = match &info.peer_key {
        Some(key) if key.verified => format!("their verified key {}", key_name(key)),
        Some(key) => format!(
            "their key {}, which you have NOT verified (NOT authenticated)",
            key_name(key)
        ),
        None => "no key (NOT authenticated)".to_owned(),
    };
    if info.we_initiated {
        format!(
            "*** {peer} wrote while you were offline (XEP-0187), authenticated by {key}; \
             their messages follow. This session is read-only: replies go in a new session."
        )
    } else {
        format!(
            "*** {peer} is offline: writing to the options they published (XEP-0187), signed by {key}."
        )
    }
}

/// A key as a person should see it: petname first (ESN-52), then a short fingerprint.
fn key_name(key: &PeerKeyInfo) -> String {
    match &key.petname {
        Some(petname) => format!("\"{petname}\" {}", short(&key.fingerprint)),
        None => short(&key.fingerprint),
    }
}

/// The first 8 bytes of a fingerprint in hex.
fn short(fingerprint: &[u8]) -> String {
    format!(
        "SHA-256 {}…",
        hex::encode(fingerprint.get(..8).unwrap_or(fingerprint))
    )
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
            format!(
                "{peer} does not support encrypted sessions, or holds as many as it allows (service-unavailable)."
            )
        }
        Error::PeerError { condition, fields } => {
            format!(
                "{peer} refused the negotiation ({}{}).{}",
                condition.map_or("no known error condition", |c| c.element()),
                fields_text(fields),
                why(*condition, fields)
            )
        }
        Error::Refused { condition, fields } => {
            format!(
                "We refused {peer}'s negotiation message ({}{}).{}",
                condition.element(),
                fields_text(fields),
                why(Some(*condition), fields)
            )
        }
        Error::ConnectionReset => format!(
            "The negotiation with {peer} was cut by the reconnection; it starts again when {peer} is reachable."
        ),
        other => format!("Negotiation with {peer} failed: {other}"),
    }
}

/// What a refusal usually means, and what to do (AMB-52: the error itself
/// never says which check failed).
fn why(condition: Option<esession::ssn::ErrorCondition>, fields: &[String]) -> &'static str {
    use esession::ssn::ErrorCondition;
    match condition {
        Some(ErrorCondition::FeatureNotImplemented) if fields.is_empty() => {
            " The identity check of the negotiation failed: most often the two clients hold \
             different shared secrets (/secret, `esession trust secret`: set the same one on \
             both sides or remove it), a key is not verified on one side, or the messages were \
             altered on the way."
        }
        Some(ErrorCondition::NotAcceptable) if !fields.is_empty() => {
            " The two clients have no acceptable choice in common for the fields named \
             (algorithms, group, stanza kinds); compare both sides' settings."
        }
        _ => "",
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
        TerminationReason::PeerUnavailable => format!(
            "*** {peer} went offline: the encrypted session ended and its keys are destroyed. Type /start for a new one when they are back."
        ),
        TerminationReason::StanzaKindNotAgreed => format!(
            "!!! {peer} encrypted a kind of stanza this session did not agree: the session was ended and nothing of it was shown."
        ),
        TerminationReason::IntegrityFailure => format!(
            "!!! A stanza from {peer} failed verification: the session was ended and nothing of it was shown. \
             Usually a stanza was lost when a connection dropped (each stanza's keys depend on all before it); \
             it can also be tampering. Messages not yet delivered are re-sent in a new session."
        ),
        TerminationReason::KeysExhausted => format!(
            "*** The session with {peer} used up its keys and the agreed rekey interval barred new ones: it was ended (your last message was NOT sent). Use /start for a new session."
        ),
        TerminationReason::ConnectionReset => format!(
            "!!! Our connection to the server was reset: the session with {peer} ended and its keys are destroyed."
        ),
        TerminationReason::PeerLostSession => format!(
            "!!! {peer}'s client no longer has this session (it was restarted, or ended it): your last message did not arrive."
        ),
        TerminationReason::PeerOnline => format!(
            "*** {peer} is online again: the offline session with them ended; new messages go in a normal session."
        ),
        _ => format!("*** Session with {peer} ended."),
    }
}

/// A decrypted directed presence, in words: `None` when it carries nothing
/// to show. Unavailable presence is left to [`terminated`] (SSN-16 ends the
/// session right after it).
pub(crate) fn presence(peer: &str, presence: &esession_wire::minidom::Element) -> Option<String> {
    if presence.attr("type").is_some() {
        return None;
    }
    let text = |name: &str| {
        presence
            .get_child(name, ns::JABBER_CLIENT)
            .map(|e| e.text())
            .filter(|t| !t.is_empty())
    };
    let show = match text("show").as_deref() {
        Some("away") => "away",
        Some("chat") => "free for chat",
        Some("dnd") => "busy (do not disturb)",
        Some("xa") => "away for a while",
        _ => "online",
    };
    Some(match text("status") {
        Some(status) => format!("*** {peer} is {show}: {status} (encrypted presence)"),
        None => format!("*** {peer} is {show} (encrypted presence)"),
    })
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
        Event::OfflineMessageRejected { session, reason } => Some(format!(
            "!!! An offline message from {} was not shown: {}.",
            session.peer,
            reason.describe()
        )),
        Event::ProfileSuggested { session, profile } => {
            let contact = session.peer.to_bare();
            Some(format!(
                "*** {}'s client looks like Gajim 0.12-0.16 (its negotiation form has Gajim's habits). \
                 Try `esession trust profile {contact} {}` (or --profile {} for one run), then start again.",
                session.peer,
                profile.name(),
                profile.name()
            ))
        }
        Event::RetryingWithFullKey { session, .. } => Some(format!(
            "*** {} named a key we do not hold; asking again for the full key.",
            session.peer
        )),
        _ => None,
    }
}

/// A fingerprint in full, as a person compares it with the contact's:
/// upper-case hex in groups of 8 digits (4 bytes) separated by spaces, e.g.
/// `1A2B3C4D 5E6F7081 ...`. `esession trust verify --fingerprint` and
/// `esession trust petname` accept it as shown (spaces and case ignored).
pub(crate) fn fingerprint_full(fingerprint: &[u8]) -> String {
    fingerprint
        .chunks(4)
        .map(hex::encode_upper)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    fn key(petname: Option<&str>, verified: bool) -> PeerKeyInfo {
        PeerKeyInfo {
            petname: petname.map(str::to_owned),
            fingerprint: vec![0xab; 32],
            algorithm: esession_crypto::SignatureAlgorithm::RsaSha256,
            verified,
        }
    }

    #[test]
    fn the_contact_going_offline_is_named_as_the_reason() {
        let text = terminated("bob@example.com/phone", &TerminationReason::PeerUnavailable);
        assert!(
            text.starts_with("*** bob@example.com/phone went offline"),
            "{text}"
        );
        assert!(text.contains("/start"), "{text}");
    }

    #[test]
    fn encrypted_presence_is_shown_with_show_and_status() {
        let parse = |xml: &str| -> esession_wire::minidom::Element { xml.parse().unwrap() };
        let busy = parse(
            "<presence xmlns='jabber:client'><show>dnd</show><status>In a meeting</status></presence>",
        );
        assert_eq!(
            presence("bob@example.com/phone", &busy).unwrap(),
            "*** bob@example.com/phone is busy (do not disturb): In a meeting (encrypted presence)"
        );
        let bare = parse("<presence xmlns='jabber:client'/>");
        assert_eq!(
            presence("bob@example.com/phone", &bare).unwrap(),
            "*** bob@example.com/phone is online (encrypted presence)"
        );
        let gone = parse("<presence xmlns='jabber:client' type='unavailable'/>");
        assert_eq!(presence("bob@example.com/phone", &gone), None);
    }

    #[test]
    fn key_alerts_show_the_petname_before_the_fingerprint() {
        // ESN-52.
        let text = alert(
            "bob@example.com/laptop",
            &SecurityAlert::PeerKeyChanged {
                key: key(Some("Bob's phone"), false),
                previous_fingerprints: vec![vec![1; 32]],
            },
        );
        // Issue 10: a warning box, old and new fingerprints in full.
        assert!(text.starts_with(&"!".repeat(72)), "{text}");
        assert!(
            text.contains("!!! WARNING: THE PUBLIC KEY OF bob@example.com/laptop HAS CHANGED"),
            "{text}"
        );
        assert!(text.find("Bob's phone").unwrap() < text.find("ABABABAB").unwrap());
        assert!(text.contains(&["ABABABAB"; 8].join(" ")), "{text}");
        assert!(text.contains(&["01010101"; 8].join(" ")), "{text}");
        assert!(text.contains("someone is in the middle"), "{text}");
        assert!(text.contains("/distrust"), "{text}");
        let new = alert(
            "bob@example.com/laptop",
            &SecurityAlert::NewPeerKey(key(None, false)),
        );
        assert!(
            new.contains("esession trust verify bob@example.com --fingerprint abab"),
            "{new}"
        );
    }
}
