//! [`EsessionClient`]: drives the sans-IO core from a tokio-xmpp connection.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use esession::{Event, SessionId, SessionManager};
use esession_wire::minidom::Element;
use esession_wire::ns;
use futures::StreamExt;
use tokio_xmpp::jid::Jid;
use tokio_xmpp::parsers::disco::{DiscoInfoQuery, DiscoInfoResult};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::Message;
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use tokio_xmpp::{Client, IqRequest, IqResponse, Stanza};

use crate::disco;

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
    /// A contact's resource came online (from its presence).
    ContactOnline {
        /// The full JID.
        jid: String,
    },
    /// The connection dropped. tokio-xmpp reconnects by itself unless `fatal`
    /// (e.g. a wrong password).
    Disconnected {
        /// Why, for the user.
        reason: String,
        /// No point in retrying.
        fatal: bool,
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
}

/// An XMPP client with ESessions: feed it nothing, just poll [`Self::next_event`].
pub struct EsessionClient {
    xmpp: Client,
    manager: SessionManager,
    own_jid: Option<String>,
    queue: VecDeque<ClientEvent>,
    tick: tokio::time::Interval,
    online: HashMap<String, Vec<String>>,
}

impl core::fmt::Debug for EsessionClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EsessionClient")
            .field("own_jid", &self.own_jid)
            .finish_non_exhaustive()
    }
}

