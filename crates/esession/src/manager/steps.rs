//! The negotiation's steps as the manager runs them (XEP-0155, XEP-0116):
//! an offer on a new thread, the answer, the completion and the final
//! message, the refusals they send, and what an established session's
//! announcement waits for (issue 10). Each step takes the state it consumes
//! out of the manager and puts back at most one.

use super::*;

impl SessionManager {
    pub(super) fn refuse(
        &self,
        to: &Jid,
        thread: &str,
        wrapper: Option<&Element>,
        refusal: &Refusal,
        out: &mut Output,
    ) {
        // Issue 11: the peer's form is echoed only while it is small.
        let max = self.config.limits.max_error_echo;
        let echoed = wrapper
            .filter(|w| esession_wire::xml::serialized_len(w, "").is_ok_and(|len| len <= max));
        out.send(ssn::error_reply(
            to.as_str(),
            self.config.own_jid.as_deref(),
            thread,
            echoed,
            refusal.condition,
            &refusal.fields,
        ));
        // Issue 10: a refused form that shows Gajim's habits, from a contact
        // with the standard profile: say which profile would work.
        if self.config.profile_for(to.as_str()) == Profile::standard()
            && wrapper.is_some_and(crate::profile::looks_like_gajim)
        {
            out.event(Event::ProfileSuggested {
                session: SessionId {
                    peer: to.clone(),
                    thread: thread.to_owned(),
                },
                profile: Profile::gajim(),
            });
        }
    }

    pub(super) fn failed(out: &mut Output, peer: &Jid, thread: &str, refusal: Refusal) {
        out.event(Event::NegotiationFailed {
            session: SessionId {
                peer: peer.clone(),
                thread: thread.to_owned(),
            },
            error: Error::Refused {
                condition: refusal.condition,
                fields: refusal.fields,
            },
        });
    }

    /// SSN-10: an offer delivered from offline storage (it carries a XEP-0203
    /// delay) is stale: its sender has long given up waiting. Answer with a
    /// fresh offer on a new thread instead of a reply. The delay is the
    /// sender's word, so (issue 11) only a valid offer we would answer
    /// (`answerable`), and only a few times a minute per contact, makes us
    /// start one.
    pub(super) fn on_stale_offer(
        &mut self,
        from: &Jid,
        thread: &str,
        answerable: bool,
        out: &mut Output,
    ) {
        if !self.config.reoffer_delayed_offers || !answerable {
            return;
        }
        let now = self.clock.now_unix();
        let per_minute = self.config.limits.unsolicited_starts_per_minute;
        if !self
            .start_log
            .allow(from.to_bare().as_str(), per_minute, now)
        {
            limit_reached(out, from, thread, LimitKind::UnsolicitedStarts);
        } else {
            match self.start_session_to(from.clone()) {
                Ok((session, fresh)) => {
                    out.stanzas.extend(fresh.stanzas);
                    out.events.extend(fresh.events);
                    out.event(Event::StaleOfferReplaced {
                        stale: SessionId {
                            peer: from.clone(),
                            thread: thread.to_owned(),
                        },
                        session,
                    });
                }
                Err(Error::LimitReached(limit)) => {
                    limit_reached(out, from, thread, limit);
                }
                Err(_) => {}
            }
        }
    }

    /// What an evaluated offer leads to: an automatic answer, an offer held
    /// for the user (SSN-09), or a refusal (echoing `wrapper` while small).
    pub(super) fn on_offer_outcome(
        &mut self,
        evaluated: Result<OfferOutcome, Refusal>,
        wrapper: &Element,
        from: &Jid,
        thread: &str,
        automatic: bool,
        out: &mut Output,
    ) {
        match evaluated {
            Ok(OfferOutcome::Esession(offer)) => {
                if self.config.auto_accept && automatic {
                    if !self.may_answer_in(offer.group(), from.to_bare().as_str()) {
                        let refusal = Refusal::new(ErrorCondition::NotAcceptable, &["modp"]);
                        self.refuse(from, thread, None, &refusal, out);
                        limit_reached(out, from, thread, LimitKind::ExpensiveGroup);
                        return;
                    }
                    self.answer_offer(*offer, out);
                } else {
                    let session = SessionId {
                        peer: from.clone(),
                        thread: thread.to_owned(),
                    };
                    self.put(key(from, thread), State::PendingOffer(offer));
                    out.event(Event::OfferReceived { session });
                }
            }
            Ok(OfferOutcome::Plain(answer)) => {
                let session = SessionId {
                    peer: from.clone(),
                    thread: thread.to_owned(),
                };
                if self.config.auto_accept && automatic {
                    out.send(answer);
                    out.event(Event::PlainSessionAccepted { session });
                } else {
                    let plain = PlainOffer {
                        peer: from.clone(),
                        thread: thread.to_owned(),
                        answer,
                    };
                    self.put(key(from, thread), State::PendingPlain(Box::new(plain)));
                    out.event(Event::OfferReceived { session });
                }
            }
            Err(refusal) => {
                if automatic {
                    self.refuse(from, thread, Some(wrapper), &refusal, out);
                }
                Self::failed(out, from, thread, refusal);
            }
        }
    }

