//! `esession chat CONTACT`: an interactive encrypted conversation.
//!
//! What the user is shown is always true (issue 10): a status tag in the
//! prompt and on every change; every message typed is delivered (the
//! contact's encrypted receipt), reported late, or re-sent in a new session
//! after a loss, never dropped in silence; a broken retained-secret chain or a
//! changed key stops sending until the user acknowledges it.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use esession::{Event, SecurityAlert, SessionId, SessionInfo, StanzaKind, TerminationReason};
use esession_store::Store;
use esession_wire::minidom::Element;
use esession_wire::ns;
use esession_xmpp::{ClientError, ClientEvent, EsessionClient};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::account::{login, manager, open_store};
use crate::outbox::Outbox;
use crate::present;
use crate::present::fingerprint_full;
use crate::profile::{ProfileName, bare, target_now};
use crate::screen::{Screen, Status, Tone};
use crate::settings::Settings;

/// How long after login we wait for the contact's presence before saying
/// whether it is online (issue 10: within 5 s).
const PRESENCE_WAIT: Duration = Duration::from_secs(3);
/// How long the larger bare JID waits for the contact's offer before it
/// offers itself (see `Chat::start_automatically`).
const GLARE_WAIT: Duration = Duration::from_secs(3);
/// A message not acknowledged after this long is reported.
const LATE_AFTER: Duration = Duration::from_secs(5);

pub(crate) const HELP: &str = "\
In-chat commands:
  /verify          the short authentication string (SAS) matches: mark this contact verified
  /distrust        the SAS does NOT match: revoke the verification and end the session
  /dismiss         stop reminding me to compare the SAS with this contact's client
  /ack             send despite the warning shown (the session stays UNVERIFIED)
  /fingerprint     show our signing keys' fingerprints (in full)
  /fingerprint JID show the fingerprints of the keys a contact has shown
  /trust FPR       mark a contact's key (fingerprint in hex) as verified
  /untrust FPR     mark it as NOT verified
  /secret          set the other shared secret (a password agreed out of band) for the next session
  /ping            round-trip time of an encrypted ping (sessions that agreed iq)
  /status          the session's security state and the messages not yet delivered
  /approve         let the contact see when you are online (approve their subscription request)
  /end             end the encrypted session
  /start           start a new encrypted session
  /rekey           agree fresh keys now (also done automatically when idle)
  /quit            end the session and exit (also Ctrl-C, Ctrl-D)
  /help            this text
Anything else is sent as an encrypted message; nothing is ever sent in clear.";

/// What the user typed, or that they want out.
enum Input {
    Line(String),
    Quit,
}

pub(crate) async fn run(
    settings: &Settings,
    contact: &str,
    profile: Option<ProfileName>,
    send_despite_warnings: bool,
    approve_subscription: bool,
) -> Result<(), String> {
    let store = open_store(settings)?;
    let account = settings.account()?;
    if bare(contact) == bare(&account) {
        return Err(format!(
            "{contact} is your own account: start a chat with someone else's JID."
        ));
    }
    // SSN-09, ESN-07: offers from anyone not subscribed to our presence are
    // never answered automatically; the contact of this chat is.
    let config = esession::Config {
        answer_only_subscribers: true,
        ..esession::Config::default()
    };
    let mut manager = manager(settings, &store, config)?;
    if let Some(name) = profile {
        // This run only: `esession trust profile` is what persists it.
        manager.set_profile(contact, name.profile());
    }
    let mut screen = Screen::stdout();
    let (keyboard, writer) = Keyboard::open();
    if let Some(writer) = writer {
        screen.set_writer(writer);
    }
    screen.line(
        Tone::Info,
        &format!(
            "*** {} connecting as {account} ...",
            Status::Connecting.tag()
        ),
    );
    let departure = crate::published::Departure::on_exit(settings, &store)?;
    let client = login(settings, manager, crate::account::Inbox::Reads).await?;
    crate::profile::announce(&client, contact);
    let mut chat = Chat {
        contact: contact.to_owned(),
        account,
        store,
        public_keys: settings.public_keys,
        keys_fetched: false,
        screen,
        status: Status::Connecting,
        session: None,
        offer: None,
        outbox: Outbox::default(),
        pings: HashMap::new(),
        warning: None,
        send_despite_warnings,
        want_session: true,
        awaiting_secret: false,
        receipts_seen: false,
        presence_reported: false,
        link_down: false,
        started: Instant::now(),
        keyboard,
        auto_start_at: None,
        offline_sessions: HashMap::new(),
        departure,
        offline_options: Vec::new(),
        offline_session: None,
        approve_subscription,
    };
    chat.show_history();
    chat.screen.line(
        Tone::Info,
        &format!("*** Type /help for commands. Looking for {contact} ..."),
    );
    chat.update_status(&client);
    let mut client = client;
    // XEP-0187 (OFF-13): read what was written while we were away.
    match crate::published::hold_kept_offline_options(settings, &chat.store, &mut client).await {
        Ok(0) => {}
        Ok(held) => chat.info(&format!(
            "*** Back online: {held} offline option set(s) read messages written while you were away, then are withdrawn."
        )),
        Err(e) => chat.alert(&format!("!!! {e}")),
    }
    chat.info(&format!("*** {}", crate::account::archive_line(&client)));
    // Issue 15: the contact sees us online even without a subscription to
    // our presence (some clients need our full JID to start a session).
    if let Ok(jid) = jid::Jid::new(contact)
        && let Err(e) = client.send_directed_presence(&jid).await
    {
        chat.alert(&format!(
            "!!! Our presence could not be sent to {contact}: {e}"
        ));
    }
    if contact.contains('/') {
        // A full JID: nothing to look up first.
        chat.start_automatically(&mut client).await;
    }
    chat.run(client).await
}

