//! The sans-IO session manager: stanzas and user intents in, stanzas and events out.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use esession_crypto::CompressionAlgorithm;
use esession_wire::form::DataForm;
use esession_wire::minidom::Element;
use esession_wire::ns;
use jid::{BareJid, Jid};

use crate::archiving::OtrPolicy;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Error, LimitKind};
use crate::event::{Event, Output, SecurityAlert, SessionId, SessionInfo, TerminationReason};
use crate::negotiation::StepError;
use crate::negotiation::initiator::{self, ResponseOutcome};
use crate::negotiation::responder::{self, OfferOutcome};
use crate::negotiation::{Context, Refusal};
use crate::profile::Profile;
use crate::random::Randomness;
use crate::session::control::Control;
use crate::session::{self, EstablishedSession, OpenFailure, Opened};
use crate::ssn::{self, Disclosure, ErrorCondition, Logging};
use crate::stanza::StanzaKind;
use crate::stanza::{message, text_child, thread_of};
use crate::thread::new_thread_id;
use crate::trust::TrustStore;

mod commands;
mod control;
mod established;
mod limits;
mod offline;
mod receipts;
mod steps;
mod unthreaded;

use established::{Keep, keys_exhausted, on_established};

/// Where one (peer, thread) stands.
enum State {
    /// Alice: offer sent (message 1).
    Offered(Box<initiator::AwaitingResponse>),
    /// Bob: offer received, waiting for the user (SSN-09).
    PendingOffer(Box<responder::EvaluatedOffer>),
    /// Bob: an offer of a plain stanza session (ESN-11) waiting for the user (SSN-09).
    PendingPlain(Box<PlainOffer>),
    /// Bob: answer sent (message 2).
    Answered(Box<responder::AwaitingAccept>),
    /// Alice: completion sent (message 3).
    Completed(Box<initiator::AwaitingFinal>),
    /// Either side: keys agreed.
    Established(Box<EstablishedSession>),
}

impl State {
    fn peer(&self) -> &Jid {
        match self {
            Self::Offered(s) => &s.peer,
            Self::PendingOffer(s) => &s.peer,
            Self::PendingPlain(s) => &s.peer,
            Self::Answered(s) => s.peer(),
            Self::Completed(s) => &s.peer,
            Self::Established(s) => &s.id().peer,
        }
    }

    /// SSN-11: the session is bound to the full JID that answered; before that
    /// (an offer to a bare JID) any resource of the peer may answer.
    fn accepts_from(&self, from: &Jid) -> bool {
        let peer = self.peer();
        peer == from || (peer.is_bare() && from.to_bare() == *peer)
    }
}

/// An offer of a plain stanza session held for the user, with our answer.
struct PlainOffer {
    peer: Jid,
    thread: String,
    answer: Element,
}

/// Drives every ESession of one account. Owns the injected randomness, trust
/// store and clock; never touches sockets, files or global state.
pub struct SessionManager {
    config: Config,
    rng: Box<dyn Randomness + Send>,
    trust: Box<dyn TrustStore + Send>,
    clock: Box<dyn Clock + Send>,
    sessions: HashMap<Key, State>,
    /// When each negotiation in progress started (Unix seconds), for timeouts.
    started: HashMap<Key, u64>,
    /// [`Config`] narrowed by each non-standard profile in use (issue 6).
    restricted: Vec<(Profile, Config)>,
    /// Bare JIDs subscribed to our presence, as the application reports them
    /// (SSN-09, [`Config::answer_only_subscribers`]).
    subscribers: HashSet<BareJid>,
    /// Responder sessions whose [`Event::Established`] waits for the
    /// initiator to prove the retained secret it claimed (Unix seconds since
    /// established, [`Config::retained_secret_proof_wait`]).
    unannounced: HashMap<Key, u64>,
    /// Threads of sessions we ended and told the peer about (most recent
    /// last, bounded): a late stanza on one gets no `item-not-found`.
    ended: std::collections::VecDeque<Key>,
    /// Negotiations unauthenticated stanzas made us start (issue 11).
    start_log: limits::StartLog,
    /// Offers answered in an expensive group, per bare JID and in all ("*").
    expensive_log: limits::StartLog,
    /// Our published XEP-0187 option sets whose secrets we hold (OFF-03).
    offline_sets: Vec<offline::HeldOptionSet>,
    /// Offline sessions read, per sender (issue 11's bound on their cost).
    offline_log: limits::StartLog,
}

