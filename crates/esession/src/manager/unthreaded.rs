//! `<presence/>` and `<iq/>` in ESessions (ENC-01..03, AMB-26) and the end of
//! sessions on the peer's unavailable presence (SSN-16).
//!
//! These stanzas carry no `<thread/>`: an encrypted one belongs to the one
//! established session with that full JID that agreed its kind (AMB-26). If
//! several would qualify, none is used: we neither encrypt nor decrypt. Clear
//! presence and iq (broadcast presence above all, ENC-01) are the
//! application's; the core only watches for unavailable presence.

use esession_wire::minidom::Element;
use esession_wire::ns;

use super::established::prove_peer;
use jid::Jid;

use super::{Key, SessionManager, State, keys_exhausted, session_key};
use crate::Error;
use crate::event::{Event, Output, SessionId, TerminationReason};
use crate::random::Randomness;
use crate::session::{EstablishedSession, OpenFailure};
use crate::stanza::StanzaKind;
use crate::stanza::set_attr;

/// Whether the stanza carries a `<c/>`, at the top or inside its `<error/>` (ENC-03).
fn has_encrypted_part(stanza: &Element) -> bool {
    let is_c = |c: &Element| c.is("c", ns::STANZA_ENCRYPTION);
    stanza
        .children()
        .any(|c| is_c(c) || (c.is("error", ns::JABBER_CLIENT) && c.children().any(is_c)))
}

/// RFC 6120 §8.2.3: an iq get or set is always answered. One we cannot
/// process inside a session gets `not-acceptable` (ENC-12's MAY; AMB-30's
/// type), in clear and without its content: there is no session to carry it,
/// and the error element and condition are never encrypted (ENC-02).
fn iq_refusal(request: &Element, own_jid: Option<&str>) -> Option<Element> {
    if !request.is("iq", ns::JABBER_CLIENT) || !matches!(request.attr("type"), Some("get" | "set"))
    {
        return None;
    }
    let (from, id) = (request.attr("from")?, request.attr("id")?);
    let mut reply = Element::bare("iq", ns::JABBER_CLIENT);
    if let Some(own) = own_jid {
        set_attr(&mut reply, "from", own);
    }
    set_attr(&mut reply, "to", from);
    set_attr(&mut reply, "type", "error");
    set_attr(&mut reply, "id", id);
    let mut error = Element::bare("error", ns::JABBER_CLIENT);
    set_attr(&mut error, "type", "modify");
    error.append_child(Element::bare("not-acceptable", ns::XMPP_STANZAS));
    reply.append_child(error);
    Some(reply)
}

/// Ends a session: the encrypted terminate form under our intact outgoing
/// keys unless one was sent already (ESN-45, AMB-53), then the event. The
/// caller drops the session, which destroys its keys.
fn end(
    session: &mut EstablishedSession,
    reason: TerminationReason,
    rng: &mut dyn Randomness,
    now: u64,
    out: &mut Output,
) {
    if !session.awaiting_terminate_ack()
        && let Ok(terminate) = session.terminate_stanzas(rng, now)
    {
        out.stanzas.extend(terminate);
    }
    out.event(Event::Terminated {
        session: session.id().clone(),
        reason,
    });
}

impl SessionManager {
    /// Encrypts and sends a stanza in an established session, by its kind:
    /// a `<message/>` as [`SessionManager::send_message`]; a directed
    /// `<presence/>` (available, unavailable or error) or an `<iq/>` (get,
    /// set, result, error, with an `id`) addressed to the peer, sealed as
    /// ENC-01..03 prescribe: the `<error/>` and its defined condition stay in
    /// clear, the rest of `<error/>` goes into a second `<c/>`.
    ///
    /// Refused, with nothing sent and in particular nothing in clear: kinds
    /// the session did not agree ([`Error::StanzaKindNotAgreed`]), broadcast
    /// presence (no `to`: it always stays in clear, ENC-01), and presence or
    /// iq when several sessions with that full JID agreed the kind
    /// ([`Error::AmbiguousSession`], AMB-26).
    ///
    /// As with messages, the output may hold a rekey-only stanza first
    /// (ENC-19), and keys used up while `rekey_freq` bars a rekey end the
    /// session instead ([`TerminationReason::KeysExhausted`], AMB-28).
    pub fn send_stanza(&mut self, session: &SessionId, stanza: &Element) -> Result<Output, Error> {
        let kind = crate::stanza::kind_of(stanza).ok_or(Error::InvalidInput(
            "not a jabber:client message, presence or iq",
        ))?;
        if kind == StanzaKind::Message {
            return self.send_message(session, stanza);
        }
        let carriers = self.carriers(&session.peer, kind).len();
        let k = session_key(session);
        let now = self.clock.now_unix();
        match self.sessions.get_mut(&k) {
            Some(State::Established(s)) if s.id() == session => {
                if s.info().stanzas.contains(&kind) && carriers > 1 {
                    return Err(Error::AmbiguousSession);
                }
                let mut out = Output::default();
                match s.seal_unthreaded(stanza, self.rng.as_mut(), now) {
                    Ok(sealed) => out.stanzas.extend(sealed),
                    Err(Error::KeysExhausted) => {
                        keys_exhausted(s, self.rng.as_mut(), now, &mut out);
                        self.sessions.remove(&k);
                    }
                    Err(e) => return Err(e),
                }
                Ok(out)
            }
            Some(State::Established(_)) | None => Err(Error::UnknownSession),
            Some(_) => Err(Error::NotEstablished),
        }
    }

