//! What the application asks of its sessions: start one (with or without
//! bundled content), answer or decline a held offer, send, terminate,
//! verify or distrust the contact, rekey. Each returns the stanzas to send.

use super::*;

impl SessionManager {
    /// Sets the off-the-record policy for `contact` (ARC-02; a bare or full
    /// JID selects its bare JID). Established sessions with the contact whose
    /// agreed `logging` the new policy refuses are terminated (ARC-05): a
    /// session that may be logged under `require`, an off-the-record one
    /// under `forbid`. Start a new session afterwards.
    pub fn set_otr_policy(&mut self, contact: &str, policy: OtrPolicy) -> Output {
        let bare = crate::stanza::normalized_bare(contact);
        self.config.contact_otr_policies.insert(bare, policy);
        self.restricted.clear();
        self.end_sessions_against_policy()
    }

    /// Sets the off-the-record policy for every contact without one of its
    /// own, with the same consequences as [`Self::set_otr_policy`].
    pub fn set_default_otr_policy(&mut self, policy: OtrPolicy) -> Output {
        self.config.otr_policy = policy;
        self.restricted.clear();
        self.end_sessions_against_policy()
    }

    /// Tells the core whether our server's archive is known to keep nothing
    /// of an off-the-record session (ARC-07, SSN-03, AMB-59): the adapter
    /// confirmed it can exclude a contact from the archive (MAM or XEP-0136
    /// preferences), or the server has no archive. Only then is
    /// `logging=mustnot` offered or accepted. Sessions already agreed keep
    /// their `logging`.
    pub fn set_off_the_record_possible(&mut self, possible: bool) {
        self.config.off_the_record_possible = possible;
        // The copies narrowed by profile hold the old value.
        self.restricted.clear();
    }

    /// ARC-05: terminates the established sessions whose agreed `logging`
    /// their contact's policy no longer allows.
    fn end_sessions_against_policy(&mut self) -> Output {
        let against: Vec<SessionId> = self
            .sessions
            .values()
            .filter_map(|state| match state {
                State::Established(s) => Some(s),
                _ => None,
            })
            .filter(|s| {
                let policy = self.config.otr_policy_for(s.id().peer.as_str());
                match s.info().logging {
                    Logging::May => policy == OtrPolicy::Require,
                    Logging::MustNot => policy == OtrPolicy::Forbid,
                }
            })
            .map(|s| s.id().clone())
            .collect();
        let mut out = Output::default();
        for id in against {
            if let Ok(more) = self.terminate(&id) {
                out.stanzas.extend(more.stanzas);
                out.events.extend(more.events);
            }
        }
        out
    }

    /// Starts an ESession with `peer` (a bare or full JID) on a new thread (THR-02):
    /// returns its id and the offer to send (message 1).
    pub fn start_session(&mut self, peer: &str) -> Result<(SessionId, Output), Error> {
        match Jid::new(peer) {
            Ok(jid) if peer.len() <= 3071 => self.start_session_to(jid),
            _ => Err(Error::InvalidInput("peer JID")),
        }
    }

    /// [`Self::start_session`] with a JID already parsed (the adapter's).
    pub fn start_session_to(&mut self, peer: Jid) -> Result<(SessionId, Output), Error> {
        if let Some(limit) = self.session_cap_reached(&peer.to_bare()) {
            return Err(Error::LimitReached(limit));
        }
        // ARC-03/07: a `require` policy with no confirmed archive offers nothing.
        self.config
            .logging_to_offer(peer.as_str())
            .map_err(Error::Archiving)?;
        let thread = new_thread_id(self.rng.as_mut());
        let profile = self.config.profile_for(peer.as_str());
        // Issue 11: with the zlib sessions at their cap, offer no zlib.
        let without_zlib = (self
            .config
            .compression
            .contains(&CompressionAlgorithm::Zlib)
            && self.compressed_cap_reached())
        .then(|| {
            let mut config = self.config.for_profile(&profile).into_owned();
            config
                .compression
                .retain(|c| *c == CompressionAlgorithm::None);
            config
        });
        let offered = match &without_zlib {
            Some(config) if config.compression.is_empty() => {
                return Err(Error::LimitReached(LimitKind::CompressedSessions));
            }
            Some(config) => {
                let mut ctx = self.context_with(config, profile);
                initiator::offer(&mut ctx, &peer, thread.clone())
            }
            None => {
                let mut ctx = self.context(profile);
                initiator::offer(&mut ctx, &peer, thread.clone())
            }
        };
        let (state, stanza) =
            offered.map_err(|_| Error::InvalidInput("configuration offers nothing"))?;
        let mut out = Output::default();
        self.make_room_for_negotiation(&peer.to_bare(), &mut out);
        self.put(key(&peer, &thread), State::Offered(Box::new(state)));
        out.send(stanza);
        Ok((SessionId { peer, thread }, out))
    }