impl core::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SessionManager")
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

/// The least `Limits::max_offer_len` in effect when 3-message offers are accepted.
const THREE_MESSAGE_OFFER_LEN: usize = 12 * 1024;

/// XEP-0203 delayed delivery.
const DELAY_NS: &str = "urn:xmpp:delay";

/// Where a session is kept: its peer's bare JID, typed and normalized (RFC
/// 7622: `Bob@Example.com` and `bob@example.com` are one contact), and its
/// thread (XEP-0201). Another resource of the contact finds the same entry;
/// the state then checks the resource (SSN-11).
type Key = (BareJid, String);

/// The key of `peer`'s session on `thread`.
fn key(peer: &Jid, thread: &str) -> Key {
    (peer.to_bare(), thread.to_owned())
}

/// The key of a session.
fn session_key(session: &SessionId) -> Key {
    key(&session.peer, &session.thread)
}

fn negotiation_wrapper(stanza: &Element) -> Option<&Element> {
    stanza
        .children()
        .find(|c| c.is("feature", ns::FEATURE_NEG) || c.is("init", ns::ESESSION_INIT))
}

fn parse_wrapper<'w>(wrapper: &'w Element, profile: &Profile) -> Option<(&'w Element, DataForm)> {
    let mut forms = wrapper.children().filter(|c| c.is("x", ns::DATA_FORMS));
    let x = forms.next()?;
    if forms.next().is_some() {
        return None;
    }
    profile.parse_form(x).ok().map(|form| (x, form))
}

impl SessionManager {
    /// A manager with the given policy and injected dependencies; fails with
    /// [`Error::InvalidConfig`] when the policy cannot work
    /// ([`Config::validate`]), so a bad configuration surfaces here and not
    /// at the first negotiation.
    pub fn new(
        config: Config,
        rng: Box<dyn Randomness + Send>,
        trust: Box<dyn TrustStore + Send>,
        clock: Box<dyn Clock + Send>,
    ) -> Result<Self, Error> {
        config.validate().map_err(Error::InvalidConfig)?;
        Ok(Self {
            config,
            rng,
            trust,
            clock,
            sessions: HashMap::new(),
            started: HashMap::new(),
            restricted: Vec::new(),
            subscribers: HashSet::new(),
            unannounced: HashMap::new(),
            ended: std::collections::VecDeque::new(),
            start_log: limits::StartLog::default(),
            expensive_log: limits::StartLog::default(),
            offline_sets: Vec::new(),
            offline_log: limits::StartLog::default(),
        })
    }

    /// Selects the wire profile for a contact (issue 6), by bare JID (a full
    /// JID selects for its bare JID): the offers we send to that contact and
    /// the offers we receive from it use `profile` from now on, for example
    /// [`Profile::gajim`] to interoperate with Gajim 0.12-0.16. Selecting
    /// [`Profile::standard`] removes the setting. Negotiations in progress and
    /// established sessions keep the profile they started with.
    pub fn set_profile(&mut self, peer: &str, profile: Profile) {
        let peer = crate::stanza::normalized_bare(peer);
        if profile == Profile::standard() {
            self.config.profiles.remove(&peer);
        } else {
            self.config.profiles.insert(peer, profile);
        }
        self.restricted.clear();
    }

    /// The wire profile selected for `peer` (bare or full JID), see
    /// [`Self::set_profile`] and [`Config::profiles`].
    pub fn profile_for(&self, peer: &str) -> Profile {
        self.config.profile_for(peer)
    }

    /// Records whether `jid` (its bare JID) is subscribed to our presence and
    /// not blocked (SSN-09): feed the roster at login and every change after.
    /// Used only with [`Config::answer_only_subscribers`].
    pub fn set_presence_subscription(&mut self, jid: &str, subscribed: bool) {
        let Ok(jid) = Jid::new(jid) else {
            return; // Not a JID: nobody is subscribed under it.
        };
        if subscribed {
            self.subscribers.insert(jid.into_bare());
        } else {
            self.subscribers.remove(&jid.into_bare());
        }
    }

    /// Forgets every presence subscription (before feeding a whole roster again).
    pub fn clear_presence_subscriptions(&mut self) {
        self.subscribers.clear();
    }