    /// The session a `<presence/>` or `<iq/>` exchanged with the full JID
    /// `peer` belongs to (AMB-26): the one established session with that JID
    /// that agreed `kind`. `None` when no session did, or when several did
    /// (then none may carry it). An application uses it to send its replies
    /// through [`SessionManager::send_stanza`] (ESN-44: agreed kinds go to
    /// the peer only encrypted) and to recognise clear stanzas that should
    /// have been encrypted. Always `None` for [`StanzaKind::Message`], which
    /// is bound by its thread.
    pub fn unthreaded_session(&self, peer: &str, kind: StanzaKind) -> Option<SessionId> {
        if kind == StanzaKind::Message {
            return None;
        }
        let peer = Jid::new(peer).ok()?;
        match self.carriers(&peer, kind).as_slice() {
            [k] => match self.sessions.get(k) {
                Some(State::Established(s)) => Some(s.id().clone()),
                _ => None,
            },
            _ => None,
        }
    }

    /// The established sessions bound to the full JID `peer` (SSN-11).
    fn bound_to(&self, peer: &Jid) -> Vec<Key> {
        self.sessions
            .iter()
            .filter(|(_, state)| matches!(state, State::Established(s) if s.id().peer == *peer))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Those of them that agreed `kind` (AMB-26).
    fn carriers(&self, peer: &Jid, kind: StanzaKind) -> Vec<Key> {
        self.bound_to(peer)
            .into_iter()
            .filter(|k| {
                matches!(self.sessions.get(k), Some(State::Established(s))
                    if s.info().stanzas.contains(&kind))
            })
            .collect()
    }

    /// A received `<presence/>` or `<iq/>`.
    pub(super) fn handle_unthreaded(&mut self, stanza: &Element) -> Output {
        let mut out = Output::default();
        let (Some(kind), Some(from)) = (crate::stanza::kind_of(stanza), stanza.attr("from")) else {
            return out;
        };
        let Ok(from) = Jid::new(from) else {
            return out; // A `from` that is not a JID is nobody's.
        };
        if !has_encrypted_part(stanza) {
            // Clear presence and iq are the application's (broadcast presence
            // is always clear, ENC-01); only unavailable presence concerns us.
            if kind == StanzaKind::Presence && stanza.attr("type") == Some("unavailable") {
                self.peer_unavailable(&from, &mut out);
            }
            if kind == StanzaKind::Presence && stanza.attr("type").is_none() {
                self.end_offline_sessions_with(&from, &mut out); // OFF-17
            }
            return out;
        }
        let carriers = self.carriers(&from, kind);
        match carriers.as_slice() {
            [k] => {
                let k = k.clone();
                self.open_bound(&k, kind, stanza, &from, &mut out);
            }
            [] => {
                // ENC-01: the peer encrypted a kind its session did not agree.
                // Nothing of it is decrypted; the one session bound to that
                // JID (if it is only one) is out of step with the peer and ends
                // like on any stanza that fails (ENC-12).
                if let [k] = self.bound_to(&from).as_slice()
                    && let Some(State::Established(mut session)) = self.sessions.remove(k)
                {
                    end(
                        &mut session,
                        TerminationReason::StanzaKindNotAgreed,
                        self.rng.as_mut(),
                        self.clock.now_unix(),
                        &mut out,
                    );
                }
                out.stanzas
                    .extend(iq_refusal(stanza, self.config.own_jid.as_deref()));
            }
            _ => {
                // AMB-26: several sessions could own it; use none of them.
                out.stanzas
                    .extend(iq_refusal(stanza, self.config.own_jid.as_deref()));
            }
        }
        out
    }

    /// An encrypted presence or iq for the session at `k`.
    fn open_bound(
        &mut self,
        k: &Key,
        kind: StanzaKind,
        stanza: &Element,
        from: &Jid,
        out: &mut Output,
    ) {
        let now = self.clock.now_unix();
        let Some(State::Established(session)) = self.sessions.get_mut(k) else {
            return;
        };
        match session.open_unthreaded(stanza, now) {
            Ok(restored) => {
                prove_peer(session, self.trust.as_mut(), out);
                let unavailable =
                    kind == StanzaKind::Presence && restored.attr("type") == Some("unavailable");
                out.event(Event::StanzaReceived {
                    session: session.id().clone(),
                    stanza: restored,
                });
                if unavailable {
                    self.peer_unavailable(from, out);
                }
            }
            Err(OpenFailure::Unauthenticated) if stanza.attr("type") == Some("error") => {
                // A bounce of one of our own stanzas (it carries our <c/>): harmless.
                out.event(Event::DeliveryError {
                    session: session.id().clone(),
                });
            }
            Err(_) => {
                // ENC-12/13, AMB-53: deliver nothing, tell the peer under our
                // intact outgoing keys, forget the session and its keys.
                end(
                    session,
                    TerminationReason::IntegrityFailure,
                    self.rng.as_mut(),
                    now,
                    out,
                );
                self.sessions.remove(k);
                out.stanzas
                    .extend(iq_refusal(stanza, self.config.own_jid.as_deref()));
            }
        }
    }

    /// SSN-16: the full JID `from` sent unavailable presence. Unless
    /// configured to assume it continues, every session bound to it ends: the
    /// explicit termination SSN-16 demands (the encrypted terminate form,
    /// ESN-45), then the keys are destroyed at once, without waiting for an
    /// acknowledgement the offline peer cannot send; anything later in those
    /// sessions is ignored. A restart is a new negotiation on a new thread.
    fn peer_unavailable(&mut self, from: &Jid, out: &mut Output) {
        if !self.config.end_session_on_peer_unavailable {
            return;
        }
        let now = self.clock.now_unix();
        for k in self.bound_to(from) {
            if let Some(State::Established(mut session)) = self.sessions.remove(&k) {
                end(
                    &mut session,
                    TerminationReason::PeerUnavailable,
                    self.rng.as_mut(),
                    now,
                    out,
                );
            }
        }
    }
}
