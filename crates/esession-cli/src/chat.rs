//! `esession chat CONTACT`: an interactive encrypted conversation.

use std::collections::HashMap;
use std::time::Instant;

use esession::{Config, Event, SessionId, StanzaKind};
use esession_store::SasState;
use esession_wire::minidom::Element;
use esession_wire::ns;
use esession_xmpp::{ClientEvent, EsessionClient};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::account::{clock_time, login, manager, open_store};
use crate::present;
use crate::profile::{ProfileName, session_target, target_now};
use crate::settings::Settings;

/// How long to wait after login for the presence of a contact whose profile
/// needs its full JID.
const PRESENCE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

const HELP: &str = "\
Commands:
  /verify    the short authentication string matches: mark this contact verified
  /distrust  the string does NOT match: end the session (possible attack)
  /dismiss   stop reminding me to compare the string with this contact's client
  /ping      round-trip time of an encrypted ping (sessions that agreed iq)
  /status    show the session's security state
  /end       end the encrypted session (you can start a new one with /start)
  /start     start a new encrypted session
  /rekey     agree fresh keys now (XEP-0200 rekey; also done automatically when idle)
  /quit      end the session and exit
  /help      this text
Anything else is sent as an encrypted message.";

pub(crate) async fn run(
    settings: &Settings,
    contact: &str,
    profile: Option<ProfileName>,
) -> Result<(), String> {
    let store = open_store(settings)?;
    let account = settings.account()?;
    // SSN-09, ESN-07: offers from anyone not subscribed to our presence (the
    // roster, fed by the adapter) are never answered automatically; the
    // contact of this chat is, because the user asked to talk to them.
    let config = Config {
        answer_only_subscribers: true,
        ..Config::default()
    };
    let mut manager = manager(settings, &store, config)?;
    if let Some(name) = profile {
        // This run only: `esession trust profile` is what persists it.
        manager.set_profile(contact, name.profile());
    }
    let mut client = login(settings, manager).await?;
    crate::profile::announce(&client, contact);
    let mut session: Option<SessionId> = None;
    let mut established = false;
    // Our pings in flight: id -> when sent.
    let mut pings: HashMap<String, Instant> = HashMap::new();
    // Gajim needs a full JID: wait a moment for the contact's presence.
    let (target, seen) = session_target(&mut client, contact, PRESENCE_WAIT).await?;
    for event in seen {
        react(&mut client, &event, &mut pings, contact).await;
        if show(&event, &mut session, &mut established) == Some(true) {
            return Ok(());
        }
    }
    println!("Type /help for commands. Starting an encrypted session with {target} ...");
    if session.is_none() {
        session = Some(
            client
                .start_session(&target)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    // Ctrl-C leaves like /quit: every session is terminated first (ESN-45).
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            _ = &mut interrupted => {
                leave(client, session.as_ref()).await;
                return Ok(());
            }
            line = lines.next_line() => {
                let Ok(Some(line)) = line else {
                    leave(client, session.as_ref()).await;
                    return Ok(());
                };
                let line = line.trim_end().to_owned();
                match line.as_str() {
                    "" => {}
                    "/help" => println!("{HELP}"),
                    "/ping" => match &session {
                        Some(id) if established => ping(&mut client, id, &mut pings).await,
                        _ => println!("*** No established session to ping."),
                    },
                    "/quit" => {
                        leave(client, session.as_ref()).await;
                        return Ok(());
                    }
                    "/end" => {
                        if let Some(id) = session.take() {
                            let _ = client.terminate(&id).await;
                            established = false;
                        }
                    }
                    "/start" => match target_now(&client, contact) {
                        Ok(target) => {
                            session = Some(client.start_session(&target).await.map_err(|e| e.to_string())?);
                        }
                        Err(why) => println!("*** Not started: {why}"),
                    },
                    "/verify" => match &session {
                        Some(id) if established => {
                            client.confirm_sas(id).map_err(|e| e.to_string())?;
                            let client_res = id.peer.split_once('/').map(|(_, r)| r).unwrap_or_default();
                            let _ = store.set_sas_state(&account, bare(&id.peer), client_res, SasState::Confirmed, now());
                            println!("*** Verified: future sessions with {} continue this verified chain.", id.peer);
                        }
                        _ => println!("*** No established session to verify."),
                    },
                    "/distrust" => {
                        if let Some(id) = session.take() {
                            let client_res = id.peer.split_once('/').map(|(_, r)| r).unwrap_or_default();
                            // Still unverified: the reminder stays on for the next session.
                            let _ = store.set_sas_state(&account, bare(&id.peer), client_res, SasState::Pending, now());
                            let _ = client.terminate(&id).await;
                            established = false;
                            println!("!!! SAS mismatch recorded; the session was ended. Someone may be intercepting: verify with your contact.");
                        }
                    }
                    "/dismiss" => match &session {
                        Some(id) if established => match client.manager_mut().dismiss_sas_reminder(id) {
                            Ok(()) => println!(
                                "*** No more SAS reminders for {}. The session stays UNVERIFIED until you /verify.",
                                id.peer
                            ),
                            Err(e) => println!("*** Not recorded: {e}"),
                        },
                        _ => println!("*** No established session."),
                    },
                    "/status" => match session.as_ref().and_then(|id| client.manager().session_info(id).map(|i| (id, i))) {
                        Some((id, info)) => println!("{}", present::established(&id.peer, info)),
                        None => println!("*** No established session."),
                    },
                    "/rekey" => match &session {
                        Some(id) if established => match client.rekey(id).await {
                            Ok(()) => println!("*** New keys sent; older keys are destroyed once {} uses them.", id.peer),
                            Err(e) => println!("*** Not rekeyed: {e}"),
                        },
                        _ => println!("*** No established session to rekey."),
                    },
                    text if text.starts_with('/') => println!("*** Unknown command {text}; /help lists them."),
                    text => match &session {
                        Some(id) if established => {
                            if let Err(e) = client.send_text(id, text).await {
                                println!("*** Not sent: {e}");
                            }
                        }
                        _ => println!("*** Not sent: no encrypted session yet (nothing is ever sent in clear)."),
                    },
                }
            }
            event = client.next_event() => {
                let Some(event) = event else { return Err("the connection closed".to_owned()) };
                react(&mut client, &event, &mut pings, contact).await;
                if show(&event, &mut session, &mut established) == Some(true) {
                    return Ok(());
                }
            }
        }
    }
}

