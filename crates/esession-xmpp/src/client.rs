//! [`EsessionClient`]: drives the sans-IO core from a tokio-xmpp connection.
//!
//! The connection is a tokio-xmpp [`StanzaStream`] used directly, not a
//! `tokio_xmpp::Client`: in tokio-xmpp 6.0.0 the `Client`'s background worker
//! reads the stream through `StanzaReceiver`, whose `poll_next` returns
//! `Pending` without registering a waker when the stream's mutex is held by a
//! concurrent send; the worker then never wakes again and the client silently
//! stops receiving (seen in about 1 of 20 runs of the Prosody tests: a
//! disco#info result or a message never arrived). A `StanzaStream` owned by one
//! task has no mutex and no worker between us and its channel.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use esession::{Event, SessionId, SessionManager, StanzaKind};
use esession_wire::minidom::Element;
use esession_wire::ns;
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_xmpp::Stanza;
use tokio_xmpp::jid::Jid;
use tokio_xmpp::parsers::disco::{DiscoInfoQuery, DiscoInfoResult};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::Message;
use tokio_xmpp::parsers::ping::Ping;
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use tokio_xmpp::stanzastream::{Event as StreamItem, StanzaStream, StreamEvent};

use crate::connect::{LoginError, LoginInfo, XmppConnection};
use crate::{disco, roster};

/// Something the application should know about.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientEvent {
    /// Logged in, with the server-bound full JID.
    Online {
        /// Our full JID.
        jid: String,
    },
    /// An ESession event (established, message received, alerts, terminated, ...).
    Session(Event),
    /// A message outside any ESession: NOT end-to-end encrypted.
    PlainMessage {
        /// Sender.
        from: String,
        /// Its body.
        body: String,
    },
    /// The connection was re-established as a new stream (the server
    /// restarted, or XEP-0198 resumption was not possible), with this full
    /// JID. Every ESession of the old stream was ended
    /// ([`esession::TerminationReason::ConnectionReset`] events precede this
    /// one); start new ones. Presence was announced again.
    Reconnected {
        /// Our full JID now (the same one when the server kept our resource).
        jid: String,
    },
    /// The connection dropped and came back as the same stream (XEP-0198
    /// resumption): every ESession continues, and the stanzas the server had
    /// not acknowledged were sent again.
    Resumed,
    /// A contact's resource came online (from its presence).
    ContactOnline {
        /// The full JID.
        jid: String,
    },
    /// The connection dropped. tokio-xmpp reconnects by itself unless `fatal`.
    /// A login the server refuses (wrong JID or password, disabled account)
    /// is fatal and carries the [`LoginError`]; after a fatal event
    /// [`EsessionClient::next_event`] returns `None` and sending fails with
    /// [`ClientError::LoginFailed`].
    #[non_exhaustive]
    Disconnected {
        /// Why, for the user.
        reason: String,
        /// No point in retrying.
        fatal: bool,
        /// Set when logging in failed for good.
        login_error: Option<LoginError>,
    },
}

/// Errors of the client API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The ESession core refused the request.
    #[error(transparent)]
    Session(#[from] esession::Error),
    /// Sending failed: the connection is down.
    #[error("cannot send: {0}")]
    Send(String),
    /// A stanza built by the core could not be converted for tokio-xmpp (a bug).
    #[error("internal stanza conversion failed: {0}")]
    Conversion(String),
    /// The contact's client does not advertise ESessions.
    #[error("{0} does not support encrypted sessions (XEP-0116)")]
    NoEsessionSupport(String),
    /// A disco#info query failed or timed out.
    #[error("service discovery of {0} failed")]
    Disco(String),
    /// Not connected, and never will be: the server refused the login.
    #[error("not connected: {0}")]
    LoginFailed(LoginError),
}

/// An XMPP client with ESessions: feed it nothing, just poll [`Self::next_event`].
///
/// [`Self::next_event`] is cancel-safe: it may be dropped at any await point
/// (e.g. as a losing branch of `tokio::select!`) without losing an event or
/// leaving a stanza the core produced unsent. Handling a received stanza is
/// synchronous; the events it yields are queued and the stanzas it yields go
/// to an outbox that the next call (or any sending method) flushes first.
pub struct EsessionClient {
    xmpp: StanzaStream,
    /// Where the connection reports a login refused for good (at most once).
    login_errors: mpsc::Receiver<LoginError>,
    /// Set once a login was refused for good: nothing is sent any more.
    login_failed: Option<LoginError>,
    /// How the latest login went (mechanism, channel binding, TLS).
    login_info: watch::Receiver<Option<LoginInfo>>,
    manager: SessionManager,
    own_jid: Option<String>,
    queue: VecDeque<ClientEvent>,
    /// Stanzas produced but not yet handed to tokio-xmpp, in order.
    outbox: VecDeque<Stanza>,
    /// For the ids of our IQ requests.
    iq_counter: u64,
    tick: tokio::time::Interval,
    online: HashMap<String, Vec<String>>,
    /// Where the stream stands after a drop (issue 10).
    link: Link,
}