/// Where the user's lines come from: the line editor on a terminal (incoming
/// lines are printed above the one being typed, with history, and the prompt
/// carries the status tag), plain standard input otherwise (scripts, tests).
enum Keyboard {
    Editor(Box<rustyline_async::Readline>),
    Lines(mpsc::UnboundedReceiver<Input>),
}

impl Keyboard {
    /// The line editor on a terminal, with the writer that prints above it.
    fn open() -> (Self, Option<rustyline_async::SharedWriter>) {
        if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
            let prompt = format!("{} > ", Status::Connecting.tag());
            if let Ok((mut editor, writer)) = rustyline_async::Readline::new(prompt) {
                // Our own lines come back as "me: ..." with the time.
                editor.should_print_line_on(false, false);
                return (Self::Editor(Box::new(editor)), Some(writer));
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(tokio::io::stdin()).lines();
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) => {
                        if tx.send(Input::Line(line)).is_err() {
                            break;
                        }
                    }
                    _ => {
                        let _ = tx.send(Input::Quit);
                        break;
                    }
                }
            }
        });
        (Self::Lines(rx), None)
    }

    /// The next line, or that the user wants out (Ctrl-C, Ctrl-D, end of input).
    /// Cancel-safe.
    async fn next(&mut self) -> Input {
        match self {
            Self::Editor(editor) => match editor.readline().await {
                Ok(rustyline_async::ReadlineEvent::Line(line)) => Input::Line(line),
                _ => Input::Quit,
            },
            Self::Lines(lines) => lines.recv().await.unwrap_or(Input::Quit),
        }
    }

    /// Keeps `line` in the editor's history (never a secret).
    fn remember(&mut self, line: &str) {
        if let Self::Editor(editor) = self
            && !line.trim().is_empty()
        {
            editor.add_history_entry(line.to_owned());
        }
    }

    /// Shows the status tag in the prompt (the editor redraws it at once).
    fn show_status(&mut self, status: Status) {
        if let Self::Editor(editor) = self {
            let _ = editor.update_prompt(&format!("{} > ", status.tag()));
        }
    }

    /// Prints what is still buffered and gives the terminal back.
    fn close(&mut self) {
        if let Self::Editor(editor) = self {
            let _ = editor.flush();
        }
    }
}

struct Chat {
    contact: String,
    account: String,
    store: Store,
    /// We identify by public key (`--public-keys`): fetch the contact's published key.
    public_keys: bool,
    /// The contact's published keys were fetched in this run.
    keys_fetched: bool,
    screen: Screen,
    status: Status,
    /// The established session with the contact, if any.
    session: Option<SessionId>,
    /// Our offer being negotiated, if any.
    offer: Option<SessionId>,
    outbox: Outbox,
    /// Our pings in flight: id -> when sent.
    pings: HashMap<String, Instant>,
    /// A warning the user has not acknowledged: sending waits (issue 10).
    warning: Option<String>,
    send_despite_warnings: bool,
    /// Start a session as soon as the contact can be reached.
    want_session: bool,
    /// The next line typed is the other shared secret.
    awaiting_secret: bool,
    /// The contact's client sent a receipt in this session.
    receipts_seen: bool,
    /// Whether the contact's reachability was reported after login.
    presence_reported: bool,
    /// The connection dropped and has not come back yet.
    link_down: bool,
    started: Instant,
    /// The user's lines.
    keyboard: Keyboard,
    /// When to offer a session if the contact has not offered one by then.
    auto_start_at: Option<Instant>,
    /// XEP-0187 sessions written in while we were away (read-only), with
    /// whether the sender's key is one the user verified.
    /// XEP-0187 sessions, with what they agreed (a one-shot one is gone
    /// when its message is shown).
    offline_sessions: HashMap<SessionId, SessionInfo>,
    /// `--offline-on-exit`: the offline options to publish when we leave (OFF-18).
    departure: Option<crate::published::Departure>,
    /// XEP-0187: the contact is offline and published these options (with
    /// `--public-keys`): what we type goes to them as an offline session.
    offline_options: Vec<Element>,
    /// That offline session, once the first message opened it.
    offline_session: Option<SessionId>,
    /// Approve the contact's presence subscription request when it comes.
    approve_subscription: bool,
}