    /// Whether `jid`'s bare JID was reported subscribed to our presence.
    pub fn is_presence_subscribed(&self, jid: &str) -> bool {
        Jid::new(jid).is_ok_and(|jid| self.subscribers.contains(&jid.into_bare()))
    }

    /// SSN-09, ESN-07: whether an offer from `from` may be answered without
    /// the user (a reply, even an error, tells the requester we are online).
    fn may_answer_automatically(&self, from: &str) -> bool {
        !self.config.answer_only_subscribers || self.is_presence_subscribed(from)
    }

    /// The policy in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The trust store.
    pub fn trust(&self) -> &dyn TrustStore {
        self.trust.as_ref()
    }

    /// The trust store, mutably (to set other shared secrets, for example).
    pub fn trust_mut(&mut self) -> &mut dyn TrustStore {
        self.trust.as_mut()
    }

    /// The context of a negotiation step with a peer of `profile`: its policy
    /// is [`Config`] narrowed by the profile ([`Profile::restrict`]).
    /// A step's context with a one-off `config` (narrower than ours).
    fn context_with<'a>(&'a mut self, config: &'a Config, profile: Profile) -> Context<'a> {
        Context {
            config,
            profile,
            rng: self.rng.as_mut(),
            trust: self.trust.as_mut(),
            clock: self.clock.as_ref(),
            trust_failures: Vec::new(),
            alerts: Vec::new(),
        }
    }