    /// Starts a 3-message ESession (ESN-03) whose completion carries `plain`
    /// encrypted (ESN-29, AMB-44); with `terminate` the session ends with that
    /// stanza (one-shot object encryption). Fails unless the policy chooses the
    /// 3-message negotiation for `peer` ([`Config::initiate_flow`]).
    pub fn start_session_with_message(
        &mut self,
        peer: &str,
        plain: &Element,
        terminate: bool,
    ) -> Result<(SessionId, Output), Error> {
        if !plain.is("message", ns::JABBER_CLIENT) {
            return Err(Error::InvalidInput("not a jabber:client <message/>"));
        }
        let (id, out) = self.start_session(peer)?;
        let k = session_key(&id);
        let bundled = match self.sessions.get_mut(&k) {
            Some(State::Offered(alice)) => alice.bundle(plain.clone(), terminate).is_ok(),
            _ => false,
        };
        match bundled {
            true => Ok((id, out)),
            false => {
                self.sessions.remove(&k);
                self.started.remove(&k);
                Err(Error::InvalidInput(
                    "content can be bundled only with a 3-message negotiation",
                ))
            }
        }
    }

    /// Takes the offer held for the user under `session`, if there is one.
    fn take_pending(&mut self, session: &SessionId) -> Result<State, Error> {
        let k = session_key(session);
        match self.sessions.get(&k) {
            Some(state @ (State::PendingOffer(_) | State::PendingPlain(_)))
                if *state.peer() == session.peer =>
            {
                self.started.remove(&k);
                self.sessions.remove(&k).ok_or(Error::UnknownSession)
            }
            _ => Err(Error::UnknownSession),
        }
    }

    /// Accepts an offer held back by policy (SSN-09): sends the answer.
    pub fn accept_offer(&mut self, session: &SessionId) -> Result<Output, Error> {
        let mut out = Output::default();
        match self.take_pending(session)? {
            State::PendingOffer(offer) => self.answer_offer(*offer, &mut out),
            State::PendingPlain(plain) => {
                out.send(plain.answer);
                out.event(Event::PlainSessionAccepted {
                    session: session.clone(),
                });
            }
            _ => return Err(Error::UnknownSession),
        }
        Ok(out)
    }

    /// Declines an offer held back by policy (SSN-07).
    pub fn reject_offer(&mut self, session: &SessionId) -> Result<Output, Error> {
        let (peer, thread) = match self.take_pending(session)? {
            State::PendingOffer(offer) => (offer.peer.clone(), offer.thread.clone()),
            State::PendingPlain(plain) => (plain.peer, plain.thread),
            _ => return Err(Error::UnknownSession),
        };
        let form = DataForm::new(esession_wire::form::FormKind::Submit)
            .with_field(esession_wire::form::Field::untyped(
                "FORM_TYPE",
                vec![ns::SSN.to_owned()],
            ))
            .with_field(esession_wire::form::Field::untyped(
                "accept",
                vec!["0".to_owned()],
            ));
        let mut stanza = message(peer.as_str(), self.config.own_jid.as_deref(), None);
        stanza.append_child(text_child("thread", ns::JABBER_CLIENT, &thread));
        let mut feature = Element::bare("feature", ns::FEATURE_NEG);
        feature.append_child(Element::from(&form));
        stanza.append_child(feature);
        let mut out = Output::default();
        out.send(stanza);
        Ok(out)
    }

    /// Encrypts and sends an application `<message/>` in an established session (ENC-01..10).
    ///
    /// The output may hold a rekey-only stanza before the message (ENC-19).
    /// Should the keys be used up while `rekey_freq` bars a rekey (AMB-28), the
    /// message is NOT sent: the output then holds the encrypted terminate form
    /// and [`Event::Terminated`] with [`TerminationReason::KeysExhausted`].
    pub fn send_message(&mut self, session: &SessionId, plain: &Element) -> Result<Output, Error> {
        let k = session_key(session);
        let rng = self.rng.as_mut();
        let now = self.clock.now_unix();
        match self.sessions.get_mut(&k) {
            Some(State::Established(s)) if s.id() == session => {
                if !s.info().stanzas.contains(&StanzaKind::Message) {
                    return Err(Error::StanzaKindNotAgreed(StanzaKind::Message)); // ENC-01, AMB-29
                }
                let mut out = Output::default();
                match s.seal_message(plain, rng, now) {
                    Ok(stanzas) => out.stanzas.extend(stanzas),
                    Err(Error::KeysExhausted) => {
                        keys_exhausted(s, rng, now, &mut out);
                        self.sessions.remove(&k);
                    }
                    Err(e) => return Err(e),
                }
                self.note_ended(&out);
                Ok(out)
            }
            Some(State::Established(_)) | None => Err(Error::UnknownSession),
            Some(_) => Err(Error::NotEstablished),
        }
    }

