//! XEP-0187 offline sessions in the manager: Bob starting one from Alice's
//! published options (OFF-07..12, OFF-17), and Alice reading the `<init/>`
//! stanzas that arrived while she was away (OFF-13..16, AMB-71..74).

use std::collections::HashSet;

use esession_crypto::{ModpGroup, ct_eq};
use esession_wire::form::{DataForm, FormKind};
use esession_wire::minidom::Element;
use esession_wire::negotiation::{fields, unb64};
use esession_wire::ns;
use jid::{BareJid, Jid};

use super::{SessionManager, State, parse_wrapper, report, session_key};
use crate::error::Error;
use crate::event::{Event, OfflineRejection, Output, SessionId, TerminationReason};
use crate::negotiation::initiator::{self, ResponseOutcome};
use crate::negotiation::responder;
use crate::offline::{OfflineOptionSet, verified_options};
use crate::profile::Profile;
use crate::thread::new_thread_id;

/// Option sets held at once; publishing a new one on every departure
/// (OFF-18) retires the oldest beyond this.
const MAX_HELD_SETS: usize = 4;
/// The d and N_B values remembered per set (AMB-72): beyond this the set
/// has served more offline sessions than any honest use makes, and is retired.
const MAX_SEEN_PER_SET: usize = 4096;

/// An option set we published, with the secrets to read what it is answered
/// with, and the d and N_B values already seen under it (AMB-72).
pub(super) struct HeldOptionSet {
    set: OfflineOptionSet,
    seen: HashSet<Vec<u8>>,
}

impl SessionManager {
    /// XEP-0187 (OFF-03, OFF-13): holds an option set we published (made by
    /// [`Self::offline_options`], or restored from the store when we come
    /// back), so that the offline sessions contacts start with it can be
    /// read. At most four are held; the oldest goes first.
    pub fn hold_offline_options(&mut self, set: OfflineOptionSet) {
        if self.offline_sets.len() >= MAX_HELD_SETS {
            self.offline_sets.remove(0);
        }
        self.offline_sets.push(HeldOptionSet {
            set,
            seen: HashSet::new(),
        });
    }

    /// Destroys every held option set past its expiry (OFF-13, OFF-19):
    /// stanzas answering it can no longer be read. Returns how many went.
    pub fn discard_expired_offline_options(&mut self) -> usize {
        let now = self.now_signed();
        let before = self.offline_sets.len();
        self.offline_sets.retain(|h| h.set.expires_at >= now);
        before - self.offline_sets.len()
    }

    /// The number of option sets held.
    pub fn held_offline_options(&self) -> usize {
        self.offline_sets.len()
    }

    fn now_signed(&self) -> i64 {
        i64::try_from(self.clock.now_unix()).unwrap_or(i64::MAX)
    }