impl EsessionClient {
    /// Wraps a tokio-xmpp client (not yet connected: it connects when polled)
    /// and a session manager.
    pub fn new(xmpp: Client, manager: SessionManager) -> Self {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            xmpp,
            manager,
            own_jid: None,
            queue: VecDeque::new(),
            tick,
            online: HashMap::new(),
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

    /// The next event. Drives the connection, answers service discovery and
    /// runs the core's timers; `None` once the connection is closed for good.
    pub async fn next_event(&mut self) -> Option<ClientEvent> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some(event);
            }
            tokio::select! {
                event = self.xmpp.next() => match event {
                    Some(event) => self.on_xmpp_event(event).await,
                    None => return None,
                },
                _ = self.tick.tick() => {
                    let out = self.manager.expire_negotiations();
                    self.dispatch(out).await;
                }
            }
        }
    }

    async fn on_xmpp_event(&mut self, event: tokio_xmpp::Event) {
        match event {
            tokio_xmpp::Event::Online { bound_jid, .. } => {
                self.own_jid = Some(bound_jid.to_string());
                // Initial presence with our capabilities (XEP-0115).
                let mut presence = Presence::new(PresenceType::None);
                if let Some(caps) = disco::our_caps() {
                    presence.add_payload(caps);
                }
                let _ = self.xmpp.send_stanza(presence.into()).await;
                self.queue.push_back(ClientEvent::Online {
                    jid: bound_jid.to_string(),
                });
            }
            tokio_xmpp::Event::Disconnected(error) => {
                let fatal = matches!(error, tokio_xmpp::Error::Auth(_));
                let reason = match &error {
                    tokio_xmpp::Error::Auth(_) => {
                        "authentication failed: wrong JID or password".to_owned()
                    }
                    other => format!("connection lost: {other}"),
                };
                self.queue
                    .push_back(ClientEvent::Disconnected { reason, fatal });
            }
            tokio_xmpp::Event::Stanza(Stanza::Message(message)) => self.on_message(message).await,
            tokio_xmpp::Event::Stanza(Stanza::Iq(iq)) => self.on_iq(iq).await,
            tokio_xmpp::Event::Stanza(Stanza::Presence(presence)) => self.on_presence(presence),
        }
    }

    async fn on_message(&mut self, message: Message) {
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
        self.dispatch(out).await;
        if let (true, false, Some(body)) = (quiet, ours, body) {
            self.queue
                .push_back(ClientEvent::PlainMessage { from, body });
        }
    }

    async fn on_iq(&mut self, iq: Iq) {
        match iq {
            Iq::Get {
                from, id, payload, ..
            } => {
                let reply = if payload.is("query", "http://jabber.org/protocol/disco#info") {
                    let node = payload.attr("node").map(str::to_owned);
                    Iq::from_result(id, Some(disco::our_disco_info(node)))
                } else {
                    Iq::from_error(id, unsupported())
                };
                let _ = self.xmpp.send_stanza(reply.with_to_opt(from).into()).await;
            }
            Iq::Set { from, id, .. } => {
                let reply = Iq::from_error(id, unsupported());
                let _ = self.xmpp.send_stanza(reply.with_to_opt(from).into()).await;
            }
            Iq::Result { .. } | Iq::Error { .. } => {}
        }
    }

    fn on_presence(&mut self, presence: Presence) {
        let Some(Ok(from)) = presence.from.clone().map(Jid::try_into_full) else {
            return;
        };
        let bare = from.to_bare().to_string();
        let full = from.to_string();
        let resources = self.online.entry(bare).or_default();
        match presence.type_ {
            PresenceType::None if !resources.contains(&full) => {
                resources.push(full.clone());
                self.queue.push_back(ClientEvent::ContactOnline { jid: full });
            }
            // SSN-16: unavailable presence does not end a session by itself.
            PresenceType::Unavailable => resources.retain(|r| r != &full),
            _ => {}
        }
    }

    async fn dispatch(&mut self, out: esession::Output) {
        for stanza in out.stanzas {
            if let Err(error) = self.send_element(stanza).await {
                self.queue.push_back(ClientEvent::Disconnected {
                    reason: error.to_string(),
                    fatal: false,
                });
            }
        }
        for event in out.events {
            self.queue.push_back(ClientEvent::Session(event));
        }
    }

    async fn send_element(&mut self, element: Element) -> Result<(), ClientError> {
        let message =
            Message::try_from(element).map_err(|e| ClientError::Conversion(format!("{e:?}")))?;
        self.xmpp
            .send_stanza(message.into())
            .await
            .map_err(|e| ClientError::Send(e.to_string()))?;
        Ok(())
    }

    /// Asks `jid` (a full JID) which features it supports (ESN-01).
    pub async fn query_support(&mut self, jid: &str) -> Result<bool, ClientError> {
        let to = Jid::new(jid).map_err(|_| ClientError::Disco(jid.to_owned()))?;
        let token = self
            .xmpp
            .send_iq(
                Some(to),
                IqRequest::Get(DiscoInfoQuery { node: None }.into()),
            )
            .await;
        let response = tokio::time::timeout(Duration::from_secs(10), token)
            .await
            .map_err(|_| ClientError::Disco(jid.to_owned()))?
            .map_err(|_| ClientError::Disco(jid.to_owned()))?;
        match response {
            IqResponse::Result(Some(payload)) => {
                let info = DiscoInfoResult::try_from(payload)
                    .map_err(|_| ClientError::Disco(jid.to_owned()))?;
                Ok(disco::supports_esessions(&info))
            }
            IqResponse::Result(None) => Ok(false),
            IqResponse::Error(_) => Ok(false),
        }
    }

    /// Starts an ESession with `contact` (bare or full JID). With a full JID
    /// (or a bare JID whose online resource we know), the contact's disco#info
    /// is checked first and a contact without ESessions is refused cleanly.
    pub async fn start_session(&mut self, contact: &str) -> Result<SessionId, ClientError> {
        let target = if contact.contains('/') {
            Some(contact.to_owned())
        } else {
            self.online_resources(contact).first().cloned()
        };
        if let Some(full) = &target {
            if !self.query_support(full).await? {
                return Err(ClientError::NoEsessionSupport(full.clone()));
            }
        }
        let peer = target.unwrap_or_else(|| contact.to_owned());
        let (id, out) = self.manager.start_session(&peer)?;
        self.dispatch(out).await;
        Ok(id)
    }

    /// Sends an encrypted chat message.
    pub async fn send_text(&mut self, session: &SessionId, text: &str) -> Result<(), ClientError> {
        let out = self.manager.send_text(session, text)?;
        self.dispatch(out).await;
        Ok(())
    }

    /// Encrypts and sends an application `<message/>`.
    pub async fn send_message(
        &mut self,
        session: &SessionId,
        message: &Element,
    ) -> Result<(), ClientError> {
        let out = self.manager.send_message(session, message)?;
        self.dispatch(out).await;
        Ok(())
    }

    /// Sends a message in clear, outside any ESession (the caller must have warned the user).
    pub async fn send_plain(&mut self, to: &str, text: &str) -> Result<(), ClientError> {
        let to = Jid::new(to).map_err(|_| ClientError::Send(format!("invalid JID {to}")))?;
        let message = Message::chat(Some(to)).with_body(Default::default(), text.to_owned());
        self.xmpp
            .send_stanza(message.into())
            .await
            .map_err(|e| ClientError::Send(e.to_string()))?;
        Ok(())
    }

    /// Accepts an offer held back by policy.
    pub async fn accept_offer(&mut self, session: &SessionId) -> Result<(), ClientError> {
        let out = self.manager.accept_offer(session)?;
        self.dispatch(out).await;
        Ok(())
    }

    /// Declines an offer held back by policy.
    pub async fn reject_offer(&mut self, session: &SessionId) -> Result<(), ClientError> {
        let out = self.manager.reject_offer(session)?;
        self.dispatch(out).await;
        Ok(())
    }

    /// Ends a session (encrypted terminate; the session ends when acknowledged).
    pub async fn terminate(&mut self, session: &SessionId) -> Result<(), ClientError> {
        let out = self.manager.terminate(session)?;
        self.dispatch(out).await;
        Ok(())
    }

    /// Records that the user compared the SAS and it matched.
    pub fn confirm_sas(&mut self, session: &SessionId) -> Result<(), ClientError> {
        Ok(self.manager.confirm_sas(session)?)
    }

    /// Sends unavailable presence and closes the stream.
    pub async fn disconnect(mut self) {
        let _ = self
            .xmpp
            .send_stanza(Presence::new(PresenceType::Unavailable).into())
            .await;
        let _ = self.xmpp.send_end().await;
    }
}

fn unsupported() -> StanzaError {
    StanzaError::new(
        ErrorType::Cancel,
        DefinedCondition::ServiceUnavailable,
        "en",
        "",
    )
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
