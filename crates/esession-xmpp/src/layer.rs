//! [`Esessions`]: the XMPP side of ESessions without the connection, for an
//! application that already has its tokio-xmpp stream ("bring your own
//! stream", issue 12). It routes received stanzas to the core, keeps the
//! roster's subscriptions and the contacts' online resources the core needs,
//! answers what a client must, runs the core's timers, and queues the stanzas
//! to send and the events for the application; it performs no I/O.
//! [`crate::EsessionClient`] is this layer driven by a connection of ours.
//!
//! An existing tokio-xmpp application adds ESessions in 15 lines (here with
//! a `tokio_xmpp::Client`; a `StanzaStream` works the same way through
//! [`Esessions::handle_stream_event`]): it hands every event to the layer,
//! ticks its timers, sends what it queued and reads its events.
//!
//! ```no_run
//! # async fn run(mut client: tokio_xmpp::Client, manager: esession::SessionManager)
//! #     -> Result<(), esession_xmpp::ClientError> {
//! use esession_xmpp::{ClientEvent, Esessions};
//! use futures::StreamExt;
//! let mut esessions = Esessions::embedded(manager);
//! let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
//! loop {
//!     tokio::select! {
//!         Some(event) = client.next() => if let Some(_stanza) = esessions.handle_client_event(event) { /* the application's */ },
//!         _ = tick.tick() => esessions.poll_timers(),
//!     }
//!     while let Some(event) = esessions.next_event() {
//!         if let ClientEvent::Online { .. } = event { esessions.start_session("juliet@example.com")?; }
//!         if let ClientEvent::Session(esession::Event::Established { session, .. }) = event { esessions.send_text(&session, "Hi, in private.")?; }
//!     }
//!     for stanza in esessions.take_outgoing() { client.send_stanza(stanza).await.ok(); }
//! }
//! # }
//! ```
//!
//! In [`Mode::Embedded`] every stanza that is not ESession traffic is handed
//! back, presence and roster pushes included (after the layer read them), and
//! the application answers disco#info itself, listing [`crate::disco::FEATURES`].

use std::collections::{HashMap, VecDeque};

use esession::{Event, SessionId, SessionManager, StanzaKind};
use esession_wire::minidom::Element;
use esession_wire::ns;
use tokio_xmpp::Stanza;
use tokio_xmpp::jid::Jid;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::Message;
use tokio_xmpp::parsers::ping::Ping;
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use tokio_xmpp::stanzastream::{Event as StreamItem, StreamEvent};

use crate::connect::LoginError;
use crate::{disco, roster};
use esession_wire::pubkey::PublishedKey;

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
    /// Issue 14: the server refused to leave `contact` out of its archive.
    /// Their off-the-record sessions were ended (`sessions_ended`), and no
    /// session is offered or accepted off the record on this connection.
    OffTheRecordFailed {
        /// The contact's bare JID.
        contact: String,
        /// What the server answered, for the user.
        reason: String,
        /// The sessions being terminated.
        sessions_ended: Vec<SessionId>,
    },
    /// Issue 15: `from` (a bare JID) asks to see our presence (RFC 6121
    /// §3.1.2); [`crate::EsessionClient::approve_subscription`] approves.
    SubscriptionRequest {
        /// Who asks.
        from: String,
    },
    /// Issue 14: the server refused to put `contact`'s archive preference
    /// back after their off-the-record sessions: it is still `never` (their
    /// messages are not archived) until the user changes it.
    ArchivePreferenceNotRestored {
        /// The contact's bare JID.
        contact: String,
        /// What the server answered.
        reason: String,
    },
    /// The connection dropped. tokio-xmpp reconnects by itself unless `fatal`.
    /// A login the server refuses (wrong JID or password, disabled account)
    /// is fatal and carries the [`LoginError`]; after a fatal event
    /// [`crate::EsessionClient::next_event`] returns `None` and sending fails with
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
    /// Publishing or fetching XEP-0189 keys failed; the text says why.
    #[error("{0}")]
    Pep(String),
    /// A roster request failed; the text says why.
    #[error("{0}")]
    Roster(String),
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