    /// A stanza on a thread we do not know: maybe an offer (message 1).
    pub(super) fn on_new_thread(
        &mut self,
        stanza: &Element,
        from: &Jid,
        thread: &str,
        out: &mut Output,
    ) {
        let Some(wrapper) = negotiation_wrapper(stanza) else {
            if session::is_encrypted(stanza) {
                self.on_unknown_session(from, thread, out);
            }
            return;
        };
        if wrapper.is("init", ns::ESESSION_INIT) {
            // XEP-0187: a contact's offline session, answering our options
            // (reported even when we hold none: it cannot be read).
            self.on_offline_init(stanza, wrapper, from, thread, out);
            return;
        }
        // SSN-09, ESN-07: to a stranger we send nothing, not even an error.
        let automatic = self.may_answer_automatically(from.as_str());
        // Issue 11: what we evaluate, and then keep, is bounded in size.
        let mut max = self.config.limits.max_offer_len;
        if self.config.accept_three_message {
            // A 3-message offer carries every group's public value (about
            // 4.5 KiB for all eight) besides the form.
            max = max.max(THREE_MESSAGE_OFFER_LEN);
        }
        if esession_wire::xml::serialized_len(wrapper, "").map_or(true, |len| len > max) {
            let refusal = Refusal::new(ErrorCondition::NotAcceptable, &[]);
            if automatic {
                self.refuse(from, thread, None, &refusal, out);
            }
            limit_reached(out, from, thread, LimitKind::OfferTooLarge);
            return;
        }
        let profile = self.config.profile_for(from.as_str());
        let Some((x, form)) = parse_wrapper(wrapper, &profile) else {
            let refusal = Refusal::new(ErrorCondition::NotAcceptable, &[]);
            if automatic {
                self.refuse(from, thread, Some(wrapper), &refusal, out);
            }
            Self::failed(out, from, thread, refusal);
            return;
        };
        if form.kind != esession_wire::form::FormKind::Form {
            return; // Not an offer: a stray answer for a forgotten attempt.
        }
        let delayed = stanza.children().any(|c| c.is("delay", DELAY_NS));
        if !delayed && let Some(limit) = self.session_cap_reached(&from.to_bare()) {
            // Issue 11: no key pair, no state, no echo.
            let refusal = Refusal::new(ErrorCondition::ServiceUnavailable, &[]);
            if automatic {
                self.refuse(from, thread, None, &refusal, out);
            }
            limit_reached(out, from, thread, limit);
            return;
        }
        let mut ctx = self.context(profile);
        let evaluated = responder::evaluate(&mut ctx, from, thread, x, form);
        report(&mut ctx, out, from, thread);
        if delayed {
            let valid = matches!(evaluated, Ok(OfferOutcome::Esession(_)));
            self.on_stale_offer(from, thread, valid && automatic, out);
            return;
        }
        if let Ok(OfferOutcome::Esession(offer)) = &evaluated
            && offer.compression() != CompressionAlgorithm::None
            && self.compressed_cap_reached()
        {
            // Issue 11: zlib state is large; its sessions are capped.
            if automatic {
                let refusal = Refusal::new(ErrorCondition::NotAcceptable, &["compress"]);
                self.refuse(from, thread, None, &refusal, out);
            }
            limit_reached(out, from, thread, LimitKind::CompressedSessions);
            return;
        }
        if evaluated.is_ok() {
            self.make_room_for_negotiation(&from.to_bare(), out);
        }
        self.on_offer_outcome(evaluated, wrapper, from, thread, automatic, out);
    }