    /// XEP-0187 as the sender (OFF-07..12): `contact` is offline and
    /// published `options` (the `<x/>` form as fetched). They are used only
    /// if a signature verifies with a key of the contact the user verified
    /// (AMB-69), they have not expired and ask nothing unsupported (OFF-08);
    /// then we answer them alone, as the 3-message responder, and the
    /// returned output holds the `<init/>` stanza, with `first` (a
    /// `<message/>`) encrypted in it. With `one_shot` the session ends with
    /// that stanza (AMB-73); otherwise it stays open for more messages until
    /// the contact comes online (OFF-17).
    ///
    /// Fails with [`Error::SessionExists`] while an ESession with the
    /// contact exists (OFF-07), [`Error::OfflineOptions`] when the options
    /// cannot be used; nothing is sent then.
    pub fn start_offline_session(
        &mut self,
        contact: &BareJid,
        options: &Element,
        first: Option<&Element>,
        one_shot: bool,
    ) -> Result<(SessionId, Output), Error> {
        if self
            .sessions
            .iter()
            .any(|((peer, _), state)| peer == contact && matches!(state, State::Established(_)))
        {
            return Err(Error::SessionExists);
        }
        if let Some(limit) = self.session_cap_reached(contact) {
            return Err(Error::LimitReached(limit));
        }
        let verified = self
            .trust
            .peer_keys(Some(contact.as_str()))
            .map_err(|_| Error::InvalidInput("the trust store could not be read"))?;
        let (checked, signer, proof) = verified_options(options, &verified, self.now_signed())
            .map_err(Error::OfflineOptions)?;
        // OFF-11, AMB-78: to the one resource that can read it, if named.
        let to: Jid = match checked.match_resource.as_deref() {
            Some(resource) => Jid::new(&format!("{contact}/{resource}"))
                .map_err(|_| Error::OfflineOptions(crate::offline::OptionsError::Malformed))?,
            None => Jid::from(contact.clone()),
        };
        let form = DataForm::try_from(options)
            .map_err(|_| Error::OfflineOptions(crate::offline::OptionsError::Malformed))?;
        let thread = new_thread_id(self.rng.as_mut()); // AMB-35
        let mut out = Output::default();
        let mut ctx = self.context(Profile::standard());
        let built = responder::evaluate_options(&mut ctx, &to, &thread, options, &form)
            .and_then(|offer| offer.answer_offline(&mut ctx, one_shot))
            .and_then(|(bob, stanza)| {
                bob.establish_offline(&mut ctx, proof, signer)
                    .map(|(session, info)| (session, info, stanza))
            });
        report(&mut ctx, &mut out, &to, &thread);
        let (mut session, info, mut stanza) = built.map_err(|_| {
            Error::OfflineOptions(crate::offline::OptionsError::Unsupported(
                "nothing offered is acceptable",
            ))
        })?;
        session.send_until(u64::try_from(checked.expires_at).unwrap_or_default());
        if let Some(plain) = first {
            // OFF-10, AMB-44/78: the content after our identity, in `<c/>`.
            let sealed = session.seal_bundled(plain, self.rng.as_mut(), self.clock.now_unix())?;
            for child in sealed.children() {
                if child.is("c", ns::STANZA_ENCRYPTION) {
                    stanza.append_child(child.clone());
                }
            }
        }
        let id = session.id().clone();
        out.send(stanza);
        self.established(session, info, &mut out);
        if one_shot {
            self.sessions.remove(&session_key(&id));
            out.event(Event::Terminated {
                session: id.clone(),
                reason: TerminationReason::LocalRequest,
            });
        }
        Ok((id, out))
    }

    /// OFF-17, AMB-74: the contact is online again: every offline session
    /// we started with them ends with the encrypted terminate form, which
    /// nobody acknowledges.
    pub(super) fn end_offline_sessions_with(&mut self, from: &Jid, out: &mut Output) {
        let contact = from.to_bare();
        let mut ended: Vec<_> = self
            .sessions
            .iter()
            .filter(|((peer, _), state)| {
                *peer == contact
                    && matches!(state, State::Established(s)
                        if s.info().offline && !s.info().we_initiated)
            })
            .map(|(k, _)| k.clone())
            .collect();
        ended.sort();
        let now = self.clock.now_unix();
        for k in ended {
            if let Some(State::Established(mut s)) = self.sessions.remove(&k) {
                if let Ok(terminate) = s.terminate_stanzas(self.rng.as_mut(), now) {
                    out.stanzas.extend(terminate);
                }
                out.event(Event::Terminated {
                    session: s.id().clone(),
                    reason: TerminationReason::PeerOnline,
                });
            }
        }
    }

    /// An `<init/>` on a new thread: Bob's offline session answering one of
    /// our option sets (OFF-13..16). Every failure is silent towards the
    /// sender (OFF-15) and told to the user; the rest of a rejected session
    /// (its later `<c/>` stanzas) is dropped without a word too.
    pub(super) fn on_offline_init(
        &mut self,
        stanza: &Element,
        wrapper: &Element,
        from: &Jid,
        thread: &str,
        out: &mut Output,
    ) {
        let before = out.events.len();
        self.read_offline_init(stanza, wrapper, from, thread, out);
        let rejected = out
            .events
            .iter()
            .skip(before)
            .any(|e| matches!(e, Event::OfflineMessageRejected { .. }));
        if rejected {
            self.remember_ended(super::key(from, thread));
        }
    }

    /// Issue 11's bounds before any work: anyone who read our options can
    /// make us compute, so the size and the rate per sender are capped.
    fn offline_init_allowed(&mut self, wrapper: &Element, from: &Jid) -> bool {
        let too_large = esession_wire::xml::serialize(wrapper, "")
            .map_or(true, |text| text.len() > super::THREE_MESSAGE_OFFER_LEN);
        let now = self.clock.now_unix();
        let per_minute = self.config.limits.offline_messages_per_minute;
        !too_large
            && self
                .offline_log
                .allow(from.to_bare().as_str(), per_minute, now)
    }