/// Who else handles the stream's stanzas.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// We are the whole client ([`crate::EsessionClient`]): we send initial
    /// presence, answer disco#info and ping, refuse other requests, answer
    /// roster pushes, and report plain messages as
    /// [`ClientEvent::PlainMessage`].
    WholeClient,
    /// Inside an application that handles its own stanzas: everything that is
    /// not ESession traffic is handed back to it, unanswered.
    Embedded,
}

/// The XMPP layer of ESessions over a stream someone else drives (see the
/// module documentation).
pub struct Esessions {
    mode: Mode,
    manager: SessionManager,
    own_jid: Option<String>,
    queue: VecDeque<ClientEvent>,
    /// Stanzas produced but not yet handed to the stream, in order.
    outbox: VecDeque<Stanza>,
    /// For the ids of our IQ requests.
    iq_counter: u64,
    online: HashMap<String, Vec<String>>,
    /// Where the stream stands after a drop (issue 10).
    link: Link,
    /// Our device's XEP-0189 key, the answer to a `<pubkey/>` request (PKP-07).
    device_key: Option<PublishedKey>,
    /// The priority of our initial presence (RFC 6121 §4.7.2.3): a negative one
    /// keeps the server from handing us messages sent to our bare JID, among
    /// them those it kept while we were offline.
    priority: i8,
    /// What our server archives, and the sessions kept out of it (issue 14).
    archive: crate::archive::ArchiveControl,
    /// Hold the initial presence until released (see
    /// [`Self::hold_initial_presence`]), and the presence held.
    hold_presence: bool,
    held_presence: Option<Presence>,
}

impl core::fmt::Debug for Esessions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Esessions")
            .field("mode", &self.mode)
            .field("own_jid", &self.own_jid)
            .finish_non_exhaustive()
    }
}

impl Esessions {
    /// Sets our device's XEP-0189 key, sent to whoever asks this full JID for
    /// it (PKP-07); `None` refuses such requests.
    pub fn set_device_key(&mut self, key: Option<PublishedKey>) {
        self.device_key = key;
    }

    /// The priority of the initial presence sent at each login (default 0). A
    /// client that does not read what is sent to the bare JID (a one-off command)
    /// should use a negative one: the server then keeps offline messages, among
    /// them XEP-0187 sessions, for a client that can read them.
    pub fn set_presence_priority(&mut self, priority: i8) {
        self.priority = priority;
    }

    /// The layer of a whole client of ours ([`Mode::WholeClient`]).
    pub fn new(manager: SessionManager) -> Self {
        Self::with_mode(manager, Mode::WholeClient)
    }

    /// The layer inside an application that handles its own stanzas
    /// ([`Mode::Embedded`]).
    pub fn embedded(manager: SessionManager) -> Self {
        Self::with_mode(manager, Mode::Embedded)
    }

    fn with_mode(manager: SessionManager, mode: Mode) -> Self {
        Self {
            mode,
            manager,
            own_jid: None,
            device_key: None,
            priority: 0,
            queue: VecDeque::new(),
            outbox: VecDeque::new(),
            iq_counter: 0,
            online: HashMap::new(),
            link: Link::Up,
            archive: crate::archive::ArchiveControl::new(),
            hold_presence: false,
            held_presence: None,
        }
    }

    /// Keeps each login's initial presence back until
    /// [`Self::release_initial_presence`]: until then contacts do not see us
    /// and the server hands over nothing it kept for us, so that what must
    /// happen first (checking the server's archive) is done before any offer
    /// or offline message arrives.
    pub fn hold_initial_presence(&mut self, hold: bool) {
        self.hold_presence = hold;
    }

    /// Whether an initial presence is being held back.
    pub fn initial_presence_held(&self) -> bool {
        self.held_presence.is_some()
    }

    /// Sends the initial presence held back, if any.
    pub fn release_initial_presence(&mut self) {
        if let Some(presence) = self.held_presence.take() {
            self.outbox.push_back(presence.into());
        }
    }

    /// The next event, left in the queue.
    pub(crate) fn peek_event(&self) -> Option<&ClientEvent> {
        self.queue.front()
    }

    /// The session manager (for session info, trust store access).
    pub fn manager(&self) -> &SessionManager {
        &self.manager
    }