    fn context(&mut self, profile: Profile) -> Context<'_> {
        let cached = self.restricted.iter().position(|(p, _)| *p == profile);
        let index = match cached {
            Some(index) => Some(index),
            None => match self.config.for_profile(&profile) {
                Cow::Borrowed(_) => None,
                Cow::Owned(restricted) => {
                    self.restricted.push((profile, restricted));
                    Some(self.restricted.len() - 1)
                }
            },
        };
        let config = match index.and_then(|i| self.restricted.get(i)) {
            Some((_, restricted)) => restricted,
            None => &self.config,
        };
        Context {
            config,
            profile,
            rng: self.rng.as_mut(),
            trust: self.trust.as_mut(),
            clock: self.clock.as_ref(),
            trust_failures: Vec::new(),
            alerts: Vec::new(),
        }
    }

    /// Records `state` under `k`, with the time a negotiation step was taken.
    fn put(&mut self, k: Key, state: State) {
        if matches!(state, State::Established(_)) {
            self.started.remove(&k);
        } else {
            self.started.insert(k.clone(), self.clock.now_unix());
        }
        self.sessions.insert(k, state);
    }

    /// Forgets negotiations whose last step is older than
    /// [`Config::negotiation_timeout`] (ESN-10): call it now and then (the XMPP
    /// adapter does, once a second). Established sessions never expire here.
    pub fn expire_negotiations(&mut self) -> Output {
        let mut out = Output::default();
        let now = self.clock.now_unix();
        let timeout = self.config.negotiation_timeout;
        let stale: Vec<Key> = self
            .started
            .iter()
            .filter(|(_, since)| now.saturating_sub(**since) > timeout)
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            self.started.remove(&k);
            if let Some(state) = self.sessions.remove(&k) {
                if let State::Established(session) = state {
                    self.sessions.insert(k, State::Established(session));
                    continue;
                }
                out.event(Event::NegotiationFailed {
                    session: SessionId {
                        peer: state.peer().to_owned(),
                        thread: k.1.clone(),
                    },
                    error: Error::Timeout,
                });
            }
        }
        out
    }

    /// What was agreed in an established session.
    pub fn session_info(&self, session: &SessionId) -> Option<&SessionInfo> {
        match self.sessions.get(&session_key(session))? {
            State::Established(s) if s.id() == session => Some(s.info()),
            _ => None,
        }
    }

    /// The established sessions, with what each agreed.
    pub fn established_sessions(&self) -> impl Iterator<Item = (&SessionId, &SessionInfo)> {
        self.sessions.values().filter_map(|state| match state {
            State::Established(s) => Some((s.id(), s.info())),
            _ => None,
        })
    }

    /// Whether a session or a negotiation with `contact` on `thread` is held
    /// (in any state): an adapter that tracks sessions of its own learns
    /// here which ended without an event (a negotiation given up, say).
    pub fn holds(&self, contact: &BareJid, thread: &str) -> bool {
        self.sessions
            .contains_key(&(contact.clone(), thread.to_owned()))
    }

    /// Whether `session` is established (keys agreed and verified).
    pub fn is_established(&self, session: &SessionId) -> bool {
        self.session_info(session).is_some()
    }

    /// Runs every timer: forgets stale negotiations (as
    /// [`Self::expire_negotiations`]), destroys key sets older than 60 s
    /// (ENC-17) and sends the rekeys that are due (ENC-19: after
    /// [`Config::idle_rekey_after`] idle seconds or half the block limit).
    /// Call it when [`Self::next_deadline`] is reached, or simply every second.
    pub fn poll_timers(&mut self) -> Output {
        let mut out = self.expire_negotiations();
        let now = self.clock.now_unix();
        self.announce_unproven(now, &mut out);
        for state in self.sessions.values_mut() {
            if let State::Established(s) = state
                && let Some(stanza) = s.on_timer(self.rng.as_mut(), now)
            {
                out.send(stanza);
            }
        }
        self.note_ended(&out);
        out
    }

    /// When [`Self::poll_timers`] next has work to do (Unix seconds; possibly
    /// already past), or `None` when no timer is pending.
    pub fn next_deadline(&self) -> Option<u64> {
        let now = self.clock.now_unix();
        let negotiations = self.started.values().map(|since| {
            since
                .saturating_add(self.config.negotiation_timeout)
                .saturating_add(1)
        });
        let sessions = self.sessions.values().filter_map(|state| match state {
            State::Established(s) => s.next_deadline(now),
            _ => None,
        });
        let wait = self.config.retained_secret_proof_wait;
        let announcements = self
            .unannounced
            .values()
            .map(|since| since.saturating_add(wait));
        negotiations.chain(sessions).chain(announcements).min()
    }

    /// Feeds one received stanza. Never fails: problems become replies and events.
    pub fn handle_stanza(&mut self, stanza: &Element) -> Output {
        let mut out = self.route_stanza(stanza);
        if !self.unannounced.is_empty() {
            self.settle_announcements(&mut out);
        }
        self.note_ended(&out);
        out
    }

    /// Remembers the threads of sessions that ended in `out` with the peer
    /// told (every reason but a connection reset, whose terminate may never
    /// reach the peer): stanzas crossing the termination are not answered
    /// with `item-not-found`.
    fn note_ended(&mut self, out: &Output) {
        for event in &out.events {
            if let Event::Terminated { session, reason } = event
                && *reason != TerminationReason::ConnectionReset
            {
                self.remember_ended(session_key(session));
            }
        }
    }

    /// A thread whose late stanzas get no `item-not-found` (most recent last, bounded).
    fn remember_ended(&mut self, k: Key) {
        const REMEMBERED: usize = 256;
        if self.ended.len() >= REMEMBERED {
            self.ended.pop_front();
        }
        self.ended.push_back(k);
    }

    fn route_stanza(&mut self, stanza: &Element) -> Output {
        let mut out = Output::default();
        if crate::stanza::kind_of(stanza).is_some_and(|k| k != StanzaKind::Message) {
            return self.handle_unthreaded(stanza); // presence and iq (AMB-26, SSN-16)
        }
        if !stanza.is("message", ns::JABBER_CLIENT) {
            return out;
        }
        let (Some(from), Some(thread)) = (stanza.attr("from"), thread_of(stanza)) else {
            return out;
        };
        // A `from` that is not a JID (RFC 7622) is nobody's: dropped.
        let Ok(from) = Jid::new(from) else {
            return out;
        };
        let k = key(&from, &thread);
        let is_error = stanza.attr("type") == Some("error");
        // Hot path: an established session handles the stanza in place.
        if let Some(State::Established(session)) = self.sessions.get_mut(&k) {
            if session.id().peer != from {
                return out; // SSN-11: bound to the full JID that negotiated.
            }
            if session.info().offline && stanza.get_child("init", ns::ESESSION_INIT).is_some() {
                // OFF-14: the `<init/>` that opened this session, again.
                out.event(Event::OfflineMessageRejected {
                    session: session.id().clone(),
                    reason: crate::event::OfflineRejection::Replayed,
                });
                return out;
            }
            // Issue 11: "session gone" is unauthenticated and makes the
            // application negotiate anew: only a few times a minute per contact.
            if is_error && !session::is_encrypted(stanza) && ssn::is_session_gone(stanza) {
                let now = self.clock.now_unix();
                let per_minute = self.config.limits.unsolicited_starts_per_minute;
                if !self
                    .start_log
                    .allow(from.to_bare().as_str(), per_minute, now)
                {
                    return out;
                }
            }
            let Some(State::Established(session)) = self.sessions.get_mut(&k) else {
                return out;
            };
            let receipts = self.config.delivery_receipts;
            match on_established(
                session,
                stanza,
                self.rng.as_mut(),
                self.trust.as_mut(),
                self.clock.now_unix(),
                receipts,
                &mut out,
            ) {
                Keep::Keep => {}
                Keep::Remove => {
                    self.sessions.remove(&k);
                }
                Keep::Move(resource) => self.move_session(&k, &resource, &mut out),
            }
            return out;
        }
        let state = match self.sessions.remove(&k) {
            Some(state) if state.accepts_from(&from) => state,
            Some(other) => {
                // Another resource on the same thread: not ours to disturb
                // (SSN-11), nor a step that would restart the timeout (ESN-10).
                self.sessions.insert(k, other);
                return out;
            }
            None => {
                if !is_error {
                    self.on_new_thread(stanza, &from, &thread, &mut out);
                }
                return out;
            }
        };
        let id = SessionId {
            peer: from.clone(),
            thread: thread.clone(),
        };
        if is_error {
            let error = stanza.get_child("error", ns::JABBER_CLIENT);
            out.event(Event::NegotiationFailed {
                session: id,
                error: Error::PeerError {
                    condition: error.and_then(ssn::ErrorCondition::from_error_element),
                    fields: error.map(ssn::error_fields).unwrap_or_default(),
                },
            });
            self.started.remove(&k);
            return out;
        }
        match state {
            State::Offered(alice) => self.on_response(*alice, stanza, &from, &mut out),
            State::Answered(bob) => self.on_completion(*bob, stanza, &mut out),
            State::Completed(alice) => self.on_final(*alice, stanza, &mut out),
            pending @ (State::PendingOffer(_) | State::PendingPlain(_) | State::Established(_)) => {
                self.sessions.insert(k.clone(), pending); // no step taken: the timeout keeps running
            }
        }
        if !self.sessions.contains_key(&k) {
            // The step ended the negotiation: it no longer counts (issue 11).
            self.started.remove(&k);
        }
        out
    }

    /// An encrypted stanza on a thread we hold no session for: we restarted,
    /// or the session ended. Nothing can be decrypted; the sender is told
    /// with `item-not-found` on the thread (issue 10, CONFORMANCE.md
    /// "Sessions that are gone") unless policy keeps us silent (SSN-09).
    fn on_unknown_session(&mut self, from: &Jid, thread: &str, out: &mut Output) {
        if self.ended.contains(&key(from, thread)) {
            return; // Crossed our termination, which the peer gets.
        }
        let answered =
            self.config.answer_unknown_sessions && self.may_answer_automatically(from.as_str());
        if answered {
            out.send(ssn::session_gone_reply(
                from.as_str(),
                self.config.own_jid.as_deref(),
                thread,
            ));
        }
        out.event(Event::UnknownSessionStanza {
            session: SessionId {
                peer: from.clone(),
                thread: thread.to_owned(),
            },
            answered,
        });
    }

    /// Our connection to the server restarted as a new stream (not a
    /// XEP-0198 resumption): every session ends (issue 10). Established
    /// sessions get the encrypted terminate form (delivered if our full JID
    /// is unchanged; otherwise the peer learns from `item-not-found` when it
    /// next writes) and end at once with [`TerminationReason::ConnectionReset`];
    /// negotiations in progress fail. The application starts new sessions.
    pub fn connection_reset(&mut self) -> Output {
        let mut out = Output::default();
        let now = self.clock.now_unix();
        let mut keys: Vec<Key> = self.sessions.keys().cloned().collect();
        keys.sort();
        for k in keys {
            let Some(state) = self.sessions.remove(&k) else {
                continue;
            };
            self.started.remove(&k);
            match state {
                State::Established(mut s) => {
                    if !s.awaiting_terminate_ack()
                        && let Ok(stanzas) = s.terminate_stanzas(self.rng.as_mut(), now)
                    {
                        out.stanzas.extend(stanzas);
                    }
                    if self.unannounced.remove(&k).is_none() {
                        out.event(Event::Terminated {
                            session: s.id().clone(),
                            reason: TerminationReason::ConnectionReset,
                        });
                    }
                }
                other => out.event(Event::NegotiationFailed {
                    session: SessionId {
                        peer: other.peer().clone(),
                        thread: k.1.clone(),
                    },
                    error: Error::ConnectionReset,
                }),
            }
        }
        out
    }
}