/// Contacts whose online resources are tracked at most (issue 11).
const MAX_ONLINE_CONTACTS: usize = 10_000;
/// Online resources tracked per contact at most.
const MAX_RESOURCES: usize = 64;

/// The stream after our connection dropped: a stanza that arrives before the
/// stream is resumed can only come from a new stream (tokio-xmpp yields the
/// stanzas a server sends between resource binding and `<enabled/>` before
/// its `Reset` event), and must not meet a session of the old one: stanzas
/// of the old stream may have been lost, so its counters are out of step.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Link {
    Up,
    /// Dropped; resumed or reset not yet known.
    Suspended,
    /// Dropped, and a stanza of the new stream came first: sessions reset.
    SessionsReset,
}

impl core::fmt::Debug for EsessionClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EsessionClient")
            .field("own_jid", &self.own_jid)
            .finish_non_exhaustive()
    }
}

impl EsessionClient {
    /// Wraps a connection (as made by [`crate::connect::client`]; it
    /// connects, and reconnects, in the background) and a session manager.
    pub fn new(connection: XmppConnection, manager: SessionManager) -> Self {
        let (xmpp, login_errors, login_info) = connection.into_parts();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            xmpp,
            login_errors,
            login_failed: None,
            login_info,
            manager,
            own_jid: None,
            queue: VecDeque::new(),
            outbox: VecDeque::new(),
            iq_counter: 0,
            tick,
            online: HashMap::new(),
            link: Link::Up,
        }
    }

    /// The session manager (for session info, trust store access).
    pub fn manager(&self) -> &SessionManager {
        &self.manager
    }

    /// The session manager, mutably.
    pub fn manager_mut(&mut self) -> &mut SessionManager {
        &mut self.manager
    }

    /// Our full JID once online.
    pub fn own_jid(&self) -> Option<&str> {
        self.own_jid.as_deref()
    }

    /// Online full JIDs of `contact` (bare JID) seen in presence.
    pub fn online_resources(&self, contact: &str) -> &[String] {
        self.online.get(contact).map_or(&[], Vec::as_slice)
    }

    /// How the current connection logged in (SASL mechanism, channel
    /// binding, TLS version, mechanisms that failed first); `None` before
    /// the first login. Set when [`ClientEvent::Online`] is reported.
    pub fn login_info(&self) -> Option<LoginInfo> {
        self.login_info.borrow().clone()
    }

    /// Why the server refused the login for good, if it did.
    pub fn login_error(&self) -> Option<&LoginError> {
        self.login_failed.as_ref()
    }

    /// The next event. Drives the connection, answers service discovery and
    /// runs the core's timers; `None` once the connection is closed for good
    /// (after a fatal [`ClientEvent::Disconnected`] if the login was refused).
    /// Cancel-safe (see [`EsessionClient`]).
    pub async fn next_event(&mut self) -> Option<ClientEvent> {
        loop {
            self.flush().await;
            if let Some(event) = self.queue.pop_front() {
                return Some(event);
            }
            if self.login_failed.is_some() {
                return None;
            }
            // All branches are cancel-safe (channel receives and a timer
            // tick) and what follows them runs without awaiting.
            tokio::select! {
                item = self.xmpp.next() => match item {
                    Some(item) => self.on_stream_item(item),
                    None => return None,
                },
                Some(error) = self.login_errors.recv() => self.on_login_failed(error),
                // Every second: negotiation timeouts, expired key sets
                // (XEP-0200's 60 s) and due rekeys (idle time, block count).
                // `SessionManager::next_deadline` is never more precise than
                // a second, so a fixed tick misses nothing.
                _ = self.tick.tick() => {
                    let out = self.manager.poll_timers();
                    self.dispatch(out);
                }
            }
        }
    }

    /// The next item of the stanza stream, or `None` when it ended or the
    /// login was refused for good (then `login_failed` is set and the
    /// fatal event queued). Cancel-safe: both are channel receives.
    async fn next_item(&mut self) -> Option<StreamItem> {
        if self.login_failed.is_some() {
            return None;
        }
        tokio::select! {
            item = self.xmpp.next() => item,
            Some(error) = self.login_errors.recv() => {
                self.on_login_failed(error);
                None
            }
        }
    }

    /// The server refused our login and the connection will not retry:
    /// report it once, and drop what was waiting to be sent (it never will be).
    fn on_login_failed(&mut self, error: LoginError) {
        self.outbox.clear();
        self.queue.push_back(ClientEvent::Disconnected {
            reason: error.to_string(),
            fatal: true,
            login_error: Some(error.clone()),
        });
        self.login_failed = Some(error);
    }

    /// Fails when nothing can be sent any more because the login was refused.
    fn ensure_usable(&self) -> Result<(), ClientError> {
        match &self.login_failed {
            Some(error) => Err(ClientError::LoginFailed(error.clone())),
            None => Ok(()),
        }
    }

    /// Hands every stanza in the outbox to tokio-xmpp's transmit queue, in
    /// order, each exactly once even if this is cancelled: a stanza leaves the
    /// outbox only after the stream accepted it, and a cancelled
    /// `StanzaStream::send` (waiting for room in the queue) enqueues nothing.
    /// (A lost or repeated encrypted stanza would break the session's counters.)
    async fn flush(&mut self) {
        if self.login_failed.is_some() {
            // The stream will never connect: sending would block once its
            // queue is full.
            self.outbox.clear();
            return;
        }
        while let Some(front) = self.outbox.front() {
            let stanza = match front {
                Stanza::Message(m) => Stanza::Message(m.clone()),
                Stanza::Iq(iq) => Stanza::Iq(iq.clone()),
                Stanza::Presence(p) => Stanza::Presence(p.clone()),
            };
            // The token only tracks transmission; delivery problems come back as stanzas.
            let _token = self.xmpp.send(Box::new(stanza)).await;
            self.outbox.pop_front();
        }
    }

    fn on_stream_item(&mut self, item: StreamItem) {
        match item {
            StreamItem::Stream(StreamEvent::Reset { bound_jid, .. }) => {
                // A second stream (not a resumption): sessions of the old one
                // cannot continue reliably (issue 10); end them, loudly.
                let reset = self.own_jid.is_some();
                if reset && self.link != Link::SessionsReset {
                    self.reset_sessions();
                }
                self.link = Link::Up;
                self.own_jid = Some(bound_jid.to_string());
                // The roster first (RFC 6121 §2.2): who is subscribed to our
                // presence (SSN-09); the server pushes every change after.
                self.enqueue(roster::request());
                // Initial presence with our capabilities (XEP-0115).
                let mut presence = Presence::new(PresenceType::None);
                if let Some(caps) = disco::our_caps() {
                    presence.add_payload(caps);
                }
                self.outbox.push_back(presence.into());
                let jid = bound_jid.to_string();
                self.queue.push_back(if reset {
                    ClientEvent::Reconnected { jid }
                } else {
                    ClientEvent::Online { jid }
                });
            }
            // The connection dropped; tokio-xmpp reconnects (and resumes with
            // XEP-0198 where the server offers it).
            StreamItem::Stream(StreamEvent::Suspended) => {
                self.link = Link::Suspended;
                self.queue.push_back(ClientEvent::Disconnected {
                    reason: "connection lost; reconnecting".to_owned(),
                    fatal: false,
                    login_error: None,
                });
            }
            StreamItem::Stream(StreamEvent::Resumed) => {
                self.link = Link::Up;
                self.queue.push_back(ClientEvent::Resumed);
            }
            StreamItem::Stanza(stanza) => {
                if crate::nesting::too_deep(&stanza, crate::nesting::MAX_STANZA_DEPTH) {
                    // Issue 11: no real payload nests this deep; taken apart
                    // without recursion, it reaches neither core nor application.
                    crate::nesting::dispose(stanza);
                    return;
                }
                if self.link == Link::Suspended {
                    self.reset_sessions();
                    self.link = Link::SessionsReset;
                }
                match stanza {
                    Stanza::Message(message) => self.on_message(message),
                    Stanza::Iq(iq) => self.on_iq(iq),
                    Stanza::Presence(presence) => self.on_presence(presence),
                }
            }
        }
    }

    /// Ends every session of the old stream (encrypted terminates, and
    /// `ConnectionReset` events) and forgets who was online.
    fn reset_sessions(&mut self) {
        let out = self.manager.connection_reset();
        self.dispatch(out);
        self.online.clear();
    }

    fn on_message(&mut self, message: Message) {
        let body = message.bodies.values().next().cloned();
        let from = message
            .from
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let element = Element::from(message);
        let out = self.manager.handle_stanza(&element);
        let quiet = out.stanzas.is_empty() && out.events.is_empty();
        let ours = element.children().any(|c| {
            c.is("c", ns::STANZA_ENCRYPTION)
                || c.is("feature", ns::FEATURE_NEG)
                || c.is("init", ns::ESESSION_INIT)
        });
        self.dispatch(out);
        if let (true, false, Some(body)) = (quiet, ours, body) {
            self.queue
                .push_back(ClientEvent::PlainMessage { from, body });
        }
    }

    /// Routes a received `<iq/>` (ENC-01..03, AMB-26, ESN-44):
    ///
    /// - one carrying an XEP-0200 `<c/>` (or whose `<error/>` does) goes to
    ///   the core, which decrypts it into [`Event::StanzaReceived`] (answered
    ///   here when it is a ping or disco#info request, see [`Self::dispatch`])
    ///   or refuses it;
    /// - a clear one from a full JID whose session agreed `iq` belongs to that
    ///   session and should have been encrypted: it also goes to the core, its
    ///   content is not acted on, a request gets an encrypted `not-acceptable`
    ///   (RFC 6120 §8.2.3 wants an answer; ESN-44 wants it encrypted), and the
    ///   application is told ([`Event::ClearStanzaDropped`], or
    ///   [`Event::DeliveryError`] for an error: servers bounce stanzas in clear);
    /// - the roster result and the server's roster pushes update who is
    ///   subscribed to our presence in the core (SSN-09);
    /// - any other clear one is ours: disco#info and ping are answered, other
    ///   requests refused with `service-unavailable`, in clear.
    fn on_iq(&mut self, iq: Iq) {
        let element = Element::from(iq);
        if has_encrypted_part(&element) {
            let out = self.manager.handle_stanza(&element);
            self.dispatch(out);
            return;
        }
        if let Some(update) = roster::update(&element, self.own_jid.as_deref()) {
            if update.full {
                self.manager.clear_presence_subscriptions();
            }
            for (jid, subscribed) in &update.items {
                self.manager.set_presence_subscription(jid, *subscribed);
            }
            if let Some(reply) = update.reply {
                self.enqueue(reply);
            }
            return;
        }
        let bound = element
            .attr("from")
            .and_then(|from| self.manager.unthreaded_session(from, StanzaKind::Iq));
        if let Some(session) = bound {
            let out = self.manager.handle_stanza(&element);
            self.dispatch(out);
            match element.attr("type") {
                Some("get" | "set") => {
                    if let Some(refusal) = iq_error_reply(&element, DefinedCondition::NotAcceptable)
                    {
                        self.send_in_session(&session, &refusal);
                    }
                    self.queue
                        .push_back(ClientEvent::Session(Event::ClearStanzaDropped { session }));
                }
                Some("error") => self
                    .queue
                    .push_back(ClientEvent::Session(Event::DeliveryError { session })),
                _ => self
                    .queue
                    .push_back(ClientEvent::Session(Event::ClearStanzaDropped { session })),
            }
            return;
        }
        let reply = builtin_answer(&element)
            .or_else(|| iq_error_reply(&element, DefinedCondition::ServiceUnavailable));
        if let Some(reply) = reply {
            self.enqueue(reply);
        }
    }

    /// A received `<presence/>`: our record of the contact's resources
    /// (broadcast presence, from its clear type, ENC-02), then the core, which
    /// decrypts encrypted (directed) presence into [`Event::StanzaReceived`]
    /// and ends the sessions bound to a full JID that went unavailable
    /// (SSN-16: [`esession::TerminationReason::PeerUnavailable`]).
    fn on_presence(&mut self, presence: Presence) {
        if let Some(Ok(from)) = presence.from.clone().map(Jid::try_into_full) {
            let bare = from.to_bare().to_string();
            let full = from.to_string();
            match presence.type_ {
                PresenceType::None => {
                    // Issue 11: bounded in contacts and in resources each;
                    // beyond that a resource is simply not listed as online.
                    let known = self.online.contains_key(&bare);
                    if known || self.online.len() < MAX_ONLINE_CONTACTS {
                        let resources = self.online.entry(bare).or_default();
                        if !resources.contains(&full) && resources.len() < MAX_RESOURCES {
                            resources.push(full.clone());
                            self.queue
                                .push_back(ClientEvent::ContactOnline { jid: full });
                        }
                    }
                }
                PresenceType::Unavailable => {
                    if let Some(resources) = self.online.get_mut(&bare) {
                        resources.retain(|r| r != &full);
                        if resources.is_empty() {
                            self.online.remove(&bare);
                        }
                    }
                }
                _ => {}
            }
        }
        let out = self.manager.handle_stanza(&Element::from(presence));
        self.dispatch(out);
    }

    /// Converts a stanza for tokio-xmpp and queues it in the outbox. A stanza
    /// the core built always converts; a failure is reported, never sent
    /// some other way.
    fn enqueue(&mut self, stanza: Element) {
        match Stanza::try_from(stanza) {
            Ok(stanza) => self.outbox.push_back(stanza),
            Err(e) => self.queue.push_back(ClientEvent::Disconnected {
                reason: ClientError::Conversion(e.to_string()).to_string(),
                fatal: false,
                login_error: None,
            }),
        }
    }

    /// Encrypts `stanza` in `session` and queues it; if the core refuses
    /// (the session just ended, say), nothing is sent, least of all in clear.
    fn send_in_session(&mut self, session: &SessionId, stanza: &Element) {
        if let Ok(out) = self.manager.send_stanza(session, stanza) {
            self.dispatch(out);
        }
    }

    /// Queues the core's stanzas in the outbox and its events for the
    /// application; does not await, so it cannot be interrupted half-way.
    /// A decrypted ping (XEP-0199) or disco#info (XEP-0030) request is
    /// answered here, encrypted in its session, and not passed on; every
    /// other [`Event::StanzaReceived`] is the application's.
    fn dispatch(&mut self, out: esession::Output) {
        for stanza in out.stanzas {
            self.enqueue(stanza);
        }
        for event in out.events {
            if let Event::StanzaReceived { session, stanza } = &event
                && let Some(reply) = builtin_answer(stanza)
            {
                let session = session.clone();
                self.send_in_session(&session, &reply);
                continue;
            }
            self.queue.push_back(ClientEvent::Session(event));
        }
    }

    /// Queues the core's output and sends its stanzas now.
    async fn dispatch_now(&mut self, out: esession::Output) {
        self.dispatch(out);
        self.flush().await;
    }

    /// Asks `jid` (a full JID) which features it supports (ESN-01). Waits up
    /// to 10 s for the answer; whatever else arrives meanwhile is handled as
    /// usual and its events are kept for [`Self::next_event`].
    pub async fn query_support(&mut self, jid: &str) -> Result<bool, ClientError> {
        Ok(self.probe_support(jid).await?.unwrap_or(false))
    }

    /// Like [`Self::query_support`], but `None` when `jid` answered with an
    /// error: usually that resource is offline (the server answers for it),
    /// which says nothing about its ESession support.
    async fn probe_support(&mut self, jid: &str) -> Result<Option<bool>, ClientError> {
        self.ensure_usable()?;
        let failed = || ClientError::Disco(jid.to_owned());
        let to = Jid::new(jid).map_err(|_| failed())?;
        self.iq_counter += 1;
        let id = format!("esession-disco-{}", self.iq_counter);
        self.outbox.push_back(
            Iq::from_get(id.clone(), DiscoInfoQuery { node: None })
                .with_to(to.clone())
                .into(),
        );
        let answer = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                self.flush().await;
                match self.next_item().await? {
                    StreamItem::Stanza(Stanza::Iq(Iq::Result {
                        id: answered,
                        from,
                        payload,
                        ..
                    })) if answered == id && from.as_ref() == Some(&to) => {
                        return Some(payload);
                    }
                    StreamItem::Stanza(Stanza::Iq(Iq::Error {
                        id: answered, from, ..
                    })) if answered == id && from.as_ref() == Some(&to) => return Some(None),
                    other => self.on_stream_item(other),
                }
            }
        })
        .await
        .map_err(|_| failed())?;
        self.ensure_usable()?;
        let answer = answer.ok_or_else(failed)?;
        match answer {
            Some(payload) => {
                let info = DiscoInfoResult::try_from(payload).map_err(|_| failed())?;
                Ok(Some(disco::supports_esessions(&info)))
            }
            // An error (service-unavailable for an offline resource, say)
            // or an empty result: unknown.
            None => Ok(None),
        }
    }

    /// Starts an ESession with `contact` (bare or full JID). With a full JID
    /// (or a bare JID whose online resource we know), the contact's disco#info
    /// is checked first and a contact without ESessions is refused cleanly.
    pub async fn start_session(&mut self, contact: &str) -> Result<SessionId, ClientError> {
        self.ensure_usable()?;
        let target = if contact.contains('/') {
            Some(contact.to_owned())
        } else {
            self.online_resources(contact).first().cloned()
        };
        // A contact we already share a session carrying iq with supports
        // ESessions, and a clear disco#info to it would break ESN-44.
        let bound = target.as_deref().is_some_and(|full| {
            self.manager
                .unthreaded_session(full, StanzaKind::Iq)
                .is_some()
        });
        // A clear "no" refuses; an error (the resource is offline, say) does
        // not: the offer is then kept for the contact by its server.
        if let Some(full) = &target
            && !bound
            && self.probe_support(full).await? == Some(false)
        {
            return Err(ClientError::NoEsessionSupport(full.clone()));
        }
        let peer = target.unwrap_or_else(|| contact.to_owned());
        let (id, out) = self.manager.start_session(&peer)?;
        self.dispatch_now(out).await;
        Ok(id)
    }

    /// Sends an encrypted chat message.
    pub async fn send_text(&mut self, session: &SessionId, text: &str) -> Result<(), ClientError> {
        self.ensure_usable()?;
        let out = self.manager.send_text(session, text)?;
        self.dispatch_now(out).await;
        Ok(())
    }

    /// Encrypts and sends a chat message asking for an encrypted delivery
    /// receipt; returns the id that [`Event::MessageDelivered`] will carry
    /// (see [`SessionManager::send_text_with_receipt`]).
    pub async fn send_text_with_receipt(
        &mut self,
        session: &SessionId,
        text: &str,
    ) -> Result<String, ClientError> {
        self.ensure_usable()?;
        let (id, out) = self.manager.send_text_with_receipt(session, text)?;
        self.dispatch_now(out).await;
        Ok(id)
    }

    /// Sends `text` again under the id it first had, in a new session (see
    /// [`SessionManager::resend_text`]).
    pub async fn resend_text(
        &mut self,
        session: &SessionId,
        text: &str,
        id: &str,
    ) -> Result<(), ClientError> {
        self.ensure_usable()?;
        let out = self.manager.resend_text(session, text, id)?;
        self.dispatch_now(out).await;
        Ok(())
    }

    /// The user found the SAS did not match: revokes the verification of
    /// this contact's client and ends the session (see
    /// [`SessionManager::distrust`]).
    pub async fn distrust(&mut self, session: &SessionId) -> Result<(), ClientError> {
        self.ensure_usable()?;
        let out = self.manager.distrust(session)?;
        self.dispatch_now(out).await;
        Ok(())
    }

    /// Encrypts and sends an application `<message/>`.
    pub async fn send_message(
        &mut self,
        session: &SessionId,
        message: &Element,
    ) -> Result<(), ClientError> {
        self.ensure_usable()?;
        let out = self.manager.send_message(session, message)?;
        self.dispatch_now(out).await;
        Ok(())
    }

    /// Encrypts and sends a `<message/>`, a directed `<presence/>` or an
    /// `<iq/>` in `session` ([`SessionManager::send_stanza`]): presence and
    /// iq only if the session agreed their kind (`Config::stanzas`), and only
    /// to the session's peer. Refused with nothing sent otherwise; broadcast
    /// presence is never encrypted (ENC-01).
    ///
    /// **Answer every request.** An `<iq type='get'/>` or `type='set'`
    /// delivered in [`Event::StanzaReceived`] must be answered by the
    /// application (RFC 6120 §8.2.3), with a `result` or an `error` of the
    /// same `id`, through this method so that it stays encrypted (ESN-44);
    /// [`Self::refuse_iq`] sends the standard refusal. Pings (XEP-0199) and
    /// disco#info queries are answered by the client itself and never
    /// delivered; requests the core cannot decrypt are refused by the core.
    pub async fn send_stanza(
        &mut self,
        session: &SessionId,
        stanza: Element,
    ) -> Result<(), ClientError> {
        self.ensure_usable()?;
        let out = self.manager.send_stanza(session, &stanza)?;
        self.dispatch_now(out).await;
        Ok(())
    }

    /// Answers a decrypted `<iq type='get'/>` or `set` that the application
    /// does not handle with an encrypted `service-unavailable` error (RFC
    /// 6120 §8.3.3.19). Does nothing for other stanzas.
    pub async fn refuse_iq(
        &mut self,
        session: &SessionId,
        request: &Element,
    ) -> Result<(), ClientError> {
        match iq_error_reply(request, DefinedCondition::ServiceUnavailable) {
            Some(refusal) => self.send_stanza(session, refusal).await,
            None => Ok(()),
        }
    }

    /// Sends an encrypted XEP-0199 ping to the session's peer (the session
    /// must have agreed `iq`); returns the request's `id`. The answer arrives
    /// as an [`Event::StanzaReceived`] `<iq/>` of type `result` (or `error`)
    /// with that id, or as [`Event::DeliveryError`] if a server bounced it.
    pub async fn send_ping(&mut self, session: &SessionId) -> Result<String, ClientError> {
        let to = Jid::new(&session.peer)
            .map_err(|_| ClientError::Send(format!("invalid JID {}", session.peer)))?;
        self.iq_counter += 1;
        let id = format!("esession-ping-{}", self.iq_counter);
        let ping = Iq::from_get(id.clone(), Ping).with_to(to);
        self.send_stanza(session, Element::from(ping)).await?;
        Ok(id)
    }

    /// Sends a message in clear, outside any ESession (the caller must have warned the user).
    pub async fn send_plain(&mut self, to: &str, text: &str) -> Result<(), ClientError> {
        self.ensure_usable()?;
        let to = Jid::new(to).map_err(|_| ClientError::Send(format!("invalid JID {to}")))?;
        let message = Message::chat(Some(to)).with_body(Default::default(), text.to_owned());
        self.outbox.push_back(message.into());
        self.flush().await;
        Ok(())
    }

    /// Accepts an offer held back by policy.
    pub async fn accept_offer(&mut self, session: &SessionId) -> Result<(), ClientError> {
        self.ensure_usable()?;
        let out = self.manager.accept_offer(session)?;
        self.dispatch_now(out).await;
        Ok(())
    }

    /// Declines an offer held back by policy.
    pub async fn reject_offer(&mut self, session: &SessionId) -> Result<(), ClientError> {
        self.ensure_usable()?;
        let out = self.manager.reject_offer(session)?;
        self.dispatch_now(out).await;
        Ok(())
    }

    /// Ends a session (encrypted terminate; the session ends when acknowledged).
    pub async fn terminate(&mut self, session: &SessionId) -> Result<(), ClientError> {
        self.ensure_usable()?;
        let out = self.manager.terminate(session)?;
        self.dispatch_now(out).await;
        Ok(())
    }

    /// Rekeys the session now (XEP-0200 §Re-Key Exchange): sends a fresh DH
    /// value under the current keys. Fails with
    /// [`esession::Error::RekeyTooSoon`] before the agreed `rekey_freq`
    /// stanzas have passed since the last key exchange.
    pub async fn rekey(&mut self, session: &SessionId) -> Result<(), ClientError> {
        let out = self.manager.rekey(session)?;
        self.dispatch_now(out).await;
        Ok(())
    }

    /// Records that the user compared the SAS and it matched.
    pub fn confirm_sas(&mut self, session: &SessionId) -> Result<(), ClientError> {
        Ok(self.manager.confirm_sas(session)?)
    }

    /// Ends every established ESession with the encrypted terminate form
    /// (XEP-0116 requires it before going offline, ESN-45), then sends
    /// unavailable presence and closes the stream.
    pub async fn disconnect(mut self) {
        if self.login_failed.is_some() {
            // Never connected; tokio-xmpp's `close` would wait for a
            // connection that will not come.
            return;
        }
        let out = self.manager.terminate_all();
        self.dispatch(out);
        self.outbox
            .push_back(Presence::new(PresenceType::Unavailable).into());
        self.flush().await;
        self.xmpp.close().await;
    }
}

