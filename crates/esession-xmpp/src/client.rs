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

use std::time::Duration;

use esession::{SessionId, SessionManager, StanzaKind};
use esession_wire::minidom::Element;
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_xmpp::Stanza;
use tokio_xmpp::jid::Jid;
use tokio_xmpp::parsers::disco::{DiscoInfoQuery, DiscoInfoResult};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::Message;
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};
use tokio_xmpp::stanzastream::{Event as StreamItem, StanzaStream};

use crate::connect::{LoginError, LoginInfo, XmppConnection};
use crate::disco;
use crate::layer::{ClientError, ClientEvent, Esessions};

mod archive;
mod pep;
mod roster;

pub use pep::FetchedKeys;
pub use roster::RosterEntry;

/// Why an IQ request got no result.
#[derive(Debug)]
enum IqFailure {
    /// The client cannot send (the login was refused).
    Unusable(ClientError),
    /// No answer within the time allowed, or the stream ended.
    TimedOut,
    /// An error answer, with its condition.
    Refused(tokio_xmpp::parsers::stanza_error::DefinedCondition),
}

/// An XMPP client with ESessions: feed it nothing, just poll [`Self::next_event`].
///
/// It is the [`Esessions`] layer driven by a connection it owns: a
/// [`XmppConnection`] made by [`crate::connect::client`], or any tokio-xmpp
/// [`StanzaStream`] ([`Self::from_stream`]). An application that drives its
/// own stream uses [`Esessions`] directly.
///
/// [`Self::next_event`] is cancel-safe: it may be dropped at any await point
/// (e.g. as a losing branch of `tokio::select!`) without losing an event or
/// leaving a stanza the core produced unsent. Handling a received stanza is
/// synchronous; the events it yields are queued and the stanzas it yields go
/// to an outbox that the next call (or any sending method) flushes first.
pub struct EsessionClient {
    xmpp: StanzaStream,
    /// Where the connection reports a login refused for good (at most once).
    login_errors: Option<mpsc::Receiver<LoginError>>,
    /// Set once a login was refused for good: nothing is sent any more.
    login_failed: Option<LoginError>,
    /// How the latest login went (mechanism, channel binding, TLS).
    login_info: Option<watch::Receiver<Option<LoginInfo>>>,
    layer: Esessions,
    tick: tokio::time::Interval,
}

impl core::fmt::Debug for EsessionClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EsessionClient")
            .field("own_jid", &self.layer.own_jid())
            .finish_non_exhaustive()
    }
}

impl EsessionClient {
    /// Wraps a connection (as made by [`crate::connect::client`]; it
    /// connects, and reconnects, in the background) and a session manager.
    pub fn new(connection: XmppConnection, manager: SessionManager) -> Self {
        let (xmpp, login_errors, login_info) = connection.into_parts();
        let mut client = Self::from_stream(xmpp, manager);
        client.login_errors = Some(login_errors);
        client.login_info = Some(login_info);
        client
    }

    /// Checks the server's archive ([`Self::check_server_archive`]) at every
    /// login, before our initial presence goes out and before
    /// [`crate::ClientEvent::Online`] or [`crate::ClientEvent::Reconnected`] is
    /// returned: no offer or offline message can arrive while it is unknown
    /// (it would be answered as if nothing could be off the record).
    pub fn check_archive_on_login(&mut self, check: bool) {
        self.layer.hold_initial_presence(check);
    }

    /// The priority of our initial presence, before the first login completes (see
    /// [`crate::Esessions::set_presence_priority`]): negative for a client that does not
    /// read what is sent to the bare JID, so that the server keeps it for one that does.
    pub fn set_presence_priority(&mut self, priority: i8) {
        self.layer.set_presence_priority(priority);
    }