    /// ARC-05/07: the options were published under the policy and the
    /// archive of then; what the sender agreed must be allowed now.
    fn offline_logging_allowed(&self, form: &DataForm, from: &Jid) -> bool {
        let logging = form
            .field(fields::LOGGING)
            .and_then(|f| f.single_value())
            .and_then(crate::ssn::Logging::from_value);
        logging.is_none_or(|l| self.config.logging_still_allowed(from.as_str(), l))
    }

    fn read_offline_init(
        &mut self,
        stanza: &Element,
        wrapper: &Element,
        from: &Jid,
        thread: &str,
        out: &mut Output,
    ) {
        let id = SessionId {
            peer: from.clone(),
            thread: thread.to_owned(),
        };
        let reject = |out: &mut Output, reason| {
            out.event(Event::OfflineMessageRejected {
                session: id.clone(),
                reason,
            });
        };
        if !self.offline_init_allowed(wrapper, from) {
            return reject(out, OfflineRejection::Limited);
        }
        let Some((x, form)) = parse_wrapper(wrapper, &Profile::standard()) else {
            return reject(out, OfflineRejection::Unreadable);
        };
        if form.kind != FormKind::Submit {
            // An offer or a reply in the wrong wrapper (AMB-04): no offline
            // message at all, so nothing is lost; ignored like a stray answer.
            return;
        }
        let read = |var| {
            form.field(var)
                .and_then(|f| f.single_value())
                .and_then(|v| unb64(v, esession_wire::negotiation::MAX_DH_VALUE_LEN))
        };
        let (Some(n_a), Some(d), Some(n_b)) = (
            read(fields::NONCE),
            read(fields::DHKEYS),
            read(fields::MY_NONCE),
        ) else {
            return reject(out, OfflineRejection::Unreadable);
        };
        let Some(held) = self
            .offline_sets
            .iter()
            .position(|h| ct_eq(h.set.nonce(), &n_a))
        else {
            return reject(out, OfflineRejection::UnknownOptions);
        };
        // AMB-71: by our clock when we read it, not the sender's or the server's.
        if self.offline_sets[held].set.expires_at < self.now_signed() {
            self.offline_sets.remove(held);
            return reject(out, OfflineRejection::Expired);
        }
        // OFF-14, AMB-72: d or N_B seen under this set before is a replay.
        let seen = &self.offline_sets[held].seen;
        if seen.contains(&d) || seen.contains(&n_b) {
            return reject(out, OfflineRejection::Replayed);
        }
        if self.session_cap_reached(&from.to_bare()).is_some() {
            return reject(out, OfflineRejection::Limited);
        }
        // OFF-14: x by `nonce` (above) and `modp`.
        let group = form
            .field(fields::MODP)
            .and_then(|f| f.single_value())
            .and_then(|name| ModpGroup::from_name(name).ok());
        let held_set = &self.offline_sets[held].set;
        let Some(pair) = group.and_then(|g| held_set.key_pair(g)) else {
            return reject(out, OfflineRejection::Unreadable);
        };
        if !self.offline_logging_allowed(&form, from) {
            return reject(out, OfflineRejection::ArchivingPolicy);
        }
        let offer = initiator::offline_offer(
            &held_set.options,
            held_set.nonce(),
            pair,
            from.clone(),
            thread.to_owned(),
        );
        let mut ctx = self.context(Profile::standard());
        let result = offer
            .map_err(crate::negotiation::StepError::from)
            .and_then(|alice| alice.on_response(&mut ctx, from, x, &form));
        report(&mut ctx, out, from, thread);
        let Ok(ResponseOutcome::ReceivedOffline { session, info }) = result else {
            // OFF-15: no error stanza; the sender learns nothing.
            return reject(out, OfflineRejection::NotAuthenticated);
        };
        let held_set = &mut self.offline_sets[held];
        if held_set.seen.len() + 2 > MAX_SEEN_PER_SET {
            self.offline_sets.remove(held);
        } else {
            held_set.seen.insert(d);
            held_set.seen.insert(n_b);
        }
        let one_shot = form
            .field(fields::TERMINATE)
            .and_then(|f| f.as_bool().ok())
            .unwrap_or(false);
        self.established(*session, info, out);
        // AMB-44: content bundled after the identity, opened only now.
        if !self.open_bundled(&id, stanza, ("init", ns::ESESSION_INIT), out) {
            return;
        }
        if one_shot {
            let k = session_key(&id);
            // AMB-73: a one-shot ends with its stanza; we send nothing.
            self.sessions.remove(&k);
            out.event(Event::Terminated {
                session: id,
                reason: TerminationReason::PeerRequest,
            });
        }
    }
}