    /// Sends a chat message with `text` as its body.
    pub fn send_text(&mut self, session: &SessionId, text: &str) -> Result<Output, Error> {
        let mut plain = message(session.peer.as_str(), None, Some("chat"));
        plain.append_child(text_child("body", ns::JABBER_CLIENT, text));
        self.send_message(session, &plain)
    }

    /// Sends a chat message with `text` as its body, asking for an encrypted
    /// XEP-0184 receipt (with [`Config::delivery_receipts`]): returns the id
    /// that [`Event::MessageDelivered`] will carry. The id travels encrypted
    /// (XEP-0359 `<origin-id/>`), so a resend of the same text after
    /// renegotiation should use [`Self::resend_text`] with it.
    pub fn send_text_with_receipt(
        &mut self,
        session: &SessionId,
        text: &str,
    ) -> Result<(String, Output), Error> {
        let id = receipts::new_id(self.rng.as_mut());
        let out = self.resend_text(session, text, &id)?;
        Ok((id, out))
    }

    /// Sends `text` again under the id it was first sent with (after the
    /// session that carried it was lost): a peer that did receive it
    /// acknowledges it without showing it twice.
    pub fn resend_text(
        &mut self,
        session: &SessionId,
        text: &str,
        id: &str,
    ) -> Result<Output, Error> {
        let mut plain = message(session.peer.as_str(), None, Some("chat"));
        plain.append_child(text_child("body", ns::JABBER_CLIENT, text));
        if self.config.delivery_receipts {
            receipts::request(&mut plain, id);
        }
        self.send_message(session, &plain)
    }

    /// Ends a session: the encrypted terminate form (ESN-45). The session ends
    /// when the peer's acknowledgement verifies (ESN-46); nothing else may be
    /// sent meanwhile (ESN-47). A negotiation in progress is simply forgotten.
    pub fn terminate(&mut self, session: &SessionId) -> Result<Output, Error> {
        let k = session_key(session);
        let mut out = Output::default();
        match self.sessions.get_mut(&k) {
            Some(State::Established(s))
                if s.id() == session && s.info().offline && s.info().we_initiated =>
            {
                // AMB-74: the recipient of an offline session sends nothing.
                self.sessions.remove(&k);
                out.event(Event::Terminated {
                    session: session.clone(),
                    reason: TerminationReason::LocalRequest,
                });
                Ok(out)
            }
            Some(State::Established(s)) if s.id() == session => {
                let stanzas = s.terminate_stanzas(self.rng.as_mut(), self.clock.now_unix())?;
                out.stanzas.extend(stanzas);
                if !s.expects_terminate_ack() {
                    // Clear-text termination (Gajim profile): nothing will answer.
                    self.sessions.remove(&k);
                    out.event(Event::Terminated {
                        session: session.clone(),
                        reason: TerminationReason::LocalRequest,
                    });
                    self.note_ended(&out);
                }
                Ok(out)
            }
            Some(state) if state.accepts_from(&session.peer) => {
                self.sessions.remove(&k);
                Ok(out)
            }
            _ => Err(Error::UnknownSession),
        }
    }

    /// The user compared the SAS with the peer and it matched: remember the
    /// retained-secret chain as verified (ESN-34, ESN-42).
    pub fn confirm_sas(&mut self, session: &SessionId) -> Result<(), Error> {
        if !self.is_established(session) {
            return Err(Error::UnknownSession);
        }
        self.trust
            .mark_verified(session.contact().as_str(), session.client())
            .map_err(|_| Error::InvalidInput("trust store failed to record the verification"))?;
        if let Some(State::Established(s)) = self.sessions.get_mut(&session_key(session)) {
            s.mark_sas_confirmed();
        }
        Ok(())
    }