    pub(super) fn answer_offer(&mut self, mut offer: responder::EvaluatedOffer, out: &mut Output) {
        let (peer, thread) = (offer.peer.clone(), offer.thread.clone());
        // Kept to echo in a refusal; made into XML only then (issue 16:
        // building it for every answer cost a quarter of answering).
        let offered = offer.take_form();
        let mut ctx = self.context(offer.profile);
        let result = offer.answer(&mut ctx);
        report(&mut ctx, out, &peer, &thread);
        match result {
            Ok((state, stanza)) => {
                out.send(stanza);
                self.put(key(&peer, &thread), State::Answered(Box::new(state)));
            }
            Err(refusal) => {
                let mut echoed = Element::bare("feature", ns::FEATURE_NEG);
                echoed.append_child(Element::from(&offered));
                self.refuse(&peer, &thread, Some(&echoed), &refusal, out);
                Self::failed(out, &peer, &thread, refusal);
            }
        }
    }

    /// Message 2 at Alice.
    pub(super) fn on_response(
        &mut self,
        alice: initiator::AwaitingResponse,
        stanza: &Element,
        from: &Jid,
        out: &mut Output,
    ) {
        let thread = alice.thread.clone();
        let Some(wrapper) = negotiation_wrapper(stanza) else {
            let k = key(from, &thread);
            self.sessions.insert(k, State::Offered(Box::new(alice)));
            return;
        };
        let Some((x, form)) = parse_wrapper(wrapper, &alice.profile) else {
            let refusal = Refusal::new(ErrorCondition::NotAcceptable, &[]);
            self.refuse(from, &thread, Some(wrapper), &refusal, out);
            Self::failed(out, from, &thread, refusal);
            return;
        };
        let mut ctx = self.context(alice.profile);
        let result = alice.on_response(&mut ctx, from, x, &form);
        let unknown_fingerprint = asked_unknown_fingerprint(&ctx);
        report(&mut ctx, out, from, &thread);
        match result {
            Ok(ResponseOutcome::Completed(state, stanza)) => {
                out.send(stanza);
                self.put(key(from, &thread), State::Completed(state));
            }
            Ok(ResponseOutcome::Established {
                session,
                stanza,
                info,
                terminated,
            }) => {
                // 3 messages (ESN-29): the completion ends the negotiation.
                out.send(stanza);
                let id = session.id().clone();
                self.established(*session, info, out);
                if terminated {
                    // A one-shot: the session ends with its only stanza.
                    let k = session_key(&id);
                    self.sessions.remove(&k);
                    out.event(Event::Terminated {
                        session: id,
                        reason: TerminationReason::LocalRequest,
                    });
                }
            }
            // Only an offline option set gives this (see `on_offline_init`).
            Ok(ResponseOutcome::ReceivedOffline { session, info }) => {
                self.established(*session, info, out);
            }
            Err(StepError::Declined) => out.event(Event::NegotiationFailed {
                session: SessionId {
                    peer: from.clone(),
                    thread,
                },
                error: Error::Declined,
            }),
            Err(StepError::Refuse(refusal)) => {
                self.refuse(from, &thread, Some(wrapper), &refusal, out);
                Self::failed(out, from, &thread, refusal);
                if unknown_fingerprint {
                    self.retry_with_key(from, &thread, out);
                }
            }
        }
    }

    /// Message 3 at Bob.
    pub(super) fn on_completion(
        &mut self,
        bob: responder::AwaitingAccept,
        stanza: &Element,
        out: &mut Output,
    ) {
        let (peer, thread) = (bob.peer().clone(), bob.thread().to_owned());
        let Some(wrapper) = negotiation_wrapper(stanza) else {
            if session::is_encrypted(stanza) {
                // Nothing can be decrypted before message 3 (AMB-44): drop it.
                out.event(Event::ClearStanzaDropped {
                    session: SessionId {
                        peer: peer.clone(),
                        thread: thread.clone(),
                    },
                });
            }
            let k = key(&peer, &thread);
            self.sessions.insert(k, State::Answered(Box::new(bob)));
            return;
        };
        // Issue 11: the caps are checked again here, as offers within them
        // may complete after others did.
        let over_cap = self.session_cap_reached(&peer.to_bare()).or_else(|| {
            (bob.compression() != CompressionAlgorithm::None && self.compressed_cap_reached())
                .then_some(LimitKind::CompressedSessions)
        });
        if let Some(limit) = over_cap {
            let refusal = Refusal::new(ErrorCondition::ServiceUnavailable, &[]);
            self.refuse(&peer, &thread, None, &refusal, out);
            limit_reached(out, &peer, &thread, limit);
            return;
        }
        let parsed = parse_wrapper(wrapper, &bob.profile());
        let mut ctx = self.context(bob.profile());
        let result = match parsed {
            Some((x, form)) => bob.on_accept(&mut ctx, x, &form),
            None => Err(StepError::Refuse(Refusal::crypto())),
        };
        report(&mut ctx, out, &peer, &thread);
        match result {
            Ok(accepted) => {
                if let Some(reply) = accepted.reply {
                    out.send(reply);
                }
                let id = accepted.session.id().clone();
                self.established(accepted.session, accepted.info, out);
                // ESN-29, AMB-44: content bundled with a 3-message completion,
                // opened only now that Alice's identity verified.
                if !self.open_bundled(&id, stanza, ("feature", ns::FEATURE_NEG), out) {
                    return;
                }
                if accepted.terminate {
                    // ESN-29: `terminate` in the completion ends the session at once.
                    let k = session_key(&id);
                    self.sessions.remove(&k);
                    out.event(Event::Terminated {
                        session: id,
                        reason: TerminationReason::PeerRequest,
                    });
                }
            }
            Err(StepError::Declined) => out.event(Event::NegotiationFailed {
                session: SessionId { peer, thread },
                error: Error::Declined,
            }),
            Err(StepError::Refuse(refusal)) => {
                self.refuse(&peer, &thread, Some(wrapper), &refusal, out);
                Self::failed(out, &peer, &thread, refusal);
            }
        }
    }