fn bare(jid: &str) -> &str {
    jid.split_once('/').map_or(jid, |(b, _)| b)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Prints an event; returns `Some(true)` when the chat should end.
fn show(
    event: &ClientEvent,
    session: &mut Option<SessionId>,
    established: &mut bool,
) -> Option<bool> {
    match event {
        ClientEvent::Session(Event::Established { session: id, info }) => {
            *session = Some(id.clone());
            *established = true;
            println!("{}", present::established(&id.peer, info));
        }
        ClientEvent::Session(Event::SecurityAlert { session: id, alert }) => {
            println!("{}", present::alert(&id.peer, alert))
        }
        ClientEvent::Session(Event::MessageReceived {
            session: id,
            message,
        }) => {
            if let Some(body) = present::body(message) {
                println!("[{}] {}: {body}", clock_time(), id.peer);
            }
        }
        // Shown (and answered or not) by `react`.
        ClientEvent::Session(Event::OfferReceived { .. }) => {}
        ClientEvent::Session(Event::NegotiationFailed { session: id, error }) => {
            println!("!!! {}", present::failure(&id.peer, error));
            if session.as_ref() == Some(id) {
                *session = None;
                *established = false;
            }
        }
        ClientEvent::Session(Event::Terminated {
            session: id,
            reason,
        }) => {
            println!("{}", present::terminated(&id.peer, reason));
            if session.as_ref() == Some(id) {
                *session = None;
                *established = false;
            }
        }
        ClientEvent::Session(other) => {
            if let Some(text) = present::other(other) {
                println!("{text}");
            }
        }
        ClientEvent::PlainMessage { from, body } => {
            println!("[{}] {from} (NOT ENCRYPTED): {body}", clock_time())
        }
        ClientEvent::Disconnected { reason, fatal, .. } => {
            println!("!!! {reason}");
            if *fatal {
                return Some(true);
            }
        }
        _ => {}
    }
    None
}

/// Sends an encrypted XEP-0199 ping in the session, if it agreed iq.
async fn ping(client: &mut EsessionClient, id: &SessionId, pings: &mut HashMap<String, Instant>) {
    let iq_agreed = client
        .manager()
        .session_info(id)
        .is_some_and(|info| info.stanzas.contains(&StanzaKind::Iq));
    if !iq_agreed {
        println!(
            "*** This session does not encrypt iq, so /ping is not available: both sides need \
             [account] stanzas = [\"message\", \"presence\", \"iq\"] (or --stanzas message,presence,iq)."
        );
        return;
    }
    match client.send_ping(id).await {
        Ok(ping) => {
            pings.insert(ping, Instant::now());
        }
        Err(e) => println!("*** Ping not sent: {e}"),
    }
}

/// What an event asks of us beyond showing it: once a session that agreed
/// presence is established, our encrypted directed presence to the contact
/// (the server then tells them when we go offline, SSN-16); decrypted
/// presence and ping answers are shown; decrypted requests are answered
/// (RFC 6120 §8.2.3: the client answers pings and disco#info itself, we
/// refuse the rest, encrypted).
async fn react(
    client: &mut EsessionClient,
    event: &ClientEvent,
    pings: &mut HashMap<String, Instant>,
    contact: &str,
) {
    match event {
        // An offer held by policy (SSN-09): the contact of this chat is
        // accepted, anyone else is left unanswered.
        ClientEvent::Session(Event::OfferReceived { session }) => {
            if bare(&session.peer) == bare(contact) {
                println!(
                    "*** {} offers an encrypted session; accepting.",
                    session.peer
                );
                if let Err(e) = client.accept_offer(session).await {
                    println!("*** Could not accept: {e}");
                }
            } else {
                println!(
                    "*** {} offers an encrypted session; not answered (this chat is with {contact}).",
                    session.peer
                );
            }
        }
        ClientEvent::Session(Event::Established { session, info })
            if info.stanzas.contains(&StanzaKind::Presence) =>
        {
            let mut presence = Element::bare("presence", ns::JABBER_CLIENT);
            if esession_wire::xml::set_attr(&mut presence, "to", session.peer.as_str()).is_ok()
                && let Err(e) = client.send_stanza(session, presence).await
            {
                println!("*** Could not send our presence to {}: {e}", session.peer);
            }
        }
        ClientEvent::Session(Event::StanzaReceived { session, stanza })
            if stanza.name() == "presence" =>
        {
            if let Some(text) = present::presence(&session.peer, stanza) {
                println!("[{}] {text}", clock_time());
            }
        }
        ClientEvent::Session(Event::StanzaReceived { session, stanza }) => {
            match stanza.attr("type") {
                Some("get" | "set") => {
                    let _ = client.refuse_iq(session, stanza).await;
                }
                Some(kind @ ("result" | "error")) => {
                    let sent = stanza.attr("id").and_then(|id| pings.remove(id));
                    if let Some(sent) = sent {
                        let rtt = sent.elapsed();
                        if kind == "result" {
                            println!(
                                "*** Ping {}: {:.1} ms (encrypted)",
                                session.peer,
                                rtt.as_secs_f64() * 1000.0
                            );
                        } else {
                            println!("*** {} answered the ping with an error.", session.peer);
                        }
                    }
                }
                _ => {}
            }
        }
        _ => {}
    }
}

/// Going offline (ESN-45): ends our session and waits briefly for its
/// acknowledgement, then [`EsessionClient::disconnect`] terminates any other
/// session (an offer someone else made us, say) before unavailable presence.
async fn leave(mut client: EsessionClient, session: Option<&SessionId>) {
    finish(&mut client, session).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), client.disconnect()).await;
}

async fn finish(client: &mut EsessionClient, session: Option<&SessionId>) {
    if let Some(id) = session {
        let _ = client.terminate(id).await;
        // Give the acknowledgement a moment to arrive (ESN-46).
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), async {
            while let Some(event) = client.next_event().await {
                if matches!(event, ClientEvent::Session(Event::Terminated { .. })) {
                    break;
                }
            }
        })
        .await;
    }
}