    /// The session manager, mutably. What its methods return must be handed
    /// to [`Self::dispatch_output`]; the methods of this type do that themselves.
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

    /// The next event for the application, if any.
    pub fn next_event(&mut self) -> Option<ClientEvent> {
        self.queue.pop_front()
    }

    /// Every stanza waiting to be sent, in order; send them all, in this
    /// order (a lost or reordered encrypted stanza breaks its session).
    pub fn take_outgoing(&mut self) -> Vec<Stanza> {
        self.outbox.drain(..).collect()
    }

    /// The first stanza waiting to be sent (it stays queued).
    pub(crate) fn peek_outgoing(&self) -> Option<&Stanza> {
        self.outbox.front()
    }

    /// Removes the first stanza waiting to be sent (after the stream took it).
    pub(crate) fn pop_outgoing(&mut self) {
        self.outbox.pop_front();
    }

    /// Forgets what was waiting to be sent (it never will be).
    pub(crate) fn clear_outgoing(&mut self) {
        self.outbox.clear();
    }

    /// Queues an event for the application.
    pub(crate) fn push_event(&mut self, event: ClientEvent) {
        self.queue.push_back(event);
    }

    /// Queues a stanza to send as it is (not encrypted).
    pub(crate) fn push_outgoing(&mut self, stanza: Stanza) {
        self.outbox.push_back(stanza);
    }

    /// A fresh id for one of our IQ requests.
    pub(crate) fn next_iq_id(&mut self, purpose: &str) -> String {
        self.iq_counter += 1;
        format!("esession-{purpose}-{}", self.iq_counter)
    }

    /// Runs the core's timers (negotiation timeouts, expired key sets,
    /// due rekeys): call it about once a second.
    pub fn poll_timers(&mut self) {
        let out = self.manager.poll_timers();
        self.dispatch(out);
    }

    /// Handles one event of a `tokio_xmpp::Client`; returns the stanza if it
    /// is the application's (see [`Self::handle_stream_event`]).
    pub fn handle_client_event(&mut self, event: tokio_xmpp::Event) -> Option<Stanza> {
        match event {
            tokio_xmpp::Event::Online {
                bound_jid,
                features,
                resumed: false,
            } => self.handle_stream_event(StreamItem::Stream(StreamEvent::Reset {
                bound_jid,
                features,
            })),
            tokio_xmpp::Event::Online { resumed: true, .. } => {
                self.handle_stream_event(StreamItem::Stream(StreamEvent::Resumed))
            }
            tokio_xmpp::Event::Disconnected(error) => {
                self.link = Link::Suspended;
                self.queue.push_back(ClientEvent::Disconnected {
                    reason: format!("connection lost ({error}); reconnecting"),
                    fatal: false,
                    login_error: None,
                });
                None
            }
            tokio_xmpp::Event::Stanza(stanza) => self.handle_stanza(stanza),
        }
    }