    /// Wraps a tokio-xmpp stanza stream the application made itself (for
    /// example with `StanzaStream::new_c2s`). A login the server refuses is
    /// then not reported: the stream simply never comes online.
    pub fn from_stream(stream: StanzaStream, manager: SessionManager) -> Self {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            xmpp: stream,
            login_errors: None,
            login_failed: None,
            login_info: None,
            layer: Esessions::new(manager),
            tick,
        }
    }

    /// The session manager (for session info, trust store access).
    pub fn manager(&self) -> &SessionManager {
        self.layer.manager()
    }

    /// The session manager, mutably.
    pub fn manager_mut(&mut self) -> &mut SessionManager {
        self.layer.manager_mut()
    }

    /// Our full JID once online.
    pub fn own_jid(&self) -> Option<&str> {
        self.layer.own_jid()
    }

    /// Online full JIDs of `contact` (bare JID) seen in presence.
    pub fn online_resources(&self, contact: &str) -> &[String] {
        self.layer.online_resources(contact)
    }

    /// How the current connection logged in (SASL mechanism, channel
    /// binding, TLS version, mechanisms that failed first); `None` before
    /// the first login (and for a stream from [`Self::from_stream`]). Set
    /// when [`ClientEvent::Online`] is reported.
    pub fn login_info(&self) -> Option<LoginInfo> {
        self.login_info
            .as_ref()
            .and_then(|info| info.borrow().clone())
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
            if self.layer.initial_presence_held()
                && matches!(
                    self.layer.peek_event(),
                    Some(ClientEvent::Online { .. } | ClientEvent::Reconnected { .. })
                )
            {
                // Issue 14: the archive is checked before anyone sees us. If
                // this is cancelled, the event and the presence stay queued
                // and the next call checks again.
                let _ = self.check_server_archive().await;
                self.layer.release_initial_presence();
                continue;
            }
            if let Some(event) = self.layer.next_event() {
                return Some(event);
            }
            if self.login_failed.is_some() {
                return None;
            }
            // All branches are cancel-safe (channel receives and a timer
            // tick) and what follows them runs without awaiting.
            tokio::select! {
                item = self.xmpp.next() => match item {
                    Some(item) => {
                        self.layer.handle_stream_event(item);
                    }
                    None => return None,
                },
                Some(error) = login_error(&mut self.login_errors) => self.on_login_failed(error),
                // Every second: negotiation timeouts, expired key sets
                // (XEP-0200's 60 s) and due rekeys (idle time, block count).
                // `SessionManager::next_deadline` is never more precise than
                // a second, so a fixed tick misses nothing.
                _ = self.tick.tick() => self.layer.poll_timers(),
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
            Some(error) = login_error(&mut self.login_errors) => {
                self.on_login_failed(error);
                None
            }
        }
    }

    /// The server refused our login and the connection will not retry:
    /// report it once, and drop what was waiting to be sent (it never will be).
    fn on_login_failed(&mut self, error: LoginError) {
        self.layer.clear_outgoing();
        self.layer.push_event(ClientEvent::Disconnected {
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
            self.layer.clear_outgoing();
            return;
        }
        while let Some(front) = self.layer.peek_outgoing() {
            let stanza = match front {
                Stanza::Message(m) => Stanza::Message(m.clone()),
                Stanza::Iq(iq) => Stanza::Iq(iq.clone()),
                Stanza::Presence(p) => Stanza::Presence(p.clone()),
            };
            // The token only tracks transmission; delivery problems come back as stanzas.
            let _token = self.xmpp.send(Box::new(stanza)).await;
            self.layer.pop_outgoing();
        }
    }

    /// Queues the core's output and sends its stanzas now.
    async fn dispatch_now(&mut self, out: esession::Output) {
        self.layer.dispatch(out);
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
        let failed = || ClientError::Disco(jid.to_owned());
        let to = Jid::new(jid).map_err(|_| failed())?;
        let id = self.layer.next_iq_id("disco");
        let query = Iq::from_get(id, DiscoInfoQuery { node: None }).with_to(to.clone());
        match self.round_trip(query, Some(&to)).await {
            Err(IqFailure::Unusable(error)) => Err(error),
            Err(IqFailure::TimedOut) => Err(failed()),
            Ok(Some(payload)) => {
                let info = DiscoInfoResult::try_from(payload).map_err(|_| failed())?;
                Ok(Some(disco::supports_esessions(&info)))
            }
            // An error (service-unavailable for an offline resource, say)
            // or an empty result: unknown.
            Err(IqFailure::Refused(_)) | Ok(None) => Ok(None),
        }
    }

    /// Sends `iq` and waits (10 s at most) for its answer from `to` (our own
    /// account when `None`), handling everything else that arrives meanwhile:
    /// the result's payload, or why there is none.
    async fn round_trip(&mut self, iq: Iq, to: Option<&Jid>) -> Result<Option<Element>, IqFailure> {
        self.ensure_usable().map_err(IqFailure::Unusable)?;
        let id = iq.id().to_owned();
        self.layer.push_outgoing(iq.into());
        let own_bare = self
            .layer
            .own_jid()
            .and_then(|j| Jid::new(j).ok())
            .map(|j| j.into_bare());
        // Our own account answers without `from`, or from our bare JID (RFC 6120 §10.3).
        let own = |jid: &Jid| own_bare.as_ref().is_some_and(|own| jid == own);
        let from_peer = |from: &Option<Jid>| match (to, from) {
            (Some(to), Some(from)) => from == to || (own(to) && own(from)),
            (Some(to), None) => own(to),
            (None, None) => true,
            (None, Some(from)) => own(from),
        };
        let answer = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                self.flush().await;
                match self.next_item().await? {
                    StreamItem::Stanza(Stanza::Iq(Iq::Result {
                        id: answered,
                        from,
                        payload,
                        ..
                    })) if answered == id && from_peer(&from) => return Some(Ok(payload)),
                    StreamItem::Stanza(Stanza::Iq(Iq::Error {
                        id: answered,
                        from,
                        error,
                        ..
                    })) if answered == id && from_peer(&from) => {
                        return Some(Err(error.defined_condition));
                    }
                    other => {
                        self.layer.handle_stream_event(other);
                    }
                }
            }
        })
        .await
        .map_err(|_| IqFailure::TimedOut)?;
        self.ensure_usable().map_err(IqFailure::Unusable)?;
        match answer {
            Some(Ok(payload)) => Ok(payload),
            Some(Err(condition)) => Err(IqFailure::Refused(condition)),
            None => Err(IqFailure::TimedOut),
        }
    }

    /// Starts an ESession with `contact` (bare or full JID). With a full JID
    /// (or a bare JID whose online resource we know), the contact's disco#info
    /// is checked first and a contact without ESessions is refused cleanly.
    pub async fn start_session(&mut self, contact: &str) -> Result<SessionId, ClientError> {
        self.ensure_usable()?;
        // Issue 14 (ARC-07): a policy nothing can satisfy fails before any traffic.
        self.manager()
            .config()
            .logging_to_offer(contact)
            .map_err(|conflict| ClientError::Session(esession::Error::Archiving(conflict)))?;
        let target = if contact.contains('/') {
            Some(contact.to_owned())
        } else {
            self.online_resources(contact).first().cloned()
        };
        // A contact we already share a session carrying iq with supports
        // ESessions, and a clear disco#info to it would break ESN-44.
        let bound = target.as_deref().is_some_and(|full| {
            self.manager()
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
        let id = self.layer.start_session(&peer)?;
        self.flush().await;
        Ok(id)
    }
    /// XEP-0187 as the sender: `contact` is offline and published `options`; encrypts
    /// `first` (a `<message/>`) to them in an offline session and sends it (see
    /// [`esession::SessionManager::start_offline_session`]). With `one_shot` the session
    /// ends with that stanza; otherwise [`Self::send_text`] adds messages to it until the
    /// contact comes online. Returns the session and what it agreed, with the contact's
    /// key that signed the options.
    pub async fn start_offline_session(
        &mut self,
        contact: &tokio_xmpp::jid::BareJid,
        options: &Element,
        first: &Element,
        one_shot: bool,
    ) -> Result<(SessionId, esession::SessionInfo), ClientError> {
        self.ensure_usable()?;
        let (id, out) = self.layer.manager_mut().start_offline_session(
            contact,
            options,
            Some(first),
            one_shot,
        )?;
        let info = out.events.iter().find_map(|e| match e {
            esession::Event::Established { session, info } if *session == id => Some(info.clone()),
            _ => None,
        });
        self.dispatch_now(out).await;
        let info = info.ok_or(ClientError::Session(esession::Error::NotEstablished))?;
        Ok((id, info))
    }

    /// Sends an encrypted chat message.
    pub async fn send_text(&mut self, session: &SessionId, text: &str) -> Result<(), ClientError> {
        self.ensure_usable()?;
        let out = self.layer.manager_mut().send_text(session, text)?;
        self.dispatch_now(out).await;
        Ok(())
    }

    /// Encrypts and sends a chat message asking for an encrypted delivery
    /// receipt; returns the id that [`esession::Event::MessageDelivered`] will carry
    /// (see [`esession::SessionManager::send_text_with_receipt`]).
    pub async fn send_text_with_receipt(
        &mut self,
        session: &SessionId,
        text: &str,
    ) -> Result<String, ClientError> {
        self.ensure_usable()?;
        let (id, out) = self
            .layer
            .manager_mut()
            .send_text_with_receipt(session, text)?;
        self.dispatch_now(out).await;
        Ok(id)
    }

    /// Sends `text` again under the id it first had, in a new session (see
    /// [`esession::SessionManager::resend_text`]).
    pub async fn resend_text(
        &mut self,
        session: &SessionId,
        text: &str,
        id: &str,
    ) -> Result<(), ClientError> {
        self.ensure_usable()?;
        let out = self.layer.manager_mut().resend_text(session, text, id)?;
        self.dispatch_now(out).await;
        Ok(())
    }

    /// The user found the SAS did not match: revokes the verification of
    /// this contact's client and ends the session (see
    /// [`esession::SessionManager::distrust`]).
    pub async fn distrust(&mut self, session: &SessionId) -> Result<(), ClientError> {
        self.ensure_usable()?;
        let out = self.layer.manager_mut().distrust(session)?;
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
        let out = self.layer.manager_mut().send_message(session, message)?;
        self.dispatch_now(out).await;
        Ok(())
    }

    /// Encrypts and sends a `<message/>`, a directed `<presence/>` or an
    /// `<iq/>` in `session` ([`esession::SessionManager::send_stanza`]): presence and
    /// iq only if the session agreed their kind (`Config::stanzas`), and only
    /// to the session's peer. Refused with nothing sent otherwise; broadcast
    /// presence is never encrypted (ENC-01).
    ///
    /// **Answer every request.** An `<iq type='get'/>` or `type='set'`
    /// delivered in [`esession::Event::StanzaReceived`] must be answered by the
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
        let out = self.layer.manager_mut().send_stanza(session, &stanza)?;
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
        self.ensure_usable()?;
        self.layer.refuse_iq(session, request)?;
        self.flush().await;
        Ok(())
    }

    /// Sends an encrypted XEP-0199 ping to the session's peer (the session
    /// must have agreed `iq`); returns the request's `id`. The answer arrives
    /// as an [`esession::Event::StanzaReceived`] `<iq/>` of type `result` (or `error`)
    /// with that id, or as [`esession::Event::DeliveryError`] if a server bounced it.
    pub async fn send_ping(&mut self, session: &SessionId) -> Result<String, ClientError> {
        self.ensure_usable()?;
        let id = self.layer.send_ping(session)?;
        self.flush().await;
        Ok(id)
    }

    /// Sends a message in clear, outside any ESession (the caller must have warned the user).
    pub async fn send_plain(&mut self, to: &str, text: &str) -> Result<(), ClientError> {
        self.ensure_usable()?;
        let to = Jid::new(to).map_err(|_| ClientError::Send(format!("invalid JID {to}")))?;
        let message = Message::chat(Some(to)).with_body(Default::default(), text.to_owned());
        self.layer.push_outgoing(message.into());
        self.flush().await;
        Ok(())
    }

    /// Sends `stanza` in clear, outside any ESession, even when a session
    /// with its recipient is established: nothing is encrypted and no
    /// logging policy applies. For stanzas that need none (another
    /// encryption's payload, nothing private); use [`Self::send_text`] or
    /// [`Self::send_stanza`] for anything a session should protect. It must
    /// be a `message`, `presence` or `iq`, and is read into xmpp-parsers'
    /// types on the way (which may reorder its bodies or drop what they
    /// do not know).
    pub async fn send_plain_stanza(&mut self, stanza: Element) -> Result<(), ClientError> {
        self.ensure_usable()?;
        let stanza = Stanza::try_from(stanza)
            .map_err(|e| ClientError::Send(format!("not a message, presence or iq stanza: {e}")))?;
        self.layer.push_outgoing(stanza);
        self.flush().await;
        Ok(())
    }

    /// Accepts an offer held back by policy.
    pub async fn accept_offer(&mut self, session: &SessionId) -> Result<(), ClientError> {
        self.ensure_usable()?;
        let out = self.layer.manager_mut().accept_offer(session)?;
        self.dispatch_now(out).await;
        Ok(())
    }

    /// Declines an offer held back by policy.
    pub async fn reject_offer(&mut self, session: &SessionId) -> Result<(), ClientError> {
        self.ensure_usable()?;
        let out = self.layer.manager_mut().reject_offer(session)?;
        self.dispatch_now(out).await;
        Ok(())
    }

    /// Approves `contact`'s request to see our presence (RFC 6121 §3.1.4:
    /// `subscribed`), so that they see when we are online and may start
    /// sessions with us (SSN-09).
    pub async fn approve_subscription(
        &mut self,
        contact: &tokio_xmpp::jid::BareJid,
    ) -> Result<(), ClientError> {
        self.ensure_usable()?;
        let approval = Presence::new(PresenceType::Subscribed).with_to(Jid::from(contact.clone()));
        self.layer.push_outgoing(approval.into());
        self.flush().await;
        Ok(())
    }

    /// Ends a session (encrypted terminate; the session ends when acknowledged).
    pub async fn terminate(&mut self, session: &SessionId) -> Result<(), ClientError> {
        self.ensure_usable()?;
        let out = self.layer.manager_mut().terminate(session)?;
        self.dispatch_now(out).await;
        Ok(())
    }

    /// Rekeys the session now (XEP-0200 §Re-Key Exchange): sends a fresh DH
    /// value under the current keys. Fails with
    /// [`esession::Error::RekeyTooSoon`] before the agreed `rekey_freq`
    /// stanzas have passed since the last key exchange.
    pub async fn rekey(&mut self, session: &SessionId) -> Result<(), ClientError> {
        let out = self.layer.manager_mut().rekey(session)?;
        self.dispatch_now(out).await;
        Ok(())
    }

    /// Records that the user compared the SAS and it matched.
    pub fn confirm_sas(&mut self, session: &SessionId) -> Result<(), ClientError> {
        Ok(self.layer.manager_mut().confirm_sas(session)?)
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
        self.layer.terminate_all();
        // Issue 14: contacts we left out of the archive get their rule back.
        self.layer.restore_archive_preferences();
        self.layer
            .push_outgoing(Presence::new(PresenceType::Unavailable).into());
        self.flush().await;
        self.xmpp.close().await;
    }
}

/// The next refused login, if this connection reports them (cancel-safe).
async fn login_error(errors: &mut Option<mpsc::Receiver<LoginError>>) -> Option<LoginError> {
    match errors {
        Some(errors) => errors.recv().await,
        None => std::future::pending().await,
    }
}