/// XEP-0085 chat states.
const CHAT_STATES_NS: &str = "http://jabber.org/protocol/chatstates";

/// Whether the step met a `hash` identification naming a key we do not hold.
fn asked_unknown_fingerprint(ctx: &Context<'_>) -> bool {
    ctx.alerts
        .iter()
        .any(|a| matches!(a, SecurityAlert::UnknownKeyFingerprint { .. }))
}

/// Reports what a negotiation step met: trust-store failures and key alerts
/// (ESN-49..52), the latter before the step's outcome, at once.
fn report(ctx: &mut Context<'_>, out: &mut Output, peer: &Jid, thread: &str) {
    for error in ctx.trust_failures.drain(..) {
        out.event(Event::TrustStoreFailure { error });
    }
    for alert in ctx.alerts.drain(..) {
        out.event(Event::SecurityAlert {
            session: SessionId {
                peer: peer.clone(),
                thread: thread.to_owned(),
            },
            alert,
        });
    }
}

/// Issue 11: the negotiation `from` started on `thread` stopped at `limit`.
fn limit_reached(out: &mut Output, from: &Jid, thread: &str, limit: LimitKind) {
    out.event(Event::NegotiationFailed {
        session: SessionId {
            peer: from.clone(),
            thread: thread.to_owned(),
        },
        error: Error::LimitReached(limit),
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    fn stanza(xml: &str) -> Element {
        esession_wire::xml::parse_document(xml).unwrap()
    }

    #[test]
    fn a_negotiation_wrapper_holds_exactly_one_form() {
        let one = stanza(
            "<message xmlns='jabber:client'><feature xmlns='http://jabber.org/protocol/feature-neg'>\
             <x xmlns='jabber:x:data' type='form'/></feature></message>",
        );
        let wrapper = negotiation_wrapper(&one).unwrap();
        assert!(parse_wrapper(wrapper, &Profile::standard()).is_some());
        // Two forms: which one the peer meant is unknowable, so neither is read.
        let two = stanza(
            "<message xmlns='jabber:client'><feature xmlns='http://jabber.org/protocol/feature-neg'>\
             <x xmlns='jabber:x:data' type='form'/><x xmlns='jabber:x:data' type='form'/>\
             </feature></message>",
        );
        let wrapper = negotiation_wrapper(&two).unwrap();
        assert!(parse_wrapper(wrapper, &Profile::standard()).is_none());
        // Message 4's <init/> is a wrapper too (ESN-39); a plain message has none.
        let init = stanza(
            "<message xmlns='jabber:client'><init xmlns='http://www.xmpp.org/extensions/xep-0116.html#ns-init'/></message>",
        );
        assert!(negotiation_wrapper(&init).is_some());
        assert!(
            negotiation_wrapper(&stanza(
                "<message xmlns='jabber:client'><body>hi</body></message>"
            ))
            .is_none()
        );
    }

    #[test]
    fn sessions_are_keyed_by_bare_jid_and_thread() {
        let key = |jid: &str, thread: &str| Jid::new(jid).ok().map(|j| key(&j, thread));
        // SSN-11: another resource of the same contact meets the same key;
        // the state then checks the resource itself.
        assert_eq!(
            key("bob@example.com/phone", "t"),
            key("bob@example.com/laptop", "t")
        );
        assert_ne!(
            key("bob@example.com/phone", "t"),
            key("bob@example.com/phone", "u")
        );
        assert!(key("bob@example.com/phone", "t").is_some());
        // Typed and normalized (RFC 7622): one contact however it is spelled.
        assert_eq!(
            key("Bob@Example.COM/phone", "t"),
            key("bob@example.com/phone", "t")
        );
        // Not a JID: no key, so nothing is ever kept for it.
        assert_eq!(key("bob@@example.com", "t"), None);
        assert_eq!(key("", "t"), None);
    }
}