/// Whether the stanza carries an XEP-0200 `<c/>`, at the top or inside its
/// `<error/>` (ENC-03): then it is the core's to open.
fn has_encrypted_part(stanza: &Element) -> bool {
    let is_c = |c: &Element| c.is("c", ns::STANZA_ENCRYPTION);
    stanza
        .children()
        .any(|c| is_c(c) || (c.is("error", ns::JABBER_CLIENT) && c.children().any(is_c)))
}

/// The `<iq/>` request `element`, if it is one: its id, sender and payload.
fn request(element: &Element) -> Option<(String, Option<Jid>, Option<&Element>)> {
    if !element.is("iq", ns::JABBER_CLIENT) || !matches!(element.attr("type"), Some("get" | "set"))
    {
        return None;
    }
    let id = element.attr("id")?.to_owned();
    let from = element.attr("from").and_then(|f| Jid::new(f).ok());
    Some((id, from, element.children().next()))
}

/// Our answer to the requests every client answers itself: disco#info
/// (XEP-0030, with our features) and ping (XEP-0199).
fn builtin_answer(element: &Element) -> Option<Element> {
    let (id, from, payload) = request(element)?;
    let payload = payload.filter(|_| element.attr("type") == Some("get"))?;
    let reply = if payload.is("query", "http://jabber.org/protocol/disco#info") {
        let node = payload.attr("node").map(str::to_owned);
        Iq::from_result(id, Some(disco::our_disco_info(node)))
    } else if payload.is("ping", "urn:xmpp:ping") {
        Iq::Result {
            from: None,
            to: None,
            id,
            payload: None,
        }
    } else {
        return None;
    };
    Some(reply.with_to_opt(from).into())
}