    /// Message 4 at Alice.
    pub(super) fn on_final(
        &mut self,
        alice: initiator::AwaitingFinal,
        stanza: &Element,
        out: &mut Output,
    ) {
        let (peer, thread) = (alice.peer.clone(), alice.thread.clone());
        let Some(wrapper) = negotiation_wrapper(stanza) else {
            let k = key(&peer, &thread);
            self.sessions.insert(k, State::Completed(Box::new(alice)));
            return;
        };
        let parsed = parse_wrapper(wrapper, &alice.profile);
        let mut ctx = self.context(alice.profile);
        let result = match parsed {
            Some((x, form)) => alice.on_final(&mut ctx, x, &form),
            None => Err(Refusal::crypto()),
        };
        let unknown_fingerprint = asked_unknown_fingerprint(&ctx);
        report(&mut ctx, out, &peer, &thread);
        match result {
            Ok((session, info)) => {
                let prove = info.authenticated_by_retained_secret
                    && self.config.prove_retained_secret_at_once
                    && info.stanzas.contains(&StanzaKind::Message);
                let id = session.id().clone();
                self.established(session, info, out);
                if prove {
                    self.prove_retained_secret(&id, out);
                }
            }
            Err(refusal) => {
                self.refuse(&peer, &thread, Some(wrapper), &refusal, out);
                Self::failed(out, &peer, &thread, refusal);
                if unknown_fingerprint {
                    self.retry_with_key(&peer, &thread, out);
                }
            }
        }
    }

    /// ESN-27: the responder identified by the fingerprint of a key we do not
    /// hold; the attempt ended. Offer again on a new thread, asking for the
    /// full key this time (XEP-0116 §4.5.2 "MAY then request a new ESession").
    pub(super) fn retry_with_key(&mut self, peer: &Jid, failed_thread: &str, out: &mut Output) {
        let profile = self.config.profile_for(peer.as_str());
        let mut config = self.config.for_profile(&profile).into_owned();
        config
            .peer_identification
            .retain(|m| *m != crate::config::PubkeyMethod::Hash);
        let thread = new_thread_id(self.rng.as_mut());
        let mut ctx = self.context_with(&config, profile);
        let offered = initiator::offer(&mut ctx, peer, thread.clone());
        report(&mut ctx, out, peer, &thread);
        if let Ok((state, stanza)) = offered {
            self.put(key(peer, &thread), State::Offered(Box::new(state)));
            out.send(stanza);
            out.event(Event::RetryingWithFullKey {
                failed: SessionId {
                    peer: peer.clone(),
                    thread: failed_thread.to_owned(),
                },
                session: SessionId {
                    peer: peer.clone(),
                    thread,
                },
            });
        }
    }