    /// Handles one item of a tokio-xmpp [`StanzaStream`](tokio_xmpp::stanzastream::StanzaStream): stream events
    /// (new stream, suspended, resumed) and stanzas. Stanzas that are not
    /// ESession traffic are returned in [`Mode::Embedded`] (and handled as a
    /// whole client would in [`Mode::WholeClient`]).
    pub fn handle_stream_event(&mut self, item: StreamItem) -> Option<Stanza> {
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
                if self.mode == Mode::WholeClient {
                    // Initial presence with our capabilities (XEP-0115); an
                    // embedding application sends its own.
                    let mut presence =
                        Presence::new(PresenceType::None).with_priority(self.priority);
                    if let Some(caps) = disco::our_caps() {
                        presence.add_payload(caps);
                    }
                    if self.hold_presence {
                        self.held_presence = Some(presence);
                    } else {
                        self.outbox.push_back(presence.into());
                    }
                }
                let jid = bound_jid.to_string();
                tracing::info!(%jid, reset, "stream online");
                self.queue.push_back(if reset {
                    ClientEvent::Reconnected { jid }
                } else {
                    ClientEvent::Online { jid }
                });
                None
            }
            // The connection dropped; tokio-xmpp reconnects (and resumes with
            // XEP-0198 where the server offers it).
            StreamItem::Stream(StreamEvent::Suspended) => {
                tracing::info!("connection lost; tokio-xmpp reconnects");
                self.link = Link::Suspended;
                self.queue.push_back(ClientEvent::Disconnected {
                    reason: "connection lost; reconnecting".to_owned(),
                    fatal: false,
                    login_error: None,
                });
                None
            }
            StreamItem::Stream(StreamEvent::Resumed) => {
                self.link = Link::Up;
                self.queue.push_back(ClientEvent::Resumed);
                None
            }
            StreamItem::Stanza(stanza) => self.handle_stanza(stanza),
        }
    }

    /// Handles one received stanza; returns it if it is the application's
    /// ([`Mode::Embedded`]).
    pub fn handle_stanza(&mut self, stanza: Stanza) -> Option<Stanza> {
        if crate::nesting::too_deep(&stanza, crate::nesting::MAX_STANZA_DEPTH) {
            // Issue 11: no real payload nests this deep; taken apart
            // without recursion, it reaches neither core nor application.
            crate::nesting::dispose(stanza);
            return None;
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

    /// Ends every session of the old stream (encrypted terminates, and
    /// `ConnectionReset` events) and forgets who was online.
    fn reset_sessions(&mut self) {
        // Issue 14: nothing off the record until the new stream's archive is checked.
        self.archive.suspend();
        self.manager.set_off_the_record_possible(false);
        let out = self.manager.connection_reset();
        self.dispatch(out);
        self.online.clear();
    }

    fn on_message(&mut self, message: Message) -> Option<Stanza> {
        if let Some(esession) = self.carbon_copy(&message) {
            // Issue 14: a copy, made for this device, of what another client of
            // ours sent or received. An ESession stanza in it belongs to that
            // client's session, which we cannot read: never shown, never
            // answered. A plain one is the embedding application's to show.
            if esession || self.mode != Mode::Embedded {
                return None;
            }
            return Some(Stanza::Message(message));
        }
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
        if !quiet || ours {
            return None;
        }
        if self.mode == Mode::Embedded {
            // Not ESession traffic: the application's, as it arrived.
            return Stanza::try_from(element).ok();
        }
        if let Some(body) = body {
            self.queue
                .push_back(ClientEvent::PlainMessage { from, body });
        }
        None
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
    fn on_iq(&mut self, iq: Iq) -> Option<Stanza> {
        let element = Element::from(iq);
        if matches!(element.attr("type"), Some("result" | "error"))
            && self.own_answer(&element)
            && self.on_archive_answer(&element)
        {
            return None;
        }
        if has_encrypted_part(&element) {
            let out = self.manager.handle_stanza(&element);
            self.dispatch(out);
            return None;
        }
        if let Some(update) = roster::update(&element, self.own_jid.as_deref()) {
            if update.full {
                self.manager.clear_presence_subscriptions();
            }
            for (jid, subscribed) in &update.items {
                self.manager.set_presence_subscription(jid, *subscribed);
            }
            if self.mode == Mode::Embedded && update.reply.is_some() {
                // A roster push: the application's too, and it answers it.
                return Stanza::try_from(element).ok();
            }
            if let Some(reply) = update.reply {
                self.enqueue(reply);
            }
            return None;
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
            return None;
        }
        if self.mode == Mode::Embedded {
            // Not ESession traffic: the application's (it answers disco#info
            // with our features too, see `disco::FEATURES`).
            return Stanza::try_from(element).ok();
        }
        let reply = builtin_answer(&element, self.device_key.as_ref())
            .or_else(|| iq_error_reply(&element, DefinedCondition::ServiceUnavailable));
        if let Some(reply) = reply {
            self.enqueue(reply);
        }
        None
    }

    /// A received `<presence/>`: our record of the contact's resources
    /// (broadcast presence, from its clear type, ENC-02), then the core, which
    /// decrypts encrypted (directed) presence into [`Event::StanzaReceived`]
    /// and ends the sessions bound to a full JID that went unavailable
    /// (SSN-16: [`esession::TerminationReason::PeerUnavailable`]).
    fn on_presence(&mut self, presence: Presence) -> Option<Stanza> {
        let encrypted = presence
            .payloads
            .iter()
            .any(|p| p.is("c", ns::STANZA_ENCRYPTION));
        if presence.type_ == PresenceType::Subscribe && self.mode == Mode::WholeClient {
            if let Some(from) = &presence.from {
                self.queue.push_back(ClientEvent::SubscriptionRequest {
                    from: from.to_bare().to_string(),
                });
            }
            return None;
        }
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
        let element = Element::from(presence);
        let out = self.manager.handle_stanza(&element);
        self.dispatch(out);
        // Clear presence is the application's too (after we read it).
        (self.mode == Mode::Embedded && !encrypted)
            .then(|| Stanza::try_from(element).ok())
            .flatten()
    }

    /// Whether `iq` comes from our own account (no `from`, or our bare JID).
    fn own_answer(&self, iq: &Element) -> bool {
        let own_bare = self
            .own_jid
            .as_deref()
            .map(|j| j.split('/').next().unwrap_or(j));
        match iq.attr("from") {
            None => true,
            Some(from) => Some(from) == own_bare,
        }
    }

    /// Issue 14: the server's answer to one of our archive preference
    /// changes. A refusal ends the contact's off-the-record sessions (the
    /// archive may keep them now), stops `mustnot` from being offered or
    /// accepted, and tells the application. Whether it was ours.
    fn on_archive_answer(&mut self, iq: &Element) -> bool {
        let (contact, reason) = match self.archive.on_answer(iq) {
            crate::archive::PrefsAnswer::NotOurs => return false,
            crate::archive::PrefsAnswer::Accepted => return true,
            crate::archive::PrefsAnswer::Refused { contact, reason } => (contact, reason),
            crate::archive::PrefsAnswer::NotRestored { contact, reason } => {
                self.queue
                    .push_back(ClientEvent::ArchivePreferenceNotRestored {
                        contact: contact.to_string(),
                        reason,
                    });
                return true;
            }
        };
        tracing::warn!(%contact, %reason, "archive preference refused");
        self.manager.set_off_the_record_possible(false);
        let ended: Vec<SessionId> = self
            .manager
            .established_sessions()
            .filter(|(id, info)| {
                id.peer.to_bare() == contact && info.logging == esession::ssn::Logging::MustNot
            })
            .map(|(id, _)| id.clone())
            .collect();
        for session in &ended {
            if let Ok(out) = self.manager.terminate(session) {
                self.dispatch(out);
            }
        }
        self.queue.push_back(ClientEvent::OffTheRecordFailed {
            contact: contact.to_string(),
            reason,
            sessions_ended: ended,
        });
        true
    }

    /// What our server archives (see [`crate::archive`]), as last confirmed.
    pub fn server_archive(&self) -> &crate::archive::ServerArchive {
        self.archive.server()
    }

    /// Records what our server archives, as confirmed by the application
    /// (an embedding one; [`crate::EsessionClient::check_server_archive`]
    /// does it itself): `mustnot` is offered and accepted only when it can
    /// be kept out (ARC-07). With MAM, `prefs` are the preferences read.
    pub fn set_server_archive(
        &mut self,
        server: crate::archive::ServerArchive,
        prefs: Option<tokio_xmpp::parsers::mam_prefs::Prefs>,
    ) {
        self.manager
            .set_off_the_record_possible(server.off_the_record_possible());
        self.archive.set_server(server, prefs);
    }

    /// Sets the off-the-record policy (ARC-02) for `contact`, or the default
    /// one with `None`; sessions the new policy no longer allows are
    /// terminated (ARC-05, see [`SessionManager::set_otr_policy`]).
    pub fn set_otr_policy(&mut self, contact: Option<&str>, policy: esession::OtrPolicy) {
        let out = match contact {
            Some(contact) => self.manager.set_otr_policy(contact, policy),
            None => self.manager.set_default_otr_policy(policy),
        };
        self.dispatch(out);
    }

    /// Whether `session` is kept out of the server's archive (issue 14).
    pub fn is_off_the_record(&self, session: &SessionId) -> bool {
        self.archive.is_off_the_record(session)
    }

    /// Puts back every contact's archive preference we changed (before
    /// going offline: nothing will end those sessions later).
    pub fn restore_archive_preferences(&mut self) {
        let counter = &mut self.iq_counter;
        let changes = self.archive.restore_all(&mut || archive_iq_id(counter));
        for change in changes {
            self.enqueue(change);
        }
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
    pub(crate) fn dispatch(&mut self, out: esession::Output) {
        if !out.stanzas.is_empty() || !out.events.is_empty() {
            tracing::debug!(
                stanzas = out.stanzas.len(),
                events = out.events.len(),
                "core output"
            );
        }
        for mut stanza in out.stanzas {
            keep_off_other_devices(&mut stanza);
            let counter = &mut self.iq_counter;
            let change = self
                .archive
                .outgoing(&mut stanza, || archive_iq_id(counter));
            if let Some(change) = change {
                // The contact leaves the archive before the stanza arrives.
                self.enqueue(change);
            }
            self.enqueue(stanza);
        }
        for event in &out.events {
            let counter = &mut self.iq_counter;
            if let Some(change) = self.archive.on_event(event, &mut || archive_iq_id(counter)) {
                self.enqueue(change);
            }
        }
        let (manager, counter) = (&self.manager, &mut self.iq_counter);
        let changes = self.archive.keep_only(
            |contact, thread| manager.holds(contact, thread),
            &mut || archive_iq_id(counter),
        );
        for change in changes {
            self.enqueue(change);
        }
        for event in out.events {
            if let Event::StanzaReceived { session, stanza } = &event
                && let Some(reply) = builtin_answer(stanza, self.device_key.as_ref())
            {
                let session = session.clone();
                self.send_in_session(&session, &reply);
                continue;
            }
            self.queue.push_back(ClientEvent::Session(event));
        }
    }

    /// Queues the core's output (stanzas to send, events for the
    /// application) after a call through [`Self::manager_mut`].
    pub fn dispatch_output(&mut self, out: esession::Output) {
        self.dispatch(out);
    }

    /// Starts an ESession with `peer` (bare or full JID): queues the offer.
    /// Unlike [`crate::EsessionClient::start_session`] it does not ask the
    /// contact's disco#info first.
    pub fn start_session(&mut self, peer: &str) -> Result<SessionId, ClientError> {
        let (id, out) = self.manager.start_session(peer)?;
        self.dispatch(out);
        Ok(id)
    }

    /// Encrypts a chat message and queues it.
    pub fn send_text(&mut self, session: &SessionId, text: &str) -> Result<(), ClientError> {
        let out = self.manager.send_text(session, text)?;
        self.dispatch(out);
        Ok(())
    }

    /// Encrypts a `<message/>`, a directed `<presence/>` or an `<iq/>` in
    /// `session` and queues it (see [`crate::EsessionClient::send_stanza`]).
    pub fn send_stanza(
        &mut self,
        session: &SessionId,
        stanza: &Element,
    ) -> Result<(), ClientError> {
        let out = self.manager.send_stanza(session, stanza)?;
        self.dispatch(out);
        Ok(())
    }

    /// Ends a session (encrypted terminate; it ends when acknowledged).
    pub fn terminate(&mut self, session: &SessionId) -> Result<(), ClientError> {
        let out = self.manager.terminate(session)?;
        self.dispatch(out);
        Ok(())
    }

    /// Ends every established session (ESN-45: before going offline).
    pub fn terminate_all(&mut self) {
        let out = self.manager.terminate_all();
        self.dispatch(out);
    }

    /// An encrypted XEP-0199 ping to the session's peer (the session must
    /// have agreed `iq`), queued; returns its `id`.
    pub fn send_ping(&mut self, session: &SessionId) -> Result<String, ClientError> {
        let id = self.next_iq_id("ping");
        let ping = Iq::from_get(id.clone(), Ping).with_to(session.peer.clone());
        self.send_stanza(session, &Element::from(ping))?;
        Ok(id)
    }

    /// An encrypted `service-unavailable` answer to a decrypted request the
    /// application does not handle (see [`crate::EsessionClient::refuse_iq`]).
    pub fn refuse_iq(&mut self, session: &SessionId, request: &Element) -> Result<(), ClientError> {
        match iq_error_reply(request, DefinedCondition::ServiceUnavailable) {
            Some(refusal) => self.send_stanza(session, &refusal),
            None => Ok(()),
        }
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
/// (XEP-0030, with our features), ping (XEP-0199), and our device's key
/// (XEP-0189, PKP-07) when we have one: without, the request is refused
/// with `service-unavailable` like any other.
fn builtin_answer(element: &Element, device_key: Option<&PublishedKey>) -> Option<Element> {
    let (id, from, payload) = request(element)?;
    let payload = payload.filter(|_| element.attr("type") == Some("get"))?;
    let reply = if esession_wire::pubkey::is_key_request(payload) {
        Iq::Result {
            from: None,
            to: None,
            id,
            payload: Some(Element::from(device_key?)),
        }
    } else if payload.is("query", "http://jabber.org/protocol/disco#info") {
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

/// XEP-0280 Message Carbons.
const CARBONS_NS: &str = "urn:xmpp:carbons:2";
/// XEP-0334 Message Processing Hints.
const HINTS_NS: &str = "urn:xmpp:hints";

/// Issue 14: an ESession `<message/>` (negotiation, `<c/>`, offline `<init/>`) asks the
/// server not to copy it to our other devices: they could never read it (XEP-0280 §7
/// `<private/>`, and the XEP-0334 `no-copy` hint for servers that know only hints). Both
/// are clear hints to the server; the encrypted content is untouched.
fn keep_off_other_devices(stanza: &mut Element) {
    let esession = stanza.is("message", ns::JABBER_CLIENT) && carries_esession(stanza);
    if esession && !stanza.has_child("private", CARBONS_NS) {
        stanza.append_child(Element::bare("private", CARBONS_NS));
        stanza.append_child(Element::bare("no-copy", HINTS_NS));
    }
}

/// The id of an archive preference change we send.
fn archive_iq_id(counter: &mut u64) -> String {
    *counter += 1;
    format!("esession-archive-{counter}")
}

/// XEP-0297 Stanza Forwarding, which carries a carbon copy.
const FORWARD_NS: &str = "urn:xmpp:forward:0";

/// Whether `message` is ESession traffic: negotiation, `<c/>` or an offline `<init/>`.
fn carries_esession(message: &Element) -> bool {
    message.children().any(|c| {
        c.is("c", ns::STANZA_ENCRYPTION)
            || c.is("feature", ns::FEATURE_NEG)
            || c.is("init", ns::ESESSION_INIT)
    })
}

impl Esessions {
    /// For a XEP-0280 carbon copy (`<received/>` or `<sent/>`) from our own account (only
    /// our server may send those, from our bare JID): whether the copied message is
    /// ESession traffic. `None` for anything else.
    fn carbon_copy(&self, message: &Message) -> Option<bool> {
        let own = self.own_jid.as_deref()?;
        let own_bare = own.split('/').next().unwrap_or(own);
        if message.from.as_ref()?.to_string() != own_bare {
            return None;
        }
        let wrapper = message
            .payloads
            .iter()
            .find(|p| p.is("received", CARBONS_NS) || p.is("sent", CARBONS_NS))?;
        Some(
            wrapper
                .get_child("forwarded", FORWARD_NS)
                .and_then(|f| f.get_child("message", ns::JABBER_CLIENT))
                .is_some_and(carries_esession),
        )
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
    fn esession_messages_ask_not_to_be_copied_and_others_are_left_alone() {
        let mut ours = parse(
            "<message xmlns='jabber:client' to='bob@example.com/pc'><thread>t</thread>\
             <c xmlns='http://www.xmpp.org/extensions/xep-0200.html#ns'><data>AA==</data></c></message>",
        );
        keep_off_other_devices(&mut ours);
        assert!(ours.has_child("private", CARBONS_NS) && ours.has_child("no-copy", HINTS_NS));
        for xml in [
            "<message xmlns='jabber:client' to='bob@example.com'><body>plain</body></message>",
            "<presence xmlns='jabber:client' to='bob@example.com'/>",
        ] {
            let mut other = parse(xml);
            keep_off_other_devices(&mut other);
            assert!(!other.has_child("private", CARBONS_NS), "{xml}");
        }
    }

    #[test]
    fn a_carbon_copy_from_our_server_is_never_shown_or_answered() {
        use rand_chacha::rand_core::SeedableRng as _;
        let manager = SessionManager::new(
            esession::Config::default(),
            Box::new(esession::SystemRandomness::new(
                rand_chacha::ChaCha20Rng::seed_from_u64(14),
            )),
            Box::new(esession::MemoryTrustStore::new()),
            Box::new(esession::FixedClock(1_700_000_000)),
        )
        .unwrap();
        // An application embedding the layer gets every stanza that is not ESession
        // traffic, carbons included; a carbon of ESession traffic it never gets.
        let mut layer = Esessions::embedded(manager);
        layer.own_jid = Some("alice@example.org/laptop".to_owned());
        let carbon = |from: &str, inner: &str| {
            parse(&format!(
                "<message xmlns='jabber:client' from='{from}' to='alice@example.org/laptop'>\
                 <received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>\
                 <message xmlns='jabber:client' from='bob@example.com/pc' to='alice@example.org/phone' type='chat'>\
                 <thread>t1</thread><body>fallback</body>{inner}</message></forwarded></received></message>"
            ))
        };
        let c = "<c xmlns='http://www.xmpp.org/extensions/xep-0200.html#ns'><data>AA==</data><mac>AA==</mac></c>";
        let ours = layer.handle_stanza(Stanza::try_from(carbon("alice@example.org", c)).unwrap());
        assert!(ours.is_none(), "a carbon of ESession traffic is nobody's");
        assert!(layer.queue.is_empty() && layer.outbox.is_empty());
        let plain = layer.handle_stanza(Stanza::try_from(carbon("alice@example.org", "")).unwrap());
        assert!(
            plain.is_some(),
            "a carbon of a plain message is the application's"
        );
    }

    #[test]
    fn a_request_for_our_device_key_is_answered_only_when_we_have_one() {
        let request = parse(
            "<iq xmlns='jabber:client' type='get' id='k1' from='bob@example.com/pc'>\
             <pubkey xmlns='urn:xmpp:pubkey:2'/></iq>",
        );
        // PKP-07: without a key, no answer here (the caller refuses with service-unavailable).
        assert_eq!(builtin_answer(&request, None), None);
        let key = PublishedKey {
            begin: esession_wire::pubkey::Timestamp::from_unix(1_700_000_000).unwrap(),
            end: esession_wire::pubkey::Timestamp::from_unix(1_800_000_000).unwrap(),
            jid: "alice@example.org".to_owned(),
            modulus: vec![0xc3; 256],
            exponent: vec![1, 0, 1],
            print: vec![5; 32],
            uri: None,
        };
        let answer = builtin_answer(&request, Some(&key)).unwrap();
        assert_eq!(answer.attr("type"), Some("result"));
        assert_eq!(answer.attr("to"), Some("bob@example.com/pc"));
        let pubkey = answer.get_child("pubkey", "urn:xmpp:pubkey:2").unwrap();
        assert_eq!(PublishedKey::try_from(pubkey).unwrap(), key);
        // A `set` is not a request for our key.
        let set = parse(
            "<iq xmlns='jabber:client' type='set' id='k2' from='bob@example.com/pc'>\
             <pubkey xmlns='urn:xmpp:pubkey:2'/></iq>",
        );
        assert_eq!(builtin_answer(&set, Some(&key)), None);
    }

    #[test]
    fn ping_and_disco_info_requests_get_our_answer() {
        let ping = parse(
            "<iq xmlns='jabber:client' from='bob@example.com/phone' type='get' id='p1'>\
             <ping xmlns='urn:xmpp:ping'/></iq>",
        );
        let pong = builtin_answer(&ping, None).unwrap();
        assert_eq!(
            (pong.attr("type"), pong.attr("id"), pong.attr("to")),
            (Some("result"), Some("p1"), Some("bob@example.com/phone"))
        );
        assert_eq!(pong.children().count(), 0);
        let disco = parse(
            "<iq xmlns='jabber:client' from='bob@example.com/phone' type='get' id='d1'>\
             <query xmlns='http://jabber.org/protocol/disco#info' node='n#v'/></iq>",
        );
        let info = builtin_answer(&disco, None).unwrap();
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
            assert_eq!(builtin_answer(&parse(other), None), None, "{other}");
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
