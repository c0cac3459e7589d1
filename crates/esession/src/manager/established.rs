//! Stanzas on an established session's thread: the hot path of the manager
//! (XEP-0200). Everything is decided here from the session alone; the
//! manager applies the resulting [`Keep`].

use super::*;

/// The peer's first authenticated stanza: confirm the new retained secret
/// (AMB-57) and, on the responder, prove the retained secret it claimed.
pub(super) fn prove_peer(
    session: &mut EstablishedSession,
    trust: &mut dyn TrustStore,
    out: &mut Output,
) {
    if let Some((peer, client)) = session.unconfirmed_secret.take()
        && let Err(error) = trust.confirm_retained_secret(&peer, &client)
    {
        out.event(Event::TrustStoreFailure { error });
    }
    if let Some(chain_verified) = session.prove_retained_claim() {
        out.event(Event::RetainedSecretProven {
            session: session.id().clone(),
            chain_verified,
        });
    }
}

/// ENC-19, AMB-28: the keys reached their block limit while `rekey_freq`
/// bars a rekey. The encrypted terminate form still fits (blocks are kept in
/// reserve for it) and tells the peer; the caller drops the session.
pub(super) fn keys_exhausted(
    session: &mut EstablishedSession,
    rng: &mut dyn Randomness,
    now: u64,
    out: &mut Output,
) {
    if let Ok(terminate) = session.terminate_stanzas(rng, now) {
        out.stanzas.extend(terminate);
    }
    out.event(Event::Terminated {
        session: session.id().clone(),
        reason: TerminationReason::KeysExhausted,
    });
}

/// Whether a session survives the stanza it just handled.
#[derive(PartialEq, Eq)]
#[expect(
    clippy::enum_variant_names,
    reason = "`Keep::Keep` reads as intended at the call sites"
)]
pub(super) enum Keep {
    Keep,
    Remove,
    /// The peer asked to continue on this resource (SSN-13, AMB-39).
    Move(String),
}

/// A clear stanza on an established session's thread: unauthenticated, so
/// never delivered. A "session gone" error ends the session (issue 10), an
/// error before the peer proved itself ends the negotiation (ESN-10), a
/// clear terminate form is reported or, with the Gajim profile, honoured
/// (AMB-54); anything else is reported as dropped.
pub(super) fn on_clear_stanza(
    session: &mut EstablishedSession,
    stanza: &Element,
    is_error: bool,
    out: &mut Output,
) -> Keep {
    if is_error {
        if ssn::is_session_gone(stanza) {
            // Issue 10: the peer no longer holds this session (it restarted).
            // Unauthenticated, but all it can cause is a new negotiation; the
            // stanza it answers was not delivered.
            out.event(Event::Terminated {
                session: session.id().clone(),
                reason: TerminationReason::PeerLostSession,
            });
            return Keep::Remove;
        }
        if session.peer_proven() {
            return Keep::Keep; // Unauthenticated; nothing to act on.
        }
        // ESN-10: the initiator refused our final message (its error is
        // unauthenticated, but an attacker able to forge it could as well have
        // dropped message 4). Nothing was exchanged yet: drop the session.
        let error = stanza.get_child("error", ns::JABBER_CLIENT);
        out.event(Event::NegotiationFailed {
            session: session.id().clone(),
            error: Error::PeerError {
                condition: error.and_then(ssn::ErrorCondition::from_error_element),
                fields: error.map(ssn::error_fields).unwrap_or_default(),
            },
        });
        return Keep::Remove;
    }
    let id = session.id().clone();
    if !session::is_clear_terminate(stanza, session.profile().form_parsing) {
        out.event(Event::ClearStanzaDropped { session: id });
        return Keep::Keep;
    }
    if session.honours_clear_terminate() {
        // AMB-54, Gajim profile: the peer ended the session in clear
        // text and expects no acknowledgement (§11).
        out.event(Event::Terminated {
            session: id,
            reason: TerminationReason::PeerRequest,
        });
        return Keep::Remove;
    }
    out.event(Event::UnauthenticatedTerminateRequest { session: id });
    Keep::Keep
}

/// A stanza on an established session's thread.
pub(super) fn on_established(
    session: &mut EstablishedSession,
    stanza: &Element,
    rng: &mut dyn Randomness,
    trust: &mut dyn TrustStore,
    now: u64,
    receipts: bool,
    out: &mut Output,
) -> Keep {
    let is_error = stanza.attr("type") == Some("error");
    if !session::is_encrypted(stanza) {
        return on_clear_stanza(session, stanza, is_error, out);
    }
    let opened = session.open(stanza, now);
    if opened.is_ok() {
        prove_peer(session, trust, out);
    }
    match opened {
        Ok(Opened::Message(message, unauthenticated_error)) => {
            match session::control::classify(&message) {
                None => {
                    if !receipts {
                        out.event(Event::MessageReceived {
                            session: session.id().clone(),
                            message,
                            unauthenticated_error: unauthenticated_error.map(|e| *e),
                        });
                        return Keep::Keep;
                    }
                    receipts::on_message(
                        session,
                        message,
                        unauthenticated_error.map(|e| *e),
                        trust,
                        rng,
                        now,
                        out,
                    )
                }
                Some(Control::Renegotiate(fields)) => {
                    // SSN-14, AMB-39: the agreed parameters stay in force.
                    match session.seal_renegotiation_refusal(&fields, rng, now) {
                        Ok(reply) => out.stanzas.extend(reply),
                        Err(Error::KeysExhausted) => {
                            keys_exhausted(session, rng, now, out);
                            return Keep::Remove;
                        }
                        Err(_) => {}
                    }
                    out.event(Event::RenegotiationRefused {
                        session: session.id().clone(),
                    });
                    Keep::Keep
                }
                Some(Control::Continue(resource)) => Keep::Move(resource),
            }
        }
        Ok(Opened::TerminateRequest) => {
            let id = session.id().clone();
            if session.awaiting_terminate_ack() {
                // Both sides asked at once: each request doubles as the other's ack.
                out.event(Event::Terminated {
                    session: id,
                    reason: TerminationReason::LocalRequest,
                });
                return Keep::Remove;
            }
            // Gajim profile: nothing acknowledges there (§11), the peer has gone.
            if session.expects_terminate_ack()
                && let Ok(ack) = session.seal_terminate_ack(rng, now)
            {
                out.send(ack);
            }
            out.event(Event::Terminated {
                session: id,
                reason: TerminationReason::PeerRequest,
            });
            Keep::Remove
        }
        // A rekey-only stanza (ENC-10): the keys changed, nothing to deliver.
        Ok(Opened::Nothing) => Keep::Keep,
        Ok(Opened::TerminateAck) => {
            out.event(Event::Terminated {
                session: session.id().clone(),
                reason: TerminationReason::LocalRequest,
            });
            Keep::Remove
        }
        Err(OpenFailure::Unauthenticated) if is_error => {
            // A bounce of one of our own stanzas (it carries our <c/>): harmless.
            out.event(Event::DeliveryError {
                session: session.id().clone(),
            });
            Keep::Keep
        }
        Err(_) => {
            // ENC-12/13, AMB-53: deliver nothing; tell the peer under our intact
            // outgoing keys; forget the session (its keys are dropped and zeroized).
            if !session.awaiting_terminate_ack()
                && let Ok(terminate) = session.terminate_stanzas(rng, now)
            {
                out.stanzas.extend(terminate);
            }
            out.event(Event::Terminated {
                session: session.id().clone(),
                reason: TerminationReason::IntegrityFailure,
            });
            Keep::Remove
        }
    }
}