    /// ESN-29, AMB-44: the `<c/>` bundled with the negotiation stanza
    /// (`wrapper` names its negotiation element), opened in the session just
    /// established, only after the peer's identity verified. Returns whether
    /// the session is still there.
    pub(super) fn open_bundled(
        &mut self,
        id: &SessionId,
        stanza: &Element,
        wrapper: (&str, &str),
        out: &mut Output,
    ) -> bool {
        if !session::is_encrypted(stanza) {
            return true;
        }
        let mut content = stanza.clone();
        content.remove_child(wrapper.0, wrapper.1);
        let k = session_key(id);
        let receipts = self.config.delivery_receipts;
        if let Some(State::Established(s)) = self.sessions.get_mut(&k)
            && on_established(
                s,
                &content,
                self.rng.as_mut(),
                self.trust.as_mut(),
                self.clock.now_unix(),
                receipts,
                out,
            ) == Keep::Remove
        {
            self.sessions.remove(&k);
            return false;
        }
        true
    }

    pub(super) fn established(
        &mut self,
        mut session: EstablishedSession,
        mut info: SessionInfo,
        out: &mut Output,
    ) {
        let id = session.id().clone();
        // The ESN-34 reminder repeats at each session unless the user
        // dismissed it; a broken chain always reminds (issue 10).
        if info.sas_reminder && info.broken_chain.is_none() {
            let client = id.peer.resource().map_or("", |r| r.as_str());
            match self
                .trust
                .sas_reminder_dismissed(id.peer.to_bare().as_str(), client)
            {
                Ok(true) => {
                    info.sas_reminder = false;
                    session.suppress_sas_reminder();
                }
                Ok(false) => {}
                Err(error) => out.event(Event::TrustStoreFailure { error }),
            }
        }
        if info.disclosure != Disclosure::Never {
            out.event(Event::SecurityAlert {
                session: id.clone(),
                alert: SecurityAlert::DisclosureNotNever(info.disclosure),
            });
        }
        if !info.cipher.is_confidential() {
            out.event(Event::SecurityAlert {
                session: id.clone(),
                alert: SecurityAlert::NoConfidentiality,
            });
        }
        let k = session_key(&id);
        // Issue 10: the responder announces the session once the initiator
        // proved the retained secret it claimed, so that the event carries
        // the final answer (see `settle_announcements`).
        if session.awaits_retained_secret_proof() && self.config.retained_secret_proof_wait > 0 {
            self.unannounced.insert(k.clone(), self.clock.now_unix());
        } else {
            out.event(Event::Established {
                session: id.clone(),
                info,
            });
        }
        self.put(k, State::Established(Box::new(session)));
    }

    /// Issue 10, initiator: the responder showed it holds one of our retained
    /// secrets; one encrypted XEP-0085 `<active/>` chat state under the final
    /// keys proves at once that we hold it too.
    pub(super) fn prove_retained_secret(&mut self, id: &SessionId, out: &mut Output) {
        let k = session_key(id);
        let now = self.clock.now_unix();
        if let Some(State::Established(s)) = self.sessions.get_mut(&k) {
            let mut active = message(id.peer.as_str(), None, Some("chat"));
            active.append_child(Element::bare("active", CHAT_STATES_NS));
            if let Ok(stanzas) = s.seal_message(&active, self.rng.as_mut(), now) {
                out.stanzas.extend(stanzas);
            }
        }
    }

    /// Replaces, in one step's output, the [`Event::RetainedSecretProven`] of
    /// a session not yet announced by its [`Event::Established`] (which now
    /// carries the proof), and forgets announcements of sessions that ended.
    pub(super) fn settle_announcements(&mut self, out: &mut Output) {
        for event in &mut out.events {
            let proven = match event {
                Event::RetainedSecretProven { session, .. } => session.clone(),
                _ => continue,
            };
            let k = session_key(&proven);
            if self.unannounced.remove(&k).is_none() {
                continue;
            }
            if let Some(State::Established(s)) = self.sessions.get(&k) {
                *event = Event::Established {
                    session: proven,
                    info: s.info().clone(),
                };
            }
        }
        let sessions = &self.sessions;
        self.unannounced
            .retain(|k, _| matches!(sessions.get(k), Some(State::Established(_))));
    }

    /// Announces, as not (yet) authenticated by the retained secret, the
    /// sessions whose initiator did not prove it within the wait.
    pub(super) fn announce_unproven(&mut self, now: u64, out: &mut Output) {
        let wait = self.config.retained_secret_proof_wait;
        let due: Vec<Key> = self
            .unannounced
            .iter()
            .filter(|(_, since)| now >= since.saturating_add(wait))
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            self.unannounced.remove(&k);
            if let Some(State::Established(s)) = self.sessions.get_mut(&k) {
                s.mark_retained_secret_unproven();
                out.event(Event::Established {
                    session: s.id().clone(),
                    info: s.info().clone(),
                });
            }
        }
    }
}