impl Chat {
    async fn run(mut self, mut client: EsessionClient) -> Result<(), String> {
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = &mut interrupted => {
                    self.leave(client).await;
                    return Ok(());
                }
                input = self.keyboard.next() => {
                    let line = match input {
                        Input::Line(line) => line,
                        Input::Quit => {
                            self.leave(client).await;
                            return Ok(());
                        }
                    };
                    let line = line.trim_end().to_owned();
                    if !self.awaiting_secret {
                        self.keyboard.remember(&line);
                    }
                    if line == "/quit" {
                        self.leave(client).await;
                        return Ok(());
                    }
                    self.on_line(&mut client, &line).await;
                    self.update_status(&client);
                }
                event = client.next_event() => {
                    let Some(event) = event else {
                        self.keyboard.close();
                        return Err("the connection to the server closed for good".to_owned());
                    };
                    if let Some(fatal) = self.on_event(&mut client, event).await {
                        self.keyboard.close();
                        return Err(fatal);
                    }
                    self.update_status(&client);
                }
                _ = tick.tick() => {
                    self.on_tick(&mut client).await;
                    self.update_status(&client);
                }
            }
        }
    }

    fn info(&mut self, text: &str) {
        self.screen.line(Tone::Info, text);
    }

    fn alert(&mut self, text: &str) {
        self.screen.line(Tone::Alert, text);
    }

    /// Recomputes the status tag; shows it when it changed.
    fn update_status(&mut self, client: &EsessionClient) {
        let status = if client.own_jid().is_none() || self.link_down {
            Status::Connecting
        } else if let Some(info) = self
            .session
            .as_ref()
            .and_then(|id| client.manager().session_info(id))
        {
            if info.is_verified() {
                Status::Verified
            } else {
                Status::Unverified
            }
        } else if self.offer.is_some() {
            Status::Negotiating
        } else {
            Status::NotEncrypted
        };
        if status != self.status {
            self.status = status;
            self.keyboard.show_status(status);
            self.info(&format!("*** Now {}", status.tag()));
        }
    }

    /// Starts a session when the contact's client may be starting one too
    /// (a reconnect, both chats opened at once): only the smaller bare JID
    /// offers at once, the other waits a moment for that offer. Two crossing
    /// sessions would leave the two clients with different retained secrets.
    async fn start_automatically(&mut self, client: &mut EsessionClient) {
        if self.preferred(true) {
            self.start(client).await;
        } else if self.auto_start_at.is_none() {
            self.auto_start_at = Some(Instant::now() + GLARE_WAIT);
        }
    }

    /// Starts a session with the contact, unless one is established or offered.
    async fn start(&mut self, client: &mut EsessionClient) {
        if self.session.is_some() || self.offer.is_some() || client.own_jid().is_none() {
            return;
        }
        let target = match target_now(client, &self.contact) {
            Ok(target) => target,
            Err(why) => {
                self.info(&format!("*** Not started yet: {why}"));
                return;
            }
        };
        if target != self.contact {
            let profile = client.manager().profile_for(&self.contact);
            eprintln!(
                "The {} profile needs a full JID: starting the session with {target}.",
                profile.name()
            );
        }
        if self.public_keys && !self.keys_fetched {
            // Issue 13: the contact's published key, once per run, before the first offer.
            self.keys_fetched = true;
            let lines = crate::published::fetch_before_negotiating(
                client,
                &self.store,
                &self.account,
                &self.contact,
            )
            .await;
            for line in lines {
                self.info(&line);
            }
        }
        match client.start_session(&target).await {
            Ok(id) => {
                self.info(&format!(
                    "*** Negotiating an encrypted session with {target} ..."
                ));
                self.offer = Some(id);
                self.want_session = false;
            }
            Err(ClientError::NoEsessionSupport(jid)) => {
                self.want_session = false;
                self.alert(&format!(
                    "!!! {jid} is online but its client does not support encrypted sessions \
                     (XEP-0116): nothing can be sent to it from here. Ask your contact to use a \
                     client with ESessions (or `esession chat`)."
                ));
            }
            Err(e) => self.alert(&format!("!!! Could not start a session with {target}: {e}")),
        }
    }

    async fn on_line(&mut self, client: &mut EsessionClient, line: &str) {
        if self.awaiting_secret {
            self.awaiting_secret = false;
            self.set_secret(line);
            return;
        }
        let (command, argument) = match line.split_once(' ') {
            Some((c, a)) => (c, a.trim()),
            None => (line, ""),
        };
        match command {
            "" => {}
            "/help" => self.info(HELP),
            "/ping" => self.ping(client).await,
            "/end" => match self.session.take() {
                Some(id) => {
                    self.want_session = false;
                    if let Err(e) = client.terminate(&id).await {
                        self.alert(&format!("!!! Could not end the session: {e}"));
                    }
                }
                None => self.info("*** No established session to end."),
            },
            "/start" => {
                self.want_session = true;
                self.start(client).await;
            }
            "/verify" => {
                self.verify(client);
                self.flush_queue(client).await;
            }
            "/distrust" => self.distrust(client).await,
            "/dismiss" => self.dismiss(client),
            "/ack" => match self.warning.take() {
                Some(_) => {
                    self.info("*** Warning acknowledged: sending again (this session stays UNVERIFIED until you /verify).");
                    self.flush_queue(client).await;
                }
                None => self.info("*** No warning to acknowledge."),
            },
            "/status" => self.show_status(client),
            "/approve" => self.approve(client).await,
            "/rekey" => match self.session.clone() {
                Some(id) => match client.rekey(&id).await {
                    Ok(()) => self.info(&format!(
                        "*** New keys sent; older keys are destroyed once {} uses them.",
                        id.peer
                    )),
                    Err(e) => self.alert(&format!("!!! Not rekeyed: {e}")),
                },
                None => self.info("*** No established session to rekey."),
            },
            "/fingerprint" if argument.is_empty() => self.own_fingerprints(),
            "/fingerprint" => self.contact_fingerprints(argument),
            "/trust" | "/untrust" => self.trust_key(argument, command == "/trust"),
            "/secret" => {
                self.awaiting_secret = true;
                self.info(
                    "*** Type the secret you agreed with your contact out of band, then Enter \
                     (it is stored encrypted, used from the next session on, and not kept in \
                     history). An empty line removes it.",
                );
            }
            text if text.starts_with('/') => {
                self.info(&format!("*** Unknown command {text}; /help lists them."))
            }
            _ => self.send(client, line).await,
        }
    }

    /// Whether the offline contact published offline options we can write to (OFF-07):
    /// with our signing key only; without it the user is told what it would take.
    async fn offline_options_of_contact(&mut self, client: &mut EsessionClient) -> bool {
        if self.contact.contains('/') {
            return false;
        }
        let Ok(contact) = jid::BareJid::new(&self.contact) else {
            return false;
        };
        let options = client
            .fetch_offline_options(&contact)
            .await
            .unwrap_or_default();
        if options.is_empty() {
            return false;
        }
        if !self.public_keys {
            self.info(&format!(
                "*** {} published offline options (XEP-0187); run the chat with --public-keys to write to them while they are offline.",
                self.contact
            ));
            return false;
        }
        self.offline_options = options;
        true
    }

    /// XEP-0187 (OFF-07..12): one typed message to the offline contact, in the offline
    /// session (opened by the first one). Returns false when it could not go that way.
    async fn send_offline(&mut self, client: &mut EsessionClient, text: &str) -> bool {
        if let Some(id) = self.offline_session.clone() {
            return match client.send_text(&id, text).await {
                Ok(()) => {
                    self.keep_in_history(client, (&id, None), true, text);
                    self.info("*** Sent offline: they read it when they are back (no receipt can come before).");
                    true
                }
                Err(e) => {
                    self.alert(&format!("!!! Not sent offline ({e})."));
                    self.offline_session = None;
                    false
                }
            };
        }
        let Ok(contact) = jid::BareJid::new(&self.contact) else {
            return false;
        };
        let options = std::mem::take(&mut self.offline_options);
        let history = self.store.account(&self.account).ok();
        match crate::published::send_to_options(
            client,
            &contact,
            &options,
            text,
            false,
            history.as_ref(),
        )
        .await
        {
            Ok((id, _)) => {
                self.offline_session = Some(id);
                self.offline_options = options;
                self.info("*** Sent offline: they read it when they are back (no receipt can come before).");
                true
            }
            Err(why) => {
                // The options are dropped: they cannot carry what we write.
                self.alert(&format!(
                    "!!! {why}; it stays queued for when they come online."
                ));
                false
            }
        }
    }

    /// Sends, or queues, one typed message.
    async fn send(&mut self, client: &mut EsessionClient, text: &str) {
        let offline = self.session.is_none()
            && self.warning.is_none()
            && (self.offline_session.is_some() || !self.offline_options.is_empty());
        let who = if offline {
            "me [offline message, encrypted]".to_owned()
        } else {
            self.speaker("me")
        };
        self.screen.message(Tone::Ours, &who, text);
        let carrying = self
            .session
            .clone()
            .filter(|_| self.warning.is_none() || self.send_despite_warnings);
        match carrying {
            Some(id) => match client.send_text_with_receipt(&id, text).await {
                Ok(message_id) => {
                    self.outbox.sent(text, message_id, &id, Instant::now());
                    self.keep_in_history(client, (&id, None), true, text);
                }
                Err(e) => {
                    self.outbox.queue(text);
                    self.alert(&format!(
                        "!!! Not sent yet ({e}); it will be sent in the next encrypted session."
                    ));
                    self.want_session = true;
                }
            },
            None if self.warning.is_none()
                && (self.offline_session.is_some() || !self.offline_options.is_empty())
                && self.send_offline(client, text).await => {}
            None => {
                self.outbox.queue(text);
                if self.warning.is_some() {
                    self.alert("!!! Held back: acknowledge the warning above first (/verify after comparing the SAS, /distrust, or /ack).");
                } else {
                    self.info("*** Queued: it will be sent once the encrypted session is established (nothing is ever sent in clear).");
                    self.want_session = true;
                    self.start(client).await;
                }
            }
        }
    }

    /// Lets the contact see our presence (approves their subscription request).
    async fn approve(&mut self, client: &mut EsessionClient) {
        let contact = bare(&self.contact).to_owned();
        let done = match jid::BareJid::new(&contact) {
            Ok(jid) => client
                .approve_subscription(&jid)
                .await
                .map_err(|e| e.to_string()),
            Err(_) => Err(format!("{contact} is not a JID")),
        };
        match done {
            Ok(()) => self.info(&format!("*** {contact} may now see when you are online.")),
            Err(e) => self.alert(&format!("!!! Could not approve {contact}: {e}")),
        }
    }

    /// Keeps a message in the local history when its session may be logged
    /// (never an off-the-record one); says so when that fails.
    fn keep_in_history(
        &mut self,
        client: &EsessionClient,
        session: (&SessionId, Option<&SessionInfo>),
        outgoing: bool,
        text: &str,
    ) {
        let kept = self
            .store
            .account(&self.account)
            .map_err(|e| e.to_string())
            .and_then(|account| crate::history::record(&account, client, session, outgoing, text));
        if let Err(e) = kept {
            self.alert(&format!("!!! {e}"));
        }
    }

    /// The last messages kept with the contact, marked as history.
    fn show_history(&mut self) {
        let contact = self.contact.split('/').next().unwrap_or(&self.contact);
        let history = self
            .store
            .account(&self.account)
            .and_then(|a| a.history(contact, 0, Some(crate::history::CHAT_LINES)));
        match history {
            Ok(history) if !history.entries.is_empty() => {
                self.info(&format!(
                    "*** History: the last {} message(s) kept with {contact}:",
                    history.entries.len()
                ));
                for entry in &history.entries {
                    let line = crate::history::line(entry, &chrono::Local);
                    self.info(&format!("  (history) {line}"));
                }
                self.info("*** End of history.");
            }
            Ok(_) => {}
            Err(e) => self.alert(&format!("!!! The history could not be read: {e}")),
        }
    }

    /// Sends what waits in the queue, in the current session.
    async fn flush_queue(&mut self, client: &mut EsessionClient) {
        let Some(id) = self.session.clone() else {
            return;
        };
        if self.warning.is_some() && !self.send_despite_warnings {
            return;
        }
        for pending in self.outbox.queued() {
            let now = Instant::now();
            let sent = match &pending.id {
                Some(old) => client
                    .resend_text(&id, &pending.text, old)
                    .await
                    .map(|()| old.clone()),
                None => client.send_text_with_receipt(&id, &pending.text).await,
            };
            match sent {
                Ok(message_id) => {
                    self.outbox.mark_sent(
                        &pending.text,
                        pending.id.as_deref(),
                        message_id,
                        &id,
                        now,
                    );
                    if pending.id.is_none() {
                        // A re-sent message was kept when it first went out.
                        self.keep_in_history(client, (&id, None), true, &pending.text);
                    }
                    let what = if pending.resent { "Re-sent" } else { "Sent" };
                    self.info(&format!("*** {what}: \"{}\"", pending.text));
                }
                Err(e) => {
                    self.alert(&format!("!!! Still not sent ({e}): \"{}\"", pending.text));
                    break;
                }
            }
        }
    }

    fn verify(&mut self, client: &mut EsessionClient) {
        let Some(id) = self.session.clone() else {
            self.info("*** No established session to verify.");
            return;
        };
        match client.confirm_sas(&id) {
            Ok(()) => {
                self.warning = None;
                self.info(&format!(
                    "*** Verified: {} is who the SAS says; future sessions with this client continue the verified chain.",
                    id.peer
                ));
            }
            Err(e) => self.alert(&format!("!!! Not recorded: {e}")),
        }
    }

    async fn distrust(&mut self, client: &mut EsessionClient) {
        let Some(id) = self.session.clone() else {
            self.info("*** No established session to distrust.");
            return;
        };
        self.want_session = false;
        match client.distrust(&id).await {
            Ok(()) => self.alert(&format!(
                "!!! SAS mismatch recorded: {} is NOT verified any more and the session is ending. \
                 Someone may be intercepting: talk to your contact over another channel, then \
                 /start and compare the SAS again.",
                id.peer
            )),
            Err(e) => self.alert(&format!("!!! Not recorded: {e}")),
        }
    }

    fn dismiss(&mut self, client: &mut EsessionClient) {
        let Some(id) = self.session.clone() else {
            self.info("*** No established session.");
            return;
        };
        match client.manager_mut().dismiss_sas_reminder(&id) {
            Ok(()) => self.info(&format!(
                "*** No more SAS reminders for {}. The session stays UNVERIFIED until you /verify.",
                id.peer
            )),
            Err(e) => self.alert(&format!("!!! Not recorded: {e}")),
        }
    }

    fn show_status(&mut self, client: &EsessionClient) {
        let mut lines = vec![format!("*** Status: {}", self.status.tag())];
        match self
            .session
            .as_ref()
            .and_then(|id| client.manager().session_info(id).map(|i| (id, i)))
        {
            Some((id, info)) => lines.push(present::established(id.peer.as_str(), info)),
            None => lines.push("*** No established session.".to_owned()),
        }
        lines.push(format!(
            "*** Server archive: {}.",
            client.server_archive().describe()
        ));
        if let Some(warning) = &self.warning {
            lines.push(format!("!!! Unacknowledged warning: {warning}"));
        }
        for p in self.outbox.all() {
            let state = if p.session.is_some() {
                "sent, not yet acknowledged"
            } else {
                "waiting for a session"
            };
            lines.push(format!("*** Not yet delivered ({state}): \"{}\"", p.text));
        }
        self.info(&lines.join("\n"));
    }

    fn own_fingerprints(&mut self) {
        let keys = match self.store.signing_keys(&self.account) {
            Ok(keys) => keys,
            Err(e) => return self.alert(&format!("!!! Cannot read our keys: {e}")),
        };
        if keys.is_empty() {
            return self.info("*** You have no signing key (`esession keys generate` makes one; sessions are then authenticated by SAS and retained secrets only).");
        }
        let mut lines = vec!["*** Our signing keys (SHA-256 of the <KeyValue/>):".to_owned()];
        for key in keys {
            let text = String::from_utf8_lossy(&key.public_key).into_owned();
            let fingerprint = esession_wire::xml::parse_document(&text)
                .ok()
                .and_then(|e| esession_wire::keyvalue::KeyValue::try_from(&e).ok())
                .map(|kv| esession::key_fingerprint(&kv));
            match fingerprint {
                Some(fp) => lines.push(format!(
                    "  key {} ({}):\n    {}",
                    key.id.0,
                    key.algorithm,
                    fingerprint_full(&fp)
                )),
                None => lines.push(format!("  key {}: unreadable public key", key.id.0)),
            }
        }
        self.info(&lines.join("\n"));
    }

    fn contact_fingerprints(&mut self, jid: &str) {
        let keys = match self.store.peer_keys_of(&self.account, bare(jid)) {
            Ok(keys) => keys,
            Err(e) => return self.alert(&format!("!!! Cannot read {jid}'s keys: {e}")),
        };
        if keys.is_empty() {
            return self.info(&format!(
                "*** {jid} has shown no public key yet (keys are learned when a session uses them; both sides need --public-keys)."
            ));
        }
        let mut lines = vec![format!("*** Keys shown by {jid}:")];
        for key in keys {
            lines.push(format!(
                "  {}{}:\n    {}",
                key.petname
                    .as_deref()
                    .map(|p| format!("\"{p}\" "))
                    .unwrap_or_default(),
                if key.verified {
                    "VERIFIED"
                } else {
                    "not verified"
                },
                fingerprint_full(&key.fingerprint)
            ));
        }
        self.info(&lines.join("\n"));
    }

    fn trust_key(&mut self, fingerprint: &str, verified: bool) {
        let contact = bare(&self.contact).to_owned();
        let hex: String = fingerprint
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ':')
            .collect();
        let Ok(fp) = hex::decode(&hex) else {
            return self.info(&format!(
                "*** Give the key's full fingerprint in hex (see /fingerprint {contact})."
            ));
        };
        let shown = self
            .store
            .peer_keys_of(&self.account, &contact)
            .map(|keys| keys.iter().any(|k| k.fingerprint == fp));
        if !matches!(shown, Ok(true)) {
            return self.alert(&format!(
                "!!! Not changed: {contact} has shown no key with that fingerprint (see /fingerprint {contact} for the keys it has shown)."
            ));
        }
        match self.store.set_key_verified(&self.account, &fp, verified) {
            Ok(()) if verified => self.info("*** Key marked verified: sessions it signs are authenticated."),
            Ok(()) => self.alert("!!! Key marked NOT verified: sessions it signs are not authenticated by it any more."),
            Err(e) => self.alert(&format!("!!! Not changed: the trust store failed ({e}).")),
        }
    }

    fn set_secret(&mut self, secret: &str) {
        let peer = bare(&self.contact).to_owned();
        let result = if secret.is_empty() {
            self.store
                .clear_other_secret(&self.account, &peer)
                .map(|_| ())
        } else {
            self.store.set_other_secret(
                &self.account,
                &peer,
                esession_crypto::SecretBytes::new(secret.as_bytes().to_vec()),
            )
        };
        match result {
            Ok(()) if secret.is_empty() => {
                self.info(&format!("*** The shared secret with {peer} was removed."))
            }
            Ok(()) => self.info(&format!(
                "*** Shared secret with {peer} stored; the next session (/end, /start) uses it. \
                 If your contact typed a different one, that session will fail."
            )),
            Err(e) => self.alert(&format!("!!! Not stored: {e}")),
        }
    }

    /// Sends an encrypted XEP-0199 ping in the session, if it agreed iq.
    async fn ping(&mut self, client: &mut EsessionClient) {
        let Some(id) = self.session.clone() else {
            return self.info("*** No established session to ping.");
        };
        let iq_agreed = client
            .manager()
            .session_info(&id)
            .is_some_and(|info| info.stanzas.contains(&StanzaKind::Iq));
        if !iq_agreed {
            return self.info(
                "*** This session does not encrypt iq, so /ping is not available: both sides need \
                 [account] stanzas = [\"message\", \"presence\", \"iq\"] (or --stanzas message,presence,iq).",
            );
        }
        match client.send_ping(&id).await {
            Ok(ping) => {
                self.pings.insert(ping, Instant::now());
            }
            Err(e) => self.alert(&format!("!!! Ping not sent: {e}")),
        }
    }

    /// Who wrote a line, with the status tag unless the session is verified
    /// (the prompt cannot carry it, so the conversation does).
    fn speaker(&self, who: &str) -> String {
        if self.status == Status::Verified {
            who.to_owned()
        } else {
            format!("{who} {}", self.status.tag())
        }
    }

    /// Whether a session we (`we_initiated`) or the contact started is the
    /// one both clients keep when two cross: the smaller bare JID's.
    fn preferred(&self, we_initiated: bool) -> bool {
        let we_are_smaller = bare(&self.account) < bare(&self.contact);
        we_initiated == we_are_smaller
    }

    fn is_contact(&self, jid: &str) -> bool {
        bare(jid) == bare(&self.contact)
    }

    /// Every second: the contact's reachability once after login, late
    /// messages, a session we still want.
    async fn on_tick(&mut self, client: &mut EsessionClient) {
        if client.own_jid().is_none() {
            return;
        }
        if !self.presence_reported && self.started.elapsed() >= PRESENCE_WAIT {
            self.presence_reported = true;
            self.report_reachability(client).await;
        }
        if self.presence_reported && self.want_session && self.session.is_none() {
            let online = !client.online_resources(bare(&self.contact)).is_empty();
            if online {
                self.start_automatically(client).await;
            }
        }
        if let Some(at) = self.auto_start_at
            && Instant::now() >= at
        {
            self.auto_start_at = None;
            if self.want_session {
                self.start(client).await;
            }
        }
        let late = self.outbox.late(Instant::now(), LATE_AFTER);
        for text in late {
            if self.receipts_seen || self.session.is_none() {
                self.alert(&format!(
                    "!!! Not yet delivered after {} s: \"{text}\" (no receipt from {} yet).",
                    LATE_AFTER.as_secs(),
                    self.contact
                ));
            } else {
                self.info(&format!(
                    "*** No receipt for \"{text}\" yet: {}'s client may not send receipts, so delivery cannot be confirmed.",
                    self.contact
                ));
            }
        }
    }

    /// Issue 10: within seconds of login, say whether the contact is offline,
    /// online without ESessions, or online and silent; start when it can work.
    async fn report_reachability(&mut self, client: &mut EsessionClient) {
        let resources = client.online_resources(bare(&self.contact)).to_vec();
        let subscribed = client.manager().is_presence_subscribed(&self.contact);
        if resources.is_empty() {
            if subscribed && self.offline_options_of_contact(client).await {
                self.info(&format!(
                    "*** {} is offline and published offline options (XEP-0187): what you type goes to them as an offline encrypted session, which they read when they are back.",
                    self.contact
                ));
            } else if subscribed {
                self.alert(&format!(
                    "!!! {} is offline (no presence). What you type is queued and sent when they come online.",
                    self.contact
                ));
            } else {
                self.info(&format!(
                    "*** {} shares no presence with you (not in your roster), so we cannot tell whether they are online.",
                    self.contact
                ));
                if self.want_session {
                    self.start_automatically(client).await;
                }
            }
            return;
        }
        if self.offer.is_none() && self.session.is_none() {
            if self.want_session {
                self.start_automatically(client).await;
            }
        } else if self.session.is_none() {
            self.info(&format!(
                "*** {} is online ({}); waiting for their client to answer the offer ...",
                self.contact,
                resources.join(", ")
            ));
        }
    }

    /// Handles one event; `Some(reason)` when the chat must end.
    async fn on_event(
        &mut self,
        client: &mut EsessionClient,
        event: ClientEvent,
    ) -> Option<String> {
        match event {
            ClientEvent::Online { jid } => {
                self.info(&format!("*** Online as {jid}."));
            }
            ClientEvent::Resumed => {
                self.link_down = false;
                self.info(
                    "*** Connection back: the stream was resumed (XEP-0198) and the session continues.",
                );
            }
            ClientEvent::Reconnected { jid } => {
                self.link_down = false;
                self.info(&format!(
                    "*** Reconnected as {jid}. The old session could not continue; a new one starts when {} is reachable.",
                    self.contact
                ));
                // Checked again on the new stream before it was announced.
                self.info(&format!("*** {}", crate::account::archive_line(client)));
                self.want_session = true;
                self.presence_reported = false;
                self.started = Instant::now();
            }
            ClientEvent::ContactOnline { jid } if self.is_contact(&jid) => {
                if self.presence_reported && self.session.is_none() {
                    self.info(&format!("*** {jid} is online."));
                }
                if self.want_session {
                    self.start_automatically(client).await;
                }
            }
            ClientEvent::Disconnected { reason, fatal, .. } => {
                self.alert(&format!("!!! {reason}"));
                self.link_down = true;
                if fatal {
                    return Some(reason);
                }
            }
            ClientEvent::PlainMessage { from, body } => {
                self.screen
                    .message(Tone::Alert, &format!("{from} (NOT ENCRYPTED)"), &body)
            }
            ClientEvent::OffTheRecordFailed {
                contact,
                reason,
                sessions_ended,
            } => self.alert(&present::off_the_record_failed(
                &contact,
                &reason,
                sessions_ended.len(),
            )),
            ClientEvent::SubscriptionRequest { from } if self.is_contact(&from) => {
                if self.approve_subscription {
                    self.approve(client).await;
                } else {
                    self.info(&format!(
                        "*** {from} asks to see when you are online: type /approve to let them."
                    ));
                }
            }
            ClientEvent::ArchivePreferenceNotRestored { contact, reason } => {
                self.alert(&present::archive_rule_not_restored(&contact, &reason));
            }
            ClientEvent::Session(event) => self.on_session_event(client, event).await,
            _ => {}
        }
        None
    }

    async fn on_session_event(&mut self, client: &mut EsessionClient, event: Event) {
        match event {
            Event::OfferReceived { session } => {
                if self.is_contact(session.peer.as_str()) {
                    self.info(&format!(
                        "*** {} offers an encrypted session; accepting.",
                        session.peer
                    ));
                    if let Err(e) = client.accept_offer(&session).await {
                        self.alert(&format!("!!! Could not accept: {e}"));
                    }
                } else {
                    self.info(&format!(
                        "*** {} offers an encrypted session; not answered (this chat is with {}).",
                        session.peer, self.contact
                    ));
                }
            }
            Event::Established { session, info } => {
                if info.offline {
                    // XEP-0187: what someone wrote while we were away (or our
                    // own offline session); read-only or one-way, so it never
                    // becomes the chat's session.
                    self.info(&present::established(session.peer.as_str(), &info));
                    self.offline_sessions.insert(session, info);
                    return;
                }
                if !self.is_contact(session.peer.as_str()) {
                    return;
                }
                if self.offer.as_ref() == Some(&session) {
                    self.offer = None;
                }
                // Both sides offered at once: two sessions. Both clients keep
                // the one initiated by the smaller bare JID, so they agree;
                // the other is ended quietly and its undelivered messages go
                // out in the one kept.
                if let Some(current) = self.session.clone()
                    && current != session
                {
                    let current_preferred = client
                        .manager()
                        .session_info(&current)
                        .is_some_and(|i| self.preferred(i.we_initiated));
                    if current_preferred && !self.preferred(info.we_initiated) {
                        let _ = client.terminate(&session).await;
                        return;
                    }
                    self.outbox.session_lost(&current);
                    let _ = client.terminate(&current).await;
                }
                self.session = Some(session.clone());
                self.auto_start_at = None;
                self.receipts_seen = false;
                self.info(&present::established(session.peer.as_str(), &info));
                self.want_session = false;
                if info.stanzas.contains(&StanzaKind::Presence) {
                    self.send_presence(client, &session).await;
                }
                self.flush_queue(client).await;
            }
            Event::SecurityAlert { session, alert } => {
                let loud = matches!(
                    alert,
                    SecurityAlert::RetainedSecretNotProven(_)
                        | SecurityAlert::PeerKeyChanged { .. }
                        | SecurityAlert::PeerKeyMissing { .. }
                        | SecurityAlert::PeerKeySeenWithOtherJid { .. }
                );
                self.alert(&present::alert(session.peer.as_str(), &alert));
                if loud && self.is_contact(session.peer.as_str()) {
                    if self.send_despite_warnings {
                        self.alert("!!! (--send-despite-warnings: sending continues.)");
                    } else {
                        self.warning = Some(present::alert_summary(session.peer.as_str(), &alert));
                        self.alert("!!! Sending is held back until you type /verify (after comparing the SAS), /distrust, or /ack.");
                    }
                }
            }
            Event::MessageReceived {
                session, message, ..
            } => {
                if let Some(body) = present::body(&message) {
                    // A one-shot offline session is gone by now: remembered
                    // from its `Established`, which comes first.
                    let offline = self
                        .offline_sessions
                        .get(&session)
                        .map(|info| info.peer_key.as_ref().is_some_and(|k| k.verified));
                    let who = if let Some(verified) = offline {
                        // XEP-0187: written when the sender says (OFF-12).
                        format!(
                            "{} [offline message, {}{}]",
                            session.peer,
                            if verified {
                                "verified key"
                            } else {
                                "key NOT verified"
                            },
                            present::written_at(&message)
                        )
                    } else {
                        self.speaker(session.peer.as_str())
                    };
                    self.screen.message(Tone::Theirs, &who, &body);
                    let known = self.offline_sessions.get(&session).cloned();
                    self.keep_in_history(client, (&session, known.as_ref()), false, &body);
                }
            }
            Event::MessageDelivered { id, .. } => {
                self.receipts_seen = true;
                if let Some(p) = self.outbox.delivered(&id)
                    && (p.reported_late || p.resent)
                {
                    self.info(&format!("*** Delivered: \"{}\"", p.text));
                }
            }
            Event::NegotiationFailed { session, error } => {
                if self.offer.as_ref() == Some(&session) {
                    self.offer = None;
                }
                if self.is_contact(session.peer.as_str()) {
                    self.alert(&format!(
                        "!!! {}",
                        present::failure(session.peer.as_str(), &error)
                    ));
                    if !self.outbox.all().is_empty() {
                        self.alert("!!! Your messages are still queued; type /start to try again.");
                    }
                }
            }
            Event::Terminated { session, reason }
                if self.offline_session.as_ref() == Some(&session) =>
            {
                // OFF-17: they came online; from now on, a normal session.
                self.offline_session = None;
                self.offline_options.clear();
                self.info(&present::terminated(session.peer.as_str(), &reason));
            }
            Event::Terminated { session, reason } => {
                let current = self.session.as_ref() == Some(&session);
                if current {
                    self.session = None;
                }
                if !self.is_contact(session.peer.as_str()) {
                    return;
                }
                if !current {
                    // A session we set aside (two crossed): its undelivered
                    // messages go out in the current one.
                    self.outbox.session_lost(&session);
                    self.flush_queue(client).await;
                    return;
                }
                self.info(&present::terminated(session.peer.as_str(), &reason));
                let lost = self.outbox.session_lost(&session);
                let renegotiate = matches!(
                    reason,
                    TerminationReason::PeerLostSession
                        | TerminationReason::IntegrityFailure
                        | TerminationReason::KeysExhausted
                        | TerminationReason::ConnectionReset
                        | TerminationReason::PeerUnavailable
                );
                for text in &lost {
                    self.alert(&format!(
                        "!!! Not delivered{}: \"{text}\"",
                        if renegotiate {
                            " — it will be re-sent in a new session"
                        } else {
                            " — type /start to send it in a new session"
                        }
                    ));
                }
                if renegotiate && current {
                    self.want_session = true;
                    if matches!(
                        reason,
                        TerminationReason::PeerLostSession
                            | TerminationReason::IntegrityFailure
                            | TerminationReason::KeysExhausted
                    ) {
                        self.info("*** Renegotiating ...");
                        self.start_automatically(client).await;
                    }
                }
            }
            Event::UnknownSessionStanza { session, answered } => {
                if answered {
                    self.alert(&format!(
                        "!!! {} wrote in an encrypted session this client no longer has (it was restarted, or the session ended): that message cannot be read. {}'s client was told, and will send it again in a new session.",
                        session.peer, session.peer
                    ));
                } else {
                    // Usually the contact's terminate of a session that just
                    // ended (a reconnect); nothing of ours is lost.
                    self.info(&format!(
                        "*** {} sent a stanza of an encrypted session this client no longer has (one that just ended, or from before a restart); it could not be read. Not answered, as {} is not subscribed to your presence.",
                        session.peer, session.peer
                    ));
                }
            }
            Event::StanzaReceived { session, stanza } => {
                self.on_stanza(client, session, stanza).await
            }
            other => {
                if let Some(text) = present::other(&other) {
                    self.info(&text);
                }
            }
        }
    }

    /// A decrypted presence or iq: shown, answered, or a ping's answer.
    async fn on_stanza(
        &mut self,
        client: &mut EsessionClient,
        session: SessionId,
        stanza: Element,
    ) {
        if stanza.name() == "presence" {
            if let Some(text) = present::presence(session.peer.as_str(), &stanza) {
                self.info(&text);
            }
            return;
        }
        match stanza.attr("type") {
            Some("get" | "set") => {
                let _ = client.refuse_iq(&session, &stanza).await;
            }
            Some(kind @ ("result" | "error")) => {
                let sent = stanza.attr("id").and_then(|id| self.pings.remove(id));
                if let Some(sent) = sent {
                    let text = if kind == "result" {
                        format!(
                            "*** Ping {}: {:.1} ms (encrypted)",
                            session.peer,
                            sent.elapsed().as_secs_f64() * 1000.0
                        )
                    } else {
                        format!("*** {} answered the ping with an error.", session.peer)
                    };
                    self.info(&text);
                }
            }
            _ => {}
        }
    }

    /// Our encrypted directed presence (the server then tells the contact
    /// when we go offline, SSN-16).
    async fn send_presence(&mut self, client: &mut EsessionClient, session: &SessionId) {
        let mut presence = Element::bare("presence", ns::JABBER_CLIENT);
        if esession_wire::xml::set_attr(&mut presence, "to", session.peer.as_str()).is_ok()
            && let Err(e) = client.send_stanza(session, presence).await
        {
            self.alert(&format!(
                "!!! Could not send our presence to {}: {e}",
                session.peer
            ));
        }
    }

    /// Going offline (ESN-45): ends our sessions with the encrypted terminate
    /// form, waits a moment for acknowledgements, then disconnects; reports
    /// what was never delivered.
    async fn leave(&mut self, mut client: EsessionClient) {
        // Receipts still on their way: a moment for them before the session ends.
        if self.session.is_some() && self.outbox.all().iter().any(|p| p.session.is_some()) {
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while let Some(event) = client.next_event().await {
                    if let ClientEvent::Session(Event::MessageDelivered { id, .. }) = event {
                        self.outbox.delivered(&id);
                        if self.outbox.all().is_empty() {
                            break;
                        }
                    }
                }
            })
            .await;
        }
        if let Some(id) = self.session.take() {
            let _ = client.terminate(&id).await;
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while let Some(event) = client.next_event().await {
                    match event {
                        ClientEvent::Session(Event::Terminated { .. }) => break,
                        ClientEvent::Session(Event::MessageDelivered { id, .. }) => {
                            self.outbox.delivered(&id);
                        }
                        _ => {}
                    }
                }
            })
            .await;
        }
        let never: Vec<String> = self.outbox.all().iter().map(|p| p.text.clone()).collect();
        for text in never {
            self.alert(&format!(
                "!!! Not confirmed delivered (no receipt before exit): \"{text}\""
            ));
        }
        // OFF-18: a new offline option set for every departure, if asked for.
        if let Some(mut departure) = self.departure.take() {
            let said = departure.announce(&self.store, &mut client).await;
            self.info(&said);
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), client.disconnect()).await;
        self.info("*** Session ended; goodbye.");
        self.keyboard.close();
    }
}