/// An `error` answer with `condition` to the request `element` (without its
/// payload); `None` if it is not a request.
fn iq_error_reply(element: &Element, condition: DefinedCondition) -> Option<Element> {
    let (id, from, _) = request(element)?;
    let error_type = match condition {
        DefinedCondition::NotAcceptable => ErrorType::Modify,
        _ => ErrorType::Cancel,
    };
    let error = StanzaError {
        type_: error_type,
        by: None,
        defined_condition: condition,
        texts: Default::default(),
        other: None,
    };
    Some(Iq::from_error(id, error).with_to_opt(from).into())
}

trait WithTo {
    fn with_to_opt(self, to: Option<Jid>) -> Self;
}

impl WithTo for Iq {
    fn with_to_opt(mut self, to: Option<Jid>) -> Self {
        match &mut self {
            Iq::Get { to: t, .. }
            | Iq::Set { to: t, .. }
            | Iq::Result { to: t, .. }
            | Iq::Error { to: t, .. } => *t = to,
        }
        self
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "test code"
    )]

    use super::*;

    fn parse(xml: &str) -> Element {
        xml.parse().unwrap()
    }

    const C: &str = "<c xmlns='http://www.xmpp.org/extensions/xep-0200.html#ns'>\
                     <data>AAAA</data><mac>BBBB</mac></c>";

    #[test]
    fn a_c_at_the_top_or_inside_error_is_the_cores() {
        let top = parse(&format!(
            "<iq xmlns='jabber:client' type='get' id='1'>{C}</iq>"
        ));
        let inner = parse(&format!(
            "<iq xmlns='jabber:client' type='error' id='1'><error type='cancel'>\
             <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>{C}</error></iq>"
        ));
        let clear = parse(
            "<iq xmlns='jabber:client' type='get' id='1'>\
             <c xmlns='http://jabber.org/protocol/caps'/></iq>",
        );
        assert!(has_encrypted_part(&top));
        assert!(has_encrypted_part(&inner));
        assert!(!has_encrypted_part(&clear), "entity caps is not XEP-0200");
    }

    #[test]
    fn ping_and_disco_info_requests_get_our_answer() {
        let ping = parse(
            "<iq xmlns='jabber:client' from='bob@example.com/phone' type='get' id='p1'>\
             <ping xmlns='urn:xmpp:ping'/></iq>",
        );
        let pong = builtin_answer(&ping).unwrap();
        assert_eq!(
            (pong.attr("type"), pong.attr("id"), pong.attr("to")),
            (Some("result"), Some("p1"), Some("bob@example.com/phone"))
        );
        assert_eq!(pong.children().count(), 0);
        let disco = parse(
            "<iq xmlns='jabber:client' from='bob@example.com/phone' type='get' id='d1'>\
             <query xmlns='http://jabber.org/protocol/disco#info' node='n#v'/></iq>",
        );
        let info = builtin_answer(&disco).unwrap();
        let query = info
            .get_child("query", "http://jabber.org/protocol/disco#info")
            .unwrap();
        assert_eq!(query.attr("node"), Some("n#v"));
        let features: Vec<&str> = query.children().filter_map(|f| f.attr("var")).collect();
        assert!(features.contains(&ns::ESESSION) && features.contains(&"urn:xmpp:ping"));
        // Not ours: other requests, a ping as `set`, answers.
        for other in [
            "<iq xmlns='jabber:client' type='get' id='v'><query xmlns='jabber:iq:version'/></iq>",
            "<iq xmlns='jabber:client' type='set' id='s'><ping xmlns='urn:xmpp:ping'/></iq>",
            "<iq xmlns='jabber:client' type='result' id='r'><ping xmlns='urn:xmpp:ping'/></iq>",
            "<presence xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></presence>",
        ] {
            assert_eq!(builtin_answer(&parse(other)), None, "{other}");
        }
    }

    #[test]
    fn a_refusal_answers_requests_only_and_leaves_their_payload_out() {
        let get = parse(
            "<iq xmlns='jabber:client' from='bob@example.com/phone' type='set' id='s1'>\
             <secret xmlns='urn:example'>do not echo</secret></iq>",
        );
        let refusal = iq_error_reply(&get, DefinedCondition::NotAcceptable).unwrap();
        assert_eq!(
            (refusal.attr("type"), refusal.attr("id"), refusal.attr("to")),
            (Some("error"), Some("s1"), Some("bob@example.com/phone"))
        );
        let error = refusal.get_child("error", ns::JABBER_CLIENT).unwrap();
        assert_eq!(error.attr("type"), Some("modify"));
        assert!(error.has_child("not-acceptable", ns::XMPP_STANZAS));
        assert_eq!(error.children().count(), 1, "no empty <text/>: {error:?}");
        assert!(!String::from(&refusal).contains("do not echo"));
        let unavailable = iq_error_reply(&get, DefinedCondition::ServiceUnavailable).unwrap();
        let error = unavailable.get_child("error", ns::JABBER_CLIENT).unwrap();
        assert_eq!(error.attr("type"), Some("cancel"));
        let result = parse("<iq xmlns='jabber:client' type='result' id='r'/>");
        assert_eq!(
            iq_error_reply(&result, DefinedCondition::NotAcceptable),
            None
        );
    }

    #[test]
    fn encrypted_presence_and_iq_convert_for_tokio_xmpp_with_their_c() {
        // The shapes the core seals (ENC-01..03): <c/> alone, or beside a
        // clear <error/> holding a second <c/>.
        for xml in [
            format!("<presence xmlns='jabber:client' to='b@example.com/r'>{C}</presence>"),
            format!(
                "<presence xmlns='jabber:client' to='b@example.com/r' type='unavailable'>{C}</presence>"
            ),
            format!("<iq xmlns='jabber:client' to='b@example.com/r' type='get' id='1'>{C}</iq>"),
            format!("<iq xmlns='jabber:client' to='b@example.com/r' type='result' id='1'>{C}</iq>"),
            format!(
                "<iq xmlns='jabber:client' to='b@example.com/r' type='error' id='1'>{C}\
                 <error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
                 {C}</error></iq>"
            ),
        ] {
            let element = parse(&xml);
            let stanza =
                Stanza::try_from(element.clone()).unwrap_or_else(|e| panic!("{xml}: {e:?}"));
            let back = match stanza {
                Stanza::Iq(iq) => Element::from(iq),
                Stanza::Presence(p) => Element::from(p),
                Stanza::Message(m) => Element::from(m),
            };
            assert_eq!(back.name(), element.name());
            assert_eq!(back.attr("type"), element.attr("type"));
            let count = |e: &Element| {
                e.children()
                    .flat_map(|c| std::iter::once(c).chain(c.children()))
                    .filter(|c| c.is("c", ns::STANZA_ENCRYPTION))
                    .count()
            };
            assert_eq!(count(&back), count(&element), "{xml} -> {back:?}");
            assert!(has_encrypted_part(&back));
        }
    }
}
