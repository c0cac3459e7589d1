//! `esession chat CONTACT`: an interactive encrypted conversation.

use esession::{Config, Event, SessionId};
use esession_store::SasState;
use esession_xmpp::{ClientEvent, EsessionClient};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::account::{clock_time, login, manager, open_store};
use crate::present;
use crate::settings::Settings;

const HELP: &str = "\
Commands:
  /verify    the short authentication string matches: mark this contact verified
  /distrust  the string does NOT match: end the session (possible attack)
  /status    show the session's security state
  /end       end the encrypted session (you can start a new one with /start)
  /start     start a new encrypted session
  /rekey     agree fresh keys now (XEP-0200 rekey; also done automatically when idle)
  /quit      end the session and exit
  /help      this text
Anything else is sent as an encrypted message.";

pub(crate) async fn run(settings: &Settings, contact: &str) -> Result<(), String> {
    let store = open_store(settings)?;
    let account = settings.account()?;
    let mut client = login(settings, manager(settings, &store, Config::default())?).await?;
    println!("Type /help for commands. Starting an encrypted session with {contact} ...");
    let mut session: Option<SessionId> = Some(
        client
            .start_session(contact)
            .await
            .map_err(|e| e.to_string())?,
    );
    let mut established = false;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Ok(Some(line)) = line else {
                    finish(&mut client, session.as_ref()).await;
                    return Ok(());
                };
                let line = line.trim_end().to_owned();
                match line.as_str() {
                    "" => {}
                    "/help" => println!("{HELP}"),
                    "/quit" => {
                        finish(&mut client, session.as_ref()).await;
                        return Ok(());
                    }
                    "/end" => {
                        if let Some(id) = session.take() {
                            let _ = client.terminate(&id).await;
                            established = false;
                        }
                    }
                    "/start" => {
                        session = Some(client.start_session(contact).await.map_err(|e| e.to_string())?);
                    }
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
                            let _ = store.set_sas_state(&account, bare(&id.peer), client_res, SasState::Dismissed, now());
                            let _ = client.terminate(&id).await;
                            established = false;
                            println!("!!! SAS mismatch recorded; the session was ended. Someone may be intercepting: verify with your contact.");
                        }
                    }
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
        ClientEvent::Session(Event::OfferReceived { session: id }) => {
            println!("*** {} offers an encrypted session.", id.peer)
        }
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