    /// The user compared the SAS and it did NOT match: someone may be in the
    /// middle. The chain with this client of the peer is marked unverified
    /// and its SAS reminder is on again, so the next session shows the SAS
    /// prompt (issue 10), and the session is terminated (its output holds the
    /// encrypted terminate form).
    pub fn distrust(&mut self, session: &SessionId) -> Result<Output, Error> {
        if !self.is_established(session) {
            return Err(Error::UnknownSession);
        }
        self.trust
            .revoke_verification(session.contact().as_str(), session.client())
            .map_err(|_| Error::InvalidInput("trust store failed to record the distrust"))?;
        self.terminate(session)
    }

    /// The user does not want to compare the SAS with this client of the peer
    /// now or later: stop reminding at each session (ESN-34 reminder, issue 5
    /// item 10). Confirming it with [`Self::confirm_sas`] is the better answer.
    pub fn dismiss_sas_reminder(&mut self, session: &SessionId) -> Result<(), Error> {
        let k = session_key(session);
        let Some(State::Established(s)) = self.sessions.get_mut(&k) else {
            return Err(Error::UnknownSession);
        };
        if s.id() != session {
            return Err(Error::UnknownSession);
        }
        self.trust
            .dismiss_sas_reminder(session.contact().as_str(), session.client())
            .map_err(|_| Error::InvalidInput("trust store failed to record the dismissal"))?;
        s.suppress_sas_reminder();
        Ok(())
    }

    /// Ends every established session with the encrypted terminate form, as
    /// XEP-0116 requires before going offline (ESN-45); negotiations in
    /// progress are forgotten. Sessions already ending are left alone.
    pub fn terminate_all(&mut self) -> Output {
        let mut ids: Vec<SessionId> = self
            .sessions
            .values()
            .filter_map(|state| match state {
                State::Established(s) if !s.awaiting_terminate_ack() => Some(s.id().clone()),
                _ => None,
            })
            .collect();
        ids.sort_by(|a, b| (&a.peer, &a.thread).cmp(&(&b.peer, &b.thread)));
        let mut out = Output::default();
        for id in ids {
            if let Ok(more) = self.terminate(&id) {
                out.stanzas.extend(more.stanzas);
                out.events.extend(more.events);
            }
        }
        self.sessions
            .retain(|_, state| matches!(state, State::Established(_)));
        out
    }

    /// Rekeys an established session now (XEP-0200 §Re-Key Exchange, ENC-15/16):
    /// returns a stanza without content carrying our new `<key/>`.
    /// [`Error::RekeyTooSoon`] before `rekey_freq` stanzas have passed since the
    /// last key exchange (ENC-14, AMB-55).
    pub fn rekey(&mut self, session: &SessionId) -> Result<Output, Error> {
        let k = session_key(session);
        let now = self.clock.now_unix();
        match self.sessions.get_mut(&k) {
            Some(State::Established(s)) if s.id() == session => {
                let stanza = s.seal_rekey(self.rng.as_mut(), now)?;
                let mut out = Output::default();
                out.send(stanza);
                Ok(out)
            }
            Some(State::Established(_)) | None => Err(Error::UnknownSession),
            Some(_) => Err(Error::NotEstablished),
        }
    }

    /// XEP-0187, before going offline (OFF-02..05): a fresh option set (new N_A and x for
    /// every configured group, OFF-18), valid `lifetime` seconds from now, signed with every
    /// signing key of the configuration. With `match_resource` the ciphertext must come to
    /// this resource only, and only messages are offered (OFF-04). Fails without a signing
    /// key: unsigned options would let anyone pose as us (OFF-05).
    pub fn offline_options(
        &mut self,
        lifetime: u64,
        match_resource: Option<&str>,
    ) -> Result<crate::offline::OfflineOptionSet, Error> {
        let now = i64::try_from(self.clock.now_unix()).unwrap_or(i64::MAX);
        let expires_at = now.saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX));
        let (form, nonce, key_pairs) = {
            let mut ctx = self.context(Profile::standard());
            initiator::offline_options_form(&mut ctx, match_resource.is_some()).map_err(|_| {
                Error::InvalidInput("the configuration has no signing key or offers nothing")
            })?
        };
        let keys: Vec<&esession_crypto::SigningKey> =
            self.config.signing_keys.iter().map(AsRef::as_ref).collect();
        let options = crate::offline::sign_options(form, expires_at, match_resource, &keys)
            .map_err(|_| Error::InvalidInput("the options could not be signed"))?;
        Ok(crate::offline::OfflineOptionSet {
            options,
            expires_at,
            nonce,
            key_pairs,
        })
    }
}
